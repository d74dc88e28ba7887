//! The storage traits' reads over one state, under its read lock.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{MemoryStore, SCAN_CHUNK, State, Timeline};
use crate::model::{
    AuditRecord, Channel, ConsentRecord, CustomerId, Event, EventId, Identifier, Interaction,
    InteractionId, MembershipChange, MembershipState, MergeRecord, OverrideRecord, Refusal,
    TraitOperation,
};
use crate::store::{
    Attributed, ChannelSummary, EventScan, EventStore, IdentityStore, InteractionStore,
    MAX_PAGE_SIZE, MembershipStore, Owner, Page, PageRequest, PrivacyKey, PrivacyStore,
    ProfileRecord, StoreError, Suppression, TimelineCursor, TraitStore,
};

impl State {
    /// The newest-first page of a profile's items from per-member timelines.
    fn page<T: Clone>(
        &self,
        customer: CustomerId,
        page: PageRequest,
        timelines: &HashMap<CustomerId, Timeline>,
        fetch: impl Fn(Uuid) -> T,
    ) -> Page<T> {
        let Some(members) = self.members(customer) else {
            return Page::empty();
        };
        let upper = match page.cursor() {
            Some(cursor) => Bound::Excluded((cursor.at, cursor.id)),
            None => Bound::Unbounded,
        };
        let mut positions: Vec<(DateTime<Utc>, Uuid)> = members
            .iter()
            .filter_map(|member| timelines.get(member))
            .flat_map(|timeline| {
                timeline
                    .range((Bound::Unbounded, upper))
                    .rev()
                    .take(page.limit() + 1)
                    .copied()
            })
            .collect();
        positions.sort_unstable_by(|a, b| b.cmp(a));
        let more = positions.len() > page.limit();
        positions.truncate(page.limit());
        let next = more.then(|| {
            let &(at, id) = positions.last().expect("a full page is not empty");
            TimelineCursor { at, id }
        });
        Page {
            items: positions.into_iter().map(|(_, id)| fetch(id)).collect(),
            next,
        }
    }
}

fn summarize<'a>(items: impl Iterator<Item = (&'a Channel, DateTime<Utc>)>) -> Vec<ChannelSummary> {
    let mut by_channel: BTreeMap<&Channel, ChannelSummary> = BTreeMap::new();
    for (channel, at) in items {
        let entry = by_channel.entry(channel).or_insert_with(|| ChannelSummary {
            channel: channel.clone(),
            count: 0,
            first: at,
            last: at,
        });
        entry.count += 1;
        entry.first = entry.first.min(at);
        entry.last = entry.last.max(at);
    }
    by_channel.into_values().collect()
}

