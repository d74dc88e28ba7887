//! A month of a help desk on one customer view: conversations across channels, what the
//! next agent sees, and how well the company answered.
//!
//! ```text
//! cargo run --example service_desk -- [--svg FILE] [--json]
//! cargo run --example service_desk -- --input RECORDS.jsonl --policy POLICY.json [--json]
//! ```
//!
//! Without `--input` it generates March 2026 for a few hundred customers of a shop:
//! emails, chats, calls and social posts about orders, some delivered late or out of
//! order, promoter and detractor surveys, and purchases. It stores them in a temporary
//! SQLite file, prints one customer's conversation as the next agent would see it, and
//! then the month's accountability report per owner against the policy (first reply
//! within 4 business hours, next reply within 8, resolution within 3 days; Mon–Fri
//! 09:00–17:00 in Europe/Berlin; paused while waiting on the customer). It ends by
//! closing the loop: how many customers who gave feedback were answered in time, late or
//! never, how many of each bought again, and the mean P(alive) of answered and
//! unanswered detractors from a BG/NBD model fitted on the year of purchases before.
//!
//! With `--input` it reads records in the crate's own JSON form, one per line and in any
//! order (`{"type":"interaction",...}` or `{"type":"event",...}`, as `Record` serializes),
//! reports on them over the span their interactions cover, and takes the policy from `--policy` (an
//! `SlaPolicy` as JSON) when given. `--json` prints the report as one JSON line instead of
//! the table; `--svg FILE` draws first-reply time per owner against the target.

use std::collections::{BTreeMap, HashMap};
use std::error::Error;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;

use chrono::{DateTime, Duration, NaiveTime, TimeZone, Utc};
use oneview::analytics::{BgNbd, RfmOptions, TimeUnit, TransactionModel, rfm_summary};
use oneview::conversation::follow_up::{FollowUp, FollowUpOptions};
use oneview::conversation::report::{Figures, Report, ReportOptions};
use oneview::conversation::sla::{BusinessHours, Metric, SlaPolicy, Target};
use oneview::{
    Channel, CustomerId, Customers, Direction, Event, IdentifierKind, Interaction, InteractionKind,
    InteractionStatus, Record, SqliteStore,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

const USAGE: &str =
    "usage: service_desk [--input RECORDS.jsonl] [--policy POLICY.json] [--svg FILE] [--json]";

const AGENTS: [&str; 4] = ["agent.kim", "agent.lee", "agent.noor", "team.social"];

fn main() -> Result<(), Box<dyn Error>> {
    let (mut input, mut policy_file, mut svg, mut as_json) = (None, None, None, false);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--input" => input = Some(PathBuf::from(args.next().ok_or(USAGE)?)),
            "--policy" => policy_file = Some(PathBuf::from(args.next().ok_or(USAGE)?)),
            "--svg" => svg = Some(PathBuf::from(args.next().ok_or(USAGE)?)),
            "--json" => as_json = true,
            _ => return Err(format!("unknown argument {arg:?}\n{USAGE}").into()),
        }
    }
    let policy = match &policy_file {
        Some(path) => serde_json::from_reader(BufReader::new(File::open(path)?))
            .map_err(|err| format!("{}: {err}", path.display()))?,
        None => default_policy(),
    };
    policy.validate()?;

    let dir = tempfile::tempdir()?;
    let customers = Customers::new(SqliteStore::open(dir.path().join("desk.db"))?);
    let records = match &input {
        Some(path) => read_records(path)?,
        None => month(&mut StdRng::seed_from_u64(2026)),
    };
    let (from, to) = span(&records).ok_or("no records to report on")?;
    for chunk in records.chunks(1_000) {
        for (n, result) in customers
            .ingest_batch(chunk.to_vec())?
            .into_iter()
            .enumerate()
        {
            if let Err(err) = result {
                eprintln!("record {n} of a batch refused: {err}");
            }
        }
    }

    if input.is_none() && !as_json {
        show_one_conversation(&customers)?;
    }
    let report = customers.service_report(ReportOptions::new(from, to, policy.clone()))?;
    // What the customers who gave feedback did next, with P(alive) from a BG/NBD model
    // fitted on their purchases (none when there are too few to fit).
    let summary = rfm_summary(
        customers.store(),
        &RfmOptions::new(to.date_naive()).time_unit(TimeUnit::Days),
    )?;
    let alive: HashMap<CustomerId, f64> = match BgNbd::fit(&summary) {
        Ok((model, _)) => summary
            .iter()
            .map(|r| (r.customer, model.p_alive(r.frequency, r.recency, r.t)))
            .collect(),
        Err(err) => {
            eprintln!("no purchase model ({err}); P(alive) left out");
            HashMap::new()
        }
    };
    let first_reply = policy
        .targets
        .iter()
        .find(|t| t.metric == Metric::FirstReply)
        .map_or(24 * 3600, |t| t.within_seconds);
    let follow_up = customers
        .follow_up(FollowUpOptions::new(from, to, first_reply), &|customer| {
            alive.get(&customer).copied()
        })?;
    if as_json {
        let mut line = summary_json(&report);
        line["follow_up"] = json!(follow_up);
        println!("{line}");
    } else {
        print_table(&report);
        print_follow_up(&follow_up);
    }
    if let Some(path) = svg {
        let target = policy
            .targets
            .iter()
            .find(|t| t.metric == Metric::FirstReply)
            .map(|t| t.within_seconds);
        std::fs::write(&path, chart(&report, target))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

fn default_policy() -> SlaPolicy {
    SlaPolicy::new(vec![
        Target::new(Metric::FirstReply, 4 * 3600),
        Target::new(Metric::NextReply, 8 * 3600),
        Target::new(Metric::Resolution, 3 * 8 * 3600),
        Target::new(Metric::CallAnswer, 120),
    ])
    .in_business_hours(BusinessHours::weekdays(
        "Europe/Berlin",
        NaiveTime::from_hms_opt(9, 0, 0).expect("a time"),
        NaiveTime::from_hms_opt(17, 0, 0).expect("a time"),
    ))
    .paused_while_pending()
}

fn read_records(path: &PathBuf) -> Result<Vec<Record>, Box<dyn Error>> {
    let mut records = Vec::new();
    for (n, line) in BufReader::new(File::open(path)?).lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Record>(&line) {
            Ok(record) => records.push(record),
            Err(err) => eprintln!("{}:{}: skipped: {err}", path.display(), n + 1),
        }
    }
    Ok(records)
}

