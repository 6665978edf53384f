//! Discovery (OpenID Connect Discovery 1.0): fetching a provider's document and key set, reading
//! the few members we use, and the two rules applied to what the document says — which endpoints
//! it may name, and which issuer it may publish.
//!
//! Endpoints named by discovery must be https: the client secret goes to the token endpoint. Plain
//! http is accepted only on a loopback host and only when the configured issuer is itself loopback
//! http (a provider on this machine), or for the built-in development provider, whose endpoints are
//! this very server ([`Oidc::built_in_dev`]).
//!
//! The published issuer must equal the configured one exactly (Discovery §4.3), and an error says
//! when the two differ only by a trailing slash. Microsoft's multi-tenant endpoints publish a
//! `{tenantid}` template instead, and a tenant configured by domain name publishes its tenant id's
//! issuer; `Oidc::expected_issuer` fills the template from each ID token's `tid`. The same issuer
//! is what the authorization response's `iss` parameter must name (RFC 9207,
//! [`Oidc::callback_iss_ok`]).
//!
//! The document is read as plain JSON for the few members we use, rather than through the crate's
//! `ProviderMetadata`, whose strict typing would refuse real documents over fields we never read.
//!
//! A provider that cannot be discovered is unavailable, not fatal: one attempt runs at a time, and
//! while it keeps failing at most one per [`DISCOVERY_RETRY_INTERVAL`]. This module never looks at
//! an ID token.

use super::{Oidc, OidcQuirk};
use crate::config::is_loopback_url;
use crate::domain::clip;
use crate::oauth::http::{ProviderHttp, Step};
use crate::oauth::ProviderError;
use crate::providers::microsoft;
use openidconnect::core::CoreJsonWebKeySet;
use serde_json::Value;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use url::Url;

/// At most one discovery attempt per provider in this interval while it is unavailable.
pub const DISCOVERY_RETRY_INTERVAL: Duration = Duration::from_secs(5);

/// The Microsoft personal-accounts tenant.
pub const MS_CONSUMERS_TENANT: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";

/// What discovery found.
#[derive(Debug)]
pub struct Discovered {
    /// The `issuer` member, exactly as published (Microsoft's may contain `{tenantid}`).
    pub issuer: String,
    /// Where browsers go.
    pub authorize_url: Url,
    /// Where codes are exchanged.
    pub token_url: Url,
    /// Where profiles are read, if the provider has one.
    pub userinfo_url: Option<Url>,
    /// The key set.
    pub jwks_uri: Url,
    /// RFC 9207: the provider promises an `iss` parameter on every authorization response.
    pub iss_parameter_supported: bool,
    /// Algorithms the provider signs ID tokens with.
    pub algorithms: Vec<String>,
    /// Client authentication methods the token endpoint accepts.
    pub token_auth_methods: Vec<String>,
}

/// Why discovery failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DiscoveryError {
    /// The document or key set could not be fetched or parsed.
    #[error("{0}")]
    Fetch(String),
    /// The document's `issuer` is not the configured one (OpenID Connect Discovery §4.3).
    #[error("the discovery document names issuer {found:?}, not the configured {expected:?}")]
    IssuerMismatch {
        /// Configured.
        expected: String,
        /// Published.
        found: String,
    },
    /// The document's `issuer` differs from the configured one by a trailing slash only: still a
    /// mismatch (issuers compare exactly), but the fix is obvious, so the message gives it.
    #[error(
        "the discovery document names issuer {found:?} and the configuration {expected:?}: they differ only by a trailing slash, and issuers must match exactly (OpenID Connect Discovery §4.3); configure issuer = {found:?}"
    )]
    IssuerTrailingSlash {
        /// Configured.
        expected: String,
        /// Published.
        found: String,
    },
    /// An endpoint is missing or not https.
    #[error("the discovery document's {0}")]
    BadDocument(String),
    /// Too soon to try again.
    #[error("not available yet (last attempt failed: {0}); retrying shortly")]
    RetryLater(String),
}

/// Which endpoints a discovery document may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum EndpointRule {
    /// https; plain http only on a loopback host, and only when the issuer is loopback http.
    Standard,
    /// The built-in development provider: its endpoints are this server, on the loopback address
    /// (server-side calls) or under its own public issuer (the browser's authorize page), whatever
    /// the public URL's scheme. No other provider gets this.
    BuiltInDev,
}

