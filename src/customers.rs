//! [`Customers`]: the one entry point an application needs.

use crate::error::Error;
use crate::ingest::{self, Direct, Overlay, Plan, Receipt, Record};
use crate::model::CustomerId;
use crate::store::{CommitOutcome, Page, PageRequest, Store, StoreError};
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
            match ingest::plan(&Direct(&self.store), &record)? {
                Plan::Skip(receipt) => return Ok(receipt),
                Plan::Apply(commit, receipt) => {
                    match self.store.apply(std::slice::from_ref(&*commit)) {
                        Ok(outcomes) if outcomes == [CommitOutcome::Applied] => {
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

    /// Ingests many records as one atomic step: far faster than one [`ingest`](Self::ingest)
    /// per record on a store where each write is a transaction, such as SQLite.
    ///
    /// Records are decided in the order given, each seeing the effect of the ones before
    /// it, exactly as if ingested one by one. A record that fails validation gets its error
    /// in its slot and the rest are still ingested; a store failure fails the whole batch
    /// and applies none of it. The batch is held in memory until it is applied, so feed a
    /// large stream in batches of a few thousand.
    ///
    /// ```
    /// use oneview::{Channel, Customers, Event, IdentifierKind, MemoryStore, Outcome};
    ///
    /// let customers = Customers::new(MemoryStore::new());
    /// let visit = |n: u32| Event::builder("web", Channel::Web, "Page Viewed")
    ///     .message_id(&format!("m{n}"))
    ///     .identifier(IdentifierKind::AnonymousId, "device-1")
    ///     .build();
    /// let results = customers.ingest_batch([visit(1)?, visit(2)?, visit(1)?])?;
    /// let outcomes: Vec<Outcome> = results.into_iter().map(|r| r.unwrap().outcome).collect();
    /// assert_eq!(outcomes, [Outcome::Stored, Outcome::Stored, Outcome::Duplicate]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn ingest_batch<R: Into<Record>>(
        &self,
        records: impl IntoIterator<Item = R>,
    ) -> Result<Vec<Result<Receipt, Error>>, Error> {
        let records: Vec<Record> = records.into_iter().map(Into::into).collect();
        for _ in 0..MAX_ATTEMPTS {
            let mut overlay = Overlay::new(&self.store);
            overlay.prefetch(&records)?;
            let mut commits = Vec::with_capacity(records.len());
            let mut results = Vec::with_capacity(records.len());
            for record in &records {
                match ingest::plan(&overlay, record) {
                    Ok(Plan::Skip(receipt)) => results.push(Ok(receipt)),
                    Ok(Plan::Apply(commit, receipt)) => {
                        overlay.record(&commit);
                        commits.push(*commit);
                        results.push(Ok(receipt));
                    }
                    Err(Error::Invalid(invalid)) => results.push(Err(Error::Invalid(invalid))),
                    Err(other) => return Err(other),
                }
            }
            drop(overlay);
            match self.store.apply(&commits) {
                Ok(outcomes) if outcomes.iter().all(|o| *o == CommitOutcome::Applied) => {
                    return Ok(results);
                }
                // Another writer got there first: plan the batch again against fresh state.
                Ok(_) | Err(StoreError::Conflict { .. }) => continue,
                Err(err) => return Err(err.into()),
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
