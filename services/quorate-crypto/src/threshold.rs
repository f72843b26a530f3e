//! k-of-n sharing of a recording's (or transcript's) age key among the vault's members.
//!
//! The 32 secret bytes are split byte-wise over GF(256) with vsss-rs (`Gf256`); share `i`
//! has identifier `i` (1-based). Each share is sealed, as an age file, to one member, and
//! its plaintext binds where it belongs (see [`ShareBinding`]). The uploader's signed
//! manifest carries a commitment per share, so a bad share is named, not just noticed.

use std::collections::BTreeSet;

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::{
    AgeSecretKey, Error, Fingerprint, Recipient, RecordingId, SecretBytes, TranscriptId, VaultId,
    envelope,
    wire::{Reader, Writer},
};

/// A k-of-n policy with 1 <= k <= n <= 255. Holding one is proof that it is valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Threshold {
    k: u8,
    n: u8,
}

impl Threshold {
    /// Checks and builds a policy.
    pub fn new(k: usize, n: usize) -> Result<Self, Error> {
        match (u8::try_from(k), u8::try_from(n)) {
            (Ok(small_k), Ok(small_n)) if small_k >= 1 && small_k <= small_n => Ok(Self {
                k: small_k,
                n: small_n,
            }),
            _ => Err(Error::InvalidThreshold { k, n }),
        }
    }

    /// Shares needed.
    pub fn k(&self) -> u8 {
        self.k
    }

    /// Shares made.
    pub fn n(&self) -> u8 {
        self.n
    }
}

/// What a split key opens. Part of every binding, so a share of one can never be passed
/// off as a share of another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Subject {
    /// A recording's key.
    Recording(RecordingId),
    /// A sealed transcript's key.
    Transcript(TranscriptId),
}

impl Subject {
    pub(crate) fn encode(&self, writer: &mut Writer) {
        match self {
            Self::Recording(id) => writer.u8(1).fixed(id.as_bytes()),
            Self::Transcript(id) => writer.u8(2).fixed(id.as_bytes()),
        };
    }

    pub(crate) fn decode(reader: &mut Reader<'_>) -> Result<Self, Error> {
        match reader.u8()? {
            1 => Ok(Self::Recording(RecordingId::from_bytes(reader.array()?))),
            2 => Ok(Self::Transcript(TranscriptId::from_bytes(reader.array()?))),
            _ => Err(reader.malformed()),
        }
    }
}

/// One member's share: its 1-based index and 32 secret bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct Share {
    index: u8,
    value: SecretBytes<32>,
}

impl Share {
    /// Rebuilds a share from its parts (index 1..=255).
    pub fn new(index: u8, value: SecretBytes<32>) -> Result<Self, Error> {
        if index == 0 {
            return Err(Error::InvalidField {
                field: "share index",
                reason: "must be 1 to 255",
            });
        }
        Ok(Self { index, value })
    }

    /// The 1-based index, which is also the Shamir x-coordinate.
    pub fn index(&self) -> u8 {
        self.index
    }

    /// The 32 secret bytes.
    pub fn expose_secret(&self) -> &[u8; 32] {
        self.value.expose_secret()
    }

    /// The 33-byte form vsss-rs (identifier first) and the npm package
    /// `shamir-secret-sharing` (identifier last) both build on.
    fn to_vsss(&self) -> Zeroizing<Vec<u8>> {
        let mut bytes = Zeroizing::new(Vec::with_capacity(33));
        bytes.push(self.index);
        bytes.extend_from_slice(self.value.expose_secret());
        bytes
    }
}

impl std::fmt::Debug for Share {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Share({}, [REDACTED])", self.index)
    }
}

