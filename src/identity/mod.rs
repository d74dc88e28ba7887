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
//! let decision = decide(&[email.clone()], &[None], &[], Evidence { event: None, at: Utc::now() }, fresh);
//! assert_eq!(decision.action, Action::Create);
//! assert_eq!(decision.customer, fresh);
//! # Ok::<(), oneview::IdentifierError>(())
//! ```

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::{CustomerId, EventId, Identifier, MergeId, MergeRecord, MergeRule};
use crate::store::{Expectation, IdentityChange, ProfileRecord};

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
/// - `owners[i]` is the live profile that owns `identifiers[i]` now, if any.
/// - `profiles` holds the records of those owners (at least), to pick the oldest.
/// - `fresh` is the id to give a new profile, should one be needed.
///
/// The decision expects every identifier to still have the owner seen, so a store refuses
/// it if another writer changed any of them in between.
pub fn decide(
    identifiers: &[Identifier],
    owners: &[Option<CustomerId>],
    profiles: &[ProfileRecord],
    evidence: Evidence,
    fresh: CustomerId,
) -> Decision {
    debug_assert_eq!(identifiers.len(), owners.len(), "one owner per identifier");
    let expect = identifiers
        .iter()
        .zip(owners)
        .map(|(identifier, owner)| Expectation::Owner {
            identifier: identifier.clone(),
            owner: *owner,
        })
        .collect();
    let owned: BTreeSet<CustomerId> = owners.iter().flatten().copied().collect();
    let seniority = |id: &CustomerId| {
        let created = profiles.iter().find(|p| p.id == *id).map(|p| p.created_at);
        (created.unwrap_or(evidence.at), *id)
    };
    let mut changes = Vec::new();
    let (action, customer) = match owned.iter().min_by_key(|id| seniority(id)) {
        None => {
            changes.push(IdentityChange::CreateProfile {
                id: fresh,
                created_at: evidence.at,
            });
            (Action::Create, fresh)
        }
        Some(&survivor) => {
            let mut absorbed: Vec<CustomerId> =
                owned.into_iter().filter(|&id| id != survivor).collect();
            absorbed.sort_by_key(|id| seniority(id));
            for &other in &absorbed {
                let linking = identifiers
                    .iter()
                    .zip(owners)
                    .filter(|(_, owner)| matches!(owner, Some(o) if *o == survivor || *o == other))
                    .map(|(identifier, _)| identifier.clone())
                    .collect();
                changes.push(IdentityChange::Merge(MergeRecord {
                    id: MergeId::new(),
                    survivor,
                    absorbed: other,
                    evidence: evidence.event,
                    linking,
                    rule: MergeRule::SharedIdentifier,
                    at: evidence.at,
                }));
            }
            let action = if absorbed.is_empty() {
                Action::Attach
            } else {
                Action::Merge
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

    fn record(id: CustomerId, day: u32) -> ProfileRecord {
        ProfileRecord {
            id,
            created_at: at(day),
            members: vec![id],
            identifiers: Vec::new(),
        }
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
        let owner = CustomerId::new();
        let decision = decide(
            &[email, phone.clone()],
            &[Some(owner), None],
            &[record(owner, 1)],
            evidence(),
            CustomerId::new(),
        );
        assert_eq!(decision.action, Action::Attach);
        assert_eq!(decision.customer, owner);
        assert_eq!(
            decision.changes,
            vec![IdentityChange::Attach {
                identifier: phone,
                customer: owner
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
        let profiles = [record(young, 9), record(middle, 5), record(old, 2)];
        let decision = decide(
            &ids,
            &[Some(young), Some(middle), Some(old)],
            &profiles,
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
        let decision = decide(&[], &[], &[], evidence(), fresh);
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
