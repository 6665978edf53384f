//! Providers as data, with their quirks small and named.
//!
//! A [`Preset`] fills a [`ProviderConfig`] with a provider's defaults; the configuration can
//! override them, and the result's [`ProviderKind`] holds what its protocol needs. The protocol
//! choices a provider is configured with live in [`protocol`]. At start each configured provider
//! becomes a [`Provider`] speaking one of two [`Protocol`]s: plain OAuth 2.0 with explicit
//! endpoints (GitHub, anything described as data), or OpenID Connect from an issuer (Google,
//! Microsoft, GitLab, the development provider, any certified provider). Quirks are closed enums we
//! own, not traits: each is a small function with its own test.

pub mod apple;
pub mod auth0;
pub mod bitbucket;
pub mod dev;
pub mod discord;
pub mod facebook;
pub mod generic;
pub mod github;
pub mod gitlab;
pub mod google;
pub mod keycloak;
pub mod linkedin;
pub mod microsoft;
pub mod oidc;
pub mod okta;
pub mod protocol;
pub mod slack;
pub mod twitch;
pub mod x;

pub use protocol::{AuthorizeParams, ResponseMode, TokenAuth, UserinfoPointers};

use crate::config::{ProviderConfig, ProviderKind};
use crate::domain::secret::{AccessToken, ClientSecret};
use crate::domain::{Email, Issuer, ProviderName, Subject};
use crate::oauth::client_auth::ClientKey;
use crate::oauth::http::ProviderHttp;
use crate::oauth::{ClientCredentials, ProviderError, Tokens};
use oidc::{Discovered, DiscoveryError, IdTokenError, Oidc, OidcQuirk};
use std::borrow::Cow;
use std::sync::Arc;
use url::Url;

/// The providers we ship defaults for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    /// Google (OpenID Connect).
    Google,
    /// Sign in with Apple (OpenID Connect, form_post, an ES256 JWT client secret).
    Apple,
    /// GitHub OAuth apps (OAuth 2.0 plus GitHub's API).
    Github,
    /// Discord (OAuth 2.0, `/users/@me`).
    Discord,
    /// Bitbucket Cloud (OAuth 2.0, `/user` and `/user/emails`).
    Bitbucket,
    /// Facebook Login (OAuth 2.0, Graph API `/me`; addresses never verified).
    Facebook,
    /// X, formerly Twitter (OAuth 2.0 with PKCE and Basic client auth, `/2/users/me`; no address).
    X,
    /// Microsoft Entra ID (OpenID Connect, multi-tenant rules).
    Microsoft,
    /// GitLab.com or a self-hosted GitLab (OpenID Connect).
    Gitlab,
    /// LinkedIn (OpenID Connect, `client_secret_post`).
    Linkedin,
    /// Slack, "Sign in with Slack" (OpenID Connect, identities per workspace).
    Slack,
    /// Okta (OpenID Connect from `domain`).
    Okta,
    /// Auth0 (OpenID Connect from `domain`, trailing-slash issuer).
    Auth0,
    /// Keycloak (OpenID Connect from `base_url` and `realm`).
    Keycloak,
    /// Twitch (OpenID Connect, its address asked for with the `claims` parameter).
    Twitch,
    /// The built-in development provider (OpenID Connect, served by this process).
    Dev,
}

impl Preset {
    /// Names accepted in `preset = "..."`.
    pub const NAMES: [&'static str; 16] = [
        "google",
        "apple",
        "github",
        "discord",
        "bitbucket",
        "facebook",
        "x",
        "microsoft",
        "gitlab",
        "linkedin",
        "slack",
        "okta",
        "auth0",
        "keycloak",
        "twitch",
        "dev",
    ];

