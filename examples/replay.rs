//! Replays Segment messages (one JSON object per line) into a SQLite store and prints the
//! resolved profiles, one JSON object per line.
//!
//! ```text
//! cargo run --release --example replay -- [--db FILE] [--received-at TIME] FILE.jsonl...
//! cargo run --release --features postgres --example replay -- \
//!     --postgres URL [--schema NAME] [--received-at TIME] FILE.jsonl...
//! ```
//!
//! Without `--db`, a temporary database is used. With `--postgres`, the store is a
//! PostgreSQL schema: the one `--schema` names, kept, or else a temporary one dropped at
//! the end; the same messages print the same profiles on either backend. Bad lines are reported on stderr with
//! their line number and skipped; a summary ends on stderr. The same messages in any
//! order print the same profiles, and replaying the same files twice gives the same store:
//! every message is stamped as received at `--received-at` (RFC 3339), by default the
//! latest time any message of the input states, and a message with no time of its own
//! (nor a batch `sentAt`) is dated then too. The summary counts those undated messages.

use std::error::Error;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::PathBuf;
use std::time::Instant;

use chrono::{DateTime, Utc};
use oneview::ingest::segment::{self, SegmentOptions};
use oneview::store::IdentityStore;
use oneview::{Customers, Outcome, Record, SqliteStore, Store};
use serde_json::{Map, Value, json};

/// Records ingested per atomic batch.
const BATCH: usize = 5_000;

#[derive(Default)]
struct Summary {
    read: u64,
    ingested: u64,
    duplicates: u64,
    rejected: u64,
    undated: u64,
}

const USAGE: &str =
    "usage: replay [--db FILE | --postgres URL [--schema NAME]] [--received-at TIME] FILE.jsonl...";

fn main() -> Result<(), Box<dyn Error>> {
    let mut db: Option<PathBuf> = None;
    let mut postgres: Option<String> = None;
    let mut schema: Option<String> = None;
    let mut received_at: Option<DateTime<Utc>> = None;
    let mut inputs = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--db" => db = Some(args.next().ok_or("--db needs a file")?.into()),
            "--postgres" => postgres = Some(args.next().ok_or("--postgres needs a URL")?),
            "--schema" => schema = Some(args.next().ok_or("--schema needs a name")?),
            "--received-at" => {
                let text = args.next().ok_or("--received-at needs a time")?;
                let at = DateTime::parse_from_rfc3339(&text)
                    .map_err(|err| format!("--received-at {text:?}: {err}"))?;
                received_at = Some(at.with_timezone(&Utc));
            }
            "-h" | "--help" => {
                eprintln!("{USAGE}");
                return Ok(());
            }
            _ => inputs.push(PathBuf::from(arg)),
        }
    }
    if inputs.is_empty() {
        return Err(USAGE.into());
    }
    let received_at = match received_at {
        Some(at) => at,
        None => latest_stated_time(&inputs)?,
    };
    let temp = tempfile::tempdir()?;
    let store: Box<dyn Store> = match postgres {
        Some(url) => postgres_store(&url, schema.as_deref())?,
        None => Box::new(SqliteStore::open(
            db.unwrap_or_else(|| temp.path().join("replay.db")),
        )?),
    };
    let customers = Customers::new(store);
    let options = SegmentOptions::default();
    let started = Instant::now();
    let mut summary = Summary::default();
    let mut pending: Vec<(String, Record)> = Vec::with_capacity(BATCH);
    for input in &inputs {
        let reader = BufReader::new(File::open(input)?);
        for (number, line) in reader.lines().enumerate() {
            let line = line?;
            if line.trim().is_empty() {
                continue;
            }
            let place = format!("{}:{}", input.display(), number + 1);
            let value: Value = match serde_json::from_str(&line) {
                Ok(value) => value,
                Err(err) => {
                    summary.read += 1;
                    summary.rejected += 1;
                    eprintln!("{place}: not JSON: {err}");
                    continue;
                }
            };
            summary.undated += undated_messages(&value);
            for parsed in segment::parse(&value, &options, received_at) {
                summary.read += 1;
                match parsed {
                    Ok(record) => pending.push((place.clone(), record)),
                    Err(err) => {
                        summary.rejected += 1;
                        eprintln!("{place}: {err}");
                    }
                }
            }
            if pending.len() >= BATCH {
                flush(&customers, &mut pending, &mut summary)?;
            }
        }
    }
    flush(&customers, &mut pending, &mut summary)?;
    let ingest_time = started.elapsed();

    let store = customers.store();
    let mut profiles = Vec::new();
    let (mut merges, mut refused) = (0, 0);
    let mut after = None;
    loop {
        let page = store.customers(after, 1_000)?;
        let Some(&last) = page.last() else { break };
        after = Some(last);
        for id in page {
            let profile = customers
                .profile_with(id, 1)?
                .ok_or("a listed profile vanished")?;
            merges += profile.merges.len();
            refused += store.refusals(id)?.len();
            let mut identifiers: Vec<String> = profile
                .identifiers
                .iter()
                .map(ToString::to_string)
                .collect();
            identifiers.sort();
            let traits: Map<String, Value> = profile
                .traits
                .iter()
                .map(|(key, resolved)| (key.clone(), resolved.value.clone()))
                .collect();
            profiles.push(json!({
                "customer_id": profile.customer_id,
                "identifiers": identifiers,
                "traits": traits,
                "event_count": profile.event_count(),
                "first_seen": profile.first_seen,
                "last_seen": profile.last_seen,
            }));
        }
    }
    // Sorted by what the profile is, so the output does not depend on arrival order.
    profiles.sort_by_key(|p| (p["identifiers"].to_string(), p["customer_id"].to_string()));
    let mut out = BufWriter::new(std::io::stdout().lock());
    for profile in &profiles {
        writeln!(out, "{profile}")?;
    }
    out.flush()?;
    eprintln!(
        "messages read {}, ingested {}, duplicates {}, rejected {}, undated {} (dated {}), profiles {}, merges {merges}, refused links {refused} ({:.2} s)",
        summary.read,
        summary.ingested,
        summary.duplicates,
        summary.rejected,
        summary.undated,
        received_at.to_rfc3339(),
        profiles.len(),
        ingest_time.as_secs_f64(),
    );
    Ok(())
}

