//! The commands of `quorate`.

use quorate_api::{CodePurpose, InvitePurpose, MemberRole, MemberStatus};
use quorate_client::{Client, checks::printable};
use quorate_crypto::{
    Fingerprint, Identity, IdentityFile, NodeId,
    identity::DEFAULT_WORK_FACTOR,
    roster::{Roster, RosterMember},
    statement::{NodeApproval, Role, RosterChange, SignedStatement, VaultPolicy},
};
use serde_json::json;

use super::{
    AuditAction, Command, Context, DeviceError, MembersAction, NodesAction, PolicyAction, Session,
    parse_id, quorum,
    state::{Pins, passphrase, private_folder, write_private},
};

pub(super) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs() as i64)
}

pub(super) async fn run(context: &mut Context, command: Command) -> Result<(), DeviceError> {
    match command {
        Command::Keygen { out, force } => keygen(context, out, force),
        Command::Enroll {
            code,
            name,
            genesis,
        } => enroll(context, &code, name, genesis.as_deref()).await,
        Command::Connect { genesis } => connect(context, &genesis).await,
        Command::Members { action } => members(context, action).await,
        Command::Recorders { action } => super::recorders::recorders(context, action).await,
        Command::Policy { action } => policy(context, action).await,
        Command::Retention { action } => super::records::retention(context, action).await,
        Command::Holds { action } => super::records::holds(context, action).await,
        Command::Reshare => super::reshare::reshare(context).await,
        Command::Nodes { action } => nodes(context, action).await,
        Command::Upload(upload) => super::upload::upload(context, upload).await,
        Command::Watch(args) => super::watch::watch(context, args).await,
        Command::Recordings => quorum::recordings(context).await,
        Command::Request {
            recording,
            node,
            purpose,
            reason,
            hours,
            language,
        } => {
            quorum::request(
                context,
                &recording,
                &node,
                purpose.into(),
                &reason,
                hours,
                language,
            )
            .await
        }
        Command::Requests { all } => quorum::requests(context, all).await,
        Command::Approve { request, yes } => quorum::vote(context, &request, true, yes, "").await,
        Command::Deny {
            request,
            reason,
            yes,
        } => quorum::vote(context, &request, false, yes, &reason).await,
        Command::Search { query, limit, page } => {
            super::minutes::search(context, &query, limit, page).await
        }
        Command::Transcript {
            recording,
            format,
            out,
        } => super::minutes::transcript(context, &recording, &format, out).await,
        Command::SearchKey { action } => super::minutes::search_key(context, action).await,
        Command::ShareKeys { member } => {
            super::minutes::share_keys_command(context, member.as_deref()).await
        }
        Command::Audit { action } => match action {
            AuditAction::Verify => quorum::audit_verify(context).await,
            AuditAction::Export { out } => quorum::audit_export(context, out).await,
        },
    }
}

fn keygen(
    context: &mut Context,
    out: Option<std::path::PathBuf>,
    force: bool,
) -> Result<(), DeviceError> {
    let path = out.unwrap_or_else(|| context.state.default_identity_path());
    if path.exists() && !force {
        return Err(DeviceError::Usage(format!(
            "{} exists already: keep it (it is your identity), or pass --force to replace it",
            path.display()
        )));
    }
    let passphrase = passphrase("Passphrase for the new identity: ", true)?;
    let identity = Identity::generate();
    let file = IdentityFile::to_protected(&identity, &passphrase, DEFAULT_WORK_FACTOR)
        .map_err(|error| DeviceError::Local(format!("cannot protect the identity: {error}")))?;
    if let Some(parent) = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
    {
        private_folder(parent)?;
    }
    write_private(&path, &file)?;
    // The first identity becomes the default; another one never replaces it silently.
    let note = match &context.state.settings.identity {
        Some(current) if *current != path => format!(
            "\nYour default identity stays {}; use this one with --identity {}.",
            current.display(),
            path.display()
        ),
        _ => {
            context.state.settings.identity = Some(path.clone());
            context.state.save()?;
            String::new()
        }
    };
    let fingerprint = identity.fingerprint();
    context.print(
        &format!(
            "Identity written to {} (passphrase-protected).\nFingerprint: {}\n\nKeep the file and its passphrase safe: they are your keys, and nobody can recover them.{note}",
            path.display(),
            fingerprint.short()
        ),
        &json!({ "identity": path, "fingerprint": fingerprint.short(), "fingerprint_hex": fingerprint.to_hex() }),
    );
    Ok(())
}

