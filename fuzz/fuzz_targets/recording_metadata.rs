//! The metadata sealed inside a recording manifest, as a member's device parses it.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(metadata) = quorate_crypto::statement::RecordingMetadata::decode(data) {
        assert_eq!(&*metadata.encode().unwrap(), data);
    }
});
