//! The storage contract: small, sync, object-safe traits that any crate can implement.
//!
//! The engine decides and the store persists. Reads are split by concern
//! ([`IdentityStore`], [`EventStore`], [`InteractionStore`], [`TraitStore`],
//! [`PrivacyStore`], [`MembershipStore`]); every write
//! goes through [`Store::apply`], which takes the engine's decisions as data ([`Commit`]s)
//! and applies them all or nothing. A backend holds no business rules: it checks the
//! expectations a commit states, keeps the invariants below and nothing else.
//!
//! # Invariants every backend keeps
//! - An identifier belongs to at most one profile.
//! - A profile is either *live* or merged into exactly one live profile; reads given a merged
//!   id answer for the live profile it resolves to, and include everything attributed to the
//!   profiles merged into it.
//! - An event id is stored at most once; a repeat is reported as [`CommitOutcome::Duplicate`].
//! - A failed [`Store::apply`] leaves no trace.
//!
//! # Concurrency
//! Traits are sync and `Send + Sync`; async applications call them from a blocking task.
//! Two writers may decide from the same snapshot: each commit lists the [`Expectation`]s its
//! decision rests on, and a store refuses a commit whose expectations no longer hold with
//! [`StoreError::Conflict`], upon which the engine decides again. A backend that can
//! hold its other writers back from a decision's first read to its commit does so in
//! [`Store::plan_and_apply`], where the expectations hold by construction.
//!
//! Each read method answers from one committed state. A read that needs several calls
//! (the unified view, a timeline page, an explanation) goes through [`Store::snapshot`]
//! (or [`read_consistent`]), so that a merge landing between two calls cannot tear it.
//!
//! # Implementing
//! Implement the six read traits and [`Store`], then run the behaviour tests in
//! `conformance` (feature `testkit`) from your crate's tests.

mod expect;
pub mod memory;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "sqlite")]
pub mod sqlite;

#[cfg(any(test, feature = "testkit"))]
pub mod conformance;

use std::error::Error as StdError;
use std::fmt::Debug;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use uuid::Uuid;

use crate::model::{
    AuditRecord, Channel, ConsentRecord, CustomerId, Event, EventId, Identifier, IdentifierKind,
    Interaction, InteractionId, MembershipChange, MembershipState, MergeRecord, OverrideRecord,
    Refusal, TraitOperation,
};

pub use memory::MemoryStore;

/// The most items one page may hold; larger requests are clamped to it.
pub const MAX_PAGE_SIZE: usize = 1000;

/// A position in a timeline, which runs newest first: by time, then by id, both descending.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TimelineCursor {
    /// The item's time (`occurred_at`).
    pub at: DateTime<Utc>,
    /// The item's id (an event or interaction id), to order items with the same time.
    pub id: Uuid,
}

impl TimelineCursor {
    /// The greatest position: every item sorts at or before it.
    pub const MAX: TimelineCursor = TimelineCursor {
        at: DateTime::<Utc>::MAX_UTC,
        id: Uuid::max(),
    };
}

/// Which page of a timeline to read.
///
/// Pages are keyset-paged: a page continues strictly after its cursor, so items added while
/// a reader pages never shift or repeat the items it has yet to see.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageRequest {
    before: Option<TimelineCursor>,
    limit: usize,
}

impl PageRequest {
    /// The newest `limit` items (clamped to 1..=[`MAX_PAGE_SIZE`]).
    pub fn first(limit: usize) -> Self {
        Self {
            before: None,
            limit: limit.clamp(1, MAX_PAGE_SIZE),
        }
    }

    /// The `limit` items that come after `cursor` (older than it).
    pub fn after(cursor: TimelineCursor, limit: usize) -> Self {
        Self {
            before: Some(cursor),
            ..Self::first(limit)
        }
    }

    /// Items must sort strictly after this cursor, when set.
    pub fn cursor(&self) -> Option<TimelineCursor> {
        self.before
    }

    /// The most items to return, at least 1.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Whether an item at `position` belongs on a page continuing after this request's cursor.
    pub fn admits(&self, position: TimelineCursor) -> bool {
        self.before.is_none_or(|cursor| position < cursor)
    }
}

/// One page of a timeline, newest first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Where the next page starts; `None` exactly when there are no more items.
    pub next: Option<TimelineCursor>,
}

impl<T> Page<T> {
    /// A page with no item and none after it.
    pub(crate) fn empty() -> Self {
        Self {
            items: Vec::new(),
            next: None,
        }
    }

    /// The page of `items`, read newest first up to one more than `limit`: the one more,
    /// when there is one, says a next page follows the last item kept.
    pub(crate) fn from_one_more(
        mut items: Vec<T>,
        limit: usize,
        position: impl Fn(&T) -> TimelineCursor,
    ) -> Self {
        let more = items.len() > limit;
        items.truncate(limit);
        let next = if more {
            items.last().map(position)
        } else {
            None
        };
        Self { items, next }
    }
}

/// A record together with the profile it is attributed to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Attributed<T> {
    /// The profile. On writes, the profile it is attributed to; on reads, the live
    /// profile that one resolves to now.
    pub customer: CustomerId,
    /// The record.
    pub record: T,
}

/// A profile's identity as stored: who it is and what was merged into it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileRecord {
    /// The live profile's id.
    pub id: CustomerId,
    /// When the profile was created, by the time of the evidence that created it.
    pub created_at: DateTime<Utc>,
    /// Every id that resolves to this profile, itself included, in ascending order.
    pub members: Vec<CustomerId>,
    /// Every identifier of the profile and its members, in ascending order.
    pub identifiers: Vec<Identifier>,
}

/// The live profile an identifier resolves to, with what the engine needs to rank it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Owner {
    /// The live profile.
    pub customer: CustomerId,
    /// When it was created, by the time of the evidence that created it.
    pub created_at: DateTime<Utc>,
}

/// How many items of one kind a profile has on one channel, and when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelSummary {
    /// The channel.
    pub channel: Channel,
    /// How many items.
    pub count: u64,
    /// The earliest item's time.
    pub first: DateTime<Utc>,
    /// The latest item's time.
    pub last: DateTime<Utc>,
}

