//! The Pareto/NBD model of Schmittlein, Morrison & Colombo (1987), "Counting Your
//! Customers: Who Are They and What Will They Do Next?", Management Science 33(1), in the
//! form of Fader & Hardie (2005), "A Note on Deriving the Pareto/NBD Model and Related
//! Expressions".
//!
//! While alive, a customer buys at a Poisson rate λ ~ Gamma(r, α); their lifetime is
//! exponential with rate μ ~ Gamma(s, β).

use serde::{Deserialize, Serialize};

use super::fit::{FitReport, Groups, fit_model};
use super::numeric::{Real, hyp2f1, ln_1m_exp, ln_add_exp};
use super::{AnalyticsError, Rfm, TransactionModel};

/// Fitted Pareto/NBD parameters.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ParetoNbd {
    /// Shape of the purchase-rate distribution.
    pub r: f64,
    /// Scale (rate) of the purchase-rate distribution, in the summary's time unit.
    pub alpha: f64,
    /// Shape of the dropout-rate distribution.
    pub s: f64,
    /// Scale (rate) of the dropout-rate distribution, in the summary's time unit.
    pub beta: f64,
}

/// `ln(2F1(k, second; k + 1; gap / (larger + time)) / (larger + time)^k)`, the building
/// block of the "died between t_x and T" half, summed on the side where the series'
/// argument is smallest (SMC's two branches). `None` if the series does not settle.
fn a0_term<T: Real>(p: [T; 4], x: f64, time: f64) -> Option<T> {
    let [r, alpha, s, beta] = p;
    let k = r + s + x;
    let (larger, second, gap) = if alpha.value() >= beta.value() {
        (alpha, s + 1.0, alpha - beta)
    } else {
        (beta, r + x, beta - alpha)
    };
    let base = larger + time;
    Some(hyp2f1(k, second, k + 1.0, gap / base)?.ln() - k * base.ln())
}

/// The two halves of the log-likelihood beyond the frequency terms: `ln` of the "still
/// alive at T" part and of the "died between t_x and T" part (`-inf` when t_x = T).
/// `at_tx` is [`a0_term`] at `tx` if already known. `None` if a series does not settle.
fn halves<T: Real>(p: [T; 4], x: f64, tx: f64, t: f64, at_tx: Option<T>) -> Option<(T, T)> {
    let [r, alpha, s, beta] = p;
    let alive = -((r + x) * (alpha + t).ln()) - s * (beta + t).ln();
    if tx >= t {
        return Some((alive, T::constant(f64::NEG_INFINITY)));
    }
    let at_tx = match at_tx {
        Some(known) => known,
        None => a0_term(p, x, tx)?,
    };
    let at_t = a0_term(p, x, t)?;
    let ln_a0 = at_tx + ln_1m_exp(at_t - at_tx);
    let died = s.ln() - (r + s + x).ln() + ln_a0;
    Some((alive, died))
}

/// The part of the log-likelihood that depends on the frequency `x` alone.
fn frequency_terms<T: Real>(p: [T; 4], x: f64) -> T {
    let [r, alpha, s, beta] = p;
    (r + x).ln_gamma() - r.ln_gamma() + r * alpha.ln() + s * beta.ln()
}

fn ln_likelihood<T: Real>(p: [T; 4], x: f64, tx: f64, t: f64) -> T {
    match halves(p, x, tx, t, None) {
        Some((alive, died)) => frequency_terms(p, x) + ln_add_exp(alive, died),
        None => T::constant(f64::NAN),
    }
}

pub(crate) fn total_ln_likelihood<T: Real>(p: [T; 4], groups: &Groups) -> T {
    // Shared per frequency: its terms, and the series at t_x = 0 that every customer
    // without repeat purchases shares (groups come t_x first within a frequency).
    groups.sum_by_frequency(
        |g| {
            let at_zero = if g.tx == 0.0 {
                a0_term(p, g.x, 0.0)
            } else {
                None
            };
            (frequency_terms(p, g.x), at_zero)
        },
        |g, (shared, at_zero)| {
            let at_tx = if g.tx == 0.0 { at_zero } else { None };
            match halves(p, g.x, g.tx, g.t, at_tx) {
                Some((alive, died)) => shared + ln_add_exp(alive, died),
                None => T::constant(f64::NAN),
            }
        },
    )
}

impl ParetoNbd {
    /// Fits the model to `summary` by maximum likelihood.
    ///
    /// Errors: [`AnalyticsError::InsufficientData`] without a repeat purchase to learn
    /// from, [`AnalyticsError::NotConverged`] if the optimiser does not settle.
    pub fn fit(summary: &[Rfm]) -> Result<(Self, FitReport), AnalyticsError> {
        let groups = Groups::new(summary, "Pareto/NBD")?;
        let rate = groups.mean_frequency() / groups.mean_t();
        // Equal scales put the series argument at 0, where it needs the fewest terms.
        let scale = 1.0 / rate.max(1e-6);
        let start = [1.0, scale, 1.0, scale];
        let (p, report) = fit_model(
            "Pareto/NBD",
            ["r", "alpha", "s", "beta"],
            &groups,
            start,
            total_ln_likelihood,
        )?;
        Ok((
            Self {
                r: p[0],
                alpha: p[1],
                s: p[2],
                beta: p[3],
            },
            report,
        ))
    }

    fn params(&self) -> [f64; 4] {
        [self.r, self.alpha, self.s, self.beta]
    }

    /// The log-likelihood of `summary` under these parameters (NaN where the series
    /// does not settle).
    pub fn ln_likelihood(&self, summary: &[Rfm]) -> f64 {
        summary
            .iter()
            .map(|c| ln_likelihood(self.params(), f64::from(c.frequency), c.recency, c.t))
            .sum()
    }
}

/// `(1 - (base / (base + t))^(s-1)) / (s - 1)`, continuous through `s = 1` where it is
/// `ln((base + t) / base)`.
fn shape_term(s: f64, base: f64, t: f64) -> f64 {
    let ln_ratio = (base / (base + t)).ln();
    let e = s - 1.0;
    if e.abs() < 1e-12 {
        -ln_ratio
    } else {
        -(e * ln_ratio).exp_m1() / e
    }
}

impl TransactionModel for ParetoNbd {
    fn p_alive(&self, frequency: u32, recency: f64, t: f64) -> f64 {
        let x = f64::from(frequency);
        match halves(self.params(), x, recency, t, None) {
            // 1 / (1 + e^(died - alive)).
            Some((alive, died)) => {
                let z = died - alive;
                if z > 0.0 {
                    let e = (-z).exp();
                    e / (1.0 + e)
                } else {
                    1.0 / (1.0 + z.exp())
                }
            }
            None => f64::NAN,
        }
    }

    fn expected_purchases(&self, frequency: u32, recency: f64, t: f64, horizon: f64) -> f64 {
        if horizon <= 0.0 {
            return 0.0;
        }
        let x = f64::from(frequency);
        (self.r + x) * (self.beta + t) / (self.alpha + t)
            * shape_term(self.s, self.beta + t, horizon)
            * self.p_alive(frequency, recency, t)
    }

    fn expected_purchases_new(&self, horizon: f64) -> f64 {
        if horizon <= 0.0 {
            return 0.0;
        }
        self.r * self.beta / self.alpha * shape_term(self.s, self.beta, horizon)
    }
}
