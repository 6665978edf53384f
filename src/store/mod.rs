//! Users and identities, in SQLite (the default) or PostgreSQL.
//!
//! One [`Store`] enum rather than a trait object: the two back ends run the *same* SQL (sqlx's
//! SQLite driver understands PostgreSQL's `$1` placeholders), so each query is written once and the
//! [`on_pool!`] macro runs it on whichever pool is configured. Only the migrations differ, for the
//! column types.
//!
//! The login rule lives in [`Store::record_login`]: find the identity by (provider, subject); else
//! link to the user who already owns a *verified* identity with the same address, but only when
//! this provider vouches for the address too; else create a user. Races (two first logins of the
//! same identity at once) are settled by the primary key on identities and a retry.

use crate::domain::{username_stem, ProviderName, UserId};
use crate::providers::Profile;
use serde::Serialize;
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};
use std::str::FromStr;
use std::time::Duration;

/// Runs the same query code on whichever pool the store holds.
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match $store {
            Store::Sqlite($pool) => $body,
            Store::Postgres($pool) => $body,
        }
    };
}

/// A database error, with what we were doing.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Could not open or migrate the database.
    #[error("cannot open the database")]
    Connect(#[source] sqlx::Error),
    /// Migrations failed.
    #[error("cannot migrate the database")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    /// A query failed.
    #[error("database query failed")]
    Query(#[from] sqlx::Error),
    /// Retries ran out (an unusual amount of contention on one identity or username).
    #[error("could not record the login after several attempts")]
    Contention,
}

/// The user database.
#[derive(Debug, Clone)]
pub enum Store {
    /// SQLite file (WAL).
    Sqlite(SqlitePool),
    /// PostgreSQL.
    Postgres(PgPool),
}

/// A user row.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct User {
    /// Our id.
    pub id: i64,
    /// The address they first logged in with.
    pub email: String,
    /// Unique, made from the address's local part.
    pub username: String,
    /// From the provider's profile.
    pub display_name: Option<String>,
    /// From the provider's profile (https only).
    pub avatar_url: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub last_login_at: i64,
}

/// An identity row, as `/api/me` shows it.
#[derive(Debug, Clone, Serialize, serde::Deserialize, sqlx::FromRow)]
pub struct Identity {
    /// Provider name.
    pub provider: String,
    /// Provider's account id.
    pub subject: String,
}

/// How a login was recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginKind {
    /// The identity was known.
    Returning,
    /// A new identity, attached to an existing user by a verified address.
    Linked,
    /// A new user.
    Created,
}

impl LoginKind {
    /// For the log line.
    pub fn as_str(self) -> &'static str {
        match self {
            LoginKind::Returning => "returning",
            LoginKind::Linked => "linked",
            LoginKind::Created => "new",
        }
    }
}

const USER_COLUMNS: &str = "id, email, username, display_name, avatar_url, created_at, last_login_at";

