//! Behaviour tests of consent, erasure, the suppression list and the audit trail.

use chrono::Duration;
use serde_json::json;
use uuid::Uuid;

use super::{at, attach, create, email, identity, merge, new_profile, trait_op, with_event};
use crate::model::{
    Actor, AuditAction, AuditRecord, Channel, ConsentChoice, ConsentRecord, ConsentStatus,
    CustomerId, Direction, Event, IdentifierKind, Interaction, Override, OverrideId,
    OverrideRecord, Provenance, Purpose, Refusal, RefusalRule, TraitOp,
};
use crate::store::{
    Attributed, Commit, CommitProblem, Erasure, Expectation, IdentityChange, PrivacyKey,
    ProfileState, Redacted, Rewrite, Store, StoreError, Suppression,
};

fn consent_event(message: &str, minute: i64, marker: &str) -> Event {
    Event::builder("conformance", Channel::Web, "Consent Updated")
        .message_id(message)
        .occurred_at(at(minute))
        .properties(json!({ "marker": marker }))
        // Consent is always someone's; which identifier does not matter to a store.
        .with_identifier(email(1000))
        .consent(ConsentChoice::new(
            Purpose::Marketing,
            ConsentStatus::Granted,
        ))
        .build()
        .expect("valid event")
}

fn decision(
    event: &Event,
    customer: CustomerId,
    status: ConsentStatus,
) -> Attributed<ConsentRecord> {
    Attributed {
        customer,
        record: ConsentRecord {
            choice: ConsentChoice::new(Purpose::Marketing, status).on(Channel::Email),
            provenance: Provenance {
                source: event.source.clone(),
                event_id: Some(event.id),
                observed_at: event.occurred_at,
            },
        },
    }
}

fn audit_record(minute: i64, customer: CustomerId) -> AuditRecord {
    AuditRecord {
        id: Uuid::now_v7(),
        at: at(minute),
        actor: Actor::new("conformance", "testing the contract"),
        action: AuditAction::Export { customer },
    }
}

fn suppression(hash: &str, minute: i64) -> Suppression {
    Suppression {
        hash: hash.to_owned(),
        kind: IdentifierKind::Email,
        at: at(minute),
        audit: Uuid::now_v7(),
    }
}

/// Consent decisions read back with the profile they were recorded on — a merged
/// member's stay that member's — and move with their event in a rewrite.
pub fn consent_is_kept_by_the_profile_it_was_recorded_on(store: &dyn Store) {
    let (a, b) = (new_profile(store, 1, 0), new_profile(store, 2, 0));
    let (ea, eb) = (consent_event("ca", 1, "a"), consent_event("cb", 2, "b"));
    for (customer, event, status) in [
        (a, &ea, ConsentStatus::Granted),
        (b, &eb, ConsentStatus::Denied),
    ] {
        let commit = Commit {
            consent: vec![decision(event, customer, status)],
            ..with_event(customer, event.clone())
        };
        store.apply(&[commit]).expect("storing a decision");
    }
    store
        .apply(&[identity(vec![merge(a, b, 3)])])
        .expect("merging");
    let mut read = store.consent(b).expect("reading consent");
    read.sort_by_key(|d| d.record.provenance.observed_at);
    assert_eq!(
        read,
        vec![
            decision(&ea, a, ConsentStatus::Granted),
            decision(&eb, b, ConsentStatus::Denied)
        ],
        "consent reads through a merged id, each decision with the profile it was recorded on"
    );
    // A rewrite that gives B's event back to a live B takes its decision along.
    let rewrite = Rewrite {
        profiles: vec![ProfileState {
            id: b,
            created_at: at(0),
            live: b,
        }],
        events: vec![(eb.id, b)],
        ..Rewrite::default()
    };
    store
        .apply(&[identity(vec![IdentityChange::Rewrite(Box::new(rewrite))])])
        .expect("rewriting");
    assert_eq!(
        store.consent(a).expect("reading"),
        vec![decision(&ea, a, ConsentStatus::Granted)]
    );
    assert_eq!(
        store.consent(b).expect("reading"),
        vec![decision(&eb, b, ConsentStatus::Denied)],
        "a decision moves with its event"
    );
}

