//! Behaviour tests every [`Store`] must pass: the storage contract written as code.
//!
//! Each function takes a fresh, empty store, exercises one area of the contract and panics
//! with a message naming the broken rule. [`run_all`] runs every one of them, each on a new
//! store from the factory. The functions write to the store they are given; never point
//! them at a store holding data you want to keep.
//!
//! Enable the `testkit` feature in your backend crate's dev-dependencies
//! (`oneview = { version = "…", features = ["testkit"] }`) and call it from a `#[test]`
//! function, here with the in-memory store standing in for yours:
//!
//! ```
//! use oneview::store::{MemoryStore, conformance};
//!
//! // Each behaviour test gets a fresh store from the closure.
//! conformance::run_all(|| MemoryStore::new());
//! ```
//!
//! The functions are tied to this version of the contract; they may gain assertions in any
//! release, as the contract is clarified.

mod identity;
mod membership;
mod privacy;

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::json;

use super::{
    Attributed, Commit, CommitOutcome, CommitProblem, Expectation, IdentityChange, PageRequest,
    Store, StoreError, TimelineCursor,
};
use crate::model::{
    Channel, CustomerId, Direction, Event, Identifier, IdentifierKind, Interaction,
    InteractionStatus, MergeId, MergeRecord, MergeRule, Provenance, TraitOp, TraitOperation,
    resolve_traits,
};

pub use identity::{
    conflicting_commits_one_wins, exclusive_writes_read_and_commit,
    identity_expectations_are_checked, plans_apply_as_if_one_after_the_other,
    plans_see_the_latest_state_and_apply_all_or_nothing, refusals_and_overrides_read_back,
    rewrites_apply_in_full, snapshots_see_one_state,
};
pub use membership::{
    erasure_removes_membership, membership_enters_and_leaves, membership_updates_are_checked,
    rechecks_are_found_by_time,
};
pub use privacy::{
    audit_records_read_back_in_time_order, consent_is_kept_by_the_profile_it_was_recorded_on,
    erasure_removes_everything_about_the_customer, redactions_replace_content,
    suppressions_and_the_key_read_back,
};

/// One behaviour test of the contract.
pub type BehaviourTest = fn(&dyn Store);

/// Runs every behaviour test, each on a fresh store from `make`.
pub fn run_all<S: Store>(make: impl Fn() -> S) {
    let tests: [(&str, BehaviourTest); 31] = [
        ("events_append_and_read_back", events_append_and_read_back),
        (
            "recent_events_read_from_a_time",
            recent_events_read_from_a_time,
        ),
        (
            "duplicate_events_are_stored_once",
            duplicate_events_are_stored_once,
        ),
        ("pages_are_ordered_and_stable", pages_are_ordered_and_stable),
        (
            "failed_batches_leave_no_trace",
            failed_batches_leave_no_trace,
        ),
        ("expectations_are_checked", expectations_are_checked),
        ("identifiers_have_one_owner", identifiers_have_one_owner),
        (
            "merges_resolve_to_the_survivor",
            merges_resolve_to_the_survivor,
        ),
        (
            "traits_are_kept_with_provenance",
            traits_are_kept_with_provenance,
        ),
        (
            "interactions_keep_one_version",
            interactions_keep_one_version,
        ),
        ("summaries_count_per_channel", summaries_count_per_channel),
        ("bounds_cover_every_record", bounds_cover_every_record),
        (
            "scan_reads_every_event_in_order",
            scan_reads_every_event_in_order,
        ),
        ("lookups_answer_many_at_once", lookups_answer_many_at_once),
        ("rewrites_apply_in_full", rewrites_apply_in_full),
        (
            "refusals_and_overrides_read_back",
            refusals_and_overrides_read_back,
        ),
        (
            "identity_expectations_are_checked",
            identity_expectations_are_checked,
        ),
        ("conflicting_commits_one_wins", conflicting_commits_one_wins),
        ("snapshots_see_one_state", snapshots_see_one_state),
        (
            "exclusive_writes_read_and_commit",
            exclusive_writes_read_and_commit,
        ),
        (
            "plans_see_the_latest_state_and_apply_all_or_nothing",
            plans_see_the_latest_state_and_apply_all_or_nothing,
        ),
        (
            "plans_apply_as_if_one_after_the_other",
            plans_apply_as_if_one_after_the_other,
        ),
        (
            "consent_is_kept_by_the_profile_it_was_recorded_on",
            consent_is_kept_by_the_profile_it_was_recorded_on,
        ),
        (
            "erasure_removes_everything_about_the_customer",
            erasure_removes_everything_about_the_customer,
        ),
        (
            "suppressions_and_the_key_read_back",
            suppressions_and_the_key_read_back,
        ),
        (
            "audit_records_read_back_in_time_order",
            audit_records_read_back_in_time_order,
        ),
        ("redactions_replace_content", redactions_replace_content),
        ("membership_enters_and_leaves", membership_enters_and_leaves),
        (
            "membership_updates_are_checked",
            membership_updates_are_checked,
        ),
        ("rechecks_are_found_by_time", rechecks_are_found_by_time),
        ("erasure_removes_membership", erasure_removes_membership),
    ];
    for (name, test) in tests {
        let store = make();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| test(&store)));
        if let Err(panic) = result {
            eprintln!("conformance test `{name}` failed");
            std::panic::resume_unwind(panic);
        }
    }
}