/// The first and the end of the time the records' interactions cover.
fn span(records: &[Record]) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let times = records.iter().filter_map(|r| match r {
        Record::Interaction(i) => Some(i.occurred_at),
        Record::Event(_) => None,
    });
    let first = times.clone().min()?;
    let last = times.max()?;
    Some((first, last + Duration::seconds(1)))
}

/// March 2026 for 300 customers, shuffled a little: 5% of records arrive late.
fn month(rng: &mut StdRng) -> Vec<Record> {
    let start = Utc.with_ymd_and_hms(2026, 3, 2, 0, 0, 0).unwrap();
    let mut records: Vec<Record> = Vec::new();
    for person in 0..300 {
        let email = format!("customer{person}@example.com");
        let phone = format!("+4930{:07}", 1_000_000 + person);
        let owner = AGENTS[rng.random_range(0..3)];
        // A year of purchases before the month, at a rate of the customer's own, each
        // perhaps the last (buy till you die), so a purchase model can be fitted; then,
        // for those still buying, one early in the month.
        let rate = rng.random_range(0.01..0.12);
        let quits = rng.random_range(0.02..0.4);
        let mut active = true;
        let mut day = Utc.with_ymd_and_hms(2025, 3, 1, 12, 0, 0).unwrap();
        while day < start && active {
            if rng.random_bool(rate) {
                let id = format!("o{person}-{}", day.date_naive());
                records.push(order(&email, &id, day, rng));
                active = !rng.random_bool(quits);
            }
            day += Duration::days(1);
        }
        let bought = start + Duration::hours(rng.random_range(0..240));
        if active {
            records.push(order(&email, &format!("o{person}-1"), bought, rng));
        }
        let cases = rng.random_range(0..3);
        for case in 0..cases {
            let thread = format!("case-{person}-{case}");
            let mut at = bought + Duration::hours(rng.random_range(24..400));
            let channel =
                [Channel::Email, Channel::Chat, Channel::Phone][rng.random_range(0..3)].clone();
            let (kind, id_kind, id) = if channel == Channel::Phone {
                (InteractionKind::Call, IdentifierKind::Phone, phone.as_str())
            } else {
                (
                    InteractionKind::Message,
                    IdentifierKind::Email,
                    email.as_str(),
                )
            };
            let exchanges = rng.random_range(1..4);
            for n in 0..exchanges {
                let mut asked = contact(
                    &thread,
                    &format!("{thread}-q{n}"),
                    (channel.clone(), kind.clone(), Direction::Inbound),
                    (id_kind.clone(), id),
                    at,
                    None,
                    InteractionStatus::Open,
                );
                // Most calls are picked up within a few minutes; one in ten rings out.
                if let Record::Interaction(call) = &mut asked
                    && call.kind == InteractionKind::Call
                    && rng.random_bool(0.9)
                {
                    call.answered_at = Some(at + Duration::seconds(rng.random_range(5..300)));
                }
                records.push(asked);
                // Agents answer in office hours; replies on the phone link the number to
                // the email the desk knows.
                at = office_time(at + Duration::minutes(rng.random_range(10..900)), rng);
                let last = n + 1 == exchanges;
                let status = if last {
                    InteractionStatus::Closed
                } else {
                    InteractionStatus::Pending
                };
                let reply_on = if rng.random_bool(0.3) {
                    Channel::Phone
                } else {
                    Channel::Email
                };
                let mut reply = contact(
                    &thread,
                    &format!("{thread}-r{n}"),
                    (reply_on, InteractionKind::Message, Direction::Outbound),
                    (IdentifierKind::Email, &email),
                    at,
                    Some(owner),
                    status,
                );
                if let Record::Interaction(i) = &mut reply {
                    i.identifiers.push(
                        oneview::Identifier::new(IdentifierKind::Phone, &phone).expect("valid"),
                    );
                }
                records.push(reply);
                at += Duration::minutes(rng.random_range(60..3_000));
            }
            // After a case, a survey; some complain in public instead.
            let score: i64 = if rng.random_bool(0.6) {
                rng.random_range(8..11)
            } else {
                rng.random_range(0..7)
            };
            records.push(Record::Event(
                Event::builder("survey-tool", Channel::Email, "NPS Survey Answered")
                    .message_id(&format!("{thread}-nps"))
                    .occurred_at(at)
                    .identifier(IdentifierKind::Email, &email)
                    .properties(json!({"score": score, "comment": "about my order"}))
                    .build()
                    .expect("valid survey"),
            ));
            // Half the detractors get a call back from the agent who had the case.
            if score < 7 && rng.random_bool(0.5) {
                records.push(contact(
                    &format!("{thread}-survey"),
                    &format!("{thread}-callback"),
                    (Channel::Phone, InteractionKind::Call, Direction::Outbound),
                    (IdentifierKind::Email, &email),
                    office_time(at + Duration::hours(rng.random_range(1..30)), rng),
                    Some(owner),
                    InteractionStatus::Closed,
                ));
            }
            if score < 3 {
                let post = format!("{thread}-post");
                records.push(Record::Interaction(
                    Interaction::builder("social", Channel::Social, Direction::Inbound)
                        .key(&post)
                        .thread(&post)
                        .kind(InteractionKind::Feedback)
                        .occurred_at(at + Duration::hours(1))
                        .identifier(IdentifierKind::Email, &email)
                        .properties(json!({"feedback_kind": "complaint"}))
                        .body("Still waiting for a real answer")
                        .build()
                        .expect("valid post"),
                ));
                if rng.random_bool(0.7) {
                    records.push(contact(
                        &post,
                        &format!("{post}-reply"),
                        (
                            Channel::Social,
                            InteractionKind::Message,
                            Direction::Outbound,
                        ),
                        (IdentifierKind::Email, &email),
                        at + Duration::hours(rng.random_range(2..30)),
                        Some("team.social"),
                        InteractionStatus::Closed,
                    ));
                }
            }
            if rng.random_bool(0.5) {
                records.push(order(
                    &email,
                    &format!("o{person}-{case}-again"),
                    at + Duration::days(3),
                    rng,
                ));
            }
        }
    }
    // 5% arrive after later ones.
    records.sort_by_key(Record::key);
    let mut late = Vec::new();
    let mut delivered = Vec::with_capacity(records.len());
    for record in records {
        if rng.random_bool(0.05) {
            late.push(record);
        } else {
            delivered.push(record);
        }
    }
    for record in late {
        let at = rng.random_range(0..=delivered.len());
        delivered.insert(at, record);
    }
    delivered
}

