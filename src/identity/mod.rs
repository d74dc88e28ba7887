//! Identity resolution as pure logic: a fold over evidence, in evidence order.
//!
//! Each piece of [`Evidence`] (an event, an interaction, an operator's link) carries
//! identifiers. [`Graph::step`] takes one and decides, under a [`Policy`]:
//!
//! - its usable identifiers, strongest first ([`Policy::usable`]): blocked values are
//!   dropped, never identifiers and never links;
//! - the profile it belongs to: that of its strongest identifier, or a new one named after
//!   the evidence ([`CustomerId::founded_by`]) when none of them is held;
//! - for each weaker identifier, whether its link is accepted — the profile holding it is
//!   merged in, or the unheld identifier attached — or refused, because the result would
//!   break a per-kind limit (two user ids), an operator's separation, or an operator's
//!   unmerge. Refusals are recorded as [`Refusal`]s, merges as [`MergeRecord`]s, and the
//!   oldest profile (by creation time, then id) survives a merge.
//!
//! A value the evidence shows beside the user ids of several different people is
//! *suspect* (a placeholder nobody listed; see [`Policy::suspect_after`]) and links
//! nothing, like a blocked value but recorded and reversible.
//!
//! The result of folding a set of evidence depends on the set alone, never on the order
//! it arrived in: [`resolve`] sorts by [`EvidenceKey`] first. Ingestion keeps that
//! promise incrementally: evidence newer than everything the profiles it touches hold is
//! one more step, and older evidence makes it rebuild those profiles with [`resolve`].
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use oneview::identity::{Evidence, Policy, resolve};
//! use oneview::{EvidenceKey, Identifier};
//! use uuid::Uuid;
//!
//! let at = |day| Utc.with_ymd_and_hms(2026, 5, day, 0, 0, 0).unwrap();
//! let evidence = |day, ids: &[&str]| Evidence::new(
//!     EvidenceKey { at: at(day), id: Uuid::from_u128(day.into()) },
//!     ids.iter().map(|id| id.parse::<Identifier>().unwrap()).collect(),
//! );
//! // Two people sign in on one tablet: the tablet joins the first, and is refused for
//! // the second, who stays a person of their own.
//! let policy = Policy::default();
//! let resolution = resolve(&policy, &[], vec![
//!     evidence(1, &["anonymous_id:tablet", "user_id:ana"]),
//!     evidence(2, &["anonymous_id:tablet", "user_id:ben"]),
//! ]);
//! let graph = resolution.graph();
//! let ana = graph.owner(&"user_id:ana".parse()?).unwrap();
//! let ben = graph.owner(&"user_id:ben".parse()?).unwrap();
//! assert_ne!(ana, ben);
//! assert_eq!(graph.owner(&"anonymous_id:tablet".parse()?), Some(ana));
//! assert_eq!(resolution.refusals().len(), 1);
//! # Ok::<(), oneview::IdentifierError>(())
//! ```

mod explain;
mod policy;
mod suspect;

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::model::{
    CustomerId, EventId, EvidenceKey, Identifier, IdentifierKind, MergeId, MergeRecord, MergeRule,
    Override, OverrideId, OverrideRecord, Refusal, RefusalRule,
};

pub use explain::{Explanation, Hop};
pub use policy::{KindRule, Policy};
use suspect::Standing;
pub(crate) use suspect::{Sightings, Standings, is_witness, may_be_suspect};
pub use suspect::{Suspect, SuspectStatus};

/// One piece of identity evidence: identifiers seen together, and where it sits in the
/// evidence order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Evidence {
    /// Its place in the evidence order.
    pub key: EvidenceKey,
    /// The event, when the evidence is one.
    pub event: Option<EventId>,
    /// The identifiers it carries, in any order, blocked values included.
    pub identifiers: Vec<Identifier>,
    /// An operator's link: limits and separations are waived.
    pub forced: bool,
}

impl Evidence {
    /// Evidence that is neither an event nor forced.
    pub fn new(key: EvidenceKey, identifiers: Vec<Identifier>) -> Self {
        Self {
            key,
            event: None,
            identifiers,
            forced: false,
        }
    }
}

