//! `--instances N`: the login scenario behind nginx, against one loginwith, then against N, then
//! against one again, in the same run, to show what several instances cost per login. The N side
//! is compared with the mean of the two single-instance sides around it, so that a machine that
//! gets busier or quieter during the run (and whatever the order itself costs) weighs on both
//! sides alike: measured 1 against 1, the second side of two came out 17 % dearer on this busy
//! machine (docs/performance.md).
//!
//! Each side gets the same setup, one after the other: a **fresh PostgreSQL database** (so that
//! both start from an empty user table, and the second side's returning users are not the first
//! side's; it also lets the report tell each side's PostgreSQL backends apart), its instances
//! started one by one on 127.0.0.1 ports, all with the same `secret_key` (a cookie signed by one
//! must be read by the others) and the same `public_url` (nginx's address: the provider sends
//! browsers back there, whichever instance began the login), the session cache on (the default;
//! the instances keep each other's caches coherent through PostgreSQL's `LISTEN/NOTIFY`; off on
//! both sides with `--no-session-cache`), and one
//! nginx in front (`upstream` with the N instances, round robin, `proxy_next_upstream error
//! timeout`, keep-alive; see `procs::nginx_instances_config`). A probe login through nginx checks
//! the path, an unmeasured warm-up (a fifth of `--duration`, 0.5 to 3 s, its errors counted) lets
//! every instance open its database connections, then the virtual users run full login flows (authorize → provider → callback → start
//! page → logout, as the plain login scenario) through nginx for `--duration`. Then the side's
//! processes are stopped, so that the idle instances of one side never take CPU from the other
//! (each instance hears every other's `NOTIFY`).
//!
//! The report gives per side flows/s, errors, the flow's p50/p99, and the **server CPU per flow**:
//! the CPU time of every loginwith process of the side plus nginx's, divided by the flows
//! completed; also loginwith's alone, nginx's alone, and the side's PostgreSQL backends' (those of
//! its database, listening connections included; PostgreSQL's shared background processes are not
//! counted). Then the ratio (N side) / (1 side) of the CPU per flow. On a machine with few cores
//! N instances cannot be faster than one; the point is that the CPU per flow does not grow. Any
//! error of either side (a failed step, an instance or nginx logging an error, an instance ending)
//! fails the run.

use crate::report::Measured;
use crate::vu::{self, Site};
use crate::{mock, procs, MadeDbs};
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

/// What both sides share.
pub struct Bench<'a> {
    pub nginx: &'a Path,
    pub loginwith: &'a Path,
    /// Where each side's files go (`side-1/`, `side-N/`).
    pub dir: &'a Path,
    /// The PostgreSQL server on which each side's database is made.
    pub admin_url: &'a str,
    pub made_dbs: &'a MadeDbs,
    pub provider_toml: &'a str,
    /// `[sessions] url` for every instance, when given.
    pub sessions: Option<&'a str>,
    /// `[server] session_cache` (on by default; off with `--no-session-cache`).
    pub session_cache: bool,
    /// The provider's name and the mock's issuer (its base is replaced by nginx's address).
    pub site: &'a Site,
    pub run_id: &'a str,
}

/// One side's measurement.
pub struct Side {
    pub instances: usize,
    /// Which of the three sides (0: one instance first, 1: N instances, 2: one instance again).
    pub position: usize,
    pub measured: Measured,
    /// CPU time of the side database's PostgreSQL backends per flow, in microseconds.
    pub postgres_us_per_flow: Option<f64>,
}

/// A problem found after a side: (kind, count, example), as the run's error list has them.
pub type Problem = (String, u64, String);

impl Side {
    fn label(&self) -> String {
        match self.position {
            0 => format!("{}, before", label(self.instances)),
            2 => format!("{}, after", label(self.instances)),
            _ => label(self.instances),
        }
    }

    fn stat(&self, pick: fn(&crate::report::Stats) -> f64) -> Option<f64> {
        self.measured.step_stats(vu::FLOW).map(|s| pick(&s))
    }

    fn json(&self) -> Value {
        let m = &self.measured;
        json!({
            "instances": self.instances,
            "position": self.position,
            "flows": m.ops(),
            "flows_per_s": m.rate(),
            "errors": m.phase.rec.error_count(),
            "flow_p50_ms": self.stat(|s| s.p50),
            "flow_p99_ms": self.stat(|s| s.p99),
            "server_cpu_us_per_flow": m.server_us_per_op(),
            "loginwith_cpu_us_per_flow": m.parts_us_per_op_named("loginwith"),
            "nginx_cpu_us_per_flow": m.parts_us_per_op_named("nginx"),
            "postgres_backends_cpu_us_per_flow": self.postgres_us_per_flow,
        })
    }
}

