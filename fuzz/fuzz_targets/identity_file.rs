//! Identity files, protected or not, as the CLI and the node read them.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // Without a passphrase a protected file stops at the header, so no scrypt work is done.
    if let Ok(identity) = quorate_crypto::IdentityFile::read(data, None) {
        let text = quorate_crypto::IdentityFile::to_plaintext(&identity);
        let again = quorate_crypto::IdentityFile::read(text.as_bytes(), None).unwrap();
        assert_eq!(again.public(), identity.public());
    }
});
