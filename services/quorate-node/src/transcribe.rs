//! Transcription with whisper-rs on this machine's free cores.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use whisper_rs::{
    FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters, WhisperState,
};
use zeroize::Zeroize;

use crate::{
    audio::{AudioStream, SAMPLE_RATE},
    job::{Heard, Segment},
    secret::SecretVec,
    vad::{SpeechDetector, SpeechOnly},
};

/// The most audio Whisper is given at once by [`Transcriber::transcribe_stream`]: ten
/// minutes, 38 MB of samples and Whisper's 19 MB spectrogram of them. A longer recording is
/// transcribed chunk by chunk, so memory does not grow with its length.
pub const CHUNK_SECONDS: u32 = 600;

/// How far back from a chunk's end its cut may go to fall in a pause rather than a word.
const CUT_SEARCH_SECONDS: u32 = 30;

/// Why a streamed transcription stopped.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// The recording could not be read or decoded.
    #[error(transparent)]
    Audio(#[from] crate::audio::AudioError),
    /// Whisper failed, or was stopped.
    #[error("{0}")]
    Transcription(String),
}

/// A loaded Whisper model.
pub struct Transcriber {
    context: WhisperContext,
    threads: usize,
    /// When set, only the speech it finds is transcribed.
    detector: Option<Mutex<SpeechDetector>>,
    /// [`CHUNK_SECONDS`] of samples, unless a test asks for less.
    chunk_samples: usize,
}

impl std::fmt::Debug for Transcriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transcriber")
            .field("threads", &self.threads)
            .field("speech_detection", &self.detector.is_some())
            .finish()
    }
}

/// The cores this process may use: ggml's worker threads spin at barriers, so more threads
/// than free cores makes it many times slower.
pub fn free_cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// Where to end a chunk of `samples`: the middle of the quietest tenth of a second in its
/// last `search` samples, so that a cut seldom falls inside a word.
fn quiet_cut(samples: &[f32], search: usize) -> usize {
    const FRAME: usize = SAMPLE_RATE as usize / 10;
    let from = samples.len().saturating_sub(search);
    samples[from..]
        .chunks_exact(FRAME)
        .map(|frame| frame.iter().map(|sample| sample * sample).sum::<f32>())
        .enumerate()
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map_or(samples.len(), |(index, _)| from + index * FRAME + FRAME / 2)
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

/// How whisper.cpp runs a model.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// Worker threads, at most the free cores.
    pub threads: usize,
    /// Flash attention. Off on CPU: in whisper.cpp 1.8.3 it is slower there (the node's
    /// speed figures in docs/BENCHMARKS.md), though it needs less memory. On a GPU it is
    /// whisper.cpp's own default.
    pub flash_attention: bool,
    /// The GPU to run the model on (its number among the GPUs whisper.cpp finds, from 0),
    /// in a build with a GPU backend ([`GPU_BACKEND`]); `None` runs it on the CPU.
    /// whisper.cpp runs on the CPU when it finds no such GPU.
    pub gpu: Option<i32>,
}

/// The GPU backend this node was built with (`cargo build --features cuda` or `vulkan`),
/// if any.
pub const GPU_BACKEND: Option<&str> = if cfg!(feature = "cuda") {
    Some("CUDA")
} else if cfg!(feature = "vulkan") {
    Some("Vulkan")
} else {
    None
};

impl Settings {
    /// The settings measured fastest on this build: the first GPU, with flash attention,
    /// in a build with a GPU backend; otherwise the CPU, without.
    pub fn for_threads(threads: usize) -> Self {
        Self {
            threads,
            flash_attention: GPU_BACKEND.is_some(),
            gpu: GPU_BACKEND.map(|_| 0),
        }
    }
}

/// Where one transcription's time went: the mel spectrogram, one encoder pass (a 30-s
/// window; every window costs the same, padded or not), and each window's whole wall time
/// (encoder and decoder), in order. A window's decoder time is its wall time less the encoder.
#[derive(Clone, Debug)]
pub struct StageTimes {
    /// Making a whisper state (its buffers) for the job.
    pub state: Duration,
    /// The mel spectrogram of the whole recording.
    pub mel: Duration,
    /// One encoder pass.
    pub encoder: Duration,
    /// Each window's start (seconds into the audio) and wall time.
    pub windows: Vec<(f64, Duration)>,
}

