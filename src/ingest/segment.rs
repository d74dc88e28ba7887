//! Segment-spec messages: `identify`, `track`, `page`, `screen`, `group` and `alias`,
//! one message per JSON object or many in a `{"batch": [...]}` envelope — as the Segment
//! spec writes them and as real clients send them.
//!
//! What a message becomes:
//!
//! - **Type**: `type`. Clients that post single messages to `/v1/track`, `/v1/identify`, …
//!   leave it out, because the endpoint says it; then it is read from the fields the
//!   message has: `event` (track), `previousId` (alias), `groupId` (group), `traits`
//!   (identify), `name` (page; a `screen` must say so). [`parse_as`] takes the type from
//!   the caller instead, for an application that knows which endpoint it received on.
//! - **Identifiers**: `userId` (a user id), `anonymousId` and an alias's `previousId`
//!   (anonymous ids: the id the person was known by before), and `traits.email`,
//!   `traits.phone`, `context.traits.email`, `context.traits.phone`. Ids may be strings or
//!   numbers; an empty string is no id. An email or phone number that cannot be
//!   normalised (a national number with no calling code, say) is kept in the traits but
//!   is not an identifier. A message with none of these is refused
//!   ([`SegmentError::NoIdentity`]), as the Segment API refuses it.
//! - **Idempotency**: `messageId`. Many clients (the `segment` crate among them) leave it
//!   to the Segment API to fill in; without it, the id is derived from the message's
//!   content: its canonical JSON (keys sorted) without the delivery fields `sentAt`,
//!   `receivedAt` and `messageId`, and with its type. So the same message delivered twice
//!   is still one event, and replaying a file gives the same store. Two messages that
//!   differ in nothing but delivery time are one event.
//! - **Time**: `timestamp`, else `originalTimestamp`, else `sentAt`, else the `sentAt` of
//!   the batch envelope it came in, else the `received_at` the caller passes. Offsets are
//!   kept (`+02:00` is read as such), fractions of a second too. Only that last fallback
//!   depends on when the message is read, so a replay of a file that must give the same
//!   store every time passes a fixed `received_at` (the `replay` example uses the latest
//!   time the file states).
//! - **Batch context**: a batch envelope's `context` applies to each of its messages;
//!   a message's own context keys win.
//! - **Name**: a `track`'s `event`; the message type for the others.
//! - **Channel**: `page` is web, `screen` is mobile; otherwise `context.channel` when given
//!   (`browser` is web), else `server`.
//! - **Traits**: an `identify`'s `traits` are set on the profile.
//! - **Properties**: `properties` (for `group`: `groupId` and the group's `traits`).
//! - **Consent**: `context.consent.categoryPreferences` (Segment's consent object, which
//!   its clients put on every message): each category is a decision for every channel,
//!   `true` granted and `false` denied, made at the message's time. A category named like
//!   a built-in [`Purpose`] (`marketing`, `analytics`, `personalization`, `service`,
//!   any case) is that purpose, `Advertising` is marketing, and any other category is a
//!   purpose of its own by its lowercased name (`DataSharing` is `other:datasharing`).
//!   And a `track` named [`CONSENT_UPDATED`] (`Consent Updated`) states one decision in
//!   its properties: `purpose` (a [`Purpose`] as written: `marketing`, …, `other:NAME`;
//!   anything else is refused), `status` (`granted`, `denied` or `withdrawn`), and
//!   optionally `channel` and `wording` (the text or its version the customer saw).
//!
//! A malformed message is a [`SegmentError`] naming the field, with its position in the
//! batch; the other messages of the batch still parse. Refused: a message that is not an
//! object, an unknown `type`, a `track` without `event`, an `alias` without `previousId`,
//! ids that are neither strings nor numbers, times that are not RFC 3339, `traits`,
//! `context` or `properties` that are not objects (`null` is read as absent), consent
//! preferences that are not booleans, and a `Consent Updated` without a known purpose or
//! status.
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
use crate::model::{
    Channel, ConsentChoice, ConsentStatus, Event, Identifier, IdentifierKind, NormalizeOptions,
    Purpose, PurposeError, ValidationError,
};

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
    /// The message names nobody: no `userId`, no `anonymousId`, and no email or phone
    /// in its traits.
    #[error("{field}: no userId or anonymousId (and no email or phone in its traits)")]
    NoIdentity {
        /// The message.
        field: String,
    },
    /// A consent purpose that cannot be read (`Consent Updated` names an unknown one).
    #[error("{field}: {source}")]
    Purpose {
        /// Where.
        field: String,
        /// What is wrong with it.
        source: PurposeError,
    },
    /// A field holds a value outside the ones it accepts.
    #[error("{field}: {value:?} is not one of {expected}")]
    BadValue {
        /// Which.
        field: String,
        /// The value found.
        value: String,
        /// The values accepted.
        expected: &'static str,
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
        Some(Value::Array(messages)) => {
            let Value::Object(envelope) = value else {
                unreachable!("only an object has a batch field")
            };
            let envelope = Fields {
                object: envelope,
                prefix: "",
            };
            let shared = match envelope.object("context") {
                Ok(shared) => shared,
                Err(err) => return vec![Err(err)],
            };
            // A message with no time of its own was sent no later than its batch.
            let undated_at = match envelope.time("sentAt") {
                Ok(sent) => sent.unwrap_or(received_at),
                Err(err) => return vec![Err(err)],
            };
            messages
                .iter()
                .enumerate()
                .map(|(i, message)| {
                    let prefix = format!("batch[{i}].");
                    let reading = Reading {
                        prefix: &prefix,
                        kind: None,
                        options,
                        received_at,
                        undated_at,
                    };
                    match (shared, message) {
                        (Some(shared), Value::Object(object)) => {
                            read(&with_context(object, shared), &reading)
                        }
                        _ => read(message, &reading),
                    }
                })
                .collect()
        }
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
    read(value, &Reading::single(None, options, received_at))
}

