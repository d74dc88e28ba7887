//! The analytics against published results, simulated truth and independent numbers.
//!
//! `fixtures/cdnow_sample.csv` is the CDNOW sample of Fader & Hardie: the 1997-98
//! purchases of 2,357 customers of an online music store, the data set of the BG/NBD,
//! Pareto/NBD and Gamma-Gamma papers. With the first 39 weeks as calibration period the
//! papers report the parameters these tests expect.

use chrono::{NaiveDate, TimeZone, Utc};
use oneview::analytics::{
    AnalyticsError, BgNbd, ClvOptions, FitReport, GammaGamma, ParetoNbd, Rfm, RfmOptions,
    TransactionModel, customer_value, rank_by_clv, rfm_scores, rfm_summary,
};
use oneview::{Channel, Event};
use serde_json::json;

mod common;

fn cdnow() -> Vec<(String, Rfm)> {
    let customers = common::cdnow_customers();
    let end = NaiveDate::from_ymd_opt(1997, 9, 30).unwrap();
    let summary = rfm_summary(customers.store(), &RfmOptions::new(end)).unwrap();
    summary
        .into_iter()
        .map(|rfm| {
            let profile = customers.profile(rfm.customer).unwrap().unwrap();
            (profile.identifiers[0].value().to_owned(), rfm)
        })
        .collect()
}

fn near(found: f64, published: f64, tolerance: f64) -> bool {
    (found - published).abs() <= tolerance
}

#[test]
fn cdnow_summary_follows_the_conventions() {
    let data = cdnow();
    assert_eq!(
        data.len(),
        2_357,
        "every customer bought in the calibration period"
    );
    let of = |id: &str| &data.iter().find(|(i, _)| i == id).unwrap().1;
    // Customer 0001 bought on Jan 1, Jan 18 and Aug 2 before the end (and on Dec 12
    // after it).
    let first = of("0001");
    assert_eq!(first.frequency, 2);
    assert_eq!(first.recency, 213.0 / 7.0);
    assert_eq!(first.t, 272.0 / 7.0);
    assert!((first.monetary - (29.73 + 14.96) / 2.0).abs() < 1e-9);
    // Customer 0026 bought twice on Jan 13: one transaction of both amounts.
    let same_day = of("0026");
    assert_eq!(same_day.frequency, 1);
    assert!((same_day.monetary - (166.89 + 60.25)).abs() < 1e-9);
    let repeaters = data.iter().filter(|(_, rfm)| rfm.frequency > 0).count();
    assert_eq!(repeaters, 946, "the papers' count of repeat buyers");
}

