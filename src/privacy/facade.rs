//! The privacy calls of [`Customers`]: consent, export, erasure, suppressions, the audit
//! trail.

use std::collections::{BTreeSet, HashSet};
use std::ops::{Bound, RangeBounds};

use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use super::consent::{ConsentState, ContactDecision, ContactList, resolve_consent};
use super::export::{CustomerExport, EXPORT_FORMAT, EXPORT_VERSION, ExportedConsent};
use super::retention::{RetentionPolicy, RetentionReport, strip_event, strip_interaction};
use super::{ErasureReport, suppression_hash};
use crate::Customers;
use crate::audience::Touched;
use crate::conversation::{all_interactions, each_customer_of};
use crate::customers::Attempt;
use crate::error::Error;
use crate::ingest::{Receipt, Record};
use crate::model::{
    Actor, AuditAction, AuditRecord, Channel, ConsentChoice, CustomerId, ErasedCounts, Event,
    EventId, Identifier, InteractionId, Override, OverrideRecord, Purpose, ValidationError,
    resolve_traits,
};
use crate::store::{
    Commit, Erasure, Expectation, IdentityChange, MembershipUpdate, PrivacyKey, ProfileRecord,
    Reads, Redacted, Store, StoreError, Suppression, read_consistent, read_to_write,
};
use crate::view::{self, Lookup};

/// How many candidates `to_contact` reads in one read transaction.
const CANDIDATES_PER_SNAPSHOT: usize = 64;

/// How many records retention rewrites in one commit.
const RETENTION_BATCH: usize = 1000;

/// The source of the events that carry consent recorded by an operator.
pub const OPERATOR_SOURCE: &str = "oneview.operator";

impl<S: Store> Customers<S> {
    /// The consent in force for the customer `lookup` finds, as of `as_of`: every purpose
    /// and channel they decided on, with the decision each rests on. See
    /// [`privacy`](crate::privacy) for the rules.
    pub fn consent(
        &self,
        lookup: impl Into<Lookup>,
        as_of: DateTime<Utc>,
    ) -> Result<ConsentState, Error> {
        let lookup = lookup.into();
        read_consistent(self.store(), |reads| {
            let customer = view::find(reads, &lookup)?.ok_or(Error::UnknownCustomer)?;
            Ok(consent_of(reads, customer, as_of)?)
        })
    }