    /// The preset called `name`, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "google" => Some(Preset::Google),
            "apple" => Some(Preset::Apple),
            "github" => Some(Preset::Github),
            "discord" => Some(Preset::Discord),
            "bitbucket" => Some(Preset::Bitbucket),
            "facebook" => Some(Preset::Facebook),
            "x" => Some(Preset::X),
            "microsoft" => Some(Preset::Microsoft),
            "gitlab" => Some(Preset::Gitlab),
            "linkedin" => Some(Preset::Linkedin),
            "slack" => Some(Preset::Slack),
            "okta" => Some(Preset::Okta),
            "auth0" => Some(Preset::Auth0),
            "keycloak" => Some(Preset::Keycloak),
            "twitch" => Some(Preset::Twitch),
            "dev" => Some(Preset::Dev),
            _ => None,
        }
    }

    /// A provider configuration with this preset's defaults and no credentials. `None` only if
    /// the preset's own constants (its issuer, its endpoints) stopped parsing: a bug, which the
    /// configuration reports rather than panics on (a test checks every preset).
    pub fn defaults(self, name: ProviderName) -> Option<ProviderConfig> {
        let mut config = match self {
            Preset::Google => google::defaults(name)?,
            Preset::Apple => apple::defaults(name)?,
            Preset::Github => github::defaults(name)?,
            Preset::Discord => discord::defaults(name)?,
            Preset::Bitbucket => bitbucket::defaults(name)?,
            Preset::Facebook => facebook::defaults(name)?,
            Preset::X => x::defaults(name)?,
            Preset::Microsoft => microsoft::defaults(name)?,
            Preset::Gitlab => gitlab::defaults(name)?,
            Preset::Linkedin => linkedin::defaults(name)?,
            Preset::Slack => slack::defaults(name)?,
            Preset::Okta => okta::defaults(name)?,
            Preset::Auth0 => auth0::defaults(name)?,
            Preset::Keycloak => keycloak::defaults(name)?,
            Preset::Twitch => twitch::defaults(name)?,
            Preset::Dev => dev::defaults(name),
        };
        config.trust_email_verified = self.trusts_email_verified();
        Some(config)
    }

    /// Whether this provider's "the address is verified" is believed by default. Only where the
    /// provider's verification is known to be sound *and* the preset reads it the strict way:
    /// Google only where its documentation calls itself authoritative (`@gmail.com`, or a
    /// Workspace `hd`); GitHub's primary *and* verified address; Microsoft only with `xms_edov`
    /// (domain-owner verified); Discord's `verified` flag (set once the mailed link is followed);
    /// LinkedIn's `email_verified` (the member confirmed the address by mail); Twitch's (set once the
    /// mailed link is followed); Apple's (it hands out only addresses it verified, a private relay
    /// address being the relay's); Bitbucket's primary *and* confirmed address;
    /// gitlab.com (a self-hosted GitLab is switched off in the
    /// configuration, its admins decide what "verified" means). Generic providers are off: any
    /// realm or server can claim any address is verified; so is Slack, whose workspace admins set
    /// their members' addresses. The development provider can never be
    /// trusted: it believes whatever is typed into it.
    pub fn trusts_email_verified(self) -> bool {
        match self {
            Preset::Google
            | Preset::Apple
            | Preset::Github
            | Preset::Discord
            | Preset::Bitbucket
            | Preset::Microsoft
            | Preset::Gitlab
            | Preset::Linkedin
            | Preset::Twitch => true,
            // Their administrators decide what "verified" means (see each module).
            Preset::Okta | Preset::Auth0 | Preset::Keycloak => false,
            // Nothing to trust: Facebook has no verification flag, X no address at all.
            Preset::Facebook | Preset::X => false,
            // A workspace's admins set their members' addresses (see the module).
            Preset::Slack => false,
            Preset::Dev => false,
        }
    }

    /// Presets whose issuer comes from the table (`domain`, or `base_url` and `realm`, or
    /// `issuer`): there is no default one.
    pub fn issuer_from_table(self) -> bool {
        matches!(self, Preset::Okta | Preset::Auth0 | Preset::Keycloak)
    }
}

