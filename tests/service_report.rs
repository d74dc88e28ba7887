//! The accountability report over a week, checked against figures worked out by hand,
//! and the same for every arrival order on every backend.

mod common;

use chrono::{DateTime, TimeZone, Utc};
use common::backends;
use oneview::conversation::report::{GroupBy, Report, ReportOptions};
use oneview::conversation::sla::{Metric, SlaPolicy, Target};
use oneview::{
    Channel, Direction, Event, IdentifierKind, Interaction, InteractionKind, InteractionStatus,
    Record,
};
use proptest::prelude::*;
use serde_json::json;

fn utc(day: u32, hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, day, hour, 0, 0).unwrap()
}

#[allow(clippy::too_many_arguments)]
fn contact(
    email: &str,
    key: &str,
    thread: &str,
    channel: Channel,
    direction: Direction,
    at: DateTime<Utc>,
    owner: Option<&str>,
    status: InteractionStatus,
) -> Interaction {
    let mut builder = Interaction::builder("desk", channel, direction)
        .key(key)
        .thread(thread)
        .occurred_at(at)
        .status(status)
        .identifier(IdentifierKind::Email, email);
    if let Some(owner) = owner {
        builder = builder.owner(owner);
    }
    if status == InteractionStatus::Closed {
        builder = builder.closed_at(at);
    }
    builder.build().unwrap()
}

fn survey(email: &str, message: &str, at: DateTime<Utc>, answer: serde_json::Value) -> Event {
    Event::builder("survey-tool", Channel::Email, "Survey Answered")
        .message_id(message)
        .occurred_at(at)
        .identifier(IdentifierKind::Email, email)
        .properties(answer)
        .build()
        .unwrap()
}

/// A week of one small help desk (see the test below for what each record means).
fn week() -> Vec<Record> {
    use Direction::{Inbound, Outbound};
    use InteractionStatus::{Closed, Open};
    let (ana, bo, cy) = ("ana@example.com", "bo@example.com", "cy@example.com");
    let complaint = Interaction::builder("social", Channel::Social, Inbound)
        .key("post-1")
        .kind(InteractionKind::Feedback)
        .thread("c2")
        .occurred_at(utc(4, 9))
        .identifier(IdentifierKind::Email, cy)
        .properties(json!({"feedback_kind": "complaint"}))
        .build()
        .unwrap();
    vec![
        contact(
            ana,
            "a1-q",
            "a1",
            Channel::Email,
            Inbound,
            utc(2, 9),
            None,
            Open,
        )
        .into(),
        Record::Interaction(contact(
            ana,
            "a1-r",
            "a1",
            Channel::Chat,
            Outbound,
            utc(2, 9) + chrono::Duration::minutes(30),
            Some("agent.kim"),
            Open,
        )),
        contact(
            ana,
            "a1-c",
            "a1",
            Channel::Chat,
            Outbound,
            utc(2, 12),
            Some("agent.kim"),
            Closed,
        )
        .into(),
        contact(
            bo,
            "b1-q",
            "b1",
            Channel::Phone,
            Inbound,
            utc(3, 10),
            None,
            Open,
        )
        .into(),
        contact(
            bo,
            "b1-r",
            "b1",
            Channel::Phone,
            Outbound,
            utc(3, 12),
            Some("agent.lee"),
            Open,
        )
        .into(),
        contact(
            cy,
            "c1-q",
            "c1",
            Channel::Email,
            Inbound,
            utc(1, 9),
            None,
            Open,
        )
        .into(),
        complaint.into(),
        contact(
            cy,
            "c2-r",
            "c2",
            Channel::Social,
            Outbound,
            utc(4, 10),
            Some("team.social"),
            Open,
        )
        .into(),
        survey(ana, "s-ana-nps", utc(5, 9), json!({"nps": 9})).into(),
        survey(ana, "s-ana-csat", utc(5, 10), json!({"csat": 5})).into(),
        survey(bo, "s-bo-nps", utc(6, 9), json!({"nps": 3})).into(),
    ]
}

fn options(group_by: GroupBy) -> ReportOptions {
    ReportOptions::new(
        utc(2, 0),
        utc(9, 0),
        SlaPolicy::new(vec![
            Target::new(Metric::FirstReply, 3600),
            Target::new(Metric::Resolution, 24 * 3600),
        ]),
    )
    .grouped_by(group_by)
}

fn report_of(records: &[Record], group_by: GroupBy) -> Vec<Report> {
    backends()
        .into_iter()
        .map(|customers| {
            for record in records {
                customers.ingest(record.clone()).unwrap();
            }
            customers.service_report(options(group_by.clone())).unwrap()
        })
        .collect()
}

