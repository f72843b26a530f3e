//! Released minutes from a member's device: the vault's search key (opened and checked
//! against an admin's commitment), released copies (their node's signature checked, opened
//! with the member's own key), blind search, and sharing keys with members who joined
//! later. Every check a member's device owes the protocol happens here, so the CLI, the
//! node and the tests share it.

use quorate_api::Base64;
use quorate_api::{
    Reindex, ReleaseCompletion, ReleasedView, SealedGrant, SearchKeyRotationUpload,
    SearchKeyShares, SearchKeyView, SearchQuery, SearchResults, TranscriptDocument, TranscriptView,
};
use quorate_crypto::{
    AgeSecretKey, Fingerprint, Identity, NodeId, Recipient, RecordingId, TranscriptId, VaultId,
    blind::{BlindToken, SearchKey},
    envelope,
    release::{
        self, Posting, ReleaseManifest, SearchKeyChain, SearchKeyCommitment, SearchKeyRotation,
        open_release_key, seal_release_key,
    },
    roster::Roster,
    statement::{NodeApproval, SignedStatement, StatementBody, TranscriptManifest},
};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::{Client, ClientError, checks, statement};

/// What a node's statement says about itself: for the checks every such statement gets.
struct NodeMade {
    vault: VaultId,
    transcript: TranscriptId,
    node: NodeId,
    made_at: i64,
}

/// A statement a node signs about a transcript.
trait NodeStatement: StatementBody {
    fn made(&self) -> NodeMade;
}

impl NodeStatement for TranscriptManifest {
    fn made(&self) -> NodeMade {
        NodeMade {
            vault: self.vault_id,
            transcript: self.transcript_id,
            node: self.node_id,
            made_at: self.created_at,
        }
    }
}

impl NodeStatement for ReleaseManifest {
    fn made(&self) -> NodeMade {
        NodeMade {
            vault: self.vault_id,
            transcript: self.transcript_id,
            node: self.node_id,
            made_at: self.created_at,
        }
    }
}

/// The most a device reserves before a released copy arrives (16 MiB: hours of minutes).
const INITIAL_COPY_CAPACITY: usize = 16 << 20;

fn invalid(message: impl Into<String>) -> ClientError {
    ClientError::Invalid(message.into())
}

/// The vault's search keys as this device opened them, each checked against the chain of
/// commitment and rotations admins signed.
#[derive(Debug)]
pub struct SearchKeys {
    /// The newest key's generation (0 until the key is rotated).
    pub generation: u64,
    /// The newest key: what new minutes are indexed under.
    pub current: SearchKey,
    /// The key before it, while released minutes are still indexed under it (and this
    /// device holds it): a search sends each word's token under both.
    pub previous: Option<SearchKey>,
    /// How many released transcripts the server says are still under an older key.
    pub reindexing: u64,
    /// The roster entry that removed a key holder after the newest key was made, if any:
    /// someone who left holds it, and nothing new may be indexed under it until an admin
    /// rotates it.
    pub stale_since: Option<u64>,
}

impl SearchKeys {
    /// A query's tokens: each distinct word's under the newest key (at most 32), and the
    /// same words' under the previous key while minutes are re-indexed.
    pub fn query(&self, words: &[String]) -> (Vec<BlindToken>, Option<Vec<BlindToken>>) {
        let mut distinct: Vec<&String> = Vec::new();
        for word in words {
            if !distinct.contains(&word) {
                distinct.push(word);
            }
        }
        distinct.truncate(32);
        let tokens = distinct
            .iter()
            .map(|word| self.current.token(word))
            .collect();
        let previous = self
            .previous
            .as_ref()
            .map(|key| distinct.iter().map(|word| key.token(word)).collect());
        (tokens, previous)
    }
}

/// What a node sends to complete a release job.
#[derive(Debug, Clone, Copy)]
pub struct ReleaseUpload<'a> {
    /// The node's signed release manifest.
    pub manifest: &'a SignedStatement,
    /// The released copy.
    pub copy: &'a [u8],
    /// The release key sealed to each member the manifest names.
    pub grants: &'a [(Fingerprint, Vec<u8>)],
    /// The blind-index postings the manifest's digest covers.
    pub postings: &'a [Posting],
    /// The search key generation the postings are under.
    pub search_key_generation: u64,
}

