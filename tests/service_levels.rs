//! Service levels measured on conversations, checked against answers worked out by hand:
//! wall clock and business hours across a weekend and a change to summer time, a pause
//! while pending, next replies, a breach by one second, targets by channel and priority.

mod common;

use chrono::{DateTime, NaiveTime, TimeZone, Utc, Weekday};
use common::{backends, id};
use oneview::conversation::sla::{
    self, BusinessHours, Measure, Metric, Opening, SlaError, SlaPolicy, Standing, Target,
};
use oneview::conversation::{Conversation, group};
use oneview::{Channel, CustomerId, Direction, Interaction, InteractionStatus};
use serde_json::json;

fn utc(day: u32, hour: u32, minute: u32, second: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, day, hour, minute, second)
        .unwrap()
}

fn said(key: &str, direction: Direction, channel: Channel, at: DateTime<Utc>) -> Interaction {
    Interaction::builder("desk", channel, direction)
        .key(key)
        .thread("t")
        .occurred_at(at)
        .build()
        .unwrap()
}

fn conversation(interactions: Vec<Interaction>) -> Conversation {
    group(CustomerId::new(), interactions, None).remove(0)
}

fn berlin_office() -> BusinessHours {
    BusinessHours::weekdays(
        "Europe/Berlin",
        NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
        NaiveTime::from_hms_opt(17, 0, 0).unwrap(),
    )
}

fn only(measures: Vec<Measure>, metric: Metric) -> Vec<Measure> {
    measures
        .into_iter()
        .filter(|m| m.metric == metric)
        .collect()
}

/// Friday 6 March 2026, 16:30 in Berlin (15:30 UTC, winter time) to Monday 09:45
/// (08:45 UTC): 30 minutes on Friday and 45 on Monday count, 75 in all, against 60.
#[test]
fn business_hours_skip_the_weekend() {
    let case = conversation(vec![
        said("q", Direction::Inbound, Channel::Email, utc(6, 15, 30, 0)),
        said("a", Direction::Outbound, Channel::Email, utc(9, 8, 45, 0)),
    ]);
    let policy = SlaPolicy::new(vec![Target::new(Metric::FirstReply, 3600)])
        .in_business_hours(berlin_office());
    let first = &sla::measure(&policy, &case, utc(10, 0, 0, 0)).unwrap()[0];
    assert_eq!(first.counted_seconds, 75 * 60);
    assert_eq!(first.wall_clock_seconds, (2 * 24 + 17) * 3600 + 15 * 60);
    assert_eq!(first.due_at, utc(9, 8, 30, 0), "Monday 09:30 in Berlin");
    assert_eq!(first.standing, Standing::Breached);
    assert_eq!(first.margin_seconds, -15 * 60);
}

/// Friday 27 March 16:00 in Berlin (15:00 UTC) to Monday 30 March 10:00 (08:00 UTC):
/// the clocks went forward on Sunday, so 65 hours passed (not 66 as the local times
/// suggest), and one office hour on each side counts.
#[test]
fn a_change_to_summer_time_moves_office_hours_not_elapsed_time() {
    let case = conversation(vec![
        said("q", Direction::Inbound, Channel::Email, utc(27, 15, 0, 0)),
        said("a", Direction::Outbound, Channel::Email, utc(30, 8, 0, 0)),
    ]);
    let business = SlaPolicy::new(vec![Target::new(Metric::FirstReply, 3 * 3600)])
        .in_business_hours(berlin_office());
    let first = &sla::measure(&business, &case, utc(31, 0, 0, 0)).unwrap()[0];
    assert_eq!(first.counted_seconds, 2 * 3600);
    assert_eq!(first.wall_clock_seconds, 65 * 3600);
    assert_eq!(first.due_at, utc(30, 9, 0, 0), "Monday 11:00 summer time");
    assert_eq!(first.standing, Standing::Met);
    assert_eq!(first.margin_seconds, 3600);

    let wall = SlaPolicy::new(vec![Target::new(Metric::FirstReply, 3 * 3600)]);
    let first = &sla::measure(&wall, &case, utc(31, 0, 0, 0)).unwrap()[0];
    assert_eq!(first.counted_seconds, 65 * 3600);
    assert_eq!(first.standing, Standing::Breached);
}

