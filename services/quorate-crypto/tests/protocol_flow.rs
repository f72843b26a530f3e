//! The whole protocol through the crate, the way the CLI, the node and the server will
//! drive it: a verified roster, an encrypted recording with a signed manifest, an unlock
//! request, votes that re-seal shares to a node, and the node rebuilding the key.

use quorate_crypto::{
    AgeSecretKey, Error, Identity, NodeId, RecordingId, RequestId, VaultId, envelope,
    rewrap::{self, Purpose},
    roster::Roster,
    statement::{
        Decision, NodeApproval, RecordingManifest, RecordingMetadata, Role, RosterChange,
        SignedStatement, SplitKey, StatementBody, UnlockRequest, Vote,
    },
    threshold::{self, Subject, Threshold},
    vss::{ScalarShare, Secret},
};

const NOW: i64 = 1_750_000_000;

struct World {
    vault: VaultId,
    members: Vec<Identity>,
    roster: Roster,
    node: Identity,
    node_id: NodeId,
    approval: SignedStatement,
    recording_key: AgeSecretKey,
    plaintext: Vec<u8>,
    ciphertext: Vec<u8>,
    manifest: SignedStatement,
    sealed_shares: Vec<Vec<u8>>,
}

/// An admin and two members (2-of-3), an approved node, one uploaded recording.
fn world() -> World {
    let vault = VaultId::random();
    let members: Vec<Identity> = (0..3).map(|_| Identity::generate()).collect();
    let mut roster = Roster::empty(vault);
    roster
        .apply(&Roster::genesis_entry(vault, &members[0], "Ada", NOW).unwrap())
        .unwrap();
    for (member, name) in members[1..].iter().zip(["Bo", "Cy"]) {
        let entry = roster
            .sign_change(
                &members[0],
                RosterChange::Add,
                member.public(),
                name,
                Role::Member,
                NOW,
            )
            .unwrap();
        roster.apply(&entry).unwrap();
    }

    let node = Identity::generate();
    let node_id = NodeId::random();
    let approval = SignedStatement::sign(
        &NodeApproval {
            vault_id: vault,
            node_id,
            node: node.public(),
            hardware: "test box".into(),
            model_sha256: [1; 32],
            attestation: vec![],
            issued_at: NOW,
            expires_at: NOW + 86_400,
            revoked: false,
        },
        &members[0],
    );

    // The uploader (member 1) encrypts, splits among the roster, seals metadata, signs.
    let plaintext: Vec<u8> = (0..150_000u32).map(|i| (i % 253) as u8).collect();
    let recording_id = RecordingId::random();
    let secret = Secret::random();
    let recording_key = secret.age_key(&threshold::Subject::Recording(recording_id));
    let writer = envelope::HashingWriter::new(Vec::new());
    let (writer, _) =
        envelope::encrypt(&plaintext[..], writer, &recording_key.recipient()).unwrap();
    let (ciphertext, ciphertext_len, ciphertext_sha256) = writer.finish();
    let publics: Vec<_> = roster
        .members()
        .iter()
        .map(|member| member.public)
        .collect();
    let (split, sealed_shares) = SplitKey::split_and_seal(
        vault,
        threshold::Subject::Recording(recording_id),
        &secret,
        Threshold::new(2, 3).unwrap(),
        &publics,
    )
    .unwrap();
    let metadata = RecordingMetadata {
        title: "Budget committee".into(),
        started_at: Some(NOW - 3600),
        ended_at: Some(NOW),
        media_type: "audio/wav".into(),
        attendees: vec!["Ada".into(), "Bo".into(), "Cy".into()],
        language: None,
    };
    let manifest = SignedStatement::sign(
        &RecordingManifest {
            vault_id: vault,
            recording_id,
            uploader: members[1].fingerprint(),
            roster_head: roster.head(),
            created_at: NOW,
            ciphertext_len,
            ciphertext_sha256,
            split,
            sealed_metadata: metadata.seal(&roster.recipients()).unwrap(),
        },
        &members[1],
    );
    World {
        vault,
        members,
        roster,
        node,
        node_id,
        approval,
        recording_key,
        plaintext,
        ciphertext,
        manifest,
        sealed_shares,
    }
}

fn request(world: &World, requester: usize, node_id: NodeId) -> SignedStatement {
    let manifest = world
        .manifest
        .verify::<RecordingManifest>()
        .unwrap()
        .statement;
    SignedStatement::sign(
        &UnlockRequest {
            vault_id: world.vault,
            request_id: RequestId::random(),
            subject: manifest.subject(),
            purpose: Purpose::Transcribe,
            node_id,
            requester: world.members[requester].fingerprint(),
            reason: "minutes".into(),
            created_at: NOW,
            expires_at: NOW + 3600,
            language: None,
        },
        &world.members[requester],
    )
}

