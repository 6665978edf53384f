//! The JSON API for single-page apps over HTTP, on SQLite and PostgreSQL: the provider list, logout
//! and disconnecting a provider, each change refused when it comes from another origin or without
//! a header a plain form cannot send, with the exact status and `code`, and nothing changed.

use crate::db_tests;
use crate::dev_flow::{mock_login, one_user_two_providers, two_trusted_mocks};
use crate::helpers::*;
use reqwest::header::{CONTENT_TYPE, ORIGIN};
use reqwest::{RequestBuilder, StatusCode};
use serde_json::Value;

db_tests!(
    providers_lists_each_with_its_login_url_and_next,
    api_logout_ends_the_session_only_for_a_same_origin_change,
    cross_origin_and_form_like_changes_are_refused_and_change_nothing,
    disconnect_removes_a_provider_but_never_the_last,
    disconnect_needs_a_login_and_a_linked_provider,
    cors_is_off_by_default,
    cors_lets_only_the_named_origins_in_with_credentials,
);

/// Request headers, as (name, value) pairs.
type Headers<'a> = &'a [(&'a str, &'a str)];

/// A change as the app's own script sends it.
fn same_origin(app: &TestApp, request: RequestBuilder) -> RequestBuilder {
    request.header(ORIGIN, app.address.clone()).header(CONTENT_TYPE, "application/json")
}

