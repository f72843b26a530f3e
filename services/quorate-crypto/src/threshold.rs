//! k-of-n sharing of a recording's (or transcript's) age key among the vault's members.
//!
//! What is shared is a secret scalar ([`crate::vss`]), from which the age key is derived;
//! share `i` (1-based) is the sharing polynomial's value at `i`. Each share is sealed, as
//! an age file, to one holder, and its plaintext binds where it belongs, including the
//! Feldman commitments of the sharing it is a point of (see [`ShareBinding`]), so every
//! device that opens a share checks it, and a bad share is named, not just noticed. The
//! uploader's signed manifest carries the first sharing's commitments; a re-share
//! ([`crate::reshare`]) moves the shares to new holders under new commitments to the same
//! secret.

use zeroize::Zeroizing;

use crate::{
    AgeSecretKey, Error, Fingerprint, Recipient, RecordingId, TranscriptId, VaultId, envelope,
    vss::{Commitments, ScalarShare},
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

/// Rebuilds the key for `subject` from at least k shares of one sharing, each checked
/// against that sharing's `commitments` first (a bad one is named, [`Error::BadShare`]),
/// and checks the result against `expected`, the recipient in the signed manifest: shares
/// that verify against commitments the server made up rebuild some other key, never this
/// one.
pub fn combine(
    shares: &[ScalarShare],
    commitments: &Commitments,
    subject: &Subject,
    expected: &Recipient,
) -> Result<AgeSecretKey, Error> {
    let secret = crate::vss::recover(shares, commitments)?;
    let key = crate::vss::age_key(&secret, subject);
    if key.recipient() == *expected {
        Ok(key)
    } else {
        Err(Error::RecipientMismatch)
    }
}

/// Where a share belongs. Sealed inside the share, checked by every device that opens it,
/// and re-sealed with the share when it goes to a node.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// The Feldman commitments of the sharing the share is a point of: as many as
    /// `threshold.k()`, the first committing to the secret as the manifest does.
    pub commitments: Commitments,
}

const SHARE_DOMAIN: &str = "quorate/share/v2";

