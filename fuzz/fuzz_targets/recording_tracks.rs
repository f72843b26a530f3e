//! The header of a recording of one track per participant, as a node parses it from the
//! decrypted plaintext: whatever the uploader wrote, it parses or is refused, and what
//! parses encodes back to the same bytes.
#![no_main]
use quorate_crypto::tracks::{PREFIX_LEN, Tracks};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(tracks) = Tracks::decode(data) {
        assert_eq!(&tracks.encode().unwrap()[PREFIX_LEN..], data);
    }
});