/// What discovery found, or when and why its last attempt failed.
#[derive(Debug, Default)]
pub(super) struct DiscoveryState {
    found: RwLock<Option<Arc<Discovered>>>,
    last_failure: Mutex<Option<(Instant, String)>>,
    /// Serialises discovery so that a burst of first clicks makes one fetch.
    lock: tokio::sync::Mutex<()>,
}

impl Oidc {
    /// The discovery result, if discovery has succeeded.
    pub fn discovered(&self) -> Option<Arc<Discovered>> {
        self.discovery.found.read().ok().and_then(|d| d.clone())
    }

    /// Why the provider is unavailable, if discovery failed last time.
    pub fn last_error(&self) -> Option<String> {
        self.discovery.last_failure.lock().ok().and_then(|l| l.as_ref().map(|(_, e)| e.clone()))
    }

    /// Discovers now unless done already; retries are rate-limited.
    pub async fn ensure_discovered(&self, http: &ProviderHttp) -> Result<Arc<Discovered>, DiscoveryError> {
        if let Some(d) = self.discovered() {
            return Ok(d);
        }
        let _guard = self.discovery.lock.lock().await;
        if let Some(d) = self.discovered() {
            return Ok(d);
        }
        if let Ok(last) = self.discovery.last_failure.lock() {
            if let Some((at, err)) = last.as_ref() {
                if at.elapsed() < DISCOVERY_RETRY_INTERVAL {
                    return Err(DiscoveryError::RetryLater(err.clone()));
                }
            }
        }
        match self.discover(http).await {
            Ok((discovered, jwks)) => {
                let discovered = Arc::new(discovered);
                self.keys.replace(jwks);
                if let Ok(mut slot) = self.discovery.found.write() {
                    *slot = Some(discovered.clone());
                }
                if let Ok(mut last) = self.discovery.last_failure.lock() {
                    *last = None;
                }
                Ok(discovered)
            }
            Err(err) => {
                if let Ok(mut last) = self.discovery.last_failure.lock() {
                    *last = Some((Instant::now(), err.to_string()));
                }
                Err(err)
            }
        }
    }

    async fn discover(&self, http: &ProviderHttp) -> Result<(Discovered, CoreJsonWebKeySet), DiscoveryError> {
        let fetch = |e: ProviderError| DiscoveryError::Fetch(e.to_string());
        let doc = async {
            let response = http.send(Step::Discovery, http.get(&self.discovery_url)).await?;
            if !response.status.is_success() {
                return Err(ProviderError::Status {
                    step: Step::Discovery,
                    status: response.status.as_u16(),
                });
            }
            response.json(Step::Discovery)
        }
        .await;
        let doc = http.observe(Step::Discovery, doc).map_err(fetch)?;
        let discovered = self.read_document(&doc)?;
        let jwks = fetch_jwks(http, &discovered.jwks_uri).await.map_err(fetch)?;
        Ok((discovered, jwks))
    }

    /// Reads the members we use and checks the issuer.
    pub fn read_document(&self, doc: &Value) -> Result<Discovered, DiscoveryError> {
        let issuer = doc
            .get("issuer")
            .and_then(Value::as_str)
            .ok_or_else(|| DiscoveryError::BadDocument("issuer is missing".into()))?;
        if !self.issuer_acceptable(issuer) {
            let (expected, found) = (self.issuer.to_string(), clip(issuer, 200));
            return Err(if self.issuer.differs_only_by_trailing_slash(issuer) {
                DiscoveryError::IssuerTrailingSlash { expected, found }
            } else {
                DiscoveryError::IssuerMismatch { expected, found }
            });
        }
        let endpoint = |name: &str, required: bool| -> Result<Option<Url>, DiscoveryError> {
            match doc.get(name).and_then(Value::as_str) {
                None if required => Err(DiscoveryError::BadDocument(format!("{name} is missing"))),
                None => Ok(None),
                Some(text) => {
                    let url = Url::parse(text)
                        .map_err(|_| DiscoveryError::BadDocument(format!("{name} is not a URL")))?;
                    if !self.endpoint_allowed(&url) {
                        return Err(DiscoveryError::BadDocument(format!("{name} does not use https")));
                    }
                    Ok(Some(url))
                }
            }
        };
        let missing = |name: &str| DiscoveryError::BadDocument(format!("{name} is missing"));
        let strings = |name: &str| -> Vec<String> {
            doc.get(name)
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                .unwrap_or_default()
        };
        Ok(Discovered {
            issuer: issuer.to_owned(),
            authorize_url: endpoint("authorization_endpoint", true)?
                .ok_or_else(|| missing("authorization_endpoint"))?,
            token_url: endpoint("token_endpoint", true)?.ok_or_else(|| missing("token_endpoint"))?,
            userinfo_url: endpoint("userinfo_endpoint", false)?,
            jwks_uri: endpoint("jwks_uri", true)?.ok_or_else(|| missing("jwks_uri"))?,
            iss_parameter_supported: doc
                .get("authorization_response_iss_parameter_supported")
                .and_then(Value::as_bool)
                == Some(true),
            algorithms: strings("id_token_signing_alg_values_supported"),
            token_auth_methods: strings("token_endpoint_auth_methods_supported"),
        })
    }

