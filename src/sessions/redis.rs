//! Sessions in Redis (`[sessions] url = "redis://..."`), while users and identities stay in the
//! database: the store several instances share when their sessions should not load the database.
//!
//! It does what [`super::SqlSessions`] does, in the same encoding (MessagePack records), so the rest
//! of loginwith cannot tell them apart — pending logins, id rotation, expiry, logout, a user's list
//! of sessions, ending them, and refusing a deleted user's session:
//!
//! - `{prefix}s:{id}`: a hash `data` (the record) and `owner` (the user id, or empty), expiring
//!   with the session (`EXPIREAT`), so Redis itself removes ended sessions;
//! - `{prefix}u:{user}`: the user's logged-in sessions, session id → `{"handle", "logged_in_at",
//!   "last_used_at", "user_agent"}` as JSON; entries whose session is gone are dropped when the
//!   list is read;
//! - `{prefix}gone:{user}`: written when a user is deleted: a session of theirs that a request
//!   still holds cannot be saved back afterwards (the database's foreign key does this for
//!   [`super::SqlSessions`]);
//! - every change is `PUBLISH`ed on `{prefix}sessions` with the session id, for the other
//!   instances' caches ([`spawn_listener`]).
//!
//! Each change is one Lua script: one round trip, and atomic, so the index never disagrees with
//! the sessions (a save moves the session between users' indexes, a logout removes it from its
//! owner's). The scripts touch keys they compute, so this needs one Redis server (or a primary
//! with replicas), not Redis Cluster.
//!
//! Why not `tower-sessions-redis-store`: it stores the record alone, under the bare id. The user
//! index, its atomicity with the save, the deleted-user refusal and the change channel would need
//! a second round trip around each of its calls, and could not be atomic with them. The client is
//! `fred` all the same, the client that store uses.

use crate::domain::secret::ConnectionUrl;
use crate::domain::UserId;
use crate::store::{SessionOwner, SessionSaved, UserSession};
use fred::clients::{Client, Pool};
use fred::interfaces::{ClientLike, EventInterface, HashesInterface, PubsubInterface};
use fred::types::config::{Config, ReconnectPolicy};
use fred::types::scripts::Script;
use fred::types::{Builder, Value};
use std::sync::{Arc, LazyLock};
use std::time::Duration;
use tower_sessions::session::Id;

/// How long a command may wait for Redis (queued while it reconnects) before the request gets a
/// 503.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(3);

/// Saves a session, moves it between users' indexes, refuses a deleted user's (returns 0).
static SAVE: LazyLock<Script> = LazyLock::new(|| {
    Script::from_lua(
        r#"
local key, id, uid = KEYS[1], ARGV[3], ARGV[4]
local exp, now, prefix, channel = tonumber(ARGV[2]), tonumber(ARGV[7]), ARGV[8], ARGV[9]
local previous = redis.call('HGET', key, 'owner')
if previous and previous ~= '' and previous ~= uid then
  redis.call('HDEL', prefix .. 'u:' .. previous, id)
end
if uid ~= '' and redis.call('EXISTS', prefix .. 'gone:' .. uid) == 1 then
  redis.call('DEL', key)
  redis.call('PUBLISH', channel, id)
  return 0
end
redis.call('HSET', key, 'data', ARGV[1], 'owner', uid)
redis.call('EXPIREAT', key, exp)
if uid ~= '' then
  local index = prefix .. 'u:' .. uid
  local meta = cjson.decode(ARGV[5])
  local old = redis.call('HGET', index, id)
  if old then meta.handle = cjson.decode(old).handle else meta.handle = ARGV[6] end
  redis.call('HSET', index, id, cjson.encode(meta))
  if redis.call('TTL', index) < exp - now then redis.call('EXPIREAT', index, exp) end
end
redis.call('PUBLISH', channel, id)
return 1
"#,
    )
});

