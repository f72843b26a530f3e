//! Identities: an age X25519 key (to decrypt what is sealed to you) plus an Ed25519 key
//! (to sign what you state), their public form, a fingerprint people can compare aloud,
//! and the identity file that stores them, passphrase-protected with age scrypt.

use std::{fmt, io::Write, str::FromStr};

use age::secrecy::{ExposeSecret, SecretString};
use base64::{Engine, engine::general_purpose::STANDARD as BASE64};
use bech32::{FromBase32, ToBase32, Variant};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::{Error, SecretBytes, envelope};

const SECRET_KEY_HRP: &str = "age-secret-key-";
const RECIPIENT_HRP: &str = "age";

/// An age X25519 public key: what others encrypt to.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Recipient([u8; 32]);

impl Recipient {
    /// From the 32-byte X25519 public key.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The 32-byte X25519 public key.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub(crate) fn to_age(self) -> age::x25519::Recipient {
        self.to_string()
            .parse()
            .expect("a bech32 age recipient we encoded ourselves parses")
    }
}

impl fmt::Display for Recipient {
    /// The standard `age1...` form that the `age` tool accepts with `-r`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let encoded = bech32::encode(RECIPIENT_HRP, self.0.to_base32(), Variant::Bech32)
            .expect("the age HRP is valid");
        f.write_str(&encoded)
    }
}

impl fmt::Debug for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Recipient({self})")
    }
}

impl FromStr for Recipient {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        let invalid = || Error::InvalidText {
            what: "age recipient (age1...)",
        };
        let (hrp, data, variant) = bech32::decode(text).map_err(|_| invalid())?;
        if hrp != RECIPIENT_HRP || variant != Variant::Bech32 || text != text.to_lowercase() {
            return Err(invalid());
        }
        let bytes = Vec::<u8>::from_base32(&data).map_err(|_| invalid())?;
        Ok(Self(bytes.try_into().map_err(|_| invalid())?))
    }
}

/// An age X25519 secret key. Used for member and node identities and for the fresh
/// per-recording and per-transcript identities that are split among members.
#[derive(Clone, PartialEq, Eq)]
pub struct AgeSecretKey(SecretBytes<32>);

impl AgeSecretKey {
    /// A fresh key from the operating system's random number generator, in clamped X25519
    /// form (see [`AgeSecretKey::is_clamped`]).
    pub fn generate() -> Self {
        Self::clamping(SecretBytes::<32>::random())
    }

    /// `bytes` in clamped X25519 form (see [`AgeSecretKey::is_clamped`]): for keys derived
    /// from other secrets, which must be clamped as generated ones are.
    pub fn clamping(bytes: SecretBytes<32>) -> Self {
        let mut clamped = *bytes.expose_secret();
        clamped[0] &= 0b1111_1000;
        clamped[31] &= 0b0111_1111;
        clamped[31] |= 0b0100_0000;
        let key = Self(SecretBytes::new(clamped));
        zeroize::Zeroize::zeroize(&mut clamped);
        key
    }

    /// Whether the bytes are already in clamped X25519 form (low three bits clear, top bit
    /// clear, second-highest bit set). X25519 ignores those five bits, so two keys that
    /// differ only there have the same recipient: keys that are split must be clamped, so
    /// that a rebuilt key which differs in them is caught as corrupt.
    pub fn is_clamped(&self) -> bool {
        let bytes = self.expose_secret();
        bytes[0] & 0b0000_0111 == 0 && bytes[31] & 0b1100_0000 == 0b0100_0000
    }

    /// From the 32 secret bytes (any 32 bytes are a valid X25519 secret).
    pub fn from_secret(bytes: SecretBytes<32>) -> Self {
        Self(bytes)
    }

    /// The 32 secret bytes.
    pub fn expose_secret(&self) -> &[u8; 32] {
        self.0.expose_secret()
    }

    /// The `AGE-SECRET-KEY-1...` form that `age -d -i` reads.
    pub fn to_age_string(&self) -> Zeroizing<String> {
        let data = WipedBase32(self.expose_secret().to_base32());
        let encoded = Zeroizing::new(
            bech32::encode(SECRET_KEY_HRP, &data.0, Variant::Bech32).expect("the age HRP is valid"),
        );
        Zeroizing::new(encoded.to_uppercase())
    }

