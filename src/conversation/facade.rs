//! The conversation reads of [`Customers`]: threads, feedback, the accountability report
//! and the follow-up of feedback.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use chrono::{DateTime, Utc};

use super::follow_up::{self, FollowUp, FollowUpOptions};
use super::report::{self, Report, ReportOptions};
use super::sla::{self, Measure, SlaPolicy};
use super::{self as conversation, Conversation, ConversationKey, ConversationSummary};
use crate::Customers;
use crate::error::Error;
use crate::model::{CustomerId, resolve_traits};
use crate::store::{Store, StoreError, read_consistent};
use crate::view::{self, Lookup};

/// The most threads a report over every customer runs on.
const MAX_WORKERS: usize = 8;

/// How many customers a report worker takes at a time.
const WORKER_PAGE: usize = 256;

impl<S: Store> Customers<S> {
    /// The conversation `key` (a thread, or a contact without one) of the customer
    /// `lookup` finds: every interaction of theirs in it, from every channel and source,
    /// oldest first, with where it stands. `None` when the customer or the conversation
    /// is unknown. See [`conversation`](crate::conversation).
    pub fn conversation(
        &self,
        lookup: impl Into<Lookup>,
        key: impl Into<ConversationKey>,
    ) -> Result<Option<Conversation>, Error> {
        let (lookup, key) = (lookup.into(), key.into());
        read_consistent(&self.store(), |reads| {
            Ok(find_conversation(reads, &lookup, &key)?.map(|(found, _)| found))
        })
    }

