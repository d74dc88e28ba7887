//! Turning incoming records into commits: validate, check for repeats, let
//! [`crate::identity`] decide who the record is about, and attribute it.
//!
//! A batch is planned in evidence order against a [`Graph`] holding the profiles its
//! records touch, read from the store as they are needed; the decisions reach the store as
//! one atomic call. A record older than evidence already applied to the profiles it touches
//! is *late*: once the batch lands, those profiles are rebuilt from all their evidence with
//! the record in its place (an [`Action::Rebuild`]), so the outcome is the one in-order
//! delivery gives.
//!
//! [`segment`] reads Segment-spec messages into records.

mod late;
pub(crate) mod rebuild;
mod suspects;
pub use rebuild::{ProfileSummary, Rebuilt};
pub mod segment;

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::identity::{Action, Cluster, Evidence, Graph, Policy, Step};
use crate::model::{
    ConsentRecord, CustomerId, Event, EventId, EvidenceKey, Identifier, Interaction, InteractionId,
    Provenance, Refusal, TraitOperation,
};
use crate::store::{
    Attributed, Commit, EventStore, Expectation, IdentityChange, InteractionStore, Owner,
    ProfileRecord, Reads, StoreError, TimelineCursor,
};

/// Something to ingest: an event or an interaction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Record {
    /// What the customer did.
    Event(Event),
    /// A contact between the company and the customer.
    Interaction(Interaction),
}

impl Record {
    /// Where the record sits in the evidence order.
    pub fn key(&self) -> EvidenceKey {
        match self {
            Self::Event(event) => event_key(event),
            Self::Interaction(interaction) => interaction_key(interaction),
        }
    }

    fn identifiers(&self) -> &[Identifier] {
        match self {
            Self::Event(event) => &event.identifiers,
            Self::Interaction(interaction) => &interaction.identifiers,
        }
    }
}

impl From<Event> for Record {
    fn from(event: Event) -> Self {
        Self::Event(event)
    }
}

impl From<Interaction> for Record {
    fn from(interaction: Interaction) -> Self {
        Self::Interaction(interaction)
    }
}

/// What became of an ingested record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// It was stored.
    Stored,
    /// The same event was stored before; nothing changed.
    Duplicate,
    /// A newer version of the same interaction is stored; nothing changed.
    Outdated,
}

/// The answer to an ingest: where the record belongs and what changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// The live profile the record belongs to.
    pub customer: CustomerId,
    /// Whether it was stored.
    pub outcome: Outcome,
    /// What it did to the identity graph; `None` when nothing was stored.
    pub action: Option<Action>,
    /// The profiles it merged into `customer`.
    pub merged: Vec<CustomerId>,
    /// The links it carried that were refused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refused: Vec<Refusal>,
}

impl Receipt {
    pub(crate) fn skipped(customer: CustomerId, outcome: Outcome) -> Self {
        Self {
            customer,
            outcome,
            action: None,
            merged: Vec::new(),
            refused: Vec::new(),
        }
    }
}

/// What planning decided for one record.
#[derive(Debug)]
pub(crate) enum Plan {
    /// A commit to apply, and the receipt to give once it is.
    Apply(Box<Commit>, Receipt),
    /// Nothing to store.
    Skip(Receipt),
    /// The same event as an earlier record of the batch: its receipt, marked duplicate.
    Repeat(EventId),
    /// Older than evidence applied to the profiles it touches: rebuild them once the batch
    /// has landed.
    Late,
}

