//! Plaintext the node makes (decoded samples, a transcript's text) must leave no copy in
//! memory it frees: a buffer that grows by reallocation, or is dropped without being wiped,
//! leaves the words of a meeting in the heap for a later allocation, a core file or a
//! memory-reading bug to find.
//!
//! Each test runs again in a child process in which glibc keeps freed memory as it is
//! (`GLIBC_TUNABLES`: large blocks are not handed back to the system, so what was freed stays
//! readable), does its work, drops everything, then reads every writable mapping of the
//! process (`/proc/self/mem`) for a marker from the plaintext. The marker is kept only XORed,
//! so the search itself holds no copy of it.

use std::{
    io::{Read, Seek, SeekFrom},
    process::Command,
};

use quorate_node::{
    audio,
    job::{self, Segment, Transcript},
};
use zeroize::Zeroize;

/// Set in the child that does the work.
const CHILD: &str = "QUORATE_PLAINTEXT_MEMORY_CHILD";
const MASK: u8 = 0xa5;

/// Runs `test` (this binary's test of that name) in a child whose allocator keeps freed
/// memory readable, and expects it to pass.
fn in_child(test: &str) {
    in_child_with(test, &[]);
}

/// [`in_child`], with `variables` set in the child's environment.
fn in_child_with(test: &str, variables: &[(&str, &std::path::Path)]) {
    let child = Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--test-threads=1", "--nocapture"])
        .envs(variables.iter().copied())
        .env(CHILD, "1")
        .env(
            "GLIBC_TUNABLES",
            "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=4294967295",
        )
        .output()
        .unwrap();
    assert!(
        child.status.success(),
        "{test}: {}{}",
        String::from_utf8_lossy(&child.stdout),
        String::from_utf8_lossy(&child.stderr)
    );
}

/// Reads this process's writable memory. Everything it needs is allocated when it is made,
/// before the work: an allocation made while searching could reuse (and overwrite) the very
/// freed block the search is looking for.
struct Search {
    maps: std::fs::File,
    memory: std::fs::File,
    text: String,
    buffer: Vec<u8>,
}

impl Search {
    fn new() -> Self {
        Self {
            maps: std::fs::File::open("/proc/self/maps").unwrap(),
            memory: std::fs::File::open("/proc/self/mem").unwrap(),
            text: String::with_capacity(1 << 20),
            // Above the child's mmap threshold: its own mapping, never a freed heap block.
            buffer: vec![0u8; 64 << 20],
        }
    }

    /// Whether any writable mapping holds the bytes that `xored` (XORed with `MASK`) stands
    /// for.
    fn finds(&mut self, xored: &[u8]) -> bool {
        // The buffer is in this process's memory too: what an earlier search read into it
        // (the marker, while in use) must not be found again there.
        self.buffer.fill(0);
        self.text.clear();
        self.maps.seek(SeekFrom::Start(0)).unwrap();
        self.maps.read_to_string(&mut self.text).unwrap();
        assert!(self.text.len() < self.text.capacity(), "the map fits");
        let Self {
            text,
            memory,
            buffer,
            ..
        } = self;
        for line in text.lines() {
            let mut fields = line.split_whitespace();
            let (Some(range), Some(permissions)) = (fields.next(), fields.next()) else {
                continue;
            };
            if !permissions.starts_with("rw") {
                continue;
            }
            let (start, end) = range.split_once('-').unwrap();
            let (start, end) = (
                u64::from_str_radix(start, 16).unwrap(),
                u64::from_str_radix(end, 16).unwrap(),
            );
            // In pieces that overlap by the marker's length, so none is missed at a seam.
            let mut at = start;
            while at < end {
                let len = (end - at).min(buffer.len() as u64) as usize;
                let piece = &mut buffer[..len];
                if memory.seek(SeekFrom::Start(at)).is_err() || memory.read_exact(piece).is_err() {
                    break;
                }
                let first = xored[0] ^ MASK;
                let found = (0..=len.saturating_sub(xored.len())).any(|i| {
                    piece[i] == first
                        && piece[i..i + xored.len()]
                            .iter()
                            .zip(xored)
                            .all(|(byte, masked)| byte ^ MASK == *masked)
                });
                if found {
                    return true;
                }
                if at + len as u64 >= end {
                    break;
                }
                at += (len - xored.len()) as u64;
            }
        }
        false
    }
}