pub(super) fn at(minute: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + Duration::minutes(minute)
}

pub(super) fn email(n: usize) -> Identifier {
    Identifier::email(&format!("person{n}@example.com")).expect("valid email")
}

pub(super) fn event(message: &str, minute: i64, channel: Channel) -> Event {
    Event::builder("conformance", channel, "Tested")
        .message_id(message)
        .occurred_at(at(minute))
        .properties(json!({"message": message}))
        .build()
        .expect("valid event")
}

pub(super) fn create(id: CustomerId, minute: i64) -> IdentityChange {
    IdentityChange::CreateProfile {
        id,
        created_at: at(minute),
    }
}

pub(super) fn attach(identifier: &Identifier, customer: CustomerId) -> IdentityChange {
    IdentityChange::Attach {
        identifier: identifier.clone(),
        customer,
    }
}

pub(super) fn merge(survivor: CustomerId, absorbed: CustomerId, minute: i64) -> IdentityChange {
    IdentityChange::Merge(MergeRecord {
        id: MergeId::new(),
        survivor,
        absorbed,
        evidence: None,
        linking: Vec::new(),
        absorbed_side: Vec::new(),
        evidence_id: None,
        rule: MergeRule::SharedIdentifier,
        at: at(minute),
    })
}

pub(super) fn identity(changes: Vec<IdentityChange>) -> Commit {
    Commit {
        identity: changes,
        ..Commit::default()
    }
}

pub(super) fn with_event(customer: CustomerId, event: Event) -> Commit {
    Commit {
        event: Some(Attributed {
            customer,
            record: event,
        }),
        ..Commit::default()
    }
}

pub(super) fn trait_op(
    customer: CustomerId,
    key: &str,
    op: TraitOp,
    minute: i64,
) -> Attributed<TraitOperation> {
    Attributed {
        customer,
        record: TraitOperation {
            key: key.to_owned(),
            op,
            provenance: Provenance {
                source: "conformance".into(),
                event_id: None,
                observed_at: at(minute),
            },
        },
    }
}

pub(super) fn interaction(
    key: &str,
    minute: i64,
    updated: i64,
    status: InteractionStatus,
) -> Interaction {
    Interaction::builder("conformance", Channel::Chat, Direction::Inbound)
        .key(key)
        .occurred_at(at(minute))
        .updated_at(at(updated))
        .status(status)
        .build()
        .expect("valid interaction")
}

/// The live profile ids the identifiers resolve to.
pub(super) fn owners(
    store: &dyn Store,
    identifiers: &[Identifier],
) -> Result<Vec<Option<CustomerId>>, StoreError> {
    Ok(store
        .owners(identifiers)?
        .into_iter()
        .map(|owner| owner.map(|o| o.customer))
        .collect())
}

/// A new profile with one identifier.
pub(super) fn new_profile(store: &dyn Store, n: usize, minute: i64) -> CustomerId {
    let id = CustomerId::new();
    store
        .apply(&[identity(vec![create(id, minute), attach(&email(n), id)])])
        .expect("creating a profile");
    id
}

pub(super) fn all_events(store: &dyn Store, customer: CustomerId, page_size: usize) -> Vec<Event> {
    every_page(page_size, |request| {
        store.events(customer, request).expect("reading events")
    })
}

/// Every item `read` pages through, in pages of `page_size`, each checked to hold at
/// most its limit.
fn every_page<T>(page_size: usize, mut read: impl FnMut(PageRequest) -> super::Page<T>) -> Vec<T> {
    let mut out = Vec::new();
    let mut request = PageRequest::first(page_size);
    loop {
        let page = read(request);
        assert!(
            page.items.len() <= page_size,
            "a page holds at most its limit"
        );
        out.extend(page.items);
        match page.next {
            Some(cursor) => request = PageRequest::after(cursor, page_size),
            None => return out,
        }
    }
}

fn position(event: &Event) -> TimelineCursor {
    TimelineCursor {
        at: event.occurred_at,
        id: *event.id.as_uuid(),
    }
}

