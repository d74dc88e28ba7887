//! The audience calls of [`Customers`]: computed traits, segment verdicts and members.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::action::{
    ACTION_PROPERTY, Persona, PersonaMatch, Playbook, Recommendation, choose, strongest,
};
use super::computed::{ComputedTrait, ComputedValue};
use super::rule::{Facts, Rule, Segment, Verdict};
use crate::Customers;
use crate::conversation::{self, all_events};
use crate::error::Error;
use crate::ingest::{Receipt, Record};
use crate::model::{
    Channel, CustomerId, Direction, Event, Feedback, Interaction, InteractionKind,
    InteractionStatus, resolve_traits,
};
use crate::privacy::consent_in;
use crate::store::{MAX_PAGE_SIZE, Reads, Store, read_consistent};
use crate::view::{self, Lookup};

/// How many customers `members` reads in one read transaction.
const MEMBERS_PER_SNAPSHOT: usize = 64;

/// One page of a segment's members.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembersPage {
    /// Members, in ascending id order.
    pub members: Vec<CustomerId>,
    /// Where the next page starts (pass it as `after`); `None` when every customer has
    /// been looked at.
    pub next: Option<CustomerId>,
}

/// What one customer is, read on one snapshot.
pub(super) struct Snapshot {
    identifiers: Vec<crate::model::Identifier>,
    traits: BTreeMap<String, serde_json::Value>,
    pub(super) events: Vec<Event>,
    pub(super) interactions: Vec<Interaction>,
    feedback: Vec<Feedback>,
    open_conversations: u64,
    consent: crate::privacy::ConsentState,
}

/// What rules read beyond the profile and its traits, which they always do: the rest is
/// read only when a rule asks for it.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Needs {
    /// Stored traits.
    pub(super) traits: bool,
    /// Events: events performed, channels used, computed traits, feedback given; how far
    /// back.
    pub(super) events: History,
    /// Interactions: channels used, open conversations, feedback given in them.
    pub(super) interactions: bool,
    /// Consent in force.
    pub(super) consent: bool,
}

/// How much of a customer's events rules read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) enum History {
    /// None.
    #[default]
    Nothing,
    /// Those of the last days before the time of the evaluation.
    Days(u32),
    /// All of them.
    All,
}

impl History {
    fn of_window(days: Option<u32>) -> Self {
        days.map_or(Self::All, Self::Days)
    }

    /// What either reads.
    fn and(self, other: Self) -> Self {
        match (self, other) {
            (Self::Nothing, read) | (read, Self::Nothing) => read,
            (Self::All, _) | (_, Self::All) => Self::All,
            (Self::Days(a), Self::Days(b)) => Self::Days(a.max(b)),
        }
    }
}

impl Needs {
    /// What `rules` read, with `computed` defining the computed traits they may name.
    pub(super) fn of<'a>(
        rules: impl IntoIterator<Item = &'a Rule>,
        computed: &[ComputedTrait],
    ) -> Self {
        let mut needs = Self::default();
        for leaf in rules.into_iter().flat_map(Rule::leaves) {
            let events = match leaf {
                Rule::Trait { name, .. } => match computed.iter().find(|c| c.name == *name) {
                    Some(definition) => History::of_window(definition.within_days),
                    None => {
                        needs.traits = true;
                        History::Nothing
                    }
                },
                Rule::Performed { within_days, .. } => History::of_window(*within_days),
                Rule::UsedChannel { within_days, .. } => {
                    needs.interactions = true;
                    History::of_window(*within_days)
                }
                Rule::FeedbackScore { .. } => {
                    // The latest score given, however long ago.
                    needs.interactions = true;
                    History::All
                }
                Rule::OpenConversations { .. } => {
                    needs.interactions = true;
                    History::Nothing
                }
                Rule::Consents { .. } => {
                    needs.consent = true;
                    History::Nothing
                }
                _ => History::Nothing,
            };
            needs.events = needs.events.and(events);
        }
        needs
    }

    fn everything() -> Self {
        Self {
            traits: true,
            events: History::All,
            interactions: true,
            consent: true,
        }
    }

    /// What either reads.
    pub(super) fn and(self, other: Self) -> Self {
        Self {
            traits: self.traits || other.traits,
            events: self.events.and(other.events),
            interactions: self.interactions || other.interactions,
            consent: self.consent || other.consent,
        }
    }
}

