//! Turning incoming records into commits: validate, check for repeats, read the owners of
//! the record's identifiers, let [`crate::identity`] decide, and attribute the record.

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::identity::{self, Action, Decision, Evidence};
use crate::model::{CustomerId, Event, Identifier, Interaction, Provenance, TraitOperation};
use crate::store::{Attributed, Commit, Expectation, ProfileRecord, Store};

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

/// Plans the ingestion of `record` against the store's current state.
pub(crate) fn plan<S: Store + ?Sized>(store: &S, record: &Record) -> Result<Plan, Error> {
    match record {
        Record::Event(event) => plan_event(store, event),
        Record::Interaction(interaction) => plan_interaction(store, interaction),
    }
}

fn plan_event<S: Store + ?Sized>(store: &S, event: &Event) -> Result<Plan, Error> {
    event.validate()?;
    if let Some(stored) = store.event(event.id)? {
        return Ok(Plan::Skip(skipped(stored.customer, Outcome::Duplicate)));
    }
    let evidence = Evidence {
        event: Some(event.id),
        at: event.occurred_at,
    };
    let decision = resolve(store, &event.identifiers, evidence)?;
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

fn plan_interaction<S: Store + ?Sized>(
    store: &S,
    interaction: &Interaction,
) -> Result<Plan, Error> {
    interaction.validate()?;
    let stored = store.interaction(interaction.id)?;
    if let Some(stored) = &stored {
        if !interaction.supersedes(&stored.record) {
            return Ok(Plan::Skip(skipped(stored.customer, Outcome::Outdated)));
        }
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
            resolve(store, &interaction.identifiers, evidence)?
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

fn resolve<S: Store + ?Sized>(
    store: &S,
    identifiers: &[Identifier],
    evidence: Evidence,
) -> Result<Decision, Error> {
    let owners = store.owners(identifiers)?;
    let mut profiles: Vec<ProfileRecord> = Vec::new();
    for owner in owners.iter().flatten() {
        if profiles.iter().all(|p| p.id != *owner) {
            if let Some(profile) = store.profile(*owner)? {
                profiles.push(profile);
            }
        }
    }
    Ok(identity::decide(
        identifiers,
        &owners,
        &profiles,
        evidence,
        CustomerId::new(),
    ))
}

fn receipt(decision: &Decision) -> Receipt {
    let merged = decision
        .changes
        .iter()
        .filter_map(|change| match change {
            crate::store::IdentityChange::Merge(merge) => Some(merge.absorbed),
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
