//! Memory that does not grow with the recording (issue 19): the node's pipeline on two-hour
//! recordings, each run in a process of its own so that its peak RSS (VmHWM) is its own.
//!
//! - a two-hour WAV (16 kHz mono, 230 MB) and a two-hour MP4 with a video track (64x36
//!   H.264 at 5 frames a second, AAC at 48 kHz, its index at the end), each twelve times the
//!   bench's ten-minute meeting (the sentences with 5 to 20 s of quiet, then silence);
//! - each encrypted to an age file, then, as the node does: spooled through the checked
//!   download, decrypted with the seekable age reader into the demuxer, decoded and
//!   resampled piece by piece, transcribed chunk by chunk with the VAD;
//! - beside it, the node's earlier way on the WAV: the ciphertext, the plaintext and every
//!   sample in memory at once, transcribed whole.
//!
//! Each prints its peak RSS above the model's (the model loaded and one short transcription
//! done, so Whisper's own buffers are in it), its wall time and its words.
//!
//! Run: `scripts/bench-node.sh memory`. Uses `espeak-ng` and `ffmpeg`.

use std::{
    io::{BufReader, BufWriter, Read, Write},
    path::{Path, PathBuf},
    process::Command,
    time::Instant,
};

use quorate_crypto::{AgeSecretKey, envelope};
use quorate_node::{
    audio::{self, AudioStream},
    job::{self, CheckedDownload},
    model,
    transcribe::{Settings, Transcriber, free_cores},
};

mod common;
use common::{meeting, peak_rss_mib};

/// Set in a child: which way it transcribes, and the files it needs.
const CHILD: &str = "QUORATE_BENCH_MEMORY_CHILD";

/// The meeting is repeated this many times, ten minutes each.
const REPEATS: u32 = 12;

fn main() {
    if let Ok(way) = std::env::var(CHILD) {
        return child(&way);
    }
    let out = common::output_folder();
    let (ggml, silero) = common::converted_models(&out, model::Weights::F16);
    let key = AgeSecretKey::generate();
    std::fs::write(out.join("key.txt"), key.to_age_string().as_bytes()).unwrap();

    println!("==> making two hours of meeting audio (test data, espeak-ng and ffmpeg)");
    let block = out.join("block.wav");
    std::fs::write(out.join("meeting.wav"), meeting()).unwrap();
    ffmpeg(&[
        "-i",
        path(&out.join("meeting.wav")),
        "-af",
        "apad=whole_dur=600",
        path(&block),
    ]);
    let loops = (REPEATS - 1).to_string();
    let wav = out.join("two-hours.wav");
    ffmpeg(&[
        "-stream_loop",
        &loops,
        "-i",
        path(&block),
        "-c",
        "copy",
        path(&wav),
    ]);
    let mp4 = out.join("two-hours.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "color=c=gray:s=64x36:r=5",
        "-stream_loop",
        &loops,
        "-i",
        path(&block),
        "-shortest",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-c:a",
        "aac",
        "-b:a",
        "64k",
        "-ar",
        "48000",
        path(&mp4),
    ]);

    println!(
        "tiny.en f16 with the Silero VAD, {} threads; peak RSS above the model's (loaded, one short transcription done)",
        free_cores()
    );
    for (way, media) in [("chunked", &wav), ("whole", &wav), ("chunked", &mp4)] {
        let encrypted = media.with_extension("age");
        if !encrypted.exists() {
            encrypt(media, &encrypted, &key);
        }
        let output = Command::new(std::env::current_exe().unwrap())
            .env(CHILD, way)
            .env("QUORATE_BENCH_CIPHERTEXT", &encrypted)
            .env("QUORATE_BENCH_MODEL", &ggml)
            .env("QUORATE_BENCH_VAD", &silero)
            .env("QUORATE_BENCH_KEY", out.join("key.txt"))
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{way} {}: {}",
            media.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        let size = std::fs::metadata(media).unwrap().len() as f64 / f64::from(1 << 20);
        print!(
            "{:<16} {size:>6.0} MiB, {way:<7}: {}",
            media.file_name().unwrap().to_string_lossy(),
            String::from_utf8_lossy(&output.stdout)
        );
    }
}

