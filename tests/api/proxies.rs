//! The gateway behind real proxies: Debian's nginx (`auth_request`) and Caddy (`forward_auth`),
//! each running the file from `deploy/` exactly as shipped, in front of a small upstream that
//! echoes the headers it receives, with loginwith and a mock provider beside them, all on
//! loopback ports. Host names (`app.localhost`, `admin.gw.localhost`...) are mapped to 127.0.0.1
//! by the client (reqwest's `resolve`, like curl's `--resolve`): no DNS is asked.
//!
//! Each test runs once per proxy: a login through the proxy reaches the upstream with the
//! identity headers; a client's own `X-Auth-Request-*` headers never get past; logout works; a
//! per-host rule refuses on one host and admits on another; with `cookie_domain`, one login admits
//! the browser on two host names.
//!
//! Needs `/usr/sbin/nginx` (with the auth_request module) and `/usr/bin/caddy` (or on PATH). When
//! one is missing its tests say they are skipped — or fail with `LOGINWITH_REQUIRE_PROXIES=1`
//! (CI), so that they cannot pass silently there.

use crate::helpers::*;
use crate::mock_provider::{MockProvider, Scripted};
use axum::http::HeaderMap;
use reqwest::cookie::Jar;
use reqwest::header::ORIGIN;
use reqwest::{Client, Response, StatusCode};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use url::Url;

#[derive(Clone, Copy, Debug)]
pub(crate) enum Kind {
    Nginx,
    Caddy,
}

/// One `#[tokio::test]` per proxy for each scenario below.
macro_rules! proxy_tests {
    ($($name:ident),* $(,)?) => {
        mod nginx {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { super::$name(super::Kind::Nginx).await } )*
        }
        mod caddy {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { super::$name(super::Kind::Caddy).await } )*
        }
    };
}

proxy_tests!(
    a_login_through_the_proxy_reaches_the_upstream_with_the_identity,
    a_clients_own_identity_headers_never_get_past,
    logout_through_the_proxy_ends_the_login,
    per_host_rules_and_one_login_for_several_hosts,
    the_readme_walkthrough_with_the_development_provider,
);

fn deploy_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy").join(name)
}

fn binary(kind: Kind) -> Option<PathBuf> {
    let (name, usual) = match kind {
        Kind::Nginx => ("nginx", "/usr/sbin/nginx"),
        Kind::Caddy => ("caddy", "/usr/bin/caddy"),
    };
    if Path::new(usual).is_file() {
        return Some(usual.into());
    }
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths).map(|dir| dir.join(name)).find(|p| p.is_file())
}

/// The proxy's binary; `None` (after saying so) when it is missing, unless CI requires it.
pub(crate) fn proxy_binary(kind: Kind) -> Option<PathBuf> {
    if let Some(found) = binary(kind) {
        return Some(found);
    }
    let package = format!("{kind:?}").to_lowercase();
    if std::env::var("LOGINWITH_REQUIRE_PROXIES").as_deref() == Ok("1") {
        panic!(
            "the {package} tests are required (LOGINWITH_REQUIRE_PROXIES=1) but {package} is not installed"
        );
    }
    eprintln!("SKIPPED: {package} gateway test: {package} is not installed (apt-get install {package})");
    None
}

/// A free loopback port. The proxy binds it a moment later: loginwith's `public_url` must name
/// it before the proxy starts.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port()
}

/// `n` free loopback ports, all different: each is held until all are picked (one by one, a port
/// just released can come back at once).
pub(crate) fn free_ports(n: usize) -> Vec<u16> {
    let held: Vec<_> =
        (0..n).map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("free port")).collect();
    held.iter().map(|l| l.local_addr().expect("free port").port()).collect()
}

/// The upstream app: answers every request with what it received, and counts the requests.
struct Upstream {
    port: u16,
    hits: Arc<AtomicUsize>,
    _served: Served,
}

