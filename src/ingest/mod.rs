//! Turning incoming records into commits: validate, check for repeats, read the owners of
//! the record's identifiers, let [`crate::identity`] decide, and attribute the record.
//!
//! A batch is planned record by record against an overlay: the store as it is, plus the
//! decisions already planned for earlier records of the batch. The whole batch then
//! reaches the store as one atomic call.

use std::cell::RefCell;
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::identity::{self, Action, Decision, Evidence};
use crate::model::{
    CustomerId, Event, EventId, Identifier, Interaction, InteractionId, Provenance, TraitOperation,
};
use crate::store::{Attributed, Commit, Expectation, IdentityChange, Owner, Store, StoreError};

/// Something to ingest: an event or an interaction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Record {
    /// What the customer did.
    Event(Event),
    /// A contact between the company and the customer.
    Interaction(Interaction),
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
}

/// A commit ready to apply, and the receipt to give once it is applied.
#[derive(Debug)]
pub(crate) enum Plan {
    Apply(Box<Commit>, Receipt),
    Skip(Receipt),
}

/// The reads planning needs, from a store or from a store plus a batch's earlier plans.
pub(crate) trait Reads {
    /// The live profile a stored event belongs to, if the event is stored.
    fn event_owner(&self, id: EventId) -> Result<Option<CustomerId>, StoreError>;
    /// The stored version of an interaction.
    fn interaction(&self, id: InteractionId)
    -> Result<Option<Attributed<Interaction>>, StoreError>;
    /// The live owners of identifiers.
    fn owners(&self, identifiers: &[Identifier]) -> Result<Vec<Option<Owner>>, StoreError>;
}

/// Reads straight from a store.
pub(crate) struct Direct<'a, S: ?Sized>(pub(crate) &'a S);

impl<S: Store + ?Sized> Reads for Direct<'_, S> {
    fn event_owner(&self, id: EventId) -> Result<Option<CustomerId>, StoreError> {
        Ok(self.0.event(id)?.map(|stored| stored.customer))
    }

    fn interaction(
        &self,
        id: InteractionId,
    ) -> Result<Option<Attributed<Interaction>>, StoreError> {
        self.0.interaction(id)
    }

    fn owners(&self, identifiers: &[Identifier]) -> Result<Vec<Option<Owner>>, StoreError> {
        self.0.owners(identifiers)
    }
}

/// A store as it will be once the commits planned so far are applied.
pub(crate) struct Overlay<'a, S: ?Sized> {
    store: &'a S,
    merged_into: HashMap<CustomerId, CustomerId>,
    attached: HashMap<Identifier, CustomerId>,
    events: HashMap<EventId, CustomerId>,
    interactions: HashMap<InteractionId, Attributed<Interaction>>,
    /// What the store held before the batch, read up front in two calls instead of two per
    /// record.
    stored_events: HashMap<EventId, Option<CustomerId>>,
    stored_owners: HashMap<Identifier, Option<Owner>>,
    /// Ages of every profile seen or created so far: a profile that absorbs another within
    /// the batch keeps its own age, which the store cannot report until the batch lands.
    ages: RefCell<HashMap<CustomerId, DateTime<Utc>>>,
}

impl<'a, S: Store + ?Sized> Overlay<'a, S> {
    pub(crate) fn new(store: &'a S) -> Self {
        Self {
            store,
            merged_into: HashMap::new(),
            attached: HashMap::new(),
            events: HashMap::new(),
            interactions: HashMap::new(),
            stored_events: HashMap::new(),
            stored_owners: HashMap::new(),
            ages: RefCell::default(),
        }
    }

