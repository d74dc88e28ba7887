//! Segments and computed traits over a large store: kept live on ingest, and evaluated
//! on read.
//!
//! `cargo bench --bench audience` ingests 1,000,000 events of 100,000 customers (orders
//! with a revenue and a category, page views, email opens, over a year, as a live stream
//! arrives) in batches of 5,000 into two file databases, batch by batch in turn: one
//! plain, one keeping 20 segments over 10 computed traits live
//! (`Customers::with_live_segments`, its clock at the time of each batch's last event).
//! Taking turns, a noisy machine slows both alike. Then it times:
//! - `live_maintenance`: ingest with live segments relative to ingest without;
//! - a full evaluation: every segment for every customer (`Customers::segments_of`), on
//!   one thread per core;
//! - the first page (100 members) of a segment holding about a tenth of the customers,
//!   evaluated on read (`Customers::members`) and read from the live membership
//!   (`Customers::live_members`), median of three each.
//!
//! It prints the figures as one JSON line. `ONEVIEW_BENCH_EVENTS` sets a smaller count
//! for a quick run (customers scale); `ONEVIEW_BENCH_TRACE` prints both stores' running
//! ingest times every ten batches.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Instant;

use chrono::{DateTime, Duration, TimeZone, Utc};
use oneview::audience::{Aggregate, Comparison, ComputedTrait, EventFilter, Rule, Segment};
use oneview::store::IdentityStore;
use oneview::store::sqlite::SqliteStore;
use oneview::{Channel, CustomerId, Customers, Event, IdentifierKind};
use serde_json::json;

const BATCH: usize = 5_000;
const CATEGORIES: [&str; 6] = ["books", "music", "games", "films", "toys", "garden"];

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
}

