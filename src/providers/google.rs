//! Google: OpenID Connect from `https://accounts.google.com` (discovery does the rest); Google's
//! `email_verified` claim is honoured for linking.
//!
//! Register at <https://console.cloud.google.com/apis/credentials> ("Web application"), with the
//! redirect URI that `loginwith check` prints.

use super::{oidc_defaults, Preset};
use crate::config::ProviderConfig;
use crate::domain::ProviderName;

/// Google's issuer.
pub const ISSUER: &str = "https://accounts.google.com";

/// Google's defaults.
pub fn defaults(name: ProviderName) -> ProviderConfig {
    oidc_defaults(name, Preset::Google, "Google", Some(ISSUER))
}
