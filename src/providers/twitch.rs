//! Twitch: OpenID Connect, issuer `https://id.twitch.tv/oauth2`.
//!
//! Twitch puts `email` and `email_verified` (and `picture`, `preferred_username`) in the ID token
//! and the userinfo document only when they are asked for by name, through the `claims` request
//! parameter (OpenID Connect Core §5.5); the `user:read:email` scope alone is not enough. The preset
//! sends [`CLAIMS`] with every authorization request ([`super::AuthorizeParams`]). Twitch's token
//! endpoint takes the client secret only in the form body (`client_secret_post`). Its
//! `email_verified` is set once the user followed the link Twitch mailed, so it is believed.
//!
//! Register at <https://dev.twitch.tv/console/apps>: *Register Your Application*, category
//! "Website Integration", with the redirect URI that `loginwith check` prints under *OAuth Redirect
//! URLs*; then *New Secret* for the client secret.

use super::{oidc_defaults, Preset, TokenAuth};
use crate::config::ProviderConfig;
use crate::domain::{Issuer, ProviderName};

/// Twitch's issuer.
pub const ISSUER: &str = "https://id.twitch.tv/oauth2";

/// What Twitch is asked for: `openid`, and `user:read:email` (without it Twitch shares no address
/// however the claims are requested).
pub const SCOPES: [&str; 2] = ["openid", "user:read:email"];

/// The `claims` request parameter: the address, whether it is verified, the avatar and the login
/// name, in the ID token and in userinfo (`null`: requested, not essential).
pub const CLAIMS: &str = r#"{"id_token":{"email":null,"email_verified":null,"picture":null,"preferred_username":null},"userinfo":{"email":null,"email_verified":null,"picture":null,"preferred_username":null}}"#;

/// Twitch's defaults. `None` only if the constants above stopped parsing.
pub fn defaults(name: ProviderName) -> Option<ProviderConfig> {
    let mut config = oidc_defaults(name, Preset::Twitch, "Twitch", Issuer::parse(ISSUER).ok()?, None);
    config.scopes = SCOPES.map(String::from).to_vec();
    config.token_auth = Some(TokenAuth::ClientSecretPost);
    config.authorize_params.set("claims", CLAIMS).ok()?;
    Some(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_claims_parameter_asks_for_the_address_in_both_places() {
        let claims: serde_json::Value = serde_json::from_str(CLAIMS).unwrap();
        for place in ["id_token", "userinfo"] {
            for claim in ["email", "email_verified", "picture", "preferred_username"] {
                assert_eq!(claims[place].get(claim), Some(&serde_json::Value::Null), "{place}.{claim}");
            }
        }
        let config = defaults(ProviderName::parse("twitch").unwrap()).unwrap();
        assert_eq!(config.authorize_params.get("claims"), Some(CLAIMS));
        assert_eq!(config.scopes, SCOPES);
    }
}
