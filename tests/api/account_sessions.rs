//! A user's sessions and the deletion of their account, over HTTP on SQLite, PostgreSQL and with
//! the sessions in Redis: the
//! list (each browser once, with its user agent, the request's own marked), ending one or all the
//! others (at once, with the in-process session cache on), the list following logout, id rotation
//! and expiry, deleting the account from the page (typed confirmation) and from the API (no rows
//! left behind), and every change refused from another site.

use crate::dev_flow::{mock_login, one_user_two_providers, profile, two_trusted_mocks};
use crate::helpers::*;
use crate::{db_tests, session_store_tests};
use reqwest::header::{CONTENT_TYPE, ORIGIN};
use reqwest::{RequestBuilder, StatusCode};
use serde_json::Value;

session_store_tests!(
    sessions_are_listed_with_their_browser_and_this_one_marked,
    ending_another_session_logs_it_out_at_once,
    log_out_everywhere_else_keeps_only_this_session,
    the_list_follows_logout_rotation_and_expiry,
    a_session_id_that_is_not_yours_is_not_found,
    deleting_the_account_from_the_api_leaves_no_rows_behind,
    deleting_from_the_page_needs_the_username_typed,
    session_and_account_changes_from_another_site_are_refused,
);
// With Redis, a user deleted behind loginwith's back (an operator's SQL) keeps their sessions
// until they expire: the database's foreign key is what refuses them here. A deletion through
// loginwith ends them in Redis too (the account tests above, and the store's own tests).
/// The session table of an older loginwith, and its foreign key: the database store's alone.
mod database_store {
    use super::*;
    db_tests!(
        sessions_from_before_the_upgrade_still_log_in_and_are_listed_from_their_next_save,
        a_deleted_users_session_cannot_be_saved_back,
    );
}

