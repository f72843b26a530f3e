//! Signed statements: everything a party asserts and others must be able to check
//! without trusting the server.
//!
//! A statement is a body in the canonical encoding of [`crate::wire`] (which starts with a
//! domain string naming its kind and version), signed with Ed25519 over a second domain
//! string, the kind and the body. On the wire a [`SignedStatement`] is
//! `domain, kind, signer key, signature, body` in the same encoding; its SHA-256 is its
//! [`digest`](SignedStatement::digest), by which other statements and the audit log refer
//! to it.

use std::fmt;

use ed25519_dalek::{Signature, VerifyingKey};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::{
    AgeSecretKey, Error, Fingerprint, Identity, NodeId, PublicIdentity, Recipient, RecordingId,
    RequestId, TranscriptId, VaultId, envelope,
    identity::verifying_key_from_bytes,
    rewrap::{Purpose, RequestBinding},
    threshold::{ShareBinding, Subject, Threshold},
    vss::{Commitments, ScalarShare, Secret},
    wire::{Reader, Writer},
};

/// Largest number of members a vault (and so a manifest) may hold: the Shamir limit.
pub const MAX_MEMBERS: usize = 255;
/// Longest free-text field (names, titles, reasons), in bytes.
pub const MAX_TEXT_LEN: usize = 4096;

/// The kinds of signed statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StatementKind {
    /// An admin adds or removes a member ([`RosterEntry`]).
    RosterEntry,
    /// An admin approves or revokes a transcription node ([`NodeApproval`]).
    NodeApproval,
    /// An uploader describes a recording and its shares ([`RecordingManifest`]).
    RecordingManifest,
    /// A member asks for a key to be unlocked for a node ([`UnlockRequest`]).
    UnlockRequest,
    /// A member approves (with a re-sealed share) or denies a request ([`Vote`]).
    Vote,
    /// A node describes a sealed transcript and its shares ([`TranscriptManifest`]).
    TranscriptManifest,
    /// An admin sets how many approvals unlock anything in the vault ([`VaultPolicy`]).
    VaultPolicy,
    /// An admin names the vault's search key ([`crate::release::SearchKeyCommitment`]).
    SearchKeyCommitment,
    /// A node describes a released transcript ([`crate::release::ReleaseManifest`]).
    ReleaseManifest,
    /// A share holder deals their share to a changed board ([`crate::reshare::ReshareDeal`]).
    ReshareDeal,
    /// An admin says how long recordings and minutes are kept
    /// ([`crate::retention::RetentionRule`]).
    RetentionRule,
    /// A member votes to place or lift a legal hold ([`crate::retention::LegalHold`]).
    LegalHold,
    /// An admin replaces the vault's search key ([`crate::release::SearchKeyRotation`]).
    SearchKeyRotation,
}

impl StatementKind {
    const ALL: [Self; 13] = [
        Self::RosterEntry,
        Self::NodeApproval,
        Self::RecordingManifest,
        Self::UnlockRequest,
        Self::Vote,
        Self::TranscriptManifest,
        Self::VaultPolicy,
        Self::SearchKeyCommitment,
        Self::ReleaseManifest,
        Self::ReshareDeal,
        Self::RetentionRule,
        Self::LegalHold,
        Self::SearchKeyRotation,
    ];

    fn code(self) -> u8 {
        Self::ALL
            .iter()
            .position(|kind| *kind == self)
            .expect("every kind is listed") as u8
            + 1
    }

    fn from_code(code: u8) -> Option<Self> {
        Self::ALL.get(usize::from(code).checked_sub(1)?).copied()
    }

    /// The name used in domain strings and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RosterEntry => "roster-entry",
            Self::NodeApproval => "node-approval",
            Self::RecordingManifest => "recording-manifest",
            Self::UnlockRequest => "unlock-request",
            Self::Vote => "vote",
            Self::TranscriptManifest => "transcript-manifest",
            Self::VaultPolicy => "vault-policy",
            Self::SearchKeyCommitment => "search-key-commitment",
            Self::ReleaseManifest => "release-manifest",
            Self::ReshareDeal => "reshare-deal",
            Self::RetentionRule => "retention-rule",
            Self::LegalHold => "legal-hold",
            Self::SearchKeyRotation => "search-key-rotation",
        }
    }
}

impl fmt::Display for StatementKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A statement body with its one canonical encoding.
pub trait StatementBody: Sized {
    /// Which kind it is.
    const KIND: StatementKind;
    /// The canonical encoding (starts with the kind's domain string).
    fn encode(&self) -> Vec<u8>;
    /// Parses and checks the canonical encoding.
    fn decode(bytes: &[u8]) -> Result<Self, Error>;
    /// The vault the statement belongs to.
    fn vault_id(&self) -> VaultId;
}

/// A statement with its signer and signature, as stored and sent.
#[derive(Clone, PartialEq, Eq)]
pub struct SignedStatement {
    kind: StatementKind,
    signer: VerifyingKey,
    signature: Signature,
    body: Vec<u8>,
}

/// A statement whose signature has been checked, with the key that signed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified<T> {
    /// The statement.
    pub statement: T,
    /// Who signed it.
    pub signer: VerifyingKey,
    /// The digest of the signed statement.
    pub digest: [u8; 32],
}

const SIGNED_DOMAIN: &str = "quorate/signed-statement/v1";
const SIGNATURE_DOMAIN: &str = "quorate/statement-signature/v1";

