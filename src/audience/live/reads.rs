//! What live segments read, and what a write touched: a write re-decides a profile's
//! segments only where the two meet.

use std::collections::{BTreeMap, BTreeSet};

use super::LiveSegments;
use crate::audience::computed::{ComputedTrait, EventFilter};
use crate::audience::rule::{Rule, Segment};
use crate::model::{Channel, CustomerId, DigestedEvent, Event, EventDigest, Feedback};
use crate::store::{Commit, CommitOutcome, IdentityChange};

/// What of an event the live segments read: which events (by name, by channel, and
/// feedback) and which of their properties (by top-level name).
#[derive(Clone, Debug, Default)]
pub(super) struct Projection {
    pub(super) any_name: bool,
    pub(super) names: BTreeSet<String>,
    pub(super) channels: BTreeSet<Channel>,
    pub(super) properties: BTreeSet<String>,
    /// Feedback events, kept whole: their score is read by the rules of feedback.
    pub(super) feedback: bool,
    /// What a digest made by this projection is made for.
    pub(super) spec: String,
}

impl Projection {
    pub(super) fn of(segments: &[Segment], computed: &[ComputedTrait]) -> Self {
        let mut projection = Self::default();
        for segment in segments {
            projection.add(&segment.rule, computed);
        }
        // Any change to the definitions makes digests again: FNV-1a of their JSON.
        let definitions = serde_json::to_string(&(segments, computed)).unwrap_or_default();
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in definitions.bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        projection.spec = format!("{hash:016x}");
        projection
    }

    pub(super) fn add_filter(&mut self, filter: &EventFilter) {
        self.any_name |= filter.names.is_empty();
        self.names.extend(filter.names.iter().cloned());
        for condition in &filter.conditions {
            self.add_property(&condition.property);
        }
    }

    pub(super) fn add_property(&mut self, path: &str) {
        let top = path.split('.').next().unwrap_or(path);
        self.properties.insert(top.to_owned());
    }

    pub(super) fn add(&mut self, rule: &Rule, computed: &[ComputedTrait]) {
        for leaf in rule.leaves() {
            self.add_leaf(leaf, computed);
        }
    }

    fn add_leaf(&mut self, leaf: &Rule, computed: &[ComputedTrait]) {
        match leaf {
            Rule::Performed { events, .. } => self.add_filter(events),
            Rule::UsedChannel { channel, .. } => {
                self.channels.insert(channel.clone());
            }
            Rule::Trait { name, .. } => {
                for definition in computed.iter().filter(|c| c.name == *name) {
                    self.add_filter(&definition.events);
                    if let Some(property) = definition.aggregate.property() {
                        self.add_property(property);
                    }
                }
            }
            Rule::FeedbackScore { .. } => self.feedback = true,
            _ => {}
        }
    }

    /// What the segments read of `event`; `None` when they read none of it.
    pub(super) fn digest(&self, event: &Event) -> Option<DigestedEvent> {
        let feedback = self.feedback && Feedback::from_event(event).ok().flatten().is_some();
        let read = feedback
            || self.any_name
            || self.names.contains(&event.name)
            || self.channels.contains(&event.channel);
        if !read {
            return None;
        }
        let properties = if feedback {
            event.properties.clone()
        } else {
            event
                .properties
                .iter()
                .filter(|(key, _)| self.properties.contains(*key))
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect()
        };
        Some(DigestedEvent {
            id: event.id,
            name: event.name.clone(),
            channel: event.channel.clone(),
            at: event.occurred_at,
            properties,
        })
    }
}

/// The events of `digest`, as the rules read them.
pub(super) fn events_of(digest: &EventDigest) -> Vec<Event> {
    digest
        .events
        .iter()
        .map(|d| Event {
            id: d.id,
            message_id: String::new(),
            name: d.name.clone(),
            channel: d.channel.clone(),
            source: String::new(),
            occurred_at: d.at,
            received_at: d.at,
            identifiers: Vec::new(),
            properties: d.properties.clone(),
            traits: Vec::new(),
            consent: Vec::new(),
        })
        .collect()
}

