//! The crate's top-level error.

use thiserror::Error;

use crate::model::ValidationError;
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
    /// Other writers kept changing the profiles the record touches; nothing was applied,
    /// and trying again later is safe.
    #[error("gave up after {attempts} attempts: other writers kept changing the same profiles")]
    Contention {
        /// How many times the record was decided.
        attempts: usize,
    },
}
