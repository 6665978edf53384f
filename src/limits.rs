//! Per-client rate limits on the endpoints that cost us something per request: `/authorize`
//! (writes a pending attempt), `/callback` (may call the provider) and the development provider's
//! login page. Over the limit a client gets 429 with `Retry-After`, and an audit line.
//!
//! The limiter is `governor`'s keyed GCRA (one small state per client address, refilled steadily,
//! bursts up to the per-minute figure). We use `governor` directly rather than `tower_governor`
//! because the key is our own [`crate::client::ClientAddr`] (trusted-proxy rules), the refusal is
//! our own page, and the development provider must only be limited on its browser-facing page,
//! not on the token and key-set calls our own server makes to it. Idle client states are dropped
//! every minute, so memory follows the number of recent clients.

use crate::client::{client_addr, ClientAddr};
use crate::config::LimitsConfig;
use crate::error::AppError;
use crate::state::AppState;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

/// The rate-limited areas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Area {
    /// `/authorize/NAME`
    Authorize,
    /// `/callback/NAME`
    Callback,
    /// `/dev-provider/authorize`
    DevProvider,
}

impl Area {
    /// For logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Area::Authorize => "authorize",
            Area::Callback => "callback",
            Area::DevProvider => "dev-provider",
        }
    }
}

/// One limiter per area; `None` where the limit is 0 (off).
#[derive(Debug, Default)]
pub struct RateLimits {
    authorize: Option<Arc<DefaultKeyedRateLimiter<IpAddr>>>,
    callback: Option<Arc<DefaultKeyedRateLimiter<IpAddr>>>,
    dev_provider: Option<Arc<DefaultKeyedRateLimiter<IpAddr>>>,
}

impl RateLimits {
    /// The limiters of a `[limits]` section; starts the task that forgets idle clients.
    pub fn new(config: &LimitsConfig) -> Self {
        let limiter = |per_minute: u32| {
            NonZeroU32::new(per_minute).map(|n| Arc::new(RateLimiter::keyed(Quota::per_minute(n))))
        };
        let limits = Self {
            authorize: limiter(config.authorize_per_minute),
            callback: limiter(config.callback_per_minute),
            dev_provider: limiter(config.dev_provider_per_minute),
        };
        let all: Vec<_> = [&limits.authorize, &limits.callback, &limits.dev_provider]
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        if !all.is_empty() {
            tokio::spawn(async move {
                let mut every = tokio::time::interval(Duration::from_secs(60));
                loop {
                    every.tick().await;
                    for limiter in &all {
                        limiter.retain_recent();
                        limiter.shrink_to_fit();
                    }
                }
            });
        }
        limits
    }

    fn limiter(&self, area: Area) -> Option<&DefaultKeyedRateLimiter<IpAddr>> {
        match area {
            Area::Authorize => self.authorize.as_deref(),
            Area::Callback => self.callback.as_deref(),
            Area::DevProvider => self.dev_provider.as_deref(),
        }
    }

    /// `Err(seconds to wait)` when this client is over the area's limit.
    pub fn check(&self, area: Area, client: ClientAddr) -> Result<(), u64> {
        let (Some(limiter), ClientAddr(Some(ip))) = (self.limiter(area), client) else { return Ok(()) };
        limiter.check_key(&ip).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            // Round up: "Retry-After: 0" would invite an immediate retry that fails again.
            wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
        })
    }
}

/// Middleware for one area: 429 with `Retry-After` over the limit.
pub async fn limit(State((state, area)): State<(AppState, Area)>, request: Request, next: Next) -> Response {
    // The development provider is limited on its browser-facing page only: the token, key-set
    // and userinfo calls come from this very server.
    if area == Area::DevProvider && request.uri().path() != "/dev-provider/authorize" {
        return next.run(request).await;
    }
    let client = client_addr(
        request.extensions().get::<ConnectInfo<SocketAddr>>(),
        request.headers(),
        &state.trusted_proxies,
    );
    match state.limits.check(area, client) {
        Ok(()) => next.run(request).await,
        Err(retry_after_secs) => {
            crate::audit::rate_limited(client, area);
            AppError::RateLimited { retry_after_secs }.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn each_client_has_its_own_budget_and_a_retry_time() {
        let limits = RateLimits::new(&LimitsConfig {
            authorize_per_minute: 3,
            callback_per_minute: 0,
            dev_provider_per_minute: 1,
        });
        let a = ClientAddr(Some("192.0.2.1".parse().unwrap()));
        let b = ClientAddr(Some("192.0.2.2".parse().unwrap()));
        for _ in 0..3 {
            assert_eq!(limits.check(Area::Authorize, a), Ok(()));
        }
        let wait = limits.check(Area::Authorize, a).unwrap_err();
        assert!((1..=20).contains(&wait), "one request per 20 s refills: {wait}");
        assert_eq!(limits.check(Area::Authorize, b), Ok(()), "another client is not affected");
        // 0 means no limit; an unknown client is not limited.
        for _ in 0..100 {
            assert_eq!(limits.check(Area::Callback, a), Ok(()));
            assert_eq!(limits.check(Area::Authorize, ClientAddr(None)), Ok(()));
        }
    }
}
