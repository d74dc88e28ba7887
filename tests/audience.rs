//! Computed traits and segments: hand counts, windows, reasons, merges and unmerges.

mod common;

use chrono::Duration;
use common::{at, backends, id};
use oneview::audience::{
    Aggregate, Comparison, ComputedTrait, EventFilter, PersonaMatch, Rule, RuleError, Segment,
};
use oneview::{
    Actor, Channel, ConsentChoice, ConsentStatus, Customers, Error, Event, MemoryStore, Purpose,
};
use proptest::prelude::*;
use serde_json::{Value, json};

fn order(message: &str, minute: i64, who: &[&str], revenue: f64, category: &str) -> Event {
    let mut event = Event::builder("shop", Channel::Web, "Order Completed")
        .message_id(message)
        .occurred_at(at(minute))
        .properties(json!({ "revenue": revenue, "item": { "category": category } }));
    for text in who {
        event = event.with_identifier(id(text));
    }
    event.build().unwrap()
}

fn orders(property: &str, aggregate: fn(String) -> Aggregate) -> ComputedTrait {
    ComputedTrait::new(
        property,
        EventFilter::named("Order Completed"),
        aggregate(property.to_owned()),
    )
}

const DAY: i64 = 24 * 60;

#[test]
fn every_aggregate_matches_a_hand_count_across_the_window_edge() {
    let ana = &["email:ana@example.com"];
    let events = [
        order("1", 0, ana, 10.0, "books"),
        order("2", 5 * DAY, ana, 30.0, "music"),
        order("3", 9 * DAY, ana, 20.0, "books"),
        order("4", 10 * DAY, ana, 5.0, "games"),
    ];
    let as_of = at(10 * DAY);
    let revenue = "revenue".to_owned();
    let category = "item.category".to_owned();
    let all_time: Vec<(Aggregate, Value)> = vec![
        (Aggregate::Count, json!(4)),
        (
            Aggregate::Sum {
                property: revenue.clone(),
            },
            json!(65.0),
        ),
        (
            Aggregate::Min {
                property: revenue.clone(),
            },
            json!(5.0),
        ),
        (
            Aggregate::Max {
                property: revenue.clone(),
            },
            json!(30.0),
        ),
        (
            Aggregate::Average {
                property: revenue.clone(),
            },
            json!(16.25),
        ),
        (
            Aggregate::First {
                property: category.clone(),
            },
            json!("books"),
        ),
        (
            Aggregate::Last {
                property: category.clone(),
            },
            json!("games"),
        ),
        (
            Aggregate::MostFrequent {
                property: category.clone(),
            },
            json!("books"),
        ),
        (
            Aggregate::Unique {
                property: category.clone(),
            },
            json!(["books", "games", "music"]),
        ),
        (
            Aggregate::UniqueCount {
                property: category.clone(),
            },
            json!(3),
        ),
    ];
    for (aggregate, expected) in all_time {
        let definition = ComputedTrait::new("x", EventFilter::named("Order Completed"), aggregate);
        assert_eq!(
            definition.compute(&events, as_of),
            Some(expected),
            "{definition:?}"
        );
    }
    // The last 5 days before day 10: day 5 is on the edge and out; days 9 and 10 in.
    let windowed: Vec<(Aggregate, Value)> = vec![
        (Aggregate::Count, json!(2)),
        (
            Aggregate::Sum {
                property: revenue.clone(),
            },
            json!(25.0),
        ),
        (
            Aggregate::First {
                property: category.clone(),
            },
            json!("books"),
        ),
        (
            Aggregate::UniqueCount {
                property: category.clone(),
            },
            json!(2),
        ),
    ];
    for (aggregate, expected) in windowed {
        let definition = ComputedTrait::new("x", EventFilter::named("Order Completed"), aggregate)
            .within_days(5);
        assert_eq!(
            definition.compute(&events, as_of),
            Some(expected),
            "{definition:?}"
        );
    }
    // As of day 7, the later orders have not happened yet.
    let count = ComputedTrait::new("n", EventFilter::named("Order Completed"), Aggregate::Count);
    assert_eq!(count.compute(&events, at(7 * DAY)), Some(json!(2)));
    // Property conditions select events; a property nobody has gives no value.
    let big = ComputedTrait::new(
        "big",
        EventFilter::named("Order Completed").when("revenue", Comparison::AtLeast(20.0)),
        Aggregate::Count,
    );
    assert_eq!(big.compute(&events, as_of), Some(json!(2)));
    let none = orders("coupon", |p| Aggregate::Max { property: p });
    assert_eq!(none.compute(&events, as_of), None);
}

