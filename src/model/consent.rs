//! Consent: what a customer allowed the company to do with their data, per purpose and
//! channel, with provenance.
//!
//! A [`ConsentChoice`] is one decision (granted, denied or withdrawn) for one
//! [`Purpose`], on one channel or on all of them. Events carry choices
//! ([`Event::consent`](super::Event::consent)); once stored, each becomes a
//! [`ConsentRecord`] with the provenance of the event that carried it. What is in force
//! for a customer is worked out from those records by
//! [`privacy::resolve_consent`](crate::privacy::resolve_consent), by event time.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::channel::Channel;
use super::error::{MAX_NAME_BYTES, ValidationError};
use super::traits::Provenance;

/// The longest wording or version text kept with a choice, in bytes.
pub const MAX_WORDING_BYTES: usize = 4096;

/// What the company wants to do with a customer's data or attention.
///
/// Four purposes are built in; any other must be named explicitly with
/// [`Purpose::other`] (written `other:NAME`), so that a misspelt purpose is an error
/// rather than a purpose nobody asked about.
///
/// ```
/// use oneview::Purpose;
///
/// assert_eq!("marketing".parse::<Purpose>()?, Purpose::Marketing);
/// assert_eq!("personalization".parse::<Purpose>()?, Purpose::Personalisation);
/// assert_eq!("other:loyalty".parse::<Purpose>()?, Purpose::other("loyalty")?);
/// assert!("marketting".parse::<Purpose>().is_err());
/// # Ok::<(), oneview::PurposeError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Purpose {
    /// Promotional messages and advertising.
    Marketing,
    /// Measuring how the product and the channels are used.
    Analytics,
    /// Tailoring content and offers to the customer.
    Personalisation,
    /// Messages about what the customer asked for: orders, tickets, their account.
    Service,
    /// A purpose of the company's own, by its name (lowercase).
    Other(String),
}

impl Purpose {
    /// A purpose of the company's own. The name is trimmed and lowercased; it must be
    /// non-empty, at most [`MAX_NAME_BYTES`], and not a built-in purpose's name.
    pub fn other(name: &str) -> Result<Self, PurposeError> {
        let name = name.trim().to_lowercase();
        if name.is_empty() {
            return Err(PurposeError::EmptyName);
        }
        if name.len() > MAX_NAME_BYTES {
            return Err(PurposeError::TooLong { len: name.len() });
        }
        if let Some(builtin) = Self::builtin(&name) {
            return Err(PurposeError::BuiltIn(builtin.to_string()));
        }
        Ok(Self::Other(name))
    }

    fn builtin(name: &str) -> Option<Self> {
        Some(match name {
            "marketing" => Self::Marketing,
            "analytics" => Self::Analytics,
            "personalisation" | "personalization" => Self::Personalisation,
            "service" => Self::Service,
            _ => return None,
        })
    }

    /// The purpose's name as written: `marketing`, …, `other:NAME`.
    pub fn name(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Purpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Marketing => f.write_str("marketing"),
            Self::Analytics => f.write_str("analytics"),
            Self::Personalisation => f.write_str("personalisation"),
            Self::Service => f.write_str("service"),
            Self::Other(name) => write!(f, "other:{name}"),
        }
    }
}

impl FromStr for Purpose {
    type Err = PurposeError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let lower = text.trim().to_lowercase();
        if let Some(purpose) = Self::builtin(&lower) {
            return Ok(purpose);
        }
        match lower.strip_prefix("other:") {
            Some(name) => Self::other(name),
            None => Err(PurposeError::Unknown(text.to_owned())),
        }
    }
}

impl TryFrom<String> for Purpose {
    type Error = PurposeError;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl From<Purpose> for String {
    fn from(purpose: Purpose) -> Self {
        purpose.to_string()
    }
}

/// Why a purpose name was not accepted.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PurposeError {
    /// Neither a built-in purpose nor `other:NAME`.
    #[error(
        "unknown purpose {0:?}: expected marketing, analytics, personalisation, service or other:NAME"
    )]
    Unknown(String),
    /// `other:` with no name.
    #[error("a purpose of your own needs a name")]
    EmptyName,
    /// A name longer than [`MAX_NAME_BYTES`].
    #[error("purpose name is {len} bytes long, more than the {MAX_NAME_BYTES} allowed")]
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// `other:` with a built-in purpose's name.
    #[error("{0} is a built-in purpose; write it without other:")]
    BuiltIn(String),
}

/// A customer's decision about one purpose.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentStatus {
    /// The customer agreed.
    Granted,
    /// The customer said no when asked.
    Denied,
    /// The customer took back an earlier agreement.
    Withdrawn,
}

impl ConsentStatus {
    /// Whether the decision allows the purpose: only [`Granted`](Self::Granted) does.
    pub fn allows(self) -> bool {
        self == Self::Granted
    }
}

/// One decision about one purpose, on one channel or on every channel, as an event
/// carries it.
///
/// ```
/// use oneview::{Channel, ConsentChoice, ConsentStatus, Purpose};
///
/// let choice = ConsentChoice::new(Purpose::Marketing, ConsentStatus::Withdrawn)
///     .on(Channel::Email)
///     .wording("Newsletter sign-up form, v3");
/// assert_eq!(choice.channel, Some(Channel::Email));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ConsentChoice {
    /// The purpose decided on.
    pub purpose: Purpose,
    /// The channel it applies to; `None` for every channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<Channel>,
    /// The decision.
    pub status: ConsentStatus,
    /// The wording, or the version of the wording, the customer was shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wording: Option<String>,
}

impl ConsentChoice {
    /// A decision about `purpose` on every channel.
    pub fn new(purpose: Purpose, status: ConsentStatus) -> Self {
        Self {
            purpose,
            channel: None,
            status,
            wording: None,
        }
    }

    /// Narrows the decision to one channel.
    pub fn on(mut self, channel: Channel) -> Self {
        self.channel = Some(channel);
        self
    }

    /// Records the wording, or its version, that the customer saw.
    pub fn wording(mut self, wording: &str) -> Self {
        self.wording = Some(wording.to_owned());
        self
    }

    pub(crate) fn validate(&self) -> Result<(), ValidationError> {
        match &self.wording {
            Some(wording) if wording.len() > MAX_WORDING_BYTES => Err(ValidationError::TooLong {
                field: "consent.wording",
                len: wording.len(),
                max: MAX_WORDING_BYTES,
            }),
            _ => Ok(()),
        }
    }
}

/// A stored consent decision: the choice, and the provenance of the event that carried it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentRecord {
    /// The decision.
    #[serde(flatten)]
    pub choice: ConsentChoice,
    /// Who reported it, in which event, when it was made.
    pub provenance: Provenance,
}

impl ConsentRecord {
    /// The order decisions are applied in: event time, then event id, then the choice
    /// itself, so that even exact ties resolve the same way whatever order they arrived in.
    pub fn order_key(&self) -> impl Ord + '_ {
        (
            self.provenance.observed_at,
            self.provenance.event_id,
            &self.choice.purpose,
            self.choice.channel.as_ref().map(Channel::name),
            self.choice.status,
            &self.choice.wording,
        )
    }
}
