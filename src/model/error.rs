//! The error for a record that is not fit to be stored.

use thiserror::Error;

use super::channel::ChannelError;
use super::feedback::FeedbackError;
use super::identifier::IdentifierError;

/// Why an event or interaction was refused before anything was stored.
///
/// Every variant names the field at fault, and for identifiers also their position.
#[derive(Clone, Debug, PartialEq, Error)]
#[non_exhaustive]
pub enum ValidationError {
    /// One of the record's identifiers is invalid.
    #[error("identifier #{index}: {source}")]
    Identifier {
        /// Its position in the order the identifiers were given, from 0.
        index: usize,
        /// What is wrong with it.
        source: IdentifierError,
    },
    /// The channel name is invalid.
    #[error(transparent)]
    Channel(#[from] ChannelError),
    /// A required text field is empty or white space.
    #[error("{field} is empty")]
    Empty {
        /// The field.
        field: &'static str,
    },
    /// A text field is longer than allowed.
    #[error("{field} is {len} bytes long, more than the {max} allowed")]
    TooLong {
        /// The field.
        field: &'static str,
        /// Its length in bytes.
        len: usize,
        /// The most allowed.
        max: usize,
    },
    /// A field that must hold a JSON object holds something else.
    #[error("{field} must be a JSON object, found {found}")]
    NotAnObject {
        /// The field.
        field: &'static str,
        /// The JSON type found instead (`array`, `string`, …).
        found: &'static str,
    },
    /// The record's id is not the one derived from its source and key, so it could not be
    /// deduplicated against other deliveries of the same record.
    #[error("id {found} does not match the id {expected} derived from its source and key")]
    IdMismatch {
        /// The derived id.
        expected: String,
        /// The id the record carries.
        found: String,
    },
    /// A time outside the years 1678 to 2261, which storage keeps as nanoseconds.
    #[error("{field} is outside the supported years 1678 to 2261")]
    TimeOutOfRange {
        /// The field.
        field: &'static str,
    },
    /// The feedback the record carries is malformed (see [`Feedback`](super::Feedback)).
    #[error("feedback: {0}")]
    Feedback(#[from] FeedbackError),
    /// A time field is earlier than the one it follows (an interaction updated before it
    /// began, say).
    #[error("{field} is earlier than {earlier_than}")]
    TimeOrder {
        /// The field that is too early.
        field: &'static str,
        /// The field it should not precede.
        earlier_than: &'static str,
    },
    /// A field is absent that another field needs (a reply with no thread, say).
    #[error("{field} is missing, and {required_by} needs it")]
    Missing {
        /// The absent field.
        field: &'static str,
        /// The field that needs it.
        required_by: &'static str,
    },
    /// Two fields disagree (a reply in another thread than the contact it answers).
    #[error("{field} disagrees with {with}")]
    Mismatch {
        /// The field.
        field: &'static str,
        /// The field it disagrees with.
        with: &'static str,
    },
}

/// The longest text accepted in names, sources, keys and similar short fields, in bytes.
pub const MAX_NAME_BYTES: usize = 256;

/// Checks a required short text field: trimmed, non-empty, at most [`MAX_NAME_BYTES`].
pub(crate) fn required_name(field: &'static str, value: &str) -> Result<(), ValidationError> {
    if value.trim().is_empty() {
        return Err(ValidationError::Empty { field });
    }
    if value.len() > MAX_NAME_BYTES {
        return Err(ValidationError::TooLong {
            field,
            len: value.len(),
            max: MAX_NAME_BYTES,
        });
    }
    Ok(())
}

/// Checks that a time can be kept as nanoseconds since the Unix epoch in an `i64`, with a
/// margin, so every backend can store and order it exactly.
pub(crate) fn storable_time(
    field: &'static str,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<(), ValidationError> {
    use chrono::Datelike;
    if (1678..=2261).contains(&at.year()) {
        Ok(())
    } else {
        Err(ValidationError::TimeOutOfRange { field })
    }
}

/// The JSON type name of `value`, for error messages.
pub(crate) fn json_type(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "boolean",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}
