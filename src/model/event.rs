//! Events: what the customer did, as reported by some source system.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::channel::Channel;
use super::consent::ConsentChoice;
use super::error::{ValidationError, json_type, required_name, storable_time};
use super::feedback::Feedback;
use super::identifier::{Identifier, IdentifierKind, NormalizeOptions};
use super::ids::EventId;
use super::traits::{MAX_TRAIT_KEY_BYTES, TraitOp, TraitUpdate};

/// One thing a customer did, as reported by a source system.
///
/// Events are immutable once stored. The same `message_id` from the same `source` is
/// one event however often it is delivered: its [`EventId`] is derived from the pair.
/// Build events with [`Event::builder`], which validates and normalises everything; an
/// event deserialized or assembled by hand is checked by [`Event::validate`] on ingest.
///
/// ```
/// use oneview::{Channel, Event, IdentifierKind};
/// use serde_json::json;
///
/// let event = Event::builder("shop", Channel::Web, "Order Completed")
///     .message_id("order-1001")
///     .identifier(IdentifierKind::Email, " Ana@Example.com")
///     .properties(json!({"revenue": 42.5}))
///     .set_trait("plan", json!("pro"))
///     .build()?;
/// assert_eq!(event.identifiers[0].to_string(), "email:ana@example.com");
///
/// let err = Event::builder("shop", Channel::Web, "Order Completed")
///     .properties(json!([1, 2]))
///     .build()
///     .unwrap_err();
/// assert_eq!(err.to_string(), "properties must be a JSON object, found array");
/// # Ok::<(), oneview::ValidationError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Derived from `source` and `message_id`.
    pub id: EventId,
    /// The source's own id for this message: the idempotency key. Generated when the
    /// source gives none, in which case re-deliveries cannot be recognised.
    pub message_id: String,
    /// What happened, such as `Order Completed` or `Page Viewed`.
    pub name: String,
    /// Where it happened.
    pub channel: Channel,
    /// The system that reported it.
    pub source: String,
    /// When it happened, by the source's clock. Everything time-ordered uses this.
    #[serde(deserialize_with = "super::time::deserialize")]
    pub occurred_at: DateTime<Utc>,
    /// When it reached this library.
    #[serde(deserialize_with = "super::time::deserialize")]
    pub received_at: DateTime<Utc>,
    /// Who did it, as far as the source knows.
    pub identifiers: Vec<Identifier>,
    /// Whatever else the source said about it.
    pub properties: Map<String, Value>,
    /// Changes to the customer's traits that this event reports.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub traits: Vec<TraitUpdate>,
    /// Consent decisions this event reports (see [`ConsentChoice`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub consent: Vec<ConsentChoice>,
}

impl Event {
    /// Starts an event named `name` from system `source` on `channel`.
    pub fn builder(source: &str, channel: Channel, name: &str) -> EventBuilder {
        EventBuilder {
            source: source.to_owned(),
            channel,
            name: name.to_owned(),
            message_id: None,
            occurred_at: None,
            received_at: None,
            identifiers: IdentifierInput::default(),
            properties: Value::Object(Map::new()),
            traits: Vec::new(),
            consent: Vec::new(),
        }
    }

    /// Checks what the builder guarantees, for events assembled or deserialized by hand.
    pub fn validate(&self) -> Result<(), ValidationError> {
        required_name("source", &self.source)?;
        required_name("message_id", &self.message_id)?;
        required_name("name", &self.name)?;
        storable_time("occurred_at", self.occurred_at)?;
        storable_time("received_at", self.received_at)?;
        let expected = EventId::derive(&self.source, &self.message_id);
        if expected != self.id {
            return Err(ValidationError::IdMismatch {
                expected: expected.to_string(),
                found: self.id.to_string(),
            });
        }
        validate_trait_updates(&self.traits)?;
        for choice in &self.consent {
            choice.validate()?;
        }
        // Consent must be someone's: with no identifier it would found a profile nobody
        // can be found by, and speak for nobody.
        if !self.consent.is_empty() && self.identifiers.is_empty() {
            return Err(ValidationError::Missing {
                field: "identifiers",
                required_by: "consent",
            });
        }
        Feedback::from_event(self)?;
        Ok(())
    }
}