/// Reads one message of type `kind` (`"track"`, `"identify"`, …), whatever its own `type`
/// field says or lacks: for messages posted to a type's own endpoint (`/v1/track`).
///
/// ```
/// use chrono::Utc;
/// use oneview::ingest::segment::{self, SegmentOptions};
/// use serde_json::json;
///
/// // What a client posts to /v1/screen: no type, no messageId.
/// let body = json!({"anonymousId": "ios-1", "name": "Home", "properties": {}});
/// let record = segment::parse_as("screen", &body, &SegmentOptions::default(), Utc::now())?;
/// let oneview::Record::Event(event) = record else { unreachable!() };
/// assert_eq!(event.name, "screen");
/// assert_eq!(event.channel, oneview::Channel::Mobile);
/// # Ok::<(), oneview::ingest::segment::SegmentError>(())
/// ```
pub fn parse_as(
    kind: &str,
    value: &Value,
    options: &SegmentOptions,
    received_at: DateTime<Utc>,
) -> Result<Record, SegmentError> {
    read(value, &Reading::single(Some(kind), options, received_at))
}

/// `message` with the keys of a batch's shared `context` it does not set itself.
fn with_context(message: &Map<String, Value>, shared: &Map<String, Value>) -> Value {
    let mut message = message.clone();
    let context = message
        .entry("context")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(context) = context {
        for (key, value) in shared {
            context.entry(key.clone()).or_insert_with(|| value.clone());
        }
    }
    Value::Object(message)
}

/// The type of a message that does not say, from the fields only that type has.
fn implied_type(object: &Map<String, Value>) -> Option<&'static str> {
    let has = |name: &str| object.get(name).is_some_and(|v| !v.is_null());
    if has("event") {
        Some("track")
    } else if has("previousId") {
        Some("alias")
    } else if has("groupId") {
        Some("group")
    } else if has("traits") {
        Some("identify")
    } else if has("name") || has("properties") {
        Some("page")
    } else {
        None
    }
}

/// The delivery fields left out of a message's content when its id is derived from it.
const DELIVERY_FIELDS: &[&str] = &["messageId", "sentAt", "receivedAt", "type"];

/// A message id derived from the message's content: stable across deliveries and key
/// order, different for any difference in what the message says.
fn content_id(object: &Map<String, Value>, kind: &str) -> String {
    let mut text = String::with_capacity(256);
    text.push_str(kind);
    text.push('\n');
    let content: Vec<(&String, &Value)> = object
        .iter()
        .filter(|(key, _)| !DELIVERY_FIELDS.contains(&key.as_str()))
        .collect();
    write_canonical_object(&mut text, content);
    format!(
        "content:{}",
        uuid::Uuid::new_v5(&CONTENT_NAMESPACE, text.as_bytes()).simple()
    )
}

/// Namespace for message ids derived from content.
const CONTENT_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x6f6e_6576_6965_7704_8000_0000_0000_0004);

fn write_canonical(out: &mut String, value: &Value) {
    match value {
        Value::Object(object) => write_canonical_object(out, object.iter().collect()),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(out, item);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

fn write_canonical_object(out: &mut String, mut entries: Vec<(&String, &Value)>) {
    entries.sort_by(|a, b| a.0.cmp(b.0));
    out.push('{');
    for (i, (key, value)) in entries.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&Value::String(key.clone()).to_string());
        out.push(':');
        write_canonical(out, value);
    }
    out.push('}');
}

