//! Client authentication at the token endpoint with a signed JWT (issue 12, item 11): logins
//! through the fake OpenID Connect provider configured with `token_auth = "private_key_jwt"` (an
//! RSA key, an EC P-256 key with its certificate) and `"client_secret_jwt"`, on SQLite and
//! PostgreSQL. The fake checks every assertion as a provider would (RFC 7523 §3): its signature
//! with the client's public key, `iss` and `sub` the client id, `aud` its own token endpoint, not
//! expired, its `jti` never seen before; and anything else refuses the client with
//! `invalid_client`. Then what `loginwith check` says about such a provider, and the start refused
//! for a bad key file.

use crate::config_errors::loginwith;
use crate::db_tests;
use crate::fake_oidc::*;
use crate::helpers::*;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use reqwest::StatusCode;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

db_tests!(
    private_key_jwt_with_an_rsa_key_sends_a_fresh_rs256_assertion_and_logs_in,
    private_key_jwt_with_an_ec_key_and_its_certificate_sends_es256_with_the_thumbprint,
    client_secret_jwt_sends_an_hs256_assertion_made_with_the_secret,
    an_assertion_the_provider_refuses_is_an_error_page_and_nobody_is_logged_in,
);

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
const RSA_KEY: &str = include_str!("../fixtures/client-rsa.pem");
const P256_KEY: &str = include_str!("../fixtures/client-p256.pem");
/// `openssl x509 -in client-p256.crt -outform DER | openssl dgst -sha256 -binary | base64url`.
const P256_CERT_X5T_S256: &str = "_TogzFaTzvn_ifc65g_nmOAol_z25dPg0mk59H4O3cY";
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// A client secret long enough for HS256 (RFC 7518 §3.2).
const LONG_SECRET: &str = "a-client-secret-of-more-than-32-bytes";

/// The key a provider knows the client by.
#[derive(Clone)]
enum ClientPublicKey {
    Rsa(rsa::RsaPublicKey),
    P256(p256::ecdsa::VerifyingKey),
    Secret(&'static str),
}

fn rsa_public(pem: &str) -> ClientPublicKey {
    use rsa::pkcs8::DecodePrivateKey;
    ClientPublicKey::Rsa(rsa::RsaPrivateKey::from_pkcs8_pem(pem).expect("test RSA key").to_public_key())
}

fn p256_public(pem: &str) -> ClientPublicKey {
    use p256::pkcs8::DecodePrivateKey;
    ClientPublicKey::P256(*p256::ecdsa::SigningKey::from_pkcs8_pem(pem).expect("test EC key").verifying_key())
}

fn decode_part(part: &str) -> Option<Value> {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).ok()?).ok()
}

/// A compact JWS's header and claims, unverified.
fn header_and_claims(jwt: &str) -> (Value, Value) {
    let mut parts = jwt.split('.');
    let header = parts.next().and_then(decode_part).expect("a JWS header");
    let claims = parts.next().and_then(decode_part).expect("JWS claims");
    (header, claims)
}

/// Verifies a compact JWS with `key`, as the provider would; the claims when it holds.
fn verified_claims(jwt: &str, key: &ClientPublicKey) -> Result<Value, String> {
    let (input, signature) = jwt.rsplit_once('.').ok_or("not a JWS")?;
    let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| "signature not base64url")?;
    let (header, claims) = input.split_once('.').ok_or("not a JWS")?;
    let header = decode_part(header).ok_or("header not JSON")?;
    let alg = header["alg"].as_str().unwrap_or_default();
    let valid = match key {
        ClientPublicKey::Rsa(public) => {
            use rsa::signature::Verifier;
            let signature =
                rsa::pkcs1v15::Signature::try_from(signature.as_slice()).map_err(|e| e.to_string())?;
            alg == "RS256"
                && rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(public.clone())
                    .verify(input.as_bytes(), &signature)
                    .is_ok()
        }
        ClientPublicKey::P256(public) => {
            use p256::ecdsa::signature::Verifier;
            let signature = p256::ecdsa::Signature::from_slice(&signature).map_err(|e| e.to_string())?;
            alg == "ES256" && public.verify(input.as_bytes(), &signature).is_ok()
        }
        ClientPublicKey::Secret(secret) => {
            use hmac::Mac;
            let mut mac =
                hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).map_err(|e| e.to_string())?;
            mac.update(input.as_bytes());
            alg == "HS256" && mac.verify_slice(&signature).is_ok()
        }
    };
    if !valid {
        return Err(format!("the {alg} signature does not verify"));
    }
    decode_part(claims).ok_or_else(|| "claims not JSON".into())
}

