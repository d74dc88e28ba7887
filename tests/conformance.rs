//! The conformance kit, used the way a backend crate uses it, and shown to catch stores
//! that break the contract.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use chrono::{DateTime, Utc};
use oneview::model::{
    AuditRecord, ConsentRecord, CustomerId, EventId, Identifier, InteractionId, MembershipChange,
    MembershipState, MergeRecord, OverrideRecord, Refusal, TraitOperation,
};
use oneview::store::{
    Attributed, ChannelSummary, Commit, CommitOutcome, CommitProblem, EventScan, EventStore,
    IdentityChange, IdentityStore, InteractionStore, MembershipStore, MemoryStore, Owner, Page,
    PageRequest, PlanCommits, PrivacyKey, PrivacyStore, ProfileRecord, Reads, Store, StoreError,
    Suppression, TraitStore, conformance,
};
use oneview::{Event, Interaction};

#[test]
fn memory_store_passes_the_kit() {
    conformance::run_all(MemoryStore::new);
}

/// How a [`Broken`] store breaks the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flaw {
    /// Applies each commit of a batch on its own, so a failed batch leaves earlier commits.
    NotAtomic,
    /// Serves timeline pages oldest first.
    PagesOldestFirst,
    /// Reports a repeated event as applied instead of a duplicate.
    DuplicatesApplied,
    /// Applies a rewrite's profiles and identifiers but leaves events where they were.
    RewriteLeavesEvents,
    /// Runs a snapshot's reads one by one, each on whatever state is current.
    TornSnapshots,
    /// Reports every consent decision as recorded on the live profile, losing the sides
    /// of a merge.
    ConsentOnTheLiveProfile,
    /// Answers that no hash is suppressed.
    ForgetsSuppressions,
    /// Answers a batch of profile reads in its own order, not the order asked.
    ProfilesUnordered,
    /// Applies a membership update whatever version it was decided on.
    MembershipVersionUnchecked,
    /// Keeps a segment's members after its profile is erased.
    KeepsErasedMembers,
    /// Not a flaw: loses a race. Before the first batch it is given, stores that batch's
    /// second commit on its own, as another writer that got there first would.
    LosesARace,
    /// Holds back its own commits during an exclusive write, as a backend whose commits
    /// wait for the lock the write holds would, until a timeout.
    ExclusiveHoldsItselfBack,
    /// Not a flaw: loses every race outside an exclusive write, as a store would whose
    /// other processes keep committing to the same profiles.
    LosesEveryRaceOutsideExclusive,
    /// Reads recent events strictly after the time asked, losing those at it.
    RecentEventsAfterTheirTime,
    /// Plans and applies without holding other writers back, and leaves the commits'
    /// expectations unchecked as if it did.
    PlansUnheld,
}

/// A memory store with one flaw.
#[derive(Debug)]
struct Broken {
    inner: MemoryStore,
    flaw: Flaw,
    /// Whether the race of [`Flaw::LosesARace`] was run.
    raced: AtomicBool,
    /// Whether an exclusive write is under way, and how many began.
    exclusive: AtomicBool,
    exclusive_writes: AtomicUsize,
    /// The memberships erasures removed, for [`Flaw::KeepsErasedMembers`].
    erased: Mutex<Vec<(String, CustomerId)>>,
}

impl Broken {
    fn new(flaw: Flaw) -> Self {
        Self {
            inner: MemoryStore::new(),
            flaw,
            raced: AtomicBool::new(false),
            exclusive: AtomicBool::new(false),
            exclusive_writes: AtomicUsize::new(0),
            erased: Mutex::new(Vec::new()),
        }
    }
}

