//! The load benchmark: `cargo run --release --example loadtest -- --duration 15`.
//!
//! It starts, on 127.0.0.1 random ports, a fast mock OpenID Connect provider (in this process, on
//! a runtime thread of its own), the loginwith binary of the same build profile (a separate
//! process, configured against the mock, with a SQLite database in a temp dir or a fresh
//! PostgreSQL database with `--database postgres://...`, with `[gateway] enabled = true` and
//! `trusted_proxies = ["127.0.0.1"]`), and a bare axum server answering fixed
//! bodies (also a separate process: this program re-executed with a hidden `--serve-bare PORT`).
//! Then C virtual users (`--concurrency`, default 32), each with its own cookie jar and following
//! no redirect, run these scenarios one after the other, each for `--duration` seconds (default
//! 15):
//!
//! - **login**: GET /authorize/mock → the provider's authorize → GET /callback/mock (token
//!   exchange, ID token checks, user upsert, session) → GET / showing the user's address →
//!   POST /logout. Half the flows use a fresh address, half one of 100 returning addresses.
//! - **reads**: each user logs in once, then loops GET /api/me for half the time, GET / for the
//!   other half, checking the status and the address every time.
//! - **gateway check**: each user logs in once, then loops GET /gateway/check with
//!   `X-Original-URL: http://127.0.0.1:PORT/some/page?id=42`, as a proxy asks it about every
//!   request, checking the 200 and that `X-Auth-Request-User` names that user every time (the
//!   username it read from /api/me after logging in; `X-Auth-Request-Email` stays empty because
//!   the mock is a provider whose `email_verified` loginwith does not trust). Its ratio is against
//!   the bare server's `/api/me` (a fixed body about the size of the check's answer): issue 9
//!   asks for ≥ 0.4.
//! - **bare**: the same two loops against the bare server: the reference.
//! - with **`--nginx`** (nginx at /usr/sbin/nginx or on PATH): a second loginwith, mounted at
//!   /auth (`public_url = "http://127.0.0.1:B/auth"`) as deploy/nginx.conf requires, and nginx
//!   (its own process, `master_process off`, its files in the temp dir) with two server blocks on
//!   127.0.0.1 ports A and B, the bare server as `upstream app`: (a) on A `location / {
//!   proxy_pass http://app; }` and nothing else; (b) on B the repository's deploy/nginx.conf,
//!   included unchanged, with `upstream loginwith` = that second instance. Each user logs in
//!   through B (GET /auth/authorize/mock ... via nginx, as a browser would), then loops
//!   GET /whoami through A (**nginx alone**), then through B (**nginx+loginwith**), `--duration`
//!   each. Its cookie goes to A too (cookies match by host, not port), so both sides carry the
//!   same request. The bare app's `/whoami` answers with the `X-Auth-Request-User` it received:
//!   through B it must name the user (a 302 to the login is an error), through A nobody. The
//!   report gives both rates, the ratio (b)/(a), and the CPU per request of the processes behind
//!   each (nginx + app; nginx + loginwith + app). The upstreams keep connections alive
//!   (`keepalive 32`, HTTP/1.1), the same on both sides.
//!
//! - with **`--instances N`** (and `--database postgres://...`): instead of all the above, the
//!   login scenario behind nginx, against 1 loginwith, then N, then 1 again, in the same run (the
//!   N side against the mean of the two others); see examples/loadtest/instances.rs.
//!
//! It reports per step the rate, p50 / p90 / p99 / max latency and errors by kind, the CPU used by
//! the server and by this process, loginwith's peak RSS (VmHWM) and start-to-healthy time, and the
//! ratios against the bare server measured in the same run; as a table, and as JSON with
//! `--json FILE`. Any error (a wrong status, a page that does not show the logged-in user, a
//! refused token request, an ERROR line in loginwith's log) makes the exit status non-zero;
//! timings never do (nor, with `--nginx`, an `[error]` line in nginx's log). `--smoke` is the CI
//! variant: 2 s per scenario, 4 users, the gateway check included.
//!
//! All parties share the machine's cores, so the report gives each one's CPU. The mock signs ID
//! tokens with RS256 by default, like most real providers; that costs it a millisecond or two of
//! CPU per login, taken from the cores loginwith runs on. `--provider-alg eddsa` makes signing
//! nearly free, so that the login rate is loginwith's alone.
//!
//! **Against a running instance**: `--target http://127.0.0.1:PORT` loads that server instead of
//! starting one (loopback addresses only). The target must be configured with the mock provider
//! that `--print-provider-config` prints (issuer `http://127.0.0.1:5055`, the mock's port there
//! with `--target`; change it with `--provider-port`), e.g.
//!
//! ```sh
//! cargo run --release --example loadtest -- --print-provider-config >> loginwith.toml
//! cargo run --release &                       # the instance, with that provider
//! cargo run --release --example loadtest -- --target http://127.0.0.1:5000 --target-pid $!
//! ```
//!
//! When the target has no provider named `mock` (or `--provider-name`) that points at this mock,
//! the login and logged-in scenarios are skipped with a message, and logged-out reads run instead.
//! A target without `[gateway] enabled` (its /gateway/check answers 404) skips the gateway check.
//! `--nginx` needs a started instance, so it does not go with `--target`.
//! `--target-pid` lets the report include the target's RSS and CPU.
//!
//! Everything is bounded: every request times out after 10 s, every loop ends at its deadline, and
//! the started processes are killed at the end, on error and on Ctrl-C.