/// An erasure removes the live profile, its members and everything attributed to them,
/// and the refusals and overrides naming its identifiers anywhere; nothing else. After
/// it, reading everything the store still holds finds none of the erased values.
pub fn erasure_removes_everything_about_the_customer(store: &dyn Store) {
    let (ana, ana_old, bo) = (CustomerId::new(), CustomerId::new(), CustomerId::new());
    let (ana_email, ana_phone, bo_email) = (email(1), email(11), email(2));
    store
        .apply(&[identity(vec![
            create(ana, 0),
            create(ana_old, 0),
            create(bo, 0),
            attach(&ana_email, ana),
            attach(&ana_phone, ana_old),
            attach(&bo_email, bo),
        ])])
        .expect("profiles");
    let ana_event = consent_event("ana-1", 1, "ana-secret-marker");
    let old_event = consent_event("ana-2", 2, "ana-old-marker");
    // Bo's event carried Ana's email too, in a link that was refused.
    let bo_event = Event::builder("conformance", Channel::Web, "Tested")
        .message_id("bo-1")
        .occurred_at(at(3))
        .properties(json!({ "marker": "bo-marker" }))
        .with_identifier(bo_email.clone())
        .with_identifier(ana_email.clone())
        .build()
        .expect("valid event");
    let mut bo_redacted = bo_event.clone();
    bo_redacted.identifiers.retain(|i| *i != ana_email);
    let ana_contact = Interaction::builder("conformance", Channel::Chat, Direction::Inbound)
        .key("ana-chat")
        .occurred_at(at(4))
        .body("ana-chat-marker")
        .build()
        .expect("valid interaction");
    let refusal = Refusal {
        evidence: *bo_event.id.as_uuid(),
        at: at(3),
        identifier: ana_email.clone(),
        customer: bo,
        rule: RefusalRule::Limit {
            kind: IdentifierKind::Email,
            limit: 1,
        },
    };
    let separation = OverrideRecord {
        id: OverrideId::new(),
        at: at(5),
        rule: Override::Separate {
            a: vec![ana_email.clone()],
            b: vec![bo_email.clone()],
        },
        reason: Some("two people".into()),
    };
    store
        .apply(&[
            Commit {
                traits: vec![trait_op(
                    ana,
                    "name",
                    TraitOp::Set(json!("ana-name-marker")),
                    1,
                )],
                consent: vec![decision(&ana_event, ana, ConsentStatus::Granted)],
                ..with_event(ana, ana_event.clone())
            },
            Commit {
                consent: vec![decision(&old_event, ana_old, ConsentStatus::Denied)],
                ..with_event(ana_old, old_event.clone())
            },
            Commit {
                identity: vec![
                    IdentityChange::Refuse(refusal),
                    IdentityChange::Override(separation),
                ],
                traits: vec![trait_op(bo, "name", TraitOp::Set(json!("bo-name")), 3)],
                ..with_event(bo, bo_event.clone())
            },
            Commit {
                interaction: Some(Attributed {
                    customer: ana,
                    record: ana_contact.clone(),
                }),
                ..Commit::default()
            },
            identity(vec![merge(ana, ana_old, 6)]),
        ])
        .expect("records");

    // Erasing a merged id, or an unknown one, is refused and changes nothing.
    let erase = |customer: CustomerId, hashes: &[&str]| Erasure {
        customer,
        identifiers: vec![ana_email.clone(), ana_phone.clone()],
        suppress: hashes.iter().map(|h| suppression(h, 7)).collect(),
        redacted: vec![Redacted::Event(bo_redacted.clone())],
    };
    let unknown = CustomerId::new();
    for (customer, expected) in [
        (ana_old, CommitProblem::NotLive(ana_old)),
        (unknown, CommitProblem::UnknownCustomer(unknown)),
    ] {
        match store.apply(&[identity(vec![IdentityChange::Erase(Box::new(erase(
            customer,
            &["h"],
        )))])]) {
            Err(StoreError::InvalidCommit { problem, .. }) => assert_eq!(problem, expected),
            other => panic!("erasing {customer} must be invalid, got {other:?}"),
        }
    }
    assert!(store.suppressed(&["h".into()]).expect("reading")[0].is_none());

    // An erasure in a batch that fails leaves everything as it was.
    let failing = store.apply(&[
        identity(vec![IdentityChange::Erase(Box::new(erase(ana, &["h1"])))]),
        identity(vec![create(bo, 0)]),
    ]);
    assert!(
        failing.is_err(),
        "the second commit creates an existing profile"
    );
    assert_eq!(
        store
            .profile(ana)
            .expect("reading")
            .map(|p| p.members.len()),
        Some(2),
        "a failed batch leaves the erased profile whole"
    );
    assert_eq!(
        store
            .event(old_event.id)
            .expect("reading")
            .map(|e| e.customer),
        Some(ana)
    );

    let commit = Commit {
        expect: vec![Expectation::Live { customer: ana }],
        identity: vec![IdentityChange::Erase(Box::new(erase(ana, &["h1", "h2"])))],
        ..Commit::default()
    };
    store.apply(&[commit]).expect("erasing");

    for id in [ana, ana_old] {
        assert!(
            store.profile(id).expect("reading").is_none(),
            "the profile is gone"
        );
        assert!(
            store.consent(id).expect("reading").is_empty(),
            "consent is gone"
        );
        assert!(
            store.trait_operations(id).expect("reading").is_empty(),
            "traits are gone"
        );
        assert!(
            store.merges(id).expect("reading").is_empty(),
            "merges are gone"
        );
    }
    assert_eq!(
        super::owners(
            store,
            &[ana_email.clone(), ana_phone.clone(), bo_email.clone()]
        )
        .expect("reading"),
        vec![None, None, Some(bo)]
    );
    for event in [&ana_event, &old_event] {
        assert!(
            store.event(event.id).expect("reading").is_none(),
            "events are gone"
        );
    }
    assert!(
        store
            .interaction(ana_contact.id)
            .expect("reading")
            .is_none(),
        "interactions are gone"
    );
    assert!(
        store
            .refusals_of(std::slice::from_ref(&ana_email))
            .expect("reading")
            .is_empty(),
        "another profile's refusal of an erased identifier is gone"
    );
    assert!(
        store
            .overrides(&[ana_email.clone(), bo_email.clone()])
            .expect("reading")
            .is_empty(),
        "an override naming an erased identifier is gone"
    );
    assert_eq!(store.customers(None, 10).expect("listing"), vec![bo]);
    assert_eq!(
        store.event(bo_event.id).expect("reading"),
        Some(Attributed {
            customer: bo,
            record: bo_redacted.clone()
        }),
        "another customer's event is kept, without the erased identifier"
    );
    assert_eq!(
        store.trait_operations(bo).expect("reading").len(),
        1,
        "others keep theirs"
    );
    let listed: Vec<String> = store
        .suppressions()
        .expect("reading")
        .into_iter()
        .map(|s| s.hash)
        .collect();
    assert_eq!(
        listed,
        ["h1", "h2"],
        "the suppressions land with the erasure"
    );
    assert!(store.has_suppressions().expect("reading"));

    // Everything the store still holds, read through every read there is.
    let mut held = String::new();
    for event in store.scan_events() {
        held += &serde_json::to_string(&event.expect("scanning")).expect("json");
    }
    for customer in store.customers(None, 1000).expect("listing") {
        held += &format!(
            "{:?}{:?}{:?}{:?}{:?}{:?}",
            store.profile(customer),
            store.trait_operations(customer),
            store.consent(customer),
            store.merges(customer),
            store.refusals(customer),
            store.interactions(customer, crate::store::PageRequest::first(1000)),
        );
    }
    held += &format!(
        "{:?}{:?}",
        store.standing_overrides(),
        store.audit(None, None)
    );
    for erased in [
        ana_email.value(),
        ana_phone.value(),
        "ana-secret-marker",
        "ana-old-marker",
        "ana-chat-marker",
        "ana-name-marker",
    ] {
        assert!(
            !held.contains(erased),
            "{erased} is still readable after the erasure"
        );
    }
    assert!(
        held.contains("bo-marker"),
        "other customers' data is intact"
    );
}

