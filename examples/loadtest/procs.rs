//! The processes of the load benchmark: finding (or building) the loginwith binary, starting a
//! server and timing it to its first healthy answer, the bare reference server, nginx in front of
//! it (`--nginx`) or of several loginwith instances (`--instances`), /proc readings, and the
//! throw-away PostgreSQL databases.

use axum::http::{header, HeaderMap};
use axum::response::Html;
use axum::routing::get;
use axum::Router;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

/// A free port on 127.0.0.1 (bound, then released for the child to take).
pub fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("cannot find a free port: {e}"))
}

/// The loginwith binary beside this example (`target/PROFILE/examples/loadtest` →
/// `target/PROFILE/loginwith`), built first with `cargo build --bin loginwith` in the same
/// profile so that the benchmark never measures a stale binary (a no-op when it is up to date).
pub fn loginwith_binary(explicit: Option<&Path>, build: bool) -> Result<PathBuf, String> {
    if let Some(path) = explicit {
        return if path.is_file() {
            Ok(path.to_path_buf())
        } else {
            Err(format!("{} is not a file", path.display()))
        };
    }
    let exe = std::env::current_exe().map_err(|e| format!("cannot locate this program: {e}"))?;
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| format!("unexpected location {}", exe.display()))?;
    let binary = profile_dir.join(format!("loginwith{}", std::env::consts::EXE_SUFFIX));
    if build || !binary.is_file() {
        let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") | None => "dev".to_owned(),
            Some(other) => other.to_owned(),
        };
        let cargo = std::env::var_os("CARGO")
            .or_else(|| option_env!("CARGO").map(Into::into))
            .unwrap_or_else(|| "cargo".into());
        let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
        eprintln!("building loginwith (cargo build --profile {profile} --bin loginwith)...");
        let status = std::process::Command::new(&cargo)
            .args(["build", "--profile", &profile, "--bin", "loginwith", "--manifest-path", manifest])
            .stdin(Stdio::null())
            .status();
        match status {
            Ok(s) if s.success() => {}
            other if binary.is_file() => eprintln!(
                "warning: building loginwith failed ({other:?}); benchmarking the existing, possibly stale, {}",
                binary.display()
            ),
            other => return Err(format!("cannot build loginwith: {other:?}")),
        }
    }
    if binary.is_file() {
        Ok(binary)
    } else {
        Err(format!("{} does not exist after the build", binary.display()))
    }
}

/// A server process started by the benchmark; dropping it kills it.
pub struct Server {
    pub child: tokio::process::Child,
    pub pid: u32,
    /// Spawn → first 200 from the health path.
    pub start_to_healthy: Duration,
}

impl Server {
    /// Kills the process and reaps it.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// A command with an empty environment but PATH (no stray `LOGINWITH_*`, `GOOGLE_CLIENT_ID`, proxy
/// or `.env` setting can change what is measured or send traffic off the machine).
pub fn clean_command(program: &Path, dir: &Path) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(program);
    cmd.env_clear().current_dir(dir).kill_on_drop(true);
    if let Some(path) = std::env::var_os("PATH") {
        cmd.env("PATH", path);
    }
    cmd.env("NO_COLOR", "1");
    cmd
}

/// Spawns `cmd` and polls `health_url` until it answers 200 (at most `limit`).
pub async fn spawn_until_healthy(
    mut cmd: tokio::process::Command,
    health_url: &str,
    limit: Duration,
    log: Option<&Path>,
) -> Result<Server, String> {
    let probe = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(2))
        .build()
        .map_err(|e| e.to_string())?;
    let started = Instant::now();
    let mut child = cmd.spawn().map_err(|e| format!("cannot start the server: {e}"))?;
    let pid = child.id().unwrap_or_default();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let tail = log.map(log_tail).unwrap_or_default();
            return Err(format!("the server exited ({status}) before it was healthy{tail}"));
        }
        if let Ok(r) = probe.get(health_url).send().await {
            if r.status() == reqwest::StatusCode::OK {
                return Ok(Server { child, pid, start_to_healthy: started.elapsed() });
            }
        }
        if started.elapsed() > limit {
            let tail = log.map(log_tail).unwrap_or_default();
            return Err(format!("{health_url} did not answer 200 within {} s{tail}", limit.as_secs()));
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// The last lines of a log, for an error message.
pub fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(15)..].join("\n    ");
    if tail.is_empty() {
        String::new()
    } else {
        format!("; its log ends with:\n    {tail}")
    }
}

