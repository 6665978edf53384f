//! The start page, the stylesheet and logout.

use crate::audit;
use crate::auth::CurrentUser;
use crate::client::ClientAddr;
use crate::error::AppError;
use crate::state::AppState;
use crate::templates::render;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use axum_messages::{Level, Messages};
use serde_json::json;
use tower_sessions::Session;

/// `/`, `/static/app.css`, `POST /logout`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(index))
        .route("/static/app.css", get(stylesheet))
        // No icon: answer without a body rather than log a 404 on every page view.
        .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }))
        .route("/logout", post(logout))
}

async fn index(State(state): State<AppState>, user: Option<CurrentUser>, messages: Messages) -> Response {
    let messages: Vec<_> = messages
        .into_iter()
        .map(|m| {
            let level = match m.level {
                Level::Error => "error",
                Level::Warning => "warning",
                Level::Success => "success",
                _ => "info",
            };
            json!({ "level": level, "text": m.message })
        })
        .collect();
    let providers: Vec<_> = state
        .providers
        .iter()
        .map(|p| json!({ "name": p.name.as_str(), "display_name": p.display_name, "unavailable": p.is_unavailable() }))
        .collect();
    render(
        StatusCode::OK,
        "index.html",
        json!({ "user": user, "providers": providers, "messages": messages, "dev_only": state.dev_only }),
    )
}

async fn stylesheet() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")],
        include_str!("../../static/app.css"),
    )
}

/// Ends the session. Only POST (a link or an image cannot log anyone out), and only from our own
/// pages: SameSite=Lax already keeps the cookie off cross-site posts, and the Origin check refuses
/// them outright in browsers that send it.
async fn logout(
    State(state): State<AppState>,
    client: ClientAddr,
    headers: HeaderMap,
    session: Session,
) -> Result<Redirect, AppError> {
    if let Some(origin) = headers.get(header::ORIGIN) {
        if origin.as_bytes() != state.public_origin.as_bytes() {
            let err = AppError::CrossSite;
            audit::refusal(client, None, err.reason(), "logout form sent from another site");
            return Err(err);
        }
    }
    if let Some(user) = crate::auth::current_user(&session).await {
        audit::logout(client, user.id);
    }
    session.flush().await?;
    Ok(Redirect::to("/"))
}
