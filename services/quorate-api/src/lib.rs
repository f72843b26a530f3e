//! The JSON bodies of the Quorate HTTP API (`/api/v1`), shared by the server and the typed
//! client so that both sides agree by construction. Binary values (signed statements,
//! sealed data) travel as standard base64; Ed25519 public keys as unpadded base64url;
//! age recipients as `age1…`; IDs as UUIDs; times as Unix seconds.

use std::{fmt, str::FromStr};

use base64::{Engine, engine::general_purpose::STANDARD};
use serde::{Deserialize, Serialize};

/// Bytes that travel as standard base64: signed statements, sealed shares and files. They
/// are decoded once, when the JSON is read (a field that is not base64 refuses the whole
/// body), so no code behind the API handles the text.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Base64(pub Vec<u8>);

impl Base64 {
    /// The bytes.
    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }
}

impl From<Vec<u8>> for Base64 {
    fn from(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }
}

impl<const N: usize> From<[u8; N]> for Base64 {
    fn from(bytes: [u8; N]) -> Self {
        Self(bytes.to_vec())
    }
}

impl From<&[u8]> for Base64 {
    fn from(bytes: &[u8]) -> Self {
        Self(bytes.to_vec())
    }
}

// No `AsRef<[u8]>`: a base64 engine takes `impl AsRef<[u8]>`, and decoding these (already
// decoded) bytes again must not compile.
impl std::ops::Deref for Base64 {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

/// Only the length: the bytes may be sealed key material, and are long.
impl fmt::Debug for Base64 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Base64({} bytes)", self.0.len())
    }
}

impl Serialize for Base64 {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&STANDARD.encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for Base64 {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        STANDARD
            .decode(text.as_bytes())
            .map(Self)
            .map_err(|_| serde::de::Error::custom("expected standard base64 (RFC 4648, padded)"))
    }
}

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Base64 {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .content_encoding("base64")
            .description(Some("Bytes, standard base64 (RFC 4648, padded)."))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Base64 {}

/// A value outside one of the API's closed sets (from a database row or a command line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownValue {
    /// What kind of value was expected, such as "request status".
    pub kind: &'static str,
    /// What was found.
    pub value: String,
    /// The values that would have been accepted.
    pub expected: &'static [&'static str],
}

impl fmt::Display for UnknownValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} is not a {}: expected one of {}",
            self.value,
            self.kind,
            self.expected.join(", ")
        )
    }
}

impl std::error::Error for UnknownValue {}

