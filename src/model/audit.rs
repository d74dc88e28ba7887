//! The audit trail: who did what to the customer data, when and why.
//!
//! Every operator action — an unmerge, a detach, a forced merge, a value blocked or
//! cleared, consent set on a customer's behalf, an export, an erasure, a suppression
//! lifted — is kept as an [`AuditRecord`] naming the [`Actor`] and their reason. Audit
//! records hold ids and counts, never a customer's identifiers or other personal data, so
//! they outlive an erasure without keeping the person.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::channel::Channel;
use super::consent::{ConsentStatus, Purpose};
use super::error::{ValidationError, required_name};
use super::ids::{CustomerId, EventId, MergeId, OverrideId};

/// Who is acting on customer data, and why: required by every operator action.
///
/// ```
/// use oneview::Actor;
///
/// let actor = Actor::new("agent:maria", "customer asked by phone, ticket 4411");
/// assert_eq!(actor.name, "agent:maria");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// Who: a person's account, a team, a system (`agent:maria`, `dpo`, `crm-sync`).
    pub name: String,
    /// Why: the request or ticket the action answers.
    pub reason: String,
}

impl Actor {
    /// `name` acting for `reason`.
    pub fn new(name: &str, reason: &str) -> Self {
        Self {
            name: name.trim().to_owned(),
            reason: reason.trim().to_owned(),
        }
    }

    /// Checks that both who and why are given.
    pub fn validate(&self) -> Result<(), ValidationError> {
        required_name("actor.name", &self.name)?;
        if self.reason.trim().is_empty() {
            return Err(ValidationError::Empty {
                field: "actor.reason",
            });
        }
        if self.reason.len() > super::consent::MAX_WORDING_BYTES {
            return Err(ValidationError::TooLong {
                field: "actor.reason",
                len: self.reason.len(),
                max: super::consent::MAX_WORDING_BYTES,
            });
        }
        Ok(())
    }
}

/// One entry of the audit trail.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Its id (a UUID v7, so ids sort by time).
    pub id: Uuid,
    /// When the action was taken.
    pub at: DateTime<Utc>,
    /// Who took it, and why.
    pub actor: Actor,
    /// What was done.
    pub action: AuditAction,
}

impl AuditRecord {
    /// A record of `action`, taken now by `actor`.
    pub fn now(actor: &Actor, action: AuditAction) -> Self {
        Self {
            id: Uuid::now_v7(),
            at: Utc::now(),
            actor: actor.clone(),
            action,
        }
    }
}

/// What an audited action did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
#[non_exhaustive]
pub enum AuditAction {
    /// A merge was undone.
    Unmerge {
        /// The profile it was undone on.
        customer: CustomerId,
        /// The merge.
        merge: MergeId,
        /// Whether the two sides were also kept apart for good.
        blocked: bool,
        /// The overrides that record it.
        overrides: Vec<OverrideId>,
    },
    /// An identifier was detached from its profile.
    Detach {
        /// The profile it was detached from.
        customer: CustomerId,
        /// The override that records it.
        override_id: OverrideId,
    },
    /// Two profiles were merged whatever the rules said.
    ForceMerge {
        /// The override that records it.
        override_id: OverrideId,
    },
    /// A value was confirmed as junk: it identifies nobody.
    Block {
        /// The override that records it.
        override_id: OverrideId,
    },
    /// A suspect value was cleared: it identifies like any other.
    SuspectCleared {
        /// The override that records it.
        override_id: OverrideId,
    },
    /// Consent was recorded on a customer's behalf.
    ConsentSet {
        /// The customer.
        customer: CustomerId,
        /// The event that carries the decision.
        event: EventId,
        /// The purpose.
        purpose: Purpose,
        /// The channel, or `None` for every channel.
        channel: Option<Channel>,
        /// The decision.
        status: ConsentStatus,
    },
    /// Everything held about a customer was exported.
    Export {
        /// The customer.
        customer: CustomerId,
    },
    /// A customer was erased.
    Erase {
        /// The live profile erased (with every profile merged into it).
        customer: CustomerId,
        /// How many records of each kind were removed.
        removed: ErasedCounts,
        /// The keyed hashes of the erased identifiers, now on the suppression list.
        suppressed: Vec<String>,
    },
    /// A retention policy removed the content of old records.
    Retention {
        /// Events whose content was removed.
        events: u64,
        /// Interactions whose content was removed.
        interactions: u64,
    },
    /// A suppression was lifted: records carrying the identifier are accepted again.
    SuppressionLifted {
        /// The keyed hash that was lifted.
        hash: String,
    },
}

/// How many records an erasure removed, by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErasedCounts {
    /// Profile ids (the live one and every one merged into it).
    pub profiles: u64,
    /// Identifiers.
    pub identifiers: u64,
    /// Events.
    pub events: u64,
    /// Interactions.
    pub interactions: u64,
    /// Trait operations.
    pub trait_operations: u64,
    /// Consent decisions.
    pub consent: u64,
}