impl IdentityStore for Broken {
    fn owners(&self, identifiers: &[Identifier]) -> Result<Vec<Option<Owner>>, StoreError> {
        self.inner.owners(identifiers)
    }
    fn profile(&self, customer: CustomerId) -> Result<Option<ProfileRecord>, StoreError> {
        self.inner.profile(customer)
    }
    fn profiles(&self, customers: &[CustomerId]) -> Result<Vec<Option<ProfileRecord>>, StoreError> {
        let mut found = self.inner.profiles(customers)?;
        if matches!(self.flaw, Flaw::ProfilesUnordered) {
            // Found ones first, as a query without an ORDER BY may give them.
            found.sort_by_key(Option::is_none);
        }
        Ok(found)
    }
    fn merges(&self, customer: CustomerId) -> Result<Vec<MergeRecord>, StoreError> {
        self.inner.merges(customer)
    }
    fn refusals(&self, customer: CustomerId) -> Result<Vec<Refusal>, StoreError> {
        self.inner.refusals(customer)
    }
    fn refusals_of(&self, identifiers: &[Identifier]) -> Result<Vec<Refusal>, StoreError> {
        self.inner.refusals_of(identifiers)
    }
    fn overrides(&self, identifiers: &[Identifier]) -> Result<Vec<OverrideRecord>, StoreError> {
        self.inner.overrides(identifiers)
    }
    fn standing_overrides(&self) -> Result<Vec<OverrideRecord>, StoreError> {
        self.inner.standing_overrides()
    }
    fn all_overrides(&self) -> Result<Vec<OverrideRecord>, StoreError> {
        self.inner.all_overrides()
    }
    fn customers(
        &self,
        after: Option<CustomerId>,
        limit: usize,
    ) -> Result<Vec<CustomerId>, StoreError> {
        self.inner.customers(after, limit)
    }
}

impl EventStore for Broken {
    fn event(&self, id: EventId) -> Result<Option<Attributed<Event>>, StoreError> {
        self.inner.event(id)
    }
    fn events(&self, customer: CustomerId, page: PageRequest) -> Result<Page<Event>, StoreError> {
        let mut page = self.inner.events(customer, page)?;
        if let Flaw::PagesOldestFirst = self.flaw {
            page.items.reverse();
        }
        Ok(page)
    }
    fn events_since(
        &self,
        customer: CustomerId,
        since: DateTime<Utc>,
        page: PageRequest,
    ) -> Result<Page<Event>, StoreError> {
        let since = match self.flaw {
            Flaw::RecentEventsAfterTheirTime => since + chrono::Duration::nanoseconds(1),
            _ => since,
        };
        self.inner.events_since(customer, since, page)
    }
    fn event_summary(&self, customer: CustomerId) -> Result<Vec<ChannelSummary>, StoreError> {
        self.inner.event_summary(customer)
    }
    fn scan_events(&self) -> EventScan<'_> {
        self.inner.scan_events()
    }
}

impl InteractionStore for Broken {
    fn interaction(
        &self,
        id: InteractionId,
    ) -> Result<Option<Attributed<Interaction>>, StoreError> {
        self.inner.interaction(id)
    }
    fn interactions(
        &self,
        customer: CustomerId,
        page: PageRequest,
    ) -> Result<Page<Interaction>, StoreError> {
        self.inner.interactions(customer, page)
    }
    fn interaction_summary(&self, customer: CustomerId) -> Result<Vec<ChannelSummary>, StoreError> {
        self.inner.interaction_summary(customer)
    }
}

impl TraitStore for Broken {
    fn trait_operations(&self, customer: CustomerId) -> Result<Vec<TraitOperation>, StoreError> {
        self.inner.trait_operations(customer)
    }
}

impl PrivacyStore for Broken {
    fn consent(&self, customer: CustomerId) -> Result<Vec<Attributed<ConsentRecord>>, StoreError> {
        let mut found = self.inner.consent(customer)?;
        if let Flaw::ConsentOnTheLiveProfile = self.flaw {
            let live = self.inner.profile(customer)?.map(|p| p.id);
            for decision in &mut found {
                decision.customer = live.unwrap_or(decision.customer);
            }
        }
        Ok(found)
    }
    fn suppressed(&self, hashes: &[String]) -> Result<Vec<Option<Suppression>>, StoreError> {
        match self.flaw {
            Flaw::ForgetsSuppressions => Ok(vec![None; hashes.len()]),
            _ => self.inner.suppressed(hashes),
        }
    }
    fn suppressions(&self) -> Result<Vec<Suppression>, StoreError> {
        self.inner.suppressions()
    }
    fn privacy_key(&self) -> Result<Option<PrivacyKey>, StoreError> {
        self.inner.privacy_key()
    }
    fn audit(
        &self,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        self.inner.audit(from, to)
    }
}