/// A 16 kHz mono 16-bit WAV of noise (no two stretches alike), and eight of its samples from
/// the middle as the node's buffers hold them (f32, as symphonia converts 16-bit samples),
/// XORed. The WAV itself holds 16-bit integers, so it is never mistaken for a copy.
fn noise_wav(seconds: u32) -> (Vec<u8>, Vec<u8>) {
    let samples = 16_000 * seconds;
    let data_len = samples * 2;
    let mut bytes = Vec::with_capacity(44 + data_len as usize);
    bytes.extend_from_slice(b"RIFF");
    bytes.extend_from_slice(&(36 + data_len).to_le_bytes());
    bytes.extend_from_slice(b"WAVEfmt ");
    bytes.extend_from_slice(&16u32.to_le_bytes());
    bytes.extend_from_slice(&1u16.to_le_bytes());
    bytes.extend_from_slice(&1u16.to_le_bytes());
    bytes.extend_from_slice(&16_000u32.to_le_bytes());
    bytes.extend_from_slice(&32_000u32.to_le_bytes());
    bytes.extend_from_slice(&2u16.to_le_bytes());
    bytes.extend_from_slice(&16u16.to_le_bytes());
    bytes.extend_from_slice(b"data");
    bytes.extend_from_slice(&data_len.to_le_bytes());
    let mut marker = Vec::new();
    let mut state = 0x2545_f491_u32;
    for i in 0..samples {
        state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        let sample = (state >> 16) as i16 / 4;
        bytes.extend_from_slice(&sample.to_le_bytes());
        if (1_000..1_008).contains(&i) {
            marker.extend(
                (f32::from(sample) / 32_768.0)
                    .to_le_bytes()
                    .map(|b| b ^ MASK),
            );
        }
    }
    (bytes, marker)
}

#[test]
fn decoded_samples_leave_no_copy_in_freed_memory() {
    if std::env::var_os(CHILD).is_none() {
        return in_child("decoded_samples_leave_no_copy_in_freed_memory");
    }
    let (wav, marker) = noise_wav(3);
    let mut search = Search::new();
    let samples = audio::decode(wav, "audio/wav").unwrap();
    assert_eq!(samples.len(), 48_000);
    assert!(
        search.finds(&marker),
        "the search finds the decoded samples while they are in use"
    );
    drop(samples);
    assert!(
        !search.finds(&marker),
        "decoding left decoded samples in freed memory (a buffer grew or was dropped unwiped)"
    );
}

#[test]
fn the_transcript_text_leaves_no_copy_in_freed_memory_when_encoded() {
    if std::env::var_os(CHILD).is_none() {
        return in_child("the_transcript_text_leaves_no_copy_in_freed_memory_when_encoded");
    }
    // The marker is built from parts, so that no whole copy of it is in the binary.
    let mut marker: Vec<u8> = ["the treasurer moved ", "the reserve to account 4471"]
        .concat()
        .into_bytes();
    let xored: Vec<u8> = marker.iter().map(|byte| byte ^ MASK).collect();
    let mut search = Search::new();
    let transcript = Transcript {
        language: "en".into(),
        model_sha256: "ab".repeat(32),
        node_id: "node".into(),
        recording_id: "recording".into(),
        // Enough words that a buffer sized by guessing has to grow past the marker.
        segments: (0..400)
            .map(|i| Segment {
                start: f64::from(i),
                end: f64::from(i) + 1.0,
                text: if i == 0 {
                    String::from_utf8(marker.clone()).unwrap()
                } else {
                    format!("and then item {i} of the agenda was discussed at length")
                },
                speaker: None,
            })
            .collect(),
    };
    marker.zeroize();
    let text = job::transcript_json(&transcript).unwrap();
    job::wipe(transcript);
    assert!(
        search.finds(&xored),
        "the search finds the transcript's JSON while it is in use"
    );
    drop(text);
    assert!(
        !search.finds(&xored),
        "encoding left the transcript's text in freed memory (its JSON grew or was dropped unwiped)"
    );
}