/// The privacy key is set once; suppressions read back oldest first and can be lifted.
pub fn suppressions_and_the_key_read_back(store: &dyn Store) {
    assert!(store.privacy_key().expect("reading").is_none());
    assert!(
        store.suppressions().expect("reading").is_empty(),
        "a new store suppresses nothing"
    );
    let key = PrivacyKey([9; 32]);
    store
        .apply(&[identity(vec![IdentityChange::SetPrivacyKey(key.clone())])])
        .expect("setting the key");
    assert_eq!(store.privacy_key().expect("reading"), Some(key));
    match store.apply(&[identity(vec![IdentityChange::SetPrivacyKey(PrivacyKey(
        [1; 32],
    ))])]) {
        Err(StoreError::Conflict {
            problem: CommitProblem::KeyExists,
            ..
        }) => {}
        other => panic!("a second key must conflict, got {other:?}"),
    }
    assert_eq!(
        store.privacy_key().expect("reading"),
        Some(PrivacyKey([9; 32]))
    );

    let customer = new_profile(store, 1, 0);
    let erasure = Erasure {
        customer,
        redacted: Vec::new(),
        identifiers: vec![email(1)],
        suppress: vec![suppression("later", 9), suppression("earlier", 8)],
    };
    store
        .apply(&[identity(vec![IdentityChange::Erase(Box::new(erasure))])])
        .expect("erasing");
    let hashes: Vec<String> = store
        .suppressions()
        .expect("reading")
        .into_iter()
        .map(|s| s.hash)
        .collect();
    assert_eq!(
        hashes,
        ["earlier", "later"],
        "suppressions are listed oldest first"
    );
    let found = store
        .suppressed(&["later".into(), "absent".into(), "earlier".into()])
        .expect("reading");
    assert_eq!(
        found
            .iter()
            .map(|s| s.as_ref().map(|s| s.at))
            .collect::<Vec<_>>(),
        vec![Some(at(9)), None, Some(at(8))],
        "answers come in the order asked"
    );
    store
        .apply(&[identity(vec![
            IdentityChange::Lift {
                hash: "earlier".into(),
            },
            IdentityChange::Suppress(suppression("restored", 1)),
        ])])
        .expect("lifting one, restoring another");
    assert_eq!(
        store.suppressions().expect("reading")[0].hash,
        "restored",
        "a suppression can be added outside an erasure"
    );
    assert!(store.suppressed(&["earlier".into()]).expect("reading")[0].is_none());
    assert!(store.suppressed(&["later".into()]).expect("reading")[0].is_some());
}