#[test]
fn windows_evaluated_on_read_count_exactly_the_events_inside_them() {
    // Orders every day on two profiles that a later event merges: a window's reads start
    // at its first moment, on every member, and leave out only what is older.
    let ana = &["email:ana@example.com"];
    let phone = &["phone:+447700900123"];
    let events: Vec<Event> = (0..12)
        .map(|day| {
            let who = if day % 2 == 0 { ana } else { phone };
            order(
                &format!("o{day}"),
                day * DAY,
                who,
                (day + 1) as f64,
                "books",
            )
        })
        .collect();
    let spent = orders("revenue", |p| Aggregate::Sum { property: p }).within_days(3);
    let spent_segment = Segment::new(
        "spent lately",
        Rule::Trait {
            name: "revenue".into(),
            test: Comparison::Exists,
        },
    );
    let ordered_segment = Segment::new(
        "ordered lately",
        Rule::Performed {
            events: EventFilter::named("Order Completed"),
            at_least: Some(1),
            at_most: None,
            within_days: Some(3),
        },
    );
    for customers in backends() {
        customers.ingest_batch(events.clone()).unwrap();
        customers
            .ingest(common::event(
                "link",
                12 * DAY,
                &["email:ana@example.com", "phone:+447700900123"],
            ))
            .unwrap();
        // On an order's moment, three days after one (which the window leaves out), and
        // a minute before that.
        for minute in [5 * DAY, 8 * DAY, 8 * DAY - 1, 11 * DAY, 14 * DAY, 20 * DAY] {
            let as_of = at(minute);
            let inside: Vec<&Event> = events
                .iter()
                .filter(|e| e.occurred_at <= as_of && e.occurred_at > as_of - Duration::days(3))
                .collect();
            let ordered = customers
                .evaluate(id(ana[0]), &ordered_segment, &[], as_of)
                .unwrap();
            assert_eq!(ordered.holds, !inside.is_empty(), "as of minute {minute}");
            assert_eq!(
                ordered.reasons,
                [format!(
                    "performed Order Completed {} time(s) in the last 3 days (at least 1)",
                    inside.len()
                )],
                "as of minute {minute}"
            );
            let by_hand = spent.compute(&events, as_of);
            let verdict = customers
                .evaluate(
                    id(phone[0]),
                    &spent_segment,
                    std::slice::from_ref(&spent),
                    as_of,
                )
                .unwrap();
            let shown = by_hand.as_ref().map_or("none".to_owned(), Value::to_string);
            assert_eq!(
                verdict.reasons,
                [format!("trait revenue is {shown} (wanted present)")],
                "as of minute {minute}"
            );
        }
    }
}

#[test]
fn segments_explain_membership_and_follow_merges_and_unmerges() {
    for customers in backends() {
        // Two orders on the phone side, none on the email side.
        customers
            .ingest_batch([
                order("o1", 10, &["phone:+447700900123"], 40.0, "books"),
                order("o2", 20, &["phone:+447700900123"], 60.0, "books"),
                common::event("visit", 15, &["email:ana@example.com"]),
            ])
            .unwrap();
        let loyal = Segment::new(
            "loyal",
            Rule::Performed {
                events: EventFilter::named("Order Completed"),
                at_least: Some(2),
                at_most: None,
                within_days: Some(30),
            },
        );
        let email = id("email:ana@example.com");
        let out = customers
            .evaluate(email.clone(), &loyal, &[], at(30))
            .unwrap();
        assert!(!out.holds);
        assert_eq!(
            out.reasons,
            ["performed Order Completed 0 time(s) in the last 30 days (at least 2)"]
        );
        let link = common::event(
            "link",
            25,
            &["email:ana@example.com", "phone:+447700900123"],
        );
        customers.ingest(link).unwrap();
        let merged = customers
            .evaluate(email.clone(), &loyal, &[], at(30))
            .unwrap();
        assert!(merged.holds, "the merge brings the phone side's orders");
        assert_eq!(
            merged.reasons,
            ["performed Order Completed 2 time(s) in the last 30 days (at least 2)"]
        );
        let profile = customers.profile(email.clone()).unwrap().unwrap();
        customers
            .unmerge(
                profile.customer_id,
                profile.merges[0].id,
                true,
                &Actor::new("ops", "two people"),
            )
            .unwrap();
        assert_eq!(
            customers
                .evaluate(email.clone(), &loyal, &[], at(30))
                .unwrap(),
            out
        );
        assert!(
            customers
                .evaluate(id("phone:+447700900123"), &loyal, &[], at(30))
                .unwrap()
                .holds
        );
        // Thirty days on, the window has moved past both orders.
        assert!(
            !customers
                .evaluate(id("phone:+447700900123"), &loyal, &[], at(20 + 31 * DAY))
                .unwrap()
                .holds
        );
    }
}

