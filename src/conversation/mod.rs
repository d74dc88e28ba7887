//! Conversations: a customer's interactions read as threads, across channels and sources.
//!
//! Interactions that share a [`thread`](Interaction::thread) are one conversation,
//! whichever channel or system reported each of them: a complaint by email and the call
//! that answered it read as one exchange, because both belong to the one resolved
//! customer. An interaction without a thread is a conversation of its own.
//!
//! Replies are the company's outbound interactions in the thread, on any channel: each
//! wait of the customer (from a message nobody had answered yet) ends at the company's
//! next contact, so the first reply, each next reply and the close are read from the
//! history ([`ConversationSummary::responses`], [`ConversationSummary::closed_at`]). Who
//! answers for a conversation is the owner of its latest owned interaction, else the
//! customer's account owner (the [`ACCOUNT_OWNER_TRAIT`] trait), else nobody, which is
//! reported as [`Responsible::Unowned`].
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

mod facade;
pub mod follow_up;
pub mod report;
pub mod sla;

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::{Channel, CustomerId, Direction, Interaction, InteractionId, InteractionStatus};
use crate::store::{MAX_PAGE_SIZE, Page, PageRequest, Reads, StoreError};

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
    /// Whether it names the thread `thread`.
    pub(crate) fn is_thread(&self, thread: &str) -> bool {
        matches!(self, Self::Thread(mine) if mine == thread)
    }

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

/// The trait that names a customer's account owner: the one person responsible for the
/// customer, and the owner of whatever of theirs nobody else owns. Set it like any trait
/// (`set_trait("account_owner", json!("agent.lee"))` on an event), so it carries
/// provenance and resolves by event time.
pub const ACCOUNT_OWNER_TRAIT: &str = "account_owner";

/// Who answers for a conversation.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "by", content = "name", rename_all = "snake_case")]
pub enum Responsible {
    /// The owner of its latest owned interaction.
    Owner(String),
    /// Nobody owns its interactions: the customer's account owner, by default.
    AccountOwner(String),
    /// Nobody: no owner on its interactions and no account owner.
    Unowned,
}

/// One wait of the customer for the company: from a customer's message nobody had
/// answered yet to the company's next contact in the conversation, on any channel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    /// When the customer's first unanswered message occurred.
    pub asked_at: DateTime<Utc>,
    /// When the company next reached the customer in the conversation; `None` while
    /// the customer still waits.
    pub answered_at: Option<DateTime<Utc>>,
    /// The owner of that answer, if it names one.
    pub answered_by: Option<String>,
    /// The channel of that answer.
    pub answered_on: Option<Channel>,
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
    /// Each wait of the customer and the reply that ended it, in time order: the first
    /// is the first reply, the others the next replies.
    pub responses: Vec<Response>,
    /// When it was closed, if its latest interaction is closed.
    pub closed_at: Option<DateTime<Utc>>,
    /// Who answers for it.
    pub responsible: Responsible,
}

impl ConversationSummary {
    /// Whether it is still going: its latest interaction is open or pending.
    pub fn is_open(&self) -> bool {
        self.status != InteractionStatus::Closed
    }

