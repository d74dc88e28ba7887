//! Customer value from the event log: RFM summaries and scores, and the "buy till you
//! die" models of customer lifetime value.
//!
//! 1. [`rfm_summary`] streams the event log into one [`Rfm`] row per customer: repeat
//!    transactions, recency, age and mean repeat spend, in the conventions of the
//!    published models (purchases on one calendar day are one transaction).
//! 2. [`rfm_scores`] ranks customers into quintiles and named [`Segment`]s.
//! 3. [`BgNbd`] or [`ParetoNbd`] learn how often customers buy and how long they stay;
//!    [`GammaGamma`] learns how much they spend. Each `fit` maximises the likelihood
//!    and reports it with standard errors in a [`FitReport`].
//! 4. [`rank_by_clv`] combines a transaction model with the spend model into a
//!    discounted value per customer, best first.
//!
//! ```
//! use chrono::{Duration, NaiveDate, TimeZone, Utc};
//! use oneview::analytics::{
//!     rank_by_clv, rfm_summary, BgNbd, ClvOptions, GammaGamma, RfmOptions, TransactionModel,
//! };
//! use oneview::{Channel, Customers, Event, IdentifierKind, MemoryStore};
//! use serde_json::json;
//!
//! // Forty customers: customer n buys every (n % 7 + 1) weeks, some stop early.
//! let customers = Customers::new(MemoryStore::new());
//! let start = Utc.with_ymd_and_hms(2026, 1, 5, 10, 0, 0).unwrap();
//! let mut orders = Vec::new();
//! for n in 0..40u32 {
//!     let every = i64::from(n % 7 + 1);
//!     let stops = if n % 3 == 0 { 10 } else { 40 };
//!     for week in (0..stops).step_by(every as usize) {
//!         orders.push(
//!             Event::builder("shop", Channel::Store, "Order Completed")
//!                 .occurred_at(start + Duration::weeks(week) + Duration::days(i64::from(n % 5)))
//!                 .identifier(IdentifierKind::UserId, &format!("u{n}"))
//!                 .properties(json!({ "revenue": 20.0 + f64::from(n % 9) * 5.0 + week as f64 }))
//!                 .build()?,
//!         );
//!     }
//! }
//! customers.ingest_batch(orders)?;
//!
//! let end = NaiveDate::from_ymd_opt(2026, 10, 4).unwrap();
//! let summary = rfm_summary(customers.store(), &RfmOptions::new(end))?;
//! let (purchases, _) = BgNbd::fit(&summary)?;
//! let (spend, _) = GammaGamma::fit(&summary)?;
//!
//! // A year ahead in months of 4.35 weeks, discounted 1% a month.
//! let ranking = rank_by_clv(&purchases, &spend, &summary, &ClvOptions::new(12, 4.35, 0.01)?);
//! let best = &ranking[0];
//! assert!(best.clv > ranking[ranking.len() - 1].clv);
//! assert!(best.p_alive > 0.5);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod bgnbd;
mod fit;
mod gamma_gamma;
pub(crate) mod numeric;
mod pareto_nbd;
mod rfm;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

pub use bgnbd::BgNbd;
pub use fit::FitReport;
pub use gamma_gamma::GammaGamma;
pub use pareto_nbd::ParetoNbd;
pub use rfm::{
    Rfm, RfmOptions, RfmScore, Score, Segment, TimeUnit, rfm_scores, rfm_summary, summarize,
};

use crate::model::CustomerId;
use crate::store::StoreError;

/// Why an analysis could not be done.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AnalyticsError {
    /// Reading the event log failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An option is out of range.
    #[error("option `{option}`: {problem}")]
    InvalidOption {
        /// The option.
        option: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// Events reached the summary out of time order.
    #[error(
        "events of customer {customer} arrived out of order: {day} after {after}; \
         summarise events oldest first, as the store's scan yields them"
    )]
    Unordered {
        /// The customer.
        customer: CustomerId,
        /// The day that came late.
        day: NaiveDate,
        /// The later day seen before it.
        after: NaiveDate,
    },
    /// A customer's history cannot come from the model.
    #[error("{model}: customer {customer}: {problem}")]
    InvalidHistory {
        /// The customer.
        customer: CustomerId,
        /// The model being fitted.
        model: &'static str,
        /// What is wrong.
        problem: String,
    },
    /// The data cannot identify the model's parameters.
    #[error("{model} needs {needed}")]
    InsufficientData {
        /// The model being fitted.
        model: &'static str,
        /// What the data lacks.
        needed: &'static str,
    },
    /// The likelihood is highest at the edge of the parameter space (a parameter fitted
    /// below 1e-4 or above 1e6): the data cannot identify the model, typically too few
    /// customers or too few repeat purchases. Parameters in natural units stay well
    /// inside that range; pick a time unit and currency unit that keep them there.
    #[error(
        "{model}: the fit is degenerate ({parameter} = {value:e} runs off to the edge of \
         the parameter space); the data cannot identify the model"
    )]
    Degenerate {
        /// The model being fitted.
        model: &'static str,
        /// The parameter that ran off.
        parameter: &'static str,
        /// Where it was when the optimiser stopped.
        value: f64,
    },
    /// The optimiser did not reach a maximum of the likelihood.
    #[error(
        "{model}: the fit did not converge after {iterations} iterations \
         (largest gradient component {gradient_norm:e})"
    )]
    NotConverged {
        /// The model being fitted.
        model: &'static str,
        /// Iterations run.
        iterations: usize,
        /// The largest gradient component where it stopped.
        gradient_norm: f64,
    },
}