fn signature_message(kind: StatementKind, body: &[u8]) -> Vec<u8> {
    let mut writer = Writer::new(SIGNATURE_DOMAIN);
    writer.u8(kind.code()).str(kind.as_str()).bytes(body);
    writer.finish()
}

impl SignedStatement {
    /// Encodes and signs `body` with `signer`'s Ed25519 key.
    pub fn sign<T: StatementBody>(body: &T, signer: &Identity) -> Self {
        let body = body.encode();
        let signature = signer.sign(&signature_message(T::KIND, &body));
        Self {
            kind: T::KIND,
            signer: signer.public().verifying_key,
            signature,
            body,
        }
    }

    /// Checks the kind and signature, then parses the body.
    pub fn verify<T: StatementBody>(&self) -> Result<Verified<T>, Error> {
        if self.kind != T::KIND {
            return Err(Error::WrongStatementKind {
                expected: T::KIND,
                found: self.kind,
            });
        }
        let message = signature_message(self.kind, &self.body);
        if self
            .signer
            .verify_strict(&message, &self.signature)
            .is_err()
        {
            return Err(Error::BadSignature { kind: self.kind });
        }
        Ok(Verified {
            statement: T::decode(&self.body)?,
            signer: self.signer,
            digest: self.digest(),
        })
    }

    /// The kind, as claimed (verify before trusting anything else).
    pub fn kind(&self) -> StatementKind {
        self.kind
    }

    /// The key that claims to have signed it.
    pub fn signer(&self) -> &VerifyingKey {
        &self.signer
    }

    /// The canonical body bytes.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The wire form.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut writer = Writer::new(SIGNED_DOMAIN);
        writer
            .u8(self.kind.code())
            .fixed(self.signer.as_bytes())
            .fixed(&self.signature.to_bytes())
            .bytes(&self.body);
        writer.finish()
    }

    /// Parses the wire form. Does not verify: call [`SignedStatement::verify`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let mut reader = Reader::new(bytes, SIGNED_DOMAIN, "signed statement")?;
        let kind = StatementKind::from_code(reader.u8()?).ok_or_else(|| reader.malformed())?;
        let signer = verifying_key_from_bytes(&reader.array()?).map_err(|_| reader.malformed())?;
        let signature = Signature::from_bytes(&reader.array()?);
        let body = reader.bytes()?.to_vec();
        reader.finish()?;
        Ok(Self {
            kind,
            signer,
            signature,
            body,
        })
    }

    /// SHA-256 of the wire form: how other statements and the audit log name this one.
    pub fn digest(&self) -> [u8; 32] {
        Sha256::digest(self.to_bytes()).into()
    }
}

impl fmt::Debug for SignedStatement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SignedStatement({}, digest {})",
            self.kind,
            hex::encode(&self.digest()[..8])
        )
    }
}

pub(crate) fn text_field(field: &'static str, text: &str, allow_empty: bool) -> Result<(), Error> {
    if !allow_empty && text.trim().is_empty() {
        return Err(Error::InvalidField {
            field,
            reason: "must not be empty",
        });
    }
    if text.len() > MAX_TEXT_LEN {
        return Err(Error::InvalidField {
            field,
            reason: "longer than 4096 bytes",
        });
    }
    if text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(Error::InvalidField {
            field,
            reason: "contains control characters",
        });
    }
    Ok(())
}

fn encode_public(writer: &mut Writer, public: &PublicIdentity) {
    writer
        .fixed(public.recipient.as_bytes())
        .fixed(public.verifying_key.as_bytes());
}

fn decode_public(reader: &mut Reader<'_>) -> Result<PublicIdentity, Error> {
    let recipient = Recipient::from_bytes(reader.array()?);
    let verifying_key =
        verifying_key_from_bytes(&reader.array()?).map_err(|_| reader.malformed())?;
    Ok(PublicIdentity {
        recipient,
        verifying_key,
    })
}

/// Which of a value's two domains `bytes` are encoded under: `plain`, or `extended` (the
/// plain fields, then more), and whether it is the extended one.
fn domain_of(bytes: &[u8], plain: &'static str, extended: &'static str) -> (&'static str, bool) {
    if bytes.starts_with(&Writer::new(extended).finish()) {
        (extended, true)
    } else {
        (plain, false)
    }
}

/// Decodes a body and checks its fields, mapping a semantic refusal to a parse failure of
/// this structure (an untrusted encoding that breaks a rule is not a valid statement).
pub(crate) fn decode_checked<T>(
    bytes: &[u8],
    domain: &str,
    what: &'static str,
    parse: impl FnOnce(&mut Reader<'_>) -> Result<T, Error>,
    check: impl FnOnce(&T) -> Result<(), Error>,
) -> Result<T, Error> {
    let mut reader = Reader::new(bytes, domain, what)?;
    let value = parse(&mut reader)?;
    reader.finish()?;
    check(&value)?;
    Ok(value)
}

// ---------------------------------------------------------------------------------------
// Roster entries

/// A member's role in a vault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Signs roster entries and node approvals, creates invites.
    Admin,
    /// Holds shares, requests and votes.
    Member,
    /// A machine that records meetings unattended: signs in and uploads recordings (its
    /// manifests are valid), but holds no share, cannot request or vote, and nothing is
    /// sealed to it, so taking the machine yields only what it has not yet uploaded.
    Recorder,
}