    /// Whether the company may pursue `purpose` with the customer `lookup` finds on
    /// `channel`, as of `as_of`, and the decision that answer rests on (or the default
    /// regime, when they never decided).
    ///
    /// ```
    /// use chrono::Utc;
    /// use oneview::{Channel, ConsentChoice, ConsentStatus, Customers, Event, Identifier,
    ///     IdentifierKind, MemoryStore, Purpose};
    ///
    /// let customers = Customers::new(MemoryStore::new());
    /// customers.ingest(
    ///     Event::builder("web", Channel::Web, "Signed Up")
    ///         .identifier(IdentifierKind::Email, "ana@example.com")
    ///         .consent(ConsentChoice::new(Purpose::Marketing, ConsentStatus::Granted))
    ///         .consent(
    ///             ConsentChoice::new(Purpose::Marketing, ConsentStatus::Denied).on(Channel::Sms),
    ///         )
    ///         .build()?,
    /// )?;
    /// let ana = Identifier::email("ana@example.com")?;
    /// let email = customers.may_contact(ana.clone(), &Purpose::Marketing, &Channel::Email, Utc::now())?;
    /// let sms = customers.may_contact(ana.clone(), &Purpose::Marketing, &Channel::Sms, Utc::now())?;
    /// let analytics = customers.may_contact(ana, &Purpose::Analytics, &Channel::Web, Utc::now())?;
    /// assert!(email.allowed);
    /// assert!(!sms.allowed);
    /// assert!(!analytics.allowed, "opt-in by default: never asked, never allowed");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn may_contact(
        &self,
        lookup: impl Into<Lookup>,
        purpose: &Purpose,
        channel: &Channel,
        as_of: DateTime<Utc>,
    ) -> Result<ContactDecision, Error> {
        Ok(self
            .consent(lookup, as_of)?
            .decide(purpose, channel, self.consent_defaults()))
    }

    /// Of `candidates` (a segment, a campaign list), those who may be contacted for
    /// `purpose` on `channel` as of `as_of`, and those left out with the decision that
    /// leaves them out. The one way to turn a list of customers into a list to contact,
    /// so no list is contacted without saying what for. A candidate who is not a known
    /// customer (erased, say) is left out as unknown.
    ///
    /// ```
    /// use chrono::Utc;
    /// use oneview::{Channel, ConsentChoice, ConsentStatus, Customers, Event, Identifier,
    ///     IdentifierKind, Lookup, MemoryStore, Purpose};
    ///
    /// let customers = Customers::new(MemoryStore::new());
    /// for (email, status) in [("ana@example.com", ConsentStatus::Granted), ("bo@example.com", ConsentStatus::Denied)] {
    ///     customers.ingest(
    ///         Event::builder("web", Channel::Web, "Signed Up")
    ///             .identifier(IdentifierKind::Email, email)
    ///             .consent(ConsentChoice::new(Purpose::Marketing, status))
    ///             .build()?,
    ///     )?;
    /// }
    /// let candidates = ["ana@example.com", "bo@example.com"]
    ///     .map(|e| Lookup::from(Identifier::email(e).unwrap()));
    /// let list = customers.to_contact(candidates, &Purpose::Marketing, &Channel::Email, Utc::now())?;
    /// assert_eq!(list.allowed.len(), 1);
    /// assert_eq!(list.left_out.len(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn to_contact<L: Into<Lookup>>(
        &self,
        candidates: impl IntoIterator<Item = L>,
        purpose: &Purpose,
        channel: &Channel,
        as_of: DateTime<Utc>,
    ) -> Result<ContactList, Error> {
        let mut list = ContactList {
            purpose: purpose.clone(),
            channel: channel.clone(),
            as_of,
            allowed: Vec::new(),
            left_out: Vec::new(),
            unknown: 0,
        };
        let mut seen: HashSet<CustomerId> = HashSet::new();
        let lookups: Vec<Lookup> = candidates.into_iter().map(Into::into).collect();
        for group in lookups.chunks(CANDIDATES_PER_SNAPSHOT) {
            let found = read_consistent(self.store(), |reads| {
                group
                    .iter()
                    .map(|lookup| {
                        let Some(customer) = view::find(reads, lookup)? else {
                            return Ok::<_, Error>(None);
                        };
                        Ok(Some((customer, consent_of(reads, customer, as_of)?)))
                    })
                    .collect::<Result<Vec<_>, _>>()
            })?;
            for candidate in found {
                let Some((customer, state)) = candidate else {
                    list.unknown += 1;
                    continue;
                };
                if !seen.insert(customer) {
                    continue;
                }
                let decision = state.decide(purpose, channel, self.consent_defaults());
                if decision.allowed {
                    list.allowed.push(customer);
                } else {
                    list.left_out.push((customer, decision));
                }
            }
        }
        Ok(list)
    }

    /// Records a consent decision on the customer's behalf — an agent taking it by phone,
    /// say — as of now. It is stored like any other: as an event (source
    /// [`OPERATOR_SOURCE`], name `Consent Updated`, carrying one of the customer's
    /// identifiers) with the decision, and `by` goes on the audit trail in the same step.
    pub fn set_consent(
        &self,
        lookup: impl Into<Lookup>,
        choice: ConsentChoice,
        by: &Actor,
    ) -> Result<Receipt, Error> {
        by.validate()?;
        let (profile, anchor) = self.anchor(lookup.into(), "set_consent")?;
        let event = Event::builder(OPERATOR_SOURCE, Channel::Support, "Consent Updated")
            .with_identifier(anchor)
            .properties(json!({ "recorded_by": by.name }))
            .consent(choice.clone())
            .build()?;
        let audit = AuditRecord::now(
            by,
            AuditAction::ConsentSet {
                customer: profile.id,
                event: event.id,
                purpose: choice.purpose,
                channel: choice.channel,
                status: choice.status,
            },
        );
        self.ingest_audited(Record::Event(event), &audit)
    }

    /// The profile `lookup` finds, and the one identifier a record made on the
    /// customer's behalf carries: enough for every rebuild to put the record back with
    /// them, and no more, so it links nothing. `required_by` names the call in the error
    /// for a profile with no identifier.
    pub(crate) fn anchor(
        &self,
        lookup: Lookup,
        required_by: &'static str,
    ) -> Result<(ProfileRecord, Identifier), Error> {
        let profile = read_consistent(self.store(), |reads| {
            let customer = view::find(reads, &lookup)?.ok_or(Error::UnknownCustomer)?;
            reads.profile(customer)?.ok_or(Error::UnknownCustomer)
        })?;
        let anchor = profile
            .identifiers
            .first()
            .cloned()
            .ok_or(ValidationError::Missing {
                field: "identifier",
                required_by,
            })?;
        Ok((profile, anchor))
    }

    /// Everything held about the customer `lookup` finds, as one document to hand them
    /// (see [`CustomerExport`] for the format). `by` goes on the audit trail.
    pub fn export(&self, lookup: impl Into<Lookup>, by: &Actor) -> Result<CustomerExport, Error> {
        by.validate()?;
        let lookup = lookup.into();
        let export = read_consistent(self.store(), |reads| {
            let customer = view::find(reads, &lookup)?.ok_or(Error::UnknownCustomer)?;
            export_of(reads, customer)
        })?;
        let audit = AuditRecord::now(
            by,
            AuditAction::Export {
                customer: export.customer,
            },
        );
        self.store().apply(&[Commit {
            audit: vec![audit],
            ..Commit::default()
        }])?;
        Ok(export)
    }

    /// [`export`](Self::export), with the names of the segments of `segments` the
    /// customer belongs to at export time (segments are the application's definitions,
    /// evaluated on read; see [`audience`](crate::audience)) in place of the live ones.
    pub fn export_with_segments(
        &self,
        lookup: impl Into<Lookup>,
        by: &Actor,
        segments: &[crate::audience::Segment],
        computed: &[crate::audience::ComputedTrait],
    ) -> Result<CustomerExport, Error> {
        let lookup = lookup.into();
        let mut export = self.export(lookup, by)?;
        export.segments = self
            .segments_of(export.customer, segments, computed, export.exported_at)?
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        Ok(export)
    }

    /// Erases the customer `lookup` finds: the profile, every profile merged into it, and
    /// their identifiers, events, interactions, traits and consent, in one atomic step;
    /// refusals and overrides of other profiles naming an erased identifier go too. Each
    /// erased identifier's keyed hash joins the suppression list, so later records carrying
    /// it are refused ([`Error::Suppressed`]); the audit trail keeps who asked, why, the
    /// counts and those hashes, and nothing personal.
    ///
    /// Then the store [purges](Store::purge) what the removed records left behind; on
    /// SQLite that empties the write-ahead log into the file, waiting (up to ten seconds)
    /// for readers in the middle of a read. If only the purge fails, the erasure has
    /// landed: call [`purge`](Self::purge) again.
    pub fn erase(&self, lookup: impl Into<Lookup>, by: &Actor) -> Result<ErasureReport, Error> {
        by.validate()?;
        let lookup = lookup.into();
        let mut new_key: Option<PrivacyKey> = None;
        let report = self.write(|| {
            let (profile, removed, stored_key, redacted) = read_to_write(self.store(), |reads| {
                let customer = view::find(reads, &lookup)?.ok_or(Error::UnknownCustomer)?;
                let profile = reads.profile(customer)?.ok_or(Error::UnknownCustomer)?;
                let count = |summary: Vec<crate::store::ChannelSummary>| -> u64 {
                    summary.iter().map(|s| s.count).sum()
                };
                let removed = ErasedCounts {
                    profiles: profile.members.len() as u64,
                    identifiers: profile.identifiers.len() as u64,
                    events: count(reads.event_summary(customer)?),
                    interactions: count(reads.interaction_summary(customer)?),
                    trait_operations: reads.trait_operations(customer)?.len() as u64,
                    consent: reads.consent(customer)?.len() as u64,
                };
                let redacted = redactions(reads, &profile)?;
                Ok::<_, Error>((profile, removed, reads.privacy_key()?, redacted))
            })?;
            let mut identity = Vec::new();
            let key = match stored_key {
                Some(key) => key,
                None => {
                    let key = new_key.get_or_insert_with(PrivacyKey::generate).clone();
                    identity.push(IdentityChange::SetPrivacyKey(key.clone()));
                    key
                }
            };
            let hashes: Vec<String> = profile
                .identifiers
                .iter()
                .map(|i| suppression_hash(&key, i))
                .collect();
            let audit = AuditRecord::now(
                by,
                AuditAction::Erase {
                    customer: profile.id,
                    removed,
                    suppressed: hashes.clone(),
                },
            );
            let suppress = profile
                .identifiers
                .iter()
                .zip(&hashes)
                .map(|(identifier, hash)| Suppression {
                    hash: hash.clone(),
                    kind: identifier.kind().clone(),
                    at: audit.at,
                    audit: audit.id,
                })
                .collect();
            let mut expect = versions(&redacted);
            identity.push(IdentityChange::Erase(Box::new(Erasure {
                customer: profile.id,
                identifiers: profile.identifiers.clone(),
                suppress,
                redacted,
            })));
            expect.extend([
                Expectation::Live {
                    customer: profile.id,
                },
                Expectation::Identifiers {
                    customer: profile.id,
                    identifiers: profile.identifiers.clone(),
                },
                Expectation::Evidence {
                    customer: profile.id,
                    count: removed.events + removed.interactions,
                },
            ]);
            let commit = Commit {
                expect,
                identity,
                audit: vec![audit.clone()],
                ..Commit::default()
            };
            Attempt::of(
                self.store()
                    .apply(std::slice::from_ref(&commit))
                    .map(|_| ErasureReport {
                        customer: profile.id,
                        removed,
                        suppressed: hashes,
                        audit: audit.id,
                    }),
            )
        })?;
        self.purge()?;
        Ok(report)
    }

    /// Removes the content of every event and interaction older than `policy` keeps it,
    /// as of `now` (see [`RetentionPolicy`] for what goes and what stays), then purges
    /// the store. Returns how many records it touched; running it again at the same time
    /// touches none. `by` goes on the audit trail with the counts.
    ///
    /// It works in batches of a thousand records, each applied on its own: an
    /// interrupted run leaves the records it reached stripped, and the next run finishes.
    ///
    /// Live segment membership follows: where these customers keep segments live, the
    /// profiles whose records lost content are decided again as of [`now`](Self::now)
    /// (a segment that read the removed properties can be left); elsewhere, their digests
    /// of events, which copy the properties segments read, are dropped and made again
    /// from the stripped events by the next decision.
    pub fn apply_retention(
        &self,
        policy: &RetentionPolicy,
        now: DateTime<Utc>,
        by: &Actor,
    ) -> Result<RetentionReport, Error> {
        by.validate()?;
        policy.validate()?;
        let mut report = RetentionReport::default();
        let mut stripped_on = BTreeSet::new();
        if !policy.events.is_empty() {
            let mut batch = Vec::new();
            for stored in self.store().scan_events() {
                let stored = stored?;
                let event = stored.record;
                if !policy.expires_event(&event, now) {
                    continue;
                }
                if let Some(stripped) = strip_event(&event) {
                    stripped_on.insert(stored.customer);
                    batch.push(Redacted::Event(stripped));
                }
                if batch.len() == RETENTION_BATCH {
                    report.events += self.redact(std::mem::take(&mut batch))?;
                }
            }
            report.events += self.redact(batch)?;
        }
        if policy.interactions.is_some() {
            let mut batch = Vec::new();
            each_customer_of(self.store(), |customer| {
                for interaction in all_interactions(self.store(), customer)? {
                    if policy.expires_interaction(&interaction, now)
                        && let Some(stripped) = strip_interaction(&interaction)
                    {
                        stripped_on.insert(customer);
                        batch.push(Redacted::Interaction(stripped));
                    }
                }
                if batch.len() >= RETENTION_BATCH {
                    report.interactions += self.redact(std::mem::take(&mut batch))?;
                }
                Ok::<_, Error>(())
            })?;
            report.interactions += self.redact(batch)?;
        }
        self.settle_membership_after_retention(&stripped_on.into_iter().collect::<Vec<_>>())?;
        let audit = AuditRecord::now(
            by,
            AuditAction::Retention {
                events: report.events,
                interactions: report.interactions,
            },
        );
        self.store().apply(&[Commit {
            audit: vec![audit],
            ..Commit::default()
        }])?;
        self.purge()?;
        Ok(report)
    }

    /// After retention removed the content of records of the live profiles `stripped_on`:
    /// where segments are kept live, their membership is decided again from what is
    /// left; elsewhere, the digest of their events kept with their membership (which
    /// holds copies of event properties) is dropped, to be made again from the stripped
    /// events by the next decision. Either way no copy of removed content outlives it.
    fn settle_membership_after_retention(&self, stripped_on: &[CustomerId]) -> Result<(), Error> {
        if self.keeps_segments_live() {
            self.maintain(Touched::everything(stripped_on), self.now())?;
            return Ok(());
        }
        for chunk in stripped_on.chunks(RETENTION_BATCH) {
            self.write(|| {
                let updates = read_to_write(self.store(), |reads| {
                    let mut updates = Vec::new();
                    for &customer in chunk {
                        let state = reads.membership(customer)?;
                        if state.digest.is_some() {
                            updates.push(MembershipUpdate {
                                customer,
                                version: state.version,
                                changes: Vec::new(),
                                recheck_at: state.recheck_at,
                                digest: None,
                            });
                        }
                    }
                    Ok::<_, StoreError>(updates)
                })?;
                if updates.is_empty() {
                    return Ok(Attempt::Done(()));
                }
                let commit = Commit {
                    membership: updates,
                    ..Commit::default()
                };
                Attempt::of(
                    self.store()
                        .apply(std::slice::from_ref(&commit))
                        .map(|_| ()),
                )
            })?;
        }
        Ok(())
    }

    /// Applies `batch`, rewritten records; an interaction updated meanwhile is left for
    /// the next run (its newer version is stripped then, if it is still old). Returns how
    /// many were rewritten.
    fn redact(&self, batch: Vec<Redacted>) -> Result<u64, Error> {
        if batch.is_empty() {
            return Ok(0);
        }
        let count = batch.len() as u64;
        let commit = Commit {
            expect: versions(&batch),
            identity: vec![IdentityChange::Redact(batch)],
            ..Commit::default()
        };
        match self.store().apply(std::slice::from_ref(&commit)) {
            Ok(_) => Ok(count),
            Err(StoreError::Conflict { .. }) => {
                // One was updated meanwhile: apply the others one by one.
                let IdentityChange::Redact(batch) = &commit.identity[0] else {
                    unreachable!("built above")
                };
                let mut applied = 0;
                for redacted in batch {
                    let single = std::slice::from_ref(redacted);
                    let commit = Commit {
                        expect: versions(single),
                        identity: vec![IdentityChange::Redact(single.to_vec())],
                        ..Commit::default()
                    };
                    match self.store().apply(&[commit]) {
                        Ok(_) => applied += 1,
                        Err(StoreError::Conflict { .. }) => {}
                        Err(err) => return Err(err.into()),
                    }
                }
                Ok(applied)
            }
            Err(err) => Err(err.into()),
        }
    }

    /// Makes the store overwrite what removed records left behind; see [`Store::purge`].
    pub fn purge(&self) -> Result<(), Error> {
        Ok(self.store().purge()?)
    }

    /// Every entry of the suppression list, oldest first.
    pub fn suppressions(&self) -> Result<Vec<Suppression>, Error> {
        Ok(self.store().suppressions()?)
    }

    /// Takes `identifier` off the suppression list, for a person who was erased and came
    /// back asking to be known again: records carrying it are accepted from now on.
    /// [`Error::NotSuppressed`] if it is not on the list.
    pub fn lift_suppression(&self, identifier: &Identifier, by: &Actor) -> Result<(), Error> {
        by.validate()?;
        let key = self.store().privacy_key()?.ok_or(Error::NotSuppressed)?;
        let hash = suppression_hash(&key, identifier);
        if self.store().suppressed(std::slice::from_ref(&hash))?[0].is_none() {
            return Err(Error::NotSuppressed);
        }
        let audit = AuditRecord::now(by, AuditAction::SuppressionLifted { hash: hash.clone() });
        self.store().apply(&[Commit {
            identity: vec![IdentityChange::Lift { hash }],
            audit: vec![audit],
            ..Commit::default()
        }])?;
        Ok(())
    }

    /// The audit trail within `range` of times (`..` for all of it), oldest first.
    ///
    /// ```
    /// use chrono::{Duration, Utc};
    /// use oneview::{Actor, Customers, MemoryStore};
    ///
    /// let customers = Customers::new(MemoryStore::new());
    /// let since_yesterday = customers.audit(Utc::now() - Duration::days(1)..)?;
    /// assert!(since_yesterday.is_empty());
    /// # Ok::<(), oneview::Error>(())
    /// ```
    pub fn audit(&self, range: impl RangeBounds<DateTime<Utc>>) -> Result<Vec<AuditRecord>, Error> {
        let tick = Duration::nanoseconds(1);
        let from = match range.start_bound() {
            Bound::Included(at) => Some(*at),
            Bound::Excluded(at) => Some(*at + tick),
            Bound::Unbounded => None,
        };
        let to = match range.end_bound() {
            Bound::Included(at) => Some(*at + tick),
            Bound::Excluded(at) => Some(*at),
            Bound::Unbounded => None,
        };
        Ok(self.store().audit(from, to)?)
    }
}

