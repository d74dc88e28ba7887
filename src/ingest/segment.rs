//! Segment-spec messages: `identify`, `track`, `page`, `screen`, `group` and `alias`,
//! one message per JSON object or many in a `{"batch": [...]}` envelope.
//!
//! What a message becomes:
//!
//! - **Identifiers**: `userId` (a user id), `anonymousId` and an alias's `previousId`
//!   (anonymous ids: the id the person was known by before), and `traits.email`,
//!   `traits.phone`, `context.traits.email`, `context.traits.phone`. Ids may be strings or
//!   numbers. An email or phone number that cannot be normalised (a national number with
//!   no calling code, say) is kept in the traits but is not an identifier.
//! - **Idempotency**: `messageId` (required); the same message delivered twice is one
//!   event.
//! - **Time**: `timestamp`, else `originalTimestamp`, else `sentAt`, else the time of
//!   receipt.
//! - **Name**: a `track`'s `event`; the message type for the others.
//! - **Channel**: `page` is web, `screen` is mobile; otherwise `context.channel` when given
//!   (`browser` is web), else `server`.
//! - **Traits**: an `identify`'s `traits` are set on the profile.
//! - **Properties**: `properties` (for `group`: `groupId` and the group's `traits`).
//!
//! A malformed message is a [`SegmentError`] naming the field, with its position in the
//! batch; the other messages of the batch still parse.
//!
//! ```
//! use chrono::Utc;
//! use oneview::ingest::segment::{self, SegmentOptions};
//! use oneview::{Customers, MemoryStore};
//! use serde_json::json;
//!
//! let customers = Customers::new(MemoryStore::new());
//! let batch = json!({"batch": [
//!     {"type": "page", "messageId": "m1", "anonymousId": "a-1",
//!      "timestamp": "2026-05-01T10:00:00Z", "properties": {"path": "/pricing"}},
//!     {"type": "identify", "messageId": "m2", "anonymousId": "a-1", "userId": "u-1",
//!      "timestamp": "2026-05-01T10:05:00Z", "traits": {"email": "Ana@Example.com", "plan": "pro"}},
//!     {"type": "track", "messageId": "m3", "userId": "u-1"},
//! ]});
//! let parsed = segment::parse(&batch, &SegmentOptions::default(), Utc::now());
//! let err = parsed[2].as_ref().unwrap_err();
//! assert_eq!(err.to_string(), "batch[2].event: missing");
//! let records: Vec<_> = parsed.into_iter().filter_map(Result::ok).collect();
//! customers.ingest_batch(records)?;
//! let ana = customers.profile("email:ana@example.com".parse::<oneview::Identifier>()?)?.unwrap();
//! assert_eq!(ana.identifiers.len(), 3);
//! assert_eq!(ana.traits["plan"].value, json!("pro"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use thiserror::Error;

use super::Record;
use crate::model::{Channel, Event, Identifier, IdentifierKind, NormalizeOptions, ValidationError};

/// How messages are read.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SegmentOptions {
    /// The source name events are recorded under (and their ids derived from).
    pub source: String,
    /// How identifiers are normalised (a default calling code for phone numbers).
    pub normalize: NormalizeOptions,
}

impl Default for SegmentOptions {
    fn default() -> Self {
        Self {
            source: "segment".to_owned(),
            normalize: NormalizeOptions::default(),
        }
    }
}

impl SegmentOptions {
    /// These options with events recorded under `source`.
    pub fn with_source(mut self, source: &str) -> Self {
        self.source = source.to_owned();
        self
    }

    /// These options with identifiers normalised by `normalize`.
    pub fn with_normalize(mut self, normalize: NormalizeOptions) -> Self {
        self.normalize = normalize;
        self
    }
}