/// A change to the identity graph, decided by the engine.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
#[non_exhaustive]
pub enum IdentityChange {
    /// A new, empty, live profile.
    CreateProfile {
        /// Its id; must not exist yet.
        id: CustomerId,
        /// When the evidence that created it happened.
        created_at: DateTime<Utc>,
    },
    /// An unowned identifier joins a profile.
    Attach {
        /// The identifier; must belong to no profile yet.
        identifier: Identifier,
        /// The profile; must exist.
        customer: CustomerId,
    },
    /// A live profile is merged into another live profile. Profiles already merged into the
    /// absorbed one now resolve to the survivor as well.
    Merge(MergeRecord),
    /// A link was refused; the record is kept so it can be explained.
    Refuse(Refusal),
    /// An operator override is stored.
    Override(OverrideRecord),
    /// Profiles rebuilt from their evidence replace what was stored about them.
    Rewrite(Box<Rewrite>),
    /// A live profile and everything about it are removed for good; see [`Erasure`].
    Erase(Box<Erasure>),
    /// Stored records are rewritten: each event and interaction given replaces the
    /// content of the stored one with its id (keeping its attribution; one not stored is
    /// skipped), and each override replaces the one with its id. Retention uses it to
    /// remove what old records said.
    Redact(Vec<Redacted>),
    /// An entry joins the suppression list (outside an erasure: when a store is restored
    /// from an export).
    Suppress(Suppression),
    /// A suppression is removed: records carrying the identifier are accepted again.
    Lift {
        /// The suppression's keyed hash.
        hash: String,
    },
    /// The key that suppression hashes are made with; must not be set yet
    /// ([`CommitProblem::KeyExists`] otherwise, a conflict).
    SetPrivacyKey(PrivacyKey),
}

/// The removal of one customer: the live profile `customer`, every profile merged into
/// it, and everything attributed to them — identifiers, events with their trait
/// operations and consent records, interactions, merges, refusals, segment membership
/// and its changes — plus every refusal
/// and override, of any profile, naming one of `identifiers`. The `suppress` entries are
/// added to the suppression list in the same step.
///
/// A backend must leave none of the removed data readable; one that keeps deleted bytes
/// in its files (free pages, a write-ahead log) must overwrite them, in `apply` or in
/// [`Store::purge`] (`SqliteStore` zeroes deleted rows with `secure_delete` and empties
/// its log in `purge`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Erasure {
    /// The live profile; must be live.
    pub customer: CustomerId,
    /// Every identifier the profile holds: refusals and overrides naming them are removed
    /// wherever they are kept.
    pub identifiers: Vec<Identifier>,
    /// What to add to the suppression list.
    pub suppress: Vec<Suppression>,
    /// Records of *other* customers that carried an erased identifier (in a link that
    /// was refused), each as it is to be kept from now on: without it. The store
    /// replaces the stored version's content and keeps its attribution; an override
    /// given here is stored again (same id) after those naming an erased identifier
    /// are removed.
    #[serde(default)]
    pub redacted: Vec<Redacted>,
}

/// A stored record rewritten without the identifiers of an erased customer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "record", rename_all = "snake_case")]
pub enum Redacted {
    /// An event.
    Event(Event),
    /// An interaction.
    Interaction(Interaction),
    /// An operator override that still says something about other customers (a
    /// separation, with the erased identifiers taken out of its sides).
    Override(OverrideRecord),
}

/// An entry of the suppression list: the keyed hash of an erased identifier. Records
/// carrying an identifier with this hash are refused, so a replay cannot bring an erased
/// person back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suppression {
    /// HMAC-SHA-256 of the identifier's canonical form (`kind:value`) under the store's
    /// [`PrivacyKey`], in lowercase hex.
    pub hash: String,
    /// The identifier's kind (not its value).
    pub kind: IdentifierKind,
    /// When it was added.
    pub at: DateTime<Utc>,
    /// The audit record of the erasure that added it.
    pub audit: Uuid,
}

/// The secret that suppression hashes are keyed with, kept in the store so that they
/// match for as long as the store lives; its `Debug` form does not show it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrivacyKey(pub [u8; 32]);

impl Debug for PrivacyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PrivacyKey(..)")
    }
}

/// The state of one profile id, as a [`Rewrite`] sets it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileState {
    /// The profile.
    pub id: CustomerId,
    /// When the evidence that founded it happened.
    pub created_at: DateTime<Utc>,
    /// The live profile it resolves to: itself when live. Must be a profile set live by
    /// the same rewrite, or already live and not named by it.
    pub live: CustomerId,
}

/// Profiles rebuilt from their evidence: the new state of every profile id, identifier,
/// event and interaction involved, and the merges and refusals that describe it.
///
/// A store applies it as given: profiles are created or updated, identifiers, events
/// (with their trait operations) and interactions move to the profiles named, the merges
/// whose absorbed profile is named and the refusals recorded against a named profile are
/// replaced by `merges` and `refusals`. A profile the rewrite does not name that resolved
/// to a named live profile resolves to whatever that profile resolves to afterwards.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Rewrite {
    /// Every profile id involved, old and new.
    pub profiles: Vec<ProfileState>,
    /// The profile each identifier belongs to; `None` for an identifier nobody holds now.
    pub identifiers: Vec<(Identifier, Option<CustomerId>)>,
    /// The profile each stored event (and its trait operations) belongs to.
    pub events: Vec<(EventId, CustomerId)>,
    /// The profile each stored interaction belongs to.
    pub interactions: Vec<(InteractionId, CustomerId)>,
    /// The merges that built the rebuilt profiles.
    pub merges: Vec<MergeRecord>,
    /// The links refused while rebuilding them.
    pub refusals: Vec<Refusal>,
}

/// A fact a decision rests on, checked by the store before it applies the decision.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "expect", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Expectation {
    /// The identifier resolves to this live profile, or to none when `owner` is `None`.
    Owner {
        /// The identifier.
        identifier: Identifier,
        /// The live profile it should resolve to.
        owner: Option<CustomerId>,
    },
    /// The profile exists and is live (not merged into another).
    Live {
        /// The profile.
        customer: CustomerId,
    },
    /// The live profile has exactly this many events and interactions: nothing was added to
    /// it since it was read.
    Evidence {
        /// The profile.
        customer: CustomerId,
        /// Its events plus its interactions.
        count: u64,
    },
    /// The live profile holds exactly these identifiers (in ascending order): nothing was
    /// attached to it, merged into it or moved out of it since it was read. Per-kind
    /// limits are decided on this set, so a decision that rests on one states it.
    Identifiers {
        /// The profile.
        customer: CustomerId,
        /// Its identifiers, in ascending order.
        identifiers: Vec<Identifier>,
    },
    /// The stored version of an interaction was last updated at this time, or there is none.
    InteractionVersion {
        /// The interaction.
        id: InteractionId,
        /// Its stored `updated_at`, or `None` when it is not stored.
        updated_at: Option<DateTime<Utc>>,
    },
}

