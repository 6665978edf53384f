//! The gateway's endpoints over HTTP, with the test itself playing the reverse proxy from
//! 127.0.0.1 (a trusted proxy here): `check` with and without a login, per-host rules, the
//! redirect mode, `start` and `rd` (one test per open-redirect trick), `denied`, `logout`, the
//! cookie's domain, and `[access]`'s `verified_only` and `allowed_providers`. The real nginx and
//! Caddy in front of it are in `proxies.rs`.

use crate::db_tests;
use crate::helpers::*;
use reqwest::header::{ACCEPT, ORIGIN, SET_COOKIE};
use reqwest::StatusCode;

db_tests!(
    the_gateway_is_off_unless_enabled,
    check_answers_401_then_200_with_the_identity_headers,
    check_sends_the_email_only_when_it_is_verified,
    per_host_rules_refuse_on_one_host_and_admit_on_another,
    forwarded_headers_count_only_from_trusted_proxies,
    redirect_mode_sends_browsers_to_start_and_api_clients_a_401,
    start_goes_to_the_only_provider_and_the_login_ends_at_rd,
    start_with_a_logged_in_browser_goes_straight_to_rd,
    denied_names_the_user_and_offers_to_log_out,
    gateway_logout_returns_to_rd_and_refuses_other_sites,
    cookie_domain_shares_the_session_and_is_off_by_default,
    verified_only_and_allowed_providers_refuse_at_login_and_at_check,
);

const RULES: &str = "[gateway]\nenabled = true\nallowed_redirect_hosts = [\"127.0.0.1\", \".example.com\"]\n\
     [[gateway.rules]]\nhost = \"admin.example.com\"\nallowed_emails = [\"boss@example.com\"]\n";

async fn gateway_app(db: Db, extra: &str) -> TestApp {
    TestApp::builder(db)
        .server("trusted_proxies = [\"127.0.0.1\"]")
        .toml(&format!("{RULES}{extra}"))
        .spawn()
        .await
}

/// `check` as a proxy asks it about `original`.
async fn check(app: &TestApp, original: &str) -> reqwest::Response {
    app.client.get(app.url("/gateway/check")).header("X-Original-URL", original).send().await.expect("check")
}

fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

async fn the_gateway_is_off_unless_enabled(db: Db) {
    let app = TestApp::builder(db).spawn().await;
    for path in ["/gateway/check", "/gateway/start", "/gateway/denied"] {
        assert_eq!(app.get(path).await.status(), StatusCode::NOT_FOUND, "{path}");
    }
}

async fn check_answers_401_then_200_with_the_identity_headers(db: Db) {
    let app = gateway_app(db, "").await;
    let response = check(&app, "https://app.example.com/page").await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    app.login_dev("alice@example.com", true).await;
    let response = check(&app, "https://app.example.com/page").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "x-auth-request-user").as_deref(), Some("alice"));
    assert_eq!(header(&response, "x-auth-request-email").as_deref(), Some("alice@example.com"));
    assert_eq!(header(&response, "x-auth-request-name").as_deref(), Some("alice"));
    assert_eq!(header(&response, "x-auth-request-provider").as_deref(), Some("dev"));
    assert_eq!(header(&response, "cache-control").as_deref(), Some("no-store"));
    // Forwarded headers instead of X-Original-URL.
    let response = app
        .client
        .get(app.url("/gateway/check"))
        .header("X-Forwarded-Host", "app.example.com")
        .header("X-Forwarded-Proto", "https")
        .header("X-Forwarded-Uri", "/x")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    app.logout().await;
    assert_eq!(check(&app, "https://app.example.com/page").await.status(), StatusCode::UNAUTHORIZED);
}

async fn check_sends_the_email_only_when_it_is_verified(db: Db) {
    let app = gateway_app(db, "").await;
    app.login_dev("maybe@example.com", false).await;
    let response = check(&app, "https://app.example.com/").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        header(&response, "x-auth-request-email").as_deref(),
        Some(""),
        "an unverified address is not passed on"
    );
    assert!(header(&response, "x-auth-request-user").is_some());
}

