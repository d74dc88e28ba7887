//! Rebuilding profiles from their evidence: for late records and operator overrides.
//!
//! The profiles a change can affect form a *component*: every profile reachable from the
//! seed identifiers through the identifiers their evidence carries, refused links
//! included, and through operator overrides. The component's evidence is folded afresh in
//! evidence order ([`identity::resolve`]), and the result replaces what the store held
//! ([`Rewrite`]).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Outcome, Receipt, Record, event_key, interaction_key, trait_operations};
use crate::identity::{self, Action, Evidence, Policy, Resolution, Standings};
use crate::model::{
    CustomerId, Event, EvidenceKey, Identifier, Interaction, MergeRecord, Override, OverrideRecord,
    Refusal,
};
use crate::store::{
    Attributed, Commit, Expectation, IdentityChange, MAX_PAGE_SIZE, Page, PageRequest,
    ProfileRecord, ProfileState, Reads, Rewrite, StoreError,
};

/// One profile, summed up, before or after a rebuild.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileSummary {
    /// The live profile.
    pub customer: CustomerId,
    /// Its identifiers, in ascending order.
    pub identifiers: Vec<Identifier>,
    /// How many events belong to it.
    pub events: usize,
    /// How many interactions belong to it.
    pub interactions: usize,
}

/// What rebuilding a set of profiles changes (or, in a preview, would change).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rebuilt {
    /// The live profiles involved before, by id.
    pub before: Vec<ProfileSummary>,
    /// The live profiles after, by id.
    pub after: Vec<ProfileSummary>,
    /// The merges that build the profiles after.
    pub merges: Vec<MergeRecord>,
    /// The links refused while building them.
    pub refusals: Vec<Refusal>,
}

/// The stored profiles a change can affect, with all their evidence.
#[derive(Debug, Default)]
pub(crate) struct Component {
    profiles: BTreeMap<CustomerId, ProfileRecord>,
    events: Vec<Attributed<Event>>,
    interactions: Vec<Attributed<Interaction>>,
    overrides: BTreeMap<crate::model::OverrideId, OverrideRecord>,
}

impl Component {
    /// Reads every profile reachable from `seeds`.
    pub(crate) fn load<S: Reads + ?Sized>(
        store: &S,
        seeds: &[Identifier],
    ) -> Result<Self, StoreError> {
        Self::load_through(store, seeds, &[])
    }

    /// Reads every profile reachable from `seeds`, reaching through `through` even where
    /// an override makes it link nothing: for an operator changing its standing.
    pub(crate) fn load_through<S: Reads + ?Sized>(
        store: &S,
        seeds: &[Identifier],
        through: &[Identifier],
    ) -> Result<Self, StoreError> {
        Ok(Self::load_within(store, seeds, through, usize::MAX)?.expect("no limit"))
    }

    /// Like [`load_through`](Self::load_through), but gives up (`None`) as soon as the
    /// component holds more than `limit` profiles.
    pub(crate) fn load_within<S: Reads + ?Sized>(
        store: &S,
        seeds: &[Identifier],
        through: &[Identifier],
        limit: usize,
    ) -> Result<Option<Self>, StoreError> {
        Self::load_around(store, seeds, &[], through, limit)
    }

    /// Like [`load_within`](Self::load_within), starting from the profiles `customers`
    /// too: a profile may hold records but no identifier (its only values were suspect),
    /// and then no identifier leads to it.
    pub(crate) fn load_around<S: Reads + ?Sized>(
        store: &S,
        seeds: &[Identifier],
        customers: &[CustomerId],
        through: &[Identifier],
        limit: usize,
    ) -> Result<Option<Self>, StoreError> {
        let mut component = Self::default();
        let mut seed_customers: Vec<CustomerId> = customers.to_vec();
        // Suspect and blocked values link nothing, so they do not tie the profiles that
        // carried them into one component.
        let mut standings = Standings::default();
        let mut seen: HashSet<Identifier> = HashSet::new();
        let mut pending: Vec<Identifier> = seeds.to_vec();
        loop {
            pending.retain(|identifier| seen.insert(identifier.clone()));
            if pending.is_empty() && seed_customers.is_empty() {
                return Ok(Some(component));
            }
            let mut next = Vec::new();
            for record in store.overrides(&pending)? {
                if record.standing().is_none() {
                    next.extend(record.identifiers());
                }
                standings.add(&record);
                component.overrides.insert(record.id, record);
            }
            pending.retain(|identifier| {
                !standings.links_nothing(identifier) || through.contains(identifier)
            });
            let mut customers: BTreeSet<CustomerId> = store
                .owners(&pending)?
                .into_iter()
                .flatten()
                .map(|owner| owner.customer)
                .collect();
            customers.extend(store.refusals_of(&pending)?.iter().map(|r| r.customer));
            customers.extend(seed_customers.drain(..));
            for customer in customers {
                let Some(profile) = store.profile(customer)? else {
                    continue;
                };
                if component.profiles.contains_key(&profile.id) {
                    continue;
                }
                next.extend(profile.identifiers.iter().cloned());
                next.extend(
                    store
                        .refusals(profile.id)?
                        .into_iter()
                        .map(|r| r.identifier),
                );
                for event in every_page(|page| store.events(profile.id, page))? {
                    next.extend(event.identifiers.iter().cloned());
                    component.events.push(Attributed {
                        customer: profile.id,
                        record: event,
                    });
                }
                for interaction in every_page(|page| store.interactions(profile.id, page))? {
                    next.extend(interaction.identifiers.iter().cloned());
                    component.interactions.push(Attributed {
                        customer: profile.id,
                        record: interaction,
                    });
                }
                component.profiles.insert(profile.id, profile);
                if component.profiles.len() > limit {
                    return Ok(None);
                }
            }
            pending = next;
        }
    }