/// The time fields a message may state, in the order the Segment reader prefers them.
const TIME_FIELDS: [&str; 3] = ["timestamp", "originalTimestamp", "sentAt"];

/// The latest time any message (or batch envelope) of `inputs` states, read in a first
/// pass so the replay does not depend on the clock nor on the order of the lines; the
/// Unix epoch when none states one.
fn latest_stated_time(inputs: &[PathBuf]) -> Result<DateTime<Utc>, Box<dyn Error>> {
    let mut latest = DateTime::<Utc>::UNIX_EPOCH;
    for input in inputs {
        for line in BufReader::new(File::open(input)?).lines() {
            let Ok(value) = serde_json::from_str::<Value>(&line?) else {
                continue;
            };
            let messages = match value.get("batch") {
                Some(Value::Array(messages)) => messages.iter().chain([&value]).collect(),
                _ => vec![&value],
            };
            for message in messages {
                for field in TIME_FIELDS.iter().chain(&["receivedAt"]) {
                    let stated = message
                        .get(*field)
                        .and_then(Value::as_str)
                        .and_then(|text| DateTime::parse_from_rfc3339(text).ok());
                    if let Some(at) = stated {
                        latest = latest.max(at.with_timezone(&Utc));
                    }
                }
            }
        }
    }
    Ok(latest)
}

/// How many messages of `value` state no time of their own, nor a batch `sentAt`.
fn undated_messages(value: &Value) -> u64 {
    let states = |message: &Value, field: &str| message.get(field).is_some_and(|v| !v.is_null());
    let dated = |message: &Value| TIME_FIELDS.iter().any(|field| states(message, field));
    match value.get("batch") {
        Some(Value::Array(_)) if states(value, "sentAt") => 0,
        Some(Value::Array(messages)) => messages.iter().filter(|m| !dated(m)).count() as u64,
        _ => u64::from(!dated(value)),
    }
}

#[cfg(feature = "postgres")]
fn postgres_store(url: &str, schema: Option<&str>) -> Result<Box<dyn Store>, Box<dyn Error>> {
    use oneview::store::postgres::PostgresStore;
    let temporary = format!("replay_{}", std::process::id());
    Ok(Box::new(
        PostgresStore::builder()
            .schema(schema.unwrap_or(&temporary))
            .temporary(schema.is_none())
            .connect(url)?,
    ))
}

#[cfg(not(feature = "postgres"))]
fn postgres_store(_url: &str, _schema: Option<&str>) -> Result<Box<dyn Store>, Box<dyn Error>> {
    Err("built without PostgreSQL: run with --features postgres".into())
}

fn flush(
    customers: &Customers<Box<dyn Store>>,
    pending: &mut Vec<(String, Record)>,
    summary: &mut Summary,
) -> Result<(), Box<dyn Error>> {
    let (places, records): (Vec<String>, Vec<Record>) = pending.drain(..).unzip();
    for (place, result) in places.iter().zip(customers.ingest_batch(records)?) {
        match result {
            Ok(receipt) if receipt.outcome == Outcome::Stored => summary.ingested += 1,
            Ok(_) => summary.duplicates += 1,
            Err(err) => {
                summary.rejected += 1;
                eprintln!("{place}: {err}");
            }
        }
    }
    Ok(())
}
