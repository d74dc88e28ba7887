//! Service levels: targets for the first reply, each next reply and the resolution of a
//! conversation, measured in wall-clock time or in business hours, optionally paused
//! while the conversation waits on the customer.
//!
//! A [`SlaPolicy`] holds the targets; [`measure`] gives, for one
//! [`Conversation`], each target's start, due time, stop, whether it was met or breached
//! and by how much. Everything is computed from the interactions' own times, so a late
//! record moves the figures exactly as if it had come in time.
//!
//! - **First reply** runs from the customer's first message to the company's first
//!   contact after it; **next reply** from each later message nobody had answered to the
//!   contact that answered it ([`ConversationSummary::responses`]).
//! - **Resolution** runs from the first contact to the close.
//! - **Call answer** runs, for each inbound call, from when it rang (its `occurred_at`)
//!   to when a person picked it up ([`Interaction::answered_at`](crate::Interaction::answered_at)); a call nobody
//!   answered keeps running, and so breaches once due.
//! - A target can be limited to the channel a conversation began on, to its priority,
//!   and to a group of customers named by one of their traits ([`TraitIs`]: a plan, a
//!   region, a value tier), so a valuable customer can be promised a faster answer. When
//!   several targets of one metric apply, the most specific wins.
//! - **Business hours** count only the opening hours of a weekly schedule, in an IANA
//!   time zone, so a change to or from daylight saving time moves them as it moves the
//!   office's clocks. Wall-clock time is the plain time between two instants.
//! - **Pause while pending**: time while the conversation is pending (its latest
//!   interaction so far has status `pending`) does not count.
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use oneview::conversation::sla::{self, Metric, SlaPolicy, Standing, Target};
//! use oneview::conversation::group;
//! use oneview::{Channel, CustomerId, Direction, Interaction};
//!
//! let at = |h, m| Utc.with_ymd_and_hms(2026, 3, 2, h, m, 0).unwrap();
//! let asked = Interaction::builder("desk", Channel::Email, Direction::Inbound)
//!     .key("q").thread("t").occurred_at(at(9, 0)).build()?;
//! let answered = Interaction::builder("desk", Channel::Email, Direction::Outbound)
//!     .key("a").thread("t").occurred_at(at(9, 45)).build()?;
//! let conversation = group(CustomerId::new(), vec![asked, answered], None).remove(0);
//!
//! let policy = SlaPolicy::new(vec![Target::new(Metric::FirstReply, 3600)]);
//! policy.validate()?;
//! let measures = sla::measure(&policy, &conversation, at(12, 0))?;
//! assert_eq!(measures[0].standing, Standing::Met);
//! assert_eq!(measures[0].margin_seconds, 15 * 60);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::cell::RefCell;
use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::{Conversation, ConversationSummary};
use crate::model::{
    Channel, Direction, Interaction, InteractionKind, InteractionStatus, ResolvedTrait,
};

/// What a target measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// From the customer's first message to the company's first reply.
    FirstReply,
    /// From each later unanswered message of the customer to the reply to it.
    NextReply,
    /// From the first contact to the close.
    Resolution,
    /// From an inbound call's start to when it was picked up.
    CallAnswer,
}

/// A condition on one of the customer's traits: the trait `name` holds exactly `value`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraitIs {
    /// The trait's name.
    pub name: String,
    /// The value it must hold.
    pub value: serde_json::Value,
}

/// One service-level target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    /// What it measures.
    pub metric: Metric,
    /// How many seconds (of business hours, when the policy has them) it allows.
    pub within_seconds: i64,
    /// Only for conversations that began on this channel.
    #[serde(default)]
    pub channel: Option<Channel>,
    /// Only for conversations of this priority (the `priority` property of their first
    /// interaction that states one).
    #[serde(default)]
    pub priority: Option<String>,
    /// Only for customers whose trait holds this value.
    #[serde(default)]
    pub customer_trait: Option<TraitIs>,
}

impl Target {
    /// A target for every conversation.
    pub fn new(metric: Metric, within_seconds: i64) -> Self {
        Self {
            metric,
            within_seconds,
            channel: None,
            priority: None,
            customer_trait: None,
        }
    }

    /// Only for conversations that began on `channel`.
    pub fn on_channel(mut self, channel: Channel) -> Self {
        self.channel = Some(channel);
        self
    }

    /// Only for conversations of `priority`.
    pub fn with_priority(mut self, priority: &str) -> Self {
        self.priority = Some(priority.to_owned());
        self
    }

