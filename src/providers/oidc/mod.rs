//! Any OpenID Connect provider from its issuer URL: discovery, the JWKS cache with rate-limited
//! refetch on an unknown `kid` (key rotation), and ID token validation per OpenID Connect Core
//! §3.1.3.7.
//!
//! Signatures, `iss`, `aud`, `exp` and `nonce` are checked by the `openidconnect` crate's
//! `IdTokenVerifier` — no hand-written JWS code here. What that crate leaves to its caller is done
//! below, each with its reason: the algorithm allowlist (what the provider advertises, never
//! `none`, HMAC only when configured), `iat` not in the future, `azp` when there are several
//! audiences (the crate skips it, see its source), `at_hash`, the userinfo `sub` matching the ID
//! token's, and Microsoft's multi-tenant issuer.
//!
//! The discovery document is read as plain JSON for the few members we use, rather than through the
//! crate's `ProviderMetadata`, whose strict typing would refuse real documents over fields we
//! never read.

use super::generic::{clip, get_json, https_url, text_at};
use super::Profile;
use crate::config::{is_loopback_url, UserinfoPointers};
use crate::domain::secret::{AccessToken, ClientSecret};
use crate::domain::{Email, Subject};
use crate::oauth::http::{ProviderHttp, Step};
use crate::oauth::{ProviderError, Tokens};
use base64::Engine;
use openidconnect::core::{
    CoreGenderClaim, CoreJsonWebKey, CoreJsonWebKeySet, CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
};
use openidconnect::{
    AccessTokenHash, AdditionalClaims, Audience, ClaimsVerificationError, IdTokenVerifier, IssuerUrl,
    JsonWebKey, Nonce, SignatureVerificationError,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::str::FromStr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use url::Url;

/// Claims beyond the standard ones that we read (Microsoft's tenant, object id and e-mail proof).
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
/// At most one JWKS refetch per provider in this interval, however many unknown `kid`s arrive.
pub const JWKS_REFETCH_INTERVAL: Duration = Duration::from_secs(10);
/// At most one discovery attempt per provider in this interval while it is unavailable.
pub const DISCOVERY_RETRY_INTERVAL: Duration = Duration::from_secs(5);

/// The Microsoft personal-accounts tenant.
pub const MS_CONSUMERS_TENANT: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";

/// Provider-specific rules on top of OpenID Connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OidcQuirk {
    /// Plain OpenID Connect.
    None,
    /// Microsoft Entra ID: templated multi-tenant issuer, identity = `tid` + `oid`, and an e-mail
    /// is verified only with `xms_edov` (the "nOAuth" defence).
    Microsoft {
        /// `common`, `organizations`, `consumers` or a tenant id.
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

/// An OpenID Connect provider's runtime state.
#[derive(Debug)]
pub struct Oidc {
    /// The configured issuer.
    pub issuer: String,
    discovery_url: Url,
    quirk: OidcQuirk,
    allow_hmac: bool,
    pointers: UserinfoPointers,
    discovered: RwLock<Option<Arc<Discovered>>>,
    jwks: RwLock<Arc<CoreJsonWebKeySet>>,
    last_discovery: Mutex<Option<(Instant, String)>>,
    last_jwks_refetch: Mutex<Option<Instant>>,
    /// Serialises discovery so that a burst of first clicks makes one fetch.
    discovery_lock: tokio::sync::Mutex<()>,
}

impl Oidc {
    /// A provider whose discovery document is at `discovery_url` (normally
    /// `{issuer}/.well-known/openid-configuration`).
    pub fn new(
        issuer: String,
        discovery_url: Url,
        quirk: OidcQuirk,
        allow_hmac: bool,
        pointers: UserinfoPointers,
    ) -> Self {
        Self {
            issuer,
            discovery_url,
            quirk,
            allow_hmac,
            pointers,
            discovered: RwLock::new(None),
            jwks: RwLock::new(Arc::new(CoreJsonWebKeySet::new(Vec::new()))),
            last_discovery: Mutex::new(None),
            last_jwks_refetch: Mutex::new(None),
            discovery_lock: tokio::sync::Mutex::new(()),
        }
    }

    /// `{issuer}/.well-known/openid-configuration` (OpenID Connect Discovery §4).
    pub fn discovery_url_for(issuer: &str) -> Option<Url> {
        Url::parse(&format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'))).ok()
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
                if let Ok(mut slot) = self.jwks.write() {
                    *slot = Arc::new(jwks);
                }
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
            return Err(DiscoveryError::IssuerMismatch {
                expected: self.issuer.clone(),
                found: clip(issuer, 200),
            });
        }
        let endpoint = |name: &str, required: bool| -> Result<Option<Url>, DiscoveryError> {
            match doc.get(name).and_then(Value::as_str) {
                None if required => Err(DiscoveryError::BadDocument(format!("{name} is missing"))),
                None => Ok(None),
                Some(text) => {
                    let url = Url::parse(text)
                        .map_err(|_| DiscoveryError::BadDocument(format!("{name} is not a URL")))?;
                    if url.scheme() != "https" && !is_loopback_url(&url) {
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

    /// The published issuer must equal the configured one exactly; Microsoft's multi-tenant
    /// endpoints publish a `{tenantid}` template instead.
    fn issuer_acceptable(&self, published: &str) -> bool {
        if published == self.issuer {
            return true;
        }
        match &self.quirk {
            OidcQuirk::Microsoft { tenant, authority } => {
                let template = format!("{authority}/{{tenantid}}/v2.0");
                let consumers = format!("{authority}/{MS_CONSUMERS_TENANT}/v2.0");
                match tenant.as_str() {
                    "common" | "organizations" => published == template,
                    "consumers" => published == consumers,
                    _ => false,
                }
            }
            OidcQuirk::None => false,
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
            Some(iss) => iss == discovered.issuer,
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

    fn current_jwks(&self) -> Arc<CoreJsonWebKeySet> {
        self.jwks.read().map(|j| j.clone()).unwrap_or_else(|_| Arc::new(CoreJsonWebKeySet::new(Vec::new())))
    }

    /// When the token names a `kid` we do not have, fetch the key set again — at most once per
    /// [`JWKS_REFETCH_INTERVAL`], so that a flood of forged tokens cannot make us hammer the provider.
    async fn refresh_keys_for(&self, http: &ProviderHttp, discovered: &Discovered, kid: &str) {
        let known =
            self.current_jwks().keys().iter().any(|k| k.key_id().is_some_and(|id| id.as_str() == kid));
        if known {
            return;
        }
        {
            let Ok(mut last) = self.last_jwks_refetch.lock() else { return };
            if last.is_some_and(|at| at.elapsed() < JWKS_REFETCH_INTERVAL) {
                return;
            }
            *last = Some(Instant::now());
        }
        match fetch_jwks(http, &discovered.jwks_uri).await {
            Ok(jwks) => {
                tracing::info!(issuer = %self.issuer, "refetched the provider's key set for an unknown kid");
                if let Ok(mut slot) = self.jwks.write() {
                    *slot = Arc::new(jwks);
                }
            }
            Err(err) => tracing::warn!(issuer = %self.issuer, error = %err, "could not refetch the key set"),
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
        let id_token =
            IdToken::from_str(raw).map_err(|e| IdTokenError::Malformed(clip(&e.to_string(), 200)))?;
        if let Some(kid) =
            jwt_header(raw).and_then(|h| h.get("kid").and_then(Value::as_str).map(str::to_owned))
        {
            self.refresh_keys_for(http, discovered, &kid).await;
        }
        let claims =
            self.verify(discovered, client_id, client_secret, &id_token, &tokens.access_token, nonce)?;
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

    /// OpenID Connect Core §3.1.3.7, steps 2–11, plus `at_hash` (§3.1.3.8 via §3.3.2.9).
    fn verify(
        &self,
        discovered: &Discovered,
        client_id: &str,
        client_secret: Option<&ClientSecret>,
        id_token: &IdToken,
        access_token: &AccessToken,
        nonce: &str,
    ) -> Result<IdTokenClaims, IdTokenError> {
        let jwks = (*self.current_jwks()).clone();
        let templated = discovered.issuer.contains("{tenantid}");
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
        let verifier = verifier
            .set_allowed_algs(self.allowed_algorithms(discovered))
            // A templated issuer is checked below, once the tenant is known.
            .require_issuer_match(!templated)
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
        let expected_nonce = Nonce::new(nonce.to_owned());
        let claims = id_token.claims(&verifier, &expected_nonce).map_err(map_verification_error)?.clone();

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

        if let OidcQuirk::Microsoft { tenant, .. } = &self.quirk {
            let extra = claims.additional_claims();
            let tid = extra.tid.as_deref().ok_or_else(|| IdTokenError::Tenant("no tid claim".into()))?;
            let expected = self.expected_issuer(discovered, Some(tid));
            if claims.issuer().as_str() != expected {
                return Err(IdTokenError::Issuer(format!("expected {expected}")));
            }
            match tenant.as_str() {
                "common" => {}
                "organizations" if tid == MS_CONSUMERS_TENANT => {
                    return Err(IdTokenError::Tenant("personal accounts are not accepted".into()))
                }
                "consumers" if tid != MS_CONSUMERS_TENANT => {
                    return Err(IdTokenError::Tenant("only personal accounts are accepted".into()))
                }
                "organizations" | "consumers" => {}
                specific if !tid.eq_ignore_ascii_case(specific) => {
                    return Err(IdTokenError::Tenant("the account belongs to another tenant".into()))
                }
                _ => {}
            }
        } else if templated {
            // Only Microsoft publishes a template; anywhere else it is a misconfiguration.
            return Err(IdTokenError::Issuer("templated issuer without a tenant rule".into()));
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
            OidcQuirk::None => claims.subject().as_str().to_owned(),
        };
        Subject::parse(&raw).map_err(IdTokenError::Malformed)
    }

    /// Microsoft: an address is verified only when `xms_edov` says the domain owner verified it;
    /// Entra lets tenant admins set any `email`, so without it linking by e-mail would be the
    /// "nOAuth" account takeover.
    fn email_verified(&self, claims: &IdTokenClaims, claimed: Option<bool>) -> bool {
        match self.quirk {
            OidcQuirk::Microsoft { .. } => match &claims.additional_claims().xms_edov {
                Some(Value::Bool(b)) => *b,
                Some(Value::Number(n)) => n.as_i64() == Some(1),
                Some(Value::String(s)) => s == "1" || s.eq_ignore_ascii_case("true"),
                _ => false,
            },
            OidcQuirk::None => claimed == Some(true),
        }
    }

    fn profile_from_claims(&self, claims: &IdTokenClaims) -> Result<Option<Profile>, IdTokenError> {
        let subject = self.subject_of(claims)?;
        let (email, verified) = match claims.email() {
            Some(email) => {
                (Some(email.as_str().to_owned()), self.email_verified(claims, claims.email_verified()))
            }
            // Entra often has no `email` claim; the sign-in name is the usual address, but it is
            // changeable and `xms_edov` does not vouch for it: never verified.
            None => match self.quirk {
                OidcQuirk::Microsoft { .. } => (
                    claims.preferred_username().map(|u| u.as_str().to_owned()).filter(|u| u.contains('@')),
                    false,
                ),
                OidcQuirk::None => (None, false),
            },
        };
        let Some(email) = email.and_then(|e| Email::parse(&e).ok()) else { return Ok(None) };
        Ok(Some(Profile {
            subject,
            email_verified: verified,
            email,
            name: claims.name().and_then(|n| n.get(None)).map(|n| clip(n.as_str(), 200)),
            avatar: claims.picture().and_then(|p| p.get(None)).and_then(|p| https_url(p.as_str())),
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
            email_verified: self.email_verified(claims, claimed),
            email,
            name: text_at(json, &pointer(&self.pointers.name, "/name")).map(|n| clip(&n, 200)),
            avatar: text_at(json, &pointer(&self.pointers.avatar, "/picture")).and_then(|a| https_url(&a)),
        })
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
        ClaimsVerificationError::SignatureVerification(SignatureVerificationError::NoMatchingKey) => {
            IdTokenError::Signature("no key in the provider's key set matches the token".into())
        }
        ClaimsVerificationError::SignatureVerification(e) => {
            IdTokenError::Signature(clip(&e.to_string(), 200))
        }
        _ => IdTokenError::Malformed(text),
    }
}

/// The JOSE header of a compact JWT, decoded only to read `kid` (never trusted for anything else).
fn jwt_header(jwt: &str) -> Option<Value> {
    let header = jwt.split('.').next()?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header.trim_end_matches('=')).ok()?;
    serde_json::from_slice(&bytes).ok()
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

    fn microsoft(tenant: &str) -> Oidc {
        let issuer = format!("https://login.microsoftonline.com/{tenant}/v2.0");
        let url = Oidc::discovery_url_for(&issuer).unwrap();
        Oidc::new(
            issuer,
            url,
            OidcQuirk::Microsoft {
                tenant: tenant.into(),
                authority: "https://login.microsoftonline.com".into(),
            },
            false,
            UserinfoPointers::default(),
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
        let url = Oidc::discovery_url_for("https://idp.example").unwrap();
        assert_eq!(url.as_str(), "https://idp.example/.well-known/openid-configuration");
        let o =
            Oidc::new("https://idp.example".into(), url, OidcQuirk::None, false, UserinfoPointers::default());
        let mut d = doc("https://idp.example/");
        assert!(matches!(o.read_document(&d), Err(DiscoveryError::IssuerMismatch { .. })));
        d["issuer"] = json!("https://idp.example");
        d["token_endpoint"] = json!("http://idp.example/token");
        assert!(matches!(o.read_document(&d), Err(DiscoveryError::BadDocument(_))));
    }

    #[test]
    fn algorithm_allowlist_never_has_none_and_hmac_only_when_asked() {
        let url = Oidc::discovery_url_for("https://idp.example").unwrap();
        let strict = Oidc::new(
            "https://idp.example".into(),
            url.clone(),
            OidcQuirk::None,
            false,
            UserinfoPointers::default(),
        );
        let mut d = doc("https://idp.example");
        d["id_token_signing_alg_values_supported"] = json!(["RS256", "HS256", "none", "ES256"]);
        let d = strict.read_document(&d).unwrap();
        assert_eq!(
            strict.allowed_algorithms(&d),
            vec![CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256, CoreJwsSigningAlgorithm::EcdsaP256Sha256]
        );
        let hmac =
            Oidc::new("https://idp.example".into(), url, OidcQuirk::None, true, UserinfoPointers::default());
        assert!(hmac.allowed_algorithms(&d).contains(&CoreJwsSigningAlgorithm::HmacSha256));
    }

    #[test]
    fn callback_iss_rules() {
        let url = Oidc::discovery_url_for("https://idp.example").unwrap();
        let o =
            Oidc::new("https://idp.example".into(), url, OidcQuirk::None, false, UserinfoPointers::default());
        let mut d = o.read_document(&doc("https://idp.example")).unwrap();
        assert!(o.callback_iss_ok(&d, None));
        assert!(!o.callback_iss_ok(&d, Some("https://evil.example")));
        d.iss_parameter_supported = true;
        assert!(!o.callback_iss_ok(&d, None));
        assert!(o.callback_iss_ok(&d, Some("https://idp.example")));
    }
}
