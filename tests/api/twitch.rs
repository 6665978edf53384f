//! The Twitch preset (issue 12, item 7) against the fake OpenID Connect provider standing in for
//! `https://id.twitch.tv/oauth2`, on SQLite and PostgreSQL: the authorization request carries the
//! OpenID Connect `claims` parameter asking for the address (Twitch shares it no other way) and
//! the scopes `openid user:read:email`; the secret goes in the form body, never as Basic; a
//! verified address joins an account a trusted provider made, an unverified one never does; a
//! token for another client is refused with nothing written. And the general mechanism the
//! `claims` parameter rides on: `[providers.NAME.authorize_params]` merged over the preset's, the
//! parameters loginwith sends itself refused.

use crate::db_tests;
use crate::fake_oidc::*;
use crate::helpers::*;
use crate::mock_provider::TrustedAccount;
use serde_json::{json, Value};

db_tests!(
    twitch_asks_for_the_address_with_the_claims_parameter,
    twitch_posts_its_secret_and_a_verified_address_links,
    twitch_unverified_address_does_not_link,
    twitch_token_for_another_client_is_refused_and_nothing_is_written,
    configured_authorize_params_are_merged_over_the_presets,
);

/// What Twitch is asked for, as the brief for item 7 gives it.
fn expected_claims() -> Value {
    let wanted = json!({"email": null, "email_verified": null, "picture": null, "preferred_username": null});
    json!({"id_token": wanted, "userinfo": wanted})
}

/// The app with the fake as `[providers.twitch]` (after `before`, with `extra` in its table).
async fn twitch_app(db: Db, fake: &FakeOidc, before: &str, extra: &str) -> TestApp {
    let toml = format!(
        "{before}[providers.twitch]\nissuer = \"{}\"\nclient_id = \"{CLIENT_ID}\"\nclient_secret = \"{CLIENT_SECRET}\"\n{extra}\n",
        fake.base
    );
    TestApp::builder(db).toml(&toml).spawn().await
}

/// A Twitch ID token's claims for `nonce`: the ones the `claims` parameter asked for.
fn twitch_claims(fake: &FakeOidc, nonce: &str, email: &str, verified: bool) -> Value {
    let now = now_secs();
    json!({
        "iss": fake.base, "aud": CLIENT_ID, "exp": now + 300, "iat": now, "nonce": nonce,
        "sub": "713936733", "email": email, "email_verified": verified,
        "picture": "https://static-cdn.jtvnw.net/jtv_user_pictures/nelly-profile_image-300x300.png",
        "preferred_username": "nelly",
    })
}

/// Begins a Twitch login in `app`, has the fake mint `claims(nonce)` and comes back.
async fn twitch_login(
    app: &TestApp,
    fake: &FakeOidc,
    claims: impl FnOnce(&str) -> Value,
) -> reqwest::Response {
    let attempt = Attempt::from_url(&app.begin_login("twitch").await);
    fake.set_id_token(sign_json_rs256(RSA1_PEM, "k1", &claims(&attempt.nonce)));
    callback(app, "twitch", &attempt, Some(&fake.base)).await
}

/// A trusted provider's account for `user@example.com`, made first, beside Twitch.
async fn beside_a_trusted_account(db: Db) -> (FakeOidc, TrustedAccount, TestApp, Value) {
    let fake = FakeOidc::start().await;
    let victim = TrustedAccount::start("user@example.com").await;
    let app = twitch_app(db, &fake, &victim.toml, "").await;
    let first = victim.log_in_first(&app).await;
    (fake, victim, app, first)
}

async fn twitch_asks_for_the_address_with_the_claims_parameter(db: Db) {
    let fake = FakeOidc::start().await;
    let app = twitch_app(db, &fake, "", "").await;
    let attempt = Attempt::from_url(&app.begin_login("twitch").await);
    let claims: Value = serde_json::from_str(&attempt.param("claims").expect("a claims parameter"))
        .expect("the claims parameter is JSON");
    assert_eq!(claims, expected_claims());
    assert_eq!(attempt.param("scope").as_deref(), Some("openid user:read:email"));

    fake.set_id_token(sign_json_rs256(
        RSA1_PEM,
        "k1",
        &twitch_claims(&fake, &attempt.nonce, "nelly@example.com", false),
    ));
    let response = callback(&app, "twitch", &attempt, Some(&fake.base)).await;
    expect_logged_in(&app, response, "nelly@example.com").await;
    let (_, me) = app.api_me().await;
    assert_eq!(me["identities"][0]["provider"], "twitch");
    assert_eq!(me["identities"][0]["subject"], "713936733");
    assert_eq!(me["username"], "nelly", "the unverified address picks no username: {me}");
    assert_eq!(
        me["avatar_url"],
        "https://static-cdn.jtvnw.net/jtv_user_pictures/nelly-profile_image-300x300.png"
    );
    assert_eq!(fake.userinfo_requests(), 0, "the ID token carried the address");
}

