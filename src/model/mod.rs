//! Plain domain types: ids, identifiers and their normalisation, channels, events,
//! interactions, traits and merges. All of them are `serde`-serializable.

mod channel;
mod error;
mod event;
mod identifier;
mod ids;
mod interaction;
mod merge;
mod traits;

pub use channel::{Channel, ChannelError};
pub use error::{MAX_NAME_BYTES, ValidationError};
pub use event::{Event, EventBuilder};
pub use identifier::{
    CustomKind, Identifier, IdentifierError, IdentifierKind, IdentifierProblem,
    MAX_IDENTIFIER_BYTES, MAX_KIND_NAME_BYTES, NormalizeOptions,
};
pub use ids::{CustomerId, EventId, InteractionId, MergeId};
pub use interaction::{
    Direction, Interaction, InteractionBuilder, InteractionKind, InteractionStatus,
};
pub use merge::{MergeRecord, MergeRule};
pub use traits::{
    MAX_TRAIT_KEY_BYTES, Provenance, ResolvedTrait, TraitOp, TraitOperation, TraitUpdate,
    resolve_traits,
};
