//! The GitHub preset against the mock's fake of GitHub's API (`/user` and `/user/emails`), on
//! SQLite and PostgreSQL: only the primary *verified* address logs in (never `json[0]`), an account
//! without one is refused without touching anyone's account, and the numeric id is the identity.

use crate::db_tests;
use crate::helpers::*;
use crate::mock_provider::{MockProvider, Scripted};
use reqwest::{Response, StatusCode};
use serde_json::json;

db_tests!(
    primary_verified_address_wins_over_the_first_entry,
    numeric_id_is_the_identity_subject,
    unverified_only_addresses_are_refused,
    unverified_address_cannot_log_into_an_existing_account,
    bad_verification_code_is_a_502,
    emails_endpoint_failure_is_a_502,
    user_without_id_is_a_502,
    primary_address_on_entry_35_of_40_is_found_with_one_page_of_100,
    github_enterprise_uses_its_own_endpoints_and_does_not_link_by_default,
    github_enterprise_without_a_verified_primary_address_is_refused,
);

/// A mock of GitHub and the app with it as `[providers.github]` (plus `more_toml`).
async fn with_github(db: Db, more_toml: &str) -> (MockProvider, TestApp) {
    let mock = MockProvider::start().await;
    let toml = format!("{more_toml}{}", mock.github_toml("github"));
    let app = TestApp::builder(db).toml(&toml).spawn().await;
    (mock, app)
}

/// Begin at GitHub, come back with a good state and code.
async fn github_callback(app: &TestApp) -> Response {
    let authorize = app.begin_login("github").await;
    let state = query_param(&authorize, "state").expect("state");
    app.get(&format!("/callback/github?code=good-code&state={state}")).await
}

fn octocat(id: u64, login: &str) -> Scripted {
    // `/user`'s own `email` is the public profile address: never the one to log in with.
    Scripted::json(
        200,
        json!({"id": id, "login": login, "name": "The Octocat", "email": "public@example.com",
               "avatar_url": "https://avatars.example/u/1"}),
    )
}

async fn primary_verified_address_wins_over_the_first_entry(db: Db) {
    let (mock, app) = with_github(db, "").await;
    mock.set_userinfo(octocat(4242, "octocat"));
    mock.set_emails(Scripted::json(
        200,
        json!([
            {"email": "victim@example.com", "primary": false, "verified": false},
            {"email": "old@example.com", "primary": false, "verified": true},
            {"email": "octo@example.com", "primary": true, "verified": true},
        ]),
    ));
    let authorize = app.begin_login("github").await;
    assert_eq!(query_param(&authorize, "scope").as_deref(), Some("read:user user:email"));
    assert_eq!(query_param(&authorize, "client_id").as_deref(), Some("gh-client"));
    let state = query_param(&authorize, "state").unwrap();
    let response = app.get(&format!("/callback/github?code=good-code&state={state}")).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/");

    app.assert_logged_in_as("octo@example.com").await;
    let page = app.get("/").await.text().await.unwrap();
    assert!(!page.contains("victim@example.com"), "{page}");
    assert!(!page.contains("public@example.com"), "{page}");
    let (_, me) = app.api_me().await;
    assert_eq!(me["email"], "octo@example.com");
    assert_eq!(me["username"], "octo");

    assert_eq!(mock.token_requests(), 1);
    assert_eq!(mock.userinfo_requests(), 1);
    assert_eq!(mock.emails_requests(), 1);
    assert_eq!(mock.last_userinfo_auth().as_deref(), Some("Bearer mock-token"));
    assert_eq!(mock.last_emails_auth().as_deref(), Some("Bearer mock-token"));
    let form = mock.last_token_form();
    assert_eq!(form.get("client_id").map(String::as_str), Some("gh-client"));
    assert_eq!(form.get("client_secret").map(String::as_str), Some("gh-secret"));
    assert_eq!(app.user_count().await, 1);
}

async fn numeric_id_is_the_identity_subject(db: Db) {
    let (mock, app) = with_github(db, "").await;
    mock.set_userinfo(octocat(4242, "octocat"));
    let response = github_callback(&app).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    app.assert_logged_in_as("someone@example.com").await;
    let (_, me) = app.api_me().await;
    assert_eq!(identity_keys(&me), [("github".to_owned(), "4242".to_owned())], "{me}");
    let first_id = me["id"].clone();
    app.logout().await;

    // A renamed login is the same account: the id, not the login, is the identity.
    mock.set_userinfo(octocat(4242, "renamed-octocat"));
    let response = github_callback(&app).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let (_, me) = app.api_me().await;
    assert_eq!(me["id"], first_id);
    assert_eq!(identity_keys(&me), [("github".to_owned(), "4242".to_owned())], "{me}");
    assert_eq!(app.user_count().await, 1);
}