/// Builds a validated [`Event`]; see [`Event::builder`].
#[derive(Clone, Debug)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct EventBuilder {
    source: String,
    channel: Channel,
    name: String,
    message_id: Option<String>,
    occurred_at: Option<DateTime<Utc>>,
    received_at: Option<DateTime<Utc>>,
    identifiers: IdentifierInput,
    properties: Value,
    traits: Vec<TraitUpdate>,
    consent: Vec<ConsentChoice>,
}

impl EventBuilder {
    /// The source's id for this message. Without one, a fresh id is generated and
    /// re-deliveries of the same message cannot be recognised.
    pub fn message_id(mut self, message_id: &str) -> Self {
        self.message_id = Some(message_id.to_owned());
        self
    }

    /// When it happened; defaults to when [`build`](Self::build) is called.
    pub fn occurred_at(mut self, at: DateTime<Utc>) -> Self {
        self.occurred_at = Some(at);
        self
    }

    /// When it was received; defaults to when [`build`](Self::build) is called.
    pub fn received_at(mut self, at: DateTime<Utc>) -> Self {
        self.received_at = Some(at);
        self
    }

    /// Adds a raw identifier, normalised when the event is built.
    pub fn identifier(mut self, kind: IdentifierKind, raw: &str) -> Self {
        self.identifiers.push_raw(kind, raw);
        self
    }

    /// Adds an identifier that is already normalised.
    pub fn with_identifier(mut self, identifier: Identifier) -> Self {
        self.identifiers.push(identifier);
        self
    }

    /// How raw identifiers are normalised (a default phone calling code, say).
    pub fn normalize_with(mut self, options: NormalizeOptions) -> Self {
        self.identifiers.options = options;
        self
    }

    /// The event's properties; must be a JSON object.
    pub fn properties(mut self, properties: Value) -> Self {
        self.properties = properties;
        self
    }

    /// Reports that trait `key` now has `value`.
    pub fn set_trait(mut self, key: &str, value: Value) -> Self {
        self.traits.push(trait_update(key, TraitOp::Set(value)));
        self
    }

    /// Reports `value` for trait `key` unless it already had one at this event's time.
    pub fn set_trait_once(mut self, key: &str, value: Value) -> Self {
        self.traits.push(trait_update(key, TraitOp::SetOnce(value)));
        self
    }

    /// Reports that trait `key` no longer has a value.
    pub fn unset_trait(mut self, key: &str) -> Self {
        self.traits.push(trait_update(key, TraitOp::Unset));
        self
    }

    /// Reports a consent decision the customer made at this event's time.
    pub fn consent(mut self, choice: ConsentChoice) -> Self {
        self.consent.push(choice);
        self
    }

    /// Validates and normalises everything, or says what is wrong.
    pub fn build(self) -> Result<Event, ValidationError> {
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
        let now = Utc::now();
        let message_id = self
            .message_id
            .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
        let event = Event {
            id: EventId::derive(&self.source, &message_id),
            message_id,
            name: self.name.trim().to_owned(),
            channel: self.channel,
            source: self.source,
            occurred_at: self.occurred_at.unwrap_or(now),
            received_at: self.received_at.unwrap_or(now),
            identifiers,
            properties,
            traits: self.traits,
            consent: self.consent,
        };
        event.validate()?;
        Ok(event)
    }
}

fn trait_update(key: &str, op: TraitOp) -> TraitUpdate {
    TraitUpdate {
        key: key.to_owned(),
        op,
    }
}

/// Checks trait keys: non-empty and at most [`MAX_TRAIT_KEY_BYTES`].
pub(crate) fn validate_trait_updates(updates: &[TraitUpdate]) -> Result<(), ValidationError> {
    for update in updates {
        if update.key.trim().is_empty() {
            return Err(ValidationError::Empty { field: "trait key" });
        }
        if update.key.len() > MAX_TRAIT_KEY_BYTES {
            return Err(ValidationError::TooLong {
                field: "trait key",
                len: update.key.len(),
                max: MAX_TRAIT_KEY_BYTES,
            });
        }
    }
    Ok(())
}

/// Identifiers given to a builder, raw or normalised, in the order given.
#[derive(Clone, Debug, Default)]
pub(crate) struct IdentifierInput {
    entries: Vec<Result<Identifier, (IdentifierKind, String)>>,
    pub(crate) options: NormalizeOptions,
}

impl IdentifierInput {
    pub(crate) fn push_raw(&mut self, kind: IdentifierKind, raw: &str) {
        self.entries.push(Err((kind, raw.to_owned())));
    }

