//! Profile traits with provenance, resolved by event time rather than arrival order.
//!
//! A trait is never stored as a bare value: every change is a [`TraitOperation`] that
//! remembers who said it, from which event, and when. The current value is computed by
//! [`resolve_traits`], which applies the operations in event-time order. Because that order
//! is a total order over the operations themselves, the result depends only on which
//! operations exist, never on the order in which they arrived.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ids::EventId;

/// The longest trait key accepted, in bytes.
pub const MAX_TRAIT_KEY_BYTES: usize = 256;

/// A change to one trait.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", content = "value", rename_all = "snake_case")]
pub enum TraitOp {
    /// Sets the value; a later `set` or `unset` replaces it.
    Set(Value),
    /// Sets the value only when the trait has none at that point in time, so the earliest
    /// `set_once` wins (first-touch attribution, sign-up date).
    SetOnce(Value),
    /// Removes the value; a later `set` or `set_once` gives it one again.
    Unset,
}

impl TraitOp {
    fn rank(&self) -> u8 {
        match self {
            Self::Set(_) => 0,
            Self::SetOnce(_) => 1,
            Self::Unset => 2,
        }
    }

    fn value(&self) -> Option<&Value> {
        match self {
            Self::Set(value) | Self::SetOnce(value) => Some(value),
            Self::Unset => None,
        }
    }
}

/// Where a trait value came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    /// The system that said it (`web`, `crm`, `support-desk`, …).
    pub source: String,
    /// The event that carried it, when it came with one.
    pub event_id: Option<EventId>,
    /// When it was true, by the source's clock.
    pub observed_at: DateTime<Utc>,
}

/// A change to a trait, without provenance: what an event or an interaction carries.
/// Provenance is filled in from the carrier when it is stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TraitUpdate {
    /// The trait's name.
    pub key: String,
    /// What to do to it.
    #[serde(flatten)]
    pub op: TraitOp,
}

/// One change to one trait, with its provenance: the unit traits are stored as.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TraitOperation {
    /// The trait's name.
    pub key: String,
    /// What was done to it.
    #[serde(flatten)]
    pub op: TraitOp,
    /// Who did it, when.
    pub provenance: Provenance,
}

impl TraitOperation {
    /// The total order in which operations on one key are applied: event time first, then
    /// the event id, the source, the operation and finally the value itself, so that even
    /// exact ties resolve the same way every time.
    pub fn application_order(&self, other: &Self) -> Ordering {
        let (a, b) = (&self.provenance, &other.provenance);
        a.observed_at
            .cmp(&b.observed_at)
            .then_with(|| a.event_id.cmp(&b.event_id))
            .then_with(|| a.source.cmp(&b.source))
            .then_with(|| self.op.rank().cmp(&other.op.rank()))
            .then_with(|| {
                let text = |op: &TraitOp| op.value().map(Value::to_string).unwrap_or_default();
                text(&self.op).cmp(&text(&other.op))
            })
    }
}

/// A trait's current value and the provenance of the operation that gave it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResolvedTrait {
    /// The value.
    pub value: Value,
    /// Where it came from.
    pub provenance: Provenance,
}

