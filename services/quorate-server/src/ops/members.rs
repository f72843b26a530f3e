//! Vaults, invites, member enrolment (pending until an admin signs) and roster changes.

use axum::http::StatusCode;
use quorate_api::Base64;
use quorate_api::{
    CodePurpose, CreatedVault, Enrolled, Invite, InvitePurpose, MemberRole, MemberStatus,
};
use quorate_crypto::{
    PublicIdentity, VaultId,
    roster::Roster,
    statement::{Role, RosterChange, RosterEntry, SignedStatement},
};

use crate::{
    App,
    bootstrap::{code_hash, new_code},
    error::Refusal,
    ops::{requests::Member, roster::RosterError},
    store::{self, Event, Tx},
};

const DEFAULT_INVITE_TTL: i64 = 86_400;
const MAX_INVITE_TTL: i64 = 7 * 86_400;

/// Why an enrolment, invite or roster change was refused, or failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum MemberError {
    #[error("{0}")]
    InvalidStatement(#[from] quorate_crypto::Error),
    #[error("ttl_seconds must be between 60 and {MAX_INVITE_TTL}")]
    InvalidTtl,
    #[error("{}", invalid_code_message(.0))]
    InvalidCode(CodePurpose),
    #[error("these keys are already enrolled in this vault")]
    AlreadyEnrolled,
    #[error("this vault already has its first admin")]
    AlreadyHasAdmin,
    #[error("nobody enrolled with those keys: the member must redeem an invite first")]
    NotEnrolled,
    #[error(
        "these keys enrolled as a {enrolled} and cannot be signed on as a {role}: a recorder is approved with `quorate recorders approve`, a member with `quorate members approve`"
    )]
    RoleMismatch {
        /// The role the invite was for.
        enrolled: MemberRole,
        /// The role the entry grants.
        role: MemberRole,
    },
    #[error("the roster changed meanwhile: fetch it, verify it and sign again")]
    RosterChanged,
    #[error("the vault has no genesis entry")]
    NoGenesis,
    #[error("a stored vault ID does not parse: {0}")]
    CorruptVaultId(quorate_crypto::Error),
    #[error(transparent)]
    Roster(#[from] RosterError),
    #[error("database error: {0}")]
    Store(#[from] sqlx::Error),
}

fn invalid_code_message(purpose: &CodePurpose) -> String {
    if *purpose == CodePurpose::FirstAdmin {
        "the enrolment code is unknown, used or expired: ask the operator to restart the server for a new one".into()
    } else {
        format!("the {purpose} invite code is unknown, used or expired: ask an admin for a new one")
    }
}

impl Refusal for MemberError {
    fn refusal(&self) -> Option<(StatusCode, &'static str)> {
        use MemberError::*;
        Some(match self {
            InvalidStatement(_) => (StatusCode::BAD_REQUEST, "invalid_statement"),
            InvalidTtl => (StatusCode::BAD_REQUEST, "invalid_ttl"),
            InvalidCode(_) => (StatusCode::BAD_REQUEST, "invalid_code"),
            AlreadyEnrolled | AlreadyHasAdmin => (StatusCode::CONFLICT, "already_enrolled"),
            NotEnrolled => (StatusCode::BAD_REQUEST, "not_enrolled"),
            RoleMismatch { .. } => (StatusCode::CONFLICT, "role_mismatch"),
            RosterChanged => (StatusCode::CONFLICT, "roster_changed"),
            NoGenesis | CorruptVaultId(_) | Roster(_) | Store(_) => return None,
        })
    }
}

/// Marks an unused, unexpired invite for `purpose` used and returns its vault, inside the
/// enrolment's transaction (so a failed enrolment leaves the invite usable).
pub(crate) async fn redeem_invite(
    tx: &mut Tx,
    code: &str,
    purpose: CodePurpose,
    now: i64,
) -> Result<VaultId, MemberError> {
    let vault = store::codes::redeem(tx, &code_hash(code), purpose, now)
        .await?
        .ok_or(MemberError::InvalidCode(purpose))?;
    vault.parse().map_err(MemberError::CorruptVaultId)
}

/// What an enrolment answers besides the fingerprint: the vault's genesis entry, which the
/// enrolling device pins.
pub(crate) async fn enrolled(
    tx: &mut Tx,
    vault: VaultId,
    fingerprint: String,
) -> Result<Enrolled, MemberError> {
    let vault = vault.to_string();
    let genesis = store::roster::genesis(tx, &vault)
        .await?
        .ok_or(MemberError::NoGenesis)?;
    Ok(Enrolled {
        vault_id: vault,
        roster_genesis: hex::encode(genesis.digest),
        genesis_entry: Base64::from(genesis.statement),
        fingerprint,
    })
}

/// Redeems the bootstrap code with the first admin's self-signed genesis entry: in one
/// transaction the code is used, the entry stored and the admin made an active member.
pub(crate) async fn enrol_first_admin(
    app: &App,
    code: &str,
    genesis: &SignedStatement,
    now: i64,
) -> Result<Enrolled, MemberError> {
    let mut tx = app.db.begin().await?;
    let vault_id = redeem_invite(&mut tx, code, CodePurpose::FirstAdmin, now).await?;
    let vault = vault_id.to_string();
    let roster = Roster::verify(vault_id, std::slice::from_ref(genesis), None)?;
    let admin = &roster.members()[0];
    debug_assert_eq!(admin.role, Role::Admin);
    let statement = genesis.to_bytes();
    if !store::roster::insert(&mut tx, &vault, 0, &statement, &genesis.digest(), now).await? {
        return Err(MemberError::AlreadyHasAdmin);
    }
    let member = store::members::NewMember {
        vault: &vault,
        public: &admin.public,
        name: &admin.name,
        role: MemberRole::Admin,
        status: MemberStatus::Active,
        now,
    };
    store::members::insert(&mut tx, &member).await?;
    let fingerprint = admin.fingerprint.to_hex();
    tx.audit(
        vault_id,
        now,
        Event::by(&fingerprint, "roster.genesis", &fingerprint, &statement),
    );
    let enrolled = enrolled(&mut tx, vault_id, fingerprint).await?;
    tx.commit().await?;
    tracing::info!(vault = %vault_id, "first admin enrolled");
    Ok(enrolled)
}

/// A one-time, expiring invite for a member or a node, made by `admin`.
pub(crate) async fn invite(
    app: &App,
    admin: Member<'_>,
    purpose: InvitePurpose,
    ttl: Option<i64>,
    now: i64,
) -> Result<Invite, MemberError> {
    let ttl = ttl.unwrap_or(DEFAULT_INVITE_TTL);
    if !(60..=MAX_INVITE_TTL).contains(&ttl) {
        return Err(MemberError::InvalidTtl);
    }
    let code = new_code();
    let vault = admin.vault.to_string();
    let mut tx = app.db.begin().await?;
    store::codes::insert(
        &mut tx,
        &code_hash(&code),
        &vault,
        purpose.into(),
        now,
        now + ttl,
    )
    .await?;
    let action = format!("invite.created.{purpose}");
    tx.audit(
        admin.vault,
        now,
        Event {
            actor: admin.fingerprint,
            action: &action,
            subject: "",
            statement: None,
        },
    );
    tx.commit().await?;
    Ok(Invite {
        code: code.to_string(),
        expires_at: now + ttl,
    })
}

/// Redeems a member or recorder invite with the enrolling device's public keys; it stays
/// pending until an admin signs its roster entry after comparing fingerprints, with the
/// role the invite was for.
pub(crate) async fn enrol_member(
    app: &App,
    code: &str,
    public: &PublicIdentity,
    name: &str,
    now: i64,
) -> Result<Enrolled, MemberError> {
    let mut tx = app.db.begin().await?;
    let hash = code_hash(code);
    let (purpose, role, action) = match store::codes::lookup(&mut tx, &hash, now).await? {
        Some(code) if code.purpose == CodePurpose::Recorder => (
            CodePurpose::Recorder,
            MemberRole::Recorder,
            "recorder.enrolled",
        ),
        _ => (CodePurpose::Member, MemberRole::Member, "member.enrolled"),
    };
    let vault_id = redeem_invite(&mut tx, code, purpose, now).await?;
    let vault = vault_id.to_string();
    let member = store::members::NewMember {
        vault: &vault,
        public,
        name,
        role,
        status: MemberStatus::Pending,
        now,
    };
    if !store::members::insert(&mut tx, &member).await? {
        return Err(MemberError::AlreadyEnrolled);
    }
    let fingerprint = public.fingerprint().to_hex();
    finish_enrolment(tx, vault_id, public, (action, &fingerprint), now).await
}

/// Ends an enrolment's transaction: audits `event` (an action and its subject) by the
/// enrolled keys, commits, and answers with the genesis entry the device pins.
pub(crate) async fn finish_enrolment(
    mut tx: Tx,
    vault_id: VaultId,
    public: &PublicIdentity,
    (action, subject): (&str, &str),
    now: i64,
) -> Result<Enrolled, MemberError> {
    let fingerprint = public.fingerprint().to_hex();
    let event = Event {
        actor: &fingerprint,
        action,
        subject,
        statement: None,
    };
    tx.audit(vault_id, now, event);
    let enrolled = enrolled(&mut tx, vault_id, fingerprint).await?;
    tx.commit().await?;
    Ok(enrolled)
}

/// Appends an entry `admin` signed (an addition or a removal) after replaying the chain with
/// it, as every device does, then applies it to the member table (a removal ends the member's
/// sessions). Returns the entry's sequence number.
pub(crate) async fn append_roster(
    app: &App,
    admin: Member<'_>,
    signed: &SignedStatement,
    now: i64,
) -> Result<u64, MemberError> {
    let vault = admin.vault.to_string();
    let mut tx = app.db.begin().await?;
    // Roster changes take turns with re-share deals, new shares and swaps, which check the
    // roster head under the same lock.
    store::vaults::lock(&mut tx, &vault).await?;
    let mut roster = (*app.rosters.verified(&mut tx, admin.vault).await?).clone();
    let sequence = roster.len();
    roster.apply(signed)?;
    let entry = signed.verify::<RosterEntry>()?.statement;
    let fingerprint = entry.member.fingerprint().to_hex();
    match entry.change {
        RosterChange::Add => {
            // Only someone who enrolled with exactly these keys can be added, and with a
            // role of the kind they were invited for: a recording machine never becomes a
            // share holder by an admin's slip, nor a member a recorder.
            let role = entry.role.into();
            match store::members::enrolled_role(&mut tx, &vault, &fingerprint).await? {
                None => return Err(MemberError::NotEnrolled),
                Some(enrolled) if is_recorder(enrolled) != is_recorder(role) => {
                    return Err(MemberError::RoleMismatch { enrolled, role });
                }
                Some(_) => {}
            }
            if !store::members::activate(&mut tx, &vault, &fingerprint, role, &entry.name).await? {
                return Err(MemberError::NotEnrolled);
            }
        }
        RosterChange::Remove => store::members::remove(&mut tx, &vault, &fingerprint).await?,
    }
    let statement = signed.to_bytes();
    if !store::roster::insert(&mut tx, &vault, sequence, &statement, &signed.digest(), now).await? {
        return Err(MemberError::RosterChanged);
    }
    let action = match entry.change {
        RosterChange::Add => "roster.added",
        RosterChange::Remove => "roster.removed",
    };
    tx.audit(
        admin.vault,
        now,
        Event::by(admin.fingerprint, action, &fingerprint, &statement),
    );
    // An open re-share moves keys to the roster it was opened for, which this entry ends:
    // it can never complete, and its sealed sub-shares go now.
    for (reshare, subject) in store::reshares::open_in_vault(&mut tx, &vault).await? {
        store::reshares::abandon(&mut tx, &reshare).await?;
        tx.audit(admin.vault, now, Event::server("reshare.dropped", &subject));
    }
    tx.commit().await?;
    tracing::info!(vault = %vault, sequence, "roster entry appended");
    Ok(sequence)
}

fn is_recorder(role: MemberRole) -> bool {
    role == MemberRole::Recorder
}

/// Creates another vault named `name` (by an admin of any vault), with the one-time code
/// for its first admin.
pub(crate) async fn create_vault(
    app: &App,
    admin: Member<'_>,
    name: &str,
    now: i64,
) -> Result<CreatedVault, MemberError> {
    let vault_id = VaultId::random();
    let mut tx = app.db.begin().await?;
    crate::bootstrap::create_vault(&mut tx, vault_id, name, now, admin.fingerprint).await?;
    let code = crate::bootstrap::issue_first_admin_code(
        &mut tx,
        vault_id,
        now,
        app.config.enrolment_code_ttl,
    )
    .await?;
    tx.commit().await?;
    Ok(CreatedVault {
        vault_id: vault_id.to_string(),
        first_admin_code: code.code.to_string(),
        expires_at: code.expires_at,
    })
}
