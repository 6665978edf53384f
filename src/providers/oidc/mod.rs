//! Any OpenID Connect provider from its issuer URL: discovery, the JWKS cache ([`keys`]), and ID
//! token validation per OpenID Connect Core §3.1.3.7.
//!
//! Signatures, `aud`, `exp` and `nonce` are checked by the `openidconnect` crate's
//! `IdTokenVerifier` — no hand-written signature code here. What that crate leaves to its caller is
//! done below, each with its reason: the algorithm allowlist (what the provider advertises, never
//! `none`, HMAC only when configured), `iat` not in the future, `azp` when there are several
//! audiences (the crate skips it, see its source), `at_hash`, the userinfo `sub` matching the ID
//! token's, and `iss` — compared by us, as exact text with the configured issuer (Discovery §4.3),
//! so that an error can say when the two differ only by a trailing slash, and so that Microsoft's
//! multi-tenant template and Google's scheme-less form are handled in one place.
//!
//! Endpoints named by discovery must be https: the client secret goes to the token endpoint. Plain
//! http is accepted only on a loopback host and only when the configured issuer is itself loopback
//! http (a provider on this machine), or for the built-in development provider, whose endpoints are
//! this very server ([`Oidc::built_in_dev`]).
//!
//! The discovery document is read as plain JSON for the few members we use, rather than through the
//! crate's `ProviderMetadata`, whose strict typing would refuse real documents over fields we
//! never read.

mod jws;
pub mod keys;

use super::generic::get_json;
use super::{google, microsoft, Profile};
use crate::config::{is_loopback_url, UserinfoPointers};
use crate::domain::secret::{AccessToken, ClientSecret};
use crate::domain::{clip, https_url, text_at, Email, Issuer, Subject};
use crate::oauth::http::{ProviderHttp, Step};
use crate::oauth::{ProviderError, Tokens};
use base64::Engine;
use keys::{KeyCache, Refresh};
use openidconnect::core::{
    CoreGenderClaim, CoreJsonWebKey, CoreJsonWebKeySet, CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
};
use openidconnect::{
    AccessTokenHash, AdditionalClaims, Audience, ClaimsVerificationError, IdTokenVerifier, IssuerUrl,
    JsonWebKey, JwsSigningAlgorithm, Nonce, SignatureVerificationError,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::str::FromStr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use url::Url;

pub use keys::JWKS_REFETCH_INTERVAL;

/// Claims beyond the standard ones that we read (Microsoft's tenant, object id and e-mail proof;
/// Google's hosted domain).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ExtraClaims {
    /// Entra ID tenant id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tid: Option<String>,
    /// Entra ID object id: the user's immutable id within the tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oid: Option<String>,
    /// Entra ID "email domain owner verified".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xms_edov: Option<Value>,
    /// Google's hosted domain: present for Google Workspace accounts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hd: Option<String>,
}

impl AdditionalClaims for ExtraClaims {}

/// An ID token with our extra claims.
pub type IdToken = openidconnect::IdToken<
    ExtraClaims,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;
/// Its claims.
pub type IdTokenClaims = openidconnect::IdTokenClaims<ExtraClaims, CoreGenderClaim>;

/// How far in the future an `iat` may be (clock skew between us and the provider).
pub const IAT_SKEW: Duration = Duration::from_secs(30);
/// At most one discovery attempt per provider in this interval while it is unavailable.
pub const DISCOVERY_RETRY_INTERVAL: Duration = Duration::from_secs(5);

/// The Microsoft personal-accounts tenant.
pub const MS_CONSUMERS_TENANT: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";

/// Provider-specific rules on top of OpenID Connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OidcQuirk {
    /// Plain OpenID Connect.
    None,
    /// Google: `iss` may also be the issuer without its scheme, and `email_verified` counts only
    /// for Gmail and Workspace addresses (see [`super::google`]).
    Google,
    /// Microsoft Entra ID: templated multi-tenant issuer, identity = `tid` + `oid`, and an e-mail
    /// is verified only with `xms_edov` (the "nOAuth" defence).
    Microsoft {
        /// `common`, `organizations`, `consumers`, a tenant id or a tenant's domain name.
        tenant: String,
        /// `https://login.microsoftonline.com`, or a national cloud's login host.
        authority: String,
    },
}

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