/// The computed traits of `computed` that `rules` name, each once, in the order defined:
/// those worth computing for them.
pub(super) fn named<'a, 'r>(
    rules: impl IntoIterator<Item = &'r Rule>,
    computed: &'a [ComputedTrait],
) -> Vec<&'a ComputedTrait> {
    let names: std::collections::BTreeSet<&str> = rules
        .into_iter()
        .flat_map(Rule::leaves)
        .filter_map(|leaf| match leaf {
            Rule::Trait { name, .. } => Some(name.as_str()),
            _ => None,
        })
        .collect();
    computed
        .iter()
        .filter(|c| names.contains(c.name.as_str()))
        .collect()
}

/// What the customer `customer` is, as `needs` asks, as of `as_of`, with the computed
/// traits of `named` (of the definitions `computed`); `None` for an unknown one.
fn snapshot(
    reads: &dyn Reads,
    customer: CustomerId,
    (computed, named): (&[ComputedTrait], &[&ComputedTrait]),
    as_of: DateTime<Utc>,
    needs: Needs,
) -> Result<Option<Snapshot>, Error> {
    match reads.profile(customer)? {
        Some(profile) => {
            snapshot_of(reads, profile, (computed, named), as_of, needs, None).map(Some)
        }
        None => Ok(None),
    }
}

/// What the live profile `profile` is, as `needs` asks, as of `as_of`; with `known`, its
/// events are those instead of the ones read. Of the computed traits `computed` defines,
/// those of `named` are computed; the others hide a stored trait of their name all the
/// same.
pub(super) fn snapshot_of(
    reads: &dyn Reads,
    profile: crate::store::ProfileRecord,
    (computed, named): (&[ComputedTrait], &[&ComputedTrait]),
    as_of: DateTime<Utc>,
    needs: Needs,
    known: Option<Vec<Event>>,
) -> Result<Snapshot, Error> {
    let customer = profile.id;
    let given = known.is_some();
    let mut traits: BTreeMap<String, serde_json::Value> = if needs.traits {
        resolve_traits(&reads.trait_operations(customer)?)
            .into_iter()
            .map(|(name, resolved)| (name, resolved.value))
            .collect()
    } else {
        BTreeMap::new()
    };
    let view::History {
        events,
        interactions,
        feedback,
    } = view::History::of(
        match known {
            Some(events) => events,
            None => events_read(reads, customer, needs.events, as_of)?,
        },
        view::interactions_oldest_first(reads, customer, needs.interactions)?,
    );
    let read_events = needs.events != History::Nothing || given;
    if read_events {
        // A computed trait hides a stored one of its name, even where it has no value.
        for definition in computed {
            traits.remove(&definition.name);
        }
        for (name, value) in compute_all(named.iter().copied(), &events, as_of) {
            traits.insert(name, value.value);
        }
    }
    let current: Vec<Interaction> = interactions
        .iter()
        .filter(|i| i.occurred_at <= as_of)
        .cloned()
        .collect();
    let open_conversations = conversation::group(customer, current, None)
        .iter()
        .filter(|c| c.summary.is_open())
        .count() as u64;
    Ok(Snapshot {
        traits,
        events,
        interactions,
        feedback,
        open_conversations,
        consent: if needs.consent {
            consent_in(reads, &profile, as_of)?
        } else {
            crate::privacy::ConsentState::default()
        },
        identifiers: profile.identifiers,
    })
}

/// The events of the live profile `customer` that `history` asks for, oldest first: of
/// a window of days, only those that can fall in it as of `as_of` are read.
fn events_read(
    reads: &dyn Reads,
    customer: CustomerId,
    history: History,
    as_of: DateTime<Utc>,
) -> Result<Vec<Event>, Error> {
    let mut events = match history {
        History::Nothing => return Ok(Vec::new()),
        History::All => all_events(reads, customer)?,
        History::Days(days) => {
            let since = as_of
                .checked_sub_signed(chrono::Duration::days(i64::from(days)))
                .unwrap_or(DateTime::<Utc>::MIN_UTC);
            conversation::events_since(reads, customer, since)?
        }
    };
    events.reverse();
    Ok(events)
}

fn compute_all<'a>(
    computed: impl IntoIterator<Item = &'a ComputedTrait>,
    events: &[Event],
    as_of: DateTime<Utc>,
) -> BTreeMap<String, ComputedValue> {
    computed
        .into_iter()
        .filter_map(|definition| {
            let value = definition.compute(events, as_of)?;
            Some((
                definition.name.clone(),
                ComputedValue {
                    value,
                    definition: definition.name.clone(),
                    as_of,
                },
            ))
        })
        .collect()
}

