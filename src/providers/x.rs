//! X (formerly Twitter): OAuth 2.0 with PKCE, the account from `GET /2/users/me`.
//!
//! X's confidential clients authenticate at the token endpoint with HTTP Basic (its
//! documentation's "Authorization: Basic" for confidential clients), so the preset sets
//! `client_secret_basic`; PKCE (S256) is sent on every login anyway. X gives no e-mail address at
//! all: the login goes on without one, can never link to another account by address, and is
//! found again by its numeric `id` alone. The username comes from `username` (the handle, which
//! people can change: it names a new account once, it never identifies one), the display name from
//! `name`, the avatar from `profile_image_url` (asked for with `user.fields`).
//!
//! The answer is `{"data": {...}}`; an answer with `errors` and no `data` (a suspended account,
//! a revoked token) is a bad profile, shown as the provider's failure.
//!
//! Register at <https://developer.x.com/en/portal/dashboard>: a project and app, "User
//! authentication settings" → OAuth 2.0, type "Web App" (a confidential client), the callback URI
//! that `loginwith check` prints; the OAuth 2.0 Client ID and Client Secret are the credentials
//! (not the API key and secret of OAuth 1.0a).

use super::generic::get_json_asking;
use super::{Preset, Profile, TokenAuth, UserinfoPointers};
use crate::config::{ProviderConfig, ProviderKind};
use crate::domain::secret::AccessToken;
use crate::domain::{clip, https_url, text_at, ProviderName, Subject};
use crate::oauth::http::ProviderHttp;
use crate::oauth::ProviderError;
use serde_json::Value;
use url::Url;

/// The fields asked of `/2/users/me` beyond the default `id`, `name` and `username`.
pub const USER_FIELDS: &str = "profile_image_url";

/// X's endpoints, scopes and client authentication.
pub fn defaults(name: ProviderName) -> Option<ProviderConfig> {
    let kind = ProviderKind::OAuth2 {
        authorize_url: Url::parse("https://x.com/i/oauth2/authorize").ok()?,
        token_url: Url::parse("https://api.x.com/2/oauth2/token").ok()?,
        userinfo_url: Url::parse("https://api.x.com/2/users/me").ok()?,
        userinfo: UserinfoPointers::default(),
    };
    let mut config = ProviderConfig::new(name, Some(Preset::X), "X", kind);
    // `users.read` alone is refused: X requires `tweet.read` beside it to read a user.
    config.scopes = vec!["users.read".into(), "tweet.read".into()];
    config.token_auth = Some(TokenAuth::ClientSecretBasic);
    Some(config)
}

/// Reads `/2/users/me?user.fields=profile_image_url`.
pub async fn fetch_profile(
    http: &ProviderHttp,
    user_url: &Url,
    token: &AccessToken,
) -> Result<Profile, ProviderError> {
    profile_from(&get_json_asking(http, user_url, &[("user.fields", USER_FIELDS)], token).await?)
}

/// The profile in a `/2/users/me` answer: never an address (X has none to give).
pub fn profile_from(json: &Value) -> Result<Profile, ProviderError> {
    let user = json.get("data").filter(|d| d.is_object()).ok_or_else(|| {
        let why = text_at(json, "/errors/0/detail").or_else(|| text_at(json, "/errors/0/title"));
        ProviderError::BadProfile(match why {
            Some(why) => format!("X sent no account: {}", clip(&why, 200)),
            None => "X sent no account".into(),
        })
    })?;
    let id = text_at(user, "/id").ok_or_else(|| ProviderError::BadProfile("X sent no account id".into()))?;
    let subject = Subject::parse(&id).map_err(ProviderError::BadProfile)?;
    let username = text_at(user, "/username").map(|u| clip(&u, 100));
    Ok(Profile {
        subject,
        email: None,
        email_verified: false,
        name: text_at(user, "/name").or_else(|| username.clone()).map(|n| clip(&n, 200)),
        avatar: text_at(user, "/profile_image_url").and_then(|a| https_url(&a)),
        username,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_the_account_and_never_an_address() {
        let answer = json!({"data": {"id": "2244994945", "name": "X Dev", "username": "XDevelopers",
            "profile_image_url": "https://pbs.twimg.com/profile_images/1/a_normal.jpg",
            "email": "planted@example.com"}});
        let p = profile_from(&answer).unwrap();
        assert_eq!(p.subject.as_str(), "2244994945");
        assert_eq!(p.username.as_deref(), Some("XDevelopers"));
        assert_eq!(p.name.as_deref(), Some("X Dev"));
        assert_eq!(p.avatar.as_deref(), Some("https://pbs.twimg.com/profile_images/1/a_normal.jpg"));
        assert!(p.email.is_none() && !p.email_verified, "X gives no address: one in the answer is not X's");
    }

    #[test]
    fn an_error_answer_is_a_bad_profile() {
        let answer = json!({"errors": [{"title": "Forbidden", "detail": "User has been suspended: [1]."}]});
        let err = profile_from(&answer).unwrap_err();
        assert!(err.to_string().contains("User has been suspended"), "{err}");
        assert!(profile_from(&json!({"data": {"name": "no id"}})).is_err());
        assert!(profile_from(&json!([1])).is_err());
    }
}
