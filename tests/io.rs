//! Whole-store export and import: a round trip through JSON Lines gives the same
//! customers on any backend; a bad file changes nothing.

mod common;

use std::io::Cursor;

use chrono::Utc;
use common::{at, id};
use oneview::audience::{EventFilter, Rule, Segment};
use oneview::identity::Policy;
use oneview::io::{IoError, LineProblem, STORE_VERSION, read_store, write_store};
use oneview::store::{IdentityStore, MembershipStore, Store};
use oneview::{
    Actor, Channel, ConsentChoice, ConsentStatus, Customers, Direction, Event, Identifier,
    Interaction, InteractionStatus, MemoryStore, Purpose, Record, SqliteStore,
};
use proptest::prelude::*;
use serde_json::json;

const EMAILS: [&str; 4] = ["a@x.io", "b@x.io", "c@x.io", "d@x.io"];
const DEVICES: [&str; 3] = ["d1", "d2", "d3"];

/// A generated record: who (an email, a device, or both), when, and what it says.
fn record(
    n: usize,
    (email, device, minute, what): (Option<usize>, Option<usize>, i64, u8),
) -> Record {
    let ids: Vec<Identifier> = email
        .map(|e| id(&format!("email:{}", EMAILS[e])))
        .into_iter()
        .chain(device.map(|d| id(&format!("anonymous_id:{}", DEVICES[d]))))
        .collect();
    let ids = if ids.is_empty() {
        vec![id("anonymous_id:d1")]
    } else {
        ids
    };
    if what == 3 {
        let builder = ids.iter().fold(
            Interaction::builder("desk", Channel::Chat, Direction::Inbound)
                .key(&format!("chat-{n}"))
                .occurred_at(at(minute))
                .updated_at(at(minute + 5))
                .status(InteractionStatus::Closed)
                .body("hello"),
            |b, i| b.with_identifier(i.clone()),
        );
        return builder.build().unwrap().into();
    }
    let mut builder = ids.iter().fold(
        Event::builder("web", Channel::Web, "Acted")
            .message_id(&format!("m{n}"))
            .occurred_at(at(minute))
            .properties(json!({ "n": n })),
        |b, i| b.with_identifier(i.clone()),
    );
    builder = match what {
        0 => builder.set_trait("plan", json!(format!("p{n}"))),
        1 => builder.consent(ConsentChoice::new(
            Purpose::Marketing,
            if n.is_multiple_of(2) {
                ConsentStatus::Granted
            } else {
                ConsentStatus::Denied
            },
        )),
        _ => builder,
    };
    builder.build().unwrap().into()
}

/// What an operator did after the records: nothing, an unmerge, a detach, a forced merge,
/// a block, or an erasure.
fn operate<S: Store>(customers: &Customers<S>, action: u8, target: usize) {
    let ops = Actor::new("ops", "property test");
    let email = id(&format!("email:{}", EMAILS[target % EMAILS.len()]));
    let Some(profile) = customers.profile(email.clone()).unwrap() else {
        return;
    };
    match action {
        1 => {
            if let Some(merge) = profile.merges.first() {
                customers
                    .unmerge(
                        profile.customer_id,
                        merge.id,
                        target.is_multiple_of(2),
                        &ops,
                    )
                    .unwrap();
            }
        }
        2 => {
            customers.detach(&email, &ops).unwrap();
        }
        3 => {
            let other = id(&format!("email:{}", EMAILS[(target + 1) % EMAILS.len()]));
            if customers.profile(other.clone()).unwrap().is_some() {
                customers.force_merge(&email, &other, &ops).unwrap();
            }
        }
        4 => {
            customers
                .confirm_suspect(&id("anonymous_id:d1"), &ops)
                .unwrap();
        }
        5 => {
            customers.erase(email, &ops).unwrap();
        }
        _ => {}
    }
}

/// Every view worth comparing: each pooled identifier's profile, the consent in force,
/// the audit trail, the suppressions and every live profile id.
fn views<S: Store>(customers: &Customers<S>) -> String {
    let mut out = String::new();
    for text in EMAILS
        .iter()
        .map(|e| format!("email:{e}"))
        .chain(DEVICES.iter().map(|d| format!("anonymous_id:{d}")))
    {
        let profile = customers.profile_with(id(&text), 1000).unwrap();
        let consent = customers.consent(id(&text), at(1000)).ok();
        out += &format!(
            "{text}: {}\n{consent:?}\n",
            serde_json::to_string(&profile).unwrap()
        );
    }
    out += &format!("{:?}\n", customers.audit(..).unwrap());
    out += &format!("{:?}\n", customers.suppressions().unwrap());
    out += &format!("{:?}\n", customers.store().customers(None, 1000).unwrap());
    out + &membership_views(customers)
}

