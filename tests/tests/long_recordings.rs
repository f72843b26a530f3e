//! A recording longer than one of the node's chunks, the way the node meets it: an MP4 with a
//! video track and its index at the end (ffmpeg's default), encrypted to an age file,
//! spooled through the checked download, decrypted with the seekable age reader straight
//! into the demuxer, decoded and resampled piece by piece, and transcribed chunk by chunk
//! (60-s chunks here, so that three of them cover the 140-s recording). The words come back whole,
//! at the recording's own times.

use quorate_crypto::{AgeSecretKey, envelope};
use quorate_e2e::{converted_models, room_noise, spoken, word_error_rate};
use quorate_node::{
    audio::{self, AudioStream},
    job::{self, CheckedDownload},
    transcribe::{Transcriber, free_cores},
};
use sha2::{Digest, Sha256};
use std::{
    io::Write,
    sync::{Arc, Mutex},
};

/// Each sentence's time in the recording, a word of it the test looks for, and the sentence.
const SENTENCES: [(f64, &str, &str); 4] = [
    (
        3.0,
        "meeting",
        "The chair opened the meeting and welcomed the members.",
    ),
    // Where the first chunk's cut is looked for (30 to 60 s): the cut must fall around it.
    (
        44.0,
        "roof",
        "The repairs to the town hall roof were approved.",
    ),
    (
        70.0,
        "bridge",
        "The committee discussed the new bridge over the river.",
    ),
    (
        125.0,
        "budget",
        "The treasurer presented the accounts and the members approved the budget.",
    ),
];
const LENGTH_SECONDS: f64 = 140.0;

/// The meeting: room noise with each sentence spoken at its time.
fn meeting() -> Vec<f32> {
    let rate = f64::from(audio::SAMPLE_RATE);
    let mut samples = room_noise(LENGTH_SECONDS, 0.003);
    for (at, _, text) in SENTENCES {
        let start = (at * rate) as usize;
        for (place, sample) in samples[start..].iter_mut().zip(spoken(text)) {
            *place += sample;
        }
    }
    samples
}

/// The audio in an MP4 with a tiny video track beside it, AAC at 48 kHz (so it is resampled),
/// with the `moov` index after the media, as ffmpeg writes it by default.
fn mp4_with_video(samples: &[f32]) -> Vec<u8> {
    let folder = tempfile::tempdir().unwrap();
    let input = folder.path().join("meeting.wav");
    let output = folder.path().join("meeting.mp4");
    std::fs::write(&input, audio::pcm_wav(audio::SAMPLE_RATE, samples)).unwrap();
    let status = std::process::Command::new("ffmpeg")
        .args(["-y", "-loglevel", "error"])
        .args(["-f", "lavfi", "-i", "color=c=gray:s=64x36:r=5"])
        .arg("-i")
        .arg(&input)
        .args(["-shortest", "-c:v", "libx264", "-preset", "ultrafast"])
        .args(["-c:a", "aac", "-b:a", "128k", "-ar", "48000"])
        .arg(&output)
        .status()
        .expect("ffmpeg is installed by scripts/install-test-deps.sh");
    assert!(status.success(), "ffmpeg could not make the MP4");
    std::fs::read(output).unwrap()
}

#[test]
fn a_recording_longer_than_a_chunk_is_transcribed_whole_at_its_own_times() {
    let media = mp4_with_video(&meeting());
    let moov = media.windows(4).position(|box_type| box_type == b"moov");
    let mdat = media.windows(4).position(|box_type| box_type == b"mdat");
    assert!(
        moov > mdat,
        "the index comes after the media, so the demuxer must seek"
    );

    let key = AgeSecretKey::generate();
    let (ciphertext, _) = envelope::encrypt(&media[..], Vec::new(), &key.recipient()).unwrap();
    let sha256: [u8; 32] = Sha256::digest(&ciphertext).into();
    let mut download =
        CheckedDownload::new("recording", ciphertext.len() as u64, sha256, 1 << 30).unwrap();
    // In pieces, as the server streams it.
    for piece in ciphertext.chunks(100_000) {
        download.write_all(piece).unwrap();
    }
    let plaintext = job::decrypt(download.finish().unwrap(), &key).unwrap();
    let mut stream = AudioStream::open(plaintext, "application/octet-stream").unwrap();

    let folder = tempfile::tempdir().unwrap();
    let (whisper, detector) = converted_models(folder.path());
    let transcriber = Transcriber::load(&whisper, free_cores())
        .unwrap()
        .with_speech_detection(&detector)
        .unwrap()
        .with_chunk_seconds(60);
    let reported = Arc::new(Mutex::new(Vec::new()));
    let progress = Arc::clone(&reported);
    let (language, segments) = transcriber
        .transcribe_stream(
            &mut stream,
            None,
            move |percent| progress.lock().unwrap().push(percent),
            || false,
        )
        .unwrap();

    assert_eq!(language, "en", "an English-only model transcribes English");
    let heard: Vec<&str> = segments
        .iter()
        .map(|segment| segment.text.as_str())
        .collect();
    let said: Vec<&str> = SENTENCES.iter().map(|(_, _, text)| *text).collect();
    let rate = word_error_rate(&said.join(" "), &heard.join(" "));
    // tiny.en on four short sentences, each alone in its chunk after AAC, mishears a word
    // or two in each ("opens", "treasure"); a chunk that lost or repeated audio would lose or
    // repeat whole sentences.
    assert!(rate < 0.3, "word error rate {rate:.2}: {heard:?}");
    for (at, word, _) in SENTENCES {
        let with_word: Vec<_> = segments
            .iter()
            .filter(|segment| segment.text.to_lowercase().contains(word))
            .collect();
        let [segment] = with_word[..] else {
            panic!("{word:?} is said once, at {at} s: {segments:?}");
        };
        assert!(
            (segment.start - at).abs() < 1.5,
            "{word:?} is said at {at} s, the transcript puts it at {} s",
            segment.start
        );
    }
    assert!(
        segments
            .windows(2)
            .all(|pair| pair[0].start <= pair[1].start),
        "segments in the recording's order"
    );
    let reported = reported.lock().unwrap();
    assert!(
        reported.windows(2).all(|pair| pair[0] <= pair[1]) && reported.last() == Some(&100),
        "progress rises to 100: {reported:?}"
    );
}