/// Declares a closed set of wire strings once: the enum, its serde and OpenAPI names, its
/// text form and its parser all come from the one list of `Variant = "wire"` pairs (each
/// wire string the variant's name in kebab-case).
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        $name:ident, $kind:literal {
            $($(#[$variant_meta:meta])* $variant:ident = $wire:literal,)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        // The derives read kebab-case here rather than `$wire` (a macro fragment they do not
        // see as a string); the unit tests hold the two to the same text.
        #[serde(rename_all = "kebab-case")]
        pub enum $name {
            $($(#[$variant_meta])* $variant,)+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];
            const WIRE: &'static [&'static str] = &[$($wire),+];

            /// The wire string.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $wire,)+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownValue;

            fn from_str(text: &str) -> Result<Self, UnknownValue> {
                match text {
                    $($wire => Ok(Self::$variant),)+
                    _ => Err(UnknownValue {
                        kind: $kind,
                        value: text.to_owned(),
                        expected: Self::WIRE,
                    }),
                }
            }
        }

        impl TryFrom<String> for $name {
            type Error = UnknownValue;

            fn try_from(text: String) -> Result<Self, UnknownValue> {
                text.parse()
            }
        }
    };
}

wire_enum! {
    /// What a signed-in party is.
    PartyRole, "role" {
        /// A member who can also sign roster entries, node approvals and invites.
        Admin = "admin",
        /// A member: holds shares, requests and votes.
        Member = "member",
        /// A recording machine: signs in and uploads, nothing else.
        Recorder = "recorder",
        /// A transcription node.
        Node = "node",
    }
}

wire_enum! {
    /// A member's role on the roster.
    MemberRole, "member role" {
        /// Signs roster entries and node approvals, creates invites.
        Admin = "admin",
        /// Holds shares, requests and votes.
        Member = "member",
        /// Records meetings unattended: signs in and uploads; holds no share, cannot
        /// request, vote or read.
        Recorder = "recorder",
    }
}

impl From<quorate_crypto::statement::Role> for MemberRole {
    fn from(role: quorate_crypto::statement::Role) -> Self {
        use quorate_crypto::statement::Role;
        match role {
            Role::Admin => Self::Admin,
            Role::Member => Self::Member,
            Role::Recorder => Self::Recorder,
        }
    }
}

wire_enum! {
    /// Where a member is in their life on the vault.
    MemberStatus, "member status" {
        /// Enrolled, waiting for an admin to sign their roster entry.
        Pending = "pending",
        /// On the roster.
        Active = "active",
        /// Taken off the roster.
        Removed = "removed",
    }
}

wire_enum! {
    /// Where a node is in its life on the vault.
    NodeStatus, "node status" {
        /// Enrolled, waiting for an admin's approval.
        Pending = "pending",
        /// Approved (devices check the approval's expiry themselves).
        Approved = "approved",
        /// Revoked for good.
        Revoked = "revoked",
    }
}

wire_enum! {
    /// What a one-time invite enrols.
    InvitePurpose, "invite purpose" {
        /// A member.
        Member = "member",
        /// A recorder (a machine that records meetings and uploads them).
        Recorder = "recorder",
        /// A transcription node.
        Node = "node",
    }
}

wire_enum! {
    /// What a one-time code enrols.
    CodePurpose, "code purpose" {
        /// The vault's first admin.
        FirstAdmin = "first-admin",
        /// A member.
        Member = "member",
        /// A recorder.
        Recorder = "recorder",
        /// A transcription node.
        Node = "node",
    }
}

impl From<InvitePurpose> for CodePurpose {
    fn from(purpose: InvitePurpose) -> Self {
        match purpose {
            InvitePurpose::Member => Self::Member,
            InvitePurpose::Recorder => Self::Recorder,
            InvitePurpose::Node => Self::Node,
        }
    }
}

wire_enum! {
    /// How far a recording's ciphertext has arrived.
    RecordingStatus, "recording status" {
        /// The upload is open.
        Uploading = "uploading",
        /// Every byte is stored and its SHA-256 matched the manifest.
        Complete = "complete",
    }
}

wire_enum! {
    /// What an unlock request would open.
    SubjectKind, "subject kind" {
        /// A recording.
        Recording = "recording",
        /// A sealed transcript.
        Transcript = "transcript",
    }
}

wire_enum! {
    /// What an unlock request lets its node do.
    RequestPurpose, "request purpose" {
        /// Open a recording and transcribe it.
        Transcribe = "transcribe",
        /// Open a sealed transcript and publish a released copy to the members.
        ReleaseTranscript = "release-transcript",
    }
}

impl From<quorate_crypto::rewrap::Purpose> for RequestPurpose {
    fn from(purpose: quorate_crypto::rewrap::Purpose) -> Self {
        use quorate_crypto::rewrap::Purpose;
        match purpose {
            Purpose::Transcribe => Self::Transcribe,
            Purpose::ReleaseTranscript => Self::ReleaseTranscript,
        }
    }
}

wire_enum! {
    /// Where an unlock request is.
    RequestStatus, "request status" {
        /// Taking votes.
        Open = "open",
        /// Enough approvals: the node may carry it out.
        Quorate = "quorate",
        /// Enough denials that it can never be quorate.
        Rejected = "rejected",
        /// Closed by time before it was quorate.
        Expired = "expired",
    }
}

wire_enum! {
    /// A member's vote.
    VoteDecision, "decision" {
        /// For, with the share re-sealed to the node.
        Approve = "approve",
        /// Against.
        Deny = "deny",
    }
}

wire_enum! {
    /// Where a node's job is.
    JobStatus, "job status" {
        /// Waiting for its node.
        Queued = "queued",
        /// Claimed by its node, under a lease.
        Leased = "leased",
        /// Finished: the transcript or released copy is stored.
        Done = "done",
        /// The node gave up (or ran out of attempts).
        Failed = "failed",
    }
}

/// Every error: a stable machine-readable code and a message for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// Stable, machine-readable (`not_found`, `invalid_code`, ...).
    pub code: String,
    /// For people.
    pub message: String,
}

/// A party's public keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PublicKeys {
    /// The age recipient, `age1…`.
    pub recipient: String,
    /// The Ed25519 verifying key, unpadded base64url.
    pub verifying_key: String,
}

/// `POST /api/v1/enrol/first-admin`: redeem the bootstrap code with a self-signed genesis
/// roster entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct FirstAdminEnrolment {
    /// The one-time code the server printed.
    pub code: String,
    /// The genesis roster entry (a signed statement), base64.
    pub genesis: Base64,
}