/// Customers in `store` keeping [`segments`] live at minute 100.
fn live<S: Store>(store: S) -> Customers<S> {
    Customers::new(store)
        .with_clock(|| at(100))
        .with_live_segments(segments(), vec![])
        .unwrap()
}

fn round_trip<A: Store, B: Store>(from: &Customers<A>, to: &Customers<B>) -> Vec<u8> {
    let mut file = Vec::new();
    write_store(from, &mut file, &mut |_| {}).unwrap();
    read_store(to, Cursor::new(&file), &mut |_| {}).unwrap();
    file
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// memory → SQLite → memory: the same customers, ids included, and the same live
    /// membership and its history, at every step.
    #[test]
    fn a_store_survives_export_and_import_on_any_backend(
        specs in prop::collection::vec(
            (prop::option::of(0..4usize), prop::option::of(0..3usize), 0..60i64, 0..4u8),
            1..30,
        ),
        actions in prop::collection::vec((0..6u8, 0..4usize), 0..3),
    ) {
        let source = live(MemoryStore::new());
        let records: Vec<Record> = specs.into_iter().enumerate().map(|(n, s)| record(n, s)).collect();
        source.ingest_batch(records).unwrap();
        for (action, target) in actions {
            operate(&source, action, target);
        }
        let expected = views(&source);

        let sqlite = live(SqliteStore::open_in_memory().unwrap());
        let file = round_trip(&source, &sqlite);
        prop_assert_eq!(&views(&sqlite), &expected);

        let back = live(MemoryStore::new());
        let again = round_trip(&sqlite, &back);
        prop_assert_eq!(&views(&back), &expected);
        // The second file differs from the first only in when it was written.
        let body = |file: &[u8]| String::from_utf8(file.to_vec()).unwrap().lines().skip(1).collect::<Vec<_>>().join("\n");
        prop_assert_eq!(body(&file), body(&again));
    }
}

fn sample() -> Customers<MemoryStore> {
    let customers = Customers::new(MemoryStore::new());
    for n in 0..5 {
        customers
            .ingest(record(
                n,
                (Some(n % 4), Some(n % 3), n as i64, (n % 4) as u8),
            ))
            .unwrap();
    }
    customers
}

fn dump(customers: &Customers<MemoryStore>) -> String {
    let mut file = Vec::new();
    write_store(customers, &mut file, &mut |_| {}).unwrap();
    String::from_utf8(file).unwrap()
}

fn import(
    text: &str,
) -> (
    Customers<MemoryStore>,
    Result<oneview::io::ImportReport, IoError>,
) {
    let target = Customers::new(MemoryStore::new());
    let result = read_store(&target, Cursor::new(text.as_bytes()), &mut |_| {});
    (target, result)
}

fn is_untouched(customers: &Customers<MemoryStore>) -> bool {
    customers.store().customers(None, 10).unwrap().is_empty()
        && customers.audit(..).unwrap().is_empty()
}

#[test]
fn a_bad_line_is_named_and_nothing_is_imported() {
    let text = dump(&sample());
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines[3] = lines[3].replacen("\"occurred_at\":\"", "\"occurred_at\":\"not a time", 1);
    lines[3] = lines[3].replacen("\"record\":\"interaction\"", "\"record\":\"interactio\"", 1);
    let (target, result) = import(&(lines.join("\n") + "\n"));
    match result {
        Err(IoError::Line {
            line: 4,
            problem: LineProblem::Json(_),
        }) => {}
        other => panic!("expected a JSON error on line 4, got {other:?}"),
    }
    assert!(is_untouched(&target));

    // A valid line of the wrong shape: an event with an empty name.
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let event = lines
        .iter()
        .position(|l| l.contains("\"record\":\"event\""))
        .unwrap();
    lines[event] = lines[event].replacen("\"name\":\"Acted\"", "\"name\":\" \"", 1);
    let (target, result) = import(&(lines.join("\n") + "\n"));
    assert!(
        matches!(result, Err(IoError::Line { line, problem: LineProblem::Invalid(_) }) if line == event as u64 + 1),
        "{result:?}"
    );
    assert!(is_untouched(&target));
}

#[test]
fn a_file_cut_short_is_refused() {
    let text = dump(&sample());
    let lines: Vec<&str> = text.lines().collect();
    let cut = lines[..lines.len() - 2].join("\n") + "\n";
    let (target, result) = import(&cut);
    assert!(
        matches!(result, Err(IoError::Truncated { expected: None, .. })),
        "{result:?}"
    );
    assert!(is_untouched(&target));
    let mut missing_one: Vec<&str> = lines.clone();
    missing_one.remove(2);
    let (target, result) = import(&(missing_one.join("\n") + "\n"));
    assert!(
        matches!(
            result,
            Err(IoError::Truncated {
                expected: Some(_),
                ..
            })
        ),
        "{result:?}"
    );
    assert!(is_untouched(&target));
    let (_, result) = import(&lines[1..].join("\n"));
    assert!(matches!(
        result,
        Err(IoError::Line {
            line: 1,
            problem: LineProblem::Header
        })
    ));
}

