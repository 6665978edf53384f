//! Providers and discovery documents shared by the unit tests of [`super::discovery`] and
//! [`super::id_token`].

use super::{Oidc, OidcQuirk};
use crate::config::UserinfoPointers;
use crate::domain::Issuer;
use serde_json::{json, Value};

pub(super) fn oidc(issuer: &str, quirk: OidcQuirk) -> Oidc {
    Oidc::new(Issuer::parse(issuer).unwrap(), quirk, false, UserinfoPointers::default()).unwrap()
}

pub(super) fn generic(issuer: &str) -> Oidc {
    oidc(issuer, OidcQuirk::None)
}

pub(super) fn microsoft(tenant: &str) -> Oidc {
    oidc(
        &format!("https://login.microsoftonline.com/{tenant}/v2.0"),
        OidcQuirk::Microsoft { tenant: tenant.into(), authority: "https://login.microsoftonline.com".into() },
    )
}

pub(super) fn doc(issuer: &str) -> Value {
    json!({
        "issuer": issuer,
        "authorization_endpoint": "https://login.microsoftonline.com/common/oauth2/v2.0/authorize",
        "token_endpoint": "https://login.microsoftonline.com/common/oauth2/v2.0/token",
        "userinfo_endpoint": "https://graph.microsoft.com/oidc/userinfo",
        "jwks_uri": "https://login.microsoftonline.com/common/discovery/v2.0/keys",
        "id_token_signing_alg_values_supported": ["RS256"],
    })
}

/// A document for `issuer` whose endpoints all live at `endpoints_base`.
pub(super) fn doc_at(issuer: &str, endpoints_base: &str) -> Value {
    json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{endpoints_base}/authorize"),
        "token_endpoint": format!("{endpoints_base}/token"),
        "userinfo_endpoint": format!("{endpoints_base}/userinfo"),
        "jwks_uri": format!("{endpoints_base}/jwks"),
    })
}
