//! `quorate recorders`: the machines that record meetings and upload them unattended. A
//! recorder is on the signed roster like a member, but holds no share, cannot request or
//! vote, and nothing is sealed to it.

use quorate_api::{InvitePurpose, MemberRole};
use quorate_client::checks::printable;
use quorate_crypto::statement::Role;
use serde_json::json;

use super::{
    Context, DeviceError, RecordersAction,
    commands::{
        approve_pending, find_by_fingerprint, member_line, pending_enrolments, remove_from_roster,
    },
};

pub(super) async fn recorders(
    context: &mut Context,
    action: Option<RecordersAction>,
) -> Result<(), DeviceError> {
    let session = context.session().await?;
    let roster = context.verified_roster(&session).await?;
    match action {
        None => {
            let pending = pending_enrolments(&session, MemberRole::Recorder).await?;
            let mut text = format!(
                "Recorders of vault {} (roster verified, {} entries):\n",
                session.vault,
                roster.len()
            );
            if roster.recorders().is_empty() {
                text.push_str("  none: invite one with `quorate recorders invite`\n");
            }
            for recorder in roster.recorders() {
                text.push_str(&member_line(recorder));
                text.push('\n');
            }
            if !pending.is_empty() {
                text.push_str(
                    "\nPending (compare each fingerprint with the one its machine showed):\n",
                );
                for (public, name) in &pending {
                    let line = format!("  {}  {}\n", public.fingerprint().short(), printable(name));
                    text.push_str(&line);
                }
            }
            let value = json!({
                "recorders": roster.recorders().iter().map(|recorder| json!({
                    "fingerprint": recorder.fingerprint.short(),
                    "name": recorder.name,
                })).collect::<Vec<_>>(),
                "pending": pending.iter().map(|(public, name)| json!({
                    "fingerprint": public.fingerprint().short(),
                    "fingerprint_hex": public.fingerprint().to_hex(),
                    "name": name,
                })).collect::<Vec<_>>(),
            });
            context.print(text.trim_end(), &value);
        }
        Some(RecordersAction::Invite { hours }) => {
            let invite = session
                .client
                .invite_for(session.vault, InvitePurpose::Recorder, hours * 3600)
                .await?;
            context.print(
                &format!(
                    "Recorder invite (works once, for {hours} hours):\n\n    {}\n\nOn the recording machine, with its passphrase in a file only its service reads\n(see docs/RECORDERS.md):\n    QUORATE_PASSPHRASE_FILE=FILE quorate keygen\n    QUORATE_PASSPHRASE_FILE=FILE quorate enroll --server {} --code {} --name NAME\nthen compare the fingerprint it shows with `quorate recorders` here and approve it.",
                    invite.code,
                    context.server()?,
                    invite.code
                ),
                &json!({ "code": invite.code, "expires_at": invite.expires_at }),
            );
        }
        Some(RecordersAction::Approve { fingerprint }) => {
            let (public, name) =
                approve_pending(&session, &roster, &fingerprint, Role::Recorder).await?;
            context.print(
                &format!(
                    "Recorder {} ({}) is on the roster: it can upload, and holds nothing.",
                    printable(&name),
                    public.fingerprint().short()
                ),
                &json!({ "added": public.fingerprint().short(), "name": name, "role": "recorder" }),
            );
        }
        Some(RecordersAction::Remove { fingerprint }) => {
            let recorder = find_by_fingerprint(
                &fingerprint,
                roster
                    .recorders()
                    .iter()
                    .map(|recorder| (&recorder.fingerprint, recorder)),
            )?;
            remove_from_roster(&session, &roster, recorder).await?;
            context.verified_roster(&session).await?;
            context.print(
                &format!(
                    "Recorder {} ({}) is removed: its sessions ended and its uploads are refused.",
                    printable(&recorder.name),
                    recorder.fingerprint.short()
                ),
                &json!({ "removed": recorder.fingerprint.short() }),
            );
        }
    }
    Ok(())
}
