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

/// The tenant when none is configured: any Microsoft account.
pub const DEFAULT_TENANT: &str = "common";

/// Entra ID's public cloud. National clouds are configured with an explicit `issuer`.
const PUBLIC_CLOUD: &str = "https://login.microsoftonline.com";

/// Microsoft's defaults: the public cloud's issuer for [`DEFAULT_TENANT`], and the scopes every
/// Entra login needs. `None` only if those constants stopped making an issuer.
pub fn defaults(name: ProviderName) -> Option<ProviderConfig> {
    let (issuer, tenant) = issuer_and_tenant(None, None)?;
    let mut config = oidc_defaults(name, Preset::Microsoft, "Microsoft", issuer, tenant);
    require_scopes(&mut config.scopes);
    Some(config)
}

/// The issuer and tenant a Microsoft provider uses, from its `issuer` and `tenant` keys. An
/// explicit issuer (national clouds, tests) names its tenant in its path, which [`quirk`] reads
/// when no `tenant` is given; without one, the issuer is the public cloud's for the tenant
/// (default [`DEFAULT_TENANT`]). `None` when the tenant makes no issuer (see [`is_tenant`]).
pub fn issuer_and_tenant(issuer: Option<Issuer>, tenant: Option<String>) -> Option<(Issuer, Option<String>)> {
    match issuer {
        Some(issuer) => Some((issuer, tenant)),
        None => {
            let tenant = tenant.unwrap_or_else(|| DEFAULT_TENANT.to_owned());
            let issuer = Issuer::parse(&format!("{PUBLIC_CLOUD}/{tenant}/v2.0")).ok()?;
            Some((issuer, Some(tenant)))
        }
    }
}

/// Adds what Entra needs to the requested scopes: it puts `oid` (half of the identity key, see
/// the module documentation) in the ID token only with the `profile` scope, so without it every
/// login would fail.
pub fn require_scopes(scopes: &mut Vec<String>) {
    if !scopes.iter().any(|s| s == "profile") {
        scopes.push("profile".into());
    }
}

/// A configured tenant: a well-known alias, a GUID or a verified domain name. Only letters,
/// digits, `-` and `.`, so that it makes a path segment of an issuer as it is.
pub fn is_tenant(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
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
    fn the_issuer_follows_the_tenant_unless_it_is_explicit() {
        let (issuer, tenant) = issuer_and_tenant(None, None).unwrap();
        assert_eq!(issuer.as_str(), "https://login.microsoftonline.com/common/v2.0");
        assert_eq!(tenant.as_deref(), Some("common"));
        let (issuer, tenant) = issuer_and_tenant(None, Some("contoso.com".into())).unwrap();
        assert_eq!(issuer.as_str(), "https://login.microsoftonline.com/contoso.com/v2.0");
        assert_eq!(tenant.as_deref(), Some("contoso.com"));
        let national = Issuer::parse("https://login.microsoftonline.us/organizations/v2.0").unwrap();
        let (issuer, tenant) = issuer_and_tenant(Some(national.clone()), None).unwrap();
        assert_eq!((issuer, tenant), (national.clone(), None));
        let (_, tenant) = issuer_and_tenant(Some(national), Some("consumers".into())).unwrap();
        assert_eq!(tenant.as_deref(), Some("consumers"));
    }

    #[test]
    fn profile_is_always_requested() {
        let mut scopes = vec!["openid".to_owned(), "email".to_owned()];
        require_scopes(&mut scopes);
        assert_eq!(scopes, ["openid", "email", "profile"]);
        require_scopes(&mut scopes);
        assert_eq!(scopes, ["openid", "email", "profile"]);
    }

    #[test]
    fn tenants_make_a_path_segment() {
        for good in ["common", "contoso.com", "72f988bf-86f1-41af-91ab-2d7cd011db47"] {
            assert!(is_tenant(good), "{good}");
        }
        for bad in ["", "a/b", "x y", "é", &"a".repeat(65)] {
            assert!(!is_tenant(bad), "{bad:?}");
        }
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
