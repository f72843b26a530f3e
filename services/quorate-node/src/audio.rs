//! Decoding a recording to 16 kHz mono samples for Whisper, piece by piece: symphonia (WAV,
//! FLAC, MP3, M4A/AAC-LC, MP4, Matroska/WebM, Ogg/Vorbis, and Opus through the libopus
//! adapter) reads from any seekable source (the node's is the age reader over the spooled
//! ciphertext), each packet is mixed down to mono and resampled as it comes with rubato's
//! FFT resampler. Memory holds a packet and a resampler chunk, whatever the recording's
//! length, and nothing touches a disk.

use std::{
    io::{Read, Seek, SeekFrom},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Indexing, Resampler};
use symphonia::core::{
    codecs::{
        audio::{AudioDecoder, AudioDecoderOptions},
        registry::CodecRegistry,
    },
    errors::Error as SymphoniaError,
    formats::{FormatOptions, FormatReader, TrackType, probe::Hint},
    io::{MediaSource, MediaSourceStream, MediaSourceStreamOptions},
    meta::MetadataOptions,
};
use zeroize::Zeroizing;

use crate::secret::SecretVec;

/// Whisper's sample rate.
pub const SAMPLE_RATE: u32 = 16_000;

/// Why a recording could not be decoded; said in the job's failure reason.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    /// No demuxer or decoder knows it.
    #[error("unsupported audio format: {0}")]
    Unsupported(String),
    /// It is damaged.
    #[error("the audio could not be decoded: {0}")]
    Damaged(String),
    /// The source itself failed to read (for the node: the decrypted stream, whose chunks
    /// failed their authentication or ended early).
    #[error("the recording could not be read: {0}")]
    Unreadable(String),
}

fn codecs() -> CodecRegistry {
    let mut registry = CodecRegistry::new();
    symphonia::default::register_enabled_codecs(&mut registry);
    registry.register_audio_decoder::<symphonia_adapter_libopus::OpusDecoder>();
    registry
}

/// Where the demuxer is in its source: how far it has read (for progress), and whether the
/// source itself failed (the demuxer's error then says less than the source's did).
#[derive(Default)]
struct Reading {
    position: AtomicU64,
    failed: std::sync::Mutex<Option<String>>,
}

impl Reading {
    fn noted<T>(&self, result: std::io::Result<T>) -> std::io::Result<T> {
        if let Err(error) = &result {
            *self.failed.lock().unwrap() = Some(error.to_string());
        }
        result
    }
}

impl Reading {
    /// The source's failure, if it failed.
    fn failure(&self) -> Option<AudioError> {
        self.failed
            .lock()
            .unwrap()
            .clone()
            .map(AudioError::Unreadable)
    }
}

/// A source that keeps [`Reading`] up to date.
struct Counted<S> {
    source: S,
    reading: Arc<Reading>,
    len: u64,
}

impl<S: Read> Read for Counted<S> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let read = self.reading.noted(self.source.read(buffer))?;
        self.reading
            .position
            .fetch_add(read as u64, Ordering::Relaxed);
        Ok(read)
    }
}

impl<S: Seek> Seek for Counted<S> {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let at = self.reading.noted(self.source.seek(to))?;
        self.reading.position.store(at, Ordering::Relaxed);
        Ok(at)
    }
}

impl<S: Read + Seek + Send + Sync> MediaSource for Counted<S> {
    fn is_seekable(&self) -> bool {
        true
    }

    fn byte_len(&self) -> Option<u64> {
        Some(self.len)
    }
}

/// A recording's audio track, decoded to 16 kHz mono one packet at a time.
pub struct AudioStream {
    format: Box<dyn FormatReader>,
    decoder: Box<dyn AudioDecoder>,
    track_id: u32,
    /// How many audio tracks the container has.
    tracks: usize,
    /// The rate the first decoded packet had; `None` before it.
    rate: Option<u32>,
    resampling: Option<Resampling>,
    /// One packet's interleaved samples.
    interleaved: SecretVec<f32>,
    /// One packet mixed down to mono, at the recording's rate.
    mono: SecretVec<f32>,
    reading: Arc<Reading>,
    len: u64,
    ended: bool,
}

impl std::fmt::Debug for AudioStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AudioStream")
            .field("track_id", &self.track_id)
            .field("rate", &self.rate)
            .finish_non_exhaustive()
    }
}

impl AudioStream {
    /// Opens the default audio track of `source` (`media_type` a hint only). The source is
    /// seeked as the container needs (an MP4's index may be at its end), so it is read, not
    /// held: memory does not grow with its length.
    pub fn open(
        source: impl Read + Seek + Send + Sync + 'static,
        media_type: &str,
    ) -> Result<Self, AudioError> {
        Self::open_chosen(source, media_type, None)
    }

