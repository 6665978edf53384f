//! The Okta, Auth0 and Keycloak presets (issue 12, item 9) against the fake OpenID Connect
//! provider, on SQLite and PostgreSQL: Keycloak's issuer made from `base_url` and `realm` (and a
//! realm that does not match what the server publishes makes the provider unavailable), Auth0's
//! trailing-slash issuer, and for all three: their verified addresses do not reach another
//! provider's account unless `trust_email_verified` says so. (Okta's and Auth0's `domain` always
//! makes an https issuer, which a loopback fake cannot serve; the configuration tests check it, and
//! Okta is tested with its issuer given directly.) Each has a refusal: a realm that does not match,
//! an issuer without its slash, a token for another client.

use crate::db_tests;
use crate::fake_oidc::*;
use crate::helpers::*;
use crate::mock_provider::{MockProvider, Scripted};
use openidconnect::IssuerUrl;
use reqwest::StatusCode;
use serde_json::json;

db_tests!(
    keycloak_logs_in_from_its_realm_and_does_not_link_by_default,
    keycloak_with_another_realm_than_published_is_unavailable,
    auth0_logs_in_with_its_trailing_slash_issuer,
    a_trusted_keycloak_realm_links_by_verified_address,
    okta_does_not_link_by_default_and_refuses_a_token_of_another_client,
);

/// A provider trusted to verify addresses, whose user `user@example.com` logged in first.
async fn victim_first(app: &TestApp, victim: &MockProvider) -> serde_json::Value {
    victim.set_userinfo(Scripted::json(
        200,
        json!({"sub": "victim-1", "email": "user@example.com", "email_verified": true}),
    ));
    crate::dev_flow::mock_login(app, "victim").await;
    let (_, me) = app.api_me().await;
    app.logout().await;
    me
}

/// Logs in through `name` at `fake`, whose issuer is `issuer`.
async fn login(app: &TestApp, fake: &FakeOidc, name: &str, issuer: &str) -> reqwest::Response {
    let attempt = Attempt::from_url(&app.begin_login(name).await);
    let claims = fake.claims(&attempt.nonce).set_issuer(IssuerUrl::new(issuer.to_owned()).unwrap());
    fake.set_id_token(fake.sign(claims, &key1()));
    callback(app, name, &attempt, Some(issuer)).await
}

fn keycloak_toml(fake: &FakeOidc, realm: &str, extra: &str) -> String {
    format!(
        "[providers.sso]\npreset = \"keycloak\"\nbase_url = \"{}\"\nrealm = \"{realm}\"\n\
         client_id = \"{CLIENT_ID}\"\nclient_secret = \"{CLIENT_SECRET}\"\n{extra}\n",
        fake.base
    )
}

/// A Keycloak realm `main` at a fake, beside a trusted provider whose user `user@example.com`
/// logged in first; returns the fake, the realm's issuer, the app and that first user.
async fn keycloak_beside_a_trusted_account(
    db: Db,
    trust: bool,
) -> (FakeOidc, String, TestApp, serde_json::Value) {
    let fake = FakeOidc::start().await;
    let issuer = format!("{}/realms/main", fake.base);
    fake.set_issuer(&issuer);
    let victim = MockProvider::start().await;
    let trust = if trust { "trust_email_verified = true" } else { "" };
    let toml = format!(
        "{}{}",
        victim.provider_toml_with("victim", "trust_email_verified = true"),
        keycloak_toml(&fake, "main", trust)
    );
    let app = TestApp::builder(db).toml(&toml).spawn().await;
    let first = victim_first(&app, &victim).await;
    (fake, issuer, app, first)
}

async fn keycloak_logs_in_from_its_realm_and_does_not_link_by_default(db: Db) {
    let (fake, issuer, app, first) = keycloak_beside_a_trusted_account(db, false).await;
    let response = login(&app, &fake, "sso", &issuer).await;
    expect_logged_in(&app, response, "user@example.com").await;
    let (_, me) = app.api_me().await;
    assert_ne!(me["id"], first["id"], "a realm's 'verified' does not reach another provider's account");
    assert_eq!(me["identities"][0]["provider"], "sso");
    assert_eq!(me["identities"][0]["subject"], "user-1");
    assert_eq!(me["email_verified"], false, "not believed without trust_email_verified");
    assert!(fake.discovery_requests() >= 1);
}

