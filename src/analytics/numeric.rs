//! The numerics under the models: forward-mode derivatives, the Gauss hypergeometric
//! series, and a quasi-Newton minimiser.
//!
//! Every log-likelihood is written once, generic over [`Real`], and evaluated either on
//! plain `f64` (for the value) or on [`Dual`] (for the value and its exact gradient in one
//! pass). Exact gradients let BFGS converge in a few dozen steps where finite differences
//! would need several evaluations per step.

// Small dense matrices read most clearly with the indices of their textbook formulas.
#![allow(clippy::needless_range_loop)]

use std::ops::{Add, Div, Mul, Neg, Sub};

use statrs::function::gamma::{digamma, ln_gamma};

/// The most parameters any model has.
pub(crate) const MAX_PARAMS: usize = 4;

/// A number the log-likelihoods can be computed in.
pub(crate) trait Real:
    Copy
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + Add<f64, Output = Self>
    + Sub<f64, Output = Self>
    + Mul<f64, Output = Self>
    + Div<f64, Output = Self>
{
    fn constant(value: f64) -> Self;
    fn value(self) -> f64;
    fn ln(self) -> Self;
    fn exp(self) -> Self;
    fn exp_m1(self) -> Self;
    fn ln_1p(self) -> Self;
    fn ln_gamma(self) -> Self;
}

impl Real for f64 {
    fn constant(value: f64) -> Self {
        value
    }
    fn value(self) -> f64 {
        self
    }
    fn ln(self) -> Self {
        f64::ln(self)
    }
    fn exp(self) -> Self {
        f64::exp(self)
    }
    fn exp_m1(self) -> Self {
        f64::exp_m1(self)
    }
    fn ln_1p(self) -> Self {
        f64::ln_1p(self)
    }
    fn ln_gamma(self) -> Self {
        ln_gamma(self)
    }
}

/// A value with its partial derivatives with respect to up to [`MAX_PARAMS`] parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Dual {
    pub(crate) value: f64,
    pub(crate) grad: [f64; MAX_PARAMS],
}

impl Dual {
    /// Parameter `index` of a model, with value `value`.
    pub(crate) fn variable(value: f64, index: usize) -> Self {
        let mut grad = [0.0; MAX_PARAMS];
        grad[index] = 1.0;
        Self { value, grad }
    }

    /// Applies a function with value `value` and derivative `slope` at `self.value`.
    fn chain(self, value: f64, slope: f64) -> Self {
        Self {
            value,
            grad: self.grad.map(|g| g * slope),
        }
    }

    fn zip(self, other: Self, value: f64, ds: f64, do_: f64) -> Self {
        let mut grad = [0.0; MAX_PARAMS];
        for (i, slot) in grad.iter_mut().enumerate() {
            *slot = self.grad[i] * ds + other.grad[i] * do_;
        }
        Self { value, grad }
    }
}

impl Add for Dual {
    type Output = Self;
    fn add(self, other: Self) -> Self {
        self.zip(other, self.value + other.value, 1.0, 1.0)
    }
}

impl Sub for Dual {
    type Output = Self;
    fn sub(self, other: Self) -> Self {
        self.zip(other, self.value - other.value, 1.0, -1.0)
    }
}

impl Mul for Dual {
    type Output = Self;
    fn mul(self, other: Self) -> Self {
        self.zip(other, self.value * other.value, other.value, self.value)
    }
}

impl Div for Dual {
    type Output = Self;
    fn div(self, other: Self) -> Self {
        let value = self.value / other.value;
        self.zip(other, value, 1.0 / other.value, -value / other.value)
    }
}

impl Neg for Dual {
    type Output = Self;
    fn neg(self) -> Self {
        self.chain(-self.value, -1.0)
    }
}

impl Add<f64> for Dual {
    type Output = Self;
    fn add(self, other: f64) -> Self {
        Self {
            value: self.value + other,
            grad: self.grad,
        }
    }
}

impl Sub<f64> for Dual {
    type Output = Self;
    fn sub(self, other: f64) -> Self {
        self + -other
    }
}

impl Mul<f64> for Dual {
    type Output = Self;
    fn mul(self, other: f64) -> Self {
        self.chain(self.value * other, other)
    }
}

impl Div<f64> for Dual {
    type Output = Self;
    fn div(self, other: f64) -> Self {
        self * (1.0 / other)
    }
}

impl Real for Dual {
    fn constant(value: f64) -> Self {
        Self {
            value,
            grad: [0.0; MAX_PARAMS],
        }
    }
    fn value(self) -> f64 {
        self.value
    }
    fn ln(self) -> Self {
        self.chain(self.value.ln(), 1.0 / self.value)
    }
    fn exp(self) -> Self {
        let e = self.value.exp();
        self.chain(e, e)
    }
    fn exp_m1(self) -> Self {
        self.chain(self.value.exp_m1(), self.value.exp())
    }
    fn ln_1p(self) -> Self {
        self.chain(self.value.ln_1p(), 1.0 / (1.0 + self.value))
    }
    fn ln_gamma(self) -> Self {
        self.chain(ln_gamma(self.value), digamma(self.value))
    }
}