async fn enroll(
    context: &mut Context,
    code: &str,
    name: Option<String>,
    expected_genesis: Option<&str>,
) -> Result<(), DeviceError> {
    let server = context.server()?;
    let expected_genesis = expected_genesis.map(parse_genesis).transpose()?;
    let identity = super::state::read_identity(&context.identity_path())?;
    let name = name
        .or_else(|| std::env::var("USER").ok())
        .filter(|name| !name.trim().is_empty())
        .ok_or_else(|| DeviceError::Usage("give your name with --name".into()))?;
    let client = Client::new(&server);
    let info = client.lookup_code(code).await?;
    let vault: quorate_crypto::VaultId = info
        .vault_id
        .parse()
        .map_err(|_| DeviceError::Refused("the server named a malformed vault ID".into()))?;
    let recorder = info.purpose == CodePurpose::Recorder;
    let (enrolled, first_admin) = match info.purpose {
        CodePurpose::FirstAdmin => {
            let genesis =
                Roster::genesis_entry(vault, &identity, &name, now()).map_err(|error| {
                    DeviceError::Usage(format!("cannot sign your genesis entry: {error}"))
                })?;
            let enrolled = client.enrol_first_admin(code, &genesis).await?;
            if enrolled.roster_genesis != hex::encode(genesis.digest()) {
                return Err(DeviceError::Refused(
                    "the server answered with a genesis other than the one this device signed"
                        .into(),
                ));
            }
            (enrolled, true)
        }
        CodePurpose::Member | CodePurpose::Recorder => (
            client.enrol_member(code, &name, &identity.public()).await?,
            false,
        ),
        CodePurpose::Node => {
            return Err(DeviceError::Usage(
                "this is a node invite: run `quorate-node enroll` on the node".into(),
            ));
        }
    };
    if enrolled.vault_id != vault.to_string() {
        return Err(DeviceError::Refused(
            "the server enrolled you in another vault than the code names: nothing was pinned"
                .into(),
        ));
    }
    // What is pinned and shown is computed here from the checked genesis entry, never the
    // server's own strings.
    let (founder, genesis) =
        first_admin_of(vault, &enrolled.roster_genesis, &enrolled.genesis_entry)?;
    if let Some(expected) = &expected_genesis
        && genesis != *expected
    {
        return Err(DeviceError::Refused(format!(
            "the server names genesis {genesis} for this vault, not the {expected} you were given: nothing was pinned. The server may be showing you a vault of its own; tell the admin who invited you"
        )));
    }
    context.state.settings.server = Some(server);
    context.state.settings.vault = Some(vault.to_string());
    context.state.settings.identity = Some(context.identity_path());
    context.state.settings.vaults.insert(
        vault.to_string(),
        Pins {
            genesis: genesis.clone(),
            ..Pins::default()
        },
    );
    context.state.save()?;
    if first_admin {
        // The vault's search key is made on the first admin's device, sealed to them only.
        let session = context.session().await?;
        super::minutes::share_keys(context, &session, None).await?;
    }
    let fingerprint = identity.fingerprint();
    let approve = if recorder {
        "quorate recorders approve"
    } else {
        "quorate members approve"
    };
    let next = if first_admin {
        "You are the vault's first admin. Set the vault's policy next: `quorate policy set --threshold K`,\nthen invite members: `quorate members invite`. Each new member compares the genesis above\nwith the one `quorate members` shows you.".to_owned()
    } else if expected_genesis.is_some() {
        format!(
            "The genesis matches the one you were given. You are pending. Read your fingerprint to an admin\nover a channel you trust (in person, by phone); they approve you with\n`{approve} FINGERPRINT` after comparing it."
        )
    } else {
        format!(
            "You are pending. Over a channel you trust (in person, by phone), with an admin:\n  - read them your fingerprint; they approve you with `{approve} FINGERPRINT`;\n  - have them read you the genesis their `quorate members` shows and the first admin's\n    fingerprint, and compare both with the ones above. If either differs, this server is\n    showing you a vault of its own: run `quorate enroll` again with `--genesis` and a new\n    code, and tell the admin."
        )
    };
    context.print(
        &format!(
            "Enrolled in vault {vault}.\nYour fingerprint: {}\nPinned genesis:   {genesis}\nFirst admin:      {} ({})\n\n{next}",
            fingerprint.short(),
            printable(&founder.name),
            founder.fingerprint.short(),
        ),
        &json!({
            "vault_id": vault.to_string(),
            "fingerprint": fingerprint.short(),
            "roster_genesis": genesis,
            "first_admin": { "name": founder.name, "fingerprint": founder.fingerprint.short() },
            "role": if first_admin { "admin" } else { "pending" },
        }),
    );
    Ok(())
}

