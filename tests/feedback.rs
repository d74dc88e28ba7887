//! Feedback read from events and interactions: the mapping, the standard NPS and CSAT
//! definitions, typed refusals of malformed scores, and feedback tied to the resolved
//! customer across channels.

mod common;

use chrono::{TimeZone, Utc};
use common::{at, backends, event, id};
use oneview::ingest::segment::{self, SegmentOptions};
use oneview::{
    Channel, Direction, Error, Event, Feedback, FeedbackError, FeedbackKind, IdentifierKind,
    Interaction, InteractionKind, Record, Scale, ValidationError, csat, nps,
};
use serde_json::{Value, json};

fn survey(name: &str, message: &str, properties: Value) -> Result<Event, ValidationError> {
    Event::builder("survey-tool", Channel::Email, name)
        .message_id(message)
        .occurred_at(at(0))
        .identifier(IdentifierKind::Email, "ana@example.com")
        .properties(properties)
        .build()
}

fn read(name: &str, properties: Value) -> Feedback {
    Feedback::from_event(&survey(name, "m", properties).unwrap())
        .unwrap()
        .expect("a feedback event")
}

fn refusal(name: &str, properties: Value) -> FeedbackError {
    match survey(name, "m", properties) {
        Err(ValidationError::Feedback(problem)) => problem,
        other => panic!("expected a feedback refusal, got {other:?}"),
    }
}

#[test]
fn nps_is_promoters_minus_detractors_and_csat_the_share_of_fours_and_fives() {
    // 4 promoters (9, 9, 10, 10), 2 passives (7, 8), 4 detractors (0, 3, 5, 6): NPS 0.
    let answers: Vec<Feedback> = [10, 9, 9, 8, 7, 6, 0, 5, 10, 3]
        .iter()
        .map(|&score| read("Survey Answered", json!({"nps": score})))
        .collect();
    let result = nps(&answers);
    assert_eq!(
        (result.promoters, result.passives, result.detractors),
        (4, 2, 4)
    );
    assert_eq!(result.score, Some(0.0));
    // 2 promoters, 1 detractor out of 4: 50% - 25% = 25.
    let some: Vec<Feedback> = [10, 9, 8, 6]
        .iter()
        .map(|&score| read("Survey Answered", json!({"nps": score})))
        .collect();
    assert_eq!(nps(&some).score, Some(25.0));

    // 3 of 5 answers are 4 or 5: 60%. NPS answers among them do not count.
    let mut mixed: Vec<Feedback> = [5, 4, 3, 1, 5]
        .iter()
        .map(|&score| read("Survey Answered", json!({"csat": score})))
        .collect();
    mixed.push(read("Survey Answered", json!({"nps": 10})));
    let satisfaction = csat(&mixed);
    assert_eq!((satisfaction.satisfied, satisfaction.responses), (3, 5));
    assert_eq!(satisfaction.score, Some(60.0));
    assert_eq!(nps(&mixed).promoters, 1);
    assert_eq!(nps(&[]).score, None, "no answers, no score");
}

#[test]
fn events_map_by_name_and_properties() {
    // What an e-commerce client sends for a review; the rating may be a string.
    let review = read(
        "Product Reviewed",
        json!({"product_id": "p-1", "review_id": "r-1", "review_body": "Fits well", "rating": "4"}),
    );
    assert_eq!(review.kind, Some(FeedbackKind::Review));
    assert_eq!(review.score.unwrap().value, 4.0);
    assert_eq!(review.score.unwrap().scale, Scale::Stars(5));
    assert_eq!(review.text.as_deref(), Some("Fits well"));
    assert!(review.public, "a review is public unless it says otherwise");

    let ten_stars = read(
        "Review Submitted",
        json!({"rating": 9, "scale_max": 10, "public": false}),
    );
    assert_eq!(ten_stars.score.unwrap().scale, Scale::Stars(10));
    assert!(!ten_stars.public);

    let complaint = read(
        "Complaint Submitted",
        json!({"comment": "Broken on arrival", "topics": ["delivery", "damage"]}),
    );
    assert_eq!(complaint.kind, Some(FeedbackKind::Complaint));
    assert_eq!(complaint.topics, ["delivery", "damage"]);
    assert_eq!(complaint.score, None);

    let stated = read("Feedback Submitted", json!({"feedback_kind": "praise"}));
    assert_eq!(stated.kind, Some(FeedbackKind::Praise));
    assert_eq!(read("Feedback Submitted", json!({})).kind, None);
    let bare = read("NPS Survey Answered", json!({"score": "8"}));
    assert_eq!(
        bare.score.unwrap().scale,
        Scale::Nps,
        "the name implies the scale"
    );
    let scaled = read("Survey Answered", json!({"score": 2, "scale": "csat"}));
    assert_eq!(scaled.score.unwrap().scale, Scale::Csat);

    let other = survey("Order Completed", "o", json!({"nps": 99})).unwrap();
    assert_eq!(
        Feedback::from_event(&other).unwrap(),
        None,
        "other events carry no feedback, whatever their properties"
    );
}

