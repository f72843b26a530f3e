//! Transcription with whisper-rs on this machine's free cores.

use whisper_rs::{FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters};
use zeroize::Zeroize;

use crate::job::Segment;

/// A loaded Whisper model.
pub struct Transcriber {
    context: WhisperContext,
    threads: usize,
}

impl std::fmt::Debug for Transcriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transcriber")
            .field("threads", &self.threads)
            .finish()
    }
}

/// The cores this process may use: ggml's worker threads spin at barriers, so more threads
/// than free cores makes it many times slower.
pub fn free_cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// A segment's text (bytes whisper.cpp holds), trimmed, in a string allocated once at its
/// length. Invalid UTF-8 is replaced, in a temporary copy that is wiped before it is freed.
fn owned_text(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let trimmed = text.trim().to_owned();
    if let std::borrow::Cow::Owned(mut replaced) = text {
        replaced.zeroize();
    }
    trimmed
}

impl Transcriber {
    /// Loads a ggml model file (flash attention on).
    pub fn load(path: &std::path::Path, threads: usize) -> Result<Self, String> {
        // whisper.cpp's and ggml's own log lines go to `tracing`, not to stderr.
        whisper_rs::install_logging_hooks();
        let mut parameters = WhisperContextParameters::default();
        parameters.flash_attn(true);
        let context = WhisperContext::new_with_params(path, parameters)
            .map_err(|error| format!("whisper.cpp cannot load {}: {error}", path.display()))?;
        Ok(Self {
            context,
            threads: threads.clamp(1, free_cores()),
        })
    }

    /// Transcribes 16 kHz mono samples, calling `progress(percent)` as it goes.
    pub fn transcribe(
        &self,
        samples: &[f32],
        progress: impl FnMut(i32) + 'static,
    ) -> Result<(String, Vec<Segment>), String> {
        self.transcribe_until(samples, progress, || false)
    }

    /// [`Transcriber::transcribe`], given up (with an error) as soon as `stop()` says so:
    /// whisper.cpp asks between its steps, so a node asked to stop need not wait for the end
    /// of a long recording.
    pub fn transcribe_until(
        &self,
        samples: &[f32],
        progress: impl FnMut(i32) + 'static,
        stop: impl FnMut() -> bool + 'static,
    ) -> Result<(String, Vec<Segment>), String> {
        let mut state = self
            .context
            .create_state()
            .map_err(|error| format!("whisper state: {error}"))?;
        let mut params = FullParams::new(SamplingStrategy::Greedy { best_of: 1 });
        params.set_n_threads(self.threads as i32);
        params.set_language(Some("en"));
        params.set_print_progress(false);
        params.set_print_realtime(false);
        params.set_print_timestamps(false);
        params.set_progress_callback_safe(progress);
        // whisper-rs 0.16 stores the closure as a `Box<dyn FnMut() -> bool>` but calls it
        // through a pointer cast to the closure's own type: a closure of another type is
        // read as the wrong thing (the encoder then fails at once). Given exactly that boxed
        // type, the two agree.
        let stop: Box<dyn FnMut() -> bool> = Box::new(stop);
        params.set_abort_callback_safe(stop);
        state
            .full(params, samples)
            .map_err(|error| format!("transcription failed: {error}"))?;
        let segments = state
            .as_iter()
            .map(|segment| Segment {
                // whisper.cpp counts in hundredths of a second.
                start: segment.start_timestamp() as f64 / 100.0,
                end: segment.end_timestamp() as f64 / 100.0,
                text: segment.to_bytes().map(owned_text).unwrap_or_default(),
            })
            .collect();
        Ok(("en".to_owned(), segments))
    }
}
