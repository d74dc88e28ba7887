//! The identity half of the contract that the engine leans on beyond attaching and
//! merging: rewrites, refusals, overrides, the expectations limits rest on, concurrent
//! commits and snapshots.

use std::sync::Barrier;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::{at, attach, create, email, event, identity, merge, new_profile, owners};
use crate::model::{
    Channel, CustomerId, Identifier, IdentifierKind, MergeId, MergeRecord, MergeRule, Override,
    OverrideId, OverrideRecord, Provenance, Refusal, RefusalRule, TraitOp, TraitOperation,
};
use crate::store::{
    Attributed, Commit, CommitOutcome, CommitProblem, Expectation, IdentityChange, ProfileState,
    Rewrite, Store, StoreError,
};

fn refusal(evidence: u128, minute: i64, identifier: Identifier, customer: CustomerId) -> Refusal {
    Refusal {
        evidence: uuid::Uuid::from_u128(evidence),
        at: at(minute),
        identifier,
        customer,
        rule: RefusalRule::Limit {
            kind: IdentifierKind::Email,
            limit: 1,
        },
    }
}

fn live(store: &dyn Store, customer: CustomerId) -> Option<CustomerId> {
    store.profile(customer).expect("profile").map(|p| p.id)
}

/// A rewrite replaces what was stored about the profiles it names, all of it, at once:
/// profile states, owners, events with their trait operations, merges and refusals; and
/// members it does not name follow the live profile they resolved to.
pub fn rewrites_apply_in_full(store: &dyn Store) {
    let a = new_profile(store, 1, 0);
    let b = new_profile(store, 2, 1);
    let d = new_profile(store, 3, 2);
    let event_a = event("rewrite-a", 10, Channel::Web);
    let event_b = event("rewrite-b", 11, Channel::Email);
    let traited = |customer, event: &crate::model::Event| Attributed {
        customer,
        record: TraitOperation {
            key: "plan".into(),
            op: TraitOp::Set(serde_json::json!(event.message_id)),
            provenance: Provenance {
                source: "conformance".into(),
                event_id: Some(event.id),
                observed_at: event.occurred_at,
            },
        },
    };
    // Stored with a, as if a link had put it there; the rebuild gives it to c.
    let mut with_b = super::with_event(a, event_b.clone());
    with_b.traits = vec![traited(a, &event_b)];
    store
        .apply(&[
            super::with_event(a, event_a.clone()),
            with_b,
            identity(vec![
                merge(b, d, 3),
                merge(a, b, 4),
                IdentityChange::Refuse(refusal(1, 5, email(7), a)),
            ]),
        ])
        .expect("setting up");
    assert_eq!(live(store, d), Some(a));

    // Rebuilt: b is its own again, under a new profile c founded by its evidence.
    let c = CustomerId::new();
    let rebuilt_merge = MergeRecord {
        id: MergeId::new(),
        survivor: c,
        absorbed: b,
        evidence: Some(event_b.id),
        linking: vec![email(2)],
        absorbed_side: vec![email(2)],
        evidence_id: Some(*event_b.id.as_uuid()),
        rule: MergeRule::SharedIdentifier,
        at: at(11),
    };
    let rewrite = Rewrite {
        profiles: vec![
            ProfileState {
                id: a,
                created_at: at(0),
                live: a,
            },
            ProfileState {
                id: b,
                created_at: at(1),
                live: c,
            },
            ProfileState {
                id: c,
                created_at: at(1),
                live: c,
            },
        ],
        identifiers: vec![(email(1), Some(a)), (email(2), Some(c)), (email(3), None)],
        events: vec![(event_a.id, a), (event_b.id, c)],
        interactions: Vec::new(),
        merges: vec![rebuilt_merge.clone()],
        refusals: vec![refusal(2, 11, email(8), c)],
    };
    let commit = identity(vec![IdentityChange::Rewrite(Box::new(rewrite.clone()))]);

    // Atomic: a rewrite in a batch whose later commit fails leaves no trace.
    let failing = Commit {
        expect: vec![Expectation::Live {
            customer: CustomerId::new(),
        }],
        ..Commit::default()
    };
    let picture = |store: &dyn Store| {
        let profiles: Vec<_> = [a, b, c, d]
            .into_iter()
            .map(|id| {
                let profile = store.profile(id).unwrap();
                let events: Vec<_> = super::all_events(store, id, 10)
                    .into_iter()
                    .map(|e| e.id)
                    .collect();
                let traits = store.trait_operations(id).unwrap();
                let merges = store.merges(id).unwrap();
                let refusals = store.refusals(id).unwrap();
                (profile, events, traits, merges, refusals)
            })
            .collect();
        let held = owners(store, &[email(1), email(2), email(3), email(7), email(8)]).unwrap();
        (
            profiles,
            held,
            store.refusals_of(&[email(7), email(8)]).unwrap(),
        )
    };
    let before = picture(store);
    assert!(
        store.apply(&[commit.clone(), failing]).is_err(),
        "a batch with a failing commit fails"
    );
    assert_eq!(
        owners(store, &[email(2)]).unwrap(),
        vec![Some(a)],
        "a failed batch applied part of a rewrite"
    );
    assert!(
        picture(store) == before,
        "a failed batch left part of a rewrite behind"
    );

    assert_eq!(
        store.apply(&[commit]).expect("rewrite"),
        vec![CommitOutcome::Applied]
    );
    assert_eq!(
        owners(store, &[email(1), email(2), email(3)]).unwrap(),
        vec![Some(a), Some(c), None],
        "identifiers follow a rewrite (and one owned by nobody is released)"
    );
    assert_eq!(live(store, b), Some(c), "a profile resolves as rewritten");
    assert_eq!(
        live(store, d),
        Some(a),
        "an unnamed member follows the live profile it resolved to"
    );
    let events_of = |customer| -> Vec<String> {
        super::all_events(store, customer, 10)
            .into_iter()
            .map(|e| e.message_id)
            .collect()
    };
    assert_eq!(events_of(a), ["rewrite-a"], "events follow a rewrite");
    assert_eq!(events_of(c), ["rewrite-b"], "events follow a rewrite");
    let traits_of_c = store.trait_operations(c).unwrap();
    assert_eq!(
        traits_of_c.len(),
        1,
        "trait operations follow the event that carried them"
    );
    assert!(store.trait_operations(a).unwrap().is_empty());
    let absorbed: Vec<CustomerId> = store
        .merges(a)
        .unwrap()
        .iter()
        .map(|m| m.absorbed)
        .collect();
    assert_eq!(
        absorbed,
        vec![d],
        "merges absorbing a rewritten profile are replaced; others are kept"
    );
    assert_eq!(store.merges(c).unwrap(), vec![rebuilt_merge]);
    assert!(
        store.refusals(a).unwrap().is_empty(),
        "refusals of rewritten profiles are replaced"
    );
    assert_eq!(
        store.refusals(c).unwrap(),
        vec![refusal(2, 11, email(8), c)]
    );
    let mut listed = store.customers(None, 100).unwrap();
    listed.sort();
    let mut expected = vec![a, c];
    expected.sort();
    assert_eq!(listed, expected, "only live profiles are listed");

    // A rewrite that points a profile at one that is not live is refused whole.
    let bad = Rewrite {
        profiles: vec![ProfileState {
            id: a,
            created_at: at(0),
            live: b,
        }],
        identifiers: vec![(email(1), None)],
        ..Rewrite::default()
    };
    match store.apply(&[identity(vec![IdentityChange::Rewrite(Box::new(bad))])]) {
        Err(StoreError::InvalidCommit { problem, .. }) => {
            assert_eq!(problem, CommitProblem::NotLiveTarget { id: a, live: b })
        }
        other => panic!("expected NotLiveTarget, got {other:?}"),
    }
    assert_eq!(owners(store, &[email(1)]).unwrap(), vec![Some(a)]);

    // A rewrite naming an event that is not stored is refused whole.
    let unknown = event("never-stored", 20, Channel::Web);
    let bad = Rewrite {
        identifiers: vec![(email(1), None)],
        events: vec![(unknown.id, a)],
        ..Rewrite::default()
    };
    match store.apply(&[identity(vec![IdentityChange::Rewrite(Box::new(bad))])]) {
        Err(StoreError::InvalidCommit { problem, .. }) => {
            assert_eq!(problem, CommitProblem::UnknownRecord(*unknown.id.as_uuid()));
        }
        other => panic!("expected UnknownRecord, got {other:?}"),
    }
    assert_eq!(owners(store, &[email(1)]).unwrap(), vec![Some(a)]);
}