/// - a1 (Ana): asks Monday 09:00, answered 09:30 by agent.kim on chat, closed 12:00;
/// - b1 (Bo): asks Tuesday 10:00 by phone, agent.lee answers 12:00, still open;
/// - c1 (Cy): asked the Sunday before the week, never answered, still open;
/// - c2 (Cy): a public complaint on social Wednesday 09:00, team.social answers 10:00;
/// - surveys: Ana NPS 9 and CSAT 5 on Thursday, Bo NPS 3 on Friday, none answered.
#[test]
fn a_week_of_figures_worked_out_by_hand() {
    for report in report_of(&week(), GroupBy::Owner) {
        let total = &report.total;
        assert_eq!((total.opened, total.closed, total.backlog), (3, 1, 3));
        // First replies 1800, 7200 and 3600 s: median 3600, 90th percentile 7200.
        assert_eq!(total.first_reply.count, 3);
        assert_eq!(total.first_reply.p50_s, Some(3600));
        assert_eq!(total.first_reply.p90_s, Some(7200));
        assert_eq!(
            total.first_reply_counted, total.first_reply,
            "wall clock policy"
        );
        assert_eq!(total.resolution.count, 1);
        assert_eq!(total.resolution.p50_s, Some(3 * 3600));
        // a1 and c2 met the first-reply hour (c2 to the second), b1 did not; c1 began
        // before the week and is left out.
        let first = total.attainment[&Metric::FirstReply];
        assert_eq!((first.met, first.breached, first.running), (2, 1, 0));
        // Only a1 closed within a day; b1 and c2 ran past their day.
        let resolution = total.attainment[&Metric::Resolution];
        assert_eq!((resolution.met, resolution.breached), (1, 2));
        assert_eq!((total.feedback, total.unanswered_feedback), (4, 3));
        assert_eq!((total.nps.promoters, total.nps.detractors), (1, 1));
        assert_eq!(total.nps.score, Some(0.0));
        assert_eq!(total.csat.score, Some(100.0));
        assert_eq!(total.public_complaints, 1);
        assert_eq!(total.public_complaint_reply.p50_s, Some(3600));

        let names: Vec<&str> = report.groups.keys().map(String::as_str).collect();
        assert_eq!(names, ["agent.kim", "agent.lee", "team.social", "unowned"]);
        let lee = &report.groups["agent.lee"];
        assert_eq!((lee.opened, lee.backlog), (1, 1));
        assert_eq!(lee.first_reply.p50_s, Some(7200));
        let unowned = &report.groups["unowned"];
        assert_eq!((unowned.opened, unowned.backlog), (0, 1), "c1");
        assert_eq!(unowned.feedback, 3, "the surveys name no owner");
        assert_eq!(report.groups["team.social"].public_complaints, 1);
    }
}

#[test]
fn grouped_by_channel_the_conversations_go_where_they_began() {
    for report in report_of(&week(), GroupBy::Channel) {
        let names: Vec<&str> = report.groups.keys().map(String::as_str).collect();
        assert_eq!(names, ["email", "phone", "social"]);
        assert_eq!(
            report.groups["email"].opened, 1,
            "a1 began by email, c1 before"
        );
        assert_eq!(report.groups["email"].backlog, 1);
        assert_eq!(report.groups["phone"].first_reply.p50_s, Some(7200));
        assert_eq!(
            report.groups["email"].feedback, 3,
            "the surveys came by email"
        );
    }
}

#[test]
fn a_policy_that_cannot_work_is_refused() {
    for customers in backends() {
        let mut bad = options(GroupBy::Owner);
        bad.policy.targets[0].within_seconds = 0;
        assert!(matches!(
            customers.service_report(bad),
            Err(oneview::Error::Policy(_))
        ));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Any arrival order gives the same report, on every backend.
    #[test]
    fn the_report_does_not_depend_on_arrival_order(order in Just(week()).prop_shuffle()) {
        let expected = report_of(&week(), GroupBy::Owner).remove(0);
        for report in report_of(&order, GroupBy::Owner) {
            prop_assert_eq!(&report, &expected);
        }
    }
}

/// Feedback with no thread and no owner of its own goes to the customer's account owner.
#[test]
fn feedback_nobody_owns_goes_to_the_account_owner() {
    let mut records = week();
    records.push(
        Event::builder("crm", Channel::Other("crm".into()), "Account Assigned")
            .message_id("assign-bo")
            .occurred_at(utc(1, 9))
            .identifier(IdentifierKind::Email, "bo@example.com")
            .set_trait(
                oneview::conversation::ACCOUNT_OWNER_TRAIT,
                json!("agent.lee"),
            )
            .build()
            .unwrap()
            .into(),
    );
    for report in report_of(&records, GroupBy::Owner) {
        assert_eq!(report.groups["agent.lee"].feedback, 1, "Bo's survey");
        assert_eq!(report.groups["agent.lee"].nps.detractors, 1);
        assert_eq!(report.groups["unowned"].feedback, 2, "Ana's two surveys");
        assert_eq!(report.total.feedback, 4);
    }
}

/// Teams gather their members' figures; an owner no team lists is a team of their own.
#[test]
fn grouped_by_team_the_members_figures_add_up() {
    for customers in backends() {
        for record in week() {
            customers.ingest(record).unwrap();
        }
        let report = customers
            .service_report(
                options(GroupBy::Team)
                    .with_team("agent.kim", "support")
                    .with_team("agent.lee", "support"),
            )
            .unwrap();
        let names: Vec<&str> = report.groups.keys().map(String::as_str).collect();
        assert_eq!(names, ["support", "team.social", "unowned"]);
        let support = &report.groups["support"];
        assert_eq!((support.opened, support.closed, support.backlog), (2, 1, 1));
        // Kim's 1800 s and Lee's 7200 s.
        assert_eq!(support.first_reply.count, 2);
        assert_eq!(support.first_reply.p90_s, Some(7200));
        assert_eq!(report.groups["unowned"].feedback, 3);
    }
}

/// Grouped by a trait, each customer's conversations and feedback go to their value of
/// it, and customers without it to `none`.
#[test]
fn grouped_by_a_trait_customers_fall_into_their_segment() {
    let mut records = week();
    for (email, tier) in [
        ("ana@example.com", json!("gold")),
        ("bo@example.com", json!(2)),
    ] {
        records.push(
            Event::builder("crm", Channel::Web, "Tier Changed")
                .message_id(&format!("tier-{email}"))
                .occurred_at(utc(1, 8))
                .identifier(IdentifierKind::Email, email)
                .set_trait("tier", tier)
                .build()
                .unwrap()
                .into(),
        );
    }
    for report in report_of(&records, GroupBy::Trait("tier".into())) {
        let names: Vec<&str> = report.groups.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            ["2", "gold", "none"],
            "a number is named by its JSON text"
        );
        let gold = &report.groups["gold"];
        assert_eq!((gold.opened, gold.closed, gold.feedback), (1, 1, 2), "Ana");
        assert_eq!(report.groups["2"].nps.detractors, 1, "Bo's survey");
        let none = &report.groups["none"];
        assert_eq!(
            (none.opened, none.backlog, none.public_complaints),
            (1, 2, 1),
            "Cy"
        );
    }
}