impl IdentityStore for Frozen<'_> {
    fn owners(&self, identifiers: &[Identifier]) -> Result<Vec<Option<Owner>>, StoreError> {
        let state = self.0;
        Ok(identifiers
            .iter()
            .map(|i| {
                state.owner(i).map(|customer| Owner {
                    customer,
                    created_at: state.profiles[&customer].created_at,
                })
            })
            .collect())
    }

    fn profile(&self, customer: CustomerId) -> Result<Option<ProfileRecord>, StoreError> {
        let state = self.0;
        let Some(live) = state.live(customer) else {
            return Ok(None);
        };
        let row = &state.profiles[&live];
        let identifiers: BTreeSet<&Identifier> = row
            .members
            .iter()
            .flat_map(|member| &state.profiles[member].identifiers)
            .collect();
        Ok(Some(ProfileRecord {
            id: live,
            created_at: row.created_at,
            members: row.members.iter().copied().collect(),
            identifiers: identifiers.into_iter().cloned().collect(),
        }))
    }

    fn merges(&self, customer: CustomerId) -> Result<Vec<MergeRecord>, StoreError> {
        let state = self.0;
        let Some(members) = state.members(customer) else {
            return Ok(Vec::new());
        };
        let mut merges: Vec<MergeRecord> = members
            .iter()
            .filter_map(|m| state.merges.get(m))
            .flatten()
            .cloned()
            .collect();
        merges.sort_by_key(|m| (m.at, m.id));
        Ok(merges)
    }

    fn refusals(&self, customer: CustomerId) -> Result<Vec<Refusal>, StoreError> {
        let state = self.0;
        let Some(members) = state.members(customer) else {
            return Ok(Vec::new());
        };
        let mut refusals: Vec<Refusal> = members
            .iter()
            .filter_map(|m| state.refusals.get(m))
            .flatten()
            .cloned()
            .collect();
        refusals.sort_by(Refusal::order);
        Ok(refusals)
    }

    fn refusals_of(&self, identifiers: &[Identifier]) -> Result<Vec<Refusal>, StoreError> {
        let state = self.0;
        let wanted: BTreeSet<&Identifier> = identifiers.iter().collect();
        let holders: BTreeSet<&CustomerId> = wanted
            .iter()
            .filter_map(|i| state.refusing.get(*i))
            .flatten()
            .collect();
        let mut refusals: Vec<Refusal> = holders
            .into_iter()
            .filter_map(|c| state.refusals.get(c))
            .flatten()
            .filter(|r| wanted.contains(&r.identifier))
            .cloned()
            .collect();
        refusals.sort_by(Refusal::order);
        Ok(refusals)
    }

    fn overrides(&self, identifiers: &[Identifier]) -> Result<Vec<OverrideRecord>, StoreError> {
        let state = self.0;
        let positions: BTreeSet<usize> = identifiers
            .iter()
            .filter_map(|i| state.overrides_naming.get(i))
            .flatten()
            .copied()
            .collect();
        let mut found: Vec<OverrideRecord> = positions
            .into_iter()
            .map(|p| state.overrides[p].clone())
            .collect();
        found.sort_by_key(|o| (o.at, o.id));
        Ok(found)
    }

    fn has_overrides(&self) -> Result<bool, StoreError> {
        Ok(!self.0.overrides.is_empty())
    }

    fn all_overrides(&self) -> Result<Vec<OverrideRecord>, StoreError> {
        let mut all = self.0.overrides.clone();
        all.sort_by_key(|o| (o.at, o.id));
        Ok(all)
    }

    fn standing_overrides(&self) -> Result<Vec<OverrideRecord>, StoreError> {
        let mut found: Vec<OverrideRecord> = self
            .0
            .overrides
            .iter()
            .filter(|o| o.standing().is_some())
            .cloned()
            .collect();
        found.sort_by_key(|o| (o.at, o.id));
        Ok(found)
    }

    fn customers(
        &self,
        after: Option<CustomerId>,
        limit: usize,
    ) -> Result<Vec<CustomerId>, StoreError> {
        let state = self.0;
        let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
        Ok(state
            .profiles
            .range((lower, Bound::Unbounded))
            .filter(|(_, row)| row.merged_into.is_none())
            .map(|(&id, _)| id)
            .take(limit)
            .collect())
    }
}

impl EventStore for Frozen<'_> {
    fn event(&self, id: EventId) -> Result<Option<Attributed<Event>>, StoreError> {
        let state = self.0;
        Ok(state.events.get(&id).map(|(customer, event)| Attributed {
            customer: state.live(*customer).unwrap_or(*customer),
            record: event.clone(),
        }))
    }

    fn events(&self, customer: CustomerId, page: PageRequest) -> Result<Page<Event>, StoreError> {
        let state = self.0;
        Ok(state.page(customer, page, &state.event_timelines, |id| {
            state.events[&EventId::from_uuid(id)].1.clone()
        }))
    }

    fn event_summary(&self, customer: CustomerId) -> Result<Vec<ChannelSummary>, StoreError> {
        let state = self.0;
        let Some(members) = state.members(customer) else {
            return Ok(Vec::new());
        };
        let items = members
            .iter()
            .filter_map(|m| state.event_timelines.get(m))
            .flatten()
            .map(|(at, id)| (&state.events[&EventId::from_uuid(*id)].1.channel, *at));
        Ok(summarize(items))
    }

    fn events_bound(&self) -> Result<Option<TimelineCursor>, StoreError> {
        Ok(self.0.event_order.last().map(|&(at, id)| TimelineCursor {
            at,
            id: *id.as_uuid(),
        }))
    }

    fn scan_events(&self) -> EventScan<'_> {
        let state = self.0;
        Box::new(state.event_order.iter().map(move |(_, id)| {
            let (customer, event) = &state.events[id];
            Ok(Attributed {
                customer: state.live(*customer).unwrap_or(*customer),
                record: event.clone(),
            })
        }))
    }
}