/// (warning lines, error lines, first few of them) of a tracing log.
pub fn log_problems(path: &Path) -> (usize, usize, Vec<String>) {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let (mut warns, mut errors, mut first) = (0, 0, Vec::new());
    for line in text.lines() {
        let line = strip_ansi(line);
        let level = line.split_whitespace().nth(1).unwrap_or_default();
        match level {
            "WARN" => warns += 1,
            "ERROR" => errors += 1,
            _ => continue,
        }
        if first.len() < 5 {
            first.push(line.chars().take(300).collect());
        }
    }
    (warns, errors, first)
}

/// The text without terminal colour sequences (`ESC [ ... letter`).
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The process listening on 127.0.0.1/::1 `port`, found through /proc/net/tcp{,6} and the
/// processes' open sockets (only those this user may read).
pub fn listener_pid(port: u16) -> Option<u32> {
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else { continue };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(state), Some(inode)) = (f.get(1), f.get(3), f.get(9)) else { continue };
            let local_port = local.rsplit(':').next().and_then(|p| u16::from_str_radix(p, 16).ok());
            if *state == "0A" && local_port == Some(port) {
                inodes.push(format!("socket:[{inode}]"));
            }
        }
    }
    if inodes.is_empty() {
        return None;
    }
    for proc_dir in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = proc_dir.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        let Ok(fds) = std::fs::read_dir(proc_dir.path().join("fd")) else { continue };
        for fd in fds.flatten() {
            if let Ok(link) = std::fs::read_link(fd.path()) {
                if inodes.iter().any(|i| link.as_os_str() == i.as_str()) {
                    return Some(pid);
                }
            }
        }
    }
    None
}

/// `VmHWM` (peak resident set) or another `Vm*` line of /proc/PID/status, in KiB.
pub fn vm_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// CPU time (user + system) of a process so far, in seconds; `None` for "self" reads this one.
pub fn cpu_seconds(pid: Option<u32>) -> Option<f64> {
    let path = pid.map_or_else(|| "/proc/self/stat".to_owned(), |p| format!("/proc/{p}/stat"));
    let stat = std::fs::read_to_string(path).ok()?;
    // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    // USER_HZ is 100 on Linux.
    Some((utime + stime) as f64 / 100.0)
}

/// CPU time (user + system) of this process's threads named `name`, in seconds.
pub fn thread_cpu_seconds(name: &str) -> Option<f64> {
    let mut ticks = 0u64;
    for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else { continue };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else { continue };
        if &stat[open + 1..close] != name {
            continue;
        }
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        let utime: u64 = fields.get(11).and_then(|f| f.parse().ok()).unwrap_or(0);
        let stime: u64 = fields.get(12).and_then(|f| f.parse().ok()).unwrap_or(0);
        ticks += utime + stime;
    }
    Some(ticks as f64 / 100.0)
}

/// The machine: (logical CPUs, CPU model).
pub fn machine() -> (usize, String) {
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into());
    (cpus, model)
}

/// `git rev-parse --short HEAD` (+ `-dirty`) of the project, if git answers.
pub fn git_commit() -> Option<String> {
    let dir = env!("CARGO_MANIFEST_DIR");
    let out =
        std::process::Command::new("git").args(["-C", dir, "rev-parse", "--short", "HEAD"]).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let mut commit = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let dirty = std::process::Command::new("git")
        .args(["-C", dir, "status", "--porcelain", "--untracked-files=no"])
        .output()
        .map(|o| !o.stdout.is_empty())
        .unwrap_or(false);
    if dirty {
        commit.push_str("-dirty");
    }
    Some(commit)
}

/// The bare reference's page: about the size of loginwith's logged-in start page.
const BARE_PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Logged in · bare</title><link rel="stylesheet" href="/static/app.css"></head>
<body><main>
<h1>Welcome</h1>
<section class="card" aria-label="Your account">
  <dl>
    <dt>Email</dt><dd id="user-email">bare@bench.example</dd>
    <dt>Username</dt><dd id="user-username">bare</dd>
  </dl>
  <form method="post" action="/logout">
    <button type="submit" id="logout">Log out</button>
  </form>
