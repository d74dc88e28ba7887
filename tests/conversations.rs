//! Conversations read from the interaction history of the resolved customer: across
//! channels, sources and merged profiles, whatever order the records arrive in.

mod common;

use common::{at, backends, event, id};
use oneview::conversation::{
    ACCOUNT_OWNER_TRAIT, ConversationKey, ConversationSummary, Responsible,
};
use oneview::{Channel, Direction, Error, Interaction, InteractionStatus, Record};

/// A contact in thread `thread` (none for `None`), carrying `ids`.
fn contact(
    source: &str,
    key: &str,
    channel: Channel,
    direction: Direction,
    thread: Option<&str>,
    minute: i64,
    ids: &[&str],
) -> oneview::InteractionBuilder {
    let builder = Interaction::builder(source, channel, direction)
        .key(key)
        .occurred_at(at(minute))
        .updated_at(at(minute));
    let builder = match thread {
        Some(thread) => builder.thread(thread),
        None => builder,
    };
    ids.iter().fold(builder, |b, i| b.with_identifier(id(i)))
}

/// Ana writes by email; the phone system, which knows only her number, logs the call
/// that answers her in the same thread; a chat about something else is closed; an event
/// from the shop links her email and phone, so all of it is one customer.
fn ana_records() -> Vec<Record> {
    vec![
        contact(
            "helpdesk",
            "mail-1",
            Channel::Email,
            Direction::Inbound,
            Some("case-9"),
            0,
            &["email:ana@example.com"],
        )
        .subject("My parcel is late")
        .build()
        .unwrap()
        .into(),
        contact(
            "phone-system",
            "call-1",
            Channel::Phone,
            Direction::Outbound,
            Some("case-9"),
            30,
            &["phone:+442079460958"],
        )
        .owner("agent.kim")
        .status(InteractionStatus::Pending)
        .build()
        .unwrap()
        .into(),
        contact(
            "chat-widget",
            "chat-1",
            Channel::Chat,
            Direction::Inbound,
            Some("chat-1"),
            10,
            &["email:ana@example.com"],
        )
        .owner("team.sales")
        .status(InteractionStatus::Closed)
        .build()
        .unwrap()
        .into(),
        event(
            "shop-1",
            5,
            &["email:ana@example.com", "phone:+442079460958"],
        )
        .into(),
    ]
}

#[test]
fn a_thread_spans_channels_sources_and_merged_profiles() {
    for customers in backends() {
        for record in ana_records() {
            customers.ingest(record).unwrap();
        }
        let phone = id("phone:+442079460958");
        let case = customers
            .conversation(&phone, "case-9")
            .unwrap()
            .expect("the thread is found from either identifier");
        let keys: Vec<&str> = case.interactions.iter().map(|i| i.key.as_str()).collect();
        assert_eq!(keys, ["mail-1", "call-1"], "oldest first");
        let summary = &case.summary;
        assert_eq!(summary.key, ConversationKey::Thread("case-9".into()));
        assert_eq!(summary.channels, [Channel::Email, Channel::Phone]);
        assert_eq!(summary.owners, ["agent.kim"]);
        assert_eq!(summary.current_owner.as_deref(), Some("agent.kim"));
        assert_eq!(summary.status, InteractionStatus::Pending, "from the call");
        assert_eq!(summary.first_contact, at(0));
        assert_eq!(summary.last_contact, at(30));
        assert_eq!(summary.last_customer_message, Some(at(0)));
        assert_eq!(summary.last_company_reply, Some(at(30)));
        assert!(!summary.awaiting_reply());
        assert_eq!(summary.contacts, 2);

        let email = id("email:ana@example.com");
        let open = customers.open_conversations(&email).unwrap();
        assert_eq!(open, vec![summary.clone()], "the closed chat is left out");
        assert_eq!(customers.conversations(&email).unwrap().len(), 2);

        let profile = customers.profile(&email).unwrap().unwrap();
        assert_eq!(profile.open_conversations, vec![summary.clone()]);
        let last_contact = |channel: Channel| {
            profile
                .channels
                .iter()
                .find(|c| c.channel == channel)
                .and_then(|c| c.last_contact)
        };
        assert_eq!(last_contact(Channel::Email), Some(at(0)));
        assert_eq!(last_contact(Channel::Phone), Some(at(30)));
        assert_eq!(last_contact(Channel::Chat), Some(at(10)));
        assert_eq!(last_contact(Channel::Web), None, "events are not contacts");
    }
}