/// Refusals are read back by profile (through merges) and by identifier, in evidence
/// order; overrides by any identifier they name.
pub fn refusals_and_overrides_read_back(store: &dyn Store) {
    let a = new_profile(store, 1, 0);
    let b = new_profile(store, 2, 1);
    let late = refusal(9, 30, email(5), b);
    let early = refusal(3, 10, email(5), a);
    let other = refusal(4, 20, email(6), a);
    store
        .apply(&[identity(vec![
            IdentityChange::Refuse(late.clone()),
            IdentityChange::Refuse(early.clone()),
            IdentityChange::Refuse(other.clone()),
        ])])
        .expect("refusals");
    assert_eq!(
        store.refusals(a).unwrap(),
        vec![early.clone(), other.clone()]
    );
    assert_eq!(store.refusals(b).unwrap(), vec![late.clone()]);
    assert_eq!(
        store.refusals_of(&[email(5)]).unwrap(),
        vec![early.clone(), late.clone()],
        "refusals of an identifier, in evidence order"
    );
    assert!(store.refusals_of(&[email(1)]).unwrap().is_empty());
    store
        .apply(&[identity(vec![merge(a, b, 40)])])
        .expect("merge");
    assert_eq!(
        store.refusals(b).unwrap(),
        vec![early.clone(), other.clone(), late.clone()],
        "a merged profile answers with its survivor's refusals"
    );
    let nobody = CustomerId::new();
    assert_eq!(
        store.refusals_for(&[b, nobody, a, b]).unwrap(),
        vec![
            vec![early.clone(), other.clone(), late.clone()],
            Vec::new(),
            vec![early, other, late],
            store.refusals(b).unwrap(),
        ],
        "refusals of several profiles at once, each as `refusals` answers, in the order asked"
    );
    assert!(store.refusals_for(&[]).unwrap().is_empty());

    let separate = OverrideRecord {
        id: OverrideId::new(),
        at: at(50),
        rule: Override::Separate {
            a: vec![email(1)],
            b: vec![email(2), email(3)],
        },
        reason: Some("two people".into()),
    };
    let link = OverrideRecord {
        id: OverrideId::new(),
        at: at(60),
        rule: Override::Link {
            a: email(3),
            b: email(4),
        },
        reason: None,
    };
    store
        .apply(&[identity(vec![
            IdentityChange::Override(link.clone()),
            IdentityChange::Override(separate.clone()),
        ])])
        .expect("overrides");
    assert_eq!(
        store.overrides(&[email(1)]).unwrap(),
        vec![separate.clone()]
    );
    assert_eq!(
        store.overrides(&[email(3)]).unwrap(),
        vec![separate.clone(), link.clone()],
        "overrides naming an identifier, oldest first"
    );
    assert_eq!(
        store.overrides(&[email(4), email(2)]).unwrap(),
        vec![separate.clone(), link.clone()]
    );
    assert!(store.overrides(&[email(9)]).unwrap().is_empty());
    assert!(
        store.standing_overrides().unwrap().is_empty(),
        "links and separations set no identifier's standing"
    );
    assert!(
        store.has_overrides().unwrap(),
        "a store holding overrides says so"
    );

    let standing = |minute, rule| OverrideRecord {
        id: OverrideId::new(),
        at: at(minute),
        rule,
        reason: None,
    };
    let allow = standing(
        90,
        Override::Allow {
            identifier: email(7),
        },
    );
    let suspect = standing(
        70,
        Override::Suspect {
            identifier: email(7),
            people: 3,
        },
    );
    let block = standing(
        80,
        Override::Block {
            identifier: email(8),
        },
    );
    store
        .apply(&[identity(vec![
            IdentityChange::Override(allow.clone()),
            IdentityChange::Override(suspect.clone()),
            IdentityChange::Override(block.clone()),
        ])])
        .expect("standing overrides");
    assert_eq!(
        store.standing_overrides().unwrap(),
        vec![suspect.clone(), block.clone(), allow.clone()],
        "every standing override, oldest first, and nothing else"
    );
    assert_eq!(
        store.all_overrides().unwrap(),
        vec![
            separate,
            link,
            suspect.clone(),
            block.clone(),
            allow.clone()
        ],
        "every override, oldest first"
    );
    assert_eq!(store.overrides(&[email(7)]).unwrap(), vec![suspect, allow]);
    assert_eq!(store.overrides(&[email(8)]).unwrap(), vec![block]);
}

