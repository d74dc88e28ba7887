//! Conversations: a customer's interactions read as threads, across channels and sources.
//!
//! Interactions that share a [`thread`](Interaction::thread) are one conversation,
//! whichever channel or system reported each of them: a complaint by email and the call
//! that answered it read as one exchange, because both belong to the one resolved
//! customer. An interaction without a thread is a conversation of its own.
//!
//! Everything here is derived from the interactions' own times (`occurred_at`), never
//! from the order they arrived in, so a late or re-delivered record changes a
//! conversation exactly as if it had come in time.
//!
//! ```
//! use oneview::conversation::ConversationKey;
//! use oneview::{Channel, Customers, Direction, Identifier, IdentifierKind, Interaction, MemoryStore};
//!
//! let customers = Customers::new(MemoryStore::new());
//! customers.ingest(
//!     Interaction::builder("helpdesk", Channel::Email, Direction::Inbound)
//!         .key("mail-1")
//!         .thread("case-9")
//!         .identifier(IdentifierKind::Email, "ana@example.com")
//!         .subject("My parcel is late")
//!         .build()?,
//! )?;
//! customers.ingest(
//!     Interaction::builder("phone-system", Channel::Phone, Direction::Outbound)
//!         .key("call-1")
//!         .thread("case-9")
//!         .identifier(IdentifierKind::Email, "ana@example.com")
//!         .owner("agent.kim")
//!         .build()?,
//! )?;
//!
//! let ana = Identifier::email("ana@example.com")?;
//! let case = customers.conversation(&ana, "case-9")?.expect("one conversation");
//! assert_eq!(case.interactions.len(), 2);
//! assert_eq!(case.summary.channels, [Channel::Email, Channel::Phone]);
//! assert_eq!(case.summary.owners, ["agent.kim"]);
//! assert!(case.summary.last_company_reply.is_some());
//! assert_eq!(customers.open_conversations(&ana)?.len(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::{Channel, CustomerId, Direction, Interaction, InteractionId, InteractionStatus};
use crate::store::{MAX_PAGE_SIZE, PageRequest, Reads, StoreError};

/// What names a conversation within one customer's history.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "by", content = "id", rename_all = "snake_case")]
pub enum ConversationKey {
    /// The thread its interactions share.
    Thread(String),
    /// The one interaction of a conversation without a thread.
    Contact(InteractionId),
}

impl ConversationKey {
    /// The conversation `interaction` belongs to.
    pub fn of(interaction: &Interaction) -> Self {
        match &interaction.thread {
            Some(thread) => Self::Thread(thread.clone()),
            None => Self::Contact(interaction.id),
        }
    }
}

impl From<&str> for ConversationKey {
    fn from(thread: &str) -> Self {
        Self::Thread(thread.to_owned())
    }
}

impl From<String> for ConversationKey {
    fn from(thread: String) -> Self {
        Self::Thread(thread)
    }
}

impl From<InteractionId> for ConversationKey {
    fn from(id: InteractionId) -> Self {
        Self::Contact(id)
    }
}

impl fmt::Display for ConversationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Thread(thread) => write!(f, "thread {thread}"),
            Self::Contact(id) => write!(f, "contact {id}"),
        }
    }
}

/// Where a conversation stands and who has been part of it, without its interactions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationSummary {
    /// Which conversation it is.
    pub key: ConversationKey,
    /// The status of its latest interaction: the one that occurred last (ties broken by
    /// the later version, then by id).
    pub status: InteractionStatus,
    /// The agents or teams that owned any of its interactions, in the order they first
    /// appear.
    pub owners: Vec<String>,
    /// The owner of its latest owned interaction: who has it now.
    pub current_owner: Option<String>,
    /// The channels it took place on, in the order they first appear.
    pub channels: Vec<Channel>,
    /// How many interactions it holds.
    pub contacts: usize,
    /// When it began.
    pub first_contact: DateTime<Utc>,
    /// When its latest interaction occurred.
    pub last_contact: DateTime<Utc>,
    /// When the customer last wrote or called in it (an inbound interaction).
    pub last_customer_message: Option<DateTime<Utc>>,
    /// When the company last reached out in it (an outbound interaction).
    pub last_company_reply: Option<DateTime<Utc>>,
}

impl ConversationSummary {
    /// Whether it is still going: its latest interaction is open or pending.
    pub fn is_open(&self) -> bool {
        self.status != InteractionStatus::Closed
    }

    /// Whether the customer spoke last and has not been answered since.
    pub fn awaiting_reply(&self) -> bool {
        match (self.last_customer_message, self.last_company_reply) {
            (Some(asked), Some(answered)) => asked > answered,
            (Some(_), None) => true,
            (None, _) => false,
        }
    }
}

/// One conversation of one customer: its summary and its interactions, oldest first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    /// The customer's live profile.
    pub customer: CustomerId,
    /// Where it stands and who took part.
    pub summary: ConversationSummary,
    /// Its interactions in the order they occurred (by time, then id).
    pub interactions: Vec<Interaction>,
}