/// One decision to apply: identity changes and the records they attribute.
///
/// Within a commit, changes apply in order: expectations are checked, then identity
/// changes, then the event, interaction and trait operations are stored. If the event is
/// already stored, the whole commit is skipped and reported as a duplicate.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Commit {
    /// What must hold for the commit to apply.
    pub expect: Vec<Expectation>,
    /// Changes to the identity graph.
    pub identity: Vec<IdentityChange>,
    /// An event to append, if any.
    pub event: Option<Attributed<Event>>,
    /// An interaction to store, replacing any stored version with the same id.
    pub interaction: Option<Attributed<Interaction>>,
    /// Trait operations to append.
    pub traits: Vec<Attributed<TraitOperation>>,
    /// Consent decisions to append; each names the event that carried it, and moves with
    /// that event when a [`Rewrite`] moves it.
    pub consent: Vec<Attributed<ConsentRecord>>,
    /// Entries of the audit trail to append.
    pub audit: Vec<AuditRecord>,
    /// Segment membership decided for profiles, applied last.
    #[serde(default)]
    pub membership: Vec<MembershipUpdate>,
}

/// Segment membership decided for one profile (live, or merged away and leaving its
/// segments) on the version of its [`MembershipState`] it was read at.
///
/// A store checks that the stored version (0 when none is stored) is still `version`
/// ([`CommitProblem::MembershipVersion`], a conflict, otherwise), applies `changes` in
/// order — entering adds a [`Membership`](crate::model::Membership) since the change's
/// time with its reasons, leaving removes it; entering a segment the profile is in or
/// leaving one it is not in is [`CommitProblem::Membership`] — keeps every change for the
/// profile's timeline, sets `recheck_at` and `digest` and bumps the version by one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MembershipUpdate {
    /// The profile; must exist.
    pub customer: CustomerId,
    /// The version of its membership state the changes were decided on.
    pub version: u64,
    /// Entries and exits, each naming `customer`.
    pub changes: Vec<MembershipChange>,
    /// When to evaluate the profile again with no new evidence; `None`: not until
    /// evidence arrives.
    pub recheck_at: Option<DateTime<Utc>>,
    /// The profile's [`EventDigest`](crate::model::EventDigest) from now on (`None`: none).
    #[serde(default)]
    pub digest: Option<crate::model::EventDigest>,
}

/// What became of one commit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommitOutcome {
    /// It was applied.
    Applied,
    /// Its event was already stored, so nothing in it was applied.
    Duplicate,
}

/// What is wrong with a commit, for [`StoreError::Conflict`] and [`StoreError::InvalidCommit`].
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CommitProblem {
    /// An identifier does not resolve to the expected profile.
    #[error("{identifier} resolves to {found:?}, expected {expected:?}")]
    UnexpectedOwner {
        /// The identifier.
        identifier: Identifier,
        /// The profile expected.
        expected: Option<CustomerId>,
        /// The profile found.
        found: Option<CustomerId>,
    },
    /// An identifier to attach already belongs to a profile.
    #[error("{identifier} already belongs to {owner}")]
    AlreadyOwned {
        /// The identifier.
        identifier: Identifier,
        /// Its profile.
        owner: CustomerId,
    },
    /// A profile that had to be live was merged into another.
    #[error("profile {0} is not live")]
    NotLive(CustomerId),
    /// A stored interaction is not at the expected version.
    #[error("interaction {id} is at version {found:?}, expected {expected:?}")]
    InteractionVersion {
        /// The interaction.
        id: InteractionId,
        /// The version expected.
        expected: Option<DateTime<Utc>>,
        /// The version found.
        found: Option<DateTime<Utc>>,
    },
    /// A profile the commit refers to does not exist.
    #[error("profile {0} does not exist")]
    UnknownCustomer(CustomerId),
    /// A profile to create exists already.
    #[error("profile {0} exists already")]
    CustomerExists(CustomerId),
    /// A merge of a profile into itself.
    #[error("profile {0} cannot be merged into itself")]
    SelfMerge(CustomerId),
    /// A profile holds a different number of events and interactions than expected.
    #[error("profile {customer} holds {found} events and interactions, expected {expected}")]
    EvidenceCount {
        /// The profile.
        customer: CustomerId,
        /// The count expected.
        expected: u64,
        /// The count found.
        found: u64,
    },
    /// A profile holds other identifiers than expected.
    #[error("profile {customer} holds {found} identifiers, not the {expected} expected")]
    IdentifiersChanged {
        /// The profile.
        customer: CustomerId,
        /// How many were expected.
        expected: usize,
        /// How many it holds.
        found: usize,
    },
    /// A rewrite names an event or interaction that is not stored.
    #[error("record {0} is not stored")]
    UnknownRecord(Uuid),
    /// A privacy key is set already.
    #[error("a privacy key is set already")]
    KeyExists,
    /// A concurrent transaction changed what the commit was checked against, and the
    /// backend cannot tell which expectation it broke (PostgreSQL: a serialization
    /// failure or a deadlock). Like every conflict, deciding again resolves it.
    #[error("a concurrent commit changed what this one was checked against")]
    Concurrent,
    /// A profile's membership state is not at the version a [`MembershipUpdate`] was
    /// decided on: another writer updated it since.
    #[error("membership of {customer} is at version {found}, expected {expected}")]
    MembershipVersion {
        /// The profile.
        customer: CustomerId,
        /// The version expected.
        expected: u64,
        /// The version found.
        found: u64,
    },
    /// A membership change enters a segment the profile is in, leaves one it is not in,
    /// or names another profile than its update.
    #[error("profile {customer} cannot {} segment {segment:?}", if *.entered { "enter" } else { "leave" })]
    Membership {
        /// The profile.
        customer: CustomerId,
        /// The segment.
        segment: String,
        /// Whether the change entered it.
        entered: bool,
    },
    /// A rewrite makes a profile resolve to one that is not live.
    #[error("profile {id} cannot resolve to {live}, which is not live")]
    NotLiveTarget {
        /// The profile.
        id: CustomerId,
        /// Its intended live profile.
        live: CustomerId,
    },
}

