//! Segment messages as real clients send them.
//!
//! `tests/fixtures/segment_rs_client.jsonl` was written by the `segment` crate (0.2.6)
//! itself, through `tools/segment-fixture`: three single messages as posted to their own
//! endpoints (no `type`, no `messageId`) and a batch of five from its `Batcher`.

use chrono::{TimeZone, Utc};
use oneview::ingest::segment::{self, SegmentError, SegmentOptions};
use oneview::store::{EventStore, IdentityStore};
use oneview::{Customers, Identifier, MemoryStore, Record, Store};
use serde_json::{Value, json};

fn fixture_lines() -> Vec<Value> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/segment_rs_client.jsonl"
    );
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

fn records(lines: &[Value]) -> Vec<Record> {
    let received = Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap();
    lines
        .iter()
        .flat_map(|line| segment::parse(line, &SegmentOptions::default(), received))
        .map(|parsed| parsed.expect("a real client's message parses"))
        .collect()
}

fn check_one_customer<S: Store>(customers: &Customers<S>) {
    let ana = customers
        .profile(Identifier::user_id("u-1001").unwrap())
        .unwrap()
        .expect("the user is known");
    let names: Vec<String> = ana.identifiers.iter().map(ToString::to_string).collect();
    assert_eq!(
        names,
        [
            "email:ana.lima@example.com",
            "phone:+14155552671",
            "user_id:u-1001",
            "anonymous_id:anon-web-1",
            "anonymous_id:anon-web-2",
            "anonymous_id:ios-device-7f3a",
        ]
    );
    assert_eq!(
        ana.traits["plan"].value,
        json!("pro"),
        "the latest identify wins"
    );
    assert_eq!(ana.traits["name"].value, json!("Ana Lima"));
    assert!(
        !ana.traits.contains_key("employees"),
        "group traits describe the group, not the person"
    );
    assert_eq!(ana.event_count(), 8);
    assert_eq!(customers.store().customers(None, 100).unwrap().len(), 1);
}

#[test]
fn a_real_clients_messages_make_one_customer_on_both_backends() {
    let lines = fixture_lines();
    let memory = Customers::new(MemoryStore::new());
    memory.ingest_batch(records(&lines)).unwrap();
    check_one_customer(&memory);

    #[cfg(feature = "sqlite")]
    {
        let dir = tempfile::tempdir().unwrap();
        let sqlite = Customers::new(oneview::SqliteStore::open(dir.path().join("c.db")).unwrap());
        // One message at a time, newest line first: arrival order must not matter either.
        for record in records(&lines).into_iter().rev() {
            sqlite.ingest(record).unwrap();
        }
        check_one_customer(&sqlite);
    }
}

#[test]
fn messages_without_a_message_id_are_stored_once_however_often_delivered() {
    let lines = fixture_lines();
    let customers = Customers::new(MemoryStore::new());
    customers.ingest_batch(records(&lines)).unwrap();
    // A retry: the same messages, received later, re-sent with a new sentAt.
    let mut retried = lines.clone();
    for line in &mut retried {
        line["sentAt"] = json!("2026-06-01T00:00:09Z");
    }
    let received = Utc.with_ymd_and_hms(2026, 6, 2, 0, 0, 0).unwrap();
    let again: Vec<Record> = retried
        .iter()
        .flat_map(|line| segment::parse(line, &SegmentOptions::default(), received))
        .map(Result::unwrap)
        .collect();
    let outcomes = customers.ingest_batch(again).unwrap();
    assert!(
        outcomes
            .iter()
            .all(|r| r.as_ref().unwrap().outcome == oneview::Outcome::Duplicate)
    );
    assert_eq!(customers.store().scan_events().count(), 8);
}

fn event_of(message: &Value) -> oneview::Event {
    let at = Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap();
    match segment::parse_message(message, &SegmentOptions::default(), at).unwrap() {
        Record::Event(event) => event,
        Record::Interaction(_) => unreachable!("segment messages are events"),
    }
}

#[test]
fn a_derived_message_id_follows_the_content_not_its_layout_or_delivery() {
    let message = json!({"userId": "u-1", "event": "Clicked", "properties": {"a": 1, "b": [1, {"y": 2, "x": 1}]}});
    let reordered = json!({"properties": {"b": [1, {"x": 1, "y": 2}], "a": 1}, "event": "Clicked",
                           "userId": "u-1", "sentAt": "2026-06-01T00:00:00Z", "type": "track"});
    let changed = json!({"userId": "u-1", "event": "Clicked", "properties": {"a": 2, "b": [1, {"y": 2, "x": 1}]}});
    let given = json!({"userId": "u-1", "event": "Clicked", "messageId": "m-1"});
    assert_eq!(event_of(&message).id, event_of(&reordered).id);
    assert_ne!(event_of(&message).id, event_of(&changed).id);
    assert!(event_of(&message).message_id.starts_with("content:"));
    assert_eq!(event_of(&given).message_id, "m-1");
}

