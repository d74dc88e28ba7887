//! Export, erasure that sticks, the suppression list and the audit trail.

mod common;

use std::path::Path;

use chrono::Utc;
use common::{at, backends, id};
use oneview::privacy::{EXPORT_FORMAT, EXPORT_VERSION};
use oneview::{
    Actor, AuditAction, Channel, ConsentChoice, ConsentStatus, Customers, Direction, Error, Event,
    Identifier, IdentifierKind, Interaction, MemoryStore, Outcome, Purpose, Record, SqliteStore,
};
use serde_json::json;

const ERASED_EMAIL: &str = "zebulon.quartermaine@example.org";
const ERASED_PHONE: &str = "+447700900461";
const ERASED_NAME: &str = "Zebulon Quartermaine";
const ERASED_BODY: &str = "my parcel 88-XQ-4412 never came";
const ERASED_PROPERTY: &str = "sofa-velvet-plum-7731";
const ERASED_DEVICE: &str = "device-zq-55102";

fn dpo() -> Actor {
    Actor::new("dpo:lena", "erasure request 2026-118")
}

/// The person to erase, among two others.
fn records() -> Vec<Record> {
    let mut records: Vec<Record> = Vec::new();
    // First known by the phone alone; the call joins the phone to the email.
    records.push(
        Event::builder("sms", Channel::Sms, "Opted In")
            .message_id("z0")
            .occurred_at(at(0))
            .identifier(IdentifierKind::Phone, ERASED_PHONE)
            .build()
            .unwrap()
            .into(),
    );
    records.push(
        Event::builder("web", Channel::Web, "Viewed Product")
            .message_id("z1")
            .occurred_at(at(1))
            .identifier(IdentifierKind::AnonymousId, ERASED_DEVICE)
            .properties(json!({ "sku": ERASED_PROPERTY }))
            .build()
            .unwrap()
            .into(),
    );
    records.push(
        Event::builder("web", Channel::Web, "Signed Up")
            .message_id("z2")
            .occurred_at(at(2))
            .identifier(IdentifierKind::AnonymousId, ERASED_DEVICE)
            .identifier(IdentifierKind::Email, ERASED_EMAIL)
            .set_trait("name", json!(ERASED_NAME))
            .consent(ConsentChoice::new(
                Purpose::Marketing,
                ConsentStatus::Granted,
            ))
            .build()
            .unwrap()
            .into(),
    );
    records.push(
        Interaction::builder("desk", Channel::Phone, Direction::Inbound)
            .key("call-1")
            .occurred_at(at(3))
            .identifier(IdentifierKind::Phone, ERASED_PHONE)
            .identifier(IdentifierKind::Email, ERASED_EMAIL)
            .body(ERASED_BODY)
            .build()
            .unwrap()
            .into(),
    );
    for (n, person) in ["ana", "bo"].iter().enumerate() {
        records.push(
            Event::builder("web", Channel::Web, "Signed Up")
                .message_id(&format!("other-{n}"))
                .occurred_at(at(4 + n as i64))
                .identifier(IdentifierKind::Email, &format!("{person}@example.com"))
                .set_trait("name", json!(format!("{person}-kept-name")))
                .build()
                .unwrap()
                .into(),
        );
    }
    records
}

fn file_bytes(path: &Path) -> Vec<u8> {
    let mut bytes = std::fs::read(path).unwrap();
    for suffix in ["-wal", "-shm", "-journal"] {
        let mut side = path.as_os_str().to_owned();
        side.push(suffix);
        if let Ok(more) = std::fs::read(Path::new(&side)) {
            bytes.extend(more);
        }
    }
    bytes
}

fn holds(bytes: &[u8], text: &str) -> bool {
    bytes
        .windows(text.len())
        .any(|window| window == text.as_bytes())
}