/// `ln(e^a + e^b)` without overflow.
pub(crate) fn ln_add_exp<T: Real>(a: T, b: T) -> T {
    let (high, low) = if a.value() >= b.value() {
        (a, b)
    } else {
        (b, a)
    };
    if low.value() == f64::NEG_INFINITY {
        return high;
    }
    high + (low - high).exp().ln_1p()
}

/// `ln(1 - e^x)` for `x < 0`, accurate near both ends.
pub(crate) fn ln_1m_exp<T: Real>(x: T) -> T {
    if x.value() > -std::f64::consts::LN_2 {
        (-(x.exp_m1())).ln()
    } else {
        (-(x.exp())).ln_1p()
    }
}

/// `ln(1 + e^x)`, the softplus, without overflow.
pub(crate) fn softplus<T: Real>(x: T) -> T {
    if x.value() > 0.0 {
        x + (-x).exp().ln_1p()
    } else {
        x.exp().ln_1p()
    }
}

/// How many terms the hypergeometric series may take before it is declared divergent.
const MAX_SERIES_TERMS: usize = 200_000;

/// The Gauss hypergeometric function `2F1(a, b; c; z)` for `0 <= z < 1`, summed as its
/// power series until a term no longer changes the sum. `None` if `z` is outside that
/// range, a term is not finite, or the series has not settled after many terms.
pub(crate) fn hyp2f1<T: Real>(a: T, b: T, c: T, z: T) -> Option<T> {
    if !(0.0..1.0).contains(&z.value()) {
        return None;
    }
    let mut term = T::constant(1.0);
    let mut sum = T::constant(1.0);
    for k in 0..MAX_SERIES_TERMS {
        let k = k as f64;
        term = term * (a + k) * (b + k) / ((c + k) * (k + 1.0)) * z;
        sum = sum + term;
        if !sum.value().is_finite() {
            return None;
        }
        if term.value().abs() <= 1e-16 * sum.value().abs() {
            return Some(sum);
        }
    }
    None
}

/// Where a minimisation ended.
#[derive(Clone, Debug)]
pub(crate) struct Minimum {
    pub(crate) point: Vec<f64>,
    pub(crate) value: f64,
    pub(crate) iterations: usize,
}

/// Why a minimisation failed.
#[derive(Clone, Debug)]
pub(crate) struct NoMinimum {
    pub(crate) iterations: usize,
    pub(crate) gradient_norm: f64,
}

const MAX_ITERATIONS: usize = 1_000;
/// Converged when no gradient component exceeds this (objectives are per-customer means).
const GRADIENT_TOLERANCE: f64 = 1e-7;