/// The expectations that limits and late records rest on reject the whole commit when
/// they no longer hold.
pub fn identity_expectations_are_checked(store: &dyn Store) {
    let a = new_profile(store, 1, 0);
    store
        .apply(&[super::with_event(a, event("counted", 1, Channel::Web))])
        .expect("an event");
    let guarded = |expectation: Expectation| Commit {
        expect: vec![expectation],
        identity: vec![attach(&email(6), a)],
        ..Commit::default()
    };
    match store.apply(&[guarded(Expectation::Evidence {
        customer: a,
        count: 2,
    })]) {
        Err(StoreError::Conflict { problem, .. }) => assert_eq!(
            problem,
            CommitProblem::EvidenceCount {
                customer: a,
                expected: 2,
                found: 1
            }
        ),
        other => panic!("expected EvidenceCount, got {other:?}"),
    }
    match store.apply(&[guarded(Expectation::Identifiers {
        customer: a,
        identifiers: vec![email(1), email(2)],
    })]) {
        Err(StoreError::Conflict { problem, .. }) => assert!(
            matches!(problem, CommitProblem::IdentifiersChanged { customer, .. } if customer == a),
            "{problem:?}"
        ),
        other => panic!("expected IdentifiersChanged, got {other:?}"),
    }
    assert_eq!(
        owners(store, &[email(6)]).unwrap(),
        vec![None],
        "a commit whose expectation failed attached nothing"
    );
    let holds = guarded(Expectation::Identifiers {
        customer: a,
        identifiers: vec![email(1)],
    });
    assert_eq!(store.apply(&[holds]).unwrap(), vec![CommitOutcome::Applied]);
    let stale = Commit {
        expect: vec![
            Expectation::Evidence {
                customer: a,
                count: 1,
            },
            Expectation::Identifiers {
                customer: a,
                identifiers: vec![email(1)],
            },
        ],
        ..Commit::default()
    };
    assert!(
        matches!(
            store.apply(&[stale]),
            Err(StoreError::Conflict {
                problem: CommitProblem::IdentifiersChanged { .. },
                ..
            })
        ),
        "an identifier set that changed is a conflict"
    );
}

