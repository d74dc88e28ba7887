//! Invariants that must hold for any input.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, TimeZone, Utc};
use oneview::store::EventStore;
use oneview::{
    Channel, Customers, Event, EventId, Identifier, IdentifierKind, MemoryStore, NormalizeOptions,
    Provenance, Store, TraitOp, TraitOperation, resolve_traits,
};
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::json;

fn kind() -> impl Strategy<Value = IdentifierKind> {
    prop_oneof![
        Just(IdentifierKind::Email),
        Just(IdentifierKind::Phone),
        Just(IdentifierKind::UserId),
        Just(IdentifierKind::AnonymousId),
        Just(IdentifierKind::custom("crm_id").unwrap()),
    ]
}

/// Raw values shaped like real input: mostly plausible, with junk mixed in.
fn raw_value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ \t]{0,2}[A-Za-z0-9._%+-]{1,12}@[A-Za-z0-9.-]{1,10}[ \t]{0,2}",
        "[ ]{0,1}(\\+|00)?[0-9 ().-]{6,20}",
        "\\PC{0,40}",
        "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}",
    ]
}

fn at(minute: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + Duration::minutes(minute)
}

proptest! {
    #[test]
    fn normalisation_is_idempotent(kind in kind(), raw in raw_value(), code in prop::option::of(1u16..999)) {
        let options = match code {
            Some(code) => NormalizeOptions::default().with_default_calling_code(code),
            None => NormalizeOptions::default(),
        };
        if let Ok(once) = Identifier::with_options(kind.clone(), &raw, &options) {
            let twice = Identifier::with_options(kind, once.value(), &options)
                .expect("a normalised value is valid");
            prop_assert_eq!(twice, once);
        }
    }

    #[test]
    fn canonical_text_parses_back(kind in kind(), raw in raw_value()) {
        if let Ok(identifier) = Identifier::new(kind, &raw) {
            let text = identifier.to_string();
            prop_assert_eq!(text.parse::<Identifier>().expect("canonical text parses"), identifier.clone());
            let json = serde_json::to_string(&identifier).unwrap();
            prop_assert_eq!(serde_json::from_str::<Identifier>(&json).unwrap(), identifier);
        }
    }

    #[test]
    fn trait_resolution_ignores_operation_order(
        ops in prop::collection::vec((0..3usize, 0..4u8, 0..5i64, prop::option::of(0..3u8), 0..3u8), 0..24),
        shuffle in prop::collection::vec(any::<Index>(), 24),
    ) {
        // Few keys, times and values, so exact ties are common.
        let operations: Vec<TraitOperation> = ops
            .iter()
            .map(|&(key, op, minute, event, source)| TraitOperation {
                key: ["plan", "city", "tier"][key].to_owned(),
                op: match op {
                    0 | 1 => TraitOp::Set(json!(minute * 10 + i64::from(op))),
                    2 => TraitOp::SetOnce(json!(format!("once-{minute}"))),
                    _ => TraitOp::Unset,
                },
                provenance: Provenance {
                    source: format!("s{source}"),
                    event_id: event.map(|e| EventId::derive("p", &e.to_string())),
                    observed_at: at(minute),
                },
            })
            .collect();
        let mut permuted = operations.clone();
        for (i, index) in shuffle.iter().enumerate().take(permuted.len()) {
            let j = index.index(permuted.len());
            permuted.swap(i, j);
        }
        prop_assert_eq!(resolve_traits(&permuted), resolve_traits(&operations));
    }
}

/// A small world of people: each event carries one or two identifiers from a small pool,
/// so events often link profiles.
fn events() -> impl Strategy<Value = Vec<Event>> {
    prop::collection::vec(
        (0..12usize, prop::option::of(0..12usize), 0..50i64, 0..4u8),
        1..30,
    )
    .prop_map(|specs| {
        specs
            .into_iter()
            .enumerate()
            .map(|(n, (a, b, minute, plan))| {
                let pool = |i: usize| match i % 3 {
                    0 => Identifier::email(&format!("p{i}@x.com")).unwrap(),
                    1 => Identifier::anonymous_id(&format!("dev{i}")).unwrap(),
                    _ => Identifier::user_id(&format!("u{i}")).unwrap(),
                };
                let builder = Event::builder("prop", Channel::Web, "Acted")
                    .message_id(&format!("m{n}"))
                    .occurred_at(at(minute))
                    .with_identifier(pool(a))
                    .set_trait("plan", json!(plan));
                match b {
                    Some(b) => builder.with_identifier(pool(b)),
                    None => builder,
                }
                .build()
                .unwrap()
            })
            .collect()
    })
}