/// What a step does to the identity graph, in one word.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Action {
    /// A new profile is created.
    Create,
    /// The record belongs to an existing profile (possibly with new identifiers attached).
    Attach,
    /// Several profiles are merged into one.
    Merge,
    /// The record arrived older than evidence already applied to the profiles it touches,
    /// so those profiles were rebuilt from all their evidence in evidence order.
    Rebuild,
    /// The record arrived late, but the profiles it touches form a component larger than
    /// [`Policy::rebuild_limit`]: it was resolved against them as they stand, like a record
    /// in order, without a rebuild. Its outcome may differ from in-order delivery.
    ResolvedWithoutRebuild,
}

/// A live profile in a [`Graph`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cluster {
    /// Its id.
    pub id: CustomerId,
    /// When the evidence that founded it happened.
    pub created_at: DateTime<Utc>,
    /// Every identifier it holds.
    pub identifiers: BTreeSet<Identifier>,
    /// The newest evidence attributed to it, if known, or a position no evidence
    /// attributed to it sorts after. It tells whether new evidence is late, and a bound
    /// answers that as well as the newest for evidence that sorts after the bound.
    pub latest: Option<EvidenceKey>,
}

/// What one step decided.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    /// What it did.
    pub action: Action,
    /// The live profile the evidence belongs to.
    pub customer: CustomerId,
    /// The profile it created, if it did (then `customer`).
    pub created: Option<DateTime<Utc>>,
    /// Identifiers nobody held that now belong to `customer`.
    pub attached: Vec<Identifier>,
    /// Profiles merged into `customer`.
    pub merges: Vec<MergeRecord>,
    /// Links refused.
    pub refusals: Vec<Refusal>,
    /// The evidence's identifiers that belong to `customer` after the step.
    pub linked: Vec<Identifier>,
}

/// The identity graph, or the part of it that a decision needs: live profiles with their
/// identifiers, and the operator overrides that concern them.
#[derive(Clone, Debug)]
pub struct Graph<'p> {
    policy: &'p Policy,
    clusters: HashMap<CustomerId, Cluster>,
    merged_into: HashMap<CustomerId, CustomerId>,
    owners: HashMap<Identifier, CustomerId>,
    separations: Vec<(OverrideId, HashSet<Identifier>, HashSet<Identifier>)>,
    separations_by_identifier: HashMap<Identifier, Vec<usize>>,
    unlinked: HashMap<Uuid, OverrideId>,
    known_overrides: HashSet<OverrideId>,
    founded: HashMap<CustomerId, DateTime<Utc>>,
    /// Suspect, blocked and allowed identifiers.
    standings: Standings,
}

/// The profiles an evidence's accepted links gather, while a step decides.
#[derive(Default)]
struct Gathered {
    clusters: Vec<CustomerId>,
    pending: Vec<Identifier>,
    held: HashSet<Identifier>,
    counts: HashMap<IdentifierKind, u32>,
}

impl Gathered {
    fn is_empty(&self) -> bool {
        self.clusters.is_empty() && self.pending.is_empty()
    }

    fn take(&mut self, identifiers: impl IntoIterator<Item = Identifier>) {
        for identifier in identifiers {
            *self.counts.entry(identifier.kind().clone()).or_default() += 1;
            self.held.insert(identifier);
        }
    }
}

impl<'p> Graph<'p> {
    /// An empty graph resolving under `policy`.
    pub fn new(policy: &'p Policy) -> Self {
        Self {
            policy,
            clusters: HashMap::new(),
            merged_into: HashMap::new(),
            owners: HashMap::new(),
            separations: Vec::new(),
            separations_by_identifier: HashMap::new(),
            unlinked: HashMap::new(),
            known_overrides: HashSet::new(),
            founded: HashMap::new(),
            standings: Standings::default(),
        }
    }

