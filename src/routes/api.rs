//! The JSON API for single-page apps, same-origin:
//!
//! - `GET /api/me`: the logged-in user and the identities that log into it;
//! - `GET /api/providers[?next=PATH]`: each provider's name, display name, availability and login
//!   URL (carrying `next`, where the browser returns after the login);
//! - `POST /api/logout`;
//! - `GET /api/me/sessions`: the user's live sessions;
//! - `DELETE /api/me/sessions/{id}`: ends one (the request's own: a logout);
//! - `DELETE /api/me/identities/{provider}`: disconnects a provider, never the last one;
//! - `DELETE /api/me`: deletes the account, its identities and its sessions;
//! - `GET /api/openapi.json`: this API as an OpenAPI 3.1 document, generated from the handlers
//!   and types below by `utoipa` (so it cannot drift from them; a test validates real answers
//!   against it).
//!
//! Changes (`POST`, `DELETE`) are accepted only from this site's own pages (or an origin named
//! in `[api] allowed_origins`): `Origin` must be loginwith's public origin, or, when a browser
//! sends no `Origin`, `Sec-Fetch-Site` must say `same-origin`; and the request must carry a JSON
//! content type or an `X-Requested-With` header, which a cross-site HTML form cannot send and a
//! cross-site script cannot send without a CORS preflight that loginwith grants only to
//! `allowed_origins`. Errors are JSON with a stable `code` ([`ApiError`]).

use crate::account::{self, Ended};
use crate::audit;
use crate::auth::CurrentUser;
use crate::client::ClientAddr;
use crate::config::ApiConfig;
use crate::domain::UserId;
use crate::error::ApiError;
use crate::routes::login::next_param;
use crate::routes::pages::login_url;
use crate::state::AppState;
use crate::store::{Identity, Unlinked};
use axum::extract::{FromRequestParts, Path, RawQuery, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_sessions::Session;
use utoipa::{OpenApi, ToSchema};

/// `{base}/api/...`, with CORS for `[api] allowed_origins` when there are any.
pub fn router(base: &str, config: &ApiConfig) -> Router<AppState> {
    let router = Router::new()
        .route(&format!("{base}/api/me"), get(me).delete(delete_me))
        .route(&format!("{base}/api/providers"), get(providers))
        .route(&format!("{base}/api/logout"), post(logout))
        .route(&format!("{base}/api/me/sessions"), get(sessions))
        .route(&format!("{base}/api/me/sessions/{{id}}"), delete(end_session))
        .route(&format!("{base}/api/me/identities/{{provider}}"), delete(disconnect))
        .route(&format!("{base}/api/openapi.json"), get(openapi));
    match cors(config) {
        Some(cors) => router.layer(cors),
        None => router,
    }
}

/// CORS with credentials for exactly the configured origins (never `*`), for the methods and
/// headers the API takes; `None` when no origin is configured (then no CORS header is ever sent
/// and browsers keep other origins out).
fn cors(config: &ApiConfig) -> Option<CorsLayer> {
    use axum::http::{HeaderName, HeaderValue, Method};
    let origins: Vec<HeaderValue> =
        config.allowed_origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()).collect();
    if origins.is_empty() {
        return None;
    }
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_credentials(true)
            .allow_methods([Method::GET, Method::POST, Method::DELETE])
            .allow_headers([header::CONTENT_TYPE, HeaderName::from_static("x-requested-with")])
            .max_age(std::time::Duration::from_secs(600)),
    )
}

/// The API's OpenAPI document (paths relative to loginwith's public URL, its `servers` entry).
#[derive(OpenApi)]
#[openapi(
    info(
        title = "loginwith JSON API",
        description = "The logged-in user, their identities and sessions, for single-page apps. \
            Changes need a same-origin request (Origin or Sec-Fetch-Site) with a JSON content type \
            or an X-Requested-With header; errors carry a stable `code`. While the database does not \
            answer, any endpoint may answer 503 with the code `unavailable` and a `Retry-After` header."
    ),
    paths(me, providers, logout, sessions, end_session, disconnect, delete_me, openapi),
    components(schemas(
        Me,
        Identity,
        Providers,
        ProviderEntry,
        Sessions,
        SessionEntry,
        DeleteAccount,
        ErrorBody
    ))
)]
struct ApiDoc;

