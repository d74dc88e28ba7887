//! Computed traits: values aggregated from a customer's events — how many orders, how
//! much spent, the last plan seen, the most frequent category — over all time or a
//! sliding window.
//!
//! A [`ComputedTrait`] selects events ([`EventFilter`]: names and property conditions),
//! limits them to a window (the last N days before `as_of`), and aggregates one property
//! ([`Aggregate`]). [`ComputedTrait::compute`] works from the events themselves, so the
//! value depends only on which events the customer has, never on the order they arrived
//! in; late events, merges and unmerges are reflected as soon as the events are where
//! they belong.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::RuleError;
use crate::model::Event;

/// A test on one value: a property of an event, or a trait.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "test", content = "value", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Comparison {
    /// Present, whatever its value.
    Exists,
    /// Absent (or `null`).
    Missing,
    /// Equal to this JSON value.
    Equals(Value),
    /// Present and not equal to this JSON value.
    NotEquals(Value),
    /// A number greater than this.
    GreaterThan(f64),
    /// A number at least this.
    AtLeast(f64),
    /// A number less than this.
    LessThan(f64),
    /// A number at most this.
    AtMost(f64),
    /// Text containing this, ignoring case.
    Contains(String),
    /// Equal to one of these JSON values.
    In(Vec<Value>),
}

impl Comparison {
    /// Whether `value` (`None` when absent) passes the test.
    pub fn holds(&self, value: Option<&Value>) -> bool {
        let value = value.filter(|v| !v.is_null());
        let number = value.and_then(Value::as_f64);
        match self {
            Self::Exists => value.is_some(),
            Self::Missing => value.is_none(),
            Self::Equals(expected) => value == Some(expected),
            Self::NotEquals(unexpected) => value.is_some_and(|v| v != unexpected),
            Self::GreaterThan(bound) => number.is_some_and(|n| n > *bound),
            Self::AtLeast(bound) => number.is_some_and(|n| n >= *bound),
            Self::LessThan(bound) => number.is_some_and(|n| n < *bound),
            Self::AtMost(bound) => number.is_some_and(|n| n <= *bound),
            Self::Contains(part) => value
                .and_then(Value::as_str)
                .is_some_and(|text| text.to_lowercase().contains(&part.to_lowercase())),
            Self::In(options) => value.is_some_and(|v| options.contains(v)),
        }
    }

    pub(crate) fn validate(&self, path: &str) -> Result<(), RuleError> {
        let finite = |bound: &f64| {
            if bound.is_finite() {
                Ok(())
            } else {
                Err(RuleError::new(path, "a bound must be a finite number"))
            }
        };
        match self {
            Self::GreaterThan(b) | Self::AtLeast(b) | Self::LessThan(b) | Self::AtMost(b) => {
                finite(b)
            }
            Self::Contains(part) if part.is_empty() => {
                Err(RuleError::new(path, "contains needs some text"))
            }
            Self::In(options) if options.is_empty() => {
                Err(RuleError::new(path, "in needs at least one value"))
            }
            _ => Ok(()),
        }
    }
}

impl std::fmt::Display for Comparison {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Exists => f.write_str("present"),
            Self::Missing => f.write_str("absent"),
            Self::Equals(v) => write!(f, "= {v}"),
            Self::NotEquals(v) => write!(f, "≠ {v}"),
            Self::GreaterThan(b) => write!(f, "> {b}"),
            Self::AtLeast(b) => write!(f, "≥ {b}"),
            Self::LessThan(b) => write!(f, "< {b}"),
            Self::AtMost(b) => write!(f, "≤ {b}"),
            Self::Contains(part) => write!(f, "contains {part:?}"),
            Self::In(options) => {
                let shown: Vec<String> = options.iter().map(Value::to_string).collect();
                write!(f, "in [{}]", shown.join(", "))
            }
        }
    }
}

/// One condition on an event's properties.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PropertyCondition {
    /// The property: a top-level key, or a dotted path into nested objects (`item.sku`).
    pub property: String,
    /// What its value must pass.
    #[serde(flatten)]
    pub test: Comparison,
}

/// Which events count: by name (any of them; any event when empty) and conditions on
/// their properties (all of them).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EventFilter {
    /// Event names, any of which counts; empty for every name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
    /// Conditions every counted event's properties meet.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<PropertyCondition>,
}

