//! Recordings, unlock requests, votes and the audit log, with every signature checked here.

use std::io::Write;

use base64::{Engine, engine::general_purpose::STANDARD};
use quorate_api::{RequestView, TranscriptView};
use quorate_client::checks::{self, printable};
use quorate_crypto::{
    NodeId, RecordingId, RequestId,
    audit::verify_chain,
    rewrap::{self, Purpose},
    roster::Roster,
    statement::{
        Decision, NodeApproval, RecordingManifest, RecordingMetadata, SignedStatement,
        TranscriptManifest, UnlockRequest, Vote,
    },
    threshold::Subject,
};
use serde_json::json;

use super::{Context, DeviceError, Session, parse_id};

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs() as i64)
}

fn statement(bytes: &[u8], what: &str) -> Result<SignedStatement, DeviceError> {
    SignedStatement::from_bytes(bytes)
        .map_err(|error| DeviceError::Refused(format!("the {what}: {error}")))
}

/// A recording's manifest, verified as every device verifies it
/// ([`quorate_client::checks::recording_manifest`]): signed by its uploader, a member of the
/// roster now or before.
pub(super) async fn recording_manifest(
    session: &Session,
    roster: &Roster,
    recording: RecordingId,
) -> Result<RecordingManifest, DeviceError> {
    let view = session.client.recording(session.vault, recording).await?;
    let signed = statement(&view.manifest, "recording manifest")?;
    checks::recording_manifest(roster, Some(recording), &signed)
        .map_err(|error| DeviceError::Refused(error.to_string()))
}

/// What the caller can read of a recording's sealed metadata.
pub(super) fn title(manifest: &RecordingManifest, session: &Session) -> String {
    RecordingMetadata::open(&manifest.sealed_metadata, session.identity.age_key()).map_or_else(
        |_| "(details sealed before you joined)".to_owned(),
        |metadata| metadata.title,
    )
}

pub(super) async fn recordings(context: &mut Context) -> Result<(), DeviceError> {
    let session = context.session().await?;
    let roster = context.verified_roster(&session).await?;
    let views = session.client.recordings(session.vault).await?;
    let mut text = String::from("Recordings (manifests verified here):\n");
    let mut values = Vec::new();
    for view in &views {
        let recording: RecordingId = view
            .recording_id
            .parse()
            .map_err(|_| DeviceError::Refused("a malformed recording ID".into()))?;
        let manifest = recording_manifest(&session, &roster, recording).await?;
        let uploader = roster
            .members()
            .iter()
            .chain(roster.recorders())
            .chain(roster.removed())
            .find(|member| member.fingerprint == manifest.uploader)
            .map_or_else(|| manifest.uploader.short(), |member| member.name.clone());
        let title = title(&manifest, &session);
        text.push_str(&format!(
            "  {}  {}\n    by {}, {}-of-{}, {} bytes, {}\n",
            printable(&view.recording_id),
            printable(&title),
            printable(&uploader),
            manifest.split.threshold.k(),
            manifest.split.threshold.n(),
            manifest.ciphertext_len,
            view.status
        ));
        values.push(json!({ "recording_id": view.recording_id, "title": title, "uploader": uploader, "status": view.status, "threshold": manifest.split.threshold.k(), "shares": manifest.split.threshold.n() }));
    }
    if views.is_empty() {
        text.push_str("  (none yet: `quorate upload FILE --title TEXT`)\n");
    }
    context.print(text.trim_end(), &json!(values));
    Ok(())
}

