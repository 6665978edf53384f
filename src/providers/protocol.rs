//! The protocol choices a provider is configured with: how the client authenticates at the token
//! endpoint, how the authorization response comes back, and where a userinfo document keeps a
//! profile's fields.
//!
//! They describe a provider, not a file: the configuration parses them (by the names below, which
//! are the protocol's own), and the providers, the callback and the token request use them. Each
//! knows its own spelling, so that the configuration and the documentation cannot drift apart.

/// How the client authenticates at the token endpoint (RFC 6749 §2.3.1, OpenID Connect Core §9).
/// The method only: the private key of `private_key_jwt` is the provider's `client_key`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenAuth {
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
    /// HTTP Basic with the client id and secret.
    ClientSecretBasic,
    /// A JWT signed with the client secret (HS256) as `client_assertion` (RFC 7523 §2.2).
    ClientSecretJwt,
    /// A JWT signed with the client's private key (RS256 or ES256) as `client_assertion`.
    PrivateKeyJwt,
}

impl TokenAuth {
    /// The configuration's spellings, as OpenID Connect Discovery names them
    /// (`token_endpoint_auth_methods_supported`).
    pub const NAMES: [&'static str; 4] =
        ["client_secret_post", "client_secret_basic", "client_secret_jwt", "private_key_jwt"];

    /// The method called `name`, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "client_secret_post" => Some(TokenAuth::ClientSecretPost),
            "client_secret_basic" => Some(TokenAuth::ClientSecretBasic),
            "client_secret_jwt" => Some(TokenAuth::ClientSecretJwt),
            "private_key_jwt" => Some(TokenAuth::PrivateKeyJwt),
            _ => None,
        }
    }

    /// The configuration's spelling of this method.
    pub fn name(self) -> &'static str {
        match self {
            TokenAuth::ClientSecretPost => "client_secret_post",
            TokenAuth::ClientSecretBasic => "client_secret_basic",
            TokenAuth::ClientSecretJwt => "client_secret_jwt",
            TokenAuth::PrivateKeyJwt => "private_key_jwt",
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
        for name in TokenAuth::NAMES {
            assert_eq!(TokenAuth::from_name(name).map(TokenAuth::name), Some(name));
        }
        assert_eq!(TokenAuth::from_name("tls_client_auth"), None);
        assert_eq!(ResponseMode::from_name("fragment"), None);
    }
}
