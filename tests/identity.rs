//! Identity resolution scenarios, each run on the memory and (feature `sqlite`) the SQLite
//! backend.

use oneview::identity::{Action, Explanation, Policy};
use oneview::ingest::segment::{self, SegmentOptions};
use oneview::store::IdentityStore;
use oneview::{Channel, Event, Identifier, MergeRule, Outcome, Receipt, RefusalRule};
use serde_json::json;

mod common;

use common::{Dyn, at, backends, backends_with, event, id, owner};

fn each_backend(scenario: impl Fn(&Dyn)) {
    for customers in backends() {
        scenario(&customers);
    }
}

fn events_of(customers: &Dyn, identifier: &str) -> Vec<String> {
    let profile = customers
        .profile_with(id(identifier), 100)
        .unwrap()
        .unwrap();
    let mut messages: Vec<String> = profile
        .timeline
        .items
        .iter()
        .filter_map(|entry| match entry {
            oneview::TimelineEntry::Event(e) => Some(e.message_id.clone()),
            _ => None,
        })
        .collect();
    messages.sort();
    messages
}

#[test]
fn anonymous_browsing_then_identify_merges_the_device_into_the_user() {
    each_backend(|c| {
        let device = c.ingest(event("p1", 0, &["anonymous_id:d1"])).unwrap();
        c.ingest(event("p2", 1, &["anonymous_id:d1"])).unwrap();
        let user = c.ingest(event("u", 2, &["user_id:u1"])).unwrap();
        assert_ne!(device.customer, user.customer);
        let receipt = c
            .ingest(event("id", 3, &["user_id:u1", "anonymous_id:d1"]))
            .unwrap();
        assert_eq!(receipt.action, Some(Action::Merge));
        assert_eq!(owner(c, "user_id:u1"), owner(c, "anonymous_id:d1"));
        assert_eq!(events_of(c, "user_id:u1"), ["id", "p1", "p2", "u"]);
        // The oldest profile survives: the device's, created first.
        assert_eq!(receipt.customer, device.customer);
        assert_eq!(owner(c, "user_id:u1"), Some(device.customer));
    });
}

#[test]
fn emails_and_phones_in_any_format_link() {
    each_backend(|c| {
        c.ingest(event("a", 0, &["email:ana@example.com"])).unwrap();
        let typed = Event::builder("test", Channel::Web, "Acted")
            .message_id("b")
            .identifier(oneview::IdentifierKind::Email, "  ANA@Example.COM ")
            .identifier(oneview::IdentifierKind::Phone, "+1 (415) 555-2671")
            .build()
            .unwrap();
        c.ingest(typed).unwrap();
        for (n, phone) in [
            "+1-415-555-2671",
            "001 415 555 2671",
            "+1.415.555.2671",
            "tel:+14155552671",
        ]
        .iter()
        .enumerate()
        {
            let e = Event::builder("test", Channel::Phone, "Called")
                .message_id(&format!("call{n}"))
                .identifier(oneview::IdentifierKind::Phone, phone)
                .build()
                .unwrap();
            c.ingest(e).unwrap();
        }
        let ana = c.profile(id("email:ana@example.com")).unwrap().unwrap();
        assert_eq!(ana.identifiers.len(), 2);
        assert_eq!(ana.event_count(), 6);
    });
}

#[test]
fn two_users_on_one_shared_tablet_stay_two_people() {
    each_backend(|c| {
        c.ingest(event("a", 0, &["anonymous_id:tablet", "user_id:ana"]))
            .unwrap();
        let receipt = c
            .ingest(event("b", 1, &["anonymous_id:tablet", "user_id:ben"]))
            .unwrap();
        assert_ne!(owner(c, "user_id:ana"), owner(c, "user_id:ben"));
        assert_eq!(owner(c, "anonymous_id:tablet"), owner(c, "user_id:ana"));
        assert_eq!(receipt.refused.len(), 1);
        assert_eq!(receipt.refused[0].identifier, id("anonymous_id:tablet"));
        let ben = owner(c, "user_id:ben").unwrap();
        assert_eq!(c.store().refusals(ben).unwrap(), receipt.refused);
        assert!(matches!(
            c.explain(&id("user_id:ana"), &id("user_id:ben")).unwrap(),
            Explanation::Refused { refusals } if refusals[0].rule == RefusalRule::Limit {
                kind: oneview::IdentifierKind::UserId, limit: 1 }
        ));
    });
}

