//! Age envelopes: streaming encryption of recordings and transcripts to a fresh key, and
//! sealing of small values (shares, metadata) to one or more recipients.
//!
//! Everything written here is a standard age v1 file (binary for streams, so they can be
//! served with HTTP Range; ASCII-armoured where noted) and opens with the `age` tool.
//! Memory stays flat whatever the size: age works in 64 KiB STREAM chunks.

use std::io::{self, BufRead, Read, Seek, Write};

use age::secrecy::SecretString;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use age::armor::ArmoredReader;

use crate::{AgeSecretKey, DecryptFailure, Error, Recipient};

/// Largest small sealed value [`open`] accepts: 4 MiB. Sealed values are shares,
/// identities and metadata, all far smaller; the cap keeps a hostile server from making a
/// device buffer an arbitrary amount.
pub const MAX_SEALED_LEN: usize = 4 << 20;

/// The largest scrypt work factor (log2 N) accepted when opening a passphrase-protected
/// file (Go age's limit too): more is refused rather than letting a
/// hostile file pin the device.
pub const MAX_WORK_FACTOR: u8 = 22;

/// Starts an age file to `recipients` over `output`. Write the plaintext to the returned
/// writer, then call its `finish()` (without it the file is truncated and will not open).
pub fn encrypt_writer<W: Write>(
    recipients: &[Recipient],
    output: W,
) -> Result<age::stream::StreamWriter<W>, Error> {
    let recipients: Vec<age::x25519::Recipient> = recipients.iter().map(|r| r.to_age()).collect();
    let encryptor =
        age::Encryptor::with_recipients(recipients.iter().map(|r| r as _)).map_err(|_| {
            Error::InvalidField {
                field: "recipients",
                reason: "need at least one",
            }
        })?;
    Ok(encryptor.wrap_output(output)?)
}

/// Encrypts all of `plaintext` into `output` as an age file to `recipient`, streaming.
/// Returns `output` and the number of plaintext bytes read.
pub fn encrypt<R: Read, W: Write>(
    mut plaintext: R,
    output: W,
    recipient: &Recipient,
) -> Result<(W, u64), Error> {
    let mut writer = encrypt_writer(std::slice::from_ref(recipient), output)?;
    let copied = copy_zeroizing(&mut plaintext, &mut writer)?;
    Ok((writer.finish()?, copied))
}

/// The plaintext of an age file as it is authenticated, chunk by chunk.
pub type PlaintextReader<R> =
    age::stream::StreamReader<ArmoredReader<io::BufReader<io::BufReader<R>>>>;

/// What opens an age file.
#[derive(Debug, Clone, Copy)]
pub enum Unlock<'a> {
    /// Any one of these X25519 keys.
    Keys(&'a [AgeSecretKey]),
    /// A passphrase (scrypt stanza).
    Passphrase(&'a SecretString),
}

/// Opens an age file (binary or ASCII-armoured), returning a reader of the plaintext that
/// authenticates each 64 KiB chunk before releasing it. A truncated or altered file ends in
/// an error, never in silently shortened plaintext. Read errors from the returned stream
/// map to [`DecryptFailure`] through [`payload_error`].
pub fn open_reader<R: Read>(
    input: R,
    unlock: Unlock<'_>,
    what: &'static str,
) -> Result<PlaintextReader<R>, Error> {
    let mut input = io::BufReader::new(input);
    let looks_armored = looks_like_armor(input.fill_buf()?);
    let decryptor = age::Decryptor::new_buffered(ArmoredReader::new(input)).map_err(|error| {
        match header_error(error, what, false) {
            // A broken begin marker is not recognised as armour and fails as a header.
            Error::Decrypt {
                failure: DecryptFailure::BadHeader,
                ..
            } if looks_armored => Error::Decrypt {
                what,
                failure: DecryptFailure::BadArmor,
            },
            other => other,
        }
    })?;
    let unlocked = match unlock {
        Unlock::Keys(keys) => {
            let identities: Vec<age::x25519::Identity> =
                keys.iter().map(AgeSecretKey::to_age).collect();
            decryptor.decrypt(identities.iter().map(|identity| identity as _))
        }
        Unlock::Passphrase(passphrase) => {
            let mut identity = age::scrypt::Identity::new(passphrase.clone());
            identity.set_max_work_factor(MAX_WORK_FACTOR);
            decryptor.decrypt(std::iter::once(&identity as _))
        }
    };
    let passphrase = matches!(unlock, Unlock::Passphrase(_));
    unlocked.map_err(|error| header_error(error, what, passphrase))
}

/// Opens a binary or armoured age file with `key` for streaming, like [`open_reader`]. A
/// binary file (every recording and transcript) is read without the armour layer and its
/// extra buffering, which costs a quarter of the throughput.
pub fn decrypt_reader<'a, R: BufRead + 'a>(
    mut input: R,
    key: &AgeSecretKey,
) -> Result<Box<dyn Read + 'a>, Error> {
    const WHAT: &str = "age file";
    if !input.fill_buf()?.starts_with(b"age-encryption.org/") {
        return Ok(Box::new(open_reader(
            input,
            Unlock::Keys(std::slice::from_ref(key)),
            WHAT,
        )?));
    }
    Ok(Box::new(binary_stream(input, key)?))
}

