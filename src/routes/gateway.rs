//! The gateway: forward-auth endpoints for a reverse proxy in front of apps that know nothing of
//! logins (nginx `auth_request`, Caddy `forward_auth`, Traefik `ForwardAuth`). On only with
//! `[gateway] enabled`.
//!
//! - `GET {base}/gateway/check`: the proxy asks it about every request. `200` with
//!   `X-Auth-Request-User`, `-Email` (a verified address, else empty), `-Name`, `-Provider` for a
//!   logged-in user whom `[access]` and the matching `[[gateway.rules]]` let through; `401` when
//!   nobody is logged in (or, with `unauthenticated = "redirect"`, a browser gets `302` to
//!   `start`); `403` with a page naming who is logged in and offering to log out, when the rules
//!   refuse. The 401 and 403 carry `Location`: the `start` or `denied` URL with the original
//!   request as `rd`, ready for a proxy's own redirect (nginx cannot URL-encode).
//! - `GET {base}/gateway/start?rd=URL`: starts a login (straight to the provider when there is one)
//!   that ends at `rd` (an allowed host, see [`RedirectUrl`]).
//! - `GET {base}/gateway/denied?rd=URL`: the refusal page, for proxies that send their own 403 to
//!   a page of ours (nginx `error_page 403`).
//! - `POST {base}/gateway/logout?rd=URL`: logs out and returns to `rd`.
//!
//! The request being authorised is read from `X-Original-URL`, or `X-Forwarded-Proto`, `-Host`
//! and `-Uri`, and only when the request comes from one of `[server] trusted_proxies`: anyone
//! else could name whatever host suits them. When per-host rules exist and the host is unknown,
//! the answer is 403 (and a warning says to configure `trusted_proxies`), never a pass.

use crate::auth::{current_user, wants_html_headers, CurrentUser};
use crate::client::{ClientAddr, FromTrustedProxy};
use crate::config::{AccessConfig, Unauthenticated};
use crate::domain::RedirectUrl;
use crate::error::AppError;
use crate::routes::login::rd_param;
use crate::routes::pages::{login_url, refuse_other_sites};
use crate::state::AppState;
use crate::templates::render;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use axum_messages::Messages;
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use tower_sessions::Session;
use url::Url;

/// `{base}/gateway/check`, `/start`, `/denied`, `/logout`.
pub fn router(base: &str) -> Router<AppState> {
    Router::new()
        .route(&format!("{base}/gateway/check"), get(check))
        .route(&format!("{base}/gateway/start"), get(start))
        .route(&format!("{base}/gateway/denied"), get(denied))
        .route(&format!("{base}/gateway/logout"), post(logout))
}

/// The request the proxy is asking about, when a trusted proxy says.
fn original_url(headers: &HeaderMap, trusted: bool) -> Option<Url> {
    if !trusted {
        return None;
    }
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    if let Some(original) = text("x-original-url") {
        return Url::parse(original).ok().filter(|u| u.host_str().is_some());
    }
    // A list (several proxies) names the first proxy's view: the client's.
    let host = text("x-forwarded-host")?.split(',').next()?.trim();
    let proto = text("x-forwarded-proto").and_then(|p| p.split(',').next()).map_or("https", str::trim);
    let uri = text("x-forwarded-uri").unwrap_or("/");
    if !matches!(proto, "http" | "https") || !uri.starts_with('/') {
        return None;
    }
    Url::parse(&format!("{proto}://{host}{uri}")).ok().filter(|u| u.host_str().is_some())
}

/// The rule for `host`: the first `[[gateway.rules]]` whose host matches.
fn host_rule<'a>(state: &'a AppState, host: Option<&str>) -> Result<Option<&'a AccessConfig>, ()> {
    static WARNED: AtomicBool = AtomicBool::new(false);
    if state.gateway.rules.is_empty() {
        return Ok(None);
    }
    let Some(host) = host else {
        if !WARNED.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "gateway check without a trusted X-Original-URL or X-Forwarded-Host: per-host rules cannot \
                 apply, so everyone is refused; list the proxy in [server] trusted_proxies"
            );
        }
        return Err(());
    };
    Ok(state.gateway.rules.iter().find(|r| r.host.matches(host)).map(|r| &r.access))
}

