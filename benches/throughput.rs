//! Throughput of the SQLite backend against raw rusqlite on the same rows.
//!
//! `cargo bench --bench throughput` ingests 1,000,000 events for 100,000 customers (about
//! three identifiers each, about 200 bytes of properties, 5% of events linking two
//! identifiers) into a file database, then measures lookups, unified-view reads, a full
//! scan and the size on disk. The same event rows are then inserted by plain rusqlite
//! into a table with the same indexes, for the ratio. Everything ends as one JSON line.
//!
//! `ONEVIEW_BENCH_EVENTS` sets a smaller event count for a quick run (customers scale).

use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use oneview::store::sqlite::SqliteStore;
use oneview::store::{EventStore, IdentityStore};
use oneview::{Channel, Customers, Event, EventId, Identifier, IdentifierKind};
use rusqlite::params;
use serde_json::json;

const BATCH: usize = 5_000;
const SAMPLES: usize = 10_000;

struct Workload {
    events: usize,
    customers: usize,
}

impl Workload {
    fn customer_of(&self, n: usize) -> usize {
        // Spread a customer's events across the whole run, as real traffic does.
        (n * 7_919) % self.customers
    }

    fn identifier(&self, customer: usize, which: usize) -> (IdentifierKind, String) {
        match which % 3 {
            0 => (IdentifierKind::AnonymousId, format!("device-{customer:06}")),
            1 => (
                IdentifierKind::Email,
                format!("customer{customer}@example.com"),
            ),
            _ => (IdentifierKind::UserId, format!("user-{customer:06}")),
        }
    }

    fn event(&self, n: usize) -> Event {
        let customer = self.customer_of(n);
        let channel = [Channel::Web, Channel::Email, Channel::Mobile][n % 3].clone();
        let (kind, value) = self.identifier(customer, n / self.customers);
        let mut builder = Event::builder("bench", channel, "Product Viewed")
            .message_id(&format!("msg-{n:08}"))
            .occurred_at(Utc.timestamp_opt(1_750_000_000 + n as i64 * 3, 0).unwrap())
            .identifier(kind, &value)
            .properties(json!({
                "path": format!("/products/{}/details", n % 5_000),
                "referrer": "https://search.example.com/?q=running+shoes",
                "sku": format!("SKU-{:08}", n % 50_000),
                "price": (n % 20_000) as f64 / 100.0,
                "currency": "EUR",
                "campaign": "spring-sale-2026",
            }));
        if n.is_multiple_of(20) {
            // 5% of events carry a second identifier of the same customer: a link.
            let (kind, value) = self.identifier(customer, n / self.customers + 1);
            builder = builder.identifier(kind, &value);
        }
        builder.build().expect("valid event")
    }
}

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