async fn connect(context: &mut Context, typed_genesis: &str) -> Result<(), DeviceError> {
    let genesis = parse_genesis(typed_genesis)?;
    let server = context.server()?;
    let vault = context.vault()?;
    let identity_path = std::path::absolute(context.identity_path()).map_err(|error| {
        DeviceError::Local(format!("cannot resolve the identity path: {error}"))
    })?;
    if let Some(pinned) = context.state.settings.vaults.get(&vault.to_string())
        && pinned.genesis != genesis
    {
        return Err(DeviceError::Refused(format!(
            "this device pinned genesis {} for vault {vault}, not {genesis}: nothing was changed. If the vault really was started again, remove its entry from config.toml first",
            pinned.genesis
        )));
    }
    context.state.settings.server = Some(server);
    context.state.settings.vault = Some(vault.to_string());
    context.state.settings.identity = Some(identity_path);
    context
        .state
        .settings
        .vaults
        .entry(vault.to_string())
        .or_insert_with(|| Pins {
            genesis: genesis.clone(),
            ..Pins::default()
        });
    // Checked against the roster at once where the identity may sign in; a pending member's
    // first command after approval does the same check.
    let (fingerprint, status, may_make_search_key) = match context.session().await {
        Ok(session) => {
            let roster = context.verified_roster(&session).await?;
            let fingerprint = session.identity.fingerprint();
            let me = roster.member(&fingerprint);
            let role = me.map_or("recorder", |member| member.role.as_str());
            let status = format!(
                "Roster verified from the pinned genesis ({} entries); you are {role}.",
                roster.len()
            );
            // Only the vault's first admin makes its search key, and only while there is
            // none: one who enrolled in the browser and left before it was made, makes it
            // with `quorate share-keys`. Once a key is seen, "there is none" is a lie.
            let founder = me.is_some_and(|member| member.added_in == 0);
            let no_key_yet = founder
                && session
                    .client
                    .search_key_view(vault)
                    .await?
                    .commitment
                    .is_none();
            (fingerprint, status, no_key_yet)
        }
        Err(error) if error.server_code() == Some("unknown_member") => (
            super::state::read_identity(&context.identity_path())?.fingerprint(),
            "You are not active in this vault yet: once an admin approves you, `quorate members` verifies the roster from this genesis.".to_owned(),
            false,
        ),
        Err(error) => return Err(error),
    };
    if let Some(pins) = context.state.settings.vaults.get_mut(&vault.to_string()) {
        pins.search_key_made = !may_make_search_key;
    }
    context.state.save()?;
    context.print(
        &format!(
            "Connected to vault {vault} as {}.\nPinned genesis: {genesis}\n{status}",
            fingerprint.short()
        ),
        &json!({ "vault_id": vault.to_string(), "fingerprint": fingerprint.short(), "roster_genesis": genesis }),
    );
    Ok(())
}

/// The first admin and the genesis digest (lower-case hex), from the genesis entry the
/// enrolment answer carries: it must be the entry whose digest the server names, and a
/// valid genesis of `vault`.
fn first_admin_of(
    vault: quorate_crypto::VaultId,
    digest: &str,
    entry: &[u8],
) -> Result<(RosterMember, String), DeviceError> {
    let entry = decode_statement(entry)?;
    let roster = Roster::verify(vault, &[entry], None)
        .map_err(|error| DeviceError::Refused(format!("the vault's genesis entry: {error}")))?;
    let genesis = roster.genesis().map(hex::encode).unwrap_or_default();
    match roster.members().first() {
        Some(founder) if genesis.eq_ignore_ascii_case(digest) => Ok((founder.clone(), genesis)),
        _ => Err(DeviceError::Refused(
            "the server's genesis entry is not the genesis it names: nothing was pinned".into(),
        )),
    }
}