impl<S: Store> Customers<S> {
    /// The values of `definitions` for the customer `lookup` finds, as of `as_of`; a
    /// definition with no value (no event has the property) is left out.
    pub fn computed_traits(
        &self,
        lookup: impl Into<Lookup>,
        definitions: &[ComputedTrait],
        as_of: DateTime<Utc>,
    ) -> Result<BTreeMap<String, ComputedValue>, Error> {
        for definition in definitions {
            definition.validate()?;
        }
        let lookup = lookup.into();
        read_consistent(self.store(), |reads| {
            let customer = view::find(reads, &lookup)?.ok_or(Error::UnknownCustomer)?;
            Ok(compute_all(
                definitions.iter(),
                &all_events(reads, customer)?,
                as_of,
            ))
        })
    }

    /// Whether the customer `lookup` finds belongs to `segment` as of `as_of`, with the
    /// conditions that decided it. `computed` defines the computed traits its rules may
    /// name.
    pub fn evaluate(
        &self,
        lookup: impl Into<Lookup>,
        segment: &Segment,
        computed: &[ComputedTrait],
        as_of: DateTime<Utc>,
    ) -> Result<Verdict, Error> {
        let mut verdicts = self.verdicts(
            lookup,
            std::slice::from_ref(segment),
            computed,
            as_of,
            Failures::Explained,
        )?;
        Ok(verdicts.pop().expect("one verdict per segment").1)
    }

    /// The segments of `segments` the customer `lookup` finds belongs to as of `as_of`,
    /// each with its reasons, in the order given.
    pub fn segments_of(
        &self,
        lookup: impl Into<Lookup>,
        segments: &[Segment],
        computed: &[ComputedTrait],
        as_of: DateTime<Utc>,
    ) -> Result<Vec<(String, Verdict)>, Error> {
        let mut verdicts =
            self.verdicts(lookup, segments, computed, as_of, Failures::Unexplained)?;
        verdicts.retain(|(_, verdict)| verdict.holds);
        Ok(verdicts)
    }

    fn verdicts(
        &self,
        lookup: impl Into<Lookup>,
        segments: &[Segment],
        computed: &[ComputedTrait],
        as_of: DateTime<Utc>,
        failures: Failures,
    ) -> Result<Vec<(String, Verdict)>, Error> {
        check(segments, computed)?;
        let lookup = lookup.into();
        read_consistent(self.store(), |reads| {
            // The lookup reads the profile the snapshot starts from, once.
            let profile = view::find_profile(reads, &lookup)?.ok_or(Error::UnknownCustomer)?;
            let rules = || segments.iter().map(|s| &s.rule);
            let needs = Needs::of(rules(), computed);
            let named = named(rules(), computed);
            let snapshot = snapshot_of(reads, profile, (computed, &named), as_of, needs, None)?;
            Ok(self.judge(&snapshot, segments, as_of, failures))
        })
    }

    /// The persona of the customer `lookup` finds as of `as_of`: the one of lowest
    /// `priority` (the first given, among equals) whose rule holds, with its reasons;
    /// `None` when none does.
    pub fn persona_of(
        &self,
        lookup: impl Into<Lookup>,
        personas: &[Persona],
        computed: &[ComputedTrait],
        as_of: DateTime<Utc>,
    ) -> Result<Option<(String, Verdict)>, Error> {
        let segments = persona_segments(personas);
        let mut verdicts =
            self.verdicts(lookup, &segments, computed, as_of, Failures::Unexplained)?;
        let chosen = strongest(personas, |n| verdicts[n].1.holds);
        Ok(chosen.map(|n| verdicts.swap_remove(n)))
    }