impl MembershipStore for Broken {
    fn membership(&self, customer: CustomerId) -> Result<MembershipState, StoreError> {
        self.inner.membership(customer)
    }
    fn segment_members(
        &self,
        segment: &str,
        after: Option<CustomerId>,
        limit: usize,
    ) -> Result<Vec<CustomerId>, StoreError> {
        let mut members = self.inner.segment_members(segment, after, limit)?;
        if let Flaw::KeepsErasedMembers = self.flaw {
            let erased = self.erased.lock().unwrap();
            members.extend(erased.iter().filter(|(s, _)| s == segment).map(|(_, c)| *c));
            members.sort();
        }
        Ok(members)
    }
    fn membership_changes(
        &self,
        customer: CustomerId,
        page: PageRequest,
    ) -> Result<Page<MembershipChange>, StoreError> {
        self.inner.membership_changes(customer, page)
    }
    fn due_for_recheck(
        &self,
        as_of: DateTime<Utc>,
        after: Option<CustomerId>,
        limit: usize,
    ) -> Result<Vec<CustomerId>, StoreError> {
        self.inner.due_for_recheck(as_of, after, limit)
    }
}

impl Store for Broken {
    fn snapshot(
        &self,
        reads: &mut dyn FnMut(&dyn Reads) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        match self.flaw {
            Flaw::TornSnapshots => reads(self),
            _ => self.inner.snapshot(reads),
        }
    }

    fn exclusive(
        &self,
        write: &mut dyn FnMut() -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        self.exclusive_writes.fetch_add(1, Ordering::SeqCst);
        self.exclusive.store(true, Ordering::SeqCst);
        let written = write();
        self.exclusive.store(false, Ordering::SeqCst);
        written
    }

    fn plan_and_apply(
        &self,
        commits: &mut Vec<Commit>,
        plan: &mut PlanCommits<'_>,
    ) -> Result<Vec<CommitOutcome>, StoreError> {
        commits.clear();
        self.snapshot_for_write(&mut |reads| plan(reads, commits))?;
        if self.flaw == Flaw::PlansUnheld {
            let unchecked: Vec<Commit> = commits
                .iter()
                .map(|commit| Commit {
                    expect: Vec::new(),
                    ..commit.clone()
                })
                .collect();
            return self.inner.apply(&unchecked);
        }
        self.apply(commits)
    }