/// Stored events read back exactly, newest first.
pub fn events_append_and_read_back(store: &dyn Store) {
    let customer = new_profile(store, 1, 0);
    let events: Vec<Event> = (0..5)
        .map(|i| event(&format!("m{i}"), [3, 1, 4, 1, 5][i], Channel::Web))
        .collect();
    let commits: Vec<Commit> = events
        .iter()
        .map(|e| with_event(customer, e.clone()))
        .collect();
    let outcomes = store.apply(&commits).expect("appending events");
    assert_eq!(outcomes, vec![CommitOutcome::Applied; 5]);

    for e in &events {
        let stored = store
            .event(e.id)
            .expect("reading an event")
            .expect("stored event");
        assert_eq!(stored.record, *e, "an event reads back exactly as stored");
        assert_eq!(stored.customer, customer);
    }
    let page = store
        .events(customer, PageRequest::first(10))
        .expect("reading events");
    let mut expected = events.clone();
    expected.sort_by_key(|e| std::cmp::Reverse(position(e)));
    assert_eq!(
        page.items, expected,
        "events come newest first by (occurred_at, id)"
    );
    assert_eq!(
        page.next, None,
        "a page that holds everything has no next cursor"
    );
    assert!(
        store
            .events(CustomerId::new(), PageRequest::first(10))
            .expect("read")
            .items
            .is_empty(),
        "an unknown profile has no events"
    );
}

/// `events_since` reads exactly the events at or after its time, across a merged
/// profile's members, in the same pages as `events`.
pub fn recent_events_read_from_a_time(store: &dyn Store) {
    let a = new_profile(store, 1, 0);
    let b = new_profile(store, 2, 0);
    let mut commits = Vec::new();
    for (n, minute) in [1, 3, 5, 7].into_iter().enumerate() {
        commits.push(with_event(a, event(&format!("a{n}"), minute, Channel::Web)));
    }
    // Two at minute 5 on the other member: a bound there must keep every one of them.
    for (n, minute) in [2, 4, 5, 5, 6].into_iter().enumerate() {
        commits.push(with_event(b, event(&format!("b{n}"), minute, Channel::Web)));
    }
    store.apply(&commits).expect("append");
    store
        .apply(&[identity(vec![merge(a, b, 10)])])
        .expect("b into a");
    for lookup in [a, b] {
        let everything = all_events(store, lookup, 100);
        assert_eq!(everything.len(), 9);
        for minute in [-1, 0, 4, 5, 6, 7, 8] {
            let since = at(minute);
            let expected: Vec<Event> = everything
                .iter()
                .filter(|e| e.occurred_at >= since)
                .cloned()
                .collect();
            for page_size in [1, 2, 100] {
                let read = every_page(page_size, |request| {
                    store
                        .events_since(lookup, since, request)
                        .expect("reading recent events")
                });
                assert_eq!(
                    read, expected,
                    "the events at or after minute {minute}, newest first, in pages of {page_size}"
                );
            }
        }
    }
}

/// The same event id is stored once, whether repeated across calls or within one batch,
/// and a duplicate commit applies none of its other changes.
pub fn duplicate_events_are_stored_once(store: &dyn Store) {
    let customer = new_profile(store, 1, 0);
    let first = event("same", 1, Channel::Web);
    assert_eq!(
        store
            .apply(&[with_event(customer, first.clone())])
            .expect("append"),
        vec![CommitOutcome::Applied]
    );

    let mut again = with_event(customer, first.clone());
    again
        .traits
        .push(trait_op(customer, "plan", TraitOp::Set(json!("pro")), 1));
    again.identity.push(attach(&email(2), customer));
    assert_eq!(
        store.apply(&[again]).expect("a duplicate is not an error"),
        vec![CommitOutcome::Duplicate]
    );
    assert!(
        store.trait_operations(customer).expect("read").is_empty(),
        "a duplicate commit's trait operations are not applied"
    );
    assert_eq!(
        owners(store, &[email(2)]).expect("read"),
        vec![None],
        "a duplicate commit's identity changes are not applied"
    );

    let second = event("other", 2, Channel::Web);
    let outcomes = store
        .apply(&[
            with_event(customer, second.clone()),
            with_event(customer, second.clone()),
        ])
        .expect("append");
    assert_eq!(
        outcomes,
        vec![CommitOutcome::Applied, CommitOutcome::Duplicate]
    );
    assert_eq!(
        all_events(store, customer, 10).len(),
        2,
        "each event is stored once"
    );
}

