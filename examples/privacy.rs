//! A customer's privacy requests, end to end, on the embedded SQLite store.
//!
//! Run with `cargo run --example privacy` (no arguments; the store lives in a temporary
//! directory). Ana, known to the company by web, email and phone, asks:
//! 1. what the company holds about her — she gets the export (written next to the store);
//! 2. to stop marketing emails — she withdraws marketing consent on the email channel;
//! 3. to be forgotten — she is erased, and the program searches its own database file
//!    for every value it held about her to show none is left;
//!
//! then an old copy of her data is replayed and refused, and the audit trail is printed.

use std::error::Error;
use std::path::Path;

use chrono::{TimeZone, Utc};
use oneview::privacy::ConsentBasis;
use oneview::{
    Actor, Channel, ConsentChoice, ConsentStatus, Customers, Direction, Event, Identifier,
    IdentifierKind, Interaction, Purpose, Record, SqliteStore,
};
use serde_json::json;

/// What Ana told the company, value by value: the program looks for each in the file.
const ANA_EMAIL: &str = "ana.silva@example.com";
const ANA_PHONE: &str = "+351912345678";
const ANA_NAME: &str = "Ana Silva";
const ANA_ADDRESS: &str = "Rua das Flores 12, Porto";
const ANA_COMPLAINT: &str = "The blender arrived with a cracked jug";

fn main() -> Result<(), Box<dyn Error>> {
    let scratch = tempfile::tempdir()?;
    let path = scratch.path().join("customers.db");
    let customers = Customers::new(SqliteStore::open(&path)?);
    println!("store: {}\n", path.display());

    let history = history()?;
    customers.ingest_batch(history.clone())?;
    let ana = Identifier::email(ANA_EMAIL)?;
    let profile = customers.profile(ana.clone())?.ok_or("Ana is known")?;
    println!(
        "Ana is one customer across {} channels: {} identifiers, {} events, {} interactions",
        profile.channels.len(),
        profile.identifiers.len(),
        profile.event_count(),
        profile.interaction_count()
    );

    // 1. Right of access: everything held, in one document she can take elsewhere.
    let dpo = Actor::new("dpo:lena", "access request AR-2026-031 from the customer");
    let export = customers.export(ana.clone(), &dpo)?;
    let export_path = scratch.path().join("ana-export.json");
    std::fs::write(&export_path, serde_json::to_vec_pretty(&export)?)?;
    println!(
        "\n1. Export ({} v{}) written to {}:\n   {} identifiers, {} traits, {} events, {} interactions, {} feedback, {} consent decisions, {} merges",
        export.format,
        export.version,
        export_path.display(),
        export.identifiers.len(),
        export.traits.len(),
        export.events.len(),
        export.interactions.len(),
        export.feedback.len(),
        export.consent.history.len(),
        export.merges.len()
    );

    // 2. She clicks "unsubscribe" in a newsletter: marketing by email is withdrawn.
    let now = Utc::now();
    let may_email = |customers: &Customers<SqliteStore>| -> Result<bool, Box<dyn Error>> {
        Ok(customers
            .may_contact(
                ana.clone(),
                &Purpose::Marketing,
                &Channel::Email,
                Utc::now(),
            )?
            .allowed)
    };
    println!(
        "\n2. May we send Ana marketing email? {}",
        yes(may_email(&customers)?)
    );
    customers.ingest(
        Event::builder("newsletter", Channel::Email, "Consent Updated")
            .message_id("unsubscribe-ana")
            .occurred_at(now)
            .identifier(IdentifierKind::Email, ANA_EMAIL)
            .consent(
                ConsentChoice::new(Purpose::Marketing, ConsentStatus::Withdrawn)
                    .on(Channel::Email)
                    .wording("newsletter footer: unsubscribe, v4"),
            )
            .build()?,
    )?;
    let decision = customers.may_contact(
        ana.clone(),
        &Purpose::Marketing,
        &Channel::Email,
        Utc::now(),
    )?;
    let rests_on = match &decision.basis {
        ConsentBasis::Decision(effective) => format!(
            "{:?} on {} by {}, wording {:?}",
            effective.status,
            effective
                .channel
                .as_ref()
                .map_or("every channel", |c| c.name()),
            effective.decision.provenance.source,
            effective.decision.choice.wording.as_deref().unwrap_or("-")
        ),
        ConsentBasis::Default(regime) => format!("the default, {regime:?}"),
    };
    println!(
        "   She unsubscribes. May we now? {} (rests on: {rests_on})",
        yes(decision.allowed)
    );
    let sms = customers.may_contact(ana.clone(), &Purpose::Marketing, &Channel::Sms, Utc::now())?;
    println!(
        "   Marketing by SMS, which she did not withdraw: {}",
        yes(sms.allowed)
    );
    // She calls, and asks the agent for no marketing calls either.
    let maria = Actor::new("agent:maria", "customer asked on call CALL-12");
    customers.set_consent(
        ana.clone(),
        ConsentChoice::new(Purpose::Marketing, ConsentStatus::Withdrawn).on(Channel::Phone),
        &maria,
    )?;
    let phone = customers.may_contact(
        ana.clone(),
        &Purpose::Marketing,
        &Channel::Phone,
        Utc::now(),
    )?;
    println!(
        "   She calls; the agent records no marketing calls. May we call? {}",
        yes(phone.allowed)
    );

    // 3. Right to erasure.
    customers.store().checkpoint()?;
    let values = [ANA_EMAIL, ANA_PHONE, ANA_NAME, ANA_ADDRESS, ANA_COMPLAINT];
    println!(
        "\n3. Before erasure the file holds {} of her {} values",
        found_in(&path, &values)?.len(),
        values.len()
    );
    let forget = Actor::new("dpo:lena", "erasure request ER-2026-007 from the customer");
    let report = customers.erase(ana.clone(), &forget)?;
    println!(
        "   Erased: {} profiles, {} identifiers, {} events, {} interactions, {} trait changes, {} consent decisions",
        report.removed.profiles,
        report.removed.identifiers,
        report.removed.events,
        report.removed.interactions,
        report.removed.trait_operations,
        report.removed.consent
    );
    let left = found_in(&path, &values)?;
    println!(
        "   Searching {} and its log for each value: {}",
        path.display(),
        if left.is_empty() {
            "none found".to_owned()
        } else {
            format!("FOUND {left:?}")
        }
    );
    let others = customers.profile(Identifier::email("bo@example.com")?)?;
    println!(
        "   Bo, another customer, is still there: {}",
        yes(others.is_some())
    );

    // An old backup is replayed: Ana's records are refused, Bo's are already stored.
    let results = customers.ingest_batch(history)?;
    let refused = results
        .iter()
        .filter(|r| matches!(r, Err(oneview::Error::Suppressed { .. })))
        .count();
    println!(
        "\n   Replaying the old records: {refused} of {} refused as suppressed; Ana stays forgotten: {}",
        results.len(),
        yes(customers.profile(ana)?.is_none())
    );

    println!("\nAudit trail:");
    for record in customers.audit(..)? {
        let action = serde_json::to_value(&record.action)?;
        println!(
            "   {}  {:<18} {:<12} {}",
            record.at.format("%Y-%m-%d %H:%M:%S"),
            action["action"].as_str().unwrap_or("?"),
            record.actor.name,
            record.actor.reason
        );
    }
    if !left.is_empty() {
        return Err("erased values are still in the database file".into());
    }
    Ok(())
}

