//! Fit times of the customer-value models.
//!
//! `cargo bench --bench clv` simulates purchase histories for 2,500 and for 250,000
//! customers (BG/NBD behaviour with the published CDNOW parameters, customers acquired
//! over 12 weeks and observed for 39, times kept to whole days as an event log keeps
//! them) and fits BG/NBD, Pareto/NBD and Gamma-Gamma to each. Fit times are medians of
//! several runs, and include the standard errors. Everything ends as one JSON line.

use std::time::Instant;

use oneview::CustomerId;
use oneview::analytics::{BgNbd, GammaGamma, ParetoNbd, Rfm};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Beta, Distribution, Exp, Gamma};
use serde_json::json;

fn simulate(n: usize, seed: u64) -> Vec<Rfm> {
    let (r, alpha, a, b) = (0.243, 4.414, 0.793, 2.426);
    let (p, q, gamma) = (6.25, 3.74, 15.44);
    let mut rng = StdRng::seed_from_u64(seed);
    let rates = Gamma::new(r, 1.0 / alpha).unwrap();
    let dropout = Beta::new(a, b).unwrap();
    let nus = Gamma::new(q, 1.0 / gamma).unwrap();
    let day = chrono::NaiveDate::from_ymd_opt(1997, 1, 1).unwrap();
    let whole_days = |weeks: f64| (weeks * 7.0).floor() / 7.0;
    (0..n)
        .map(|_| {
            let t = whole_days(39.0 - 12.0 * rng.random::<f64>());
            let (lambda, drop) = (rates.sample(&mut rng), dropout.sample(&mut rng));
            let gap = Exp::new(lambda).unwrap();
            let amounts = Gamma::new(p, 1.0 / nus.sample(&mut rng)).unwrap();
            let (mut x, mut tx, mut now, mut spent) = (0u32, 0.0, 0.0, 0.0);
            loop {
                now += gap.sample(&mut rng);
                if now > t {
                    break;
                }
                x += 1;
                tx = whole_days(now);
                spent += amounts.sample(&mut rng);
                if rng.random::<f64>() < drop {
                    break;
                }
            }
            Rfm {
                customer: CustomerId::new(),
                frequency: x,
                recency: tx,
                t,
                monetary: if x > 0 { spent / f64::from(x) } else { 0.0 },
                first_purchase: day,
                last_purchase: day,
                revenue: spent,
            }
        })
        .collect()
}

fn median_ms(runs: usize, mut fit: impl FnMut()) -> f64 {
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            let began = Instant::now();
            fit();
            began.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[runs / 2]
}

fn round(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

fn main() {
    let mut results = serde_json::Map::new();
    let mut per_customer = Vec::new();
    for (n, runs) in [(2_500, 21), (250_000, 3)] {
        let data = simulate(n, 42);
        let bgnbd = median_ms(runs, || {
            BgNbd::fit(&data).expect("BG/NBD fits");
        });
        let pareto = median_ms(runs, || {
            ParetoNbd::fit(&data).expect("Pareto/NBD fits");
        });
        let gamma_gamma = median_ms(runs, || {
            GammaGamma::fit(&data).expect("Gamma-Gamma fits");
        });
        println!(
            "{n} customers: BG/NBD {bgnbd:.2} ms, Pareto/NBD {pareto:.2} ms, Gamma-Gamma {gamma_gamma:.2} ms"
        );
        per_customer.push([bgnbd, pareto, gamma_gamma].map(|ms| ms / n as f64));
        results.insert(
            n.to_string(),
            json!({
                "bgnbd_fit_ms": round(bgnbd),
                "pareto_nbd_fit_ms": round(pareto),
                "gamma_gamma_fit_ms": round(gamma_gamma),
            }),
        );
    }
    // Linear growth keeps the time per customer level: this ratio near 1 (or below,
    // as identical histories are computed once).
    let growth: Vec<f64> = (0..3)
        .map(|i| round(per_customer[1][i] / per_customer[0][i]))
        .collect();
    println!(
        "{}",
        json!({
            "customers": results,
            "time_per_customer_ratio_250000_vs_2500": {
                "bgnbd": growth[0], "pareto_nbd": growth[1], "gamma_gamma": growth[2],
            },
        })
    );
}
