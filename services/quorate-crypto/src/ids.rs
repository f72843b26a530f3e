//! Typed identifiers. Each is a random UUID on the wire (16 bytes) and in text; the type
//! parameter keeps a recording ID from being passed where a request ID belongs.

use std::{fmt, hash::Hash, marker::PhantomData, str::FromStr};

use uuid::Uuid;

use crate::Error;

/// A 128-bit random identifier of the kind `K`.
pub struct Id<K> {
    uuid: Uuid,
    kind: PhantomData<fn() -> K>,
}

/// What a kind of identifier is called in messages.
pub trait IdKind {
    /// The name, such as "recording ID".
    const NAME: &'static str;
}

macro_rules! id_kinds {
    ($($(#[$doc:meta])* $marker:ident => $alias:ident, $name:literal;)*) => {$(
        $(#[$doc])*
        #[derive(Debug)]
        pub enum $marker {}
        impl IdKind for $marker {
            const NAME: &'static str = $name;
        }
        $(#[$doc])*
        pub type $alias = Id<$marker>;
    )*};
}

id_kinds! {
    /// A vault: one board, cabinet or committee.
    Vault => VaultId, "vault ID";
    /// A recording and everything sealed for it.
    Recording => RecordingId, "recording ID";
    /// An unlock or release request.
    Request => RequestId, "request ID";
    /// A transcription node.
    Node => NodeId, "node ID";
    /// A sealed transcript.
    Transcript => TranscriptId, "transcript ID";
    /// A legal hold: the votes that place it and those that lift it name it.
    Hold => HoldId, "hold ID";
}

impl<K> Id<K> {
    /// A fresh random identifier.
    pub fn random() -> Self {
        Self::from_uuid(Uuid::new_v4())
    }

    /// Wraps an existing UUID.
    pub fn from_uuid(uuid: Uuid) -> Self {
        Self {
            uuid,
            kind: PhantomData,
        }
    }

    /// From its 16 wire bytes.
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        Self::from_uuid(Uuid::from_bytes(bytes))
    }

    /// The UUID.
    pub fn uuid(&self) -> Uuid {
        self.uuid
    }

    /// The 16 wire bytes.
    pub fn as_bytes(&self) -> &[u8; 16] {
        self.uuid.as_bytes()
    }
}

impl<K> Clone for Id<K> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<K> Copy for Id<K> {}
impl<K> PartialEq for Id<K> {
    fn eq(&self, other: &Self) -> bool {
        self.uuid == other.uuid
    }
}
impl<K> Eq for Id<K> {}
impl<K> Hash for Id<K> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.uuid.hash(state);
    }
}
impl<K> PartialOrd for Id<K> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl<K> Ord for Id<K> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.uuid.cmp(&other.uuid)
    }
}

impl<K> fmt::Display for Id<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.uuid.hyphenated().fmt(f)
    }
}

impl<K: IdKind> fmt::Debug for Id<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", K::NAME, self.uuid)
    }
}

impl<K: IdKind> FromStr for Id<K> {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        Uuid::parse_str(text)
            .map(Self::from_uuid)
            .map_err(|_| Error::InvalidText { what: K::NAME })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trip() {
        let id = RecordingId::random();
        assert_eq!(id.to_string().parse::<RecordingId>().unwrap(), id);
        assert!(matches!(
            "nope".parse::<RecordingId>(),
            Err(Error::InvalidText {
                what: "recording ID"
            })
        ));
    }
}