impl Role {
    /// The API's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Member => "member",
            Self::Recorder => "recorder",
        }
    }

    /// Whether this role holds shares of keys, requests, votes and reads what is sealed to
    /// the members (titles, released minutes): every role but a recorder.
    pub fn holds_shares(self) -> bool {
        !matches!(self, Self::Recorder)
    }
}

/// Whether an entry adds or removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RosterChange {
    /// The member joins with a role.
    Add,
    /// The member leaves; no new share is sealed to them.
    Remove,
}

/// One link of a vault's roster: a hash chain of admin-signed entries whose first entry
/// (sequence 0) is the first admin adding themself. Clients pin that genesis digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterEntry {
    /// The vault.
    pub vault_id: VaultId,
    /// Position in the chain, from 0.
    pub sequence: u64,
    /// Digest of the previous signed entry (zeros for the genesis).
    pub previous: [u8; 32],
    /// Add or remove.
    pub change: RosterChange,
    /// The role granted (kept as it was when removing).
    pub role: Role,
    /// The member's public keys.
    pub member: PublicIdentity,
    /// The member's display name.
    pub name: String,
    /// When signed, Unix seconds.
    pub issued_at: i64,
}

impl StatementBody for RosterEntry {
    const KIND: StatementKind = StatementKind::RosterEntry;

    fn vault_id(&self) -> VaultId {
        self.vault_id
    }

    fn encode(&self) -> Vec<u8> {
        let mut writer = Writer::new("quorate/roster-entry/v1");
        writer
            .fixed(self.vault_id.as_bytes())
            .u64(self.sequence)
            .fixed(&self.previous);
        writer.u8(match self.change {
            RosterChange::Add => 1,
            RosterChange::Remove => 2,
        });
        writer.u8(match self.role {
            Role::Admin => 1,
            Role::Member => 2,
            Role::Recorder => 3,
        });
        encode_public(&mut writer, &self.member);
        writer.str(&self.name).i64(self.issued_at);
        writer.finish()
    }

    fn decode(bytes: &[u8]) -> Result<Self, Error> {
        decode_checked(
            bytes,
            "quorate/roster-entry/v1",
            "roster entry",
            |reader| {
                let vault_id = VaultId::from_bytes(reader.array()?);
                let sequence = reader.u64()?;
                let previous = reader.array()?;
                let change = match reader.u8()? {
                    1 => RosterChange::Add,
                    2 => RosterChange::Remove,
                    _ => return Err(reader.malformed()),
                };
                let role = match reader.u8()? {
                    1 => Role::Admin,
                    2 => Role::Member,
                    3 => Role::Recorder,
                    _ => return Err(reader.malformed()),
                };
                Ok(Self {
                    vault_id,
                    sequence,
                    previous,
                    change,
                    role,
                    member: decode_public(reader)?,
                    name: reader.string()?,
                    issued_at: reader.i64()?,
                })
            },
            RosterEntry::check,
        )
    }
}

impl RosterEntry {
    /// Field rules that hold for every entry.
    pub fn check(&self) -> Result<(), Error> {
        text_field("name", &self.name, false)
    }
}

// ---------------------------------------------------------------------------------------
// Vault policy

/// An admin's word on how many approvals (k) unlock a recording or transcript of the vault.
/// Uploaders split keys with at least this k; devices refuse a policy not signed by an admin
/// of the verified roster, and one older (lower `sequence`) than the newest they have seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultPolicy {
    /// The vault.
    pub vault_id: VaultId,
    /// Position in the vault's policy history, from 0; each change takes the next number.
    pub sequence: u64,
    /// The least threshold k an uploader may use (at least 1).
    pub min_threshold: u8,
    /// When signed, Unix seconds.
    pub issued_at: i64,
}

impl StatementBody for VaultPolicy {
    const KIND: StatementKind = StatementKind::VaultPolicy;

    fn vault_id(&self) -> VaultId {
        self.vault_id
    }

    fn encode(&self) -> Vec<u8> {
        let mut writer = Writer::new("quorate/vault-policy/v1");
        writer
            .fixed(self.vault_id.as_bytes())
            .u64(self.sequence)
            .u8(self.min_threshold)
            .i64(self.issued_at);
        writer.finish()
    }

    fn decode(bytes: &[u8]) -> Result<Self, Error> {
        decode_checked(
            bytes,
            "quorate/vault-policy/v1",
            "vault policy",
            |reader| {
                Ok(Self {
                    vault_id: VaultId::from_bytes(reader.array()?),
                    sequence: reader.u64()?,
                    min_threshold: reader.u8()?,
                    issued_at: reader.i64()?,
                })
            },
            VaultPolicy::check,
        )
    }
}

impl VaultPolicy {
    /// Field rules that hold for every policy.
    pub fn check(&self) -> Result<(), Error> {
        if self.min_threshold == 0 {
            return Err(Error::InvalidField {
                field: "min_threshold",
                reason: "must be at least 1",
            });
        }
        Ok(())
    }

