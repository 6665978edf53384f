//! loginwith: "Login with Google / GitHub / any OAuth 2.0 provider" for web applications.
//!
//! Use it as a ready server (`loginwith serve`), or as a library nested in your own axum app:
//! build a [`Loginwith`], merge [`Loginwith::routes`] into your router, wrap the result with
//! [`Loginwith::layer`], and take [`CurrentUser`] in your handlers (see `examples/embed.rs`).
//!
//! # Layout
//! - [`config`]: TOML file + environment → a validated [`Config`], every problem reported at once.
//! - [`app`]: [`App`] (binds and serves) and [`Loginwith`] (routes + session layer).
//! - [`routes`]: HTTP handlers, one file per area (pages, login, api, health).
//! - [`oauth`]: the protocol without routing: pending attempts (state, PKCE), code exchange, the
//!   provider HTTP client with its limits.
//! - [`providers`]: presets as data, one file per provider, quirks as a closed enum.
//! - [`store`]: users and identities in SQLite or PostgreSQL.
//! - [`dev_provider`]: the built-in development OAuth server, mounted only when configured.
//! - [`domain`]: validated types, secrets that never print, and outside text cut to size.
//! - [`client`], [`limits`], [`audit`]: the client's address (trusted proxies), per-client rate
//!   limits, the audit trail.
//! - [`auth`], [`error`], [`state`], [`templates`]: who is logged in, errors → pages, shared state,
//!   compiled-in HTML.

#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod app;
pub mod audit;
pub mod auth;
pub mod client;
pub mod config;
pub mod dev_provider;
pub mod domain;
pub mod error;
pub mod hooks;
pub mod limits;
pub mod loginwith;
pub mod oauth;
pub mod providers;
pub mod routes;
pub mod sessions;
pub mod state;
pub mod store;
pub mod templates;

pub use app::{App, StartError};
pub use auth::{CurrentUser, RequireLogin};
pub use config::Config;
pub use hooks::{LoginEvent, LoginIdentity, LoginRefused};
pub use loginwith::{Loginwith, LoginwithBuilder, ProviderInfo};
pub use sessions::SESSION_COOKIE;
pub use store::{Store, User};
