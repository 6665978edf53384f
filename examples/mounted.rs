//! loginwith under `/auth` in an app with its own security headers: the app's pages carry the
//! app's Content-Security-Policy (which allows its own script), loginwith's pages carry
//! loginwith's stricter one, and neither leaks into the other.
//!
//! The app sets its CSP with a `SetResponseHeaderLayer` on its own routes, *before* merging
//! loginwith's: a layer wraps the routes a router has when the layer is added. Set over the whole
//! router with `overriding`, the app's policy would replace loginwith's stricter one on the login
//! pages, which need no script and handle codes and sessions.
//!
//! ```sh
//! cargo run --example mounted          # then open http://127.0.0.1:5003/
//! ```
//!
//! It uses the built-in development provider and a SQLite file `mounted.db` (set `DATABASE_URL` to
//! use another database, `PORT` for another port). `tests/api/examples.rs` runs this very file.

use axum::http::{header, HeaderValue};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::Router;
use loginwith::{Config, CurrentUser, Loginwith, StartError};
use tower_http::set_header::SetResponseHeaderLayer;

/// The app's own policy: its own scripts, styles and API calls, nothing from elsewhere.
pub const HOST_CSP: &str = "default-src 'self'; script-src 'self'";

/// The app's script: it asks loginwith's API who is logged in (allowed: `default-src 'self'`
/// covers `fetch` to the same origin) and says so on the page.
const APP_JS: &str = r#"fetch("/auth/api/me")
  .then((response) => (response.ok ? response.json() : null))
  .then((me) => {
    document.getElementById("status").textContent = me
      ? `Logged in as ${me.email ?? me.username}.`
      : "Not logged in.";
  });
"#;

/// The app's start page: it greets whoever is logged in, and loads the app's script.
async fn home(user: Option<CurrentUser>) -> Html<String> {
    let greeting = match user {
        Some(user) => format!(
            "<h1>Hello {}</h1><form method=\"post\" action=\"/auth/logout\"><button>Log out</button></form>",
            html_escape(&user.username)
        ),
        None => "<h1>Welcome</h1><p><a href=\"/auth/?next=/\">Log in</a></p>".to_owned(),
    };
    Html(format!("{greeting}<p id=\"status\"></p><script src=\"/app.js\"></script>"))
}

async fn app_js() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], APP_JS)
}

/// Your app with its own headers, and loginwith under `/auth` (the path of
/// `config.server.public_url`) with its own.
pub async fn app(config: Config) -> Result<Router, StartError> {
    let lw = Loginwith::builder(config).build().await?;
    let host = Router::new()
        .route("/", get(home))
        .route("/app.js", get(app_js))
        // On the app's routes only: they are the only ones the router has yet.
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(HOST_CSP),
        ));
    Ok(lw.layer(host.merge(lw.routes())))
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_env_filter("info").init();
    let port: u16 = std::env::var("PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(5003);
    let database = std::env::var("DATABASE_URL").unwrap_or_else(|_| "sqlite://mounted.db".into());
    let mut config = Config::development(&database);
    config.server.bind = ([127, 0, 0, 1], port).into();
    config.server.public_url = Some(format!("http://127.0.0.1:{port}/auth").parse()?);
    let router = app(config).await?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("open http://127.0.0.1:{port}/");
    axum::serve(listener, router.into_make_service_with_connect_info::<std::net::SocketAddr>()).await?;
    Ok(())
}