/// Opening hours of 00:00 to 04:00 on Sunday 29 March in Berlin last three hours: the
/// hour from 02:00 to 03:00 does not exist that night.
#[test]
fn opening_hours_across_the_skipped_hour_are_an_hour_shorter() {
    let case = conversation(vec![
        said("q", Direction::Inbound, Channel::Chat, utc(28, 22, 0, 0)),
        Interaction::builder("desk", Channel::Chat, Direction::Outbound)
            .key("done")
            .thread("t")
            .occurred_at(utc(29, 3, 0, 0))
            .status(InteractionStatus::Closed)
            .closed_at(utc(29, 3, 0, 0))
            .build()
            .unwrap(),
    ]);
    let night = BusinessHours {
        time_zone: "Europe/Berlin".into(),
        week: vec![Opening {
            day: Weekday::Sun,
            from: NaiveTime::from_hms_opt(0, 0, 0).unwrap(),
            to: NaiveTime::from_hms_opt(4, 0, 0).unwrap(),
        }],
    };
    let policy =
        SlaPolicy::new(vec![Target::new(Metric::Resolution, 4 * 3600)]).in_business_hours(night);
    let resolution = &sla::measure(&policy, &case, utc(30, 0, 0, 0)).unwrap()[0];
    assert_eq!(resolution.counted_seconds, 3 * 3600);
    assert_eq!(resolution.standing, Standing::Met);
}

/// 09:00 the customer writes; 09:10 an agent answers and waits on the customer
/// (pending); 11:00 the customer writes again; 12:00 the agent answers and closes.
#[test]
fn pending_time_pauses_the_clock_and_the_next_reply_is_measured() {
    let mut answer = said("a", Direction::Outbound, Channel::Email, utc(2, 9, 10, 0));
    answer.status = InteractionStatus::Pending;
    let closing = Interaction::builder("desk", Channel::Phone, Direction::Outbound)
        .key("close")
        .thread("t")
        .occurred_at(utc(2, 12, 0, 0))
        .status(InteractionStatus::Closed)
        .closed_at(utc(2, 12, 0, 0))
        .build()
        .unwrap();
    let case = conversation(vec![
        said("q1", Direction::Inbound, Channel::Email, utc(2, 9, 0, 0)),
        answer,
        said("q2", Direction::Inbound, Channel::Email, utc(2, 11, 0, 0)),
        closing,
    ]);
    let targets = vec![
        Target::new(Metric::FirstReply, 15 * 60),
        Target::new(Metric::NextReply, 30 * 60),
        Target::new(Metric::Resolution, 2 * 3600),
    ];
    let paused = SlaPolicy::new(targets.clone()).paused_while_pending();
    let measures = sla::measure(&paused, &case, utc(3, 0, 0, 0)).unwrap();
    let first = &only(measures.clone(), Metric::FirstReply)[0];
    assert_eq!(
        (first.counted_seconds, first.standing),
        (600, Standing::Met)
    );
    assert_eq!(first.margin_seconds, 300);
    let next = only(measures.clone(), Metric::NextReply);
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].started_at, utc(2, 11, 0, 0));
    assert_eq!(next[0].due_at, utc(2, 11, 30, 0));
    assert_eq!(next[0].standing, Standing::Breached);
    assert_eq!(next[0].margin_seconds, -30 * 60);
    let resolution = &only(measures, Metric::Resolution)[0];
    assert_eq!(
        resolution.counted_seconds,
        70 * 60,
        "10 + 60 minutes, the rest paused"
    );
    assert_eq!(resolution.wall_clock_seconds, 3 * 3600);
    assert_eq!(resolution.due_at, utc(2, 12, 50, 0));
    assert_eq!(resolution.standing, Standing::Met);

    let running = SlaPolicy::new(targets);
    let resolution = &only(
        sla::measure(&running, &case, utc(3, 0, 0, 0)).unwrap(),
        Metric::Resolution,
    )[0];
    assert_eq!(resolution.counted_seconds, 3 * 3600);
    assert_eq!(resolution.due_at, utc(2, 11, 0, 0));
    assert_eq!(resolution.margin_seconds, -3600);
}