    /// Whether a discovery document may send us (or the browser) to `url`. See [`EndpointRule`].
    fn endpoint_allowed(&self, url: &Url) -> bool {
        match url.scheme() {
            "https" => true,
            "http" => match self.endpoint_rule {
                EndpointRule::Standard => self.issuer.is_loopback_http() && is_loopback_url(url),
                EndpointRule::BuiltInDev => is_loopback_url(url) || self.is_under_issuer(url),
            },
            _ => false,
        }
    }

    /// Same origin as the issuer, and a path below it.
    fn is_under_issuer(&self, url: &Url) -> bool {
        let issuer = self.issuer.url();
        let base = issuer.path().trim_end_matches('/');
        url.origin() == issuer.origin()
            && url.path().strip_prefix(base).is_some_and(|rest| rest.starts_with('/'))
    }

    /// The published issuer must equal the configured one exactly; Microsoft's multi-tenant
    /// endpoints publish a `{tenantid}` template instead, and a tenant configured by domain name
    /// publishes that tenant's id issuer.
    fn issuer_acceptable(&self, published: &str) -> bool {
        if published == self.issuer.as_str() {
            return true;
        }
        match &self.quirk {
            OidcQuirk::Microsoft { tenant, authority } => {
                let template = format!("{authority}/{{tenantid}}/v2.0");
                let consumers = format!("{authority}/{MS_CONSUMERS_TENANT}/v2.0");
                match tenant.as_str() {
                    "common" | "organizations" => published == template,
                    "consumers" => published == consumers,
                    domain if microsoft::is_domain_tenant(domain) => {
                        entra_tenant_id(authority, published).is_some()
                    }
                    _ => false,
                }
            }
            OidcQuirk::None | OidcQuirk::Google | OidcQuirk::Slack { .. } | OidcQuirk::Apple => false,
        }
    }

    /// The `iss` an ID token (and the authorization response) must carry: the published issuer
    /// with Microsoft's `{tenantid}` filled from the token's `tid`.
    pub(super) fn expected_issuer(&self, discovered: &Discovered, tid: Option<&str>) -> String {
        match (&self.quirk, tid) {
            (OidcQuirk::Microsoft { .. }, Some(tid)) => discovered.issuer.replace("{tenantid}", tid),
            _ => discovered.issuer.clone(),
        }
    }

    /// Whether an authorization response's `iss` parameter is acceptable (RFC 9207 §2.4): it must
    /// equal the issuer when present, and be present when the provider promised it. For a
    /// templated (multi-tenant) issuer, the tenant is not known before the ID token, so the
    /// template is matched with any single tenant segment.
    pub fn callback_iss_ok(&self, discovered: &Discovered, iss: Option<&str>) -> bool {
        match iss {
            None => !discovered.iss_parameter_supported,
            Some(iss) if discovered.issuer.contains("{tenantid}") => {
                let (prefix, suffix) = discovered.issuer.split_once("{tenantid}").unwrap_or_default();
                iss.strip_prefix(prefix)
                    .and_then(|rest| rest.strip_suffix(suffix))
                    .is_some_and(|tid| !tid.is_empty() && !tid.contains('/'))
            }
            Some(iss) => {
                let same = iss == discovered.issuer;
                if !same && iss.trim_end_matches('/') == discovered.issuer.trim_end_matches('/') {
                    // The page only says "iss mismatch" (a mix-up looks the same); the log says why.
                    tracing::warn!(issuer = %self.issuer,
                        "the authorization response's iss differs from the issuer only by a trailing slash; \
                         issuers must match exactly (RFC 9207 §2.4)");
                }
                same
            }
        }
    }
}

