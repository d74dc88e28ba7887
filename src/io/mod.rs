//! Whole-store export and import: the entire store as JSON Lines, to back it up, to move
//! it to another backend, or to carry it across releases whose storage is incompatible.
//!
//! # Format (version 2)
//! One JSON object per line, each tagged by its `record` field:
//!
//! | `record` | holds |
//! |---|---|
//! | `header` | first line: `format` (`oneview.store`), `version`, `written_at`, and the identity `policy` the store was resolved under |
//! | `privacy_key` | the key of the suppression hashes, in hex (so they still match after import); at most one |
//! | `event` | an [`Event`], as stored |
//! | `interaction` | the stored (latest) version of an [`Interaction`] |
//! | `override` | an operator's correction ([`OverrideRecord`]) |
//! | `suppression` | an entry of the suppression list |
//! | `audit` | an entry of the audit trail |
//! | `membership` | a [`MembershipChange`]: a profile entering or leaving a segment kept live |
//! | `end` | last line: `records`, how many lines lie between the header and it |
//!
//! Events, interactions and overrides come in one stream in evidence order (time, then
//! id): the order resolution follows, so an import replays history as it happened, and
//! identifiers, merges, refusals, traits and consent — everything derived from that
//! evidence — come out as they were, customer and merge ids included. Suspicions
//! (`Override::Suspect`) are derived too, and are written only so the file is complete.
//! Membership changes come last, each profile's oldest first: they are the history of
//! segments kept live, which the evidence alone cannot give back (each was decided at the
//! time it was made, under the definitions then in force). An import replays the evidence
//! without deciding membership, then restores the changes as they were, and with them each
//! profile's membership; when the importing [`Customers`] keeps segments live, it then
//! decides every profile once as of now ([`Customers::rebuild_memberships`]), which
//! records a change only where membership moved since the file was written. Version 1
//! files, which hold no membership, are read too.
//!
//! The file holds personal data and the privacy key: keep it as carefully as the store.
//!
//! # Import: all or nothing, as far as the file goes
//! [`read_store`] reads the whole file once before writing anything: a line that is not
//! JSON, not a known record, or not a valid event or interaction is an [`IoError::Line`]
//! naming the line, a file cut short (no `end` line, or a count that does not match) is
//! [`IoError::Truncated`], a membership change that does not follow from the ones
//! before it (entering a segment the profile is in) is [`LineProblem::Membership`], and
//! the store is left untouched. It imports only into an empty store
//! ([`IoError::NotEmpty`]) resolved under the same policy ([`IoError::PolicyMismatch`]). Writing then goes in batches: if the store itself fails
//! midway (a full disk), the store holds part of the file — delete it and import again
//! into a fresh one; an import is not resumable. The same holds for membership changes
//! of a profile the evidence does not give (a file edited by hand):
//! [`LineProblem::UnknownProfile`] names the line once the evidence is in.
//!
//! ```
//! use oneview::{Channel, Customers, Event, IdentifierKind, MemoryStore};
//!
//! let source = Customers::new(MemoryStore::new());
//! source.ingest(
//!     Event::builder("web", Channel::Web, "Signed Up")
//!         .identifier(IdentifierKind::Email, "ana@example.com")
//!         .build()?,
//! )?;
//! let mut file = Vec::new();
//! oneview::io::write_store(&source, &mut file, &mut |_| {})?;
//!
//! let target = Customers::new(MemoryStore::new());
//! let report = oneview::io::read_store(&target, std::io::Cursor::new(file), &mut |_| {})?;
//! assert_eq!(report.events, 1);
//! let ana = "email:ana@example.com".parse::<oneview::Identifier>()?;
//! assert_eq!(target.profile(ana.clone())?, source.profile(ana)?);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, Seek, SeekFrom, Write};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::Customers;
use crate::audience::membership_history;
use crate::conversation::{all_interactions, each_customer_of};
use crate::identity::Policy;
use crate::ingest::{Record, event_key, interaction_key};
use crate::model::{
    AuditRecord, CustomerId, Event, EvidenceKey, Interaction, MembershipChange, Override,
    OverrideRecord, ValidationError,
};
use crate::store::{
    Commit, IdentityChange, MembershipUpdate, PrivacyKey, Reads, Store, StoreError, Suppression,
    read_consistent,
};

/// The `format` of a store file's header.
pub const STORE_FORMAT: &str = "oneview.store";

/// The version of the store file this build writes, and the newest it reads.
pub const STORE_VERSION: u32 = 2;

