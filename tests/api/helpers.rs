//! `spawn_app()` and the steps of a login, named as a person would take them.

#![allow(dead_code)]

use loginwith::config::Config;
use loginwith::{App, Store};
use reqwest::cookie::{CookieStore, Jar};
use reqwest::header::LOCATION;
use reqwest::{Client, Response, StatusCode};
use std::sync::Arc;
use url::Url;

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// Runs each named test body (an `async fn name(db: Db)`) once on SQLite and once on PostgreSQL.
/// Attributes written before a name (e.g. `#[ignore = "bug: ..."]`) apply to both tests.
#[macro_export]
macro_rules! db_tests {
    ($( $(#[$meta:meta])* $name:ident ),* $(,)?) => {
        mod on_sqlite {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               $(#[$meta])*
               async fn $name() { super::$name($crate::helpers::Db::Sqlite).await } )*
        }
        mod on_postgres {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               $(#[$meta])*
               async fn $name() {
                   if $crate::helpers::postgres_available().await {
                       super::$name($crate::helpers::Db::Postgres).await
                   }
               } )*
        }
    };
}

/// `len` random lower-case letters and digits (database names, forged key ids).
pub fn random_name(len: usize) -> String {
    use rand::Rng;
    rand::thread_rng()
        .sample_iter(&rand::distributions::Alphanumeric)
        .take(len)
        .map(|c| (c as char).to_ascii_lowercase())
        .collect()
}

/// The admin URL tests create their databases through.
pub fn postgres_admin_url() -> String {
    std::env::var("LOGINWITH_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// True when PostgreSQL answers. When it does not, says so (the test is skipped) — or fails when
/// `LOGINWITH_REQUIRE_POSTGRES=1` (CI), so that a missing server cannot pass silently there.
pub async fn postgres_available() -> bool {
    use sqlx::Connection;
    let url = postgres_admin_url();
    match tokio::time::timeout(std::time::Duration::from_secs(5), sqlx::PgConnection::connect(&url)).await {
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
            true
        }
        other => {
            let why = match other {
                Ok(Err(e)) => e.to_string(),
                _ => "timed out".to_owned(),
            };
            if std::env::var("LOGINWITH_REQUIRE_POSTGRES").as_deref() == Ok("1") {
                panic!(
                    "PostgreSQL is required (LOGINWITH_REQUIRE_POSTGRES=1) but {url} is not reachable: {why}"
                );
            }
            eprintln!("SKIPPED: PostgreSQL not reachable at {url} ({why}); set LOGINWITH_TEST_POSTGRES_URL");
            false
        }
    }
}

/// A database made for one test and dropped after it.
pub struct TestDb {
    pub url: String,
    kind: Db,
    _dir: Option<tempfile::TempDir>,
    pg_name: Option<String>,
}

impl TestDb {
    pub async fn new(kind: Db) -> TestDb {
        match kind {
            Db::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}", dir.path().join("test.db").display());
                TestDb { url, kind, _dir: Some(dir), pg_name: None }
            }
            Db::Postgres => {
                use sqlx::{Connection, Executor};
                let name = format!("loginwith_test_{}", random_name(12));
                let admin = postgres_admin_url();
                let mut conn = sqlx::PgConnection::connect(&admin).await.expect("connect to PostgreSQL");
                conn.execute(format!("CREATE DATABASE {name}").as_str()).await.expect("create test database");
                let _ = conn.close().await;
                let mut url = Url::parse(&admin).expect("admin URL");
                url.set_path(&name);
                TestDb { url: url.to_string(), kind, _dir: None, pg_name: Some(name) }
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(name) = self.pg_name.take() else {
            return;
        };
        let admin = postgres_admin_url();
        // Drop runs inside the test's runtime; a separate thread with its own runtime does the async work.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                return;
            };
            rt.block_on(async move {
                use sqlx::{Connection, Executor};
                if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                    let _ =
                        conn.execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str()).await;
                    let _ = conn.close().await;
                }
            });
        })
        .join();
    }
}

