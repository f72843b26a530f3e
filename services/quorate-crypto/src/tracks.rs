//! A recording of several audio tracks, one per participant, as one plaintext.
//!
//! Meeting software can record each participant apart (Zoom's per-participant files, LiveKit
//! track egress, a Matroska or MP4 file with one audio stream each), which gives every word
//! its speaker with no model. Such a recording is encrypted as one age file whose plaintext
//! is [`MAGIC`], a `u32` (big-endian) header length, the header (below), then the media
//! files one after another. The header lists each file's length and the names of the
//! speakers on its audio streams, in stream order: one name for a file with one stream,
//! several for a file with several. The names are inside the ciphertext, so only a device
//! that rebuilds the recording key (an approved node, for one request) reads them, and the
//! ciphertext hash the uploader signs binds them to the recording.
//!
//! A plaintext without the magic is one media file, as before.

use zeroize::Zeroizing;

use crate::{
    Error,
    statement::text_field,
    wire::{Reader, Writer},
};

/// How a plaintext of several tracks begins. No media container starts with it.
pub const MAGIC: &[u8; 16] = b"quorate-tracks/1";

/// The magic and the header's length: what to read first.
pub const PREFIX_LEN: usize = MAGIC.len() + 4;

/// The most files one recording carries.
pub const MAX_FILES: usize = 64;

/// The most audio streams one file may name speakers for.
pub const MAX_STREAMS: usize = 64;

/// The largest header taken: names are at most 4096 bytes, and there are at most
/// [`MAX_FILES`] x [`MAX_STREAMS`] of them, but a real header is a few hundred bytes.
const MAX_HEADER_LEN: usize = 1 << 20;

const DOMAIN: &str = "quorate/tracks/v1";

/// One media file of a recording of several tracks.
#[derive(Clone, PartialEq, Eq)]
pub struct TrackFile {
    /// Its length in bytes.
    pub len: u64,
    /// Who speaks on each of its audio streams, in the order the file lists them.
    pub speakers: Vec<String>,
}

impl std::fmt::Debug for TrackFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Participants' names are as sensitive as the title: never in a log.
        f.debug_struct("TrackFile")
            .field("len", &self.len)
            .field("speakers", &self.speakers.len())
            .finish()
    }
}

/// The files of a recording of several tracks, in the order they follow the header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tracks {
    /// The files.
    pub files: Vec<TrackFile>,
}

impl Tracks {
    /// Whether a plaintext that begins with `prefix` is a recording of several tracks.
    pub fn is_tracks(prefix: &[u8]) -> bool {
        prefix.starts_with(MAGIC)
    }

    /// The magic, the header's length and the header: what goes before the files.
    pub fn encode(&self) -> Result<Zeroizing<Vec<u8>>, Error> {
        self.check()?;
        let mut writer = Writer::new(DOMAIN);
        writer.list(&self.files, |writer, file| {
            writer.u64(file.len).list(&file.speakers, |writer, name| {
                writer.str(name);
            });
        });
        let header = Zeroizing::new(writer.finish());
        if header.len() > MAX_HEADER_LEN {
            return Err(Error::InvalidField {
                field: "tracks",
                reason: "the speakers' names take more than 1 MiB",
            });
        }
        let mut out = Zeroizing::new(Vec::with_capacity(PREFIX_LEN + header.len()));
        out.extend_from_slice(MAGIC);
        let len = u32::try_from(header.len()).expect("the header is under 1 MiB");
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&header);
        Ok(out)
    }

    /// The length of the header that follows `prefix` (the magic and the length).
    pub fn header_len(prefix: &[u8; PREFIX_LEN]) -> Result<usize, Error> {
        if !Self::is_tracks(prefix) {
            return Err(Error::Malformed {
                what: "recording tracks",
            });
        }
        let len = u32::from_be_bytes(prefix[MAGIC.len()..].try_into().expect("4 bytes")) as usize;
        if len > MAX_HEADER_LEN {
            return Err(Error::Malformed {
                what: "recording tracks",
            });
        }
        Ok(len)
    }

    /// Parses and checks the header (the bytes after the prefix).
    pub fn decode(header: &[u8]) -> Result<Self, Error> {
        let mut reader = Reader::new(header, DOMAIN, "recording tracks")?;
        let files = reader.list(|reader| {
            Ok(TrackFile {
                len: reader.u64()?,
                speakers: reader.list(Reader::string)?,
            })
        })?;
        reader.finish()?;
        let tracks = Self { files };
        tracks.check()?;
        Ok(tracks)
    }

    /// Where the files begin: after the prefix and a header of `header_len` bytes.
    pub fn files_start(header_len: usize) -> u64 {
        (PREFIX_LEN + header_len) as u64
    }

    fn check(&self) -> Result<(), Error> {
        let invalid = |reason| Error::InvalidField {
            field: "tracks",
            reason,
        };
        if self.files.is_empty() || self.files.len() > MAX_FILES {
            return Err(invalid("a recording carries 1 to 64 files"));
        }
        for file in &self.files {
            if file.len == 0 {
                return Err(invalid("a file is empty"));
            }
            if file.speakers.is_empty() || file.speakers.len() > MAX_STREAMS {
                return Err(invalid("a file names 1 to 64 speakers"));
            }
            file.speakers
                .iter()
                .try_for_each(|name| text_field("speaker", name, false))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_files() -> Tracks {
        Tracks {
            files: vec![
                TrackFile {
                    len: 1000,
                    speakers: vec!["Ada".into()],
                },
                TrackFile {
                    len: 20,
                    speakers: vec!["Bo".into(), "Cy".into()],
                },
            ],
        }
    }

    #[test]
    fn a_header_reads_back_and_says_where_the_files_begin() {
        let tracks = two_files();
        let encoded = tracks.encode().unwrap();
        assert!(Tracks::is_tracks(&encoded));
        let prefix: [u8; PREFIX_LEN] = encoded[..PREFIX_LEN].try_into().unwrap();
        let len = Tracks::header_len(&prefix).unwrap();
        assert_eq!(PREFIX_LEN + len, encoded.len());
        assert_eq!(Tracks::files_start(len), encoded.len() as u64);
        assert_eq!(Tracks::decode(&encoded[PREFIX_LEN..]).unwrap(), tracks);
        // Names never reach a log.
        assert!(!format!("{tracks:?}").contains("Ada"));
    }

    #[test]
    fn a_header_without_files_names_or_lengths_is_refused() {
        let refused = |tracks: Tracks| {
            assert!(matches!(tracks.encode(), Err(Error::InvalidField { .. })));
        };
        refused(Tracks { files: vec![] });
        let mut nameless = two_files();
        nameless.files[0].speakers.clear();
        refused(nameless);
        let mut blank = two_files();
        blank.files[1].speakers[1] = " ".into();
        refused(blank);
        let mut empty = two_files();
        empty.files[0].len = 0;
        refused(empty);

        // Media that is not a recording of tracks, and a header too long to be one.
        assert!(!Tracks::is_tracks(b"RIFF....WAVEfmt "));
        let mut prefix = [0u8; PREFIX_LEN];
        prefix[..16].copy_from_slice(MAGIC);
        prefix[16..].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(Tracks::header_len(&prefix).is_err());
        let encoded = two_files().encode().unwrap();
        assert!(Tracks::decode(&encoded[PREFIX_LEN..encoded.len() - 1]).is_err());
    }
}
