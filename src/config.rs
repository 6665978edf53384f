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

use crate::domain::secret::{ClientSecret, SecretKey};
use crate::domain::{Issuer, ProviderName};
use crate::providers::Preset;
use figment::providers::{Format, Toml};
use figment::value::{Dict, Value};
use figment::Figment;
use ipnet::IpNet;
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use url::Url;

/// The default address: loopback only, the port the seed used.
pub const DEFAULT_BIND: &str = "127.0.0.1:5000";
/// The default database: a SQLite file in the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://loginwith.db";
/// One year: what HSTS preload lists ask for, and long enough that a browser that saw the site
/// once never tries plain http again.
pub const DEFAULT_HSTS_MAX_AGE_SECS: u64 = 31_536_000;

/// Every key the configuration knows, by table (`providers.*` is any provider's table). The walk
/// refuses anything else; tests generate configurations from it.
pub const KNOWN_KEYS: [(&str, &[&str]); 9] = [
    ("", &["server", "database", "http", "limits", "log", "providers"]),
    (
        "server",
        &[
            "bind",
            "public_url",
            "secret_key",
            "secret_key_file",
            "login_timeout_secs",
            "session_cache",
            "hsts_max_age_secs",
            "trusted_proxies",
        ],
    ),
    ("database", &["url"]),
    ("http", &["connect_timeout_ms", "timeout_ms", "max_response_bytes"]),
    ("limits", &["authorize_per_minute", "callback_per_minute", "dev_provider_per_minute"]),
    ("log", &["format"]),
    ("providers", &[]),
    (
        "providers.*",
        &[
            "preset",
            "display_name",
            "client_id",
            "client_secret",
            "authorize_url",
            "token_url",
            "userinfo_url",
            "scopes",
            "token_auth",
            "userinfo",
            "dangerously_allow_non_loopback",
            "issuer",
            "tenant",
            "allow_hmac_id_tokens",
            "response_mode",
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
    /// `[providers.NAME]`, in name order. Empty means "use the development provider".
    pub providers: Vec<ProviderConfig>,
    /// True when no provider was configured and the development provider was added for that reason.
    pub dev_provider_by_default: bool,
}

/// `[server]`
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to listen on.
    pub bind: SocketAddr,
    /// Base of every URL we hand out (redirect URIs); `None` means `http://` + the bound address.
    pub public_url: Option<Url>,
    /// Signs session cookies; `None` means generate one and keep it in `secret_key_file`.
    pub secret_key: Option<SecretKey>,
    /// Where a generated key is kept.
    pub secret_key_file: PathBuf,
    /// How long a started login may take before its callback is refused (default 600 s).
    pub login_timeout_secs: i64,
    /// Keep recently used sessions in memory (default true; turn off when several instances
    /// share one database, so that a logout on one is seen at once by the others).
    pub session_cache: bool,
    /// `Strict-Transport-Security` max-age sent with an https `public_url`; 0 sends none.
    pub hsts_max_age_secs: u64,
    /// Proxies whose `X-Forwarded-For` names the client; empty means the peer address is the
    /// client, whatever headers say.
    pub trusted_proxies: Vec<IpNet>,
}

/// `[limits]`: how many requests one client address may make per minute to each area; 0 means
/// no limit. A client over its limit gets 429 with `Retry-After`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

/// `[database]`
#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    /// `sqlite://PATH` or `postgres://...`
    pub url: String,
}

/// `[http]`: limits on every call to a provider.
#[derive(Debug, Clone)]
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

/// How the client authenticates at the token endpoint (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenAuth {
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
    /// HTTP Basic with the client id and secret.
    ClientSecretBasic,
}

/// How the provider returns the authorization response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResponseMode {
    /// In the query of a GET to the callback (the OAuth 2.0 default).
    #[default]
    Query,
    /// As a form POST to the callback (OAuth 2.0 Form Post Response Mode; Apple, optionally Entra ID).
    FormPost,
}

/// JSON Pointers (RFC 6901) into the userinfo response.
#[derive(Debug, Clone, Default)]
pub struct UserinfoPointers {
    /// The e-mail address.
    pub email: Option<String>,
    /// A boolean saying the provider verified the address; absent means unverified.
    pub email_verified: Option<String>,
    /// The stable account id.
    pub subject: Option<String>,
    /// A display name.
    pub name: Option<String>,
    /// An avatar URL.
    pub avatar: Option<String>,
    /// The account's login name at the provider (a username when the address is unverified).
    pub username: Option<String>,
}

/// One `[providers.NAME]` table, validated and with its preset's defaults filled in.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    /// The table's name, used in `/authorize/NAME` and `/callback/NAME`.
    pub name: ProviderName,
    /// Which preset it builds on, if any.
    pub preset: Option<Preset>,
    /// The button says "Login with DISPLAY_NAME".
    pub display_name: String,
    /// OAuth client id.
    pub client_id: String,
    /// OAuth client secret (the development provider's is made at start).
    pub client_secret: Option<ClientSecret>,
    /// OpenID Connect issuer, exactly as configured (trailing slash included); when set,
    /// endpoints come from discovery.
    pub issuer: Option<Issuer>,
    /// Microsoft Entra ID tenant: `common`, `organizations`, `consumers` or a tenant id.
    pub tenant: Option<String>,
    /// Accept ID tokens signed with the client secret (HS256/384/512). Off unless configured.
    pub allow_hmac_id_tokens: bool,
    /// Query or form_post callbacks.
    pub response_mode: ResponseMode,
    /// Where the browser is sent; `None` only for the development provider (served by us).
    pub authorize_url: Option<Url>,
    /// Where the code is exchanged.
    pub token_url: Option<Url>,
    /// Where the profile is read.
    pub userinfo_url: Option<Url>,
    /// Scopes requested.
    pub scopes: Vec<String>,
    /// Client authentication at the token endpoint; `None` means the protocol's default
    /// (client_secret_post for OAuth 2.0 presets, client_secret_basic for OpenID Connect unless
    /// discovery says only post is supported).
    pub token_auth: Option<TokenAuth>,
    /// How to read the profile.
    pub userinfo: UserinfoPointers,
    /// Development provider only: allow it on a non-loopback address.
    pub dangerously_allow_non_loopback: bool,
    /// Believe this provider's "the address is verified": the address then counts as verified
    /// and may link to an existing account with the same verified address. On by default only
    /// for presets whose verification is known to be sound (see `Preset::trusts_email_verified`).
    pub trust_email_verified: bool,
}