/// Published CDNOW estimates: Fader, Hardie & Lee (2005) for BG/NBD and for Pareto/NBD
/// (their Table 1 reproduction of Schmittlein et al.), Fader & Hardie (2013) for
/// Gamma-Gamma.
#[test]
fn cdnow_reproduces_the_published_fits() {
    let summary: Vec<Rfm> = cdnow().into_iter().map(|(_, rfm)| rfm).collect();

    let (bg, report) = BgNbd::fit(&summary).unwrap();
    assert!(near(bg.r, 0.243, 5e-4), "{bg:?}");
    assert!(near(bg.alpha, 4.414, 5e-3), "{bg:?}");
    assert!(near(bg.a, 0.793, 5e-4), "{bg:?}");
    assert!(near(bg.b, 2.426, 5e-3), "{bg:?}");
    assert!(near(report.log_likelihood, -9582.4, 0.05), "{report:?}");
    assert!(near(
        bg.ln_likelihood(&summary),
        report.log_likelihood,
        1e-6
    ));
    assert_gradient_vanishes(
        |p| {
            BgNbd {
                r: p[0],
                alpha: p[1],
                a: p[2],
                b: p[3],
            }
            .ln_likelihood(&summary)
        },
        [bg.r, bg.alpha, bg.a, bg.b],
    );

    let (pareto, report) = ParetoNbd::fit(&summary).unwrap();
    assert!(near(pareto.r, 0.553, 5e-4), "{pareto:?}");
    assert!(near(pareto.alpha, 10.578, 5e-3), "{pareto:?}");
    assert!(near(pareto.s, 0.606, 5e-4), "{pareto:?}");
    assert!(near(pareto.beta, 11.669, 5e-3), "{pareto:?}");
    assert!(near(report.log_likelihood, -9595.0, 0.05), "{report:?}");
    assert_gradient_vanishes(
        |p| {
            ParetoNbd {
                r: p[0],
                alpha: p[1],
                s: p[2],
                beta: p[3],
            }
            .ln_likelihood(&summary)
        },
        [pareto.r, pareto.alpha, pareto.s, pareto.beta],
    );

    let (gg, report) = GammaGamma::fit(&summary).unwrap();
    assert!(near(gg.p, 6.25, 5e-3), "{gg:?}");
    assert!(near(gg.q, 3.74, 5e-3), "{gg:?}");
    assert!(near(gg.gamma, 15.44, 1e-2), "{gg:?}");
    assert_eq!(report.customers, 946);
    assert_gradient_vanishes(
        |p| {
            GammaGamma {
                p: p[0],
                q: p[1],
                gamma: p[2],
            }
            .ln_likelihood(&summary)
        },
        [gg.p, gg.q, gg.gamma],
    );
}

/// The log-likelihood is flat at a maximum: central differences in every parameter,
/// computed through the public log-likelihood rather than the optimiser's gradient.
fn assert_gradient_vanishes<const K: usize>(ll: impl Fn([f64; K]) -> f64, at: [f64; K]) {
    for i in 0..K {
        let h = at[i] * 1e-5;
        let mut up = at;
        let mut down = at;
        up[i] += h;
        down[i] -= h;
        let slope = (ll(up) - ll(down)) / (2.0 * h) * at[i];
        assert!(slope.abs() < 1e-2, "d ll / d ln p{i} = {slope} at {at:?}");
    }
}

mod simulate {
    //! Purchase histories drawn from the models' own stories, with known parameters.
    use oneview::CustomerId;
    use oneview::analytics::Rfm;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use rand_distr::{Beta, Distribution, Exp, Gamma};

    fn rfm(x: u32, tx: f64, t: f64, monetary: f64) -> Rfm {
        let day = chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        Rfm {
            customer: CustomerId::new(),
            frequency: x,
            recency: tx,
            t,
            monetary,
            first_purchase: day,
            last_purchase: day,
            revenue: monetary * f64::from(x),
        }
    }

    /// Ages spread over 20 to 40 units, as customers acquired over time are.
    fn age(rng: &mut StdRng) -> f64 {
        20.0 + 20.0 * rng.random::<f64>()
    }

    pub(crate) fn bgnbd(n: usize, [r, alpha, a, b]: [f64; 4], seed: u64) -> Vec<Rfm> {
        let mut rng = StdRng::seed_from_u64(seed);
        let rates = Gamma::new(r, 1.0 / alpha).unwrap();
        let dropout = Beta::new(a, b).unwrap();
        (0..n)
            .map(|_| {
                let (lambda, p, t) = (
                    rates.sample(&mut rng),
                    dropout.sample(&mut rng),
                    age(&mut rng),
                );
                let gap = Exp::new(lambda).unwrap();
                let (mut x, mut tx, mut now) = (0, 0.0, 0.0);
                loop {
                    now += gap.sample(&mut rng);
                    if now > t {
                        break;
                    }
                    x += 1;
                    tx = now;
                    if rng.random::<f64>() < p {
                        break;
                    }
                }
                rfm(x, tx, t, 0.0)
            })
            .collect()
    }

