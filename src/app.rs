//! Putting it together: [`Loginwith`] is the library part (routes + the session layer to wrap any
//! axum router with); [`App`] is the ready server (binds, then serves `Loginwith` alone).
//!
//! `App::build` binds the listener first (port 0 in tests) because the development provider's
//! endpoints and the default public URL depend on the real address.

use crate::config::{is_loopback_url, Config};
use crate::dev_provider::DevProvider;
use crate::domain::secret::{random_token, ClientSecret, SecretKey};
use crate::limits::{self, Area, RateLimits};
use crate::oauth::http::ProviderHttp;
use crate::providers::dev::{DevEndpoints, DEV_CLIENT_ID};
use crate::providers::{Preset, Provider};
use crate::routes;
use crate::state::{public_parts, redirect_uri, AppState, Shared};
use crate::store::{Pool, Store, StoreError};
use axum::http::{header, HeaderValue};
use axum::middleware::from_fn_with_state;
use axum::Router;
use axum_messages::MessagesManagerLayer;
use sha2::{Digest, Sha512};
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use tokio::net::TcpListener;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_sessions::cookie::{Key, SameSite};
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, ExpiredDeletion};
use tower_sessions::SessionStore;
use tower_sessions::{CachingSessionStore, Expiry, SessionManagerLayer};
use tower_sessions_moka_store::MokaStore;
use tower_sessions_sqlx_store::{PostgresStore, SqliteStore};
use url::Url;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "loginwith_session";
/// Sessions end after two weeks without activity.
const SESSION_IDLE: time::Duration = time::Duration::days(14);

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
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
    /// The session table could not be created.
    #[error("cannot prepare the session table")]
    Sessions(#[source] sqlx::Error),
    /// The development provider would be reachable from a network.
    #[error(
        "the development provider believes any e-mail address typed into it, so it only runs locally: {0}. \
         Remove [providers.dev], serve on a loopback address with an http loopback public_url, or set \
         `dangerously_allow_non_loopback = true` in [providers.dev] if you really mean it"
    )]
    DevProviderExposed(String),
    /// The generated signing key could not be read or written.
    #[error("cannot read or write the secret key file {path}")]
    SecretKeyFile {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The HTTP client could not be built (TLS roots).
    #[error("cannot build the HTTP client")]
    Http(#[source] reqwest::Error),
    /// A provider's endpoints could not be derived.
    #[error("provider {0} is missing an endpoint")]
    Provider(String),
}

/// The session store, in the same database as the users, behind an in-process cache.
#[derive(Debug, Clone)]
enum Sessions {
    Sqlite(SqliteStore),
    Postgres(PostgresStore),
}

/// A session store whose `create` is a single upsert.
///
/// The sqlx stores create a session inside a transaction that first checks the new id is unused:
/// three statements where one will do, for an id of 128 random bits that cannot collide in
/// practice. Each login creates two sessions (the anonymous one at `/authorize` and the rotated
/// one at login), and on SQLite every statement is a round trip to sqlx's worker thread, so this
/// saves four per login (docs/performance.md).
#[derive(Debug, Clone)]
struct UpsertOnCreate<S>(S);

#[async_trait::async_trait]
impl<S: SessionStore> SessionStore for UpsertOnCreate<S> {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        self.0.save(record).await
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        self.0.save(record).await
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        self.0.load(id).await
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        self.0.delete(id).await
    }
}

/// Keeps sessions that only serve a login in flight no longer than the login may take.
///
/// A session that holds nothing but pending attempts and flash messages (an anonymous visitor who
/// clicked "Login with X", or who came back with a provider error) is stored with an expiry of
/// `login_timeout_secs` (plus a minute's grace) instead of the two weeks of a logged-in session: anonymous traffic leaves
/// no long-lived rows, whatever it does. Each save pushes the expiry back by the same short time;
/// logging in (which adds the user) gives the session its full life. A session that holds
/// anything else (data an embedding app keeps for its visitors) keeps the normal expiry. This
/// sits outside the cache, so the cache and the database both see the short expiry.
#[derive(Debug, Clone)]
struct AnonymousExpiry<S> {
    inner: S,
    ttl: time::Duration,
}

impl<S> AnonymousExpiry<S> {
    fn new(ttl: time::Duration, inner: S) -> Self {
        Self { inner, ttl }
    }

