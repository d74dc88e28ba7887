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
//! Then a harder stream (see [`scenario`]): shared store tablets, placeholder emails and a
//! switchboard number that no blocklist names, duplicates and 3% late arrivals. It is
//! resolved at 1× (1,500 people, `ONEVIEW_SCENARIO_PEOPLE`) and 10× the size, in time
//! order and as delivered, five times each with the sizes taking turns, and the 10×/1×
//! ratios of the median times are printed (linear is 10; each time runs until the
//! write-ahead log is folded into the database file, see [`resolve_all`]), beside
//! those of the same streams in a `MemoryStore` (resolution without the disk) and of a
//! raw rusqlite insert of the same rows (what SQLite itself costs as it grows); at 1×,
//! pairwise precision and recall against the true people are printed with suspect
//! detection off and on.
//!
//! The last line of output is one JSON object with the figures.

#[path = "common/raw.rs"]
mod raw;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use oneview::identity::{Action, Policy};
use oneview::store::{EventStore, IdentityStore};
use oneview::{Channel, CustomerId, Customers, Event, IdentifierKind, MemoryStore, SqliteStore};
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

/// Values typed by people who will not give theirs, that no blocklist names.
const PLACEHOLDER_EMAILS: &[&str] = &["noemail@example.com", "nomail@shop.de", "keine@firma.de"];
const SWITCHBOARD: &str = "+4930901820";

/// A stream of `people` customers of a shop with a web site, an app and stores, each event
/// tagged with the person it truly is. Each person browses anonymously on a device of
/// their own (5% also on one of the store's shared tablets), signs up with a user id and
/// an email (10% type a placeholder instead, 5% none) and sometimes a phone (3% the
/// company's switchboard), then acts as a user and opens emails. 3% of messages are
/// delivered twice; with `late`, 3% are delivered a while after their time.
fn scenario(people: usize, late: bool, rng: &mut StdRng) -> Vec<(Event, usize)> {
    let start = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let mut timed: Vec<(Event, usize)> = Vec::with_capacity(people * 13);
    for person in 0..people {
        let first = rng.random_range(0..30_000_000i64);
        let device = format!("device-{person}");
        let tablet = rng.random_bool(0.05).then(|| {
            format!(
                "store-tablet-{}",
                rng.random_range(0..(people / 100).max(1))
            )
        });
        let user = format!("user-{person}");
        let email = match rng.random_range(0..100) {
            0..85 => Some(format!("person{person}@example.com")),
            85..95 => {
                Some(PLACEHOLDER_EMAILS[rng.random_range(0..PLACEHOLDER_EMAILS.len())].to_string())
            }
            _ => None,
        };
        let phone = match rng.random_range(0..100) {
            0..37 => Some(format!("+1415{person:07}")),
            37..40 => Some(SWITCHBOARD.to_string()),
            _ => None,
        };
        let mut n = 0;
        let mut push =
            |offset: i64, channel: Channel, name: &str, ids: &[(IdentifierKind, &str)]| {
                let builder = ids.iter().fold(
                    Event::builder("shop", channel, name)
                        .message_id(&format!("p{person}-{n}"))
                        .occurred_at(start + chrono::Duration::seconds(first + offset)),
                    |b, (kind, value)| b.identifier(kind.clone(), value),
                );
                n += 1;
                timed.push((builder.build().expect("valid"), person));
            };
        for visit in 0..3 {
            push(
                visit * 30,
                Channel::Web,
                "Page Viewed",
                &[(IdentifierKind::AnonymousId, &device)],
            );
        }
        if let Some(tablet) = &tablet {
            push(
                200,
                Channel::Store,
                "Product Viewed",
                &[(IdentifierKind::AnonymousId, tablet)],
            );
        }
        let mut signup = vec![
            (IdentifierKind::AnonymousId, device.as_str()),
            (IdentifierKind::UserId, user.as_str()),
        ];
        if let Some(email) = &email {
            signup.push((IdentifierKind::Email, email));
        }
        if let Some(phone) = &phone {
            signup.push((IdentifierKind::Phone, phone));
        }
        push(300, Channel::Web, "Signed Up", &signup);
        if let Some(tablet) = &tablet {
            push(
                400,
                Channel::Store,
                "Signed In",
                &[
                    (IdentifierKind::AnonymousId, tablet),
                    (IdentifierKind::UserId, &user),
                ],
            );
        }
        for action in 0..5 {
            push(
                3_600 * (action + 1),
                Channel::Mobile,
                "Order Completed",
                &[(IdentifierKind::UserId, &user)],
            );
        }
        if let Some(email) = &email {
            push(
                86_400,
                Channel::Email,
                "Email Opened",
                &[(IdentifierKind::Email, email)],
            );
        }
    }
    timed.sort_by_key(|(e, _)| (e.occurred_at, e.id));
    let mut arrival: Vec<(Event, usize)> = Vec::with_capacity(timed.len() * 2);
    let mut delayed = Vec::new();
    for item in timed {
        if rng.random_bool(0.03) {
            arrival.push(item.clone());
        }
        if late && rng.random_bool(0.03) {
            delayed.push((arrival.len() + rng.random_range(50..5_000), item));
        } else {
            arrival.push(item);
        }
    }
    delayed.sort_by_key(|(position, _)| *position);
    let mut delayed = delayed.into_iter().peekable();
    let mut delivered = Vec::with_capacity(arrival.len() + delayed.len());
    for (position, item) in arrival.into_iter().enumerate() {
        while let Some((_, late)) = delayed.next_if(|(at, _)| *at <= position) {
            delivered.push(late);
        }
        delivered.push(item);
    }
    delivered.extend(delayed.map(|(_, late)| late));
    delivered
}

