//! Who said what: a recording with one audio track per participant is transcribed track by
//! track, each segment named by the track's speaker, and the segments merged by time.
//!
//! A recording is either one media file, or several files after a header that names the
//! speaker on each of their audio streams (`quorate_crypto::tracks`, inside the ciphertext).
//! A file without that header is transcribed from its default audio track, with no speaker:
//! a second track there is as often a mix of the first as another voice, and this node does
//! not tell voices apart within one mixed track (no diarization model ships through a
//! registry it can use).

use std::{
    io::{Read, Seek, SeekFrom},
    sync::{Arc, Mutex},
};

use quorate_crypto::tracks::{PREFIX_LEN, Tracks};
use zeroize::Zeroizing;

use crate::{
    audio::{AudioError, AudioStream},
    job::{Heard, Segment},
    transcribe::{StreamError, Transcriber},
};

/// The container is found from the bytes; the media type is only a hint.
const MEDIA_TYPE: &str = "application/octet-stream";

/// A source several readers share, and where it stands, so that a reader that continues
/// where the last read left off does not seek (a seek of the decrypted stream decrypts its
/// chunk again).
struct Shared<R> {
    source: R,
    at: u64,
}

/// A stretch `[start, start + len)` of a source that several readers share, each at its own
/// position: one media file of a recording of several.
struct Window<R> {
    shared: Arc<Mutex<Shared<R>>>,
    start: u64,
    len: u64,
    at: u64,
}

impl<R> Window<R> {
    fn new(shared: &Arc<Mutex<Shared<R>>>, start: u64, len: u64) -> Self {
        Self {
            shared: Arc::clone(shared),
            start,
            len,
            at: 0,
        }
    }
}

impl<R: Read + Seek> Read for Window<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.len.saturating_sub(self.at);
        let wanted = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        if wanted == 0 {
            return Ok(0);
        }
        let mut shared = self
            .shared
            .lock()
            .map_err(|_| std::io::Error::other("a reader of the recording failed"))?;
        let from = self.start + self.at;
        if shared.at != from {
            shared.at = shared.source.seek(SeekFrom::Start(from))?;
        }
        let read = shared.source.read(&mut buf[..wanted])?;
        shared.at += read as u64;
        self.at += read as u64;
        Ok(read)
    }
}

impl<R> Seek for Window<R> {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let target = match to {
            SeekFrom::Start(at) => Some(at),
            SeekFrom::End(back) => self.len.checked_add_signed(back),
            SeekFrom::Current(by) => self.at.checked_add_signed(by),
        };
        self.at = target.ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "seek before the start")
        })?;
        Ok(self.at)
    }
}

/// One media file of a recording: where it lies, and the speakers its upload named for its
/// audio streams (none for a recording of one file).
struct File {
    start: u64,
    len: u64,
    speakers: Option<Vec<Zeroizing<String>>>,
}

/// One audio stream to transcribe, and who speaks on it (`None`: the file's default track,
/// no speaker).
struct Voice {
    file: usize,
    index: Option<usize>,
    speaker: Option<Zeroizing<String>>,
}