/// Whether `user` may pass to `host`: `[access]`, and the host's rule if any.
fn allowed(state: &AppState, user: &CurrentUser, host: Option<&str>) -> bool {
    let passes = |rule: &AccessConfig| {
        rule.allows(user.email.as_deref().unwrap_or(""), user.email_verified, &user.provider)
    };
    match host_rule(state, host) {
        Err(()) => false,
        Ok(rule) => passes(&state.access) && rule.is_none_or(passes),
    }
}

async fn check(
    State(state): State<AppState>,
    FromTrustedProxy(trusted): FromTrustedProxy,
    headers: HeaderMap,
    session: Session,
) -> Response {
    let original = original_url(&headers, trusted);
    let host = original.as_ref().and_then(|u| u.host_str().map(str::to_ascii_lowercase));
    let Some(user) = current_user(&session).await else {
        return unauthenticated(&state, &headers, original.as_ref());
    };
    if !allowed(&state, &user, host.as_deref()) {
        tracing::debug!(user_id = user.id, host = host.as_deref().unwrap_or(""), "gateway refused");
        let rd = original.and_then(|u| RedirectUrl::parse(u.as_str(), &state.gateway.allowed_redirect_hosts));
        let mut page = denied_page(&state, &user, host.as_deref(), rd.as_ref());
        set_location(&mut page, with_rd(format!("{}/gateway/denied", state.public_url), rd.as_ref()));
        return page;
    }
    let mut response = StatusCode::OK.into_response();
    let out = response.headers_mut();
    let mut set = |name: &'static str, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            out.insert(HeaderName::from_static(name), value);
        }
    };
    set("x-auth-request-user", &user.username);
    // Always sent, empty without a verified address: Caddy 2.6's `copy_headers` passes its own
    // placeholder text on for a header the answer lacks. The proxies drop an empty one (nginx's
    // `proxy_set_header` sends no empty header; deploy/Caddyfile removes it).
    set("x-auth-request-email", if user.email_verified { user.email.as_deref().unwrap_or("") } else { "" });
    set("x-auth-request-name", user.display_name.as_deref().unwrap_or(&user.username));
    set("x-auth-request-provider", &user.provider);
    response
}

/// Nobody is logged in: 401, or for a browser with `unauthenticated = "redirect"`, 302 to `start`.
/// The 401 names the same `start` URL in `Location`, for proxies that turn it into their own
/// redirect (nginx: `auth_request_set` + `error_page 401`; nginx cannot URL-encode `rd` itself).
fn unauthenticated(state: &AppState, headers: &HeaderMap, original: Option<&Url>) -> Response {
    let rd = original.and_then(|u| RedirectUrl::parse(u.as_str(), &state.gateway.allowed_redirect_hosts));
    let start = with_rd(format!("{}/gateway/start", state.public_url), rd.as_ref());
    let status = if state.gateway.unauthenticated == Unauthenticated::Redirect && wants_html_headers(headers)
    {
        StatusCode::FOUND
    } else {
        StatusCode::UNAUTHORIZED
    };
    let mut response = crate::error::ApiError::Unauthenticated.into_response();
    *response.status_mut() = status;
    set_location(&mut response, start);
    response
}

/// `url?rd=RD` (encoded), or `url` when there is no `rd`.
fn with_rd(url: String, rd: Option<&RedirectUrl>) -> String {
    match rd {
        Some(rd) => {
            let rd: String = url::form_urlencoded::byte_serialize(rd.as_str().as_bytes()).collect();
            format!("{url}?rd={rd}")
        }
        None => url,
    }
}

fn set_location(response: &mut Response, to: String) {
    if let Ok(to) = HeaderValue::try_from(to) {
        response.headers_mut().insert(header::LOCATION, to);
    }
}

