//! Interactions: what the company and the customer said to each other.

use std::cmp::Ordering;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::channel::Channel;
use super::error::{ValidationError, json_type, required_name, storable_time};
use super::event::IdentifierInput;
use super::feedback::Feedback;
use super::identifier::{Identifier, IdentifierKind, NormalizeOptions};
use super::ids::InteractionId;

/// Who started a contact.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// The customer reached the company.
    Inbound,
    /// The company reached the customer.
    Outbound,
}

/// Where a contact stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InteractionStatus {
    /// Waiting for the company.
    Open,
    /// Waiting for the customer or a third party.
    Pending,
    /// Done.
    Closed,
}

/// What sort of contact it is.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum InteractionKind {
    /// A written message: an email, a chat or text message, a social post.
    Message,
    /// A voice or video call.
    Call,
    /// A meeting or a store visit.
    Meeting,
    /// A support case.
    Ticket,
    /// Feedback from the customer: a complaint, a review, a suggestion, praise.
    Feedback,
    /// Anything else, by name.
    Other(String),
}

/// One contact between the company and a customer, on any channel.
///
/// A contact changes over its life (opened, answered, closed), so unlike an event it can
/// be delivered again with the same `source` and `key` and a later `updated_at`: the
/// latest version is kept ([`Interaction::supersedes`]). Contacts that belong to one
/// conversation share a `thread`.
///
/// ```
/// use oneview::{Channel, Direction, IdentifierKind, Interaction, InteractionKind, InteractionStatus};
///
/// let call = Interaction::builder("support-desk", Channel::Phone, Direction::Inbound)
///     .key("CALL-7")
///     .kind(InteractionKind::Call)
///     .identifier(IdentifierKind::Phone, "+1 415 555 2671")
///     .owner("agent.kim")
///     .subject("Delivery late")
///     .status(InteractionStatus::Closed)
///     .outcome("refund issued")
///     .build()?;
/// assert!(call.closed_at.is_some(), "a closed contact records when it closed");
/// # Ok::<(), oneview::ValidationError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Interaction {
    /// Derived from `source` and `key`.
    pub id: InteractionId,
    /// The source's own id for the contact (a ticket number, a call id).
    pub key: String,
    /// The system that reported it.
    pub source: String,
    /// What sort of contact it is.
    pub kind: InteractionKind,
    /// Where it took place.
    pub channel: Channel,
    /// Who started it.
    pub direction: Direction,
    /// The conversation it belongs to, shared by the contacts of one conversation.
    pub thread: Option<String>,
    /// The contact this one answers (an email's `In-Reply-To`, a comment on a ticket),
    /// which must be in the same `thread`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_reply_to: Option<InteractionId>,
    /// The agent or team that owns it.
    pub owner: Option<String>,
    /// Its subject line or topic.
    pub subject: Option<String>,
    /// Its text, or a summary of it.
    pub body: Option<String>,
    /// Where it stands.
    pub status: InteractionStatus,
    /// How it ended (`resolved`, `sale`, `no answer`, …).
    pub outcome: Option<String>,
    /// When it began.
    pub occurred_at: DateTime<Utc>,
    /// When this version of it was written; the latest version wins.
    pub updated_at: DateTime<Utc>,
    /// When it was closed, if it is.
    pub closed_at: Option<DateTime<Utc>>,
    /// When a call was picked up (a person, not a queue, answered it); `None` for a call
    /// nobody answered, and for contacts that are not calls. It stops the
    /// [call-answer](crate::conversation::sla::Metric::CallAnswer) clock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answered_at: Option<DateTime<Utc>>,
    /// Who the customer is, as far as the source knows.
    pub identifiers: Vec<Identifier>,
    /// Whatever else the source said about it.
    pub properties: Map<String, Value>,
}

impl Interaction {
    /// Starts an interaction reported by `source` on `channel`.
    pub fn builder(source: &str, channel: Channel, direction: Direction) -> InteractionBuilder {
        InteractionBuilder {
            source: source.to_owned(),
            key: None,
            kind: InteractionKind::Message,
            channel,
            direction,
            thread: None,
            reply_to: None,
            owner: None,
            subject: None,
            body: None,
            status: InteractionStatus::Open,
            outcome: None,
            occurred_at: None,
            updated_at: None,
            closed_at: None,
            answered_at: None,
            identifiers: IdentifierInput::default(),
            properties: Value::Object(Map::new()),
        }
    }

