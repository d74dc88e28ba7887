//! Applying commits to the state, and taking them back when a batch fails.

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};

use super::{Fault, ProfileRow, State, Timeline};
use crate::model::{
    ConsentRecord, CustomerId, EventId, Identifier, Interaction, InteractionId, MembershipState,
    MergeRecord, OverrideId, Refusal, TraitOperation,
};
use crate::store::{
    Attributed, Commit, CommitOutcome, CommitProblem, Erasure, IdentityChange, MembershipUpdate,
    Redacted, Rewrite, Suppression, TimelineCursor, expect,
};

/// How to take back one applied change.
pub(super) enum Undo {
    CreateProfile(CustomerId),
    Attach(Identifier, CustomerId),
    Merge {
        survivor: CustomerId,
        absorbed: CustomerId,
        moved: BTreeSet<CustomerId>,
    },
    AppendEvent(EventId),
    PutInteraction(InteractionId, Option<Box<(CustomerId, Interaction)>>),
    AppendTrait(CustomerId),
    AppendConsent(CustomerId),
    AppendAudit,
    Refuse(CustomerId),
    Override,
    Lift(Box<Suppression>),
    Suppress(String, Option<Box<Suppression>>),
    SetPrivacyKey,
    /// An erasure touches every index of the state: it is taken back from a copy of the
    /// whole state. Erasures are rare, so the copy costs little over a store's life.
    Whole(Box<State>),
    /// A redaction: the records it replaced, and the overrides it added.
    Redact(Vec<Redacted>, Vec<OverrideId>),
    /// A rewrite: the parts of the state it touches, as they were before it.
    Rewrite(Box<Saved>),
    /// A membership update: the profile's state before it (`None`: none stored), and the
    /// positions of the changes it recorded.
    Membership(CustomerId, Option<MembershipState>, Vec<TimelineCursor>),
}

/// The parts of the state one rewrite touches, as they were before it; `None` where there
/// was nothing.
pub(super) struct Saved {
    profiles: Vec<(CustomerId, Option<ProfileRow>)>,
    owners: Vec<(Identifier, Option<CustomerId>)>,
    events: Vec<(EventId, CustomerId)>,
    event_timelines: Vec<(CustomerId, Option<Timeline>)>,
    traits: Vec<(CustomerId, Option<Vec<TraitOperation>>)>,
    consent: Vec<(CustomerId, Option<Vec<ConsentRecord>>)>,
    interactions: Vec<(InteractionId, CustomerId)>,
    interaction_timelines: Vec<(CustomerId, Option<Timeline>)>,
    /// The merges and refusals kept under each profile it names or records them under,
    /// which it replaces.
    merges: Vec<(CustomerId, Option<Vec<MergeRecord>>)>,
    refusals: Vec<(CustomerId, Option<Vec<Refusal>>)>,
}

impl State {
    fn require_profile(&self, customer: CustomerId) -> Result<(), Fault> {
        if self.profiles.contains_key(&customer) {
            Ok(())
        } else {
            Err(Fault::Invalid(CommitProblem::UnknownCustomer(customer)))
        }
    }