/// The refusal page: who is logged in, where they may not go, and a way to log out (as someone
/// else, then). It links nowhere that would ask `check` again, so it can never loop.
fn denied_page(
    state: &AppState,
    user: &CurrentUser,
    host: Option<&str>,
    rd: Option<&RedirectUrl>,
) -> Response {
    let logout = with_rd(format!("{}/gateway/logout", state.base_path), rd);
    render(
        StatusCode::FORBIDDEN,
        "gateway_denied.html",
        json!({
            "user": user,
            "host": host.unwrap_or(""),
            "logout_url": logout,
        }),
    )
}

/// `GET {base}/gateway/start?rd=URL`.
async fn start(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    session: Session,
    messages: Messages,
) -> Response {
    let rd = rd_param(&state, query.as_deref());
    let user = current_user(&session).await;
    if user.is_some() {
        return Redirect::to(&state.after_login_to(rd.as_ref(), None)).into_response();
    }
    // The only provider configured (its authorize step discovers it if it is not yet), else the
    // only one available.
    let available: Vec<_> = state.providers.iter().filter(|p| !p.is_unavailable()).collect();
    let only = match (state.providers.as_slice(), available.as_slice()) {
        ([only], _) => Some(only),
        (_, [only]) => Some(*only),
        _ => None,
    };
    if let Some(only) = only {
        let to = login_url(&state, only.name.as_str(), rd.as_ref().map(|rd| ("rd", rd.as_str())));
        return Redirect::to(&to).into_response();
    }
    crate::routes::pages::start_page(&state, user, messages, rd.map(|rd| ("rd", rd.as_str().to_owned())))
}

/// `GET {base}/gateway/denied?rd=URL`: the refusal page for proxies that show a page of ours on
/// their own 403; a browser that is not logged in is sent to log in instead.
async fn denied(State(state): State<AppState>, RawQuery(query): RawQuery, session: Session) -> Response {
    let rd = rd_param(&state, query.as_deref());
    match current_user(&session).await {
        Some(user) => {
            let host = rd.as_ref().map(RedirectUrl::host);
            denied_page(&state, &user, host.as_deref(), rd.as_ref())
        }
        None => {
            Redirect::to(&with_rd(format!("{}/gateway/start", state.base_path), rd.as_ref())).into_response()
        }
    }
}

/// `POST {base}/gateway/logout?rd=URL`: like `{base}/logout`, from our own pages or from a page
/// on one of the allowed hosts (an app's own "log out" button), then back to `rd`.
async fn logout(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    client: ClientAddr,
    headers: HeaderMap,
    session: Session,
) -> Result<Redirect, AppError> {
    let allowed_host = |origin: &str| {
        RedirectUrl::parse(&format!("{origin}/"), &state.gateway.allowed_redirect_hosts).is_some()
    };
    refuse_other_sites(&state, client, &headers, allowed_host, "gateway logout form sent from another site")?;
    crate::auth::log_out(&session, client).await?;
    let rd = rd_param(&state, query.as_deref());
    Ok(Redirect::to(&match rd {
        Some(rd) => rd.as_str().to_owned(),
        None => state.after_logout(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn the_original_request_comes_only_from_a_trusted_proxy() {
        let h = headers(&[("x-original-url", "https://grafana.example.com/d/1?x=2")]);
        assert_eq!(original_url(&h, true).unwrap().as_str(), "https://grafana.example.com/d/1?x=2");
        assert!(original_url(&h, false).is_none());
        let h = headers(&[
            ("x-forwarded-host", "App.example.com, proxy.internal"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-uri", "/a?b=c"),
        ]);
        assert_eq!(original_url(&h, true).unwrap().as_str(), "https://app.example.com/a?b=c");
        let h = headers(&[("x-forwarded-host", "app.example.com"), ("x-forwarded-uri", "//evil")]);
        assert!(original_url(&h, true).is_some_and(|u| u.host_str() == Some("app.example.com")));
        let h = headers(&[("x-forwarded-host", "app.example.com"), ("x-forwarded-proto", "gopher")]);
        assert!(original_url(&h, true).is_none());
    }
}