/// Ana's history with the company, and one other customer.
fn history() -> Result<Vec<Record>, Box<dyn Error>> {
    let day = |d, h| Utc.with_ymd_and_hms(2026, 3, d, h, 0, 0).unwrap();
    Ok(vec![
        Event::builder("website", Channel::Web, "Signed Up")
            .message_id("web-1")
            .occurred_at(day(2, 9))
            .identifier(IdentifierKind::AnonymousId, "cookie-7f3a")
            .identifier(IdentifierKind::Email, ANA_EMAIL)
            .set_trait("name", json!(ANA_NAME))
            .consent(
                ConsentChoice::new(Purpose::Marketing, ConsentStatus::Granted)
                    .wording("sign-up form, v2"),
            )
            .build()?
            .into(),
        Event::builder("shop", Channel::Web, "Order Completed")
            .message_id("order-77")
            .occurred_at(day(3, 11))
            .identifier(IdentifierKind::Email, ANA_EMAIL)
            .properties(json!({ "total": 89.0, "ship_to": ANA_ADDRESS }))
            .build()?
            .into(),
        Interaction::builder("support-desk", Channel::Phone, Direction::Inbound)
            .key("CALL-9")
            .occurred_at(day(6, 15))
            .identifier(IdentifierKind::Phone, ANA_PHONE)
            .identifier(IdentifierKind::Email, ANA_EMAIL)
            .subject("Damaged delivery")
            .body(ANA_COMPLAINT)
            .build()?
            .into(),
        Event::builder("shop", Channel::Web, "Signed Up")
            .message_id("bo-1")
            .occurred_at(day(4, 10))
            .identifier(IdentifierKind::Email, "bo@example.com")
            .build()?
            .into(),
    ])
}

/// Which of `values` appear anywhere in the database file or its write-ahead log.
fn found_in<'a>(path: &Path, values: &[&'a str]) -> std::io::Result<Vec<&'a str>> {
    let mut bytes = std::fs::read(path)?;
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    if let Ok(log) = std::fs::read(Path::new(&wal)) {
        bytes.extend(log);
    }
    Ok(values
        .iter()
        .copied()
        .filter(|value| bytes.windows(value.len()).any(|w| w == value.as_bytes()))
        .collect())
}

fn yes(answer: bool) -> &'static str {
    if answer { "yes" } else { "no" }
}
