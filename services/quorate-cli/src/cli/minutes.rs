//! Approved minutes on the member's device: blind search (the query is normalised and
//! blinded here; the server sees tokens only), snippets and exports built from released
//! copies opened here, and sharing keys with those who joined later.

use std::{collections::HashSet, fmt::Write as _, io::IsTerminal, path::PathBuf};

use indicatif::{ProgressBar, ProgressStyle};
use quorate_api::{TranscriptDocument, TranscriptSegment};
use quorate_client::{
    checks::printable,
    minutes::{Reindexed, Released, SearchKeyRole},
};
use quorate_crypto::{
    Fingerprint, RecordingId,
    blind::normalise,
    roster::Roster,
    statement::{RecordingMetadata, Role},
};
use serde_json::json;

use super::{Context, DeviceError, SearchKeyAction, Session, parse_id, quorum};

/// Seals the search key and released copies to whoever lacks them; prints how many.
/// Seals what this device can open to those who lack it; with `renew_for`, every released
/// key to that member again (see [`quorate_client::Client::share_keys`]).
pub(super) async fn share_keys(
    context: &mut Context,
    session: &Session,
    renew_for: Option<&Fingerprint>,
) -> Result<usize, DeviceError> {
    let roster = context.verified_roster(session).await?;
    let me = roster.member(&session.identity.fingerprint());
    let admin = me.is_some_and(|member| member.role == Role::Admin);
    // The genesis entry added the first admin; a device records once it has made or seen
    // the search key, and from then on never makes one.
    let founder = me.is_some_and(|member| member.added_in == 0);
    let made = context.state.pins(session.vault)?.search_key_made;
    let role = match (admin, founder && !made) {
        (false, _) => SearchKeyRole::Member,
        (true, false) => SearchKeyRole::Share,
        (true, true) => SearchKeyRole::Make,
    };
    let shared = session
        .client
        .share_keys(session.vault, &roster, &session.identity, role, renew_for)
        .await?;
    if role == SearchKeyRole::Make {
        let pins = context
            .state
            .settings
            .vaults
            .entry(session.vault.to_string())
            .or_default();
        pins.search_key_made = true;
        context.state.save()?;
    }
    Ok(shared)
}

pub(super) async fn share_keys_command(
    context: &mut Context,
    member: Option<&str>,
) -> Result<(), DeviceError> {
    let session = context.session().await?;
    let renew_for = match member {
        Some(typed) => {
            let roster = context.verified_roster(&session).await?;
            let me = session.identity.fingerprint();
            if roster
                .member(&me)
                .is_none_or(|member| member.role != Role::Admin)
            {
                return Err(DeviceError::Usage(
                    "only an admin's key replaces a member's: ask an admin to run `quorate share-keys --member`".into(),
                ));
            }
            Some(super::commands::roster_member(&roster, typed)?.fingerprint)
        }
        None => None,
    };
    let shared = share_keys(context, &session, renew_for.as_ref()).await?;
    context.print(
        &if shared == 0 {
            "Everyone who may hold the search key and the released minutes you can open holds them already."
                .to_owned()
        } else {
            format!("Sealed {shared} keys to members and nodes that lacked them.")
        },
        &json!({ "shared": shared }),
    );
    Ok(())
}

/// What the member can read of a recording: its metadata, if sealed to them. A manifest
/// that fails its checks is refused rather than shown as sealed.
async fn metadata(
    session: &Session,
    roster: &Roster,
    recording: RecordingId,
) -> Result<Option<RecordingMetadata>, DeviceError> {
    let manifest = quorum::recording_manifest(session, roster, recording).await?;
    Ok(RecordingMetadata::open(&manifest.sealed_metadata, session.identity.age_key()).ok())
}

/// `YYYY-MM-DD HH:MM UTC` for Unix seconds.
fn utc(seconds: i64) -> String {
    // Civil from days (Howard Hinnant's algorithm).
    let days = seconds.div_euclid(86_400);
    let time = seconds.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        time / 3600,
        time % 3600 / 60
    )
}