/// The answer to an enrolment: what the device pins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Enrolled {
    /// The vault.
    pub vault_id: String,
    /// Hex SHA-256 digest of the genesis roster entry: the device pins it.
    pub roster_genesis: String,
    /// The genesis roster entry itself (signed, base64): the device checks it against
    /// `roster_genesis` and shows the first admin's name and fingerprint to compare out of
    /// band.
    pub genesis_entry: Base64,
    /// The enrolled party's fingerprint (hex).
    pub fingerprint: String,
}

/// `GET /api/v1/vaults/{vault}/roster`: the signed chain, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RosterChain {
    /// The vault.
    pub vault_id: String,
    /// Signed roster entries, base64, sequence 0 first.
    pub entries: Vec<Base64>,
}

/// `POST /api/v1/auth/challenge`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ChallengeRequest {
    /// The vault to sign in to.
    pub vault_id: String,
    /// The fingerprint (hex) of the member or node signing in.
    pub fingerprint: String,
}

/// A single-use sign-in challenge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Challenge {
    /// Which challenge.
    pub challenge_id: String,
    /// The nonce to sign, base64.
    pub nonce: Base64,
    /// When it stops working.
    pub expires_at: i64,
}

/// `POST /api/v1/auth/session`: the signed challenge.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SessionRequest {
    /// The challenge answered.
    pub challenge_id: String,
    /// Ed25519 signature over the sign-in message for the nonce, base64.
    pub signature: Base64,
}

/// A session: send the token as `Authorization: Bearer …`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Session {
    /// The bearer token (256 random bits, base64url). The server keeps only its hash.
    pub token: String,
    /// When it expires; sign in again then.
    pub expires_at: i64,
}

/// `GET /api/v1/me`: who a session belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Me {
    /// The vault.
    pub vault_id: String,
    /// The member's fingerprint (hex).
    pub fingerprint: String,
    /// Their name.
    pub name: String,
    /// What they are.
    pub role: PartyRole,
    /// For a node, its ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_id: Option<String>,
}

/// `POST /api/v1/vaults/{vault}/invites` (admins): a one-time code for a member or a node.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct InviteRequest {
    /// Whom it enrols.
    pub purpose: InvitePurpose,
    /// Lifetime in seconds (default one day, at most a week).
    #[serde(default)]
    pub ttl_seconds: Option<i64>,
}

/// A new invite: give the code to the invitee over a channel you trust.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Invite {
    /// The one-time code.
    pub code: String,
    /// When it stops working.
    pub expires_at: i64,
}

/// `POST /api/v1/enrol/member`: redeem an invite with one's public keys. The member stays
/// pending until an admin signs their roster entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct MemberEnrolment {
    /// The invite code.
    pub code: String,
    /// The name to show to the admins.
    pub name: String,
    /// The member's public keys.
    pub keys: PublicKeys,
}

/// A member as the server lists them (the roster chain is the authority; this is a view).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MemberView {
    /// Fingerprint (hex).
    pub fingerprint: String,
    /// Name.
    pub name: String,
    /// Their role.
    pub role: MemberRole,
    /// Where they are.
    pub status: MemberStatus,
    /// Public keys.
    pub keys: PublicKeys,
}

/// `POST /api/v1/vaults/{vault}/roster` (admins): append a signed roster entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RosterAppend {
    /// The signed entry, base64.
    pub entry: Base64,
}

/// The answer to a roster append: the entry's position in the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RosterAppended {
    /// The sequence number the entry took (the genesis is 0).
    pub sequence: u64,
}

/// One audit entry (`GET /api/v1/vaults/{vault}/audit?after=SEQ&limit=N`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEntryView {
    /// Position in the vault's chain.
    pub seq: u64,
    /// Unix seconds.
    pub time: i64,
    /// A fingerprint (hex) or `server`.
    pub actor: String,
    /// What happened.
    pub action: String,
    /// To what.
    pub subject: String,
    /// The signed statement behind it, base64, if any.
    pub statement: Option<Base64>,
    /// Previous entry's hash, hex.
    pub prev_hash: String,
    /// This entry's hash, hex.
    pub hash: String,
}

/// `POST /api/v1/vaults` (admins): a new vault for another board or committee.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewVault {
    /// Its name, as the server lists it (visible to the server: keep it generic).
    pub name: String,
}

/// A created vault with the one-time code for its first admin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreatedVault {
    /// The new vault.
    pub vault_id: String,
    /// The first-admin enrolment code (redeem with a genesis entry for the new vault).
    pub first_admin_code: String,
    /// When the code stops working.
    pub expires_at: i64,
}

/// `PUT /api/v1/vaults/{vault}/retention` (an admin's signed `RetentionRule`) and
/// `POST /api/v1/vaults/{vault}/holds` (a member's signed `LegalHold` vote).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct StatementUpload {
    /// The signed statement, base64.
    pub statement: Base64,
}

