//! Throughput of the SQLite backend against raw rusqlite on the same rows.
//!
//! `cargo bench --bench throughput` ingests 1,000,000 events for 100,000 customers (about
//! three identifiers each, about 200 bytes of properties, 5% of events linking two
//! identifiers) into a file database, then measures lookups, unified-view reads, a full
//! scan and the size on disk. Each batch the library ingests is followed by a plain
//! rusqlite insert of the same rows into a table with the same indexes, so the ratio
//! (`ingest_vs_raw`) compares them under the same machine weather. The pair runs again
//! with both databases on tmpfs (`/dev/shm`) for `ingest_vs_raw_mem`, where the disk no
//! longer hides the library's own cost. Everything ends as one JSON line.
//!
//! `ONEVIEW_BENCH_EVENTS` sets a smaller event count for a quick run (customers scale).

#[path = "common/raw.rs"]
mod raw;
#[path = "common/workload.rs"]
mod workload;

use std::path::Path;
use std::time::{Duration, Instant};

use oneview::store::sqlite::SqliteStore;
use oneview::store::{EventStore, IdentityStore};
use oneview::{Customers, Event, EventId};
use serde_json::json;
use workload::Workload;

const BATCH: usize = 5_000;
const SAMPLES: usize = 10_000;

/// Memory the process holds privately, in MiB. Mapped file pages (SQLite reads through a
/// memory map) count towards `VmRSS` too, but they are the operating system's file cache,
/// shared and evictable, so they are left out.
fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("RssAnon:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

fn disk_bytes(path: &Path) -> u64 {
    ["", "-wal"]
        .iter()
        .map(|suffix| {
            let mut file = path.as_os_str().to_owned();
            file.push(suffix);
            std::fs::metadata(file).map_or(0, |m| m.len())
        })
        .sum()
}

/// Ingest and raw-insert rates over the whole workload, with each library batch followed
/// by the raw insert of the same rows, so drift on a noisy machine moves both.
struct Interleaved {
    ingest_per_s: f64,
    raw_per_s: f64,
    rss_quarters: Vec<f64>,
}

fn interleaved(
    workload: &Workload,
    customers: &Customers<SqliteStore>,
    raw: &mut rusqlite::Connection,
) -> Interleaved {
    let (mut ingest, mut inserting) = (Duration::ZERO, Duration::ZERO);
    // Resident memory after each quarter of the events: it should level off once SQLite's
    // page caches are full, not keep growing with the event count.
    let mut rss_quarters = Vec::new();
    for start in (0..workload.events).step_by(BATCH) {
        let batch: Vec<Event> = (start..(start + BATCH).min(workload.events))
            .map(|n| workload.event(n))
            .collect();
        let began = Instant::now();
        raw::insert(
            raw,
            (start..).zip(&batch).map(|(n, event)| {
                (
                    event,
                    uuid::Uuid::from_u128(workload.customer_of(n) as u128),
                )
            }),
        );
        inserting += began.elapsed();
        let began = Instant::now();
        for result in customers.ingest_batch(batch).expect("batch") {
            result.expect("valid");
        }
        ingest += began.elapsed();
        let done = (start + BATCH).min(workload.events);
        if done * 4 / workload.events > rss_quarters.len() {
            rss_quarters.push(rss_mib().round());
        }
    }
    Interleaved {
        ingest_per_s: workload.events as f64 / ingest.as_secs_f64(),
        raw_per_s: workload.events as f64 / inserting.as_secs_f64(),
        rss_quarters,
    }
}

fn main() {
    let events: usize = std::env::var("ONEVIEW_BENCH_EVENTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let workload = Workload {
        events,
        customers: (events / 10).max(1),
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bench.db");

    // Ingest, timing only the library's work, not building the events.
    let customers = Customers::new(SqliteStore::open(&path).expect("open"));
    let mut raw = raw::open(&dir.path().join("raw.db"));
    let file = interleaved(&workload, &customers, &mut raw);
    drop((customers, raw));
    let bytes_per_event = disk_bytes(&path) as f64 / workload.events as f64;
    println!(
        "file: ingest {:.0} events/s, raw rusqlite insert {:.0} events/s; private resident MiB after each quarter {:?}",
        file.ingest_per_s, file.raw_per_s, file.rss_quarters
    );

    let customers = Customers::new(SqliteStore::open(&path).expect("reopen"));
    let reads = workload.time_reads(&customers, SAMPLES);
    let began = Instant::now();
    let mut scanned = 0;
    for event in customers.store().scan_events() {
        std::hint::black_box(event.expect("scan"));
        scanned += 1;
    }
    let scan_per_s = scanned as f64 / began.elapsed().as_secs_f64();
    assert_eq!(scanned, workload.events);
    let profiles = customers.store().customers(None, usize::MAX).unwrap().len();
    let first = customers
        .store()
        .event(EventId::derive("bench", "msg-00000000"))
        .unwrap();
    assert!(first.is_some());
    drop(customers);

    // The same on a database kept in memory (tmpfs where there is one), where the disk
    // no longer hides what the library itself costs.
    let memory = {
        let shm = Path::new("/dev/shm");
        let mem_dir = if shm.is_dir() {
            tempfile::tempdir_in(shm).expect("tmpfs dir")
        } else {
            tempfile::tempdir().expect("temp dir")
        };
        let customers =
            Customers::new(SqliteStore::open(mem_dir.path().join("bench.db")).expect("open"));
        let mut raw = raw::open(&mem_dir.path().join("raw.db"));
        interleaved(&workload, &customers, &mut raw)
    };
    println!(
        "memory: ingest {:.0} events/s, raw rusqlite insert {:.0} events/s",
        memory.ingest_per_s, memory.raw_per_s
    );

    reads.print();
    println!(
        "scan {scan_per_s:.0} events/s; {bytes_per_event:.0} bytes/event; {profiles} profiles"
    );
    let mut line = json!({
        "events": workload.events,
        "customers": workload.customers,
        "profiles": profiles,
        "ingest_events_per_s": file.ingest_per_s.round(),
        "raw_insert_events_per_s": file.raw_per_s.round(),
        "ingest_vs_raw": (file.ingest_per_s / file.raw_per_s * 1000.0).round() / 1000.0,
        "ingest_mem_events_per_s": memory.ingest_per_s.round(),
        "raw_insert_mem_events_per_s": memory.raw_per_s.round(),
        "ingest_vs_raw_mem": (memory.ingest_per_s / memory.raw_per_s * 1000.0).round() / 1000.0,
        "scan_events_per_s": scan_per_s.round(),
        "bytes_per_event": bytes_per_event.round(),
        "rss_mib_by_quarter": file.rss_quarters,
    });
    let fields = line.as_object_mut().expect("an object");
    fields.extend(reads.fields());
    println!("{line}");
}