/// Pages come newest first, never repeat or skip an item, and do not shift when newer
/// events arrive between reads.
pub fn pages_are_ordered_and_stable(store: &dyn Store) {
    let customer = new_profile(store, 1, 0);
    // Many events share a time, so the id must order them.
    let commits: Vec<Commit> = (0..23)
        .map(|i| {
            with_event(
                customer,
                event(&format!("m{i}"), i64::from(i % 4), Channel::Web),
            )
        })
        .collect();
    store.apply(&commits).expect("append");
    let everything = store
        .events(customer, PageRequest::first(100))
        .expect("read")
        .items;
    assert_eq!(everything.len(), 23);
    assert!(
        everything
            .windows(2)
            .all(|w| position(&w[0]) > position(&w[1])),
        "events are strictly ordered newest first"
    );

    let first = store.events(customer, PageRequest::first(5)).expect("read");
    assert_eq!(first.items, everything[..5]);
    let cursor = first.next.expect("more pages follow");
    assert_eq!(
        cursor,
        position(&everything[4]),
        "the cursor is the last item's position"
    );

    // Newer events arrive while the reader pages.
    let newer: Vec<Commit> = (0..3)
        .map(|i| with_event(customer, event(&format!("late{i}"), 100 + i, Channel::Web)))
        .collect();
    store.apply(&newer).expect("append");

    let mut rest = Vec::new();
    let mut request = PageRequest::after(cursor, 5);
    loop {
        let page = store.events(customer, request).expect("read");
        rest.extend(page.items);
        match page.next {
            Some(next) => request = PageRequest::after(next, 5),
            None => break,
        }
    }
    assert_eq!(
        rest,
        everything[5..],
        "later pages continue exactly after the cursor"
    );

    let exact = store
        .events(customer, PageRequest::first(26))
        .expect("read");
    assert_eq!(exact.items.len(), 26);
    assert_eq!(
        exact.next, None,
        "no next cursor when the page ends exactly at the last item"
    );
}

/// A batch with one bad commit applies none of its commits.
pub fn failed_batches_leave_no_trace(store: &dyn Store) {
    let existing = new_profile(store, 1, 0);
    let fresh = CustomerId::new();
    let good = Commit {
        identity: vec![create(fresh, 1), attach(&email(2), fresh)],
        event: Some(Attributed {
            customer: fresh,
            record: event("good", 1, Channel::Web),
        }),
        traits: vec![trait_op(fresh, "plan", TraitOp::Set(json!("pro")), 1)],
        ..Commit::default()
    };
    let also_good = with_event(existing, event("also-good", 2, Channel::Web));
    let unknown = CustomerId::new();
    let bad = with_event(unknown, event("bad", 3, Channel::Web));

    let err = store
        .apply(&[good.clone(), also_good.clone(), bad])
        .expect_err("an event for an unknown profile is refused");
    match err {
        StoreError::InvalidCommit { commit, problem } => {
            assert_eq!(commit, 2, "the error names the failing commit");
            assert_eq!(problem, CommitProblem::UnknownCustomer(unknown));
        }
        other => panic!("expected InvalidCommit, got {other:?}"),
    }
    assert_nothing_from_good_commit(store, fresh, existing);

    let merged_into_itself = identity(vec![merge(existing, existing, 4)]);
    let err = store
        .apply(&[good.clone(), merged_into_itself])
        .expect_err("a self-merge is refused");
    assert!(matches!(
        err,
        StoreError::InvalidCommit {
            commit: 1,
            problem: CommitProblem::SelfMerge(_)
        }
    ));
    assert_nothing_from_good_commit(store, fresh, existing);

    let twice = identity(vec![create(existing, 5)]);
    let err = store
        .apply(&[good.clone(), twice])
        .expect_err("a profile is created once");
    assert!(matches!(
        err,
        StoreError::InvalidCommit {
            commit: 1,
            problem: CommitProblem::CustomerExists(_)
        }
    ));
    assert_nothing_from_good_commit(store, fresh, existing);

    // And the same commits apply cleanly without the bad one.
    let outcomes = store.apply(&[good, also_good]).expect("valid batch");
    assert_eq!(outcomes, vec![CommitOutcome::Applied; 2]);
    assert_eq!(owners(store, &[email(2)]).expect("read"), vec![Some(fresh)]);
}

fn assert_nothing_from_good_commit(store: &dyn Store, fresh: CustomerId, existing: CustomerId) {
    assert_eq!(
        store.profile(fresh).expect("read"),
        None,
        "no profile was created"
    );
    assert_eq!(
        owners(store, &[email(2)]).expect("read"),
        vec![None],
        "no identifier was attached"
    );
    assert_eq!(
        store
            .event(crate::model::EventId::derive("conformance", "good"))
            .expect("read"),
        None,
        "no event was stored"
    );
    assert!(
        all_events(store, existing, 10).is_empty(),
        "no event of an earlier commit in the batch was stored"
    );
    assert!(
        store.trait_operations(fresh).expect("read").is_empty(),
        "no trait was stored"
    );
    assert_eq!(
        store.customers(None, 10).expect("read"),
        vec![existing],
        "only the profile from before the batch is listed"
    );
}

