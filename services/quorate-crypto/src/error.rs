//! The crate's one error type. No variant carries secret bytes, and the `Display` text of
//! each says what went wrong in words a member or an operator can act on.

use std::io;

use crate::statement::StatementKind;

/// Why an age file did not decrypt. None of these reveal anything about the plaintext.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecryptFailure {
    /// No recipient stanza opens with the key (or passphrase) given.
    #[error("it is not addressed to this key")]
    NotForThisKey,
    /// The header is not a valid age v1 header.
    #[error("its header is malformed")]
    BadHeader,
    /// The header's MAC does not verify: the header was altered.
    #[error("its header was altered (MAC mismatch)")]
    HeaderMac,
    /// The payload is damaged, truncated or altered.
    #[error("its contents are damaged, truncated or altered")]
    BadPayload,
    /// The ASCII armour around it is malformed.
    #[error("its ASCII armour is malformed")]
    BadArmor,
    /// A passphrase-protected file with a work factor this device refuses.
    #[error("its passphrase work factor is too high for this device")]
    ExcessiveWork,
    /// A format newer than this software.
    #[error("it uses an age format this version does not know")]
    UnsupportedFormat,
}

/// Everything that can go wrong in the Quorate protocol.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Bytes that should hold a Quorate structure do not parse as one.
    #[error("malformed {what}: the bytes are not a valid encoding")]
    Malformed {
        /// Which structure was being parsed.
        what: &'static str,
    },

    /// A structure whose domain names a later version than this software reads: made by a
    /// newer Quorate, or altered (the domain string is read before any signature is checked).
    #[error(
        "the {what} names format v{version}, newer than this device reads: upgrade Quorate if a newer version exists; otherwise it was altered on its way here"
    )]
    NewerFormat {
        /// Which structure was being parsed.
        what: &'static str,
        /// The version it names.
        version: u32,
    },

    /// A text form (recipient, identity line, fingerprint, ID) does not parse.
    #[error("invalid {what}")]
    InvalidText {
        /// Which kind of text was expected.
        what: &'static str,
    },

    /// A k-of-n policy outside 1 <= k <= n <= 255.
    #[error("invalid threshold {k}-of-{n}: need 1 <= k <= n <= 255")]
    InvalidThreshold {
        /// The requested k.
        k: usize,
        /// The requested n.
        n: usize,
    },

    /// An age file could not be decrypted.
    #[error("could not decrypt {what}: {failure}")]
    Decrypt {
        /// What was being decrypted.
        what: &'static str,
        /// Why.
        failure: DecryptFailure,
    },

    /// The passphrase does not open the identity file.
    #[error("the passphrase does not open this identity file")]
    WrongPassphrase,

    /// An identity file is protected by a passphrase and none was given.
    #[error("this identity file is passphrase-protected: give its passphrase")]
    PassphraseRequired,

    /// A field bound inside sealed or signed data differs from what the context expects
    /// (the share belongs to another recording, the vote to another request, ...).
    #[error("binding mismatch: {field} differs from the expected value")]
    BindingMismatch {
        /// The field that differs.
        field: &'static str,
    },

    /// A share is not a point of the sharing its commitments describe.
    #[error("share {index} is corrupt: it does not match the commitments of its sharing")]
    BadShare {
        /// The share's index (1-based).
        index: u8,
    },

    /// The shares rebuild a key that is not the one the signed manifest names: they are
    /// points of commitments other than the recording's (made up by whoever sent them).
    #[error(
        "the shares rebuild a key that is not the recording's: their commitments were not its own"
    )]
    RecipientMismatch,

    /// Fewer distinct shares than the threshold.
    #[error("not enough shares: have {have}, need {need}")]
    NotEnoughShares {
        /// Shares given.
        have: usize,
        /// Shares needed.
        need: usize,
    },

    /// In a redistribution, a current holder dealt something other than their own share
    /// (the constant term of their commitments is not their share's public image), or to
    /// another threshold than the others.
    #[error(
        "holder {dealer} dealt something other than their own share: ask them to reshare again, and tell an admin if it happens twice"
    )]
    BadDealer {
        /// The dealer's share index.
        dealer: u8,
    },

    /// In a redistribution, the sub-share a dealer sent does not match their commitments.
    #[error(
        "the sub-share from holder {dealer} does not match what they committed to: ask them to reshare again"
    )]
    BadSubShare {
        /// The dealer's share index.
        dealer: u8,
    },

    /// Two shares carry the same index.
    #[error("share {index} was given twice")]
    DuplicateShare {
        /// The repeated index.
        index: u8,
    },

    /// A statement's signature does not verify under the key it names.
    #[error("the signature on this {kind} does not verify")]
    BadSignature {
        /// The kind of statement.
        kind: StatementKind,
    },

    /// A statement of one kind was given where another was expected.
    #[error("expected a {expected}, got a {found}")]
    WrongStatementKind {
        /// The expected kind.
        expected: StatementKind,
        /// The kind found.
        found: StatementKind,
    },

    /// A statement was signed by a key that has no authority for it here.
    #[error("{kind} signed by {signer}, who may not sign it")]
    NotAuthorised {
        /// The kind of statement.
        kind: StatementKind,
        /// The short fingerprint of the signer.
        signer: String,
    },

    /// A statement or binding has expired.
    #[error("{what} expired at {expired_at} (now {now})")]
    Expired {
        /// What expired.
        what: &'static str,
        /// Its expiry, Unix seconds.
        expired_at: i64,
        /// The time it was checked against, Unix seconds.
        now: i64,
    },

    /// A value is outside what the protocol accepts (empty title, too many members, ...).
    #[error("invalid {field}: {reason}")]
    InvalidField {
        /// The field.
        field: &'static str,
        /// Why it is refused.
        reason: &'static str,
    },

    /// Reading or writing a stream failed.
    #[error("stream I/O failed: {0}")]
    Io(#[from] io::Error),
}

impl Error {
    /// `Ok` when every `(field, equal)` pair is equal; otherwise a
    /// [`Error::BindingMismatch`] naming the first field that differs.
    pub(crate) fn first_mismatch(fields: &[(&'static str, bool)]) -> Result<(), Error> {
        match fields.iter().find(|(_, equal)| !equal) {
            Some((field, _)) => Err(Error::BindingMismatch { field }),
            None => Ok(()),
        }
    }
}
