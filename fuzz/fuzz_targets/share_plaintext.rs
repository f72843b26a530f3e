//! The plaintext inside a sealed share, as a member's device parses it.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok((binding, share)) = quorate_crypto::threshold::decode_share(data) {
        // What parses must encode back to the same bytes (one canonical encoding).
        assert_eq!(&*quorate_crypto::threshold::encode_share(&binding, &share), data);
    }
});
