//! Configuration: an optional TOML file, `LOGINWITH_*` environment variables, the seed's
//! `NAME_CLIENT_ID` / `NAME_CLIENT_SECRET` variables, and a `.env` file (loaded by `main`).
//!
//! Loading happens in two steps. `figment` merges the sources into one tree of values, each tagged
//! with where it came from; then [`Config::from_figment`] walks that tree by hand and collects
//! *every* problem (unknown key, wrong type, missing secret, malformed URL or JSON Pointer) with the
//! source that holds it, so a person fixes a bad file in one go. Serde's `deny_unknown_fields`
//! would stop at the first problem, which is why the walk is ours.
//!
//! This module never panics on a configuration and never prints a secret.
//!
//! # Layout
//! - this file: the validated [`Config`] and its section types, the entry points
//!   ([`Config::load`], [`Config::from_toml`], [`Config::from_figment`], [`Config::development`])
//!   and [`KNOWN_KEYS`];
//! - `env`: the environment as a source (`LOGINWITH_SECTION__KEY`, the seed's `NAME_CLIENT_ID`),
//!   always as strings;
//! - `walk`: the validating walk over the merged tree, and the small sections;
//! - `provider`: one `[providers.NAME]` table into a provider's configuration;
//! - `client_key`: its `private_key_jwt` key, read from `private_key_file` at load.

mod client_key;
mod env;
mod provider;
mod walk;

use env::{provider_names_in, seed_env_vars, EnvStrings, ENV_ENABLED_PRESETS};
use figment::providers::{Format, Toml};
use figment::value::Dict;
use figment::Figment;
use ipnet::IpNet;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use url::Url;
use walk::Walk;

// The types that the configuration's public fields are made of, so that code which builds or
// reads a `Config` can name them (they live in private modules: `domain` owns the validated
// values and secrets, `providers` the presets and protocol choices).
pub use crate::domain::secret::{ClientSecret, ConnectionUrl, SecretKey};
pub use crate::domain::{HostPattern, Issuer, ProviderName, ReturnTo};
pub use crate::oauth::client_auth::ClientKey;
pub use crate::providers::{AuthorizeParams, Preset, ResponseMode, TokenAuth, UserinfoPointers};

/// The default address: loopback only, the port the seed used.
pub const DEFAULT_BIND: &str = "127.0.0.1:5000";
/// The default database: a SQLite file in the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://loginwith.db";
/// One year: what HSTS preload lists ask for, and long enough that a browser that saw the site
/// once never tries plain http again.
pub const DEFAULT_HSTS_MAX_AGE_SECS: u64 = 31_536_000;

/// Every key the configuration knows, by table (`providers.*` is any provider's table). The walk
/// refuses anything else; tests generate configurations from it.
pub const KNOWN_KEYS: [(&str, &[&str]); 14] = [
    (
        "",
        &["server", "database", "http", "limits", "log", "access", "gateway", "api", "sessions", "providers"],
    ),
    (
        "server",
        &[
            "bind",
            "metrics_bind",
            "public_url",
            "secret_key",
            "secret_key_file",
            "login_timeout_secs",
            "session_cache",
            "hsts_max_age_secs",
            "trusted_proxies",
            "after_login",
            "after_logout",
            "cookie_domain",
            "shutdown_grace_secs",
        ],
    ),
    ("database", &["url"]),
    ("http", &["connect_timeout_ms", "timeout_ms", "max_response_bytes"]),
    ("limits", &["authorize_per_minute", "callback_per_minute", "dev_provider_per_minute"]),
    ("log", &["format"]),
    ("access", &["verified_only", "allowed_emails", "allowed_domains", "allowed_providers"]),
    ("gateway", &["enabled", "unauthenticated", "allowed_redirect_hosts", "rules"]),
    ("gateway.rules", &["host", "verified_only", "allowed_emails", "allowed_domains", "allowed_providers"]),
    ("api", &["allowed_origins"]),
    ("sessions", &["url", "key_prefix"]),
    ("providers", &[]),
    (
        "providers.*",
        &[
            "preset",
            "display_name",
            "client_id",
            "client_secret",
            "private_key_file",
            "key_id",
            "certificate_file",
            "authorize_url",
            "token_url",
            "userinfo_url",
            "base_url",
            "domain",
            "realm",
            "scopes",
            "token_auth",
            "userinfo",
            "dangerously_allow_non_loopback",
            "issuer",
            "tenant",
            "team",
            "team_id",
            "allow_hmac_id_tokens",
            "response_mode",
            "authorize_params",
            "trust_email_verified",
        ],
    ),
    ("providers.*.userinfo", &["email", "email_verified", "subject", "name", "avatar", "username"]),
];