/// The fake's client authentication: RFC 7523 §3 against `key`, each `jti` once. Every refusal
/// is `invalid_client` (RFC 6749 §5.2), and its reason is kept in `refusals` for the test.
fn provider_checks_assertions(fake: &FakeOidc, key: ClientPublicKey) -> Arc<Mutex<Vec<String>>> {
    let token_endpoint = format!("{}/token", fake.base);
    let seen = Mutex::new(HashSet::new());
    let refusals = Arc::new(Mutex::new(Vec::new()));
    let kept = refusals.clone();
    let check = move |form: &HashMap<String, String>, authorization: Option<&str>| -> Result<(), String> {
        let why = (|| -> Result<(), String> {
            if authorization.is_some() {
                return Err("a Authorization header beside the assertion".into());
            }
            if form.contains_key("client_secret") {
                return Err("a client_secret beside the assertion".into());
            }
            if form.get("client_assertion_type").map(String::as_str) != Some(JWT_BEARER) {
                return Err(format!("client_assertion_type {:?}", form.get("client_assertion_type")));
            }
            let assertion = form.get("client_assertion").ok_or("no client_assertion")?;
            let claims = verified_claims(assertion, &key)?;
            let now = now_secs();
            let ok = claims["iss"] == CLIENT_ID
                && claims["sub"] == CLIENT_ID
                && claims["aud"] == token_endpoint.as_str()
                && claims["exp"].as_i64().is_some_and(|exp| exp > now && exp <= now + 300)
                && form.get("client_id").is_none_or(|id| id == CLIENT_ID);
            if !ok {
                return Err(format!("claims {claims}"));
            }
            let jti = claims["jti"].as_str().ok_or("no jti")?.to_owned();
            if !seen.lock().unwrap().insert(jti.clone()) {
                return Err(format!("jti {jti} replayed"));
            }
            Ok(())
        })();
        why.map_err(|why| {
            kept.lock().unwrap().push(why);
            "invalid_client".to_owned()
        })
    };
    fake.check_clients_with(ClientCheck(Arc::new(check)));
    refusals
}

/// The fake and the app configured with it as `[providers.oidc]` with `auth_keys` (`token_auth`
/// and its keys; the client secret only where given).
async fn setup(db: Db, auth_keys: &str) -> (FakeOidc, TestApp) {
    let fake = FakeOidc::start().await;
    let toml =
        format!("[providers.oidc]\nissuer = \"{}\"\nclient_id = \"{CLIENT_ID}\"\n{auth_keys}\n", fake.base);
    let app = TestApp::builder(db).toml(&toml).spawn().await;
    (fake, app)
}

/// One login through the fake, to its answer.
async fn log_in(app: &TestApp, fake: &FakeOidc) -> reqwest::Response {
    let attempt = Attempt::from_url(&app.begin_login("oidc").await);
    fake.set_id_token(fake.sign(fake.claims(&attempt.nonce), &key1()));
    callback(app, "oidc", &attempt, Some(&fake.base)).await
}

/// What every assertion must be, beside the checks the fake makes: sent with the client id and
/// nothing else of the client's, `iat` now, a lifetime of 60 to 300 s, a `jti` of 128 bits or more.
fn assert_assertion_request(fake: &FakeOidc) -> (Value, Value) {
    let form = fake.last_token_form();
    assert_eq!(fake.last_token_auth(), None, "no Basic header: {form:?}");
    assert!(!form.contains_key("client_secret"), "no secret in the form: {form:?}");
    assert_eq!(form.get("client_id").map(String::as_str), Some(CLIENT_ID));
    assert_eq!(form.get("client_assertion_type").map(String::as_str), Some(JWT_BEARER));
    assert_eq!(form.get("grant_type").map(String::as_str), Some("authorization_code"));
    assert!(form.contains_key("code_verifier"), "PKCE as ever: {form:?}");
    let (header, claims) = header_and_claims(&form["client_assertion"]);
    assert_eq!(claims["iss"], CLIENT_ID);
    assert_eq!(claims["sub"], CLIENT_ID);
    assert_eq!(claims["aud"], format!("{}/token", fake.base), "the token endpoint (OIDC Core §9)");
    let (iat, exp) = (claims["iat"].as_i64().unwrap(), claims["exp"].as_i64().unwrap());
    assert!((now_secs() - iat).abs() <= 5, "iat is now: {claims}");
    assert!((60..=300).contains(&(exp - iat)), "lifetime: {claims}");
    let jti = claims["jti"].as_str().expect("jti");
    assert!(URL_SAFE_NO_PAD.decode(jti).map_or(0, |b| b.len()) >= 16, "jti of 128 bits or more: {jti}");
    (header, claims)
}

