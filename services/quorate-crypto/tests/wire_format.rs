//! Wire-format stability: fixed inputs must encode to fixed bytes, forever. A change here
//! breaks every stored statement and every other implementation; if it is intended, bump
//! the domain string's version and regenerate with `QUORATE_BLESS=1`.

use std::{collections::BTreeMap, path::Path};

use base64::Engine;
use quorate_crypto::{
    AgeSecretKey, Fingerprint, Identity, IdentityFile, NodeId, RecordingId, RequestId, SecretBytes,
    TranscriptId, VaultId,
    release::SearchKeyRotation,
    reshare::{ReshareDeal, SubShareBinding, commitments_sha256, encode_subshare},
    retention::{Anchor, HoldAction, LegalHold, Period, RetentionRule, Scope},
    rewrap::{Purpose, RequestBinding, encode_node_share},
    statement::{
        Decision, NodeApproval, RecordingManifest, RecordingMetadata, Role, RosterChange,
        RosterEntry, SignedStatement, SplitKey, TranscriptManifest, UnlockRequest, VaultPolicy,
        Vote,
    },
    threshold::{ShareBinding, Subject, Threshold, encode_share},
    verify_any,
    vss::{self, Scalar, ScalarShare},
};

fn fixed_identity(age_byte: u8, seed_byte: u8) -> Identity {
    let age = AgeSecretKey::from_secret(SecretBytes::new([age_byte; 32]));
    let seed = base64::engine::general_purpose::STANDARD.encode([seed_byte; 32]);
    let text = format!(
        "quorate-identity-v1\nage: {}\ned25519: {seed}\n",
        age.to_age_string().as_str()
    );
    IdentityFile::read(text.as_bytes(), None).unwrap()
}

fn id<K>(byte: u8) -> quorate_crypto::Id<K> {
    quorate_crypto::Id::from_bytes([byte; 16])
}