/// The length of a binary age header at the start of `head`: up to and with the newline that
/// ends its MAC line (`--- ` and the MAC). `None` if `head` does not hold all of it.
fn binary_header_len(head: &[u8]) -> Option<u64> {
    let mac_line = head.windows(5).position(|window| window == b"\n--- ")? + 1;
    let end = head[mac_line..].iter().position(|&byte| byte == b'\n')?;
    u64::try_from(mac_line + end + 1).ok()
}

/// The plaintext length of a binary age file of `file_len` bytes whose header is
/// `header_len` bytes: the payload is a 16-byte nonce, then chunks of up to 64 KiB, each
/// with a 16-byte tag. `None` if no payload fits.
fn plaintext_len(file_len: u64, header_len: u64) -> Option<u64> {
    const TAG_LEN: u64 = 16;
    let sealed = file_len.checked_sub(header_len)?.checked_sub(16)?;
    let chunks = sealed.div_ceil(CHUNK_LEN + TAG_LEN).max(1);
    sealed.checked_sub(chunks * TAG_LEN)
}

/// The plaintext stream of a binary age file opened with `key` (its header read and the
/// file key unwrapped).
fn binary_stream<R: BufRead>(
    input: R,
    key: &AgeSecretKey,
) -> Result<age::stream::StreamReader<R>, Error> {
    const WHAT: &str = "age file";
    let decryptor =
        age::Decryptor::new_buffered(input).map_err(|error| header_error(error, WHAT, false))?;
    let identity = key.to_age();
    decryptor
        .decrypt(std::iter::once(&identity as _))
        .map_err(|error| header_error(error, WHAT, false))
}

/// age's STREAM chunk: 64 KiB of plaintext.
const CHUNK_LEN: u64 = 64 * 1024;

/// The plaintext of a binary age file, readable at any position: each 64 KiB chunk is
/// authenticated as it is read, whatever order the chunks are read in.
///
/// age's own seek reads the part of a chunk before the target into a buffer it frees
/// without wiping; this one seeks age to the chunk's start and skips to the target through
/// one wiped buffer of its own, so a demuxer that seeks often (an MP4's audio between its
/// video samples) leaves no plaintext behind in freed memory.
pub struct SeekablePlaintext<R> {
    stream: age::stream::StreamReader<R>,
    position: u64,
    /// The plaintext's length, computed from the file's (age's own way to it, a seek to
    /// the end, frees the last chunk's plaintext unwiped).
    len: u64,
    skipped: Zeroizing<Vec<u8>>,
}

impl<R> std::fmt::Debug for SeekablePlaintext<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeekablePlaintext")
            .field("position", &self.position)
            .finish_non_exhaustive()
    }
}

impl<R: Read + Seek> Read for SeekablePlaintext<R> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let read = self.stream.read(buffer)?;
        self.position += read as u64;
        Ok(read)
    }
}

