//! Microsoft Entra ID (work, school and personal Microsoft accounts), OpenID Connect v2.0.
//!
//! The `tenant` option picks who may log in: `common` (anyone), `organizations` (work and school),
//! `consumers` (personal accounts) or one tenant id. The multi-tenant endpoints publish the issuer
//! `https://login.microsoftonline.com/{tenantid}/v2.0`; each token's `iss` is checked against it
//! with the token's own `tid` filled in. The identity key is `tid:oid`, and an Entra e-mail counts
//! as verified only when the token carries `xms_edov` (see [`super::oidc::OidcQuirk::Microsoft`]).
//!
//! Register at Entra admin center → App registrations → New registration ("Web" platform) with the
//! redirect URI that `loginwith check` prints; create a client secret under "Certificates &
//! secrets". To let verified addresses link accounts, add the optional claims `email` and
//! `xms_edov` to the ID token (Token configuration).

use super::oidc::OidcQuirk;
use super::{oidc_defaults, Preset};
use crate::config::ProviderConfig;
use crate::domain::ProviderName;
use url::Url;

/// Microsoft's defaults; the issuer is derived from `tenant` during configuration.
pub fn defaults(name: ProviderName) -> ProviderConfig {
    let mut config = oidc_defaults(name, Preset::Microsoft, "Microsoft", None);
    config.tenant = Some("common".into());
    config
}

/// The Microsoft rules for an issuer `{authority}/{tenant}/v2.0`. The tenant comes from the
/// `tenant` option, else from the issuer's first path segment (an explicit `issuer` serves national
/// clouds such as `https://login.microsoftonline.us/{tenant}/v2.0`).
pub fn quirk(issuer: &Url, tenant: Option<&str>) -> OidcQuirk {
    let authority = issuer.origin().ascii_serialization();
    let from_path = issuer.path_segments().and_then(|mut s| s.next()).unwrap_or("common");
    OidcQuirk::Microsoft { tenant: tenant.unwrap_or(from_path).to_owned(), authority }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_and_authority_come_from_the_issuer() {
        let url = Url::parse("https://login.microsoftonline.us/organizations/v2.0").unwrap();
        assert_eq!(
            quirk(&url, None),
            OidcQuirk::Microsoft {
                tenant: "organizations".into(),
                authority: "https://login.microsoftonline.us".into()
            }
        );
    }
}
