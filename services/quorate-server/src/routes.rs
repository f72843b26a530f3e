//! The HTTP routes.

use axum::{Json, Router, extract::State, routing::get};
use serde_json::{Value, json};

use crate::{App, error::ApiError};

pub(crate) fn router(app: App) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .fallback(|| async { ApiError::NotFound })
        .with_state(app)
}

/// Alive: the process answers.
async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// Ready: the database answers too.
async fn readyz(State(app): State<App>) -> Result<Json<Value>, ApiError> {
    app.db
        .ping()
        .await
        .map_err(|error| ApiError::NotReady(error.to_string()))?;
    Ok(Json(json!({ "status": "ready" })))
}
