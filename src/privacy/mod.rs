//! Privacy: consent that is enforced, export of everything held about a person, erasure
//! that stays erased, and the audit trail of who did what.
//!
//! # Consent
//! Customers decide per [`Purpose`] and channel; each decision is a [`ConsentChoice`]
//! carried by an event (set one directly with [`Customers::set_consent`], or let events
//! carry them — see the Segment mapping in [`ingest::segment`](crate::ingest::segment)).
//! What is in force is worked out by event time ([`resolve_consent`]); after a merge, a
//! denial on either side holds until a grant made after the merge.
//! [`Customers::may_contact`] is the gate: it answers allowed or not, with the decision
//! the answer rests on, and [`ConsentDefaults`] answer for purposes never decided.
//! [`Customers::to_contact`] turns a list of customers (a segment, an RFM group) into a
//! [`ContactList`] for one purpose and channel: the only way to get one is to say what
//! the contact is for.
//!
//! # Export
//! [`Customers::export`] gathers everything held about a person into one
//! [`CustomerExport`], a versioned JSON document (`format` [`EXPORT_FORMAT`], `version`
//! [`EXPORT_VERSION`]) that can be handed to them as it is.
//!
//! # Erasure and the suppression list
//! [`Customers::erase`] removes the profile, every profile merged into it and everything
//! about them in one atomic step, and keeps an audit record with counts and the keyed
//! hashes (HMAC-SHA-256 under a key kept in the store) of the erased identifiers. Those
//! hashes form the suppression list: a later record carrying an erased identifier is
//! refused with [`Error::Suppressed`](crate::Error::Suppressed) — in a batch, in its own
//! slot, so the rest of the batch lands — and a replay of old data cannot bring the person
//! back. [`Customers::lift_suppression`] lets an identifier in again when the person
//! returns and asks. On SQLite no byte of the erased data is left in the file or its log:
//! `secure_delete` zeroes the deleted rows and pages, and the log is emptied into the
//! file and truncated ([`Store::purge`](crate::Store::purge)).
//!
//! Records of *other* customers that carried an erased identifier (a refused link, an
//! operator override) lose the refusal and the override; the other customer's events
//! themselves are kept as they were stored.
//!
//! # Retention
//! A [`RetentionPolicy`] keeps events (by name or channel) and interactions for so many
//! days; [`Customers::apply_retention`] removes the content of older ones, keeping what
//! holds the customer together (see [`RetentionPolicy`] for what stays and why).
//!
//! # Audit trail
//! Every operator action takes an [`Actor`] — who, and why — and leaves an
//! [`AuditRecord`]; [`Customers::audit`] lists them.
//!
//! [`Customers::set_consent`]: crate::Customers::set_consent
//! [`Customers::may_contact`]: crate::Customers::may_contact
//! [`Customers::to_contact`]: crate::Customers::to_contact
//! [`Customers::export`]: crate::Customers::export
//! [`Customers::erase`]: crate::Customers::erase
//! [`Customers::lift_suppression`]: crate::Customers::lift_suppression
//! [`Customers::audit`]: crate::Customers::audit
//! [`Customers::apply_retention`]: crate::Customers::apply_retention
//! [`Purpose`]: crate::Purpose
//! [`ConsentChoice`]: crate::ConsentChoice
//! [`Actor`]: crate::Actor
//! [`AuditRecord`]: crate::AuditRecord

mod consent;
mod export;
mod facade;
mod retention;

pub use facade::OPERATOR_SOURCE;
pub(crate) use facade::consent_in;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use uuid::Uuid;

use crate::model::{CustomerId, ErasedCounts, Identifier};
use crate::store::PrivacyKey;

pub use consent::{
    ConsentBasis, ConsentDefaults, ConsentState, ContactDecision, ContactList, EffectiveConsent,
    Regime, resolve_consent,
};
pub use export::{CustomerExport, EXPORT_FORMAT, EXPORT_VERSION, ExportedConsent};
pub use retention::{EventRetention, RetentionError, RetentionPolicy, RetentionReport};

impl PrivacyKey {
    /// A fresh random key, from the operating system's secure source.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        bytes[..16].copy_from_slice(Uuid::new_v4().as_bytes());
        bytes[16..].copy_from_slice(Uuid::new_v4().as_bytes());
        Self(bytes)
    }
}

/// The keyed hash that stands for `identifier` on the suppression list: HMAC-SHA-256 of
/// its canonical form (`kind:value`) under `key`, in lowercase hex.
///
/// ```
/// use oneview::Identifier;
/// use oneview::privacy::suppression_hash;
/// use oneview::store::PrivacyKey;
///
/// let key = PrivacyKey([7; 32]);
/// let hash = suppression_hash(&key, &Identifier::email("ana@example.com")?);
/// assert_eq!(hash.len(), 64);
/// assert_eq!(hash, suppression_hash(&key, &Identifier::email("ANA@example.com")?));
/// assert_ne!(hash, suppression_hash(&PrivacyKey([8; 32]), &Identifier::email("ana@example.com")?));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn suppression_hash(key: &PrivacyKey, identifier: &Identifier) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(&key.0).expect("HMAC takes a key of any length");
    mac.update(identifier.to_string().as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// What an erasure did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErasureReport {
    /// The live profile that was erased.
    pub customer: CustomerId,
    /// How many records of each kind were removed.
    pub removed: ErasedCounts,
    /// The keyed hashes now on the suppression list, one per erased identifier.
    pub suppressed: Vec<String>,
    /// The audit record that keeps the erasure.
    pub audit: Uuid,
}