/// A genesis digest as typed: 64 hex digits, spaces and dashes ignored.
fn parse_genesis(typed: &str) -> Result<String, DeviceError> {
    let digits: String = typed
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | ':'))
        .collect::<String>()
        .to_ascii_lowercase();
    if digits.len() != 64 || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(DeviceError::Usage(
            "--genesis takes the 64 hex digits an admin's `quorate members` shows as the genesis"
                .into(),
        ));
    }
    Ok(digits)
}

/// Says on standard error how many keys were sealed to newcomers.
fn note_shared(count: usize) {
    if count > 0 {
        eprintln!(
            "Sealed {count} keys (the search key, released minutes) to those who lacked them."
        );
    }
}

/// A fingerprint as people type it: the grouped base32 form or hex, matched against `known`.
pub(super) fn find_by_fingerprint<'a, T>(
    typed: &str,
    known: impl IntoIterator<Item = (&'a Fingerprint, T)>,
) -> Result<T, DeviceError> {
    let wanted: String = typed
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_uppercase();
    known
        .into_iter()
        .find(|(fingerprint, _)| {
            let short: String = fingerprint.short().chars().filter(|c| *c != '-').collect();
            short == wanted || fingerprint.to_hex().to_ascii_uppercase() == wanted
        })
        .map(|(_, value)| value)
        .ok_or_else(|| {
            DeviceError::Usage(format!(
                "no one with fingerprint {typed}: compare it again with `quorate members`"
            ))
        })
}

/// A current member of `roster` by the fingerprint typed (grouped form or hex).
pub(super) fn roster_member<'a>(
    roster: &'a Roster,
    typed: &str,
) -> Result<&'a RosterMember, DeviceError> {
    find_by_fingerprint(
        typed,
        roster
            .members()
            .iter()
            .map(|member| (&member.fingerprint, member)),
    )
}

pub(super) fn member_line(member: &RosterMember) -> String {
    format!(
        "  {}  {:<6}  {}",
        member.fingerprint.short(),
        member.role.as_str(),
        printable(&member.name)
    )
}

/// The pending enrolments of `role` (member or recorder) with their keys and names. The
/// fingerprints shown and signed are computed here from the keys, never the server's own
/// fingerprint column; the role only sorts the list (an entry's role is the admin's
/// command, and the server refuses one of the other kind).
pub(super) async fn pending_enrolments(
    session: &Session,
    role: MemberRole,
) -> Result<Vec<(quorate_crypto::PublicIdentity, String)>, DeviceError> {
    let pending = session
        .client
        .members(session.vault, Some(MemberStatus::Pending))
        .await?;
    pending
        .iter()
        .filter(|member| member.role == role)
        .map(|member| {
            quorate_crypto::PublicIdentity::from_text(
                &member.keys.recipient,
                &member.keys.verifying_key,
            )
            .map(|public| (public, member.name.clone()))
            .map_err(|error| DeviceError::Refused(format!("a pending enrolment's keys: {error}")))
        })
        .collect()
}

/// Signs the pending enrolment `fingerprint` (typed) onto the roster with `role`, after
/// refusing a name already on it; returns its keys and name.
pub(super) async fn approve_pending(
    session: &Session,
    roster: &Roster,
    fingerprint: &str,
    role: Role,
) -> Result<(quorate_crypto::PublicIdentity, String), DeviceError> {
    let enrolled_as = if role.holds_shares() {
        MemberRole::Member
    } else {
        MemberRole::Recorder
    };
    let keys = pending_enrolments(session, enrolled_as).await?;
    let prints: Vec<_> = keys
        .iter()
        .map(|(public, _)| public.fingerprint())
        .collect();
    let (public, name) = find_by_fingerprint(fingerprint, prints.iter().zip(keys.iter()))?;
    // The name goes into the signed entry and is what every device shows for this member:
    // the server chose it, so it must not pass for someone already there.
    if roster
        .members()
        .iter()
        .chain(roster.recorders())
        .any(|member| member.name.trim().eq_ignore_ascii_case(name.trim()))
    {
        return Err(DeviceError::Refused(format!(
            "the pending enrolment calls itself {}, a name already on the roster: nothing was signed. Ask for it to enrol again under a name of its own",
            printable(name)
        )));
    }
    eprintln!(
        "Signing {} ({}) onto the roster as {}.",
        printable(name),
        public.fingerprint().short(),
        role.as_str()
    );
    let entry = sign(session, roster, RosterChange::Add, *public, name, role)?;
    session.client.append_roster(session.vault, &entry).await?;
    Ok((*public, name.clone()))
}

