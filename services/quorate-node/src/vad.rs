//! Voice activity detection before transcription: the Silero VAD network, run by whisper.cpp's
//! VAD context, finds the speech; only the speech is transcribed (meetings are full of
//! silence, which costs time and makes Whisper invent words), and every segment's times are
//! mapped back to the recording's own clock.
//!
//! The model comes from PyPI's `silero-vad` wheel (MIT, Silero Team), whose
//! `silero_vad/data/silero_vad_16k.safetensors` holds the 16 kHz network as 15 f32 tensors.
//! [`convert`] writes the ggml file whisper.cpp's loader reads: the header below, then each
//! tensor as (dimensions, name length, type, shape in ggml order, name, data), the convolution
//! and STFT kernels as f16, the rest as f32. The layout is whisper.cpp 1.8.3's
//! `whisper_vad_init_with_params`.

use std::{
    collections::HashMap,
    io::{Read, Write},
    path::Path,
};

use zeroize::Zeroizing;

use crate::{
    audio::SAMPLE_RATE,
    model::{ModelError, malformed},
};

/// The file in the node's folder naming the imported VAD model (its SHA-256), as `model`
/// names the Whisper model.
pub const POINTER: &str = "vad-model";
/// The model type whisper.cpp's VAD loader names in its header.
pub const MODEL_TYPE: &str = "silero-16k";
/// Where the silero-vad wheel keeps the 16 kHz network.
pub const WHEEL_SAFETENSORS: &str = "silero_vad/data/silero_vad_16k.safetensors";
/// The largest safetensors file taken as a VAD (the Silero network is 1.2 MB).
const LARGEST: usize = 16 << 20;
/// The silero-vad version the converted file says it came from (informational in ggml).
const VERSION: [i32; 3] = [6, 2, 3];
/// Samples per detection frame (32 ms at 16 kHz), and the frame context Silero uses.
const WINDOW: i32 = 512;
const CONTEXT: i32 = 64;
/// The four encoder convolutions: (input channels, output channels, kernel).
const ENCODER: [(i32, i32, i32); 4] = [(129, 128, 3), (128, 64, 3), (64, 64, 3), (64, 128, 3)];
/// LSTM input and hidden size, and the final convolution's input and output channels.
const LSTM_AND_FINAL: [i32; 4] = [128, 128, 128, 1];

/// ggml's type codes for the two types the VAD loader takes.
#[derive(Clone, Copy)]
enum Stored {
    F32 = 0,
    F16 = 1,
}

/// A tensor the loader expects.
struct Tensor {
    /// Its ggml name.
    name: &'static str,
    /// The safetensors name it comes from.
    source: &'static str,
    /// Its shape there (PyTorch order).
    shape: &'static [usize],
    /// The shape written (ggml order).
    ggml_shape: &'static [usize],
    /// How it is stored.
    stored: Stored,
}