/// `GET /api/v1/vaults/{vault}/retention`: every signed retention rule, each scope's history
/// in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RetentionRules {
    /// Signed `RetentionRule`s, base64. Verify each against the roster (an admin signed it);
    /// for a recording, its newest override is in force, else the vault's newest rule.
    pub rules: Vec<Base64>,
}

/// `GET /api/v1/vaults/{vault}/holds`: every signed vote on every legal hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HoldVotes {
    /// Signed `LegalHold` votes, base64, oldest first. A hold is placed (or lifted) once k
    /// distinct current members voted for the same hold, action, scope and reason.
    pub votes: Vec<Base64>,
}

/// `POST /api/v1/vaults/{vault}/holds`: the vote was counted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HoldVoteCounted {
    /// Whether this vote decided the hold: k distinct current members have now voted to
    /// place (or lift) it, and the server has placed (or lifted) it.
    pub decided: bool,
}

/// `GET`/`PUT /api/v1/vaults/{vault}/policy`: the vault's newest signed policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PolicyStatement {
    /// The signed `VaultPolicy`, base64. Verify it against the roster: an admin must have
    /// signed it, and its sequence must not be older than the newest the device has seen.
    pub statement: Base64,
}

/// `POST /api/v1/enrol/node`: a node redeems a node invite with the keys it generated.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NodeEnrolment {
    /// The node invite code.
    pub code: String,
    /// A name for the admins (the host name, say).
    pub name: String,
    /// The node's public keys.
    pub keys: PublicKeys,
}

/// The answer to a node's enrolment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NodeEnrolled {
    /// The vault.
    pub vault_id: String,
    /// The node's ID, for the admin's approval statement.
    pub node_id: String,
    /// The node's fingerprint (hex).
    pub fingerprint: String,
    /// Hex SHA-256 digest of the vault's genesis roster entry: the node pins it.
    pub roster_genesis: String,
    /// The genesis roster entry itself (signed, base64), to show the first admin.
    pub genesis_entry: Base64,
}

/// A node as the server lists it (its signed approval is the authority).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NodeView {
    /// The node's ID.
    pub node_id: String,
    /// Its name.
    pub name: String,
    /// Its fingerprint (hex).
    pub fingerprint: String,
    /// Its public keys.
    pub keys: PublicKeys,
    /// Where it is (an approval past its expiry is `approved` here; devices check the
    /// expiry in the statement).
    pub status: NodeStatus,
    /// The newest signed `NodeApproval` (or revocation), base64.
    pub approval: Option<Base64>,
    /// When the approval lapses, Unix seconds.
    pub approval_expires_at: Option<i64>,
    /// The approved model's SHA-256, hex.
    pub model_sha256: Option<String>,
}

/// `POST /api/v1/vaults/{vault}/nodes/{node}/approval` (admins): a signed approval or
/// revocation.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NodeApprovalUpload {
    /// The signed `NodeApproval`, base64.
    pub approval: Base64,
}

/// One member's sealed share of a new recording's key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SealedShareUpload {
    /// The member's fingerprint (hex), as the manifest names them.
    pub member: String,
    /// The share sealed to the member's recipient (an age file), base64.
    pub sealed: Base64,
}

/// `POST /api/v1/vaults/{vault}/recordings`: a recording's signed manifest and the sealed
/// shares; the ciphertext follows through the upload it opens.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewRecording {
    /// The uploader's signed `RecordingManifest`, base64.
    pub manifest: Base64,
    /// One sealed share per member the manifest names.
    pub shares: Vec<SealedShareUpload>,
}

/// `POST /api/v1/vaults/{vault}/live-uploads`: opens the upload of a recording whose
/// ciphertext's length and SHA-256 are known only when recording stops. Its ciphertext is
/// uploaded while it is made; the signed manifest and the sealed shares, sent then to
/// `POST /api/v1/vaults/{vault}/recordings`, complete it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewLiveUpload {
    /// The recording's ID, chosen by the device (a UUID), as its manifest will name it.
    pub recording_id: String,
}

/// Where and how far a recording's upload is (tus 1.0: `PATCH` the upload URL).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UploadState {
    /// The recording.
    pub recording_id: String,
    /// The upload URL, relative to the server (`/api/v1/uploads/{recording}`).
    pub upload_url: String,
    /// The ciphertext's length, from the manifest; absent while a live upload's length is
    /// deferred (tus `Upload-Defer-Length`: the manifest sent when recording stops sets it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_length: Option<u64>,
    /// Bytes the server has stored.
    pub upload_offset: u64,
    /// When an upload left alone is discarded, Unix seconds (each stored chunk extends it).
    pub expires_at: i64,
}

