//! Sessions that anonymous traffic leaves behind, per-client rate limits (with and without trusted
//! proxies), and the fresh session a login starts, on SQLite and PostgreSQL.

use crate::helpers::*;
use crate::session_store_tests;
use axum::routing::get;
use axum::Router;
use reqwest::StatusCode;
use time::OffsetDateTime;

session_store_tests!(
    a_flood_of_anonymous_logins_leaves_no_long_lived_sessions,
    a_login_gives_the_session_its_full_life,
    authorize_is_rate_limited_per_client_with_retry_after,
    callback_and_dev_provider_page_are_rate_limited,
    forwarded_addresses_count_only_behind_a_trusted_proxy,
    two_tabs_logging_in_as_different_users_end_with_only_the_second,
);

/// Sessions whose row outlives every login window (`login_timeout_secs` is 600 by default,
/// plus a minute's grace): a day is far beyond both.
fn long_lived() -> Option<OffsetDateTime> {
    Some(OffsetDateTime::now_utc() + time::Duration::days(1))
}

/// `n` cookieless GETs of `path`, each from a fresh client; returns how many got each status.
async fn flood(app: &TestApp, path: &str, n: usize, forwarded: Option<&str>) -> Vec<StatusCode> {
    let mut statuses = Vec::with_capacity(n);
    for _ in 0..n {
        let (client, _jar) = app.new_browser();
        let mut request = client.get(app.url(path));
        if let Some(xff) = forwarded {
            request = request.header("X-Forwarded-For", xff);
        }
        statuses.push(request.send().await.expect("GET").status());
    }
    statuses
}

async fn a_flood_of_anonymous_logins_leaves_no_long_lived_sessions(db: Db) {
    // Without rate limits (the test helper's default), every request starts a login.
    let app = TestApp::builder(db).spawn().await;
    let statuses = flood(&app, "/authorize/dev", 200, None).await;
    assert!(statuses.iter().all(|s| *s == StatusCode::FOUND), "{statuses:?}");
    assert_eq!(count_sessions(&app.db, long_lived()).await, 0, "no anonymous session may live for days");
    let live = count_sessions(&app.db, None).await;
    assert!(live <= 200, "at most one short-lived row per request: {live}");

    // Provider-error links from strangers write nothing at all.
    let before = count_sessions(&app.db, None).await;
    let statuses =
        flood(&app, "/callback/dev?error=access_denied&error_description=x&state=s", 50, None).await;
    assert!(statuses.iter().all(|s| *s == StatusCode::BAD_REQUEST), "{statuses:?}");
    assert_eq!(count_sessions(&app.db, None).await, before);

    // With the default limits, the same flood from one address mostly gets 429 and writes
    // nothing for those.
    let limited = TestApp::builder(db).toml("[limits]\nauthorize_per_minute = 30\n").spawn().await;
    let statuses = flood(&limited, "/authorize/dev", 200, None).await;
    let started = statuses.iter().filter(|s| **s == StatusCode::FOUND).count();
    let refused = statuses.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count();
    assert!((30..=32).contains(&started), "about a minute's budget: {started}");
    assert_eq!(started + refused, 200);
    assert!(count_sessions(&limited.db, None).await <= started as i64);
    assert_eq!(count_sessions(&limited.db, long_lived()).await, 0);
}

async fn a_login_gives_the_session_its_full_life(db: Db) {
    let app = TestApp::builder(db).spawn().await;
    app.login_dev("stays@example.com", true).await;
    // The logged-in session lives two weeks from now (idle expiry); the anonymous one it replaced
    // is gone.
    assert_eq!(count_sessions(&app.db, None).await, 1);
    let thirteen_days = Some(OffsetDateTime::now_utc() + time::Duration::days(13));
    assert_eq!(count_sessions(&app.db, thirteen_days).await, 1);
}

async fn authorize_is_rate_limited_per_client_with_retry_after(db: Db) {
    let app = TestApp::builder(db).toml("[limits]\nauthorize_per_minute = 3\n").spawn().await;
    for _ in 0..3 {
        assert_eq!(app.get("/authorize/dev").await.status(), StatusCode::FOUND);
    }
    let response = app.get("/authorize/dev").await;
    let retry_after: u64 = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("a Retry-After in seconds");
    assert!((1..=20).contains(&retry_after), "one request per 20 s refills: {retry_after}");
    let page = expect_page(response, StatusCode::TOO_MANY_REQUESTS, "Too many requests").await;
    assert!(page.contains("try again in"), "{page}");
    // Other pages are not limited.
    assert_eq!(app.get("/").await.status(), StatusCode::OK);
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
}