/// A commit whose expectations do not hold is refused as a conflict, whole.
pub fn expectations_are_checked(store: &dyn Store) {
    let a = new_profile(store, 1, 0);
    let b = new_profile(store, 2, 1);
    let expect = |expectation: Expectation| Commit {
        expect: vec![expectation],
        event: Some(Attributed {
            customer: a,
            record: event("guarded", 5, Channel::Web),
        }),
        ..Commit::default()
    };

    let wrong_owner = expect(Expectation::Owner {
        identifier: email(1),
        owner: Some(b),
    });
    match store.apply(&[wrong_owner]).expect_err("wrong owner") {
        StoreError::Conflict { commit: 0, problem } => assert_eq!(
            problem,
            CommitProblem::UnexpectedOwner {
                identifier: email(1),
                expected: Some(b),
                found: Some(a),
            }
        ),
        other => panic!("expected Conflict, got {other:?}"),
    }
    let unowned = expect(Expectation::Owner {
        identifier: email(1),
        owner: None,
    });
    assert!(matches!(
        store.apply(&[unowned]),
        Err(StoreError::Conflict { .. })
    ));

    store
        .apply(&[identity(vec![merge(a, b, 2)])])
        .expect("merge");
    let merged_is_not_live = expect(Expectation::Live { customer: b });
    match store
        .apply(&[merged_is_not_live])
        .expect_err("b was merged")
    {
        StoreError::Conflict { problem, .. } => assert_eq!(problem, CommitProblem::NotLive(b)),
        other => panic!("expected Conflict, got {other:?}"),
    }
    let stale_version = expect(Expectation::InteractionVersion {
        id: crate::model::InteractionId::derive("conformance", "none"),
        updated_at: Some(at(0)),
    });
    assert!(matches!(
        store.apply(&[stale_version]),
        Err(StoreError::Conflict { .. })
    ));
    assert!(
        all_events(store, a, 10).is_empty(),
        "no refused commit stored its event"
    );

    let holds = Commit {
        expect: vec![
            Expectation::Owner {
                identifier: email(2),
                owner: Some(a),
            },
            Expectation::Live { customer: a },
        ],
        ..expect(Expectation::Owner {
            identifier: email(9),
            owner: None,
        })
    };
    assert_eq!(
        store.apply(&[holds]).expect("holds"),
        vec![CommitOutcome::Applied]
    );
}

/// An identifier belongs to one profile at most.
pub fn identifiers_have_one_owner(store: &dyn Store) {
    let a = new_profile(store, 1, 0);
    let b = new_profile(store, 2, 1);
    let err = store
        .apply(&[identity(vec![attach(&email(1), b)])])
        .expect_err("email 1 belongs to a");
    match err {
        StoreError::Conflict { problem, .. } => assert_eq!(
            problem,
            CommitProblem::AlreadyOwned {
                identifier: email(1),
                owner: a
            }
        ),
        other => panic!("expected Conflict, got {other:?}"),
    }
    let phone = Identifier::new(IdentifierKind::Phone, "+14155552671").expect("valid");
    let twice = identity(vec![attach(&phone, a), attach(&phone, b)]);
    assert!(
        matches!(
            store.apply(&[twice]),
            Err(StoreError::Conflict { commit: 0, .. })
        ),
        "an identifier cannot be attached twice within one commit"
    );
    assert_eq!(
        owners(store, std::slice::from_ref(&phone)).expect("read"),
        vec![None]
    );
    let unknown = CustomerId::new();
    assert!(matches!(
        store.apply(&[identity(vec![attach(&phone, unknown)])]),
        Err(StoreError::InvalidCommit {
            problem: CommitProblem::UnknownCustomer(_),
            ..
        })
    ));
    assert_eq!(
        owners(store, &[email(2), email(1), phone]).expect("read"),
        vec![Some(b), Some(a), None],
        "owners come back in the order asked"
    );
}

