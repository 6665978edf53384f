//! Faults of a real PostgreSQL (issue 11): the server is stopped, crashed and started again under
//! a running loginwith, which must answer 503s (never a 500 or a half-written login) while it is
//! gone and recover without a restart when it is back.
//!
//! Each test runs its own PostgreSQL ([`PrivatePostgres`]: Debian's `initdb` and `pg_ctl`, a
//! temporary directory, a free loopback port), since stopping the shared one would break every
//! other test. Without those tools the tests say they are skipped — or fail when
//! `LOGINWITH_REQUIRE_POSTGRES=1` (CI), so that they cannot pass silently there.

use crate::helpers::*;
use crate::mock_provider::{MockProvider, Scripted};
use reqwest::header::RETRY_AFTER;
use reqwest::{Response, StatusCode};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// A PostgreSQL server of one test's own, in a temporary directory, on a loopback port; stopped
/// and removed when dropped (a panicking test included).
struct PrivatePostgres {
    /// Holds `data/` (the cluster), `log`, and the Unix socket; removed last.
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    /// PostgreSQL refuses to run as root: as root, its tools run as the `postgres` user.
    runuser: Option<PathBuf>,
}

/// The tools of the newest PostgreSQL installed the Debian way, and `runuser` when running as
/// root; or what is missing.
fn postgres_tools(root: bool) -> Result<(PathBuf, Option<PathBuf>), String> {
    let versions = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|e| format!("no /usr/lib/postgresql ({e}): install Debian's postgresql package"))?;
    let mut bins: Vec<(u32, PathBuf)> = versions
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            (bin.join("initdb").is_file() && bin.join("pg_ctl").is_file()).then_some((version, bin))
        })
        .collect();
    bins.sort();
    let (_, bin) = bins.pop().ok_or("no /usr/lib/postgresql/*/bin/{initdb,pg_ctl}")?;
    if !root {
        return Ok((bin, None));
    }
    let runuser = ["/usr/sbin/runuser", "/sbin/runuser", "/usr/bin/runuser"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .ok_or("running as root, and there is no runuser to run PostgreSQL as the postgres user")?;
    Ok((bin, Some(runuser)))
}

