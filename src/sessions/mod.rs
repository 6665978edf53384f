//! Sessions: where they are stored, how long they live, and the key that signs their cookie.
//!
//! Sessions live in the same database as the users, so a login survives a restart, or in Redis
//! with `[sessions] url` ([`redis`]), behind an optional in-process cache ([`Backend`]). A session that only serves a login in flight is kept
//! for the login window, not the two weeks of a logged-in session ([`AnonymousExpiry`]).
//!
//! With several instances on one PostgreSQL, each instance's cache hears the others' changes
//! ([`coherence`], or Redis's channel when Redis holds the sessions) and is bypassed while it
//! cannot.
//!
//! The store is our own ([`SqlSessions`], its SQL in `store::sessions`) rather than
//! tower-sessions-sqlx-store, whose table it keeps using (same columns, same MessagePack
//! encoding, so sessions written by that store still load). Two reasons: a logged-in session's
//! row also names its user, login time and browser (the account page lists a user's sessions,
//! ends them, and deleting the user ends them all), which must be written by the same statement as
//! the session — a second statement per login was measured at +7–12 % server CPU per login flow
//! on SQLite (docs/performance.md); and creating a session is one upsert, where that store's
//! `create` is a three-statement transaction guarding against a collision of 128 random bits. The
//! cache is ours too, so that a session whose user was deleted is dropped from it rather than
//! cached when its save is refused, which tower-sessions' `CachingSessionStore` (saving to both
//! at once) cannot do, and so that it can be bypassed and emptied when it cannot be kept coherent.

pub(crate) mod coherence;
pub(crate) mod redis;

use crate::domain::secret::{random_token, SecretKey};
use crate::domain::UserId;
use crate::error::AppError;
use crate::store::{SessionOwner, SessionSaved, Store, UserSession};
use std::path::Path;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tower_sessions::cookie::{Key, SameSite};
use tower_sessions::service::SignedCookie;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, Error};
use tower_sessions::{Expiry, SessionManagerLayer, SessionStore};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "loginwith_session";
/// Logged-in sessions end after two weeks without activity.
pub(crate) const SESSION_IDLE: time::Duration = time::Duration::days(14);
/// How much longer than `login_timeout_secs` a session that only serves a login is kept, so that
/// someone who comes back just too late is told their login expired rather than that it is
/// unknown.
const ANONYMOUS_GRACE_SECS: i64 = 60;
/// Session keys that a login in flight writes for an anonymous visitor.
const ANONYMOUS_KEYS: [&str; 2] = [crate::oauth::pending::SESSION_KEY, "axum-messages.data"];
/// The session key of the browser's user agent at the login (written by `auth::log_in`: a store
/// never sees the request).
pub(crate) const AGENT_KEY: &str = "auth.agent";
/// The session key of the login's time (Unix seconds): it survives the id rotation of a later
/// callback ("connect another provider"), so the new row still says when the session logged in.
pub(crate) const SINCE_KEY: &str = "auth.since";
/// How many sessions the in-process cache keeps (about 300 bytes each).
///
/// Every page view loads its session; the cache turns that database read into a memory lookup
/// (see docs/performance.md). Writes still go to the database first, so a restart loses nothing.
/// With several instances on one PostgreSQL, a change made by one instance evicts the others'
/// copies ([`coherence`]).
const SESSION_CACHE_ENTRIES: u64 = 2_048;

/// The session table in the users' database (see the module doc).
#[derive(Debug, Clone)]
pub(crate) struct SqlSessions {
    store: Store,
}

impl SqlSessions {
    /// The session table of `store`'s database (its migrations create it).
    pub(crate) fn new(store: Store) -> Self {
        Self { store }
    }

    /// Deletes expired sessions every `every` (reads already ignore them).
    pub(crate) fn spawn_cleanup(&self, every: std::time::Duration) {
        let store = self.store.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                if let Err(err) = store.delete_expired_sessions().await {
                    tracing::warn!(error = %err, "could not delete expired sessions");
                }
            }
        });
    }

    /// Saves `record`, and says whether its user still exists (when it has one).
    async fn save_checked(&self, record: &Record) -> session_store::Result<SessionSaved> {
        let data = encode(record)?;
        self.store
            .save_session(&record.id.to_string(), &data, record.expiry_date, owner_of(record))
            .await
            .map_err(|e| Error::Backend(e.to_string()))
    }
}

/// A record as both stores keep it (MessagePack, as tower-sessions-sqlx-store wrote it).
fn encode(record: &Record) -> session_store::Result<Vec<u8>> {
    rmp_serde::to_vec(record).map_err(|e| Error::Encode(e.to_string()))
}

fn decode(bytes: &[u8]) -> session_store::Result<Record> {
    rmp_serde::from_slice(bytes).map_err(|e| Error::Decode(e.to_string()))
}

