//! The Facebook preset against the mock's fake of the Graph API's `/me`, on SQLite and
//! PostgreSQL: the fields asked for, an address that never counts as verified and so never reaches
//! an existing account (even the same address, even with flags planted in the answer), a login
//! without an address, and a Graph error refused with nothing written.

use crate::db_tests;
use crate::helpers::*;
use crate::mock_provider::{MockProvider, Scripted, TrustedAccount};
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};

db_tests!(
    logs_in_with_the_graph_fields_and_an_unverified_address,
    its_address_never_reaches_an_existing_account,
    an_account_without_an_address_logs_in_without_one,
    a_graph_error_is_refused_and_nothing_written,
);

async fn with_facebook(db: Db, more_toml: &str) -> (MockProvider, TestApp) {
    let mock = MockProvider::start().await;
    let toml = format!("{more_toml}{}", mock.preset_toml("facebook", "facebook"));
    let app = TestApp::builder(db).toml(&toml).spawn().await;
    (mock, app)
}

async fn facebook_callback(app: &TestApp) -> Response {
    let authorize = app.begin_login("facebook").await;
    let state = query_param(&authorize, "state").expect("state");
    app.get(&format!("/callback/facebook?code=good-code&state={state}")).await
}

const PICTURE: &str = "https://platform-lookaside.fbsbx.com/platform/profilepic/?asid=10157";

fn me(id: &str, email: Option<&str>) -> Value {
    let mut me = json!({"id": id, "name": "Mark Example",
        "picture": {"data": {"height": 50, "width": 50, "is_silhouette": false, "url": PICTURE}}});
    if let Some(email) = email {
        me["email"] = json!(email);
    }
    me
}

async fn logs_in_with_the_graph_fields_and_an_unverified_address(db: Db) {
    let (mock, app) = with_facebook(db, "").await;
    mock.set_userinfo(Scripted::json(200, me("10157000000000001", Some("mark@example.com"))));
    let authorize = app.begin_login("facebook").await;
    assert_eq!(query_param(&authorize, "scope").as_deref(), Some("email public_profile"));
    let state = query_param(&authorize, "state").unwrap();
    let response = app.get(&format!("/callback/facebook?code=good-code&state={state}")).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(mock.last_userinfo_query().get("fields").map(String::as_str), Some("id,name,email,picture"));
    assert_eq!(mock.last_userinfo_auth().as_deref(), Some("Bearer mock-token"));
    let form = mock.last_token_form();
    assert_eq!(form.get("client_secret").map(String::as_str), Some("facebook-secret"), "{form:?}");

    app.assert_logged_in_as("mark@example.com").await;
    let (_, me) = app.api_me().await;
    assert_eq!(me["email_verified"], false);
    assert_eq!(me["display_name"], "Mark Example");
    assert_eq!(me["avatar_url"], PICTURE);
    assert_eq!(me["identities"][0]["subject"], "10157000000000001");
    assert_eq!(me["identities"][0]["email_verified"], false);
    assert!(
        me["username"].as_str().is_some_and(|u| u.starts_with("user-")),
        "an unverified address names nobody: {me}"
    );
}

async fn its_address_never_reaches_an_existing_account(db: Db) {
    let trusted = TrustedAccount::start("mark@example.com").await;
    let (mock, app) = with_facebook(db, &trusted.toml).await;
    let victim = trusted.log_in_first(&app).await;

    // The same address, with every flag a hostile or confused answer could plant.
    let mut planted = me("10157000000000001", Some("mark@example.com"));
    planted["email_verified"] = json!(true);
    planted["verified"] = json!(true);
    mock.set_userinfo(Scripted::json(200, planted));
    assert_eq!(facebook_callback(&app).await.status(), StatusCode::SEE_OTHER);
    let (_, mark) = app.api_me().await;
    assert_ne!(mark["id"], victim["id"], "an account of its own, never the victim's");
    assert_eq!(mark["email_verified"], false);
    assert_eq!(app.user_count().await, 2);
}

async fn an_account_without_an_address_logs_in_without_one(db: Db) {
    let (mock, app) = with_facebook(db, "").await;
    mock.set_userinfo(Scripted::json(200, me("10157000000000002", None)));
    assert_eq!(facebook_callback(&app).await.status(), StatusCode::SEE_OTHER);
    let (status, me) = app.api_me().await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["email"], Value::Null);
    assert_eq!(me["identities"][0]["subject"], "10157000000000002");
    assert_eq!(app.user_count().await, 1);
}

async fn a_graph_error_is_refused_and_nothing_written(db: Db) {
    let (mock, app) = with_facebook(db, "").await;
    mock.set_userinfo(Scripted::json(
        400,
        json!({"error": {"message": "Invalid OAuth access token.", "type": "OAuthException", "code": 190}}),
    ));
    expect_page(facebook_callback(&app).await, StatusCode::BAD_GATEWAY, "HTTP 400").await;
    app.assert_logged_out().await;
    assert_eq!(app.user_count().await, 0, "nothing written");
}
