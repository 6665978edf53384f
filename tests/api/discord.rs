//! The Discord preset against the mock's fake of `/users/@me`, on SQLite and PostgreSQL: the
//! snowflake id is the identity, the avatar is built from its hash, only a `verified` account's
//! address can reach an existing account, and an account without an address is refused without
//! writing anything.

use crate::db_tests;
use crate::helpers::*;
use crate::mock_provider::{MockProvider, Scripted};
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};

db_tests!(
    a_verified_account_logs_in_with_its_snowflake_and_avatar,
    an_unverified_address_never_reaches_an_existing_account,
    an_account_without_an_address_is_refused,
);

/// A mock of Discord and the app with it as `[providers.discord]` (plus `more_toml`).
async fn with_discord(db: Db, more_toml: &str) -> (MockProvider, TestApp) {
    let mock = MockProvider::start().await;
    let toml = format!("{more_toml}{}", mock.preset_toml("discord", "discord"));
    let app = TestApp::builder(db).toml(&toml).spawn().await;
    (mock, app)
}

async fn discord_callback(app: &TestApp) -> Response {
    let authorize = app.begin_login("discord").await;
    let state = query_param(&authorize, "state").expect("state");
    app.get(&format!("/callback/discord?code=good-code&state={state}")).await
}

fn nelly(verified: bool) -> Value {
    json!({"id": "80351110224678912", "username": "nelly", "global_name": "Nelly",
           "discriminator": "0", "avatar": "8342729096ea3675442027381ff50dfe",
           "verified": verified, "email": "nelly@example.com", "mfa_enabled": false})
}

async fn a_verified_account_logs_in_with_its_snowflake_and_avatar(db: Db) {
    let (mock, app) = with_discord(db, "").await;
    mock.set_userinfo(Scripted::json(200, nelly(true)));
    let authorize = app.begin_login("discord").await;
    assert_eq!(query_param(&authorize, "scope").as_deref(), Some("identify email"));
    assert_eq!(query_param(&authorize, "client_id").as_deref(), Some("discord-client"));
    assert!(query_param(&authorize, "code_challenge").is_some(), "PKCE");
    let state = query_param(&authorize, "state").unwrap();
    let response = app.get(&format!("/callback/discord?code=good-code&state={state}")).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    app.assert_logged_in_as("nelly@example.com").await;

    let (_, me) = app.api_me().await;
    assert_eq!(me["username"], "nelly");
    assert_eq!(me["display_name"], "Nelly");
    assert_eq!(
        me["avatar_url"],
        "https://cdn.discordapp.com/avatars/80351110224678912/8342729096ea3675442027381ff50dfe.png"
    );
    assert_eq!(me["identities"][0]["provider"], "discord");
    assert_eq!(me["identities"][0]["subject"], "80351110224678912");
    assert_eq!(me["identities"][0]["email_verified"], true);
    assert_eq!(mock.last_userinfo_auth().as_deref(), Some("Bearer mock-token"));
}

async fn an_unverified_address_never_reaches_an_existing_account(db: Db) {
    // The victim's account comes from a provider trusted to verify addresses, so a verified
    // address from Discord *could* link to it: only the unverified one must not.
    let victim_mock = MockProvider::start().await;
    victim_mock.set_userinfo(Scripted::json(
        200,
        json!({"sub": "victim-1", "email": "nelly@example.com", "email_verified": true}),
    ));
    let victim_toml = victim_mock.provider_toml_with("victim", "trust_email_verified = true");
    let (mock, app) = with_discord(db, &victim_toml).await;
    crate::dev_flow::mock_login(&app, "victim").await;
    let (_, victim) = app.api_me().await;
    app.logout().await;

    mock.set_userinfo(Scripted::json(200, nelly(false)));
    assert_eq!(discord_callback(&app).await.status(), StatusCode::SEE_OTHER);
    let (_, mallory) = app.api_me().await;
    assert_ne!(mallory["id"], victim["id"], "an account of its own, never the victim's");
    assert_eq!(mallory["identities"][0]["email_verified"], false);
    assert_eq!(app.user_count().await, 2);
    app.logout().await;

    // Verified, the same address is the same person: it joins the victim's account.
    let other = app.another_browser();
    mock.set_userinfo(Scripted::json(
        200,
        json!({"id": "1234567890", "username": "nelly2",
        "verified": true, "email": "nelly@example.com"}),
    ));
    assert_eq!(discord_callback(&other).await.status(), StatusCode::SEE_OTHER);
    let (_, linked) = other.api_me().await;
    assert_eq!(linked["id"], victim["id"]);
}

async fn an_account_without_an_address_is_refused(db: Db) {
    let (mock, app) = with_discord(db, "").await;
    let mut phone_only = nelly(false);
    phone_only.as_object_mut().unwrap().remove("email");
    mock.set_userinfo(Scripted::json(200, phone_only));
    expect_page(discord_callback(&app).await, StatusCode::BAD_GATEWAY, "did not share an e-mail address")
        .await;
    app.assert_logged_out().await;
    assert_eq!(app.user_count().await, 0, "nothing written");
}
