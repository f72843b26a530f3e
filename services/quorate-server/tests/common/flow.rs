//! The quorum flow as members' devices and a node drive it, for tests that need a request, a
//! sealed transcript or a released copy: every statement signed and every share re-sealed as
//! the real devices do, so the server sees exactly what it sees in production.

use quorate_client::Client;
use quorate_crypto::{
    AgeSecretKey, Fingerprint, Identity, NodeId, RequestId, TranscriptId, VaultId,
    blind::SearchKey,
    envelope,
    release::{Posting, ReleaseManifest, postings, postings_digest, seal_release_key},
    rewrap::{self, Purpose},
    roster::Roster,
    statement::{
        Decision, NodeApproval, RecordingManifest, SignedStatement, SplitKey, TranscriptManifest,
        UnlockRequest, Vote,
    },
    threshold::{ShareBinding, Subject},
    vss::Secret,
};

use super::{Board, MadeRecording, make_recording};

/// The model every test node is approved for.
pub const MODEL: [u8; 32] = [0x42; 32];

pub struct Node {
    pub identity: Identity,
    pub id: NodeId,
    pub client: Client,
}

/// A server on a fresh `backend` database, a board of an admin and three members (policy 2)
/// and a node approved for [`MODEL`]: where a story about requests and jobs starts.
pub async fn voting(
    backend: quorate_server::test_support::Backend,
) -> (
    quorate_server::test_support::TestDb,
    quorate_server::test_support::TestServer,
    Board,
    Node,
) {
    let db = quorate_server::test_support::TestDb::new(backend).await;
    let server = quorate_server::test_support::TestServer::start(&db).await;
    let board = Board::new(&server, 3, 2).await;
    let node = approved_node(&server.url(""), &board).await;
    (db, server, board, node)
}

/// Enrols a node with a node invite and has the admin approve it for `MODEL`.
pub async fn approved_node(server_url: &str, board: &Board) -> Node {
    let vault = board.admin.vault;
    let invite = board
        .admin
        .client
        .invite(vault, quorate_api::InvitePurpose::Node)
        .await
        .unwrap();
    let identity = Identity::generate();
    let mut client = Client::new(server_url);
    let enrolled = client
        .enrol_node(&invite.code, "gpu-1", &identity.public())
        .await
        .unwrap();
    let id: NodeId = enrolled.node_id.parse().unwrap();
    let now = quorate_server::now();
    let approval = SignedStatement::sign(
        &NodeApproval {
            vault_id: vault,
            node_id: id,
            node: identity.public(),
            hardware: "2-core test box".into(),
            model_sha256: MODEL,
            attestation: Vec::new(),
            issued_at: now,
            expires_at: now + 86_400,
            revoked: false,
        },
        &board.admin.identity,
    );
    board
        .admin
        .client
        .approve_node(vault, id, &approval)
        .await
        .unwrap();
    client.sign_in(vault, &identity).await.unwrap();
    Node {
        identity,
        id,
        client,
    }
}

/// Uploads a small recording by `uploader` (a member's index, 0 for the admin).
pub async fn uploaded(board: &Board, uploader: usize, k: u8) -> (MadeRecording, Vec<u8>) {
    let plaintext: Vec<u8> = (0..200_000u32).map(|i| (i % 241) as u8).collect();
    let (identity, client) = member(board, uploader);
    let made = make_recording(&board.roster, identity, k, &plaintext);
    upload(client, board.admin.vault, &made).await;
    (made, plaintext)
}

/// Creates `made` in `vault` and uploads its whole ciphertext, as `client`.
pub async fn upload(client: &Client, vault: VaultId, made: &MadeRecording) {
    client
        .create_recording(vault, &made.manifest, &made.shares)
        .await
        .unwrap();
    client
        .resume_upload(
            made.id,
            std::io::Cursor::new(made.ciphertext.clone()),
            |_, _| {},
        )
        .await
        .unwrap();
}

/// A member's identity and signed-in client: 0 is the admin, 1… the other members.
pub fn member(board: &Board, index: usize) -> (&Identity, &Client) {
    if index == 0 {
        (&board.admin.identity, &board.admin.client)
    } else {
        let (identity, client) = &board.members[index - 1];
        (identity, client)
    }
}

