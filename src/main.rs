//! The `loginwith` command: parse arguments, load the configuration, call the library.

use clap::{Parser, Subcommand};
use loginwith::config::{default_file, Config, LogFormat, Sources};
use loginwith::App;
use std::path::PathBuf;
use std::process::ExitCode;

/// "Login with Google / GitHub / any OAuth 2.0 provider", as a server.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// TOML configuration file (default: ./loginwith.toml when it exists).
    #[arg(long, short, env = "LOGINWITH_CONFIG", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the app (the default).
    Serve,
    /// Validate the configuration and print each provider's redirect URI.
    Check,
}

fn main() -> ExitCode {
    // A missing .env is normal; a malformed one is worth saying.
    if let Err(err) = dotenvy::dotenv() {
        if !err.not_found() {
            eprintln!("warning: cannot read .env: {err}");
        }
    }
    let cli = Cli::parse();
    let sources = Sources { file: default_file(cli.config.as_deref()), environment: true };
    let config = match Config::load(&sources) {
        Ok(config) => config,
        Err(errors) => {
            eprint!("error: {errors}");
            return ExitCode::FAILURE;
        }
    };
    init_logging(config.log.format);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Check => check(&config),
        Command::Serve => serve(config),
    }
}

/// Logs go to standard output, as text or as one JSON object per line (`[log] format`), filtered
/// by `LOGINWITH_LOG` (or `RUST_LOG`), default `info` (and `tower_sessions_core=error`). The target is printed, so that audit lines
/// (`loginwith::audit`) can be told apart and selected.
fn init_logging(format: LogFormat) {
    // tower-sessions warns of "possibly suspicious activity" when a cookie names a session that is
    // gone; with anonymous sessions kept only for the login window, that is every abandoned
    // login's browser coming back later, so it is quiet by default.
    let filter = tracing_subscriber::EnvFilter::try_from_env("LOGINWITH_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,tower_sessions_core=error"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(true);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(false).init(),
    }
}

/// `loginwith check`: the library's report, then an exit code (2 when a provider could not be
/// discovered).
fn check(config: &Config) -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let report = runtime.block_on(loginwith::check(config));
    print!("{report}");
    if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    }
}

fn serve(config: Config) -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let app = match App::build(config).await {
            Ok(app) => app,
            Err(err) => {
                tracing::error!("cannot start: {}", loginwith::error_chain(&err));
                return ExitCode::FAILURE;
            }
        };
        tracing::info!(
            "loginwith listening on {}  (open {}/ in a browser)",
            app.local_addr(),
            app.public_url()
        );
        if let Some(addr) = app.metrics_addr() {
            tracing::info!("metrics on http://{addr}/metrics");
        }
        match app.run_until(shutdown_signal()).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                tracing::error!("server failed: {err}");
                ExitCode::FAILURE
            }
        }
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}