/// `at`, or when the office next opens after it (09:00 to 17:00 Berlin time on
/// weekdays, kept to 08:00 to 16:00 UTC, its winter hours, for simplicity) with a few
/// minutes to pick the message up.
fn office_time(at: DateTime<Utc>, rng: &mut StdRng) -> DateTime<Utc> {
    use chrono::{Datelike, Timelike, Weekday};
    let open = |t: DateTime<Utc>| {
        !matches!(t.weekday(), Weekday::Sat | Weekday::Sun) && (8..16).contains(&t.hour())
    };
    if open(at) {
        return at;
    }
    let mut next = at
        .date_naive()
        .and_hms_opt(8, 0, 0)
        .expect("a time")
        .and_utc();
    while next <= at || !open(next) {
        next += Duration::days(1);
    }
    next + Duration::minutes(rng.random_range(5..180))
}

fn order(email: &str, id: &str, at: DateTime<Utc>, rng: &mut StdRng) -> Record {
    Record::Event(
        Event::builder("shop", Channel::Web, "Order Completed")
            .message_id(id)
            .occurred_at(at)
            .identifier(IdentifierKind::Email, email)
            .properties(json!({"revenue": rng.random_range(20..200)}))
            .build()
            .expect("valid order"),
    )
}

fn contact(
    thread: &str,
    key: &str,
    (channel, kind, direction): (Channel, InteractionKind, Direction),
    (id_kind, id): (IdentifierKind, &str),
    at: DateTime<Utc>,
    owner: Option<&str>,
    status: InteractionStatus,
) -> Record {
    let mut builder = Interaction::builder("helpdesk", channel, direction)
        .key(key)
        .thread(thread)
        .kind(kind)
        .occurred_at(at)
        .status(status)
        .identifier(id_kind, id);
    if let Some(owner) = owner {
        builder = builder.owner(owner);
    }
    if status == InteractionStatus::Closed {
        builder = builder.closed_at(at);
    }
    Record::Interaction(builder.build().expect("valid contact"))
}

