//! The start page, the stylesheet and logout.

use crate::audit;
use crate::auth::CurrentUser;
use crate::client::ClientAddr;
use crate::error::AppError;
use crate::routes::login::next_param;
use crate::state::AppState;
use crate::templates::render;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use axum_messages::{Level, Messages};
use serde_json::json;
use tower_sessions::Session;

/// `/`, `/static/app.css`, `POST /logout`.
pub fn router(base: &str) -> Router<AppState> {
    let router = Router::new()
        .route(&format!("{base}/"), get(index))
        .route(&format!("{base}/static/app.css"), get(stylesheet))
        // No icon: answer without a body rather than log a 404 on every page view.
        .route(&format!("{base}/favicon.ico"), get(|| async { StatusCode::NO_CONTENT }))
        .route(&format!("{base}/logout"), post(logout));
    match base {
        "" => router,
        // `/auth` alone is the start page's address too.
        base => router.route(
            base,
            get(|State(state): State<AppState>| async move { Redirect::to(&state.start_page()) }),
        ),
    }
}

/// The start page: "Login with X" links (carrying `?next=` when the page was opened with one),
/// or, logged in, who you are and a logout button. A logged-in browser that came with a `next`
/// is sent there straight away.
async fn index(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    user: Option<CurrentUser>,
    messages: Messages,
) -> Response {
    let next = next_param(query.as_deref());
    if let (Some(_), Some(next)) = (&user, &next) {
        return Redirect::to(next.as_str()).into_response();
    }
    let carry = next.map(|next| ("next", next.as_str().to_owned()));
    start_page(&state, user, messages, carry)
}

/// The start page, its login links carrying `carry` (`next=` or the gateway's `rd=`) on to
/// `authorize`.
pub(crate) fn start_page(
    state: &AppState,
    user: Option<CurrentUser>,
    messages: Messages,
    carry: Option<(&str, String)>,
) -> Response {
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
        .map(|p| {
            let mut login_url = format!("{}/authorize/{}", state.base_path, p.name);
            if let Some((key, value)) = &carry {
                let value: String = url::form_urlencoded::byte_serialize(value.as_bytes()).collect();
                login_url = format!("{login_url}?{key}={value}");
            }
            json!({
                "name": p.name.as_str(),
                "display_name": p.display_name,
                "unavailable": p.is_unavailable(),
                "login_url": login_url,
            })
        })
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
    Ok(Redirect::to(&state.after_logout()))
}
