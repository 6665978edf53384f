//! What a logged-in user can do to their own account beyond its identities: see their sessions,
//! end one or all the others, delete the account. The account page (`routes::account`) and the
//! JSON API (`routes::api`) are two front ends to these functions, so both follow the same rules:
//!
//! - a session is named by its public handle ([`crate::store::UserSession`]), never by its id;
//! - ending the request's own session is a logout (the cookie is cleared as well);
//! - ending another session deletes it through the whole session store, so the in-process cache
//!   forgets it too and its next request is anonymous;
//! - deleting the account removes the user, their identities and every session of theirs, then
//!   logs this one out; an audit line records it.

use crate::audit;
use crate::auth::{log_out, CurrentUser};
use crate::client::ClientAddr;
use crate::domain::UserId;
use crate::error::AppError;
use crate::sessions::end_sessions;
use crate::state::AppState;
use crate::store::UserSession;
use tower_sessions::Session;

/// A user's session as the account page and the API show it.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct SessionView {
    #[serde(flatten)]
    pub(crate) session: UserSession,
    /// It is the request's own session.
    pub(crate) current: bool,
}

/// The user's live sessions, the request's own marked, most recently used first.
pub(crate) async fn sessions(
    state: &AppState,
    user: &CurrentUser,
    session: &Session,
) -> Result<Vec<SessionView>, AppError> {
    let own = session.id().map(|id| id.to_string());
    let listed = state.sessions.backend().sessions_of(&state.store, UserId(user.id)).await?;
    Ok(listed
        .into_iter()
        .map(|s| SessionView { current: own.as_deref() == Some(s.session_id.as_str()), session: s })
        .collect())
}

/// What [`end_session`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ended {
    /// Another session of the user's was ended.
    Other,
    /// It was the request's own session: logged out.
    Own,
    /// No live session of the user's has that handle.
    Unknown,
}

/// Ends the user's session named `handle`.
pub(crate) async fn end_session(
    state: &AppState,
    user: &CurrentUser,
    session: &Session,
    client: ClientAddr,
    handle: &str,
) -> Result<Ended, AppError> {
    let listed = sessions(state, user, session).await?;
    let Some(found) = listed.into_iter().find(|s| s.session.handle == handle) else {
        return Ok(Ended::Unknown);
    };
    if found.current {
        log_out(session, client).await?;
        return Ok(Ended::Own);
    }
    end_sessions(&state.sessions, &[found.session.session_id]).await.map_err(store_failed)?;
    audit::sessions_revoked(client, user.id, 1);
    Ok(Ended::Other)
}

/// Ends every session of the user's but the request's own; returns how many.
pub(crate) async fn end_other_sessions(
    state: &AppState,
    user: &CurrentUser,
    session: &Session,
    client: ClientAddr,
) -> Result<usize, AppError> {
    let others: Vec<String> = sessions(state, user, session)
        .await?
        .into_iter()
        .filter(|s| !s.current)
        .map(|s| s.session.session_id)
        .collect();
    end_sessions(&state.sessions, &others).await.map_err(store_failed)?;
    audit::sessions_revoked(client, user.id, others.len());
    Ok(others.len())
}

/// Deletes the user, their identities and all their sessions, and logs this session out.
/// Returns false when the user was already gone (the session is logged out all the same).
pub(crate) async fn delete_account(
    state: &AppState,
    user: &CurrentUser,
    session: &Session,
    client: ClientAddr,
) -> Result<bool, AppError> {
    let deleted = state.sessions.backend().delete_user(&state.store, UserId(user.id)).await?;
    if let Some(session_ids) = &deleted {
        end_sessions(&state.sessions, session_ids).await.map_err(store_failed)?;
        audit::account_deleted(client, user.id, session_ids.len());
    }
    // Without an audit line of its own: the deletion's says it.
    session.flush().await?;
    Ok(deleted.is_some())
}

fn store_failed(err: tower_sessions::session_store::Error) -> AppError {
    AppError::Session(err.into())
}
