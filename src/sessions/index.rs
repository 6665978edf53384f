//! The index from users to their sessions, kept by the session store itself.
//!
//! [`SessionIndex`] wraps the store (above the in-process cache, so the cache and the database
//! both follow it). Whenever a logged-in session is saved, it first writes the session's row in
//! `user_sessions` (its user, when it logged in, when it was last used, its browser), then the
//! session: every stored logged-in session therefore has its row, whatever fails in between (a
//! row whose session never got saved is harmless, and cleared by the periodic cleanup). The
//! account page, `GET /api/me/sessions` and account deletion read the index; whether a session is
//! alive is still only what tower-sessions' table says (`crate::store::UserSession`).
//!
//! A session whose user no longer exists cannot be indexed (a foreign key), and is then ended
//! instead of saved: a request that was in flight while its account was deleted cannot bring
//! the session back.
//!
//! The written rows cost one statement per login and per daily refresh (`auth.refreshed`), not
//! per request: a session is saved only when something in it changed. Revoking goes through
//! [`end_sessions`], which deletes through the whole stack so the cache forgets at once.
//!
//! A session's user, user agent and login time come from the record: `auth::log_in` writes them
//! into the session, since a store never sees the request.

use crate::auth::USER_KEY;
use crate::domain::UserId;
use crate::store::Store;
use std::str::FromStr;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, Error};
use tower_sessions::SessionStore;

/// The session key of the browser's user agent at the login.
pub(crate) const AGENT_KEY: &str = "auth.agent";
/// The session key of the login's time (Unix seconds): a session keeps it across id rotations
/// (a "connect another provider" callback rotates the id), so its index row, which is per id,
/// still says when it logged in.
pub(crate) const SINCE_KEY: &str = "auth.since";

/// See the module doc.
#[derive(Debug, Clone)]
pub(crate) struct SessionIndex<S> {
    inner: S,
    store: Store,
}

/// What indexing a record found.
enum Indexed {
    /// Not a logged-in session: nothing to index.
    Anonymous,
    /// Indexed.
    Done,
    /// Its user no longer exists.
    UserGone,
}

impl<S: SessionStore> SessionIndex<S> {
    pub(crate) fn new(store: Store, inner: S) -> Self {
        Self { inner, store }
    }

    async fn index(&self, record: &Record) -> session_store::Result<Indexed> {
        let Some(user_id) = owner(record) else { return Ok(Indexed::Anonymous) };
        let agent = record.data.get(AGENT_KEY).and_then(|v| v.as_str()).unwrap_or_default();
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let since = record.data.get(SINCE_KEY).and_then(|v| v.as_i64()).unwrap_or(now);
        match self.store.index_session(&record.id.to_string(), user_id, since, now, agent).await {
            Ok(()) => Ok(Indexed::Done),
            Err(sqlx::Error::Database(e)) if e.is_foreign_key_violation() => Ok(Indexed::UserGone),
            Err(e) => Err(Error::Backend(format!("cannot index the session: {e}"))),
        }
    }

    /// Ends a session whose user was deleted, instead of saving it.
    async fn end_orphan(&self, id: &Id) -> session_store::Result<()> {
        tracing::info!("a session of a deleted user was ended instead of saved");
        self.inner.delete(id).await
    }
}

/// The logged-in user of a record, if any.
fn owner(record: &Record) -> Option<UserId> {
    record.data.get(USER_KEY)?.get("id")?.as_i64().map(UserId)
}

#[async_trait::async_trait]
impl<S: SessionStore> SessionStore for SessionIndex<S> {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        let indexed_as = record.id;
        match self.index(record).await? {
            Indexed::UserGone => return Ok(()),
            Indexed::Anonymous | Indexed::Done => {}
        }
        self.inner.create(record).await?;
        // A store may pick another id on a collision (ours never does): index that one too.
        if record.id != indexed_as {
            if let Indexed::UserGone = self.index(record).await? {
                return self.end_orphan(&record.id).await;
            }
        }
        Ok(())
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        match self.index(record).await? {
            Indexed::UserGone => self.end_orphan(&record.id).await,
            Indexed::Anonymous | Indexed::Done => self.inner.save(record).await,
        }
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        self.inner.load(id).await
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        // The index row stays until the cleanup: listings join the session table, so it no
        // longer shows, and a logout or a login's id rotation costs no second statement.
        self.inner.delete(id).await
    }
}

/// Ends these sessions now (revocation, "log out everywhere else", account deletion): deleted
/// through `sessions`, the whole stack, so the in-process cache forgets them too, then dropped
/// from the index.
pub(crate) async fn end_sessions<S: SessionStore>(
    sessions: &S,
    store: &Store,
    session_ids: &[String],
) -> Result<(), Error> {
    for raw in session_ids {
        // An id that does not parse was never one of tower-sessions' (its ids always do).
        if let Ok(id) = Id::from_str(raw) {
            sessions.delete(&id).await?;
        }
    }
    store.forget_sessions(session_ids).await.map_err(|e| Error::Backend(e.to_string()))
}
