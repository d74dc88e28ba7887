//! Retention: how long what customers did and said is kept.
//!
//! A [`RetentionPolicy`] says, per event name or channel (or for every event) and for
//! interactions, how many days a record's content is kept. [`Customers::apply_retention`]
//! removes the content of every record older than that and reports how many it touched.
//!

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::model::{Channel, Event, Interaction};

/// How many days records are kept, by kind.
///
/// # What goes, what stays
/// - An expired **event** loses its `properties` and the trait changes it carried; it
///   keeps its id, name, channel, source, times, identifiers and consent decisions.
/// - An expired **interaction** loses its subject, body, outcome and properties; it keeps
///   its kind, channel, direction, thread, owner, status, times and identifiers, so
///   service-level figures over past conversations still add up.
///
/// The identifiers stay because they are the evidence that made the customer one
/// profile: removing them would split customers apart at the next rebuild. They are on
/// the profile anyway; [erasure](crate::Customers::erase) is what removes a person.
/// Consent decisions stay because they are the proof of what the customer allowed.
/// Trait values set by an expired event keep their value and provenance unchanged: the
/// provenance (who said it, when, in which event) stays true after the event's content
/// is gone, and the event it names is still there to look at; marking every operation
/// would rewrite stored traits to record nothing new.
///
/// When several event rules match one event, the shortest wins: each rule is a promise
/// not to keep those events longer.
///
/// ```
/// use oneview::Channel;
/// use oneview::privacy::RetentionPolicy;
///
/// let policy = RetentionPolicy::new()
///     .events(730)
///     .events_named("Page Viewed", 90)
///     .events_on(Channel::Chat, 365)
///     .interactions(1095);
/// assert!(policy.validate().is_ok());
/// assert!(RetentionPolicy::new().events(0).validate().is_err());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionPolicy {
    /// Rules for events.
    pub events: Vec<EventRetention>,
    /// Days interactions are kept (by their `occurred_at`); `None` keeps them.
    pub interactions: Option<u32>,
}

/// How long some events are kept.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRetention {
    /// Only events of this name; `None` for any name.
    pub name: Option<String>,
    /// Only events on this channel; `None` for any channel.
    pub channel: Option<Channel>,
    /// Days they are kept, from their `occurred_at`.
    pub days: u32,
}

/// Why a retention policy cannot be applied.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RetentionError {
    /// A rule keeps records for zero days: almost surely a mistake, and one that would
    /// strip every record at once.
    #[error("rule #{rule} keeps records for 0 days")]
    ZeroDays {
        /// The rule's position among the event rules; the interaction rule is last.
        rule: usize,
    },
    /// An event rule names an empty event name.
    #[error("rule #{rule} names an empty event name")]
    EmptyName {
        /// The rule's position among the event rules.
        rule: usize,
    },
}

impl RetentionPolicy {
    /// A policy that keeps everything.
    pub fn new() -> Self {
        Self::default()
    }

    /// Keeps every event `days` days.
    pub fn events(self, days: u32) -> Self {
        self.rule(None, None, days)
    }

    /// Keeps events named `name` `days` days.
    pub fn events_named(self, name: &str, days: u32) -> Self {
        self.rule(Some(name.to_owned()), None, days)
    }

    /// Keeps events on `channel` `days` days.
    pub fn events_on(self, channel: Channel, days: u32) -> Self {
        self.rule(None, Some(channel), days)
    }

    /// Keeps interactions `days` days.
    pub fn interactions(mut self, days: u32) -> Self {
        self.interactions = Some(days);
        self
    }

    fn rule(mut self, name: Option<String>, channel: Option<Channel>, days: u32) -> Self {
        self.events.push(EventRetention {
            name,
            channel,
            days,
        });
        self
    }

    /// Checks that every rule keeps records at least a day and names a name if any.
    pub fn validate(&self) -> Result<(), RetentionError> {
        for (rule, retention) in self.events.iter().enumerate() {
            if retention.days == 0 {
                return Err(RetentionError::ZeroDays { rule });
            }
            if retention
                .name
                .as_deref()
                .is_some_and(|n| n.trim().is_empty())
            {
                return Err(RetentionError::EmptyName { rule });
            }
        }
        if self.interactions == Some(0) {
            return Err(RetentionError::ZeroDays {
                rule: self.events.len(),
            });
        }
        Ok(())
    }

    /// Whether `event`'s content is past keeping at `now`.
    pub fn expires_event(&self, event: &Event, now: DateTime<Utc>) -> bool {
        self.events
            .iter()
            .filter(|r| r.name.as_ref().is_none_or(|n| *n == event.name))
            .filter(|r| r.channel.as_ref().is_none_or(|c| *c == event.channel))
            .map(|r| r.days)
            .min()
            .is_some_and(|days| event.occurred_at < now - Duration::days(i64::from(days)))
    }

    /// Whether `interaction`'s content is past keeping at `now`.
    pub fn expires_interaction(&self, interaction: &Interaction, now: DateTime<Utc>) -> bool {
        self.interactions
            .is_some_and(|days| interaction.occurred_at < now - Duration::days(i64::from(days)))
    }
}

/// `event` without its content, or `None` when it has none left to remove.
pub(crate) fn strip_event(event: &Event) -> Option<Event> {
    if event.properties.is_empty() && event.traits.is_empty() {
        return None;
    }
    let mut stripped = event.clone();
    stripped.properties.clear();
    stripped.traits.clear();
    Some(stripped)
}

/// `interaction` without its content, or `None` when it has none left to remove.
pub(crate) fn strip_interaction(interaction: &Interaction) -> Option<Interaction> {
    let bare = interaction.subject.is_none()
        && interaction.body.is_none()
        && interaction.outcome.is_none()
        && interaction.properties.is_empty();
    if bare {
        return None;
    }
    let mut stripped = interaction.clone();
    stripped.subject = None;
    stripped.body = None;
    stripped.outcome = None;
    stripped.properties.clear();
    Some(stripped)
}

/// What [`Customers::apply_retention`](crate::Customers::apply_retention) removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionReport {
    /// Events whose content was removed.
    pub events: u64,
    /// Interactions whose content was removed.
    pub interactions: u64,
}
