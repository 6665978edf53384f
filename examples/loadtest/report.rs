//! The load benchmark's report: per-step statistics, the table, the JSON.

use crate::vu::{self, Phase};
use serde_json::{json, Value};
use std::time::Duration;

/// One scenario's measurements.
pub struct Measured {
    pub name: String,
    pub unit: &'static str,
    pub phase: Phase,
    /// CPU % (of one core) of the server under load, of the mock provider's threads, and of the
    /// rest of this process (the virtual users).
    pub server_cpu: Option<f64>,
    /// When several processes serve the scenario (nginx, loginwith, the app): each one's CPU %,
    /// under a name unique in the scenario (`loginwith 2` among several instances).
    pub server_parts: Vec<(String, Option<f64>)>,
    pub mock_cpu: Option<f64>,
    pub users_cpu: Option<f64>,
    /// The loaded server's VmHWM after the scenario.
    pub server_hwm_kib: Option<u64>,
}

impl Measured {
    pub fn ops(&self) -> u64 {
        let key =
            if self.unit == "flows" { vu::FLOW } else { self.phase.rec.steps.first().map_or("", |s| s.0) };
        self.phase.rec.steps.iter().find(|(n, _)| *n == key).map_or(0, |(_, s)| s.len() as u64)
    }
    pub fn rate(&self) -> f64 {
        self.ops() as f64 / self.phase.elapsed.as_secs_f64().max(1e-9)
    }
    /// The server's CPU time per operation, in microseconds: the cost of one request or flow,
    /// whatever limited the rate.
    pub fn server_us_per_op(&self) -> Option<f64> {
        self.us_per_op(self.server_cpu?)
    }
    /// CPU `percent` of one core during the scenario, as microseconds per operation.
    fn us_per_op(&self, percent: f64) -> Option<f64> {
        let ops = self.ops();
        (ops > 0).then_some(())?;
        Some(percent / 100.0 * self.phase.elapsed.as_secs_f64() / ops as f64 * 1e6)
    }
    /// The CPU per operation, in microseconds, of the server processes whose names start with
    /// `prefix` together (every `loginwith N` of a scenario); `None` when none matches or one of
    /// them could not be read.
    pub fn parts_us_per_op_named(&self, prefix: &str) -> Option<f64> {
        let matching: Vec<Option<f64>> =
            self.server_parts.iter().filter(|(name, _)| name.starts_with(prefix)).map(|(_, p)| *p).collect();
        (!matching.is_empty()).then_some(())?;
        self.us_per_op(matching.into_iter().sum::<Option<f64>>()?)
    }
    /// "nginx 80 µs + app 20 µs": the server's CPU per operation, process by process.
    pub fn parts_us_per_op(&self) -> String {
        let parts: Vec<String> = self
            .server_parts
            .iter()
            .map(|(name, pct)| {
                let us = pct.and_then(|p| self.us_per_op(p));
                format!("{name} {}", us.map_or_else(|| "-".into(), |us| format!("{us:.0} µs")))
            })
            .collect();
        parts.join(" + ")
    }

    /// This scenario's figures, as in the JSON report's `scenarios`.
    pub fn json(&self) -> Value {
        let m = self;
        let steps: Vec<Value> = m
            .phase
            .rec
            .steps
            .iter()
            .map(|(name, samples)| {
                let mut v = Stats::of(samples).map_or_else(|| json!({"count": 0}), |s| s.json());
                v["step"] = json!(name);
                v["per_s"] = json!(samples.len() as f64 / m.phase.elapsed.as_secs_f64().max(1e-9));
                v
            })
            .collect();
        json!({
            "name": m.name, "unit": m.unit, "elapsed_s": m.phase.elapsed.as_secs_f64(),
            "ops": m.ops(), "ops_per_s": m.rate(), "steps": steps,
            "errors": m.phase.rec.errors, "error_examples": m.phase.rec.examples,
            "server_cpu_percent": m.server_cpu, "mock_cpu_percent": m.mock_cpu,
            "server_cpu_us_per_op": m.server_us_per_op(),
            "server_processes_cpu_percent": m.server_parts.iter()
                .map(|(n, p)| (n.to_string(), json!(p))).collect::<serde_json::Map<_, _>>(),
            "virtual_users_cpu_percent": m.users_cpu,
            "server_vmhwm_kib_after": m.server_hwm_kib,
            "new_user_flows": m.phase.rec.new_users, "returning_user_flows": m.phase.rec.returning_users,
        })
    }
    pub fn step_p99_ms(&self, step: &str) -> Option<f64> {
        self.step_stats(step).map(|s| s.p99)
    }
    /// The latency statistics of one step, when it passed at least once.
    pub fn step_stats(&self, step: &str) -> Option<Stats> {
        let (_, samples) = self.phase.rec.steps.iter().find(|(n, _)| *n == step)?;
        Stats::of(samples)
    }
}