async fn unverified_only_addresses_are_refused(db: Db) {
    let (mock, app) = with_github(db, "").await;
    mock.set_userinfo(octocat(666, "mallory"));
    mock.set_emails(Scripted::json(
        200,
        json!([{"email": "victim@example.com", "primary": true, "verified": false}]),
    ));
    let page = expect_page(
        github_callback(&app).await,
        StatusCode::FORBIDDEN,
        "GitHub has no verified primary e-mail address",
    )
    .await;
    assert!(page.contains("No verified e-mail address"), "{page}");
    assert!(!page.contains("victim@example.com"), "{page}");
    assert_eq!(mock.token_requests(), 1);
    assert_eq!(mock.emails_requests(), 1);
    app.assert_logged_out().await;
    assert_eq!(app.user_count().await, 0);
}

/// The account-takeover the seed allowed: someone adds the victim's address to their GitHub
/// account without verifying it, and logs in as the victim.
async fn unverified_address_cannot_log_into_an_existing_account(db: Db) {
    // The victim's account comes from a provider trusted to verify addresses, so a verified
    // address from GitHub *could* link to it: only the unverified one must not.
    let victim_mock = MockProvider::start().await;
    victim_mock.set_userinfo(Scripted::json(
        200,
        json!({"sub": "victim-1", "email": "victim@example.com", "email_verified": true}),
    ));
    let victim_toml = victim_mock.provider_toml_with("victim", "trust_email_verified = true");
    let (mock, app) = with_github(db, &victim_toml).await;
    crate::dev_flow::mock_login(&app, "victim").await;
    let (_, victim) = app.api_me().await;
    app.logout().await;
    assert_eq!(app.user_count().await, 1);

    mock.set_userinfo(octocat(666, "mallory"));
    mock.set_emails(Scripted::json(
        200,
        json!([{"email": "victim@example.com", "primary": true, "verified": false}]),
    ));
    expect_page(github_callback(&app).await, StatusCode::FORBIDDEN, "no verified primary e-mail address")
        .await;
    app.assert_logged_out().await;
    assert_eq!(app.user_count().await, 1, "no user may be written");

    // With the victim's address listed first, unverified, and the attacker's own as primary: the
    // attacker gets an account of their own, never the victim's.
    mock.set_emails(Scripted::json(
        200,
        json!([
            {"email": "victim@example.com", "primary": false, "verified": false},
            {"email": "mallory@example.com", "primary": true, "verified": true},
        ]),
    ));
    let response = github_callback(&app).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    app.assert_logged_in_as("mallory@example.com").await;
    let (_, mallory) = app.api_me().await;
    assert_ne!(mallory["id"], victim["id"]);
    app.logout().await;

    // The victim's account still has only its own identity.
    crate::dev_flow::mock_login(&app, "victim").await;
    let (_, me) = app.api_me().await;
    assert_eq!(me["id"], victim["id"]);
    assert_eq!(me["identities"].as_array().map(Vec::len), Some(1), "{me}");
    assert_eq!(me["identities"][0]["provider"], "victim");
    assert_eq!(app.user_count().await, 2);
}

async fn bad_verification_code_is_a_502(db: Db) {
    let (mock, app) = with_github(db, "").await;
    mock.set_token(Scripted::json(
        200,
        json!({"error": "bad_verification_code",
               "error_description": "The code passed is incorrect or expired.",
               "error_uri": "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/#bad-verification-code"}),
    ));
    let page =
        expect_page(github_callback(&app).await, StatusCode::BAD_GATEWAY, "bad_verification_code").await;
    assert!(page.contains("Login with GitHub failed"), "{page}");
    assert_eq!(mock.token_requests(), 1);
    assert_eq!(mock.userinfo_requests(), 0);
    assert_eq!(mock.emails_requests(), 0);
    app.assert_logged_out().await;
    assert_eq!(app.user_count().await, 0);
}

async fn emails_endpoint_failure_is_a_502(db: Db) {
    let (mock, app) = with_github(db, "").await;
    mock.set_userinfo(octocat(4242, "octocat"));
    mock.set_emails(Scripted::json(403, json!({"message": "Resource not accessible by integration"})));
    expect_page(github_callback(&app).await, StatusCode::BAD_GATEWAY, "e-mail endpoint answered HTTP 403")
        .await;
    assert_eq!(mock.emails_requests(), 1);
    app.assert_logged_out().await;
    assert_eq!(app.user_count().await, 0);
}