/// Every arrival order of the same records gives the same conversations.
#[test]
fn conversations_do_not_depend_on_arrival_order() {
    let records = ana_records();
    let mut expected: Option<Vec<ConversationSummary>> = None;
    let mut order: Vec<usize> = (0..records.len()).collect();
    // Heap's algorithm: every permutation of the four records.
    let mut counters = vec![0; order.len()];
    let mut permutations = vec![order.clone()];
    let mut i = 1;
    while i < order.len() {
        if counters[i] < i {
            let j = if i % 2 == 0 { 0 } else { counters[i] };
            order.swap(j, i);
            permutations.push(order.clone());
            counters[i] += 1;
            i = 1;
        } else {
            counters[i] = 0;
            i += 1;
        }
    }
    assert_eq!(permutations.len(), 24);
    for permutation in permutations {
        for customers in backends() {
            for &n in &permutation {
                customers.ingest(records[n].clone()).unwrap();
            }
            let seen = customers
                .conversations(id("email:ana@example.com"))
                .unwrap();
            match &expected {
                None => expected = Some(seen),
                Some(expected) => assert_eq!(&seen, expected, "order {permutation:?}"),
            }
        }
    }
}

#[test]
fn a_later_version_closes_the_conversation_and_an_older_one_does_not_reopen_it() {
    for customers in backends() {
        let open = contact(
            "helpdesk",
            "ticket-1",
            Channel::Email,
            Direction::Inbound,
            Some("t-1"),
            0,
            &["email:bo@example.com"],
        );
        let closed = open
            .clone()
            .updated_at(at(60))
            .status(InteractionStatus::Closed)
            .build()
            .unwrap();
        let open = open.build().unwrap();
        customers.ingest(closed).unwrap();
        customers.ingest(open).unwrap();
        let bo = id("email:bo@example.com");
        let all = customers.conversations(&bo).unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].status, InteractionStatus::Closed);
        assert!(customers.open_conversations(&bo).unwrap().is_empty());
        assert!(
            customers
                .profile(&bo)
                .unwrap()
                .unwrap()
                .open_conversations
                .is_empty()
        );
    }
}

#[test]
fn a_late_message_is_placed_by_its_time_not_its_arrival() {
    for customers in backends() {
        let cy = ["email:cy@example.com"];
        // The reply arrives first, then the question it answered, then a follow-up.
        let reply = contact(
            "desk",
            "r",
            Channel::Email,
            Direction::Outbound,
            Some("t"),
            20,
            &cy,
        )
        .build()
        .unwrap();
        let question = contact(
            "desk",
            "q",
            Channel::Chat,
            Direction::Inbound,
            Some("t"),
            10,
            &cy,
        )
        .build()
        .unwrap();
        customers.ingest(reply).unwrap();
        customers.ingest(question).unwrap();
        let case = customers.conversation(id(cy[0]), "t").unwrap().unwrap();
        assert_eq!(case.interactions[0].key, "q");
        assert_eq!(case.summary.first_contact, at(10));
        assert!(
            !case.summary.awaiting_reply(),
            "the reply came after the question"
        );

        let follow_up = contact(
            "desk",
            "f",
            Channel::Chat,
            Direction::Inbound,
            Some("t"),
            30,
            &cy,
        )
        .build()
        .unwrap();
        customers.ingest(follow_up).unwrap();
        let case = customers.conversation(id(cy[0]), "t").unwrap().unwrap();
        assert!(case.summary.awaiting_reply(), "the customer wrote again");
        assert_eq!(case.summary.last_customer_message, Some(at(30)));
    }
}

