//! The examples users copy, run as they are: each file under `examples/` is compiled into this
//! module, its `app(config)` served on a random loopback port with a fresh database, and driven
//! through the built-in development provider, on SQLite and PostgreSQL. An example that no longer
//! compiles or no longer does what its doc says fails here.

#[path = "../../examples/embed.rs"]
#[allow(dead_code)]
mod embed;
#[path = "../../examples/mounted.rs"]
#[allow(dead_code)]
mod mounted;
#[path = "../../examples/own_users.rs"]
#[allow(dead_code)]
mod own_users;
/// Also served to headless Chromium by `browser.rs`.
#[path = "../../examples/spa/main.rs"]
#[allow(dead_code)]
pub(crate) mod spa;

use crate::db_tests;
use crate::helpers::*;
use reqwest::header;
use reqwest::StatusCode;

db_tests!(
    embed_greets_a_visitor_and_then_the_logged_in_user_on_its_own_start_page,
    embed_sends_a_browser_from_the_private_page_to_log_in_and_back,
    embed_answers_401_json_to_an_api_client_on_the_private_page,
    own_users_first_login_creates_the_profile_and_each_later_login_counts,
    own_users_refuses_a_blocked_address_and_writes_neither_user_nor_profile,
    mounted_host_pages_carry_the_host_csp_and_none_of_loginwiths_headers,
    mounted_loginwith_answers_only_under_auth,
    mounted_login_under_auth_shows_the_user_on_the_host_start_page,
    spa_serves_its_page_script_and_stylesheet_under_its_own_csp,
    spa_logs_in_by_redirect_back_to_the_page_shows_me_and_logs_out,
);

async fn embed_greets_a_visitor_and_then_the_logged_in_user_on_its_own_start_page(db: Db) {
    let app = TestApp::builder(db).mounted_at("/auth").serve(embed::app).await;
    expect_page(app.get("/").await, StatusCode::OK, "<h1>Welcome</h1>").await;
    app.login_dev("alice@example.com", true).await;
    expect_page(app.get("/").await, StatusCode::OK, "<h1>Hello alice</h1>").await;
}

async fn embed_sends_a_browser_from_the_private_page_to_log_in_and_back(db: Db) {
    let app = TestApp::builder(db).mounted_at("/auth").serve(embed::app).await;
    let browse = |path: &str| app.client.get(app.url(path)).header(header::ACCEPT, "text/html").send();
    let response = browse("/private").await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let start = location(&response);
    assert_eq!(start, "/auth/?next=%2Fprivate");
    // The start page's button carries `next` on to the provider and back.
    let page = expect_page(app.get(&start).await, StatusCode::OK, "Login with Dev").await;
    let button = "/auth/authorize/dev?next=%2Fprivate";
    assert!(page.contains(&format!("href=\"{button}\"")), "{page}");
    let authorize = location(&app.get(button).await);
    let callback = app.dev_decide(&authorize, "bob@example.com", true, true).await;
    assert_eq!(location(&app.complete_callback(&callback).await), "/private");
    let page = browse("/private").await.unwrap();
    expect_page(page, StatusCode::OK, "Hello bob (bob@example.com), this page is yours only.").await;
}

async fn embed_answers_401_json_to_an_api_client_on_the_private_page(db: Db) {
    let app = TestApp::builder(db).mounted_at("/auth").serve(embed::app).await;
    let response =
        app.client.get(app.url("/private")).header(header::ACCEPT, "application/json").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.json::<serde_json::Value>().await.unwrap()["code"], "unauthenticated");
}

/// The `logins` column of a user's profile row, `None` without a row.
async fn profile_logins(app: &TestApp, user_id: i64) -> Option<i64> {
    query_i64(&app.db, &format!("SELECT logins FROM profiles WHERE user_id = {user_id}")).await
}

async fn own_users_first_login_creates_the_profile_and_each_later_login_counts(db: Db) {
    let app = TestApp::builder(db).mounted_at("/auth").serve(own_users::app).await;
    app.login_dev("ada@example.com", true).await;
    let (_, me) = app.api_me().await;
    let id = me["id"].as_i64().unwrap();
    assert_eq!(profile_logins(&app, id).await, Some(1), "the first login creates the profile");
    let page = expect_page(app.get("/me").await, StatusCode::OK, "<h1>ada</h1>").await;
    assert!(page.contains("Logins: 1"), "{page}");

    app.logout().await;
    app.login_dev("ada@example.com", true).await;
    assert_eq!(profile_logins(&app, id).await, Some(2), "a returning user's login counts");
    expect_page(app.get("/me").await, StatusCode::OK, "Logins: 2").await;
    assert_eq!(app.user_count().await, 1);
    assert_eq!(query_i64(&app.db, "SELECT COUNT(*) FROM profiles").await, Some(1));
}