#[test]
fn a_late_event_changes_a_window_aggregate() {
    for customers in backends() {
        let ana = &["email:ana@example.com"];
        customers
            .ingest(order("o2", 3 * DAY, ana, 50.0, "music"))
            .unwrap();
        let spent = orders("revenue", |p| Aggregate::Sum { property: p }).within_days(7);
        let value = |customers: &common::Dyn| {
            customers
                .computed_traits(
                    id("email:ana@example.com"),
                    std::slice::from_ref(&spent),
                    at(5 * DAY),
                )
                .unwrap()["revenue"]
                .value
                .clone()
        };
        assert_eq!(value(&customers), json!(50.0));
        customers
            .ingest(order("o1", DAY, ana, 7.5, "books"))
            .unwrap();
        assert_eq!(value(&customers), json!(57.5), "the late order counts");
    }
}

#[test]
fn rules_read_traits_identifiers_channels_consent_and_feedback() {
    let customers = Customers::new(MemoryStore::new());
    customers
        .ingest(
            Event::builder("web", Channel::Web, "Signed Up")
                .message_id("s")
                .occurred_at(at(0))
                .identifier(oneview::IdentifierKind::Email, "ana@example.com")
                .set_trait("plan", json!("pro"))
                .consent(ConsentChoice::new(
                    Purpose::Marketing,
                    ConsentStatus::Granted,
                ))
                .build()
                .unwrap(),
        )
        .unwrap();
    customers
        .ingest(
            Event::builder("survey", Channel::Email, "NPS Survey Answered")
                .message_id("n")
                .occurred_at(at(5))
                .identifier(oneview::IdentifierKind::Email, "ana@example.com")
                .properties(json!({ "score": 4 }))
                .build()
                .unwrap(),
        )
        .unwrap();
    let rule: Rule = serde_json::from_value(json!({
        "rule": "all",
        "rules": [
            {"rule": "trait", "name": "plan", "test": "in", "value": ["pro", "team"]},
            {"rule": "has_identifier", "kind": "email"},
            {"rule": "not", "of": {"rule": "has_identifier", "kind": "phone"}},
            {"rule": "used_channel", "channel": "email", "within_days": 1},
            {"rule": "consents", "purpose": "marketing", "channel": "email"},
            {"rule": "feedback_score", "test": "at_most", "value": 6.0},
            {"rule": "open_conversations", "at_least": 0}
        ]
    }))
    .unwrap();
    let detractors = Segment::new("pro detractors", rule.clone());
    let verdict = customers
        .evaluate(id("email:ana@example.com"), &detractors, &[], at(10))
        .unwrap();
    assert!(verdict.holds, "{verdict:?}");
    assert_eq!(
        verdict.reasons.len(),
        7,
        "every condition that held: {verdict:?}"
    );
    assert!(
        verdict
            .reasons
            .contains(&"latest feedback score is 4.0 (wanted ≤ 6)".to_owned())
    );
    // The JSON form is stable: it reads back to the same rule.
    let again: Rule = serde_json::from_value(serde_json::to_value(&rule).unwrap()).unwrap();
    assert_eq!(again, rule);
    let segments = customers
        .segments_of(
            id("email:ana@example.com"),
            &[
                detractors,
                Segment::new(
                    "phones",
                    Rule::HasIdentifier {
                        kind: oneview::IdentifierKind::Phone,
                    },
                ),
            ],
            &[],
            at(10),
        )
        .unwrap();
    assert_eq!(segments.len(), 1);
    assert_eq!(segments[0].0, "pro detractors");
}

