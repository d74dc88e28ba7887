//! The unified view of one customer: identity, traits, activity per channel and one
//! timeline of everything they did and said, across channels.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::audience::PersonaMatch;
use crate::conversation::{self, ConversationSummary};
use crate::model::{
    Channel, CustomerId, Event, Identifier, Interaction, Membership, MembershipChange, MergeRecord,
    ResolvedTrait, resolve_traits,
};
use crate::store::{ChannelSummary, Page, PageRequest, Reads, StoreError, TimelineCursor};

/// How many timeline entries [`Customers::profile`](crate::Customers::profile) includes.
pub const DEFAULT_TIMELINE_ENTRIES: usize = 20;

/// How to find a profile: by its id (current or merged away) or by one of its identifiers.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Lookup {
    /// A customer id; a merged id finds the profile it was merged into.
    Customer(CustomerId),
    /// An identifier the profile holds.
    Identifier(Identifier),
}

impl From<CustomerId> for Lookup {
    fn from(id: CustomerId) -> Self {
        Self::Customer(id)
    }
}

impl From<Identifier> for Lookup {
    fn from(identifier: Identifier) -> Self {
        Self::Identifier(identifier)
    }
}

impl From<&Identifier> for Lookup {
    fn from(identifier: &Identifier) -> Self {
        Self::Identifier(identifier.clone())
    }
}

/// One entry of a customer's timeline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TimelineEntry {
    /// Something the customer did.
    Event(Event),
    /// A contact with the customer.
    Interaction(Interaction),
    /// The customer entered or left a segment kept live
    /// ([`Customers::with_live_segments`](crate::Customers::with_live_segments)).
    Membership(MembershipChange),
}

impl TimelineEntry {
    /// When it happened.
    pub fn at(&self) -> DateTime<Utc> {
        match self {
            Self::Event(event) => event.occurred_at,
            Self::Interaction(interaction) => interaction.occurred_at,
            Self::Membership(change) => change.at,
        }
    }

    /// Its channel; `None` for a membership change, which happens on none.
    pub fn channel(&self) -> Option<&Channel> {
        match self {
            Self::Event(event) => Some(&event.channel),
            Self::Interaction(interaction) => Some(&interaction.channel),
            Self::Membership(_) => None,
        }
    }

    /// Its position in the timeline.
    pub fn cursor(&self) -> TimelineCursor {
        let id = match self {
            Self::Event(event) => *event.id.as_uuid(),
            Self::Interaction(interaction) => *interaction.id.as_uuid(),
            Self::Membership(change) => change.id,
        };
        TimelineCursor { at: self.at(), id }
    }
}

/// A customer's activity on one channel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelActivity {
    /// The channel.
    pub channel: Channel,
    /// Events on it.
    pub events: u64,
    /// Interactions on it.
    pub interactions: u64,
    /// The first time the customer was seen on it.
    pub first_seen: DateTime<Utc>,
    /// The last time the customer was seen on it.
    pub last_seen: DateTime<Utc>,
    /// When the latest contact with the customer on it (an interaction) occurred.
    #[serde(default)]
    pub last_contact: Option<DateTime<Utc>>,
}

/// Everything known about one customer, as every channel sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// The profile's id.
    pub customer_id: CustomerId,
    /// Ids of profiles merged into this one; they keep resolving to it.
    pub merged_ids: Vec<CustomerId>,
    /// Every identifier of the customer, in ascending order.
    pub identifiers: Vec<Identifier>,
    /// Current trait values, each with its provenance.
    pub traits: BTreeMap<String, ResolvedTrait>,
    /// The first time the customer was seen on any channel.
    pub first_seen: Option<DateTime<Utc>>,
    /// The last time the customer was seen on any channel.
    pub last_seen: Option<DateTime<Utc>>,
    /// Activity per channel, by channel.
    pub channels: Vec<ChannelActivity>,
    /// The merges that built this profile, oldest first.
    pub merges: Vec<MergeRecord>,
    /// The customer's open conversations, latest contact first: what the next agent
    /// picks up, on whichever channel.
    #[serde(default)]
    pub open_conversations: Vec<ConversationSummary>,
    /// The persona the customer matches, among those
    /// [`Customers::with_personas`](crate::Customers::with_personas) set; `None` when none
    /// holds or none is set.
    #[serde(default)]
    pub persona: Option<PersonaMatch>,
    /// The segments kept live the customer is in, by name, each with when they entered
    /// and why.
    #[serde(default)]
    pub segments: Vec<Membership>,
    /// The most recent events, interactions and membership changes, newest first.
    pub timeline: Page<TimelineEntry>,
}