async fn private_key_jwt_with_an_rsa_key_sends_a_fresh_rs256_assertion_and_logs_in(db: Db) {
    let (fake, app) = setup(
        db,
        &format!(
            "token_auth = \"private_key_jwt\"\nprivate_key_file = \"{FIXTURES}/client-rsa.pem\"\nkey_id = \"rsa-2026\"\n"
        ),
    )
    .await;
    let refusals = provider_checks_assertions(&fake, rsa_public(RSA_KEY));
    expect_logged_in(&app, log_in(&app, &fake).await, "user@example.com").await;
    let (header, first) = assert_assertion_request(&fake);
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["kid"], "rsa-2026");
    assert_eq!(header.get("x5t#S256"), None, "no certificate configured");

    // The next token request gets an assertion of its own: the fake takes each jti once.
    app.logout().await;
    expect_logged_in(&app, log_in(&app, &fake).await, "user@example.com").await;
    let (_, second) = assert_assertion_request(&fake);
    assert_ne!(first["jti"], second["jti"]);
    assert_eq!(fake.token_requests(), 2);
    assert_eq!(app.user_count().await, 1);
    assert!(refusals.lock().unwrap().is_empty(), "{:?}", refusals.lock().unwrap());
}

async fn private_key_jwt_with_an_ec_key_and_its_certificate_sends_es256_with_the_thumbprint(db: Db) {
    let (fake, app) = setup(
        db,
        &format!(
            "token_auth = \"private_key_jwt\"\nprivate_key_file = \"{FIXTURES}/client-p256.pem\"\n\
             certificate_file = \"{FIXTURES}/client-p256.crt\"\n"
        ),
    )
    .await;
    let refusals = provider_checks_assertions(&fake, p256_public(P256_KEY));
    expect_logged_in(&app, log_in(&app, &fake).await, "user@example.com").await;
    let (header, _) = assert_assertion_request(&fake);
    assert_eq!(header["alg"], "ES256");
    assert_eq!(header["x5t#S256"], P256_CERT_X5T_S256, "Entra ID's certificate thumbprint");
    assert_eq!(header.get("kid"), None, "no key_id configured");
    assert!(refusals.lock().unwrap().is_empty(), "{:?}", refusals.lock().unwrap());
}

async fn client_secret_jwt_sends_an_hs256_assertion_made_with_the_secret(db: Db) {
    let (fake, app) =
        setup(db, &format!("token_auth = \"client_secret_jwt\"\nclient_secret = \"{LONG_SECRET}\"\n")).await;
    let refusals = provider_checks_assertions(&fake, ClientPublicKey::Secret(LONG_SECRET));
    expect_logged_in(&app, log_in(&app, &fake).await, "user@example.com").await;
    let (header, _) = assert_assertion_request(&fake);
    assert_eq!(header["alg"], "HS256");
    assert!(
        !fake.last_token_form().values().any(|v| v.contains(LONG_SECRET)),
        "the secret itself is never sent"
    );
    assert!(refusals.lock().unwrap().is_empty(), "{:?}", refusals.lock().unwrap());
}

async fn an_assertion_the_provider_refuses_is_an_error_page_and_nobody_is_logged_in(db: Db) {
    // The provider knows the client by another key (the one registered was replaced, say).
    let (fake, app) = setup(
        db,
        &format!("token_auth = \"private_key_jwt\"\nprivate_key_file = \"{FIXTURES}/client-rsa.pem\"\n"),
    )
    .await;
    let refusals = provider_checks_assertions(&fake, p256_public(P256_KEY));
    let response = log_in(&app, &fake).await;
    let page = expect_page(response, StatusCode::BAD_GATEWAY, "The login provider answered badly").await;
    assert!(page.contains("invalid_client"), "the page names the provider's refusal:\n{page}");
    assert_eq!(refusals.lock().unwrap().len(), 1, "the fake saw the assertion and refused it");
    assert_eq!(fake.userinfo_requests(), 0);
    app.assert_logged_out().await;
    assert_eq!(app.user_count().await, 0, "nothing written");
}