fn percentile(samples: &mut [Duration], p: f64) -> f64 {
    samples.sort_unstable();
    let index = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[index].as_secs_f64() * 1e6
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

/// The same event rows, inserted by plain rusqlite with prepared statements in batched
/// transactions, into a table with the events table's indexes.
fn raw_baseline(path: &Path, workload: &Workload) -> f64 {
    let mut conn = rusqlite::Connection::open(path).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.pragma_update(None, "synchronous", "NORMAL").unwrap();
    // The same page cache the store is given, so the ratio compares logic, not caching.
    conn.pragma_update(None, "cache_size", -64 * 1024).unwrap();
    conn.execute_batch(
        "CREATE TABLE events (
            id BLOB NOT NULL UNIQUE, profile_id BLOB NOT NULL,
            occurred_at INTEGER NOT NULL, channel TEXT NOT NULL, body TEXT NOT NULL);
         CREATE INDEX events_by_profile ON events (profile_id, occurred_at, id);
         CREATE INDEX events_by_time ON events (occurred_at, id);",
    )
    .unwrap();
    let mut elapsed = Duration::ZERO;
    for start in (0..workload.events).step_by(BATCH) {
        let batch: Vec<Event> = (start..(start + BATCH).min(workload.events))
            .map(|n| workload.event(n))
            .collect();
        let began = Instant::now();
        let tx = conn.transaction().unwrap();
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO events (id, profile_id, occurred_at, channel, body)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .unwrap();
            for (n, event) in (start..).zip(&batch) {
                let profile = uuid::Uuid::from_u128(workload.customer_of(n) as u128);
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
        elapsed += began.elapsed();
    }
    workload.events as f64 / elapsed.as_secs_f64()
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
    let mut ingest = Duration::ZERO;
    // Resident memory after each quarter of the events: it should level off once SQLite's
    // page caches are full, not keep growing with the event count.
    let mut rss_quarters = Vec::new();
    for start in (0..workload.events).step_by(BATCH) {
        let batch: Vec<Event> = (start..(start + BATCH).min(workload.events))
            .map(|n| workload.event(n))
            .collect();
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
    let ingest_per_s = workload.events as f64 / ingest.as_secs_f64();
    drop(customers);
    let bytes_per_event = disk_bytes(&path) as f64 / workload.events as f64;
    println!(
        "ingest: {ingest_per_s:.0} events/s; resident MiB after each quarter {rss_quarters:?}"
    );

    let customers = Customers::new(SqliteStore::open(&path).expect("reopen"));
    let sample = |i: usize| {
        let customer = (i * 104_729) % workload.customers;
        let (kind, value) = workload.identifier(customer, i);
        Identifier::new(kind, &value).unwrap()
    };
    let mut lookups = Vec::with_capacity(SAMPLES);
    for i in 0..SAMPLES {
        let identifier = sample(i);
        let began = Instant::now();
        let owner = customers
            .store()
            .owners(std::slice::from_ref(&identifier))
            .unwrap();
        lookups.push(began.elapsed());
        assert!(owner[0].is_some() || workload.events < workload.customers * 3);
    }
    let mut views = Vec::with_capacity(SAMPLES);
    for i in 0..SAMPLES {
        let identifier = sample(i + SAMPLES);
        let began = Instant::now();
        let profile = customers.profile_with(identifier, 20).unwrap();
        views.push(began.elapsed());
        std::hint::black_box(profile);
    }
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

    let raw_per_s = raw_baseline(&dir.path().join("raw.db"), &workload);
    let (lookup_p50, lookup_p99) = (
        percentile(&mut lookups, 0.5),
        percentile(&mut lookups, 0.99),
    );
    let (view_p50, view_p99) = (percentile(&mut views, 0.5), percentile(&mut views, 0.99));
    println!("raw rusqlite insert: {raw_per_s:.0} events/s");
    println!("lookup p50 {lookup_p50:.1} µs, p99 {lookup_p99:.1} µs");
    println!("view p50 {view_p50:.1} µs, p99 {view_p99:.1} µs");
    println!(
        "scan {scan_per_s:.0} events/s; {bytes_per_event:.0} bytes/event; {profiles} profiles"
    );
    println!(
        "{}",
        json!({
            "events": workload.events,
            "customers": workload.customers,
            "profiles": profiles,
            "ingest_events_per_s": ingest_per_s.round(),
            "raw_insert_events_per_s": raw_per_s.round(),
            "ingest_vs_raw": (ingest_per_s / raw_per_s * 1000.0).round() / 1000.0,
            "lookup_p50_us": (lookup_p50 * 10.0).round() / 10.0,
            "lookup_p99_us": (lookup_p99 * 10.0).round() / 10.0,
            "view_p50_us": (view_p50 * 10.0).round() / 10.0,
            "view_p99_us": (view_p99 * 10.0).round() / 10.0,
            "scan_events_per_s": scan_per_s.round(),
            "bytes_per_event": bytes_per_event.round(),
            "rss_mib_by_quarter": rss_quarters,
        })
    );
}
