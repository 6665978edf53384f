//! The ready server: [`App`] binds the configured address, builds a [`Loginwith`] on it and
//! serves loginwith alone. The binary (`loginwith serve`) is this and nothing more.
//!
//! `App::build` binds the listener first (port 0 in tests) because, without a configured
//! `public_url`, the public URL and the development provider's endpoints depend on the real port.
//!
//! With `[server] metrics_bind`, the server also binds that address, installs the process's
//! Prometheus recorder ([`crate::metrics`]) and serves `GET /metrics` there, and nothing else; the
//! main listener never serves it.

use crate::config::Config;
use crate::loginwith::Loginwith;
use crate::store::{Store, StoreError};
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use std::future::Future;
use std::future::IntoFuture;
use std::net::SocketAddr;
use tokio::net::TcpListener;
use url::Url;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The listener could not bind.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The database could not be opened or migrated.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// `[sessions] url` names a Redis that does not answer.
    #[error(transparent)]
    SessionStore(#[from] crate::sessions::redis::RedisError),
    /// The development provider would be reachable from a network.
    #[error(
        "the development provider believes any e-mail address typed into it, so it only runs locally: {0}. \
         Remove [providers.dev], serve on a loopback address with an http loopback public_url, or set \
         `dangerously_allow_non_loopback = true` in [providers.dev] if you really mean it"
    )]
    DevProviderExposed(String),
    /// The generated signing key could not be read or written.
    #[error(transparent)]
    SecretKeyFile(#[from] crate::sessions::KeyFileError),
    /// The HTTP client could not be built (TLS roots).
    #[error("cannot build the HTTP client")]
    Http(#[source] reqwest::Error),
    /// A provider's endpoints could not be derived.
    #[error("provider {0} is missing an endpoint")]
    Provider(String),
    /// `metrics_bind` is set but the process already has another metrics recorder.
    #[error("cannot serve metrics: this process already has another metrics recorder")]
    MetricsRecorder,
    /// Neither `public_url` nor a usable bind address says where loginwith is reached.
    #[error(
        "set [server] public_url: the bind address {0} does not say where browsers reach loginwith \
         (port 0 or all interfaces)"
    )]
    PublicUrlNeeded(SocketAddr),
}

/// The ready server: what `loginwith serve` runs.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let config = loginwith::Config::from_toml("[server]\nbind = \"127.0.0.1:5000\"\n")?;
/// let app = loginwith::App::build(config).await?;
/// println!("open {}/", app.public_url());
/// app.run_until(async { let _ = tokio::signal::ctrl_c().await; }).await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct App {
    listener: TcpListener,
    local_addr: SocketAddr,
    loginwith: Loginwith,
    /// `[server] shutdown_grace_secs`.
    grace: std::time::Duration,
    metrics: Option<MetricsListener>,
}

/// The second listener, for `GET /metrics` only.
struct MetricsListener {
    listener: TcpListener,
    local_addr: SocketAddr,
    handle: PrometheusHandle,
}

impl std::fmt::Debug for MetricsListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsListener").field("local_addr", &self.local_addr).finish_non_exhaustive()
    }
}

