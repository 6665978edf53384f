//! The account page over HTTP, on SQLite and PostgreSQL: who may see it, what it lists, and
//! disconnecting a provider from it (never the last; never from another site's form).

use crate::db_tests;
use crate::dev_flow::{mock_login, one_user_two_providers, profile, two_trusted_mocks};
use crate::helpers::*;
use reqwest::header::ORIGIN;
use reqwest::StatusCode;

db_tests!(
    the_account_page_needs_a_login_and_comes_back_after_it,
    the_account_page_lists_how_you_log_in,
    disconnect_from_the_page_removes_one_provider_but_never_the_last,
    a_disconnect_form_from_another_site_is_refused,
    connect_attaches_an_identity_whose_address_differs,
    connect_refuses_an_identity_that_belongs_to_another_user,
    a_connect_attempt_cannot_be_replayed_into_another_session,
    connect_needs_a_login_and_a_form_from_this_site,
);

/// Clicks "Connect NAME" on the account page: the provider's authorize URL.
async fn start_connect(app: &TestApp, provider: &str) -> String {
    let response =
        app.client.post(app.url("/account/connect")).form(&[("provider", provider)]).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FOUND, "to the provider");
    location(&response)
}

/// The mock provider's answer to that authorize URL: back to our callback with a code.
async fn mock_callback(app: &TestApp, provider: &str, authorize: &str) -> reqwest::Response {
    let state = query_param(authorize, "state").expect("state");
    app.get(&format!("/callback/{provider}?code=good-code&state={state}")).await
}