#[test]
fn junk_values_link_nobody_and_blocked_only_events_are_kept() {
    each_backend(|c| {
        for n in 0..100 {
            c.ingest(event(
                &format!("j{n}"),
                n,
                &[&format!("user_id:u{n}"), "email:test@test.com"],
            ))
            .unwrap();
        }
        assert_eq!(c.store().customers(None, 1000).unwrap().len(), 100);
        assert_eq!(owner(c, "email:test@test.com"), None);
        let zero = c
            .ingest(event("z", 200, &["user_id:0", "user_id:null"]))
            .unwrap();
        let none = c.ingest(event("n", 201, &["user_id:null"])).unwrap();
        assert_ne!(zero.customer, none.customer);
        assert_eq!(zero.action, Some(Action::Create));
        let kept = c.profile(zero.customer).unwrap().unwrap();
        assert!(kept.identifiers.is_empty());
        assert_eq!(kept.event_count(), 1);
    });
}

#[test]
fn a_late_identify_gives_the_in_order_result() {
    let stream = [
        event("p1", 0, &["anonymous_id:d1"]),
        event("identify", 1, &["anonymous_id:d1", "user_id:ana"]),
        event("p2", 2, &["anonymous_id:d1", "user_id:ben"]),
        event("p3", 3, &["anonymous_id:d1"]),
    ];
    let profiles = |c: &Dyn| {
        let mut all: Vec<(Vec<Identifier>, u64)> = c
            .store()
            .customers(None, 100)
            .unwrap()
            .into_iter()
            .map(|id| {
                let p = c.profile(id).unwrap().unwrap();
                (p.identifiers.clone(), p.event_count())
            })
            .collect();
        all.sort();
        all
    };
    each_backend(|in_order| {
        for e in &stream {
            in_order.ingest(e.clone()).unwrap();
        }
        each_backend(|late| {
            for i in [0, 2, 3] {
                late.ingest(stream[i].clone()).unwrap();
            }
            let receipt = late.ingest(stream[1].clone()).unwrap();
            assert_eq!(receipt.action, Some(Action::Rebuild));
            assert_eq!(profiles(late), profiles(in_order));
            assert_eq!(owner(late, "anonymous_id:d1"), owner(late, "user_id:ana"));
        });
    });
}

#[test]
fn the_same_message_twice_counts_once() {
    each_backend(|c| {
        let first = c.ingest(event("m", 0, &["user_id:u1"])).unwrap();
        let again = c.ingest(event("m", 0, &["user_id:u1"])).unwrap();
        assert_eq!(again.outcome, Outcome::Duplicate);
        assert_eq!(again.customer, first.customer);
        assert_eq!(c.profile(first.customer).unwrap().unwrap().event_count(), 1);
    });
}

/// A–B at minute 10, B–C at minute 20: three profiles merged into the oldest. Returns
/// the profile created first, a's.
fn chain(c: &Dyn) -> oneview::CustomerId {
    let first = c.ingest(event("a", 0, &["email:a@x.io"])).unwrap().customer;
    c.ingest(event("b", 1, &["email:b@x.io"])).unwrap();
    c.ingest(event("c", 2, &["email:c@x.io"])).unwrap();
    let ta = Event::builder("test", Channel::Web, "Set")
        .message_id("ta")
        .occurred_at(at(3))
        .with_identifier(id("email:a@x.io"))
        .set_trait("city", json!("Lisbon"))
        .build()
        .unwrap();
    let tc = Event::builder("test", Channel::Web, "Set")
        .message_id("tc")
        .occurred_at(at(4))
        .with_identifier(id("email:c@x.io"))
        .set_trait("city", json!("Porto"))
        .build()
        .unwrap();
    c.ingest(ta).unwrap();
    c.ingest(tc).unwrap();
    c.ingest(event("ab", 10, &["email:a@x.io", "email:b@x.io"]))
        .unwrap();
    c.ingest(event("bc", 20, &["email:b@x.io", "email:c@x.io"]))
        .unwrap();
    first
}

#[test]
fn a_chain_merges_three_profiles_into_the_oldest_and_explains_itself() {
    each_backend(|c| {
        let oldest = chain(c);
        let profile = c.profile(id("email:c@x.io")).unwrap().unwrap();
        assert_eq!(profile.customer_id, oldest);
        assert_eq!(profile.merges.len(), 2);
        // Traits set on both sides resolve by event time: Porto was said last.
        assert_eq!(profile.traits["city"].value, json!("Porto"));
        let Explanation::Linked { chain, .. } =
            c.explain(&id("email:a@x.io"), &id("email:c@x.io")).unwrap()
        else {
            panic!("linked");
        };
        let hops: Vec<(String, String)> = chain
            .iter()
            .map(|h| (h.from.to_string(), h.to.to_string()))
            .collect();
        assert_eq!(
            hops,
            [
                ("email:a@x.io".to_owned(), "email:b@x.io".to_owned()),
                ("email:b@x.io".to_owned(), "email:c@x.io".to_owned())
            ]
        );
        assert_eq!(chain[1].at, at(20));
    });
}

