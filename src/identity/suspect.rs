//! Suspects: values the evidence shows to be shared by different people.
//!
//! A placeholder that no blocklist names (`noemail@example.com`, a switchboard number)
//! gives itself away by its company: it turns up beside the user ids of many different
//! people, while a real email or phone turns up beside one. An identifier is *suspect*
//! once the evidence shows it alongside [`Policy::suspect_after`] different values of one
//! unique kind (a kind whose limit is 1: `user_id` by default, each value a different
//! person). From then on it links nothing; the refusals say so, and an operator can
//! confirm it (block) or clear it (allow).
//!
//! The rule reads each piece of evidence on its own, so more evidence can only add
//! suspects, never remove one: whether an identifier is suspect depends on the set of
//! evidence, never on the order it arrived in. Anonymous ids are never suspect (a shared
//! device is what the per-kind limits are for), nor are values of a unique kind (two
//! accounts are kept apart by their limit of 1).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};

use super::{Graph, Policy};
use crate::model::{Identifier, IdentifierKind, Override, OverrideId, OverrideRecord};

/// An operator's word on one identifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Standing {
    Allowed,
    Blocked,
}

/// What the overrides say about single identifiers: which are suspect, and the latest word
/// of an operator on each.
#[derive(Clone, Debug, Default)]
pub(crate) struct Standings {
    suspects: HashMap<Identifier, OverrideId>,
    words: HashMap<Identifier, (DateTime<Utc>, OverrideId, Standing)>,
}

impl Standings {
    /// Takes `record` into account if it sets an identifier's standing.
    pub(crate) fn add(&mut self, record: &OverrideRecord) {
        let (identifier, standing) = match &record.rule {
            Override::Suspect { identifier, .. } => {
                self.suspects.insert(identifier.clone(), record.id);
                return;
            }
            Override::Block { identifier } => (identifier, Standing::Blocked),
            Override::Allow { identifier } => (identifier, Standing::Allowed),
            _ => return,
        };
        let word = (record.at, record.id, standing);
        let latest = self.words.entry(identifier.clone()).or_insert(word);
        if (word.0, word.1) >= (latest.0, latest.1) {
            *latest = word;
        }
    }

    /// An operator's latest word on `identifier`, if any.
    pub(crate) fn word(&self, identifier: &Identifier) -> Option<Standing> {
        self.words.get(identifier).map(|&(_, _, standing)| standing)
    }

    /// The override that makes `identifier` suspect, unless an operator allowed it.
    pub(crate) fn suspect_by(&self, identifier: &Identifier) -> Option<OverrideId> {
        match self.word(identifier) {
            Some(Standing::Allowed) => None,
            _ => self.suspects.get(identifier).copied(),
        }
    }

    /// Whether `identifier` links nothing: suspect and not allowed, or blocked.
    pub(crate) fn links_nothing(&self, identifier: &Identifier) -> bool {
        self.word(identifier) == Some(Standing::Blocked) || self.suspect_by(identifier).is_some()
    }
}

/// Whether values of `kind` can be suspect under `policy`.
pub(crate) fn may_be_suspect(policy: &Policy, kind: &IdentifierKind) -> bool {
    *kind != IdentifierKind::AnonymousId && policy.rule(kind).limit != Some(1)
}

/// Whether values of `kind` tell people apart under `policy`: a unique kind.
pub(crate) fn is_witness(policy: &Policy, kind: &IdentifierKind) -> bool {
    policy.rule(kind).limit == Some(1)
}

/// For each identifier that may turn suspect, the values of unique kinds seen beside it.
#[derive(Debug, Default)]
pub(crate) struct Sightings {
    seen: HashMap<Identifier, BTreeMap<IdentifierKind, BTreeSet<Identifier>>>,
}

impl Sightings {
    /// Notes what one piece of evidence, with `usable` identifiers, shows.
    pub(crate) fn add(&mut self, graph: &Graph<'_>, usable: &[Identifier]) {
        let policy = graph.policy();
        let witnesses: Vec<&Identifier> = usable
            .iter()
            .filter(|identifier| is_witness(policy, identifier.kind()))
            .collect();
        if witnesses.is_empty() {
            return;
        }
        for candidate in usable {
            if graph.may_turn_suspect(candidate) {
                self.note(candidate, witnesses.iter().copied());
            }
        }
    }

    /// Notes `witnesses` seen beside `candidate`.
    pub(crate) fn note<'i>(
        &mut self,
        candidate: &Identifier,
        witnesses: impl IntoIterator<Item = &'i Identifier>,
    ) {
        let seen = self.seen.entry(candidate.clone()).or_default();
        for witness in witnesses {
            seen.entry(witness.kind().clone())
                .or_default()
                .insert(witness.clone());
        }
    }

    /// How many different people `candidate` was seen with: the most values of one kind.
    pub(crate) fn people(&self, candidate: &Identifier) -> u32 {
        self.seen.get(candidate).map_or(0, |by_kind| {
            by_kind
                .values()
                .map(|values| u32::try_from(values.len()).unwrap_or(u32::MAX))
                .max()
                .unwrap_or(0)
        })
    }

    /// An [`Override::Suspect`] dated `at` for each identifier seen with at least the
    /// policy's threshold of people, in identifier order.
    pub(crate) fn suspicions(&self, policy: &Policy, at: DateTime<Utc>) -> Vec<OverrideRecord> {
        let Some(threshold) = policy.suspect_threshold() else {
            return Vec::new();
        };
        let mut found: Vec<(&Identifier, u32)> = self
            .seen
            .keys()
            .map(|identifier| (identifier, self.people(identifier)))
            .filter(|&(_, people)| people >= threshold)
            .collect();
        found.sort_unstable();
        found
            .into_iter()
            .map(|(identifier, people)| OverrideRecord {
                id: OverrideId::new(),
                at,
                rule: Override::Suspect {
                    identifier: identifier.clone(),
                    people,
                },
                reason: Some(format!(
                    "seen with {people} different values of a unique kind"
                )),
            })
            .collect()
    }
}

/// One identifier's standing as a suspect, for an operator to review
/// ([`Customers::suspects`](crate::Customers::suspects)).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Suspect {
    /// The identifier.
    pub identifier: Identifier,
    /// How many different values of one unique kind it was seen with when it turned
    /// suspect; `0` for a value an operator blocked or allowed before it ever did.
    pub people: u32,
    /// When it turned suspect (the time of the newest evidence then), or when an operator
    /// first ruled on it.
    pub since: DateTime<Utc>,
    /// The live profiles whose evidence carried it and was kept from linking by it.
    pub profiles: usize,
    /// What is done about it.
    pub status: SuspectStatus,
}

/// What is done about a [`Suspect`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SuspectStatus {
    /// Suspect, and no operator has ruled: it links nothing.
    Open,
    /// An operator confirmed it is junk: it is no identifier at all.
    Confirmed,
    /// An operator cleared it: it links like any identifier.
    Cleared,
}