/// The logged-in user.
#[derive(Debug, Serialize, ToSchema)]
struct Me {
    /// Our user id.
    id: i64,
    /// The account's address; null when no provider gave one (X has none).
    email: Option<String>,
    /// A provider we trust vouched for `email`.
    email_verified: bool,
    /// Unique username.
    username: String,
    /// From the provider's profile.
    display_name: Option<String>,
    /// An https URL, from the provider's profile.
    avatar_url: Option<String>,
    /// The identities that log into the account, oldest first.
    identities: Vec<Identity>,
}

/// The providers a login page offers.
#[derive(Debug, Serialize, ToSchema)]
struct Providers {
    providers: Vec<ProviderEntry>,
}

/// One provider.
#[derive(Debug, Serialize, ToSchema)]
struct ProviderEntry {
    /// Its name in URLs and the configuration.
    name: String,
    /// Its name for people ("Google").
    display_name: String,
    /// False while an OpenID Connect provider cannot be discovered.
    available: bool,
    /// Where a browser goes to log in with it (carrying `next` when given).
    login_url: String,
}

/// The user's live sessions.
#[derive(Debug, Serialize, ToSchema)]
struct Sessions {
    /// Most recently used first.
    sessions: Vec<SessionEntry>,
}

/// One session.
#[derive(Debug, Serialize, ToSchema)]
struct SessionEntry {
    /// The session's public id, for `DELETE /api/me/sessions/{id}` (not the cookie's secret).
    id: String,
    /// Unix seconds: when it logged in.
    created_at: i64,
    /// Unix seconds: when it was last saved (about once a day when only read).
    last_used_at: i64,
    /// The browser's `User-Agent` at the login, clipped; may be empty.
    user_agent: String,
    /// It is the session of this request.
    current: bool,
}

/// `DELETE /api/me`'s optional body.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct DeleteAccount {
    /// When given, must be the account's username (a typed confirmation).
    confirm: Option<String>,
}

/// Every error answer.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ErrorBody {
    /// The stable code (the same as `code`; kept for older clients).
    error: String,
    /// The stable code: `unauthenticated`, `cross_origin`, `json_required`, `not_linked`,
    /// `last_identity`, `session_not_found`, `bad_request`, `confirmation_mismatch`, `internal`,
    /// `unavailable` (503: the database does not answer; try again after `Retry-After`).
    code: String,
    /// A sentence for people; may change.
    message: String,
}

/// The logged-in user and the identities that log into it, as they are now: from the store's
/// account cache, which every change invalidates, so an identity linked from another browser
/// shows up without a new login. 401 JSON when logged out (or when the user no longer exists).
#[utoipa::path(get, path = "/api/me", tag = "account", responses(
    (status = 200, description = "The logged-in user", body = Me),
    (status = 401, description = "Nobody is logged in", body = ErrorBody),
))]
async fn me(State(state): State<AppState>, user: Option<CurrentUser>) -> Result<Json<Me>, ApiError> {
    let user = user.ok_or(ApiError::Unauthenticated)?;
    let account = state.store.account(UserId(user.id)).await?.ok_or(ApiError::Unauthenticated)?;
    let u = &account.user;
    Ok(Json(Me {
        id: u.id,
        email: u.email.clone(),
        email_verified: u.email_verified,
        username: u.username.clone(),
        display_name: u.display_name.clone(),
        avatar_url: u.avatar_url.clone(),
        identities: account.identities.clone(),
    }))
}

