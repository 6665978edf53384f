//! loginwith: "Login with Google / GitHub / any OpenID Connect provider" for web applications.
//!
//! Use it as a ready server (`loginwith serve`, see [`App`]), or as a library inside your own
//! axum app: build a [`Loginwith`] from a [`Config`], merge [`Loginwith::routes`] into your router,
//! wrap the result with [`Loginwith::layer`], and take [`CurrentUser`] or [`RequireLogin`] in your
//! handlers.
//!
//! ```no_run
//! use axum::{routing::get, Router};
//! use loginwith::{Config, Loginwith, RequireLogin};
//!
//! async fn private(RequireLogin(user): RequireLogin) -> String {
//!     format!("hello {}", user.username)
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let mut config = Config::development("sqlite://app.db");
//! // loginwith's pages, callbacks and cookie path live under /auth.
//! config.server.public_url = Some("http://127.0.0.1:3000/auth".parse()?);
//! let lw = Loginwith::builder(config).build().await?;
//! let app = lw.layer(Router::new().route("/private", get(private)).merge(lw.routes()));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>()).await?;
//! # Ok(()) }
//! ```
//!
//! # Public API
//! - [`Loginwith`], [`LoginwithBuilder`]: the library (routes, session layer, provider list, store).
//! - [`App`]: the ready server; [`check`]: what `loginwith check` prints.
//! - [`CurrentUser`], [`RequireLogin`]: who is logged in, in your handlers.
//! - [`LoginEvent`], [`LoginIdentity`], [`LoginRefused`]: your hook at each login.
//! - [`config`]: [`Config`] and its sections, from TOML and the environment or built in code.
//! - [`Store`], [`User`], [`Identity`], [`UserSession`], [`UserId`]: the users, identities and
//!   sessions database.
//!
//! # Layout (private modules)
//! - `config`: TOML file + environment → a validated [`Config`], every problem reported at once.
//! - `app`, `loginwith`, `sessions`: the server, the library, the session store (each logged-in
//!   session's row names its user) and cookie.
//! - `account`: what a user does to their own account (sessions, deletion), behind the account
//!   page and the JSON API alike.
//! - `routes`: HTTP handlers, one file per area (pages, login, account, api, gateway, health).
//! - `oauth`: the protocol without routing: pending attempts (state, PKCE), code exchange, the
//!   provider HTTP client with its limits, client authentication by signed JWT (RFC 7523) and
//!   the JWTs we sign.
//! - `providers`: presets as data, one file per provider, quirks as closed enums; OpenID Connect
//!   discovery, keys and ID token checks in `providers/oidc/`.
//! - `store`: users, identities and sessions in SQLite or PostgreSQL, the account cache.
//! - `dev_provider`: the built-in development OpenID Connect provider, mounted only when configured.
//! - `domain`: validated types (names, addresses, issuers, return paths) and secrets that never print.
//! - `client`, `limits`, `audit`: the client's address (trusted proxies), per-client rate limits,
//!   the audit trail.
//! - `auth`, `hooks`, `error`, `state`, `templates`: who is logged in, the host's hook, errors →
//!   pages, shared state, compiled-in HTML.

#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod account;
mod app;
mod audit;
mod auth;
mod check;
mod client;
pub mod config;
mod dev_provider;
mod domain;
mod error;
mod hooks;
mod limits;
mod loginwith;
mod metrics;
mod oauth;
mod providers;
mod routes;
mod sessions;
mod state;
mod store;
mod templates;

pub use app::{App, StartError};
pub use auth::{CurrentUser, LoginRequired, RequireLogin};
pub use check::{check, CheckReport};
pub use config::Config;
pub use domain::{ReturnTo, UserId};
pub use error::error_chain;
pub use hooks::{HookFuture, LoginEvent, LoginIdentity, LoginRefused};
pub use loginwith::{Loginwith, LoginwithBuilder, ProviderInfo};
pub use sessions::{redis::RedisError, KeyFileError, SESSION_COOKIE};
pub use store::{Account, Identity, PoolStats, Store, StoreError, Unlinked, User, UserSession};