/// The admin removes member `index` (1 or more) from the roster.
pub async fn remove(board: &Board, index: usize) {
    let vault = board.admin.vault;
    let roster = board.admin.roster().await;
    let leaving = member(board, index).0;
    let entry = roster
        .sign_change(
            &board.admin.identity,
            quorate_crypto::statement::RosterChange::Remove,
            leaving.public(),
            &format!("Member {index}"),
            quorate_crypto::statement::Role::Member,
            1_750_000_300,
        )
        .unwrap();
    board
        .admin
        .client
        .append_roster(vault, &entry)
        .await
        .unwrap();
}

/// A request by `requester` to unlock `subject` for `purpose` on `node`.
pub fn unlock_request(
    board: &Board,
    requester: usize,
    subject: Subject,
    purpose: Purpose,
    node: NodeId,
    expires_in: i64,
) -> SignedStatement {
    let (identity, _) = member(board, requester);
    let now = quorate_server::now();
    SignedStatement::sign(
        &UnlockRequest {
            vault_id: board.admin.vault,
            request_id: RequestId::random(),
            subject,
            purpose,
            node_id: node,
            requester: identity.fingerprint(),
            reason: "minutes of the budget meeting".into(),
            created_at: now,
            expires_at: now + expires_in,
            language: None,
        },
        identity,
    )
}

/// Member `requester` asks for `made` to be transcribed by `node` and sends the request:
/// the signed request and its ID.
pub async fn open_request(
    board: &Board,
    requester: usize,
    made: &MadeRecording,
    node: NodeId,
    expires_in: i64,
) -> (SignedStatement, RequestId) {
    let signed = request(board, requester, made, node, expires_in);
    let id = send_request(board, requester, &signed).await;
    (signed, id)
}

/// Member `requester` sends the signed request `signed`; returns its ID.
pub async fn send_request(board: &Board, requester: usize, signed: &SignedStatement) -> RequestId {
    let id = signed
        .verify::<UnlockRequest>()
        .unwrap()
        .statement
        .request_id;
    member(board, requester)
        .1
        .create_request(board.admin.vault, signed)
        .await
        .unwrap();
    id
}

/// A request to transcribe `made` on `node`.
pub fn request(
    board: &Board,
    requester: usize,
    made: &MadeRecording,
    node: NodeId,
    expires_in: i64,
) -> SignedStatement {
    unlock_request(
        board,
        requester,
        Subject::Recording(made.id),
        Purpose::Transcribe,
        node,
        expires_in,
    )
}

/// A request to release `transcript` through `node`.
pub fn release_request(
    board: &Board,
    requester: usize,
    transcript: TranscriptId,
    node: NodeId,
) -> SignedStatement {
    unlock_request(
        board,
        requester,
        Subject::Transcript(transcript),
        Purpose::ReleaseTranscript,
        node,
        3600,
    )
}

/// What a member's device does to approve: open its own share (`sealed`, bound by
/// `binding`), re-seal it to the node bound to this request, sign the vote.
fn resealed_vote(
    board: &Board,
    voter: usize,
    signed: &SignedStatement,
    sealed: &[u8],
    binding: &ShareBinding,
    node: &Identity,
) -> (Vec<u8>, SignedStatement) {
    let (identity, _) = member(board, voter);
    let verified = signed.verify::<UnlockRequest>().unwrap();
    let resealed = rewrap::rewrap(
        sealed,
        identity.age_key(),
        binding,
        &verified.statement.binding(),
        &node.public().recipient,
    )
    .unwrap();
    let vote = SignedStatement::sign(
        &Vote {
            vault_id: board.admin.vault,
            request_id: verified.statement.request_id,
            request_digest: verified.digest,
            voter: identity.fingerprint(),
            decision: Decision::Approve {
                resealed_share_sha256: rewrap::resealed_digest(&resealed),
            },
            comment: String::new(),
            issued_at: quorate_server::now(),
        },
        identity,
    );
    (resealed, vote)
}

