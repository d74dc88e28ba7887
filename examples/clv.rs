//! Customer lifetime value from a file of transactions.
//!
//! ```sh
//! cargo run --release --example clv -- tests/fixtures/cdnow_sample.csv \
//!     --calibration-end 1997-09-30 [--json] [--db FILE] [--plot FILE.svg]
//! ```
//!
//! The CSV has a header and the columns `customer_id,date,amount`, dates as `YYYY-MM-DD`
//! or `YYYYMMDD`. Each row becomes an `Order Completed` event in a SQLite store (a
//! temporary one unless `--db` names a file); the RFM summary is built from the event log
//! up to the calibration end; BG/NBD, Pareto/NBD and Gamma-Gamma are fitted to it; and the
//! ten customers with the highest lifetime value over the next year (12 periods of 4.35
//! weeks, discounted 1% a period) are listed with their probability of being alive.
//! Bad rows are reported on stderr with their line number and skipped.

use std::error::Error;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use chrono::{NaiveDate, TimeZone, Utc};
use oneview::analytics::{
    BgNbd, ClvOptions, FitReport, GammaGamma, ParetoNbd, Rfm, RfmOptions, TransactionModel,
    rank_by_clv, rfm_summary,
};
use oneview::{Channel, Customers, Event, IdentifierKind, SqliteStore};
use serde_json::json;

const USAGE: &str =
    "usage: clv FILE.csv --calibration-end YYYY-MM-DD [--json] [--db FILE] [--plot FILE.svg]";

struct Args {
    csv: PathBuf,
    calibration_end: NaiveDate,
    json: bool,
    db: Option<PathBuf>,
    plot: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args_os().skip(1);
    let (mut csv, mut end, mut json, mut db, mut plot) = (None, None, false, None, None);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.to_str() {
            Some("--calibration-end") => {
                let text = value("--calibration-end")?;
                let text = text.to_string_lossy();
                end = Some(parse_date(&text).ok_or_else(|| {
                    format!("--calibration-end: `{text}` is not a date (YYYY-MM-DD)")
                })?);
            }
            Some("--json") => json = true,
            Some("--db") => db = Some(PathBuf::from(value("--db")?)),
            Some("--plot") => plot = Some(PathBuf::from(value("--plot")?)),
            Some(flag) if flag.starts_with("--") => return Err(format!("unknown option {flag}")),
            _ if csv.is_none() => csv = Some(PathBuf::from(arg)),
            _ => return Err("only one CSV file".to_owned()),
        }
    }
    Ok(Args {
        csv: csv.ok_or("no CSV file given")?,
        calibration_end: end.ok_or("--calibration-end is required")?,
        json,
        db,
        plot,
    })
}

fn parse_date(text: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .or_else(|_| NaiveDate::parse_from_str(text, "%Y%m%d"))
        .ok()
}

/// The valid rows of the CSV as purchase events; bad rows reported and skipped.
fn read_transactions(text: &str) -> Result<(Vec<Event>, usize), Box<dyn Error>> {
    let mut lines = text.lines().enumerate();
    let (_, header) = lines.next().ok_or("the file is empty")?;
    let columns: Vec<&str> = header.split(',').map(str::trim).collect();
    let column = |name: &str| {
        columns
            .iter()
            .position(|c| *c == name)
            .ok_or_else(|| format!("the header has no `{name}` column: `{header}`"))
    };
    let (id_at, date_at, amount_at) = (column("customer_id")?, column("date")?, column("amount")?);
    let mut events = Vec::new();
    let mut bad = 0;
    for (index, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        let number = index + 1;
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let field = |at: usize| fields.get(at).copied().unwrap_or("");
        let row = (|| {
            let id = field(id_at);
            if id.is_empty() {
                return Err("no customer_id".to_owned());
            }
            let date = parse_date(field(date_at)).ok_or_else(|| {
                format!("date `{}` is not YYYY-MM-DD or YYYYMMDD", field(date_at))
            })?;
            let amount: f64 = field(amount_at)
                .parse()
                .map_err(|_| format!("amount `{}` is not a number", field(amount_at)))?;
            if !amount.is_finite() || amount < 0.0 {
                return Err(format!("amount {amount} is negative"));
            }
            let at = Utc.from_utc_datetime(&date.and_hms_opt(0, 0, 0).expect("midnight"));
            Event::builder("csv", Channel::Store, "Order Completed")
                .message_id(&format!("line-{number}"))
                .occurred_at(at)
                .identifier(IdentifierKind::UserId, id)
                .properties(json!({ "revenue": amount }))
                .build()
                .map_err(|err| err.to_string())
        })();
        match row {
            Ok(event) => events.push(event),
            Err(problem) => {
                eprintln!("line {number}: {problem}; skipped");
                bad += 1;
            }
        }
    }
    Ok((events, bad))
}

