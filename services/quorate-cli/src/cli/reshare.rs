//! `quorate reshare`: moves the shares of every recording and transcript to the current
//! members, without rebuilding any key. Each member's device does its part: a current
//! holder deals their share, a new holder takes their new share once k holders dealt, and
//! the server swaps the shares when every new holder has theirs. Run it until nothing waits.

use indicatif::{ProgressBar, ProgressStyle};
use quorate_api::{ReshareItem, SharedKind};
use quorate_client::reshare::{self, Board};
use quorate_crypto::{RecordingId, TranscriptId};
use serde_json::json;

use super::{Context, Session, commands::verified_policy};
use quorate_client::DeviceError;

/// What this device did with the keys the server listed.
#[derive(Debug, Default)]
struct Done {
    dealt: usize,
    accepted: usize,
    completed: usize,
    waiting: usize,
}

pub(super) async fn reshare(context: &mut Context) -> Result<(), DeviceError> {
    let session = context.session().await?;
    let roster = context.verified_roster(&session).await?;
    let k = verified_policy(context, &session, &roster)
        .await?
        .ok_or_else(|| {
            DeviceError::Usage(
                "this vault has no policy yet: an admin must set one (`quorate policy set --threshold K`)"
                    .into(),
            )
        })?
        .min_threshold;
    let board = Board::of(&roster, k).map_err(|error| DeviceError::Refused(error.to_string()))?;
    let work = session.client.reshare_work(session.vault).await?;
    let progress = ProgressBar::new(work.items.len() as u64);
    progress.set_style(
        ProgressStyle::with_template("{msg:>10} [{bar:30}] {pos}/{len} keys")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    progress.set_message("re-sharing");
    let mut done = Done::default();
    // One key refused (a bad deal, a lying server, a re-share another roster change
    // overtook) does not stop the others: each is said, and the run fails at the end.
    let mut refused = Vec::new();
    for item in &work.items {
        match step(&session, &roster, &board, item, &mut done).await {
            Ok(()) => {}
            Err(error @ (DeviceError::Refused(_) | DeviceError::Server { .. }))
                if !error.is_transient() =>
            {
                let said = format!("{} {}: {error}", kind_name(item.kind), item.subject_id);
                progress.suspend(|| eprintln!("{said}"));
                refused.push(said);
            }
            Err(other) => return Err(other),
        }
        progress.inc(1);
    }
    progress.finish_and_clear();
    let text = if work.items.is_empty() {
        "Every key's shares follow the roster: nothing to re-share.".to_owned()
    } else {
        format!(
            "{} keys to re-share: dealt your share of {}, took your new share of {} ({} now held by the current members only); {} wait for other members, who run `quorate reshare` too.",
            work.items.len(),
            done.dealt,
            done.accepted,
            done.completed,
            done.waiting
        )
    };
    context.print(
        &text,
        &json!({
            "keys": work.items.len(),
            "dealt": done.dealt,
            "accepted": done.accepted,
            "completed": done.completed,
            "waiting": done.waiting,
            "refused": refused,
        }),
    );
    if refused.is_empty() {
        Ok(())
    } else {
        Err(DeviceError::Refused(format!(
            "{} of {} keys could not be re-shared by this device (each is said above); the rest were. Tell the other members and an admin; `quorate reshare` again once the roster or the server is mended",
            refused.len(),
            work.items.len()
        )))
    }
}

fn kind_name(kind: SharedKind) -> &'static str {
    match kind {
        SharedKind::Recording => "recording",
        SharedKind::Transcript => "transcript",
    }
}

fn refused(error: quorate_client::ClientError) -> DeviceError {
    DeviceError::Refused(error.to_string())
}

/// Deals into, or takes a new share from, one key's re-share, whichever this member can.
async fn step(
    session: &Session,
    roster: &quorate_crypto::roster::Roster,
    board: &Board,
    item: &ReshareItem,
    done: &mut Done,
) -> Result<(), DeviceError> {
    let me = session.identity.fingerprint();
    let key = session
        .client
        .shared_key(session.vault, roster, item)
        .await
        .map_err(refused)?;
    let board = &board.for_key(&key).map_err(refused)?;
    if reshare::should_deal(&key, item.open.as_ref(), &me) {
        let sealed = match item.kind {
            SharedKind::Recording => {
                let id: RecordingId = item.subject_id.parse().map_err(|_| {
                    DeviceError::Refused(
                        "the server listed a recording ID that does not parse".into(),
                    )
                })?;
                session.client.recording_share(session.vault, id).await?
            }
            SharedKind::Transcript => {
                let id: TranscriptId = item.subject_id.parse().map_err(|_| {
                    DeviceError::Refused(
                        "the server listed a transcript ID that does not parse".into(),
                    )
                })?;
                session.client.transcript_share(session.vault, id).await?
            }
        };
        let now = super::commands::now();
        let deal = reshare::deal(
            &session.identity,
            &key,
            board,
            roster,
            item.open.as_ref(),
            &sealed.sealed.0,
            now,
        )
        .map_err(refused)?;
        session.client.deal_reshare(session.vault, &deal).await?;
        done.dealt += 1;
        return Ok(());
    }
    match &item.open {
        Some(open) if reshare::should_accept(open, board, &me) => {
            let acceptance =
                reshare::accept(&session.identity, &key, board, roster, open).map_err(refused)?;
            let state = session
                .client
                .accept_reshare(session.vault, &open.reshare_id, &acceptance)
                .await?;
            done.accepted += 1;
            done.completed += usize::from(state.completed);
        }
        _ => done.waiting += 1,
    }
    Ok(())
}
