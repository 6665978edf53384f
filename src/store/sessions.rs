//! The index from users to their sessions (`user_sessions`, migration 0003): the SQL only. The
//! rules (when a row is written, what happens when its user is gone) are in
//! `crate::sessions::index`; the account page and the JSON API use [`Store::sessions_of`].
//!
//! Whether a session is alive is decided by tower-sessions' own table, never by this index:
//! listings join it and skip expired rows, so a logout, an id rotation or an expiry shows at
//! once, and [`Store::forget_ended_sessions`] removes the rows left behind.

use super::{Pool, Store, StoreError};
use crate::domain::UserId;
use serde::Serialize;

/// tower-sessions-sqlx-store's default table, where the sessions themselves live.
const SQLITE_SESSIONS: &str = "tower_sessions";
const POSTGRES_SESSIONS: &str = "\"tower_sessions\".\"session\"";

/// One of a user's live sessions.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
#[non_exhaustive]
pub struct UserSession {
    /// The session's public name: shown to its user and used to revoke it. The session id
    /// itself never leaves the server.
    #[serde(rename = "id")]
    pub handle: String,
    /// The session id (the cookie's secret).
    #[serde(skip)]
    pub(crate) session_id: String,
    /// Unix seconds: when it logged in.
    pub created_at: i64,
    /// Unix seconds: when it was last saved (sessions are written at most about once a day when
    /// only read, so this is as precise as a day).
    pub last_used_at: i64,
    /// The browser's `User-Agent` at the login (clipped), or empty.
    pub user_agent: String,
}

impl Store {
    /// The table tower-sessions keeps the sessions in, on this database.
    fn session_table(&self) -> &'static str {
        match self.pool {
            Pool::Sqlite(_) => SQLITE_SESSIONS,
            Pool::Postgres(_) => POSTGRES_SESSIONS,
        }
    }

    /// Records that `session_id` is `user_id`'s, logged in at `since` and used `now` (only the
    /// latter changes when it is already known). Fails with a foreign-key violation when the user
    /// no longer exists.
    pub(crate) async fn index_session(
        &self,
        session_id: &str,
        user_id: UserId,
        since: i64,
        now: i64,
        user_agent: &str,
    ) -> Result<(), sqlx::Error> {
        let sql = "INSERT INTO user_sessions \
                   (session_id, handle, user_id, created_at, last_used_at, user_agent) \
                   VALUES ($1, $2, $3, $4, $5, $6) \
                   ON CONFLICT (session_id) DO UPDATE SET last_used_at = excluded.last_used_at, \
                   user_id = excluded.user_id";
        let handle = crate::domain::secret::random_token(12);
        on_pool!(self, pool => sqlx::query(sql)
            .bind(session_id)
            .bind(&handle)
            .bind(user_id.0)
            .bind(since)
            .bind(now)
            .bind(user_agent)
            .execute(pool)
            .await
            .map(drop))
    }

    /// The user's live sessions, most recently used first.
    pub async fn sessions_of(&self, user_id: UserId) -> Result<Vec<UserSession>, StoreError> {
        let sql = format!(
            "SELECT u.handle, u.session_id, u.created_at, u.last_used_at, u.user_agent \
             FROM user_sessions u JOIN {} s ON s.id = u.session_id \
             WHERE u.user_id = $1 AND s.expiry_date > $2 \
             ORDER BY u.last_used_at DESC, u.created_at DESC",
            self.session_table()
        );
        // Bound as the session store binds it in its own reads, so the comparison is the same.
        let now = time::OffsetDateTime::now_utc();
        Ok(on_pool!(self, pool => sqlx::query_as::<_, UserSession>(&sql)
            .bind(user_id.0)
            .bind(now)
            .fetch_all(pool)
            .await?))
    }

    /// Removes the index rows of sessions that were ended (the sessions themselves are deleted
    /// through the session store, which also clears its cache).
    pub(crate) async fn forget_sessions(&self, session_ids: &[String]) -> Result<(), StoreError> {
        let sql = "DELETE FROM user_sessions WHERE session_id = $1";
        for id in session_ids {
            on_pool!(self, pool => sqlx::query(sql).bind(id).execute(pool).await.map(drop)?);
        }
        Ok(())
    }

    /// Removes index rows whose session has ended (logged out, rotated away or expired). The
    /// server runs it every five minutes; it returns how many rows it removed.
    pub async fn forget_ended_sessions(&self) -> Result<u64, StoreError> {
        let sql = format!(
            "DELETE FROM user_sessions WHERE NOT EXISTS \
             (SELECT 1 FROM {} s WHERE s.id = user_sessions.session_id)",
            self.session_table()
        );
        Ok(on_pool!(self, pool => sqlx::query(&sql).execute(pool).await?.rows_affected()))
    }

    /// Deletes a user: their identities and index rows go with them (ON DELETE CASCADE). Returns
    /// the ids of the user's sessions, which the caller ends through the session store, or
    /// `None` when the user did not exist.
    ///
    /// One transaction: the ids are read in it, so a session indexed meanwhile is either among
    /// them or, once the user is gone, cannot be indexed (and therefore not saved) at all.
    pub(crate) async fn delete_user(&self, user_id: UserId) -> Result<Option<Vec<String>>, StoreError> {
        let lock = "UPDATE users SET last_login_at = last_login_at WHERE id = $1";
        let sessions = format!(
            "SELECT u.session_id FROM user_sessions u JOIN {} s ON s.id = u.session_id \
             WHERE u.user_id = $1",
            self.session_table()
        );
        let delete = "DELETE FROM users WHERE id = $1";
        let outcome = on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            if sqlx::query(lock).bind(user_id.0).execute(&mut *tx).await?.rows_affected() == 0 {
                None
            } else {
                let ids: Vec<String> =
                    sqlx::query_scalar(&sessions).bind(user_id.0).fetch_all(&mut *tx).await?;
                sqlx::query(delete).bind(user_id.0).execute(&mut *tx).await?;
                tx.commit().await?;
                Some(ids)
            }
        });
        self.accounts.invalidate(user_id);
        Ok(outcome)
    }
}