fn timed<T, E>(fit: impl FnOnce() -> Result<T, E>) -> Result<(T, f64), E> {
    let began = Instant::now();
    let fitted = fit()?;
    Ok((fitted, began.elapsed().as_secs_f64() * 1e3))
}

fn round(value: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (value * scale).round() / scale
}

fn run(args: Args) -> Result<(), Box<dyn Error>> {
    let text = std::fs::read_to_string(&args.csv)
        .map_err(|err| format!("{}: {err}", args.csv.display()))?;
    let (events, bad) = read_transactions(&text)?;

    let scratch = tempfile::tempdir()?;
    let db = args
        .db
        .clone()
        .unwrap_or_else(|| scratch.path().join("clv.db"));
    let customers = Customers::new(SqliteStore::open(&db)?);
    let rows = events.len();
    for chunk in events.chunks(5_000) {
        for result in customers.ingest_batch(chunk.to_vec())? {
            result?;
        }
    }

    let summary = rfm_summary(customers.store(), &RfmOptions::new(args.calibration_end))?;
    let ((bg, bg_report), bg_ms) = timed(|| BgNbd::fit(&summary))?;
    let ((pareto, pareto_report), pareto_ms) = timed(|| ParetoNbd::fit(&summary))?;
    let ((gg, gg_report), gg_ms) = timed(|| GammaGamma::fit(&summary))?;

    if let Some(path) = &args.plot {
        std::fs::write(path, p_alive_chart(&bg, &summary))?;
    }
    if args.json {
        let line = json!({
            "customers": summary.len(),
            "bgnbd": { "r": bg.r, "alpha": bg.alpha, "a": bg.a, "b": bg.b,
                       "ll": bg_report.log_likelihood, "fit_ms": round(bg_ms, 3) },
            "pareto_nbd": { "r": pareto.r, "alpha": pareto.alpha, "s": pareto.s, "beta": pareto.beta,
                            "ll": pareto_report.log_likelihood, "fit_ms": round(pareto_ms, 3) },
            "gamma_gamma": { "p": gg.p, "q": gg.q, "gamma": gg.gamma,
                             "ll": gg_report.log_likelihood, "fit_ms": round(gg_ms, 3) },
        });
        println!("{line}");
        return Ok(());
    }

    println!(
        "{rows} transactions ({bad} bad rows skipped), {} customers with a purchase by {}",
        summary.len(),
        args.calibration_end
    );
    let show = |name: &str, params: String, report: &FitReport, ms: f64| {
        println!(
            "{name:<12} {params}  log-likelihood {:.2}  fitted in {ms:.1} ms",
            report.log_likelihood
        );
    };
    show(
        "BG/NBD",
        format!(
            "r={:.4} alpha={:.4} a={:.4} b={:.4}",
            bg.r, bg.alpha, bg.a, bg.b
        ),
        &bg_report,
        bg_ms,
    );
    show(
        "Pareto/NBD",
        format!(
            "r={:.4} alpha={:.4} s={:.4} beta={:.4}",
            pareto.r, pareto.alpha, pareto.s, pareto.beta
        ),
        &pareto_report,
        pareto_ms,
    );
    show(
        "Gamma-Gamma",
        format!("p={:.4} q={:.4} gamma={:.4}", gg.p, gg.q, gg.gamma),
        &gg_report,
        gg_ms,
    );

    let horizon = ClvOptions::new(12, 4.35, 0.01)?;
    println!(
        "\ntop 10 by lifetime value over the next 12 periods of 4.35 weeks (BG/NBD + Gamma-Gamma):"
    );
    println!(
        "{:<14} {:>10} {:>8} {:>10} {:>10} {:>5}",
        "customer", "clv", "p_alive", "purchases", "spend", "x"
    );
    let by_id: std::collections::HashMap<_, _> = summary.iter().map(|c| (c.customer, c)).collect();
    for value in rank_by_clv(&bg, &gg, &summary, &horizon).iter().take(10) {
        let name = customers
            .profile(value.customer)?
            .and_then(|p| p.identifiers.first().map(|i| i.value().to_owned()))
            .unwrap_or_else(|| value.customer.to_string());
        println!(
            "{name:<14} {:>10.2} {:>8.3} {:>10.2} {:>10.2} {:>5}",
            value.clv,
            value.p_alive,
            value.expected_purchases,
            value.expected_spend,
            by_id[&value.customer].frequency
        );
    }
    if let Some(path) = &args.plot {
        println!("\nP(alive) chart written to {}", path.display());
    }
    Ok(())
}