/// `H:MM:SS` (or `M:SS`) for seconds into a recording.
fn clock(seconds: f64) -> String {
    let total = seconds.max(0.0) as u64;
    let (hours, minutes, seconds) = (total / 3600, total % 3600 / 60, total % 60);
    if hours > 0 {
        format!("{hours}:{minutes:02}:{seconds:02}")
    } else {
        format!("{minutes}:{seconds:02}")
    }
}

/// A timestamp as subtitles write it: `HH:MM:SS,mmm` (SRT) or `HH:MM:SS.mmm` (WebVTT).
fn subtitle_time(seconds: f64, separator: char) -> String {
    let millis = (seconds.max(0.0) * 1000.0).round() as u64;
    format!(
        "{:02}:{:02}:{:02}{separator}{:03}",
        millis / 3_600_000,
        millis / 60_000 % 60,
        millis / 1000 % 60,
        millis % 1000
    )
}

/// `text` with every word that normalises to one of `wanted` marked (bold on a terminal,
/// `**word**` elsewhere), cut to about 240 characters around the first mark.
fn highlight(text: &str, wanted: &HashSet<String>, terminal: bool) -> String {
    let (open, close) = if terminal {
        ("\x1b[1m", "\x1b[0m")
    } else {
        ("**", "**")
    };
    let words: Vec<&str> = text.split_whitespace().collect();
    let hit = |word: &str| normalise(word).iter().any(|part| wanted.contains(part));
    let first = words.iter().position(|word| hit(word)).unwrap_or(0);
    let start = first.saturating_sub(12);
    let mut pieces = Vec::new();
    let mut length = 0;
    for word in &words[start..] {
        if length > 240 {
            pieces.push("…".to_owned());
            break;
        }
        length += word.len() + 1;
        pieces.push(if hit(word) {
            format!("{open}{word}{close}")
        } else {
            (*word).to_owned()
        });
    }
    if start > 0 {
        pieces.insert(0, "…".to_owned());
    }
    pieces.join(" ")
}