impl<R: Read + Seek> Seek for SeekablePlaintext<R> {
    fn seek(&mut self, to: io::SeekFrom) -> io::Result<u64> {
        let before_start = || io::Error::new(io::ErrorKind::InvalidInput, "seek before the start");
        let target = match to {
            io::SeekFrom::Start(offset) => offset,
            io::SeekFrom::Current(delta) => self
                .position
                .checked_add_signed(delta)
                .ok_or_else(before_start)?,
            io::SeekFrom::End(delta) => self
                .len
                .checked_add_signed(delta)
                .ok_or_else(before_start)?,
        };
        let chunk_start = target - target % CHUNK_LEN;
        self.position = self.stream.seek(io::SeekFrom::Start(chunk_start))?;
        while self.position < target {
            let wanted = usize::try_from(target - self.position)
                .unwrap_or(usize::MAX)
                .min(self.skipped.len());
            let read = self.stream.read(&mut self.skipped[..wanted])?;
            if read == 0 {
                break;
            }
            self.position += read as u64;
        }
        Ok(self.position)
    }
}

/// Opens a binary age file with `key` for random access. A demuxer that jumps to an index
/// at the end of a file (an MP4's `moov`) then decrypts only the chunks it reads, and the
/// plaintext is never held whole. Armoured files cannot be seeked and are refused as a bad
/// header; every recording is binary.
pub fn decrypt_seekable<R: BufRead + Seek>(
    mut input: R,
    key: &AgeSecretKey,
) -> Result<SeekablePlaintext<R>, Error> {
    let file_len = input.seek(io::SeekFrom::End(0))?;
    input.seek(io::SeekFrom::Start(0))?;
    let header_len = binary_header_len(input.fill_buf()?).ok_or(Error::Decrypt {
        what: "age file",
        failure: DecryptFailure::BadHeader,
    })?;
    let len = plaintext_len(file_len, header_len).ok_or(Error::Decrypt {
        what: "age file",
        failure: DecryptFailure::BadPayload,
    })?;
    Ok(SeekablePlaintext {
        stream: binary_stream(input, key)?,
        position: 0,
        len,
        skipped: Zeroizing::new(vec![0; CHUNK_LEN as usize]),
    })
}

/// Classifies an error met while reading the header and unwrapping the file key.
fn header_error(error: age::DecryptError, what: &'static str, passphrase: bool) -> Error {
    let failure = match error {
        age::DecryptError::NoMatchingKeys => DecryptFailure::NotForThisKey,
        // A scrypt stanza that fails to open means a wrong passphrase.
        age::DecryptError::DecryptionFailed if passphrase => DecryptFailure::NotForThisKey,
        age::DecryptError::InvalidMac => DecryptFailure::HeaderMac,
        age::DecryptError::ExcessiveWork { .. } => DecryptFailure::ExcessiveWork,
        age::DecryptError::UnknownFormat => DecryptFailure::UnsupportedFormat,
        age::DecryptError::Io(io) if is_armor_error(&io) => DecryptFailure::BadArmor,
        age::DecryptError::Io(io) if !is_damage(&io) => return Error::Io(io),
        _ => DecryptFailure::BadHeader,
    };
    Error::Decrypt { what, failure }
}

/// Whether the start of a file is a failed attempt at ASCII armour: not a binary age
/// header, not the exact begin marker (which [`ArmoredReader`] recognises and then checks
/// itself), yet a `-----` marker line near the start (garbage before it, a lower-case,
/// spaced or wrong marker).
fn looks_like_armor(start: &[u8]) -> bool {
    if start.starts_with(b"age-encryption.org/")
        || start.starts_with(b"-----BEGIN AGE ENCRYPTED FILE-----")
    {
        return false;
    }
    let window = &start[..start.len().min(1024)];
    window.windows(5).any(|w| w == b"-----")
}

fn is_armor_error(error: &io::Error) -> bool {
    error
        .get_ref()
        .is_some_and(|inner| inner.is::<age::armor::ArmoredReadError>())
}

fn is_damage(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof
    )
}