/// What [`Client::reindex`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reindexed {
    /// Released transcripts this device re-indexed under the newest key.
    pub reindexed: usize,
    /// Those another device re-indexed meanwhile.
    pub done_elsewhere: usize,
    /// Those this member cannot open (their release key is not sealed to them yet).
    pub unreadable: usize,
}

/// A released transcript, its node's signature and every binding checked, opened.
#[derive(Debug)]
pub struct Released {
    /// The node's release manifest.
    pub manifest: ReleaseManifest,
    /// The transcript.
    pub document: TranscriptDocument,
}

impl Client {
    /// The vault's search key as this caller sees it.
    pub async fn search_key_view(&self, vault: VaultId) -> Result<SearchKeyView, ClientError> {
        self.get(&format!("/vaults/{vault}/search-key")).await
    }

    /// Creates the search key (with `commitment`) or shares generation `generation` of it
    /// (admins).
    pub async fn share_search_key(
        &self,
        vault: VaultId,
        commitment: Option<&SignedStatement>,
        generation: u64,
        grants: Vec<SealedGrant>,
    ) -> Result<SearchKeyView, ClientError> {
        self.post(
            &format!("/vaults/{vault}/search-key"),
            &SearchKeyShares {
                commitment: commitment.map(|signed| Base64::from(signed.to_bytes())),
                generation,
                grants,
            },
        )
        .await
    }

    /// Replaces the vault's search key (admins): a fresh key, a rotation signed for
    /// `roster`'s head and naming the current key, and the new key sealed to every current
    /// member and approved node. Returns the new generation. Released minutes stay
    /// searchable under the old key until [`Client::reindex`] moves them.
    pub async fn rotate_search_key(
        &self,
        vault: VaultId,
        roster: &Roster,
        identity: &Identity,
    ) -> Result<u64, ClientError> {
        let view = self.search_key_view(vault).await?;
        let commitment = view.commitment.as_ref().ok_or_else(|| {
            invalid("the vault has no search key to rotate: its first admin's `quorate share-keys` makes it")
        })?;
        let chain = search_key_chain(roster, commitment, &view.rotations)?;
        let key = SearchKey::generate();
        let rotation = SearchKeyRotation {
            vault_id: vault,
            generation: chain.generation() + 1,
            previous_check: *chain
                .check_value(chain.generation())
                .expect("a chain holds its newest generation"),
            key_check: key.check_value(),
            roster_sequence: roster.len() - 1,
            roster_head: roster.head(),
            issued_at: crate::unix_now(),
        };
        let signed = SignedStatement::sign(&rotation, identity);
        let grants = self
            .search_key_holders(vault, roster)
            .await?
            .into_iter()
            .map(|(holder, recipient)| sealed_search_key(vault, &key, holder, &recipient))
            .collect::<Result<Vec<_>, ClientError>>()?;
        let _: SearchKeyView = self
            .post(
                &format!("/vaults/{vault}/search-key/rotations"),
                &SearchKeyRotationUpload {
                    rotation: Base64::from(signed.to_bytes()),
                    grants,
                },
            )
            .await?;
        Ok(rotation.generation)
    }

    /// Re-indexes every released transcript the server lists under an older search key
    /// (any member): opens each released copy here, checked as for reading, computes its
    /// postings under the newest key and sends them in place of the old. `progress` is
    /// called with (done, total) after each.
    pub async fn reindex(
        &self,
        vault: VaultId,
        roster: &Roster,
        identity: &Identity,
        mut progress: impl FnMut(usize, usize),
    ) -> Result<Reindexed, ClientError> {
        let keys = self
            .open_search_key(vault, roster, identity.age_key())
            .await?
            .ok_or_else(|| invalid("the vault's newest search key is not sealed to you yet: ask an admin to run `quorate share-keys`"))?;
        if let Some(removal) = keys.stale_since {
            return Err(invalid(format!(
                "the vault's newest search key was made before roster entry {removal} removed a member who holds it: an admin rotates it first (`quorate search-key rotate`)"
            )));
        }
        let behind: Vec<ReleasedView> = self
            .released(vault, None)
            .await?
            .into_iter()
            .filter(|view| view.key_generation < keys.generation)
            .collect();
        let me = identity.fingerprint().to_hex();
        let mut outcome = Reindexed::default();
        for (done, view) in behind.iter().enumerate() {
            if !view.members.contains(&me) {
                outcome.unreadable += 1;
            } else {
                let opened = self
                    .open_released(vault, roster, view, identity.age_key())
                    .await?;
                let postings = release::postings(
                    &keys.current,
                    opened
                        .document
                        .segments
                        .iter()
                        .map(|segment| segment.text.as_str()),
                );
                let upload = Reindex {
                    generation: keys.generation,
                    postings: Base64::from(packed_postings(&postings)),
                };
                let path = format!("/vaults/{vault}/released/{}/index", view.transcript_id);
                match self.put::<ReleasedView>(&path, &upload).await {
                    Ok(_) => outcome.reindexed += 1,
                    Err(error) if error.code() == Some("already_indexed") => {
                        outcome.done_elsewhere += 1;
                    }
                    Err(error) => return Err(error),
                }
            }
            progress(done + 1, behind.len());
        }
        Ok(outcome)
    }

