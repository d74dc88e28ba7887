//! Identifiers of the records the library keeps: customers, events, interactions and merges.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Namespace for [`EventId`]s derived from `(source, message_id)`.
const EVENT_NAMESPACE: Uuid = Uuid::from_u128(0x6f6e_6576_6965_7701_8000_0000_0000_0001);
/// Namespace for [`InteractionId`]s derived from `(source, external key)`.
const INTERACTION_NAMESPACE: Uuid = Uuid::from_u128(0x6f6e_6576_6965_7702_8000_0000_0000_0002);
/// Namespace for [`CustomerId`]s derived from the evidence that founded the profile.
const PROFILE_NAMESPACE: Uuid = Uuid::from_u128(0x6f6e_6576_6965_7703_8000_0000_0000_0003);
/// Namespace for [`MergeId`]s derived from the evidence and the two profiles.
const MERGE_NAMESPACE: Uuid = Uuid::from_u128(0x6f6e_6576_6965_7704_8000_0000_0000_0004);

/// Derives a stable UUID (v5) from a source name and a key the source gave.
///
/// The two parts are length-prefixed so that `("ab", "c")` and `("a", "bc")` differ.
fn derive(namespace: &Uuid, source: &str, key: &str) -> Uuid {
    let mut name = Vec::with_capacity(source.len() + key.len() + 21);
    name.extend_from_slice(source.len().to_string().as_bytes());
    name.push(b':');
    name.extend_from_slice(source.as_bytes());
    name.push(b':');
    name.extend_from_slice(key.as_bytes());
    Uuid::new_v5(namespace, &name)
}

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// Wraps an existing UUID, for example one read back from storage.
            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            /// The underlying UUID.
            pub const fn as_uuid(&self) -> &Uuid {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0.hyphenated())
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

uuid_id! {
    /// The id of one customer profile: a UUID v7, so ids sort by creation time.
    ///
    /// When two profiles merge, the absorbed profile's id keeps resolving to the survivor.
    ///
    /// ```
    /// use oneview::CustomerId;
    /// let a = CustomerId::new();
    /// let b = CustomerId::new();
    /// assert!(a < b, "v7 ids are time-ordered");
    /// assert_eq!(a.to_string().parse::<CustomerId>().unwrap(), a);
    /// ```
    CustomerId
}

impl CustomerId {
    /// A fresh, time-ordered id.
    #[allow(clippy::new_without_default)] // a default id would hide that each call is unique
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }

    /// The id of the profile founded by the evidence (an event, interaction or operator
    /// link) with id `evidence`.
    ///
    /// Identity resolution names every profile after the evidence that founded it, so the
    /// same evidence yields the same ids whatever order it arrived in, and rebuilding a
    /// profile from its evidence gives it back its id.
    ///
    /// ```
    /// use oneview::{CustomerId, EventId};
    /// let event = EventId::derive("web", "m-1");
    /// assert_eq!(
    ///     CustomerId::founded_by(*event.as_uuid()),
    ///     CustomerId::founded_by(*event.as_uuid())
    /// );
    /// ```
    pub fn founded_by(evidence: Uuid) -> Self {
        Self(Uuid::new_v5(&PROFILE_NAMESPACE, evidence.as_bytes()))
    }
}

uuid_id! {
    /// The id of one event, derived from its source and message id.
    ///
    /// The same message from the same source always gets the same id, which is what makes
    /// ingestion idempotent and every tie-break independent of arrival order.
    ///
    /// ```
    /// use oneview::EventId;
    /// assert_eq!(EventId::derive("web", "m-1"), EventId::derive("web", "m-1"));
    /// assert_ne!(EventId::derive("web", "m-1"), EventId::derive("app", "m-1"));
    /// ```
    EventId
}

impl EventId {
    /// The id of the message `message_id` sent by `source`.
    pub fn derive(source: &str, message_id: &str) -> Self {
        Self(derive(&EVENT_NAMESPACE, source, message_id))
    }
}

uuid_id! {
    /// The id of one interaction, derived from its source and the source's own key
    /// (a ticket number, a call id), so updates from that source find the same record.
    InteractionId
}

impl InteractionId {
    /// The id of the interaction known to `source` as `key`.
    pub fn derive(source: &str, key: &str) -> Self {
        Self(derive(&INTERACTION_NAMESPACE, source, key))
    }
}

uuid_id! {
    /// The id of one recorded merge of two profiles.
    MergeId
}

impl MergeId {
    /// A fresh, time-ordered id.
    #[allow(clippy::new_without_default)] // a default id would hide that each call is unique
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }

    /// The id of the merge of `absorbed` into `survivor` made by the evidence with id
    /// `evidence`. Resolution names merges this way, so replaying or rebuilding the same
    /// evidence records the same merge under the same id.
    pub fn derive(evidence: Uuid, survivor: CustomerId, absorbed: CustomerId) -> Self {
        let mut name = [0u8; 48];
        name[..16].copy_from_slice(evidence.as_bytes());
        name[16..32].copy_from_slice(survivor.as_uuid().as_bytes());
        name[32..].copy_from_slice(absorbed.as_uuid().as_bytes());
        Self(Uuid::new_v5(&MERGE_NAMESPACE, &name))
    }
}

uuid_id! {
    /// The id of one operator override of identity resolution.
    OverrideId
}

impl OverrideId {
    /// A fresh, time-ordered id.
    #[allow(clippy::new_without_default)] // a default id would hide that each call is unique
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_separate_source_from_key() {
        assert_ne!(EventId::derive("ab", "c"), EventId::derive("a", "bc"));
        assert_ne!(
            EventId::derive("web", "1").as_uuid(),
            InteractionId::derive("web", "1").as_uuid()
        );
    }

    #[test]
    fn ids_round_trip_through_text_and_json() {
        let id = CustomerId::new();
        assert_eq!(id.to_string().parse::<CustomerId>().unwrap(), id);
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{id}\""));
        assert_eq!(serde_json::from_str::<CustomerId>(&json).unwrap(), id);
    }
}