#[test]
fn check_names_the_jwt_method_and_its_key_but_never_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("jwt.toml");
    let endpoints =
        "authorize_url = \"https://sso.example/authorize\"\ntoken_url = \"https://sso.example/token\"\n\
                     userinfo_url = \"https://sso.example/userinfo\"\n\
                     [providers.PROVIDER.userinfo]\nemail = \"/email\"\nsubject = \"/sub\"\n";
    std::fs::write(
        &file,
        format!(
            "[providers.corp]\nclient_id = \"c\"\ntoken_auth = \"private_key_jwt\"\n\
             private_key_file = \"{FIXTURES}/client-p256.pem\"\nkey_id = \"corp-key-1\"\n\
             certificate_file = \"{FIXTURES}/client-p256.crt\"\n{}\
             [providers.hs]\nclient_id = \"c\"\nclient_secret = \"tiny-secret-value\"\ntoken_auth = \"client_secret_jwt\"\n{}",
            endpoints.replace("PROVIDER", "corp"),
            endpoints.replace("PROVIDER", "hs"),
        ),
    )
    .unwrap();
    let (ok, text) = loginwith(&["--config", file.to_str().unwrap(), "check"], &[]);
    assert!(ok, "{text}");
    assert!(
        text.contains(&format!(
            "token endpoint auth: private_key_jwt (ES256, kid corp-key-1, certificate x5t#S256 {P256_CERT_X5T_S256})"
        )),
        "{text}"
    );
    assert!(
        text.contains("token endpoint auth: client_secret_jwt (HS256 with the client secret; the secret is shorter than the 32 bytes RFC 7518 §3.2 asks for)"),
        "{text}"
    );
    let key_body = P256_KEY.lines().nth(1).unwrap();
    assert!(
        !text.contains(key_body) && !text.contains("tiny-secret-value"),
        "no key or secret printed:\n{text}"
    );
}

#[test]
fn bad_key_files_stop_the_start_each_naming_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n")
        .unwrap();
    let absent = dir.path().join("absent.pem");
    let table = |name: &str, keys: &str| {
        format!("[providers.{name}]\nissuer = \"https://{name}.example\"\nclient_id = \"c\"\n{keys}\n")
    };
    let file = dir.path().join("keys.toml");
    std::fs::write(
        &file,
        [
            table("absent", &format!("token_auth = \"private_key_jwt\"\nprivate_key_file = {absent:?}\n")),
            table("garbage", &format!("token_auth = \"private_key_jwt\"\nprivate_key_file = {garbage:?}\n")),
            table(
                "p384",
                &format!("token_auth = \"private_key_jwt\"\nprivate_key_file = \"{FIXTURES}/p384.pem\"\n"),
            ),
            table(
                "nomethod",
                &format!("client_secret = \"s\"\nprivate_key_file = \"{FIXTURES}/client-rsa.pem\"\n"),
            ),
            table("nokey", "token_auth = \"private_key_jwt\"\n"),
        ]
        .concat(),
    )
    .unwrap();
    let (ok, text) = loginwith(&["--config", file.to_str().unwrap(), "serve"], &[]);
    assert!(!ok, "{text}");
    for expected in [
        "`providers.absent.private_key_file`: ",
        "absent.pem\" cannot be read",
        "`providers.garbage.private_key_file`: ",
        "could not be read as a PKCS #8 private key",
        "`providers.p384.private_key_file`: ",
        "is an EC P-384 key, which is not supported",
        "`providers.nomethod.private_key_file`: only applies with token_auth = \"private_key_jwt\"",
        "`providers.nokey.private_key_file`: missing",
        "keys.toml",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    assert!(!text.contains("bm90IGEga2V5") && !text.contains("panicked"), "{text}");
}

#[tokio::test]
async fn check_warns_when_discovery_does_not_list_the_configured_method() {
    let fake = FakeOidc::start().await;
    fake.override_document(
        "token_endpoint_auth_methods_supported",
        serde_json::json!(["client_secret_basic", "client_secret_post"]),
    );
    let toml = |method: &str| {
        format!(
            "[providers.oidc]\nissuer = \"{}\"\nclient_id = \"{CLIENT_ID}\"\nclient_secret = \"{LONG_SECRET}\"\ntoken_auth = \"{method}\"\n",
            fake.base
        )
    };
    let config = loginwith::Config::from_toml(&toml("client_secret_jwt")).unwrap();
    let report = loginwith::check(&config).await.to_string();
    assert!(
        report.contains(
            "warning: token_auth client_secret_jwt is not among the provider's \
             token_endpoint_auth_methods_supported (client_secret_basic, client_secret_post)"
        ),
        "{report}"
    );
    let config = loginwith::Config::from_toml(&toml("client_secret_post")).unwrap();
    let report = loginwith::check(&config).await.to_string();
    assert!(!report.contains("warning"), "{report}");
}