/// An SVG heat map of P(alive) by recency (x axis) and frequency (y axis), for customers
/// first seen at the start of the calibration period.
fn p_alive_chart(model: &impl TransactionModel, summary: &[Rfm]) -> String {
    let t = summary.iter().map(|c| c.t).fold(0.0, f64::max).max(1.0);
    let most = summary
        .iter()
        .map(|c| c.frequency)
        .max()
        .unwrap_or(1)
        .clamp(1, 30);
    let (columns, cell_w, cell_h, left, top) = (40usize, 14.0, 14.0, 70.0, 50.0);
    let rows = most as usize;
    let (width, height) = (
        left + columns as f64 * cell_w + 110.0,
        top + rows as f64 * cell_h + 60.0,
    );
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(
        svg,
        r#"<text x="{left}" y="22" font-size="14">Probability a customer is still active (BG/NBD)</text>"#
    );
    for row in 0..rows {
        let frequency = (rows - row) as u32;
        for column in 0..columns {
            let recency = t * (column as f64 + 0.5) / columns as f64;
            let p = model.p_alive(frequency, recency, t);
            // White for certainly gone, deep blue for certainly active.
            let shade = |full: f64| (255.0 - p * (255.0 - full)).round();
            let _ = writeln!(
                svg,
                r#"<rect x="{}" y="{}" width="{cell_w}" height="{cell_h}" fill="rgb({},{},{})"><title>frequency {frequency}, recency {recency:.1}: {p:.2}</title></rect>"#,
                left + column as f64 * cell_w,
                top + row as f64 * cell_h,
                shade(8.0),
                shade(48.0),
                shade(107.0)
            );
        }
        if frequency.is_multiple_of(5) || frequency == 1 {
            let _ = writeln!(
                svg,
                r#"<text x="{}" y="{}" text-anchor="end">{frequency}</text>"#,
                left - 6.0,
                top + row as f64 * cell_h + cell_h - 3.0
            );
        }
    }
    let bottom = top + rows as f64 * cell_h;
    for tick in 0..=4 {
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="middle">{:.0}</text>"#,
            left + columns as f64 * cell_w * f64::from(tick) / 4.0,
            bottom + 16.0,
            t * f64::from(tick) / 4.0
        );
    }
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="{}" text-anchor="middle">recency: weeks from first to last purchase (T = {t:.1})</text>"#,
        left + columns as f64 * cell_w / 2.0,
        bottom + 36.0
    );
    let _ = writeln!(
        svg,
        r#"<text transform="translate(20 {}) rotate(-90)" text-anchor="middle">repeat purchases</text>"#,
        top + rows as f64 * cell_h / 2.0
    );
    let legend_x = left + columns as f64 * cell_w + 30.0;
    for step in 0..=10 {
        let p = f64::from(10 - step) / 10.0;
        let shade = |full: f64| (255.0 - p * (255.0 - full)).round();
        let _ = writeln!(
            svg,
            r#"<rect x="{legend_x}" y="{}" width="16" height="12" fill="rgb({},{},{})" stroke="gray" stroke-width="0.3"/><text x="{}" y="{}">{p:.1}</text>"#,
            top + f64::from(step) * 12.0,
            shade(8.0),
            shade(48.0),
            shade(107.0),
            legend_x + 22.0,
            top + f64::from(step) * 12.0 + 10.0
        );
    }
    svg.push_str("</svg>\n");
    svg
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(problem) => {
            eprintln!("{problem}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}