#[test]
fn only_an_empty_store_under_the_same_policy_is_imported_into() {
    let source = sample();
    let text = dump(&source);
    let busy = sample();
    let before = views(&busy);
    assert!(matches!(
        read_store(&busy, Cursor::new(text.as_bytes()), &mut |_| {}),
        Err(IoError::NotEmpty)
    ));
    assert_eq!(views(&busy), before, "a refused import changes nothing");
    let strict = Customers::with_policy(MemoryStore::new(), Policy::default().suspect_after(7));
    assert!(matches!(
        read_store(&strict, Cursor::new(text.as_bytes()), &mut |_| {}),
        Err(IoError::PolicyMismatch { .. })
    ));
    let newer = text.replacen(&format!("\"version\":{STORE_VERSION}"), "\"version\":99", 1);
    let (_, result) = import(&newer);
    assert!(matches!(
        result,
        Err(IoError::Line {
            line: 1,
            problem: LineProblem::Version { found: 99, .. }
        })
    ));
}

#[test]
fn an_erased_customer_stays_erased_after_a_move() {
    let source = sample();
    let ops = Actor::new("dpo", "request 12");
    source.erase(id("email:a@x.io"), &ops).unwrap();
    let target = Customers::new(SqliteStore::open_in_memory().unwrap());
    round_trip(&source, &target);
    let replay = Event::builder("web", Channel::Web, "Acted")
        .identifier(oneview::IdentifierKind::Email, "a@x.io")
        .occurred_at(Utc::now())
        .build()
        .unwrap();
    assert!(matches!(
        target.ingest(replay),
        Err(oneview::Error::Suppressed { .. })
    ));
    assert!(target.profile(id("email:a@x.io")).unwrap().is_none());
    assert_eq!(
        target.store().all_overrides().unwrap(),
        source.store().all_overrides().unwrap()
    );
}

/// The segments kept live in the membership tests: acting twice within a day, and
/// holding no device id.
fn segments() -> Vec<Segment> {
    vec![
        Segment::new(
            "active",
            Rule::Performed {
                events: EventFilter::named("Acted"),
                at_least: Some(2),
                at_most: None,
                within_days: Some(1),
            },
        ),
        Segment::new(
            "no device",
            Rule::Not {
                of: Box::new(Rule::HasIdentifier {
                    kind: oneview::IdentifierKind::AnonymousId,
                }),
            },
        ),
    ]
}

/// A store keeping [`segments`] live at minute 100, where customers entered and left
/// them, and one whose profile was merged into another left them.
fn with_membership() -> Customers<MemoryStore> {
    let source = live(MemoryStore::new());
    for (n, spec) in [
        (3, (None, Some(2), 0, 2)),
        (0, (Some(0), None, 1, 2)),
        (1, (Some(0), None, 2, 2)),
        (2, (Some(1), None, 3, 2)),
        (4, (Some(0), Some(0), 5, 2)),
        (5, (Some(1), Some(2), 6, 2)),
    ] {
        source.ingest(record(n, spec)).unwrap();
    }
    source
}

/// Everything about membership the store holds: each pooled identifier's memberships,
/// and the members of each segment.
fn membership_views<S: Store>(customers: &Customers<S>) -> String {
    let mut out = String::new();
    for text in EMAILS.iter().map(|e| format!("email:{e}")) {
        out += &format!("{text}: {:?}\n", customers.memberships(id(&text)).ok());
    }
    for segment in segments() {
        let members = customers
            .store()
            .segment_members(&segment.name, None, 100)
            .unwrap();
        out += &format!("{}: {members:?}\n", segment.name);
    }
    out
}

fn body(file: &[u8]) -> String {
    let text = String::from_utf8(file.to_vec()).unwrap();
    text.lines().skip(1).collect::<Vec<_>>().join("\n")
}