/// Why a store call failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A commit's expectations no longer hold (another writer got there first); nothing was
    /// applied. Deciding again against fresh reads resolves it.
    #[error("commit #{commit} conflicts with the stored state: {problem}")]
    Conflict {
        /// The commit's position in the slice given to [`Store::apply`].
        commit: usize,
        /// What no longer holds.
        problem: CommitProblem,
    },
    /// A commit breaks an invariant of the contract (a bug in whoever built it); nothing
    /// was applied.
    #[error("commit #{commit} is invalid: {problem}")]
    InvalidCommit {
        /// The commit's position in the slice given to [`Store::apply`].
        commit: usize,
        /// What it breaks.
        problem: CommitProblem,
    },
    /// The backend gave up on a statement that ran longer than its configured limit
    /// (PostgreSQL's `statement_timeout`); nothing of the call was applied. Retrying may
    /// succeed on a less loaded server; a limit that is too short for the work fails
    /// again.
    #[error("{backend} backend: a statement ran past its time limit: {source}")]
    Timeout {
        /// The backend's name.
        backend: &'static str,
        /// Its own error.
        source: Box<dyn StdError + Send + Sync>,
    },
    /// The backend itself failed (I/O, a corrupt file, a lost connection).
    #[error("{backend} backend failed: {source}")]
    Backend {
        /// The backend's name.
        backend: &'static str,
        /// Its own error.
        source: Box<dyn StdError + Send + Sync>,
    },
}

/// A stream of stored events, oldest first, that a backend reads in chunks.
pub type EventScan<'a> =
    Box<dyn Iterator<Item = Result<Attributed<Event>, StoreError>> + Send + 'a>;

/// Where `event` sits on its profile's timeline.
pub(crate) fn event_position(event: &Event) -> TimelineCursor {
    TimelineCursor {
        at: event.occurred_at,
        id: *event.id.as_uuid(),
    }
}

/// `at` in nanoseconds since the epoch, as the SQL backends store times; a time outside
/// what they can hold (the years 1678 to 2261) clamps to the nearer end, which keeps it
/// on the right side of every stored time when it bounds a query.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn clamped_nanos(at: DateTime<Utc>) -> i64 {
    at.timestamp_nanos_opt().unwrap_or(if at.timestamp() < 0 {
        i64::MIN
    } else {
        i64::MAX
    })
}

/// A failure inside one commit of [`Store::apply`], before it is tagged with the
/// commit's position: what backends that check commits one by one carry up.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) enum Fault {
    /// An expectation no longer holds.
    Conflict(CommitProblem),
    /// The commit breaks an invariant.
    Invalid(CommitProblem),
    /// The backend failed; a conflict it detected itself (a serialization failure)
    /// takes the commit's position too.
    Store(StoreError),
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
impl From<expect::Refused> for Fault {
    fn from(refused: expect::Refused) -> Self {
        match refused {
            expect::Refused::Stale(problem) => Self::Conflict(problem),
            expect::Refused::Invalid(problem) => Self::Invalid(problem),
        }
    }
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
impl From<StoreError> for Fault {
    fn from(err: StoreError) -> Self {
        Self::Store(err)
    }
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
impl Fault {
    /// The error for the commit at position `commit`.
    pub(crate) fn at(self, commit: usize) -> StoreError {
        match self {
            Self::Conflict(problem) | Self::Store(StoreError::Conflict { commit: _, problem }) => {
                StoreError::Conflict { commit, problem }
            }
            Self::Invalid(problem) => StoreError::InvalidCommit { commit, problem },
            Self::Store(err) => err,
        }
    }
}

/// An [`EventScan`] over chunks that `fetch` reads one at a time: each call gives the next
/// chunk and whether more may follow it. The first error ends the scan.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn chunked_scan<'a>(
    mut fetch: impl FnMut() -> Result<(Vec<Attributed<Event>>, bool), StoreError> + Send + 'a,
) -> EventScan<'a> {
    let mut buffer = Vec::new().into_iter();
    let mut done = false;
    Box::new(std::iter::from_fn(move || {
        if let Some(item) = buffer.next() {
            return Some(Ok(item));
        }
        if done {
            return None;
        }
        match fetch() {
            Ok((chunk, more)) => {
                done = !more;
                buffer = chunk.into_iter();
                buffer.next().map(Ok)
            }
            Err(err) => {
                done = true;
                Some(Err(err))
            }
        }
    }))
}

/// Reads of the identity graph.
pub trait IdentityStore: Debug + Send + Sync {
    /// The live profile each identifier resolves to, in the order given.
    fn owners(&self, identifiers: &[Identifier]) -> Result<Vec<Option<Owner>>, StoreError>;

    /// The live profile `customer` resolves to, if it exists.
    fn profile(&self, customer: CustomerId) -> Result<Option<ProfileRecord>, StoreError>;

    /// [`profile`](Self::profile) of each of `customers`, in the order given. Ingest
    /// asks it once per batch for every profile an identifier of the batch leads to, so
    /// a backend with round trips should answer it in one query; the default asks
    /// [`profile`](Self::profile) per id.
    fn profiles(&self, customers: &[CustomerId]) -> Result<Vec<Option<ProfileRecord>>, StoreError> {
        customers.iter().map(|id| self.profile(*id)).collect()
    }

    /// The merges that built the live profile `customer` resolves to, oldest (`at`, then
    /// id) first.
    fn merges(&self, customer: CustomerId) -> Result<Vec<MergeRecord>, StoreError>;

    /// The refused links recorded against the live profile `customer` resolves to (its
    /// evidence went there), in evidence order.
    fn refusals(&self, customer: CustomerId) -> Result<Vec<Refusal>, StoreError>;

    /// [`refusals`](Self::refusals) of each of `customers`, in the order given. Ingest
    /// asks it once per batch for the profiles whose refusals could make an identifier
    /// suspect, so a backend with round trips should answer it in one query; the
    /// default asks [`refusals`](Self::refusals) per id.
    fn refusals_for(&self, customers: &[CustomerId]) -> Result<Vec<Vec<Refusal>>, StoreError> {
        customers.iter().map(|id| self.refusals(*id)).collect()
    }

    /// The refused links of any of `identifiers`, in evidence order.
    fn refusals_of(&self, identifiers: &[Identifier]) -> Result<Vec<Refusal>, StoreError>;

    /// The operator overrides naming any of `identifiers`, oldest first.
    fn overrides(&self, identifiers: &[Identifier]) -> Result<Vec<OverrideRecord>, StoreError>;

    /// Every stored override, oldest (`at`, then id) first: for a whole-store export.
    fn all_overrides(&self) -> Result<Vec<OverrideRecord>, StoreError>;