    pub(crate) fn push(&mut self, identifier: Identifier) {
        self.entries.push(Ok(identifier));
    }

    /// Normalises the raw entries and drops repeats, keeping first positions; the first
    /// invalid entry fails the whole record, naming its position.
    pub(crate) fn build(self) -> Result<Vec<Identifier>, ValidationError> {
        let mut identifiers: Vec<Identifier> = Vec::with_capacity(self.entries.len());
        for (index, entry) in self.entries.into_iter().enumerate() {
            let identifier = match entry {
                Ok(identifier) => identifier,
                Err((kind, raw)) => Identifier::with_options(kind, &raw, &self.options)
                    .map_err(|source| ValidationError::Identifier { index, source })?,
            };
            if !identifiers.contains(&identifier) {
                identifiers.push(identifier);
            }
        }
        Ok(identifiers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::identifier::IdentifierProblem;
    use serde_json::json;

    fn builder() -> EventBuilder {
        Event::builder("web", Channel::Web, "Page Viewed")
    }

    #[test]
    fn same_message_from_same_source_has_same_id() {
        let a = builder().message_id("m1").build().unwrap();
        let b = builder().message_id("m1").build().unwrap();
        let other_source = Event::builder("app", Channel::Web, "Page Viewed")
            .message_id("m1")
            .build()
            .unwrap();
        assert_eq!(a.id, b.id);
        assert_ne!(a.id, other_source.id);
    }

    #[test]
    fn missing_message_id_is_generated_unique() {
        let a = builder().build().unwrap();
        let b = builder().build().unwrap();
        assert_ne!(a.message_id, b.message_id);
        assert_ne!(a.id, b.id);
    }

    #[test]
    fn bad_input_is_refused_naming_the_field() {
        let empty_name = Event::builder("web", Channel::Web, "  ")
            .build()
            .unwrap_err();
        assert_eq!(empty_name, ValidationError::Empty { field: "name" });

        let empty_source = Event::builder("", Channel::Web, "x").build().unwrap_err();
        assert_eq!(empty_source, ValidationError::Empty { field: "source" });

        let bad_id = builder()
            .identifier(IdentifierKind::Email, "a@b.c")
            .identifier(IdentifierKind::Email, "not-an-email")
            .build()
            .unwrap_err();
        match bad_id {
            ValidationError::Identifier { index, source } => {
                assert_eq!(index, 1);
                assert_eq!(source.value, "not-an-email");
                assert_eq!(source.problem, IdentifierProblem::AtSignCount(0));
            }
            other => panic!("unexpected {other:?}"),
        }

        let scalar = builder().properties(json!(3)).build().unwrap_err();
        assert_eq!(
            scalar,
            ValidationError::NotAnObject {
                field: "properties",
                found: "number"
            }
        );

        let ancient = builder()
            .occurred_at(chrono::DateTime::UNIX_EPOCH - chrono::Duration::days(366 * 400))
            .build()
            .unwrap_err();
        assert_eq!(
            ancient,
            ValidationError::TimeOutOfRange {
                field: "occurred_at"
            }
        );

        let empty_key = builder().set_trait(" ", json!(1)).build().unwrap_err();
        assert_eq!(empty_key, ValidationError::Empty { field: "trait key" });
    }

    #[test]
    fn repeated_identifiers_collapse_after_normalisation() {
        let event = builder()
            .identifier(IdentifierKind::Email, "Ana@x.com")
            .identifier(IdentifierKind::Email, " ana@X.COM ")
            .build()
            .unwrap();
        assert_eq!(event.identifiers.len(), 1);
    }

    #[test]
    fn tampered_id_fails_validation() {
        let mut event = builder().message_id("m1").build().unwrap();
        event.message_id = "m2".into();
        assert!(matches!(
            event.validate(),
            Err(ValidationError::IdMismatch { .. })
        ));
    }

    #[test]
    fn events_round_trip_through_json() {
        let event = builder()
            .identifier(IdentifierKind::UserId, "u1")
            .properties(json!({"path": "/"}))
            .set_trait_once("first_page", json!("/"))
            .build()
            .unwrap();
        let json = serde_json::to_string(&event).unwrap();
        assert_eq!(serde_json::from_str::<Event>(&json).unwrap(), event);
    }
}