/// After a merge, every read given either id answers for the survivor, with everything
/// attributed to both; chains of merges stay flat.
pub fn merges_resolve_to_the_survivor(store: &dyn Store) {
    let a = new_profile(store, 1, 0);
    let b = new_profile(store, 2, 1);
    let c = new_profile(store, 3, 2);
    for (n, customer) in [a, b, c].into_iter().enumerate() {
        let mut commit = with_event(
            customer,
            event(&format!("e{n}"), 10 + n as i64, Channel::Web),
        );
        commit.traits.push(trait_op(
            customer,
            &format!("t{n}"),
            TraitOp::Set(json!(n)),
            10,
        ));
        commit.interaction = Some(Attributed {
            customer,
            record: interaction(&format!("i{n}"), 10, 10, InteractionStatus::Open),
        });
        store.apply(&[commit]).expect("append");
    }

    store
        .apply(&[identity(vec![merge(b, c, 20)])])
        .expect("c into b");
    store
        .apply(&[identity(vec![merge(a, b, 21)])])
        .expect("b into a");

    for id in [a, b, c] {
        let profile = store.profile(id).expect("read").expect("resolves");
        assert_eq!(profile.id, a, "every member id resolves to the survivor");
        assert_eq!(profile.members, {
            let mut m = vec![a, b, c];
            m.sort();
            m
        });
        assert_eq!(profile.identifiers, vec![email(1), email(2), email(3)]);
        assert_eq!(profile.created_at, at(0));
        assert_eq!(
            all_events(store, id, 2).len(),
            3,
            "events of all members, via {id}"
        );
        assert_eq!(store.trait_operations(id).expect("read").len(), 3);
        let newest_event = store.events(id, PageRequest::first(1)).expect("read").items;
        assert_eq!(
            store.latest_event(id).expect("read"),
            Some(TimelineCursor {
                at: at(12),
                id: *newest_event[0].id.as_uuid(),
            }),
            "the latest event is that of the first page, across members"
        );
        assert!(
            store.has_interactions().expect("read"),
            "a store holding interactions says so"
        );
        let newest = &store
            .interactions(id, PageRequest::first(1))
            .expect("read")
            .items[0];
        assert_eq!(
            store.latest_interaction(id).expect("read"),
            Some(TimelineCursor {
                at: newest.occurred_at,
                id: *newest.id.as_uuid(),
            })
        );
        assert_eq!(
            store
                .interactions(id, PageRequest::first(10))
                .expect("read")
                .items
                .len(),
            3
        );
    }
    assert_eq!(
        owners(store, &[email(1), email(2), email(3)]).expect("read"),
        vec![Some(a); 3]
    );
    let owner = store.owners(&[email(3)]).expect("read")[0].expect("owned");
    assert_eq!(owner.customer, a);
    assert_eq!(
        owner.created_at,
        at(0),
        "an owner reports the live profile's age"
    );
    let event = store
        .event(crate::model::EventId::derive("conformance", "e2"))
        .expect("read")
        .expect("stored");
    assert_eq!(event.customer, a, "stored events report the live profile");
    assert_eq!(store.customers(None, 10).expect("read"), vec![a]);
    let merges = store.merges(c).expect("read");
    assert_eq!(
        merges.len(),
        2,
        "the survivor's merges include those of its members"
    );
    assert_eq!((merges[0].survivor, merges[0].absorbed), (b, c));
    assert_eq!((merges[1].survivor, merges[1].absorbed), (a, b));

    let d = new_profile(store, 4, 3);
    assert!(
        matches!(
            store.apply(&[identity(vec![merge(b, d, 22)])]),
            Err(StoreError::InvalidCommit {
                problem: CommitProblem::NotLive(_),
                ..
            })
        ),
        "a merged profile cannot survive another merge"
    );
    assert!(matches!(
        store.apply(&[identity(vec![merge(d, c, 22)])]),
        Err(StoreError::InvalidCommit {
            problem: CommitProblem::NotLive(_),
            ..
        })
    ));
    assert_eq!(store.customers(None, 10).expect("read").len(), 2);
    let after_a = store.customers(Some(a.min(d)), 10).expect("read");
    assert_eq!(
        after_a,
        vec![a.max(d)],
        "listing continues after the given id"
    );
}

/// Trait operations read back exactly, and resolve the same as the model says.
pub fn traits_are_kept_with_provenance(store: &dyn Store) {
    let customer = new_profile(store, 1, 0);
    let ops = vec![
        trait_op(customer, "plan", TraitOp::Set(json!("pro")), 3),
        trait_op(customer, "plan", TraitOp::Set(json!("free")), 1),
        trait_op(
            customer,
            "first_seen",
            TraitOp::SetOnce(json!("2026-01-01")),
            5,
        ),
        trait_op(
            customer,
            "first_seen",
            TraitOp::SetOnce(json!("2025-12-31")),
            2,
        ),
        trait_op(
            customer,
            "coupon",
            TraitOp::Set(json!({"code": "X", "uses": [1, 2]})),
            1,
        ),
        trait_op(customer, "coupon", TraitOp::Unset, 4),
    ];
    let commit = Commit {
        traits: ops.clone(),
        ..Commit::default()
    };
    store.apply(&[commit]).expect("append");
    let stored = store.trait_operations(customer).expect("read");
    let text = |ops: &[TraitOperation]| -> BTreeSet<String> {
        ops.iter()
            .map(|op| serde_json::to_string(op).expect("serializable"))
            .collect()
    };
    let given: Vec<TraitOperation> = ops.into_iter().map(|a| a.record).collect();
    assert_eq!(text(&stored), text(&given), "operations read back exactly");
    assert_eq!(stored.len(), given.len());
    let resolved = resolve_traits(&stored);
    assert_eq!(resolved["plan"].value, json!("pro"));
    assert_eq!(resolved["first_seen"].value, json!("2025-12-31"));
    assert!(!resolved.contains_key("coupon"));
}