impl Profile {
    /// Total events across channels.
    pub fn event_count(&self) -> u64 {
        self.channels.iter().map(|c| c.events).sum()
    }

    /// Total interactions across channels.
    pub fn interaction_count(&self) -> u64 {
        self.channels.iter().map(|c| c.interactions).sum()
    }
}

/// The live profile `lookup` finds.
pub(crate) fn find<S: Reads + ?Sized>(
    store: &S,
    lookup: &Lookup,
) -> Result<Option<CustomerId>, StoreError> {
    match lookup {
        Lookup::Customer(id) => Ok(store.profile(*id)?.map(|p| p.id)),
        Lookup::Identifier(identifier) => {
            let owner = store
                .owners(std::slice::from_ref(identifier))?
                .pop()
                .flatten();
            Ok(owner.map(|o| o.customer))
        }
    }
}

/// The live profile `lookup` finds, read whole: [`find`] and the profile in one.
pub(crate) fn find_profile<S: Reads + ?Sized>(
    store: &S,
    lookup: &Lookup,
) -> Result<Option<crate::store::ProfileRecord>, StoreError> {
    match lookup {
        Lookup::Customer(id) => store.profile(*id),
        Lookup::Identifier(_) => match find(store, lookup)? {
            Some(customer) => store.profile(customer),
            None => Ok(None),
        },
    }
}

/// Builds the unified view of the live profile `customer`.
pub(crate) fn build<S: Reads + ?Sized>(
    store: &S,
    customer: CustomerId,
    entries: usize,
) -> Result<Option<Profile>, StoreError> {
    let Some(record) = store.profile(customer)? else {
        return Ok(None);
    };
    let traits = resolve_traits(&store.trait_operations(record.id)?);
    let contacts = store.interaction_summary(record.id)?;
    let open_conversations = if contacts.is_empty() {
        Vec::new()
    } else {
        let account_owner = conversation::account_owner(&traits);
        conversation::group(
            record.id,
            conversation::all_interactions(store, record.id)?,
            account_owner.as_deref(),
        )
        .into_iter()
        .map(|c| c.summary)
        .filter(ConversationSummary::is_open)
        .collect()
    };
    let events = store.event_summary(record.id)?;
    // A summary with no channel means nothing of that kind to page through.
    let (has_events, has_interactions) = (!events.is_empty(), !contacts.is_empty());
    let channels = activity(events, contacts);
    let membership = store.membership(record.id)?;
    Ok(Some(Profile {
        customer_id: record.id,
        merged_ids: record
            .members
            .into_iter()
            .filter(|m| *m != record.id)
            .collect(),
        identifiers: record.identifiers,
        traits,
        first_seen: channels.iter().map(|c| c.first_seen).min(),
        last_seen: channels.iter().map(|c| c.last_seen).max(),
        channels,
        merges: store.merges(record.id)?,
        open_conversations,
        persona: None,
        timeline: timeline_of(
            store,
            record.id,
            PageRequest::first(entries),
            Sources {
                events: has_events,
                interactions: has_interactions,
                memberships: membership.version > 0,
            },
        )?,
        segments: membership.memberships,
    }))
}

/// One page of the live profile `customer`'s events, interactions and membership
/// changes, merged newest first.
pub(crate) fn timeline<S: Reads + ?Sized>(
    store: &S,
    customer: CustomerId,
    page: PageRequest,
) -> Result<Page<TimelineEntry>, StoreError> {
    let every = Sources {
        events: true,
        interactions: true,
        memberships: true,
    };
    timeline_of(store, customer, page, every)
}

/// Which kinds of timeline entry a profile may hold: those it cannot are not read.
#[derive(Clone, Copy)]
struct Sources {
    events: bool,
    interactions: bool,
    memberships: bool,
}