/// Why an ID token was refused. Each is a 403 page naming the reason.
#[derive(Debug, thiserror::Error)]
pub enum IdTokenError {
    /// The token endpoint returned no `id_token` although `openid` was requested.
    #[error("the provider returned no ID token")]
    Missing,
    /// Not a JWT, or a required claim (such as `sub`) is missing or malformed.
    #[error("the ID token is malformed: {0}")]
    Malformed(String),
    /// Signature, algorithm or key problems.
    #[error("the ID token's signature is not valid: {0}")]
    Signature(String),
    /// `iss` is not the issuer.
    #[error("the ID token was issued by someone else: {0}")]
    Issuer(String),
    /// `aud` does not contain us, or `azp` is not us.
    #[error("the ID token is not meant for this application: {0}")]
    Audience(String),
    /// `exp` has passed, or `iat` is in the future.
    #[error("the ID token is expired or not yet valid: {0}")]
    Time(String),
    /// `nonce` missing or different from ours: a replayed or injected token.
    #[error("the ID token does not belong to this login attempt (nonce mismatch)")]
    Nonce,
    /// `at_hash` does not match the access token.
    #[error("the ID token does not match the access token (at_hash)")]
    AtHash,
    /// The userinfo `sub` differs from the ID token's (OpenID Connect Core §5.3.2).
    #[error("the userinfo response is about a different user than the ID token")]
    UserinfoSubject,
    /// Microsoft: tenant or object id missing, or a tenant not allowed by the configuration.
    #[error("the ID token's tenant is not accepted: {0}")]
    Tenant(String),
}

/// What the callback can fail with after the code exchange of an OpenID Connect login.
#[derive(Debug, thiserror::Error)]
pub enum OidcLoginError {
    /// A provider call failed (502/504).
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// The ID token was refused (403).
    #[error(transparent)]
    IdToken(#[from] IdTokenError),
}

/// Which endpoints a discovery document may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EndpointRule {
    /// https; plain http only on a loopback host, and only when the issuer is loopback http.
    Standard,
    /// The built-in development provider: its endpoints are this server, on the loopback address
    /// (server-side calls) or under its own public issuer (the browser's authorize page), whatever
    /// the public URL's scheme. No other provider gets this.
    BuiltInDev,
}

/// An OpenID Connect provider's runtime state.
#[derive(Debug)]
pub struct Oidc {
    /// The configured issuer, exactly as written.
    pub issuer: Issuer,
    discovery_url: Url,
    endpoint_rule: EndpointRule,
    quirk: OidcQuirk,
    allow_hmac: bool,
    pointers: UserinfoPointers,
    discovered: RwLock<Option<Arc<Discovered>>>,
    keys: KeyCache,
    last_discovery: Mutex<Option<(Instant, String)>>,
    /// Serialises discovery so that a burst of first clicks makes one fetch.
    discovery_lock: tokio::sync::Mutex<()>,
}

impl Oidc {
    /// A provider discovered from `issuer` (Discovery §4.1: the issuer without its trailing `/`,
    /// then `/.well-known/openid-configuration`). `None` if that is not a URL.
    pub fn new(
        issuer: Issuer,
        quirk: OidcQuirk,
        allow_hmac: bool,
        pointers: UserinfoPointers,
    ) -> Option<Self> {
        let discovery_url = issuer.discovery_url()?;
        Some(Self::with_rule(issuer, discovery_url, EndpointRule::Standard, quirk, allow_hmac, pointers))
    }

    /// The built-in development provider: browsers see it under `issuer` (the public URL), while
    /// this server reads its discovery document at `discovery_url` on the loopback address.
    pub fn built_in_dev(issuer: Issuer, discovery_url: Url, pointers: UserinfoPointers) -> Self {
        Self::with_rule(issuer, discovery_url, EndpointRule::BuiltInDev, OidcQuirk::None, false, pointers)
    }

    fn with_rule(
        issuer: Issuer,
        discovery_url: Url,
        endpoint_rule: EndpointRule,
        quirk: OidcQuirk,
        allow_hmac: bool,
        pointers: UserinfoPointers,
    ) -> Self {
        Self {
            issuer,
            discovery_url,
            endpoint_rule,
            quirk,
            allow_hmac,
            pointers,
            discovered: RwLock::new(None),
            keys: KeyCache::default(),
            last_discovery: Mutex::new(None),
            discovery_lock: tokio::sync::Mutex::new(()),
        }
    }

    /// The provider-specific rules in force.
    pub fn quirk(&self) -> &OidcQuirk {
        &self.quirk
    }

    /// The discovery result, if discovery has succeeded.
    pub fn discovered(&self) -> Option<Arc<Discovered>> {
        self.discovered.read().ok().and_then(|d| d.clone())
    }

    /// Why the provider is unavailable, if discovery failed last time.
    pub fn last_error(&self) -> Option<String> {
        self.last_discovery.lock().ok().and_then(|l| l.as_ref().map(|(_, e)| e.clone()))
    }

