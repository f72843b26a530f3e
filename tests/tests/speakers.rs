//! Who said what, from recordings of one track per participant: three people, each on a
//! track of their own, speak in turn; the node transcribes each track and every segment
//! carries the right name, in every export. Names travel inside the encrypted recording.
//! One Matroska file with a stream per participant works the same way.

use std::{path::Path, sync::Arc};

use quorate_crypto::tracks::{TrackFile, Tracks};
use quorate_e2e::{Backend, Server, Staffed, converted_models, speech, vad_wheel};
use quorate_node::{
    speakers::transcribe_recording,
    transcribe::{Transcriber, free_cores},
};

/// Who speaks, when (seconds into the meeting), and what; each line's keyword appears in
/// no other.
const TURNS: [(&str, u32, &str, &str); 3] = [
    (
        "Ada",
        0,
        "budget",
        "The budget for next year is ready for your vote.",
    ),
    (
        "Bo",
        6,
        "library",
        "I support the money for the new library.",
    ),
    (
        "Cy",
        12,
        "roof",
        "The town hall roof must be repaired first.",
    ),
];

/// One participant's track: silence until `at` seconds, then `text` spoken, encoded by
/// ffmpeg as `extension` (the way per-participant recorders write them).
fn track(folder: &Path, name: &str, at: u32, text: &str, extension: &str) -> std::path::PathBuf {
    let spoken = folder.join(format!("{name}-espeak.wav"));
    std::fs::write(&spoken, speech(text)).unwrap();
    let out = folder.join(format!("{name}.{extension}"));
    let status = std::process::Command::new("ffmpeg")
        .args(["-y", "-loglevel", "error", "-i"])
        .arg(&spoken)
        .args(["-af", &format!("adelay={}:all=1", at * 1000)])
        .arg(&out)
        .status()
        .expect("ffmpeg is installed by scripts/install-test-deps.sh");
    assert!(status.success(), "ffmpeg could not make {extension}");
    out
}

/// Asserts that every segment names the speaker whose keyword it holds, and that each
/// speaker's keyword is heard; `segments` is a transcript's JSON segments.
fn assert_every_segment_names_its_speaker(segments: &[serde_json::Value]) {
    for (speaker, _, keyword, _) in TURNS {
        let theirs: Vec<&serde_json::Value> = segments
            .iter()
            .filter(|segment| {
                segment["text"]
                    .as_str()
                    .unwrap()
                    .to_lowercase()
                    .contains(keyword)
            })
            .collect();
        assert!(!theirs.is_empty(), "{keyword} is heard: {segments:?}");
        for segment in theirs {
            assert_eq!(segment["speaker"], speaker, "{segment}");
        }
    }
    assert!(
        segments
            .windows(2)
            .all(|pair| pair[0]["start"].as_f64() <= pair[1]["start"].as_f64()),
        "merged by time: {segments:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_three_speaker_recording_of_separate_tracks_exports_each_name_on_its_segments() {
    let server = Server::start(Backend::Sqlite).await;
    let staffed = Staffed::new(&server).await;
    let model = staffed.import_model().await;
    staffed
        .machine
        .ok(&["models", "import", vad_wheel().to_str().unwrap()])
        .await;
    staffed.approve_node(&model).await;

    // Three files, as Zoom's per-participant recording writes them, in three formats.
    let cy = &staffed.members[1];
    let folder = cy.folder.path();
    let formats = ["wav", "flac", "ogg"];
    let files: Vec<String> = TURNS
        .iter()
        .zip(formats)
        .map(|((name, at, _, text), extension)| {
            let path = track(folder, name, *at, text, extension);
            path.to_str().unwrap().to_owned()
        })
        .collect();
    let mut upload = vec!["--json", "upload"];
    upload.extend(files.iter().map(String::as_str));
    upload.extend(["--title", "Council", "--speaker", "Ada", "--speaker", "Bo"]);
    upload.extend(["--speaker", "Cy"]);
    let uploaded = cy.ok(&upload).await.json();
    let recording = uploaded["recording_id"].as_str().unwrap().to_owned();
    staffed.quorum(&recording, "transcribe").await;
    staffed.quorum(&recording, "release-transcript").await;

    let reader = &staffed.members[0];
    let export = |format: &'static str| {
        let recording = recording.clone();
        async move {
            reader
                .ok(&["transcript", &recording, "--format", format])
                .await
                .stdout
        }
    };
    let json: serde_json::Value = serde_json::from_str(&export("json").await).unwrap();
    assert_every_segment_names_its_speaker(json["segments"].as_array().unwrap());

    let vtt = export("vtt").await;
    let srt = export("srt").await;
    let minutes = export("md").await;
    for (speaker, _, keyword, _) in TURNS {
        let line_with = |text: &str| {
            text.lines()
                .find(|line| line.to_lowercase().contains(keyword))
                .unwrap_or_else(|| panic!("{keyword} in {text}"))
                .to_owned()
        };
        assert!(
            line_with(&vtt).starts_with(&format!("<v {speaker}>")),
            "{vtt}"
        );
        assert!(
            line_with(&srt).starts_with(&format!("{speaker}: ")),
            "{srt}"
        );
        assert!(
            line_with(&minutes).contains(&format!("**{speaker}:**")),
            "{minutes}"
        );
    }
    server.stop().await;
}