/// Signs `member` (a member or a recorder) off the roster.
pub(super) async fn remove_from_roster(
    session: &Session,
    roster: &Roster,
    member: &RosterMember,
) -> Result<(), DeviceError> {
    let entry = sign(
        session,
        roster,
        RosterChange::Remove,
        member.public,
        &member.name,
        member.role,
    )?;
    session.client.append_roster(session.vault, &entry).await?;
    Ok(())
}

async fn members(context: &mut Context, action: Option<MembersAction>) -> Result<(), DeviceError> {
    let session = context.session().await?;
    let roster = context.verified_roster(&session).await?;
    match action {
        None => {
            let pending = pending_enrolments(&session, MemberRole::Member).await?;
            let genesis = roster.genesis().map(hex::encode).unwrap_or_default();
            let mut text = format!(
                "Vault {} — roster verified against the pinned genesis ({} entries).\nGenesis: {genesis}\n(a new member compares it with the one `quorate enroll` showed them, or enrols with\n`--genesis` and this digest)\n",
                session.vault,
                roster.len()
            );
            for member in roster.members() {
                text.push_str(&member_line(member));
                text.push('\n');
            }
            let pending: Vec<_> = pending
                .iter()
                .map(|(public, name)| (public.fingerprint(), name.as_str()))
                .collect();
            if !pending.is_empty() {
                text.push_str("\nPending (not on the roster until an admin approves them):\n");
                for (fingerprint, name) in &pending {
                    text.push_str(&format!("  {}  {}\n", fingerprint.short(), printable(name)));
                }
            }
            let value = json!({
                "vault_id": session.vault.to_string(),
                "genesis": genesis,
                "members": roster.members().iter().map(|member| json!({
                    "fingerprint": member.fingerprint.short(),
                    "name": member.name,
                    "role": member.role.as_str(),
                })).collect::<Vec<_>>(),
                "pending": pending.iter().map(|(fingerprint, name)| json!({ "name": name, "fingerprint": fingerprint.short(), "fingerprint_hex": fingerprint.to_hex() })).collect::<Vec<_>>(),
            });
            context.print(text.trim_end(), &value);
        }
        Some(MembersAction::Invite { hours }) => {
            let invite = session
                .client
                .invite_for(session.vault, InvitePurpose::Member, hours * 3600)
                .await?;
            context.print(
                &format!(
                    "Member invite (works once, for {hours} hours):\n\n    {}\n\nGive it to the new member over a channel you trust; they run\n    quorate keygen\n    quorate enroll --server {} --code {}",
                    invite.code,
                    context.server()?,
                    invite.code
                ),
                &json!({ "code": invite.code, "expires_at": invite.expires_at }),
            );
        }
        Some(MembersAction::Approve {
            fingerprint,
            replaces: Some(old),
            ..
        }) => {
            let replaced = roster_member(&roster, &old)?.clone();
            let (public, name) =
                approve_pending(&session, &roster, &fingerprint, replaced.role).await?;
            // The new identity gets the released keys while this session lasts: an admin
            // replacing their own identity ends it with the removal.
            let roster = context.verified_roster(&session).await?;
            note_shared(
                super::minutes::share_keys(context, &session, Some(&public.fingerprint())).await?,
            );
            // Added before the old identity goes, so that replacing the last admin works.
            remove_from_roster(&session, &roster, &replaced)
                .await
                .map_err(|error| {
                    DeviceError::Refused(format!(
                        "{} is on the roster, but removing the old identity failed ({error}): run `quorate members remove {}`",
                        public.fingerprint().short(),
                        replaced.fingerprint.short()
                    ))
                })?;
            let own = replaced.fingerprint == session.identity.fingerprint();
            if own {
                eprintln!(
                    "Your old identity held the search key: sign in with the new one and run `quorate search-key rotate`."
                );
            } else {
                super::minutes::rotate_after_removal(context, &session, &replaced.fingerprint)
                    .await;
            }
            if !own {
                context.verified_roster(&session).await?;
            }
            context.print(
                &format!(
                    "{} ({}) replaces {} ({}), who is removed: the old identity can no longer sign in, and its shares count until the members run `quorate reshare`, which gives the new identity shares of every recording and transcript.{}",
                    printable(&name),
                    public.fingerprint().short(),
                    printable(&replaced.name),
                    replaced.fingerprint.short(),
                    if own {
                        " You replaced your own identity: sign in with the new one from now on."
                    } else {
                        ""
                    }
                ),
                &json!({ "added": public.fingerprint().short(), "name": name, "removed": replaced.fingerprint.short() }),
            );
        }
        Some(MembersAction::Approve {
            fingerprint, admin, ..
        }) => {
            let role = if admin { Role::Admin } else { Role::Member };
            let (public, name) = approve_pending(&session, &roster, &fingerprint, role).await?;
            // Every released key is sealed to the newcomer by this admin, replacing any a
            // member sealed first.
            note_shared(
                super::minutes::share_keys(context, &session, Some(&public.fingerprint())).await?,
            );
            context.print(
                &format!(
                    "{} ({}) is now on the roster. To give them shares of the recordings and transcripts made before, the members run `quorate reshare`.",
                    printable(&name),
                    public.fingerprint().short()
                ),
                &json!({ "added": public.fingerprint().short(), "name": name }),
            );
        }
        Some(MembersAction::Remove { fingerprint }) => {
            let member = roster_member(&roster, &fingerprint)?;
            remove_from_roster(&session, &roster, member).await?;
            context.verified_roster(&session).await?;
            super::minutes::rotate_after_removal(context, &session, &member.fingerprint).await;
            context.print(
                &format!(
                    "{} ({}) is removed: their sessions ended, and no new share is sealed to them. Their old shares count until the members run `quorate reshare`, which moves every key to the current members.",
                    member.name,
                    member.fingerprint.short()
                ),
                &json!({ "removed": member.fingerprint.short() }),
            );
        }
    }
    Ok(())
}