    /// Whether a split under `threshold` obeys this policy.
    pub fn allows(&self, threshold: Threshold) -> Result<(), Error> {
        if threshold.k() < self.min_threshold {
            return Err(Error::InvalidField {
                field: "threshold",
                reason: "k is below the vault's policy",
            });
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Node approvals

/// An admin's word that a node (its keys, its hardware, its model) may receive shares,
/// or, with `revoked`, that it no longer may.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeApproval {
    /// The vault.
    pub vault_id: VaultId,
    /// The node.
    pub node_id: NodeId,
    /// The node's public keys (generated on the node).
    pub node: PublicIdentity,
    /// What the hardware is, as the admin checked it.
    pub hardware: String,
    /// SHA-256 of the model file the node must load.
    pub model_sha256: [u8; 32],
    /// Optional attestation evidence (empty when none).
    pub attestation: Vec<u8>,
    /// When signed, Unix seconds.
    pub issued_at: i64,
    /// When the approval lapses, Unix seconds.
    pub expires_at: i64,
    /// True for a revocation: the node must get nothing more.
    pub revoked: bool,
}

impl StatementBody for NodeApproval {
    const KIND: StatementKind = StatementKind::NodeApproval;

    fn vault_id(&self) -> VaultId {
        self.vault_id
    }

    fn encode(&self) -> Vec<u8> {
        let mut writer = Writer::new("quorate/node-approval/v1");
        writer
            .fixed(self.vault_id.as_bytes())
            .fixed(self.node_id.as_bytes());
        encode_public(&mut writer, &self.node);
        writer
            .str(&self.hardware)
            .fixed(&self.model_sha256)
            .bytes(&self.attestation)
            .i64(self.issued_at)
            .i64(self.expires_at)
            .u8(u8::from(self.revoked));
        writer.finish()
    }

    fn decode(bytes: &[u8]) -> Result<Self, Error> {
        decode_checked(
            bytes,
            "quorate/node-approval/v1",
            "node approval",
            |reader| {
                Ok(Self {
                    vault_id: VaultId::from_bytes(reader.array()?),
                    node_id: NodeId::from_bytes(reader.array()?),
                    node: decode_public(reader)?,
                    hardware: reader.string()?,
                    model_sha256: reader.array()?,
                    attestation: reader.bytes()?.to_vec(),
                    issued_at: reader.i64()?,
                    expires_at: reader.i64()?,
                    revoked: match reader.u8()? {
                        0 => false,
                        1 => true,
                        _ => return Err(reader.malformed()),
                    },
                })
            },
            |approval| {
                text_field("hardware description", &approval.hardware, false)?;
                if approval.expires_at <= approval.issued_at {
                    return Err(Error::InvalidField {
                        field: "expiry",
                        reason: "must be after issue",
                    });
                }
                Ok(())
            },
        )
    }
}

impl NodeApproval {
    /// Whether it lets the node receive shares at `now`.
    pub fn check_active(&self, now: i64) -> Result<(), Error> {
        if self.revoked {
            return Err(Error::InvalidField {
                field: "node approval",
                reason: "the node was revoked",
            });
        }
        if now > self.expires_at {
            return Err(Error::Expired {
                what: "node approval",
                expired_at: self.expires_at,
                now,
            });
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Split-key commitments, shared by recording and transcript manifests

/// How a key was split and to whom: the part common to both manifests. The key is derived
/// from a secret scalar ([`crate::vss`]) shared k-of-n with Feldman commitments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitKey {
    /// The split key's public key.
    pub recipient: Recipient,
    /// The policy.
    pub threshold: Threshold,
    /// Share `i` (1-based) is `holders[i - 1]`'s. Exactly n entries, distinct members.
    pub holders: Vec<Fingerprint>,
    /// The commitments to the sharing polynomial (k of them), against which each share is
    /// checked and whose first commits to the secret for as long as the recording lives.
    pub commitments: Commitments,
}

impl SplitKey {
    /// Splits `secret` among `members` (in that order) under `threshold`, seals each share,
    /// and returns the split description with the sealed shares in member order.
    pub fn split_and_seal(
        vault_id: VaultId,
        subject: Subject,
        secret: &Secret,
        threshold: Threshold,
        members: &[PublicIdentity],
    ) -> Result<(Self, Vec<Vec<u8>>), Error> {
        if members.len() != usize::from(threshold.n()) {
            return Err(Error::InvalidField {
                field: "members",
                reason: "must number exactly n",
            });
        }
        let (shares, commitments) = secret.split(threshold);
        let split = SplitKey {
            recipient: secret.age_key(&subject).recipient(),
            threshold,
            holders: members.iter().map(PublicIdentity::fingerprint).collect(),
            commitments,
        };
        split.check()?;
        let sealed = shares
            .iter()
            .zip(members)
            .map(|(share, member)| {
                let binding = split
                    .binding_for(vault_id, subject, &member.fingerprint())
                    .expect("every member holds a share");
                crate::threshold::seal_share(&binding, share, &member.recipient)
            })
            .collect::<Result<_, _>>()?;
        Ok((split, sealed))
    }

    fn encode(&self, writer: &mut Writer) {
        writer
            .fixed(self.recipient.as_bytes())
            .u8(self.threshold.k())
            .u8(self.threshold.n())
            .list(&self.holders, |writer, holder| {
                writer.fixed(holder.as_bytes());
            })
            .bytes(&self.commitments.to_bytes());
    }

    fn decode(reader: &mut Reader<'_>) -> Result<Self, Error> {
        let recipient = Recipient::from_bytes(reader.array()?);
        let (k, n) = (reader.u8()?, reader.u8()?);
        let threshold = Threshold::new(k.into(), n.into()).map_err(|_| reader.malformed())?;
        let holders = reader.list(|reader| Ok(Fingerprint::from_bytes(reader.array()?)))?;
        let commitments = Commitments::from_bytes(reader.bytes()?)?;
        Ok(Self {
            recipient,
            threshold,
            holders,
            commitments,
        })
    }

    fn check(&self) -> Result<(), Error> {
        if self.holders.len() != usize::from(self.threshold.n()) {
            return Err(Error::InvalidField {
                field: "shares",
                reason: "must number exactly n",
            });
        }
        if self.commitments.k() != usize::from(self.threshold.k()) {
            return Err(Error::InvalidField {
                field: "commitments",
                reason: "must number exactly k",
            });
        }
        let distinct: std::collections::BTreeSet<_> = self.holders.iter().collect();
        if distinct.len() != self.holders.len() {
            return Err(Error::InvalidField {
                field: "shares",
                reason: "a member appears twice",
            });
        }
        Ok(())
    }

    /// The binding of the share held by `member`, if they hold one.
    pub fn binding_for(
        &self,
        vault_id: VaultId,
        subject: Subject,
        member: &Fingerprint,
    ) -> Option<ShareBinding> {
        let position = self.holders.iter().position(|holder| holder == member)?;
        Some(ShareBinding {
            vault_id,
            subject,
            recipient: self.recipient,
            threshold: self.threshold,
            index: u8::try_from(position + 1).ok()?,
            member: *member,
            commitments: self.commitments.clone(),
        })
    }

    /// Opens `member`'s sealed share of the key for `subject` of `vault_id` in whichever
    /// sharing it belongs to now (the first, or one a re-share made): its binding must name
    /// this vault, subject, key and member, its commitments must commit to this key's secret,
    /// and the share must be a point of them. A share the server forged for another sharing
    /// fails these checks; one it made up cannot rebuild the key (the node checks the
    /// recipient).
    pub fn open_current_share(
        &self,
        sealed: &[u8],
        key: &crate::AgeSecretKey,
        vault_id: VaultId,
        subject: Subject,
        member: &Fingerprint,
    ) -> Result<(ShareBinding, ScalarShare), Error> {
        let plaintext = crate::envelope::open(sealed, key, "sealed share")?;
        let (binding, share) = crate::threshold::decode_share(&plaintext)?;
        Error::first_mismatch(&[
            ("vault ID", binding.vault_id == vault_id),
            ("subject", binding.subject == subject),
            ("member", binding.member == *member),
        ])?;
        self.check_share(&binding, &share)?;
        Ok((binding, share))
    }

    /// Rebuilds the key for `subject` from at least k shares of this, the first, sharing.
    pub fn rebuild_key(
        &self,
        subject: &Subject,
        shares: &[ScalarShare],
    ) -> Result<crate::AgeSecretKey, Error> {
        crate::threshold::combine(shares, &self.commitments, subject, &self.recipient)
    }

    /// Checks that a share opened with `binding` (not necessarily of this first sharing: a
    /// re-share moves shares to new commitments) is a share of this key: same recipient,
    /// commitments to the same secret, and the share a point of them. Rebuilding the key
    /// then checks the rest.
    pub fn check_share(&self, binding: &ShareBinding, share: &ScalarShare) -> Result<(), Error> {
        if binding.recipient != self.recipient {
            return Err(Error::BindingMismatch { field: "recipient" });
        }
        if binding.commitments.secret() != self.commitments.secret() {
            return Err(Error::BindingMismatch {
                field: "commitment to the secret",
            });
        }
        binding.commitments.verify(share)
    }
}

// ---------------------------------------------------------------------------------------
// Recording manifests and their sealed metadata

/// What members see of a recording and the server does not: sealed to every member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingMetadata {
    /// The meeting's title.
    pub title: String,
    /// When the meeting started, Unix seconds.
    pub started_at: Option<i64>,
    /// When it ended, Unix seconds.
    pub ended_at: Option<i64>,
    /// The media type of the plaintext (`audio/ogg`, ...).
    pub media_type: String,
    /// Who attended, as the uploader stated.
    pub attendees: Vec<String>,
    /// The language the meeting was held in (a Whisper language code such as `fr`), as the
    /// uploader stated: a member's device signs it into a transcription request.
    pub language: Option<String>,
}

/// Metadata that names a language has the second domain and the language last, so all
/// metadata sealed before languages keeps its encoding.
const METADATA_DOMAIN: &str = "quorate/recording-metadata/v1";
const METADATA_WITH_LANGUAGE_DOMAIN: &str = "quorate/recording-metadata/v2";

impl RecordingMetadata {
    /// Checks the fields, then seals the metadata to `recipients` (every member).
    pub fn seal(&self, recipients: &[Recipient]) -> Result<Vec<u8>, Error> {
        envelope::seal(&self.encode()?, recipients)
    }

    /// Checks the fields and encodes the plaintext.
    pub fn encode(&self) -> Result<Zeroizing<Vec<u8>>, Error> {
        self.check()?;
        let mut writer = Writer::new(if self.language.is_some() {
            METADATA_WITH_LANGUAGE_DOMAIN
        } else {
            METADATA_DOMAIN
        });
        writer
            .str(&self.title)
            .option_i64(self.started_at)
            .option_i64(self.ended_at)
            .str(&self.media_type)
            .list(&self.attendees, |writer, attendee| {
                writer.str(attendee);
            });
        if let Some(language) = &self.language {
            writer.str(language);
        }
        Ok(Zeroizing::new(writer.finish()))
    }

    /// Opens sealed metadata with a member's key.
    pub fn open(sealed: &[u8], key: &AgeSecretKey) -> Result<Self, Error> {
        let plaintext = envelope::open(sealed, key, "recording metadata")?;
        Self::decode(&plaintext)
    }

    /// Parses the plaintext (exposed for fuzzing).
    pub fn decode(plaintext: &[u8]) -> Result<Self, Error> {
        let (domain, names_language) =
            domain_of(plaintext, METADATA_DOMAIN, METADATA_WITH_LANGUAGE_DOMAIN);
        decode_checked(
            plaintext,
            domain,
            "recording metadata",
            |reader| {
                Ok(Self {
                    title: reader.string()?,
                    started_at: reader.option_i64()?,
                    ended_at: reader.option_i64()?,
                    media_type: reader.string()?,
                    attendees: reader.list(Reader::string)?,
                    language: names_language.then(|| reader.string()).transpose()?,
                })
            },
            Self::check,
        )
    }

    fn check(&self) -> Result<(), Error> {
        text_field("title", &self.title, false)?;
        text_field("media type", &self.media_type, false)?;
        if self.attendees.len() > MAX_MEMBERS * 4 {
            return Err(Error::InvalidField {
                field: "attendees",
                reason: "too many",
            });
        }
        self.attendees
            .iter()
            .try_for_each(|attendee| text_field("attendee", attendee, false))?;
        if self
            .language
            .as_deref()
            .is_some_and(|code| !is_language_code(code))
        {
            return Err(Error::InvalidField {
                field: "language",
                reason: LANGUAGE_CODE_RULE,
            });
        }
        if let (Some(start), Some(end)) = (self.started_at, self.ended_at)
            && end < start
        {
            return Err(Error::InvalidField {
                field: "meeting time",
                reason: "ends before it starts",
            });
        }
        Ok(())
    }
}

/// The uploader's signed description of a recording: what the ciphertext must be, how
/// its key was split and to whom, and its metadata sealed to the members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingManifest {
    /// The vault.
    pub vault_id: VaultId,
    /// The recording (chosen by the uploader's device).
    pub recording_id: RecordingId,
    /// Who uploaded it.
    pub uploader: Fingerprint,
    /// Digest of the roster entry at the head of the roster the uploader verified.
    pub roster_head: [u8; 32],
    /// When the manifest was made, Unix seconds.
    pub created_at: i64,
    /// Exact length of the age ciphertext.
    pub ciphertext_len: u64,
    /// SHA-256 of the age ciphertext.
    pub ciphertext_sha256: [u8; 32],
    /// The recording key's split.
    pub split: SplitKey,
    /// [`RecordingMetadata`] sealed to every member.
    pub sealed_metadata: Vec<u8>,
}

impl StatementBody for RecordingManifest {
    const KIND: StatementKind = StatementKind::RecordingManifest;

    fn vault_id(&self) -> VaultId {
        self.vault_id
    }

    fn encode(&self) -> Vec<u8> {
        let mut writer = Writer::new("quorate/recording-manifest/v2");
        writer
            .fixed(self.vault_id.as_bytes())
            .fixed(self.recording_id.as_bytes())
            .fixed(self.uploader.as_bytes())
            .fixed(&self.roster_head)
            .i64(self.created_at)
            .u64(self.ciphertext_len)
            .fixed(&self.ciphertext_sha256);
        self.split.encode(&mut writer);
        writer.bytes(&self.sealed_metadata);
        writer.finish()
    }

    fn decode(bytes: &[u8]) -> Result<Self, Error> {
        decode_checked(
            bytes,
            "quorate/recording-manifest/v2",
            "recording manifest",
            |reader| {
                Ok(Self {
                    vault_id: VaultId::from_bytes(reader.array()?),
                    recording_id: RecordingId::from_bytes(reader.array()?),
                    uploader: Fingerprint::from_bytes(reader.array()?),
                    roster_head: reader.array()?,
                    created_at: reader.i64()?,
                    ciphertext_len: reader.u64()?,
                    ciphertext_sha256: reader.array()?,
                    split: SplitKey::decode(reader)?,
                    sealed_metadata: reader.bytes()?.to_vec(),
                })
            },
            |manifest| manifest.split.check(),
        )
    }
}

impl RecordingManifest {
    /// What the split key opens.
    pub fn subject(&self) -> Subject {
        Subject::Recording(self.recording_id)
    }

    /// The binding of `member`'s share, if they hold one.
    pub fn share_binding(&self, member: &Fingerprint) -> Option<ShareBinding> {
        self.split
            .binding_for(self.vault_id, self.subject(), member)
    }
}

// ---------------------------------------------------------------------------------------
// Unlock requests and votes

/// A member's signed request that a key be unlocked for one node, for one purpose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnlockRequest {
    /// The vault.
    pub vault_id: VaultId,
    /// The request (chosen by the requester's device).
    pub request_id: RequestId,
    /// What is to be unlocked.
    pub subject: Subject,
    /// Why: transcribe a recording or release a transcript.
    pub purpose: Purpose,
    /// The one node that would receive the shares.
    pub node_id: NodeId,
    /// Who asks.
    pub requester: Fingerprint,
    /// The requester's reason, shown to voters.
    pub reason: String,
    /// When made, Unix seconds.
    pub created_at: i64,
    /// When it closes, Unix seconds.
    pub expires_at: i64,
    /// The language the recording is spoken in (a Whisper language code such as `fr`), for
    /// a transcription; without it the node detects the language.
    pub language: Option<String>,
}

/// A request's domain; a request that names a language has the second, and the language
/// after the first's fields, so every request made before languages keeps its encoding.
const REQUEST_DOMAIN: &str = "quorate/unlock-request/v1";
const REQUEST_WITH_LANGUAGE_DOMAIN: &str = "quorate/unlock-request/v2";

impl StatementBody for UnlockRequest {
    const KIND: StatementKind = StatementKind::UnlockRequest;

