//! The Apple preset against the fake OpenID provider standing in for appleid.apple.com, on SQLite
//! and PostgreSQL: the cross-site form_post callback (re-posted from our origin), the name taken
//! from the first callback's `user` field and kept afterwards, the client secret as an ES256 JWT
//! that verifies with the public half of the team's key, private relay addresses verified but
//! linking only to themselves, and refusals that write nothing.

use crate::db_tests;
use crate::fake_oidc::*;
use crate::helpers::*;
use crate::mock_provider::{Scripted, TrustedAccount};
use p256::ecdsa::signature::Verifier;
use p256::pkcs8::DecodePublicKey;
use reqwest::StatusCode;
use serde_json::{json, Value};

db_tests!(
    a_form_post_login_saves_the_first_name_and_signs_its_client_secret,
    a_relay_address_is_verified_and_links_only_to_itself,
    an_unverified_address_never_links_and_a_bad_token_is_refused,
);

const TEAM_ID: &str = "TEAM123456";
const KEY_ID: &str = "KEY7654321";
const RELAY: &str = "dpdcnf87nu@privaterelay.appleid.com";

fn key_path() -> String {
    format!("{}/tests/fixtures/apple_authkey.p8", env!("CARGO_MANIFEST_DIR"))
}

/// The fake as Apple: `[providers.apple]` with the team's key, no client secret.
async fn with_apple(db: Db, more_toml: &str) -> (FakeOidc, TestApp) {
    let fake = FakeOidc::start().await;
    // Apple's discovery does not promise the RFC 9207 `iss` parameter, and its form posts carry none.
    fake.set_iss_parameter_supported(false);
    let toml = format!(
        "{more_toml}[providers.apple]\nissuer = \"{}\"\nclient_id = \"{CLIENT_ID}\"\nteam_id = \"{TEAM_ID}\"\n\
         key_id = \"{KEY_ID}\"\nprivate_key_file = \"{}\"\n",
        fake.base,
        key_path()
    );
    let app = TestApp::builder(db).toml(&toml).spawn().await;
    (fake, app)
}

/// Apple's claims for `nonce`: `email_verified` and `is_private_email` as the strings Apple sends.
fn apple_claims(
    fake: &FakeOidc,
    nonce: &str,
    sub: &str,
    email: &str,
    verified: &str,
    private: &str,
) -> Value {
    let mut claims = fake.json_claims(nonce);
    claims["sub"] = json!(sub);
    claims["email"] = json!(email);
    claims["email_verified"] = json!(verified);
    claims["is_private_email"] = json!(private);
    claims["auth_time"] = json!(now_secs());
    claims["nonce_supported"] = json!(true);
    claims
}

/// Apple's cross-site form POST (no cookie), then our page's re-post from our origin.
async fn form_post(
    app: &TestApp,
    fake: &FakeOidc,
    attempt: &Attempt,
    user: Option<&str>,
) -> reqwest::Response {
    let mut form = vec![("code", "x".to_owned()), ("state", attempt.state.clone())];
    if let Some(user) = user {
        form.push(("user", user.to_owned()));
    }
    let token_requests = fake.token_requests();
    let (cookieless, _) = app.new_browser();
    let response = cookieless.post(app.url("/callback/apple")).form(&form).send().await.unwrap();
    let page = expect_page(response, StatusCode::OK, "id=\"resubmit\"").await;
    assert_eq!(fake.token_requests(), token_requests, "the re-post page exchanges nothing");
    let mut fields = resubmit_fields(&page);
    fields.dedup();
    app.client.post(app.url("/callback/apple")).form(&fields).send().await.unwrap()
}

fn b64_json(part: &str) -> Value {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON")
}

