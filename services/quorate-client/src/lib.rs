//! The typed client of the Quorate HTTP API, shared by the `quorate` CLI, the node and the
//! tests. It speaks the `quorate-api` types, and does the device-side checks the protocol
//! requires (a roster is returned only once verified against the pinned genesis).
//!
//! - [`checks`]: the checks every device makes the same way;
//! - [`minutes`]: released minutes, the search key and blind search from a member's device;
//! - [`local`]: files a device keeps private;
//! - [`error`]: [`DeviceError`], why a device's command failed, with its exit code.

pub mod checks;
pub mod error;
pub mod local;
pub mod minutes;
pub mod reshare;
pub mod retry;

pub use error::{DeviceError, exit};

use base64::{
    Engine,
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
};
use quorate_api::{
    AuditEntryView, Base64, Challenge, ChallengeRequest, CodeInfo, CodeLookup, CreatedVault,
    Enrolled, ErrorBody, FirstAdminEnrolment, HoldVoteCounted, HoldVotes, Invite, InvitePurpose,
    InviteRequest, JobClaim, JobCompletion, JobFailure, JobProgress, JobReturn, JobView, Lease, Me,
    MemberEnrolment, MemberStatus, MemberView, NewRecording, NewUnlockRequest, NewVault,
    NodeApprovalUpload, NodeEnrolled, NodeEnrolment, NodeView, PolicyStatement, PublicKeys,
    RecordingView, RequestView, RetentionRules, RosterAppend, RosterAppended, RosterChain,
    SealedShare, SealedShareUpload, Session, SessionRequest, StatementUpload, TranscriptView,
    UploadState, VoteUpload,
};
use quorate_crypto::{
    Fingerprint, Identity, NodeId, PublicIdentity, RecordingId, RequestId, TranscriptId, VaultId,
    audit::AuditEntry,
    retention::{LegalHold, RetentionRule},
    roster::Roster,
    statement::{NodeApproval, SignedStatement, VaultPolicy, Verified},
};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// What can go wrong talking to the server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The server refused the request with a 4xx or 5xx and said why.
    #[error("the server refused ({status} {code}): {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// The server's machine-readable code.
        code: String,
        /// The server's message.
        message: String,
    },
    /// The server could not be reached or the connection failed.
    #[error("cannot reach the server: {0}")]
    Transport(#[from] reqwest::Error),
    /// The server answered something this client does not understand, or something that
    /// fails the protocol's checks.
    #[error("the server's answer is not acceptable: {0}")]
    Invalid(String),
    /// A call that needs a session was made before signing in.
    #[error("not signed in: sign in first")]
    NotSignedIn,
}

impl ClientError {
    /// The server's error code, when the server refused.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Api { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// A connection that cannot be made within this time will not be made: fail, so that the
/// user (or the node's retries) hears of it.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

/// Certificate authorities trusted beside the system's ([`trust_ca_file`]).
static EXTRA_ROOTS: std::sync::OnceLock<Vec<reqwest::Certificate>> = std::sync::OnceLock::new();

/// Trusts the certificate authorities in the PEM file at `path` (`QUORATE_CA_FILE`), beside
/// the system's, for every client made after: for a server whose certificate a private
/// authority signed. Called once, at the start of a command.
pub fn trust_ca_file(path: &std::path::Path) -> Result<(), DeviceError> {
    let pem = std::fs::read(path).map_err(|error| {
        DeviceError::Usage(format!(
            "cannot read the CA file {}: {error}",
            path.display()
        ))
    })?;
    let certificates = reqwest::Certificate::from_pem_bundle(&pem)
        .ok()
        .filter(|certificates| !certificates.is_empty())
        .ok_or_else(|| {
            DeviceError::Usage(format!(
                "{} holds no PEM certificate: give the CA's certificate (BEGIN CERTIFICATE)",
                path.display()
            ))
        })?;
    let _ = EXTRA_ROOTS.set(certificates);
    Ok(())
}

fn http_client(read_timeout: Option<std::time::Duration>) -> reqwest::Client {
    let mut builder = reqwest::Client::builder().connect_timeout(CONNECT_TIMEOUT);
    for certificate in EXTRA_ROOTS.get().into_iter().flatten() {
        builder = builder.add_root_certificate(certificate.clone());
    }
    if let Some(timeout) = read_timeout {
        builder = builder.read_timeout(timeout);
    }
    // As `reqwest::Client::new`: building fails only when the TLS backend cannot start.
    builder.build().expect("the HTTP client starts")
}

/// A client of one server, optionally signed in.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
    approvals_seen: checks::ApprovalsSeen,
}

