//! Personas, segments, customer value and the next best action on one customer view.
//!
//! ```sh
//! cargo run --release --example personalise -- [--json] [--segments FILE.json] [--svg FILE]
//! ```
//!
//! Loads the CDNOW purchases (`tests/fixtures/cdnow_sample.csv`, 2,357 customers of an
//! online music store, 1997-98) into a SQLite store with generated web visits, email
//! opens and marketing consent; fits BG/NBD and Gamma-Gamma and writes each customer's
//! value onto their profile; then prints the size of five segments, and for the most
//! valuable customer at risk their persona, segments with the reasons, value traits and
//! next best action.
//!
//! The segments are also kept live (`Customers::with_live_segments`): the sizes are
//! printed as evaluated and as the live membership holds them, which agree.
//!
//! `--segments FILE.json` evaluates the segments in the file (a JSON array of
//! `{"name": .., "rule": ..}` in the rule language's JSON form) instead of the built-in
//! ones; `--json` prints `{"profiles":..,"segments":{"name":size,..},"eval_ms":..}` as one
//! line; `--svg FILE` draws the segment sizes month by month.

use std::collections::BTreeMap;
use std::error::Error;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use oneview::analytics::{BgNbd, ClvOptions, GammaGamma, RfmOptions, rfm_summary};
use oneview::audience::{
    Action, Comparison, EventFilter, FrequencyCap, Persona, Playbook, Rule, Segment,
};
use oneview::{
    Channel, ConsentChoice, ConsentStatus, CustomerId, Customers, Event, IdentifierKind, Purpose,
    Record, SqliteStore,
};
use serde_json::json;

const USAGE: &str = "usage: personalise [--json] [--segments FILE.json] [--svg FILE]";

