//! Crash safety: a writer killed with SIGKILL at random moments — most of them in the
//! middle of a write — never corrupts the database, never loses what it acknowledged,
//! and leaves profiles equal to a fresh replay of what it stored.
//!
//! The test binary runs itself as the child writer (`crash_child`). The child ingests
//! batches that merge profiles, arrive late and hit the per-kind limits, and now and
//! then unmerges a merge; it says on stdout when it starts and finishes each step. The
//! number of kills defaults to 20; set `ONEVIEW_CRASH_KILLS` for more.

// Killing with a signal and reading it back from the exit status is Unix's.
#![cfg(unix)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chrono::{TimeZone, Utc};
use oneview::identity::Policy;
use oneview::store::sqlite::SqliteStore;
use oneview::store::{Commit, IdentityChange, IdentityStore, Store};
use oneview::{
    Channel, Customers, Event, EventId, Identifier, IdentifierKind, MemoryStore, Override,
};
use uuid::Uuid;

mod common;

const SOURCE: &str = "crash";

/// The events of batch `batch` in run `run`: people drawn from a small pool, each event
/// with the person's email and a device shared across people, at times that jump back
/// and forth — so batches merge profiles, refuse links past the limits and arrive late.
fn batch(run: u64, batch: u64) -> Vec<Event> {
    (0..40u64)
        .map(|i| {
            let n = run * 7919 + batch * 104_729 + i * 31;
            let person = n % 300;
            let device = (n / 300) % 400;
            Event::builder(SOURCE, Channel::Web, "Clicked")
                .message_id(&format!("r{run}-b{batch}-e{i}"))
                .occurred_at(
                    Utc.timestamp_opt(1_700_000_000 + (n % 100_000) as i64, 0)
                        .unwrap(),
                )
                .identifier(IdentifierKind::Email, &format!("p{person}@x.com"))
                .identifier(IdentifierKind::AnonymousId, &format!("d{device}"))
                .set_trait("n", serde_json::json!(n))
                .build()
                .expect("valid event")
        })
        .collect()
}

/// The child: until killed, unmerges the most recent merge of one person's profile (if
/// it finds one) and ingests a batch. It prints `start batch N` / `done batch N` and
/// `start unmerge EVIDENCE` / `done unmerge EVIDENCE` around each step.
#[test]
#[ignore = "the child process of killed_writers_never_corrupt_nor_lose_acknowledged_work"]
fn crash_child() {
    let (Ok(path), Ok(run)) = (
        std::env::var("ONEVIEW_CRASH_DB"),
        std::env::var("ONEVIEW_CRASH_RUN"),
    ) else {
        panic!("run by the crash test, with ONEVIEW_CRASH_DB and ONEVIEW_CRASH_RUN set");
    };
    let run: u64 = run.parse().expect("numeric run");
    let fail_after: Option<u64> = std::env::var("ONEVIEW_CRASH_FAIL_AFTER")
        .ok()
        .map(|n| n.parse().expect("numeric batch count"));
    let customers = Customers::new(SqliteStore::open(path).expect("open"));
    for number in 0.. {
        if fail_after == Some(number) {
            panic!("failing on purpose after {number} batches");
        }
        // Each round starts by undoing a merge (from earlier runs, after the first), so
        // nearly every run unmerges before it can be killed in the batch that follows.
        // The merge is the newest of the first of a few people, from one that moves with
        // the run and round, whose profile has one.
        let merged = (0..20).find_map(|k| {
            let person = Identifier::email(&format!("p{}@x.com", (run * 13 + number + k) % 300))
                .expect("valid email");
            let profile = customers.profile(person.clone()).expect("profile")?;
            Some((person, profile.merges.last()?.clone()))
        });
        if let Some((person, merge)) = merged {
            let evidence = merge
                .evidence_id
                .or(merge.evidence.map(|e| *e.as_uuid()))
                .expect("a merge records its evidence");
            println!("start unmerge {evidence}");
            customers
                .unmerge(person, merge.id, false, &oneview::Actor::new("ops", "test"))
                .expect("unmerge");
            println!("done unmerge {evidence}");
        }
        println!("start batch {number}");
        for result in customers.ingest_batch(batch(run, number)).expect("batch") {
            result.expect("valid");
        }
        println!("done batch {number}");
    }
}

/// A step the child takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Step {
    Batch(u64, u64),
    Unmerge(Uuid),
}