impl Client {
    /// A client for the server at `base` (`http://host:port`).
    pub fn new(base: &str) -> Self {
        Self {
            http: http_client(None),
            base: base.trim_end_matches('/').to_owned(),
            token: None,
            approvals_seen: checks::ApprovalsSeen::default(),
        }
    }

    /// Gives up on a server that sends nothing for `timeout` (a hung server or a dead link
    /// that no reset ends), as an error that [`DeviceError::is_transient`] calls transient.
    /// For unattended devices that try again; a member's command waits as long as it takes,
    /// since a large upload may be answered only after minutes.
    pub fn with_read_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.http = http_client(Some(timeout));
        self
    }

    /// Uses (and updates) `seen`, the newest node approvals this device verified, so that an
    /// older one is refused (see [`checks::not_older_than_seen`]).
    pub fn with_approvals_seen(mut self, seen: checks::ApprovalsSeen) -> Self {
        self.approvals_seen = seen;
        self
    }

    /// Checks a node approval this device just verified against the newest it saw before.
    pub fn note_approval(&self, approval: &NodeApproval) -> Result<(), ClientError> {
        checks::not_older_than_seen(&self.approvals_seen, approval)
            .map_err(|error| ClientError::Invalid(error.to_string()))
    }

    /// The session token, if signed in.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// Uses an existing session token.
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    async fn send<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<T, ClientError> {
        let response = request.send().await?;
        let status = response.status();
        if status.is_success() {
            if status == reqwest::StatusCode::NO_CONTENT {
                return serde_json::from_value(Value::Null)
                    .map_err(|error| ClientError::Invalid(error.to_string()));
            }
            return decode_answer(&response.bytes().await?);
        }
        Err(api_error(response).await)
    }

    fn url(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.base)
    }

    async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &impl Serialize,
    ) -> Result<T, ClientError> {
        let mut request = self.http.post(self.url(path)).json(body);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        self.send(request).await
    }

    async fn put<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &impl Serialize,
    ) -> Result<T, ClientError> {
        let token = self.token.as_ref().ok_or(ClientError::NotSignedIn)?;
        self.send(self.http.put(self.url(path)).bearer_auth(token).json(body))
            .await
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let token = self.token.as_ref().ok_or(ClientError::NotSignedIn)?;
        self.send(self.http.get(self.url(path)).bearer_auth(token))
            .await
    }

    /// What a one-time code is for, without using it.
    pub async fn lookup_code(&self, code: &str) -> Result<CodeInfo, ClientError> {
        self.post(
            "/enrol/lookup",
            &CodeLookup {
                code: code.to_owned(),
            },
        )
        .await
    }

    /// Redeems the bootstrap code with a genesis entry; returns what to pin.
    pub async fn enrol_first_admin(
        &self,
        code: &str,
        genesis: &SignedStatement,
    ) -> Result<Enrolled, ClientError> {
        self.post(
            "/enrol/first-admin",
            &FirstAdminEnrolment {
                code: code.to_owned(),
                genesis: Base64::from(genesis.to_bytes()),
            },
        )
        .await
    }

    /// Redeems a member invite with one's public keys.
    pub async fn enrol_member(
        &self,
        code: &str,
        name: &str,
        public: &PublicIdentity,
    ) -> Result<Enrolled, ClientError> {
        self.post(
            "/enrol/member",
            &MemberEnrolment {
                code: code.to_owned(),
                name: name.to_owned(),
                keys: public_keys(public),
            },
        )
        .await
    }

    /// Signs in by signing the server's challenge; keeps the session.
    pub async fn sign_in(
        &mut self,
        vault: VaultId,
        identity: &Identity,
    ) -> Result<Session, ClientError> {
        let challenge = self
            .challenge(vault, &identity.fingerprint().to_hex())
            .await?;
        let signature = identity.sign_challenge(&challenge.nonce);
        self.answer(&challenge.challenge_id, &signature).await
    }

    /// The first half of [`Client::sign_in`]: asks for a single-use challenge.
    pub async fn challenge(
        &self,
        vault: VaultId,
        fingerprint: &str,
    ) -> Result<Challenge, ClientError> {
        self.post(
            "/auth/challenge",
            &ChallengeRequest {
                vault_id: vault.to_string(),
                fingerprint: fingerprint.to_owned(),
            },
        )
        .await
    }

    /// The second half of [`Client::sign_in`]: answers a challenge with a signature over it;
    /// keeps the session.
    pub async fn answer(
        &mut self,
        challenge_id: &str,
        signature: &[u8; 64],
    ) -> Result<Session, ClientError> {
        let session: Session = self
            .post(
                "/auth/session",
                &SessionRequest {
                    challenge_id: challenge_id.to_owned(),
                    signature: Base64::from(*signature),
                },
            )
            .await?;
        self.token = Some(session.token.clone());
        Ok(session)
    }

    /// Who the session belongs to.
    pub async fn me(&self) -> Result<Me, ClientError> {
        self.get("/me").await
    }

    /// Ends the session.
    pub async fn log_out(&mut self) -> Result<(), ClientError> {
        let token = self.token.take().ok_or(ClientError::NotSignedIn)?;
        self.send::<()>(
            self.http
                .delete(self.url("/auth/session"))
                .bearer_auth(token),
        )
        .await
    }

    /// The vault's roster chain, verified against the genesis the device pinned.
    pub async fn roster(
        &self,
        vault: VaultId,
        pinned_genesis: &[u8; 32],
    ) -> Result<Roster, ClientError> {
        let chain: RosterChain = self.get(&format!("/vaults/{vault}/roster")).await?;
        let entries = chain
            .entries
            .iter()
            .map(|entry| statement(entry))
            .collect::<Result<Vec<_>, _>>()?;
        Roster::verify(vault, &entries, Some(pinned_genesis))
            .map_err(|error| ClientError::Invalid(error.to_string()))
    }

    /// Appends a signed roster entry (admins); returns its sequence number.
    pub async fn append_roster(
        &self,
        vault: VaultId,
        entry: &SignedStatement,
    ) -> Result<u64, ClientError> {
        let answer: RosterAppended = self
            .post(
                &format!("/vaults/{vault}/roster"),
                &RosterAppend {
                    entry: Base64::from(entry.to_bytes()),
                },
            )
            .await?;
        Ok(answer.sequence)
    }

    /// Creates an invite lasting `ttl_seconds` (admins).
    pub async fn invite_for(
        &self,
        vault: VaultId,
        purpose: InvitePurpose,
        ttl_seconds: i64,
    ) -> Result<Invite, ClientError> {
        self.post(
            &format!("/vaults/{vault}/invites"),
            &InviteRequest {
                purpose,
                ttl_seconds: Some(ttl_seconds),
            },
        )
        .await
    }

    /// Creates an invite with the server's default lifetime (admins).
    pub async fn invite(
        &self,
        vault: VaultId,
        purpose: InvitePurpose,
    ) -> Result<Invite, ClientError> {
        self.post(
            &format!("/vaults/{vault}/invites"),
            &InviteRequest {
                purpose,
                ttl_seconds: None,
            },
        )
        .await
    }

    /// Members, optionally of one status.
    pub async fn members(
        &self,
        vault: VaultId,
        status: Option<MemberStatus>,
    ) -> Result<Vec<MemberView>, ClientError> {
        let query = status
            .map(|status| format!("?status={status}"))
            .unwrap_or_default();
        self.get(&format!("/vaults/{vault}/members{query}")).await
    }

    /// Creates a further vault (admins).
    pub async fn create_vault(&self, name: &str) -> Result<CreatedVault, ClientError> {
        self.post(
            "/vaults",
            &NewVault {
                name: name.to_owned(),
            },
        )
        .await
    }

    /// One page of the audit log after `after` (from the start when `None`).
    pub async fn audit_page(
        &self,
        vault: VaultId,
        after: Option<u64>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, ClientError> {
        let after = after.map(|seq| format!("&after={seq}")).unwrap_or_default();
        let views: Vec<AuditEntryView> = self
            .get(&format!("/vaults/{vault}/audit?limit={limit}{after}"))
            .await?;
        views.iter().map(|view| audit_entry(vault, view)).collect()
    }

    /// Sets the vault's policy with a statement an admin signed (admins).
    pub async fn set_policy(
        &self,
        vault: VaultId,
        policy: &SignedStatement,
    ) -> Result<(), ClientError> {
        let _: PolicyStatement = self
            .put(
                &format!("/vaults/{vault}/policy"),
                &PolicyStatement {
                    statement: Base64::from(policy.to_bytes()),
                },
            )
            .await?;
        Ok(())
    }

    /// The vault's newest policy, verified against `roster` (an admin of it signed it).
    pub async fn policy(&self, roster: &Roster) -> Result<VaultPolicy, ClientError> {
        let answer: PolicyStatement = self
            .get(&format!("/vaults/{}/policy", roster.vault_id()))
            .await?;
        let signed = statement(&answer.statement)?;
        // What an admin signed stays in force when they leave (or replace their identity).
        let verified = checks::by_admin_ever::<VaultPolicy>(roster, &signed)
            .map_err(|error| ClientError::Invalid(format!("the vault policy: {error}")))?;
        Ok(verified.statement)
    }

    /// Stores an admin-signed retention rule (admins).
    pub async fn set_retention_rule(
        &self,
        vault: VaultId,
        rule: &SignedStatement,
    ) -> Result<(), ClientError> {
        self.put(
            &format!("/vaults/{vault}/retention"),
            &StatementUpload {
                statement: Base64::from(rule.to_bytes()),
            },
        )
        .await
    }

    /// The vault's retention rules, each verified as signed by an admin of `roster` (one
    /// since removed included: a rule stays in force when its signer leaves).
    pub async fn retention_rules(
        &self,
        roster: &Roster,
    ) -> Result<Vec<Verified<RetentionRule>>, ClientError> {
        let answer: RetentionRules = self
            .get(&format!("/vaults/{}/retention", roster.vault_id()))
            .await?;
        answer
            .rules
            .iter()
            .map(|bytes| {
                checks::by_admin_ever::<RetentionRule>(roster, &statement(bytes)?)
                    .map_err(|error| ClientError::Invalid(format!("a retention rule: {error}")))
            })
            .collect()
    }

    /// Sends this member's signed vote on a legal hold; answers whether it decided the hold.
    pub async fn vote_hold(
        &self,
        vault: VaultId,
        vote: &SignedStatement,
    ) -> Result<bool, ClientError> {
        let counted: HoldVoteCounted = self
            .post(
                &format!("/vaults/{vault}/holds"),
                &StatementUpload {
                    statement: Base64::from(vote.to_bytes()),
                },
            )
            .await?;
        Ok(counted.decided)
    }

    /// Every vote on every legal hold of the vault, each with a valid signature and for this
    /// vault (who may vote is for [`quorate_crypto::retention::tally`] to say).
    pub async fn hold_votes(
        &self,
        vault: VaultId,
    ) -> Result<Vec<Verified<LegalHold>>, ClientError> {
        let answer: HoldVotes = self.get(&format!("/vaults/{vault}/holds")).await?;
        answer
            .votes
            .iter()
            .map(|bytes| {
                let verified = statement(bytes)?
                    .verify::<LegalHold>()
                    .map_err(|error| ClientError::Invalid(format!("a hold vote: {error}")))?;
                if verified.statement.vault_id != vault {
                    return Err(ClientError::Invalid(
                        "a hold vote is for another vault".into(),
                    ));
                }
                Ok(verified)
            })
            .collect()
    }

    /// Redeems a node invite with the node's public keys.
    pub async fn enrol_node(
        &self,
        code: &str,
        name: &str,
        public: &PublicIdentity,
    ) -> Result<NodeEnrolled, ClientError> {
        self.post(
            "/enrol/node",
            &NodeEnrolment {
                code: code.to_owned(),
                name: name.to_owned(),
                keys: public_keys(public),
            },
        )
        .await
    }

    /// The vault's nodes.
    pub async fn nodes(&self, vault: VaultId) -> Result<Vec<NodeView>, ClientError> {
        self.get(&format!("/vaults/{vault}/nodes")).await
    }

    /// One node.
    pub async fn node(&self, vault: VaultId, node: NodeId) -> Result<NodeView, ClientError> {
        self.get(&format!("/vaults/{vault}/nodes/{node}")).await
    }

    /// Stores an admin-signed approval or revocation of a node (admins).
    pub async fn approve_node(
        &self,
        vault: VaultId,
        node: NodeId,
        approval: &SignedStatement,
    ) -> Result<NodeView, ClientError> {
        self.post(
            &format!("/vaults/{vault}/nodes/{node}/approval"),
            &NodeApprovalUpload {
                approval: Base64::from(approval.to_bytes()),
            },
        )
        .await
    }

    fn authorised(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::RequestBuilder, ClientError> {
        let token = self.token.as_ref().ok_or(ClientError::NotSignedIn)?;
        Ok(request.bearer_auth(token))
    }

    /// Creates a recording from its signed manifest and the members' sealed shares, and
    /// opens its upload. Sending the same manifest again returns the upload's state.
    pub async fn create_recording(
        &self,
        vault: VaultId,
        manifest: &SignedStatement,
        shares: &[(Fingerprint, Vec<u8>)],
    ) -> Result<UploadState, ClientError> {
        self.post(
            &format!("/vaults/{vault}/recordings"),
            &NewRecording {
                manifest: Base64::from(manifest.to_bytes()),
                shares: sealed_uploads(shares),
            },
        )
        .await
    }

    /// Opens a live upload (its length deferred until its manifest, sent with
    /// [`Client::create_recording`] when recording stops, completes it).
    pub async fn open_live_upload(
        &self,
        vault: VaultId,
        recording: RecordingId,
    ) -> Result<UploadState, ClientError> {
        self.post(
            &format!("/vaults/{vault}/live-uploads"),
            &quorate_api::NewLiveUpload {
                recording_id: recording.to_string(),
            },
        )
        .await
    }

    /// How many bytes of an upload the server has, and the upload's length (tus `HEAD`;
    /// `None` for a live upload whose length is deferred).
    pub async fn upload_offset(
        &self,
        recording: RecordingId,
    ) -> Result<(u64, Option<u64>), ClientError> {
        let response = self
            .authorised(self.http.head(self.url(&format!("/uploads/{recording}"))))?
            .send()
            .await?;
        let status = response.status();
        if !status.is_success() {
            return Err(ClientError::Api {
                status: status.as_u16(),
                code: if status == reqwest::StatusCode::NOT_FOUND {
                    "not_found".into()
                } else {
                    "unknown".into()
                },
                message: format!("the server answered {status} to HEAD"),
            });
        }
        let number = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.parse::<u64>().ok())
                .ok_or_else(|| ClientError::Invalid(format!("no {name} in the answer")))
        };
        let deferred = response
            .headers()
            .get("upload-defer-length")
            .is_some_and(|value| value == "1");
        let length = if deferred {
            None
        } else {
            Some(number("upload-length")?)
        };
        Ok((number("upload-offset")?, length))
    }

    /// Sends one chunk at `offset` (tus `PATCH`), with its SHA-256 as `Upload-Checksum`;
    /// returns the new offset.
    pub async fn upload_chunk(
        &self,
        recording: RecordingId,
        offset: u64,
        chunk: bytes::Bytes,
    ) -> Result<u64, ClientError> {
        let checksum = STANDARD.encode(Sha256::digest(&chunk));
        let response = self
            .authorised(self.http.patch(self.url(&format!("/uploads/{recording}"))))?
            .header("tus-resumable", "1.0.0")
            .header("content-type", "application/offset+octet-stream")
            .header("upload-offset", offset)
            .header("upload-checksum", format!("sha256 {checksum}"))
            .body(chunk)
            .send()
            .await?;
        let status = response.status();
        if !status.is_success() {
            return Err(api_error(response).await);
        }
        response
            .headers()
            .get("upload-offset")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse().ok())
            .ok_or_else(|| ClientError::Invalid("no Upload-Offset in the answer".into()))
    }

    /// Uploads `source` (the whole ciphertext, seekable) from wherever the server stands, as
    /// one streaming PATCH, calling `progress(sent, length)` as bytes go out. Memory stays
    /// flat (1 MiB pieces). If the connection breaks, the server keeps what arrived: call
    /// again and it resumes from the server's offset. The server checks the whole
    /// ciphertext's SHA-256 against the manifest at the end.
    pub async fn resume_upload<R>(
        &self,
        recording: RecordingId,
        source: R,
        progress: impl FnMut(u64, u64) + Send + 'static,
    ) -> Result<(), ClientError>
    where
        R: std::io::Read + std::io::Seek + Send + 'static,
    {
        self.resume_upload_limited(recording, source, None, None, progress)
            .await
    }

    /// [`Client::resume_upload`], sending at most `rate` bytes per second when given. With
    /// `expected_len` (the ciphertext's length, which the device knows), a server that names
    /// another length is refused: otherwise one that answered "offset 0 of 0" would pass for a
    /// finished upload, and the device would drop its only copy.
    pub async fn resume_upload_limited<R>(
        &self,
        recording: RecordingId,
        mut source: R,
        rate: Option<u64>,
        expected_len: Option<u64>,
        mut progress: impl FnMut(u64, u64) + Send + 'static,
    ) -> Result<(), ClientError>
    where
        R: std::io::Read + std::io::Seek + Send + 'static,
    {
        let (offset, length) = self.upload_offset(recording).await?;
        let length = length.ok_or_else(|| {
            ClientError::Invalid(
                "the server says this upload's length is deferred, but its manifest names it"
                    .into(),
            )
        })?;
        if offset > length {
            return Err(ClientError::Invalid(format!(
                "the server claims {offset} bytes of an upload of {length}"
            )));
        }
        if let Some(expected) = expected_len
            && expected != length
        {
            return Err(ClientError::Invalid(format!(
                "the server says the upload is {length} bytes, but this device's ciphertext is {expected}"
            )));
        }
        progress(offset, length);
        if offset == length {
            return Ok(());
        }
        source
            .seek(std::io::SeekFrom::Start(offset))
            .map_err(|error| ClientError::Invalid(format!("reading the ciphertext: {error}")))?;
        let remaining = length - offset;
        let started = tokio::time::Instant::now();
        // Read in 1 MiB pieces on the blocking pool; stop at the upload's length.
        let pieces = futures::stream::unfold(
            (Some(source), offset, progress),
            move |(source, sent, mut progress)| async move {
                let mut source = source?;
                if sent >= length {
                    return None;
                }
                if let Some(rate) = rate {
                    // Pace so that what went out since the start keeps to the rate.
                    let due =
                        std::time::Duration::from_secs_f64((sent - offset) as f64 / rate as f64);
                    tokio::time::sleep_until(started + due).await;
                }
                let want = usize::try_from(length - sent)
                    .unwrap_or(usize::MAX)
                    .min(1 << 20);
                let read = tokio::task::spawn_blocking(move || {
                    let mut piece = vec![0u8; want];
                    let result = source.read_exact(&mut piece).map(|()| piece);
                    (source, result)
                })
                .await;
                match read {
                    Ok((source, Ok(piece))) => {
                        let sent = sent + piece.len() as u64;
                        progress(sent, length);
                        Some((
                            Ok(bytes::Bytes::from(piece)),
                            (Some(source), sent, progress),
                        ))
                    }
                    Ok((_, Err(error))) => Some((Err(error), (None, sent, progress))),
                    Err(error) => Some((Err(std::io::Error::other(error)), (None, sent, progress))),
                }
            },
        );
        let response = self
            .authorised(self.http.patch(self.url(&format!("/uploads/{recording}"))))?
            .header("tus-resumable", "1.0.0")
            .header("content-type", "application/offset+octet-stream")
            .header("upload-offset", offset)
            .header("content-length", remaining)
            .body(reqwest::Body::wrap_stream(pieces))
            .send()
            .await?;
        if !response.status().is_success() {
            return Err(api_error(response).await);
        }
        Ok(())
    }

    /// Abandons an unfinished upload (tus termination).
    pub async fn abandon_upload(&self, recording: RecordingId) -> Result<(), ClientError> {
        self.send::<()>(
            self.authorised(self.http.delete(self.url(&format!("/uploads/{recording}"))))?,
        )
        .await
    }

    /// The vault's complete recordings.
    pub async fn recordings(&self, vault: VaultId) -> Result<Vec<RecordingView>, ClientError> {
        self.get(&format!("/vaults/{vault}/recordings")).await
    }

    /// One recording.
    pub async fn recording(
        &self,
        vault: VaultId,
        recording: RecordingId,
    ) -> Result<RecordingView, ClientError> {
        self.get(&format!("/vaults/{vault}/recordings/{recording}"))
            .await
    }

    /// The caller's own sealed share of a recording's key.
    pub async fn recording_share(
        &self,
        vault: VaultId,
        recording: RecordingId,
    ) -> Result<SealedShare, ClientError> {
        self.get(&format!("/vaults/{vault}/recordings/{recording}/share"))
            .await
    }

    /// Streams a recording's ciphertext, or one `range` of it, into `sink`; returns the
    /// number of bytes written. More than `max_len` bytes (the manifest's length) is refused
    /// as soon as they arrive.
    pub async fn download_recording(
        &self,
        vault: VaultId,
        recording: RecordingId,
        range: Option<std::ops::Range<u64>>,
        max_len: u64,
        sink: &mut impl std::io::Write,
    ) -> Result<u64, ClientError> {
        self.download(
            &format!("/vaults/{vault}/recordings/{recording}/ciphertext"),
            range,
            max_len,
            sink,
        )
        .await
    }

    /// Streams `path` into `sink`, refusing more than `max_len` bytes: a server must not be
    /// able to fill a device's memory or disk with an answer longer than the signed length.
    async fn download(
        &self,
        path: &str,
        range: Option<std::ops::Range<u64>>,
        max_len: u64,
        sink: &mut impl std::io::Write,
    ) -> Result<u64, ClientError> {
        let mut request = self.authorised(self.http.get(self.url(path)))?;
        if let Some(range) = &range {
            request = request.header("range", format!("bytes={}-{}", range.start, range.end - 1));
        }
        let response = request.send().await?;
        if !response.status().is_success() {
            return Err(api_error(response).await);
        }
        let mut stream = response.bytes_stream();
        let mut written = 0u64;
        while let Some(bytes) = futures::StreamExt::next(&mut stream).await {
            let bytes = bytes?;
            if written + bytes.len() as u64 > max_len {
                return Err(ClientError::Invalid(format!(
                    "the server sent more than the {max_len} bytes the manifest signs"
                )));
            }
            sink.write_all(&bytes)
                .map_err(|error| ClientError::Invalid(format!("writing the download: {error}")))?;
            written += bytes.len() as u64;
        }
        Ok(written)
    }

    /// Deletes a recording and every share of its key (admins).
    pub async fn delete_recording(
        &self,
        vault: VaultId,
        recording: RecordingId,
    ) -> Result<(), ClientError> {
        self.send::<()>(
            self.authorised(
                self.http
                    .delete(self.url(&format!("/vaults/{vault}/recordings/{recording}"))),
            )?,
        )
        .await
    }

    /// Opens a signed unlock request.
    pub async fn create_request(
        &self,
        vault: VaultId,
        request: &SignedStatement,
    ) -> Result<RequestView, ClientError> {
        self.post(
            &format!("/vaults/{vault}/requests"),
            &NewUnlockRequest {
                request: Base64::from(request.to_bytes()),
            },
        )
        .await
    }

    /// The vault's requests; with `awaiting_me`, only those awaiting the caller's vote.
    pub async fn requests(
        &self,
        vault: VaultId,
        awaiting_me: bool,
    ) -> Result<Vec<RequestView>, ClientError> {
        let query = if awaiting_me { "?awaiting=me" } else { "" };
        self.get(&format!("/vaults/{vault}/requests{query}")).await
    }

    /// One request with its votes.
    pub async fn request(
        &self,
        vault: VaultId,
        request: RequestId,
    ) -> Result<RequestView, ClientError> {
        self.get(&format!("/vaults/{vault}/requests/{request}"))
            .await
    }

    /// Casts a signed vote; an approval carries the share re-sealed to the node.
    pub async fn vote(
        &self,
        vault: VaultId,
        request: RequestId,
        vote: &SignedStatement,
        resealed_share: Option<&[u8]>,
    ) -> Result<RequestView, ClientError> {
        self.post(
            &format!("/vaults/{vault}/requests/{request}/votes"),
            &VoteUpload {
                vote: Base64::from(vote.to_bytes()),
                resealed_share: resealed_share.map(Base64::from),
            },
        )
        .await
    }

    /// Claims the oldest job waiting for this node (nodes); `None` when there is none.
    pub async fn claim_job(&self) -> Result<Option<JobClaim>, ClientError> {
        self.claim_job_waiting(std::time::Duration::ZERO).await
    }

    /// As [`Client::claim_job`], but when no job waits the server holds the claim up to
    /// `wait` (whole seconds, at most a minute) and answers as soon as one is queued for
    /// this node; `None` when none came.
    pub async fn claim_job_waiting(
        &self,
        wait: std::time::Duration,
    ) -> Result<Option<JobClaim>, ClientError> {
        let request = self
            .http
            .post(self.url("/jobs/claim"))
            .query(&[("wait", wait.as_secs())]);
        self.send(self.authorised(request)?).await
    }

    /// Reports a job's progress and renews its lease (nodes).
    pub async fn job_progress(
        &self,
        request: &str,
        lease_token: &str,
        progress_permille: u16,
        stage: &str,
    ) -> Result<Lease, ClientError> {
        self.post(
            &format!("/jobs/{request}/progress"),
            &JobProgress {
                lease_token: lease_token.to_owned(),
                progress_permille,
                stage: stage.to_owned(),
            },
        )
        .await
    }

    /// Fails a job with a reason (nodes).
    pub async fn fail_job(
        &self,
        request: &str,
        lease_token: &str,
        reason: &str,
    ) -> Result<(), ClientError> {
        self.post(
            &format!("/jobs/{request}/fail"),
            &JobFailure {
                lease_token: lease_token.to_owned(),
                reason: reason.to_owned(),
            },
        )
        .await
    }

    /// Hands a job back to the queue because the node is stopping (nodes).
    pub async fn return_job(&self, request: &str, lease_token: &str) -> Result<(), ClientError> {
        self.post(
            &format!("/jobs/{request}/return"),
            &JobReturn {
                lease_token: lease_token.to_owned(),
            },
        )
        .await
    }

    /// Completes a job with the sealed transcript, its signed manifest and the sealed shares
    /// of its key (nodes).
    pub async fn complete_job(
        &self,
        request: &str,
        lease_token: &str,
        manifest: &SignedStatement,
        transcript: &[u8],
        shares: &[(Fingerprint, Vec<u8>)],
    ) -> Result<TranscriptView, ClientError> {
        self.post(
            &format!("/jobs/{request}/complete"),
            &JobCompletion {
                lease_token: lease_token.to_owned(),
                manifest: Base64::from(manifest.to_bytes()),
                transcript: Base64::from(transcript),
                shares: sealed_uploads(shares),
            },
        )
        .await
    }

    /// The vault's jobs.
    pub async fn jobs(&self, vault: VaultId) -> Result<Vec<JobView>, ClientError> {
        self.get(&format!("/vaults/{vault}/jobs")).await
    }

    /// The vault's sealed transcripts.
    pub async fn transcripts(&self, vault: VaultId) -> Result<Vec<TranscriptView>, ClientError> {
        self.get(&format!("/vaults/{vault}/transcripts")).await
    }

    /// The caller's sealed share of a transcript's key.
    pub async fn transcript_share(
        &self,
        vault: VaultId,
        transcript: TranscriptId,
    ) -> Result<SealedShare, ClientError> {
        self.get(&format!("/vaults/{vault}/transcripts/{transcript}/share"))
            .await
    }

    /// Streams a sealed transcript into `sink`, refusing more than `max_len` bytes (the
    /// manifest's length).
    pub async fn download_transcript(
        &self,
        vault: VaultId,
        transcript: TranscriptId,
        max_len: u64,
        sink: &mut impl std::io::Write,
    ) -> Result<u64, ClientError> {
        self.download(
            &format!("/vaults/{vault}/transcripts/{transcript}/ciphertext"),
            None,
            max_len,
            sink,
        )
        .await
    }
}

