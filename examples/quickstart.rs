//! One person reaches a company through four channels; every channel ends up seeing the
//! same single profile.
//!
//! Run with `cargo run --example quickstart`: the profiles live in a SQLite file in a
//! temporary directory. Give a path (`cargo run --example quickstart -- customers.db`) to
//! keep the file; running again changes nothing, since every message is ingested once.
//!
//! With the `postgres` feature, `--postgres URL` keeps them in a PostgreSQL database
//! instead, in a schema of their own dropped at the end (add `--schema NAME` to keep
//! one):
//!
//! ```text
//! cargo run --features postgres --example quickstart -- --postgres postgres://postgres@127.0.0.1/test
//! ```

use std::error::Error;

use chrono::{TimeZone, Utc};
use oneview::store::IdentityStore;
use oneview::{
    Channel, Customers, Direction, Event, Identifier, IdentifierKind, Interaction, InteractionKind,
    InteractionStatus, Profile, SqliteStore, Store, TimelineEntry,
};
use serde_json::json;

fn main() -> Result<(), Box<dyn Error>> {
    let scratch = tempfile::tempdir()?;
    let (store, place) = open_store(&scratch)?;
    let customers = Customers::new(store);
    println!("store: {place}\n");
    let day = |d, h| Utc.with_ymd_and_hms(2026, 3, d, h, 0, 0).unwrap();

    // 1. The web: an anonymous visitor browses, known only by a cookie.
    for (hour, path) in [(9, "/"), (10, "/pricing")] {
        customers.ingest(
            Event::builder("website", Channel::Web, "Page Viewed")
                .message_id(&format!("web-{hour}"))
                .occurred_at(day(2, hour))
                .identifier(IdentifierKind::AnonymousId, "cookie-7f3a")
                .properties(json!({ "path": path }))
                .set_trait_once("first_page", json!(path))
                .build()?,
        )?;
    }

    // 2. A newsletter: the same person subscribes by email.
    customers.ingest(
        Event::builder("newsletter", Channel::Email, "Subscribed")
            .message_id("nl-501")
            .occurred_at(day(3, 8))
            .identifier(IdentifierKind::Email, "ana.silva@example.com")
            .set_trait("name", json!("Ana Silva"))
            .build()?,
    )?;

    // 3. A support call: the agent takes her phone number and types her email differently.
    customers.ingest(
        Interaction::builder("support-desk", Channel::Phone, Direction::Inbound)
            .key("CALL-2231")
            .kind(InteractionKind::Call)
            .occurred_at(day(4, 14))
            .identifier(IdentifierKind::Phone, "+351 912 345 678")
            .identifier(IdentifierKind::Email, "  Ana.Silva@EXAMPLE.com ")
            .owner("agent.rui")
            .subject("Which plan fits a team of five?")
            .status(InteractionStatus::Closed)
            .outcome("recommended the team plan")
            .build()?,
    )?;

    // 4. A sign-up in the web app: a user id, the old cookie, and her email.
    let receipt = customers.ingest(
        Event::builder("webapp", Channel::Web, "Signed Up")
            .message_id("signup-88")
            .occurred_at(day(5, 19))
            .identifier(IdentifierKind::UserId, "u-1001")
            .identifier(IdentifierKind::AnonymousId, "cookie-7f3a")
            .identifier(IdentifierKind::Email, "ana.silva@example.com")
            .set_trait("plan", json!("team"))
            .build()?,
    )?;
    println!(
        "sign-up linked the web visitor and the email subscriber: {} profile(s) merged\n",
        receipt.merged.len()
    );

    let profiles = customers.store().customers(None, 10)?;
    println!("profiles in the store: {}", profiles.len());

    let ana = customers
        .profile(Identifier::phone("+351912345678")?)?
        .expect("the phone number is known");
    print_profile(&ana);
    Ok(())
}

/// The store the arguments ask for: a SQLite file (the path given, or one in `scratch`),
/// or with `--postgres URL [--schema NAME]` a PostgreSQL schema; and where it is.
fn open_store(scratch: &tempfile::TempDir) -> Result<(Box<dyn Store>, String), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().position(|arg| arg == "--postgres") {
        Some(at) => {
            let url = args.get(at + 1).ok_or("--postgres needs a URL")?;
            let schema = args
                .iter()
                .position(|arg| arg == "--schema")
                .map(|at| args.get(at + 1).ok_or("--schema needs a name"))
                .transpose()?;
            postgres_store(url, schema.map(String::as_str))
        }
        None => {
            let path = match args.first() {
                Some(path) => path.into(),
                None => scratch.path().join("customers.db"),
            };
            let place = path.display().to_string();
            Ok((Box::new(SqliteStore::open(&path)?), place))
        }
    }
}

#[cfg(feature = "postgres")]
fn postgres_store(
    url: &str,
    schema: Option<&str>,
) -> Result<(Box<dyn Store>, String), Box<dyn Error>> {
    use oneview::store::postgres::PostgresStore;
    let temporary = format!("quickstart_{}", std::process::id());
    let store = PostgresStore::builder()
        .schema(schema.unwrap_or(&temporary))
        .temporary(schema.is_none())
        .connect(url)?;
    let place = format!("{}, schema {}", store.server(), store.schema());
    Ok((Box::new(store), place))
}

#[cfg(not(feature = "postgres"))]
fn postgres_store(
    _url: &str,
    _schema: Option<&str>,
) -> Result<(Box<dyn Store>, String), Box<dyn Error>> {
    Err("built without PostgreSQL: run with --features postgres".into())
}

fn print_profile(profile: &Profile) {
    println!("customer {}", profile.customer_id);
    println!("  identifiers:");
    for identifier in &profile.identifiers {
        println!("    {identifier}");
    }
    println!("  traits:");
    for (key, value) in &profile.traits {
        println!(
            "    {key} = {}   (from {} at {})",
            value.value,
            value.provenance.source,
            value.provenance.observed_at.format("%Y-%m-%d %H:%M")
        );
    }
    println!("  channels:");
    for channel in &profile.channels {
        println!(
            "    {:<8} {} event(s), {} interaction(s), last seen {}",
            channel.channel.to_string(),
            channel.events,
            channel.interactions,
            channel.last_seen.format("%Y-%m-%d %H:%M")
        );
    }
    println!("  merges:");
    for merge in &profile.merges {
        let linking: Vec<String> = merge.linking.iter().map(ToString::to_string).collect();
        println!(
            "    {} absorbed {} on {} via {}",
            merge.survivor,
            merge.absorbed,
            merge.at.format("%Y-%m-%d %H:%M"),
            linking.join(", ")
        );
    }
    println!("  timeline (newest first):");
    for entry in &profile.timeline.items {
        let what = match entry {
            TimelineEntry::Event(event) => format!("{} [{}]", event.name, event.source),
            TimelineEntry::Interaction(call) => format!(
                "{:?} {:?}: {} -> {} [{}]",
                call.direction,
                call.kind,
                call.subject.as_deref().unwrap_or(""),
                call.outcome.as_deref().unwrap_or("open"),
                call.owner.as_deref().unwrap_or("unassigned"),
            ),
            TimelineEntry::Membership(change) => format!(
                "{} segment {}: {}",
                if change.entered { "entered" } else { "left" },
                change.segment,
                change.reasons.join("; ")
            ),
        };
        println!(
            "    {}  {:<6} {what}",
            entry.at().format("%Y-%m-%d %H:%M"),
            entry.channel().map_or("-".to_owned(), ToString::to_string)
        );
    }
}