/// What the parent knows: the steps the children finished, the one the last child was
/// in when killed, and every step a killed child was in (each may or may not have landed).
#[derive(Debug, Default)]
struct Acknowledged {
    done: BTreeSet<Step>,
    in_flight: Option<Step>,
    interrupted: BTreeSet<Step>,
}

impl Acknowledged {
    fn batches(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.done.iter().filter_map(|step| match step {
            Step::Batch(run, number) => Some((*run, *number)),
            Step::Unmerge(_) => None,
        })
    }

    fn unmerges(&self) -> BTreeSet<Uuid> {
        self.done
            .iter()
            .filter_map(|step| match step {
                Step::Unmerge(evidence) => Some(*evidence),
                Step::Batch(..) => None,
            })
            .collect()
    }
}

fn parse_step(run: u64, text: &str) -> Step {
    match text.split_once(' ') {
        Some(("batch", n)) => Step::Batch(run, n.parse().expect("batch number")),
        Some(("unmerge", id)) => Step::Unmerge(id.parse().expect("evidence id")),
        _ => panic!("the child said {text:?}"),
    }
}

/// A small generator, seeded from the clock, for kill delays: no dependency needed.
struct Delays(u64);

impl Delays {
    fn next_ms(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % 600
    }
}

/// The child's stdout lines, read on a thread, and its stderr, collected on another.
struct Running {
    child: Child,
    lines: Receiver<String>,
    stderr: std::thread::JoinHandle<String>,
}

fn spawn_child(path: &Path, run: u64, fail_after: Option<u64>) -> Running {
    let mut command = common::child_test("crash_child");
    command
        .env("ONEVIEW_CRASH_DB", path)
        .env("ONEVIEW_CRASH_RUN", run.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(n) = fail_after {
        command.env("ONEVIEW_CRASH_FAIL_AFTER", n.to_string());
    }
    let mut child = command.spawn().expect("spawn the child writer");
    let stdout = child.stdout.take().unwrap();
    let stderr = common::read_all(child.stderr.take().unwrap());
    let (send, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if send.send(line).is_err() {
                break;
            }
        }
    });
    Running {
        child,
        lines,
        stderr,
    }
}

/// Runs the child of `run` until it has started writing, lets it write for a random
/// while, kills it, and returns what it acknowledged and whether the kill landed inside
/// a step. Panics, with the child's stderr, if the child ended on its own.
fn kill_mid_work(path: &Path, run: u64, delay_ms: u64, fail_after: Option<u64>) -> Acknowledged {
    let Running {
        mut child,
        lines,
        stderr,
    } = spawn_child(path, run, fail_after);
    let mut acknowledged = Acknowledged::default();
    let take = |line: String, acknowledged: &mut Acknowledged| {
        // The test harness may print its own `test crash_child ... ` ahead on the line.
        let said = |word: &str| line.find(word).map(|at| &line[at + word.len()..]);
        if let Some(step) = said("start ") {
            acknowledged.in_flight = Some(parse_step(run, step));
        } else if let Some(step) = said("done ") {
            let step = parse_step(run, step);
            assert_eq!(
                acknowledged.in_flight,
                Some(step),
                "steps do not interleave"
            );
            acknowledged.in_flight = None;
            acknowledged.done.insert(step);
        }
    };
    let ended_on_its_own = |child: &mut Child, stderr: std::thread::JoinHandle<String>| -> ! {
        let status = child.wait().unwrap();
        panic!(
            "run {run}: the child ended on its own ({status}) instead of being killed:\n{}",
            stderr.join().unwrap()
        )
    };
    // Wait (boundedly) for the first step, so the kill cannot land during start-up.
    match lines.recv_timeout(Duration::from_secs(60)) {
        Ok(line) => take(line, &mut acknowledged),
        Err(RecvTimeoutError::Disconnected) => ended_on_its_own(&mut child, stderr),
        Err(RecvTimeoutError::Timeout) => {
            let _ = child.kill();
            panic!("run {run}: the child wrote nothing for 60 s");
        }
    }
    let until = Instant::now() + Duration::from_millis(delay_ms);
    while let Some(left) = until.checked_duration_since(Instant::now()) {
        match lines.recv_timeout(left) {
            Ok(line) => take(line, &mut acknowledged),
            Err(RecvTimeoutError::Timeout) => break,
            Err(RecvTimeoutError::Disconnected) => ended_on_its_own(&mut child, stderr),
        }
    }
    if child.try_wait().unwrap().is_some() {
        ended_on_its_own(&mut child, stderr);
    }
    child.kill().expect("SIGKILL the child");
    let status = child.wait().unwrap();
    assert_eq!(
        status.signal(),
        Some(9),
        "run {run}: the child was not killed by the signal but ended {status}:\n{}",
        stderr.join().unwrap()
    );
    // What it printed before dying; the pipe closes with the process.
    for line in lines.iter() {
        take(line, &mut acknowledged);
    }
    acknowledged
}