    pub(crate) fn pareto(n: usize, [r, alpha, s, beta]: [f64; 4], seed: u64) -> Vec<Rfm> {
        let mut rng = StdRng::seed_from_u64(seed);
        let rates = Gamma::new(r, 1.0 / alpha).unwrap();
        let deaths = Gamma::new(s, 1.0 / beta).unwrap();
        (0..n)
            .map(|_| {
                let (lambda, mu, t) = (
                    rates.sample(&mut rng),
                    deaths.sample(&mut rng),
                    age(&mut rng),
                );
                let end = Exp::new(mu).unwrap().sample(&mut rng).min(t);
                let gap = Exp::new(lambda).unwrap();
                let (mut x, mut tx, mut now) = (0, 0.0, 0.0);
                loop {
                    now += gap.sample(&mut rng);
                    if now > end {
                        break;
                    }
                    x += 1;
                    tx = now;
                }
                rfm(x, tx, t, 0.0)
            })
            .collect()
    }

    pub(crate) fn spend(n: usize, [p, q, gamma]: [f64; 3], seed: u64) -> Vec<Rfm> {
        let mut rng = StdRng::seed_from_u64(seed);
        let nus = Gamma::new(q, 1.0 / gamma).unwrap();
        (0..n)
            .map(|i| {
                let x = 1 + (i % 8) as u32;
                let amounts = Gamma::new(p, 1.0 / nus.sample(&mut rng)).unwrap();
                let total: f64 = (0..x).map(|_| amounts.sample(&mut rng)).sum();
                rfm(x, 1.0, 2.0, total / f64::from(x))
            })
            .collect()
    }
}

/// Each estimate within four standard errors of the truth it was simulated from.
fn assert_recovered(name: &str, found: &[f64], truth: &[f64], report: &FitReport) {
    let errors = report.standard_errors.as_ref().expect("standard errors");
    for ((f, t), se) in found.iter().zip(truth).zip(errors) {
        assert!(se.is_finite() && *se > 0.0, "{name}: standard error {se}");
        assert!(
            (f - t).abs() < 4.0 * se,
            "{name}: found {found:?}, truth {truth:?}, errors {errors:?}"
        );
    }
}

#[test]
fn bgnbd_recovers_simulated_parameters() {
    let truth = [0.25, 4.0, 0.8, 2.5];
    for seed in [1, 2] {
        let data = simulate::bgnbd(10_000, truth, seed);
        let (fit, report) = BgNbd::fit(&data).unwrap();
        assert_recovered("BG/NBD", &[fit.r, fit.alpha, fit.a, fit.b], &truth, &report);
    }
}

#[test]
fn pareto_nbd_recovers_simulated_parameters() {
    let truth = [0.55, 10.5, 0.6, 11.7];
    for seed in [3, 4] {
        let data = simulate::pareto(10_000, truth, seed);
        let (fit, report) = ParetoNbd::fit(&data).unwrap();
        assert_recovered(
            "Pareto/NBD",
            &[fit.r, fit.alpha, fit.s, fit.beta],
            &truth,
            &report,
        );
    }
}

#[test]
fn gamma_gamma_recovers_simulated_parameters() {
    let truth = [6.0, 3.8, 15.0];
    for seed in [5, 6] {
        let data = simulate::spend(5_000, truth, seed);
        let (fit, report) = GammaGamma::fit(&data).unwrap();
        assert_recovered("Gamma-Gamma", &[fit.p, fit.q, fit.gamma], &truth, &report);
    }
}

