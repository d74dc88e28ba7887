//! Customer value written onto the profile, where segments and every channel can use it.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};

use crate::Customers;
use crate::analytics::{ClvOptions, GammaGamma, Rfm, TransactionModel, customer_value, rfm_scores};
use crate::error::Error;
use crate::ingest::Record;
use crate::model::{Channel, Event};
use crate::store::Store;

/// The source of the events that carry computed customer value.
pub const VALUE_SOURCE: &str = "oneview.analytics";

/// The traits [`Customers::write_customer_value`] sets, by name.
pub const VALUE_TRAITS: [&str; 8] = [
    "rfm_recency",
    "rfm_frequency",
    "rfm_monetary",
    "rfm_segment",
    "p_alive",
    "expected_purchases",
    "clv",
    "clv_percentile",
];

/// What [`Customers::write_customer_value`] wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ValueReport {
    /// Profiles that got their values.
    pub written: u64,
    /// Customers of the summary no longer in the store (erased since), skipped.
    pub skipped: u64,
}

impl<S: Store> Customers<S> {
    /// Writes each customer's value onto their profile as traits: RFM scores and
    /// segment, P(alive), expected purchases and CLV over `options`' horizon (from
    /// `purchases`, a fitted BG/NBD or Pareto/NBD, and `spend`, a fitted Gamma-Gamma),
    /// and the CLV percentile among `summary` (100 for the most valuable). See
    /// [`VALUE_TRAITS`].
    ///
    /// Each customer's values arrive as one event (source [`VALUE_SOURCE`], name
    /// `Customer Value Computed`, at `as_of`) whose properties name the model, its
    /// parameters and the horizon: the traits' provenance. Writing again for the same
    /// `as_of` changes nothing; a later `as_of` supersedes.
    pub fn write_customer_value<M: TransactionModel + Serialize>(
        &self,
        summary: &[Rfm],
        model: &str,
        purchases: &M,
        spend: &GammaGamma,
        options: &ClvOptions,
        as_of: DateTime<Utc>,
    ) -> Result<ValueReport, Error> {
        let scores = rfm_scores(summary);
        let values: Vec<_> = summary
            .iter()
            .map(|c| customer_value(purchases, spend, c, options))
            .collect();
        let mut ranked: Vec<f64> = values.iter().map(|v| v.clv).collect();
        ranked.sort_by(f64::total_cmp);
        let percentile = |clv: f64| {
            // The share of customers worth strictly less, so equal values rank equally.
            let below = ranked.partition_point(|v| *v < clv);
            100.0 * below as f64 / ranked.len().max(1) as f64
        };
        let provenance = json!({
            "model": model,
            "parameters": purchases,
            "spend": spend,
            "horizon": options,
        });
        let number = |n: f64| serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number);
        let mut report = ValueReport::default();
        let mut batch: Vec<Record> = Vec::new();
        for ((customer, score), value) in summary.iter().zip(&scores).zip(&values) {
            let Some(profile) = self.store().profile(customer.customer)? else {
                report.skipped += 1;
                continue;
            };
            let Some(anchor) = profile.identifiers.first() else {
                report.skipped += 1;
                continue;
            };
            let event = Event::builder(
                VALUE_SOURCE,
                Channel::Other("analytics".to_owned()),
                "Customer Value Computed",
            )
            .message_id(&format!("value/{}/{}", profile.id, as_of.to_rfc3339()))
            .occurred_at(as_of)
            .with_identifier(anchor.clone())
            .properties(provenance.clone())
            .set_trait("rfm_recency", json!(score.recency))
            .set_trait("rfm_frequency", json!(score.frequency))
            .set_trait("rfm_monetary", json!(score.monetary))
            .set_trait(
                "rfm_segment",
                serde_json::to_value(score.segment()).unwrap_or(Value::Null),
            )
            .set_trait("p_alive", number(value.p_alive))
            .set_trait("expected_purchases", number(value.expected_purchases))
            .set_trait("clv", number(value.clv))
            .set_trait("clv_percentile", number(percentile(value.clv)))
            .build()?;
            batch.push(Record::Event(event));
            if batch.len() == 2000 {
                report.written += self.ingest_all(std::mem::take(&mut batch))?;
            }
        }
        report.written += self.ingest_all(batch)?;
        Ok(report)
    }
}