fn path(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn ffmpeg(arguments: &[&str]) {
    let status = Command::new("ffmpeg")
        .args(["-y", "-loglevel", "error"])
        .args(arguments)
        .status()
        .expect("ffmpeg (scripts/install-test-deps.sh installs it)");
    assert!(status.success(), "ffmpeg {arguments:?}");
}

/// Encrypts `media` to an age file at `encrypted`, streaming.
fn encrypt(media: &Path, encrypted: &Path, key: &AgeSecretKey) {
    let input = BufReader::new(std::fs::File::open(media).unwrap());
    let output = BufWriter::new(std::fs::File::create(encrypted).unwrap());
    let (mut output, _) = envelope::encrypt(input, output, &key.recipient()).unwrap();
    output.flush().unwrap();
}

fn variable(name: &str) -> PathBuf {
    std::env::var_os(name)
        .unwrap_or_else(|| panic!("{name} is set by the bench's parent"))
        .into()
}

/// One way of transcribing one recording, in this process of its own.
fn child(way: &str) {
    let key_text = std::fs::read_to_string(variable("QUORATE_BENCH_KEY")).unwrap();
    let key = AgeSecretKey::from_age_string(key_text.trim()).unwrap();
    let transcriber = Transcriber::load_with(
        &variable("QUORATE_BENCH_MODEL"),
        Settings::for_threads(free_cores()),
    )
    .unwrap()
    .with_speech_detection(&variable("QUORATE_BENCH_VAD"))
    .unwrap();
    // The model's own footprint: loaded, and one transcription of the first minute of the
    // meeting done, so that Whisper's state and compute buffers are counted in it.
    let warm_up = audio::decode(meeting(), "audio/wav").unwrap();
    transcriber
        .transcribe(&warm_up[..60 * audio::SAMPLE_RATE as usize], |_| {})
        .unwrap();
    drop(warm_up);
    let model = peak_rss_mib();

    let ciphertext = variable("QUORATE_BENCH_CIPHERTEXT");
    let started = Instant::now();
    let (_, segments) = match way {
        "whole" => {
            let mut bytes = Vec::new();
            std::fs::File::open(&ciphertext)
                .unwrap()
                .read_to_end(&mut bytes)
                .unwrap();
            let mut plaintext = zeroize::Zeroizing::new(Vec::with_capacity(bytes.len()));
            envelope::decrypt(&bytes[..], &mut *plaintext, &key).unwrap();
            drop(bytes);
            let samples = audio::decode(plaintext, "application/octet-stream").unwrap();
            transcriber.transcribe(&samples, |_| {}).unwrap()
        }
        _ => {
            let len = std::fs::metadata(&ciphertext).unwrap().len();
            let sha256 = sha256_of(&ciphertext);
            let mut download = CheckedDownload::new("recording", len, sha256, u64::MAX).unwrap();
            let mut file = std::fs::File::open(&ciphertext).unwrap();
            let mut piece = vec![0u8; 1 << 20];
            loop {
                let read = file.read(&mut piece).unwrap();
                if read == 0 {
                    break;
                }
                download.write_all(&piece[..read]).unwrap();
            }
            let plaintext = job::decrypt(download.finish().unwrap(), &key).unwrap();
            let mut stream = AudioStream::open(plaintext, "application/octet-stream").unwrap();
            transcriber
                .transcribe_stream(&mut stream, Some("en"), |_| {}, || false)
                .unwrap()
        }
    };
    let elapsed = started.elapsed().as_secs_f64();
    let words: usize = segments
        .iter()
        .map(|segment| segment.text.split_whitespace().count())
        .sum();
    println!(
        "peak {:>5.0} MiB above the model's {model:.0} MiB; {elapsed:.1} s, {words} words",
        peak_rss_mib() - model
    );
}

/// The SHA-256 of a file, as the signed manifest would name it.
fn sha256_of(file: &Path) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    std::io::copy(
        &mut BufReader::new(std::fs::File::open(file).unwrap()),
        &mut hasher,
    )
    .unwrap();
    hasher.finalize().into()
}