#[test]
fn fits_refuse_data_that_cannot_identify_them() {
    let nobody_returns: Vec<Rfm> = simulate::bgnbd(50, [0.25, 4.0, 0.8, 2.5], 9)
        .into_iter()
        .map(|mut c| {
            (c.frequency, c.recency) = (0, 0.0);
            c
        })
        .collect();
    assert!(matches!(
        BgNbd::fit(&nobody_returns),
        Err(AnalyticsError::InsufficientData { .. })
    ));
    assert!(matches!(
        ParetoNbd::fit(&[]),
        Err(AnalyticsError::InsufficientData { .. })
    ));
    assert!(matches!(
        GammaGamma::fit(&nobody_returns),
        Err(AnalyticsError::InsufficientData { .. })
    ));
    let mut impossible = simulate::bgnbd(50, [0.25, 4.0, 0.8, 2.5], 9);
    impossible[3].recency = impossible[3].t + 1.0;
    let err = BgNbd::fit(&impossible).unwrap_err();
    assert!(
        matches!(err, AnalyticsError::InvalidHistory { .. }),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains(&impossible[3].customer.to_string()),
        "{err}"
    );
}

/// The closed forms against numbers from the models' definitions, integrated numerically
/// over each customer's rates by `fixtures/reference_values.py` (mpmath), at the
/// published CDNOW parameters: (frequency, recency, T) → (P(alive), purchases expected in
/// the next 39 weeks). A new customer is expected to make the last value in 39 weeks.
#[test]
fn predictions_match_numerical_integration_of_the_models() {
    type Case = ((u32, f64, f64), (f64, f64));
    fn check(model: &impl TransactionModel, cases: &[Case], new_39: f64) {
        for &((x, tx, t), (p_alive, expected)) in cases {
            let found = model.p_alive(x, tx, t);
            assert!(
                (found - p_alive).abs() < 1e-9,
                "P(alive) for {x}, {tx}: {found} vs {p_alive}"
            );
            let found = model.expected_purchases(x, tx, t, 39.0);
            assert!(
                (found - expected).abs() < 1e-7 * expected,
                "E[Y(39)] for {x}, {tx}: {found} vs {expected}"
            );
        }
        let found = model.expected_purchases_new(39.0);
        assert!(
            (found - new_39).abs() < 1e-7 * new_39,
            "E[X(39)]: {found} vs {new_39}"
        );
        assert_eq!(model.expected_purchases(3, 10.0, 20.0, 0.0), 0.0);
    }
    let bg = BgNbd {
        r: 0.243,
        alpha: 4.414,
        a: 0.793,
        b: 2.426,
    };
    check(
        &bg,
        &[
            ((0, 0.0, 38.86), (1.0, 0.195098060485)),
            ((1, 1.71, 38.86), (0.212100985377, 0.20318698708)),
            ((2, 30.43, 38.86), (0.726578570081, 1.22602817477)),
            ((10, 34.14, 38.86), (0.815302153978, 5.93338254765)),
        ],
        1.19672319332,
    );
    let pareto = ParetoNbd {
        r: 0.553,
        alpha: 10.578,
        s: 0.606,
        beta: 11.669,
    };
    check(
        &pareto,
        &[
            ((0, 0.0, 38.86), (0.295286604617, 0.107081468215)),
            ((1, 1.71, 38.86), (0.168002326724, 0.171092980554)),
            ((2, 30.43, 38.86), (0.869167559153, 1.45512319326)),
            ((10, 34.14, 38.86), (0.901359534763, 6.23762748935)),
        ],
        1.21300284428,
    );
}

#[test]
fn expected_spend_leans_on_the_customer_as_they_buy_more() {
    let gg = GammaGamma {
        p: 6.25,
        q: 3.74,
        gamma: 15.44,
    };
    // Expected spend per purchase integrated numerically from the model's definition
    // (tests/fixtures/reference_values.py), not from its closed form.
    for (x, m, reference) in [
        (0, 0.0, 35.2189781022),
        (1, 20.0, 24.638487208),
        (2, 50.0, 47.342519685),
        (4, 80.0, 75.5767844268),
        (10, 35.0, 35.0091968118),
    ] {
        let spend = gg.expected_spend(x, m);
        assert!(
            (spend - reference).abs() < 1e-8 * reference,
            "x = {x}, m = {m}: {spend} against {reference}"
        );
    }
    let population = gg.expected_spend(0, 0.0);
    let mut previous = population;
    for x in 1..50 {
        let spend = gg.expected_spend(x, 80.0);
        assert!(
            spend > previous && spend < 80.0,
            "moves from the population mean towards 80"
        );
        previous = spend;
    }
}

