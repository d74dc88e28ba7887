//! Behaviour tests of segment membership: updates checked against their version,
//! members paged by segment, changes paged as a timeline, rechecks found by time, and
//! erasure taking all of it.

use uuid::Uuid;

use super::{at, create, identity, merge, new_profile};
use serde_json::json;

use crate::model::{Channel, CustomerId, DigestedEvent, EventDigest, EventId, MembershipChange};
use crate::store::{
    Commit, CommitProblem, Erasure, IdentityChange, MembershipUpdate, PageRequest, Store,
    StoreError,
};

fn change(customer: CustomerId, segment: &str, entered: bool, minute: i64) -> MembershipChange {
    MembershipChange {
        id: Uuid::now_v7(),
        customer,
        segment: segment.to_owned(),
        entered,
        at: at(minute),
        reasons: vec![format!("{segment} at minute {minute}")],
    }
}

fn update(
    customer: CustomerId,
    version: u64,
    changes: Vec<MembershipChange>,
    recheck_minute: Option<i64>,
) -> Commit {
    Commit {
        membership: vec![MembershipUpdate {
            customer,
            version,
            changes,
            recheck_at: recheck_minute.map(at),
            digest: None,
        }],
        ..Commit::default()
    }
}

fn members(store: &dyn Store, segment: &str) -> Vec<CustomerId> {
    store
        .segment_members(segment, None, 1000)
        .expect("reading members")
}

/// Entering adds a membership with its time and reasons, leaving removes it; each update
/// bumps the version, sets the recheck time and keeps its changes for the timeline.
pub fn membership_enters_and_leaves(store: &dyn Store) {
    let a = new_profile(store, 1, 0);
    let b = new_profile(store, 2, 0);
    assert_eq!(
        store.membership(a).expect("reading"),
        Default::default(),
        "a profile never updated has the default state"
    );
    let vip = change(a, "vip", true, 1);
    store
        .apply(&[update(
            a,
            0,
            vec![vip.clone(), change(a, "active", true, 1)],
            Some(30),
        )])
        .expect("entering");
    let state = store.membership(a).expect("reading");
    assert_eq!(state.version, 1, "an update bumps the version");
    assert_eq!(state.recheck_at, Some(at(30)));
    let names: Vec<&str> = state
        .memberships
        .iter()
        .map(|m| m.segment.as_str())
        .collect();
    assert_eq!(names, ["active", "vip"], "memberships in segment order");
    assert_eq!(state.memberships[1].since, at(1));
    assert_eq!(state.memberships[1].reasons, vip.reasons);

    // An update stores the digest it carries, and one without clears it.
    let digest = EventDigest {
        spec: "spec-1".into(),
        events: vec![DigestedEvent {
            id: EventId::from_uuid(Uuid::now_v7()),
            name: "Order Completed".into(),
            channel: Channel::Web,
            at: at(2),
            properties: json!({"revenue": 12.5})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        }],
    };
    let mut with_digest = update(b, 0, vec![change(b, "vip", true, 2)], None);
    with_digest.membership[0].digest = Some(digest.clone());
    store.apply(&[with_digest]).expect("b enters");
    assert_eq!(
        store.membership(b).unwrap().digest,
        Some(digest.clone()),
        "the digest reads back as stored"
    );
    store
        .apply(&[update(b, 1, Vec::new(), None)])
        .expect("an update without a digest");
    assert_eq!(store.membership(b).unwrap().digest, None);
    // One that changes no membership still bumps the version and stores the rest.
    let mut quiet = update(b, 2, Vec::new(), Some(40));
    quiet.membership[0].digest = Some(digest.clone());
    store
        .apply(&[quiet])
        .expect("an update that changes no membership");
    let state = store.membership(b).unwrap();
    assert!(state.is_member("vip"), "memberships stay as they were");
    assert_eq!(
        (state.version, state.recheck_at, state.digest),
        (3, Some(at(40)), Some(digest))
    );
    let mut both = vec![a, b];
    both.sort();
    assert_eq!(members(store, "vip"), both, "members in id order");
    assert_eq!(
        store.segment_members("vip", Some(both[0]), 10).unwrap(),
        [both[1]],
        "members continue after the cursor"
    );
    assert_eq!(store.segment_members("vip", None, 1).unwrap(), [both[0]]);
    assert!(
        members(store, "vi").is_empty(),
        "segments match whole names"
    );

    store
        .apply(&[update(a, 1, vec![change(a, "active", false, 5)], None)])
        .expect("leaving");
    let state = store.membership(a).unwrap();
    assert_eq!(state.version, 2);
    assert_eq!(state.recheck_at, None, "the recheck time is replaced");
    assert!(!state.is_member("active") && state.is_member("vip"));
    assert!(
        members(store, "active").is_empty(),
        "leaving leaves the index"
    );

    // The changes, newest first, in pages of one.
    let mut seen = Vec::new();
    let mut request = PageRequest::first(1);
    loop {
        let page = store
            .membership_changes(a, request)
            .expect("reading changes");
        assert!(page.items.len() <= 1);
        seen.extend(page.items.into_iter().map(|c| (c.segment, c.entered, c.at)));
        match page.next {
            Some(cursor) => request = PageRequest::after(cursor, 1),
            None => break,
        }
    }
    assert_eq!(seen.len(), 3, "every change is kept: {seen:?}");
    assert_eq!(seen[0], ("active".to_owned(), false, at(5)), "newest first");
    assert!(
        seen[1..]
            .iter()
            .all(|(_, entered, when)| *entered && *when == at(1))
    );
    assert_eq!(
        store
            .membership_changes(b, PageRequest::first(10))
            .unwrap()
            .items
            .len(),
        1,
        "changes are kept by profile"
    );
}