/// Every tensor the loader expects, in the order written. The LSTM's gates are in PyTorch's
/// order (input, forget, cell, output), as the loader's graph slices them; the final
/// convolution's two unit dimensions are dropped, as the loader compares a (128) shape.
const TENSORS: [Tensor; 15] = [
    Tensor {
        name: "_model.stft.forward_basis_buffer",
        source: "stft_conv.weight",
        shape: &[258, 1, 256],
        ggml_shape: &[256, 1, 258],
        stored: Stored::F16,
    },
    Tensor {
        name: "_model.encoder.0.reparam_conv.weight",
        source: "conv1.weight",
        shape: &[128, 129, 3],
        ggml_shape: &[3, 129, 128],
        stored: Stored::F16,
    },
    Tensor {
        name: "_model.encoder.0.reparam_conv.bias",
        source: "conv1.bias",
        shape: &[128],
        ggml_shape: &[128],
        stored: Stored::F32,
    },
    Tensor {
        name: "_model.encoder.1.reparam_conv.weight",
        source: "conv2.weight",
        shape: &[64, 128, 3],
        ggml_shape: &[3, 128, 64],
        stored: Stored::F16,
    },
    Tensor {
        name: "_model.encoder.1.reparam_conv.bias",
        source: "conv2.bias",
        shape: &[64],
        ggml_shape: &[64],
        stored: Stored::F32,
    },
    Tensor {
        name: "_model.encoder.2.reparam_conv.weight",
        source: "conv3.weight",
        shape: &[64, 64, 3],
        ggml_shape: &[3, 64, 64],
        stored: Stored::F16,
    },
    Tensor {
        name: "_model.encoder.2.reparam_conv.bias",
        source: "conv3.bias",
        shape: &[64],
        ggml_shape: &[64],
        stored: Stored::F32,
    },
    Tensor {
        name: "_model.encoder.3.reparam_conv.weight",
        source: "conv4.weight",
        shape: &[128, 64, 3],
        ggml_shape: &[3, 64, 128],
        stored: Stored::F16,
    },
    Tensor {
        name: "_model.encoder.3.reparam_conv.bias",
        source: "conv4.bias",
        shape: &[128],
        ggml_shape: &[128],
        stored: Stored::F32,
    },
    Tensor {
        name: "_model.decoder.rnn.weight_ih",
        source: "lstm_cell.weight_ih",
        shape: &[512, 128],
        ggml_shape: &[128, 512],
        stored: Stored::F32,
    },
    Tensor {
        name: "_model.decoder.rnn.weight_hh",
        source: "lstm_cell.weight_hh",
        shape: &[512, 128],
        ggml_shape: &[128, 512],
        stored: Stored::F32,
    },
    Tensor {
        name: "_model.decoder.rnn.bias_ih",
        source: "lstm_cell.bias_ih",
        shape: &[512],
        ggml_shape: &[512],
        stored: Stored::F32,
    },
    Tensor {
        name: "_model.decoder.rnn.bias_hh",
        source: "lstm_cell.bias_hh",
        shape: &[512],
        ggml_shape: &[512],
        stored: Stored::F32,
    },
    Tensor {
        name: "_model.decoder.decoder.2.weight",
        source: "final_conv.weight",
        shape: &[1, 128, 1],
        ggml_shape: &[128],
        stored: Stored::F16,
    },
    Tensor {
        name: "_model.decoder.decoder.2.bias",
        source: "final_conv.bias",
        shape: &[1],
        ggml_shape: &[1],
        stored: Stored::F32,
    },
];

/// Whether `head` (a file's first bytes) is a whisper.cpp VAD model.
pub fn is_vad_ggml(head: &[u8]) -> bool {
    head.len() >= 8 + MODEL_TYPE.len()
        && crate::model::is_ggml(head)
        && head[4..8] == (MODEL_TYPE.len() as i32).to_le_bytes()
        && &head[8..8 + MODEL_TYPE.len()] == MODEL_TYPE.as_bytes()
}

/// The safetensors bytes of a Silero VAD: the file itself, or the one inside a silero-vad
/// wheel.
pub fn read_safetensors(path: &Path) -> Result<Vec<u8>, ModelError> {
    let bytes = std::fs::read(path)
        .map_err(|error| ModelError::Io(format!("{}: {error}", path.display())))?;
    if !bytes.starts_with(b"PK") {
        return Ok(bytes);
    }
    let mut wheel = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|error| malformed(format!("{}: {error}", path.display())))?;
    let mut entry = wheel.by_name(WHEEL_SAFETENSORS).map_err(|_| {
        malformed(format!(
            "{} has no {WHEEL_SAFETENSORS}: is it the silero-vad wheel?",
            path.display()
        ))
    })?;
    let mut out = Vec::with_capacity(usize::try_from(entry.size()).unwrap_or(0).min(LARGEST));
    // Read at most one byte past the largest VAD taken, so a crafted archive cannot fill
    // memory.
    std::io::copy(&mut (&mut entry).take(LARGEST as u64 + 1), &mut out)
        .map_err(|error| ModelError::Io(error.to_string()))?;
    if out.len() > LARGEST {
        return Err(malformed(format!(
            "{WHEEL_SAFETENSORS} in {} is larger than any Silero VAD",
            path.display()
        )));
    }
    Ok(out)
}

/// Whether `bytes` look like a Silero VAD safetensors file (its first tensor name is in the
/// JSON header), so an import can tell it from a Whisper model.
pub fn is_silero_safetensors(bytes: &[u8]) -> bool {
    parse_safetensors(bytes).is_ok_and(|tensors| tensors.contains_key("stft_conv.weight"))
}

