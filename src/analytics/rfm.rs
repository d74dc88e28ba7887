//! Recency, frequency and monetary value per customer, from the event log.

use std::collections::HashMap;

use chrono::{FixedOffset, NaiveDate};
use serde::{Deserialize, Serialize};

use super::AnalyticsError;
use crate::model::{CustomerId, Event};
use crate::store::{Attributed, EventStore, StoreError};

/// The unit the summary's times are in.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeUnit {
    /// Days.
    Days,
    /// Weeks of seven days: the unit of the published CLV studies.
    Weeks,
    /// Any number of days per unit, for example 30.4375 for months.
    DaysPer(f64),
}

impl TimeUnit {
    /// Days in one unit.
    pub fn days(self) -> f64 {
        match self {
            Self::Days => 1.0,
            Self::Weeks => 7.0,
            Self::DaysPer(days) => days,
        }
    }
}

/// What counts as a purchase and how a summary is cut.
#[derive(Clone, Debug, PartialEq)]
pub struct RfmOptions {
    /// Names of the events that are purchases. Default: `["Order Completed"]`.
    pub purchase_events: Vec<String>,
    /// The numeric property holding a purchase's amount. Default: `revenue`. A purchase
    /// without it (or with a non-numeric value) counts with amount 0.
    pub revenue_property: String,
    /// The unit of `recency` and `t`. Default: weeks.
    pub time_unit: TimeUnit,
    /// The last day of the calibration period, inclusive. Purchases after it are left
    /// out, and `t` runs up to it.
    pub calibration_end: NaiveDate,
    /// The offset whose calendar days group purchases into transactions. Default: UTC.
    pub utc_offset: FixedOffset,
}

impl RfmOptions {
    /// Defaults for a calibration period ending on `calibration_end`.
    pub fn new(calibration_end: NaiveDate) -> Self {
        Self {
            purchase_events: vec!["Order Completed".to_owned()],
            revenue_property: "revenue".to_owned(),
            time_unit: TimeUnit::Weeks,
            calibration_end,
            utc_offset: FixedOffset::east_opt(0).expect("zero offset"),
        }
    }

    /// Purchases are events named `name` (replacing the default list).
    pub fn purchase_event(mut self, name: &str) -> Self {
        self.purchase_events = vec![name.to_owned()];
        self
    }

    /// Amounts come from property `property`.
    pub fn revenue_property(mut self, property: &str) -> Self {
        self.revenue_property = property.to_owned();
        self
    }

    /// Times are measured in `unit`.
    pub fn time_unit(mut self, unit: TimeUnit) -> Self {
        self.time_unit = unit;
        self
    }

    /// Calendar days are those of `offset`.
    pub fn utc_offset(mut self, offset: FixedOffset) -> Self {
        self.utc_offset = offset;
        self
    }

    fn validate(&self) -> Result<(), AnalyticsError> {
        let days = self.time_unit.days();
        if !(days.is_finite() && days > 0.0) {
            return Err(AnalyticsError::InvalidOption {
                option: "time_unit",
                problem: format!("{days} days per unit; it must be a positive number"),
            });
        }
        if self.purchase_events.is_empty() {
            return Err(AnalyticsError::InvalidOption {
                option: "purchase_events",
                problem: "no event name counts as a purchase".to_owned(),
            });
        }
        Ok(())
    }
}

/// One customer's purchase history in the calibration period, in the conventions of the
/// "buy till you die" models: purchases on one calendar day are one transaction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rfm {
    /// The customer (the live profile).
    pub customer: CustomerId,
    /// Repeat transactions: transaction days after the first.
    pub frequency: u32,
    /// Time from the first transaction to the last, in the summary's unit.
    pub recency: f64,
    /// Time from the first transaction to the end of the calibration period.
    pub t: f64,
    /// Mean amount of the repeat transactions (the first excluded); 0 without repeats.
    pub monetary: f64,
    /// The day of the first transaction.
    pub first_purchase: NaiveDate,
    /// The day of the last transaction.
    pub last_purchase: NaiveDate,
    /// The amount of every transaction, the first included.
    pub revenue: f64,
}

impl Rfm {
    /// Transactions in all, the first included.
    pub fn transactions(&self) -> u32 {
        self.frequency + 1
    }

    /// Time from the last transaction to the end of the calibration period.
    pub fn time_since_last(&self) -> f64 {
        self.t - self.recency
    }
}

/// Running totals for one customer while the log streams past.
struct Running {
    first: NaiveDate,
    last: NaiveDate,
    /// The amount of the transaction on day `last`, still open.
    open: f64,
    repeats: u32,
    repeat_amount: f64,
    revenue: f64,
}