    /// Opens the audio track of `source` at `index` (from 0, in the order the container
    /// lists its audio tracks; [`AudioStream::audio_tracks`] says how many there are).
    pub fn open_track(
        source: impl Read + Seek + Send + Sync + 'static,
        media_type: &str,
        index: usize,
    ) -> Result<Self, AudioError> {
        Self::open_chosen(source, media_type, Some(index))
    }

    /// Opens the audio track at `index`, or the container's default one.
    fn open_chosen(
        mut source: impl Read + Seek + Send + Sync + 'static,
        media_type: &str,
        index: Option<usize>,
    ) -> Result<Self, AudioError> {
        let unreadable = |error: std::io::Error| AudioError::Damaged(error.to_string());
        let len = source.seek(SeekFrom::End(0)).map_err(unreadable)?;
        source.seek(SeekFrom::Start(0)).map_err(unreadable)?;
        let reading = Arc::new(Reading::default());
        let counted = Counted {
            source,
            reading: Arc::clone(&reading),
            len,
        };
        let mut hint = Hint::new();
        hint.mime_type(media_type);
        let stream = MediaSourceStream::new(Box::new(counted), MediaSourceStreamOptions::default());
        let format = symphonia::default::get_probe()
            .probe(
                &hint,
                stream,
                FormatOptions::default(),
                MetadataOptions::default(),
            )
            .map_err(|error| {
                reading
                    .failure()
                    .unwrap_or_else(|| AudioError::Unsupported(error.to_string()))
            })?;
        let audio_tracks: Vec<_> = format
            .tracks()
            .iter()
            .filter(|track| {
                track
                    .codec_params
                    .as_ref()
                    .and_then(|parameters| parameters.audio())
                    .is_some()
            })
            .collect();
        let tracks = audio_tracks.len();
        let track = match index {
            // The default track: a recording's second audio track is often a mix of the
            // first, or commentary.
            None => format.default_track(TrackType::Audio),
            Some(index) => audio_tracks.get(index).copied(),
        }
        .ok_or_else(|| match tracks {
            0 => AudioError::Unsupported("no audio track".into()),
            _ => AudioError::Unsupported(format!(
                "no audio track {} (it has {tracks})",
                index.unwrap_or(0) + 1
            )),
        })?;
        let track_id = track.id;
        let parameters = track
            .codec_params
            .as_ref()
            .and_then(|parameters| parameters.audio())
            .ok_or_else(|| AudioError::Unsupported("no audio codec parameters".into()))?
            .clone();
        let decoder = codecs()
            .make_audio_decoder(&parameters, &AudioDecoderOptions::default())
            .map_err(|error| AudioError::Unsupported(error.to_string()))?;
        Ok(Self {
            format,
            decoder,
            track_id,
            tracks,
            rate: None,
            resampling: None,
            interleaved: SecretVec::default(),
            mono: SecretVec::default(),
            reading,
            len,
            ended: false,
        })
    }

    /// How many audio tracks the container has (one per participant, in a recording made
    /// that way).
    pub fn audio_tracks(&self) -> usize {
        self.tracks
    }

    /// How much of the source has been read, from 0 to 1 (for progress; a demuxer that
    /// reads an index at the end first reaches 1 early for a moment).
    pub fn fraction_read(&self) -> f64 {
        if self.len == 0 {
            return 0.0;
        }
        (self.reading.position.load(Ordering::Relaxed) as f64 / self.len as f64).clamp(0.0, 1.0)
    }

    /// The error for a demuxer's or decoder's `error`: the source's own, if it failed.
    fn failed(&self, error: SymphoniaError) -> AudioError {
        self.reading
            .failure()
            .unwrap_or_else(|| AudioError::Damaged(error.to_string()))
    }

    /// Appends the next decoded packet's 16 kHz samples to `out` (none, or fewer, while the
    /// resampler fills its chunk). Returns false once the track has ended and everything is
    /// in `out`.
    pub fn read_into(&mut self, out: &mut SecretVec<f32>) -> Result<bool, AudioError> {
        if self.ended {
            return Ok(false);
        }
        loop {
            let packet = match self.format.next_packet() {
                Ok(Some(packet)) => packet,
                Ok(None) => return self.end(out),
                // The end of a stream without an end marker, once all of it was read.
                Err(SymphoniaError::IoError(error))
                    if error.kind() == std::io::ErrorKind::UnexpectedEof
                        && self.reading.failure().is_none() =>
                {
                    return self.end(out);
                }
                Err(error) => return Err(self.failed(error)),
            };
            if packet.track_id != self.track_id {
                continue;
            }
            let decoded = match self.decoder.decode(&packet) {
                Ok(decoded) => decoded,
                // A damaged packet is skipped, as players do; a stream of them ends in
                // silence and an empty transcript rather than a crash.
                Err(SymphoniaError::DecodeError(_)) => continue,
                Err(error) => return Err(self.failed(error)),
            };
            let spec = decoded.spec();
            let rate = spec.rate();
            let channels = spec.channels().count().max(1);
            let samples = decoded.samples_interleaved();
            self.interleaved.resize(samples, 0.0);
            decoded.copy_to_slice_interleaved(&mut self.interleaved[..samples]);
            self.mono.truncate(0);
            self.mono.extend(
                self.interleaved[..samples]
                    .chunks(channels)
                    .map(|frame| frame.iter().sum::<f32>() / channels as f32),
            );
            self.take_mono(rate, out)?;
            return Ok(true);
        }
    }