#[test]
fn a_bad_rule_names_its_path_and_nothing_is_evaluated() {
    let customers = Customers::new(MemoryStore::new());
    customers
        .ingest(common::event("1", 1, &["email:ana@example.com"]))
        .unwrap();
    let bad = Segment::new(
        "bad",
        Rule::All {
            rules: vec![
                Rule::HasIdentifier {
                    kind: oneview::IdentifierKind::Email,
                },
                Rule::Not {
                    of: Box::new(Rule::Performed {
                        events: EventFilter::named("Viewed").when("price", Comparison::In(vec![])),
                        at_least: None,
                        at_most: None,
                        within_days: None,
                    }),
                },
            ],
        },
    );
    match customers.evaluate(id("email:ana@example.com"), &bad, &[], at(2)) {
        Err(Error::Rule(RuleError { path, .. })) => {
            assert_eq!(path, "rule.rules[1].of.events.conditions[0]");
        }
        other => panic!("{other:?}"),
    }
    let empty = Segment::new("empty", Rule::Any { rules: vec![] });
    assert!(matches!(
        customers.members(&empty, &[], at(2), None, 10),
        Err(Error::Rule(_))
    ));
}

#[test]
fn members_page_through_the_segment() {
    let customers = Customers::new(MemoryStore::new());
    for n in 0..25 {
        let who = format!("email:p{n}@example.com");
        let buys = n % 3;
        for k in 0..buys {
            customers
                .ingest(order(
                    &format!("o{n}-{k}"),
                    k as i64,
                    &[who.as_str()],
                    1.0,
                    "x",
                ))
                .unwrap();
        }
        if buys == 0 {
            customers
                .ingest(common::event(&format!("v{n}"), 0, &[who.as_str()]))
                .unwrap();
        }
    }
    let buyers = Segment::new(
        "buyers",
        Rule::Performed {
            events: EventFilter::named("Order Completed"),
            at_least: None,
            at_most: None,
            within_days: None,
        },
    );
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let page = customers.members(&buyers, &[], at(10), after, 4).unwrap();
        assert!(page.members.len() <= 4);
        all.extend(page.members);
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let expected = (0..25).filter(|n| n % 3 != 0).count();
    assert_eq!(all.len(), expected);
    let mut sorted = all.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, all, "ascending, each once");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// A computed trait depends on the events, not on the order they arrived in, and
    /// reading it through the store equals computing it from the log.
    #[test]
    fn computed_traits_do_not_depend_on_arrival_order(
        specs in prop::collection::vec((0..2usize, 0..30i64, 1..100u32, 0..3usize), 1..15),
        reverse in any::<bool>(),
    ) {
        let people = [["email:ana@example.com"], ["email:bo@example.com"]];
        let categories = ["books", "music", "games"];
        let events: Vec<Event> = specs
            .iter()
            .enumerate()
            .map(|(n, &(who, day, revenue, category))| {
                order(&format!("o{n}"), day * DAY, &people[who], f64::from(revenue), categories[category])
            })
            .collect();
        let definitions = vec![
            orders("revenue", |p| Aggregate::Sum { property: p }).within_days(10),
            orders("item.category", |p| Aggregate::MostFrequent { property: p }),
            orders("count", |_| Aggregate::Count),
        ];
        let as_of = at(20 * DAY) + Duration::minutes(1);
        for customers in backends() {
            let mut arriving = events.clone();
            if reverse {
                arriving.reverse();
            }
            for event in arriving {
                customers.ingest(event).unwrap();
            }
            for (who, person) in people.iter().enumerate() {
                let theirs: Vec<Event> = events
                    .iter()
                    .filter(|e| e.identifiers.contains(&id(person[0])))
                    .cloned()
                    .collect();
                if theirs.is_empty() {
                    continue;
                }
                let stored = customers.computed_traits(id(person[0]), &definitions, as_of).unwrap();
                for definition in &definitions {
                    prop_assert_eq!(
                        stored.get(&definition.name).map(|v| v.value.clone()),
                        definition.compute(&theirs, as_of),
                        "person {} trait {}", who, definition.name
                    );
                }
            }
        }
    }
}

fn always() -> Rule {
    Rule::HasIdentifier {
        kind: oneview::IdentifierKind::Email,
    }
}

