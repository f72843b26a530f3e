//! The one place API errors become HTTP responses: a stable machine-readable `code`, a
//! message for people, and the right status. Causes are logged, not sent.

use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::Serialize;

/// An error as the API reports it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// No such route or resource (also used for another vault's resources).
    #[error("not found")]
    NotFound,
    /// The server cannot serve yet (its database does not answer).
    #[error("not ready: {0}")]
    NotReady(String),
    /// Anything unexpected; the cause goes to the log only.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// The JSON body of every error.
#[derive(Debug, Serialize)]
pub struct ErrorBody {
    /// Stable, machine-readable.
    pub code: &'static str,
    /// For people.
    pub message: String,
}

impl ApiError {
    fn parts(&self) -> (StatusCode, &'static str, String) {
        match self {
            Self::NotFound => (
                StatusCode::NOT_FOUND,
                "not_found",
                "no such resource".into(),
            ),
            Self::NotReady(why) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "not_ready",
                format!("the server is not ready: {why}"),
            ),
            Self::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the server failed; the operator can find the cause in its log".into(),
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message) = self.parts();
        if let Self::Internal(cause) = &self {
            tracing::error!(error = %cause, "request failed");
        }
        (status, Json(ErrorBody { code, message })).into_response()
    }
}