/// [`timeline`], reading only the kinds of entry `sources` says the profile may hold:
/// membership changes where its membership was ever updated, events and interactions
/// where its channel summaries show some. Each kind skipped is a read less.
fn timeline_of<S: Reads + ?Sized>(
    store: &S,
    customer: CustomerId,
    page: PageRequest,
    sources: Sources,
) -> Result<Page<TimelineEntry>, StoreError> {
    let events = if sources.events {
        store.events(customer, page)?
    } else {
        Page::empty()
    };
    let interactions = if sources.interactions {
        store.interactions(customer, page)?
    } else {
        Page::empty()
    };
    let memberships = if sources.memberships {
        store.membership_changes(customer, page)?
    } else {
        Page::empty()
    };
    let more_behind =
        events.next.is_some() || interactions.next.is_some() || memberships.next.is_some();
    let mut items: Vec<TimelineEntry> = events
        .items
        .into_iter()
        .map(TimelineEntry::Event)
        .chain(
            interactions
                .items
                .into_iter()
                .map(TimelineEntry::Interaction),
        )
        .chain(memberships.items.into_iter().map(TimelineEntry::Membership))
        .collect();
    items.sort_by_key(|entry| std::cmp::Reverse(entry.cursor()));
    let more = items.len() > page.limit() || more_behind;
    items.truncate(page.limit());
    let next = if more {
        items.last().map(TimelineEntry::cursor)
    } else {
        None
    };
    Ok(Page { items, next })
}

fn activity(
    events: Vec<ChannelSummary>,
    interactions: Vec<ChannelSummary>,
) -> Vec<ChannelActivity> {
    let mut by_channel: BTreeMap<Channel, ChannelActivity> = BTreeMap::new();
    for (summary, is_event) in events
        .into_iter()
        .map(|s| (s, true))
        .chain(interactions.into_iter().map(|s| (s, false)))
    {
        let entry = by_channel
            .entry(summary.channel.clone())
            .or_insert_with(|| ChannelActivity {
                channel: summary.channel.clone(),
                events: 0,
                interactions: 0,
                first_seen: summary.first,
                last_seen: summary.last,
                last_contact: None,
            });
        if is_event {
            entry.events += summary.count;
        } else {
            entry.interactions += summary.count;
            entry.last_contact = entry.last_contact.max(Some(summary.last));
        }
        entry.first_seen = entry.first_seen.min(summary.first);
        entry.last_seen = entry.last_seen.max(summary.last);
    }
    by_channel.into_values().collect()
}

/// Everything a customer did and said, oldest first: every event, every interaction, and
/// the feedback read from them (by time, then record).
#[derive(Default)]
pub(crate) struct History {
    pub(crate) events: Vec<Event>,
    pub(crate) interactions: Vec<Interaction>,
    pub(crate) feedback: Vec<crate::model::Feedback>,
}

impl History {
    /// `events` and `interactions`, with the feedback given in them.
    pub(crate) fn of(events: Vec<Event>, interactions: Vec<Interaction>) -> Self {
        let mut feedback: Vec<crate::model::Feedback> = events
            .iter()
            .filter_map(|e| crate::model::Feedback::from_event(e).ok().flatten())
            .chain(
                interactions
                    .iter()
                    .filter_map(|i| crate::model::Feedback::from_interaction(i).ok().flatten()),
            )
            .collect();
        feedback.sort_by_key(|f| (f.at, f.record));
        Self {
            events,
            interactions,
            feedback,
        }
    }
}

/// The events of the live profile `customer`, oldest first; none unless `read`.
pub(crate) fn events_oldest_first<S: Reads + ?Sized>(
    reads: &S,
    customer: CustomerId,
    read: bool,
) -> Result<Vec<Event>, StoreError> {
    if !read {
        return Ok(Vec::new());
    }
    let mut events = crate::conversation::all_events(reads, customer)?;
    events.reverse();
    Ok(events)
}

/// The interactions of the live profile `customer`, oldest first; none unless `read`.
pub(crate) fn interactions_oldest_first<S: Reads + ?Sized>(
    reads: &S,
    customer: CustomerId,
    read: bool,
) -> Result<Vec<Interaction>, StoreError> {
    if !read {
        return Ok(Vec::new());
    }
    let mut interactions = crate::conversation::all_interactions(reads, customer)?;
    interactions.reverse();
    Ok(interactions)
}