#[test]
fn one_second_late_is_a_breach_and_on_time_is_met() {
    let policy = SlaPolicy::new(vec![Target::new(Metric::FirstReply, 3600)]);
    for (answered, standing, margin) in [
        (utc(2, 10, 0, 1), Standing::Breached, -1),
        (utc(2, 10, 0, 0), Standing::Met, 0),
    ] {
        let case = conversation(vec![
            said("q", Direction::Inbound, Channel::Email, utc(2, 9, 0, 0)),
            said("a", Direction::Outbound, Channel::Email, answered),
        ]);
        let first = &sla::measure(&policy, &case, utc(3, 0, 0, 0)).unwrap()[0];
        assert_eq!((first.standing, first.margin_seconds), (standing, margin));
    }
}

#[test]
fn an_unanswered_message_runs_until_it_falls_due() {
    let case = conversation(vec![said(
        "q",
        Direction::Inbound,
        Channel::Email,
        utc(2, 9, 0, 0),
    )]);
    let policy = SlaPolicy::new(vec![Target::new(Metric::FirstReply, 3600)]);
    let before = &sla::measure(&policy, &case, utc(2, 9, 30, 0)).unwrap()[0];
    assert_eq!(
        (before.standing, before.margin_seconds),
        (Standing::Running, 1800)
    );
    assert_eq!(before.stopped_at, None);
    let after = &sla::measure(&policy, &case, utc(2, 10, 30, 0)).unwrap()[0];
    assert_eq!(
        (after.standing, after.margin_seconds),
        (Standing::Breached, -1800)
    );
}

/// A conversation begun by email keeps the email target when the reply is a call; a
/// conversation marked urgent gets the urgent target.
#[test]
fn targets_follow_the_first_channel_and_the_priority() {
    let policy = SlaPolicy::new(vec![
        Target::new(Metric::FirstReply, 30 * 60),
        Target::new(Metric::FirstReply, 3600).on_channel(Channel::Email),
        Target::new(Metric::FirstReply, 5 * 60).on_channel(Channel::Phone),
        Target::new(Metric::FirstReply, 10 * 60).with_priority("urgent"),
    ]);
    let by_email = conversation(vec![
        said("q", Direction::Inbound, Channel::Email, utc(2, 9, 0, 0)),
        said("a", Direction::Outbound, Channel::Phone, utc(2, 9, 20, 0)),
    ]);
    let first = &sla::measure(&policy, &by_email, utc(3, 0, 0, 0)).unwrap()[0];
    assert_eq!(first.target_seconds, 3600);
    assert_eq!(first.margin_seconds, 40 * 60);

    let mut urgent = said("q", Direction::Inbound, Channel::Chat, utc(2, 9, 0, 0));
    urgent.properties.insert("priority".into(), json!("urgent"));
    let urgent = conversation(vec![
        urgent,
        said("a", Direction::Outbound, Channel::Chat, utc(2, 9, 20, 0)),
    ]);
    let first = &sla::measure(&policy, &urgent, utc(3, 0, 0, 0)).unwrap()[0];
    assert_eq!(first.target_seconds, 10 * 60);
    assert_eq!(first.standing, Standing::Breached);
    assert_eq!(first.margin_seconds, -10 * 60);
}

