//! [`Customers`]: the one entry point an application needs.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, PoisonError, RwLock};

use chrono::{DateTime, Utc};

use crate::audience::{LiveSegments, Touched, ViewPersonas};
use crate::error::Error;
use crate::identity::{Explanation, Policy, Suspect, SuspectStatus};
use crate::ingest::rebuild::{Component, Rebuilt};
use crate::ingest::{Plan, Planner, Receipt, Record};
use crate::model::{
    Actor, AuditAction, AuditRecord, CustomerId, EventId, Identifier, MergeId, Override,
    OverrideId, OverrideRecord, RefusalRule,
};
use crate::privacy::ConsentDefaults;
use crate::store::{
    Attributed, Commit, CommitOutcome, IdentityChange, Page, PageRequest, Reads, Store, StoreError,
    exclusively, plan_and_apply, read_consistent, read_to_write,
};
use crate::view::{self, DEFAULT_TIMELINE_ENTRIES, Lookup, Profile, TimelineEntry};

/// How often a write decides again when other writers keep changing the profiles it
/// touches, before it gives up with [`Error::Contention`].
const MAX_ATTEMPTS: usize = 64;

/// How many of those attempts run alongside other writers of this `Customers`; later ones
/// shut them out, so a write that keeps losing the race is sure to land.
const OPTIMISTIC_ATTEMPTS: usize = 4;

/// How many attempts, with this process's writers shut out, may lose to other processes
/// before the rest shut those out too ([`Store::exclusive`]).
const ALONE_ATTEMPTS: usize = 4;

/// How long to wait after the `losses`-th write lost to another process: 0.2 ms doubling
/// to at most 25 ms, each time scaled at random by 0.5 to 1.5.
fn backoff(losses: usize) -> std::time::Duration {
    let base_us = 200u64 << losses.min(7);
    let noise = {
        use std::hash::{BuildHasher, RandomState};
        RandomState::new().hash_one(std::time::Instant::now()) % 1000
    };
    std::time::Duration::from_micros(base_us / 2 + base_us * noise / 1000)
}

/// All customers, over one store: ingest what they did and said, read who they are.
///
/// `Customers` is `Send + Sync` whenever its store is; share it between threads behind an
/// `Arc`. Writers that race on the same profiles are resolved by the store's expectation
/// checks: the loser decides again against fresh state.
///
/// ```
/// use oneview::{Channel, Customers, Event, Identifier, IdentifierKind, MemoryStore};
///
/// let customers = Customers::new(MemoryStore::new());
/// customers.ingest(
///     Event::builder("web", Channel::Web, "Page Viewed")
///         .identifier(IdentifierKind::AnonymousId, "device-1")
///         .build()?,
/// )?;
/// customers.ingest(
///     Event::builder("web", Channel::Web, "Signed Up")
///         .identifier(IdentifierKind::AnonymousId, "device-1")
///         .identifier(IdentifierKind::Email, "Ana@Example.com")
///         .build()?,
/// )?;
/// let ana = customers.profile(Identifier::email("ana@example.com")?)?.expect("known");
/// assert_eq!(ana.identifiers.len(), 2);
/// assert_eq!(ana.event_count(), 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Customers<S> {
    store: S,
    policy: Policy,
    consent_defaults: ConsentDefaults,
    /// The personas profiles name.
    pub(crate) personas: ViewPersonas,
    /// The segments kept live.
    pub(crate) live: LiveSegments,
    /// What time it is, for deciding membership.
    clock: Clock,
    /// Writers share it while they plan and apply; one that has lost too many races
    /// takes it alone.
    writers: RwLock<()>,
}

/// A source of the time.
#[derive(Clone)]
struct Clock(Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>);

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Clock")
    }
}

/// A batch planned on one snapshot.
struct PlannedBatch {
    /// Per record: its receipt or error, once decided.
    results: Vec<Option<Result<Receipt, Error>>>,
    commits: Vec<Commit>,
    /// The record of each commit.
    sources: Vec<usize>,
    /// Records that arrived late, to place one at a time.
    late: Vec<usize>,
    /// Records that repeat an event planned earlier in the batch.
    repeats: Vec<(usize, EventId)>,
}