/// A node's newest approval, verified: signed by an admin of the roster, naming the node,
/// not revoked, not expired.
async fn approved_node(
    session: &Session,
    roster: &Roster,
    node: NodeId,
) -> Result<NodeApproval, DeviceError> {
    let view = session.client.node(session.vault, node).await?;
    let approval = view.approval.ok_or_else(|| {
        DeviceError::Usage(format!(
            "node {node} has no approval yet: an admin approves it first"
        ))
    })?;
    let (verified, _) = roster
        .verify_by_admin::<NodeApproval>(&statement(&approval, "node approval")?)
        .map_err(|error| DeviceError::Refused(format!("node {node}'s approval: {error}")))?;
    let approval = verified.statement;
    if approval.node_id != node {
        return Err(DeviceError::Refused(
            "the server sent another node's approval".into(),
        ));
    }
    session.client.note_approval(&approval)?;
    approval
        .check_active(now())
        .map_err(|error| DeviceError::Refused(format!("node {node}: {error}")))?;
    Ok(approval)
}

pub(super) async fn request(
    context: &mut Context,
    recording: &str,
    node: &str,
    purpose: Purpose,
    reason: &str,
    hours: i64,
    language: Option<String>,
) -> Result<(), DeviceError> {
    let recording: RecordingId = parse_id(recording, "recording", "quorate recordings")?;
    let node: NodeId = parse_id(node, "node", "quorate nodes")?;
    if !(1..=14 * 24).contains(&hours) {
        return Err(DeviceError::Usage("--hours is 1 to 336".into()));
    }
    let language = language.as_deref().map(language_code).transpose()?;
    if language.is_some() && purpose != Purpose::Transcribe {
        return Err(DeviceError::Usage(
            "--language is for a transcription: a released transcript keeps its language".into(),
        ));
    }
    let session = context.session().await?;
    let roster = context.verified_roster(&session).await?;
    approved_node(&session, &roster, node).await?;
    let manifest = recording_manifest(&session, &roster, recording).await?;
    // Without --language, a transcription is asked for in the language the uploader sealed
    // with the meeting's details, if any.
    let language = language.or_else(|| match purpose {
        Purpose::Transcribe => {
            RecordingMetadata::open(&manifest.sealed_metadata, session.identity.age_key())
                .ok()
                .and_then(|metadata| metadata.language)
        }
        Purpose::ReleaseTranscript => None,
    });
    let subject = match purpose {
        Purpose::Transcribe => Subject::Recording(recording),
        Purpose::ReleaseTranscript => {
            let view = transcript_of(&session, recording).await?;
            let manifest = session
                .client
                .transcript_manifest(session.vault, &roster, &view)
                .await?;
            Subject::Transcript(manifest.transcript_id)
        }
    };
    let created_at = now();
    // The ID is this device's, and what it prints: never the server's echo of it.
    let request_id = RequestId::random();
    let request = UnlockRequest {
        vault_id: session.vault,
        request_id,
        subject,
        purpose,
        node_id: node,
        requester: session.identity.fingerprint(),
        reason: reason.to_owned(),
        created_at,
        expires_at: created_at + hours * 3600,
        language,
    };
    let signed = SignedStatement::sign(&request, &session.identity);
    let view = session
        .client
        .create_request(session.vault, &signed)
        .await?;
    context.print(
        &format!(
            "Request {request_id}{} is open for {hours} hours: {} approvals of {} possible are needed.",
            in_language(&request),
            view.threshold,
            view.eligible
        ),
        &json!({ "request_id": request_id.to_string(), "language": request.language, "threshold": view.threshold, "eligible": view.eligible }),
    );
    Ok(())
}

/// The newest sealed transcript of a recording.
pub(super) async fn transcript_of(
    session: &Session,
    recording: RecordingId,
) -> Result<TranscriptView, DeviceError> {
    session
        .client
        .transcripts(session.vault)
        .await?
        .into_iter()
        .find(|view| view.recording_id == recording.to_string())
        .ok_or_else(|| {
            DeviceError::Usage(format!(
                "recording {recording} has no transcript yet: ask for one first (`quorate request {recording} --purpose transcribe`)"
            ))
        })
}