/// What a fitted purchase model predicts for one customer, from their frequency, recency
/// and age `t` (all in the unit the summary used).
pub trait TransactionModel {
    /// The probability that the customer is still active at the end of the calibration
    /// period.
    fn p_alive(&self, frequency: u32, recency: f64, t: f64) -> f64;

    /// The expected number of purchases in the next `horizon` time units.
    fn expected_purchases(&self, frequency: u32, recency: f64, t: f64, horizon: f64) -> f64;

    /// The expected number of repeat purchases of a new customer in their first
    /// `horizon` time units.
    fn expected_purchases_new(&self, horizon: f64) -> f64;
}

/// How far ahead customer lifetime value looks and how it discounts.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClvOptions {
    /// Periods ahead.
    pub periods: u32,
    /// The length of a period, in the summary's time unit.
    pub period_length: f64,
    /// The discount rate per period: 0.01 values money a period away at 1/1.01.
    pub discount_rate: f64,
}

impl ClvOptions {
    /// `periods` periods of `period_length` time units, discounted at `discount_rate` per
    /// period.
    pub fn new(
        periods: u32,
        period_length: f64,
        discount_rate: f64,
    ) -> Result<Self, AnalyticsError> {
        if periods == 0 {
            return Err(AnalyticsError::InvalidOption {
                option: "periods",
                problem: "the horizon must have at least one period".to_owned(),
            });
        }
        if !(period_length.is_finite() && period_length > 0.0) {
            return Err(AnalyticsError::InvalidOption {
                option: "period_length",
                problem: format!("{period_length} is not a positive length"),
            });
        }
        if !(discount_rate.is_finite() && discount_rate > -1.0) {
            return Err(AnalyticsError::InvalidOption {
                option: "discount_rate",
                problem: format!("{discount_rate} is not a rate above -1"),
            });
        }
        Ok(Self {
            periods,
            period_length,
            discount_rate,
        })
    }
}

/// A customer's predicted value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CustomerValue {
    /// The customer.
    pub customer: CustomerId,
    /// Discounted expected revenue over the horizon.
    pub clv: f64,
    /// The probability the customer is still active.
    pub p_alive: f64,
    /// Expected purchases over the horizon, undiscounted.
    pub expected_purchases: f64,
    /// Expected amount per purchase.
    pub expected_spend: f64,
}

/// The customer lifetime value of `customer`: for each period, the purchases expected in
/// it, times the expected amount per purchase, discounted to today.
pub fn customer_value(
    purchases: &impl TransactionModel,
    spend: &GammaGamma,
    customer: &Rfm,
    options: &ClvOptions,
) -> CustomerValue {
    let (x, recency, t) = (customer.frequency, customer.recency, customer.t);
    let amount = spend.expected_spend(x, customer.monetary);
    let mut clv = 0.0;
    let mut before = 0.0;
    for period in 1..=options.periods {
        let cumulative =
            purchases.expected_purchases(x, recency, t, f64::from(period) * options.period_length);
        clv += (cumulative - before) * amount / (1.0 + options.discount_rate).powi(period as i32);
        before = cumulative;
    }
    CustomerValue {
        customer: customer.customer,
        clv,
        p_alive: purchases.p_alive(x, recency, t),
        expected_purchases: before,
        expected_spend: amount,
    }
}

/// Every customer of `summary` with their value, most valuable first (ties by id).
pub fn rank_by_clv(
    purchases: &impl TransactionModel,
    spend: &GammaGamma,
    summary: &[Rfm],
    options: &ClvOptions,
) -> Vec<CustomerValue> {
    let mut values: Vec<CustomerValue> = summary
        .iter()
        .map(|c| customer_value(purchases, spend, c, options))
        .collect();
    values.sort_by(|a, b| {
        b.clv
            .total_cmp(&a.clv)
            .then_with(|| a.customer.cmp(&b.customer))
    });
    values
}
