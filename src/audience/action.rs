//! Personas and the next best action.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::RuleError;
use super::rule::{Rule, Verdict};
use crate::model::{Channel, Interaction, Purpose};

/// The property an action's interaction carries its name in.
pub const ACTION_PROPERTY: &str = "action";

/// A described, prioritised group of customers (lower `priority` wins).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Persona {
    /// Its name.
    pub name: String,
    /// Who they are and what they need, for people.
    pub description: String,
    /// Lower wins when several hold.
    pub priority: u32,
    /// Who it is.
    pub rule: Rule,
}

/// The persona a profile matches, as the [unified view](crate::Profile::persona) shows
/// it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonaMatch {
    /// The persona's name.
    pub name: String,
    /// Who they are and what they need.
    pub description: String,
    /// The conditions that put the customer in it.
    pub reasons: Vec<String>,
}

/// The index of the persona among `personas` that wins: of those that `hold`, the one of
/// lowest priority, the first given among equals.
pub(crate) fn strongest(personas: &[Persona], holds: impl Fn(usize) -> bool) -> Option<usize> {
    personas
        .iter()
        .enumerate()
        .filter(|(n, _)| holds(*n))
        .min_by_key(|(n, persona)| (persona.priority, *n))
        .map(|(n, _)| n)
}

/// At most `times` actions of this cap's kind per customer in any `days` days.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrequencyCap {
    /// How many.
    pub times: u32,
    /// Over how many days, counted back from the time asked.
    pub days: u32,
    /// The actions it counts: those of this group (see [`Action::group`]); `None` for
    /// this action alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

/// Something to do for or with a customer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Action {
    /// Its name, recorded on the timeline when taken.
    pub name: String,
    /// A group of actions caps can count together (`offer`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Lower wins when several apply.
    pub priority: u32,
    /// When it applies.
    pub when: Rule,
    /// The channels that may carry it; empty for any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<Channel>,
    /// What contacting the customer for it serves; `None` for an action that contacts
    /// nobody (a service priority, "leave alone"), which needs no consent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<Purpose>,
    /// Limits on how often it, or its group, is taken.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub caps: Vec<FrequencyCap>,
}

/// The actions to choose from.
///
/// A [`Persona`] is a segment with a priority and a description for people; a customer's
/// persona is the highest-priority one whose rule holds. A [`Playbook`] maps rules to
/// [`Action`]s — an offer, a message, a service priority, "leave alone" — with a
/// priority, the channels each may use, the purpose a contact serves, and frequency caps
/// counted from the actions already taken, as recorded on the timeline
/// ([`Customers::record_action`](crate::Customers::record_action)). The next best action
/// is the highest-priority action whose rule holds, that the channel may carry, that
/// the customer's consent allows for its purpose, and whose caps are not reached.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Playbook {
    /// Every action.
    pub actions: Vec<Action>,
}

impl Playbook {
    /// Checks every action; an error names its path (`actions[2].when.rules[0]`).
    pub fn validate(&self) -> Result<(), RuleError> {
        for (n, action) in self.actions.iter().enumerate() {
            let path = format!("actions[{n}]");
            if action.name.trim().is_empty() {
                return Err(RuleError::new(&path, "an action needs a name"));
            }
            action.when.validate().map_err(|err| RuleError {
                path: err.path.replacen("rule", &format!("{path}.when"), 1),
                problem: err.problem,
            })?;
            for (c, cap) in action.caps.iter().enumerate() {
                if cap.times == 0 || cap.days == 0 {
                    return Err(RuleError::new(
                        &format!("{path}.caps[{c}]"),
                        "a cap needs at least one time and one day",
                    ));
                }
            }
        }
        Ok(())
    }
}

/// The action chosen for a customer, and why the ones before it were passed over.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recommendation {
    /// The action, if any applies.
    pub action: Option<String>,
    /// Why it applies: the conditions of its rule that held.
    pub reasons: Vec<String>,
    /// Higher-priority actions passed over, each with why.
    pub passed_over: Vec<(String, String)>,
}

/// The name of the action `interaction` records, if it records one.
pub(crate) fn taken(interaction: &Interaction) -> Option<&str> {
    interaction
        .properties
        .get(ACTION_PROPERTY)
        .and_then(serde_json::Value::as_str)
}

/// Whether `cap` of `action` is reached at `as_of`, given the actions taken.
pub(crate) fn cap_reached(
    cap: &FrequencyCap,
    action: &Action,
    playbook: &Playbook,
    interactions: &[Interaction],
    as_of: DateTime<Utc>,
) -> bool {
    let since = as_of - Duration::days(i64::from(cap.days));
    let counts = |name: &str| match &cap.group {
        None => name == action.name,
        Some(group) => playbook
            .actions
            .iter()
            .any(|a| a.name == name && a.group.as_ref() == Some(group)),
    };
    let taken = interactions
        .iter()
        .filter(|i| i.occurred_at > since && i.occurred_at <= as_of)
        .filter_map(taken)
        .filter(|name| counts(name))
        .count();
    taken >= cap.times as usize
}

/// Chooses among `playbook`'s actions for a customer: `holds` evaluates a rule, `allowed`
/// answers consent for a purpose on `channel`.
pub(crate) fn choose(
    playbook: &Playbook,
    channel: &Channel,
    interactions: &[Interaction],
    as_of: DateTime<Utc>,
    mut holds: impl FnMut(&Rule) -> Verdict,
    mut allowed: impl FnMut(&Purpose) -> bool,
) -> Recommendation {
    let mut order: Vec<&Action> = playbook.actions.iter().collect();
    order.sort_by_key(|a| a.priority);
    let mut passed_over = Vec::new();
    for action in order {
        if !action.channels.is_empty() && !action.channels.contains(channel) {
            passed_over.push((action.name.clone(), format!("not carried on {channel}")));
            continue;
        }
        let verdict = holds(&action.when);
        if !verdict.holds {
            passed_over.push((action.name.clone(), verdict.reasons.join("; ")));
            continue;
        }
        if let Some(purpose) = &action.purpose
            && !allowed(purpose)
        {
            passed_over.push((
                action.name.clone(),
                format!("may not be contacted for {purpose} on {channel}"),
            ));
            continue;
        }
        if let Some(cap) = action
            .caps
            .iter()
            .find(|cap| cap_reached(cap, action, playbook, interactions, as_of))
        {
            passed_over.push((
                action.name.clone(),
                format!(
                    "capped: {} {} in {} days",
                    cap.times,
                    cap.group.as_deref().unwrap_or(&action.name),
                    cap.days
                ),
            ));
            continue;
        }
        return Recommendation {
            action: Some(action.name.clone()),
            reasons: verdict.reasons,
            passed_over,
        };
    }
    Recommendation {
        action: None,
        reasons: Vec::new(),
        passed_over,
    }
}