/// What a member's device does to approve: check everything, re-seal, sign the vote.
fn approve(
    world: &World,
    voter: usize,
    signed_request: &SignedStatement,
) -> Result<(Vec<u8>, SignedStatement), Error> {
    let identity = &world.members[voter];
    let request = signed_request.verify::<UnlockRequest>()?;
    if world
        .roster
        .member_by_key(&request.signer)
        .map(|m| m.fingerprint)
        != Some(request.statement.requester)
    {
        return Err(Error::BindingMismatch { field: "requester" });
    }
    let manifest = world.manifest.verify::<RecordingManifest>()?.statement;
    let approval = world.approval.verify::<NodeApproval>()?;
    if world.roster.admin_by_key(&approval.signer).is_none()
        || approval.statement.node_id != request.statement.node_id
    {
        return Err(Error::BindingMismatch { field: "node" });
    }
    approval.statement.check_active(NOW)?;
    let binding = manifest
        .share_binding(&identity.fingerprint())
        .ok_or(Error::BindingMismatch { field: "member" })?;
    let position = usize::from(binding.index - 1);
    let resealed = rewrap::rewrap(
        &world.sealed_shares[position],
        identity.age_key(),
        &binding,
        &request.statement.binding(),
        &approval.statement.node.recipient,
    )?;
    let vote = SignedStatement::sign(
        &Vote {
            vault_id: world.vault,
            request_id: request.statement.request_id,
            request_digest: request.digest,
            voter: identity.fingerprint(),
            decision: Decision::Approve {
                resealed_share_sha256: rewrap::resealed_digest(&resealed),
            },
            comment: String::new(),
            issued_at: NOW,
        },
        identity,
    );
    Ok((resealed, vote))
}

/// What the node does with the re-sealed shares of a quorate request.
fn node_opens(
    world: &World,
    signed_request: &SignedStatement,
    resealed: &[Vec<u8>],
    now: i64,
) -> Result<AgeSecretKey, Error> {
    let request = signed_request.verify::<UnlockRequest>()?.statement;
    let manifest = world.manifest.verify::<RecordingManifest>()?.statement;
    let mut shares: Vec<ScalarShare> = Vec::new();
    for sealed in resealed {
        let (binding, share) =
            rewrap::open_node_share(sealed, world.node.age_key(), &request.binding(), now)?;
        let expected = manifest
            .share_binding(&binding.member)
            .ok_or(Error::BindingMismatch { field: "member" })?;
        binding.check(&expected)?;
        manifest.split.check_share(&binding, &share)?;
        shares.push(share);
    }
    manifest.split.rebuild_key(&manifest.subject(), &shares)
}

#[test]
fn two_approvals_let_the_node_decrypt_the_recording() {
    let world = world();
    let signed_request = request(&world, 1, world.node_id);
    let (share_a, vote_a) = approve(&world, 0, &signed_request).unwrap();
    let (share_c, vote_c) = approve(&world, 2, &signed_request).unwrap();
    for vote in [&vote_a, &vote_c] {
        let vote = vote.verify::<Vote>().unwrap().statement;
        assert_eq!(vote.request_digest, signed_request.digest());
    }
    let key = node_opens(&world, &signed_request, &[share_a, share_c], NOW + 10).unwrap();
    assert_eq!(key, world.recording_key);
    let (plaintext, _) = envelope::decrypt(&world.ciphertext[..], Vec::new(), &key).unwrap();
    assert_eq!(plaintext, world.plaintext);

    // Members read the sealed metadata; nobody else can.
    let manifest = world
        .manifest
        .verify::<RecordingManifest>()
        .unwrap()
        .statement;
    let metadata =
        RecordingMetadata::open(&manifest.sealed_metadata, world.members[2].age_key()).unwrap();
    assert_eq!(metadata.title, "Budget committee");
    assert!(RecordingMetadata::open(&manifest.sealed_metadata, world.node.age_key()).is_err());
}

#[test]
fn one_approval_is_not_enough() {
    let world = world();
    let signed_request = request(&world, 1, world.node_id);
    let (share_a, _) = approve(&world, 0, &signed_request).unwrap();
    assert!(matches!(
        node_opens(&world, &signed_request, &[share_a], NOW),
        Err(Error::NotEnoughShares { have: 1, need: 2 })
    ));
}

