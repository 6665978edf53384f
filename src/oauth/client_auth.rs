//! Client authentication at the token endpoint with a JWT (RFC 7523 §2.2, OpenID Connect Core
//! §9): `client_secret_jwt` signs with the client secret (HS256), `private_key_jwt` with the
//! client's own private key ([`ClientKey`]: RS256 or ES256, with the `kid` the provider knows it
//! by and, for a certificate credential, its `x5t#S256`).
//!
//! The token request then carries `client_assertion_type` and `client_assertion` (plus
//! `client_id`, which RFC 7521 §4.2 allows and Okta and Entra ID accept) instead of a secret in
//! the form or a Basic header. The assertion is made afresh for every request: its `jti` is
//! random (256 bits) and a provider may refuse one it has seen (RFC 7523 §3 item 7); it lives
//! [`ASSERTION_LIFETIME_SECS`].
//!
//! Never log an assertion: it is a bearer credential for its lifetime.

use super::jwt::{self, Algorithm, SignError, SigningKey};
use crate::domain::secret::{random_token, ClientSecret};
use serde_json::{json, Map, Value};
use std::fmt;
use url::Url;

/// `client_assertion_type` for a JWT (RFC 7523 §2.2).
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How long an assertion is valid. Long enough for a clock a little behind the provider's and a
/// slow token request; short, because it is a bearer credential for that long (and providers
/// cap it: Okta at an hour).
pub const ASSERTION_LIFETIME_SECS: i64 = 120;

/// The `private_key_jwt` credential: a private key read from `private_key_file`, with the `kid`
/// (`key_id`) and the certificate thumbprint (`certificate_file`) its assertions name. Read once
/// at start; its `Debug` never shows the key.
#[derive(Debug)]
pub struct ClientKey {
    key: SigningKey,
    key_id: Option<String>,
    x5t_s256: Option<String>,
}

impl ClientKey {
    /// A credential of `key`, named by `key_id` (the JWS `kid`) and by the thumbprint of its
    /// certificate (the JWS `x5t#S256`, from `jwt::certificate_thumbprint`) when given.
    pub(crate) fn new(key: SigningKey, key_id: Option<String>, x5t_s256: Option<String>) -> ClientKey {
        ClientKey { key, key_id, x5t_s256 }
    }

    /// RS256 or ES256, from the key.
    pub(crate) fn algorithm(&self) -> Algorithm {
        self.key.algorithm()
    }

    /// The key itself, for the other JWTs a provider wants signed with it (Sign in with Apple's
    /// client secret).
    pub(crate) fn signing_key(&self) -> &SigningKey {
        &self.key
    }

    /// The `kid` its assertions carry, if configured.
    pub fn key_id(&self) -> Option<&str> {
        self.key_id.as_deref()
    }

    /// The `x5t#S256` its assertions carry, if a certificate was configured.
    pub fn certificate_thumbprint(&self) -> Option<&str> {
        self.x5t_s256.as_deref()
    }

    /// What `loginwith check` says about it: the algorithm and the names, never the key.
    pub fn describe(&self) -> String {
        let mut text = self.algorithm().to_string();
        if let Some(kid) = &self.key_id {
            text.push_str(&format!(", kid {kid}"));
        }
        if let Some(x5t) = &self.x5t_s256 {
            text.push_str(&format!(", certificate x5t#S256 {x5t}"));
        }
        text
    }
}

/// What signs an assertion, by method.
#[derive(Clone, Copy)]
pub enum AssertionKey<'a> {
    /// `client_secret_jwt`: HS256 with the client secret.
    Secret(&'a ClientSecret),
    /// `private_key_jwt`: the client's own key.
    Private(&'a ClientKey),
}

impl fmt::Debug for AssertionKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AssertionKey::Secret(_) => f.write_str("Secret([redacted])"),
            AssertionKey::Private(key) => write!(f, "Private({key:?})"),
        }
    }
}