/// Deletes a session and its index entry.
static DELETE: LazyLock<Script> = LazyLock::new(|| {
    Script::from_lua(
        r#"
local owner = redis.call('HGET', KEYS[1], 'owner')
if owner and owner ~= '' then redis.call('HDEL', ARGV[2] .. 'u:' .. owner, ARGV[1]) end
redis.call('DEL', KEYS[1])
redis.call('PUBLISH', ARGV[3], ARGV[1])
return 1
"#,
    )
});

/// A user's live sessions as `id, meta, id, meta, ...`; drops index entries of ended sessions.
static LIST: LazyLock<Script> = LazyLock::new(|| {
    Script::from_lua(
        r#"
local out = {}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  if redis.call('HGET', ARGV[2] .. 's:' .. all[i], 'owner') == ARGV[1] then
    table.insert(out, all[i])
    table.insert(out, all[i + 1])
  else
    redis.call('HDEL', KEYS[1], all[i])
  end
end
return out
"#,
    )
});

/// A deleted user: marks them gone (no session of theirs can be saved from now on) and ends every
/// session of theirs; returns the ids ended.
static END_USER: LazyLock<Script> = LazyLock::new(|| {
    Script::from_lua(
        r#"
redis.call('SET', KEYS[2], '1', 'EX', tonumber(ARGV[4]))
local ended = {}
for _, id in ipairs(redis.call('HKEYS', KEYS[1])) do
  local key = ARGV[2] .. 's:' .. id
  if redis.call('HGET', key, 'owner') == ARGV[1] then
    redis.call('DEL', key)
    redis.call('PUBLISH', ARGV[3], id)
    table.insert(ended, id)
  end
end
redis.call('DEL', KEYS[1])
return ended
"#,
    )
});

/// Why `url` cannot name the session Redis, or `None` when it can (checked with the
/// configuration, before anything starts).
pub(crate) fn url_problem(url: &str) -> Option<String> {
    if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
        return Some("must be redis://HOST[:PORT][/DB] or rediss://... (one Redis server)".into());
    }
    Config::from_url_centralized(url).err().map(|e| format!("is not a usable Redis URL: {}", e.details()))
}

/// The URL as it may be logged: without its user name or password.
pub(crate) fn display_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            parsed.to_string()
        }
        Err(_) => "the configured Redis".to_owned(),
    }
}

/// Why the session Redis could not be used at start.
#[derive(Debug, thiserror::Error)]
#[error("cannot connect to the session store at {url}: {reason}")]
pub struct RedisError {
    /// The server, without credentials.
    pub url: String,
    /// What the client said.
    pub reason: String,
}

/// The session store in Redis (see the module doc).
#[derive(Clone)]
pub(crate) struct RedisSessions {
    pool: Pool,
    config: Arc<Config>,
    prefix: Arc<str>,
    channel: Arc<str>,
}

impl std::fmt::Debug for RedisSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSessions").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

/// One of a user's sessions as the index keeps it.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct IndexEntry {
    #[serde(default)]
    handle: String,
    logged_in_at: i64,
    last_used_at: i64,
    user_agent: String,
}

impl RedisSessions {
    /// Connects (and fails now, with the reason, when Redis does not answer): the client
    /// reconnects by itself afterwards, and commands wait for it at most [`COMMAND_TIMEOUT`].
    pub(crate) async fn connect(url: &ConnectionUrl, prefix: &str) -> Result<Self, RedisError> {
        let fail = |reason: String| RedisError { url: display_url(url.expose()), reason };
        let config = Config::from_url_centralized(url.expose()).map_err(|e| fail(e.details().to_owned()))?;
        let size = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(1, 8);
        let pool = Builder::from_config(config.clone())
            .with_performance_config(|p| p.default_command_timeout = COMMAND_TIMEOUT)
            .with_connection_config(|c| {
                c.connection_timeout = COMMAND_TIMEOUT;
                c.internal_command_timeout = COMMAND_TIMEOUT;
            })
            .set_policy(ReconnectPolicy::new_exponential(0, 100, 2_000, 2))
            .build_pool(size)
            .map_err(|e| fail(e.details().to_owned()))?;
        pool.init().await.map_err(|e| fail(e.details().to_owned()))?;
        Ok(Self {
            pool,
            config: Arc::new(config),
            prefix: prefix.into(),
            channel: format!("{prefix}sessions").into(),
        })
    }