    /// Every override that sets one identifier's standing ([`OverrideRecord::standing`]:
    /// suspect, blocked, allowed), oldest (`at`, then id) first.
    fn standing_overrides(&self) -> Result<Vec<OverrideRecord>, StoreError>;

    /// Whether any override is stored: when none is, ingest skips looking them up for
    /// every profile it touches. The default says `true`, which is always safe.
    fn has_overrides(&self) -> Result<bool, StoreError> {
        Ok(true)
    }

    /// Up to `limit` live profile ids greater than `after`, in ascending order.
    fn customers(
        &self,
        after: Option<CustomerId>,
        limit: usize,
    ) -> Result<Vec<CustomerId>, StoreError>;
}

/// Reads of the append-only event log.
pub trait EventStore: Debug + Send + Sync {
    /// The stored event with this id.
    fn event(&self, id: EventId) -> Result<Option<Attributed<Event>>, StoreError>;

    /// The live profile each stored event belongs to, in the order given; `None` for an
    /// id that is not stored. Ingestion asks this for a whole batch at once, so a backend
    /// with round trips should answer it in one query; the default asks [`event`] per id.
    ///
    /// [`event`]: Self::event
    fn event_owners(&self, ids: &[EventId]) -> Result<Vec<Option<CustomerId>>, StoreError> {
        ids.iter()
            .map(|id| Ok(self.event(*id)?.map(|stored| stored.customer)))
            .collect()
    }

    /// A page of the events of the profile `customer` resolves to, newest first by
    /// (`occurred_at`, id).
    fn events(&self, customer: CustomerId, page: PageRequest) -> Result<Page<Event>, StoreError>;

    /// A page of the events of the profile `customer` resolves to that occurred at or
    /// after `since`: [`events`](Self::events) without the older ones, paged alike.
    ///
    /// Rules over the last days (a segment of "ordered in the last 90 days") read only
    /// those. The default reads [`events`](Self::events) and stops at the first older
    /// event; a backend with an index by profile and time bounds its read there instead,
    /// and reads no older row.
    fn events_since(
        &self,
        customer: CustomerId,
        since: DateTime<Utc>,
        page: PageRequest,
    ) -> Result<Page<Event>, StoreError> {
        let mut page = self.events(customer, page)?;
        if let Some(older) = page.items.iter().position(|e| e.occurred_at < since) {
            page.items.truncate(older);
            page.next = None;
        }
        Ok(page)
    }

    /// Event counts and times per channel for the profile `customer` resolves to, by channel.
    fn event_summary(&self, customer: CustomerId) -> Result<Vec<ChannelSummary>, StoreError>;

    /// Where the newest event of the live profile `customer` sits: its time and id, as
    /// the first page of [`events`](Self::events) would give. Ingest asks this of every
    /// profile it touches, to tell a late record; the default reads that page, and a
    /// backend with an index answers from it without reading the events.
    fn latest_event(&self, customer: CustomerId) -> Result<Option<TimelineCursor>, StoreError> {
        let page = self.events(customer, PageRequest::first(1))?;
        Ok(page.items.first().map(event_position))
    }

    /// A position no stored event sorts after, by (`occurred_at`, id); `None` when no
    /// event is stored.
    ///
    /// Ingest asks it once per batch: a batch that sorts wholly after it holds no late
    /// record, so ingest need not ask each profile it touches for its newest event (see
    /// [`latest_event`](Self::latest_event)). The default, [`TimelineCursor::MAX`], tells
    /// nothing and is always safe; a backend with a time index answers with the newest
    /// event's position. Any answer at or after that position is correct.
    fn events_bound(&self) -> Result<Option<TimelineCursor>, StoreError> {
        Ok(Some(TimelineCursor::MAX))
    }

    /// Every stored event, oldest first by (`occurred_at`, id), without loading them all
    /// into memory. Events appended during the scan may or may not be seen.
    fn scan_events(&self) -> EventScan<'_>;
}

/// Reads of the interaction history.
pub trait InteractionStore: Debug + Send + Sync {
    /// The stored version of this interaction.
    fn interaction(&self, id: InteractionId)
    -> Result<Option<Attributed<Interaction>>, StoreError>;

    /// A page of the interactions of the profile `customer` resolves to, newest first by
    /// (`occurred_at`, id).
    fn interactions(
        &self,
        customer: CustomerId,
        page: PageRequest,
    ) -> Result<Page<Interaction>, StoreError>;

    /// Interaction counts and times per channel for the profile `customer` resolves to.
    fn interaction_summary(&self, customer: CustomerId) -> Result<Vec<ChannelSummary>, StoreError>;

    /// Whether any interaction is stored: when none is, ingest skips asking each profile
    /// for its newest. The default says `true`, which is always safe.
    fn has_interactions(&self) -> Result<bool, StoreError> {
        Ok(true)
    }

    /// A position no stored interaction sorts after, by (`occurred_at`, id); `None` when
    /// none is stored. See [`EventStore::events_bound`]; the default tells nothing.
    fn interactions_bound(&self) -> Result<Option<TimelineCursor>, StoreError> {
        Ok(Some(TimelineCursor::MAX))
    }

    /// Where the newest interaction of the live profile `customer` sits, as the first page
    /// of [`interactions`](Self::interactions) would give; see
    /// [`EventStore::latest_event`].
    fn latest_interaction(
        &self,
        customer: CustomerId,
    ) -> Result<Option<TimelineCursor>, StoreError> {
        let page = self.interactions(customer, PageRequest::first(1))?;
        Ok(page.items.first().map(|interaction| TimelineCursor {
            at: interaction.occurred_at,
            id: *interaction.id.as_uuid(),
        }))
    }
}

/// Reads of trait operations.
pub trait TraitStore: Debug + Send + Sync {
    /// Every trait operation of the profile `customer` resolves to, in no particular order.
    fn trait_operations(&self, customer: CustomerId) -> Result<Vec<TraitOperation>, StoreError>;
}

/// Reads of consent, the suppression list and the audit trail.
pub trait PrivacyStore: Debug + Send + Sync {
    /// Every consent decision of the profile `customer` resolves to, in no particular
    /// order. Unlike other reads, each comes with the profile it is *recorded on* — the
    /// live profile or one merged into it — since consent resolution tells the sides of a
    /// merge apart.
    fn consent(&self, customer: CustomerId) -> Result<Vec<Attributed<ConsentRecord>>, StoreError>;

    /// The suppression entry of each hash, in the order given; `None` where there is none.
    fn suppressed(&self, hashes: &[String]) -> Result<Vec<Option<Suppression>>, StoreError>;