    /// Applies one commit, logging how to undo each change; on error the caller undoes.
    pub(super) fn apply(
        &mut self,
        commit: &Commit,
        undo: &mut Vec<Undo>,
    ) -> Result<CommitOutcome, Fault> {
        if let Some(event) = &commit.event
            && self.events.contains_key(&event.record.id)
        {
            return Ok(CommitOutcome::Duplicate);
        }
        for expectation in &commit.expect {
            let Ok(unmet) = expect::unmet(&mut &*self, expectation);
            if let Some(problem) = unmet {
                return Err(Fault::Conflict(problem));
            }
        }
        for change in &commit.identity {
            self.change(change, undo)?;
        }
        if let Some(Attributed { customer, record }) = &commit.event {
            self.require_profile(*customer)?;
            self.events.insert(record.id, (*customer, record.clone()));
            self.event_order.insert((record.occurred_at, record.id));
            self.event_timelines
                .entry(*customer)
                .or_default()
                .insert((record.occurred_at, *record.id.as_uuid()));
            undo.push(Undo::AppendEvent(record.id));
        }
        if let Some(Attributed { customer, record }) = &commit.interaction {
            self.require_profile(*customer)?;
            let previous = self.interactions.remove(&record.id);
            if let Some((old_customer, old)) = &previous {
                self.interaction_timelines
                    .get_mut(old_customer)
                    .map(|t| t.remove(&(old.occurred_at, *old.id.as_uuid())));
            }
            self.interaction_timelines
                .entry(*customer)
                .or_default()
                .insert((record.occurred_at, *record.id.as_uuid()));
            self.interactions
                .insert(record.id, (*customer, record.clone()));
            let position = TimelineCursor {
                at: record.occurred_at,
                id: *record.id.as_uuid(),
            };
            self.interactions_bound = self.interactions_bound.max(Some(position));
            undo.push(Undo::PutInteraction(record.id, previous.map(Box::new)));
        }
        for Attributed { customer, record } in &commit.traits {
            self.require_profile(*customer)?;
            self.traits
                .entry(*customer)
                .or_default()
                .push(record.clone());
            undo.push(Undo::AppendTrait(*customer));
        }
        for Attributed { customer, record } in &commit.consent {
            self.require_profile(*customer)?;
            self.consent
                .entry(*customer)
                .or_default()
                .push(record.clone());
            undo.push(Undo::AppendConsent(*customer));
        }
        for record in &commit.audit {
            self.audit.push(record.clone());
            undo.push(Undo::AppendAudit);
        }
        for update in &commit.membership {
            self.update_membership(update, undo)?;
        }
        Ok(CommitOutcome::Applied)
    }

    fn update_membership(
        &mut self,
        update: &MembershipUpdate,
        undo: &mut Vec<Undo>,
    ) -> Result<(), Fault> {
        let customer = update.customer;
        self.require_profile(customer)?;
        let previous = self.membership.get(&customer).cloned();
        let stored = previous.clone().unwrap_or_default();
        let memberships = expect::membership_after(update, stored.version, stored.memberships)?;
        let state = MembershipState {
            version: stored.version + 1,
            memberships,
            recheck_at: update.recheck_at,
            digest: update.digest.clone(),
        };
        let mut positions = Vec::with_capacity(update.changes.len());
        let log = self.membership_changes.entry(customer).or_default();
        for change in &update.changes {
            let position = TimelineCursor {
                at: change.at,
                id: change.id,
            };
            log.insert(position, change.clone());
            positions.push(position);
        }
        self.index_membership(customer, previous.as_ref(), Some(&state));
        self.membership.insert(customer, state);
        undo.push(Undo::Membership(customer, previous, positions));
        Ok(())
    }

    /// Moves `customer` in the per-segment index from the segments of `before` to those
    /// of `after`.
    fn index_membership(
        &mut self,
        customer: CustomerId,
        before: Option<&MembershipState>,
        after: Option<&MembershipState>,
    ) {
        for membership in before.into_iter().flat_map(|s| &s.memberships) {
            self.segment_members
                .remove(&(membership.segment.clone(), customer));
        }
        for membership in after.into_iter().flat_map(|s| &s.memberships) {
            self.segment_members
                .insert((membership.segment.clone(), customer));
        }
    }