    /// Checks what the builder guarantees, for interactions assembled or deserialized by hand.
    pub fn validate(&self) -> Result<(), ValidationError> {
        required_name("source", &self.source)?;
        required_name("key", &self.key)?;
        let expected = InteractionId::derive(&self.source, &self.key);
        if expected != self.id {
            return Err(ValidationError::IdMismatch {
                expected: expected.to_string(),
                found: self.id.to_string(),
            });
        }
        storable_time("occurred_at", self.occurred_at)?;
        storable_time("updated_at", self.updated_at)?;
        if let Some(closed) = self.closed_at {
            storable_time("closed_at", closed)?;
        }
        if let Some(answered) = self.answered_at {
            storable_time("answered_at", answered)?;
            if answered < self.occurred_at {
                return Err(ValidationError::TimeOrder {
                    field: "answered_at",
                    earlier_than: "occurred_at",
                });
            }
        }
        if self.in_reply_to.is_some() && self.thread.is_none() {
            return Err(ValidationError::Missing {
                field: "thread",
                required_by: "in_reply_to",
            });
        }
        for (field, value) in [("thread", &self.thread), ("owner", &self.owner)] {
            if let Some(value) = value {
                required_name(field, value)?;
            }
        }
        if self.updated_at < self.occurred_at {
            return Err(ValidationError::TimeOrder {
                field: "updated_at",
                earlier_than: "occurred_at",
            });
        }
        if self
            .closed_at
            .is_some_and(|closed| closed < self.occurred_at)
        {
            return Err(ValidationError::TimeOrder {
                field: "closed_at",
                earlier_than: "occurred_at",
            });
        }
        Feedback::from_interaction(self)?;
        Ok(())
    }

    /// Whether this version should replace `stored`, another version of the same contact:
    /// a later `updated_at` wins, and exact ties resolve the same way in any arrival order.
    pub fn supersedes(&self, stored: &Interaction) -> bool {
        match self.updated_at.cmp(&stored.updated_at) {
            Ordering::Greater => true,
            Ordering::Less => false,
            Ordering::Equal => {
                let text = |i: &Interaction| serde_json::to_string(i).unwrap_or_default();
                text(self) > text(stored)
            }
        }
    }
}

/// Builds a validated [`Interaction`]; see [`Interaction::builder`].
#[derive(Clone, Debug)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct InteractionBuilder {
    source: String,
    key: Option<String>,
    kind: InteractionKind,
    channel: Channel,
    direction: Direction,
    thread: Option<String>,
    /// The contact answered, and its thread.
    reply_to: Option<(InteractionId, Option<String>)>,
    owner: Option<String>,
    subject: Option<String>,
    body: Option<String>,
    status: InteractionStatus,
    outcome: Option<String>,
    occurred_at: Option<DateTime<Utc>>,
    updated_at: Option<DateTime<Utc>>,
    closed_at: Option<DateTime<Utc>>,
    answered_at: Option<DateTime<Utc>>,
    identifiers: IdentifierInput,
    properties: Value,
}

impl InteractionBuilder {
    /// The source's own id for the contact. Without one, a fresh key is generated and later
    /// updates from the source cannot find this contact.
    pub fn key(mut self, key: &str) -> Self {
        self.key = Some(key.to_owned());
        self
    }

    /// What sort of contact it is; defaults to [`InteractionKind::Message`].
    pub fn kind(mut self, kind: InteractionKind) -> Self {
        self.kind = kind;
        self
    }

    /// The conversation it belongs to.
    pub fn thread(mut self, thread: &str) -> Self {
        self.thread = Some(thread.to_owned());
        self
    }

    /// Marks it as the answer to `contact`, and puts it in the same thread. Building
    /// fails if `contact` has no thread (nothing would tie the answer to what it answers)
    /// or if [`thread`](Self::thread) names another one.
    ///
    /// ```
    /// use oneview::{Channel, Direction, Interaction, ValidationError};
    ///
    /// let asked = Interaction::builder("desk", Channel::Email, Direction::Inbound)
    ///     .key("m-1")
    ///     .thread("case-4")
    ///     .build()?;
    /// let answer = Interaction::builder("desk", Channel::Email, Direction::Outbound)
    ///     .key("m-2")
    ///     .in_reply_to(&asked)
    ///     .build()?;
    /// assert_eq!(answer.thread.as_deref(), Some("case-4"));
    ///
    /// let lone = Interaction::builder("desk", Channel::Email, Direction::Inbound)
    ///     .key("m-3")
    ///     .build()?;
    /// let err = Interaction::builder("desk", Channel::Email, Direction::Outbound)
    ///     .key("m-4")
    ///     .in_reply_to(&lone)
    ///     .build()
    ///     .unwrap_err();
    /// assert_eq!(err, ValidationError::Missing { field: "thread", required_by: "in_reply_to" });
    /// # Ok::<(), ValidationError>(())
    /// ```
    pub fn in_reply_to(mut self, contact: &Interaction) -> Self {
        self.reply_to = Some((contact.id, contact.thread.clone()));
        self
    }

    /// When a call was picked up.
    pub fn answered_at(mut self, at: DateTime<Utc>) -> Self {
        self.answered_at = Some(at);
        self
    }

    /// The agent or team that owns it.
    pub fn owner(mut self, owner: &str) -> Self {
        self.owner = Some(owner.to_owned());
        self
    }

    /// Its subject line or topic.
    pub fn subject(mut self, subject: &str) -> Self {
        self.subject = Some(subject.to_owned());
        self
    }

