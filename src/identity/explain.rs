//! Why two identifiers share a profile, or why they do not.

use std::collections::{HashMap, VecDeque};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Resolution;
use crate::model::{CustomerId, EventId, Identifier, Refusal};

/// One link in a chain of evidence: `from` and `to` were seen together in one piece of
/// evidence, which linked them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hop {
    /// The identifier the hop starts from.
    pub from: Identifier,
    /// The identifier it reaches.
    pub to: Identifier,
    /// The evidence (event, interaction or operator link) that carried both.
    pub evidence: Uuid,
    /// The event, when the evidence is one.
    pub event: Option<EventId>,
    /// When the evidence happened.
    pub at: DateTime<Utc>,
    /// Whether an operator forced the link.
    pub forced: bool,
}

/// The answer to "why are these two identifiers (not) one customer?".
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "answer", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Explanation {
    /// They share a profile; each hop's evidence linked its two identifiers, in order
    /// from the first identifier asked about to the second. Empty when both are the
    /// same identifier.
    Linked {
        /// The profile.
        customer: CustomerId,
        /// The chain of evidence.
        chain: Vec<Hop>,
    },
    /// They belong to different profiles, and evidence that would have joined them was
    /// refused by these rules.
    Refused {
        /// The refused links, in evidence order.
        refusals: Vec<Refusal>,
    },
    /// No evidence ever connected them.
    Unrelated,
    /// One of them belongs to no profile (never seen, blocked, or refused everywhere).
    Unknown {
        /// The identifier nobody holds.
        identifier: Identifier,
    },
}

pub(super) fn explain(resolution: &Resolution<'_>, a: &Identifier, b: &Identifier) -> Explanation {
    let graph = resolution.graph();
    let (Some(owner_a), Some(owner_b)) = (graph.owner(a), graph.owner(b)) else {
        let identifier = if graph.owner(a).is_none() { a } else { b };
        return Explanation::Unknown {
            identifier: identifier.clone(),
        };
    };
    if owner_a == owner_b {
        return Explanation::Linked {
            customer: owner_a,
            chain: chain(resolution, a, b),
        };
    }
    let refusals: Vec<Refusal> = resolution
        .refusals()
        .into_iter()
        .filter(|refusal| {
            let held_by = graph.owner(&refusal.identifier);
            let pair = (refusal.customer, held_by);
            pair == (owner_a, Some(owner_b))
                || pair == (owner_b, Some(owner_a))
                || (held_by.is_none() && [owner_a, owner_b].contains(&refusal.customer))
        })
        .collect();
    if refusals.is_empty() {
        Explanation::Unrelated
    } else {
        Explanation::Refused { refusals }
    }
}

/// The shortest chain of accepted links from `a` to `b`, fewest hops first and, among
/// those, the earliest evidence.
fn chain(resolution: &Resolution<'_>, a: &Identifier, b: &Identifier) -> Vec<Hop> {
    let mut edges: HashMap<&Identifier, Vec<(&Identifier, usize)>> = HashMap::new();
    for (index, (_, step)) in resolution.steps().iter().enumerate() {
        if let Some((hub, rest)) = step.linked.split_first() {
            for other in rest {
                edges.entry(hub).or_default().push((other, index));
                edges.entry(other).or_default().push((hub, index));
            }
        }
    }
    let mut came_from: HashMap<&Identifier, (&Identifier, usize)> = HashMap::new();
    let mut queue = VecDeque::from([a]);
    while let Some(at) = queue.pop_front() {
        if at == b {
            break;
        }
        for &(next, index) in edges.get(at).into_iter().flatten() {
            if next != a && !came_from.contains_key(next) {
                came_from.insert(next, (at, index));
                queue.push_back(next);
            }
        }
    }
    let mut hops = Vec::new();
    let mut at = b;
    while let Some(&(from, index)) = came_from.get(at) {
        let (evidence, _) = &resolution.steps()[index];
        hops.push(Hop {
            from: from.clone(),
            to: at.clone(),
            evidence: evidence.key.id,
            event: evidence.event,
            at: evidence.key.at,
            forced: evidence.forced,
        });
        at = from;
    }
    hops.reverse();
    hops
}