    fn change(&mut self, change: &IdentityChange, undo: &mut Vec<Undo>) -> Result<(), Fault> {
        match change {
            IdentityChange::CreateProfile { id, created_at } => {
                if self.profiles.contains_key(id) {
                    return Err(Fault::Invalid(CommitProblem::CustomerExists(*id)));
                }
                let row = ProfileRow {
                    created_at: *created_at,
                    merged_into: None,
                    members: BTreeSet::from([*id]),
                    identifiers: BTreeSet::new(),
                };
                self.profiles.insert(*id, row);
                undo.push(Undo::CreateProfile(*id));
            }
            IdentityChange::Attach {
                identifier,
                customer,
            } => {
                if let Some(owner) = self.owner(identifier) {
                    return Err(Fault::Conflict(CommitProblem::AlreadyOwned {
                        identifier: identifier.clone(),
                        owner,
                    }));
                }
                let row = self
                    .profiles
                    .get_mut(customer)
                    .ok_or(Fault::Invalid(CommitProblem::UnknownCustomer(*customer)))?;
                row.identifiers.insert(identifier.clone());
                self.owners.insert(identifier.clone(), *customer);
                undo.push(Undo::Attach(identifier.clone(), *customer));
            }
            IdentityChange::Merge(record) => {
                let (survivor, absorbed) = (record.survivor, record.absorbed);
                if survivor == absorbed {
                    return Err(Fault::Invalid(CommitProblem::SelfMerge(survivor)));
                }
                for customer in [survivor, absorbed] {
                    match self.live(customer) {
                        None => {
                            return Err(Fault::Invalid(CommitProblem::UnknownCustomer(customer)));
                        }
                        Some(live) if live != customer => {
                            return Err(Fault::Invalid(CommitProblem::NotLive(customer)));
                        }
                        Some(_) => {}
                    }
                }
                let moved =
                    std::mem::take(&mut self.profiles.get_mut(&absorbed).expect("checked").members);
                for member in &moved {
                    self.profiles
                        .get_mut(member)
                        .expect("members exist")
                        .merged_into = Some(survivor);
                }
                let survivor_row = self.profiles.get_mut(&survivor).expect("checked");
                survivor_row.members.extend(moved.iter().copied());
                self.merges
                    .entry(absorbed)
                    .or_default()
                    .push(record.clone());
                undo.push(Undo::Merge {
                    survivor,
                    absorbed,
                    moved,
                });
            }
            IdentityChange::Refuse(refusal) => {
                self.require_profile(refusal.customer)?;
                self.refuse(refusal);
                undo.push(Undo::Refuse(refusal.customer));
            }
            IdentityChange::Override(record) => {
                for identifier in record.identifiers() {
                    self.overrides_naming
                        .entry(identifier.clone())
                        .or_default()
                        .push(self.overrides.len());
                }
                self.overrides.push(record.clone());
                undo.push(Undo::Override);
            }
            IdentityChange::Rewrite(rewrite) => {
                // Saved whole before anything changes, so a failure anywhere in the batch
                // puts back exactly what the rewrite touched.
                undo.push(Undo::Rewrite(Box::new(self.save(rewrite))));
                self.rewrite(rewrite)?;
            }
            IdentityChange::Erase(erasure) => {
                match self.live(erasure.customer) {
                    None => {
                        return Err(Fault::Invalid(CommitProblem::UnknownCustomer(
                            erasure.customer,
                        )));
                    }
                    Some(live) if live != erasure.customer => {
                        return Err(Fault::Invalid(CommitProblem::NotLive(erasure.customer)));
                    }
                    Some(_) => {}
                }
                undo.push(Undo::Whole(Box::new(self.clone())));
                self.erase(erasure);
            }
            IdentityChange::Redact(redacted) => {
                let (previous, added) = self.redact(redacted);
                undo.push(Undo::Redact(previous, added));
            }
            IdentityChange::Suppress(suppression) => {
                let previous = self
                    .suppressions
                    .insert(suppression.hash.clone(), suppression.clone());
                undo.push(Undo::Suppress(
                    suppression.hash.clone(),
                    previous.map(Box::new),
                ));
            }
            IdentityChange::Lift { hash } => {
                if let Some(lifted) = self.suppressions.remove(hash) {
                    undo.push(Undo::Lift(Box::new(lifted)));
                }
            }
            IdentityChange::SetPrivacyKey(key) => {
                if self.privacy_key.is_some() {
                    return Err(Fault::Conflict(CommitProblem::KeyExists));
                }
                self.privacy_key = Some(key.clone());
                undo.push(Undo::SetPrivacyKey);
            }
        }
        Ok(())
    }

    /// Removes the live profile `erasure.customer`, its members and everything attributed
    /// to them, and what names its identifiers anywhere; adds the suppressions.
    fn erase(&mut self, erasure: &Erasure) {
        let members = self.profiles[&erasure.customer].members.clone();
        for member in &members {
            if let Some(row) = self.profiles.remove(member) {
                for identifier in row.identifiers {
                    self.owners.remove(&identifier);
                }
            }
            for (at, id) in self.event_timelines.remove(member).unwrap_or_default() {
                let id = EventId::from_uuid(id);
                self.events.remove(&id);
                self.event_order.remove(&(at, id));
            }
            for (_, id) in self
                .interaction_timelines
                .remove(member)
                .unwrap_or_default()
            {
                self.interactions.remove(&InteractionId::from_uuid(id));
            }
            self.traits.remove(member);
            self.consent.remove(member);
            self.merges.remove(member);
            self.refusals.remove(member);
            let membership = self.membership.remove(member);
            self.index_membership(*member, membership.as_ref(), None);
            self.membership_changes.remove(member);
        }
        let named: HashSet<&Identifier> = erasure.identifiers.iter().collect();
        for identifier in &erasure.identifiers {
            for holder in self.refusing.remove(identifier).unwrap_or_default() {
                if let Some(refusals) = self.refusals.get_mut(&holder) {
                    refusals.retain(|r| r.identifier != *identifier);
                }
            }
        }
        for holders in self.refusing.values_mut() {
            holders.retain(|h| !members.contains(h));
        }
        self.refusing.retain(|_, holders| !holders.is_empty());
        self.overrides
            .retain(|o| !o.identifiers().iter().any(|i| named.contains(i)));
        for suppression in &erasure.suppress {
            self.suppressions
                .insert(suppression.hash.clone(), suppression.clone());
        }
        // The whole state was saved for the undo: what the redaction replaced is not needed.
        self.redact(&erasure.redacted);
        self.reindex_overrides();
    }

