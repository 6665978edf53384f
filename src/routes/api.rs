//! The JSON API for single-page apps: `GET /api/me`.

use crate::auth::{CurrentUser, IDENTITIES_KEY};
use crate::domain::UserId;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::Identity;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use tower_sessions::Session;

/// `/api/me`
pub fn router() -> Router<AppState> {
    Router::new().route("/api/me", get(me))
}

/// The logged-in user and the identities that log into it, from the session: the user is written
/// there at login, the identities on the first call. Identities only change through a login, so a
/// session shows the list as of its own login, not one linked later in another browser. 401 JSON
/// when logged out.
async fn me(
    State(state): State<AppState>,
    session: Session,
    user: Option<CurrentUser>,
) -> Result<Json<Value>, ApiError> {
    let user = user.ok_or(ApiError::Unauthenticated)?;
    let identities = match session.get::<Vec<Identity>>(IDENTITIES_KEY).await? {
        Some(identities) => identities,
        // First call in this session: read them once and keep them.
        None => {
            let identities = state.store.identities(UserId(user.id)).await?;
            session.insert(IDENTITIES_KEY, &identities).await?;
            identities
        }
    };
    Ok(Json(json!({
        "id": user.id,
        "email": user.email,
        "username": user.username,
        "identities": identities,
    })))
}
