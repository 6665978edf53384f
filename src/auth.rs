//! Who is logged in: the session's user, and the [`CurrentUser`] extractor.
//!
//! The session (server-side, in the database) holds the user's id, address and username under the
//! namespaced key `auth.user`, so pages need no database round trip per request. Logging in always
//! rotates the session id first (session-fixation defence).

use crate::store::{Identity, User};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::{Deserialize, Serialize};
use tower_sessions::Session;

/// The session key of the logged-in user.
pub const USER_KEY: &str = "auth.user";
/// The session key of the identities that log into that user (for `/api/me`).
pub const IDENTITIES_KEY: &str = "auth.identities";

/// The logged-in user, as kept in the session.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CurrentUser {
    /// Our user id.
    pub id: i64,
    /// The user's address.
    pub email: String,
    /// The user's username.
    pub username: String,
}

impl From<&User> for CurrentUser {
    fn from(user: &User) -> Self {
        CurrentUser { id: user.id, email: user.email.clone(), username: user.username.clone() }
    }
}

/// Logs `user` in on this session: new session id, then the user and their identities (which
/// only change at a login, so `/api/me` can answer from the session without a query).
pub async fn log_in(
    session: &Session,
    user: &User,
    identities: &[Identity],
) -> Result<(), tower_sessions::session::Error> {
    session.cycle_id().await?;
    session.insert(USER_KEY, CurrentUser::from(user)).await?;
    session.insert(IDENTITIES_KEY, identities).await
}

/// Reads the logged-in user, if any. A session that cannot be read counts as logged out.
pub async fn current_user(session: &Session) -> Option<CurrentUser> {
    session.get::<CurrentUser>(USER_KEY).await.ok().flatten()
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