/// Profiles as sets of identifiers, with each profile's event ids, resolved traits and
/// timeline order.
type Snapshot = BTreeSet<(Vec<String>, Vec<String>, String, Vec<String>)>;

fn snapshot<S: Store>(customers: &Customers<S>) -> Snapshot {
    let store = customers.store();
    let mut events_by_customer: BTreeMap<_, Vec<String>> = BTreeMap::new();
    for stored in store.scan_events() {
        let stored = stored.unwrap();
        events_by_customer
            .entry(stored.customer)
            .or_default()
            .push(stored.record.message_id);
    }
    store
        .customers(None, 10_000)
        .unwrap()
        .into_iter()
        .map(|id| {
            let profile = customers.profile(id).unwrap().unwrap();
            let mut events = events_by_customer.remove(&id).unwrap_or_default();
            events.sort();
            (
                profile
                    .identifiers
                    .iter()
                    .map(ToString::to_string)
                    .collect(),
                events,
                serde_json::to_string(&profile.traits).unwrap(),
                profile
                    .timeline
                    .items
                    .iter()
                    .map(|entry| match entry {
                        oneview::TimelineEntry::Event(e) => e.message_id.clone(),
                        other => panic!("unexpected {other:?}"),
                    })
                    .collect(),
            )
        })
        .collect()
}