/// An interaction is kept in one version, its latest write, at its place in the timeline.
pub fn interactions_keep_one_version(store: &dyn Store) {
    let customer = new_profile(store, 1, 0);
    let open = interaction("ticket", 10, 10, InteractionStatus::Open);
    let put = |record: Interaction, expected| Commit {
        expect: vec![Expectation::InteractionVersion {
            id: record.id,
            updated_at: expected,
        }],
        interaction: Some(Attributed { customer, record }),
        ..Commit::default()
    };
    store
        .apply(&[put(open.clone(), None)])
        .expect("first version");
    let stored = store.interaction(open.id).expect("read").expect("stored");
    assert_eq!(stored.record, open);
    assert_eq!(stored.customer, customer);

    let closed = interaction("ticket", 10, 30, InteractionStatus::Closed);
    assert!(
        matches!(
            store.apply(&[put(closed.clone(), None)]),
            Err(StoreError::Conflict { .. })
        ),
        "a stale version expectation is refused"
    );
    store
        .apply(&[put(closed.clone(), Some(at(10)))])
        .expect("second version");
    assert_eq!(
        store
            .interaction(open.id)
            .expect("read")
            .expect("stored")
            .record,
        closed
    );

    let other = interaction("chat", 20, 20, InteractionStatus::Pending);
    store.apply(&[put(other.clone(), None)]).expect("another");
    let page = store
        .interactions(customer, PageRequest::first(10))
        .expect("read");
    assert_eq!(
        page.items,
        vec![other, closed],
        "one entry per interaction, newest first"
    );
    let first = store
        .interactions(customer, PageRequest::first(1))
        .expect("read");
    assert_eq!(first.items.len(), 1);
    let rest = store
        .interactions(customer, PageRequest::after(first.next.expect("more"), 10))
        .expect("read");
    assert_eq!(rest.items.len(), 1);
    assert_eq!(rest.next, None);
}

/// `events_bound` and `interactions_bound` never sort before a stored record, whatever
/// order the records arrived in, across profiles and after an update moves an
/// interaction later.
pub fn bounds_cover_every_record(store: &dyn Store) {
    let a = new_profile(store, 1, 0);
    let b = new_profile(store, 2, 0);
    let covers = |bound: Option<TimelineCursor>, newest: TimelineCursor, what: &str| {
        assert!(
            bound.is_some_and(|bound| bound >= newest),
            "the {what} bound {bound:?} sorts before a stored one at {newest:?}"
        );
    };
    // The newest arrives first, then older ones, on two profiles.
    let newest = event("newest", 50, Channel::Web);
    store
        .apply(&[with_event(b, newest.clone())])
        .expect("append");
    for (n, minute) in [(1, 10), (2, 40), (3, 20)] {
        let older = event(&format!("older-{n}"), minute, Channel::Email);
        store.apply(&[with_event(a, older)]).expect("append");
        covers(
            store.events_bound().expect("read"),
            position(&newest),
            "events",
        );
    }
    // Two events at the same time: the greater id is the newer.
    let tied = event("tied", 50, Channel::Web);
    store.apply(&[with_event(a, tied.clone())]).expect("append");
    covers(
        store.events_bound().expect("read"),
        position(&newest).max(position(&tied)),
        "events",
    );

    let put = |customer, record: Interaction, previous| Commit {
        expect: vec![Expectation::InteractionVersion {
            id: record.id,
            updated_at: previous,
        }],
        interaction: Some(Attributed { customer, record }),
        ..Commit::default()
    };
    let ticket = interaction("ticket", 30, 30, InteractionStatus::Open);
    store
        .apply(&[put(a, ticket.clone(), None)])
        .expect("interaction");
    store
        .apply(&[put(
            b,
            interaction("chat", 5, 5, InteractionStatus::Open),
            None,
        )])
        .expect("interaction");
    let interaction_position = |i: &Interaction| TimelineCursor {
        at: i.occurred_at,
        id: *i.id.as_uuid(),
    };
    covers(
        store.interactions_bound().expect("read"),
        interaction_position(&ticket),
        "interactions",
    );
    // A later version that moves the ticket later moves the bound with it.
    let moved = interaction("ticket", 90, 95, InteractionStatus::Closed);
    store
        .apply(&[put(a, moved.clone(), Some(at(30)))])
        .expect("update");
    covers(
        store.interactions_bound().expect("read"),
        interaction_position(&moved),
        "interactions",
    );
}