/// A condition over the last `days` days.
#[derive(Clone, Debug)]
pub(super) struct Window {
    pub(super) what: Counted,
    pub(super) days: u32,
}

#[derive(Clone, Debug)]
pub(super) enum Counted {
    /// Events a filter selects.
    Events(EventFilter),
    /// Events and interactions on a channel.
    Channel(Channel),
}

impl Window {
    pub(super) fn counts_event(&self, event: &crate::model::Event) -> bool {
        match &self.what {
            Counted::Events(filter) => filter.matches(event),
            Counted::Channel(channel) => event.channel == *channel,
        }
    }

    pub(super) fn counts_interaction(&self, interaction: &crate::model::Interaction) -> bool {
        matches!(&self.what, Counted::Channel(channel) if interaction.channel == *channel)
    }
}

/// Adds the windows `rule` reads to `windows`.
pub(super) fn collect_windows(rule: &Rule, computed: &[ComputedTrait], windows: &mut Vec<Window>) {
    for leaf in rule.leaves() {
        collect_leaf_windows(leaf, computed, windows);
    }
}

fn collect_leaf_windows(leaf: &Rule, computed: &[ComputedTrait], windows: &mut Vec<Window>) {
    match leaf {
        Rule::Performed {
            events,
            within_days: Some(days),
            ..
        } => windows.push(Window {
            what: Counted::Events(events.clone()),
            days: *days,
        }),
        Rule::UsedChannel {
            channel,
            within_days: Some(days),
        } => windows.push(Window {
            what: Counted::Channel(channel.clone()),
            days: *days,
        }),
        Rule::Trait { name, .. } => {
            for definition in computed.iter().filter(|c| c.name == *name) {
                if let Some(days) = definition.within_days {
                    windows.push(Window {
                        what: Counted::Events(definition.events.clone()),
                        days,
                    });
                }
            }
        }
        _ => {}
    }
}

/// What a segment's rule reads: a write that changes none of it cannot change its
/// verdict.
#[derive(Clone, Debug, Default)]
pub(super) struct Inputs {
    /// Events of any name.
    pub(super) any_event: bool,
    /// Events of these names.
    pub(super) events: BTreeSet<String>,
    /// Stored traits of these names.
    pub(super) traits: BTreeSet<String>,
    pub(super) identifiers: bool,
    pub(super) interactions: bool,
    pub(super) consent: bool,
}

impl Inputs {
    pub(super) fn of(rule: &Rule, computed: &[ComputedTrait]) -> Self {
        let mut inputs = Self::default();
        inputs.add(rule, computed);
        inputs
    }

    pub(super) fn add_events(&mut self, filter: &EventFilter) {
        if filter.names.is_empty() {
            self.any_event = true;
        }
        self.events.extend(filter.names.iter().cloned());
    }

    fn add(&mut self, rule: &Rule, computed: &[ComputedTrait]) {
        for leaf in rule.leaves() {
            self.add_leaf(leaf, computed);
        }
    }

    fn add_leaf(&mut self, leaf: &Rule, computed: &[ComputedTrait]) {
        match leaf {
            Rule::Trait { name, .. } => {
                self.traits.insert(name.clone());
                for definition in computed.iter().filter(|c| c.name == *name) {
                    self.add_events(&definition.events);
                }
            }
            Rule::HasIdentifier { .. } => self.identifiers = true,
            Rule::UsedChannel { .. } | Rule::FeedbackScore { .. } => {
                self.any_event = true;
                self.interactions = true;
            }
            Rule::Performed { events, .. } => self.add_events(events),
            Rule::OpenConversations { .. } => self.interactions = true,
            Rule::Consents { .. } => self.consent = true,
            // Opened by `leaves`: what they combine is read above.
            Rule::All { .. } | Rule::Any { .. } | Rule::Not { .. } => {}
        }
    }
}

/// What a write changed about one profile.
#[derive(Clone, Debug, Default)]
pub(crate) struct Touch {
    /// Anything: it was merged or rebuilt.
    pub(super) all: bool,
    /// It was created, by the records of this touch.
    pub(super) created: bool,
    /// Time moved: every segment is evaluated again, on the events as they were.
    pub(super) time: bool,
    /// The events added, as the segments read them.
    pub(super) added: Vec<DigestedEvent>,
    /// Names of the events added.
    pub(super) events: BTreeSet<String>,
    /// Names of the traits set.
    pub(super) traits: BTreeSet<String>,
    pub(super) identifiers: bool,
    pub(super) interactions: bool,
    pub(super) consent: bool,
}

