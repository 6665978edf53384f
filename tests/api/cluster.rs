//! Three instances on one PostgreSQL behind Debian's nginx (issue 11, item 5): the way loginwith
//! runs when it fronts real traffic, all on loopback ports.
//!
//! A [`Cluster`] is a fresh PostgreSQL database, three real `loginwith serve` processes (so that
//! `kill -9` is real) with the same secret key and the same `public_url` — nginx's address — and
//! nginx in front of them: round robin, `proxy_next_upstream error timeout`, the `Host` and
//! `X-Forwarded-*` headers passed as `deploy/nginx.conf` does. The provider is a [`MockProvider`]
//! in the test process, shared by the three: the built-in development provider keeps its codes in
//! one instance's memory, a real provider does not. Each login's code names its person
//! ([`MockProvider::profile_per_code`]), so that hundreds of logins at once each know who they
//! must end up as.
//!
//! The tests, each on its own cluster: logins through nginx all succeed; a login started on one
//! instance completes on another; a logout on one is seen on the others at the very next request;
//! a thousand first logins at once make no duplicate user or identity; `kill -9` of an instance
//! under load loses no completed login while the other two keep serving.
//!
//! Needs PostgreSQL and nginx: without either the tests say they are skipped, unless
//! `LOGINWITH_REQUIRE_POSTGRES=1` or `LOGINWITH_REQUIRE_PROXIES=1` (CI) makes that a failure.

use crate::binary::Binary;
use crate::helpers::*;
use crate::mock_provider::MockProvider;
use crate::proxies::{free_ports, proxy_binary, spawn_listening, Kind, Proxy};
use futures::StreamExt;
use reqwest::cookie::Jar;
use reqwest::header::HOST;
use reqwest::{Client, StatusCode};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where the instances keep their sessions.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Sessions {
    /// In the users' PostgreSQL database (the default).
    Database,
    /// In Redis (`[sessions] url`); users and identities stay in PostgreSQL.
    Redis,
}

impl Sessions {
    /// The instances' TOML for this session store (call once per cluster: all its instances
    /// must share it).
    fn toml(self) -> String {
        match self {
            Sessions::Database => String::new(),
            // A key prefix of the cluster's own: user ids restart at 1 in each test database, and
            // their lists of sessions must not meet in the shared Redis.
            Sessions::Redis => {
                format!(
                    "[sessions]\nurl = \"{}\"\nkey_prefix = \"lwtest:{}:\"\n",
                    redis_url(),
                    random_name(12)
                )
            }
        }
    }
}

/// One `#[tokio::test]` per session store for each scenario below.
macro_rules! cluster_tests {
    ($($name:ident),* $(,)?) => {
        mod database_sessions {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { super::$name(super::Sessions::Database).await } )*
        }
        mod redis_sessions {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() {
                   if $crate::helpers::redis_available().await {
                       super::$name(super::Sessions::Redis).await
                   }
               } )*
        }
    };
}

cluster_tests!(
    logins_through_nginx_all_succeed_on_every_instance,
    a_login_started_on_one_instance_completes_on_another,
    a_logout_on_one_instance_is_seen_by_the_other_two_at_the_next_request,
    a_thousand_first_logins_at_once_make_no_duplicate_user_or_identity,
    the_same_new_person_logging_in_twenty_times_at_once_is_one_user,
    kill_9_of_an_instance_under_load_loses_no_completed_login,
);

