//! Coherent caches for several instances on one PostgreSQL (issue 11).
//!
//! Each instance caches sessions and accounts in memory. Migration 0005 makes PostgreSQL announce
//! every change that could make such a copy stale — a session row updated or deleted (logout,
//! revocation, id rotation, expiry, a user's deletion), a user or identity written — with
//! `NOTIFY` from triggers, sent when the change commits, at no extra statement for the writer.
//! [`spawn`] listens (sqlx's `PgListener`, one connection per instance) and drops the copies
//! named.
//!
//! While the listening connection is down, changes may go unheard: the caches are then
//! *distrusted* — emptied, and bypassed (every read goes to the database) until the listener is
//! back and subscribed, when they start again from empty. An instance starts distrusted, so
//! nothing is served from a cache before the first subscription. Stale data is never served;
//! the price of an outage of the listener is the database reads the cache would have saved.

use crate::domain::UserId;
use crate::sessions::SessionCache;
use crate::store::Store;
use sqlx::postgres::{PgListener, PgPool};
use std::str::FromStr;
use std::time::Duration;
use tower_sessions::session::Id;

/// The channels of migration 0005's triggers.
const SESSIONS_CHANNEL: &str = "loginwith_sessions";
const ACCOUNTS_CHANNEL: &str = "loginwith_accounts";

/// Listens for the other instances' changes for as long as the process runs (see the module doc).
/// `sessions` is the session cache when the sessions are in this database (with Redis, Redis
/// keeps it: `sessions::redis`).
pub(crate) fn spawn(pool: PgPool, sessions: Option<SessionCache>, store: Store) {
    tokio::spawn(async move {
        let mut wait = Duration::from_millis(100);
        loop {
            match subscribe(&pool).await {
                Ok(mut listener) => {
                    // Subscribed: from now on every change is heard; what changed before is not
                    // known, so start from empty.
                    if let Some(sessions) = &sessions {
                        sessions.trust();
                    }
                    store.reset_account_cache(true);
                    wait = Duration::from_millis(100);
                    let why = hear(&mut listener, sessions.as_ref(), &store).await;
                    tracing::warn!(error = %why, "lost the cache-coherence channel; reading every session from the database until it is back");
                }
                Err(err) => {
                    tracing::warn!(error = %err, "cannot listen for other instances' changes; reading every session from the database");
                }
            }
            if let Some(sessions) = &sessions {
                sessions.distrust();
            }
            store.reset_account_cache(false);
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(5));
        }
    });
}

async fn subscribe(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen_all([SESSIONS_CHANNEL, ACCOUNTS_CHANNEL]).await?;
    Ok(listener)
}

/// Drops the copies each notification names, until the connection fails; returns why.
async fn hear(listener: &mut PgListener, sessions: Option<&SessionCache>, store: &Store) -> sqlx::Error {
    loop {
        // `try_recv` says `None` when the connection was lost (notifications may have been
        // missed in between): treated as the end of this subscription.
        let notification = match listener.try_recv().await {
            Ok(Some(notification)) => notification,
            Ok(None) => return sqlx::Error::PoolClosed,
            Err(err) => return err,
        };
        match notification.channel() {
            SESSIONS_CHANNEL => {
                if let (Some(sessions), Ok(id)) = (sessions, Id::from_str(notification.payload())) {
                    sessions.forget(&id);
                }
            }
            ACCOUNTS_CHANNEL => {
                if let Ok(id) = notification.payload().parse::<i64>() {
                    store.forget_account(UserId(id));
                }
            }
            _ => {}
        }
    }
}