impl Store {
    /// Opens the database named by `url` and brings its schema up to date.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)
                .map_err(StoreError::Connect)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(5))
                // 1 MiB of page cache instead of 2: the hot data (sessions) is cached above the
                // database, and memory is a target (docs/performance.md).
                .pragma("cache_size", "-1024")
                .foreign_keys(true);
            create_private_database(options.get_filename()).map_err(|e| StoreError::Connect(e.into()))?;
            // The checkpointer reads little through its page cache: 64 KiB is plenty.
            let checkpointer_options = options.clone().pragma("cache_size", "-64");
            // Checkpoints copy the WAL into the database file and fsync it: milliseconds. Left to
            // SQLite they run inside whichever commit crosses 1,000 pages, stalling every request
            // queued behind it; a side connection does them instead (see `checkpoint_loop`). The
            // automatic ones stay as a safety net, at 20,000 pages.
            let options = options.pragma("wal_autocheckpoint", "20000");
            // One connection: SQLite allows one writer at a time, and with several connections
            // concurrent logins fought over the write lock through SQLite's busy handler, which
            // sleeps 1–25 ms between tries (callback p99 ~60 ms at 32 users). One connection turns
            // that into an async queue of sub-millisecond statements; reads are rare since
            // sessions are cached in memory. See docs/performance.md.
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                // sqlx pings a connection before lending it out, by default: one more round trip
                // to the worker thread per statement, for a local file that cannot go stale.
                .test_before_acquire(false)
                .connect_with(options)
                .await
                .map_err(StoreError::Connect)?;
            sqlx::migrate!("./migrations/sqlite").run(&pool).await.map_err(StoreError::Migrate)?;
            tokio::spawn(checkpoint_loop(pool.clone(), checkpointer_options));
            Ok(Store::Sqlite(pool))
        } else {
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(5))
                .connect(url)
                .await
                .map_err(StoreError::Connect)?;
            sqlx::migrate!("./migrations/postgres").run(&pool).await.map_err(StoreError::Migrate)?;
            Ok(Store::Postgres(pool))
        }
    }

    /// True when the database answers.
    pub async fn ping(&self) -> bool {
        on_pool!(self, pool => sqlx::query("SELECT 1").execute(pool).await.is_ok())
    }

    /// A user by id (for embedding apps: `CurrentUser::id` → the full row).
    pub async fn user(&self, id: UserId) -> Result<Option<User>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
        Ok(on_pool!(self, pool => sqlx::query_as::<_, User>(&sql).bind(id.0).fetch_optional(pool).await?))
    }

    /// The identities that log into a user, oldest first.
    pub async fn identities(&self, id: UserId) -> Result<Vec<Identity>, StoreError> {
        let sql = "SELECT provider, subject FROM identities WHERE user_id = $1 ORDER BY created_at, provider";
        Ok(on_pool!(self, pool => sqlx::query_as::<_, Identity>(sql).bind(id.0).fetch_all(pool).await?))
    }

    /// How many users exist (tests and the benchmark check for duplicates with it).
    pub async fn count_users(&self) -> Result<i64, StoreError> {
        let sql = "SELECT COUNT(*) FROM users";
        Ok(on_pool!(self, pool => sqlx::query_scalar::<_, i64>(sql).fetch_one(pool).await?))
    }

    /// Finds or creates the user for a provider's profile and stamps the login.
    pub async fn record_login(
        &self,
        provider: &ProviderName,
        profile: &Profile,
        now: i64,
    ) -> Result<(User, LoginKind), StoreError> {
        // Each pass either finds the identity, or tries to create it; a unique violation means a
        // concurrent login created it (or took our username) first, and the next pass sees that.
        for _ in 0..5 {
            if let Some(user) = self.returning(provider, profile, now).await? {
                return Ok((user, LoginKind::Returning));
            }
            let attempt = match self.link_target(profile).await? {
                Some(user_id) => {
                    self.link(provider, profile, user_id, now).await.map(|u| (u, LoginKind::Linked))
                }
                None => self.create(provider, profile, now).await.map(|u| (u, LoginKind::Created)),
            };
            match attempt {
                Ok(done) => return Ok(done),
                Err(sqlx::Error::Database(e)) if e.is_unique_violation() => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Contention)
    }

    /// A known identity: refresh its address and the user's last login.
    async fn returning(
        &self,
        provider: &ProviderName,
        profile: &Profile,
        now: i64,
    ) -> Result<Option<User>, StoreError> {
        // Two single statements, no transaction: each is atomic on its own, and a login racing
        // with another can only stamp the same values. (Fewer statements matter: on SQLite each is
        // a round trip to sqlx's worker thread; see docs/performance.md.)
        let update_identity = "UPDATE identities SET email = $1, email_normalized = $2, email_verified = $3 \
                               WHERE provider = $4 AND subject = $5 RETURNING user_id";
        let touch = format!("UPDATE users SET last_login_at = $1 WHERE id = $2 RETURNING {USER_COLUMNS}");
        let email = profile.email.as_str();
        let normalized = profile.email.normalized();
        Ok(on_pool!(self, pool => {
            let found: Option<i64> = sqlx::query_scalar(update_identity)
                .bind(email)
                .bind(&normalized)
                .bind(profile.email_verified)
                .bind(provider.as_str())
                .bind(profile.subject.as_str())
                .fetch_optional(pool)
                .await?;
            match found {
                None => None,
                Some(user_id) => sqlx::query_as::<_, User>(&touch).bind(now).bind(user_id).fetch_optional(pool).await?,
            }
        }))
    }

    /// The user to attach a new identity to: only when this provider vouches for the address *and*
    /// an existing identity was vouched for with the same address. An unverified address never
    /// links, in either direction (that would let anyone claim anyone's account).
    async fn link_target(&self, profile: &Profile) -> Result<Option<UserId>, StoreError> {
        if !profile.email_verified {
            return Ok(None);
        }
        let sql = "SELECT user_id FROM identities WHERE email_normalized = $1 AND email_verified \
                   ORDER BY created_at LIMIT 1";
        let normalized = profile.email.normalized();
        let found: Option<i64> =
            on_pool!(self, pool => sqlx::query_scalar(sql).bind(&normalized).fetch_optional(pool).await?);
        Ok(found.map(UserId))
    }

    async fn link(
        &self,
        provider: &ProviderName,
        profile: &Profile,
        user_id: UserId,
        now: i64,
    ) -> Result<User, sqlx::Error> {
        let touch = format!("UPDATE users SET last_login_at = $1 WHERE id = $2 RETURNING {USER_COLUMNS}");
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            insert_identity_sql(provider, profile, user_id, now).execute(&mut *tx).await?;
            let user = sqlx::query_as::<_, User>(&touch).bind(now).bind(user_id.0).fetch_one(&mut *tx).await?;
            tx.commit().await?;
            Ok(user)
        })
    }

    async fn create(
        &self,
        provider: &ProviderName,
        profile: &Profile,
        now: i64,
    ) -> Result<User, sqlx::Error> {
        let username = self.free_username(&username_stem(&profile.email)).await?;
        let insert_user = format!(
            "INSERT INTO users (email, username, display_name, avatar_url, created_at, last_login_at) \
             VALUES ($1, $2, $3, $4, $5, $5) RETURNING {USER_COLUMNS}"
        );
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let user = sqlx::query_as::<_, User>(&insert_user)
                .bind(profile.email.as_str())
                .bind(&username)
                .bind(profile.name.as_deref())
                .bind(profile.avatar.as_deref())
                .bind(now)
                .fetch_one(&mut *tx)
                .await?;
            insert_identity_sql(provider, profile, UserId(user.id), now).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(user)
        })
    }

    /// `stem`, or `stem2`, `stem3`, ... whichever is the first not taken.
    async fn free_username(&self, stem: &str) -> Result<String, sqlx::Error> {
        let sql = "SELECT username FROM users WHERE substr(username, 1, $2) = $1";
        let len = stem.chars().count() as i32;
        let taken: Vec<String> =
            on_pool!(self, pool => sqlx::query_scalar(sql).bind(stem).bind(len).fetch_all(pool).await?);
        Ok(first_free_username(stem, &taken))
    }
}

