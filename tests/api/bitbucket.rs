//! The Bitbucket preset against the mock's fake of `/2.0/user` and `/2.0/user/emails`, on SQLite
//! and PostgreSQL: the `uuid` is the identity and only the primary *confirmed* address logs in;
//! an account without one is refused without writing anything.

use crate::db_tests;
use crate::helpers::*;
use crate::mock_provider::{MockProvider, Scripted};
use reqwest::{Response, StatusCode};
use serde_json::json;

db_tests!(the_primary_confirmed_address_logs_in_with_the_uuid, an_unconfirmed_primary_address_is_refused);

async fn with_bitbucket(db: Db) -> (MockProvider, TestApp) {
    let mock = MockProvider::start().await;
    let app = TestApp::builder(db).toml(&mock.preset_toml("bitbucket", "bitbucket")).spawn().await;
    mock.set_userinfo(Scripted::json(
        200,
        json!({"uuid": "{d301aafa-d676-4ee0-88be-962be7417567}", "account_id": "557058:c0b7",
               "nickname": "tutorials", "display_name": "Tutorials Account",
               "links": {"avatar": {"href": "https://avatar-management.example/tutorials.png"}}}),
    ));
    (mock, app)
}

async fn bitbucket_callback(app: &TestApp) -> Response {
    let authorize = app.begin_login("bitbucket").await;
    assert_eq!(query_param(&authorize, "scope").as_deref(), Some("account email"));
    let state = query_param(&authorize, "state").expect("state");
    app.get(&format!("/callback/bitbucket?code=good-code&state={state}")).await
}

async fn the_primary_confirmed_address_logs_in_with_the_uuid(db: Db) {
    let (mock, app) = with_bitbucket(db).await;
    mock.set_emails(Scripted::json(
        200,
        json!({"values": [
            {"email": "victim@example.com", "is_primary": false, "is_confirmed": false},
            {"email": "tutorials@example.com", "is_primary": true, "is_confirmed": true},
        ]}),
    ));
    assert_eq!(bitbucket_callback(&app).await.status(), StatusCode::SEE_OTHER);
    app.assert_logged_in_as("tutorials@example.com").await;
    let (_, me) = app.api_me().await;
    assert_eq!(me["identities"][0]["subject"], "{d301aafa-d676-4ee0-88be-962be7417567}");
    assert_eq!(me["identities"][0]["email_verified"], true);
    assert_eq!(me["display_name"], "Tutorials Account");
    assert_eq!(me["avatar_url"], "https://avatar-management.example/tutorials.png");
    assert_eq!((mock.userinfo_requests(), mock.emails_requests()), (1, 1));
    assert_eq!(mock.last_emails_auth().as_deref(), Some("Bearer mock-token"));
}

async fn an_unconfirmed_primary_address_is_refused(db: Db) {
    let (mock, app) = with_bitbucket(db).await;
    mock.set_emails(Scripted::json(
        200,
        json!({"values": [{"email": "victim@example.com", "is_primary": true, "is_confirmed": false}]}),
    ));
    let response = bitbucket_callback(&app).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    app.assert_logged_out().await;
    assert_eq!(app.user_count().await, 0, "nothing written");
}
