//! What the three models share when they are fitted: customers grouped by identical
//! histories, the log-parameter objective, and the fit report.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::AnalyticsError;
use super::numeric::{Dual, Real, minimize, standard_errors};
use crate::analytics::Rfm;

/// How a fit went.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FitReport {
    /// The maximised log-likelihood of the data.
    pub log_likelihood: f64,
    /// Customers the model was fitted to.
    pub customers: usize,
    /// Optimiser iterations.
    pub iterations: usize,
    /// Asymptotic standard errors of the parameters, in the order the model lists them;
    /// `None` where the curvature could not be inverted (a flat likelihood).
    pub standard_errors: Option<Vec<f64>>,
}

/// Customers with the same history contribute the same term: each is computed once and
/// weighted. Real data, kept to whole days, has far fewer distinct histories than
/// customers.
#[derive(Debug)]
pub(crate) struct Groups {
    pub(crate) groups: Vec<Group>,
    pub(crate) customers: f64,
}

#[derive(Debug)]
pub(crate) struct Group {
    pub(crate) x: f64,
    pub(crate) tx: f64,
    pub(crate) t: f64,
    pub(crate) m: f64,
    pub(crate) weight: f64,
}

impl Groups {
    /// Frequency, recency and age, for the transaction models.
    pub(crate) fn new(summary: &[Rfm], model: &'static str) -> Result<Self, AnalyticsError> {
        for c in summary {
            check_history(c, model)?;
        }
        if !summary.iter().any(|c| c.frequency > 0) {
            return Err(AnalyticsError::InsufficientData {
                model,
                needed: "at least one customer with a repeat purchase",
            });
        }
        Ok(Self::grouped(
            summary
                .iter()
                .map(|c| (f64::from(c.frequency), c.recency, c.t, 0.0)),
        ))
    }

    /// Frequency and mean repeat spend of the customers with repeat purchases, for the
    /// spend model.
    pub(crate) fn spend(summary: &[Rfm], model: &'static str) -> Result<Self, AnalyticsError> {
        for c in summary.iter().filter(|c| c.frequency > 0) {
            if !(c.monetary.is_finite() && c.monetary > 0.0) {
                return Err(AnalyticsError::InvalidHistory {
                    customer: c.customer,
                    model,
                    problem: format!(
                        "mean repeat spend {} is not positive; leave such customers out",
                        c.monetary
                    ),
                });
            }
        }
        let groups = Self::grouped(
            summary
                .iter()
                .filter(|c| c.frequency > 0)
                .map(|c| (f64::from(c.frequency), 0.0, 0.0, c.monetary)),
        );
        if groups.customers < 2.0 {
            return Err(AnalyticsError::InsufficientData {
                model,
                needed: "at least two customers with repeat purchases",
            });
        }
        Ok(groups)
    }

    fn grouped(rows: impl Iterator<Item = (f64, f64, f64, f64)>) -> Self {
        let mut index: HashMap<[u64; 4], usize> = HashMap::new();
        let mut groups: Vec<Group> = Vec::new();
        let mut customers = 0.0;
        for (x, tx, t, m) in rows {
            customers += 1.0;
            let key = [x.to_bits(), tx.to_bits(), t.to_bits(), m.to_bits()];
            match index.get(&key) {
                Some(&i) => groups[i].weight += 1.0,
                None => {
                    index.insert(key, groups.len());
                    groups.push(Group {
                        x,
                        tx,
                        t,
                        m,
                        weight: 1.0,
                    });
                }
            }
        }
        // Ordered by frequency (then t_x), so the terms that depend only on it are computed
        // once per frequency, when its first group comes past.
        groups.sort_by(|a, b| a.x.total_cmp(&b.x).then(a.tx.total_cmp(&b.tx)));
        Self { groups, customers }
    }

    pub(crate) fn mean_frequency(&self) -> f64 {
        self.groups.iter().map(|g| g.x * g.weight).sum::<f64>() / self.customers
    }

    pub(crate) fn mean_t(&self) -> f64 {
        self.groups.iter().map(|g| g.t * g.weight).sum::<f64>() / self.customers
    }