/// Audit records read back within `[from, to)`, oldest first; a failed batch keeps none.
pub fn audit_records_read_back_in_time_order(store: &dyn Store) {
    let customer = new_profile(store, 1, 0);
    let records: Vec<AuditRecord> = [30, 10, 20].map(|m| audit_record(m, customer)).to_vec();
    store
        .apply(&[Commit {
            audit: records.clone(),
            ..Commit::default()
        }])
        .expect("appending");
    let failed = store.apply(&[
        Commit {
            audit: vec![audit_record(15, customer)],
            ..Commit::default()
        },
        identity(vec![create(customer, 0)]),
    ]);
    assert!(failed.is_err());
    let all = store.audit(None, None).expect("reading");
    let times: Vec<_> = all.iter().map(|r| r.at).collect();
    assert_eq!(
        times,
        [at(10), at(20), at(30)],
        "oldest first, none from the failed batch"
    );
    assert_eq!(all[0], records[1], "records read back exactly");
    let window = store
        .audit(Some(at(10) + Duration::seconds(1)), Some(at(30)))
        .expect("reading");
    assert_eq!(
        window,
        vec![records[2].clone()],
        "from is inclusive, to exclusive"
    );
    let far = |years: i64| at(0) + Duration::days(365 * years);
    assert_eq!(
        store
            .audit(Some(far(-1000)), Some(far(1000)))
            .expect("reading"),
        all,
        "bounds beyond the years a backend can store still bound on the right side"
    );
    assert!(
        store
            .audit(Some(far(1000)), None)
            .expect("reading")
            .is_empty()
    );
}