/// A customer's conversation, as the next agent would see it.
fn show_one_conversation(customers: &Customers<SqliteStore>) -> Result<(), Box<dyn Error>> {
    // The first customer with a conversation of three contacts or more.
    let mut found = None;
    for person in 0..300 {
        let email = oneview::Identifier::email(&format!("customer{person}@example.com"))?;
        let all = customers.conversations(&email)?;
        if let Some(busiest) = all.into_iter().find(|c| c.contacts >= 3) {
            found = Some((email, busiest));
            break;
        }
    }
    let Some((email, busiest)) = found else {
        return Ok(());
    };
    let profile = customers.profile(&email)?.ok_or("a customer just listed")?;
    let conversation = customers
        .conversation(&email, busiest.key.clone())?
        .ok_or("the conversation just listed")?;
    println!(
        "customer {} ({} identifiers, {} open conversations)",
        profile.customer_id,
        profile.identifiers.len(),
        profile.open_conversations.len()
    );
    println!(
        "{}: {:?}, {:?}, channels {:?}",
        busiest.key,
        busiest.status,
        busiest.responsible,
        busiest
            .channels
            .iter()
            .map(Channel::name)
            .collect::<Vec<_>>()
    );
    for interaction in &conversation.interactions {
        println!(
            "  {}  {:<8} {:<8} {:<12} {:?}",
            interaction.occurred_at.format("%a %d %b %H:%M"),
            interaction.channel.name(),
            match interaction.direction {
                Direction::Inbound => "customer",
                Direction::Outbound => "company",
            },
            interaction.owner.as_deref().unwrap_or("-"),
            interaction.status,
        );
    }
    println!();
    Ok(())
}

