//! GitLab: OpenID Connect, gitlab.com by default or any self-hosted instance via `issuer`.
//!
//! Register at GitLab → Preferences → Applications (or an instance-wide application), with the
//! scopes `openid`, `email`, `profile` and the redirect URI that `loginwith check` prints.

use super::{oidc_defaults, Preset};
use crate::config::ProviderConfig;
use crate::domain::ProviderName;

/// gitlab.com's issuer.
pub const ISSUER: &str = "https://gitlab.com";

/// GitLab's defaults.
pub fn defaults(name: ProviderName) -> ProviderConfig {
    oidc_defaults(name, Preset::Gitlab, "GitLab", Some(ISSUER))
}