#[path = "loadtest/instances.rs"]
mod instances;
#[path = "loadtest/mock.rs"]
mod mock;
#[path = "loadtest/procs.rs"]
mod procs;
#[path = "loadtest/report.rs"]
mod report;
#[path = "loadtest/vu.rs"]
mod vu;

use clap::Parser;
use report::{Measured, Report, Stats};
use reqwest::StatusCode;
use serde_json::json;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use vu::{Phase, Read, Recorder, Site};

/// The load benchmark of loginwith (see the doc comment of examples/loadtest.rs).
#[derive(Debug, Parser)]
#[command(about, after_help = "See the top of examples/loadtest.rs for what each scenario does.")]
struct Args {
    /// Seconds per scenario (default 15; 2 with --smoke).
    #[arg(long)]
    duration: Option<f64>,
    /// Concurrent virtual users (default 32; 4 with --smoke).
    #[arg(long)]
    concurrency: Option<usize>,
    /// Latency the mock provider adds to every token request, to model a real provider (each
    /// request waits a uniformly random 0.5–1.5 × this, so that users do not move in lockstep).
    #[arg(long, default_value_t = 0)]
    provider_latency_ms: u64,
    /// How the mock signs ID tokens: rs256 (realistic; its signing takes CPU from the same cores)
    /// or eddsa (nearly free, so that the login rate is loginwith's alone).
    #[arg(long, value_enum, default_value_t = mock::Alg::Rs256)]
    provider_alg: mock::Alg,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Load a running loginwith at this loopback URL instead of starting one. It must be configured
    /// with the provider that --print-provider-config prints.
    #[arg(long)]
    target: Option<String>,
    /// With --target: the target's process id, to report its RSS and CPU (default: the process
    /// found listening on the target's port).
    #[arg(long, requires = "target")]
    target_pid: Option<u32>,
    /// Run the started loginwith on PostgreSQL: a server URL such as
    /// postgres://postgres@127.0.0.1:5432/postgres; a fresh database is created there and dropped
    /// at the end.
    #[arg(long, conflicts_with = "target")]
    database: Option<String>,
    /// The mock provider's port (default: a free one; 5055 with --target and
    /// --print-provider-config).
    #[arg(long)]
    provider_port: Option<u16>,
    /// The provider's name in loginwith's configuration.
    #[arg(long, default_value = "mock")]
    provider_name: String,
    /// Print the [providers.NAME] table that points a loginwith at the mock provider, and exit.
    #[arg(long)]
    print_provider_config: bool,
    /// CI smoke run: 2 s per scenario, 4 users (unless given), same checks.
    #[arg(long)]
    smoke: bool,
    /// The loginwith binary to start (default: the one beside this example, built first).
    #[arg(long, conflicts_with = "target")]
    loginwith_bin: Option<PathBuf>,
    /// Do not run `cargo build --bin loginwith` first (use the binary as it is).
    #[arg(long)]
    no_build: bool,
    /// Also measure through nginx: the bare app behind nginx alone, and behind nginx with the
    /// repository's deploy/nginx.conf asking a second loginwith (mounted at /auth) about every
    /// request. Needs nginx at /usr/sbin/nginx or on PATH.
    #[arg(long, conflicts_with = "target")]
    nginx: bool,
    /// Only the login scenario, behind nginx: against 1 loginwith instance, then against N
    /// instances (round robin) on one PostgreSQL database, in the same run; reports flows/s and the
    /// server CPU per flow of both sides and their ratio. Needs --database postgres://... and nginx.
    #[arg(long, conflicts_with_all = ["target", "nginx"], value_parser = clap::value_parser!(u16).range(1..=16))]
    instances: Option<u16>,
    /// With --instances: `[sessions] url = URL` for every instance (a Redis session store).
    #[arg(long, requires = "instances")]
    sessions: Option<String>,
    /// With --instances: `[server] session_cache = false` on every instance (every request reads
    /// its session from the database), to tell what the per-instance caches save or cost.
    #[arg(long, requires = "instances")]
    no_session_cache: bool,
    /// Internal: serve the bare reference on this port.
    #[arg(long, hide = true)]
    serve_bare: Option<u16>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(port) = args.serve_bare {
        return procs::serve_bare(port);
    }
    let valid_name = !args.provider_name.is_empty()
        && args.provider_name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !valid_name {
        eprintln!("error: --provider-name must be lowercase letters, digits and '-'");
        return ExitCode::from(2);
    }
    // Before anything starts: several instances share one database, which SQLite cannot be.
    if args.instances.is_some() && !args.database.as_deref().is_some_and(procs::is_postgres_url) {
        eprintln!(
            "error: --instances needs --database postgres://... (a PostgreSQL server; a fresh database \
             is made on it for each side): a SQLite file serves one instance"
        );
        return ExitCode::from(2);
    }
    if args.print_provider_config {
        let port = args.provider_port.unwrap_or(mock::DEFAULT_TARGET_PORT);
        println!(
            "# The load benchmark's mock provider (cargo run --release --example loadtest -- --target URL"
        );
        println!("# serves it on 127.0.0.1:{port} while it runs; the issuer must match exactly).");
        print!("{}", mock::provider_toml(&args.provider_name, &format!("http://127.0.0.1:{port}")));
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The databases made for this run (admin URL, name), dropped whatever happens.
    let made_db: MadeDbs = Arc::new(Mutex::new(Vec::new()));
    let code = runtime.block_on(async {
        let outcome = tokio::select! {
            r = run(args, made_db.clone()) => r,
            _ = tokio::signal::ctrl_c() => Err("interrupted".to_owned()),
        };
        // The run's future is gone: its servers were killed (kill_on_drop), its temp dir removed.
        let dbs = made_db.lock().map(|mut d| std::mem::take(&mut *d)).unwrap_or_default();
        for (admin, name) in dbs {
            procs::drop_postgres_db(&admin, &name).await;
        }
        match outcome {
            Ok(0) => ExitCode::SUCCESS,
            Ok(errors) => {
                eprintln!("FAILED: {errors} error(s) (see above)");
                ExitCode::FAILURE
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        }
    });
    runtime.shutdown_timeout(Duration::from_millis(500));
    code
}

/// The databases a run made, as (admin URL, name): dropped at the end, on error and on Ctrl-C.
type MadeDbs = Arc<Mutex<Vec<(String, String)>>>;

/// A fresh database on the PostgreSQL server of `admin_url`, recorded in `made` to be dropped at
/// the end; its URL.
async fn fresh_database(admin_url: &str, made: &MadeDbs) -> Result<String, String> {
    let (db_url, name) = procs::create_postgres_db(admin_url).await?;
    if let Ok(mut dbs) = made.lock() {
        dbs.push((admin_url.to_owned(), name));
    }
    Ok(db_url)
}

/// Runs a scenario and measures it. `servers`: the processes that serve it, by name (none when
/// unknown), whose CPU counts as the server's, each also on its own when there are several; the
/// peak RSS is reported when there is one.
async fn measure(
    name: &str,
    unit: &'static str,
    servers: &[(impl AsRef<str>, u32)],
    run: impl std::future::Future<Output = Result<Phase, String>>,
) -> Result<Measured, String> {
    let cpu_each =
        || -> Vec<Option<f64>> { servers.iter().map(|(_, p)| procs::cpu_seconds(Some(*p))).collect() };
    let total = |each: &[Option<f64>]| -> Option<f64> {
        (!each.is_empty()).then_some(())?;
        each.iter().copied().sum()
    };
    let server_before = cpu_each();
    let self_before = procs::cpu_seconds(None);
    let mock_before = procs::thread_cpu_seconds(mock::THREAD_NAME);
    let phase = run.await?;
    let secs = phase.elapsed.as_secs_f64().max(1e-9);
    let pct = |before: Option<f64>, after: Option<f64>| Some(((after? - before?) / secs * 100.0).max(0.0));
    let mock_cpu = pct(mock_before, procs::thread_cpu_seconds(mock::THREAD_NAME));
    let self_cpu = pct(self_before, procs::cpu_seconds(None));
    let server_after = cpu_each();
    let server_parts = match servers {
        [_, _, ..] => servers
            .iter()
            .zip(server_before.iter().zip(&server_after))
            .map(|((label, _), (before, after))| (label.as_ref().to_owned(), pct(*before, *after)))
            .collect(),
        _ => Vec::new(),
    };
    let m = Measured {
        name: name.to_owned(),
        unit,
        server_cpu: pct(total(&server_before), total(&server_after)),
        server_parts,
        mock_cpu,
        users_cpu: self_cpu.zip(mock_cpu).map(|(a, b)| (a - b).max(0.0)).or(self_cpu),
        server_hwm_kib: match servers {
            [(_, pid)] => procs::vm_kib(*pid, "VmHWM"),
            _ => None,
        },
        phase,
    };
    eprintln!(
        "  {name}: {} {unit} in {:.1} s ({:.1}/s), {} error(s)",
        m.ops(),
        m.phase.elapsed.as_secs_f64(),
        m.rate(),
        m.phase.rec.error_count()
    );
    Ok(m)
}

/// The configuration of a loginwith started by the benchmark: on 127.0.0.1:`port`, mounted where
/// `public_url` says (at the root without one), with the gateway on and 127.0.0.1 (the virtual
/// users, and nginx) as a trusted proxy, so that `check` reads `X-Original-URL` as it does behind
/// a real proxy. Instances that serve the same users behind one address share `secret_key`.
/// `server_extra`: more lines of the `[server]` table.
fn loginwith_toml(
    port: u16,
    public_url: Option<&str>,
    db_url: &str,
    provider: &str,
    secret_key: &str,
    server_extra: &str,
) -> String {
    let public_url = public_url.map_or_else(String::new, |url| format!("public_url = \"{url}\"\n"));
    // Every virtual user comes from 127.0.0.1, so the per-client rate limits are set as high as
    // they go: the limiter still runs on every authorize and callback (its cost is part of the
    // figures), it just never refuses.
    format!(
        "[server]\nbind = \"127.0.0.1:{port}\"\n{public_url}secret_key = \"{}\"\n\
         trusted_proxies = [\"127.0.0.1\"]\n{server_extra}\n[database]\nurl = \"{db_url}\"\n\n\
         [limits]\nauthorize_per_minute = 1000000\ncallback_per_minute = 1000000\n\n\
         [gateway]\nenabled = true\n\n{provider}",
        secret_key,
    )
}

/// Starts the loginwith binary with `config` (written to `dir/NAME.toml`, its log in
/// `dir/NAME.log`) and waits until `health_url` answers 200.
async fn start_loginwith(
    bin: &std::path::Path,
    dir: &std::path::Path,
    name: &str,
    config: &str,
    health_url: &str,
) -> Result<(procs::Server, PathBuf), String> {
    let config_path = dir.join(format!("{name}.toml"));
    std::fs::write(&config_path, config).map_err(|e| e.to_string())?;
    let log_path = dir.join(format!("{name}.log"));
    let log = std::fs::File::create(&log_path).map_err(|e| e.to_string())?;
    let mut cmd = procs::clean_command(bin, dir);
    cmd.arg("--config").arg(&config_path).env("LOGINWITH_LOG", "warn").stdin(std::process::Stdio::null());
    cmd.stdout(log.try_clone().map_err(|e| e.to_string())?).stderr(log);
    let server =
        procs::spawn_until_healthy(cmd, health_url, Duration::from_secs(60), Some(&log_path)).await?;
    eprintln!(
        "{name} healthy in {:.1} ms (pid {})",
        server.start_to_healthy.as_secs_f64() * 1000.0,
        server.pid
    );
    Ok((server, log_path))
}

/// Whether the target's provider named like the mock leads to this mock: `Ok(None)` yes (and a
/// probe login passed), `Ok(Some(why))` no (skip the login scenarios), `Err` a failure.
async fn probe_login(site: &Site, managed: bool, run_id: &str) -> Result<Option<String>, String> {
    let client = vu::browser();
    let url = format!("{}/authorize/{}", site.base, site.provider);
    let started = std::time::Instant::now();
    loop {
        let r = client.get(&url).send().await.map_err(|e| format!("GET {url}: {}", vu::error_chain(&e)))?;
        let status = r.status();
        let location =
            r.headers().get("location").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        let body = vu::excerpt(&r.text().await.unwrap_or_default());
        match status {
            StatusCode::FOUND if location.starts_with(&format!("{}/authorize?", site.mock_issuer)) => break,
            StatusCode::FOUND if !managed => {
                return Ok(Some(format!(
                    "the target's provider `{}` sends browsers to {location}, not to this mock at {} \
                     (configure it with --print-provider-config, and the same --provider-port)",
                    site.provider, site.mock_issuer
                )))
            }
            StatusCode::NOT_FOUND if !managed => {
                return Ok(Some(format!(
                    "the target has no provider named `{}` (configure it with the output of \
                     --print-provider-config, or name it with --provider-name)",
                    site.provider
                )))
            }
            // Discovery is retried at most every 5 s (and the target may have started before the mock).
            StatusCode::SERVICE_UNAVAILABLE if started.elapsed() < Duration::from_secs(20) => {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            _ => return Err(format!("GET {url} answered {status} (Location {location:?}): {body}")),
        }
    }
    let _ = client.post(format!("{}/logout", site.base)).send().await;
    let mut rec = Recorder::default();
    if vu::login_flow(&client, site, &mut rec, &format!("probe-{run_id}@bench.example"), true).await {
        return Ok(None);
    }
    let why: Vec<String> = rec.errors.keys().map(|k| format!("{k}: {}", rec.examples[k])).collect();
    Err(format!("a first login through the mock provider failed: {}", why.join("; ")))
}

/// Why the gateway check scenario cannot run, if it cannot: a target without `[gateway] enabled`
/// answers 404 at `/gateway/check` (a started loginwith always has it).
async fn gateway_skipped(site: &Site, managed: bool) -> Result<Option<String>, String> {
    if managed {
        return Ok(None);
    }
    let url = format!("{}/gateway/check", site.base);
    match vu::browser().get(&url).send().await {
        Ok(r) if r.status() == StatusCode::NOT_FOUND => {
            Ok(Some(format!("{url} answers 404 (the target has no [gateway] enabled = true)")))
        }
        Ok(_) => Ok(None),
        Err(e) => Err(format!("GET {url}: {}", vu::error_chain(&e))),
    }
}

/// The gateway check as a proxy asks it, about a page of the app it protects (any URL passes when
/// there are no per-host rules): 200, naming the user in X-Auth-Request-User (see
/// `vu::username_of` for why not X-Auth-Request-Email).
fn gateway_check(site: &Site) -> Read {
    Read::new("GET check", "/gateway/check", StatusCode::OK, "{username}", true)
        .sending("x-original-url", format!("{}/some/page?id=42", site.origin()))
        .expecting_header("x-auth-request-user")
}

/// The `--nginx` scenarios' parties: nginx, a second loginwith mounted at /auth behind it, and the
/// bare server as the app.
struct NginxBench<'a> {
    nginx: PathBuf,
    loginwith: &'a std::path::Path,
    dir: &'a std::path::Path,
    db_url: &'a str,
    provider_toml: &'a str,
    /// The provider's name and the mock's issuer (its base is replaced by nginx's).
    site: &'a Site,
    bare: &'a procs::Server,
    bare_port: u16,
}

impl NginxBench<'_> {
    /// (a) nginx → app alone, then (b) nginx + loginwith → app through deploy/nginx.conf: logged-in
    /// users loop `GET /whoami` through each for `duration`. Returns the two measurements and the
    /// problems nginx and that loginwith logged.
    async fn run(
        &self,
        concurrency: usize,
        duration: Duration,
    ) -> Result<(Vec<Measured>, Vec<(String, u64, String)>), String> {
        let ports = procs::NginxPorts {
            alone: procs::free_port()?,
            gateway: procs::free_port()?,
            loginwith: procs::free_port()?,
            app: self.bare_port,
        };
        // Mounted at /auth, as deploy/nginx.conf requires, and reached by browsers through (b).
        let public_url = format!("http://127.0.0.1:{}/auth", ports.gateway);
        let config = loginwith_toml(
            ports.loginwith,
            Some(&public_url),
            self.db_url,
            self.provider_toml,
            &mock::random_token(48),
            "",
        );
        eprintln!(
            "starting a second loginwith at {public_url} (on 127.0.0.1:{}) for nginx...",
            ports.loginwith
        );
        let health = format!("http://127.0.0.1:{}/auth/healthz", ports.loginwith);
        let (loginwith, log) =
            start_loginwith(self.loginwith, self.dir, "loginwith-nginx", &config, &health).await?;
        let nginx_dir = self.dir.join("nginx");
        std::fs::create_dir_all(&nginx_dir)
            .map_err(|e| format!("cannot create {}: {e}", nginx_dir.display()))?;
        let nginx_config = procs::nginx_config(&nginx_dir, &ports, concurrency);
        eprintln!(
            "starting nginx ({}): (a) alone on 127.0.0.1:{}, (b) with loginwith on 127.0.0.1:{}...",
            self.nginx.display(),
            ports.alone,
            ports.gateway
        );
        let nginx = procs::start_nginx(&self.nginx, &nginx_dir, &nginx_config, ports.alone).await?;
        eprintln!(
            "nginx healthy in {:.1} ms (pid {})",
            nginx.start_to_healthy.as_secs_f64() * 1000.0,
            nginx.pid
        );

        // Every user logs in through (b) itself, as a browser would, and keeps its cookie jar for
        // both loops. reqwest's Jar, like a browser, matches cookies by host and ignores the port,
        // so (a) gets the same cookie: the same request bytes on both sides; it just never asks.
        let site = Site { base: public_url.clone(), ..self.site.clone() };
        let secs = duration.as_secs_f64();
        let through = |port: u16, needle| {
            Read::new("GET /whoami", "/whoami", StatusCode::OK, needle, true)
                .at_origin(format!("http://127.0.0.1:{port}"))
        };
        let mut results = Vec::new();
        eprintln!("scenario nginx alone: {secs:.1} s...");
        let alone =
            vu::read_scenario(&site, through(ports.alone, procs::WHOAMI_NOBODY), concurrency, duration);
        let servers = [("nginx", nginx.pid), ("app", self.bare.pid)];
        results.push(measure("nginx alone", "requests", &servers, alone).await?);
        eprintln!("scenario nginx+loginwith: {secs:.1} s...");
        // The app sees the user that loginwith named; a 302 to the login is an error (status).
        let gated =
            vu::read_scenario(&site, through(ports.gateway, procs::WHOAMI_USER), concurrency, duration);
        let servers = [("nginx", nginx.pid), ("loginwith", loginwith.pid), ("app", self.bare.pid)];
        results.push(measure("nginx+loginwith", "requests", &servers, gated).await?);

        let mut problems = server_problems("loginwith (nginx's)", loginwith, &log).await;
        problems.extend(server_problems("nginx", nginx, &nginx_dir.join("nginx.log")).await);
        Ok((results, problems))
    }
}

/// The scenarios' errors, as ("scenario: step: kind", count, first example).
fn measured_errors<'a>(results: impl IntoIterator<Item = &'a Measured>) -> Vec<(String, u64, String)> {
    let mut errors = Vec::new();
    for m in results {
        for (kind, n) in &m.phase.rec.errors {
            errors.push((
                format!("{}: {kind}", m.name),
                *n,
                m.phase.rec.examples.get(kind).cloned().unwrap_or_default(),
            ));
        }
    }
    errors
}