    /// Only for customers whose trait `name` holds `value`.
    ///
    /// ```
    /// use oneview::conversation::sla::{Metric, SlaPolicy, Target};
    /// use serde_json::json;
    ///
    /// let policy = SlaPolicy::new(vec![
    ///     Target::new(Metric::FirstReply, 8 * 3600),
    ///     Target::new(Metric::FirstReply, 3600).for_customers("tier", json!("gold")),
    /// ]);
    /// policy.validate()?;
    /// # Ok::<(), oneview::conversation::sla::SlaError>(())
    /// ```
    pub fn for_customers(mut self, name: &str, value: serde_json::Value) -> Self {
        self.customer_trait = Some(TraitIs {
            name: name.to_owned(),
            value,
        });
        self
    }

    fn conditions(&self) -> usize {
        usize::from(self.channel.is_some())
            + usize::from(self.priority.is_some())
            + usize::from(self.customer_trait.is_some())
    }
}

/// Opening hours on one day of the week, in the policy's time zone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Opening {
    /// The day.
    pub day: Weekday,
    /// When it opens.
    pub from: NaiveTime,
    /// When it closes (later than `from` on the same day).
    pub to: NaiveTime,
}

/// A weekly schedule of opening hours in one time zone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BusinessHours {
    /// An IANA time zone name, such as `Europe/Berlin`.
    pub time_zone: String,
    /// The opening hours; a day may have several, which must not overlap.
    pub week: Vec<Opening>,
}

impl BusinessHours {
    /// The same hours from Monday to Friday in `time_zone`.
    pub fn weekdays(time_zone: &str, from: NaiveTime, to: NaiveTime) -> Self {
        Self {
            time_zone: time_zone.to_owned(),
            week: [
                Weekday::Mon,
                Weekday::Tue,
                Weekday::Wed,
                Weekday::Thu,
                Weekday::Fri,
            ]
            .into_iter()
            .map(|day| Opening { day, from, to })
            .collect(),
        }
    }
}

/// Targets, and the clock they are measured on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlaPolicy {
    /// The targets. Where several of one metric apply to a conversation, the one with
    /// the most conditions wins, and among those the first.
    pub targets: Vec<Target>,
    /// Count only these hours; wall-clock time when absent.
    #[serde(default)]
    pub business_hours: Option<BusinessHours>,
    /// Stop the clock while the conversation is pending (waiting on the customer).
    #[serde(default)]
    pub pause_while_pending: bool,
}

impl SlaPolicy {
    /// A policy of `targets` on the wall clock, never paused.
    pub fn new(targets: Vec<Target>) -> Self {
        Self {
            targets,
            business_hours: None,
            pause_while_pending: false,
        }
    }

    /// Counts only `hours`.
    pub fn in_business_hours(mut self, hours: BusinessHours) -> Self {
        self.business_hours = Some(hours);
        self
    }

    /// Stops the clock while a conversation is pending.
    pub fn paused_while_pending(mut self) -> Self {
        self.pause_while_pending = true;
        self
    }

    /// Checks the policy: positive targets, a known time zone, opening hours that open
    /// before they close and do not overlap.
    pub fn validate(&self) -> Result<(), SlaError> {
        for (i, target) in self.targets.iter().enumerate() {
            if target.within_seconds <= 0 {
                return Err(SlaError::NotPositive {
                    field: format!("targets[{i}].within_seconds"),
                    value: target.within_seconds,
                });
            }
            if let Some(condition) = &target.customer_trait
                && condition.name.trim().is_empty()
            {
                return Err(SlaError::EmptyTraitName {
                    field: format!("targets[{i}].customer_trait.name"),
                });
            }
        }
        let Some(hours) = &self.business_hours else {
            return Ok(());
        };
        hours
            .time_zone
            .parse::<Tz>()
            .map_err(|_| SlaError::UnknownTimeZone {
                field: "business_hours.time_zone".into(),
                value: hours.time_zone.clone(),
            })?;
        if hours.week.is_empty() {
            return Err(SlaError::NeverOpen);
        }
        for (i, opening) in hours.week.iter().enumerate() {
            if opening.from >= opening.to {
                return Err(SlaError::EmptyOpening {
                    field: format!("business_hours.week[{i}]"),
                });
            }
            for (j, other) in hours.week.iter().enumerate().take(i) {
                if other.day == opening.day && other.from < opening.to && opening.from < other.to {
                    return Err(SlaError::Overlap {
                        field: format!("business_hours.week[{i}]"),
                        with: format!("business_hours.week[{j}]"),
                    });
                }
            }
        }
        Ok(())
    }