/// The three tracks as one Matroska file with three Opus streams, as a recorder that keeps
/// every participant in one file writes it.
fn matroska_of_three(folder: &Path) -> Vec<u8> {
    let inputs: Vec<std::path::PathBuf> = TURNS
        .iter()
        .map(|(name, at, _, text)| track(folder, name, *at, text, "wav"))
        .collect();
    let out = folder.join("meeting.mkv");
    let mut command = std::process::Command::new("ffmpeg");
    command.args(["-y", "-loglevel", "error"]);
    for input in &inputs {
        command.arg("-i").arg(input);
    }
    for index in 0..inputs.len() {
        command.args(["-map", &format!("{index}:a")]);
    }
    let status = command
        .args(["-c:a", "libopus", "-b:a", "48k"])
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success(), "ffmpeg could not make the Matroska file");
    std::fs::read(out).unwrap()
}

/// The transcript's segments as JSON, for the same checks as an export's.
fn as_json(segments: &[quorate_node::job::Segment]) -> Vec<serde_json::Value> {
    segments
        .iter()
        .map(|segment| serde_json::to_value(segment).unwrap())
        .collect()
}

#[test]
fn one_file_of_three_audio_streams_is_transcribed_stream_by_stream() {
    let folder = tempfile::tempdir().unwrap();
    let (whisper, detector) = converted_models(folder.path());
    let transcriber = Transcriber::load(&whisper, free_cores())
        .unwrap()
        .with_speech_detection(&detector)
        .unwrap();
    let media = matroska_of_three(folder.path());
    let transcribe = |plaintext: Vec<u8>| {
        let reported = Arc::new(std::sync::Mutex::new(Vec::new()));
        let progress = Arc::clone(&reported);
        let result = transcribe_recording(
            &transcriber,
            std::io::Cursor::new(plaintext),
            None,
            move |percent| progress.lock().unwrap().push(percent),
            || false,
        );
        let reported = reported.lock().unwrap().clone();
        (result, reported)
    };

    // Named by the upload, in the header inside the recording.
    let named = |names: &[&str]| {
        let mut plaintext = Tracks {
            files: vec![TrackFile {
                len: media.len() as u64,
                speakers: names.iter().map(|name| (*name).to_owned()).collect(),
            }],
        }
        .encode()
        .unwrap()
        .to_vec();
        plaintext.extend_from_slice(&media);
        plaintext
    };
    let (result, reported) = transcribe(named(&["Ada", "Bo", "Cy"]));
    let (language, segments) = result.unwrap();
    assert_eq!(language, "en");
    assert_every_segment_names_its_speaker(&as_json(&segments));
    assert!(
        reported.windows(2).all(|pair| pair[0] <= pair[1]) && reported.last() == Some(&100),
        "progress rises to 100 over the three streams: {reported:?}"
    );

    // Unnamed, the file is transcribed from its default track alone, with no speaker (a
    // second track is as often a mix of the first as another voice).
    let (result, _) = transcribe(media.clone());
    let (_, segments) = result.unwrap();
    assert!(segments.iter().all(|segment| segment.speaker.is_none()));
    let heard = serde_json::to_string(&as_json(&segments))
        .unwrap()
        .to_lowercase();
    assert!(
        heard.contains("budget") && !heard.contains("library") && !heard.contains("roof"),
        "{heard}"
    );

    // Two names for three streams: refused, saying what to do.
    let (result, _) = transcribe(named(&["Ada", "Bo"]));
    let error = result.unwrap_err().to_string();
    assert!(
        error.contains("3 audio streams") && error.contains("one --speaker for each stream"),
        "{error}"
    );
}
