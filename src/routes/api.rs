//! The JSON API for single-page apps: `GET /api/me`.

use crate::auth::CurrentUser;
use crate::domain::UserId;
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

/// `{base}/api/me`
pub fn router(base: &str) -> Router<AppState> {
    Router::new().route(&format!("{base}/api/me"), get(me))
}

/// The logged-in user and the identities that log into it, as they are now: from the store's
/// account cache, which every change invalidates, so an identity linked from another browser
/// shows up without a new login. 401 JSON when logged out (or when the user no longer exists).
async fn me(State(state): State<AppState>, user: Option<CurrentUser>) -> Result<Json<Value>, ApiError> {
    let user = user.ok_or(ApiError::Unauthenticated)?;
    let account = state.store.account(UserId(user.id)).await?.ok_or(ApiError::Unauthenticated)?;
    Ok(Json(json!({
        "id": account.user.id,
        "email": account.user.email,
        "email_verified": account.user.email_verified,
        "username": account.user.username,
        "identities": account.identities,
    })))
}