/// Plans a batch against the store as it will be once the batch's earlier commits apply.
pub(crate) struct Planner<'a, S: ?Sized> {
    store: &'a S,
    graph: Graph<'a>,
    stored_events: HashMap<EventId, Option<CustomerId>>,
    stored_owners: HashMap<Identifier, Option<Owner>>,
    /// The stored profiles the prefetched identifiers lead to, taken as they are loaded.
    stored_profiles: HashMap<CustomerId, ProfileRecord>,
    planned_events: HashSet<EventId>,
    planned_interactions: HashMap<InteractionId, Attributed<Interaction>>,
    /// Refusals stored on a profile (members included), read as needed.
    refused_on: HashMap<CustomerId, Vec<Refusal>>,
    /// Refusals of an identifier, read as needed.
    refused_of: HashMap<Identifier, Vec<Refusal>>,
    /// What this batch planned so far that the store does not hold yet.
    planned_refusals: Vec<Refusal>,
    planned_absorbed: Vec<CustomerId>,
    /// Whether the snapshot planned against holds any override, any interaction; read by
    /// `prefetch`.
    overrides_exist: bool,
    interactions_exist: bool,
    /// Resolve late records against the profiles as they stand instead of asking for a
    /// rebuild: for a record whose component is too large to rebuild.
    tolerate_late: bool,
    /// Leave each planned event out of its commit, for a caller that moves the record
    /// in itself (see [`lending_events`](Self::lending_events)).
    lend_events: bool,
    /// Set by `prefetch` when every record to plan sorts after everything stored: then
    /// no stored profile can make one late, and this position (the store's bound, or
    /// `None` when nothing is stored) stands in for each loaded profile's newest
    /// evidence, unread.
    stored_before_all: Option<Option<EvidenceKey>>,
    /// The identifiers of the prefetched records that are on the suppression list, with
    /// their hashes.
    suppressed: HashMap<Identifier, String>,
}

impl<'a, S: Reads + ?Sized> Planner<'a, S> {
    pub(crate) fn new(store: &'a S, policy: &'a Policy) -> Self {
        Self {
            store,
            graph: Graph::new(policy),
            stored_events: HashMap::new(),
            stored_owners: HashMap::new(),
            stored_profiles: HashMap::new(),
            planned_events: HashSet::new(),
            planned_interactions: HashMap::new(),
            refused_on: HashMap::new(),
            refused_of: HashMap::new(),
            planned_refusals: Vec::new(),
            planned_absorbed: Vec::new(),
            overrides_exist: true,
            interactions_exist: true,
            tolerate_late: false,
            lend_events: false,
            stored_before_all: None,
            suppressed: HashMap::new(),
        }
    }

    /// A planner that resolves a late record against the profiles as they stand, for one
    /// whose component is larger than [`Policy::rebuild_limit`].
    pub(crate) fn tolerating_late(store: &'a S, policy: &'a Policy) -> Self {
        Self {
            tolerate_late: true,
            ..Self::new(store, policy)
        }
    }

    /// A planner whose event commits leave `event` empty: the caller owns the records and
    /// moves each planned event into its commit (to the receipt's customer) for as long
    /// as the store applies it, so a batch's events are not copied.
    pub(crate) fn lending_events(mut self) -> Self {
        self.lend_events = true;
        self
    }