    /// The target of `metric` for `conversation` of a customer with `traits`, if any
    /// applies.
    fn target(
        &self,
        metric: Metric,
        conversation: &Conversation,
        traits: &Traits,
    ) -> Option<&Target> {
        let first_channel = conversation.summary.channels.first();
        let priority = priority(conversation);
        self.targets
            .iter()
            .filter(|t| t.metric == metric)
            .filter(|t| t.channel.is_none() || t.channel.as_ref() == first_channel)
            .filter(|t| t.priority.is_none() || t.priority.as_deref() == priority)
            .filter(|t| {
                t.customer_trait.as_ref().is_none_or(|condition| {
                    traits
                        .get(&condition.name)
                        .is_some_and(|held| held.value == condition.value)
                })
            })
            .fold(None, |best: Option<&Target>, t| match best {
                Some(b) if b.conditions() >= t.conditions() => Some(b),
                _ => Some(t),
            })
    }
}

/// The `priority` property of the first interaction of `conversation` that states one.
fn priority(conversation: &Conversation) -> Option<&str> {
    conversation
        .interactions
        .iter()
        .find_map(|i| i.properties.get("priority").and_then(|p| p.as_str()))
}

/// Why a policy is unusable.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SlaError {
    /// A target of zero or negative time.
    #[error("{field} is {value}; a target must be more than 0 seconds")]
    NotPositive {
        /// The field.
        field: String,
        /// Its value.
        value: i64,
    },
    /// A time zone no IANA name matches.
    #[error("{field} is {value:?}, not an IANA time zone")]
    UnknownTimeZone {
        /// The field.
        field: String,
        /// Its value.
        value: String,
    },
    /// Opening hours that close before (or when) they open.
    #[error("{field} closes before it opens")]
    EmptyOpening {
        /// The field.
        field: String,
    },
    /// Two openings on one day that overlap.
    #[error("{field} overlaps {with}")]
    Overlap {
        /// The later of the two.
        field: String,
        /// The earlier.
        with: String,
    },
    /// Business hours with no opening at all: no target could ever come due.
    #[error("business_hours.week is empty")]
    NeverOpen,
    /// A customer condition that names no trait.
    #[error("{field} is empty")]
    EmptyTraitName {
        /// The field.
        field: String,
    },
}

/// Where a measured target stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Standing {
    /// Stopped in time.
    Met,
    /// Stopped late, or still running past its due time.
    Breached,
    /// Still running, and not yet due.
    Running,
}

/// One target measured on one conversation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Measure {
    /// What was measured.
    pub metric: Metric,
    /// When the clock started.
    pub started_at: DateTime<Utc>,
    /// When the target falls due, given the hours and pauses known.
    pub due_at: DateTime<Utc>,
    /// When the clock stopped (the reply, the close); `None` while it runs.
    pub stopped_at: Option<DateTime<Utc>>,
    /// The target, in seconds.
    pub target_seconds: i64,
    /// The time counted, in seconds, up to the stop or to the time asked about.
    pub counted_seconds: i64,
    /// The time counted without business hours or pauses, in seconds.
    pub wall_clock_seconds: i64,
    /// Met, breached or running.
    pub standing: Standing,
    /// The target minus the time counted: time to spare when positive, the breach when
    /// negative.
    pub margin_seconds: i64,
}

/// A customer's resolved traits, as the [unified view](crate::Profile::traits) holds them.
pub type Traits = BTreeMap<String, ResolvedTrait>;

/// Each target of `policy` that applies to `conversation`, measured as of `as_of` (the
/// time running clocks are read at): first reply, each next reply, resolution, and the
/// answer of each inbound call. Targets limited to customers with a trait do not apply;
/// [`measure_for`] takes the customer's traits.
pub fn measure(
    policy: &SlaPolicy,
    conversation: &Conversation,
    as_of: DateTime<Utc>,
) -> Result<Vec<Measure>, SlaError> {
    measure_for(policy, conversation, &Traits::new(), as_of)
}