/// How many customers the live membership holds in `segment`.
fn live_size(customers: &Customers<SqliteStore>, segment: &str) -> Result<usize, Box<dyn Error>> {
    let mut total = 0;
    let mut after = None;
    loop {
        let page = customers.live_members(segment, after, 1000)?;
        total += page.members.len();
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(total),
        }
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("personalise: {err}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn Error>> {
    let mut json_out = false;
    let mut segments_file: Option<PathBuf> = None;
    let mut svg: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--json" => json_out = true,
            "--segments" => segments_file = Some(args.next().ok_or(USAGE)?.into()),
            "--svg" => svg = Some(args.next().ok_or(USAGE)?.into()),
            _ => return Err(USAGE.into()),
        }
    }
    let segments: Vec<Segment> = match &segments_file {
        Some(path) => serde_json::from_str(&std::fs::read_to_string(path)?)?,
        None => built_in_segments(),
    };
    for segment in &segments {
        segment
            .validate()
            .map_err(|err| format!("segment {:?}: {err}", segment.name))?;
    }

    let end = NaiveDate::from_ymd_opt(1998, 6, 30).ok_or("a date")?;
    let as_of = Utc.from_utc_datetime(&end.and_hms_opt(23, 59, 59).ok_or("a time")?);
    let scratch = tempfile::tempdir()?;
    // The segments are also kept live, decided as each record lands; the history is
    // replayed as of its last day, so the live membership is that day's.
    let customers = Customers::new(SqliteStore::open(scratch.path().join("customers.db"))?)
        .with_clock(move || as_of)
        .with_live_segments(segments.clone(), Vec::new())?;
    customers.ingest_batch(records()?)?;

    // Customer value onto every profile, from the models fitted to the whole log.
    let summary = rfm_summary(customers.store(), &RfmOptions::new(end))?;
    let (purchases, _) = BgNbd::fit(&summary)?;
    let (spend, _) = GammaGamma::fit(&summary)?;
    let options = ClvOptions::new(12, 4.35, 0.01)?;
    customers.write_customer_value(&summary, "bg_nbd", &purchases, &spend, &options, as_of)?;

    let ids: Vec<CustomerId> = summary.iter().map(|c| c.customer).collect();
    let started = Instant::now();
    let sizes = sizes_at(&customers, &ids, &segments, as_of)?;
    let eval_ms = started.elapsed().as_secs_f64() * 1e3;
    let live_sizes = segments
        .iter()
        .map(|s| live_size(&customers, &s.name))
        .collect::<Result<Vec<usize>, _>>()?;

    if let Some(path) = &svg {
        let mut months = Vec::new();
        let mut month = NaiveDate::from_ymd_opt(1997, 3, 31).ok_or("a date")?;
        while month <= end {
            let at = Utc.from_utc_datetime(&month.and_hms_opt(23, 59, 59).ok_or("a time")?);
            months.push((month, sizes_at(&customers, &ids, &segments, at)?));
            month = last_day_of_next_month(month);
        }
        std::fs::write(path, chart(&segments, &months))?;
    }

    if json_out {
        let named: BTreeMap<&str, usize> = segments
            .iter()
            .zip(&sizes)
            .map(|(s, n)| (s.name.as_str(), *n))
            .collect();
        let live: BTreeMap<&str, usize> = segments
            .iter()
            .zip(&live_sizes)
            .map(|(s, n)| (s.name.as_str(), *n))
            .collect();
        println!(
            "{}",
            json!({
                "profiles": ids.len(),
                "segments": named,
                "live_segments": live,
                "eval_ms": (eval_ms * 10.0).round() / 10.0,
            })
        );
        return Ok(());
    }

    println!(
        "{} customers, as of {end}\n\nSegments:{:>25}{:>7}",
        ids.len(),
        "evaluated",
        "live"
    );
    for ((segment, size), live) in segments.iter().zip(&sizes).zip(&live_sizes) {
        println!("  {:<28} {size:>5} {live:>6}", segment.name);
    }
    println!("  (evaluated in {eval_ms:.0} ms; live: kept up to date as records landed)");

    // The most valuable customer who is slipping away.
    let mut chosen = None;
    let mut best = f64::MIN;
    for &id in &ids {
        let Some(profile) = customers.profile(id)? else {
            continue;
        };
        let clv = profile
            .traits
            .get("clv")
            .and_then(|t| t.value.as_f64())
            .unwrap_or(0.0);
        let slipping = profile
            .traits
            .get("p_alive")
            .and_then(|t| t.value.as_f64())
            .is_some_and(|p| p < 0.5);
        if slipping && clv > best {
            best = clv;
            chosen = Some(profile);
        }
    }
    let profile = chosen.ok_or("nobody is at risk")?;
    let who = profile.customer_id;
    println!(
        "\nThe most valuable customer at risk: {}",
        profile.identifiers[0]
    );
    for name in [
        "rfm_segment",
        "clv",
        "clv_percentile",
        "p_alive",
        "expected_purchases",
    ] {
        if let Some(value) = profile.traits.get(name) {
            println!("  {name:<20} {}", value.value);
        }
    }
    match customers.persona_of(who, &personas(), &[], as_of)? {
        Some((persona, verdict)) => {
            println!(
                "  persona: {persona} (because {})",
                verdict.reasons.join("; ")
            );
        }
        None => println!("  persona: none"),
    }
    for (segment, verdict) in customers.segments_of(who, &segments, &[], as_of)? {
        println!("  in {segment}: {}", verdict.reasons.join("; "));
    }
    for channel in [Channel::Email, Channel::Web] {
        let action = customers.next_best_action(who, &playbook(), &channel, &[], as_of)?;
        println!(
            "  next best action on {channel}: {} ({})",
            action.action.as_deref().unwrap_or("none"),
            action.reasons.join("; ")
        );
        for (passed, why) in &action.passed_over {
            println!("    passed over {passed}: {why}");
        }
    }
    Ok(())
}

