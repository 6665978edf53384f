//! Auth0: OpenID Connect, from the tenant's `domain` (`example.eu.auth0.com`, or a custom domain).
//!
//! Auth0 publishes its issuer **with** a trailing slash (`https://{domain}/`), and issuers are
//! compared as exact strings, so `domain` gives exactly that. Auth0's `email_verified` is whatever
//! the connection says: a database connection verifies by mail, but a social or enterprise
//! connection passes on the upstream provider's claim and an administrator can set it, so it does
//! not link accounts unless `trust_email_verified` says so.
//!
//! Register in the Auth0 dashboard: *Applications → Create Application → Regular Web
//! Application*, with the callback URL that `loginwith check` prints.

use super::{oidc_defaults, Preset};
use crate::config::ProviderConfig;
use crate::domain::{Issuer, ProviderName};

/// Auth0's defaults; the issuer is the table's (`domain` or `issuer`), see [`super::okta`].
pub fn defaults(name: ProviderName) -> Option<ProviderConfig> {
    Some(oidc_defaults(name, Preset::Auth0, "Auth0", Issuer::parse(super::UNSET_ISSUER).ok()?, None))
}

/// The tenant's issuer, trailing slash included.
pub fn issuer(domain: &str) -> Result<Issuer, String> {
    Issuer::parse(&format!("https://{domain}/")).map_err(|e| e.to_string())
}