    /// Discovers now unless done already; retries are rate-limited.
    pub async fn ensure_discovered(&self, http: &ProviderHttp) -> Result<Arc<Discovered>, DiscoveryError> {
        if let Some(d) = self.discovered() {
            return Ok(d);
        }
        let _guard = self.discovery_lock.lock().await;
        if let Some(d) = self.discovered() {
            return Ok(d);
        }
        if let Ok(last) = self.last_discovery.lock() {
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
                if let Ok(mut slot) = self.discovered.write() {
                    *slot = Some(discovered.clone());
                }
                if let Ok(mut last) = self.last_discovery.lock() {
                    *last = None;
                }
                Ok(discovered)
            }
            Err(err) => {
                if let Ok(mut last) = self.last_discovery.lock() {
                    *last = Some((Instant::now(), err.to_string()));
                }
                Err(err)
            }
        }
    }

    async fn discover(&self, http: &ProviderHttp) -> Result<(Discovered, CoreJsonWebKeySet), DiscoveryError> {
        let fetch = |e: ProviderError| DiscoveryError::Fetch(e.to_string());
        let response = http.send(Step::Discovery, http.get(&self.discovery_url)).await.map_err(fetch)?;
        if !response.status.is_success() {
            return Err(fetch(ProviderError::Status {
                step: Step::Discovery,
                status: response.status.as_u16(),
            }));
        }
        let doc = response.json(Step::Discovery).map_err(fetch)?;
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
            OidcQuirk::None | OidcQuirk::Google => false,
        }
    }

    /// The `iss` an ID token (and the authorization response) must carry: the published issuer
    /// with Microsoft's `{tenantid}` filled from the token's `tid`.
    fn expected_issuer(&self, discovered: &Discovered, tid: Option<&str>) -> String {
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

    /// Algorithms accepted for ID tokens: what the provider advertises (RS256 when it says
    /// nothing, as OpenID Connect Discovery makes RS256 the default), never `none`, and HMAC only
    /// when configured.
    fn allowed_algorithms(&self, discovered: &Discovered) -> Vec<CoreJwsSigningAlgorithm> {
        let advertised: Vec<&str> = if discovered.algorithms.is_empty() {
            vec!["RS256"]
        } else {
            discovered.algorithms.iter().map(String::as_str).collect()
        };
        advertised
            .into_iter()
            .filter(|alg| *alg != "none" && (self.allow_hmac || !alg.starts_with("HS")))
            .filter_map(|alg| serde_json::from_value(Value::String(alg.to_owned())).ok())
            .filter(|alg| *alg != CoreJwsSigningAlgorithm::None)
            .collect()
    }

    /// When the token names a `kid` we do not have, fetch the key set again — shared with every
    /// other callback waiting for the same rotation, and rate-limited when it brings nothing new
    /// (see [`keys`]).
    async fn refresh_keys_for(&self, http: &ProviderHttp, discovered: &Discovered, kid: &str) {
        match self.keys.refresh_for(kid, || fetch_jwks(http, &discovered.jwks_uri)).await {
            Refresh::NewKeys => {
                tracing::info!(issuer = %self.issuer, "refetched the provider's key set: it has new keys")
            }
            Refresh::NothingNew => tracing::info!(issuer = %self.issuer,
                "refetched the provider's key set for an unknown kid; nothing new, next refetch in 10 s at the earliest"),
            Refresh::Failed(err) => {
                tracing::warn!(issuer = %self.issuer, error = %err, "could not refetch the key set")
            }
            Refresh::Known | Refresh::RateLimited => {}
        }
    }

    /// Validates the ID token and reads the profile (from the token, and from userinfo when the
    /// token lacks the address).
    pub async fn login_profile(
        &self,
        http: &ProviderHttp,
        discovered: &Discovered,
        client_id: &str,
        client_secret: Option<&ClientSecret>,
        tokens: &Tokens,
        nonce: &str,
    ) -> Result<Profile, OidcLoginError> {
        let raw = tokens.id_token.as_deref().ok_or(IdTokenError::Missing)?;
        let received = self.receive(raw, discovered)?;
        if let Some(kid) = jws::kid(raw) {
            self.refresh_keys_for(http, discovered, &kid).await;
        }
        let claims =
            self.verify(discovered, client_id, client_secret, &received, &tokens.access_token, nonce)?;
        let mut profile = self.profile_from_claims(&claims)?;
        if profile.is_none() {
            if let Some(url) = &discovered.userinfo_url {
                let json = get_json(http, Step::Userinfo, url, &tokens.access_token).await?;
                profile = Some(self.merge_userinfo(&claims, profile, &json)?);
            }
        }
        profile.ok_or_else(|| {
            ProviderError::BadProfile("the provider did not share an e-mail address".into()).into()
        })
    }

    /// Parses the ID token for the crate, whose `iss` must be a URL.
    ///
    /// Google documents `iss` as either `https://accounts.google.com` or `accounts.google.com`. The
    /// second cannot be parsed by the crate at all, so for the Google quirk only, a token whose
    /// `iss` is exactly the issuer without its scheme gets the scheme back for parsing, and its
    /// signature is checked against the original bytes in [`Self::verify`].
    fn receive(&self, raw: &str, discovered: &Discovered) -> Result<Received, IdTokenError> {
        let malformed = |e: serde_json::Error| IdTokenError::Malformed(clip(&e.to_string(), 200));
        let unverified_iss = jws::unverified_iss(raw);
        if self.quirk == OidcQuirk::Google
            && unverified_iss.as_deref() == Some(self.issuer.without_scheme())
            && discovered.issuer == self.issuer.as_str()
        {
            let original = jws::with_iss(raw, &discovered.issuer)
                .ok_or_else(|| IdTokenError::Malformed("not a JWT".into()))?;
            let token = IdToken::from_str(&original.rewritten).map_err(malformed)?;
            return Ok(Received { token, original: Some(original) });
        }
        IdToken::from_str(raw).map(|token| Received { token, original: None }).map_err(|e| {
            match unverified_iss {
                // The crate fails on an `iss` that is no URL: say that it is the issuer that is wrong.
                Some(iss) if Url::parse(&iss).is_err() => {
                    IdTokenError::Issuer(format!("iss {:?} is not {:?}", clip(&iss, 100), discovered.issuer))
                }
                _ => malformed(e),
            }
        })
    }

    /// OpenID Connect Core §3.1.3.7, steps 2–11, plus `at_hash` (§3.1.3.8 via §3.3.2.9).
    fn verify(
        &self,
        discovered: &Discovered,
        client_id: &str,
        client_secret: Option<&ClientSecret>,
        received: &Received,
        access_token: &AccessToken,
        nonce: &str,
    ) -> Result<IdTokenClaims, IdTokenError> {
        let id_token = &received.token;
        let jwks = (*self.keys.current()).clone();
        let templated = discovered.issuer.contains("{tenantid}");
        // The crate wants the issuer as a URL; `iss` itself is compared below, as text.
        let issuer =
            IssuerUrl::new(discovered.issuer.clone()).map_err(|e| IdTokenError::Issuer(e.to_string()))?;
        let client = openidconnect::ClientId::new(client_id.to_owned());
        let verifier = match client_secret.filter(|_| self.allow_hmac) {
            Some(secret) => IdTokenVerifier::<CoreJsonWebKey>::new_confidential_client(
                client,
                openidconnect::ClientSecret::new(secret.expose().to_owned()),
                issuer,
                jwks,
            ),
            None => IdTokenVerifier::new_public_client(client, issuer, jwks),
        };
        let client_id_owned = client_id.to_owned();
        let allowed = self.allowed_algorithms(discovered);
        let verifier = verifier
            .set_allowed_algs(allowed.clone())
            .require_issuer_match(false)
            // Extra audiences are allowed only with azp = us, checked below.
            .set_other_audience_verifier_fn(|_aud: &Audience| true)
            .set_issue_time_verifier_fn(|iat| {
                let latest = chrono::Utc::now() + chrono::Duration::from_std(IAT_SKEW).unwrap_or_default();
                if iat > latest {
                    Err(format!("issued at {iat}, in the future"))
                } else {
                    Ok(())
                }
            });
        let verifier = match &received.original {
            None => verifier,
            Some(original) => {
                check_original_signature(id_token, &verifier, &allowed, original)?;
                // Just checked, over the bytes the provider signed: the rewritten payload's
                // signature cannot match, every other check still runs.
                verifier.insecure_disable_signature_check()
            }
        };
        let expected_nonce = Nonce::new(nonce.to_owned());
        let claims = id_token.claims(&verifier, &expected_nonce).map_err(map_verification_error)?.clone();

        // Step 2: `iss`, exactly; for Microsoft with the token's own tenant, which must be allowed.
        if let OidcQuirk::Microsoft { tenant, authority } = &self.quirk {
            let extra = claims.additional_claims();
            let tid = extra.tid.as_deref().ok_or_else(|| IdTokenError::Tenant("no tid claim".into()))?;
            check_iss(&self.expected_issuer(discovered, Some(tid)), claims.issuer().as_str())?;
            check_entra_tenant(tenant, authority, discovered, tid)?;
        } else if templated {
            // Only Microsoft publishes a template; anywhere else it is a misconfiguration.
            return Err(IdTokenError::Issuer("templated issuer without a tenant rule".into()));
        } else {
            check_iss(&discovered.issuer, claims.issuer().as_str())?;
        }

        // Step 4–5: several audiences need an azp, and an azp must be us.
        let audiences = claims.audiences();
        match claims.authorized_party() {
            Some(azp) if azp.as_str() != client_id_owned => {
                return Err(IdTokenError::Audience(format!("azp is {:?}", clip(azp.as_str(), 100))))
            }
            None if audiences.len() > 1 => {
                return Err(IdTokenError::Audience("several audiences and no azp naming this client".into()))
            }
            _ => {}
        }
        if !audiences.iter().any(|a| a.as_str() == client_id_owned) {
            return Err(IdTokenError::Audience("aud does not contain this client".into()));
        }

        if let Some(expected_hash) = claims.access_token_hash() {
            let alg = id_token.signing_alg().map_err(|e| IdTokenError::Signature(e.to_string()))?;
            let oauth_token = openidconnect::AccessToken::new(access_token.expose().to_owned());
            let ok = match id_token.signing_key(&verifier) {
                Ok(key) => AccessTokenHash::from_token(&oauth_token, alg, key).ok(),
                // HMAC tokens have no JWKS key; hash by algorithm alone.
                Err(_) => hmac_at_hash(alg, access_token.expose()),
            }
            .is_some_and(|h| h == *expected_hash);
            if !ok {
                return Err(IdTokenError::AtHash);
            }
        }
        Ok(claims)
    }

    /// The identity key: `sub`, or for Microsoft `tid:oid` (stable across apps, unlike the
    /// pairwise `sub`, and scoped to the tenant so that two tenants' users never collide).
    fn subject_of(&self, claims: &IdTokenClaims) -> Result<Subject, IdTokenError> {
        let raw = match &self.quirk {
            OidcQuirk::Microsoft { .. } => {
                let extra = claims.additional_claims();
                match (&extra.tid, &extra.oid) {
                    (Some(tid), Some(oid)) => format!("{tid}:{oid}"),
                    _ => return Err(IdTokenError::Tenant("no tid or oid claim".into())),
                }
            }
            OidcQuirk::None | OidcQuirk::Google => claims.subject().as_str().to_owned(),
        };
        Subject::parse(&raw).map_err(IdTokenError::Malformed)
    }

    /// Whether the provider vouches for `email` now.
    ///
    /// Microsoft: only when `xms_edov` says the domain owner verified it; Entra lets tenant admins
    /// set any `email`, so without it linking by e-mail would be the "nOAuth" account takeover.
    /// Google: only for Gmail and Workspace (`hd`) addresses, see [`google::email_is_verified`];
    /// `userinfo_hd` is the userinfo document's `hd`, used when the token has none.
    fn email_verified(
        &self,
        claims: &IdTokenClaims,
        email: &str,
        claimed: Option<bool>,
        userinfo_hd: Option<&str>,
    ) -> bool {
        match self.quirk {
            OidcQuirk::Microsoft { .. } => match &claims.additional_claims().xms_edov {
                Some(Value::Bool(b)) => *b,
                Some(Value::Number(n)) => n.as_i64() == Some(1),
                Some(Value::String(s)) => s == "1" || s.eq_ignore_ascii_case("true"),
                _ => false,
            },
            OidcQuirk::Google => {
                let hd = claims.additional_claims().hd.as_deref().or(userinfo_hd);
                google::email_is_verified(email, claimed, hd)
            }
            OidcQuirk::None => claimed == Some(true),
        }
    }

    fn profile_from_claims(&self, claims: &IdTokenClaims) -> Result<Option<Profile>, IdTokenError> {
        let subject = self.subject_of(claims)?;
        let (email, verified) = match claims.email() {
            Some(email) => (
                Some(email.as_str().to_owned()),
                self.email_verified(claims, email.as_str(), claims.email_verified(), None),
            ),
            // Entra often has no `email` claim; the sign-in name is the usual address, but it is
            // changeable and `xms_edov` does not vouch for it: never verified.
            None => match self.quirk {
                OidcQuirk::Microsoft { .. } => (
                    claims.preferred_username().map(|u| u.as_str().to_owned()).filter(|u| u.contains('@')),
                    false,
                ),
                OidcQuirk::None | OidcQuirk::Google => (None, false),
            },
        };
        let Some(email) = email.and_then(|e| Email::parse(&e).ok()) else { return Ok(None) };
        Ok(Some(Profile {
            subject,
            email_verified: verified,
            email,
            name: claims.name().and_then(|n| n.get(None)).map(|n| clip(n.as_str(), 200)),
            avatar: claims.picture().and_then(|p| p.get(None)).and_then(|p| https_url(p.as_str())),
            username: login_name(claims.preferred_username().map(|u| u.as_str())),
        }))
    }

    /// Reads userinfo; its `sub` must be the ID token's (Core §5.3.2: otherwise the response
    /// "MUST NOT be used"), then fills what the ID token lacked.
    fn merge_userinfo(
        &self,
        claims: &IdTokenClaims,
        from_token: Option<Profile>,
        json: &Value,
    ) -> Result<Profile, OidcLoginError> {
        let userinfo_sub = text_at(json, "/sub");
        if userinfo_sub.as_deref() != Some(claims.subject().as_str()) {
            return Err(IdTokenError::UserinfoSubject.into());
        }
        if let Some(profile) = from_token {
            return Ok(profile);
        }
        let pointer = |p: &Option<String>, default: &str| p.clone().unwrap_or_else(|| default.to_owned());
        let email = text_at(json, &pointer(&self.pointers.email, "/email")).ok_or_else(|| {
            ProviderError::BadProfile("the provider did not share an e-mail address".into())
        })?;
        let email = Email::parse(&email).map_err(ProviderError::BadProfile)?;
        let claimed = match json.pointer(&pointer(&self.pointers.email_verified, "/email_verified")) {
            Some(Value::Bool(b)) => Some(*b),
            Some(Value::String(s)) => Some(s.eq_ignore_ascii_case("true")),
            _ => None,
        };
        Ok(Profile {
            subject: self.subject_of(claims)?,
            email_verified: self.email_verified(
                claims,
                email.as_str(),
                claimed,
                text_at(json, "/hd").as_deref(),
            ),
            email,
            name: text_at(json, &pointer(&self.pointers.name, "/name")).map(|n| clip(&n, 200)),
            avatar: text_at(json, &pointer(&self.pointers.avatar, "/picture")).and_then(|a| https_url(&a)),
            username: login_name(
                text_at(json, &pointer(&self.pointers.username, "/preferred_username")).as_deref(),
            )
            .or_else(|| login_name(claims.preferred_username().map(|u| u.as_str()))),
        })
    }
}