/// The f32 tensors of a safetensors file: name to (shape, little-endian data).
type Tensors<'a> = HashMap<String, (Vec<usize>, &'a [u8])>;

/// Reads the f32 tensors of a safetensors file.
fn parse_safetensors(bytes: &[u8]) -> Result<Tensors<'_>, ModelError> {
    let header_len = bytes
        .get(..8)
        .map(|raw| u64::from_le_bytes(raw.try_into().unwrap()))
        .ok_or_else(|| malformed("the safetensors file is truncated"))?;
    let header_end = usize::try_from(header_len)
        .ok()
        .and_then(|len| len.checked_add(8))
        .filter(|end| *end <= bytes.len())
        .ok_or_else(|| malformed("the safetensors header is longer than the file"))?;
    let header: HashMap<String, serde_json::Value> = serde_json::from_slice(&bytes[8..header_end])
        .map_err(|error| malformed(format!("the safetensors header: {error}")))?;
    let data = &bytes[header_end..];
    let mut tensors = HashMap::new();
    for (name, entry) in header {
        if name == "__metadata__" {
            continue;
        }
        if entry["dtype"] != "F32" {
            return Err(malformed(format!("{name} is not f32")));
        }
        let shape: Vec<usize> = serde_json::from_value(entry["shape"].clone())
            .map_err(|_| malformed(format!("{name} has no shape")))?;
        let offsets: [usize; 2] = serde_json::from_value(entry["data_offsets"].clone())
            .map_err(|_| malformed(format!("{name} has no offsets")))?;
        let raw = data
            .get(offsets[0]..offsets[1])
            .ok_or_else(|| malformed(format!("{name} lies outside the file")))?;
        let bytes = shape
            .iter()
            .try_fold(4usize, |product, dimension| product.checked_mul(*dimension));
        if bytes != Some(raw.len()) {
            return Err(malformed(format!("{name}'s data does not fit its shape")));
        }
        tensors.insert(name, (shape, raw));
    }
    Ok(tensors)
}

fn write_i32s(out: &mut impl Write, values: &[i32]) -> std::io::Result<()> {
    values
        .iter()
        .try_for_each(|value| out.write_all(&value.to_le_bytes()))
}

/// Converts Silero VAD safetensors to whisper.cpp's VAD ggml file.
pub fn convert(safetensors: &[u8], mut out: impl Write) -> Result<(), ModelError> {
    let tensors = parse_safetensors(safetensors)?;
    let io = |error: std::io::Error| ModelError::Io(error.to_string());
    out.write_all(&crate::model::GGML_MAGIC.to_le_bytes())
        .map_err(io)?;
    write_i32s(&mut out, &[MODEL_TYPE.len() as i32]).map_err(io)?;
    out.write_all(MODEL_TYPE.as_bytes()).map_err(io)?;
    write_i32s(&mut out, &VERSION).map_err(io)?;
    write_i32s(&mut out, &[WINDOW, CONTEXT, ENCODER.len() as i32]).map_err(io)?;
    for (input, output, kernel) in ENCODER {
        write_i32s(&mut out, &[input, output, kernel]).map_err(io)?;
    }
    write_i32s(&mut out, &LSTM_AND_FINAL).map_err(io)?;
    for Tensor {
        name,
        source,
        shape,
        ggml_shape,
        stored,
    } in TENSORS
    {
        let (found_shape, raw) = tensors
            .get(source)
            .ok_or_else(|| malformed(format!("the Silero VAD has no {source}")))?;
        if found_shape != shape {
            return Err(malformed(format!(
                "{source} has shape {found_shape:?}, not {shape:?}: not the Silero VAD v6 network"
            )));
        }
        let mut record = vec![ggml_shape.len() as i32, name.len() as i32, stored as i32];
        record.extend(ggml_shape.iter().map(|&dimension| dimension as i32));
        write_i32s(&mut out, &record).map_err(io)?;
        out.write_all(name.as_bytes()).map_err(io)?;
        match stored {
            Stored::F32 => out.write_all(raw).map_err(io)?,
            Stored::F16 => {
                let halves: Vec<u8> = raw
                    .chunks_exact(4)
                    .flat_map(|value| {
                        half::f16::from_f32(f32::from_le_bytes(value.try_into().unwrap()))
                            .to_le_bytes()
                    })
                    .collect();
                out.write_all(&halves).map_err(io)?;
            }
        }
    }
    Ok(())
}

