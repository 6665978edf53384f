//! `TestApp::builder(db)...spawn()` and the steps of a login, named as a person would take them.

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
    /// Users in SQLite, sessions in Redis (`[sessions] url`), under a key prefix of the test's own.
    Redis,
}

impl Db {
    /// The SQL database the users are in.
    pub fn sql(self) -> Db {
        match self {
            Db::Redis => Db::Sqlite,
            other => other,
        }
    }
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

/// Runs each named test body (an `async fn name(db: Db)`) on SQLite and on PostgreSQL (as
/// [`db_tests!`]), and once more with the sessions in Redis: the tests of what a session store
/// must do.
#[macro_export]
macro_rules! session_store_tests {
    ($( $(#[$meta:meta])* $name:ident ),* $(,)?) => {
        $crate::db_tests!($( $(#[$meta])* $name ),*);
        mod on_redis {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               $(#[$meta])*
               async fn $name() {
                   if $crate::helpers::redis_available().await {
                       super::$name($crate::helpers::Db::Redis).await
                   }
               } )*
        }
    };
}

/// The Redis the session-store tests use.
pub fn redis_url() -> String {
    std::env::var("LOGINWITH_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".to_owned())
}

/// A Redis client for looking at what a test's app stored.
pub async fn redis_client() -> fred::clients::Client {
    use fred::interfaces::ClientLike;
    let config = fred::types::config::Config::from_url(&redis_url()).expect("Redis URL");
    let client = fred::types::Builder::from_config(config).build().expect("Redis client");
    client.init().await.expect("connect to Redis");
    client
}

/// True when Redis answers (see [`postgres_available`]; `LOGINWITH_REQUIRE_REDIS=1` makes its
/// absence a failure).
pub async fn redis_available() -> bool {
    let url = redis_url();
    let reachable = match url::Url::parse(&url) {
        Ok(parsed) => {
            let host = parsed.host_str().unwrap_or("127.0.0.1").to_owned();
            let port = parsed.port().unwrap_or(6379);
            matches!(
                tokio::time::timeout(
                    std::time::Duration::from_secs(5),
                    tokio::net::TcpStream::connect((host.as_str(), port))
                )
                .await,
                Ok(Ok(_))
            )
        }
        Err(_) => false,
    };
    if !reachable {
        if std::env::var("LOGINWITH_REQUIRE_REDIS").as_deref() == Ok("1") {
            panic!("Redis is required (LOGINWITH_REQUIRE_REDIS=1) but {url} is not reachable");
        }
        eprintln!("SKIPPED: Redis not reachable at {url}; set LOGINWITH_TEST_REDIS_URL");
    }
    reachable
}

/// Every key under `prefix` (SCAN, so that a shared Redis is not blocked).
pub async fn redis_keys(client: &fred::clients::Client, prefix: &str) -> Vec<String> {
    use fred::interfaces::ClientLike;
    use fred::types::Value;
    let mut cursor = "0".to_owned();
    let mut keys = Vec::new();
    loop {
        let (next, batch): (String, Vec<String>) = client
            .custom(
                fred::types::CustomCommand::new_static("SCAN", None, false),
                vec![
                    Value::from(cursor.as_str()),
                    "MATCH".into(),
                    format!("{prefix}*").into(),
                    "COUNT".into(),
                    1000.into(),
                ],
            )
            .await
            .expect("SCAN");
        keys.extend(batch);
        if next == "0" {
            break;
        }
        cursor = next;
    }
    keys
}

/// A database made for one test and dropped after it.
pub struct TestDb {
    pub url: String,
    pub kind: Db,
    /// With [`Db::Redis`]: the key prefix of this test's sessions (deleted with the database).
    pub redis_prefix: Option<String>,
    _dir: Option<tempfile::TempDir>,
    pg_name: Option<String>,
}

impl TestDb {
    /// A PostgreSQL database the test made itself (e.g. on a private server): used as it is, and
    /// left to its owner when dropped.
    pub fn existing_postgres(url: &str) -> TestDb {
        TestDb { url: url.to_owned(), kind: Db::Postgres, redis_prefix: None, _dir: None, pg_name: None }
    }

    pub async fn new(kind: Db) -> TestDb {
        match kind {
            Db::Sqlite | Db::Redis => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}", dir.path().join("test.db").display());
                let redis_prefix = (kind == Db::Redis).then(|| format!("lwtest:{}:", random_name(12)));
                TestDb { url, kind, redis_prefix, _dir: Some(dir), pg_name: None }
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
                TestDb { url: url.to_string(), kind, redis_prefix: None, _dir: None, pg_name: Some(name) }
            }
        }
    }
}

impl TestDb {
    /// The `[sessions]` table that puts this test's sessions in Redis, or nothing.
    pub fn sessions_toml(&self) -> String {
        match &self.redis_prefix {
            Some(prefix) => format!("\n[sessions]\nurl = \"{}\"\nkey_prefix = \"{prefix}\"\n", redis_url()),
            None => String::new(),
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(prefix) = self.redis_prefix.take() {
            // Logged-in sessions would otherwise stay in the shared Redis for two weeks.
            let _ = std::thread::spawn(move || {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                    return;
                };
                rt.block_on(async {
                    use fred::interfaces::KeysInterface;
                    let client = redis_client().await;
                    for key in redis_keys(&client, &prefix).await {
                        let _: Result<i64, _> = client.del(key).await;
                    }
                });
            })
            .join();
        }
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
    match db.kind.sql() {
        Db::Sqlite | Db::Redis => {
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
    match db.kind.sql() {
        Db::Sqlite | Db::Redis => {
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
        Db::Redis => {
            use fred::interfaces::KeysInterface;
            let prefix = db.redis_prefix.as_deref().expect("a Redis test database has a prefix");
            let client = redis_client().await;
            let mut n = 0;
            for key in redis_keys(&client, &format!("{prefix}s:")).await {
                let ttl: i64 = client.ttl(&key).await.expect("TTL");
                let expires = time::OffsetDateTime::now_utc() + time::Duration::seconds(ttl);
                if ttl > 0 && expires > after {
                    n += 1;
                }
            }
            n
        }
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

/// What a test starts, said as what differs from the default. `TestApp::builder(db)` alone is
/// loginwith's own server on a fresh database of kind `db`, at the root of a random loopback port,
/// with the development provider only and no rate limits; the test then names the differences:
///
/// ```ignore
/// TestApp::builder(db).spawn().await
/// TestApp::builder(db).toml(&mock.provider_toml("mock")).spawn().await  // more TOML: providers, [limits]
/// TestApp::builder(db).server("login_timeout_secs = 1").spawn().await   // keys of the [server] table
/// TestApp::builder(db).on(app.db.clone()).spawn().await                 // restarted on the same data
/// TestApp::builder(db).mounted_at("/auth").spawn().await                // public_url under a path
/// TestApp::builder(db).mounted_at("/auth").embedded(|lw| lw.layer(host.merge(lw.routes()))).await
/// TestApp::builder(db).mounted_at("/auth").serve(examples::embed::app).await
/// ```
///
/// The server (`spawn`) is configured in TOML, as `loginwith serve` is; a host app (`embedded`,
/// `serve`) gets [`Config::development`], as an embedding app writes it, which `configure` may
/// change. Rate limits are off unless the test sets them (a `[limits]` table, or in `configure`):
/// tests make many logins from 127.0.0.1 in a row.
#[must_use = "finish with .spawn(), .embedded(...) or .serve(...)"]
pub struct TestAppBuilder<'a> {
    kind: Db,
    database: Option<Arc<TestDb>>,
    server_keys: String,
    toml: String,
    path: String,
    configure: Vec<Configure<'a>>,
    hook: Option<WithHook<'a>>,
}

/// A change to the configuration, made before the app starts.
type Configure<'a> = Box<dyn FnOnce(&mut Config) + 'a>;
/// Sets the host's hook on the library's builder.
type WithHook<'a> = Box<dyn FnOnce(loginwith::LoginwithBuilder) -> loginwith::LoginwithBuilder + 'a>;

const NO_LIMITS_TOML: &str =
    "[limits]\nauthorize_per_minute = 0\ncallback_per_minute = 0\ndev_provider_per_minute = 0\n";

impl<'a> TestAppBuilder<'a> {
    /// Keys for the `[server]` table (e.g. `login_timeout_secs = 1`). The test configuration
    /// writes that table itself, so a second one cannot be appended with [`Self::toml`].
    pub fn server(mut self, keys: &str) -> Self {
        self.server_keys.push_str(keys);
        self.server_keys.push('\n');
        self
    }

    /// TOML appended to the configuration: providers, `[limits]`, `[access]`, `[http]`...
    pub fn toml(mut self, toml: &str) -> Self {
        self.toml.push_str(toml);
        self.toml.push('\n');
        self
    }

    /// On an existing database instead of a fresh one (to restart against the same data).
    pub fn on(mut self, database: Arc<TestDb>) -> Self {
        assert_eq!(database.kind, self.kind, "the database is not of the kind the builder was made for");
        self.database = Some(database);
        self
    }

    /// loginwith under a path (`/auth`): its `public_url` ends in it, and the login steps of the
    /// [`TestApp`] go there.
    pub fn mounted_at(mut self, path: &str) -> Self {
        self.path = path.trim_end_matches('/').to_owned();
        self
    }

    /// Changes the configuration before the app starts (after the TOML is read, for `spawn`).
    pub fn configure(mut self, configure: impl FnOnce(&mut Config) + 'a) -> Self {
        self.configure.push(Box::new(configure));
        self
    }

    /// The host's login hook ([`loginwith::LoginwithBuilder::on_login`]), for `embedded` only.
    pub fn on_login<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(loginwith::LoginEvent) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<(), loginwith::LoginRefused>> + Send + 'static,
    {
        self.hook = Some(Box::new(move |builder| builder.on_login(hook)));
        self
    }

    async fn database(&mut self) -> Arc<TestDb> {
        match self.database.take() {
            Some(database) => database,
            None => Arc::new(TestDb::new(self.kind).await),
        }
    }

    /// loginwith's own server, as `loginwith serve` runs it ([`App`]).
    pub async fn spawn(mut self) -> TestApp {
        assert!(self.hook.is_none(), "the loginwith server takes no login hook: use .embedded(...)");
        let test_db = self.database().await;
        let mut server = std::mem::take(&mut self.server_keys);
        if !self.path.is_empty() {
            // The public URL must name the port, so a free one is picked before the server binds it.
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("free port")
                .port();
            let path = &self.path;
            server = format!(
                "bind = \"127.0.0.1:{port}\"\npublic_url = \"http://127.0.0.1:{port}{path}\"\n{server}"
            );
        }
        let bind = if server.contains("bind =") { "" } else { "bind = \"127.0.0.1:0\"\n" };
        let limits = if self.toml.contains("[limits]") { "" } else { NO_LIMITS_TOML };
        let toml = format!(
            "[server]\n{bind}secret_key = \"test-secret-key-that-is-long-enough-0123456789\"\n\
             {server}\n[database]\nurl = \"{}\"\n{limits}{}{}",
            test_db.url,
            self.toml,
            test_db.sessions_toml()
        );
        let mut config = Config::from_toml(&toml).unwrap_or_else(|e| panic!("test configuration: {e}"));
        self.configure.into_iter().for_each(|configure| configure(&mut config));
        let app =
            App::build(config).await.unwrap_or_else(|e| panic!("app start: {}", loginwith::error_chain(&e)));
        let port = app.port();
        let store = app.loginwith().store().clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        tokio::spawn(app.run_until(async move {
            let _ = rx.await;
        }));
        TestApp::new(format!("http://127.0.0.1:{port}"), &self.path, store, test_db, Some(tx))
    }

    /// A host app that embeds loginwith: `host` gets the built [`loginwith::Loginwith`] and
    /// returns the whole router to serve (its own routes merged with `lw.routes()` and wrapped in
    /// `lw.layer(...)`, as an embedding app does).
    pub async fn embedded(mut self, host: impl FnOnce(&loginwith::Loginwith) -> axum::Router) -> TestApp {
        let (test_db, listener, config) = self.development_config().await;
        let mut builder = loginwith::Loginwith::builder(config);
        if let Some(hook) = self.hook.take() {
            builder = hook(builder);
        }
        let lw =
            builder.build().await.unwrap_or_else(|e| panic!("loginwith: {}", loginwith::error_chain(&e)));
        let router = host(&lw);
        let base = lw.base_path().to_owned();
        TestApp::serving(listener, router, &base, lw.store().clone(), test_db)
    }

    /// An app that builds loginwith itself from the configuration it is given, such as an
    /// example's `app(config)`. The user count comes from a second [`Store`] on the same
    /// database, as an operator's script would open it.
    pub async fn serve<F, Fut, E>(mut self, app: F) -> TestApp
    where
        F: FnOnce(Config) -> Fut,
        Fut: std::future::Future<Output = Result<axum::Router, E>>,
        E: std::fmt::Debug,
    {
        assert!(self.hook.is_none(), "an app that builds loginwith itself sets its own hook");
        let (test_db, listener, config) = self.development_config().await;
        let base = config.server.public_url.as_ref().map_or("", Url::path).trim_end_matches('/').to_owned();
        let router = app(config).await.unwrap_or_else(|e| panic!("the app did not start: {e:?}"));
        let store = Store::connect(&test_db.url).await.expect("a second store on the app's database");
        TestApp::serving(listener, router, &base, store, test_db)
    }

    /// [`Config::development`] on the database, with `public_url` at a listener bound for it.
    async fn development_config(&mut self) -> (Arc<TestDb>, tokio::net::TcpListener, Config) {
        assert!(
            self.server_keys.is_empty() && self.toml.is_empty(),
            "a host app's configuration is Config::development: change it with .configure(...)"
        );
        let test_db = self.database().await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mut config = Config::development(&test_db.url);
        config.server.public_url = Url::parse(&format!("http://{addr}{}", self.path)).ok();
        if let Some(prefix) = &test_db.redis_prefix {
            config.sessions.url = Some(loginwith::config::ConnectionUrl::new(redis_url()));
            config.sessions.key_prefix = prefix.clone();
        }
        config.limits.authorize_per_minute = 0;
        config.limits.callback_per_minute = 0;
        config.limits.dev_provider_per_minute = 0;
        self.configure.drain(..).for_each(|configure| configure(&mut config));
        (test_db, listener, config)
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

    /// What a test starts: see [`TestAppBuilder`].
    pub fn builder<'a>(db: Db) -> TestAppBuilder<'a> {
        TestAppBuilder {
            kind: db,
            database: None,
            server_keys: String::new(),
            toml: String::new(),
            path: String::new(),
            configure: Vec::new(),
            hook: None,
        }
    }

    /// A browser (a fresh cookie jar) for the app at `address`.
    fn new(
        address: String,
        base: &str,
        store: Store,
        db: Arc<TestDb>,
        shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    ) -> TestApp {
        let jar = Arc::new(Jar::default());
        let port = Url::parse(&address).ok().and_then(|u| u.port()).unwrap_or_default();
        TestApp {
            address,
            base: base.to_owned(),
            port,
            client: browser_client(jar.clone()),
            jar,
            store,
            db,
            shutdown,
        }
    }

    /// Serves `router` on `listener` (with the peer address, as a host app does) until dropped.
    fn serving(
        listener: tokio::net::TcpListener,
        router: axum::Router,
        base: &str,
        store: Store,
        db: Arc<TestDb>,
    ) -> TestApp {
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, service)
                .with_graceful_shutdown(async move {
                    let _ = rx.await;
                })
                .await;
        });
        TestApp::new(format!("http://{addr}"), base, store, db, Some(tx))
    }

    /// A browser for a server the test started itself (e.g. an embedding router) at `address`.
    pub fn attach(address: &str, store: Store) -> TestApp {
        let db =
            TestDb { url: String::new(), kind: Db::Sqlite, redis_prefix: None, _dir: None, pg_name: None };
        TestApp::new(address.to_owned(), "", store, Arc::new(db), None)
    }

    /// The same server seen from another browser (its own cookie jar).
    pub fn another_browser(&self) -> TestApp {
        TestApp::new(self.address.clone(), &self.base, self.store.clone(), self.db.clone(), None)
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

    /// `GET path` (an authorize URL of ours, e.g. with `?rd=`); returns the provider URL it
    /// redirects to.
    pub async fn begin_login_at(&self, path: &str) -> String {
        let response = self.get(path).await;
        assert_eq!(response.status(), StatusCode::FOUND, "{path} should redirect to the provider");
        location(&response)
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
        assert_eq!(me["code"], "unauthenticated", "{me}");
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

/// Runs `check` until it returns `None`; panics with its last `Some(why)` after `within`.
pub async fn eventually<F, Fut>(within: std::time::Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<String>>,
{
    let started = std::time::Instant::now();
    loop {
        let Some(why) = check().await else { return };
        assert!(started.elapsed() < within, "{why}, after {within:?}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Asks `path` until it answers `status` (or panics after `within`).
pub async fn until(app: &TestApp, path: &str, status: StatusCode, within: std::time::Duration) {
    eventually(within, || async {
        let got = app.get(path).await.status();
        (got != status).then(|| format!("{path} still answers {got}, not {status}"))
    })
    .await;
}

/// Starts a login with `mock` in `app`'s browser and sends its callback in the background.
pub fn callback_in_flight(
    app: &TestApp,
    authorize: &str,
) -> tokio::task::JoinHandle<Result<reqwest::Response, reqwest::Error>> {
    let state = query_param(authorize, "state").unwrap();
    let request = app.client.get(app.url(&format!("/callback/mock?code=good-code&state={state}")));
    tokio::spawn(request.send())
}
