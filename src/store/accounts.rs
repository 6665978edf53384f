//! A small in-process cache of accounts (a user and their identities), so that `/api/me` stays a
//! memory lookup while always showing the identities as they are now, not as they were at login.
//!
//! Every write in the store that changes a user or their identities invalidates that user's
//! entry. A read that raced with a write must not put the old state back after the write
//! invalidated it, so entries carry the generation they were read at: a writer bumps the
//! generation under the same lock as its removal, and a reader only inserts when no write
//! happened since it started reading. Hand-written rather than a cache crate because that rule is
//! the whole point and it is a dozen lines.
//!
//! With several instances on one PostgreSQL, other instances' writes reach it through
//! `crate::sessions::coherence`, which also stops it serving while they might not.

use super::{Identity, User};
use crate::domain::UserId;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// How many accounts are kept; when full, the cache starts over (a rare, cheap reset beats
/// keeping recency order on every hit).
const CAPACITY: usize = 4_096;

/// A user and the identities that log into them.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Account {
    /// The user row.
    pub user: User,
    /// Their identities, oldest first.
    pub identities: Vec<Identity>,
}

#[derive(Debug, Default)]
struct Entries {
    generation: u64,
    accounts: HashMap<UserId, Arc<Account>>,
}

/// See the module doc.
#[derive(Debug)]
pub struct AccountCache {
    enabled: bool,
    /// Serving is allowed (see `crate::sessions::coherence`: false while this instance may be
    /// missing other instances' changes).
    trusted: std::sync::atomic::AtomicBool,
    entries: Mutex<Entries>,
}

impl AccountCache {
    pub(super) fn new(enabled: bool) -> Self {
        Self {
            enabled,
            trusted: std::sync::atomic::AtomicBool::new(true),
            entries: Mutex::new(Entries::default()),
        }
    }

    pub(super) fn get(&self, id: UserId) -> Option<Arc<Account>> {
        if !self.enabled || !self.trusted.load(std::sync::atomic::Ordering::Acquire) {
            return None;
        }
        self.entries.lock().ok()?.accounts.get(&id).cloned()
    }

    /// The generation to pass to [`AccountCache::insert_if_current`]; read it *before* reading
    /// the database.
    pub(super) fn generation(&self) -> u64 {
        self.entries.lock().map(|e| e.generation).unwrap_or(u64::MAX)
    }

    pub(super) fn insert_if_current(&self, id: UserId, account: Arc<Account>, generation: u64) {
        if !self.enabled || !self.trusted.load(std::sync::atomic::Ordering::Acquire) {
            return;
        }
        let Ok(mut entries) = self.entries.lock() else { return };
        if entries.generation != generation {
            return;
        }
        if entries.accounts.len() >= CAPACITY {
            entries.accounts.clear();
        }
        entries.accounts.insert(id, account);
    }

    /// Empties the cache and sets whether it may serve (see the field `trusted`).
    pub(super) fn reset(&self, trusted: bool) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.generation = entries.generation.wrapping_add(1);
            entries.accounts.clear();
            self.trusted.store(trusted, std::sync::atomic::Ordering::Release);
        }
    }

    /// Call *after* the write is committed.
    pub(super) fn invalidate(&self, id: UserId) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.generation = entries.generation.wrapping_add(1);
            entries.accounts.remove(&id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(email: &str) -> Arc<Account> {
        Arc::new(Account {
            user: User {
                id: 1,
                email: Some(email.into()),
                email_verified: false,
                username: "u".into(),
                display_name: None,
                avatar_url: None,
                created_at: 0,
                last_login_at: 0,
            },
            identities: Vec::new(),
        })
    }

    #[test]
    fn a_read_that_raced_a_write_is_not_cached() {
        let cache = AccountCache::new(true);
        let id = UserId(1);
        let before = cache.generation();
        // A write commits and invalidates while the read is in flight...
        cache.invalidate(id);
        // ...so the read's (old) result is dropped.
        cache.insert_if_current(id, account("old@example.com"), before);
        assert!(cache.get(id).is_none());
        // A read that started after the write is kept.
        let after = cache.generation();
        cache.insert_if_current(id, account("new@example.com"), after);
        assert_eq!(cache.get(id).and_then(|a| a.user.email.clone()).as_deref(), Some("new@example.com"));
        cache.invalidate(id);
        assert!(cache.get(id).is_none());
    }

    #[test]
    fn disabled_caches_nothing() {
        let cache = AccountCache::new(false);
        cache.insert_if_current(UserId(1), account("a@example.com"), cache.generation());
        assert!(cache.get(UserId(1)).is_none());
    }
}
