//! The binary's configuration handling: every problem at once, never a panic; `check` prints the
//! redirect URIs; the dev provider refuses a non-loopback address.

use std::process::Command;

/// Runs the binary in an empty directory with only `env`: whether it succeeded, and its output.
pub fn loginwith(args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_loginwith"));
    cmd.args(args).current_dir(dir.path()).env_clear().env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run loginwith");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

#[test]
fn bad_configuration_lists_every_problem_and_does_not_panic() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(
        &file,
        "[server]\nbind = 5\nsurprise = 1\n[providers.github]\nclient_id = \"x\"\n\
         [providers.corp]\nauthorize_url = \"ftp://x\"\n[providers.corp.userinfo]\nemail = \"no-slash\"\n",
    )
    .unwrap();
    let path = file.to_str().unwrap();
    let (ok, text) = loginwith(&["--config", path, "check"], &[]);
    assert!(!ok, "{text}");
    for expected in [
        "`server.bind`",
        "`server.surprise`: unknown key",
        "`providers.github.client_secret`: missing",
        "`providers.corp.authorize_url`",
        "`providers.corp.userinfo.email`",
        "bad.toml",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    assert!(!text.contains("panicked") && !text.contains("RUST_BACKTRACE"), "{text}");
}

#[test]
fn malformed_toml_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("broken.toml");
    std::fs::write(&file, "[server\nbind = ").unwrap();
    let (ok, text) = loginwith(&["--config", file.to_str().unwrap(), "check"], &[]);
    assert!(!ok);
    assert!(text.contains("broken.toml"), "{text}");
    assert!(!text.contains("panicked"), "{text}");
}

#[test]
fn missing_config_file_is_reported() {
    let (ok, text) = loginwith(&["--config", "/nonexistent/loginwith.toml", "check"], &[]);
    assert!(!ok);
    assert!(text.contains("/nonexistent/loginwith.toml"), "{text}");
}

#[test]
fn seed_variables_enable_providers_and_check_prints_redirect_uris() {
    let (ok, text) = loginwith(
        &["check"],
        &[
            ("GITHUB_CLIENT_ID", "12345"),
            ("GITHUB_CLIENT_SECRET", "s3cret-value"),
            ("LOGINWITH_SERVER__PUBLIC_URL", "https://app.example.com"),
        ],
    );
    assert!(ok, "{text}");
    assert!(text.contains("redirect URI to register: https://app.example.com/callback/github"), "{text}");
    assert!(!text.contains("s3cret-value"), "check must not print secrets");
    assert!(!text.contains("/callback/dev"), "with credentials, the dev provider is not added: {text}");
}

#[test]
fn client_id_without_secret_names_the_variable() {
    let (ok, text) = loginwith(&["check"], &[("GOOGLE_CLIENT_ID", "abc")]);
    assert!(!ok);
    assert!(text.contains("GOOGLE_CLIENT_SECRET"), "{text}");
}

#[test]
fn dev_provider_refuses_a_non_loopback_address() {
    let (ok, text) = loginwith(&["serve"], &[("LOGINWITH_SERVER__BIND", "0.0.0.0:0")]);
    assert!(!ok, "{text}");
    assert!(text.contains("loopback"), "{text}");
}

#[test]
fn check_reports_an_undiscoverable_provider_clearly() {
    // Nothing listens on port 1: discovery fails at once, and `check` says so with exit code 2.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("oidc.toml");
    std::fs::write(
        &file,
        "[providers.corp]\nissuer = \"http://127.0.0.1:1\"\nclient_id = \"id\"\nclient_secret = \"secret\"\n",
    )
    .unwrap();
    let (ok, text) = loginwith(&["--config", file.to_str().unwrap(), "check"], &[]);
    assert!(!ok, "{text}");
    assert!(text.contains("redirect URI to register: http://127.0.0.1:5000/callback/corp"), "{text}");
    assert!(text.contains("discovery FAILED"), "{text}");
    assert!(text.contains("could not be reached"), "{text}");
}
