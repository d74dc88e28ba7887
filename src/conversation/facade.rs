//! The conversation reads of [`Customers`]: threads, feedback, the accountability report
//! and the follow-up of feedback.

use chrono::{DateTime, Utc};

use super::follow_up::{self, FollowUp, FollowUpOptions};
use super::report::{self, Report, ReportOptions};
use super::{self as conversation, Conversation, ConversationKey, ConversationSummary};
use crate::Customers;
use crate::error::Error;
use crate::model::CustomerId;
use crate::store::{Store, StoreError, read_consistent};
use crate::view::{self, Lookup};

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
            let Some(customer) = view::find(reads, &lookup)? else {
                return Ok(None);
            };
            let mine: Vec<crate::model::Interaction> =
                conversation::all_interactions(reads, customer)?
                    .into_iter()
                    .filter(|i| ConversationKey::of(i) == key)
                    .collect();
            let account_owner = account_owner_of(reads, customer)?;
            Ok(conversation::group(customer, mine, account_owner.as_deref()).pop())
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
    /// It reads the store one customer at a time, each on a consistent snapshot.
    pub fn service_report(&self, options: ReportOptions) -> Result<Report, Error> {
        options.policy.validate()?;
        let mut builder = report::Builder::new(options);
        self.each_customer(|customer| {
            let (conversations, said, account_owner) = read_consistent(&self.store(), |reads| {
                let interactions = conversation::all_interactions(reads, customer)?;
                let (said, _) = feedback_and_purchases(reads, customer, &interactions, &[])?;
                let account_owner = account_owner_of(reads, customer)?;
                let conversations =
                    conversation::group(customer, interactions, account_owner.as_deref());
                Ok::<_, Error>((conversations, said, account_owner))
            })?;
            builder.add(&conversations, said, account_owner.as_deref())?;
            Ok(())
        })?;
        Ok(builder.finish())
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

    /// Calls `visit` with each live profile, a page of ids at a time.
    fn each_customer(
        &self,
        mut visit: impl FnMut(CustomerId) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let mut after = None;
        loop {
            let page = self.store().customers(after, 1_000)?;
            for &customer in &page {
                visit(customer)?;
            }
            match page.last() {
                Some(&last) => after = Some(last),
                None => return Ok(()),
            }
        }
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
