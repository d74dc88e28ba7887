//! The PostgreSQL backend against a real server: the conformance kit in full, migrations,
//! and what a bad URL gives.
//!
//! Set `ONEVIEW_TEST_POSTGRES` to a database URL to run them
//! (`ONEVIEW_TEST_POSTGRES=postgres://postgres@127.0.0.1/test cargo test --all-features`);
//! without it each test says how and passes having checked nothing. CI sets it, and
//! fails when the server is not reachable. Each store lives in a schema of its own,
//! dropped when the test ends.

mod common;

use common::postgres::{Schemas, server_url};
use oneview::store::postgres::{ConnectError, PostgresStore, SCHEMA_VERSION, Writes};
use oneview::store::{Store, conformance};
use oneview::{Channel, Customers, Event, Identifier, IdentifierKind};

/// `who@example.com` signing up on the web.
fn signed_up(who: &str) -> Event {
    Event::builder("web", Channel::Web, "Signed Up")
        .identifier(IdentifierKind::Email, &format!("{who}@example.com"))
        .build()
        .unwrap()
}

#[test]
fn keeps_the_store_contract() {
    let Some(url) = server_url() else { return };
    let schemas = Schemas::new(&url, "conformance");
    conformance::run_all(|| schemas.store());
}

#[test]
fn keeps_the_store_contract_with_writers_taking_turns() {
    let Some(url) = server_url() else { return };
    conformance::run_all(|| {
        PostgresStore::builder()
            .schema(&common::postgres::fresh_name("turns"))
            .writes(Writes::OneAtATime)
            .temporary(true)
            .connect(&url)
            .unwrap()
    });
}

#[test]
fn a_newer_schema_is_refused_untouched() {
    let Some(url) = server_url() else { return };
    let schemas = Schemas::new(&url, "newer");
    let name = schemas.name();
    drop(schemas.store_in(&name));
    let mut client = schemas.client();
    client
        .batch_execute(&format!(
            "UPDATE {name}.oneview_schema SET version = {}",
            SCHEMA_VERSION + 1
        ))
        .unwrap();
    let err = PostgresStore::builder()
        .schema(&name)
        .connect(&url)
        .unwrap_err();
    assert!(
        matches!(err, ConnectError::NewerSchema { found, .. } if found == SCHEMA_VERSION + 1),
        "{err}"
    );
    let version: i32 = client
        .query_one(&format!("SELECT version FROM {name}.oneview_schema"), &[])
        .unwrap()
        .get(0);
    assert_eq!(version, SCHEMA_VERSION + 1, "the schema was left as it was");
}

#[test]
fn a_schema_of_another_application_is_refused_untouched() {
    let Some(url) = server_url() else { return };
    let schemas = Schemas::new(&url, "foreign");
    let name = schemas.name();
    let mut client = schemas.client();
    client
        .batch_execute(&format!(
            "CREATE SCHEMA {name}; CREATE TABLE {name}.orders (id int)"
        ))
        .unwrap();
    let err = PostgresStore::builder()
        .schema(&name)
        .connect(&url)
        .unwrap_err();
    assert!(matches!(err, ConnectError::ForeignSchema { .. }), "{err}");
    let tables: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE schemaname = $1",
            &[&name],
        )
        .unwrap()
        .get(0);
    assert_eq!(tables, 1, "nothing was added");
}

#[test]
fn processes_starting_together_migrate_once() {
    let Some(url) = server_url() else { return };
    let schemas = Schemas::new(&url, "together");
    let name = schemas.name();
    let gate = std::sync::Barrier::new(6);
    std::thread::scope(|scope| {
        for _ in 0..6 {
            let (gate, name, url) = (&gate, &name, &url);
            scope.spawn(move || {
                gate.wait();
                PostgresStore::builder()
                    .schema(name)
                    .pool_size(1)
                    .connect(url)
                    .expect("every starter opens the store");
            });
        }
    });
    let version: i32 = schemas
        .client()
        .query_one(&format!("SELECT version FROM {name}.oneview_schema"), &[])
        .unwrap()
        .get(0);
    assert_eq!(version, SCHEMA_VERSION);
}

