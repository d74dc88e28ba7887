//! Segments kept live: membership stored per profile, re-decided after every write for
//! the profiles it touched, and for the segments whose inputs it touched.
//!
//! Every write of [`Customers`] notes what its commits changed, per profile ([`Touched`]);
//! once they have landed, each touched profile is read on one snapshot and the segments
//! that read what changed are evaluated again. Entering and leaving are stored as
//! [`MembershipChange`]s with the reasons, in one [`MembershipUpdate`] per profile
//! evaluated, changed or not, that names the version of its membership it was decided
//! on, so a writer that decided on an older state loses and decides again: whatever
//! order concurrent writers land in, the last decision rests on every record.
//!
//! The events are not read again for that: each profile's state keeps a digest of the
//! events the segments can count, with only the properties they read, which a write
//! extends with its own events. A merge, a rebuild or new definitions make it again from
//! the events.
//!
//! Time moves membership too ("performed twice in the last 30 days"): each profile keeps
//! the first time at which a window closes over one of its events or an event dated
//! later comes into force, and [`Customers::refresh`] evaluates only the profiles whose
//! time has come.

use std::collections::{BTreeSet, HashSet};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::RuleError;
use super::computed::ComputedTrait;
use super::facade::{MembersPage, Needs, Snapshot, named, snapshot_of};
use super::rule::Segment;
use crate::Customers;
use crate::customers::Attempt;
use crate::error::Error;
use crate::model::{CustomerId, EventDigest, EventId, Membership, MembershipChange};
use crate::store::{
    Commit, MAX_PAGE_SIZE, MembershipUpdate, Reads, Store, StoreError, read_to_write,
};
use crate::view::{self, Lookup};

mod reads;

pub(crate) use reads::Touched;
use reads::{Inputs, Projection, Touch, Window, collect_windows, events_of};

/// How many profiles one maintenance step reads on one snapshot and updates in one
/// commit.
const PROFILES_PER_STEP: usize = 1000;

/// The segments a [`Customers`] keeps live, with what each reads.
#[derive(Clone, Debug, Default)]
pub(crate) struct LiveSegments {
    segments: Vec<Segment>,
    computed: Vec<ComputedTrait>,
    /// Per segment, what it reads.
    inputs: Vec<Inputs>,
    /// Per segment, what evaluating it reads, and the computed traits it names (by
    /// index), worked out once instead of for every profile decided on.
    needs: Vec<(Needs, Vec<usize>)>,
    /// Every condition whose verdict moves with time, over every segment.
    windows: Vec<Window>,
    /// What evaluating the windows reads.
    window_needs: Needs,
    /// What of each event the segments read.
    projection: Projection,
}

impl LiveSegments {
    fn new(segments: Vec<Segment>, computed: Vec<ComputedTrait>) -> Result<Self, Error> {
        for definition in &computed {
            definition.validate()?;
        }
        unique(
            computed.iter().map(|c| c.name.as_str()),
            "computed",
            "computed trait",
        )?;
        for segment in &segments {
            segment.validate()?;
        }
        unique(
            segments.iter().map(|s| s.name.as_str()),
            "segments",
            "segment",
        )?;
        let mut windows = Vec::new();
        let mut timed = Vec::new();
        for segment in &segments {
            let before = windows.len();
            collect_windows(&segment.rule, &computed, &mut windows);
            if windows.len() > before {
                timed.push(&segment.rule);
            }
        }
        let inputs = segments
            .iter()
            .map(|s| Inputs::of(&s.rule, &computed))
            .collect();
        let window_needs = Needs::of(timed, &computed);
        let needs = segments
            .iter()
            .map(|s| {
                let named = named([&s.rule], &computed);
                let indices = computed
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| named.iter().any(|n| std::ptr::eq(*n, *c)))
                    .map(|(i, _)| i)
                    .collect();
                (Needs::of([&s.rule], &computed), indices)
            })
            .collect();
        let projection = Projection::of(&segments, &computed);
        Ok(Self {
            segments,
            computed,
            inputs,
            needs,
            windows,
            window_needs,
            projection,
        })
    }

    fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    fn defines(&self, segment: &str) -> bool {
        self.segments.iter().any(|s| s.name == segment)
    }

    /// The first time after `as_of` at which a window closes over an event of
    /// `snapshot`, or an event or interaction dated later comes into force.
    fn next_recheck(&self, snapshot: &Snapshot, as_of: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let future = snapshot
            .events
            .iter()
            .map(|e| e.occurred_at)
            .chain(snapshot.interactions.iter().map(|i| i.occurred_at))
            .filter(|&at| at > as_of);
        let closing = self.windows.iter().flat_map(|window| {
            let span = Duration::days(i64::from(window.days));
            let events = snapshot
                .events
                .iter()
                .filter(|e| window.counts_event(e))
                .map(|e| e.occurred_at);
            let interactions = snapshot
                .interactions
                .iter()
                .filter(|i| window.counts_interaction(i))
                .map(|i| i.occurred_at);
            events
                .chain(interactions)
                .filter_map(move |at| at.checked_add_signed(span))
                .filter(|&closes| closes > as_of)
        });
        future.chain(closing).min()
    }
}

