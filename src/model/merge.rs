//! The record of two profiles becoming one.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::identifier::Identifier;
use super::ids::{CustomerId, EventId, MergeId};

/// Why two profiles were merged.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum MergeRule {
    /// One event or interaction carried identifiers owned by both profiles.
    SharedIdentifier,
}

/// A recorded merge: `absorbed` now resolves to `survivor`, and everything attributed to
/// `absorbed` (events, interactions, traits) belongs to the survivor's profile.
///
/// Merges are kept, never rewritten, so each one can be explained after the fact.
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
    /// The rule that allowed it.
    pub rule: MergeRule,
    /// When the evidence says it happened (the evidence's event time).
    pub at: DateTime<Utc>,
}
