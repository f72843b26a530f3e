//! Decoding a recording held in memory to 16 kHz mono samples for Whisper: symphonia (WAV,
//! FLAC, MP3, M4A/AAC-LC, Ogg/Vorbis, and Opus in Ogg or WebM through the libopus adapter),
//! a down-mix to mono, and rubato's FFT resampler. Nothing touches a disk.

use audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler};
use symphonia::core::{
    codecs::{audio::AudioDecoderOptions, registry::CodecRegistry},
    errors::Error as SymphoniaError,
    formats::{FormatOptions, TrackType, probe::Hint},
    io::{MediaSourceStream, MediaSourceStreamOptions},
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
}

fn codecs() -> CodecRegistry {
    let mut registry = CodecRegistry::new();
    symphonia::default::register_enabled_codecs(&mut registry);
    registry.register_audio_decoder::<symphonia_adapter_libopus::OpusDecoder>();
    registry
}

/// Decodes `media` (a whole file in memory, e.g. a `Zeroizing<Vec<u8>>` that is wiped when
/// the decoder drops it; `media_type` a hint only) to mono f32 samples at 16 kHz, in a buffer
/// that is wiped when dropped. The samples are the meeting's words: every buffer of ours that
/// holds them is a [`SecretVec`], so none is left unwiped in freed memory when it grows.
pub fn decode(
    media: impl AsRef<[u8]> + Send + Sync + 'static,
    media_type: &str,
) -> Result<Zeroizing<Vec<f32>>, AudioError> {
    let media_len = media.as_ref().len();
    let mut hint = Hint::new();
    hint.mime_type(media_type);
    let source = MediaSourceStream::new(
        Box::new(std::io::Cursor::new(media)),
        MediaSourceStreamOptions::default(),
    );
    let mut format = symphonia::default::get_probe()
        .probe(
            &hint,
            source,
            FormatOptions::default(),
            MetadataOptions::default(),
        )
        .map_err(|error| AudioError::Unsupported(error.to_string()))?;
    let track = format
        .default_track(TrackType::Audio)
        .ok_or_else(|| AudioError::Unsupported("no audio track".into()))?;
    let track_id = track.id;
    // The container's frame count, when it gives one, reserves the buffer once. It is read
    // from the file, so it is only a hint, and never more frames than the file has bytes
    // (uncompressed audio has at least one byte per frame; compressed audio grows past it).
    let frames_hint = track
        .num_frames
        .map_or(0, |frames| usize::try_from(frames).unwrap_or(usize::MAX))
        .min(media_len);
    let parameters = track
        .codec_params
        .as_ref()
        .and_then(|parameters| parameters.audio())
        .ok_or_else(|| AudioError::Unsupported("no audio codec parameters".into()))?
        .clone();
    let mut decoder = codecs()
        .make_audio_decoder(&parameters, &AudioDecoderOptions::default())
        .map_err(|error| AudioError::Unsupported(error.to_string()))?;
    let mut rate = parameters.sample_rate.unwrap_or(0);
    let mut mono = SecretVec::with_capacity_hint(frames_hint);
    let mut interleaved = SecretVec::default();
    loop {
        let packet = match format.next_packet() {
            Ok(Some(packet)) => packet,
            Ok(None) => break,
            Err(SymphoniaError::IoError(error))
                if error.kind() == std::io::ErrorKind::UnexpectedEof =>
            {
                break;
            }
            Err(error) => return Err(AudioError::Damaged(error.to_string())),
        };
        if packet.track_id != track_id {
            continue;
        }
        let decoded = match decoder.decode(&packet) {
            Ok(decoded) => decoded,
            // A damaged packet is skipped, as players do; a stream of them ends in silence
            // and an empty transcript rather than a crash.
            Err(SymphoniaError::DecodeError(_)) => continue,
            Err(error) => return Err(AudioError::Damaged(error.to_string())),
        };
        let spec = decoded.spec();
        rate = spec.rate();
        let channels = spec.channels().count().max(1);
        let samples = decoded.samples_interleaved();
        interleaved.resize(samples, 0.0);
        decoded.copy_to_slice_interleaved(&mut interleaved[..samples]);
        mono.extend(
            interleaved[..samples]
                .chunks(channels)
                .map(|frame| frame.iter().sum::<f32>() / channels as f32),
        );
    }
    if mono.is_empty() {
        return Err(AudioError::Damaged("no audio in the file".into()));
    }
    if rate == SAMPLE_RATE {
        return Ok(mono.into_inner());
    }
    resample(&mono, rate)
}

/// Resamples mono samples from `rate` to 16 kHz (rubato's synchronous FFT resampler), into a
/// buffer allocated once and wiped when dropped.
pub fn resample(samples: &[f32], rate: u32) -> Result<Zeroizing<Vec<f32>>, AudioError> {
    if rate == SAMPLE_RATE {
        return Ok(Zeroizing::new(samples.to_vec()));
    }
    if rate == 0 {
        return Err(AudioError::Damaged("the sample rate is unknown".into()));
    }
    let failed =
        |error: &dyn std::fmt::Display| AudioError::Damaged(format!("resampling: {error}"));
    let mut resampler = Fft::<f32>::new(
        rate as usize,
        SAMPLE_RATE as usize,
        1024,
        1,
        FixedSync::Input,
    )
    .map_err(|error| failed(&error))?;
    let input = InterleavedSlice::new(samples, 1, samples.len()).map_err(|error| failed(&error))?;
    let mut output = Zeroizing::new(vec![
        0f32;
        resampler.process_all_needed_output_len(samples.len())
    ]);
    let frames = output.len();
    let mut buffer =
        InterleavedSlice::new_mut(&mut output, 1, frames).map_err(|error| failed(&error))?;
    let (_, written) = resampler
        .process_all_into_buffer(&input, &mut buffer, samples.len(), None)
        .map_err(|error| failed(&error))?;
    output.truncate(written);
    Ok(output)
}
