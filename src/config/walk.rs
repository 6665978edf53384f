//! The validating walk over the merged tree of values: reads each key as the type it must be,
//! records every problem with its key and source instead of stopping at the first, and builds the
//! small sections (`[server]`, `[database]`, `[http]`, `[limits]`, `[log]`).

use super::{
    is_loopback_url, known, DatabaseConfig, HttpConfig, LimitsConfig, LogConfig, LogFormat, ServerConfig,
    DEFAULT_BIND, DEFAULT_DATABASE_URL, DEFAULT_HSTS_MAX_AGE_SECS,
};
use crate::domain::secret::SecretKey;
use crate::domain::Issuer;
use figment::value::{Dict, Value};
use figment::Figment;
use ipnet::IpNet;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use url::Url;

/// The validating walk over the merged tree.
pub(super) struct Walk<'a> {
    pub(super) figment: &'a Figment,
    pub(super) problems: Vec<String>,
}

impl Walk<'_> {
    /// Names the source of a value: the file path or the environment.
    pub(super) fn source(&self, value: &Value) -> String {
        match self.figment.get_metadata(value.tag()) {
            Some(meta) => match &meta.source {
                Some(figment::Source::File(path)) => path.display().to_string(),
                _ => meta.name.to_string(),
            },
            None => "configuration".to_owned(),
        }
    }

    pub(super) fn problem(&mut self, value: Option<&Value>, key: &str, what: impl fmt::Display) {
        let source = value.map_or_else(|| "configuration".to_owned(), |v| self.source(v));
        self.problems.push(format!("{source}: `{key}`: {what}"));
    }

    pub(super) fn unknown_keys(&mut self, dict: &Dict, prefix: &str, known: &[&str]) {
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
    pub(super) fn table<'v>(&mut self, value: Option<&'v Value>, key: &str) -> Option<&'v Dict> {
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
    pub(super) fn text(&mut self, dict: Option<&Dict>, section: &str, key: &str) -> Option<String> {
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

    /// One of a closed list of names (`query` or `form_post`), as `from_name` reads them.
    pub(super) fn named<T>(
        &mut self,
        dict: Option<&Dict>,
        section: &str,
        key: &str,
        names: &[&str],
        from_name: impl Fn(&str) -> Option<T>,
    ) -> Option<T> {
        let text = self.text(dict, section, key)?;
        let parsed = from_name(&text);
        if parsed.is_none() {
            let value = dict.and_then(|d| d.get(key));
            self.problem(
                value,
                &format!("{section}.{key}"),
                format!("{text:?} is not {}", names.join(" or ")),
            );
        }
        parsed
    }

    pub(super) fn boolean(&mut self, dict: Option<&Dict>, section: &str, key: &str) -> Option<bool> {
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

    pub(super) fn number(
        &mut self,
        dict: Option<&Dict>,
        section: &str,
        key: &str,
        min: u64,
        max: u64,
    ) -> Option<u64> {
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

    pub(super) fn url(&mut self, dict: Option<&Dict>, section: &str, key: &str) -> Option<Url> {
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
    pub(super) fn issuer(&mut self, dict: Option<&Dict>, section: &str) -> Option<Issuer> {
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
    pub(super) fn endpoint(&mut self, dict: Option<&Dict>, section: &str, key: &str) -> Option<Url> {
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

    pub(super) fn server(&mut self, value: Option<&Value>) -> ServerConfig {
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
    pub(super) fn networks(&mut self, dict: Option<&Dict>, section: &str, key: &str) -> Vec<IpNet> {
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

    pub(super) fn limits(&mut self, value: Option<&Value>) -> LimitsConfig {
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

    pub(super) fn log(&mut self, value: Option<&Value>) -> LogConfig {
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

    pub(super) fn database(&mut self, value: Option<&Value>) -> DatabaseConfig {
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

    pub(super) fn http(&mut self, value: Option<&Value>) -> HttpConfig {
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
}