fn sign(
    session: &Session,
    roster: &Roster,
    change: RosterChange,
    member: quorate_crypto::PublicIdentity,
    name: &str,
    role: Role,
) -> Result<SignedStatement, DeviceError> {
    roster
        .sign_change(&session.identity, change, member, name, role, now())
        .map_err(|error| match error {
            quorate_crypto::Error::NotAuthorised { .. } => {
                DeviceError::Usage("only an admin of this vault can change the roster".into())
            }
            other => DeviceError::Refused(other.to_string()),
        })
}

/// The vault's newest policy, verified against the roster and refused if older than one this
/// device saw (a rollback); `None` when the vault has none yet.
pub(super) async fn verified_policy(
    context: &mut Context,
    session: &Session,
    roster: &Roster,
) -> Result<Option<VaultPolicy>, DeviceError> {
    let current = match session.client.policy(roster).await {
        Ok(policy) => policy,
        Err(quorate_client::ClientError::Api { code, .. }) if code == "no_policy" => {
            return Ok(None);
        }
        Err(other) => return Err(other.into()),
    };
    let seen = context.state.pins(session.vault)?.policy_sequence;
    if let Some(seen) = seen.filter(|seen| current.sequence < *seen) {
        return Err(DeviceError::Refused(format!(
            "the server shows policy {} but this device verified policy {seen} before (a rollback); tell an admin",
            current.sequence
        )));
    }
    if let Some(pins) = context
        .state
        .settings
        .vaults
        .get_mut(&session.vault.to_string())
    {
        pins.policy_sequence = Some(current.sequence);
    }
    context.state.save()?;
    Ok(Some(current))
}

async fn policy(context: &mut Context, action: Option<PolicyAction>) -> Result<(), DeviceError> {
    let session = context.session().await?;
    let roster = context.verified_roster(&session).await?;
    let current = verified_policy(context, &session, &roster).await?;
    match action {
        None => match current {
            Some(policy) => context.print(
                &format!(
                    "Policy {}: a recording unlocks with at least {} approval(s) (signed by an admin, verified).",
                    policy.sequence, policy.min_threshold
                ),
                &json!({ "sequence": policy.sequence, "min_threshold": policy.min_threshold }),
            ),
            None => context.print(
                "This vault has no policy yet: an admin sets one with `quorate policy set --threshold K`.",
                &json!({ "sequence": null }),
            ),
        },
        Some(PolicyAction::Set { threshold }) => {
            if threshold == 0 {
                return Err(DeviceError::Usage("the threshold is at least 1".into()));
            }
            if roster.admin_by_key(&session.identity.public().verifying_key).is_none() {
                return Err(DeviceError::Usage("only an admin of this vault sets the policy".into()));
            }
            let policy = VaultPolicy {
                vault_id: session.vault,
                sequence: current.map_or(0, |policy| policy.sequence + 1),
                min_threshold: threshold,
                issued_at: now(),
            };
            session
                .client
                .set_policy(session.vault, &SignedStatement::sign(&policy, &session.identity))
                .await?;
            if let Some(pins) = context.state.settings.vaults.get_mut(&session.vault.to_string()) {
                pins.policy_sequence = Some(policy.sequence);
            }
            context.state.save()?;
            let members = roster.members().len();
            let note = if usize::from(threshold) > members {
                format!("\nThe vault has {members} member(s): invite more before anything is uploaded.")
            } else {
                String::new()
            };
            context.print(
                &format!(
                    "Policy {}: at least {threshold} approval(s) unlock a recording.{note}",
                    policy.sequence
                ),
                &json!({ "sequence": policy.sequence, "min_threshold": threshold }),
            );
        }
    }
    Ok(())
}