#[test]
fn a_message_that_names_nobody_is_refused_with_its_place() {
    let at = Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap();
    let batch = json!({"batch": [
        {"type": "track", "userId": "u-1", "event": "Ok"},
        {"type": "track", "event": "Nobody", "properties": {}},
        {"type": "identify", "anonymousId": "", "traits": {"plan": "free"}},
        {"type": "identify", "traits": {"email": "zoe@example.com"}},
    ]});
    let parsed = segment::parse(&batch, &SegmentOptions::default(), at);
    assert!(parsed[0].is_ok());
    for (i, result) in parsed.iter().enumerate().skip(1).take(2) {
        match result {
            Err(SegmentError::NoIdentity { field }) => assert_eq!(field, &format!("batch[{i}]")),
            other => panic!("message {i}: {other:?}"),
        }
    }
    assert!(parsed[3].is_ok(), "an email in the traits names someone");
    let single = segment::parse_message(&json!({"event": "x"}), &SegmentOptions::default(), at);
    assert_eq!(
        single.unwrap_err().to_string(),
        "message: no userId or anonymousId (and no email or phone in its traits)"
    );
}

#[test]
fn a_message_without_a_type_is_read_by_its_fields_or_refused() {
    let at = Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap();
    let options = SegmentOptions::default();
    let name = |message: Value| event_of(&message).name;
    assert_eq!(name(json!({"userId": "u", "event": "Bought"})), "Bought");
    assert_eq!(name(json!({"userId": "u", "previousId": "a"})), "alias");
    assert_eq!(name(json!({"userId": "u", "groupId": "g"})), "group");
    assert_eq!(name(json!({"userId": "u", "traits": {}})), "identify");
    assert_eq!(name(json!({"userId": "u", "name": "Home"})), "page");
    let err = segment::parse_message(&json!({"userId": "u"}), &options, at).unwrap_err();
    assert_eq!(err.to_string(), "type: missing");
    let screen = segment::parse_as(
        "screen",
        &json!({"userId": "u", "name": "Home"}),
        &options,
        at,
    );
    let Record::Event(screen) = screen.unwrap() else {
        unreachable!()
    };
    assert_eq!(screen.name, "screen");
}

#[test]
fn a_batch_context_reaches_its_messages_and_their_own_keys_win() {
    let at = Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap();
    let batch = json!({
        "context": {"channel": "mobile", "traits": {"phone": "+14155550100"}},
        "batch": [
            {"type": "track", "userId": "u-1", "event": "A"},
            {"type": "track", "userId": "u-1", "event": "B", "context": {"channel": "email"}},
        ]
    });
    let events: Vec<oneview::Event> = segment::parse(&batch, &SegmentOptions::default(), at)
        .into_iter()
        .map(|r| match r.unwrap() {
            Record::Event(e) => e,
            Record::Interaction(_) => unreachable!(),
        })
        .collect();
    assert_eq!(events[0].channel, oneview::Channel::Mobile);
    assert_eq!(events[1].channel, oneview::Channel::Email);
    let phone = Identifier::phone("+14155550100").unwrap();
    assert!(events[0].identifiers.contains(&phone));
    assert!(events[1].identifiers.contains(&phone));
}

/// The hand-written sample, parsed as the replay example does: every line, bad ones
/// skipped, all received at `received`.
fn replay_sample(received: chrono::DateTime<Utc>) -> Customers<MemoryStore> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/segment_sample.jsonl"
    );
    let customers = Customers::new(MemoryStore::new());
    for line in std::fs::read_to_string(path).unwrap().lines() {
        let Ok(value) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let records = segment::parse(&value, &SegmentOptions::default(), received);
        customers
            .ingest_batch(records.into_iter().filter_map(Result::ok))
            .unwrap();
    }
    customers
}

#[test]
fn a_message_without_any_time_takes_its_batchs_sent_at_else_the_given_receipt_time() {
    let received = Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap();
    let first = replay_sample(received);
    let time_of = |customers: &Customers<MemoryStore>, message: &str| {
        let id = oneview::EventId::derive("segment", message);
        let event = customers.store().event(id).unwrap().expect("stored").record;
        (event.occurred_at, event.received_at)
    };
    // m15 states no time and came alone; m16 came in a batch sent at 10:00:05.
    assert_eq!(time_of(&first, "m15"), (received, received));
    let batch_sent = Utc.with_ymd_and_hms(2026, 5, 6, 10, 0, 5).unwrap();
    assert_eq!(time_of(&first, "m16"), (batch_sent, received));

    // Nothing reads the clock: the same file replayed again is the same store.
    let again = replay_sample(received);
    let events = |customers: &Customers<MemoryStore>| {
        let mut events: Vec<_> = customers
            .store()
            .scan_events()
            .map(|e| serde_json::to_string(&e.unwrap()).unwrap())
            .collect();
        events.sort();
        events
    };
    assert_eq!(events(&again), events(&first));
    let profiles = |customers: &Customers<MemoryStore>| -> Vec<String> {
        let store = customers.store();
        let mut profiles: Vec<String> = store
            .customers(None, 100)
            .unwrap()
            .into_iter()
            .map(|id| serde_json::to_string(&customers.profile(id).unwrap()).unwrap())
            .collect();
        profiles.sort();
        profiles
    };
    assert_eq!(profiles(&again), profiles(&first));
}
