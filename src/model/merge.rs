//! The records identity resolution keeps: merges, refused links, and operator overrides.

use std::cmp::Ordering;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::identifier::{Identifier, IdentifierKind};
use super::ids::{CustomerId, EventId, MergeId, OverrideId};

/// Where a piece of identity evidence sits in the one order resolution follows: by time,
/// then by id. Events and interactions are keyed by `occurred_at` and their id, operator
/// links by when they were made and their id.
///
/// Because the key belongs to the evidence itself, the order never depends on arrival.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct EvidenceKey {
    /// When the evidence happened.
    pub at: DateTime<Utc>,
    /// The evidence's id (an event, interaction or override id).
    pub id: Uuid,
}

/// Why two profiles were merged.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum MergeRule {
    /// One event or interaction carried identifiers owned by both profiles.
    SharedIdentifier,
    /// An operator linked them ([`Override::Link`]); limits and separations were waived.
    Forced,
}

/// A recorded merge: `absorbed` now resolves to `survivor`, and everything attributed to
/// `absorbed` (events, interactions, traits) belongs to the survivor's profile.
///
/// Merges are never rewritten in place: each one can be explained after the fact, and
/// when later evidence (a late event, an operator's unmerge) changes the partition, the
/// affected profiles are rebuilt and their merges recorded anew.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergeRecord {
    /// The merge's own id.
    pub id: MergeId,
    /// The profile that lives on.
    pub survivor: CustomerId,
    /// The profile merged into it.
    pub absorbed: CustomerId,
    /// The event that carried the evidence, if an event did.
    pub evidence: Option<EventId>,
    /// The identifiers that linked the two profiles.
    pub linking: Vec<Identifier>,
    /// Those of `linking` that the absorbed profile held; the rest were the survivor's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub absorbed_side: Vec<Identifier>,
    /// The id of the evidence (event, interaction or override) that linked them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence_id: Option<Uuid>,
    /// The rule that allowed it.
    pub rule: MergeRule,
    /// When the evidence says it happened (the evidence's event time).
    pub at: DateTime<Utc>,
}

/// Why an identifier carried by some evidence was not linked to the rest of it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
#[non_exhaustive]
pub enum RefusalRule {
    /// Linking it would give one profile more distinct values of `kind` than `limit`
    /// (two different user ids, a sixth email).
    Limit {
        /// The kind whose limit it would break.
        kind: IdentifierKind,
        /// The limit.
        limit: u32,
    },
    /// An operator separated it from identifiers on the other side ([`Override::Separate`]).
    Separated {
        /// The override.
        by: OverrideId,
    },
    /// An operator undid the merge this evidence made ([`Override::Unlink`]).
    Unlinked {
        /// The override.
        by: OverrideId,
    },
    /// The identifier is suspect: the evidence showed it beside the user ids of several
    /// different people (a placeholder email, a switchboard number), so it links nothing
    /// ([`Override::Suspect`]).
    Suspect {
        /// The override that records the suspicion.
        by: OverrideId,
    },
}

/// A link that resolution refused: `identifier`, carried by the evidence, was kept away
/// from the profile the evidence went to.
///
/// The evidence is still stored and attributed; only the link is refused, so nothing is
/// lost and the refusal can be explained.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    /// The evidence (event, interaction or override) that carried the identifier.
    pub evidence: Uuid,
    /// When the evidence happened.
    pub at: DateTime<Utc>,
    /// The identifier that was not linked.
    pub identifier: Identifier,
    /// The profile the evidence went to.
    pub customer: CustomerId,
    /// The rule that refused it.
    pub rule: RefusalRule,
}

impl Refusal {
    /// The order refusals are listed in: by evidence, then identifier.
    pub fn order(&self, other: &Self) -> Ordering {
        (self.at, self.evidence, &self.identifier).cmp(&(
            other.at,
            other.evidence,
            &other.identifier,
        ))
    }
}

/// An operator's correction of identity resolution. Overrides are evidence like any other:
/// they are stored, and every rebuild of the profiles they name takes them into account,
/// so replaying the same events cannot undo them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "override", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Override {
    /// The profiles holding `a` and `b` are one customer, whatever the limits say.
    Link {
        /// An identifier of one side.
        a: Identifier,
        /// An identifier of the other side.
        b: Identifier,
    },
    /// No identifier in `a` may share a profile with one in `b`.
    Separate {
        /// One side.
        a: Vec<Identifier>,
        /// The other side.
        b: Vec<Identifier>,
    },
    /// The evidence `evidence` no longer merges profiles (it still attaches identifiers
    /// nobody holds, and it is still attributed): the undoing of the merge `merge`.
    Unlink {
        /// The evidence whose links are undone.
        evidence: Uuid,
        /// The merge being undone, as it was recorded.
        merge: Box<MergeRecord>,
    },
    /// Recorded by resolution, not by an operator: the evidence showed `identifier` beside
    /// `people` different values of one unique kind (the user ids of different people;
    /// see [`Policy::suspect_after`](crate::identity::Policy::suspect_after)), so it links
    /// nothing until an operator [allows](Override::Allow) it.
    Suspect {
        /// The identifier.
        identifier: Identifier,
        /// How many different values of one unique kind it was seen with when it turned
        /// suspect.
        people: u32,
    },
    /// An operator confirmed a value as junk: it is never an identifier, like a value the
    /// [`Policy`](crate::identity::Policy) blocks.
    Block {
        /// The identifier.
        identifier: Identifier,
    },
    /// An operator cleared a value: it is never suspect, and links like any identifier.
    Allow {
        /// The identifier.
        identifier: Identifier,
    },
}

/// A stored [`Override`], with who made it, when and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverrideRecord {
    /// Its id.
    pub id: OverrideId,
    /// When it was made.
    pub at: DateTime<Utc>,
    /// What it says.
    #[serde(flatten)]
    pub rule: Override,
    /// The operator's reason, if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl OverrideRecord {
    /// The identifier whose standing the override sets (suspect, blocked, allowed), if it
    /// is one of those; such overrides never tie profiles together.
    pub fn standing(&self) -> Option<&Identifier> {
        match &self.rule {
            Override::Suspect { identifier, .. }
            | Override::Block { identifier }
            | Override::Allow { identifier } => Some(identifier),
            _ => None,
        }
    }

    /// Every identifier the override names; stores index overrides by these.
    pub fn identifiers(&self) -> Vec<Identifier> {
        let mut all = match &self.rule {
            Override::Link { a, b } => vec![a.clone(), b.clone()],
            Override::Separate { a, b } => a.iter().chain(b).cloned().collect(),
            Override::Unlink { merge, .. } => merge.linking.clone(),
            Override::Suspect { identifier, .. }
            | Override::Block { identifier }
            | Override::Allow { identifier } => vec![identifier.clone()],
        };
        all.sort_unstable();
        all.dedup();
        all
    }
}