async fn keycloak_with_another_realm_than_published_is_unavailable(db: Db) {
    let fake = FakeOidc::start().await;
    fake.set_issuer(&format!("{}/realms/main", fake.base));
    let app = TestApp::builder(db).toml(&keycloak_toml(&fake, "other", "")).spawn().await;
    expect_page(app.get("/authorize/sso").await, StatusCode::SERVICE_UNAVAILABLE, "unavailable").await;
    assert_eq!(fake.token_requests(), 0);
    app.assert_logged_out().await;
    assert_eq!(app.user_count().await, 0);
}

async fn auth0_logs_in_with_its_trailing_slash_issuer(db: Db) {
    let fake = FakeOidc::start().await;
    let issuer = format!("{}/", fake.base);
    fake.set_issuer(&issuer);
    let toml = format!(
        "[providers.auth0]\nissuer = \"{issuer}\"\nclient_id = \"{CLIENT_ID}\"\nclient_secret = \"{CLIENT_SECRET}\"\n"
    );
    let app = TestApp::builder(db).toml(&toml).spawn().await;
    let response = login(&app, &fake, "auth0", &issuer).await;
    expect_logged_in(&app, response, "user@example.com").await;
    // An ID token whose `iss` lacks the slash is another issuer: refused.
    let other = app.another_browser();
    let refused = login(&other, &fake, "auth0", &fake.base).await;
    assert!(refused.status().is_client_error(), "{}", refused.status());
    other.assert_logged_out().await;
    assert_eq!(app.user_count().await, 1);
}

async fn a_trusted_keycloak_realm_links_by_verified_address(db: Db) {
    let (fake, issuer, app, first) = keycloak_beside_a_trusted_account(db, true).await;
    expect_logged_in(&app, login(&app, &fake, "sso", &issuer).await, "user@example.com").await;
    let (_, me) = app.api_me().await;
    assert_eq!(me["id"], first["id"], "a realm you run and trust joins the same account");
}

async fn okta_does_not_link_by_default_and_refuses_a_token_of_another_client(db: Db) {
    // The org authorization server at the fake (`issuer` instead of `domain`, which makes https).
    let fake = FakeOidc::start().await;
    let issuer = fake.base.clone();
    let victim = MockProvider::start().await;
    let toml = format!(
        "{}[providers.okta]\nissuer = \"{issuer}\"\nclient_id = \"{CLIENT_ID}\"\nclient_secret = \"{CLIENT_SECRET}\"\n",
        victim.provider_toml_with("victim", "trust_email_verified = true")
    );
    let app = TestApp::builder(db).toml(&toml).spawn().await;
    let first = victim_first(&app, &victim).await;

    // A token for another client of the same organisation: refused, nothing written.
    let attempt = Attempt::from_url(&app.begin_login("okta").await);
    let claims = fake
        .claims(&attempt.nonce)
        .set_issuer(IssuerUrl::new(issuer.clone()).unwrap())
        .set_audiences(vec![openidconnect::Audience::new("another-client".into())]);
    fake.set_id_token(fake.sign(claims, &key1()));
    let refused = callback(&app, "okta", &attempt, Some(&issuer)).await;
    expect_page(refused, StatusCode::FORBIDDEN, "Login refused").await;
    app.assert_logged_out().await;
    assert_eq!(app.user_count().await, 1, "only the first user");

    // Its verified address is not believed by default: an account of its own.
    expect_logged_in(&app, login(&app, &fake, "okta", &issuer).await, "user@example.com").await;
    let (_, me) = app.api_me().await;
    assert_ne!(me["id"], first["id"]);
    assert_eq!(me["email_verified"], false);
}