/// An update decided on an older version is a conflict; entering twice, leaving a
/// segment not entered, naming another profile or an unknown one are invalid; none of
/// them, nor the commits beside them, leave a trace.
pub fn membership_updates_are_checked(store: &dyn Store) {
    let a = new_profile(store, 1, 0);
    let b = new_profile(store, 2, 0);
    store
        .apply(&[update(a, 0, vec![change(a, "vip", true, 1)], None)])
        .expect("entering");
    let before = store.membership(a).unwrap();

    let stale = update(a, 0, vec![change(a, "other", true, 2)], None);
    assert_stale(store, stale, (0, 1), "a stale version");
    let unknown = CustomerId::new();
    let invalid = [
        (
            update(a, 1, vec![change(a, "vip", true, 2)], None),
            "entering a segment twice",
        ),
        (
            update(a, 1, vec![change(a, "other", false, 2)], None),
            "leaving a segment not entered",
        ),
        (
            update(a, 1, vec![change(b, "other", true, 2)], None),
            "a change naming another profile",
        ),
        (
            update(unknown, 0, vec![change(unknown, "vip", true, 2)], None),
            "an unknown profile",
        ),
    ];
    for (commit, what) in invalid {
        // A valid update of another profile goes first in the same call: it must go too.
        let good = update(b, 0, vec![change(b, "vip", true, 2)], Some(9));
        match store.apply(&[good, commit]) {
            Err(StoreError::InvalidCommit {
                commit: 1,
                problem: CommitProblem::Membership { .. } | CommitProblem::UnknownCustomer(_),
            }) => {}
            other => panic!("{what} must be invalid, got {other:?}"),
        }
        assert_eq!(
            store.membership(a).unwrap(),
            before,
            "{what}: a is untouched"
        );
        assert_eq!(
            store.membership(b).unwrap(),
            Default::default(),
            "{what}: the commit before it is taken back"
        );
        assert_eq!(members(store, "vip"), [a], "{what}: the index is untouched");
        assert_eq!(
            store
                .membership_changes(b, PageRequest::first(10))
                .unwrap()
                .items,
            [],
            "{what}: no change is kept"
        );
    }

    // One that changes no membership, only the recheck time, is checked the same way.
    store
        .apply(&[update(a, 1, Vec::new(), Some(6))])
        .expect("an update that changes nothing");
    let before = store.membership(a).unwrap();
    let quiet = update(a, 1, Vec::new(), Some(7));
    assert_stale(store, quiet, (1, 2), "a stale update that changes nothing");
    assert_eq!(
        store.membership(a).unwrap(),
        before,
        "a stale update leaves no trace"
    );
}

