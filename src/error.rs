//! The crate's top-level error.

use thiserror::Error;

use crate::conversation::sla::SlaError;
use crate::model::{Identifier, IdentifierKind, MergeId, ValidationError};
use crate::store::StoreError;

/// Why a call on [`Customers`](crate::Customers) failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// The record was refused before anything was stored.
    #[error("invalid record: {0}")]
    Invalid(#[from] ValidationError),
    /// The store failed; nothing from the call was applied.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No profile answers to the id or identifier given.
    #[error("no such customer")]
    UnknownCustomer,
    /// No profile holds the identifier.
    #[error("no profile holds {0}")]
    UnknownIdentifier(Identifier),
    /// The profile has no merge with this id that can be undone (or, to block it, whose
    /// two sides were recorded).
    #[error("no merge {0} to undo on that profile")]
    UnknownMerge(MergeId),
    /// A service-level policy that cannot work (see [`SlaError`]).
    #[error("service-level policy: {0}")]
    Policy(#[from] SlaError),
    /// The record carries an identifier of an erased customer: it is on the suppression
    /// list, so the record was not stored. In a batch this is the record's own result and
    /// the rest of the batch still lands. [`Customers::lift_suppression`] lets it in again.
    ///
    /// [`Customers::lift_suppression`]: crate::Customers::lift_suppression
    #[error("refused: a {kind} identifier of an erased customer is suppressed (hash {hash})")]
    Suppressed {
        /// The identifier's kind.
        kind: IdentifierKind,
        /// Its keyed hash on the suppression list.
        hash: String,
    },
    /// No suppression has this identifier's hash.
    #[error("no suppression for that identifier")]
    NotSuppressed,
    /// A segment rule or computed trait that cannot be evaluated, with the path of the
    /// bad node.
    #[error("rule: {0}")]
    Rule(#[from] crate::audience::RuleError),
    /// A retention policy that cannot be applied.
    #[error("retention policy: {0}")]
    Retention(#[from] crate::privacy::RetentionError),
    /// Other writers kept changing the profiles the record touches; nothing was applied,
    /// and trying again later is safe.
    #[error("gave up after {attempts} attempts: other writers kept changing the same profiles")]
    Contention {
        /// How many times the record was decided.
        attempts: usize,
    },
}