async fn nodes(context: &mut Context, action: Option<NodesAction>) -> Result<(), DeviceError> {
    let session = context.session().await?;
    let roster = context.verified_roster(&session).await?;
    match action {
        None => {
            let nodes = session.client.nodes(session.vault).await?;
            let mut text = String::from("Nodes (approval statements verified here):\n");
            let mut values = Vec::new();
            for node in &nodes {
                let approval = match &node.approval {
                    Some(statement) => {
                        let signed = decode_statement(statement)?;
                        let (verified, signer) = roster
                            .verify_by_admin::<NodeApproval>(&signed)
                            .map_err(|error| {
                                DeviceError::Refused(format!("node {}: {error}", node.node_id))
                            })?;
                        let approval = verified.statement;
                        if approval.node_id.to_string() != node.node_id {
                            return Err(DeviceError::Refused(format!(
                                "the server lists another node's approval for node {}",
                                printable(&node.node_id)
                            )));
                        }
                        session.client.note_approval(&approval)?;
                        let state = if approval.revoked {
                            "revoked".to_owned()
                        } else if approval.expires_at < now() {
                            "approval expired".to_owned()
                        } else {
                            format!("approved by {} until {}", signer.name, approval.expires_at)
                        };
                        Some((
                            state,
                            hex::encode(approval.model_sha256),
                            approval.hardware,
                            approval.node.fingerprint().short(),
                        ))
                    }
                    None => None,
                };
                // An approved node is shown with the fingerprint of the keys an admin signed;
                // a pending one with none, so that an admin compares the one its operator
                // reads out rather than copying the server's.
                let (state, model, hardware, fingerprint) = approval.unwrap_or_else(|| {
                    (
                        "pending approval".into(),
                        String::new(),
                        String::new(),
                        "(fingerprint: ask its operator)".into(),
                    )
                });
                text.push_str(&format!(
                    "  {}  {}  {}\n    {}{}\n",
                    printable(&node.node_id),
                    printable(&node.name),
                    fingerprint,
                    printable(&state),
                    if model.is_empty() {
                        String::new()
                    } else {
                        format!("; model {}…; {}", &model[..16], printable(&hardware))
                    }
                ));
                values.push(json!({ "node_id": node.node_id, "name": node.name, "state": state, "model_sha256": model }));
            }
            if nodes.is_empty() {
                text.push_str("  (none: an admin invites one with `quorate nodes invite`)\n");
            }
            context.print(text.trim_end(), &json!(values));
        }
        Some(NodesAction::Invite { hours }) => {
            let invite = session
                .client
                .invite_for(session.vault, InvitePurpose::Node, hours * 3600)
                .await?;
            context.print(
                &format!(
                    "Node invite (works once, for {hours} hours):\n\n    {}\n\nOn the node: quorate-node init; quorate-node enroll --server {} --code {}",
                    invite.code,
                    context.server()?,
                    invite.code
                ),
                &json!({ "code": invite.code, "expires_at": invite.expires_at }),
            );
        }
        Some(NodesAction::Approve {
            node,
            fingerprint,
            model_sha256,
            hardware,
            days,
        }) => {
            let mut model = [0u8; 32];
            hex::decode_to_slice(model_sha256.trim(), &mut model).map_err(|_| {
                DeviceError::Usage(
                    "--model-sha256 takes the 64 hex digits `quorate-node models import` printed"
                        .into(),
                )
            })?;
            if !(1..=366).contains(&days) {
                return Err(DeviceError::Usage("--days is 1 to 366".into()));
            }
            let approval =
                sign_node_approval(&session, &roster, &node, Some(&fingerprint), |approval| {
                    approval.model_sha256 = model;
                    approval.hardware = hardware.clone();
                    approval.expires_at = approval.issued_at + days * 86_400;
                })
                .await?;
            let view = session
                .client
                .approve_node(session.vault, approval.0, &approval.1)
                .await?;
            note_shared(super::minutes::share_keys(context, &session, None).await?);
            context.print(
                &format!(
                    "Node {} ({}) is approved for model {}… for {days} days.",
                    printable(&view.node_id),
                    printable(&view.name),
                    &hex::encode(model)[..16]
                ),
                &json!({ "node_id": view.node_id, "status": view.status }),
            );
        }
        Some(NodesAction::Revoke { node }) => {
            let approval = sign_node_approval(&session, &roster, &node, None, |_| {}).await?;
            let view = session
                .client
                .approve_node(session.vault, approval.0, &approval.1)
                .await?;
            context.print(
                &format!(
                    "Node {} ({}) is revoked for good; its sessions ended.",
                    printable(&view.node_id),
                    printable(&view.name)
                ),
                &json!({ "node_id": view.node_id, "status": view.status }),
            );
        }
    }
    Ok(())
}

