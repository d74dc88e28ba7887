//! What suspect detection reads while a batch is planned: whether a record could make
//! one of its values suspect, and the refusals that bound says so from, read for the
//! whole batch at once where it can be.

use super::{Planner, Record};
use crate::identity::{self, Sightings};
use crate::model::{CustomerId, Identifier};
use crate::store::{Reads, StoreError};

impl<S: Reads + ?Sized> Planner<'_, S> {
    /// Whether evidence with `usable` identifiers could make one of them suspect.
    ///
    /// Exact counting needs every piece of evidence carrying the value; here an upper
    /// bound will do, read from what the graph and the refusals hold. Evidence joins one
    /// profile, and each of its values either joins it too or is refused on it; so a
    /// value of a unique kind seen beside `X` either belongs to `X`'s profile, was
    /// refused on it, belongs to a profile `X` itself was refused on, or was refused on
    /// that profile beside `X`.
    pub(super) fn might_tip_a_suspect(
        &mut self,
        usable: &[Identifier],
    ) -> Result<bool, StoreError> {
        let Some(threshold) = self.graph.policy().suspect_threshold() else {
            return Ok(false);
        };
        let policy = self.graph.policy();
        let witness = |identifier: &&Identifier| identity::is_witness(policy, identifier.kind());
        let witnesses: Vec<&Identifier> = usable.iter().filter(witness).collect();
        if witnesses.is_empty() {
            return Ok(false);
        }
        for candidate in usable {
            if !self.graph.may_turn_suspect(candidate) {
                continue;
            }
            let mut seen: Vec<Identifier> = witnesses.iter().map(|&w| w.clone()).collect();
            if let Some(owner) = self.graph.owner(candidate) {
                if let Some(cluster) = self.graph.cluster(owner) {
                    seen.extend(cluster.identifiers.iter().filter(witness).cloned());
                }
                seen.extend(self.refused_on(owner)?.into_iter().filter(|i| witness(&i)));
            }
            for customer in self.refused_of(candidate)? {
                // Refused beside `X` on the same profile.
                let live = self.graph.live(customer);
                seen.extend(self.refused_on(live)?.into_iter().filter(|i| witness(&i)));
                match self.graph.cluster(live) {
                    Some(cluster) => {
                        seen.extend(cluster.identifiers.iter().filter(witness).cloned())
                    }
                    None => seen.extend(
                        self.store
                            .profile(customer)?
                            .into_iter()
                            .flat_map(|profile| profile.identifiers)
                            .filter(|i| witness(&i)),
                    ),
                }
            }
            let mut bound = Sightings::default();
            bound.note(candidate, &seen);
            if bound.people(candidate) >= threshold {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Reads at once the refusals [`might_tip_a_suspect`](Self::might_tip_a_suspect)
    /// would read one by one for `records`: those of each value that may turn suspect on
    /// a record that also carries a witness, and those on the profiles holding such
    /// values or refused them. A value already suspect, or ruled on by an operator, is
    /// left out, as that check leaves it: the refusals of a placeholder grow with the
    /// store. Anything missed here is read when asked for.
    pub(super) fn prefetch_refusals<'r>(
        &mut self,
        records: impl Iterator<Item = &'r Record>,
    ) -> Result<(), StoreError> {
        let policy = self.graph.policy();
        if self.tolerate_late || policy.suspect_threshold().is_none() {
            return Ok(());
        }
        let mut candidates: Vec<Identifier> = Vec::new();
        for record in records {
            let identifiers = record.identifiers();
            if identifiers
                .iter()
                .any(|identifier| identity::is_witness(policy, identifier.kind()))
            {
                candidates.extend(
                    identifiers
                        .iter()
                        .filter(|identifier| identity::may_be_suspect(policy, identifier.kind()))
                        .cloned(),
                );
            }
        }
        if candidates.is_empty() {
            return Ok(());
        }
        candidates.sort_unstable();
        candidates.dedup();
        if self.overrides_exist {
            let mut standings = identity::Standings::default();
            for record in self.store.overrides(&candidates)? {
                standings.add(&record);
            }
            candidates.retain(|candidate| {
                standings.word(candidate).is_none() && standings.suspect_by(candidate).is_none()
            });
        }
        let mut profiles: Vec<CustomerId> = candidates
            .iter()
            .filter_map(|candidate| self.stored_owners.get(candidate).copied().flatten())
            .map(|owner| owner.customer)
            .collect();
        let refusals = self.store.refusals_of(&candidates)?;
        for candidate in candidates {
            self.refused_of.insert(candidate, Vec::new());
        }
        for refusal in refusals {
            profiles.push(refusal.customer);
            if let Some(of) = self.refused_of.get_mut(&refusal.identifier) {
                of.push(refusal);
            }
        }
        profiles.sort_unstable();
        profiles.dedup();
        let on = self.store.refusals_for(&profiles)?;
        self.refused_on.extend(profiles.into_iter().zip(on));
        Ok(())
    }

    /// The identifiers refused on the live profile `customer`, stored or planned.
    fn refused_on(&mut self, customer: CustomerId) -> Result<Vec<Identifier>, StoreError> {
        let mut profiles = vec![customer];
        profiles.extend(
            self.planned_absorbed
                .iter()
                .filter(|absorbed| self.graph.live(**absorbed) == customer),
        );
        let mut refused = Vec::new();
        for profile in profiles {
            if !self.refused_on.contains_key(&profile) {
                let stored = self.store.refusals(profile)?;
                self.refused_on.insert(profile, stored);
            }
            refused.extend(
                self.refused_on[&profile]
                    .iter()
                    .map(|r| r.identifier.clone()),
            );
        }
        refused.extend(
            self.planned_refusals
                .iter()
                .filter(|r| self.graph.live(r.customer) == customer)
                .map(|r| r.identifier.clone()),
        );
        Ok(refused)
    }

    /// The profiles `identifier` was refused on, stored or planned.
    fn refused_of(&mut self, identifier: &Identifier) -> Result<Vec<CustomerId>, StoreError> {
        if !self.refused_of.contains_key(identifier) {
            let stored = self.store.refusals_of(std::slice::from_ref(identifier))?;
            self.refused_of.insert(identifier.clone(), stored);
        }
        Ok(self.refused_of[identifier]
            .iter()
            .chain(&self.planned_refusals)
            .filter(|r| r.identifier == *identifier)
            .map(|r| r.customer)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::model::{Channel, Event, IdentifierKind};
    use crate::{Customers, MemoryStore};

    const PLACEHOLDER: &str = "noemail@example.com";

    fn event(id: &str, minute: u32, user: &str, emails: &[&str]) -> Record {
        let mut builder = Event::builder("test", Channel::Web, "Signed Up")
            .message_id(id)
            .occurred_at(Utc.with_ymd_and_hms(2026, 3, 1, 9, minute, 0).unwrap())
            .identifier(IdentifierKind::UserId, user);
        for email in emails {
            builder = builder.identifier(IdentifierKind::Email, email);
        }
        Record::Event(builder.build().unwrap())
    }

    /// The values whose refusals a batch of `record` reads up front.
    fn prefetched(customers: &Customers<MemoryStore>, record: &Record) -> Vec<Identifier> {
        let mut planner = Planner::new(customers.store(), customers.policy());
        planner.prefetch(std::slice::from_ref(record)).unwrap();
        let mut read: Vec<Identifier> = planner.refused_of.keys().cloned().collect();
        read.sort();
        read
    }

    #[test]
    fn the_batch_prefetch_skips_a_value_already_suspect() {
        let customers = Customers::new(MemoryStore::new());
        let placeholder = Identifier::email(PLACEHOLDER).unwrap();
        let own = Identifier::email("dora@example.com").unwrap();
        let next = event("d", 9, "dora", &[PLACEHOLDER, "dora@example.com"]);
        for (n, user) in ["ann", "bob"].into_iter().enumerate() {
            customers
                .ingest(event(user, n as u32, user, &[PLACEHOLDER]))
                .unwrap();
        }
        // Seen with two people, it may still turn suspect: its refusals are read.
        assert_eq!(
            prefetched(&customers, &next),
            vec![own.clone(), placeholder.clone()]
        );
        customers
            .ingest(event("cem", 2, "cem", &[PLACEHOLDER]))
            .unwrap();
        let suspects = customers.suspects().unwrap();
        assert_eq!(suspects[0].identifier, placeholder);
        // Suspect, it links nothing and cannot turn suspect again: its refusals, which
        // grow with every person who types it, are left unread.
        assert_eq!(prefetched(&customers, &next), vec![own]);
    }
}
