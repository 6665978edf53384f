//! `GET /metrics`, as Prometheus scrapes it: the real binary with `[server] metrics_bind` on a
//! second loopback port. A login, a logout, a refused callback and a rate-limit hit are counted
//! with their provider, outcome, reason and area; the callbacks and the server's calls to the
//! (development) provider are timed in histograms with buckets; the session cache and the
//! database pool are reported. The main port does not serve /metrics, and without
//! `metrics_bind` the server listens on one port only.

use crate::helpers::*;
use loginwith::Store;
use reqwest::StatusCode;
use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Server {
    child: Child,
    address: String,
    port: u16,
}

impl Server {
    /// The binary listening on `port` (picked with the test's other ports: all different).
    fn start(dir: &std::path::Path, port: u16, server_keys: &str) -> Server {
        let config = dir.join("loginwith.toml");
        std::fs::write(
            &config,
            format!(
                "[server]\nbind = \"127.0.0.1:{port}\"\n{server_keys}\n\
                 secret_key = \"metrics-test-secret-key-that-is-long-enough\"\n\
                 [database]\nurl = \"sqlite://{}\"\n[limits]\nauthorize_per_minute = 3\n",
                dir.join("metrics.db").display()
            ),
        )
        .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_loginwith"))
            .args(["--config", config.to_str().unwrap(), "serve"])
            .current_dir(dir)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("LOGINWITH_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start loginwith");
        Server { child, address: format!("http://127.0.0.1:{port}"), port }
    }

