//! Segment membership kept live: who is in which segment since when and why, and the
//! changes that put them there.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Channel, CustomerId, EventId};

/// A customer's membership of one segment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    /// The segment's name.
    pub segment: String,
    /// When the customer entered it.
    pub since: DateTime<Utc>,
    /// The conditions that held when they entered.
    pub reasons: Vec<String>,
}

/// A customer entering or leaving a segment: an entry of their timeline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembershipChange {
    /// The change's id: unique, and orders changes made at the same time.
    pub id: Uuid,
    /// The profile that entered or left.
    pub customer: CustomerId,
    /// The segment's name.
    pub segment: String,
    /// Whether the customer entered (`true`) or left (`false`).
    pub entered: bool,
    /// The time the segment was evaluated at.
    pub at: DateTime<Utc>,
    /// Why: the conditions that held (entering) or failed (leaving), or what happened to
    /// the profile (merged into another, erased).
    pub reasons: Vec<String>,
}

/// What a store keeps about one profile's live membership.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembershipState {
    /// Bumped by every update: an update names the version it was decided on, so two
    /// writers deciding on the same profile cannot both land.
    pub version: u64,
    /// The segments the profile is in, by segment name.
    pub memberships: Vec<Membership>,
    /// The first time at which a verdict can change with no new evidence (a window
    /// closes over an event, or an event dated later comes into force); `None` when no
    /// verdict depends on the time.
    pub recheck_at: Option<DateTime<Utc>>,
    /// What the segments read of the profile's events, kept up to date with them, so a
    /// write re-decides membership without reading the profile's history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<EventDigest>,
}

/// The part of a profile's events that a set of live segments reads: the events they
/// can count, each with only the properties they look at.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventDigest {
    /// Names what was kept (the segments and computed traits it was made for): a digest
    /// made for other definitions is made again from the events.
    pub spec: String,
    /// The events, in the order they were added.
    pub events: Vec<DigestedEvent>,
}

/// One event of an [`EventDigest`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigestedEvent {
    /// The event's id.
    pub id: EventId,
    /// Its name.
    pub name: String,
    /// Its channel.
    pub channel: Channel,
    /// When it happened.
    #[serde(deserialize_with = "super::time::deserialize")]
    pub at: DateTime<Utc>,
    /// The properties read, by top-level name.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub properties: serde_json::Map<String, serde_json::Value>,
}

impl MembershipState {
    /// Whether the profile is in `segment`.
    pub fn is_member(&self, segment: &str) -> bool {
        self.memberships.iter().any(|m| m.segment == segment)
    }
}
