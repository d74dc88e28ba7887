//! Many writers and readers on one SQLite file at once: threads sharing one store, and
//! writer processes each with their own. The load merges pairs of people through a
//! shared tablet, links each person's devices through records that reach different
//! writers, delivers some events late, and (with the operator on) force-merges and
//! unmerges while it runs. Readers check what they read against what they read next.
//!
//! Every test here fails fast instead of hanging: readers stop when the writers are done,
//! when any thread panics (a guard sets the stop flag while unwinding), or at a deadline;
//! and a watchdog ends the process if the whole test outlives its time.
//!
//! The stress variant is ignored by default; run it with
//! `cargo test --release --test concurrency -- --ignored stress` (`ONEVIEW_STRESS_EVENTS` sets its
//! size, 1,200 events by default).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use oneview::store::{EventStore, IdentityStore};
use oneview::{
    Channel, Customers, Event, Identifier, IdentifierKind, MemoryStore, MergeRule, SqliteStore,
    Store,
};
use serde_json::json;

mod common;

/// Sets its flag when dropped, including while a panic unwinds.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Ends the process if the test is still running after `limit`: a hang is a failure.
fn watchdog(name: &'static str, limit: Duration) -> Arc<AtomicBool> {
    let finished = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&finished);
    std::thread::spawn(move || {
        let started = Instant::now();
        while !flag.load(Ordering::SeqCst) {
            if started.elapsed() > limit {
                eprintln!("{name}: still running after {limit:?}; a thread is stuck");
                std::process::exit(101);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    finished
}

struct Load {
    people: i64,
    events: i64,
    writers: usize,
    readers: usize,
    /// Every n-th event happened long before it is delivered.
    late_every: i64,
    /// Whether an operator force-merges and unmerges people while the writers run.
    operator: bool,
}

fn email(person: i64) -> Identifier {
    Identifier::email(&format!("p{person}@x.com")).unwrap()
}

impl Load {
    /// The people's events. Each person browses on four devices of their own, signs in
    /// with their email, and shares one device with the next person (a family tablet),
    /// so pairs of people merge. Of every four rounds of events, one carries the email
    /// and a device, one a device alone (anonymous browsing, linked later), one the email
    /// alone, and one a device with the shared tablet; dealt round-robin, the records
    /// that link one person's identifiers reach different writers.
    fn events(&self) -> Vec<Event> {
        let start = Utc.with_ymd_and_hms(2026, 4, 1, 0, 0, 0).unwrap();
        (0..self.events)
            .map(|i| {
                let person = i % self.people;
                let round = i / self.people;
                // A late event happened well before the events delivered around it.
                let when = if self.late_every > 0 && i % self.late_every == 0 {
                    (i - 10 * self.people).max(0)
                } else {
                    i
                };
                let device = format!("d{person}-{}", round % 4);
                let builder = Event::builder("load", Channel::Web, "Clicked")
                    .message_id(&format!("m{i}"))
                    .occurred_at(start + chrono::Duration::seconds(when))
                    .set_trait("n", json!(i));
                match round % 4 {
                    0 => builder
                        .with_identifier(email(person))
                        .identifier(IdentifierKind::AnonymousId, &device),
                    1 => builder.identifier(IdentifierKind::AnonymousId, &device),
                    2 => builder.with_identifier(email(person)),
                    _ => builder
                        .identifier(IdentifierKind::AnonymousId, &device)
                        .identifier(
                            IdentifierKind::AnonymousId,
                            &format!("tablet-{}", person / 2),
                        ),
                }
                .build()
                .unwrap()
            })
            .collect()
    }

    /// Runs the load; returns the store, how many reads were made, how many of them were
    /// checked against a later read with no unmerge between, and how many operator rounds
    /// were made.
    fn run(
        &self,
        name: &'static str,
        limit: Duration,
    ) -> (Customers<SqliteStore>, usize, usize, usize) {
        let finished = watchdog(name, limit);
        let events = self.events();
        let dir = tempfile::tempdir().unwrap();
        let shared = Arc::new(Customers::new(
            SqliteStore::open(dir.path().join("load.db")).unwrap(),
        ));
        let stop = AtomicBool::new(false);
        let reads = AtomicUsize::new(0);
        let checked = AtomicUsize::new(0);
        let rounds = AtomicUsize::new(0);
        let unmerges = Unmerges::default();
        let deadline = Instant::now() + limit;
        std::thread::scope(|scope| {
            let _stop = StopOnDrop(&stop);
            let writers: Vec<_> = (0..self.writers)
                .map(|worker| {
                    let (shared, events) = (Arc::clone(&shared), &events);
                    scope.spawn(move || {
                        let mine: Vec<Event> = events
                            .iter()
                            .skip(worker)
                            .step_by(self.writers)
                            .cloned()
                            .collect();
                        // Half the writers ingest one by one, half in batches.
                        if worker % 2 == 0 {
                            for e in mine {
                                shared.ingest(e).expect("ingest");
                            }
                        } else {
                            for chunk in mine.chunks(25) {
                                for result in shared.ingest_batch(chunk.to_vec()).expect("batch") {
                                    result.expect("valid");
                                }
                            }
                        }
                    })
                })
                .collect();
            for reader in 0..self.readers {
                let (shared, stop, reads, checked, unmerges) =
                    (Arc::clone(&shared), &stop, &reads, &checked, &unmerges);
                scope.spawn(move || {
                    let mut n = reader;
                    while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                        let wanted = email((n as i64) % self.people);
                        let before = unmerges.done.load(Ordering::SeqCst);
                        if let Some(profile) = shared.profile(wanted.clone()).expect("read") {
                            check_whole(&profile, &wanted);
                            if check_resolves_back(&shared, &profile, unmerges, before) {
                                checked.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        n += 1;
                        reads.fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
            if self.operator {
                let (shared, stop, rounds, unmerges) =
                    (Arc::clone(&shared), &stop, &rounds, &unmerges);
                scope.spawn(move || {
                    let mut n = 0;
                    while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                        let (a, b) = (email(n % self.people), email((n + 1) % self.people));
                        n += 1;
                        if force_and_undo(&shared, &a, &b, unmerges) {
                            rounds.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
            }
            for writer in writers {
                writer.join().expect("a writer failed");
            }
        });
        finished.store(true, Ordering::SeqCst);
        let shared = Arc::into_inner(shared).expect("every thread is done");
        // Keep the file until the caller is done with the store.
        std::mem::forget(dir);
        (
            shared,
            reads.load(Ordering::Relaxed),
            checked.load(Ordering::Relaxed),
            rounds.load(Ordering::Relaxed),
        )
    }
}

/// A profile read while writers run is still whole: it holds what found it, and its
/// timeline agrees with its activity counts.
fn check_whole(profile: &oneview::Profile, wanted: &Identifier) {
    assert!(
        profile.identifiers.contains(wanted),
        "{wanted} found a profile without it"
    );
    let total = (profile.event_count() + profile.interaction_count()) as usize;
    assert_eq!(
        profile.timeline.items.len(),
        total.min(20),
        "the timeline and the activity counts come from different states"
    );
    assert_eq!(profile.timeline.next.is_some(), total > 20);
}

/// Counts the operator's unmerges as they start and as they end, so a reader can tell
/// whether one may have landed between two of its reads.
#[derive(Default)]
struct Unmerges {
    started: AtomicUsize,
    done: AtomicUsize,
}

impl Unmerges {
    /// Whether no unmerge could have landed since `done` read `before`: none started since
    /// and none was under way then.
    fn none_since(&self, before: usize) -> bool {
        self.started.load(Ordering::SeqCst) == before
    }
}

/// Reads again, identifier by identifier, what `profile` holds. Each identifier finds a
/// profile that holds it (never a torn one); and unless an unmerge may have landed since
/// `before`, profiles only grow while writers run (people merge, nobody splits): the
/// profile's id now leads to a profile holding every identifier it had and everything
/// each identifier led to since, with at least as many events. Whether that growth was
/// checked (no unmerge in the way).
fn check_resolves_back(
    customers: &Customers<SqliteStore>,
    profile: &oneview::Profile,
    unmerges: &Unmerges,
    before: usize,
) -> bool {
    let mut seen: Vec<oneview::Profile> = Vec::new();
    for identifier in profile.identifiers.iter().take(3) {
        let again = customers
            .profile(identifier.clone())
            .expect("read")
            .expect("a stored identifier keeps finding a profile");
        check_whole(&again, identifier);
        seen.push(again);
    }
    let now = customers
        .profile(profile.customer_id)
        .expect("read")
        .expect("a profile id keeps finding a profile");
    if !unmerges.none_since(before) {
        return false;
    }
    for earlier in seen.iter().chain([profile]) {
        for identifier in &earlier.identifiers {
            assert!(
                now.identifiers.contains(identifier),
                "{identifier} left {} without an unmerge",
                profile.customer_id
            );
        }
        assert!(
            now.event_count() >= earlier.event_count(),
            "a profile lost events without an unmerge: {} then {}",
            earlier.event_count(),
            now.event_count()
        );
    }
    true
}

/// Force-merges the profiles of `a` and `b`, then undoes it. Whether both were known.
fn force_and_undo(
    customers: &Customers<SqliteStore>,
    a: &Identifier,
    b: &Identifier,
    unmerges: &Unmerges,
) -> bool {
    let forced = match customers.force_merge(a, b, &oneview::Actor::new("ops", "test")) {
        Ok(report) => report,
        Err(oneview::Error::UnknownIdentifier(_)) => return false,
        Err(other) => panic!("force_merge: {other}"),
    };
    let Some(link) = forced
        .merges
        .iter()
        .find(|m| m.rule == MergeRule::Forced)
        .and_then(|m| m.evidence_id)
    else {
        return false;
    };
    // A writer's rebuild may record the merge anew under another id: find it by its link.
    for _ in 0..50 {
        let merges = customers
            .store()
            .merges(customers.profile(a).unwrap().unwrap().customer_id)
            .unwrap();
        let Some(merge) = merges.iter().find(|m| m.evidence_id == Some(link)) else {
            return true;
        };
        unmerges.started.fetch_add(1, Ordering::SeqCst);
        let undone = customers.unmerge(a, merge.id, false, &oneview::Actor::new("ops", "test"));
        unmerges.done.fetch_add(1, Ordering::SeqCst);
        match undone {
            Ok(_) => return true,
            Err(oneview::Error::UnknownMerge(_)) => continue,
            Err(other) => panic!("unmerge: {other}"),
        }
    }
    panic!("the forced merge could not be undone in 50 tries")
}

fn assert_matches_sequential_replay(load: &Load, shared: &Customers<SqliteStore>) {
    let sequential = Customers::new(MemoryStore::new());
    for e in load.events() {
        sequential.ingest(e).unwrap();
    }
    assert_eq!(common::state(shared), common::state(&sequential));
    assert_eq!(shared.store().scan_events().count() as i64, load.events);
}

#[test]
fn concurrent_writers_and_readers_agree_with_a_sequential_replay() {
    // No call may fail with "database is locked" or read a torn profile, and the end
    // state must equal one writer's.
    let load = Load {
        people: 50,
        events: 1600,
        writers: 8,
        readers: 4,
        late_every: 9,
        operator: true,
    };
    let (shared, reads, checked, rounds) = load.run("concurrency", Duration::from_secs(240));
    eprintln!("{reads} reads, {checked} checked against a later read, {rounds} operator rounds");
    assert!(checked > 0 && rounds > 0);
    assert_matches_sequential_replay(&load, &shared);
}

#[test]
#[ignore = "a stress run of a minute or more; run with --ignored"]
fn stress_late_linking_merging_and_unmerging() {
    let events = std::env::var("ONEVIEW_STRESS_EVENTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1200);
    let load = Load {
        people: 30,
        events,
        writers: 16,
        readers: 8,
        late_every: 7,
        operator: true,
    };
    let started = Instant::now();
    let (shared, reads, checked, rounds) = load.run("stress", Duration::from_secs(600));
    eprintln!(
        "stress: {} events in {:.1} s, {reads} reads ({checked} checked against a later read), {rounds} force-merge/unmerge rounds",
        load.events,
        started.elapsed().as_secs_f64()
    );
    assert!(checked > 0 && rounds > 0);
    assert_matches_sequential_replay(&load, &shared);
}

/// Racing writers each add an email to one person whose policy allows two: the limit
/// holds, and the result is the one a single writer reaches.
fn limit_holds_under_racing_writers<S: Store>(make: impl Fn() -> S) {
    let finished = watchdog("limit", Duration::from_secs(120));
    let policy = oneview::identity::Policy::default().limit(IdentifierKind::Email, 2);
    let start = Utc.with_ymd_and_hms(2026, 4, 1, 0, 0, 0).unwrap();
    let signup = |n: i64| {
        Event::builder("load", Channel::Web, "Signed In")
            .message_id(&format!("s{n}"))
            .occurred_at(start + chrono::Duration::seconds(n))
            .identifier(IdentifierKind::UserId, "u-1")
            .with_identifier(email(n))
            .build()
            .unwrap()
    };
    for round in 0..20 {
        let shared = Customers::with_policy(make(), policy.clone());
        shared.ingest(signup(0)).unwrap();
        let gate = std::sync::Barrier::new(8);
        std::thread::scope(|scope| {
            for n in 1..=8 {
                let (shared, gate) = (&shared, &gate);
                scope.spawn(move || {
                    gate.wait();
                    shared.ingest(signup(n)).expect("ingest");
                });
            }
        });
        let person = shared
            .profile(Identifier::user_id("u-1").unwrap())
            .unwrap()
            .unwrap();
        let emails = person
            .identifiers
            .iter()
            .filter(|i| *i.kind() == IdentifierKind::Email)
            .count();
        assert_eq!(emails, 2, "round {round}: {:?}", person.identifiers);
        let sequential = Customers::with_policy(MemoryStore::new(), policy.clone());
        for n in 0..=8 {
            sequential.ingest(signup(n)).unwrap();
        }
        assert_eq!(
            common::state(&shared),
            common::state(&sequential),
            "round {round}"
        );
    }
    finished.store(true, Ordering::SeqCst);
}

#[test]
fn a_per_kind_limit_holds_under_racing_writers_in_memory() {
    limit_holds_under_racing_writers(MemoryStore::new);
}

#[test]
fn a_per_kind_limit_holds_under_racing_writers_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let count = AtomicUsize::new(0);
    limit_holds_under_racing_writers(|| {
        let n = count.fetch_add(1, Ordering::Relaxed);
        SqliteStore::open(dir.path().join(format!("limit-{n}.db"))).unwrap()
    });
}

/// The load the writer processes share: each child takes every `WRITER_PROCESSES`-th
/// event, starting at its own number.
const PROCESS_LOAD: Load = Load {
    people: 40,
    events: 960,
    writers: 3,
    // The parent process reads, between checks on its children.
    readers: 0,
    late_every: 9,
    operator: false,
};

/// A writer process: ingests its share of `PROCESS_LOAD` into the file named by
/// `ONEVIEW_WRITER_DB`, half one by one and half in batches, and panics on any error.
#[test]
#[ignore = "a child process of writers_in_separate_processes_never_fail_and_agree_with_one_writer"]
fn writer_process() {
    let (Ok(path), Ok(worker)) = (
        std::env::var("ONEVIEW_WRITER_DB"),
        std::env::var("ONEVIEW_WRITER"),
    ) else {
        panic!("run by the multi-process test, with ONEVIEW_WRITER_DB and ONEVIEW_WRITER set");
    };
    let worker: usize = worker.parse().expect("numeric writer");
    let customers = Customers::new(SqliteStore::open(path).expect("open"));
    let mine: Vec<Event> = PROCESS_LOAD
        .events()
        .into_iter()
        .skip(worker)
        .step_by(PROCESS_LOAD.writers)
        .collect();
    let (singles, batched) = mine.split_at(mine.len() / 2);
    for event in singles {
        if let Err(err) = customers.ingest(event.clone()) {
            panic!("writer {worker}: ingest failed: {err}");
        }
    }
    for chunk in batched.chunks(20) {
        match customers.ingest_batch(chunk.to_vec()) {
            Ok(results) => {
                for result in results {
                    result.unwrap_or_else(|err| panic!("writer {worker}: {err}"));
                }
            }
            Err(err) => panic!("writer {worker}: batch failed: {err}"),
        }
    }
}

#[test]
fn writers_in_separate_processes_never_fail_and_agree_with_one_writer() {
    // In one process, writers share one connection behind a lock; only separate processes
    // meet SQLite's own locking, where a "database is locked" error could surface.
    let limit = Duration::from_secs(240);
    let finished = watchdog("processes", limit);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    // Created (and migrated) once, before the writers race to open it.
    let customers = Customers::new(SqliteStore::open(&path).unwrap());
    let mut children: Vec<_> = (0..PROCESS_LOAD.writers)
        .map(|worker| {
            common::child_test("writer_process")
                .env("ONEVIEW_WRITER_DB", &path)
                .env("ONEVIEW_WRITER", worker.to_string())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn a writer process")
        })
        .collect();
    let stderrs: Vec<_> = children
        .iter_mut()
        .map(|child| common::read_all(child.stderr.take().unwrap()))
        .collect();
    // Read while they write, checking what is read.
    let deadline = Instant::now() + limit;
    let unmerges = Unmerges::default();
    let mut reads = 0;
    let mut checked = 0;
    let mut n = 0;
    while Instant::now() < deadline {
        if children
            .iter_mut()
            .all(|child| child.try_wait().unwrap().is_some())
        {
            break;
        }
        let wanted = email(n % PROCESS_LOAD.people);
        n += 1;
        let before = unmerges.done.load(Ordering::SeqCst);
        if let Some(profile) = customers.profile(wanted.clone()).expect("read") {
            check_whole(&profile, &wanted);
            checked += usize::from(check_resolves_back(&customers, &profile, &unmerges, before));
        }
        reads += 1;
    }
    for (worker, (mut child, stderr)) in children.into_iter().zip(stderrs).enumerate() {
        if Instant::now() >= deadline {
            let _ = child.kill();
        }
        let status = child.wait().unwrap();
        let stderr = stderr.join().unwrap();
        assert!(
            status.success(),
            "writer {worker} failed ({status}):\n{stderr}"
        );
        let lowered = stderr.to_lowercase();
        assert!(
            !lowered.contains("locked") && !lowered.contains("busy"),
            "writer {worker} met SQLite's lock:\n{stderr}"
        );
    }
    finished.store(true, Ordering::SeqCst);
    eprintln!(
        "{} writer processes; {reads} reads while they wrote, {checked} checked against a later read",
        PROCESS_LOAD.writers
    );
    assert!(reads > 0);
    assert_matches_sequential_replay(&PROCESS_LOAD, &customers);
}