/// Writers that decided from the same state and expect it: exactly one lands.
pub fn conflicting_commits_one_wins(store: &dyn Store) {
    const WRITERS: usize = 8;
    let contested = email(50);
    let start = Barrier::new(WRITERS);
    let results: Vec<Result<Vec<CommitOutcome>, StoreError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..WRITERS)
            .map(|n| {
                let (start, contested) = (&start, &contested);
                scope.spawn(move || {
                    let id = CustomerId::new();
                    let commit = Commit {
                        expect: vec![Expectation::Owner {
                            identifier: contested.clone(),
                            owner: None,
                        }],
                        identity: vec![create(id, n as i64), attach(contested, id)],
                        ..Commit::default()
                    };
                    start.wait();
                    store.apply(&[commit])
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a writer panicked"))
            .collect()
    });
    let won = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(won, 1, "exactly one of the conflicting commits lands");
    for result in &results {
        if let Err(err) = result {
            assert!(
                matches!(err, StoreError::Conflict { .. }),
                "a loser gets Conflict, not {err:?}"
            );
        }
    }
    let winner = owners(store, &[contested]).unwrap()[0].expect("owned");
    assert_eq!(store.customers(None, 100).unwrap(), vec![winner]);
}

/// Reads inside a snapshot all see the state it began with, while another thread
/// commits; after it, they see the commit.
pub fn snapshots_see_one_state(store: &dyn Store) {
    let a = new_profile(store, 1, 0);
    let written = std::thread::scope(|scope| {
        let mut writer = None;
        store
            .snapshot(&mut |reads| {
                let before = reads.profile(a)?.expect("a exists");
                let handle = scope.spawn(|| store.apply(&[identity(vec![attach(&email(60), a)])]));
                // Give the writer every chance to land; a store may also hold it back.
                let deadline = Instant::now() + Duration::from_millis(300);
                while !handle.is_finished() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(5));
                }
                writer = Some(handle);
                assert_eq!(
                    reads
                        .owners(&[email(60)])?
                        .pop()
                        .flatten()
                        .map(|o| o.customer),
                    None,
                    "a snapshot saw a commit made after it began"
                );
                assert_eq!(reads.profile(a)?.expect("a exists"), before);
                Ok(())
            })
            .expect("snapshot");
        writer.expect("the reads ran").join().expect("writer")
    });
    written.expect("the write lands");
    assert_eq!(owners(store, &[email(60)]).unwrap(), vec![Some(a)]);
}

