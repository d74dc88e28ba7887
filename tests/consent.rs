//! Consent: decided by event time, held over merges, enforced by `may_contact`, captured
//! from Segment messages and from agents.

mod common;

use chrono::Utc;
use common::{Dyn, at, backends, id};
use oneview::ingest::segment::{self, SegmentError, SegmentOptions};
use oneview::privacy::{ConsentBasis, ConsentDefaults, Regime};
use oneview::{
    Actor, AuditAction, Channel, ConsentChoice, ConsentStatus, Customers, Error, Event,
    MemoryStore, Purpose, PurposeError,
};
use proptest::prelude::*;
use serde_json::json;

/// An event at `minute` carrying `ids` and one consent decision.
fn decided(
    message: &str,
    minute: i64,
    ids: &[&str],
    purpose: Purpose,
    channel: Option<Channel>,
    status: ConsentStatus,
) -> Event {
    let mut choice = ConsentChoice::new(purpose, status);
    if let Some(channel) = channel {
        choice = choice.on(channel);
    }
    let mut event = Event::builder("web", Channel::Web, "Consent Updated")
        .message_id(message)
        .occurred_at(at(minute))
        .consent(choice);
    for text in ids {
        event = event.with_identifier(id(text));
    }
    event.build().unwrap()
}

fn allowed(customers: &Dyn, who: &str, purpose: Purpose, channel: Channel, minute: i64) -> bool {
    customers
        .may_contact(id(who), &purpose, &channel, at(minute))
        .unwrap()
        .allowed
}

#[test]
fn the_latest_decision_wins_by_event_time_not_arrival() {
    for customers in backends() {
        let ana = &["email:ana@example.com"];
        customers
            .ingest(decided(
                "late",
                20,
                ana,
                Purpose::Marketing,
                None,
                ConsentStatus::Withdrawn,
            ))
            .unwrap();
        customers
            .ingest(decided(
                "early",
                10,
                ana,
                Purpose::Marketing,
                None,
                ConsentStatus::Granted,
            ))
            .unwrap();
        let email = "email:ana@example.com";
        assert!(allowed(
            &customers,
            email,
            Purpose::Marketing,
            Channel::Email,
            15
        ));
        assert!(!allowed(
            &customers,
            email,
            Purpose::Marketing,
            Channel::Email,
            25
        ));
        let decision = customers
            .may_contact(id(email), &Purpose::Marketing, &Channel::Email, at(25))
            .unwrap();
        let ConsentBasis::Decision(rests_on) = decision.basis else {
            panic!("a decision was made: {decision:?}");
        };
        assert_eq!(rests_on.status, ConsentStatus::Withdrawn);
        assert_eq!(rests_on.decision.provenance.observed_at, at(20));
        assert_eq!(rests_on.decision.provenance.source, "web");
    }
}

#[test]
fn a_channel_decision_and_an_every_channel_one_the_later_wins() {
    for customers in backends() {
        let ana = &["email:ana@example.com"];
        let email = "email:ana@example.com";
        customers
            .ingest_batch([
                decided(
                    "1",
                    1,
                    ana,
                    Purpose::Marketing,
                    None,
                    ConsentStatus::Granted,
                ),
                decided(
                    "2",
                    2,
                    ana,
                    Purpose::Marketing,
                    Some(Channel::Sms),
                    ConsentStatus::Denied,
                ),
                decided(
                    "3",
                    3,
                    ana,
                    Purpose::Marketing,
                    None,
                    ConsentStatus::Granted,
                ),
            ])
            .unwrap();
        assert!(!allowed(
            &customers,
            email,
            Purpose::Marketing,
            Channel::Sms,
            2
        ));
        assert!(allowed(
            &customers,
            email,
            Purpose::Marketing,
            Channel::Email,
            2
        ));
        assert!(
            allowed(&customers, email, Purpose::Marketing, Channel::Sms, 3),
            "a later yes to every channel covers SMS again"
        );
    }
}