    fn vault_id(&self) -> VaultId {
        self.vault_id
    }

    fn encode(&self) -> Vec<u8> {
        let mut writer = Writer::new(if self.language.is_some() {
            REQUEST_WITH_LANGUAGE_DOMAIN
        } else {
            REQUEST_DOMAIN
        });
        writer
            .fixed(self.vault_id.as_bytes())
            .fixed(self.request_id.as_bytes());
        self.subject.encode(&mut writer);
        writer
            .u8(self.purpose.code())
            .fixed(self.node_id.as_bytes())
            .fixed(self.requester.as_bytes())
            .str(&self.reason)
            .i64(self.created_at)
            .i64(self.expires_at);
        if let Some(language) = &self.language {
            writer.str(language);
        }
        writer.finish()
    }

    fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let (domain, names_language) =
            domain_of(bytes, REQUEST_DOMAIN, REQUEST_WITH_LANGUAGE_DOMAIN);
        decode_checked(
            bytes,
            domain,
            "unlock request",
            |reader| {
                Ok(Self {
                    vault_id: VaultId::from_bytes(reader.array()?),
                    request_id: RequestId::from_bytes(reader.array()?),
                    subject: Subject::decode(reader)?,
                    purpose: Purpose::from_code(reader.u8()?).ok_or_else(|| reader.malformed())?,
                    node_id: NodeId::from_bytes(reader.array()?),
                    requester: Fingerprint::from_bytes(reader.array()?),
                    reason: reader.string()?,
                    created_at: reader.i64()?,
                    expires_at: reader.i64()?,
                    language: names_language.then(|| reader.string()).transpose()?,
                })
            },
            UnlockRequest::check,
        )
    }
}

