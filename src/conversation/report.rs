//! The accountability report: how well the company answered, over a time range, per
//! owner, team, channel or group of customers.
//!
//! [`Customers::service_report`](crate::Customers::service_report) walks the store one
//! customer at a time, on one worker thread per core (each takes the next page of
//! customers when done), so memory grows with the conversations of the customers in hand
//! and the durations kept for the groups, not with the events stored: feedback is
//! counted as it is met. A conversation belongs to the range when it was opened, closed
//! or still open in it; its figures go to the group of
//! the owner who answers for it ([`Responsible`]), of that owner's team, of the channel
//! it began on, or of the customer's value of a trait ([`GroupBy`]).
//!
//! Feedback counts as answered once the company reached the customer after it: in its
//! thread when it has one, otherwise in any conversation. It goes to the group of its
//! thread's conversation, else of the owner its record names, else of the customer's
//! account owner, else `unowned`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::sla::{self, Metric, SlaPolicy, Standing, Traits};
use super::{Conversation, Responsible};
use crate::model::{Channel, Csat, Nps};
use crate::model::{Direction, Feedback, FeedbackKind, Interaction, csat, nps};

/// The group of what nobody answers for.
const UNOWNED: &str = "unowned";

/// How the report groups conversations.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    /// By who answers for them: an owner (an agent or a team), the account owner, or
    /// `unowned`.
    Owner,
    /// By the team of who answers for them, as [`ReportOptions::teams`] lists it; an
    /// owner it does not list is a team of their own, and `unowned` stays `unowned`.
    Team,
    /// By the channel they began on.
    Channel,
    /// By the customer's value of the trait this names (a plan, a region, a value tier):
    /// a text value as it is, any other as JSON text, and `none` for customers without it.
    Trait(String),
}

/// What to report on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReportOptions {
    /// The start of the range (inclusive).
    pub from: DateTime<Utc>,
    /// The end of the range (exclusive); running clocks are read here.
    pub to: DateTime<Utc>,
    /// The targets to measure attainment against.
    pub policy: SlaPolicy,
    /// How to group the figures.
    pub group_by: GroupBy,
    /// The team of each owner, for [`GroupBy::Team`]: owner name to team name.
    #[serde(default)]
    pub teams: BTreeMap<String, String>,
}

impl ReportOptions {
    /// A report of `[from, to)` against `policy`, per owner.
    pub fn new(from: DateTime<Utc>, to: DateTime<Utc>, policy: SlaPolicy) -> Self {
        Self {
            from,
            to,
            policy,
            group_by: GroupBy::Owner,
            teams: BTreeMap::new(),
        }
    }

    /// Groups the figures by `group_by`.
    pub fn grouped_by(mut self, group_by: GroupBy) -> Self {
        self.group_by = group_by;
        self
    }

    /// Says which team `owner` belongs to, for [`GroupBy::Team`].
    pub fn with_team(mut self, owner: &str, team: &str) -> Self {
        self.teams.insert(owner.to_owned(), team.to_owned());
        self
    }
}

/// The middle and the 90th percentile of a set of durations, in seconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Timing {
    /// How many durations.
    pub count: u64,
    /// The median (nearest rank); `None` without durations.
    pub p50_s: Option<i64>,
    /// The 90th percentile (nearest rank).
    pub p90_s: Option<i64>,
}

impl Timing {
    fn of(mut seconds: Vec<i64>) -> Self {
        seconds.sort_unstable();
        let rank = |p: f64| {
            (!seconds.is_empty()).then(|| {
                let index = ((p * seconds.len() as f64).ceil() as usize).max(1) - 1;
                seconds[index.min(seconds.len() - 1)]
            })
        };
        Self {
            count: seconds.len() as u64,
            p50_s: rank(0.5),
            p90_s: rank(0.9),
        }
    }
}

/// How many measured targets of one metric were met, breached or still running.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attainment {
    /// Stopped in time.
    pub met: u64,
    /// Stopped late, or running past due at the end of the range.
    pub breached: u64,
    /// Running and not yet due at the end of the range.
    pub running: u64,
}

/// The figures of one group (or of everything).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    /// Conversations begun in the range.
    pub opened: u64,
    /// Conversations closed in the range.
    pub closed: u64,
    /// Conversations still open at the end of the range.
    pub backlog: u64,
    /// First-reply times of first replies in the range, on the wall clock.
    pub first_reply: Timing,
    /// The same, counted on the policy's clock (business hours, pauses).
    pub first_reply_counted: Timing,
    /// Resolution times of conversations closed in the range, on the wall clock.
    pub resolution: Timing,
    /// The same, counted on the policy's clock.
    pub resolution_counted: Timing,
    /// How long inbound calls answered in the range rang before a person picked them up,
    /// on the wall clock.
    pub call_answer: Timing,
    /// Attainment of each metric's targets, for clocks that started in the range.
    pub attainment: BTreeMap<Metric, Attainment>,
    /// Feedback given in the range.
    pub feedback: u64,
    /// Feedback given in the range that nobody had answered by its end.
    pub unanswered_feedback: u64,
    /// The NPS answers among that feedback.
    pub nps: Nps,
    /// The CSAT answers among that feedback.
    pub csat: Csat,
    /// Public complaints given in the range.
    pub public_complaints: u64,
    /// How fast they were answered, on the wall clock (answered ones only).
    pub public_complaint_reply: Timing,
}