    fn apply(&self, commits: &[Commit]) -> Result<Vec<CommitOutcome>, StoreError> {
        let exclusive = self.exclusive.load(Ordering::SeqCst);
        match self.flaw {
            Flaw::ExclusiveHoldsItselfBack if exclusive => Err(StoreError::Timeout {
                backend: "broken",
                source: "waited for its own lock".into(),
            }),
            Flaw::LosesEveryRaceOutsideExclusive if !exclusive => Err(StoreError::Conflict {
                commit: 0,
                problem: CommitProblem::Concurrent,
            }),
            Flaw::NotAtomic => {
                let mut outcomes = Vec::new();
                for (index, commit) in commits.iter().enumerate() {
                    let applied = self.inner.apply(std::slice::from_ref(commit));
                    outcomes.extend(applied.map_err(|err| match err {
                        StoreError::InvalidCommit { problem, .. } => StoreError::InvalidCommit {
                            commit: index,
                            problem,
                        },
                        StoreError::Conflict { problem, .. } => StoreError::Conflict {
                            commit: index,
                            problem,
                        },
                        other => other,
                    })?);
                }
                Ok(outcomes)
            }
            Flaw::DuplicatesApplied => Ok(self
                .inner
                .apply(commits)?
                .into_iter()
                .map(|_| CommitOutcome::Applied)
                .collect()),
            Flaw::RewriteLeavesEvents => {
                let mut commits = commits.to_vec();
                for commit in &mut commits {
                    for change in &mut commit.identity {
                        if let IdentityChange::Rewrite(rewrite) = change {
                            rewrite.events.clear();
                        }
                    }
                }
                self.inner.apply(&commits)
            }
            Flaw::MembershipVersionUnchecked => {
                let mut commits = commits.to_vec();
                for update in commits.iter_mut().flat_map(|c| &mut c.membership) {
                    update.version = self.inner.membership(update.customer)?.version;
                }
                self.inner.apply(&commits)
            }
            Flaw::KeepsErasedMembers => {
                let mut erased = Vec::new();
                for change in commits.iter().flat_map(|c| &c.identity) {
                    if let IdentityChange::Erase(erasure) = change {
                        for member in self
                            .inner
                            .profile(erasure.customer)?
                            .map(|p| p.members)
                            .unwrap_or_default()
                        {
                            for m in self.inner.membership(member)?.memberships {
                                erased.push((m.segment, member));
                            }
                        }
                    }
                }
                let outcomes = self.inner.apply(commits)?;
                self.erased.lock().unwrap().extend(erased);
                Ok(outcomes)
            }
            Flaw::LosesARace => {
                if commits.len() > 1 && !self.raced.swap(true, Ordering::SeqCst) {
                    self.inner.apply(&commits[1..2])?;
                }
                self.inner.apply(commits)
            }
            Flaw::PagesOldestFirst
            | Flaw::TornSnapshots
            | Flaw::ConsentOnTheLiveProfile
            | Flaw::ForgetsSuppressions
            | Flaw::ProfilesUnordered
            | Flaw::ExclusiveHoldsItselfBack
            | Flaw::LosesEveryRaceOutsideExclusive
            | Flaw::RecentEventsAfterTheirTime
            | Flaw::PlansUnheld => self.inner.apply(commits),
        }
    }
}

