//! Okta: OpenID Connect, from the organisation's `domain` (`dev-123456.okta.com`).
//!
//! `domain` gives the org authorization server's issuer `https://{domain}`; a custom
//! authorization server (`https://{domain}/oauth2/default`) is configured with `issuer` instead.
//! Okta's administrators can create users with any address and mark it verified, so its
//! `email_verified` does not link accounts unless `trust_email_verified` says so — for an Okta
//! organisation you run, whose users' addresses are the company's own.
//!
//! Register in the Okta admin console: *Applications → Create App Integration → OIDC → Web
//! Application*, with the sign-in redirect URI that `loginwith check` prints.

use super::{oidc_defaults, Preset};
use crate::config::ProviderConfig;
use crate::domain::{Issuer, ProviderName};

/// Okta's defaults; the issuer is the table's (`domain` or `issuer`), a table with neither is
/// refused by the configuration, so this placeholder never reaches a login.
pub fn defaults(name: ProviderName) -> Option<ProviderConfig> {
    Some(oidc_defaults(name, Preset::Okta, "Okta", Issuer::parse(super::UNSET_ISSUER).ok()?, None))
}

/// The org authorization server of `domain`.
pub fn issuer(domain: &str) -> Result<Issuer, String> {
    Issuer::parse(&format!("https://{domain}")).map_err(|e| e.to_string())
}
