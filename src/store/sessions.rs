//! The session table, in the users' database: the SQL of `crate::sessions::SqlSessions`, and
//! the listings the account page and the JSON API read ([`Store::sessions_of`]).
//!
//! The table is the one tower-sessions-sqlx-store creates (`id`, `data` as MessagePack,
//! `expiry_date`), with the columns of migration 0004 beside it: the user, a public handle, the
//! login time, the last use and the user agent, written by the same upsert as the session. A
//! user's sessions are therefore a plain query, always in step with logout (the row is deleted),
//! id rotation (the old row is deleted, the new one written), expiry (`expiry_date`) and the
//! deletion of the user (`ON DELETE CASCADE`), without a statement more on the login path.

use super::{Pool, Store, StoreError};
use crate::domain::UserId;
use serde::Serialize;
use time::OffsetDateTime;

/// The session table on SQLite (tower-sessions-sqlx-store's default name).
const SQLITE_SESSIONS: &str = "tower_sessions";
/// The session table on PostgreSQL (tower-sessions-sqlx-store's default schema and name).
const POSTGRES_SESSIONS: &str = "\"tower_sessions\".\"session\"";

/// Who a session belongs to, as written beside it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SessionOwner<'a> {
    pub(crate) user_id: UserId,
    /// Unix seconds.
    pub(crate) logged_in_at: i64,
    pub(crate) user_agent: &'a str,
}

/// What saving a session did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SessionSaved {
    /// Written.
    Saved,
    /// Its user no longer exists: nothing was written (the session is ended).
    OwnerGone,
}

/// One of a user's live sessions.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
#[non_exhaustive]
pub struct UserSession {
    /// The session's public name: shown to its user and used to end it. The session id itself
    /// never leaves the server.
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

    /// Writes a session (its MessagePack `data`), with its owner when logged in: one upsert.
    /// A new logged-in row gets a random handle, which later saves keep.
    pub(crate) async fn save_session(
        &self,
        id: &str,
        data: &[u8],
        expiry: OffsetDateTime,
        owner: Option<SessionOwner<'_>>,
    ) -> Result<SessionSaved, sqlx::Error> {
        let sql = format!(
            "INSERT INTO {} (id, data, expiry_date, user_id, handle, logged_in_at, last_used_at, user_agent) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (id) DO UPDATE SET data = excluded.data, expiry_date = excluded.expiry_date, \
             user_id = excluded.user_id, handle = COALESCE({}.handle, excluded.handle), \
             logged_in_at = excluded.logged_in_at, last_used_at = excluded.last_used_at, \
             user_agent = excluded.user_agent",
            self.session_table(),
            self.session_table()
        );
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let handle = owner.map(|_| crate::domain::secret::random_token(12));
        let result = on_pool!(self, pool => sqlx::query(&sql)
            .bind(id)
            .bind(data)
            .bind(expiry)
            .bind(owner.map(|o| o.user_id.0))
            .bind(handle.as_deref())
            .bind(owner.map(|o| o.logged_in_at))
            .bind(owner.map(|_| now))
            .bind(owner.map(|o| o.user_agent))
            .execute(pool)
            .await
            .map(drop));
        match result {
            Ok(()) => Ok(SessionSaved::Saved),
            Err(sqlx::Error::Database(e)) if e.is_foreign_key_violation() => Ok(SessionSaved::OwnerGone),
            Err(e) => Err(e),
        }
    }

    /// A session's `data`, unless it is missing or expired.
    pub(crate) async fn load_session(&self, id: &str) -> Result<Option<Vec<u8>>, sqlx::Error> {
        let sql = format!("SELECT data FROM {} WHERE id = $1 AND expiry_date > $2", self.session_table());
        // Bound as tower-sessions-sqlx-store binds it, so rows it wrote compare the same way.
        let now = OffsetDateTime::now_utc();
        on_pool!(self, pool => sqlx::query_scalar(&sql).bind(id).bind(now).fetch_optional(pool).await)
    }

    /// Deletes a session.
    pub(crate) async fn delete_session(&self, id: &str) -> Result<(), sqlx::Error> {
        let sql = format!("DELETE FROM {} WHERE id = $1", self.session_table());
        on_pool!(self, pool => sqlx::query(&sql).bind(id).execute(pool).await.map(drop))
    }

    /// Deletes expired sessions; returns how many.
    pub(crate) async fn delete_expired_sessions(&self) -> Result<u64, sqlx::Error> {
        let sql = format!("DELETE FROM {} WHERE expiry_date < $1", self.session_table());
        let now = OffsetDateTime::now_utc();
        on_pool!(self, pool => sqlx::query(&sql).bind(now).execute(pool).await.map(|r| r.rows_affected()))
    }

    /// The user's live sessions, most recently used first.
    pub async fn sessions_of(&self, user_id: UserId) -> Result<Vec<UserSession>, StoreError> {
        let sql = format!(
            "SELECT handle, id AS session_id, logged_in_at AS created_at, last_used_at, \
             COALESCE(user_agent, '') AS user_agent FROM {} \
             WHERE user_id = $1 AND expiry_date > $2 AND handle IS NOT NULL \
             ORDER BY last_used_at DESC, logged_in_at DESC",
            self.session_table()
        );
        let now = OffsetDateTime::now_utc();
        Ok(on_pool!(self, pool => sqlx::query_as::<_, UserSession>(&sql)
            .bind(user_id.0)
            .bind(now)
            .fetch_all(pool)
            .await?))
    }

    /// Deletes a user: their identities and sessions go with them (ON DELETE CASCADE). Returns
    /// the ids of the sessions that ended, for the caller to drop from the session cache, or
    /// `None` when the user did not exist.
    ///
    /// One transaction: the ids are read in it, after a write that locks the user's row on
    /// PostgreSQL; a session saved meanwhile is either among them or, once the user is gone,
    /// cannot be saved at all (its upsert fails on the foreign key).
    pub(crate) async fn delete_user(&self, user_id: UserId) -> Result<Option<Vec<String>>, StoreError> {
        let lock = "UPDATE users SET last_login_at = last_login_at WHERE id = $1";
        let sessions = format!("SELECT id FROM {} WHERE user_id = $1", self.session_table());
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