/// Transcribes `plaintext` (a recording: one media file, or several with their speakers'
/// names) in `language`, or in the one Whisper detects, every named audio stream in turn,
/// and merges the segments by time. Returns the language (the one asked for, else the
/// first detected in a stream with speech) and the segments.
pub fn transcribe_recording<R: Read + Seek + Send + 'static>(
    transcriber: &Transcriber,
    mut plaintext: R,
    language: Option<&str>,
    progress: impl Fn(i32) + Clone + 'static,
    stop: impl Fn() -> bool + Clone + 'static,
) -> Result<(String, Vec<Segment>), StreamError> {
    let files = files(&mut plaintext)?;
    let shared = Arc::new(Mutex::new(Shared {
        source: plaintext,
        at: u64::MAX,
    }));
    let voices = voices(&shared, &files)?;
    let mut heard_in = None;
    let mut fallback = None;
    let mut heard = Heard::default();
    for (done, voice) in voices.iter().enumerate() {
        let file = &files[voice.file];
        let window = Window::new(&shared, file.start, file.len);
        let mut stream = match voice.index {
            Some(index) => AudioStream::open_track(window, MEDIA_TYPE, index),
            None => AudioStream::open(window, MEDIA_TYPE),
        }
        .map_err(|error| in_file(error, voice.file, files.len()))?;
        let report = progress.clone();
        let (from, span) = share_of_progress(done, voices.len());
        let (detected, mut piece) = transcriber
            .transcribe_stream(
                &mut stream,
                language,
                move |percent| report(from + span * percent / 100),
                stop.clone(),
            )
            .map_err(|error| match error {
                StreamError::Audio(error) => {
                    StreamError::Audio(in_file(error, voice.file, files.len()))
                }
                other => other,
            })?;
        if !piece.is_empty() {
            heard_in.get_or_insert_with(|| detected.clone());
        }
        fallback.get_or_insert(detected);
        for segment in &mut piece {
            segment.speaker = voice.speaker.as_deref().cloned();
        }
        heard.0.append(&mut piece);
    }
    let mut segments = std::mem::take(&mut heard.0);
    // Stable: segments of one stream keep their order, and equal starts their streams'.
    segments.sort_by(|a, b| a.start.total_cmp(&b.start));
    let language = language
        .map(str::to_owned)
        .or(heard_in)
        .or(fallback)
        .unwrap_or_else(|| "und".to_owned());
    Ok((language, segments))
}

/// `error`, saying which of a recording's `count` files it is about (by number: the names
/// are the meeting's).
fn in_file(error: AudioError, file: usize, count: usize) -> AudioError {
    if count == 1 {
        return error;
    }
    let about = |reason: String| format!("file {} of {count} of the recording: {reason}", file + 1);
    match error {
        AudioError::Unsupported(reason) => AudioError::Unsupported(about(reason)),
        AudioError::Damaged(reason) => AudioError::Damaged(about(reason)),
        other => other,
    }
}

/// The percent where the `done`-th of `count` streams starts, and the percents it spans.
fn share_of_progress(done: usize, count: usize) -> (i32, i32) {
    let count = count.max(1) as i32;
    let done = done as i32;
    (
        done * 100 / count,
        (done + 1) * 100 / count - done * 100 / count,
    )
}

/// The media files of `plaintext`, from the header of a recording of several tracks, or the
/// whole of it.
fn files<R: Read + Seek>(plaintext: &mut R) -> Result<Vec<File>, AudioError> {
    let unreadable = |error: std::io::Error| AudioError::Unreadable(error.to_string());
    let total = plaintext.seek(SeekFrom::End(0)).map_err(unreadable)?;
    plaintext.seek(SeekFrom::Start(0)).map_err(unreadable)?;
    let whole = vec![File {
        start: 0,
        len: total,
        speakers: None,
    }];
    let mut prefix = [0u8; PREFIX_LEN];
    if total < PREFIX_LEN as u64 {
        return Ok(whole);
    }
    plaintext.read_exact(&mut prefix).map_err(unreadable)?;
    if !Tracks::is_tracks(&prefix) {
        return Ok(whole);
    }
    // What the uploader wrote is wrong, not the node's copy of it: say so.
    let refused = |reason: String| {
        AudioError::Damaged(format!(
            "the recording's list of tracks {reason}; upload the tracks again"
        ))
    };
    let header_len =
        Tracks::header_len(&prefix).map_err(|error| refused(format!("is refused: {error}")))?;
    let mut start = Tracks::files_start(header_len);
    if start > total {
        return Err(refused(format!(
            "is longer than the recording ({total} bytes)"
        )));
    }
    let mut header = Zeroizing::new(vec![0u8; header_len]);
    plaintext.read_exact(&mut header).map_err(unreadable)?;
    let tracks =
        Tracks::decode(&header).map_err(|error| refused(format!("is refused: {error}")))?;
    let mut files = Vec::with_capacity(tracks.files.len());
    for file in tracks.files {
        files.push(File {
            start,
            len: file.len,
            speakers: Some(file.speakers.into_iter().map(Zeroizing::new).collect()),
        });
        start = start.saturating_add(file.len);
    }
    if start != total {
        return Err(refused(format!(
            "adds up to {start} bytes, but the recording has {total}"
        )));
    }
    Ok(files)
}