/// Calls answered in the range report how long they rang; the call-answer target is
/// measured per inbound call, and a call nobody picked up breaches it.
#[test]
fn calls_report_how_long_they_rang() {
    use oneview::InteractionKind;
    let call = |key: &str, rang: DateTime<Utc>, answered: Option<i64>| {
        let mut builder = Interaction::builder("phones", Channel::Phone, Direction::Inbound)
            .key(key)
            .kind(InteractionKind::Call)
            .thread(key)
            .occurred_at(rang)
            .identifier(IdentifierKind::Email, "dee@example.com");
        if let Some(seconds) = answered {
            builder = builder.answered_at(rang + chrono::Duration::seconds(seconds));
        }
        Record::from(builder.build().unwrap())
    };
    let records = [
        call("call-1", utc(3, 9), Some(20)),
        call("call-2", utc(3, 10), Some(95)),
        call("call-3", utc(3, 11), None),
    ];
    for customers in backends() {
        for record in records.clone() {
            customers.ingest(record).unwrap();
        }
        let mut options = options(GroupBy::Channel);
        options.policy = SlaPolicy::new(vec![Target::new(Metric::CallAnswer, 60)]);
        let report = customers.service_report(options).unwrap();
        let phone = &report.groups["phone"];
        assert_eq!(phone.call_answer.count, 2);
        assert_eq!(phone.call_answer.p50_s, Some(20));
        assert_eq!(phone.call_answer.p90_s, Some(95));
        let answering = phone.attainment[&Metric::CallAnswer];
        assert_eq!(
            (answering.met, answering.breached, answering.running),
            (1, 2, 0),
            "call-2 picked up late, call-3 never"
        );
    }
}

/// Over more customers than one worker takes at a time, the workers' figures add up to
/// what was worked out by hand: 600 customers answered after 1, 2, … 600 minutes.
#[test]
fn many_customers_read_by_several_workers_add_up() {
    use oneview::{Customers, MemoryStore};
    let customers = Customers::new(MemoryStore::new());
    let mut records = Vec::new();
    for i in 0..600_i64 {
        let email = format!("c{i}@example.com");
        let asked = utc(3, 9);
        records.push(Record::from(contact(
            &email,
            &format!("q{i}"),
            &format!("t{i}"),
            Channel::Chat,
            Direction::Inbound,
            asked,
            None,
            InteractionStatus::Open,
        )));
        records.push(Record::from(contact(
            &email,
            &format!("r{i}"),
            &format!("t{i}"),
            Channel::Chat,
            Direction::Outbound,
            asked + chrono::Duration::minutes(i + 1),
            Some(&format!("agent.{}", i % 3)),
            InteractionStatus::Open,
        )));
    }
    for receipt in customers.ingest_batch(records).unwrap() {
        receipt.unwrap();
    }
    let report = customers.service_report(options(GroupBy::Owner)).unwrap();
    assert_eq!(report.total.opened, 600);
    assert_eq!(report.total.first_reply.count, 600);
    assert_eq!(report.total.first_reply.p50_s, Some(300 * 60));
    assert_eq!(report.total.first_reply.p90_s, Some(540 * 60));
    let first = report.total.attainment[&Metric::FirstReply];
    assert_eq!(
        (first.met, first.breached),
        (60, 540),
        "answered within the hour"
    );
    for owner in ["agent.0", "agent.1", "agent.2"] {
        assert_eq!(report.groups[owner].opened, 200);
    }
}