/// Summaries count events and interactions per channel with first and last times.
pub fn summaries_count_per_channel(store: &dyn Store) {
    let customer = new_profile(store, 1, 0);
    let commits: Vec<Commit> = [
        (Channel::Web, 5),
        (Channel::Email, 7),
        (Channel::Web, 2),
        (Channel::Web, 9),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, (channel, minute))| with_event(customer, event(&format!("s{i}"), minute, channel)))
    .collect();
    store.apply(&commits).expect("append");
    let mut summary = store.event_summary(customer).expect("read");
    summary.sort_by(|a, b| a.channel.cmp(&b.channel));
    assert_eq!(summary.len(), 2);
    let web = summary
        .iter()
        .find(|s| s.channel == Channel::Web)
        .expect("web");
    assert_eq!((web.count, web.first, web.last), (3, at(2), at(9)));
    let mail = summary
        .iter()
        .find(|s| s.channel == Channel::Email)
        .expect("email");
    assert_eq!((mail.count, mail.first, mail.last), (1, at(7), at(7)));

    let call = Interaction::builder("conformance", Channel::Phone, Direction::Outbound)
        .key("call")
        .occurred_at(at(4))
        .build()
        .expect("valid");
    let commit = Commit {
        interaction: Some(Attributed {
            customer,
            record: call,
        }),
        ..Commit::default()
    };
    store.apply(&[commit]).expect("append");
    let calls = store.interaction_summary(customer).expect("read");
    assert_eq!(calls.len(), 1);
    assert_eq!(
        (calls[0].channel.clone(), calls[0].count),
        (Channel::Phone, 1)
    );
    assert!(
        store
            .event_summary(CustomerId::new())
            .expect("read")
            .is_empty()
    );
}

/// A scan yields every event once, oldest first, attributed to the live profile, across
/// however many chunks the backend reads it in.
pub fn scan_reads_every_event_in_order(store: &dyn Store) {
    let a = new_profile(store, 1, 0);
    let b = new_profile(store, 2, 1);
    let total = 1_500;
    let commits: Vec<Commit> = (0..total)
        .map(|i| {
            let customer = if i % 3 == 0 { b } else { a };
            // Times repeat and arrive out of order.
            let minute = ((i * 7919) % 500) as i64;
            with_event(customer, event(&format!("scan{i}"), minute, Channel::Web))
        })
        .collect();
    store.apply(&commits).expect("append");
    store
        .apply(&[identity(vec![merge(a, b, 600)])])
        .expect("merge");

    let scanned: Vec<_> = store
        .scan_events()
        .collect::<Result<Vec<_>, _>>()
        .expect("scan");
    assert_eq!(scanned.len(), total, "every event once");
    assert!(
        scanned
            .windows(2)
            .all(|w| (w[0].record.occurred_at, w[0].record.id)
                < (w[1].record.occurred_at, w[1].record.id)),
        "oldest first by (occurred_at, id)"
    );
    assert!(
        scanned.iter().all(|e| e.customer == a),
        "attributed to the live profile"
    );
    let ids: BTreeSet<_> = scanned.iter().map(|e| e.record.id).collect();
    assert_eq!(ids.len(), total);
}

/// `owners` and `event_owners` answer a whole list in its order, repeats and unknowns
/// included, and report the live profile after a merge.
pub fn lookups_answer_many_at_once(store: &dyn Store) {
    let a = new_profile(store, 1, 0);
    let b = new_profile(store, 2, 1);
    let first = event("first", 5, Channel::Web);
    let second = event("second", 6, Channel::Email);
    store
        .apply(&[with_event(a, first.clone()), with_event(b, second.clone())])
        .expect("append");
    let unknown = event("never stored", 7, Channel::Web);

    let ids = [second.id, unknown.id, first.id, second.id];
    assert_eq!(
        store.event_owners(&ids).expect("read"),
        vec![Some(b), None, Some(a), Some(b)]
    );
    assert_eq!(
        owners(store, &[email(2), email(9), email(1), email(2)]).expect("read"),
        vec![Some(b), None, Some(a), Some(b)]
    );
    assert!(store.event_owners(&[]).expect("read").is_empty());
    assert!(store.owners(&[]).expect("read").is_empty());

    store
        .apply(&[identity(vec![merge(a, b, 10)])])
        .expect("b into a");
    assert_eq!(
        store.event_owners(&ids).expect("read"),
        vec![Some(a), None, Some(a), Some(a)],
        "events of an absorbed profile belong to the survivor"
    );
    let found = store.owners(&[email(2), email(1)]).expect("read");
    for owner in found {
        let owner = owner.expect("owned");
        assert_eq!(owner.customer, a);
        assert_eq!(owner.created_at, at(0), "the age is the survivor's");
    }

    let c = new_profile(store, 3, 2);
    let nobody = CustomerId::new();
    let many = store.profiles(&[b, nobody, c, a]).expect("read");
    let one_by_one: Vec<_> = [b, nobody, c, a]
        .iter()
        .map(|id| store.profile(*id).expect("read"))
        .collect();
    assert_eq!(
        many, one_by_one,
        "profiles answers as profile does, in order"
    );
    assert_eq!(many[0].as_ref().map(|p| p.id), Some(a));
    assert!(store.profiles(&[]).expect("read").is_empty());
}
