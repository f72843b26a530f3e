//! What `quorate watch` finds in the folders meeting software records into: each finished
//! recording with its title, start and attendees from the source's own metadata (else the
//! file's name), and what to remove once it is uploaded. Only the file system is read here.
//!
//! - **Jibri** writes each recording to a folder of its recordings directory (the MP4 and a
//!   `metadata.json` naming the meeting URL), then runs its finalize script on that folder;
//!   `infra/recorders/jibri-finalize.sh` writes the [`READY`] marker there, so a folder is
//!   taken only once Jibri is done with it.
//! - **BigBlueButton** runs each `post_archive` script with the meeting ID once the raw
//!   recording is archived under `/var/bigbluebutton/recording/raw/<meeting ID>/` (the audio
//!   in `audio/`, the meeting's name in `events.xml`); `infra/recorders/bbb-post-archive.rb`
//!   writes the marker there.
//! - **Zoom**'s local recording writes a folder per meeting, named by its start time, topic
//!   and meeting number, with `audio_only.m4a` once the meeting's conversion has finished
//!   (a `.zoom` file stands in for the media until then).
//! - A **drop** folder (OBS, anything else) holds plain media files: one is taken once its
//!   size and modification time have not changed for the settle time.

use std::{
    path::{Path, PathBuf},
    time::SystemTime,
};

/// The marker a hook writes into a recording's folder once the software is done with it.
pub const READY: &str = ".quorate-ready";

/// Which software records into a watched folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SourceKind {
    /// Jitsi's Jibri: a folder per recording, taken once its finalize hook marked it.
    Jibri,
    /// BigBlueButton's raw recordings: a folder per meeting, marked by the post-archive hook.
    Bbb,
    /// Zoom's local recordings: a folder per meeting with `audio_only.m4a`.
    Zoom,
    /// Media files dropped into the folder (OBS and anything else).
    Drop,
}

/// A finished recording found in a watched folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The media file to upload.
    pub file: PathBuf,
    /// The meeting's title.
    pub title: String,
    /// When the meeting started, Unix seconds, where the source says so exactly.
    pub started_at: Option<i64>,
    /// Who attended, where the source names them.
    pub attendees: Vec<String>,
    /// What holds plaintext of this recording and goes once it is uploaded (when removing
    /// is configured): the file, or the recording's whole folder.
    pub plaintext: Vec<PathBuf>,
}

/// Media files, by extension: what the node can decode.
const MEDIA: &[&str] = &[
    "wav", "flac", "mp3", "m4a", "mp4", "aac", "ogg", "oga", "opus", "webm", "mkv",
];

/// Whether `path` names a media file that is not a hidden or partial one.
fn is_media(path: &Path) -> bool {
    let name = path
        .file_name()
        .and_then(|name| name.to_str())
        .unwrap_or("");
    let extension = path
        .extension()
        .and_then(|extension| extension.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    !name.starts_with('.') && MEDIA.contains(&extension.as_str())
}

/// The entries of `folder`, sorted by name (an unreadable folder has none).
fn entries(folder: &Path) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(folder)
        .map(|read| read.filter_map(|entry| Some(entry.ok()?.path())).collect())
        .unwrap_or_default();
    paths.sort();
    paths
}

/// A file's size and modification time: a file still being written changes them.
pub fn signature(path: &Path) -> Option<(u64, SystemTime)> {
    let metadata = std::fs::metadata(path).ok()?;
    Some((metadata.len(), metadata.modified().ok()?))
}

/// What is in `folder` for `kind`. Drop-folder files are candidates that must still settle;
/// everything else is finished by the source's own word.
pub fn scan(kind: SourceKind, folder: &Path) -> Vec<Found> {
    match kind {
        SourceKind::Drop => entries(folder)
            .into_iter()
            .filter(|path| path.is_file() && is_media(path))
            .map(|file| dropped(&file))
            .collect(),
        SourceKind::Jibri => marked_folders(folder)
            .flat_map(|folder| jibri(&folder))
            .collect(),
        SourceKind::Bbb => marked_folders(folder)
            .flat_map(|folder| bigbluebutton(&folder))
            .collect(),
        SourceKind::Zoom => entries(folder)
            .into_iter()
            .filter(|path| path.is_dir())
            .filter_map(|folder| zoom(&folder))
            .collect(),
    }
}

/// The sub-folders of `folder` that a hook marked finished.
fn marked_folders(folder: &Path) -> impl Iterator<Item = PathBuf> {
    entries(folder)
        .into_iter()
        .filter(|path| path.is_dir() && path.join(READY).is_file())
}

/// A file dropped into a drop folder: titled by its name.
fn dropped(file: &Path) -> Found {
    Found {
        file: file.to_owned(),
        title: stem(file),
        started_at: None,
        attendees: Vec::new(),
        plaintext: vec![file.to_owned()],
    }
}

