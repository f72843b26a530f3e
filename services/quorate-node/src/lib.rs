//! The transcription node as a library: the model importer, audio decoding, transcription
//! and the checks and sealing of one job; `main.rs` is the `quorate-node` command.

pub mod audio;
pub mod hardening;
pub mod job;
pub mod model;
pub mod secret;
pub mod speakers;
pub mod transcribe;
pub mod vad;
