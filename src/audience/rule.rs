//! Segment rules: a typed tree with a stable JSON form, checked before use, evaluated
//! with reasons.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::RuleError;
use super::computed::{Comparison, EventFilter};
use crate::model::{Channel, Event, Feedback, Identifier, IdentifierKind, Interaction, Purpose};
use crate::privacy::{ConsentDefaults, ConsentState};

/// A condition on one customer. Its JSON form is tagged by `rule`:
///
/// ```
/// use oneview::audience::Rule;
/// use serde_json::json;
///
/// let rule: Rule = serde_json::from_value(json!({
///     "rule": "all",
///     "rules": [
///         {"rule": "trait", "name": "plan", "test": "equals", "value": "pro"},
///         {"rule": "performed", "events": {"names": ["Order Completed"]},
///          "at_least": 2, "within_days": 90},
///         {"rule": "not", "of": {"rule": "has_identifier", "kind": "phone"}}
///     ]
/// }))?;
/// rule.validate()?;
///
/// let bad: Rule = serde_json::from_value(json!({
///     "rule": "any", "rules": [{"rule": "performed", "at_least": 5, "at_most": 2}]
/// }))?;
/// assert_eq!(
///     bad.validate().unwrap_err().to_string(),
///     "rule.rules[0]: at_least 5 is more than at_most 2"
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Rule {
    /// Every one of `rules` holds.
    All {
        /// The conditions.
        rules: Vec<Rule>,
    },
    /// At least one of `rules` holds.
    Any {
        /// The conditions.
        rules: Vec<Rule>,
    },
    /// `of` does not hold.
    Not {
        /// The condition.
        of: Box<Rule>,
    },
    /// A trait (stored or computed) passes a test.
    Trait {
        /// The trait's name.
        name: String,
        /// The test.
        #[serde(flatten)]
        test: Comparison,
    },
    /// The customer has an identifier of this kind.
    HasIdentifier {
        /// The kind.
        kind: IdentifierKind,
    },
    /// The customer was seen on `channel` (an event or an interaction), within the last
    /// `within_days` days if set.
    UsedChannel {
        /// The channel.
        channel: Channel,
        /// The window, in days.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        within_days: Option<u32>,
    },
    /// The customer performed events `events` selects at least / at most so many times,
    /// within the last `within_days` days if set. With neither bound: at least once.
    Performed {
        /// Which events.
        #[serde(default)]
        events: EventFilter,
        /// At least this many.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        at_least: Option<u64>,
        /// At most this many.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        at_most: Option<u64>,
        /// The window, in days.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        within_days: Option<u32>,
    },
    /// The customer has at least this many open conversations.
    OpenConversations {
        /// How many.
        at_least: u64,
    },
    /// The customer's latest scored feedback (its score as given) passes a test.
    FeedbackScore {
        /// The test.
        #[serde(flatten)]
        test: Comparison,
    },
    /// The customer may be contacted for `purpose` on `channel` (their consent, or the
    /// default regime).
    Consents {
        /// The purpose.
        purpose: Purpose,
        /// The channel.
        channel: Channel,
    },
}

/// What one customer is, for evaluating rules: read once, tested many times.
#[derive(Clone, Debug)]
pub struct Facts<'a> {
    /// Stored and computed traits, by name (a computed trait hides a stored one of the
    /// same name, even where it has no value).
    pub traits: &'a std::collections::BTreeMap<String, Value>,
    /// Identifiers.
    pub identifiers: &'a [Identifier],
    /// The events: every one, or at least every one inside the windows the rules count
    /// over (evaluation on read leaves older ones in the store when every condition over
    /// events has a window).
    pub events: &'a [Event],
    /// Every interaction.
    pub interactions: &'a [Interaction],
    /// Open conversations.
    pub open_conversations: u64,
    /// Feedback, oldest first.
    pub feedback: &'a [Feedback],
    /// Consent in force at `as_of`.
    pub consent: &'a ConsentState,
    /// The regimes for purposes never decided.
    pub consent_defaults: &'a ConsentDefaults,
    /// The time the rules are evaluated at.
    pub as_of: DateTime<Utc>,
}

/// Whether a customer meets a rule, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// Whether the rule holds.
    pub holds: bool,
    /// The conditions that decided it, in words: those that held for a member, those
    /// that failed otherwise.
    pub reasons: Vec<String>,
}

impl Verdict {
    fn leaf(holds: bool, reason: String) -> Self {
        Self {
            holds,
            reasons: vec![reason],
        }
    }
}