    /// The component's evidence, plus `extra`.
    fn evidence(&self, extra: Option<&Record>) -> Vec<Evidence> {
        let events = self
            .events
            .iter()
            .map(|stored| &stored.record)
            .chain(match extra {
                Some(Record::Event(event)) => Some(event),
                _ => None,
            })
            .map(|event| Evidence {
                key: event_key(event),
                event: Some(event.id),
                identifiers: event.identifiers.clone(),
                forced: false,
            });
        let stored_interactions = self
            .interactions
            .iter()
            .map(|stored| &stored.record)
            .filter(|i| match extra {
                Some(Record::Interaction(new)) => new.id != i.id,
                _ => true,
            });
        let interactions = stored_interactions
            .chain(match extra {
                Some(Record::Interaction(interaction)) => Some(interaction),
                _ => None,
            })
            .filter(|i| !i.identifiers.is_empty())
            .map(|i| Evidence::new(interaction_key(i), i.identifiers.clone()));
        let links = self
            .overrides
            .values()
            .filter_map(|record| match &record.rule {
                Override::Link { a, b } => Some(Evidence {
                    key: EvidenceKey {
                        at: record.at,
                        id: *record.id.as_uuid(),
                    },
                    event: None,
                    identifiers: vec![a.clone(), b.clone()],
                    forced: true,
                }),
                _ => None,
            });
        events.chain(interactions).chain(links).collect()
    }