#[test]
fn a_refused_connection_names_the_host_and_not_the_password() {
    // Port 1 on the loopback has no server: the connection is refused at once.
    let err = PostgresStore::builder()
        .connect_timeout(std::time::Duration::from_secs(2))
        .connect("postgres://someone:hunter2@127.0.0.1:1/customers")
        .unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, ConnectError::Unreachable { .. }), "{message}");
    assert!(message.contains("127.0.0.1:1/customers"), "{message}");
    assert!(!message.contains("hunter2"), "{message}");
    assert!(!format!("{err:?}").contains("hunter2"));
}

#[test]
fn a_statement_timeout_is_a_typed_error() {
    let Some(url) = server_url() else { return };
    let schemas = Schemas::new(&url, "timeout");
    let name = schemas.name();
    let customers = Customers::new(
        PostgresStore::builder()
            .schema(&name)
            .statement_timeout(std::time::Duration::from_millis(200))
            .connect(&url)
            .unwrap(),
    );
    let email = Identifier::email("ana@example.com").unwrap();
    customers.ingest(signed_up("ana")).unwrap();
    // Another session holds the profiles table locked past the limit.
    let mut blocker = schemas.client();
    let mut tx = blocker.transaction().unwrap();
    tx.batch_execute(&format!(
        "LOCK TABLE {name}.identifiers IN ACCESS EXCLUSIVE MODE"
    ))
    .unwrap();
    let err = customers.profile(email.clone()).unwrap_err();
    assert!(
        matches!(
            err,
            oneview::Error::Store(oneview::StoreError::Timeout { .. })
        ),
        "{err}"
    );
    tx.rollback().unwrap();
    assert!(customers.profile(email).unwrap().is_some());
    let _ = IdentifierKind::Email;
}

