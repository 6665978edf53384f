//! GitLab: OpenID Connect, gitlab.com by default or any self-hosted instance via `issuer`.
//!
//! Register at GitLab → Preferences → Applications (or an instance-wide application), with the
//! scopes `openid`, `email`, `profile` and the redirect URI that `loginwith check` prints.

use super::{oidc_defaults, Preset};
use crate::config::ProviderConfig;
use crate::domain::{Issuer, ProviderName};
use url::Url;

/// gitlab.com's issuer.
pub const ISSUER: &str = "https://gitlab.com";

/// GitLab's defaults.
pub fn defaults(name: ProviderName) -> Option<ProviderConfig> {
    Some(oidc_defaults(name, Preset::Gitlab, "GitLab", Issuer::parse(ISSUER).ok()?, None))
}

/// True for gitlab.com's own issuer: its e-mail verification is GitLab's, whereas a self-hosted
/// instance's administrators decide what counts as verified there.
pub fn is_gitlab_com(issuer: &Issuer) -> bool {
    Url::parse(issuer.as_str())
        .is_ok_and(|u| u.scheme() == "https" && u.host_str() == Some("gitlab.com") && u.path() == "/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_gitlab_com_is_gitlab_com() {
        let is = |i: &str| is_gitlab_com(&Issuer::parse(i).unwrap());
        assert!(is("https://gitlab.com") && is("https://gitlab.com/"));
        assert!(!is("https://gitlab.corp.example") && !is("https://gitlab.com/group"));
    }
}
