//! A complete backend held in memory: for tests, for short-lived processes, and as the
//! reference that other backends are compared with.

mod read;
mod write;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{
    Attributed, ChannelSummary, Commit, CommitOutcome, CommitProblem, EventScan, EventStore,
    IdentityStore, InteractionStore, MembershipStore, Owner, Page, PageRequest, PrivacyKey,
    PrivacyStore, ProfileRecord, Reads, Store, StoreError, Suppression, TimelineCursor, TraitStore,
};
use crate::model::{
    AuditRecord, ConsentRecord, CustomerId, Event, EventId, Identifier, Interaction, InteractionId,
    MembershipChange, MembershipState, MergeRecord, OverrideRecord, Refusal, TraitOperation,
};
use read::{Frozen, Scan};

/// How many events a scan reads under one lock.
const SCAN_CHUNK: usize = 512;

/// A [`Store`] held in memory. Cheap to create; everything is lost when it is dropped.
///
/// ```
/// use oneview::{Customers, MemoryStore};
/// let customers = Customers::new(MemoryStore::new());
/// # let _ = customers;
/// ```
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: RwLock<State>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> Result<RwLockReadGuard<'_, State>, StoreError> {
        self.state.read().map_err(poisoned)
    }

    fn write(&self) -> Result<RwLockWriteGuard<'_, State>, StoreError> {
        self.state.write().map_err(poisoned)
    }
}

fn poisoned<T>(_: PoisonError<T>) -> StoreError {
    StoreError::Backend {
        backend: "memory",
        source: "a thread panicked while writing; the store may be inconsistent".into(),
    }
}

#[derive(Clone, Debug)]
struct ProfileRow {
    created_at: DateTime<Utc>,
    /// The live profile this one was merged into; kept flat (never a merged profile).
    merged_into: Option<CustomerId>,
    /// For a live profile: every id resolving to it, itself included. Empty once merged.
    members: BTreeSet<CustomerId>,
    /// Identifiers attached to this profile itself.
    identifiers: BTreeSet<Identifier>,
}

type Timeline = BTreeSet<(DateTime<Utc>, Uuid)>;

#[derive(Clone, Debug, Default)]
struct State {
    profiles: BTreeMap<CustomerId, ProfileRow>,
    owners: HashMap<Identifier, CustomerId>,
    /// Merge records by the profile they absorbed.
    merges: HashMap<CustomerId, Vec<MergeRecord>>,
    events: HashMap<EventId, (CustomerId, Event)>,
    event_order: BTreeSet<(DateTime<Utc>, EventId)>,
    event_timelines: HashMap<CustomerId, Timeline>,
    interactions: HashMap<InteractionId, (CustomerId, Interaction)>,
    interaction_timelines: HashMap<CustomerId, Timeline>,
    /// No interaction stored sorts after it. It only grows: an undone or updated
    /// interaction may leave it later than the newest, which a bound allows.
    interactions_bound: Option<TimelineCursor>,
    traits: HashMap<CustomerId, Vec<TraitOperation>>,
    /// Refused links by the profile their evidence went to.
    refusals: HashMap<CustomerId, Vec<Refusal>>,
    /// The profiles that hold (or once held) refusals of each identifier: a superset,
    /// so reads by identifier need not scan every refusal.
    refusing: HashMap<Identifier, HashSet<CustomerId>>,
    overrides: Vec<OverrideRecord>,
    /// Positions in `overrides` of the records naming each identifier.
    overrides_naming: HashMap<Identifier, Vec<usize>>,
    /// Consent decisions by the profile they are recorded on.
    consent: HashMap<CustomerId, Vec<ConsentRecord>>,
    /// The suppression list, by hash.
    suppressions: HashMap<String, Suppression>,
    privacy_key: Option<PrivacyKey>,
    audit: Vec<AuditRecord>,
    /// Segment membership by profile.
    membership: BTreeMap<CustomerId, MembershipState>,
    /// Every profile in each segment.
    segment_members: BTreeSet<(String, CustomerId)>,
    /// Membership changes by profile, by timeline position.
    membership_changes: HashMap<CustomerId, BTreeMap<TimelineCursor, MembershipChange>>,
}