fn encodings() -> BTreeMap<&'static str, Vec<u8>> {
    let admin = fixed_identity(1, 2);
    let member = fixed_identity(3, 4);
    let node = fixed_identity(5, 6);
    let vault: VaultId = id(0x10);
    let recording: RecordingId = id(0x11);
    let request: RequestId = id(0x12);
    let node_id: NodeId = id(0x13);
    let transcript: TranscriptId = id(0x14);
    let split_key = AgeSecretKey::from_secret(SecretBytes::new([7; 32]));
    let threshold = Threshold::new(2, 2).unwrap();
    // The sharing a member's golden share is a point of (share 2 of 2).
    let (shares, commitments) = vss::split_with_coefficients(&scalar(0x50), &[scalar(0x51)], 2);
    let split = SplitKey {
        recipient: split_key.recipient(),
        threshold,
        holders: vec![admin.fingerprint(), member.fingerprint()],
        commitments: commitments.clone(),
    };

    let mut out = BTreeMap::new();
    let roster = RosterEntry {
        vault_id: vault,
        sequence: 1,
        previous: [0x20; 32],
        change: RosterChange::Add,
        role: Role::Member,
        member: member.public(),
        name: "Bo Member".into(),
        issued_at: 1_700_000_000,
    };
    out.insert(
        "roster-entry",
        SignedStatement::sign(&roster, &admin).to_bytes(),
    );
    let recorder = RosterEntry {
        sequence: 2,
        role: Role::Recorder,
        name: "Jibri".into(),
        ..roster.clone()
    };
    out.insert(
        "roster-entry-recorder",
        SignedStatement::sign(&recorder, &admin).to_bytes(),
    );
    let approval = NodeApproval {
        vault_id: vault,
        node_id,
        node: node.public(),
        hardware: "rack 3, 2-core EPYC".into(),
        model_sha256: [0x30; 32],
        attestation: vec![],
        issued_at: 1_700_000_000,
        expires_at: 1_800_000_000,
        revoked: false,
    };
    out.insert(
        "node-approval",
        SignedStatement::sign(&approval, &admin).to_bytes(),
    );
    let manifest = RecordingManifest {
        vault_id: vault,
        recording_id: recording,
        uploader: member.fingerprint(),
        roster_head: [0x21; 32],
        created_at: 1_700_000_100,
        ciphertext_len: 123_456,
        ciphertext_sha256: [0x40; 32],
        split: split.clone(),
        sealed_metadata: b"(sealed metadata bytes)".to_vec(),
    };
    out.insert(
        "recording-manifest",
        SignedStatement::sign(&manifest, &member).to_bytes(),
    );
    let unlock = UnlockRequest {
        vault_id: vault,
        request_id: request,
        subject: Subject::Recording(recording),
        purpose: Purpose::Transcribe,
        node_id,
        requester: member.fingerprint(),
        reason: "minutes for the board".into(),
        created_at: 1_700_000_200,
        expires_at: 1_700_086_600,
        language: None,
    };
    out.insert(
        "unlock-request",
        SignedStatement::sign(&unlock, &member).to_bytes(),
    );
    let in_french = UnlockRequest {
        language: Some("fr".into()),
        ..unlock.clone()
    };
    out.insert(
        "unlock-request-with-language",
        SignedStatement::sign(&in_french, &member).to_bytes(),
    );
    let approve = Vote {
        vault_id: vault,
        request_id: request,
        request_digest: [0x50; 32],
        voter: admin.fingerprint(),
        decision: Decision::Approve {
            resealed_share_sha256: [0x51; 32],
        },
        comment: String::new(),
        issued_at: 1_700_000_300,
    };
    out.insert(
        "vote-approve",
        SignedStatement::sign(&approve, &admin).to_bytes(),
    );
    let deny = Vote {
        decision: Decision::Deny,
        comment: "not yet".into(),
        ..approve
    };
    out.insert("vote-deny", SignedStatement::sign(&deny, &admin).to_bytes());
    let transcript_manifest = TranscriptManifest {
        vault_id: vault,
        transcript_id: transcript,
        recording_id: recording,
        recording_manifest_digest: [0x60; 32],
        request_id: request,
        node_id,
        model_sha256: [0x30; 32],
        language: "en".into(),
        created_at: 1_700_000_400,
        ciphertext_len: 4_321,
        ciphertext_sha256: [0x61; 32],
        split,
    };
    out.insert(
        "transcript-manifest",
        SignedStatement::sign(&transcript_manifest, &node).to_bytes(),
    );
    let policy = VaultPolicy {
        vault_id: vault,
        sequence: 0,
        min_threshold: 2,
        issued_at: 1_700_000_500,
    };
    out.insert(
        "vault-policy",
        SignedStatement::sign(&policy, &admin).to_bytes(),
    );
    let rule = RetentionRule {
        vault_id: vault,
        scope: Scope::Recording(recording),
        sequence: 1,
        recordings: Some(Period {
            anchor: Anchor::Released,
            seconds: 90 * 86_400,
        }),
        minutes: None,
        issued_at: 1_700_000_600,
    };
    out.insert(
        "retention-rule",
        SignedStatement::sign(&rule, &admin).to_bytes(),
    );
    let hold = LegalHold {
        vault_id: vault,
        hold_id: id(0x14),
        action: HoldAction::Place,
        scope: Scope::Vault,
        reason: "Case 12-345".into(),
        roster_head: [0x62; 32],
        issued_at: 1_700_000_700,
    };
    out.insert(
        "legal-hold",
        SignedStatement::sign(&hold, &member).to_bytes(),
    );

    let rotation = SearchKeyRotation {
        vault_id: vault,
        generation: 1,
        previous_check: [0x63; 32],
        key_check: [0x64; 32],
        roster_sequence: 3,
        roster_head: [0x65; 32],
        issued_at: 1_700_000_800,
    };
    out.insert(
        "search-key-rotation",
        SignedStatement::sign(&rotation, &admin).to_bytes(),
    );

    let binding = ShareBinding {
        vault_id: vault,
        subject: Subject::Recording(recording),
        recipient: split_key.recipient(),
        threshold,
        index: 2,
        member: member.fingerprint(),
        commitments: commitments.clone(),
    };
    let share = shares[1].clone();
    out.insert("share-plaintext", encode_share(&binding, &share).to_vec());
    let request_binding = RequestBinding {
        request_id: request,
        node_id,
        purpose: Purpose::Transcribe,
        expires_at: 1_700_086_600,
    };
    out.insert(
        "node-share-plaintext",
        encode_node_share(&request_binding, &binding, &share).to_vec(),
    );
    let metadata = RecordingMetadata {
        title: "Board meeting".into(),
        started_at: Some(1_700_000_000),
        ended_at: None,
        media_type: "audio/ogg".into(),
        attendees: vec!["Ada".into(), "Bo".into()],
        language: None,
    };
    out.insert("recording-metadata", metadata.encode().unwrap().to_vec());
    let in_french = RecordingMetadata {
        language: Some("fr".into()),
        ..metadata
    };
    out.insert(
        "recording-metadata-with-language",
        in_french.encode().unwrap().to_vec(),
    );
    out.insert("fingerprint", member.fingerprint().as_bytes().to_vec());
    // A deal and a sealed sub-share's plaintext, for their bytes (the values are the golden
    // 2-of-2 sharing's, not a real dealing).
    let reshare_id = [0x15; 16];
    let roster_head = [0x16; 32];
    let dealt_commitments = commitments.to_bytes();
    let deal = ReshareDeal {
        vault_id: vault,
        subject: Subject::Recording(recording),
        reshare_id,
        current_commitments_sha256: commitments_sha256(&commitments),
        dealer: 2,
        new_k: 2,
        roster_head,
        holders: vec![admin.fingerprint(), member.fingerprint()],
        commitments: dealt_commitments.clone(),
        sealed_subshares_sha256: vec![[0x61; 32], [0x62; 32]],
        issued_at: 1_700_000_600,
    };
    out.insert(
        "reshare-deal",
        SignedStatement::sign(&deal, &member).to_bytes(),
    );
    let subshare_binding = SubShareBinding {
        vault_id: vault,
        subject: Subject::Recording(recording),
        reshare_id,
        roster_head,
        dealer: 2,
        dealt_commitments_sha256: commitments_sha256(&commitments),
        index: 1,
        holder: admin.fingerprint(),
    };
    out.insert(
        "reshare-subshare-plaintext",
        encode_subshare(&subshare_binding, &shares[0]).to_vec(),
    );
    let (shares, commitments) = counted_split();
    out.insert("vss-secret", scalar(0x40).to_bytes().to_vec());
    out.insert(
        "vss-coefficients",
        [scalar(0x41).to_bytes(), scalar(0x42).to_bytes()].concat(),
    );
    out.insert(
        "vss-shares-3-of-4",
        shares.iter().flat_map(|share| *share.to_bytes()).collect(),
    );
    out.insert("vss-commitments-3-of-4", commitments.to_bytes());
    out.insert(
        "vss-age-key",
        vss::age_key(&scalar(0x40), &Subject::Recording(recording))
            .expose_secret()
            .to_vec(),
    );
    out
}

