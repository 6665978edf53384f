//! The JSON API for single-page apps, same-origin:
//!
//! - `GET /api/me`: the logged-in user and the identities that log into it;
//! - `GET /api/providers[?next=PATH]`: each provider's name, display name, availability and login
//!   URL (carrying `next`, where the browser returns after the login);
//! - `POST /api/logout`;
//! - `DELETE /api/me/identities/{provider}`: disconnects a provider, never the last one.
//!
//! Changes (`POST`, `DELETE`) are accepted only from this site's own pages: `Origin` must be
//! loginwith's public origin, or, when a browser sends no `Origin`, `Sec-Fetch-Site` must say
//! `same-origin`; and the request must carry a JSON content type or an `X-Requested-With`
//! header, which a cross-site HTML form cannot send and a cross-site script cannot send without
//! a CORS preflight that loginwith never grants. Errors are JSON with a stable `code`
//! ([`ApiError`]).

use crate::audit;
use crate::auth::CurrentUser;
use crate::client::ClientAddr;
use crate::domain::UserId;
use crate::error::ApiError;
use crate::routes::login::next_param;
use crate::routes::pages::login_url;
use crate::state::AppState;
use crate::store::Unlinked;
use axum::extract::{FromRequestParts, Path, RawQuery, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use tower_sessions::Session;

/// `{base}/api/...`
pub fn router(base: &str) -> Router<AppState> {
    Router::new()
        .route(&format!("{base}/api/me"), get(me))
        .route(&format!("{base}/api/providers"), get(providers))
        .route(&format!("{base}/api/logout"), post(logout))
        .route(&format!("{base}/api/me/identities/{{provider}}"), delete(disconnect))
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

/// The providers a login page would offer, with the URL that starts each login.
async fn providers(State(state): State<AppState>, RawQuery(query): RawQuery) -> Json<Value> {
    let next = next_param(query.as_deref());
    let providers: Vec<Value> = state
        .providers
        .iter()
        .map(|p| {
            let login_url = login_url(&state, p.name.as_str(), next.as_ref().map(|n| ("next", n.as_str())));
            json!({
                "name": p.name.as_str(),
                "display_name": p.display_name,
                "available": !p.is_unavailable(),
                "login_url": login_url,
            })
        })
        .collect();
    Json(json!({ "providers": providers }))
}

/// `POST /api/logout`: ends the session; 204 whether or not anyone was logged in.
async fn logout(_: SameOrigin, client: ClientAddr, session: Session) -> Result<StatusCode, ApiError> {
    crate::auth::log_out(&session, client).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /api/me/identities/{provider}`: 204, or 404 `not_linked`, or 409 `last_identity`.
async fn disconnect(
    _: SameOrigin,
    State(state): State<AppState>,
    client: ClientAddr,
    user: Option<CurrentUser>,
    Path(provider): Path<String>,
) -> Result<StatusCode, ApiError> {
    let user = user.ok_or(ApiError::Unauthenticated)?;
    match state.store.unlink_provider(UserId(user.id), &provider).await? {
        Unlinked::Removed(_) => {
            audit::unlinked(client, user.id, &provider);
            Ok(StatusCode::NO_CONTENT)
        }
        Unlinked::NotLinked => Err(ApiError::NotLinked),
        Unlinked::LastIdentity => Err(ApiError::LastIdentity),
    }
}

/// Proof that a change comes from this site's own pages (see the module doc); refusals are
/// audited.
#[derive(Debug)]
pub(crate) struct SameOrigin;

impl FromRequestParts<AppState> for SameOrigin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let refused = match same_origin(&parts.headers, &state.public_origin) {
            Ok(()) => return Ok(SameOrigin),
            Err(refused) => refused,
        };
        let client = ClientAddr::from_request_parts(parts, state).await.unwrap_or(ClientAddr(None));
        let why = match refused {
            ApiError::JsonRequired => "API change without a JSON content type or X-Requested-With",
            _ => "API change sent from another origin",
        };
        audit::refusal(client, None, refused.code(), why);
        Err(refused)
    }
}

/// Whether `headers` describe a same-origin change (see the module doc).
fn same_origin(headers: &HeaderMap, public_origin: &str) -> Result<(), ApiError> {
    let origin_ok = match headers.get(header::ORIGIN) {
        Some(origin) => origin.as_bytes() == public_origin.as_bytes(),
        None => headers.get("sec-fetch-site").is_some_and(|site| site.as_bytes() == b"same-origin"),
    };
    if !origin_ok {
        return Err(ApiError::CrossOrigin);
    }
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"));
    if json || headers.contains_key("x-requested-with") {
        Ok(())
    } else {
        Err(ApiError::JsonRequired)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs.iter().map(|(k, v)| (header::HeaderName::from_static(k), HeaderValue::from_static(v))).collect()
    }

    #[test]
    fn a_change_needs_our_origin_and_a_header_a_form_cannot_send() {
        let ours = "https://app.example.com";
        let ok = |h: &[(&'static str, &'static str)]| same_origin(&headers(h), ours).is_ok();
        assert!(ok(&[("origin", "https://app.example.com"), ("content-type", "application/json")]));
        assert!(ok(&[
            ("origin", "https://app.example.com"),
            ("content-type", "Application/JSON; charset=utf-8")
        ]));
        assert!(ok(&[("sec-fetch-site", "same-origin"), ("x-requested-with", "fetch")]));
        // Another origin, a sibling subdomain, none at all, or a cross-site fetch.
        assert!(!ok(&[("origin", "https://evil.example"), ("content-type", "application/json")]));
        assert!(!ok(&[("origin", "https://a.app.example.com"), ("content-type", "application/json")]));
        assert!(!ok(&[("content-type", "application/json")]));
        assert!(!ok(&[("sec-fetch-site", "same-site"), ("content-type", "application/json")]));
        assert!(!ok(&[
            ("origin", "null"),
            ("sec-fetch-site", "same-origin"),
            ("content-type", "application/json")
        ]));
        // What an HTML form can send.
        assert!(!ok(&[
            ("origin", "https://app.example.com"),
            ("content-type", "application/x-www-form-urlencoded")
        ]));
        assert!(!ok(&[("origin", "https://app.example.com"), ("content-type", "text/plain")]));
        assert!(!ok(&[("origin", "https://app.example.com")]));
    }
}
