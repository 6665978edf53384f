//! Safe in production: the development provider can never be reached in a deployment (by the
//! binary, by `check`, by the library entry point), HSTS with an https public URL, and files that
//! only their owner can read.

use crate::helpers::*;
use crate::mock_provider::MockProvider;
use loginwith::config::{Config, ProviderKind};
use loginwith::{App, Loginwith, StartError};
use reqwest::StatusCode;
use std::process::Command;

/// Runs the binary in a fresh directory with only `env` set; returns (success, stdout + stderr).
fn loginwith(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_loginwith"));
    cmd.args(args).current_dir(dir).env_clear().env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run loginwith");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

const DEPLOYED: [(&str, &str); 4] = [
    ("LOGINWITH_SERVER__BIND", "127.0.0.1:0"),
    ("LOGINWITH_SERVER__PUBLIC_URL", "https://login.example.com"),
    // GitHub rather than Google: `check` would fetch Google's discovery document, and tests talk to
    // loopback addresses only.
    ("GITHUB_CLIENT_ID", "github-client"),
    ("GITHUB_CLIENT_SECRET", "github-secret"),
];

/// The story from the issue: the old example (with `[providers.dev]` enabled) copied, real
/// credentials added, deployed behind TLS with a loopback bind address. It must not start.
#[test]
fn a_copied_config_with_the_dev_provider_refuses_to_start_behind_tls() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("loginwith.toml"), "[providers.dev]\npreset = \"dev\"\n").unwrap();
    for command in ["serve", "check"] {
        let (ok, text) = loginwith(dir.path(), &[command], &DEPLOYED);
        assert!(!ok, "{command} must refuse:\n{text}");
        assert!(text.contains("`providers.dev`: the development provider believes any address"), "{text}");
        assert!(text.contains("`server.public_url` is https://login.example.com/"), "{text}");
        assert!(text.contains("dangerously_allow_non_loopback"), "{text}");
        assert!(!text.contains("listening"), "nothing may be served:\n{text}");
    }
}

/// Today's example file, copied as it is and deployed the same way, offers the real provider alone.
#[test]
fn the_shipped_example_deployed_with_credentials_offers_no_dev_provider() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("loginwith.toml"), include_str!("../../loginwith.example.toml")).unwrap();
    let (ok, text) = loginwith(dir.path(), &["check"], &DEPLOYED);
    assert!(ok, "{text}");
    assert!(text.contains("redirect URI to register: https://login.example.com/callback/github"), "{text}");
    assert!(!text.contains("/callback/dev"), "{text}");
}

#[test]
fn missing_credentials_never_switch_the_dev_provider_on_in_a_deployment() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, text) =
        loginwith(dir.path(), &["serve"], &[("LOGINWITH_SERVER__PUBLIC_URL", "https://login.example.com")]);
    assert!(!ok, "{text}");
    assert!(text.contains("no login provider is configured"), "{text}");
    assert!(text.contains("GOOGLE_CLIENT_ID"), "the message says what to do:\n{text}");
}

#[test]
fn check_says_which_providers_may_link_accounts() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("loginwith.toml"),
        "[providers.corp]\nauthorize_url = \"https://sso.corp.example/a\"\ntoken_url = \"https://sso.corp.example/t\"\n\
         userinfo_url = \"https://sso.corp.example/u\"\nclient_id = \"i\"\nclient_secret = \"s\"\n\
         [providers.corp.userinfo]\nsubject = \"/id\"\nemail = \"/email\"\nemail_verified = \"/verified\"\n\
         [providers.github]\nclient_id = \"i\"\nclient_secret = \"s\"\n",
    )
    .unwrap();
    let (ok, text) = loginwith(dir.path(), &["check"], &[]);
    assert!(ok, "{text}");
    let section = |name: &str| {
        let start =
            text.find(&format!("provider {name} ")).unwrap_or_else(|| panic!("no {name} in:\n{text}"));
        text[start..].split("\n\n").next().unwrap_or_default().to_owned()
    };
    assert!(section("corp").contains("links accounts by verified e-mail: no"), "{text}");
    assert!(
        section("github").contains("links accounts by verified e-mail: yes (the primary verified address)"),
        "{text}"
    );
}

/// What `dangerously_allow_non_loopback = true` in `[providers.dev]` does, for a `Config` built by
/// hand.
fn allow_dev_provider_off_loopback(config: &mut Config) {
    for provider in &mut config.providers {
        if let ProviderKind::Dev { dangerously_allow_non_loopback, .. } = &mut provider.kind {
            *dangerously_allow_non_loopback = true;
        }
    }
}