    /// Passes one packet's mono samples at `rate` on to `out`, through the resampler when
    /// the rate is not Whisper's.
    fn take_mono(&mut self, rate: u32, out: &mut SecretVec<f32>) -> Result<(), AudioError> {
        match self.rate {
            None => {
                if rate == 0 {
                    return Err(AudioError::Damaged("the sample rate is unknown".into()));
                }
                self.rate = Some(rate);
                if rate != SAMPLE_RATE {
                    self.resampling = Some(Resampling::new(rate)?);
                }
            }
            Some(first) if first != rate => {
                return Err(AudioError::Unsupported(format!(
                    "the sample rate changes from {first} Hz to {rate} Hz within the track; convert the recording to one rate first"
                )));
            }
            Some(_) => {}
        }
        match &mut self.resampling {
            Some(resampling) => resampling.push(&self.mono, out),
            None => {
                out.extend_from_slice(&self.mono);
                Ok(())
            }
        }
    }

    /// The track has ended: the resampler's last samples go to `out`.
    fn end(&mut self, out: &mut SecretVec<f32>) -> Result<bool, AudioError> {
        self.ended = true;
        if self.rate.is_none() {
            return Err(AudioError::Damaged(
                "not one packet of its audio track decodes; check that the file plays, then upload a playable copy".into(),
            ));
        }
        if let Some(resampling) = &mut self.resampling {
            resampling.finish(out)?;
        }
        Ok(false)
    }
}

/// Decodes `media` (a whole file in memory, e.g. a `Zeroizing<Vec<u8>>` that is wiped when
/// the decoder drops it; `media_type` a hint only) to mono f32 samples at 16 kHz, in a
/// buffer that is wiped when dropped.
pub fn decode(
    media: impl AsRef<[u8]> + Send + Sync + 'static,
    media_type: &str,
) -> Result<Zeroizing<Vec<f32>>, AudioError> {
    let mut stream = AudioStream::open(std::io::Cursor::new(media), media_type)?;
    let mut samples = SecretVec::default();
    while stream.read_into(&mut samples)? {}
    Ok(samples.into_inner())
}

/// Samples at `rate` as a mono 16-bit PCM WAV file: how the benchmarks and tests make the
/// recordings they feed the decoder.
pub fn pcm_wav(rate: u32, samples: &[f32]) -> Vec<u8> {
    let data_len = u32::try_from(samples.len() * 2).expect("a WAV file is under 4 GiB");
    let mut wav = Vec::with_capacity(44 + samples.len() * 2);
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + data_len).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.extend_from_slice(&16u32.to_le_bytes());
    wav.extend_from_slice(&1u16.to_le_bytes()); // PCM
    wav.extend_from_slice(&1u16.to_le_bytes()); // mono
    wav.extend_from_slice(&rate.to_le_bytes());
    wav.extend_from_slice(&(rate * 2).to_le_bytes());
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

fn resampling_failed(error: &dyn std::fmt::Display) -> AudioError {
    AudioError::Damaged(format!("resampling: {error}"))
}

/// The resampler from `rate` to Whisper's: rubato's synchronous FFT resampler, fed
/// 1024 frames at a time.
fn fft(rate: u32) -> Result<Fft<f32>, AudioError> {
    Fft::<f32>::new(
        rate as usize,
        SAMPLE_RATE as usize,
        1024,
        1,
        FixedSync::Input,
    )
    .map_err(|error| resampling_failed(&error))
}

/// The resampler fed one packet at a time: the input it has not used yet waits in `pending`
/// (less than one chunk), so the output is the same as resampling the whole recording at once.
struct Resampling {
    pending: SecretVec<f32>,
    frames_in: u64,
    output: ResampledChunks,
}

/// The resampler and the chunks it makes, with its start-up delay dropped so that the output
/// lines up with the input.
struct ResampledChunks {
    resampler: Fft<f32>,
    /// One chunk of output.
    chunk: Zeroizing<Vec<f32>>,
    /// Output frames of start-up delay still to drop.
    delay: usize,
    frames_out: u64,
}

