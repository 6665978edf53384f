//! Pending login attempts: what `/authorize/NAME` remembers so that `/callback/NAME` can check it.
//!
//! Attempts live in the server-side session (the cookie only carries the session id), keyed by
//! their `state`, so two tabs logging in at once each find their own. An attempt is used once:
//! taking it removes it, whatever the outcome. It expires after `ttl` seconds (default [`PENDING_TTL_SECS`]), and at most
//! [`MAX_PENDING`] are kept (the oldest is dropped), so a script hammering `/authorize` cannot grow
//! a session without bound.

use crate::domain::secret::{PkceVerifier, StateToken};
use crate::domain::{ProviderName, RedirectUrl, ReturnTo};
use serde::{Deserialize, Serialize};

/// The default lifetime of an attempt (`[server] login_timeout_secs`): ten minutes, longer than
/// any real login, shorter than a forgotten tab.
pub const PENDING_TTL_SECS: i64 = 600;
/// How many attempts one session may have in flight.
pub const MAX_PENDING: usize = 8;
/// The session key; namespaced so that nothing else collides with it.
pub const SESSION_KEY: &str = "oauth.pending";

/// One login attempt in flight.
#[derive(Debug, Serialize, Deserialize)]
pub struct PendingLogin {
    /// The `state` sent to the provider.
    pub state: StateToken,
    /// Which provider the attempt was for (mix-up defence: a state is only good at its own callback).
    pub provider: ProviderName,
    /// The PKCE verifier to send with the code.
    pub verifier: PkceVerifier,
    /// The OpenID Connect `nonce` the ID token must echo (absent for plain OAuth 2.0).
    #[serde(default)]
    pub nonce: Option<StateToken>,
    /// Unix seconds when the attempt began.
    pub created_at: i64,
    /// Where to send the browser after the login (`next`), already checked to be same-origin.
    #[serde(default)]
    pub next: Option<ReturnTo>,
    /// Where the gateway sends the browser after the login (`rd`), already checked to be on an
    /// allowed host; it wins over `next`.
    #[serde(default)]
    pub rd: Option<RedirectUrl>,
    /// "Connect another provider": the id of the logged-in user who started it. The identity is
    /// attached to that user, and only while that same user is logged in on this session.
    #[serde(default)]
    pub link_to: Option<i64>,
}

/// Why a callback's `state` could not be matched to an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// The callback carried no `state` at all.
    #[error("the provider's answer carried no state")]
    Missing,
    /// No attempt in this session has that state: forged, from another browser, or already used.
    #[error("this login link does not belong to a login started in this browser, or it was already used")]
    Unknown,
    /// The attempt exists but is older than ten minutes.
    #[error("this login attempt expired; please start again")]
    Expired,
    /// The attempt was started for another provider.
    #[error("this answer came back to a different provider than the login was started with")]
    WrongProvider,
}

/// The attempts of one session.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct PendingLogins(Vec<PendingLogin>);

impl PendingLogins {
    /// Adds an attempt, dropping expired ones and the oldest beyond the cap.
    pub fn push(&mut self, attempt: PendingLogin, now: i64, ttl: i64) {
        self.0.retain(|p| now - p.created_at < ttl);
        while self.0.len() >= MAX_PENDING {
            self.0.remove(0);
        }
        self.0.push(attempt);
    }

    /// Removes and returns the attempt with this state, if it is still good for this provider.
    ///
    /// The attempt is consumed even when it fails a check, so a state can never be tried twice.
    pub fn take(
        &mut self,
        state: &str,
        provider: &ProviderName,
        now: i64,
        ttl: i64,
    ) -> Result<PendingLogin, StateError> {
        let index = self.0.iter().position(|p| p.state.matches(state)).ok_or(StateError::Unknown)?;
        let attempt = self.0.remove(index);
        if now - attempt.created_at >= ttl {
            return Err(StateError::Expired);
        }
        if &attempt.provider != provider {
            return Err(StateError::WrongProvider);
        }
        Ok(attempt)
    }

    /// True when nothing is pending (the session key can then be removed).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(state: &str, provider: &str, at: i64) -> PendingLogin {
        PendingLogin {
            state: StateToken::new(state),
            provider: ProviderName::parse(provider).unwrap(),
            verifier: PkceVerifier::new("v"),
            nonce: None,
            created_at: at,
            next: None,
            rd: None,
            link_to: None,
        }
    }

    const T: i64 = PENDING_TTL_SECS;

    #[test]
    fn attempts_are_single_use_and_scoped() {
        let dev = ProviderName::parse("dev").unwrap();
        let mut p = PendingLogins::default();
        p.push(attempt("a", "dev", 0), 0, T);
        p.push(attempt("b", "dev", 0), 0, T);
        p.push(attempt("c", "github", 0), 0, T);
        assert!(p.take("a", &dev, 10, T).is_ok());
        assert_eq!(p.take("a", &dev, 10, T).unwrap_err(), StateError::Unknown);
        assert_eq!(p.take("c", &dev, 10, T).unwrap_err(), StateError::WrongProvider);
        assert_eq!(p.take("c", &dev, 10, T).unwrap_err(), StateError::Unknown);
        assert_eq!(p.take("b", &dev, PENDING_TTL_SECS, T).unwrap_err(), StateError::Expired);
    }

    #[test]
    fn the_list_is_capped() {
        let mut p = PendingLogins::default();
        for i in 0..20 {
            p.push(attempt(&i.to_string(), "dev", 0), 0, PENDING_TTL_SECS);
        }
        assert_eq!(p.0.len(), MAX_PENDING);
        assert_eq!(p.0[0].state.expose(), "12");
    }
}