async fn callback_and_dev_provider_page_are_rate_limited(db: Db) {
    let app = TestApp::builder(db)
        .toml("[limits]\ncallback_per_minute = 2\ndev_provider_per_minute = 2\n")
        .spawn()
        .await;
    // The first login goes through: one authorize page view and one decision are two requests
    // to the dev provider's page, one callback.
    app.login_dev("first@example.com", true).await;
    app.logout().await;
    let authorize = app.begin_login("dev").await;
    let response = app.get_url(&authorize).await;
    expect_page(response, StatusCode::TOO_MANY_REQUESTS, "Too many requests").await;
    // The server's own calls to the dev provider (token, keys) are not limited: a login from
    // another client address would still work. Two callbacks are allowed, the third is refused.
    assert_eq!(app.get("/callback/dev?state=a&code=b").await.status(), StatusCode::BAD_REQUEST);
    let response = app.get("/callback/dev?state=a&code=b").await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().contains_key("retry-after"));
}

async fn forwarded_addresses_count_only_behind_a_trusted_proxy(db: Db) {
    // Not trusted: X-Forwarded-For is ignored, and every "client" shares 127.0.0.1's budget.
    let app = TestApp::builder(db).toml("[limits]\nauthorize_per_minute = 2\n").spawn().await;
    let mut statuses = Vec::new();
    for i in 0..4 {
        statuses.extend(flood(&app, "/authorize/dev", 1, Some(&format!("198.51.100.{i}"))).await);
    }
    assert_eq!(statuses[2..], [StatusCode::TOO_MANY_REQUESTS, StatusCode::TOO_MANY_REQUESTS]);

    // Behind a trusted proxy (127.0.0.1 here), each forwarded client has its own budget, and the
    // address a client writes itself (left of the proxy's) changes nothing.
    let app = TestApp::builder(db)
        .server("trusted_proxies = [\"127.0.0.1\"]")
        .toml("[limits]\nauthorize_per_minute = 2\n")
        .spawn()
        .await;
    for i in 0..4 {
        let statuses = flood(&app, "/authorize/dev", 2, Some(&format!("198.51.100.{i}"))).await;
        assert_eq!(statuses, [StatusCode::FOUND, StatusCode::FOUND], "client {i}");
    }
    let spoofed = flood(&app, "/authorize/dev", 1, Some("203.0.113.99, 198.51.100.0")).await;
    assert_eq!(spoofed, [StatusCode::TOO_MANY_REQUESTS], "the proxy's hop decides, not the client's");
}

/// Two tabs of one browser log in as two different people, one after the other: the session ends
/// as the second person's alone (the first person's identities and anything else the session
/// held are gone), and nothing written to the session before the login survives it.
async fn two_tabs_logging_in_as_different_users_end_with_only_the_second(db: Db) {
    let app = TestApp::builder(db).spawn().await;
    let tab1 = app.begin_login("dev").await;
    let tab2 = app.begin_login("dev").await;
    let cb1 = app.dev_decide(&tab1, "alice@example.com", true, true).await;
    let cb2 = app.dev_decide(&tab2, "bob@example.com", true, true).await;
    assert_eq!(app.complete_callback(&cb1).await.status(), StatusCode::SEE_OTHER);
    app.assert_logged_in_as("alice@example.com").await;
    assert_eq!(app.complete_callback(&cb2).await.status(), StatusCode::SEE_OTHER);
    app.assert_logged_in_as("bob@example.com").await;
    let (_, me) = app.api_me().await;
    let ids = identity_keys(&me);
    assert_eq!(ids.len(), 1, "{me}");
    assert!(ids[0].1.starts_with("dev-"));
    let (_, alice) = {
        let other = app.another_browser();
        other.login_dev("alice@example.com", true).await;
        other.api_me().await
    };
    assert_ne!(identity_keys(&alice), ids, "bob's session lists bob's identity, not alice's");
}

/// Data an embedding app keeps in the session for an anonymous visitor does not carry over into
/// the logged-in session.
#[tokio::test]
async fn data_kept_before_login_does_not_carry_over() {
    let app = TestApp::builder(Db::Sqlite)
        .embedded(|lw| {
            let host = Router::new()
                .route(
                    "/cart/add",
                    get(|session: tower_sessions::Session| async move {
                        session.insert("shop.cart", vec!["book"]).await.unwrap();
                        "added"
                    }),
                )
                .route(
                    "/cart",
                    get(|session: tower_sessions::Session| async move {
                        let cart: Option<Vec<String>> = session.get("shop.cart").await.unwrap();
                        format!("{cart:?}")
                    }),
                );
            lw.layer(host.merge(lw.routes()))
        })
        .await;
    app.get("/cart/add").await;
    assert_eq!(app.get("/cart").await.text().await.unwrap(), "Some([\"book\"])");
    app.login_dev("shopper@example.com", true).await;
    assert_eq!(app.get("/cart").await.text().await.unwrap(), "None", "a login starts a fresh session");
}
