//! Any OpenID Connect provider from its issuer URL: the [`Oidc`] type, and
//! [`Oidc::login_profile`], which runs one login's checks in order once the code is exchanged.
//!
//! # Where each check lives
//! - [`discovery`]: fetching and reading the discovery document; which endpoints it may name
//!   (https; plain http only on loopback for a loopback issuer, or for the development provider);
//!   its `issuer` against the configured one, exactly, with Microsoft's `{tenantid}` template; the
//!   authorization response's `iss` parameter (RFC 9207); retrying a provider that is down.
//! - [`id_token`]: the ID token (Core §3.1.3.7): the algorithm allowlist, `iss` (with Google's
//!   scheme-less form and Entra's tenant rule), `aud` and `azp`, `exp` and `iat`, `nonce`,
//!   `at_hash`; then the profile from its claims, and the userinfo merge (same `sub` only).
//! - [`keys`]: the JWKS cache, and its refetch when a token names a `kid` we do not have.
//! - `jws`: the little we read of a token ourselves before it is verified (`kid`, `iss`).
//!
//! Provider-specific rules are the closed [`OidcQuirk`]; each quirk's own data (Google's Gmail and
//! Workspace rule, Entra's tenant shapes, Slack's workspaces) lives in [`super::google`],
//! [`super::microsoft`] and [`super::slack`].

pub mod discovery;
#[cfg(test)]
mod fixtures;
pub mod id_token;
mod jws;
pub mod keys;

use super::generic::get_json;
use super::{Profile, ProfileError};
use crate::config::UserinfoPointers;
use crate::domain::secret::ClientSecret;
use crate::domain::Issuer;
use crate::oauth::http::{ProviderHttp, Step};
use crate::oauth::{ProviderError, Tokens};
use discovery::{fetch_jwks, DiscoveryState, EndpointRule};
use keys::{KeyCache, Refresh};
use url::Url;

pub use discovery::{Discovered, DiscoveryError};
pub use id_token::IdTokenError;

/// Provider-specific rules on top of OpenID Connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OidcQuirk {
    /// Plain OpenID Connect.
    None,
    /// Google: `iss` may also be the issuer without its scheme, and `email_verified` counts only
    /// for Gmail and Workspace addresses (see [`super::google`]).
    Google,
    /// Apple: `is_private_email` vouches for a private relay address (see [`super::apple`]).
    Apple,
    /// Microsoft Entra ID: templated multi-tenant issuer, identity = `tid` + `oid`, and an e-mail
    /// is verified only with `xms_edov` (the "nOAuth" defence).
    Microsoft {
        /// `common`, `organizations`, `consumers`, a tenant id or a tenant's domain name.
        tenant: String,
        /// `https://login.microsoftonline.com`, or a national cloud's login host.
        authority: String,
    },
    /// Slack: identity = workspace (`https://slack.com/team_id`) + `sub`, a token without a
    /// workspace refused, and with `team` configured only that workspace accepted (see
    /// [`super::slack`]).
    Slack {
        /// The one workspace accepted, if configured.
        team: Option<String>,
    },
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
    discovery: DiscoveryState,
    keys: KeyCache,
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
            discovery: DiscoveryState::default(),
            keys: KeyCache::default(),
        }
    }

    /// The provider-specific rules in force.
    pub fn quirk(&self) -> &OidcQuirk {
        &self.quirk
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
    ) -> Result<Profile, ProfileError> {
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
}
