//! The blind-index test vectors that the TypeScript side checks itself against. The file is
//! generated from fixed keys and texts; this test fails if the published file and the code
//! disagree (`QUORATE_BLESS=1` rewrites it after an intended change).

use std::path::Path;

use quorate_crypto::{
    SecretBytes,
    blind::{SearchKey, normalise},
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Vector {
    comment: String,
    key: String,
    text: String,
    words: Vec<String>,
    tokens: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Vectors {
    description: String,
    vectors: Vec<Vector>,
}

const CASES: &[(&str, u8, &str)] = &[
    (
        "ASCII words and punctuation",
        0x01,
        "The budget, the BUDGET and the budget!",
    ),
    (
        "full-width and ligatures fold under NFKC",
        0x01,
        "ｆｕｌｌ-width ﬁnance Ⅻ",
    ),
    (
        "accents stay; composed and decomposed forms are equal",
        0x02,
        "café cafe\u{301} naïve",
    ),
    (
        "German sharp s lower-cases to itself",
        0x02,
        "STRASSE Straße",
    ),
    ("Greek final sigma depends on position", 0x03, "ΟΔΟΣ ΣΟΦΙΑ"),
    (
        "Turkish dotted capital I lower-cases to i + combining dot (a mark, kept in the word)",
        0x03,
        "İstanbul",
    ),
    (
        "Devanagari: the virama is a mark and stays inside the word",
        0x03,
        "नमस्ते दुनिया",
    ),
    (
        "digits and mixed scripts",
        0x04,
        "Q3 2024: 15% rise —東京 会議 ١٢٣",
    ),
    (
        "empty and separator-only text has no tokens",
        0x04,
        " -- ... ",
    ),
    (
        "apostrophes and hyphens split words",
        0x05,
        "don't re-elect O'Neil",
    ),
    ("emoji are separators", 0x05, "vote👍yes"),
];

fn generate() -> Vectors {
    let vectors = CASES
        .iter()
        .map(|(comment, key_byte, text)| {
            let key = SearchKey::from_secret(SecretBytes::new([*key_byte; 32]));
            Vector {
                comment: (*comment).to_owned(),
                key: hex::encode(key.expose_secret()),
                text: (*text).to_owned(),
                words: normalise(text),
                tokens: key.tokens(text).iter().map(ToString::to_string).collect(),
            }
        })
        .collect();
    Vectors {
        description: "Quorate blind-index tokens: token = hex(HMAC-SHA256(key, word)[..16]) for each word of \
                      normalise(text) = split(lowercase(NFKC(text))) on characters that are not Alphabetic, \
                      general category N (numbers) or general category M (marks)."
            .to_owned(),
        vectors,
    }
}

#[test]
fn published_vectors_match_the_code() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/blind-index-vectors.json");
    let generated = generate();
    if std::env::var_os("QUORATE_BLESS").is_some() {
        std::fs::write(
            &path,
            serde_json::to_string_pretty(&generated).unwrap() + "\n",
        )
        .unwrap();
    }
    let published: Vectors = serde_json::from_str(
        &std::fs::read_to_string(&path).expect("vectors file exists (QUORATE_BLESS=1)"),
    )
    .unwrap();
    assert_eq!(published, generated);
    assert!(published.vectors.iter().any(|v| v.tokens.is_empty()));
    assert_eq!(
        published.vectors[0].tokens[1], published.vectors[0].tokens[3],
        "budget == BUDGET"
    );
}
