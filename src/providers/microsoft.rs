//! Microsoft Entra ID (work, school and personal Microsoft accounts), OpenID Connect v2.0.
//!
//! The `tenant` option picks who may log in: `common` (anyone), `organizations` (work and school),
//! `consumers` (personal accounts), one tenant id, or one tenant's verified domain name
//! (`contoso.com`). The multi-tenant endpoints publish the issuer
//! `https://login.microsoftonline.com/{tenantid}/v2.0`; each token's `iss` is checked against it
//! with the token's own `tid` filled in. For a domain name, Entra's discovery publishes that
//! tenant's id issuer `{authority}/{guid}/v2.0`: that GUID then becomes the only accepted `tid`, and
//! that issuer the only accepted `iss`. The identity key is `tid:oid`, and an Entra e-mail counts
//! as verified only when the token carries `xms_edov` (see [`super::oidc::OidcQuirk::Microsoft`]).
//! `oid` is only in ID tokens requested with the `profile` scope, so configuration always adds it.
//!
//! Register at Entra admin center → App registrations → New registration ("Web" platform) with the
//! redirect URI that `loginwith check` prints; create a client secret under "Certificates &
//! secrets". To let verified addresses link accounts, the ID token must carry the optional claims
//! `email` and `xms_edov`. `xms_edov` is not offered under "Token configuration": add both in the
//! app registration's Manifest, under `optionalClaims`, as
//! `"idToken": [{"name": "email", "essential": false}, {"name": "xms_edov", "essential": false}]`.

use super::oidc::OidcQuirk;
use super::{oidc_defaults, Preset};
use crate::config::ProviderConfig;
use crate::domain::{Issuer, ProviderName};

/// Microsoft's defaults; the issuer is derived from `tenant` during configuration.
pub fn defaults(name: ProviderName) -> ProviderConfig {
    let mut config = oidc_defaults(name, Preset::Microsoft, "Microsoft", None);
    config.tenant = Some("common".into());
    config
}

/// The Microsoft rules for an issuer `{authority}/{tenant}/v2.0`. The tenant comes from the
/// `tenant` option, else from the issuer's first path segment (an explicit `issuer` serves national
/// clouds such as `https://login.microsoftonline.us/{tenant}/v2.0`).
pub fn quirk(issuer: &Issuer, tenant: Option<&str>) -> OidcQuirk {
    let url = issuer.url();
    let authority = url.origin().ascii_serialization();
    let from_path = url.path_segments().and_then(|mut s| s.next()).unwrap_or("common");
    OidcQuirk::Microsoft { tenant: tenant.unwrap_or(from_path).to_owned(), authority }
}

/// The tenant aliases Entra accepts in place of a tenant id.
pub const ALIASES: [&str; 3] = ["common", "organizations", "consumers"];

/// `8-4-4-4-12` hexadecimal digits: the shape of an Entra tenant id.
pub fn is_guid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, len)| g.len() == len && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A configured tenant that is neither an alias nor a tenant id: one tenant's domain name.
pub fn is_domain_tenant(tenant: &str) -> bool {
    !ALIASES.contains(&tenant) && !is_guid(tenant)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_and_authority_come_from_the_issuer() {
        let issuer = Issuer::parse("https://login.microsoftonline.us/organizations/v2.0").unwrap();
        assert_eq!(
            quirk(&issuer, None),
            OidcQuirk::Microsoft {
                tenant: "organizations".into(),
                authority: "https://login.microsoftonline.us".into()
            }
        );
    }

    #[test]
    fn tenant_kinds() {
        assert!(is_guid("72f988bf-86f1-41af-91ab-2d7cd011db47"));
        assert!(!is_guid("72f988bf-86f1-41af-91ab-2d7cd011db4"));
        assert!(!is_guid("72f988bf-86f1-41af-91ab-2d7cd011db4g"));
        assert!(!is_guid("72f988bf86f141af91ab2d7cd011db47"));
        assert!(is_domain_tenant("contoso.com"));
        assert!(!is_domain_tenant("common"));
        assert!(!is_domain_tenant("72f988bf-86f1-41af-91ab-2d7cd011db47"));
    }
}