/// The reference model of resolution under the default policy, written plainly: events in
/// (time, id) order; each joins the group of its strongest identifier, and each weaker
/// identifier (strongest first) brings its group, or itself, along only if the result keeps
/// at most one user id, five emails and fifty anonymous ids.
fn reference(events: &[Event]) -> BTreeSet<Vec<String>> {
    let rank = |i: &Identifier| match i.kind() {
        IdentifierKind::UserId => 0,
        IdentifierKind::Email => 1,
        IdentifierKind::Phone => 2,
        IdentifierKind::AnonymousId => 4,
        _ => 3,
    };
    let fits = |set: &BTreeSet<Identifier>| {
        let count = |kind: IdentifierKind| set.iter().filter(|i| *i.kind() == kind).count();
        count(IdentifierKind::UserId) <= 1
            && count(IdentifierKind::Email) <= 5
            && count(IdentifierKind::AnonymousId) <= 50
    };
    let mut sorted: Vec<&Event> = events.iter().collect();
    sorted.sort_by_key(|e| (e.occurred_at, e.id));
    let mut groups: Vec<BTreeSet<Identifier>> = Vec::new();
    for event in sorted {
        let mut ids = event.identifiers.clone();
        ids.sort_by_key(|i| (rank(i), i.clone()));
        ids.dedup();
        let mut chosen: Vec<usize> = Vec::new();
        let mut gathered: BTreeSet<Identifier> = BTreeSet::new();
        for id in ids {
            let group = groups.iter().position(|g| g.contains(&id));
            if group.is_some_and(|g| chosen.contains(&g)) {
                continue;
            }
            let mut candidate = gathered.clone();
            match group {
                Some(g) => candidate.extend(groups[g].iter().cloned()),
                None => {
                    candidate.insert(id.clone());
                }
            }
            if gathered.is_empty() || fits(&candidate) {
                gathered = candidate;
                chosen.extend(group);
            }
        }
        chosen.sort_unstable();
        for g in chosen.into_iter().rev() {
            groups.remove(g);
        }
        groups.push(gathered);
    }
    groups
        .into_iter()
        .map(|g| {
            let mut names: Vec<String> = g.iter().map(ToString::to_string).collect();
            names.sort();
            names
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn appending_events_twice_stores_them_once(events in events()) {
        let customers = Customers::new(MemoryStore::new());
        for event in events.iter().chain(events.iter()) {
            customers.ingest(event.clone()).unwrap();
        }
        prop_assert_eq!(customers.store().scan_events().count(), events.len());
        let once = Customers::new(MemoryStore::new());
        for event in &events {
            once.ingest(event.clone()).unwrap();
        }
        prop_assert_eq!(snapshot(&customers), snapshot(&once));
    }

    #[test]
    fn any_arrival_order_gives_the_same_profiles(
        events in events(),
        shuffle in prop::collection::vec(any::<Index>(), 30),
    ) {
        let mut shuffled = events.clone();
        for (i, index) in shuffle.iter().enumerate().take(shuffled.len()) {
            let j = index.index(shuffled.len());
            shuffled.swap(i, j);
        }
        let in_order = Customers::new(MemoryStore::new());
        let out_of_order = Customers::new(MemoryStore::new());
        for event in &events {
            in_order.ingest(event.clone()).unwrap();
        }
        for event in &shuffled {
            out_of_order.ingest(event.clone()).unwrap();
        }
        let expected = snapshot(&in_order);
        prop_assert_eq!(snapshot(&out_of_order), expected);
        // The reference model knows limits, not suspects.
        let plain = Customers::with_policy(
            MemoryStore::new(),
            oneview::identity::Policy::default().suspect_after(0),
        );
        for event in &shuffled {
            plain.ingest(event.clone()).unwrap();
        }
        let partition: BTreeSet<Vec<String>> = snapshot(&plain)
            .into_iter()
            .map(|(mut ids, _, _, _)| {
                ids.sort();
                ids
            })
            .collect();
        prop_assert_eq!(partition, reference(&events));
    }

    #[test]
    fn batches_give_the_same_profiles_as_one_by_one(
        events in events(),
        cuts in prop::collection::vec(1..8usize, 1..10),
    ) {
        let one_by_one = Customers::new(MemoryStore::new());
        for event in events.iter().chain(events.iter().take(3)) {
            one_by_one.ingest(event.clone()).unwrap();
        }
        // The same events plus repeats, split into batches of random sizes.
        let stream: Vec<Event> = events.iter().chain(events.iter().take(3)).cloned().collect();
        let batched = Customers::new(MemoryStore::new());
        let mut rest = stream.as_slice();
        for cut in cuts.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (batch, tail) = rest.split_at((*cut).min(rest.len()));
            for result in batched.ingest_batch(batch.iter().cloned()).unwrap() {
                result.unwrap();
            }
            rest = tail;
        }
        prop_assert_eq!(snapshot(&batched), snapshot(&one_by_one));
        prop_assert_eq!(batched.store().scan_events().count(), events.len());
    }

    #[test]
    #[cfg(feature = "sqlite")]
    fn sqlite_gives_the_same_profiles_as_the_memory_reference(
        events in events(),
        cut in 1..6usize,
    ) {
        let reference = Customers::new(MemoryStore::new());
        let sqlite = Customers::new(oneview::store::sqlite::SqliteStore::open_in_memory().unwrap());
        for event in &events {
            reference.ingest(event.clone()).unwrap();
        }
        for chunk in events.chunks(cut) {
            for result in sqlite.ingest_batch(chunk.to_vec()).unwrap() {
                result.unwrap();
            }
        }
        prop_assert_eq!(snapshot(&sqlite), snapshot(&reference));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn a_forced_merge_then_its_unmerge_restores_the_profiles(
        events in events(),
        pick in (any::<Index>(), any::<Index>()),
    ) {
        let customers = Customers::new(MemoryStore::new());
        for event in &events {
            customers.ingest(event.clone()).unwrap();
        }
        let before = snapshot(&customers);
        // Identifiers some profile holds: a limit may have left others with nobody.
        let held: Vec<Identifier> = events
            .iter()
            .flat_map(|e| e.identifiers.clone())
            .filter(|i| customers.profile(i.clone()).unwrap().is_some())
            .collect();
        let (a, b) = (pick.0.get(&held).clone(), pick.1.get(&held).clone());
        prop_assume!(customers.profile(a.clone()).unwrap().unwrap().customer_id
            != customers.profile(b.clone()).unwrap().unwrap().customer_id);
        customers.force_merge(&a, &b).unwrap();
        let merged = customers.profile(a.clone()).unwrap().unwrap();
        prop_assert!(merged.identifiers.contains(&b));
        let forced = merged
            .merges
            .iter()
            .find(|m| m.rule == oneview::MergeRule::Forced)
            .expect("the forced merge is recorded");
        customers.unmerge(merged.customer_id, forced.id, false).unwrap();
        prop_assert_eq!(snapshot(&customers), before);
    }
}