/// The issuer of presets whose issuer the table must give ([`Preset::issuer_from_table`]) until it
/// does; a table without one is refused, so it never reaches discovery.
pub(crate) const UNSET_ISSUER: &str = "https://issuer-not-configured.invalid";

/// The scopes an OpenID Connect provider is asked for unless configured otherwise (`openid` is
/// always among them, Core §3.1.2.1).
pub const OIDC_SCOPES: [&str; 3] = ["openid", "email", "profile"];

/// The defaults every OpenID Connect preset shares: discovery from `issuer`, the standard scopes.
/// `tenant` is Microsoft's alone.
pub fn oidc_defaults(
    name: ProviderName,
    preset: Preset,
    display: &str,
    issuer: Issuer,
    tenant: Option<String>,
) -> ProviderConfig {
    let kind = ProviderKind::Oidc {
        issuer,
        tenant,
        allow_hmac_id_tokens: false,
        userinfo: UserinfoPointers::default(),
    };
    let mut config = ProviderConfig::new(name, Some(preset), display, kind);
    config.scopes = OIDC_SCOPES.map(String::from).to_vec();
    config
}

/// How a plain OAuth 2.0 provider's profile is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quirk {
    /// One userinfo call, read with JSON Pointers.
    None,
    /// GitHub: `/user` for the account, `/user/emails` for the primary verified address.
    GithubEmails,
    /// Discord: `/users/@me`, its avatar built from the hash.
    Discord,
    /// Bitbucket: `/user` for the account, `/user/emails` for the primary confirmed address.
    BitbucketEmails,
    /// Facebook: `/me?fields=...`, an address never verified, perhaps none.
    Facebook,
    /// X: `/2/users/me`, no address at all.
    X,
}

/// What we learn about a person from a provider.
#[derive(Debug, Clone)]
pub struct Profile {
    /// The provider's stable id for the account.
    pub subject: Subject,
    /// The e-mail address the provider gave; `None` only from providers that have none to give
    /// (X), whose logins then never link by address.
    pub email: Option<Email>,
    /// True only when the provider says it verified that address (as read by the preset's
    /// rules); always false without an address. Whether *we* believe it is the provider's
    /// `trust_email_verified`, applied by [`Provider::believe`].
    pub email_verified: bool,
    /// The provider's own login name (GitHub `login`, OpenID Connect `preferred_username` when it
    /// is not an address), for a username when the address is not verified.
    pub username: Option<String>,
    /// A display name, if any.
    pub name: Option<String>,
    /// An avatar URL, if any (https only).
    pub avatar: Option<String>,
}

impl Profile {
    /// The address as stored: empty when the provider gave none.
    pub fn address(&self) -> &str {
        self.email.as_ref().map_or("", Email::as_str)
    }

    /// The address as compared for linking: empty when the provider gave none (and then nothing
    /// links, since only a verified address does).
    pub fn normalized_address(&self) -> String {
        self.email.as_ref().map(Email::normalized).unwrap_or_default()
    }
}

/// Why a login's profile could not be read after the code exchange. The callback answers the two
/// differently: a provider that failed or sent no usable profile is the provider's fault (502, or
/// 504 on a timeout); a refused ID token is a refused login (403, naming the reason).
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// A provider call failed, or its answer held no usable profile.
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// The ID token was refused (OpenID Connect only).
    #[error(transparent)]
    IdToken(#[from] IdTokenError),
}

/// A plain OAuth 2.0 provider's endpoints.
#[derive(Debug, Clone)]
pub struct OAuth2Endpoints {
    /// Authorization endpoint.
    pub authorize_url: Url,
    /// Token endpoint.
    pub token_url: Url,
    /// Userinfo endpoint.
    pub userinfo_url: Url,
    /// Where the profile's fields are.
    pub pointers: UserinfoPointers,
    /// How the profile is read.
    pub quirk: Quirk,
}