#[test]
fn a_share_re_sealed_for_one_request_is_refused_for_another() {
    let world = world();
    let first = request(&world, 1, world.node_id);
    let second = request(&world, 1, world.node_id);
    let (share_a, _) = approve(&world, 0, &first).unwrap();
    let (share_c, _) = approve(&world, 2, &second).unwrap();
    assert!(matches!(
        node_opens(&world, &second, &[share_a, share_c], NOW),
        Err(Error::BindingMismatch {
            field: "request ID"
        })
    ));
}

#[test]
fn an_expired_request_is_refused_by_the_node() {
    let world = world();
    let signed_request = request(&world, 1, world.node_id);
    let (share_a, _) = approve(&world, 0, &signed_request).unwrap();
    let (share_c, _) = approve(&world, 2, &signed_request).unwrap();
    assert!(matches!(
        node_opens(&world, &signed_request, &[share_a, share_c], NOW + 3601),
        Err(Error::Expired {
            what: "unlock request",
            ..
        })
    ));
}

#[test]
fn members_refuse_an_unapproved_node_and_other_nodes_cannot_open_shares() {
    let world = world();
    let rogue = request(&world, 1, NodeId::random());
    assert!(matches!(
        approve(&world, 0, &rogue),
        Err(Error::BindingMismatch { field: "node" })
    ));

    let signed_request = request(&world, 1, world.node_id);
    let (share_a, _) = approve(&world, 0, &signed_request).unwrap();
    let request = signed_request.verify::<UnlockRequest>().unwrap().statement;
    let other_node = Identity::generate();
    assert!(matches!(
        rewrap::open_node_share(&share_a, other_node.age_key(), &request.binding(), NOW),
        Err(Error::Decrypt { .. })
    ));
}

#[test]
fn a_forged_request_or_wrong_purpose_is_refused() {
    let world = world();
    let signed_request = request(&world, 1, world.node_id);
    let mut bytes = signed_request.to_bytes();
    let last = bytes.len() - 20;
    bytes[last] ^= 1;
    let forged = SignedStatement::from_bytes(&bytes).unwrap();
    assert!(matches!(
        approve(&world, 0, &forged),
        Err(Error::BadSignature { .. })
    ));

    let manifest = world
        .manifest
        .verify::<RecordingManifest>()
        .unwrap()
        .statement;
    let binding = manifest
        .share_binding(&world.members[0].fingerprint())
        .unwrap();
    let mut request_binding = signed_request
        .verify::<UnlockRequest>()
        .unwrap()
        .statement
        .binding();
    request_binding.purpose = Purpose::ReleaseTranscript;
    assert!(matches!(
        rewrap::rewrap(
            &world.sealed_shares[0],
            world.members[0].age_key(),
            &binding,
            &request_binding,
            &world.node.public().recipient
        ),
        Err(Error::BindingMismatch { field: "purpose" })
    ));
}

#[test]
fn a_request_names_a_language_only_for_a_transcription_and_signs_it() {
    let world = world();
    let plain = request(&world, 0, world.node_id)
        .verify::<UnlockRequest>()
        .unwrap()
        .statement;
    assert_eq!(plain.language, None);
    let in_dutch = UnlockRequest {
        language: Some("nl".into()),
        ..plain.clone()
    };
    let signed = SignedStatement::sign(&in_dutch, &world.members[0]);
    let verified = signed.verify::<UnlockRequest>().unwrap().statement;
    assert_eq!(verified.language.as_deref(), Some("nl"));
    // The language is signed: the same request in another language is another statement.
    let in_french = UnlockRequest {
        language: Some("fr".into()),
        ..plain.clone()
    };
    assert_ne!(in_french.encode(), in_dutch.encode());
    assert_ne!(plain.encode(), in_dutch.encode());

    let refused = |request: UnlockRequest| {
        let error = SignedStatement::sign(&request, &world.members[0])
            .verify::<UnlockRequest>()
            .unwrap_err();
        assert!(
            matches!(
                error,
                Error::InvalidField {
                    field: "language",
                    ..
                }
            ),
            "{error}"
        );
    };
    refused(UnlockRequest {
        language: Some("French".into()),
        ..plain.clone()
    });
    refused(UnlockRequest {
        language: Some("f".into()),
        ..plain.clone()
    });
    refused(UnlockRequest {
        language: Some("fr".into()),
        purpose: Purpose::ReleaseTranscript,
        subject: Subject::Transcript(quorate_crypto::TranscriptId::random()),
        ..plain
    });
}