/// A stretch of speech, in seconds of the recording.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Speech {
    /// Where it starts.
    pub start: f64,
    /// Where it ends.
    pub end: f64,
}

/// The silence put between two stretches of speech when they are joined for Whisper, so it
/// still hears a pause between them.
const JOINING_SILENCE: f64 = 0.1;

/// The speech of a recording joined into one buffer (wiped when dropped), and where each
/// piece came from, to map Whisper's times back to the recording's.
pub struct SpeechOnly {
    /// The joined samples.
    pub samples: Zeroizing<Vec<f32>>,
    /// (start in the joined audio, the speech it holds), in order.
    pieces: Vec<(f64, Speech)>,
}

impl std::fmt::Debug for SpeechOnly {
    // Never the samples: they are the meeting's words.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpeechOnly")
            .field("samples", &self.samples.len())
            .field("pieces", &self.pieces.len())
            .finish()
    }
}

impl SpeechOnly {
    /// Joins the `speech` stretches of `samples` with a short silence between each.
    pub fn join(samples: &[f32], speech: &[Speech]) -> Self {
        let rate = f64::from(SAMPLE_RATE);
        let gap = (JOINING_SILENCE * rate) as usize;
        let ranges: Vec<std::ops::Range<usize>> = speech
            .iter()
            .map(|stretch| {
                let from = ((stretch.start * rate) as usize).min(samples.len());
                from..((stretch.end * rate) as usize).clamp(from, samples.len())
            })
            .collect();
        let total = ranges.iter().map(ExactSizeIterator::len).sum::<usize>()
            + gap * ranges.len().saturating_sub(1);
        // Allocated once at its exact length, so no copy of the speech is left in freed
        // memory by a growth.
        let mut joined = Zeroizing::new(Vec::with_capacity(total));
        let mut pieces = Vec::with_capacity(speech.len());
        for (index, (stretch, range)) in speech.iter().zip(ranges).enumerate() {
            if index > 0 {
                let end = joined.len() + gap;
                joined.resize(end, 0.0);
            }
            pieces.push((joined.len() as f64 / rate, *stretch));
            joined.extend_from_slice(&samples[range]);
        }
        debug_assert_eq!(
            joined.len(),
            total,
            "the buffer never grew past its allocation"
        );
        Self {
            samples: joined,
            pieces,
        }
    }

    /// The recording's time for a segment's start at `time` in the joined audio: within a
    /// piece, the same offset from its start; in a joining silence, the next piece's start.
    pub fn start_time(&self, time: f64) -> f64 {
        self.recording_time(time, false)
    }

    /// The recording's time for a segment's end at `time`: in a joining silence, the end of
    /// the piece before it.
    pub fn end_time(&self, time: f64) -> f64 {
        self.recording_time(time, true)
    }

    fn recording_time(&self, time: f64, is_end: bool) -> f64 {
        // An end exactly at a piece's start belongs to the piece before it, and a start
        // exactly at a piece's end to the piece after it: neither may claim the silence cut
        // out between them.
        let index = self
            .pieces
            .partition_point(|(joined_start, _)| {
                if is_end {
                    *joined_start < time
                } else {
                    *joined_start <= time
                }
            })
            .saturating_sub(1);
        let Some((joined_start, stretch)) = self.pieces.get(index) else {
            return time;
        };
        let within = (time - joined_start).max(0.0);
        if stretch.start + within < stretch.end || is_end {
            return (stretch.start + within).min(stretch.end);
        }
        self.pieces
            .get(index + 1)
            .map_or(stretch.end, |(_, next)| next.start)
    }
}

/// A loaded Silero VAD.
#[derive(Debug)]
pub struct SpeechDetector {
    context: whisper_rs::WhisperVadContext,
}