    /// Every suppression entry, oldest first.
    fn suppressions(&self) -> Result<Vec<Suppression>, StoreError>;

    /// Whether any suppression entry is stored: when none is, ingest skips hashing the
    /// identifiers of every record. The default says `true`, which is always safe.
    fn has_suppressions(&self) -> Result<bool, StoreError> {
        Ok(true)
    }

    /// The key suppression hashes are made with, once one is set.
    fn privacy_key(&self) -> Result<Option<PrivacyKey>, StoreError>;

    /// The audit records taken at or after `from` and before `to` (either bound may be
    /// open), oldest (`at`, then id) first.
    fn audit(
        &self,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> Result<Vec<AuditRecord>, StoreError>;
}

/// Reads of segment membership kept live ([`MembershipUpdate`] writes it). Unlike other
/// reads, these answer for the profile id given, live or merged away, and not for the
/// profile it resolves to: membership is decided per live profile, and a profile merged
/// away has left its segments.
pub trait MembershipStore: Debug + Send + Sync {
    /// The membership state of `customer`; the default (version 0, no segment) when none
    /// is stored.
    fn membership(&self, customer: CustomerId) -> Result<MembershipState, StoreError>;

    /// Up to `limit` (clamped to [`MAX_PAGE_SIZE`]) profiles in `segment` with ids greater
    /// than `after`, in ascending id order.
    fn segment_members(
        &self,
        segment: &str,
        after: Option<CustomerId>,
        limit: usize,
    ) -> Result<Vec<CustomerId>, StoreError>;

    /// The membership changes recorded on `customer`, newest (`at`, then id) first, as a
    /// timeline page.
    fn membership_changes(
        &self,
        customer: CustomerId,
        page: PageRequest,
    ) -> Result<Page<MembershipChange>, StoreError>;

