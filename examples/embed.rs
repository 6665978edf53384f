//! loginwith inside your own axum app: your own start page at `/`, a private page that sends a
//! visitor to log in and back, and loginwith's pages under `/auth`.
//!
//! ```sh
//! cargo run --example embed            # then open http://127.0.0.1:5001/private
//! ```
//!
//! It uses the built-in development provider and a SQLite file `embed.db` (set `DATABASE_URL` to
//! use another database, `PORT` for another port). `tests/api/examples.rs` runs this very file.

use axum::response::Html;
use axum::routing::get;
use axum::Router;
use loginwith::{Config, CurrentUser, Loginwith, RequireLogin, StartError};

/// Your own start page: it knows who is logged in, or offers to log in and come back here.
async fn home(user: Option<CurrentUser>) -> Html<String> {
    Html(match user {
        Some(user) => format!(
            "<h1>Hello {}</h1><p><a href=\"/private\">Your private page</a></p>\
             <form method=\"post\" action=\"/auth/logout\"><button>Log out</button></form>",
            html_escape(&user.username)
        ),
        None => "<h1>Welcome</h1><p><a href=\"/auth/?next=/\">Log in</a> or open \
                 <a href=\"/private\">a private page</a>.</p>"
            .to_owned(),
    })
}

/// Only for logged-in users: a browser that is not logged in is sent to log in, then back here.
async fn private(RequireLogin(user): RequireLogin) -> String {
    // Some providers (X) give no address: the username is always there.
    let address = user.email.as_deref().unwrap_or("no address");
    format!("Hello {} ({address}), this page is yours only.\n", user.username)
}

/// Your app with loginwith in it. `config.server.public_url` ends in `/auth`: every loginwith
/// page, link and callback lives under that path.
pub async fn app(config: Config) -> Result<Router, StartError> {
    let lw = Loginwith::builder(config).build().await?;
    let routes = Router::new().route("/", get(home)).route("/private", get(private)).merge(lw.routes());
    Ok(lw.layer(routes))
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_env_filter("info").init();
    let port: u16 = std::env::var("PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(5001);
    let database = std::env::var("DATABASE_URL").unwrap_or_else(|_| "sqlite://embed.db".into());
    let mut config = Config::development(&database);
    config.server.bind = ([127, 0, 0, 1], port).into();
    config.server.public_url = Some(format!("http://127.0.0.1:{port}/auth").parse()?);
    let router = app(config).await?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("open http://127.0.0.1:{port}/private");
    // With the peer address, so that rate limits and the audit log know who the client is.
    axum::serve(listener, router.into_make_service_with_connect_info::<std::net::SocketAddr>()).await?;
    Ok(())
}