/// Refuses a name that repeats in `names`, with the path (`{list}[n]`) of the second.
fn unique<'a>(names: impl Iterator<Item = &'a str>, list: &str, what: &str) -> Result<(), Error> {
    let mut seen = BTreeSet::new();
    for (n, name) in names.enumerate() {
        if !seen.insert(name) {
            return Err(RuleError::new(
                &format!("{list}[{n}]"),
                &format!("a second {what} named {name:?}"),
            )
            .into());
        }
    }
    Ok(())
}

/// What a maintenance pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Maintained {
    /// Profiles evaluated: not those a call named that had nothing to decide (no
    /// segment reads what changed; erased; merged away and out of every segment).
    pub profiles: u64,
    /// Memberships entered.
    pub entered: u64,
    /// Memberships left.
    pub left: u64,
}

impl<S: Store> Customers<S> {
    /// Keeps `segments` live: from now on, every write re-evaluates, for the profiles it
    /// touched, the segments whose inputs it touched, and stores entering and leaving as
    /// changes with their reasons — on the profile's [timeline](Self::timeline), in
    /// [`memberships`](Self::memberships) and in [`live_members`](Self::live_members).
    /// A merge or an unmerge re-evaluates the profiles on both sides; a profile merged
    /// away leaves its segments. `computed` defines the computed traits the rules may
    /// name.
    ///
    /// Membership is decided as of the time of the write ([`now`](Self::now)). Conditions over a window of
    /// days also change as time passes: call [`refresh`](Self::refresh) on a schedule
    /// (hourly or daily, as fresh as the windows need; it evaluates only the profiles
    /// whose windows can have moved). When the definitions change, or after records were
    /// written without these segments set (another process, a crash between a write and
    /// its maintenance), call [`rebuild_memberships`](Self::rebuild_memberships) once.
    ///
    /// ```
    /// use oneview::audience::{Rule, Segment};
    /// use oneview::{Channel, Customers, Event, Identifier, IdentifierKind, MemoryStore};
    ///
    /// let buyers = Segment::new(
    ///     "buyers",
    ///     Rule::Performed {
    ///         events: oneview::audience::EventFilter::named("Order Completed"),
    ///         at_least: Some(1),
    ///         at_most: None,
    ///         within_days: None,
    ///     },
    /// );
    /// let customers =
    ///     Customers::new(MemoryStore::new()).with_live_segments(vec![buyers], vec![])?;
    /// customers.ingest(
    ///     Event::builder("shop", Channel::Web, "Order Completed")
    ///         .identifier(IdentifierKind::Email, "ana@example.com")
    ///         .build()?,
    /// )?;
    /// let ana = Identifier::email("ana@example.com")?;
    /// let memberships = customers.memberships(&ana)?;
    /// assert_eq!(memberships[0].segment, "buyers");
    /// assert_eq!(memberships[0].reasons, ["performed Order Completed 1 time(s) (at least 1)"]);
    /// assert_eq!(customers.live_members("buyers", None, 10)?.members.len(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Rule`] naming the bad node (`segments[2]`, `rule.rules[1]`,
    /// `computed[0]`) when a rule or a computed trait is invalid or a name repeats.
    pub fn with_live_segments(
        mut self,
        segments: Vec<Segment>,
        computed: Vec<ComputedTrait>,
    ) -> Result<Self, Error> {
        self.live = LiveSegments::new(segments, computed)?;
        Ok(self)
    }

    /// The segments kept live.
    pub fn live_segments(&self) -> &[Segment] {
        &self.live.segments
    }

    /// The live segments the customer `lookup` finds is in, by name, each with when it
    /// entered and why.
    pub fn memberships(&self, lookup: impl Into<Lookup>) -> Result<Vec<Membership>, Error> {
        let lookup = lookup.into();
        crate::store::read_consistent(self.store(), |reads| {
            let customer = view::find(reads, &lookup)?.ok_or(Error::UnknownCustomer)?;
            Ok(reads.membership(customer)?.memberships)
        })
    }