/// Who a logged-in record belongs to, as written beside it for the user's list of sessions.
fn owner_of(record: &Record) -> Option<SessionOwner<'_>> {
    let agent = record.data.get(AGENT_KEY).and_then(|v| v.as_str()).unwrap_or_default();
    owner(record).map(|user_id| SessionOwner {
        user_id,
        logged_in_at: record
            .data
            .get(SINCE_KEY)
            .and_then(|v| v.as_i64())
            .unwrap_or_else(|| time::OffsetDateTime::now_utc().unix_timestamp()),
        user_agent: agent,
    })
}

/// The logged-in user of a record, if any.
fn owner(record: &Record) -> Option<UserId> {
    record.data.get(crate::auth::USER_KEY)?.get("id")?.as_i64().map(UserId)
}

#[async_trait::async_trait]
impl SessionStore for SqlSessions {
    /// One upsert: a collision of two 128-bit random ids is not worth a transaction.
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        self.save(record).await
    }

    /// A session whose user is gone is not written (it ends; see [`Backend`] for the cache).
    async fn save(&self, record: &Record) -> session_store::Result<()> {
        self.save_checked(record).await.map(drop)
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let data =
            self.store.load_session(&id.to_string()).await.map_err(|e| Error::Backend(e.to_string()))?;
        data.map(|bytes| decode(&bytes)).transpose()
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        self.store.delete_session(&id.to_string()).await.map_err(|e| Error::Backend(e.to_string()))
    }
}

/// The whole session store: anonymous sessions kept short, in the database behind an optional
/// cache.
pub(crate) type Sessions = AnonymousExpiry<Backend>;

/// Assembles [`Sessions`], with `cache` in front of the durable store when given.
pub(crate) fn stack(durable: Durable, cache: Option<SessionCache>, login_timeout_secs: i64) -> Sessions {
    AnonymousExpiry::new(login_timeout_secs, Backend::new(durable, cache))
}

/// Where sessions are kept for good: the users' database, or Redis (`[sessions] url`).
#[derive(Debug, Clone)]
pub(crate) enum Durable {
    /// The session table of the users' database.
    Sql(SqlSessions),
    /// Redis.
    Redis(redis::RedisSessions),
}

impl Durable {
    async fn save_checked(&self, record: &Record) -> session_store::Result<SessionSaved> {
        match self {
            Durable::Sql(sql) => sql.save_checked(record).await,
            Durable::Redis(redis) => redis
                .save(&record.id.to_string(), encode(record)?, record.expiry_date, owner_of(record))
                .await
                .map_err(redis_failed),
        }
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        match self {
            Durable::Sql(sql) => sql.load(id).await,
            Durable::Redis(redis) => redis
                .load(&id.to_string())
                .await
                .map_err(redis_failed)?
                .map(|bytes| decode(&bytes))
                .transpose(),
        }
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        match self {
            Durable::Sql(sql) => sql.delete(id).await,
            Durable::Redis(redis) => redis.delete(&id.to_string()).await.map_err(redis_failed),
        }
    }
}

/// A Redis failure, as tower-sessions reports store failures (a 503: see `error.rs`). fred's
/// errors name the command's trouble, never its arguments.
fn redis_failed(err: fred::error::Error) -> Error {
    Error::Backend(format!("redis: {}", err.details()))
}

/// The durable store, with or without the in-process cache in front. Writes go to the store
/// first; the cache takes a record only once the store has it, and forgets one the store refused
/// (a deleted user's) or deleted.
#[derive(Debug, Clone)]
pub(crate) struct Backend {
    durable: Durable,
    cache: Option<SessionCache>,
}

impl Backend {
    pub(crate) fn new(durable: Durable, cache: Option<SessionCache>) -> Self {
        Self { durable, cache }
    }

    /// The user's live sessions, most recently used first.
    pub(crate) async fn sessions_of(
        &self,
        store: &Store,
        user: UserId,
    ) -> Result<Vec<UserSession>, AppError> {
        match &self.durable {
            Durable::Sql(_) => Ok(store.sessions_of(user).await?),
            Durable::Redis(redis) => {
                redis.sessions_of(user).await.map_err(|e| AppError::Session(redis_failed(e).into()))
            }
        }
    }

    /// Deletes the user (identities with them) and ends all their sessions; returns the ids of
    /// the sessions ended, or `None` when the user did not exist.
    ///
    /// With Redis, the user goes from the database first, then one script marks them gone and
    /// ends their sessions: a session saved before the script is in their index and ended by it,
    /// one saved after is refused (`redis` module doc).
    pub(crate) async fn delete_user(
        &self,
        store: &Store,
        user: UserId,
    ) -> Result<Option<Vec<String>>, AppError> {
        let deleted = store.delete_user(user).await?;
        let Durable::Redis(redis) = &self.durable else { return Ok(deleted) };
        if deleted.is_none() {
            return Ok(None);
        }
        let ended = redis.end_user(user).await.map_err(|e| AppError::Session(redis_failed(e).into()))?;
        if let Some(cache) = &self.cache {
            ended.iter().filter_map(|raw| Id::from_str(raw).ok()).for_each(|id| cache.forget(&id));
        }
        Ok(Some(ended))
    }