/// Splits `key` into `threshold.n()` shares, any `threshold.k()` of which rebuild it.
pub fn split(key: &AgeSecretKey, threshold: Threshold) -> Result<Vec<Share>, Error> {
    if !key.is_clamped() {
        return Err(Error::InvalidField {
            field: "split key",
            reason: "must be in clamped X25519 form (make it with AgeSecretKey::generate)",
        });
    }
    let n = threshold.n as usize;
    if threshold.k == 1 {
        // A constant polynomial: vsss-rs refuses k = 1, and every share is the key itself.
        return (1..=threshold.n)
            .map(|index| Share::new(index, SecretBytes::new(*key.expose_secret())))
            .collect();
    }
    let mut raw = vsss_rs::Gf256::split_bytes(
        threshold.k as usize,
        n,
        key.expose_secret(),
        crate::secret::system_rng(),
    )
    .map_err(|_| Error::InvalidThreshold {
        k: threshold.k as usize,
        n,
    })?;
    let shares = raw
        .iter()
        .map(|bytes| {
            let value: [u8; 32] = bytes[1..].try_into().expect("vsss-rs returns 1 + 32 bytes");
            Share::new(bytes[0], SecretBytes::new(value))
        })
        .collect();
    zeroize::Zeroize::zeroize(&mut raw);
    shares
}

/// Rebuilds the key from at least k shares and checks it against `expected`, the
/// recipient in the signed manifest, and that it is in clamped form (as every split key
/// is: a share tampered only in bits X25519 ignores would otherwise rebuild a different key
/// with the same recipient). Given more than k shares of which one is bad, names
/// that share ([`Error::BadShare`]).
pub fn combine(
    shares: &[Share],
    threshold: Threshold,
    expected: &Recipient,
) -> Result<AgeSecretKey, Error> {
    let mut seen = BTreeSet::new();
    for share in shares {
        if share.index > threshold.n {
            return Err(Error::InvalidField {
                field: "share index",
                reason: "greater than n",
            });
        }
        if !seen.insert(share.index) {
            return Err(Error::DuplicateShare { index: share.index });
        }
    }
    if shares.len() < threshold.k as usize {
        return Err(Error::NotEnoughShares {
            have: shares.len(),
            need: threshold.k as usize,
        });
    }
    let is_right = |key: &AgeSecretKey| key.is_clamped() && key.recipient() == *expected;
    let rebuilt = interpolate(shares)?;
    if is_right(&rebuilt) {
        return Ok(rebuilt);
    }
    if shares.len() > threshold.k as usize {
        // Points on a degree k-1 polynomial: leaving out the one bad point rebuilds the key.
        for (left_out, share) in shares.iter().enumerate() {
            let others: Vec<Share> = shares
                .iter()
                .enumerate()
                .filter(|(position, _)| *position != left_out)
                .map(|(_, share)| share.clone())
                .collect();
            if is_right(&interpolate(&others)?) {
                return Err(Error::BadShare { index: share.index });
            }
        }
    }
    Err(Error::RecipientMismatch)
}

fn interpolate(shares: &[Share]) -> Result<AgeSecretKey, Error> {
    if let [single] = shares {
        // Only reachable with k = 1, where a share is the key.
        return Ok(AgeSecretKey::from_secret(SecretBytes::new(
            *single.expose_secret(),
        )));
    }
    let raw: Vec<Zeroizing<Vec<u8>>> = shares.iter().map(Share::to_vsss).collect();
    let mut plain: Vec<Vec<u8>> = raw.iter().map(|bytes| bytes.to_vec()).collect();
    let combined = vsss_rs::Gf256::combine_bytes(&plain).map(Zeroizing::new);
    zeroize::Zeroize::zeroize(&mut plain);
    let combined = combined.map_err(|_| Error::Malformed { what: "share set" })?;
    let secret: [u8; 32] = combined
        .as_slice()
        .try_into()
        .map_err(|_| Error::Malformed { what: "share set" })?;
    Ok(AgeSecretKey::from_secret(SecretBytes::new(secret)))
}

