//! The `loginwith` command: parse arguments, load the configuration, call the library.

use clap::{Parser, Subcommand};
use loginwith::config::{default_file, Config, LogFormat, ProviderConfig, ProviderKind, Sources};
use loginwith::state::redirect_uri;
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

fn check(config: &Config) -> ExitCode {
    let base = config
        .server
        .public_url
        .as_ref()
        .map(|u| u.as_str().trim_end_matches('/').to_owned())
        .unwrap_or_else(|| format!("http://{}", config.server.bind));
    println!("configuration OK");
    println!("listen on:  {}", config.server.bind);
    println!("public URL: {base}");
    println!("database:   {}", redact_url(&config.database.url));
    let mut ok = true;
    for p in &config.providers {
        println!();
        println!("provider {} (\"Login with {}\")", p.name, p.display_name);
        println!("  redirect URI to register: {}", redirect_uri(&base, &p.name));
        println!("  links accounts by verified e-mail: {}", linking_line(p));
        match &p.kind {
            ProviderKind::Dev { .. } => {
                println!("  built-in development provider (OpenID Connect, served at {base}/dev-provider/)")
            }
            ProviderKind::Oidc { issuer, .. } => {
                println!("  OpenID Connect issuer: {issuer}");
                match discover(config, p) {
                    Ok(lines) => lines.iter().for_each(|l| println!("  {l}")),
                    Err(err) => {
                        ok = false;
                        println!("  discovery FAILED: {err}");
                        println!("  (the server still starts; this provider's button says it is unavailable until discovery succeeds)");
                    }
                }
            }
            ProviderKind::OAuth2 { authorize_url, .. } => println!("  authorize: {authorize_url}"),
        }
    }
    if config.dev_provider_by_default {
        println!();
        println!("No provider has credentials, so only the development provider is enabled.");
        println!(
            "Set GOOGLE_CLIENT_ID/GOOGLE_CLIENT_SECRET or GITHUB_CLIENT_ID/GITHUB_CLIENT_SECRET to add one."
        );
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        println!();
        println!("error: some providers could not be discovered (see above)");
        ExitCode::from(2)
    }
}

/// Whether a provider's verified addresses may log into an existing account, and why.
fn linking_line(p: &ProviderConfig) -> &'static str {
    use loginwith::providers::Preset;
    match (p.preset, p.trust_email_verified) {
        (Some(Preset::Dev), _) => "no (the development provider believes anything typed into it)",
        (Some(Preset::Google), true) => {
            "yes (only @gmail.com and Workspace addresses, where Google is authoritative)"
        }
        (Some(Preset::Microsoft), true) => "yes (only addresses with xms_edov, verified by the domain owner)",
        (Some(Preset::Github), true) => "yes (the primary verified address)",
        (_, true) => "yes (trust_email_verified = true)",
        (Some(Preset::Gitlab), false) => {
            "no (a self-hosted GitLab; set trust_email_verified = true if its admins verify addresses)"
        }
        (_, false) => "no (set trust_email_verified = true only if this provider really verifies addresses)",
    }
}

/// Fetches an OpenID Connect provider's discovery document and key set, as the server would.
fn discover(config: &Config, p: &ProviderConfig) -> Result<Vec<String>, String> {
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let http = loginwith::oauth::http::ProviderHttp::new(&config.http).map_err(|e| e.to_string())?;
        let dev = loginwith::providers::dev::DevEndpoints {
            issuer: String::new(),
            discovery_url: url::Url::parse("http://127.0.0.1/").map_err(|e| e.to_string())?,
            client_secret: loginwith::domain::secret::ClientSecret::new(""),
        };
        let provider = loginwith::providers::Provider::from_config(p, &dev)
            .ok_or("no discovery URL can be made from the issuer")?;
        let oidc = provider.oidc().ok_or("not an OpenID Connect provider")?;
        let d = oidc.ensure_discovered(&http).await.map_err(|e| e.to_string())?;
        Ok(vec![
            format!("discovery OK: issuer {}", d.issuer),
            format!("  authorization endpoint: {}", d.authorize_url),
            format!("  token endpoint: {}", d.token_url),
            format!("  ID token algorithms: {}", d.algorithms.join(", ")),
            format!("  iss in authorization responses (RFC 9207): {}", d.iss_parameter_supported),
        ])
    })
}

/// Hides a password in a database URL.
fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("redacted"));
            u.to_string()
        }
        _ => url.to_owned(),
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
                tracing::error!("cannot start: {}", loginwith::error::error_chain(&err));
                return ExitCode::FAILURE;
            }
        };
        tracing::info!(
            "loginwith listening on {}  (open {}/ in a browser)",
            app.local_addr(),
            app.public_url()
        );
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