    /// The record to store: the same, or a copy with the short expiry.
    fn clamp<'r>(&self, record: &'r Record) -> std::borrow::Cow<'r, Record> {
        let login_only = record.data.keys().all(|k| ANONYMOUS_KEYS.contains(&k.as_str()));
        let short = time::OffsetDateTime::now_utc() + self.ttl;
        if login_only && record.expiry_date > short {
            let mut clamped = record.clone();
            clamped.expiry_date = short;
            std::borrow::Cow::Owned(clamped)
        } else {
            std::borrow::Cow::Borrowed(record)
        }
    }
}

/// How much longer than `login_timeout_secs` a session that only serves a login is kept.
const ANONYMOUS_GRACE_SECS: i64 = 60;

/// Session keys that a login in flight writes for an anonymous visitor.
const ANONYMOUS_KEYS: [&str; 2] = [crate::oauth::pending::SESSION_KEY, "axum-messages.data"];

#[async_trait::async_trait]
impl<S: SessionStore> SessionStore for AnonymousExpiry<S> {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        let short = self.clamp(record).expiry_date;
        record.expiry_date = short;
        self.inner.create(record).await
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        self.inner.save(&self.clamp(record)).await
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        self.inner.load(id).await
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        self.inner.delete(id).await
    }
}

/// How many sessions the in-process cache keeps (about 300 bytes each).
///
/// Every page view loads its session; the cache turns that database read into a memory lookup
/// (see docs/performance.md). Writes still go to the database first, so a restart loses nothing.
/// With several instances behind one database, a session ended on one instance stays usable on
/// another until that instance's copy is evicted — `[server] session_cache = false` is the
/// setting for such deployments.
const SESSION_CACHE_ENTRIES: u64 = 2_048;

/// loginwith as a library: its routes and the layer that makes sessions and [`crate::CurrentUser`]
/// work in any router.
#[derive(Debug, Clone)]
pub struct Loginwith {
    state: AppState,
    sessions: Sessions,
    key: Key,
    secure_cookies: bool,
    dev: Option<Arc<DevProvider>>,
    cache: Option<MokaStore>,
    /// `Strict-Transport-Security`, only with an https `public_url`.
    hsts: Option<HeaderValue>,
    /// How long a session without a user is kept (`login_timeout_secs`).
    anonymous_ttl: time::Duration,
}

