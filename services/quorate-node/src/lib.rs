//! The transcription node as a library: the model importer (and, with issue 6, the job
//! runner); `main.rs` is the `quorate-node` command.

pub mod audio;
pub mod hardening;
pub mod job;
pub mod model;
pub mod transcribe;