impl App {
    /// Binds the configured address (port 0 picks a free one) and prepares everything.
    pub async fn build(mut config: Config) -> Result<Self, StartError> {
        let addr = config.server.bind;
        if let Some(why) = config
            .providers
            .iter()
            .any(|p| p.is_dev() && !p.dev_allows_non_loopback())
            .then(|| crate::providers::dev::exposure(config.server.public_url.as_ref(), addr))
            .flatten()
        {
            // Refused before binding, so a misconfigured server never even listens.
            return Err(StartError::DevProviderExposed(why));
        }
        let listener = TcpListener::bind(addr).await.map_err(|source| StartError::Bind { addr, source })?;
        let local_addr = listener.local_addr().map_err(|source| StartError::Bind { addr, source })?;
        let metrics = match config.server.metrics_bind {
            None => None,
            Some(addr) => {
                let listener =
                    TcpListener::bind(addr).await.map_err(|source| StartError::Bind { addr, source })?;
                let local_addr = listener.local_addr().map_err(|source| StartError::Bind { addr, source })?;
                let handle = crate::metrics::install().ok_or(StartError::MetricsRecorder)?;
                Some(MetricsListener { listener, local_addr, handle })
            }
        };
        // Without a public_url, browsers (and the development provider's callers) reach us at
        // the address we listen on; browsers that use another loopback name for it are sent to
        // this one, which the cookies belong to.
        let mut canonical_host = None;
        config.server.bind = local_addr;
        if config.server.public_url.is_none() {
            let reachable = loopback_of(local_addr);
            config.server.public_url = Url::parse(&format!("http://{reachable}")).ok();
            canonical_host = Some(reachable.to_string());
        }
        let grace = std::time::Duration::from_secs(config.server.shutdown_grace_secs);
        let loginwith = Loginwith::builder(config).canonical_host(canonical_host).build().await?;
        Ok(Self { listener, local_addr, loginwith, grace, metrics })
    }

    /// The port actually bound.
    pub fn port(&self) -> u16 {
        self.local_addr.port()
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The address serving `GET /metrics`, when `metrics_bind` is set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(|m| m.local_addr)
    }

    /// The public base URL (no trailing slash).
    pub fn public_url(&self) -> &str {
        self.loginwith.public_url()
    }

    /// The library part (store, providers).
    pub fn loginwith(&self) -> &Loginwith {
        &self.loginwith
    }

    /// Serves until `shutdown` completes, then finishes the requests in flight (on both
    /// listeners, when `metrics_bind` is set).
    ///
    /// Once `shutdown` completes, no connection is accepted any more, idle ones are closed, and
    /// requests in flight may finish for up to `[server] shutdown_grace_secs`; then this returns
    /// (`Ok` either way: a stop that ran out of grace is still a stop that was asked for).
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        // With the peer address, for rate limits and the audit log (see `client`).
        let router = self.loginwith.router().into_make_service_with_connect_info::<SocketAddr>();
        let (stop, stopped) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop.send(true);
        });
        let until = |mut stopped: tokio::sync::watch::Receiver<bool>| async move {
            // An error means the sender is gone without sending: the shutdown future was
            // dropped, so there is nothing to wait for.
            if stopped.wait_for(|stop| *stop).await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        let main = axum::serve(self.listener, router).with_graceful_shutdown(until(stopped.clone()));
        let side_stopped = stopped.clone();
        let serving = async move {
            match self.metrics {
                None => main.await,
                Some(metrics) => {
                    let store = self.loginwith.store().clone();
                    let metrics_router = Router::new()
                        .route("/metrics", get(serve_metrics))
                        .with_state((metrics.handle, store));
                    let side = axum::serve(metrics.listener, metrics_router)
                        .with_graceful_shutdown(until(side_stopped));
                    tokio::try_join!(main.into_future(), side.into_future()).map(|_| ())
                }
            }
        };
        let grace = self.grace;
        let out_of_grace = async move {
            until(stopped).await;
            tokio::time::sleep(grace).await;
        };
        tokio::select! {
            result = serving => result,
            () = out_of_grace => {
                tracing::warn!(grace_secs = grace.as_secs(), "requests still in flight after shutdown_grace_secs: stopping anyway");
                Ok(())
            }
        }
    }
}

/// `GET /metrics`: the Prometheus text exposition format.
async fn serve_metrics(State((handle, store)): State<(PrometheusHandle, Store)>) -> impl IntoResponse {
    let body = crate::metrics::render(&handle, &store);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body)
}

/// The loopback address to call ourselves on (a server bound to `0.0.0.0` answers on 127.0.0.1).
fn loopback_of(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V4(a) if a.ip().is_unspecified() => SocketAddr::from(([127, 0, 0, 1], a.port())),
        SocketAddr::V6(a) if a.ip().is_unspecified() => {
            SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, a.port()))
        }
        other => other,
    }
}