/// The error list as the JSON report has it.
fn errors_json(errors: &[(String, u64, String)]) -> Vec<serde_json::Value> {
    errors.iter().map(|(k, n, e)| json!({"kind": k, "count": n, "example": e})).collect()
}

/// The JSON report: what ran where, the settings, the results.
fn json_document(
    commit: Option<&str>,
    cpus: usize,
    model: &str,
    settings: serde_json::Value,
    results: serde_json::Value,
) -> serde_json::Value {
    let unix_time =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    json!({
        "benchmark": "loginwith loadtest",
        "version": 1,
        "unix_time": unix_time,
        "git_commit": commit,
        "machine": {"cpus": cpus, "model": model},
        "settings": settings,
        "results": results,
    })
}

fn write_json(path: &std::path::Path, doc: serde_json::Value) -> Result<(), String> {
    let text = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?;
    std::fs::write(path, text + "\n").map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    println!("JSON written to {}", path.display());
    Ok(())
}

/// What went wrong in a started server, after its scenarios: its exit, ERROR lines in its log
/// (nginx's `[error]` or worse). Stops it.
async fn server_problems(
    name: &str,
    mut server: procs::Server,
    log: &std::path::Path,
) -> Vec<(String, u64, String)> {
    let mut problems = Vec::new();
    if let Ok(Some(status)) = server.child.try_wait() {
        problems.push((
            format!("{name}: the process ended during the run"),
            1,
            format!("{status}{}", procs::log_tail(log)),
        ));
    }
    let (count, first) = if name == "nginx" {
        procs::nginx_log_errors(log)
    } else {
        let (_, errors, first) = procs::log_problems(log);
        (errors, first)
    };
    if count > 0 {
        problems.push((
            format!("{name} log: error lines"),
            count as u64,
            first.first().cloned().unwrap_or_default(),
        ));
    }
    server.stop().await;
    problems
}