impl EventFilter {
    /// Events named `name`.
    pub fn named(name: &str) -> Self {
        Self {
            names: vec![name.to_owned()],
            conditions: Vec::new(),
        }
    }

    /// Adds a condition on a property.
    pub fn when(mut self, property: &str, test: Comparison) -> Self {
        self.conditions.push(PropertyCondition {
            property: property.to_owned(),
            test,
        });
        self
    }

    /// Whether `event` counts.
    pub fn matches(&self, event: &Event) -> bool {
        (self.names.is_empty() || self.names.contains(&event.name))
            && self
                .conditions
                .iter()
                .all(|c| c.test.holds(property(event, &c.property)))
    }

    pub(crate) fn validate(&self, path: &str) -> Result<(), RuleError> {
        for (n, name) in self.names.iter().enumerate() {
            if name.trim().is_empty() {
                return Err(RuleError::new(
                    &format!("{path}.names[{n}]"),
                    "an empty name",
                ));
            }
        }
        for (n, condition) in self.conditions.iter().enumerate() {
            let at = format!("{path}.conditions[{n}]");
            if condition.property.trim().is_empty() {
                return Err(RuleError::new(&at, "an empty property name"));
            }
            condition.test.validate(&at)?;
        }
        Ok(())
    }
}

/// The value of `path` (dotted) in `event`'s properties.
pub(crate) fn property<'a>(event: &'a Event, path: &str) -> Option<&'a Value> {
    let mut parts = path.split('.');
    let mut value = event.properties.get(parts.next()?)?;
    for part in parts {
        value = value.as_object()?.get(part)?;
    }
    Some(value)
}

/// How the selected events' values become one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "aggregate", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Aggregate {
    /// How many events.
    Count,
    /// The sum of a numeric property (0 when there is none).
    Sum {
        /// The property.
        property: String,
    },
    /// The least value of a numeric property.
    Min {
        /// The property.
        property: String,
    },
    /// The greatest value of a numeric property.
    Max {
        /// The property.
        property: String,
    },
    /// The mean of a numeric property.
    Average {
        /// The property.
        property: String,
    },
    /// The property's value in the earliest event that has it.
    First {
        /// The property.
        property: String,
    },
    /// The property's value in the latest event that has it.
    Last {
        /// The property.
        property: String,
    },
    /// The value the property takes most often (ties: the value that sorts first as
    /// JSON text).
    MostFrequent {
        /// The property.
        property: String,
    },
    /// Every distinct value the property takes, sorted as JSON text.
    Unique {
        /// The property.
        property: String,
    },
    /// How many distinct values the property takes.
    UniqueCount {
        /// The property.
        property: String,
    },
}

impl Aggregate {
    pub(super) fn property(&self) -> Option<&str> {
        match self {
            Self::Count => None,
            Self::Sum { property }
            | Self::Min { property }
            | Self::Max { property }
            | Self::Average { property }
            | Self::First { property }
            | Self::Last { property }
            | Self::MostFrequent { property }
            | Self::Unique { property }
            | Self::UniqueCount { property } => Some(property),
        }
    }
}

/// A trait computed from the customer's events.
///
/// ```
/// use chrono::{Duration, Utc};
/// use oneview::audience::{Aggregate, ComputedTrait, EventFilter};
/// use oneview::{Channel, Event, IdentifierKind};
/// use serde_json::json;
///
/// let spent_90_days = ComputedTrait::new(
///     "spent_90_days",
///     EventFilter::named("Order Completed"),
///     Aggregate::Sum { property: "revenue".into() },
/// )
/// .within_days(90);
/// let order = |days_ago: i64, revenue: f64| {
///     Event::builder("shop", Channel::Web, "Order Completed")
///         .identifier(IdentifierKind::Email, "ana@example.com")
///         .occurred_at(Utc::now() - Duration::days(days_ago))
///         .properties(json!({ "revenue": revenue }))
///         .build()
///         .unwrap()
/// };
/// let events = [order(10, 40.0), order(30, 2.5), order(200, 999.0)];
/// assert_eq!(spent_90_days.compute(&events, Utc::now()), Some(json!(42.5)));
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ComputedTrait {
    /// The trait's name on the profile.
    pub name: String,
    /// Which events count.
    #[serde(default)]
    pub events: EventFilter,
    /// Only events in the last this many days before `as_of`; `None` for all time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within_days: Option<u32>,
    /// How their values become one.
    #[serde(flatten)]
    pub aggregate: Aggregate,
}

