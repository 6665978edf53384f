//! loginwith inside a host app: mounted under a path (server and library), coming back where one
//! was (`next`, with a test per open-redirect trick), `RequireLogin` for browsers and API clients,
//! the host's own headers left alone, the login hook, and the provider list.

use crate::db_tests;
use crate::helpers::*;
use crate::mock_provider::MockProvider;
use axum::http::{header, HeaderValue};
use axum::response::Html;
use axum::routing::get;
use axum::Router;
use loginwith::{CurrentUser, LoginEvent, LoginRefused, RequireLogin};
use reqwest::StatusCode;
use std::sync::{Arc, Mutex};

db_tests!(
    the_server_mounted_at_a_path_serves_everything_under_it_and_nothing_else,
    a_host_keeps_its_own_root_and_headers_with_loginwith_at_auth,
    next_brings_the_browser_back_after_login,
    the_start_page_carries_next_to_the_providers,
    require_login_sends_a_browser_to_log_in_and_back,
    require_login_answers_401_to_api_clients,
    a_hook_sees_new_users_links_and_returning_users,
    a_hook_refusing_a_new_user_writes_nothing,
    a_hook_refusing_a_returning_user_does_not_touch_them,
    a_hook_refusing_a_link_leaves_the_account_as_it_was,
    after_login_and_after_logout_say_where_a_browser_lands,
    access_lets_in_only_listed_verified_addresses,
);

