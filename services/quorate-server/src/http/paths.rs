//! The path parameters of the API, as extractors and as OpenAPI parameters at once. Each ID
//! is parsed into its typed ID when the request is extracted, so a handler never sees a
//! malformed one and never compares IDs as text.

use std::{fmt::Display, str::FromStr};

use axum::{
    extract::{FromRequestParts, Path},
    http::{StatusCode, request::Parts},
};
use quorate_crypto::{NodeId, RecordingId, RequestId, TranscriptId, VaultId};
use serde::{Deserialize, Deserializer, de::DeserializeOwned};
use utoipa::IntoParams;

use crate::error::ApiError;

/// `Path` whose rejection is an API error: a path whose ID does not parse names nothing, so
/// it is 404 `not_found`, like an ID that parses but is unknown.
#[derive(Debug)]
pub(crate) struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(value)| Self(value))
            .map_err(|rejection| ApiError::Client {
                status: StatusCode::NOT_FOUND,
                code: "not_found",
                message: format!("no such resource: {}", rejection.body_text()),
            })
    }
}

/// Parses a path segment with the ID's own parser (UUID text, any case).
fn parse_id<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: Display,
{
    let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
    text.parse().map_err(serde::de::Error::custom)
}

/// `/vaults/{vault}/…`
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct VaultPath {
    /// The vault ID (UUID).
    #[serde(deserialize_with = "parse_id")]
    #[param(value_type = String)]
    pub vault: VaultId,
}

/// `/vaults/{vault}/nodes/{node}/…`
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct NodePath {
    /// The vault ID (UUID).
    #[serde(deserialize_with = "parse_id")]
    #[param(value_type = String)]
    pub vault: VaultId,
    /// The node ID (UUID).
    #[serde(deserialize_with = "parse_id")]
    #[param(value_type = String)]
    pub node: NodeId,
}

/// `/vaults/{vault}/recordings/{recording}/…`
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct RecordingPath {
    /// The vault ID (UUID).
    #[serde(deserialize_with = "parse_id")]
    #[param(value_type = String)]
    pub vault: VaultId,
    /// The recording ID (UUID).
    #[serde(deserialize_with = "parse_id")]
    #[param(value_type = String)]
    pub recording: RecordingId,
}

/// `/uploads/{recording}`
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct UploadPath {
    /// The recording ID (UUID).
    #[serde(deserialize_with = "parse_id")]
    #[param(value_type = String)]
    pub recording: RecordingId,
}

/// `/vaults/{vault}/requests/{request}/…`
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct RequestPath {
    /// The vault ID (UUID).
    #[serde(deserialize_with = "parse_id")]
    #[param(value_type = String)]
    pub vault: VaultId,
    /// The request ID (UUID).
    #[serde(deserialize_with = "parse_id")]
    #[param(value_type = String)]
    pub request: RequestId,
}

/// `/jobs/{request}/…`
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct JobPath {
    /// The request ID (UUID) the job carries out.
    #[serde(deserialize_with = "parse_id")]
    #[param(value_type = String)]
    pub request: RequestId,
}

/// `/vaults/{vault}/transcripts/{transcript}/…`
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct TranscriptPath {
    /// The vault ID (UUID).
    #[serde(deserialize_with = "parse_id")]
    #[param(value_type = String)]
    pub vault: VaultId,
    /// The transcript ID (UUID).
    #[serde(deserialize_with = "parse_id")]
    #[param(value_type = String)]
    pub transcript: TranscriptId,
}

/// `/vaults/{vault}/reshares/{reshare}/…`
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct ResharePath {
    /// The vault ID (UUID).
    #[serde(deserialize_with = "parse_id")]
    #[param(value_type = String)]
    pub vault: VaultId,
    /// The re-share ID (32 hex digits).
    pub reshare: String,
}
