//! [`Customers`]: the one entry point an application needs.

use crate::error::Error;
use crate::ingest::{self, Plan, Receipt, Record};
use crate::model::CustomerId;
use crate::store::{Page, PageRequest, Store, StoreError};
use crate::view::{self, DEFAULT_TIMELINE_ENTRIES, Lookup, Profile, TimelineEntry};

/// How often an ingest decides again when other writers keep changing the profiles it
/// touches, before it gives up with [`Error::Contention`].
const MAX_ATTEMPTS: usize = 64;

/// All customers, over one store: ingest what they did and said, read who they are.
///
/// `Customers` is `Send + Sync` whenever its store is; share it between threads behind an
/// `Arc`. Writers that race on the same profiles are resolved by the store's expectation
/// checks: the loser decides again against fresh state.
///
/// ```
/// use oneview::{Channel, Customers, Event, Identifier, IdentifierKind, MemoryStore};
///
/// let customers = Customers::new(MemoryStore::new());
/// customers.ingest(
///     Event::builder("web", Channel::Web, "Page Viewed")
///         .identifier(IdentifierKind::AnonymousId, "device-1")
///         .build()?,
/// )?;
/// customers.ingest(
///     Event::builder("web", Channel::Web, "Signed Up")
///         .identifier(IdentifierKind::AnonymousId, "device-1")
///         .identifier(IdentifierKind::Email, "Ana@Example.com")
///         .build()?,
/// )?;
/// let ana = customers.profile(Identifier::email("ana@example.com")?)?.expect("known");
/// assert_eq!(ana.identifiers.len(), 2);
/// assert_eq!(ana.event_count(), 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Customers<S> {
    store: S,
}

impl<S: Store> Customers<S> {
    /// Customers kept in `store`.
    pub fn new(store: S) -> Self {
        Self { store }
    }

    /// The store underneath, for reads the facade does not offer.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Gives back the store.
    pub fn into_store(self) -> S {
        self.store
    }

    /// Ingests an event or an interaction: resolves who it is about, attaches or merges
    /// profiles as the evidence says, and stores it, all in one atomic step.
    ///
    /// Ingesting the same event again changes nothing and reports [`ingest::Outcome::Duplicate`];
    /// an older version of a stored interaction reports [`ingest::Outcome::Outdated`].
    pub fn ingest(&self, record: impl Into<Record>) -> Result<Receipt, Error> {
        let record = record.into();
        for _ in 0..MAX_ATTEMPTS {
            match ingest::plan(&self.store, &record)? {
                Plan::Skip(receipt) => return Ok(receipt),
                Plan::Apply(commit, receipt) => {
                    match self.store.apply(std::slice::from_ref(&*commit)) {
                        Ok(outcomes) if outcomes == [crate::store::CommitOutcome::Applied] => {
                            return Ok(receipt);
                        }
                        // Another writer stored the same event first: decide again to report
                        // where it went.
                        Ok(_) | Err(StoreError::Conflict { .. }) => continue,
                        Err(err) => return Err(err.into()),
                    }
                }
            }
        }
        Err(Error::Contention {
            attempts: MAX_ATTEMPTS,
        })
    }

    /// The unified view of a customer, found by id or identifier, with the
    /// [`DEFAULT_TIMELINE_ENTRIES`] most recent timeline entries; `None` if unknown.
    pub fn profile(&self, lookup: impl Into<Lookup>) -> Result<Option<Profile>, Error> {
        self.profile_with(lookup, DEFAULT_TIMELINE_ENTRIES)
    }

    /// Like [`profile`](Self::profile), with up to `entries` timeline entries.
    pub fn profile_with(
        &self,
        lookup: impl Into<Lookup>,
        entries: usize,
    ) -> Result<Option<Profile>, Error> {
        let Some(customer) = view::find(&self.store, &lookup.into())? else {
            return Ok(None);
        };
        Ok(view::build(&self.store, customer, entries)?)
    }

    /// A page of a customer's timeline: events and interactions from every channel, newest
    /// first. Continue with [`PageRequest::after`] and the page's `next` cursor.
    pub fn timeline(
        &self,
        customer: CustomerId,
        page: PageRequest,
    ) -> Result<Page<TimelineEntry>, Error> {
        Ok(view::timeline(&self.store, customer, page)?)
    }
}