/// Runs one SQL statement on a test database (to set up what an older version left behind).
pub async fn execute(db: &TestDb, sql: &str) {
    use sqlx::{Connection, Executor};
    match db.kind {
        Db::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&db.url).await.expect("connect to SQLite");
            conn.execute(sql).await.expect("execute");
            let _ = conn.close().await;
        }
        Db::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&db.url).await.expect("connect to PostgreSQL");
            conn.execute(sql).await.expect("execute");
            let _ = conn.close().await;
        }
    }
}

/// The one number a query returns (`SELECT COUNT(*) ...`, a column of one row), or `None` when it
/// returns no row: for checking what a host app wrote into its own tables.
pub async fn query_i64(db: &TestDb, sql: &str) -> Option<i64> {
    use sqlx::Connection;
    match db.kind {
        Db::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&db.url).await.expect("connect to SQLite");
            let n = sqlx::query_scalar(sql).fetch_optional(&mut conn).await.expect("query");
            let _ = conn.close().await;
            n
        }
        Db::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&db.url).await.expect("connect to PostgreSQL");
            let n = sqlx::query_scalar(sql).fetch_optional(&mut conn).await.expect("query");
            let _ = conn.close().await;
            n
        }
    }
}

/// How many stored sessions expire after `after` (all of them with `None`).
pub async fn count_sessions(db: &TestDb, after: Option<time::OffsetDateTime>) -> i64 {
    use sqlx::Connection;
    let after = after.unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    match db.kind {
        Db::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&db.url).await.expect("connect to SQLite");
            let sql = "SELECT COUNT(*) FROM tower_sessions WHERE expiry_date > ?";
            let n = sqlx::query_scalar(sql).bind(after).fetch_one(&mut conn).await.expect("count sessions");
            let _ = conn.close().await;
            n
        }
        Db::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&db.url).await.expect("connect to PostgreSQL");
            let sql = "SELECT COUNT(*) FROM tower_sessions.session WHERE expiry_date > $1";
            let n = sqlx::query_scalar(sql).bind(after).fetch_one(&mut conn).await.expect("count sessions");
            let _ = conn.close().await;
            n
        }
    }
}