impl Running {
    fn close_day(&mut self) {
        if self.last != self.first {
            self.repeats += 1;
            self.repeat_amount += self.open;
        }
        self.open = 0.0;
    }
}

/// Builds the RFM summary of every customer with a purchase in the calibration period,
/// from events in time order (as [`EventStore::scan_events`] yields them). Memory grows
/// with customers, not with events. Customers come out in id order.
///
/// An event earlier than one already seen for the same customer is an
/// [`AnalyticsError::Unordered`] error: the summary would be wrong.
pub fn summarize<I>(events: I, options: &RfmOptions) -> Result<Vec<Rfm>, AnalyticsError>
where
    I: IntoIterator<Item = Result<Attributed<Event>, StoreError>>,
{
    options.validate()?;
    let mut customers: HashMap<CustomerId, Running> = HashMap::new();
    for stored in events {
        let Attributed {
            customer,
            record: event,
        } = stored?;
        if !options.purchase_events.contains(&event.name) {
            continue;
        }
        let day = event
            .occurred_at
            .with_timezone(&options.utc_offset)
            .date_naive();
        if day > options.calibration_end {
            continue;
        }
        let amount = event
            .properties
            .get(&options.revenue_property)
            .and_then(serde_json::Value::as_f64)
            .unwrap_or(0.0);
        match customers.get_mut(&customer) {
            None => {
                customers.insert(
                    customer,
                    Running {
                        first: day,
                        last: day,
                        open: amount,
                        repeats: 0,
                        repeat_amount: 0.0,
                        revenue: amount,
                    },
                );
            }
            Some(running) => {
                if day < running.last {
                    return Err(AnalyticsError::Unordered {
                        customer,
                        day,
                        after: running.last,
                    });
                }
                if day > running.last {
                    running.close_day();
                    running.last = day;
                }
                running.open += amount;
                running.revenue += amount;
            }
        }
    }
    let unit = options.time_unit.days();
    let mut summary: Vec<Rfm> = customers
        .into_iter()
        .map(|(customer, mut running)| {
            running.close_day();
            let days = |from: NaiveDate, to: NaiveDate| (to - from).num_days() as f64 / unit;
            Rfm {
                customer,
                frequency: running.repeats,
                recency: days(running.first, running.last),
                t: days(running.first, options.calibration_end),
                monetary: if running.repeats > 0 {
                    running.repeat_amount / f64::from(running.repeats)
                } else {
                    0.0
                },
                first_purchase: running.first,
                last_purchase: running.last,
                revenue: running.revenue,
            }
        })
        .collect();
    summary.sort_by_key(|rfm| rfm.customer);
    Ok(summary)
}

/// [`summarize`] over every event in `store`.
///
/// ```
/// use chrono::{NaiveDate, TimeZone, Utc};
/// use oneview::analytics::{rfm_summary, RfmOptions};
/// use oneview::{Channel, Customers, Event, IdentifierKind, MemoryStore};
/// use serde_json::json;
///
/// let customers = Customers::new(MemoryStore::new());
/// for (day, amount) in [(1, 20.0), (1, 5.0), (8, 30.0), (22, 10.0)] {
///     customers.ingest(
///         Event::builder("shop", Channel::Store, "Order Completed")
///             .occurred_at(Utc.with_ymd_and_hms(2026, 1, day, 12, 0, 0).unwrap())
///             .identifier(IdentifierKind::Email, "ana@example.com")
///             .properties(json!({ "revenue": amount }))
///             .build()?,
///     )?;
/// }
/// let end = NaiveDate::from_ymd_opt(2026, 1, 29).unwrap();
/// let summary = rfm_summary(customers.store(), &RfmOptions::new(end))?;
/// let ana = &summary[0];
/// assert_eq!(ana.frequency, 2); // two repeat days; the two orders of day 1 are one
/// assert_eq!(ana.recency, 3.0); // weeks from the first day to the last
/// assert_eq!(ana.t, 4.0); // weeks from the first day to the end
/// assert_eq!(ana.monetary, 20.0); // mean of the repeat transactions, 30 and 10
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn rfm_summary(
    store: &(impl EventStore + ?Sized),
    options: &RfmOptions,
) -> Result<Vec<Rfm>, AnalyticsError> {
    summarize(store.scan_events(), options)
}

/// A score from 1 (the lowest fifth of customers) to 5 (the highest).
pub type Score = u8;