impl SpeechDetector {
    /// Loads a VAD ggml file, run on `threads` threads (at most the free cores: ggml's
    /// workers spin).
    pub fn load(path: &Path, threads: usize) -> Result<Self, String> {
        let mut parameters = whisper_rs::WhisperVadContextParams::new();
        parameters.set_n_threads(threads.clamp(1, crate::transcribe::free_cores()) as i32);
        parameters.set_use_gpu(false);
        let path_text = path
            .to_str()
            .ok_or_else(|| format!("the VAD model path {} is not UTF-8", path.display()))?;
        let context =
            whisper_rs::WhisperVadContext::new(path_text, parameters).map_err(|error| {
                format!(
                    "whisper.cpp cannot load the VAD {}: {error}",
                    path.display()
                )
            })?;
        Ok(Self { context })
    }

    /// The stretches of speech in 16 kHz mono `samples`, in order.
    pub fn speech(&mut self, samples: &[f32]) -> Result<Vec<Speech>, String> {
        if samples.is_empty() {
            return Ok(Vec::new());
        }
        let mut parameters = whisper_rs::WhisperVadParams::new();
        // Pauses within a sentence stay in; a long silence splits. Whisper hears a little
        // before and after each stretch, as Silero's own helpers pad it.
        parameters.set_min_silence_duration(500);
        parameters.set_speech_pad(200);
        let segments = self
            .context
            .segments_from_samples(parameters, samples)
            .map_err(|error| format!("voice activity detection failed: {error}"))?;
        let end = samples.len() as f64 / f64::from(SAMPLE_RATE);
        // whisper.cpp counts in hundredths of a second.
        Ok(segments
            .map(|segment| Speech {
                start: (f64::from(segment.start) / 100.0).clamp(0.0, end),
                end: (f64::from(segment.end) / 100.0).clamp(0.0, end),
            })
            .filter(|stretch| stretch.end > stretch.start)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_in_the_joined_audio_map_back_to_the_recording() {
        let rate = SAMPLE_RATE as usize;
        let samples = vec![0.5f32; 60 * rate];
        let speech = [
            Speech {
                start: 2.0,
                end: 5.0,
            },
            Speech {
                start: 20.0,
                end: 21.5,
            },
            Speech {
                start: 40.0,
                end: 50.0,
            },
        ];
        let joined = SpeechOnly::join(&samples, &speech);
        // 3 + 0.1 + 1.5 + 0.1 + 10 seconds.
        assert_eq!(joined.samples.len(), (14.7 * rate as f64) as usize);
        assert!((joined.start_time(0.0) - 2.0).abs() < 1e-9);
        assert!((joined.end_time(2.5) - 4.5).abs() < 1e-9);
        // In the silence after the first piece: a start is the second piece's start, an end
        // the first piece's end.
        assert!((joined.start_time(3.05) - 20.0).abs() < 1e-9);
        assert!((joined.end_time(3.05) - 5.0).abs() < 1e-9);
        assert!((joined.start_time(3.1 + 1.0) - 21.0).abs() < 1e-9);
        // Exactly at a boundary: an end stays before the cut silence, a start after it.
        assert!((joined.end_time(3.1) - 5.0).abs() < 1e-9);
        assert!((joined.start_time(3.0) - 20.0).abs() < 1e-9);
        assert!((joined.start_time(3.1) - 20.0).abs() < 1e-9);
        assert!((joined.end_time(4.7 + 9.0) - 49.0).abs() < 1e-9);
        // Past the end: the last piece's end.
        assert!((joined.start_time(100.0) - 50.0).abs() < 1e-9);
        assert!((joined.end_time(100.0) - 50.0).abs() < 1e-9);
    }

    #[test]
    fn nothing_is_joined_from_no_speech() {
        let joined = SpeechOnly::join(&[0.0; 16_000], &[]);
        assert!(joined.samples.is_empty());
        assert!((joined.start_time(1.0) - 1.0).abs() < 1e-9);
    }

    #[test]
    fn a_safetensors_file_that_is_not_the_silero_network_is_refused() {
        let header = br#"{"conv1.weight":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#;
        let mut file = (header.len() as u64).to_le_bytes().to_vec();
        file.extend_from_slice(header);
        file.extend_from_slice(&1f32.to_le_bytes());
        assert!(!is_silero_safetensors(&file));
        let error = convert(&file, Vec::new()).unwrap_err().to_string();
        assert!(error.contains("stft_conv.weight"), "{error}");
        assert!(convert(b"\x01", Vec::new()).is_err());
    }
}
