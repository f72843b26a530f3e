//! Who said what: a recording with one audio track per participant is transcribed track by
//! track, each segment named by the track's speaker, and the segments merged by time.
//!
//! A recording is either one media file, or several files after a header that names the
//! speaker on each of their audio streams (`quorate_crypto::tracks`, inside the ciphertext).
//! A single file with several audio streams and no names has each stream transcribed too,
//! its segments marked "Track 1", "Track 2", ...; a single stream has no speaker: this node
//! does not tell voices apart within one mixed track (no diarization model ships through a
//! registry it can use).

use std::{
    io::{Read, Seek, SeekFrom},
    sync::{Arc, Mutex},
};

use quorate_crypto::tracks::{PREFIX_LEN, Tracks};

use crate::{
    audio::{AudioError, AudioStream},
    job::Segment,
    transcribe::{StreamError, Transcriber},
};

/// The container is found from the bytes; the media type is only a hint.
const MEDIA_TYPE: &str = "application/octet-stream";

/// A stretch `[start, start + len)` of a source that several readers share, each at its own
/// position: one media file of a recording of several.
struct Window<R> {
    shared: Arc<Mutex<R>>,
    start: u64,
    len: u64,
    at: u64,
}

impl<R> Window<R> {
    fn new(shared: &Arc<Mutex<R>>, start: u64, len: u64) -> Self {
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
        let mut source = self
            .shared
            .lock()
            .expect("no reader panics holding the source");
        source.seek(SeekFrom::Start(self.start + self.at))?;
        let read = source.read(&mut buf[..wanted])?;
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
    speakers: Option<Vec<String>>,
}

/// One audio stream to transcribe, and who speaks on it.
struct Voice {
    file: usize,
    index: usize,
    speaker: Option<String>,
}

/// Transcribes `plaintext` (a recording: one media file, or several with their speakers'
/// names) in `language`, or in the one Whisper detects, every audio stream in turn, and
/// merges the segments by time. Returns the language (the one asked for, else the first
/// detected in a stream with speech) and the segments.
pub fn transcribe_recording<R: Read + Seek + Send + 'static>(
    transcriber: &Transcriber,
    mut plaintext: R,
    language: Option<&str>,
    progress: impl Fn(i32) + Clone + 'static,
    stop: impl Fn() -> bool + Clone + 'static,
) -> Result<(String, Vec<Segment>), StreamError> {
    let files = files(&mut plaintext)?;
    let shared = Arc::new(Mutex::new(plaintext));
    let voices = voices(&shared, &files)?;
    let mut heard_in = None;
    let mut fallback = None;
    let mut segments = Vec::new();
    for (done, voice) in voices.iter().enumerate() {
        let file = &files[voice.file];
        let mut stream = AudioStream::open_track(
            Window::new(&shared, file.start, file.len),
            MEDIA_TYPE,
            voice.index,
        )?;
        let report = progress.clone();
        let (from, span) = share_of_progress(done, voices.len());
        let (detected, mut piece) = transcriber.transcribe_stream(
            &mut stream,
            language,
            move |percent| report(from + span * percent / 100),
            stop.clone(),
        )?;
        if !piece.is_empty() {
            heard_in.get_or_insert_with(|| detected.clone());
        }
        fallback.get_or_insert(detected);
        for segment in &mut piece {
            segment.speaker.clone_from(&voice.speaker);
        }
        segments.append(&mut piece);
    }
    // Stable: segments of one stream keep their order, and equal starts their streams'.
    segments.sort_by(|a, b| a.start.total_cmp(&b.start));
    let language = language
        .map(str::to_owned)
        .or(heard_in)
        .or(fallback)
        .unwrap_or_else(|| "und".to_owned());
    Ok((language, segments))
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
    let damaged = |error: std::io::Error| AudioError::Unreadable(error.to_string());
    let total = plaintext.seek(SeekFrom::End(0)).map_err(damaged)?;
    plaintext.seek(SeekFrom::Start(0)).map_err(damaged)?;
    let mut prefix = [0u8; PREFIX_LEN];
    let whole = vec![File {
        start: 0,
        len: total,
        speakers: None,
    }];
    if total < PREFIX_LEN as u64 {
        return Ok(whole);
    }
    plaintext.read_exact(&mut prefix).map_err(damaged)?;
    if !Tracks::is_tracks(&prefix) {
        return Ok(whole);
    }
    let refused = |error: quorate_crypto::Error| {
        AudioError::Damaged(format!(
            "the recording's list of tracks: {error}; upload the tracks again"
        ))
    };
    let header_len = Tracks::header_len(&prefix).map_err(refused)?;
    let mut header = zeroize::Zeroizing::new(vec![0u8; header_len]);
    plaintext.read_exact(&mut header).map_err(damaged)?;
    let tracks = Tracks::decode(&header).map_err(refused)?;
    let mut start = Tracks::files_start(header_len);
    let mut files = Vec::with_capacity(tracks.files.len());
    for file in tracks.files {
        files.push(File {
            start,
            len: file.len,
            speakers: Some(file.speakers),
        });
        start = start.saturating_add(file.len);
    }
    if start != total {
        return Err(AudioError::Damaged(format!(
            "the recording's tracks add up to {start} bytes, but it has {total}: upload the tracks again"
        )));
    }
    Ok(files)
}

/// Every audio stream of every file, with its speaker: the upload's name for it, or for a
/// lone file of several streams "Track N".
fn voices<R: Read + Seek + Send + 'static>(
    shared: &Arc<Mutex<R>>,
    files: &[File],
) -> Result<Vec<Voice>, AudioError> {
    let mut voices = Vec::new();
    for (number, file) in files.iter().enumerate() {
        let streams = AudioStream::open(Window::new(shared, file.start, file.len), MEDIA_TYPE)?
            .audio_tracks();
        let speakers = match &file.speakers {
            Some(names) if names.len() == streams => names.iter().cloned().map(Some).collect(),
            Some(names) => {
                return Err(AudioError::Unsupported(format!(
                    "file {} of the recording has {streams} audio streams, but its upload named {} speakers: upload it again with one name for each stream",
                    number + 1,
                    names.len()
                )));
            }
            None if streams == 1 => vec![None],
            None => (1..=streams).map(|n| Some(format!("Track {n}"))).collect(),
        };
        voices.extend(
            speakers
                .into_iter()
                .enumerate()
                .map(|(index, speaker)| Voice {
                    file: number,
                    index,
                    speaker,
                }),
        );
    }
    Ok(voices)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_reads_and_seeks_only_its_stretch() {
        let shared = Arc::new(Mutex::new(std::io::Cursor::new(b"0123456789".to_vec())));
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
}
