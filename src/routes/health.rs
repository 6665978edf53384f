//! Probes for process supervisors and load balancers:
//!
//! - `GET {base}/healthz`: the process is alive and answering (200, always). A liveness probe:
//!   restarting loginwith would not bring a database back, so it does not look at the database.
//! - `GET {base}/readyz`: this instance can serve logins now: 200 when the database answers (it
//!   holds users and sessions) and, with `[sessions] url`, Redis answers; else 503 with what is
//!   missing. A readiness probe: a load
//!   balancer sends no traffic to an instance that says 503.

use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;

/// `/healthz`, `/readyz`
pub fn router(base: &str) -> Router<AppState> {
    Router::new()
        .route(&format!("{base}/healthz"), get(healthz))
        .route(&format!("{base}/readyz"), get(readyz))
}

async fn healthz() -> (StatusCode, &'static str) {
    (StatusCode::OK, "ok\n")
}

async fn readyz(State(state): State<AppState>) -> (StatusCode, &'static str) {
    let (database, sessions) = tokio::join!(state.store.ping(), state.sessions.backend().ready());
    match (database, sessions) {
        (true, true) => (StatusCode::OK, "ready\n"),
        (false, _) => (StatusCode::SERVICE_UNAVAILABLE, "not ready: the database does not answer\n"),
        (true, false) => {
            (StatusCode::SERVICE_UNAVAILABLE, "not ready: the session store (Redis) does not answer\n")
        }
    }
}
