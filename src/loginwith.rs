//! loginwith as a library: [`Loginwith`] holds everything a login needs (providers, the user
//! store, sessions) and hands out its routes, mounted under the path of `public_url`, and the
//! layer that makes sessions and [`crate::CurrentUser`] work in the host's own routes.
//!
//! The split between the two is the contract with the host: [`Loginwith::routes`] are loginwith's
//! own pages, with their strict headers (a CSP of `default-src 'none'`, no framing, no caching);
//! [`Loginwith::layer`] adds sessions and flash messages and nothing else, so the host's pages keep
//! their own scripts, styles, headers and caching.

use crate::config::{is_loopback_url, Config};
use crate::dev_provider::DevProvider;
use crate::domain::secret::{random_token, ClientSecret};
use crate::domain::ReturnTo;
use crate::hooks::{LoginEvent, LoginHook, LoginRefused};
use crate::limits::{self, Area, RateLimits};
use crate::oauth::http::ProviderHttp;
use crate::providers::dev::{DevEndpoints, DEV_CLIENT_ID};
use crate::providers::Provider;
use crate::sessions::{self, Sessions};
use crate::state::{public_parts, redirect_uri, AppState, Shared};
use crate::store::Store;
use crate::{routes, StartError};
use axum::http::{header, HeaderValue};
use axum::middleware::from_fn_with_state;
use axum::{Extension, Router};
use axum_messages::MessagesManagerLayer;
use std::future::Future;
use std::sync::Arc;
use tower_sessions::cookie::Key;
use url::Url;

/// loginwith as a library: its routes, and the layer that makes sessions and
/// [`crate::CurrentUser`] work in any router. Cheap to clone.
///
/// ```no_run
/// use axum::{routing::get, Router};
/// use loginwith::{Config, CurrentUser, Loginwith, RequireLogin};
///
/// async fn private(RequireLogin(user): RequireLogin) -> String {
///     format!("hello {}", user.username)
/// }
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let mut config = Config::development("sqlite://app.db");
/// config.server.public_url = Some("http://127.0.0.1:3000/auth".parse()?);
/// let lw = Loginwith::builder(config).build().await?;
/// let app = lw.layer(Router::new().route("/private", get(private)).merge(lw.routes()));
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
/// axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>()).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Loginwith {
    state: AppState,
    sessions: Sessions,
    key: Key,
    secure_cookies: bool,
    dev: Option<Arc<DevProvider>>,
    /// `[server] cookie_domain`.
    cookie_domain: Option<String>,
}

/// Builds a [`Loginwith`]: [`Loginwith::builder`], optionally [`LoginwithBuilder::on_login`], then
/// [`LoginwithBuilder::build`].
#[derive(Debug)]
#[must_use = "call .build().await to get a Loginwith"]
pub struct LoginwithBuilder {
    config: Config,
    hook: Option<LoginHook>,
    canonical_host: Option<String>,
}

/// A configured provider, for drawing one's own "Login with X" buttons.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct ProviderInfo {
    /// The configured name (`google`, `github`, ...).
    pub name: String,
    /// What the button says after "Login with".
    pub display_name: String,
    /// Where the button goes: `{public path}/authorize/NAME`.
    pub login_url: String,
    /// False while an OpenID Connect provider cannot be discovered (its button should say so).
    pub available: bool,
}

impl ProviderInfo {
    /// The login URL with `?next=` set, so that the browser comes back to `next` after the login;
    /// a `next` that is not a same-origin path is left out.
    pub fn login_url_with_next(&self, next: &str) -> String {
        match ReturnTo::parse(next) {
            Some(next) => with_next(&self.login_url, &next),
            None => self.login_url.clone(),
        }
    }
}

/// `url` with `next=` appended to its query.
pub(crate) fn with_next(url: &str, next: &ReturnTo) -> String {
    let encoded: String = url::form_urlencoded::byte_serialize(next.as_str().as_bytes()).collect();
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}next={encoded}")
}

impl Loginwith {
    /// Starts building from a configuration (see [`Config`]). Nothing is opened until
    /// [`LoginwithBuilder::build`].
    pub fn builder(config: Config) -> LoginwithBuilder {
        LoginwithBuilder { config, hook: None, canonical_host: None }
    }