    /// Replaces the content of stored records (and overrides, by id) with `redacted`, and
    /// returns what it replaced, as the redaction that takes it back, with the ids of
    /// overrides it added.
    fn redact(&mut self, redacted: &[Redacted]) -> (Vec<Redacted>, Vec<OverrideId>) {
        let mut previous = Vec::new();
        let mut added = Vec::new();
        for redacted in redacted {
            match redacted {
                Redacted::Event(event) => {
                    if let Some((_, stored)) = self.events.get_mut(&event.id) {
                        previous.push(Redacted::Event(std::mem::replace(stored, event.clone())));
                    }
                }
                Redacted::Interaction(interaction) => {
                    if let Some((_, stored)) = self.interactions.get_mut(&interaction.id) {
                        let old = std::mem::replace(stored, interaction.clone());
                        previous.push(Redacted::Interaction(old));
                    }
                }
                Redacted::Override(record) => {
                    match self.overrides.iter_mut().find(|o| o.id == record.id) {
                        Some(stored) => previous.push(Redacted::Override(std::mem::replace(
                            stored,
                            record.clone(),
                        ))),
                        None => {
                            self.overrides.push(record.clone());
                            added.push(record.id);
                        }
                    }
                }
            }
        }
        if redacted.iter().any(|r| matches!(r, Redacted::Override(_))) {
            self.reindex_overrides();
        }
        (previous, added)
    }

    /// Orders the overrides (`at`, then id) and rebuilds the index by identifier.
    fn reindex_overrides(&mut self) {
        self.overrides.sort_by_key(|o| (o.at, o.id));
        self.overrides_naming.clear();
        for (position, record) in self.overrides.iter().enumerate() {
            for identifier in record.identifiers() {
                self.overrides_naming
                    .entry(identifier)
                    .or_default()
                    .push(position);
            }
        }
    }

    /// Copies what `rewrite` can change: the rows of the profiles it names, of the live
    /// profiles they belong to and all their members, of the identifiers' owners old and
    /// new; the records it moves with the timelines and trait operations of both ends.
    fn save(&self, rewrite: &Rewrite) -> Saved {
        let named: HashSet<CustomerId> = rewrite.profiles.iter().map(|p| p.id).collect();
        let mut profiles: BTreeSet<CustomerId> = BTreeSet::new();
        for state in &rewrite.profiles {
            profiles.extend([state.id, state.live]);
            if let Some(live) = self.live(state.id) {
                profiles.insert(live);
                profiles.extend(self.profiles[&live].members.iter().copied());
            }
        }
        for (identifier, owner) in &rewrite.identifiers {
            profiles.extend(self.owners.get(identifier).copied());
            profiles.extend(*owner);
        }
        let mut record_ends: BTreeSet<CustomerId> = BTreeSet::new();
        let events: Vec<(EventId, CustomerId)> = rewrite
            .events
            .iter()
            .filter_map(|&(id, to)| {
                let &(from, _) = self.events.get(&id)?;
                record_ends.extend([from, to]);
                Some((id, from))
            })
            .collect();
        let interactions: Vec<(InteractionId, CustomerId)> = rewrite
            .interactions
            .iter()
            .filter_map(|&(id, to)| {
                let &(from, _) = self.interactions.get(&id)?;
                record_ends.extend([from, to]);
                Some((id, from))
            })
            .collect();
        Saved {
            profiles: profiles
                .into_iter()
                .map(|id| (id, self.profiles.get(&id).cloned()))
                .collect(),
            owners: rewrite
                .identifiers
                .iter()
                .map(|(identifier, _)| (identifier.clone(), self.owners.get(identifier).copied()))
                .collect(),
            events,
            event_timelines: record_ends
                .iter()
                .map(|c| (*c, self.event_timelines.get(c).cloned()))
                .collect(),
            traits: record_ends
                .iter()
                .map(|c| (*c, self.traits.get(c).cloned()))
                .collect(),
            consent: record_ends
                .iter()
                .map(|c| (*c, self.consent.get(c).cloned()))
                .collect(),
            interactions,
            interaction_timelines: record_ends
                .iter()
                .map(|c| (*c, self.interaction_timelines.get(c).cloned()))
                .collect(),
            merges: named
                .iter()
                .chain(rewrite.merges.iter().map(|m| &m.absorbed))
                .collect::<BTreeSet<_>>()
                .into_iter()
                .map(|c| (*c, self.merges.get(c).cloned()))
                .collect(),
            refusals: named
                .iter()
                .chain(rewrite.refusals.iter().map(|r| &r.customer))
                .collect::<BTreeSet<_>>()
                .into_iter()
                .map(|c| (*c, self.refusals.get(c).cloned()))
                .collect(),
        }
    }