#[test]
fn one_customers_value_matches_values_integrated_from_the_models() {
    // The published CDNOW estimates, and a customer with 2 repeat purchases averaging 50,
    // the last at week 30.43 of 38.86. Expected purchases and spend come from numerical
    // integration of the models' definitions (tests/fixtures/reference_values.py).
    let bg = BgNbd {
        r: 0.243,
        alpha: 4.414,
        a: 0.793,
        b: 2.426,
    };
    let gg = GammaGamma {
        p: 6.25,
        q: 3.74,
        gamma: 15.44,
    };
    let customer = Rfm {
        customer: oneview::CustomerId::new(),
        frequency: 2,
        recency: 30.43,
        t: 38.86,
        monetary: 50.0,
        first_purchase: NaiveDate::from_ymd_opt(1997, 1, 1).unwrap(),
        last_purchase: NaiveDate::from_ymd_opt(1997, 8, 1).unwrap(),
        revenue: 150.0,
    };
    // In a 39-week horizon, as the reference also gives in
    // `predictions_match_numerical_integration_of_the_models`.
    let (purchases_39, spend) = (1.22602817477, 47.342519685);
    // One period of 39 weeks at 1%: the period's purchases times spend, discounted once.
    let one = customer_value(
        &bg,
        &gg,
        &customer,
        &ClvOptions::new(1, 39.0, 0.01).unwrap(),
    );
    let expected = purchases_39 * spend / 1.01;
    assert!((one.expected_purchases - purchases_39).abs() < 1e-6);
    assert!((one.expected_spend - spend).abs() < 1e-6);
    assert!(
        (one.clv - expected).abs() < 1e-6 * expected,
        "{} against {expected}",
        one.clv
    );
    // Two periods of 19.5 weeks: 0.665 purchases in the first, the rest of the 1.226 in
    // the second, each discounted for its own period.
    let two = customer_value(
        &bg,
        &gg,
        &customer,
        &ClvOptions::new(2, 19.5, 0.01).unwrap(),
    );
    let expected = 57.208251399;
    assert!((two.expected_purchases - purchases_39).abs() < 1e-6);
    assert!(
        (two.clv - expected).abs() < 1e-6 * expected,
        "{} against {expected}",
        two.clv
    );
}

#[test]
fn clv_discounts_and_ranks() {
    let summary: Vec<Rfm> = cdnow().into_iter().map(|(_, rfm)| rfm).collect();
    let (bg, _) = BgNbd::fit(&summary).unwrap();
    let (gg, _) = GammaGamma::fit(&summary).unwrap();
    let undiscounted = rank_by_clv(&bg, &gg, &summary, &ClvOptions::new(12, 4.35, 0.0).unwrap());
    let discounted = rank_by_clv(
        &bg,
        &gg,
        &summary,
        &ClvOptions::new(12, 4.35, 0.01).unwrap(),
    );
    assert_eq!(undiscounted.len(), summary.len());
    assert!(
        undiscounted.windows(2).all(|w| w[0].clv >= w[1].clv),
        "best first"
    );
    for value in &undiscounted {
        let later = discounted
            .iter()
            .find(|d| d.customer == value.customer)
            .unwrap();
        assert!(
            later.clv < value.clv || value.clv == 0.0,
            "discounting lowers value"
        );
    }
    assert!(ClvOptions::new(0, 4.35, 0.01).is_err());
    assert!(ClvOptions::new(12, -1.0, 0.01).is_err());
    assert!(ClvOptions::new(12, 4.35, -1.0).is_err());
}

