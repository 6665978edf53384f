//! Sessions in Redis beyond what every session store does (those tests run on Redis too, through
//! `session_store_tests!`): several instances sharing one Redis keep their caches coherent, a
//! lost change channel makes them read Redis, a Redis that goes away and comes back, and a Redis
//! that does not answer at start.
//!
//! The outage tests run a private `redis-server` (Debian's) on a free loopback port, so that they
//! can stop and start it without disturbing anything else.

use crate::helpers::*;
use reqwest::StatusCode;
use std::time::{Duration, Instant};

/// A `redis-server` of the test's own, in a temp dir, keeping its data across restarts (append
/// only file), killed when dropped.
struct PrivateRedis {
    child: Option<std::process::Child>,
    port: u16,
    dir: tempfile::TempDir,
}

impl PrivateRedis {
    /// `None` (the test is skipped) when there is no `redis-server`, unless Redis is required.
    async fn start() -> Option<PrivateRedis> {
        let found = std::process::Command::new("redis-server").arg("--version").output().is_ok();
        if !found {
            assert!(
                std::env::var("LOGINWITH_REQUIRE_REDIS").as_deref() != Ok("1"),
                "redis-server is required (LOGINWITH_REQUIRE_REDIS=1) but is not on PATH"
            );
            eprintln!("SKIPPED: no redis-server on PATH");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut redis = PrivateRedis { child: None, port, dir: tempfile::tempdir().unwrap() };
        redis.run().await;
        Some(redis)
    }

    async fn run(&mut self) {
        let child = std::process::Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", ""])
            .args(["--appendonly", "yes", "--appendfsync", "always"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        let started = Instant::now();
        while tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.is_err() {
            assert!(started.elapsed() < Duration::from_secs(10), "redis-server did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Stops it (as a crash would: SIGKILL).
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// A client of this server.
    async fn client(&self) -> fred::clients::Client {
        use fred::interfaces::ClientLike;
        let config = fred::types::config::Config::from_url(&self.url()).unwrap();
        let client = fred::types::Builder::from_config(config).build().unwrap();
        client.init().await.unwrap();
        client
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `[sessions]` in Redis at `url`, under a prefix of this test's own.
fn sessions_toml(url: &str) -> String {
    format!("[sessions]\nurl = \"{url}\"\nkey_prefix = \"lwtest:{}:\"\n", random_name(12))
}

/// The same browser (its cookie) on `other`.
fn same_browser_on(app: &TestApp, other: &TestApp) -> TestApp {
    let browser = other.another_browser();
    let cookie = app.session_cookie().unwrap();
    let url = url::Url::parse(&other.address).unwrap();
    browser.jar.add_cookie_str(&format!("{}={cookie}", loginwith::SESSION_COOKIE), &url);
    browser
}

/// Two instances on one PostgreSQL and one Redis, both caching sessions: a logout, "log out
/// everywhere else" and an account deletion on one are seen by the other on its very next request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_sharing_redis_see_each_others_logouts_at_once() {
    if !(postgres_available().await && redis_available().await) {
        return;
    }
    let toml = sessions_toml(&redis_url());
    let one = TestApp::builder(Db::Postgres).toml(&toml).spawn().await;
    let two = TestApp::builder(Db::Postgres).on(one.db.clone()).toml(&toml).spawn().await;
    // Each instance's cache starts distrusted until its subscription stands.
    until(&two, "/readyz", StatusCode::OK, Duration::from_secs(5)).await;

    one.login_dev("shared@example.com", true).await;
    let there = same_browser_on(&one, &two);
    for _ in 0..3 {
        assert_eq!(there.api_me().await.0, StatusCode::OK, "cached on the other instance");
    }
    one.logout().await;
    assert_eq!(there.api_me().await.0, StatusCode::UNAUTHORIZED, "logged out there at once");

    // "Log out everywhere else" on one ends a session cached on two.
    one.login_dev("shared@example.com", true).await;
    let laptop = one.another_browser();
    laptop.login_dev("shared@example.com", true).await;
    let laptop_there = same_browser_on(&laptop, &two);
    for _ in 0..3 {
        assert_eq!(laptop_there.api_me().await.0, StatusCode::OK);
    }
    one.client.post(one.url("/account/sessions/end-others")).form(&[("", "")]).send().await.unwrap();
    assert_eq!(laptop_there.api_me().await.0, StatusCode::UNAUTHORIZED, "ended there at once");

    // Deleting the account on two ends the session cached on one.
    let phone = two.another_browser();
    phone.login_dev("shared@example.com", true).await;
    let (_, me) = one.api_me().await;
    assert_eq!(me["email"], "shared@example.com");
    let response = phone
        .client
        .delete(phone.url("/api/me"))
        .header("origin", phone.address.clone())
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(one.api_me().await.0, StatusCode::UNAUTHORIZED, "the account is gone everywhere");
    assert_eq!(one.user_count().await, 0);
}

/// When the channel that carries the other instances' changes is cut, the cache is bypassed and
/// then starts again from empty: a session ended behind its back (a change nobody published) is
/// not served from it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_redis_change_channel_the_cache_is_bypassed() {
    let Some(redis) = PrivateRedis::start().await else { return };
    let prefix = format!("lwtest:{}:", random_name(12));
    let toml = format!("[sessions]\nurl = \"{}\"\nkey_prefix = \"{prefix}\"\n", redis.url());
    let app = TestApp::builder(Db::Sqlite).toml(&toml).spawn().await;
    app.login_dev("cut@example.com", true).await;
    for _ in 0..3 {
        assert_eq!(app.api_me().await.0, StatusCode::OK);
    }
    use fred::interfaces::{ClientLike, KeysInterface};
    let client = redis.client().await;
    let killed: i64 = client
        .custom(fred::types::CustomCommand::new_static("CLIENT", None, false), vec!["KILL", "TYPE", "pubsub"])
        .await
        .unwrap();
    assert_eq!(killed, 1, "the instance's one subscription");
    let keys = redis_keys(&client, &format!("{prefix}s:")).await;
    assert_eq!(keys.len(), 1, "{keys:?}");
    let _: i64 = client.del(keys).await.unwrap();
    until(&app, "/api/me", StatusCode::UNAUTHORIZED, Duration::from_secs(2)).await;
}

/// Redis goes away: the instance says it is not ready, stays alive, answers with the 503 page
/// rather than an error or a half-done login; when Redis is back (same data), the same process
/// serves the earlier login and new ones without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_gives_503_until_it_is_back() {
    let Some(mut redis) = PrivateRedis::start().await else { return };
    let app = TestApp::builder(Db::Sqlite).toml(&sessions_toml(&redis.url())).spawn().await;
    app.login_dev("during@example.com", true).await;

    redis.stop();
    // As a probe asks: without a cookie.
    let response = reqwest::get(app.url("/readyz")).await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.text().await.unwrap(), "not ready: the session store (Redis) does not answer\n");
    assert_eq!(reqwest::get(app.url("/healthz")).await.unwrap().status(), StatusCode::OK, "alive");
    // The probes do not read the session, even when a cookie comes with them.
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK, "alive, with a cookie too");
    assert_eq!(app.get("/readyz").await.status(), StatusCode::SERVICE_UNAVAILABLE);
    let stranger = app.another_browser();
    let response = stranger.get("/authorize/dev").await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.headers().contains_key("retry-after"));
    expect_page(response, StatusCode::SERVICE_UNAVAILABLE, "Temporarily unavailable").await;
    let (status, _) = app.api_me().await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "the logged-in browser waits too");
    assert_eq!(app.user_count().await, 1, "nothing written meanwhile");

    redis.run().await;
    until(&app, "/readyz", StatusCode::OK, Duration::from_secs(15)).await;
    app.assert_logged_in_as("during@example.com").await;
    stranger.login_dev("after@example.com", true).await;
    stranger.assert_logged_in_as("after@example.com").await;
    assert_eq!(app.user_count().await, 2);
}

/// A Redis that does not answer stops the start, with a message that names it (without its
/// password).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_does_not_answer_stops_the_start_with_a_clear_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[server]\nbind = \"127.0.0.1:0\"\npublic_url = \"http://127.0.0.1:5000\"\n\
         secret_key = \"redis-test-secret-key-long-enough-0123456789\"\n\
         [database]\nurl = \"sqlite://{}\"\n[sessions]\nurl = \"redis://:hunter2@127.0.0.1:{port}/0\"\n",
        dir.path().join("start.db").display()
    );
    let config = loginwith::Config::from_toml(&toml).unwrap();
    let err = match loginwith::App::build(config).await {
        Ok(_) => panic!("started without its session store"),
        Err(err) => loginwith::error_chain(&err),
    };
    assert!(
        err.contains(&format!("cannot connect to the session store at redis://127.0.0.1:{port}/0")),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "{err}");
}
