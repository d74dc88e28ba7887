//! The document a person is handed when they ask what is held about them.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::consent::EffectiveConsent;
use crate::model::{
    ConsentRecord, CustomerId, Event, Feedback, Identifier, Interaction, MembershipChange,
    MergeRecord, OverrideRecord, Refusal, ResolvedTrait, TraitOperation,
};

/// The `format` of every [`CustomerExport`].
pub const EXPORT_FORMAT: &str = "oneview.customer-export";

/// The `version` of the [`CustomerExport`] this build writes. A change that removes or
/// renames a field, or changes its meaning, takes a new version; new fields do not.
pub const EXPORT_VERSION: u32 = 1;

/// Everything held about one person (right of access and portability), as one `serde`
/// document. Serialized with `serde_json`, it is the JSON handed to them.
///
/// # Format, version 1
/// - `format`, `version`, `exported_at`: what this document is and when it was made.
/// - `customer`, `created_at`, `merged_profiles`: the profile's id, when it began, and the
///   ids of the profiles merged into it.
/// - `identifiers`: every identifier held, canonical (`kind:value`).
/// - `traits`: each trait's current value with its provenance; `trait_history`: every
///   change ever reported, with who reported it, when and in which event.
/// - `events`, `interactions`: the whole event log and interaction history, oldest first.
/// - `feedback`: what the customer told the company, read from those.
/// - `consent`: every decision (`history`) and what is in force now (`in_force`).
/// - `merges`, `refused_links`, `corrections`: how the profile was assembled, the links
///   refused, and the operators' corrections that name its identifiers.
/// - `segments`: the segments the customer belongs to at export time, by name, when the
///   export is made with [`Customers::export_with_segments`](crate::Customers::export_with_segments)
///   (segments are the application's definitions); empty otherwise.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CustomerExport {
    /// Always [`EXPORT_FORMAT`].
    pub format: String,
    /// [`EXPORT_VERSION`] when this build wrote it.
    pub version: u32,
    /// When it was made.
    pub exported_at: DateTime<Utc>,
    /// The live profile.
    pub customer: CustomerId,
    /// When the profile began, by its evidence.
    pub created_at: DateTime<Utc>,
    /// The profiles merged into it.
    pub merged_profiles: Vec<CustomerId>,
    /// Every identifier held.
    pub identifiers: Vec<Identifier>,
    /// Current trait values, with provenance.
    pub traits: BTreeMap<String, ResolvedTrait>,
    /// Every trait change reported, oldest first.
    pub trait_history: Vec<TraitOperation>,
    /// Every event, oldest first.
    pub events: Vec<Event>,
    /// Every interaction, oldest first.
    pub interactions: Vec<Interaction>,
    /// Feedback, oldest first.
    pub feedback: Vec<Feedback>,
    /// Consent decisions and what is in force.
    pub consent: ExportedConsent,
    /// The merges that built the profile.
    pub merges: Vec<MergeRecord>,
    /// The links refused while building it.
    pub refused_links: Vec<Refusal>,
    /// Operator corrections naming its identifiers.
    pub corrections: Vec<OverrideRecord>,
    /// The segments the customer belongs to: those kept live
    /// ([`Customers::with_live_segments`](crate::Customers::with_live_segments)), or
    /// those [`export_with_segments`](crate::Customers::export_with_segments) evaluated.
    pub segments: Vec<String>,
    /// Every time the profile (or one merged into it) entered or left a segment kept
    /// live, oldest first, with the reasons.
    #[serde(default)]
    pub segment_history: Vec<MembershipChange>,
}

/// The consent part of a [`CustomerExport`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportedConsent {
    /// Every decision, oldest first.
    pub history: Vec<ConsentRecord>,
    /// What is in force at export time.
    pub in_force: Vec<EffectiveConsent>,
}
