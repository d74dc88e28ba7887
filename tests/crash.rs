//! Crash safety: a writer killed with SIGKILL at random moments never corrupts the
//! database nor loses an event whose ingest had returned.
//!
//! The test binary runs itself as the child writer (`crash_child`). The number of kills
//! defaults to 20; set `ONEVIEW_CRASH_KILLS` for more.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{TimeZone, Utc};
use oneview::store::sqlite::SqliteStore;
use oneview::{Channel, Customers, Event, EventId, IdentifierKind};

const SOURCE: &str = "crash";

/// The events of batch `batch` in run `run`: people drawn from a small pool, so batches
/// keep linking profiles (merges) across runs.
fn batch(run: u64, batch: u64) -> Vec<Event> {
    (0..40u64)
        .map(|i| {
            let n = run * 7919 + batch * 104_729 + i * 31;
            let person = n % 300;
            let device = (n / 300) % 400;
            Event::builder(SOURCE, Channel::Web, "Clicked")
                .message_id(&format!("r{run}-b{batch}-e{i}"))
                .occurred_at(
                    Utc.timestamp_opt(1_700_000_000 + (n % 100_000) as i64, 0)
                        .unwrap(),
                )
                .identifier(IdentifierKind::Email, &format!("p{person}@x.com"))
                .identifier(IdentifierKind::AnonymousId, &format!("d{device}"))
                .set_trait("n", serde_json::json!(n))
                .build()
                .expect("valid event")
        })
        .collect()
}

/// The child: ingests batches until killed, printing each batch's message ids once its
/// ingest has returned.
#[test]
#[ignore = "the child process of killed_writers_never_corrupt_nor_lose_acknowledged_events"]
fn crash_child() {
    let (Ok(path), Ok(run)) = (
        std::env::var("ONEVIEW_CRASH_DB"),
        std::env::var("ONEVIEW_CRASH_RUN"),
    ) else {
        panic!("run by the crash test, with ONEVIEW_CRASH_DB and ONEVIEW_CRASH_RUN set");
    };
    let run: u64 = run.parse().expect("numeric run");
    let customers = Customers::new(SqliteStore::open(path).expect("open"));
    for number in 0.. {
        let events = batch(run, number);
        let ids: Vec<String> = events.iter().map(|e| e.message_id.clone()).collect();
        for result in customers.ingest_batch(events).expect("batch") {
            result.expect("valid");
        }
        println!("ack {}", ids.join(" "));
    }
}

/// A small generator, seeded from the clock, for kill delays: no dependency needed.
struct Delays(u64);

impl Delays {
    fn next_ms(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        20 + self.0 % 280
    }
}

#[test]
fn killed_writers_never_corrupt_nor_lose_acknowledged_events() {
    let kills: u64 = std::env::var("ONEVIEW_CRASH_KILLS")
        .ok()
        .and_then(|k| k.parse().ok())
        .unwrap_or(20);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.db");
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let mut delays = Delays(seed | 1);
    let mut acknowledged: BTreeSet<String> = BTreeSet::new();

    for run in 0..kills {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "crash_child",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("ONEVIEW_CRASH_DB", &path)
            .env("ONEVIEW_CRASH_RUN", run.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the child writer");
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .filter_map(|line| line.strip_prefix("ack ").map(str::to_owned))
                .flat_map(|ids| ids.split(' ').map(str::to_owned).collect::<Vec<_>>())
                .collect::<Vec<String>>()
        });
        std::thread::sleep(Duration::from_millis(delays.next_ms()));
        child.kill().expect("SIGKILL the child");
        child.wait().unwrap();
        acknowledged.extend(reader.join().unwrap());
        verify(&path, &acknowledged, run);
    }
    assert!(
        !acknowledged.is_empty(),
        "the child never finished a batch before being killed"
    );
    eprintln!(
        "{kills} kills, {} acknowledged events verified",
        acknowledged.len()
    );
}

fn verify(path: &Path, acknowledged: &BTreeSet<String>, run: u64) {
    // Opening checks the schema and recovers the WAL, as an application would.
    drop(SqliteStore::open(path).unwrap_or_else(|e| panic!("after kill {run}: {e}")));
    let conn = rusqlite::Connection::open(path).unwrap();
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok", "after kill {run}");
    let count = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
    assert_eq!(
        count(
            "SELECT count(*) FROM identifiers i LEFT JOIN profiles p ON p.id = i.profile_id WHERE p.id IS NULL"
        ),
        0,
        "after kill {run}: an identifier points at a missing profile"
    );
    assert_eq!(
        count(
            "SELECT count(*) FROM identifiers i JOIN profiles p ON p.id = i.profile_id
             JOIN profiles l ON l.id = p.live_id WHERE l.live_id != l.id"
        ),
        0,
        "after kill {run}: an identifier does not resolve to a live profile"
    );
    assert_eq!(
        count(
            "SELECT count(*) FROM events e LEFT JOIN profiles p ON p.id = e.profile_id WHERE p.id IS NULL"
        ),
        0,
        "after kill {run}: an event points at a missing profile"
    );
    let mut present = conn
        .prepare("SELECT count(*) FROM events WHERE id = ?1")
        .unwrap();
    for message in acknowledged {
        let id = EventId::derive(SOURCE, message);
        let copies: i64 = present
            .query_row([id.as_uuid().as_bytes()], |r| r.get(0))
            .unwrap();
        assert_eq!(
            copies, 1,
            "after kill {run}: acknowledged event {message} stored {copies} times"
        );
    }
}