    /// loginwith's own routes under its path (the path of `public_url`; `/` when it has none):
    /// the start page, `authorize/NAME`, `callback/NAME`, `logout`, `api/me`, `healthz`, its
    /// stylesheet and, when configured, the development provider. They carry loginwith's strict
    /// headers; nothing outside the path is served. Merge them into your router, then wrap the
    /// result with [`Loginwith::layer`].
    pub fn routes(&self) -> Router {
        let limited = |area: Area| from_fn_with_state((self.state.clone(), area), limits::limit);
        let base = self.state.base_path.as_str();
        let mut router = Router::new()
            .merge(routes::pages::router(base))
            .merge(routes::login::authorize_router(base).route_layer(limited(Area::Authorize)))
            .merge(routes::login::callback_router(base).route_layer(limited(Area::Callback)))
            .merge(routes::api::router(base, &self.state.api))
            .merge(routes::account::router(base))
            .merge(routes::health::router(base));
        if self.state.gateway.enabled {
            router = router.merge(routes::gateway::router(base));
        }
        if let Some(dev) = &self.dev {
            // Its paths are `/dev-provider/...`; nested, they (and its rate limit's view of
            // them) sit under ours.
            let dev_router = dev.clone().router().route_layer(limited(Area::DevProvider));
            router = match base {
                "" => router.merge(dev_router),
                base => router.nest(base, dev_router),
            };
        }
        router.layer(from_fn_with_state(self.state.clone(), every_request)).with_state(self.state.clone())
    }

    /// Wraps `router` (your routes, merged with [`Loginwith::routes`]) with sessions and flash
    /// messages, so that [`crate::CurrentUser`] and [`crate::RequireLogin`] work in its handlers.
    /// It adds no headers to your routes. The session cookie's path is `/`, so that your pages
    /// outside loginwith's path see who is logged in.
    pub fn layer(&self, router: Router) -> Router {
        self.with_sessions(router, "/")
    }

    /// loginwith alone: [`Loginwith::routes`] with sessions whose cookie is limited to
    /// loginwith's path (what the `loginwith` server serves).
    pub fn router(&self) -> Router {
        // Behind the gateway, the browser must send the cookie with every request to the
        // protected hosts (the proxy passes it on to `check`): the whole site, not our path.
        let path = match self.state.base_path.as_str() {
            _ if self.state.gateway.enabled => "/",
            "" => "/",
            base => base,
        };
        // Around the whole router once: a Router's own `layer` wraps every route in a boxed
        // service per layer, each cloned on every request (measured with callgrind: about 15k
        // instructions per request for the session layers alone).
        let service = tower::ServiceBuilder::new()
            .layer(sessions::layer(
                self.sessions.clone(),
                self.key.clone(),
                self.secure_cookies,
                path,
                self.cookie_domain.as_deref(),
            ))
            .layer(MessagesManagerLayer)
            .service(self.routes());
        // One look at the path, in front of everything, decides two things. The probes answer
        // before the session layers: a probe that carries a cookie (or a browser that opens
        // /healthz) must not depend on the session store, which is what /readyz reports on, and
        // a probe has no use for a session. And a session that could not be loaded or saved
        // (the layers' bare 500) becomes a 503 — JSON under `{base}/api/`, the page elsewhere.
        // A service of its own ([`Dispatch`]) rather than middleware: a `from_fn` layer cost
        // about 2.6k instructions per request (callgrind, docs/performance.md).
        let base = self.state.base_path.as_str();
        let probes = routes::health::router(base)
            .layer(from_fn_with_state(self.state.clone(), every_request))
            .with_state(self.state.clone());
        let paths = Arc::new(DispatchPaths {
            probes: [format!("{base}/healthz"), format!("{base}/readyz")],
            api: format!("{base}/api/"),
        });
        let dispatch = Dispatch { probes, service, paths };
        Router::new().fallback_service(dispatch)
    }

    fn with_sessions(&self, router: Router, cookie_path: &str) -> Router {
        router
            .layer(MessagesManagerLayer)
            .layer(sessions::layer(
                self.sessions.clone(),
                self.key.clone(),
                self.secure_cookies,
                cookie_path,
                self.cookie_domain.as_deref(),
            ))
            .layer(Extension(crate::auth::Mount::new(&self.state.base_path)))
    }

    /// The configured providers, in button order, with their login URLs.
    pub fn providers(&self) -> Vec<ProviderInfo> {
        self.state
            .providers
            .iter()
            .map(|p| ProviderInfo {
                name: p.name.to_string(),
                display_name: p.display_name.clone(),
                login_url: format!("{}/authorize/{}", self.state.base_path, p.name),
                available: !p.is_unavailable(),
            })
            .collect()
    }