    /// The vault's search keys, opened with `own` and checked against the chain of
    /// commitment and rotations admins of `roster` signed; `None` while the vault has none or
    /// the newest was not shared with the caller yet.
    pub async fn open_search_key(
        &self,
        vault: VaultId,
        roster: &Roster,
        own: &AgeSecretKey,
    ) -> Result<Option<SearchKeys>, ClientError> {
        let view = self.search_key_view(vault).await?;
        let (Some(commitment), Some(sealed)) = (&view.commitment, &view.sealed) else {
            return Ok(None);
        };
        let chain = search_key_chain(roster, commitment, &view.rotations)?;
        let generation = chain.generation();
        let current = open_checked(sealed, own, vault, &chain, generation)?;
        let previous = match &view.previous_sealed {
            Some(sealed) if generation > 0 => {
                Some(open_checked(sealed, own, vault, &chain, generation - 1)?)
            }
            _ => None,
        };
        Ok(Some(SearchKeys {
            generation,
            current,
            previous,
            reindexing: view.reindexing,
            stale_since: chain.stale_since(roster),
        }))
    }

    /// Completes a release job (nodes).
    pub async fn complete_release(
        &self,
        request: &str,
        lease_token: &str,
        release: ReleaseUpload<'_>,
    ) -> Result<ReleasedView, ClientError> {
        self.post(
            &format!("/jobs/{request}/release"),
            &ReleaseCompletion {
                lease_token: lease_token.to_owned(),
                manifest: Base64::from(release.manifest.to_bytes()),
                copy: Base64::from(release.copy),
                grants: release
                    .grants
                    .iter()
                    .map(|(member, sealed)| SealedGrant {
                        holder: member.to_hex(),
                        sealed: Base64::from(sealed.as_slice()),
                    })
                    .collect(),
                postings: Base64::from(packed_postings(release.postings)),
                search_key_generation: release.search_key_generation,
            },
        )
        .await
    }

    /// The vault's released transcripts, optionally of one recording only.
    pub async fn released(
        &self,
        vault: VaultId,
        recording: Option<RecordingId>,
    ) -> Result<Vec<ReleasedView>, ClientError> {
        let filter = recording.map_or_else(String::new, |id| format!("?recording={id}"));
        self.get(&format!("/vaults/{vault}/released{filter}")).await
    }

    /// Adds members to a released copy: its key sealed to each.
    pub async fn add_release_grants(
        &self,
        vault: VaultId,
        transcript: TranscriptId,
        grants: Vec<SealedGrant>,
    ) -> Result<ReleasedView, ClientError> {
        self.post(
            &format!("/vaults/{vault}/released/{transcript}/grants"),
            &grants,
        )
        .await
    }

    /// Ranked hits for blind tokens (with the same words' tokens under the previous key while
    /// minutes are re-indexed).
    pub async fn search(
        &self,
        vault: VaultId,
        (tokens, previous): (&[BlindToken], Option<&[BlindToken]>),
        limit: u32,
        offset: u32,
    ) -> Result<SearchResults, ClientError> {
        let hex = |tokens: &[BlindToken]| tokens.iter().map(ToString::to_string).collect();
        self.post(
            &format!("/vaults/{vault}/search"),
            &SearchQuery {
                tokens: hex(tokens),
                previous_tokens: previous.map(hex),
                limit: Some(limit),
                offset: Some(offset),
            },
        )
        .await
    }

    /// The release manifest of `view`, verified: signed by the node it names, whose approval
    /// an admin of `roster` signed.
    pub async fn release_manifest(
        &self,
        vault: VaultId,
        roster: &Roster,
        view: &ReleasedView,
    ) -> Result<ReleaseManifest, ClientError> {
        self.node_statement(vault, roster, &view.manifest, &view.transcript_id)
            .await
    }