/// How many records an import hands to one [`Customers::ingest_batch`].
const IMPORT_BATCH: usize = 2000;

/// How many profiles' membership an import restores in one commit.
const MEMBERSHIP_BATCH: usize = 1000;

/// One line of a store file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Line {
    /// The first line.
    Header(Header),
    /// The key of the suppression hashes, in lowercase hex.
    PrivacyKey {
        /// 64 hex digits.
        key: String,
    },
    /// An event.
    Event(Event),
    /// An interaction, its stored version.
    Interaction(Interaction),
    /// An operator's correction.
    Override(OverrideRecord),
    /// An entry of the suppression list.
    Suppression(Suppression),
    /// An entry of the audit trail.
    Audit(AuditRecord),
    /// A profile entering or leaving a segment kept live.
    Membership(MembershipChange),
    /// The last line.
    End {
        /// How many lines lie between the header and this one.
        records: u64,
    },
}

/// What the first line of a store file says.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// Always [`STORE_FORMAT`].
    pub format: String,
    /// The file's version.
    pub version: u32,
    /// When it was written.
    pub written_at: DateTime<Utc>,
    /// The policy the store was resolved under.
    pub policy: Policy,
}

/// How many records of each kind a store file holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Events.
    pub events: u64,
    /// Interactions.
    pub interactions: u64,
    /// Operator corrections and suspicions.
    pub overrides: u64,
    /// Suppression entries.
    pub suppressions: u64,
    /// Audit records.
    pub audit: u64,
    /// Membership changes.
    #[serde(default)]
    pub membership_changes: u64,
}

/// What a long export or import has done so far, for a progress display.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Which pass: `"writing"` for an export; `"checking"` then `"importing"` for an
    /// import.
    pub pass: &'static str,
    /// Lines done in this pass.
    pub lines: u64,
}

/// Why an export or import failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum IoError {
    /// A line of the file is wrong; nothing was imported.
    #[error("line {line}: {problem}")]
    Line {
        /// Its number, from 1.
        line: u64,
        /// What is wrong.
        problem: LineProblem,
    },
    /// The file ends before its `end` line, or holds another number of lines than it
    /// says: it was cut short. Nothing was imported.
    #[error("the file was cut short: {found} records after the header, {expected:?} expected")]
    Truncated {
        /// The count its `end` line gives, if it has one.
        expected: Option<u64>,
        /// The records found.
        found: u64,
    },
    /// The store to import into holds data already.
    #[error("the store is not empty: import only into a new store")]
    NotEmpty,
    /// The file was written under another identity policy than the one the target
    /// resolves under, so its profiles would not come out the same.
    #[error("the file was resolved under another identity policy than the target's")]
    PolicyMismatch {
        /// The file's policy.
        file: Box<Policy>,
    },
    /// Reading or writing the file failed.
    #[error("file: {0}")]
    File(#[from] std::io::Error),
    /// The store failed (on import, possibly after part of the file was written).
    #[error(transparent)]
    Customers(#[from] crate::Error),
}

impl From<StoreError> for IoError {
    fn from(err: StoreError) -> Self {
        Self::Customers(err.into())
    }
}

/// What is wrong with one line of a store file.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum LineProblem {
    /// Not JSON, or not a record this version knows.
    #[error("{0}")]
    Json(#[from] serde_json::Error),
    /// An event or interaction that fails validation.
    #[error("{0}")]
    Invalid(#[from] ValidationError),
    /// The first line is not a header, or a header comes later.
    #[error("the header must be the first line, and only it")]
    Header,
    /// The header names another format.
    #[error("format {0:?} is not {STORE_FORMAT}")]
    Format(String),
    /// The file is of a newer version than this build reads.
    #[error("version {found} is newer than the {supported} this build reads")]
    Version {
        /// The file's version.
        found: u32,
        /// The newest this build reads.
        supported: u32,
    },
    /// A line after the `end` line.
    #[error("a record after the end line")]
    AfterEnd,
    /// A privacy key that is not 64 hex digits, or a second one.
    #[error("the privacy key must be 64 hex digits, and given once")]
    Key,
    /// A membership change that does not follow from the profile's changes before it:
    /// entering a segment it is in, or leaving one it is not in.
    #[error(
        "profile {customer} cannot {} segment {segment:?}: it is {} in it",
        if *entered { "enter" } else { "leave" },
        if *entered { "already" } else { "not" }
    )]
    Membership {
        /// The profile.
        customer: CustomerId,
        /// The segment.
        segment: String,
        /// Whether the change enters it.
        entered: bool,
    },
    /// A membership change of a profile that the file's evidence does not give.
    #[error("profile {0} is not among the profiles the file's evidence gives")]
    UnknownProfile(CustomerId),
}