impl Transcriber {
    /// Loads a ggml model file with the fastest settings for `threads`.
    pub fn load(path: &std::path::Path, threads: usize) -> Result<Self, String> {
        Self::load_with(path, Settings::for_threads(threads))
    }

    /// Loads a ggml model file.
    pub fn load_with(path: &std::path::Path, settings: Settings) -> Result<Self, String> {
        // whisper.cpp's and ggml's own log lines go to `tracing`, not to stderr.
        whisper_rs::install_logging_hooks();
        let mut parameters = WhisperContextParameters::default();
        parameters.flash_attn(settings.flash_attention);
        parameters.use_gpu(settings.gpu.is_some());
        parameters.gpu_device(settings.gpu.unwrap_or(0));
        let threads = settings.threads;
        let context = WhisperContext::new_with_params(path, parameters)
            .map_err(|error| format!("whisper.cpp cannot load {}: {error}", path.display()))?;
        Ok(Self {
            context,
            threads: threads.clamp(1, free_cores()),
            detector: None,
            chunk_samples: (CHUNK_SECONDS * SAMPLE_RATE) as usize,
        })
    }

    /// Transcribes a stream in chunks of `seconds` (at least 60, twice the stretch its cut
    /// is looked for in) instead of [`CHUNK_SECONDS`]: for tests of recordings longer than
    /// one chunk that are not ten minutes long.
    pub fn with_chunk_seconds(mut self, seconds: u32) -> Self {
        self.chunk_samples = (seconds.max(2 * CUT_SEARCH_SECONDS) * SAMPLE_RATE) as usize;
        self
    }

    /// Transcribes only the speech the Silero VAD at `path` finds (a ggml file from
    /// [`crate::vad::convert`]).
    pub fn with_speech_detection(mut self, path: &std::path::Path) -> Result<Self, String> {
        // One thread: the VAD computes a tiny graph per 32-ms frame, and a second thread
        // costs more at each barrier than it saves (0.76 s against 1.02 s on 176 s of audio
        // on the 2-core machine, `scripts/bench-node.sh`).
        self.detector = Some(Mutex::new(SpeechDetector::load(path, 1)?));
        Ok(self)
    }

    /// Whether this model can transcribe speech in `code` (a Whisper language code), or why
    /// not, in words that say what to do.
    pub fn check_language(&self, code: &str) -> Result<(), String> {
        let id = whisper_rs::get_lang_id(code).ok_or_else(|| {
            format!(
                "Whisper knows no language {code:?}: ask again with a code such as en, fr or nl"
            )
        })?;
        if !self.context.is_multilingual() {
            return match code {
                "en" => Ok(()),
                _ => Err(format!(
                    "this node's model is English-only and cannot transcribe {code}: ask again \
                     with a node approved for a multilingual model"
                )),
            };
        }
        // A multilingual vocabulary is the 51,765 text and timestamp tokens, the
        // end-of-text token and one per language it knows (99, or 100 from large-v3 on).
        let known = self.context.model_n_vocab() - 51_765 - 1;
        if id < known {
            Ok(())
        } else {
            Err(format!(
                "this node's model knows {known} languages, not {code} (Whisper large-v3 and \
                 later do): ask again with a node approved for such a model"
            ))
        }
    }

    /// Transcribes 16 kHz mono samples in the language Whisper detects, calling
    /// `progress(percent)` as it goes. Returns the language and the segments.
    pub fn transcribe(
        &self,
        samples: &[f32],
        progress: impl FnMut(i32) + 'static,
    ) -> Result<(String, Vec<Segment>), String> {
        self.transcribe_until(samples, None, progress, || false)
            .map(|(language, segments)| (language.unwrap_or_else(|| self.undetermined()), segments))
    }