/// Where a share belongs. Sealed inside the share, checked by every device that opens it,
/// and re-sealed with the share when it goes to a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShareBinding {
    /// The vault.
    pub vault_id: VaultId,
    /// What the split key opens.
    pub subject: Subject,
    /// The public key of the split key, as in the signed manifest.
    pub recipient: Recipient,
    /// The policy it was split under.
    pub threshold: Threshold,
    /// The share's index (1-based).
    pub index: u8,
    /// The member the share was sealed to.
    pub member: Fingerprint,
}

const SHARE_DOMAIN: &str = "quorate/share/v1";

impl ShareBinding {
    pub(crate) fn encode(&self, writer: &mut Writer) {
        writer.fixed(self.vault_id.as_bytes());
        self.subject.encode(writer);
        writer
            .fixed(self.recipient.as_bytes())
            .u8(self.threshold.k)
            .u8(self.threshold.n)
            .u8(self.index)
            .fixed(self.member.as_bytes());
    }

    pub(crate) fn decode(reader: &mut Reader<'_>) -> Result<Self, Error> {
        let vault_id = VaultId::from_bytes(reader.array()?);
        let subject = Subject::decode(reader)?;
        let recipient = Recipient::from_bytes(reader.array()?);
        let (k, n) = (reader.u8()?, reader.u8()?);
        let threshold = Threshold::new(k.into(), n.into()).map_err(|_| reader.malformed())?;
        let index = reader.u8()?;
        if index == 0 || index > n {
            return Err(reader.malformed());
        }
        let member = Fingerprint::from_bytes(reader.array()?);
        Ok(Self {
            vault_id,
            subject,
            recipient,
            threshold,
            index,
            member,
        })
    }

    /// Field by field, so a mismatch names the field.
    pub fn check(&self, expected: &ShareBinding) -> Result<(), Error> {
        let fields = [
            ("vault ID", self.vault_id == expected.vault_id),
            ("subject", self.subject == expected.subject),
            ("recipient", self.recipient == expected.recipient),
            ("threshold", self.threshold == expected.threshold),
            ("share index", self.index == expected.index),
            ("member", self.member == expected.member),
        ];
        Error::first_mismatch(&fields)
    }

    /// The commitment to `share` that the manifest carries for this binding's member.
    pub fn commitment(&self, share: &Share) -> [u8; 32] {
        let mut writer = Writer::new("quorate/share-commitment/v1");
        self.subject.encode(&mut writer);
        writer
            .fixed(self.member.as_bytes())
            .u8(share.index)
            .fixed(share.expose_secret());
        let encoded = Zeroizing::new(writer.finish());
        Sha256::digest(&*encoded).into()
    }
}

/// The plaintext of a sealed share: the binding, then the share's bytes.
pub fn encode_share(binding: &ShareBinding, share: &Share) -> Zeroizing<Vec<u8>> {
    let mut writer = Writer::new(SHARE_DOMAIN);
    binding.encode(&mut writer);
    writer.fixed(share.expose_secret());
    Zeroizing::new(writer.finish())
}

/// Parses the plaintext of a sealed share (exposed for fuzzing).
pub fn decode_share(plaintext: &[u8]) -> Result<(ShareBinding, Share), Error> {
    let mut reader = Reader::new(plaintext, SHARE_DOMAIN, "sealed share")?;
    let binding = ShareBinding::decode(&mut reader)?;
    let share = Share::new(binding.index, SecretBytes::new(reader.array()?))?;
    reader.finish()?;
    Ok((binding, share))
}

/// Seals `share` to `member_recipient` with its binding. The share's index must be the
/// binding's.
pub fn seal_share(
    binding: &ShareBinding,
    share: &Share,
    member_recipient: &Recipient,
) -> Result<Vec<u8>, Error> {
    if binding.index != share.index {
        return Err(Error::BindingMismatch {
            field: "share index",
        });
    }
    envelope::seal(
        &encode_share(binding, share),
        std::slice::from_ref(member_recipient),
    )
}