impl Bench<'_> {
    /// The three sides, 1, then `n`, then 1 instance. Returns them and the problems their servers
    /// logged.
    pub async fn run(
        &self,
        n: usize,
        concurrency: usize,
        duration: Duration,
    ) -> Result<(Vec<Side>, Vec<Problem>), String> {
        let mut sides = Vec::new();
        let mut problems = Vec::new();
        for (position, count) in [1, n, 1].into_iter().enumerate() {
            let (side, found) = self.side(position, count, concurrency, duration).await?;
            sides.push(side);
            problems.extend(found);
        }
        Ok((sides, problems))
    }

    /// One side: a fresh database, `count` instances, nginx, the probe, the scenario; then its
    /// processes are stopped and their logs read.
    async fn side(
        &self,
        position: usize,
        count: usize,
        concurrency: usize,
        duration: Duration,
    ) -> Result<(Side, Vec<Problem>), String> {
        let db_url = crate::fresh_database(self.admin_url, self.made_dbs).await?;
        let db_name = url::Url::parse(&db_url)
            .map(|u| u.path().trim_start_matches('/').to_owned())
            .map_err(|e| format!("the benchmark database's URL: {e}"))?;
        let dir = self.dir.join(format!("side-{position}-{count}"));
        let nginx_dir = dir.join("nginx");
        std::fs::create_dir_all(&nginx_dir)
            .map_err(|e| format!("cannot create {}: {e}", nginx_dir.display()))?;
        let nginx_port = procs::free_port()?;
        // Every instance signs and reads the same cookies, and sends browsers back to nginx.
        let public_url = format!("http://127.0.0.1:{nginx_port}");
        let secret_key = mock::random_token(48);
        let sessions = match self.sessions {
            // A JSON string is a valid TOML basic string (the same escapes).
            // A key prefix per side: each side's database numbers its users from 1 again, and
            // their lists of sessions must not meet in the shared Redis.
            Some(url) => format!(
                "\n[sessions]\nurl = {}\nkey_prefix = \"loginwith-bench:{}:\"\n",
                serde_json::Value::from(url),
                mock::random_token(9)
            ),
            None => String::new(),
        };

        let cache = if self.session_cache { "" } else { "session_cache = false\n" };
        let mut instances = Vec::new();
        for i in 1..=count {
            let port = procs::free_port()?;
            let config = crate::loginwith_toml(
                port,
                Some(&public_url),
                &db_url,
                self.provider_toml,
                &secret_key,
                cache,
            ) + &sessions;
            eprintln!("starting loginwith {i} of {count} on 127.0.0.1:{port} (database {db_name})...");
            let health = format!("http://127.0.0.1:{port}/healthz");
            let name = format!("loginwith-{i}");
            let (server, log) = crate::start_loginwith(self.loginwith, &dir, &name, &config, &health).await?;
            instances.push((port, server, log));
        }
        let ports: Vec<u16> = instances.iter().map(|(port, _, _)| *port).collect();
        let config = procs::nginx_instances_config(&nginx_dir, nginx_port, &ports, concurrency);
        eprintln!("starting nginx on 127.0.0.1:{nginx_port} in front of {count} instance(s)...");
        let nginx = procs::start_nginx(self.nginx, &nginx_dir, &config, nginx_port).await?;
        eprintln!(
            "nginx healthy in {:.1} ms (pid {})",
            nginx.start_to_healthy.as_secs_f64() * 1000.0,
            nginx.pid
        );

        let site = Site { base: public_url, ..self.site.clone() };
        if let Some(why) = crate::probe_login(&site, true, self.run_id).await? {
            return Err(format!("a login through nginx cannot run: {why}"));
        }
        // Warm-up, unmeasured but checked: every instance opens the database connections the load
        // needs before the measurement, so that neither side's figures include its start-up (three
        // instances open three pools). Its own addresses, so that the measured run's fresh users
        // are fresh.
        let warm = (duration / 5).clamp(Duration::from_millis(500), Duration::from_secs(3));
        eprintln!("warm-up through nginx, {}: {:.1} s...", label(count), warm.as_secs_f64());
        let warm_up = vu::login_scenario(&site, concurrency, warm, &format!("{}w", self.run_id)).await?;
        let rec = &warm_up.rec;
        let mut problems: Vec<Problem> = rec
            .errors
            .iter()
            .map(|(kind, n)| {
                let example = rec.examples.get(kind).cloned().unwrap_or_default();
                (format!("warm-up ({}): {kind}", label(count)), *n, example)
            })
            .collect();
        let mut servers: Vec<(String, u32)> = instances
            .iter()
            .enumerate()
            .map(|(i, (_, s, _))| (format!("loginwith {}", i + 1), s.pid))
            .collect();
        servers.push(("nginx".to_owned(), nginx.pid));
        let label = label(count);
        eprintln!("scenario login through nginx, {label}: {:.1} s...", duration.as_secs_f64());
        let postgres_before = procs::postgres_backends_cpu(self.admin_url, &db_name).await;
        let scenario = vu::login_scenario(&site, concurrency, duration, self.run_id);
        let measured = crate::measure(&format!("login ×{count}"), "flows", &servers, scenario).await?;
        let postgres_after = procs::postgres_backends_cpu(self.admin_url, &db_name).await;
        // Backends that started during the run count from zero; one that ended is missed (sqlx
        // keeps its connections for minutes when idle, so none should).
        let postgres_seconds: f64 = postgres_after
            .iter()
            .map(|(pid, after)| (after - postgres_before.get(pid).copied().unwrap_or(0.0)).max(0.0))
            .sum();
        let postgres_us_per_flow = (!postgres_after.is_empty() && measured.ops() > 0)
            .then(|| postgres_seconds / measured.ops() as f64 * 1e6);

        for (i, (_, server, log)) in instances.into_iter().enumerate() {
            let name = format!("loginwith {} of {count}", i + 1);
            problems.extend(crate::server_problems(&name, server, &log).await);
        }
        let nginx_name = format!("nginx ({label})");
        problems.extend(crate::server_problems(&nginx_name, nginx, &nginx_dir.join("nginx.log")).await);
        Ok((Side { instances: count, position, measured, postgres_us_per_flow }, problems))
    }
}