/// What one attempt at a write came to.
pub(crate) enum Attempt<T> {
    /// It landed (or failed for good).
    Done(T),
    /// Another writer changed what it rested on: decide again.
    Conflict,
}

impl<T> Attempt<T> {
    /// What a write came to once applied: done with the value, decided again after a
    /// conflict, or failed for good.
    pub(crate) fn of(applied: Result<T, StoreError>) -> Result<Self, Error> {
        match applied {
            Ok(done) => Ok(Attempt::Done(done)),
            Err(StoreError::Conflict { .. }) => Ok(Attempt::Conflict),
            Err(err) => Err(err.into()),
        }
    }
}

impl<S: Store> Customers<S> {
    /// Customers kept in `store`, resolved under the default [`Policy`].
    pub fn new(store: S) -> Self {
        Self::with_policy(store, Policy::default())
    }

    /// Customers kept in `store`, resolved under `policy`.
    pub fn with_policy(store: S, policy: Policy) -> Self {
        Self {
            store,
            policy,
            consent_defaults: ConsentDefaults::default(),
            personas: ViewPersonas::default(),
            live: LiveSegments::default(),
            clock: Clock(Arc::new(Utc::now)),
            writers: RwLock::new(()),
        }
    }

    /// Answers consent questions about purposes a customer never decided on with
    /// `defaults` (opt-in for every purpose unless set).
    pub fn with_consent_defaults(mut self, defaults: ConsentDefaults) -> Self {
        self.consent_defaults = defaults;
        self
    }

    /// Reads the time from `clock` instead of the system clock where the time of a call
    /// decides something: the time live segment membership is decided at
    /// ([`with_live_segments`](Self::with_live_segments)). For replaying history as it
    /// happened, and for tests.
    ///
    /// ```
    /// use chrono::{TimeZone, Utc};
    /// use oneview::{Customers, MemoryStore};
    ///
    /// let new_year = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    /// let customers = Customers::new(MemoryStore::new()).with_clock(move || new_year);
    /// assert_eq!(customers.now(), new_year);
    /// ```
    pub fn with_clock(mut self, clock: impl Fn() -> DateTime<Utc> + Send + Sync + 'static) -> Self {
        self.clock = Clock(Arc::new(clock));
        self
    }

    /// The time now, by the clock [`with_clock`](Self::with_clock) set (the system
    /// clock unless set).
    pub fn now(&self) -> DateTime<Utc> {
        (self.clock.0)()
    }

    /// These customers, over the same store, keeping no segment live: for writes whose
    /// membership is settled afterwards (an import restores it from the file). Its
    /// writers do not take turns with this one's, so nothing else should write meanwhile.
    pub(crate) fn without_live_segments(&self) -> Customers<&S> {
        Customers {
            store: &self.store,
            policy: self.policy.clone(),
            consent_defaults: self.consent_defaults.clone(),
            personas: self.personas.clone(),
            live: LiveSegments::default(),
            clock: self.clock.clone(),
            writers: RwLock::new(()),
        }
    }

    /// The regimes that answer for purposes a customer never decided on.
    pub fn consent_defaults(&self) -> &ConsentDefaults {
        &self.consent_defaults
    }

    /// Runs `attempt` until it lands: the first few times alongside other writers, then
    /// with the writers of this process shut out, which none of them can make fail again,
    /// and at last with those of every process shut out too, where the store can.
    pub(crate) fn write<T>(
        &self,
        mut attempt: impl FnMut() -> Result<Attempt<T>, Error>,
    ) -> Result<T, Error> {
        for n in 0..MAX_ATTEMPTS {
            let outcome = if n < OPTIMISTIC_ATTEMPTS {
                let _shared = self.writers.read().unwrap_or_else(PoisonError::into_inner);
                attempt()?
            } else {
                let _alone = self.writers.write().unwrap_or_else(PoisonError::into_inner);
                if n < OPTIMISTIC_ATTEMPTS + ALONE_ATTEMPTS {
                    attempt()?
                } else {
                    // Other processes won every race since: a long write (a rebuild) can
                    // lose to a stream of short ones for as long as they keep coming.
                    exclusively(&self.store, &mut attempt)?
                }
            };
            if let Attempt::Done(done) = outcome {
                return Ok(done);
            }
            if n + 1 >= OPTIMISTIC_ATTEMPTS {
                // Shut out here, a write still lost: to another process. Writers there
                // retry as fast, so each waits a little, longer and at random, to let
                // one of them through.
                std::thread::sleep(backoff(n + 1 - OPTIMISTIC_ATTEMPTS));
            }
        }
        Err(Error::Contention {
            attempts: MAX_ATTEMPTS,
        })
    }

