//! GitHub: the account comes from `/user`, the address from `/user/emails`.
//!
//! The seed took `json[0]['email']` from `/user/emails`: that can be an address the person added
//! but never verified, i.e. anyone's address — an account-takeover hole once accounts are linked by
//! e-mail. We take the address marked both `primary` and `verified`, and refuse the login when
//! there is none. GitHub's ids are numbers and never change; logins can be renamed, so the login
//! is never the identity.
//!
//! Register at <https://github.com/settings/developers> ("New OAuth App"). GitHub Enterprise
//! Server: `base_url` ([`enterprise_endpoints`]), registered the same way on that server; its
//! administrators can switch e-mail verification off, so its addresses do not link accounts unless
//! `trust_email_verified` says so.

use super::generic::{get_user_and_emails, primary_verified_address};
use super::Profile;
use super::UserinfoPointers;
use crate::config::{ProviderConfig, ProviderKind};
use crate::domain::secret::AccessToken;
use crate::domain::{clip, https_url, text_at, Email, ProviderName, Subject};
use crate::oauth::http::ProviderHttp;
use crate::oauth::ProviderError;
use serde_json::Value;
use url::Url;

/// GitHub's endpoints.
pub fn defaults(name: ProviderName) -> Option<ProviderConfig> {
    let kind = ProviderKind::OAuth2 {
        authorize_url: Url::parse("https://github.com/login/oauth/authorize").ok()?,
        token_url: Url::parse("https://github.com/login/oauth/access_token").ok()?,
        userinfo_url: Url::parse("https://api.github.com/user").ok()?,
        // Read by the GitHub quirk itself; set so that the table is complete as data.
        userinfo: UserinfoPointers {
            email: Some("/email".into()),
            email_verified: None,
            subject: Some("/id".into()),
            name: Some("/name".into()),
            avatar: Some("/avatar_url".into()),
            username: Some("/login".into()),
        },
    };
    let mut config = ProviderConfig::new(name, Some(super::Preset::Github), "GitHub", kind);
    config.scopes = vec!["read:user".into(), "user:email".into()];
    Some(config)
}

/// A GitHub Enterprise Server's endpoints under its address (`base_url`): the same login paths as
/// github.com, the API under `/api/v3`. `None` for an address that cannot have paths.
pub fn enterprise_endpoints(base: &Url) -> Option<(Url, Url, Url)> {
    let at = |path: &str| -> Option<Url> {
        let mut url = base.clone();
        url.set_query(None);
        url.set_fragment(None);
        {
            let mut segments = url.path_segments_mut().ok()?;
            segments.pop_if_empty();
            segments.extend(path.split('/'));
        }
        Some(url)
    };
    Some((at("login/oauth/authorize")?, at("login/oauth/access_token")?, at("api/v3/user")?))
}

/// Addresses per page of `/user/emails`: GitHub's maximum. The default page holds 30, and an
/// account with more addresses would have its primary one on a later page, which we do not read.
const EMAILS_PER_PAGE: &str = "100";

/// Reads the account and its primary verified address (`/user/emails?per_page=100`, beside
/// `/user`, also on GitHub Enterprise's `/api/v3/user`).
pub async fn fetch_profile(
    http: &ProviderHttp,
    user_url: &Url,
    token: &AccessToken,
) -> Result<Profile, ProviderError> {
    let (user, emails) =
        get_user_and_emails(http, user_url, token, &[("per_page", EMAILS_PER_PAGE)], "GitHub").await?;
    profile_from(&user, &emails)
}

/// Combines `/user` and `/user/emails`.
pub fn profile_from(user: &Value, emails: &Value) -> Result<Profile, ProviderError> {
    let subject =
        text_at(user, "/id").ok_or_else(|| ProviderError::BadProfile("GitHub sent no account id".into()))?;
    let subject = Subject::parse(&subject).map_err(ProviderError::BadProfile)?;
    let email = primary_verified_email(emails).ok_or(ProviderError::NoVerifiedEmail)?;
    let name = text_at(user, "/name").or_else(|| text_at(user, "/login"));
    Ok(Profile {
        subject,
        email: Some(email),
        email_verified: true,
        name: name.map(|n| clip(&n, 200)),
        avatar: text_at(user, "/avatar_url").and_then(|a| https_url(&a)),
        username: text_at(user, "/login").map(|l| clip(&l, 100)),
    })
}

/// The address GitHub marks both primary and verified; nothing else will do.
pub fn primary_verified_email(emails: &Value) -> Option<Email> {
    primary_verified_address(emails.as_array()?, "primary", "verified")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn primary_verified_wins_over_first() {
        let emails = json!([
            {"email": "victim@example.com", "primary": false, "verified": false},
            {"email": "old@example.com", "primary": false, "verified": true},
            {"email": "me@example.com", "primary": true, "verified": true},
        ]);
        assert_eq!(primary_verified_email(&emails).unwrap().as_str(), "me@example.com");
    }

    #[test]
    fn unverified_primary_is_refused() {
        let emails = json!([{"email": "victim@example.com", "primary": true, "verified": false}]);
        assert!(primary_verified_email(&emails).is_none());
        let err = profile_from(&json!({"id": 1}), &emails).unwrap_err();
        assert!(matches!(err, ProviderError::NoVerifiedEmail));
    }

    #[test]
    fn enterprise_endpoints_sit_under_the_base_url() {
        for base in ["https://ghe.example.com", "https://ghe.example.com/", "https://example.com/github/"] {
            let (authorize, token, user) = enterprise_endpoints(&Url::parse(base).unwrap()).unwrap();
            let root = base.trim_end_matches('/');
            assert_eq!(authorize.as_str(), format!("{root}/login/oauth/authorize"));
            assert_eq!(token.as_str(), format!("{root}/login/oauth/access_token"));
            assert_eq!(user.as_str(), format!("{root}/api/v3/user"));
        }
    }

    #[test]
    fn emails_url_sits_beside_user() {
        let u = Url::parse("https://ghe.example/api/v3/user").unwrap();
        let query = [("per_page", EMAILS_PER_PAGE)];
        assert_eq!(
            super::super::generic::emails_url(&u, &query).unwrap().as_str(),
            "https://ghe.example/api/v3/user/emails?per_page=100"
        );
        let u = Url::parse("https://api.github.com/user").unwrap();
        assert_eq!(
            super::super::generic::emails_url(&u, &query).unwrap().as_str(),
            "https://api.github.com/user/emails?per_page=100"
        );
    }
}