impl ProviderConfig {
    /// A provider with nothing set but its name, preset and button text; presets fill in the rest.
    pub fn blank(name: ProviderName, preset: Option<Preset>, display_name: &str) -> Self {
        ProviderConfig {
            name,
            preset,
            display_name: display_name.to_owned(),
            client_id: String::new(),
            client_secret: None,
            issuer: None,
            tenant: None,
            allow_hmac_id_tokens: false,
            response_mode: ResponseMode::Query,
            authorize_url: None,
            token_url: None,
            userinfo_url: None,
            scopes: Vec::new(),
            token_auth: None,
            userinfo: UserinfoPointers::default(),
            dangerously_allow_non_loopback: false,
            trust_email_verified: false,
        }
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

/// Provider names whose seed-style variables (`GOOGLE_CLIENT_ID` ...) are read even when the file
/// does not mention them.
const ENV_ENABLED_PRESETS: [&str; 2] = ["google", "github"];

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

    /// Loads and validates a configuration from TOML text alone (used by tests and `check`).
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
        let mut providers = walk.providers(root.get("providers"));

        let dev_provider_by_default = providers.is_empty();
        if dev_provider_by_default {
            if let Ok(name) = ProviderName::parse("dev") {
                providers.push(Preset::Dev.defaults(name));
            }
        }
        walk.dev_provider_exposure(&server, &providers, dev_provider_by_default, root.get("providers"));

        if walk.problems.is_empty() {
            Ok(Config { server, database, http, limits, log, providers, dev_provider_by_default })
        } else {
            Err(ConfigErrors(walk.problems))
        }
    }

    /// A configuration for tests and embedding: loopback on a random port, the given database, no
    /// file, the development provider.
    pub fn development(database_url: &str) -> Self {
        let dev = ProviderName::parse("dev").map(|n| Preset::Dev.defaults(n));
        Config {
            server: ServerConfig {
                bind: SocketAddr::from(([127, 0, 0, 1], 0)),
                public_url: None,
                secret_key: Some(SecretKey::new(crate::domain::secret::random_token(48))),
                secret_key_file: PathBuf::from("loginwith.secret"),
                login_timeout_secs: crate::oauth::pending::PENDING_TTL_SECS,
                session_cache: true,
                hsts_max_age_secs: DEFAULT_HSTS_MAX_AGE_SECS,
                trusted_proxies: Vec::new(),
            },
            database: DatabaseConfig { url: database_url.to_owned() },
            http: HttpConfig::default(),
            limits: LimitsConfig::default(),
            log: LogConfig::default(),
            providers: dev.into_iter().collect(),
            dev_provider_by_default: true,
        }
    }
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

/// The names of `[providers.*]` tables, so that `NAME_CLIENT_ID` works for any of them.
fn provider_names_in(figment: &Figment) -> Vec<String> {
    figment
        .find_value("providers")
        .ok()
        .and_then(|v| v.into_dict())
        .map(|d| d.into_keys().collect())
        .unwrap_or_default()
}

/// `GOOGLE_CLIENT_ID` → `providers.google.client_id`, as the seed's Flask app read them.
fn seed_env_vars(name: &str) -> EnvStrings {
    let prefix = name.to_uppercase().replace('-', "_");
    EnvStrings {
        entries: [("CLIENT_ID", "client_id"), ("CLIENT_SECRET", "client_secret")]
            .into_iter()
            .filter_map(|(var, key)| {
                let var = format!("{prefix}_{var}");
                std::env::var(&var).ok().map(|v| (var, format!("providers.{name}.{key}"), v))
            })
            .collect(),
    }
}

/// Environment variables as configuration values, always as *strings*.
///
/// figment's own `Env` provider parses values, so a client secret `0123` would become the number
/// 123 and lose its zero; secrets and ids must arrive exactly as written.
struct EnvStrings {
    /// (variable, dotted key, value)
    entries: Vec<(String, String, String)>,
}

impl EnvStrings {
    /// `LOGINWITH_SECTION__KEY` → `section.key`, except the `ignored` suffixes and variables
    /// without a section.
    fn prefixed(prefix: &str, ignored: &[&str]) -> Self {
        let entries = std::env::vars()
            .filter_map(|(var, value)| {
                let rest = var.strip_prefix(prefix)?;
                // Every configuration key is SECTION__KEY; single words (LOGINWITH_CONFIG,
                // LOGINWITH_LOG, test switches) belong to other tools.
                if ignored.contains(&rest) || !rest.contains("__") {
                    return None;
                }
                let key = rest.to_lowercase().replace("__", ".");
                Some((var, key, value))
            })
            .collect();
        Self { entries }
    }
}

impl figment::Provider for EnvStrings {
    fn metadata(&self) -> figment::Metadata {
        let names: Vec<&str> = self.entries.iter().map(|(var, _, _)| var.as_str()).collect();
        figment::Metadata::named(format!("environment ({})", names.join(", ")))
    }