    /// Reads at once what planning `records` will ask the store: whether their events are
    /// stored, and who owns their identifiers.
    pub(crate) fn prefetch<'r>(
        &mut self,
        records: impl IntoIterator<Item = &'r Record, IntoIter: Clone>,
    ) -> Result<(), StoreError> {
        let records = records.into_iter();
        let mut events = Vec::new();
        let mut identifiers = Vec::new();
        for record in records.clone() {
            if let Record::Event(event) = record {
                events.push(event.id);
            }
            identifiers.extend(record.identifiers().iter().cloned());
        }
        events.sort_unstable();
        events.dedup();
        identifiers.sort_unstable();
        identifiers.dedup();
        let owners = self.store.event_owners(&events)?;
        self.stored_events = events.into_iter().zip(owners).collect();
        self.suppressed = suppressed_among(self.store, &identifiers)?;
        let owners = self.store.owners(&identifiers)?;
        let mut customers: Vec<CustomerId> = owners.iter().flatten().map(|o| o.customer).collect();
        customers.sort_unstable();
        customers.dedup();
        self.stored_profiles = customers
            .iter()
            .zip(self.store.profiles(&customers)?)
            .filter_map(|(id, profile)| Some((*id, profile?)))
            .collect();
        self.stored_owners = identifiers.into_iter().zip(owners).collect();
        self.overrides_exist = self.store.has_overrides()?;
        self.prefetch_refusals(records.clone())?;
        self.interactions_exist = self.store.has_interactions()?;
        let position = |cursor: TimelineCursor| EvidenceKey {
            at: cursor.at,
            id: cursor.id,
        };
        let mut bound = self.store.events_bound()?.map(position);
        if self.interactions_exist {
            bound = bound.max(self.store.interactions_bound()?.map(position));
        }
        let first = records.map(Record::key).min();
        self.stored_before_all = match first {
            Some(first) if bound < Some(first) => Some(bound),
            _ => None,
        };
        Ok(())
    }

    /// Makes sure the graph holds every profile that owns one of `identifiers`, and the
    /// overrides that concern them.
    fn load(&mut self, identifiers: &[Identifier]) -> Result<(), StoreError> {
        let unknown: Vec<Identifier> = identifiers
            .iter()
            .filter(|i| self.graph.owner(i).is_none() && !self.stored_owners.contains_key(*i))
            .cloned()
            .collect();
        let fetched = self.store.owners(&unknown)?;
        self.stored_owners.extend(unknown.into_iter().zip(fetched));
        let mut named: Vec<Identifier> = identifiers.to_vec();
        for identifier in identifiers {
            if self.graph.owner(identifier).is_some() {
                continue;
            }
            let Some(owner) = self.stored_owners[identifier] else {
                continue;
            };
            if self.graph.knows(owner.customer) {
                continue;
            }
            let profile = match self.stored_profiles.remove(&owner.customer) {
                Some(profile) => profile,
                None => match self.store.profile(owner.customer)? {
                    Some(profile) => profile,
                    None => continue,
                },
            };
            named.extend(profile.identifiers.iter().cloned());
            let latest = match self.stored_before_all {
                Some(bound) => bound,
                None => latest_evidence(self.store, profile.id, self.interactions_exist)?,
            };
            self.graph.insert(
                Cluster {
                    id: profile.id,
                    created_at: profile.created_at,
                    identifiers: profile.identifiers.into_iter().collect(),
                    latest,
                },
                profile.members,
            );
        }
        if !self.overrides_exist {
            return Ok(());
        }
        for record in self.store.overrides(&named)? {
            self.graph.add_override(&record);
        }
        Ok(())
    }

    /// Plans `record`, which must not sort before any record planned earlier.
    pub(crate) fn plan(&mut self, record: &Record) -> Result<Plan, Error> {
        if let Some((identifier, hash)) = record
            .identifiers()
            .iter()
            .find_map(|i| self.suppressed.get_key_value(i))
        {
            return Err(Error::Suppressed {
                kind: identifier.kind().clone(),
                hash: hash.clone(),
            });
        }
        match record {
            Record::Event(event) => self.plan_event(event),
            Record::Interaction(interaction) => self.plan_interaction(interaction),
        }
    }

    fn plan_event(&mut self, event: &Event) -> Result<Plan, Error> {
        event.validate()?;
        if self.planned_events.contains(&event.id) {
            return Ok(Plan::Repeat(event.id));
        }
        let stored = match self.stored_events.get(&event.id) {
            Some(stored) => *stored,
            None => self.store.event(event.id)?.map(|s| s.customer),
        };
        if let Some(customer) = stored {
            let customer = self.graph.live(customer);
            return Ok(Plan::Skip(Receipt::skipped(customer, Outcome::Duplicate)));
        }
        self.planned_events.insert(event.id);
        let evidence = Evidence {
            key: event_key(event),
            event: Some(event.id),
            identifiers: event.identifiers.clone(),
            forced: false,
        };
        let Some((step, mut commit)) = self.decide(&evidence)? else {
            return Ok(Plan::Late);
        };
        commit.traits = trait_operations(event, step.customer);
        commit.consent = consent_records(event, step.customer);
        commit.event = (!self.lend_events).then(|| Attributed {
            customer: step.customer,
            record: event.clone(),
        });
        Ok(Plan::Apply(Box::new(commit), receipt(&step)))
    }

    fn plan_interaction(&mut self, interaction: &Interaction) -> Result<Plan, Error> {
        interaction.validate()?;
        let stored = match self.planned_interactions.get(&interaction.id) {
            Some(planned) => Some(planned.clone()),
            None => self.store.interaction(interaction.id)?,
        };
        if let Some(stored) = &stored
            && !interaction.supersedes(&stored.record)
        {
            let customer = self.graph.live(stored.customer);
            return Ok(Plan::Skip(Receipt::skipped(customer, Outcome::Outdated)));
        }
        let version = Expectation::InteractionVersion {
            id: interaction.id,
            updated_at: stored.as_ref().map(|s| s.record.updated_at),
        };
        // An update that names the same people stays with the customer it was about: it
        // is no new evidence of who that is. One that names someone new, or no longer
        // names someone the stored version did (whose link may rest on it alone), changes
        // the evidence the profiles were resolved by: a rebuild places it, as if the
        // stored version had never been. Where no rebuild can (too large a component, or
        // nobody named at all), a narrower update stays too.
        let stays = stored.as_ref().is_some_and(|stored| {
            let policy = self.graph.policy();
            let now: HashSet<Identifier> = policy
                .usable(&interaction.identifiers)
                .into_iter()
                .collect();
            let before: HashSet<Identifier> = policy
                .usable(&stored.record.identifiers)
                .into_iter()
                .collect();
            now.is_subset(&before) && (now == before || self.tolerate_late || now.is_empty())
        });
        let (commit, receipt) = match &stored {
            Some(stored) if stays => {
                let customer = self.graph.live(stored.customer);
                let commit = Commit {
                    expect: vec![Expectation::Live { customer }],
                    ..Commit::default()
                };
                let receipt = Receipt {
                    action: Some(Action::Attach),
                    ..Receipt::skipped(customer, Outcome::Stored)
                };
                (commit, receipt)
            }
            _ => {
                let evidence = Evidence::new(
                    interaction_key(interaction),
                    interaction.identifiers.clone(),
                );
                if stored.is_some() && !self.tolerate_late {
                    // New identifiers on a stored interaction change the evidence it was
                    // resolved by: rebuild.
                    return Ok(Plan::Late);
                }
                let Some((step, commit)) = self.decide(&evidence)? else {
                    return Ok(Plan::Late);
                };
                (commit, receipt(&step))
            }
        };
        let mut commit = commit;
        commit.expect.push(version);
        let attributed = Attributed {
            customer: receipt.customer,
            record: interaction.clone(),
        };
        self.planned_interactions
            .insert(interaction.id, attributed.clone());
        commit.interaction = Some(attributed);
        Ok(Plan::Apply(Box::new(commit), receipt))
    }

    /// Steps the graph with `evidence`, or `None` when the evidence is late.
    fn decide(&mut self, evidence: &Evidence) -> Result<Option<(Step, Commit)>, StoreError> {
        let usable = self.graph.policy().usable(&evidence.identifiers);
        self.load(&usable)?;
        let owners: Vec<Option<CustomerId>> = usable.iter().map(|i| self.graph.owner(i)).collect();
        let late = owners.iter().flatten().any(|&owner| {
            self.graph
                .cluster(owner)
                .and_then(|c| c.latest)
                .is_some_and(|latest| latest > evidence.key)
        });
        // Whether a value turns suspect depends on all the evidence carrying it: when this
        // evidence might tip one, the profiles it touches are rebuilt, which decides it
        // exactly.
        if !self.tolerate_late && (late || self.might_tip_a_suspect(&usable)?) {
            return Ok(None);
        }
        // A decision about linking rests on the identifier sets of the profiles involved
        // (the per-kind limits are counted on them): state them, so that two writers
        // cannot both add to one profile under a limit.
        let mut held: Vec<Expectation> = Vec::new();
        if usable.len() > 1 {
            let mut touched: Vec<CustomerId> = owners.iter().flatten().copied().collect();
            touched.sort_unstable();
            touched.dedup();
            for customer in touched {
                if let Some(cluster) = self.graph.cluster(customer) {
                    held.push(Expectation::Identifiers {
                        customer,
                        identifiers: cluster.identifiers.iter().cloned().collect(),
                    });
                }
            }
        }
        let step = self.graph.step(evidence);
        self.planned_refusals.extend(step.refusals.iter().cloned());
        self.planned_absorbed
            .extend(step.merges.iter().map(|merge| merge.absorbed));
        let mut expect: Vec<Expectation> = usable
            .iter()
            .zip(owners)
            .map(|(identifier, owner)| Expectation::Owner {
                identifier: identifier.clone(),
                owner,
            })
            .collect();
        expect.append(&mut held);
        let mut identity = Vec::new();
        if let Some(created_at) = step.created {
            identity.push(IdentityChange::CreateProfile {
                id: step.customer,
                created_at,
            });
        }
        identity.extend(step.merges.iter().cloned().map(IdentityChange::Merge));
        identity.extend(
            step.attached
                .iter()
                .map(|identifier| IdentityChange::Attach {
                    identifier: identifier.clone(),
                    customer: step.customer,
                }),
        );
        identity.extend(step.refusals.iter().cloned().map(IdentityChange::Refuse));
        let commit = Commit {
            expect,
            identity,
            ..Commit::default()
        };
        Ok(Some((step, commit)))
    }
}