/// What each redacted interaction rests on: its version, which another writer must not
/// change before the redaction lands. Events are immutable and need none.
fn versions(redacted: &[Redacted]) -> Vec<Expectation> {
    redacted
        .iter()
        .filter_map(|r| match r {
            Redacted::Interaction(i) => Some(Expectation::InteractionVersion {
                id: i.id,
                updated_at: Some(i.updated_at),
            }),
            Redacted::Event(_) | Redacted::Override(_) => None,
        })
        .collect()
}

/// The stored event or interaction with id `evidence`, as a redaction of itself, with
/// the live profile it belongs to.
fn evidence_record(
    reads: &dyn Reads,
    evidence: uuid::Uuid,
) -> Result<Option<(CustomerId, Redacted)>, StoreError> {
    if let Some(stored) = reads.event(EventId::from_uuid(evidence))? {
        return Ok(Some((stored.customer, Redacted::Event(stored.record))));
    }
    Ok(reads
        .interaction(InteractionId::from_uuid(evidence))?
        .map(|stored| (stored.customer, Redacted::Interaction(stored.record))))
}

/// The records of other customers that carried one of `profile`'s identifiers in a link
/// they refused, rewritten without its identifiers.
fn redactions(reads: &dyn Reads, profile: &ProfileRecord) -> Result<Vec<Redacted>, StoreError> {
    let erased = |i: &Identifier| profile.identifiers.contains(i);
    let mut evidence: Vec<uuid::Uuid> = reads
        .refusals_of(&profile.identifiers)?
        .into_iter()
        .map(|refusal| refusal.evidence)
        .collect();
    evidence.sort_unstable();
    evidence.dedup();
    let mut redacted = Vec::new();
    for id in evidence {
        match evidence_record(reads, id)? {
            Some((owner, mut record)) if owner != profile.id => {
                match &mut record {
                    Redacted::Event(event) => event.identifiers.retain(|i| !erased(i)),
                    Redacted::Interaction(i) => i.identifiers.retain(|i| !erased(i)),
                    Redacted::Override(_) => unreachable!("evidence is an event or interaction"),
                }
                redacted.push(record);
            }
            _ => {}
        }
    }
    // Corrections that also constrain other customers stay, without the erased values.
    for record in reads.overrides(&profile.identifiers)? {
        let rule = match &record.rule {
            Override::Separate { a, b } => {
                let keep = |side: &[Identifier]| -> Vec<Identifier> {
                    side.iter().filter(|i| !erased(i)).cloned().collect()
                };
                let (a, b) = (keep(a), keep(b));
                if a.is_empty() || b.is_empty() {
                    continue;
                }
                Override::Separate { a, b }
            }
            Override::Unlink { evidence, merge } => {
                let elsewhere = evidence_record(reads, *evidence)?
                    .is_some_and(|(owner, _)| owner != profile.id);
                if !elsewhere {
                    continue;
                }
                let mut merge = merge.clone();
                merge.linking.retain(|i| !erased(i));
                merge.absorbed_side.retain(|i| !erased(i));
                Override::Unlink {
                    evidence: *evidence,
                    merge,
                }
            }
            // A link to the erased customer, or a ruling on one of their values, says
            // nothing about anyone else.
            _ => continue,
        };
        redacted.push(Redacted::Override(OverrideRecord { rule, ..record }));
    }
    Ok(redacted)
}