impl UnlockRequest {
    /// Field rules that hold for every request.
    pub fn check(&self) -> Result<(), Error> {
        text_field("reason", &self.reason, false)?;
        if !self.purpose.fits(&self.subject) {
            return Err(Error::InvalidField {
                field: "purpose",
                reason: "transcribe takes a recording, release-transcript a transcript",
            });
        }
        if self.expires_at <= self.created_at {
            return Err(Error::InvalidField {
                field: "expiry",
                reason: "must be after creation",
            });
        }
        if let Some(language) = &self.language {
            if self.purpose != Purpose::Transcribe {
                return Err(Error::InvalidField {
                    field: "language",
                    reason: "only a transcription names a language",
                });
            }
            if !is_language_code(language) {
                return Err(Error::InvalidField {
                    field: "language",
                    reason: LANGUAGE_CODE_RULE,
                });
            }
        }
        Ok(())
    }

    /// What re-sealed shares for this request are bound to.
    pub fn binding(&self) -> RequestBinding {
        RequestBinding {
            request_id: self.request_id,
            node_id: self.node_id,
            purpose: self.purpose,
            expires_at: self.expires_at,
        }
    }
}

const LANGUAGE_CODE_RULE: &str =
    "a language code is two or three lowercase letters, such as fr or haw";