/// The host's own pages, with their own strict-but-different CSP, a script, and caching.
fn host_routes() -> Router {
    Router::new()
        .route(
            "/",
            get(|user: Option<CurrentUser>| async move {
                let who = user.map_or_else(|| "nobody".to_owned(), |u| u.username);
                (
                    [
                        (
                            header::CONTENT_SECURITY_POLICY,
                            HeaderValue::from_static("script-src 'self' https://cdn.example"),
                        ),
                        (header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=60")),
                    ],
                    Html(format!("<h1>host home</h1><p id=who>{who}</p><script src=/app.js></script>")),
                )
            }),
        )
        .route(
            "/private",
            get(|RequireLogin(user): RequireLogin| async move {
                format!("private for {}", user.email.unwrap_or_default())
            }),
        )
        .route("/plain", get(|| async { "plain host page" }))
}

/// A host app with loginwith at `/auth`.
async fn host_with_auth(db: Db) -> TestApp {
    TestApp::builder(db).mounted_at("/auth").embedded(|lw| lw.layer(host_routes().merge(lw.routes()))).await
}

async fn the_server_mounted_at_a_path_serves_everything_under_it_and_nothing_else(db: Db) {
    let app = TestApp::builder(db).mounted_at("/auth").spawn().await;
    // Nothing outside the path.
    for path in [
        "/",
        "/healthz",
        "/api/me",
        "/authorize/dev",
        "/callback/dev",
        "/static/app.css",
        "/dev-provider/jwks",
    ] {
        assert_eq!(app.get(path).await.status(), StatusCode::NOT_FOUND, "{path}");
    }
    // Everything under it.
    let home = app.get("/auth/").await;
    assert_eq!(home.status(), StatusCode::OK);
    let page = home.text().await.unwrap();
    assert!(page.contains(r#"<a href="/auth/authorize/dev">Login with Dev</a>"#), "{page}");
    assert!(page.contains(r#"href="/auth/static/app.css""#), "{page}");
    assert_eq!(app.get("/auth/static/app.css").await.status(), StatusCode::OK);
    assert_eq!(app.get("/auth/healthz").await.status(), StatusCode::OK);
    // `/auth` alone is the start page too.
    let bare = app.get("/auth").await;
    assert_eq!(bare.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&bare), "/auth/");

    // The whole login: redirect URI, provider, callback, cookie path.
    let authorize = app.begin_login("dev").await;
    assert!(authorize.starts_with(&format!("{}/auth/dev-provider/authorize?", app.address)), "{authorize}");
    let redirect_uri = query_param(&authorize, "redirect_uri").unwrap();
    assert_eq!(redirect_uri, format!("{}/auth/callback/dev", app.address));
    let callback = app.dev_decide(&authorize, "mounted@example.com", true, true).await;
    let response = app.complete_callback(&callback).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let cookie = response.headers()[header::SET_COOKIE].to_str().unwrap().to_owned();
    assert!(cookie.contains("Path=/auth"), "the cookie stays under the path: {cookie}");
    assert_eq!(location(&response), "/auth/");
    app.assert_logged_in_as("mounted@example.com").await;
    app.logout().await;
    app.assert_logged_out().await;
}

async fn a_host_keeps_its_own_root_and_headers_with_loginwith_at_auth(db: Db) {
    let app = host_with_auth(db).await;
    let home = app.get("/").await;
    assert_eq!(home.status(), StatusCode::OK);
    let headers = home.headers().clone();
    assert_eq!(headers[header::CONTENT_SECURITY_POLICY], "script-src 'self' https://cdn.example");
    assert_eq!(headers[header::CACHE_CONTROL], "public, max-age=60");
    assert!(headers.get(header::X_FRAME_OPTIONS).is_none(), "no loginwith header on the host's page");
    assert!(home.text().await.unwrap().contains("host home"));
    let plain = app.get("/plain").await;
    for name in [
        header::CONTENT_SECURITY_POLICY,
        header::X_FRAME_OPTIONS,
        header::CACHE_CONTROL,
        header::REFERRER_POLICY,
    ] {
        assert!(plain.headers().get(&name).is_none(), "{name} on a host page");
    }

    // loginwith's own pages keep their strict headers.
    let own = app.get("/auth/").await;
    assert!(own.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .starts_with("default-src 'none'"));
    assert_eq!(own.headers()[header::X_FRAME_OPTIONS], "DENY");
    assert_eq!(own.headers()[header::CACHE_CONTROL], "no-store");

    // The host's page sees the login; the cookie covers the host's pages.
    app.login_dev("host@example.com", true).await;
    let page = app.get("/").await.text().await.unwrap();
    assert!(page.contains("<p id=who>host</p>"), "{page}");
}

async fn next_brings_the_browser_back_after_login(db: Db) {
    let app = host_with_auth(db).await;
    let response = app.get("/auth/authorize/dev?next=%2Fprivate%3Ftab%3D2").await;
    assert_eq!(response.status(), StatusCode::FOUND);
    let callback = app.dev_decide(&location(&response), "back@example.com", true, true).await;
    let response = app.complete_callback(&callback).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/private?tab=2");
    assert_eq!(app.get("/private?tab=2").await.text().await.unwrap(), "private for back@example.com");
    // Logged in, a `next` is followed at once.
    let response = app.get("/auth/authorize/dev?next=/plain").await;
    assert_eq!(location(&response), "/plain");
}

async fn the_start_page_carries_next_to_the_providers(db: Db) {
    let app = host_with_auth(db).await;
    let page = app.get("/auth/?next=/private").await.text().await.unwrap();
    assert!(page.contains(r#"href="/auth/authorize/dev?next=%2Fprivate""#), "{page}");
    let page = app.get("/auth/?next=//evil.example").await.text().await.unwrap();
    assert!(page.contains(r#"href="/auth/authorize/dev""#) && !page.contains("evil"), "{page}");
}

async fn require_login_sends_a_browser_to_log_in_and_back(db: Db) {
    let app = host_with_auth(db).await;
    let response = app
        .client
        .get(app.url("/private?x=1"))
        .header(header::ACCEPT, "text/html,application/xhtml+xml,*/*;q=0.8")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let start = location(&response);
    assert_eq!(start, "/auth/?next=%2Fprivate%3Fx%3D1");
    // The start page's button carries it on, and the login ends on the private page.
    let page = app.get(&start).await.text().await.unwrap();
    assert!(page.contains(r#"href="/auth/authorize/dev?next=%2Fprivate%3Fx%3D1""#), "{page}");
    let response = app.get("/auth/authorize/dev?next=%2Fprivate%3Fx%3D1").await;
    let callback = app.dev_decide(&location(&response), "browser@example.com", true, true).await;
    let response = app.complete_callback(&callback).await;
    assert_eq!(location(&response), "/private?x=1");
    let response =
        app.client.get(app.url("/private?x=1")).header(header::ACCEPT, "text/html").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

async fn require_login_answers_401_to_api_clients(db: Db) {
    let app = host_with_auth(db).await;
    for (name, value) in [
        (header::ACCEPT.as_str(), "application/json"),
        (header::ACCEPT.as_str(), "application/json, text/html;q=0.5"),
        ("x-requested-with", "XMLHttpRequest"),
    ] {
        let response = app.client.get(app.url("/private")).header(name, value).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{name}: {value}");
        assert_eq!(response.json::<serde_json::Value>().await.unwrap()["code"], "unauthenticated");
    }
    // No Accept at all (curl): an API client too.
    let response = app.get("/private").await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

/// What the hook saw, and what it should answer next.
#[derive(Default)]
struct HookLog {
    seen: Mutex<Vec<(String, bool, bool, i64)>>,
    refuse: Mutex<Option<String>>,
}

async fn with_hook(db: Db, mock: &MockProvider) -> (TestApp, Arc<HookLog>) {
    let log = Arc::new(HookLog::default());
    let hook_log = log.clone();
    let toml_mock = mock.base.clone();
    let app = TestApp::builder(db)
        .mounted_at("/auth")
        .configure(move |config| {
            // A trusted mock beside the dev provider, for links.
            let extra = loginwith::Config::from_toml(&crate::library::trusted_mock_toml(&toml_mock)).unwrap();
            config.providers.extend(extra.providers);
        })
        .on_login(move |event: LoginEvent| {
            let log = hook_log.clone();
            async move {
                log.seen.lock().unwrap().push((
                    event.identity.provider.clone(),
                    event.new_user,
                    event.new_link,
                    event.user.id,
                ));
                match log.refuse.lock().unwrap().clone() {
                    Some(message) => Err(LoginRefused::new(message)),
                    None => Ok(()),
                }
            }
        })
        .embedded(|lw| lw.layer(host_routes().merge(lw.routes())))
        .await;
    (app, log)
}

pub fn trusted_mock_toml(base: &str) -> String {
    format!(
        "[providers.trusted]\ndisplay_name = \"Trusted\"\nclient_id = \"mock-client\"\nclient_secret = \"mock-secret\"\n\
         authorize_url = \"{base}/authorize\"\ntoken_url = \"{base}/token\"\nuserinfo_url = \"{base}/userinfo\"\n\
         trust_email_verified = true\n[providers.trusted.userinfo]\nsubject = \"/sub\"\nemail = \"/email\"\n\
         email_verified = \"/email_verified\"\n[limits]\nauthorize_per_minute = 0\ncallback_per_minute = 0\n\
         dev_provider_per_minute = 0\n"
    )
}

async fn a_hook_sees_new_users_links_and_returning_users(db: Db) {
    let mock = MockProvider::start().await;
    let (app, log) = with_hook(db, &mock).await;
    mock.set_userinfo(crate::dev_flow::profile("t-1", "someone@example.com", true));
    crate::dev_flow::mock_login(&app, "trusted").await;
    let (_, me) = app.api_me().await;
    let id = me["id"].as_i64().unwrap();
    app.logout().await;
    crate::dev_flow::mock_login(&app, "trusted").await;
    app.logout().await;
    // A second trusted identity with the same verified address links.
    mock.set_userinfo(crate::dev_flow::profile("t-2", "someone@example.com", true));
    crate::dev_flow::mock_login(&app, "trusted").await;
    let seen = log.seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        vec![
            ("trusted".to_owned(), true, false, id),
            ("trusted".to_owned(), false, false, id),
            ("trusted".to_owned(), false, true, id),
        ]
    );
}

async fn a_hook_refusing_a_new_user_writes_nothing(db: Db) {
    let mock = MockProvider::start().await;
    let (app, log) = with_hook(db, &mock).await;
    *log.refuse.lock().unwrap() = Some("Only staff may log in <here>.".into());
    let authorize = app.begin_login("dev").await;
    let callback = app.dev_decide(&authorize, "stranger@example.com", true, true).await;
    let page = expect_page(
        app.complete_callback(&callback).await,
        StatusCode::FORBIDDEN,
        "Only staff may log in &lt;here&gt;.",
    )
    .await;
    assert!(page.contains("Nobody was logged in"), "{page}");
    assert_eq!(log.seen.lock().unwrap().len(), 1, "the hook saw the new user");
    assert_eq!(app.user_count().await, 0, "the new user was taken back");
    app.assert_logged_out().await;
}

async fn a_hook_refusing_a_returning_user_does_not_touch_them(db: Db) {
    let mock = MockProvider::start().await;
    let (app, log) = with_hook(db, &mock).await;
    app.login_dev("regular@example.com", false).await;
    let (_, me) = app.api_me().await;
    let before = app.store.user(loginwith::UserId(me["id"].as_i64().unwrap())).await.unwrap().unwrap();
    app.logout().await;
    *log.refuse.lock().unwrap() = Some("Your account is suspended.".into());
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let authorize = app.begin_login("dev").await;
    let callback = app.dev_decide(&authorize, "regular@example.com", true, true).await;
    expect_page(app.complete_callback(&callback).await, StatusCode::FORBIDDEN, "Your account is suspended.")
        .await;
    app.assert_logged_out().await;
    let after = app.store.user(loginwith::UserId(before.id)).await.unwrap().unwrap();
    assert_eq!(after.last_login_at, before.last_login_at, "the refused login was not stamped");
    assert!(!after.email_verified, "nor did it mark the address verified");
}

async fn a_hook_refusing_a_link_leaves_the_account_as_it_was(db: Db) {
    let mock = MockProvider::start().await;
    let (app, log) = with_hook(db, &mock).await;
    mock.set_userinfo(crate::dev_flow::profile("t-1", "owner@example.com", true));
    crate::dev_flow::mock_login(&app, "trusted").await;
    app.logout().await;
    *log.refuse.lock().unwrap() = Some("No new logins for this account.".into());
    mock.set_userinfo(crate::dev_flow::profile("t-2", "owner@example.com", true));
    let authorize = app.begin_login("trusted").await;
    let state = query_param(&authorize, "state").unwrap();
    let response = app.get(&format!("/auth/callback/trusted?code=c&state={state}")).await;
    expect_page(response, StatusCode::FORBIDDEN, "No new logins for this account.").await;
    let seen = log.seen.lock().unwrap().clone();
    assert_eq!(seen.last().map(|s| s.2), Some(true), "the hook saw a new link");
    *log.refuse.lock().unwrap() = None;
    mock.set_userinfo(crate::dev_flow::profile("t-1", "owner@example.com", true));
    crate::dev_flow::mock_login(&app, "trusted").await;
    let (_, me) = app.api_me().await;
    assert_eq!(identity_keys(&me), [("trusted".to_owned(), "t-1".to_owned())], "the link was taken back");
}

#[tokio::test]
async fn the_provider_list_gives_names_and_login_urls() {
    let mut seen = None;
    let _app = TestApp::builder(Db::Sqlite)
        .mounted_at("/auth")
        .embedded(|lw| {
            seen = Some(lw.providers());
            lw.layer(lw.routes())
        })
        .await;
    let providers = seen.unwrap();
    assert_eq!(providers.len(), 1);
    assert_eq!(providers[0].name, "dev");
    assert_eq!(providers[0].display_name, "Dev");
    assert_eq!(providers[0].login_url, "/auth/authorize/dev");
    assert!(providers[0].available);
    assert_eq!(providers[0].login_url_with_next("/private"), "/auth/authorize/dev?next=%2Fprivate");
    assert_eq!(providers[0].login_url_with_next("//evil.example"), "/auth/authorize/dev");
}

/// One test per open-redirect trick: each `next` must fall back to the default landing page
/// (`/auth/`, the start page) after a login, however it is dressed up.
macro_rules! open_redirect_tricks {
    ($($name:ident: $next:expr,)*) => {
        mod open_redirect {
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    falls_back($next).await;
                }
            )*
        }
    };
}

async fn falls_back(next: &str) {
    let app = host_with_auth(Db::Sqlite).await;
    let encoded: String = url::form_urlencoded::byte_serialize(next.as_bytes()).collect();
    let response = app.get(&format!("/auth/authorize/dev?next={encoded}")).await;
    assert_eq!(response.status(), StatusCode::FOUND);
    let callback = app.dev_decide(&location(&response), "tricked@example.com", true, true).await;
    let response = app.complete_callback(&callback).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/auth/", "next {next:?} must fall back to the start page");
}

open_redirect_tricks! {
    absolute_https_url: "https://evil.example/",
    absolute_http_url: "http://evil.example/",
    scheme_without_slashes: "https:evil.example",
    protocol_relative: "//evil.example",
    triple_slash: "///evil.example",
    slash_backslash: "/\\evil.example",
    backslash_slash: "\\/evil.example",
    backslash_in_path: "/a\\b",
    tab_between_slashes: "/\t/evil.example",
    newline_between_slashes: "/\n/evil.example",
    encoded_slash: "/%2Fevil.example",
    encoded_backslash: "/%5Cevil.example",
    encoded_tab: "/%09/evil.example",
    encoded_crlf_header_injection: "/%0d%0aLocation:%20https://evil.example",
    double_encoded_slash: "/%252Fevil.example",
    javascript_scheme: "javascript:alert(1)",
    data_scheme: "data:text/html,hi",
    relative_without_slash: "evil.example",
    userinfo_at_host: "//user@evil.example",
    nul_byte: "/\u{0}evil",
    empty: "",
}

async fn after_login_and_after_logout_say_where_a_browser_lands(db: Db) {
    let app = TestApp::builder(db)
        .mounted_at("/auth")
        .configure(|config| {
            config.server.after_login = loginwith::ReturnTo::parse("/plain");
            config.server.after_logout = loginwith::ReturnTo::parse("/");
        })
        .embedded(|lw| lw.layer(host_routes().merge(lw.routes())))
        .await;
    let authorize = app.begin_login("dev").await;
    let callback = app.dev_decide(&authorize, "lands@example.com", true, true).await;
    let response = app.complete_callback(&callback).await;
    assert_eq!(location(&response), "/plain", "after_login without a next");
    let response = app.client.post(app.url("/auth/logout")).send().await.unwrap();
    assert_eq!(location(&response), "/", "after_logout");
    // A next still wins over after_login.
    let response = app.get("/auth/authorize/dev?next=/private").await;
    let callback = app.dev_decide(&location(&response), "lands@example.com", true, true).await;
    assert_eq!(location(&app.complete_callback(&callback).await), "/private");
}

async fn access_lets_in_only_listed_verified_addresses(db: Db) {
    let app = TestApp::builder(db)
        .toml("[access]\nallowed_domains = [\"example.com\"]\nallowed_emails = [\"Guest@Other.example\"]\n")
        .spawn()
        .await;
    app.login_dev("alice@example.com", true).await;
    app.logout().await;
    app.login_dev("guest@other.example", true).await;
    app.logout().await;
    assert_eq!(app.user_count().await, 2);
    for (email, verified, phrase) in [
        ("bob@example.com", false, "did not vouch for bob@example.com"),
        ("eve@evil.example", true, "eve@evil.example is not one of them"),
        ("eve@sub.example.com", true, "is not one of them"),
    ] {
        let authorize = app.begin_login("dev").await;
        let callback = app.dev_decide(&authorize, email, verified, true).await;
        expect_page(app.complete_callback(&callback).await, StatusCode::FORBIDDEN, phrase).await;
        app.assert_logged_out().await;
    }
    assert_eq!(app.user_count().await, 2, "refused logins write nothing");
}