/// Event `n` of `events`: whose, when (in time order over the year, as a live stream
/// arrives) and what, spread evenly and deterministically.
fn event(n: usize, events: usize, customers: usize) -> Event {
    let customer = (n * 7_919) % customers;
    let mix = (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let at = start() + Duration::seconds((n as f64 * 365.0 * 86_400.0 / events as f64) as i64);
    let (channel, name, properties) = match mix >> 61 {
        0..=1 => (
            Channel::Web,
            "Order Completed",
            json!({
                "revenue": ((mix >> 20) % 20_000) as f64 / 100.0,
                "category": CATEGORIES[((mix >> 40) % 6) as usize],
            }),
        ),
        2..=4 => (
            Channel::Web,
            "Page Viewed",
            json!({ "path": format!("/p/{}", mix % 500) }),
        ),
        _ => (
            Channel::Email,
            "Email Opened",
            json!({ "campaign": format!("c{}", mix % 12) }),
        ),
    };
    Event::builder("bench", channel, name)
        .message_id(&format!("e{n}"))
        .occurred_at(at)
        .identifier(IdentifierKind::UserId, &format!("u{customer}"))
        .properties(properties)
        .build()
        .expect("valid event")
}

fn computed() -> Vec<ComputedTrait> {
    let orders = || EventFilter::named("Order Completed");
    let revenue = || "revenue".to_owned();
    let category = || "category".to_owned();
    vec![
        ComputedTrait::new("orders", orders(), Aggregate::Count),
        ComputedTrait::new(
            "revenue_90d",
            orders(),
            Aggregate::Sum {
                property: revenue(),
            },
        )
        .within_days(90),
        ComputedTrait::new(
            "average_order",
            orders(),
            Aggregate::Average {
                property: revenue(),
            },
        ),
        ComputedTrait::new(
            "largest_order",
            orders(),
            Aggregate::Max {
                property: revenue(),
            },
        ),
        ComputedTrait::new(
            "first_order",
            orders(),
            Aggregate::First {
                property: revenue(),
            },
        ),
        ComputedTrait::new(
            "last_category",
            orders(),
            Aggregate::Last {
                property: category(),
            },
        ),
        ComputedTrait::new(
            "favourite_category",
            orders(),
            Aggregate::MostFrequent {
                property: category(),
            },
        ),
        ComputedTrait::new(
            "categories",
            orders(),
            Aggregate::UniqueCount {
                property: category(),
            },
        ),
        ComputedTrait::new(
            "views_30d",
            EventFilter::named("Page Viewed"),
            Aggregate::Count,
        )
        .within_days(30),
        ComputedTrait::new(
            "opens_90d",
            EventFilter::named("Email Opened"),
            Aggregate::Count,
        )
        .within_days(90),
    ]
}

fn segments() -> Vec<Segment> {
    let at_least = |name: &str, n: f64| Rule::Trait {
        name: name.into(),
        test: Comparison::AtLeast(n),
    };
    let performed = |name: &str, n: u64, days: Option<u32>| Rule::Performed {
        events: EventFilter::named(name),
        at_least: Some(n),
        at_most: None,
        within_days: days,
    };
    let mut segments = vec![
        Segment::new("ten percent", at_least("revenue_90d", 175.0)),
        Segment::new("buyers", at_least("orders", 1.0)),
        Segment::new("repeat buyers", at_least("orders", 3.0)),
        Segment::new("big basket", at_least("largest_order", 150.0)),
        Segment::new("explorers", at_least("categories", 3.0)),
        Segment::new(
            "readers",
            Rule::Trait {
                name: "favourite_category".into(),
                test: Comparison::Equals(json!("books")),
            },
        ),
        Segment::new("recent browsers", at_least("views_30d", 1.0)),
        Segment::new("email engaged", at_least("opens_90d", 2.0)),
        Segment::new(
            "browsed, never bought",
            Rule::All {
                rules: vec![
                    performed("Page Viewed", 1, None),
                    Rule::Not {
                        of: Box::new(performed("Order Completed", 1, None)),
                    },
                ],
            },
        ),
        Segment::new(
            "lapsed",
            Rule::All {
                rules: vec![
                    at_least("orders", 1.0),
                    Rule::Not {
                        of: Box::new(performed("Order Completed", 1, Some(120))),
                    },
                ],
            },
        ),
    ];
    for (n, category) in CATEGORIES.iter().enumerate() {
        segments.push(Segment::new(
            &format!("last bought {category}"),
            Rule::Trait {
                name: "last_category".into(),
                test: Comparison::Equals(json!(category)),
            },
        ));
        if n < 4 {
            segments.push(Segment::new(
                &format!("{category} on the web"),
                Rule::All {
                    rules: vec![
                        Rule::UsedChannel {
                            channel: Channel::Web,
                            within_days: Some(60),
                        },
                        Rule::Trait {
                            name: "favourite_category".into(),
                            test: Comparison::Equals(json!(category)),
                        },
                    ],
                },
            ));
        }
    }
    segments
}

fn main() {
    let events: usize = std::env::var("ONEVIEW_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let customers_n = (events / 10).max(1);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let computed = computed();
    let segments = segments();
    assert_eq!(segments.len(), 20);
    assert_eq!(computed.len(), 10);
    let customers = Customers::new(SqliteStore::open(dir.path().join("audience.db")).unwrap());
    // The live store's clock: the time of the stream, as it would be if it were live.
    let clock = Arc::new(AtomicI64::new(start().timestamp()));
    let hands = Arc::clone(&clock);
    let live = Customers::new(SqliteStore::open(dir.path().join("live.db")).unwrap())
        .with_clock(move || {
            DateTime::from_timestamp(hands.load(Ordering::Relaxed), 0).expect("a valid time")
        })
        .with_live_segments(segments.clone(), computed.clone())
        .expect("valid segments");
    let (mut plain_s, mut live_s) = (0.0, 0.0);
    for first in (0..events).step_by(BATCH) {
        let batch: Vec<Event> = (first..(first + BATCH).min(events))
            .map(|n| event(n, events, customers_n))
            .collect();
        let newest = batch.iter().map(|e| e.occurred_at).max().expect("a batch");
        clock.store(newest.timestamp(), Ordering::Relaxed);
        let began = Instant::now();
        for result in customers.ingest_batch(batch.clone()).expect("batch") {
            result.expect("ingested");
        }
        plain_s += began.elapsed().as_secs_f64();
        let began = Instant::now();
        for result in live.ingest_batch(batch).expect("batch") {
            result.expect("ingested");
        }
        live_s += began.elapsed().as_secs_f64();
        if std::env::var("ONEVIEW_BENCH_TRACE").is_ok() && (first / BATCH).is_multiple_of(10) {
            eprintln!(
                "batch {} plain {plain_s:.1} live {live_s:.1}",
                first / BATCH
            );
        }
    }
    let ingest_s = plain_s;
    let live_maintenance = plain_s / live_s;
    eprintln!(
        "ingested {events} events of {customers_n} customers in {plain_s:.1} s, \
         {live_s:.1} s with 20 segments live: {live_maintenance:.3} of the speed"
    );

    let as_of = start() + Duration::days(365);
    let mut ids: Vec<CustomerId> = Vec::new();
    let mut after = None;
    loop {
        let page = customers.store().customers(after, 1000).unwrap();
        ids.extend(&page);
        match page.last() {
            Some(&last) if page.len() == 1000 => after = Some(last),
            _ => break,
        }
    }
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let began = Instant::now();
    let sizes: Vec<usize> = std::thread::scope(|scope| {
        let handles: Vec<_> = ids
            .chunks(ids.len().div_ceil(workers).max(1))
            .map(|part| {
                let (customers, segments, computed) = (&customers, &segments, &computed);
                scope.spawn(move || {
                    let mut sizes = vec![0usize; segments.len()];
                    for &id in part {
                        for (name, _) in customers
                            .segments_of(id, segments, computed, as_of)
                            .unwrap()
                        {
                            let at = segments.iter().position(|s| s.name == name).unwrap();
                            sizes[at] += 1;
                        }
                    }
                    sizes
                })
            })
            .collect();
        handles
            .into_iter()
            .fold(vec![0; segments.len()], |mut total, h| {
                for (t, n) in total.iter_mut().zip(h.join().unwrap()) {
                    *t += n;
                }
                total
            })
    });
    let full_eval_ms = began.elapsed().as_secs_f64() * 1e3;
    eprintln!(
        "full evaluation of {} segments over {} profiles: {full_eval_ms:.0} ms",
        segments.len(),
        ids.len()
    );
    for (segment, size) in segments.iter().zip(&sizes) {
        eprintln!("  {:<28} {size}", segment.name);
    }

    let tenth = &segments[0];
    let mut samples: Vec<f64> = (0..3)
        .map(|_| {
            let began = Instant::now();
            let page = customers
                .members(tenth, &computed, as_of, None, 100)
                .unwrap();
            assert!(!page.members.is_empty());
            began.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    let members_ms = samples[1];
    let share = sizes[0] as f64 / ids.len() as f64;
    eprintln!(
        "first page of {:?} ({:.1}% of customers): {members_ms:.1} ms",
        tenth.name,
        share * 100.0
    );
    // The live store, refreshed to the same time, holds the same members.
    live.refresh(as_of).expect("refreshed");
    let mut samples: Vec<f64> = (0..3)
        .map(|_| {
            let began = Instant::now();
            let page = live.live_members(&tenth.name, None, 100).unwrap();
            assert!(!page.members.is_empty());
            began.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    let live_members_ms = samples[1];
    let on_read = customers
        .members(tenth, &computed, as_of, None, 100)
        .unwrap();
    let from_live = live.live_members(&tenth.name, None, 100).unwrap();
    eprintln!(
        "first page from the live membership: {live_members_ms:.2} ms ({} members, {} evaluated on read)",
        from_live.members.len(),
        on_read.members.len()
    );
    println!(
        "{}",
        json!({
            "bench": "audience",
            "events": events,
            "profiles": ids.len(),
            "segments": segments.len(),
            "computed_traits": computed.len(),
            "ingest_events_per_s": (events as f64 / ingest_s).round(),
            "full_eval_ms": full_eval_ms.round(),
            "members_first_page_ms": (members_ms * 10.0).round() / 10.0,
            "members_segment_share": (share * 1000.0).round() / 1000.0,
            "live_ingest_events_per_s": (events as f64 / live_s).round(),
            "live_maintenance": (live_maintenance * 1000.0).round() / 1000.0,
            "live_members_first_page_ms": (live_members_ms * 100.0).round() / 100.0,
        })
    );
}
