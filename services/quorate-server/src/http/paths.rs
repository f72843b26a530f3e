//! The path parameters of the API, as extractors and as OpenAPI parameters at once.

use serde::Deserialize;
use utoipa::IntoParams;

/// `/vaults/{vault}/…`
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct VaultPath {
    /// The vault ID (UUID).
    pub vault: String,
}

/// `/vaults/{vault}/nodes/{node}/…`
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct NodePath {
    /// The vault ID (UUID).
    pub vault: String,
    /// The node ID (UUID).
    pub node: String,
}

/// `/vaults/{vault}/recordings/{recording}/…`
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct RecordingPath {
    /// The vault ID (UUID).
    pub vault: String,
    /// The recording ID (UUID).
    pub recording: String,
}

/// `/uploads/{recording}`
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct UploadPath {
    /// The recording ID (UUID).
    pub recording: String,
}

/// `/vaults/{vault}/requests/{request}/…`
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct RequestPath {
    /// The vault ID (UUID).
    pub vault: String,
    /// The request ID (UUID).
    pub request: String,
}

/// `/jobs/{request}/…`
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct JobPath {
    /// The request ID (UUID) the job carries out.
    pub request: String,
}

/// `/vaults/{vault}/transcripts/{transcript}/…`
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct TranscriptPath {
    /// The vault ID (UUID).
    pub vault: String,
    /// The transcript ID (UUID).
    pub transcript: String,
}