/// Creates a missing SQLite database file with mode 0600 before SQLite opens it: it holds every
/// session, so other local users must not read it, and SQLite would create it with the umask's
/// 0644. SQLite gives its `-wal` and `-shm` files the database file's mode. An empty file is a
/// valid empty database. An existing file is left as it is (its owner chose its mode).
fn create_private_database(path: &std::path::Path) -> std::io::Result<()> {
    let name = path.as_os_str();
    if name.is_empty() || name == ":memory:" || path.exists() {
        return Ok(());
    }
    match crate::app::create_private(path) {
        Ok(_) => Ok(()),
        // Created by someone else in between: theirs to decide.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Runs a PASSIVE checkpoint every second on a connection of its own, off the request path. A
/// passive checkpoint never blocks the writer; it copies what it can and leaves the rest for the
/// next round. Ends when the pool is closed.
async fn checkpoint_loop(pool: SqlitePool, options: SqliteConnectOptions) {
    use sqlx::{ConnectOptions, Connection};
    let mut conn = match options.connect().await {
        Ok(conn) => conn,
        Err(err) => {
            tracing::warn!(error = %err, "no checkpoint connection; SQLite checkpoints in line");
            return;
        }
    };
    let mut every = tokio::time::interval(Duration::from_secs(1));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !pool.is_closed() {
        every.tick().await;
        if let Err(err) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&mut conn).await {
            tracing::warn!(error = %err, "WAL checkpoint failed");
        }
    }
    let _ = conn.close().await;
}

fn insert_identity_sql<'q, DB: sqlx::Database>(
    provider: &'q ProviderName,
    profile: &'q Profile,
    user_id: UserId,
    now: i64,
) -> sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>
where
    &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    bool: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    sqlx::query(
        "INSERT INTO identities (provider, subject, user_id, email, email_normalized, email_verified, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(provider.as_str())
    .bind(profile.subject.as_str())
    .bind(user_id.0)
    .bind(profile.email.as_str())
    .bind(profile.email.normalized())
    .bind(profile.email_verified)
    .bind(now)
}

/// The first of `stem`, `stem2`, `stem3`, ... not in `taken`.
fn first_free_username(stem: &str, taken: &[String]) -> String {
    if !taken.iter().any(|t| t == stem) {
        return stem.to_owned();
    }
    (2u64..)
        .map(|n| format!("{stem}{n}"))
        .find(|candidate| !taken.iter().any(|t| t == candidate))
        .unwrap_or_else(|| format!("{stem}-{}", crate::domain::secret::random_token(6)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_count_up() {
        let taken = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(first_free_username("bob", &taken(&[])), "bob");
        assert_eq!(first_free_username("bob", &taken(&["bob", "bobby"])), "bob2");
        assert_eq!(first_free_username("bob", &taken(&["bob", "bob2"])), "bob3");
    }
}