const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
const SAFARI: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 \
                      (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";

/// Another browser on the same server that sends `agent` as its `User-Agent`.
fn browser_with_agent(app: &TestApp, agent: &str) -> TestApp {
    let mut browser = app.another_browser();
    browser.client = reqwest::Client::builder()
        .cookie_provider(browser.jar.clone())
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(agent)
        .build()
        .unwrap();
    browser
}

/// A change as the app's own script sends it.
fn same_origin(app: &TestApp, request: RequestBuilder) -> RequestBuilder {
    request.header(ORIGIN, app.address.clone()).header(CONTENT_TYPE, "application/json")
}

async fn list(app: &TestApp) -> Vec<Value> {
    let response = app.get("/api/me/sessions").await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    body["sessions"].as_array().expect("a list").clone()
}

/// The id of the listed session that is (or is not) the request's own.
fn id_where(sessions: &[Value], current: bool) -> String {
    let found = sessions.iter().find(|s| s["current"] == current).expect("such a session");
    found["id"].as_str().unwrap().to_owned()
}

async fn table_count(app: &TestApp, sql: &str) -> i64 {
    query_i64(&app.db, sql).await.unwrap_or(0)
}

async fn sessions_are_listed_with_their_browser_and_this_one_marked(db: Db) {
    let app = TestApp::builder(db).spawn().await;
    let laptop = browser_with_agent(&app, FIREFOX);
    let phone = browser_with_agent(&app, SAFARI);
    laptop.login_dev("two@example.com", true).await;
    phone.login_dev("two@example.com", true).await;

    let sessions = list(&laptop).await;
    assert_eq!(sessions.len(), 2, "{sessions:?}");
    let own: Vec<_> = sessions.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(own.len(), 1, "{sessions:?}");
    assert_eq!(own[0]["user_agent"], FIREFOX);
    let other = sessions.iter().find(|s| s["current"] == false).unwrap();
    assert_eq!(other["user_agent"], SAFARI);
    for s in &sessions {
        let id = s["id"].as_str().unwrap();
        assert!(id.len() >= 16, "an unguessable handle: {s}");
        assert!(!laptop.session_cookie().unwrap().contains(id), "not the session id: {s}");
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        assert!((now - s["created_at"].as_i64().unwrap()).abs() < 120, "{s}");
        assert!(s["last_used_at"].as_i64().unwrap() >= s["created_at"].as_i64().unwrap(), "{s}");
    }
    // The other browser sees the same two, with its own marked.
    assert_eq!(id_where(&list(&phone).await, true), id_where(&sessions, false));

    // The page: each browser named, this one marked, an "end" button for the other only.
    let page = expect_page(laptop.get("/account").await, StatusCode::OK, "Where you are logged in").await;
    assert!(page.contains("Firefox on Linux") && page.contains("Safari on iOS"), "{page}");
    assert!(page.contains("(this browser)"), "{page}");
    assert_eq!(page.matches(r#"action="/account/sessions/end""#).count(), 1, "{page}");
    assert!(page.contains("Log out everywhere else"), "{page}");
    // Nobody logged in: 401.
    let stranger = app.another_browser();
    let response = stranger.get("/api/me/sessions").await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

async fn ending_another_session_logs_it_out_at_once(db: Db) {
    let app = TestApp::builder(db).spawn().await;
    let laptop = browser_with_agent(&app, FIREFOX);
    let phone = browser_with_agent(&app, SAFARI);
    let tablet = browser_with_agent(&app, SAFARI);
    laptop.login_dev("three@example.com", true).await;
    phone.login_dev("three@example.com", true).await;
    tablet.login_dev("three@example.com", true).await;
    // The phone's session is read (and so cached) just before.
    phone.assert_logged_in_as("three@example.com").await;

    // From the API.
    let phone_id = id_where(&list(&phone).await, true);
    let response =
        same_origin(&laptop, laptop.client.delete(laptop.url(&format!("/api/me/sessions/{phone_id}"))))
            .send()
            .await
            .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    phone.assert_logged_out().await;
    assert_eq!(phone.get("/account").await.status(), StatusCode::SEE_OTHER, "to the login");
    laptop.assert_logged_in_as("three@example.com").await;
    assert_eq!(list(&laptop).await.len(), 2);

    // From the page.
    tablet.assert_logged_in_as("three@example.com").await;
    let tablet_id = id_where(&list(&tablet).await, true);
    let end_tablet =
        || laptop.client.post(laptop.url("/account/sessions/end")).form(&[("session", &tablet_id)]).send();
    let response = end_tablet().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/account");
    expect_page(laptop.get("/account").await, StatusCode::OK, "That session was ended").await;
    tablet.assert_logged_out().await;
    // Again: it is gone.
    end_tablet().await.unwrap();
    expect_page(laptop.get("/account").await, StatusCode::OK, "That session had already ended").await;

    // Ending one's own session is a logout.
    let own = id_where(&list(&laptop).await, true);
    let response = same_origin(&laptop, laptop.client.delete(laptop.url(&format!("/api/me/sessions/{own}"))))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    laptop.assert_logged_out().await;
    assert_eq!(app.user_count().await, 1, "the account stays");
}

async fn log_out_everywhere_else_keeps_only_this_session(db: Db) {
    let app = TestApp::builder(db).spawn().await;
    let browsers: Vec<TestApp> = (0..4).map(|_| browser_with_agent(&app, FIREFOX)).collect();
    for b in &browsers {
        b.login_dev("many@example.com", true).await;
    }
    // Someone else's session is not touched.
    let neighbour = app.another_browser();
    neighbour.login_dev("neighbour@example.com", true).await;

    let response = browsers[0]
        .client
        .post(browsers[0].url("/account/sessions/end-others"))
        .form(&[("", "")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    expect_page(browsers[0].get("/account").await, StatusCode::OK, "Your 3 other sessions were logged out")
        .await;
    for b in &browsers[1..] {
        b.assert_logged_out().await;
    }
    browsers[0].assert_logged_in_as("many@example.com").await;
    assert_eq!(list(&browsers[0]).await.len(), 1);
    neighbour.assert_logged_in_as("neighbour@example.com").await;
    // With none left.
    browsers[0]
        .client
        .post(browsers[0].url("/account/sessions/end-others"))
        .form(&[("", "")])
        .send()
        .await
        .unwrap();
    expect_page(browsers[0].get("/account").await, StatusCode::OK, "There were no other sessions").await;
}

async fn the_list_follows_logout_rotation_and_expiry(db: Db) {
    let (a, b, app) = two_trusted_mocks(db).await;
    a.set_userinfo(profile("me-at-a", "me@example.com", true));
    let one = app.another_browser();
    let two = app.another_browser();
    mock_login(&one, "a").await;
    mock_login(&two, "a").await;
    let before = list(&one).await;
    assert_eq!(before.len(), 2);

    // Connecting another provider gives the session a new id (as every callback does): still one
    // entry for that browser, under a new handle, logged in as long ago as before.
    b.set_userinfo(profile("me-at-b", "me@example.com", true));
    let response =
        two.client.post(two.url("/account/connect")).form(&[("provider", "b")]).send().await.unwrap();
    let state = query_param(&location(&response), "state").unwrap();
    let response = two.get(&format!("/callback/b?code=good-code&state={state}")).await;
    assert_eq!(location(&response), "/account");
    let after = list(&one).await;
    assert_eq!(after.len(), 2, "{after:?}");
    assert_ne!(id_where(&before, false), id_where(&after, false), "a new session id, a new handle");
    let created =
        |sessions: &[Value]| sessions.iter().find(|s| s["current"] == false).unwrap()["created_at"].clone();
    assert_eq!(created(&before), created(&after), "still logged in since the login");

    // Logout: gone from the list at once.
    two.logout().await;
    assert_eq!(list(&one).await.len(), 1);
    // Nothing is left of the rotated session and the logged-out one.
    assert_eq!(logged_in_sessions(&app, None).await, 1);
    mock_login(&two, "a").await;

    // Expiry: a session past its expiry date is not listed (nor used).
    let two_id = id_where(&list(&two).await, true);
    expire(&app, &two_id).await;
    let left = list(&one).await;
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0]["current"], true);
}

async fn a_session_id_that_is_not_yours_is_not_found(db: Db) {
    let app = TestApp::builder(db).spawn().await;
    let mine = app.another_browser();
    let theirs = app.another_browser();
    mine.login_dev("mine@example.com", true).await;
    theirs.login_dev("theirs@example.com", true).await;
    let their_id = id_where(&list(&theirs).await, true);
    for id in [their_id.as_str(), "no-such-session", "%00", "x".repeat(300).as_str()] {
        let response = same_origin(&mine, mine.client.delete(mine.url(&format!("/api/me/sessions/{id}"))))
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, StatusCode::NOT_FOUND, "{id}: {body}");
        assert_eq!(body["code"], "session_not_found", "{body}");
    }
    theirs.assert_logged_in_as("theirs@example.com").await;
    mine.assert_logged_in_as("mine@example.com").await;
}

/// The session table on this database.
fn session_table(app: &TestApp) -> &'static str {
    match app.db.kind {
        Db::Sqlite => "tower_sessions",
        Db::Postgres => "tower_sessions.session",
        Db::Redis => panic!("the sessions of this test are in Redis"),
    }
}

/// How many logged-in sessions are stored (of `user_id`, or of anyone), in the table or in Redis.
async fn logged_in_sessions(app: &TestApp, user_id: Option<i64>) -> i64 {
    let Some(prefix) = &app.db.redis_prefix else {
        let whose = user_id.map_or("IS NOT NULL".to_owned(), |id| format!("= {id}"));
        return table_count(
            app,
            &format!("SELECT COUNT(*) FROM {} WHERE user_id {whose}", session_table(app)),
        )
        .await;
    };
    use fred::interfaces::HashesInterface;
    let redis = redis_client().await;
    let mut n = 0;
    for key in redis_keys(&redis, &format!("{prefix}s:")).await {
        let owner: Option<String> = redis.hget(&key, "owner").await.unwrap();
        let owner = owner.unwrap_or_default();
        if !owner.is_empty() && user_id.is_none_or(|id| owner == id.to_string()) {
            n += 1;
        }
    }
    n
}

/// Makes the session listed under `handle` expire now, behind the server's back.
async fn expire(app: &TestApp, handle: &str) {
    let Some(prefix) = &app.db.redis_prefix else {
        let past = match app.db.kind {
            Db::Postgres => "'2001-01-01 00:00:00+00'",
            _ => "'2001-01-01 00:00:00.0 +00:00:00'",
        };
        let sql = format!("UPDATE {} SET expiry_date = {past} WHERE handle = '{handle}'", session_table(app));
        return execute(&app.db, &sql).await;
    };
    use fred::interfaces::{HashesInterface, KeysInterface};
    let redis = redis_client().await;
    for index in redis_keys(&redis, &format!("{prefix}u:")).await {
        let entries: std::collections::HashMap<String, String> = redis.hgetall(&index).await.unwrap();
        for (id, entry) in entries {
            if serde_json::from_str::<Value>(&entry).unwrap()["handle"] == handle {
                let _: i64 = redis.expire_at(format!("{prefix}s:{id}"), 978_307_200, None).await.unwrap();
                return;
            }
        }
    }
    panic!("no session has the handle {handle}");
}

/// How many rows the database holds for a user: in users, identities and sessions.
async fn rows_of(app: &TestApp, user_id: i64) -> [i64; 3] {
    [
        table_count(app, &format!("SELECT COUNT(*) FROM users WHERE id = {user_id}")).await,
        table_count(app, &format!("SELECT COUNT(*) FROM identities WHERE user_id = {user_id}")).await,
        logged_in_sessions(app, Some(user_id)).await,
    ]
}

async fn deleting_the_account_from_the_api_leaves_no_rows_behind(db: Db) {
    // Two identities (providers a and b), and a second browser logged in with a.
    let (_a, b, app) = one_user_two_providers(db).await;
    let second = app.another_browser();
    mock_login(&second, "a").await;
    let neighbour = app.another_browser();
    b.set_userinfo(profile("neighbour-at-b", "neighbour@example.com", true));
    mock_login(&neighbour, "b").await;
    let (_, me) = app.api_me().await;
    let id = me["id"].as_i64().unwrap();
    assert_eq!(rows_of(&app, id).await, [1, 2, 2]);
    let sessions_before = count_sessions(&app.db, None).await;

    // A body, when given, must confirm with the username.
    let delete = |body: Option<&str>| {
        let request = same_origin(&app, app.client.delete(app.url("/api/me")));
        match body {
            Some(body) => request.body(body.to_owned()),
            None => request,
        }
        .send()
    };
    for (body, code) in [
        (r#"{"confirm":"someone-else"}"#, "confirmation_mismatch"),
        (r#"{"confirm":42}"#, "bad_request"),
        (r#"{"unexpected":true}"#, "bad_request"),
        ("not json", "bad_request"),
    ] {
        let response = delete(Some(body)).await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(response.json::<Value>().await.unwrap()["code"], code, "{body}");
        assert_eq!(rows_of(&app, id).await, [1, 2, 2], "{body}: nothing deleted");
    }
    let confirm = format!(r#"{{"confirm":"{}"}}"#, me["username"].as_str().unwrap());
    let response = delete(Some(&confirm)).await.unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);

    assert_eq!(rows_of(&app, id).await, [0, 0, 0]);
    assert_eq!(count_sessions(&app.db, None).await, sessions_before - 2, "both sessions are gone");
    app.assert_logged_out().await;
    second.assert_logged_out().await;
    neighbour.assert_logged_in_as("neighbour@example.com").await;
    assert_eq!(app.user_count().await, 1, "only the neighbour is left");
    // Without a body at all (X-Requested-With), and once more when already gone.
    let response = neighbour
        .client
        .delete(neighbour.url("/api/me"))
        .header(ORIGIN, neighbour.address.clone())
        .header("X-Requested-With", "fetch")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.user_count().await, 0);
    let response =
        same_origin(&neighbour, neighbour.client.delete(neighbour.url("/api/me"))).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

async fn deleting_from_the_page_needs_the_username_typed(db: Db) {
    let app = TestApp::builder(db).spawn().await;
    app.login_dev("typed@example.com", true).await;
    let (_, me) = app.api_me().await;
    let id = me["id"].as_i64().unwrap();
    let page = expect_page(app.get("/account").await, StatusCode::OK, "Delete your account").await;
    assert!(
        page.contains(r#"action="/account/delete""#) && page.contains("<strong>typed</strong>"),
        "{page}"
    );

    let post =
        |confirm: &str| app.client.post(app.url("/account/delete")).form(&[("confirm", confirm)]).send();
    for wrong in ["", "Typed", "typed@example.com", "delete"] {
        let response = post(wrong).await.unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{wrong:?}");
        expect_page(app.get("/account").await, StatusCode::OK, "type your username exactly").await;
        assert_eq!(rows_of(&app, id).await[..2], [1, 1], "{wrong:?}: nothing deleted");
    }
    let page = expect_page(post("typed").await.unwrap(), StatusCode::OK, "Your account is deleted").await;
    assert!(page.contains("You are logged out"), "{page}");
    assert_eq!(rows_of(&app, id).await, [0, 0, 0]);
    app.assert_logged_out().await;
    // Logging in again makes a new, empty account.
    app.login_dev("typed@example.com", true).await;
    let (_, again) = app.api_me().await;
    assert_ne!(again["id"], me["id"]);
}

async fn a_deleted_users_session_cannot_be_saved_back(db: Db) {
    let app = TestApp::builder(db).spawn().await;
    app.login_dev("gone@example.com", true).await;
    let (_, me) = app.api_me().await;
    let sessions_before = count_sessions(&app.db, None).await;
    // The user disappears behind the session's back (another instance, an operator's SQL).
    execute(&app.db, &format!("DELETE FROM users WHERE id = {}", me["id"])).await;
    // The next request that writes the session (a form's message) ends it instead.
    app.client.post(app.url("/account/disconnect")).form(&[("provider", "dev")]).send().await.unwrap();
    assert_eq!(count_sessions(&app.db, None).await, sessions_before - 1, "the session was ended");
    app.assert_logged_out().await;
}

async fn session_and_account_changes_from_another_site_are_refused(db: Db) {
    let app = TestApp::builder(db).spawn().await;
    let other = app.another_browser();
    app.login_dev("careful@example.com", true).await;
    other.login_dev("careful@example.com", true).await;
    let other_id = id_where(&list(&other).await, true);
    let (_, me) = app.api_me().await;
    let id = me["id"].as_i64().unwrap();

    // The API: another origin, or no header a form cannot send.
    for path in [format!("/api/me/sessions/{other_id}"), "/api/me".to_owned()] {
        for (origin, content_type, status, code) in [
            ("https://evil.example", "application/json", StatusCode::FORBIDDEN, "cross_origin"),
            ("null", "application/json", StatusCode::FORBIDDEN, "cross_origin"),
            (app.address.as_str(), "text/plain", StatusCode::UNSUPPORTED_MEDIA_TYPE, "json_required"),
        ] {
            let response = app
                .client
                .delete(app.url(&path))
                .header(ORIGIN, origin)
                .header(CONTENT_TYPE, content_type)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), status, "{path} from {origin}");
            assert_eq!(response.json::<Value>().await.unwrap()["code"], code);
        }
    }
    // The page's forms.
    for (path, field) in [
        ("/account/sessions/end", ("session", other_id.as_str())),
        ("/account/sessions/end-others", ("x", "")),
        ("/account/delete", ("confirm", "careful")),
    ] {
        let response = app
            .client
            .post(app.url(path))
            .header(ORIGIN, "https://evil.example")
            .form(&[field])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
    }
    other.assert_logged_in_as("careful@example.com").await;
    app.assert_logged_in_as("careful@example.com").await;
    assert_eq!(rows_of(&app, id).await, [1, 1, 2], "nothing was ended or deleted");
}

async fn sessions_from_before_the_upgrade_still_log_in_and_are_listed_from_their_next_save(db: Db) {
    // A database where tower-sessions-sqlx-store made the session table, as loginwith did before.
    let old = std::sync::Arc::new(TestDb::new(db).await);
    if let Some(path) = old.url.strip_prefix("sqlite://") {
        std::fs::File::create(path).unwrap();
    }
    let ddl = match db {
        Db::Sqlite | Db::Redis => "create table if not exists tower_sessions \
                       (id text primary key not null, data blob not null, expiry_date integer not null)",
        Db::Postgres => "create schema if not exists \"tower_sessions\"; \
                         create table if not exists \"tower_sessions\".\"session\" \
                         (id text primary key not null, data bytea not null, expiry_date timestamptz not null)",
    };
    execute(&old, ddl).await;
    let app = TestApp::builder(db).on(old.clone()).spawn().await;
    app.login_dev("upgraded@example.com", true).await;
    // The row as the old store wrote it: the session alone, none of the new columns.
    let table = session_table(&app);
    execute(
        &old,
        &format!(
            "UPDATE {table} SET user_id = NULL, handle = NULL, logged_in_at = NULL, last_used_at = NULL, \
             user_agent = NULL"
        ),
    )
    .await;
    let cookie = app.session_cookie().unwrap();
    drop(app);

    let again = TestApp::builder(db).on(old).spawn().await;
    let url = url::Url::parse(&again.address).unwrap();
    again.jar.add_cookie_str(&format!("{}={cookie}", loginwith::SESSION_COOKIE), &url);
    again.assert_logged_in_as("upgraded@example.com").await;
    assert_eq!(list(&again).await.len(), 0, "not listed before it is saved again");
    // Any save (here a form's message) writes the new columns.
    again.client.post(again.url("/account/disconnect")).form(&[("provider", "nobody")]).send().await.unwrap();
    let sessions = list(&again).await;
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    assert_eq!(sessions[0]["current"], true);
}