/// A customer's recency, frequency and monetary quintile scores.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RfmScore {
    /// 5 for the most recent last purchases.
    pub recency: Score,
    /// 5 for the most transactions.
    pub frequency: Score,
    /// 5 for the highest average amount per transaction (the first included, so
    /// one-time buyers are scored too).
    pub monetary: Score,
}

impl RfmScore {
    /// The named segment these scores fall in.
    pub fn segment(self) -> Segment {
        Segment::of(self)
    }
}

/// Named groups of customers by their [`RfmScore`], checked in this order:
///
/// | segment | rule |
/// |---|---|
/// | [`Champions`](Self::Champions) | R ≥ 4, F ≥ 4, M ≥ 4 |
/// | [`Loyal`](Self::Loyal) | R ≥ 3, F ≥ 4 |
/// | [`New`](Self::New) | R ≥ 4, F = 1 |
/// | [`Promising`](Self::Promising) | R ≥ 4 |
/// | [`AtRisk`](Self::AtRisk) | R ≤ 2, F ≥ 3 |
/// | [`Hibernating`](Self::Hibernating) | R ≤ 2 |
/// | [`NeedAttention`](Self::NeedAttention) | everyone else (R = 3, F ≤ 3) |
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Segment {
    /// Bought recently, often, and much: reward them.
    Champions,
    /// Buy often and not long ago: keep them close.
    Loyal,
    /// Bought once, recently: help them to a second purchase.
    New,
    /// Recent buyers who are not yet frequent: build the habit.
    Promising,
    /// Used to buy often but not lately: win them back before they go.
    AtRisk,
    /// Neither recent nor frequent: low priority, or a reactivation campaign.
    Hibernating,
    /// Middling recency: watch them.
    NeedAttention,
}

impl Segment {
    fn of(score: RfmScore) -> Self {
        let RfmScore {
            recency: r,
            frequency: f,
            monetary: m,
        } = score;
        match () {
            () if r >= 4 && f >= 4 && m >= 4 => Self::Champions,
            () if r >= 3 && f >= 4 => Self::Loyal,
            () if r >= 4 && f == 1 => Self::New,
            () if r >= 4 => Self::Promising,
            () if r <= 2 && f >= 3 => Self::AtRisk,
            () if r <= 2 => Self::Hibernating,
            () => Self::NeedAttention,
        }
    }
}

/// Scores every customer of `summary` against the others, in the same order.
///
/// A score is the customer's quintile: `1 + 5 * (customers with a strictly lower value) /
/// customers`, so equal values always get equal scores and the best fifth gets 5.
pub fn rfm_scores(summary: &[Rfm]) -> Vec<RfmScore> {
    let recency = quintiles(summary.iter().map(|c| -c.time_since_last()));
    let frequency = quintiles(summary.iter().map(|c| f64::from(c.frequency)));
    let monetary = quintiles(
        summary
            .iter()
            .map(|c| c.revenue / f64::from(c.transactions())),
    );
    (0..summary.len())
        .map(|i| RfmScore {
            recency: recency[i],
            frequency: frequency[i],
            monetary: monetary[i],
        })
        .collect()
}

fn quintiles(values: impl Iterator<Item = f64>) -> Vec<Score> {
    let values: Vec<f64> = values.collect();
    let mut sorted = values.clone();
    sorted.sort_by(f64::total_cmp);
    let n = values.len();
    values
        .iter()
        .map(|v| {
            let below = sorted.partition_point(|s| s.total_cmp(v).is_lt());
            (1 + 5 * below / n) as Score
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quintiles_split_distinct_values_into_fifths_and_keep_ties_together() {
        let scores = quintiles((0..10).map(f64::from));
        assert_eq!(scores, [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]);
        let tied = quintiles([3.0, 1.0, 3.0, 3.0, 0.0].into_iter());
        assert_eq!(tied, [3, 2, 3, 3, 1]);
    }

    #[test]
    fn segments_follow_the_documented_rules_in_order() {
        let s = |recency, frequency, monetary| {
            RfmScore {
                recency,
                frequency,
                monetary,
            }
            .segment()
        };
        assert_eq!(s(5, 5, 5), Segment::Champions);
        assert_eq!(s(5, 5, 1), Segment::Loyal);
        assert_eq!(s(3, 4, 5), Segment::Loyal);
        assert_eq!(s(4, 1, 5), Segment::New);
        assert_eq!(s(4, 2, 2), Segment::Promising);
        assert_eq!(s(2, 3, 1), Segment::AtRisk);
        assert_eq!(s(1, 1, 5), Segment::Hibernating);
        assert_eq!(s(3, 3, 3), Segment::NeedAttention);
    }
}