/// The segments evaluated when no file is given.
fn built_in_segments() -> Vec<Segment> {
    let trait_is = |name: &str, test| Rule::Trait {
        name: name.into(),
        test,
    };
    let orders = |at_least, within_days| Rule::Performed {
        events: EventFilter::named("Order Completed"),
        at_least: Some(at_least),
        at_most: None,
        within_days,
    };
    vec![
        Segment::new(
            "high value at risk",
            Rule::All {
                rules: vec![
                    trait_is("clv_percentile", Comparison::AtLeast(80.0)),
                    trait_is("p_alive", Comparison::LessThan(0.5)),
                ],
            },
        ),
        Segment::new(
            "champions",
            trait_is("rfm_segment", Comparison::Equals(json!("champions"))),
        ),
        Segment::new("repeat buyers", orders(3, None)),
        Segment::new(
            "reads our email",
            Rule::Performed {
                events: EventFilter::named("Email Opened"),
                at_least: Some(1),
                at_most: None,
                within_days: Some(90),
            },
        ),
        Segment::new(
            "browses, stopped buying",
            Rule::All {
                rules: vec![
                    Rule::UsedChannel {
                        channel: Channel::Web,
                        within_days: Some(120),
                    },
                    Rule::Not {
                        of: Box::new(orders(1, Some(120))),
                    },
                ],
            },
        ),
    ]
}

fn personas() -> Vec<Persona> {
    let persona = |name: &str, description: &str, priority, rule| Persona {
        name: name.into(),
        description: description.into(),
        priority,
        rule,
    };
    vec![
        persona(
            "patron",
            "buys often and much; expects to be known",
            1,
            Rule::Trait {
                name: "clv_percentile".into(),
                test: Comparison::AtLeast(90.0),
            },
        ),
        persona(
            "drifting fan",
            "bought before, has gone quiet; needs a reason to return",
            2,
            Rule::Trait {
                name: "p_alive".into(),
                test: Comparison::LessThan(0.3),
            },
        ),
        persona(
            "browser",
            "visits, rarely buys; needs confidence",
            3,
            Rule::UsedChannel {
                channel: Channel::Web,
                within_days: None,
            },
        ),
    ]
}

fn playbook() -> Playbook {
    Playbook {
        actions: vec![
            Action {
                name: "win-back offer".into(),
                group: Some("offer".into()),
                priority: 1,
                when: Rule::All {
                    rules: vec![
                        Rule::Trait {
                            name: "clv_percentile".into(),
                            test: Comparison::AtLeast(80.0),
                        },
                        Rule::Trait {
                            name: "p_alive".into(),
                            test: Comparison::LessThan(0.5),
                        },
                    ],
                },
                channels: vec![Channel::Email],
                purpose: Some(Purpose::Marketing),
                caps: vec![FrequencyCap {
                    times: 1,
                    days: 14,
                    group: Some("offer".into()),
                }],
            },
            Action {
                name: "new releases for you".into(),
                group: Some("offer".into()),
                priority: 2,
                when: Rule::UsedChannel {
                    channel: Channel::Web,
                    within_days: Some(60),
                },
                channels: vec![],
                purpose: Some(Purpose::Personalisation),
                caps: vec![],
            },
            Action {
                name: "leave alone".into(),
                group: None,
                priority: 9,
                when: Rule::HasIdentifier {
                    kind: IdentifierKind::UserId,
                },
                channels: vec![],
                purpose: None,
                caps: vec![],
            },
        ],
    }
}

