//! Re-wrapping: a member's device opens its own share and seals it again, to one approved
//! node, bound to one unlock request. The node can use it for that request only, and only
//! until the request expires.

use std::{fmt, str::FromStr};

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::{
    AgeSecretKey, Error, NodeId, Recipient, RequestId, envelope,
    threshold::{ShareBinding, Subject, open_share},
    vss::ScalarShare,
    wire::{Reader, Writer},
};

/// What an unlock request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Purpose {
    /// Let a node open a recording and transcribe it.
    Transcribe,
    /// Let a node open a sealed transcript and publish a released copy to members.
    ReleaseTranscript,
}

impl Purpose {
    /// The wire code.
    pub(crate) fn code(self) -> u8 {
        match self {
            Self::Transcribe => 1,
            Self::ReleaseTranscript => 2,
        }
    }

    pub(crate) fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Self::Transcribe),
            2 => Some(Self::ReleaseTranscript),
            _ => None,
        }
    }

    /// The API's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Transcribe => "transcribe",
            Self::ReleaseTranscript => "release-transcript",
        }
    }

    /// Whether a key of this subject is what this purpose unlocks.
    pub fn fits(self, subject: &Subject) -> bool {
        matches!(
            (self, subject),
            (Self::Transcribe, Subject::Recording(_))
                | (Self::ReleaseTranscript, Subject::Transcript(_))
        )
    }
}

impl fmt::Display for Purpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Purpose {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        match text {
            "transcribe" => Ok(Self::Transcribe),
            "release-transcript" => Ok(Self::ReleaseTranscript),
            _ => Err(Error::InvalidText {
                what: "purpose (transcribe or release-transcript)",
            }),
        }
    }
}

/// The request a re-sealed share is bound to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestBinding {
    /// The unlock request.
    pub request_id: RequestId,
    /// The one node that may open it.
    pub node_id: NodeId,
    /// What the request is for.
    pub purpose: Purpose,
    /// Unix seconds after which the node must refuse it.
    pub expires_at: i64,
}

impl RequestBinding {
    fn encode(&self, writer: &mut Writer) {
        writer
            .fixed(self.request_id.as_bytes())
            .fixed(self.node_id.as_bytes())
            .u8(self.purpose.code())
            .i64(self.expires_at);
    }

    fn decode(reader: &mut Reader<'_>) -> Result<Self, Error> {
        Ok(Self {
            request_id: RequestId::from_bytes(reader.array()?),
            node_id: NodeId::from_bytes(reader.array()?),
            purpose: Purpose::from_code(reader.u8()?).ok_or_else(|| reader.malformed())?,
            expires_at: reader.i64()?,
        })
    }

    fn check(&self, expected: &RequestBinding) -> Result<(), Error> {
        let fields = [
            ("request ID", self.request_id == expected.request_id),
            ("node ID", self.node_id == expected.node_id),
            ("purpose", self.purpose == expected.purpose),
            ("expiry", self.expires_at == expected.expires_at),
        ];
        Error::first_mismatch(&fields)
    }
}

const NODE_SHARE_DOMAIN: &str = "quorate/node-share/v2";

/// Opens the member's own sealed share (checking it against `expected`, from the signed
/// manifest) and seals it again to `node_recipient`, bound to `request`. Returns the
/// re-sealed share; its SHA-256 ([`resealed_digest`]) goes into the signed approval.
pub fn rewrap(
    sealed_share: &[u8],
    member_key: &AgeSecretKey,
    expected: &ShareBinding,
    request: &RequestBinding,
    node_recipient: &Recipient,
) -> Result<Vec<u8>, Error> {
    if !request.purpose.fits(&expected.subject) {
        return Err(Error::BindingMismatch { field: "purpose" });
    }
    let share = open_share(sealed_share, member_key, expected)?;
    reseal(expected, &share, request, node_recipient)
}

/// Seals an opened share with its binding to the node of `request`, bound to it: what
/// [`rewrap`] does after opening, for a share opened otherwise (one a re-share made,
/// [`crate::statement::SplitKey::open_current_share`]).
pub fn reseal(
    binding: &ShareBinding,
    share: &ScalarShare,
    request: &RequestBinding,
    node_recipient: &Recipient,
) -> Result<Vec<u8>, Error> {
    if !request.purpose.fits(&binding.subject) {
        return Err(Error::BindingMismatch { field: "purpose" });
    }
    envelope::seal(
        &encode_node_share(request, binding, share),
        std::slice::from_ref(node_recipient),
    )
}

/// The digest of a re-sealed share that an approval signs, so that nobody can swap it.
pub fn resealed_digest(resealed: &[u8]) -> [u8; 32] {
    Sha256::digest(resealed).into()
}

/// The plaintext of a re-sealed share: the request binding, the share binding, the share.
pub fn encode_node_share(
    request: &RequestBinding,
    binding: &ShareBinding,
    share: &ScalarShare,
) -> Zeroizing<Vec<u8>> {
    let mut writer = Writer::new(NODE_SHARE_DOMAIN);
    request.encode(&mut writer);
    binding.encode(&mut writer);
    writer.fixed(&*share.to_bytes());
    Zeroizing::new(writer.finish())
}

/// Parses the plaintext of a re-sealed share (exposed for fuzzing).
pub fn decode_node_share(
    plaintext: &[u8],
) -> Result<(RequestBinding, ShareBinding, ScalarShare), Error> {
    let mut reader = Reader::new(plaintext, NODE_SHARE_DOMAIN, "re-sealed share")?;
    let request = RequestBinding::decode(&mut reader)?;
    let binding = ShareBinding::decode(&mut reader)?;
    let value = Zeroizing::new(reader.array::<32>()?);
    reader.finish()?;
    let share = ScalarShare::from_bytes(binding.index, &value)?;
    Ok((request, binding, share))
}

/// On the node: opens a re-sealed share, checks that it is bound to `expected` (the
/// request the node's job is for) and not expired at `now`. Returns the share with its
/// binding, which the node checks against the manifest and its commitment.
pub fn open_node_share(
    resealed: &[u8],
    node_key: &AgeSecretKey,
    expected: &RequestBinding,
    now: i64,
) -> Result<(ShareBinding, ScalarShare), Error> {
    let plaintext = envelope::open(resealed, node_key, "re-sealed share")?;
    let (request, binding, share) = decode_node_share(&plaintext)?;
    request.check(expected)?;
    if now > request.expires_at {
        return Err(Error::Expired {
            what: "unlock request",
            expired_at: request.expires_at,
            now,
        });
    }
    if !request.purpose.fits(&binding.subject) {
        return Err(Error::BindingMismatch { field: "purpose" });
    }
    Ok((binding, share))
}