/// `preferred_username` as a login name, unless it looks like an address: Entra's is the
/// changeable, unverified sign-in name (`admin@corp.example`), which must not pick a username.
fn login_name(preferred: Option<&str>) -> Option<String> {
    preferred.filter(|u| !u.contains('@') && !u.trim().is_empty()).map(|u| clip(u, 100))
}

/// An ID token parsed for the crate, and — when its `iss` had to be rewritten for parsing — what
/// the provider really signed.
struct Received {
    token: IdToken,
    original: Option<jws::SchemeRestored>,
}

/// `iss` must be the expected issuer exactly (Core §3.1.3.7 step 2). A trailing slash more or less
/// is still a mismatch, but the message says that this is all it is.
fn check_iss(expected: &str, found: &str) -> Result<(), IdTokenError> {
    if found == expected {
        return Ok(());
    }
    let (expected, found_clipped) = (clip(expected, 200), clip(found, 200));
    if found.trim_end_matches('/') == expected.trim_end_matches('/') {
        return Err(IdTokenError::Issuer(format!(
            "iss is {found_clipped:?} and the issuer is {expected:?}: they differ only by a trailing slash, \
             and issuers must match exactly"
        )));
    }
    Err(IdTokenError::Issuer(format!("iss is {found_clipped:?}, expected {expected:?}")))
}

