//! Providers as data, with their quirks small and named.
//!
//! A [`Preset`] fills a [`ProviderConfig`] with a provider's endpoints, scopes and userinfo
//! pointers; the configuration can override any of it. At start each configured provider becomes
//! a [`Provider`], whose [`Quirk`] says whether reading the profile needs more than one userinfo
//! call. Quirks are a closed enum we own, not a trait: each is a small function with its own test.

pub mod dev;
pub mod generic;
pub mod github;
pub mod google;

use crate::config::{ProviderConfig, TokenAuth, UserinfoPointers};
use crate::domain::secret::{AccessToken, ClientSecret};
use crate::domain::{Email, ProviderName, Subject};
use crate::oauth::http::ProviderHttp;
use crate::oauth::{ClientCredentials, ProviderError};
use url::Url;

/// The providers we ship defaults for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    /// Google (OAuth 2.0 with its OpenID userinfo endpoint).
    Google,
    /// GitHub OAuth apps.
    Github,
    /// The built-in development provider.
    Dev,
}

impl Preset {
    /// Names accepted in `preset = "..."`.
    pub const NAMES: [&'static str; 3] = ["google", "github", "dev"];

    /// The preset called `name`, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "google" => Some(Preset::Google),
            "github" => Some(Preset::Github),
            "dev" => Some(Preset::Dev),
            _ => None,
        }
    }

    /// A provider configuration with this preset's defaults and no credentials.
    pub fn defaults(self, name: ProviderName) -> ProviderConfig {
        match self {
            Preset::Google => google::defaults(name),
            Preset::Github => github::defaults(name),
            Preset::Dev => dev::defaults(name),
        }
    }
}

/// How a provider's profile is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quirk {
    /// One userinfo call, read with JSON Pointers.
    None,
    /// GitHub: `/user` for the account, `/user/emails` for the primary verified address.
    GithubEmails,
}

/// What we learn about a person from a provider.
#[derive(Debug, Clone)]
pub struct Profile {
    /// The provider's stable id for the account.
    pub subject: Subject,
    /// The e-mail address the provider gave.
    pub email: Email,
    /// True only when the provider says it verified that address.
    pub email_verified: bool,
    /// A display name, if any.
    pub name: Option<String>,
    /// An avatar URL, if any (https only).
    pub avatar: Option<String>,
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
    /// Authorization endpoint.
    pub authorize_url: Url,
    /// Token endpoint.
    pub token_url: Url,
    /// Userinfo endpoint.
    pub userinfo_url: Url,
    /// Requested scopes.
    pub scopes: Vec<String>,
    /// Client authentication at the token endpoint.
    pub token_auth: TokenAuth,
    /// Where the profile's fields are.
    pub pointers: UserinfoPointers,
    /// How the profile is read.
    pub quirk: Quirk,
    /// Whether this is the built-in development provider.
    pub is_dev: bool,
}

impl Provider {
    /// Builds a provider from its validated configuration. `dev_base` is where the built-in
    /// development provider is served (the app's own address), used when the configuration left
    /// the endpoints to it.
    pub fn from_config(
        config: &ProviderConfig,
        dev_base: &Url,
        dev_secret: &ClientSecret,
    ) -> Option<Self> {
        let is_dev = config.preset == Some(Preset::Dev);
        let dev_endpoint = |path: &str| dev_base.join(path).ok();
        let (authorize_url, token_url, userinfo_url, client_secret) = if is_dev {
            (
                config
                    .authorize_url
                    .clone()
                    .or_else(|| dev_endpoint("dev-provider/authorize"))?,
                config
                    .token_url
                    .clone()
                    .or_else(|| dev_endpoint("dev-provider/token"))?,
                config
                    .userinfo_url
                    .clone()
                    .or_else(|| dev_endpoint("dev-provider/userinfo"))?,
                Some(
                    config
                        .client_secret
                        .clone()
                        .unwrap_or_else(|| dev_secret.clone()),
                ),
            )
        } else {
            (
                config.authorize_url.clone()?,
                config.token_url.clone()?,
                config.userinfo_url.clone()?,
                config.client_secret.clone(),
            )
        };
        Some(Provider {
            name: config.name.clone(),
            display_name: config.display_name.clone(),
            client_id: config.client_id.clone(),
            client_secret,
            authorize_url,
            token_url,
            userinfo_url,
            scopes: config.scopes.clone(),
            token_auth: config.token_auth,
            pointers: config.userinfo.clone(),
            quirk: if config.preset == Some(Preset::Github) {
                Quirk::GithubEmails
            } else {
                Quirk::None
            },
            is_dev,
        })
    }

    /// The client credentials for the token request.
    pub fn credentials(&self) -> ClientCredentials<'_> {
        ClientCredentials {
            client_id: &self.client_id,
            client_secret: self.client_secret.as_ref(),
            auth: self.token_auth,
        }
    }

    /// Reads the person's profile with the access token.
    pub async fn fetch_profile(
        &self,
        http: &ProviderHttp,
        token: &AccessToken,
    ) -> Result<Profile, ProviderError> {
        match self.quirk {
            Quirk::None => {
                generic::fetch_profile(http, &self.userinfo_url, &self.pointers, token).await
            }
            Quirk::GithubEmails => github::fetch_profile(http, &self.userinfo_url, token).await,
        }
    }
}
