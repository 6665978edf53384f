//! Users and identities, in SQLite (the default) or PostgreSQL.
//!
//! One [`Store`] over a [`Pool`] enum rather than a trait object: the two back ends run the *same*
//! SQL (sqlx's SQLite driver understands PostgreSQL's `$1` placeholders), so each query is written
//! once and the [`on_pool!`] macro runs it on whichever pool is configured. Only the migrations
//! differ, for the column types.
//!
//! The login rule lives in [`Store::record_login`]:
//! 1. Find the identity by (provider, subject) *and issuer*. A subject is only meaningful to the
//!    issuer that made it: when a provider's issuer changed, its old identities are never handed
//!    to the new issuer's subjects ([`StoreError::IssuerChanged`]).
//! 2. Else link to the user who owns an identity with the same address, but only when both sides
//!    may link: a verified address of a provider we trust (`trust_email_verified`), never the
//!    development provider's.
//! 3. Else create a user. Its username comes from a verified address, else from the provider's own
//!    login name, else it is a neutral `user-N`: an unverified `admin@corp.example` must not
//!    become `admin`.
//!
//! Races (two first logins of the same identity at once) are settled by the primary key on
//! identities and a retry. Reads of a user's account go through [`accounts::AccountCache`], which
//! every write here invalidates.

mod accounts;

use crate::domain::{username_stem, ProviderName, UserId};
use crate::hooks::{LoginEvent, LoginHook, LoginIdentity, LoginRefused};
use crate::providers::Profile;
pub use accounts::Account;
use accounts::AccountCache;
use serde::Serialize;
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// Runs the same query code on whichever pool the store holds.
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.pool {
            Pool::Sqlite($pool) => $body,
            Pool::Postgres($pool) => $body,
        }
    };
}

mod sessions;
pub use sessions::UserSession;
pub(crate) use sessions::{SessionOwner, SessionSaved};

/// A database error, with what we were doing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
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
    /// The host's login hook refused the login.
    #[error("the login was refused: {refused}")]
    Refused {
        /// The hook's refusal.
        refused: LoginRefused,
        /// The user whose new link or who was created and removed again, if any.
        user_id: Option<i64>,
    },
    /// Another server already serves this SQLite database file with its session cache on.
    #[error(
        "another loginwith server is already using the SQLite database {database}. SQLite is for one \
         instance: each keeps sessions in memory, so a logout on one would not be seen by the other. \
         Run several instances on PostgreSQL, or set [server] session_cache = false"
    )]
    SqliteInUse {
        /// The database file.
        database: String,
    },
    /// The identity was recorded under another issuer than the provider's current one.
    #[error("this account was registered with issuer {recorded}, but the provider is now configured with issuer {current}")]
    IssuerChanged {
        /// The issuer stored with the identity.
        recorded: String,
        /// The provider's issuer now.
        current: String,
    },
}

/// The connection pool of one of the two databases.
#[derive(Debug, Clone)]
pub enum Pool {
    /// SQLite file (WAL).
    Sqlite(SqlitePool),
    /// PostgreSQL.
    Postgres(PgPool),
}

/// A moment's view of a connection pool ([`Store::pool_stats`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    /// Open connections, idle or in use.
    pub size: u32,
    /// Open connections waiting for work.
    pub idle: u32,
    /// The most the pool opens.
    pub max: u32,
}

/// The user database.
#[derive(Debug, Clone)]
pub struct Store {
    pool: Pool,
    accounts: Arc<AccountCache>,
}