#[test]
fn after_a_merge_either_sides_denial_holds_until_a_later_grant() {
    for customers in backends() {
        // Ana's phone profile allowed marketing late; her email profile had denied it
        // earlier. An order links the two.
        customers
            .ingest_batch([
                decided(
                    "e",
                    1,
                    &["email:ana@example.com"],
                    Purpose::Marketing,
                    Some(Channel::Email),
                    ConsentStatus::Denied,
                ),
                decided(
                    "p",
                    5,
                    &["phone:+447700900123"],
                    Purpose::Marketing,
                    None,
                    ConsentStatus::Granted,
                ),
            ])
            .unwrap();
        let phone = "phone:+447700900123";
        assert!(
            allowed(&customers, phone, Purpose::Marketing, Channel::Email, 6),
            "not merged yet"
        );
        let link = common::event(
            "link",
            10,
            &["email:ana@example.com", "phone:+447700900123"],
        );
        assert_eq!(customers.ingest(link).unwrap().merged.len(), 1);

        for who in [phone, "email:ana@example.com"] {
            assert!(
                !allowed(&customers, who, Purpose::Marketing, Channel::Email, 11),
                "the email side's denial holds over the phone side's later grant"
            );
            assert!(
                allowed(&customers, who, Purpose::Marketing, Channel::Sms, 11),
                "on a channel nobody denied, the grant stands"
            );
        }
        let held = customers
            .may_contact(id(phone), &Purpose::Marketing, &Channel::Email, at(11))
            .unwrap();
        let ConsentBasis::Decision(rests_on) = held.basis else {
            panic!("{held:?}")
        };
        assert!(rests_on.held_by_merge.is_some());
        assert_eq!(rests_on.since, at(10), "held from the merge");

        customers
            .ingest(decided(
                "again",
                12,
                &[phone],
                Purpose::Marketing,
                None,
                ConsentStatus::Granted,
            ))
            .unwrap();
        assert!(
            allowed(&customers, phone, Purpose::Marketing, Channel::Email, 13),
            "a grant after the merge allows again"
        );
    }
}

#[test]
fn an_unmerge_gives_each_side_its_own_consent_back() {
    for customers in backends() {
        customers
            .ingest_batch([
                decided(
                    "e",
                    1,
                    &["email:ana@example.com"],
                    Purpose::Analytics,
                    None,
                    ConsentStatus::Granted,
                ),
                decided(
                    "p",
                    2,
                    &["phone:+447700900123"],
                    Purpose::Analytics,
                    None,
                    ConsentStatus::Denied,
                ),
                common::event("link", 3, &["email:ana@example.com", "phone:+447700900123"]),
            ])
            .unwrap();
        let email = "email:ana@example.com";
        assert!(!allowed(
            &customers,
            email,
            Purpose::Analytics,
            Channel::Web,
            4
        ));
        let profile = customers.profile(id(email)).unwrap().unwrap();
        customers
            .unmerge(
                profile.customer_id,
                profile.merges[0].id,
                true,
                &Actor::new("ops", "two people"),
            )
            .unwrap();
        assert!(allowed(
            &customers,
            email,
            Purpose::Analytics,
            Channel::Web,
            4
        ));
        assert!(!allowed(
            &customers,
            "phone:+447700900123",
            Purpose::Analytics,
            Channel::Web,
            4
        ));
    }
}

#[test]
fn purposes_never_decided_follow_the_defaults() {
    let customers = Customers::new(MemoryStore::new())
        .with_consent_defaults(ConsentDefaults::opt_in().with(Purpose::Service, Regime::OptOut));
    customers
        .ingest(common::event("1", 1, &["email:ana@example.com"]))
        .unwrap();
    let ask = |purpose| {
        customers
            .may_contact(
                id("email:ana@example.com"),
                &purpose,
                &Channel::Email,
                at(2),
            )
            .unwrap()
    };
    let service = ask(Purpose::Service);
    assert!(service.allowed);
    assert_eq!(service.basis, ConsentBasis::Default(Regime::OptOut));
    assert!(!ask(Purpose::Marketing).allowed);
    assert!(matches!(
        customers.may_contact(
            id("email:nobody@example.com"),
            &Purpose::Service,
            &Channel::Email,
            at(2)
        ),
        Err(Error::UnknownCustomer)
    ));
}

#[test]
fn unknown_purposes_are_typed_errors() {
    assert_eq!(
        "marketting".parse::<Purpose>(),
        Err(PurposeError::Unknown("marketting".into()))
    );
    assert_eq!(Purpose::other(" "), Err(PurposeError::EmptyName));
    assert_eq!(
        Purpose::other("Marketing"),
        Err(PurposeError::BuiltIn("marketing".into()))
    );
    assert!(
        serde_json::from_value::<ConsentChoice>(json!({"purpose": "spam", "status": "granted"}))
            .is_err()
    );
}

