//! Throughput of the PostgreSQL backend against plain batched inserts of the same rows.
//!
//! `cargo bench --bench postgres` ingests the throughput bench's workload (1,000,000
//! events for 100,000 customers) into a fresh schema, each batch followed by a plain
//! multi-row insert of the same event rows into a table with the events table's indexes
//! (`ingest_vs_raw`; target at least 0.5), then measures identifier lookups and
//! unified-view reads. Last, four threads ingest into fresh schemas under each write mode
//! (`SERIALIZABLE` transactions, and writers taking turns on an advisory lock), rounds
//! interleaved. Everything ends as one JSON line.
//!
//! The server is `ONEVIEW_BENCH_POSTGRES`, else `ONEVIEW_TEST_POSTGRES`, else
//! `postgres://postgres@127.0.0.1/test`; when none answers, the bench says so and exits.
//! `ONEVIEW_BENCH_EVENTS` sets a smaller event count for a quick run.

#[path = "common/workload.rs"]
mod workload;

use std::time::{Duration, Instant};

use oneview::store::IdentityStore;
use oneview::store::postgres::{PostgresStore, Writes};
use oneview::{Customers, Event};
use serde_json::json;
use uuid::Uuid;
use workload::Workload;

const BATCH: usize = 5_000;
const SAMPLES: usize = 5_000;

fn schema_name(tag: &str) -> String {
    format!("ovbench_{tag}_{}", std::process::id())
}

/// The baseline: event rows, as the store keeps them, inserted with one multi-row
/// statement per batch into a table with the store's indexes on events (and the unique
/// event id the store's idempotency rests on).
struct Raw {
    client: postgres::Client,
    schema: String,
}

impl Raw {
    fn create(url: &str) -> Raw {
        let mut client = postgres::Client::connect(url, postgres::NoTls).unwrap();
        let schema = schema_name("raw");
        client
            .batch_execute(&format!(
                "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema};
                 CREATE TABLE {schema}.events (
                     profile_id uuid NOT NULL, occurred_at bigint NOT NULL, id uuid NOT NULL,
                     channel text NOT NULL, body text NOT NULL,
                     PRIMARY KEY (profile_id, occurred_at, id));
                 CREATE UNIQUE INDEX ON {schema}.events (id);
                 CREATE INDEX ON {schema}.events (occurred_at, id);"
            ))
            .unwrap();
        Raw { client, schema }
    }

    fn insert(&mut self, rows: &[(&Event, Uuid)]) {
        let mut columns = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (event, profile) in rows {
            columns.0.push(*profile);
            columns
                .1
                .push(event.occurred_at.timestamp_nanos_opt().unwrap());
            columns.2.push(*event.id.as_uuid());
            columns.3.push(event.channel.name().to_owned());
            columns.4.push(serde_json::to_string(event).unwrap());
        }
        let mut tx = self.client.transaction().unwrap();
        tx.execute(
            &format!(
                "INSERT INTO {}.events (profile_id, occurred_at, id, channel, body)
                 SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::uuid[], $4::text[], $5::text[])
                 ON CONFLICT (id) DO NOTHING",
                self.schema
            ),
            &[&columns.0, &columns.1, &columns.2, &columns.3, &columns.4],
        )
        .unwrap();
        tx.commit().unwrap();
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        let _ = self
            .client
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema));
    }
}

fn store(url: &str, tag: &str, writes: Writes) -> PostgresStore {
    let schema = schema_name(tag);
    let mut client = postgres::Client::connect(url, postgres::NoTls).unwrap();
    client
        .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .unwrap();
    PostgresStore::builder()
        .schema(&schema)
        .writes(writes)
        .temporary(true)
        .connect(url)
        .unwrap()
}

