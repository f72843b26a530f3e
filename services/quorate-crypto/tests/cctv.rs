//! The official age test vectors (C2SP CCTV) through this crate's decryption path.
//!
//! Every vector must reach its expected outcome, except the deviations listed below with
//! their reasons; a deviation that starts passing, or a new failure, fails the test.

use std::{
    collections::BTreeMap,
    io::Read,
    path::{Path, PathBuf},
};

use quorate_crypto::{
    AgeSecretKey, DecryptFailure, Error,
    envelope::{Unlock, open_reader, payload_error},
    secrecy::SecretString,
};
use sha2::{Digest, Sha256};

/// Vectors this crate is known not to pass, and why.
const DEVIATIONS: &[(&str, &str)] = &[
    ("hybrid", PQ),
    ("hybrid_multiple_recipients", PQ),
    ("armor_hybrid", PQ),
    ("hybrid_and_x25519", PQ),
    ("hybrid_grease", PQ),
    ("hybrid_extra_argument", PQ),
    ("hybrid_identity", PQ),
    ("hybrid_long_file_key", PQ),
    ("hybrid_long_share", PQ),
    ("hybrid_low_order", PQ),
    ("hybrid_not_canonical_enc", PQ),
    ("hybrid_short_share", PQ),
    (
        "stanza_missing_body",
        "rage deliberately accepts legacy stanzas without an explicit final short line",
    ),
    (
        "stanza_missing_final_line",
        "rage deliberately accepts legacy stanzas without an explicit final short line",
    ),
    (
        "armor_whitespace_outside",
        "rage deliberately does not accept whitespace before the armour (armour is detected by its first bytes)",
    ),
];

const PQ: &str = "post-quantum hybrid stanza: age 0.12 has no ML-KEM-768+X25519 identity, so it cannot open or validate it";

fn vectors_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("QUORATE_CCTV_DIR") {
        return dir.into();
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/age-cctv")
}

/// Every vector's SHA-256 must be the one `SHA256SUMS` lists, and every listed file present:
/// a vector changed by accident would otherwise test something else, silently.
fn check_sums(dir: &Path, entries: &[PathBuf]) {
    let sums = std::fs::read_to_string(dir.join("SHA256SUMS"))
        .expect("SHA256SUMS is kept with the vectors");
    let listed: BTreeMap<&str, &str> = sums
        .lines()
        .filter_map(|line| line.split_once("  "))
        .map(|(hash, name)| (name, hash))
        .collect();
    assert_eq!(listed.len(), entries.len(), "SHA256SUMS lists every vector");
    for path in entries {
        let name = path.file_name().unwrap().to_str().unwrap();
        let actual = hex::encode(Sha256::digest(std::fs::read(path).unwrap()));
        assert_eq!(
            listed.get(name),
            Some(&actual.as_str()),
            "{name} differs from SHA256SUMS"
        );
    }
}

#[derive(Debug, Default)]
struct Vector {
    expect: String,
    payload: Option<String>,
    identities: Vec<String>,
    passphrases: Vec<String>,
    compressed: bool,
    unknown_key: bool,
    body: Vec<u8>,
}

fn parse(bytes: &[u8]) -> Vector {
    let split = bytes
        .windows(2)
        .position(|w| w == b"\n\n")
        .expect("vector has a header");
    let header = std::str::from_utf8(&bytes[..split]).expect("header is UTF-8");
    let mut vector = Vector {
        body: bytes[split + 2..].to_vec(),
        ..Vector::default()
    };
    for line in header.lines() {
        let (key, value) = line.split_once(": ").expect("header line is key: value");
        match key {
            "expect" => vector.expect = value.to_owned(),
            "payload" => vector.payload = Some(value.to_owned()),
            "identity" => vector.identities.push(value.to_owned()),
            "passphrase" => vector.passphrases.push(value.to_owned()),
            "compressed" => vector.compressed = value == "zlib",
            "armored" | "file key" | "comment" => {}
            _ => vector.unknown_key = true,
        }
    }
    if vector.compressed {
        let mut body = Vec::new();
        flate2::read::ZlibDecoder::new(&vector.body[..])
            .read_to_end(&mut body)
            .unwrap();
        vector.body = body;
    }
    vector
}