    /// Its text or a summary.
    pub fn body(mut self, body: &str) -> Self {
        self.body = Some(body.to_owned());
        self
    }

    /// Where it stands; defaults to [`InteractionStatus::Open`].
    pub fn status(mut self, status: InteractionStatus) -> Self {
        self.status = status;
        self
    }

    /// How it ended.
    pub fn outcome(mut self, outcome: &str) -> Self {
        self.outcome = Some(outcome.to_owned());
        self
    }

    /// When it began; defaults to when [`build`](Self::build) is called.
    pub fn occurred_at(mut self, at: DateTime<Utc>) -> Self {
        self.occurred_at = Some(at);
        self
    }

    /// When this version was written; defaults to `occurred_at`.
    pub fn updated_at(mut self, at: DateTime<Utc>) -> Self {
        self.updated_at = Some(at);
        self
    }

    /// When it was closed; defaults to `updated_at` for a closed contact.
    pub fn closed_at(mut self, at: DateTime<Utc>) -> Self {
        self.closed_at = Some(at);
        self
    }

    /// Adds a raw identifier of the customer, normalised when the interaction is built.
    pub fn identifier(mut self, kind: IdentifierKind, raw: &str) -> Self {
        self.identifiers.push_raw(kind, raw);
        self
    }

    /// Adds an identifier that is already normalised.
    pub fn with_identifier(mut self, identifier: Identifier) -> Self {
        self.identifiers.push(identifier);
        self
    }

    /// How raw identifiers are normalised.
    pub fn normalize_with(mut self, options: NormalizeOptions) -> Self {
        self.identifiers.options = options;
        self
    }

    /// Its properties; must be a JSON object.
    pub fn properties(mut self, properties: Value) -> Self {
        self.properties = properties;
        self
    }

    /// Validates and normalises everything, or says what is wrong.
    pub fn build(self) -> Result<Interaction, ValidationError> {
        let properties = match self.properties {
            Value::Object(map) => map,
            other => {
                return Err(ValidationError::NotAnObject {
                    field: "properties",
                    found: json_type(&other),
                });
            }
        };
        let identifiers = self.identifiers.build()?;
        let occurred_at = self.occurred_at.unwrap_or_else(Utc::now);
        let updated_at = self.updated_at.unwrap_or(occurred_at);
        let closed_at = match self.status {
            InteractionStatus::Closed => Some(self.closed_at.unwrap_or(updated_at)),
            _ => self.closed_at,
        };
        let key = self.key.unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
        let (in_reply_to, thread) = match self.reply_to {
            None => (None, self.thread),
            Some((answered, their_thread)) => match (self.thread, their_thread) {
                (Some(mine), Some(theirs)) if mine != theirs => {
                    return Err(ValidationError::Mismatch {
                        field: "thread",
                        with: "in_reply_to",
                    });
                }
                (mine, theirs) => (Some(answered), mine.or(theirs)),
            },
        };
        let interaction = Interaction {
            id: InteractionId::derive(&self.source, &key),
            key,
            source: self.source,
            kind: self.kind,
            channel: self.channel,
            direction: self.direction,
            thread,
            in_reply_to,
            owner: self.owner,
            subject: self.subject,
            body: self.body,
            status: self.status,
            outcome: self.outcome,
            occurred_at,
            updated_at,
            closed_at,
            answered_at: self.answered_at,
            identifiers,
            properties,
        };
        interaction.validate()?;
        Ok(interaction)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    fn at(hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, hour, 0, 0).unwrap()
    }

    fn chat() -> InteractionBuilder {
        Interaction::builder("desk", Channel::Chat, Direction::Inbound)
            .key("T-1")
            .occurred_at(at(9))
    }

    #[test]
    fn later_version_supersedes_in_either_arrival_order() {
        let open = chat().build().unwrap();
        let closed = chat()
            .status(InteractionStatus::Closed)
            .updated_at(at(10))
            .build()
            .unwrap();
        assert_eq!(open.id, closed.id);
        assert!(closed.supersedes(&open));
        assert!(!open.supersedes(&closed));
        assert_eq!(closed.closed_at, Some(at(10)));
    }

    #[test]
    fn exact_ties_pick_one_version_deterministically() {
        let a = chat().outcome("a").build().unwrap();
        let b = chat().outcome("b").build().unwrap();
        assert_ne!(a.supersedes(&b), b.supersedes(&a));
    }

    #[test]
    fn times_out_of_order_are_refused() {
        let err = chat()
            .updated_at(at(9) - Duration::minutes(1))
            .build()
            .unwrap_err();
        assert_eq!(
            err,
            ValidationError::TimeOrder {
                field: "updated_at",
                earlier_than: "occurred_at"
            }
        );
    }

    #[test]
    fn blank_owner_is_refused() {
        let err = chat().owner(" ").build().unwrap_err();
        assert_eq!(err, ValidationError::Empty { field: "owner" });
    }
}
