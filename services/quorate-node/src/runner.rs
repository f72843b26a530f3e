//! `quorate-node run`: sign in, check this node's approval and model, then claim and carry
//! out jobs one at a time, renewing each lease while it works. A job that cannot be done
//! (a bad share, an unsupported format, a decoding error) fails with its reason; the node
//! goes on to the next.

use std::{
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicI32, Ordering},
    },
    time::Duration,
};

use quorate_client::Client;
use quorate_crypto::{
    Identity, NodeId, VaultId,
    roster::Roster,
    statement::{SignedStatement, StatementKind},
};
use quorate_node::{
    audio,
    job::{self, JobFailure, Transcript},
    transcribe::{Transcriber, free_cores},
};
use sha2::{Digest, Sha256};

use crate::{NodeError, SignedIn, sign_in, verified_approval};

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs() as i64)
}

/// What the node checked before it takes any job.
struct Ready {
    client: Client,
    identity: Identity,
    vault: VaultId,
    node: NodeId,
    genesis: [u8; 32],
    model: [u8; 32],
    transcriber: Transcriber,
}

/// The roster, verified against the genesis this node pinned.
async fn roster(ready: &Ready) -> Result<Roster, NodeError> {
    Ok(ready.client.roster(ready.vault, &ready.genesis).await?)
}

async fn prepare(folder: &Path, threads: Option<usize>) -> Result<Ready, NodeError> {
    let signed_in: SignedIn = sign_in(folder).await?;
    let SignedIn {
        identity,
        vault,
        node,
        genesis,
        client,
    } = signed_in;
    let roster = client.roster(vault, &genesis).await?;
    let view = client.node(vault, node).await?;
    let approval = view.approval.ok_or_else(|| {
        NodeError::Usage("this node is not approved yet: an admin approves it first".into())
    })?;
    let (approval, _) = verified_approval(&roster, &approval, node, &identity)?;
    approval
        .check_active(now())
        .map_err(|error| NodeError::Refused(format!("refusing to run: {error}")))?;
    let chosen = std::fs::read_to_string(folder.join("model")).map_err(|_| {
        NodeError::Usage("no model imported: run `quorate-node models import PATH`".into())
    })?;
    let path = folder
        .join("models")
        .join(format!("{}.ggml", chosen.trim()));
    let file = std::fs::read(&path).map_err(|error| {
        NodeError::Usage(format!("cannot read the model {}: {error}", path.display()))
    })?;
    let model: [u8; 32] = Sha256::digest(&file).into();
    drop(file);
    if model != approval.model_sha256 {
        return Err(NodeError::Refused(format!(
            "the model {} is not the one this node's approval names ({}): refusing to run",
            hex::encode(model),
            hex::encode(approval.model_sha256)
        )));
    }
    let transcriber =
        Transcriber::load(&path, threads.unwrap_or_else(free_cores)).map_err(NodeError::Local)?;
    Ok(Ready {
        client,
        identity,
        vault,
        node,
        genesis,
        model,
        transcriber,
    })
}

/// Renews the lease every 30 seconds with the latest progress until dropped.
struct Renewal(tokio::task::JoinHandle<()>);

impl Drop for Renewal {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn renew(
    client: Client,
    request: String,
    lease: String,
    progress: Arc<AtomicI32>,
    stage: &'static str,
) -> Renewal {
    Renewal(tokio::spawn(async move {
        loop {
            let permille = (progress.load(Ordering::Relaxed).clamp(0, 100) * 10) as u16;
            if let Err(error) = client.job_progress(&request, &lease, permille, stage).await {
                eprintln!("warning: could not renew the lease of job {request}: {error}");
            }
            tokio::time::sleep(Duration::from_secs(30)).await;
        }
    }))
}

/// Carries out one claimed job; a `JobFailure` is the job's fault, a `NodeError` the node's.
async fn process(
    ready: &Ready,
    claim: &quorate_api::JobClaim,
) -> Result<Result<(), JobFailure>, NodeError> {
    let releases = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        &claim.subject_manifest,
    )
    .ok()
    .and_then(|bytes| SignedStatement::from_bytes(&bytes).ok())
    .is_some_and(|signed| signed.kind() == StatementKind::TranscriptManifest);
    if releases {
        release(ready, claim).await
    } else {
        transcribe(ready, claim).await
    }
}

/// Releases a sealed transcript: opens it with the rebuilt key, publishes a copy for every
/// current member and the blind-index postings.
async fn release(
    ready: &Ready,
    claim: &quorate_api::JobClaim,
) -> Result<Result<(), JobFailure>, NodeError> {
    let roster = roster(ready).await?;
    let producer = match job::transcript_producer(claim) {
        Ok(producer) => producer,
        Err(failure) => return Ok(Err(failure)),
    };
    let Some(approval) = ready.client.node(ready.vault, producer).await?.approval else {
        return Ok(Err(JobFailure(
            "the node that made the transcript was never approved".into(),
        )));
    };
    let unlocked = match job::unlock_transcript(
        claim,
        &roster,
        &approval,
        &ready.identity,
        ready.node,
        now(),
    ) {
        Ok(unlocked) => unlocked,
        Err(failure) => return Ok(Err(failure)),
    };
    let search_key = match ready
        .client
        .open_search_key(ready.vault, &roster, ready.identity.age_key())
        .await
    {
        Ok(Some(key)) => key,
        Ok(None) => {
            return Ok(Err(JobFailure(
                "this node holds no copy of the vault's search key: an admin shares it (`quorate share-keys`), then ask again".into(),
            )));
        }
        Err(error) => return Ok(Err(JobFailure(error.to_string()))),
    };
    let mut sealed = Vec::with_capacity(unlocked.manifest.ciphertext_len as usize);
    ready
        .client
        .download_transcript(
            ready.vault,
            unlocked.manifest.transcript_id,
            unlocked.manifest.ciphertext_len,
            &mut sealed,
        )
        .await?;
    let release = match job::release(
        &unlocked,
        &sealed,
        &search_key,
        &roster,
        &ready.identity,
        ready.node,
        now(),
    ) {
        Ok(release) => release,
        Err(failure) => return Ok(Err(failure)),
    };
    let stored = ready
        .client
        .complete_release(
            &claim.request_id,
            &claim.lease_token,
            &release.manifest,
            &release.copy,
            &release.grants,
            &release.postings,
        )
        .await?;
    eprintln!(
        "Job {} done: transcript {} released to {} members, {} postings indexed.",
        claim.request_id,
        stored.transcript_id,
        release.grants.len(),
        release.postings.len()
    );
    Ok(Ok(()))
}

