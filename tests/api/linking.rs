//! Who may link accounts, what counts as a verified address, and identities bound to their
//! issuer, on SQLite and PostgreSQL. The victim's account always comes from a provider that is
//! trusted to verify addresses (`trust_email_verified = true`), so that each test shows the one
//! thing that keeps the attacker out.

use crate::db_tests;
use crate::dev_flow::{mock_login, profile, two_trusted_mocks};
use crate::helpers::*;
use crate::mock_provider::{MockProvider, Scripted};
use axum::routing::get;
use axum::Router;
use loginwith::CurrentUser;
use reqwest::StatusCode;
use serde_json::json;

db_tests!(
    dev_identities_never_link_to_a_trusted_provider_in_either_direction,
    an_untrusted_provider_cannot_vouch_for_an_address,
    an_unverified_address_never_chooses_the_username,
    the_provider_login_name_is_the_username_when_the_address_is_unverified,
    a_later_verified_login_marks_the_address_verified,
    an_unverified_address_is_replaced_by_a_later_verified_one,
    a_changed_issuer_never_reaches_the_old_issuers_users,
    identities_recorded_before_issuers_were_stored_adopt_the_configured_one,
);

/// A trusted mock `[providers.trusted]` and the dev provider.
async fn dev_and_trusted(db: Db) -> (MockProvider, TestApp) {
    let mock = MockProvider::start().await;
    let toml =
        format!("[providers.dev]\n{}", mock.provider_toml_with("trusted", "trust_email_verified = true"));
    let app = TestApp::builder(db).toml(&toml).spawn().await;
    (mock, app)
}

async fn dev_identities_never_link_to_a_trusted_provider_in_either_direction(db: Db) {
    // Dev first, then a trusted provider with the same verified address.
    let (mock, app) = dev_and_trusted(db).await;
    app.login_dev("owner@example.com", true).await;
    let (_, dev_user) = app.api_me().await;
    app.logout().await;
    mock.set_userinfo(profile("owner-1", "owner@example.com", true));
    mock_login(&app, "trusted").await;
    let (_, trusted_user) = app.api_me().await;
    assert_ne!(trusted_user["id"], dev_user["id"], "a dev identity is never a link target");
    assert_eq!(identity_keys(&trusted_user).len(), 1);
    app.logout().await;

    // The other way round: the trusted account exists, and the dev provider claims its address.
    app.login_dev("owner@example.com", true).await;
    let (_, again) = app.api_me().await;
    assert_eq!(again["id"], dev_user["id"], "the dev identity keeps its own account");
    let other = app.another_browser();
    other.login_dev("someone-else@example.com", true).await;
    other.logout().await;
    mock.set_userinfo(profile("victim-1", "victim@example.com", true));
    let victim_browser = app.another_browser();
    mock_login(&victim_browser, "trusted").await;
    let (_, victim) = victim_browser.api_me().await;
    app.logout().await;
    app.login_dev("victim@example.com", true).await;
    let (_, me) = app.api_me().await;
    assert_ne!(me["id"], victim["id"], "the dev provider never logs into a trusted provider's account");
    assert_eq!(identity_keys(&me).len(), 1);
    let (_, victim_now) = victim_browser.api_me().await;
    assert_eq!(identity_keys(&victim_now), [("trusted".to_owned(), "victim-1".to_owned())]);
}

/// A self-hosted GitLab, a Keycloak realm, a generic OAuth 2.0 server: its admins can mark any
/// address verified. Without `trust_email_verified` its claim is not believed at all.
async fn an_untrusted_provider_cannot_vouch_for_an_address(db: Db) {
    let (victim_mock, corp) = (MockProvider::start().await, MockProvider::start().await);
    let toml = format!(
        "{}{}",
        victim_mock.provider_toml_with("trusted", "trust_email_verified = true"),
        corp.provider_toml("corp")
    );
    let app = TestApp::builder(db).toml(&toml).spawn().await;
    victim_mock.set_userinfo(profile("victim-1", "admin@corp.example", true));
    mock_login(&app, "trusted").await;
    let (_, victim) = app.api_me().await;
    assert_eq!(victim["email_verified"], true);
    app.logout().await;

    corp.set_userinfo(profile("mallory", "admin@corp.example", true));
    mock_login(&app, "corp").await;
    let (_, me) = app.api_me().await;
    assert_ne!(me["id"], victim["id"], "an untrusted provider's 'verified' links nothing");
    assert_eq!(me["email_verified"], false, "and does not count as verified: {me}");
    assert_eq!(me["identities"][0]["email_verified"], false, "{me}");
    assert_eq!(me["username"], format!("user-{}", me["id"]), "{me}");
    assert_eq!(app.user_count().await, 2);
}

async fn an_unverified_address_never_chooses_the_username(db: Db) {
    let (a, _b, app) = two_trusted_mocks(db).await;
    a.set_userinfo(profile("x-1", "admin@corp.example", false));
    mock_login(&app, "a").await;
    let (_, me) = app.api_me().await;
    assert_eq!(me["username"], format!("user-{}", me["id"]), "{me}");
    assert_eq!(me["email"], "admin@corp.example");
    assert_eq!(me["email_verified"], false);
    let page = app.get("/").await.text().await.unwrap();
    assert!(!page.contains(">admin<"), "{page}");
}

