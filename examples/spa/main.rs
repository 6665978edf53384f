//! A single-page app on loginwith's JSON API: one static HTML page, a small script and a
//! stylesheet, no framework and no build step. The script asks `/auth/api/me` who is logged in;
//! when nobody is, it lists the providers from `/auth/api/providers?next=/` as links that log in
//! by redirect and come back to the page; when someone is, it shows their address, username and
//! identities, and a button that logs out with `POST /auth/api/logout`.
//!
//! loginwith is mounted under `/auth` on the page's own origin, so the browser sends the session
//! cookie by itself and no CORS is needed. The page's routes carry the app's own
//! Content-Security-Policy ([`HOST_CSP`]: its own files only, no inline script or style);
//! loginwith's pages keep loginwith's stricter one (see `examples/mounted.rs`).
//!
//! ```sh
//! cargo run --example spa              # then open http://127.0.0.1:5004/
//! ```
//!
//! It uses the built-in development provider and a SQLite file `spa.db` (set `DATABASE_URL` to use
//! another database, `PORT` for another port). `tests/api/examples.rs` runs this very file, and
//! `tests/api/browser.rs` clicks through it in headless Chromium (`tests/browser/spa.mjs`).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use loginwith::{Config, Loginwith, StartError};
use tower_http::set_header::SetResponseHeaderLayer;

/// The app's policy: scripts, styles and `fetch` to its own origin only; no inline script, no
/// `<base>`, not framed.
pub const HOST_CSP: &str = "default-src 'self'; base-uri 'none'; frame-ancestors 'none'";

/// The page, its script and its stylesheet, built into the binary.
pub const INDEX_HTML: &str = include_str!("index.html");
pub const APP_JS: &str = include_str!("app.js");
pub const APP_CSS: &str = include_str!("app.css");

async fn index() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], INDEX_HTML)
}

async fn app_js() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], APP_JS)
}

async fn app_css() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], APP_CSS)
}

/// No icon: without an answer here, every browser that opens the page logs a 404 on the console.
async fn favicon() -> StatusCode {
    StatusCode::NO_CONTENT
}

/// The page at `/` and loginwith under `/auth` (the path of `config.server.public_url`).
pub async fn app(config: Config) -> Result<Router, StartError> {
    let lw = Loginwith::builder(config).build().await?;
    let page = Router::new()
        .route("/", get(index))
        .route("/app.js", get(app_js))
        .route("/app.css", get(app_css))
        .route("/favicon.ico", get(favicon))
        // On the page's routes only (the only ones the router has yet): loginwith's pages keep
        // their own headers.
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(HOST_CSP),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ));
    Ok(lw.layer(page.merge(lw.routes())))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_env_filter("info").init();
    let port: u16 = std::env::var("PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(5004);
    let database = std::env::var("DATABASE_URL").unwrap_or_else(|_| "sqlite://spa.db".into());
    let mut config = Config::development(&database);
    config.server.bind = ([127, 0, 0, 1], port).into();
    config.server.public_url = Some(format!("http://127.0.0.1:{port}/auth").parse()?);
    let router = app(config).await?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("open http://127.0.0.1:{port}/");
    // With the peer address, so that rate limits and the audit log know who the client is.
    axum::serve(listener, router.into_make_service_with_connect_info::<std::net::SocketAddr>()).await?;
    Ok(())
}