/// A request and what it asks, every signature verified.
struct Checked {
    request: UnlockRequest,
    digest: [u8; 32],
    requester: String,
    /// The recording (of the transcript, for a release).
    manifest: RecordingManifest,
    /// The transcript a release request is about.
    transcript: Option<TranscriptManifest>,
    node: NodeApproval,
}

async fn check_request(
    session: &Session,
    roster: &Roster,
    view: &RequestView,
) -> Result<Checked, DeviceError> {
    let signed = statement(&view.statement, "request")?;
    let (verified, requester) = roster
        .verify_by_member::<UnlockRequest>(&signed)
        .map_err(|error| DeviceError::Refused(format!("the request: {error}")))?;
    let request = verified.statement;
    if request.requester != requester.fingerprint
        || request.request_id.to_string() != view.request_id
    {
        return Err(DeviceError::Refused(
            "the request's signer, requester or ID do not match".into(),
        ));
    }
    let (recording, transcript) = match request.subject {
        Subject::Recording(recording) => (recording, None),
        Subject::Transcript(transcript) => {
            let view = session
                .client
                .transcripts(session.vault)
                .await?
                .into_iter()
                .find(|view| view.transcript_id == transcript.to_string())
                .ok_or_else(|| {
                    DeviceError::Refused(
                        "the request names a transcript the server does not list".into(),
                    )
                })?;
            let manifest = session
                .client
                .transcript_manifest(session.vault, roster, &view)
                .await?;
            (manifest.recording_id, Some(manifest))
        }
    };
    let manifest = recording_manifest(session, roster, recording).await?;
    let node = approved_node(session, roster, request.node_id).await?;
    Ok(Checked {
        request,
        digest: verified.digest,
        requester: requester.name.clone(),
        manifest,
        transcript,
        node,
    })
}

pub(super) async fn requests(context: &mut Context, all: bool) -> Result<(), DeviceError> {
    let session = context.session().await?;
    let roster = context.verified_roster(&session).await?;
    let views = session.client.requests(session.vault, !all).await?;
    let mut text = if all {
        String::from("Requests:\n")
    } else {
        String::from("Requests awaiting your vote (signatures verified here):\n")
    };
    let mut values = Vec::new();
    for view in &views {
        let checked = check_request(&session, &roster, view).await?;
        text.push_str(&format!(
            "  {}  {}{} \"{}\" for node {} ({})\n    asked by {}: {}\n    {} of {} approvals, {} denials; {}, closes at {}\n",
            checked.request.request_id,
            checked.request.purpose.as_str(),
            in_language(&checked.request),
            printable(&title(&checked.manifest, &session)),
            checked.node.node_id,
            printable(&checked.node.hardware),
            printable(&checked.requester),
            printable(&checked.request.reason),
            view.approvals,
            view.threshold,
            view.denials,
            view.status,
            view.expires_at,
        ));
        values.push(json!({ "request_id": view.request_id, "purpose": checked.request.purpose.as_str(), "language": checked.request.language, "reason": checked.request.reason, "requester": checked.requester, "node_id": checked.node.node_id.to_string(), "approvals": view.approvals, "threshold": view.threshold, "denials": view.denials, "status": view.status }));
    }
    if views.is_empty() {
        text.push_str("  (none)\n");
    }
    context.print(text.trim_end(), &json!(values));
    Ok(())
}

/// `--language`'s code, lowercased, or what to give instead.
pub(super) fn language_code(text: &str) -> Result<String, DeviceError> {
    let code = text.to_ascii_lowercase();
    if quorate_crypto::statement::is_language_code(&code) {
        Ok(code)
    } else {
        Err(DeviceError::Usage(format!(
            "--language {}: give a Whisper language code such as en, fr or nl",
            printable(text)
        )))
    }
}

/// " in LANGUAGE" when a request names the language its recording is spoken in.
fn in_language(request: &UnlockRequest) -> String {
    request
        .language
        .as_deref()
        .map(|code| format!(" in {}", printable(code)))
        .unwrap_or_default()
}