/// The keys of one table of [`KNOWN_KEYS`].
fn known(table: &str) -> &'static [&'static str] {
    KNOWN_KEYS.iter().find(|(t, _)| *t == table).map_or(&[], |(_, keys)| keys)
}

/// A validated configuration.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// `[server]`
    pub server: ServerConfig,
    /// `[database]`
    pub database: DatabaseConfig,
    /// `[http]`: limits on every call to a provider.
    pub http: HttpConfig,
    /// `[limits]`: per-client request rates.
    pub limits: LimitsConfig,
    /// `[log]`: how log lines are written.
    pub log: LogConfig,
    /// `[access]`: who may log in at all (and pass the gateway).
    pub access: AccessConfig,
    /// `[gateway]`: forward-auth endpoints for reverse proxies.
    pub gateway: GatewayConfig,
    /// `[api]`: the JSON API's cross-origin callers.
    pub api: ApiConfig,
    /// `[sessions]`: where sessions live (the users' database unless Redis is named).
    pub sessions: SessionsConfig,
    /// `[providers.NAME]`, in name order. Empty means "use the development provider".
    pub providers: Vec<ProviderConfig>,
    /// True when no provider was configured and the development provider was added for that reason.
    pub dev_provider_by_default: bool,
}

/// `[server]`
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerConfig {
    /// Address to listen on.
    pub bind: SocketAddr,
    /// A second address serving only `GET /metrics` (Prometheus text); `None` (the default)
    /// opens no second listener and installs no recorder.
    pub metrics_bind: Option<SocketAddr>,
    /// Base of every URL we hand out (redirect URIs); `None` means `http://` + the bound address.
    pub public_url: Option<Url>,
    /// Signs session cookies; `None` means generate one and keep it in `secret_key_file`.
    pub secret_key: Option<SecretKey>,
    /// Where a generated key is kept.
    pub secret_key_file: PathBuf,
    /// How long a started login may take before its callback is refused (default 600 s).
    pub login_timeout_secs: i64,
    /// Keep recently used sessions and accounts in memory (default true). Several instances on
    /// one PostgreSQL keep their caches coherent; on SQLite it means one server per file.
    pub session_cache: bool,
    /// `Strict-Transport-Security` max-age sent with an https `public_url`; 0 sends none.
    pub hsts_max_age_secs: u64,
    /// Proxies whose `X-Forwarded-For` names the client; empty means the peer address is the
    /// client, whatever headers say.
    pub trusted_proxies: Vec<IpNet>,
    /// Where a browser goes after a login that named no `next`; `None` means loginwith's own
    /// start page. A path on this site, never another host.
    pub after_login: Option<ReturnTo>,
    /// Where a browser goes after a logout that named no `next`; `None` means loginwith's own
    /// start page. A path on this site, never another host.
    pub after_logout: Option<ReturnTo>,
    /// The session cookie's `Domain` (`example.com`: shared by every subdomain, one login for
    /// several services behind the gateway); `None` keeps it to `public_url`'s host alone.
    pub cookie_domain: Option<String>,
    /// On SIGTERM or Ctrl-C the server stops accepting connections and lets requests in flight
    /// finish for up to this long, then exits (default 10 s).
    pub shutdown_grace_secs: u64,
}