    fn data(&self) -> Result<figment::value::Map<figment::Profile, Dict>, figment::Error> {
        let mut dict = Dict::new();
        for (_, key, value) in &self.entries {
            if let Some(nested) = figment::util::nest(key, Value::from(value.clone())).into_dict() {
                dict = merge_dicts(dict, nested);
            }
        }
        Ok(figment::Profile::Default.collect(dict))
    }
}

fn merge_dicts(mut base: Dict, other: Dict) -> Dict {
    for (key, value) in other {
        let merged = match (base.remove(&key), value) {
            (Some(Value::Dict(_, a)), Value::Dict(tag, b)) => Value::Dict(tag, merge_dicts(a, b)),
            (_, v) => v,
        };
        base.insert(key, merged);
    }
    base
}

/// The validating walk over the merged tree.
struct Walk<'a> {
    figment: &'a Figment,
    problems: Vec<String>,
}

impl Walk<'_> {
    /// Names the source of a value: the file path or the environment.
    fn source(&self, value: &Value) -> String {
        match self.figment.get_metadata(value.tag()) {
            Some(meta) => match &meta.source {
                Some(figment::Source::File(path)) => path.display().to_string(),
                _ => meta.name.to_string(),
            },
            None => "configuration".to_owned(),
        }
    }

    fn problem(&mut self, value: Option<&Value>, key: &str, what: impl fmt::Display) {
        let source = value.map_or_else(|| "configuration".to_owned(), |v| self.source(v));
        self.problems.push(format!("{source}: `{key}`: {what}"));
    }

    fn unknown_keys(&mut self, dict: &Dict, prefix: &str, known: &[&str]) {
        for (key, value) in dict {
            if !known.contains(&key.as_str()) {
                let full = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
                self.problem(
                    Some(value),
                    &full,
                    format!("unknown key (expected one of: {})", known.join(", ")),
                );
            }
        }
    }

    /// A table, or nothing; anything else is a problem.
    fn table<'v>(&mut self, value: Option<&'v Value>, key: &str) -> Option<&'v Dict> {
        match value {
            None => None,
            Some(Value::Dict(_, dict)) => Some(dict),
            Some(other) => {
                self.problem(Some(other), key, "must be a table");
                None
            }
        }
    }

    /// A string (numbers and booleans from the environment are taken as their text).
    fn text(&mut self, dict: Option<&Dict>, section: &str, key: &str) -> Option<String> {
        let value = dict?.get(key)?;
        let full = format!("{section}.{key}");
        match value {
            Value::String(_, s) => Some(s.clone()),
            Value::Char(_, c) => Some(c.to_string()),
            Value::Num(_, n) => n.to_i128().map(|n| n.to_string()).or_else(|| {
                self.problem(Some(value), &full, "must be a string");
                None
            }),
            other => {
                self.problem(Some(other), &full, "must be a string");
                None
            }
        }
    }

    fn boolean(&mut self, dict: Option<&Dict>, section: &str, key: &str) -> Option<bool> {
        let value = dict?.get(key)?;
        match value {
            Value::Bool(_, b) => Some(*b),
            Value::String(_, s) if s.eq_ignore_ascii_case("true") => Some(true),
            Value::String(_, s) if s.eq_ignore_ascii_case("false") => Some(false),
            other => {
                self.problem(Some(other), &format!("{section}.{key}"), "must be true or false");
                None
            }
        }
    }

    fn number(&mut self, dict: Option<&Dict>, section: &str, key: &str, min: u64, max: u64) -> Option<u64> {
        let value = dict?.get(key)?;
        let parsed = match value {
            Value::Num(_, n) => n.to_i128().and_then(|n| u64::try_from(n).ok()),
            Value::String(_, s) => s.trim().parse::<u64>().ok(),
            _ => None,
        };
        match parsed {
            Some(n) if (min..=max).contains(&n) => Some(n),
            _ => {
                self.problem(
                    Some(value),
                    &format!("{section}.{key}"),
                    format!("must be a whole number from {min} to {max}"),
                );
                None
            }
        }
    }

    fn url(&mut self, dict: Option<&Dict>, section: &str, key: &str) -> Option<Url> {
        let text = self.text(dict, section, key)?;
        let value = dict.and_then(|d| d.get(key));
        let full = format!("{section}.{key}");
        match Url::parse(&text) {
            Ok(url) if !matches!(url.scheme(), "http" | "https") => {
                self.problem(value, &full, "must be an http(s) URL");
                None
            }
            Ok(url) if url.host().is_none() => {
                self.problem(value, &full, "must name a host");
                None
            }
            Ok(url) => Some(url),
            Err(err) => {
                self.problem(value, &full, format!("is not a valid URL ({err})"));
                None
            }
        }
    }

    /// An OpenID Connect issuer, kept exactly as written (see [`Issuer`]).
    fn issuer(&mut self, dict: Option<&Dict>, section: &str) -> Option<Issuer> {
        let text = self.text(dict, section, "issuer")?;
        match Issuer::parse(&text) {
            Ok(issuer) => Some(issuer),
            Err(err) => {
                self.problem(dict.and_then(|d| d.get("issuer")), &format!("{section}.issuer"), err);
                None
            }
        }
    }

    /// A provider endpoint: https, except on a loopback host (tests, local providers).
    fn endpoint(&mut self, dict: Option<&Dict>, section: &str, key: &str) -> Option<Url> {
        let url = self.url(dict, section, key)?;
        if url.scheme() != "https" && !is_loopback_url(&url) {
            let value = dict.and_then(|d| d.get(key));
            self.problem(
                value,
                &format!("{section}.{key}"),
                "must use https (plain http is only allowed for 127.0.0.1, ::1 and localhost)",
            );
            return None;
        }
        Some(url)
    }

    fn server(&mut self, value: Option<&Value>) -> ServerConfig {
        let dict = self.table(value, "server");
        if let Some(d) = dict {
            self.unknown_keys(d, "server", known("server"));
        }
        let bind = match self.text(dict, "server", "bind") {
            None => DEFAULT_BIND.parse().ok(),
            Some(text) => text.parse::<SocketAddr>().ok().or_else(|| {
                self.problem(
                    dict.and_then(|d| d.get("bind")),
                    "server.bind",
                    format!("{text:?} is not an address like 127.0.0.1:5000"),
                );
                None
            }),
        };
        let public_url = self.url(dict, "server", "public_url").and_then(|url| {
            if url.query().is_some() || url.fragment().is_some() {
                self.problem(
                    dict.and_then(|d| d.get("public_url")),
                    "server.public_url",
                    "must not have a query or fragment",
                );
                return None;
            }
            Some(url)
        });
        let secret_key = self.text(dict, "server", "secret_key").and_then(|key| {
            if key.len() < 32 {
                self.problem(
                    dict.and_then(|d| d.get("secret_key")),
                    "server.secret_key",
                    "must be at least 32 characters (e.g. `openssl rand -base64 48`)",
                );
                return None;
            }
            Some(SecretKey::new(key))
        });
        let secret_key_file = self
            .text(dict, "server", "secret_key_file")
            .map_or_else(|| PathBuf::from("loginwith.secret"), PathBuf::from);
        let login_timeout_secs = self
            .number(dict, "server", "login_timeout_secs", 1, 3600)
            .map_or(crate::oauth::pending::PENDING_TTL_SECS, |n| n as i64);
        let session_cache = self.boolean(dict, "server", "session_cache").unwrap_or(true);
        let hsts_max_age_secs = self
            .number(dict, "server", "hsts_max_age_secs", 0, 10 * DEFAULT_HSTS_MAX_AGE_SECS)
            .unwrap_or(DEFAULT_HSTS_MAX_AGE_SECS);
        let trusted_proxies = self.networks(dict, "server", "trusted_proxies");
        ServerConfig {
            bind: bind.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 5000))),
            public_url,
            secret_key,
            secret_key_file,
            login_timeout_secs,
            session_cache,
            hsts_max_age_secs,
            trusted_proxies,
        }
    }

    /// A list of IP addresses or CIDR networks, as a TOML array or (from the environment) one
    /// string separated by commas or spaces. A bare address is a /32 or /128 network.
    fn networks(&mut self, dict: Option<&Dict>, section: &str, key: &str) -> Vec<IpNet> {
        let Some(value) = dict.and_then(|d| d.get(key)) else { return Vec::new() };
        let full = format!("{section}.{key}");
        let items: Option<Vec<String>> = match value {
            Value::String(_, s) => {
                Some(s.split([',', ' ']).filter(|i| !i.is_empty()).map(str::to_owned).collect())
            }
            Value::Array(_, items) => items.iter().map(|i| i.as_str().map(str::to_owned)).collect(),
            _ => None,
        };
        let Some(items) = items else {
            self.problem(
                Some(value),
                &full,
                "must be a list of IP addresses or networks, e.g. [\"10.0.0.0/8\"]",
            );
            return Vec::new();
        };
        let mut networks = Vec::new();
        for item in items {
            let parsed = item.parse::<IpNet>().or_else(|_| item.parse::<std::net::IpAddr>().map(IpNet::from));
            match parsed {
                Ok(net) => networks.push(net.trunc()),
                Err(_) => self.problem(
                    Some(value),
                    &full,
                    format!("{item:?} is not an IP address or a network like 10.0.0.0/8"),
                ),
            }
        }
        networks
    }

    fn limits(&mut self, value: Option<&Value>) -> LimitsConfig {
        let dict = self.table(value, "limits");
        if let Some(d) = dict {
            self.unknown_keys(d, "limits", known("limits"));
        }
        let defaults = LimitsConfig::default();
        let mut per_minute = |key: &str, default: u32| {
            self.number(dict, "limits", key, 0, 1_000_000).map_or(default, |n| n as u32)
        };
        LimitsConfig {
            authorize_per_minute: per_minute("authorize_per_minute", defaults.authorize_per_minute),
            callback_per_minute: per_minute("callback_per_minute", defaults.callback_per_minute),
            dev_provider_per_minute: per_minute("dev_provider_per_minute", defaults.dev_provider_per_minute),
        }
    }

    fn log(&mut self, value: Option<&Value>) -> LogConfig {
        let dict = self.table(value, "log");
        if let Some(d) = dict {
            self.unknown_keys(d, "log", known("log"));
        }
        let format = match self.text(dict, "log", "format").as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                self.problem(
                    dict.and_then(|d| d.get("format")),
                    "log.format",
                    format!("{other:?} is not text or json"),
                );
                LogFormat::Text
            }
        };
        LogConfig { format }
    }

    /// The development provider believes any address typed into it, so it must never be
    /// reachable by anyone else: refused with a deployment's `public_url` (https or not
    /// loopback) or a non-loopback bind address, unless forced; and never switched on by
    /// default there.
    fn dev_provider_exposure(
        &mut self,
        server: &ServerConfig,
        providers: &[ProviderConfig],
        implicit: bool,
        table: Option<&Value>,
    ) {
        let exposed = crate::providers::dev::exposure(server.public_url.as_ref(), server.bind);
        let Some(why) = exposed else { return };
        if implicit {
            self.problems.push(format!(
                "configuration: `providers`: no login provider is configured, and the development provider \
                 (which believes any address typed into it) is only enabled by default for a local try-out: \
                 {why}. Configure a provider (for example GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET, or a \
                 [providers.NAME] table)"
            ));
            return;
        }
        for p in
            providers.iter().filter(|p| p.preset == Some(Preset::Dev) && !p.dangerously_allow_non_loopback)
        {
            let key = format!("providers.{}", p.name);
            let value = table.and_then(|t| t.as_dict()).and_then(|d| d.get(p.name.as_str()));
            self.problem(
                value,
                &key,
                format!(
                    "the development provider believes any address typed into it, so it only runs locally: \
                     {why}. Remove [{key}] (it is for development only), or set \
                     `{key}.dangerously_allow_non_loopback = true` if you really mean it"
                ),
            );
        }
    }

    fn database(&mut self, value: Option<&Value>) -> DatabaseConfig {
        let dict = self.table(value, "database");
        if let Some(d) = dict {
            self.unknown_keys(d, "database", known("database"));
        }
        let url = self.text(dict, "database", "url").unwrap_or_else(|| DEFAULT_DATABASE_URL.into());
        let known = ["sqlite:", "postgres://", "postgresql://"];
        if !known.iter().any(|p| url.starts_with(p)) {
            self.problem(
                dict.and_then(|d| d.get("url")),
                "database.url",
                "must start with sqlite:// or postgres://",
            );
        }
        DatabaseConfig { url }
    }

    fn http(&mut self, value: Option<&Value>) -> HttpConfig {
        let dict = self.table(value, "http");
        if let Some(d) = dict {
            self.unknown_keys(d, "http", known("http"));
        }
        let defaults = HttpConfig::default();
        let ms = Duration::from_millis;
        HttpConfig {
            connect_timeout: self
                .number(dict, "http", "connect_timeout_ms", 1, 60_000)
                .map_or(defaults.connect_timeout, ms),
            timeout: self.number(dict, "http", "timeout_ms", 1, 120_000).map_or(defaults.timeout, ms),
            max_response_bytes: self
                .number(dict, "http", "max_response_bytes", 1024, 64 * 1024 * 1024)
                .map_or(defaults.max_response_bytes, |n| n as usize),
        }
    }

    fn providers(&mut self, value: Option<&Value>) -> Vec<ProviderConfig> {
        let Some(dict) = self.table(value, "providers") else {
            return Vec::new();
        };
        let mut out = BTreeMap::new();
        for (name, value) in dict {
            let key = format!("providers.{name}");
            let parsed_name = match ProviderName::parse(name) {
                Ok(n) => n,
                Err(e) => {
                    self.problem(Some(value), &key, e);
                    continue;
                }
            };
            let Some(table) = self.table(Some(value), &key) else {
                continue;
            };
            if let Some(p) = self.provider(parsed_name, value, table, &key) {
                out.insert(name.clone(), p);
            }
        }
        out.into_values().collect()
    }

    fn provider(
        &mut self,
        name: ProviderName,
        value: &Value,
        table: &Dict,
        key: &str,
    ) -> Option<ProviderConfig> {
        self.unknown_keys(table, key, known("providers.*"));
        let t = Some(table);
        let preset = match self.text(t, key, "preset") {
            Some(p) => match Preset::from_name(&p) {
                Some(preset) => Some(preset),
                None => {
                    self.problem(
                        table.get("preset"),
                        &format!("{key}.preset"),
                        format!("unknown preset {p:?} (known: {})", Preset::NAMES.join(", ")),
                    );
                    return None;
                }
            },
            None => Preset::from_name(name.as_str()),
        };
        let mut config = match preset {
            Some(preset) => preset.defaults(name),
            None => {
                let display = title_case(name.as_str());
                ProviderConfig::blank(name, None, &display)
            }
        };
        let problems_before = self.problems.len();

        if let Some(v) = self.text(t, key, "display_name") {
            config.display_name = v;
        }
        if let Some(v) = self.text(t, key, "client_id") {
            config.client_id = v;
        }
        if let Some(v) = self.text(t, key, "client_secret") {
            config.client_secret = Some(ClientSecret::new(v));
        }
        for (field, slot) in [
            ("authorize_url", &mut config.authorize_url),
            ("token_url", &mut config.token_url),
            ("userinfo_url", &mut config.userinfo_url),
        ] {
            if let Some(url) = self.endpoint(t, key, field) {
                *slot = Some(url);
            }
        }
        if let Some(scopes) = self.scopes(table.get("scopes"), &format!("{key}.scopes")) {
            config.scopes = scopes;
        }
        match self.text(t, key, "token_auth").as_deref() {
            None => {}
            Some("client_secret_post") => config.token_auth = Some(TokenAuth::ClientSecretPost),
            Some("client_secret_basic") => config.token_auth = Some(TokenAuth::ClientSecretBasic),
            Some(other) => self.problem(
                table.get("token_auth"),
                &format!("{key}.token_auth"),
                format!("{other:?} is not client_secret_post or client_secret_basic"),
            ),
        }
        let explicit_issuer = self.issuer(t, key);
        if let Some(issuer) = &explicit_issuer {
            if preset == Some(Preset::Github) || preset == Some(Preset::Dev) {
                self.problem(
                    table.get("issuer"),
                    &format!("{key}.issuer"),
                    "this preset does not use OpenID Connect discovery",
                );
            } else {
                config.issuer = Some(issuer.clone());
            }
        }
        if let Some(tenant) = self.text(t, key, "tenant") {
            if preset != Some(Preset::Microsoft) {
                self.problem(
                    table.get("tenant"),
                    &format!("{key}.tenant"),
                    "only applies to preset = \"microsoft\"",
                );
            } else if !is_tenant(&tenant) {
                self.problem(
                    table.get("tenant"),
                    &format!("{key}.tenant"),
                    "must be common, organizations, consumers, a tenant id or a domain",
                );
            } else {
                config.tenant = Some(tenant);
            }
        }
        if preset == Some(Preset::Microsoft) {
            match &explicit_issuer {
                // An explicit issuer (national cloud, tests) names its tenant in its path.
                Some(_) if !table.contains_key("tenant") => config.tenant = None,
                Some(_) => {}
                None => {
                    let tenant = config.tenant.clone().unwrap_or_else(|| "common".into());
                    config.issuer =
                        Issuer::parse(&format!("https://login.microsoftonline.com/{tenant}/v2.0")).ok();
                    config.tenant = Some(tenant);
                }
            }
        }
        if let Some(v) = self.boolean(t, key, "allow_hmac_id_tokens") {
            config.allow_hmac_id_tokens = v;
        }
        match self.text(t, key, "response_mode").as_deref() {
            None => {}
            Some("query") => config.response_mode = ResponseMode::Query,
            Some("form_post") => config.response_mode = ResponseMode::FormPost,
            Some(other) => self.problem(
                table.get("response_mode"),
                &format!("{key}.response_mode"),
                format!("{other:?} is not query or form_post"),
            ),
        }
        if config.issuer.is_some() || preset == Some(Preset::Dev) {
            // OpenID Connect: `openid` must be requested (Core §3.1.2.1).
            if config.scopes.is_empty() {
                config.scopes = ["openid", "email", "profile"].map(String::from).to_vec();
            } else if !config.scopes.iter().any(|s| s == "openid") {
                config.scopes.insert(0, "openid".into());
            }
        }
        if preset == Some(Preset::Microsoft) && !config.scopes.iter().any(|s| s == "profile") {
            // Entra puts `oid` (half of the identity key, see providers::microsoft) in the ID
            // token only with the `profile` scope; without it every login would fail.
            config.scopes.push("profile".into());
        }
        if config.issuer.is_some() {
            for field in ["authorize_url", "token_url", "userinfo_url"] {
                if table.contains_key(field) {
                    self.problem(
                        table.get(field),
                        &format!("{key}.{field}"),
                        "comes from OpenID Connect discovery when issuer is set; remove one of them",
                    );
                }
            }
        }
        if let Some(v) = self.boolean(t, key, "dangerously_allow_non_loopback") {
            if preset != Some(Preset::Dev) {
                self.problem(
                    table.get("dangerously_allow_non_loopback"),
                    &format!("{key}.dangerously_allow_non_loopback"),
                    "only applies to the development provider (preset = \"dev\")",
                );
            }
            config.dangerously_allow_non_loopback = v;
        }
        if preset == Some(Preset::Gitlab)
            && !config.issuer.as_ref().is_some_and(|i| is_gitlab_com(i.as_str()))
        {
            // A self-hosted GitLab's administrators decide what counts as verified there.
            config.trust_email_verified = false;
        }
        if let Some(v) = self.boolean(t, key, "trust_email_verified") {
            if preset == Some(Preset::Dev) && v {
                self.problem(
                    table.get("trust_email_verified"),
                    &format!("{key}.trust_email_verified"),
                    "the development provider believes anything typed into it; its addresses never count for linking",
                );
            }
            config.trust_email_verified = v && preset != Some(Preset::Dev);
        }
        let userinfo_key = format!("{key}.userinfo");
        if let Some(ui) = self.table(table.get("userinfo"), &userinfo_key) {
            self.unknown_keys(ui, &userinfo_key, known("providers.*.userinfo"));
            let p = &mut config.userinfo;
            for (field, slot) in [
                ("email", &mut p.email),
                ("email_verified", &mut p.email_verified),
                ("subject", &mut p.subject),
                ("name", &mut p.name),
                ("avatar", &mut p.avatar),
                ("username", &mut p.username),
            ] {
                if let Some(pointer) = self.text(Some(ui), &userinfo_key, field) {
                    if is_json_pointer(&pointer) {
                        *slot = Some(pointer);
                    } else {
                        self.problem(
                            ui.get(field),
                            &format!("{userinfo_key}.{field}"),
                            format!("{pointer:?} is not a JSON Pointer (RFC 6901), e.g. \"/email\""),
                        );
                    }
                }
            }
        }
        if self.problems.len() > problems_before {
            return None;
        }

        // What every provider must end up with, from its preset or from the table.
        let mut missing = Vec::new();
        let oidc = config.issuer.is_some();
        if preset != Some(Preset::Dev) {
            if config.client_id.is_empty() {
                missing.push("client_id");
            }
            if config.client_secret.as_ref().is_none_or(|s| s.expose().is_empty()) {
                missing.push("client_secret");
            }
        }
        if preset != Some(Preset::Dev) && !oidc {
            for (field, value) in [
                ("authorize_url", config.authorize_url.is_some()),
                ("token_url", config.token_url.is_some()),
                ("userinfo_url", config.userinfo_url.is_some()),
                ("userinfo.email", config.userinfo.email.is_some()),
                ("userinfo.subject", config.userinfo.subject.is_some()),
            ] {
                if !value {
                    missing.push(field);
                }
            }
        }
        for field in missing {
            let hint = match field {
                "client_id" | "client_secret" => format!(
                    " (set it in the file or as {}_{})",
                    config.name.as_str().to_uppercase().replace('-', "_"),
                    field.to_uppercase()
                ),
                _ => String::new(),
            };
            self.problems.push(format!("{}: `{key}.{field}`: missing{hint}", self.source(value)));
        }
        (self.problems.len() == problems_before).then_some(config)
    }

    fn scopes(&mut self, value: Option<&Value>, key: &str) -> Option<Vec<String>> {
        let value = value?;
        let scopes: Option<Vec<String>> = match value {
            Value::String(_, s) => Some(s.split_whitespace().map(str::to_owned).collect()),
            Value::Array(_, items) => items.iter().map(|i| i.as_str().map(str::to_owned)).collect(),
            _ => None,
        };
        match scopes {
            Some(s) if s.iter().all(|s| is_scope_token(s)) => Some(s),
            _ => {
                self.problem(Some(value), key, "must be a list of scope names without spaces or quotes");
                None
            }
        }
    }
}