    /// A transcript manifest, verified: signed by the node it names, whose approval an admin
    /// of `roster` signed.
    pub async fn transcript_manifest(
        &self,
        vault: VaultId,
        roster: &Roster,
        view: &TranscriptView,
    ) -> Result<TranscriptManifest, ClientError> {
        self.transcript_manifest_of(vault, roster, &view.manifest, &view.transcript_id)
            .await
    }

    /// [`Client::transcript_manifest`] of the signed bytes of `transcript`'s manifest.
    pub(crate) async fn transcript_manifest_of(
        &self,
        vault: VaultId,
        roster: &Roster,
        bytes: &[u8],
        transcript: &str,
    ) -> Result<TranscriptManifest, ClientError> {
        self.node_statement(vault, roster, bytes, transcript).await
    }

    /// A node's statement about `transcript` (its manifest, or its release manifest),
    /// verified: for this vault and transcript, signed by the node it names while an admin's
    /// approval vouched for it.
    async fn node_statement<T: NodeStatement>(
        &self,
        vault: VaultId,
        roster: &Roster,
        bytes: &[u8],
        transcript: &str,
    ) -> Result<T, ClientError> {
        let verified = statement(bytes)?
            .verify::<T>()
            .map_err(|error| invalid(format!("a {}: {error}", T::KIND.as_str())))?;
        let facts = verified.statement.made();
        if facts.vault != vault || facts.transcript.to_string() != transcript {
            return Err(invalid(format!(
                "the server sent the {} of another transcript",
                T::KIND.as_str()
            )));
        }
        self.check_node_signer(
            vault,
            roster,
            facts.node,
            verified.signer.as_bytes(),
            facts.made_at,
        )
        .await?;
        Ok(verified.statement)
    }

    /// Refuses a statement unless `signer` is the key of `node` as an admin approved it, and
    /// that approval vouches for a statement made at `made_at` (see
    /// [`checks::approval_vouches_for`]).
    async fn check_node_signer(
        &self,
        vault: VaultId,
        roster: &Roster,
        node: NodeId,
        signer: &[u8; 32],
        made_at: i64,
    ) -> Result<(), ClientError> {
        let view = self.node(vault, node).await?;
        let approval = view
            .approval
            .ok_or_else(|| invalid(format!("node {node} was never approved")))?;
        let (approval, _) = roster
            .verify_by_admin::<NodeApproval>(&statement(&approval)?)
            .map_err(|error| invalid(format!("node {node}'s approval: {error}")))?;
        if approval.statement.node_id != node
            || approval.statement.node.verifying_key.as_bytes() != signer
        {
            return Err(invalid(format!(
                "a statement is not signed by the key an admin approved for node {node}"
            )));
        }
        self.note_approval(&approval.statement)?;
        checks::approval_vouches_for(&approval.statement, made_at)
            .map_err(|error| invalid(error.to_string()))
    }

    /// The release key of a released transcript, opened with `own` (checked against its
    /// manifest).
    pub async fn release_key(
        &self,
        vault: VaultId,
        manifest: &ReleaseManifest,
        own: &AgeSecretKey,
    ) -> Result<AgeSecretKey, ClientError> {
        let grant: SealedGrant = self
            .get(&format!(
                "/vaults/{vault}/released/{}/grant",
                manifest.transcript_id
            ))
            .await?;
        open_release_key(
            &grant.sealed,
            own,
            manifest,
        )
        .map_err(|error| {
            invalid(format!(
                "your key to these minutes does not open them ({error}): ask an admin to seal it to you again with `quorate share-keys --member YOUR-FINGERPRINT`"
            ))
        })
    }