/// The default of `[server] shutdown_grace_secs`: shorter than the 30 s most supervisors wait
/// before SIGKILL (systemd's `TimeoutStopSec` defaults to 90 s, Kubernetes' grace period to 30 s).
pub const DEFAULT_SHUTDOWN_GRACE_SECS: u64 = 10;

/// `[limits]`: how many requests one client address may make per minute to each area; 0 means
/// no limit. A client over its limit gets 429 with `Retry-After`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct LimitsConfig {
    /// `/authorize/NAME` (starting a login; each start writes a pending attempt).
    pub authorize_per_minute: u32,
    /// `/callback/NAME` (each may cost a token request to the provider).
    pub callback_per_minute: u32,
    /// The development provider's pages (`/dev-provider/authorize`).
    pub dev_provider_per_minute: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        // A person needs a handful per minute; a page reload loop or a script needs hundreds.
        Self { authorize_per_minute: 30, callback_per_minute: 30, dev_provider_per_minute: 60 }
    }
}

/// `[log]`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct LogConfig {
    /// Text for people or JSON lines for log collectors.
    pub format: LogFormat,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Text,
    /// One JSON object per line, with every field (for the audit trail).
    Json,
}

/// `[access]`: who may log in at all, by the address a provider verified. Both lists empty (the
/// default) means everyone who can log in with a configured provider. Entries are lower-cased, as
/// addresses are compared.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AccessConfig {
    /// Only addresses a trusted provider verified may pass.
    pub verified_only: bool,
    /// Whole addresses (`alice@example.com`), lower-cased.
    pub allowed_emails: Vec<String>,
    /// Domain names (`example.com`): an address whose part after the `@` is exactly one of these.
    pub allowed_domains: Vec<String>,
    /// Provider names (`google`, `corp-sso`): only logins through one of these.
    pub allowed_providers: Vec<String>,
}

impl AccessConfig {
    /// True when no rule is set (everyone may pass).
    pub fn is_open(&self) -> bool {
        !self.verified_only
            && self.allowed_emails.is_empty()
            && self.allowed_domains.is_empty()
            && self.allowed_providers.is_empty()
    }

    /// Whether someone may pass: with address lists set, only a *verified* address (as believed
    /// per `trust_email_verified`) that is listed, or whose domain is listed (an unverified
    /// address could be anyone's, so it never matches a list); with `verified_only`, only a
    /// verified address; with `allowed_providers`, only a login through one of them.
    pub fn allows(&self, email: &str, email_verified: bool, provider: &str) -> bool {
        if self.verified_only && !email_verified {
            return false;
        }
        if !self.allowed_providers.is_empty() && !self.allowed_providers.iter().any(|p| p == provider) {
            return false;
        }
        if self.allowed_emails.is_empty() && self.allowed_domains.is_empty() {
            return true;
        }
        if !email_verified {
            return false;
        }
        let email = email.to_lowercase();
        let domain = email.rsplit_once('@').map_or("", |(_, d)| d);
        self.allowed_emails.contains(&email) || self.allowed_domains.iter().any(|d| d == domain)
    }
}

/// `[gateway]`: `{base}/gateway/check`, `/start` and `/logout` for reverse proxies (nginx
/// `auth_request`, Caddy `forward_auth`, Traefik `ForwardAuth`). Off unless `enabled`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct GatewayConfig {
    /// Serve the gateway endpoints.
    pub enabled: bool,
    /// What `check` answers a browser that is not logged in.
    pub unauthenticated: Unauthenticated,
    /// Hosts that `rd` may send a browser back to: exact names, or `.example.com` for every
    /// subdomain of example.com.
    pub allowed_redirect_hosts: Vec<HostPattern>,
    /// Per-host rules, on top of `[access]`: the first whose host matches applies.
    pub rules: Vec<GatewayRule>,
}

/// `[api]`: who besides loginwith's own origin may call the JSON API from a browser.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ApiConfig {
    /// Origins (`https://app.example.com`, as browsers send them in `Origin`) whose pages may
    /// call the API with the user's cookie: CORS with credentials for exactly these, never `*`;
    /// their changes pass the same-origin check. Empty (the default): CORS stays off.
    pub allowed_origins: Vec<String>,
}