/// One cluster at a time in this test binary: three instances and their load fill the two cores
/// of a CI machine, and two clusters at once would take more than 100 PostgreSQL connections
/// (16 per instance's pool). Tokio's mutex does not poison: a failed test frees it for the next.
static ONE_CLUSTER_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Three instances behind nginx, on a fresh PostgreSQL database, and the provider they share.
struct Cluster {
    instances: Vec<Binary>,
    /// `http://127.0.0.1:PORT` of each instance's `metrics_bind`.
    metrics: Vec<String>,
    nginx_port: u16,
    nginx_log: PathBuf,
    mock: MockProvider,
    db: TestDb,
    _nginx: Proxy,
    _dirs: Vec<tempfile::TempDir>,
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

/// Where a login failed: the step, and what it got there.
#[derive(Debug)]
struct Failure {
    step: Step,
    what: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Authorize,
    Callback,
    Me,
}

impl Cluster {
    /// `None` (after saying so) when PostgreSQL or nginx is missing and CI does not require them.
    async fn start(sessions: Sessions) -> Option<Cluster> {
        if !postgres_available().await {
            return None;
        }
        let nginx = proxy_binary(Kind::Nginx)?;
        let turn = ONE_CLUSTER_AT_A_TIME.lock().await;
        let db = TestDb::new(Db::Postgres).await;
        let mock = MockProvider::start().await;
        mock.profile_per_code();
        // Every port at once, all different (nginx's is every instance's public_url).
        let ports = free_ports(7);
        let nginx_port = ports[0];
        let metrics_ports: Vec<u16> = ports[1..4].to_vec();
        let bind_ports: Vec<u16> = ports[4..7].to_vec();
        let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().expect("instance dir")).collect();
        let sessions_toml = sessions.toml();
        let toml = |metrics_port: u16| {
            format!(
                "public_url = \"http://127.0.0.1:{nginx_port}\"\ntrusted_proxies = [\"127.0.0.1\"]\n\
                 metrics_bind = \"127.0.0.1:{metrics_port}\"\n\
                 [limits]\nauthorize_per_minute = 0\ncallback_per_minute = 0\ndev_provider_per_minute = 0\n\
                 {}\n{}",
                mock.provider_toml("mock"),
                sessions_toml
            )
        };
        let tomls: Vec<String> = metrics_ports.iter().map(|&port| toml(port)).collect();
        // Started together, as a deployment does: their migrations take turns (advisory lock).
        let instances = futures::future::join_all(
            dirs.iter()
                .zip(&tomls)
                .zip(&bind_ports)
                .map(|((dir, toml), &port)| Binary::start_at(dir.path(), port, &db.url, toml)),
        )
        .await;
        let (proxy, nginx_log) = start_nginx(&nginx, nginx_port, &instances).await;
        let cluster = Cluster {
            metrics: metrics_ports.iter().map(|port| format!("http://127.0.0.1:{port}")).collect(),
            instances,
            nginx_port,
            nginx_log,
            mock,
            db,
            _nginx: proxy,
            _dirs: dirs,
            _turn: turn,
        };
        // An instance serves sessions from its cache only once it hears the others' changes
        // (until then it reads them all from the database, which would make the cache tests
        // pass without a cache): wait for that, as a deployment's readiness check would not.
        for i in 0..3 {
            cluster.until_cache_trusted(i).await;
        }
        Some(cluster)
    }

    /// nginx's origin: the public URL.
    fn nginx(&self) -> String {
        format!("http://127.0.0.1:{}", self.nginx_port)
    }

    /// Instance `i`'s own origin, bypassing nginx.
    fn instance(&self, i: usize) -> String {
        self.instances[i].address.clone()
    }

    /// `Host` as nginx passes it on (`proxy_set_header Host $http_host`).
    fn public_host(&self) -> String {
        format!("127.0.0.1:{}", self.nginx_port)
    }

