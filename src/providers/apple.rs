//! Sign in with Apple: OpenID Connect from `https://appleid.apple.com`, with Apple's own rules.
//!
//! - **form_post.** Apple sends the authorization response as a cross-site form POST whenever
//!   `name` or `email` is asked for; the preset sets `response_mode = "form_post"` and the callback
//!   re-posts it from our origin (see [`crate::routes`]'s login module).
//! - **The name comes once.** Apple's ID token never carries a name. The person's name arrives
//!   only in the *first* authorization's `user` form field, as JSON
//!   (`{"name": {"firstName": ..., "lastName": ...}, "email": ...}`), unsigned: it is read for the
//!   display name only ([`name_from_user_field`]), never for the address, and saved when the
//!   account is made. Later logins do not send it.
//! - **The client secret is a JWT**, signed ES256 with the team's `.p8` key: `iss` the team id,
//!   `sub` the client id (the Services ID), `aud` `https://appleid.apple.com`, header `kid` the
//!   key id, valid at most six months. It is configured as `team_id`, `key_id` and
//!   `private_key_file`, made at start and made again before it expires ([`AppleSecret`]).
//! - **Private relay.** A person may hide their address behind
//!   `…@privaterelay.appleid.com`, which forwards to them; Apple marks it `is_private_email`. Such
//!   an address is verified — it reaches that person — but it is the relay's, unique to this app:
//!   it links only to an account with the same relay address, never to their real one.
//! - **The identity is `sub`**, stable for this team. `email_verified` (sent as a string) is
//!   believed: Apple only hands out addresses it verified.
//!
//! Register at <https://developer.apple.com/account/resources>: an App ID with "Sign in with
//! Apple", a Services ID (its identifier is the `client_id`) configured with your domain and the
//! return URL that `loginwith check` prints (Apple needs https and a real domain, not localhost),
//! and a key with "Sign in with Apple" (download the `.p8` once; its Key ID is `key_id`; the Team
//! ID is shown at the top right of the developer account).

use super::{oidc_defaults, Preset, ResponseMode, TokenAuth};
use crate::config::ProviderConfig;
use crate::domain::secret::ClientSecret;
use crate::domain::{clip, Issuer, ProviderName};
use crate::oauth::client_auth::ClientKey;
use crate::oauth::jwt::{sign_jwt, SignError};
use serde_json::{json, Map, Value};
use std::sync::{Arc, Mutex};

/// Apple's issuer.
pub const ISSUER: &str = "https://appleid.apple.com";

/// The domain of Apple's private relay addresses.
pub const RELAY_DOMAIN: &str = "privaterelay.appleid.com";

/// Apple's defaults: form_post, the secret in the form body (the only method Apple's token
/// endpoint takes), and the `name` and `email` scopes.
pub fn defaults(name: ProviderName) -> Option<ProviderConfig> {
    let mut config = oidc_defaults(name, Preset::Apple, "Apple", Issuer::parse(ISSUER).ok()?, None);
    config.scopes = vec!["openid".into(), "name".into(), "email".into()];
    config.response_mode = ResponseMode::FormPost;
    config.token_auth = Some(TokenAuth::ClientSecretPost);
    Some(config)
}

/// The `aud` of Apple's client secret.
pub const SECRET_AUDIENCE: &str = "https://appleid.apple.com";

/// How long a client secret made here is valid. Apple accepts up to six months; a short life
/// limits what a leaked one is worth, and making one costs a single ES256 signature.
pub const SECRET_LIFETIME_SECS: i64 = 3600;

/// A secret with less than this left is made again before it is sent, so that none expires
/// between being sent and being checked.
pub const SECRET_RENEW_BEFORE_SECS: i64 = 300;

/// Sign in with Apple's client secret: an ES256 JWT made with the team's key, kept while it is
/// fresh and made again before it expires (see the module doc). Its `Debug` shows no secret.
#[derive(Debug)]
pub struct AppleSecret {
    team_id: String,
    client_id: String,
    key: Arc<ClientKey>,
    current: Mutex<Option<(ClientSecret, i64)>>,
}

impl AppleSecret {
    /// The secret of the Services ID `client_id`, signed with the team `team_id`'s `key` (whose
    /// `key_id` is the JWT's `kid`).
    pub fn new(team_id: String, client_id: String, key: Arc<ClientKey>) -> Self {
        AppleSecret { team_id, client_id, key, current: Mutex::new(None) }
    }

    /// The secret to send at `now` (Unix seconds): the one made earlier while it has more than
    /// [`SECRET_RENEW_BEFORE_SECS`] left, else a new one valid [`SECRET_LIFETIME_SECS`].
    pub fn at(&self, now: i64) -> Result<ClientSecret, SignError> {
        // A poisoned lock only means another login panicked mid-update: the value is still a
        // whole secret or none, so it is used as it is.
        let mut current = self.current.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((secret, expires)) = current.as_ref() {
            if expires - now > SECRET_RENEW_BEFORE_SECS {
                return Ok(secret.clone());
            }
        }
        let expires = now + SECRET_LIFETIME_SECS;
        let mut header = Map::new();
        if let Some(kid) = self.key.key_id() {
            header.insert("kid".into(), Value::from(kid));
        }
        let claims = json!({
            "iss": self.team_id,
            "iat": now,
            "exp": expires,
            "aud": SECRET_AUDIENCE,
            "sub": self.client_id,
        });
        let secret = ClientSecret::new(sign_jwt(self.key.signing_key(), &header, &claims)?);
        *current = Some((secret.clone(), expires));
        Ok(secret)
    }
}

