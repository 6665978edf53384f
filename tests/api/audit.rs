//! The audit trail, as an operator reads it: the real binary with `[log] format = "json"` and
//! `LOGINWITH_LOG=warn,loginwith::audit=info`, its standard output parsed line by line. A login, a
//! logout, a refusal with its reason and a rate-limit hit each make one line under the target
//! `loginwith::audit` with the user, provider, client address and outcome, and no line anywhere
//! carries a code, a state, a token or a secret.

use crate::helpers::*;
use loginwith::Store;
use reqwest::StatusCode;
use serde_json::Value;
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SECRET_KEY: &str = "audit-test-secret-key-that-is-long-enough-42";

struct Server {
    child: Child,
    address: String,
}

impl Server {
    fn start(dir: &std::path::Path) -> Server {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            listener.local_addr().expect("addr").port()
        };
        let config = dir.join("loginwith.toml");
        std::fs::write(
            &config,
            format!(
                "[server]\nbind = \"127.0.0.1:{port}\"\nsecret_key = \"{SECRET_KEY}\"\n\
                 [database]\nurl = \"sqlite://{}\"\n[limits]\nauthorize_per_minute = 3\n\
                 [log]\nformat = \"json\"\n",
                dir.join("audit.db").display()
            ),
        )
        .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_loginwith"))
            .args(["--config", config.to_str().unwrap(), "serve"])
            .current_dir(dir)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("LOGINWITH_LOG", "warn,loginwith::audit=info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start loginwith");
        Server { child, address: format!("http://127.0.0.1:{port}") }
    }

    async fn wait_healthy(&self) {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(30) {
            if let Ok(r) = reqwest::get(format!("{}/healthz", self.address)).await {
                if r.status() == StatusCode::OK {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("loginwith did not become healthy");
    }

    /// Stops the server and returns everything it printed.
    fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let mut out = String::new();
        if let Some(mut stdout) = self.child.stdout.take() {
            let _ = stdout.read_to_string(&mut out);
        }
        if let Some(mut stderr) = self.child.stderr.take() {
            let _ = stderr.read_to_string(&mut out);
        }
        out
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_refusals_logouts_and_rate_limits_are_audited_as_json_without_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    server.wait_healthy().await;
    let store = Store::connect(&format!("sqlite://{}", dir.path().join("audit.db").display())).await.unwrap();
    let app = TestApp::attach(&server.address, store);

    // A login (new user), and what it exchanged: these must never be printed.
    let authorize = app.begin_login("dev").await;
    let state = query_param(&authorize, "state").unwrap();
    let callback = app.dev_decide(&authorize, "audited@example.com", true, true).await;
    let code = query_param(&callback, "code").unwrap();
    assert_eq!(app.complete_callback(&callback).await.status(), StatusCode::SEE_OTHER);
    let (_, me) = app.api_me().await;
    let user_id = me["id"].as_i64().unwrap();
    app.logout().await;
    // A refusal: the same callback again.
    assert_eq!(app.complete_callback(&callback).await.status(), StatusCode::BAD_REQUEST);
    // A refusal at the start: a provider that does not exist (its name is not echoed as one).
    assert_eq!(app.get("/authorize/no-such-provider").await.status(), StatusCode::NOT_FOUND);
    // Rate limit: three authorize requests per minute, two of them made above.
    let mut statuses = Vec::new();
    for _ in 0..2 {
        statuses.push(app.get("/authorize/dev").await.status());
    }
    assert_eq!(statuses, [StatusCode::FOUND, StatusCode::TOO_MANY_REQUESTS]);

    let output = server.stop();
    let lines: Vec<Value> = output.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let audit: Vec<&Value> = lines.iter().filter(|l| l["target"] == "loginwith::audit").collect();
    let find = |event: &str| {
        audit
            .iter()
            .find(|l| l["event"] == event)
            .unwrap_or_else(|| panic!("no {event} line in:\n{output}"))
            .to_owned()
    };
    let login = find("login");
    assert_eq!(login["outcome"], "new");
    assert_eq!(login["user_id"], user_id);
    assert_eq!(login["provider"], "dev");
    assert_eq!(login["client"], "127.0.0.1");
    assert_eq!(login["level"], "INFO");
    let logout = find("logout");
    assert_eq!(logout["user_id"], user_id);
    assert_eq!(logout["client"], "127.0.0.1");
    let refusals: Vec<&&Value> = audit.iter().filter(|l| l["event"] == "refusal").collect();
    let reasons: Vec<&str> = refusals.iter().filter_map(|l| l["reason"].as_str()).collect();
    assert_eq!(reasons, ["state_unknown", "unknown_provider"], "{output}");
    assert_eq!(refusals[0]["provider"], "dev");
    assert_eq!(refusals[0]["outcome"], "refused");
    assert_eq!(refusals[1]["provider"], "", "an unknown name is not written as a provider");
    let limit = find("rate_limited");
    assert_eq!(limit["area"], "authorize");
    assert_eq!(limit["client"], "127.0.0.1");

    for secret in [state.as_str(), code.as_str(), SECRET_KEY] {
        assert!(!output.contains(secret), "a secret value was logged:\n{output}");
    }
    assert!(
        !output.contains("access_token") && !output.contains("Bearer "),
        "no token was logged:\n{output}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ending_sessions_and_deleting_the_account_are_audited() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    server.wait_healthy().await;
    let store = Store::connect(&format!("sqlite://{}", dir.path().join("audit.db").display())).await.unwrap();
    let app = TestApp::attach(&server.address, store);
    let other = app.another_browser();
    app.login_dev("deleted@example.com", true).await;
    other.login_dev("deleted@example.com", true).await;
    let (_, me) = app.api_me().await;
    let user_id = me["id"].as_i64().unwrap();

    let same_origin = |request: reqwest::RequestBuilder| {
        request.header("Origin", app.address.clone()).header("Content-Type", "application/json")
    };
    let end_others = app.client.post(app.url("/account/sessions/end-others"));
    let response = end_others.header("Origin", app.address.clone()).form(&[("", "")]).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    other.assert_logged_out().await;
    let response = same_origin(app.client.delete(app.url("/api/me"))).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);

    let output = server.stop();
    let lines: Vec<Value> = output.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let find = |event: &str| {
        lines
            .iter()
            .find(|l| l["target"] == "loginwith::audit" && l["event"] == event)
            .unwrap_or_else(|| panic!("no {event} line in:\n{output}"))
            .to_owned()
    };
    let revoked = find("revoke");
    assert_eq!(revoked["user_id"], user_id);
    assert_eq!(revoked["count"], 1);
    assert_eq!(revoked["client"], "127.0.0.1");
    let deleted = find("delete_account");
    assert_eq!(deleted["user_id"], user_id);
    assert_eq!(deleted["outcome"], "deleted");
    assert_eq!(deleted["sessions"], 1, "this session; the other was ended before");
    assert_eq!(deleted["client"], "127.0.0.1");
}