/// An approval of a request to transcribe `made`.
pub async fn approve(
    board: &Board,
    voter: usize,
    made: &MadeRecording,
    signed: &SignedStatement,
    node: &Identity,
) -> (Vec<u8>, SignedStatement) {
    let (identity, client) = member(board, voter);
    let manifest = made
        .manifest
        .verify::<RecordingManifest>()
        .unwrap()
        .statement;
    let share = client
        .recording_share(board.admin.vault, made.id)
        .await
        .unwrap();
    let binding = manifest.share_binding(&identity.fingerprint()).unwrap();
    resealed_vote(board, voter, signed, &share.sealed, &binding, node)
}

/// An approval of a request to release `transcript`.
pub async fn approve_release(
    board: &Board,
    voter: usize,
    transcript: &Transcribed,
    signed: &SignedStatement,
    node: &Identity,
) -> (Vec<u8>, SignedStatement) {
    let (identity, client) = member(board, voter);
    let share = client
        .transcript_share(board.admin.vault, transcript.id)
        .await
        .unwrap();
    let binding = transcript
        .manifest
        .verify::<TranscriptManifest>()
        .unwrap()
        .statement
        .share_binding(&identity.fingerprint())
        .unwrap();
    resealed_vote(board, voter, signed, &share.sealed, &binding, node)
}

pub fn deny(board: &Board, voter: usize, signed: &SignedStatement) -> SignedStatement {
    let (identity, _) = member(board, voter);
    let verified = signed.verify::<UnlockRequest>().unwrap();
    SignedStatement::sign(
        &Vote {
            vault_id: board.admin.vault,
            request_id: verified.statement.request_id,
            request_digest: verified.digest,
            voter: identity.fingerprint(),
            decision: Decision::Deny,
            comment: "not this meeting".into(),
            issued_at: quorate_server::now(),
        },
        identity,
    )
}

/// What the node does with a claim: open each re-sealed share for this request, check it
/// against the manifest, combine, and check the rebuilt key.
pub fn unlock(
    claim: &quorate_api::JobClaim,
    node: &Identity,
) -> (AgeSecretKey, RecordingManifest, SignedStatement) {
    let signed_request = SignedStatement::from_bytes(&claim.request).unwrap();
    let request = signed_request.verify::<UnlockRequest>().unwrap().statement;
    let signed_manifest = SignedStatement::from_bytes(&claim.subject_manifest).unwrap();
    let manifest = signed_manifest
        .verify::<RecordingManifest>()
        .unwrap()
        .statement;
    let shares: Vec<_> = claim
        .approvals
        .iter()
        .map(|approval| {
            let (binding, share) = rewrap::open_node_share(
                &approval.resealed_share,
                node.age_key(),
                &request.binding(),
                quorate_server::now(),
            )
            .unwrap();
            manifest.split.check_share(&binding, &share).unwrap();
            share
        })
        .collect();
    let key = manifest
        .split
        .rebuild_key(&manifest.subject(), &shares)
        .unwrap();
    (key, manifest, signed_manifest)
}

/// The manifest, sealed transcript, sealed shares of its key, and the key (for the test).
pub type SealedTranscript = (
    SignedStatement,
    Vec<u8>,
    Vec<(Fingerprint, Vec<u8>)>,
    AgeSecretKey,
);

/// A sealed transcript as the node makes it, split among the recording's holders.
pub fn seal_transcript(
    claim: &quorate_api::JobClaim,
    node: &Node,
    manifest: &RecordingManifest,
    signed_manifest: &SignedStatement,
    roster: &Roster,
    text: &[u8],
    model: [u8; 32],
) -> SealedTranscript {
    seal_transcript_as(
        TranscriptId::random(),
        claim,
        node,
        (manifest, signed_manifest),
        roster,
        text,
        model,
    )
}

