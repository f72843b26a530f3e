//! Statement bodies without a signature in front, so the fuzzer reaches every body parser
//! (behind a real signature it could never get there). The first byte picks the kind.
#![no_main]
use quorate_crypto::statement::{
    NodeApproval, RecordingManifest, RosterEntry, StatementBody, TranscriptManifest, UnlockRequest, Vote,
};

fn round_trip<T: StatementBody>(body: &[u8]) {
    if let Ok(statement) = T::decode(body) {
        assert_eq!(statement.encode(), body);
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((kind, body)) = data.split_first() else { return };
    match kind % 6 {
        0 => round_trip::<RosterEntry>(body),
        1 => round_trip::<NodeApproval>(body),
        2 => round_trip::<RecordingManifest>(body),
        3 => round_trip::<UnlockRequest>(body),
        4 => round_trip::<Vote>(body),
        _ => round_trip::<TranscriptManifest>(body),
    }
});