/// Why a message could not be read. `field` is a path into the input, such as
/// `batch[3].traits`.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SegmentError {
    /// The input is not a JSON object.
    #[error("{field}: expected a JSON object, found {found}")]
    NotAnObject {
        /// Where.
        field: String,
        /// The JSON type found.
        found: &'static str,
    },
    /// A required field is absent or null.
    #[error("{field}: missing")]
    Missing {
        /// Which.
        field: String,
    },
    /// A field has the wrong JSON type.
    #[error("{field}: expected {expected}, found {found}")]
    WrongType {
        /// Which.
        field: String,
        /// What it should be.
        expected: &'static str,
        /// The JSON type found.
        found: &'static str,
    },
    /// A time field is not an RFC 3339 timestamp.
    #[error("{field}: {value:?} is not an RFC 3339 timestamp")]
    BadTimestamp {
        /// Which.
        field: String,
        /// The text found.
        value: String,
    },
    /// The message type is not one of the six.
    #[error("{field}: unknown message type {value:?}")]
    UnknownType {
        /// Where.
        field: String,
        /// The type found.
        value: String,
    },
    /// The message reads, but the event it makes is invalid (a user id of 300 bytes).
    #[error("{field}: {source}")]
    Invalid {
        /// The message.
        field: String,
        /// What is wrong.
        source: ValidationError,
    },
}

/// Reads one message, or every message of a `{"batch": [...]}` envelope, in order.
pub fn parse(
    value: &Value,
    options: &SegmentOptions,
    received_at: DateTime<Utc>,
) -> Vec<Result<Record, SegmentError>> {
    match value.get("batch") {
        Some(Value::Array(messages)) => messages
            .iter()
            .enumerate()
            .map(|(i, message)| read(message, &format!("batch[{i}]."), options, received_at))
            .collect(),
        Some(other) => vec![Err(SegmentError::WrongType {
            field: "batch".to_owned(),
            expected: "an array",
            found: json_type(other),
        })],
        None => vec![parse_message(value, options, received_at)],
    }
}

/// Reads one message.
pub fn parse_message(
    value: &Value,
    options: &SegmentOptions,
    received_at: DateTime<Utc>,
) -> Result<Record, SegmentError> {
    read(value, "", options, received_at)
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Field access that names the field in its errors.
struct Fields<'a> {
    object: &'a Map<String, Value>,
    prefix: &'a str,
}

impl<'a> Fields<'a> {
    fn path(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    fn get(&self, name: &str) -> Option<&'a Value> {
        self.object.get(name).filter(|v| !v.is_null())
    }

    fn string(&self, name: &str) -> Result<Option<&'a str>, SegmentError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(text)) => Ok(Some(text)),
            Some(other) => Err(SegmentError::WrongType {
                field: self.path(name),
                expected: "a string",
                found: json_type(other),
            }),
        }
    }

    fn required(&self, name: &str) -> Result<&'a str, SegmentError> {
        self.string(name)?.ok_or_else(|| SegmentError::Missing {
            field: self.path(name),
        })
    }

    /// An id: a string, or a number read as its decimal text.
    fn id(&self, name: &str) -> Result<Option<String>, SegmentError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(text)) => Ok(Some(text.clone())),
            Some(Value::Number(number)) => Ok(Some(number.to_string())),
            Some(other) => Err(SegmentError::WrongType {
                field: self.path(name),
                expected: "a string or a number",
                found: json_type(other),
            }),
        }
    }

    fn object(&self, name: &str) -> Result<Option<&'a Map<String, Value>>, SegmentError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Object(object)) => Ok(Some(object)),
            Some(other) => Err(SegmentError::WrongType {
                field: self.path(name),
                expected: "an object",
                found: json_type(other),
            }),
        }
    }

    fn time(&self, name: &str) -> Result<Option<DateTime<Utc>>, SegmentError> {
        let Some(text) = self.string(name)? else {
            return Ok(None);
        };
        DateTime::parse_from_rfc3339(text)
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|_| SegmentError::BadTimestamp {
                field: self.path(name),
                value: text.to_owned(),
            })
    }
}

