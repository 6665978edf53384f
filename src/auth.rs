//! Who is logged in: the session's user, and the [`CurrentUser`] extractor.
//!
//! The session (server-side, in the database) holds the user's id, address and username under the
//! namespaced key `auth.user`, so pages need no database round trip per request.
//!
//! Logging in is two steps, and the types make the order impossible to get wrong: a callback
//! that matched its pending attempt first calls [`rotate`] (the session gets a new id *before*
//! any provider call, which also deletes the old id's row and with it the consumed attempt — a
//! 5xx from the provider, which tower-sessions does not save, cannot leave the attempt behind);
//! only the [`Rotated`] it returns can then [`log_in`], which starts the session afresh: nothing
//! of what the session held before survives but the other logins still in flight.

use crate::oauth::pending::{PendingLogins, SESSION_KEY};
use crate::store::User;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::{Deserialize, Serialize};
use tower_sessions::Session;

/// The session key of the logged-in user.
pub const USER_KEY: &str = "auth.user";

/// The logged-in user, as kept in the session (as of the login: the full, current row is
/// [`crate::Store::user`]).
///
/// Take it in a handler of any router wrapped by [`crate::Loginwith::layer`]: as `CurrentUser`
/// (401 JSON when nobody is logged in), as `Option<CurrentUser>`, or through [`RequireLogin`],
/// which sends a browser to log in first.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[non_exhaustive]
pub struct CurrentUser {
    /// Our user id.
    pub id: i64,
    /// The user's address; `None` when no provider of theirs gave one (X has none).
    pub email: Option<String>,
    /// A provider we trust vouched for the address (false for sessions from before this field).
    #[serde(default)]
    pub email_verified: bool,
    /// The user's username.
    pub username: String,
    /// A display name from the provider, if any.
    #[serde(default)]
    pub display_name: Option<String>,
    /// An https avatar URL from the provider, if any.
    #[serde(default)]
    pub avatar_url: Option<String>,
    /// The provider this session logged in through (empty for sessions from before this field).
    #[serde(default)]
    pub provider: String,
}

impl From<&User> for CurrentUser {
    fn from(user: &User) -> Self {
        CurrentUser {
            id: user.id,
            email: user.email.clone(),
            email_verified: user.email_verified,
            username: user.username.clone(),
            display_name: user.display_name.clone(),
            avatar_url: user.avatar_url.clone(),
            provider: String::new(),
        }
    }
}

/// Proof that this request's session id was rotated (see the module doc).
#[derive(Debug)]
pub struct Rotated<'a>(&'a Session);

/// Gives the session a new id now, deleting the old id's stored record (session fixation
/// defence, and the consumed login attempt's removal made durable before the provider is called).
pub async fn rotate(session: &Session) -> Result<Rotated<'_>, tower_sessions::session::Error> {
    session.cycle_id().await?;
    Ok(Rotated(session))
}

/// Logs `user` in on the rotated session, which starts afresh: whatever it held before (another
/// user, data an embedding app kept for the anonymous visitor) is cleared, except the logins still
/// in flight in other tabs.
pub async fn log_in(
    rotated: Rotated<'_>,
    user: &User,
    provider: &str,
    agent: &crate::client::UserAgent,
) -> Result<(), tower_sessions::session::Error> {
    let session = rotated.0;
    let in_flight: Option<PendingLogins> = session.get(SESSION_KEY).await?;
    session.clear().await;
    if let Some(pending) = in_flight.filter(|p| !p.is_empty()) {
        session.insert(SESSION_KEY, pending).await?;
    }
    let current = CurrentUser { provider: provider.to_owned(), ..CurrentUser::from(user) };
    session.insert(USER_KEY, current).await?;
    // For the account page's list of sessions (the session store writes them beside the row).
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    session.insert(crate::sessions::AGENT_KEY, &agent.0).await?;
    session.insert(crate::sessions::SINCE_KEY, now).await?;
    session.insert(REFRESHED_KEY, now / 86_400).await
}

/// Ends the session (every logout: the page's form, the gateway's, the JSON API's), with an audit
/// line when someone was logged in.
pub async fn log_out(
    session: &Session,
    client: crate::client::ClientAddr,
) -> Result<(), tower_sessions::session::Error> {
    if let Some(user) = current_user(session).await {
        crate::audit::logout(client, user.id);
    }
    session.flush().await
}

/// The session key of the day (Unix days) the session was last written.
pub const REFRESHED_KEY: &str = "auth.refreshed";