/// What [`read_store`] imported.
pub type ImportReport = Counts;

/// Writes everything `customers` holds to `out` as a store file (see the module docs),
/// from one consistent snapshot, calling `progress` every few thousand lines. Returns
/// how many records of each kind it wrote.
///
/// Interactions are gathered in memory to be put in evidence order among the events, so
/// writing takes memory in proportion to their number.
pub fn write_store<S: Store>(
    customers: &Customers<S>,
    mut out: impl Write,
    progress: &mut dyn FnMut(Progress),
) -> Result<Counts, IoError> {
    let mut counts = Counts::default();
    let lines = Cell::new(0u64);
    let mut put = |out: &mut dyn Write, line: &Line| -> Result<(), IoError> {
        serde_json::to_writer(&mut *out, line).map_err(std::io::Error::from)?;
        out.write_all(b"\n")?;
        lines.set(lines.get() + 1);
        if lines.get().is_multiple_of(4096) {
            progress(Progress {
                pass: "writing",
                lines: lines.get(),
            });
        }
        Ok(())
    };
    read_consistent(customers.store(), |reads| -> Result<(), IoError> {
        put(
            &mut out,
            &Line::Header(Header {
                format: STORE_FORMAT.to_owned(),
                version: STORE_VERSION,
                written_at: Utc::now(),
                policy: customers.policy().clone(),
            }),
        )?;
        if let Some(key) = reads.privacy_key()? {
            put(&mut out, &Line::PrivacyKey { key: hex(&key.0) })?;
        }
        // `all_overrides` lists them in evidence order already.
        let overrides = reads.all_overrides()?;
        let interactions = every_interaction(reads)?;
        let mut events = reads.scan_events().peekable();
        let mut interactions = interactions.into_iter().peekable();
        let mut overrides = overrides.into_iter().peekable();
        loop {
            let event = match events.peek() {
                Some(Ok(stored)) => Some(event_key(&stored.record)),
                Some(Err(_)) => {
                    let failed = events.next().expect("peeked");
                    return Err(failed.expect_err("peeked an error").into());
                }
                None => None,
            };
            let interaction = interactions.peek().map(interaction_key);
            let correction = overrides.peek().map(override_key);
            let Some(first) = [event, interaction, correction].into_iter().flatten().min() else {
                break;
            };
            let line = if event == Some(first) {
                counts.events += 1;
                Line::Event(events.next().expect("peeked")?.record)
            } else if interaction == Some(first) {
                counts.interactions += 1;
                Line::Interaction(interactions.next().expect("peeked"))
            } else {
                counts.overrides += 1;
                Line::Override(overrides.next().expect("peeked"))
            };
            put(&mut out, &line)?;
        }
        for suppression in reads.suppressions()? {
            counts.suppressions += 1;
            put(&mut out, &Line::Suppression(suppression))?;
        }
        for record in reads.audit(None, None)? {
            counts.audit += 1;
            put(&mut out, &Line::Audit(record))?;
        }
        each_customer_of(reads, |customer| -> Result<(), IoError> {
            let Some(profile) = reads.profile(customer)? else {
                return Ok(());
            };
            for change in membership_history(reads, &profile.members)? {
                counts.membership_changes += 1;
                put(&mut out, &Line::Membership(change))?;
            }
            Ok(())
        })?;
        Ok(())
    })?;
    let records = lines.get() - 1;
    put(&mut out, &Line::End { records })?;
    out.flush()?;
    Ok(counts)
}

/// Where an override sits in evidence order: when it was made, then its id.
fn override_key(record: &OverrideRecord) -> EvidenceKey {
    EvidenceKey {
        at: record.at,
        id: *record.id.as_uuid(),
    }
}

/// Every stored interaction, in evidence order.
fn every_interaction(reads: &dyn Reads) -> Result<Vec<Interaction>, StoreError> {
    let mut all = Vec::new();
    each_customer_of(reads, |customer| {
        all.extend(all_interactions(reads, customer)?);
        Ok::<_, StoreError>(())
    })?;
    all.sort_by_key(interaction_key);
    Ok(all)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut key = [0u8; 32];
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(key)
}

