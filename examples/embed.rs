//! loginwith nested in your own axum app: its routes beside yours, one session layer over both, and
//! a protected page that takes the `CurrentUser` extractor.
//!
//! `cargo run --example embed`, then open http://127.0.0.1:5001/private (you are sent to log in
//! first) — it uses the development provider and a SQLite file `embed.db`.

use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use loginwith::{Config, CurrentUser, Loginwith};

async fn private(user: Option<CurrentUser>) -> Response {
    match user {
        Some(user) => {
            format!("Hello {} ({}), this page is yours only.\n", user.username, user.email).into_response()
        }
        None => Redirect::to("/").into_response(),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_env_filter("info").init();
    let mut config = Config::development("sqlite://embed.db");
    config.server.bind = "127.0.0.1:5001".parse()?;
    let listener = tokio::net::TcpListener::bind(config.server.bind).await?;
    let lw = Loginwith::new(&config, listener.local_addr()?).await?;
    let router = lw.layer(Router::new().route("/private", get(private)).merge(lw.routes()));
    println!("open http://{}/private", listener.local_addr()?);
    // With the peer address, so that rate limits and the audit log know who the client is.
    let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, service).await?;
    Ok(())
}