/// A user row.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
#[non_exhaustive]
pub struct User {
    /// Our id.
    pub id: i64,
    /// The address they logged in with: the first one, or the first verified one; `None` when
    /// no provider of theirs gave one (X has none).
    pub email: Option<String>,
    /// A provider we trust vouched for `email`.
    pub email_verified: bool,
    /// Unique: from a verified address, the provider's login name, or `user-N`.
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
#[derive(Debug, Clone, Serialize, serde::Deserialize, sqlx::FromRow, utoipa::ToSchema)]
#[non_exhaustive]
pub struct Identity {
    /// Provider name.
    pub provider: String,
    /// Provider's account id.
    pub subject: String,
    /// The address the provider gave at the last login, if it gave one.
    pub email: Option<String>,
    /// The provider vouched for it and is trusted to.
    pub email_verified: bool,
    /// Unix seconds: when it was linked.
    pub created_at: i64,
    /// Unix seconds: when it last logged in.
    pub last_login_at: i64,
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

/// One login to record: who the provider says this is, and how far to believe it.
#[derive(Debug, Clone, Copy)]
pub struct LoginRecord<'a> {
    /// The provider's name.
    pub provider: &'a ProviderName,
    /// Who issued the subject ([`crate::providers::Provider::issuer_binding`]).
    pub issuer: &'a str,
    /// The profile; its `email_verified` already says whether *we* believe it.
    pub profile: &'a Profile,
    /// The verified address may link this identity to another user's, and theirs to it.
    pub links: bool,
}

/// A user row as [`User`] reads it. No address is stored as `''` (the column predates addressless
/// providers and SQLite cannot drop a NOT NULL) and read back as `NULL`.
const USER_COLUMNS: &str =
    "id, NULLIF(email, '') AS email, email_verified, username, display_name, avatar_url, created_at, last_login_at";
/// Stamps a login on a user; a verified address replaces an unverified one, and any address fills
/// a missing one ($3 verified, $4 address, `''` for none).
const TOUCH_USER: &str = "UPDATE users SET last_login_at = $1, \
     email = CASE WHEN $4 = '' OR email_verified OR (NOT $3 AND email <> '') THEN email ELSE $4 END, \
     email_verified = email_verified OR $3 \
     WHERE id = $2 RETURNING id, NULLIF(email, '') AS email, email_verified, username, display_name, avatar_url, created_at, last_login_at";

impl Store {
    /// Opens the database named by `url` and brings its schema up to date; accounts are cached.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, true).await
    }

