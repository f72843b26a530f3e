//! The identity-file vector the browser checks itself against: a passphrase-protected
//! identity file as `quorate keygen` writes it (a low work factor, for tests), with its public
//! keys and fingerprint. `QUORATE_BLESS=1` writes a fresh one; otherwise the committed one
//! must still open to the same keys.

use quorate_crypto::{Identity, IdentityFile, secrecy::SecretString};
use serde_json::{Value, json};

const PASSPHRASE: &str = "correct horse battery staple";

fn vector_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/identity-file-vector.json")
}

fn describe(identity: &Identity, file: &[u8]) -> Value {
    let public = identity.public();
    json!({
        "description": "A Quorate identity file (age scrypt, armoured, work factor 10) opened with the passphrase gives these public keys and fingerprint.",
        "passphrase": PASSPHRASE,
        "file": String::from_utf8(file.to_vec()).unwrap(),
        "recipient": public.recipient.to_string(),
        "verifying_key_hex": hex::encode(public.verifying_key.as_bytes()),
        "fingerprint_hex": identity.fingerprint().to_hex(),
        "fingerprint_short": identity.fingerprint().short(),
    })
}

#[test]
fn the_published_identity_file_opens_to_its_keys() {
    let passphrase = SecretString::from(PASSPHRASE.to_owned());
    if std::env::var_os("QUORATE_BLESS").is_some() {
        let identity = Identity::generate();
        let file = IdentityFile::to_protected(&identity, &passphrase, 10).unwrap();
        let text = serde_json::to_string_pretty(&describe(&identity, &file)).unwrap();
        std::fs::write(vector_path(), text + "\n").unwrap();
    }
    let vector: Value =
        serde_json::from_str(&std::fs::read_to_string(vector_path()).unwrap()).unwrap();
    let file = vector["file"].as_str().unwrap().as_bytes();
    let identity = IdentityFile::read(file, Some(&passphrase)).unwrap();
    assert_eq!(describe(&identity, file), vector);
}