/// The consent decisions a message carries: its `context.consent.categoryPreferences`,
/// and for a `Consent Updated` track, the one its properties state.
fn consent_choices(
    context: &Option<Fields<'_>>,
    name: &str,
    properties: &Map<String, Value>,
    prefix: &str,
) -> Result<Vec<ConsentChoice>, SegmentError> {
    let mut choices = Vec::new();
    let consent_path = format!("{prefix}context.consent.");
    let consent = match context {
        Some(context) => context.object("consent")?,
        None => None,
    };
    if let Some(object) = consent {
        let consent = Fields {
            object,
            prefix: &consent_path,
        };
        let categories_path = format!("{consent_path}categoryPreferences.");
        for (category, value) in consent.object("categoryPreferences")?.into_iter().flatten() {
            let field = format!("{categories_path}{category}");
            let status = match value {
                Value::Bool(true) => ConsentStatus::Granted,
                Value::Bool(false) => ConsentStatus::Denied,
                other => {
                    return Err(SegmentError::WrongType {
                        field,
                        expected: "a boolean",
                        found: json_type(other),
                    });
                }
            };
            let purpose = category_purpose(category)
                .map_err(|source| SegmentError::Purpose { field, source })?;
            choices.push(ConsentChoice::new(purpose, status));
        }
    }
    if name == CONSENT_UPDATED {
        let properties_path = format!("{prefix}properties.");
        let stated = Fields {
            object: properties,
            prefix: &properties_path,
        };
        let purpose: Purpose =
            stated
                .required("purpose")?
                .parse()
                .map_err(|source| SegmentError::Purpose {
                    field: stated.path("purpose"),
                    source,
                })?;
        let status = match stated.required("status")? {
            "granted" => ConsentStatus::Granted,
            "denied" => ConsentStatus::Denied,
            "withdrawn" => ConsentStatus::Withdrawn,
            other => {
                return Err(SegmentError::BadValue {
                    field: stated.path("status"),
                    value: other.to_owned(),
                    expected: "granted, denied, withdrawn",
                });
            }
        };
        let mut choice = ConsentChoice::new(purpose, status);
        if let Some(channel) = stated.string("channel")? {
            let channel: Channel = channel.parse().map_err(|err| SegmentError::Invalid {
                field: stated.path("channel"),
                source: ValidationError::Channel(err),
            })?;
            choice = choice.on(channel);
        }
        if let Some(wording) = stated.string("wording")? {
            choice = choice.wording(wording);
        }
        choices.push(choice);
    }
    Ok(choices)
}

/// The `track` event that states one consent decision in its properties.
pub const CONSENT_UPDATED: &str = "Consent Updated";

/// The purpose a consent category stands for: a built-in purpose by its name (and
/// `advertising` for marketing), any other category as a purpose of its own by its name.
fn category_purpose(category: &str) -> Result<Purpose, PurposeError> {
    let name = category.trim().to_lowercase();
    match name.as_str() {
        "advertising" => Ok(Purpose::Marketing),
        _ => name.parse().or_else(|_| Purpose::other(&name)),
    }
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

    /// An id: a string, or a number read as its decimal text; an empty string is none.
    fn id(&self, name: &str) -> Result<Option<String>, SegmentError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(text)) if text.trim().is_empty() => Ok(None),
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

/// How one message is read: where it sits, what its endpoint says it is, and the times
/// that stand in for the ones it does not carry.
struct Reading<'a> {
    prefix: &'a str,
    kind: Option<&'a str>,
    options: &'a SegmentOptions,
    received_at: DateTime<Utc>,
    undated_at: DateTime<Utc>,
}

impl<'a> Reading<'a> {
    fn single(
        kind: Option<&'a str>,
        options: &'a SegmentOptions,
        received_at: DateTime<Utc>,
    ) -> Self {
        Self {
            prefix: "",
            kind,
            options,
            received_at,
            undated_at: received_at,
        }
    }
}

fn read(value: &Value, reading: &Reading<'_>) -> Result<Record, SegmentError> {
    let Reading {
        prefix,
        kind,
        options,
        received_at,
        undated_at,
    } = *reading;
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
    let kind = match kind {
        Some(kind) => kind,
        None => match fields.string("type")? {
            Some(kind) => kind,
            None => implied_type(object).ok_or_else(|| SegmentError::Missing {
                field: fields.path("type"),
            })?,
        },
    };
    let message_id = match fields.id("messageId")? {
        Some(id) => id,
        None => content_id(object, kind),
    };
    let message_path = || {
        if prefix.is_empty() {
            "message".to_owned()
        } else {
            prefix.trim_end_matches('.').to_owned()
        }
    };
    let occurred_at = match fields.time("timestamp")? {
        Some(at) => at,
        None => match fields.time("originalTimestamp")? {
            Some(at) => at,
            None => fields.time("sentAt")?.unwrap_or(undated_at),
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
    let mut named = false;
    let mut builder = Event::builder(&options.source, channel, &name)
        .message_id(&message_id)
        .occurred_at(occurred_at)
        .received_at(received_at)
        .normalize_with(options.normalize.clone());
    if let Some(user) = fields.id("userId")? {
        builder = builder.identifier(IdentifierKind::UserId, &user);
        named = true;
    }
    if let Some(anonymous) = fields.id("anonymousId")? {
        builder = builder.identifier(IdentifierKind::AnonymousId, &anonymous);
        named = true;
    }
    if kind == "alias" {
        let previous = fields
            .id("previousId")?
            .ok_or_else(|| SegmentError::Missing {
                field: fields.path("previousId"),
            })?;
        builder = builder.identifier(IdentifierKind::AnonymousId, &previous);
        named = true;
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
                named = true;
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
    if !named {
        return Err(SegmentError::NoIdentity {
            field: message_path(),
        });
    }
    for choice in consent_choices(&context, &name, &properties, prefix)? {
        builder = builder.consent(choice);
    }
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
            field: message_path(),
            source,
        })
}