async fn start_upstream() -> Upstream {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let router = axum::Router::new().fallback(move |uri: axum::http::Uri, headers: HeaderMap| {
        let counter = counter.clone();
        async move {
            counter.fetch_add(1, Ordering::SeqCst);
            let headers: serde_json::Map<String, Value> = headers
                .iter()
                .map(|(k, v)| (k.as_str().to_owned(), json!(String::from_utf8_lossy(v.as_bytes()))))
                .collect();
            axum::Json(json!({"upstream": true, "uri": uri.to_string(), "headers": headers}))
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind upstream");
    let port = listener.local_addr().expect("upstream addr").port();
    Upstream { port, hits, _served: serve_until_dropped(listener, router) }
}

/// A proxy process, killed when dropped.
pub(crate) struct Proxy {
    child: tokio::process::Child,
    _dir: tempfile::TempDir,
}

/// Starts `kind` on `127.0.0.1:port` with its `deploy/` file, for the names in `hosts`.
async fn start_proxy(
    kind: Kind,
    binary: &Path,
    port: u16,
    hosts: &[&str],
    loginwith: u16,
    app: u16,
) -> Proxy {
    let dir = tempfile::tempdir().expect("proxy dir");
    let mut cmd = tokio::process::Command::new(binary);
    match kind {
        Kind::Nginx => {
            // What deploy/nginx.conf leaves to the site: the listening address and the upstreams.
            // One process (no master and workers), so that killing it leaves no worker behind.
            let conf = format!(
                "master_process off;\npid {dir}/nginx.pid;\nerror_log stderr warn;\nevents {{}}\n\
                 http {{\n  access_log off;\n  client_body_temp_path {dir}/body;\n  proxy_temp_path {dir}/proxy;\n\
                 \x20 upstream loginwith {{ server 127.0.0.1:{loginwith}; keepalive 8; }}\n  upstream app {{ server 127.0.0.1:{app}; keepalive 8; }}\n\
                 \x20 server {{\n    listen 127.0.0.1:{port};\n    server_name {names};\n    include {file};\n  }}\n}}\n",
                dir = dir.path().display(),
                names = hosts.join(" "),
                file = deploy_file("nginx.conf").display(),
            );
            std::fs::write(dir.path().join("nginx.conf"), conf).expect("write nginx.conf");
            cmd.arg("-p")
                .arg(dir.path())
                .arg("-c")
                .arg(dir.path().join("nginx.conf"))
                .args(["-g", "daemon off;"]);
        }
        Kind::Caddy => {
            let sites: Vec<String> = hosts.iter().map(|h| format!("http://{h}:{port}")).collect();
            cmd.args(["run", "--adapter", "caddyfile", "--config"])
                .arg(deploy_file("Caddyfile"))
                .env("SITE_ADDRESS", sites.join(", "))
                .env("LOGINWITH_UPSTREAM", format!("127.0.0.1:{loginwith}"))
                .env("APP_UPSTREAM", format!("127.0.0.1:{app}"))
                .env("BIND_ADDRESS", "127.0.0.1")
                .env("CADDY_ADMIN_ADDRESS", "off")
                // Caddy keeps state under HOME / XDG dirs: a private one.
                .env("HOME", dir.path())
                .env("XDG_DATA_HOME", dir.path())
                .env("XDG_CONFIG_HOME", dir.path());
        }
    }
    spawn_listening(kind, cmd, port, dir).await
}

/// Runs `cmd` (a proxy of `kind`, whose files are in `dir`) until it listens on `port`.
pub(crate) async fn spawn_listening(
    kind: Kind,
    mut cmd: tokio::process::Command,
    port: u16,
    dir: tempfile::TempDir,
) -> Proxy {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("start {kind:?}: {e}"));
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return Proxy { child, _dir: dir };
        }
        if let Ok(Some(status)) = child.try_wait() {
            let output = child.wait_with_output().await.expect("proxy output");
            panic!(
                "{kind:?} exited ({status}) before listening:\n{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        assert!(Instant::now() < deadline, "{kind:?} did not listen on 127.0.0.1:{port} within 15 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// Everything a test needs: the proxy on `port`, loginwith behind it at `http://HOST:port/auth`,
/// the mock provider, the upstream.
struct Site {
    port: u16,
    mock: MockProvider,
    upstream: Upstream,
    hosts: Vec<String>,
    _loginwith: TestApp,
    _proxy: Proxy,
}

/// loginwith's `public_url` is on `hosts[0]`; `server` adds `[server]` keys, `toml` the rest. The
/// provider is the mock, unless `toml` names `[providers.dev]`.
async fn start_site(kind: Kind, hosts: &[&str], server: &str, toml: &str) -> Option<Site> {
    let binary = proxy_binary(kind)?;
    let port = free_port();
    let mock = MockProvider::start().await;
    let upstream = start_upstream().await;
    // The proxy first, as in the README: the development provider reaches itself through it.
    let loginwith_port = free_port();
    let proxy = start_proxy(kind, &binary, port, hosts, loginwith_port, upstream.port).await;
    let loginwith = TestApp::builder(Db::Sqlite)
        .server(&format!(
            "bind = \"127.0.0.1:{loginwith_port}\"\npublic_url = \"http://{host}:{port}/auth\"\n\
             trusted_proxies = [\"127.0.0.1\"]\n{server}",
            host = hosts[0]
        ))
        .toml(&if toml.contains("[providers.dev]") {
            toml.to_owned()
        } else {
            format!("{toml}\n{}", mock.provider_toml_with("mock", "trust_email_verified = true"))
        })
        .spawn()
        .await;
    let hosts = hosts.iter().map(|h| (*h).to_owned()).collect();
    Some(Site { port, mock, upstream, hosts, _loginwith: loginwith, _proxy: proxy })
}

impl Site {
    fn url(&self, host: &str, path: &str) -> String {
        format!("http://{host}:{}{path}", self.port)
    }

    /// A browser (its own cookie jar, no redirect following) that finds every test host at
    /// 127.0.0.1.
    fn browser(&self) -> Client {
        let loopback: SocketAddr = ([127, 0, 0, 1], 0).into();
        let mut builder = Client::builder()
            .cookie_provider(Arc::new(Jar::default()))
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(20));
        for host in &self.hosts {
            builder = builder.resolve(host, loopback);
        }
        builder.build().expect("client")
    }

    /// The provider's next login is `email` (verified or not), with subject `sub`.
    fn next_login(&self, sub: &str, email: &str, verified: bool) {
        self.mock.set_userinfo(Scripted::json(
            200,
            json!({"sub": sub, "email": email, "email_verified": verified, "name": format!("User {sub}")}),
        ));
    }

    /// GETs `url` and follows redirects as a browser would, answering the mock provider's
    /// authorize page itself (consent given: back to the `redirect_uri` with a code). Returns the
    /// last response and the URLs visited.
    async fn browse(&self, browser: &Client, url: &str) -> (Response, Vec<String>) {
        let mut url = Url::parse(url).expect("url");
        let mut visited = Vec::new();
        for _ in 0..12 {
            visited.push(url.to_string());
            let response = browser.get(url.clone()).send().await.unwrap_or_else(|e| panic!("GET {url}: {e}"));
            if !response.status().is_redirection() {
                return (response, visited);
            }
            let next = url.join(&location(&response)).expect("Location is a URL");
            url = if next.as_str().starts_with(&format!("{}/authorize", self.mock.base)) {
                let state = query_param(next.as_str(), "state").expect("state");
                let redirect_uri = query_param(next.as_str(), "redirect_uri").expect("redirect_uri");
                let mut callback = Url::parse(&redirect_uri).expect("redirect_uri is a URL");
                callback.query_pairs_mut().append_pair("code", "good-code").append_pair("state", &state);
                callback
            } else {
                next
            };
        }
        panic!("more than 12 redirects: {visited:#?}");
    }
}

/// `action` (a path, as the page has it) on `origin`.
fn browse_target(origin: &str, action: &str) -> String {
    Url::parse(origin).and_then(|o| o.join(action)).expect("a URL").to_string()
}

/// The upstream's echo: the URI it was asked for and the headers it received.
async fn upstream_echo(response: Response) -> Value {
    let status = response.status();
    let url = response.url().to_string();
    let body = response.text().await.unwrap_or_default();
    assert_eq!(status, StatusCode::OK, "{url} should reach the upstream:\n{body}");
    let echo: Value =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("not the upstream's echo ({e}):\n{body}"));
    assert_eq!(echo["upstream"], true);
    echo
}

fn echoed<'a>(echo: &'a Value, header: &str) -> Option<&'a str> {
    echo["headers"][header].as_str()
}

