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

/// The logged-in user, as kept in the session.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CurrentUser {
    /// Our user id.
    pub id: i64,
    /// The user's address.
    pub email: String,
    /// A provider we trust vouched for the address (false for sessions from before this field).
    #[serde(default)]
    pub email_verified: bool,
    /// The user's username.
    pub username: String,
}

impl From<&User> for CurrentUser {
    fn from(user: &User) -> Self {
        CurrentUser {
            id: user.id,
            email: user.email.clone(),
            email_verified: user.email_verified,
            username: user.username.clone(),
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
pub async fn log_in(rotated: Rotated<'_>, user: &User) -> Result<(), tower_sessions::session::Error> {
    let session = rotated.0;
    let in_flight: Option<PendingLogins> = session.get(SESSION_KEY).await?;
    session.clear().await;
    if let Some(pending) = in_flight.filter(|p| !p.is_empty()) {
        session.insert(SESSION_KEY, pending).await?;
    }
    session.insert(USER_KEY, CurrentUser::from(user)).await?;
    session.insert(REFRESHED_KEY, time::OffsetDateTime::now_utc().unix_timestamp() / 86_400).await
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