/// Reads the event log in chunks, taking the lock once per chunk.
pub(super) struct Scan<'a> {
    store: &'a MemoryStore,
    after: Option<(DateTime<Utc>, EventId)>,
    buffer: std::vec::IntoIter<Attributed<Event>>,
    done: bool,
}

impl<'a> Scan<'a> {
    /// A scan of every event of `store`, oldest first.
    pub(super) fn new(store: &'a MemoryStore) -> Self {
        Self {
            store,
            after: None,
            buffer: Vec::new().into_iter(),
            done: false,
        }
    }
}

impl Iterator for Scan<'_> {
    type Item = Result<Attributed<Event>, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(item) = self.buffer.next() {
            return Some(Ok(item));
        }
        if self.done {
            return None;
        }
        let state = match self.store.read() {
            Ok(state) => state,
            Err(err) => {
                self.done = true;
                return Some(Err(err));
            }
        };
        let lower = self.after.map_or(Bound::Unbounded, Bound::Excluded);
        let chunk: Vec<Attributed<Event>> = state
            .event_order
            .range((lower, Bound::Unbounded))
            .take(SCAN_CHUNK)
            .map(|(_, id)| {
                let (customer, event) = &state.events[id];
                Attributed {
                    customer: state.live(*customer).unwrap_or(*customer),
                    record: event.clone(),
                }
            })
            .collect();
        drop(state);
        self.done = chunk.len() < SCAN_CHUNK;
        self.after = chunk.last().map(|e| (e.record.occurred_at, e.record.id));
        self.buffer = chunk.into_iter();
        self.buffer.next().map(Ok)
    }
}

impl InteractionStore for Frozen<'_> {
    fn interaction(
        &self,
        id: InteractionId,
    ) -> Result<Option<Attributed<Interaction>>, StoreError> {
        let state = self.0;
        Ok(state
            .interactions
            .get(&id)
            .map(|(customer, record)| Attributed {
                customer: state.live(*customer).unwrap_or(*customer),
                record: record.clone(),
            }))
    }

    fn interactions(
        &self,
        customer: CustomerId,
        page: PageRequest,
    ) -> Result<Page<Interaction>, StoreError> {
        let state = self.0;
        Ok(
            state.page(customer, page, &state.interaction_timelines, |id| {
                state.interactions[&InteractionId::from_uuid(id)].1.clone()
            }),
        )
    }

    fn has_interactions(&self) -> Result<bool, StoreError> {
        Ok(!self.0.interactions.is_empty())
    }

    fn interactions_bound(&self) -> Result<Option<TimelineCursor>, StoreError> {
        Ok(self.0.interactions_bound)
    }

    fn interaction_summary(&self, customer: CustomerId) -> Result<Vec<ChannelSummary>, StoreError> {
        let state = self.0;
        let Some(members) = state.members(customer) else {
            return Ok(Vec::new());
        };
        let items = members
            .iter()
            .filter_map(|m| state.interaction_timelines.get(m))
            .flatten()
            .map(|(at, id)| {
                let (_, interaction) = &state.interactions[&InteractionId::from_uuid(*id)];
                (&interaction.channel, *at)
            });
        Ok(summarize(items))
    }
}

impl TraitStore for Frozen<'_> {
    fn trait_operations(&self, customer: CustomerId) -> Result<Vec<TraitOperation>, StoreError> {
        let state = self.0;
        let Some(members) = state.members(customer) else {
            return Ok(Vec::new());
        };
        Ok(members
            .iter()
            .filter_map(|m| state.traits.get(m))
            .flatten()
            .cloned()
            .collect())
    }
}

