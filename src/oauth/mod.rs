//! The OAuth 2.0 protocol, without HTTP routing: the pending login (state, PKCE), the authorization
//! URL, and the code exchange.
//!
//! Why the token request is written here rather than with the `oauth2` crate's `exchange_code`:
//! we must tell apart a provider's refusal (including GitHub's HTTP 200 carrying `{"error": ...}`),
//! a non-JSON or oversized body, a bad status and a timeout, and show each as its own page; the
//! crate folds the status into a parse error and buffers bodies without a cap. The request itself
//! is a single form POST (RFC 6749 §4.1.3); PKCE values still come from the `oauth2` crate.
//!
//! The client authenticates as configured: its secret in the form or in Basic, or a JWT it signs
//! ([`client_auth`], RFC 7523), made by [`jwt`].
//!
//! Never log a code, a verifier or a token (secret types that do not print), nor a client assertion.

pub mod client_auth;
pub mod http;
pub mod jwt;
pub mod pending;

use crate::domain::secret::{AccessToken, AuthCode, ClientSecret, PkceVerifier};
use crate::oauth::client_auth::{AssertionKey, ClientKey};
use crate::oauth::http::{ProviderHttp, Step};
use crate::providers::TokenAuth;
use serde_json::Value;
use std::borrow::Cow;
use url::Url;

/// What can go wrong talking to a provider. Each variant becomes a 502 or 504 page.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// No answer within the configured time.
    #[error("the provider's {step} did not answer in time")]
    Timeout {
        /// Which call.
        step: Step,
    },
    /// Connection refused, reset, DNS failure, TLS failure.
    #[error("the provider's {step} could not be reached")]
    Unreachable {
        /// Which call.
        step: Step,
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },
    /// The body exceeded `max_response_bytes`.
    #[error("the provider's {step} sent more than {limit} bytes")]
    TooLarge {
        /// Which call.
        step: Step,
        /// The cap.
        limit: usize,
    },
    /// The body was not JSON.
    #[error("the provider's {step} answered with something that is not JSON (HTTP {status})")]
    NotJson {
        /// Which call.
        step: Step,
        /// HTTP status of that answer.
        status: u16,
    },
    /// An unexpected HTTP status without an OAuth error body.
    #[error("the provider's {step} answered HTTP {status}")]
    Status {
        /// Which call.
        step: Step,
        /// HTTP status.
        status: u16,
    },
    /// The token endpoint refused the code (RFC 6749 §5.2), whatever the HTTP status.
    #[error("the provider refused the authorization code: {error}")]
    TokenRefused {
        /// The `error` code, e.g. `invalid_grant`.
        error: String,
    },
    /// A token response without a usable `access_token`, or of a type other than Bearer.
    #[error("the provider's token response has no usable bearer access_token")]
    NoAccessToken,
    /// The provider has no address it vouches for (GitHub: no primary verified e-mail).
    #[error("the provider has no verified e-mail address for this account")]
    NoVerifiedEmail,
    /// The profile lacked something we need or had it in the wrong shape.
    #[error("the provider's profile is unusable: {0}")]
    BadProfile(String),
    /// The client assertion (`client_secret_jwt`, `private_key_jwt`) could not be made: no key
    /// for the method (the configuration rules that out) or a failed signature. Nothing was sent.
    #[error("the client assertion for the token request could not be made: {0}")]
    ClientAssertion(String),
}

impl ProviderError {
    /// The `kind` label of `loginwith_provider_errors_total`.
    pub fn kind(&self) -> &'static str {
        match self {
            ProviderError::Timeout { .. } => "timeout",
            ProviderError::Unreachable { .. } => "connect",
            ProviderError::TooLarge { .. } => "body_too_large",
            ProviderError::NotJson { .. } => "invalid_json",
            ProviderError::Status { .. } => "status",
            ProviderError::TokenRefused { .. } => "refused",
            ProviderError::NoAccessToken => "no_access_token",
            ProviderError::NoVerifiedEmail => "no_verified_email",
            ProviderError::BadProfile(_) => "bad_profile",
            ProviderError::ClientAssertion(_) => "client_assertion",
        }
    }
}

/// Everything the code exchange needs about the client.
#[derive(Debug)]
pub struct ClientCredentials<'a> {
    /// `client_id`
    pub client_id: &'a str,
    /// `client_secret`: the configured one, or one made for this request (Sign in with Apple's).
    pub client_secret: Option<Cow<'a, ClientSecret>>,
    /// The private key of `private_key_jwt`.
    pub client_key: Option<&'a ClientKey>,
    /// How to send them.
    pub auth: TokenAuth,
}

impl ClientCredentials<'_> {
    /// What signs the client assertion, for the JWT methods; `None` for the others.
    fn assertion_key(&self) -> Result<Option<AssertionKey<'_>>, ProviderError> {
        let missing = |what: &str| ProviderError::ClientAssertion(format!("no {what} is configured"));
        match self.auth {
            TokenAuth::ClientSecretJwt => self
                .client_secret
                .as_deref()
                .map(AssertionKey::Secret)
                .map(Some)
                .ok_or_else(|| missing("client secret")),
            TokenAuth::PrivateKeyJwt => {
                self.client_key.map(AssertionKey::Private).map(Some).ok_or_else(|| missing("private key"))
            }
            TokenAuth::ClientSecretPost | TokenAuth::ClientSecretBasic => Ok(None),
        }
    }
}

