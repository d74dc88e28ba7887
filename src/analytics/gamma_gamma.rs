//! The Gamma-Gamma model of spend per transaction: Fader, Hardie & Lee (2005), "RFM and
//! CLV: Using Iso-Value Curves for Customer Base Analysis", and Fader & Hardie (2013),
//! "The Gamma-Gamma Model of Monetary Value".
//!
//! A customer's transaction amounts are Gamma(p, ν) with ν ~ Gamma(q, γ) across
//! customers, independent of how often they buy. Only customers with repeat purchases
//! inform it, through the mean of their repeat amounts.

use serde::{Deserialize, Serialize};

use super::fit::{FitReport, Groups, fit_model};
use super::numeric::Real;
use super::{AnalyticsError, Rfm};

/// Fitted Gamma-Gamma parameters.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct GammaGamma {
    /// Shape of the amount of one transaction.
    pub p: f64,
    /// Shape of the distribution of ν across customers.
    pub q: f64,
    /// Scale (rate) of the distribution of ν across customers.
    pub gamma: f64,
}

/// The part of the log-density that depends on the frequency `x` alone.
fn frequency_terms<T: Real>(params: [T; 3], x: f64) -> T {
    let [p, q, gamma] = params;
    let px = p * x;
    (px + q).ln_gamma() - px.ln_gamma() - q.ln_gamma() + q * gamma.ln() + px * x.ln()
}

/// The rest of the log-density of a mean amount `m` over `x` transactions.
fn amount_terms<T: Real>(params: [T; 3], x: f64, m: f64) -> T {
    let [p, q, gamma] = params;
    let px = p * x;
    (px - 1.0) * m.ln() - (px + q) * (gamma + x * m).ln()
}

fn ln_likelihood<T: Real>(params: [T; 3], x: f64, m: f64) -> T {
    frequency_terms(params, x) + amount_terms(params, x, m)
}

pub(crate) fn total_ln_likelihood<T: Real>(p: [T; 3], groups: &Groups) -> T {
    groups.sum_by_frequency(
        |g| frequency_terms(p, g.x),
        |g, shared| shared + amount_terms(p, g.x, g.m),
    )
}

impl GammaGamma {
    /// Fits the model to the customers of `summary` with repeat purchases, by maximum
    /// likelihood.
    ///
    /// Errors: [`AnalyticsError::InsufficientData`] with fewer than two such customers,
    /// [`AnalyticsError::InvalidHistory`] for a non-positive mean repeat amount,
    /// [`AnalyticsError::NotConverged`] if the optimiser does not settle.
    pub fn fit(summary: &[Rfm]) -> Result<(Self, FitReport), AnalyticsError> {
        let groups = Groups::spend(summary, "Gamma-Gamma")?;
        // E[M] = pγ / (q - 1): start from p = 1, q = 2, γ matching the mean amount.
        let start = [1.0, 2.0, groups.mean_spend()];
        let (p, report) = fit_model(
            "Gamma-Gamma",
            ["p", "q", "gamma"],
            &groups,
            start,
            total_ln_likelihood,
        )?;
        Ok((
            Self {
                p: p[0],
                q: p[1],
                gamma: p[2],
            },
            report,
        ))
    }

    /// The log-likelihood of the customers of `summary` with repeat purchases.
    pub fn ln_likelihood(&self, summary: &[Rfm]) -> f64 {
        summary
            .iter()
            .filter(|c| c.frequency > 0)
            .map(|c| {
                ln_likelihood(
                    [self.p, self.q, self.gamma],
                    f64::from(c.frequency),
                    c.monetary,
                )
            })
            .sum()
    }

    /// The expected amount of a transaction of a customer with `frequency` repeat
    /// purchases of mean amount `monetary`: a weighted mean of the population mean and
    /// the customer's own, leaning on their own the more they have bought.
    ///
    /// With no repeats this is the population mean, `pγ / (q - 1)` (infinite for
    /// `q <= 1`).
    pub fn expected_spend(&self, frequency: u32, monetary: f64) -> f64 {
        let x = f64::from(frequency);
        let m = if frequency == 0 { 0.0 } else { monetary };
        self.p * (self.gamma + x * m) / (self.p * x + self.q - 1.0)
    }
}