/// [`seal_transcript`] under a transcript ID the caller chooses (a node picks its own).
pub fn seal_transcript_as(
    transcript_id: TranscriptId,
    claim: &quorate_api::JobClaim,
    node: &Node,
    (manifest, signed_manifest): (&RecordingManifest, &SignedStatement),
    roster: &Roster,
    text: &[u8],
    model: [u8; 32],
) -> SealedTranscript {
    let secret = Secret::random();
    let key = secret.age_key(&Subject::Transcript(transcript_id));
    let (writer, _) = envelope::encrypt(
        text,
        envelope::HashingWriter::new(Vec::new()),
        &key.recipient(),
    )
    .unwrap();
    let (sealed, len, sha256) = writer.finish();
    let holders: Vec<_> = manifest
        .split
        .holders
        .iter()
        .map(|holder| roster.member(holder).unwrap().public)
        .collect();
    let (split, shares) = SplitKey::split_and_seal(
        manifest.vault_id,
        Subject::Transcript(transcript_id),
        &secret,
        manifest.split.threshold,
        &holders,
    )
    .unwrap();
    let signed = SignedStatement::sign(
        &TranscriptManifest {
            vault_id: manifest.vault_id,
            transcript_id,
            recording_id: manifest.recording_id,
            recording_manifest_digest: signed_manifest.digest(),
            request_id: claim.request_id.parse().unwrap(),
            node_id: node.id,
            model_sha256: model,
            language: "en".into(),
            created_at: quorate_server::now(),
            ciphertext_len: len,
            ciphertext_sha256: sha256,
            split,
        },
        &node.identity,
    );
    let shares = holders
        .iter()
        .map(|public| public.fingerprint())
        .zip(shares)
        .collect();
    (signed, sealed, shares, key)
}

/// Has `requester` ask for `signed` and `voters` approve it with `approval` (each voter's
/// re-sealed share and vote); returns the request's ID.
pub async fn ask_and_approve(
    board: &Board,
    requester: usize,
    signed: &SignedStatement,
    voters: &[usize],
    mut approval: impl AsyncFnMut(usize) -> (Vec<u8>, SignedStatement),
) -> RequestId {
    let vault = board.admin.vault;
    let id = send_request(board, requester, signed).await;
    for &voter in voters {
        let (share, vote) = approval(voter).await;
        member(board, voter)
            .1
            .vote(vault, id, &vote, Some(&share))
            .await
            .unwrap();
    }
    id
}

/// A sealed transcript of a recording, as stored.
pub struct Transcribed {
    pub id: TranscriptId,
    pub manifest: SignedStatement,
    pub sealed: Vec<u8>,
    pub key: AgeSecretKey,
}

/// The minutes every test transcript holds.
pub const MINUTES: &str =
    "{\"segments\":[{\"start\":0.0,\"end\":2.5,\"text\":\"The library budget is approved.\"}]}";

/// Has `made` transcribed: member 1 asks, `voters` approve, the node claims the job and
/// stores the sealed transcript.
pub async fn transcribed(
    board: &Board,
    node: &Node,
    made: &MadeRecording,
    voters: &[usize],
) -> Transcribed {
    let signed = request(board, 1, made, node.id, 3600);
    ask_and_approve(board, 1, &signed, voters, async |voter| {
        approve(board, voter, made, &signed, &node.identity).await
    })
    .await;
    let claim = node.client.claim_job().await.unwrap().expect("a job");
    let (_, manifest, signed_manifest) = unlock(&claim, &node.identity);
    let (transcript, sealed, shares, key) = seal_transcript(
        &claim,
        node,
        &manifest,
        &signed_manifest,
        &board.roster,
        MINUTES.as_bytes(),
        MODEL,
    );
    let stored = node
        .client
        .complete_job(
            &claim.request_id,
            &claim.lease_token,
            &transcript,
            &sealed,
            &shares,
        )
        .await
        .unwrap();
    Transcribed {
        id: stored.transcript_id.parse().unwrap(),
        manifest: transcript,
        sealed,
        key,
    }
}

/// Has a release of `transcript` asked for by member 1 and approved by `voters`: quorate,
/// its job queued for the node.
pub async fn release_approved(
    board: &Board,
    node: &Node,
    transcript: &Transcribed,
    voters: &[usize],
) -> RequestId {
    let signed = release_request(board, 1, transcript.id, node.id);
    ask_and_approve(board, 1, &signed, voters, async |voter| {
        approve_release(board, voter, transcript, &signed, &node.identity).await
    })
    .await
}

/// A released copy as the node makes it for `request`: the minutes encrypted to a fresh
/// release key sealed to every member of `roster`, their postings, and the signed manifest.
pub struct MadeRelease {
    pub manifest: SignedStatement,
    pub copy: Vec<u8>,
    pub grants: Vec<(Fingerprint, Vec<u8>)>,
    pub postings: Vec<Posting>,
    pub key: AgeSecretKey,
    /// The search key generation the postings are under (the server takes the newest only).
    pub search_key_generation: u64,
}