/// The tenant rule of a Microsoft configuration, for a token of tenant `tid` whose `iss` has been
/// checked already.
fn check_entra_tenant(
    tenant: &str,
    authority: &str,
    discovered: &Discovered,
    tid: &str,
) -> Result<(), IdTokenError> {
    let refuse = |why: &str| Err(IdTokenError::Tenant(why.into()));
    match tenant {
        "common" => Ok(()),
        "organizations" if tid == MS_CONSUMERS_TENANT => refuse("personal accounts are not accepted"),
        "consumers" if tid != MS_CONSUMERS_TENANT => refuse("only personal accounts are accepted"),
        "organizations" | "consumers" => Ok(()),
        // A domain name: discovery published the tenant's id issuer, and that id is the tenant.
        domain if microsoft::is_domain_tenant(domain) => {
            match entra_tenant_id(authority, &discovered.issuer) {
                Some(id) if id.eq_ignore_ascii_case(tid) => Ok(()),
                _ => refuse("the account belongs to another tenant"),
            }
        }
        specific if !tid.eq_ignore_ascii_case(specific) => refuse("the account belongs to another tenant"),
        _ => Ok(()),
    }
}

/// The tenant id in an Entra issuer `{authority}/{guid}/v2.0`, if it has exactly that shape.
fn entra_tenant_id<'a>(authority: &str, issuer: &'a str) -> Option<&'a str> {
    let id = issuer.strip_prefix(authority)?.strip_prefix('/')?.strip_suffix("/v2.0")?;
    microsoft::is_guid(id).then_some(id)
}