/// Opens a sealed share with the member's key and checks its binding against `expected`
/// (built from the signed manifest).
pub fn open_share(
    sealed: &[u8],
    key: &AgeSecretKey,
    expected: &ShareBinding,
) -> Result<Share, Error> {
    let plaintext = envelope::open(sealed, key, "sealed share")?;
    let (binding, share) = decode_share(&plaintext)?;
    binding.check(expected)?;
    Ok(share)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threshold_bounds() {
        assert!(Threshold::new(1, 1).is_ok());
        assert!(Threshold::new(255, 255).is_ok());
        assert!(Threshold::new(0, 3).is_err());
        assert!(Threshold::new(4, 3).is_err());
        assert!(Threshold::new(2, 256).is_err());
    }

    #[test]
    fn only_clamped_keys_are_split() {
        let unclamped = AgeSecretKey::from_secret(SecretBytes::new([0xFF; 32]));
        assert!(!unclamped.is_clamped());
        assert!(split(&unclamped, Threshold::new(2, 3).unwrap()).is_err());
        assert!(AgeSecretKey::generate().is_clamped());
    }

    #[test]
    fn a_change_in_ignored_bits_is_still_caught() {
        let key = AgeSecretKey::generate();
        let threshold = Threshold::new(1, 3).unwrap();
        let mut shares = split(&key, threshold).unwrap();
        let mut bytes = *shares[0].expose_secret();
        bytes[0] ^= 1; // a bit X25519 clamps away: same recipient
        shares[0] = Share::new(1, SecretBytes::new(bytes)).unwrap();
        assert!(matches!(
            combine(&shares, threshold, &key.recipient()),
            Err(Error::BadShare { index: 1 })
        ));
    }

    #[test]
    fn one_of_n_each_share_is_enough() {
        let key = AgeSecretKey::generate();
        let threshold = Threshold::new(1, 3).unwrap();
        let shares = split(&key, threshold).unwrap();
        for share in &shares {
            assert_eq!(
                combine(std::slice::from_ref(share), threshold, &key.recipient()).unwrap(),
                key
            );
        }
        assert_eq!(combine(&shares, threshold, &key.recipient()).unwrap(), key);
    }

    #[test]
    fn duplicates_and_too_few_are_refused() {
        let key = AgeSecretKey::generate();
        let threshold = Threshold::new(2, 3).unwrap();
        let shares = split(&key, threshold).unwrap();
        assert!(matches!(
            combine(
                &[shares[0].clone(), shares[0].clone()],
                threshold,
                &key.recipient()
            ),
            Err(Error::DuplicateShare { index: 1 })
        ));
        assert!(matches!(
            combine(&shares[..1], threshold, &key.recipient()),
            Err(Error::NotEnoughShares { have: 1, need: 2 })
        ));
    }

    #[test]
    fn sealed_share_opens_only_for_its_binding() {
        let member = crate::Identity::generate();
        let key = AgeSecretKey::generate();
        let threshold = Threshold::new(2, 3).unwrap();
        let shares = split(&key, threshold).unwrap();
        let binding = ShareBinding {
            vault_id: VaultId::random(),
            subject: Subject::Recording(RecordingId::random()),
            recipient: key.recipient(),
            threshold,
            index: 2,
            member: member.fingerprint(),
        };
        let sealed = seal_share(&binding, &shares[1], &member.public().recipient).unwrap();
        assert_eq!(
            open_share(&sealed, member.age_key(), &binding).unwrap(),
            shares[1]
        );

        let other_recording = ShareBinding {
            subject: Subject::Recording(RecordingId::random()),
            ..binding
        };
        assert!(matches!(
            open_share(&sealed, member.age_key(), &other_recording),
            Err(Error::BindingMismatch { field: "subject" })
        ));
        assert!(matches!(
            seal_share(&binding, &shares[0], &member.public().recipient),
            Err(Error::BindingMismatch { .. })
        ));
    }
}