/// The report; see the [module docs](self).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The start of the range.
    pub from: DateTime<Utc>,
    /// The end of the range.
    pub to: DateTime<Utc>,
    /// Everything together.
    pub total: Figures,
    /// Per group, by name.
    pub groups: BTreeMap<String, Figures>,
}

/// Figures being gathered: durations are kept until the end, counts added up.
#[derive(Default)]
struct Tally {
    opened: u64,
    closed: u64,
    backlog: u64,
    first_reply: Vec<i64>,
    first_reply_counted: Vec<i64>,
    resolution: Vec<i64>,
    resolution_counted: Vec<i64>,
    call_answer: Vec<i64>,
    attainment: BTreeMap<Metric, Attainment>,
    feedback: u64,
    nps: Nps,
    csat: Csat,
    unanswered_feedback: u64,
    public_complaints: u64,
    public_complaint_reply: Vec<i64>,
}

impl Tally {
    fn absorb(&mut self, other: Tally) {
        self.opened += other.opened;
        self.closed += other.closed;
        self.backlog += other.backlog;
        self.first_reply.extend(other.first_reply);
        self.first_reply_counted.extend(other.first_reply_counted);
        self.resolution.extend(other.resolution);
        self.resolution_counted.extend(other.resolution_counted);
        self.call_answer.extend(other.call_answer);
        for (metric, theirs) in other.attainment {
            let mine = self.attainment.entry(metric).or_default();
            mine.met += theirs.met;
            mine.breached += theirs.breached;
            mine.running += theirs.running;
        }
        self.feedback += other.feedback;
        self.nps = self.nps.and(other.nps);
        self.csat = self.csat.and(other.csat);
        self.unanswered_feedback += other.unanswered_feedback;
        self.public_complaints += other.public_complaints;
        self.public_complaint_reply
            .extend(other.public_complaint_reply);
    }

    fn finish(self) -> Figures {
        Figures {
            opened: self.opened,
            closed: self.closed,
            backlog: self.backlog,
            first_reply: Timing::of(self.first_reply),
            first_reply_counted: Timing::of(self.first_reply_counted),
            resolution: Timing::of(self.resolution),
            resolution_counted: Timing::of(self.resolution_counted),
            call_answer: Timing::of(self.call_answer),
            attainment: self.attainment,
            feedback: self.feedback,
            unanswered_feedback: self.unanswered_feedback,
            nps: self.nps,
            csat: self.csat,
            public_complaints: self.public_complaints,
            public_complaint_reply: Timing::of(self.public_complaint_reply),
        }
    }
}

/// Gathers the report customer by customer.
pub(crate) struct Builder {
    options: ReportOptions,
    calendar: sla::Calendar,
    total: Tally,
    groups: BTreeMap<String, Tally>,
}

impl Builder {
    pub(crate) fn new(options: ReportOptions) -> Self {
        Self {
            calendar: sla::Calendar::new(&options.policy),
            options,
            total: Tally::default(),
            groups: BTreeMap::new(),
        }
    }

    /// The group of whatever `owner` answers for (`None`: nobody), of a customer with
    /// `traits`, that began on `channel`.
    fn group(&self, owner: Option<&str>, channel: Option<&Channel>, traits: &Traits) -> String {
        match &self.options.group_by {
            GroupBy::Owner => owner.unwrap_or(UNOWNED).to_owned(),
            GroupBy::Team => owner
                .map(|owner| self.options.teams.get(owner).map_or(owner, String::as_str))
                .unwrap_or(UNOWNED)
                .to_owned(),
            GroupBy::Channel => channel.map_or_else(String::new, |c| c.name().to_owned()),
            GroupBy::Trait(name) => match traits.get(name).map(|t| &t.value) {
                Some(serde_json::Value::String(text)) => text.clone(),
                Some(other) => other.to_string(),
                None => "none".to_owned(),
            },
        }
    }

    fn group_of(&self, conversation: &Conversation, traits: &Traits) -> String {
        let owner = match &conversation.summary.responsible {
            Responsible::Owner(name) | Responsible::AccountOwner(name) => Some(name.as_str()),
            Responsible::Unowned => None,
        };
        self.group(owner, conversation.summary.channels.first(), traits)
    }