    /// Whether the session store answers, when it is not the database (`/readyz`).
    pub(crate) async fn ready(&self) -> bool {
        match &self.durable {
            Durable::Sql(_) => true,
            Durable::Redis(redis) => redis.ping().await,
        }
    }
}

/// The in-process session cache. It serves only while it is *trusted*: always on SQLite (one
/// instance per file), and on PostgreSQL only while this instance hears the other instances'
/// changes (`coherence`); untrusted, every read goes to the database and nothing is kept.
#[derive(Debug, Clone)]
pub(crate) struct SessionCache {
    entries: moka::sync::Cache<Id, Record>,
    trusted: Arc<AtomicBool>,
}

impl SessionCache {
    /// A cache that starts trusted or not.
    pub(crate) fn new(trusted: bool) -> Self {
        Self {
            entries: moka::sync::Cache::builder().max_capacity(SESSION_CACHE_ENTRIES).build(),
            trusted: Arc::new(AtomicBool::new(trusted)),
        }
    }

    fn get(&self, id: &Id) -> Option<Record> {
        if !self.trusted.load(Ordering::Acquire) {
            return None;
        }
        let record = self.entries.get(id)?;
        (record.expiry_date > time::OffsetDateTime::now_utc()).then_some(record)
    }

    fn put(&self, record: &Record) {
        if self.trusted.load(Ordering::Acquire) {
            self.entries.insert(record.id, record.clone());
        }
    }

    /// Forgets one session (changed or ended elsewhere).
    pub(crate) fn forget(&self, id: &Id) {
        self.entries.invalidate(id);
    }

    /// Stops serving (and keeping) anything until [`SessionCache::trust`]: changes made elsewhere
    /// may be going unheard.
    pub(crate) fn distrust(&self) {
        self.trusted.store(false, Ordering::Release);
        self.entries.invalidate_all();
    }

    /// Serves again, from empty (whatever was missed while distrusted is not in it).
    pub(crate) fn trust(&self) {
        self.entries.invalidate_all();
        self.trusted.store(true, Ordering::Release);
    }
}

#[async_trait::async_trait]
impl SessionStore for Backend {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        self.save(record).await
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let saved = self.durable.save_checked(record).await?;
        let Some(cache) = &self.cache else { return Ok(()) };
        match saved {
            SessionSaved::Saved => cache.put(record),
            SessionSaved::OwnerGone => {
                tracing::info!("a session of a deleted user was ended instead of saved");
                cache.forget(&record.id);
            }
        }
        Ok(())
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let Some(cache) = &self.cache else { return self.durable.load(id).await };
        if let Some(record) = cache.get(id) {
            crate::metrics::session_cache(true);
            return Ok(Some(record));
        }
        crate::metrics::session_cache(false);
        let record = self.durable.load(id).await?;
        if let Some(record) = &record {
            cache.put(record);
        }
        Ok(record)
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        self.durable.delete(id).await?;
        if let Some(cache) = &self.cache {
            cache.forget(id);
        }
        Ok(())
    }
}

/// Ends these sessions now (another session of the user's, "log out everywhere else", account
/// deletion): deleted through `sessions`, the whole stack, so the in-process cache forgets them
/// too and their next request is anonymous.
pub(crate) async fn end_sessions<S: SessionStore>(sessions: &S, session_ids: &[String]) -> Result<(), Error> {
    for raw in session_ids {
        // An id that does not parse was never one of tower-sessions' (its ids always do).
        if let Ok(id) = Id::from_str(raw) {
            sessions.delete(&id).await?;
        }
    }
    Ok(())
}

/// Keeps sessions that only serve a login in flight no longer than the login may take.
///
/// A session that holds nothing but pending attempts and flash messages (an anonymous visitor who
/// clicked "Login with X", or who came back with a provider error) is stored with an expiry of
/// `login_timeout_secs` plus a minute's grace instead of the two weeks of a logged-in session:
/// anonymous traffic leaves no long-lived rows, whatever it does. Each save pushes the expiry back
/// by the same short time; logging in (which adds the user) gives the session its full life. A
/// session that holds anything else (data an embedding app keeps for its visitors) keeps the
/// normal expiry. This sits outside the cache, so the cache and the database both see it.
#[derive(Debug, Clone)]
pub(crate) struct AnonymousExpiry<S> {
    inner: S,
    ttl: time::Duration,
}