fn confirm(question: &str) -> Result<bool, DeviceError> {
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer).map_err(|error| {
        DeviceError::Usage(format!("cannot read the answer ({error}): pass --yes"))
    })?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

pub(super) async fn vote(
    context: &mut Context,
    request: &str,
    approve: bool,
    yes: bool,
    comment: &str,
) -> Result<(), DeviceError> {
    let request_id: RequestId = parse_id(request, "request", "quorate requests")?;
    let session = context.session().await?;
    let roster = context.verified_roster(&session).await?;
    let view = session.client.request(session.vault, request_id).await?;
    let checked = check_request(&session, &roster, &view).await?;
    eprintln!(
        "{} asks to {}{} \"{}\" on node {} ({}; model {}…), until {}.\nReason: {}\nAll signatures verified: the request, the manifests, the node's approval by an admin.",
        printable(&checked.requester),
        checked.request.purpose.as_str(),
        in_language(&checked.request),
        printable(&title(&checked.manifest, &session)),
        checked.node.node_id,
        printable(&checked.node.hardware),
        &hex::encode(checked.node.model_sha256)[..16],
        checked.request.expires_at,
        printable(&checked.request.reason),
    );
    let verb = if approve { "Approve" } else { "Deny" };
    if !yes && !confirm(&format!("{verb} it?"))? {
        return Err(DeviceError::Usage("nothing was sent".into()));
    }
    let (decision, resealed) = if approve {
        let me = session.identity.fingerprint();
        // The share may be of the first sharing or of one a re-share made: it describes its
        // own sharing, which must commit to the manifest's secret.
        let (split, subject, sealed) = match &checked.transcript {
            None => (
                &checked.manifest.split,
                checked.manifest.subject(),
                session
                    .client
                    .recording_share(session.vault, checked.manifest.recording_id)
                    .await?,
            ),
            Some(transcript) => (
                &transcript.split,
                transcript.subject(),
                session
                    .client
                    .transcript_share(session.vault, transcript.transcript_id)
                    .await?,
            ),
        };
        let refused =
            |error: quorate_crypto::Error| DeviceError::Refused(format!("your share: {error}"));
        let (binding, share) = split
            .open_current_share(
                &sealed.sealed,
                session.identity.age_key(),
                session.vault,
                subject,
                &me,
            )
            .map_err(refused)?;
        let resealed = rewrap::reseal(
            &binding,
            &share,
            &checked.request.binding(),
            &checked.node.node.recipient,
        )
        .map_err(refused)?;
        (
            Decision::Approve {
                resealed_share_sha256: rewrap::resealed_digest(&resealed),
            },
            Some(resealed),
        )
    } else {
        (Decision::Deny, None)
    };
    let vote = SignedStatement::sign(
        &Vote {
            vault_id: session.vault,
            request_id,
            request_digest: checked.digest,
            voter: session.identity.fingerprint(),
            decision,
            comment: comment.to_owned(),
            issued_at: now(),
        },
        &session.identity,
    );
    let view = session
        .client
        .vote(session.vault, request_id, &vote, resealed.as_deref())
        .await?;
    context.print(
        &format!(
            "Your {} is counted: {} of {} approvals, {} denials; the request is {}.",
            if approve { "approval" } else { "denial" },
            view.approvals,
            view.threshold,
            view.denials,
            view.status
        ),
        &json!({ "request_id": view.request_id, "status": view.status, "approvals": view.approvals, "denials": view.denials }),
    );
    Ok(())
}

/// The most audit entries a device reads: a bound on a server that pages forever.
const MAX_AUDIT_ENTRIES: usize = 5_000_000;