impl Loginwith {
    /// Opens the database, prepares the providers and sessions. `local_addr` is where this process
    /// serves HTTP (the development provider's endpoints are called there).
    pub async fn new(config: &Config, local_addr: SocketAddr) -> Result<Self, StartError> {
        let public_url = config
            .server
            .public_url
            .clone()
            .or_else(|| Url::parse(&format!("http://{local_addr}")).ok())
            .ok_or_else(|| StartError::Provider("public_url".into()))?;
        let (public_base, public_origin) = public_parts(&public_url);
        // The same rule as the configuration check, here too: an embedding app may build its
        // Config by hand and serve on an address of its choosing.
        let exposed_dev =
            config.providers.iter().any(|p| p.preset == Some(Preset::Dev) && !p.dev_allows_non_loopback());
        if exposed_dev {
            if let Some(why) = crate::providers::dev::exposure(config.server.public_url.as_ref(), local_addr)
            {
                return Err(StartError::DevProviderExposed(why));
            }
        }

        let store = Store::connect_with(&config.database.url, config.server.session_cache).await?;
        let sessions = match store.pool() {
            Pool::Sqlite(pool) => {
                let s = SqliteStore::new(pool.clone());
                s.migrate().await.map_err(StartError::Sessions)?;
                Sessions::Sqlite(s)
            }
            Pool::Postgres(pool) => {
                let s = PostgresStore::new(pool.clone());
                s.migrate().await.map_err(StartError::Sessions)?;
                Sessions::Postgres(s)
            }
        };
        spawn_session_cleanup(sessions.clone());

        let key = signing_key(config)?;
        let http = ProviderHttp::new(&config.http).map_err(StartError::Http)?;

        // The development provider is called by our own server over loopback HTTP, like any provider;
        // browsers see it under the public URL, which is also its issuer.
        let loopback = format!("http://{}/dev-provider", loopback_of(local_addr));
        let dev_endpoints = DevEndpoints {
            issuer: format!("{public_base}/dev-provider"),
            discovery_url: Url::parse(&format!("{loopback}/.well-known/openid-configuration"))
                .map_err(|_| StartError::Provider("dev".into()))?,
            client_secret: ClientSecret::new(random_token(32)),
        };
        let mut providers = Vec::new();
        for pc in &config.providers {
            providers.push(
                Provider::from_config(pc, &dev_endpoints)
                    .ok_or_else(|| StartError::Provider(pc.name.to_string()))?,
            );
        }
        let dev_redirects: Vec<String> =
            providers.iter().filter(|p| p.is_dev).map(|p| redirect_uri(&public_base, &p.name)).collect();
        let dev = (!dev_redirects.is_empty()).then(|| {
            Arc::new(DevProvider::new(
                DEV_CLIENT_ID,
                dev_endpoints.client_secret.clone(),
                dev_redirects,
                dev_endpoints.issuer.clone(),
                loopback.clone(),
            ))
        });
        bind_issuers(&store, &providers).await?;
        spawn_discovery(&providers, &http);
        // A public page served over http on a non-loopback host would send the cookie in clear;
        // Secure follows the scheme of public_url.
        let secure_cookies = public_url.scheme() == "https";
        if !secure_cookies && !is_loopback_url(&public_url) {
            tracing::warn!(public_url = %public_base, "public_url is plain http on a non-loopback host: session cookies travel unencrypted");
        }

        let state = AppState::new(Shared {
            providers,
            store,
            http,
            public_url: public_base,
            public_origin,
            dev_only: config.dev_provider_by_default,
            login_ttl: config.server.login_timeout_secs,
            canonical_host: match &config.server.public_url {
                Some(_) => None,
                None => public_url.host_str().map(|h| match public_url.port() {
                    Some(port) => format!("{h}:{port}"),
                    None => h.to_owned(),
                }),
            },
            limits: RateLimits::new(&config.limits),
            trusted_proxies: config.server.trusted_proxies.clone(),
        });
        let cache = config.server.session_cache.then(|| MokaStore::new(Some(SESSION_CACHE_ENTRIES)));
        // HSTS over plain http is ignored by browsers (RFC 6797 §8.1) and would be a lie: only
        // with https, and only when not switched off.
        let hsts = (secure_cookies && config.server.hsts_max_age_secs > 0)
            .then(|| HeaderValue::from_str(&format!("max-age={}", config.server.hsts_max_age_secs)).ok())
            .flatten();
        // A minute beyond the login window, so that someone who comes back just too late is told
        // their login expired, rather than that it is unknown.
        let anonymous_ttl = time::Duration::seconds(config.server.login_timeout_secs + ANONYMOUS_GRACE_SECS);
        Ok(Self { state, sessions, key, secure_cookies, dev, cache, hsts, anonymous_ttl })
    }

    /// The shared state (store, providers).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// loginwith's own routes, without the session layer: merge them into your router, then call
    /// [`Loginwith::layer`] on the result.
    pub fn routes(&self) -> Router {
        let limited = |area: Area| from_fn_with_state((self.state.clone(), area), limits::limit);
        let mut router = Router::new()
            .merge(routes::pages::router())
            .merge(routes::login::authorize_router().route_layer(limited(Area::Authorize)))
            .merge(routes::login::callback_router().route_layer(limited(Area::Callback)))
            .merge(routes::api::router())
            .merge(routes::health::router());
        if let Some(dev) = &self.dev {
            router = router.merge(dev.clone().router().route_layer(limited(Area::DevProvider)));
        }
        router
            .layer(axum::middleware::from_fn_with_state(self.state.clone(), canonical_loopback_host))
            .with_state(self.state.clone())
    }

    /// Wraps a router with sessions, flash messages and security headers, so that
    /// [`crate::CurrentUser`] works in its handlers.
    pub fn layer(&self, router: Router) -> Router {
        let router = router.layer(MessagesManagerLayer);
        let router = match (&self.sessions, &self.cache) {
            (Sessions::Sqlite(store), Some(cache)) => router.layer(self.session_layer(AnonymousExpiry::new(
                self.anonymous_ttl,
                CachingSessionStore::new(cache.clone(), UpsertOnCreate(store.clone())),
            ))),
            (Sessions::Postgres(store), Some(cache)) => {
                router.layer(self.session_layer(AnonymousExpiry::new(
                    self.anonymous_ttl,
                    CachingSessionStore::new(cache.clone(), UpsertOnCreate(store.clone())),
                )))
            }
            (Sessions::Sqlite(store), None) => router.layer(
                self.session_layer(AnonymousExpiry::new(self.anonymous_ttl, UpsertOnCreate(store.clone()))),
            ),
            (Sessions::Postgres(store), None) => router.layer(
                self.session_layer(AnonymousExpiry::new(self.anonymous_ttl, UpsertOnCreate(store.clone()))),
            ),
        };
        security_headers(router, self.hsts.clone())
    }