/// Asserts a JSON error's status and code; returns the body.
async fn expect_error(response: reqwest::Response, status: StatusCode, code: &str) -> Value {
    let got = response.status();
    let body: Value = response.json().await.expect("a JSON error");
    assert_eq!(got, status, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["error"], code, "{body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    body
}

async fn providers_lists_each_with_its_login_url_and_next(db: Db) {
    let (_a, _b, app) = two_trusted_mocks(db).await;
    let body: Value = app.get("/api/providers?next=%2Fdashboard%3Ftab%3D2").await.json().await.unwrap();
    let providers = body["providers"].as_array().expect("a list");
    let names: Vec<_> = providers.iter().map(|p| p["name"].as_str().unwrap_or_default()).collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(providers[0]["display_name"], "Mock");
    assert_eq!(providers[0]["available"], true);
    assert_eq!(providers[0]["login_url"], "/authorize/a?next=%2Fdashboard%3Ftab%3D2");
    // The login URL works: it starts a login that ends at `next`.
    let authorize = app.begin_login_at("/authorize/a?next=%2Fdashboard%3Ftab%3D2").await;
    let state = query_param(&authorize, "state").expect("state");
    let response = app.get(&format!("/callback/a?code=good-code&state={state}")).await;
    assert_eq!(location(&response), "/dashboard?tab=2");
    // A `next` off this site is dropped, not passed on.
    let body: Value =
        app.get("/api/providers?next=https%3A%2F%2Fevil.example%2F").await.json().await.unwrap();
    assert_eq!(body["providers"][0]["login_url"], "/authorize/a");
}

async fn api_logout_ends_the_session_only_for_a_same_origin_change(db: Db) {
    let app = TestApp::builder(db).spawn().await;
    app.login_dev("leaving@example.com", true).await;
    let response = same_origin(&app, app.client.post(app.url("/api/logout"))).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    app.assert_logged_out().await;
    // Sec-Fetch-Site instead of Origin, and X-Requested-With instead of JSON, also do.
    app.login_dev("leaving@example.com", true).await;
    let response = app
        .client
        .post(app.url("/api/logout"))
        .header("Sec-Fetch-Site", "same-origin")
        .header("X-Requested-With", "fetch")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    app.assert_logged_out().await;
}

async fn cross_origin_and_form_like_changes_are_refused_and_change_nothing(db: Db) {
    let (_a, _b, app) = one_user_two_providers(db).await;
    let (_, before) = app.api_me().await;
    assert_eq!(identity_keys(&before).len(), 2, "{before}");

    for (what, path, method) in
        [("logout", "/api/logout", "POST"), ("disconnect", "/api/me/identities/a", "DELETE")]
    {
        let request = |headers: Headers| {
            let mut request = app.client.request(method.parse().unwrap(), app.url(path));
            for (k, v) in headers {
                request = request.header(*k, *v);
            }
            request.send()
        };
        let json = ("content-type", "application/json");
        let cases: [(Headers, StatusCode, &str); 6] = [
            (&[("origin", "https://evil.example"), json], StatusCode::FORBIDDEN, "cross_origin"),
            (&[("origin", "null"), json], StatusCode::FORBIDDEN, "cross_origin"),
            (&[("sec-fetch-site", "cross-site"), json], StatusCode::FORBIDDEN, "cross_origin"),
            (&[("sec-fetch-site", "same-site"), json], StatusCode::FORBIDDEN, "cross_origin"),
            (&[json], StatusCode::FORBIDDEN, "cross_origin"),
            (
                &[("origin", app.address.as_str()), ("content-type", "application/x-www-form-urlencoded")],
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "json_required",
            ),
        ];
        for (headers, status, code) in cases {
            expect_error(request(headers).await.unwrap(), status, code).await;
            let (status, now) = app.api_me().await;
            assert_eq!(status, StatusCode::OK, "{what} {headers:?}: still logged in");
            assert_eq!(identity_keys(&now).len(), 2, "{what} {headers:?}: nothing disconnected");
        }
    }
}

async fn disconnect_removes_a_provider_but_never_the_last(db: Db) {
    let (_a, _b, app) = one_user_two_providers(db).await;

    let response =
        same_origin(&app, app.client.delete(app.url("/api/me/identities/a"))).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let (_, me) = app.api_me().await;
    assert_eq!(identity_keys(&me), [("b".to_owned(), "me-at-b".to_owned())], "{me}");

    // The last one stays, and so does the login.
    let response =
        same_origin(&app, app.client.delete(app.url("/api/me/identities/b"))).send().await.unwrap();
    expect_error(response, StatusCode::CONFLICT, "last_identity").await;
    let (status, me) = app.api_me().await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(identity_keys(&me).len(), 1);

    // The disconnected identity no longer logs into this account: logging in with it again makes
    // it a new identity, linked again by the verified address (both providers are trusted).
    app.logout().await;
    mock_login(&app, "a").await;
    let (_, again) = app.api_me().await;
    assert_eq!(again["id"], me["id"]);
    assert_eq!(identity_keys(&again).len(), 2);
}

async fn disconnect_needs_a_login_and_a_linked_provider(db: Db) {
    let app = TestApp::builder(db).spawn().await;
    let response =
        same_origin(&app, app.client.delete(app.url("/api/me/identities/dev"))).send().await.unwrap();
    expect_error(response, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    app.login_dev("one@example.com", true).await;
    let response =
        same_origin(&app, app.client.delete(app.url("/api/me/identities/github"))).send().await.unwrap();
    expect_error(response, StatusCode::NOT_FOUND, "not_linked").await;
    let response =
        same_origin(&app, app.client.delete(app.url("/api/me/identities/dev"))).send().await.unwrap();
    expect_error(response, StatusCode::CONFLICT, "last_identity").await;
    assert_eq!(app.user_count().await, 1);
}

const SPA: &str = "http://spa.localhost:5173";

/// `POST /api/logout` as a script on `origin` sends it.
async fn logout_from(app: &TestApp, origin: &str) -> reqwest::Response {
    let request = app.client.post(app.url("/api/logout")).header(ORIGIN, origin);
    request.header(CONTENT_TYPE, "application/json").send().await.unwrap()
}

/// A CORS preflight from `origin` for a DELETE with a JSON body.
async fn preflight(app: &TestApp, path: &str, origin: &str) -> reqwest::Response {
    app.client
        .request(reqwest::Method::OPTIONS, app.url(path))
        .header(ORIGIN, origin)
        .header("Access-Control-Request-Method", "DELETE")
        .header("Access-Control-Request-Headers", "content-type")
        .send()
        .await
        .unwrap()
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

async fn cors_is_off_by_default(db: Db) {
    let app = TestApp::builder(db).spawn().await;
    app.login_dev("cors@example.com", true).await;
    let response = preflight(&app, "/api/me", SPA).await;
    assert_eq!(header(&response, "access-control-allow-origin"), None);
    let response = app.client.get(app.url("/api/me")).header(ORIGIN, SPA).send().await.unwrap();
    assert_eq!(
        header(&response, "access-control-allow-origin"),
        None,
        "a browser keeps the answer from {SPA}"
    );
    let response = logout_from(&app, SPA).await;
    expect_error(response, StatusCode::FORBIDDEN, "cross_origin").await;
    app.assert_logged_in_as("cors@example.com").await;
}

async fn cors_lets_only_the_named_origins_in_with_credentials(db: Db) {
    let app = TestApp::builder(db)
        .toml(&format!("[api]\nallowed_origins = [\"{SPA}\", \"https://other.example\"]\n"))
        .spawn()
        .await;
    app.login_dev("cors@example.com", true).await;

    // The preflight names the origin (never `*`), allows credentials, DELETE and Content-Type.
    let response = preflight(&app, "/api/me/sessions/x", SPA).await;
    assert!(response.status().is_success(), "{}", response.status());
    assert_eq!(header(&response, "access-control-allow-origin"), Some(SPA));
    assert_eq!(header(&response, "access-control-allow-credentials"), Some("true"));
    let methods = header(&response, "access-control-allow-methods").unwrap_or_default().to_owned();
    assert!(methods.contains("DELETE") && methods.contains("POST"), "{methods}");
    let headers = header(&response, "access-control-allow-headers").unwrap_or_default().to_lowercase();
    assert!(headers.contains("content-type") && headers.contains("x-requested-with"), "{headers}");
    // Another origin gets nothing.
    let response = preflight(&app, "/api/me", "https://evil.example").await;
    assert_eq!(header(&response, "access-control-allow-origin"), None);

    // A read with the cookie, from the SPA.
    let response = app.client.get(app.url("/api/me")).header(ORIGIN, SPA).send().await.unwrap();
    assert_eq!(header(&response, "access-control-allow-origin"), Some(SPA));
    assert_eq!(header(&response, "access-control-allow-credentials"), Some("true"));
    assert!(header(&response, "vary").unwrap_or_default().to_lowercase().contains("origin"));
    let me: Value = response.json().await.unwrap();
    assert_eq!(me["email"], "cors@example.com");

    // Changes from the SPA pass the origin check, still with the JSON header; others do not.
    let change = |origin: &str, content_type: &str| {
        app.client
            .delete(app.url("/api/me/sessions/no-such-session"))
            .header(ORIGIN, origin.to_owned())
            .header(CONTENT_TYPE, content_type.to_owned())
            .send()
    };
    expect_error(change(SPA, "application/json").await.unwrap(), StatusCode::NOT_FOUND, "session_not_found")
        .await;
    expect_error(
        change(SPA, "text/plain").await.unwrap(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "json_required",
    )
    .await;
    expect_error(
        change("https://evil.example", "application/json").await.unwrap(),
        StatusCode::FORBIDDEN,
        "cross_origin",
    )
    .await;
    let response = logout_from(&app, SPA).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(header(&response, "access-control-allow-origin"), Some(SPA));
    app.assert_logged_out().await;
}