async fn twitch_posts_its_secret_and_a_verified_address_links(db: Db) {
    let (fake, _victim, app, first) = beside_a_trusted_account(db).await;
    let response =
        twitch_login(&app, &fake, |nonce| twitch_claims(&fake, nonce, "user@example.com", true)).await;
    expect_logged_in(&app, response, "user@example.com").await;
    let (_, me) = app.api_me().await;
    assert_eq!(me["id"], first["id"], "Twitch's verified address is believed: {me}");
    assert_eq!(me["identities"].as_array().map(Vec::len), Some(2), "{me}");
    assert_eq!(app.user_count().await, 1);

    let form = fake.last_token_form();
    assert_eq!(form.get("client_id").map(String::as_str), Some(CLIENT_ID));
    assert_eq!(form.get("client_secret").map(String::as_str), Some(CLIENT_SECRET));
    assert_eq!(fake.last_token_auth(), None, "no Basic header: Twitch takes the secret in the form only");
}

async fn twitch_unverified_address_does_not_link(db: Db) {
    let (fake, _victim, app, first) = beside_a_trusted_account(db).await;
    let response =
        twitch_login(&app, &fake, |nonce| twitch_claims(&fake, nonce, "user@example.com", false)).await;
    expect_logged_in(&app, response, "user@example.com").await;
    let (_, me) = app.api_me().await;
    assert_ne!(me["id"], first["id"], "an unverified address never joins an account");
    assert_eq!(me["email_verified"], false, "{me}");
    assert_eq!(app.user_count().await, 2);
}

async fn twitch_token_for_another_client_is_refused_and_nothing_is_written(db: Db) {
    let fake = FakeOidc::start().await;
    let app = twitch_app(db, &fake, "", "").await;
    let response = twitch_login(&app, &fake, |nonce| {
        let mut claims = twitch_claims(&fake, nonce, "nelly@example.com", true);
        claims["aud"] = json!("another-twitch-app");
        claims
    })
    .await;
    expect_refused(&app, response, "not meant for this application").await;

    // Nor one without the attempt's nonce (replayed from another login).
    let response = twitch_login(&app, &fake, |nonce| {
        let mut claims = twitch_claims(&fake, nonce, "nelly@example.com", true);
        claims.as_object_mut().unwrap().remove("nonce");
        claims
    })
    .await;
    expect_refused(&app, response, "nonce").await;
    assert_eq!(fake.token_requests(), 2);
}

/// `[providers.twitch.authorize_params]` adds Twitch's `force_verify` beside the preset's `claims`,
/// and a configured `claims` replaces the preset's.
async fn configured_authorize_params_are_merged_over_the_presets(db: Db) {
    let fake = FakeOidc::start().await;
    let own_claims = r#"{"id_token":{"email":{"essential":true},"email_verified":null}}"#;
    let extra = format!(
        "[providers.twitch.authorize_params]\nforce_verify = \"true\"\n\
         [providers.twitch-own]\npreset = \"twitch\"\nissuer = \"{}\"\nclient_id = \"{CLIENT_ID}\"\n\
         client_secret = \"{CLIENT_SECRET}\"\n[providers.twitch-own.authorize_params]\nclaims = '{own_claims}'\n",
        fake.base
    );
    let app = twitch_app(db, &fake, "", &extra).await;
    let attempt = Attempt::from_url(&app.begin_login("twitch").await);
    assert_eq!(attempt.param("force_verify").as_deref(), Some("true"));
    let claims: Value = serde_json::from_str(&attempt.param("claims").unwrap()).unwrap();
    assert_eq!(claims, expected_claims(), "the preset's claims stay");

    let attempt = Attempt::from_url(&app.another_browser().begin_login("twitch-own").await);
    let claims: Value = serde_json::from_str(&attempt.param("claims").unwrap()).unwrap();
    assert_eq!(claims, serde_json::from_str::<Value>(own_claims).unwrap());
    assert_eq!(attempt.param("force_verify"), None);
    // Each parameter once: a configured one is not sent beside the preset's.
    let url = url::Url::parse(&attempt.url).unwrap();
    assert_eq!(url.query_pairs().filter(|(k, _)| k == "claims").count(), 1);
}

#[test]
fn the_parameters_loginwith_sends_itself_cannot_be_configured() {
    let toml = format!(
        "[providers.twitch]\nclient_id = \"{CLIENT_ID}\"\nclient_secret = \"{CLIENT_SECRET}\"\n\
         [providers.twitch.authorize_params]\nstate = \"fixed\"\nnonce = \"fixed\"\ncode_challenge = \"x\"\n\
         redirect_uri = \"https://evil.example/cb\"\nscope = \"openid\"\nresponse_type = \"token\"\n\
         prompt = \"consent\"\n"
    );
    let problems = loginwith::Config::from_toml(&toml).unwrap_err().0.join("\n");
    for name in ["state", "nonce", "code_challenge", "redirect_uri", "scope", "response_type"] {
        let expected =
            format!("`providers.twitch.authorize_params.{name}`: loginwith sends this parameter itself");
        assert!(problems.contains(&expected), "missing {expected:?} in:\n{problems}");
    }
    assert!(!problems.contains("authorize_params.prompt"), "{problems}");
}
