//! LinkedIn: OpenID Connect ("Sign In with LinkedIn using OpenID Connect"), issuer
//! `https://www.linkedin.com/oauth`.
//!
//! LinkedIn's token endpoint takes the client secret only in the form body
//! (`client_secret_post`; its discovery document lists no other method), so the preset sets it.
//! Its `email_verified` is set once the member confirmed the address by mail, so it is believed,
//! like GitHub's verified addresses.
//!
//! Register at <https://www.linkedin.com/developers/apps>: create an app, add the product "Sign In
//! with LinkedIn using OpenID Connect", and under *Auth* the redirect URL that `loginwith check`
//! prints.

use super::{oidc_defaults, Preset, TokenAuth};
use crate::config::ProviderConfig;
use crate::domain::{Issuer, ProviderName};

/// LinkedIn's issuer.
pub const ISSUER: &str = "https://www.linkedin.com/oauth";

/// LinkedIn's defaults.
pub fn defaults(name: ProviderName) -> Option<ProviderConfig> {
    let mut config = oidc_defaults(name, Preset::Linkedin, "LinkedIn", Issuer::parse(ISSUER).ok()?, None);
    config.token_auth = Some(TokenAuth::ClientSecretPost);
    Some(config)
}