const GATEWAY: &str = "[gateway]\nenabled = true\nallowed_redirect_hosts = [\"app.localhost\"]\n";

async fn a_login_through_the_proxy_reaches_the_upstream_with_the_identity(kind: Kind) {
    let Some(site) = start_site(kind, &["app.localhost"], "", GATEWAY).await else { return };
    let browser = site.browser();
    let page = site.url("app.localhost", "/reports/q3?year=2026&view=full");

    // Nobody logged in: to loginwith's login, with the page (query and all) to come back to.
    let first = browser.get(&page).send().await.expect("GET page");
    assert_eq!(first.status(), StatusCode::FOUND, "{kind:?}: a 302 to the login");
    let start = location(&first);
    assert_eq!(
        start,
        format!(
            "http://app.localhost:{}/auth/gateway/start?rd={}",
            site.port,
            url::form_urlencoded::byte_serialize(page.as_bytes()).collect::<String>()
        )
    );
    assert_eq!(site.upstream.hits.load(Ordering::SeqCst), 0, "the upstream saw nothing yet");

    site.next_login("u-1", "alice@example.com", true);
    let (last, visited) = site.browse(&browser, &start).await;
    assert!(visited.iter().any(|u| u.contains("/auth/callback/mock?")), "{visited:#?}");
    assert_eq!(last.url().as_str(), page, "back at the page first asked for");
    let echo = upstream_echo(last).await;
    assert_eq!(echo["uri"], "/reports/q3?year=2026&view=full");
    assert_eq!(echoed(&echo, "x-auth-request-user"), Some("alice"));
    assert_eq!(echoed(&echo, "x-auth-request-email"), Some("alice@example.com"));
    assert_eq!(echoed(&echo, "x-auth-request-name"), Some("User u-1"));
    assert_eq!(echoed(&echo, "x-auth-request-provider"), Some("mock"));

    // Later requests pass straight through.
    let again =
        upstream_echo(browser.get(site.url("app.localhost", "/other")).send().await.expect("GET")).await;
    assert_eq!(echoed(&again, "x-auth-request-user"), Some("alice"));
    // A client without the session (an API client, curl) never reaches the upstream.
    let hits = site.upstream.hits.load(Ordering::SeqCst);
    let anonymous = site.browser().get(site.url("app.localhost", "/other")).send().await.expect("GET");
    assert_eq!(anonymous.status(), StatusCode::FOUND);
    assert_eq!(site.upstream.hits.load(Ordering::SeqCst), hits);
}