impl PrivacyStore for Frozen<'_> {
    fn consent(&self, customer: CustomerId) -> Result<Vec<Attributed<ConsentRecord>>, StoreError> {
        let state = self.0;
        let Some(members) = state.members(customer) else {
            return Ok(Vec::new());
        };
        Ok(members
            .iter()
            .flat_map(|&member| {
                state
                    .consent
                    .get(&member)
                    .into_iter()
                    .flatten()
                    .map(move |record| Attributed {
                        customer: member,
                        record: record.clone(),
                    })
            })
            .collect())
    }

    fn suppressed(&self, hashes: &[String]) -> Result<Vec<Option<Suppression>>, StoreError> {
        Ok(hashes
            .iter()
            .map(|hash| self.0.suppressions.get(hash).cloned())
            .collect())
    }

    fn suppressions(&self) -> Result<Vec<Suppression>, StoreError> {
        let mut all: Vec<Suppression> = self.0.suppressions.values().cloned().collect();
        all.sort_by(|a, b| (a.at, &a.hash).cmp(&(b.at, &b.hash)));
        Ok(all)
    }

    fn has_suppressions(&self) -> Result<bool, StoreError> {
        Ok(!self.0.suppressions.is_empty())
    }

    fn privacy_key(&self) -> Result<Option<PrivacyKey>, StoreError> {
        Ok(self.0.privacy_key.clone())
    }

    fn audit(
        &self,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let mut records: Vec<AuditRecord> = self
            .0
            .audit
            .iter()
            .filter(|r| from.is_none_or(|from| r.at >= from) && to.is_none_or(|to| r.at < to))
            .cloned()
            .collect();
        records.sort_by_key(|r| (r.at, r.id));
        Ok(records)
    }
}

/// The state under a read lock: every read through it sees the same state.
#[derive(Debug)]
pub(super) struct Frozen<'a>(pub(super) &'a State);

impl MembershipStore for Frozen<'_> {
    fn membership(&self, customer: CustomerId) -> Result<MembershipState, StoreError> {
        Ok(self
            .0
            .membership
            .get(&customer)
            .cloned()
            .unwrap_or_default())
    }

    fn segment_members(
        &self,
        segment: &str,
        after: Option<CustomerId>,
        limit: usize,
    ) -> Result<Vec<CustomerId>, StoreError> {
        let lower = match after {
            Some(after) => Bound::Excluded((segment.to_owned(), after)),
            None => Bound::Included((segment.to_owned(), CustomerId::from_uuid(Uuid::nil()))),
        };
        Ok(self
            .0
            .segment_members
            .range((lower, Bound::Unbounded))
            .take_while(|(s, _)| s == segment)
            .map(|&(_, customer)| customer)
            .take(limit.clamp(1, MAX_PAGE_SIZE))
            .collect())
    }

    fn membership_changes(
        &self,
        customer: CustomerId,
        page: PageRequest,
    ) -> Result<Page<MembershipChange>, StoreError> {
        let Some(changes) = self.0.membership_changes.get(&customer) else {
            return Ok(Page::empty());
        };
        let upper = page.cursor().map_or(Bound::Unbounded, Bound::Excluded);
        let items: Vec<MembershipChange> = changes
            .range((Bound::Unbounded, upper))
            .rev()
            .take(page.limit() + 1)
            .map(|(_, change)| change.clone())
            .collect();
        Ok(Page::from_one_more(items, page.limit(), |c| {
            TimelineCursor { at: c.at, id: c.id }
        }))
    }

    fn due_for_recheck(
        &self,
        as_of: DateTime<Utc>,
        after: Option<CustomerId>,
        limit: usize,
    ) -> Result<Vec<CustomerId>, StoreError> {
        let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
        Ok(self
            .0
            .membership
            .range((lower, Bound::Unbounded))
            .filter(|(_, state)| state.recheck_at.is_some_and(|at| at <= as_of))
            .map(|(&customer, _)| customer)
            .take(limit.clamp(1, MAX_PAGE_SIZE))
            .collect())
    }
}