pub fn make_release(
    request: &str,
    node: &Node,
    transcript: &Transcribed,
    roster: &Roster,
) -> MadeRelease {
    make_release_under(request, node, transcript, roster, &SearchKey::generate())
}

/// [`make_release`] with postings under `search_key`, as a node makes them.
pub fn make_release_under(
    request: &str,
    node: &Node,
    transcript: &Transcribed,
    roster: &Roster,
    search_key: &SearchKey,
) -> MadeRelease {
    let tm = transcript
        .manifest
        .verify::<TranscriptManifest>()
        .unwrap()
        .statement;
    let key = AgeSecretKey::generate();
    // The released copy is the whole document a member's device reads.
    let document = serde_json::json!({
        "language": "en",
        "model_sha256": hex::encode(MODEL),
        "node_id": node.id.to_string(),
        "recording_id": tm.recording_id.to_string(),
        "segments": [{ "start": 0.0, "end": 2.5, "text": "The library budget is approved." }],
    });
    let (writer, _) = envelope::encrypt(
        document.to_string().as_bytes(),
        envelope::HashingWriter::new(Vec::new()),
        &key.recipient(),
    )
    .unwrap();
    let (copy, ciphertext_len, ciphertext_sha256) = writer.finish();
    let grants: Vec<_> = roster
        .members()
        .iter()
        .map(|member| {
            let sealed = seal_release_key(
                tm.vault_id,
                tm.transcript_id,
                &key,
                &member.public.recipient,
            )
            .unwrap();
            (member.fingerprint, sealed)
        })
        .collect();
    let postings = postings(search_key, ["The library budget is approved."]);
    let manifest = SignedStatement::sign(
        &ReleaseManifest {
            vault_id: tm.vault_id,
            transcript_id: tm.transcript_id,
            recording_id: tm.recording_id,
            transcript_manifest_digest: transcript.manifest.digest(),
            request_id: request.parse().unwrap(),
            node_id: node.id,
            release_recipient: key.recipient(),
            members: grants.iter().map(|(member, _)| *member).collect(),
            ciphertext_len,
            ciphertext_sha256,
            postings_count: postings.len() as u64,
            postings_sha256: postings_digest(&postings),
            created_at: quorate_server::now(),
        },
        &node.identity,
    );
    MadeRelease {
        manifest,
        copy,
        grants,
        postings,
        key,
        search_key_generation: 0,
    }
}

/// Sends `release` as the completion of the job `claim` leased.
pub async fn complete_release(
    node: &Node,
    claim: &quorate_api::JobClaim,
    release: &MadeRelease,
) -> Result<quorate_api::ReleasedView, quorate_client::ClientError> {
    complete_release_with(node, &claim.request_id, &claim.lease_token, release).await
}

/// Sends `release` as the completion of `request` under `lease_token`.
pub async fn complete_release_with(
    node: &Node,
    request: &str,
    lease_token: &str,
    release: &MadeRelease,
) -> Result<quorate_api::ReleasedView, quorate_client::ClientError> {
    node.client
        .complete_release(
            request,
            lease_token,
            quorate_client::minutes::ReleaseUpload {
                manifest: &release.manifest,
                copy: &release.copy,
                grants: &release.grants,
                postings: &release.postings,
                search_key_generation: release.search_key_generation,
            },
        )
        .await
}

/// A released transcript of a fresh recording: uploaded by member 1 (k = 2), transcribed
/// and released with members 0 and 2 approving.
pub struct ReleasedMinutes {
    pub made: MadeRecording,
    pub transcript: Transcribed,
    pub release: MadeRelease,
    pub view: quorate_api::ReleasedView,
}

pub async fn released(board: &Board, node: &Node) -> ReleasedMinutes {
    let (made, _) = uploaded(board, 1, 2).await;
    let transcript = transcribed(board, node, &made, &[0, 2]).await;
    release_approved(board, node, &transcript, &[0, 2]).await;
    let claim = node
        .client
        .claim_job()
        .await
        .unwrap()
        .expect("the release job");
    let release = make_release(&claim.request_id, node, &transcript, &board.roster);
    let view = complete_release(node, &claim, &release).await.unwrap();
    ReleasedMinutes {
        made,
        transcript,
        release,
        view,
    }
}