/// "1 instance", "3 instances".
fn label(count: usize) -> String {
    match count {
        1 => "1 instance".to_owned(),
        n => format!("{n} instances"),
    }
}

/// (N side) / (mean of the single-instance sides before and after it) of a per-flow figure.
fn ratio(sides: &[Side], pick: impl Fn(&Side) -> Option<f64>) -> Option<f64> {
    let [before, many, after] = sides else { return None };
    let single = (pick(before)? + pick(after)?) / 2.0;
    Some(pick(many)? / single.max(1e-9))
}

fn server_us(s: &Side) -> Option<f64> {
    s.measured.server_us_per_op()
}

fn loginwith_us(s: &Side) -> Option<f64> {
    s.measured.parts_us_per_op_named("loginwith")
}

/// The comparison table, after the per-step table.
pub fn print(sides: &[Side], concurrency: usize, duration: Duration, session_cache: bool) {
    let us = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.0}"));
    let ms = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.1}"));
    println!();
    println!(
        "login flows through nginx, {concurrency} virtual users, {:.1} s per side, session cache {} \
         (CPU per flow in µs; server = every loginwith + nginx):",
        duration.as_secs_f64(),
        if session_cache { "on" } else { "off" },
    );
    println!(
        "{:<22} {:>8} {:>7} {:>8} {:>8} {:>8} {:>10} {:>8} {:>11}",
        "side", "flows/s", "errors", "p50 ms", "p99 ms", "server", "loginwith", "nginx", "PostgreSQL"
    );
    for side in sides {
        let m = &side.measured;
        println!(
            "{:<22} {:>8.1} {:>7} {:>8} {:>8} {:>8} {:>10} {:>8} {:>11}",
            side.label(),
            m.rate(),
            m.phase.rec.error_count(),
            ms(side.stat(|s| s.p50)),
            ms(side.stat(|s| s.p99)),
            us(server_us(side)),
            us(loginwith_us(side)),
            us(m.parts_us_per_op_named("nginx")),
            us(side.postgres_us_per_flow),
        );
    }
    for side in sides {
        println!("  {}: {}", side.label(), side.measured.parts_us_per_op());
    }
    if let [_, many, _] = sides {
        let r = |v: Option<f64>| v.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.3}"));
        println!(
            "CPU per flow, {} / the mean of 1 instance before and after: server {}, loginwith alone {} \
             (flows/s {}); PostgreSQL's backends (of each side's database) are not in the server's figure",
            many.label(),
            r(ratio(sides, server_us)),
            r(ratio(sides, loginwith_us)),
            r(ratio(sides, |s| Some(s.measured.rate()))),
        );
    }
}

/// The comparison as JSON (beside the scenarios' own figures).
pub fn json(sides: &[Side]) -> Value {
    json!({
        "sides": sides.iter().map(Side::json).collect::<Vec<_>>(),
        "ratio_server_cpu_per_flow": ratio(sides, server_us),
        "ratio_loginwith_cpu_per_flow": ratio(sides, loginwith_us),
        "ratio_flows_per_s": ratio(sides, |s| Some(s.measured.rate())),
    })
}