/// Set in the child of the seek test: the folder with the age file and its key.
const SEEK_FILES: &str = "QUORATE_PLAINTEXT_MEMORY_SEEK_FILES";

/// The recording's plaintext for the seek test: a fixed pseudo-random sequence, so the child
/// can make its markers from it without holding the plaintext.
fn seek_plaintext() -> impl Iterator<Item = u8> {
    let mut state = 0x9e37_79b9_u32;
    std::iter::repeat_with(move || {
        state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        (state >> 24) as u8
    })
}

/// A demuxer seeks into the middle of a 64 KiB age chunk, and asks for the length (a seek
/// from the end): age's own seek reads the bytes it skips into a buffer it frees unwiped.
/// The node's seekable reader must leave none of the skipped plaintext, nor the last chunk's,
/// in freed memory. The file is encrypted in the parent: age's writer keeps its own copy.
#[test]
fn seeking_in_a_recording_leaves_no_plaintext_in_freed_memory() {
    use quorate_crypto::{AgeSecretKey, envelope};
    const LEN: usize = 300_000;
    // In the chunk that is skipped into, and in the last chunk (262,144 to 300,000).
    const MARKED: [usize; 2] = [66_000, 280_000];
    let Some(folder) = std::env::var_os(SEEK_FILES) else {
        let folder = tempfile::tempdir().unwrap();
        let key = AgeSecretKey::generate();
        let plaintext: Vec<u8> = seek_plaintext().take(LEN).collect();
        let (ciphertext, _) =
            envelope::encrypt(&plaintext[..], Vec::new(), &key.recipient()).unwrap();
        std::fs::write(folder.path().join("recording.age"), ciphertext).unwrap();
        std::fs::write(folder.path().join("key"), key.to_age_string().as_bytes()).unwrap();
        return in_child_with(
            "seeking_in_a_recording_leaves_no_plaintext_in_freed_memory",
            &[(SEEK_FILES, folder.path())],
        );
    };
    let folder = std::path::PathBuf::from(folder);
    let ciphertext = std::fs::read(folder.join("recording.age")).unwrap();
    let key_text = zeroize::Zeroizing::new(std::fs::read_to_string(folder.join("key")).unwrap());
    let key = AgeSecretKey::from_age_string(key_text.trim()).unwrap();
    let markers: Vec<Vec<u8>> = MARKED
        .iter()
        .map(|&at| {
            seek_plaintext()
                .skip(at)
                .take(32)
                .map(|byte| byte ^ MASK)
                .collect()
        })
        .collect();
    let mut search = Search::new();
    let mut reader =
        envelope::decrypt_seekable(std::io::Cursor::new(&ciphertext[..]), &key).unwrap();
    assert_eq!(reader.seek(SeekFrom::End(0)).unwrap(), LEN as u64);
    reader.seek(SeekFrom::Start(100_000)).unwrap();
    let mut read = zeroize::Zeroizing::new([0u8; 16]);
    reader.read_exact(&mut *read).unwrap();
    assert!(
        search.finds(&markers[0]),
        "the search finds the chunk being read while it is in use"
    );
    drop(reader);
    for (marker, at) in markers.iter().zip(MARKED) {
        assert!(
            !search.finds(marker),
            "seeking left the plaintext at byte {at} in freed memory"
        );
    }
}
