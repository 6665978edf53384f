//! The account page over HTTP, on SQLite and PostgreSQL: who may see it, what it lists, and
//! disconnecting a provider from it (never the last; never from another site's form).

use crate::db_tests;
use crate::dev_flow::{mock_login, profile, two_trusted_mocks};
use crate::helpers::*;
use reqwest::header::ORIGIN;
use reqwest::StatusCode;

db_tests!(
    the_account_page_needs_a_login_and_comes_back_after_it,
    the_account_page_lists_how_you_log_in,
    disconnect_from_the_page_removes_one_provider_but_never_the_last,
    a_disconnect_form_from_another_site_is_refused,
);

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
    let (a, b, app) = two_trusted_mocks(db).await;
    a.set_userinfo(profile("me-at-a", "me@example.com", true));
    mock_login(&app, "a").await;
    app.logout().await;
    b.set_userinfo(profile("me-at-b", "me@example.com", true));
    mock_login(&app, "b").await;
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
    let (a, b, app) = two_trusted_mocks(db).await;
    a.set_userinfo(profile("me-at-a", "me@example.com", true));
    mock_login(&app, "a").await;
    app.logout().await;
    b.set_userinfo(profile("me-at-b", "me@example.com", true));
    mock_login(&app, "b").await;
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