/// The tenant id in an Entra issuer `{authority}/{guid}/v2.0`, if it has exactly that shape.
pub(super) fn entra_tenant_id<'a>(authority: &str, issuer: &'a str) -> Option<&'a str> {
    let id = issuer.strip_prefix(authority)?.strip_prefix('/')?.strip_suffix("/v2.0")?;
    microsoft::is_guid(id).then_some(id)
}

pub(super) async fn fetch_jwks(http: &ProviderHttp, url: &Url) -> Result<CoreJsonWebKeySet, ProviderError> {
    let result = async {
        let response = http.send(Step::Jwks, http.get(url)).await?;
        if !response.status.is_success() {
            return Err(ProviderError::Status { step: Step::Jwks, status: response.status.as_u16() });
        }
        serde_json::from_slice(&response.body)
            .map_err(|_| ProviderError::NotJson { step: Step::Jwks, status: 200 })
    }
    .await;
    http.observe(Step::Jwks, result)
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::*;
    use crate::config::UserinfoPointers;
    use crate::domain::Issuer;
    use serde_json::json;

    fn bad_document(result: Result<Discovered, DiscoveryError>) -> String {
        match result {
            Err(DiscoveryError::BadDocument(why)) => why,
            other => panic!("expected BadDocument, got {other:?}"),
        }
    }

    #[test]
    fn entra_multi_tenant_discovery_publishes_a_template() {
        let template = "https://login.microsoftonline.com/{tenantid}/v2.0";
        assert!(microsoft("common").read_document(&doc(template)).is_ok());
        assert!(microsoft("organizations").read_document(&doc(template)).is_ok());
        let consumers = format!("https://login.microsoftonline.com/{MS_CONSUMERS_TENANT}/v2.0");
        assert!(microsoft("consumers").read_document(&doc(&consumers)).is_ok());
        // A specific tenant must publish exactly itself.
        let tid = "72f988bf-86f1-41af-91ab-2d7cd011db47";
        assert!(microsoft(tid).read_document(&doc(template)).is_err());
        assert!(microsoft(tid)
            .read_document(&doc(&format!("https://login.microsoftonline.com/{tid}/v2.0")))
            .is_ok());
        let other = "11111111-2222-3333-4444-555555555555";
        assert!(microsoft(tid)
            .read_document(&doc(&format!("https://login.microsoftonline.com/{other}/v2.0")))
            .is_err());
    }

    #[test]
    fn entra_expected_issuer_fills_the_tenant() {
        let ms = microsoft("common");
        let d = ms.read_document(&doc("https://login.microsoftonline.com/{tenantid}/v2.0")).unwrap();
        assert_eq!(ms.expected_issuer(&d, Some("abc")), "https://login.microsoftonline.com/abc/v2.0");
        assert!(ms.callback_iss_ok(&d, Some("https://login.microsoftonline.com/abc/v2.0")));
        assert!(!ms.callback_iss_ok(&d, Some("https://login.microsoftonline.com/a/b/v2.0")));
        assert!(!ms.callback_iss_ok(&d, Some("https://evil.example/abc/v2.0")));
    }

    #[test]
    fn generic_issuer_must_match_exactly() {
        let o = generic("https://idp.example");
        let mut d = doc("https://idp.example/");
        assert!(matches!(o.read_document(&d), Err(DiscoveryError::IssuerTrailingSlash { .. })));
        d["issuer"] = json!("https://idp.example/other");
        assert!(matches!(o.read_document(&d), Err(DiscoveryError::IssuerMismatch { .. })));
        d["issuer"] = json!("https://idp.example");
        d["token_endpoint"] = json!("http://idp.example/token");
        assert!(matches!(o.read_document(&d), Err(DiscoveryError::BadDocument(_))));
    }

    #[test]
    fn issuer_with_a_trailing_slash_matches_only_itself() {
        // Auth0 publishes its issuer with the slash; it must be configured that way.
        let auth0 = generic("https://tenant.auth0.com/");
        assert_eq!(auth0.discovery_url.as_str(), "https://tenant.auth0.com/.well-known/openid-configuration");
        assert!(auth0
            .read_document(&doc_at("https://tenant.auth0.com/", "https://tenant.auth0.com"))
            .is_ok());
        let err = auth0
            .read_document(&doc_at("https://tenant.auth0.com", "https://tenant.auth0.com"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("differ only by a trailing slash"), "{err}");
        assert!(err.contains("configure issuer = \"https://tenant.auth0.com\""), "{err}");
    }

    #[test]
    fn https_issuer_may_not_name_plain_http_endpoints_even_on_loopback() {
        // The client secret would go to plain http on this machine, readable by any local process.
        let o = generic("https://idp.example");
        let mut d = doc_at("https://idp.example", "https://idp.example");
        d["token_endpoint"] = json!("http://127.0.0.1/token");
        assert_eq!(bad_document(o.read_document(&d)), "token_endpoint does not use https");
        for name in ["authorization_endpoint", "userinfo_endpoint", "jwks_uri"] {
            let mut d = doc_at("https://idp.example", "https://idp.example");
            d[name] = json!("http://localhost:8080/x");
            assert_eq!(bad_document(o.read_document(&d)), format!("{name} does not use https"));
        }
        // https on loopback is fine, and so is any other https host.
        let d = doc_at("https://idp.example", "https://127.0.0.1:8443");
        assert!(o.read_document(&d).is_ok());
    }

    #[test]
    fn loopback_http_issuer_may_name_http_endpoints_on_loopback_only() {
        let o = generic("http://127.0.0.1:9000");
        assert!(o.read_document(&doc_at("http://127.0.0.1:9000", "http://127.0.0.1:9001")).is_ok());
        assert!(o.read_document(&doc_at("http://127.0.0.1:9000", "http://[::1]:9001")).is_ok());
        assert!(o.read_document(&doc_at("http://127.0.0.1:9000", "https://idp.example")).is_ok());
        let mut d = doc_at("http://127.0.0.1:9000", "http://127.0.0.1:9000");
        d["token_endpoint"] = json!("http://idp.example/token");
        assert_eq!(bad_document(o.read_document(&d)), "token_endpoint does not use https");
        let mut d = doc_at("http://127.0.0.1:9000", "http://127.0.0.1:9000");
        d["jwks_uri"] = json!("ftp://127.0.0.1/jwks");
        assert_eq!(bad_document(o.read_document(&d)), "jwks_uri does not use https");
    }

    #[test]
    fn built_in_dev_provider_keeps_its_loopback_endpoints_under_any_public_issuer() {
        let discovery =
            Url::parse("http://127.0.0.1:5000/dev-provider/.well-known/openid-configuration").unwrap();
        for public in ["https://login.example.com/dev-provider", "http://192.0.2.10:5000/dev-provider"] {
            let dev = Oidc::built_in_dev(
                Issuer::for_built_in_dev(public).unwrap(),
                discovery.clone(),
                UserinfoPointers::default(),
            );
            let mut d = doc_at(public, "http://127.0.0.1:5000/dev-provider");
            d["authorization_endpoint"] = json!(format!("{public}/authorize"));
            assert!(dev.read_document(&d).is_ok(), "{public}");
            // It is still only itself: another host over http is refused.
            d["token_endpoint"] = json!("http://192.0.2.99/dev-provider/token");
            assert_eq!(bad_document(dev.read_document(&d)), "token_endpoint does not use https");
            let mut d = doc_at(public, "http://127.0.0.1:5000/dev-provider");
            d["authorization_endpoint"] = json!(format!("{public}-evil/authorize"));
            if public.starts_with("http:") {
                assert!(dev.read_document(&d).is_err(), "{public}");
            }
        }
        // And the rule is the dev provider's alone: the same https issuer as a normal provider
        // may not name the loopback http endpoints.
        let normal = generic("https://login.example.com/dev-provider");
        let d = doc_at("https://login.example.com/dev-provider", "http://127.0.0.1:5000/dev-provider");
        assert!(normal.read_document(&d).is_err());
    }

    #[test]
    fn callback_iss_rules() {
        let o = generic("https://idp.example");
        let mut d = o.read_document(&doc("https://idp.example")).unwrap();
        assert!(o.callback_iss_ok(&d, None));
        assert!(!o.callback_iss_ok(&d, Some("https://evil.example")));
        assert!(!o.callback_iss_ok(&d, Some("https://idp.example/")));
        d.iss_parameter_supported = true;
        assert!(!o.callback_iss_ok(&d, None));
        assert!(o.callback_iss_ok(&d, Some("https://idp.example")));
    }
}