/// Classifies a read error from a decrypting stream: armour damage, payload damage, or
/// (otherwise) the underlying I/O error itself.
pub fn payload_error(error: io::Error, what: &'static str) -> Error {
    let armor = error
        .get_ref()
        .is_some_and(|inner| inner.is::<age::armor::ArmoredReadError>());
    if armor {
        Error::Decrypt {
            what,
            failure: DecryptFailure::BadArmor,
        }
    } else if matches!(
        error.kind(),
        io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof
    ) {
        Error::Decrypt {
            what,
            failure: DecryptFailure::BadPayload,
        }
    } else {
        Error::Io(error)
    }
}

/// Decrypts all of `input` into `output`. Returns `output` and the plaintext length.
pub fn decrypt<R: BufRead, W: Write>(
    input: R,
    mut output: W,
    key: &AgeSecretKey,
) -> Result<(W, u64), Error> {
    let mut reader = decrypt_reader(input, key)?;
    let copied = copy_zeroizing(&mut reader, &mut output).map_err(|error| match error {
        Error::Io(io) => payload_error(io, "age file"),
        other => other,
    })?;
    Ok((output, copied))
}

/// `io::copy` with a buffer that is wiped afterwards, since it held plaintext.
fn copy_zeroizing(input: &mut impl Read, output: &mut impl Write) -> Result<u64, Error> {
    let mut buffer = Zeroizing::new(vec![0u8; 64 * 1024]);
    let mut total = 0u64;
    loop {
        let read = match input.read(&mut buffer) {
            Ok(0) => return Ok(total),
            Ok(read) => read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error.into()),
        };
        output.write_all(&buffer[..read])?;
        total += read as u64;
    }
}

/// Seals a small value as a binary age file to every recipient.
pub fn seal(plaintext: &[u8], recipients: &[Recipient]) -> Result<Vec<u8>, Error> {
    let mut writer = encrypt_writer(recipients, Vec::with_capacity(plaintext.len() + 512))?;
    writer.write_all(plaintext)?;
    Ok(writer.finish()?)
}

/// Opens a small sealed value (binary or ASCII-armoured) with `key`. `what` names it in
/// errors.
pub fn open(
    sealed: &[u8],
    key: &AgeSecretKey,
    what: &'static str,
) -> Result<Zeroizing<Vec<u8>>, Error> {
    read_small(
        open_reader(sealed, Unlock::Keys(std::slice::from_ref(key)), what)?,
        what,
    )
}

/// Opens a passphrase-protected age file (scrypt stanza), such as an identity file.
pub(crate) fn open_with_passphrase(
    sealed: &[u8],
    passphrase: &SecretString,
    what: &'static str,
) -> Result<Zeroizing<Vec<u8>>, Error> {
    let stream =
        open_reader(sealed, Unlock::Passphrase(passphrase), what).map_err(|error| match error {
            Error::Decrypt {
                failure: DecryptFailure::NotForThisKey,
                ..
            } => Error::WrongPassphrase,
            other => other,
        })?;
    read_small(stream, what)
}

fn read_small(stream: impl Read, what: &'static str) -> Result<Zeroizing<Vec<u8>>, Error> {
    let mut plaintext = Zeroizing::new(Vec::new());
    stream
        .take(MAX_SEALED_LEN as u64 + 1)
        .read_to_end(&mut plaintext)
        .map_err(|error| payload_error(error, what))?;
    if plaintext.len() > MAX_SEALED_LEN {
        return Err(Error::InvalidField {
            field: what,
            reason: "larger than 4 MiB",
        });
    }
    Ok(plaintext)
}

/// A writer that passes bytes through while counting them and hashing them with SHA-256:
/// the client uses it to learn a ciphertext's length and digest for the manifest as it
/// streams, and the server to check an upload.
#[derive(Debug)]
pub struct HashingWriter<W> {
    inner: W,
    hash: Sha256,
    len: u64,
}