fn window(as_of: DateTime<Utc>, days: Option<u32>) -> impl Fn(DateTime<Utc>) -> bool {
    move |at| at <= as_of && days.is_none_or(|d| at > as_of - Duration::days(i64::from(d)))
}

fn days_text(days: Option<u32>) -> String {
    days.map_or_else(String::new, |d| format!(" in the last {d} days"))
}

impl Rule {
    /// The conditions of the rule, left to right, with every `all`, `any` and `not`
    /// opened: what it reads, whatever it makes of it.
    pub(crate) fn leaves(&self) -> impl Iterator<Item = &Rule> {
        let mut pending = vec![self];
        std::iter::from_fn(move || {
            while let Some(rule) = pending.pop() {
                match rule {
                    Rule::All { rules } | Rule::Any { rules } => pending.extend(rules.iter().rev()),
                    Rule::Not { of } => pending.push(of),
                    leaf => return Some(leaf),
                }
            }
            None
        })
    }

    /// Checks the rule; an error names the path of the bad node (`rule.rules[2].of`).
    pub fn validate(&self) -> Result<(), RuleError> {
        self.validate_at("rule")
    }

    fn validate_at(&self, path: &str) -> Result<(), RuleError> {
        let zero_window = |days: &Option<u32>| {
            if *days == Some(0) {
                Err(RuleError::new(path, "a window of 0 days holds nothing"))
            } else {
                Ok(())
            }
        };
        match self {
            Self::All { rules } | Self::Any { rules } => {
                if rules.is_empty() {
                    return Err(RuleError::new(path, "a group needs at least one rule"));
                }
                for (n, rule) in rules.iter().enumerate() {
                    rule.validate_at("")
                        .map_err(|e| e.within(&format!("{path}.rules[{n}]")))?;
                }
                Ok(())
            }
            Self::Not { of } => of
                .validate_at("")
                .map_err(|e| e.within(&format!("{path}.of"))),
            Self::Trait { name, test } => {
                if name.trim().is_empty() {
                    return Err(RuleError::new(path, "a trait rule needs a name"));
                }
                test.validate(path)
            }
            Self::HasIdentifier { .. } | Self::OpenConversations { .. } | Self::Consents { .. } => {
                Ok(())
            }
            Self::UsedChannel { within_days, .. } => zero_window(within_days),
            Self::Performed {
                events,
                at_least,
                at_most,
                within_days,
            } => {
                if let (Some(least), Some(most)) = (at_least, at_most)
                    && least > most
                {
                    return Err(RuleError::new(
                        path,
                        &format!("at_least {least} is more than at_most {most}"),
                    ));
                }
                zero_window(within_days)?;
                events
                    .validate("")
                    .map_err(|e| e.within(&format!("{path}.events")))
            }
            Self::FeedbackScore { test } => test.validate(path),
        }
    }

    /// Whether `facts` meet the rule, and why.
    pub fn evaluate(&self, facts: &Facts<'_>) -> Verdict {
        match self {
            Self::All { rules } => group(rules, facts, |mut v| v.all(|v| v.holds)),
            Self::Any { rules } => group(rules, facts, |mut v| v.any(|v| v.holds)),
            Self::Not { of } => {
                let inner = of.evaluate(facts);
                Verdict {
                    holds: !inner.holds,
                    reasons: inner
                        .reasons
                        .into_iter()
                        .map(|r| format!("not: {r}"))
                        .collect(),
                }
            }
            leaf => {
                let (holds, reason) = leaf.test(facts, true);
                Verdict::leaf(holds, reason)
            }
        }
    }

    /// Whether `facts` meet the rule: [`evaluate`](Self::evaluate) without the reasons,
    /// which cost more than the test where many customers are looked at and few are kept.
    pub fn holds(&self, facts: &Facts<'_>) -> bool {
        match self {
            Self::All { rules } => rules.iter().all(|r| r.holds(facts)),
            Self::Any { rules } => rules.iter().any(|r| r.holds(facts)),
            Self::Not { of } => !of.holds(facts),
            leaf => leaf.test(facts, false).0,
        }
    }