impl State {
    fn live(&self, customer: CustomerId) -> Option<CustomerId> {
        let row = self.profiles.get(&customer)?;
        Some(row.merged_into.unwrap_or(customer))
    }

    fn owner(&self, identifier: &Identifier) -> Option<CustomerId> {
        self.owners.get(identifier).and_then(|&c| self.live(c))
    }

    fn members(&self, customer: CustomerId) -> Option<&BTreeSet<CustomerId>> {
        let live = self.live(customer)?;
        Some(&self.profiles[&live].members)
    }
}

/// A failure inside one commit, before it is tagged with the commit's position.
enum Fault {
    Conflict(CommitProblem),
    Invalid(CommitProblem),
}

impl From<crate::store::expect::Refused> for Fault {
    fn from(refused: crate::store::expect::Refused) -> Self {
        match refused {
            crate::store::expect::Refused::Stale(problem) => Self::Conflict(problem),
            crate::store::expect::Refused::Invalid(problem) => Self::Invalid(problem),
        }
    }
}

impl IdentityStore for MemoryStore {
    fn owners(&self, identifiers: &[Identifier]) -> Result<Vec<Option<Owner>>, StoreError> {
        Frozen(&*self.read()?).owners(identifiers)
    }
    fn profile(&self, customer: CustomerId) -> Result<Option<ProfileRecord>, StoreError> {
        Frozen(&*self.read()?).profile(customer)
    }
    fn merges(&self, customer: CustomerId) -> Result<Vec<MergeRecord>, StoreError> {
        Frozen(&*self.read()?).merges(customer)
    }
    fn refusals(&self, customer: CustomerId) -> Result<Vec<Refusal>, StoreError> {
        Frozen(&*self.read()?).refusals(customer)
    }
    fn refusals_of(&self, identifiers: &[Identifier]) -> Result<Vec<Refusal>, StoreError> {
        Frozen(&*self.read()?).refusals_of(identifiers)
    }
    fn overrides(&self, identifiers: &[Identifier]) -> Result<Vec<OverrideRecord>, StoreError> {
        Frozen(&*self.read()?).overrides(identifiers)
    }
    fn standing_overrides(&self) -> Result<Vec<OverrideRecord>, StoreError> {
        Frozen(&*self.read()?).standing_overrides()
    }
    fn all_overrides(&self) -> Result<Vec<OverrideRecord>, StoreError> {
        Frozen(&*self.read()?).all_overrides()
    }
    fn has_overrides(&self) -> Result<bool, StoreError> {
        Frozen(&*self.read()?).has_overrides()
    }
    fn customers(
        &self,
        after: Option<CustomerId>,
        limit: usize,
    ) -> Result<Vec<CustomerId>, StoreError> {
        Frozen(&*self.read()?).customers(after, limit)
    }
}

impl EventStore for MemoryStore {
    fn event(&self, id: EventId) -> Result<Option<Attributed<Event>>, StoreError> {
        Frozen(&*self.read()?).event(id)
    }
    fn events(&self, customer: CustomerId, page: PageRequest) -> Result<Page<Event>, StoreError> {
        Frozen(&*self.read()?).events(customer, page)
    }
    fn event_summary(&self, customer: CustomerId) -> Result<Vec<ChannelSummary>, StoreError> {
        Frozen(&*self.read()?).event_summary(customer)
    }
    fn events_bound(&self) -> Result<Option<TimelineCursor>, StoreError> {
        Frozen(&*self.read()?).events_bound()
    }
    fn scan_events(&self) -> EventScan<'_> {
        Box::new(Scan::new(self))
    }
}