    /// Transcribes 16 kHz mono samples in `language` (checked with
    /// [`Transcriber::check_language`]), or the one Whisper detects when it is `None`,
    /// given up (with an error) as soon as `stop()` says so: whisper.cpp asks between its
    /// steps, so a node asked to stop need not wait for the end of a long recording. The
    /// language is `None` when nothing was said.
    pub fn transcribe_until(
        &self,
        samples: &[f32],
        language: Option<&str>,
        progress: impl FnMut(i32) + 'static,
        stop: impl FnMut() -> bool + 'static,
    ) -> Result<(Option<String>, Vec<Segment>), String> {
        let mut state = self.state()?;
        let Some(detector) = &self.detector else {
            let (language, segments) = self.run(&mut state, samples, language, progress, stop)?;
            return Ok((Some(language), segments));
        };
        let speech = detector.lock().unwrap().speech(samples)?;
        if speech.is_empty() {
            // Nothing said: an empty transcript, not words Whisper invents from noise.
            return Ok((language.map(str::to_owned), Vec::new()));
        }
        let joined = SpeechOnly::join(samples, &speech);
        let (language, mut segments) =
            self.run(&mut state, &joined.samples, language, progress, stop)?;
        for segment in &mut segments {
            segment.start = joined.start_time(segment.start);
            segment.end = joined.end_time(segment.end).max(segment.start);
        }
        Ok((Some(language), segments))
    }

    /// The language of a transcript in which nothing was said, none asked for: English for
    /// an English-only model, otherwise "und" (ISO 639-2's undetermined).
    fn undetermined(&self) -> String {
        if self.context.is_multilingual() {
            "und"
        } else {
            "en"
        }
        .to_owned()
    }

    /// Transcribes a recording as it is decoded, one chunk at a time (see [`CHUNK_SECONDS`];
    /// each cut falls in the quietest tenth of a second of the chunk's last 30 seconds), with
    /// every segment's times on the recording's clock. It is transcribed in `language`, or
    /// in the one Whisper detects in the first chunk with speech, kept for the chunks after.
    /// `progress(percent)` follows how much of the source has been read; `stop()` is asked
    /// between whisper.cpp's steps and between chunks.
    pub fn transcribe_stream(
        &self,
        audio: &mut AudioStream,
        language: Option<&str>,
        progress: impl Fn(i32) + Clone + 'static,
        stop: impl Fn() -> bool + Clone + 'static,
    ) -> Result<(String, Vec<Segment>), StreamError> {
        let chunk = self.chunk_samples;
        let search = (CUT_SEARCH_SECONDS * SAMPLE_RATE) as usize;
        // A chunk is cut only with at least `search` samples after it, so the last chunk is
        // never a sliver (whisper.cpp skips under 100 ms, and can invent words from a short
        // near-silent piece); one that ends within that is transcribed whole.
        let mut buffer = SecretVec::with_capacity_hint(chunk + search + chunk / 8);
        let mut more = true;
        // Samples of the recording before `buffer[0]`, and the progress reached so far.
        let (mut consumed, mut reported) = (0usize, 0i32);
        let mut language = language.map(str::to_owned);
        let mut segments = Heard::default();
        loop {
            while more && buffer.len() < chunk + search {
                more = audio.read_into(&mut buffer).map_err(StreamError::Audio)?;
            }
            if buffer.is_empty() {
                break;
            }
            if stop() {
                return Err(StreamError::Transcription("transcription stopped".into()));
            }
            let (cut, reached) = if more {
                let reached = (audio.fraction_read() * 100.0) as i32;
                (quiet_cut(&buffer[..chunk], search), reached.max(reported))
            } else {
                (buffer.len(), 100)
            };
            let report = progress.clone();
            let (from, span) = (reported, reached - reported);
            let (chunk_language, mut piece) = self
                .transcribe_until(
                    &buffer[..cut],
                    language.as_deref(),
                    move |percent| report(from + span * percent / 100),
                    stop.clone(),
                )
                .map_err(StreamError::Transcription)?;
            let shift = consumed as f64 / f64::from(SAMPLE_RATE);
            for segment in &mut piece {
                segment.start += shift;
                segment.end += shift;
            }
            // A language is kept only once something was heard in it: Whisper "detects" one
            // in silence too.
            if !piece.is_empty() {
                language = language.or(chunk_language);
            }
            segments.0.append(&mut piece);
            buffer.remove_front(cut);
            consumed += cut;
            reported = reached;
            // A chunk with no speech in it runs no Whisper, and so reports nothing itself.
            progress(reported);
        }
        Ok((
            language.unwrap_or_else(|| self.undetermined()),
            std::mem::take(&mut segments.0),
        ))
    }

