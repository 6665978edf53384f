//! Slack: "Sign in with Slack", OpenID Connect, issuer `https://slack.com`.
//!
//! A Slack user id (`sub`, `U…`) is unique only within its workspace, so the identity key is the
//! workspace id from the `https://slack.com/team_id` claim and the user id, `T…:U…` (as
//! Microsoft's is `tid:oid`): the same user id in two workspaces is two identities, and a token
//! without a workspace id is refused (see [`super::oidc::OidcQuirk::Slack`]).
//!
//! The optional `team = "T0123ABC"` key does two things with one value: it is sent as the `team`
//! authorization parameter, which makes Slack pre-select that workspace, and a token from any
//! other workspace is refused. It is kept only as that parameter (see [`quirk`]), so what Slack is
//! asked for and what is enforced cannot differ; a `team` in `authorize_params` is refused for this
//! preset, since alone it would pre-select without enforcing.
//!
//! Its `email_verified` is not believed by default: a workspace's admins set their members'
//! addresses (SCIM provisioning on paid plans, or an admin's edit), so it says little about who owns
//! the address. `trust_email_verified = true` believes it, for workspaces you run.
//!
//! Register at <https://api.slack.com/apps>: *Create New App*, then under *OAuth & Permissions* add
//! the redirect URL that `loginwith check` prints to *Redirect URLs*, and the user token scopes
//! `openid`, `email` and `profile` (Sign in with Slack); the client id and secret are under *Basic
//! Information → App Credentials*. Slack's token endpoint takes the secret by Basic or in the form,
//! as its discovery document says.

use super::oidc::OidcQuirk;
use super::{oidc_defaults, AuthorizeParams, Preset};
use crate::config::ProviderConfig;
use crate::domain::{Issuer, ProviderName};

/// Slack's issuer.
pub const ISSUER: &str = "https://slack.com";

/// The authorization parameter that pre-selects a workspace, and the configuration key that sets
/// it.
pub const TEAM_PARAM: &str = "team";

/// The ID token claim naming the user's workspace.
pub const TEAM_CLAIM: &str = "https://slack.com/team_id";

/// Slack's defaults: the standard scopes.
pub fn defaults(name: ProviderName) -> Option<ProviderConfig> {
    Some(oidc_defaults(name, Preset::Slack, "Slack", Issuer::parse(ISSUER).ok()?, None))
}

/// A workspace id as Slack writes them (`T0123ABC`): capital letters and digits. Anything else in
/// the configuration would never match a token's, and refuse every login.
pub fn is_team_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 32 && s.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// The Slack rules for a provider whose authorization requests carry `params`: the workspace they
/// pre-select, if any, is the only one accepted.
pub fn quirk(params: &AuthorizeParams) -> OidcQuirk {
    OidcQuirk::Slack { team: params.get(TEAM_PARAM).map(str::to_owned) }
}

/// The token's workspace, when it has one and it is the configured one (any, without `team`).
pub fn accepted_team<'t>(configured: Option<&str>, claimed: Option<&'t str>) -> Result<&'t str, String> {
    match (configured, claimed.filter(|t| !t.is_empty())) {
        (_, None) => Err(format!("the token names no Slack workspace ({TEAM_CLAIM})")),
        (Some(configured), Some(claimed)) if configured != claimed => {
            Err("the account belongs to another Slack workspace".into())
        }
        (_, Some(claimed)) => Ok(claimed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_needs_a_workspace_and_the_configured_one() {
        assert_eq!(accepted_team(None, Some("T1")), Ok("T1"));
        assert_eq!(accepted_team(Some("T1"), Some("T1")), Ok("T1"));
        assert!(accepted_team(Some("T1"), Some("T2")).unwrap_err().contains("another Slack workspace"));
        assert!(accepted_team(Some("T1"), Some("t1")).is_err(), "ids are compared exactly");
        for claimed in [None, Some("")] {
            assert!(accepted_team(None, claimed).unwrap_err().contains(TEAM_CLAIM));
        }
    }

    #[test]
    fn team_ids_are_capitals_and_digits() {
        assert!(is_team_id("T0123ABC") && is_team_id("E012AB3CD"));
        for bad in ["", "t0123abc", "T0123 ABC", "T0123/../x", &"T".repeat(33)] {
            assert!(!is_team_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn the_team_sent_is_the_team_enforced() {
        let mut params = AuthorizeParams::default();
        assert_eq!(quirk(&params), OidcQuirk::Slack { team: None });
        params.set(TEAM_PARAM, "T0123ABC").unwrap();
        assert_eq!(quirk(&params), OidcQuirk::Slack { team: Some("T0123ABC".into()) });
    }
}
