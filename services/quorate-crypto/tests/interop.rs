//! Interop with the reference Go implementation (Debian's `age` package): what this crate
//! writes, `age` reads, and the reverse. The README's test command installs `age`.

use std::{
    io::Write,
    process::{Command, Stdio},
};

use quorate_crypto::{
    AgeSecretKey, Identity, RecordingId, VaultId, envelope,
    statement::SplitKey,
    threshold::{self, Subject, Threshold},
    vss::Secret,
};

fn age_binary() -> String {
    let path = std::env::var("QUORATE_AGE_BIN").unwrap_or_else(|_| "age".to_owned());
    let found = Command::new(&path).arg("--version").output();
    assert!(
        found.is_ok_and(|output| output.status.success()),
        "the Go `age` tool is needed for interop tests: install Debian's `age` package (the README's test command does)"
    );
    path
}

/// Runs `age` with `args`, feeding `input` on standard input; returns standard output.
fn run_age(args: &[&str], input: &[u8]) -> Vec<u8> {
    let mut child = Command::new(age_binary())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("age starts");
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let feeder = std::thread::spawn(move || stdin.write_all(&input));
    let output = child.wait_with_output().unwrap();
    feeder.join().unwrap().unwrap();
    assert!(
        output.status.success(),
        "age {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// A key file `age -i` can read, in a private temporary folder (test keys only).
fn key_file(key: &AgeSecretKey) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("key.txt");
    std::fs::write(&path, format!("{}\n", key.to_age_string().as_str())).unwrap();
    (dir, path.to_str().unwrap().to_owned())
}

fn sample(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

#[test]
fn envelope_decrypts_with_go_age_given_the_recombined_identity() {
    let subject = Subject::Recording(RecordingId::random());
    let secret = Secret::random();
    let recording_key = secret.age_key(&subject);
    let plaintext = sample(300_000); // several 64 KiB STREAM chunks
    let (ciphertext, read) =
        envelope::encrypt(&plaintext[..], Vec::new(), &recording_key.recipient()).unwrap();
    assert_eq!(read, plaintext.len() as u64);

    let threshold = Threshold::new(2, 3).unwrap();
    let (shares, commitments) = secret.split(threshold);
    let rebuilt = threshold::combine(
        &shares[1..],
        &commitments,
        &subject,
        &recording_key.recipient(),
    )
    .unwrap();

    let (_dir, path) = key_file(&rebuilt);
    assert_eq!(run_age(&["-d", "-i", &path], &ciphertext), plaintext);
}

#[test]
fn go_age_output_decrypts_in_the_crate() {
    let recording_key = AgeSecretKey::generate();
    let plaintext = sample(200_001);
    let recipient = recording_key.recipient().to_string();
    for armor in [false, true] {
        let mut args = vec!["-r", recipient.as_str()];
        if armor {
            args.push("-a");
        }
        let ciphertext = run_age(&args, &plaintext);
        let (decrypted, len) =
            envelope::decrypt(&ciphertext[..], Vec::new(), &recording_key).unwrap();
        assert_eq!(len, plaintext.len() as u64);
        assert_eq!(decrypted, plaintext, "armor: {armor}");
    }
}

#[test]
fn sealed_shares_and_metadata_are_standard_age_files() {
    let member = Identity::generate();
    let secret = Secret::random();
    let vault = VaultId::random();
    let subject = Subject::Recording(RecordingId::random());
    let (split, sealed) = SplitKey::split_and_seal(
        vault,
        subject,
        &secret,
        Threshold::new(1, 1).unwrap(),
        &[member.public()],
    )
    .unwrap();
    let binding = split
        .binding_for(vault, subject, &member.fingerprint())
        .unwrap();
    let share = threshold::open_share(&sealed[0], member.age_key(), &binding).unwrap();

    let (_dir, path) = key_file(member.age_key());
    let plaintext = run_age(&["-d", "-i", &path], &sealed[0]);
    assert_eq!(plaintext, *threshold::encode_share(&binding, &share));
}

#[test]
fn identity_key_text_is_what_age_keygen_would_write() {
    // age-keygen -y prints the recipient of an identity file: it must equal ours.
    let identity = Identity::generate();
    let (_dir, path) = key_file(identity.age_key());
    let output = Command::new("age-keygen")
        .args(["-y", &path])
        .output()
        .expect("age-keygen runs");
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8(output.stdout).unwrap().trim(),
        identity.public().recipient.to_string()
    );
}