    /// The policy it resolves under.
    pub fn policy(&self) -> &'p Policy {
        self.policy
    }

    /// Adds a live profile read from a store, with the ids merged into it. A profile the
    /// graph already knows (live or merged) is left as the graph has it.
    pub fn insert(&mut self, cluster: Cluster, members: impl IntoIterator<Item = CustomerId>) {
        if self.knows(cluster.id) {
            return;
        }
        for member in members {
            if member != cluster.id {
                self.merged_into.insert(member, cluster.id);
            }
        }
        for identifier in &cluster.identifiers {
            self.owners.insert(identifier.clone(), cluster.id);
        }
        self.founded.insert(cluster.id, cluster.created_at);
        self.clusters.insert(cluster.id, cluster);
    }

    /// Whether the graph knows the profile `customer`, live or merged.
    pub fn knows(&self, customer: CustomerId) -> bool {
        self.clusters.contains_key(&customer) || self.merged_into.contains_key(&customer)
    }

    /// Takes an operator override into account (separations and unlinks; links are
    /// evidence, see [`Evidence::forced`]). Adding the same override twice has no effect.
    pub fn add_override(&mut self, record: &OverrideRecord) {
        if !self.known_overrides.insert(record.id) {
            return;
        }
        match &record.rule {
            Override::Separate { a, b } => {
                let index = self.separations.len();
                for identifier in a.iter().chain(b) {
                    self.separations_by_identifier
                        .entry(identifier.clone())
                        .or_default()
                        .push(index);
                }
                self.separations.push((
                    record.id,
                    a.iter().cloned().collect(),
                    b.iter().cloned().collect(),
                ));
            }
            Override::Unlink { evidence, .. } => {
                self.unlinked.insert(*evidence, record.id);
            }
            Override::Link { .. } => {}
            Override::Suspect { .. } | Override::Block { .. } | Override::Allow { .. } => {
                self.standings.add(record);
            }
        }
    }

    /// Whether `identifier` is suspect: it links nothing.
    pub fn is_suspect(&self, identifier: &Identifier) -> bool {
        self.standings.suspect_by(identifier).is_some()
    }

    /// Whether `identifier` may still turn suspect: its kind may be shared by mistake (not
    /// an anonymous id, not a unique kind), no operator allowed it, and it is not suspect
    /// already.
    pub fn may_turn_suspect(&self, identifier: &Identifier) -> bool {
        self.policy.suspect_threshold().is_some()
            && suspect::may_be_suspect(self.policy, identifier.kind())
            && self.standings.word(identifier) != Some(Standing::Allowed)
            && !self.is_suspect(identifier)
    }

    /// The identifiers of `identifiers` that resolution uses: those the policy allows and
    /// no operator blocked, strongest first.
    pub fn usable(&self, identifiers: &[Identifier]) -> Vec<Identifier> {
        self.policy
            .usable(identifiers)
            .into_iter()
            .filter(|identifier| self.standings.word(identifier) != Some(Standing::Blocked))
            .collect()
    }

    /// The live profile `customer` resolves to.
    pub fn live(&self, mut customer: CustomerId) -> CustomerId {
        while let Some(&survivor) = self.merged_into.get(&customer) {
            customer = survivor;
        }
        customer
    }

    /// The live profile holding `identifier`, if the graph knows one.
    pub fn owner(&self, identifier: &Identifier) -> Option<CustomerId> {
        self.owners.get(identifier).map(|&c| self.live(c))
    }

    /// The live profile `customer`, if the graph holds it.
    pub fn cluster(&self, customer: CustomerId) -> Option<&Cluster> {
        self.clusters.get(&self.live(customer))
    }

    /// When the profile `customer` (live or merged) was founded, if the graph knows.
    pub fn created_at(&self, customer: CustomerId) -> Option<DateTime<Utc>> {
        self.founded.get(&customer).copied()
    }

    /// Every live profile in the graph, in no particular order.
    pub fn clusters(&self) -> impl Iterator<Item = &Cluster> {
        self.clusters.values()
    }

    /// Every profile id merged into another, with the live profile it resolves to.
    pub fn merged(&self) -> impl Iterator<Item = (CustomerId, CustomerId)> + '_ {
        self.merged_into.keys().map(|&from| (from, self.live(from)))
    }

    /// Why linking `candidate` (a profile's identifiers, or one unheld identifier) to what
    /// `gathered` holds would be refused, if it would.
    fn conflict<'a>(
        &self,
        gathered: &Gathered,
        candidate: impl Iterator<Item = &'a Identifier> + Clone,
    ) -> Option<RefusalRule> {
        let mut counts: HashMap<&IdentifierKind, u32> = HashMap::new();
        for identifier in candidate.clone() {
            *counts.entry(identifier.kind()).or_default() += 1;
        }
        let mut kinds: Vec<(&IdentifierKind, u32)> = counts.into_iter().collect();
        kinds.sort();
        for (kind, added) in kinds {
            let Some(limit) = self.policy.rule(kind).limit else {
                continue;
            };
            let held = gathered.counts.get(kind).copied().unwrap_or(0);
            // A profile already over the limit (by force) may keep what it has.
            if held + added > limit.max(held).max(added) {
                return Some(RefusalRule::Limit {
                    kind: kind.clone(),
                    limit,
                });
            }
        }
        for identifier in candidate {
            for &index in self
                .separations_by_identifier
                .get(identifier)
                .into_iter()
                .flatten()
            {
                let (by, a, b) = &self.separations[index];
                let other = if a.contains(identifier) { b } else { a };
                let crosses = |side: &HashSet<Identifier>| {
                    side.iter().any(|other| gathered.held.contains(other))
                };
                if crosses(other) || (a.contains(identifier) && b.contains(identifier)) {
                    return Some(RefusalRule::Separated { by: *by });
                }
            }
        }
        None
    }

    /// Decides where `evidence` belongs and applies the decision to the graph.
    pub fn step(&mut self, evidence: &Evidence) -> Step {
        let usable = self.usable(&evidence.identifiers);
        let unlinked_by = self.unlinked.get(&evidence.key.id).copied();
        let mut gathered = Gathered::default();
        let mut refused_clusters: HashMap<CustomerId, RefusalRule> = HashMap::new();
        let mut refused: Vec<(Identifier, RefusalRule)> = Vec::new();
        let mut via: HashMap<CustomerId, Vec<Identifier>> = HashMap::new();
        for identifier in usable {
            if let Some(by) = self.standings.suspect_by(&identifier)
                && !evidence.forced
            {
                refused.push((identifier, RefusalRule::Suspect { by }));
                continue;
            }
            match self.owner(&identifier) {
                Some(owner) if gathered.clusters.contains(&owner) => {
                    via.entry(owner).or_default().push(identifier);
                }
                Some(owner) => {
                    if let Some(rule) = refused_clusters.get(&owner) {
                        refused.push((identifier, rule.clone()));
                        continue;
                    }
                    let rule = if gathered.is_empty() {
                        None
                    } else if let Some(by) = unlinked_by {
                        Some(RefusalRule::Unlinked { by })
                    } else if evidence.forced {
                        None
                    } else {
                        self.conflict(&gathered, self.clusters[&owner].identifiers.iter())
                    };
                    match rule {
                        None => {
                            gathered.clusters.push(owner);
                            gathered.take(self.clusters[&owner].identifiers.iter().cloned());
                            via.entry(owner).or_default().push(identifier);
                        }
                        Some(rule) => {
                            refused_clusters.insert(owner, rule.clone());
                            refused.push((identifier, rule));
                        }
                    }
                }
                None => {
                    let rule = if gathered.is_empty() || evidence.forced {
                        None
                    } else {
                        self.conflict(&gathered, std::iter::once(&identifier))
                    };
                    match rule {
                        None => {
                            gathered.take([identifier.clone()]);
                            gathered.pending.push(identifier);
                        }
                        Some(rule) => refused.push((identifier, rule)),
                    }
                }
            }
        }
        let survivor = gathered
            .clusters
            .iter()
            .map(|id| (self.clusters[id].created_at, *id))
            .min();
        let (customer, created) = match survivor {
            Some((_, id)) => (id, None),
            None => {
                let id = CustomerId::founded_by(evidence.key.id);
                self.founded.insert(id, evidence.key.at);
                self.clusters.insert(
                    id,
                    Cluster {
                        id,
                        created_at: evidence.key.at,
                        identifiers: BTreeSet::new(),
                        latest: None,
                    },
                );
                (id, Some(evidence.key.at))
            }
        };
        let survivor_via = via.remove(&customer).unwrap_or_default();
        let mut merges = Vec::new();
        for absorbed in gathered.clusters.iter().copied().filter(|&c| c != customer) {
            let absorbed_side = via.remove(&absorbed).unwrap_or_default();
            let mut linking: Vec<Identifier> =
                survivor_via.iter().chain(&absorbed_side).cloned().collect();
            linking.sort_unstable();
            merges.push(MergeRecord {
                id: MergeId::derive(evidence.key.id, customer, absorbed),
                survivor: customer,
                absorbed,
                evidence: evidence.event,
                linking,
                absorbed_side,
                evidence_id: Some(evidence.key.id),
                rule: if evidence.forced {
                    MergeRule::Forced
                } else {
                    MergeRule::SharedIdentifier
                },
                at: evidence.key.at,
            });
            self.absorb(customer, absorbed);
        }
        let cluster = self
            .clusters
            .get_mut(&customer)
            .expect("the survivor is live");
        for identifier in &gathered.pending {
            cluster.identifiers.insert(identifier.clone());
            self.owners.insert(identifier.clone(), customer);
        }
        cluster.latest = cluster.latest.max(Some(evidence.key));
        let mut linked: Vec<Identifier> = gathered
            .held
            .into_iter()
            .filter(|identifier| evidence.identifiers.contains(identifier))
            .collect();
        linked.sort_unstable();
        let action = match (created, merges.is_empty()) {
            (Some(_), _) => Action::Create,
            (None, true) => Action::Attach,
            (None, false) => Action::Merge,
        };
        let refusals = refused
            .into_iter()
            .map(|(identifier, rule)| Refusal {
                evidence: evidence.key.id,
                at: evidence.key.at,
                identifier,
                customer,
                rule,
            })
            .collect();
        Step {
            action,
            customer,
            created,
            attached: gathered.pending,
            merges,
            refusals,
            linked,
        }
    }

    fn absorb(&mut self, survivor: CustomerId, absorbed: CustomerId) {
        let gone = self
            .clusters
            .remove(&absorbed)
            .expect("the absorbed is live");
        self.merged_into.insert(absorbed, survivor);
        let cluster = self
            .clusters
            .get_mut(&survivor)
            .expect("the survivor is live");
        cluster.latest = cluster.latest.max(gone.latest);
        cluster.identifiers.extend(gone.identifiers);
    }
}