fn kit_rejects(flaw: Flaw) -> String {
    let result = catch_unwind(AssertUnwindSafe(|| {
        conformance::run_all(|| Broken::new(flaw))
    }));
    let panic = result.expect_err("the kit must fail a broken store");
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

#[test]
fn kit_catches_a_store_that_is_not_atomic() {
    let message = kit_rejects(Flaw::NotAtomic);
    assert!(message.contains("no profile was created"), "{message}");
}

#[test]
fn kit_catches_pages_in_the_wrong_order() {
    let message = kit_rejects(Flaw::PagesOldestFirst);
    assert!(message.contains("newest first"), "{message}");
}

#[test]
fn kit_catches_recent_events_that_leave_out_their_first_moment() {
    let message = kit_rejects(Flaw::RecentEventsAfterTheirTime);
    assert!(message.contains("at or after minute"), "{message}");
}

#[test]
fn kit_catches_duplicates_reported_as_applied() {
    let message = kit_rejects(Flaw::DuplicatesApplied);
    assert!(message.contains("Duplicate"), "{message}");
}

#[test]
fn kit_catches_a_rewrite_that_leaves_events_behind() {
    let message = kit_rejects(Flaw::RewriteLeavesEvents);
    assert!(message.contains("events follow a rewrite"), "{message}");
}

#[test]
fn kit_catches_snapshots_that_are_not_one_state() {
    let message = kit_rejects(Flaw::TornSnapshots);
    assert!(message.contains("a snapshot saw a commit"), "{message}");
}

#[test]
fn kit_catches_consent_that_forgets_the_sides_of_a_merge() {
    let message = kit_rejects(Flaw::ConsentOnTheLiveProfile);
    assert!(message.contains("recorded on"), "{message}");
}

#[test]
fn kit_catches_a_store_that_forgets_its_suppressions() {
    let message = kit_rejects(Flaw::ForgetsSuppressions);
    assert!(message.contains("in the order asked"), "{message}");
}

#[test]
fn kit_catches_a_store_that_answers_profiles_out_of_order() {
    let message = kit_rejects(Flaw::ProfilesUnordered);
    assert!(
        message.contains("profiles answers as profile does"),
        "{message}"
    );
}

#[test]
fn kit_catches_membership_applied_on_a_stale_version() {
    let message = kit_rejects(Flaw::MembershipVersionUnchecked);
    assert!(
        message.contains("a stale version must conflict"),
        "{message}"
    );
}

#[test]
fn kit_catches_an_exclusive_write_that_holds_itself_back() {
    let message = kit_rejects(Flaw::ExclusiveHoldsItselfBack);
    assert!(message.contains("the exclusive write lands"), "{message}");
}

#[test]
fn kit_catches_plans_applied_unchecked_beside_other_writers() {
    let message = kit_rejects(Flaw::PlansUnheld);
    assert!(
        message.contains("each on a state without the other's identifier"),
        "{message}"
    );
}

#[test]
fn kit_catches_members_kept_after_an_erasure() {
    let message = kit_rejects(Flaw::KeepsErasedMembers);
    assert!(message.contains("other customers stay"), "{message}");
}

/// A batch whose second event another writer stores between its planning and its
/// write: the store applies the rest and reports that one a duplicate, the batch is
/// planned again, and the receipts still say which records this call stored.
#[test]
fn receipts_survive_a_batch_planned_again_after_a_lost_race() {
    use oneview::{Channel, Customers, Outcome};
    let customers = Customers::new(Broken::new(Flaw::LosesARace));
    let batch: Vec<Event> = ["ana", "bo", "cy"]
        .iter()
        .enumerate()
        .map(|(n, who)| {
            Event::builder("shop", Channel::Web, "Order Completed")
                .message_id(&format!("order-{who}"))
                .identifier(
                    oneview::IdentifierKind::Email,
                    &format!("{who}@example.com"),
                )
                .occurred_at(DateTime::from_timestamp(1_800_000_000 + n as i64, 0).unwrap())
                .build()
                .unwrap()
        })
        .collect();
    let outcomes: Vec<Outcome> = customers
        .ingest_batch(batch.clone())
        .unwrap()
        .into_iter()
        .map(|receipt| receipt.unwrap().outcome)
        .collect();
    assert_eq!(
        outcomes,
        [Outcome::Stored, Outcome::Duplicate, Outcome::Stored]
    );
    for event in &batch {
        let stored = customers.store().event(event.id).unwrap().expect("stored");
        assert_eq!(stored.record.name, event.name);
    }
}

/// Other processes win every race: a write that keeps losing turns, with its own
/// process's writers already shut out, to an exclusive write of the store, once, and
/// lands there instead of giving up.
#[test]
fn a_write_that_keeps_losing_lands_in_an_exclusive_write() {
    use oneview::{Channel, Customers, Identifier, Outcome};
    let customers = Customers::new(Broken::new(Flaw::LosesEveryRaceOutsideExclusive));
    for (n, who) in ["ana", "bo"].iter().enumerate() {
        let receipt = customers
            .ingest(
                Event::builder("shop", Channel::Web, "Signed Up")
                    .identifier(
                        oneview::IdentifierKind::Email,
                        &format!("{who}@example.com"),
                    )
                    .build()
                    .unwrap(),
            )
            .expect("the write lands");
        assert_eq!(receipt.outcome, Outcome::Stored);
        assert_eq!(
            customers.store().exclusive_writes.load(Ordering::SeqCst),
            n + 1,
            "one exclusive write per ingest"
        );
        let email = Identifier::email(&format!("{who}@example.com")).unwrap();
        assert!(customers.profile(email).unwrap().is_some());
    }
}