#[test]
fn unmerging_the_middle_link_restores_both_sides_and_blocking_keeps_them_apart() {
    each_backend(|c| {
        chain(c);
        let profile = c.profile(id("email:a@x.io")).unwrap().unwrap();
        let bc = profile.merges.iter().find(|m| m.at == at(20)).unwrap().id;
        let report = c
            .unmerge(
                id("email:a@x.io"),
                bc,
                true,
                &oneview::Actor::new("ops", "test"),
            )
            .unwrap();
        assert_eq!(report.before.len(), 1);
        assert_eq!(report.after.len(), 2);
        assert_eq!(owner(c, "email:a@x.io"), owner(c, "email:b@x.io"));
        assert_ne!(owner(c, "email:b@x.io"), owner(c, "email:c@x.io"));
        // The linking event stays with its strongest identifier's side (b sorts first).
        assert_eq!(events_of(c, "email:c@x.io"), ["c", "tc"].map(String::from));
        assert_eq!(
            events_of(c, "email:a@x.io"),
            ["a", "ab", "b", "bc", "ta"].map(String::from)
        );
        let ab = c.profile(id("email:a@x.io")).unwrap().unwrap();
        assert_eq!(ab.traits["city"].value, json!("Lisbon"));
        let cside = c.profile(id("email:c@x.io")).unwrap().unwrap();
        assert_eq!(cside.traits["city"].value, json!("Porto"));
        // Replaying, and new evidence linking the sides again, do not re-merge.
        chain(c);
        c.ingest(event("again", 30, &["email:c@x.io", "email:a@x.io"]))
            .unwrap();
        assert_ne!(owner(c, "email:a@x.io"), owner(c, "email:c@x.io"));
        assert!(matches!(
            c.explain(&id("email:a@x.io"), &id("email:c@x.io")).unwrap(),
            Explanation::Refused { .. }
        ));
    });
}

#[test]
fn unmerge_without_block_lets_new_evidence_link_again() {
    each_backend(|c| {
        chain(c);
        let merge = c.profile(id("email:a@x.io")).unwrap().unwrap().merges[1].id;
        c.unmerge(
            id("email:a@x.io"),
            merge,
            false,
            &oneview::Actor::new("ops", "test"),
        )
        .unwrap();
        assert_ne!(owner(c, "email:b@x.io"), owner(c, "email:c@x.io"));
        c.ingest(event("again", 30, &["email:c@x.io", "email:a@x.io"]))
            .unwrap();
        assert_eq!(owner(c, "email:a@x.io"), owner(c, "email:c@x.io"));
    });
}

#[test]
fn a_forced_merge_of_two_users_is_recorded_previewed_and_undoable() {
    each_backend(|c| {
        c.ingest(event("1", 0, &["user_id:u1"])).unwrap();
        c.ingest(event("2", 1, &["user_id:u2"])).unwrap();
        let preview = c
            .preview_merge(&id("user_id:u1"), &id("user_id:u2"))
            .unwrap();
        assert_eq!((preview.before.len(), preview.after.len()), (2, 1));
        assert_ne!(
            owner(c, "user_id:u1"),
            owner(c, "user_id:u2"),
            "a preview changes nothing"
        );
        c.force_merge(
            &id("user_id:u1"),
            &id("user_id:u2"),
            &oneview::Actor::new("ops", "test"),
        )
        .unwrap();
        assert_eq!(owner(c, "user_id:u1"), owner(c, "user_id:u2"));
        let profile = c.profile(id("user_id:u1")).unwrap().unwrap();
        assert_eq!(profile.merges.len(), 1);
        assert_eq!(profile.merges[0].rule, MergeRule::Forced);
        c.unmerge(
            profile.customer_id,
            profile.merges[0].id,
            false,
            &oneview::Actor::new("ops", "test"),
        )
        .unwrap();
        assert_ne!(owner(c, "user_id:u1"), owner(c, "user_id:u2"));
    });
}