/// [`measure`] for a customer with `traits`, so targets limited to customers with a
/// trait apply where it matches.
/// [`Customers::service_levels`](crate::Customers::service_levels) reads the traits for
/// you.
pub fn measure_for(
    policy: &SlaPolicy,
    conversation: &Conversation,
    traits: &Traits,
    as_of: DateTime<Utc>,
) -> Result<Vec<Measure>, SlaError> {
    policy.validate()?;
    Ok(measure_valid(
        policy,
        &Calendar::new(policy),
        conversation,
        traits,
        as_of,
    ))
}

/// [`measure_for`] with a policy known to be valid, and its `calendar`.
pub(crate) fn measure_valid(
    policy: &SlaPolicy,
    calendar: &Calendar,
    conversation: &Conversation,
    traits: &Traits,
    as_of: DateTime<Utc>,
) -> Vec<Measure> {
    let clock = Clock::new(policy, calendar, conversation, as_of);
    let summary: &ConversationSummary = &conversation.summary;
    let mut measures = Vec::new();
    for (n, response) in summary.responses.iter().enumerate() {
        let metric = if n == 0 {
            Metric::FirstReply
        } else {
            Metric::NextReply
        };
        if let Some(target) = policy.target(metric, conversation, traits) {
            measures.push(clock.measure(metric, target, response.asked_at, response.answered_at));
        }
    }
    if let Some(target) = policy.target(Metric::Resolution, conversation, traits) {
        measures.push(clock.measure(
            Metric::Resolution,
            target,
            summary.first_contact,
            summary.closed_at,
        ));
    }
    if let Some(target) = policy.target(Metric::CallAnswer, conversation, traits) {
        for call in conversation
            .interactions
            .iter()
            .filter(|i| is_inbound_call(i))
        {
            measures.push(clock.measure(
                Metric::CallAnswer,
                target,
                call.occurred_at,
                call.answered_at,
            ));
        }
    }
    measures
}

/// A half-open interval of time.
type Span = (DateTime<Utc>, DateTime<Utc>);

/// The opening hours of a policy as instants, worked out once per local date and kept:
/// a report measures many conversations over the same days, and turning local times into
/// instants across time-zone changes is the costly part.
#[derive(Debug)]
pub(crate) struct Calendar {
    hours: Option<(Tz, Vec<Opening>)>,
    /// The dates worked out so far, one unbroken run of them.
    days: RefCell<Option<Days>>,
}

/// The opening spans of the local dates from `first`, in time order.
#[derive(Debug)]
struct Days {
    first: NaiveDate,
    /// Where the spans of date `first + i` begin in `spans`, and one more entry where the
    /// last date's spans end.
    starts: Vec<usize>,
    spans: Vec<Span>,
}

/// The fewest dates a calendar works out at a time, so that measuring conversation after
/// conversation extends it rarely.
const DAYS_AT_A_TIME: i64 = 64;

impl Days {
    /// The dates `[first, end)` of the week's `openings` in `zone`.
    fn work_out(zone: &Tz, openings: &[Opening], first: NaiveDate, end: NaiveDate) -> Self {
        let mut days = Self {
            first,
            starts: vec![0],
            spans: Vec::new(),
        };
        let mut date = first;
        while date < end {
            days.spans.extend(
                openings
                    .iter()
                    .filter(|o| o.day == date.weekday())
                    .map(|opening| {
                        (
                            local(zone, date, opening.from),
                            local(zone, date, opening.to),
                        )
                    })
                    .filter(|(start, end)| start < end),
            );
            days.starts.push(days.spans.len());
            date += Duration::days(1);
        }
        days
    }

    /// The first date not worked out.
    fn end(&self) -> NaiveDate {
        self.first + Duration::days(self.starts.len() as i64 - 1)
    }

    /// Appends `later`, which begins where these dates end.
    fn append(&mut self, later: Days) {
        debug_assert_eq!(later.first, self.end());
        let base = self.spans.len();
        self.starts.pop();
        self.starts
            .extend(later.starts.iter().map(|start| start + base));
        self.spans.extend(later.spans);
    }

    /// The spans of the dates `[first, end)`, which must be worked out.
    fn between(&self, first: NaiveDate, end: NaiveDate) -> &[Span] {
        let index = |date: NaiveDate| self.starts[(date - self.first).num_days() as usize];
        &self.spans[index(first)..index(end)]
    }
}

impl Calendar {
    /// The calendar of a valid `policy`.
    pub(crate) fn new(policy: &SlaPolicy) -> Self {
        let hours = policy.business_hours.as_ref().map(|h| {
            let mut week = h.week.clone();
            week.sort_by_key(|o| (o.day.num_days_from_monday(), o.from));
            (h.time_zone.parse::<Tz>().expect("validated"), week)
        });
        Self {
            hours,
            days: RefCell::new(None),
        }
    }