async fn the_provider_login_name_is_the_username_when_the_address_is_unverified(db: Db) {
    let mock = MockProvider::start().await;
    let toml = mock
        .provider_toml("corp")
        .replace("[providers.corp.userinfo]\n", "[providers.corp.userinfo]\nusername = \"/login\"\n");
    let app = TestApp::builder(db).toml(&toml).spawn().await;
    mock.set_userinfo(Scripted::json(
        200,
        json!({"sub": "7", "login": "Octo.Cat", "email": "admin@corp.example", "email_verified": false}),
    ));
    mock_login(&app, "corp").await;
    let (_, me) = app.api_me().await;
    assert_eq!(me["username"], "octo.cat", "{me}");
    // A login name that is an address is no login name.
    app.logout().await;
    mock.set_userinfo(Scripted::json(
        200,
        json!({"sub": "8", "login": "admin@corp.example", "email": "admin@corp.example"}),
    ));
    mock_login(&app, "corp").await;
    let (_, me) = app.api_me().await;
    assert_ne!(me["username"], "admin", "{me}");
}

async fn a_later_verified_login_marks_the_address_verified(db: Db) {
    let (a, _b, app) = two_trusted_mocks(db).await;
    a.set_userinfo(profile("p-1", "pat@example.com", false));
    mock_login(&app, "a").await;
    let (_, before) = app.api_me().await;
    assert_eq!(before["email_verified"], false);
    app.logout().await;

    a.set_userinfo(profile("p-1", "pat@example.com", true));
    mock_login(&app, "a").await;
    let (_, after) = app.api_me().await;
    assert_eq!(after["id"], before["id"]);
    assert_eq!(after["email_verified"], true, "{after}");
    assert_eq!(after["identities"][0]["email_verified"], true, "{after}");
    // The username stays what it was: usernames do not change under people.
    assert_eq!(after["username"], before["username"]);
}

async fn an_unverified_address_is_replaced_by_a_later_verified_one(db: Db) {
    let (a, _b, app) = two_trusted_mocks(db).await;
    a.set_userinfo(profile("q-1", "old@example.com", false));
    mock_login(&app, "a").await;
    app.logout().await;
    a.set_userinfo(profile("q-1", "new@example.com", true));
    mock_login(&app, "a").await;
    let (_, me) = app.api_me().await;
    assert_eq!(me["email"], "new@example.com");
    assert_eq!(me["email_verified"], true);
    app.logout().await;
    // A verified address is not replaced by another.
    a.set_userinfo(profile("q-1", "third@example.com", true));
    mock_login(&app, "a").await;
    let (_, me) = app.api_me().await;
    assert_eq!(me["email"], "new@example.com");
}

/// The provider `corp` is moved to another issuer (here: another token endpoint origin) whose
/// subjects happen to collide with the old one's. The old users are never handed over.
async fn a_changed_issuer_never_reaches_the_old_issuers_users(db: Db) {
    let old = MockProvider::start().await;
    let app = TestApp::builder(db).toml(&old.provider_toml("corp")).spawn().await;
    old.set_userinfo(profile("42", "first@example.com", false));
    mock_login(&app, "corp").await;
    let (_, first) = app.api_me().await;
    let test_db = app.db.clone();
    drop(app);

    let new = MockProvider::start().await;
    let app = TestApp::builder(db).on(test_db).toml(&new.provider_toml("corp")).spawn().await;
    new.set_userinfo(profile("42", "someone-else@example.com", false));
    let authorize = app.begin_login("corp").await;
    let state = query_param(&authorize, "state").unwrap();
    let page = expect_page(
        app.get(&format!("/callback/corp?code=c&state={state}")).await,
        StatusCode::CONFLICT,
        "known here from another issuer",
    )
    .await;
    assert!(page.contains("nobody was logged in"), "{page}");
    app.assert_logged_out().await;
    assert_eq!(app.user_count().await, 1, "no user written");
    let account = app.store.account(loginwith::UserId(first["id"].as_i64().unwrap())).await.unwrap();
    let account = account.expect("the old user is still there");
    assert_eq!(account.user.email.as_deref(), Some("first@example.com"), "the old user is untouched");
}

async fn identities_recorded_before_issuers_were_stored_adopt_the_configured_one(db: Db) {
    let mock = MockProvider::start().await;
    let app = TestApp::builder(db).toml(&mock.provider_toml("corp")).spawn().await;
    mock.set_userinfo(profile("7", "seven@example.com", false));
    mock_login(&app, "corp").await;
    let (_, first) = app.api_me().await;
    let test_db = app.db.clone();
    drop(app);
    // As the migration leaves rows from before issuers were stored.
    execute(&test_db, "UPDATE identities SET issuer = ''").await;

    let app = TestApp::builder(db).on(test_db).toml(&mock.provider_toml("corp")).spawn().await;
    mock_login(&app, "corp").await;
    let (_, me) = app.api_me().await;
    assert_eq!(me["id"], first["id"], "the identity was adopted by the configured issuer");
}

/// `CurrentUser`, the extractor an embedding app uses, carries `email_verified`.
#[tokio::test]
async fn current_user_exposes_email_verified() {
    let app = TestApp::builder(Db::Sqlite)
        .embedded(|lw| {
            let whoami = Router::new().route(
                "/whoami",
                get(|user: CurrentUser| async move {
                    axum::Json(json!({"email": user.email, "verified": user.email_verified}))
                }),
            );
            lw.layer(whoami.merge(lw.routes()))
        })
        .await;
    for (email, verified) in [("yes@example.com", true), ("no@example.com", false)] {
        app.login_dev(email, verified).await;
        let me: serde_json::Value = app.get("/whoami").await.json().await.unwrap();
        assert_eq!(me, json!({"email": email, "verified": verified}));
        app.logout().await;
    }
}