async fn a_clients_own_identity_headers_never_get_past(kind: Kind) {
    let Some(site) = start_site(kind, &["app.localhost"], "", GATEWAY).await else { return };
    let forge = |request: reqwest::RequestBuilder| {
        request
            .header("X-Auth-Request-User", "root")
            .header("X-Auth-Request-Email", "ceo@example.com")
            .header("X-Auth-Request-Name", "The CEO")
            .header("X-Auth-Request-Provider", "google")
    };
    // Not logged in: forged headers get a redirect to log in, not the upstream.
    let browser = site.browser();
    let response = forge(browser.get(site.url("app.localhost", "/"))).send().await.expect("GET");
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(site.upstream.hits.load(Ordering::SeqCst), 0);

    // Logged in: loginwith's values replace the client's.
    site.next_login("u-2", "bob@example.com", true);
    site.browse(&browser, &site.url("app.localhost", "/")).await;
    let echo =
        upstream_echo(forge(browser.get(site.url("app.localhost", "/x"))).send().await.expect("GET")).await;
    assert_eq!(echoed(&echo, "x-auth-request-user"), Some("bob"));
    assert_eq!(echoed(&echo, "x-auth-request-email"), Some("bob@example.com"));
    assert_eq!(echoed(&echo, "x-auth-request-name"), Some("User u-2"));
    assert_eq!(echoed(&echo, "x-auth-request-provider"), Some("mock"));

    // Logged in with an unverified address, loginwith sends no e-mail header: the client's must
    // not take its place.
    let unverified = site.browser();
    site.next_login("u-3", "maybe@example.com", false);
    site.browse(&unverified, &site.url("app.localhost", "/")).await;
    let echo =
        upstream_echo(forge(unverified.get(site.url("app.localhost", "/x"))).send().await.expect("GET"))
            .await;
    assert_eq!(echoed(&echo, "x-auth-request-email"), None, "{echo:#}");
    assert_eq!(echoed(&echo, "x-auth-request-provider"), Some("mock"));
    assert_ne!(echoed(&echo, "x-auth-request-user"), Some("root"));
}