    /// When the company first replied to the customer in it.
    pub fn first_reply_at(&self) -> Option<DateTime<Utc>> {
        self.responses.first().and_then(|r| r.answered_at)
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
/// their latest contact, newest first. `account_owner` answers for conversations whose
/// interactions name no owner.
pub fn group(
    customer: CustomerId,
    interactions: Vec<Interaction>,
    account_owner: Option<&str>,
) -> Vec<Conversation> {
    let mut by_key: BTreeMap<ConversationKey, Vec<Interaction>> = BTreeMap::new();
    for interaction in interactions {
        by_key
            .entry(ConversationKey::of(&interaction))
            .or_default()
            .push(interaction);
    }
    let mut conversations: Vec<Conversation> = by_key
        .into_iter()
        .map(|(key, interactions)| conversation(customer, key, interactions, account_owner))
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
    account_owner: Option<&str>,
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
    let current_owner = interactions.iter().rev().find_map(|i| i.owner.clone());
    let responsible = match (&current_owner, account_owner) {
        (Some(owner), _) => Responsible::Owner(owner.clone()),
        (None, Some(account)) => Responsible::AccountOwner(account.to_owned()),
        (None, None) => Responsible::Unowned,
    };
    let summary = ConversationSummary {
        key,
        status: latest.status,
        closed_at: (latest.status == InteractionStatus::Closed)
            .then(|| latest.closed_at.unwrap_or(latest.updated_at)),
        responses: responses(&interactions),
        responsible,
        current_owner,
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

/// The customer's waits in `interactions` and the replies that ended them. At the same
/// instant, the customer's message counts as coming first.
fn responses(interactions: &[Interaction]) -> Vec<Response> {
    let mut responses: Vec<Response> = Vec::new();
    let mut waiting_since: Option<DateTime<Utc>> = None;
    let mut ordered: Vec<&Interaction> = interactions.iter().collect();
    ordered.sort_by_key(|i| (i.occurred_at, i.direction == Direction::Outbound, i.id));
    for interaction in ordered {
        match interaction.direction {
            Direction::Inbound => {
                waiting_since.get_or_insert(interaction.occurred_at);
            }
            Direction::Outbound => {
                if let Some(asked_at) = waiting_since.take() {
                    responses.push(Response {
                        asked_at,
                        answered_at: Some(interaction.occurred_at),
                        answered_by: interaction.owner.clone(),
                        answered_on: Some(interaction.channel.clone()),
                    });
                }
            }
        }
    }
    if let Some(asked_at) = waiting_since {
        responses.push(Response {
            asked_at,
            answered_at: None,
            answered_by: None,
            answered_on: None,
        });
    }
    responses
}

/// The account owner the resolved `traits` of a customer name, if any.
pub(crate) fn account_owner(
    traits: &BTreeMap<String, crate::model::ResolvedTrait>,
) -> Option<String> {
    traits
        .get(ACCOUNT_OWNER_TRAIT)
        .and_then(|t| t.value.as_str())
        .map(str::to_owned)
}

/// Calls `visit` with each live profile `store` holds, in id order, a page of ids at a
/// time.
pub(crate) fn each_customer_of<E: From<StoreError>>(
    store: &(impl crate::store::IdentityStore + ?Sized),
    mut visit: impl FnMut(CustomerId) -> Result<(), E>,
) -> Result<(), E> {
    let mut after = None;
    loop {
        let page = store.customers(after, crate::store::MAX_PAGE_SIZE)?;
        for &customer in &page {
            visit(customer)?;
        }
        match page.last() {
            Some(&last) => after = Some(last),
            None => return Ok(()),
        }
    }
}

/// Every event of the live profile `customer`, newest first.
pub(crate) fn all_events<S: Reads + ?Sized>(
    store: &S,
    customer: CustomerId,
) -> Result<Vec<crate::model::Event>, StoreError> {
    let mut all = Vec::new();
    each_page(|request| store.events(customer, request), |e| all.push(e))?;
    Ok(all)
}

/// The events of the live profile `customer` that occurred at or after `since`, newest
/// first.
pub(crate) fn events_since<S: Reads + ?Sized>(
    store: &S,
    customer: CustomerId,
    since: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<crate::model::Event>, StoreError> {
    let mut recent = Vec::new();
    each_page(
        |request| store.events_since(customer, since, request),
        |e| recent.push(e),
    )?;
    Ok(recent)
}

/// Every interaction of the live profile `customer`, newest first.
pub(crate) fn all_interactions<S: Reads + ?Sized>(
    store: &S,
    customer: CustomerId,
) -> Result<Vec<Interaction>, StoreError> {
    let mut all = Vec::new();
    each_page(
        |request| store.interactions(customer, request),
        |i| all.push(i),
    )?;
    Ok(all)
}

/// Hands every item of a timeline to `visit`, reading it with `read` in the largest
/// pages the contract allows.
pub(crate) fn each_page<T>(
    mut read: impl FnMut(PageRequest) -> Result<Page<T>, StoreError>,
    mut visit: impl FnMut(T),
) -> Result<(), StoreError> {
    let mut request = PageRequest::first(MAX_PAGE_SIZE);
    loop {
        let page = read(request)?;
        page.items.into_iter().for_each(&mut visit);
        match page.next {
            Some(cursor) => request = PageRequest::after(cursor, MAX_PAGE_SIZE),
            None => return Ok(()),
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
        let once = group(customer, vec![asked.clone(), answered.clone()], None);
        assert!(!once[0].summary.awaiting_reply());
        let twice = group(customer, vec![again, asked, answered], None);
        assert!(twice[0].summary.awaiting_reply());
        assert_eq!(twice[0].summary.last_customer_message, Some(at(9)));
        assert_eq!(twice[0].summary.last_company_reply, Some(at(5)));
    }

    #[test]
    fn a_contact_without_a_thread_is_a_conversation_of_its_own() {
        let customer = CustomerId::new();
        let lone = contact("a", None, Direction::Inbound, 0);
        let other = contact("b", None, Direction::Inbound, 1);
        let conversations = group(customer, vec![lone.clone(), other.clone()], None);
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