    /// Measures where the time goes ([`StageTimes`]) while transcribing `samples`, for the
    /// benchmark.
    pub fn stage_times(&self, samples: &[f32]) -> Result<(StageTimes, Vec<Segment>), String> {
        let failed = |error: whisper_rs::WhisperError| format!("whisper.cpp: {error}");
        let started = Instant::now();
        let mut state = self.state()?;
        let state_made = started.elapsed();
        let started = Instant::now();
        state.pcm_to_mel(samples, self.threads).map_err(failed)?;
        let mel = started.elapsed();
        let started = Instant::now();
        state.encode(0, self.threads).map_err(failed)?;
        let encoder = started.elapsed();
        // whisper.cpp reports progress at the start of each window and once after the last.
        let marks = Arc::new(Mutex::new(Vec::<(i32, Instant)>::new()));
        let marked = Arc::clone(&marks);
        let (_, segments) = self.run(
            &mut state,
            samples,
            Some("en"),
            move |percent| marked.lock().unwrap().push((percent, Instant::now())),
            || false,
        )?;
        let seconds = samples.len() as f64 / f64::from(SAMPLE_RATE);
        let marks = marks.lock().unwrap();
        let windows = marks
            .windows(2)
            .map(|pair| {
                (
                    f64::from(pair[0].0) * seconds / 100.0,
                    pair[1].1 - pair[0].1,
                )
            })
            .collect();
        Ok((
            StageTimes {
                state: state_made,
                mel,
                encoder,
                windows,
            },
            segments,
        ))
    }

    fn state(&self) -> Result<WhisperState, String> {
        self.context
            .create_state()
            .map_err(|error| format!("whisper state: {error}"))
    }

    /// Runs Whisper over `samples` in `language`, or the one it detects in the first 30 s
    /// when `None`: the language and the segments.
    fn run(
        &self,
        state: &mut WhisperState,
        samples: &[f32],
        language: Option<&str>,
        progress: impl FnMut(i32) + 'static,
        stop: impl FnMut() -> bool + 'static,
    ) -> Result<(String, Vec<Segment>), String> {
        // An English-only model has no language tokens to detect with.
        let language = if self.context.is_multilingual() {
            language
        } else {
            Some("en")
        };
        let mut params = FullParams::new(SamplingStrategy::Greedy { best_of: 1 });
        params.set_n_threads(self.threads as i32);
        params.set_language(language);
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
                speaker: None,
            })
            .collect();
        let language = match language {
            Some(code) => code.to_owned(),
            None => whisper_rs::get_lang_str(state.full_lang_id_from_state())
                .ok_or_else(|| "Whisper detected no language it knows".to_owned())?
                .to_owned(),
        };
        Ok((language, segments))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunk_is_cut_in_its_quietest_moment_near_the_end() {
        let rate = SAMPLE_RATE as usize;
        let mut samples = vec![0.5f32; 100 * rate];
        // A pause 20 s before the end, and a quieter one long before the searched stretch.
        samples[80 * rate..80 * rate + rate / 5].fill(0.01);
        samples[10 * rate..12 * rate].fill(0.0);
        let cut = quiet_cut(&samples, 30 * rate);
        assert!(
            (80 * rate..80 * rate + rate / 5).contains(&cut),
            "cut at {cut}"
        );
        // Loud all through: still cut within the searched stretch.
        let cut = quiet_cut(&vec![0.5f32; 100 * rate], 30 * rate);
        assert!((70 * rate..100 * rate).contains(&cut), "cut at {cut}");
    }
}
