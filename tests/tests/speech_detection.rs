//! Voice activity detection with the real Silero VAD (the silero-vad wheel the test command
//! fetches, its hash pinned), converted by the node's own importer: whisper.cpp loads it, a
//! meeting with long silences is transcribed with the words at the recording's own times, and
//! a recording of silence and room noise gives an empty transcript, not invented words.

use quorate_e2e::{
    Backend, Server, Staffed, converted_models, room_noise, spoken, vad_wheel, word_error_rate,
};
use quorate_node::{
    audio,
    transcribe::{Transcriber, free_cores},
    vad,
};
use sha2::{Digest, Sha256};

/// The converted VAD file: its length and SHA-256 from the wheel's safetensors, as an
/// independent prototype of the converter (written from the loader's layout) produced them.
const VAD_FILE_LEN: usize = 885_102;
const VAD_FILE_SHA256: &str = "6db9dace985f91c3367747f2080a16b891a7c67fa5fcff92825ced9c9ec660f0";

struct Engines {
    folder: tempfile::TempDir,
    plain: Transcriber,
    with_vad: Transcriber,
}

fn engines() -> Engines {
    let folder = tempfile::tempdir().unwrap();
    let (whisper, detector) = converted_models(folder.path());
    Engines {
        plain: Transcriber::load(&whisper, free_cores()).unwrap(),
        with_vad: Transcriber::load(&whisper, free_cores())
            .unwrap()
            .with_speech_detection(&detector)
            .expect("whisper.cpp loads the converted VAD"),
        folder,
    }
}

#[test]
fn the_importer_converts_the_silero_vad_byte_for_byte() {
    let safetensors = vad::read_safetensors(&vad_wheel()).unwrap();
    assert!(vad::is_silero_safetensors(&safetensors));
    let mut converted = Vec::new();
    vad::convert(&safetensors, &mut converted).unwrap();
    assert_eq!(converted.len(), VAD_FILE_LEN);
    assert_eq!(hex::encode(Sha256::digest(&converted)), VAD_FILE_SHA256);
    assert!(vad::is_vad_ggml(&converted[..18]));
    assert!(!vad::is_vad_ggml(b"lmgg\x04\x00\x00\x00abcdefghij"));
}

#[test]
fn only_speech_is_transcribed_and_its_times_are_the_recordings() {
    let engines = engines();
    let first = "The chair opened the meeting and welcomed the members.";
    let second = "The committee discussed the new bridge over the river.";
    let mut samples = room_noise(4.0, 0.002);
    samples.extend(spoken(first));
    let second_starts = samples.len() as f64 / f64::from(audio::SAMPLE_RATE) + 15.0;
    samples.extend(room_noise(15.0, 0.002));
    samples.extend(spoken(second));
    samples.extend(room_noise(8.0, 0.002));

    // The VAD finds the two sentences and nothing in the noise around them.
    let detector = engines.folder.path().join("silero.ggml");
    let found = vad::SpeechDetector::load(&detector, 1)
        .unwrap()
        .speech(&samples)
        .unwrap();
    assert_eq!(found.len(), 2, "{found:?}");
    assert!((found[0].start - 4.0).abs() < 0.5, "{found:?}");
    assert!((found[1].start - second_starts).abs() < 0.5, "{found:?}");

    let (_, segments) = engines.with_vad.transcribe(&samples, |_| {}).unwrap();
    let heard: Vec<&str> = segments
        .iter()
        .map(|segment| segment.text.as_str())
        .collect();
    let rate = word_error_rate(&format!("{first} {second}"), &heard.join(" "));
    assert!(rate < 0.1, "word error rate {rate:.2}: {heard:?}");
    // The words of the second sentence are placed after the 15-second silence, at the
    // recording's time (within the VAD's padding), not at the joined audio's.
    let bridge = segments
        .iter()
        .find(|segment| segment.text.contains("bridge"))
        .unwrap_or_else(|| panic!("no segment with the second sentence: {segments:?}"));
    assert!(
        (bridge.start - second_starts).abs() < 1.0,
        "the second sentence starts at {} s in the recording, the transcript says {} s",
        second_starts,
        bridge.start
    );
    assert!(segments[0].start >= 3.0, "{segments:?}");
    assert!(
        segments
            .windows(2)
            .all(|pair| pair[0].start <= pair[1].start && pair[0].end <= pair[1].start + 0.5),
        "{segments:?}"
    );
}

#[test]
fn silence_and_room_noise_give_an_empty_transcript() {
    let engines = engines();
    let samples = room_noise(30.0, 0.01);
    let (_, segments) = engines.with_vad.transcribe(&samples, |_| {}).unwrap();
    assert!(segments.is_empty(), "invented: {segments:?}");
    // What the VAD saves the transcript from: Whisper on its own writes something for the
    // same noise (here "[BLANK_AUDIO]"), so this test fails without the VAD.
    let (_, invented) = engines.plain.transcribe(&samples, |_| {}).unwrap();
    assert!(!invented.is_empty(), "Whisper alone wrote nothing either");
}

#[tokio::test]
async fn a_node_with_the_vad_imported_transcribes_and_refuses_a_changed_vad_file() {
    let server = Server::start(Backend::Sqlite).await;
    let staffed = Staffed::new(&server).await;
    let machine = &staffed.machine;
    let model = staffed.import_model().await;
    let imported = machine
        .ok(&["--json", "models", "import", vad_wheel().to_str().unwrap()])
        .await
        .json();
    assert_eq!(imported["sha256"], VAD_FILE_SHA256, "{imported}");
    assert_eq!(imported["role"], vad::POINTER);
    let status = machine.ok(&["--json", "status"]).await.json();
    assert_eq!(status["vad_model_sha256"], VAD_FILE_SHA256);
    assert_eq!(
        status["imported_model_sha256"], model,
        "the Whisper model stays the one in use"
    );
    staffed.approve_node(&model).await;

    let spoken = "The committee discussed the new bridge over the river.";
    let (recording, _) = staffed.upload(&staffed.members[0], spoken, "Board").await;
    let heard = staffed.transcribed(&staffed.admin, &recording).await;
    let rate = word_error_rate(spoken, &heard);
    assert!(rate < 0.1, "word error rate {rate:.2}: {heard:?}");

    // The VAD file changed on the node's disk: it refuses to start rather than run it.
    let path = machine
        .folder
        .path()
        .join("models")
        .join(format!("{VAD_FILE_SHA256}.ggml"));
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    std::fs::write(&path, bytes).unwrap();
    let refused = machine.run(&["run", "--once"]).await;
    assert_eq!(refused.code, 3, "{refused:?}");
    assert!(
        refused.stderr.contains("has changed since it was imported"),
        "{refused:?}"
    );
    server.stop().await;
}