impl InteractionStore for MemoryStore {
    fn interaction(
        &self,
        id: InteractionId,
    ) -> Result<Option<Attributed<Interaction>>, StoreError> {
        Frozen(&*self.read()?).interaction(id)
    }
    fn interactions(
        &self,
        customer: CustomerId,
        page: PageRequest,
    ) -> Result<Page<Interaction>, StoreError> {
        Frozen(&*self.read()?).interactions(customer, page)
    }
    fn interaction_summary(&self, customer: CustomerId) -> Result<Vec<ChannelSummary>, StoreError> {
        Frozen(&*self.read()?).interaction_summary(customer)
    }
    fn has_interactions(&self) -> Result<bool, StoreError> {
        Frozen(&*self.read()?).has_interactions()
    }
    fn interactions_bound(&self) -> Result<Option<TimelineCursor>, StoreError> {
        Frozen(&*self.read()?).interactions_bound()
    }
}

impl TraitStore for MemoryStore {
    fn trait_operations(&self, customer: CustomerId) -> Result<Vec<TraitOperation>, StoreError> {
        Frozen(&*self.read()?).trait_operations(customer)
    }
}

impl PrivacyStore for MemoryStore {
    fn consent(&self, customer: CustomerId) -> Result<Vec<Attributed<ConsentRecord>>, StoreError> {
        Frozen(&*self.read()?).consent(customer)
    }
    fn suppressed(&self, hashes: &[String]) -> Result<Vec<Option<Suppression>>, StoreError> {
        Frozen(&*self.read()?).suppressed(hashes)
    }
    fn suppressions(&self) -> Result<Vec<Suppression>, StoreError> {
        Frozen(&*self.read()?).suppressions()
    }
    fn has_suppressions(&self) -> Result<bool, StoreError> {
        Frozen(&*self.read()?).has_suppressions()
    }
    fn privacy_key(&self) -> Result<Option<PrivacyKey>, StoreError> {
        Frozen(&*self.read()?).privacy_key()
    }
    fn audit(
        &self,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        Frozen(&*self.read()?).audit(from, to)
    }
}

impl MembershipStore for MemoryStore {
    fn membership(&self, customer: CustomerId) -> Result<MembershipState, StoreError> {
        Frozen(&*self.read()?).membership(customer)
    }
    fn segment_members(
        &self,
        segment: &str,
        after: Option<CustomerId>,
        limit: usize,
    ) -> Result<Vec<CustomerId>, StoreError> {
        Frozen(&*self.read()?).segment_members(segment, after, limit)
    }
    fn membership_changes(
        &self,
        customer: CustomerId,
        page: PageRequest,
    ) -> Result<Page<MembershipChange>, StoreError> {
        Frozen(&*self.read()?).membership_changes(customer, page)
    }
    fn due_for_recheck(
        &self,
        as_of: DateTime<Utc>,
        after: Option<CustomerId>,
        limit: usize,
    ) -> Result<Vec<CustomerId>, StoreError> {
        Frozen(&*self.read()?).due_for_recheck(as_of, after, limit)
    }
}

impl Store for MemoryStore {
    fn snapshot(
        &self,
        reads: &mut dyn FnMut(&dyn Reads) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        reads(&Frozen(&*self.read()?))
    }

    fn apply(&self, commits: &[Commit]) -> Result<Vec<CommitOutcome>, StoreError> {
        let mut state = self.write()?;
        let mut undo = Vec::new();
        let mut outcomes = Vec::with_capacity(commits.len());
        for (index, commit) in commits.iter().enumerate() {
            match state.apply(commit, &mut undo) {
                Ok(outcome) => outcomes.push(outcome),
                Err(fault) => {
                    while let Some(step) = undo.pop() {
                        state.undo(step);
                    }
                    return Err(match fault {
                        Fault::Conflict(problem) => StoreError::Conflict {
                            commit: index,
                            problem,
                        },
                        Fault::Invalid(problem) => StoreError::InvalidCommit {
                            commit: index,
                            problem,
                        },
                    });
                }
            }
        }
        Ok(outcomes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::conformance;

    #[test]
    fn memory_store_keeps_the_contract() {
        conformance::run_all(MemoryStore::new);
    }

    #[test]
    fn boxed_memory_store_keeps_the_contract() {
        conformance::run_all(|| Box::new(MemoryStore::new()) as Box<dyn Store>);
    }
}
