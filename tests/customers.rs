//! The facade end to end: ingest, resolve, view.

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use oneview::identity::Action;
use oneview::store::{EventStore, IdentityStore};
use oneview::{
    Channel, Customers, Direction, Error, Event, Identifier, IdentifierKind, Interaction,
    InteractionStatus, MemoryStore, Outcome, PageRequest, TimelineEntry, ValidationError,
};
use serde_json::json;

fn at(minute: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap() + Duration::minutes(minute)
}

fn event(message: &str, minute: i64, ids: &[(IdentifierKind, &str)]) -> Event {
    ids.iter()
        .fold(
            Event::builder("test", Channel::Web, "Clicked")
                .message_id(message)
                .occurred_at(at(minute)),
            |builder, (kind, raw)| builder.identifier(kind.clone(), raw),
        )
        .build()
        .expect("valid event")
}

fn customers() -> Customers<MemoryStore> {
    Customers::new(MemoryStore::new())
}

#[test]
fn unknown_identifiers_create_a_profile_and_known_ones_attach() {
    let customers = customers();
    let first = customers
        .ingest(event("1", 0, &[(IdentifierKind::Email, "a@x.com")]))
        .unwrap();
    assert_eq!(first.action, Some(Action::Create));
    let second = customers
        .ingest(event(
            "2",
            1,
            &[
                (IdentifierKind::Email, "A@X.com"),
                (IdentifierKind::UserId, "u1"),
            ],
        ))
        .unwrap();
    assert_eq!(second.action, Some(Action::Attach));
    assert_eq!(second.customer, first.customer);
    let profile = customers
        .profile(Identifier::user_id("u1").unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(profile.identifiers.len(), 2);
    assert_eq!(profile.event_count(), 2);
}

#[test]
fn the_same_event_twice_is_stored_once() {
    let customers = customers();
    let e = event("dup", 0, &[(IdentifierKind::Email, "a@x.com")]);
    let stored = customers.ingest(e.clone()).unwrap();
    let again = customers.ingest(e).unwrap();
    assert_eq!(stored.outcome, Outcome::Stored);
    assert_eq!(again.outcome, Outcome::Duplicate);
    assert_eq!(again.customer, stored.customer);
    assert_eq!(again.action, None);
    let profile = customers.profile(stored.customer).unwrap().unwrap();
    assert_eq!(profile.event_count(), 1);
}

#[test]
fn an_event_linking_profiles_merges_them_into_the_oldest() {
    let customers = customers();
    // The anonymous profile's evidence is older even though it arrives second.
    let email = customers
        .ingest(event("1", 50, &[(IdentifierKind::Email, "a@x.com")]))
        .unwrap();
    let device = customers
        .ingest(event("2", 10, &[(IdentifierKind::AnonymousId, "dev-1")]))
        .unwrap();
    let link = customers
        .ingest(event(
            "3",
            60,
            &[
                (IdentifierKind::AnonymousId, "dev-1"),
                (IdentifierKind::Email, "a@x.com"),
            ],
        ))
        .unwrap();
    assert_eq!(link.action, Some(Action::Merge));
    assert_eq!(
        link.customer, device.customer,
        "the profile with the oldest evidence survives"
    );
    assert_eq!(link.merged, vec![email.customer]);

    let via_old_id = customers.profile(email.customer).unwrap().unwrap();
    assert_eq!(
        via_old_id.customer_id, device.customer,
        "a merged id still finds the profile"
    );
    assert_eq!(via_old_id.merged_ids, vec![email.customer]);
    assert_eq!(via_old_id.event_count(), 3);
    let merge = &via_old_id.merges[0];
    assert_eq!(merge.evidence, Some(oneview::EventId::derive("test", "3")));
    assert_eq!(merge.at, at(60));
    assert_eq!(
        customers.store().customers(None, 10).unwrap(),
        vec![device.customer]
    );
}

#[test]
fn an_event_with_no_identifiers_gets_a_fresh_profile() {
    let customers = customers();
    let a = customers.ingest(event("1", 0, &[])).unwrap();
    let b = customers.ingest(event("2", 0, &[])).unwrap();
    assert_ne!(a.customer, b.customer);
    assert_eq!(a.action, Some(Action::Create));
}

#[test]
fn traits_resolve_by_event_time_not_arrival() {
    let customers = customers();
    let plan = |message: &str, minute: i64, value: &str| {
        Event::builder("crm", Channel::Sales, "Plan Changed")
            .message_id(message)
            .occurred_at(at(minute))
            .identifier(IdentifierKind::UserId, "u1")
            .set_trait("plan", json!(value))
            .set_trait_once("first_plan", json!(value))
            .build()
            .unwrap()
    };
    for e in [
        plan("c", 30, "pro"),
        plan("a", 10, "free"),
        plan("b", 20, "team"),
    ] {
        customers.ingest(e).unwrap();
    }
    let profile = customers
        .profile(Identifier::user_id("u1").unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(profile.traits["plan"].value, json!("pro"));
    assert_eq!(profile.traits["first_plan"].value, json!("free"));
    let provenance = &profile.traits["plan"].provenance;
    assert_eq!(provenance.source, "crm");
    assert_eq!(provenance.observed_at, at(30));
    assert_eq!(
        provenance.event_id,
        Some(oneview::EventId::derive("crm", "c"))
    );
}

#[test]
fn interactions_update_in_place_and_older_versions_are_ignored() {
    let customers = customers();
    let ticket = |status, updated: i64, with_identity: bool| {
        let builder = Interaction::builder("desk", Channel::Support, Direction::Inbound)
            .key("T-9")
            .occurred_at(at(0))
            .updated_at(at(updated))
            .status(status);
        let builder = if with_identity {
            builder.identifier(IdentifierKind::Email, "a@x.com")
        } else {
            builder
        };
        builder.build().unwrap()
    };
    let opened = customers
        .ingest(ticket(InteractionStatus::Open, 0, true))
        .unwrap();
    // A status change that names nobody stays with the same customer.
    let closed = customers
        .ingest(ticket(InteractionStatus::Closed, 30, false))
        .unwrap();
    assert_eq!(closed.outcome, Outcome::Stored);
    assert_eq!(closed.customer, opened.customer);
    let stale = customers
        .ingest(ticket(InteractionStatus::Pending, 10, true))
        .unwrap();
    assert_eq!(stale.outcome, Outcome::Outdated);

    let profile = customers.profile(opened.customer).unwrap().unwrap();
    assert_eq!(profile.interaction_count(), 1);
    match &profile.timeline.items[0] {
        TimelineEntry::Interaction(i) => {
            assert_eq!(i.status, InteractionStatus::Closed);
            assert_eq!(i.closed_at, Some(at(30)));
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn the_timeline_merges_channels_and_pages_without_gaps() {
    let customers = customers();
    let email = (IdentifierKind::Email, "a@x.com");
    for i in 0..7 {
        customers
            .ingest(event(
                &format!("e{i}"),
                i * 10,
                std::slice::from_ref(&email),
            ))
            .unwrap();
        let call = Interaction::builder("desk", Channel::Phone, Direction::Outbound)
            .key(&format!("c{i}"))
            .occurred_at(at(i * 10 + 5))
            .identifier(email.0.clone(), email.1)
            .build()
            .unwrap();
        customers.ingest(call).unwrap();
    }
    let customer = customers
        .profile(Identifier::email("a@x.com").unwrap())
        .unwrap()
        .unwrap()
        .customer_id;
    let mut seen = Vec::new();
    let mut request = PageRequest::first(3);
    loop {
        let page = customers.timeline(customer, request).unwrap();
        assert!(page.items.len() <= 3);
        seen.extend(page.items.iter().map(TimelineEntry::at));
        match page.next {
            Some(cursor) => request = PageRequest::after(cursor, 3),
            None => break,
        }
    }
    let expected: Vec<DateTime<Utc>> = (0..14).rev().map(|i| at(i * 5)).collect();
    assert_eq!(
        seen, expected,
        "every entry once, newest first, alternating channels"
    );

    let profile = customers.profile_with(customer, 4).unwrap().unwrap();
    assert_eq!(profile.timeline.items.len(), 4);
    assert_eq!(profile.first_seen, Some(at(0)));
    assert_eq!(profile.last_seen, Some(at(65)));
    assert_eq!(profile.channels.len(), 2);
}

#[test]
fn an_invalid_record_is_refused_and_nothing_is_stored() {
    let customers = customers();
    let mut tampered = event("1", 0, &[(IdentifierKind::Email, "a@x.com")]);
    tampered.name = "   ".into();
    let err = customers.ingest(tampered).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Invalid(ValidationError::Empty { field: "name" })
        ),
        "{err}"
    );
    assert!(customers.store().customers(None, 10).unwrap().is_empty());
    assert_eq!(customers.store().scan_events().count(), 0);
}

#[test]
fn unknown_lookups_find_nothing() {
    let customers = customers();
    assert!(
        customers
            .profile(Identifier::email("no@x.com").unwrap())
            .unwrap()
            .is_none()
    );
    assert!(
        customers
            .profile(oneview::CustomerId::new())
            .unwrap()
            .is_none()
    );
}

#[test]
fn concurrent_writers_reach_the_same_profiles_as_one_writer() {
    // 8 threads ingest events that tie each person's three devices to their email (no two
    // people share an identifier), so writers race to merge the same person's profiles;
    // conflicts are retried, and the final partition is a sequential run's: one profile
    // per person.
    let events: Vec<Event> = (0..400)
        .map(|i| {
            let person = i % 20;
            event(
                &format!("m{i}"),
                i,
                &[
                    (IdentifierKind::Email, &format!("p{person}@x.com")),
                    (
                        IdentifierKind::AnonymousId,
                        &format!("dev-{person}-{}", i % 3),
                    ),
                ],
            )
        })
        .collect();
    let shared = Arc::new(customers());
    std::thread::scope(|scope| {
        for worker in 0..8 {
            let shared = Arc::clone(&shared);
            let events = &events;
            scope.spawn(move || {
                for e in events.iter().skip(worker).step_by(8) {
                    shared.ingest(e.clone()).unwrap();
                }
            });
        }
    });
    let sequential = customers();
    for e in &events {
        sequential.ingest(e.clone()).unwrap();
    }
    let partition = |customers: &Customers<MemoryStore>| {
        let mut groups: Vec<Vec<String>> = customers
            .store()
            .customers(None, 1000)
            .unwrap()
            .into_iter()
            .map(|id| {
                let profile = customers.store().profile(id).unwrap().unwrap();
                profile
                    .identifiers
                    .iter()
                    .map(ToString::to_string)
                    .collect()
            })
            .collect();
        groups.sort();
        groups
    };
    assert_eq!(partition(&shared), partition(&sequential));
    assert_eq!(partition(&shared).len(), 20);
    assert_eq!(shared.store().scan_events().count(), 400);
}
