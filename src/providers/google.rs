//! Google: OpenID Connect from `https://accounts.google.com` (discovery does the rest), with two
//! rules of Google's own, both in [`super::oidc::OidcQuirk::Google`]:
//!
//! - ID tokens may carry `iss` as `accounts.google.com`, without the scheme; Google documents both
//!   forms, so both are accepted — for this preset only.
//! - `email_verified` only proves the address was verified *once*; Google calls it authoritative
//!   only for `@gmail.com` addresses and for Google Workspace accounts (`hd` claim present). Any
//!   other address (a consumer account on an outside domain) may have changed hands since, so
//!   [`email_is_verified`] says no and such an address never links accounts.
//!
//! Register at <https://console.cloud.google.com/apis/credentials> ("Web application"), with the
//! redirect URI that `loginwith check` prints.

use super::{oidc_defaults, Preset};
use crate::config::ProviderConfig;
use crate::domain::{Issuer, ProviderName};

/// Google's issuer.
pub const ISSUER: &str = "https://accounts.google.com";

/// Google's defaults.
pub fn defaults(name: ProviderName) -> Option<ProviderConfig> {
    Some(oidc_defaults(name, Preset::Google, "Google", Issuer::parse(ISSUER).ok()?, None))
}

/// Whether Google vouches for `email` now: `email_verified` is true and the address is a Gmail
/// address or belongs to a Google Workspace domain (`hd`, the hosted domain, is non-empty).
pub fn email_is_verified(email: &str, email_verified: Option<bool>, hd: Option<&str>) -> bool {
    let gmail = email.len() > "@gmail.com".len()
        && email
            .get(email.len() - "@gmail.com".len()..)
            .is_some_and(|end| end.eq_ignore_ascii_case("@gmail.com"));
    let workspace = hd.is_some_and(|hd| !hd.trim().is_empty());
    email_verified == Some(true) && (gmail || workspace)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gmail_addresses_are_verified_when_google_says_so() {
        assert!(email_is_verified("someone@gmail.com", Some(true), None));
        assert!(email_is_verified("Someone@GMail.COM", Some(true), None));
    }

    #[test]
    fn workspace_addresses_are_verified_when_google_says_so() {
        assert!(email_is_verified("someone@corp.example", Some(true), Some("corp.example")));
    }

    #[test]
    fn other_addresses_are_not_verified_even_when_google_says_so() {
        // A consumer Google account on an outside address: the address may have a new owner now.
        assert!(!email_is_verified("someone@example.com", Some(true), None));
        assert!(!email_is_verified("someone@example.com", Some(true), Some("")));
        assert!(!email_is_verified("someone@gmail.com.evil.example", Some(true), None));
        assert!(!email_is_verified("someone@notgmail.com", Some(true), None));
        assert!(!email_is_verified("@gmail.com", Some(true), None));
    }

    #[test]
    fn nothing_is_verified_when_google_says_it_is_not() {
        assert!(!email_is_verified("someone@gmail.com", Some(false), None));
        assert!(!email_is_verified("someone@corp.example", Some(false), Some("corp.example")));
        assert!(!email_is_verified("someone@gmail.com", None, Some("corp.example")));
    }
}