/// An exclusive write reads, commits and nests like any other, on one thread: a backend
/// that holds other writers back must not hold back the write that holds them.
pub fn exclusive_writes_read_and_commit(store: &dyn Store) {
    let a = new_profile(store, 1, 0);
    let mut runs = 0;
    store
        .exclusive(&mut || {
            runs += 1;
            let owner = std::cell::Cell::new(None);
            store.snapshot_for_write(&mut |reads| {
                owner.set(reads.owners(&[email(1)])?.pop().flatten());
                Ok(())
            })?;
            let owner = owner.get().expect("a holds email 1");
            assert_eq!(owner.customer, a);
            store.apply(&[Commit {
                expect: vec![
                    Expectation::Live { customer: a },
                    Expectation::Owner {
                        identifier: email(70),
                        owner: None,
                    },
                ],
                identity: vec![attach(&email(70), a)],
                ..Commit::default()
            }])?;
            store.exclusive(&mut || {
                store.apply(&[identity(vec![attach(&email(71), a)])])?;
                Ok(())
            })?;
            assert_eq!(owners(store, &[email(70), email(71)])?, vec![Some(a); 2]);
            Ok(())
        })
        .expect("the exclusive write lands");
    assert_eq!(runs, 1, "the write ran once");
    assert_eq!(
        owners(store, &[email(70), email(71)]).unwrap(),
        vec![Some(a); 2]
    );
    // Writers go on as before once it is over.
    store
        .apply(&[identity(vec![attach(&email(72), a)])])
        .expect("a write after the exclusive one");
}

/// What one plan of [`plans_apply_as_if_one_after_the_other`] read, and what became of
/// its commit.
struct Planned {
    read: Vec<Identifier>,
    applied: bool,
}

/// `plan_and_apply` plans on the latest state and applies what the plan returns, all or
/// nothing; a plan's error comes back as it is, with nothing applied.
pub fn plans_see_the_latest_state_and_apply_all_or_nothing(store: &dyn Store) {
    let a = new_profile(store, 1, 0);
    // Left over from an earlier call: emptied before the plan runs.
    let mut commits = vec![identity(vec![attach(&email(89), a)])];
    let outcomes = store
        .plan_and_apply(&mut commits, &mut |reads, commits| {
            assert!(commits.is_empty(), "the commits were not emptied first");
            let profile = reads.profile(a)?.expect("a exists");
            assert_eq!(
                profile.identifiers,
                vec![email(1)],
                "the plan saw an old state"
            );
            commits.push(Commit {
                expect: vec![Expectation::Identifiers {
                    customer: a,
                    identifiers: profile.identifiers,
                }],
                identity: vec![attach(&email(80), a)],
                ..Commit::default()
            });
            commits.push(identity(vec![attach(&email(81), a)]));
            Ok(())
        })
        .expect("the plan lands");
    assert_eq!(outcomes, vec![CommitOutcome::Applied; 2]);
    assert_eq!(commits.len(), 2, "the commits are handed back");
    assert_eq!(
        owners(store, &[email(80), email(81), email(89)]).unwrap(),
        vec![Some(a), Some(a), None]
    );

    // A plan that fails after writing commits out: none of them lands.
    let failed = store.plan_and_apply(&mut commits, &mut |_, commits| {
        commits.push(identity(vec![attach(&email(82), a)]));
        Err(StoreError::Backend {
            backend: "test",
            source: "the plan gave up".into(),
        })
    });
    match failed {
        Err(StoreError::Backend { backend, .. }) => assert_eq!(backend, "test"),
        other => panic!("expected the plan's own error, got {other:?}"),
    }
    // A commit that breaks an invariant: the good one before it does not land either.
    let stranger = CustomerId::from_uuid(uuid::Uuid::from_u128(0xdead));
    let invalid = store.plan_and_apply(&mut commits, &mut |_, commits| {
        commits.push(identity(vec![attach(&email(83), a)]));
        commits.push(identity(vec![attach(&email(84), stranger)]));
        Ok(())
    });
    assert!(
        matches!(invalid, Err(StoreError::InvalidCommit { commit: 1, .. })),
        "expected the second commit refused, got {invalid:?}"
    );
    assert_eq!(
        owners(store, &[email(82), email(83), email(84)]).unwrap(),
        vec![None; 3],
        "a failed plan_and_apply left something behind"
    );
    // Nested in an exclusive write, as the engine's last resort runs it.
    store
        .exclusive(&mut || {
            store
                .plan_and_apply(&mut commits, &mut |_, commits| {
                    commits.push(identity(vec![attach(&email(85), a)]));
                    Ok(())
                })
                .map(drop)
        })
        .expect("an exclusive plan lands");
    assert_eq!(owners(store, &[email(85)]).unwrap(), vec![Some(a)]);
}