impl<W: Write> HashingWriter<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            hash: Sha256::new(),
            len: 0,
        }
    }

    /// The inner writer, the byte count and the SHA-256 of everything written.
    pub fn finish(self) -> (W, u64, [u8; 32]) {
        (self.inner, self.len, self.hash.finalize().into())
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buffer: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(buffer)?;
        self.hash.update(&buffer[..written]);
        self.len += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_and_open_to_several_recipients() {
        let first = AgeSecretKey::generate();
        let second = AgeSecretKey::generate();
        let sealed = seal(b"minutes", &[first.recipient(), second.recipient()]).unwrap();
        assert_eq!(&*open(&sealed, &first, "test").unwrap(), b"minutes");
        assert_eq!(&*open(&sealed, &second, "test").unwrap(), b"minutes");
        assert!(matches!(
            open(&sealed, &AgeSecretKey::generate(), "test"),
            Err(Error::Decrypt {
                what: "test",
                failure: DecryptFailure::NotForThisKey
            })
        ));
        assert!(matches!(
            open(b"garbage", &first, "test"),
            Err(Error::Decrypt {
                failure: DecryptFailure::BadHeader,
                ..
            })
        ));
    }

    #[test]
    fn truncated_stream_is_an_error_not_short_plaintext() {
        let key = AgeSecretKey::generate();
        let plaintext = vec![7u8; 200_000];
        let (ciphertext, _) = encrypt(&plaintext[..], Vec::new(), &key.recipient()).unwrap();
        let cut = &ciphertext[..ciphertext.len() - 70_000];
        assert!(decrypt(cut, Vec::new(), &key).is_err());
    }

    #[test]
    fn a_seekable_plaintext_knows_its_length_without_reading_its_last_chunk() {
        let key = AgeSecretKey::generate();
        for len in [0usize, 1, 65_535, 65_536, 65_537, 131_072, 200_000] {
            let (ciphertext, _) =
                encrypt(&vec![1u8; len][..], Vec::new(), &key.recipient()).unwrap();
            let mut reader = decrypt_seekable(io::Cursor::new(&ciphertext[..]), &key).unwrap();
            assert_eq!(reader.seek(io::SeekFrom::End(0)).unwrap(), len as u64);
            let mut all = Vec::new();
            reader.seek(io::SeekFrom::Start(0)).unwrap();
            reader.read_to_end(&mut all).unwrap();
            assert_eq!(all.len(), len);
        }
    }

    #[test]
    fn a_seekable_plaintext_reads_any_position_and_refuses_an_altered_chunk() {
        let key = AgeSecretKey::generate();
        let plaintext: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let (ciphertext, _) = encrypt(&plaintext[..], Vec::new(), &key.recipient()).unwrap();
        let mut reader = decrypt_seekable(io::Cursor::new(&ciphertext[..]), &key).unwrap();
        assert_eq!(reader.seek(io::SeekFrom::End(0)).unwrap(), 300_000);
        let mut tail = [0u8; 10];
        reader.seek(io::SeekFrom::Start(250_000)).unwrap();
        reader.read_exact(&mut tail).unwrap();
        assert_eq!(tail, plaintext[250_000..250_010]);
        reader.seek(io::SeekFrom::Start(5)).unwrap();
        reader.read_exact(&mut tail).unwrap();
        assert_eq!(tail, plaintext[5..15]);

        // One byte changed in the third chunk: reading it fails, reading before it does not.
        let mut altered = ciphertext.clone();
        let at = altered.len() - 300_000 + 140_000;
        altered[at] ^= 1;
        let mut reader = decrypt_seekable(io::Cursor::new(&altered[..]), &key).unwrap();
        reader.read_exact(&mut tail).unwrap();
        // Seeking into the middle of a chunk reads (and authenticates) its start.
        let altered_read = reader
            .seek(io::SeekFrom::Start(140_000))
            .and_then(|_| reader.read_exact(&mut tail));
        assert_eq!(altered_read.unwrap_err().kind(), io::ErrorKind::InvalidData);
        assert!(matches!(
            decrypt_seekable(io::Cursor::new(&ciphertext[..]), &AgeSecretKey::generate()),
            Err(Error::Decrypt {
                failure: DecryptFailure::NotForThisKey,
                ..
            })
        ));
    }

    #[test]
    fn hashing_writer_counts_and_hashes() {
        let mut writer = HashingWriter::new(Vec::new());
        writer.write_all(b"abc").unwrap();
        let (inner, len, digest) = writer.finish();
        assert_eq!(inner, b"abc");
        assert_eq!(len, 3);
        assert_eq!(
            hex::encode(digest),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
