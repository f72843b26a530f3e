//! Age envelopes: streaming encryption of recordings and transcripts to a fresh key, and
//! sealing of small values (shares, metadata) to one or more recipients.
//!
//! Everything written here is a standard age v1 file (binary for streams, so they can be
//! served with HTTP Range; ASCII-armoured where noted) and opens with the `age` tool.
//! Memory stays flat whatever the size: age works in 64 KiB STREAM chunks.

use std::io::{self, BufRead, Read, Write};

use age::secrecy::SecretString;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::{AgeSecretKey, Error, Recipient};

/// Largest small sealed value [`open`] accepts: 4 MiB. Sealed values are shares,
/// identities and metadata, all far smaller; the cap keeps a hostile server from making a
/// device buffer an arbitrary amount.
pub const MAX_SEALED_LEN: usize = 4 << 20;

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

/// Opens an age file with `key`, returning a reader of the plaintext that authenticates
/// each 64 KiB chunk before releasing it. A truncated or altered file ends in an error,
/// never in silently shortened plaintext.
pub fn decrypt_reader<R: BufRead>(
    input: R,
    key: &AgeSecretKey,
) -> Result<age::stream::StreamReader<R>, Error> {
    let failed = || Error::Decrypt { what: "age file" };
    let decryptor = age::Decryptor::new_buffered(input).map_err(|error| match error {
        age::DecryptError::Io(io) => Error::Io(io),
        _ => failed(),
    })?;
    let identity = key.to_age();
    decryptor
        .decrypt(std::iter::once(&identity as _))
        .map_err(|_| failed())
}

/// Decrypts all of `input` into `output`. Returns `output` and the plaintext length.
pub fn decrypt<R: BufRead, W: Write>(
    input: R,
    mut output: W,
    key: &AgeSecretKey,
) -> Result<(W, u64), Error> {
    let mut reader = decrypt_reader(input, key)?;
    let copied = copy_zeroizing(&mut reader, &mut output).map_err(|error| match error {
        Error::Io(io) if io.kind() == io::ErrorKind::InvalidData => {
            Error::Decrypt { what: "age file" }
        }
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
    let identity = key.to_age();
    open_with(sealed, &identity, what)
}

/// Opens a passphrase-protected age file (scrypt stanza), such as an identity file.
pub(crate) fn open_with_passphrase(
    sealed: &[u8],
    passphrase: &SecretString,
    what: &'static str,
) -> Result<Zeroizing<Vec<u8>>, Error> {
    let identity = age::scrypt::Identity::new(passphrase.clone());
    open_with(sealed, &identity, what).map_err(|error| match error {
        Error::Decrypt { .. } => Error::WrongPassphrase,
        other => other,
    })
}

fn open_with(
    sealed: &[u8],
    identity: &dyn age::Identity,
    what: &'static str,
) -> Result<Zeroizing<Vec<u8>>, Error> {
    let reader = age::armor::ArmoredReader::new(sealed);
    let decryptor = age::Decryptor::new(reader).map_err(|error| match error {
        age::DecryptError::ExcessiveWork { .. } => Error::InvalidField {
            field: "scrypt work factor",
            reason: "too high for this device",
        },
        _ => Error::Malformed { what },
    })?;
    let stream = decryptor
        .decrypt(std::iter::once(identity))
        .map_err(|_| Error::Decrypt { what })?;
    let mut plaintext = Zeroizing::new(Vec::new());
    stream
        .take(MAX_SEALED_LEN as u64 + 1)
        .read_to_end(&mut plaintext)
        .map_err(|_| Error::Decrypt { what })?;
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
            Err(Error::Decrypt { what: "test" })
        ));
        assert!(matches!(
            open(b"garbage", &first, "test"),
            Err(Error::Malformed { what: "test" })
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
