//! Late records: each rebuilds the profiles it touches with it in its place. Rebuilds
//! that share no profile, identifier or record are planned on one snapshot and applied
//! in one transaction; one that shares something with an earlier one waits for the next
//! round, planned on the state the earlier one left.

use std::collections::HashSet;

use uuid::Uuid;

use super::rebuild::{self, LatePlan};
use super::{Plan, Planner, Receipt, Record};
use crate::audience::Touched;
use crate::customers::{Attempt, Customers};
use crate::error::Error;
use crate::identity::Action;
use crate::model::{AuditRecord, CustomerId, Identifier};
use crate::store::{
    Commit, CommitOutcome, Expectation, IdentityChange, Store, StoreError, plan_and_apply,
};

/// What a planned commit reads and writes, as far as other rebuilds can meet it.
#[derive(Debug, Default)]
struct Footprint {
    /// It changes something no set below names (an override, an erasure): it goes alone.
    everything: bool,
    profiles: HashSet<CustomerId>,
    identifiers: HashSet<Identifier>,
    records: HashSet<Uuid>,
}

impl Footprint {
    fn of(commit: &Commit, record: &Record) -> Self {
        let mut its = Self::default();
        its.identifiers.extend(record.identifiers().iter().cloned());
        its.records.insert(record.key().id);
        for expectation in &commit.expect {
            match expectation {
                Expectation::Owner { identifier, owner } => {
                    its.identifiers.insert(identifier.clone());
                    its.profiles.extend(owner);
                }
                Expectation::Live { customer } | Expectation::Evidence { customer, .. } => {
                    its.profiles.insert(*customer);
                }
                Expectation::Identifiers {
                    customer,
                    identifiers,
                } => {
                    its.profiles.insert(*customer);
                    its.identifiers.extend(identifiers.iter().cloned());
                }
                Expectation::InteractionVersion { id, .. } => {
                    its.records.insert(*id.as_uuid());
                }
            }
        }
        for change in &commit.identity {
            match change {
                IdentityChange::CreateProfile { id, .. } => {
                    its.profiles.insert(*id);
                }
                IdentityChange::Attach {
                    identifier,
                    customer,
                } => {
                    its.identifiers.insert(identifier.clone());
                    its.profiles.insert(*customer);
                }
                IdentityChange::Merge(merge) => {
                    its.profiles.extend([merge.survivor, merge.absorbed]);
                }
                IdentityChange::Refuse(refusal) => {
                    its.identifiers.insert(refusal.identifier.clone());
                    its.profiles.insert(refusal.customer);
                }
                IdentityChange::Rewrite(rewrite) => {
                    for state in &rewrite.profiles {
                        its.profiles.extend([state.id, state.live]);
                    }
                    for (identifier, owner) in &rewrite.identifiers {
                        its.identifiers.insert(identifier.clone());
                        its.profiles.extend(owner);
                    }
                    for (id, owner) in &rewrite.events {
                        its.records.insert(*id.as_uuid());
                        its.profiles.insert(*owner);
                    }
                    for (id, owner) in &rewrite.interactions {
                        its.records.insert(*id.as_uuid());
                        its.profiles.insert(*owner);
                    }
                    for merge in &rewrite.merges {
                        its.profiles.extend([merge.survivor, merge.absorbed]);
                    }
                    for refusal in &rewrite.refusals {
                        its.identifiers.insert(refusal.identifier.clone());
                        its.profiles.insert(refusal.customer);
                    }
                }
                // An override or an erasure changes how identifiers resolve for everyone.
                _ => its.everything = true,
            }
        }
        its.profiles.extend(commit.event.iter().map(|e| e.customer));
        its.profiles
            .extend(commit.interaction.iter().map(|i| i.customer));
        its.profiles
            .extend(commit.traits.iter().map(|t| t.customer));
        its.profiles
            .extend(commit.consent.iter().map(|c| c.customer));
        its
    }