/// Whether `code` has the shape of a Whisper language code (ISO 639-1, or three letters
/// for the few languages without one); which codes a model knows is the node's to check.
pub fn is_language_code(code: &str) -> bool {
    (2..=3).contains(&code.len()) && code.bytes().all(|byte| byte.is_ascii_lowercase())
}

/// A voter's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Approve, with the SHA-256 of the share re-sealed to the request's node.
    Approve {
        /// [`crate::rewrap::resealed_digest`] of the re-sealed share sent with the vote.
        resealed_share_sha256: [u8; 32],
    },
    /// Deny.
    Deny,
}

/// A member's signed vote on one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vote {
    /// The vault.
    pub vault_id: VaultId,
    /// The request voted on.
    pub request_id: RequestId,
    /// Digest of the signed request the voter checked.
    pub request_digest: [u8; 32],
    /// Who votes.
    pub voter: Fingerprint,
    /// Approve or deny.
    pub decision: Decision,
    /// An optional comment (the reason for a denial).
    pub comment: String,
    /// When signed, Unix seconds.
    pub issued_at: i64,
}

impl StatementBody for Vote {
    const KIND: StatementKind = StatementKind::Vote;

    fn vault_id(&self) -> VaultId {
        self.vault_id
    }

    fn encode(&self) -> Vec<u8> {
        let mut writer = Writer::new("quorate/vote/v1");
        writer
            .fixed(self.vault_id.as_bytes())
            .fixed(self.request_id.as_bytes())
            .fixed(&self.request_digest)
            .fixed(self.voter.as_bytes());
        match &self.decision {
            Decision::Approve {
                resealed_share_sha256,
            } => writer.u8(1).fixed(resealed_share_sha256),
            Decision::Deny => writer.u8(2),
        };
        writer.str(&self.comment).i64(self.issued_at);
        writer.finish()
    }