    /// A new browser: its own cookie jar, no redirect following, and a timeout so that a request
    /// nobody answers fails the test instead of hanging it.
    fn browser() -> Client {
        Client::builder()
            .cookie_provider(Arc::new(Jar::default()))
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(20))
            .build()
            .expect("client")
    }

    /// `GET {at}/authorize/mock`, then the provider's part: consent given, the callback URL it
    /// redirects back to (on the public URL), with code `subject`.
    async fn begin(&self, browser: &Client, at: &str, subject: &str) -> Result<String, Failure> {
        let fail = |what: String| Failure { step: Step::Authorize, what };
        let response = browser
            .get(format!("{at}/authorize/mock"))
            .header(HOST, self.public_host())
            .send()
            .await
            .map_err(|e| fail(e.to_string()))?;
        if response.status() != StatusCode::FOUND {
            return Err(fail(format!("{} {}", response.status(), response.text().await.unwrap_or_default())));
        }
        let authorize = location(&response);
        let redirect_uri = query_param(&authorize, "redirect_uri").ok_or_else(|| fail(authorize.clone()))?;
        let state = query_param(&authorize, "state").ok_or_else(|| fail(authorize.clone()))?;
        assert_eq!(redirect_uri, format!("{}/callback/mock", self.nginx()), "the redirect URI is public");
        let mut callback = url::Url::parse(&redirect_uri).expect("redirect_uri");
        callback.query_pairs_mut().append_pair("code", subject).append_pair("state", &state);
        Ok(callback.to_string())
    }

    /// Sends the provider's redirect back (a callback URL on the public URL) to `at` instead, with
    /// the `Host` nginx would pass; it must answer with the redirect of a completed login.
    async fn callback(&self, browser: &Client, callback: &str, at: &str) -> Result<(), Failure> {
        let fail = |what: String| Failure { step: Step::Callback, what };
        let url = callback.replacen(&self.nginx(), at, 1);
        let response = browser
            .get(url)
            .header(HOST, self.public_host())
            .send()
            .await
            .map_err(|e| fail(e.to_string()))?;
        let status = response.status();
        let to = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .map(str::to_owned);
        if status != StatusCode::SEE_OTHER || to.as_deref() != Some("/") {
            return Err(fail(format!(
                "{status} to {to:?}: {}",
                title(&response.text().await.unwrap_or_default())
            )));
        }
        Ok(())
    }

    /// `GET {at}/api/me`: its status and body.
    async fn me(&self, browser: &Client, at: &str) -> Result<(StatusCode, serde_json::Value), Failure> {
        let response = browser
            .get(format!("{at}/api/me"))
            .header(HOST, self.public_host())
            .send()
            .await
            .map_err(|e| Failure { step: Step::Me, what: e.to_string() })?;
        let status = response.status();
        Ok((status, response.json().await.unwrap_or(serde_json::Value::Null)))
    }

    /// `/api/me` at `at` says `browser` is logged in as `subject`.
    async fn logged_in_as(&self, browser: &Client, at: &str, subject: &str) -> Result<(), Failure> {
        let (status, me) = self.me(browser, at).await?;
        let email = format!("{subject}@example.com");
        if status != StatusCode::OK || me["email"] != email.as_str() {
            return Err(Failure { step: Step::Me, what: format!("{status} {me}, not {email}") });
        }
        Ok(())
    }

    /// A whole first (or returning) login of `subject` through nginx, checked with `/api/me`.
    async fn login(&self, browser: &Client, subject: &str) -> Result<(), Failure> {
        let nginx = self.nginx();
        let callback = self.begin(browser, &nginx, subject).await?;
        self.callback(browser, &callback, &nginx).await?;
        self.logged_in_as(browser, &nginx, subject).await
    }

    /// Instance `i`'s metrics: the value of `series` (`name{label="value",...}`, labels sorted),
    /// 0 when it was never counted.
    async fn metric(&self, i: usize, series: &str) -> f64 {
        let text = reqwest::get(format!("{}/metrics", self.metrics[i]))
            .await
            .and_then(|r| r.error_for_status())
            .expect("GET /metrics")
            .text()
            .await
            .expect("metrics text");
        crate::metrics::samples(&text).get(series).copied().unwrap_or(0.0)
    }

    /// New users instance `i` recorded.
    async fn new_logins(&self, i: usize) -> f64 {
        self.metric(i, "loginwith_logins_total{outcome=\"new\",provider=\"mock\"}").await
    }

    /// Sessions instance `i` served from its cache.
    async fn cache_hits(&self, i: usize) -> f64 {
        self.metric(i, "loginwith_session_cache_total{result=\"hit\"}").await
    }

    /// Waits until instance `i` serves sessions from its cache: a probe session, asked for
    /// twice, is a hit the second time.
    async fn until_cache_trusted(&self, i: usize) {
        let started = Instant::now();
        let probe = Cluster::browser();
        // A login in flight gives the probe a session (anonymous, with its pending login).
        self.begin(&probe, &self.instance(i), "probe").await.unwrap_or_else(|f| panic!("{f:?}"));
        loop {
            let before = self.cache_hits(i).await;
            let _ = self.me(&probe, &self.instance(i)).await;
            if self.cache_hits(i).await > before {
                return;
            }
            assert!(started.elapsed() < Duration::from_secs(10), "instance {i}'s cache never served");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// nginx's error log, so far.
    fn nginx_errors(&self) -> String {
        std::fs::read_to_string(&self.nginx_log).unwrap_or_default()
    }

    async fn count(&self, sql: &str) -> i64 {
        query_i64(&self.db, sql).await.unwrap_or_else(|| panic!("no row: {sql}"))
    }
}

/// A page's `<title>` (what an error page says in a line), or the whole text when it has none.
fn title(page: &str) -> &str {
    page.split_once("<title>").and_then(|(_, rest)| rest.split_once("</title>")).map_or(page, |(t, _)| t)
}

/// nginx on `127.0.0.1:port` in front of the instances; its error log is the returned file.
async fn start_nginx(binary: &std::path::Path, port: u16, instances: &[Binary]) -> (Proxy, PathBuf) {
    let dir = tempfile::tempdir().expect("nginx dir");
    let servers: String = instances.iter().map(|i| format!("    server 127.0.0.1:{};\n", i.port)).collect();
    let log = dir.path().join("error.log");
    // Round robin is nginx's default. `proxy_next_upstream error timeout` (also its default,
    // written out because the test depends on it) sends a request that could not reach an
    // instance to the next one; nginx never resends a POST that way, nor anything once part of
    // the answer came back. One process (no master and workers), so that killing it leaves no
    // worker behind. Host and X-Forwarded-* as deploy/nginx.conf passes them.
    let conf = format!(
        "master_process off;\npid {dir}/nginx.pid;\nerror_log {log} warn;\n\
         events {{ worker_connections 1024; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {dir}/body;\n  proxy_temp_path {dir}/proxy;\n\
         \x20 upstream loginwith {{\n{servers}    keepalive 32;\n  }}\n\
         \x20 server {{\n    listen 127.0.0.1:{port};\n\
         \x20   location / {{\n      proxy_pass http://loginwith;\n      proxy_http_version 1.1;\n\
         \x20     proxy_set_header Connection \"\";\n      proxy_set_header Host $http_host;\n\
         \x20     proxy_set_header X-Forwarded-For $remote_addr;\n      proxy_set_header X-Forwarded-Proto $scheme;\n\
         \x20     proxy_next_upstream error timeout;\n    }}\n  }}\n}}\n",
        dir = dir.path().display(),
        log = log.display(),
    );
    std::fs::write(dir.path().join("nginx.conf"), conf).expect("write nginx.conf");
    let mut cmd = tokio::process::Command::new(binary);
    cmd.arg("-p").arg(dir.path()).arg("-c").arg(dir.path().join("nginx.conf")).args(["-g", "daemon off;"]);
    (spawn_listening(Kind::Nginx, cmd, port, dir).await, log)
}

/// Runs `flows` (each a future giving a result) at most `at_once` at a time; all their results.
async fn at_most<T>(
    at_once: usize,
    flows: impl IntoIterator<Item = impl std::future::Future<Output = T>>,
) -> Vec<T> {
    futures::stream::iter(flows).buffer_unordered(at_once).collect().await
}

/// Many people log in through nginx, twelve at a time: every login ends logged in as its person,
/// the three instances each took part, and nginx met no upstream error.
async fn logins_through_nginx_all_succeed_on_every_instance(sessions: Sessions) {
    let Some(cluster) = Cluster::start(sessions).await else { return };
    let started = Instant::now();
    let results = at_most(
        12,
        (0..60).map(|n| {
            let cluster = &cluster;
            async move {
                let subject = format!("person-{n}");
                let browser = Cluster::browser();
                cluster.login(&browser, &subject).await.map_err(|f| (subject, f))
            }
        }),
    )
    .await;
    let took = started.elapsed();
    let failures: Vec<_> = results.into_iter().filter_map(Result::err).collect();
    assert!(failures.is_empty(), "{} of 60 logins failed: {failures:#?}", failures.len());
    eprintln!("60 logins through nginx in {took:?}");

    let mut total = 0.0;
    for i in 0..3 {
        let new = cluster.new_logins(i).await;
        assert!(new > 0.0, "instance {i} completed no login");
        total += new;
    }
    assert_eq!(total, 60.0, "each login recorded once");
    assert_eq!(cluster.mock.token_requests(), 60, "each code exchanged once: nothing was resent");
    assert_eq!(cluster.count("SELECT COUNT(*) FROM users").await, 60);
    let errors = cluster.nginx_errors();
    assert!(!errors.contains("upstream") && !errors.contains("[error]"), "nginx:\n{errors}");
    for (i, instance) in cluster.instances.iter().enumerate() {
        assert!(!instance.log().contains("ERROR"), "instance {i}:\n{}", instance.log());
    }
}

/// The provider's redirect lands on another instance than the one that started the login (a
/// balancer without sticky sessions): the login completes, and a third instance knows the user.
async fn a_login_started_on_one_instance_completes_on_another(sessions: Sessions) {
    let Some(cluster) = Cluster::start(sessions).await else { return };
    let browser = Cluster::browser();
    let callback = cluster.begin(&browser, &cluster.instance(0), "wanderer").await.unwrap();
    cluster.callback(&browser, &callback, &cluster.instance(1)).await.unwrap();
    let (status, me) = cluster.me(&browser, &cluster.instance(2)).await.unwrap();
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["email"], "wanderer@example.com");
    // It was the second instance that completed it.
    let completed: Vec<f64> = futures::future::join_all((0..3).map(|i| cluster.new_logins(i))).await;
    assert_eq!(completed, [0.0, 1.0, 0.0]);
    // The state was used once: the same callback again, anywhere, is refused.
    let again = cluster.callback(&browser, &callback, &cluster.instance(0)).await.unwrap_err();
    assert!(again.what.starts_with("400"), "{again:?}");
}