</section>
</main></body></html>
"#;
/// The bare reference's `/api/me`: the shape of loginwith's.
const BARE_ME: &str = r#"{"email":"bare@bench.example","id":1,"identities":[{"provider":"mock","subject":"bench-000000000000000000000000"}],"username":"bare"}"#;

/// The bare reference's `/whoami`: the app behind nginx in `--nginx` mode, answering with the
/// identity header the proxy passed on, so that the benchmark sees who reached the app.
async fn whoami(headers: HeaderMap) -> String {
    match headers.get("x-auth-request-user") {
        Some(user) => format!("x-auth-request-user: {}\n", String::from_utf8_lossy(user.as_bytes())),
        None => format!("{WHOAMI_NOBODY}\n"),
    }
}

/// What `/whoami` says when no identity header came.
pub const WHOAMI_NOBODY: &str = "x-auth-request-user: (none)";
/// What it says for a user (`{username}`: as the virtual users' needles write it).
pub const WHOAMI_USER: &str = "x-auth-request-user: {username}\n";

/// The hidden `--serve-bare PORT` mode: a bare axum server answering fixed bodies, in a process
/// of its own like loginwith, on a default tokio runtime like loginwith's. It exits when its
/// standard input closes, i.e. when the benchmark that started it is gone.
pub fn serve_bare(port: u16) -> ExitCode {
    std::thread::spawn(|| {
        let mut sink = Vec::new();
        let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
        std::process::exit(0);
    });
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let app = Router::new()
            .route("/", get(|| async { Html(BARE_PAGE) }))
            .route("/api/me", get(|| async { ([(header::CONTENT_TYPE, "application/json")], BARE_ME) }))
            .route("/whoami", get(whoami))
            .route("/healthz", get(|| async { "ok\n" }));
        let listener = match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("error: the bare server cannot listen on 127.0.0.1:{port}: {e}");
                return ExitCode::FAILURE;
            }
        };
        match axum::serve(listener, app).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: the bare server stopped: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

/// nginx: `/usr/sbin/nginx` (Debian's), else the first on PATH.
pub fn nginx_binary() -> Result<PathBuf, String> {
    let usual = Path::new("/usr/sbin/nginx");
    if usual.is_file() {
        return Ok(usual.to_path_buf());
    }
    let on_path = std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|dir| dir.join("nginx")).find(|p| p.is_file()));
    on_path.ok_or_else(|| {
        "--nginx and --instances need nginx (with its auth_request module, as in Debian's nginx package): \
         it is neither /usr/sbin/nginx nor on PATH"
            .to_owned()
    })
}

/// `nginx/1.22.1`, from `nginx -v` (which writes it to stderr), or "nginx (version unknown)".
pub fn nginx_version(binary: &Path) -> String {
    let out = std::process::Command::new(binary).arg("-v").stdin(Stdio::null()).output();
    let text = out.map(|o| String::from_utf8_lossy(&o.stderr).into_owned()).unwrap_or_default();
    match text.trim().strip_prefix("nginx version: ") {
        Some(version) => version.to_owned(),
        None => "nginx (version unknown)".to_owned(),
    }
}

/// The ports nginx listens on and forwards to, in `--nginx` mode.
pub struct NginxPorts {
    /// (a): `location / { proxy_pass http://app; }`, nothing else.
    pub alone: u16,
    /// (b): the repository's deploy/nginx.conf, included unchanged.
    pub gateway: u16,
    /// `upstream loginwith`: the instance mounted at /auth.
    pub loginwith: u16,
    /// `upstream app`: the bare server.
    pub app: u16,
}

/// nginx's configuration for `--nginx`: both server blocks, in front of the bare app.
///
/// The upstreams keep connections alive (`keepalive`, as the README's example does), and (a)'s
/// location speaks HTTP/1.1 to the app as deploy/nginx.conf's do: the same upstream connections on
/// both sides, for a fair ratio.
pub fn nginx_config(dir: &Path, ports: &NginxPorts, concurrency: usize) -> String {
    let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy").join("nginx.conf");
    let servers = format!(
        "\x20 upstream loginwith {{ server 127.0.0.1:{loginwith}; keepalive {KEEPALIVE}; }}\n\
         \x20 upstream app {{ server 127.0.0.1:{app}; keepalive {KEEPALIVE}; }}\n\
         \x20 # (a) nginx -> app alone.\n\
         \x20 server {{\n    listen 127.0.0.1:{alone};\n    location / {{\n      proxy_http_version 1.1;\n      proxy_set_header Connection \"\";\n      proxy_pass http://app;\n    }}\n  }}\n\
         \x20 # (b) nginx + loginwith -> app, as deployed.\n\
         \x20 server {{\n    listen 127.0.0.1:{gateway};\n    include {deploy};\n  }}\n",
        loginwith = ports.loginwith,
        app = ports.app,
        alone = ports.alone,
        gateway = ports.gateway,
        deploy = deploy.display(),
    );
    nginx_wrap(dir, concurrency, &servers)
}