    fn meets(&self, other: &Self) -> bool {
        self.everything
            || other.everything
            || !self.profiles.is_disjoint(&other.profiles)
            || !self.identifiers.is_disjoint(&other.identifiers)
            || !self.records.is_disjoint(&other.records)
    }

    fn add(&mut self, other: Self) {
        self.everything |= other.everything;
        self.profiles.extend(other.profiles);
        self.identifiers.extend(other.identifiers);
        self.records.extend(other.records);
    }
}

/// A late record's result in a round: `None` where another writer stored it first.
type LateResult = Result<Option<Receipt>, Error>;

/// What planning one late record came to.
enum Planned {
    /// Apply this commit; the receipt says what it did.
    Apply(Box<Commit>, Receipt),
    /// Nothing to write: the receipt is final.
    Skip(Receipt),
}

impl<S: Store> Customers<S> {
    /// Ingests the late `records` (by their index in the call), rebuilding what each
    /// touches, and returns each one's result by index. The record at index 0 carries
    /// `audit`. What the applied commits changed is noted in `touched`.
    pub(crate) fn ingest_late_records(
        &self,
        records: &[Record],
        late: &[usize],
        audit: Option<&AuditRecord>,
        touched: &mut Touched,
    ) -> Vec<(usize, Result<Receipt, Error>)> {
        let mut results = Vec::with_capacity(late.len());
        let mut pending: &[usize] = late;
        // After a failure that is not a conflict, each record goes alone, so that the
        // failure is the result of the record that caused it and no other.
        let mut alone = false;
        while !pending.is_empty() {
            match self.ingest_late_round(records, pending, audit, touched, alone) {
                Ok(round) => {
                    pending = &pending[round.len()..];
                    results.extend(round);
                }
                Err(_) if !alone => alone = true,
                Err(err) => {
                    results.push((pending[0], Err(err)));
                    pending = &pending[1..];
                }
            }
        }
        results
            .into_iter()
            .map(|(index, result)| {
                let result = match result {
                    Ok(Some(receipt)) => Ok(receipt),
                    // Another writer stored it between the plan and the apply: ingested
                    // afresh, it is found stored.
                    Ok(None) => self.ingest(records[index].clone()),
                    Err(err) => Err(err),
                };
                (index, result)
            })
            .collect()
    }

    /// Plans the longest run at the head of `pending` whose rebuilds are apart (only the
    /// first with `alone`) on one snapshot and applies it in one transaction; returns the
    /// run's results in order, `None` for a record stored by another writer first.
    fn ingest_late_round(
        &self,
        records: &[Record],
        pending: &[usize],
        audit: Option<&AuditRecord>,
        touched: &mut Touched,
        alone: bool,
    ) -> Result<Vec<(usize, LateResult)>, Error> {
        self.write(|| {
            let mut commits = Vec::new();
            // Each record's result, and whether it waits for its commit's outcome.
            let mut run = Vec::new();
            let applied = plan_and_apply(self.store(), &mut commits, |reads, commits| {
                run.clear();
                let mut footprint = Footprint::default();
                for &index in pending {
                    if alone && !run.is_empty() {
                        break;
                    }
                    let record = &records[index];
                    match plan_late(reads, self.policy(), record) {
                        Ok(Planned::Apply(commit, receipt)) => {
                            let its = Footprint::of(&commit, record);
                            if !run.is_empty() && footprint.meets(&its) {
                                break;
                            }
                            footprint.add(its);
                            let mut commit = *commit;
                            if index == 0 {
                                commit.audit.extend(audit.cloned());
                            }
                            commits.push(commit);
                            run.push((index, Ok(Some(receipt)), true));
                        }
                        Ok(Planned::Skip(receipt)) => run.push((index, Ok(Some(receipt)), false)),
                        Err(err) => run.push((index, Err(err), false)),
                    }
                }
                Ok::<_, Error>(())
            })?;
            let outcomes = match applied {
                Ok(outcomes) => outcomes,
                Err(StoreError::Conflict { .. }) => return Ok(Attempt::Conflict),
                Err(err) => return Err(err.into()),
            };
            if self.keeps_segments_live() {
                touched.note(&commits, &outcomes, &self.live);
            }
            let mut outcomes = outcomes.into_iter();
            let run = run
                .into_iter()
                .map(|(index, result, applied)| {
                    // Another writer stored the same event first.
                    let stored_first = applied && outcomes.next() != Some(CommitOutcome::Applied);
                    (index, if stored_first { Ok(None) } else { result })
                })
                .collect();
            Ok(Attempt::Done(run))
        })
    }
}