#[test]
fn a_detached_identifier_leaves_and_can_join_someone_else() {
    each_backend(|c| {
        c.ingest(event("1", 0, &["user_id:u1", "email:shared@x.io"]))
            .unwrap();
        c.ingest(event("2", 1, &["user_id:u1"])).unwrap();
        c.detach(
            &id("email:shared@x.io"),
            &oneview::Actor::new("ops", "test"),
        )
        .unwrap();
        assert_ne!(owner(c, "user_id:u1"), owner(c, "email:shared@x.io"));
        assert_eq!(
            c.profile(id("user_id:u1")).unwrap().unwrap().event_count(),
            2
        );
        c.ingest(event("3", 2, &["user_id:u9", "email:shared@x.io"]))
            .unwrap();
        assert_eq!(owner(c, "user_id:u9"), owner(c, "email:shared@x.io"));
    });
}

#[test]
fn the_email_limit_is_respected() {
    each_backend(|c| {
        for n in 0..7 {
            c.ingest(event(
                &format!("e{n}"),
                n,
                &["user_id:u1", &format!("email:e{n}@x.io")],
            ))
            .unwrap();
        }
        let profile = c.profile(id("user_id:u1")).unwrap().unwrap();
        assert_eq!(profile.identifiers.len(), 6, "one user id and five emails");
        assert_eq!(owner(c, "email:e5@x.io"), None);
        assert_eq!(profile.event_count(), 7, "the events are kept");
    });
}

#[test]
fn segment_alias_links_and_a_bad_message_spares_the_batch() {
    each_backend(|c| {
        let batch = json!({"batch": [
            {"type": "track", "event": "Viewed", "messageId": "1", "anonymousId": "anon-7",
             "timestamp": "2026-03-01T09:00:00Z"},
            {"type": "alias", "messageId": "2", "previousId": "anon-7", "userId": "u-7",
             "originalTimestamp": "2026-03-01T09:01:00Z"},
            {"type": "identify", "messageId": "3", "userId": "u-7", "traits": "oops"},
            {"type": "identify", "messageId": "4", "userId": "u-7",
             "sentAt": "2026-03-01T09:02:00Z",
             "context": {"traits": {"phone": "+44 20 7946 0958"}},
             "traits": {"email": "Seven@X.io", "name": "Sev"}},
        ]});
        let parsed = segment::parse(&batch, &SegmentOptions::default(), at(100));
        assert_eq!(
            parsed[2].as_ref().unwrap_err().to_string(),
            "batch[2].traits: expected an object, found a string"
        );
        let records: Vec<_> = parsed.into_iter().filter_map(Result::ok).collect();
        assert_eq!(records.len(), 3);
        for result in c.ingest_batch(records).unwrap() {
            result.unwrap();
        }
        let seven = c.profile(id("anonymous_id:anon-7")).unwrap().unwrap();
        let names: Vec<String> = seven.identifiers.iter().map(ToString::to_string).collect();
        assert_eq!(
            names,
            [
                "email:seven@x.io",
                "phone:+442079460958",
                "user_id:u-7",
                "anonymous_id:anon-7"
            ]
        );
        assert_eq!(seven.traits["name"].value, json!("Sev"));
        assert_eq!(seven.event_count(), 3);
    });
}

#[test]
fn a_late_record_past_the_rebuild_limit_is_resolved_as_things_stand_and_says_so() {
    // Three people on one family tablet: its refused links tie their profiles into one
    // component of three.
    let run = |policy: Policy| -> Vec<(Dyn, Receipt)> {
        backends_with(policy)
            .into_iter()
            .map(|c| {
                for (n, user) in ["ana", "ben", "eve"].into_iter().enumerate() {
                    let minute = 10 * n as i64;
                    let user = format!("user_id:{user}");
                    c.ingest(event(
                        &format!("{user}-in"),
                        minute,
                        &["anonymous_id:tablet", &user],
                    ))
                    .unwrap();
                    c.ingest(event(&format!("{user}-buy"), minute + 40, &[&user]))
                        .unwrap();
                }
                let late = c
                    .ingest(event(
                        "late-view",
                        5,
                        &["anonymous_id:tablet", "user_id:ana"],
                    ))
                    .unwrap();
                (c, late)
            })
            .collect()
    };
    for (customers, receipt) in run(Policy::default()) {
        assert_eq!(receipt.action, Some(Action::Rebuild));
        assert_eq!(receipt.customer, owner(&customers, "user_id:ana").unwrap());
    }
    for (customers, receipt) in run(Policy::default().rebuild_limit(2)) {
        assert_eq!(receipt.action, Some(Action::ResolvedWithoutRebuild));
        let ana = owner(&customers, "user_id:ana").unwrap();
        assert_eq!(receipt.customer, ana);
        assert!(events_of(&customers, "user_id:ana").contains(&"late-view".to_string()));
        assert_ne!(owner(&customers, "user_id:ben"), Some(ana));
        // Nothing is lost, and a repeat is still a repeat.
        let again = customers
            .ingest(event(
                "late-view",
                5,
                &["anonymous_id:tablet", "user_id:ana"],
            ))
            .unwrap();
        assert_eq!(again.outcome, Outcome::Duplicate);
        assert_eq!(customers.store().scan_events().count(), 7);
    }
}