    /// Up to `limit` members of the live segment `segment` with ids greater than
    /// `after`, in ascending id order, read from the stored membership: one indexed read,
    /// however large the store.
    ///
    /// # Errors
    ///
    /// [`Error::Rule`] when no live segment has that name.
    pub fn live_members(
        &self,
        segment: &str,
        after: Option<CustomerId>,
        limit: usize,
    ) -> Result<MembersPage, Error> {
        if !self.live.defines(segment) {
            return Err(RuleError::new(
                "segment",
                &format!("no live segment is named {segment:?}"),
            )
            .into());
        }
        let limit = limit.clamp(1, MAX_PAGE_SIZE);
        let members = self.store().segment_members(segment, after, limit)?;
        let next = (members.len() == limit)
            .then(|| members.last().copied())
            .flatten();
        Ok(MembersPage { members, next })
    }

    /// Evaluates, as of `as_of`, the profiles whose windows can have moved by then (a
    /// window closed over one of their events, or an event dated later came into force),
    /// and stores what changed. Run it on a schedule; a run touches only those profiles.
    pub fn refresh(&self, as_of: DateTime<Utc>) -> Result<Maintained, Error> {
        if self.live.is_empty() {
            return Ok(Maintained::default());
        }
        let time = Touch {
            time: true,
            ..Touch::default()
        };
        // A profile evaluated here is due later than `as_of`, or still listed when nothing
        // it reads moves with time: each page continues after the last.
        self.maintain_pages(&time, as_of, |after| {
            self.store().due_for_recheck(as_of, after, MAX_PAGE_SIZE)
        })
    }

    /// Evaluates every profile as of `as_of` and stores what changed: after the live
    /// segments' definitions changed (a segment no longer defined is left), or to repair
    /// membership after writes made without them.
    pub fn rebuild_memberships(&self, as_of: DateTime<Utc>) -> Result<Maintained, Error> {
        let all = Touch {
            all: true,
            ..Touch::default()
        };
        self.maintain_pages(&all, as_of, |after| {
            self.store().customers(after, MAX_PAGE_SIZE)
        })
    }

    /// Maintains, with `touch`, each page of profiles `page` gives after the last one of
    /// the page before, until one is empty.
    fn maintain_pages(
        &self,
        touch: &Touch,
        as_of: DateTime<Utc>,
        mut page: impl FnMut(Option<CustomerId>) -> Result<Vec<CustomerId>, StoreError>,
    ) -> Result<Maintained, Error> {
        let mut done = Maintained::default();
        let mut after = None;
        loop {
            let customers = page(after)?;
            let Some(&last) = customers.last() else {
                return Ok(done);
            };
            add(
                &mut done,
                self.maintain(Touched::each(&customers, touch), as_of)?,
            );
            after = Some(last);
        }
    }

    /// Re-decides the membership of every profile in `touched` as of `as_of`, for the
    /// segments their changes reach, and stores what changed.
    pub(crate) fn maintain(
        &self,
        touched: Touched,
        as_of: DateTime<Utc>,
    ) -> Result<Maintained, Error> {
        let mut done = Maintained::default();
        let work: Vec<(CustomerId, Touch)> = touched.0.into_iter().collect();
        for step in work.chunks(PROFILES_PER_STEP) {
            let updates = self.write(|| {
                let updates: Vec<MembershipUpdate> = read_to_write(self.store(), |reads| {
                    // Where the store holds no interaction, no profile's need reading.
                    let interactions = reads.has_interactions()?;
                    let mut updates = Vec::new();
                    for (customer, touch) in step {
                        let decided = self.decide(reads, *customer, touch, as_of, interactions)?;
                        if let Some(update) = decided {
                            updates.push(update);
                        }
                    }
                    Ok::<_, Error>(updates)
                })?;
                if updates.is_empty() {
                    return Ok(Attempt::Done(Vec::new()));
                }
                let commit = Commit {
                    membership: updates,
                    ..Commit::default()
                };
                let applied = self.store().apply(std::slice::from_ref(&commit));
                Attempt::of(applied.map(|_| commit.membership))
            })?;
            // Every profile evaluated has an update; the others had nothing to decide.
            done.profiles += updates.len() as u64;
            for change in updates.iter().flat_map(|u| &u.changes) {
                if change.entered {
                    done.entered += 1;
                } else {
                    done.left += 1;
                }
            }
        }
        Ok(done)
    }