/// Applies `stale` alone and checks it conflicts as decided on version `expected` of a
/// profile at version `found`.
fn assert_stale(store: &dyn Store, stale: Commit, (expected, found): (u64, u64), what: &str) {
    match store.apply(&[stale]) {
        Err(StoreError::Conflict {
            commit: 0,
            problem:
                CommitProblem::MembershipVersion {
                    expected: e,
                    found: f,
                    ..
                },
        }) if (e, f) == (expected, found) => {}
        other => panic!("{what} must conflict, got {other:?}"),
    }
}

/// Profiles whose recheck time has come are found in id order, page by page.
pub fn rechecks_are_found_by_time(store: &dyn Store) {
    let mut due = Vec::new();
    for (n, minute) in [(1, Some(10)), (2, Some(20)), (3, None), (4, Some(10))] {
        let customer = new_profile(store, n, 0);
        store
            .apply(&[update(customer, 0, Vec::new(), minute)])
            .expect("setting a recheck time");
        if minute == Some(10) {
            due.push(customer);
        }
    }
    due.sort();
    assert_eq!(store.due_for_recheck(at(15), None, 100).unwrap(), due);
    assert_eq!(
        store.due_for_recheck(at(10), None, 1).unwrap(),
        due[..1],
        "at the recheck time itself, and at most the limit"
    );
    assert_eq!(
        store.due_for_recheck(at(15), Some(due[0]), 100).unwrap(),
        due[1..],
        "continuing after the cursor"
    );
    assert_eq!(store.due_for_recheck(at(30), None, 100).unwrap().len(), 3);
    assert!(store.due_for_recheck(at(5), None, 100).unwrap().is_empty());
}

/// Erasing a customer removes the membership of its live profile and of the profiles
/// merged into it, with their changes.
pub fn erasure_removes_membership(store: &dyn Store) {
    let (a, a_old) = (CustomerId::new(), CustomerId::new());
    store
        .apply(&[identity(vec![create(a, 0), create(a_old, 0)])])
        .expect("profiles");
    store
        .apply(&[
            update(a_old, 0, vec![change(a_old, "vip", true, 1)], Some(5)),
            update(a, 0, vec![change(a, "active", true, 1)], Some(5)),
        ])
        .expect("entering");
    store
        .apply(&[
            identity(vec![merge(a, a_old, 2)]),
            update(a_old, 1, vec![change(a_old, "vip", false, 2)], None),
        ])
        .expect("merging, and the absorbed profile leaving");
    assert_eq!(members(store, "vip"), []);
    let keep = new_profile(store, 3, 0);
    store
        .apply(&[update(
            keep,
            0,
            vec![change(keep, "active", true, 1)],
            Some(5),
        )])
        .expect("another customer");
    let erasure = Erasure {
        customer: a,
        identifiers: Vec::new(),
        suppress: Vec::new(),
        redacted: Vec::new(),
    };
    store
        .apply(&[identity(vec![IdentityChange::Erase(Box::new(erasure))])])
        .expect("erasing");
    for gone in [a, a_old] {
        assert_eq!(store.membership(gone).unwrap(), Default::default());
        assert_eq!(
            store
                .membership_changes(gone, PageRequest::first(10))
                .unwrap()
                .items,
            []
        );
    }
    assert_eq!(members(store, "active"), [keep], "other customers stay");
    assert_eq!(store.due_for_recheck(at(10), None, 10).unwrap(), [keep]);
}