    /// Has every [`Profile`](crate::Profile) this returns name the persona of
    /// `personas` its customer matches now ([`persona_of`](Self::persona_of) as of the
    /// time of the read), with `computed` defining the computed traits their rules may
    /// name. Reading a profile then reads the customer's whole history, as evaluating a
    /// segment does.
    ///
    /// ```
    /// use oneview::audience::{Persona, Rule};
    /// use oneview::{Channel, Customers, Event, Identifier, IdentifierKind, MemoryStore};
    ///
    /// let reachable = Persona {
    ///     name: "reachable".into(),
    ///     description: "gave us a phone number: call before writing".into(),
    ///     priority: 1,
    ///     rule: Rule::HasIdentifier { kind: IdentifierKind::Phone },
    /// };
    /// let customers = Customers::new(MemoryStore::new()).with_personas(vec![reachable], vec![])?;
    /// customers.ingest(
    ///     Event::builder("app", Channel::Mobile, "Signed Up")
    ///         .identifier(IdentifierKind::Email, "ana@example.com")
    ///         .identifier(IdentifierKind::Phone, "+44 20 7946 0958")
    ///         .build()?,
    /// )?;
    /// let profile = customers.profile(Identifier::email("ana@example.com")?)?.unwrap();
    /// assert_eq!(profile.persona.unwrap().name, "reachable");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Rule`] (naming the path of the bad node) when a persona's rule or a
    /// computed trait is invalid.
    pub fn with_personas(
        mut self,
        personas: Vec<Persona>,
        computed: Vec<ComputedTrait>,
    ) -> Result<Self, Error> {
        check(&persona_segments(&personas), &computed)?;
        self.personas = ViewPersonas { personas, computed };
        Ok(self)
    }

    /// The persona the customer `customer` matches as of `as_of`, among those
    /// [`with_personas`](Self::with_personas) set; `None` without any.
    pub(crate) fn persona_in(
        &self,
        reads: &dyn Reads,
        customer: CustomerId,
        as_of: DateTime<Utc>,
    ) -> Result<Option<PersonaMatch>, Error> {
        let ViewPersonas { personas, computed } = &self.personas;
        if personas.is_empty() {
            return Ok(None);
        }
        let segments = persona_segments(personas);
        let rules = || segments.iter().map(|s| &s.rule);
        let needs = Needs::of(rules(), computed);
        let named = named(rules(), computed);
        let Some(snapshot) = snapshot(reads, customer, (computed, &named), as_of, needs)? else {
            return Ok(None);
        };
        let mut verdicts = self.judge(&snapshot, &segments, as_of, Failures::Unexplained);
        Ok(strongest(personas, |n| verdicts[n].1.holds).map(|n| {
            let (_, verdict) = verdicts.swap_remove(n);
            PersonaMatch {
                name: personas[n].name.clone(),
                description: personas[n].description.clone(),
                reasons: verdict.reasons,
            }
        }))
    }

    /// The next best action from `playbook` for the customer `lookup` finds, on
    /// `channel`, as of `as_of`: the action of lowest priority whose rule holds, that
    /// `channel` carries, that the customer's consent allows for its purpose, and whose
    /// frequency caps (counted from the actions already [recorded](Self::record_action)
    /// on any channel) are not reached — with why, and why the ones before it were
    /// passed over.
    pub fn next_best_action(
        &self,
        lookup: impl Into<Lookup>,
        playbook: &Playbook,
        channel: &Channel,
        computed: &[ComputedTrait],
        as_of: DateTime<Utc>,
    ) -> Result<Recommendation, Error> {
        playbook.validate()?;
        for definition in computed {
            definition.validate()?;
        }
        let lookup = lookup.into();
        read_consistent(self.store(), |reads| {
            let profile = view::find_profile(reads, &lookup)?.ok_or(Error::UnknownCustomer)?;
            // Caps count the actions recorded as interactions; purposes need consent.
            let every: Vec<&ComputedTrait> = computed.iter().collect();
            let snapshot = snapshot_of(
                reads,
                profile,
                (computed, &every),
                as_of,
                Needs::everything(),
                None,
            )?;
            let facts = self.facts(&snapshot, as_of);
            Ok(choose(
                playbook,
                channel,
                &snapshot.interactions,
                as_of,
                |rule| rule.evaluate(&facts),
                |purpose| {
                    snapshot
                        .consent
                        .decide(purpose, channel, self.consent_defaults())
                        .allowed
                },
            ))
        })
    }

    /// Records that the action `action` was taken for the customer `lookup` finds on
    /// `channel` at `at`: an outbound, closed interaction (source `oneview.actions`,
    /// property `action`) on their timeline, which frequency caps count.
    pub fn record_action(
        &self,
        lookup: impl Into<Lookup>,
        action: &str,
        channel: Channel,
        at: DateTime<Utc>,
    ) -> Result<Receipt, Error> {
        let (_, anchor) = self.anchor(lookup.into(), "record_action")?;
        let interaction = Interaction::builder("oneview.actions", channel, Direction::Outbound)
            .key(&uuid::Uuid::now_v7().to_string())
            .kind(InteractionKind::Other("action".to_owned()))
            .status(InteractionStatus::Closed)
            .occurred_at(at)
            .closed_at(at)
            .with_identifier(anchor)
            .properties(serde_json::json!({ ACTION_PROPERTY: action }))
            .build()?;
        self.ingest(Record::Interaction(interaction))
    }

