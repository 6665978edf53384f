//! Bitbucket Cloud: OAuth 2.0, the account from `/2.0/user`, the address from `/2.0/user/emails`.
//!
//! As with GitHub, the account's list of addresses can hold ones never confirmed: only the address
//! marked both `is_primary` and `is_confirmed` logs in, and an account without one is refused. The
//! identity is the account's `uuid` (`{...}`), which never changes; `nickname` is the username and
//! `display_name` the name. Scopes: `account email`.
//!
//! Register in a workspace's *Settings → OAuth consumers → Add consumer*, with the callback URL
//! that `loginwith check` prints and the permissions *Account: Read* and *Email*.

use super::generic::{get_user_and_emails, primary_verified_address};
use super::{Profile, UserinfoPointers};
use crate::config::{ProviderConfig, ProviderKind};
use crate::domain::secret::AccessToken;
use crate::domain::{clip, https_url, text_at, Email, ProviderName, Subject};
use crate::oauth::http::ProviderHttp;
use crate::oauth::ProviderError;
use serde_json::Value;
use url::Url;

/// Bitbucket's endpoints.
pub fn defaults(name: ProviderName) -> Option<ProviderConfig> {
    let kind = ProviderKind::OAuth2 {
        authorize_url: Url::parse("https://bitbucket.org/site/oauth2/authorize").ok()?,
        token_url: Url::parse("https://bitbucket.org/site/oauth2/access_token").ok()?,
        userinfo_url: Url::parse("https://api.bitbucket.org/2.0/user").ok()?,
        // Read by the quirk itself; set so that the table is complete as data.
        userinfo: UserinfoPointers {
            email: None,
            email_verified: None,
            subject: Some("/uuid".into()),
            name: Some("/display_name".into()),
            avatar: Some("/links/avatar/href".into()),
            username: Some("/nickname".into()),
        },
    };
    let mut config = ProviderConfig::new(name, Some(super::Preset::Bitbucket), "Bitbucket", kind);
    config.scopes = vec!["account".into(), "email".into()];
    Some(config)
}

/// Reads the account and its primary confirmed address (`/user/emails`, beside `/user`).
pub async fn fetch_profile(
    http: &ProviderHttp,
    user_url: &Url,
    token: &AccessToken,
) -> Result<Profile, ProviderError> {
    let (user, emails) = get_user_and_emails(http, user_url, token, &[], "Bitbucket").await?;
    profile_from(&user, &emails)
}

/// Combines `/user` and `/user/emails` (`{"values": [...]}`).
pub fn profile_from(user: &Value, emails: &Value) -> Result<Profile, ProviderError> {
    let subject = text_at(user, "/uuid")
        .ok_or_else(|| ProviderError::BadProfile("Bitbucket sent no account uuid".into()))?;
    let subject = Subject::parse(&subject).map_err(ProviderError::BadProfile)?;
    let email = primary_confirmed_email(emails).ok_or(ProviderError::NoVerifiedEmail)?;
    Ok(Profile {
        subject,
        email: Some(email),
        email_verified: true,
        name: text_at(user, "/display_name").or_else(|| text_at(user, "/nickname")).map(|n| clip(&n, 200)),
        avatar: text_at(user, "/links/avatar/href").and_then(|a| https_url(&a)),
        username: text_at(user, "/nickname").map(|n| clip(&n, 100)),
    })
}

/// The address marked both primary and confirmed; nothing else will do.
fn primary_confirmed_email(emails: &Value) -> Option<Email> {
    primary_verified_address(emails.get("values")?.as_array()?, "is_primary", "is_confirmed")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_the_primary_confirmed_address() {
        let emails = json!({"values": [
            {"email": "victim@example.com", "is_primary": false, "is_confirmed": false},
            {"email": "me@example.com", "is_primary": true, "is_confirmed": true},
        ]});
        assert_eq!(primary_confirmed_email(&emails).unwrap().as_str(), "me@example.com");
        let unconfirmed =
            json!({"values": [{"email": "victim@example.com", "is_primary": true, "is_confirmed": false}]});
        assert!(primary_confirmed_email(&unconfirmed).is_none());
        assert!(primary_confirmed_email(&json!([{"email": "a@b.c"}])).is_none(), "not Bitbucket's shape");
    }
}