async fn own_users_refuses_a_blocked_address_and_writes_neither_user_nor_profile(db: Db) {
    let app = TestApp::builder(db).mounted_at("/auth").serve(own_users::app).await;
    // Upper case in the domain does not get past the blocklist.
    let authorize = app.begin_login("dev").await;
    let callback = app.dev_decide(&authorize, "Mallory@Blocked.Example", true, true).await;
    let refused = app.complete_callback(&callback).await;
    let page =
        expect_page(refused, StatusCode::FORBIDDEN, "Addresses at blocked.example may not log in here.")
            .await;
    assert!(page.contains("Nobody was logged in"), "loginwith's refusal page: {page}");
    app.assert_logged_out().await;
    assert_eq!(app.user_count().await, 0, "the new user was taken back");
    assert_eq!(query_i64(&app.db, "SELECT COUNT(*) FROM profiles").await, Some(0));
}

/// The headers loginwith puts on its own pages, none of which belongs on the host's.
const LOGINWITH_HEADERS: [header::HeaderName; 3] =
    [header::X_FRAME_OPTIONS, header::CACHE_CONTROL, header::REFERRER_POLICY];

async fn mounted_host_pages_carry_the_host_csp_and_none_of_loginwiths_headers(db: Db) {
    let app = TestApp::builder(db).mounted_at("/auth").serve(mounted::app).await;
    for path in ["/", "/app.js"] {
        let response = app.get(path).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let headers = response.headers();
        assert_eq!(headers[header::CONTENT_SECURITY_POLICY], mounted::HOST_CSP, "{path}");
        for name in &LOGINWITH_HEADERS {
            assert!(headers.get(name).is_none(), "{path} carries loginwith's {name}");
        }
    }
    let script = app.get("/app.js").await;
    assert!(script.headers()[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/javascript"));

    let own = app.get("/auth/").await;
    assert_eq!(own.status(), StatusCode::OK);
    let csp = own.headers()[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(csp.starts_with("default-src 'none'"), "loginwith's own policy, not the host's: {csp}");
    assert_eq!(own.headers()[header::X_FRAME_OPTIONS], "DENY");
    assert_eq!(own.headers()[header::CACHE_CONTROL], "no-store");
}

async fn mounted_loginwith_answers_only_under_auth(db: Db) {
    let app = TestApp::builder(db).mounted_at("/auth").serve(mounted::app).await;
    for path in ["/healthz", "/authorize/dev", "/api/me", "/logout", "/dev-provider/jwks", "/static/app.css"]
    {
        assert_eq!(app.get(path).await.status(), StatusCode::NOT_FOUND, "{path}");
    }
    assert_eq!(app.get("/auth/healthz").await.status(), StatusCode::OK);
    assert_eq!(app.get("/auth/dev-provider/jwks").await.status(), StatusCode::OK);
}

async fn mounted_login_under_auth_shows_the_user_on_the_host_start_page(db: Db) {
    let app = TestApp::builder(db).mounted_at("/auth").serve(mounted::app).await;
    expect_page(app.get("/").await, StatusCode::OK, "<h1>Welcome</h1>").await;
    let authorize = app.begin_login("dev").await;
    assert!(authorize.starts_with(&app.url("/auth/dev-provider/authorize?")), "{authorize}");
    assert_eq!(query_param(&authorize, "redirect_uri").unwrap(), app.url("/auth/callback/dev"));
    app.login_dev("carol@example.com", true).await;
    let home = app.get("/").await;
    assert_eq!(home.headers()[header::CONTENT_SECURITY_POLICY], mounted::HOST_CSP);
    expect_page(home, StatusCode::OK, "<h1>Hello carol</h1>").await;
}

async fn spa_serves_its_page_script_and_stylesheet_under_its_own_csp(db: Db) {
    let app = TestApp::builder(db).mounted_at("/auth").serve(spa::app).await;
    for (path, content_type, body) in [
        ("/", "text/html; charset=utf-8", spa::INDEX_HTML),
        ("/app.js", "text/javascript; charset=utf-8", spa::APP_JS),
        ("/app.css", "text/css; charset=utf-8", spa::APP_CSS),
    ] {
        let response = app.get(path).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let headers = response.headers();
        assert_eq!(headers[header::CONTENT_TYPE], content_type, "{path}");
        assert_eq!(headers[header::CONTENT_SECURITY_POLICY], spa::HOST_CSP, "{path}");
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{path}");
        for name in &LOGINWITH_HEADERS {
            assert!(headers.get(name).is_none(), "{path} carries loginwith's {name}");
        }
        assert_eq!(response.text().await.unwrap(), body, "{path}");
    }
    // No icon, and no 404 for it on the browser's console.
    assert_eq!(app.get("/favicon.ico").await.status(), StatusCode::NO_CONTENT);
    // The CSP allows no inline script or style: the page only loads its own files.
    let page = spa::INDEX_HTML;
    assert!(page.contains("<meta name=\"viewport\""), "phone-friendly");
    assert!(page.contains("<script src=\"/app.js\" defer></script>"), "{page}");
    assert!(page.contains("<link rel=\"stylesheet\" href=\"/app.css\">"), "{page}");
    assert_eq!(page.matches("<script").count(), 1, "one script, not inline: {page}");
    assert!(!page.contains("<style") && !page.contains("style="), "no inline style: {page}");
    let inline_handler = page.match_indices(" on").any(|(at, _)| {
        let rest = &page[at + 3..];
        let name = rest.find(|c: char| !c.is_ascii_alphabetic()).unwrap_or(rest.len());
        name > 0 && rest[name..].starts_with('=')
    });
    assert!(!inline_handler, "no inline event handler: {page}");
    for id in ["status", "error", "providers", "me-email", "me-username", "identities", "logout"] {
        assert!(page.contains(&format!("id=\"{id}\"")), "#{id} is missing: {page}");
    }
    // The script asks loginwith where the next test goes, and never writes markup from data.
    assert!(spa::APP_JS.contains("const API = '/auth/api';"));
    for call in ["api('/me')", "`/providers?next=${encodeURIComponent(here)}`", "api('/logout'"] {
        assert!(spa::APP_JS.contains(call), "app.js no longer calls {call}");
    }
    for markup in [".innerHTML", ".outerHTML", ".insertAdjacentHTML(", "document.write("] {
        assert!(!spa::APP_JS.contains(markup), "app.js uses {markup}");
    }
    // loginwith's own pages keep loginwith's policy.
    let own = app.get("/auth/").await;
    let csp = own.headers()[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(csp.starts_with("default-src 'none'"), "loginwith's own policy, not the page's: {csp}");
}

/// What the page's script does, step by step, through the example app: the providers (with
/// `next` back to the page), a login by redirect that ends on `/`, `/api/me`, and the logout.
async fn spa_logs_in_by_redirect_back_to_the_page_shows_me_and_logs_out(db: Db) {
    let app = TestApp::builder(db).mounted_at("/auth").serve(spa::app).await;
    let json =
        |path: &'static str| app.client.get(app.url(path)).header(header::ACCEPT, "application/json").send();
    let me = json("/auth/api/me").await.unwrap();
    assert_eq!(me.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(me.json::<serde_json::Value>().await.unwrap()["code"], "unauthenticated");

    // encodeURIComponent("/") is "%2F".
    let providers = json("/auth/api/providers?next=%2F").await.unwrap();
    assert_eq!(providers.status(), StatusCode::OK);
    let providers: serde_json::Value = providers.json().await.unwrap();
    let dev = &providers["providers"][0];
    assert_eq!(dev["name"], "dev", "{providers}");
    assert_eq!(dev["available"], true, "{providers}");
    assert_eq!(dev["login_url"], "/auth/authorize/dev?next=%2F", "{providers}");

    // The link's full-page login comes back to the page.
    let authorize = app.begin_login_at("/auth/authorize/dev?next=%2F").await;
    let callback = app.dev_decide(&authorize, "dora@example.com", true, true).await;
    let back = app.complete_callback(&callback).await;
    assert_eq!(back.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&back), "/");

    let me = json("/auth/api/me").await.unwrap();
    assert_eq!(me.status(), StatusCode::OK);
    let me: serde_json::Value = me.json().await.unwrap();
    assert_eq!(me["email"], "dora@example.com", "{me}");
    assert_eq!(me["email_verified"], true, "{me}");
    assert_eq!(me["username"], "dora", "{me}");
    assert_eq!(identity_keys(&me).first().map(|(provider, _)| provider.as_str()), Some("dev"), "{me}");

    // The script's logout: a JSON POST, with the Origin the browser adds.
    let logout = app
        .client
        .post(app.url("/auth/api/logout"))
        .header(header::ORIGIN, &app.address)
        .header(header::CONTENT_TYPE, "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    app.assert_logged_out().await;
}