/// A fold of evidence: the graph it built and what each step decided, in evidence order.
#[derive(Debug)]
pub struct Resolution<'p> {
    graph: Graph<'p>,
    steps: Vec<(Evidence, Step)>,
    suspicions: Vec<OverrideRecord>,
}

impl<'p> Resolution<'p> {
    /// The graph after the last step.
    pub fn graph(&self) -> &Graph<'p> {
        &self.graph
    }

    /// Each piece of evidence with its step, in evidence order.
    pub fn steps(&self) -> &[(Evidence, Step)] {
        &self.steps
    }

    /// The live profile each piece of evidence belongs to now.
    pub fn attribution(&self) -> impl Iterator<Item = (&Evidence, CustomerId)> + '_ {
        self.steps
            .iter()
            .map(|(evidence, step)| (evidence, self.graph.live(step.customer)))
    }

    /// The profile each piece of evidence went to when it was applied — one merged into
    /// another since, maybe — which is where ingest in evidence order would have stored
    /// it. Stores keep evidence there, so that what each side of a merge said before it
    /// (its consent, above all) stays told apart.
    pub fn placement(&self) -> impl Iterator<Item = (&Evidence, CustomerId)> + '_ {
        self.steps
            .iter()
            .map(|(evidence, step)| (evidence, step.customer))
    }

    /// Every merge, in evidence order.
    pub fn merges(&self) -> Vec<MergeRecord> {
        self.steps
            .iter()
            .flat_map(|(_, step)| step.merges.iter().cloned())
            .collect()
    }

    /// Every refused link, in evidence order, each naming the live profile its evidence
    /// belongs to now.
    pub fn refusals(&self) -> Vec<Refusal> {
        self.steps
            .iter()
            .flat_map(|(_, step)| {
                step.refusals.iter().map(|refusal| Refusal {
                    customer: self.graph.live(refusal.customer),
                    ..refusal.clone()
                })
            })
            .collect()
    }

    /// The [`Override::Suspect`]s this fold found that no override named before, each
    /// naming the identifier and how many people it was seen with.
    pub fn suspicions(&self) -> &[OverrideRecord] {
        &self.suspicions
    }

    /// How `a` and `b` are linked, or what keeps them apart.
    pub fn explain(&self, a: &Identifier, b: &Identifier) -> Explanation {
        explain::explain(self, a, b)
    }
}