/// A running app and a browser-like client (cookie jar, no redirect following).
pub struct TestApp {
    pub address: String,
    /// The path loginwith is mounted under (`""`, or e.g. `/auth`); the login steps below use it.
    pub base: String,
    pub port: u16,
    pub client: Client,
    pub jar: Arc<Jar>,
    pub store: Store,
    pub db: Arc<TestDb>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

pub fn browser_client(jar: Arc<Jar>) -> Client {
    Client::builder()
        .cookie_provider(jar)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// The app with the development provider only.
pub async fn spawn_app(db: Db) -> TestApp {
    spawn_app_with(db, "").await
}

/// The app with extra TOML (providers, limits) appended to a loopback test configuration.
pub async fn spawn_app_with(db: Db, extra_toml: &str) -> TestApp {
    let test_db = Arc::new(TestDb::new(db).await);
    spawn_app_on(test_db, extra_toml).await
}

/// The app with extra `[server]` keys (e.g. `login_timeout_secs = 1`) as well as extra TOML. The
/// test configuration writes the `[server]` table itself, so a second one cannot be appended.
pub async fn spawn_app_with_server(db: Db, server_keys: &str, extra_toml: &str) -> TestApp {
    let test_db = Arc::new(TestDb::new(db).await);
    spawn_app_on_with_server(test_db, server_keys, extra_toml).await
}

/// The server with its `public_url` under a path (`/auth`): a free port is picked first, since
/// the public URL must name it.
pub async fn spawn_mounted(db: Db, path: &str, extra_toml: &str) -> TestApp {
    let port =
        std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
    let server = format!("bind = \"127.0.0.1:{port}\"\npublic_url = \"http://127.0.0.1:{port}{path}\"");
    let test_db = Arc::new(TestDb::new(db).await);
    let mut app = spawn_app_on_with_server(test_db, &server, extra_toml).await;
    app.base = path.trim_end_matches('/').to_owned();
    app
}

/// The app on an existing test database (to restart against the same data).
pub async fn spawn_app_on(test_db: Arc<TestDb>, extra_toml: &str) -> TestApp {
    spawn_app_on_with_server(test_db, "", extra_toml).await
}

/// The app on an existing test database, with extra `[server]` keys and extra TOML.
pub async fn spawn_app_on_with_server(test_db: Arc<TestDb>, server_keys: &str, extra_toml: &str) -> TestApp {
    // Tests make many logins from 127.0.0.1 in a row: no rate limits unless the test is about them
    // (then its TOML has its own [limits] table).
    let limits = if extra_toml.contains("[limits]") {
        ""
    } else {
        "[limits]\nauthorize_per_minute = 0\ncallback_per_minute = 0\ndev_provider_per_minute = 0\n"
    };
    let bind = if server_keys.contains("bind =") { "" } else { "bind = \"127.0.0.1:0\"\n" };
    let toml = format!(
        "[server]\n{bind}secret_key = \"test-secret-key-that-is-long-enough-0123456789\"\n\
         {server_keys}\n[database]\nurl = \"{}\"\n{limits}{extra_toml}",
        test_db.url
    );
    let config = Config::from_toml(&toml).unwrap_or_else(|e| panic!("test configuration: {e}"));
    let app =
        App::build(config).await.unwrap_or_else(|e| panic!("app start: {}", loginwith::error_chain(&e)));
    let port = app.port();
    let store = app.loginwith().store().clone();
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(app.run_until(async move {
        let _ = rx.await;
    }));
    let jar = Arc::new(Jar::default());
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        base: String::new(),
        port,
        client: browser_client(jar.clone()),
        jar,
        store,
        db: test_db,
        shutdown: Some(tx),
    }
}

pub fn location(response: &Response) -> String {
    response
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no Location header (status {})", response.status()))
        .to_owned()
}

/// Asserts a response's exact status and that its page contains `phrase`; returns the page.
pub async fn expect_page(response: Response, status: StatusCode, phrase: &str) -> String {
    let got = response.status();
    let url = response.url().to_string();
    let page = response.text().await.unwrap_or_default();
    assert_eq!(got, status, "GET {url}: unexpected status; page:\n{page}");
    assert!(page.contains(phrase), "GET {url}: the page should contain {phrase:?}:\n{page}");
    page
}

/// `/api/me`'s identities as (provider, subject) pairs, in its order.
pub fn identity_keys(me: &serde_json::Value) -> Vec<(String, String)> {
    me["identities"]
        .as_array()
        .map(|ids| {
            ids.iter()
                .map(|i| {
                    let text = |k: &str| i[k].as_str().unwrap_or_default().to_owned();
                    (text("provider"), text("subject"))
                })
                .collect()
        })
        .unwrap_or_default()
}

pub fn query_param(url: &str, name: &str) -> Option<String> {
    let url = Url::parse(url).ok()?;
    url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn get(&self, path: &str) -> Response {
        self.client.get(self.url(path)).send().await.expect("GET")
    }

    pub async fn get_url(&self, url: &str) -> Response {
        self.client.get(url).send().await.expect("GET")
    }

    /// A host app that embeds loginwith, served on a random port with a fresh database: `host`
    /// gets the built [`Loginwith`] and returns the whole router to serve (its own routes merged
    /// with `lw.routes()` and wrapped in `lw.layer(...)`, as an embedding app does). `configure`
    /// may change the configuration first (its `public_url` is set to the served address, to
    /// which a path such as `/auth` may be appended).
    pub async fn embedded(
        db: Db,
        configure: impl FnOnce(&mut loginwith::Config),
        host: impl FnOnce(&loginwith::Loginwith) -> axum::Router,
    ) -> TestApp {
        Self::embedded_with(db, configure, |builder| builder, host).await
    }

    /// Like [`TestApp::embedded`], with a say in the builder (e.g. `.on_login(...)`).
    pub async fn embedded_with(
        db: Db,
        configure: impl FnOnce(&mut loginwith::Config),
        build: impl FnOnce(loginwith::LoginwithBuilder) -> loginwith::LoginwithBuilder,
        host: impl FnOnce(&loginwith::Loginwith) -> axum::Router,
    ) -> TestApp {
        let test_db = Arc::new(TestDb::new(db).await);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mut config = Config::development(&test_db.url);
        config.server.public_url = Url::parse(&format!("http://{addr}")).ok();
        configure(&mut config);
        let lw = build(loginwith::Loginwith::builder(config))
            .build()
            .await
            .unwrap_or_else(|e| panic!("loginwith: {}", loginwith::error_chain(&e)));
        let router = host(&lw);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, service)
                .with_graceful_shutdown(async move {
                    let _ = rx.await;
                })
                .await;
        });
        let jar = Arc::new(Jar::default());
        TestApp {
            address: format!("http://{addr}"),
            base: lw.base_path().to_owned(),
            port: addr.port(),
            client: browser_client(jar.clone()),
            jar,
            store: lw.store().clone(),
            db: test_db,
            shutdown: Some(tx),
        }
    }

    /// A router the test did not assemble itself, such as an example's `app(config)`: `app` gets
    /// [`Config::development`] on a fresh database with `public_url` at the served address under
    /// `path` (e.g. `/auth`), and returns the router to serve. The user count comes from a second
    /// [`Store`] on the same database, as an operator's script would open it.
    pub async fn serve_router<F, Fut, E>(db: Db, path: &str, app: F) -> TestApp
    where
        F: FnOnce(Config) -> Fut,
        Fut: std::future::Future<Output = Result<axum::Router, E>>,
        E: std::fmt::Debug,
    {
        let test_db = Arc::new(TestDb::new(db).await);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mut config = Config::development(&test_db.url);
        config.server.public_url = Url::parse(&format!("http://{addr}{path}")).ok();
        let router = app(config).await.unwrap_or_else(|e| panic!("the app did not start: {e:?}"));
        let store = Store::connect(&test_db.url).await.expect("a second store on the app's database");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, service)
                .with_graceful_shutdown(async move {
                    let _ = rx.await;
                })
                .await;
        });
        let jar = Arc::new(Jar::default());
        TestApp {
            address: format!("http://{addr}"),
            base: path.trim_end_matches('/').to_owned(),
            port: addr.port(),
            client: browser_client(jar.clone()),
            jar,
            store,
            db: test_db,
            shutdown: Some(tx),
        }
    }

    /// A browser for a server the test started itself (e.g. an embedding router) at `address`.
    pub fn attach(address: &str, store: Store) -> TestApp {
        let jar = Arc::new(Jar::default());
        let port = Url::parse(address).ok().and_then(|u| u.port()).unwrap_or_default();
        let db = TestDb { url: String::new(), kind: Db::Sqlite, _dir: None, pg_name: None };
        TestApp {
            address: address.to_owned(),
            base: String::new(),
            port,
            client: browser_client(jar.clone()),
            jar,
            store,
            db: Arc::new(db),
            shutdown: None,
        }
    }

    /// The same server seen from another browser (its own cookie jar).
    pub fn another_browser(&self) -> TestApp {
        let jar = Arc::new(Jar::default());
        TestApp {
            address: self.address.clone(),
            base: self.base.clone(),
            port: self.port,
            client: browser_client(jar.clone()),
            jar,
            store: self.store.clone(),
            db: self.db.clone(),
            shutdown: None,
        }
    }

    /// A new browser (empty cookie jar) on the same server.
    pub fn new_browser(&self) -> (Client, Arc<Jar>) {
        let jar = Arc::new(Jar::default());
        (browser_client(jar.clone()), jar)
    }

    /// The session cookie's value, if any.
    pub fn session_cookie(&self) -> Option<String> {
        let url = Url::parse(&self.address).ok()?;
        let header = self.jar.cookies(&url)?;
        let text = header.to_str().ok()?.to_owned();
        text.split("; ")
            .find_map(|c| c.strip_prefix(&format!("{}=", loginwith::SESSION_COOKIE)).map(str::to_owned))
    }

    /// `GET /authorize/NAME`; returns the provider URL it redirects to.
    pub async fn begin_login(&self, provider: &str) -> String {
        let response = self.get(&format!("{}/authorize/{provider}", self.base)).await;
        assert_eq!(response.status(), StatusCode::FOUND, "authorize should redirect to the provider");
        location(&response)
    }

    /// On the development provider's page: checks it renders, then submits Allow (or Deny).
    /// Returns the callback URL the provider redirects back to.
    pub async fn dev_decide(&self, authorize_url: &str, email: &str, verified: bool, allow: bool) -> String {
        let page = self.get_url(authorize_url).await;
        assert_eq!(page.status(), StatusCode::OK);
        let text = page.text().await.unwrap_or_default();
        assert!(
            text.contains("for development only"),
            "dev provider page must say it is for development only"
        );
        let url = Url::parse(authorize_url).expect("authorize URL");
        let mut form: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        form.push(("email".into(), email.into()));
        if verified {
            form.push(("email_verified".into(), "true".into()));
        }
        form.push(("decision".into(), if allow { "allow" } else { "deny" }.into()));
        let response = self
            .client
            .post(format!("{}{}/dev-provider/authorize", self.address, self.base))
            .form(&form)
            .send()
            .await
            .expect("POST consent");
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "the dev provider redirects back");
        location(&response)
    }

    /// Follows the provider's redirect back to `/callback/...`.
    pub async fn complete_callback(&self, callback_url: &str) -> Response {
        self.get_url(callback_url).await
    }

    /// The whole dev-provider flow; asserts it ends logged in.
    pub async fn login_dev(&self, email: &str, verified: bool) {
        let authorize = self.begin_login("dev").await;
        let callback = self.dev_decide(&authorize, email, verified, true).await;
        let response = self.complete_callback(&callback).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "callback should redirect home");
        assert_eq!(location(&response), format!("{}/", self.base));
        self.assert_logged_in_as(email).await;
    }

    /// `POST /logout`; asserts it redirects.
    pub async fn logout(&self) {
        let response =
            self.client.post(self.url(&format!("{}/logout", self.base))).send().await.expect("POST /logout");
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "logout redirects home");
    }

    pub async fn api_me(&self) -> (StatusCode, serde_json::Value) {
        let response = self.get(&format!("{}/api/me", self.base)).await;
        let status = response.status();
        (status, response.json().await.unwrap_or(serde_json::Value::Null))
    }

    pub async fn assert_logged_in_as(&self, email: &str) {
        let (status, me) = self.api_me().await;
        assert_eq!(status, StatusCode::OK, "expected to be logged in as {email}, /api/me says {me}");
        assert_eq!(me["email"], email);
        let page = self.get(&format!("{}/", self.base)).await.text().await.unwrap_or_default();
        assert!(page.contains(email), "the start page should show {email}");
        let logout = format!("action=\"{}/logout\"", self.base);
        assert!(page.contains(&logout), "the start page should offer logout");
    }

    pub async fn assert_logged_out(&self) {
        let (status, me) = self.api_me().await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "expected nobody logged in, /api/me says {me}");
        assert_eq!(me, serde_json::json!({"error": "unauthenticated"}));
    }

    pub async fn user_count(&self) -> i64 {
        self.store.count_users().await.expect("count users")
    }
}

/// A test server (fake provider) running on a loopback listener; dropping it stops the server.
pub struct Served {
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Serves `router` on `listener` until the returned guard is dropped.
pub fn serve_until_dropped(listener: tokio::net::TcpListener, router: axum::Router) -> Served {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await;
    });
    Served { shutdown: Some(tx) }
}