    /// The whole server: routes wrapped in the layer.
    pub fn router(&self) -> Router {
        self.layer(self.routes())
    }

    fn session_layer<S: tower_sessions::SessionStore + Clone>(
        &self,
        store: S,
    ) -> SessionManagerLayer<S, tower_sessions::service::SignedCookie> {
        SessionManagerLayer::new(store)
            .with_name(SESSION_COOKIE)
            .with_http_only(true)
            // Lax, not tower-sessions' default Strict: the cookie must come back on the
            // provider's top-level redirect to /callback, which is a cross-site navigation.
            .with_same_site(SameSite::Lax)
            .with_secure(self.secure_cookies)
            .with_path("/")
            .with_expiry(Expiry::OnInactivity(SESSION_IDLE))
            .with_signed(self.key.clone())
    }
}

/// Without a configured `public_url`, the redirect URI names the bound address (`127.0.0.1:5000`).
/// A browser that opened `http://localhost:5000/` would get its session cookie for `localhost` and
/// come back from the provider to `127.0.0.1`, without it: the login would fail as "unknown
/// state". So GET requests that arrive by another *loopback* name are sent to the canonical one
/// first. Only loopback names, and only when `public_url` is unset: behind a proxy that rewrites
/// Host, redirecting to the public URL would loop.
async fn canonical_loopback_host(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let Some(canonical) = &state.canonical_host else { return next.run(request).await };
    let host = request.headers().get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or_default();
    let other_loopback_name = !host.is_empty()
        && !host.eq_ignore_ascii_case(canonical)
        && Url::parse(&format!("http://{host}/")).is_ok_and(|u| is_loopback_url(&u));
    if request.method() != axum::http::Method::GET || !other_loopback_name {
        return next.run(request).await;
    }
    let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
    let location = format!("{}{path}", state.public_url);
    (axum::http::StatusCode::TEMPORARY_REDIRECT, [(header::LOCATION, location)]).into_response()
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

fn security_headers(router: Router, hsts: Option<HeaderValue>) -> Router {
    let headers = [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'self'; img-src 'self' https:; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        // Callback URLs carry codes; no page of ours should leak its URL to another site.
        // same-origin, not no-referrer: with no-referrer Chromium sends `Origin: null` on our own
        // form posts (which the logout check then refuses).
        (header::REFERRER_POLICY, "same-origin"),
    ];
    let mut router = router;
    for (name, value) in headers {
        router = router.layer(SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value)));
    }
    if let Some(hsts) = hsts {
        router = router.layer(SetResponseHeaderLayer::overriding(header::STRICT_TRANSPORT_SECURITY, hsts));
    }
    router.layer(SetResponseHeaderLayer::if_not_present(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    ))
}

/// Binds identities recorded before issuers were stored to their provider's issuer, and says,
/// once per start, when a provider's identities were recorded under another issuer than the one
/// configured now: those identities no longer log in (a subject is only meaningful to its
/// issuer), and whoever changed the issuer should know.
async fn bind_issuers(store: &Store, providers: &[Provider]) -> Result<(), StartError> {
    for provider in providers {
        for (recorded, count) in store.bind_issuer(&provider.name, &provider.issuer_binding).await? {
            tracing::warn!(
                provider = %provider.name,
                recorded_issuer = %recorded,
                configured_issuer = %provider.issuer_binding,
                identities = count,
                "identities of this provider were recorded under another issuer: they will not log in, \
                 because a subject from one issuer is never mapped to another's users. If the new issuer \
                 really is the same account system at a new address, rebind them in the database: \
                 UPDATE identities SET issuer = '<configured>' WHERE provider = '<provider>' AND issuer = '<recorded>'"
            );
        }
    }
    Ok(())
}