/// The signature of a token whose payload was rewritten ([`Oidc::receive`]), checked over the
/// bytes the provider signed, with the key the crate picks for it — the same rules as the crate's
/// own check: an allowed algorithm, never `none` or HMAC (Google signs with its published keys).
fn check_original_signature(
    token: &IdToken,
    verifier: &IdTokenVerifier<'_, CoreJsonWebKey>,
    allowed: &[CoreJwsSigningAlgorithm],
    original: &jws::SchemeRestored,
) -> Result<(), IdTokenError> {
    let alg = token.signing_alg().map_err(signature_error)?;
    if !allowed.contains(alg) || alg.uses_shared_secret() {
        return Err(IdTokenError::Signature("the token's algorithm is not accepted".into()));
    }
    let key = token.signing_key(verifier).map_err(signature_error)?;
    key.verify_signature(alg, original.original_signing_input.as_bytes(), &original.signature)
        .map_err(signature_error)
}

fn signature_error(err: SignatureVerificationError) -> IdTokenError {
    match err {
        SignatureVerificationError::NoMatchingKey => {
            IdTokenError::Signature("no key in the provider's key set matches the token".into())
        }
        e => IdTokenError::Signature(clip(&e.to_string(), 200)),
    }
}

/// at_hash for HMAC-signed tokens: the left half of the hash named by the algorithm.
fn hmac_at_hash(alg: &CoreJwsSigningAlgorithm, token: &str) -> Option<AccessTokenHash> {
    use sha2::Digest;
    let digest: Vec<u8> = match alg {
        CoreJwsSigningAlgorithm::HmacSha256 => sha2::Sha256::digest(token.as_bytes()).to_vec(),
        CoreJwsSigningAlgorithm::HmacSha384 => sha2::Sha384::digest(token.as_bytes()).to_vec(),
        CoreJwsSigningAlgorithm::HmacSha512 => sha2::Sha512::digest(token.as_bytes()).to_vec(),
        _ => return None,
    };
    let half = &digest[..digest.len() / 2];
    Some(AccessTokenHash::new(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(half)))
}

