//! The HTTP layer: each route extracts its inputs, checks who may call it, calls one
//! operation (or, for a plain read, one store query) and answers its view. Every route is
//! listed once below with its OpenAPI description.

mod audit;
pub mod auth;
mod enrol;
mod jobs;
mod members;
mod nodes;
mod openapi;
pub(crate) mod paths;
mod recordings;
pub mod release;
mod requests;
mod reshares;
mod retention;
pub mod search;
mod uploads;

use axum::{
    Json, Router,
    extract::{DefaultBodyLimit, MatchedPath, State},
    handler::HandlerWithoutStateExt,
    http::{HeaderName, HeaderValue, Request, header},
    routing::get,
};
use serde_json::{Value, json};
use tower_http::{
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    services::ServeDir,
    set_header::SetResponseHeaderLayer,
    trace::{DefaultOnResponse, TraceLayer},
};

use std::{path::Path, sync::Arc};

use utoipa::OpenApi;
use utoipa_axum::{router::OpenApiRouter, routes};

use quorate_crypto::statement::SignedStatement;

use crate::{App, error::ApiError, metrics};

/// Parses a signed statement from a request body's (already base64-decoded) field, or 400
/// `invalid_statement`.
pub(crate) fn decode_statement(bytes: &[u8]) -> Result<SignedStatement, ApiError> {
    SignedStatement::from_bytes(bytes).map_err(ApiError::invalid_statement)
}

/// Largest JSON body accepted by the API (uploads of recordings are streamed elsewhere).
const JSON_BODY_LIMIT: usize = 1 << 20;

/// The API: each handler carries its `#[utoipa::path]`, and `routes!` registers the route and
/// its description together.
fn api() -> OpenApiRouter<App> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi()).nest(
        "/api/v1",
        OpenApiRouter::new()
            .routes(routes!(enrol::first_admin))
            .routes(routes!(enrol::lookup))
            .routes(routes!(members::enrol_member))
            .routes(routes!(auth::challenge))
            .routes(routes!(auth::create_session, auth::delete_session))
            .routes(routes!(auth::me))
            .routes(routes!(members::create_vault))
            .routes(routes!(enrol::roster, members::append_roster))
            .routes(routes!(members::create_invite))
            .routes(routes!(members::list_members))
            .routes(routes!(audit::list))
            .routes(routes!(nodes::get_policy, nodes::set_policy))
            .routes(routes!(nodes::enrol_node))
            .routes(routes!(nodes::list_nodes))
            .routes(routes!(nodes::get_node))
            .routes(routes!(nodes::approve_node))
            .routes(routes!(
                recordings::create_recording,
                recordings::list_recordings
            ))
            .routes(routes!(
                recordings::get_recording,
                recordings::delete_recording
            ))
            .routes(routes!(recordings::get_share))
            .routes(routes!(recordings::download))
            .routes(routes!(
                uploads::head_upload,
                uploads::patch_upload,
                uploads::abandon_upload
            ))
            .routes(routes!(uploads::open_live_upload))
            .routes(routes!(requests::create_request, requests::list_requests))
            .routes(routes!(requests::get_request))
            .routes(routes!(requests::vote))
            .routes(routes!(jobs::claim))
            .routes(routes!(jobs::progress))
            .routes(routes!(jobs::fail))
            .routes(routes!(jobs::give_back))
            .routes(routes!(jobs::list_jobs))
            .routes(routes!(jobs::list_transcripts))
            .routes(routes!(jobs::transcript_share))
            .routes(routes!(jobs::download_transcript))
            .routes(routes!(release::get_search_key, release::share_search_key))
            .routes(routes!(release::rotate_search_key))
            .routes(routes!(release::list_released))
            .routes(routes!(release::get_release_grant))
            .routes(routes!(release::add_release_grants))
            .routes(routes!(release::download_released))
            .routes(routes!(search::search))
            .routes(routes!(retention::list_rules, retention::set_rule))
            .routes(routes!(retention::list_hold_votes, retention::vote_hold))
            .routes(routes!(reshares::work))
            .routes(routes!(reshares::deal))
            .routes(routes!(reshares::accept))
            .merge(
                // A sealed transcript travels inside the completion's JSON; a released copy
                // with its postings too, and a re-index's postings.
                OpenApiRouter::new()
                    .routes(routes!(jobs::complete))
                    .routes(routes!(release::complete_release))
                    .routes(routes!(release::reindex_released))
                    .layer(DefaultBodyLimit::max(release::MAX_RELEASE_BODY)),
            ),
    )
}

/// The API's routes and their complete OpenAPI document.
fn api_parts() -> (Router<App>, utoipa::openapi::OpenApi) {
    let (router, mut document) = api().split_for_parts();
    openapi::add_shared_responses(&mut document);
    (router, document)
}

/// The OpenAPI document of the API, as served at `/api/v1/openapi.json`.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    api_parts().1
}

pub(crate) fn router(app: App) -> Router {
    let (api, document) = api_parts();
    let document = Arc::new(document);
    let api = api
        .route(
            "/api/v1/openapi.json",
            get(move || {
                let document = Arc::clone(&document);
                async move { Json(document) }
            }),
        )
        .layer(DefaultBodyLimit::max(JSON_BODY_LIMIT));
    let router = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .merge(api)
        .fallback_service(web_ui(app.config.web_dir.as_deref()));
    with_security_headers(router)
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

/// The web UI's files for every path the API does not claim (a file's `.gz` copy, which the
/// build writes, to browsers that accept gzip); an unknown path (under `/api` or not)
/// answers the API's JSON 404. Without a web UI, `/` says how to get one.
fn web_ui(dir: Option<&Path>) -> Router {
    let not_found = || async { ApiError::not_found() };
    match dir {
        Some(dir) => Router::new()
            .fallback_service(
                ServeDir::new(dir)
                    .precompressed_gzip()
                    .not_found_service(not_found.into_service()),
            )
            .layer(axum::middleware::from_fn(cache_policy)),
        None => Router::new()
            .route(
                "/",
                get(|| async {
                    "This Quorate server serves the API only (under /api/v1). Build and serve the web UI with scripts/run.sh, or pass --web-dir.\n"
                }),
            )
            .fallback(not_found),
    }
}

/// The build names its scripts and styles by their content (`/assets/index-HASH.js`), so they
/// are kept for good; the page that names them is checked again each time, so a new build is
/// picked up at the next visit.
async fn cache_policy(
    request: Request<axum::body::Body>,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let hashed = request.uri().path().starts_with("/assets/");
    let mut response = next.run(request).await;
    if response.status().is_success() {
        response.headers_mut().insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static(if hashed {
                "public, max-age=31536000, immutable"
            } else {
                "no-cache"
            }),
        );
    }
    response
}

/// Headers for every answer: the web UI loads only its own scripts and styles and talks only
/// to this server; nothing may frame it, sniff types or carry a referrer away.
fn with_security_headers<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    const HEADERS: [(HeaderName, &str); 4] = [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ];
    HEADERS.into_iter().fold(router, |router, (name, value)| {
        router.layer(SetResponseHeaderLayer::if_not_present(
            name,
            HeaderValue::from_static(value),
        ))
    })
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