impl Resampling {
    fn new(rate: u32) -> Result<Self, AudioError> {
        let resampler = fft(rate)?;
        Ok(Self {
            pending: SecretVec::default(),
            frames_in: 0,
            output: ResampledChunks {
                chunk: Zeroizing::new(vec![0.0; resampler.output_frames_max()]),
                delay: resampler.output_delay(),
                resampler,
                frames_out: 0,
            },
        })
    }

    /// Resamples every whole chunk of `pending` plus `samples` into `out`.
    fn push(&mut self, samples: &[f32], out: &mut SecretVec<f32>) -> Result<(), AudioError> {
        self.pending.extend_from_slice(samples);
        self.frames_in += samples.len() as u64;
        let mut used = 0;
        loop {
            let needed = self.output.resampler.input_frames_next();
            if self.pending.len() - used < needed {
                break;
            }
            self.output
                .step(&self.pending[used..used + needed], None, out)?;
            used += needed;
        }
        self.pending.remove_front(used);
        Ok(())
    }

    /// Resamples what is left, then pumps silence through until the output is as long as the
    /// input at the new rate.
    fn finish(&mut self, out: &mut SecretVec<f32>) -> Result<(), AudioError> {
        let ratio = self.output.resampler.resample_ratio();
        let expected = (ratio * self.frames_in as f64).ceil() as u64;
        let mut left = self.pending.len();
        while self.output.frames_out < expected {
            self.output.step(&self.pending[..left], Some(left), out)?;
            left = 0;
        }
        let surplus = (self.output.frames_out - expected) as usize;
        out.truncate(out.len().saturating_sub(surplus));
        self.pending.truncate(0);
        Ok(())
    }
}

impl ResampledChunks {
    /// One chunk from `input` (`partial`: how many frames it has when fewer than a chunk)
    /// appended to `out` once the start-up delay is dropped.
    fn step(
        &mut self,
        input: &[f32],
        partial: Option<usize>,
        out: &mut SecretVec<f32>,
    ) -> Result<(), AudioError> {
        let source = InterleavedSlice::new(input, 1, input.len())
            .map_err(|error| resampling_failed(&error))?;
        let capacity = self.chunk.len();
        let mut target = InterleavedSlice::new_mut(&mut self.chunk, 1, capacity)
            .map_err(|error| resampling_failed(&error))?;
        let indexing = Indexing {
            partial_len: partial,
            ..Indexing::default()
        };
        let (_, produced) = self
            .resampler
            .process_into_buffer(&source, &mut target, Some(&indexing))
            .map_err(|error| resampling_failed(&error))?;
        let dropped = produced.min(self.delay);
        self.delay -= dropped;
        out.extend_from_slice(&self.chunk[dropped..produced]);
        self.frames_out += (produced - dropped) as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resampling_packet_by_packet_matches_resampling_whole() {
        let rate = 44_100;
        let tone: Vec<f32> = (0..rate * 3)
            .map(|i| (i as f32 * 440.0 * std::f32::consts::TAU / rate as f32).sin() * 0.25)
            .collect();
        let streamed = decode(pcm_wav(rate, &tone), "audio/wav").unwrap();
        // What the decoder reads back from the 16-bit file.
        let stored: Vec<f32> = tone
            .iter()
            .map(|&sample| f32::from((sample * 32767.0) as i16) / 32768.0)
            .collect();
        let whole = whole_clip(&stored, rate);
        assert_eq!(streamed.len(), whole.len());
        let worst = streamed
            .iter()
            .zip(whole.iter())
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(worst < 1e-4, "samples differ by {worst}");
    }

    /// rubato's own whole-clip resampling, to compare with.
    fn whole_clip(samples: &[f32], rate: u32) -> Vec<f32> {
        let mut resampler = fft(rate).unwrap();
        let input = InterleavedSlice::new(samples, 1, samples.len()).unwrap();
        let mut output = vec![0f32; resampler.process_all_needed_output_len(samples.len())];
        let frames = output.len();
        let mut buffer = InterleavedSlice::new_mut(&mut output, 1, frames).unwrap();
        let (_, written) = resampler
            .process_all_into_buffer(&input, &mut buffer, samples.len(), None)
            .unwrap();
        output.truncate(written);
        output
    }

    #[test]
    fn a_file_without_audio_is_refused() {
        assert!(matches!(
            decode(pcm_wav(16_000, &[]), "audio/wav"),
            Err(AudioError::Damaged(_))
        ));
        assert!(matches!(
            decode(b"not audio at all".to_vec(), "audio/wav"),
            Err(AudioError::Unsupported(_))
        ));
    }
}