/// Latency statistics of one step, in milliseconds.
pub struct Stats {
    pub count: usize,
    pub mean: f64,
    pub p50: f64,
    p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl Stats {
    pub fn of(samples: &[u32]) -> Option<Stats> {
        if samples.is_empty() {
            return None;
        }
        let mut v = samples.to_vec();
        v.sort_unstable();
        let ms = |us: u32| f64::from(us) / 1000.0;
        // Nearest rank.
        let pick = |q: f64| ms(v[((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1]);
        let sum: u64 = v.iter().map(|&x| u64::from(x)).sum();
        Some(Stats {
            count: v.len(),
            mean: sum as f64 / v.len() as f64 / 1000.0,
            p50: pick(0.50),
            p90: pick(0.90),
            p99: pick(0.99),
            max: ms(v[v.len() - 1]),
        })
    }
    pub fn json(&self) -> Value {
        let r = |x: f64| (x * 1000.0).round() / 1000.0;
        json!({"count": self.count, "mean_ms": r(self.mean), "p50_ms": r(self.p50), "p90_ms": r(self.p90),
               "p99_ms": r(self.p99), "max_ms": r(self.max)})
    }
}

/// Everything the report shows.
pub struct Report<'a> {
    pub results: &'a [Measured],
    pub loginwith_start: Option<Duration>,
    pub loginwith_hwm: Option<u64>,
    pub bare_start: Duration,
    pub bare_hwm: Option<u64>,
    pub token_service: Option<Stats>,
    pub counters: Vec<(&'static str, u64)>,
    pub errors: &'a [(String, u64, String)],
    pub log_warns: usize,
    pub log_first: &'a [String],
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or_else(|| "n/a".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0))
}

fn pct(p: Option<f64>) -> String {
    p.map_or_else(|| "-".into(), |p| format!("{p:.0}%"))
}

impl Report<'_> {
    pub fn find(&self, name: &str) -> Option<&Measured> {
        self.results.iter().find(|m| m.name == name)
    }

    /// (name, value) of the ratios against the bare server.
    pub fn ratios(&self) -> Vec<(&'static str, Option<f64>)> {
        let ratio = |a: &str, b: &str| Some(self.find(a)?.rate() / self.find(b)?.rate().max(1e-9));
        vec![
            ("api_me_rps_vs_bare", ratio("reads /api/me", "bare /api/me")),
            ("page_rps_vs_bare", ratio("reads /", "bare /")),
            ("login_flows_per_s_vs_bare_page_rps", ratio("login", "bare /")),
            // The issue-9 target (≥ 0.4): the check against the bare fixed-body handler closest to
            // it in size (a short JSON body; the check's answer is four headers and no body).
            ("gateway_check_rps_vs_bare", ratio("gateway check", "bare /api/me")),
            ("nginx_with_loginwith_rps_vs_nginx_alone", ratio("nginx+loginwith", "nginx alone")),
        ]
    }

    pub fn print(&self) {
        print_steps(self.results);
        if let Some(s) = &self.token_service {
            println!(
                "{:<16} {:<12} {:>8} {:>9} {:>8.2} {:>8.2} {:>8.2} {:>8.2}   (mock token endpoint's own time, inside callback)",
                "mock provider", "token", s.count, "", s.p50, s.p90, s.p99, s.max
            );
        }
        println!();
        if let Some(login) = self.find("login") {
            println!(
                "login flows: {} with a fresh address, {} with a returning one",
                login.phase.rec.new_users, login.phase.rec.returning_users
            );
        }
        let start = self
            .loginwith_start
            .map_or_else(|| "n/a (--target)".into(), |d| format!("{:.1} ms", d.as_secs_f64() * 1000.0));
        println!("loginwith: start-to-healthy {start}, peak RSS (VmHWM) {}", mib(self.loginwith_hwm));
        println!(
            "bare:      start-to-healthy {:.1} ms, peak RSS (VmHWM) {}",
            self.bare_start.as_secs_f64() * 1000.0,
            mib(self.bare_hwm)
        );
        let hwm: Vec<String> = self
            .results
            .iter()
            .filter(|m| !m.name.starts_with("bare") && !m.name.starts_with("nginx"))
            .map(|m| format!("{} {}", m.name, mib(m.server_hwm_kib)))
            .collect();
        if !hwm.is_empty() {
            println!("loginwith VmHWM after each scenario: {}", hwm.join(", "));
        }
        let ratios: Vec<String> =
            self.ratios().iter().filter_map(|(n, v)| v.map(|v| format!("{n} {v:.3}"))).collect();
        let callback = self.find("login").and_then(|m| m.step_p99_ms(vu::CALLBACK));
        let server_side = self.find("login").and_then(|m| m.step_p99_ms(vu::CALLBACK_SERVER));
        println!(
            "vs bare (same run): {}{}{}",
            if ratios.is_empty() { "n/a".to_owned() } else { ratios.join(", ") },
            callback.map_or_else(String::new, |p| format!("; callback p99 {p:.2} ms")),
            server_side
                .map_or_else(String::new, |p| format!(" (server side, provider time excluded: {p:.2} ms)"))
        );
        let per_op = |name: &str| self.find(name).and_then(Measured::server_us_per_op);
        let cost: Vec<String> = [
            ("GET /api/me", "reads /api/me", "bare /api/me"),
            ("GET /", "reads /", "bare /"),
            ("gateway check", "gateway check", "bare /api/me"),
        ]
        .iter()
        .filter_map(|(label, a, b)| Some(format!("{label} {:.1}×", per_op(a)? / per_op(b)?.max(1e-9))))
        .collect();
        if !cost.is_empty() {
            println!("server CPU per request vs bare: {}", cost.join(", "));
        }
        self.print_nginx();
        let counts: Vec<String> = self.counters.iter().map(|(n, c)| format!("{n} {c}")).collect();
        println!("mock provider requests: {}", counts.join(", "));
        println!(
            "CPU: time used / wall time, 100% = one core: srv = the loaded server process, mock = the \
             mock provider's threads, VUs = the virtual users (the rest of this process); srv µs/op = \
             the server's CPU time per request or flow"
        );
        if self.log_warns > 0 {
            println!("loginwith logged {} warning line(s), e.g.:", self.log_warns);
            for line in self.log_first.iter().take(3) {
                println!("    {line}");
            }
        }
        print_errors(self.errors);
    }

    /// The `--nginx` comparison, when it ran: both rates, the ratio, and the CPU per request of
    /// the processes behind each (nginx + app; nginx + loginwith + app).
    fn print_nginx(&self) {
        let (Some(alone), Some(gated)) = (self.find("nginx alone"), self.find("nginx+loginwith")) else {
            return;
        };
        let us = |m: &Measured| m.server_us_per_op().map_or_else(|| "-".into(), |us| format!("{us:.0} µs"));
        println!(
            "through nginx (same run): alone {:.0} req/s, with loginwith's check {:.0} req/s: {:.3}×; \
             server-side CPU per request {} ({}) vs {} ({})",
            alone.rate(),
            gated.rate(),
            gated.rate() / alone.rate().max(1e-9),
            us(alone),
            alone.parts_us_per_op(),
            us(gated),
            gated.parts_us_per_op()
        );
    }

    pub fn json(&self) -> Value {
        let scenarios: Vec<Value> = self.results.iter().map(Measured::json).collect();
        let ratios: serde_json::Map<String, Value> =
            self.ratios().into_iter().map(|(n, v)| (n.to_owned(), json!(v))).collect();
        let callback = self.find("login").and_then(|m| m.step_p99_ms(vu::CALLBACK));
        let server_side = self.find("login").and_then(|m| m.step_p99_ms(vu::CALLBACK_SERVER));
        json!({
            "scenarios": scenarios,
            "loginwith": {
                "start_to_healthy_ms": self.loginwith_start.map(|d| d.as_secs_f64() * 1000.0),
                "peak_rss_kib": self.loginwith_hwm,
                "log_warning_lines": self.log_warns,
            },
            "bare": {"start_to_healthy_ms": self.bare_start.as_secs_f64() * 1000.0, "peak_rss_kib": self.bare_hwm},
            "ratios": ratios,
            "callback_p99_ms": callback,
            "callback_server_side_p99_ms": server_side,
            "mock_provider": {
                "requests": self.counters.iter().map(|(n, c)| (n.to_string(), json!(c))).collect::<serde_json::Map<_, _>>(),
                "token_service": self.token_service.as_ref().map(Stats::json),
            },
            "errors": crate::errors_json(self.errors),
            "errors_total": self.errors.iter().map(|e| e.1).sum::<u64>(),
        })
    }
}

/// The per-step table: rate, latencies, errors and the CPU of each party, one row per step.
pub fn print_steps<'a>(results: impl IntoIterator<Item = &'a Measured>) {
    println!();
    println!(
        "{:<16} {:<12} {:>8} {:>9} {:>8} {:>8} {:>8} {:>8} {:>6} {:>8} {:>8} {:>8} {:>9}",
        "scenario",
        "step",
        "count",
        "per s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms",
        "errors",
        "srv CPU",
        "mock CPU",
        "VUs CPU",
        "srv µs/op"
    );
    for m in results {
        let mut first = true;
        for (step, samples) in &m.phase.rec.steps {
            let rate = samples.len() as f64 / m.phase.elapsed.as_secs_f64().max(1e-9);
            let errors: u64 = m
                .phase
                .rec
                .errors
                .iter()
                .filter(|(k, _)| k.starts_with(&format!("{step}:")))
                .map(|(_, n)| n)
                .sum();
            let cols = match Stats::of(samples) {
                Some(s) => format!("{:>8.2} {:>8.2} {:>8.2} {:>8.2}", s.p50, s.p90, s.p99, s.max),
                None => format!("{:>8} {:>8} {:>8} {:>8}", "-", "-", "-", "-"),
            };
            let (name, cpu) = if first {
                let cpu = [m.server_cpu, m.mock_cpu, m.users_cpu].map(|c| format!("{:>8}", pct(c)));
                let per_op = m.server_us_per_op().map_or_else(|| "-".into(), |us| format!("{us:.0}"));
                (m.name.as_str(), format!("{} {per_op:>9}", cpu.join(" ")))
            } else {
                ("", String::new())
            };
            println!("{name:<16} {step:<12} {:>8} {rate:>9.1} {cols} {errors:>6} {cpu}", samples.len());
            first = false;
        }
        let other: u64 = m
            .phase
            .rec
            .errors
            .iter()
            .filter(|(k, _)| !m.phase.rec.steps.iter().any(|(s, _)| k.starts_with(&format!("{s}:"))))
            .map(|(_, n)| n)
            .sum();
        if other > 0 {
            println!("{:<16} {:<12} {:>8} {:>9} {:>35} {other:>6}", "", "(setup)", "", "", "");
        }
    }
}

/// The errors of the run, by kind with an example, or "errors: none".
pub fn print_errors(errors: &[(String, u64, String)]) {
    if errors.is_empty() {
        println!("errors: none");
    } else {
        println!("ERRORS: {} in all", errors.iter().map(|e| e.1).sum::<u64>());
        for (kind, n, example) in errors {
            println!("  {n:>7} × {kind}");
            if !example.is_empty() {
                println!("            e.g. {example}");
            }
        }
    }
}