fn sealed_uploads(shares: &[(Fingerprint, Vec<u8>)]) -> Vec<SealedShareUpload> {
    shares
        .iter()
        .map(|(member, sealed)| SealedShareUpload {
            member: member.to_hex(),
            sealed: Base64::from(sealed.as_slice()),
        })
        .collect()
}

/// Now, Unix seconds.
pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs() as i64)
}

/// A successful answer's JSON as `T`. When it does not decode, the error names the field
/// (`recordings[2].status`) and what was wrong with it, so that a refusal of a server's answer
/// says where the server went wrong.
fn decode_answer<T: DeserializeOwned>(body: &[u8]) -> Result<T, ClientError> {
    serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(body)).map_err(
        |error| {
            ClientError::Invalid(format!(
                "the server's answer does not decode at `{}`: {}",
                error.path(),
                error.inner()
            ))
        },
    )
}

/// The error a refusing answer carries.
async fn api_error(response: reqwest::Response) -> ClientError {
    let status = response.status();
    let body: ErrorBody = response.json().await.unwrap_or_else(|_| ErrorBody {
        code: "unknown".into(),
        message: format!("the server answered {status} without an error body"),
    });
    // The server's words reach a terminal: escape sequences in them are shown, not obeyed.
    ClientError::Api {
        status: status.as_u16(),
        code: checks::printable(&body.code),
        message: checks::printable(&body.message),
    }
}