/// Whether Apple vouches for `email`: its `email_verified`, or for a private relay address its
/// `is_private_email` (the relay delivers to the person, whatever else Apple says).
pub fn email_is_verified(
    email: &str,
    email_verified: Option<bool>,
    is_private_email: Option<&Value>,
) -> bool {
    let private = match is_private_email {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    };
    email_verified == Some(true) || (private && is_relay_address(email))
}

/// `…@privaterelay.appleid.com`, in any case.
pub fn is_relay_address(email: &str) -> bool {
    email
        .rsplit_once('@')
        .is_some_and(|(local, domain)| !local.is_empty() && domain.eq_ignore_ascii_case(RELAY_DOMAIN))
}

/// The display name in the first authorization's `user` form field: first and last name, joined;
/// `None` for anything else (absent, not JSON, no name). Its `email` is ignored: the field is not
/// signed, the address comes from the ID token alone.
pub fn name_from_user_field(raw: &str) -> Option<String> {
    let user: Value = serde_json::from_str(raw).ok()?;
    let part = |key: &str| {
        user.pointer(&format!("/name/{key}"))
            .and_then(Value::as_str)
            .map(|s| s.chars().filter(|c| !c.is_control()).collect::<String>().trim().to_owned())
            .filter(|s| !s.is_empty())
    };
    let name = match (part("firstName"), part("lastName")) {
        (Some(first), Some(last)) => format!("{first} {last}"),
        (Some(one), None) | (None, Some(one)) => one,
        (None, None) => return None,
    };
    Some(clip(&name, 200))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn team_key() -> Arc<ClientKey> {
        let pem = include_str!("../../tests/fixtures/apple_authkey.p8");
        let key = crate::oauth::jwt::SigningKey::from_pem(pem).unwrap();
        Arc::new(ClientKey::new(key, Some("KEY7654321".into()), None))
    }

    fn decoded(jwt: &str) -> (Value, Value) {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use base64::Engine;
        let mut parts = jwt.split('.');
        let mut part =
            || serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts.next().unwrap()).unwrap()).unwrap();
        (part(), part())
    }

    #[test]
    fn the_client_secret_is_kept_while_fresh_and_made_again_before_it_expires() {
        let apple = AppleSecret::new("TEAM123456".into(), "com.example.web".into(), team_key());
        let first = apple.at(1_000_000).unwrap();
        let (header, claims) = decoded(first.expose());
        assert_eq!(header, json!({"alg": "ES256", "typ": "JWT", "kid": "KEY7654321"}));
        assert_eq!(
            claims,
            json!({"iss": "TEAM123456", "sub": "com.example.web", "aud": "https://appleid.apple.com",
                   "iat": 1_000_000, "exp": 1_000_000 + SECRET_LIFETIME_SECS})
        );
        let later = 1_000_000 + SECRET_LIFETIME_SECS - SECRET_RENEW_BEFORE_SECS - 1;
        assert_eq!(apple.at(later).unwrap().expose(), first.expose(), "still fresh: the same one");
        let renewed = apple.at(later + 2).unwrap();
        assert_ne!(renewed.expose(), first.expose());
        assert_eq!(decoded(renewed.expose()).1["exp"], json!(later + 2 + SECRET_LIFETIME_SECS));
    }

    #[test]
    fn relay_addresses_are_verified_by_is_private_email() {
        let relay = "dpdcnf87nu@privaterelay.appleid.com";
        assert!(email_is_verified(relay, None, Some(&json!("true"))));
        assert!(email_is_verified(relay, None, Some(&json!(true))));
        assert!(email_is_verified(relay, Some(true), None));
        assert!(!email_is_verified(relay, Some(false), Some(&json!("false"))));
        // is_private_email vouches only for the relay's own addresses.
        assert!(!email_is_verified("someone@example.com", None, Some(&json!("true"))));
        assert!(email_is_verified("someone@example.com", Some(true), None));
        assert!(!is_relay_address("@privaterelay.appleid.com"));
        assert!(!is_relay_address("x@privaterelay.appleid.com.evil.example"));
        assert!(is_relay_address("x@PrivateRelay.AppleID.com"));
    }

    #[test]
    fn the_name_comes_from_the_user_field() {
        let field = r#"{"name":{"firstName":"Jane","lastName":"Appleseed"},"email":"other@example.com"}"#;
        assert_eq!(name_from_user_field(field).as_deref(), Some("Jane Appleseed"));
        assert_eq!(name_from_user_field(r#"{"name":{"firstName":"Jane"}}"#).as_deref(), Some("Jane"));
        assert_eq!(name_from_user_field(r#"{"name":{"firstName":" ","lastName":"\u0007"}}"#), None);
        assert_eq!(name_from_user_field(r#"{"email":"a@b.c"}"#), None);
        assert_eq!(name_from_user_field("not json"), None);
        assert_eq!(
            name_from_user_field(&json!({"name": {"firstName": "x".repeat(500)}}).to_string())
                .map(|n| n.chars().count() <= 201),
            Some(true)
        );
    }
}