/// The providers a login page would offer, with the URL that starts each login.
#[utoipa::path(get, path = "/api/providers", tag = "login",
    params(("next" = Option<String>, Query, description = "A same-origin path to return to after the login")),
    responses((status = 200, description = "The configured providers, in button order", body = Providers)),
)]
async fn providers(State(state): State<AppState>, RawQuery(query): RawQuery) -> Json<Providers> {
    let next = next_param(query.as_deref());
    let providers = state
        .providers
        .iter()
        .map(|p| ProviderEntry {
            name: p.name.as_str().to_owned(),
            display_name: p.display_name.clone(),
            available: !p.is_unavailable(),
            login_url: login_url(&state, p.name.as_str(), next.as_ref().map(|n| ("next", n.as_str()))),
        })
        .collect();
    Json(Providers { providers })
}

/// `POST /api/logout`: ends the session; 204 whether or not anyone was logged in.
#[utoipa::path(post, path = "/api/logout", tag = "login", responses(
    (status = 204, description = "Logged out (or nobody was)"),
    (status = 403, description = "Not sent from an allowed origin", body = ErrorBody),
    (status = 415, description = "No JSON content type or X-Requested-With", body = ErrorBody),
))]
async fn logout(_: SameOrigin, client: ClientAddr, session: Session) -> Result<StatusCode, ApiError> {
    crate::auth::log_out(&session, client).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The user's live sessions (the request's own marked `current`).
#[utoipa::path(get, path = "/api/me/sessions", tag = "account", responses(
    (status = 200, description = "The live sessions", body = Sessions),
    (status = 401, description = "Nobody is logged in", body = ErrorBody),
))]
async fn sessions(
    State(state): State<AppState>,
    user: Option<CurrentUser>,
    session: Session,
) -> Result<Json<Sessions>, ApiError> {
    let user = user.ok_or(ApiError::Unauthenticated)?;
    let sessions = account::sessions(&state, &user, &session)
        .await?
        .into_iter()
        .map(|s| SessionEntry {
            id: s.session.handle,
            created_at: s.session.created_at,
            last_used_at: s.session.last_used_at,
            user_agent: s.session.user_agent,
            current: s.current,
        })
        .collect();
    Ok(Json(Sessions { sessions }))
}

/// Ends one of the user's sessions at once; ending the request's own is a logout.
#[utoipa::path(delete, path = "/api/me/sessions/{id}", tag = "account",
    params(("id" = String, Path, description = "The session's id from GET /api/me/sessions")),
    responses(
        (status = 204, description = "The session was ended"),
        (status = 401, description = "Nobody is logged in", body = ErrorBody),
        (status = 403, description = "Not sent from an allowed origin", body = ErrorBody),
        (status = 404, description = "No live session of yours has this id", body = ErrorBody),
        (status = 415, description = "No JSON content type or X-Requested-With", body = ErrorBody),
    ),
)]
async fn end_session(
    _: SameOrigin,
    State(state): State<AppState>,
    client: ClientAddr,
    user: Option<CurrentUser>,
    session: Session,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let user = user.ok_or(ApiError::Unauthenticated)?;
    match account::end_session(&state, &user, &session, client, &id).await? {
        Ended::Other | Ended::Own => Ok(StatusCode::NO_CONTENT),
        Ended::Unknown => Err(ApiError::SessionNotFound),
    }
}

/// `DELETE /api/me/identities/{provider}`: 204, or 404 `not_linked`, or 409 `last_identity`.
#[utoipa::path(delete, path = "/api/me/identities/{provider}", tag = "account",
    params(("provider" = String, Path, description = "The provider's name")),
    responses(
        (status = 204, description = "The provider no longer logs into the account"),
        (status = 401, description = "Nobody is logged in", body = ErrorBody),
        (status = 403, description = "Not sent from an allowed origin", body = ErrorBody),
        (status = 404, description = "No identity of this provider logs into the account", body = ErrorBody),
        (status = 409, description = "It is the last way to log in", body = ErrorBody),
        (status = 415, description = "No JSON content type or X-Requested-With", body = ErrorBody),
    ),
)]
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