/// A logout through one instance ends the session on the other two before their next request,
/// although each had it in its cache: for several people, each logging out on another instance.
async fn a_logout_on_one_instance_is_seen_by_the_other_two_at_the_next_request(sessions: Sessions) {
    let Some(cluster) = Cluster::start(sessions).await else { return };
    for person in 0..6 {
        let subject = format!("leaver-{person}");
        let browser = Cluster::browser();
        cluster.login(&browser, &subject).await.unwrap();
        // Each instance serves the session from its cache (asked three times, counted as hits).
        for i in 0..3 {
            let hits = cluster.cache_hits(i).await;
            for _ in 0..3 {
                cluster.logged_in_as(&browser, &cluster.instance(i), &subject).await.unwrap();
            }
            assert!(cluster.cache_hits(i).await >= hits + 2.0, "instance {i} did not cache the session");
        }
        let out = person % 3;
        let response = browser
            .post(format!("{}/logout", cluster.instance(out)))
            .header(HOST, cluster.public_host())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "logout on instance {out}");
        // The very next request on each of the other two, at once: no waiting, no second try.
        let others: Vec<usize> = (0..3).filter(|&i| i != out).collect();
        let answers = futures::future::join_all(
            others.iter().map(|&i| cluster.me(&browser, &cluster.instances[i].address)),
        )
        .await;
        for (i, answer) in others.iter().zip(answers) {
            let (status, me) = answer.unwrap();
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{subject} logged out on {out}, instance {i} says {me}"
            );
        }
    }
}