/// Discovers every OpenID Connect provider in the background, so that start-up never waits on the
/// network; one that fails is retried every minute (and on demand when someone clicks its button).
fn spawn_discovery(providers: &[Provider], http: &ProviderHttp) {
    for provider in providers.iter().filter(|p| p.oidc().is_some()) {
        let provider = provider.clone();
        let http = http.clone();
        tokio::spawn(async move {
            let Some(oidc) = provider.oidc() else { return };
            let mut warned = false;
            loop {
                match oidc.ensure_discovered(&http).await {
                    Ok(_) => {
                        if warned {
                            tracing::info!(provider = %provider.name, "OpenID Connect discovery succeeded");
                        }
                        return;
                    }
                    Err(err) if !warned => {
                        tracing::warn!(provider = %provider.name, issuer = %oidc.issuer, error = %err,
                            "OpenID Connect discovery failed; the provider is unavailable until it succeeds");
                        warned = true;
                    }
                    Err(_) => {}
                }
                tokio::time::sleep(std::time::Duration::from_secs(60)).await;
            }
        });
    }
}

fn spawn_session_cleanup(sessions: Sessions) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(3600));
        loop {
            every.tick().await;
            let result = match &sessions {
                Sessions::Sqlite(s) => s.delete_expired().await,
                Sessions::Postgres(s) => s.delete_expired().await,
            };
            if let Err(err) = result {
                tracing::warn!(error = %err, "could not delete expired sessions");
            }
        }
    });
}

/// The cookie-signing key: from `secret_key`, or generated once and kept in `secret_key_file`.
fn signing_key(config: &Config) -> Result<Key, StartError> {
    let secret = match &config.server.secret_key {
        Some(secret) => secret.clone(),
        None => load_or_create_key_file(&config.server.secret_key_file)?,
    };
    // cookie's Key wants 64 bytes; SHA-512 of the configured secret gives exactly that.
    Ok(Key::from(&Sha512::digest(secret.expose().as_bytes())))
}

fn load_or_create_key_file(path: &Path) -> Result<SecretKey, StartError> {
    let err = |source| StartError::SecretKeyFile { path: path.display().to_string(), source };
    match std::fs::read_to_string(path) {
        Ok(text) if text.trim().len() >= 32 => return Ok(SecretKey::new(text.trim())),
        Ok(_) => {
            tracing::warn!(file = %path.display(), "secret key file is too short; writing a new key")
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(err(e)),
    }
    let key = random_token(48);
    write_private(path, &key).map_err(err)?;
    tracing::warn!(
        file = %path.display(),
        "no [server] secret_key configured: generated one and saved it in this file (fine for development; set secret_key in production)"
    );
    Ok(SecretKey::new(key))
}

/// Writes `text` to `path` readable by the owner only, atomically: a temporary file in the same
/// directory, created with mode 0600, synced, then renamed over `path`. A crash leaves either the
/// old file or the new one, never half a key, and a replaced file never keeps a looser mode.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let temp = dir.join(format!(".{file_name}.{}.tmp", random_token(6)));
    let result = (|| {
        let mut file = create_private(&temp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&temp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

/// Creates a new file that only its owner can read or write (on Unix; elsewhere the platform's
/// default permissions apply).
pub(crate) fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

/// The ready server.
#[derive(Debug)]
pub struct App {
    listener: TcpListener,
    local_addr: SocketAddr,
    loginwith: Loginwith,
}

impl App {
    /// Binds the configured address (port 0 picks a free one) and prepares everything.
    pub async fn build(config: Config) -> Result<Self, StartError> {
        let addr = config.server.bind;
        if let Some(why) = config
            .providers
            .iter()
            .any(|p| p.preset == Some(Preset::Dev) && !p.dev_allows_non_loopback())
            .then(|| crate::providers::dev::exposure(config.server.public_url.as_ref(), addr))
            .flatten()
        {
            // Refused before binding, so a misconfigured server never even listens.
            return Err(StartError::DevProviderExposed(why));
        }
        let listener = TcpListener::bind(addr).await.map_err(|source| StartError::Bind { addr, source })?;
        let local_addr = listener.local_addr().map_err(|source| StartError::Bind { addr, source })?;
        let loginwith = Loginwith::new(&config, local_addr).await?;
        Ok(Self { listener, local_addr, loginwith })
    }

    /// The port actually bound.
    pub fn port(&self) -> u16 {
        self.local_addr.port()
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The public base URL (no trailing slash).
    pub fn public_url(&self) -> &str {
        &self.loginwith.state().public_url
    }

    /// The library part (store, providers).
    pub fn loginwith(&self) -> &Loginwith {
        &self.loginwith
    }

    /// Serves until `shutdown` completes, then finishes the requests in flight.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        // With the peer address, for rate limits and the audit log (see `client`).
        let router = self.loginwith.router().into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(self.listener, router).with_graceful_shutdown(shutdown).await
    }
}