/// The protocol a provider speaks.
#[derive(Debug, Clone)]
pub enum Protocol {
    /// OAuth 2.0 with configured endpoints and a userinfo call.
    OAuth2(Box<OAuth2Endpoints>),
    /// OpenID Connect from an issuer.
    Oidc(Arc<Oidc>),
}

/// A provider's endpoints for one login, once known (OpenID Connect may need discovery first).
#[derive(Debug, Clone)]
pub enum Resolved<'a> {
    /// OAuth 2.0.
    OAuth2(&'a OAuth2Endpoints),
    /// OpenID Connect, with what discovery found.
    Oidc(&'a Oidc, Arc<Discovered>),
}

impl Resolved<'_> {
    /// Where the browser goes.
    pub fn authorize_url(&self) -> &Url {
        match self {
            Resolved::OAuth2(e) => &e.authorize_url,
            Resolved::Oidc(_, d) => &d.authorize_url,
        }
    }

    /// Where the code is exchanged.
    pub fn token_url(&self) -> &Url {
        match self {
            Resolved::OAuth2(e) => &e.token_url,
            Resolved::Oidc(_, d) => &d.token_url,
        }
    }
}

/// A configured provider, ready to use.
#[derive(Debug, Clone)]
pub struct Provider {
    /// Short name used in URLs.
    pub name: ProviderName,
    /// Shown on the button.
    pub display_name: String,
    /// OAuth client id.
    pub client_id: String,
    /// OAuth client secret.
    pub client_secret: Option<ClientSecret>,
    /// Requested scopes.
    pub scopes: Vec<String>,
    /// Client authentication at the token endpoint, if configured.
    pub token_auth: Option<TokenAuth>,
    /// The private key of `private_key_jwt`.
    pub client_key: Option<Arc<ClientKey>>,
    /// Sign in with Apple: makes the client secret sent instead of `client_secret`.
    pub apple_secret: Option<Arc<apple::AppleSecret>>,
    /// Query or form_post callbacks.
    pub response_mode: ResponseMode,
    /// Extra parameters of the authorization request (never one of ours, see
    /// [`AuthorizeParams::RESERVED`]).
    pub authorize_params: AuthorizeParams,
    /// OAuth 2.0 or OpenID Connect.
    pub protocol: Protocol,
    /// Whether this is the built-in development provider.
    pub is_dev: bool,
    /// Believe the provider's "the address is verified" (`trust_email_verified`).
    pub trust_email_verified: bool,
    /// Who issues this provider's subjects, stored with each identity: the OpenID Connect issuer
    /// (Microsoft: the cloud's authority, since its subjects are `tid:oid`), or the OAuth 2.0
    /// token endpoint's origin. A subject means nothing outside its issuer.
    pub issuer_binding: String,
}

/// Sign in with Apple's client secret maker, for an Apple table (whose configuration has its
/// team id and key: the walk refuses one without).
fn apple_secret(config: &ProviderConfig) -> Option<Arc<apple::AppleSecret>> {
    if config.preset != Some(Preset::Apple) {
        return None;
    }
    let (team_id, key) = (config.team_id.clone()?, config.client_key.clone()?);
    Some(Arc::new(apple::AppleSecret::new(team_id, config.client_id.clone(), key)))
}

/// The issuer binding of the development provider's identities: its subjects are made from the
/// address alone, whatever URL it is served at.
pub const DEV_ISSUER_BINDING: &str = "urn:loginwith:dev-provider";

