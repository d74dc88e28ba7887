//! The BG/NBD model of Fader, Hardie & Lee (2005), "Counting Your Customers the Easy
//! Way: An Alternative to the Pareto/NBD Model", Marketing Science 24(2).
//!
//! While active, a customer buys at a Poisson rate λ ~ Gamma(r, α); after each repeat
//! purchase they drop out with probability p ~ Beta(a, b).

use serde::{Deserialize, Serialize};

use super::fit::{FitReport, Groups, fit_model};
use super::numeric::{Real, hyp2f1, softplus};
use super::{AnalyticsError, Rfm, TransactionModel};

/// Fitted BG/NBD parameters.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct BgNbd {
    /// Shape of the purchase-rate distribution.
    pub r: f64,
    /// Scale (rate) of the purchase-rate distribution, in the summary's time unit.
    pub alpha: f64,
    /// First shape of the dropout-probability distribution.
    pub a: f64,
    /// Second shape of the dropout-probability distribution.
    pub b: f64,
}

/// The part of the log-likelihood that depends on the frequency `x` alone.
fn frequency_terms<T: Real>(p: [T; 4], x: f64) -> T {
    let [r, alpha, a, b] = p;
    (r + x).ln_gamma() - r.ln_gamma() + r * alpha.ln() + (b + x).ln_gamma() - b.ln_gamma()
        + (a + b).ln_gamma()
        - (a + b + x).ln_gamma()
}

/// The rest of the log-likelihood of one customer; `p` is (r, α, a, b).
fn history_terms<T: Real>(p: [T; 4], x: f64, tx: f64, t: f64) -> T {
    let [r, alpha, a, b] = p;
    let rx = r + x;
    let ln_alpha_t = (alpha + t).ln();
    if x == 0.0 {
        return -(rx * ln_alpha_t);
    }
    // ln(1 + a/(b+x-1) · ((α+T)/(α+t_x))^(r+x)), through the softplus so that a long
    // history (large r + x) cannot overflow.
    let z = a.ln() - (b + (x - 1.0)).ln() + rx * (ln_alpha_t - (alpha + tx).ln());
    softplus(z) - rx * ln_alpha_t
}

fn ln_likelihood<T: Real>(p: [T; 4], x: f64, tx: f64, t: f64) -> T {
    frequency_terms(p, x) + history_terms(p, x, tx, t)
}

pub(crate) fn total_ln_likelihood<T: Real>(p: [T; 4], groups: &Groups) -> T {
    groups.sum_by_frequency(
        |g| frequency_terms(p, g.x),
        |g, shared| shared + history_terms(p, g.x, g.tx, g.t),
    )
}

impl BgNbd {
    /// Fits the model to `summary` by maximum likelihood.
    ///
    /// Errors: [`AnalyticsError::InsufficientData`] without a repeat purchase to learn
    /// from, [`AnalyticsError::NotConverged`] if the optimiser does not settle.
    pub fn fit(summary: &[Rfm]) -> Result<(Self, FitReport), AnalyticsError> {
        let groups = Groups::new(summary, "BG/NBD")?;
        let rate = groups.mean_frequency() / groups.mean_t();
        let start = [1.0, 1.0 / rate.max(1e-6), 1.0, 1.0];
        let (p, report) = fit_model(
            "BG/NBD",
            ["r", "alpha", "a", "b"],
            &groups,
            start,
            total_ln_likelihood,
        )?;
        Ok((
            Self {
                r: p[0],
                alpha: p[1],
                a: p[2],
                b: p[3],
            },
            report,
        ))
    }

    fn params(&self) -> [f64; 4] {
        [self.r, self.alpha, self.a, self.b]
    }

    /// The log-likelihood of `summary` under these parameters.
    pub fn ln_likelihood(&self, summary: &[Rfm]) -> f64 {
        summary
            .iter()
            .map(|c| ln_likelihood(self.params(), f64::from(c.frequency), c.recency, c.t))
            .sum()
    }
}

/// `(a + b + x - 1) / (a - 1)` times `1 - (ratio)^(r+x) 2F1(...)`, the shared shape of the
/// two expectations; `a = 1` is nudged off its removable singularity.
fn expectation_core(r: f64, alpha: f64, a: f64, b: f64, x: f64, horizon_from: f64, t: f64) -> f64 {
    let a = if (a - 1.0).abs() < 1e-9 {
        1.0 + 1e-9
    } else {
        a
    };
    let z = t / (alpha + horizon_from + t);
    let f = hyp2f1(r + x, b + x, a + b + x - 1.0, z).unwrap_or(f64::NAN);
    let ratio = ((alpha + horizon_from) / (alpha + horizon_from + t)).powf(r + x);
    (a + b + x - 1.0) / (a - 1.0) * (1.0 - ratio * f)
}

impl TransactionModel for BgNbd {
    fn p_alive(&self, frequency: u32, recency: f64, t: f64) -> f64 {
        if frequency == 0 {
            return 1.0;
        }
        let x = f64::from(frequency);
        let z = self.a.ln() - (self.b + x - 1.0).ln()
            + (self.r + x) * ((self.alpha + t).ln() - (self.alpha + recency).ln());
        // 1 / (1 + e^z), computed from the side that cannot overflow.
        if z > 0.0 {
            let e = (-z).exp();
            e / (1.0 + e)
        } else {
            1.0 / (1.0 + z.exp())
        }
    }

    fn expected_purchases(&self, frequency: u32, recency: f64, t: f64, horizon: f64) -> f64 {
        if horizon <= 0.0 {
            return 0.0;
        }
        let x = f64::from(frequency);
        let core = expectation_core(self.r, self.alpha, self.a, self.b, x, t, horizon);
        core * self.p_alive(frequency, recency, t)
    }

    fn expected_purchases_new(&self, horizon: f64) -> f64 {
        if horizon <= 0.0 {
            return 0.0;
        }
        expectation_core(self.r, self.alpha, self.a, self.b, 0.0, 0.0, horizon)
    }
}