fn read(
    value: &Value,
    prefix: &str,
    options: &SegmentOptions,
    received_at: DateTime<Utc>,
) -> Result<Record, SegmentError> {
    let Value::Object(object) = value else {
        return Err(SegmentError::NotAnObject {
            field: if prefix.is_empty() {
                "message".to_owned()
            } else {
                prefix.trim_end_matches('.').to_owned()
            },
            found: json_type(value),
        });
    };
    let fields = Fields { object, prefix };
    let kind = fields.required("type")?;
    let message_id = fields.required("messageId")?;
    let occurred_at = match fields.time("timestamp")? {
        Some(at) => at,
        None => match fields.time("originalTimestamp")? {
            Some(at) => at,
            None => fields.time("sentAt")?.unwrap_or(received_at),
        },
    };
    let context_path = format!("{prefix}context.");
    let context = fields.object("context")?.map(|object| Fields {
        object,
        prefix: &context_path,
    });
    let traits_path = format!("{prefix}traits.");
    let traits = fields.object("traits")?;
    let context_traits_path = format!("{prefix}context.traits.");
    let context_traits = match &context {
        Some(context) => context.object("traits")?,
        None => None,
    };
    let (name, channel) = match kind {
        "track" => (fields.required("event")?.to_owned(), None),
        "page" => ("page".to_owned(), Some(Channel::Web)),
        "screen" => ("screen".to_owned(), Some(Channel::Mobile)),
        "identify" | "group" | "alias" => (kind.to_owned(), None),
        other => {
            return Err(SegmentError::UnknownType {
                field: fields.path("type"),
                value: other.to_owned(),
            });
        }
    };
    let channel = match (channel, &context) {
        (Some(channel), _) => channel,
        (None, Some(context)) => match context.string("channel")? {
            Some("browser") => Channel::Web,
            Some(named) => named.parse().unwrap_or(Channel::Web),
            None => Channel::Other("server".to_owned()),
        },
        (None, None) => Channel::Other("server".to_owned()),
    };
    let mut builder = Event::builder(&options.source, channel, &name)
        .message_id(message_id)
        .occurred_at(occurred_at)
        .received_at(received_at)
        .normalize_with(options.normalize.clone());
    if let Some(user) = fields.id("userId")? {
        builder = builder.identifier(IdentifierKind::UserId, &user);
    }
    if let Some(anonymous) = fields.id("anonymousId")? {
        builder = builder.identifier(IdentifierKind::AnonymousId, &anonymous);
    }
    if kind == "alias" {
        let previous = fields
            .id("previousId")?
            .ok_or_else(|| SegmentError::Missing {
                field: fields.path("previousId"),
            })?;
        builder = builder.identifier(IdentifierKind::AnonymousId, &previous);
    }
    for (object, path) in [
        (traits, &traits_path),
        (context_traits, &context_traits_path),
    ] {
        let Some(object) = object else { continue };
        let found = Fields {
            object,
            prefix: path,
        };
        for (field, kind) in [
            ("email", IdentifierKind::Email),
            ("phone", IdentifierKind::Phone),
        ] {
            if let Some(raw) = found.id(field)?
                && let Ok(identifier) = Identifier::with_options(kind, &raw, &options.normalize)
            {
                builder = builder.with_identifier(identifier);
            }
        }
    }
    let properties = match kind {
        "group" => {
            let mut properties = Map::new();
            if let Some(group) = fields.id("groupId")? {
                properties.insert("groupId".to_owned(), Value::String(group));
            }
            if let Some(traits) = traits {
                properties.insert("traits".to_owned(), Value::Object(traits.clone()));
            }
            properties
        }
        _ => {
            let mut properties = fields.object("properties")?.cloned().unwrap_or_default();
            if let Some(name) = fields.string("name")? {
                properties.insert("name".to_owned(), Value::String(name.to_owned()));
            }
            properties
        }
    };
    builder = builder.properties(Value::Object(properties));
    if kind == "identify"
        && let Some(traits) = traits
    {
        for (key, value) in traits {
            builder = builder.set_trait(key, value.clone());
        }
    }
    builder
        .build()
        .map(Record::Event)
        .map_err(|source| SegmentError::Invalid {
            field: if prefix.is_empty() {
                "message".to_owned()
            } else {
                prefix.trim_end_matches('.').to_owned()
            },
            source,
        })
}