/// Every named audio stream of every file, with its speaker, or a lone file's default
/// track.
fn voices<R: Read + Seek + Send + 'static>(
    shared: &Arc<Mutex<Shared<R>>>,
    files: &[File],
) -> Result<Vec<Voice>, AudioError> {
    let mut voices = Vec::new();
    for (number, file) in files.iter().enumerate() {
        let Some(names) = &file.speakers else {
            voices.push(Voice {
                file: number,
                index: None,
                speaker: None,
            });
            continue;
        };
        let streams = AudioStream::open(Window::new(shared, file.start, file.len), MEDIA_TYPE)
            .map_err(|error| in_file(error, number, files.len()))?
            .audio_tracks();
        if names.len() != streams {
            return Err(AudioError::Unsupported(format!(
                "file {} of the recording has {streams} audio streams, but its upload named {} speakers: upload it again with one --speaker for each stream",
                number + 1,
                names.len()
            )));
        }
        voices.extend(names.iter().enumerate().map(|(index, name)| Voice {
            file: number,
            index: Some(index),
            speaker: Some(name.clone()),
        }));
    }
    Ok(voices)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_reads_and_seeks_only_its_stretch() {
        let shared = Arc::new(Mutex::new(Shared {
            source: std::io::Cursor::new(b"0123456789".to_vec()),
            at: u64::MAX,
        }));
        let mut a = Window::new(&shared, 2, 5);
        let mut b = Window::new(&shared, 7, 3);
        let mut text = String::new();
        a.read_to_string(&mut text).unwrap();
        assert_eq!(text, "23456");
        assert_eq!(b.seek(SeekFrom::End(-1)).unwrap(), 2);
        text.clear();
        b.read_to_string(&mut text).unwrap();
        assert_eq!(text, "9");
        a.seek(SeekFrom::Start(1)).unwrap();
        let mut two = [0u8; 2];
        a.read_exact(&mut two).unwrap();
        assert_eq!(&two, b"34");
        assert!(a.seek(SeekFrom::Current(-10)).is_err());
    }

    #[test]
    fn progress_is_shared_out_among_the_streams() {
        assert_eq!(share_of_progress(0, 1), (0, 100));
        assert_eq!(share_of_progress(0, 3), (0, 33));
        assert_eq!(share_of_progress(2, 3), (66, 34));
    }
    /// A header for files of `lens` bytes, one speaker each, then `body`.
    fn recording(lens: &[u64], body: &[u8]) -> Vec<u8> {
        let tracks = Tracks {
            files: lens
                .iter()
                .enumerate()
                .map(|(index, len)| quorate_crypto::tracks::TrackFile {
                    len: *len,
                    speakers: vec![format!("Speaker {index}")],
                })
                .collect(),
        };
        let mut plaintext = tracks.encode().unwrap().to_vec();
        plaintext.extend_from_slice(body);
        plaintext
    }

    #[test]
    fn the_files_of_a_recording_are_where_its_header_says_or_it_is_refused() {
        let media = b"RIFF-one-file-WAVE".to_vec();
        let whole = files(&mut std::io::Cursor::new(media.clone())).unwrap();
        assert_eq!((whole.len(), whole[0].start, whole[0].len), (1, 0, 18));
        assert!(whole[0].speakers.is_none());

        let plaintext = recording(&[3, 5], b"abcdefgh");
        let split = files(&mut std::io::Cursor::new(plaintext.clone())).unwrap();
        let start = (plaintext.len() - 8) as u64;
        assert_eq!((split[0].start, split[0].len), (start, 3));
        assert_eq!((split[1].start, split[1].len), (start + 3, 5));
        assert_eq!(split[1].speakers.as_ref().unwrap()[0].as_str(), "Speaker 1");

        // Lengths that do not add up, and a header cut short: the uploader's mistake, not
        // the node's disk.
        for damaged in [
            recording(&[3, 5], b"abcdefg"),
            recording(&[3, 5], b"abcdefghi"),
            plaintext[..30].to_vec(),
        ] {
            let error = files(&mut std::io::Cursor::new(damaged)).err().unwrap();
            assert!(
                matches!(&error, AudioError::Damaged(reason) if reason.contains("upload the tracks again")),
                "{error}"
            );
        }
    }
}
