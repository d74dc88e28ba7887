//! What only the SQLite backend has: a file format, migrations, many connections.

use std::path::{Path, PathBuf};

use chrono::{Duration, TimeZone, Utc};
use oneview::store::EventStore;
use oneview::store::sqlite::{OpenError, SCHEMA_VERSION, SqliteStore};
use oneview::{Channel, Customers, Event, Identifier, IdentifierKind, Store};
use serde_json::json;

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).expect("readable file")
}

fn assert_untouched(path: &Path, before: &[u8]) {
    assert_eq!(read(path), before, "the file was modified");
    for suffix in ["-wal", "-shm", "-journal"] {
        let mut side = path.as_os_str().to_owned();
        side.push(suffix);
        assert!(!PathBuf::from(side).exists(), "a {suffix} file was created");
    }
}

#[test]
fn a_file_that_is_not_sqlite_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    let text: Vec<u8> = b"these are not the pages you are looking for\n".repeat(200);
    std::fs::write(&path, &text).unwrap();
    let err = SqliteStore::open(&path).unwrap_err();
    assert!(matches!(err, OpenError::NotADatabase { .. }), "{err}");
    assert!(err.to_string().contains("not a SQLite database"), "{err}");
    assert_untouched(&path, &text);
}

#[test]
fn another_applications_database_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    for (name, application_id) in [("plain.db", 0), ("tagged.db", 0x1234)] {
        let path = dir.path().join(name);
        {
            let conn = rusqlite::Connection::open(&path).unwrap();
            conn.execute_batch(
                "CREATE TABLE orders (id INTEGER PRIMARY KEY); INSERT INTO orders VALUES (1);",
            )
            .unwrap();
            conn.pragma_update(None, "application_id", application_id)
                .unwrap();
        }
        let before = read(&path);
        let err = SqliteStore::open(&path).unwrap_err();
        match &err {
            OpenError::ForeignDatabase {
                application_id: found,
                ..
            } => assert_eq!(*found, application_id),
            other => panic!("expected ForeignDatabase, got {other}"),
        }
        assert!(err.to_string().contains("another application"), "{err}");
        assert_untouched(&path, &before);
    }
}

#[test]
fn a_database_from_a_newer_release_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("future.db");
    drop(SqliteStore::open(&path).unwrap());
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        conn.pragma_update(None, "journal_mode", "DELETE").unwrap();
    }
    let before = read(&path);
    let err = SqliteStore::open(&path).unwrap_err();
    match err {
        OpenError::NewerSchema {
            found, supported, ..
        } => assert_eq!((found, supported), (SCHEMA_VERSION + 1, SCHEMA_VERSION)),
        other => panic!("expected NewerSchema, got {other}"),
    }
    assert_untouched(&path, &before);
}

#[test]
fn data_survives_closing_and_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("customers.db");
    let customers = Customers::new(SqliteStore::open(&path).unwrap());
    fixture_events().into_iter().for_each(|e| {
        customers.ingest(e).unwrap();
    });
    drop(customers);
    check_fixture_content(&Customers::new(SqliteStore::open(&path).unwrap()));
}

/// With automatic checkpoints off the log keeps every write; a checkpoint moves it all
/// into the main file and empties the log, and the content reads the same afterwards.
#[test]
fn a_checkpoint_empties_the_log_into_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("customers.db");
    let wal = dir.path().join("customers.db-wal");
    let store = SqliteStore::builder()
        .checkpoint_pages(0)
        .open(&path)
        .unwrap();
    let customers = Customers::new(store);
    fixture_events().into_iter().for_each(|e| {
        customers.ingest(e).unwrap();
    });
    let logged = std::fs::metadata(&wal).unwrap().len();
    assert!(logged > 0, "the writes are in the log");
    let file_before = read(&path);
    assert_eq!(customers.store().checkpoint().unwrap(), 0);
    assert_eq!(
        std::fs::metadata(&wal).unwrap().len(),
        0,
        "the log is emptied"
    );
    assert_ne!(read(&path), file_before, "its pages are in the file now");
    check_fixture_content(&customers);
}

/// The content every fixture database holds: two people, one merge, traits.
fn fixture_events() -> Vec<Event> {
    let at =
        |minute| Utc.with_ymd_and_hms(2026, 2, 1, 9, 0, 0).unwrap() + Duration::minutes(minute);
    let event = |message: &str, minute, ids: &[(IdentifierKind, &str)]| {
        ids.iter()
            .fold(
                Event::builder("fixture", Channel::Web, "Visited")
                    .message_id(message)
                    .occurred_at(at(minute))
                    .set_trait("last_message", json!(message)),
                |b, (kind, raw)| b.identifier(kind.clone(), raw),
            )
            .build()
            .unwrap()
    };
    vec![
        event("1", 0, &[(IdentifierKind::AnonymousId, "dev-a")]),
        event("2", 5, &[(IdentifierKind::Email, "ana@example.com")]),
        event(
            "3",
            9,
            &[
                (IdentifierKind::Email, "ana@example.com"),
                (IdentifierKind::AnonymousId, "dev-a"),
            ],
        ),
        event("4", 12, &[(IdentifierKind::UserId, "bo")]),
    ]
}

