//! Several processes sharing one PostgreSQL store, and a connection lost mid-commit.
//!
//! Runs against the server named by `ONEVIEW_TEST_POSTGRES` (see `tests/postgres.rs`);
//! without it each test says how to run it and checks nothing. Every wait is bounded:
//! children outliving the deadline are killed and the test fails.

mod common;

use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use common::postgres::{Schemas, server_url};
use oneview::identity::Policy;
use oneview::store::EventStore;
use oneview::store::postgres::{PostgresStore, Writes};
use oneview::{Channel, Customers, Event, Identifier, IdentifierKind, MemoryStore};
use serde_json::json;

const PROCESSES: usize = 4;
const THREADS: usize = 4;
const PEOPLE: i64 = 48;
const EVENTS: i64 = 1_440;
/// At most this many emails per profile: the third a person signs in with is refused.
const EMAIL_LIMIT: u32 = 2;

fn policy() -> Policy {
    Policy::default().limit(IdentifierKind::Email, EMAIL_LIMIT)
}

fn email(person: i64, which: i64) -> Identifier {
    Identifier::email(&format!("p{person}.{which}@x.com")).unwrap()
}

/// The shared load. Each person browses on three devices of their own and shares a
/// tablet with the next person, so pairs merge; they sign in with their user id and one
/// of three emails, so the email limit refuses some links; one event in nine happened
/// long before it arrives. Dealt round-robin to 16 writers, the records that link one
/// person's identifiers reach different processes.
fn load() -> Vec<Event> {
    let start = Utc.with_ymd_and_hms(2026, 5, 1, 0, 0, 0).unwrap();
    (0..EVENTS)
        .map(|i| {
            let person = i % PEOPLE;
            let round = i / PEOPLE;
            let when = if i % 9 == 0 {
                (i - 8 * PEOPLE).max(0)
            } else {
                i
            };
            let device = format!("d{person}-{}", round % 3);
            let builder = Event::builder("load", Channel::Web, "Acted")
                .message_id(&format!("m{i}"))
                .occurred_at(start + chrono::Duration::seconds(when))
                .set_trait("round", json!(round))
                .identifier(IdentifierKind::AnonymousId, &device);
            match round % 3 {
                0 => builder.with_identifier(email(person, 0)),
                1 => builder.identifier(
                    IdentifierKind::AnonymousId,
                    &format!("tablet-{}", person / 2),
                ),
                _ => builder
                    .identifier(IdentifierKind::UserId, &format!("u{person}"))
                    .with_identifier(email(person, round % 3 + round % 2)),
            }
            .build()
            .unwrap()
        })
        .collect()
}

/// A writer process: ingests, on four threads, the share of the load of writers
/// `4 × ONEVIEW_WRITER + thread`, half one by one and half in batches, into the schema
/// `ONEVIEW_PG_SCHEMA`; panics on any error.
#[test]
#[ignore = "a child process of four_processes_of_four_writers_agree_with_one_writer"]
fn postgres_writer_process() {
    let (Some(url), Ok(schema), Ok(process)) = (
        server_url(),
        std::env::var("ONEVIEW_PG_SCHEMA"),
        std::env::var("ONEVIEW_WRITER"),
    ) else {
        panic!("run by the multi-process test, with its variables set");
    };
    let process: usize = process.parse().unwrap();
    let store = PostgresStore::builder()
        .schema(&schema)
        .pool_size(THREADS as u32)
        .connect(&url)
        .unwrap();
    let customers = Customers::with_policy(store, policy());
    let events = load();
    std::thread::scope(|scope| {
        for thread in 0..THREADS {
            let (customers, events) = (&customers, &events);
            scope.spawn(move || {
                let writer = process * THREADS + thread;
                let mine: Vec<Event> = events
                    .iter()
                    .skip(writer)
                    .step_by(PROCESSES * THREADS)
                    .cloned()
                    .collect();
                let (singles, batched) = mine.split_at(mine.len() / 2);
                for event in singles {
                    if let Err(err) = customers.ingest(event.clone()) {
                        panic!("writer {writer}: {err}");
                    }
                }
                for chunk in batched.chunks(10) {
                    for result in customers.ingest_batch(chunk.to_vec()).unwrap() {
                        result.unwrap_or_else(|err| panic!("writer {writer}: {err}"));
                    }
                }
            });
        }
    });
}