fn public_keys(public: &PublicIdentity) -> PublicKeys {
    PublicKeys {
        recipient: public.recipient.to_string(),
        verifying_key: URL_SAFE_NO_PAD.encode(public.verifying_key.as_bytes()),
    }
}

/// A signed statement from an answer's (already base64-decoded) field.
fn statement(bytes: &[u8]) -> Result<SignedStatement, ClientError> {
    SignedStatement::from_bytes(bytes).map_err(|error| ClientError::Invalid(error.to_string()))
}

fn audit_entry(vault_id: VaultId, view: &AuditEntryView) -> Result<AuditEntry, ClientError> {
    let invalid =
        |what: &str| ClientError::Invalid(format!("audit entry {}: bad {what}", view.seq));
    let hash = |text: &str, what: &str| -> Result<[u8; 32], ClientError> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text, &mut bytes).map_err(|_| invalid(what))?;
        Ok(bytes)
    };
    Ok(AuditEntry {
        vault_id,
        seq: view.seq,
        time: view.time,
        actor: view.actor.clone(),
        action: view.action.clone(),
        subject: view.subject.clone(),
        statement: view.statement.as_ref().map(|bytes| bytes.to_vec()),
        prev_hash: hash(&view.prev_hash, "previous hash")?,
        hash: hash(&view.hash, "hash")?,
    })
}