/// Checks the client secret Apple would receive: ES256 by the team's key, as Apple documents it.
fn assert_apple_client_secret(secret: &str) {
    let (input, signature) = secret.rsplit_once('.').expect("a compact JWS");
    let (header, claims) = input.split_once('.').expect("header.claims");
    let (header, claims) = (b64_json(header), b64_json(claims));
    assert_eq!(header["alg"], "ES256", "{header}");
    assert_eq!(header["kid"], KEY_ID, "{header}");
    assert_eq!(claims["iss"], TEAM_ID, "{claims}");
    assert_eq!(claims["sub"], CLIENT_ID, "{claims}");
    assert_eq!(claims["aud"], "https://appleid.apple.com", "{claims}");
    let (iat, exp) = (claims["iat"].as_i64().unwrap(), claims["exp"].as_i64().unwrap());
    let now = now_secs();
    assert!(iat <= now + 5 && exp > now + 60, "fresh: iat {iat}, exp {exp}, now {now}");
    assert!(exp - iat <= 15_777_000, "Apple refuses secrets valid for more than six months");

    let public = std::fs::read_to_string(format!(
        "{}/tests/fixtures/apple_authkey.pub.pem",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let key = p256::ecdsa::VerifyingKey::from_public_key_pem(&public).expect("public key");
    use base64::Engine;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(signature).expect("signature");
    let signature = p256::ecdsa::Signature::from_slice(&raw).expect("a 64-byte ES256 signature");
    key.verify(input.as_bytes(), &signature).expect("the client secret verifies with the team's public key");
}

async fn a_form_post_login_saves_the_first_name_and_signs_its_client_secret(db: Db) {
    let (fake, app) = with_apple(db, "").await;
    let attempt = Attempt::from_url(&app.begin_login("apple").await);
    assert_eq!(attempt.param("response_mode").as_deref(), Some("form_post"));
    assert_eq!(attempt.param("scope").as_deref(), Some("openid name email"));
    fake.set_id_token(sign_json_rs256(
        RSA1_PEM,
        "k1",
        &apple_claims(&fake, &attempt.nonce, "001234.abcdef.1234", "jane@example.com", "true", "false"),
    ));
    // The first authorization carries the name; its `email` is not signed and is ignored.
    let user = r#"{"name":{"firstName":"Jane","lastName":"Appleseed"},"email":"someone-else@example.com"}"#;
    let response = form_post(&app, &fake, &attempt, Some(user)).await;
    expect_logged_in(&app, response, "jane@example.com").await;

    let form = fake.last_token_form();
    assert_eq!(fake.last_token_auth(), None, "client_secret_post: no Basic header");
    assert_eq!(form.get("client_id").map(String::as_str), Some(CLIENT_ID));
    assert_apple_client_secret(form.get("client_secret").expect("a client secret in the form"));

    let (_, me) = app.api_me().await;
    assert_eq!(me["display_name"], "Jane Appleseed");
    assert_eq!(me["email_verified"], true, "Apple's string \"true\" is believed");
    assert_eq!(me["identities"][0]["subject"], "001234.abcdef.1234");
    app.logout().await;

    // Later logins carry no `user` field: the name stays.
    let attempt = Attempt::from_url(&app.begin_login("apple").await);
    fake.set_id_token(sign_json_rs256(
        RSA1_PEM,
        "k1",
        &apple_claims(&fake, &attempt.nonce, "001234.abcdef.1234", "jane@example.com", "true", "false"),
    ));
    let response = form_post(&app, &fake, &attempt, None).await;
    expect_logged_in(&app, response, "jane@example.com").await;
    let (_, again) = app.api_me().await;
    assert_eq!(again["id"], me["id"]);
    assert_eq!(again["display_name"], "Jane Appleseed");
    assert_apple_client_secret(fake.last_token_form().get("client_secret").unwrap());
    assert_eq!(app.user_count().await, 1);
}

async fn a_relay_address_is_verified_and_links_only_to_itself(db: Db) {
    // Jane's account from a trusted provider, under her real address.
    let other = TrustedAccount::start("jane@example.com").await;
    let (fake, app) = with_apple(db, &other.toml).await;
    let real = other.log_in_first(&app).await;

    // Apple with a relay address: verified (Apple sends only is_private_email here), its own account.
    let attempt = Attempt::from_url(&app.begin_login("apple").await);
    let mut claims = apple_claims(&fake, &attempt.nonce, "001234.relay.1", RELAY, "false", "true");
    claims.as_object_mut().unwrap().remove("email_verified");
    fake.set_id_token(sign_json_rs256(RSA1_PEM, "k1", &claims));
    let response = form_post(&app, &fake, &attempt, None).await;
    expect_logged_in(&app, response, RELAY).await;
    let (_, relay) = app.api_me().await;
    assert_ne!(relay["id"], real["id"], "a relay address is not the person's real one");
    assert_eq!(relay["email_verified"], true);
    assert_eq!(relay["identities"][0]["email_verified"], true);
    app.logout().await;

    // A second provider vouching for the same relay address reaches that account.
    other
        .mock
        .set_userinfo(Scripted::json(200, json!({"sub": "g-2", "email": RELAY, "email_verified": true})));
    let browser = app.another_browser();
    crate::dev_flow::mock_login(&browser, "victim").await;
    let (_, linked) = browser.api_me().await;
    assert_eq!(linked["id"], relay["id"]);
    assert_eq!(app.user_count().await, 2);
}

async fn an_unverified_address_never_links_and_a_bad_token_is_refused(db: Db) {
    let other = TrustedAccount::start("jane@example.com").await;
    let (fake, app) = with_apple(db, &other.toml).await;

    // Signed by a key Apple never published: refused, nothing written.
    let attempt = Attempt::from_url(&app.begin_login("apple").await);
    fake.set_id_token(sign_json_rs256(
        RSA2_PEM,
        "k1",
        &apple_claims(&fake, &attempt.nonce, "001234.x.1", "jane@example.com", "true", "false"),
    ));
    expect_refused(&app, form_post(&app, &fake, &attempt, None).await, "signature").await;

    let real = other.log_in_first(&app).await;
    // "false", and is_private_email for an address that is not the relay's: not verified.
    let attempt = Attempt::from_url(&app.begin_login("apple").await);
    fake.set_id_token(sign_json_rs256(
        RSA1_PEM,
        "k1",
        &apple_claims(&fake, &attempt.nonce, "001234.x.2", "jane@example.com", "false", "true"),
    ));
    let response = form_post(&app, &fake, &attempt, None).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let (_, apple) = app.api_me().await;
    assert_ne!(apple["id"], real["id"]);
    assert_eq!(apple["email_verified"], false);
}

/// `loginwith check` for an Apple table: the redirect URI to register (Apple calls it the return
/// URL), how it links, and that loginwith makes the client secret, naming the key but never
/// showing it or the secret.
#[tokio::test(flavor = "multi_thread")]
async fn check_lists_the_return_url_and_how_the_secret_is_made() {
    let fake = FakeOidc::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("apple.toml");
    std::fs::write(
        &file,
        format!(
            "[server]\npublic_url = \"https://app.example.com\"\nbind = \"127.0.0.1:5000\"\n\
             [providers.apple]\nissuer = \"{}\"\nclient_id = \"com.example.web\"\nteam_id = \"{TEAM_ID}\"\n\
             key_id = \"{KEY_ID}\"\nprivate_key_file = \"{}\"\n",
            fake.base,
            key_path()
        ),
    )
    .unwrap();
    let path = file.to_str().unwrap().to_owned();
    let (ok, text) = tokio::task::spawn_blocking(move || {
        crate::config_errors::loginwith(&["--config", &path, "check"], &[])
    })
    .await
    .unwrap();
    assert!(ok, "{text}");
    assert!(text.contains("redirect URI to register: https://app.example.com/callback/apple"), "{text}");
    assert!(text.contains("links accounts by verified e-mail: yes (email_verified; a private relay address only to the same relay address)"), "{text}");
    assert!(
        text.contains(&format!(
            "token endpoint auth: client_secret_post, the secret an ES256 JWT of team {TEAM_ID} made by loginwith (ES256, kid {KEY_ID})"
        )),
        "{text}"
    );
    let key = std::fs::read_to_string(key_path()).unwrap();
    let body = key.lines().nth(1).unwrap();
    assert!(!text.contains(body) && !text.contains("eyJ"), "no key and no secret in the report:\n{text}");
}