    /// Folds the component's evidence, with `extra` and the overrides `added`.
    pub(crate) fn resolve<'p>(
        &self,
        policy: &'p Policy,
        extra: Option<&Record>,
        added: &[OverrideRecord],
    ) -> Resolution<'p> {
        let mut overrides: Vec<OverrideRecord> = self.overrides.values().cloned().collect();
        overrides.extend(added.iter().cloned());
        let mut evidence = self.evidence(extra);
        for record in added {
            if let Override::Link { a, b } = &record.rule {
                evidence.push(Evidence {
                    key: EvidenceKey {
                        at: record.at,
                        id: *record.id.as_uuid(),
                    },
                    event: None,
                    identifiers: vec![a.clone(), b.clone()],
                    forced: true,
                });
            }
        }
        identity::resolve(policy, &overrides, evidence)
    }

    /// The live profiles before, summed up.
    fn before(&self) -> Vec<ProfileSummary> {
        self.profiles
            .values()
            .map(|profile| ProfileSummary {
                customer: profile.id,
                identifiers: profile.identifiers.clone(),
                events: self
                    .events
                    .iter()
                    .filter(|e| e.customer == profile.id)
                    .count(),
                interactions: self
                    .interactions
                    .iter()
                    .filter(|i| i.customer == profile.id)
                    .count(),
            })
            .collect()
    }

    /// The commit that replaces the component by `resolution`, the summary of the change,
    /// and the live profile each piece of evidence now belongs to.
    pub(crate) fn rewrite(
        &self,
        resolution: &Resolution<'_>,
    ) -> (Commit, Rebuilt, HashMap<Uuid, CustomerId>) {
        let graph = resolution.graph();
        let attributed: HashMap<Uuid, CustomerId> = resolution
            .attribution()
            .map(|(evidence, customer)| (evidence.key.id, customer))
            .collect();
        let mut states: BTreeMap<CustomerId, ProfileState> = BTreeMap::new();
        for cluster in graph.clusters() {
            states.insert(
                cluster.id,
                ProfileState {
                    id: cluster.id,
                    created_at: cluster.created_at,
                    live: cluster.id,
                },
            );
        }
        for (from, to) in graph.merged() {
            let created_at = graph
                .created_at(from)
                .unwrap_or(graph.cluster(to).expect("live").created_at);
            states.insert(
                from,
                ProfileState {
                    id: from,
                    created_at,
                    live: to,
                },
            );
        }
        // Each old profile the fold did not found again follows its earliest evidence.
        let mut keyed: Vec<(EvidenceKey, CustomerId)> = self
            .events
            .iter()
            .map(|e| (event_key(&e.record), e.customer))
            .chain(
                self.interactions
                    .iter()
                    .map(|i| (interaction_key(&i.record), i.customer)),
            )
            .collect();
        keyed.sort();
        let mut moved_to: HashMap<CustomerId, CustomerId> = HashMap::new();
        for (key, old) in &keyed {
            if let Some(&new) = attributed.get(&key.id) {
                moved_to.entry(*old).or_insert(new);
            }
        }
        for profile in self.profiles.values() {
            let target = moved_to
                .get(&profile.id)
                .copied()
                .or_else(|| profile.identifiers.iter().find_map(|i| graph.owner(i)));
            moved_to.insert(profile.id, target.unwrap_or(profile.id));
            for &member in &profile.members {
                if states.contains_key(&member) {
                    continue;
                }
                let live = target.unwrap_or(profile.id);
                states.insert(
                    member,
                    ProfileState {
                        id: member,
                        created_at: profile.created_at,
                        live: if states.contains_key(&live) || live == member {
                            live
                        } else {
                            member
                        },
                    },
                );
            }
        }
        let mut identifiers: BTreeSet<Identifier> = BTreeSet::new();
        for profile in self.profiles.values() {
            identifiers.extend(profile.identifiers.iter().cloned());
        }
        for cluster in graph.clusters() {
            identifiers.extend(cluster.identifiers.iter().cloned());
        }
        // Evidence is kept on the profile it went to when the fold applied it, as ingest
        // in evidence order would have kept it.
        let placed: HashMap<Uuid, CustomerId> = resolution
            .placement()
            .map(|(evidence, customer)| (evidence.key.id, customer))
            .collect();
        let events: Vec<(crate::model::EventId, CustomerId)> = self
            .events
            .iter()
            .map(|e| (e.record.id, placed[e.record.id.as_uuid()]))
            .collect();
        let interactions: Vec<(crate::model::InteractionId, CustomerId)> = self
            .interactions
            .iter()
            .map(|i| {
                let to = placed
                    .get(i.record.id.as_uuid())
                    .copied()
                    .unwrap_or_else(|| moved_to[&i.customer]);
                (i.record.id, to)
            })
            .collect();
        let mut expect: Vec<Expectation> = Vec::new();
        for profile in self.profiles.values() {
            for identifier in &profile.identifiers {
                expect.push(Expectation::Owner {
                    identifier: identifier.clone(),
                    owner: Some(profile.id),
                });
            }
            let count = self
                .events
                .iter()
                .filter(|e| e.customer == profile.id)
                .count()
                + self
                    .interactions
                    .iter()
                    .filter(|i| i.customer == profile.id)
                    .count();
            expect.push(Expectation::Evidence {
                customer: profile.id,
                count: count as u64,
            });
        }
        let rewrite = Rewrite {
            profiles: states.into_values().collect(),
            identifiers: identifiers
                .into_iter()
                .map(|i| {
                    let owner = graph.owner(&i);
                    (i, owner)
                })
                .collect(),
            events,
            interactions,
            merges: resolution.merges(),
            refusals: resolution.refusals(),
        };
        let mut after: Vec<ProfileSummary> = graph
            .clusters()
            .map(|cluster| ProfileSummary {
                customer: cluster.id,
                identifiers: cluster.identifiers.iter().cloned().collect(),
                events: rewrite
                    .events
                    .iter()
                    .filter(|(_, c)| graph.live(*c) == cluster.id)
                    .count(),
                interactions: rewrite
                    .interactions
                    .iter()
                    .filter(|(_, c)| graph.live(*c) == cluster.id)
                    .count(),
            })
            .filter(|summary| {
                !summary.identifiers.is_empty() || summary.events + summary.interactions > 0
            })
            .collect();
        after.sort_by_key(|s| s.customer);
        let report = Rebuilt {
            before: self.before(),
            after,
            merges: rewrite.merges.clone(),
            refusals: rewrite.refusals.clone(),
        };
        let mut identity: Vec<IdentityChange> = resolution
            .suspicions()
            .iter()
            .map(|suspicion| IdentityChange::Override(suspicion.clone()))
            .collect();
        identity.push(IdentityChange::Rewrite(Box::new(rewrite)));
        let commit = Commit {
            expect,
            identity,
            ..Commit::default()
        };
        (commit, report, attributed)
    }
}