    /// Parses the `AGE-SECRET-KEY-1...` form.
    pub fn from_age_string(text: &str) -> Result<Self, Error> {
        let invalid = || Error::InvalidText {
            what: "age identity (AGE-SECRET-KEY-1...)",
        };
        let (hrp, data, variant) = bech32::decode(text).map_err(|_| invalid())?;
        let data = WipedBase32(data);
        if hrp != SECRET_KEY_HRP || variant != Variant::Bech32 {
            return Err(invalid());
        }
        let bytes = Zeroizing::new(Vec::<u8>::from_base32(&data.0).map_err(|_| invalid())?);
        let array: [u8; 32] = bytes.as_slice().try_into().map_err(|_| invalid())?;
        Ok(Self(SecretBytes::new(array)))
    }

    /// The matching public key.
    pub fn recipient(&self) -> Recipient {
        let public = self.to_age().to_public().to_string();
        public.parse().expect("age prints a valid recipient")
    }

    pub(crate) fn to_age(&self) -> age::x25519::Identity {
        self.to_age_string()
            .parse()
            .expect("an age identity string we encoded ourselves parses")
    }
}

impl fmt::Debug for AgeSecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AgeSecretKey([REDACTED])")
    }
}

/// Base32 digits of a secret, overwritten when dropped (`u5` has no `Zeroize`).
struct WipedBase32(Vec<bech32::u5>);

impl Drop for WipedBase32 {
    fn drop(&mut self) {
        let zero = bech32::u5::try_from_u8(0).expect("0 is a valid u5");
        self.0.iter_mut().for_each(|digit| *digit = zero);
        std::hint::black_box(&self.0);
    }
}

/// A SHA-256 over a public identity. Shown to people in its short form
/// (`ABCD-EFGH-...`, 120 bits) to compare out of band; stored and signed in full.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// From the 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lower-case hex of all 32 bytes.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The short form people compare: 24 base32 characters in six groups of four.
    pub fn short(&self) -> String {
        grouped_base32(self.0[..15].try_into().expect("32 bytes hold 15"))
    }

    /// Whether `text` (a short form or any prefix of it, in any case, with or without the
    /// dashes, or the full hex) names this fingerprint. At least 8 characters are required
    /// so that a prefix is not ambiguous by accident.
    pub fn matches(&self, text: &str) -> bool {
        let wanted: String = text
            .chars()
            .filter(|c| *c != '-')
            .collect::<String>()
            .to_uppercase();
        if wanted.len() == 64 && wanted.eq_ignore_ascii_case(&self.to_hex()) {
            return true;
        }
        let short: String = self.short().chars().filter(|c| *c != '-').collect();
        wanted.len() >= 8 && short.starts_with(&wanted)
    }
}

/// 15 bytes as 24 base32 characters (RFC 4648 alphabet) in six dash-separated groups of
/// four: the form of fingerprints and of codes people type.
pub fn grouped_base32(bytes: &[u8; 15]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut chars = String::with_capacity(29);
    for chunk in bytes.chunks(5) {
        let bits = chunk
            .iter()
            .fold(0u64, |acc, byte| (acc << 8) | u64::from(*byte));
        for position in (0..8).rev() {
            if chars.len() % 5 == 4 {
                chars.push('-');
            }
            chars.push(ALPHABET[((bits >> (position * 5)) & 31) as usize] as char);
        }
    }
    chars
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.short())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({})", self.short())
    }
}

impl FromStr for Fingerprint {
    type Err = Error;

    /// Parses the full 64-character hex form.
    fn from_str(text: &str) -> Result<Self, Error> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text, &mut bytes).map_err(|_| Error::InvalidText {
            what: "fingerprint (64 hex characters)",
        })?;
        Ok(Self(bytes))
    }
}

/// The public half of an identity: what a roster entry or node approval names.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicIdentity {
    /// Where shares and released copies are sealed to.
    pub recipient: Recipient,
    /// What this party's statements verify under.
    pub verifying_key: VerifyingKey,
}