/// Plans the late `record` on `reads`: the rebuild that puts it in its place or, where
/// that would touch too many profiles, its resolution against them as they stand.
fn plan_late(
    reads: &dyn crate::store::Reads,
    policy: &crate::identity::Policy,
    record: &Record,
) -> Result<Planned, Error> {
    match rebuild::plan_late(reads, policy, record)? {
        LatePlan::Rebuild(commit, receipt) => return Ok(Planned::Apply(commit, receipt)),
        LatePlan::Outdated(receipt) => return Ok(Planned::Skip(receipt)),
        LatePlan::TooLarge => {}
    }
    let mut planner = Planner::tolerating_late(reads, policy);
    planner.prefetch(std::slice::from_ref(record))?;
    Ok(match planner.plan(record)? {
        Plan::Apply(commit, receipt) => Planned::Apply(
            commit,
            Receipt {
                action: Some(Action::ResolvedWithoutRebuild),
                ..receipt
            },
        ),
        Plan::Skip(receipt) => Planned::Skip(receipt),
        Plan::Late | Plan::Repeat(_) => unreachable!("one record, planned in full"),
    })
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::model::{Channel, Event, IdentifierKind};
    use crate::{Customers, MemoryStore};

    fn event(id: &str, minute: u32, user: &str, email: &str) -> Record {
        Record::Event(
            Event::builder("test", Channel::Web, "Acted")
                .message_id(id)
                .occurred_at(Utc.with_ymd_and_hms(2026, 3, 1, 9, minute, 0).unwrap())
                .identifier(IdentifierKind::UserId, user)
                .identifier(IdentifierKind::Email, email)
                .build()
                .unwrap(),
        )
    }

    fn footprint(customers: &Customers<MemoryStore>, record: &Record) -> Footprint {
        match plan_late(customers.store(), customers.policy(), record).unwrap() {
            Planned::Apply(commit, _) => Footprint::of(&commit, record),
            Planned::Skip(_) => panic!("a late event is applied"),
        }
    }

    #[test]
    fn rebuilds_meet_where_they_share_a_profile_or_an_identifier_and_only_there() {
        let customers = Customers::new(MemoryStore::new());
        for record in [
            event("a-new", 30, "ann", "ann@example.com"),
            event("b-new", 30, "bob", "bob@example.com"),
        ] {
            customers.ingest(record).unwrap();
        }
        let ann = footprint(&customers, &event("a-old", 1, "ann", "ann@example.com"));
        let ann_again = footprint(&customers, &event("a-older", 0, "ann", "ann@example.com"));
        let bob = footprint(&customers, &event("b-old", 1, "bob", "bob@example.com"));
        // A late event naming no profile's identifier but Bob's email.
        let by_bobs_email = footprint(&customers, &event("x-old", 2, "xia", "bob@example.com"));
        let stranger = footprint(&customers, &event("s-old", 1, "sue", "sue@example.com"));
        assert!(ann.meets(&ann_again));
        assert!(bob.meets(&by_bobs_email));
        assert!(!ann.meets(&bob));
        assert!(!ann.meets(&stranger) && !bob.meets(&stranger));
        let mut both = Footprint::default();
        both.add(ann);
        both.add(stranger);
        assert!(both.meets(&ann_again));
        assert!(!both.meets(&bob));
    }
}