/// `[sessions]`: where sessions are kept. By default in the users' database (its session table);
/// with `url`, in Redis, while users and identities stay in the database.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SessionsConfig {
    /// `redis://[[user]:password@]host[:port][/db]` or `rediss://...` (TLS): one Redis server.
    /// `None` (the default): the database. The URL may hold a password, so it prints redacted.
    pub url: Option<crate::domain::secret::ConnectionUrl>,
    /// Prefix of every Redis key and of the change channel, so that several deployments can
    /// share one Redis (default `loginwith:`).
    pub key_prefix: String,
}

/// The default `[sessions] key_prefix`.
pub const DEFAULT_SESSIONS_KEY_PREFIX: &str = "loginwith:";

impl Default for SessionsConfig {
    fn default() -> Self {
        SessionsConfig { url: None, key_prefix: DEFAULT_SESSIONS_KEY_PREFIX.to_owned() }
    }
}

/// What `{base}/gateway/check` answers when nobody is logged in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Unauthenticated {
    /// `401` (nginx `auth_request` turns it into a redirect with `error_page 401`).
    #[default]
    Status,
    /// A browser gets `302` to the start endpoint (for proxies that pass the answer through,
    /// like Traefik); API clients still get `401`.
    Redirect,
}

/// `[[gateway.rules]]`: who may pass to one host (or a `.suffix` of hosts).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GatewayRule {
    /// The host the rule is for.
    pub host: HostPattern,
    /// Its rule, the same keys as `[access]`.
    pub access: AccessConfig,
}

/// `[database]`
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DatabaseConfig {
    /// `sqlite://PATH` or `postgres://...`
    pub url: String,
}

/// `[http]`: limits on every call to a provider.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HttpConfig {
    /// Time allowed to open a connection.
    pub connect_timeout: Duration,
    /// Time allowed for a whole request, body included.
    pub timeout: Duration,
    /// Largest response body accepted from a provider.
    pub max_response_bytes: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(10),
            max_response_bytes: 1024 * 1024,
        }
    }
}

/// One `[providers.NAME]` table, validated and with its preset's defaults filled in: what every
/// provider has, and in [`ProviderKind`] what its protocol needs. The kind holds nothing optional
/// that its protocol needs, so a provider without its endpoints or its issuer cannot be built,
/// and nothing downstream checks for them again.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ProviderConfig {
    /// The table's name, used in `/authorize/NAME` and `/callback/NAME`.
    pub name: ProviderName,
    /// Which preset it builds on, if any.
    pub preset: Option<Preset>,
    /// The button says "Login with DISPLAY_NAME".
    pub display_name: String,
    /// OAuth client id.
    pub client_id: String,
    /// OAuth client secret; `None` only for the development provider, whose secret is made at
    /// each start, and with `private_key_jwt` (the configuration refuses any other provider
    /// without one).
    pub client_secret: Option<ClientSecret>,
    /// The private key of `token_auth = "private_key_jwt"`, read from `private_key_file` when the
    /// configuration is loaded (with `key_id` and `certificate_file`); `None` for other methods.
    pub client_key: Option<std::sync::Arc<ClientKey>>,
    /// Scopes requested.
    pub scopes: Vec<String>,
    /// Client authentication at the token endpoint; `None` means the protocol's default
    /// (client_secret_post for OAuth 2.0 presets, client_secret_basic for OpenID Connect unless
    /// discovery says only post is supported).
    pub token_auth: Option<TokenAuth>,
    /// Query or form_post callbacks (any protocol: the callback accepts either).
    pub response_mode: ResponseMode,
    /// Sign in with Apple's Team ID: the `iss` of the client secret loginwith makes with
    /// `client_key` (see `providers::apple`); `None` for every other provider.
    pub team_id: Option<String>,
    /// Extra parameters of the authorization request: the preset's, with
    /// `[providers.NAME.authorize_params]` over them.
    pub authorize_params: AuthorizeParams,
    /// Believe this provider's "the address is verified": the address then counts as verified
    /// and may link to an existing account with the same verified address. On by default only
    /// for presets whose verification is known to be sound (see `Preset::trusts_email_verified`).
    pub trust_email_verified: bool,
    /// The protocol and what it needs.
    pub kind: ProviderKind,
}

