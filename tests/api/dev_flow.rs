//! The whole login story through the built-in development provider, on SQLite and PostgreSQL.

use crate::helpers::*;
use crate::mock_provider::{MockProvider, Scripted};
use crate::session_store_tests;
use reqwest::StatusCode;

session_store_tests!(
    dev_login_then_logout,
    session_id_changes_at_login,
    logout_by_get_does_nothing,
    returning_user_keeps_their_account,
    username_collisions_get_a_number,
    concurrent_first_logins_create_one_user,
    verified_address_links_and_unverified_does_not,
    login_survives_a_restart,
    two_tabs_can_log_in_at_once,
    healthz_answers,
    logged_in_user_is_sent_home_by_authorize,
    localhost_is_sent_to_the_address_the_cookies_belong_to,
    api_me_shows_an_identity_linked_from_another_browser,
);

async fn dev_login_then_logout(db: Db) {
    let app = TestApp::builder(db).spawn().await;
    let home = app.get("/").await.text().await.unwrap();
    assert!(home.contains(r#"<a href="/authorize/dev">Login with Dev</a>"#), "{home}");
    app.assert_logged_out().await;

    app.login_dev("alice@example.com", true).await;
    let (_, me) = app.api_me().await;
    assert_eq!(me["username"], "alice");
    assert_eq!(me["identities"][0]["provider"], "dev");
    assert!(me["identities"][0]["subject"].as_str().unwrap().starts_with("dev-"));
    let page = app.get("/").await.text().await.unwrap();
    assert!(page.contains("alice@example.com") && page.contains(">alice<"), "{page}");

    let response = app.client.post(app.url("/logout")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    app.assert_logged_out().await;
    let page = app.get("/").await.text().await.unwrap();
    assert!(page.contains("Login with Dev") && !page.contains("alice@example.com"));
}

async fn session_id_changes_at_login(db: Db) {
    let app = TestApp::builder(db).spawn().await;
    let authorize = app.begin_login("dev").await;
    let before = app.session_cookie().expect("authorize sets the session cookie");
    let callback = app.dev_decide(&authorize, "fix@example.com", true, true).await;
    app.complete_callback(&callback).await;
    let after = app.session_cookie().expect("session cookie after login");
    assert_ne!(before, after, "the session id must change at login (session fixation)");
    app.assert_logged_in_as("fix@example.com").await;

    // The pre-login session id no longer logs anyone in.
    let (planted, planted_jar) = app.new_browser();
    let url = url::Url::parse(&app.address).unwrap();
    planted_jar.add_cookie_str(&format!("{}={before}", loginwith::SESSION_COOKIE), &url);
    let response = planted.get(app.url("/api/me")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

async fn logout_by_get_does_nothing(db: Db) {
    let app = TestApp::builder(db).spawn().await;
    app.login_dev("stay@example.com", true).await;
    let response = app.get("/logout").await;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    app.assert_logged_in_as("stay@example.com").await;

    // A cross-site form post is refused too.
    let response =
        app.client.post(app.url("/logout")).header("Origin", "https://evil.example").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    app.assert_logged_in_as("stay@example.com").await;
}

async fn returning_user_keeps_their_account(db: Db) {
    let app = TestApp::builder(db).spawn().await;
    app.login_dev("back@example.com", true).await;
    let (_, first) = app.api_me().await;
    app.client.post(app.url("/logout")).send().await.unwrap();
    app.login_dev("back@example.com", true).await;
    let (_, second) = app.api_me().await;
    assert_eq!(first["id"], second["id"]);
    assert_eq!(app.user_count().await, 1);
}

async fn username_collisions_get_a_number(db: Db) {
    let app = TestApp::builder(db).spawn().await;
    app.login_dev("sam@one.example", true).await;
    app.client.post(app.url("/logout")).send().await.unwrap();
    app.login_dev("sam@two.example", true).await;
    let (_, me) = app.api_me().await;
    assert_eq!(me["username"], "sam2");
    app.client.post(app.url("/logout")).send().await.unwrap();
    // An unverified address does not choose a username: it gets a neutral one.
    app.login_dev("Sam@three.example", false).await;
    let (_, me) = app.api_me().await;
    assert_eq!(me["username"], format!("user-{}", me["id"]), "{me}");
    assert_eq!(app.user_count().await, 3);
}

async fn concurrent_first_logins_create_one_user(db: Db) {
    let app = TestApp::builder(db).spawn().await;
    // Several browsers get a code for the same identity, then all come back at once.
    let mut callbacks = Vec::new();
    for _ in 0..6 {
        let browser = app.another_browser();
        let authorize = browser.begin_login("dev").await;
        let callback = browser.dev_decide(&authorize, "race@example.com", true, true).await;
        callbacks.push((browser, callback));
    }
    let results = futures::future::join_all(callbacks.iter().map(|(b, cb)| b.complete_callback(cb))).await;
    for r in &results {
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
    }
    let mut ids = Vec::new();
    for (browser, _) in &callbacks {
        let (status, me) = browser.api_me().await;
        assert_eq!(status, StatusCode::OK);
        ids.push(me["id"].clone());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "every browser is the same user");
    assert_eq!(app.user_count().await, 1);
}

/// Two mock providers that are both trusted to verify addresses, as `[providers.a]` and `[providers.b]`.
pub async fn two_trusted_mocks(db: Db) -> (MockProvider, MockProvider, TestApp) {
    let (a, b) = (MockProvider::start().await, MockProvider::start().await);
    let toml = format!(
        "{}{}",
        a.provider_toml_with("a", "trust_email_verified = true"),
        b.provider_toml_with("b", "trust_email_verified = true")
    );
    let app = TestApp::builder(db).toml(&toml).spawn().await;
    (a, b, app)
}

/// [`two_trusted_mocks`], and one user who logs in with both (`me-at-a`, `me-at-b`, linked by the
/// verified `me@example.com`), logged in through `b`.
pub async fn one_user_two_providers(db: Db) -> (MockProvider, MockProvider, TestApp) {
    let (a, b, app) = two_trusted_mocks(db).await;
    a.set_userinfo(profile("me-at-a", "me@example.com", true));
    mock_login(&app, "a").await;
    app.logout().await;
    b.set_userinfo(profile("me-at-b", "me@example.com", true));
    mock_login(&app, "b").await;
    (a, b, app)
}

pub fn profile(sub: &str, email: &str, verified: bool) -> Scripted {
    Scripted::json(200, serde_json::json!({"sub": sub, "email": email, "email_verified": verified}))
}

async fn verified_address_links_and_unverified_does_not(db: Db) {
    let (a, b, app) = two_trusted_mocks(db).await;
    // Owner logs in with a verified address at provider a.
    a.set_userinfo(profile("owner-at-a", "owner@example.com", true));
    mock_login(&app, "a").await;
    let (_, owner) = app.api_me().await;
    app.logout().await;

    // The same address, *unverified* at provider b: a new user, not the owner's account.
    b.set_userinfo(profile("attacker", "owner@example.com", false));
    mock_login(&app, "b").await;
    let (_, me) = app.api_me().await;
    assert_ne!(me["id"], owner["id"], "an unverified address must never log into someone else's account");
    assert_eq!(me["email_verified"], false, "{me}");
    app.logout().await;

    // Verified at provider b: linked to the owner.
    b.set_userinfo(profile("owner-at-b", "Owner@Example.com", true));
    mock_login(&app, "b").await;
    let (_, me) = app.api_me().await;
    assert_eq!(me["id"], owner["id"]);
    assert_eq!(me["email_verified"], true);
    assert_eq!(me["identities"].as_array().unwrap().len(), 2);
}

async fn login_survives_a_restart(db: Db) {
    let app = TestApp::builder(db).spawn().await;
    app.login_dev("persist@example.com", true).await;
    let cookie = app.session_cookie().unwrap();
    let test_db = app.db.clone();
    drop(app);
    let again = TestApp::builder(db).on(test_db).spawn().await;
    let url = url::Url::parse(&again.address).unwrap();
    again.jar.add_cookie_str(&format!("{}={cookie}", loginwith::SESSION_COOKIE), &url);
    again.assert_logged_in_as("persist@example.com").await;
}

async fn two_tabs_can_log_in_at_once(db: Db) {
    let app = TestApp::builder(db).spawn().await;
    let tab1 = app.begin_login("dev").await;
    let tab2 = app.begin_login("dev").await;
    let cb2 = app.dev_decide(&tab2, "tabs@example.com", true, true).await;
    let cb1 = app.dev_decide(&tab1, "tabs@example.com", true, true).await;
    assert_eq!(app.complete_callback(&cb1).await.status(), StatusCode::SEE_OTHER);
    app.assert_logged_in_as("tabs@example.com").await;
    // The second tab's answer still finds its attempt (and, being logged in already, lands home).
    assert_eq!(app.complete_callback(&cb2).await.status(), StatusCode::SEE_OTHER);
    app.assert_logged_in_as("tabs@example.com").await;
}

async fn logged_in_user_is_sent_home_by_authorize(db: Db) {
    let app = TestApp::builder(db).spawn().await;
    app.login_dev("home@example.com", true).await;
    let response = app.get("/authorize/dev").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/");
}

/// `/api/me` is always current: an identity linked in another browser shows up in a session that
/// was logged in before, without logging in again.
async fn api_me_shows_an_identity_linked_from_another_browser(db: Db) {
    let (a, b, app) = two_trusted_mocks(db).await;
    a.set_userinfo(profile("someone-at-a", "someone@example.com", true));
    mock_login(&app, "a").await;
    let (_, first) = app.api_me().await;
    assert_eq!(identity_keys(&first), [("a".to_owned(), "someone-at-a".to_owned())]);

    // Another browser logs in through b with the same verified address: linked.
    let other = app.another_browser();
    b.set_userinfo(profile("someone-at-b", "someone@example.com", true));
    mock_login(&other, "b").await;

    let (_, me) = app.api_me().await;
    assert_eq!(me["id"], first["id"]);
    assert_eq!(
        identity_keys(&me),
        [("a".to_owned(), "someone-at-a".to_owned()), ("b".to_owned(), "someone-at-b".to_owned())],
        "the first browser sees the new identity without logging in again"
    );
    assert_eq!(me["identities"][1]["email_verified"], true);
}

async fn localhost_is_sent_to_the_address_the_cookies_belong_to(db: Db) {
    let app = TestApp::builder(db).spawn().await;
    let response = app
        .client
        .get(app.url("/authorize/dev?x=1"))
        .header("Host", format!("localhost:{}", app.port))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(location(&response), app.url("/authorize/dev?x=1"));
    assert!(app.session_cookie().is_none(), "no session is started under the wrong host name");
    // The canonical name itself is served normally.
    assert_eq!(app.get("/").await.status(), StatusCode::OK);
}

async fn healthz_answers(db: Db) {
    let app = TestApp::builder(db).spawn().await;
    let response = app.get("/healthz").await;
    assert_eq!(response.status(), StatusCode::OK);
}

/// Logs in through the mock provider by building the callback it would redirect to.
pub async fn mock_login(app: &TestApp, name: &str) {
    let authorize = app.begin_login(name).await;
    let state = query_param(&authorize, "state").unwrap();
    let response = app.get(&format!("{}/callback/{name}?code=good-code&state={state}", app.base)).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "{}", response.text().await.unwrap_or_default());
}