#[test]
fn four_processes_of_four_writers_agree_with_one_writer() {
    let Some(url) = server_url() else { return };
    let schemas = Schemas::new(&url, "processes");
    let schema = schemas.name();
    // Created (and migrated) once here; the children race on the data, not the schema.
    let customers = Customers::with_policy(schemas.store_in(&schema), policy());
    let limit = Duration::from_secs(300);
    let deadline = Instant::now() + limit;
    let mut children: Vec<_> = (0..PROCESSES)
        .map(|process| {
            common::child_test("postgres_writer_process")
                .env("ONEVIEW_PG_SCHEMA", &schema)
                .env("ONEVIEW_WRITER", process.to_string())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn a writer process")
        })
        .collect();
    let stderrs: Vec<_> = children
        .iter_mut()
        .map(|child| common::read_all(child.stderr.take().unwrap()))
        .collect();
    // Two readers check what they read while the processes write: a profile found by an
    // identifier holds it, and its timeline agrees with its counts.
    let done = AtomicBool::new(false);
    let reads = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for reader in 0..2 {
            let (customers, done, reads) = (&customers, &done, &reads);
            scope.spawn(move || {
                let mut n = reader as i64;
                while !done.load(Ordering::SeqCst) && Instant::now() < deadline {
                    let wanted = email(n % PEOPLE, 0);
                    n += 1;
                    if let Some(profile) = customers.profile(wanted.clone()).expect("read") {
                        assert!(profile.identifiers.contains(&wanted));
                        let total = (profile.event_count() + profile.interaction_count()) as usize;
                        assert_eq!(profile.timeline.items.len(), total.min(20));
                    }
                    reads.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        let _stop = StopOnDrop(&done);
        while Instant::now() < deadline
            && !children
                .iter_mut()
                .all(|child| child.try_wait().unwrap().is_some())
        {
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    for (process, (mut child, stderr)) in children.into_iter().zip(stderrs).enumerate() {
        if Instant::now() >= deadline {
            let _ = child.kill();
        }
        let status = child.wait().unwrap();
        let stderr = stderr.join().unwrap();
        assert!(
            status.success(),
            "writer process {process} failed ({status}):\n{stderr}"
        );
    }
    eprintln!(
        "{PROCESSES} processes × {THREADS} writers; {} reads while they wrote",
        reads.load(Ordering::Relaxed)
    );
    assert!(reads.load(Ordering::Relaxed) > 0);
    let sequential = Customers::with_policy(MemoryStore::new(), policy());
    for event in load() {
        sequential.ingest(event).unwrap();
    }
    let shared = common::state(&customers);
    assert_eq!(shared, common::state(&sequential));
    assert_eq!(customers.store().scan_events().count() as i64, EVENTS);
    for (identifiers, _, _) in &shared {
        let emails = identifiers
            .iter()
            .filter(|i| i.starts_with("email:"))
            .count();
        assert!(emails <= EMAIL_LIMIT as usize, "{identifiers:?}");
    }
    assert!(
        shared.iter().any(|(identifiers, _, _)| identifiers
            .iter()
            .filter(|i| i.starts_with("email:"))
            .count()
            == EMAIL_LIMIT as usize),
        "the load reaches the limit somewhere, or it tests nothing"
    );
}

/// Sets its flag when dropped, including while a panic unwinds.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[test]
fn a_connection_killed_mid_commit_leaves_nothing_half_applied() {
    let Some(url) = server_url() else { return };
    let schemas = Schemas::new(&url, "killed");
    let schema = schemas.name();
    let application = format!("oneview-{schema}");
    let store = PostgresStore::builder()
        .schema(&schema)
        .application_name(&application)
        .connect(&url)
        .unwrap();
    let customers = Customers::new(store);
    let before: Vec<Event> = load().into_iter().take(200).collect();
    customers.ingest_batch(before.clone()).unwrap();
    let expected = common::state(&customers);
    // The server side of the writing connection is terminated while the batch is under
    // way; several thousand rows take long enough to be caught. Every event is newer
    // than all stored, so the batch is one commit (no late record goes on its own).
    let mut killer = schemas.client();
    let start = Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap();
    let big: Vec<Event> = (0..6_000)
        .map(|n| {
            Event::builder("load", Channel::Web, "Acted")
                .message_id(&format!("k{n}"))
                .occurred_at(start + chrono::Duration::seconds(n))
                .identifier(IdentifierKind::AnonymousId, &format!("d{}-0", n % PEOPLE))
                .with_identifier(email(n % 500, 7))
                .build()
                .unwrap()
        })
        .collect();
    let killed = AtomicUsize::new(0);
    let outcome = std::thread::scope(|scope| {
        let writer = scope.spawn(|| customers.ingest_batch(big.clone()));
        let deadline = Instant::now() + Duration::from_secs(60);
        while !writer.is_finished() && Instant::now() < deadline {
            let terminated: i64 = killer
                .query_one(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                     WHERE application_name = $1
                       AND (query LIKE 'BEGIN ISOLATION LEVEL SERIALIZABLE%'
                            OR query LIKE '%INSERT INTO%'
                            OR query LIKE '%FROM event_ids WHERE id = ANY%')",
                    &[&application],
                )
                .unwrap()
                .get(0);
            if terminated > 0 {
                killed.fetch_add(1, Ordering::SeqCst);
                break;
            }
        }
        writer.join().unwrap()
    });
    assert!(
        killed.load(Ordering::SeqCst) > 0,
        "the writer was never caught"
    );
    assert!(
        outcome.is_err(),
        "a batch whose connection died cannot succeed"
    );
    // Nothing of the batch landed, and the store works again on a fresh connection.
    assert_eq!(common::state(&customers), expected);
    assert_eq!(customers.store().scan_events().count(), before.len());
    customers.ingest_batch(big).unwrap();
    assert_eq!(
        customers.store().scan_events().count(),
        before.len() + 6_000
    );
}

#[test]
fn racing_writers_never_pass_the_email_limit() {
    let Some(url) = server_url() else { return };
    for writes in [Writes::Serializable, Writes::OneAtATime] {
        racing_writers(&url, writes);
    }
}

/// Eight writers at once each sign one person in with a new email: each decides the
/// email fits, so only the store's check of what the decision read keeps the limit.
fn racing_writers(url: &str, writes: Writes) {
    let schemas = Schemas::new(url, "racing");
    let store = PostgresStore::builder()
        .schema(&schemas.name())
        .pool_size(10)
        .writes(writes)
        .connect(url)
        .unwrap();
    let customers = Customers::with_policy(store, policy());
    let start = Utc.with_ymd_and_hms(2026, 4, 1, 0, 0, 0).unwrap();
    let sign_in = |round: i64, n: i64| {
        Event::builder("load", Channel::Web, "Signed In")
            .message_id(&format!("r{round}-{n}"))
            .occurred_at(start + chrono::Duration::seconds(n))
            .identifier(IdentifierKind::UserId, &format!("racer-{round}"))
            .with_identifier(email(1_000 + round, n))
            .build()
            .unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    for round in 0..20 {
        assert!(
            Instant::now() < deadline,
            "round {round} started past the deadline"
        );
        customers.ingest(sign_in(round, 0)).unwrap();
        let gate = std::sync::Barrier::new(8);
        std::thread::scope(|scope| {
            for n in 1..=8 {
                let (customers, gate, sign_in) = (&customers, &gate, &sign_in);
                scope.spawn(move || {
                    gate.wait();
                    customers.ingest(sign_in(round, n)).expect("ingest");
                });
            }
        });
        let person = customers
            .profile(Identifier::user_id(&format!("racer-{round}")).unwrap())
            .unwrap()
            .unwrap();
        let emails = person
            .identifiers
            .iter()
            .filter(|i| *i.kind() == IdentifierKind::Email)
            .count();
        assert_eq!(
            emails, EMAIL_LIMIT as usize,
            "round {round}: {:?}",
            person.identifiers
        );
    }
}