#[test]
fn a_contact_without_a_thread_is_found_by_its_id() {
    for customers in backends() {
        let lone = contact(
            "phone-system",
            "call-7",
            Channel::Phone,
            Direction::Inbound,
            None,
            0,
            &["phone:+14155552671"],
        )
        .build()
        .unwrap();
        let lone_id = lone.id;
        customers.ingest(lone).unwrap();
        let phone = id("phone:+14155552671");
        let found = customers.conversation(&phone, lone_id).unwrap().unwrap();
        assert_eq!(found.summary.key, ConversationKey::Contact(lone_id));
        assert_eq!(found.interactions.len(), 1);
        assert!(
            customers
                .conversation(&phone, "no-such-thread")
                .unwrap()
                .is_none()
        );
    }
}

#[test]
fn an_unknown_customer_has_no_conversations() {
    for customers in backends() {
        let nobody = id("email:nobody@example.com");
        assert!(customers.conversation(&nobody, "t").unwrap().is_none());
        assert!(matches!(
            customers.open_conversations(&nobody),
            Err(Error::UnknownCustomer)
        ));
    }
}

/// A complaint answered by phone, a follow-up by chat answered by email, then closed: the
/// first reply, the next reply and the close are found whatever order the records come in.
#[test]
fn replies_and_the_close_are_recognised_across_channels_in_any_order() {
    let ana = ["email:ana@example.com"];
    let records: Vec<Interaction> = vec![
        contact(
            "mail",
            "m-1",
            Channel::Email,
            Direction::Inbound,
            Some("c"),
            0,
            &ana,
        )
        .build()
        .unwrap(),
        contact(
            "mail",
            "m-2",
            Channel::Email,
            Direction::Inbound,
            Some("c"),
            5,
            &ana,
        )
        .build()
        .unwrap(),
        contact(
            "phone",
            "call-1",
            Channel::Phone,
            Direction::Outbound,
            Some("c"),
            30,
            &ana,
        )
        .owner("agent.kim")
        .build()
        .unwrap(),
        contact(
            "chat",
            "chat-1",
            Channel::Chat,
            Direction::Inbound,
            Some("c"),
            50,
            &ana,
        )
        .build()
        .unwrap(),
        contact(
            "mail",
            "m-3",
            Channel::Email,
            Direction::Outbound,
            Some("c"),
            80,
            &ana,
        )
        .owner("agent.lee")
        .status(InteractionStatus::Closed)
        .closed_at(at(90))
        .updated_at(at(90))
        .build()
        .unwrap(),
    ];
    let mut orders: Vec<Vec<usize>> = (0..records.len())
        .map(|shift| {
            (0..records.len())
                .map(|i| (i + shift) % records.len())
                .collect()
        })
        .collect();
    orders.extend(orders.clone().into_iter().map(|mut o| {
        o.reverse();
        o
    }));
    for order in orders {
        for customers in backends() {
            for &n in &order {
                customers.ingest(records[n].clone()).unwrap();
            }
            let case = customers
                .conversation(id(ana[0]), "c")
                .unwrap()
                .unwrap()
                .summary;
            let replies: Vec<_> = case
                .responses
                .iter()
                .map(|r| {
                    (
                        r.asked_at,
                        r.answered_at,
                        r.answered_by.as_deref(),
                        r.answered_on.clone(),
                    )
                })
                .collect();
            assert_eq!(
                replies,
                [
                    (at(0), Some(at(30)), Some("agent.kim"), Some(Channel::Phone)),
                    (
                        at(50),
                        Some(at(80)),
                        Some("agent.lee"),
                        Some(Channel::Email)
                    ),
                ],
                "order {order:?}"
            );
            assert_eq!(case.first_reply_at(), Some(at(30)));
            assert_eq!(case.status, InteractionStatus::Closed);
            assert_eq!(case.closed_at, Some(at(90)));
            assert_eq!(case.responsible, Responsible::Owner("agent.lee".into()));
            assert!(!case.awaiting_reply());
        }
    }
}

#[test]
fn a_message_and_its_answer_at_the_same_instant_is_a_reply_in_no_time() {
    for customers in backends() {
        let dee = ["email:dee@example.com"];
        let answer = contact(
            "desk",
            "a",
            Channel::Chat,
            Direction::Outbound,
            Some("t"),
            7,
            &dee,
        )
        .build()
        .unwrap();
        let question = contact(
            "desk",
            "q",
            Channel::Chat,
            Direction::Inbound,
            Some("t"),
            7,
            &dee,
        )
        .build()
        .unwrap();
        customers.ingest(answer).unwrap();
        customers.ingest(question).unwrap();
        let case = customers.conversation(id(dee[0]), "t").unwrap().unwrap();
        assert_eq!(case.summary.responses.len(), 1);
        assert_eq!(case.summary.first_reply_at(), Some(at(7)));
    }
}