/// A fixed scalar: 32 bytes counting up from `first`, reduced.
fn scalar(first: u8) -> Scalar {
    Scalar::from_bytes_mod_order(std::array::from_fn(|i| first.wrapping_add(i as u8)))
}

/// A 3-of-4 sharing of `scalar(0x40)` with fixed coefficients, which the browser's
/// `web-admin/src/vss.ts` must reproduce exactly.
fn counted_split() -> (Vec<ScalarShare>, vss::Commitments) {
    vss::split_with_coefficients(&scalar(0x40), &[scalar(0x41), scalar(0x42)], 4)
}

#[test]
fn golden_shares_rebuild_their_key() {
    let (shares, commitments) = counted_split();
    let subject = Subject::Recording(id(0x11));
    let key = vss::age_key(&scalar(0x40), &subject);
    for left_out in 0..4 {
        let three: Vec<ScalarShare> = (0..4)
            .filter(|&index| index != left_out)
            .map(|index| shares[index].clone())
            .collect();
        let rebuilt =
            quorate_crypto::threshold::combine(&three, &commitments, &subject, &key.recipient())
                .unwrap();
        assert_eq!(rebuilt.expose_secret(), key.expose_secret());
    }
}

#[test]
fn encodings_are_stable() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/wire-format.txt");
    let actual: String = encodings()
        .iter()
        .map(|(name, bytes)| format!("{name} {}\n", hex::encode(bytes)))
        .collect();
    if std::env::var_os("QUORATE_BLESS").is_some() {
        std::fs::write(&path, &actual).unwrap();
    }
    let expected =
        std::fs::read_to_string(&path).expect("golden file exists (QUORATE_BLESS=1 writes it)");
    for (want, got) in expected.lines().zip(actual.lines()) {
        assert_eq!(got, want, "wire format changed");
    }
    assert_eq!(expected.lines().count(), actual.lines().count());
}

#[test]
fn golden_statements_verify_and_reject_any_single_bit_flip() {
    for (name, bytes) in encodings() {
        let Ok(signed) = SignedStatement::from_bytes(&bytes) else {
            continue;
        };
        verify_any(&bytes).unwrap_or_else(|error| panic!("{name}: {error}"));
        for position in (0..bytes.len()).step_by(7) {
            let mut flipped = bytes.clone();
            flipped[position] ^= 0x01;
            assert!(
                verify_any(&flipped).is_err(),
                "{name}: flip at byte {position} still verifies"
            );
        }
        assert_eq!(
            SignedStatement::from_bytes(&signed.to_bytes()).unwrap(),
            signed
        );
    }
}

#[test]
fn fingerprint_short_form_is_stable() {
    let member = fixed_identity(3, 4);
    let fingerprint: Fingerprint = member.fingerprint();
    let short = fingerprint.short();
    assert_eq!(short, short.to_uppercase());
    assert_eq!(
        fingerprint.to_hex().parse::<Fingerprint>().unwrap(),
        fingerprint
    );
}
