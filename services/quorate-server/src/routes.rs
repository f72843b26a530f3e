//! The HTTP routes.

use axum::{
    Json, Router,
    extract::{DefaultBodyLimit, MatchedPath, State},
    http::{HeaderName, Request},
    routing::{get, post},
};
use serde_json::{Value, json};
use tower_http::{
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    trace::{DefaultOnResponse, TraceLayer},
};

use crate::{App, audit, auth, enrol, error::ApiError, members, metrics};

/// Largest JSON body accepted by the API (uploads of recordings are streamed elsewhere).
const JSON_BODY_LIMIT: usize = 1 << 20;

pub(crate) fn router(app: App) -> Router {
    let api = Router::new()
        .route("/enrol/first-admin", post(enrol::first_admin))
        .route("/auth/challenge", post(auth::challenge))
        .route(
            "/auth/session",
            post(auth::create_session).delete(auth::delete_session),
        )
        .route("/me", get(auth::me))
        .route("/enrol/member", post(members::enrol_member))
        .route("/vaults", post(members::create_vault))
        .route(
            "/vaults/{vault}/roster",
            get(enrol::roster).post(members::append_roster),
        )
        .route("/vaults/{vault}/invites", post(members::create_invite))
        .route("/vaults/{vault}/members", get(members::list_members))
        .route("/vaults/{vault}/audit", get(audit::list))
        .layer(DefaultBodyLimit::max(JSON_BODY_LIMIT));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .nest("/api/v1", api)
        .fallback(|| async { ApiError::not_found() })
        // Layers run bottom-up: an ID is set (or a client's kept), the request is traced in one
        // span naming its route and ID (never its arguments), and the ID is echoed back.
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            metrics::count,
        ))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID.clone()))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
        .layer(SetRequestIdLayer::new(REQUEST_ID.clone(), MakeRequestUuid))
        .with_state(app)
}

static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

fn request_span<B>(request: &Request<B>) -> tracing::Span {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str);
    let id = request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    tracing::info_span!("request", method = %request.method(), route, request_id = id)
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