/// Resolves operations into current trait values, keyed by trait name.
///
/// Operations on each key are applied in [`TraitOperation::application_order`]: `set`
/// replaces, `unset` removes, `set_once` sets only a trait that has no value at that time.
/// Hence the latest `set` or `unset` wins, and an earlier `set_once` wins over a later one.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use oneview::{Provenance, TraitOp, TraitOperation, resolve_traits};
/// use serde_json::json;
///
/// let at = |day| Provenance { source: "crm".into(), event_id: None,
///                             observed_at: Utc.with_ymd_and_hms(2026, 1, day, 0, 0, 0).unwrap() };
/// let op = |op, day| TraitOperation { key: "plan".into(), op, provenance: at(day) };
/// // Delivered newest first; resolved as of event time.
/// let ops = [op(TraitOp::Set(json!("pro")), 3), op(TraitOp::Set(json!("free")), 1),
///            op(TraitOp::Set(json!("team")), 2)];
/// let traits = resolve_traits(&ops);
/// assert_eq!(traits["plan"].value, json!("pro"));
/// ```
pub fn resolve_traits<'a, I>(operations: I) -> BTreeMap<String, ResolvedTrait>
where
    I: IntoIterator<Item = &'a TraitOperation>,
{
    let mut by_key: BTreeMap<&str, Vec<&TraitOperation>> = BTreeMap::new();
    for operation in operations {
        by_key.entry(&operation.key).or_default().push(operation);
    }
    let mut resolved = BTreeMap::new();
    for (key, mut ops) in by_key {
        ops.sort_by(|a, b| a.application_order(b));
        let mut current: Option<&TraitOperation> = None;
        for op in ops {
            match &op.op {
                TraitOp::Set(_) => current = Some(op),
                TraitOp::SetOnce(_) if current.is_none() => current = Some(op),
                TraitOp::SetOnce(_) => {}
                TraitOp::Unset => current = None,
            }
        }
        if let Some(op) = current {
            let value = op.op.value().expect("only set operations are kept").clone();
            let provenance = op.provenance.clone();
            resolved.insert(key.to_owned(), ResolvedTrait { value, provenance });
        }
    }
    resolved
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    fn op(key: &str, op: TraitOp, day: u32) -> TraitOperation {
        TraitOperation {
            key: key.into(),
            op,
            provenance: Provenance {
                source: "test".into(),
                event_id: Some(EventId::derive("test", &day.to_string())),
                observed_at: Utc.with_ymd_and_hms(2026, 1, day, 0, 0, 0).unwrap(),
            },
        }
    }

    #[test]
    fn set_once_keeps_the_earliest() {
        let ops = [
            op("signup", TraitOp::SetOnce(json!("b")), 5),
            op("signup", TraitOp::SetOnce(json!("a")), 2),
        ];
        let traits = resolve_traits(&ops);
        assert_eq!(traits["signup"].value, json!("a"));
        assert_eq!(
            traits["signup"]
                .provenance
                .observed_at
                .format("%d")
                .to_string(),
            "02"
        );
    }

    #[test]
    fn unset_removes_until_a_later_set() {
        let removed = [
            op("plan", TraitOp::Set(json!("pro")), 1),
            op("plan", TraitOp::Unset, 2),
        ];
        assert!(resolve_traits(&removed).is_empty());
        let restored = [
            op("plan", TraitOp::Unset, 2),
            op("plan", TraitOp::Set(json!("pro")), 1),
            op("plan", TraitOp::SetOnce(json!("free")), 3),
        ];
        assert_eq!(resolve_traits(&restored)["plan"].value, json!("free"));
    }

    #[test]
    fn set_after_set_once_replaces_it() {
        let ops = [
            op("plan", TraitOp::Set(json!("pro")), 4),
            op("plan", TraitOp::SetOnce(json!("free")), 1),
        ];
        assert_eq!(resolve_traits(&ops)["plan"].value, json!("pro"));
    }

    #[test]
    fn exact_ties_break_the_same_way_in_any_order() {
        let mut a = op("plan", TraitOp::Set(json!("x")), 1);
        let mut b = op("plan", TraitOp::Set(json!("y")), 1);
        a.provenance.event_id = None;
        b.provenance.event_id = None;
        let forward = resolve_traits([&a, &b]);
        let backward = resolve_traits([&b, &a]);
        assert_eq!(forward, backward);
        assert_eq!(forward["plan"].value, json!("y"));
    }

    #[test]
    fn operations_serialize_with_a_readable_tag() {
        let json = serde_json::to_value(op("plan", TraitOp::Set(json!("pro")), 1)).unwrap();
        assert_eq!(json["op"], "set");
        assert_eq!(json["value"], "pro");
        let unset = serde_json::to_value(op("plan", TraitOp::Unset, 1)).unwrap();
        assert_eq!(unset["op"], "unset");
    }
}
