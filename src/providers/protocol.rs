//! The protocol choices a provider is configured with: how the client authenticates at the token
//! endpoint, how the authorization response comes back, and where a userinfo document keeps a
//! profile's fields.
//!
//! They describe a provider, not a file: the configuration parses them (by the names below, which
//! are the protocol's own), and the providers, the callback and the token request use them. Each
//! knows its own spelling, so that the configuration and the documentation cannot drift apart.

/// How the client authenticates at the token endpoint (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenAuth {
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
    /// HTTP Basic with the client id and secret.
    ClientSecretBasic,
}

impl TokenAuth {
    /// The configuration's spellings, as OpenID Connect Discovery names them
    /// (`token_endpoint_auth_methods_supported`).
    pub const NAMES: [&'static str; 2] = ["client_secret_post", "client_secret_basic"];

    /// The method called `name`, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "client_secret_post" => Some(TokenAuth::ClientSecretPost),
            "client_secret_basic" => Some(TokenAuth::ClientSecretBasic),
            _ => None,
        }
    }
}

/// How the provider returns the authorization response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResponseMode {
    /// In the query of a GET to the callback (the OAuth 2.0 default).
    #[default]
    Query,
    /// As a form POST to the callback (OAuth 2.0 Form Post Response Mode; Apple, optionally Entra ID).
    FormPost,
}

impl ResponseMode {
    /// The configuration's spellings, the `response_mode` values of OAuth 2.0 Multiple Response
    /// Types and Form Post Response Mode.
    pub const NAMES: [&'static str; 2] = ["query", "form_post"];

    /// The mode called `name`, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "query" => Some(ResponseMode::Query),
            "form_post" => Some(ResponseMode::FormPost),
            _ => None,
        }
    }
}

/// JSON Pointers (RFC 6901) into the userinfo response.
#[derive(Debug, Clone, Default)]
pub struct UserinfoPointers {
    /// The e-mail address.
    pub email: Option<String>,
    /// A boolean saying the provider verified the address; absent means unverified.
    pub email_verified: Option<String>,
    /// The stable account id.
    pub subject: Option<String>,
    /// A display name.
    pub name: Option<String>,
    /// An avatar URL.
    pub avatar: Option<String>,
    /// The account's login name at the provider (a username when the address is unverified).
    pub username: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_name_parses() {
        for name in TokenAuth::NAMES {
            assert!(TokenAuth::from_name(name).is_some(), "{name}");
        }
        for name in ResponseMode::NAMES {
            assert!(ResponseMode::from_name(name).is_some(), "{name}");
        }
        assert_eq!(TokenAuth::from_name("client_secret_jwt"), None);
        assert_eq!(ResponseMode::from_name("fragment"), None);
    }
}