fn outcome_of(error: &Error) -> String {
    match error {
        Error::Decrypt { failure, .. } => match failure {
            DecryptFailure::NotForThisKey => "no match",
            DecryptFailure::HeaderMac => "HMAC failure",
            DecryptFailure::BadPayload => "payload failure",
            DecryptFailure::BadArmor => "armor failure",
            _ => "header failure",
        }
        .to_owned(),
        other => format!("unexpected error: {other}"),
    }
}

/// Runs one vector: the outcome and the SHA-256 of all plaintext released.
fn run(vector: &Vector) -> Result<(String, String), String> {
    // Identities of a type this crate cannot parse (post-quantum hybrid) are left out, as a
    // decryptor that does not know the type would ignore them.
    let keys: Vec<AgeSecretKey> = vector
        .identities
        .iter()
        .filter_map(|text| AgeSecretKey::from_age_string(text).ok())
        .collect();
    let passphrase = vector
        .passphrases
        .first()
        .map(|p| SecretString::from(p.clone()));
    let unlock = match &passphrase {
        Some(passphrase) => Unlock::Passphrase(passphrase),
        None => Unlock::Keys(&keys),
    };
    let mut released = Sha256::new();
    let outcome = match open_reader(&vector.body[..], unlock, "test vector") {
        Err(error) => outcome_of(&error),
        Ok(mut stream) => {
            let mut buffer = vec![0u8; 8192];
            loop {
                match stream.read(&mut buffer) {
                    Ok(0) => break "success".to_owned(),
                    Ok(read) => released.update(&buffer[..read]),
                    Err(error) => break outcome_of(&payload_error(error, "test vector")),
                }
            }
        }
    };
    Ok((outcome, hex::encode(released.finalize())))
}

#[test]
fn cctv_age_vectors() {
    let dir = vectors_dir();
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|error| {
            panic!(
                "the CCTV vectors should be at {} ({error}); set QUORATE_CCTV_DIR",
                dir.display()
            )
        })
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            !matches!(
                path.file_name().unwrap().to_str().unwrap(),
                "README.md" | "SHA256SUMS"
            )
        })
        .collect();
    entries.sort();
    assert_eq!(
        entries.len(),
        143,
        "expected the 143 CCTV vectors in {}",
        dir.display()
    );

    check_sums(&dir, &entries);

    let deviations: BTreeMap<&str, &str> = DEVIATIONS.iter().copied().collect();
    let mut passed = 0;
    let mut unexpected = Vec::new();
    let mut deviated = Vec::new();
    for path in &entries {
        let name = path.file_name().unwrap().to_str().unwrap();
        let vector = parse(&std::fs::read(path).unwrap());
        assert!(!vector.unknown_key, "{name}: unknown header key");
        let result = run(&vector);
        let ok = match &result {
            Ok((outcome, released)) => {
                *outcome == vector.expect
                    && vector
                        .payload
                        .as_ref()
                        .is_none_or(|expected| expected == released)
            }
            Err(_) => false,
        };
        match (ok, deviations.contains_key(name)) {
            (true, false) => passed += 1,
            (true, true) => {
                unexpected.push(format!("{name}: listed as a deviation but now passes"))
            }
            (false, true) => deviated.push(name),
            (false, false) => unexpected.push(format!(
                "{name}: expected {}, got {result:?}",
                vector.expect
            )),
        }
    }
    println!(
        "CCTV age vectors: {passed} of {} passed; {} known deviations:",
        entries.len(),
        deviated.len()
    );
    for name in &deviated {
        println!("  {name}: {}", deviations[name]);
    }
    assert!(
        unexpected.is_empty(),
        "unexpected results:\n{}",
        unexpected.join("\n")
    );
    assert_eq!(
        deviated.len(),
        DEVIATIONS.len(),
        "every listed deviation should still be met"
    );
    assert_eq!(passed + deviated.len(), entries.len());
}