#[test]
fn killed_writers_never_corrupt_nor_lose_acknowledged_work() {
    let kills: u64 = std::env::var("ONEVIEW_CRASH_KILLS")
        .ok()
        .and_then(|k| k.parse().ok())
        .unwrap_or(20);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.db");
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let mut delays = Delays(seed | 1);
    let mut acknowledged = Acknowledged::default();
    let mut mid_step = 0;
    for run in 0..kills {
        let this_run = kill_mid_work(&path, run, delays.next_ms(), None);
        mid_step += u64::from(this_run.in_flight.is_some());
        acknowledged.done.extend(this_run.done);
        acknowledged.interrupted.extend(this_run.in_flight);
        acknowledged.in_flight = this_run.in_flight;
        verify(&path, &acknowledged, run);
    }
    let batches = acknowledged.batches().count();
    let unmerges = acknowledged.unmerges().len();
    eprintln!(
        "{kills} kills, {mid_step} inside a write; {batches} batches and {unmerges} unmerges acknowledged and verified"
    );
    assert!(batches > 0, "the child never finished a batch");
    assert!(unmerges > 0, "the child never finished an unmerge");
    assert!(
        mid_step * 2 > kills,
        "only {mid_step} of {kills} kills landed inside a write"
    );
}

#[test]
fn a_child_that_fails_on_its_own_fails_the_crash_test() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("failing.db");
    let outcome = std::panic::catch_unwind(|| kill_mid_work(&path, 0, 5_000, Some(1)));
    let message = outcome.expect_err("a child that panicked must not pass");
    let text = message
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(
        text.contains("ended on its own") && text.contains("failing on purpose"),
        "the failure names the cause and carries the child's stderr: {text}"
    );
}