    /// Reads at once what planning `records` will ask the store: whether their events are
    /// stored, and who owns their identifiers.
    pub(crate) fn prefetch(&mut self, records: &[Record]) -> Result<(), StoreError> {
        let mut events = Vec::new();
        let mut identifiers = Vec::new();
        for record in records {
            let carried = match record {
                Record::Event(event) => {
                    events.push(event.id);
                    &event.identifiers
                }
                Record::Interaction(interaction) => &interaction.identifiers,
            };
            identifiers.extend(carried.iter().cloned());
        }
        events.sort_unstable();
        events.dedup();
        identifiers.sort_unstable();
        identifiers.dedup();
        let owners = self.store.event_owners(&events)?;
        self.stored_events = events.into_iter().zip(owners).collect();
        let owners = self.store.owners(&identifiers)?;
        self.stored_owners = identifiers.into_iter().zip(owners).collect();
        Ok(())
    }

    fn stored_owners(&self, identifiers: &[Identifier]) -> Result<Vec<Option<Owner>>, StoreError> {
        let unknown: Vec<Identifier> = identifiers
            .iter()
            .filter(|i| !self.stored_owners.contains_key(*i))
            .cloned()
            .collect();
        let mut from_store = self.store.owners(&unknown)?.into_iter();
        Ok(identifiers
            .iter()
            .map(|identifier| match self.stored_owners.get(identifier) {
                Some(owner) => *owner,
                None => from_store.next().flatten(),
            })
            .collect())
    }

    fn live(&self, mut customer: CustomerId) -> CustomerId {
        while let Some(&survivor) = self.merged_into.get(&customer) {
            customer = survivor;
        }
        customer
    }

    /// Takes in a planned commit, as the store will once it is applied.
    pub(crate) fn record(&mut self, commit: &Commit) {
        for change in &commit.identity {
            match change {
                IdentityChange::CreateProfile { id, created_at } => {
                    self.ages.get_mut().insert(*id, *created_at);
                }
                IdentityChange::Attach {
                    identifier,
                    customer,
                } => {
                    self.attached.insert(identifier.clone(), *customer);
                }
                IdentityChange::Merge(merge) => {
                    self.merged_into.insert(merge.absorbed, merge.survivor);
                }
            }
        }
        if let Some(event) = &commit.event {
            self.events.insert(event.record.id, event.customer);
        }
        if let Some(interaction) = &commit.interaction {
            self.interactions
                .insert(interaction.record.id, interaction.clone());
        }
    }
}

impl<S: Store + ?Sized> Reads for Overlay<'_, S> {
    fn event_owner(&self, id: EventId) -> Result<Option<CustomerId>, StoreError> {
        let owner = match (self.events.get(&id), self.stored_events.get(&id)) {
            (Some(&customer), _) => Some(customer),
            (None, Some(&stored)) => stored,
            (None, None) => self.store.event(id)?.map(|stored| stored.customer),
        };
        Ok(owner.map(|customer| self.live(customer)))
    }

    fn interaction(
        &self,
        id: InteractionId,
    ) -> Result<Option<Attributed<Interaction>>, StoreError> {
        let stored = match self.interactions.get(&id) {
            Some(planned) => Some(planned.clone()),
            None => self.store.interaction(id)?,
        };
        Ok(stored.map(|mut stored| {
            stored.customer = self.live(stored.customer);
            stored
        }))
    }

    fn owners(&self, identifiers: &[Identifier]) -> Result<Vec<Option<Owner>>, StoreError> {
        let unplanned: Vec<Identifier> = identifiers
            .iter()
            .filter(|i| !self.attached.contains_key(*i))
            .cloned()
            .collect();
        let mut from_store = self.stored_owners(&unplanned)?.into_iter();
        let mut owners = Vec::with_capacity(identifiers.len());
        for identifier in identifiers {
            let found = match self.attached.get(identifier) {
                Some(&customer) => Some(customer),
                None => from_store.next().flatten().map(|owner| {
                    self.ages
                        .borrow_mut()
                        .insert(owner.customer, owner.created_at);
                    owner.customer
                }),
            };
            owners.push(found.map(|customer| {
                let live = self.live(customer);
                let created_at = self.ages.borrow().get(&live).copied();
                Owner {
                    customer: live,
                    // A live owner was seen (or created) before anything could merge into it.
                    created_at: created_at.expect("the age of every live owner is known"),
                }
            }));
        }
        Ok(owners)
    }
}