#[test]
fn segment_consent_objects_and_consent_updated_tracks_are_read() {
    let options = SegmentOptions::default();
    let messages = json!({"batch": [
        {"type": "track", "event": "Segment Consent Preference Updated", "userId": "u1",
         "timestamp": "2026-03-01T10:00:00Z",
         "context": {"consent": {"categoryPreferences":
            {"Advertising": true, "Analytics": false, "DataSharing": false}}}},
        {"type": "track", "event": "Consent Updated", "userId": "u1",
         "timestamp": "2026-03-02T10:00:00Z",
         "properties": {"purpose": "marketing", "status": "withdrawn", "channel": "email",
                        "wording": "footer link, v2"}},
        {"type": "track", "event": "Consent Updated", "userId": "u1",
         "properties": {"purpose": "newsletters", "status": "granted"}},
        {"type": "track", "event": "Consent Updated", "userId": "u1",
         "properties": {"purpose": "marketing", "status": "maybe"}},
        {"type": "page", "userId": "u1",
         "context": {"consent": {"categoryPreferences": {"Analytics": "yes"}}}},
    ]});
    let parsed = segment::parse(&messages, &options, Utc::now());
    assert!(matches!(
        &parsed[2],
        Err(SegmentError::Purpose { field, .. }) if field == "batch[2].properties.purpose"
    ));
    assert!(matches!(
        &parsed[3],
        Err(SegmentError::BadValue { field, .. }) if field == "batch[3].properties.status"
    ));
    assert!(matches!(
        &parsed[4],
        Err(SegmentError::WrongType { field, .. })
            if field == "batch[4].context.consent.categoryPreferences.Analytics"
    ));
    let customers = Customers::new(MemoryStore::new());
    let records: Vec<_> = parsed.into_iter().filter_map(Result::ok).collect();
    customers.ingest_batch(records).unwrap();
    let user = "user_id:u1";
    let march_3 = "2026-03-03T00:00:00Z".parse().unwrap();
    let may = |purpose: Purpose, channel: Channel| {
        customers
            .may_contact(id(user), &purpose, &channel, march_3)
            .unwrap()
            .allowed
    };
    assert!(
        may(Purpose::Marketing, Channel::Sms),
        "Advertising: true is marketing"
    );
    assert!(
        !may(Purpose::Marketing, Channel::Email),
        "withdrawn by email on the 2nd"
    );
    assert!(!may(Purpose::Analytics, Channel::Web));
    assert!(!may(Purpose::other("datasharing").unwrap(), Channel::Web));
    let state = customers.consent(id(user), march_3).unwrap();
    let email = state.lookup(&Purpose::Marketing, &Channel::Email).unwrap();
    assert_eq!(
        email.decision.choice.wording.as_deref(),
        Some("footer link, v2")
    );
}

#[test]
fn an_agent_records_consent_on_the_trail() {
    for customers in backends() {
        customers
            .ingest(common::event("1", 1, &["email:ana@example.com"]))
            .unwrap();
        let maria = Actor::new("agent:maria", "customer asked by phone, ticket 4411");
        let choice =
            ConsentChoice::new(Purpose::Marketing, ConsentStatus::Withdrawn).on(Channel::Phone);
        let receipt = customers
            .set_consent(id("email:ana@example.com"), choice.clone(), &maria)
            .unwrap();
        let now = Utc::now();
        assert!(
            !customers
                .may_contact(
                    id("email:ana@example.com"),
                    &Purpose::Marketing,
                    &Channel::Phone,
                    now
                )
                .unwrap()
                .allowed
        );
        let trail = customers.audit(..).unwrap();
        assert_eq!(trail.len(), 1);
        assert_eq!(trail[0].actor, maria);
        assert!(matches!(
            &trail[0].action,
            AuditAction::ConsentSet { customer, status: ConsentStatus::Withdrawn, .. }
                if *customer == receipt.customer
        ));
        let nobody = Actor::new("agent:maria", " ");
        assert!(matches!(
            customers.set_consent(id("email:ana@example.com"), choice, &nobody),
            Err(Error::Invalid(_))
        ));
        assert_eq!(
            customers.audit(..).unwrap().len(),
            1,
            "a refused call leaves no trace"
        );
    }
}

