//! Running as a service (issue 11): the probes, and a database that goes away and comes back
//! while the server keeps running.

use crate::binary::Binary;
use crate::db_tests;
use crate::helpers::*;
use reqwest::StatusCode;
use std::time::{Duration, Instant};

db_tests!(healthz_is_liveness_and_readyz_is_the_database);

async fn healthz_is_liveness_and_readyz_is_the_database(db: Db) {
    let app = TestApp::builder(db).spawn().await;
    let response = app.get("/healthz").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text().await.unwrap(), "ok\n");
    let response = app.get("/readyz").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text().await.unwrap(), "ready\n");
}

/// Runs SQL on the PostgreSQL server as the admin.
async fn admin(sql: &str) {
    use sqlx::{Connection, Executor};
    let mut conn = sqlx::PgConnection::connect(&postgres_admin_url()).await.expect("connect as admin");
    conn.execute(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    let _ = conn.close().await;
}

/// The database refuses connections for a while (as during a restart): the instance says it is
/// not ready, stays alive, answers a login with a 503 page rather than a half-written login, and
/// is ready again once the database is back, without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_makes_the_instance_unready_until_it_is_back() {
    if !postgres_available().await {
        return;
    }
    let app = TestApp::builder(Db::Postgres).spawn().await;
    app.login_dev("during@example.com", true).await;
    let name = url::Url::parse(&app.db.url).unwrap().path().trim_start_matches('/').to_owned();

    admin(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false")).await;
    admin(&format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")).await;
    until(&app, "/readyz", StatusCode::SERVICE_UNAVAILABLE, Duration::from_secs(20)).await;
    // A probe (no cookie) hears that the process is alive all the same.
    let probe = reqwest::get(app.url("/healthz")).await.unwrap();
    assert_eq!(probe.status(), StatusCode::OK, "alive all the same");
    // A login started now cannot be written: a 503 page, not a 500.
    let stranger = app.another_browser();
    let response = stranger.get("/authorize/dev").await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let users = {
        admin(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true")).await;
        until(&app, "/readyz", StatusCode::OK, Duration::from_secs(20)).await;
        app.user_count().await
    };
    assert_eq!(users, 1, "nothing half-written");
    // Back to normal: a new login works, and the earlier one is still logged in.
    stranger.login_dev("after@example.com", true).await;
    app.assert_logged_in_as("during@example.com").await;
}

/// SQLite is for one server at a time (each keeps sessions in memory, so a logout on one would
/// not reach the other): a second one on the same file is refused with a message that says what
/// to do, unless its session cache is off; once the first has stopped, the file is free again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_server_on_the_same_sqlite_file_is_refused_with_a_clear_error() {
    let first = TestApp::builder(Db::Sqlite).spawn().await;
    let config = |cache: bool| {
        let mut config = loginwith::Config::development(&first.db.url);
        config.server.public_url = Some("http://127.0.0.1:9/".parse().unwrap());
        config.server.session_cache = cache;
        config
    };
    let second = loginwith::Loginwith::builder(config(true)).build().await;
    let err = match second {
        Ok(_) => panic!("a second server on the same SQLite file started"),
        Err(err) => loginwith::error_chain(&err),
    };
    assert!(
        err.contains("another loginwith server is already using the SQLite database")
            && err.contains("PostgreSQL")
            && err.contains("session_cache = false"),
        "{err}"
    );
    let uncached = loginwith::Loginwith::builder(config(false)).build().await;
    assert!(uncached.is_ok(), "without the cache it may");

    let database = first.db.clone();
    drop(first);
    let again = TestApp::builder(Db::Sqlite).on(database).spawn().await;
    again.login_dev("after@example.com", true).await;
}

/// SIGTERM: the server stops accepting connections at once, lets a login in flight (its provider
/// answers slowly) finish, then exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_a_login_in_flight_finish_then_exits_0() {
    let mock = crate::mock_provider::MockProvider::start().await;
    let token = serde_json::json!({"access_token": "mock-token", "token_type": "bearer"});
    mock.set_token(crate::mock_provider::Scripted::json(200, token).delayed(Duration::from_millis(1500)));
    let dir = tempfile::tempdir().unwrap();
    let mut server = Binary::start(dir.path(), &mock.provider_toml("mock")).await;
    let store = loginwith::Store::connect(&format!("sqlite://{}", dir.path().join("instances.db").display()))
        .await
        .unwrap();
    let app = TestApp::attach(&server.address, store);

    let authorize = app.begin_login("mock").await;
    let in_flight = callback_in_flight(&app, &authorize);
    tokio::time::sleep(Duration::from_millis(400)).await;
    server.terminate();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // No new connection is accepted.
    let fresh = reqwest::Client::new().get(format!("{}/healthz", server.address)).send().await;
    assert!(fresh.is_err(), "a new connection was accepted after SIGTERM: {fresh:?}");
    // The login in flight completes.
    let response = in_flight.await.unwrap().expect("the callback in flight is answered");
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "{:?}", response.text().await);
    assert_eq!(location(&response), "/");
    let status = server.exit_within(Duration::from_secs(10)).await.expect("it exits");
    assert_eq!(status.code(), Some(0));
    assert_eq!(app.user_count().await, 1, "the login was recorded");
}

