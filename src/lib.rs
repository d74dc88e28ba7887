//! # oneview
//!
//! One customer view shared by every channel, embedded in your application.
//!
//! Companies reach one customer through many channels — web, app, email, phone, chat,
//! store, social, support — and each keeps a partial record. `oneview` resolves the
//! identifiers those channels see (emails, phone numbers, user ids, device ids) into one
//! profile, keeps an append-only log of what the customer did and a history of what was
//! said, and serves one view of it all to every channel.
//!
//! ```
//! use oneview::{Channel, Customers, Direction, Event, IdentifierKind, Interaction, MemoryStore};
//! use serde_json::json;
//!
//! let customers = Customers::new(MemoryStore::new());
//!
//! // The newsletter knows an email; the support desk a phone number and the same email.
//! customers.ingest(
//!     Event::builder("newsletter", Channel::Email, "Subscribed")
//!         .identifier(IdentifierKind::Email, "ana@example.com")
//!         .set_trait("name", json!("Ana"))
//!         .build()?,
//! )?;
//! customers.ingest(
//!     Interaction::builder("support-desk", Channel::Phone, Direction::Inbound)
//!         .identifier(IdentifierKind::Phone, "+44 20 7946 0958")
//!         .identifier(IdentifierKind::Email, " ANA@example.com")
//!         .subject("Where is my order?")
//!         .build()?,
//! )?;
//!
//! // Either identifier finds the same person, with everything every channel saw.
//! let ana = customers.profile("phone:+442079460958".parse::<oneview::Identifier>()?)?.unwrap();
//! assert_eq!(ana.identifiers.len(), 2);
//! assert_eq!(ana.traits["name"].value, json!("Ana"));
//! assert_eq!(ana.timeline.items.len(), 2);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Map of the crate
//! - [`model`]: plain domain types — ids, [`Identifier`]s and their normalisation,
//!   [`Channel`]s, [`Event`]s, [`Interaction`]s, traits with [`Provenance`], merges.
//! - [`identity`]: identity resolution as pure logic — a fold over evidence under a
//!   [`Policy`](identity::Policy) of limits, priorities and blocked values, with
//!   explanations.
//! - [`ingest`]: turning incoming records into commits, rebuilding profiles when evidence
//!   arrives late, and reading Segment-spec messages ([`ingest::segment`]).
//! - [`store`]: the storage traits, the [`MemoryStore`] backend, the embedded
//!   `SqliteStore` backend (feature `sqlite`, on by default), the `PostgresStore` backend
//!   for a shared server (feature `postgres`), and (feature `testkit`) the `conformance`
//!   tests every backend must pass.
//! - [`view`]: the unified [`Profile`] and its timeline.
//! - [`conversation`]: a customer's interactions read as threads across channels, with
//!   replies and owners, service levels ([`conversation::sla`]), the accountability
//!   report and the follow-up of feedback.
//! - [`privacy`]: consent per purpose and channel and the `may_contact` gate, export of
//!   everything held about a customer, erasure with a suppression list, the audit trail.
//! - [`io`]: the whole store as JSON Lines, to back it up, move it to another backend,
//!   or carry it across releases.
//! - [`audience`]: traits computed from the event log, and segments — rules over the
//!   whole profile — evaluated with their reasons, on read or kept live on every write.
//! - [`analytics`]: RFM summaries, scores and segments, and customer lifetime value
//!   from the BG/NBD, Pareto/NBD and Gamma-Gamma models.
//! - [`Customers`]: the facade over all of it, including the operator's corrections
//!   (`unmerge`, `detach`, `force_merge`, `preview_merge`), `explain`, and the privacy
//!   calls (`may_contact`, `set_consent`, `export`, `erase`, `audit`).
//!
//! # Features
//! - `sqlite` (default): `SqliteStore`, a fast, crash-safe store in one file, with SQLite
//!   compiled in so nothing needs installing.
//! - `testkit`: exposes `store::conformance`, so a backend crate can run the contract's
//!   behaviour tests against its own store.

pub mod analytics;
pub mod audience;
pub mod conversation;
mod customers;
mod error;
pub mod identity;
pub mod ingest;
pub mod io;
pub mod model;
pub mod privacy;
pub mod store;
pub mod view;

pub use customers::Customers;
pub use error::Error;
pub use ingest::{Outcome, Receipt, Record};
pub use model::*;
#[cfg(feature = "sqlite")]
pub use store::sqlite::SqliteStore;
pub use store::{MemoryStore, PageRequest, Store, StoreError};
pub use view::{Lookup, Profile, TimelineEntry};

/// The README's examples, compiled and run as doc tests so they cannot go stale. They use
/// the default SQLite backend.
#[cfg(all(doctest, feature = "sqlite"))]
#[doc = include_str!("../README.md")]
struct ReadmeExamples;