    /// Records `refusal` under its profile and its identifier.
    fn refuse(&mut self, refusal: &Refusal) {
        self.refusals
            .entry(refusal.customer)
            .or_default()
            .push(refusal.clone());
        self.refusing
            .entry(refusal.identifier.clone())
            .or_default()
            .insert(refusal.customer);
    }

    /// Puts back what [`save`](Self::save) copied.
    fn restore(&mut self, saved: Saved) {
        fn put<K: std::hash::Hash + Eq, V>(map: &mut HashMap<K, V>, entries: Vec<(K, Option<V>)>) {
            for (key, value) in entries {
                match value {
                    Some(value) => map.insert(key, value),
                    None => map.remove(&key),
                };
            }
        }
        for (id, row) in saved.profiles {
            match row {
                Some(row) => self.profiles.insert(id, row),
                None => self.profiles.remove(&id),
            };
        }
        put(&mut self.owners, saved.owners);
        put(&mut self.event_timelines, saved.event_timelines);
        put(&mut self.traits, saved.traits);
        put(&mut self.consent, saved.consent);
        put(&mut self.interaction_timelines, saved.interaction_timelines);
        for (id, customer) in saved.events {
            if let Some(entry) = self.events.get_mut(&id) {
                entry.0 = customer;
            }
        }
        for (id, customer) in saved.interactions {
            if let Some(entry) = self.interactions.get_mut(&id) {
                entry.0 = customer;
            }
        }
        put(&mut self.merges, saved.merges);
        // `refusing` may keep entries for refusals taken back: it is a superset.
        put(&mut self.refusals, saved.refusals);
    }