impl Provider {
    /// Builds a provider from its validated configuration. `dev` gives, for the built-in
    /// development provider, its issuer (public), its discovery URL (loopback) and its secret.
    ///
    /// `None` only when an issuer yields no discovery URL, or `dev.issuer` is not a URL: the
    /// configuration itself is complete by construction ([`ProviderKind`]).
    pub fn from_config(config: &ProviderConfig, dev: &dev::DevEndpoints) -> Option<Self> {
        let is_dev = config.is_dev();
        let protocol = match &config.kind {
            ProviderKind::Dev { userinfo, .. } => Protocol::Oidc(Arc::new(Oidc::built_in_dev(
                Issuer::for_built_in_dev(&dev.issuer).ok()?,
                dev.discovery_url.clone(),
                userinfo.clone(),
            ))),
            ProviderKind::Oidc { issuer, tenant, allow_hmac_id_tokens, userinfo } => {
                let quirk = match config.preset {
                    Some(Preset::Microsoft) => microsoft::quirk(issuer, tenant.as_deref()),
                    Some(Preset::Google) => OidcQuirk::Google,
                    Some(Preset::Slack) => slack::quirk(&config.authorize_params),
                    Some(Preset::Apple) => OidcQuirk::Apple,
                    _ => OidcQuirk::None,
                };
                Protocol::Oidc(Arc::new(Oidc::new(
                    issuer.clone(),
                    quirk,
                    *allow_hmac_id_tokens,
                    userinfo.clone(),
                )?))
            }
            ProviderKind::OAuth2 { authorize_url, token_url, userinfo_url, userinfo } => {
                Protocol::OAuth2(Box::new(OAuth2Endpoints {
                    authorize_url: authorize_url.clone(),
                    token_url: token_url.clone(),
                    userinfo_url: userinfo_url.clone(),
                    pointers: userinfo.clone(),
                    quirk: match config.preset {
                        Some(Preset::Github) => Quirk::GithubEmails,
                        Some(Preset::Discord) => Quirk::Discord,
                        Some(Preset::Bitbucket) => Quirk::BitbucketEmails,
                        Some(Preset::Facebook) => Quirk::Facebook,
                        Some(Preset::X) => Quirk::X,
                        _ => Quirk::None,
                    },
                }))
            }
        };
        let issuer_binding = match &protocol {
            _ if is_dev => DEV_ISSUER_BINDING.to_owned(),
            Protocol::Oidc(oidc) => match oidc.quirk() {
                OidcQuirk::Microsoft { authority, .. } => authority.clone(),
                _ => oidc.issuer.as_str().to_owned(),
            },
            Protocol::OAuth2(endpoints) => endpoints.token_url.origin().ascii_serialization(),
        };
        let client_secret = if is_dev {
            Some(config.client_secret.clone().unwrap_or_else(|| dev.client_secret.clone()))
        } else {
            config.client_secret.clone()
        };
        Some(Provider {
            name: config.name.clone(),
            display_name: config.display_name.clone(),
            client_id: config.client_id.clone(),
            client_secret,
            scopes: config.scopes.clone(),
            token_auth: config.token_auth,
            client_key: config.client_key.clone(),
            apple_secret: apple_secret(config),
            response_mode: config.response_mode,
            authorize_params: config.authorize_params.clone(),
            protocol,
            is_dev,
            trust_email_verified: config.trust_email_verified && !is_dev,
            issuer_binding,
        })
    }

    /// The profile as *we* take it: the address counts as verified only when the provider says
    /// so and is trusted to (`trust_email_verified`). The development provider's checkbox is
    /// believed for display (it is a local try-out), but see [`Provider::links_accounts`].
    pub fn believe(&self, mut profile: Profile) -> Profile {
        profile.email_verified =
            profile.email.is_some() && profile.email_verified && (self.trust_email_verified || self.is_dev);
        profile
    }

    /// The profile with the name the callback itself carried, where the provider sends one there
    /// (Sign in with Apple's first `user` form field) and the token had none.
    pub fn with_callback_name(&self, mut profile: Profile, user_field: Option<&str>) -> Profile {
        let apple = self.oidc().is_some_and(|o| matches!(o.quirk(), OidcQuirk::Apple));
        if apple && profile.name.is_none() {
            profile.name = user_field.and_then(apple::name_from_user_field);
        }
        profile
    }