#[test]
fn scores_rank_the_cdnow_customers_into_segments() {
    let summary: Vec<Rfm> = cdnow().into_iter().map(|(_, rfm)| rfm).collect();
    let scores = rfm_scores(&summary);
    assert_eq!(scores.len(), summary.len());
    let most_frequent = summary.iter().map(|c| c.frequency).max().unwrap();
    for (c, score) in summary.iter().zip(&scores) {
        assert!((1..=5).contains(&score.recency) && (1..=5).contains(&score.frequency));
        if c.frequency == most_frequent {
            assert_eq!(score.frequency, 5);
        }
        if c.frequency == 0 {
            assert_eq!(score.frequency, 1, "one-time buyers share the lowest score");
        }
    }
    // Scores only depend on order: a later purchase never lowers the recency score.
    for (a, sa) in summary.iter().zip(&scores) {
        for (b, sb) in summary.iter().zip(&scores).take(200) {
            if a.time_since_last() < b.time_since_last() {
                assert!(sa.recency >= sb.recency);
            }
        }
    }
}

#[test]
fn a_fit_the_data_cannot_identify_is_refused_not_returned() {
    // Every repeat buyer bought on the last day: nobody ever seems to leave, so the
    // dropout parameters run off to the edge of the model.
    let data: Vec<Rfm> = simulate::bgnbd(400, [0.25, 4.0, 0.8, 2.5], 11)
        .into_iter()
        .map(|mut c| {
            if c.frequency > 0 {
                c.recency = c.t;
            }
            c
        })
        .collect();
    let err = BgNbd::fit(&data).unwrap_err();
    assert!(
        matches!(
            err,
            AnalyticsError::Degenerate {
                model: "BG/NBD",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn summaries_cut_at_the_calibration_end_in_the_chosen_offset() {
    use chrono::FixedOffset;
    use oneview::analytics::{TimeUnit, summarize};
    use oneview::store::Attributed;

    let customer = oneview::CustomerId::new();
    let order = |day: u32, hour: u32, amount: f64, name: &str| Attributed {
        customer,
        record: Event::builder("shop", Channel::Store, name)
            .occurred_at(Utc.with_ymd_and_hms(2026, 3, day, hour, 0, 0).unwrap())
            .properties(json!({ "total": amount }))
            .build()
            .unwrap(),
    };
    let stream = |events: &[Attributed<Event>]| events.iter().cloned().map(Ok).collect::<Vec<_>>();
    let events = vec![
        order(1, 10, 10.0, "Purchase"),
        order(1, 23, 5.0, "Purchase"), // 2 March in UTC+2: a second day
        order(3, 9, 99.0, "Page Viewed"), // not a purchase
        order(4, 12, 20.0, "Purchase"),
        order(9, 12, 50.0, "Purchase"), // after the end
    ];
    let options = RfmOptions::new(NaiveDate::from_ymd_opt(2026, 3, 8).unwrap())
        .purchase_event("Purchase")
        .revenue_property("total")
        .time_unit(TimeUnit::Days);
    let utc = summarize(stream(&events), &options).unwrap();
    assert_eq!((utc[0].frequency, utc[0].recency, utc[0].t), (1, 3.0, 7.0));
    assert_eq!((utc[0].monetary, utc[0].revenue), (20.0, 35.0));

    let east = options.utc_offset(FixedOffset::east_opt(2 * 3600).unwrap());
    let shifted = summarize(stream(&events), &east).unwrap();
    assert_eq!((shifted[0].frequency, shifted[0].monetary), (2, 12.5));

    let mut backwards = events;
    backwards.swap(0, 3);
    let err = summarize(stream(&backwards), &east).unwrap_err();
    assert!(matches!(err, AnalyticsError::Unordered { .. }), "{err}");
    let zero_days = RfmOptions::new(NaiveDate::from_ymd_opt(2026, 3, 8).unwrap())
        .time_unit(TimeUnit::DaysPer(0.0));
    assert!(matches!(
        summarize(stream(&[]), &zero_days),
        Err(AnalyticsError::InvalidOption {
            option: "time_unit",
            ..
        })
    ));
}