/// The CDNOW purchases, with generated visits, email opens and consent for each
/// customer (the same every run).
fn records() -> Result<Vec<Record>, Box<dyn Error>> {
    let text = include_str!("../tests/fixtures/cdnow_sample.csv");
    let mut records: Vec<Record> = Vec::new();
    let mut seen: BTreeMap<String, DateTime<Utc>> = BTreeMap::new();
    for (n, line) in text.lines().enumerate().skip(1) {
        let fields: Vec<&str> = line.split(',').collect();
        let [id, date, amount] = fields[..] else {
            return Err(format!("line {}: expected 3 fields", n + 1).into());
        };
        let day = NaiveDate::parse_from_str(date, "%Y%m%d")?;
        let at = Utc.from_utc_datetime(&day.and_hms_opt(12, 0, 0).ok_or("a time")?);
        records.push(
            Event::builder("cdnow", Channel::Web, "Order Completed")
                .message_id(&format!("line-{n}"))
                .occurred_at(at)
                .identifier(IdentifierKind::UserId, id)
                .properties(json!({ "revenue": amount.parse::<f64>()? }))
                .build()?
                .into(),
        );
        let last = seen.entry(id.to_owned()).or_insert(at);
        *last = (*last).max(at);
    }
    for (n, (id, last)) in seen.iter().enumerate() {
        // A simple, fixed pseudo-random walk: visits and opens after the last order.
        let hash = (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let consent = if hash.is_multiple_of(5) {
            ConsentStatus::Denied
        } else {
            ConsentStatus::Granted
        };
        records.push(
            Event::builder("cdnow", Channel::Web, "Preferences Saved")
                .message_id(&format!("consent-{id}"))
                .occurred_at(*last - Duration::days(1))
                .identifier(IdentifierKind::UserId, id)
                .consent(ConsentChoice::new(Purpose::Marketing, consent))
                .consent(ConsentChoice::new(
                    Purpose::Personalisation,
                    ConsentStatus::Granted,
                ))
                .build()?
                .into(),
        );
        for k in 0..(hash >> 60) {
            let days = (hash.rotate_right(8 * k as u32) & 0xff) as i64;
            let (channel, name) = if k % 2 == 0 {
                (Channel::Web, "Page Viewed")
            } else {
                (Channel::Email, "Email Opened")
            };
            records.push(
                Event::builder("cdnow", channel, name)
                    .message_id(&format!("activity-{id}-{k}"))
                    .occurred_at(*last + Duration::days(days))
                    .identifier(IdentifierKind::UserId, id)
                    .build()?
                    .into(),
            );
        }
    }
    Ok(records)
}

/// How many of `ids` each segment holds at `at`.
fn sizes_at(
    customers: &Customers<SqliteStore>,
    ids: &[CustomerId],
    segments: &[Segment],
    at: DateTime<Utc>,
) -> Result<Vec<usize>, Box<dyn Error>> {
    let mut sizes = vec![0; segments.len()];
    for &id in ids {
        for (name, _) in customers.segments_of(id, segments, &[], at)? {
            if let Some(n) = segments.iter().position(|s| s.name == name) {
                sizes[n] += 1;
            }
        }
    }
    Ok(sizes)
}

fn last_day_of_next_month(day: NaiveDate) -> NaiveDate {
    let (year, month) = if day.month() == 12 {
        (day.year() + 1, 1)
    } else {
        (day.year(), day.month() + 1)
    };
    let next = if month == 12 {
        NaiveDate::from_ymd_opt(year + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(year, month + 1, 1)
    };
    next.and_then(|d| d.pred_opt()).unwrap_or(day)
}

/// Segment sizes month by month, one line each.
fn chart(segments: &[Segment], months: &[(NaiveDate, Vec<usize>)]) -> String {
    let (width, height, left, top) = (720.0, 360.0, 50.0, 20.0);
    let plot_w = width - left - 180.0;
    let plot_h = height - top - 40.0;
    let most = months
        .iter()
        .flat_map(|(_, s)| s.iter().copied())
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let colours = [
        "#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02",
    ];
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="11">"#
    );
    let x = |i: usize| left + plot_w * i as f64 / (months.len().max(2) - 1) as f64;
    let y = |n: usize| top + plot_h - plot_h * n as f64 / most;
    let _ = write!(
        svg,
        r#"<line x1="{left}" y1="{}" x2="{}" y2="{}" stroke="black"/>"#,
        top + plot_h,
        left + plot_w,
        top + plot_h
    );
    for (i, (month, _)) in months.iter().enumerate().step_by(3) {
        let _ = write!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
            x(i),
            top + plot_h + 15.0,
            month.format("%Y-%m")
        );
    }
    let _ = write!(svg, r#"<text x="5" y="{}">{most}</text>"#, top + 4.0);
    for (s, segment) in segments.iter().enumerate() {
        let colour = colours[s % colours.len()];
        let points: Vec<String> = months
            .iter()
            .enumerate()
            .map(|(i, (_, sizes))| format!("{:.1},{:.1}", x(i), y(sizes[s])))
            .collect();
        let _ = write!(
            svg,
            r#"<polyline fill="none" stroke="{colour}" stroke-width="2" points="{}"/>"#,
            points.join(" ")
        );
        let _ = write!(
            svg,
            r#"<text x="{}" y="{}" fill="{colour}">{}</text>"#,
            left + plot_w + 10.0,
            top + 14.0 * (s as f64 + 1.0),
            segment.name
        );
    }
    svg.push_str("</svg>\n");
    svg
}
