//! Identity resolution throughput and per-event latency.
//!
//! A stream of 100,000 people (override with `ONEVIEW_BENCH_PEOPLE`), each browsing
//! anonymously, identifying with a user id and an email (some with a phone), then acting
//! as a user; 5% of people share a device with another person, and 2% of events arrive
//! late (after events that happened after them). Measured on the embedded default, SQLite
//! in a file: one event per call (latency per event), and in batches of 5,000.
//!
//! ```text
//! cargo bench --bench identity
//! ```
//!
//! The last line of output is one JSON object with the figures.

use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use oneview::identity::Action;
use oneview::{Channel, Customers, Event, IdentifierKind, SqliteStore};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

fn stream(people: usize, rng: &mut StdRng) -> Vec<Event> {
    let start = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let mut timed = Vec::with_capacity(people * 3);
    for person in 0..people {
        // A shared device is the device of the person before.
        let device = if person > 0 && rng.random_bool(0.05) {
            format!("device-{}", person - 1)
        } else {
            format!("device-{person}")
        };
        let first = rng.random_range(0..10_000_000i64);
        let mut push = |n: usize, offset: i64, builder: oneview::EventBuilder| {
            let at = start + chrono::Duration::seconds(first + offset);
            let event = builder
                .message_id(&format!("p{person}-{n}"))
                .occurred_at(at)
                .build()
                .expect("valid");
            timed.push(event);
        };
        push(
            0,
            0,
            Event::builder("bench", Channel::Web, "Page Viewed")
                .identifier(IdentifierKind::AnonymousId, &device),
        );
        let mut identify = Event::builder("bench", Channel::Web, "Signed In")
            .identifier(IdentifierKind::AnonymousId, &device)
            .identifier(IdentifierKind::UserId, &format!("user-{person}"))
            .identifier(
                IdentifierKind::Email,
                &format!("person{person}@example.com"),
            )
            .set_trait("plan", json!("free"));
        if person % 3 == 0 {
            identify = identify.identifier(IdentifierKind::Phone, &format!("+1415{person:07}"));
        }
        push(1, 60, identify);
        push(
            2,
            120,
            Event::builder("bench", Channel::Mobile, "Order Completed")
                .identifier(IdentifierKind::UserId, &format!("user-{person}")),
        );
    }
    timed.sort_by_key(|e| (e.occurred_at, e.id));
    // Late arrivals: 2% of events are delivered a while after their time.
    let mut late = Vec::new();
    let mut arrival = Vec::with_capacity(timed.len());
    for event in timed {
        if rng.random_bool(0.02) {
            late.push((arrival.len() + rng.random_range(50..5_000), event));
        } else {
            arrival.push(event);
        }
    }
    late.sort_by_key(|(position, _)| std::cmp::Reverse(*position));
    for (position, event) in late {
        let position = position.min(arrival.len());
        arrival.insert(position, event);
    }
    arrival
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index].as_secs_f64() * 1e6
}

fn main() {
    let people: usize = std::env::var("ONEVIEW_BENCH_PEOPLE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let mut rng = StdRng::seed_from_u64(42);
    let events = stream(people, &mut rng);
    println!("{} people, {} events", people, events.len());

    let dir = tempfile::tempdir().expect("temp dir");
    let single = Customers::new(SqliteStore::open(dir.path().join("single.db")).expect("open"));
    let mut latencies = Vec::with_capacity(events.len());
    let mut rebuilds = 0;
    let started = Instant::now();
    for event in &events {
        let t = Instant::now();
        let receipt = single.ingest(event.clone()).expect("ingest");
        latencies.push(t.elapsed());
        rebuilds += usize::from(receipt.action == Some(Action::Rebuild));
    }
    let single_time = started.elapsed();
    latencies.sort_unstable();
    let single_rate = events.len() as f64 / single_time.as_secs_f64();
    let (p50, p99) = (percentile(&latencies, 0.5), percentile(&latencies, 0.99));
    println!(
        "sqlite, one at a time: {single_rate:.0} events/s, p50 {p50:.1} µs, p99 {p99:.1} µs, {rebuilds} rebuilds"
    );

    let sqlite = Customers::new(SqliteStore::open(dir.path().join("batched.db")).expect("open"));
    let started = Instant::now();
    for chunk in events.chunks(5_000) {
        for result in sqlite.ingest_batch(chunk.to_vec()).expect("batch") {
            result.expect("valid");
        }
    }
    let sqlite_rate = events.len() as f64 / started.elapsed().as_secs_f64();
    println!("sqlite, batches of 5,000: {sqlite_rate:.0} events/s");
    println!(
        "{}",
        json!({
            "bench": "identity",
            "people": people,
            "events": events.len(),
            "events_per_s": single_rate.round(),
            "p50_us": (p50 * 10.0).round() / 10.0,
            "p99_us": (p99 * 10.0).round() / 10.0,
            "rebuilds": rebuilds,
            "sqlite_batched_events_per_s": sqlite_rate.round(),
        })
    );
}
