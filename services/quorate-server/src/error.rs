//! The one place API errors become HTTP responses: a stable machine-readable `code`, a
//! message for people, and the right status. Causes of server failures are logged, not sent.

use axum::{
    Json,
    extract::{FromRequest, FromRequestParts, Query, Request, rejection::JsonRejection},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use quorate_api::ErrorBody;
use serde::de::DeserializeOwned;

/// An error as the API reports it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// The client's request is wrong: 4xx with a code and a message that says what to do.
    #[error("{code}: {message}")]
    Client {
        /// The HTTP status (4xx).
        status: StatusCode,
        /// Stable, machine-readable.
        code: &'static str,
        /// For people.
        message: String,
    },
    /// The server cannot serve yet (its database does not answer).
    #[error("not ready: {0}")]
    NotReady(String),
    /// Anything unexpected; the cause goes to the log only.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    /// 400 with a code and message.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::Client {
            status: StatusCode::BAD_REQUEST,
            code,
            message: message.into(),
        }
    }

    /// 401: no valid session, or a failed sign-in.
    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        Self::Client {
            status: StatusCode::UNAUTHORIZED,
            code,
            message: message.into(),
        }
    }

    /// 404, also for another vault's resources.
    pub fn not_found() -> Self {
        Self::Client {
            status: StatusCode::NOT_FOUND,
            code: "not_found",
            message: "no such resource".into(),
        }
    }

    /// 409: the request conflicts with the current state.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::Client {
            status: StatusCode::CONFLICT,
            code,
            message: message.into(),
        }
    }

    /// 400 for a statement or key that fails the protocol's checks; the crypto error's
    /// message says which check (it never carries secrets).
    pub fn invalid_statement(error: quorate_crypto::Error) -> Self {
        Self::bad_request("invalid_statement", error.to_string())
    }
}

/// An operation's error: which of its variants are the client's doing (a status and a
/// stable code; the `Display` text is the message) and which are the server's failures
/// (`None`: logged, answered 500). Each operation's error enum implements it once, and
/// becomes an [`ApiError`] through the one conversion below.
pub(crate) trait Refusal: std::error::Error + Send + Sync + 'static {
    /// The status and code of a refusal, `None` for a server failure.
    fn refusal(&self) -> Option<(StatusCode, &'static str)>;
}

impl<E: Refusal> From<E> for ApiError {
    fn from(error: E) -> Self {
        match error.refusal() {
            Some((status, code)) => Self::Client {
                status,
                code,
                message: error.to_string(),
            },
            None => Self::Internal(Box::new(error)),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        Self::Internal(Box::new(error))
    }
}

impl From<crate::blobs::BlobError> for ApiError {
    fn from(error: crate::blobs::BlobError) -> Self {
        Self::Internal(Box::new(error))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message) = match self {
            Self::Client {
                status,
                code,
                message,
            } => (status, code, message),
            Self::NotReady(why) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "not_ready",
                format!("the server is not ready: {why}"),
            ),
            Self::Internal(cause) => {
                tracing::error!(error = %cause, "request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "the server failed; the operator can find the cause in its log".to_owned(),
                )
            }
        };
        (
            status,
            Json(ErrorBody {
                code: code.to_owned(),
                message,
            }),
        )
            .into_response()
    }
}

/// `Json` whose rejections are API errors (malformed, wrong types, unknown fields, wrong
/// content type, too large) instead of axum's plain-text ones.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(match rejection {
                JsonRejection::JsonDataError(error) => ApiError::Client {
                    status: StatusCode::UNPROCESSABLE_ENTITY,
                    code: "invalid_fields",
                    message: error.body_text(),
                },
                JsonRejection::MissingJsonContentType(_) => ApiError::Client {
                    status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    code: "not_json",
                    message: "send the body as application/json".into(),
                },
                other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::Client {
                    status: StatusCode::PAYLOAD_TOO_LARGE,
                    code: "too_large",
                    message: "the request body is larger than this endpoint accepts".into(),
                },
                other => ApiError::bad_request("invalid_json", other.body_text()),
            }),
        }
    }
}

/// `Query` whose rejection is an API error (400 `invalid_query`) instead of plain text.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(value)| Self(value))
            .map_err(|rejection| ApiError::bad_request("invalid_query", rejection.body_text()))
    }
}