/// Minimises `f` from `start` by BFGS with a backtracking line search. `f` returns the
/// value and the gradient; a non-finite value counts as infinitely bad, so an objective
/// may refuse a region by returning NaN there.
pub(crate) fn minimize(
    f: impl Fn(&[f64]) -> (f64, Vec<f64>),
    start: &[f64],
) -> Result<Minimum, NoMinimum> {
    let n = start.len();
    let mut x = start.to_vec();
    let (mut fx, mut g) = f(&x);
    if !fx.is_finite() {
        return Err(NoMinimum {
            iterations: 0,
            gradient_norm: f64::NAN,
        });
    }
    let mut inverse_hessian = identity(n);
    let mut stalled = 0;
    for iteration in 0..MAX_ITERATIONS {
        let norm = max_abs(&g);
        if norm < GRADIENT_TOLERANCE {
            return Ok(Minimum {
                point: x,
                value: fx,
                iterations: iteration,
            });
        }
        let mut direction: Vec<f64> = (0..n)
            .map(|i| -(0..n).map(|j| inverse_hessian[i][j] * g[j]).sum::<f64>())
            .collect();
        let mut slope = dot(&direction, &g);
        if slope >= 0.0 {
            // The curvature estimate went bad: fall back to steepest descent.
            inverse_hessian = identity(n);
            direction = g.iter().map(|gi| -gi).collect();
            slope = -dot(&g, &g);
        }
        // Never move a log-parameter by more than a few units in one step.
        let longest = max_abs(&direction);
        let mut step = if longest > 4.0 { 4.0 / longest } else { 1.0 };
        let accepted = loop {
            let candidate: Vec<f64> = (0..n).map(|i| x[i] + step * direction[i]).collect();
            let (fc, gc) = f(&candidate);
            if fc.is_finite() && fc <= fx + 1e-4 * step * slope {
                break Some((candidate, fc, gc));
            }
            step *= 0.5;
            if step < 1e-12 {
                break None;
            }
        };
        let Some((next, f_next, g_next)) = accepted else {
            // No descent left along any direction we can compute: at a minimum to
            // machine precision if the gradient is small, otherwise stuck.
            if norm < 1e3 * GRADIENT_TOLERANCE {
                return Ok(Minimum {
                    point: x,
                    value: fx,
                    iterations: iteration,
                });
            }
            return Err(NoMinimum {
                iterations: iteration,
                gradient_norm: norm,
            });
        };
        let s: Vec<f64> = (0..n).map(|i| next[i] - x[i]).collect();
        let y: Vec<f64> = (0..n).map(|i| g_next[i] - g[i]).collect();
        let sy = dot(&s, &y);
        if sy > 1e-12 * dot(&s, &s).sqrt() * dot(&y, &y).sqrt() {
            if iteration == 0 {
                // Scale the first guess of the inverse Hessian to the observed curvature.
                let scale = sy / dot(&y, &y);
                inverse_hessian = identity(n);
                inverse_hessian.iter_mut().for_each(|row| {
                    row.iter_mut().for_each(|v| *v *= scale);
                });
            }
            bfgs_update(&mut inverse_hessian, &s, &y, sy);
        }
        stalled = if (fx - f_next).abs() <= 1e-15 * fx.abs().max(1.0) {
            stalled + 1
        } else {
            0
        };
        x = next;
        fx = f_next;
        g = g_next;
        if stalled >= 5 && max_abs(&g) < 1e3 * GRADIENT_TOLERANCE {
            return Ok(Minimum {
                point: x,
                value: fx,
                iterations: iteration + 1,
            });
        }
    }
    Err(NoMinimum {
        iterations: MAX_ITERATIONS,
        gradient_norm: max_abs(&g),
    })
}

fn bfgs_update(h: &mut [Vec<f64>], s: &[f64], y: &[f64], sy: f64) {
    let n = s.len();
    let hy: Vec<f64> = (0..n)
        .map(|i| (0..n).map(|j| h[i][j] * y[j]).sum())
        .collect();
    let yhy = dot(y, &hy);
    let rho = 1.0 / sy;
    for i in 0..n {
        for j in 0..n {
            h[i][j] += rho * ((1.0 + rho * yhy) * s[i] * s[j] - hy[i] * s[j] - s[i] * hy[j]);
        }
    }
}