    /// Applies a rewrite; on error, the undo log puts back what it changed.
    fn rewrite(&mut self, rewrite: &Rewrite) -> Result<(), Fault> {
        let Ok(dead) = expect::dead_target(&mut &*self, rewrite);
        if let Some(problem) = dead {
            return Err(Fault::Invalid(problem));
        }
        let named: HashMap<CustomerId, CustomerId> =
            rewrite.profiles.iter().map(|p| (p.id, p.live)).collect();
        // Members of a rewritten profile that the rewrite does not name follow the profile
        // they were merged into.
        let mut orphans = Vec::new();
        for state in &rewrite.profiles {
            if let Some(live) = self.live(state.id) {
                let row = self.profiles.get_mut(&live).expect("live profiles exist");
                row.members.remove(&state.id);
                if live == state.id {
                    orphans.extend(
                        row.members
                            .iter()
                            .filter(|m| !named.contains_key(m))
                            .map(|&m| (m, live)),
                    );
                }
            }
        }
        for state in &rewrite.profiles {
            let row = self.profiles.entry(state.id).or_insert_with(|| ProfileRow {
                created_at: state.created_at,
                merged_into: None,
                members: BTreeSet::new(),
                identifiers: BTreeSet::new(),
            });
            row.created_at = state.created_at;
            row.merged_into = (state.live != state.id).then_some(state.live);
            if state.live == state.id {
                row.members.insert(state.id);
            } else {
                row.members.clear();
            }
        }
        for state in &rewrite.profiles {
            if state.live != state.id {
                let row = self.profiles.get_mut(&state.live).expect("checked live");
                row.members.insert(state.id);
            }
        }
        for (orphan, was) in orphans {
            let live = self.live(was).expect("named profiles exist");
            self.profiles
                .get_mut(&orphan)
                .expect("members exist")
                .merged_into = Some(live);
            let row = self.profiles.get_mut(&live).expect("live profiles exist");
            row.members.insert(orphan);
        }
        for (identifier, owner) in &rewrite.identifiers {
            if let Some(old) = self.owners.remove(identifier)
                && let Some(row) = self.profiles.get_mut(&old)
            {
                row.identifiers.remove(identifier);
            }
            if let Some(customer) = owner {
                self.require_profile(*customer)?;
                self.owners.insert(identifier.clone(), *customer);
                let row = self.profiles.get_mut(customer).expect("checked");
                row.identifiers.insert(identifier.clone());
            }
        }
        let mut moved_events: HashMap<CustomerId, HashMap<EventId, CustomerId>> = HashMap::new();
        for &(id, customer) in &rewrite.events {
            self.require_profile(customer)?;
            let (old, event) = self
                .events
                .get_mut(&id)
                .ok_or(Fault::Invalid(CommitProblem::UnknownRecord(*id.as_uuid())))?;
            if *old == customer {
                continue;
            }
            let position = (event.occurred_at, *id.as_uuid());
            if let Some(timeline) = self.event_timelines.get_mut(old) {
                timeline.remove(&position);
            }
            self.event_timelines
                .entry(customer)
                .or_default()
                .insert(position);
            moved_events.entry(*old).or_default().insert(id, customer);
            *old = customer;
        }
        for (old, moves) in moved_events {
            let operations = self.traits.remove(&old).unwrap_or_default();
            let (going, staying): (Vec<_>, Vec<_>) = operations.into_iter().partition(|op| {
                op.provenance
                    .event_id
                    .is_some_and(|id| moves.contains_key(&id))
            });
            for op in going {
                let to = moves[&op.provenance.event_id.expect("partitioned on it")];
                self.traits.entry(to).or_default().push(op);
            }
            if !staying.is_empty() {
                self.traits.insert(old, staying);
            }
            let decisions = self.consent.remove(&old).unwrap_or_default();
            let (going, staying): (Vec<_>, Vec<_>) = decisions.into_iter().partition(|d| {
                d.provenance
                    .event_id
                    .is_some_and(|id| moves.contains_key(&id))
            });
            for decision in going {
                let to = moves[&decision.provenance.event_id.expect("partitioned on it")];
                self.consent.entry(to).or_default().push(decision);
            }
            if !staying.is_empty() {
                self.consent.insert(old, staying);
            }
        }
        for &(id, customer) in &rewrite.interactions {
            self.require_profile(customer)?;
            let (old, interaction) = self
                .interactions
                .get_mut(&id)
                .ok_or(Fault::Invalid(CommitProblem::UnknownRecord(*id.as_uuid())))?;
            if *old == customer {
                continue;
            }
            let position = (interaction.occurred_at, *id.as_uuid());
            if let Some(timeline) = self.interaction_timelines.get_mut(old) {
                timeline.remove(&position);
            }
            self.interaction_timelines
                .entry(customer)
                .or_default()
                .insert(position);
            *old = customer;
        }
        for customer in named.keys() {
            self.merges.remove(customer);
            self.refusals.remove(customer);
        }
        for merge in &rewrite.merges {
            self.merges
                .entry(merge.absorbed)
                .or_default()
                .push(merge.clone());
        }
        for refusal in &rewrite.refusals {
            self.require_profile(refusal.customer)?;
            self.refuse(refusal);
        }
        Ok(())
    }