#[test]
fn an_erased_customer_leaves_no_byte_in_the_sqlite_file_and_does_not_come_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("customers.db");
    let erased_values = [
        ERASED_EMAIL,
        ERASED_PHONE,
        ERASED_NAME,
        ERASED_BODY,
        ERASED_PROPERTY,
        ERASED_DEVICE,
    ];
    {
        let customers = Customers::new(SqliteStore::open(&path).unwrap());
        // Enough other people that the identifier index has interior pages, where
        // copies of keys outlive their rows unless the file is rewritten.
        let crowd: Vec<Event> = (0..4000)
            .map(|n| {
                Event::builder("web", Channel::Web, "Visited")
                    .message_id(&format!("crowd-{n}"))
                    .occurred_at(at(0))
                    .identifier(IdentifierKind::Email, &format!("z{n:05}@example.org"))
                    .identifier(IdentifierKind::AnonymousId, &format!("device-zq-{n:05}"))
                    .build()
                    .unwrap()
            })
            .collect();
        customers.ingest_batch(crowd).unwrap();
        customers.ingest_batch(records()).unwrap();
        // Something of each value is on disk before: the search can find them.
        customers.store().checkpoint().unwrap();
        let before = file_bytes(&path);
        for value in erased_values {
            assert!(holds(&before, value), "{value} was never written");
        }
        let report = customers
            .erase(Identifier::email(ERASED_EMAIL).unwrap(), &dpo())
            .unwrap();
        assert_eq!(
            (
                report.removed.events,
                report.removed.interactions,
                report.removed.identifiers
            ),
            (3, 1, 3)
        );
        assert_eq!(
            report.removed.profiles, 2,
            "the phone's profile was merged in"
        );
        assert_eq!(report.removed.consent, 1);
        assert_eq!(report.suppressed.len(), 3);
        let open = file_bytes(&path);
        for value in erased_values {
            assert!(
                !holds(&open, value),
                "{value} is in the file or its log, store open"
            );
        }
    }
    let after = file_bytes(&path);
    for value in erased_values {
        assert!(!holds(&after, value), "{value} is still in the file");
    }
    assert!(holds(&after, "ana-kept-name"), "others are intact");

    let customers = Customers::new(SqliteStore::open(&path).unwrap());
    for person in ["ana", "bo"] {
        let profile = customers
            .profile(Identifier::email(&format!("{person}@example.com")).unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(
            profile.traits["name"].value,
            json!(format!("{person}-kept-name"))
        );
    }
    // A replay of the original input does not bring the person back, and the batch
    // still lands what is not theirs.
    let results = customers.ingest_batch(records()).unwrap();
    for result in &results[..4] {
        assert!(
            matches!(result, Err(Error::Suppressed { .. })),
            "{result:?}"
        );
    }
    for result in &results[4..] {
        assert_eq!(result.as_ref().unwrap().outcome, Outcome::Duplicate);
    }
    assert!(
        customers
            .profile(Identifier::email(ERASED_EMAIL).unwrap())
            .unwrap()
            .is_none()
    );
    let trail = customers.audit(..).unwrap();
    let AuditAction::Erase { suppressed, .. } = &trail[0].action else {
        panic!("{trail:?}")
    };
    assert_eq!(suppressed.len(), 3);
    assert_eq!(trail[0].actor, dpo());
    drop(customers);
    let after_replay = file_bytes(&path);
    for value in erased_values {
        assert!(
            !holds(&after_replay, value),
            "{value} came back with the replay"
        );
    }

    // The person comes back and asks to be known again by their email.
    let customers = Customers::new(SqliteStore::open(&path).unwrap());
    let email = Identifier::email(ERASED_EMAIL).unwrap();
    let back = Actor::new("agent:maria", "customer re-registered, ticket 9051");
    customers.lift_suppression(&email, &back).unwrap();
    assert!(matches!(
        customers.lift_suppression(&email, &back),
        Err(Error::NotSuppressed)
    ));
    let results = customers.ingest_batch(records()).unwrap();
    assert!(
        results[1].is_err(),
        "the device is still suppressed, so is the sign-up carrying it"
    );
    let fresh = Event::builder("web", Channel::Web, "Signed Up")
        .message_id("z-again")
        .identifier(IdentifierKind::Email, ERASED_EMAIL)
        .build()
        .unwrap();
    assert_eq!(customers.ingest(fresh).unwrap().outcome, Outcome::Stored);
    assert_eq!(customers.suppressions().unwrap().len(), 2);
    assert!(matches!(
        customers.audit(..).unwrap().last().unwrap().action,
        AuditAction::SuppressionLifted { .. }
    ));
}