    /// Adds one customer: their conversations, the feedback they gave and their traits
    /// (which name their account owner, and their group by trait).
    pub(crate) fn add(
        &mut self,
        conversations: &[Conversation],
        feedback: Vec<Feedback>,
        traits: &Traits,
    ) {
        let account_owner = super::account_owner(traits);
        let account_owner = account_owner.as_deref();
        let (from, to) = (self.options.from, self.options.to);
        let within = |at: DateTime<Utc>| from <= at && at < to;
        for conversation in conversations {
            let summary = &conversation.summary;
            let opened = within(summary.first_contact);
            let closed = summary.closed_at.is_some_and(within);
            let backlog = summary.first_contact < to && summary.closed_at.is_none_or(|c| c >= to);
            if !(opened || closed || backlog) {
                continue;
            }
            let measures = sla::measure_valid(
                &self.options.policy,
                &self.calendar,
                conversation,
                traits,
                to,
            );
            let group = self.group_of(conversation, traits);
            for tally in [&mut self.total, self.groups.entry(group).or_default()] {
                tally.opened += u64::from(opened);
                tally.closed += u64::from(closed);
                tally.backlog += u64::from(backlog);
                if let Some(first) = summary.responses.first()
                    && let Some(answered) = first.answered_at
                    && within(answered)
                {
                    tally
                        .first_reply
                        .push((answered - first.asked_at).num_seconds());
                }
                for call in &conversation.interactions {
                    if sla::is_inbound_call(call)
                        && let Some(answered) = call.answered_at.filter(|at| within(*at))
                    {
                        tally
                            .call_answer
                            .push((answered - call.occurred_at).num_seconds());
                    }
                }
                if closed && let Some(closed_at) = summary.closed_at {
                    tally
                        .resolution
                        .push((closed_at - summary.first_contact).num_seconds());
                }
                for measure in &measures {
                    match measure.metric {
                        Metric::FirstReply if measure.stopped_at.is_some_and(within) => {
                            tally.first_reply_counted.push(measure.counted_seconds);
                        }
                        Metric::Resolution if measure.stopped_at.is_some_and(within) => {
                            tally.resolution_counted.push(measure.counted_seconds);
                        }
                        _ => {}
                    }
                    if within(measure.started_at) {
                        let attainment = tally.attainment.entry(measure.metric).or_default();
                        match measure.standing {
                            Standing::Met => attainment.met += 1,
                            Standing::Breached => attainment.breached += 1,
                            Standing::Running => attainment.running += 1,
                        }
                    }
                }
            }
        }
        for item in feedback.into_iter().filter(|f| within(f.at)) {
            let answer = answered_at(&item, conversations, to);
            let thread = item.thread.as_ref().and_then(|thread| {
                conversations
                    .iter()
                    .find(|c| c.summary.key.is_thread(thread))
            });
            let group = match (&self.options.group_by, thread) {
                (GroupBy::Owner | GroupBy::Team, Some(conversation)) => {
                    self.group_of(conversation, traits)
                }
                _ => self.group(
                    item.owner.as_deref().or(account_owner),
                    Some(&item.channel),
                    traits,
                ),
            };
            let public_complaint = item.public && item.kind == Some(FeedbackKind::Complaint);
            let (said_nps, said_csat) = (nps([&item]), csat([&item]));
            for tally in [
                &mut self.total,
                self.groups.entry(group.clone()).or_default(),
            ] {
                tally.unanswered_feedback += u64::from(answer.is_none());
                if public_complaint {
                    tally.public_complaints += 1;
                    if let Some(answered) = answer {
                        tally
                            .public_complaint_reply
                            .push((answered - item.at).num_seconds());
                    }
                }
                tally.feedback += 1;
                tally.nps = tally.nps.and(said_nps);
                tally.csat = tally.csat.and(said_csat);
            }
        }
    }

    /// The figures of `self` and `other` together, as if one builder had seen both
    /// sets of customers.
    pub(crate) fn merge(mut self, other: Self) -> Self {
        self.total.absorb(other.total);
        for (name, tally) in other.groups {
            self.groups.entry(name).or_default().absorb(tally);
        }
        self
    }

    pub(crate) fn finish(self) -> Report {
        Report {
            from: self.options.from,
            to: self.options.to,
            total: self.total.finish(),
            groups: self
                .groups
                .into_iter()
                .map(|(name, tally)| (name, tally.finish()))
                .collect(),
        }
    }
}

/// When the company first reached the customer after `feedback`, before `until`: in its
/// thread if it has one, else in any conversation.
pub(crate) fn answered_at(
    feedback: &Feedback,
    conversations: &[Conversation],
    until: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let answers = |interaction: &&Interaction| {
        interaction.direction == Direction::Outbound
            && interaction.occurred_at > feedback.at
            && interaction.occurred_at < until
    };
    conversations
        .iter()
        .filter(|c| match &feedback.thread {
            Some(thread) => c.summary.key.is_thread(thread),
            None => true,
        })
        .flat_map(|c| c.interactions.iter().filter(answers))
        .map(|i| i.occurred_at)
        .min()
}