async fn logout_through_the_proxy_ends_the_login(kind: Kind) {
    let Some(site) = start_site(kind, &["app.localhost"], "", GATEWAY).await else { return };
    let browser = site.browser();
    site.next_login("u-4", "carol@example.com", true);
    let (last, _) = site.browse(&browser, &site.url("app.localhost", "/")).await;
    upstream_echo(last).await;

    // The app's own "log out" button: a form on the app's host posting to the gateway.
    let home = site.url("app.localhost", "/");
    let rd: String = url::form_urlencoded::byte_serialize(home.as_bytes()).collect();
    let response = browser
        .post(site.url("app.localhost", &format!("/auth/gateway/logout?rd={rd}")))
        .header(ORIGIN, site.url("app.localhost", ""))
        .send()
        .await
        .expect("POST logout");
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), home);

    let hits = site.upstream.hits.load(Ordering::SeqCst);
    let response = browser.get(&home).send().await.expect("GET");
    assert_eq!(response.status(), StatusCode::FOUND, "logged out: back to the login");
    assert!(location(&response).contains("/auth/gateway/start"), "{}", location(&response));
    assert_eq!(site.upstream.hits.load(Ordering::SeqCst), hits, "the upstream is not reached");
}

async fn per_host_rules_and_one_login_for_several_hosts(kind: Kind) {
    let hosts = ["app.gw.localhost", "docs.gw.localhost", "admin.gw.localhost"];
    let toml = "[gateway]\nenabled = true\nallowed_redirect_hosts = [\".gw.localhost\"]\n\
                [[gateway.rules]]\nhost = \"admin.gw.localhost\"\nallowed_emails = [\"boss@example.com\"]\n";
    let Some(site) = start_site(kind, &hosts, "cookie_domain = \"gw.localhost\"", toml).await else { return };

    // One login on the app's host...
    let alice = site.browser();
    site.next_login("u-5", "alice@example.com", true);
    let (last, _) = site.browse(&alice, &site.url("app.gw.localhost", "/")).await;
    assert_eq!(echoed(&upstream_echo(last).await, "x-auth-request-email"), Some("alice@example.com"));
    // ...admits her on another host with no second login (the cookie is for gw.localhost)...
    let docs = alice.get(site.url("docs.gw.localhost", "/manual")).send().await.expect("GET docs");
    assert_eq!(echoed(&upstream_echo(docs).await, "x-auth-request-email"), Some("alice@example.com"));
    let calls_to_provider = site.mock.token_requests();

    // ...but the admin host's rule refuses her: a page naming her, with a way to log out, and
    // no loop (nginx redirects to loginwith's refusal page; Caddy passes its 403 through).
    let hits = site.upstream.hits.load(Ordering::SeqCst);
    let (refused, visited) = site.browse(&alice, &site.url("admin.gw.localhost", "/settings")).await;
    assert!(visited.len() <= 2, "at most one redirect to the refusal page: {visited:#?}");
    let page = expect_page(refused, StatusCode::FORBIDDEN, "alice@example.com").await;
    assert!(page.contains("admin.gw.localhost") && page.contains("Log out"), "{page}");
    assert_eq!(site.upstream.hits.load(Ordering::SeqCst), hits, "the admin app is not reached");
    assert_eq!(site.mock.token_requests(), calls_to_provider, "no new login was started");
    // The page's "Log out" works from the admin host: logged out everywhere, back to the page,
    // which now asks for a login.
    let action = page.split("action=\"").nth(1).and_then(|rest| rest.split('"').next()).expect("a form");
    let logout = browse_target(&site.url("admin.gw.localhost", ""), action);
    let response = alice
        .post(&logout)
        .header(ORIGIN, site.url("admin.gw.localhost", ""))
        .send()
        .await
        .expect("POST the page's logout form");
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), site.url("admin.gw.localhost", "/settings"));
    let docs = alice.get(site.url("docs.gw.localhost", "/manual")).send().await.expect("GET docs");
    assert_eq!(docs.status(), StatusCode::FOUND, "logged out on every host");

    // The boss is admitted there.
    let boss = site.browser();
    site.next_login("u-6", "boss@example.com", true);
    let (last, _) = site.browse(&boss, &site.url("admin.gw.localhost", "/settings")).await;
    let echo = upstream_echo(last).await;
    assert_eq!(echo["uri"], "/settings");
    assert_eq!(echoed(&echo, "x-auth-request-email"), Some("boss@example.com"));
}