/// Signs an approval of `node` (with the fingerprint its operator read out) or, without one,
/// a revocation. The server's copy of a node's keys is never signed on its word: an approval
/// signs them only when they match the fingerprint typed here, and a revocation names the
/// keys of the node's previous approval, which an admin signed.
async fn sign_node_approval(
    session: &Session,
    roster: &Roster,
    node: &str,
    read_out: Option<&str>,
    fill: impl FnOnce(&mut NodeApproval),
) -> Result<(NodeId, SignedStatement), DeviceError> {
    let node_id: NodeId = parse_id(node, "node", "quorate nodes")?;
    let view = session.client.node(session.vault, node_id).await?;
    let listed =
        quorate_crypto::PublicIdentity::from_text(&view.keys.recipient, &view.keys.verifying_key)
            .map_err(|error| DeviceError::Refused(format!("the node's keys: {error}")))?;
    let previous = view
        .approval
        .as_deref()
        .and_then(|text| previous_approval(roster, node_id, text));
    let public = match (read_out, &previous) {
        (Some(typed), _) => {
            // The listed keys' fingerprint is not shown on a mismatch: under attack it is the
            // attacker's, and would be pasted on the next try.
            find_by_fingerprint(typed, [(&listed.fingerprint(), ())]).map_err(|_| {
                DeviceError::Refused(format!(
                    "the fingerprint you typed is not that of the keys the server lists for node {node_id}: nothing was signed. Compare again with `quorate-node status` on the node; if it still differs, the server or its database is lying"
                ))
            })?;
            listed
        }
        (None, Some(previous)) => previous.node,
        (None, None) => listed,
    };
    let issued_at = now();
    let mut approval = NodeApproval {
        vault_id: session.vault,
        node_id,
        node: public,
        hardware: "revoked".into(),
        model_sha256: [0; 32],
        attestation: Vec::new(),
        issued_at,
        expires_at: issued_at + 86_400,
        revoked: read_out.is_none(),
    };
    if let (None, Some(previous)) = (read_out, previous) {
        approval.hardware = previous.hardware;
        approval.model_sha256 = previous.model_sha256;
    }
    fill(&mut approval);
    Ok((node_id, SignedStatement::sign(&approval, &session.identity)))
}

/// A node's previous approval, if it is one an admin of the vault (now or before) signed for
/// this node. A revocation names its keys; when there is none such, the revocation names the
/// listed keys, which is safe: a revocation vouches for nothing. An admin removed since must
/// not make their node impossible to revoke.
fn previous_approval(roster: &Roster, node: NodeId, bytes: &[u8]) -> Option<NodeApproval> {
    let verified = decode_statement(bytes)
        .ok()?
        .verify::<NodeApproval>()
        .ok()?;
    let by_admin = roster
        .members()
        .iter()
        .chain(roster.removed())
        .any(|member| member.role == Role::Admin && member.public.verifying_key == verified.signer);
    (by_admin && verified.statement.node_id == node).then_some(verified.statement)
}

fn decode_statement(bytes: &[u8]) -> Result<SignedStatement, DeviceError> {
    SignedStatement::from_bytes(bytes).map_err(|error| DeviceError::Refused(error.to_string()))
}
