//! The channels through which a company and a customer reach each other.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

/// A channel of contact. Prints and parses as its lower-case name.
///
/// ```
/// use oneview::Channel;
/// assert_eq!("Web".parse::<Channel>().unwrap(), Channel::Web);
/// assert_eq!("whatsapp".parse::<Channel>().unwrap(), Channel::other("WhatsApp").unwrap());
/// assert_eq!(Channel::other("WhatsApp").unwrap().to_string(), "whatsapp");
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
#[non_exhaustive]
pub enum Channel {
    /// A web site.
    Web,
    /// A mobile app.
    Mobile,
    /// Email.
    Email,
    /// Text messages.
    Sms,
    /// Voice calls.
    Phone,
    /// Live chat or messaging.
    Chat,
    /// A physical store.
    Store,
    /// Social networks.
    Social,
    /// The support desk.
    Support,
    /// The sales team.
    Sales,
    /// Any other channel, by its lower-case name.
    Other(String),
}

impl Channel {
    const NAMED: [(&'static str, Channel); 10] = [
        ("web", Channel::Web),
        ("mobile", Channel::Mobile),
        ("email", Channel::Email),
        ("sms", Channel::Sms),
        ("phone", Channel::Phone),
        ("chat", Channel::Chat),
        ("store", Channel::Store),
        ("social", Channel::Social),
        ("support", Channel::Support),
        ("sales", Channel::Sales),
    ];

    /// A channel by name: one of the named variants when the name is theirs, else
    /// [`Channel::Other`]. Names are trimmed and lower-cased; an empty one is refused.
    pub fn other(name: &str) -> Result<Self, ChannelError> {
        name.parse()
    }

    /// The channel's lower-case name.
    pub fn name(&self) -> &str {
        match self {
            Self::Other(name) => name,
            named => Self::NAMED
                .iter()
                .find(|(_, channel)| channel == named)
                .map(|(name, _)| *name)
                .expect("every named variant is listed in NAMED"),
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Channel {
    type Err = ChannelError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        // A name as the crate writes it (every stored record) needs no lowering.
        if let Some((_, channel)) = Self::NAMED.iter().find(|(known, _)| *known == name) {
            return Ok(channel.clone());
        }
        let lowered = name.trim().to_lowercase();
        if lowered.is_empty() || lowered.len() > 64 || lowered.chars().any(char::is_control) {
            return Err(ChannelError {
                name: name.to_owned(),
            });
        }
        Ok(Self::NAMED
            .iter()
            .find(|(known, _)| *known == lowered)
            .map_or(Self::Other(lowered), |(_, channel)| channel.clone()))
    }
}

impl Serialize for Channel {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Channel {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = Cow::<str>::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

/// A channel name that is empty, longer than 64 bytes or holds control characters.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("invalid channel name {name:?}: expected 1 to 64 bytes without control characters")]
pub struct ChannelError {
    /// The name as given.
    pub name: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_named_channel_round_trips() {
        for (name, channel) in Channel::NAMED {
            assert_eq!(channel.name(), name);
            assert_eq!(name.parse::<Channel>().unwrap(), channel);
            let json = serde_json::to_string(&channel).unwrap();
            assert_eq!(serde_json::from_str::<Channel>(&json).unwrap(), channel);
        }
    }

    #[test]
    fn other_names_are_normalised_and_validated() {
        assert_eq!(
            Channel::other(" Kiosk ").unwrap(),
            Channel::Other("kiosk".into())
        );
        assert_eq!(Channel::other("SMS").unwrap(), Channel::Sms);
        assert!(Channel::other("  ").is_err());
        assert!(Channel::other(&"k".repeat(65)).is_err());
    }
}
