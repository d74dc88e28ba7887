//! Helpers the scenario tests share: identifiers and events from short text, and who owns
//! an identifier now.

#![allow(dead_code)]

use std::io::Read;
use std::process::Command;
use std::thread::JoinHandle;

use chrono::{DateTime, Duration, TimeZone, Utc};
use oneview::identity::Policy;
use oneview::store::Store;
use oneview::{Channel, CustomerId, Customers, Event, Identifier, MemoryStore};

#[cfg(feature = "postgres")]
pub(crate) mod postgres;

/// Customers over any backend, so one scenario runs on each.
pub(crate) type Dyn = Customers<Box<dyn Store>>;

/// Customers under `policy` on every backend this build has: memory, SQLite when the
/// `sqlite` feature is on, and PostgreSQL (a schema of its own, dropped after) when the
/// `postgres` feature is on and `ONEVIEW_TEST_POSTGRES` names a server.
pub(crate) fn backends_with(policy: Policy) -> Vec<Dyn> {
    #[cfg_attr(not(feature = "sqlite"), allow(unused_mut))]
    let mut backends: Vec<Dyn> = vec![Customers::with_policy(
        Box::new(MemoryStore::new()),
        policy.clone(),
    )];
    #[cfg(feature = "sqlite")]
    backends.push(Customers::with_policy(
        Box::new(oneview::SqliteStore::open_in_memory().unwrap()),
        policy.clone(),
    ));
    #[cfg(feature = "postgres")]
    if let Ok(url) = std::env::var(postgres::VARIABLE) {
        backends.push(Customers::with_policy(
            Box::new(postgres::temporary_store(&url, "scenario")),
            policy,
        ));
    }
    backends
}

/// Customers under the default policy on every backend this build has.
pub(crate) fn backends() -> Vec<Dyn> {
    backends_with(Policy::default())
}

/// `minute` minutes into the scenarios' day.
pub(crate) fn at(minute: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap() + Duration::minutes(minute)
}

/// An identifier from its canonical text, `kind:value`.
pub(crate) fn id(text: &str) -> Identifier {
    text.parse().unwrap()
}

/// An event with message id `message`, at `minute`, carrying `ids`.
pub(crate) fn event(message: &str, minute: i64, ids: &[&str]) -> Event {
    ids.iter()
        .fold(
            Event::builder("test", Channel::Web, "Acted")
                .message_id(message)
                .occurred_at(at(minute)),
            |b, i| b.with_identifier(id(i)),
        )
        .build()
        .unwrap()
}

/// Each live profile's identifiers, event count and traits, sorted: what two stores that
/// resolved the same records must agree on.
pub(crate) fn state<S: Store>(customers: &Customers<S>) -> Vec<(Vec<String>, u64, String)> {
    let mut out: Vec<_> = customers
        .store()
        .customers(None, 100_000)
        .unwrap()
        .into_iter()
        .map(|id| {
            let p = customers.profile(id).unwrap().unwrap();
            (
                p.identifiers.iter().map(ToString::to_string).collect(),
                p.event_count(),
                serde_json::to_string(&p.traits).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

/// The live profile holding `identifier`, if any.
pub(crate) fn owner(customers: &Dyn, identifier: &str) -> Option<CustomerId> {
    customers.store().owners(&[id(identifier)]).unwrap()[0].map(|o| o.customer)
}

/// This test binary, set to run only its ignored test `name`: how a test starts a child
/// process that runs code of the same test file.
pub(crate) fn child_test(name: &str) -> Command {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command.args([
        "--exact",
        name,
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ]);
    command
}

/// Reads `stream` to its end on a thread of its own, so a child never blocks on a full
/// pipe; joining gives what it wrote.
pub(crate) fn read_all(mut stream: impl Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stream.read_to_string(&mut text);
        text
    })
}

/// The CDNOW sample (`fixtures/cdnow_sample.csv`: the 1997-98 purchases of 2,357
/// customers of an online music store) as `Order Completed` events with a `revenue`, one
/// user id per customer, in a memory store.
pub(crate) fn cdnow_customers() -> Customers<MemoryStore> {
    let text = include_str!("../fixtures/cdnow_sample.csv");
    let customers = Customers::new(MemoryStore::new());
    let mut events = Vec::new();
    for (n, line) in text.lines().enumerate().skip(1) {
        let mut fields = line.split(',');
        let (id, date, amount) = (
            fields.next().unwrap(),
            fields.next().unwrap(),
            fields.next().unwrap(),
        );
        let day = chrono::NaiveDate::parse_from_str(date, "%Y%m%d").unwrap();
        events.push(
            Event::builder("cdnow", Channel::Web, "Order Completed")
                .message_id(&format!("line-{n}"))
                .occurred_at(Utc.from_utc_datetime(&day.and_hms_opt(0, 0, 0).unwrap()))
                .identifier(oneview::IdentifierKind::UserId, id)
                .properties(serde_json::json!({ "revenue": amount.parse::<f64>().unwrap() }))
                .build()
                .unwrap(),
        );
    }
    for chunk in events.chunks(2_000) {
        for result in customers.ingest_batch(chunk.to_vec()).unwrap() {
            result.unwrap();
        }
    }
    customers
}