/// Folds `evidence` in evidence order, from an empty graph, under `policy` and the
/// operator `overrides`.
///
/// Before folding, the evidence is searched for new suspects ([`Policy::suspect_after`]):
/// identifiers seen alongside too many values of a unique kind, which then link nothing;
/// [`Resolution::suspicions`] lists them. The result depends on the set of evidence, not
/// on the order it is given in.
pub fn resolve<'p>(
    policy: &'p Policy,
    overrides: &[OverrideRecord],
    mut evidence: Vec<Evidence>,
) -> Resolution<'p> {
    evidence.sort_by_key(|e| e.key);
    evidence.dedup_by_key(|e| e.key);
    let mut graph = Graph::new(policy);
    for record in overrides {
        graph.add_override(record);
    }
    let mut sightings = Sightings::default();
    // An operator's link is no sign of a shared value.
    for evidence in evidence.iter().filter(|e| !e.forced) {
        sightings.add(&graph, &graph.usable(&evidence.identifiers));
    }
    // Dated by the newest evidence, not the clock, so replays agree.
    let at = evidence.last().map_or_else(Utc::now, |e| e.key.at);
    let suspicions = sightings.suspicions(policy, at);
    for suspicion in &suspicions {
        graph.add_override(suspicion);
    }
    let steps = evidence
        .into_iter()
        .map(|evidence| {
            let step = graph.step(&evidence);
            (evidence, step)
        })
        .collect();
    Resolution {
        graph,
        steps,
        suspicions,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn evidence(n: u32, ids: &[&str]) -> Evidence {
        Evidence::new(
            EvidenceKey {
                at: Utc.with_ymd_and_hms(2026, 5, 1, 0, 0, n).unwrap(),
                id: Uuid::from_u128(n.into()),
            },
            ids.iter().map(|id| id.parse().unwrap()).collect(),
        )
    }

    fn id(text: &str) -> Identifier {
        text.parse().unwrap()
    }

    #[test]
    fn a_chain_merges_into_the_oldest_with_one_record_per_merge() {
        let policy = Policy::default();
        let resolution = resolve(
            &policy,
            &[],
            vec![
                evidence(3, &["email:b@x.io", "email:c@x.io"]),
                evidence(1, &["email:a@x.io"]),
                evidence(2, &["email:b@x.io"]),
                evidence(4, &["email:a@x.io", "email:b@x.io"]),
            ],
        );
        let graph = resolution.graph();
        let oldest = CustomerId::founded_by(Uuid::from_u128(1));
        for e in ["email:a@x.io", "email:b@x.io", "email:c@x.io"] {
            assert_eq!(graph.owner(&id(e)), Some(oldest));
        }
        let merges = resolution.merges();
        assert_eq!(merges.len(), 1);
        assert_eq!(merges[0].survivor, oldest);
        assert_eq!(merges[0].absorbed_side, vec![id("email:b@x.io")]);
        assert_eq!(graph.clusters().count(), 1);
    }

    #[test]
    fn a_second_user_id_is_refused_and_founds_its_own_profile() {
        let policy = Policy::default();
        let resolution = resolve(
            &policy,
            &[],
            vec![
                evidence(1, &["user_id:abc123", "email:jane@x.io"]),
                evidence(2, &["user_id:abc456", "email:jane@x.io"]),
            ],
        );
        let graph = resolution.graph();
        let first = graph.owner(&id("user_id:abc123")).unwrap();
        let second = graph.owner(&id("user_id:abc456")).unwrap();
        assert_ne!(first, second);
        assert_eq!(graph.owner(&id("email:jane@x.io")), Some(first));
        let refusals = resolution.refusals();
        assert_eq!(refusals.len(), 1);
        assert_eq!(refusals[0].identifier, id("email:jane@x.io"));
        assert_eq!(refusals[0].customer, second);
        assert_eq!(
            refusals[0].rule,
            RefusalRule::Limit {
                kind: IdentifierKind::UserId,
                limit: 1
            }
        );
    }

    #[test]
    fn forced_links_waive_limits_and_later_users_still_cannot_join() {
        let policy = Policy::default();
        let mut link = evidence(3, &["user_id:u1", "user_id:u2"]);
        link.forced = true;
        let resolution = resolve(
            &policy,
            &[],
            vec![
                evidence(1, &["user_id:u1"]),
                evidence(2, &["user_id:u2"]),
                link,
                evidence(4, &["user_id:u1", "user_id:u3"]),
            ],
        );
        let graph = resolution.graph();
        assert_eq!(
            graph.owner(&id("user_id:u1")),
            graph.owner(&id("user_id:u2"))
        );
        assert_ne!(
            graph.owner(&id("user_id:u1")),
            graph.owner(&id("user_id:u3"))
        );
        assert_eq!(resolution.merges()[0].rule, MergeRule::Forced);
    }

    #[test]
    fn separations_and_unlinks_keep_profiles_apart() {
        let policy = Policy::default();
        let separate = OverrideRecord {
            id: OverrideId::new(),
            at: Utc::now(),
            rule: Override::Separate {
                a: vec![id("email:a@x.io")],
                b: vec![id("email:b@x.io")],
            },
            reason: None,
        };
        let resolution = resolve(
            &policy,
            std::slice::from_ref(&separate),
            vec![
                evidence(1, &["email:a@x.io"]),
                evidence(2, &["email:b@x.io", "phone:+14155552671"]),
                evidence(3, &["phone:+14155552671", "email:a@x.io"]),
            ],
        );
        let graph = resolution.graph();
        assert_ne!(
            graph.owner(&id("email:a@x.io")),
            graph.owner(&id("email:b@x.io"))
        );
        assert_eq!(
            resolution.refusals()[0].rule,
            RefusalRule::Separated { by: separate.id }
        );

        let merge = resolve(
            &policy,
            &[],
            vec![
                evidence(1, &["email:a@x.io"]),
                evidence(2, &["email:b@x.io"]),
                evidence(3, &["email:a@x.io", "email:b@x.io"]),
            ],
        )
        .merges()
        .remove(0);
        let unlink = OverrideRecord {
            id: OverrideId::new(),
            at: Utc::now(),
            rule: Override::Unlink {
                evidence: Uuid::from_u128(3),
                merge: Box::new(merge),
            },
            reason: None,
        };
        let resolution = resolve(
            &policy,
            std::slice::from_ref(&unlink),
            vec![
                evidence(1, &["email:a@x.io"]),
                evidence(2, &["email:b@x.io"]),
                evidence(3, &["email:a@x.io", "email:b@x.io", "email:c@x.io"]),
            ],
        );
        let graph = resolution.graph();
        assert_ne!(
            graph.owner(&id("email:a@x.io")),
            graph.owner(&id("email:b@x.io"))
        );
        // An unlinked evidence still attaches what nobody held.
        assert_eq!(
            graph.owner(&id("email:c@x.io")),
            graph.owner(&id("email:a@x.io"))
        );
    }

    #[test]
    fn blocked_values_link_nothing_and_evidence_without_identifiers_founds_a_profile() {
        let policy = Policy::default();
        let resolution = resolve(
            &policy,
            &[],
            vec![
                evidence(1, &["user_id:u1", "email:test@test.com"]),
                evidence(2, &["user_id:u2", "email:test@test.com"]),
                evidence(3, &["user_id:null"]),
            ],
        );
        let graph = resolution.graph();
        assert_eq!(graph.clusters().count(), 3);
        assert_eq!(graph.owner(&id("email:test@test.com")), None);
        assert!(resolution.refusals().is_empty());
        let (_, third) = &resolution.steps()[2];
        assert_eq!(third.action, Action::Create);
        assert_eq!(third.customer, CustomerId::founded_by(Uuid::from_u128(3)));
    }
}