/// The protocol a configured provider speaks, with everything it needs.
#[derive(Debug, Clone)]
pub enum ProviderKind {
    /// Plain OAuth 2.0: explicit endpoints, the profile read from the userinfo response (GitHub,
    /// any provider described as data).
    OAuth2 {
        /// Where the browser is sent.
        authorize_url: Url,
        /// Where the code is exchanged.
        token_url: Url,
        /// Where the profile is read.
        userinfo_url: Url,
        /// Where the profile's fields are in the userinfo response (`email` and `subject` are
        /// always set for a provider without a preset).
        userinfo: UserinfoPointers,
    },
    /// OpenID Connect: endpoints and keys come from the issuer's discovery document.
    Oidc {
        /// The issuer, exactly as configured (trailing slash included).
        issuer: Issuer,
        /// Microsoft Entra ID only: `common`, `organizations`, `consumers`, a tenant id or a
        /// domain; `None` means the tenant named in the issuer's path.
        tenant: Option<String>,
        /// Accept ID tokens signed with the client secret (HS256/384/512). Off unless configured.
        allow_hmac_id_tokens: bool,
        /// Where the profile's fields are in the userinfo response, when they differ from the
        /// standard claims.
        userinfo: UserinfoPointers,
    },
    /// The built-in development provider, served by this process: its issuer and endpoints are
    /// known only at start, once the listening address is.
    Dev {
        /// Allow it on a non-loopback address (anyone who reaches it can log in as anyone).
        dangerously_allow_non_loopback: bool,
        /// Where the profile's fields are in its userinfo response.
        userinfo: UserinfoPointers,
    },
}

impl ProviderKind {
    /// The OpenID Connect issuer, if this kind has a configured one.
    pub fn issuer(&self) -> Option<&Issuer> {
        match self {
            ProviderKind::Oidc { issuer, .. } => Some(issuer),
            ProviderKind::OAuth2 { .. } | ProviderKind::Dev { .. } => None,
        }
    }

    /// Where the profile's fields are in the userinfo response.
    pub fn userinfo(&self) -> &UserinfoPointers {
        match self {
            ProviderKind::OAuth2 { userinfo, .. }
            | ProviderKind::Oidc { userinfo, .. }
            | ProviderKind::Dev { userinfo, .. } => userinfo,
        }
    }
}

impl ProviderConfig {
    /// A provider of `kind` with its name, preset and button text, no credentials, no scopes, and
    /// the protocol's defaults for the rest; presets and the configuration fill it in.
    pub fn new(name: ProviderName, preset: Option<Preset>, display_name: &str, kind: ProviderKind) -> Self {
        ProviderConfig {
            name,
            preset,
            display_name: display_name.to_owned(),
            client_id: String::new(),
            client_secret: None,
            client_key: None,
            team_id: None,
            scopes: Vec::new(),
            token_auth: None,
            response_mode: ResponseMode::Query,
            authorize_params: AuthorizeParams::default(),
            trust_email_verified: false,
            kind,
        }
    }

    /// Whether this is the built-in development provider.
    pub fn is_dev(&self) -> bool {
        matches!(self.kind, ProviderKind::Dev { .. })
    }

    /// Whether this is the development provider *and* it was forced onto a non-loopback address
    /// (`dangerously_allow_non_loopback = true`).
    pub fn dev_allows_non_loopback(&self) -> bool {
        matches!(self.kind, ProviderKind::Dev { dangerously_allow_non_loopback: true, .. })
    }

    /// The OpenID Connect issuer, if the provider has a configured one.
    pub fn issuer(&self) -> Option<&Issuer> {
        self.kind.issuer()
    }

