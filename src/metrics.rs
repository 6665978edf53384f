//! Prometheus metrics: what is counted, and the recorder the server installs.
//!
//! The counting functions below are called by the audit trail ([`crate::audit`]), the callback
//! handlers, the provider HTTP client and the session cache. They go through the `metrics` facade,
//! which does nothing until a recorder is installed: the library ([`crate::Loginwith`]) never
//! installs one (that is the embedding application's choice), the server ([`crate::App`]) installs
//! the Prometheus recorder when `[server] metrics_bind` is set and serves `GET /metrics` there.
//!
//! Labels are bounded: provider names come from the configuration (an unknown one is `""`),
//! reasons, outcomes, steps, kinds and areas are our own `&'static str` codes. Nothing secret, no
//! e-mail address and no client address is ever a label.
//!
//! Cost per event: the hot path (a session load, on every request with a session cookie) uses a
//! static label set, so the facade builds its key without allocating; the login path allocates
//! one short string per provider label, next to its several provider round trips.

use crate::limits::Area;
use crate::oauth::http::Step;
use crate::store::{LoginKind, Store};
use metrics::{counter, gauge, histogram, SharedString};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Histogram buckets, in seconds: 1 ms to 10 s.
pub const BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// A provider name as a label: shared, so that each metric call clones a pointer, not the text.
pub(crate) fn provider_label(name: &str) -> SharedString {
    SharedString::from(Arc::<str>::from(name))
}

/// The process's Prometheus recorder, installed at the first call. The recorder is global:
/// several servers in one process (tests) share it. `None` when another recorder was installed
/// first by the embedding program.
pub(crate) fn install() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets(BUCKETS)
                .and_then(PrometheusBuilder::install_recorder)
                .map_err(|err| tracing::error!(error = %err, "cannot install the metrics recorder"))
                .ok()?;
            // Histogram samples wait in the recorder until drained: drain them even when nobody
            // scrapes, so that memory stays bounded.
            let upkeep = handle.clone();
            let spawned = std::thread::Builder::new().name("loginwith-metrics".into()).spawn(move || loop {
                std::thread::sleep(Duration::from_secs(5));
                upkeep.run_upkeep();
            });
            if let Err(err) = spawned {
                tracing::warn!(error = %err, "cannot start the metrics upkeep thread");
            }
            Some(handle)
        })
        .clone()
}

/// The text of `GET /metrics`, with the database pool's gauges read now.
pub(crate) fn render(handle: &PrometheusHandle, store: &Store) -> String {
    let pool = store.pool_stats();
    gauge!("loginwith_db_pool_connections", "state" => "idle").set(pool.idle as f64);
    gauge!("loginwith_db_pool_connections", "state" => "in_use")
        .set(pool.size.saturating_sub(pool.idle) as f64);
    gauge!("loginwith_db_pool_max_connections").set(f64::from(pool.max));
    handle.render()
}

/// A user logged in: `outcome` is `new`, `returning` or `linked`.
pub(crate) fn login(provider: &str, kind: LoginKind) {
    counter!("loginwith_logins_total", "provider" => provider_label(provider), "outcome" => kind.as_str())
        .increment(1);
}

/// A login (or logout) was refused; `provider` is a configured name or `""`.
pub(crate) fn refusal(provider: Option<&str>, reason: &'static str) {
    let provider = provider_label(provider.unwrap_or(""));
    counter!("loginwith_logins_total", "provider" => provider.clone(), "outcome" => "refused").increment(1);
    counter!("loginwith_login_refusals_total", "provider" => provider, "reason" => reason).increment(1);
}

/// A user logged out.
pub(crate) fn logout() {
    counter!("loginwith_logouts_total").increment(1);
}

/// A client went over a rate limit.
pub(crate) fn rate_limited(area: Area) {
    counter!("loginwith_rate_limited_total", "area" => area.as_str()).increment(1);
}

/// A callback (`/callback/NAME`, GET or form_post) was answered after `elapsed`, whatever the answer.
pub(crate) fn callback(elapsed: Duration) {
    histogram!("loginwith_callback_duration_seconds").record(elapsed.as_secs_f64());
}

/// One HTTP round trip to a provider (sent, answered and read, or failed).
pub(crate) fn provider_request(provider: &SharedString, step: Step, elapsed: Duration) {
    histogram!("loginwith_provider_request_duration_seconds", "provider" => provider.clone(), "step" => step.as_str())
        .record(elapsed.as_secs_f64());
}

/// A provider step failed; `kind` is [`crate::oauth::ProviderError::kind`].
pub(crate) fn provider_error(provider: &SharedString, step: Step, kind: &'static str) {
    counter!(
        "loginwith_provider_errors_total",
        "provider" => provider.clone(),
        "step" => step.as_str(),
        "kind" => kind
    )
    .increment(1);
}

/// A session load found the session in the in-process cache (`hit`) or went to the database.
pub(crate) fn session_cache(hit: bool) {
    if hit {
        counter!("loginwith_session_cache_total", "result" => "hit").increment(1);
    } else {
        counter!("loginwith_session_cache_total", "result" => "miss").increment(1);
    }
}