/// Nobody owns the conversation until the customer gets an account owner, who then
/// answers for it; an owner named on an interaction comes first.
#[test]
fn the_account_owner_answers_for_what_nobody_owns() {
    for customers in backends() {
        let eve = ["email:eve@example.com"];
        customers
            .ingest(
                contact(
                    "desk",
                    "q",
                    Channel::Email,
                    Direction::Inbound,
                    Some("t"),
                    0,
                    &eve,
                )
                .build()
                .unwrap(),
            )
            .unwrap();
        let responsible = |customers: &common::Dyn| {
            customers.open_conversations(id(eve[0])).unwrap()[0]
                .responsible
                .clone()
        };
        assert_eq!(responsible(&customers), Responsible::Unowned);
        customers
            .ingest(
                oneview::Event::builder("crm", Channel::Other("crm".into()), "Account Assigned")
                    .message_id("assign-1")
                    .occurred_at(at(10))
                    .with_identifier(id(eve[0]))
                    .set_trait(ACCOUNT_OWNER_TRAIT, serde_json::json!("agent.lee"))
                    .build()
                    .unwrap(),
            )
            .unwrap();
        assert_eq!(
            responsible(&customers),
            Responsible::AccountOwner("agent.lee".into())
        );
        let profile = customers.profile(id(eve[0])).unwrap().unwrap();
        assert_eq!(
            profile.open_conversations[0].responsible,
            Responsible::AccountOwner("agent.lee".into())
        );
        customers
            .ingest(
                contact(
                    "desk",
                    "r",
                    Channel::Email,
                    Direction::Outbound,
                    Some("t"),
                    20,
                    &eve,
                )
                .owner("agent.kim")
                .build()
                .unwrap(),
            )
            .unwrap();
        assert_eq!(
            responsible(&customers),
            Responsible::Owner("agent.kim".into())
        );
    }
}

/// A reply must say which conversation it answers: one with no thread is refused with
/// the field named, on the builder and on a record deserialized by hand, and nothing is
/// stored.
#[test]
fn a_reply_with_no_thread_is_refused_and_nothing_is_stored() {
    let asked = contact(
        "desk",
        "m-1",
        Channel::Email,
        Direction::Inbound,
        None,
        0,
        &["email:ana@example.com"],
    )
    .build()
    .unwrap();
    let refused = oneview::ValidationError::Missing {
        field: "thread",
        required_by: "in_reply_to",
    };
    let built = contact(
        "desk",
        "m-2",
        Channel::Email,
        Direction::Outbound,
        None,
        5,
        &["email:ana@example.com"],
    )
    .in_reply_to(&asked)
    .build();
    assert_eq!(built.unwrap_err(), refused);

    let mut by_hand = contact(
        "desk",
        "m-2",
        Channel::Email,
        Direction::Outbound,
        None,
        5,
        &["email:ana@example.com"],
    )
    .build()
    .unwrap();
    by_hand.in_reply_to = Some(asked.id);
    assert_eq!(by_hand.validate().unwrap_err(), refused);
    for customers in backends() {
        let err = customers.ingest(by_hand.clone()).unwrap_err();
        assert!(
            matches!(err, Error::Invalid(ref e) if *e == refused),
            "{err:?}"
        );
        assert!(
            customers
                .profile(id("email:ana@example.com"))
                .unwrap()
                .is_none()
        );
    }

    let threaded = contact(
        "desk",
        "m-3",
        Channel::Email,
        Direction::Inbound,
        Some("case-1"),
        0,
        &[],
    )
    .build()
    .unwrap();
    let elsewhere = contact(
        "desk",
        "m-4",
        Channel::Email,
        Direction::Outbound,
        Some("case-2"),
        5,
        &[],
    )
    .in_reply_to(&threaded)
    .build();
    assert_eq!(
        elsewhere.unwrap_err(),
        oneview::ValidationError::Mismatch {
            field: "thread",
            with: "in_reply_to"
        }
    );
}