impl PublicIdentity {
    /// SHA-256 over a domain tag, the recipient and the verifying key.
    pub fn fingerprint(&self) -> Fingerprint {
        let mut hash = Sha256::new();
        hash.update(b"quorate/fingerprint/v1\0");
        hash.update(self.recipient.as_bytes());
        hash.update(self.verifying_key.as_bytes());
        Fingerprint(hash.finalize().into())
    }

    /// The verifying key as unpadded base64url, the form the API and browsers use.
    pub fn verifying_key_text(&self) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(self.verifying_key.as_bytes())
    }

    /// From the API's text forms: an `age1...` recipient and a base64url Ed25519 key.
    pub fn from_text(recipient: &str, verifying_key: &str) -> Result<Self, Error> {
        let invalid = || Error::InvalidText {
            what: "Ed25519 public key (base64url, 32 bytes)",
        };
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(verifying_key)
            .map_err(|_| invalid())?;
        Ok(Self {
            recipient: recipient.parse()?,
            verifying_key: verifying_key_from_bytes(&bytes.try_into().map_err(|_| invalid())?)?,
        })
    }

    /// Checks an Ed25519 signature by this identity (strict verification: no malleable
    /// or small-order forms).
    pub(crate) fn verify(&self, message: &[u8], signature: &Signature) -> bool {
        self.verifying_key.verify_strict(message, signature).is_ok()
            && self.verifying_key.verify(message, signature).is_ok()
    }
}

impl fmt::Debug for PublicIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicIdentity({})", self.fingerprint().short())
    }
}

/// Parses an Ed25519 public key, refusing weak (small-order) points.
pub(crate) fn verifying_key_from_bytes(bytes: &[u8; 32]) -> Result<VerifyingKey, Error> {
    let key = VerifyingKey::from_bytes(bytes).map_err(|_| Error::InvalidText {
        what: "Ed25519 public key",
    })?;
    if key.is_weak() {
        return Err(Error::InvalidText {
            what: "Ed25519 public key (weak point)",
        });
    }
    Ok(key)
}

/// A member's or node's secret keys. Created on the device that uses them; never sent.
#[derive(Clone)]
pub struct Identity {
    age_key: AgeSecretKey,
    signing_key: SigningKey,
}

impl Identity {
    /// A fresh identity from the operating system's random number generator.
    pub fn generate() -> Self {
        let seed = SecretBytes::<32>::random();
        Self {
            age_key: AgeSecretKey::generate(),
            signing_key: SigningKey::from_bytes(seed.expose_secret()),
        }
    }

    /// The public half.
    pub fn public(&self) -> PublicIdentity {
        PublicIdentity {
            recipient: self.age_key.recipient(),
            verifying_key: self.signing_key.verifying_key(),
        }
    }

    /// Shorthand for `public().fingerprint()`.
    pub fn fingerprint(&self) -> Fingerprint {
        self.public().fingerprint()
    }

    /// The decryption key.
    pub fn age_key(&self) -> &AgeSecretKey {
        &self.age_key
    }

    pub(crate) fn sign(&self, message: &[u8]) -> Signature {
        self.signing_key.sign(message)
    }

    /// Signs a sign-in challenge. The domain tag keeps a challenge from ever being a valid
    /// signature over a statement, and the reverse.
    pub fn sign_challenge(&self, challenge: &[u8]) -> [u8; 64] {
        self.sign(&challenge_message(challenge)).to_bytes()
    }
}

/// What a sign-in signature covers.
fn challenge_message(challenge: &[u8]) -> Vec<u8> {
    let mut message = b"quorate/sign-in/v1\0".to_vec();
    message.extend_from_slice(challenge);
    message
}

/// Checks a sign-in challenge signature.
pub fn verify_challenge(public: &PublicIdentity, challenge: &[u8], signature: &[u8]) -> bool {
    let Ok(signature) = <[u8; 64]>::try_from(signature) else {
        return false;
    };
    public.verify(
        &challenge_message(challenge),
        &Signature::from_bytes(&signature),
    )
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Identity({}, [REDACTED])", self.fingerprint().short())
    }
}