#[test]
fn an_older_version_of_a_late_contact_in_the_same_batch_does_not_replace_the_newer() {
    let version = |minute: i64, status| {
        oneview::Interaction::builder("desk", Channel::Chat, oneview::Direction::Inbound)
            .key("T-1")
            .occurred_at(at(0))
            .updated_at(at(minute))
            .status(status)
            .with_identifier(id("user_id:ana"))
            .with_identifier(id("email:ana@x.io"))
            .build()
            .unwrap()
    };
    each_backend(|c| {
        // Newer evidence on both sides makes the contact late: it is placed by a rebuild.
        c.ingest(event("u", 30, &["user_id:ana"])).unwrap();
        c.ingest(event("e", 31, &["email:ana@x.io"])).unwrap();
        let newer = version(5, oneview::InteractionStatus::Closed);
        let older = version(0, oneview::InteractionStatus::Open);
        let receipts = c.ingest_batch([newer, older]).unwrap();
        assert_eq!(receipts[0].as_ref().unwrap().action, Some(Action::Rebuild));
        assert_eq!(receipts[1].as_ref().unwrap().outcome, Outcome::Outdated);
        let profile = c.profile(id("user_id:ana")).unwrap().unwrap();
        let statuses: Vec<_> = profile
            .timeline
            .items
            .iter()
            .filter_map(|entry| match entry {
                oneview::TimelineEntry::Interaction(i) => Some(i.status),
                _ => None,
            })
            .collect();
        assert_eq!(statuses, [oneview::InteractionStatus::Closed]);
    });
}

/// Everything the profiles say, for comparing two stores: each identifier's profile
/// (identifiers and timeline), or that it has none.
fn profiles_of(customers: &Dyn, identifiers: &[&str]) -> Vec<String> {
    identifiers
        .iter()
        .map(
            |identifier| match customers.profile(id(identifier)).unwrap() {
                Some(profile) => {
                    let mut held: Vec<String> =
                        profile.identifiers.iter().map(|i| i.to_string()).collect();
                    held.sort();
                    let items: Vec<String> = profile
                        .timeline
                        .items
                        .iter()
                        .map(|entry| match entry {
                            oneview::TimelineEntry::Event(e) => e.message_id.clone(),
                            oneview::TimelineEntry::Interaction(i) => {
                                format!("{}@{}", i.key, i.updated_at)
                            }
                            other => format!("{other:?}"),
                        })
                        .collect();
                    format!("{identifier}: {held:?} {items:?}")
                }
                None => format!("{identifier}: none"),
            },
        )
        .collect()
}

#[test]
fn an_update_that_no_longer_names_someone_gives_the_same_profiles_in_either_order() {
    let version = |minute: i64, ids: &[&str]| {
        ids.iter()
            .fold(
                oneview::Interaction::builder("desk", Channel::Chat, oneview::Direction::Inbound)
                    .key("T-7")
                    .occurred_at(at(10))
                    .updated_at(at(minute)),
                |b, i| b.with_identifier(id(i)),
            )
            .build()
            .unwrap()
    };
    // The first version joins Ana's email to a phone typed by mistake; the update, its
    // latest word, names the email alone. The phone has evidence of its own too.
    let first = version(10, &["email:ana@x.io", "phone:+14155550123"]);
    let update = version(20, &["email:ana@x.io"]);
    let mut results = Vec::new();
    for update_first in [false, true] {
        for customers in backends() {
            customers
                .ingest(event("p", 5, &["phone:+14155550123"]))
                .unwrap();
            let order = if update_first {
                [update.clone(), first.clone()]
            } else {
                [first.clone(), update.clone()]
            };
            for version in order {
                customers.ingest(version).unwrap();
            }
            let profiles = profiles_of(&customers, &["email:ana@x.io", "phone:+14155550123"]);
            assert_ne!(
                customers
                    .profile(id("email:ana@x.io"))
                    .unwrap()
                    .unwrap()
                    .customer_id,
                customers
                    .profile(id("phone:+14155550123"))
                    .unwrap()
                    .unwrap()
                    .customer_id,
                "nothing the store holds links them: {profiles:?}"
            );
            results.push(profiles);
        }
    }
    assert!(results.windows(2).all(|w| w[0] == w[1]), "{results:#?}");
}