    /// The path loginwith's routes live under (`""` for the root, else e.g. `/auth`).
    pub fn base_path(&self) -> &str {
        &self.state.base_path
    }

    /// The public base URL (`public_url` without a trailing slash).
    pub fn public_url(&self) -> &str {
        &self.state.public_url
    }

    /// The user database, for looking up the full [`crate::User`] of a [`crate::CurrentUser`].
    pub fn store(&self) -> &Store {
        &self.state.store
    }
}

impl LoginwithBuilder {
    /// Runs `hook` at every login, after loginwith has decided who this is and before the browser
    /// is logged in; returning [`LoginRefused`] refuses the login, writes nothing and shows its
    /// message. See [`LoginEvent`] for what the hook sees, and what a refusal undoes.
    ///
    /// ```no_run
    /// use loginwith::{Config, LoginEvent, LoginRefused, Loginwith};
    /// # async fn run() -> Result<(), loginwith::StartError> {
    /// let lw = Loginwith::builder(Config::development("sqlite://app.db"))
    ///     .on_login(|event: LoginEvent| async move {
    ///         if event.identity.email.as_deref().is_some_and(|e| e.ends_with("@blocked.example")) {
    ///             return Err(LoginRefused::new("This address may not log in here."));
    ///         }
    ///         Ok(())
    ///     })
    ///     .build()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn on_login<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(LoginEvent) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), LoginRefused>> + Send + 'static,
    {
        self.hook = Some(LoginHook::new(hook));
        self
    }

    /// When `public_url` was derived from the bound address (not configured), browsers that
    /// arrive by another loopback name are first sent to this `host:port` (see
    /// `canonical_loopback_host`).
    pub(crate) fn canonical_host(mut self, host: Option<String>) -> Self {
        self.canonical_host = host;
        self
    }

