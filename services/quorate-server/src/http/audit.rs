//! The audit log route.

use axum::extract::State;
use quorate_api::AuditEntryView;
use serde::Deserialize;

use crate::http::paths::{ApiPath, VaultPath};
use crate::{
    App,
    error::{ApiError, ApiQuery},
    http::auth::Authenticated,
    store,
};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct Page {
    /// Entries after this sequence number (from the start without it).
    after: Option<i64>,
    /// At most this many (default 100, at most 1000).
    limit: Option<i64>,
}

/// Pages through the vault's audit log in chain order.
///
/// Entries after `after` (from the start without it), at most `limit` (default 100, at most
/// 1000).
#[utoipa::path(
    get, path = "/vaults/{vault}/audit", tag = "audit", security(("session" = [])), operation_id = "audit_log",
    params(VaultPath, Page),
    responses(
        (status = 200, description = "Entries in chain order", body = Vec<quorate_api::AuditEntryView>),
        (status = 400, description = "Limit out of range", body = quorate_api::ErrorBody),
    )
)]
pub(crate) async fn list(
    State(app): State<App>,
    who: Authenticated,
    ApiPath(VaultPath { vault }): ApiPath<VaultPath>,
    ApiQuery(page): ApiQuery<Page>,
) -> Result<axum::Json<Vec<AuditEntryView>>, ApiError> {
    who.member_of(vault)?;
    let limit = page.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_limit",
            "limit must be between 1 and 1000",
        ));
    }
    let after = page.after.unwrap_or(-1);
    let vault = vault.to_string();
    // Entries of changes that committed while the chain was taken may still wait for the
    // background task: the reader links them first, so it sees every change answered.
    store::audit::link_waiting(&app.db, &vault).await?;
    Ok(axum::Json(
        store::audit::page(&app.db, &vault, after, limit).await?,
    ))
}