/// A fresh client assertion for one token request (RFC 7523 §3): `iss` and `sub` the client id,
/// `aud` the token endpoint (OpenID Connect Core §9 says the token endpoint URL; Okta and Entra
/// ID check exactly that), a random `jti`, issued now and expiring [`ASSERTION_LIFETIME_SECS`] later.
pub fn client_assertion(
    client_id: &str,
    token_url: &Url,
    key: AssertionKey<'_>,
) -> Result<String, SignError> {
    let now = chrono::Utc::now().timestamp();
    let claims = json!({
        "iss": client_id,
        "sub": client_id,
        "aud": token_url.as_str(),
        // 32 random bytes: far more than the 128 bits that keep two assertions apart.
        "jti": random_token(32),
        "iat": now,
        "exp": now + ASSERTION_LIFETIME_SECS,
    });
    let mut header = Map::new();
    match key {
        AssertionKey::Secret(secret) => {
            jwt::sign_jwt(&SigningKey::hs256(secret.expose().as_bytes()), &header, &claims)
        }
        AssertionKey::Private(client_key) => {
            if let Some(kid) = &client_key.key_id {
                header.insert("kid".into(), Value::from(kid.as_str()));
            }
            if let Some(x5t) = &client_key.x5t_s256 {
                header.insert("x5t#S256".into(), Value::from(x5t.as_str()));
            }
            jwt::sign_jwt(&client_key.key, &header, &claims)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;

    const P256_PEM: &str = include_str!("../../tests/fixtures/client-p256.pem");
    const RSA_PEM: &str = include_str!("../../tests/fixtures/client-rsa.pem");

    fn decode(jwt: &str) -> (Value, Value, Vec<u8>, String) {
        let (input, signature) = jwt.rsplit_once('.').unwrap();
        let (header, claims) = input.split_once('.').unwrap();
        let json = |part: &str| serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap();
        (json(header), json(claims), URL_SAFE_NO_PAD.decode(signature).unwrap(), input.to_owned())
    }

    fn token_url() -> Url {
        Url::parse("https://idp.example/oauth2/v1/token").unwrap()
    }

    /// The claims RFC 7523 §3 and OpenID Connect Core §9 ask for, with a lifetime of 60 to 300 s.
    fn assert_client_claims(claims: &Value) {
        assert_eq!(claims["iss"], "client-1");
        assert_eq!(claims["sub"], "client-1");
        assert_eq!(claims["aud"], "https://idp.example/oauth2/v1/token");
        let jti = claims["jti"].as_str().unwrap();
        assert!(URL_SAFE_NO_PAD.decode(jti).unwrap().len() >= 16, "at least 128 random bits: {jti}");
        let now = chrono::Utc::now().timestamp();
        let iat = claims["iat"].as_i64().unwrap();
        let exp = claims["exp"].as_i64().unwrap();
        assert!((now - 5..=now).contains(&iat), "iat {iat} is now ({now})");
        assert!((60..=300).contains(&(exp - iat)), "lifetime {}", exp - iat);
    }

    #[test]
    fn a_private_key_jwt_assertion_verifies_and_names_its_key() {
        use p256::ecdsa::signature::Verifier;
        use p256::pkcs8::DecodePublicKey;
        let signing = SigningKey::from_pem(P256_PEM).unwrap();
        let public =
            p256::ecdsa::VerifyingKey::from_public_key_der(&signing.public_key_der().unwrap()).unwrap();
        let key = ClientKey::new(signing, Some("key-2026".into()), Some("thumb".into()));
        let jwt = client_assertion("client-1", &token_url(), AssertionKey::Private(&key)).unwrap();
        let (header, claims, signature, input) = decode(&jwt);
        assert_eq!(header, json!({"alg": "ES256", "typ": "JWT", "kid": "key-2026", "x5t#S256": "thumb"}));
        assert_client_claims(&claims);
        let signature = p256::ecdsa::Signature::from_slice(&signature).unwrap();
        public.verify(input.as_bytes(), &signature).unwrap();
    }

    #[test]
    fn an_rs256_assertion_verifies_with_the_public_key() {
        use rsa::pkcs8::DecodePublicKey;
        use rsa::signature::Verifier;
        let signing = SigningKey::from_pem(RSA_PEM).unwrap();
        let public = rsa::RsaPublicKey::from_public_key_der(&signing.public_key_der().unwrap()).unwrap();
        let key = ClientKey::new(signing, None, None);
        let jwt = client_assertion("client-1", &token_url(), AssertionKey::Private(&key)).unwrap();
        let (header, claims, signature, input) = decode(&jwt);
        assert_eq!(header, json!({"alg": "RS256", "typ": "JWT"}), "no kid unless configured");
        assert_client_claims(&claims);
        let signature = rsa::pkcs1v15::Signature::try_from(signature.as_slice()).unwrap();
        rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(public)
            .verify(input.as_bytes(), &signature)
            .unwrap();
    }

    #[test]
    fn a_client_secret_jwt_assertion_is_hs256_with_the_secret() {
        use hmac::Mac;
        let secret = ClientSecret::new("a-client-secret-of-32-characters");
        let jwt = client_assertion("client-1", &token_url(), AssertionKey::Secret(&secret)).unwrap();
        let (header, claims, signature, input) = decode(&jwt);
        assert_eq!(header, json!({"alg": "HS256", "typ": "JWT"}));
        assert_client_claims(&claims);
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.expose().as_bytes()).unwrap();
        mac.update(input.as_bytes());
        mac.verify_slice(&signature).unwrap();
    }

    #[test]
    fn every_assertion_is_fresh() {
        let key = ClientKey::new(SigningKey::from_pem(P256_PEM).unwrap(), None, None);
        let jti = |jwt: String| decode(&jwt).1["jti"].as_str().unwrap().to_owned();
        let a = jti(client_assertion("client-1", &token_url(), AssertionKey::Private(&key)).unwrap());
        let b = jti(client_assertion("client-1", &token_url(), AssertionKey::Private(&key)).unwrap());
        assert_ne!(a, b, "a jti is never reused");
    }

    #[test]
    fn the_credential_describes_itself_without_the_key() {
        let key = ClientKey::new(SigningKey::from_pem(P256_PEM).unwrap(), Some("k1".into()), None);
        assert_eq!(key.describe(), "ES256, kid k1");
        let debug = format!("{key:?} {:?}", AssertionKey::Private(&key));
        assert!(debug.contains("[redacted]") && !debug.contains("MIG"), "{debug}");
        let secret = ClientSecret::new("hunter2");
        assert_eq!(format!("{:?}", AssertionKey::Secret(&secret)), "Secret([redacted])");
    }
}