/// A Microsoft tenant: a well-known alias, a GUID or a verified domain name.
fn is_tenant(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )` (RFC 6749 §3.3).
fn is_scope_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

/// RFC 6901: empty (the whole document) or `/`-separated tokens with `~0`/`~1` escapes.
fn is_json_pointer(s: &str) -> bool {
    if s.is_empty() {
        return true;
    }
    if !s.starts_with('/') {
        return false;
    }
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '~' && !matches!(chars.next(), Some('0' | '1')) {
            return false;
        }
    }
    true
}

fn title_case(name: &str) -> String {
    let mut chars = name.chars();
    chars.next().map_or_else(String::new, |c| c.to_uppercase().chain(chars).collect())
}

/// True for gitlab.com's own issuer (its e-mail verification is GitLab's, not an instance admin's).
fn is_gitlab_com(issuer: &str) -> bool {
    Url::parse(issuer)
        .is_ok_and(|u| u.scheme() == "https" && u.host_str() == Some("gitlab.com") && u.path() == "/")
}

/// True when the URL's host is a loopback address or `localhost`.
pub fn is_loopback_url(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
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
    fn empty_config_means_dev_provider() {
        let config = Config::from_toml("").unwrap();
        assert!(config.dev_provider_by_default);
        assert_eq!(config.providers.len(), 1);
        assert_eq!(config.providers[0].name.as_str(), "dev");
        assert_eq!(config.server.bind.to_string(), DEFAULT_BIND);
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
    fn generic_provider_from_data() {
        let text = r#"
            [providers.corp]
            display_name = "Corp SSO"
            authorize_url = "https://sso.corp.example/authorize"
            token_url = "https://sso.corp.example/token"
            userinfo_url = "https://sso.corp.example/me"
            client_id = "id"
            client_secret = "secret"
            scopes = ["openid", "email"]
            token_auth = "client_secret_basic"
            [providers.corp.userinfo]
            email = "/data/mail"
            subject = "/data/id"
        "#;
        let config = Config::from_toml(text).unwrap();
        assert!(!config.dev_provider_by_default);
        let corp = &config.providers[0];
        assert_eq!(corp.display_name, "Corp SSO");
        assert_eq!(corp.token_auth, Some(TokenAuth::ClientSecretBasic));
        assert_eq!(corp.userinfo.email.as_deref(), Some("/data/mail"));
        assert_eq!(corp.scopes, vec!["openid", "email"]);
    }

    #[test]
    fn oidc_providers_need_only_an_issuer() {
        let text = r#"
            [providers.okta]
            issuer = "https://dev-1.okta.com/oauth2/default"
            client_id = "id"
            client_secret = "secret"
            [providers.microsoft]
            tenant = "organizations"
            client_id = "id"
            client_secret = "secret"
            [providers.gitlab]
            client_id = "id"
            client_secret = "secret"
        "#;
        let config = Config::from_toml(text).unwrap();
        let by = |n: &str| config.providers.iter().find(|p| p.name.as_str() == n).unwrap();
        assert_eq!(by("okta").issuer.as_ref().unwrap().as_str(), "https://dev-1.okta.com/oauth2/default");
        assert_eq!(
            by("microsoft").issuer.as_ref().unwrap().as_str(),
            "https://login.microsoftonline.com/organizations/v2.0"
        );
        // Exactly as documented: no slash added (issuers compare as exact strings).
        assert_eq!(by("gitlab").issuer.as_ref().unwrap().as_str(), "https://gitlab.com");
        assert_eq!(by("okta").scopes, vec!["openid", "email", "profile"]);
    }

    #[test]
    fn issuers_are_kept_exactly_as_written() {
        let text = r#"
            [providers.auth0]
            issuer = "https://tenant.auth0.com/"
            client_id = "id"
            client_secret = "secret"
            [providers.keycloak]
            issuer = "https://sso.example/realms/main"
            client_id = "id"
            client_secret = "secret"
            [providers.google]
            client_id = "id"
            client_secret = "secret"
        "#;
        let config = Config::from_toml(text).unwrap();
        let by = |n: &str| config.providers.iter().find(|p| p.name.as_str() == n).unwrap();
        assert_eq!(by("auth0").issuer.as_ref().unwrap().as_str(), "https://tenant.auth0.com/");
        assert_eq!(by("keycloak").issuer.as_ref().unwrap().as_str(), "https://sso.example/realms/main");
        assert_eq!(by("google").issuer.as_ref().unwrap().as_str(), "https://accounts.google.com");
    }

    #[test]
    fn bad_issuers_are_refused_with_their_key() {
        let text = r#"
            [providers.a]
            issuer = "http://idp.example"
            client_id = "id"
            client_secret = "secret"
            [providers.b]
            issuer = "https://idp.example/?tenant=x"
            client_id = "id"
            client_secret = "secret"
            [providers.c]
            issuer = "https://idp.example/#x"
            client_id = "id"
            client_secret = "secret"
            [providers.d]
            issuer = "idp.example"
            client_id = "id"
            client_secret = "secret"
        "#;
        let all = Config::from_toml(text).unwrap_err().0.join("\n");
        for expected in [
            "`providers.a.issuer`: must use https",
            "`providers.b.issuer`: must not have a query or fragment",
            "`providers.c.issuer`: must not have a query or fragment",
            "`providers.d.issuer`: is not a valid URL",
        ] {
            assert!(all.contains(expected), "missing {expected:?} in:\n{all}");
        }
    }

    #[test]
    fn issuer_and_endpoints_are_exclusive() {
        let text = r#"
            [providers.x]
            issuer = "https://idp.example"
            token_url = "https://idp.example/token"
            client_id = "id"
            client_secret = "secret"
            tenant = "common"
        "#;
        let all = Config::from_toml(text).unwrap_err().0.join("\n");
        assert!(all.contains("`providers.x.token_url`: comes from OpenID Connect discovery"), "{all}");
        assert!(all.contains("`providers.x.tenant`: only applies"), "{all}");
    }

    #[test]
    fn numbers_from_toml_and_environment() {
        let config = Config::from_toml("[http]\ntimeout_ms = 1500\nmax_response_bytes = 4096").unwrap();
        assert_eq!(config.http.timeout, Duration::from_millis(1500));
        assert_eq!(config.http.max_response_bytes, 4096);
        assert!(Config::from_toml("[http]\ntimeout_ms = -5").is_err());
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
        let text = include_str!("../loginwith.example.toml");
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

    fn problems(text: &str) -> String {
        Config::from_toml(text).err().map(|e| e.0.join("\n")).unwrap_or_default()
    }

    const GOOGLE: &str = "[providers.google]\nclient_id = \"id\"\nclient_secret = \"secret\"\n";

    #[test]
    fn the_dev_provider_refuses_a_deployment() {
        for server in [
            "public_url = \"https://login.example.com\"",
            "public_url = \"https://localhost:8443\"",
            "public_url = \"http://login.example.com\"",
            "bind = \"0.0.0.0:5000\"",
        ] {
            let all = problems(&format!("[server]\n{server}\n[providers.dev]\n{GOOGLE}"));
            assert!(
                all.contains("`providers.dev`: the development provider believes any address"),
                "{server}: {all}"
            );
            assert!(all.contains("dangerously_allow_non_loopback"), "{all}");
            // Forced, it starts.
            let forced = format!(
                "[server]\n{server}\n[providers.dev]\ndangerously_allow_non_loopback = true\n{GOOGLE}"
            );
            assert_eq!(problems(&forced), "", "{server}");
        }
        // Locally, it is fine.
        assert_eq!(problems("[server]\npublic_url = \"http://127.0.0.1:5000\"\n[providers.dev]\n"), "");
    }

    #[test]
    fn the_dev_provider_is_never_implicit_in_a_deployment() {
        let all = problems("[server]\npublic_url = \"https://login.example.com\"\n");
        assert!(all.contains("`providers`: no login provider is configured"), "{all}");
        let all = problems("[server]\nbind = \"0.0.0.0:5000\"\n");
        assert!(all.contains("no login provider is configured"), "{all}");
        // With a real provider, nothing is implicit and nothing is wrong.
        let config =
            Config::from_toml(&format!("[server]\npublic_url = \"https://login.example.com\"\n{GOOGLE}"))
                .unwrap();
        assert!(!config.dev_provider_by_default);
        assert!(config.providers.iter().all(|p| p.preset != Some(Preset::Dev)));
    }

    #[test]
    fn linking_trust_defaults_per_provider() {
        let text = format!(
            "{GOOGLE}[providers.github]\nclient_id = \"i\"\nclient_secret = \"s\"\n\
             [providers.gitlab]\nclient_id = \"i\"\nclient_secret = \"s\"\n\
             [providers.selfhosted]\npreset = \"gitlab\"\nissuer = \"https://gitlab.corp.example\"\nclient_id = \"i\"\nclient_secret = \"s\"\n\
             [providers.sso]\nissuer = \"https://sso.example.com\"\nclient_id = \"i\"\nclient_secret = \"s\"\n\
             [providers.trusted]\nissuer = \"https://idp.example.com\"\nclient_id = \"i\"\nclient_secret = \"s\"\ntrust_email_verified = true\n\
             [providers.dev]\n"
        );
        let config = Config::from_toml(&text).unwrap_or_else(|e| panic!("{e}"));
        let trust =
            |n: &str| config.providers.iter().find(|p| p.name.as_str() == n).unwrap().trust_email_verified;
        assert!(trust("google") && trust("github") && trust("gitlab") && trust("trusted"));
        assert!(!trust("selfhosted") && !trust("sso") && !trust("dev"));
        let all = problems("[providers.dev]\ntrust_email_verified = true\n");
        assert!(all.contains("`providers.dev.trust_email_verified`"), "{all}");
    }

    #[test]
    fn limits_log_proxies_and_hsts() {
        let config = Config::from_toml(
            "[server]\ntrusted_proxies = [\"127.0.0.1\", \"10.1.2.3/8\", \"::1\"]\nhsts_max_age_secs = 0\n\
             [limits]\nauthorize_per_minute = 0\ncallback_per_minute = 5\n[log]\nformat = \"json\"\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let nets: Vec<String> = config.server.trusted_proxies.iter().map(|n| n.to_string()).collect();
        assert_eq!(nets, ["127.0.0.1/32", "10.0.0.0/8", "::1/128"]);
        assert_eq!(config.server.hsts_max_age_secs, 0);
        assert_eq!(config.limits.authorize_per_minute, 0);
        assert_eq!(config.limits.callback_per_minute, 5);
        assert_eq!(config.limits.dev_provider_per_minute, LimitsConfig::default().dev_provider_per_minute);
        assert_eq!(config.log.format, LogFormat::Json);
        let all = problems("[server]\ntrusted_proxies = [\"nonsense\"]\n[limits]\nburst = 3\ncallback_per_minute = -1\n[log]\nformat = \"xml\"\n");
        for expected in [
            "`server.trusted_proxies`: \"nonsense\"",
            "`limits.burst`: unknown key",
            "`limits.callback_per_minute`",
            "`log.format`",
        ] {
            assert!(all.contains(expected), "missing {expected}: {all}");
        }
    }

    #[test]
    fn pointers_and_scopes() {
        assert!(is_json_pointer("/a~1b/0"));
        assert!(!is_json_pointer("/a~2"));
        assert!(!is_json_pointer("a"));
        assert!(is_scope_token("user:email"));
        assert!(!is_scope_token("a\"b"));
    }
}