impl PrivatePostgres {
    /// A fresh cluster, running; `None` (the test is skipped) when the tools are missing.
    async fn start() -> Option<PrivatePostgres> {
        // A short path under /tmp: the Unix socket's path must fit in 107 bytes.
        let dir = tempfile::Builder::new().prefix("lw-pg-").tempdir_in("/tmp").expect("temp dir");
        let root = {
            use std::os::unix::fs::MetadataExt;
            dir.path().metadata().expect("temp dir metadata").uid() == 0
        };
        let (bin, runuser) = match postgres_tools(root) {
            Ok(tools) => tools,
            Err(missing) => {
                if std::env::var("LOGINWITH_REQUIRE_POSTGRES").as_deref() == Ok("1") {
                    panic!("the PostgreSQL fault tests are required (LOGINWITH_REQUIRE_POSTGRES=1) but {missing}");
                }
                eprintln!("SKIPPED: the PostgreSQL fault tests need Debian's PostgreSQL tools: {missing}");
                return None;
            }
        };
        if root {
            let chown = std::process::Command::new("chown").arg("postgres:").arg(dir.path()).status();
            assert!(chown.is_ok_and(|s| s.success()), "chown postgres {}", dir.path().display());
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let pg = PrivatePostgres { dir, bin, port, runuser };
        let data = pg.data();
        // No fsync: a crash of this server (`pg_ctl -m immediate`) is not a crash of the machine,
        // so committed data is in the page cache all the same, and starting is faster.
        pg.run("initdb", &["-D", &data, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"]).await;
        pg.start_again().await;
        Some(pg)
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    /// The server's own database, which the test's loginwith uses.
    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// The database as a [`TestDb`] for [`TestApp::builder`]'s `.on(...)`.
    fn database(&self) -> Arc<TestDb> {
        Arc::new(TestDb::existing_postgres(&self.url()))
    }

    /// `tool args`, as the `postgres` user when we are root.
    fn command(&self, tool: &str, args: &[&str]) -> std::process::Command {
        let tool = self.bin.join(tool);
        let mut command = match &self.runuser {
            Some(runuser) => {
                let mut command = std::process::Command::new(runuser);
                command.args(["-u", "postgres", "--"]).arg(tool);
                command
            }
            None => std::process::Command::new(tool),
        };
        command.args(args).stdin(std::process::Stdio::null()).current_dir(self.dir.path());
        command
    }

    /// Runs a tool to its end; panics with its output (and the server's log) when it fails.
    async fn run(&self, tool: &str, args: &[&str]) {
        let output = tokio::process::Command::from(self.command(tool, args))
            .output()
            .await
            .unwrap_or_else(|e| panic!("{tool}: {e}"));
        if !output.status.success() {
            let log = std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default();
            panic!(
                "{tool} {args:?}: {}\n{}{}\nserver log:\n{log}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }

    /// Starts the server on its port and data, and waits until it accepts connections.
    async fn start_again(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c shared_buffers=16MB -c max_connections=60",
            self.port,
            self.dir.path().display()
        );
        let data = self.data();
        let log = self.dir.path().join("log").display().to_string();
        // `-l`: the server's output goes to the log, not to pipes this process would wait on.
        self.run("pg_ctl", &["-D", &data, "-l", &log, "-o", &options, "-w", "-t", "30", "start"]).await;
    }

    /// A clean stop (`-m fast`, as a restart by an operator): sessions are ended, connections
    /// closed, and the port refuses connections until [`Self::start_again`].
    async fn stop(&self) {
        self.run("pg_ctl", &["-D", &self.data(), "-m", "fast", "-w", "stop"]).await;
    }

    /// A crash (`-m immediate`): every process killed at once, transactions in progress lost;
    /// the next start recovers from the write-ahead log.
    async fn crash(&self) {
        self.run("pg_ctl", &["-D", &self.data(), "-m", "immediate", "-w", "stop"]).await;
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        // Whether running or not (stopping a stopped server fails harmlessly); then the temporary
        // directory goes.
        let _ = self
            .command("pg_ctl", &["-D", &self.data(), "-m", "immediate", "-w", "stop"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// Asserts the 503 page of a database that does not answer: the status, `Retry-After`, the words.
async fn assert_unavailable_page(response: Response, what: &str) {
    assert_eq!(response.headers().get(RETRY_AFTER).map(|v| v.to_str().unwrap()), Some("5"), "{what}");
    let page = expect_page(response, StatusCode::SERVICE_UNAVAILABLE, "Temporarily unavailable").await;
    assert!(page.contains("try again in a moment"), "{what}: {page}");
}

/// Asserts the JSON API's 503: the status, `Retry-After`, and the stable code `unavailable`, in
/// an error body as the API's OpenAPI document `doc` describes it.
async fn assert_unavailable_json(response: Response, doc: &serde_json::Value, what: &str) {
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE, "{what}");
    assert_eq!(response.headers().get(RETRY_AFTER).map(|v| v.to_str().unwrap()), Some("5"), "{what}");
    let text = response.text().await.unwrap();
    let body: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{what}: {e}: {text}"));
    assert_eq!(body["code"], "unavailable", "{what}: {body}");
    assert_eq!(body["error"], "unavailable", "{what}: {body}");
    let mut schema = doc["components"]["schemas"]["ErrorBody"].clone();
    crate::openapi::close_objects(&mut schema);
    let errors: Vec<String> =
        jsonschema::draft202012::new(&schema).unwrap().iter_errors(&body).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{what}: {body} is not the document's ErrorBody: {errors:?}");
    assert!(
        schema["properties"]["code"]["description"].as_str().unwrap().contains("`unavailable`"),
        "the document names the code: {schema}"
    );
}

/// Rows in the login tables: users, identities, logged-in sessions.
async fn login_rows(db: &TestDb) -> (i64, i64, i64) {
    let count = |table: &'static str| async move {
        query_i64(db, &format!("SELECT COUNT(*) FROM {table}")).await.unwrap()
    };
    (
        count("users").await,
        count("identities").await,
        count("tower_sessions.session WHERE user_id IS NOT NULL").await,
    )
}

/// PostgreSQL restarts under a running server: while it is down the server is alive but not
/// ready, and every request that needs the database answers 503 with `Retry-After` (a page for
/// browsers, JSON for the API) — not a 500, and not "logged out"; once it is back, the same
/// process serves again: the earlier login is still logged in and a new login works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_postgresql_restarts_the_server_answers_503_then_recovers_without_a_restart() {
    let Some(pg) = PrivatePostgres::start().await else { return };
    let app = TestApp::builder(Db::Postgres).on(pg.database()).spawn().await;
    app.login_dev("before@example.com", true).await;
    let doc: serde_json::Value =
        reqwest::get(app.url("/api/openapi.json")).await.unwrap().json().await.unwrap();

    pg.stop().await;
    // The instance hears of the stop through its listening connection, and stops serving its
    // caches: from then on a logged-in request needs the database (each try waits for the pool
    // to give up on it, its acquire timeout).
    until(&app, "/api/me", StatusCode::SERVICE_UNAVAILABLE, Duration::from_secs(20)).await;
    // All at once, for the same reason. Probes send no cookie.
    let stranger = app.another_browser();
    let (ready, alive, authorize, account, sessions, me) = tokio::join!(
        reqwest::get(app.url("/readyz")),
        reqwest::get(app.url("/healthz")),
        stranger.get("/authorize/dev"),
        app.client.get(app.url("/account")).header("accept", "text/html").send(),
        app.get("/api/me/sessions"),
        app.get("/api/me"),
    );
    let ready = ready.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ready.text().await.unwrap(), "not ready: the database does not answer\n");
    let alive = alive.unwrap();
    assert_eq!(alive.status(), StatusCode::OK, "alive all the same");
    assert_eq!(alive.text().await.unwrap(), "ok\n");
    assert_unavailable_page(authorize, "a login started during the outage").await;
    assert_unavailable_page(account.unwrap(), "the account page of someone logged in").await;
    assert_unavailable_json(sessions, &doc, "GET /api/me/sessions").await;
    assert_unavailable_json(me, &doc, "GET /api/me").await;

    pg.start_again().await;
    until(&app, "/readyz", StatusCode::OK, Duration::from_secs(20)).await;
    app.assert_logged_in_as("before@example.com").await;
    stranger.login_dev("after@example.com", true).await;
    assert_eq!(login_rows(&app.db).await, (2, 2, 2));
}

/// PostgreSQL crashes while a callback waits for the provider's token answer: the callback
/// answers 503 and writes nothing (no user, no identity, no logged-in session); the attempt it
/// used stays used; and the same login from the start, once the database is back, creates
/// exactly one user.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_during_a_login_writes_nothing_and_the_login_can_be_made_again() {
    let Some(pg) = PrivatePostgres::start().await else { return };
    let mock = MockProvider::start().await;
    let token = serde_json::json!({"access_token": "mock-token", "token_type": "bearer"});
    let gate = Arc::new(tokio::sync::Notify::new());
    mock.set_token(Scripted::json(200, token.clone()).held(gate.clone()));
    let app =
        TestApp::builder(Db::Postgres).on(pg.database()).toml(&mock.provider_toml("mock")).spawn().await;

    let authorize = app.begin_login("mock").await;
    let in_flight = callback_in_flight(&app, &authorize);
    eventually(Duration::from_secs(10), || async {
        (mock.token_requests() == 0).then(|| "the server has not asked for the token yet".to_owned())
    })
    .await;
    pg.crash().await;
    gate.notify_one();
    let response = in_flight.await.unwrap().expect("the callback is answered");
    assert_unavailable_page(response, "the callback whose database crashed").await;
    assert_eq!(mock.token_requests(), 1);

    pg.start_again().await;
    until(&app, "/readyz", StatusCode::OK, Duration::from_secs(20)).await;
    assert_eq!(login_rows(&app.db).await, (0, 0, 0), "nothing of the login was written");
    // The attempt was consumed before the provider was called: the same callback again is refused.
    let state = query_param(&authorize, "state").unwrap();
    let again = app.get(&format!("/callback/mock?code=good-code&state={state}")).await;
    expect_page(again, StatusCode::BAD_REQUEST, "This login cannot be completed").await;
    app.assert_logged_out().await;

    mock.set_token(Scripted::json(200, token));
    let authorize = app.begin_login("mock").await;
    let response = callback_in_flight(&app, &authorize).await.unwrap().unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "{:?}", response.text().await);
    app.assert_logged_in_as("someone@example.com").await;
    assert_eq!(login_rows(&app.db).await, (1, 1, 1));
}

/// Two instances with their session caches on, and PostgreSQL restarts under them: each listens
/// for the other's changes again (its cache, bypassed while it could not, serves again), so a
/// change and a logout on one are seen on the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_postgresql_restart_the_instances_hear_each_other_again() {
    let Some(pg) = PrivatePostgres::start().await else { return };
    let one = TestApp::builder(Db::Postgres).on(pg.database()).spawn().await;
    let two = TestApp::builder(Db::Postgres).on(one.db.clone()).spawn().await;
    one.login_dev("both@example.com", true).await;
    let cookie = one.session_cookie().unwrap();
    let url = url::Url::parse(&two.address).unwrap();
    two.jar.add_cookie_str(&format!("{}={cookie}", loginwith::SESSION_COOKIE), &url);
    assert_eq!(two.api_me().await.0, StatusCode::OK);

    pg.stop().await;
    pg.start_again().await;
    until(&two, "/readyz", StatusCode::OK, Duration::from_secs(20)).await;
    // `two` serves from its cache again once it listens again. Shown by a rename made behind the
    // channel's back (triggers off, so no notification): a cache in use still shows the old name.
    let mut renames = 0;
    eventually(Duration::from_secs(20), || {
        renames += 1;
        let name = format!("quiet{renames}");
        let two = &two;
        async move {
            let (status, before) = two.api_me().await;
            assert_eq!(status, StatusCode::OK, "{before}");
            execute(
                &two.db,
                &format!(
                    "SET session_replication_role = replica; \
                     UPDATE users SET username = '{name}' WHERE email = 'both@example.com'"
                ),
            )
            .await;
            let (_, after) = two.api_me().await;
            (after["username"] != before["username"])
                .then(|| format!("not served from the cache yet: {after}"))
        }
    })
    .await;
    // A rename that notifies, as every write does, reaches `two`'s cache...
    execute(&one.db, "UPDATE users SET username = 'renamed' WHERE email = 'both@example.com'").await;
    eventually(Duration::from_secs(2), || async {
        let (_, me) = two.api_me().await;
        (me["username"] != "renamed").then(|| format!("the other instance still shows {me}"))
    })
    .await;
    // ...and so does a logout on `one`.
    one.logout().await;
    until(&two, "/api/me", StatusCode::UNAUTHORIZED, Duration::from_secs(2)).await;
}