    /// Opens the database (and migrates it), prepares the providers and the sessions. Discovery
    /// of OpenID Connect providers starts in the background.
    pub async fn build(self) -> Result<Loginwith, StartError> {
        let config = &self.config;
        let public_url = match &config.server.public_url {
            Some(url) => url.clone(),
            None => default_public_url(config)?,
        };
        let (public_base, public_origin) = public_parts(&public_url);
        let base_path = base_path_of(&public_url);
        check_dev_provider(config, &public_url)?;

        let store = Store::connect_with(&config.database.url, config.server.session_cache).await?;
        // Caches per process and one SQLite file do not mix: one server per file, unless the
        // caches are off.
        let sqlite_claim = match config.server.session_cache {
            true => store.claim_sqlite_file().await?.map(Arc::new),
            false => None,
        };
        sessions::SqlSessions::new(store.clone()).spawn_cleanup(std::time::Duration::from_secs(300));
        let key = sessions::signing_key(config.server.secret_key.as_ref(), &config.server.secret_key_file)?;
        let http = ProviderHttp::new(&config.http).map_err(StartError::Http)?;

        // The development provider is called by our own server like any provider: browsers see it
        // under the public URL (its issuer); the server calls it there too when that is a
        // loopback http address (anything else is refused above unless forced), else on the
        // loopback side of the bind address.
        let dev_issuer = format!("{public_base}/dev-provider");
        let dev_calls = dev_call_base(&public_url, &base_path, config.server.bind);
        let dev_endpoints = DevEndpoints {
            issuer: dev_issuer.clone(),
            discovery_url: Url::parse(&format!("{dev_calls}/.well-known/openid-configuration"))
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
                dev_issuer.clone(),
                dev_calls.clone(),
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
        // HSTS over plain http is ignored by browsers (RFC 6797 §8.1) and would be a lie: only
        // with https, and only when not switched off.
        let hsts = (secure_cookies && config.server.hsts_max_age_secs > 0)
            .then(|| HeaderValue::from_str(&format!("max-age={}", config.server.hsts_max_age_secs)).ok())
            .flatten();

        let durable = match &config.sessions.url {
            Some(url) => sessions::Durable::Redis(
                sessions::redis::RedisSessions::connect(url, &config.sessions.key_prefix).await?,
            ),
            None => sessions::Durable::Sql(sessions::SqlSessions::new(store.clone())),
        };
        let cache = config.server.session_cache.then(|| cache_for(&store, &durable));
        let sessions = sessions::stack(durable, cache, config.server.login_timeout_secs);
        let state = AppState::new(Shared {
            providers,
            store,
            http,
            public_url: public_base,
            public_origin,
            base_path,
            dev_only: config.dev_provider_by_default,
            login_ttl: config.server.login_timeout_secs,
            canonical_host: self.canonical_host,
            limits: RateLimits::new(&config.limits),
            trusted_proxies: config.server.trusted_proxies.clone(),
            hsts,
            after_login: config.server.after_login.clone(),
            after_logout: config.server.after_logout.clone(),
            access: config.access.clone(),
            gateway: config.gateway.clone(),
            api: config.api.clone(),
            hook: self.hook,
            sessions: sessions.clone(),
            _sqlite_claim: sqlite_claim,
        });
        let cookie_domain = config.server.cookie_domain.clone();
        Ok(Loginwith { state, sessions, key, secure_cookies, dev, cookie_domain })
    }
}

/// The session cache: with sessions in SQLite trusted from the start (one instance per file);
/// else trusted only while this instance hears the others' changes: PostgreSQL's
/// (`sessions::coherence`, which also keeps the account cache), or Redis's.
fn cache_for(store: &Store, durable: &sessions::Durable) -> sessions::SessionCache {
    let in_redis = matches!(durable, sessions::Durable::Redis(_));
    let cache =
        sessions::SessionCache::new(!in_redis && matches!(store.pool(), crate::store::Pool::Sqlite(_)));
    if let crate::store::Pool::Postgres(pool) = store.pool() {
        store.reset_account_cache(false);
        let sessions_heard = (!in_redis).then(|| cache.clone());
        sessions::coherence::spawn(pool.clone(), sessions_heard, store.clone());
    }
    if let sessions::Durable::Redis(redis) = durable {
        redis.spawn_listener(cache.clone());
    }
    cache
}

/// Without `public_url`: `http://` + the bind address, which must then name a real port.
fn default_public_url(config: &Config) -> Result<Url, StartError> {
    let bind = config.server.bind;
    if bind.port() == 0 || bind.ip().is_unspecified() {
        return Err(StartError::PublicUrlNeeded(bind));
    }
    Url::parse(&format!("http://{bind}")).map_err(|_| StartError::PublicUrlNeeded(bind))
}

/// Where this server calls its own development provider: at the public URL when that is
/// loopback http, else at the loopback side of the bind address (a forced, non-loopback
/// `public_url` may not lead back here).
fn dev_call_base(public_url: &Url, base_path: &str, bind: std::net::SocketAddr) -> String {
    let public = public_url.as_str().trim_end_matches('/');
    if public_url.scheme() == "http" && is_loopback_url(public_url) || bind.port() == 0 {
        return format!("{public}/dev-provider");
    }
    let ip = match bind.ip() {
        std::net::IpAddr::V4(v4) if v4.is_unspecified() => std::net::IpAddr::from([127, 0, 0, 1]),
        std::net::IpAddr::V6(v6) if v6.is_unspecified() => {
            std::net::IpAddr::from(std::net::Ipv6Addr::LOCALHOST)
        }
        ip => ip,
    };
    format!("http://{}{base_path}/dev-provider", std::net::SocketAddr::new(ip, bind.port()))
}

/// The path of `public_url` without a trailing slash: `""` or e.g. `/auth`.
fn base_path_of(url: &Url) -> String {
    url.path().trim_end_matches('/').to_owned()
}

/// The configuration check again, here too: an embedding app may build its `Config` by hand.
fn check_dev_provider(config: &Config, public_url: &Url) -> Result<(), StartError> {
    let exposed = config.providers.iter().any(|p| p.is_dev() && !p.dev_allows_non_loopback());
    if !exposed {
        return Ok(());
    }
    match crate::providers::dev::exposure(Some(public_url), config.server.bind) {
        Some(why) => Err(StartError::DevProviderExposed(why)),
        None => Ok(()),
    }
}

/// The one middleware around each of loginwith's requests (one, because every layer of a Router
/// is a boxed service per route, cloned on each request): sends browsers that came by another
/// loopback name to the canonical one, makes the base path known to the page templates, and
/// gives the answer loginwith's security headers.
async fn every_request(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let mut response = match canonical_loopback_host(&state, &request) {
        Some(redirect) => redirect,
        None => crate::templates::with_base_path(state.base_path.clone(), next.run(request)).await,
    };
    security_headers(response.headers_mut(), state.hsts.as_ref());
    response
}

/// The paths [`Dispatch`] looks at.
#[derive(Debug)]
struct DispatchPaths {
    /// `{base}/healthz`, `{base}/readyz`.
    probes: [String; 2],
    /// `{base}/api/`.
    api: String,
}

/// The server's front: the probes straight to their routes, everything else through the session
/// layers, whose bare 500 for a session that could not be loaded or saved becomes a 503
/// ([`crate::error::session_failure_is_unavailable`]). Both inner services are axum's, always
/// ready; each request calls the clone that axum's fallback made for it, with no clone more.
#[derive(Clone)]
struct Dispatch<S> {
    probes: Router,
    service: S,
    paths: Arc<DispatchPaths>,
}

impl<S> tower::Service<axum::extract::Request> for Dispatch<S>
where
    S: tower::Service<axum::extract::Request, Error = std::convert::Infallible>,
    S::Response: axum::response::IntoResponse,
    S::Future: Send + 'static,
{
    type Response = axum::response::Response;
    type Error = std::convert::Infallible;
    type Future = std::pin::Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        match self.service.poll_ready(cx) {
            std::task::Poll::Ready(Ok(())) => {
                tower::Service::<axum::extract::Request>::poll_ready(&mut self.probes, cx)
            }
            other => other,
        }
    }

