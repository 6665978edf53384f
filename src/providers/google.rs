//! Google: OAuth 2.0 with Google's OpenID Connect userinfo endpoint, whose `email_verified` we honour.
//!
//! Register at <https://console.cloud.google.com/apis/credentials> ("Web application"), with the
//! redirect URI that `loginwith check` prints.

use crate::config::{ProviderConfig, TokenAuth, UserinfoPointers};
use crate::domain::ProviderName;
use url::Url;

/// Google's endpoints and claims.
pub fn defaults(name: ProviderName) -> ProviderConfig {
    ProviderConfig {
        name,
        preset: Some(super::Preset::Google),
        display_name: "Google".into(),
        client_id: String::new(),
        client_secret: None,
        authorize_url: Url::parse("https://accounts.google.com/o/oauth2/v2/auth").ok(),
        token_url: Url::parse("https://oauth2.googleapis.com/token").ok(),
        userinfo_url: Url::parse("https://openidconnect.googleapis.com/v1/userinfo").ok(),
        scopes: vec!["openid".into(), "email".into(), "profile".into()],
        token_auth: TokenAuth::ClientSecretPost,
        userinfo: UserinfoPointers {
            email: Some("/email".into()),
            email_verified: Some("/email_verified".into()),
            subject: Some("/sub".into()),
            name: Some("/name".into()),
            avatar: Some("/picture".into()),
        },
        dangerously_allow_non_loopback: false,
    }
}