#[test]
fn malformed_feedback_is_refused_naming_the_field() {
    let cases = [
        (json!({"nps": 11}), "properties.nps"),
        (json!({"nps": -1}), "properties.nps"),
        (json!({"csat": 0}), "properties.csat"),
        (json!({"rating": 6}), "properties.rating"),
        (json!({"rating": 11, "scale_max": 10}), "properties.rating"),
        (json!({"nps": "nine"}), "properties.nps"),
        (json!({"score": 3, "scale": "percent"}), "properties.scale"),
        (
            json!({"feedback_kind": "angry"}),
            "properties.feedback_kind",
        ),
        (json!({"topics": "delivery"}), "properties.topics"),
        (json!({"public": "yes"}), "properties.public"),
        (json!({"rating": 3, "scale_max": 0}), "properties.scale_max"),
    ];
    for (properties, field) in cases {
        let problem = refusal("Survey Answered", properties.clone());
        assert!(
            problem.to_string().contains(field),
            "{properties}: {problem} should name {field}"
        );
    }
    assert_eq!(
        refusal("Survey Answered", json!({"score": 3})),
        FeedbackError::NoScale
    );
    assert!(matches!(
        refusal("Survey Answered", json!({"nps": 10.5})),
        FeedbackError::OutOfScale { .. }
    ));
}

#[test]
fn ingest_refuses_malformed_feedback_and_stores_nothing() {
    for customers in backends() {
        let mut bad = survey("Survey Answered", "bad", json!({"nps": 7})).unwrap();
        // Assembled by hand, past the builder: ingest checks it again.
        bad.properties = json!({"nps": 12}).as_object().unwrap().clone();
        let refused = customers.ingest(bad);
        assert!(
            matches!(
                refused,
                Err(Error::Invalid(ValidationError::Feedback(
                    FeedbackError::OutOfScale {
                        field: "properties.nps",
                        ..
                    }
                )))
            ),
            "{refused:?}"
        );
        assert!(
            customers
                .profile(id("email:ana@example.com"))
                .unwrap()
                .is_none()
        );

        let mut interaction = Interaction::builder("social", Channel::Social, Direction::Inbound)
            .key("post-1")
            .kind(InteractionKind::Feedback)
            .identifier(IdentifierKind::Email, "ana@example.com")
            .build()
            .unwrap();
        interaction.properties.insert("csat".into(), json!(9));
        assert!(matches!(
            customers.ingest(interaction),
            Err(Error::Invalid(ValidationError::Feedback(_)))
        ));
    }
}

/// A survey answered by email, a public complaint on social media by phone number, and
/// a purchase that links the two: one customer's feedback, oldest first.
#[test]
fn feedback_belongs_to_the_resolved_customer() {
    for customers in backends() {
        customers
            .ingest(
                survey(
                    "Survey Answered",
                    "s-1",
                    json!({"nps": 3, "comment": "Late again"}),
                )
                .unwrap(),
            )
            .unwrap();
        customers
            .ingest(
                Interaction::builder("social", Channel::Social, Direction::Inbound)
                    .key("post-1")
                    .kind(InteractionKind::Feedback)
                    .thread("case-4")
                    .owner("team.social")
                    .occurred_at(at(30))
                    .identifier(IdentifierKind::Phone, "+442079460958")
                    .body("Third late parcel this month")
                    .build()
                    .unwrap(),
            )
            .unwrap();
        customers
            .ingest(event(
                "order-1",
                60,
                &["email:ana@example.com", "phone:+442079460958"],
            ))
            .unwrap();
        let said = customers.feedback(id("phone:+442079460958")).unwrap();
        assert_eq!(said.len(), 2);
        assert!(said[0].is_detractor());
        assert_eq!(said[0].text.as_deref(), Some("Late again"));
        assert!(!said[0].public);
        let post = &said[1];
        assert_eq!(post.kind, None, "the source did not say which kind");
        assert!(post.public, "a social post is public");
        assert_eq!(post.text.as_deref(), Some("Third late parcel this month"));
        assert_eq!(post.owner.as_deref(), Some("team.social"));
        assert_eq!(post.thread.as_deref(), Some("case-4"));
        assert_eq!(post.at, at(30));
    }
}

/// A Segment `track` call from a survey tool lands as feedback.
#[test]
fn a_segment_survey_answer_is_feedback() {
    let message = json!({
        "type": "track",
        "event": "Survey Answered",
        "userId": "u-7",
        "messageId": "survey-7",
        "timestamp": "2026-05-01T10:00:00Z",
        "properties": {"nps": "10", "comment": "Great support", "tags": ["support"]}
    });
    let received = Utc.with_ymd_and_hms(2026, 5, 1, 10, 0, 5).unwrap();
    let Record::Event(event) =
        segment::parse_message(&message, &SegmentOptions::default(), received).unwrap()
    else {
        unreachable!("a track call is an event")
    };
    let answer = Feedback::from_event(&event).unwrap().unwrap();
    assert!(answer.is_promoter());
    assert_eq!(answer.topics, ["support"]);
    assert_eq!(answer.kind, Some(FeedbackKind::SurveyAnswer));

    let out_of_scale = json!({
        "type": "track", "event": "Survey Answered", "userId": "u-7",
        "messageId": "survey-8", "properties": {"nps": 42}
    });
    let refused = segment::parse_message(&out_of_scale, &SegmentOptions::default(), received);
    assert!(
        refused.unwrap_err().to_string().contains("properties.nps"),
        "the Segment reader names the field too"
    );
}
