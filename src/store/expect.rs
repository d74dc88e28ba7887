//! Checking a commit's [`Expectation`]s, shared by the in-tree backends: each reads the
//! facts an expectation rests on in its own way ([`Facts`]); [`unmet`] compares them
//! with what the planner saw and names what changed; [`dead_target`] checks a rewrite's
//! targets the same way; [`membership_after`] checks a membership update against the
//! stored state.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::{CommitProblem, Expectation, MembershipUpdate, Rewrite};
use crate::model::{CustomerId, Identifier, InteractionId, Membership};

/// What a backend reads to check expectations, inside the transaction that applies
/// them.
pub(crate) trait Facts {
    /// How reading fails.
    type Error;

    /// The live profile `identifier` resolves to, if any.
    fn owner(&mut self, identifier: &Identifier) -> Result<Option<CustomerId>, Self::Error>;

    /// The live profile `customer` resolves to; `None` when it is unknown.
    fn live(&mut self, customer: CustomerId) -> Result<Option<CustomerId>, Self::Error>;

    /// The events plus interactions of the live profile `customer` and its members.
    fn evidence(&mut self, customer: CustomerId) -> Result<u64, Self::Error>;

    /// The canonical text of each identifier the live profile `customer` holds, in any
    /// order; none when it is unknown.
    fn identifiers(&mut self, customer: CustomerId) -> Result<Vec<String>, Self::Error>;

    /// The stored `updated_at` of the interaction `id`, if it is stored.
    fn interaction_version(
        &mut self,
        id: InteractionId,
    ) -> Result<Option<DateTime<Utc>>, Self::Error>;
}

/// What no longer holds of `expectation`, by what `facts` reads; `None` when it holds.
pub(crate) fn unmet<F: Facts + ?Sized>(
    facts: &mut F,
    expectation: &Expectation,
) -> Result<Option<CommitProblem>, F::Error> {
    Ok(match expectation {
        Expectation::Owner { identifier, owner } => {
            let found = facts.owner(identifier)?;
            (found != *owner).then(|| CommitProblem::UnexpectedOwner {
                identifier: identifier.clone(),
                expected: *owner,
                found,
            })
        }
        Expectation::Live { customer } => match facts.live(*customer)? {
            None => Some(CommitProblem::UnknownCustomer(*customer)),
            Some(live) if live != *customer => Some(CommitProblem::NotLive(*customer)),
            Some(_) => None,
        },
        Expectation::Evidence { customer, count } => {
            let found = facts.evidence(*customer)?;
            (found != *count).then_some(CommitProblem::EvidenceCount {
                customer: *customer,
                expected: *count,
                found,
            })
        }
        Expectation::Identifiers {
            customer,
            identifiers,
        } => {
            let mut found = facts.identifiers(*customer)?;
            found.sort_unstable();
            let mut expected: Vec<String> = identifiers.iter().map(ToString::to_string).collect();
            expected.sort_unstable();
            (found != expected).then_some(CommitProblem::IdentifiersChanged {
                customer: *customer,
                expected: expected.len(),
                found: found.len(),
            })
        }
        Expectation::InteractionVersion { id, updated_at } => {
            let found = facts.interaction_version(*id)?;
            (found != *updated_at).then_some(CommitProblem::InteractionVersion {
                id: *id,
                expected: *updated_at,
                found,
            })
        }
    })
}

/// The first profile `rewrite` places under a target that will not be live: one the
/// rewrite itself merges away, or, when the rewrite does not name it, one that is not
/// stored live.
pub(crate) fn dead_target<F: Facts + ?Sized>(
    facts: &mut F,
    rewrite: &Rewrite,
) -> Result<Option<CommitProblem>, F::Error> {
    let named: HashMap<CustomerId, CustomerId> =
        rewrite.profiles.iter().map(|p| (p.id, p.live)).collect();
    for state in &rewrite.profiles {
        let target_live = match named.get(&state.live) {
            Some(&live) => live == state.live,
            None => facts.live(state.live)? == Some(state.live),
        };
        if !target_live {
            return Ok(Some(CommitProblem::NotLiveTarget {
                id: state.id,
                live: state.live,
            }));
        }
    }
    Ok(None)
}

/// Why a membership update cannot apply.
pub(crate) enum Refused {
    /// It was decided on another version: a conflict.
    Stale(CommitProblem),
    /// It enters a segment held, leaves one not held, or names another profile.
    Invalid(CommitProblem),
}

/// The memberships of `update.customer` once `update` applies to the stored `version`
/// and `memberships` (in segment order); or why it cannot.
pub(crate) fn membership_after(
    update: &MembershipUpdate,
    version: u64,
    mut memberships: Vec<Membership>,
) -> Result<Vec<Membership>, Refused> {
    let customer = update.customer;
    if version != update.version {
        return Err(Refused::Stale(CommitProblem::MembershipVersion {
            customer,
            expected: update.version,
            found: version,
        }));
    }
    for change in &update.changes {
        let held = memberships.iter().any(|m| m.segment == change.segment);
        if change.customer != customer || held == change.entered {
            return Err(Refused::Invalid(CommitProblem::Membership {
                customer,
                segment: change.segment.clone(),
                entered: change.entered,
            }));
        }
        if change.entered {
            memberships.push(Membership {
                segment: change.segment.clone(),
                since: change.at,
                reasons: change.reasons.clone(),
            });
        } else {
            memberships.retain(|m| m.segment != change.segment);
        }
    }
    memberships.sort_by(|a, b| a.segment.cmp(&b.segment));
    Ok(memberships)
}