fn map_verification_error(err: ClaimsVerificationError) -> IdTokenError {
    let text = clip(&err.to_string(), 200);
    match err {
        ClaimsVerificationError::Expired(_) => IdTokenError::Time(text),
        ClaimsVerificationError::InvalidAudience(_) => IdTokenError::Audience(text),
        ClaimsVerificationError::InvalidIssuer(_) => IdTokenError::Issuer(text),
        ClaimsVerificationError::InvalidNonce(_) => IdTokenError::Nonce,
        ClaimsVerificationError::InvalidSubject(_) => IdTokenError::Malformed(text),
        ClaimsVerificationError::SignatureVerification(e) => signature_error(e),
        _ => IdTokenError::Malformed(text),
    }
}

async fn fetch_jwks(http: &ProviderHttp, url: &Url) -> Result<CoreJsonWebKeySet, ProviderError> {
    let response = http.send(Step::Jwks, http.get(url)).await?;
    if !response.status.is_success() {
        return Err(ProviderError::Status { step: Step::Jwks, status: response.status.as_u16() });
    }
    serde_json::from_slice(&response.body)
        .map_err(|_| ProviderError::NotJson { step: Step::Jwks, status: 200 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn oidc(issuer: &str, quirk: OidcQuirk) -> Oidc {
        Oidc::new(Issuer::parse(issuer).unwrap(), quirk, false, UserinfoPointers::default()).unwrap()
    }

    fn generic(issuer: &str) -> Oidc {
        oidc(issuer, OidcQuirk::None)
    }

    fn microsoft(tenant: &str) -> Oidc {
        oidc(
            &format!("https://login.microsoftonline.com/{tenant}/v2.0"),
            OidcQuirk::Microsoft {
                tenant: tenant.into(),
                authority: "https://login.microsoftonline.com".into(),
            },
        )
    }

    fn doc(issuer: &str) -> Value {
        json!({
            "issuer": issuer,
            "authorization_endpoint": "https://login.microsoftonline.com/common/oauth2/v2.0/authorize",
            "token_endpoint": "https://login.microsoftonline.com/common/oauth2/v2.0/token",
            "userinfo_endpoint": "https://graph.microsoft.com/oidc/userinfo",
            "jwks_uri": "https://login.microsoftonline.com/common/discovery/v2.0/keys",
            "id_token_signing_alg_values_supported": ["RS256"],
        })
    }

    /// A document for `issuer` whose endpoints all live at `endpoints_base`.
    fn doc_at(issuer: &str, endpoints_base: &str) -> Value {
        json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{endpoints_base}/authorize"),
            "token_endpoint": format!("{endpoints_base}/token"),
            "userinfo_endpoint": format!("{endpoints_base}/userinfo"),
            "jwks_uri": format!("{endpoints_base}/jwks"),
        })
    }

    fn bad_document(result: Result<Discovered, DiscoveryError>) -> String {
        match result {
            Err(DiscoveryError::BadDocument(why)) => why,
            other => panic!("expected BadDocument, got {other:?}"),
        }
    }

    /// Claims as the crate reads them from a token's payload.
    fn claims(value: Value) -> IdTokenClaims {
        serde_json::from_value(value).unwrap()
    }

    fn google_claims(email: &str, email_verified: bool, hd: Option<&str>) -> IdTokenClaims {
        let mut c = json!({
            "iss": "https://accounts.google.com", "aud": "c", "exp": 2_000_000_000, "iat": 1_000_000_000,
            "sub": "g-1", "email": email, "email_verified": email_verified,
        });
        if let Some(hd) = hd {
            c["hd"] = json!(hd);
        }
        claims(c)
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
    fn entra_domain_tenant_accepts_the_tenant_id_issuer_only() {
        let ms = microsoft("contoso.com");
        let tid = "72f988bf-86f1-41af-91ab-2d7cd011db47";
        let d = ms.read_document(&doc(&format!("https://login.microsoftonline.com/{tid}/v2.0"))).unwrap();
        assert_eq!(entra_tenant_id("https://login.microsoftonline.com", &d.issuer), Some(tid));
        assert!(check_entra_tenant("contoso.com", "https://login.microsoftonline.com", &d, tid).is_ok());
        let other = "11111111-2222-3333-4444-555555555555";
        assert!(matches!(
            check_entra_tenant("contoso.com", "https://login.microsoftonline.com", &d, other),
            Err(IdTokenError::Tenant(_))
        ));
        // Not a tenant id where one belongs, another authority, or the template: refused.
        for published in [
            "https://login.microsoftonline.com/fabrikam.com/v2.0".to_owned(),
            format!("https://evil.example/{tid}/v2.0"),
            format!("https://login.microsoftonline.com/{tid}/v2.0/x"),
            "https://login.microsoftonline.com/{tenantid}/v2.0".to_owned(),
        ] {
            assert!(ms.read_document(&doc(&published)).is_err(), "{published}");
        }
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
    fn id_token_iss_is_compared_exactly_and_says_when_only_a_slash_differs() {
        assert!(check_iss("https://tenant.auth0.com/", "https://tenant.auth0.com/").is_ok());
        let err = check_iss("https://tenant.auth0.com/", "https://tenant.auth0.com").unwrap_err().to_string();
        assert!(err.contains("differ only by a trailing slash"), "{err}");
        let err = check_iss("https://idp.example", "https://evil.example").unwrap_err().to_string();
        assert!(err.contains("issued by someone else") && !err.contains("trailing slash"), "{err}");
        assert!(check_iss("https://idp.example", "https://IDP.example").is_err());
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
    fn algorithm_allowlist_never_has_none_and_hmac_only_when_asked() {
        let strict = generic("https://idp.example");
        let mut d = doc("https://idp.example");
        d["id_token_signing_alg_values_supported"] = json!(["RS256", "HS256", "none", "ES256"]);
        let d = strict.read_document(&d).unwrap();
        assert_eq!(
            strict.allowed_algorithms(&d),
            vec![CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256, CoreJwsSigningAlgorithm::EcdsaP256Sha256]
        );
        let hmac = Oidc::new(
            Issuer::parse("https://idp.example").unwrap(),
            OidcQuirk::None,
            true,
            UserinfoPointers::default(),
        )
        .unwrap();
        assert!(hmac.allowed_algorithms(&d).contains(&CoreJwsSigningAlgorithm::HmacSha256));
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

    #[test]
    fn google_email_is_verified_only_for_gmail_and_workspace() {
        let g = oidc("https://accounts.google.com", OidcQuirk::Google);
        let verified = |c: IdTokenClaims| g.profile_from_claims(&c).unwrap().unwrap().email_verified;
        assert!(verified(google_claims("someone@gmail.com", true, None)));
        assert!(verified(google_claims("someone@corp.example", true, Some("corp.example"))));
        assert!(!verified(google_claims("someone@example.com", true, None)));
        assert!(!verified(google_claims("someone@gmail.com", false, None)));
        assert!(!verified(google_claims("someone@corp.example", false, Some("corp.example"))));
        // The same address from any other provider keeps the plain rule.
        let other = generic("https://accounts.google.com");
        assert!(
            other
                .profile_from_claims(&google_claims("someone@example.com", true, None))
                .unwrap()
                .unwrap()
                .email_verified
        );
    }

    #[test]
    fn google_rule_applies_to_an_address_from_userinfo() {
        let g = oidc("https://accounts.google.com", OidcQuirk::Google);
        let c = claims(json!({
            "iss": "https://accounts.google.com", "aud": "c", "exp": 2_000_000_000, "iat": 1_000_000_000,
            "sub": "g-1",
        }));
        let from = |userinfo: Value| g.merge_userinfo(&c, None, &userinfo).unwrap().email_verified;
        assert!(from(json!({"sub": "g-1", "email": "a@gmail.com", "email_verified": true})));
        assert!(from(
            json!({"sub": "g-1", "email": "a@corp.example", "email_verified": true, "hd": "corp.example"})
        ));
        assert!(!from(json!({"sub": "g-1", "email": "a@example.com", "email_verified": true})));
        assert!(!from(json!({"sub": "g-1", "email": "a@gmail.com", "email_verified": false})));
        // The token's hd counts for a userinfo address too.
        let with_hd = claims(json!({
            "iss": "https://accounts.google.com", "aud": "c", "exp": 2_000_000_000, "iat": 1_000_000_000,
            "sub": "g-1", "hd": "corp.example",
        }));
        let userinfo = json!({"sub": "g-1", "email": "a@corp.example", "email_verified": true});
        assert!(g.merge_userinfo(&with_hd, None, &userinfo).unwrap().email_verified);
    }
}