    /// Whether a login's verified address may attach it to another user's account (and be found
    /// by another provider's login). Never for the development provider, in either direction.
    pub fn links_accounts(&self, believed: &Profile) -> bool {
        believed.email_verified && !self.is_dev
    }

    /// The OpenID Connect state, if this provider speaks it.
    pub fn oidc(&self) -> Option<&Oidc> {
        match &self.protocol {
            Protocol::Oidc(o) => Some(o),
            Protocol::OAuth2(_) => None,
        }
    }

    /// True when the provider cannot be used now (OpenID Connect discovery has not succeeded).
    pub fn is_unavailable(&self) -> bool {
        self.oidc().is_some_and(|o| o.discovered().is_none() && o.last_error().is_some())
    }

    /// The endpoints for a login, discovering them first if needed.
    pub async fn resolve(&self, http: &ProviderHttp) -> Result<Resolved<'_>, DiscoveryError> {
        match &self.protocol {
            Protocol::OAuth2(endpoints) => Ok(Resolved::OAuth2(endpoints)),
            Protocol::Oidc(oidc) => Ok(Resolved::Oidc(oidc, oidc.ensure_discovered(http).await?)),
        }
    }

    /// The client credentials for the token request. For OpenID Connect without an explicit
    /// `token_auth`, Basic is the default (Core §9) unless discovery lists only post.
    /// Sign in with Apple's secret is made here, at `now` (see [`apple::AppleSecret`]); failing
    /// that, nothing is sent.
    pub fn credentials(
        &self,
        resolved: &Resolved<'_>,
        now: i64,
    ) -> Result<ClientCredentials<'_>, ProviderError> {
        let auth = self.token_auth.unwrap_or(match resolved {
            Resolved::OAuth2(_) => TokenAuth::ClientSecretPost,
            Resolved::Oidc(_, d) => {
                let methods = &d.token_auth_methods;
                let basic = methods.is_empty() || methods.iter().any(|m| m == "client_secret_basic");
                if !basic && methods.iter().any(|m| m == "client_secret_post") {
                    TokenAuth::ClientSecretPost
                } else {
                    TokenAuth::ClientSecretBasic
                }
            }
        });
        let client_secret = match &self.apple_secret {
            Some(apple) => {
                Some(Cow::Owned(apple.at(now).map_err(|e| ProviderError::ClientAssertion(e.to_string()))?))
            }
            None => self.client_secret.as_ref().map(Cow::Borrowed),
        };
        Ok(ClientCredentials {
            client_id: &self.client_id,
            client_secret,
            client_key: self.client_key.as_deref(),
            auth,
        })
    }

    /// Reads the person's profile once the code is exchanged, whatever the protocol: OAuth 2.0 by
    /// the userinfo call (and GitHub's e-mail call), OpenID Connect by checking the ID token first,
    /// against `nonce`, the one this login attempt sent.
    pub async fn fetch_profile(
        &self,
        http: &ProviderHttp,
        resolved: &Resolved<'_>,
        tokens: &Tokens,
        nonce: Option<&str>,
    ) -> Result<Profile, ProfileError> {
        match resolved {
            Resolved::OAuth2(endpoints) => Ok(oauth2_profile(endpoints, http, &tokens.access_token).await?),
            Resolved::Oidc(oidc, discovered) => {
                // An OpenID Connect attempt always sends a nonce. One without (begun while the
                // provider was configured as plain OAuth 2.0) is refused outright: an empty
                // expected nonce would match a token whose `nonce` is empty.
                let nonce = nonce.filter(|n| !n.is_empty()).ok_or(IdTokenError::Nonce)?;
                oidc.login_profile(
                    http,
                    discovered,
                    &self.client_id,
                    self.client_secret.as_ref(),
                    tokens,
                    nonce,
                )
                .await
            }
        }
    }
}