    pub(super) fn facts<'a>(&'a self, snapshot: &'a Snapshot, as_of: DateTime<Utc>) -> Facts<'a> {
        Facts {
            traits: &snapshot.traits,
            identifiers: &snapshot.identifiers,
            events: &snapshot.events,
            interactions: &snapshot.interactions,
            open_conversations: snapshot.open_conversations,
            feedback: &snapshot.feedback,
            consent: &snapshot.consent,
            consent_defaults: self.consent_defaults(),
            as_of,
        }
    }

    /// The verdict of each of `segments` on `snapshot`; with `failures` the reasons a
    /// segment does not hold too, without them only those of the segments that hold.
    fn judge(
        &self,
        snapshot: &Snapshot,
        segments: &[Segment],
        as_of: DateTime<Utc>,
        failures: Failures,
    ) -> Vec<(String, Verdict)> {
        let facts = self.facts(snapshot, as_of);
        segments
            .iter()
            .map(|segment| {
                let verdict = if failures == Failures::Explained || segment.rule.holds(&facts) {
                    segment.rule.evaluate(&facts)
                } else {
                    Verdict {
                        holds: false,
                        reasons: Vec::new(),
                    }
                };
                (segment.name.clone(), verdict)
            })
            .collect()
    }

    /// Up to `limit` members of `segment` as of `as_of` with ids greater than `after`,
    /// looking at the customers in id order, each on a snapshot of its own. Continue from
    /// the page's `next`. Every customer after `after` is evaluated until the page fills,
    /// so a small segment costs a pass over many customers.
    pub fn members(
        &self,
        segment: &Segment,
        computed: &[ComputedTrait],
        as_of: DateTime<Utc>,
        after: Option<CustomerId>,
        limit: usize,
    ) -> Result<MembersPage, Error> {
        check(std::slice::from_ref(segment), computed)?;
        let limit = limit.clamp(1, MAX_PAGE_SIZE);
        let needs = Needs::of([&segment.rule], computed);
        let named = named([&segment.rule], computed);
        let mut members = Vec::new();
        let mut cursor = after;
        loop {
            let batch = self.store().customers(cursor, MAX_PAGE_SIZE)?;
            // A few dozen customers per read transaction: each is still read whole, and
            // a page does not pay a transaction per customer.
            for chunk in batch.chunks(MEMBERS_PER_SNAPSHOT) {
                let held: Vec<bool> = read_consistent(self.store(), |reads| {
                    chunk
                        .iter()
                        .map(|&customer| {
                            Ok::<_, Error>(
                                match snapshot(reads, customer, (computed, &named), as_of, needs)? {
                                    Some(snapshot) => {
                                        segment.rule.holds(&self.facts(&snapshot, as_of))
                                    }
                                    None => false,
                                },
                            )
                        })
                        .collect()
                })?;
                for (&customer, holds) in chunk.iter().zip(held) {
                    cursor = Some(customer);
                    if holds {
                        members.push(customer);
                        if members.len() == limit {
                            return Ok(MembersPage {
                                members,
                                next: cursor,
                            });
                        }
                    }
                }
            }
            if batch.len() < MAX_PAGE_SIZE {
                return Ok(MembersPage {
                    members,
                    next: None,
                });
            }
        }
    }
}

/// Whether a verdict that does not hold says why: the reasons cost more than the test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Failures {
    Explained,
    Unexplained,
}

/// The personas the view names, with the computed traits their rules use.
#[derive(Clone, Debug, Default)]
pub(crate) struct ViewPersonas {
    personas: Vec<Persona>,
    computed: Vec<ComputedTrait>,
}

/// Each of `personas` as the segment of its rule.
fn persona_segments(personas: &[Persona]) -> Vec<Segment> {
    personas
        .iter()
        .map(|p| Segment::new(&p.name, p.rule.clone()))
        .collect()
}

fn check(segments: &[Segment], computed: &[ComputedTrait]) -> Result<(), Error> {
    for definition in computed {
        definition.validate()?;
    }
    for segment in segments {
        segment.validate()?;
    }
    Ok(())
}
