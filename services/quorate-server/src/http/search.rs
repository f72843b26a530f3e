//! The search route: ranks the caller's vault's released transcripts for blind tokens (see
//! [`crate::ops::search`]).

use axum::extract::State;
use quorate_api::{SearchQuery, SearchResults};

use crate::http::paths::{ApiPath, VaultPath};
use crate::{
    App,
    error::{ApiError, ApiJson},
    http::auth::Authenticated,
    ops,
};

pub use crate::ops::search::{MAX_QUERY_TOKENS, bm25};

/// Ranks the caller's vault's released transcripts for the query's blind tokens (BM25; a
/// transcript matches when it holds any of them), a page at a time, with the segments
/// that hold them. Repeated tokens count once.
#[utoipa::path(
    post, path = "/vaults/{vault}/search", tag = "search", security(("session" = [])), operation_id = "search",
    params(VaultPath),
    request_body = quorate_api::SearchQuery,
    responses(
        (status = 200, description = "Ranked hits, best first", body = quorate_api::SearchResults),
        (status = 400, description = "Malformed tokens or paging", body = quorate_api::ErrorBody),
    )
)]
pub(crate) async fn search(
    State(app): State<App>,
    who: Authenticated,
    ApiPath(VaultPath { vault }): ApiPath<VaultPath>,
    ApiJson(body): ApiJson<SearchQuery>,
) -> Result<axum::Json<SearchResults>, ApiError> {
    who.member_of(vault)?;
    Ok(axum::Json(
        ops::search::search(&app, &vault.to_string(), &body).await?,
    ))
}