/// Groups `interactions` (of one customer, in any order) into conversations, ordered by
/// their latest contact, newest first.
pub fn group(customer: CustomerId, interactions: Vec<Interaction>) -> Vec<Conversation> {
    let mut by_key: BTreeMap<ConversationKey, Vec<Interaction>> = BTreeMap::new();
    for interaction in interactions {
        by_key
            .entry(ConversationKey::of(&interaction))
            .or_default()
            .push(interaction);
    }
    let mut conversations: Vec<Conversation> = by_key
        .into_iter()
        .map(|(key, interactions)| conversation(customer, key, interactions))
        .collect();
    conversations.sort_by(|a, b| {
        b.summary
            .last_contact
            .cmp(&a.summary.last_contact)
            .then_with(|| a.summary.key.cmp(&b.summary.key))
    });
    conversations
}

/// The conversation `key` made of `interactions`, which must not be empty.
fn conversation(
    customer: CustomerId,
    key: ConversationKey,
    mut interactions: Vec<Interaction>,
) -> Conversation {
    interactions.sort_by_key(|i| (i.occurred_at, i.id));
    let latest = interactions
        .iter()
        .max_by(|a, b| {
            (a.occurred_at, a.updated_at, a.id).cmp(&(b.occurred_at, b.updated_at, b.id))
        })
        .expect("a conversation holds at least one interaction");
    let mut owners: Vec<String> = Vec::new();
    let mut channels: Vec<Channel> = Vec::new();
    for interaction in &interactions {
        if let Some(owner) = &interaction.owner
            && !owners.contains(owner)
        {
            owners.push(owner.clone());
        }
        if !channels.contains(&interaction.channel) {
            channels.push(interaction.channel.clone());
        }
    }
    let last_by = |direction: Direction| {
        interactions
            .iter()
            .filter(|i| i.direction == direction)
            .map(|i| i.occurred_at)
            .max()
    };
    let summary = ConversationSummary {
        key,
        status: latest.status,
        current_owner: interactions.iter().rev().find_map(|i| i.owner.clone()),
        owners,
        channels,
        contacts: interactions.len(),
        first_contact: interactions[0].occurred_at,
        last_contact: latest.occurred_at,
        last_customer_message: last_by(Direction::Inbound),
        last_company_reply: last_by(Direction::Outbound),
    };
    Conversation {
        customer,
        summary,
        interactions,
    }
}

/// Every interaction of the live profile `customer`, read page by page.
pub(crate) fn all_interactions<S: Reads + ?Sized>(
    store: &S,
    customer: CustomerId,
) -> Result<Vec<Interaction>, StoreError> {
    let mut all = Vec::new();
    let mut request = PageRequest::first(MAX_PAGE_SIZE);
    loop {
        let page = store.interactions(customer, request)?;
        all.extend(page.items);
        match page.next {
            Some(cursor) => request = PageRequest::after(cursor, MAX_PAGE_SIZE),
            None => return Ok(all),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Channel;
    use chrono::TimeZone;

    fn at(minute: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap() + chrono::Duration::minutes(minute)
    }

    fn contact(key: &str, thread: Option<&str>, direction: Direction, minute: i64) -> Interaction {
        let mut builder = Interaction::builder("desk", Channel::Email, direction)
            .key(key)
            .occurred_at(at(minute));
        if let Some(thread) = thread {
            builder = builder.thread(thread);
        }
        builder.build().unwrap()
    }

    #[test]
    fn the_customer_waits_when_they_spoke_last() {
        let customer = CustomerId::new();
        let asked = contact("a", Some("t"), Direction::Inbound, 0);
        let answered = contact("b", Some("t"), Direction::Outbound, 5);
        let again = contact("c", Some("t"), Direction::Inbound, 9);
        let once = group(customer, vec![asked.clone(), answered.clone()]);
        assert!(!once[0].summary.awaiting_reply());
        let twice = group(customer, vec![again, asked, answered]);
        assert!(twice[0].summary.awaiting_reply());
        assert_eq!(twice[0].summary.last_customer_message, Some(at(9)));
        assert_eq!(twice[0].summary.last_company_reply, Some(at(5)));
    }

    #[test]
    fn a_contact_without_a_thread_is_a_conversation_of_its_own() {
        let customer = CustomerId::new();
        let lone = contact("a", None, Direction::Inbound, 0);
        let other = contact("b", None, Direction::Inbound, 1);
        let conversations = group(customer, vec![lone.clone(), other.clone()]);
        assert_eq!(conversations.len(), 2);
        assert_eq!(
            conversations[0].summary.key,
            ConversationKey::Contact(other.id)
        );
        assert_eq!(
            conversations[1].summary.key,
            ConversationKey::Contact(lone.id)
        );
    }
}
