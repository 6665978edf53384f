//! The examples users copy, run as they are: each file under `examples/` is compiled into this
//! module, its `app(config)` served on a random loopback port with a fresh database, and driven
//! through the built-in development provider, on SQLite and PostgreSQL. An example that no longer
//! compiles or no longer does what its doc says fails here.

#[path = "../../examples/embed.rs"]
#[allow(dead_code)]
mod embed;

use crate::db_tests;
use crate::helpers::*;
use reqwest::header;
use reqwest::StatusCode;
use serde_json::json;

db_tests!(
    embed_greets_a_visitor_and_then_the_logged_in_user_on_its_own_start_page,
    embed_sends_a_browser_from_the_private_page_to_log_in_and_back,
    embed_answers_401_json_to_an_api_client_on_the_private_page,
);

async fn embed_greets_a_visitor_and_then_the_logged_in_user_on_its_own_start_page(db: Db) {
    let app = TestApp::serve_router(db, "/auth", embed::app).await;
    expect_page(app.get("/").await, StatusCode::OK, "<h1>Welcome</h1>").await;
    app.login_dev("alice@example.com", true).await;
    expect_page(app.get("/").await, StatusCode::OK, "<h1>Hello alice</h1>").await;
}

async fn embed_sends_a_browser_from_the_private_page_to_log_in_and_back(db: Db) {
    let app = TestApp::serve_router(db, "/auth", embed::app).await;
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
    let app = TestApp::serve_router(db, "/auth", embed::app).await;
    let response =
        app.client.get(app.url("/private")).header(header::ACCEPT, "application/json").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.json::<serde_json::Value>().await.unwrap(), json!({"error": "unauthenticated"}));
}