    /// The membership update of `customer` after `touch`, as of `as_of`; `None` when
    /// nothing is to be decided. Interactions are read only if `interactions_exist`.
    ///
    /// Every profile it evaluates gets an update, changed or not: the update's version
    /// check then orders the writers deciding on one profile, and one that decided on an
    /// older state than the last to write loses and decides again.
    fn decide(
        &self,
        reads: &dyn Reads,
        customer: CustomerId,
        touch: &Touch,
        as_of: DateTime<Utc>,
        interactions_exist: bool,
    ) -> Result<Option<MembershipUpdate>, Error> {
        let live = &self.live;
        let mut state = reads.membership(customer)?;
        let Some(profile) = reads.profile(customer)? else {
            // Erased: nothing of it is left to decide on.
            return Ok(None);
        };
        let change = |segment: &str, entered: bool, reasons: Vec<String>| MembershipChange {
            id: Uuid::now_v7(),
            customer,
            segment: segment.to_owned(),
            entered,
            at: as_of,
            reasons,
        };
        if profile.id != customer {
            // Merged away: it leaves every segment, and the profile it joined is decided
            // on its own. One that has left them all and keeps nothing is settled.
            if state.memberships.is_empty() && state.recheck_at.is_none() && state.digest.is_none()
            {
                return Ok(None);
            }
            let reason = format!("merged into {}", profile.id);
            return Ok(Some(MembershipUpdate {
                customer,
                version: state.version,
                changes: state
                    .memberships
                    .iter()
                    .map(|m| change(&m.segment, false, vec![reason.clone()]))
                    .collect(),
                recheck_at: None,
                digest: None,
            }));
        }
        let relevant: Vec<usize> = (0..live.segments.len())
            .filter(|&i| touch.reaches(&live.inputs[i]))
            .collect();
        let undefined: Vec<&Membership> = state
            .memberships
            .iter()
            .filter(|m| !live.defines(&m.segment))
            .collect();
        if relevant.is_empty() && undefined.is_empty() && touch.added.is_empty() {
            return Ok(None);
        }
        // The digest stands for the history when it was made for these segments and
        // nothing but additions happened since; a new profile's is what was added.
        let kept = state
            .digest
            .take()
            .filter(|d| d.spec == live.projection.spec)
            .or_else(|| {
                (touch.created && state.version == 0).then(|| EventDigest {
                    spec: live.projection.spec.clone(),
                    events: Vec::new(),
                })
            })
            .filter(|_| !touch.all);
        let digest = match kept {
            Some(mut digest) => {
                let known: HashSet<EventId> = digest.events.iter().map(|e| e.id).collect();
                digest.events.extend(
                    touch
                        .added
                        .iter()
                        .filter(|e| !known.contains(&e.id))
                        .cloned(),
                );
                digest
            }
            None => EventDigest {
                spec: live.projection.spec.clone(),
                events: crate::conversation::all_events(reads, customer)?
                    .iter()
                    .filter_map(|e| live.projection.digest(e))
                    .collect(),
            },
        };
        let mut needs = live.window_needs;
        let mut uses = vec![false; live.computed.len()];
        for &i in &relevant {
            let (reads, names) = &live.needs[i];
            needs = needs.and(*reads);
            for &name in names {
                uses[name] = true;
            }
        }
        needs.interactions &= interactions_exist;
        let named: Vec<&ComputedTrait> = live
            .computed
            .iter()
            .zip(&uses)
            .filter_map(|(definition, used)| used.then_some(definition))
            .collect();
        let snapshot = snapshot_of(
            reads,
            profile,
            (&live.computed, &named),
            as_of,
            needs,
            Some(events_of(&digest)),
        )?;
        let facts = self.facts(&snapshot, as_of);
        let mut changes = Vec::new();
        for segment in relevant.iter().map(|&i| &live.segments[i]) {
            // The reasons are worded only for a change: most verdicts stay as they were.
            if segment.rule.holds(&facts) != state.is_member(&segment.name) {
                let verdict = segment.rule.evaluate(&facts);
                changes.push(change(&segment.name, verdict.holds, verdict.reasons));
            }
        }
        for membership in undefined {
            changes.push(change(
                &membership.segment,
                false,
                vec!["the segment is no longer defined".to_owned()],
            ));
        }
        Ok(Some(MembershipUpdate {
            customer,
            version: state.version,
            changes,
            recheck_at: live.next_recheck(&snapshot, as_of),
            digest: Some(digest),
        }))
    }

    /// Maintains `touched` as of now when live segments are set.
    pub(crate) fn maintain_now(&self, touched: Touched) -> Result<(), Error> {
        if !self.live.is_empty() && !touched.0.is_empty() {
            self.maintain(touched, self.now())?;
        }
        Ok(())
    }

    /// Whether writes should note what they touch.
    pub(crate) fn keeps_segments_live(&self) -> bool {
        !self.live.is_empty()
    }
}

fn add(total: &mut Maintained, more: Maintained) {
    total.profiles += more.profiles;
    total.entered += more.entered;
    total.left += more.left;
}