    pub(super) fn undo(&mut self, step: Undo) {
        match step {
            Undo::CreateProfile(id) => {
                self.profiles.remove(&id);
            }
            Undo::Attach(identifier, customer) => {
                self.owners.remove(&identifier);
                if let Some(row) = self.profiles.get_mut(&customer) {
                    row.identifiers.remove(&identifier);
                }
            }
            Undo::Merge {
                survivor,
                absorbed,
                moved,
            } => {
                if let Some(merges) = self.merges.get_mut(&absorbed) {
                    merges.pop();
                }
                if let Some(row) = self.profiles.get_mut(&survivor) {
                    row.members.retain(|m| !moved.contains(m));
                }
                for member in &moved {
                    if let Some(row) = self.profiles.get_mut(member) {
                        row.merged_into = (*member != absorbed).then_some(absorbed);
                    }
                }
                if let Some(row) = self.profiles.get_mut(&absorbed) {
                    row.members = moved;
                }
            }
            Undo::AppendEvent(id) => {
                if let Some((customer, event)) = self.events.remove(&id) {
                    self.event_order.remove(&(event.occurred_at, id));
                    if let Some(timeline) = self.event_timelines.get_mut(&customer) {
                        timeline.remove(&(event.occurred_at, *id.as_uuid()));
                    }
                }
            }
            Undo::PutInteraction(id, previous) => {
                if let Some((customer, current)) = self.interactions.remove(&id)
                    && let Some(timeline) = self.interaction_timelines.get_mut(&customer)
                {
                    timeline.remove(&(current.occurred_at, *id.as_uuid()));
                }
                if let Some(previous) = previous {
                    let (customer, old) = *previous;
                    self.interaction_timelines
                        .entry(customer)
                        .or_default()
                        .insert((old.occurred_at, *id.as_uuid()));
                    self.interactions.insert(id, (customer, old));
                }
            }
            Undo::AppendTrait(customer) => {
                if let Some(ops) = self.traits.get_mut(&customer) {
                    ops.pop();
                }
            }
            Undo::AppendConsent(customer) => {
                if let Some(decisions) = self.consent.get_mut(&customer) {
                    decisions.pop();
                }
            }
            Undo::AppendAudit => {
                self.audit.pop();
            }
            Undo::Lift(suppression) => {
                self.suppressions
                    .insert(suppression.hash.clone(), *suppression);
            }
            Undo::Suppress(hash, previous) => {
                match previous {
                    Some(previous) => self.suppressions.insert(hash, *previous),
                    None => self.suppressions.remove(&hash),
                };
            }
            Undo::SetPrivacyKey => self.privacy_key = None,
            Undo::Whole(state) => *self = *state,
            Undo::Redact(previous, added) => {
                self.overrides.retain(|o| !added.contains(&o.id));
                self.redact(&previous);
                self.reindex_overrides();
            }
            Undo::Refuse(customer) => {
                if let Some(refusals) = self.refusals.get_mut(&customer) {
                    refusals.pop();
                }
            }
            Undo::Override => {
                if let Some(record) = self.overrides.pop() {
                    for identifier in record.identifiers() {
                        if let Some(positions) = self.overrides_naming.get_mut(&identifier) {
                            positions.retain(|&p| p != self.overrides.len());
                        }
                    }
                }
            }
            Undo::Rewrite(saved) => self.restore(*saved),
            Undo::Membership(customer, previous, positions) => {
                let current = self.membership.remove(&customer);
                self.index_membership(customer, current.as_ref(), previous.as_ref());
                if let Some(previous) = previous {
                    self.membership.insert(customer, previous);
                }
                if let Some(log) = self.membership_changes.get_mut(&customer) {
                    for position in positions {
                        log.remove(&position);
                    }
                }
            }
        }
    }
}

impl expect::Facts for &State {
    type Error = std::convert::Infallible;

    fn owner(&mut self, identifier: &Identifier) -> Result<Option<CustomerId>, Self::Error> {
        Ok(State::owner(self, identifier))
    }

    fn live(&mut self, customer: CustomerId) -> Result<Option<CustomerId>, Self::Error> {
        Ok(State::live(self, customer))
    }

    fn evidence(&mut self, customer: CustomerId) -> Result<u64, Self::Error> {
        Ok(self.members(customer).map_or(0, |members| {
            members
                .iter()
                .map(|m| {
                    let events = self.event_timelines.get(m).map_or(0, |t| t.len());
                    let interactions = self.interaction_timelines.get(m).map_or(0, |t| t.len());
                    (events + interactions) as u64
                })
                .sum()
        }))
    }

    fn identifiers(&mut self, customer: CustomerId) -> Result<Vec<String>, Self::Error> {
        Ok(self
            .members(customer)
            .into_iter()
            .flatten()
            .flat_map(|member| &self.profiles[member].identifiers)
            .map(ToString::to_string)
            .collect())
    }

    fn interaction_version(
        &mut self,
        id: InteractionId,
    ) -> Result<Option<DateTime<Utc>>, Self::Error> {
        Ok(self.interactions.get(&id).map(|(_, i)| i.updated_at))
    }
}