    /// Hands `read` the times that count, in time order, within the local days around
    /// `[from, from + days)`: all of it without business hours.
    fn with_open<T>(&self, from: DateTime<Utc>, days: i64, read: impl FnOnce(&[Span]) -> T) -> T {
        let Some((zone, week)) = &self.hours else {
            return read(&[(from, from + Duration::days(days))]);
        };
        let first = from.with_timezone(zone).date_naive() - Duration::days(1);
        let end = first + Duration::days(days + 2);
        let mut cached = self.days.borrow_mut();
        let known = match cached.take() {
            None => Days::work_out(
                zone,
                week,
                first,
                end.max(first + Duration::days(DAYS_AT_A_TIME)),
            ),
            Some(mut known) => {
                // Extended by at least as many dates as it holds, so a calendar is extended
                // a few times in all, however conversations come.
                let step = Duration::days((known.starts.len() as i64).max(DAYS_AT_A_TIME));
                if first < known.first {
                    let mut earlier =
                        Days::work_out(zone, week, first.min(known.first - step), known.first);
                    earlier.append(known);
                    known = earlier;
                }
                if end > known.end() {
                    let from = known.end();
                    known.append(Days::work_out(zone, week, from, end.max(from + step)));
                }
                known
            }
        };
        let answer = read(known.between(first, end));
        *cached = Some(known);
        answer
    }
}

/// Whether `interaction` is a call the customer made: what the call-answer clock times.
pub(crate) fn is_inbound_call(interaction: &Interaction) -> bool {
    interaction.kind == InteractionKind::Call && interaction.direction == Direction::Inbound
}

/// Counts time for one conversation: business hours and pauses.
struct Clock<'a> {
    calendar: &'a Calendar,
    /// Half-open intervals while the conversation was pending, in time order.
    pauses: Vec<(DateTime<Utc>, DateTime<Utc>)>,
    as_of: DateTime<Utc>,
}

/// How far ahead a due time is searched for: long enough for any target, bounded so
/// that odd hours cannot loop for ever.
const HORIZON_DAYS: i64 = 3_660;

impl<'a> Clock<'a> {
    fn new(
        policy: &SlaPolicy,
        calendar: &'a Calendar,
        conversation: &Conversation,
        as_of: DateTime<Utc>,
    ) -> Self {
        let mut pauses = Vec::new();
        if policy.pause_while_pending {
            let items = &conversation.interactions;
            for (i, interaction) in items.iter().enumerate() {
                if interaction.status == InteractionStatus::Pending {
                    let until = items
                        .get(i + 1)
                        .map_or(DateTime::<Utc>::MAX_UTC, |next| next.occurred_at);
                    if interaction.occurred_at < until {
                        pauses.push((interaction.occurred_at, until));
                    }
                }
            }
        }
        Self {
            calendar,
            pauses,
            as_of,
        }
    }

    fn measure(
        &self,
        metric: Metric,
        target: &Target,
        started_at: DateTime<Utc>,
        stopped_at: Option<DateTime<Utc>>,
    ) -> Measure {
        let end = stopped_at.unwrap_or(self.as_of).max(started_at);
        let counted = self.counted(started_at, end);
        let due_at = self.advance(started_at, target.within_seconds);
        let standing = match stopped_at {
            Some(stopped) if stopped <= due_at => Standing::Met,
            Some(_) => Standing::Breached,
            None if self.as_of > due_at => Standing::Breached,
            None => Standing::Running,
        };
        Measure {
            metric,
            started_at,
            due_at,
            stopped_at,
            target_seconds: target.within_seconds,
            counted_seconds: counted,
            wall_clock_seconds: (end - started_at).num_seconds(),
            standing,
            margin_seconds: target.within_seconds - counted,
        }
    }

    /// Seconds that count between `from` and `to`.
    fn counted(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
        let days = (to - from).num_days() + 1;
        self.calendar.with_open(from, days, |open| {
            let mut total = 0;
            each_counting(open, &self.pauses, |start, end| {
                total += (end.min(to) - start.max(from)).num_seconds().max(0);
                true
            });
            total
        })
    }