    /// Each target of `policy` measured on the conversation `key` of the customer `lookup`
    /// finds, as of `as_of`, with the customer's traits deciding which targets apply (see
    /// [`sla`](crate::conversation::sla)). `None` when the customer or the conversation is
    /// unknown.
    ///
    /// ```
    /// use chrono::{Duration, TimeZone, Utc};
    /// use oneview::conversation::sla::{Metric, SlaPolicy, Standing, Target};
    /// use oneview::{Channel, Customers, Direction, Event, Identifier, IdentifierKind, Interaction, MemoryStore};
    /// use serde_json::json;
    ///
    /// let customers = Customers::new(MemoryStore::new());
    /// let rang = Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap();
    /// customers.ingest(
    ///     Event::builder("crm", Channel::Web, "Plan Changed")
    ///         .identifier(IdentifierKind::Phone, "+1 415 555 2671")
    ///         .set_trait("tier", json!("gold"))
    ///         .occurred_at(rang - Duration::days(30))
    ///         .build()?,
    /// )?;
    /// customers.ingest(
    ///     Interaction::builder("phones", Channel::Phone, Direction::Inbound)
    ///         .key("call-1")
    ///         .kind(oneview::InteractionKind::Call)
    ///         .identifier(IdentifierKind::Phone, "+1 415 555 2671")
    ///         .occurred_at(rang)
    ///         .answered_at(rang + Duration::seconds(45))
    ///         .build()?,
    /// )?;
    ///
    /// let policy = SlaPolicy::new(vec![
    ///     Target::new(Metric::CallAnswer, 120),
    ///     Target::new(Metric::CallAnswer, 30).for_customers("tier", json!("gold")),
    /// ]);
    /// let phone = Identifier::phone("+1 415 555 2671")?;
    /// let call = customers.conversations(&phone)?.remove(0).key;
    /// let measures = customers
    ///     .service_levels(&phone, call, &policy, rang + Duration::hours(1))?
    ///     .expect("a conversation");
    /// assert_eq!(measures[0].target_seconds, 30, "gold customers get the tighter target");
    /// assert_eq!(measures[0].standing, Standing::Breached);
    /// assert_eq!(measures[0].margin_seconds, -15);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn service_levels(
        &self,
        lookup: impl Into<Lookup>,
        key: impl Into<ConversationKey>,
        policy: &SlaPolicy,
        as_of: DateTime<Utc>,
    ) -> Result<Option<Vec<Measure>>, Error> {
        policy.validate()?;
        let (lookup, key) = (lookup.into(), key.into());
        let calendar = sla::Calendar::new(policy);
        read_consistent(&self.store(), |reads| {
            Ok(
                find_conversation(reads, &lookup, &key)?.map(|(found, traits)| {
                    sla::measure_valid(policy, &calendar, &found, &traits, as_of)
                }),
            )
        })
    }

    /// Every conversation of the customer `lookup` finds, latest contact first.
    pub fn conversations(
        &self,
        lookup: impl Into<Lookup>,
    ) -> Result<Vec<ConversationSummary>, Error> {
        let lookup = lookup.into();
        read_consistent(&self.store(), |reads| {
            let customer = view::find(reads, &lookup)?.ok_or(Error::UnknownCustomer)?;
            let account_owner = account_owner_of(reads, customer)?;
            let all = conversation::all_interactions(reads, customer)?;
            Ok(conversation::group(customer, all, account_owner.as_deref())
                .into_iter()
                .map(|c| c.summary)
                .collect())
        })
    }

    /// Everything the customer `lookup` finds told the company about itself (see
    /// [`Feedback`](crate::Feedback)), from their events and interactions on every
    /// channel, oldest first. A record stored before its feedback was checked, whose
    /// feedback turns out malformed, stays on the timeline but is left out here.
    ///
    /// ```
    /// use oneview::{Channel, Customers, Event, Identifier, IdentifierKind, MemoryStore, nps};
    /// use serde_json::json;
    ///
    /// let customers = Customers::new(MemoryStore::new());
    /// customers.ingest(
    ///     Event::builder("survey-tool", Channel::Email, "NPS Survey Answered")
    ///         .identifier(IdentifierKind::Email, "ana@example.com")
    ///         .properties(json!({"score": 4, "comment": "Slow refund"}))
    ///         .build()?,
    /// )?;
    /// let said = customers.feedback(Identifier::email("ana@example.com")?)?;
    /// assert!(said[0].is_detractor());
    /// assert_eq!(nps(&said).score, Some(-100.0));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn feedback(&self, lookup: impl Into<Lookup>) -> Result<Vec<crate::Feedback>, Error> {
        let lookup = lookup.into();
        read_consistent(&self.store(), |reads| {
            let customer = view::find(reads, &lookup)?.ok_or(Error::UnknownCustomer)?;
            let interactions = conversation::all_interactions(reads, customer)?;
            Ok(feedback_and_purchases(reads, customer, &interactions, &[])?.0)
        })
    }

    /// The accountability report over a time range: conversations opened, closed and
    /// still open, first-reply and resolution times, attainment of the policy's
    /// targets, feedback answered or not, NPS and CSAT, public complaints — in total and
    /// per owner or channel. See [`report`](crate::conversation::report).
    ///
    /// It reads the store a page of customers at a time, each page on one consistent
    /// snapshot, on one thread per core (at most eight); the figures do not depend on
    /// which thread read which customer.
    pub fn service_report(&self, options: ReportOptions) -> Result<Report, Error> {
        options.policy.validate()?;
        let builders = self.each_customer_in_parallel(
            || report::Builder::new(options.clone()),
            |builder, reads, customer| {
                let interactions = conversation::all_interactions(reads, customer)?;
                let (said, _) = feedback_and_purchases(reads, customer, &interactions, &[])?;
                let traits = resolve_traits(&reads.trait_operations(customer)?);
                let account_owner = conversation::account_owner(&traits);
                let conversations =
                    conversation::group(customer, interactions, account_owner.as_deref());
                builder.add(&conversations, said, &traits);
                Ok(())
            },
        )?;
        let mut builders = builders.into_iter();
        let first = builders
            .next()
            .unwrap_or_else(|| report::Builder::new(options));
        Ok(builders.fold(first, report::Builder::merge).finish())
    }

    /// Closing the loop on a period's feedback: how many of the customers who gave it were
    /// answered in time, late or not at all, how many of each bought again, and how
    /// likely answered and unanswered detractors are still to be active. `p_alive` gives
    /// that probability for a live profile (from a fitted purchase model, say), or `None`
    /// where it has none. See [`follow_up`](crate::conversation::follow_up).
    ///
    /// ```
    /// use std::collections::HashMap;
    /// use chrono::{NaiveDate, TimeZone, Utc};
    /// use oneview::analytics::{BgNbd, RfmOptions, TransactionModel, rfm_summary};
    /// use oneview::conversation::follow_up::FollowUpOptions;
    /// use oneview::{Customers, MemoryStore};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let customers = Customers::new(MemoryStore::new());
    /// // ... ingest a year of orders, conversations and surveys, then fit a model:
    /// # let end = NaiveDate::from_ymd_opt(2026, 12, 31).unwrap();
    /// let summary = rfm_summary(customers.store(), &RfmOptions::new(end))?;
    /// let alive: HashMap<_, f64> = match BgNbd::fit(&summary) {
    ///     Ok((model, _)) => summary
    ///         .iter()
    ///         .map(|r| (r.customer, model.p_alive(r.frequency, r.recency, r.t)))
    ///         .collect(),
    ///     Err(_) => HashMap::new(), // too little data to fit
    /// };
    /// let from = Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap();
    /// let to = Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap();
    /// let follow_up = customers.follow_up(
    ///     FollowUpOptions::new(from, to, 24 * 3600),
    ///     &|customer| alive.get(&customer).copied(),
    /// )?;
    /// println!(
    ///     "unanswered detractors still active: {:?}",
    ///     follow_up.unanswered_detractors.mean_p_alive
    /// );
    /// # Ok(())
    /// # }
    /// ```
    pub fn follow_up(
        &self,
        options: FollowUpOptions,
        p_alive: &dyn Fn(CustomerId) -> Option<f64>,
    ) -> Result<FollowUp, Error> {
        let mut builder = follow_up::Builder::new(options);
        self.each_customer(|customer| {
            let (conversations, said, purchases) = read_consistent(&self.store(), |reads| {
                let interactions = conversation::all_interactions(reads, customer)?;
                let (said, purchases) = feedback_and_purchases(
                    reads,
                    customer,
                    &interactions,
                    builder.purchase_events(),
                )?;
                let conversations = conversation::group(customer, interactions, None);
                Ok::<_, Error>((conversations, said, purchases))
            })?;
            builder.add(&conversations, &said, &purchases, p_alive(customer));
            Ok(())
        })?;
        Ok(builder.finish())
    }

    /// Calls `visit` with each live profile, spread over one worker thread per core (at
    /// most [`MAX_WORKERS`]), each with its own state made by `start`; returns the
    /// workers' states. Each worker takes the next page of ids when it is done with one,
    /// so a slow customer does not hold the others up, and reads the whole page on one
    /// snapshot: a customer is read consistently, and the store opens one read
    /// transaction per page rather than per customer. The first error stops every worker.
    fn each_customer_in_parallel<B: Send>(
        &self,
        start: impl Fn() -> B + Sync,
        visit: impl Fn(&mut B, &dyn crate::store::Reads, CustomerId) -> Result<(), Error> + Sync,
    ) -> Result<Vec<B>, Error> {
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get().min(MAX_WORKERS));
        // The last id handed out; `None` inside once every page is taken.
        let cursor: Mutex<Option<Option<CustomerId>>> = Mutex::new(Some(None));
        let failed = AtomicBool::new(false);
        let next_page = || -> Result<Vec<CustomerId>, Error> {
            let mut cursor = cursor.lock().unwrap_or_else(PoisonError::into_inner);
            let Some(after) = *cursor else {
                return Ok(Vec::new());
            };
            let page = self.store().customers(after, WORKER_PAGE)?;
            *cursor = page.last().map(|&last| Some(last));
            Ok(page)
        };
        let work = || -> Result<B, Error> {
            let mut state = start();
            loop {
                if failed.load(Ordering::Relaxed) {
                    return Ok(state);
                }
                let page = next_page()?;
                if page.is_empty() {
                    return Ok(state);
                }
                read_consistent(&self.store(), |reads| {
                    page.into_iter()
                        .try_for_each(|customer| visit(&mut state, reads, customer))
                })?;
            }
        };
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..workers)
                .map(|_| {
                    scope.spawn(|| {
                        let result = work();
                        if result.is_err() {
                            failed.store(true, Ordering::Relaxed);
                        }
                        result
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|handle| {
                    handle
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .collect()
        })
    }

    /// Calls `visit` with each live profile, a page of ids at a time.
    fn each_customer(
        &self,
        visit: impl FnMut(CustomerId) -> Result<(), Error>,
    ) -> Result<(), Error> {
        conversation::each_customer_of(self.store(), visit)
    }

    /// The open conversations of the customer `lookup` finds (their latest interaction
    /// open or pending), latest contact first.
    pub fn open_conversations(
        &self,
        lookup: impl Into<Lookup>,
    ) -> Result<Vec<ConversationSummary>, Error> {
        let mut all = self.conversations(lookup)?;
        all.retain(ConversationSummary::is_open);
        Ok(all)
    }
}

/// The conversation `key` of the customer `lookup` finds, with that customer's traits;
/// `None` when either is unknown.
fn find_conversation(
    reads: &dyn crate::store::Reads,
    lookup: &Lookup,
    key: &ConversationKey,
) -> Result<Option<(Conversation, sla::Traits)>, Error> {
    let Some(customer) = view::find(reads, lookup)? else {
        return Ok(None);
    };
    let mine: Vec<crate::model::Interaction> = conversation::all_interactions(reads, customer)?
        .into_iter()
        .filter(|i| ConversationKey::of(i) == *key)
        .collect();
    let traits = resolve_traits(&reads.trait_operations(customer)?);
    let account_owner = conversation::account_owner(&traits);
    Ok(
        conversation::group(customer, mine, account_owner.as_deref())
            .pop()
            .map(|found| (found, traits)),
    )
}

/// The account owner the traits of the live profile `customer` name.
fn account_owner_of(
    reads: &dyn crate::store::Reads,
    customer: CustomerId,
) -> Result<Option<String>, StoreError> {
    let traits = crate::model::resolve_traits(&reads.trait_operations(customer)?);
    Ok(conversation::account_owner(&traits))
}

/// What the live profile `customer` told the company about itself, from its events and
/// `interactions`, oldest first; and when it did any of the events `purchases` names. The
/// events are read once for both.
fn feedback_and_purchases(
    reads: &dyn crate::store::Reads,
    customer: CustomerId,
    interactions: &[crate::model::Interaction],
    purchases: &[String],
) -> Result<(Vec<crate::Feedback>, Vec<DateTime<Utc>>), StoreError> {
    let mut said = Vec::new();
    let mut bought = Vec::new();
    conversation::each_page(
        |request| reads.events(customer, request),
        |event| {
            if purchases.contains(&event.name) {
                bought.push(event.occurred_at);
            }
            said.extend(crate::Feedback::from_event(&event).ok().flatten());
        },
    )?;
    for interaction in interactions {
        said.extend(
            crate::Feedback::from_interaction(interaction)
                .ok()
                .flatten(),
        );
    }
    said.sort_by_key(|f| (f.at, f.record));
    Ok((said, bought))
}