/// A recording as the server lists it: the signed manifest is the authority.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RecordingView {
    /// The recording.
    pub recording_id: String,
    /// The uploader's fingerprint (hex).
    pub uploader: String,
    /// How far its upload is.
    pub status: RecordingStatus,
    /// The signed `RecordingManifest`, base64.
    pub manifest: Base64,
    /// Exact ciphertext length.
    pub ciphertext_len: u64,
    /// The threshold k.
    pub threshold: u8,
    /// The number of shares n.
    pub shares: u8,
    /// When created, Unix seconds.
    pub created_at: i64,
    /// When the upload completed, Unix seconds.
    pub completed_at: Option<i64>,
}

/// `GET /api/v1/vaults/{vault}/recordings/{recording}/share`: the caller's own sealed share.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SealedShare {
    /// The recording.
    pub recording_id: String,
    /// The holder's fingerprint (hex).
    pub member: String,
    /// The share's index (1-based), as in the manifest.
    pub index: u8,
    /// The sealed share (an age file), base64.
    pub sealed: Base64,
}

/// `POST /api/v1/vaults/{vault}/requests`: a member's signed unlock request.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewUnlockRequest {
    /// The signed `UnlockRequest`, base64.
    pub request: Base64,
}

/// One vote on a request, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VoteView {
    /// The voter's fingerprint (hex).
    pub voter: String,
    /// For or against.
    pub decision: VoteDecision,
    /// The signed `Vote`, base64.
    pub statement: Base64,
    /// When received, Unix seconds.
    pub created_at: i64,
}

/// An unlock request with its votes so far. The signed statements are the authority:
/// devices verify them (and the subject's manifest and the node's approval) themselves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RequestView {
    /// The request.
    pub request_id: String,
    /// What it would open.
    pub subject_kind: SubjectKind,
    /// The recording or transcript ID.
    pub subject_id: String,
    /// What its node may do.
    pub purpose: RequestPurpose,
    /// The node that would receive the shares.
    pub node_id: String,
    /// The requester's fingerprint (hex).
    pub requester: String,
    /// Where it is.
    pub status: RequestStatus,
    /// Approvals needed (k of the subject's split).
    pub threshold: u8,
    /// Members whose approval can count (share holders other than the requester).
    pub eligible: u8,
    /// Approvals so far.
    pub approvals: u8,
    /// Denials so far.
    pub denials: u8,
    /// The signed `UnlockRequest`, base64.
    pub statement: Base64,
    /// The votes, oldest first.
    pub votes: Vec<VoteView>,
    /// When made, Unix seconds.
    pub created_at: i64,
    /// When it closes, Unix seconds.
    pub expires_at: i64,
}

/// `POST /api/v1/vaults/{vault}/requests/{request}/votes`: a signed vote; an approval
/// carries the voter's share re-sealed to the request's node.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct VoteUpload {
    /// The signed `Vote`, base64.
    pub vote: Base64,
    /// For an approval: the share re-sealed to the node (an age file), base64.
    #[serde(default)]
    pub resealed_share: Option<Base64>,
}

/// A job a node has claimed: everything it needs, all of it signed or sealed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobClaim {
    /// The quorate request the job carries out.
    pub request_id: String,
    /// The vault.
    pub vault_id: String,
    /// Proof of the lease: send it with progress, failure and completion.
    pub lease_token: String,
    /// When the lease lapses unless renewed, Unix seconds.
    pub lease_expires_at: i64,
    /// How many times the job has been claimed (this claim included).
    pub attempt: u32,
    /// The signed `UnlockRequest`, base64.
    pub request: Base64,
    /// The signed manifest of the subject (`RecordingManifest` for `transcribe`), base64.
    pub subject_manifest: Base64,
    /// The approvals: each vote with the share it re-sealed to this node.
    pub approvals: Vec<NodeShare>,
    /// The signed `ReshareDeal`s of every completed re-share of the subject's key, one list
    /// per re-share, oldest first: replayed from the manifest, they give the current holders,
    /// to whom a transcript's key is split.
    #[serde(default)]
    pub subject_history: Vec<Vec<Base64>>,
}

/// One approval as a node receives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NodeShare {
    /// The voter's fingerprint (hex).
    pub voter: String,
    /// The signed `Vote`, base64.
    pub vote: Base64,
    /// The share re-sealed to the node, base64.
    pub resealed_share: Base64,
}

/// `POST /api/v1/jobs/{request}/progress`: renews the lease and says how far the job is.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct JobProgress {
    /// The lease token from the claim.
    pub lease_token: String,
    /// Progress in thousandths (0 to 1000).
    pub progress_permille: u16,
    /// What the node is doing (`decrypting`, `transcribing`, ...).
    pub stage: String,
}