    /// The instant at which `seconds` of counting time have passed since `from`.
    fn advance(&self, from: DateTime<Utc>, seconds: i64) -> DateTime<Utc> {
        let mut left = seconds;
        let mut window = 0;
        let mut days = 7;
        while window < HORIZON_DAYS {
            let start = from + Duration::days(window);
            let stop = start + Duration::days(days);
            let mut due = None;
            self.calendar.with_open(start, days, |open| {
                each_counting(open, &self.pauses, |a, b| {
                    let (a, b) = (a.max(start), b.min(stop));
                    if b > a {
                        let span = (b - a).num_seconds();
                        if span >= left {
                            due = Some(a + Duration::seconds(left));
                            return false;
                        }
                        left -= span;
                    }
                    true
                });
            });
            if let Some(due) = due {
                return due;
            }
            window += days;
            days = (days * 2).min(HORIZON_DAYS - window).max(1);
        }
        DateTime::<Utc>::MAX_UTC
    }
}

/// The instant a local date and time names in `zone`. A time skipped by a change to
/// daylight saving time is taken as the first instant after the gap; a repeated one as
/// its first occurrence.
fn local(zone: &Tz, date: NaiveDate, time: NaiveTime) -> DateTime<Utc> {
    let naive = date.and_time(time);
    let mut probe = naive;
    for _ in 0..=180 {
        if let Some(at) = zone.from_local_datetime(&probe).earliest() {
            return at.with_timezone(&Utc);
        }
        probe += Duration::minutes(1);
    }
    Utc.from_utc_datetime(&naive)
}

/// Calls `visit` with each part of the `open` intervals outside every one of `holes`
/// (both in time order), in time order, until it answers `false`.
fn each_counting(
    open: &[Span],
    holes: &[Span],
    mut visit: impl FnMut(DateTime<Utc>, DateTime<Utc>) -> bool,
) {
    for &(mut start, end) in open {
        for &(hole_start, hole_end) in holes {
            if hole_end <= start || hole_start >= end {
                continue;
            }
            if hole_start > start && !visit(start, hole_start) {
                return;
            }
            start = start.max(hole_end);
            if start >= end {
                break;
            }
        }
        if start < end && !visit(start, end) {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Channel, CustomerId};

    /// A conversation asked at `asked`, pending a while, answered and closed later.
    fn case(n: i64, asked: DateTime<Utc>) -> Conversation {
        let said = |key: &str, direction, status, at| {
            Interaction::builder("desk", Channel::Email, direction)
                .key(&format!("{n}-{key}"))
                .thread(&format!("t{n}"))
                .status(status)
                .occurred_at(at)
                .build()
                .unwrap()
        };
        let hours = |h: i64| asked + Duration::hours(h + n % 11);
        let interactions = vec![
            said("q", Direction::Inbound, InteractionStatus::Open, asked),
            said(
                "wait",
                Direction::Outbound,
                InteractionStatus::Pending,
                hours(3),
            ),
            said(
                "more",
                Direction::Inbound,
                InteractionStatus::Open,
                hours(30),
            ),
            said(
                "done",
                Direction::Outbound,
                InteractionStatus::Closed,
                hours(200),
            ),
        ];
        crate::conversation::group(CustomerId::new(), interactions, None).remove(0)
    }

    /// One calendar shared by conversations met in any order (it extends its dates
    /// both ways) measures each as a calendar of its own does.
    #[test]
    fn a_shared_calendar_measures_as_a_fresh_one() {
        let nine = chrono::NaiveTime::from_hms_opt(9, 0, 0).unwrap();
        let five = chrono::NaiveTime::from_hms_opt(17, 30, 0).unwrap();
        let policy = SlaPolicy::new(vec![
            Target::new(Metric::FirstReply, 4 * 3600),
            Target::new(Metric::NextReply, 8 * 3600),
            Target::new(Metric::Resolution, 40 * 3600),
        ])
        .in_business_hours(BusinessHours::weekdays("America/New_York", nine, five))
        .paused_while_pending();
        let start = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
        // Jumping back and forth over two years, across changes to summer time.
        let cases: Vec<Conversation> = (0..60)
            .map(|n| case(n, start + Duration::hours((n * 7_919) % 17_000)))
            .collect();
        let as_of = start + Duration::days(800);
        let shared = Calendar::new(&policy);
        for conversation in &cases {
            let fresh = measure_for(&policy, conversation, &Traits::new(), as_of).unwrap();
            let measured = measure_valid(&policy, &shared, conversation, &Traits::new(), as_of);
            assert_eq!(measured, fresh);
            assert_eq!(measured.len(), 3);
        }
    }
}