/// A successful token response: the access token and, for OpenID Connect, the raw ID token.
#[derive(Debug)]
pub struct Tokens {
    /// The bearer token for userinfo calls.
    pub access_token: AccessToken,
    /// The `id_token`, unverified, when the provider sent one.
    pub id_token: Option<String>,
}

/// Exchanges an authorization code for tokens (RFC 6749 §4.1.3 with the PKCE verifier of RFC 7636 §4.5).
pub async fn exchange_code(
    http: &ProviderHttp,
    token_url: &Url,
    client: &ClientCredentials<'_>,
    code: &AuthCode,
    redirect_uri: &str,
    verifier: &PkceVerifier,
) -> Result<Tokens, ProviderError> {
    let result = exchange(http, token_url, client, code, redirect_uri, verifier).await;
    http.observe(Step::Token, result)
}

async fn exchange(
    http: &ProviderHttp,
    token_url: &Url,
    client: &ClientCredentials<'_>,
    code: &AuthCode,
    redirect_uri: &str,
    verifier: &PkceVerifier,
) -> Result<Tokens, ProviderError> {
    let mut form: Vec<(&str, &str)> = vec![
        ("grant_type", "authorization_code"),
        ("code", code.expose()),
        ("redirect_uri", redirect_uri),
        ("code_verifier", verifier.expose()),
    ];
    let mut request = http.post_form(token_url);
    let assertion = match client.assertion_key()? {
        Some(key) => Some(
            client_auth::client_assertion(client.client_id, token_url, key)
                .map_err(|e| ProviderError::ClientAssertion(e.to_string()))?,
        ),
        None => None,
    };
    match (client.auth, client.client_secret.as_deref(), &assertion) {
        // RFC 7523 §2.2, with the client_id RFC 7521 §4.2 allows; no secret, no Basic header.
        (_, _, Some(assertion)) => {
            form.push(("client_id", client.client_id));
            form.push(("client_assertion_type", client_auth::JWT_BEARER));
            form.push(("client_assertion", assertion));
        }
        (TokenAuth::ClientSecretBasic, Some(secret), None) => {
            // RFC 6749 §2.3.1: both parts are form-urlencoded before going into Basic.
            let id = form_encode(client.client_id);
            let secret = form_encode(secret.expose());
            request = request.basic_auth(id, Some(secret));
        }
        (_, secret, None) => {
            form.push(("client_id", client.client_id));
            if let Some(secret) = secret {
                form.push(("client_secret", secret.expose()));
            }
        }
    }
    let response = http.send(Step::Token, request.form(&form)).await?;
    let json = match response.json(Step::Token) {
        Ok(json) => json,
        Err(_) if !response.status.is_success() => {
            return Err(ProviderError::Status { step: Step::Token, status: response.status.as_u16() })
        }
        Err(err) => return Err(err),
    };
    parse_token_response(response.status.is_success(), response.status.as_u16(), &json)
}

/// Reads a token endpoint's JSON. An `error` member means refusal whatever the status: GitHub
/// answers a bad code with HTTP 200 and `{"error": "bad_verification_code"}`.
fn parse_token_response(success: bool, status: u16, json: &Value) -> Result<Tokens, ProviderError> {
    if let Some(error) = json.get("error") {
        let error = error.as_str().unwrap_or("unknown_error");
        return Err(ProviderError::TokenRefused { error: sanitize_code(error) });
    }
    if !success {
        return Err(ProviderError::Status { step: Step::Token, status });
    }
    let access_token = json
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or(ProviderError::NoAccessToken)?;
    // RFC 6749 §7.1: the type is case-insensitive; we only know how to use Bearer tokens (RFC 6750).
    let bearer =
        json.get("token_type").and_then(Value::as_str).is_some_and(|t| t.eq_ignore_ascii_case("bearer"));
    if !bearer {
        return Err(ProviderError::NoAccessToken);
    }
    let id_token = json.get("id_token").and_then(Value::as_str).map(str::to_owned);
    Ok(Tokens { access_token: AccessToken::new(access_token), id_token })
}

/// An OAuth error code is `1*( %x20-21 / %x23-5B / %x5D-7E )` (RFC 6749 §5.2); anything else is
/// replaced so that a hostile provider cannot put markup or control characters in our pages and logs.
pub fn sanitize_code(code: &str) -> String {
    let clean: String = code
        .chars()
        .take(64)
        .map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' { c } else { '?' })
        .collect();
    if clean.is_empty() {
        "unknown_error".into()
    } else {
        clean
    }
}

fn form_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn github_style_200_with_error_is_a_refusal() {
        let err = parse_token_response(true, 200, &json!({"error": "bad_verification_code"})).unwrap_err();
        assert!(matches!(err, ProviderError::TokenRefused { ref error } if error == "bad_verification_code"));
    }

    #[test]
    fn token_response_needs_a_bearer_access_token() {
        assert!(matches!(
            parse_token_response(true, 200, &json!({"token_type": "bearer"})),
            Err(ProviderError::NoAccessToken)
        ));
        assert!(matches!(
            parse_token_response(true, 200, &json!({"access_token": "x", "token_type": "mac"})),
            Err(ProviderError::NoAccessToken)
        ));
        let ok =
            parse_token_response(true, 200, &json!({"access_token": "x", "token_type": "Bearer"})).unwrap();
        assert_eq!(ok.access_token.expose(), "x");
    }

    #[test]
    fn error_codes_cannot_carry_markup() {
        assert_eq!(sanitize_code("<script>alert(1)</script>"), "<script>alert(1)</script>");
        assert_eq!(sanitize_code("a b\"c"), "a?b?c");
        assert_eq!(sanitize_code(""), "unknown_error");
    }
}
