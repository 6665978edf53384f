//! Where the gateway sends a browser back to after a login or a logout: an absolute URL on one of
//! the operator's own hosts (`rd=https://grafana.example.com/d/abc`).
//!
//! `rd` is an open redirect waiting to happen, and it is an absolute URL, so the rule is stricter
//! than for a same-origin `next` ([`super::ReturnTo`]): the text must parse as a URL on its own
//! (no scheme-less `//host`, no `javascript:`), be https (plain http only on a loopback host), carry
//! no user name or password (`https://good.example@evil.example` is evil.example), contain no
//! backslash, white space or control character anywhere (browsers read `\` as `/`), be at most
//! 2,048 bytes, and name a host that `[gateway] allowed_redirect_hosts` lists. Hosts are compared
//! as URLs carry them: lower-case ASCII, internationalised names in their `xn--` form, so a
//! look-alike of an allowed domain, such as `exаmple.com` (Cyrillic а), is an `xn--` name that
//! matches nothing.

use std::fmt;
use url::Url;

/// A host name, or `.example.com` for all of example.com's subdomains; lower-case ASCII (an
/// internationalised name is given in its `xn--` form, which is what URLs carry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern(String);

impl HostPattern {
    /// Parses `name` or `.suffix`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim().to_ascii_lowercase();
        let name = text.strip_prefix('.').unwrap_or(&text);
        let plausible = !name.is_empty()
            && name.len() <= 253
            && name.split('.').all(|l| {
                !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        if plausible {
            Ok(Self(text))
        } else {
            Err(format!(
                "{text:?} is not a host name like app.example.com or .example.com (give internationalised names in their xn-- form)"
            ))
        }
    }

    /// Whether `host` (as in a URL, lower-case) is this name, or a subdomain for `.suffix`.
    pub fn matches(&self, host: &str) -> bool {
        match self.0.strip_prefix('.') {
            Some(suffix) => host.len() > suffix.len() + 1 && host.ends_with(&self.0),
            None => host == self.0,
        }
    }

    /// As configured.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An absolute URL on an allowed host (see the module doc).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct RedirectUrl(String);

/// The longest `rd` we keep.
const MAX_LEN: usize = 2048;

impl RedirectUrl {
    /// Accepts `raw` when it is an https (or loopback http) URL on one of `allowed`, else `None`
    /// (the caller falls back to its default).
    pub fn parse(raw: &str, allowed: &[HostPattern]) -> Option<Self> {
        if raw.len() > MAX_LEN || raw.chars().any(|c| c == '\\' || c.is_control() || c.is_whitespace()) {
            return None;
        }
        let url = Url::parse(raw).ok()?;
        let host = url.host_str()?.to_ascii_lowercase();
        let loopback = crate::config::is_loopback_url(&url);
        let scheme_ok = url.scheme() == "https" || (url.scheme() == "http" && loopback);
        if !scheme_ok || !url.username().is_empty() || url.password().is_some() {
            return None;
        }
        allowed.iter().any(|pattern| pattern.matches(&host)).then(|| Self(url.into()))
    }

    /// The URL, for a `Location` header.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The host it names.
    pub fn host(&self) -> String {
        Url::parse(&self.0).ok().and_then(|u| u.host_str().map(str::to_owned)).unwrap_or_default()
    }
}

impl fmt::Display for RedirectUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed() -> Vec<HostPattern> {
        ["app.example.com", ".corp.example", "127.0.0.1", "localhost"]
            .iter()
            .map(|h| HostPattern::parse(h).unwrap())
            .collect()
    }

    #[test]
    fn allowed_hosts_are_kept() {
        for good in [
            "https://app.example.com/",
            "https://app.example.com/d/abc?x=1#top",
            "https://APP.example.com:8443/x",
            "https://grafana.corp.example/",
            "https://a.b.corp.example/",
            "http://127.0.0.1:8080/x",
            "http://localhost:3000/",
        ] {
            assert!(RedirectUrl::parse(good, &allowed()).is_some(), "{good}");
        }
    }

    #[test]
    fn every_trick_is_refused() {
        for bad in [
            "",
            "/relative/path",
            "//app.example.com/",
            "app.example.com/x",
            "javascript:alert(1)",
            "data:text/html,hi",
            "http://app.example.com/",
            "ftp://app.example.com/",
            "https://evil.example/",
            "https://app.example.com@evil.example/",
            "https://user:pass@app.example.com/",
            "https://evil.example\\@app.example.com/",
            "https://app.example.com\\.evil.example/",
            "https://evil.example/\\app.example.com",
            "https://app.example.com%2F.evil.example/",
            "https://app.example.com%2f@evil.example/",
            "https://corp.example/",
            "https://evilcorp.example/",
            "https://app.example.com.evil.example/",
            "https://app.exаmple.com/",
            "https://app.example.com\t.evil/",
            "https://app.example.com /",
            "http://127.0.0.2.evil.example/",
        ] {
            assert!(RedirectUrl::parse(bad, &allowed()).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn host_patterns() {
        let sub = HostPattern::parse(".Example.com").unwrap();
        assert!(sub.matches("a.example.com") && sub.matches("a.b.example.com"));
        assert!(!sub.matches("example.com") && !sub.matches("badexample.com"));
        assert!(HostPattern::parse("bücher.example").is_err(), "xn-- form only");
        assert!(HostPattern::parse("*.example.com").is_err());
        assert!(HostPattern::parse("").is_err());
    }
}