/// The scrypt work factor (log2 N) identity files are written with: age's own default
/// level, about a second on a laptop, and what browsers running typage accept.
pub const DEFAULT_WORK_FACTOR: u8 = 18;

const FILE_HEADER: &str = "quorate-identity-v1";

/// Writes and reads identity files.
///
/// The plaintext is a short text file:
/// ```text
/// # Quorate identity. Keep it secret. Fingerprint: ABCD-...
/// quorate-identity-v1
/// age: AGE-SECRET-KEY-1...
/// ed25519: <base64 of the 32-byte seed>
/// ```
/// A protected file is that text in an ASCII-armoured age file with a passphrase (scrypt)
/// stanza, which `age -d` and typage open too.
#[derive(Debug)]
pub struct IdentityFile;

impl IdentityFile {
    /// The unprotected text (for nodes, whose files are guarded by file permissions).
    pub fn to_plaintext(identity: &Identity) -> Zeroizing<String> {
        let seed = Zeroizing::new(BASE64.encode(identity.signing_key.to_bytes()));
        Zeroizing::new(format!(
            "# Quorate identity. Keep it secret. Fingerprint: {}\n{FILE_HEADER}\nage: {}\ned25519: {}\n",
            identity.fingerprint().short(),
            identity.age_key.to_age_string().as_str(),
            seed.as_str(),
        ))
    }

    /// The passphrase-protected file. `work_factor` is scrypt's log2 N.
    pub fn to_protected(
        identity: &Identity,
        passphrase: &SecretString,
        work_factor: u8,
    ) -> Result<Vec<u8>, Error> {
        let mut recipient = age::scrypt::Recipient::new(passphrase.clone());
        recipient.set_work_factor(work_factor);
        let plaintext = Self::to_plaintext(identity);
        let mut output = Vec::new();
        {
            let armored = age::armor::ArmoredWriter::wrap_output(
                &mut output,
                age::armor::Format::AsciiArmor,
            )?;
            let encryptor = age::Encryptor::with_recipients(std::iter::once(&recipient as _))
                .map_err(|_| Error::InvalidField {
                    field: "passphrase",
                    reason: "age refused it",
                })?;
            let mut writer = encryptor.wrap_output(armored)?;
            writer.write_all(plaintext.as_bytes())?;
            writer.finish()?.finish()?;
        }
        Ok(output)
    }

    /// Whether the bytes are a protected (age-encrypted) identity file.
    pub fn is_protected(file: &[u8]) -> bool {
        file.starts_with(b"-----BEGIN AGE ENCRYPTED FILE-----")
            || file.starts_with(b"age-encryption.org/v1")
    }

    /// Reads a protected or unprotected identity file.
    pub fn read(file: &[u8], passphrase: Option<&SecretString>) -> Result<Identity, Error> {
        if !Self::is_protected(file) {
            let text = std::str::from_utf8(file).map_err(|_| Error::Malformed {
                what: "identity file",
            })?;
            return Self::parse_plaintext(text);
        }
        let passphrase = passphrase.ok_or(Error::PassphraseRequired)?;
        let plaintext = envelope::open_with_passphrase(file, passphrase, "identity file")?;
        let text = std::str::from_utf8(&plaintext).map_err(|_| Error::Malformed {
            what: "identity file",
        })?;
        Self::parse_plaintext(text)
    }

    fn parse_plaintext(text: &str) -> Result<Identity, Error> {
        let malformed = || Error::Malformed {
            what: "identity file",
        };
        let mut lines = text
            .lines()
            .map(str::trim_end)
            .filter(|line| !line.is_empty() && !line.starts_with('#'));
        if lines.next() != Some(FILE_HEADER) {
            return Err(malformed());
        }
        let age_line = lines
            .next()
            .and_then(|l| l.strip_prefix("age: "))
            .ok_or_else(malformed)?;
        let seed_line = lines
            .next()
            .and_then(|l| l.strip_prefix("ed25519: "))
            .ok_or_else(malformed)?;
        if lines.next().is_some() {
            return Err(malformed());
        }
        let age_key = AgeSecretKey::from_age_string(age_line).map_err(|_| malformed())?;
        let seed = Zeroizing::new(BASE64.decode(seed_line).map_err(|_| malformed())?);
        let seed: Zeroizing<[u8; 32]> =
            Zeroizing::new(seed.as_slice().try_into().map_err(|_| malformed())?);
        Ok(Identity {
            age_key,
            signing_key: SigningKey::from_bytes(&seed),
        })
    }
}

