//! The browser tests: Debian's headless Chromium, driven by `playwright-core`, clicks through the
//! development provider's login on real pages:
//!
//! - `tests/browser/login.mjs`, on loginwith's own pages: the logged-in page, a phone-sized
//!   viewport and logout;
//! - `tests/browser/spa.mjs`, on the single-page app example (`examples/spa`): the providers and
//!   the user its script shows from the JSON API, the login by redirect back to the page, and the
//!   logout through the API.
//!
//! Need `/usr/bin/chromium`, `node` and `tests/browser/node_modules/playwright-core`
//! (`bash tests/browser/install.sh` installs them). When one is missing the tests say they are
//! skipped — or fail when `LOGINWITH_REQUIRE_BROWSER=1` (CI), so that they cannot pass silently there.

use crate::helpers::*;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

const CHROMIUM: &str = "/usr/bin/chromium";
/// Longer than the script's own 120 s watchdog.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(180);

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

fn node_on_path() -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join("node").is_file()))
}

/// What the browser test needs and is not there, in words.
fn missing_tools() -> Vec<String> {
    let mut missing = Vec::new();
    if !Path::new(CHROMIUM).is_file() {
        missing.push(format!("{CHROMIUM} (Debian's chromium)"));
    }
    if !node_on_path() {
        missing.push("node (not on PATH)".to_owned());
    }
    let playwright = browser_dir().join("node_modules/playwright-core");
    if !playwright.join("package.json").is_file() {
        missing.push(format!("{} (npm package)", playwright.display()));
    }
    missing
}

/// True when the tools are there; otherwise skips (or, with LOGINWITH_REQUIRE_BROWSER=1, fails).
fn browser_available() -> bool {
    let missing = missing_tools();
    if missing.is_empty() {
        return true;
    }
    let missing = missing.join(", ");
    if std::env::var("LOGINWITH_REQUIRE_BROWSER").as_deref() == Ok("1") {
        panic!(
            "the browser test is required (LOGINWITH_REQUIRE_BROWSER=1) but {missing} is missing; \
             `bash tests/browser/install.sh` installs it"
        );
    }
    eprintln!("SKIPPED: browser test: {missing} missing; run bash tests/browser/install.sh");
    false
}

/// Runs `node tests/browser/SCRIPT ADDRESS` and fails with what it printed unless it passes.
async fn run_browser_script(script: &str, address: &str) {
    let script = browser_dir().join(script);
    let child = tokio::process::Command::new("node")
        .arg(&script)
        .arg(address)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start node {}: {e}", script.display()));

    let output = match tokio::time::timeout(SCRIPT_TIMEOUT, child.wait_with_output()).await {
        Ok(result) => result.expect("wait for node"),
        // Dropping the future drops the child, which kill_on_drop ends.
        Err(_) => panic!("the browser test did not finish within {} s", SCRIPT_TIMEOUT.as_secs()),
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the browser test {} failed ({}):\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
        script.display(),
        output.status
    );
    // Shown with --nocapture; what the browser saw.
    print!("{stdout}");
    eprint!("{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_login_and_logout_in_chromium() {
    if !browser_available() {
        return;
    }
    let app = TestApp::builder(Db::Sqlite).spawn().await;
    run_browser_script("login.mjs", &app.address).await;
}

/// The example single-page app, as `cargo run --example spa` serves it (loginwith under `/auth`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spa_example_logs_in_and_out_in_chromium() {
    if !browser_available() {
        return;
    }
    let app = TestApp::builder(Db::Sqlite).mounted_at("/auth").serve(crate::examples::spa::app).await;
    run_browser_script("spa.mjs", &app.address).await;
}