    /// Where the profile's fields are in the userinfo response.
    pub fn userinfo(&self) -> &UserinfoPointers {
        self.kind.userinfo()
    }
}

/// Every problem found in a configuration, each naming its key and source.
#[derive(Debug)]
pub struct ConfigErrors(pub Vec<String>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "the configuration has {} problem(s):", self.0.len())?;
        for problem in &self.0 {
            writeln!(f, "  - {problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Where to read the configuration from.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// The TOML file, if any (`--config FILE` or `LOGINWITH_CONFIG`).
    pub file: Option<PathBuf>,
    /// Read the process environment (off in tests that want isolation).
    pub environment: bool,
}

impl Config {
    /// Loads and validates the configuration from the given sources.
    pub fn load(sources: &Sources) -> Result<Self, ConfigErrors> {
        let mut figment = Figment::new();
        if let Some(file) = &sources.file {
            if !file.is_file() {
                return Err(ConfigErrors(vec![format!(
                    "{}: the configuration file does not exist or is not a file",
                    file.display()
                )]));
            }
            figment = figment.merge(Toml::file_exact(file));
        }
        if sources.environment {
            figment = figment.merge(EnvStrings::prefixed("LOGINWITH_", &["CONFIG", "LOG"]));
            let file_providers = provider_names_in(&figment);
            for name in ENV_ENABLED_PRESETS.iter().map(|s| s.to_string()).chain(file_providers) {
                figment = figment.merge(seed_env_vars(&name));
            }
        }
        Self::from_figment(&figment)
    }

    /// Loads and validates a configuration from TOML text alone. Every problem is reported at
    /// once, each with its key.
    ///
    /// ```
    /// use loginwith::Config;
    ///
    /// let config = Config::from_toml(r#"
    ///     [server]
    ///     public_url = "https://example.com/auth"
    ///     secret_key = "a-long-random-string-of-at-least-32-characters"
    ///     [providers.github]
    ///     client_id = "id"
    ///     client_secret = "secret"
    /// "#).unwrap();
    /// assert_eq!(config.providers[0].name.as_str(), "github");
    ///
    /// let errors = Config::from_toml("[server]\nbind = 5\ncolour = 1\n").unwrap_err();
    /// assert_eq!(errors.0.len(), 2);
    /// ```
    pub fn from_toml(text: &str) -> Result<Self, ConfigErrors> {
        Self::from_figment(&Figment::from(Toml::string(text)))
    }

    /// Validates merged sources, collecting every problem.
    pub fn from_figment(figment: &Figment) -> Result<Self, ConfigErrors> {
        let root = match figment.extract::<Dict>() {
            Ok(root) => root,
            Err(err) => {
                return Err(ConfigErrors(
                    err.into_iter().map(|e| without_source_lines(&e.to_string())).collect(),
                ))
            }
        };
        let mut walk = Walk { figment, problems: Vec::new() };
        walk.unknown_keys(&root, "", known(""));

        let server = walk.server(root.get("server"));
        let database = walk.database(root.get("database"));
        let http = walk.http(root.get("http"));
        let limits = walk.limits(root.get("limits"));
        let log = walk.log(root.get("log"));
        let access = walk.access(root.get("access"), "access");
        let gateway = walk.gateway(root.get("gateway"));
        let api = walk.api(root.get("api"));
        let sessions = walk.sessions(root.get("sessions"));
        let mut providers = walk.providers(root.get("providers"));

        let dev_provider_by_default = providers.is_empty();
        if dev_provider_by_default {
            providers.extend(implicit_dev_provider());
        }
        walk.dev_provider_exposure(&server, &providers, dev_provider_by_default, root.get("providers"));

        if walk.problems.is_empty() {
            Ok(Config {
                server,
                database,
                http,
                limits,
                log,
                access,
                gateway,
                api,
                sessions,
                providers,
                dev_provider_by_default,
            })
        } else {
            Err(ConfigErrors(walk.problems))
        }
    }

    /// A configuration for tests and embedding: loopback on a random port, the given database, no
    /// file, the development provider. Set `server.public_url` to where browsers reach you (its
    /// path is where loginwith mounts its routes).
    ///
    /// ```
    /// let mut config = loginwith::Config::development("sqlite://app.db");
    /// config.server.public_url = Some("http://127.0.0.1:3000/auth".parse().unwrap());
    /// assert!(config.dev_provider_by_default);
    /// ```
    pub fn development(database_url: &str) -> Self {
        Config {
            server: ServerConfig {
                bind: SocketAddr::from(([127, 0, 0, 1], 0)),
                metrics_bind: None,
                public_url: None,
                secret_key: Some(SecretKey::new(crate::domain::secret::random_token(48))),
                secret_key_file: PathBuf::from("loginwith.secret"),
                login_timeout_secs: crate::oauth::pending::PENDING_TTL_SECS,
                session_cache: true,
                hsts_max_age_secs: DEFAULT_HSTS_MAX_AGE_SECS,
                trusted_proxies: Vec::new(),
                after_login: None,
                after_logout: None,
                cookie_domain: None,
                shutdown_grace_secs: DEFAULT_SHUTDOWN_GRACE_SECS,
            },
            database: DatabaseConfig { url: database_url.to_owned() },
            http: HttpConfig::default(),
            limits: LimitsConfig::default(),
            log: LogConfig::default(),
            access: AccessConfig::default(),
            gateway: GatewayConfig::default(),
            api: ApiConfig::default(),
            sessions: SessionsConfig::default(),
            providers: implicit_dev_provider().into_iter().collect(),
            dev_provider_by_default: true,
        }
    }
}

/// `[providers.dev]` with its defaults, for a configuration that names no provider.
fn implicit_dev_provider() -> Option<ProviderConfig> {
    ProviderName::parse("dev").ok().and_then(|name| Preset::Dev.defaults(name))
}

/// A TOML syntax error without the excerpt of the file it quotes: the offending line may be
/// `client_secret = "..."` (a duplicate key, an unterminated string), and problems are printed and
/// logged. The line and column stay in the message.
fn without_source_lines(message: &str) -> String {
    message
        .lines()
        .filter(|line| {
            let line = line.trim_start();
            let excerpt = line.starts_with('|')
                || line
                    .split_once(" |")
                    .is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
            !excerpt
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// True when the URL's host is a loopback address, `localhost` or a name under it
/// (`app.localhost`: RFC 6761 reserves them for loopback, and browsers resolve them there
/// without asking DNS).
pub fn is_loopback_url(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            d == "localhost" || d.ends_with(".localhost")
        }
        None => false,
    }
}

/// Resolves the configuration file: `--config`, else `LOGINWITH_CONFIG` (handled by clap), else
/// `loginwith.toml` in the working directory when it exists.
pub fn default_file(explicit: Option<&Path>) -> Option<PathBuf> {
    match explicit {
        Some(p) => Some(p.to_path_buf()),
        None => Some(PathBuf::from("loginwith.toml")).filter(|p| p.is_file()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_urls_are_addresses_and_names_under_localhost() {
        for yes in ["http://127.0.0.1:5000/", "http://[::1]/", "http://localhost/", "http://a.b.localhost:8/"]
        {
            assert!(is_loopback_url(&Url::parse(yes).unwrap()), "{yes}");
        }
        for no in [
            "http://example.com/",
            "http://localhost.example.com/",
            "http://mylocalhost/",
            "http://10.0.0.1/",
        ] {
            assert!(!is_loopback_url(&Url::parse(no).unwrap()), "{no}");
        }
    }

    #[test]
    fn empty_config_means_dev_provider() {
        let config = Config::from_toml("").unwrap();
        assert!(config.dev_provider_by_default);
        assert_eq!(config.providers.len(), 1);
        assert_eq!(config.providers[0].name.as_str(), "dev");
        assert_eq!(config.server.bind.to_string(), DEFAULT_BIND);
    }

    #[test]
    fn metrics_bind_is_off_by_default_and_an_address_when_set() {
        assert_eq!(Config::from_toml("").unwrap().server.metrics_bind, None);
        let config = Config::from_toml("[server]\nmetrics_bind = \"0.0.0.0:9090\"\n").unwrap();
        assert_eq!(config.server.metrics_bind, Some(SocketAddr::from(([0, 0, 0, 0], 9090))));
        for (value, expected) in [
            ("\"nonsense\"", "`server.metrics_bind`: \"nonsense\" is not an address like 127.0.0.1:9090"),
            ("\"localhost:9090\"", "`server.metrics_bind`: \"localhost:9090\" is not an address"),
            ("true", "`server.metrics_bind`: must be a string"),
        ] {
            let errors = Config::from_toml(&format!("[server]\nmetrics_bind = {value}\n")).unwrap_err();
            let all = errors.0.join("\n");
            assert!(all.contains(expected), "{value}: missing {expected:?} in:\n{all}");
        }
        let same = "[server]\nbind = \"127.0.0.1:5000\"\nmetrics_bind = \"127.0.0.1:5000\"\n";
        let all = Config::from_toml(same).unwrap_err().0.join("\n");
        assert!(all.contains("`server.metrics_bind`: must differ from server.bind"), "{all}");
        // Port 0 (tests) picks two free ports, never the same one.
        let zero = "[server]\nbind = \"127.0.0.1:0\"\nmetrics_bind = \"127.0.0.1:0\"\n";
        assert!(Config::from_toml(zero).is_ok());
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let text = r#"
            colour = "blue"
            [server]
            bind = "nonsense"
            [providers.github]
            client_id = "abc"
            [providers.corp]
            authorize_url = "not a url"
            token_url = "http://evil.example/token"
            userinfo_url = "https://corp.example/userinfo"
            client_id = "x"
            client_secret = "y"
            [providers.corp.userinfo]
            email = "email"
            subject = "/sub"
            shoe_size = "/x"
        "#;
        let errors = Config::from_toml(text).unwrap_err().0;
        let all = errors.join("\n");
        for expected in [
            "`colour`: unknown key",
            "`server.bind`",
            "`providers.github.client_secret`: missing",
            "`providers.corp.authorize_url`: is not a valid URL",
            "`providers.corp.token_url`: must use https",
            "`providers.corp.userinfo.email`",
            "`providers.corp.userinfo.shoe_size`: unknown key",
        ] {
            assert!(all.contains(expected), "missing {expected:?} in:\n{all}");
        }
    }

    #[test]
    fn syntax_errors_do_not_quote_the_secret_on_the_offending_line() {
        let text = "[server]\nsecret_key = \"one-secret-that-is-long-enough-0123456789\"\n\
                    secret_key = \"two-secret-that-is-long-enough-0123456789\"\n\
                    [providers.corp]\nclient_secret = \"unterminated-secret\n";
        let errors = Config::from_toml(text).unwrap_err().to_string();
        assert!(errors.contains("line 3") && errors.contains("duplicate key `secret_key`"), "{errors}");
        assert!(!errors.contains("-secret-that-is"), "{errors}");
        let errors = Config::from_toml("[providers.corp]\nclient_secret = \"unterminated-secret\n")
            .unwrap_err()
            .to_string();
        assert!(errors.contains("line 2"), "{errors}");
        assert!(!errors.contains("unterminated-secret"), "{errors}");
    }

    #[test]
    fn the_example_file_is_valid() {
        let text = include_str!("../../loginwith.example.toml");
        let config = Config::from_toml(text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.providers.len(), 1);
        // The example ships the development provider commented out: a copy of it deployed with a
        // public URL must not offer it.
        assert!(config.dev_provider_by_default);
        let deployed = format!(
            "{}\n",
            text.replace(
                "# public_url = \"https://app.example.com\"",
                "public_url = \"https://app.example.com\""
            )
        );
        let errors = Config::from_toml(&deployed).unwrap_err().0.join("\n");
        assert!(errors.contains("no login provider is configured"), "{errors}");
    }
}