/// An app that builds its own `Config` and serves it wherever it likes gets the same refusal.
#[tokio::test]
async fn the_library_entry_point_refuses_an_exposed_dev_provider() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("lib.db").display());
    let config = |public_url: &str, bind: &str| {
        let mut config = Config::development(&db);
        config.server.public_url = Some(url::Url::parse(public_url).unwrap());
        config.server.bind = bind.parse().unwrap();
        config
    };

    let err = Loginwith::builder(config("https://app.example.com", "127.0.0.1:5000"))
        .build()
        .await
        .expect_err("https public_url with the dev provider");
    assert!(matches!(err, StartError::DevProviderExposed(ref why) if why.contains("https")), "{err}");

    let err = Loginwith::builder(config("http://127.0.0.1:5000", "0.0.0.0:5000"))
        .build()
        .await
        .expect_err("all interfaces");
    assert!(matches!(err, StartError::DevProviderExposed(ref why) if why.contains("0.0.0.0")), "{err}");

    // Forced, or local, it starts.
    let mut forced = config("https://app.example.com", "127.0.0.1:5000");
    allow_dev_provider_off_loopback(&mut forced);
    assert!(Loginwith::builder(forced).build().await.is_ok());
    assert!(Loginwith::builder(config("http://127.0.0.1:5000", "127.0.0.1:5000")).build().await.is_ok());
}

#[tokio::test]
async fn https_public_url_sends_hsts_and_http_does_not() {
    let mock = MockProvider::start().await;
    let https = TestApp::builder(Db::Sqlite)
        .server("public_url = \"https://login.example.com\"")
        .toml(&mock.provider_toml("mock"))
        .spawn()
        .await;
    for path in ["/", "/healthz", "/authorize/nope", "/static/app.css"] {
        let response = https.get(path).await;
        assert_eq!(
            response.headers().get("strict-transport-security").and_then(|v| v.to_str().ok()),
            Some("max-age=31536000"),
            "{path}"
        );
    }
    let custom = TestApp::builder(Db::Sqlite)
        .server("public_url = \"https://login.example.com\"\nhsts_max_age_secs = 600")
        .toml(&mock.provider_toml("mock"))
        .spawn()
        .await;
    let response = custom.get("/").await;
    assert_eq!(response.headers()["strict-transport-security"], "max-age=600");
    let off = TestApp::builder(Db::Sqlite)
        .server("public_url = \"https://login.example.com\"\nhsts_max_age_secs = 0")
        .toml(&mock.provider_toml("mock"))
        .spawn()
        .await;
    assert!(off.get("/").await.headers().get("strict-transport-security").is_none());
    let http = TestApp::builder(Db::Sqlite).spawn().await;
    let response = http.get("/").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().get("strict-transport-security").is_none(), "never over http");
}

#[cfg(unix)]
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o777
}

/// A too-short key file is replaced by a new one, atomically and readable by its owner only, even
/// when the old file was world-readable.
#[cfg(unix)]
#[tokio::test]
async fn a_generated_key_file_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("loginwith.secret");
    std::fs::write(&key_file, "short").unwrap();
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let toml = format!(
        "[server]\nbind = \"127.0.0.1:0\"\nsecret_key_file = \"{}\"\n[database]\nurl = \"sqlite://{}\"\n",
        key_file.display(),
        dir.path().join("k.db").display()
    );
    let app = App::build(Config::from_toml(&toml).unwrap()).await.expect("start");
    drop(app);
    assert_eq!(mode(&key_file), 0o600);
    let key = std::fs::read_to_string(&key_file).unwrap();
    assert!(key.trim().len() >= 32, "a new key was written");
    // Nothing else is left behind in the directory (no temporary file).
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");

    // A fresh one is private too, and is kept across restarts.
    let fresh = dir.path().join("fresh.secret");
    let toml = toml.replace(&key_file.display().to_string(), &fresh.display().to_string());
    drop(App::build(Config::from_toml(&toml).unwrap()).await.expect("start"));
    assert_eq!(mode(&fresh), 0o600);
    let first = std::fs::read_to_string(&fresh).unwrap();
    drop(App::build(Config::from_toml(&toml).unwrap()).await.expect("restart"));
    assert_eq!(std::fs::read_to_string(&fresh).unwrap(), first, "a good key is kept");
}

/// The SQLite file holds every session: created by loginwith, only its owner may read it, and
/// SQLite's WAL file follows.
#[cfg(unix)]
#[tokio::test]
async fn a_sqlite_database_that_loginwith_creates_is_private() {
    let app = TestApp::builder(Db::Sqlite).spawn().await;
    app.login_dev("files@example.com", true).await;
    let path = app.db.url.strip_prefix("sqlite://").unwrap().to_owned();
    let path = std::path::Path::new(&path);
    assert_eq!(mode(path), 0o600, "{}", path.display());
    let wal = path.with_file_name(format!("{}-wal", path.file_name().unwrap().to_string_lossy()));
    assert_eq!(mode(&wal), 0o600, "{}", wal.display());
}
