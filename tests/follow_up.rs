//! Closing the loop on feedback: answered in time, late or not at all, who bought again,
//! and how likely answered and unanswered detractors are still to be active.

mod common;

use std::collections::HashMap;

use chrono::{DateTime, Duration, TimeZone, Utc};
use common::{backends, id};
use oneview::conversation::follow_up::FollowUpOptions;
use oneview::{Channel, Direction, Event, IdentifierKind, Interaction, Record};
use serde_json::json;

fn day(n: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap() + Duration::days(n)
}

fn survey(email: &str, at: DateTime<Utc>, answer: serde_json::Value) -> Record {
    Event::builder("survey-tool", Channel::Email, "Survey Answered")
        .message_id(&format!("{email}-{at}"))
        .occurred_at(at)
        .identifier(IdentifierKind::Email, email)
        .properties(answer)
        .build()
        .unwrap()
        .into()
}

fn order(email: &str, at: DateTime<Utc>) -> Record {
    Event::builder("shop", Channel::Web, "Order Completed")
        .message_id(&format!("order-{email}-{at}"))
        .occurred_at(at)
        .identifier(IdentifierKind::Email, email)
        .properties(json!({"revenue": 30}))
        .build()
        .unwrap()
        .into()
}

fn reach_out(email: &str, at: DateTime<Utc>) -> Record {
    Interaction::builder("desk", Channel::Phone, Direction::Outbound)
        .key(&format!("call-{email}-{at}"))
        .occurred_at(at)
        .owner("agent.kim")
        .identifier(IdentifierKind::Email, email)
        .build()
        .unwrap()
        .into()
}

/// - ana: NPS 3 on day 2, called an hour later, buys again on day 10;
/// - bo: NPS 2 on day 3, never answered, does not buy again;
/// - cy: NPS 10 on day 4, called on day 7 (late), buys again on day 8;
/// - dee: CSAT 1 on day 5, never answered, buys again on day 6;
/// - eve: gave feedback before the period only.
#[test]
fn the_follow_up_of_a_period_worked_out_by_hand() {
    let records = vec![
        order("ana@example.com", day(0)),
        survey("ana@example.com", day(2), json!({"nps": 3})),
        reach_out("ana@example.com", day(2) + Duration::hours(1)),
        order("ana@example.com", day(10)),
        order("bo@example.com", day(0)),
        survey("bo@example.com", day(3), json!({"nps": 2})),
        survey("cy@example.com", day(4), json!({"nps": 10})),
        reach_out("cy@example.com", day(7)),
        order("cy@example.com", day(8)),
        survey("dee@example.com", day(5), json!({"csat": 1})),
        order("dee@example.com", day(6)),
        survey("eve@example.com", day(-5), json!({"nps": 0})),
    ];
    for customers in backends() {
        for record in &records {
            customers.ingest(record.clone()).unwrap();
        }
        let live = |email: &str| {
            customers
                .profile(id(&format!("email:{email}")))
                .unwrap()
                .unwrap()
                .customer_id
        };
        let alive = HashMap::from([
            (live("ana@example.com"), 0.9),
            (live("bo@example.com"), 0.2),
        ]);
        let follow_up = customers
            .follow_up(
                FollowUpOptions::new(day(1), day(9), 24 * 3600),
                &|customer| alive.get(&customer).copied(),
            )
            .unwrap();
        assert_eq!(follow_up.customers, 4, "eve gave none in the period");
        assert_eq!(
            (
                follow_up.answered_within_target,
                follow_up.answered_late,
                follow_up.unanswered
            ),
            (1, 1, 2)
        );
        let answered = follow_up.answered_bought_again;
        assert_eq!((answered.customers, answered.bought_again), (2, 2));
        let unanswered = follow_up.unanswered_bought_again;
        assert_eq!((unanswered.customers, unanswered.bought_again), (2, 1));
        let detractors = follow_up.answered_detractors;
        assert_eq!((detractors.customers, detractors.estimated), (1, 1));
        assert_eq!(detractors.mean_p_alive, Some(0.9));
        let ignored = follow_up.unanswered_detractors;
        assert_eq!((ignored.customers, ignored.estimated), (2, 1), "bo and dee");
        assert_eq!(ignored.mean_p_alive, Some(0.2));
    }
}