/// Reads a passphrase given as text (from a prompt or the environment).
pub fn passphrase(text: impl Into<String>) -> SecretString {
    SecretString::from(text.into())
}

/// Compares a passphrase with its confirmation without copying either.
pub fn passphrases_match(first: &SecretString, second: &SecretString) -> bool {
    use subtle::ConstantTimeEq;
    first
        .expose_secret()
        .as_bytes()
        .ct_eq(second.expose_secret().as_bytes())
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn age_key_text_round_trips_and_matches_age() {
        let key = AgeSecretKey::generate();
        let text = key.to_age_string();
        assert!(text.starts_with("AGE-SECRET-KEY-1"));
        let parsed = AgeSecretKey::from_age_string(&text).unwrap();
        assert_eq!(parsed, key);
        let theirs: age::x25519::Identity = text.parse().unwrap();
        assert_eq!(theirs.to_public().to_string(), key.recipient().to_string());
    }

    #[test]
    fn recipient_text_round_trips() {
        let recipient = AgeSecretKey::generate().recipient();
        let text = recipient.to_string();
        assert!(text.starts_with("age1"));
        assert_eq!(text.parse::<Recipient>().unwrap(), recipient);
        assert!("age1notvalid".parse::<Recipient>().is_err());
        assert!(text.to_uppercase().parse::<Recipient>().is_err());
    }

    #[test]
    fn fingerprint_short_form() {
        let identity = Identity::generate();
        let fingerprint = identity.fingerprint();
        let short = fingerprint.short();
        assert_eq!(short.len(), 29, "{short}");
        assert_eq!(short.matches('-').count(), 5);
        assert!(fingerprint.matches(&short));
        assert!(fingerprint.matches(&short[..9].to_lowercase()));
        assert!(!fingerprint.matches(&short[..4]));
        assert!(fingerprint.matches(&fingerprint.to_hex()));
        assert_eq!(
            fingerprint.to_hex().parse::<Fingerprint>().unwrap(),
            fingerprint
        );
    }

    #[test]
    fn debug_output_is_redacted() {
        let identity = Identity::generate();
        let shown = format!("{identity:?} {:?}", identity.age_key());
        assert!(!shown.contains(identity.age_key().to_age_string().as_str()));
        assert!(shown.contains("REDACTED"));
    }

    #[test]
    fn plaintext_identity_file_round_trips() {
        let identity = Identity::generate();
        let text = IdentityFile::to_plaintext(&identity);
        let read = IdentityFile::read(text.as_bytes(), None).unwrap();
        assert_eq!(read.public(), identity.public());
    }

    #[test]
    fn protected_identity_file_round_trips_and_refuses_wrong_passphrase() {
        let identity = Identity::generate();
        let secret = passphrase("correct horse");
        let file = IdentityFile::to_protected(&identity, &secret, 10).unwrap();
        assert!(IdentityFile::is_protected(&file));
        assert!(file.starts_with(b"-----BEGIN AGE ENCRYPTED FILE-----"));
        let read = IdentityFile::read(&file, Some(&secret)).unwrap();
        assert_eq!(read.public(), identity.public());
        assert!(matches!(
            IdentityFile::read(&file, Some(&passphrase("wrong"))),
            Err(Error::WrongPassphrase)
        ));
        assert!(matches!(
            IdentityFile::read(&file, None),
            Err(Error::PassphraseRequired)
        ));
    }

    #[test]
    fn challenge_signatures() {
        let identity = Identity::generate();
        let signature = identity.sign_challenge(b"nonce");
        assert!(verify_challenge(&identity.public(), b"nonce", &signature));
        assert!(!verify_challenge(&identity.public(), b"other", &signature));
        assert!(!verify_challenge(
            &Identity::generate().public(),
            b"nonce",
            &signature
        ));
        assert!(!verify_challenge(
            &identity.public(),
            b"nonce",
            &signature[..10]
        ));
    }
}
