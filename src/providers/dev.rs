//! The development provider preset: endpoints served by this very process under `/dev-provider/`
//! (see [`crate::dev_provider`]), filled in at start once the listening address is known.

use crate::config::{ProviderConfig, TokenAuth, UserinfoPointers};
use crate::domain::ProviderName;

/// The client id the development provider knows; its secret is made at each start.
pub const DEV_CLIENT_ID: &str = "loginwith-dev";

/// The development provider's defaults.
pub fn defaults(name: ProviderName) -> ProviderConfig {
    ProviderConfig {
        name,
        preset: Some(super::Preset::Dev),
        display_name: "Dev".into(),
        client_id: DEV_CLIENT_ID.into(),
        client_secret: None,
        authorize_url: None,
        token_url: None,
        userinfo_url: None,
        scopes: vec!["openid".into(), "email".into(), "profile".into()],
        token_auth: TokenAuth::ClientSecretBasic,
        userinfo: UserinfoPointers {
            email: Some("/email".into()),
            email_verified: Some("/email_verified".into()),
            subject: Some("/sub".into()),
            name: Some("/name".into()),
            avatar: None,
        },
        dangerously_allow_non_loopback: false,
    }
}