/// Reads a store file written by [`write_store`] into the empty store of `customers`:
/// the whole file is checked first, and nothing is written unless all of it is sound
/// (see the module docs). Calls `progress` every few thousand lines of each pass.
pub fn read_store<S: Store>(
    customers: &Customers<S>,
    mut input: impl BufRead + Seek,
    progress: &mut dyn FnMut(Progress),
) -> Result<ImportReport, IoError> {
    let start = input.stream_position()?;
    let expected = check(&mut input, customers.policy(), progress)?;
    let store = customers.store();
    let empty = store.customers(None, 1)?.is_empty()
        && store.all_overrides()?.is_empty()
        && store.suppressions()?.is_empty()
        && store.audit(None, None)?.is_empty()
        && store.privacy_key()?.is_none();
    if !empty {
        return Err(IoError::NotEmpty);
    }
    input.seek(SeekFrom::Start(start))?;
    // Membership is restored from the file, not decided while the evidence goes in.
    let replay = customers.without_live_segments();
    let mut memberships: Vec<(u64, MembershipChange)> = Vec::new();
    let mut counts = Counts::default();
    let mut batch: Vec<Record> = Vec::new();
    let mut tail: Vec<IdentityChange> = Vec::new();
    let mut audit: Vec<AuditRecord> = Vec::new();
    let mut text = String::new();
    let mut number = 0u64;
    while next_line(&mut input, &mut text, &mut number, "importing", progress)? {
        let line: Line = serde_json::from_str(&text).map_err(|err| IoError::Line {
            line: number,
            problem: err.into(),
        })?;
        match line {
            Line::Header(_) | Line::End { .. } => {}
            Line::PrivacyKey { key } => {
                let key = unhex(&key).ok_or(IoError::Line {
                    line: number,
                    problem: LineProblem::Key,
                })?;
                store.apply(&[Commit {
                    identity: vec![IdentityChange::SetPrivacyKey(PrivacyKey(key))],
                    ..Commit::default()
                }])?;
            }
            Line::Event(event) => {
                counts.events += 1;
                batch.push(Record::Event(event));
            }
            Line::Interaction(interaction) => {
                counts.interactions += 1;
                batch.push(Record::Interaction(interaction));
            }
            Line::Override(record) => {
                counts.overrides += 1;
                replay.ingest_all(std::mem::take(&mut batch))?;
                correct(&replay, record)?;
            }
            Line::Suppression(suppression) => {
                counts.suppressions += 1;
                tail.push(IdentityChange::Suppress(suppression));
            }
            Line::Audit(record) => {
                counts.audit += 1;
                audit.push(record);
            }
            Line::Membership(change) => {
                counts.membership_changes += 1;
                memberships.push((number, change));
            }
        }
        if batch.len() >= IMPORT_BATCH {
            replay.ingest_all(std::mem::take(&mut batch))?;
        }
    }
    replay.ingest_all(batch)?;
    // Suppressions go in last: the evidence of other customers may carry an erased
    // identifier in a link it refused, and must not be refused itself.
    store.apply(&[Commit {
        identity: tail,
        audit,
        ..Commit::default()
    }])?;
    restore_memberships(store, memberships)?;
    if customers.keeps_segments_live() {
        customers.rebuild_memberships(customers.now())?;
    }
    debug_assert_eq!(
        counts.events
            + counts.interactions
            + counts.overrides
            + counts.suppressions
            + counts.audit
            + counts.membership_changes,
        expected
    );
    Ok(counts)
}

/// Stores `changes` (each with its line), each profile's in the order given, as the
/// first membership updates of their profiles.
fn restore_memberships<S: Store>(
    store: &S,
    changes: Vec<(u64, MembershipChange)>,
) -> Result<(), IoError> {
    // Each profile's update, with the line of its first change.
    let mut updates: Vec<(u64, MembershipUpdate)> = Vec::new();
    let mut index: HashMap<CustomerId, usize> = HashMap::new();
    for (line, change) in changes {
        let at = *index.entry(change.customer).or_insert_with(|| {
            updates.push((
                line,
                MembershipUpdate {
                    customer: change.customer,
                    version: 0,
                    changes: Vec::new(),
                    recheck_at: None,
                    digest: None,
                },
            ));
            updates.len() - 1
        });
        updates[at].1.changes.push(change);
    }
    for chunk in updates.chunks(MEMBERSHIP_BATCH) {
        let customers: Vec<CustomerId> = chunk.iter().map(|(_, u)| u.customer).collect();
        let found = store.profiles(&customers)?;
        if let Some(((line, update), _)) = chunk.iter().zip(&found).find(|(_, p)| p.is_none()) {
            return Err(IoError::Line {
                line: *line,
                problem: LineProblem::UnknownProfile(update.customer),
            });
        }
    }
    let updates: Vec<MembershipUpdate> = updates.into_iter().map(|(_, u)| u).collect();
    for chunk in updates.chunks(MEMBERSHIP_BATCH) {
        store.apply(&[Commit {
            membership: chunk.to_vec(),
            ..Commit::default()
        }])?;
    }
    Ok(())
}

