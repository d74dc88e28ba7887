//! The accountability report over a large help desk on SQLite.
//!
//! `cargo bench --bench service` ingests 1,000,000 interactions for 100,000 customers
//! (250,000 conversations of four contacts each: the customer asks, an agent answers, the
//! customer writes again, the agent closes; one in five conversations ends with a CSAT
//! answer, and one in ten customers answers an NPS survey by event) into a file database.
//! It then times `Customers::service_report` over the whole range, grouped by owner, and
//! a plain rusqlite scan of the same interaction rows, every column read and the JSON
//! ones parsed (the least any report must do), alternating the two so machine weather moves both. It prints the
//! median of each, their ratio, and the memory the report held, as one JSON line.
//!
//! `ONEVIEW_BENCH_INTERACTIONS` sets a smaller count for a quick run (customers scale);
//! `ONEVIEW_BENCH_DATA=FILE.db` keeps the ingested database in `FILE.db` and reuses it on
//! later runs (delete it after a change to what ingest stores).

use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use oneview::conversation::report::ReportOptions;
use oneview::conversation::sla::{BusinessHours, Metric, SlaPolicy, Target};
use oneview::store::sqlite::SqliteStore;
use oneview::{
    Channel, Customers, Direction, Event, IdentifierKind, Interaction, InteractionKind,
    InteractionStatus, Record,
};
use serde_json::json;

const CONTACTS: usize = 4;
const BATCH_CONVERSATIONS: usize = 1_250;
const ROUNDS: usize = 3;

struct Workload {
    conversations: usize,
    customers: usize,
}

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 9, 1, 0, 0, 0).unwrap()
}

impl Workload {
    fn customer_of(&self, conversation: usize) -> usize {
        // A customer's conversations are spread over the whole range, as real traffic is.
        (conversation * 7_919) % self.customers
    }

    /// The records of conversation `n`: four contacts, a CSAT answer on one in five, and
    /// an NPS survey event on the first conversation of one customer in ten.
    fn records(&self, n: usize) -> Vec<Record> {
        let customer = self.customer_of(n);
        let email = format!("customer{customer}@example.com");
        let opened = start() + chrono::Duration::seconds(n as i64 * 10);
        let channel = [
            Channel::Email,
            Channel::Chat,
            Channel::Phone,
            Channel::Social,
        ][n % 4]
            .clone();
        let agent = format!("agent.{:02}", n % 40);
        let minutes = |m: i64| opened + chrono::Duration::minutes(m);
        let priority = ["low", "normal", "high"][n % 3];
        let reply_after = 5 + (n * 37 % 600) as i64;
        let contact = |i: usize, direction: Direction, at: DateTime<Utc>| {
            let mut builder = Interaction::builder("helpdesk", channel.clone(), direction)
                .key(&format!("c{n}-{i}"))
                .thread(&format!("case-{n}"))
                .identifier(IdentifierKind::Email, &email)
                .subject("Where is my order?")
                .body("Hello, my order has not arrived yet. Could you look into it, please?")
                .occurred_at(at)
                .properties(json!({"priority": priority}));
            if direction == Direction::Outbound {
                builder = builder.owner(&agent);
            }
            builder
        };
        let mut records: Vec<Record> = vec![
            contact(0, Direction::Inbound, minutes(0))
                .build()
                .unwrap()
                .into(),
            contact(1, Direction::Outbound, minutes(reply_after))
                .status(InteractionStatus::Pending)
                .build()
                .unwrap()
                .into(),
        ];
        let last = if n.is_multiple_of(5) {
            contact(2, Direction::Inbound, minutes(reply_after + 30))
                .kind(InteractionKind::Feedback)
                .properties(json!({"csat": 1 + n % 5, "feedback_kind": "survey_answer"}))
        } else {
            contact(2, Direction::Inbound, minutes(reply_after + 30))
        };
        records.push(last.build().unwrap().into());
        records.push(
            contact(3, Direction::Outbound, minutes(reply_after + 90))
                .status(InteractionStatus::Closed)
                .build()
                .unwrap()
                .into(),
        );
        if n < self.customers && customer.is_multiple_of(10) {
            records.push(
                Event::builder("survey-tool", Channel::Email, "NPS Survey Answered")
                    .message_id(&format!("nps-{n}"))
                    .identifier(IdentifierKind::Email, &email)
                    .occurred_at(minutes(reply_after + 600))
                    .properties(json!({"score": n % 11, "comment": "Thanks"}))
                    .build()
                    .unwrap()
                    .into(),
            );
        }
        records
    }
}

fn ingest(workload: &Workload, customers: &Customers<SqliteStore>) {
    for first in (0..workload.conversations).step_by(BATCH_CONVERSATIONS) {
        let batch: Vec<Record> = (first..(first + BATCH_CONVERSATIONS).min(workload.conversations))
            .flat_map(|n| workload.records(n))
            .collect();
        for receipt in customers.ingest_batch(batch).expect("batch") {
            receipt.expect("valid record");
        }
    }
}

