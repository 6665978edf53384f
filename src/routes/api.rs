//! The JSON API for single-page apps: `GET /api/me`.

use crate::auth::CurrentUser;
use crate::domain::UserId;
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use tower_sessions::Session;

/// `/api/me`
pub fn router() -> Router<AppState> {
    Router::new().route("/api/me", get(me))
}

/// The logged-in user and the identities that log into it; 401 JSON when logged out.
async fn me(
    State(state): State<AppState>,
    session: Session,
    user: Option<CurrentUser>,
) -> Result<Json<Value>, ApiError> {
    let user = user.ok_or(ApiError::Unauthenticated)?;
    let id = UserId(user.id);
    let Some(row) = state.store.user(id).await? else {
        // The user was deleted while logged in: the session is worthless.
        session.flush().await?;
        return Err(ApiError::Unauthenticated);
    };
    let identities = state.store.identities(id).await?;
    Ok(Json(json!({
        "id": row.id,
        "email": row.email,
        "username": row.username,
        "identities": identities,
    })))
}