pub(super) async fn search(
    context: &mut Context,
    query: &str,
    limit: u32,
    page: u32,
) -> Result<(), DeviceError> {
    if !(1..=100).contains(&limit) || page == 0 {
        return Err(DeviceError::Usage(
            "--limit is 1 to 100 and --page counts from 1".into(),
        ));
    }
    let words = normalise(query);
    if words.is_empty() {
        return Err(DeviceError::Usage(
            "the query has no words: search for words said in a meeting".into(),
        ));
    }
    let session = context.session().await?;
    let roster = context.verified_roster(&session).await?;
    let keys = session
        .client
        .open_search_key(session.vault, &roster, session.identity.age_key())
        .await?
        .ok_or_else(|| {
            DeviceError::Usage(
                "the vault's search key is not sealed to you yet: ask an admin to run `quorate share-keys`"
                    .into(),
            )
        })?;
    if keys.stale_since.is_some() {
        eprintln!(
            "Note: a member who left holds the vault's search key, so with the server they could read this query's words; an admin replaces it with `quorate search-key rotate`."
        );
    }
    let (tokens, previous) = keys.query(&words);
    let results = session
        .client
        .search(
            session.vault,
            (&tokens, previous.as_deref()),
            limit,
            (page - 1) * limit,
        )
        .await?;
    let wanted: HashSet<String> = words.into_iter().collect();
    let terminal = std::io::stdout().is_terminal() && !context.json;
    let released = session.client.released(session.vault, None).await?;
    let mut text = format!(
        "{} approved meeting{} match \"{query}\"{}:\n",
        results.total,
        if results.total == 1 { "" } else { "es" },
        if page > 1 {
            format!(" (page {page})")
        } else {
            String::new()
        }
    );
    let mut values = Vec::new();
    for (rank, hit) in results.hits.iter().enumerate() {
        let view = released
            .iter()
            .find(|view| view.transcript_id == hit.transcript_id)
            .ok_or_else(|| {
                DeviceError::Refused("a hit names a transcript the server does not list".into())
            })?;
        let opened = open(&session, &roster, view).await?;
        let metadata = metadata(&session, &roster, opened.manifest.recording_id).await?;
        let title = metadata.as_ref().map_or_else(
            || "(title sealed before you joined)".to_owned(),
            |m| m.title.clone(),
        );
        let date = metadata
            .as_ref()
            .and_then(|metadata| metadata.started_at)
            .map_or_else(|| utc(opened.manifest.created_at), utc);
        let _ = writeln!(
            text,
            "\n{}. {} — {date} (score {:.2})\n   recording {}",
            (page - 1) * limit + rank as u32 + 1,
            printable(&title),
            hit.score,
            opened.manifest.recording_id
        );
        let mut snippets = Vec::new();
        for segment in &hit.segments {
            let Some(found) = opened.document.segments.get(*segment as usize) else {
                continue;
            };
            let snippet = highlight(&printable(found.text.trim()), &wanted, terminal);
            let _ = writeln!(
                text,
                "   [{}–{}] {snippet}",
                clock(found.start),
                clock(found.end)
            );
            snippets.push(json!({ "segment": segment, "start": found.start, "end": found.end, "text": found.text.trim() }));
        }
        values.push(json!({
            "transcript_id": hit.transcript_id,
            "recording_id": opened.manifest.recording_id.to_string(),
            "title": title,
            "date": date,
            "score": hit.score,
            "snippets": snippets,
        }));
    }
    if results.hits.is_empty() {
        text.push_str("  (no released minutes hold these words)\n");
    }
    context.print(
        text.trim_end(),
        &json!({ "total": results.total, "hits": values }),
    );
    Ok(())
}

async fn open(
    session: &Session,
    roster: &Roster,
    view: &quorate_api::ReleasedView,
) -> Result<Released, DeviceError> {
    Ok(session
        .client
        .open_released(session.vault, roster, view, session.identity.age_key())
        .await?)
}