fn check_fixture_content<S: Store>(customers: &Customers<S>) {
    let ana = customers
        .profile(Identifier::email("ana@example.com").unwrap())
        .unwrap()
        .expect("ana is stored");
    assert_eq!(ana.identifiers.len(), 2);
    assert_eq!(ana.event_count(), 3);
    assert_eq!(ana.merges.len(), 1);
    assert_eq!(ana.traits["last_message"].value, json!("3"));
    let bo = customers
        .profile(Identifier::user_id("bo").unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(bo.event_count(), 1);
    assert_eq!(customers.store().customers(None, 10).unwrap().len(), 2);
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Writes the fixture for the current schema version. Run once when a release adds a
/// migration: `cargo test --all-features --test sqlite -- --ignored write_fixture`.
/// Older versions' files stay as they are: the code that wrote them is gone.
#[test]
#[ignore = "writes a fixture; run by hand when the schema version changes"]
fn write_fixture() {
    let path = fixtures().join(format!("schema-v{SCHEMA_VERSION}.db"));
    let _ = std::fs::remove_file(&path);
    std::fs::create_dir_all(fixtures()).unwrap();
    let customers = Customers::new(SqliteStore::open(&path).unwrap());
    for e in fixture_events() {
        customers.ingest(e).unwrap();
    }
    drop(customers);
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "journal_mode", "DELETE").unwrap();
    conn.execute_batch("VACUUM").unwrap();
}

#[test]
fn every_shipped_schema_version_opens_and_migrates() {
    let dir = tempfile::tempdir().unwrap();
    for version in 1..=SCHEMA_VERSION {
        let fixture = fixtures().join(format!("schema-v{version}.db"));
        assert!(fixture.exists(), "no fixture for schema version {version}");
        let path = dir.path().join(format!("v{version}.db"));
        std::fs::copy(&fixture, &path).unwrap();
        let customers = Customers::new(SqliteStore::open(&path).unwrap());
        check_fixture_content(&customers);
        // And it takes new data after the migration.
        let more = Event::builder("fixture", Channel::Email, "Opened")
            .message_id("after-migration")
            .identifier(IdentifierKind::UserId, "bo")
            .build()
            .unwrap();
        customers.ingest(more).unwrap();
        let version_now: i32 = rusqlite::Connection::open(&path)
            .unwrap()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version_now, SCHEMA_VERSION);
    }
}

/// Version 2 gave each trait operation the event that carried it, filled in from the
/// provenance stored in version 1. A rewrite moves traits by that column, so an unmerge
/// after the migration must move a version-1 trait with its event.
#[test]
fn an_unmerge_after_migrating_from_v1_moves_each_trait_with_its_event() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1.db");
    std::fs::copy(fixtures().join("schema-v1.db"), &path).unwrap();
    let customers = Customers::new(SqliteStore::open(&path).unwrap());
    let unlinked: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row(
            "SELECT count(*) FROM traits WHERE event_id IS NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(unlinked, 0, "every v1 trait is tied to its event");

    let email = Identifier::email("ana@example.com").unwrap();
    let device = Identifier::anonymous_id("dev-a").unwrap();
    let ana = customers.profile(email.clone()).unwrap().unwrap();
    assert_eq!(ana.traits["last_message"].value, json!("3"));
    customers
        .unmerge(
            email.clone(),
            ana.merges[0].id,
            false,
            &oneview::Actor::new("ops", "test"),
        )
        .unwrap();
    // Event 1 was the device's alone: it and the trait it set go back to the device.
    let device_side = customers.profile(device).unwrap().unwrap();
    assert_ne!(
        device_side.customer_id,
        customers
            .profile(email.clone())
            .unwrap()
            .unwrap()
            .customer_id
    );
    assert_eq!(device_side.event_count(), 1);
    assert_eq!(device_side.traits["last_message"].value, json!("1"));
    let email_side = customers.profile(email).unwrap().unwrap();
    assert_eq!(email_side.event_count(), 2);
    assert_eq!(email_side.traits["last_message"].value, json!("3"));
}

#[test]
fn a_batch_stores_its_valid_records_and_reports_the_invalid_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("atomic.db");
    let customers = Customers::new(SqliteStore::open(&path).unwrap());
    customers.ingest(fixture_events().remove(0)).unwrap();
    let mut bad = fixture_events();
    // A hand-made event whose id does not match its message id fails validation; the rest
    // of the batch is stored. (A store-level failure stores none: see the conformance kit.)
    bad[1].message_id = "tampered".into();
    let results = customers.ingest_batch(bad).unwrap();
    assert!(results[1].is_err());
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 3);
    assert_eq!(customers.store().scan_events().count(), 3);
}