    /// Downloads a released copy, checks it against its verified manifest and opens it in
    /// memory.
    pub async fn open_released(
        &self,
        vault: VaultId,
        roster: &Roster,
        view: &ReleasedView,
        own: &AgeSecretKey,
    ) -> Result<Released, ClientError> {
        let manifest = self.release_manifest(vault, roster, view).await?;
        let key = self.release_key(vault, &manifest, own).await?;
        // Reserve no more than a typical copy up front: the length is a node's word, and the
        // download below stops at it anyway.
        let mut copy = Vec::with_capacity(
            usize::try_from(manifest.ciphertext_len)
                .unwrap_or(usize::MAX)
                .min(INITIAL_COPY_CAPACITY),
        );
        self.download(
            &format!(
                "/vaults/{vault}/released/{}/ciphertext",
                manifest.transcript_id
            ),
            None,
            manifest.ciphertext_len,
            &mut copy,
        )
        .await?;
        if copy.len() as u64 != manifest.ciphertext_len
            || <[u8; 32]>::from(Sha256::digest(&copy)) != manifest.ciphertext_sha256
        {
            return Err(invalid(
                "the released copy differs from the one its node signed",
            ));
        }
        let mut plaintext = Zeroizing::new(Vec::with_capacity(copy.len()));
        envelope::decrypt(&copy[..], &mut *plaintext, &key)
            .map_err(|error| invalid(format!("opening the released copy: {error}")))?;
        let document: TranscriptDocument = serde_json::from_slice(&plaintext)
            .map_err(|error| invalid(format!("the released transcript: {error}")))?;
        if document.recording_id != manifest.recording_id.to_string() {
            return Err(invalid(
                "the released transcript names another recording than its manifest",
            ));
        }
        Ok(Released { manifest, document })
    }

    /// Shares what this device can open with those who lack it: the search key with current
    /// members and approved nodes (admins; see [`SearchKeyRole`]), and every released copy
    /// with current members (any member who can open it). With `renew_for` (an admin's
    /// device), every released key is sealed again to that member even when they hold one:
    /// another member may have sealed them a bad key first, and an admin's grant replaces it.
    /// Returns how many keys were sealed.
    pub async fn share_keys(
        &self,
        vault: VaultId,
        roster: &Roster,
        identity: &Identity,
        role: SearchKeyRole,
        renew_for: Option<&Fingerprint>,
    ) -> Result<usize, ClientError> {
        let mut shared = 0;
        let admin = role != SearchKeyRole::Member;
        if admin {
            shared += self
                .share_search_key_with_all(vault, roster, identity, role)
                .await?;
        }
        let me = identity.fingerprint();
        for view in self.released(vault, None).await? {
            if !view.members.contains(&me.to_hex()) {
                continue;
            }
            let missing: Vec<_> = roster
                .members()
                .iter()
                .filter(|member| {
                    !view.members.contains(&member.fingerprint.to_hex())
                        || (admin && renew_for == Some(&member.fingerprint))
                })
                .collect();
            if missing.is_empty() {
                continue;
            }
            let manifest = self.release_manifest(vault, roster, &view).await?;
            let key = self
                .release_key(vault, &manifest, identity.age_key())
                .await?;
            let grants = missing
                .iter()
                .map(|member| {
                    Ok(SealedGrant {
                        holder: member.fingerprint.to_hex(),
                        sealed: Base64::from(
                            seal_release_key(
                                vault,
                                manifest.transcript_id,
                                &key,
                                &member.public.recipient,
                            )
                            .map_err(|error| invalid(error.to_string()))?,
                        ),
                    })
                })
                .collect::<Result<Vec<_>, ClientError>>()?;
            shared += grants.len();
            self.add_release_grants(vault, manifest.transcript_id, grants)
                .await?;
        }
        Ok(shared)
    }

    async fn share_search_key_with_all(
        &self,
        vault: VaultId,
        roster: &Roster,
        identity: &Identity,
        role: SearchKeyRole,
    ) -> Result<usize, ClientError> {
        let view = self.search_key_view(vault).await?;
        let (key, generation, commitment) = match (&view.commitment, &view.sealed) {
            // Only the first admin's device makes the search key, once. From any other
            // device, or from that one once it has made or seen it, "there is no key" is a
            // lie meant to fork it: a second valid commitment would split devices between two
            // keys, one of them made at the server's choice of moment.
            (None, _) if role != SearchKeyRole::Make => {
                return Err(invalid(
                    "the server says this vault has no search key, but its first admin's device makes one at enrolment: the server is hiding it. Nothing was made; tell the first admin (if their enrolment stopped before the key was made, their `quorate share-keys` makes it)",
                ));
            }
            (None, _) => {
                let key = SearchKey::generate();
                let commitment = SignedStatement::sign(
                    &SearchKeyCommitment {
                        vault_id: vault,
                        key_check: key.check_value(),
                        issued_at: crate::unix_now(),
                    },
                    identity,
                );
                (key, 0, Some(commitment))
            }
            (Some(_), Some(_)) => {
                let keys = self
                    .open_search_key(vault, roster, identity.age_key())
                    .await?
                    .ok_or_else(|| invalid("the search key vanished"))?;
                (keys.current, keys.generation, None)
            }
            // Another admin made the key and has not shared it with this one yet.
            (Some(_), None) => return Ok(0),
        };
        let holders = self.search_key_holders(vault, roster).await?;
        let grants = holders
            .into_iter()
            .filter(|(holder, _)| commitment.is_some() || !view.holders.contains(holder))
            .map(|(holder, recipient)| sealed_search_key(vault, &key, holder, &recipient))
            .collect::<Result<Vec<_>, ClientError>>()?;
        if grants.is_empty() {
            return Ok(0);
        }
        let count = grants.len();
        self.share_search_key(vault, commitment.as_ref(), generation, grants)
            .await?;
        Ok(count)
    }