fn stem(file: &Path) -> String {
    file.file_stem()
        .map(|stem| stem.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// A Jibri recording folder: its media file, titled by the room of the meeting URL in
/// `metadata.json`, with the participants' display names; the whole folder is its
/// plaintext. A folder with several media files gives one recording each, and each file
/// alone is removed, so nothing not uploaded goes with the folder.
fn jibri(folder: &Path) -> Vec<Found> {
    let media: Vec<PathBuf> = entries(folder)
        .into_iter()
        .filter(|path| path.is_file() && is_media(path))
        .collect();
    let metadata: serde_json::Value = std::fs::read(folder.join("metadata.json"))
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default();
    let room = metadata["meeting_url"]
        .as_str()
        .and_then(|url| url.split('?').next())
        .and_then(|url| url.trim_end_matches('/').rsplit('/').next())
        .map(percent_decoded)
        .filter(|room| !room.is_empty());
    let attendees: Vec<String> = metadata["participants"]
        .as_array()
        .map(|participants| {
            participants
                .iter()
                .filter_map(|participant| {
                    participant["displayName"]
                        .as_str()
                        .or_else(|| participant["name"].as_str())
                })
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let parts = media.len();
    media
        .into_iter()
        .enumerate()
        .map(|(index, file)| {
            let name = room.clone().unwrap_or_else(|| stem(&file));
            Found {
                title: if parts > 1 {
                    format!("{name} (part {} of {parts})", index + 1)
                } else {
                    name
                },
                plaintext: if parts > 1 {
                    vec![file.clone()]
                } else {
                    vec![folder.to_owned()]
                },
                file,
                started_at: None,
                attendees: attendees.clone(),
            }
        })
        .collect()
}

/// `text` with its `%XX` escapes decoded (a room name from a URL).
fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let escaped = (bytes[index] == b'%')
            .then(|| text.get(index + 1..index + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                index += 3;
            }
            None => {
                out.push(bytes[index]);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A BigBlueButton raw recording: one recording per audio file in `audio/`, titled by the
/// meeting's name in `events.xml`, starting when its internal ID says (`<hash>-<ms>`), with
/// the names of those who joined. Only the audio files are this recorder's to remove: the
/// rest of the raw folder is BigBlueButton's (see docs/RECORDERS.md).
fn bigbluebutton(folder: &Path) -> Vec<Found> {
    let events = std::fs::read_to_string(folder.join("events.xml")).unwrap_or_default();
    let name = xml_attribute(&events, "metadata", "meetingName")
        .or_else(|| xml_attribute(&events, "meeting", "name"))
        .unwrap_or_else(|| stem(folder));
    let started_at = folder
        .file_name()
        .and_then(|name| name.to_str())
        .and_then(|id| id.rsplit_once('-'))
        .and_then(|(_, millis)| millis.parse::<i64>().ok())
        .filter(|millis| *millis > 1_000_000_000_000)
        .map(|millis| millis / 1000);
    let attendees = joined_names(&events);
    let audio: Vec<PathBuf> = entries(&folder.join("audio"))
        .into_iter()
        .filter(|path| path.is_file() && is_media(path))
        .collect();
    let parts = audio.len();
    audio
        .into_iter()
        .enumerate()
        .map(|(index, file)| Found {
            title: if parts > 1 {
                format!("{name} (part {} of {parts})", index + 1)
            } else {
                name.clone()
            },
            plaintext: vec![file.clone()],
            file,
            started_at,
            attendees: attendees.clone(),
        })
        .collect()
}

/// The value of `attribute` on the first `<element …>` in `xml`, entities decoded.
fn xml_attribute(xml: &str, element: &str, attribute: &str) -> Option<String> {
    let start = xml.find(&format!("<{element} "))?;
    let tag = &xml[start..start + xml[start..].find('>')?];
    let marker = format!(" {attribute}=\"");
    let value_start = tag.find(&marker)? + marker.len();
    let value = &tag[value_start..value_start + tag[value_start..].find('"')?];
    Some(xml_text(value))
}

/// The distinct `<name>` of every participant-join event in `events.xml`, in order.
fn joined_names(events: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for event in events.split("<event ").skip(1) {
        if !event.contains("eventname=\"ParticipantJoinEvent\"") {
            continue;
        }
        let name = event
            .split_once("<name>")
            .and_then(|(_, rest)| rest.split_once("</name>"))
            .map(|(name, _)| xml_text(name.trim()));
        if let Some(name) = name.filter(|name| !name.is_empty() && !names.contains(name)) {
            names.push(name);
        }
    }
    names
}

/// XML text with the five predefined entities (and a CDATA wrapper) decoded.
fn xml_text(text: &str) -> String {
    let cdata = text
        .strip_prefix("<![CDATA[")
        .and_then(|inner| inner.strip_suffix("]]>"));
    match cdata {
        Some(raw) => raw.to_owned(),
        None => text
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&"),
    }
}

/// A Zoom meeting folder (`2026-11-24 10.00.00 Budget committee 81234567890`) once its
/// `audio_only.m4a` exists and no `.zoom` placeholder waits for conversion: titled by the
/// topic, with the date and time from the name (Zoom's local time, so shown, not converted).
fn zoom(folder: &Path) -> Option<Found> {
    let file = folder.join("audio_only.m4a");
    let converting = entries(folder).iter().any(|path| {
        path.extension()
            .is_some_and(|extension| extension == "zoom")
    });
    if converting || !file.is_file() {
        return None;
    }
    let name = folder.file_name()?.to_string_lossy().into_owned();
    Some(Found {
        title: zoom_title(&name),
        file,
        started_at: None,
        attendees: Vec::new(),
        plaintext: vec![folder.to_owned()],
    })
}

/// "Budget committee (2026-11-24 10:00)" from "2026-11-24 10.00.00 Budget committee 8123…";
/// a name in another shape is the title as it is.
fn zoom_title(name: &str) -> String {
    let mut words = name.splitn(3, ' ');
    let (Some(date), Some(time), Some(rest)) = (words.next(), words.next(), words.next()) else {
        return name.to_owned();
    };
    let dated = date.len() == 10 && date.as_bytes()[4] == b'-' && time.len() == 8;
    if !dated {
        return name.to_owned();
    }
    let topic = match rest.rsplit_once(' ') {
        Some((topic, number)) if number.chars().all(|c| c.is_ascii_digit()) => topic,
        _ => rest,
    };
    format!("{topic} ({date} {})", time[..5].replace('.', ":"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, bytes: &[u8]) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }

    #[test]
    fn a_jibri_folder_is_taken_once_marked_and_titled_by_its_room() {
        let root = tempfile::tempdir().unwrap();
        let session = root.path().join("abcd1234");
        write(
            &session.join("budgetcommittee_2026-11-24-10-00-00.mp4"),
            &[0; 64],
        );
        write(
            &session.join("metadata.json"),
            br#"{"meeting_url":"https://meet.example.org/Budget%20Committee?x=1","participants":[{"displayName":"Ada"},{"name":"Bo"}],"tenant":"council"}"#,
        );
        assert!(
            scan(SourceKind::Jibri, root.path()).is_empty(),
            "not yet finalized"
        );
        write(&session.join(READY), b"");
        let found = scan(SourceKind::Jibri, root.path());
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].title, "Budget Committee");
        assert_eq!(found[0].attendees, ["Ada", "Bo"]);
        assert_eq!(found[0].plaintext, std::slice::from_ref(&session));
        assert!(
            found[0]
                .file
                .ends_with("budgetcommittee_2026-11-24-10-00-00.mp4")
        );
    }

    #[test]
    fn a_bigbluebutton_recording_is_titled_from_its_events_and_dated_by_its_id() {
        let root = tempfile::tempdir().unwrap();
        let raw = root.path().join("0123abcd-1764000000000");
        write(
            &raw.join("events.xml"),
            br#"<recording meeting_id="0123abcd-1764000000000"><metadata isBreakout="false" meetingName="Council &amp; Cabinet"/><event timestamp="1" module="PARTICIPANT" eventname="ParticipantJoinEvent"><userId>w_1</userId><name>Ada</name></event><event eventname="ParticipantJoinEvent"><name>Bo</name></event><event eventname="ParticipantJoinEvent"><name>Ada</name></event></recording>"#,
        );
        write(&raw.join("audio/0123abcd-1764000000000-1.opus"), &[0; 64]);
        write(&raw.join(READY), b"");
        let found = scan(SourceKind::Bbb, root.path());
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].title, "Council & Cabinet");
        assert_eq!(found[0].started_at, Some(1_764_000_000));
        assert_eq!(found[0].attendees, ["Ada", "Bo"]);
        assert_eq!(found[0].plaintext, [found[0].file.clone()]);
    }

    #[test]
    fn a_zoom_folder_waits_for_its_conversion() {
        let root = tempfile::tempdir().unwrap();
        let meeting = root
            .path()
            .join("2026-11-24 10.00.00 Budget committee 81234567890");
        write(&meeting.join("double_click_to_convert_01.zoom"), &[0; 8]);
        assert!(scan(SourceKind::Zoom, root.path()).is_empty());
        std::fs::remove_file(meeting.join("double_click_to_convert_01.zoom")).unwrap();
        write(&meeting.join("audio_only.m4a"), &[0; 64]);
        let found = scan(SourceKind::Zoom, root.path());
        assert_eq!(found[0].title, "Budget committee (2026-11-24 10:00)");
        assert_eq!(found[0].plaintext, [meeting]);
        assert_eq!(zoom_title("My meeting"), "My meeting");
    }

    #[test]
    fn a_drop_folder_offers_media_files_but_not_hidden_or_partial_ones() {
        let root = tempfile::tempdir().unwrap();
        for name in [
            "Board 2026-11-24.mkv",
            ".hidden.wav",
            "notes.txt",
            "upload.mp4.part",
        ] {
            write(&root.path().join(name), &[0; 8]);
        }
        let found = scan(SourceKind::Drop, root.path());
        let titles: Vec<&str> = found.iter().map(|found| found.title.as_str()).collect();
        assert_eq!(titles, ["Board 2026-11-24"]);
    }
}