/// Reads the next line into `text` and counts it, reporting progress every few thousand
/// lines; `false` at the end of the input.
fn next_line(
    input: &mut impl BufRead,
    text: &mut String,
    number: &mut u64,
    pass: &'static str,
    progress: &mut dyn FnMut(Progress),
) -> std::io::Result<bool> {
    text.clear();
    if input.read_line(text)? == 0 {
        return Ok(false);
    }
    *number += 1;
    if number.is_multiple_of(4096) {
        progress(Progress {
            pass,
            lines: *number,
        });
    }
    Ok(true)
}

/// Applies an operator's correction where it happened in the evidence, as the operator
/// did: stored, and the profiles it names rebuilt. Suspicions are left to resolution,
/// which finds them again from the same evidence.
fn correct<S: Store>(customers: &Customers<S>, record: OverrideRecord) -> Result<(), IoError> {
    let (seeds, through) = match &record.rule {
        Override::Suspect { .. } => return Ok(()),
        Override::Block { identifier } | Override::Allow { identifier } => {
            (vec![identifier.clone()], vec![identifier.clone()])
        }
        _ => (record.identifiers(), Vec::new()),
    };
    customers.rebuild_with(&seeds, &through, vec![record], true, None)?;
    Ok(())
}

/// Reads every line once, checking it, and returns how many records lie between the
/// header and the end line.
fn check(
    input: &mut impl BufRead,
    policy: &Policy,
    progress: &mut dyn FnMut(Progress),
) -> Result<u64, IoError> {
    let mut text = String::new();
    let mut number = 0u64;
    let mut records = 0u64;
    let mut end: Option<u64> = None;
    let mut key_seen = false;
    let mut held: HashMap<CustomerId, HashSet<String>> = HashMap::new();
    while next_line(input, &mut text, &mut number, "checking", progress)? {
        let fail = |problem: LineProblem| IoError::Line {
            line: number,
            problem,
        };
        if end.is_some() {
            return Err(fail(LineProblem::AfterEnd));
        }
        let line: Line = serde_json::from_str(&text).map_err(|err| fail(err.into()))?;
        match (&line, number) {
            (Line::Header(header), 1) => {
                if header.format != STORE_FORMAT {
                    return Err(fail(LineProblem::Format(header.format.clone())));
                }
                if header.version > STORE_VERSION {
                    return Err(fail(LineProblem::Version {
                        found: header.version,
                        supported: STORE_VERSION,
                    }));
                }
                if header.policy != *policy {
                    return Err(IoError::PolicyMismatch {
                        file: Box::new(header.policy.clone()),
                    });
                }
                continue;
            }
            (Line::Header(_), _) | (_, 1) => return Err(fail(LineProblem::Header)),
            (Line::End { records: said }, _) => {
                end = Some(*said);
                continue;
            }
            (Line::PrivacyKey { key }, _) => {
                if key_seen || unhex(key).is_none() {
                    return Err(fail(LineProblem::Key));
                }
                key_seen = true;
            }
            (Line::Event(event), _) => event.validate().map_err(|e| fail(e.into()))?,
            (Line::Interaction(interaction), _) => {
                interaction.validate().map_err(|e| fail(e.into()))?;
            }
            (Line::Membership(change), _) => {
                let segments = held.entry(change.customer).or_default();
                let follows = if change.entered {
                    segments.insert(change.segment.clone())
                } else {
                    segments.remove(&change.segment)
                };
                if !follows {
                    return Err(fail(LineProblem::Membership {
                        customer: change.customer,
                        segment: change.segment.clone(),
                        entered: change.entered,
                    }));
                }
            }
            _ => {}
        }
        records += 1;
    }
    match end {
        Some(said) if said == records => Ok(records - u64::from(key_seen)),
        _ => Err(IoError::Truncated {
            expected: end,
            found: records,
        }),
    }
}