/// Transcribes a recording and seals the transcript.
async fn transcribe(
    ready: &Ready,
    claim: &quorate_api::JobClaim,
) -> Result<Result<(), JobFailure>, NodeError> {
    let roster = roster(ready).await?;
    let unlocked = match job::unlock(claim, &roster, &ready.identity, ready.node, now()) {
        Ok(unlocked) => unlocked,
        Err(failure) => return Ok(Err(failure)),
    };
    let mut ciphertext = Vec::with_capacity(unlocked.manifest.ciphertext_len as usize);
    ready
        .client
        .download_recording(
            ready.vault,
            unlocked.manifest.recording_id,
            None,
            unlocked.manifest.ciphertext_len,
            &mut ciphertext,
        )
        .await?;
    let plaintext = match job::decrypt(&ciphertext, &unlocked.key) {
        Ok(plaintext) => plaintext,
        Err(failure) => return Ok(Err(failure)),
    };
    drop(ciphertext);
    let samples = match tokio::task::spawn_blocking(move || {
        audio::decode(plaintext, "application/octet-stream")
    })
    .await
    .map_err(|error| NodeError::Local(format!("decoding stopped: {error}")))?
    {
        Ok(samples) => zeroize::Zeroizing::new(samples),
        Err(error) => return Ok(Err(JobFailure(error.to_string()))),
    };
    let progress = Arc::new(AtomicI32::new(0));
    let renewal = renew(
        ready.client.clone(),
        claim.request_id.clone(),
        claim.lease_token.clone(),
        Arc::clone(&progress),
        "transcribing",
    );
    let shown = Arc::clone(&progress);
    let transcribed = tokio::task::block_in_place(|| {
        ready.transcriber.transcribe(&samples, move |percent| {
            shown.store(percent, Ordering::Relaxed)
        })
    });
    drop(renewal);
    drop(samples);
    let (language, segments) = match transcribed {
        Ok(result) => result,
        Err(error) => return Ok(Err(JobFailure(error))),
    };
    let transcript = Transcript {
        language,
        model_sha256: hex::encode(ready.model),
        node_id: ready.node.to_string(),
        recording_id: unlocked.manifest.recording_id.to_string(),
        segments,
    };
    let sealed = match job::seal(
        &unlocked,
        &transcript,
        &roster,
        &ready.identity,
        ready.node,
        ready.model,
        now(),
    ) {
        Ok(sealed) => sealed,
        Err(failure) => return Ok(Err(failure)),
    };
    drop(transcript);
    let stored = ready
        .client
        .complete_job(
            &claim.request_id,
            &claim.lease_token,
            &sealed.manifest,
            &sealed.ciphertext,
            &sealed.shares,
        )
        .await?;
    eprintln!(
        "Job {} done: transcript {} sealed to the recording's {} share holders.",
        claim.request_id,
        stored.transcript_id,
        sealed.shares.len()
    );
    Ok(Ok(()))
}

pub(crate) async fn run(
    folder: &Path,
    once: bool,
    threads: Option<usize>,
    poll_seconds: u64,
) -> Result<(), NodeError> {
    // Before any key or plaintext exists in this process.
    let hardened = quorate_node::hardening::harden().map_err(NodeError::Local)?;
    if !hardened.memory_locked {
        eprintln!(
            "note: memory is not locked (the memory-lock limit is not unlimited); keys and audio may be swapped out. Run with LimitMEMLOCK=infinity to lock it."
        );
    }
    let ready = prepare(folder, threads).await?;
    eprintln!(
        "Node {} is approved and loaded model {}; waiting for jobs.",
        ready.node,
        hex::encode(ready.model)
    );
    loop {
        let Some(claim) = ready.client.claim_job().await? else {
            if once {
                eprintln!("No job waits for this node.");
                return Ok(());
            }
            tokio::time::sleep(Duration::from_secs(poll_seconds.max(1))).await;
            continue;
        };
        eprintln!(
            "Claimed job {} (attempt {}).",
            claim.request_id, claim.attempt
        );
        match process(&ready, &claim).await? {
            Ok(()) => {}
            Err(failure) => {
                eprintln!("Job {} failed: {failure}", claim.request_id);
                ready
                    .client
                    .fail_job(&claim.request_id, &claim.lease_token, &failure.0)
                    .await?;
            }
        }
        if once {
            return Ok(());
        }
    }
}