async fn per_host_rules_refuse_on_one_host_and_admit_on_another(db: Db) {
    let app = gateway_app(db, "").await;
    app.login_dev("alice@example.com", true).await;
    let refused = check(&app, "https://admin.example.com/settings").await;
    let page = expect_page(refused, StatusCode::FORBIDDEN, "alice@example.com").await;
    assert!(page.contains("admin.example.com"), "{page}");
    assert!(
        page.contains(r#"action="/gateway/logout?rd=https%3A%2F%2Fadmin.example.com%2Fsettings""#),
        "{page}"
    );
    let refused = check(&app, "https://admin.example.com/settings").await;
    assert_eq!(
        location(&refused),
        format!("{}/gateway/denied?rd=https%3A%2F%2Fadmin.example.com%2Fsettings", app.address),
        "the 403 names the refusal page for proxies that show their own"
    );
    assert_eq!(check(&app, "https://app.example.com/").await.status(), StatusCode::OK);
    let boss = app.another_browser();
    boss.login_dev("boss@example.com", true).await;
    assert_eq!(check(&boss, "https://admin.example.com/settings").await.status(), StatusCode::OK);
    // The host is compared as URLs carry it.
    assert_eq!(check(&app, "https://ADMIN.Example.com/").await.status(), StatusCode::FORBIDDEN);
}

async fn forwarded_headers_count_only_from_trusted_proxies(db: Db) {
    // Without trusted proxies the forwarded host is unknown: per-host rules cannot apply, so the
    // check refuses rather than letting a client pick the host whose rule suits it.
    let app = TestApp::builder(db).toml(RULES).spawn().await;
    app.login_dev("boss@example.com", true).await;
    let response = check(&app, "https://admin.example.com/").await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    // Without per-host rules, the host does not matter.
    let open = TestApp::builder(db).toml("[gateway]\nenabled = true\n").spawn().await;
    open.login_dev("anyone@example.com", true).await;
    assert_eq!(check(&open, "https://admin.example.com/").await.status(), StatusCode::OK);
}

async fn redirect_mode_sends_browsers_to_start_and_api_clients_a_401(db: Db) {
    let app = gateway_app(db, "").await;
    let redirect = TestApp::builder(db)
        .server("trusted_proxies = [\"127.0.0.1\"]")
        .toml(&RULES.replace("enabled = true\n", "enabled = true\nunauthenticated = \"redirect\"\n"))
        .spawn()
        .await;
    let ask = |app: &TestApp, accept: &str| {
        app.client
            .get(app.url("/gateway/check"))
            .header("X-Original-URL", "https://app.example.com/d/1")
            .header(ACCEPT, accept.to_owned())
            .send()
    };
    let response = ask(&redirect, "text/html").await.unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(
        location(&response),
        format!("{}/gateway/start?rd=https%3A%2F%2Fapp.example.com%2Fd%2F1", redirect.address)
    );
    assert_eq!(ask(&redirect, "application/json").await.unwrap().status(), StatusCode::UNAUTHORIZED);
    // The default mode answers 401 to browsers too, naming the same start URL in Location for the
    // proxy's own redirect (nginx: auth_request_set + error_page 401).
    let response = ask(&app, "text/html").await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        location(&response),
        format!("{}/gateway/start?rd=https%3A%2F%2Fapp.example.com%2Fd%2F1", app.address)
    );
    // A query survives whole (nginx alone would cut `rd` at its first `&`); a host that is not
    // allowed is no rd at all.
    let response = check(&app, "https://app.example.com/p?a=1&b=2").await;
    assert_eq!(
        location(&response),
        format!("{}/gateway/start?rd=https%3A%2F%2Fapp.example.com%2Fp%3Fa%3D1%26b%3D2", app.address)
    );
    let response = check(&app, "https://evil.example/p").await;
    assert_eq!(location(&response), format!("{}/gateway/start", app.address));
}

async fn start_goes_to_the_only_provider_and_the_login_ends_at_rd(db: Db) {
    let app = gateway_app(db, "").await;
    let rd = format!("http://127.0.0.1:{}/somewhere?x=1", app.port);
    let encoded: String = url::form_urlencoded::byte_serialize(rd.as_bytes()).collect();
    let response = app.get(&format!("/gateway/start?rd={encoded}")).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), format!("/authorize/dev?rd={encoded}"));
    let authorize = app.begin_login_at(&location(&response)).await;
    let callback = app.dev_decide(&authorize, "rd@example.com", true, true).await;
    let response = app.complete_callback(&callback).await;
    assert_eq!(location(&response), rd, "back to rd after the login");
}

async fn start_with_a_logged_in_browser_goes_straight_to_rd(db: Db) {
    let app = gateway_app(db, "").await;
    app.login_dev("in@example.com", true).await;
    let response = app.get("/gateway/start?rd=https%3A%2F%2Fapp.example.com%2Fx").await;
    assert_eq!(location(&response), "https://app.example.com/x");
}

async fn denied_names_the_user_and_offers_to_log_out(db: Db) {
    let app = gateway_app(db, "").await;
    let response = app.get("/gateway/denied?rd=https%3A%2F%2Fadmin.example.com%2F").await;
    assert_eq!(
        location(&response),
        "/gateway/start?rd=https%3A%2F%2Fadmin.example.com%2F",
        "not logged in: log in"
    );
    app.login_dev("alice@example.com", true).await;
    let page = expect_page(
        app.get("/gateway/denied?rd=https%3A%2F%2Fadmin.example.com%2F").await,
        StatusCode::FORBIDDEN,
        "may not open <strong>admin.example.com</strong>",
    )
    .await;
    assert!(page.contains("alice@example.com") && page.contains("Log out"), "{page}");
    assert!(!page.contains("gateway/check"), "the page never leads back into a check");
}