/// A segment's text on one line: a line break in it, or an empty line, would end the
/// subtitle cue early.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A segment's text as a WebVTT cue's payload: on one line, with `&`, `<` and `>` written as
/// character references, since WebVTT reads `<` as the start of a tag (a voice, a class)
/// and `&` as the start of a reference, and "-->" would be taken for a timing line.
fn vtt_text(text: &str) -> String {
    one_line(text)
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Text (a title, a name, a segment's words) inside a Markdown line: on one line, so that
/// it cannot start a heading or a list, and with a backslash before every character that
/// Markdown or its HTML could read as markup (emphasis, code, links, tags, entities, tables,
/// strike-through, a heading's closing `#`). The uploader chose the names and the title, and
/// speech chose the words: neither may put HTML or a link of its own making into minutes
/// that a viewer renders (a viewer may still make a bare `https://…` clickable).
fn markdown_text(text: &str) -> String {
    let mut escaped = String::new();
    for character in one_line(text).chars() {
        if "\\`*_[]<>&~|#".contains(character) {
            escaped.push('\\');
        }
        escaped.push(character);
    }
    escaped
}

/// A speaker's name before their words in plain text: "Name: ".
fn plain_name(name: &str) -> String {
    format!("{}: ", one_line(name))
}

/// How a format names a segment's speaker before its words (nothing when it has none).
fn speaker_prefix(segment: &TranscriptSegment, render: impl Fn(&str) -> String) -> String {
    segment.speaker.as_deref().map(render).unwrap_or_default()
}

/// The formats `quorate transcript` writes.
const FORMATS: [&str; 5] = ["txt", "srt", "vtt", "json", "md"];

/// Renders a transcript in one of [`FORMATS`].
fn render(
    document: &TranscriptDocument,
    format: &str,
    metadata: Option<&RecordingMetadata>,
) -> String {
    let mut out = String::new();
    let segments = document.segments.iter();
    match format {
        "txt" => {
            for segment in segments {
                let _ = writeln!(
                    out,
                    "[{}] {}{}",
                    clock(segment.start),
                    speaker_prefix(segment, plain_name),
                    segment.text.trim()
                );
            }
        }
        "srt" => {
            for (index, segment) in segments.enumerate() {
                let _ = writeln!(
                    out,
                    "{}\n{} --> {}\n{}{}\n",
                    index + 1,
                    subtitle_time(segment.start, ','),
                    subtitle_time(segment.end, ','),
                    speaker_prefix(segment, plain_name),
                    one_line(&segment.text)
                );
            }
        }
        "vtt" => {
            out.push_str("WEBVTT\n\n");
            for segment in segments {
                let _ = writeln!(
                    out,
                    "{} --> {}\n{}{}\n",
                    subtitle_time(segment.start, '.'),
                    subtitle_time(segment.end, '.'),
                    // A voice span names the speaker, as players show it.
                    speaker_prefix(segment, |name| format!("<v {}>", vtt_text(name))),
                    vtt_text(&segment.text)
                );
            }
        }
        "json" => {
            out = serde_json::to_string_pretty(document).unwrap_or_default();
            out.push('\n');
        }
        _ => {
            let title = metadata.map_or("Minutes", |metadata| metadata.title.as_str());
            let _ = writeln!(out, "# {}\n", markdown_text(title));
            if let Some(started) = metadata.and_then(|metadata| metadata.started_at) {
                let _ = writeln!(out, "- **Date:** {}", utc(started));
            }
            if let Some(metadata) = metadata.filter(|metadata| !metadata.attendees.is_empty()) {
                let _ = writeln!(
                    out,
                    "- **Attendees** (as the uploader stated): {}",
                    markdown_text(&metadata.attendees.join(", "))
                );
            }
            let _ = writeln!(
                out,
                "- **Language:** {}\n- **Recording:** {}\n\n## Transcript\n",
                markdown_text(&document.language),
                document.recording_id
            );
            for segment in segments {
                let _ = writeln!(
                    out,
                    "**[{}]** {}{}\n",
                    clock(segment.start),
                    speaker_prefix(segment, |name| format!("**{}:** ", markdown_text(name))),
                    markdown_text(&segment.text)
                );
            }
        }
    }
    out
}

pub(super) async fn transcript(
    context: &mut Context,
    recording: &str,
    format: &str,
    out: Option<PathBuf>,
) -> Result<(), DeviceError> {
    if !FORMATS.contains(&format) {
        return Err(DeviceError::Usage(format!(
            "--format {format}: use one of {}",
            FORMATS.join(", ")
        )));
    }
    let recording: RecordingId = parse_id(recording, "recording", "quorate recordings")?;
    let session = context.session().await?;
    let roster = context.verified_roster(&session).await?;
    let view = session
        .client
        .released(session.vault, Some(recording))
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| {
            DeviceError::Usage(format!(
                "recording {recording} has no released transcript: ask for its release (`quorate request {recording} --node NODE --purpose release-transcript`)"
            ))
        })?;
    let opened = open(&session, &roster, &view).await?;
    let metadata = metadata(&session, &roster, recording).await?;
    let rendered = render(&opened.document, format, metadata.as_ref());
    match out {
        Some(path) => {
            std::fs::write(&path, &rendered).map_err(|error| {
                DeviceError::Local(format!("cannot write {}: {error}", path.display()))
            })?;
            eprintln!(
                "The released transcript ({} segments) is written to {} as {format}.",
                opened.document.segments.len(),
                path.display()
            );
        }
        None => print!("{rendered}"),
    }
    Ok(())
}

pub(super) async fn search_key(
    context: &mut Context,
    action: SearchKeyAction,
) -> Result<(), DeviceError> {
    let session = context.session().await?;
    let roster = context.verified_roster(&session).await?;
    let generation = match action {
        SearchKeyAction::Rotate => Some(
            session
                .client
                .rotate_search_key(session.vault, &roster, &session.identity)
                .await?,
        ),
        SearchKeyAction::Reindex => None,
    };
    let done = reindex(&session, &roster).await?;
    let rotated = generation.map_or_else(String::new, |generation| {
        format!("The search key is replaced (generation {generation}). ")
    });
    context.print(
        &format!("{rotated}{}", reindexed_text(&done)),
        &json!({
            "generation": generation,
            "reindexed": done.reindexed,
            "done_elsewhere": done.done_elsewhere,
            "unreadable": done.unreadable,
        }),
    );
    Ok(())
}

/// After `removed`'s removal: replaces the search key they held and re-indexes the minutes
/// under the new one. A failure is said with what to run; the removal stands either way.
pub(super) async fn rotate_after_removal(
    context: &mut Context,
    session: &Session,
    removed: &Fingerprint,
) {
    let rotated = async {
        let roster = context.verified_roster(session).await?;
        // A server that answers with the roster from before the removal would have the new
        // key made for (and sealed to) the member who just left.
        if roster.member(removed).is_some() {
            return Err(DeviceError::Refused(
                "the server shows a roster that still holds the member just removed: nothing was rotated".into(),
            ));
        }
        session
            .client
            .rotate_search_key(session.vault, &roster, &session.identity)
            .await?;
        reindex(session, &roster).await
    };
    match rotated.await {
        Ok(done) => eprintln!("The search key is replaced. {}", reindexed_text(&done)),
        Err(error) => eprintln!(
            "The member is removed, but replacing the search key they held failed ({error}): run `quorate search-key rotate`."
        ),
    }
}

/// Re-indexes the released minutes still under an older key, with a progress bar.
async fn reindex(session: &Session, roster: &Roster) -> Result<Reindexed, DeviceError> {
    let progress = ProgressBar::new(0);
    progress.set_style(
        ProgressStyle::with_template("{msg:>10} [{bar:30}] {pos}/{len} minutes")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    progress.set_message("re-indexing");
    let done = session
        .client
        .reindex(session.vault, roster, &session.identity, |done, total| {
            progress.set_length(total as u64);
            progress.set_position(done as u64);
        })
        .await;
    progress.finish_and_clear();
    Ok(done?)
}

fn reindexed_text(done: &Reindexed) -> String {
    let mut text = format!(
        "{} released minutes re-indexed under the newest search key",
        done.reindexed
    );
    if done.done_elsewhere > 0 {
        let _ = write!(
            text,
            " ({} by another member meanwhile)",
            done.done_elsewhere
        );
    }
    text.push('.');
    if done.unreadable > 0 {
        let _ = write!(
            text,
            " {} you cannot open yet: a member who can runs `quorate search-key reindex`.",
            done.unreadable
        );
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_render_in_utc_and_subtitle_forms() {
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc(1_795_514_400), "2026-11-24 10:00 UTC");
        assert_eq!(subtitle_time(3661.5, ','), "01:01:01,500");
        assert_eq!(clock(75.2), "1:15");
        assert_eq!(clock(3675.0), "1:01:15");
    }

    #[test]
    fn query_words_are_marked_whatever_their_case() {
        let wanted: HashSet<String> = ["budget".to_owned()].into();
        assert_eq!(
            highlight("The Budget, again.", &wanted, false),
            "The **Budget,** again."
        );
    }

    /// A transcript of one segment, from 1 s to 2.5 s, saying `text`.
    fn one_segment(text: &str) -> TranscriptDocument {
        TranscriptDocument {
            language: "en".into(),
            model_sha256: String::new(),
            node_id: String::new(),
            recording_id: "r".into(),
            segments: vec![quorate_api::TranscriptSegment {
                start: 1.0,
                end: 2.5,
                text: text.into(),
                speaker: None,
            }],
        }
    }

    #[test]
    fn markdown_reads_as_minutes() {
        let document = one_segment(" Hello board.");
        let metadata = RecordingMetadata {
            title: "Board".into(),
            started_at: Some(0),
            ended_at: None,
            media_type: "audio/wav".into(),
            attendees: vec!["Ann".into(), "Bo".into()],
            language: None,
        };
        let minutes = render(&document, "md", Some(&metadata));
        assert!(minutes.starts_with("# Board\n"));
        assert!(minutes.contains("Ann, Bo"));
        assert!(minutes.contains("**[0:01]** Hello board."));
        assert!(render(&document, "srt", None).contains("00:00:01,000 --> 00:00:02,500"));
        assert!(render(&document, "vtt", None).starts_with("WEBVTT"));
    }

    #[test]
    fn subtitle_text_cannot_break_a_cue_or_open_a_tag() {
        let document = one_segment(" R&D <b>costs</b> -->\n\nrose.");
        let vtt = render(&document, "vtt", None);
        assert!(
            vtt.ends_with(
                "00:00:01.000 --> 00:00:02.500\nR&amp;D &lt;b&gt;costs&lt;/b&gt; --&gt; rose.\n\n"
            ),
            "{vtt}"
        );
        let srt = render(&document, "srt", None);
        assert!(
            srt.ends_with("00:00:02,500\nR&D <b>costs</b> --> rose.\n\n"),
            "{srt}"
        );
    }

    #[test]
    fn markdown_minutes_carry_no_markup_from_names_titles_or_words() {
        let mut document = one_segment(
            " R&amp; *costs* <img src=x onerror=alert(1)> [site](javascript:x)\n# Vote",
        );
        document.segments[0].speaker = Some("Bo_\n- [x](y)".into());
        let metadata = RecordingMetadata {
            title: "Board <script> #".into(),
            started_at: None,
            ended_at: None,
            media_type: "audio/wav".into(),
            attendees: vec!["`Ann`".into(), "Cy|Di".into()],
            language: None,
        };
        let minutes = render(&document, "md", Some(&metadata));
        assert!(
            minutes.starts_with("# Board \\<script\\> \\#\n"),
            "{minutes}"
        );
        assert!(
            minutes.contains("stated): \\`Ann\\`, Cy\\|Di\n"),
            "{minutes}"
        );
        assert!(
            minutes.contains(
                "**[0:01]** **Bo\\_ - \\[x\\](y):** R\\&amp; \\*costs\\* \\<img src=x onerror=alert(1)\\> \\[site\\](javascript:x) \\# Vote\n"
            ),
            "{minutes}"
        );
        // No line of the words or the name starts a heading or a list of its own.
        assert!(
            !minutes
                .lines()
                .any(|line| line.starts_with("# Vote") || line.starts_with("- [x]"))
        );
    }

    #[test]
    fn every_format_names_the_speaker() {
        let mut document = one_segment("The budget passed.");
        document.segments[0].speaker = Some("Ada <chair>".into());
        let said = |document: &TranscriptDocument, format| render(document, format, None);
        assert!(said(&document, "txt").contains("[0:01] Ada <chair>: The budget passed."));
        assert!(said(&document, "srt").contains("00:00:02,500\nAda <chair>: The budget passed.\n"));
        assert!(
            said(&document, "vtt")
                .contains("00:00:02.500\n<v Ada &lt;chair&gt;>The budget passed.\n"),
            "{}",
            said(&document, "vtt")
        );
        assert!(
            said(&document, "md").contains("**[0:01]** **Ada \\<chair\\>:** The budget passed.")
        );
        assert!(said(&document, "json").contains("\"speaker\": \"Ada <chair>\""));
        // A segment without a speaker is written as before.
        document.segments[0].speaker = None;
        assert!(said(&document, "vtt").contains("00:00:02.500\nThe budget passed.\n"));
        assert!(!said(&document, "json").contains("speaker"));
    }
}