fn hours(seconds: Option<i64>) -> String {
    seconds.map_or_else(|| "-".to_owned(), |s| format!("{:.1} h", s as f64 / 3600.0))
}

fn print_table(report: &Report) {
    println!(
        "{} to {}",
        report.from.format("%Y-%m-%d"),
        report.to.format("%Y-%m-%d")
    );
    println!(
        "{:<12} {:>6} {:>6} {:>7} {:>10} {:>10} {:>9} {:>10} {:>8} {:>6}",
        "owner",
        "opened",
        "closed",
        "backlog",
        "1st p50",
        "1st p90",
        "1st met",
        "resol p50",
        "NPS",
        "unans."
    );
    let mut rows: Vec<(&str, &Figures)> =
        report.groups.iter().map(|(n, f)| (n.as_str(), f)).collect();
    rows.push(("all", &report.total));
    for (name, figures) in rows {
        let first = figures
            .attainment
            .get(&Metric::FirstReply)
            .copied()
            .unwrap_or_default();
        let measured = first.met + first.breached;
        println!(
            "{:<12} {:>6} {:>6} {:>7} {:>10} {:>10} {:>9} {:>10} {:>8} {:>6}",
            name,
            figures.opened,
            figures.closed,
            figures.backlog,
            hours(figures.first_reply_counted.p50_s),
            hours(figures.first_reply_counted.p90_s),
            if measured > 0 {
                format!("{:.0}%", first.met as f64 * 100.0 / measured as f64)
            } else {
                "-".to_owned()
            },
            hours(figures.resolution_counted.p50_s),
            figures
                .nps
                .score
                .map_or_else(|| "-".to_owned(), |s| format!("{s:.0}")),
            figures.unanswered_feedback,
        );
    }
    println!(
        "public complaints: {}, answered in p50 {}",
        report.total.public_complaints,
        hours(report.total.public_complaint_reply.p50_s)
    );
    let calls = report.total.call_answer;
    if calls.count > 0 {
        let answering = report
            .total
            .attainment
            .get(&Metric::CallAnswer)
            .copied()
            .unwrap_or_default();
        println!(
            "calls picked up: {}, after p50 {} s and p90 {} s; {} within target, {} late or never",
            calls.count,
            calls.p50_s.unwrap_or_default(),
            calls.p90_s.unwrap_or_default(),
            answering.met,
            answering.breached
        );
    }
    println!("(times on the policy's clock; NPS from the surveys in the range)");
}

fn print_follow_up(follow_up: &FollowUp) {
    let share = |n: u64, of: u64| {
        if of == 0 {
            "-".to_owned()
        } else {
            format!("{:.0}%", n as f64 * 100.0 / of as f64)
        }
    };
    let p = |side: &oneview::conversation::follow_up::StillActive| {
        side.mean_p_alive
            .map_or_else(|| "-".to_owned(), |p| format!("{p:.2}"))
    };
    println!(
        "\nfeedback from {} customers: {} answered in time, {} late, {} never",
        follow_up.customers,
        follow_up.answered_within_target,
        follow_up.answered_late,
        follow_up.unanswered
    );
    let (a, u) = (
        follow_up.answered_bought_again,
        follow_up.unanswered_bought_again,
    );
    println!(
        "bought again: {} of the answered, {} of the unanswered",
        share(a.bought_again, a.customers),
        share(u.bought_again, u.customers)
    );
    println!(
        "detractors still active (mean P(alive)): answered {} ({} customers), unanswered {} ({})",
        p(&follow_up.answered_detractors),
        follow_up.answered_detractors.customers,
        p(&follow_up.unanswered_detractors),
        follow_up.unanswered_detractors.customers
    );
}