    /// Whether the leaf `self` holds for `facts`, with the reason in words when `explain`
    /// (an empty one otherwise).
    fn test(&self, facts: &Facts<'_>, explain: bool) -> (bool, String) {
        let said = |holds: bool, reason: &dyn Fn() -> String| {
            (holds, if explain { reason() } else { String::new() })
        };
        match self {
            Self::All { .. } | Self::Any { .. } | Self::Not { .. } => {
                unreachable!("combinators are not leaves")
            }
            Self::Trait { name, test } => {
                let value = facts.traits.get(name);
                said(test.holds(value), &|| {
                    let shown = value.map_or_else(|| "none".to_owned(), Value::to_string);
                    format!("trait {name} is {shown} (wanted {test})")
                })
            }
            Self::HasIdentifier { kind } => {
                let count = facts
                    .identifiers
                    .iter()
                    .filter(|i| i.kind() == kind)
                    .count();
                said(count > 0, &|| format!("{count} {kind} identifier(s)"))
            }
            Self::UsedChannel {
                channel,
                within_days,
            } => {
                let inside = window(facts.as_of, *within_days);
                let seen = facts
                    .events
                    .iter()
                    .filter(|e| e.channel == *channel && inside(e.occurred_at))
                    .count()
                    + facts
                        .interactions
                        .iter()
                        .filter(|i| i.channel == *channel && inside(i.occurred_at))
                        .count();
                said(seen > 0, &|| {
                    format!(
                        "seen {seen} time(s) on {channel}{}",
                        days_text(*within_days)
                    )
                })
            }
            Self::Performed {
                events,
                at_least,
                at_most,
                within_days,
            } => {
                let inside = window(facts.as_of, *within_days);
                let count = facts
                    .events
                    .iter()
                    .filter(|e| inside(e.occurred_at) && events.matches(e))
                    .count() as u64;
                let least = at_least.unwrap_or(if at_most.is_some() { 0 } else { 1 });
                let holds = count >= least && at_most.is_none_or(|most| count <= most);
                said(holds, &|| {
                    let what = if events.names.is_empty() {
                        "any event".to_owned()
                    } else {
                        events.names.join(" or ")
                    };
                    let bounds = match (at_least, at_most) {
                        (Some(l), Some(m)) => format!("between {l} and {m}"),
                        (None, Some(m)) => format!("at most {m}"),
                        _ => format!("at least {least}"),
                    };
                    format!(
                        "performed {what} {count} time(s){} ({bounds})",
                        days_text(*within_days)
                    )
                })
            }
            Self::OpenConversations { at_least } => {
                said(facts.open_conversations >= *at_least, &|| {
                    format!(
                        "{} open conversation(s) (at least {at_least})",
                        facts.open_conversations
                    )
                })
            }
            Self::FeedbackScore { test } => {
                let latest = facts
                    .feedback
                    .iter()
                    .rev()
                    .filter(|f| f.at <= facts.as_of)
                    .find_map(|f| f.score.as_ref().map(|s| s.value));
                let value = latest
                    .and_then(serde_json::Number::from_f64)
                    .map(Value::Number);
                said(test.holds(value.as_ref()), &|| {
                    let shown = value
                        .as_ref()
                        .map_or_else(|| "none".to_owned(), Value::to_string);
                    format!("latest feedback score is {shown} (wanted {test})")
                })
            }
            Self::Consents { purpose, channel } => {
                let decision = facts
                    .consent
                    .decide(purpose, channel, facts.consent_defaults);
                said(decision.allowed, &|| {
                    let word = if decision.allowed { "may" } else { "may not" };
                    format!("{word} be contacted for {purpose} on {channel}")
                })
            }
        }
    }
}

/// Evaluates `rules` and combines them with `combine` (all or any); the reasons are those
/// of the rules that agree with the outcome.
fn group(
    rules: &[Rule],
    facts: &Facts<'_>,
    combine: impl Fn(std::slice::Iter<'_, Verdict>) -> bool,
) -> Verdict {
    let verdicts: Vec<Verdict> = rules.iter().map(|r| r.evaluate(facts)).collect();
    let holds = combine(verdicts.iter());
    Verdict {
        holds,
        reasons: verdicts
            .into_iter()
            .filter(|v| v.holds == holds)
            .flat_map(|v| v.reasons)
            .collect(),
    }
}

/// A named rule: who belongs to a group of customers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    /// Its name.
    pub name: String,
    /// Who they are, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Who belongs.
    pub rule: Rule,
}

impl Segment {
    /// A segment `name` of the customers `rule` holds for.
    pub fn new(name: &str, rule: Rule) -> Self {
        Self {
            name: name.to_owned(),
            description: None,
            rule,
        }
    }