impl ComputedTrait {
    /// A trait `name` aggregating the events `events` select, over all time.
    pub fn new(name: &str, events: EventFilter, aggregate: Aggregate) -> Self {
        Self {
            name: name.to_owned(),
            events,
            within_days: None,
            aggregate,
        }
    }

    /// Counts only the last `days` days before the time it is computed for.
    pub fn within_days(mut self, days: u32) -> Self {
        self.within_days = Some(days);
        self
    }

    /// Checks the definition; errors name the path of the bad part.
    pub fn validate(&self) -> Result<(), RuleError> {
        if self.name.trim().is_empty() {
            return Err(RuleError::new("computed", "a computed trait needs a name"));
        }
        let path = || format!("computed[{}]", self.name);
        if self.within_days == Some(0) {
            return Err(
                RuleError::new(".within_days", "a window of 0 days holds nothing").within(&path()),
            );
        }
        if self
            .aggregate
            .property()
            .is_some_and(|p| p.trim().is_empty())
        {
            return Err(RuleError::new(".property", "an empty property name").within(&path()));
        }
        self.events
            .validate(".events")
            .map_err(|e| e.within(&path()))
    }

    /// Whether `event` falls in the window that ends at `as_of`.
    pub fn in_window(&self, event: &Event, as_of: DateTime<Utc>) -> bool {
        event.occurred_at <= as_of
            && self
                .within_days
                .is_none_or(|days| event.occurred_at > as_of - Duration::days(i64::from(days)))
    }

    /// The value over `events` (any order) as of `as_of`; `None` when there is none (no
    /// event with the property, for every aggregate but count and sum).
    pub fn compute(&self, events: &[Event], as_of: DateTime<Utc>) -> Option<Value> {
        let mut selected: Vec<&Event> = events
            .iter()
            .filter(|e| self.in_window(e, as_of) && self.events.matches(e))
            .collect();
        selected.sort_by_key(|e| (e.occurred_at, e.id));
        let Some(name) = self.aggregate.property() else {
            return Some(Value::from(selected.len() as u64));
        };
        let values: Vec<&Value> = selected
            .iter()
            .filter_map(|e| property(e, name))
            .filter(|v| !v.is_null())
            .collect();
        let numbers: Vec<f64> = values.iter().filter_map(|v| v.as_f64()).collect();
        let number = |n: f64| serde_json::Number::from_f64(n).map(Value::Number);
        match &self.aggregate {
            Aggregate::Count => unreachable!("handled above"),
            Aggregate::Sum { .. } => number(numbers.iter().sum()),
            Aggregate::Min { .. } => numbers.iter().copied().reduce(f64::min).and_then(number),
            Aggregate::Max { .. } => numbers.iter().copied().reduce(f64::max).and_then(number),
            Aggregate::Average { .. } => (!numbers.is_empty())
                .then(|| numbers.iter().sum::<f64>() / numbers.len() as f64)
                .and_then(number),
            Aggregate::First { .. } => values.first().map(|v| (*v).clone()),
            Aggregate::Last { .. } => values.last().map(|v| (*v).clone()),
            Aggregate::MostFrequent { .. } => {
                let mut counts: BTreeMap<String, (usize, &Value)> = BTreeMap::new();
                for value in &values {
                    counts.entry(value.to_string()).or_insert((0, value)).0 += 1;
                }
                let most = counts.values().map(|(n, _)| *n).max()?;
                counts
                    .into_values()
                    .find(|(n, _)| *n == most)
                    .map(|(_, v)| v.clone())
            }
            Aggregate::Unique { .. } | Aggregate::UniqueCount { .. } => {
                let distinct: BTreeMap<String, &Value> =
                    values.iter().map(|v| (v.to_string(), *v)).collect();
                Some(match self.aggregate {
                    Aggregate::Unique { .. } => {
                        Value::Array(distinct.into_values().cloned().collect())
                    }
                    _ => Value::from(distinct.len() as u64),
                })
            }
        }
    }
}

/// A computed trait's value on one profile, with where it came from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ComputedValue {
    /// The value.
    pub value: Value,
    /// The definition's name.
    pub definition: String,
    /// The time it was computed for.
    pub as_of: DateTime<Utc>,
}