/// A renewed lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Lease {
    /// When it lapses unless renewed again, Unix seconds.
    pub lease_expires_at: i64,
}

/// `POST /api/v1/jobs/{request}/return`: the node is stopping and hands the job back.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct JobReturn {
    /// The lease token from the claim.
    pub lease_token: String,
}

/// `POST /api/v1/jobs/{request}/fail`: the node gives up on a job, saying why.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct JobFailure {
    /// The lease token from the claim.
    pub lease_token: String,
    /// Why, for the members (never plaintext).
    pub reason: String,
}

/// `POST /api/v1/jobs/{request}/complete`: the sealed transcript, its signed manifest and
/// the shares of its key.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct JobCompletion {
    /// The lease token from the claim.
    pub lease_token: String,
    /// The node's signed `TranscriptManifest`, base64.
    pub manifest: Base64,
    /// The sealed transcript (an age file), base64.
    pub transcript: Base64,
    /// One sealed share of the transcript key per member the manifest names.
    pub shares: Vec<SealedShareUpload>,
}

/// A job as members see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobView {
    /// The request it carries out.
    pub request_id: String,
    /// The node.
    pub node_id: String,
    /// Where it is.
    pub status: JobStatus,
    /// Claims so far.
    pub attempts: u32,
    /// Progress in thousandths.
    pub progress_permille: u16,
    /// The node's last stage.
    pub stage: Option<String>,
    /// Why it failed.
    pub failure: Option<String>,
    /// The transcript it produced.
    pub transcript_id: Option<String>,
    /// Last change, Unix seconds.
    pub updated_at: i64,
}

/// A sealed transcript.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TranscriptView {
    /// The transcript.
    pub transcript_id: String,
    /// The recording it transcribes.
    pub recording_id: String,
    /// The request that allowed it.
    pub request_id: String,
    /// The node that made it.
    pub node_id: String,
    /// The node's signed `TranscriptManifest`, base64.
    pub manifest: Base64,
    /// Length of the sealed transcript.
    pub ciphertext_len: u64,
    /// When stored, Unix seconds.
    pub created_at: i64,
}

/// `POST /api/v1/enrol/lookup`: what a one-time code is for, without using it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CodeLookup {
    /// The code.
    pub code: String,
}

/// What a code is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CodeInfo {
    /// The vault it enrols into.
    pub vault_id: String,
    /// Whom it enrols.
    pub purpose: CodePurpose,
    /// When it stops working, Unix seconds.
    pub expires_at: i64,
}

/// `GET /api/v1/vaults/{vault}/search-key`: the vault's search key as the caller may see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SearchKeyView {
    /// The admin's signed `SearchKeyCommitment`, base64; absent until the vault has a key.
    /// It names generation 0 of the key.
    pub commitment: Option<Base64>,
    /// The admins' signed `SearchKeyRotation`s, base64, generation 1 first: the newest names
    /// the key in use.
    #[serde(default)]
    pub rotations: Vec<Base64>,
    /// The caller's sealed copy of the newest key, base64; absent until someone shares it.
    pub sealed: Option<Base64>,
    /// Who holds a sealed copy of the newest key: member fingerprints (hex) and node IDs.
    pub holders: Vec<String>,
    /// The caller's sealed copy of the key before the newest, base64, while released minutes
    /// are still indexed under it (a search sends tokens under both until they are not).
    #[serde(default)]
    pub previous_sealed: Option<Base64>,
    /// How many released transcripts are still indexed under an older key.
    #[serde(default)]
    pub reindexing: u64,
}

/// `POST /api/v1/vaults/{vault}/search-key/rotations` (admins): replace the search key.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SearchKeyRotationUpload {
    /// The signed `SearchKeyRotation`, base64: the next generation, naming the current key
    /// and the current roster head.
    pub rotation: Base64,
    /// The new key sealed to every current member (and to approved nodes).
    pub grants: Vec<SealedGrant>,
}

/// `PUT /api/v1/vaults/{vault}/released/{transcript}/index` (members): a released
/// transcript's postings under the newest search key, replacing those under an older one.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Reindex {
    /// The search key generation the postings were made under: the newest.
    pub generation: u64,
    /// The postings, base64 of 24-byte records as in a release completion.
    pub postings: Base64,
}

