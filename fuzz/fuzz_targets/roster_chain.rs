//! A roster as a server might send it: a list of signed statements checked as a chain.
//! Entries are separated by a 4-byte big-endian length.
#![no_main]
use quorate_crypto::{VaultId, roster::Roster, statement::SignedStatement};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut entries = Vec::new();
    let mut rest = data;
    while rest.len() >= 4 {
        let len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
        rest = &rest[4..];
        let Some(entry) = rest.get(..len) else { break };
        if let Ok(signed) = SignedStatement::from_bytes(entry) {
            entries.push(signed);
        }
        rest = &rest[len..];
    }
    let _ = Roster::verify(VaultId::from_bytes([0; 16]), &entries, None);
});