#[test]
fn live_membership_and_its_history_survive_a_move() {
    let source = with_membership();
    let mut file = Vec::new();
    let counts = write_store(&source, &mut file, &mut |_| {}).unwrap();
    let history = String::from_utf8(file.clone()).unwrap();
    assert!(counts.membership_changes >= 4, "{counts:?}");
    assert!(
        history.contains("merged into"),
        "a merged profile's leaving is part of the history"
    );
    let expected = membership_views(&source);
    assert!(expected.contains("active: [CustomerId"), "{expected}");

    // Into a store keeping the same segments live, and into one keeping none: the same
    // membership and history either way, and nothing new decided at the same time.
    let live = live(SqliteStore::open_in_memory().unwrap());
    let plain = Customers::new(SqliteStore::open_in_memory().unwrap());
    for target in [&live, &plain] {
        let report = read_store(target, Cursor::new(&file), &mut |_| {}).unwrap();
        assert_eq!(report, counts);
        assert_eq!(membership_views(target), expected);
        let mut again = Vec::new();
        write_store(target, &mut again, &mut |_| {}).unwrap();
        assert_eq!(body(&again), body(&file));
    }
    assert_eq!(views(&live), views(&source));

    // The restored store keeps membership live as the source does: the windows close
    // for both alike.
    let later = at(100 + 2 * 24 * 60);
    assert_eq!(live.refresh(later).unwrap(), source.refresh(later).unwrap());
    assert!(membership_views(&live).contains("active: []"));
    assert_eq!(membership_views(&live), membership_views(&source));
}

#[test]
fn membership_that_moved_since_the_file_was_written_is_decided_on_import() {
    let source = with_membership();
    let mut file = Vec::new();
    write_store(&source, &mut file, &mut |_| {}).unwrap();
    let days_later = Customers::new(MemoryStore::new())
        .with_clock(|| at(100 + 2 * 24 * 60))
        .with_live_segments(segments(), vec![])
        .unwrap();
    read_store(&days_later, Cursor::new(&file), &mut |_| {}).unwrap();
    let a = id("email:a@x.io");
    assert!(
        source
            .memberships(&a)
            .unwrap()
            .iter()
            .any(|m| m.segment == "active")
    );
    assert!(
        !days_later
            .memberships(&a)
            .unwrap()
            .iter()
            .any(|m| m.segment == "active"),
        "the window closed before the import"
    );
    let mut again = Vec::new();
    write_store(&days_later, &mut again, &mut |_| {}).unwrap();
    let left = |file: &[u8]| {
        body(file)
            .lines()
            .filter(|l| l.contains("\"record\":\"membership\"") && l.contains("\"entered\":false"))
            .count()
    };
    let active = source
        .store()
        .segment_members("active", None, 100)
        .unwrap()
        .len();
    assert!(active > 0);
    assert_eq!(
        left(&again),
        left(&file) + active,
        "the import recorded each member leaving the closed window"
    );
}

#[test]
fn a_membership_change_that_does_not_follow_is_named_and_nothing_is_imported() {
    let text = dump(&with_membership());
    let lines: Vec<&str> = text.lines().collect();
    let entered = lines
        .iter()
        .position(|l| l.contains("\"record\":\"membership\"") && l.contains("\"entered\":true"))
        .unwrap();
    // The same change twice: the second enters a segment the profile is in.
    let mut doubled: Vec<&str> = lines.clone();
    doubled.insert(entered + 1, lines[entered]);
    let said = format!("{{\"record\":\"end\",\"records\":{}}}", doubled.len() - 2);
    *doubled.last_mut().unwrap() = &said;
    let (target, result) = import(&(doubled.join("\n") + "\n"));
    assert!(
        matches!(
            &result,
            Err(IoError::Line { line, problem: LineProblem::Membership { entered: true, .. } })
                if *line == entered as u64 + 2
        ),
        "{result:?}"
    );
    assert!(is_untouched(&target));

    // A profile the evidence does not give is found once the evidence is in.
    let start = lines[entered].find("\"customer\":\"").unwrap() + "\"customer\":\"".len();
    let customer = &lines[entered][start..start + 36];
    let edited: Vec<String> = lines
        .iter()
        .map(|l| {
            if l.contains("\"record\":\"membership\"") {
                l.replace(customer, "01900000-0000-7000-8000-000000000000")
            } else {
                (*l).to_owned()
            }
        })
        .collect();
    let first = edited
        .iter()
        .position(|l| l.contains("01900000-0000-7000-8000-000000000000"))
        .unwrap();
    let (_, result) = import(&(edited.join("\n") + "\n"));
    assert!(
        matches!(
            &result,
            Err(IoError::Line { line, problem: LineProblem::UnknownProfile(_) })
                if *line == first as u64 + 1
        ),
        "{result:?}"
    );
}

#[test]
fn a_version_1_file_without_membership_is_read() {
    let source = sample();
    let text = dump(&source);
    assert!(!text.contains("\"record\":\"membership\""));
    let old = text.replacen(&format!("\"version\":{STORE_VERSION}"), "\"version\":1", 1);
    assert_ne!(old, text);
    let (target, result) = import(&old);
    result.unwrap();
    assert_eq!(views(&target), views(&source));
}
