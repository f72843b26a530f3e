//! Blind-index tokens: what the server stores and matches instead of words.
//!
//! `token = HMAC-SHA256(Ks, normalise(word))[..16]`, where `normalise` applies Unicode NFKC,
//! lower-cases (full Unicode mapping), and splits on every character that is not a word
//! character. Word characters are Unicode `Alphabetic`, general category `N` (numbers) and
//! general category `M` (marks): without the marks, a Devanagari virama or the dot that
//! lower-casing `İ` leaves would cut words in two. The TypeScript
//! side checks itself against the JSON vectors this crate publishes
//! (`testdata/blind-index-vectors.json`).

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use unicode_normalization::UnicodeNormalization;
use zeroize::Zeroizing;

use crate::{
    AgeSecretKey, Error, Recipient, SecretBytes, VaultId, envelope,
    wire::{Reader, Writer},
};

/// A vault's search key: 32 random bytes, sealed to every member and approved node.
#[derive(Clone, PartialEq, Eq)]
pub struct SearchKey(SecretBytes<32>);

/// A 16-byte blind token.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlindToken(pub [u8; 16]);

impl fmt::Display for BlindToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for BlindToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlindToken({self})")
    }
}

/// Splits text into normalised words.
pub fn normalise(text: &str) -> Vec<String> {
    // The folded copy is plaintext (a transcript's words on a node): wiped when dropped.
    let folded = Zeroizing::new(text.nfkc().collect::<String>().to_lowercase());
    folded
        .split(|c: char| !is_word_character(c))
        .filter(|word| !word.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Alphabetic, number or mark (in JavaScript: `/[\p{Alphabetic}\p{N}\p{M}]/u`).
fn is_word_character(c: char) -> bool {
    c.is_alphanumeric() || unicode_normalization::char::is_combining_mark(c)
}

const SEARCH_KEY_DOMAIN: &str = "quorate/search-key/v1";

impl SearchKey {
    /// A fresh key.
    pub fn generate() -> Self {
        Self(SecretBytes::random())
    }

    /// From its 32 bytes.
    pub fn from_secret(bytes: SecretBytes<32>) -> Self {
        Self(bytes)
    }

    /// The 32 bytes.
    pub fn expose_secret(&self) -> &[u8; 32] {
        self.0.expose_secret()
    }

    /// The token of one already-normalised word.
    pub fn token(&self, word: &str) -> BlindToken {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.expose_secret())
            .expect("HMAC takes any key length");
        mac.update(word.as_bytes());
        let digest = mac.finalize().into_bytes();
        BlindToken(digest[..16].try_into().expect("SHA-256 is 32 bytes"))
    }

    /// The tokens of every word of `text`, in order, repeats kept.
    pub fn tokens(&self, text: &str) -> Vec<BlindToken> {
        normalise(text)
            .iter()
            .map(|word| self.token(word))
            .collect()
    }

    /// Seals the key for one vault to `recipients`.
    pub fn seal(&self, vault_id: VaultId, recipients: &[Recipient]) -> Result<Vec<u8>, Error> {
        let mut writer = Writer::new(SEARCH_KEY_DOMAIN);
        writer
            .fixed(vault_id.as_bytes())
            .fixed(self.expose_secret());
        envelope::seal(&Zeroizing::new(writer.finish()), recipients)
    }

    /// Opens a sealed search key and checks it belongs to `vault_id`.
    pub fn open(sealed: &[u8], key: &AgeSecretKey, vault_id: VaultId) -> Result<Self, Error> {
        let plaintext = envelope::open(sealed, key, "sealed search key")?;
        let mut reader = Reader::new(&plaintext, SEARCH_KEY_DOMAIN, "sealed search key")?;
        if reader.array::<16>()? != *vault_id.as_bytes() {
            return Err(Error::BindingMismatch { field: "vault ID" });
        }
        let secret = Self(SecretBytes::new(reader.array()?));
        reader.finish()?;
        Ok(secret)
    }
}

impl fmt::Debug for SearchKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SearchKey([REDACTED])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_folds_case_width_and_punctuation() {
        assert_eq!(
            normalise("Hello, WORLD! ｆｕｌｌ-width ﬁne 2024"),
            ["hello", "world", "full", "width", "fine", "2024"]
        );
        assert_eq!(normalise("  "), Vec::<String>::new());
        assert_eq!(normalise("Straße café"), ["straße", "café"]);
        assert_eq!(normalise("नमस्ते दुनिया"), ["नमस्ते", "दुनिया"]);
        assert_eq!(normalise("İstanbul"), ["i\u{307}stanbul"]);
    }

    #[test]
    fn tokens_depend_on_the_key_and_the_normalised_word() {
        let key = SearchKey::generate();
        assert_eq!(key.tokens("Budget"), key.tokens("BUDGET"));
        assert_ne!(key.tokens("budget"), SearchKey::generate().tokens("budget"));
    }

    #[test]
    fn sealed_key_is_bound_to_its_vault() {
        let key = SearchKey::generate();
        let member = AgeSecretKey::generate();
        let vault = VaultId::random();
        let sealed = key.seal(vault, &[member.recipient()]).unwrap();
        assert_eq!(SearchKey::open(&sealed, &member, vault).unwrap(), key);
        assert!(SearchKey::open(&sealed, &member, VaultId::random()).is_err());
    }
}