    fn session_key(&self, id: &str) -> String {
        format!("{}s:{id}", self.prefix)
    }

    fn index_key(&self, user: UserId) -> String {
        format!("{}u:{}", self.prefix, user.0)
    }

    /// Whether Redis answers now (for `/readyz`).
    pub(crate) async fn ping(&self) -> bool {
        use fred::interfaces::ClientLike as _;
        matches!(
            tokio::time::timeout(COMMAND_TIMEOUT, self.pool.next().ping::<String>(None)).await,
            Ok(Ok(_))
        )
    }

    /// Writes a session (its MessagePack `data`), with its owner when logged in.
    pub(crate) async fn save(
        &self,
        id: &str,
        data: Vec<u8>,
        expiry: time::OffsetDateTime,
        owner: Option<SessionOwner<'_>>,
    ) -> Result<SessionSaved, fred::error::Error> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let (uid, meta) = match owner {
            Some(owner) => {
                let entry = IndexEntry {
                    handle: String::new(),
                    logged_in_at: owner.logged_in_at,
                    last_used_at: now,
                    user_agent: owner.user_agent.to_owned(),
                };
                (owner.user_id.0.to_string(), serde_json::to_string(&entry).unwrap_or_default())
            }
            None => (String::new(), String::new()),
        };
        let args: Vec<Value> = vec![
            Value::Bytes(data.into()),
            expiry.unix_timestamp().into(),
            id.into(),
            uid.into(),
            meta.into(),
            crate::domain::secret::random_token(12).into(),
            now.into(),
            self.prefix.as_ref().into(),
            self.channel.as_ref().into(),
        ];
        let saved: i64 = SAVE.evalsha_with_reload(self.pool.next(), vec![self.session_key(id)], args).await?;
        Ok(if saved == 1 { SessionSaved::Saved } else { SessionSaved::OwnerGone })
    }

    /// A session's `data`, unless it ended (Redis expires it with the session).
    pub(crate) async fn load(&self, id: &str) -> Result<Option<Vec<u8>>, fred::error::Error> {
        let data: Option<Vec<u8>> = self.pool.next().hget(self.session_key(id), "data").await?;
        Ok(data)
    }

    /// Deletes a session.
    pub(crate) async fn delete(&self, id: &str) -> Result<(), fred::error::Error> {
        let args: Vec<Value> = vec![id.into(), self.prefix.as_ref().into(), self.channel.as_ref().into()];
        let _: i64 = DELETE.evalsha_with_reload(self.pool.next(), vec![self.session_key(id)], args).await?;
        Ok(())
    }

    /// The user's live sessions, most recently used first.
    pub(crate) async fn sessions_of(&self, user: UserId) -> Result<Vec<UserSession>, fred::error::Error> {
        let args: Vec<Value> = vec![user.0.to_string().into(), self.prefix.as_ref().into()];
        let flat: Vec<String> =
            LIST.evalsha_with_reload(self.pool.next(), vec![self.index_key(user)], args).await?;
        let mut sessions: Vec<UserSession> = flat
            .chunks_exact(2)
            .filter_map(|pair| {
                // An entry that does not parse was not written by this module: not listed.
                let entry: IndexEntry = serde_json::from_str(&pair[1]).ok()?;
                Some(UserSession {
                    handle: entry.handle,
                    session_id: pair[0].clone(),
                    created_at: entry.logged_in_at,
                    last_used_at: entry.last_used_at,
                    user_agent: entry.user_agent,
                })
            })
            .collect();
        sessions.sort_by_key(|s| std::cmp::Reverse((s.last_used_at, s.created_at)));
        Ok(sessions)
    }

    /// After the user's deletion from the database: no session of theirs can be saved any more,
    /// and every one of them ends. Returns the ids ended.
    pub(crate) async fn end_user(&self, user: UserId) -> Result<Vec<String>, fred::error::Error> {
        let gone = format!("{}gone:{}", self.prefix, user.0);
        let args: Vec<Value> = vec![
            user.0.to_string().into(),
            self.prefix.as_ref().into(),
            self.channel.as_ref().into(),
            // Longer than any request can hold a session; a day would do, the idle time is sure.
            super::SESSION_IDLE.whole_seconds().into(),
        ];
        END_USER.evalsha_with_reload(self.pool.next(), vec![self.index_key(user), gone], args).await
    }

    /// Keeps `cache` coherent with the other instances for as long as the process runs: their
    /// changes, published on `{prefix}sessions`, drop our copies. A connection of its own,
    /// without automatic reconnection, so that losing it is noticed: the cache is then
    /// distrusted (emptied and bypassed) until a new subscription stands.
    pub(crate) fn spawn_listener(&self, cache: super::SessionCache) {
        let config = Config::clone(&self.config);
        let channel = self.channel.to_string();
        tokio::spawn(async move {
            let mut wait = Duration::from_millis(100);
            loop {
                match listen(&config, &channel, &cache).await {
                    Ok(why) => {
                        tracing::warn!(reason = %why, "lost the session-change channel; reading every session from Redis until it is back")
                    }
                    Err(err) => {
                        tracing::warn!(error = %err.details(), "cannot listen for other instances' session changes; reading every session from Redis")
                    }
                }
                cache.distrust();
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(5));
            }
        });
    }
}