/// Everyone with an email (priority 9), patrons who spent 1,000 or more (1), and people
/// with a phone number (0, the first to win).
fn three_personas() -> Vec<oneview::audience::Persona> {
    let persona = |name: &str, priority, rule| oneview::audience::Persona {
        name: name.to_owned(),
        description: format!("{name}: who they are"),
        priority,
        rule,
    };
    vec![
        persona("everyone", 9, always()),
        persona(
            "patron",
            1,
            Rule::Trait {
                name: "revenue".into(),
                test: Comparison::AtLeast(1000.0),
            },
        ),
        persona(
            "reachable",
            0,
            Rule::HasIdentifier {
                kind: oneview::IdentifierKind::Phone,
            },
        ),
    ]
}

#[test]
fn the_persona_is_the_highest_priority_one_that_holds() {
    let customers = Customers::new(MemoryStore::new());
    customers
        .ingest_batch([
            order("o1", 1, &["email:ana@example.com"], 500.0, "books"),
            order("o2", 2, &["email:ana@example.com"], 700.0, "books"),
        ])
        .unwrap();
    let spent = orders("revenue", |p| Aggregate::Sum { property: p });
    let personas = three_personas();
    let (name, verdict) = customers
        .persona_of(id("email:ana@example.com"), &personas, &[spent], at(10))
        .unwrap()
        .unwrap();
    assert_eq!(name, "patron");
    assert_eq!(verdict.reasons, ["trait revenue is 1200.0 (wanted ≥ 1000)"]);
    let none = customers
        .persona_of(id("email:ana@example.com"), &personas[2..], &[], at(10))
        .unwrap();
    assert_eq!(none, None);
}

#[test]
fn the_next_best_action_respects_channels_consent_and_caps() {
    use oneview::audience::{Action, FrequencyCap, Playbook};
    let customers = Customers::new(MemoryStore::new());
    customers
        .ingest(
            Event::builder("web", Channel::Web, "Signed Up")
                .message_id("s")
                .occurred_at(at(0))
                .identifier(oneview::IdentifierKind::Email, "ana@example.com")
                .consent(ConsentChoice::new(
                    Purpose::Marketing,
                    ConsentStatus::Granted,
                ))
                .build()
                .unwrap(),
        )
        .unwrap();
    customers
        .ingest_batch([
            order("o1", 10, &["email:ana@example.com"], 40.0, "books"),
            order("o2", 20, &["email:ana@example.com"], 40.0, "books"),
        ])
        .unwrap();
    let offer_cap = FrequencyCap {
        times: 1,
        days: 7,
        group: Some("offer".into()),
    };
    let playbook = Playbook {
        actions: vec![
            Action {
                name: "leave alone".into(),
                group: None,
                priority: 10,
                when: always(),
                channels: vec![],
                purpose: None,
                caps: vec![],
            },
            Action {
                name: "win back".into(),
                group: Some("offer".into()),
                priority: 1,
                when: Rule::Performed {
                    events: EventFilter::named("Order Completed"),
                    at_least: Some(2),
                    at_most: None,
                    within_days: None,
                },
                channels: vec![Channel::Email],
                purpose: Some(Purpose::Marketing),
                caps: vec![offer_cap.clone()],
            },
            Action {
                name: "second offer".into(),
                group: Some("offer".into()),
                priority: 2,
                when: always(),
                channels: vec![],
                purpose: Some(Purpose::Marketing),
                caps: vec![offer_cap],
            },
        ],
    };
    let ana = || id("email:ana@example.com");
    let day = |d: i64| at(30 + d * DAY);
    let best = customers
        .next_best_action(ana(), &playbook, &Channel::Email, &[], day(0))
        .unwrap();
    assert_eq!(best.action.as_deref(), Some("win back"));
    assert_eq!(
        best.reasons,
        ["performed Order Completed 2 time(s) (at least 2)"]
    );
    let by_sms = customers
        .next_best_action(ana(), &playbook, &Channel::Sms, &[], day(0))
        .unwrap();
    assert_eq!(by_sms.action.as_deref(), Some("second offer"));
    assert_eq!(
        by_sms.passed_over[0],
        ("win back".to_owned(), "not carried on sms".to_owned())
    );

    // Taken by email: the offer group is capped for seven days, on every channel.
    customers
        .record_action(ana(), "win back", Channel::Email, day(0))
        .unwrap();
    let capped = customers
        .next_best_action(ana(), &playbook, &Channel::Email, &[], day(1))
        .unwrap();
    assert_eq!(capped.action.as_deref(), Some("leave alone"));
    assert_eq!(capped.passed_over.len(), 2);
    assert!(capped.passed_over[0].1.starts_with("capped"), "{capped:?}");
    let week_later = customers
        .next_best_action(ana(), &playbook, &Channel::Email, &[], day(8))
        .unwrap();
    assert_eq!(week_later.action.as_deref(), Some("win back"));
    assert_eq!(
        customers
            .profile(ana())
            .unwrap()
            .unwrap()
            .open_conversations
            .len(),
        0
    );

    // Marketing withdrawn: no offer, whatever the rules say.
    customers
        .set_consent(
            ana(),
            ConsentChoice::new(Purpose::Marketing, ConsentStatus::Withdrawn),
            &Actor::new("agent:maria", "asked on the phone"),
        )
        .unwrap();
    let after = customers
        .next_best_action(ana(), &playbook, &Channel::Email, &[], chrono::Utc::now())
        .unwrap();
    assert_eq!(after.action.as_deref(), Some("leave alone"));
    assert!(
        after.passed_over[0]
            .1
            .contains("may not be contacted for marketing")
    );

    let mut broken = playbook.clone();
    broken.actions[1].when = Rule::All { rules: vec![] };
    assert!(matches!(
        customers.next_best_action(ana(), &broken, &Channel::Email, &[], day(0)),
        Err(Error::Rule(RuleError { path, .. })) if path == "actions[1].when"
    ));
}