    fn decode(bytes: &[u8]) -> Result<Self, Error> {
        decode_checked(
            bytes,
            "quorate/vote/v1",
            "vote",
            |reader| {
                Ok(Self {
                    vault_id: VaultId::from_bytes(reader.array()?),
                    request_id: RequestId::from_bytes(reader.array()?),
                    request_digest: reader.array()?,
                    voter: Fingerprint::from_bytes(reader.array()?),
                    decision: match reader.u8()? {
                        1 => Decision::Approve {
                            resealed_share_sha256: reader.array()?,
                        },
                        2 => Decision::Deny,
                        _ => return Err(reader.malformed()),
                    },
                    comment: reader.string()?,
                    issued_at: reader.i64()?,
                })
            },
            |vote| text_field("comment", &vote.comment, true),
        )
    }
}

// ---------------------------------------------------------------------------------------
// Transcript manifests

/// A node's signed description of a sealed transcript.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranscriptManifest {
    /// The vault.
    pub vault_id: VaultId,
    /// The transcript.
    pub transcript_id: TranscriptId,
    /// The recording it transcribes.
    pub recording_id: RecordingId,
    /// Digest of that recording's signed manifest.
    pub recording_manifest_digest: [u8; 32],
    /// The quorate request that allowed it.
    pub request_id: RequestId,
    /// The node that made it.
    pub node_id: NodeId,
    /// SHA-256 of the model file used.
    pub model_sha256: [u8; 32],
    /// The detected or chosen language (ISO 639-1).
    pub language: String,
    /// When made, Unix seconds.
    pub created_at: i64,
    /// Exact length of the sealed transcript (age ciphertext).
    pub ciphertext_len: u64,
    /// SHA-256 of the sealed transcript.
    pub ciphertext_sha256: [u8; 32],
    /// The transcript key's split among the same members.
    pub split: SplitKey,
}

impl StatementBody for TranscriptManifest {
    const KIND: StatementKind = StatementKind::TranscriptManifest;

    fn vault_id(&self) -> VaultId {
        self.vault_id
    }

    fn encode(&self) -> Vec<u8> {
        let mut writer = Writer::new("quorate/transcript-manifest/v2");
        writer
            .fixed(self.vault_id.as_bytes())
            .fixed(self.transcript_id.as_bytes())
            .fixed(self.recording_id.as_bytes())
            .fixed(&self.recording_manifest_digest)
            .fixed(self.request_id.as_bytes())
            .fixed(self.node_id.as_bytes())
            .fixed(&self.model_sha256)
            .str(&self.language)
            .i64(self.created_at)
            .u64(self.ciphertext_len)
            .fixed(&self.ciphertext_sha256);
        self.split.encode(&mut writer);
        writer.finish()
    }

    fn decode(bytes: &[u8]) -> Result<Self, Error> {
        decode_checked(
            bytes,
            "quorate/transcript-manifest/v2",
            "transcript manifest",
            |reader| {
                Ok(Self {
                    vault_id: VaultId::from_bytes(reader.array()?),
                    transcript_id: TranscriptId::from_bytes(reader.array()?),
                    recording_id: RecordingId::from_bytes(reader.array()?),
                    recording_manifest_digest: reader.array()?,
                    request_id: RequestId::from_bytes(reader.array()?),
                    node_id: NodeId::from_bytes(reader.array()?),
                    model_sha256: reader.array()?,
                    language: reader.string()?,
                    created_at: reader.i64()?,
                    ciphertext_len: reader.u64()?,
                    ciphertext_sha256: reader.array()?,
                    split: SplitKey::decode(reader)?,
                })
            },
            |manifest| {
                text_field("language", &manifest.language, false)?;
                manifest.split.check()
            },
        )
    }
}

impl TranscriptManifest {
    /// What the split key opens.
    pub fn subject(&self) -> Subject {
        Subject::Transcript(self.transcript_id)
    }

    /// The binding of `member`'s share, if they hold one.
    pub fn share_binding(&self, member: &Fingerprint) -> Option<ShareBinding> {
        self.split
            .binding_for(self.vault_id, self.subject(), member)
    }
}

/// Parses wire bytes as a signed statement of any kind and checks its signature and body
/// (exposed for fuzzing and for the audit verifier).
pub fn verify_any(bytes: &[u8]) -> Result<StatementKind, Error> {
    let signed = SignedStatement::from_bytes(bytes)?;
    match signed.kind() {
        StatementKind::RosterEntry => signed.verify::<RosterEntry>().map(drop),
        StatementKind::NodeApproval => signed.verify::<NodeApproval>().map(drop),
        StatementKind::RecordingManifest => signed.verify::<RecordingManifest>().map(drop),
        StatementKind::UnlockRequest => signed.verify::<UnlockRequest>().map(drop),
        StatementKind::Vote => signed.verify::<Vote>().map(drop),
        StatementKind::TranscriptManifest => signed.verify::<TranscriptManifest>().map(drop),
        StatementKind::VaultPolicy => signed.verify::<VaultPolicy>().map(drop),
        StatementKind::SearchKeyCommitment => signed
            .verify::<crate::release::SearchKeyCommitment>()
            .map(drop),
        StatementKind::ReleaseManifest => {
            signed.verify::<crate::release::ReleaseManifest>().map(drop)
        }
        StatementKind::ReshareDeal => signed.verify::<crate::reshare::ReshareDeal>().map(drop),
        StatementKind::RetentionRule => {
            signed.verify::<crate::retention::RetentionRule>().map(drop)
        }
        StatementKind::LegalHold => signed.verify::<crate::retention::LegalHold>().map(drop),
        StatementKind::SearchKeyRotation => signed
            .verify::<crate::release::SearchKeyRotation>()
            .map(drop),
    }?;
    Ok(signed.kind())
}