/// Pages through the whole audit log, verifying the chain, every statement in it and who
/// signed each, and that it still holds the newest entry this device verified before (a
/// server that deleted or rewrote entries and re-hashed the rest is caught there); then
/// pins the new head.
async fn audit_entries(
    context: &mut Context,
    session: &Session,
) -> Result<Vec<quorate_crypto::audit::AuditEntry>, DeviceError> {
    let (mut after, mut previous, mut entries) = (None, [0u8; 32], Vec::new());
    loop {
        let page = session
            .client
            .audit_page(session.vault, after, 1000)
            .await?;
        let Some(last) = page.last() else {
            break;
        };
        after = Some(last.seq);
        previous = verify_chain(&page, previous)
            .map_err(|error| DeviceError::Refused(format!("the audit log: {error}")))?;
        entries.extend(page);
        if entries.len() > MAX_AUDIT_ENTRIES {
            return Err(DeviceError::Refused(format!(
                "the server's audit log goes on past {MAX_AUDIT_ENTRIES} entries: this device stops reading"
            )));
        }
    }
    if entries.first().is_some_and(|first| first.seq != 0) {
        return Err(DeviceError::Refused(
            "the audit log does not start at its first entry: its beginning was cut".into(),
        ));
    }
    // The roster is fetched after the log: it only grows, so every signer the log names is on
    // it (fetched before, a member added meanwhile would look like a forger).
    let roster = context.verified_roster(session).await?;
    checks::audit_signers(&roster, &entries)
        .and_then(|()| checks::audit_records(&roster, &entries, now()))
        .map_err(|error| DeviceError::Refused(error.to_string()))?;
    let pins = context.state.pins(session.vault)?.clone();
    if let Some(seq) = pins.audit_seq {
        let kept = entries
            .iter()
            .find(|entry| entry.seq == seq)
            .is_some_and(|entry| hex::encode(entry.hash) == pins.audit_hash);
        if !kept {
            return Err(DeviceError::Refused(format!(
                "the audit log no longer holds entry {seq} as this device verified it: entries were deleted or rewritten. Keep the log you exported before, and tell the admins"
            )));
        }
    }
    if let Some(head) = entries.last() {
        let pins = context
            .state
            .settings
            .vaults
            .entry(session.vault.to_string())
            .or_default();
        pins.audit_seq = Some(head.seq);
        pins.audit_hash = hex::encode(head.hash);
        context.state.save()?;
    }
    Ok(entries)
}

pub(super) async fn audit_verify(context: &mut Context) -> Result<(), DeviceError> {
    let session = context.session().await?;
    let entries = audit_entries(context, &session).await?;
    let head = entries
        .last()
        .map_or_else(String::new, |entry| hex::encode(entry.hash));
    context.print(
        &format!(
            "The audit log verifies: {} entries, each following its predecessor, every statement signed; head {}.",
            entries.len(),
            head.get(..16).unwrap_or("")
        ),
        &json!({ "entries": entries.len(), "head": head }),
    );
    Ok(())
}

pub(super) async fn audit_export(
    context: &mut Context,
    out: Option<std::path::PathBuf>,
) -> Result<(), DeviceError> {
    let session = context.session().await?;
    let entries = audit_entries(context, &session).await?;
    let mut text = String::new();
    for entry in &entries {
        text.push_str(
            &json!({
                "seq": entry.seq,
                "time": entry.time,
                "actor": entry.actor,
                "action": entry.action,
                "subject": entry.subject,
                "statement": entry.statement.as_ref().map(|bytes| STANDARD.encode(bytes)),
                "prev_hash": hex::encode(entry.prev_hash),
                "hash": hex::encode(entry.hash),
            })
            .to_string(),
        );
        text.push('\n');
    }
    match out {
        Some(path) => {
            std::fs::write(&path, &text).map_err(|error| {
                DeviceError::Local(format!("cannot write {}: {error}", path.display()))
            })?;
            eprintln!(
                "{} verified entries written to {} (JSON lines).",
                entries.len(),
                path.display()
            );
        }
        None => print!("{text}"),
    }
    Ok(())
}