/// Deletes the account: the user, their identities and all their sessions; this one is logged
/// out. A body is optional; `{"confirm": USERNAME}` makes the deletion conditional on it.
#[utoipa::path(delete, path = "/api/me", tag = "account",
    request_body(content = Option<DeleteAccount>, description = "Optional typed confirmation"),
    responses(
        (status = 204, description = "The account is deleted and the session logged out"),
        (status = 400, description = "A body that is not `{\"confirm\": ...}`, or a confirmation that is not the username", body = ErrorBody),
        (status = 401, description = "Nobody is logged in", body = ErrorBody),
        (status = 403, description = "Not sent from an allowed origin", body = ErrorBody),
        (status = 415, description = "No JSON content type or X-Requested-With", body = ErrorBody),
    ),
)]
async fn delete_me(
    _: SameOrigin,
    State(state): State<AppState>,
    client: ClientAddr,
    user: Option<CurrentUser>,
    session: Session,
    body: axum::body::Bytes,
) -> Result<StatusCode, ApiError> {
    let user = user.ok_or(ApiError::Unauthenticated)?;
    // No body (or an empty one) asks for no confirmation; anything else must be the object.
    let body: DeleteAccount = if body.iter().all(u8::is_ascii_whitespace) {
        DeleteAccount::default()
    } else {
        serde_json::from_slice(&body).map_err(|_| ApiError::BadRequest)?
    };
    if body.confirm.is_some_and(|typed| typed != user.username) {
        return Err(ApiError::ConfirmationMismatch);
    }
    account::delete_account(&state, &user, &session, client).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// This API's OpenAPI 3.1 document.
#[utoipa::path(get, path = "/api/openapi.json", tag = "meta", responses(
    (status = 200, description = "The OpenAPI document", content_type = "application/json"),
))]
async fn openapi(State(state): State<AppState>) -> Json<utoipa::openapi::OpenApi> {
    let mut doc = ApiDoc::openapi();
    doc.servers = Some(vec![utoipa::openapi::Server::new(state.public_url.clone())]);
    Json(doc)
}

/// Proof that a change comes from this site's own pages (see the module doc); refusals are
/// audited.
#[derive(Debug)]
pub(crate) struct SameOrigin;

impl FromRequestParts<AppState> for SameOrigin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let refused = match same_origin(&parts.headers, &state.public_origin, &state.api.allowed_origins) {
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

/// Whether `headers` describe a same-origin change, or one from an allowed origin (see the module
/// doc).
fn same_origin(headers: &HeaderMap, public_origin: &str, allowed: &[String]) -> Result<(), ApiError> {
    let origin_ok = match headers.get(header::ORIGIN) {
        Some(origin) => {
            let origin = origin.as_bytes();
            origin == public_origin.as_bytes() || allowed.iter().any(|a| a.as_bytes() == origin)
        }
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
        let ok = |h: &[(&'static str, &'static str)]| same_origin(&headers(h), ours, &[]).is_ok();
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

    #[test]
    fn an_allowed_origin_may_change_with_the_same_headers() {
        let allowed = ["https://spa.example.com".to_owned()];
        let ok = |h: &[(&'static str, &'static str)]| {
            same_origin(&headers(h), "https://app.example.com", &allowed).is_ok()
        };
        assert!(ok(&[("origin", "https://spa.example.com"), ("content-type", "application/json")]));
        assert!(!ok(&[("origin", "https://spa.example.com"), ("content-type", "text/plain")]));
        assert!(!ok(&[("origin", "https://spa.example.com:8443"), ("content-type", "application/json")]));
        assert!(!ok(&[("origin", "http://spa.example.com"), ("content-type", "application/json")]));
    }
}