/// `POST /api/v1/vaults/{vault}/search-key` (admins): create the vault's search key (with
/// its commitment) or share it with more holders.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SearchKeyShares {
    /// The signed `SearchKeyCommitment`, base64: required when the vault has no key yet, and
    /// otherwise absent or equal to the stored one.
    pub commitment: Option<Base64>,
    /// The generation of the key sealed in `grants` (0 unless rotated): refused unless it is
    /// the newest, so a copy of an old key is never stored as the new one's.
    #[serde(default)]
    pub generation: u64,
    /// One sealed copy per new holder.
    pub grants: Vec<SealedGrant>,
}

/// A key sealed to one holder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SealedGrant {
    /// A member's fingerprint (hex) or a node's ID.
    pub holder: String,
    /// The sealed key, base64.
    pub sealed: Base64,
}

/// `POST /api/v1/jobs/{request}/release`: a node completes a release job.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ReleaseCompletion {
    /// The lease token from the claim.
    pub lease_token: String,
    /// The node's signed `ReleaseManifest`, base64.
    pub manifest: Base64,
    /// The released copy (an age file to the release key), base64.
    pub copy: Base64,
    /// The release key sealed to each member the manifest names.
    pub grants: Vec<SealedGrant>,
    /// The blind-index postings, base64 of 24-byte records (token 16 bytes, segment and term
    /// frequency as big-endian u32), in the order the manifest's digest covers.
    pub postings: Base64,
    /// The search key generation the postings were made under: the newest.
    #[serde(default)]
    pub search_key_generation: u64,
}

/// A released transcript: the copy members read and search.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReleasedView {
    /// The transcript.
    pub transcript_id: String,
    /// Its recording.
    pub recording_id: String,
    /// The quorate release request.
    pub request_id: String,
    /// The node's signed `ReleaseManifest`, base64.
    pub manifest: Base64,
    /// Length of the released copy in bytes.
    pub ciphertext_len: u64,
    /// Members who hold a sealed copy of the release key (hex fingerprints).
    pub members: Vec<String>,
    /// When released, Unix seconds.
    pub created_at: i64,
    /// The search key generation its postings are under.
    #[serde(default)]
    pub key_generation: u64,
}

/// `POST /api/v1/vaults/{vault}/search`: blind tokens in, ranked transcripts out.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    /// The query's blind tokens, hex (16 bytes each), 1 to 32 of them.
    pub tokens: Vec<String>,
    /// While minutes are re-indexed under a new search key: the same words' tokens under the
    /// previous key, in the same order (one per token). A transcript matches a word by
    /// either of its tokens.
    #[serde(default)]
    pub previous_tokens: Option<Vec<String>>,
    /// Hits per page (1 to 100, default 20).
    pub limit: Option<u32>,
    /// Hits to skip (default 0).
    pub offset: Option<u32>,
}

/// Ranked hits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SearchResults {
    /// How many released transcripts match at all.
    pub total: u64,
    /// This page, best first.
    pub hits: Vec<SearchHit>,
}

/// One released transcript that matches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SearchHit {
    /// The transcript.
    pub transcript_id: String,
    /// Its recording.
    pub recording_id: String,
    /// BM25 score (higher is better).
    pub score: f64,
    /// Segments (from 0) holding query tokens, most matches first, at most 5.
    pub segments: Vec<u32>,
}

/// A transcript as a node seals it (and as a released copy carries it): the JSON inside
/// the age file, never seen by the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TranscriptDocument {
    /// The language (ISO 639-1).
    pub language: String,
    /// SHA-256 of the model, hex.
    pub model_sha256: String,
    /// The node that transcribed it.
    pub node_id: String,
    /// The recording.
    pub recording_id: String,
    /// The speech, in order.
    pub segments: Vec<TranscriptSegment>,
}