/// Checks the reopened store: intact, every acknowledged step in it and nothing but
/// acknowledged or in-flight work, references that point at live rows, the per-kind
/// limits, and profiles equal to a fresh replay of the stored events (with the unmerges
/// the store records) into a memory store.
fn verify(path: &Path, acknowledged: &Acknowledged, run: u64) {
    // Opening checks the schema and recovers the WAL, as an application would.
    let store = SqliteStore::open(path).unwrap_or_else(|e| panic!("after kill {run}: {e}"));
    let conn = rusqlite::Connection::open(path).unwrap();
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok", "after kill {run}");
    let count = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
    for (what, sql) in [
        (
            "an identifier points at a missing profile",
            "SELECT count(*) FROM identifiers i LEFT JOIN profiles p ON p.id = i.profile_id WHERE p.id IS NULL",
        ),
        (
            "an identifier does not resolve to a live profile",
            "SELECT count(*) FROM identifiers i JOIN profiles p ON p.id = i.profile_id
             JOIN profiles l ON l.id = p.live_id WHERE l.live_id != l.id",
        ),
        (
            "an event points at a missing profile",
            "SELECT count(*) FROM events e LEFT JOIN profiles p ON p.id = e.profile_id WHERE p.id IS NULL",
        ),
        (
            "a merge names a missing profile",
            "SELECT count(*) FROM merges m LEFT JOIN profiles p ON p.id = m.absorbed WHERE p.id IS NULL",
        ),
        (
            "a refusal points at a missing profile",
            "SELECT count(*) FROM refusals r LEFT JOIN profiles p ON p.id = r.profile_id WHERE p.id IS NULL",
        ),
        (
            "a trait points at a missing profile",
            "SELECT count(*) FROM traits t LEFT JOIN profiles p ON p.id = t.profile_id WHERE p.id IS NULL",
        ),
        (
            "a trait's event is missing or elsewhere",
            "SELECT count(*) FROM traits t LEFT JOIN events e ON e.id = t.event_id
             WHERE e.id IS NULL OR e.profile_id != t.profile_id",
        ),
    ] {
        assert_eq!(count(sql), 0, "after kill {run}: {what}");
    }

    // Events: every acknowledged one exactly once; nothing else but interrupted ones.
    let mut events_by_id: BTreeMap<EventId, Event> = BTreeMap::new();
    let mut in_flight: BTreeMap<EventId, Event> = BTreeMap::new();
    for (r, n) in acknowledged.batches() {
        events_by_id.extend(batch(r, n).into_iter().map(|e| (e.id, e)));
    }
    for step in &acknowledged.interrupted {
        if let Step::Batch(r, n) = *step {
            in_flight.extend(batch(r, n).into_iter().map(|e| (e.id, e)));
        }
    }
    let mut present = conn
        .prepare("SELECT count(*) FROM events WHERE id = ?1")
        .unwrap();
    for id in events_by_id.keys() {
        let copies: i64 = present
            .query_row([id.as_uuid().as_bytes()], |r| r.get(0))
            .unwrap();
        assert_eq!(
            copies, 1,
            "after kill {run}: acknowledged event stored {copies} times"
        );
    }
    let mut stored = events_by_id.clone();
    for (id, event) in in_flight {
        let copies: i64 = present
            .query_row([id.as_uuid().as_bytes()], |r| r.get(0))
            .unwrap();
        if copies == 1 {
            stored.insert(id, event);
        }
    }
    assert_eq!(
        count("SELECT count(*) FROM events") as usize,
        stored.len(),
        "after kill {run}: events that were never sent are stored"
    );

    // Unmerges: every acknowledged one recorded; none that was never asked for.
    let identifiers: Vec<Identifier> = stored
        .values()
        .flat_map(|e| e.identifiers.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut overrides = store.overrides(&identifiers).unwrap();
    overrides.sort_by_key(|o| o.id);
    overrides.dedup_by_key(|o| o.id);
    let unlinked: BTreeSet<Uuid> = overrides
        .iter()
        .filter_map(|o| match &o.rule {
            Override::Unlink { evidence, .. } => Some(*evidence),
            _ => None,
        })
        .collect();
    let asked = acknowledged.unmerges();
    assert!(
        asked.is_subset(&unlinked),
        "after kill {run}: an acknowledged unmerge is not recorded"
    );
    let mut may_be = asked.clone();
    for step in &acknowledged.interrupted {
        if let Step::Unmerge(evidence) = *step {
            may_be.insert(evidence);
        }
    }
    assert!(
        unlinked.is_subset(&may_be),
        "after kill {run}: an unmerge nobody asked for is recorded"
    );

    // Limits and profiles.
    let customers = Customers::new(store);
    let profiles = describe(&customers);
    let policy = Policy::default();
    for (ids, _, _) in &profiles {
        let mut per_kind: BTreeMap<IdentifierKind, u32> = BTreeMap::new();
        for id in ids {
            *per_kind.entry(id.kind().clone()).or_default() += 1;
        }
        for (kind, n) in per_kind {
            if let Some(limit) = policy.rule(&kind).limit {
                assert!(
                    n <= limit,
                    "after kill {run}: {n} values of {kind:?} in one profile"
                );
            }
        }
    }
    let replay = Customers::new(MemoryStore::new());
    let operator: Vec<Commit> = overrides
        .into_iter()
        .filter(|o| matches!(o.rule, Override::Unlink { .. }))
        .map(|o| Commit {
            identity: vec![IdentityChange::Override(o)],
            ..Commit::default()
        })
        .collect();
    replay.store().apply(&operator).unwrap();
    for result in replay.ingest_batch(stored.into_values()).unwrap() {
        result.unwrap();
    }
    assert!(
        profiles == describe(&replay),
        "after kill {run}: the store's profiles differ from a fresh replay of its events"
    );
}

/// Each profile as its identifiers, event count and trait values.
fn describe<S: Store>(customers: &Customers<S>) -> BTreeSet<(Vec<Identifier>, u64, String)> {
    let store = customers.store();
    let mut described = BTreeSet::new();
    let mut after = None;
    loop {
        let page = store.customers(after, 500).unwrap();
        let Some(&last) = page.last() else { break };
        after = Some(last);
        for id in page {
            let profile = customers.profile_with(id, 1).unwrap().unwrap();
            let mut identifiers = profile.identifiers.clone();
            identifiers.sort();
            let traits: BTreeMap<&String, &serde_json::Value> =
                profile.traits.iter().map(|(k, t)| (k, &t.value)).collect();
            described.insert((
                identifiers,
                profile.event_count(),
                serde_json::to_string(&traits).unwrap(),
            ));
        }
    }
    described
}