/// Two writers that each read a profile's identifiers and add one, expecting the set
/// they read: if both land, one of them read the other's. A backend that leaves the
/// expectations unchecked must hold the other writer back from the first read to the
/// commit; one that checks them refuses the later with a conflict.
pub fn plans_apply_as_if_one_after_the_other(store: &dyn Store) {
    let a = new_profile(store, 1, 0);
    let reads_made = AtomicUsize::new(0);
    let planned: Vec<Result<Planned, StoreError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = [90, 91]
            .into_iter()
            .map(|n| {
                let reads_made = &reads_made;
                scope.spawn(move || {
                    let mut read = Vec::new();
                    let mut first = true;
                    let mut commits = Vec::new();
                    let outcome = store.plan_and_apply(&mut commits, &mut |reads, commits| {
                        read = reads.profile(a)?.expect("a exists").identifiers;
                        reads_made.fetch_add(1, Ordering::SeqCst);
                        if first {
                            first = false;
                            // Wait for the other writer's first read, or for as long as a
                            // store that holds it back makes it wait.
                            let deadline = Instant::now() + Duration::from_millis(300);
                            while reads_made.load(Ordering::SeqCst) < 2 && Instant::now() < deadline
                            {
                                std::thread::sleep(Duration::from_millis(5));
                            }
                        }
                        commits.push(Commit {
                            expect: vec![Expectation::Identifiers {
                                customer: a,
                                identifiers: read.clone(),
                            }],
                            identity: vec![attach(&email(n), a)],
                            ..Commit::default()
                        });
                        Ok(())
                    });
                    match outcome {
                        Ok(outcomes) => Ok(Planned {
                            applied: outcomes == vec![CommitOutcome::Applied],
                            read,
                        }),
                        Err(StoreError::Conflict { .. }) => Ok(Planned {
                            applied: false,
                            read,
                        }),
                        Err(err) => Err(err),
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("writer"))
            .collect()
    });
    let planned: Vec<Planned> = planned
        .into_iter()
        .collect::<Result<_, _>>()
        .expect("no writer failed");
    assert!(planned.iter().any(|p| p.applied), "neither writer landed");
    if planned.iter().all(|p| p.applied) {
        assert!(
            planned[0].read.contains(&email(91)) || planned[1].read.contains(&email(90)),
            "both writers landed, each on a state without the other's identifier"
        );
    }
    let landed: Vec<bool> = owners(store, &[email(90), email(91)])
        .unwrap()
        .iter()
        .map(Option::is_some)
        .collect();
    assert_eq!(
        landed,
        planned.iter().map(|p| p.applied).collect::<Vec<_>>(),
        "what landed is not what the writers were told"
    );
}