/// One subscription: returns why it ended (its connection closed, or messages were dropped).
async fn listen(
    config: &Config,
    channel: &str,
    cache: &super::SessionCache,
) -> Result<String, fred::error::Error> {
    let client: Client = Builder::from_config(config.clone())
        .with_connection_config(|c| c.connection_timeout = COMMAND_TIMEOUT)
        .with_performance_config(|p| p.default_command_timeout = COMMAND_TIMEOUT)
        .build()?;
    let mut connection = client.init().await?;
    let mut messages = client.message_rx();
    client.subscribe(channel).await?;
    // Subscribed: every change from now on is heard; what changed before is not known.
    cache.trust();
    let why = loop {
        tokio::select! {
            message = messages.recv() => match message {
                Ok(message) => {
                    let id = message.value.as_str().and_then(|s| s.parse::<Id>().ok());
                    if let Some(id) = id {
                        cache.forget(&id);
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    break format!("{n} change messages were dropped")
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break "the client closed".to_owned(),
            },
            ended = &mut connection => break match ended {
                Ok(Ok(())) => "the connection closed".to_owned(),
                Ok(Err(err)) => err.details().to_owned(),
                Err(_) => "the connection task ended".to_owned(),
            },
        }
    };
    cache.distrust();
    let _ = client.quit().await;
    Ok(why)
}

#[cfg(test)]
mod tests {
    //! The store's own rules against a real Redis (`LOGINWITH_TEST_REDIS_URL`, default the local
    //! one; skipped when none answers, unless `LOGINWITH_REQUIRE_REDIS=1`). The HTTP behaviour is
    //! tested through the server in tests/api (the session-store tests run on Redis too).
    use super::*;

    async fn store() -> Option<RedisSessions> {
        let url =
            std::env::var("LOGINWITH_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into());
        let prefix = format!("lwunit:{}:", crate::domain::secret::random_token(9));
        match RedisSessions::connect(&ConnectionUrl::new(url), &prefix).await {
            Ok(store) => Some(store),
            Err(err) if std::env::var("LOGINWITH_REQUIRE_REDIS").as_deref() != Ok("1") => {
                eprintln!("SKIPPED: {err}");
                None
            }
            Err(err) => panic!("Redis is required (LOGINWITH_REQUIRE_REDIS=1): {err}"),
        }
    }

    fn owner(user: i64) -> Option<SessionOwner<'static>> {
        Some(SessionOwner { user_id: UserId(user), logged_in_at: 1_700_000_000, user_agent: "Firefox" })
    }

    fn in_a_day() -> time::OffsetDateTime {
        time::OffsetDateTime::now_utc() + time::Duration::days(1)
    }

    /// A request that loaded a session before its user was deleted cannot save it back after:
    /// the save is refused and the session stays ended (what the foreign key does in SQL).
    #[tokio::test]
    async fn a_deleted_users_session_cannot_be_saved_back() {
        let Some(store) = store().await else { return };
        let user = UserId(7);
        assert_eq!(
            store.save("one", b"a".to_vec(), in_a_day(), owner(7)).await.unwrap(),
            SessionSaved::Saved
        );
        assert_eq!(
            store.save("two", b"b".to_vec(), in_a_day(), owner(7)).await.unwrap(),
            SessionSaved::Saved
        );
        assert_eq!(
            store.save("other", b"c".to_vec(), in_a_day(), owner(8)).await.unwrap(),
            SessionSaved::Saved
        );
        let mut ended = store.end_user(user).await.unwrap();
        ended.sort();
        assert_eq!(ended, ["one", "two"]);
        assert_eq!(store.load("one").await.unwrap(), None);
        // The late save of a request that still held it.
        let late = store.save("one", b"a2".to_vec(), in_a_day(), owner(7)).await.unwrap();
        assert_eq!(late, SessionSaved::OwnerGone);
        assert_eq!(store.load("one").await.unwrap(), None, "still ended");
        assert!(store.sessions_of(user).await.unwrap().is_empty());
        // Another user's session is untouched, and an anonymous session saves as before.
        assert_eq!(store.load("other").await.unwrap().as_deref(), Some(&b"c"[..]));
        assert_eq!(store.save("anon", b"d".to_vec(), in_a_day(), None).await.unwrap(), SessionSaved::Saved);
    }

    /// The index follows the sessions: a handle kept across saves, a session that changes hands
    /// moves between users' lists, a deleted or expired one leaves them.
    #[tokio::test]
    async fn each_users_list_follows_their_sessions() {
        let Some(store) = store().await else { return };
        store.save("s1", b"x".to_vec(), in_a_day(), owner(1)).await.unwrap();
        let first = store.sessions_of(UserId(1)).await.unwrap();
        assert_eq!(first.len(), 1);
        assert_eq!((first[0].session_id.as_str(), first[0].created_at), ("s1", 1_700_000_000));
        assert_eq!(first[0].user_agent, "Firefox");
        store.save("s1", b"y".to_vec(), in_a_day(), owner(1)).await.unwrap();
        assert_eq!(store.sessions_of(UserId(1)).await.unwrap()[0].handle, first[0].handle, "same handle");

        store.save("s1", b"z".to_vec(), in_a_day(), owner(2)).await.unwrap();
        assert!(store.sessions_of(UserId(1)).await.unwrap().is_empty(), "moved away");
        assert_eq!(store.sessions_of(UserId(2)).await.unwrap().len(), 1);
        store.save("s1", b"anon".to_vec(), in_a_day(), None).await.unwrap();
        assert!(store.sessions_of(UserId(2)).await.unwrap().is_empty(), "no longer logged in");

        store.save("s2", b"x".to_vec(), in_a_day(), owner(3)).await.unwrap();
        store
            .save("s3", b"x".to_vec(), time::OffsetDateTime::now_utc() - time::Duration::seconds(1), owner(3))
            .await
            .unwrap();
        let listed: Vec<String> =
            store.sessions_of(UserId(3)).await.unwrap().into_iter().map(|s| s.session_id).collect();
        assert_eq!(listed, ["s2"], "the expired one is not listed");
        store.delete("s2").await.unwrap();
        assert!(store.sessions_of(UserId(3)).await.unwrap().is_empty());
        assert_eq!(store.load("s2").await.unwrap(), None);
    }

    #[test]
    fn urls_are_checked_and_logged_without_credentials() {
        assert_eq!(url_problem("redis://127.0.0.1:6379/0"), None);
        assert!(url_problem("http://127.0.0.1").is_some());
        assert_eq!(display_url("redis://user:hunter2@cache:6380/1"), "redis://cache:6380/1");
    }
}