#[test]
fn a_policy_that_cannot_work_is_refused_naming_the_field() {
    let nine = NaiveTime::from_hms_opt(9, 0, 0).unwrap();
    let five = NaiveTime::from_hms_opt(17, 0, 0).unwrap();
    let noon = NaiveTime::from_hms_opt(12, 0, 0).unwrap();
    let negative = SlaPolicy::new(vec![
        Target::new(Metric::FirstReply, 60),
        Target::new(Metric::Resolution, -5),
    ]);
    assert_eq!(
        negative.validate(),
        Err(SlaError::NotPositive {
            field: "targets[1].within_seconds".into(),
            value: -5
        })
    );
    let nowhere = SlaPolicy::new(vec![]).in_business_hours(BusinessHours::weekdays(
        "Europe/Atlantis",
        nine,
        five,
    ));
    assert!(matches!(
        nowhere.validate(),
        Err(SlaError::UnknownTimeZone { .. })
    ));
    let backwards = SlaPolicy::new(vec![]).in_business_hours(BusinessHours::weekdays(
        "Europe/Berlin",
        five,
        nine,
    ));
    assert_eq!(
        backwards.validate(),
        Err(SlaError::EmptyOpening {
            field: "business_hours.week[0]".into()
        })
    );
    let mut overlapping = berlin_office();
    overlapping.week.push(Opening {
        day: Weekday::Wed,
        from: noon,
        to: five,
    });
    let error = SlaPolicy::new(vec![])
        .in_business_hours(overlapping)
        .validate()
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "business_hours.week[5] overlaps business_hours.week[2]"
    );
    let closed = SlaPolicy::new(vec![]).in_business_hours(BusinessHours {
        time_zone: "UTC".into(),
        week: vec![],
    });
    assert_eq!(closed.validate(), Err(SlaError::NeverOpen));
    let case = conversation(vec![said(
        "q",
        Direction::Inbound,
        Channel::Email,
        utc(2, 9, 0, 0),
    )]);
    assert!(sla::measure(&negative, &case, utc(2, 10, 0, 0)).is_err());
}

/// The question arrives after its answer: the figures are those of the true order.
#[test]
fn a_late_record_moves_the_figures_as_if_it_had_come_in_time() {
    let policy = SlaPolicy::new(vec![Target::new(Metric::FirstReply, 3600)]);
    for customers in backends() {
        let ids = ["email:fay@example.com"];
        let with_ids = |i: Interaction| {
            let mut i = i;
            i.identifiers = vec![id(ids[0])];
            i
        };
        customers
            .ingest(with_ids(said(
                "a",
                Direction::Outbound,
                Channel::Email,
                utc(2, 9, 30, 0),
            )))
            .unwrap();
        let case = customers.conversation(id(ids[0]), "t").unwrap().unwrap();
        assert!(
            sla::measure(&policy, &case, utc(3, 0, 0, 0))
                .unwrap()
                .is_empty(),
            "nothing to reply to yet"
        );
        customers
            .ingest(with_ids(said(
                "q",
                Direction::Inbound,
                Channel::Email,
                utc(2, 9, 0, 0),
            )))
            .unwrap();
        let case = customers.conversation(id(ids[0]), "t").unwrap().unwrap();
        let first = &sla::measure(&policy, &case, utc(3, 0, 0, 0)).unwrap()[0];
        assert_eq!(first.counted_seconds, 1800);
        assert_eq!(first.standing, Standing::Met);
    }
}