async fn run(args: Args, made_db: MadeDbs) -> Result<u64, String> {
    let duration = args.duration.unwrap_or(if args.smoke { 2.0 } else { 15.0 });
    let concurrency = args.concurrency.unwrap_or(if args.smoke { 4 } else { 32 });
    if !(0.5..=3600.0).contains(&duration) || !(1..=4096).contains(&concurrency) {
        return Err("--duration must be 0.5 to 3600 s and --concurrency 1 to 4096".into());
    }
    let duration = Duration::from_secs_f64(duration);
    let half = duration / 2;
    let run_id = mock::random_token(8).to_lowercase();
    let (cpus, model) = procs::machine();
    let commit = procs::git_commit();
    println!(
        "loginwith load benchmark{}: {concurrency} virtual users, {:.1} s per scenario, \
         provider latency {} ms, ID tokens {:?}",
        if args.smoke { " (smoke)" } else { "" },
        duration.as_secs_f64(),
        args.provider_latency_ms,
        args.provider_alg,
    );
    println!("machine: {cpus} CPUs, {model}; commit {}", commit.as_deref().unwrap_or("unknown"));

    // Before anything starts: without nginx, --nginx and --instances cannot run.
    let nginx_bin = if args.nginx || args.instances.is_some() { Some(procs::nginx_binary()?) } else { None };
    let nginx_version = nginx_bin.as_deref().map(procs::nginx_version);
    if let Some(version) = &nginx_version {
        println!("with nginx: {version}");
    }
    let provider_port =
        args.provider_port.unwrap_or(if args.target.is_some() { mock::DEFAULT_TARGET_PORT } else { 0 });
    // Built first (a no-op when up to date), so that nothing waits on the compiler later.
    let bin = match &args.target {
        None => {
            let explicit = args.loginwith_bin.clone();
            let build = !args.no_build;
            tokio::task::spawn_blocking(move || procs::loginwith_binary(explicit.as_deref(), build))
                .await
                .map_err(|e| e.to_string())??
        }
        Some(_) => PathBuf::new(),
    };
    eprintln!("starting mock provider...");
    let latency = Duration::from_millis(args.provider_latency_ms);
    let alg = args.provider_alg;
    let mock = tokio::task::spawn_blocking(move || mock::Mock::start(provider_port, latency, alg))
        .await
        .map_err(|e| e.to_string())??;
    eprintln!("mock provider at {}", mock.issuer);
    let tmp = tempfile::Builder::new().prefix("loginwith-bench-").tempdir().map_err(|e| e.to_string())?;

    // The server under test.
    let provider = mock::provider_toml(&args.provider_name, &mock.issuer);
    if let (Some(n), Some(nginx), Some(admin_url)) = (args.instances, &nginx_bin, &args.database) {
        let site = Site {
            base: String::new(),
            provider: args.provider_name.clone(),
            mock_issuer: mock.issuer.clone(),
        };
        let bench = instances::Bench {
            nginx,
            loginwith: &bin,
            dir: tmp.path(),
            admin_url,
            made_dbs: &made_db,
            provider_toml: &provider,
            sessions: args.sessions.as_deref(),
            session_cache: !args.no_session_cache,
            site: &site,
            run_id: &run_id,
        };
        let (sides, problems) = bench.run(usize::from(n), concurrency, duration).await?;
        let mut errors = measured_errors(sides.iter().map(|s| &s.measured));
        for (kind, (n, example)) in mock.errors() {
            errors.push((kind, n, example));
        }
        errors.extend(problems);
        let results: Vec<&Measured> = sides.iter().map(|s| &s.measured).collect();
        report::print_steps(results.iter().copied());
        instances::print(&sides, concurrency, duration, !args.no_session_cache);
        let counts: Vec<String> =
            mock.state.counters.snapshot().iter().map(|(n, c)| format!("{n} {c}")).collect();
        println!("mock provider requests: {}", counts.join(", "));
        report::print_errors(&errors);
        if let Some(path) = &args.json {
            let settings = json!({
                "duration_s": duration.as_secs_f64(), "concurrency": concurrency,
                "provider_latency_ms": args.provider_latency_ms,
                "provider_alg": format!("{:?}", args.provider_alg), "smoke": args.smoke,
                "database": "postgres", "provider": args.provider_name, "nginx": nginx_version,
                "instances": n, "sessions": args.sessions, "session_cache": !args.no_session_cache,
            });
            let results = json!({
                "scenarios": results.iter().map(|m| m.json()).collect::<Vec<_>>(),
                "instances": instances::json(&sides),
                "mock_provider": {"requests": mock.state.counters.snapshot().iter()
                    .map(|(n, c)| (n.to_string(), json!(c))).collect::<serde_json::Map<_, _>>()},
                "errors": errors_json(&errors),
                "errors_total": errors.iter().map(|e| e.1).sum::<u64>(),
            });
            write_json(path, json_document(commit.as_deref(), cpus, &model, settings, results))?;
        }
        drop(mock);
        return Ok(errors.iter().map(|e| e.1).sum());
    }
    let mut database_kind = "sqlite";
    // The --nginx instance's database: a file of its own on SQLite (two processes would take turns
    // at one file's write lock), the same database on PostgreSQL.
    let mut nginx_db_url = String::new();
    let (base, mut loginwith, log) = match &args.target {
        Some(target) => {
            let url = url::Url::parse(target).map_err(|e| format!("--target: {e}"))?;
            if url.scheme() != "http" || !procs::is_loopback_host(url.host()) {
                return Err("--target must be an http URL on 127.0.0.1, ::1 or localhost".into());
            }
            let base = target.trim_end_matches('/').to_owned();
            let health = vu::browser().get(format!("{base}/healthz")).send().await;
            match health {
                Ok(r) if r.status() == StatusCode::OK => eprintln!("target {base} is healthy"),
                Ok(r) => return Err(format!("{base}/healthz answered {}", r.status())),
                Err(e) => return Err(format!("{base}/healthz: {}", vu::error_chain(&e))),
            }
            database_kind = "target's";
            (base, None, None)
        }
        None => {
            let db_url = match &args.database {
                Some(url) if procs::is_postgres_url(url) => {
                    database_kind = "postgres";
                    fresh_database(url, &made_db).await?
                }
                Some(url) if url.starts_with("sqlite:") => url.clone(),
                Some(_) => return Err("--database must be a postgres:// or sqlite:// URL".into()),
                None => format!("sqlite://{}", tmp.path().join("bench.db").display()),
            };
            nginx_db_url = match &args.database {
                None => format!("sqlite://{}", tmp.path().join("bench-nginx.db").display()),
                Some(_) => db_url.clone(),
            };
            let port = procs::free_port()?;
            let config = loginwith_toml(port, None, &db_url, &provider, &mock::random_token(48), "");
            eprintln!(
                "starting loginwith ({}) on 127.0.0.1:{port}, {database_kind} database...",
                bin.display()
            );
            let base = format!("http://127.0.0.1:{port}");
            let (server, log_path) =
                start_loginwith(&bin, tmp.path(), "loginwith", &config, &format!("{base}/healthz")).await?;
            (base, Some(server), Some(log_path))
        }
    };
    let loginwith_pid = match (&loginwith, &args.target) {
        (Some(server), _) => Some(server.pid),
        (None, Some(_)) => {
            let port = url::Url::parse(&base).ok().and_then(|u| u.port_or_known_default());
            let listener = port.and_then(procs::listener_pid);
            match (args.target_pid, listener) {
                (Some(given), Some(found)) if given != found => eprintln!(
                    "warning: --target-pid {given} does not listen on the target's port (pid {found} does); \
                     reporting pid {given} anyway"
                ),
                (None, None) => eprintln!(
                    "note: cannot tell which process serves {base}: no RSS or CPU for it (use --target-pid)"
                ),
                (None, Some(found)) => {
                    eprintln!("target process: pid {found} (listens on the target's port)")
                }
                _ => {}
            }
            args.target_pid.or(listener)
        }
        (None, None) => None,
    };

    // The bare reference, another process.
    eprintln!("starting the bare reference server...");
    let bare_port = procs::free_port()?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut cmd = procs::clean_command(&exe, tmp.path());
    cmd.arg("--serve-bare").arg(bare_port.to_string()).stdin(std::process::Stdio::piped());
    let bare_base = format!("http://127.0.0.1:{bare_port}");
    let bare =
        procs::spawn_until_healthy(cmd, &format!("{bare_base}/healthz"), Duration::from_secs(30), None)
            .await?;
    eprintln!(
        "bare server healthy in {:.1} ms (pid {})",
        bare.start_to_healthy.as_secs_f64() * 1000.0,
        bare.pid
    );

    let site =
        Site { base: base.clone(), provider: args.provider_name.clone(), mock_issuer: mock.issuer.clone() };
    let bare_site = Site { base: bare_base, ..site.clone() };
    let skipped = probe_login(&site, loginwith.is_some(), &run_id).await?;
    if let Some(why) = &skipped {
        println!("SKIPPING the login and logged-in scenarios: {why}; running logged-out reads instead.");
    }

    let read = Read::new;
    let loginwith_servers: Vec<(&str, u32)> = loginwith_pid.map(|p| ("loginwith", p)).into_iter().collect();
    let loginwith_pid = loginwith_servers.as_slice();
    let mut results = Vec::new();
    let secs = duration.as_secs_f64();
    if skipped.is_none() {
        eprintln!("scenario login: {secs:.1} s...");
        results.push(
            measure(
                "login",
                "flows",
                loginwith_pid,
                vu::login_scenario(&site, concurrency, duration, &run_id),
            )
            .await?,
        );
        eprintln!("scenario reads (logged in): {secs:.1} s...");
        let me = read("GET /api/me", "/api/me", StatusCode::OK, "\"email\":\"{email}\"", true);
        results.push(
            measure(
                "reads /api/me",
                "requests",
                loginwith_pid,
                vu::read_scenario(&site, me, concurrency, half),
            )
            .await?,
        );
        let page = read("GET /", "/", StatusCode::OK, "{email}", true);
        results.push(
            measure("reads /", "requests", loginwith_pid, vu::read_scenario(&site, page, concurrency, half))
                .await?,
        );
        match gateway_skipped(&site, loginwith.is_some()).await? {
            Some(why) => println!("SKIPPING the gateway check scenario: {why}."),
            None => {
                eprintln!("scenario gateway check (logged in): {secs:.1} s...");
                let check = vu::read_scenario(&site, gateway_check(&site), concurrency, duration);
                results.push(measure("gateway check", "requests", loginwith_pid, check).await?);
            }
        }
    } else {
        eprintln!("scenario reads (logged out): {secs:.1} s...");
        let me = read("GET /api/me", "/api/me", StatusCode::UNAUTHORIZED, "unauthenticated", false);
        results.push(
            measure(
                "anon /api/me",
                "requests",
                loginwith_pid,
                vu::read_scenario(&site, me, concurrency, half),
            )
            .await?,
        );
        let page = read("GET /", "/", StatusCode::OK, "/authorize/", false);
        results.push(
            measure("anon /", "requests", loginwith_pid, vu::read_scenario(&site, page, concurrency, half))
                .await?,
        );
    }
    eprintln!("scenario bare: {secs:.1} s...");
    let me = read("GET /api/me", "/api/me", StatusCode::OK, "bare@bench.example", false);
    results.push(
        measure(
            "bare /api/me",
            "requests",
            &[("bare", bare.pid)],
            vu::read_scenario(&bare_site, me, concurrency, half),
        )
        .await?,
    );
    let page = read("GET /", "/", StatusCode::OK, "bare@bench.example", false);
    results.push(
        measure(
            "bare /",
            "requests",
            &[("bare", bare.pid)],
            vu::read_scenario(&bare_site, page, concurrency, half),
        )
        .await?,
    );
    let mut nginx_problems = Vec::new();
    if let Some(nginx) = nginx_bin {
        let bench = NginxBench {
            nginx,
            loginwith: &bin,
            dir: tmp.path(),
            db_url: &nginx_db_url,
            provider_toml: &provider,
            site: &site,
            bare: &bare,
            bare_port,
        };
        let (measured, problems) = bench.run(concurrency, duration).await?;
        results.extend(measured);
        nginx_problems = problems;
    }

    // Peaks and the provider's and server's own view.
    let loginwith_hwm = loginwith_pid.first().and_then(|(_, p)| procs::vm_kib(*p, "VmHWM"));
    let bare_hwm = procs::vm_kib(bare.pid, "VmHWM");
    let mut errors = measured_errors(&results);
    for (kind, (n, example)) in mock.errors() {
        errors.push((kind, n, example));
    }
    errors.extend(nginx_problems);
    if let Some(server) = loginwith.as_mut() {
        if let Ok(Some(status)) = server.child.try_wait() {
            let tail = log.as_deref().map(procs::log_tail).unwrap_or_default();
            errors.push(("loginwith: the process ended during the run".into(), 1, format!("{status}{tail}")));
        }
    }
    let (log_warns, log_errors, log_first) = log.as_deref().map(procs::log_problems).unwrap_or_default();
    if log_errors > 0 {
        errors.push((
            "loginwith log: ERROR lines".into(),
            log_errors as u64,
            log_first.first().cloned().unwrap_or_default(),
        ));
    }
    let token_service = mock.state.token_service_us.lock().map(|v| v.clone()).unwrap_or_default();
    let report = Report {
        results: &results,
        loginwith_start: loginwith.as_ref().map(|s| s.start_to_healthy),
        loginwith_hwm,
        bare_start: bare.start_to_healthy,
        bare_hwm,
        token_service: Stats::of(&token_service),
        counters: mock.state.counters.snapshot(),
        errors: &errors,
        log_warns,
        log_first: &log_first,
    };
    report.print();
    if let Some(path) = &args.json {
        let settings = json!({
            "duration_s": secs, "concurrency": concurrency, "provider_latency_ms": args.provider_latency_ms,
            "provider_alg": format!("{:?}", args.provider_alg),
            "smoke": args.smoke, "target": args.target, "database": database_kind,
            "provider": args.provider_name, "login_skipped": skipped,
            "nginx": nginx_version,
        });
        write_json(path, json_document(commit.as_deref(), cpus, &model, settings, report.json()))?;
    }
    bare.stop().await;
    if let Some(server) = loginwith {
        server.stop().await;
    }
    drop(mock);
    Ok(errors.iter().map(|e| e.1).sum())
}