/// Reads the logged-in user, if any. A session that cannot be read counts as logged out.
///
/// tower-sessions only extends an `OnInactivity` expiry when the session is written, and reading
/// is not writing; so once a day a logged-in request writes a new day stamp, which saves the
/// session and pushes its expiry back — "two weeks idle" then means idle, not "since login".
pub async fn current_user(session: &Session) -> Option<CurrentUser> {
    let user = session.get::<CurrentUser>(USER_KEY).await.ok().flatten()?;
    let today = time::OffsetDateTime::now_utc().unix_timestamp() / 86_400;
    if session.get::<i64>(REFRESHED_KEY).await.ok().flatten() != Some(today) {
        let _ = session.insert(REFRESHED_KEY, today).await;
    }
    Some(user)
}

/// Where loginwith is mounted, for the extractors in the host's routes (set by
/// [`crate::Loginwith::layer`]).
#[derive(Debug, Clone)]
pub(crate) struct Mount {
    base: std::sync::Arc<str>,
}

impl Mount {
    pub(crate) fn new(base: &str) -> Self {
        Self { base: base.into() }
    }
}

/// A handler argument that requires a login: the logged-in [`CurrentUser`], or, for a browser
/// that is not logged in, a redirect to loginwith's start page with `next` set to where it was
/// going (so it comes back there after the login). API clients (a request that accepts JSON
/// rather than HTML, or says `X-Requested-With`) get `401 {"error":"unauthenticated","code":"unauthenticated","message":...}` instead.
///
/// ```no_run
/// use loginwith::RequireLogin;
///
/// async fn private(RequireLogin(user): RequireLogin) -> String {
///     format!("hello {}", user.username)
/// }
/// ```
#[derive(Debug, Clone)]
pub struct RequireLogin(pub CurrentUser);

/// Why [`RequireLogin`] did not let a request through.
#[derive(Debug)]
pub enum LoginRequired {
    /// A browser: sent to log in, then back.
    Redirect(String),
    /// An API client: 401 JSON.
    Unauthenticated,
}

impl axum::response::IntoResponse for LoginRequired {
    fn into_response(self) -> axum::response::Response {
        match self {
            LoginRequired::Redirect(to) => axum::response::Redirect::to(&to).into_response(),
            LoginRequired::Unauthenticated => crate::error::ApiError::Unauthenticated.into_response(),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RequireLogin {
    type Rejection = LoginRequired;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let user = match Session::from_request_parts(parts, state).await {
            Ok(session) => current_user(&session).await,
            Err(_) => None,
        };
        if let Some(user) = user {
            return Ok(RequireLogin(user));
        }
        let mount = parts.extensions.get::<Mount>();
        match mount {
            Some(mount) if wants_html_headers(&parts.headers) => {
                let start = format!("{}/", mount.base);
                let next =
                    parts.uri.path_and_query().and_then(|p| crate::domain::ReturnTo::parse(p.as_str()));
                Err(LoginRequired::Redirect(match next {
                    Some(next) => crate::loginwith::with_next(&start, &next),
                    None => start,
                }))
            }
            _ => Err(LoginRequired::Unauthenticated),
        }
    }
}

/// A browser navigating (it accepts HTML, and JSON not more), not a script.
pub(crate) fn wants_html_headers(headers: &axum::http::HeaderMap) -> bool {
    use axum::http::header::ACCEPT;
    if headers.contains_key("x-requested-with") {
        return false;
    }
    let accept = headers.get(ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let position = |kind: &str| accept.find(kind);
    match (position("text/html"), position("application/json")) {
        (Some(html), Some(json)) => html < json,
        (Some(_), None) => true,
        _ => false,
    }
}

/// The rejection when a handler needs a user and there is none: 401 JSON.
#[derive(Debug)]
pub struct NotLoggedIn;

impl axum::response::IntoResponse for NotLoggedIn {
    fn into_response(self) -> axum::response::Response {
        crate::error::ApiError::Unauthenticated.into_response()
    }
}

/// Extracts the logged-in user; use `Option<CurrentUser>` where logging in is optional.
///
/// Works in any router wrapped by [`crate::Loginwith::layer`].
impl<S: Send + Sync> FromRequestParts<S> for CurrentUser {
    type Rejection = NotLoggedIn;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let session = Session::from_request_parts(parts, state).await.map_err(|_| NotLoggedIn)?;
        current_user(&session).await.ok_or(NotLoggedIn)
    }
}

impl<S: Send + Sync> axum::extract::OptionalFromRequestParts<S> for CurrentUser {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Option<Self>, Self::Rejection> {
        match Session::from_request_parts(parts, state).await {
            Ok(session) => Ok(current_user(&session).await),
            Err(_) => Ok(None),
        }
    }
}