async fn the_account_page_needs_a_login_and_comes_back_after_it(db: Db) {
    let app = TestApp::builder(db).spawn().await;
    let response = app.get("/account").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/?next=%2Faccount");
    let authorize = app.begin_login_at("/authorize/dev?next=%2Faccount").await;
    let callback = app.dev_decide(&authorize, "me@example.com", true, true).await;
    assert_eq!(location(&app.complete_callback(&callback).await), "/account");
    // The start page links to it.
    let start = expect_page(app.get("/").await, StatusCode::OK, "me@example.com").await;
    assert!(start.contains(r#"href="/account""#), "{start}");
}

async fn the_account_page_lists_how_you_log_in(db: Db) {
    let app = TestApp::builder(db).spawn().await;
    app.login_dev("only@example.com", false).await;
    let page = expect_page(app.get("/account").await, StatusCode::OK, "How you log in").await;
    assert!(page.contains("only@example.com") && page.contains("not verified"), "{page}");
    assert!(page.contains("(this session)"), "{page}");
    assert!(page.contains("Connected 20") && page.contains("last used 20"), "dates: {page}");
    assert!(page.contains("the only way you log in"), "{page}");
    assert!(!page.contains("account/disconnect"), "no button for the last identity: {page}");
}

async fn disconnect_from_the_page_removes_one_provider_but_never_the_last(db: Db) {
    let (_a, _b, app) = one_user_two_providers(db).await;
    let page = expect_page(app.get("/account").await, StatusCode::OK, "How you log in").await;
    assert_eq!(page.matches(r#"action="/account/disconnect""#).count(), 2, "{page}");

    let post = |provider: &str| {
        app.client.post(app.url("/account/disconnect")).form(&[("provider", provider)]).send()
    };
    let response = post("a").await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/account");
    let page =
        expect_page(app.get("/account").await, StatusCode::OK, "no longer logs into this account").await;
    assert!(page.contains("the only way you log in"), "{page}");
    let (_, me) = app.api_me().await;
    assert_eq!(identity_keys(&me), [("b".to_owned(), "me-at-b".to_owned())]);

    // The last one: refused with a message, nothing removed, still logged in.
    post("b").await.unwrap();
    expect_page(app.get("/account").await, StatusCode::OK, "is the only way you log in, so it stays").await;
    let (status, me) = app.api_me().await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(identity_keys(&me).len(), 1);
    // An incomplete form changes nothing.
    app.client.post(app.url("/account/disconnect")).send().await.unwrap();
    expect_page(app.get("/account").await, StatusCode::OK, "That form was incomplete").await;
}

async fn a_disconnect_form_from_another_site_is_refused(db: Db) {
    let (_a, _b, app) = one_user_two_providers(db).await;
    let response = app
        .client
        .post(app.url("/account/disconnect"))
        .header(ORIGIN, "https://evil.example")
        .form(&[("provider", "a")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let (_, me) = app.api_me().await;
    assert_eq!(identity_keys(&me).len(), 2, "nothing disconnected");
}

async fn connect_attaches_an_identity_whose_address_differs(db: Db) {
    let (a, b, app) = two_trusted_mocks(db).await;
    a.set_userinfo(profile("me-at-a", "me@example.com", true));
    mock_login(&app, "a").await;
    let (_, before) = app.api_me().await;
    let page = expect_page(app.get("/account").await, StatusCode::OK, "Connect another provider").await;
    assert!(page.contains(r#"action="/account/connect""#), "{page}");

    // A different, unverified address: it would never link by itself.
    b.set_userinfo(profile("me-at-b", "old-nick@elsewhere.example", false));
    let authorize = start_connect(&app, "b").await;
    let response = mock_callback(&app, "b", &authorize).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/account");
    expect_page(app.get("/account").await, StatusCode::OK, "now logs into this account too").await;
    let (_, after) = app.api_me().await;
    assert_eq!(after["id"], before["id"], "still the same user, still logged in");
    assert_eq!(identity_keys(&after).len(), 2, "{after}");
    assert_eq!(app.user_count().await, 1);

    // The connected identity now logs into this account.
    app.logout().await;
    mock_login(&app, "b").await;
    let (_, via_b) = app.api_me().await;
    assert_eq!(via_b["id"], before["id"]);
}

async fn connect_refuses_an_identity_that_belongs_to_another_user(db: Db) {
    let (a, b, app) = two_trusted_mocks(db).await;
    b.set_userinfo(profile("owner-at-b", "owner@example.com", true));
    mock_login(&app, "b").await;
    let (_, owner) = app.api_me().await;
    app.logout().await;
    a.set_userinfo(profile("me-at-a", "me@example.com", true));
    mock_login(&app, "a").await;
    let (_, me) = app.api_me().await;

    let authorize = start_connect(&app, "b").await;
    let response = mock_callback(&app, "b", &authorize).await;
    assert_eq!(location(&response), "/account");
    expect_page(app.get("/account").await, StatusCode::OK, "already logs into another account here").await;
    let (_, after) = app.api_me().await;
    assert_eq!(after["id"], me["id"]);
    assert_eq!(identity_keys(&after), [("a".to_owned(), "me-at-a".to_owned())], "nothing moved to me");
    // ...and the owner still logs in with it.
    app.logout().await;
    mock_login(&app, "b").await;
    let (_, again) = app.api_me().await;
    assert_eq!(again["id"], owner["id"]);
    assert_eq!(identity_keys(&again).len(), 1, "nothing merged");
}

async fn a_connect_attempt_cannot_be_replayed_into_another_session(db: Db) {
    let (a, b, app) = two_trusted_mocks(db).await;
    a.set_userinfo(profile("alice-at-a", "alice@example.com", true));
    mock_login(&app, "a").await;
    let authorize = start_connect(&app, "b").await;

    // Mallory, logged in elsewhere, takes Alice's attempt (its state) to her own session.
    let mallory = app.another_browser();
    a.set_userinfo(profile("mallory-at-a", "mallory@example.com", true));
    mock_login(&mallory, "a").await;
    b.set_userinfo(profile("mallory-at-b", "mallory@example.com", true));
    let response = mock_callback(&mallory, "b", &authorize).await;
    expect_page(response, StatusCode::BAD_REQUEST, "does not belong to a login started in this browser")
        .await;
    let (_, m) = mallory.api_me().await;
    assert_eq!(identity_keys(&m).len(), 1, "nothing connected to Mallory");
    assert_eq!(b.token_requests(), 0, "the provider was never asked");

    // In Alice's browser the attempt works once, then never again.
    b.set_userinfo(profile("alice-at-b", "alice@example.com", true));
    assert_eq!(location(&mock_callback(&app, "b", &authorize).await), "/account");
    let again = mock_callback(&app, "b", &authorize).await;
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);
    let (_, alice) = app.api_me().await;
    assert_eq!(identity_keys(&alice).len(), 2);
}

async fn connect_needs_a_login_and_a_form_from_this_site(db: Db) {
    let (_a, _b, app) = two_trusted_mocks(db).await;
    let response =
        app.client.post(app.url("/account/connect")).form(&[("provider", "b")]).send().await.unwrap();
    assert_eq!(location(&response), "/?next=%2Faccount", "not logged in: to the login");
    mock_login(&app, "a").await;
    let response = app
        .client
        .post(app.url("/account/connect"))
        .header(ORIGIN, "https://evil.example")
        .form(&[("provider", "b")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response =
        app.client.post(app.url("/account/connect")).form(&[("provider", "nope")]).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}