/// Plans the ingestion of `record` against what `reads` sees.
pub(crate) fn plan(reads: &impl Reads, record: &Record) -> Result<Plan, Error> {
    match record {
        Record::Event(event) => plan_event(reads, event),
        Record::Interaction(interaction) => plan_interaction(reads, interaction),
    }
}

fn plan_event(reads: &impl Reads, event: &Event) -> Result<Plan, Error> {
    event.validate()?;
    if let Some(customer) = reads.event_owner(event.id)? {
        return Ok(Plan::Skip(skipped(customer, Outcome::Duplicate)));
    }
    let evidence = Evidence {
        event: Some(event.id),
        at: event.occurred_at,
    };
    let decision = resolve(reads, &event.identifiers, evidence)?;
    let provenance = Provenance {
        source: event.source.clone(),
        event_id: Some(event.id),
        observed_at: event.occurred_at,
    };
    let traits = event
        .traits
        .iter()
        .map(|update| Attributed {
            customer: decision.customer,
            record: TraitOperation {
                key: update.key.clone(),
                op: update.op.clone(),
                provenance: provenance.clone(),
            },
        })
        .collect();
    let receipt = receipt(&decision);
    let commit = Commit {
        expect: decision.expect,
        identity: decision.changes,
        event: Some(Attributed {
            customer: decision.customer,
            record: event.clone(),
        }),
        interaction: None,
        traits,
    };
    Ok(Plan::Apply(Box::new(commit), receipt))
}

fn plan_interaction(reads: &impl Reads, interaction: &Interaction) -> Result<Plan, Error> {
    interaction.validate()?;
    let stored = reads.interaction(interaction.id)?;
    if let Some(stored) = &stored
        && !interaction.supersedes(&stored.record)
    {
        return Ok(Plan::Skip(skipped(stored.customer, Outcome::Outdated)));
    }
    let version = Expectation::InteractionVersion {
        id: interaction.id,
        updated_at: stored.as_ref().map(|s| s.record.updated_at),
    };
    // A status update that names nobody stays with the customer it was about.
    let decision = match &stored {
        Some(stored) if interaction.identifiers.is_empty() => Decision {
            action: Action::Attach,
            customer: stored.customer,
            changes: Vec::new(),
            expect: vec![Expectation::Live {
                customer: stored.customer,
            }],
        },
        _ => {
            let evidence = Evidence {
                event: None,
                at: interaction.occurred_at,
            };
            resolve(reads, &interaction.identifiers, evidence)?
        }
    };
    let receipt = receipt(&decision);
    let mut expect = decision.expect;
    expect.push(version);
    let commit = Commit {
        expect,
        identity: decision.changes,
        event: None,
        interaction: Some(Attributed {
            customer: decision.customer,
            record: interaction.clone(),
        }),
        traits: Vec::new(),
    };
    Ok(Plan::Apply(Box::new(commit), receipt))
}

fn resolve(
    reads: &impl Reads,
    identifiers: &[Identifier],
    evidence: Evidence,
) -> Result<Decision, Error> {
    let owners = reads.owners(identifiers)?;
    Ok(identity::decide(
        identifiers,
        &owners,
        evidence,
        CustomerId::new(),
    ))
}

fn receipt(decision: &Decision) -> Receipt {
    let merged = decision
        .changes
        .iter()
        .filter_map(|change| match change {
            IdentityChange::Merge(merge) => Some(merge.absorbed),
            _ => None,
        })
        .collect();
    Receipt {
        customer: decision.customer,
        outcome: Outcome::Stored,
        action: Some(decision.action),
        merged,
    }
}

fn skipped(customer: CustomerId, outcome: Outcome) -> Receipt {
    Receipt {
        customer,
        outcome,
        action: None,
        merged: Vec::new(),
    }
}