/// Where an event sits in the evidence order.
pub(crate) fn event_key(event: &Event) -> EvidenceKey {
    EvidenceKey {
        at: event.occurred_at,
        id: *event.id.as_uuid(),
    }
}

/// Where an interaction sits in the evidence order.
pub(crate) fn interaction_key(interaction: &Interaction) -> EvidenceKey {
    EvidenceKey {
        at: interaction.occurred_at,
        id: *interaction.id.as_uuid(),
    }
}

/// The newest evidence stored for the live profile `customer`; `interactions` says whether
/// the store may hold any interaction at all.
pub(crate) fn latest_evidence<S: Reads + ?Sized>(
    store: &S,
    customer: CustomerId,
    interactions: bool,
) -> Result<Option<EvidenceKey>, StoreError> {
    let key = |cursor: TimelineCursor| EvidenceKey {
        at: cursor.at,
        id: cursor.id,
    };
    let event = EventStore::latest_event(store, customer)?.map(key);
    let interaction = if interactions {
        InteractionStore::latest_interaction(store, customer)?.map(key)
    } else {
        None
    };
    Ok(event.max(interaction))
}

/// The trait operations an event carries, attributed to `customer`.
pub(crate) fn trait_operations(
    event: &Event,
    customer: CustomerId,
) -> Vec<Attributed<TraitOperation>> {
    let provenance = Provenance {
        source: event.source.clone(),
        event_id: Some(event.id),
        observed_at: event.occurred_at,
    };
    event
        .traits
        .iter()
        .map(|update| Attributed {
            customer,
            record: TraitOperation {
                key: update.key.clone(),
                op: update.op.clone(),
                provenance: provenance.clone(),
            },
        })
        .collect()
}

