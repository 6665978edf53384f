//! The X preset against the mock's fake of `/2/users/me`, on SQLite and PostgreSQL: PKCE and
//! Basic client authentication, a login without any address (the handle names the account, the
//! numeric id finds it again), no linking by address, and the refusals: an `[access]` rule on
//! addresses, an error answer instead of an account, a trust setting with nothing to trust.

use crate::db_tests;
use crate::helpers::*;
use crate::mock_provider::{MockProvider, Scripted, TrustedAccount};
use base64::Engine;
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};

db_tests!(
    logs_in_without_an_address_through_pkce_and_basic_auth,
    the_id_finds_the_account_again_whatever_the_handle,
    an_address_rule_refuses_a_login_without_an_address,
    an_error_instead_of_an_account_is_refused,
    another_providers_address_fills_the_missing_one_at_its_login,
);

async fn with_x(db: Db, more_toml: &str) -> (MockProvider, TestApp) {
    let mock = MockProvider::start().await;
    let toml = format!("{more_toml}{}", mock.preset_toml("x", "x"));
    let app = TestApp::builder(db).toml(&toml).spawn().await;
    (mock, app)
}

async fn x_callback(app: &TestApp) -> Response {
    let authorize = app.begin_login("x").await;
    let state = query_param(&authorize, "state").expect("state");
    app.get(&format!("/callback/x?code=good-code&state={state}")).await
}

fn xdev(id: &str, username: &str) -> Value {
    json!({"data": {"id": id, "name": "X Dev", "username": username,
                    "profile_image_url": "https://pbs.twimg.com/profile_images/1/a_normal.jpg"}})
}

async fn logs_in_without_an_address_through_pkce_and_basic_auth(db: Db) {
    let (mock, app) = with_x(db, "").await;
    mock.set_userinfo(Scripted::json(200, xdev("2244994945", "XDevelopers")));
    let authorize = app.begin_login("x").await;
    assert_eq!(query_param(&authorize, "scope").as_deref(), Some("users.read tweet.read"));
    assert_eq!(query_param(&authorize, "code_challenge_method").as_deref(), Some("S256"));
    assert!(query_param(&authorize, "code_challenge").is_some_and(|c| c.len() == 43), "PKCE");
    let state = query_param(&authorize, "state").unwrap();
    let response = app.get(&format!("/callback/x?code=good-code&state={state}")).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);

    // Basic client authentication, and the secret nowhere in the form.
    let basic = base64::engine::general_purpose::STANDARD.encode("x-client:x-secret");
    assert_eq!(mock.last_token_auth(), Some(format!("Basic {basic}")));
    let form = mock.last_token_form();
    assert!(!form.contains_key("client_secret"), "{form:?}");
    assert_eq!(form.get("code_verifier").map(String::len), Some(43), "{form:?}");
    assert_eq!(mock.last_userinfo_query().get("user.fields").map(String::as_str), Some("profile_image_url"));

    let (status, me) = app.api_me().await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["email"], Value::Null, "X gives no address: {me}");
    assert_eq!(me["email_verified"], false);
    assert_eq!(me["username"], "xdevelopers", "the handle names the account");
    assert_eq!(me["display_name"], "X Dev");
    assert_eq!(me["avatar_url"], "https://pbs.twimg.com/profile_images/1/a_normal.jpg");
    assert_eq!(me["identities"][0]["provider"], "x");
    assert_eq!(me["identities"][0]["subject"], "2244994945");
    assert_eq!(me["identities"][0]["email"], Value::Null);
    let page = app.get(&format!("{}/", app.base)).await.text().await.unwrap();
    assert!(page.contains("(no address)"), "{page}");
    assert!(page.contains("xdevelopers"), "{page}");
}

async fn the_id_finds_the_account_again_whatever_the_handle(db: Db) {
    // A trusted provider's user whose address would match anything: X has none to match.
    let other = TrustedAccount::start("xdevelopers@example.com").await;
    let (mock, app) = with_x(db, &other.toml).await;
    let existing = other.log_in_first(&app).await;

    mock.set_userinfo(Scripted::json(200, xdev("2244994945", "XDevelopers")));
    assert_eq!(x_callback(&app).await.status(), StatusCode::SEE_OTHER);
    let (_, first) = app.api_me().await;
    assert_ne!(first["id"], existing["id"], "no address, no linking");
    app.logout().await;

    // The handle changed; the id is the same: the same account.
    mock.set_userinfo(Scripted::json(200, xdev("2244994945", "renamed")));
    let browser = app.another_browser();
    assert_eq!(x_callback(&browser).await.status(), StatusCode::SEE_OTHER);
    let (_, again) = browser.api_me().await;
    assert_eq!(again["id"], first["id"]);
    assert_eq!(app.user_count().await, 2);
}

async fn an_address_rule_refuses_a_login_without_an_address(db: Db) {
    let (mock, app) = with_x(db, "[access]\nallowed_domains = [\"example.com\"]\n").await;
    mock.set_userinfo(Scripted::json(200, xdev("2244994945", "XDevelopers")));
    expect_page(x_callback(&app).await, StatusCode::FORBIDDEN, "your provider gave no address").await;
    app.assert_logged_out().await;
    assert_eq!(app.user_count().await, 0, "nothing written");
}

async fn an_error_instead_of_an_account_is_refused(db: Db) {
    let (mock, app) = with_x(db, "").await;
    mock.set_userinfo(Scripted::json(
        200,
        json!({"errors": [{"title": "Forbidden", "detail": "User has been suspended: [2244994945]."}]}),
    ));
    expect_page(x_callback(&app).await, StatusCode::BAD_GATEWAY, "User has been suspended").await;
    app.assert_logged_out().await;
    assert_eq!(app.user_count().await, 0, "nothing written");
}

async fn another_providers_address_fills_the_missing_one_at_its_login(db: Db) {
    let facebook = MockProvider::start().await;
    facebook.set_userinfo(Scripted::json(
        200,
        json!({"id": "10157", "name": "X Dev", "email": "dev@example.com"}),
    ));
    let (mock, app) = with_x(db, &facebook.preset_toml("facebook", "facebook")).await;
    mock.set_userinfo(Scripted::json(200, xdev("2244994945", "XDevelopers")));
    assert_eq!(x_callback(&app).await.status(), StatusCode::SEE_OTHER);
    let (_, me) = app.api_me().await;
    assert_eq!(me["email"], Value::Null);

    // Connect Facebook to the X account, then log in with it: its (unverified) address fills the
    // account's missing one, and names nothing else.
    let response =
        app.client.post(app.url("/account/connect")).form(&[("provider", "facebook")]).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    let state = query_param(&location(&response), "state").unwrap();
    assert_eq!(
        app.get(&format!("/callback/facebook?code=good-code&state={state}")).await.status(),
        StatusCode::SEE_OTHER
    );
    app.logout().await;
    let authorize = app.begin_login("facebook").await;
    let state = query_param(&authorize, "state").unwrap();
    assert_eq!(
        app.get(&format!("/callback/facebook?code=good-code&state={state}")).await.status(),
        StatusCode::SEE_OTHER
    );
    let (_, after) = app.api_me().await;
    assert_eq!(after["id"], me["id"]);
    assert_eq!(after["email"], "dev@example.com");
    assert_eq!(after["email_verified"], false);
    assert_eq!(after["username"], "xdevelopers", "the username stays");

    // And an X login after that leaves it in place.
    app.logout().await;
    assert_eq!(x_callback(&app).await.status(), StatusCode::SEE_OTHER);
    assert_eq!(app.api_me().await.1["email"], "dev@example.com");
}
