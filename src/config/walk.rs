//! The validating walk over the merged tree of values: reads each key as the type it must be,
//! records every problem with its key and source instead of stopping at the first, and builds the
//! small sections (`[server]`, `[database]`, `[http]`, `[limits]`, `[log]`, `[access]`, `[api]`,
//! `[sessions]`).

use super::{
    is_loopback_url, known, AccessConfig, ApiConfig, DatabaseConfig, GatewayConfig, GatewayRule, HostPattern,
    HttpConfig, LimitsConfig, LogConfig, LogFormat, ServerConfig, SessionsConfig, Unauthenticated,
    DEFAULT_BIND, DEFAULT_DATABASE_URL, DEFAULT_HSTS_MAX_AGE_SECS, DEFAULT_SESSIONS_KEY_PREFIX,
};
use crate::domain::secret::{ConnectionUrl, SecretKey};
use crate::domain::{Email, Issuer, ProviderName, ReturnTo};
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
        let metrics_bind = self.text(dict, "server", "metrics_bind").and_then(|text| {
            let value = dict.and_then(|d| d.get("metrics_bind"));
            match text.parse::<SocketAddr>() {
                Err(_) => {
                    self.problem(
                        value,
                        "server.metrics_bind",
                        format!("{text:?} is not an address like 127.0.0.1:9090"),
                    );
                    None
                }
                Ok(addr) if addr.port() != 0 && bind.is_some_and(|b| b == addr) => {
                    self.problem(value, "server.metrics_bind", "must differ from server.bind");
                    None
                }
                Ok(addr) => Some(addr),
            }
        });
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
        let after_login = self.return_to(dict, "server", "after_login");
        let after_logout = self.return_to(dict, "server", "after_logout");
        let cookie_domain = self.cookie_domain(dict, public_url.as_ref());
        let shutdown_grace_secs = self
            .number(dict, "server", "shutdown_grace_secs", 0, 3600)
            .unwrap_or(super::DEFAULT_SHUTDOWN_GRACE_SECS);
        ServerConfig {
            bind: bind.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 5000))),
            metrics_bind,
            public_url,
            secret_key,
            secret_key_file,
            login_timeout_secs,
            session_cache,
            hsts_max_age_secs,
            trusted_proxies,
            after_login,
            after_logout,
            cookie_domain,
            shutdown_grace_secs,
        }
    }

    /// `server.cookie_domain`: a domain that `public_url`'s host is, or is under (a browser
    /// refuses a cookie for any other domain, and every login would silently fail).
    fn cookie_domain(&mut self, dict: Option<&Dict>, public_url: Option<&Url>) -> Option<String> {
        let text = self.text(dict, "server", "cookie_domain")?;
        let value = dict.and_then(|d| d.get("cookie_domain"));
        let domain = match HostPattern::parse(text.trim_start_matches('.')) {
            Ok(pattern) => pattern.as_str().to_owned(),
            Err(why) => {
                self.problem(value, "server.cookie_domain", why);
                return None;
            }
        };
        let host = public_url.and_then(Url::host_str).map(str::to_ascii_lowercase);
        match host {
            Some(host) if host == domain || host.ends_with(&format!(".{domain}")) => Some(domain),
            Some(host) => {
                self.problem(
                    value,
                    "server.cookie_domain",
                    format!("{domain:?} does not contain public_url's host {host:?}: browsers would refuse the cookie"),
                );
                None
            }
            None => {
                self.problem(
                    value,
                    "server.cookie_domain",
                    "needs server.public_url, whose host must be in this domain",
                );
                None
            }
        }
    }

    /// A path on this site to send a browser to, by the same rule as a `next` parameter
    /// ([`ReturnTo`]): a value naming another host would make every login an open redirect.
    pub(super) fn return_to(&mut self, dict: Option<&Dict>, section: &str, key: &str) -> Option<ReturnTo> {
        let text = self.text(dict, section, key)?;
        let parsed = ReturnTo::parse(&text);
        if parsed.is_none() {
            self.problem(
                dict.and_then(|d| d.get(key)),
                &format!("{section}.{key}"),
                format!(
                    "{text:?} is not a path on this site: it must start with a single `/` (like \"/welcome\"), \
                     without a scheme, host, backslash, space or control character"
                ),
            );
        }
        parsed
    }

    /// A list of IP addresses or CIDR networks. A bare address is a /32 or /128 network.
    pub(super) fn networks(&mut self, dict: Option<&Dict>, section: &str, key: &str) -> Vec<IpNet> {
        let what = "must be a list of IP addresses or networks, e.g. [\"10.0.0.0/8\"]";
        self.list(dict, section, key, what, |item| {
            let parsed = item.parse::<IpNet>().or_else(|_| item.parse::<std::net::IpAddr>().map(IpNet::from));
            parsed
                .map(|net| net.trunc())
                .map_err(|_| format!("{item:?} is not an IP address or a network like 10.0.0.0/8"))
        })
    }

    /// A list, as a TOML array of strings or (from the environment, where a value is one string)
    /// one string separated by commas or spaces, each item read by `parse`. A value that is no
    /// list is one problem (`what` says what it must be); each refused item is one more.
    pub(super) fn list<T>(
        &mut self,
        dict: Option<&Dict>,
        section: &str,
        key: &str,
        what: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Vec<T> {
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
            self.problem(Some(value), &full, what);
            return Vec::new();
        };
        let mut parsed = Vec::new();
        for item in items {
            match parse(&item) {
                Ok(p) => parsed.push(p),
                Err(why) => self.problem(Some(value), &full, why),
            }
        }
        parsed
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

    /// `[access]`: the addresses and domains allowed to log in.
    /// `[access]`, or the same keys in a `[[gateway.rules]]` table (`section` names it).
    pub(super) fn access(&mut self, value: Option<&Value>, section: &str) -> AccessConfig {
        let dict = self.table(value, section);
        if let Some(d) = dict {
            let keys = if section == "access" { known("access") } else { known("gateway.rules") };
            self.unknown_keys(d, section, keys);
        }
        self.access_keys(dict, section)
    }

    fn access_keys(&mut self, dict: Option<&Dict>, section: &str) -> AccessConfig {
        let emails = "must be a list of e-mail addresses, e.g. [\"alice@example.com\"]";
        let domains = "must be a list of domain names, e.g. [\"example.com\"]";
        let providers = "must be a list of provider names, e.g. [\"google\"]";
        AccessConfig {
            verified_only: self.boolean(dict, section, "verified_only").unwrap_or(false),
            allowed_emails: self.list(dict, section, "allowed_emails", emails, allowed_email),
            allowed_domains: self.list(dict, section, "allowed_domains", domains, allowed_domain),
            allowed_providers: self.list(dict, section, "allowed_providers", providers, |p| {
                ProviderName::parse(p).map(|n| n.as_str().to_owned())
            }),
        }
    }

    /// `[api]`: the origins allowed to call the JSON API across origins.
    pub(super) fn api(&mut self, value: Option<&Value>) -> ApiConfig {
        let dict = self.table(value, "api");
        if let Some(d) = dict {
            self.unknown_keys(d, "api", known("api"));
        }
        let origins = "must be a list of origins, e.g. [\"https://app.example.com\"]";
        ApiConfig { allowed_origins: self.list(dict, "api", "allowed_origins", origins, allowed_origin) }
    }

    /// `[sessions]`: the database (the default) or one Redis server.
    pub(super) fn sessions(&mut self, value: Option<&Value>) -> SessionsConfig {
        let dict = self.table(value, "sessions");
        if let Some(d) = dict {
            self.unknown_keys(d, "sessions", known("sessions"));
        }
        let url = self.text(dict, "sessions", "url").filter(|url| {
            let problem = crate::sessions::redis::url_problem(url);
            if let Some(why) = &problem {
                self.problem(dict.and_then(|d| d.get("url")), "sessions.url", why);
            }
            problem.is_none()
        });
        let key_prefix =
            self.text(dict, "sessions", "key_prefix").unwrap_or_else(|| DEFAULT_SESSIONS_KEY_PREFIX.into());
        if key_prefix.is_empty()
            || key_prefix.len() > 64
            || key_prefix.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            self.problem(
                dict.and_then(|d| d.get("key_prefix")),
                "sessions.key_prefix",
                "must be 1 to 64 characters without spaces, e.g. \"loginwith:\"",
            );
        }
        SessionsConfig { url: url.map(ConnectionUrl::new), key_prefix }
    }

    pub(super) fn gateway(&mut self, value: Option<&Value>) -> GatewayConfig {
        let dict = self.table(value, "gateway");
        if let Some(d) = dict {
            self.unknown_keys(d, "gateway", known("gateway"));
        }
        let unauthenticated = match self.text(dict, "gateway", "unauthenticated").as_deref() {
            None | Some("401") => Unauthenticated::Status,
            Some("redirect") => Unauthenticated::Redirect,
            Some(other) => {
                self.problem(
                    dict.and_then(|d| d.get("unauthenticated")),
                    "gateway.unauthenticated",
                    format!("{other:?} is not \"401\" or \"redirect\""),
                );
                Unauthenticated::Status
            }
        };
        let hosts = "must be a list of host names, e.g. [\"app.example.com\", \".example.com\"]";
        let allowed_redirect_hosts =
            self.list(dict, "gateway", "allowed_redirect_hosts", hosts, HostPattern::parse);
        let mut rules = Vec::new();
        match dict.and_then(|d| d.get("rules")) {
            None => {}
            Some(Value::Array(_, items)) => {
                for (i, item) in items.iter().enumerate() {
                    let section = format!("gateway.rules[{i}]");
                    let Some(table) = self.table(Some(item), &section) else { continue };
                    self.unknown_keys(table, &section, known("gateway.rules"));
                    let host = match self.text(Some(table), &section, "host") {
                        Some(h) => match HostPattern::parse(&h) {
                            Ok(h) => Some(h),
                            Err(why) => {
                                self.problem(table.get("host"), &format!("{section}.host"), why);
                                None
                            }
                        },
                        None => {
                            self.problem(Some(item), &format!("{section}.host"), "missing");
                            None
                        }
                    };
                    let access = self.access_keys(Some(table), &section);
                    if let Some(host) = host {
                        rules.push(GatewayRule { host, access });
                    }
                }
            }
            Some(other) => {
                self.problem(Some(other), "gateway.rules", "must be [[gateway.rules]] tables");
            }
        }
        GatewayConfig {
            enabled: self.boolean(dict, "gateway", "enabled").unwrap_or(false),
            unauthenticated,
            allowed_redirect_hosts,
            rules,
        }
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

/// An address as [`Email`] accepts it, lower-cased as addresses are compared.
fn allowed_email(item: &str) -> Result<String, String> {
    Email::parse(item)
        .map(|email| email.normalized())
        .map_err(|_| format!("{item:?} is not an e-mail address like alice@example.com"))
}

/// A plausible domain name, lower-cased: dot-separated labels of letters, digits and `-`, none
/// empty (so no leading, trailing or double dot), at most 63 characters each and 253 in all. Not
/// a full check of DNS syntax: enough to refuse what could never be the part of an address after
/// its `@` (a whole address, a URL, a wildcard).
/// An origin as a browser sends it in `Origin`: `https://host[:port]`, or `http://` on a loopback
/// host; no path (but a bare `/`), query, fragment or user. Never `*` or `null`: with credentials, CORS must name
/// each origin, and `null` is what sandboxed frames and `file:` pages send.
fn allowed_origin(item: &str) -> Result<String, String> {
    if item == "*" || item == "null" {
        return Err(format!("{item:?} is not allowed: name each origin, e.g. \"https://app.example.com\""));
    }
    let url =
        Url::parse(item).map_err(|_| format!("{item:?} is not an origin like https://app.example.com"))?;
    // A trailing "/" is harmless (browsers send none; it is dropped); any other path is a mistake.
    let bare = url.path() == "/" && url.query().is_none() && url.fragment().is_none();
    if !bare || !url.username().is_empty() || url.password().is_some() || url.host().is_none() {
        return Err(format!("{item:?} is not an origin: scheme://host[:port], with nothing after it"));
    }
    match url.scheme() {
        "https" => {}
        "http" if is_loopback_url(&url) => {}
        "http" => return Err(format!("{item:?}: http only on a loopback host; use https")),
        _ => return Err(format!("{item:?} is not an http(s) origin")),
    }
    Ok(url.origin().ascii_serialization())
}

fn allowed_domain(item: &str) -> Result<String, String> {
    let plausible = item.len() <= 253
        && item.split('.').all(|label| {
            !label.is_empty()
                && label.chars().count() <= 63
                && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        });
    if plausible {
        Ok(item.to_lowercase())
    } else if item.contains('@') {
        Err(format!("{item:?} is not a domain name (whole addresses go in `access.allowed_emails`)"))
    } else {
        Err(format!("{item:?} is not a domain name like example.com"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::env::EnvStrings;
    use crate::config::Config;
    use crate::config::GatewayConfig;

    fn config(text: &str) -> Config {
        Config::from_toml(text).unwrap_or_else(|e| panic!("{e}"))
    }

    fn problems(text: &str) -> String {
        Config::from_toml(text).err().map(|e| e.0.join("\n")).unwrap_or_default()
    }

    /// The configuration from these environment variables alone, as `Config::load` reads them.
    fn from_env(vars: &[(&str, &str)]) -> Result<Config, String> {
        let vars = vars.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        let env = EnvStrings::from_vars(vars, "LOGINWITH_", &["CONFIG", "LOG"]);
        Config::from_figment(&Figment::from(env)).map_err(|e| e.0.join("\n"))
    }

    #[test]
    fn after_login_and_logout_are_paths_on_this_site() {
        let server =
            config("[server]\nafter_login = \"/welcome\"\nafter_logout = \"/bye?from=logout#top\"\n").server;
        assert_eq!(server.after_login.as_ref().map(ReturnTo::as_str), Some("/welcome"));
        assert_eq!(server.after_logout.as_ref().map(ReturnTo::as_str), Some("/bye?from=logout#top"));
        let server = config("").server;
        assert_eq!((server.after_login, server.after_logout), (None, None), "loginwith's own page");
    }

    #[test]
    fn after_login_and_logout_refuse_anything_that_could_leave_the_site() {
        for bad in [
            "https://evil.example/",
            "//evil.example",
            "/\\\\evil.example",
            "welcome",
            "/a b",
            "",
            "/%2F/evil",
        ] {
            let text = format!("[server]\nafter_login = {bad:?}\nafter_logout = {bad:?}\n");
            let all = problems(&text);
            for key in ["after_login", "after_logout"] {
                assert!(
                    all.contains(&format!("`server.{key}`: {bad:?} is not a path on this site")),
                    "{bad:?}: {all}"
                );
            }
        }
        let all = problems("[server]\nafter_login = true\nafter_logout = [\"/x\"]\n");
        assert!(all.contains("`server.after_login`: must be a string"), "{all}");
        assert!(all.contains("`server.after_logout`: must be a string"), "{all}");
    }

    #[test]
    fn after_login_from_the_environment_names_its_variable() {
        let config = from_env(&[("LOGINWITH_SERVER__AFTER_LOGIN", "/home")]).unwrap();
        assert_eq!(config.server.after_login.as_ref().map(ReturnTo::as_str), Some("/home"));
        let all = from_env(&[("LOGINWITH_SERVER__AFTER_LOGOUT", "https://evil.example")]).unwrap_err();
        assert!(
            all.contains("LOGINWITH_SERVER__AFTER_LOGOUT") && all.contains("`server.after_logout`"),
            "{all}"
        );
    }

    #[test]
    fn the_example_values_of_the_new_keys_are_valid() {
        let keys = ["after_login", "after_logout", "allowed_emails", "allowed_domains", "metrics_bind"];
        let uncommented: Vec<&str> = include_str!("../../loginwith.example.toml")
            .lines()
            .map(|line| match line.strip_prefix("# ") {
                Some(setting) if keys.iter().any(|k| setting.starts_with(&format!("{k} = "))) => setting,
                _ => line,
            })
            .collect();
        let config = config(&uncommented.join("\n"));
        assert_eq!(config.server.after_login.as_ref().map(ReturnTo::as_str), Some("/welcome"));
        assert_eq!(config.server.after_logout.as_ref().map(ReturnTo::as_str), Some("/"));
        assert_eq!(config.access.allowed_emails, ["alice@example.com", "bob@example.org"]);
        assert_eq!(config.access.allowed_domains, ["example.com"]);
        assert_eq!(config.server.metrics_bind.map(|a| a.to_string()).as_deref(), Some("127.0.0.1:9090"));
    }

    #[test]
    fn access_lists_are_lower_cased_and_empty_by_default() {
        assert_eq!(config("").access, AccessConfig::default());
        let access = config(
            "[access]\nallowed_emails = [\"Alice@Example.COM\", \" bob@example.org \"]\n\
             allowed_domains = [\"Example.COM\", \"sub.example.co.uk\", \"xn--bcher-kva.example\", \"bücher.example\", \"corp\"]\n",
        )
        .access;
        assert_eq!(access.allowed_emails, ["alice@example.com", "bob@example.org"]);
        assert_eq!(
            access.allowed_domains,
            ["example.com", "sub.example.co.uk", "xn--bcher-kva.example", "bücher.example", "corp"]
        );
        let access = config("[access]\nallowed_emails = []\nallowed_domains = []\n").access;
        assert_eq!(access, AccessConfig::default(), "empty lists: everyone");
    }

    #[test]
    fn access_lists_from_the_environment_are_one_string() {
        let config = from_env(&[
            ("LOGINWITH_ACCESS__ALLOWED_EMAILS", "Alice@Example.com, bob@example.org  carol@example.net"),
            ("LOGINWITH_ACCESS__ALLOWED_DOMAINS", "example.com,corp.example"),
        ])
        .unwrap();
        assert_eq!(
            config.access.allowed_emails,
            ["alice@example.com", "bob@example.org", "carol@example.net"]
        );
        assert_eq!(config.access.allowed_domains, ["example.com", "corp.example"]);
        let all =
            from_env(&[("LOGINWITH_ACCESS__ALLOWED_DOMAINS", "example.com,@corp.example")]).unwrap_err();
        assert!(
            all.contains("environment (LOGINWITH_ACCESS__ALLOWED_DOMAINS): `access.allowed_domains`: \"@corp.example\""),
            "{all}"
        );
    }

    #[test]
    fn bad_allowed_emails_are_each_named() {
        let all = problems("[access]\nallowed_emails = [\"ok@example.com\", \"alice\", \"@example.com\", \"bob@\", \"a b@example.com\"]\n");
        for bad in ["alice", "@example.com", "bob@", "a b@example.com"] {
            assert!(
                all.contains(&format!(
                    "`access.allowed_emails`: {bad:?} is not an e-mail address like alice@example.com"
                )),
                "{bad}: {all}"
            );
        }
        assert!(!all.contains("ok@example.com"), "{all}");
        for not_a_list in ["5", "true", "[1, 2]", "{ a = \"b@c.d\" }", "[\"a@b.c\", 3]"] {
            let all = problems(&format!("[access]\nallowed_emails = {not_a_list}\n"));
            assert!(
                all.contains("`access.allowed_emails`: must be a list of e-mail addresses"),
                "{not_a_list}: {all}"
            );
        }
    }

    #[test]
    fn bad_allowed_domains_are_each_named() {
        let long_label = "a".repeat(64);
        let long_name = ["abcdefghij"; 25].join(".");
        let text = format!(
            "[access]\nallowed_domains = [\"example.com\", \"\", \".example.com\", \"example.com.\", \"a..b\", \
             \"*.example.com\", \"example.com/path\", \"https://example.com\", \"exa mple.com\", \"{long_label}.com\", \"{long_name}\"]\n"
        );
        let all = problems(&text);
        for bad in [
            "",
            ".example.com",
            "example.com.",
            "a..b",
            "*.example.com",
            "example.com/path",
            "https://example.com",
            "exa mple.com",
        ] {
            assert!(
                all.contains(&format!(
                    "`access.allowed_domains`: {bad:?} is not a domain name like example.com"
                )),
                "{bad:?}: {all}"
            );
        }
        assert!(all.contains(&format!("{long_label}.com")) && all.contains(&long_name), "{all}");
        assert!(!all.contains("\"example.com\""), "{all}");
        let all = problems("[access]\nallowed_domains = [\"alice@example.com\"]\n");
        assert!(all.contains("whole addresses go in `access.allowed_emails`"), "{all}");
        let all = problems("[access]\nallowed_domains = 7\n");
        assert!(all.contains("`access.allowed_domains`: must be a list of domain names"), "{all}");
        let all = problems("[access]\nallowed_users = [\"x\"]\n");
        assert!(
            all.contains(
                "`access.allowed_users`: unknown key (expected one of: verified_only, allowed_emails, allowed_domains, allowed_providers)"
            ),
            "{all}"
        );
    }

    #[test]
    fn numbers_from_toml_and_environment() {
        let config = Config::from_toml("[http]\ntimeout_ms = 1500\nmax_response_bytes = 4096").unwrap();
        assert_eq!(config.http.timeout, Duration::from_millis(1500));
        assert_eq!(config.http.max_response_bytes, 4096);
        assert!(Config::from_toml("[http]\ntimeout_ms = -5").is_err());
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
    fn api_origins_are_bare_origins_never_a_wildcard() {
        assert_eq!(config("").api.allowed_origins, Vec::<String>::new());
        let api = config(
            "[api]\nallowed_origins = [\"https://SPA.example.com/\", \"https://spa.example.com:8443\", \"http://localhost:5173\", \"http://127.0.0.1:3000\"]\n",
        )
        .api;
        assert_eq!(
            api.allowed_origins,
            [
                "https://spa.example.com",
                "https://spa.example.com:8443",
                "http://localhost:5173",
                "http://127.0.0.1:3000"
            ]
        );
        let from_env =
            from_env(&[("LOGINWITH_API__ALLOWED_ORIGINS", "https://a.example, https://b.example")]);
        assert_eq!(from_env.unwrap().api.allowed_origins, ["https://a.example", "https://b.example"]);
        for (bad, why) in [
            ("*", "name each origin"),
            ("null", "name each origin"),
            ("https://spa.example.com/app", "nothing after it"),
            ("https://spa.example.com?x=1", "nothing after it"),
            ("https://user@spa.example.com", "nothing after it"),
            ("http://spa.example.com", "http only on a loopback host"),
            ("ftp://spa.example.com", "not an http(s) origin"),
            ("spa.example.com", "not an origin"),
        ] {
            let all = problems(&format!("[api]\nallowed_origins = [{bad:?}]\n"));
            assert!(all.contains("api.allowed_origins") && all.contains(why), "{bad}: {all}");
        }
        assert!(problems("[api]\norigins = []\n").contains("api.origins"), "unknown key");
    }

    #[test]
    fn the_gateway_section_and_its_rules() {
        let gateway = config(
            "[gateway]\nenabled = true\nunauthenticated = \"redirect\"\n\
             allowed_redirect_hosts = [\"App.Example.com\", \".corp.example\"]\n\
             [[gateway.rules]]\nhost = \"admin.example.com\"\nallowed_emails = [\"Boss@Example.com\"]\nverified_only = true\n\
             [[gateway.rules]]\nhost = \".corp.example\"\nallowed_providers = [\"corp-sso\"]\n",
        )
        .gateway;
        assert!(gateway.enabled);
        assert_eq!(gateway.unauthenticated, Unauthenticated::Redirect);
        let hosts: Vec<&str> = gateway.allowed_redirect_hosts.iter().map(HostPattern::as_str).collect();
        assert_eq!(hosts, ["app.example.com", ".corp.example"]);
        assert_eq!(gateway.rules.len(), 2);
        assert_eq!(gateway.rules[0].access.allowed_emails, ["boss@example.com"]);
        assert!(gateway.rules[0].access.verified_only);
        assert_eq!(gateway.rules[1].access.allowed_providers, ["corp-sso"]);
        assert_eq!(config("").gateway, GatewayConfig::default(), "off by default");

        let all = problems(
            "[gateway]\nunauthenticated = \"maybe\"\nallowed_redirect_hosts = [\"https://x.example\", \"*.example.com\"]\n\
             [[gateway.rules]]\nallowed_emails = [\"a@b.c\"]\n[[gateway.rules]]\nhost = \"ok.example\"\ncolour = 1\n",
        );
        for expected in [
            "`gateway.unauthenticated`: \"maybe\"",
            "`gateway.allowed_redirect_hosts`: \"https://x.example\" is not a host name",
            "\"*.example.com\" is not a host name",
            "`gateway.rules[0].host`: missing",
            "`gateway.rules[1].colour`: unknown key",
        ] {
            assert!(all.contains(expected), "missing {expected}: {all}");
        }
    }

    #[test]
    fn the_cookie_domain_must_contain_the_public_host() {
        let github = "[providers.github]\nclient_id = \"i\"\nclient_secret = \"s\"\n";
        let server = config(&format!(
            "[server]\npublic_url = \"https://auth.example.com\"\ncookie_domain = \".Example.com\"\n{github}"
        ))
        .server;
        assert_eq!(server.cookie_domain.as_deref(), Some("example.com"));
        let all = problems(
            "[server]\npublic_url = \"https://auth.example.com\"\ncookie_domain = \"other.example\"\n",
        );
        assert!(
            all.contains("`server.cookie_domain`: \"other.example\" does not contain public_url's host"),
            "{all}"
        );
        let all = problems("[server]\ncookie_domain = \"example.com\"\n");
        assert!(all.contains("`server.cookie_domain`: needs server.public_url"), "{all}");
        assert_eq!(config("").server.cookie_domain, None, "host-only by default");
    }

    #[test]
    fn sessions_are_in_the_database_unless_a_redis_is_named() {
        let default = config("");
        assert!(default.sessions.url.is_none());
        assert_eq!(default.sessions.key_prefix, "loginwith:");
        let redis =
            config("[sessions]\nurl = \"redis://:hunter2@127.0.0.1:6380/2\"\nkey_prefix = \"staging:\"\n");
        assert_eq!(
            redis.sessions.url.as_ref().map(|u| u.expose()),
            Some("redis://:hunter2@127.0.0.1:6380/2")
        );
        assert_eq!(redis.sessions.key_prefix, "staging:");
        assert!(!format!("{redis:?}").contains("hunter2"), "the password never prints");
        assert!(config("[sessions]\nurl = \"rediss://cache.example.com\"\n").sessions.url.is_some());
        for (bad, why) in [
            ("url = \"postgres://localhost/db\"", "must be redis://"),
            ("url = \"redis-sentinel://a:26379/m\"", "must be redis://"),
            ("url = \"redis://127.0.0.1:notaport\"", "not a usable Redis URL"),
            ("key_prefix = \"\"", "1 to 64 characters"),
            ("key_prefix = \"with space\"", "1 to 64 characters"),
            ("prefix = \"x\"", "sessions.prefix"),
        ] {
            let all = problems(&format!("[sessions]\n{bad}\n"));
            assert!(all.contains(why), "{bad}: {all}");
        }
        let from_env = from_env(&[("LOGINWITH_SESSIONS__URL", "redis://127.0.0.1/1")]).unwrap();
        assert_eq!(
            from_env.sessions.url.map(|u| u.expose().to_owned()).as_deref(),
            Some("redis://127.0.0.1/1")
        );
    }
}
