//! The baseline the benchmarks compare with: event rows inserted by plain rusqlite, with a
//! prepared statement in one transaction per batch, into a table with the indexes of the
//! store's events table.

use std::path::Path;

use oneview::Event;
use rusqlite::{Connection, params};
use uuid::Uuid;

/// A fresh baseline database at `path`, set up as the store sets up its own.
pub(crate) fn open(path: &Path) -> Connection {
    let conn = Connection::open(path).expect("open the baseline database");
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.pragma_update(None, "synchronous", "NORMAL").unwrap();
    // The same log length, page cache and memory map the store is given, so a ratio
    // compares logic, not caching.
    conn.pragma_update(None, "cache_size", -64 * 1024).unwrap();
    conn.pragma_update(None, "wal_autocheckpoint", 10_000)
        .unwrap();
    let _: i64 = conn
        .query_row("PRAGMA mmap_size = 1073741824", [], |row| row.get(0))
        .unwrap();
    conn.execute_batch(
        "CREATE TABLE events (
            id BLOB NOT NULL UNIQUE, profile_id BLOB NOT NULL,
            occurred_at INTEGER NOT NULL, channel TEXT NOT NULL, body TEXT NOT NULL);
         CREATE INDEX events_by_profile ON events (profile_id, occurred_at, id);
         CREATE INDEX events_by_time ON events (occurred_at, id);",
    )
    .unwrap();
    conn
}

/// Inserts `rows` (each event with the profile it belongs to) in one transaction; an event
/// stored before is skipped, as the store skips a repeat.
pub(crate) fn insert<'e>(conn: &mut Connection, rows: impl IntoIterator<Item = (&'e Event, Uuid)>) {
    let tx = conn.transaction().unwrap();
    {
        let mut insert = tx
            .prepare_cached(
                "INSERT OR IGNORE INTO events (id, profile_id, occurred_at, channel, body)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .unwrap();
        for (event, profile) in rows {
            insert
                .execute(params![
                    event.id.as_uuid().as_bytes(),
                    profile.as_bytes(),
                    event.occurred_at.timestamp_nanos_opt().unwrap(),
                    event.channel.name(),
                    serde_json::to_string(event).unwrap(),
                ])
                .unwrap();
        }
    }
    tx.commit().unwrap();
}

/// Folds the write-ahead log into the database file and empties it, as
/// `SqliteStore::checkpoint` does for the store.
#[allow(dead_code)] // Not every benchmark that shares this file folds the log.
pub(crate) fn fold_log(conn: &Connection) {
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .expect("fold the baseline's log");
}