/// While one store makes an exclusive write, a second store in the same schema (another
/// process, in effect) gets to commit only once it is over; the exclusive write's own
/// commits go ahead. A deadlock would end in the statement timeout, not a hang.
#[test]
fn an_exclusive_write_holds_back_the_writers_of_other_processes() {
    use std::time::{Duration, Instant};
    let Some(url) = server_url() else { return };
    let schemas = Schemas::new(&url, "exclusive");
    for writes in [Writes::Serializable, Writes::OneAtATime] {
        let name = schemas.name();
        let open = || {
            PostgresStore::builder()
                .schema(&name)
                .writes(writes)
                .pool_size(2)
                .statement_timeout(Duration::from_secs(10))
                .connect(&url)
                .unwrap()
        };
        let (first, second) = (open(), open());
        let (ours, theirs) = (Customers::new(&first), Customers::new(&second));
        std::thread::scope(|scope| {
            let mut other = None;
            let mut done = None;
            first
                .exclusive(&mut || {
                    let handle = scope.spawn(|| {
                        theirs.ingest(signed_up("bo")).unwrap();
                        Instant::now()
                    });
                    let deadline = Instant::now() + Duration::from_millis(300);
                    while !handle.is_finished() && Instant::now() < deadline {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    assert!(
                        !handle.is_finished(),
                        "{writes:?}: another process committed during an exclusive write"
                    );
                    other = Some(handle);
                    ours.ingest(signed_up("ana")).unwrap();
                    // Taken while the lock is still held: once `exclusive` lets it go,
                    // the other write may land before this thread looks at the clock.
                    done = Some(Instant::now());
                    Ok(())
                })
                .unwrap();
            let landed = other.expect("the write ran").join().unwrap();
            assert!(landed >= done.expect("the write ran"), "{writes:?}");
        });
        for who in ["ana", "bo"] {
            let email = Identifier::email(&format!("{who}@example.com")).unwrap();
            assert!(ours.profile(email).unwrap().is_some(), "{writes:?}: {who}");
        }
    }
}

/// A write that panics in the middle of an exclusive write lets the writers' lock go:
/// other processes commit at once (a lock left held would end in their statement
/// timeout), and the store makes exclusive writes again.
#[test]
fn a_panic_in_an_exclusive_write_lets_the_lock_go() {
    use std::panic::{AssertUnwindSafe, catch_unwind};
    use std::time::Duration;
    let Some(url) = server_url() else { return };
    let schemas = Schemas::new(&url, "panic");
    let name = schemas.name();
    let open = || {
        PostgresStore::builder()
            .schema(&name)
            .statement_timeout(Duration::from_secs(2))
            .connect(&url)
            .unwrap()
    };
    let (first, second) = (open(), open());
    let panicked = catch_unwind(AssertUnwindSafe(|| {
        first.exclusive(&mut || panic!("a bug in the middle of a write"))
    }));
    assert!(panicked.is_err());
    Customers::new(&second).ingest(signed_up("bo")).unwrap();
    let ours = Customers::new(&first);
    first
        .exclusive(&mut || {
            ours.ingest(signed_up("ana")).unwrap();
            Ok(())
        })
        .unwrap();
    Customers::new(&second).ingest(signed_up("cy")).unwrap();
    for who in ["ana", "bo", "cy"] {
        let email = Identifier::email(&format!("{who}@example.com")).unwrap();
        assert!(ours.profile(email).unwrap().is_some(), "{who}");
    }
}

/// An exclusive write that cannot have the writers' lock within the statement timeout,
/// because a commit of another process is held up mid-way, runs as any other write
/// instead of failing: its commits are checked all the same.
#[test]
fn an_exclusive_write_that_cannot_have_the_lock_in_time_runs_as_any_other() {
    use std::time::{Duration, Instant};
    let Some(url) = server_url() else { return };
    let schemas = Schemas::new(&url, "lockwait");
    let name = schemas.name();
    let open = |timeout: Duration| {
        PostgresStore::builder()
            .schema(&name)
            .statement_timeout(timeout)
            .connect(&url)
            .unwrap()
    };
    let (held_up, hurried) = (
        open(Duration::from_secs(10)),
        open(Duration::from_millis(300)),
    );
    // Another session holds the traits table, so a commit that sets a trait waits in
    // the middle of its transaction, holding the writers' lock shared.
    let mut blocker = schemas.client();
    let blocker_pid: i32 = blocker
        .query_one("SELECT pg_backend_pid()", &[])
        .unwrap()
        .get(0);
    let mut tx = blocker.transaction().unwrap();
    tx.batch_execute(&format!(
        "LOCK TABLE {name}.traits IN ACCESS EXCLUSIVE MODE"
    ))
    .unwrap();
    let mut watcher = schemas.client();
    std::thread::scope(|scope| {
        let writer = scope.spawn(|| {
            Customers::new(&held_up).ingest(
                Event::builder("web", Channel::Web, "Signed Up")
                    .identifier(IdentifierKind::Email, "ana@example.com")
                    .set_trait("plan", serde_json::json!("pro"))
                    .build()
                    .unwrap(),
            )
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        // The commit holds the lock shared and waits for the table: other tests' locks
        // do not count.
        while watcher
            .query_one(
                "SELECT count(*) FROM pg_locks
                 WHERE locktype = 'advisory' AND mode = 'ShareLock' AND granted
                   AND $1 = ANY (pg_blocking_pids(pid))",
                &[&blocker_pid],
            )
            .unwrap()
            .get::<_, i64>(0)
            == 0
        {
            assert!(Instant::now() < deadline, "the commit never took the lock");
            std::thread::sleep(Duration::from_millis(10));
        }
        let mut runs = 0;
        let began = Instant::now();
        hurried
            .exclusive(&mut || {
                runs += 1;
                Ok(())
            })
            .expect("runs without the lock");
        assert_eq!(runs, 1);
        assert!(
            began.elapsed() >= Duration::from_millis(300),
            "it waited first"
        );
        tx.commit().unwrap();
        writer.join().unwrap().expect("the held-up commit lands");
    });
    let email = Identifier::email("ana@example.com").unwrap();
    assert!(Customers::new(&hurried).profile(email).unwrap().is_some());
}