/// Those of `identifiers` on the suppression list, with their hashes; none are hashed
/// while the list is empty.
fn suppressed_among<S: Reads + ?Sized>(
    store: &S,
    identifiers: &[Identifier],
) -> Result<HashMap<Identifier, String>, StoreError> {
    if identifiers.is_empty() || !store.has_suppressions()? {
        return Ok(HashMap::new());
    }
    let Some(key) = store.privacy_key()? else {
        return Ok(HashMap::new());
    };
    let hashes: Vec<String> = identifiers
        .iter()
        .map(|i| crate::privacy::suppression_hash(&key, i))
        .collect();
    let found = store.suppressed(&hashes)?;
    Ok(identifiers
        .iter()
        .zip(hashes)
        .zip(found)
        .filter(|(_, found)| found.is_some())
        .map(|((identifier, hash), _)| (identifier.clone(), hash))
        .collect())
}

/// The consent decisions an event carries, attributed to `customer`.
pub(crate) fn consent_records(
    event: &Event,
    customer: CustomerId,
) -> Vec<Attributed<ConsentRecord>> {
    let provenance = Provenance {
        source: event.source.clone(),
        event_id: Some(event.id),
        observed_at: event.occurred_at,
    };
    event
        .consent
        .iter()
        .map(|choice| Attributed {
            customer,
            record: ConsentRecord {
                choice: choice.clone(),
                provenance: provenance.clone(),
            },
        })
        .collect()
}

fn receipt(step: &Step) -> Receipt {
    Receipt {
        customer: step.customer,
        outcome: Outcome::Stored,
        action: Some(step.action),
        merged: step.merges.iter().map(|m| m.absorbed).collect(),
        refused: step.refusals.clone(),
    }
}