fn identity(n: usize) -> Vec<Vec<f64>> {
    (0..n)
        .map(|i| (0..n).map(|j| if i == j { 1.0 } else { 0.0 }).collect())
        .collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn max_abs(v: &[f64]) -> f64 {
    v.iter().fold(0.0, |m, x| m.max(x.abs()))
}

/// Standard errors of the minimiser `point` of a per-observation mean objective over
/// `observations` observations: the square roots of the diagonal of the inverse Hessian
/// (by forward differences of the exact gradient), divided by `observations`.
pub(crate) fn standard_errors(
    gradient: impl Fn(&[f64]) -> Vec<f64>,
    point: &[f64],
    observations: f64,
) -> Option<Vec<f64>> {
    let n = point.len();
    // Forward differences: half the gradient evaluations of central ones, and an error
    // of order h, far below what a standard error needs.
    let h = 1e-6;
    let at = gradient(point);
    let mut hessian = vec![vec![0.0; n]; n];
    for j in 0..n {
        let mut up = point.to_vec();
        up[j] += h;
        let shifted = gradient(&up);
        for i in 0..n {
            hessian[i][j] = (shifted[i] - at[i]) / h;
        }
    }
    for i in 0..n {
        for j in 0..i {
            let mean = (hessian[i][j] + hessian[j][i]) / 2.0;
            hessian[i][j] = mean;
            hessian[j][i] = mean;
        }
    }
    let inverse = invert(hessian)?;
    (0..n)
        .map(|i| {
            let variance = inverse[i][i] / observations;
            (variance.is_finite() && variance >= 0.0).then(|| variance.sqrt())
        })
        .collect()
}

/// Gauss-Jordan inversion with partial pivoting; `None` if singular.
fn invert(mut m: Vec<Vec<f64>>) -> Option<Vec<Vec<f64>>> {
    let n = m.len();
    let mut inverse = identity(n);
    for col in 0..n {
        let pivot = (col..n).max_by(|&a, &b| m[a][col].abs().total_cmp(&m[b][col].abs()))?;
        if m[pivot][col].abs() < 1e-300 {
            return None;
        }
        m.swap(col, pivot);
        inverse.swap(col, pivot);
        let p = m[col][col];
        for j in 0..n {
            m[col][j] /= p;
            inverse[col][j] /= p;
        }
        for row in 0..n {
            if row != col {
                let factor = m[row][col];
                for j in 0..n {
                    m[row][j] -= factor * m[col][j];
                    inverse[row][j] -= factor * inverse[col][j];
                }
            }
        }
    }
    Some(inverse)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tolerance: f64) -> bool {
        (a - b).abs() <= tolerance * b.abs().max(1.0)
    }

    #[test]
    fn hyp2f1_matches_closed_forms() {
        for z in [0.0, 0.1, 0.5, 0.9, 0.99] {
            // 2F1(1, 1; 2; z) = -ln(1 - z) / z
            let expected = if z == 0.0 { 1.0 } else { -(1.0 - z).ln() / z };
            assert!(close(hyp2f1(1.0, 1.0, 2.0, z).unwrap(), expected, 1e-12));
            // 2F1(a, b; b; z) = (1 - z)^-a
            let expected = (1.0 - z).powf(-2.5);
            assert!(close(hyp2f1(2.5, 0.7, 0.7, z).unwrap(), expected, 1e-12));
            // 2F1(1/2, 1/2; 3/2; z^2) = asin(z) / z
            let expected = if z == 0.0 { 1.0 } else { z.asin() / z };
            assert!(close(
                hyp2f1(0.5, 0.5, 1.5, z * z).unwrap(),
                expected,
                1e-12
            ));
        }
        assert!(hyp2f1(1.0, 1.0, 2.0, 1.0).is_none());
        assert!(hyp2f1(1.0, 1.0, 2.0, -0.1).is_none());
    }

    #[test]
    fn dual_derivatives_match_finite_differences() {
        let f = |x: Dual, y: Dual| {
            (x * y).ln_gamma() + ln_add_exp(x, y.ln()) + softplus(x - y * 3.0) - ln_1m_exp(-(x / y))
                + hyp2f1(x, y, x + 1.0, Dual::constant(0.3)).unwrap()
        };
        let (x0, y0) = (1.7, 0.9);
        let value = f(Dual::variable(x0, 0), Dual::variable(y0, 1));
        let plain = |x: f64, y: f64| f(Dual::constant(x), Dual::constant(y)).value;
        let h = 1e-6;
        let dx = (plain(x0 + h, y0) - plain(x0 - h, y0)) / (2.0 * h);
        let dy = (plain(x0, y0 + h) - plain(x0, y0 - h)) / (2.0 * h);
        assert!(close(value.grad[0], dx, 1e-6), "{} vs {dx}", value.grad[0]);
        assert!(close(value.grad[1], dy, 1e-6), "{} vs {dy}", value.grad[1]);
    }

    #[test]
    fn stable_helpers_do_not_overflow() {
        assert!(close(ln_add_exp(1000.0, 1000.0), 1000.0 + 2f64.ln(), 1e-15));
        assert!(close(softplus(800.0), 800.0, 1e-15));
        assert!(close(softplus(-800.0), 0.0, 1e-15));
        assert!(close(ln_1m_exp(-1e-10), (1e-10f64).ln(), 1e-6));
        assert!(close(ln_1m_exp(-50.0), -(-50f64).exp(), 1e-12));
    }

    #[test]
    fn bfgs_finds_the_minimum_of_a_curved_valley() {
        // Rosenbrock's function: minimum 0 at (1, 1), a narrow curved valley.
        let f = |p: &[f64]| {
            let (x, y) = (p[0], p[1]);
            let value = (1.0 - x).powi(2) + 100.0 * (y - x * x).powi(2);
            let gradient = vec![
                -2.0 * (1.0 - x) - 400.0 * x * (y - x * x),
                200.0 * (y - x * x),
            ];
            (value, gradient)
        };
        let found = minimize(f, &[-1.2, 1.0]).expect("converges");
        assert!(close(found.point[0], 1.0, 1e-5) && close(found.point[1], 1.0, 1e-5));
        let errors = standard_errors(|p| f(p).1, &found.point, 1.0).expect("invertible");
        // The inverse Hessian of Rosenbrock's function at (1, 1) has diagonal 0.5, 2.005.
        assert!(close(errors[0], 0.5f64.sqrt(), 1e-3), "{errors:?}");
        assert!(close(errors[1], 2.005f64.sqrt(), 1e-3), "{errors:?}");
    }

    #[test]
    fn bfgs_reports_an_objective_it_cannot_minimise() {
        let unbounded = |p: &[f64]| (-p[0], vec![-1.0]);
        assert!(minimize(unbounded, &[0.0]).is_err());
        let nowhere_finite = |_: &[f64]| (f64::NAN, vec![0.0]);
        assert!(minimize(nowhere_finite, &[0.0]).is_err());
    }
}