/// A thousand people log in for the first time at once (64 at a time) through nginx: a thousand
/// users, a thousand identities, nobody twice.
async fn a_thousand_first_logins_at_once_make_no_duplicate_user_or_identity(sessions: Sessions) {
    let Some(cluster) = Cluster::start(sessions).await else { return };
    let started = Instant::now();
    let results = at_most(
        64,
        (0..1000).map(|n| {
            let cluster = &cluster;
            async move {
                let subject = format!("first-{n}");
                cluster.login(&Cluster::browser(), &subject).await.map_err(|f| (subject, f))
            }
        }),
    )
    .await;
    let took = started.elapsed();
    let failures: Vec<_> = results.into_iter().filter_map(Result::err).collect();
    assert!(failures.is_empty(), "{} of 1000 logins failed: {failures:#?}", failures.len());
    eprintln!("1000 first logins through nginx, 64 at a time, in {took:?}");

    assert_eq!(cluster.count("SELECT COUNT(*) FROM users").await, 1000);
    assert_eq!(cluster.count("SELECT COUNT(*) FROM identities").await, 1000);
    let subjects =
        "SELECT COUNT(DISTINCT subject) FROM identities WHERE provider = 'mock' AND subject LIKE 'first-%'";
    assert_eq!(cluster.count(subjects).await, 1000, "each person's identity");
    assert_eq!(cluster.count("SELECT COUNT(DISTINCT user_id) FROM identities").await, 1000, "one user each");
    assert_eq!(cluster.count("SELECT COUNT(DISTINCT email) FROM users").await, 1000);
    assert_eq!(cluster.count("SELECT COUNT(DISTINCT username) FROM users").await, 1000);
    let mut total = 0.0;
    for i in 0..3 {
        total += cluster.new_logins(i).await;
    }
    assert_eq!(total, 1000.0, "each recorded as new exactly once");
}