    /// Who holds the search key: every current member of `roster`, and every node an admin
    /// of it approves now (not revoked, not lapsed), with the recipient to seal it to.
    async fn search_key_holders(
        &self,
        vault: VaultId,
        roster: &Roster,
    ) -> Result<Vec<(String, Recipient)>, ClientError> {
        let mut holders: Vec<(String, Recipient)> = roster
            .members()
            .iter()
            .map(|member| (member.fingerprint.to_hex(), member.public.recipient))
            .collect();
        for node in self.nodes(vault).await? {
            if node.status != quorate_api::NodeStatus::Approved {
                continue;
            }
            let Some(approval) = &node.approval else {
                continue;
            };
            let (approval, _) = roster
                .verify_by_admin::<NodeApproval>(&statement(approval)?)
                .map_err(|error| invalid(format!("node {}'s approval: {error}", node.node_id)))?;
            // An approval older than one this device saw (one from before a revocation, say)
            // is refused, not sealed to.
            self.note_approval(&approval.statement)?;
            let node_id: NodeId = node
                .node_id
                .parse()
                .map_err(|_| invalid("a malformed node ID"))?;
            if approval.statement.node_id == node_id
                && approval.statement.check_active(crate::unix_now()).is_ok()
            {
                holders.push((node_id.to_string(), approval.statement.node.recipient));
            }
        }
        Ok(holders)
    }
}

/// What a device may do with the vault's search key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchKeyRole {
    /// A member: shares released copies only.
    Member,
    /// An admin: shares the search key it holds with those who lack it.
    Share,
    /// The first admin's device, which has neither made nor seen the key yet: makes it when
    /// there is none. No other device ever makes one.
    Make,
}

/// The vault's chain of search keys, verified against `roster`: the commitment and every
/// rotation signed by an admin, each rotation naming the key before it.
fn search_key_chain(
    roster: &Roster,
    commitment: &[u8],
    rotations: &[Base64],
) -> Result<SearchKeyChain, ClientError> {
    let rotations = rotations
        .iter()
        .map(|bytes| statement(bytes))
        .collect::<Result<Vec<_>, ClientError>>()?;
    SearchKeyChain::verify(roster, &statement(commitment)?, &rotations)
        .map_err(|error| invalid(format!("the search key's commitments: {error}")))
}

/// A sealed copy of generation `generation`'s key, opened with `own` and checked against
/// the chain.
fn open_checked(
    sealed: &[u8],
    own: &AgeSecretKey,
    vault: VaultId,
    chain: &SearchKeyChain,
    generation: u64,
) -> Result<SearchKey, ClientError> {
    let key = SearchKey::open(sealed, own, vault)
        .map_err(|error| invalid(format!("the sealed search key: {error}")))?;
    chain
        .check_key(generation, &key)
        .map_err(|error| invalid(format!("the sealed search key: {error}")))?;
    Ok(key)
}

/// `key` sealed to one holder.
fn sealed_search_key(
    vault: VaultId,
    key: &SearchKey,
    holder: String,
    recipient: &Recipient,
) -> Result<SealedGrant, ClientError> {
    Ok(SealedGrant {
        holder,
        sealed: Base64::from(
            key.seal(vault, std::slice::from_ref(recipient))
                .map_err(|error| invalid(error.to_string()))?,
        ),
    })
}

/// Postings as uploaded: 24-byte records (token, segment and tf big-endian).
fn packed_postings(postings: &[Posting]) -> Vec<u8> {
    let mut packed = Vec::with_capacity(postings.len() * 24);
    for posting in postings {
        packed.extend(posting.token.0);
        packed.extend(posting.segment.to_be_bytes());
        packed.extend(posting.tf.to_be_bytes());
    }
    packed
}