/// The README's "try it" setup: no provider but the development one, whose own discovery and
/// token requests go out to `public_url` on `app.localhost`, through the proxy (loginwith resolves
/// `*.localhost` to loopback itself, as browsers do, whatever the system's resolver says).
async fn the_readme_walkthrough_with_the_development_provider(kind: Kind) {
    let toml = format!("{GATEWAY}[providers.dev]\n");
    let Some(site) = start_site(kind, &["app.localhost"], "", &toml).await else { return };
    let browser = site.browser();
    let home = site.url("app.localhost", "/");
    let first = browser.get(&home).send().await.expect("GET");
    assert_eq!(first.status(), StatusCode::FOUND);
    let (consent, visited) = site.browse(&browser, &location(&first)).await;
    let consent_url = visited.last().expect("visited").clone();
    assert!(
        consent_url.starts_with(&site.url("app.localhost", "/auth/dev-provider/authorize?")),
        "{visited:#?}"
    );
    expect_page(consent, StatusCode::OK, "for development only").await;

    let mut form: Vec<(String, String)> =
        Url::parse(&consent_url).expect("url").query_pairs().into_owned().collect();
    form.extend(
        [("email", "dev@example.com"), ("email_verified", "true"), ("decision", "allow")]
            .map(|(k, v)| (k.into(), v.into())),
    );
    let decided = browser
        .post(site.url("app.localhost", "/auth/dev-provider/authorize"))
        .form(&form)
        .send()
        .await
        .expect("POST consent");
    assert_eq!(decided.status(), StatusCode::SEE_OTHER);
    let (last, _) = site.browse(&browser, &location(&decided)).await;
    assert_eq!(last.url().as_str(), home);
    assert_eq!(echoed(&upstream_echo(last).await, "x-auth-request-email"), Some("dev@example.com"));
}