/// Reads a plain OAuth 2.0 provider's profile with the access token.
async fn oauth2_profile(
    endpoints: &OAuth2Endpoints,
    http: &ProviderHttp,
    token: &AccessToken,
) -> Result<Profile, ProviderError> {
    match endpoints.quirk {
        Quirk::None => {
            generic::fetch_profile(http, &endpoints.userinfo_url, &endpoints.pointers, token).await
        }
        Quirk::GithubEmails => github::fetch_profile(http, &endpoints.userinfo_url, token).await,
        Quirk::BitbucketEmails => bitbucket::fetch_profile(http, &endpoints.userinfo_url, token).await,
        Quirk::Facebook => facebook::fetch_profile(http, &endpoints.userinfo_url, token).await,
        Quirk::X => x::fetch_profile(http, &endpoints.userinfo_url, token).await,
        Quirk::Discord => {
            discord::fetch_profile(http, &endpoints.userinfo_url, &endpoints.pointers, token).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn oidc_provider(oidc: Arc<Oidc>) -> Provider {
        Provider {
            name: ProviderName::parse("idp").unwrap(),
            display_name: "IdP".into(),
            client_id: "client".into(),
            client_secret: None,
            scopes: vec!["openid".into()],
            token_auth: None,
            client_key: None,
            apple_secret: None,
            response_mode: Default::default(),
            authorize_params: Default::default(),
            protocol: Protocol::Oidc(oidc),
            is_dev: false,
            trust_email_verified: false,
            issuer_binding: "https://idp.example".into(),
        }
    }

    #[tokio::test]
    async fn an_openid_connect_profile_needs_the_attempts_nonce() {
        let oidc = Arc::new(
            Oidc::new(
                Issuer::parse("https://idp.example").unwrap(),
                OidcQuirk::None,
                false,
                Default::default(),
            )
            .unwrap(),
        );
        let discovered = Arc::new(
            oidc.read_document(&json!({
                "issuer": "https://idp.example",
                "authorization_endpoint": "https://idp.example/authorize",
                "token_endpoint": "https://idp.example/token",
                "jwks_uri": "https://idp.example/jwks",
            }))
            .unwrap(),
        );
        let provider = oidc_provider(oidc.clone());
        let resolved = Resolved::Oidc(&oidc, discovered);
        let http = ProviderHttp::new(&Default::default()).unwrap();
        let tokens = Tokens { access_token: AccessToken::new("at"), id_token: Some("a.b.c".into()) };
        for nonce in [None, Some("")] {
            // Refused before any call: the endpoints above are never contacted.
            let result = provider.fetch_profile(&http, &resolved, &tokens, nonce).await;
            assert!(
                matches!(result, Err(ProfileError::IdToken(IdTokenError::Nonce))),
                "{nonce:?}: {result:?}"
            );
        }
    }

    #[test]
    fn every_preset_has_complete_defaults_of_its_protocol() {
        for name in Preset::NAMES {
            let preset = Preset::from_name(name).unwrap();
            let config =
                preset.defaults(ProviderName::parse(name).unwrap()).unwrap_or_else(|| panic!("{name}"));
            assert_eq!(config.preset, Some(preset));
            let kind_ok = matches!(
                (preset, &config.kind),
                (
                    Preset::Github | Preset::Discord | Preset::Bitbucket | Preset::Facebook | Preset::X,
                    ProviderKind::OAuth2 { .. }
                ) | (Preset::Dev, ProviderKind::Dev { .. })
                    | (
                        Preset::Google
                            | Preset::Apple
                            | Preset::Microsoft
                            | Preset::Gitlab
                            | Preset::Linkedin
                            | Preset::Slack
                            | Preset::Okta
                            | Preset::Auth0
                            | Preset::Keycloak
                            | Preset::Twitch,
                        ProviderKind::Oidc { .. }
                    )
            );
            assert!(kind_ok, "{name}: {:?}", config.kind);
            assert_eq!(config.trust_email_verified, preset.trusts_email_verified(), "{name}");
        }
    }
}