    /// The policy identities are resolved under.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The store underneath, for reads the facade does not offer.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Gives back the store.
    pub fn into_store(self) -> S {
        self.store
    }

    /// Ingests an event or an interaction: resolves who it is about, attaches or merges
    /// profiles as the evidence and the [`Policy`] allow, and stores it, all in one atomic
    /// step.
    ///
    /// Ingesting the same event again changes nothing and reports [`Outcome::Duplicate`];
    /// an older version of a stored interaction reports [`Outcome::Outdated`]. A record
    /// older than evidence already applied to the profiles it touches rebuilds them
    /// ([`Action::Rebuild`]), so that the outcome does not depend on arrival order. So
    /// does a newer version of an interaction that names other people than the stored
    /// one: only the latest version of an interaction is evidence of who it is about.
    ///
    /// [`Outcome::Duplicate`]: crate::Outcome::Duplicate
    /// [`Outcome::Outdated`]: crate::Outcome::Outdated
    /// [`Action::Rebuild`]: crate::identity::Action::Rebuild
    pub fn ingest(&self, record: impl Into<Record>) -> Result<Receipt, Error> {
        self.ingest_batch([record.into()])?
            .pop()
            .expect("one result per record")
    }

    /// Ingests many records: far faster than one [`ingest`](Self::ingest) per record on a
    /// store where each write is a transaction, such as SQLite.
    ///
    /// Records are decided in evidence order (event time, then id), whatever order they
    /// are given in; results come back in the order given. A record that fails validation
    /// gets its error in its slot and the rest are still ingested. The records that are in
    /// order land as one atomic step (a store failure applies none of them); each late
    /// record then rebuilds the profiles it touches in a step of its own. The batch is held
    /// in memory until it is applied, so feed a large stream in batches of a few thousand.
    ///
    /// ```
    /// use oneview::{Channel, Customers, Event, IdentifierKind, MemoryStore, Outcome};
    ///
    /// let customers = Customers::new(MemoryStore::new());
    /// let visit = |n: u32| Event::builder("web", Channel::Web, "Page Viewed")
    ///     .message_id(&format!("m{n}"))
    ///     .identifier(IdentifierKind::AnonymousId, "device-1")
    ///     .build();
    /// let results = customers.ingest_batch([visit(1)?, visit(2)?, visit(1)?])?;
    /// let outcomes: Vec<Outcome> = results.into_iter().map(|r| r.unwrap().outcome).collect();
    /// assert_eq!(outcomes, [Outcome::Stored, Outcome::Stored, Outcome::Duplicate]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn ingest_batch<R: Into<Record>>(
        &self,
        records: impl IntoIterator<Item = R>,
    ) -> Result<Vec<Result<Receipt, Error>>, Error> {
        self.ingest_records(records.into_iter().map(Into::into).collect(), None)
    }

    /// Ingests `records` (see [`ingest_batch`](Self::ingest_batch)), failing on the first
    /// that is refused: for records this crate built itself, where a refusal is a fault.
    /// Returns how many were ingested.
    pub(crate) fn ingest_all(&self, records: Vec<Record>) -> Result<u64, Error> {
        if records.is_empty() {
            return Ok(0);
        }
        let mut ingested = 0;
        for result in self.ingest_batch(records)? {
            result?;
            ingested += 1;
        }
        Ok(ingested)
    }

    /// Ingests one record and, in the same atomic step, appends `audit` to the audit
    /// trail: for records an operator makes on a customer's behalf.
    pub(crate) fn ingest_audited(
        &self,
        record: Record,
        audit: &AuditRecord,
    ) -> Result<Receipt, Error> {
        self.ingest_records(vec![record], Some(audit))?
            .pop()
            .expect("one result per record")
    }

    /// [`ingest_batch`](Self::ingest_batch), with `audit` landing with the first record.
    fn ingest_records(
        &self,
        records: Vec<Record>,
        audit: Option<&AuditRecord>,
    ) -> Result<Vec<Result<Receipt, Error>>, Error> {
        let mut order: Vec<usize> = (0..records.len()).collect();
        order.sort_by_key(|&i| records[i].key());
        // Each record sits in its slot except while the store applies the commit it was
        // moved into.
        let mut slots: Vec<Option<Record>> = records.into_iter().map(Some).collect();
        // The receipts of records an earlier attempt stored before the batch had to be
        // planned again: planned again, they look stored by someone else.
        let mut landed: Vec<Option<Receipt>> = vec![None; slots.len()];
        // What the landed commits changed, for the segments kept live.
        let mut touched = Touched::default();
        let mut commits = Vec::new();
        let (mut results, late, repeats) = self.write(|| {
            // Planned on one snapshot, and applied where the store can in the same
            // transaction: the decisions rest on one state, and the backend reads it
            // without a transaction per read.
            let mut planned = None;
            let applied = plan_and_apply(&self.store, &mut commits, |reads, commits| {
                let PlannedBatch {
                    results,
                    commits: batch,
                    sources,
                    late,
                    repeats,
                } = self.plan_batch(reads, &slots, &order, &landed, audit)?;
                *commits = batch;
                // Each event goes into its commit for as long as the store applies it,
                // and back, so a batch's events are not copied.
                for (commit, &index) in sources.iter().enumerate() {
                    match (slots[index].take(), &results[index]) {
                        (Some(Record::Event(event)), Some(Ok(receipt))) => {
                            commits[commit].event = Some(Attributed {
                                customer: receipt.customer,
                                record: event,
                            });
                        }
                        // An interaction's commit holds its own copy.
                        (other, _) => slots[index] = other,
                    }
                }
                planned = Some((results, sources, late, repeats));
                Ok::<_, Error>(())
            })?;
            let Some((results, sources, late, repeats)) = planned else {
                // The store failed before planning.
                return Err(applied
                    .err()
                    .unwrap_or_else(|| StoreError::Backend {
                        backend: "plan_and_apply",
                        source: "the store did not run the plan it was given".into(),
                    })
                    .into());
            };
            if let Ok(outcomes) = &applied
                && self.keeps_segments_live()
            {
                touched.note(&commits, outcomes, &self.live);
            }
            for (commit, &index) in sources.iter().enumerate() {
                if let Some(event) = commits[commit].event.take() {
                    slots[index] = Some(Record::Event(event.record));
                }
            }
            match applied {
                Ok(outcomes) if outcomes.iter().all(|o| *o == CommitOutcome::Applied) => {
                    Ok(Attempt::Done((results, late, repeats)))
                }
                // Another writer stored some of the batch's events first; the rest was
                // stored. Plan the batch again against fresh state, keeping what landed.
                Ok(outcomes) => {
                    for (commit, outcome) in outcomes.iter().enumerate() {
                        if *outcome == CommitOutcome::Applied
                            && let Some(Ok(receipt)) = &results[sources[commit]]
                        {
                            landed[sources[commit]] = Some(receipt.clone());
                        }
                    }
                    Ok(Attempt::Conflict)
                }
                // Another writer got there first: plan the batch again against fresh state.
                Err(StoreError::Conflict { .. }) => Ok(Attempt::Conflict),
                Err(err) => Err(err.into()),
            }
        })?;
        let records: Vec<Record> = slots
            .into_iter()
            .map(|slot| slot.expect("every record back in its slot"))
            .collect();
        for (index, result) in self.ingest_late_records(&records, &late, audit, &mut touched) {
            results[index] = Some(result);
        }
        // The first of each repeated event, in the order the records were decided.
        let mut firsts: HashMap<EventId, usize> = HashMap::new();
        for &i in order.iter().rev() {
            if let Record::Event(e) = &records[i] {
                firsts.insert(e.id, i);
            }
        }
        for (index, event) in repeats {
            let first = firsts[&event];
            results[index] = Some(match &results[first] {
                Some(Ok(receipt)) => Ok(Receipt {
                    outcome: crate::Outcome::Duplicate,
                    action: None,
                    merged: Vec::new(),
                    refused: Vec::new(),
                    ..receipt.clone()
                }),
                _ => self.ingest(records[index].clone()),
            });
        }
        if self.keeps_segments_live() {
            for (result, record) in results.iter().zip(&records) {
                if let Some(Ok(receipt)) = result
                    && receipt.outcome == crate::Outcome::Duplicate
                {
                    touched.redelivered(receipt.customer, record, &self.live);
                }
            }
        }
        self.maintain_now(touched)?;
        Ok(results
            .into_iter()
            .map(|r| r.expect("every record planned"))
            .collect())
    }

    /// Plans the records of `slots` (all in place) in `order` on one snapshot, each
    /// event's commit left without its event for the caller to move it in. A record that
    /// an earlier attempt stored (`landed`) keeps that attempt's receipt.
    fn plan_batch(
        &self,
        reads: &dyn Reads,
        slots: &[Option<Record>],
        order: &[usize],
        landed: &[Option<Receipt>],
        audit: Option<&AuditRecord>,
    ) -> Result<PlannedBatch, Error> {
        let mut planner = Planner::new(reads, &self.policy).lending_events();
        planner.prefetch(slots.iter().flatten())?;
        let mut batch = PlannedBatch {
            results: (0..slots.len()).map(|_| None).collect(),
            commits: Vec::new(),
            sources: Vec::new(),
            late: Vec::new(),
            repeats: Vec::new(),
        };
        for &index in order {
            let record = slots[index].as_ref().expect("every record in its slot");
            match planner.plan(record) {
                Ok(Plan::Skip(receipt)) => {
                    let mine = landed[index].clone();
                    batch.results[index] = Some(Ok(mine.unwrap_or(receipt)));
                }
                Ok(Plan::Apply(commit, receipt)) => {
                    let mut commit = *commit;
                    if index == 0 {
                        commit.audit.extend(audit.cloned());
                    }
                    batch.commits.push(commit);
                    batch.sources.push(index);
                    batch.results[index] = Some(Ok(receipt));
                }
                Ok(Plan::Repeat(event)) => batch.repeats.push((index, event)),
                Ok(Plan::Late) => batch.late.push(index),
                Err(err @ (Error::Invalid(_) | Error::Suppressed { .. })) => {
                    batch.results[index] = Some(Err(err));
                }
                Err(other) => return Err(other),
            }
        }
        Ok(batch)
    }

    /// Undoes the merge `merge` of the profile found by `lookup`: the evidence that made
    /// it no longer links the two sides, and the profiles they touch are rebuilt, taking
    /// their own events, interactions and traits with them. The unmerge is recorded as an
    /// [`Override::Unlink`].
    ///
    /// With `block`, the two sides are also [separated](Override::Separate) for good: no
    /// later evidence will merge them again. Without it, other evidence that links them
    /// (now or later) still does.
    ///
    /// `by` says who asked and why; it goes on the [audit trail](Self::audit).
    pub fn unmerge(
        &self,
        lookup: impl Into<Lookup>,
        merge: MergeId,
        block: bool,
        by: &Actor,
    ) -> Result<Rebuilt, Error> {
        by.validate()?;
        let lookup = lookup.into();
        let customer = view::find(&self.store, &lookup)?.ok_or(Error::UnknownCustomer)?;
        let record = self
            .store
            .merges(customer)?
            .into_iter()
            .find(|m| m.id == merge)
            .ok_or(Error::UnknownMerge(merge))?;
        let evidence = record
            .evidence_id
            .or(record.evidence.map(|e| *e.as_uuid()))
            .ok_or(Error::UnknownMerge(merge))?;
        let mut overrides = vec![OverrideRecord {
            id: OverrideId::new(),
            at: Utc::now(),
            rule: Override::Unlink {
                evidence,
                merge: Box::new(record.clone()),
            },
            reason: Some(by.reason.clone()),
        }];
        if block {
            let a = record.absorbed_side.clone();
            let b: Vec<Identifier> = record
                .linking
                .iter()
                .filter(|i| !a.contains(i))
                .cloned()
                .collect();
            if a.is_empty() || b.is_empty() {
                return Err(Error::UnknownMerge(merge));
            }
            overrides.push(OverrideRecord {
                id: OverrideId::new(),
                at: Utc::now(),
                rule: Override::Separate { a, b },
                reason: Some(by.reason.clone()),
            });
        }
        let audit = AuditRecord::now(
            by,
            AuditAction::Unmerge {
                customer,
                merge,
                blocked: block,
                overrides: overrides.iter().map(|o| o.id).collect(),
            },
        );
        self.rebuild_with(&record.linking, &[], overrides, true, Some(audit))
    }

    /// Detaches `identifier` from its profile for good: it is
    /// [separated](Override::Separate) from every other identifier the profile holds, and
    /// the profile is rebuilt without it. Evidence that carried it goes where its other
    /// identifiers lead; it may later join another profile.
    pub fn detach(&self, identifier: &Identifier, by: &Actor) -> Result<Rebuilt, Error> {
        by.validate()?;
        let customer = view::find(&self.store, &Lookup::from(identifier.clone()))?
            .ok_or_else(|| Error::UnknownIdentifier(identifier.clone()))?;
        let profile = self
            .store
            .profile(customer)?
            .ok_or(Error::UnknownCustomer)?;
        let others: Vec<Identifier> = profile
            .identifiers
            .iter()
            .filter(|i| *i != identifier)
            .cloned()
            .collect();
        let record = OverrideRecord {
            id: OverrideId::new(),
            at: Utc::now(),
            rule: Override::Separate {
                a: vec![identifier.clone()],
                b: others,
            },
            reason: Some(by.reason.clone()),
        };
        let audit = AuditRecord::now(
            by,
            AuditAction::Detach {
                customer,
                override_id: record.id,
            },
        );
        self.rebuild_with(&profile.identifiers, &[], vec![record], true, Some(audit))
    }

    /// Merges the profiles holding `a` and `b`, whatever the limits and separations say:
    /// for an operator who knows they are one customer. Recorded as an
    /// [`Override::Link`] and a merge under [`MergeRule::Forced`](crate::MergeRule::Forced);
    /// [`unmerge`](Self::unmerge) undoes it.
    pub fn force_merge(
        &self,
        a: &Identifier,
        b: &Identifier,
        by: &Actor,
    ) -> Result<Rebuilt, Error> {
        by.validate()?;
        let mut link = self.link(a, b)?;
        link.reason = Some(by.reason.clone());
        let audit = AuditRecord::now(
            by,
            AuditAction::ForceMerge {
                override_id: link.id,
            },
        );
        self.rebuild_with(&[a.clone(), b.clone()], &[], vec![link], true, Some(audit))
    }

    /// What [`force_merge`](Self::force_merge) would change, without changing anything.
    pub fn preview_merge(&self, a: &Identifier, b: &Identifier) -> Result<Rebuilt, Error> {
        self.rebuild_with(
            &[a.clone(), b.clone()],
            &[],
            vec![self.link(a, b)?],
            false,
            None,
        )
    }

    fn link(&self, a: &Identifier, b: &Identifier) -> Result<OverrideRecord, Error> {
        for identifier in [a, b] {
            if view::find(&self.store, &Lookup::from(identifier.clone()))?.is_none() {
                return Err(Error::UnknownIdentifier(identifier.clone()));
            }
        }
        Ok(OverrideRecord {
            id: OverrideId::new(),
            at: Utc::now(),
            rule: Override::Link {
                a: a.clone(),
                b: b.clone(),
            },
            reason: None,
        })
    }

    /// Every identifier found suspect — seen beside the user ids of several different
    /// people, like a placeholder email nobody listed ([`Policy::suspect_after`]) — and
    /// every value an operator [confirmed](Self::confirm_suspect) or
    /// [cleared](Self::clear_suspect), oldest first.
    ///
    /// ```
    /// use oneview::identity::SuspectStatus;
    /// use oneview::{Channel, Customers, Event, Identifier, IdentifierKind, MemoryStore};
    ///
    /// let customers = Customers::new(MemoryStore::new());
    /// for person in ["ana", "ben", "eve"] {
    ///     customers.ingest(
    ///         Event::builder("shop", Channel::Store, "Signed Up")
    ///             .identifier(IdentifierKind::UserId, person)
    ///             .identifier(IdentifierKind::Email, "nomail@shop.de")
    ///             .build()?,
    ///     )?;
    /// }
    /// let suspects = customers.suspects()?;
    /// assert_eq!(suspects[0].identifier, Identifier::email("nomail@shop.de")?);
    /// assert_eq!((suspects[0].people, suspects[0].profiles), (3, 3));
    /// assert_eq!(suspects[0].status, SuspectStatus::Open);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn suspects(&self) -> Result<Vec<Suspect>, Error> {
        read_consistent(&self.store, |reads| {
            let mut suspects: Vec<Suspect> = Vec::new();
            let mut position: HashMap<Identifier, usize> = HashMap::new();
            for record in reads.standing_overrides()? {
                let Some(identifier) = record.standing() else {
                    continue;
                };
                let at = *position.entry(identifier.clone()).or_insert_with(|| {
                    suspects.push(Suspect {
                        identifier: identifier.clone(),
                        people: 0,
                        since: record.at,
                        profiles: 0,
                        status: SuspectStatus::Open,
                    });
                    suspects.len() - 1
                });
                let suspect = &mut suspects[at];
                match record.rule {
                    Override::Suspect { people, .. } => suspect.people = people,
                    Override::Block { .. } => suspect.status = SuspectStatus::Confirmed,
                    _ => suspect.status = SuspectStatus::Cleared,
                }
            }
            // One read for all their refusals, and one per profile they name.
            let identifiers: Vec<Identifier> =
                suspects.iter().map(|s| s.identifier.clone()).collect();
            let mut live: HashMap<CustomerId, Option<CustomerId>> = HashMap::new();
            let mut touched: HashSet<(usize, CustomerId)> = HashSet::new();
            for refusal in reads.refusals_of(&identifiers)? {
                let RefusalRule::Suspect { .. } = refusal.rule else {
                    continue;
                };
                let profile = match live.get(&refusal.customer) {
                    Some(&profile) => profile,
                    None => {
                        let profile = reads.profile(refusal.customer)?.map(|p| p.id);
                        live.insert(refusal.customer, profile);
                        profile
                    }
                };
                if let Some(profile) = profile {
                    touched.insert((position[&refusal.identifier], profile));
                }
            }
            for (at, _) in touched {
                suspects[at].profiles += 1;
            }
            Ok(suspects)
        })
    }

    /// Confirms that `identifier` is junk: it is no identifier from now on, as if the
    /// policy blocked it, and the profiles whose evidence carried it are rebuilt without
    /// it. Recorded as an [`Override::Block`]; [`clear_suspect`](Self::clear_suspect)
    /// overrules it. Works on any value, suspect or not.
    pub fn confirm_suspect(&self, identifier: &Identifier, by: &Actor) -> Result<Rebuilt, Error> {
        self.rule_on(
            Override::Block {
                identifier: identifier.clone(),
            },
            by,
        )
    }

    /// Clears `identifier`: it is never suspect from now on and links like any other, and
    /// the profiles whose evidence carried it are rebuilt, merging what it links (within
    /// the limits). Recorded as an [`Override::Allow`]; it overrules an earlier
    /// [`confirm_suspect`](Self::confirm_suspect), and a later one overrules it.
    pub fn clear_suspect(&self, identifier: &Identifier, by: &Actor) -> Result<Rebuilt, Error> {
        self.rule_on(
            Override::Allow {
                identifier: identifier.clone(),
            },
            by,
        )
    }

    /// Records `rule`, which sets one identifier's standing, and rebuilds the profiles
    /// whose evidence carried that identifier, reaching them through it.
    fn rule_on(&self, rule: Override, by: &Actor) -> Result<Rebuilt, Error> {
        by.validate()?;
        let record = OverrideRecord {
            id: OverrideId::new(),
            at: Utc::now(),
            rule,
            reason: Some(by.reason.clone()),
        };
        let action = match record.rule {
            Override::Block { .. } => AuditAction::Block {
                override_id: record.id,
            },
            _ => AuditAction::SuspectCleared {
                override_id: record.id,
            },
        };
        let audit = AuditRecord::now(by, action);
        let identifier = record.standing().cloned().into_iter().collect::<Vec<_>>();
        self.rebuild_with(&identifier, &identifier, vec![record], true, Some(audit))
    }

    /// Rebuilds the profiles `seeds` reach (and those whose evidence carried `through`)
    /// under `overrides` added; with `apply`, stores the overrides, the result and
    /// `audit`, and without, only reports what it would change.
    pub(crate) fn rebuild_with(
        &self,
        seeds: &[Identifier],
        through: &[Identifier],
        overrides: Vec<OverrideRecord>,
        apply: bool,
        audit: Option<AuditRecord>,
    ) -> Result<Rebuilt, Error> {
        let mut touched = Touched::default();
        let rebuilt = self.write(|| {
            let component = read_to_write(&self.store, |reads| {
                Component::load_through(reads, seeds, through)
            })?;
            let resolution = component.resolve(&self.policy, None, &overrides);
            let (mut commit, report, _) = component.rewrite(&resolution);
            if !apply {
                return Ok(Attempt::Done(report));
            }
            let mut identity: Vec<IdentityChange> = overrides
                .iter()
                .cloned()
                .map(IdentityChange::Override)
                .collect();
            identity.append(&mut commit.identity);
            let commit = Commit {
                identity,
                audit: audit.iter().cloned().collect(),
                ..commit
            };
            Attempt::of(
                self.store
                    .apply(std::slice::from_ref(&commit))
                    .map(|outcomes| {
                        if self.keeps_segments_live() {
                            touched.note(std::slice::from_ref(&commit), &outcomes, &self.live);
                        }
                        report
                    }),
            )
        })?;
        self.maintain_now(touched)?;
        Ok(rebuilt)
    }

    /// How `a` and `b` came to share a profile — the chain of evidence, hop by hop — or
    /// the refused links that keep them apart.
    pub fn explain(&self, a: &Identifier, b: &Identifier) -> Result<Explanation, Error> {
        let component = read_consistent(&self.store, |reads| {
            Component::load(reads, &[a.clone(), b.clone()])
        })?;
        Ok(component.resolve(&self.policy, None, &[]).explain(a, b))
    }

    /// The unified view of a customer, found by id or identifier, with the
    /// [`DEFAULT_TIMELINE_ENTRIES`] most recent timeline entries; `None` if unknown.
    pub fn profile(&self, lookup: impl Into<Lookup>) -> Result<Option<Profile>, Error> {
        self.profile_with(lookup, DEFAULT_TIMELINE_ENTRIES)
    }

    /// Like [`profile`](Self::profile), with up to `entries` timeline entries.
    pub fn profile_with(
        &self,
        lookup: impl Into<Lookup>,
        entries: usize,
    ) -> Result<Option<Profile>, Error> {
        let lookup = lookup.into();
        read_consistent(&self.store, |reads| {
            let Some(customer) = view::find(reads, &lookup)? else {
                return Ok(None);
            };
            let Some(mut profile) = view::build(reads, customer, entries)? else {
                return Ok(None);
            };
            profile.persona = self.persona_in(reads, customer, Utc::now())?;
            Ok(Some(profile))
        })
    }

    /// A page of a customer's timeline: events and interactions from every channel, newest
    /// first. Continue with [`PageRequest::after`] and the page's `next` cursor.
    pub fn timeline(
        &self,
        customer: CustomerId,
        page: PageRequest,
    ) -> Result<Page<TimelineEntry>, Error> {
        read_consistent(&self.store, |reads| {
            let live = reads.profile(customer)?.map_or(customer, |p| p.id);
            Ok(view::timeline(reads, live, page)?)
        })
    }
}