/// How many times the scaling runs resolve each stream, the sizes taking turns. A 1×
/// run takes about a third of a second, and one slow moment can move it by half: the
/// median of five stands where that of three still moved by a tenth.
const SCALING_ROUNDS: usize = 5;

/// Records per batch in the scaling runs: as many as the replay example ingests at once.
const SCENARIO_BATCH: usize = 5_000;

/// `events` in batches of [`SCENARIO_BATCH`], made before a clock starts: copying a
/// stream that no longer fits in the processor's caches is not the work being timed.
fn batches(events: &[(Event, usize)]) -> Vec<Vec<Event>> {
    events
        .chunks(SCENARIO_BATCH)
        .map(|chunk| chunk.iter().map(|(e, _)| e.clone()).collect())
        .collect()
}

/// Ingests `events` into a fresh SQLite file in batches of [`SCENARIO_BATCH`], as the
/// replay example does, then folds the write-ahead log into the database file; returns the
/// store, how long the ingest took, and how long it took with the fold.
///
/// The clock stops once the log is folded because a run leaves in the log whatever was
/// written since the last automatic fold: at 1× that is the whole stream (it never fills
/// the log), at 10× only the last few batches. Without the final fold the 1× run would be
/// excused work the 10× run pays for; with it, both pay for all of theirs, as closing the
/// store would make them. The time without the fold is printed beside it.
fn resolve_all(
    dir: &std::path::Path,
    name: &str,
    policy: Policy,
    events: &[(Event, usize)],
) -> (Customers<SqliteStore>, Duration, Duration) {
    let customers =
        Customers::with_policy(SqliteStore::open(dir.join(name)).expect("open"), policy);
    let batches = batches(events);
    let started = Instant::now();
    for batch in batches {
        for result in customers.ingest_batch(batch).expect("batch") {
            result.expect("valid");
        }
    }
    let ingested = started.elapsed();
    customers.store().checkpoint().expect("fold the log");
    (customers, ingested, started.elapsed())
}

/// Removes the SQLite database at `path` with its log files.
fn remove_database(path: &std::path::Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        // A log that was never made, or already folded in, is no error.
        let _ = std::fs::remove_file(file);
    }
}

/// Ingests `events` into a fresh `MemoryStore` in batches of [`SCENARIO_BATCH`]:
/// resolution without the disk.
fn resolve_in_memory(events: &[(Event, usize)]) -> Duration {
    let customers = Customers::new(MemoryStore::new());
    let batches = batches(events);
    let started = Instant::now();
    for batch in batches {
        for result in customers.ingest_batch(batch).expect("batch") {
            result.expect("valid");
        }
    }
    started.elapsed()
}

/// The baseline: the same rows inserted by plain rusqlite in transactions of
/// [`SCENARIO_BATCH`], one profile per true person, the log folded in at the end as
/// [`resolve_all`] folds it.
fn raw_insert(dir: &std::path::Path, name: &str, events: &[(Event, usize)]) -> Duration {
    let mut conn = raw::open(&dir.join(name));
    let started = Instant::now();
    for chunk in events.chunks(SCENARIO_BATCH) {
        raw::insert(
            &mut conn,
            chunk.iter().map(|(event, person)| {
                let profile = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, &person.to_le_bytes());
                (event, profile)
            }),
        );
    }
    raw::fold_log(&conn);
    started.elapsed()
}