/// Every item of a newest-first paged read, all pages.
fn every_page<T>(
    mut read: impl FnMut(PageRequest) -> Result<Page<T>, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut items = Vec::new();
    let mut page = PageRequest::first(MAX_PAGE_SIZE);
    loop {
        let found = read(page)?;
        items.extend(found.items);
        match found.next {
            Some(cursor) => page = PageRequest::after(cursor, MAX_PAGE_SIZE),
            None => return Ok(items),
        }
    }
}

/// What a late record comes to.
pub(crate) enum LatePlan {
    /// The rebuild that puts it in its place, and its receipt.
    Rebuild(Box<Commit>, Receipt),
    /// A version of an interaction older than the one stored (an earlier step of the
    /// same batch may have stored the newer one): nothing to do.
    Outdated(Receipt),
    /// More profiles than the policy lets one rebuild touch.
    TooLarge,
}

/// Plans a late record: rebuilds the profiles it touches with it in its place.
pub(crate) fn plan_late<S: Reads + ?Sized>(
    store: &S,
    policy: &Policy,
    record: &Record,
) -> Result<LatePlan, StoreError> {
    let stored_interaction = match record {
        Record::Interaction(interaction) => store.interaction(interaction.id)?,
        Record::Event(_) => None,
    };
    if let (Record::Interaction(interaction), Some(stored)) = (record, &stored_interaction)
        && !interaction.supersedes(&stored.record)
    {
        return Ok(LatePlan::Outdated(Receipt::skipped(
            stored.customer,
            Outcome::Outdated,
        )));
    }
    let seeds = policy.usable(record.identifiers());
    let Some(mut component) = Component::load_within(store, &seeds, &[], policy.max_rebuild())?
    else {
        return Ok(LatePlan::TooLarge);
    };
    if let Some(stored) = &stored_interaction {
        // The stored version's profile belongs to the component even if the update names
        // none of its identifiers, or it holds none (its values were suspect): otherwise
        // it would stay live with nothing left in it.
        let more = Component::load_around(store, &[], &[stored.customer], &[], usize::MAX)?
            .expect("no limit");
        component.absorb(more);
    }
    let resolution = component.resolve(policy, Some(record), &[]);
    let (mut commit, _, attributed) = component.rewrite(&resolution);
    let key = record.key();
    let customer = attributed[&key.id];
    // Stored where the fold applied it, like the rest of the component's evidence.
    let placed = resolution
        .placement()
        .find(|(evidence, _)| evidence.key.id == key.id)
        .map_or(customer, |(_, placed)| placed);
    let refused = resolution
        .refusals()
        .into_iter()
        .filter(|r| r.evidence == key.id)
        .collect();
    match record {
        Record::Event(event) => {
            commit.traits = trait_operations(event, placed);
            commit.consent = super::consent_records(event, placed);
            commit.event = Some(Attributed {
                customer: placed,
                record: event.clone(),
            });
        }
        Record::Interaction(interaction) => {
            commit.expect.push(Expectation::InteractionVersion {
                id: interaction.id,
                updated_at: stored_interaction.map(|s| s.record.updated_at),
            });
            // The rewrite moves the stored version; the new one replaces it after.
            for change in &mut commit.identity {
                if let IdentityChange::Rewrite(rewrite) = change {
                    rewrite.interactions.retain(|(id, _)| *id != interaction.id);
                }
            }
            commit.interaction = Some(Attributed {
                customer: placed,
                record: interaction.clone(),
            });
        }
    }
    let receipt = Receipt {
        customer,
        outcome: Outcome::Stored,
        action: Some(Action::Rebuild),
        merged: Vec::new(),
        refused,
    };
    Ok(LatePlan::Rebuild(Box::new(commit), receipt))
}

impl Component {
    fn absorb(&mut self, other: Self) {
        for (id, profile) in other.profiles {
            if self.profiles.contains_key(&id) {
                continue;
            }
            self.events
                .extend(other.events.iter().filter(|e| e.customer == id).cloned());
            self.interactions.extend(
                other
                    .interactions
                    .iter()
                    .filter(|i| i.customer == id)
                    .cloned(),
            );
            self.profiles.insert(id, profile);
        }
        self.overrides.extend(other.overrides);
    }
}
