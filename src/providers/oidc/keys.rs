//! A provider's signing keys (its JWKS), and the refetch when an ID token names a `kid` we do not
//! have — which is how key rotation looks from here.
//!
//! Two rules, each against a different failure:
//! - **One refetch in flight.** When a provider rotates its key, every login in flight meets the
//!   new `kid` at once. They share one refetch and wait for it (a `tokio::sync::Mutex` held for the
//!   whole fetch); whoever gets the lock next first looks again whether the key became known.
//!   Without this, the losers of the race would be refused by the rate limit below although the
//!   key they need was arriving.
//! - **At most one fruitless refetch per [`JWKS_REFETCH_INTERVAL`].** A flood of forged tokens with
//!   random `kid`s must not make us hammer the provider. Only a refetch that brought nothing new
//!   (no key we did not already have), or that failed, starts the quiet interval; a refetch that
//!   brought new keys is a real rotation and does not block the next one.
//!
//! This module never decides whether a token is valid; it only keeps the key set current.

use openidconnect::core::CoreJsonWebKeySet;
use openidconnect::JsonWebKey;
use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// At most one fruitless JWKS refetch per provider in this interval, however many unknown `kid`s
/// arrive.
pub const JWKS_REFETCH_INTERVAL: Duration = Duration::from_secs(10);

/// What a call to [`KeyCache::refresh_for`] did.
#[derive(Debug)]
pub enum Refresh<E> {
    /// The key was known already, or became known by a refetch someone else made meanwhile.
    Known,
    /// A fruitless refetch happened less than [`JWKS_REFETCH_INTERVAL`] ago: nothing fetched.
    RateLimited,
    /// Fetched, and the set held at least one key we did not have.
    NewKeys,
    /// Fetched, and the set held nothing new: the quiet interval starts.
    NothingNew,
    /// The fetch failed: the quiet interval starts too.
    Failed(E),
}

/// The current key set and the refetch gate.
#[derive(Debug)]
pub struct KeyCache {
    current: RwLock<Arc<CoreJsonWebKeySet>>,
    /// Held for the whole of a refetch; holds when the last fruitless refetch ended.
    refetch: tokio::sync::Mutex<Option<Instant>>,
}

impl Default for KeyCache {
    fn default() -> Self {
        Self {
            current: RwLock::new(Arc::new(CoreJsonWebKeySet::new(Vec::new()))),
            refetch: tokio::sync::Mutex::new(None),
        }
    }
}

impl KeyCache {
    /// The key set as it is now.
    pub fn current(&self) -> Arc<CoreJsonWebKeySet> {
        self.current
            .read()
            .map(|j| j.clone())
            .unwrap_or_else(|_| Arc::new(CoreJsonWebKeySet::new(Vec::new())))
    }

    /// Replaces the key set (at discovery).
    pub fn replace(&self, set: CoreJsonWebKeySet) {
        if let Ok(mut slot) = self.current.write() {
            *slot = Arc::new(set);
        }
    }

    /// Whether a key with this `kid` is in the current set.
    pub fn knows(&self, kid: &str) -> bool {
        self.current().keys().iter().any(|k| k.key_id().is_some_and(|id| id.as_str() == kid))
    }

    /// Makes sure the set is as fresh as the rules above allow for a token naming `kid`: `fetch`
    /// is called at most once, and only when no refetch is running, the `kid` is still unknown
    /// once it is our turn, and no fruitless refetch happened within the interval.
    pub async fn refresh_for<E, F, Fut>(&self, kid: &str, fetch: F) -> Refresh<E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<CoreJsonWebKeySet, E>>,
    {
        if self.knows(kid) {
            return Refresh::Known;
        }
        let mut last_fruitless = self.refetch.lock().await;
        // The refetch we waited for may have brought it.
        if self.knows(kid) {
            return Refresh::Known;
        }
        if last_fruitless.is_some_and(|at| at.elapsed() < JWKS_REFETCH_INTERVAL) {
            return Refresh::RateLimited;
        }
        match fetch().await {
            Ok(set) => {
                let before = self.current();
                let brought_new = set.keys().iter().any(|k| !before.keys().contains(k));
                self.replace(set);
                if brought_new {
                    *last_fruitless = None;
                    Refresh::NewKeys
                } else {
                    *last_fruitless = Some(Instant::now());
                    Refresh::NothingNew
                }
            }
            Err(err) => {
                *last_fruitless = Some(Instant::now());
                Refresh::Failed(err)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A key set of RSA public keys with these `kid`s (never used to verify anything here).
    fn set(kids: &[&str]) -> CoreJsonWebKeySet {
        let keys: Vec<_> = kids
            .iter()
            .map(|kid| json!({"kty": "RSA", "use": "sig", "kid": kid, "n": "sXchDaQe", "e": "AQAB"}))
            .collect();
        serde_json::from_value(json!({ "keys": keys })).unwrap()
    }

    #[tokio::test]
    async fn a_known_kid_fetches_nothing() {
        let cache = KeyCache::default();
        cache.replace(set(&["k1"]));
        let r = cache.refresh_for::<(), _, _>("k1", || async { panic!("no fetch for a known kid") }).await;
        assert!(matches!(r, Refresh::Known));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_unknown_kids_share_one_refetch() {
        let cache = Arc::new(KeyCache::default());
        cache.replace(set(&["k1"]));
        let fetches = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..64)
            .map(|_| {
                let (cache, fetches) = (cache.clone(), fetches.clone());
                tokio::spawn(async move {
                    cache
                        .refresh_for::<(), _, _>("k2", || async {
                            fetches.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            Ok(set(&["k1", "k2"]))
                        })
                        .await
                })
            })
            .collect();
        for task in tasks {
            let r = task.await.unwrap();
            assert!(matches!(r, Refresh::Known | Refresh::NewKeys), "{r:?}");
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        assert!(cache.knows("k2"));
    }

    #[tokio::test]
    async fn only_a_fruitless_refetch_starts_the_quiet_interval() {
        let cache = KeyCache::default();
        cache.replace(set(&["k1"]));
        // A rotation: new keys, so the next unknown kid may refetch at once.
        let r = cache.refresh_for::<(), _, _>("k2", || async { Ok(set(&["k1", "k2"])) }).await;
        assert!(matches!(r, Refresh::NewKeys));
        let r = cache.refresh_for::<(), _, _>("k3", || async { Ok(set(&["k2", "k3"])) }).await;
        assert!(matches!(r, Refresh::NewKeys), "a rotation does not block the next: {r:?}");
        // A forged kid: nothing new, then quiet.
        let r = cache.refresh_for::<(), _, _>("forged-1", || async { Ok(set(&["k2", "k3"])) }).await;
        assert!(matches!(r, Refresh::NothingNew));
        let r = cache
            .refresh_for::<(), _, _>("forged-2", || async { panic!("no fetch within the quiet interval") })
            .await;
        assert!(matches!(r, Refresh::RateLimited));
    }

    #[tokio::test]
    async fn a_failed_refetch_starts_the_quiet_interval() {
        let cache = KeyCache::default();
        let r = cache.refresh_for("k1", || async { Err("down") }).await;
        assert!(matches!(r, Refresh::Failed("down")));
        let r = cache.refresh_for::<&str, _, _>("k1", || async { panic!("no fetch") }).await;
        assert!(matches!(r, Refresh::RateLimited));
    }
}