impl Touch {
    pub(super) fn reaches(&self, inputs: &Inputs) -> bool {
        self.all
            || self.created
            || self.time
            || (inputs.any_event && !self.events.is_empty())
            || self.events.iter().any(|e| inputs.events.contains(e))
            || self.traits.iter().any(|t| inputs.traits.contains(t))
            || (self.identifiers && inputs.identifiers)
            || (self.interactions && inputs.interactions)
            || (self.consent && inputs.consent)
    }
}

/// What the writes of one call changed, per profile.
#[derive(Clone, Debug, Default)]
pub(crate) struct Touched(pub(super) BTreeMap<CustomerId, Touch>);

impl Touched {
    /// `touch` for each of `customers`.
    pub(super) fn each(customers: &[CustomerId], touch: &Touch) -> Self {
        Self(customers.iter().map(|&c| (c, touch.clone())).collect())
    }

    /// Everything, for each of `customers`: every segment decided afresh, the digest of
    /// their events made again from the store.
    pub(crate) fn everything(customers: &[CustomerId]) -> Self {
        let all = Touch {
            all: true,
            ..Touch::default()
        };
        Self::each(customers, &all)
    }

    /// Notes what the applied ones of `commits` changed.
    pub(crate) fn note(
        &mut self,
        commits: &[Commit],
        outcomes: &[CommitOutcome],
        live: &LiveSegments,
    ) {
        for (commit, outcome) in commits.iter().zip(outcomes) {
            if *outcome == CommitOutcome::Applied {
                self.note_one(commit, live);
            }
        }
    }

    pub(super) fn note_one(&mut self, commit: &Commit, live: &LiveSegments) {
        for change in &commit.identity {
            match change {
                IdentityChange::CreateProfile { id, .. } => {
                    self.0.entry(*id).or_default().created = true;
                }
                IdentityChange::Merge(merge) => {
                    self.all(merge.survivor);
                    self.all(merge.absorbed);
                }
                IdentityChange::Rewrite(rewrite) => {
                    for profile in &rewrite.profiles {
                        self.all(profile.id);
                        self.all(profile.live);
                    }
                }
                IdentityChange::Attach { customer, .. } => {
                    self.0.entry(*customer).or_default().identifiers = true;
                }
                _ => {}
            }
        }
        if let Some(event) = &commit.event {
            let touch = self.0.entry(event.customer).or_default();
            touch.events.insert(event.record.name.clone());
            touch.added.extend(live.projection.digest(&event.record));
        }
        if let Some(interaction) = &commit.interaction {
            self.0.entry(interaction.customer).or_default().interactions = true;
        }
        for operation in &commit.traits {
            let touch = self.0.entry(operation.customer).or_default();
            touch.traits.insert(operation.record.key.clone());
        }
        for decision in &commit.consent {
            self.0.entry(decision.customer).or_default().consent = true;
        }
    }

    /// Notes that `record`, stored before, was delivered again for `customer`: a write
    /// that landed without its maintenance (the process stopped between the two) is
    /// repaired by delivering its records again.
    pub(crate) fn redelivered(
        &mut self,
        customer: CustomerId,
        record: &crate::ingest::Record,
        live: &LiveSegments,
    ) {
        let touch = self.0.entry(customer).or_default();
        touch.identifiers = true;
        match record {
            crate::ingest::Record::Event(event) => {
                touch.events.insert(event.name.clone());
                touch.added.extend(live.projection.digest(event));
                touch
                    .traits
                    .extend(event.traits.iter().map(|t| t.key.clone()));
                touch.consent |= !event.consent.is_empty();
            }
            crate::ingest::Record::Interaction(_) => touch.interactions = true,
        }
    }

    pub(super) fn all(&mut self, customer: CustomerId) {
        self.0.entry(customer).or_default().all = true;
    }
}
