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
            let login_url = login_url(state, p.name.as_str(), carry.as_ref().map(|(k, v)| (*k, v.as_str())));
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

/// The URL that starts a login with `provider`, carrying `key=value` (`next`, or the gateway's
/// `rd`) on to the login's end.
pub(crate) fn login_url(state: &AppState, provider: &str, carry: Option<(&str, &str)>) -> String {
    let url = format!("{}/authorize/{provider}", state.base_path);
    match carry {
        Some((key, value)) => {
            let value: String = url::form_urlencoded::byte_serialize(value.as_bytes()).collect();
            format!("{url}?{key}={value}")
        }
        None => url,
    }
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
    refuse_other_sites(&state, client, &headers, |_| false, "logout form sent from another site")?;
    crate::auth::log_out(&session, client).await?;
    Ok(Redirect::to(&state.after_logout()))
}

/// Refuses a form posted from another site: one whose `Origin` is neither ours nor one that
/// `also_allowed` accepts (the gateway's hosts), with an audit line saying `what`. Browsers that
/// send no `Origin` are covered by the cookie's SameSite=Lax.
pub(crate) fn refuse_other_sites(
    state: &AppState,
    client: ClientAddr,
    headers: &HeaderMap,
    also_allowed: impl Fn(&str) -> bool,
    what: &str,
) -> Result<(), AppError> {
    let Some(origin) = headers.get(header::ORIGIN) else { return Ok(()) };
    if origin.as_bytes() == state.public_origin.as_bytes() || origin.to_str().is_ok_and(also_allowed) {
        return Ok(());
    }
    let err = AppError::CrossSite;
    audit::refusal(client, None, err.reason(), what);
    Err(err)
}