    /// Up to `limit` (clamped to [`MAX_PAGE_SIZE`]) profiles with ids greater than `after`
    /// whose `recheck_at` is at or before `as_of`, in ascending id order.
    fn due_for_recheck(
        &self,
        as_of: DateTime<Utc>,
        after: Option<CustomerId>,
        limit: usize,
    ) -> Result<Vec<CustomerId>, StoreError>;
}

/// Every read of the contract, as one object: what [`Store::snapshot`] hands out.
pub trait Reads:
    IdentityStore + EventStore + InteractionStore + TraitStore + PrivacyStore + MembershipStore
{
}

impl<
    T: IdentityStore
        + EventStore
        + InteractionStore
        + TraitStore
        + PrivacyStore
        + MembershipStore
        + ?Sized,
> Reads for T
{
}

/// What [`Store::plan_and_apply`] runs: reads that write out the commits they decide on.
pub type PlanCommits<'a> = dyn FnMut(&dyn Reads, &mut Vec<Commit>) -> Result<(), StoreError> + 'a;

/// A complete backend: the reads, and the one way to write.
pub trait Store:
    IdentityStore + EventStore + InteractionStore + TraitStore + PrivacyStore + MembershipStore
{
    /// Runs `reads` against one consistent, committed state of the store: every read made
    /// through the [`Reads`] it is given sees the same state, whatever other threads or
    /// processes commit meanwhile. Reads only: `reads` must not write to this store.
    ///
    /// A backend with transactions runs `reads` in one read transaction (SQLite: a
    /// deferred transaction on one connection; PostgreSQL: `REPEATABLE READ`); an
    /// in-process backend holds its read lock. [`read_consistent`] is the convenient form.
    fn snapshot(
        &self,
        reads: &mut dyn FnMut(&dyn Reads) -> Result<(), StoreError>,
    ) -> Result<(), StoreError>;

    /// Like [`snapshot`](Self::snapshot), for reads that plan commits the caller is about
    /// to [`apply`](Self::apply). A backend may serve them where it writes, holding back
    /// its other writers for as long as `reads` runs: SQLite reads on its writer
    /// connection, whose page cache holds what recent commits touched, where every
    /// commit empties the caches of its readers. The commits still state their
    /// expectations, since another writer may commit between these reads and `apply`.
    /// The default is [`snapshot`](Self::snapshot); [`read_to_write`] is the convenient
    /// form.
    fn snapshot_for_write(
        &self,
        reads: &mut dyn FnMut(&dyn Reads) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        self.snapshot(reads)
    }

    /// Runs `plan` on reads of the latest state, then applies the commits it left in
    /// `commits` as [`apply`](Self::apply) does, returning what became of each. `commits`
    /// is emptied first and holds the commits afterwards, applied or not.
    ///
    /// A backend may run both in one write transaction, holding back every other writer
    /// from the first read to the commit. Nothing can then change between what `plan`
    /// read and the commits, and the backend may leave out checking their expectations:
    /// `plan` must state only expectations that hold on the reads it was given, as the
    /// engine's planning does. `SqliteStore` works this way; the default runs `plan` in
    /// [`snapshot_for_write`](Self::snapshot_for_write), then [`apply`](Self::apply),
    /// which checks them.
    ///
    /// An error `plan` returns comes back as it is, and nothing is applied.
    fn plan_and_apply(
        &self,
        commits: &mut Vec<Commit>,
        plan: &mut PlanCommits<'_>,
    ) -> Result<Vec<CommitOutcome>, StoreError> {
        plan_then_apply(self, commits, plan)
    }

    /// Applies `commits` in order as one atomic unit, returning what became of each.
    ///
    /// # Contract
    /// - A commit whose event id is already stored (before this call, or by an earlier
    ///   commit in it) is skipped whole: [`CommitOutcome::Duplicate`].
    /// - Otherwise its expectations are checked ([`StoreError::Conflict`] if one fails),
    ///   then its changes are applied in order ([`StoreError::InvalidCommit`] if one breaks
    ///   an invariant; [`CommitProblem::AlreadyOwned`] counts as a conflict).
    /// - On any error, nothing from any of the commits is applied.
    fn apply(&self, commits: &[Commit]) -> Result<Vec<CommitOutcome>, StoreError>;

    /// Runs `write` (reads that plan commits, then their [`apply`](Self::apply), all on
    /// this thread) while the writers of every other process wait for it. The engine
    /// turns to it, with the writers of its own process already shut out, for a write
    /// that keeps losing races to other processes, so that it is sure to land. Within
    /// `write`, reads and commits work as anywhere else, and a nested call runs `write`
    /// as it is.
    ///
    /// The default runs `write` as it is: right for a backend that one process writes to,
    /// such as [`MemoryStore`]. `PostgresStore` holds a lock that every other commit waits
    /// for. `SqliteStore` keeps the default: its writers queue for the file's lock, and
    /// another process can only slip in between a write's reads and its commit.
    fn exclusive(
        &self,
        write: &mut dyn FnMut() -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        write()
    }

    /// Overwrites whatever removed records left behind where the backend keeps its data
    /// (free pages, a log, old versions), so that no byte of them can be read back.
    /// Called after an [erasure](Erasure). The default does nothing: right for a backend
    /// that keeps nothing once removed, such as [`MemoryStore`].
    fn purge(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// Runs `read` on one consistent snapshot of `store` (see [`Store::snapshot`]) and returns
/// what it returns.
///
/// ```
/// use oneview::store::{IdentityStore, MemoryStore, read_consistent};
/// use oneview::{Identifier, StoreError};
///
/// let store = MemoryStore::new();
/// let email = Identifier::email("ana@example.com")?;
/// let owner = read_consistent(&store, |reads| -> Result<_, StoreError> {
///     Ok(reads.owners(std::slice::from_ref(&email))?.pop().flatten())
/// })?;
/// assert!(owner.is_none());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn read_consistent<S, T, E>(
    store: &S,
    read: impl FnOnce(&dyn Reads) -> Result<T, E>,
) -> Result<T, E>
where
    S: Store + ?Sized,
    E: From<StoreError>,
{
    run_once(read, |reads| store.snapshot(reads))
}

/// Like [`read_consistent`], for reads that plan a write: runs `read` on
/// [`Store::snapshot_for_write`].
pub fn read_to_write<S, T, E>(
    store: &S,
    read: impl FnOnce(&dyn Reads) -> Result<T, E>,
) -> Result<T, E>
where
    S: Store + ?Sized,
    E: From<StoreError>,
{
    run_once(read, |reads| store.snapshot_for_write(reads))
}

/// [`Store::plan_and_apply`] as two steps: `plan` in [`Store::snapshot_for_write`], then
/// [`Store::apply`]. The default, and what a backend that overrides it falls back to
/// where it cannot hold its writers back.
pub(crate) fn plan_then_apply<S: Store + ?Sized>(
    store: &S,
    commits: &mut Vec<Commit>,
    plan: &mut PlanCommits<'_>,
) -> Result<Vec<CommitOutcome>, StoreError> {
    commits.clear();
    store.snapshot_for_write(&mut |reads| plan(reads, commits))?;
    store.apply(commits)
}

/// Runs `plan` and applies the commits it leaves in `commits` with
/// [`Store::plan_and_apply`]. An error of `plan` comes back as the outer error and
/// nothing is applied; the store's answer, whatever it is, as the inner result.
pub(crate) fn plan_and_apply<S, E>(
    store: &S,
    commits: &mut Vec<Commit>,
    mut plan: impl FnMut(&dyn Reads, &mut Vec<Commit>) -> Result<(), E>,
) -> Result<Result<Vec<CommitOutcome>, StoreError>, E>
where
    S: Store + ?Sized,
{
    let mut failed = None;
    let applied = store.plan_and_apply(commits, &mut |reads, commits| {
        plan(reads, commits).map_err(|err| {
            failed = Some(err);
            StoreError::Backend {
                backend: "plan",
                source: "the plan failed; nothing was applied".into(),
            }
        })
    });
    match failed {
        Some(err) => Err(err),
        None => Ok(applied),
    }
}

/// Runs `write` on [`Store::exclusive`] and returns what it returns.
pub(crate) fn exclusively<S, T, E>(store: &S, write: impl FnOnce() -> Result<T, E>) -> Result<T, E>
where
    S: Store + ?Sized,
    E: From<StoreError>,
{
    let mut write = Some(write);
    let mut answer = None;
    store.exclusive(&mut || {
        if let Some(write) = write.take() {
            answer = Some(write());
        }
        Ok(())
    })?;
    answer.unwrap_or_else(|| Err(not_run("exclusive", "write").into()))
}

/// Runs `read` once inside `snapshot` and hands back its answer.
fn run_once<T, E: From<StoreError>>(
    read: impl FnOnce(&dyn Reads) -> Result<T, E>,
    snapshot: impl FnOnce(
        &mut dyn FnMut(&dyn Reads) -> Result<(), StoreError>,
    ) -> Result<(), StoreError>,
) -> Result<T, E> {
    let mut read = Some(read);
    let mut answer = None;
    snapshot(&mut |reads| {
        if let Some(read) = read.take() {
            answer = Some(read(reads));
        }
        Ok(())
    })?;
    answer.unwrap_or_else(|| Err(not_run("snapshot", "reads").into()))
}

/// What a store that never ran the closure it was given did wrong.
fn not_run(call: &'static str, what: &str) -> StoreError {
    StoreError::Backend {
        backend: call,
        source: format!("the store did not run the {what} it was given").into(),
    }
}

macro_rules! forward_store {
    ($([$($generics:tt)*] $pointer:ty),* $(,)?) => {$(
        impl<$($generics)*> IdentityStore for $pointer {
            fn owners(&self, identifiers: &[Identifier]) -> Result<Vec<Option<Owner>>, StoreError> {
                (**self).owners(identifiers)
            }
            fn profile(&self, customer: CustomerId) -> Result<Option<ProfileRecord>, StoreError> {
                (**self).profile(customer)
            }
            fn profiles(&self, customers: &[CustomerId]) -> Result<Vec<Option<ProfileRecord>>, StoreError> {
                (**self).profiles(customers)
            }
            fn merges(&self, customer: CustomerId) -> Result<Vec<MergeRecord>, StoreError> {
                (**self).merges(customer)
            }
            fn refusals(&self, customer: CustomerId) -> Result<Vec<Refusal>, StoreError> {
                (**self).refusals(customer)
            }
            fn refusals_for(&self, customers: &[CustomerId]) -> Result<Vec<Vec<Refusal>>, StoreError> {
                (**self).refusals_for(customers)
            }
            fn refusals_of(&self, identifiers: &[Identifier]) -> Result<Vec<Refusal>, StoreError> {
                (**self).refusals_of(identifiers)
            }
            fn overrides(&self, identifiers: &[Identifier]) -> Result<Vec<OverrideRecord>, StoreError> {
                (**self).overrides(identifiers)
            }
            fn standing_overrides(&self) -> Result<Vec<OverrideRecord>, StoreError> {
                (**self).standing_overrides()
            }
            fn all_overrides(&self) -> Result<Vec<OverrideRecord>, StoreError> {
                (**self).all_overrides()
            }
            fn has_overrides(&self) -> Result<bool, StoreError> {
                (**self).has_overrides()
            }
            fn customers(&self, after: Option<CustomerId>, limit: usize) -> Result<Vec<CustomerId>, StoreError> {
                (**self).customers(after, limit)
            }
        }
        impl<$($generics)*> EventStore for $pointer {
            fn event(&self, id: EventId) -> Result<Option<Attributed<Event>>, StoreError> {
                (**self).event(id)
            }
            fn event_owners(&self, ids: &[EventId]) -> Result<Vec<Option<CustomerId>>, StoreError> {
                (**self).event_owners(ids)
            }
            fn events(&self, customer: CustomerId, page: PageRequest) -> Result<Page<Event>, StoreError> {
                (**self).events(customer, page)
            }
            fn events_since(&self, customer: CustomerId, since: DateTime<Utc>, page: PageRequest) -> Result<Page<Event>, StoreError> {
                (**self).events_since(customer, since, page)
            }
            fn latest_event(&self, customer: CustomerId) -> Result<Option<TimelineCursor>, StoreError> {
                (**self).latest_event(customer)
            }
            fn event_summary(&self, customer: CustomerId) -> Result<Vec<ChannelSummary>, StoreError> {
                (**self).event_summary(customer)
            }
            fn events_bound(&self) -> Result<Option<TimelineCursor>, StoreError> {
                (**self).events_bound()
            }
            fn scan_events(&self) -> EventScan<'_> {
                (**self).scan_events()
            }
        }
        impl<$($generics)*> InteractionStore for $pointer {
            fn interaction(&self, id: InteractionId) -> Result<Option<Attributed<Interaction>>, StoreError> {
                (**self).interaction(id)
            }
            fn interactions(&self, customer: CustomerId, page: PageRequest) -> Result<Page<Interaction>, StoreError> {
                (**self).interactions(customer, page)
            }
            fn latest_interaction(&self, customer: CustomerId) -> Result<Option<TimelineCursor>, StoreError> {
                (**self).latest_interaction(customer)
            }
            fn has_interactions(&self) -> Result<bool, StoreError> {
                (**self).has_interactions()
            }
            fn interactions_bound(&self) -> Result<Option<TimelineCursor>, StoreError> {
                (**self).interactions_bound()
            }
            fn interaction_summary(&self, customer: CustomerId) -> Result<Vec<ChannelSummary>, StoreError> {
                (**self).interaction_summary(customer)
            }
        }
        impl<$($generics)*> TraitStore for $pointer {
            fn trait_operations(&self, customer: CustomerId) -> Result<Vec<TraitOperation>, StoreError> {
                (**self).trait_operations(customer)
            }
        }
        impl<$($generics)*> PrivacyStore for $pointer {
            fn consent(&self, customer: CustomerId) -> Result<Vec<Attributed<ConsentRecord>>, StoreError> {
                (**self).consent(customer)
            }
            fn suppressed(&self, hashes: &[String]) -> Result<Vec<Option<Suppression>>, StoreError> {
                (**self).suppressed(hashes)
            }
            fn suppressions(&self) -> Result<Vec<Suppression>, StoreError> {
                (**self).suppressions()
            }
            fn has_suppressions(&self) -> Result<bool, StoreError> {
                (**self).has_suppressions()
            }
            fn privacy_key(&self) -> Result<Option<PrivacyKey>, StoreError> {
                (**self).privacy_key()
            }
            fn audit(&self, from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> Result<Vec<AuditRecord>, StoreError> {
                (**self).audit(from, to)
            }
        }
        impl<$($generics)*> MembershipStore for $pointer {
            fn membership(&self, customer: CustomerId) -> Result<MembershipState, StoreError> {
                (**self).membership(customer)
            }
            fn segment_members(&self, segment: &str, after: Option<CustomerId>, limit: usize) -> Result<Vec<CustomerId>, StoreError> {
                (**self).segment_members(segment, after, limit)
            }
            fn membership_changes(&self, customer: CustomerId, page: PageRequest) -> Result<Page<MembershipChange>, StoreError> {
                (**self).membership_changes(customer, page)
            }
            fn due_for_recheck(&self, as_of: DateTime<Utc>, after: Option<CustomerId>, limit: usize) -> Result<Vec<CustomerId>, StoreError> {
                (**self).due_for_recheck(as_of, after, limit)
            }
        }
        impl<$($generics)*> Store for $pointer {
            fn snapshot(
                &self,
                reads: &mut dyn FnMut(&dyn Reads) -> Result<(), StoreError>,
            ) -> Result<(), StoreError> {
                (**self).snapshot(reads)
            }
            fn snapshot_for_write(
                &self,
                reads: &mut dyn FnMut(&dyn Reads) -> Result<(), StoreError>,
            ) -> Result<(), StoreError> {
                (**self).snapshot_for_write(reads)
            }
            fn plan_and_apply(
                &self,
                commits: &mut Vec<Commit>,
                plan: &mut PlanCommits<'_>,
            ) -> Result<Vec<CommitOutcome>, StoreError> {
                (**self).plan_and_apply(commits, plan)
            }
            fn apply(&self, commits: &[Commit]) -> Result<Vec<CommitOutcome>, StoreError> {
                (**self).apply(commits)
            }
            fn exclusive(
                &self,
                write: &mut dyn FnMut() -> Result<(), StoreError>,
            ) -> Result<(), StoreError> {
                (**self).exclusive(write)
            }
            fn purge(&self) -> Result<(), StoreError> {
                (**self).purge()
            }
        }
    )*};
}

forward_store!(
    [T: Store + ?Sized] Arc<T>,
    [T: Store + ?Sized] Box<T>,
    ['a, T: Store + ?Sized] &'a T,
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_and_their_pointers_are_send_sync_and_object_safe() {
        fn assert_store<S: Store>() {}
        assert_store::<MemoryStore>();
        assert_store::<Arc<dyn Store>>();
        assert_store::<Box<dyn Store>>();
        assert_store::<&dyn Store>();
    }

    #[test]
    fn page_limits_are_clamped() {
        assert_eq!(PageRequest::first(0).limit(), 1);
        assert_eq!(PageRequest::first(5).limit(), 5);
        assert_eq!(PageRequest::first(usize::MAX).limit(), MAX_PAGE_SIZE);
    }
}
