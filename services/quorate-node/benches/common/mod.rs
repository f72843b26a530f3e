//! What the node's benchmarks share: the models converted by the node's importers from the
//! wheels `scripts/bench-node.sh` names, and the peak RSS.

use std::path::{Path, PathBuf};

use quorate_node::{audio, model, vad};

/// What the benchmarks' speech says (espeak-ng reads it).
pub const TEXT: &str = "The meeting opened at ten. The chair welcomed the members and the two \
    guests from the planning office. The minutes of the last meeting were read and approved \
    without changes. The treasurer presented the accounts for the third quarter: income was \
    slightly above the forecast, and spending on the library repairs was lower than expected \
    because the contractor finished early. The committee discussed the new bridge over the \
    river. Several members asked for a second survey of the riverbank before any decision. \
    The planning office will report again in January. Under any other business, the secretary \
    reminded everyone that the annual report is due at the end of the month. The chair thanked \
    the members and closed the meeting at half past eleven.";

/// The process's peak resident memory so far (VmHWM), in MiB.
pub fn peak_rss_mib() -> f64 {
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

/// The folder named by the bench's first argument that is not an option (where
/// `scripts/bench-node.sh` wants the audio and the words), made if missing.
pub fn output_folder() -> PathBuf {
    let out: PathBuf = std::env::args()
        .skip(1)
        .find(|arg| !arg.starts_with('-'))
        .map_or_else(
            || std::env::temp_dir().join("quorate-bench-node"),
            Into::into,
        );
    std::fs::create_dir_all(&out).unwrap();
    out
}

/// A wheel `scripts/bench-node.sh` names in the environment variable `variable`.
fn wheel_from(variable: &str) -> PathBuf {
    std::env::var_os(variable)
        .unwrap_or_else(|| panic!("run scripts/bench-node.sh, which sets {variable}"))
        .into()
}

/// tiny.en converted with `weights` and the Silero VAD, written into `out`: their paths.
pub fn converted_models(out: &Path, weights: model::Weights) -> (PathBuf, PathBuf) {
    let ggml = out.join("tiny.en.ggml");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&ggml).unwrap());
    let ct2 = model::read_ct2(&[wheel_from("QUORATE_MODEL_WHEEL")]).unwrap();
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
    (ggml, silero)
}

/// The bench text's sentences spoken with gaps of quiet room noise (5 to 20 s) between them,
/// as a 16-bit WAV at 16 kHz.
pub fn meeting() -> Vec<u8> {
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
    audio::pcm_wav(audio::SAMPLE_RATE, &samples)
}