/// Events per second of four threads ingesting `workload` (each a quarter, in batches
/// of 500) into a fresh store under `writes`.
fn concurrent(url: &str, workload: &Workload, writes: Writes) -> f64 {
    let customers = Customers::new(store(url, "concurrent", writes));
    let began = Instant::now();
    std::thread::scope(|scope| {
        for thread in 0..4 {
            let customers = &customers;
            scope.spawn(move || {
                let mine: Vec<Event> = (thread..workload.events)
                    .step_by(4)
                    .map(|n| workload.event(n))
                    .collect();
                for chunk in mine.chunks(500) {
                    for result in customers.ingest_batch(chunk.to_vec()).unwrap() {
                        result.unwrap();
                    }
                }
            });
        }
    });
    workload.events as f64 / began.elapsed().as_secs_f64()
}

fn main() {
    let url = ["ONEVIEW_BENCH_POSTGRES", "ONEVIEW_TEST_POSTGRES"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|url| !url.is_empty()))
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1/test".to_owned());
    if let Err(err) = postgres::Client::connect(&url, postgres::NoTls) {
        println!(
            "postgres bench skipped: no PostgreSQL server answered ({err}); set ONEVIEW_BENCH_POSTGRES to one"
        );
        return;
    }
    let events: usize = std::env::var("ONEVIEW_BENCH_EVENTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let workload = Workload {
        events,
        customers: (events / 10).max(1),
    };

    let customers = Customers::new(store(&url, "ingest", Writes::Serializable));
    let mut raw = Raw::create(&url);
    let (mut ingest, mut inserting) = (Duration::ZERO, Duration::ZERO);
    for start in (0..workload.events).step_by(BATCH) {
        let batch: Vec<Event> = (start..(start + BATCH).min(workload.events))
            .map(|n| workload.event(n))
            .collect();
        let rows: Vec<(&Event, Uuid)> = (start..)
            .zip(&batch)
            .map(|(n, event)| (event, Uuid::from_u128(workload.customer_of(n) as u128)))
            .collect();
        let began = Instant::now();
        raw.insert(&rows);
        inserting += began.elapsed();
        let began = Instant::now();
        for result in customers.ingest_batch(batch).expect("batch") {
            result.expect("valid");
        }
        ingest += began.elapsed();
    }
    drop(raw);
    let ingest_per_s = workload.events as f64 / ingest.as_secs_f64();
    let raw_per_s = workload.events as f64 / inserting.as_secs_f64();
    println!("ingest {ingest_per_s:.0} events/s, plain batched insert {raw_per_s:.0} events/s");

    let reads = workload.time_reads(&customers, SAMPLES);
    let profiles = customers.store().customers(None, usize::MAX).unwrap().len();
    drop(customers);
    reads.print();

    // Four writers at once, each write mode in turn, twice, so drift moves both.
    let small = Workload {
        events: (workload.events / 10).max(1_000),
        customers: (workload.events / 100).max(100),
    };
    let (mut serializable, mut turns) = (Vec::new(), Vec::new());
    for _ in 0..2 {
        serializable.push(concurrent(&url, &small, Writes::Serializable));
        turns.push(concurrent(&url, &small, Writes::OneAtATime));
    }
    let mean = |rates: &[f64]| rates.iter().sum::<f64>() / rates.len() as f64;
    let (serializable, turns) = (mean(&serializable), mean(&turns));
    println!(
        "4 writers, {} events: serializable {serializable:.0} events/s, taking turns {turns:.0} events/s",
        small.events
    );
    let mut line = json!({
        "events": workload.events,
        "customers": workload.customers,
        "profiles": profiles,
        "ingest_events_per_s": ingest_per_s.round(),
        "raw_insert_events_per_s": raw_per_s.round(),
        "ingest_vs_raw": (ingest_per_s / raw_per_s * 1000.0).round() / 1000.0,
        "four_writers_serializable_events_per_s": serializable.round(),
        "four_writers_taking_turns_events_per_s": turns.round(),
    });
    let fields = line.as_object_mut().expect("an object");
    fields.extend(reads.fields());
    println!("{line}");
}
