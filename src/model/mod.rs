//! Plain domain types: ids, identifiers and their normalisation, channels, events,
//! interactions, traits, consent, the audit trail, and the records of identity resolution (merges, refused links,
//! operator overrides). All of them are `serde`-serializable.

mod audit;
mod channel;
mod consent;
mod error;
mod event;
mod feedback;
mod identifier;
mod ids;
mod interaction;
mod membership;
mod merge;
mod time;
mod traits;

pub use audit::{Actor, AuditAction, AuditRecord, ErasedCounts};
pub use channel::{Channel, ChannelError};
pub use consent::{
    ConsentChoice, ConsentRecord, ConsentStatus, MAX_WORDING_BYTES, Purpose, PurposeError,
};
pub use error::{MAX_NAME_BYTES, ValidationError};
pub use event::{Event, EventBuilder};
pub use feedback::{
    Csat, Feedback, FeedbackError, FeedbackKind, FeedbackRecord, Nps, Scale, Score, csat, nps,
};
pub use identifier::{
    CustomKind, Identifier, IdentifierError, IdentifierKind, IdentifierProblem,
    MAX_IDENTIFIER_BYTES, MAX_KIND_NAME_BYTES, NormalizeOptions,
};
pub use ids::{CustomerId, EventId, InteractionId, MergeId, OverrideId};
pub use interaction::{
    Direction, Interaction, InteractionBuilder, InteractionKind, InteractionStatus,
};
pub use membership::{DigestedEvent, EventDigest, Membership, MembershipChange, MembershipState};
pub use merge::{
    EvidenceKey, MergeRecord, MergeRule, Override, OverrideRecord, Refusal, RefusalRule,
};
pub use traits::{
    MAX_TRAIT_KEY_BYTES, Provenance, ResolvedTrait, TraitOp, TraitOperation, TraitUpdate,
    resolve_traits,
};