impl AnonymousExpiry<Backend> {
    /// The store under the expiry rule (the user's sessions, readiness).
    pub(crate) fn backend(&self) -> &Backend {
        &self.inner
    }
}

impl<S> AnonymousExpiry<S> {
    pub(crate) fn new(login_timeout_secs: i64, inner: S) -> Self {
        Self { inner, ttl: time::Duration::seconds(login_timeout_secs + ANONYMOUS_GRACE_SECS) }
    }

    /// The record to store: the same, or a copy with the short expiry.
    fn clamp<'r>(&self, record: &'r Record) -> std::borrow::Cow<'r, Record> {
        let login_only = record.data.keys().all(|k| ANONYMOUS_KEYS.contains(&k.as_str()));
        let short = time::OffsetDateTime::now_utc() + self.ttl;
        if login_only && record.expiry_date > short {
            let mut clamped = record.clone();
            clamped.expiry_date = short;
            std::borrow::Cow::Owned(clamped)
        } else {
            std::borrow::Cow::Borrowed(record)
        }
    }
}

#[async_trait::async_trait]
impl<S: SessionStore> SessionStore for AnonymousExpiry<S> {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        let short = self.clamp(record).expiry_date;
        record.expiry_date = short;
        self.inner.create(record).await
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        self.inner.save(&self.clamp(record)).await
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        self.inner.load(id).await
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        self.inner.delete(id).await
    }
}

/// The session layer: signed cookie `loginwith_session`, HttpOnly, SameSite=Lax (not
/// tower-sessions' default Strict: the cookie must come back on the provider's top-level redirect
/// to the callback, a cross-site navigation), Secure with https, two weeks idle.
pub(crate) fn layer(
    store: Sessions,
    key: Key,
    secure: bool,
    path: &str,
    domain: Option<&str>,
) -> SessionManagerLayer<Sessions, SignedCookie> {
    let layer = SessionManagerLayer::new(store);
    // A Domain attribute shares the cookie with every subdomain (one login for several services
    // behind the gateway); without it the cookie stays with public_url's host alone.
    let layer = match domain {
        Some(domain) => layer.with_domain(domain.to_owned()),
        None => layer,
    };
    layer
        .with_name(SESSION_COOKIE)
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(secure)
        .with_path(path.to_owned())
        .with_expiry(Expiry::OnInactivity(SESSION_IDLE))
        .with_signed(key)
}

/// Why the cookie-signing key could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("cannot read or write the secret key file {path}")]
pub struct KeyFileError {
    /// The file.
    pub path: String,
    /// Why.
    #[source]
    pub source: std::io::Error,
}

/// The cookie-signing key: from `secret_key`, or generated once and kept in `secret_key_file`.
pub(crate) fn signing_key(secret: Option<&SecretKey>, file: &Path) -> Result<Key, KeyFileError> {
    let secret = match secret {
        Some(secret) => secret.clone(),
        None => load_or_create_key_file(file)?,
    };
    // HKDF from the configured secret to the 64 bytes cookie's Key wants, by the cookie crate
    // itself. The configuration and the key file guarantee the 32 bytes it needs (below that it
    // would panic), checked again here rather than trusted.
    let bytes = secret.expose().as_bytes();
    if bytes.len() < 32 {
        return Err(KeyFileError {
            path: file.display().to_string(),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "the secret key is shorter than 32 bytes",
            ),
        });
    }
    Ok(Key::derive_from(bytes))
}

fn load_or_create_key_file(path: &Path) -> Result<SecretKey, KeyFileError> {
    let err = |source| KeyFileError { path: path.display().to_string(), source };
    match std::fs::read_to_string(path) {
        Ok(text) if text.trim().len() >= 32 => return Ok(SecretKey::new(text.trim())),
        Ok(_) => {
            tracing::warn!(file = %path.display(), "secret key file is too short; writing a new key")
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(err(e)),
    }
    let key = random_token(48);
    write_private(path, &key).map_err(err)?;
    tracing::warn!(
        file = %path.display(),
        "no [server] secret_key configured: generated one and saved it in this file (fine for development; set secret_key in production)"
    );
    Ok(SecretKey::new(key))
}

/// Writes `text` to `path` readable by the owner only, atomically: a temporary file in the same
/// directory, created with mode 0600, synced, then renamed over `path`. A crash leaves either the
/// old file or the new one, never half a key, and a replaced file never keeps a looser mode.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let temp = dir.join(format!(".{file_name}.{}.tmp", random_token(6)));
    let result = (|| {
        let mut file = create_private(&temp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&temp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

/// Creates a new file that only its owner can read or write (on Unix; elsewhere the platform's
/// default permissions apply).
pub(crate) fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}