#[test]
fn erasure_takes_every_merged_profile_and_leaves_nothing_reachable() {
    for customers in backends() {
        customers.ingest_batch(records()).unwrap();
        let before = customers
            .profile(Identifier::email(ERASED_EMAIL).unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(before.merges.len(), 1, "the phone call merged two profiles");
        customers.erase(before.customer_id, &dpo()).unwrap();
        for text in [
            format!("email:{ERASED_EMAIL}"),
            format!("phone:{ERASED_PHONE}"),
            format!("anonymous_id:{ERASED_DEVICE}"),
        ] {
            assert!(customers.profile(id(&text)).unwrap().is_none(), "{text}");
        }
        for member in before.merges.iter().map(|m| m.absorbed) {
            assert!(customers.profile(member).unwrap().is_none());
        }
        assert!(matches!(
            customers.erase(before.customer_id, &dpo()),
            Err(Error::UnknownCustomer)
        ));
        assert!(matches!(
            customers.erase(id("email:ana@example.com"), &Actor::new("dpo", "")),
            Err(Error::Invalid(_))
        ));
        assert!(
            customers
                .profile(id("email:ana@example.com"))
                .unwrap()
                .is_some()
        );
    }
}

#[test]
fn an_export_holds_everything_and_is_audited() {
    for customers in backends() {
        customers.ingest_batch(records()).unwrap();
        let export = customers
            .export(Identifier::email(ERASED_EMAIL).unwrap(), &dpo())
            .unwrap();
        assert_eq!(export.format, EXPORT_FORMAT);
        assert_eq!(export.version, EXPORT_VERSION);
        assert_eq!(export.identifiers.len(), 3);
        assert_eq!(export.events.len(), 3);
        assert_eq!(export.merged_profiles.len(), 1);
        assert!(
            export.events[0].occurred_at < export.events[1].occurred_at,
            "oldest first"
        );
        assert_eq!(export.interactions.len(), 1);
        assert_eq!(export.traits["name"].value, json!(ERASED_NAME));
        assert_eq!(export.trait_history.len(), 1);
        assert_eq!(export.consent.history.len(), 1);
        assert_eq!(export.consent.in_force[0].status, ConsentStatus::Granted);
        assert_eq!(export.merges.len(), export.merged_profiles.len());
        let json = serde_json::to_value(&export).unwrap();
        assert_eq!(json["format"], json!("oneview.customer-export"));
        assert!(json.to_string().contains(ERASED_BODY));
        assert!(
            !json.to_string().contains("ana@example.com"),
            "nobody else's data"
        );
        let trail = customers
            .audit(Utc::now() - chrono::Duration::hours(1)..)
            .unwrap();
        assert!(matches!(
            trail[..],
            [oneview::AuditRecord { action: AuditAction::Export { customer }, .. }]
                if customer == export.customer
        ));
    }
}

#[test]
fn operator_corrections_are_on_the_trail_with_who_and_why() {
    let customers = Customers::new(MemoryStore::new());
    customers
        .ingest(common::event(
            "1",
            1,
            &["email:ana@example.com", "phone:+447700900123"],
        ))
        .unwrap();
    let maria = Actor::new("agent:maria", "the phone is her flatmate's");
    customers
        .detach(&id("phone:+447700900123"), &maria)
        .unwrap();
    customers
        .confirm_suspect(
            &id("email:nomail@example.com"),
            &Actor::new("ops:li", "placeholder"),
        )
        .unwrap();
    let trail = customers.audit(..).unwrap();
    assert_eq!(trail.len(), 2);
    assert_eq!(trail[0].actor, maria);
    assert!(matches!(trail[0].action, AuditAction::Detach { .. }));
    assert!(matches!(trail[1].action, AuditAction::Block { .. }));
    let AuditAction::Detach { override_id, .. } = trail[0].action else {
        unreachable!()
    };
    let overrides =
        oneview::store::IdentityStore::overrides(customers.store(), &[id("phone:+447700900123")])
            .unwrap();
    assert_eq!(overrides[0].id, override_id);
    assert_eq!(
        overrides[0].reason.as_deref(),
        Some("the phone is her flatmate's")
    );
    let nameless = Actor::new(" ", "why");
    assert!(matches!(
        customers.detach(&id("email:ana@example.com"), &nameless),
        Err(Error::Invalid(_))
    ));
    assert_eq!(customers.audit(..).unwrap().len(), 2);
    assert!(
        customers.audit(..at(0)).unwrap().is_empty(),
        "the range bounds the trail"
    );
}

#[test]
fn no_rollback_journal_mode_keeps_an_erased_value_either() {
    use oneview::store::sqlite::JournalMode;
    for mode in [
        JournalMode::Persist,
        JournalMode::Truncate,
        JournalMode::Delete,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("customers.db");
        let open = || {
            SqliteStore::builder()
                .journal_mode(mode)
                .open(&path)
                .unwrap()
        };
        {
            let customers = Customers::new(open());
            customers.ingest_batch(records()).unwrap();
            customers
                .erase(Identifier::email(ERASED_EMAIL).unwrap(), &dpo())
                .unwrap();
            let bytes = file_bytes(&path);
            for value in [ERASED_EMAIL, ERASED_NAME, ERASED_BODY, ERASED_PROPERTY] {
                assert!(
                    !holds(&bytes, value),
                    "{value} left with {mode:?}, store open"
                );
            }
        }
        assert!(holds(&file_bytes(&path), "bo-kept-name"));
        let customers = Customers::new(open());
        assert!(
            customers
                .profile(id("email:bo@example.com"))
                .unwrap()
                .is_some()
        );
    }
}

#[test]
fn an_erasure_keeps_what_a_correction_says_about_others() {
    for customers in backends() {
        for (n, ids) in [
            &["email:b@x.io", "anonymous_id:d1"][..],
            &["email:b@x.io", "anonymous_id:d3"],
            &["email:d@x.io", "anonymous_id:d3"],
        ]
        .iter()
        .enumerate()
        {
            customers
                .ingest(common::event(&format!("m{n}"), 10, ids))
                .unwrap();
        }
        // b is not the person of d1, d3 and d@x.io; then d@x.io is erased.
        let ops = Actor::new("ops", "two people");
        customers.detach(&id("email:b@x.io"), &ops).unwrap();
        customers.erase(id("email:d@x.io"), &dpo()).unwrap();
        // A late record rebuilds b's profile: the separation from d1 still holds.
        customers
            .ingest(common::event("late", 1, &["email:b@x.io"]))
            .unwrap();
        let b = customers.profile(id("email:b@x.io")).unwrap().unwrap();
        assert_eq!(b.identifiers, vec![id("email:b@x.io")]);
        assert!(customers.profile(id("anonymous_id:d1")).unwrap().is_none());
        // And b's events no longer carry the erased device.
        let carried: Vec<Identifier> = b
            .timeline
            .items
            .iter()
            .filter_map(|entry| match entry {
                oneview::TimelineEntry::Event(event) => Some(event.identifiers.clone()),
                _ => None,
            })
            .flatten()
            .collect();
        assert!(!carried.contains(&id("anonymous_id:d3")), "{carried:?}");
        assert!(
            carried.contains(&id("anonymous_id:d1")),
            "d1 was nobody's: kept"
        );
    }
}

#[test]
fn retention_removes_old_content_and_keeps_the_customer_whole() {
    use oneview::privacy::RetentionPolicy;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("customers.db");
    let customers = Customers::new(SqliteStore::open(&path).unwrap());
    let old_page = "old-page-path-4471";
    let old_chat = "old-chat-words-9911";
    let fresh = "fresh-order-5520";
    customers
        .ingest_batch([
            Record::from(
                Event::builder("web", Channel::Web, "Page Viewed")
                    .message_id("p1")
                    .occurred_at(at(0))
                    .identifier(IdentifierKind::AnonymousId, "dev-1")
                    .properties(json!({ "path": old_page }))
                    .build()
                    .unwrap(),
            ),
            Event::builder("web", Channel::Web, "Signed Up")
                .message_id("s1")
                .occurred_at(at(1))
                .identifier(IdentifierKind::AnonymousId, "dev-1")
                .identifier(IdentifierKind::Email, "ana@example.com")
                .set_trait("plan", json!("pro"))
                .build()
                .unwrap()
                .into(),
            Interaction::builder("desk", Channel::Chat, Direction::Inbound)
                .key("chat-1")
                .occurred_at(at(2))
                .identifier(IdentifierKind::Email, "ana@example.com")
                .body(old_chat)
                .build()
                .unwrap()
                .into(),
            Event::builder("shop", Channel::Web, "Order Completed")
                .message_id("o1")
                .occurred_at(at(60 * 24 * 100))
                .identifier(IdentifierKind::Email, "ana@example.com")
                .properties(json!({ "sku": fresh }))
                .build()
                .unwrap()
                .into(),
        ])
        .unwrap();
    let now = at(60 * 24 * 120);
    let policy = RetentionPolicy::new()
        .events(365)
        .events_named("Page Viewed", 30)
        .interactions(60);
    let ops = Actor::new("dpo:lena", "quarterly retention run");
    let report = customers.apply_retention(&policy, now, &ops).unwrap();
    assert_eq!((report.events, report.interactions), (1, 1), "{report:?}");
    let again = customers.apply_retention(&policy, now, &ops).unwrap();
    assert_eq!(
        (again.events, again.interactions),
        (0, 0),
        "nothing left to remove"
    );

    let ana = customers
        .profile_with(id("email:ana@example.com"), 100)
        .unwrap()
        .unwrap();
    assert_eq!(ana.identifiers.len(), 2, "the customer is still one");
    assert_eq!(
        ana.traits["plan"].value,
        json!("pro"),
        "a trait keeps its value"
    );
    assert_eq!(
        ana.event_count() + ana.interaction_count(),
        4,
        "every record stays"
    );
    let page = serde_json::to_string(&ana.timeline).unwrap();
    assert!(!page.contains(old_page) && !page.contains(old_chat));
    assert!(
        page.contains(fresh),
        "a record within its time is kept whole"
    );
    let bytes = file_bytes(&path);
    assert!(
        !holds(&bytes, old_page),
        "the old page is gone from the file"
    );
    assert!(
        !holds(&bytes, old_chat),
        "the old chat is gone from the file"
    );
    let trail = customers.audit(..).unwrap();
    assert!(matches!(
        trail[0].action,
        AuditAction::Retention {
            events: 1,
            interactions: 1
        }
    ));
    assert!(matches!(
        customers.apply_retention(&RetentionPolicy::new().interactions(0), now, &ops),
        Err(Error::Retention(_))
    ));
}

#[test]
fn an_export_names_the_segments_the_customer_is_in() {
    use oneview::audience::{EventFilter, Rule, Segment};
    let customers = Customers::new(MemoryStore::new());
    customers.ingest_batch(records()).unwrap();
    let performed = |name: &str| Rule::Performed {
        events: EventFilter::named(name),
        at_least: None,
        at_most: None,
        within_days: None,
    };
    let segments = [
        Segment::new("signed up", performed("Signed Up")),
        Segment::new("bought", performed("Order Completed")),
    ];
    let export = customers
        .export_with_segments(
            Identifier::email(ERASED_EMAIL).unwrap(),
            &dpo(),
            &segments,
            &[],
        )
        .unwrap();
    assert_eq!(export.segments, ["signed up"]);
    assert_eq!(
        customers.audit(..).unwrap().len(),
        1,
        "one export, one audit record"
    );
}
