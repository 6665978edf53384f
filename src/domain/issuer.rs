//! An OpenID Connect issuer identifier, kept exactly as configured.
//!
//! OpenID Connect Discovery §4.3 and Core §3.1.3.7 compare issuers as exact strings: the discovery
//! document's `issuer`, every ID token's `iss` and the RFC 9207 `iss` parameter must equal the
//! issuer the relying party was configured with. `Url::parse` would normalise `https://idp.example`
//! to `https://idp.example/`, and trimming the slash would break Auth0, whose issuer is
//! `https://TENANT.auth0.com/` *with* it — so this type holds the text as written and never
//! rewrites it. The only derived value is the discovery URL (§4.1), which is built from the issuer
//! with any trailing `/` removed.
//!
//! This type must never be built from an unchecked string outside [`Issuer::parse`] and
//! [`Issuer::for_built_in_dev`].

use std::fmt;
use url::Url;

/// Why a configured issuer was refused (the configuration names the key).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IssuerError {
    /// Not an absolute URL.
    #[error("is not a valid URL ({0})")]
    NotUrl(String),
    /// Spaces or control characters, which the provider could never publish back.
    #[error("must not contain spaces or control characters")]
    Whitespace,
    /// Not http(s), or no host.
    #[error("must be an https URL naming a host")]
    NotHttp,
    /// Plain http to a host that is not loopback.
    #[error("must use https (plain http is only allowed for 127.0.0.1, ::1 and localhost)")]
    NotHttps,
    /// Issuers have no query or fragment (Discovery §4.3 / Core §2).
    #[error("must not have a query or fragment")]
    QueryOrFragment,
    /// Issuers have no user name or password.
    #[error("must not contain a user name or password")]
    Credentials,
}

/// An issuer identifier: an https URL (plain http only on a loopback host), without query or
/// fragment, held as the exact text it was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issuer {
    text: String,
    url: Url,
}

impl Issuer {
    /// Accepts a configured issuer: https, or plain http on 127.0.0.1, ::1 or localhost.
    pub fn parse(text: &str) -> Result<Self, IssuerError> {
        let issuer = Self::parse_any_scheme(text)?;
        if issuer.url.scheme() != "https" && !crate::config::is_loopback_url(&issuer.url) {
            return Err(IssuerError::NotHttps);
        }
        Ok(issuer)
    }

    /// The built-in development provider's issuer: this server's own public URL plus
    /// `/dev-provider`, which may be plain http on a non-loopback host when the operator allowed
    /// the development provider there (`dangerously_allow_non_loopback`). Everything else about it
    /// is checked as for [`Issuer::parse`].
    pub fn for_built_in_dev(text: &str) -> Result<Self, IssuerError> {
        Self::parse_any_scheme(text)
    }

    fn parse_any_scheme(text: &str) -> Result<Self, IssuerError> {
        // `Url::parse` silently trims surrounding whitespace; the exact text would then never match.
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(IssuerError::Whitespace);
        }
        let url = Url::parse(text).map_err(|e| IssuerError::NotUrl(e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(IssuerError::NotHttp);
        }
        if url.query().is_some() || url.fragment().is_some() || text.contains(['?', '#']) {
            return Err(IssuerError::QueryOrFragment);
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(IssuerError::Credentials);
        }
        Ok(Self { text: text.to_owned(), url })
    }

    /// The issuer exactly as configured.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The issuer parsed (for its origin and path; never for comparisons).
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// `{issuer without trailing /}/.well-known/openid-configuration` (Discovery §4.1).
    pub fn discovery_url(&self) -> Option<Url> {
        let base = self.text.trim_end_matches('/');
        Url::parse(&format!("{base}/.well-known/openid-configuration")).ok()
    }

    /// True for plain http on a loopback host (tests, a provider on this machine).
    pub fn is_loopback_http(&self) -> bool {
        self.url.scheme() == "http" && crate::config::is_loopback_url(&self.url)
    }

    /// The issuer with its `scheme://` removed (`accounts.google.com`), the form Google documents
    /// some of its ID tokens carry.
    pub fn without_scheme(&self) -> &str {
        self.text.split_once("://").map_or(self.text.as_str(), |(_, rest)| rest)
    }

    /// Whether `other` is this issuer with or without one trailing `/` more — not equal, but the
    /// mistake a person most often makes when configuring one (Auth0 publishes the slash).
    pub fn differs_only_by_trailing_slash(&self, other: &str) -> bool {
        other != self.text && other.trim_end_matches('/') == self.text.trim_end_matches('/')
    }
}

impl fmt::Display for Issuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_text_exactly_trailing_slash_included() {
        assert_eq!(Issuer::parse("https://tenant.auth0.com/").unwrap().as_str(), "https://tenant.auth0.com/");
        assert_eq!(
            Issuer::parse("https://accounts.google.com").unwrap().as_str(),
            "https://accounts.google.com"
        );
    }

    #[test]
    fn discovery_url_drops_one_trailing_slash() {
        for text in ["https://tenant.auth0.com/", "https://tenant.auth0.com"] {
            assert_eq!(
                Issuer::parse(text).unwrap().discovery_url().unwrap().as_str(),
                "https://tenant.auth0.com/.well-known/openid-configuration"
            );
        }
        assert_eq!(
            Issuer::parse("https://idp.example/realms/x/").unwrap().discovery_url().unwrap().as_str(),
            "https://idp.example/realms/x/.well-known/openid-configuration"
        );
    }

    #[test]
    fn refuses_what_an_issuer_cannot_be() {
        assert_eq!(Issuer::parse("http://idp.example"), Err(IssuerError::NotHttps));
        assert!(Issuer::parse("http://127.0.0.1:8080").is_ok());
        assert!(Issuer::parse("http://localhost/").is_ok());
        assert_eq!(Issuer::parse("https://idp.example?x=1"), Err(IssuerError::QueryOrFragment));
        assert_eq!(Issuer::parse("https://idp.example/#"), Err(IssuerError::QueryOrFragment));
        assert_eq!(Issuer::parse("https://idp.example?"), Err(IssuerError::QueryOrFragment));
        assert_eq!(Issuer::parse(" https://idp.example"), Err(IssuerError::Whitespace));
        assert_eq!(Issuer::parse("https://u:p@idp.example"), Err(IssuerError::Credentials));
        assert_eq!(Issuer::parse("ftp://idp.example"), Err(IssuerError::NotHttp));
        assert!(matches!(Issuer::parse("accounts.google.com"), Err(IssuerError::NotUrl(_))));
        // The development provider's own public URL may be http anywhere.
        assert!(Issuer::for_built_in_dev("http://192.0.2.1:5000/dev-provider").is_ok());
    }

    #[test]
    fn trailing_slash_and_scheme_forms() {
        let i = Issuer::parse("https://tenant.auth0.com/").unwrap();
        assert!(i.differs_only_by_trailing_slash("https://tenant.auth0.com"));
        assert!(!i.differs_only_by_trailing_slash("https://tenant.auth0.com/"));
        assert!(!i.differs_only_by_trailing_slash("https://other.auth0.com/"));
        assert_eq!(
            Issuer::parse("https://accounts.google.com").unwrap().without_scheme(),
            "accounts.google.com"
        );
    }
}