/// One new person's first login, twenty times at once, started and completed on different
/// instances (a double-click, a retry): all twenty end logged in as one user with one identity.
async fn the_same_new_person_logging_in_twenty_times_at_once_is_one_user(sessions: Sessions) {
    let Some(cluster) = Cluster::start(sessions).await else { return };
    let browsers: Vec<Client> = (0..20).map(|_| Cluster::browser()).collect();
    // Every login started first, so that the callbacks race each other.
    let callbacks: Vec<String> = futures::future::join_all(
        browsers.iter().enumerate().map(|(n, b)| cluster.begin(b, &cluster.instances[n % 3].address, "twin")),
    )
    .await
    .into_iter()
    .map(Result::unwrap)
    .collect();
    let completed = futures::future::join_all(
        browsers
            .iter()
            .zip(&callbacks)
            .enumerate()
            .map(|(n, (b, c))| cluster.callback(b, c, &cluster.instances[(n + 1) % 3].address)),
    )
    .await;
    let failures: Vec<_> = completed.into_iter().filter_map(Result::err).collect();
    assert!(failures.is_empty(), "{failures:#?}");

    let mut ids = BTreeSet::new();
    for (n, browser) in browsers.iter().enumerate() {
        let (status, me) = cluster.me(browser, &cluster.instance(n % 3)).await.unwrap();
        assert_eq!(status, StatusCode::OK, "{me}");
        assert_eq!(me["email"], "twin@example.com");
        ids.insert(me["id"].to_string());
    }
    assert_eq!(ids.len(), 1, "one user: {ids:?}");
    assert_eq!(cluster.count("SELECT COUNT(*) FROM users").await, 1);
    assert_eq!(cluster.count("SELECT COUNT(*) FROM identities").await, 1);
}

/// One login of the load test: who, when it started, and how far it got.
struct Flow {
    subject: String,
    browser: Client,
    started: Instant,
    result: Result<(), Failure>,
}

impl Flow {
    /// The callback answered with the logged-in redirect: the login happened, whatever came after.
    fn completed(&self) -> bool {
        self.result.as_ref().err().is_none_or(|f| f.step == Step::Me)
    }
}

