//! Identity resolution as pure logic: from the identifiers a record carries and the
//! profiles that own them now, decide which profile the record belongs to and how the
//! identity graph must change. The decision is data; a store applies it.
//!
//! The rule here: identifiers nobody owns join the profile that owns any of the others; a
//! record whose identifiers belong to several profiles merges them into the oldest; a
//! record with no owned identifiers starts a new profile.
//!
//! ```
//! use chrono::Utc;
//! use oneview::identity::{Action, Evidence, decide};
//! use oneview::{CustomerId, Identifier};
//!
//! let email = Identifier::email("ana@example.com")?;
//! let fresh = CustomerId::new();
//! let decision = decide(&[email.clone()], &[None], Evidence { event: None, at: Utc::now() }, fresh);
//! assert_eq!(decision.action, Action::Create);
//! assert_eq!(decision.customer, fresh);
//! # Ok::<(), oneview::IdentifierError>(())
//! ```

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::{CustomerId, EventId, Identifier, MergeId, MergeRecord, MergeRule};
use crate::store::{Expectation, IdentityChange, Owner};

/// What carried the identifiers: the event, if any, and its time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Evidence {
    /// The event that carried them.
    pub event: Option<EventId>,
    /// When the evidence happened; a profile it creates is that old.
    pub at: DateTime<Utc>,
}

/// What a decision does to the identity graph, in one word.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Action {
    /// A new profile is created.
    Create,
    /// The record belongs to an existing profile (possibly with new identifiers attached).
    Attach,
    /// Several profiles are merged into one.
    Merge,
}

/// A decision: which profile a record belongs to, and how the graph changes.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    /// What the decision does.
    pub action: Action,
    /// The live profile the record is attributed to.
    pub customer: CustomerId,
    /// The changes to apply, in order.
    pub changes: Vec<IdentityChange>,
    /// The facts the decision rests on, for the store to check.
    pub expect: Vec<Expectation>,
}

/// Decides where a record with `identifiers` belongs.
///
/// - `owners[i]` is the live profile that owns `identifiers[i]` now, if any; the oldest
///   of them (by `created_at`, then id) survives a merge.
/// - `fresh` is the id to give a new profile, should one be needed.
///
/// The decision expects every identifier to still have the owner seen, so a store refuses
/// it if another writer changed any of them in between.
pub fn decide(
    identifiers: &[Identifier],
    owners: &[Option<Owner>],
    evidence: Evidence,
    fresh: CustomerId,
) -> Decision {
    debug_assert_eq!(identifiers.len(), owners.len(), "one owner per identifier");
    let expect = identifiers
        .iter()
        .zip(owners)
        .map(|(identifier, owner)| Expectation::Owner {
            identifier: identifier.clone(),
            owner: owner.map(|o| o.customer),
        })
        .collect();
    // Oldest first: (created_at, id) ranks profiles the same way whatever the arrival order.
    let owned: BTreeSet<(DateTime<Utc>, CustomerId)> = owners
        .iter()
        .flatten()
        .map(|o| (o.created_at, o.customer))
        .collect();
    let mut changes = Vec::new();
    let (action, customer) = match owned.first() {
        None => {
            changes.push(IdentityChange::CreateProfile {
                id: fresh,
                created_at: evidence.at,
            });
            (Action::Create, fresh)
        }
        Some(&(_, survivor)) => {
            for &(_, absorbed) in owned.iter().skip(1) {
                let linking = identifiers
                    .iter()
                    .zip(owners)
                    .filter(|(_, owner)| {
                        owner.is_some_and(|o| o.customer == survivor || o.customer == absorbed)
                    })
                    .map(|(identifier, _)| identifier.clone())
                    .collect();
                changes.push(IdentityChange::Merge(MergeRecord {
                    id: MergeId::new(),
                    survivor,
                    absorbed,
                    evidence: evidence.event,
                    linking,
                    rule: MergeRule::SharedIdentifier,
                    at: evidence.at,
                }));
            }
            let action = if owned.len() > 1 {
                Action::Merge
            } else {
                Action::Attach
            };
            (action, survivor)
        }
    };
    for (identifier, owner) in identifiers.iter().zip(owners) {
        if owner.is_none() {
            changes.push(IdentityChange::Attach {
                identifier: identifier.clone(),
                customer,
            });
        }
    }
    Decision {
        action,
        customer,
        changes,
        expect,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 5, day, 0, 0, 0).unwrap()
    }

    fn owner(customer: CustomerId, day: u32) -> Option<Owner> {
        Some(Owner {
            customer,
            created_at: at(day),
        })
    }

    fn evidence() -> Evidence {
        Evidence {
            event: Some(EventId::derive("t", "1")),
            at: at(20),
        }
    }

    #[test]
    fn unowned_identifiers_join_the_owner() {
        let email = Identifier::email("a@b.c").unwrap();
        let phone = Identifier::phone("+14155552671").unwrap();
        let existing = CustomerId::new();
        let decision = decide(
            &[email, phone.clone()],
            &[owner(existing, 1), None],
            evidence(),
            CustomerId::new(),
        );
        assert_eq!(decision.action, Action::Attach);
        assert_eq!(decision.customer, existing);
        assert_eq!(
            decision.changes,
            vec![IdentityChange::Attach {
                identifier: phone,
                customer: existing
            }]
        );
        assert_eq!(decision.expect.len(), 2);
    }

    #[test]
    fn several_owners_merge_into_the_oldest() {
        let ids: Vec<Identifier> = ["a@b.c", "b@b.c", "c@b.c"]
            .iter()
            .map(|e| Identifier::email(e).unwrap())
            .collect();
        // Created in id order, but the last one is the oldest by evidence time.
        let (young, middle, old) = (CustomerId::new(), CustomerId::new(), CustomerId::new());
        let decision = decide(
            &ids,
            &[owner(young, 9), owner(middle, 5), owner(old, 2)],
            evidence(),
            CustomerId::new(),
        );
        assert_eq!(decision.action, Action::Merge);
        assert_eq!(decision.customer, old);
        let absorbed: Vec<CustomerId> = decision
            .changes
            .iter()
            .map(|c| match c {
                IdentityChange::Merge(m) => {
                    assert_eq!(m.survivor, old);
                    assert_eq!(m.evidence, evidence().event);
                    m.absorbed
                }
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(absorbed, vec![middle, young]);
    }

    #[test]
    fn no_owned_identifier_creates_a_profile() {
        let fresh = CustomerId::new();
        let decision = decide(&[], &[], evidence(), fresh);
        assert_eq!(decision.action, Action::Create);
        assert_eq!(
            decision.changes,
            vec![IdentityChange::CreateProfile {
                id: fresh,
                created_at: at(20)
            }]
        );
        assert!(decision.expect.is_empty());
    }
}