    /// Checks the name and the rule.
    pub fn validate(&self) -> Result<(), RuleError> {
        if self.name.trim().is_empty() {
            return Err(RuleError::new("segment", "a segment needs a name"));
        }
        self.rule.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaves_open_every_combinator_left_to_right() {
        let has = |kind: IdentifierKind| Rule::HasIdentifier { kind };
        let rule = Rule::All {
            rules: vec![
                has(IdentifierKind::Email),
                Rule::Not {
                    of: Box::new(Rule::Any {
                        rules: vec![has(IdentifierKind::Phone), has(IdentifierKind::UserId)],
                    }),
                },
                Rule::Any { rules: vec![] },
                has(IdentifierKind::AnonymousId),
            ],
        };
        let leaves: Vec<&Rule> = rule.leaves().collect();
        assert_eq!(
            leaves,
            [
                &has(IdentifierKind::Email),
                &has(IdentifierKind::Phone),
                &has(IdentifierKind::UserId),
                &has(IdentifierKind::AnonymousId),
            ]
        );
        let single = has(IdentifierKind::Email);
        assert_eq!(single.leaves().collect::<Vec<_>>(), [&single]);
    }

    mod holds {
        use chrono::TimeZone;
        use proptest::prelude::*;
        use serde_json::json;

        use super::*;
        use crate::model::Channel;
        use crate::privacy::ConsentDefaults;

        fn at(day: i64) -> DateTime<Utc> {
            Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + Duration::days(day)
        }

        /// The leaves the trees are built of: each reads something the facts below have,
        /// or lack, in several ways.
        fn leaf() -> impl Strategy<Value = Rule> {
            prop_oneof![
                (0..4usize, 0..6u8).prop_map(|(name, n)| Rule::Trait {
                    name: ["plan", "spent", "missing", "orders"][name].into(),
                    test: match n {
                        0 => Comparison::Exists,
                        1 => Comparison::Missing,
                        2 => Comparison::Equals(json!("pro")),
                        3 => Comparison::AtLeast(50.0),
                        4 => Comparison::Contains("ro".into()),
                        _ => Comparison::In(vec![json!(2), json!("team")]),
                    },
                }),
                prop_oneof![Just(IdentifierKind::Email), Just(IdentifierKind::Phone)]
                    .prop_map(|kind| Rule::HasIdentifier { kind }),
                (any::<bool>(), prop::option::of(1..20u32)).prop_map(|(web, within_days)| {
                    Rule::UsedChannel {
                        channel: if web { Channel::Web } else { Channel::Email },
                        within_days,
                    }
                }),
                (
                    any::<bool>(),
                    prop::option::of(0..4u64),
                    prop::option::of(0..4u64),
                    prop::option::of(1..20u32),
                )
                    .prop_map(|(ordered, at_least, at_most, within_days)| {
                        Rule::Performed {
                            events: EventFilter::named(if ordered {
                                "Order Completed"
                            } else {
                                "Page Viewed"
                            }),
                            at_least,
                            at_most,
                            within_days,
                        }
                    }),
                (0..3u64).prop_map(|at_least| Rule::OpenConversations { at_least }),
            ]
        }

        fn rule() -> impl Strategy<Value = Rule> {
            leaf().prop_recursive(4, 24, 4, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 1..4)
                        .prop_map(|rules| Rule::All { rules }),
                    prop::collection::vec(inner.clone(), 1..4)
                        .prop_map(|rules| Rule::Any { rules }),
                    inner.prop_map(|of| Rule::Not { of: Box::new(of) }),
                ]
            })
        }

        proptest! {
            /// Leaving the reasons out never changes whether a rule holds.
            #[test]
            fn holds_agrees_with_evaluate(rule in rule(), days in prop::collection::vec(0..30i64, 0..6)) {
                let events: Vec<Event> = days
                    .iter()
                    .enumerate()
                    .map(|(n, &day)| {
                        let (channel, name) = if n % 2 == 0 {
                            (Channel::Web, "Order Completed")
                        } else {
                            (Channel::Email, "Page Viewed")
                        };
                        Event::builder("test", channel, name)
                            .message_id(&format!("e{n}"))
                            .occurred_at(at(day))
                            .identifier(IdentifierKind::Email, "ana@example.com")
                            .build()
                            .unwrap()
                    })
                    .collect();
                let traits = [("plan", json!("pro")), ("spent", json!(days.len() as u64 * 20))]
                    .into_iter()
                    .take(days.len().min(2))
                    .map(|(name, value)| (name.to_owned(), value))
                    .collect();
                let identifiers = vec![Identifier::new(IdentifierKind::Email, "ana@example.com").unwrap()];
                let consent = ConsentState::default();
                let defaults = ConsentDefaults::default();
                let facts = Facts {
                    traits: &traits,
                    identifiers: &identifiers,
                    events: &events,
                    interactions: &[],
                    open_conversations: days.len() as u64 % 3,
                    feedback: &[],
                    consent: &consent,
                    consent_defaults: &defaults,
                    as_of: at(15),
                };
                prop_assert_eq!(rule.holds(&facts), rule.evaluate(&facts).holds);
            }
        }
    }
}