    pub(crate) fn mean_spend(&self) -> f64 {
        self.groups.iter().map(|g| g.m * g.weight).sum::<f64>() / self.customers
    }
}

impl Groups {
    /// The weighted sum of `term` over the groups, where `shared` is what every group of
    /// one frequency has in common, computed from the first group of that frequency.
    pub(crate) fn sum_by_frequency<T: Real, S: Copy>(
        &self,
        mut shared: impl FnMut(&Group) -> S,
        mut term: impl FnMut(&Group, S) -> T,
    ) -> T {
        let mut total = T::constant(0.0);
        let mut current: Option<(f64, S)> = None;
        for group in &self.groups {
            let common = match current {
                Some((x, common)) if x == group.x => common,
                _ => {
                    let common = shared(group);
                    current = Some((group.x, common));
                    common
                }
            };
            total = total + term(group, common) * group.weight;
        }
        total
    }
}

fn check_history(c: &Rfm, model: &'static str) -> Result<(), AnalyticsError> {
    let problem = if !(c.t.is_finite() && c.recency.is_finite()) {
        Some("recency and T must be finite".to_owned())
    } else if c.recency < 0.0 || c.recency > c.t {
        Some(format!(
            "recency {} is not between 0 and T = {}",
            c.recency, c.t
        ))
    } else if c.frequency == 0 && c.recency != 0.0 {
        Some(format!("recency {} without a repeat purchase", c.recency))
    } else {
        None
    };
    match problem {
        Some(problem) => Err(AnalyticsError::InvalidHistory {
            customer: c.customer,
            model,
            problem,
        }),
        None => Ok(()),
    }
}

/// Fitted parameters outside this range are reported as degenerate.
const DEGENERATE_BELOW: f64 = 1e-4;
const DEGENERATE_ABOVE: f64 = 1e6;

/// Fits a model with `K` positive parameters by maximising `ln_likelihood` over their
/// logarithms, from the natural-scale guess `start`.
pub(crate) fn fit_model<const K: usize>(
    model: &'static str,
    names: [&'static str; K],
    groups: &Groups,
    start: [f64; K],
    ln_likelihood: impl Fn([Dual; K], &Groups) -> Dual,
) -> Result<([f64; K], FitReport), AnalyticsError> {
    let n = groups.customers;
    let objective = |theta: &[f64]| {
        // Parameters are exp(θ): the dual exponential carries dp/dθ = p along.
        let params: [Dual; K] = std::array::from_fn(|i| Dual::variable(theta[i], i).exp());
        let ll = ln_likelihood(params, groups);
        let value = -ll.value / n;
        let gradient = (0..K).map(|i| -ll.grad[i] / n).collect();
        (if value.is_finite() { value } else { f64::NAN }, gradient)
    };
    let start: Vec<f64> = start.iter().map(|p| p.ln()).collect();
    let found = minimize(objective, &start).map_err(|failure| AnalyticsError::NotConverged {
        model,
        iterations: failure.iterations,
        gradient_norm: failure.gradient_norm,
    })?;
    let params: [f64; K] = std::array::from_fn(|i| found.point[i].exp());
    // A parameter run off towards 0 or infinity means the likelihood peaks at the edge of
    // the model: the data cannot tell the parameters apart, and predictions from them
    // would be arbitrary.
    if let Some(i) = (0..K).find(|&i| !(DEGENERATE_BELOW..=DEGENERATE_ABOVE).contains(&params[i])) {
        return Err(AnalyticsError::Degenerate {
            model,
            parameter: names[i],
            value: params[i],
        });
    }
    let log_errors = standard_errors(|theta| objective(theta).1, &found.point, n);
    // From log-parameters back to parameters: se(p) = p · se(ln p), the delta method.
    let standard_errors =
        log_errors.map(|errors| errors.iter().zip(params).map(|(e, p)| e * p).collect());
    Ok((
        params,
        FitReport {
            log_likelihood: -found.value * n,
            customers: n as usize,
            iterations: found.iterations,
            standard_errors,
        },
    ))
}