async fn gateway_logout_returns_to_rd_and_refuses_other_sites(db: Db) {
    let app = gateway_app(db, "").await;
    app.login_dev("leaving@example.com", true).await;
    let refused = app
        .client
        .post(app.url("/gateway/logout"))
        .header(ORIGIN, "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    app.assert_logged_in_as("leaving@example.com").await;
    // From an allowed host's page (the app's own button), back to an allowed rd.
    let response = app
        .client
        .post(app.url("/gateway/logout?rd=https%3A%2F%2Fapp.example.com%2Fbye"))
        .header(ORIGIN, "https://app.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "https://app.example.com/bye");
    app.assert_logged_out().await;
    // An rd elsewhere falls back to the start page.
    app.login_dev("leaving@example.com", true).await;
    let response =
        app.client.post(app.url("/gateway/logout?rd=https%3A%2F%2Fevil.example%2F")).send().await.unwrap();
    assert_eq!(location(&response), "/");
}

async fn cookie_domain_shares_the_session_and_is_off_by_default(db: Db) {
    let app = gateway_app(db, "").await;
    let response = app.get("/authorize/dev").await;
    let cookie = header(&response, SET_COOKIE.as_str()).unwrap_or_default();
    assert!(!cookie.to_ascii_lowercase().contains("domain="), "host-only by default: {cookie}");
    assert!(cookie.contains("Path=/"), "{cookie}");
    // With cookie_domain (a deployment's name; the test only reads the cookie it is given).
    let mock = crate::mock_provider::MockProvider::start().await;
    let shared = TestApp::builder(db)
        .server("public_url = \"https://auth.gw.example\"\ncookie_domain = \"gw.example\"")
        .toml(&format!("{RULES}{}", mock.provider_toml("mock")))
        .spawn()
        .await;
    let response = shared.get("/authorize/mock").await;
    let cookie = header(&response, SET_COOKIE.as_str()).unwrap_or_default();
    assert!(cookie.contains("Domain=gw.example"), "{cookie}");
}

async fn verified_only_and_allowed_providers_refuse_at_login_and_at_check(db: Db) {
    let app = TestApp::builder(db)
        .server("trusted_proxies = [\"127.0.0.1\"]")
        .toml("[gateway]\nenabled = true\n[access]\nverified_only = true\nallowed_providers = [\"dev\"]\n")
        .spawn()
        .await;
    let authorize = app.begin_login("dev").await;
    let callback = app.dev_decide(&authorize, "unsure@example.com", false, true).await;
    expect_page(app.complete_callback(&callback).await, StatusCode::FORBIDDEN, "did not vouch").await;
    app.login_dev("sure@example.com", true).await;
    assert_eq!(check(&app, "https://app.example.com/").await.status(), StatusCode::OK);
    // A provider that is not listed may not log in at all.
    let mock = crate::mock_provider::MockProvider::start().await;
    let other = TestApp::builder(db)
        .toml(&format!("[access]\nallowed_providers = [\"dev\"]\n{}", mock.provider_toml("mock")))
        .spawn()
        .await;
    let authorize = other.begin_login("mock").await;
    let state = query_param(&authorize, "state").unwrap();
    let response = other.get(&format!("/callback/mock?code=c&state={state}")).await;
    expect_page(response, StatusCode::FORBIDDEN, "Login refused").await;
    assert_eq!(other.user_count().await, 0);
}

/// One test per open-redirect trick: `start?rd=` with each must end the login at the start page.
macro_rules! rd_tricks {
    ($($name:ident: $rd:expr,)*) => {
        mod rd_tricks {
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    falls_back($rd).await;
                }
            )*
        }
    };
}

async fn falls_back(rd: &str) {
    let app = gateway_app(Db::Sqlite, "").await;
    let encoded: String = url::form_urlencoded::byte_serialize(rd.as_bytes()).collect();
    let response = app.get(&format!("/gateway/start?rd={encoded}")).await;
    assert_eq!(location(&response), "/authorize/dev", "rd {rd:?} is dropped before the login");
    let authorize = app.begin_login_at(&location(&response)).await;
    let callback = app.dev_decide(&authorize, "tricked@example.com", true, true).await;
    assert_eq!(location(&app.complete_callback(&callback).await), "/", "rd {rd:?} falls back");
}

rd_tricks! {
    other_host: "https://evil.example/",
    userinfo_before_an_allowed_host: "https://app.example.com@evil.example/",
    userinfo_on_an_allowed_host: "https://user:pw@app.example.com/",
    backslash_before_at: "https://evil.example\\@app.example.com/",
    backslash_in_host: "https://app.example.com\\.evil.example/",
    encoded_slash_in_host: "https://app.example.com%2F.evil.example/",
    encoded_slash_before_at: "https://app.example.com%2f@evil.example/",
    idn_look_alike_of_the_allowed_domain: "https://app.exаmple.com/",
    javascript_scheme: "javascript:alert(1)",
    missing_scheme: "//app.example.com/",
    bare_host: "app.example.com/x",
    plain_http_off_loopback: "http://app.example.com/",
    suffix_without_a_dot: "https://evilexample.com/",
    allowed_name_as_a_prefix: "https://app.example.com.evil.example/",
    tab_in_the_url: "https://app.example.com\t.evil.example/",
}