    /// Like [`Store::connect`]; `cache_accounts = false` reads every account from the database
    /// (for several instances sharing one database, where another instance's write would not
    /// invalidate this one's cache).
    pub async fn connect_with(url: &str, cache_accounts: bool) -> Result<Self, StoreError> {
        let pool = if url.starts_with("sqlite:") {
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
            Pool::Sqlite(pool)
        } else {
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(5))
                .connect(url)
                .await
                .map_err(StoreError::Connect)?;
            sqlx::migrate!("./migrations/postgres").run(&pool).await.map_err(StoreError::Migrate)?;
            Pool::Postgres(pool)
        };
        Ok(Store { pool, accounts: Arc::new(AccountCache::new(cache_accounts)) })
    }

    /// On SQLite, claims the database file for this process: an exclusive lock on
    /// `FILE-instance.lock` beside it, held as long as the returned file is open. A second server
    /// on the same file with the session cache on would keep serving sessions the first one ended
    /// (each has its own cache), so it is refused with [`StoreError::SqliteInUse`]. A server that
    /// is restarting may still hold the lock for a moment: it is retried for three seconds. `None`
    /// on PostgreSQL (several instances are its business) and for an in-memory database.
    pub(crate) async fn claim_sqlite_file(&self) -> Result<Option<std::fs::File>, StoreError> {
        let Pool::Sqlite(pool) = &self.pool else { return Ok(None) };
        let database = pool.connect_options().get_filename().to_path_buf();
        if database.as_os_str().is_empty() || database.as_os_str() == ":memory:" {
            return Ok(None);
        }
        let mut lock_path = database.clone().into_os_string();
        lock_path.push("-instance.lock");
        let lock_path = std::path::PathBuf::from(lock_path);
        let in_use = || StoreError::SqliteInUse { database: database.display().to_string() };
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| StoreError::Connect(e.into()))?;
        for _ in 0..30 {
            match file.try_lock() {
                Ok(()) => return Ok(Some(file)),
                Err(std::fs::TryLockError::WouldBlock) => {
                    tokio::time::sleep(Duration::from_millis(100)).await
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(StoreError::Connect(e.into())),
            }
        }
        Err(in_use())
    }

    /// Forgets the cached account of a user changed elsewhere (another instance).
    pub(crate) fn forget_account(&self, id: UserId) {
        self.accounts.invalidate(id);
    }

    /// Empties the account cache, and lets it serve again or not (see
    /// `crate::sessions::coherence`).
    pub(crate) fn reset_account_cache(&self, trusted: bool) {
        self.accounts.reset(trusted);
    }

    /// The connection pool (the session store shares it).
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// The connection pool's size, idle connections and maximum, for the metrics.
    pub fn pool_stats(&self) -> PoolStats {
        on_pool!(self, pool => PoolStats {
            size: pool.size(),
            idle: u32::try_from(pool.num_idle()).unwrap_or(u32::MAX),
            max: pool.options().get_max_connections(),
        })
    }

    /// True when the database answers.
    pub async fn ping(&self) -> bool {
        on_pool!(self, pool => sqlx::query("SELECT 1").execute(pool).await.is_ok())
    }

    /// A user by id (for embedding apps: `CurrentUser::id` → the full row).
    ///
    /// ```no_run
    /// # async fn page(lw: loginwith::Loginwith, user: loginwith::CurrentUser) -> Result<(), loginwith::StoreError> {
    /// if let Some(row) = lw.store().user(loginwith::UserId(user.id)).await? {
    ///     println!("{} since {}", row.username, row.created_at);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn user(&self, id: UserId) -> Result<Option<User>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
        Ok(on_pool!(self, pool => sqlx::query_as::<_, User>(&sql).bind(id.0).fetch_optional(pool).await?))
    }

    /// The identities that log into a user, oldest first.
    pub async fn identities(&self, id: UserId) -> Result<Vec<Identity>, StoreError> {
        let sql = "SELECT provider, subject, NULLIF(email, '') AS email, email_verified, created_at, last_login_at \
                   FROM identities WHERE user_id = $1 ORDER BY created_at, provider";
        Ok(on_pool!(self, pool => sqlx::query_as::<_, Identity>(sql).bind(id.0).fetch_all(pool).await?))
    }

    /// The user and their identities as they are now (from the cache, which every write here
    /// invalidates). `None` when the user no longer exists.
    pub async fn account(&self, id: UserId) -> Result<Option<Arc<Account>>, StoreError> {
        if let Some(account) = self.accounts.get(id) {
            return Ok(Some(account));
        }
        let generation = self.accounts.generation();
        let Some(user) = self.user(id).await? else { return Ok(None) };
        let account = Arc::new(Account { identities: self.identities(id).await?, user });
        self.accounts.insert_if_current(id, account.clone(), generation);
        Ok(Some(account))
    }

    /// Disconnects `provider` from a user: removes the user's identities of that provider, unless
    /// none of another provider would remain (nobody locks themselves out).
    ///
    /// One transaction that first writes the user's row: on PostgreSQL that locks it, so two
    /// disconnects at once (of the last two providers) run one after the other and the second
    /// sees that it would remove the last; SQLite has one writer at a time anyway.
    pub async fn unlink_provider(&self, id: UserId, provider: &str) -> Result<Unlinked, StoreError> {
        let lock = "UPDATE users SET last_login_at = last_login_at WHERE id = $1";
        let others = "SELECT COUNT(*) FROM identities WHERE user_id = $1 AND provider <> $2";
        let delete = "DELETE FROM identities WHERE user_id = $1 AND provider = $2";
        let outcome = on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(lock).bind(id.0).execute(&mut *tx).await?;
            let others: i64 =
                sqlx::query_scalar(others).bind(id.0).bind(provider).fetch_one(&mut *tx).await?;
            let removed = sqlx::query(delete).bind(id.0).bind(provider).execute(&mut *tx).await?.rows_affected();
            let outcome = match (removed, others) {
                (0, _) => Unlinked::NotLinked,
                (_, 0) => Unlinked::LastIdentity,
                (n, _) => Unlinked::Removed(n),
            };
            if matches!(outcome, Unlinked::Removed(_)) {
                tx.commit().await?;
            }
            outcome
        });
        self.accounts.invalidate(id);
        Ok(outcome)
    }

    /// How many users exist (tests and the benchmark check for duplicates with it).
    pub async fn count_users(&self) -> Result<i64, StoreError> {
        let sql = "SELECT COUNT(*) FROM users";
        Ok(on_pool!(self, pool => sqlx::query_scalar::<_, i64>(sql).fetch_one(pool).await?))
    }

    /// Adopts `issuer` for this provider's identities recorded before issuers were stored, and
    /// counts those recorded under another issuer (they no longer log in). Run at start.
    pub async fn bind_issuer(
        &self,
        provider: &ProviderName,
        issuer: &str,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        let adopt = "UPDATE identities SET issuer = $1 WHERE provider = $2 AND issuer = ''";
        let others = "SELECT issuer, COUNT(*) FROM identities WHERE provider = $1 AND issuer <> $2 \
                      GROUP BY issuer ORDER BY issuer";
        Ok(on_pool!(self, pool => {
            sqlx::query(adopt).bind(issuer).bind(provider.as_str()).execute(pool).await?;
            sqlx::query_as::<_, (String, i64)>(others)
                .bind(provider.as_str())
                .bind(issuer)
                .fetch_all(pool)
                .await?
        }))
    }

    /// Finds or creates the user for a provider's profile and stamps the login.
    ///
    /// With a `hook` (the host's [`crate::LoginwithBuilder::on_login`]), the hook sees the user
    /// before the login is final and may refuse it: then nothing this login wrote remains (see
    /// [`crate::hooks`]).
    pub(crate) async fn record_login(
        &self,
        login: &LoginRecord<'_>,
        now: i64,
        hook: Option<&LoginHook>,
    ) -> Result<(User, LoginKind), StoreError> {
        let result = match hook {
            None => self.record_login_uncached(login, now).await,
            Some(hook) => self.record_login_with_hook(login, now, hook).await,
        };
        match &result {
            Ok((user, _)) => self.accounts.invalidate(UserId(user.id)),
            Err(StoreError::Refused { user_id: Some(id), .. }) => self.accounts.invalidate(UserId(*id)),
            Err(_) => {}
        }
        result
    }

    /// The login rule with the host's hook in it: a returning user is shown to the hook before
    /// the login is stamped; a new link or a new user is written, shown, and deleted again on a
    /// refusal (the hook needs the new user's id for its own tables).
    async fn record_login_with_hook(
        &self,
        login: &LoginRecord<'_>,
        now: i64,
        hook: &LoginHook,
    ) -> Result<(User, LoginKind), StoreError> {
        for _ in 0..5 {
            if let Some(user) = self.known_user(login).await? {
                hook.call(login_event(user, login, LoginKind::Returning))
                    .await
                    .map_err(|refused| StoreError::Refused { refused, user_id: None })?;
                match self.returning(login, now).await? {
                    Some(user) => return Ok((user, LoginKind::Returning)),
                    // Deleted in between: start over.
                    None => continue,
                }
            }
            if self.created_meanwhile(login).await? {
                continue;
            }
            let attempt = match self.link_target(login).await? {
                Some(user_id) => self.attach(login, user_id, now).await.map(|u| (u, LoginKind::Linked)),
                None => self.create(login, now).await.map(|u| (u, LoginKind::Created)),
            };
            let (user, kind) = match attempt {
                Ok(done) => done,
                Err(sqlx::Error::Database(e)) if e.is_unique_violation() => continue,
                Err(e) => return Err(e.into()),
            };
            if let Err(refused) = hook.call(login_event(user.clone(), login, kind)).await {
                self.undo(login, &user, kind).await?;
                return Err(StoreError::Refused { refused, user_id: Some(user.id) });
            }
            if kind == LoginKind::Linked {
                let touched = self.touch(login, UserId(user.id), now).await?;
                return Ok((touched.unwrap_or(user), kind));
            }
            return Ok((user, kind));
        }
        Err(StoreError::Contention)
    }

    /// Connects the identity of `login` to `user_id`, the logged-in user who asked for it ("connect
    /// another provider" on the account page): the safe way to join identities whose addresses
    /// differ or are not verified, since the person proved both logins in one session.
    ///
    /// An identity that already logs into another user is refused and nothing is merged or
    /// moved; one that is already this user's is only refreshed. The host's hook sees a new link
    /// as it sees one made at login, and may refuse it (then it is taken back).
    pub(crate) async fn connect_identity(
        &self,
        login: &LoginRecord<'_>,
        user_id: UserId,
        now: i64,
        hook: Option<&LoginHook>,
    ) -> Result<Connected, StoreError> {
        let result = self.connect_uncached(login, user_id, now, hook).await;
        self.accounts.invalidate(user_id);
        result
    }

    async fn connect_uncached(
        &self,
        login: &LoginRecord<'_>,
        user_id: UserId,
        now: i64,
        hook: Option<&LoginHook>,
    ) -> Result<Connected, StoreError> {
        let owner = "SELECT user_id FROM identities WHERE provider = $1 AND subject = $2";
        for _ in 0..3 {
            let found: Option<i64> = on_pool!(self, pool => sqlx::query_scalar(owner)
                .bind(login.provider.as_str())
                .bind(login.profile.subject.as_str())
                .fetch_optional(pool)
                .await?);
            match found {
                Some(owner) if owner != user_id.0 => return Ok(Connected::OtherUser),
                Some(_) => {
                    // Refreshes the address, or says the issuer changed.
                    self.created_meanwhile(login).await?;
                    self.returning(login, now).await?;
                    return Ok(Connected::AlreadyYours);
                }
                None => {}
            }
            let user = match self.attach(login, user_id, now).await {
                Ok(user) => user,
                // Connected concurrently (here or to someone else): look again.
                Err(sqlx::Error::Database(e)) if e.is_unique_violation() => continue,
                // The user was deleted meanwhile.
                Err(sqlx::Error::Database(e)) if e.is_foreign_key_violation() => {
                    return Ok(Connected::UserGone)
                }
                Err(e) => return Err(e.into()),
            };
            if let Some(hook) = hook {
                if let Err(refused) = hook.call(login_event(user.clone(), login, LoginKind::Linked)).await {
                    self.undo(login, &user, LoginKind::Linked).await?;
                    return Err(StoreError::Refused { refused, user_id: Some(user.id) });
                }
            }
            return Ok(Connected::Added);
        }
        Err(StoreError::Contention)
    }

    /// The user a known identity of this issuer logs into, without writing anything.
    async fn known_user(&self, login: &LoginRecord<'_>) -> Result<Option<User>, StoreError> {
        let sql = "SELECT u.id, NULLIF(u.email, '') AS email, u.email_verified, u.username, u.display_name, u.avatar_url, \
                   u.created_at, u.last_login_at FROM identities i JOIN users u ON u.id = i.user_id \
                   WHERE i.provider = $1 AND i.subject = $2 AND i.issuer = $3";
        Ok(on_pool!(self, pool => sqlx::query_as::<_, User>(sql)
            .bind(login.provider.as_str())
            .bind(login.profile.subject.as_str())
            .bind(login.issuer)
            .fetch_optional(pool)
            .await?))
    }

    /// A new identity for an existing user, without stamping the user (the hook may refuse).
    async fn attach(&self, login: &LoginRecord<'_>, user_id: UserId, now: i64) -> Result<User, sqlx::Error> {
        let select = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            insert_identity_sql(login, user_id, now).execute(&mut *tx).await?;
            let user = sqlx::query_as::<_, User>(&select).bind(user_id.0).fetch_one(&mut *tx).await?;
            tx.commit().await?;
            Ok(user)
        })
    }

    /// Stamps a login on a user (see [`TOUCH_USER`]).
    async fn touch(
        &self,
        login: &LoginRecord<'_>,
        user_id: UserId,
        now: i64,
    ) -> Result<Option<User>, StoreError> {
        Ok(on_pool!(self, pool => sqlx::query_as::<_, User>(TOUCH_USER)
            .bind(now)
            .bind(user_id.0)
            .bind(login.profile.email_verified)
            .bind(login.profile.address())
            .fetch_optional(pool)
            .await?))
    }

    /// Takes back what a refused login wrote: the new user (its identities go with it), or the
    /// new link.
    async fn undo(&self, login: &LoginRecord<'_>, user: &User, kind: LoginKind) -> Result<(), StoreError> {
        on_pool!(self, pool => match kind {
            LoginKind::Created => {
                sqlx::query("DELETE FROM users WHERE id = $1").bind(user.id).execute(pool).await?;
            }
            LoginKind::Linked => {
                sqlx::query("DELETE FROM identities WHERE provider = $1 AND subject = $2")
                    .bind(login.provider.as_str())
                    .bind(login.profile.subject.as_str())
                    .execute(pool)
                    .await?;
            }
            LoginKind::Returning => {}
        });
        Ok(())
    }

    async fn record_login_uncached(
        &self,
        login: &LoginRecord<'_>,
        now: i64,
    ) -> Result<(User, LoginKind), StoreError> {
        // Each pass either finds the identity, or tries to create it; a unique violation means a
        // concurrent login created it (or took our username) first, and the next pass sees that.
        for _ in 0..5 {
            if let Some(user) = self.returning(login, now).await? {
                return Ok((user, LoginKind::Returning));
            }
            if self.created_meanwhile(login).await? {
                continue;
            }
            let attempt = match self.link_target(login).await? {
                Some(user_id) => self.link(login, user_id, now).await.map(|u| (u, LoginKind::Linked)),
                None => self.create(login, now).await.map(|u| (u, LoginKind::Created)),
            };
            match attempt {
                Ok(done) => return Ok(done),
                Err(sqlx::Error::Database(e)) if e.is_unique_violation() => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Contention)
    }

    /// A known identity of this issuer: refresh its address and the user's last login.
    async fn returning(&self, login: &LoginRecord<'_>, now: i64) -> Result<Option<User>, StoreError> {
        // Two single statements, no transaction: each is atomic on its own, and a login racing
        // with another can only stamp the same values. (Fewer statements matter: on SQLite each is
        // a round trip to sqlx's worker thread; see docs/performance.md.)
        let update_identity =
            "UPDATE identities SET email = $1, email_normalized = $2, email_verified = $3, \
                               links = $4, last_login_at = $5 \
                               WHERE provider = $6 AND subject = $7 AND issuer = $8 RETURNING user_id";
        let profile = login.profile;
        let normalized = profile.normalized_address();
        Ok(on_pool!(self, pool => {
            let found: Option<i64> = sqlx::query_scalar(update_identity)
                .bind(profile.address())
                .bind(&normalized)
                .bind(profile.email_verified)
                .bind(login.links)
                .bind(now)
                .bind(login.provider.as_str())
                .bind(profile.subject.as_str())
                .bind(login.issuer)
                .fetch_optional(pool)
                .await?;
            match found {
                None => None,
                Some(user_id) => sqlx::query_as::<_, User>(TOUCH_USER)
                    .bind(now)
                    .bind(user_id)
                    .bind(profile.email_verified)
                    .bind(profile.address())
                    .fetch_optional(pool)
                    .await?,
            }
        }))
    }

    /// Whether this (provider, subject) exists under this issuer after all (a concurrent first
    /// login created it since the caller looked: look again), or under another issuer: a
    /// subject of one issuer is never given to another's users.
    async fn created_meanwhile(&self, login: &LoginRecord<'_>) -> Result<bool, StoreError> {
        match self.recorded_issuer(login).await? {
            Some(recorded) if recorded != login.issuer => {
                Err(StoreError::IssuerChanged { recorded, current: login.issuer.to_owned() })
            }
            Some(_) => Ok(true),
            None => Ok(false),
        }
    }

    /// The issuer this (provider, subject) was recorded under, if it exists.
    async fn recorded_issuer(&self, login: &LoginRecord<'_>) -> Result<Option<String>, StoreError> {
        let sql = "SELECT issuer FROM identities WHERE provider = $1 AND subject = $2";
        Ok(on_pool!(self, pool => sqlx::query_scalar(sql)
            .bind(login.provider.as_str())
            .bind(login.profile.subject.as_str())
            .fetch_optional(pool)
            .await?))
    }

    /// The user to attach a new identity to: only when this login may link (a trusted provider's
    /// verified address) *and* an existing identity may too, with the same address. An
    /// unverified or untrusted address never links, in either direction: that would let anyone
    /// claim anyone's account.
    async fn link_target(&self, login: &LoginRecord<'_>) -> Result<Option<UserId>, StoreError> {
        if !login.links {
            return Ok(None);
        }
        let sql = "SELECT user_id FROM identities WHERE email_normalized = $1 AND links \
                   ORDER BY created_at LIMIT 1";
        let normalized = login.profile.normalized_address();
        let found: Option<i64> =
            on_pool!(self, pool => sqlx::query_scalar(sql).bind(&normalized).fetch_optional(pool).await?);
        Ok(found.map(UserId))
    }

    async fn link(&self, login: &LoginRecord<'_>, user_id: UserId, now: i64) -> Result<User, sqlx::Error> {
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            insert_identity_sql(login, user_id, now).execute(&mut *tx).await?;
            let user = sqlx::query_as::<_, User>(TOUCH_USER)
                .bind(now)
                .bind(user_id.0)
                .bind(login.profile.email_verified)
                .bind(login.profile.address())
                .fetch_one(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(user)
        })
    }

    async fn create(&self, login: &LoginRecord<'_>, now: i64) -> Result<User, sqlx::Error> {
        let profile = login.profile;
        let username = match username_source(profile) {
            Some(stem) => self.free_username(&stem).await?,
            // Named after the row's id once it has one (below); this placeholder cannot collide
            // with a real username, whose characters never include '~'.
            None => format!("~{}", crate::domain::secret::random_token(12)),
        };
        let neutral = username.starts_with('~');
        let insert_user = format!(
            "INSERT INTO users (email, email_verified, username, display_name, avatar_url, created_at, last_login_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING {USER_COLUMNS}"
        );
        let rename =
            format!("UPDATE users SET username = 'user-' || id WHERE id = $1 RETURNING {USER_COLUMNS}");
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let mut user = sqlx::query_as::<_, User>(&insert_user)
                .bind(profile.address())
                .bind(profile.email_verified)
                .bind(&username)
                .bind(profile.name.as_deref())
                .bind(profile.avatar.as_deref())
                .bind(now)
                .fetch_one(&mut *tx)
                .await?;
            if neutral {
                user = sqlx::query_as::<_, User>(&rename).bind(user.id).fetch_one(&mut *tx).await?;
            }
            insert_identity_sql(login, UserId(user.id), now).execute(&mut *tx).await?;
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

/// What connecting an identity to the logged-in user did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Connected {
    /// The identity now logs into the user.
    Added,
    /// It already did (refreshed).
    AlreadyYours,
    /// It logs into another user: refused, nothing changed.
    OtherUser,
    /// The user no longer exists.
    UserGone,
}