    fn call(&mut self, request: axum::extract::Request) -> Self::Future {
        use axum::response::IntoResponse;
        let path = request.uri().path();
        if self.paths.probes.iter().any(|probe| probe == path) {
            return Box::pin(tower::Service::call(&mut self.probes, request));
        }
        let api = path.starts_with(self.paths.api.as_str());
        let response = self.service.call(request);
        Box::pin(async move {
            let response = response.await?;
            Ok(crate::error::session_failure_is_unavailable(response.into_response(), api))
        })
    }
}

/// Without a configured `public_url`, the redirect URI names the bound address (`127.0.0.1:5000`).
/// A browser that opened `http://localhost:5000/` would get its session cookie for `localhost` and
/// come back from the provider to `127.0.0.1`, without it: the login would fail as "unknown
/// state". So GET requests that arrive by another *loopback* name are sent to the canonical one
/// first. Only loopback names, and only when `public_url` is unset: behind a proxy that rewrites
/// Host, redirecting to the public URL would loop.
fn canonical_loopback_host(
    state: &AppState,
    request: &axum::extract::Request,
) -> Option<axum::response::Response> {
    use axum::response::IntoResponse;
    let canonical = state.canonical_host.as_ref()?;
    let host = request.headers().get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or_default();
    let other_loopback_name = !host.is_empty()
        && !host.eq_ignore_ascii_case(canonical)
        && Url::parse(&format!("http://{host}/")).is_ok_and(|u| is_loopback_url(&u));
    if request.method() != axum::http::Method::GET || !other_loopback_name {
        return None;
    }
    let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
    let location = format!("{}{path}", state.public_origin);
    Some((axum::http::StatusCode::TEMPORARY_REDIRECT, [(header::LOCATION, location)]).into_response())
}

/// loginwith's own pages: nothing but our stylesheet, no framing, no caching, no referrer to other
/// sites (callback URLs carry codes). Set only where not set already, so a page that needs more
/// (the form_post re-post page's script) says so itself.
fn security_headers(headers: &mut axum::http::HeaderMap, hsts: Option<&HeaderValue>) {
    const STRICT: [(header::HeaderName, &str); 5] = [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'self'; img-src 'self' https:; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        // same-origin, not no-referrer: with no-referrer Chromium sends `Origin: null` on our own
        // form posts (which the logout check then refuses).
        (header::REFERRER_POLICY, "same-origin"),
        (header::CACHE_CONTROL, "no-store"),
    ];
    for (name, value) in STRICT {
        headers.entry(name).or_insert(HeaderValue::from_static(value));
    }
    if let Some(hsts) = hsts {
        headers.insert(header::STRICT_TRANSPORT_SECURITY, hsts.clone());
    }
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
/// network; one that fails is retried after 1 s, 2 s, 4 s... then every minute (and on demand when
/// someone clicks its button): a provider that starts a moment later (the development provider
/// reached through a proxy started after loginwith) is soon there.
fn spawn_discovery(providers: &[Provider], http: &ProviderHttp) {
    for provider in providers.iter().filter(|p| p.oidc().is_some()) {
        let provider = provider.clone();
        let http = http.for_provider(provider.name.as_str());
        tokio::spawn(async move {
            let Some(oidc) = provider.oidc() else { return };
            let mut warned = false;
            let mut pause = std::time::Duration::from_secs(1);
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
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(std::time::Duration::from_secs(60));
            }
        });
    }
}