/// A target for a group of customers applies to those whose trait holds its value, and
/// wins over the general one; other customers, and `measure` without traits, get the
/// general one.
#[test]
fn a_tighter_target_for_valuable_customers() {
    let policy = SlaPolicy::new(vec![
        Target::new(Metric::FirstReply, 4 * 3600),
        Target::new(Metric::FirstReply, 3600).for_customers("tier", json!("gold")),
    ]);
    for customers in backends() {
        for (email, tier) in [("gold@example.com", "gold"), ("plain@example.com", "basic")] {
            let set = oneview::Event::builder("crm", Channel::Web, "Tier Changed")
                .message_id(&format!("tier-{email}"))
                .occurred_at(utc(1, 8, 0, 0))
                .with_identifier(id(&format!("email:{email}")))
                .set_trait("tier", json!(tier))
                .build()
                .unwrap();
            customers.ingest(set).unwrap();
            for (key, direction, at) in [
                ("q", Direction::Inbound, utc(2, 9, 0, 0)),
                ("a", Direction::Outbound, utc(2, 11, 0, 0)),
            ] {
                let contact = Interaction::builder("desk", Channel::Email, direction)
                    .key(&format!("{email}-{key}"))
                    .thread(&format!("case-{email}"))
                    .occurred_at(at)
                    .with_identifier(id(&format!("email:{email}")))
                    .build()
                    .unwrap();
                customers.ingest(contact).unwrap();
            }
        }
        let measured = |email: &str| {
            customers
                .service_levels(
                    id(&format!("email:{email}")),
                    format!("case-{email}").as_str(),
                    &policy,
                    utc(3, 0, 0, 0),
                )
                .unwrap()
                .expect("the conversation")
                .remove(0)
        };
        let gold = measured("gold@example.com");
        assert_eq!(
            (gold.target_seconds, gold.standing),
            (3600, Standing::Breached)
        );
        assert_eq!(gold.margin_seconds, -3600);
        let plain = measured("plain@example.com");
        assert_eq!(
            (plain.target_seconds, plain.standing),
            (4 * 3600, Standing::Met)
        );
    }
    let without_traits = sla::measure(
        &policy,
        &conversation(vec![
            said("q", Direction::Inbound, Channel::Email, utc(2, 9, 0, 0)),
            said("a", Direction::Outbound, Channel::Email, utc(2, 11, 0, 0)),
        ]),
        utc(3, 0, 0, 0),
    )
    .unwrap();
    assert_eq!(without_traits[0].target_seconds, 4 * 3600);
}

/// A call's answer is timed from when it rang; one nobody picked up runs until due and
/// then breaches.
#[test]
fn a_call_nobody_picked_up_breaches_once_due() {
    let rang = utc(2, 9, 0, 0);
    let call = |answered: Option<DateTime<Utc>>| {
        let mut builder = Interaction::builder("phones", Channel::Phone, Direction::Inbound)
            .key("call")
            .kind(oneview::InteractionKind::Call)
            .thread("t")
            .occurred_at(rang);
        if let Some(at) = answered {
            builder = builder.answered_at(at);
        }
        conversation(vec![builder.build().unwrap()])
    };
    let policy = SlaPolicy::new(vec![Target::new(Metric::CallAnswer, 60)]);
    let answer = |answered, as_of| {
        let measures = sla::measure(&policy, &call(answered), as_of).unwrap();
        assert_eq!(measures.len(), 1, "one inbound call, one measure");
        measures[0].clone()
    };
    let in_time = answer(Some(utc(2, 9, 1, 0)), utc(2, 10, 0, 0));
    assert_eq!(
        (in_time.standing, in_time.margin_seconds),
        (Standing::Met, 0)
    );
    let late = answer(Some(utc(2, 9, 1, 1)), utc(2, 10, 0, 0));
    assert_eq!(
        (late.standing, late.margin_seconds),
        (Standing::Breached, -1)
    );
    let ringing = answer(None, utc(2, 9, 0, 30));
    assert_eq!(
        (ringing.standing, ringing.margin_seconds),
        (Standing::Running, 30)
    );
    let missed = answer(None, utc(2, 9, 5, 0));
    assert_eq!(
        (missed.standing, missed.due_at),
        (Standing::Breached, utc(2, 9, 1, 0))
    );
}