/// Sixteen people log in over and over through nginx; after a second one instance is killed with
/// SIGKILL, and the load goes on for three more. Every login that completed is still logged in
/// afterwards and in the database; a login caught on the killed instance may fail, but none that
/// started a second after the kill does: the other two serve everything.
///
/// How a caught login fails: nginx resends a GET that met a connection error to another
/// instance, so a request the killed one never answered is not a 502. But a callback it had begun
/// had already used up its state (durably, before calling the provider: `routes/login.rs`), so
/// the resent one is refused with the 400 page: a single-use state cannot be replayed, not even by
/// the balancer. The person logs in again.
async fn kill_9_of_an_instance_under_load_loses_no_completed_login(sessions: Sessions) {
    let Some(mut cluster) = Cluster::start(sessions).await else { return };
    let began = Instant::now();
    let kill_at = began + Duration::from_secs(1);
    let end = kill_at + Duration::from_secs(3);
    let cluster_ref = &cluster;
    let load = futures::future::join_all((0..16).map(|worker| async move {
        let mut flows = Vec::new();
        let mut n = 0;
        while Instant::now() < end {
            let subject = format!("load-{worker}-{n}");
            n += 1;
            let browser = Cluster::browser();
            let started = Instant::now();
            let result = cluster_ref.login(&browser, &subject).await;
            flows.push(Flow { subject, browser, started, result });
        }
        flows
    }));
    let kill = async {
        tokio::time::sleep_until(kill_at.into()).await;
        cluster_ref.instances[0].kill_9();
        Instant::now()
    };
    let (flows, killed_at) = tokio::join!(load, kill);
    let flows: Vec<Flow> = flows.into_iter().flatten().collect();
    let status =
        cluster.instances[0].exit_within(Duration::from_secs(5)).await.expect("the killed one is gone");
    assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(9));

    let before = flows.iter().filter(|f| f.started < killed_at).count();
    let failed: Vec<&Flow> = flows.iter().filter(|f| f.result.is_err()).collect();
    let after: Vec<&Flow> =
        flows.iter().filter(|f| f.started >= killed_at + Duration::from_secs(1)).collect();
    eprintln!(
        "{} logins ({before} started before the kill, {} a second or more after it); {} failed: {:?}",
        flows.len(),
        after.len(),
        failed.len(),
        failed
            .iter()
            .map(|f| {
                let ms = |t: Instant| {
                    t.saturating_duration_since(killed_at).as_millis() as i64
                        - killed_at.saturating_duration_since(t).as_millis() as i64
                };
                (&f.subject, format!("started {} ms from the kill", ms(f.started)), f.result.as_ref().err())
            })
            .collect::<Vec<_>>()
    );
    let nginx = cluster.nginx_errors();
    let lines = |what: &str| nginx.lines().filter(|l| l.contains(what)).count();
    eprintln!(
        "nginx: {} connections refused, {} answers cut off, {} 502s passed on",
        lines("(111: Connection refused)"),
        lines("prematurely closed") + lines("(104: Connection reset by peer)"),
        failed.iter().filter(|f| f.result.as_ref().is_err_and(|e| e.what.starts_with("502"))).count()
    );
    assert!(before >= 16 && after.len() >= 16, "too little load to say anything");
    let late_failures: Vec<_> =
        after.iter().filter_map(|f| f.result.as_ref().err().map(|e| (&f.subject, e))).collect();
    assert!(late_failures.is_empty(), "the other two did not serve everything: {late_failures:#?}");

    // Every completed login is still logged in (through nginx, so on the two left), and written.
    let completed: Vec<&Flow> = flows.iter().filter(|f| f.completed()).collect();
    let lost = at_most(
        16,
        completed.iter().map(|f| async {
            cluster
                .logged_in_as(&f.browser, &cluster.nginx(), &f.subject)
                .await
                .err()
                .map(|e| (&f.subject, e))
        }),
    )
    .await;
    let lost: Vec<_> = lost.into_iter().flatten().collect();
    assert!(lost.is_empty(), "completed logins lost: {lost:#?}");
    let names: Vec<String> = completed.iter().map(|f| format!("'{}'", f.subject)).collect();
    let written = format!(
        "SELECT COUNT(*) FROM identities i JOIN users u ON u.id = i.user_id WHERE i.subject IN ({})",
        names.join(",")
    );
    assert_eq!(
        cluster.count(&written).await,
        completed.len() as i64,
        "every completed login is in the database"
    );
}