/// What [`Store::unlink_provider`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Unlinked {
    /// This many identities of the provider were removed.
    Removed(u64),
    /// The user has no identity of that provider (nothing was changed).
    NotLinked,
    /// They are the user's only identities: refused, nothing was changed.
    LastIdentity,
}

/// What the hook is told about a login.
fn login_event(user: User, login: &LoginRecord<'_>, kind: LoginKind) -> LoginEvent {
    let profile = login.profile;
    LoginEvent {
        user,
        identity: LoginIdentity {
            provider: login.provider.as_str().to_owned(),
            subject: profile.subject.as_str().to_owned(),
            email: profile.email.as_ref().map(|e| e.as_str().to_owned()),
            email_verified: profile.email_verified,
            name: profile.name.clone(),
            avatar_url: profile.avatar.clone(),
        },
        new_user: kind == LoginKind::Created,
        new_link: kind == LoginKind::Linked,
    }
}

/// What a new user's username is made from: a verified address's local part, else the provider's
/// own login name; `None` means a neutral `user-N`. An unverified address never names anyone.
fn username_source(profile: &Profile) -> Option<String> {
    if let (true, Some(email)) = (profile.email_verified, &profile.email) {
        return Some(username_stem(email));
    }
    let login = profile.username.as_deref()?;
    let stem = crate::domain::username_stem_from(login);
    // "user" is what a login name of nothing but punctuation becomes: no better than neutral.
    (stem != "user").then_some(stem)
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
    match crate::sessions::create_private(path) {
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
    login: &'q LoginRecord<'q>,
    user_id: UserId,
    now: i64,
) -> sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>
where
    &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    bool: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    let profile = login.profile;
    sqlx::query(
        "INSERT INTO identities (provider, subject, issuer, user_id, email, email_normalized, email_verified, \
         links, created_at, last_login_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)",
    )
    .bind(login.provider.as_str())
    .bind(profile.subject.as_str())
    .bind(login.issuer)
    .bind(user_id.0)
    .bind(profile.address())
    .bind(profile.normalized_address())
    .bind(profile.email_verified)
    .bind(login.links)
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