#[test]
fn customer_value_lands_on_the_profile_where_segments_use_it() {
    use oneview::analytics::{
        BgNbd, ClvOptions, GammaGamma, RfmOptions, customer_value, rfm_summary,
    };
    let customers = common::cdnow_customers();
    let end = chrono::NaiveDate::from_ymd_opt(1997, 9, 30).unwrap();
    let summary = rfm_summary(customers.store(), &RfmOptions::new(end)).unwrap();
    let (purchases, _) = BgNbd::fit(&summary).unwrap();
    let (spend, _) = GammaGamma::fit(&summary).unwrap();
    let options = ClvOptions::new(12, 4.35, 0.01).unwrap();
    let as_of = at(0);
    let report = customers
        .write_customer_value(&summary, "bg_nbd", &purchases, &spend, &options, as_of)
        .unwrap();
    assert_eq!(report.written as usize, summary.len());

    // One customer's traits are the model's numbers, with the model as provenance.
    let one = &summary[7];
    let expected = customer_value(&purchases, &spend, one, &options);
    let profile = customers.profile(one.customer).unwrap().unwrap();
    let clv = &profile.traits["clv"];
    assert!((clv.value.as_f64().unwrap() - expected.clv).abs() < 1e-9);
    assert!((profile.traits["p_alive"].value.as_f64().unwrap() - expected.p_alive).abs() < 1e-12);
    assert_eq!(clv.provenance.source, "oneview.analytics");
    assert_eq!(clv.provenance.observed_at, as_of);
    let carrier = profile
        .timeline
        .items
        .iter()
        .find_map(|entry| match entry {
            oneview::TimelineEntry::Event(e) if Some(e.id) == clv.provenance.event_id => Some(e),
            _ => None,
        })
        .expect("the event that carried the values is on the timeline");
    assert_eq!(carrier.properties["model"], json!("bg_nbd"));
    assert_eq!(
        carrier.properties["parameters"],
        serde_json::to_value(purchases).unwrap()
    );

    // "High value at risk": CLV in the top 20% and P(alive) under 0.5, as a segment.
    let at_risk = Segment::new(
        "high value at risk",
        Rule::All {
            rules: vec![
                Rule::Trait {
                    name: "clv_percentile".into(),
                    test: Comparison::AtLeast(80.0),
                },
                Rule::Trait {
                    name: "p_alive".into(),
                    test: Comparison::LessThan(0.5),
                },
            ],
        },
    );
    let mut members = Vec::new();
    let mut after = None;
    loop {
        let page = customers
            .members(&at_risk, &[], as_of, after, 1000)
            .unwrap();
        members.extend(page.members);
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let values: Vec<_> = summary
        .iter()
        .map(|c| customer_value(&purchases, &spend, c, &options))
        .collect();
    let mut clvs: Vec<f64> = values.iter().map(|v| v.clv).collect();
    clvs.sort_by(f64::total_cmp);
    let by_hand = values
        .iter()
        .filter(|v| {
            let below = clvs.partition_point(|c| *c < v.clv);
            100.0 * below as f64 / clvs.len() as f64 >= 80.0 && v.p_alive < 0.5
        })
        .count();
    assert!(
        by_hand > 0,
        "the CDNOW sample has valuable customers at risk"
    );
    assert_eq!(members.len(), by_hand);

    // Writing again for the same time changes nothing.
    let again = customers
        .write_customer_value(&summary, "bg_nbd", &purchases, &spend, &options, as_of)
        .unwrap();
    assert_eq!(again.written as usize, summary.len());
    let after_again = customers.profile(one.customer).unwrap().unwrap();
    assert_eq!(after_again.event_count(), profile.event_count());
}

#[test]
fn the_view_names_the_persona_and_follows_merges() {
    let personas = three_personas();
    let spent = orders("revenue", |p| Aggregate::Sum { property: p });
    for plain in backends() {
        let customers = plain
            .with_personas(personas.clone(), vec![spent.clone()])
            .unwrap();
        customers
            .ingest_batch([
                order("o1", 1, &["email:ana@example.com"], 500.0, "books"),
                order("o2", 2, &["email:ana@example.com"], 700.0, "books"),
                order("o3", 3, &["phone:+447700900123"], 100.0, "toys"),
            ])
            .unwrap();
        let named = |who: &str| {
            customers
                .profile(id(who))
                .unwrap()
                .unwrap()
                .persona
                .map(|p| p.name)
        };
        let ana = customers
            .profile(id("email:ana@example.com"))
            .unwrap()
            .unwrap();
        assert_eq!(
            ana.persona,
            Some(PersonaMatch {
                name: "patron".into(),
                description: "patron: who they are".into(),
                reasons: vec!["trait revenue is 1200.0 (wanted ≥ 1000)".into()],
            })
        );
        assert_eq!(named("phone:+447700900123").as_deref(), Some("reachable"));

        customers
            .ingest(common::event(
                "link",
                5,
                &["email:ana@example.com", "phone:+447700900123"],
            ))
            .unwrap();
        assert_eq!(named("email:ana@example.com").as_deref(), Some("reachable"));
        let merged = customers
            .profile(id("email:ana@example.com"))
            .unwrap()
            .unwrap();
        customers
            .unmerge(
                merged.customer_id,
                merged.merges[0].id,
                true,
                &Actor::new("ops", "two people"),
            )
            .unwrap();
        assert_eq!(named("email:ana@example.com").as_deref(), Some("patron"));
        assert_eq!(named("phone:+447700900123").as_deref(), Some("reachable"));
    }
}

#[test]
fn a_view_without_personas_names_none_and_a_bad_persona_is_refused() {
    use oneview::audience::Persona;
    let customers = Customers::new(MemoryStore::new());
    customers
        .ingest(order("o1", 1, &["email:ana@example.com"], 5.0, "books"))
        .unwrap();
    let profile = customers
        .profile(id("email:ana@example.com"))
        .unwrap()
        .unwrap();
    assert_eq!(profile.persona, None);
    let nameless = Persona {
        name: "vague".into(),
        description: String::new(),
        priority: 0,
        rule: Rule::Any {
            rules: vec![
                always(),
                Rule::Trait {
                    name: String::new(),
                    test: Comparison::Exists,
                },
            ],
        },
    };
    match customers.with_personas(vec![nameless], vec![]) {
        Err(Error::Rule(err)) => assert_eq!(err.path, "rule.rules[1]", "{err}"),
        other => panic!("expected a rule error, got {:?}", other.map(|_| ())),
    }
}

#[test]
fn a_bad_computed_trait_names_the_path_of_its_bad_part() {
    let path = |definition: ComputedTrait| definition.validate().unwrap_err().path;
    assert_eq!(
        path(orders("spent", |p| Aggregate::Sum { property: p }).within_days(0)),
        "computed[spent].within_days"
    );
    assert_eq!(
        path(ComputedTrait::new(
            "top",
            EventFilter::named("Order Completed"),
            Aggregate::Max {
                property: " ".into()
            }
        )),
        "computed[top].property"
    );
    assert_eq!(
        path(ComputedTrait::new(
            "n",
            EventFilter::named(""),
            Aggregate::Count
        )),
        "computed[n].events.names[0]"
    );
    assert_eq!(
        path(ComputedTrait::new(
            " ",
            EventFilter::named("Order Completed"),
            Aggregate::Count
        )),
        "computed"
    );
}