    async fn wait_healthy(&self) {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(30) {
            if let Ok(r) = reqwest::get(format!("{}/healthz", self.address)).await {
                if r.status() == StatusCode::OK {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("loginwith did not become healthy");
    }

    /// The TCP ports this process listens on, from /proc (its socket inodes in LISTEN state).
    fn listening_ports(&self) -> BTreeSet<u16> {
        let pid = self.child.id();
        let inodes: BTreeSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .expect("/proc/PID/fd")
            .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
            .filter_map(|link| {
                let link = link.to_string_lossy().into_owned();
                Some(link.strip_prefix("socket:[")?.strip_suffix(']')?.to_owned())
            })
            .collect();
        let mut ports = BTreeSet::new();
        for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
            let text = std::fs::read_to_string(table).unwrap_or_default();
            for line in text.lines().skip(1) {
                let fields: Vec<&str> = line.split_whitespace().collect();
                // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
                if fields.len() > 9 && fields[3] == "0A" && inodes.contains(fields[9]) {
                    let port = fields[1].rsplit(':').next().and_then(|p| u16::from_str_radix(p, 16).ok());
                    ports.extend(port);
                }
            }
        }
        ports
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The samples of a Prometheus text page, keyed `name{label="value",...}` with the labels sorted.
pub(crate) fn samples(text: &str) -> BTreeMap<String, f64> {
    let mut samples = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("bad line {line:?}"));
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("bad value in {line:?}"));
        let key = match series.split_once('{') {
            None => series.to_owned(),
            Some((name, labels)) => {
                let mut labels: Vec<&str> = labels.trim_end_matches('}').split(',').collect();
                labels.sort_unstable();
                format!("{name}{{{}}}", labels.join(","))
            }
        };
        samples.insert(key, value);
    }
    samples
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_logins_refusals_limits_and_time_the_provider_calls() {
    let dir = tempfile::tempdir().unwrap();
    let [port, metrics_port] = crate::proxies::free_ports(2)[..] else { unreachable!("two ports") };
    let server = Server::start(dir.path(), port, &format!("metrics_bind = \"127.0.0.1:{metrics_port}\""));
    server.wait_healthy().await;
    assert_eq!(server.listening_ports(), BTreeSet::from([server.port, metrics_port]));
    let store =
        Store::connect(&format!("sqlite://{}", dir.path().join("metrics.db").display())).await.unwrap();
    let app = TestApp::attach(&server.address, store);

    // A login (new user), a few pages with the session (cache hits), a logout.
    let authorize = app.begin_login("dev").await;
    let callback = app.dev_decide(&authorize, "counted@example.com", true, true).await;
    assert_eq!(app.complete_callback(&callback).await.status(), StatusCode::SEE_OTHER);
    for _ in 0..3 {
        assert_eq!(app.api_me().await.0, StatusCode::OK);
    }
    app.logout().await;
    // A refused callback: the same one again.
    assert_eq!(app.complete_callback(&callback).await.status(), StatusCode::BAD_REQUEST);
    // Over the limit of three authorize requests per minute (one made above).
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(app.get("/authorize/dev").await.status());
    }
    assert_eq!(statuses, [StatusCode::FOUND, StatusCode::FOUND, StatusCode::TOO_MANY_REQUESTS]);

    // The main port does not serve the metrics; the metrics port serves nothing else.
    assert_eq!(app.get("/metrics").await.status(), StatusCode::NOT_FOUND);
    let metrics_url = format!("http://127.0.0.1:{metrics_port}");
    assert_eq!(reqwest::get(format!("{metrics_url}/healthz")).await.unwrap().status(), StatusCode::NOT_FOUND);
    let response = reqwest::get(format!("{metrics_url}/metrics")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
    let text = response.text().await.unwrap();
    let samples = samples(&text);
    let get = |key: &str| samples.get(key).copied().unwrap_or_else(|| panic!("no {key} in:\n{text}"));

    assert_eq!(get(r#"loginwith_logins_total{outcome="new",provider="dev"}"#), 1.0);
    assert_eq!(get(r#"loginwith_logins_total{outcome="refused",provider="dev"}"#), 1.0);
    assert_eq!(get(r#"loginwith_login_refusals_total{provider="dev",reason="state_unknown"}"#), 1.0);
    assert_eq!(get("loginwith_logouts_total"), 1.0);
    assert!(get(r#"loginwith_rate_limited_total{area="authorize"}"#) >= 1.0);

    // Real histograms (buckets), not summaries: two callbacks answered.
    assert!(text.contains("# TYPE loginwith_callback_duration_seconds histogram"), "{text}");
    assert_eq!(get("loginwith_callback_duration_seconds_count"), 2.0);
    assert_eq!(get(r#"loginwith_callback_duration_seconds_bucket{le="+Inf"}"#), 2.0);
    assert!(samples.contains_key(r#"loginwith_callback_duration_seconds_bucket{le="0.001"}"#), "{text}");
    assert!(samples.contains_key(r#"loginwith_callback_duration_seconds_bucket{le="10"}"#), "{text}");
    // The development provider is called over HTTP like any OpenID Connect provider: discovery
    // and its key set (at start-up), and the one code exchange (the refused callback made none).
    let provider_count = |step: &str| {
        get(&format!(r#"loginwith_provider_request_duration_seconds_count{{provider="dev",step="{step}"}}"#))
    };
    assert!(text.contains("# TYPE loginwith_provider_request_duration_seconds histogram"), "{text}");
    assert!(provider_count("discovery") >= 1.0);
    assert!(provider_count("jwks") >= 1.0);
    assert_eq!(provider_count("token"), 1.0);
    assert!(!text.contains("loginwith_provider_errors_total"), "no provider call failed:\n{text}");

    assert!(get(r#"loginwith_session_cache_total{result="hit"}"#) >= 3.0);
    assert!(get("loginwith_db_pool_max_connections") >= 1.0);
    let open = get(r#"loginwith_db_pool_connections{state="idle"}"#)
        + get(r#"loginwith_db_pool_connections{state="in_use"}"#);
    assert!(open >= 1.0 && open <= get("loginwith_db_pool_max_connections"), "{text}");

    // Nothing personal or secret is a label.
    assert!(!text.contains("counted@example.com") && !text.contains("127.0.0.1"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_metrics_bind_there_is_one_listener() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), crate::proxies::free_port(), "");
    server.wait_healthy().await;
    assert_eq!(server.listening_ports(), BTreeSet::from([server.port]));
    let store =
        Store::connect(&format!("sqlite://{}", dir.path().join("metrics.db").display())).await.unwrap();
    let app = TestApp::attach(&server.address, store);
    assert_eq!(app.get("/metrics").await.status(), StatusCode::NOT_FOUND);
}

/// The recorder is process-wide: a second server in the same process shares it instead of failing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_in_one_process_share_the_recorder() {
    let dir = tempfile::tempdir().unwrap();
    let mut stops = Vec::new();
    let mut addrs = Vec::new();
    for n in 0..2 {
        let toml = format!(
            "[server]\nbind = \"127.0.0.1:0\"\nmetrics_bind = \"127.0.0.1:0\"\n\
             secret_key = \"metrics-test-secret-key-that-is-long-enough\"\n\
             [database]\nurl = \"sqlite://{}\"\n",
            dir.path().join(format!("in-process-{n}.db")).display()
        );
        let app = loginwith::App::build(loginwith::Config::from_toml(&toml).unwrap()).await.unwrap();
        let metrics = app.metrics_addr().expect("metrics_bind is set");
        assert_ne!(metrics, app.local_addr());
        addrs.push(metrics);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        stops.push(stop);
        tokio::spawn(app.run_until(async move {
            let _ = stopped.await;
        }));
    }
    for addr in &addrs {
        let response = reqwest::get(format!("http://{addr}/metrics")).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.text().await.unwrap().contains("loginwith_db_pool_max_connections"));
    }
    drop(stops);
    // Both listeners stop with the shutdown future.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for addr in &addrs {
        assert!(reqwest::get(format!("http://{addr}/metrics")).await.is_err(), "{addr} still serves");
    }
}