/// One generated decision: who (of two people, one of whom sometimes has both
/// identifiers), when, and what.
fn decisions() -> impl Strategy<Value = Vec<(u8, i64, u8, bool, u8)>> {
    prop::collection::vec((0..3u8, 0..40i64, 0..3u8, any::<bool>(), 0..3u8), 1..12)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Consent in force depends on the decisions and merges, never on arrival order.
    #[test]
    fn consent_does_not_depend_on_arrival_order(decisions in decisions(), seed in any::<u64>()) {
        let people: [&[&str]; 3] = [
            &["email:ana@example.com"],
            &["phone:+447700900123"],
            &["email:ana@example.com", "phone:+447700900123"],
        ];
        let events: Vec<Event> = decisions
            .iter()
            .enumerate()
            .map(|(n, &(who, minute, status, every_channel, purpose))| {
                let status = [ConsentStatus::Granted, ConsentStatus::Denied, ConsentStatus::Withdrawn]
                    [status as usize];
                let purpose = [Purpose::Marketing, Purpose::Analytics, Purpose::Service][purpose as usize].clone();
                let channel = (!every_channel).then_some(Channel::Email);
                decided(&format!("m{n}"), minute, people[who as usize], purpose, channel, status)
            })
            .collect();
        let mut shuffled = events.clone();
        let mut state = seed;
        for i in (1..shuffled.len()).rev() {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            shuffled.swap(i, (state >> 33) as usize % (i + 1));
        }
        let in_order = Customers::new(MemoryStore::new());
        in_order.ingest_batch(events).unwrap();
        let one_by_one = Customers::new(MemoryStore::new());
        for event in shuffled {
            one_by_one.ingest(event).unwrap();
        }
        for who in ["email:ana@example.com", "phone:+447700900123"] {
            for minute in [5, 20, 41] {
                // Someone no generated event named is unknown to both.
                let strip = |s: oneview::privacy::ConsentState| -> Vec<_> {
                    s.effective()
                        .iter()
                        .map(|e| (e.purpose.clone(), e.channel.clone(), e.status, e.since))
                        .collect()
                };
                let a = in_order.consent(id(who), at(minute)).ok().map(strip);
                let b = one_by_one.consent(id(who), at(minute)).ok().map(strip);
                prop_assert_eq!(a, b, "{} at minute {}", who, minute);
            }
        }
    }
}

#[test]
fn a_list_to_contact_leaves_out_who_may_not_be_contacted_and_says_why() {
    for customers in backends() {
        customers
            .ingest_batch([
                decided(
                    "a",
                    1,
                    &["email:ana@example.com"],
                    Purpose::Marketing,
                    None,
                    ConsentStatus::Granted,
                ),
                decided(
                    "b",
                    1,
                    &["email:bo@example.com"],
                    Purpose::Marketing,
                    Some(Channel::Email),
                    ConsentStatus::Withdrawn,
                ),
                common::event("c", 1, &["email:cy@example.com"]),
            ])
            .unwrap();
        customers
            .erase(id("email:cy@example.com"), &Actor::new("dpo", "request"))
            .unwrap();
        let candidates = ["ana", "bo", "cy", "ana"].map(|n| id(&format!("email:{n}@example.com")));
        let list = customers
            .to_contact(candidates, &Purpose::Marketing, &Channel::Email, at(2))
            .unwrap();
        let ana = customers
            .profile(id("email:ana@example.com"))
            .unwrap()
            .unwrap();
        let bo = customers
            .profile(id("email:bo@example.com"))
            .unwrap()
            .unwrap();
        assert_eq!(list.allowed, vec![ana.customer_id], "each once");
        assert_eq!(list.left_out.len(), 1);
        assert_eq!(list.left_out[0].0, bo.customer_id);
        assert!(matches!(
            &list.left_out[0].1.basis,
            ConsentBasis::Decision(d) if d.status == ConsentStatus::Withdrawn
        ));
        assert_eq!(list.unknown, 1, "the erased customer is nobody now");
        let by_sms = customers
            .to_contact(
                [id("email:bo@example.com")],
                &Purpose::Marketing,
                &Channel::Sms,
                at(2),
            )
            .unwrap();
        assert!(
            by_sms.allowed.is_empty(),
            "opt-in: bo never granted marketing by SMS"
        );
    }
}

#[test]
fn a_consent_with_no_identifier_is_refused() {
    let err = Event::builder("web", Channel::Web, "Consent Updated")
        .consent(ConsentChoice::new(
            Purpose::Analytics,
            ConsentStatus::Granted,
        ))
        .build()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "identifiers is missing, and consent needs it"
    );
}