async fn user_without_id_is_a_502(db: Db) {
    let (mock, app) = with_github(db, "").await;
    mock.set_userinfo(Scripted::json(200, json!({"login": "ghost", "id": null})));
    expect_page(github_callback(&app).await, StatusCode::BAD_GATEWAY, "GitHub sent no account id").await;
    assert_eq!(mock.token_requests(), 1);
    app.assert_logged_out().await;
    assert_eq!(app.user_count().await, 0);
}

/// `/user/emails` is paged at 30 by default: with 40 addresses and the primary verified one 35th,
/// a default request would never see it. One request with `per_page=100` does.
async fn primary_address_on_entry_35_of_40_is_found_with_one_page_of_100(db: Db) {
    let (mock, app) = with_github(db, "").await;
    mock.set_userinfo(octocat(4242, "octocat"));
    let emails: Vec<_> = (1..=40)
        .map(|i| {
            let primary = i == 35;
            json!({"email": format!("address{i}@example.com"), "primary": primary, "verified": primary || i % 2 == 0})
        })
        .collect();
    mock.set_emails(Scripted::json(200, json!(emails)));
    let response = github_callback(&app).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    app.assert_logged_in_as("address35@example.com").await;
    assert_eq!(mock.emails_requests(), 1);
    assert_eq!(mock.last_emails_query().get("per_page").map(String::as_str), Some("100"));
    assert_eq!(app.user_count().await, 1);
}

/// GitHub Enterprise Server (`base_url`): the login goes to its `/login/oauth/...`, the account and
/// addresses come from its `/api/v3`, and its verified address does not reach an account of
/// another provider unless `trust_email_verified` says so (its admins can switch verification off).
async fn github_enterprise_uses_its_own_endpoints_and_does_not_link_by_default(db: Db) {
    let victim_mock = MockProvider::start().await;
    victim_mock.set_userinfo(Scripted::json(
        200,
        json!({"sub": "victim-1", "email": "octo@example.com", "email_verified": true}),
    ));
    let victim_toml = victim_mock.provider_toml_with("victim", "trust_email_verified = true");
    let mock = MockProvider::start().await;
    let toml = format!("{victim_toml}{}", mock.github_enterprise_toml("ghe"));
    let app = TestApp::builder(db).toml(&toml).spawn().await;
    crate::dev_flow::mock_login(&app, "victim").await;
    let (_, victim) = app.api_me().await;
    app.logout().await;

    mock.set_userinfo(octocat(4242, "octocat"));
    mock.set_emails(Scripted::json(
        200,
        json!([{"email": "octo@example.com", "primary": true, "verified": true}]),
    ));
    let authorize = app.begin_login("ghe").await;
    assert!(authorize.starts_with(&format!("{}/login/oauth/authorize?", mock.base)), "{authorize}");
    assert_eq!(query_param(&authorize, "client_id").as_deref(), Some("ghe-client"));
    let state = query_param(&authorize, "state").unwrap();
    let response = app.get(&format!("/callback/ghe?code=good-code&state={state}")).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    app.assert_logged_in_as("octo@example.com").await;
    let (_, me) = app.api_me().await;
    assert_ne!(me["id"], victim["id"], "not linked to the other provider's account");
    assert_eq!(me["identities"][0]["subject"], "4242");
    assert_eq!((mock.token_requests(), mock.userinfo_requests(), mock.emails_requests()), (1, 1, 1));
}

async fn github_enterprise_without_a_verified_primary_address_is_refused(db: Db) {
    let mock = MockProvider::start().await;
    let app = TestApp::builder(db).toml(&mock.github_enterprise_toml("ghe")).spawn().await;
    mock.set_userinfo(octocat(4242, "octocat"));
    mock.set_emails(Scripted::json(
        200,
        json!([{"email": "octo@example.com", "primary": true, "verified": false},
               {"email": "other@example.com", "primary": false, "verified": true}]),
    ));
    let authorize = app.begin_login("ghe").await;
    let state = query_param(&authorize, "state").unwrap();
    let response = app.get(&format!("/callback/ghe?code=good-code&state={state}")).await;
    expect_page(response, StatusCode::FORBIDDEN, "No verified e-mail address").await;
    app.assert_logged_out().await;
    assert_eq!(app.user_count().await, 0, "nothing written");
}
