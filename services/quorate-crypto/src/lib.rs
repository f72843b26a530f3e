//! The Quorate protocol as a library: identities, age envelopes, k-of-n threshold shares,
//! re-wrapping to approved nodes, signed statements, the verified roster and blind-index
//! tokens.
//!
//! It does no I/O of its own: no files, no network, no async runtime. Streams come in as
//! `Read`/`Write`, everything else as bytes, so the CLI, the node, the server and the tests
//! all run the same checks. Secrets live in zeroizing types whose `Debug` is redacted;
//! errors ([`Error`]) never carry secret bytes. `docs/PROTOCOL.md` describes the formats.

pub mod audit;
pub mod blind;
pub mod envelope;
mod error;
pub mod identity;
mod ids;
pub mod release;
pub mod reshare;
pub mod retention;
pub mod rewrap;
pub mod roster;
mod secret;
pub mod statement;
pub mod threshold;
pub mod tracks;
pub mod vss;
mod wire;

pub use age::secrecy;
pub use error::{DecryptFailure, Error};
pub use identity::{AgeSecretKey, Fingerprint, Identity, IdentityFile, PublicIdentity, Recipient};
pub use ids::{HoldId, Id, IdKind, NodeId, RecordingId, RequestId, TranscriptId, VaultId};
pub use secret::SecretBytes;
pub use statement::verify_any;
