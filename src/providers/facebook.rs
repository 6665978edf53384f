//! Facebook Login: OAuth 2.0, the account from the Graph API's `/me` with
//! `fields=id,name,email,picture`.
//!
//! The Graph API says nothing about whether an address was verified, so a Facebook address is
//! never counted as verified: it names no username, never links to another account, and is not
//! admitted by an `[access]` rule on addresses. `trust_email_verified = true` is refused for this
//! preset, since there is nothing to trust. An account made with a phone number, or a person who
//! declined the `email` permission, has no `email`: the login goes on without an address. The
//! identity is the app-scoped `id`. The avatar is `picture.data.url`, unless Facebook marks it a
//! silhouette (no picture).
//!
//! The endpoints are Facebook's unversioned ones, which serve the app's default Graph API version
//! (set in the app dashboard) and so never expire; pin a version by setting `authorize_url`,
//! `token_url` and `userinfo_url` (e.g. `https://graph.facebook.com/v24.0/me`).
//!
//! Register at <https://developers.facebook.com/apps>: create an app with the "Authenticate and
//! request data from users with Facebook Login" use case, add the `email` permission, and under
//! Facebook Login → Settings the "Valid OAuth Redirect URI" that `loginwith check` prints. The App
//! ID and App Secret are the credentials.

use super::generic::{get_json_asking, profile_maybe_without_email};
use super::{Preset, Profile, UserinfoPointers};
use crate::config::{ProviderConfig, ProviderKind};
use crate::domain::secret::AccessToken;
use crate::domain::ProviderName;
use crate::oauth::http::ProviderHttp;
use crate::oauth::ProviderError;
use serde_json::Value;
use url::Url;

/// The Graph API fields read from `/me`.
pub const FIELDS: &str = "id,name,email,picture";

/// Facebook's endpoints and scopes.
pub fn defaults(name: ProviderName) -> Option<ProviderConfig> {
    let kind = ProviderKind::OAuth2 {
        authorize_url: Url::parse("https://www.facebook.com/dialog/oauth").ok()?,
        token_url: Url::parse("https://graph.facebook.com/oauth/access_token").ok()?,
        userinfo_url: Url::parse("https://graph.facebook.com/me").ok()?,
        userinfo: pointers(),
    };
    let mut config = ProviderConfig::new(name, Some(Preset::Facebook), "Facebook", kind);
    config.scopes = vec!["email".into(), "public_profile".into()];
    Some(config)
}

/// Where `/me` keeps each field. No `email_verified`: Facebook has no such flag.
fn pointers() -> UserinfoPointers {
    UserinfoPointers {
        email: Some("/email".into()),
        email_verified: None,
        subject: Some("/id".into()),
        name: Some("/name".into()),
        avatar: Some("/picture/data/url".into()),
        username: None,
    }
}

/// Reads `/me?fields=id,name,email,picture`.
pub async fn fetch_profile(
    http: &ProviderHttp,
    me_url: &Url,
    token: &AccessToken,
) -> Result<Profile, ProviderError> {
    profile_from(&get_json_asking(http, me_url, &[("fields", FIELDS)], token).await?)
}

/// The profile in a `/me` answer: its address, if any, never verified.
pub fn profile_from(json: &Value) -> Result<Profile, ProviderError> {
    let mut profile = profile_maybe_without_email(json, &pointers())?;
    profile.email_verified = false;
    if json.pointer("/picture/data/is_silhouette").and_then(Value::as_bool) == Some(true) {
        profile.avatar = None;
    }
    Ok(profile)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn zuck(email: Option<&str>) -> Value {
        let mut me = json!({"id": "10157000000000001", "name": "Mark Example",
            "picture": {"data": {"height": 50, "width": 50, "is_silhouette": false,
                                 "url": "https://platform-lookaside.fbsbx.com/platform/profilepic/?asid=1"}}});
        if let Some(email) = email {
            me["email"] = json!(email);
        }
        me
    }

    #[test]
    fn reads_the_account_and_never_a_verified_address() {
        let mut me = zuck(Some("mark@example.com"));
        me["email_verified"] = json!(true);
        me["verified"] = json!(true);
        let p = profile_from(&me).unwrap();
        assert_eq!(p.subject.as_str(), "10157000000000001");
        assert_eq!(p.address(), "mark@example.com");
        assert!(!p.email_verified, "Facebook has no verification flag; planted ones are ignored");
        assert_eq!(p.name.as_deref(), Some("Mark Example"));
        assert_eq!(
            p.avatar.as_deref(),
            Some("https://platform-lookaside.fbsbx.com/platform/profilepic/?asid=1")
        );
    }

    #[test]
    fn no_address_is_a_login_without_one_and_a_silhouette_no_avatar() {
        let mut me = zuck(None);
        me["picture"]["data"]["is_silhouette"] = json!(true);
        let p = profile_from(&me).unwrap();
        assert!(p.email.is_none());
        assert_eq!(p.avatar, None);
    }

    #[test]
    fn no_id_or_a_malformed_address_is_an_error() {
        assert!(profile_from(&json!({"name": "x", "email": "a@b.c"})).is_err());
        assert!(profile_from(&zuck(Some("not an address"))).is_err());
    }
}
