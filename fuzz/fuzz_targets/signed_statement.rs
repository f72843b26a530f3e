//! Signed statements of every kind, as any party parses and verifies them.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(signed) = quorate_crypto::statement::SignedStatement::from_bytes(data) {
        assert_eq!(signed.to_bytes(), data);
    }
    let _ = quorate_crypto::verify_any(data);
});
