//! `cargo bench -p quorate-crypto --bench envelope_memory`: peak memory while streaming
//! 1 GiB through the envelope (encrypt, then decrypt what was encrypted, chunk by chunk).
//! Flat memory means the peak does not grow with the size.

use std::io::{self, Read, Write};

use quorate_crypto::{AgeSecretKey, envelope};

/// Generates `remaining` bytes of a pattern without holding them.
struct Pattern {
    remaining: u64,
}

impl Read for Pattern {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let len = buffer.len().min(self.remaining as usize);
        for (i, byte) in buffer[..len].iter_mut().enumerate() {
            *byte = (i as u8).wrapping_mul(31);
        }
        self.remaining -= len as u64;
        Ok(len)
    }
}

/// Pipes encrypted bytes straight into a decryptor running on another thread, so neither
/// side ever holds more than a buffer.
struct Pipe(std::sync::mpsc::SyncSender<Vec<u8>>);

impl Write for Pipe {
    fn write(&mut self, buffer: &[u8]) -> io::Result<usize> {
        self.0.send(buffer.to_vec()).map_err(io::Error::other)?;
        Ok(buffer.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

struct Receiver {
    channel: std::sync::mpsc::Receiver<Vec<u8>>,
    current: io::Cursor<Vec<u8>>,
}

impl Read for Receiver {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        loop {
            let read = self.current.read(buffer)?;
            if read > 0 || buffer.is_empty() {
                return Ok(read);
            }
            match self.channel.recv() {
                Ok(next) => self.current = io::Cursor::new(next),
                Err(_) => return Ok(0),
            }
        }
    }
}

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches(" kB").parse().ok())
        .unwrap_or(0)
}

fn main() {
    let size: u64 = std::env::var("QUORATE_BENCH_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1 << 30);
    let key = AgeSecretKey::generate();
    let recipient = key.recipient();
    let before = peak_rss_kib();
    let started = std::time::Instant::now();

    let (sender, channel) = std::sync::mpsc::sync_channel(4);
    let decrypt_key = key.clone();
    let decryptor = std::thread::spawn(move || {
        let input = io::BufReader::new(Receiver {
            channel,
            current: io::Cursor::new(Vec::new()),
        });
        envelope::decrypt(input, io::sink(), &decrypt_key).map(|(_, len)| len)
    });
    let (_, encrypted) =
        envelope::encrypt(Pattern { remaining: size }, Pipe(sender), &recipient).unwrap();
    let decrypted = decryptor.join().unwrap().unwrap();
    assert_eq!(encrypted, size);
    assert_eq!(decrypted, size);

    let after = peak_rss_kib();
    println!(
        "streamed {} MiB through encrypt and decrypt in {:.2} s; peak RSS {} KiB before, {} KiB after (+{} KiB)",
        size >> 20,
        started.elapsed().as_secs_f64(),
        before,
        after,
        after.saturating_sub(before)
    );
}