/// A field of `/proc/self/status`, in MiB.
fn status_mib(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

/// Lets `VmHWM` measure from now on (Linux: writing 5 to `clear_refs` resets it).
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// The floor: every column of every interaction row read in storage order by plain
/// rusqlite, and the JSON ones (identifiers, properties) parsed.
fn raw_scan(path: &Path) -> usize {
    let conn = rusqlite::Connection::open(path).expect("open for the raw scan");
    let _: i64 = conn
        .query_row("PRAGMA mmap_size = 1073741824", [], |row| row.get(0))
        .unwrap();
    let mut statement = conn.prepare("SELECT * FROM interactions").unwrap();
    let columns = statement.column_count();
    let mut rows = statement.query([]).unwrap();
    let mut count = 0;
    while let Some(row) = rows.next().unwrap() {
        for column in 0..columns {
            count += match row.get_ref(column).unwrap() {
                rusqlite::types::ValueRef::Text(text) if text.first() == Some(&b'[') => {
                    serde_json::from_slice::<Vec<String>>(text).unwrap().len()
                }
                rusqlite::types::ValueRef::Text(text) if text.first() == Some(&b'{') => {
                    serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(text)
                        .unwrap()
                        .len()
                }
                rusqlite::types::ValueRef::Text(text) => String::from_utf8_lossy(text).len(),
                _ => 1,
            };
        }
    }
    count
}

fn median(mut samples: Vec<Duration>) -> f64 {
    samples.sort_unstable();
    samples[samples.len() / 2].as_secs_f64() * 1e3
}

fn main() {
    let interactions: usize = std::env::var("ONEVIEW_BENCH_INTERACTIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let workload = Workload {
        conversations: (interactions / CONTACTS).max(1),
        customers: (interactions / 10).max(1),
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let kept = std::env::var_os("ONEVIEW_BENCH_DATA").map(std::path::PathBuf::from);
    let path = kept
        .clone()
        .unwrap_or_else(|| dir.path().join("service.db"));
    if kept.is_none() || !path.exists() {
        let began = Instant::now();
        let customers = Customers::new(SqliteStore::open(&path).expect("open"));
        ingest(&workload, &customers);
        customers.store().checkpoint().expect("checkpoint");
        println!(
            "ingested {} interactions for {} customers in {:.1} s",
            workload.conversations * CONTACTS,
            workload.customers,
            began.elapsed().as_secs_f64()
        );
    }

    let customers = Customers::new(SqliteStore::open(&path).expect("reopen"));
    let policy = SlaPolicy::new(vec![
        Target::new(Metric::FirstReply, 4 * 3600),
        Target::new(Metric::FirstReply, 3600).with_priority("high"),
        Target::new(Metric::NextReply, 8 * 3600),
        Target::new(Metric::Resolution, 2 * 86_400),
    ])
    .in_business_hours(BusinessHours::weekdays(
        "Europe/Berlin",
        chrono::NaiveTime::from_hms_opt(8, 0, 0).unwrap(),
        chrono::NaiveTime::from_hms_opt(18, 0, 0).unwrap(),
    ))
    .paused_while_pending();
    let options = ReportOptions::new(start(), start() + chrono::Duration::days(60), policy);

    let (mut reports, mut scans) = (Vec::new(), Vec::new());
    let (mut peak_mib, mut anon_growth_mib) = (0.0_f64, 0.0_f64);
    let mut report = None;
    for _ in 0..ROUNDS {
        let anon_before = status_mib("RssAnon:");
        reset_peak();
        let began = Instant::now();
        report = Some(customers.service_report(options.clone()).expect("report"));
        reports.push(began.elapsed());
        peak_mib = peak_mib.max(status_mib("VmHWM:"));
        anon_growth_mib = anon_growth_mib.max(status_mib("RssAnon:") - anon_before);

        let began = Instant::now();
        let decoded = raw_scan(&path);
        scans.push(began.elapsed());
        assert!(decoded >= workload.conversations * CONTACTS);
    }
    let report = report.expect("at least one round");
    assert_eq!(report.total.opened as usize, workload.conversations);
    let (report_ms, scan_ms) = (median(reports), median(scans));
    println!(
        "report over {} conversations: {report_ms:.0} ms (raw scan {scan_ms:.0} ms), peak resident {peak_mib:.0} MiB",
        report.total.opened
    );
    println!(
        "{}",
        json!({
            "bench": "service",
            "interactions": workload.conversations * CONTACTS,
            "customers": workload.customers,
            "report_ms": (report_ms * 10.0).round() / 10.0,
            "raw_scan_ms": (scan_ms * 10.0).round() / 10.0,
            "report_vs_scan": (report_ms / scan_ms * 100.0).round() / 100.0,
            "peak_rss_mib": peak_mib.round(),
            "anon_growth_mib": anon_growth_mib.round(),
        })
    );
}
