//! The protocol choices a provider is configured with: how the client authenticates at the token
//! endpoint, how the authorization response comes back, which extra parameters the authorization
//! request carries, and where a userinfo document keeps a profile's fields.
//!
//! They describe a provider, not a file: the configuration parses them (by the names below, which
//! are the protocol's own), and the providers, the callback and the token request use them. Each
//! knows its own spelling, so that the configuration and the documentation cannot drift apart.

use std::collections::BTreeMap;

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

/// Extra parameters of the authorization request, beside the ones loginwith sends itself: a
/// preset's (Twitch's `claims`, Slack's `team`) with the configuration's
/// `[providers.NAME.authorize_params]` over them (`prompt = "select_account"`, `login_hint`, ...).
///
/// The parameters that make the flow safe are ours alone and refused here ([`Self::RESERVED`]):
/// a configured `state`, `nonce` or `code_challenge` would be sent beside ours, and a provider that
/// reads the first of two values would check the wrong one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthorizeParams(BTreeMap<String, String>);

impl AuthorizeParams {
    /// What loginwith sends itself (RFC 6749 §4.1.1, RFC 7636, OpenID Connect Core §3.1.2.1,
    /// Form Post Response Mode), and `request`/`request_uri` (Core §6): a request object's
    /// parameters supersede the query's, so one configured once would replace every login's
    /// `state`, `nonce` and `redirect_uri`. Compared without regard to case: a `State` has no
    /// honest use either.
    ///
    /// `claims` (Core §5.5) is not among them: it only asks for claims, every ID token is checked
    /// the same whatever it asked for, and a provider whose preset sets it (Twitch) may need a
    /// different request. It must be a JSON object, though, see [`Self::set`].
    pub const RESERVED: [&'static str; 11] = [
        "response_type",
        "client_id",
        "redirect_uri",
        "scope",
        "state",
        "code_challenge",
        "code_challenge_method",
        "nonce",
        "response_mode",
        "request",
        "request_uri",
    ];

    /// Sets `name` to `value`, replacing an earlier value; refused for a reserved or empty name,
    /// and for a `claims` that is not a JSON object (the provider would refuse every login).
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), String> {
        if name.is_empty() {
            return Err("a parameter needs a name".into());
        }
        if Self::RESERVED.iter().any(|r| r.eq_ignore_ascii_case(name)) {
            return Err(format!(
                "loginwith sends this parameter itself and it cannot be configured (reserved: {})",
                Self::RESERVED.join(", ")
            ));
        }
        if name == "claims"
            && !matches!(serde_json::from_str::<serde_json::Value>(value), Ok(serde_json::Value::Object(_)))
        {
            return Err("must be a JSON object (OpenID Connect Core §5.5)".into());
        }
        self.0.insert(name.to_owned(), value.to_owned());
        Ok(())
    }

    /// The value of `name`, if set.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// Every parameter, in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// `over`'s parameters replace these of the same name (the configuration's over a preset's).
    pub fn merge(&mut self, over: AuthorizeParams) {
        self.0.extend(over.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_authorize_params_are_refused_in_any_case() {
        let mut params = AuthorizeParams::default();
        for name in AuthorizeParams::RESERVED.iter().copied().chain(["State", "NONCE", "Redirect_URI", ""]) {
            assert!(params.set(name, "x").is_err(), "{name}");
        }
        assert_eq!(params, AuthorizeParams::default());
        params.set("prompt", "login").unwrap();
        params.set("prompt", "select_account").unwrap();
        assert_eq!(params.iter().collect::<Vec<_>>(), [("prompt", "select_account")]);
    }

    #[test]
    fn claims_must_be_a_json_object() {
        let mut params = AuthorizeParams::default();
        for bad in ["", "null", "[]", "\"email\"", "{\"id_token\":"] {
            assert!(params.set("claims", bad).is_err(), "{bad}");
        }
        params.set("claims", r#"{"id_token":{"email":null}}"#).unwrap();
        assert_eq!(params.get("claims"), Some(r#"{"id_token":{"email":null}}"#));
    }

    #[test]
    fn the_configuration_overrides_the_preset() {
        let mut preset = AuthorizeParams::default();
        preset.set("claims", "{}").unwrap();
        preset.set("team", "T1").unwrap();
        let mut configured = AuthorizeParams::default();
        configured.set("team", "T2").unwrap();
        configured.set("prompt", "consent").unwrap();
        preset.merge(configured);
        assert_eq!(
            preset.iter().collect::<Vec<_>>(),
            [("claims", "{}"), ("prompt", "consent"), ("team", "T2")]
        );
    }

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