/// nginx's configuration for `--instances`: on 127.0.0.1:`port`, a load balancer in front of the
/// loginwith instances on `instances` (their ports), mounted at the root.
///
/// Round robin (nginx's default), and `proxy_next_upstream error timeout` (also the default,
/// written out because the benchmark relies on it): a request that cannot reach an instance goes to
/// the next one. Connections to the instances are kept alive as in [`nginx_config`], and the
/// headers are those of deploy/nginx.conf's `location /auth/`, so that loginwith sees the
/// browser's host and address through its `trusted_proxies`.
pub fn nginx_instances_config(dir: &Path, port: u16, instances: &[u16], concurrency: usize) -> String {
    let upstream: String =
        instances.iter().map(|p| format!("server 127.0.0.1:{p}; ")).collect::<Vec<_>>().concat();
    let servers = format!(
        "\x20 upstream loginwith {{ {upstream}keepalive {KEEPALIVE}; }}\n\
         \x20 server {{\n    listen 127.0.0.1:{port};\n    location / {{\n\
         \x20     proxy_pass http://loginwith;\n\
         \x20     proxy_next_upstream error timeout;\n\
         \x20     proxy_http_version 1.1;\n      proxy_set_header Connection \"\";\n\
         \x20     proxy_set_header Host $http_host;\n\
         \x20     proxy_set_header X-Forwarded-For $remote_addr;\n\
         \x20     proxy_set_header X-Forwarded-Proto $scheme;\n    }}\n  }}\n"
    );
    nginx_wrap(dir, concurrency, &servers)
}

/// Idle connections nginx keeps to each upstream (per worker; there is one).
const KEEPALIVE: usize = 32;

/// A whole nginx configuration around `servers` (the `upstream` and `server` blocks of the `http`
/// block): one process, its files in `dir`, no access log.
///
/// `master_process off` makes nginx one process (the same event loop as one worker): its CPU is
/// that process's, and killing it (kill_on_drop, Ctrl-C) stops it all, where a killed master would
/// leave its workers serving.
fn nginx_wrap(dir: &Path, concurrency: usize, servers: &str) -> String {
    // A client connection and up to two upstream ones (the auth subrequest, the app) per user.
    let connections = (concurrency * 4 + 64).max(1024);
    format!(
        "master_process off;\nworker_processes 1;\npid {dir}/nginx.pid;\nerror_log {dir}/nginx.log warn;\n\
         events {{ worker_connections {connections}; }}\n\
         http {{\n  access_log off;\n\
         \x20 client_body_temp_path {dir}/body;\n  proxy_temp_path {dir}/proxy;\n  fastcgi_temp_path {dir}/fastcgi;\n\
         \x20 uwsgi_temp_path {dir}/uwsgi;\n  scgi_temp_path {dir}/scgi;\n\
         {servers}}}\n",
        dir = dir.display(),
    )
}

/// Starts nginx with `config` (written to `dir`), healthy when `/healthz` answers 200 through
/// `health_port` (what is behind it is healthy and nginx passes requests on).
pub async fn start_nginx(
    binary: &Path,
    dir: &Path,
    config: &str,
    health_port: u16,
) -> Result<Server, String> {
    let conf = dir.join("nginx.conf");
    let log = dir.join("nginx.log");
    std::fs::write(&conf, config).map_err(|e| format!("cannot write {}: {e}", conf.display()))?;
    let out = std::fs::File::create(dir.join("nginx.out")).map_err(|e| e.to_string())?;
    let mut cmd = clean_command(binary, dir);
    // -e: the log from the first line on (before reading the configuration, nginx would open its
    // compiled-in /var/log/nginx/error.log).
    cmd.arg("-p").arg(dir).arg("-c").arg(&conf).arg("-e").arg(&log).args(["-g", "daemon off;"]);
    cmd.stdin(Stdio::null()).stdout(out.try_clone().map_err(|e| e.to_string())?).stderr(out);
    spawn_until_healthy(
        cmd,
        &format!("http://127.0.0.1:{health_port}/healthz"),
        Duration::from_secs(15),
        Some(&log),
    )
    .await
}