/// Pairwise precision and recall of the profiles against the true people, over events.
fn precision_recall(customers: &Customers<SqliteStore>, events: &[(Event, usize)]) -> (f64, f64) {
    let mut cells: HashMap<(CustomerId, usize), u64> = HashMap::new();
    let mut seen = std::collections::HashSet::new();
    for (event, person) in events {
        if !seen.insert(event.id) {
            continue;
        }
        let stored = customers
            .store()
            .event(event.id)
            .expect("read")
            .expect("stored");
        let live = customers
            .store()
            .profile(stored.customer)
            .expect("read")
            .expect("live")
            .id;
        *cells.entry((live, *person)).or_default() += 1;
    }
    let pairs = |n: u64| n * n.saturating_sub(1) / 2;
    let mut by_profile: HashMap<CustomerId, u64> = HashMap::new();
    let mut by_person: HashMap<usize, u64> = HashMap::new();
    let mut both = 0;
    for (&(profile, person), &n) in &cells {
        *by_profile.entry(profile).or_default() += n;
        *by_person.entry(person).or_default() += n;
        both += pairs(n);
    }
    let predicted: u64 = by_profile.values().map(|&n| pairs(n)).sum();
    let truth: u64 = by_person.values().map(|&n| pairs(n)).sum();
    (both as f64 / predicted as f64, both as f64 / truth as f64)
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

    let small: usize = std::env::var("ONEVIEW_SCENARIO_PEOPLE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_500);
    let mut quality = serde_json::Map::new();
    // Every time of each size and store, over the rounds.
    let mut times: HashMap<(&str, bool, usize), Vec<f64>> = HashMap::new();
    for late in [false, true] {
        let order = if late { "delivered" } else { "time_order" };
        let streams: Vec<(usize, Vec<(Event, usize)>)> = [1, 10]
            .into_iter()
            .map(|scale| {
                let mut rng = StdRng::seed_from_u64(7);
                (scale, scenario(small * scale, late, &mut rng))
            })
            .collect();
        // The sizes take turns, round after round, so that a slow minute of a noisy
        // machine falls on both; each ratio is of the median times.
        for round in 0..SCALING_ROUNDS {
            for (scale, events) in &streams {
                let scale = *scale;
                let (customers, unfolded, took) = resolve_all(
                    dir.path(),
                    &format!("scenario-{order}-{scale}-{round}.db"),
                    Policy::default(),
                    events,
                );
                let memory = resolve_in_memory(events);
                let raw = raw_insert(
                    dir.path(),
                    &format!("raw-{order}-{scale}-{round}.db"),
                    events,
                );
                println!(
                    "scenario {order}, {} people, {} messages, round {round}: {:.2} s; \
                     in a MemoryStore {:.2} s; raw rusqlite insert of its rows {:.2} s",
                    small * scale,
                    events.len(),
                    took.as_secs_f64(),
                    memory.as_secs_f64(),
                    raw.as_secs_f64()
                );
                for (store, time) in [
                    ("sqlite", took),
                    ("unfolded", unfolded),
                    ("memory", memory),
                    ("raw", raw),
                ] {
                    times
                        .entry((store, late, scale))
                        .or_default()
                        .push(time.as_secs_f64());
                }
                if scale == 1 && late && round == 0 {
                    let (off, _, _) = resolve_all(
                        dir.path(),
                        "scenario-off.db",
                        Policy::default().suspect_after(0),
                        events,
                    );
                    for (name, store) in [("without_suspects", &off), ("with_suspects", &customers)]
                    {
                        let (precision, recall) = precision_recall(store, events);
                        println!("scenario {name}: precision {precision:.4}, recall {recall:.4}");
                        quality.insert(name.into(), json!({"precision": (precision * 1e4).round() / 1e4, "recall": (recall * 1e4).round() / 1e4}));
                    }
                }
                drop(customers);
                // Three rounds of the 10x files would crowd a small temporary disk.
                for name in [
                    format!("scenario-{order}-{scale}-{round}.db"),
                    format!("raw-{order}-{scale}-{round}.db"),
                ] {
                    remove_database(&dir.path().join(name));
                }
            }
        }
    }
    let seconds: HashMap<(&str, bool, usize), f64> = times
        .into_iter()
        .map(|(key, mut runs)| {
            runs.sort_by(f64::total_cmp);
            (key, runs[runs.len() / 2])
        })
        .collect();
    for late in [false, true] {
        for scale in [1, 10] {
            println!(
                "median of {SCALING_ROUNDS}, {} at {scale}x: SQLite {:.2} s, MemoryStore {:.2} s, raw insert {:.2} s",
                if late {
                    "as delivered"
                } else {
                    "in time order"
                },
                seconds[&("sqlite", late, scale)],
                seconds[&("memory", late, scale)],
                seconds[&("raw", late, scale)],
            );
        }
    }
    let ratio = |what, late| seconds[&(what, late, 10)] / seconds[&(what, late, 1)];
    println!(
        "scenario 10x/1x time, SQLite: {:.1} in time order, {:.1} as delivered; raw rusqlite insert {:.1}",
        ratio("sqlite", false),
        ratio("sqlite", true),
        ratio("raw", false),
    );
    println!(
        "scenario 10x/1x time, SQLite without the final fold of the log: {:.1} in time order, {:.1} as delivered",
        ratio("unfolded", false),
        ratio("unfolded", true),
    );
    println!(
        "scenario 10x/1x time, MemoryStore: {:.1} in time order, {:.1} as delivered",
        ratio("memory", false),
        ratio("memory", true)
    );
    let rounded = |x: f64| (x * 100.0).round() / 100.0;
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
            "scenario_people": small,
            "scaling_10x_time_order": rounded(ratio("sqlite", false)),
            "scaling_10x_delivered": rounded(ratio("sqlite", true)),
            "scaling_10x_unfolded_time_order": rounded(ratio("unfolded", false)),
            "scaling_10x_unfolded_delivered": rounded(ratio("unfolded", true)),
            "scaling_10x_raw_insert": rounded(ratio("raw", false)),
            "scaling_10x_memory_time_order": rounded(ratio("memory", false)),
            "scaling_10x_memory_delivered": rounded(ratio("memory", true)),
            "scenario_quality": quality,
        })
    );
}