/// A redaction replaces stored records' content, keeping where they belong, and an
/// override by its id; a record that is not stored is skipped.
pub fn redactions_replace_content(store: &dyn Store) {
    let customer = new_profile(store, 1, 0);
    let event = consent_event("r1", 1, "secret-property");
    let contact = Interaction::builder("conformance", Channel::Chat, Direction::Inbound)
        .key("r-chat")
        .occurred_at(at(2))
        .body("secret-words")
        .build()
        .expect("valid interaction");
    let separation = OverrideRecord {
        id: OverrideId::new(),
        at: at(3),
        rule: Override::Separate {
            a: vec![email(1)],
            b: vec![email(2), email(3)],
        },
        reason: None,
    };
    store
        .apply(&[
            with_event(customer, event.clone()),
            Commit {
                interaction: Some(Attributed {
                    customer,
                    record: contact.clone(),
                }),
                identity: vec![IdentityChange::Override(separation.clone())],
                ..Commit::default()
            },
        ])
        .expect("records");
    let mut bare_event = event.clone();
    bare_event.properties.clear();
    let mut bare_contact = contact.clone();
    bare_contact.body = None;
    let narrower = OverrideRecord {
        rule: Override::Separate {
            a: vec![email(1)],
            b: vec![email(3)],
        },
        ..separation.clone()
    };
    let absent = consent_event("never-stored", 4, "x");
    let added = OverrideRecord {
        id: OverrideId::new(),
        at: at(4),
        rule: Override::Block {
            identifier: email(9),
        },
        reason: None,
    };
    // A redaction in a batch that fails leaves every record as it was.
    let failed = store.apply(&[
        identity(vec![IdentityChange::Redact(vec![
            Redacted::Event(bare_event.clone()),
            Redacted::Interaction(bare_contact.clone()),
            Redacted::Override(narrower.clone()),
            Redacted::Override(added),
        ])]),
        identity(vec![create(customer, 0)]),
    ]);
    assert!(
        failed.is_err(),
        "the second commit creates an existing profile"
    );
    assert_eq!(
        store.event(event.id).expect("reading").map(|e| e.record),
        Some(event.clone())
    );
    assert_eq!(
        store
            .interaction(contact.id)
            .expect("reading")
            .map(|i| i.record),
        Some(contact.clone())
    );
    assert_eq!(
        store.all_overrides().expect("reading"),
        vec![separation.clone()],
        "a failed redaction neither changes nor adds overrides"
    );
    store
        .apply(&[identity(vec![IdentityChange::Redact(vec![
            Redacted::Event(bare_event.clone()),
            Redacted::Interaction(bare_contact.clone()),
            Redacted::Override(narrower.clone()),
            Redacted::Event(absent.clone()),
        ])])])
        .expect("redacting");
    assert_eq!(
        store.event(event.id).expect("reading"),
        Some(Attributed {
            customer,
            record: bare_event
        })
    );
    assert_eq!(
        store.interaction(contact.id).expect("reading"),
        Some(Attributed {
            customer,
            record: bare_contact
        })
    );
    assert!(
        store.event(absent.id).expect("reading").is_none(),
        "nothing is added"
    );
    assert_eq!(
        store.all_overrides().expect("reading"),
        vec![narrower.clone()]
    );
    assert!(
        store.overrides(&[email(2)]).expect("reading").is_empty(),
        "the override is found by the identifiers it names now"
    );
    assert_eq!(
        store.overrides(&[email(3)]).expect("reading"),
        vec![narrower]
    );
}