impl ShareBinding {
    pub(crate) fn encode(&self, writer: &mut Writer) {
        writer.fixed(self.vault_id.as_bytes());
        self.subject.encode(writer);
        writer
            .fixed(self.recipient.as_bytes())
            .u8(self.threshold.k)
            .u8(self.threshold.n)
            .u8(self.index)
            .fixed(self.member.as_bytes())
            .bytes(&self.commitments.to_bytes());
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
        let commitments = Commitments::from_bytes(reader.bytes()?)?;
        if commitments.k() != usize::from(k) {
            return Err(reader.malformed());
        }
        Ok(Self {
            vault_id,
            subject,
            recipient,
            threshold,
            index,
            member,
            commitments,
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
            ("commitments", self.commitments == expected.commitments),
        ];
        Error::first_mismatch(&fields)
    }
}

/// The plaintext of a sealed share: the binding, then the share's bytes.
pub fn encode_share(binding: &ShareBinding, share: &ScalarShare) -> Zeroizing<Vec<u8>> {
    let mut writer = Writer::new(SHARE_DOMAIN);
    binding.encode(&mut writer);
    writer.fixed(&*share.to_bytes());
    Zeroizing::new(writer.finish())
}

/// Parses the plaintext of a sealed share (exposed for fuzzing).
pub fn decode_share(plaintext: &[u8]) -> Result<(ShareBinding, ScalarShare), Error> {
    let mut reader = Reader::new(plaintext, SHARE_DOMAIN, "sealed share")?;
    let binding = ShareBinding::decode(&mut reader)?;
    let value = Zeroizing::new(reader.array::<32>()?);
    reader.finish()?;
    let share = ScalarShare::from_bytes(binding.index, &value)?;
    Ok((binding, share))
}

/// Seals `share` to `member_recipient` with its binding. The share's index must be the
/// binding's.
pub fn seal_share(
    binding: &ShareBinding,
    share: &ScalarShare,
    member_recipient: &Recipient,
) -> Result<Vec<u8>, Error> {
    if binding.index != share.index() {
        return Err(Error::BindingMismatch {
            field: "share index",
        });
    }
    envelope::seal(
        &encode_share(binding, share),
        std::slice::from_ref(member_recipient),
    )
}

/// Opens a sealed share with the member's key, checks its binding against `expected`
/// (built from the signed manifest, or the re-shares since), and the share against the
/// binding's commitments.
pub fn open_share(
    sealed: &[u8],
    key: &AgeSecretKey,
    expected: &ShareBinding,
) -> Result<ScalarShare, Error> {
    let plaintext = envelope::open(sealed, key, "sealed share")?;
    let (binding, share) = decode_share(&plaintext)?;
    binding.check(expected)?;
    binding.commitments.verify(&share)?;
    Ok(share)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vss::Secret;

    #[test]
    fn threshold_bounds() {
        assert!(Threshold::new(1, 1).is_ok());
        assert!(Threshold::new(255, 255).is_ok());
        assert!(Threshold::new(0, 3).is_err());
        assert!(Threshold::new(4, 3).is_err());
        assert!(Threshold::new(2, 256).is_err());
    }

    fn shared(k: usize, n: usize) -> (Subject, AgeSecretKey, Vec<ScalarShare>, Commitments) {
        let subject = Subject::Recording(RecordingId::random());
        let secret = Secret::random();
        let (shares, commitments) = secret.split(Threshold::new(k, n).unwrap());
        (subject, secret.age_key(&subject), shares, commitments)
    }

    #[test]
    fn one_of_n_each_share_is_enough() {
        let (subject, key, shares, commitments) = shared(1, 3);
        for share in &shares {
            let rebuilt = combine(
                std::slice::from_ref(share),
                &commitments,
                &subject,
                &key.recipient(),
            );
            assert_eq!(rebuilt.unwrap(), key);
        }
    }

    #[test]
    fn duplicates_too_few_and_another_subject_are_refused() {
        let (subject, key, shares, commitments) = shared(2, 3);
        let recipient = key.recipient();
        assert!(matches!(
            combine(
                &[shares[0].clone(), shares[0].clone()],
                &commitments,
                &subject,
                &recipient
            ),
            Err(Error::DuplicateShare { index: 1 })
        ));
        assert!(matches!(
            combine(&shares[..1], &commitments, &subject, &recipient),
            Err(Error::NotEnoughShares { have: 1, need: 2 })
        ));
        let other = Subject::Recording(RecordingId::random());
        assert!(matches!(
            combine(&shares, &commitments, &other, &recipient),
            Err(Error::RecipientMismatch)
        ));
        assert_eq!(
            combine(&shares[1..], &commitments, &subject, &recipient).unwrap(),
            key
        );
    }

    #[test]
    fn sealed_share_opens_only_for_its_binding() {
        let member = crate::Identity::generate();
        let (subject, key, shares, commitments) = shared(2, 3);
        let binding = ShareBinding {
            vault_id: VaultId::random(),
            subject,
            recipient: key.recipient(),
            threshold: Threshold::new(2, 3).unwrap(),
            index: 2,
            member: member.fingerprint(),
            commitments: commitments.clone(),
        };
        let sealed = seal_share(&binding, &shares[1], &member.public().recipient).unwrap();
        assert_eq!(
            open_share(&sealed, member.age_key(), &binding)
                .unwrap()
                .to_bytes(),
            shares[1].to_bytes()
        );

        let other_recording = ShareBinding {
            subject: Subject::Recording(RecordingId::random()),
            ..binding.clone()
        };
        assert!(matches!(
            open_share(&sealed, member.age_key(), &other_recording),
            Err(Error::BindingMismatch { field: "subject" })
        ));
        assert!(matches!(
            seal_share(&binding, &shares[0], &member.public().recipient),
            Err(Error::BindingMismatch { .. })
        ));

        // A share sealed under its binding but off the binding's polynomial is named.
        let off = ScalarShare::from_bytes(2, &shares[0].to_bytes()).unwrap();
        let sealed = seal_share(&binding, &off, &member.public().recipient).unwrap();
        assert!(matches!(
            open_share(&sealed, member.age_key(), &binding),
            Err(Error::BadShare { index: 2 })
        ));
    }
}