/// The consent in force for the live profile `customer` at `as_of`.
pub(crate) fn consent_of(
    reads: &dyn Reads,
    customer: CustomerId,
    as_of: DateTime<Utc>,
) -> Result<ConsentState, StoreError> {
    match reads.profile(customer)? {
        Some(profile) => consent_in(reads, &profile, as_of),
        None => Ok(ConsentState::default()),
    }
}

/// The consent in force for `profile`, read already, at `as_of`.
pub(crate) fn consent_in(
    reads: &dyn Reads,
    profile: &ProfileRecord,
    as_of: DateTime<Utc>,
) -> Result<ConsentState, StoreError> {
    let merges = reads.merges(profile.id)?;
    let records = reads.consent(profile.id)?;
    Ok(resolve_consent(&profile.members, &merges, &records, as_of))
}

fn export_of(reads: &dyn Reads, customer: CustomerId) -> Result<CustomerExport, Error> {
    let profile = reads.profile(customer)?.ok_or(Error::UnknownCustomer)?;
    let now = Utc::now();
    let mut trait_history = reads.trait_operations(customer)?;
    trait_history.sort_by(|a, b| a.application_order(b));
    let view::History {
        events,
        interactions,
        feedback,
    } = view::History::of(
        view::events_oldest_first(reads, customer, true)?,
        view::interactions_oldest_first(reads, customer, true)?,
    );
    let merges = reads.merges(customer)?;
    let decisions = reads.consent(customer)?;
    let in_force = resolve_consent(&profile.members, &merges, &decisions, now);
    let mut history: Vec<_> = decisions.into_iter().map(|a| a.record).collect();
    history.sort_by(|a, b| a.order_key().cmp(&b.order_key()));
    Ok(CustomerExport {
        format: EXPORT_FORMAT.to_owned(),
        version: EXPORT_VERSION,
        exported_at: now,
        customer: profile.id,
        created_at: profile.created_at,
        merged_profiles: profile
            .members
            .iter()
            .copied()
            .filter(|m| *m != profile.id)
            .collect(),
        traits: resolve_traits(&trait_history),
        trait_history,
        events,
        interactions,
        feedback,
        consent: ExportedConsent {
            history,
            in_force: in_force.effective().to_vec(),
        },
        merges,
        refused_links: reads.refusals(customer)?,
        corrections: reads.overrides(&profile.identifiers)?,
        identifiers: profile.identifiers,
        segments: reads
            .membership(customer)?
            .memberships
            .into_iter()
            .map(|m| m.segment)
            .collect(),
        segment_history: crate::audience::membership_history(reads, &profile.members)?,
    })
}
