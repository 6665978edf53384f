//! The audit trail: one structured log line per login, refusal, logout, connected or disconnected
//! provider, revoked session, deleted account and rate-limit hit, under the target
//! `loginwith::audit`, so that it can be selected (`LOGINWITH_LOG=loginwith::audit=info`) and
//! written as JSON (`[log] format = "json"`).
//!
//! Every line has `event` and `client` (the client address, see [`crate::client`]); logins carry
//! `user_id`, `provider` and `outcome` (`new`, `returning`, `linked`); refusals carry `reason`, a
//! stable code, and `detail`, a sentence. Nothing here takes a token, a code, a state or a secret,
//! so none can be written: the functions accept only ids, names and our own error texts.
//!
//! Logins, refusals, logouts and rate-limit hits are also counted here ([`crate::metrics`]), with
//! the same provider, outcome, reason and area, so that the counters and the trail always agree.

use crate::client::ClientAddr;
use crate::limits::Area;
use crate::store::LoginKind;

/// The log target of audit lines.
pub const TARGET: &str = "loginwith::audit";

/// A user logged in.
pub fn login(client: ClientAddr, provider: &str, user_id: i64, kind: LoginKind) {
    crate::metrics::login(provider, kind);
    tracing::info!(
        target: TARGET,
        event = "login",
        outcome = kind.as_str(),
        user_id,
        provider,
        client = %client,
        "login"
    );
}

/// A login (or a logout) was refused; `reason` is a stable code, `detail` a sentence.
pub fn refusal(client: ClientAddr, provider: Option<&str>, reason: &'static str, detail: &str) {
    crate::metrics::refusal(provider, reason);
    tracing::info!(
        target: TARGET,
        event = "refusal",
        outcome = "refused",
        reason,
        provider = provider.unwrap_or(""),
        client = %client,
        detail,
        "refusal"
    );
}

/// A user logged out.
pub fn logout(client: ClientAddr, user_id: i64) {
    crate::metrics::logout();
    tracing::info!(target: TARGET, event = "logout", outcome = "logged_out", user_id, client = %client, "logout");
}

/// A logged-in user connected another identity to their account.
pub fn connected(client: ClientAddr, provider: &str, user_id: i64) {
    tracing::info!(target: TARGET, event = "connect", outcome = "connected", user_id, provider, client = %client, "provider connected");
}

/// A user disconnected a provider from their account.
pub fn unlinked(client: ClientAddr, user_id: i64, provider: &str) {
    tracing::info!(target: TARGET, event = "unlink", outcome = "unlinked", user_id, provider, client = %client, "provider disconnected");
}

/// A user ended `count` of their other sessions (one, or "everywhere else").
pub fn sessions_revoked(client: ClientAddr, user_id: i64, count: usize) {
    tracing::info!(target: TARGET, event = "revoke", outcome = "revoked", user_id, count, client = %client, "sessions revoked");
}

/// A user deleted their account, with its identities and `sessions` sessions.
pub fn account_deleted(client: ClientAddr, user_id: i64, sessions: usize) {
    tracing::info!(target: TARGET, event = "delete_account", outcome = "deleted", user_id, sessions, client = %client, "account deleted");
}

/// A client went over a rate limit.
pub fn rate_limited(client: ClientAddr, area: Area) {
    crate::metrics::rate_limited(area);
    tracing::info!(
        target: TARGET,
        event = "rate_limited",
        outcome = "refused",
        area = area.as_str(),
        client = %client,
        "rate limit"
    );
}