/// One stretch of speech.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TranscriptSegment {
    /// Start, seconds from the beginning of the recording.
    pub start: f64,
    /// End, seconds.
    pub end: f64,
    /// The words.
    pub text: String,
    /// Who said them: the participant named for the audio track they were heard on, in a
    /// recording of one track per participant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speaker: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The JSON form, the text form and the parser agree for every value of every set, so a
    /// status written to the database reads back as the same value the API sends.
    #[test]
    fn every_closed_set_reads_back_what_it_writes() {
        fn check<T>(all: &[T])
        where
            T: Copy + PartialEq + fmt::Debug + fmt::Display + FromStr + Serialize,
            T: for<'de> Deserialize<'de>,
            <T as FromStr>::Err: fmt::Debug,
        {
            for &value in all {
                let json = serde_json::to_string(&value).unwrap();
                assert_eq!(json, format!("\"{value}\""));
                assert_eq!(serde_json::from_str::<T>(&json).unwrap(), value);
                assert_eq!(value.to_string().parse::<T>().unwrap(), value);
            }
        }
        check(PartyRole::ALL);
        check(MemberRole::ALL);
        check(MemberStatus::ALL);
        check(NodeStatus::ALL);
        check(InvitePurpose::ALL);
        check(CodePurpose::ALL);
        check(RecordingStatus::ALL);
        check(SubjectKind::ALL);
        check(RequestPurpose::ALL);
        check(RequestStatus::ALL);
        check(VoteDecision::ALL);
        check(JobStatus::ALL);
        assert_eq!(CodePurpose::FirstAdmin.as_str(), "first-admin");
        assert_eq!(
            RequestPurpose::ReleaseTranscript.as_str(),
            "release-transcript"
        );
    }

    #[test]
    fn base64_fields_decode_once_and_refuse_what_is_not_base64() {
        let grant: SealedGrant =
            serde_json::from_str(r#"{"holder":"ab","sealed":"AAEC"}"#).unwrap();
        assert_eq!(&*grant.sealed, &[0, 1, 2]);
        assert_eq!(serde_json::to_value(&grant).unwrap()["sealed"], "AAEC");
        // Sealed bytes never reach a log whole.
        assert_eq!(format!("{:?}", grant.sealed), "Base64(3 bytes)");
        let error = serde_json::from_str::<SealedGrant>(r#"{"holder":"ab","sealed":"no!"}"#)
            .unwrap_err()
            .to_string();
        assert!(error.contains("standard base64"), "{error}");
        // URL-safe base64 is another alphabet: refused rather than guessed.
        assert!(serde_json::from_str::<SealedGrant>(r#"{"holder":"ab","sealed":"-_8="}"#).is_err());
    }

    #[test]
    fn an_unknown_value_says_what_was_expected() {
        let error = "maybe".parse::<VoteDecision>().unwrap_err();
        assert_eq!(
            error.to_string(),
            "\"maybe\" is not a decision: expected one of approve, deny"
        );
        assert!(serde_json::from_str::<JobStatus>("\"Done\"").is_err());
    }
}

/// `GET /api/v1/vaults/{vault}/reshares`: the recordings and transcripts whose shares do not
/// follow the current roster, or that a re-share is moving, with what a device needs to
/// deal into the re-share or to take its new share.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReshareWork {
    /// One item per subject.
    pub items: Vec<ReshareItem>,
}

/// What a re-share moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SharedKind {
    /// A recording's key.
    Recording,
    /// A transcript's key.
    Transcript,
}

/// One subject to re-share.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReshareItem {
    /// A recording's or a transcript's key.
    pub kind: SharedKind,
    /// The recording or transcript ID.
    pub subject_id: String,
    /// Its signed manifest, base64: the first sharing.
    pub manifest: Base64,
    /// The signed `ReshareDeal`s of every completed re-share, one list per re-share, oldest
    /// first: replay them from the manifest to find the current sharing.
    pub history: Vec<Vec<Base64>>,
    /// The re-share in progress, if one is.
    pub open: Option<OpenReshare>,
}

/// A re-share in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OpenReshare {
    /// Its ID (32 hex digits), as its deals sign it.
    pub reshare_id: String,
    /// The signed `ReshareDeal`s so far, base64, in dealer order; it takes k of them.
    pub deals: Vec<Base64>,
    /// Deals it takes: the current sharing's k.
    pub needed: u8,
    /// The sub-shares sealed to the caller, one per deal, in the deals' order (empty
    /// unless the caller is a new holder).
    pub subshares: Vec<Base64>,
    /// The new holders who sent their new share (hex fingerprints).
    pub accepted: Vec<String>,
}

/// `POST /api/v1/vaults/{vault}/reshares/deals`: a current holder's signed deal, with the
/// sub-share it sealed to each new holder.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewDeal {
    /// The signed `ReshareDeal`, base64.
    pub deal: Base64,
    /// One sealed sub-share per new holder the deal names.
    pub subshares: Vec<SealedShareUpload>,
}

/// `POST /api/v1/vaults/{vault}/reshares/{reshare}/accept`: a new holder's new share,
/// sealed to themselves, with the commitments of the new sharing they computed.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ReshareAcceptance {
    /// The new sealed share (an age file to the caller), base64.
    pub sealed: Base64,
    /// The new sharing's Feldman commitments (32 bytes each), base64.
    pub commitments: Base64,
}

/// Where a re-share stands after a deal or a new share.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReshareState {
    /// The re-share.
    pub reshare_id: String,
    /// Deals in, of `needed`.
    pub deals: u8,
    /// Deals it takes.
    pub needed: u8,
    /// New shares in, of `holders`.
    pub accepted: u8,
    /// New holders.
    pub holders: u8,
    /// Whether the new shares replaced the old ones.
    pub completed: bool,
}