/// A request that outlives `shutdown_grace_secs` does not keep the server from stopping.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_after_the_grace_period_even_with_a_request_in_flight() {
    let mock = crate::mock_provider::MockProvider::start().await;
    let token = serde_json::json!({"access_token": "mock-token", "token_type": "bearer"});
    mock.set_token(crate::mock_provider::Scripted::json(200, token).delayed(Duration::from_secs(60)));
    let dir = tempfile::tempdir().unwrap();
    let toml = format!("shutdown_grace_secs = 1\n{}", mock.provider_toml("mock"));
    let mut server = Binary::start(dir.path(), &toml).await;
    let store = loginwith::Store::connect(&format!("sqlite://{}", dir.path().join("instances.db").display()))
        .await
        .unwrap();
    let app = TestApp::attach(&server.address, store);

    let authorize = app.begin_login("mock").await;
    let in_flight = callback_in_flight(&app, &authorize);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stopped = Instant::now();
    server.terminate();
    let status = server.exit_within(Duration::from_secs(10)).await.expect("it exits");
    assert_eq!(status.code(), Some(0));
    let took = stopped.elapsed();
    assert!(took >= Duration::from_millis(900), "it waited the grace period: {took:?}");
    assert!(in_flight.await.unwrap().is_err(), "the request that outlived the grace got no answer");
}

/// Three instances starting at once on a fresh PostgreSQL database: all start, and each migration
/// ran once (sqlx's advisory lock), not three times or half.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_starting_together_on_a_fresh_database_migrate_once() {
    if !postgres_available().await {
        return;
    }
    let db = TestDb::new(Db::Postgres).await;
    let start = || {
        let mut config = loginwith::Config::development(&db.url);
        config.server.public_url = Some("http://127.0.0.1:9/".parse().unwrap());
        loginwith::Loginwith::builder(config).build()
    };
    let (a, b, c) = tokio::join!(start(), start(), start());
    for (i, started) in [a, b, c].into_iter().enumerate() {
        if let Err(err) = started {
            panic!("instance {i} did not start: {}", loginwith::error_chain(&err));
        }
    }
    let applied = query_i64(&db, "SELECT COUNT(*) FROM _sqlx_migrations WHERE success").await;
    let distinct = query_i64(&db, "SELECT COUNT(DISTINCT version) FROM _sqlx_migrations").await;
    let files =
        std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres")).unwrap().count();
    assert_eq!(applied, Some(files as i64));
    assert_eq!(distinct, Some(files as i64));
}

/// Asks `/api/me` on `app` until it answers `status` (a notification from the other instance
/// takes a moment to arrive); panics after two seconds.
async fn me_until(app: &TestApp, status: StatusCode) {
    until(app, "/api/me", status, Duration::from_secs(2)).await;
}

/// Two instances on one PostgreSQL, both with the session cache on: a session cached on one is
/// dropped from it when the other logs it out, and an account changed on one is read afresh on
/// the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_on_one_instance_is_seen_by_the_other_despite_its_cache() {
    if !postgres_available().await {
        return;
    }
    let one = TestApp::builder(Db::Postgres).spawn().await;
    let two = TestApp::builder(Db::Postgres).on(one.db.clone()).spawn().await;
    one.login_dev("both@example.com", true).await;
    // The same browser on the other instance: the cookie works there, and is now cached there.
    let cookie = one.session_cookie().unwrap();
    let url = url::Url::parse(&two.address).unwrap();
    two.jar.add_cookie_str(&format!("{}={cookie}", loginwith::SESSION_COOKIE), &url);
    for _ in 0..3 {
        assert_eq!(two.api_me().await.0, StatusCode::OK);
    }
    one.logout().await;
    me_until(&two, StatusCode::UNAUTHORIZED).await;

    // Account changes: a second browser logs in on `one`, its identities are read on `two`...
    let again = one.another_browser();
    again.login_dev("changes@example.com", true).await;
    let cookie = again.session_cookie().unwrap();
    let elsewhere = two.another_browser();
    elsewhere.jar.add_cookie_str(&format!("{}={cookie}", loginwith::SESSION_COOKIE), &url);
    let (_, me) = elsewhere.api_me().await;
    assert_eq!(me["username"], "changes");
    // ...and a change written on `one` (here straight into the database) is seen on `two`.
    execute(&one.db, "UPDATE users SET username = 'renamed' WHERE email = 'changes@example.com'").await;
    eventually(Duration::from_secs(2), || async {
        let (_, me) = elsewhere.api_me().await;
        (me["username"] != "renamed").then(|| format!("the other instance still shows {me}"))
    })
    .await;
}

/// When the channel that carries the other instances' changes is cut, the cache is bypassed until
/// it is back: a logout on one instance is seen on the other even then.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_change_channel_the_cache_is_bypassed() {
    if !postgres_available().await {
        return;
    }
    let one = TestApp::builder(Db::Postgres).spawn().await;
    let two = TestApp::builder(Db::Postgres).on(one.db.clone()).spawn().await;
    one.login_dev("cut@example.com", true).await;
    let cookie = one.session_cookie().unwrap();
    let url = url::Url::parse(&two.address).unwrap();
    two.jar.add_cookie_str(&format!("{}={cookie}", loginwith::SESSION_COOKIE), &url);
    assert_eq!(two.api_me().await.0, StatusCode::OK);
    // Cut every LISTEN connection on this database, and keep new ones out for a moment: the
    // listeners cannot come back at once.
    let name = url::Url::parse(&one.db.url).unwrap().path().trim_start_matches('/').to_owned();
    admin(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}' AND query LIKE 'LISTEN%'"
    ))
    .await;
    // Logged out straight in the database, as a write whose notification nobody heard would be.
    execute(&one.db, "DELETE FROM tower_sessions.session").await;
    me_until(&two, StatusCode::UNAUTHORIZED).await;
}