/// nginx's log lines at `error` level or worse (`[error]`, `[crit]`, `[alert]`, `[emerg]`): the
/// count and the first few.
pub fn nginx_log_errors(path: &Path) -> (usize, Vec<String>) {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let bad: Vec<&str> = text
        .lines()
        .filter(|l| ["[error]", "[crit]", "[alert]", "[emerg]"].iter().any(|level| l.contains(level)))
        .collect();
    (bad.len(), bad.iter().take(5).map(|l| l.chars().take(300).collect()).collect())
}

/// True for 127.0.0.0/8, ::1 and localhost.
pub fn is_loopback_host(host: Option<url::Host<&str>>) -> bool {
    match host {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        // Hosts of non-special schemes (postgres://) come as text.
        Some(url::Host::Domain(d)) => {
            d.eq_ignore_ascii_case("localhost")
                || d.trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        None => false,
    }
}

/// Whether `url` names a PostgreSQL server.
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// Creates a fresh database on the PostgreSQL server of `admin_url` (loopback only); returns its
/// URL and name.
pub async fn create_postgres_db(admin_url: &str) -> Result<(String, String), String> {
    use sqlx::{Connection, Executor};
    let mut url = url::Url::parse(admin_url).map_err(|e| format!("--database: {e}"))?;
    if !is_loopback_host(url.host()) {
        return Err("--database: the benchmark only talks to 127.0.0.1 (or ::1, localhost)".into());
    }
    let name = format!("loginwith_bench_{}", crate::mock::random_token(10).to_lowercase());
    let connect = sqlx::PgConnection::connect(admin_url);
    let mut conn = tokio::time::timeout(Duration::from_secs(10), connect)
        .await
        .map_err(|_| format!("PostgreSQL at {admin_url} did not answer within 10 s"))?
        .map_err(|e| format!("cannot connect to PostgreSQL: {e}"))?;
    conn.execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .map_err(|e| format!("cannot create the database {name}: {e}"))?;
    let _ = conn.close().await;
    url.set_path(&name);
    Ok((url.to_string(), name))
}

/// Drops a database made by [`create_postgres_db`].
pub async fn drop_postgres_db(admin_url: &str, name: &str) {
    use sqlx::{Connection, Executor};
    let work = async {
        let mut conn = sqlx::PgConnection::connect(admin_url).await?;
        conn.execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str()).await?;
        conn.close().await
    };
    match tokio::time::timeout(Duration::from_secs(15), work).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => eprintln!("warning: could not drop the benchmark database {name}: {e}"),
        Err(_) => eprintln!("warning: dropping the benchmark database {name} timed out"),
    }
}

/// The CPU time so far (seconds, by process id) of the PostgreSQL server processes serving
/// database `name` (its backends in `pg_stat_activity`, the instances' listening connections
/// included), read from /proc: PostgreSQL on this machine only. Empty when it cannot tell.
pub async fn postgres_backends_cpu(admin_url: &str, name: &str) -> std::collections::HashMap<u32, f64> {
    use sqlx::Connection;
    let work = async {
        let mut conn = sqlx::PgConnection::connect(admin_url).await?;
        let pids: Vec<i32> = sqlx::query_scalar("SELECT pid FROM pg_stat_activity WHERE datname = $1")
            .bind(name)
            .fetch_all(&mut conn)
            .await?;
        let _ = conn.close().await;
        Ok::<_, sqlx::Error>(pids)
    };
    let pids = match tokio::time::timeout(Duration::from_secs(10), work).await {
        Ok(Ok(pids)) => pids,
        Ok(Err(e)) => {
            eprintln!("warning: cannot list the PostgreSQL backends of {name}: {e}");
            Vec::new()
        }
        Err(_) => {
            eprintln!("warning: listing the PostgreSQL backends of {name} timed out");
            Vec::new()
        }
    };
    pids.into_iter()
        .filter_map(|pid| {
            let pid = u32::try_from(pid).ok()?;
            Some((pid, cpu_seconds(Some(pid))?))
        })
        .collect()
}