fn timing_json(figures: &Figures, metric: Metric, counted: bool) -> serde_json::Value {
    let timing = match (metric, counted) {
        (Metric::CallAnswer, _) => figures.call_answer,
        (Metric::Resolution, true) => figures.resolution_counted,
        (Metric::Resolution, false) => figures.resolution,
        (_, true) => figures.first_reply_counted,
        (_, false) => figures.first_reply,
    };
    let attainment = figures.attainment.get(&metric).copied().unwrap_or_default();
    json!({
        "p50_s": timing.p50_s,
        "p90_s": timing.p90_s,
        "met": attainment.met,
        "breached": attainment.breached,
        "running": attainment.running,
    })
}

fn figures_json(figures: &Figures) -> serde_json::Value {
    json!({
        "conversations": figures.opened,
        "closed": figures.closed,
        "backlog": figures.backlog,
        "first_reply": timing_json(figures, Metric::FirstReply, true),
        "resolution": timing_json(figures, Metric::Resolution, true),
        "call_answer": timing_json(figures, Metric::CallAnswer, false),
        "nps": figures.nps.score,
        "csat": figures.csat.score,
        "unanswered_feedback": figures.unanswered_feedback,
        "public_complaints": figures.public_complaints,
    })
}

fn summary_json(report: &Report) -> serde_json::Value {
    let mut line = figures_json(&report.total);
    let by_owner: BTreeMap<&String, serde_json::Value> = report
        .groups
        .iter()
        .map(|(name, figures)| (name, figures_json(figures)))
        .collect();
    line["by_owner"] = json!(by_owner);
    line["from"] = json!(report.from);
    line["to"] = json!(report.to);
    line
}

/// Bars of first-reply p50 and p90 per owner, with the target as a line.
fn chart(report: &Report, target: Option<i64>) -> String {
    let rows: Vec<(&String, &Figures)> = report
        .groups
        .iter()
        .filter(|(_, f)| f.first_reply_counted.count > 0)
        .collect();
    let most = rows
        .iter()
        .filter_map(|(_, f)| f.first_reply_counted.p90_s)
        .chain(target)
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let (left, width, row) = (140.0, 520.0, 44.0);
    let height = 70.0 + row * rows.len() as f64;
    let x = |seconds: i64| left + width * seconds as f64 / most;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="700" height="{height}" font-family="sans-serif" font-size="13">"#
    );
    let _ = write!(
        svg,
        r#"<text x="10" y="22" font-size="15">First reply per owner (business hours): median and 90th percentile</text>"#
    );
    for (n, (name, figures)) in rows.iter().enumerate() {
        let y = 45.0 + row * n as f64;
        let timing = figures.first_reply_counted;
        let _ = write!(
            svg,
            r#"<text x="10" y="{}">{}</text>"#,
            y + 17.0,
            escape(name)
        );
        if let Some(p90) = timing.p90_s {
            let _ = write!(
                svg,
                r##"<rect x="{left}" y="{y}" width="{:.1}" height="24" fill="#c6dbef"/>"##,
                x(p90) - left
            );
        }
        if let Some(p50) = timing.p50_s {
            let _ = write!(
                svg,
                r##"<rect x="{left}" y="{}" width="{:.1}" height="12" fill="#2171b5"/>"##,
                y + 6.0,
                x(p50) - left
            );
            let _ = write!(
                svg,
                r#"<text x="{:.1}" y="{}" font-size="11">{} / {}</text>"#,
                x(timing.p90_s.unwrap_or(p50)) + 4.0,
                y + 17.0,
                hours(Some(p50)),
                hours(timing.p90_s)
            );
        }
    }
    if let Some(target) = target {
        let tx = x(target);
        let _ = write!(
            svg,
            r##"<line x1="{tx:.1}" y1="35" x2="{tx:.1}" y2="{}" stroke="#cb181d" stroke-width="2" stroke-dasharray="5,3"/>"##,
            height - 20.0
        );
        let _ = write!(
            svg,
            r##"<text x="{:.1}" y="{}" fill="#cb181d">target {}</text>"##,
            tx + 4.0,
            height - 6.0,
            hours(Some(target))
        );
    }
    svg.push_str("</svg>\n");
    svg
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
