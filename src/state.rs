//! The state every handler shares.

use crate::error::AppError;
use crate::oauth::http::ProviderHttp;
use crate::providers::Provider;
use crate::store::Store;
use std::ops::Deref;
use std::sync::Arc;
use url::Url;

/// Shared, cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState(Arc<Shared>);

/// What [`AppState`] holds.
#[derive(Debug)]
pub struct Shared {
    /// Configured providers, in button order.
    pub providers: Vec<Provider>,
    /// Users and identities.
    pub store: Store,
    /// The one client for provider calls.
    pub http: ProviderHttp,
    /// Base of every URL we hand out, without a trailing slash.
    pub public_url: String,
    /// `scheme://host[:port]` of `public_url`, for Origin checks.
    pub public_origin: String,
    /// The path of `public_url` (`""` or e.g. `/auth`): every route, link and redirect of ours
    /// starts with it.
    pub base_path: String,
    /// True when the development provider is the only one because nothing else was configured.
    pub dev_only: bool,
    /// Lifetime of a pending login, in seconds.
    pub login_ttl: i64,
    /// When `public_url` was not configured: its `host:port`, to send browsers that arrived by
    /// another loopback name (`localhost` for `127.0.0.1`) to the one the cookies belong to.
    pub canonical_host: Option<String>,
    /// Per-client rate limits.
    pub limits: crate::limits::RateLimits,
    /// Proxies whose `X-Forwarded-For` is believed (see [`crate::client`]).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// `Strict-Transport-Security` for loginwith's answers, only with an https `public_url`.
    pub hsts: Option<axum::http::HeaderValue>,
    /// `[server] after_login`: where a login without `next` lands (else the start page).
    pub after_login: Option<crate::domain::ReturnTo>,
    /// `[server] after_logout`: where a logout lands (else the start page).
    pub after_logout: Option<crate::domain::ReturnTo>,
    /// `[access]`: who may log in at all.
    pub access: crate::config::AccessConfig,
    /// `[gateway]`.
    pub gateway: crate::config::GatewayConfig,
    /// `[api]`.
    pub api: crate::config::ApiConfig,
    /// The host's login hook, if any.
    pub(crate) hook: Option<crate::hooks::LoginHook>,
    /// The session store (the same the session layer uses), to end other sessions than the
    /// request's own.
    pub(crate) sessions: crate::sessions::Sessions,
    /// The lock that keeps a second server off the same SQLite file
    /// (`Store::claim_sqlite_file`): held as long as anything serves with this state.
    pub(crate) _sqlite_claim: Option<Arc<std::fs::File>>,
}

impl AppState {
    /// Wraps the shared parts.
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }

    /// The provider called `name`, or the 404 error.
    pub fn provider(&self, name: &str) -> Result<&Provider, AppError> {
        self.providers
            .iter()
            .find(|p| p.name.as_str() == name)
            .ok_or_else(|| AppError::UnknownProvider(crate::domain::clip(name, 40)))
    }

    /// loginwith's start page: `{base}/`.
    pub fn start_page(&self) -> String {
        format!("{}/", self.base_path)
    }

    /// Where a browser goes after logging in: its `next`, else `after_login`, else the start page.
    pub fn after_login(&self, next: Option<&crate::domain::ReturnTo>) -> String {
        match next.or(self.after_login.as_ref()) {
            Some(to) => to.as_str().to_owned(),
            None => self.start_page(),
        }
    }

    /// Like [`AppState::after_login`], with the gateway's `rd` first.
    pub fn after_login_to(
        &self,
        rd: Option<&crate::domain::RedirectUrl>,
        next: Option<&crate::domain::ReturnTo>,
    ) -> String {
        match rd {
            Some(rd) => rd.as_str().to_owned(),
            None => self.after_login(next),
        }
    }

    /// Where a browser goes after logging out: `after_logout`, else the start page.
    pub fn after_logout(&self) -> String {
        match &self.after_logout {
            Some(to) => to.as_str().to_owned(),
            None => self.start_page(),
        }
    }

    /// `public_url` + `/callback/NAME`: what to register at the provider.
    pub fn redirect_uri(&self, name: &crate::domain::ProviderName) -> String {
        redirect_uri(&self.public_url, name)
    }
}

/// `public_url` + `/callback/NAME`.
pub fn redirect_uri(public_url: &str, name: &crate::domain::ProviderName) -> String {
    format!("{public_url}/callback/{name}")
}

/// `public_url` as text without a trailing slash, and its origin.
pub fn public_parts(url: &Url) -> (String, String) {
    let base = url.as_str().trim_end_matches('/').to_owned();
    let origin = url.origin().ascii_serialization();
    (base, origin)
}

impl Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}
