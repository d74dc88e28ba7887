//! Audiences: traits computed from the event log, and segments — named rules over
//! everything the unified profile knows — evaluated with the reasons a customer is in or
//! out.
//!
//! - [`ComputedTrait`]: count, sum, min, max, average, first, last, most frequent and
//!   unique values of an event property, over events selected by name and property
//!   conditions, for all time or the last N days. Computed from the events themselves,
//!   so the value is the same whatever order they arrived in, and follows merges,
//!   unmerges and late events at once.
//! - [`Rule`] and [`Segment`]: a typed tree (`all`, `any`, `not`, traits and computed
//!   traits, identifiers held, channels used, events performed, open conversations,
//!   feedback score, consent) with a stable JSON form; [`Rule::validate`] names the path
//!   of a bad node.
//! - [`Customers::computed_traits`], [`Customers::evaluate`],
//!   [`Customers::segments_of`] and [`Customers::members`] read them on a consistent
//!   snapshot, as of any time. They evaluate when asked: membership is as fresh as the
//!   store, with no batch to wait for. Each reads only what its rules read: where every
//!   condition over events has a window of days, only the events inside the longest
//!   window are read ([`EventStore::events_since`](crate::store::EventStore::events_since)),
//!   so "ordered in the last 90 days" costs the same after ten years of history as after
//!   one. To reach members, pass them through [`Customers::to_contact`] with the purpose
//!   of the contact.
//! - Segments kept live ([`Customers::with_live_segments`]): every write re-decides
//!   the segments it can have changed for the profiles it touched and stores entering
//!   and leaving with the reasons, on the timeline and by segment
//!   ([`Customers::live_members`]); [`Customers::refresh`] moves windows with time.
//! - [`Persona`]s ([`Customers::persona_of`]; set them with
//!   [`Customers::with_personas`] and every [`Profile`](crate::Profile) names its own)
//!   and the next best action from a
//!   [`Playbook`] ([`Customers::next_best_action`]): priorities, channels, frequency caps
//!   counted from the actions recorded on the timeline ([`Customers::record_action`]),
//!   and the consent gate for each action's purpose.
//! - Customer value on the profile ([`Customers::write_customer_value`]): RFM scores and
//!   segment, P(alive), expected purchases, CLV and its percentile, as traits whose
//!   provenance names the model, so segments ("CLV in the top 20% and P(alive) under
//!   0.5") and every channel can use them.
//!
//! ```
//! use chrono::Utc;
//! use oneview::audience::{Aggregate, ComputedTrait, EventFilter, Rule, Segment};
//! use oneview::audience::Comparison;
//! use oneview::{Channel, Customers, Event, Identifier, IdentifierKind, MemoryStore};
//! use serde_json::json;
//!
//! let customers = Customers::new(MemoryStore::new());
//! for revenue in [30.0, 45.0] {
//!     customers.ingest(
//!         Event::builder("shop", Channel::Web, "Order Completed")
//!             .identifier(IdentifierKind::Email, "ana@example.com")
//!             .properties(json!({ "revenue": revenue }))
//!             .build()?,
//!     )?;
//! }
//! let spent = ComputedTrait::new(
//!     "spent",
//!     EventFilter::named("Order Completed"),
//!     Aggregate::Sum { property: "revenue".into() },
//! );
//! let big_spenders = Segment::new(
//!     "big spenders",
//!     Rule::Trait { name: "spent".into(), test: Comparison::AtLeast(50.0) },
//! );
//! let ana = Identifier::email("ana@example.com")?;
//! let verdict = customers.evaluate(ana, &big_spenders, &[spent], Utc::now())?;
//! assert!(verdict.holds);
//! assert_eq!(verdict.reasons, ["trait spent is 75.0 (wanted ≥ 50)"]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [`Customers::computed_traits`]: crate::Customers::computed_traits
//! [`Customers::evaluate`]: crate::Customers::evaluate
//! [`Customers::segments_of`]: crate::Customers::segments_of
//! [`Customers::members`]: crate::Customers::members
//! [`Customers::to_contact`]: crate::Customers::to_contact
//! [`Customers::with_live_segments`]: crate::Customers::with_live_segments
//! [`Customers::live_members`]: crate::Customers::live_members
//! [`Customers::refresh`]: crate::Customers::refresh
//! [`Customers::persona_of`]: crate::Customers::persona_of
//! [`Customers::with_personas`]: crate::Customers::with_personas
//! [`Customers::next_best_action`]: crate::Customers::next_best_action
//! [`Customers::record_action`]: crate::Customers::record_action
//! [`Customers::write_customer_value`]: crate::Customers::write_customer_value

mod action;
mod computed;
mod facade;
mod live;
mod rule;
mod value;

use thiserror::Error;

use crate::model::{CustomerId, MembershipChange};
use crate::store::{MAX_PAGE_SIZE, PageRequest, Reads, StoreError};

pub use action::{
    ACTION_PROPERTY, Action, FrequencyCap, Persona, PersonaMatch, Playbook, Recommendation,
};
pub use computed::{
    Aggregate, Comparison, ComputedTrait, ComputedValue, EventFilter, PropertyCondition,
};
pub use facade::MembersPage;
pub(crate) use facade::ViewPersonas;
pub use live::Maintained;
pub(crate) use live::{LiveSegments, Touched};
pub use rule::{Facts, Rule, Segment, Verdict};
pub use value::{VALUE_SOURCE, VALUE_TRAITS, ValueReport};

/// What is wrong with a rule or a computed trait, and where (`rule.rules[2].of`).
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("{path}: {problem}")]
pub struct RuleError {
    /// The path of the bad node.
    pub path: String,
    /// What is wrong with it.
    pub problem: String,
}

impl RuleError {
    pub(crate) fn new(path: &str, problem: &str) -> Self {
        Self {
            path: path.to_owned(),
            problem: problem.to_owned(),
        }
    }

    /// The error of a part found at `path`, its own path taken as relative to it: paths
    /// are worded only for an error, not for every node checked.
    pub(crate) fn within(mut self, path: &str) -> Self {
        self.path.insert_str(0, path);
        self
    }
}

/// Every membership change recorded on `profiles`, oldest first.
pub(crate) fn membership_history(
    reads: &dyn Reads,
    profiles: &[CustomerId],
) -> Result<Vec<MembershipChange>, StoreError> {
    let mut changes = Vec::new();
    for &profile in profiles {
        let mut request = PageRequest::first(MAX_PAGE_SIZE);
        loop {
            let page = reads.membership_changes(profile, request)?;
            changes.extend(page.items);
            match page.next {
                Some(cursor) => request = PageRequest::after(cursor, MAX_PAGE_SIZE),
                None => break,
            }
        }
    }
    changes.sort_by_key(|c| (c.at, c.id));
    Ok(changes)
}
