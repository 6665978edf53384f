//! Keycloak: OpenID Connect, from the server's `base_url` and the `realm`.
//!
//! The issuer is `{base_url}/realms/{realm}` (Keycloak 17 and later; older servers under
//! `/auth` give `base_url = "https://sso.example.com/auth"`), without a trailing slash. A realm's
//! administrators can mark any address verified, and a realm can be set to not verify at all, so
//! its `email_verified` does not link accounts unless `trust_email_verified` says so — for a realm
//! you run with "Verify email" on.
//!
//! Register in the realm: *Clients → Create client*, client authentication on, with the valid
//! redirect URI that `loginwith check` prints.

use super::{oidc_defaults, Preset};
use crate::config::ProviderConfig;
use crate::domain::{Issuer, ProviderName};
use url::Url;

/// Keycloak's defaults; the issuer is the table's (`base_url` and `realm`, or `issuer`), see
/// [`super::okta`].
pub fn defaults(name: ProviderName) -> Option<ProviderConfig> {
    Some(oidc_defaults(name, Preset::Keycloak, "Keycloak", Issuer::parse(super::UNSET_ISSUER).ok()?, None))
}

/// The realm's issuer. A realm name is one path segment, percent-encoded as Keycloak does.
pub fn issuer(base_url: &Url, realm: &str) -> Result<Issuer, String> {
    if realm.is_empty() || realm.len() > 255 {
        return Err("a realm name is 1 to 255 characters".into());
    }
    let mut url = base_url.clone();
    url.set_query(None);
    url.set_fragment(None);
    url.path_segments_mut()
        .map_err(|()| "base_url cannot have a path".to_owned())?
        .pop_if_empty()
        .push("realms")
        .push(realm);
    Issuer::parse(url.as_str()).map_err(|e| e.to_string())
}
