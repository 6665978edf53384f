//! Virtual users: each a client with its own cookie jar that follows no redirect, checking the
//! status (and where it matters the page) of every step, timing the steps that succeed and
//! counting the rest as errors by kind.

use reqwest::cookie::Jar;
use reqwest::header::{HeaderMap, LOCATION};
use reqwest::{Client, RequestBuilder, StatusCode};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Barrier;
use url::Url;

/// Every request's limit.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Addresses that returning users log in with.
pub const POOL_SIZE: usize = 100;

/// Login flow steps, in order.
pub const AUTHORIZE: &str = "authorize";
pub const PROVIDER: &str = "provider";
pub const CALLBACK: &str = "callback";
/// The callback minus the mock provider's own time on the token request: loginwith's server-side
/// cost of the callback, queueing included, provider latency excluded.
pub const CALLBACK_SERVER: &str = "callback − provider";
pub const HOME: &str = "home";
pub const LOGOUT: &str = "logout";
pub const FLOW: &str = "flow";

/// A browser: its own cookie jar, no redirect following, no proxy (loopback only), timeouts.
pub fn browser() -> Client {
    Client::builder()
        .cookie_provider(Arc::new(Jar::default()))
        .redirect(reqwest::redirect::Policy::none())
        .timeout(REQUEST_TIMEOUT)
        .connect_timeout(Duration::from_secs(5))
        .no_proxy()
        .build()
        .expect("HTTP client")
}

/// The site the virtual users log into.
#[derive(Debug, Clone)]
pub struct Site {
    /// `http://127.0.0.1:PORT` or, mounted under a path, `http://127.0.0.1:PORT/auth`; no trailing
    /// slash.
    pub base: String,
    /// The provider's name in `/authorize/NAME`.
    pub provider: String,
    /// The mock provider's issuer.
    pub mock_issuer: String,
}

impl Site {
    /// loginwith's start page as a path (`/`, or `/auth/` when mounted at `/auth`): where the
    /// callback sends a browser back to.
    pub fn start_path(&self) -> String {
        let path =
            Url::parse(&self.base).map(|u| u.path().trim_end_matches('/').to_owned()).unwrap_or_default();
        format!("{path}/")
    }

    /// `http://127.0.0.1:PORT`: the origin, without the mount path.
    pub fn origin(&self) -> String {
        Url::parse(&self.base).map_or_else(|_| self.base.clone(), |u| u.origin().ascii_serialization())
    }
}

/// A pool address, for returning users.
pub fn pool_email(i: usize) -> String {
    format!("user{:03}@bench.example", i % POOL_SIZE)
}

/// What a group of virtual users measured.
#[derive(Debug, Default, Clone)]
pub struct Recorder {
    /// step → latencies in microseconds, in the order steps were first seen.
    pub steps: Vec<(&'static str, Vec<u32>)>,
    /// "step: kind" → count.
    pub errors: BTreeMap<String, u64>,
    /// "step: kind" → the first example (a page excerpt or an error message).
    pub examples: BTreeMap<String, String>,
    /// Login flows with a fresh address.
    pub new_users: u64,
    /// Login flows with a pool address.
    pub returning_users: u64,
}

impl Recorder {
    /// A recorder whose steps appear in this order.
    pub fn with_steps(steps: &[&'static str]) -> Self {
        Recorder { steps: steps.iter().map(|s| (*s, Vec::new())).collect(), ..Default::default() }
    }

    pub fn record(&mut self, step: &'static str, elapsed: Duration) {
        let us = u32::try_from(elapsed.as_micros()).unwrap_or(u32::MAX);
        match self.steps.iter_mut().find(|(name, _)| *name == step) {
            Some((_, samples)) => samples.push(us),
            None => self.steps.push((step, vec![us])),
        }
    }

    pub fn error(&mut self, step: &str, kind: &str, example: String) {
        let key = format!("{step}: {kind}");
        *self.errors.entry(key.clone()).or_default() += 1;
        self.examples.entry(key).or_insert(example);
    }

    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    pub fn merge(&mut self, other: Recorder) {
        for (step, samples) in other.steps {
            match self.steps.iter_mut().find(|(name, _)| *name == step) {
                Some((_, mine)) => mine.extend(samples),
                None => self.steps.push((step, samples)),
            }
        }
        for (k, n) in other.errors {
            *self.errors.entry(k).or_default() += n;
        }
        for (k, e) in other.examples {
            self.examples.entry(k).or_insert(e);
        }
        self.new_users += other.new_users;
        self.returning_users += other.returning_users;
    }

    /// Only the errors, each under `prefix`.
    fn errors_as(&self, prefix: &str) -> Recorder {
        let mut r = Recorder::default();
        for (k, n) in &self.errors {
            let key = format!("{prefix} {k}");
            r.errors.insert(key.clone(), *n);
            if let Some(e) = self.examples.get(k) {
                r.examples.insert(key, e.clone());
            }
        }
        r
    }
}

/// A response read to the end.
pub struct Reply {
    pub status: StatusCode,
    pub location: Option<String>,
    pub headers: HeaderMap,
    pub body: String,
}

/// A page or message, shortened to one readable line.
pub fn excerpt(text: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in text.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                out.push(' ');
            }
            _ if in_tag => {}
            c => out.push(c),
        }
    }
    let words: Vec<&str> = out.split_whitespace().collect();
    let line = words.join(" ");
    if line.chars().count() > 240 {
        format!("{}…", line.chars().take(240).collect::<String>())
    } else {
        line
    }
}

/// An error and its causes, on one line (the library's own formatter).
pub use loginwith::error_chain;

fn classify(err: &reqwest::Error) -> &'static str {
    if err.is_timeout() {
        "timeout"
    } else if err.is_connect() {
        "connection failed"
    } else if err.is_body() || err.is_decode() {
        "body read failed"
    } else {
        "request failed"
    }
}

/// Sends, reads the whole body, checks the status; records the latency when the status is right.
pub async fn step(
    rec: &mut Recorder,
    name: &'static str,
    request: RequestBuilder,
    expect: StatusCode,
) -> Option<Reply> {
    let started = Instant::now();
    let result = async {
        let mut response = request.send().await?;
        let status = response.status();
        let location = response.headers().get(LOCATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
        // Taken, not cloned: the load generator shares the cores with the servers it measures.
        let headers = std::mem::take(response.headers_mut());
        let body = response.text().await?;
        Ok::<_, reqwest::Error>(Reply { status, location, headers, body })
    }
    .await;
    let elapsed = started.elapsed();
    match result {
        Err(err) => {
            rec.error(name, classify(&err), error_chain(&err));
            None
        }
        Ok(reply) if reply.status != expect => {
            let kind = format!("status {} (expected {})", reply.status.as_u16(), expect.as_u16());
            let example =
                format!("{}; {}", reply.location.as_deref().unwrap_or("no Location"), excerpt(&reply.body));
            rec.error(name, &kind, example);
            None
        }
        Ok(reply) => {
            rec.record(name, elapsed);
            Some(reply)
        }
    }
}

/// One login: authorize → provider → callback → home showing `email` → (logout). Returns whether
/// every step passed. The flow's total time is recorded as [`FLOW`] when it passes.
pub async fn login_flow(client: &Client, site: &Site, rec: &mut Recorder, email: &str, logout: bool) -> bool {
    let started = Instant::now();
    let base = &site.base;
    // 1. loginwith sends us to the provider.
    let Some(r) =
        step(rec, AUTHORIZE, client.get(format!("{base}/authorize/{}", site.provider)), StatusCode::FOUND)
            .await
    else {
        return false;
    };
    let provider_prefix = format!("{}/authorize?", site.mock_issuer);
    let mut to_provider = match r.location.as_deref().map(Url::parse) {
        Some(Ok(url)) if url.as_str().starts_with(&provider_prefix) => url,
        other => {
            rec.error(AUTHORIZE, "redirect not to the mock provider", format!("{other:?}"));
            return false;
        }
    };
    // 2. The mock provider logs in whoever the login_hint names and sends us back.
    to_provider.query_pairs_mut().append_pair("login_hint", email);
    let Some(r) = step(rec, PROVIDER, client.get(to_provider), StatusCode::FOUND).await else {
        return false;
    };
    let callback_prefix = format!("{base}/callback/{}?", site.provider);
    let callback = match r.location {
        Some(url) if url.starts_with(&callback_prefix) => url,
        other => {
            rec.error(
                PROVIDER,
                "redirect not to the target's callback (does public_url differ from the target URL?)",
                format!("{other:?}"),
            );
            return false;
        }
    };
    // 3. The callback: state, token exchange, ID token, user upsert, session.
    let callback_started = Instant::now();
    let Some(r) = step(rec, CALLBACK, client.get(&callback), StatusCode::SEE_OTHER).await else {
        return false;
    };
    let callback_time = callback_started.elapsed();
    let code = Url::parse(&callback)
        .ok()
        .and_then(|u| u.query_pairs().find(|(k, _)| k == "code").map(|(_, v)| v.into_owned()));
    let provider_time = code.and_then(|c| crate::mock::TOKEN_TIME_BY_CODE.lock().ok()?.remove(&c));
    if let Some(provider_time) = provider_time {
        rec.record(CALLBACK_SERVER, callback_time.saturating_sub(provider_time));
    }
    let start_path = site.start_path();
    if r.location.as_deref() != Some(start_path.as_str()) {
        rec.error(CALLBACK, &format!("redirect not to {start_path}"), format!("{:?}", r.location));
        return false;
    }
    // 4. The start page shows who is logged in.
    let Some(r) = step(rec, HOME, client.get(format!("{base}/")), StatusCode::OK).await else {
        return false;
    };
    if !r.body.contains(email) {
        rec.error(HOME, "not logged in (the page lacks the address)", excerpt(&r.body));
        return false;
    }
    if !logout {
        return true;
    }
    // 5. Logout.
    if step(rec, LOGOUT, client.post(format!("{base}/logout")), StatusCode::SEE_OTHER).await.is_none() {
        return false;
    }
    rec.record(FLOW, started.elapsed());
    true
}

/// After a failed flow: log out (unmeasured) so the next flow starts clean, and breathe a little
/// so that a broken server does not turn the loop into a busy spin.
async fn recover(client: &Client, site: &Site) {
    let _ = client.post(format!("{}/logout", site.base)).send().await;
    tokio::time::sleep(Duration::from_millis(20)).await;
}

/// What a scenario produced.
pub struct Phase {
    pub rec: Recorder,
    /// From the start signal to the last virtual user's end.
    pub elapsed: Duration,
}

/// Runs `concurrency` virtual users. Each does its setup, waits for all the others, then works
/// until `duration` has passed; the phase is timed from that common start.
async fn run_vus<F, Fut>(concurrency: usize, duration: Duration, vu: F) -> Result<Phase, String>
where
    F: Fn(usize, Arc<Barrier>, Duration) -> Fut,
    Fut: Future<Output = Recorder> + Send + 'static,
{
    let barrier = Arc::new(Barrier::new(concurrency + 1));
    let mut set = tokio::task::JoinSet::new();
    for i in 0..concurrency {
        set.spawn(vu(i, barrier.clone(), duration));
    }
    // Setup (a login per user at most) and the run, each request bounded by REQUEST_TIMEOUT.
    let limit = duration + REQUEST_TIMEOUT * 8;
    let outcome = tokio::time::timeout(limit, async {
        barrier.wait().await;
        let started = Instant::now();
        let mut rec = Recorder::default();
        while let Some(done) = set.join_next().await {
            match done {
                Ok(r) => rec.merge(r),
                Err(e) => rec.error("virtual user", "task failed", e.to_string()),
            }
        }
        Phase { rec, elapsed: started.elapsed() }
    })
    .await;
    outcome.map_err(|_| format!("the scenario did not end within {} s", limit.as_secs()))
}

/// Scenario (a): login flows, alternating fresh addresses and the pool of returning ones.
pub async fn login_scenario(
    site: &Site,
    concurrency: usize,
    duration: Duration,
    run_id: &str,
) -> Result<Phase, String> {
    let site = site.clone();
    let run_id = run_id.to_owned();
    run_vus(concurrency, duration, move |vu, barrier, duration| {
        let site = site.clone();
        let run_id = run_id.clone();
        async move {
            let client = browser();
            let mut rec =
                Recorder::with_steps(&[AUTHORIZE, PROVIDER, CALLBACK, CALLBACK_SERVER, HOME, LOGOUT, FLOW]);
            barrier.wait().await;
            let deadline = Instant::now() + duration;
            let mut n: usize = 0;
            while Instant::now() < deadline {
                let fresh = (vu + n).is_multiple_of(2);
                let email = if fresh {
                    rec.new_users += 1;
                    format!("new-{run_id}-{vu}-{n}@bench.example")
                } else {
                    rec.returning_users += 1;
                    pool_email(vu * 7 + n * 13)
                };
                n += 1;
                if !login_flow(&client, &site, &mut rec, &email, true).await {
                    recover(&client, &site).await;
                }
            }
            rec
        }
    })
    .await
}

/// What a read loop requests and expects.
#[derive(Debug, Clone)]
pub struct Read {
    /// Step name in the report.
    pub name: &'static str,
    /// Path on the site.
    pub path: &'static str,
    /// Expected status.
    pub status: StatusCode,
    /// Text the body must contain; `{email}` is replaced by the user's address, `{username}` by
    /// the username loginwith gave the user (read from `/api/me` after the login).
    pub needle: &'static str,
    /// Log in first (as a pool user).
    pub login: bool,
    /// Send the reads to this origin (`http://127.0.0.1:PORT`) instead of the site's base: an app
    /// behind a proxy, while the login goes through the site.
    pub origin: Option<String>,
    /// A header sent with every read.
    pub send_header: Option<(&'static str, String)>,
    /// The needle must be this answer header's whole value instead of a part of the body.
    pub in_header: Option<&'static str>,
}

impl Read {
    pub fn new(
        name: &'static str,
        path: &'static str,
        status: StatusCode,
        needle: &'static str,
        login: bool,
    ) -> Read {
        Read { name, path, status, needle, login, origin: None, send_header: None, in_header: None }
    }

    /// Reads go to `origin` (see [`Read::origin`]).
    pub fn at_origin(self, origin: String) -> Read {
        Read { origin: Some(origin), ..self }
    }

    /// Every read sends `name: value`.
    pub fn sending(self, name: &'static str, value: String) -> Read {
        Read { send_header: Some((name, value)), ..self }
    }

    /// The needle is checked against the answer header `name`, not the body.
    pub fn expecting_header(self, name: &'static str) -> Read {
        Read { in_header: Some(name), ..self }
    }

    fn url(&self, site: &Site) -> String {
        match &self.origin {
            Some(origin) => format!("{origin}{}", self.path),
            None => format!("{}{}", site.base, self.path),
        }
    }

    fn request(&self, client: &Client, url: &str) -> RequestBuilder {
        match &self.send_header {
            Some((name, value)) => client.get(url).header(*name, value),
            None => client.get(url),
        }
    }

    /// `None` when the answer shows the needle, else what it showed instead.
    fn missing(&self, reply: &Reply, needle: &str) -> Option<String> {
        match self.in_header {
            Some(name) => {
                let value = reply.headers.get(name).map(|v| String::from_utf8_lossy(v.as_bytes()));
                (value.as_deref() != Some(needle)).then(|| format!("{name}: {value:?}"))
            }
            None => (!reply.body.contains(needle)).then(|| excerpt(&reply.body)),
        }
    }
}

/// The logged-in user's username, from `{base}/api/me`. The gateway names users by it in
/// `X-Auth-Request-User`: its `X-Auth-Request-Email` is empty for the mock's users, whose
/// provider is not trusted to verify addresses (`trust_email_verified` is off for a generic
/// OpenID Connect provider), and the benchmark keeps the login path as configured.
async fn username_of(client: &Client, site: &Site) -> Result<String, String> {
    let url = format!("{}/api/me", site.base);
    let response = client.get(&url).send().await.map_err(|e| format!("GET {url}: {}", error_chain(&e)))?;
    let status = response.status();
    let body = response.text().await.map_err(|e| format!("GET {url}: {}", error_chain(&e)))?;
    let me: serde_json::Value = serde_json::from_str(&body)
        .map_err(|e| format!("GET {url} answered {status} without JSON ({e}): {}", excerpt(&body)))?;
    me["username"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("GET {url} answered {status} without a username: {}", excerpt(&body)))
}

/// Scenarios (b) and (c): a loop of one request, logged in or not.
pub async fn read_scenario(
    site: &Site,
    read: Read,
    concurrency: usize,
    duration: Duration,
) -> Result<Phase, String> {
    let site = site.clone();
    run_vus(concurrency, duration, move |vu, barrier, duration| {
        let site = site.clone();
        let read = read.clone();
        async move {
            let client = browser();
            let mut rec = Recorder::with_steps(&[read.name]);
            let email = pool_email(vu);
            let mut ready = true;
            if read.login {
                let mut setup = Recorder::default();
                ready = login_flow(&client, &site, &mut setup, &email, false).await;
                rec.merge(setup.errors_as("setup (login before reads):"));
            }
            let mut username = String::new();
            if ready && read.needle.contains("{username}") {
                match username_of(&client, &site).await {
                    Ok(name) => username = name,
                    Err(e) => {
                        rec.error("setup (username from /api/me)", "failed", e);
                        ready = false;
                    }
                }
            }
            let needle = read.needle.replace("{email}", &email).replace("{username}", &username);
            let url = read.url(&site);
            barrier.wait().await;
            let deadline = Instant::now() + duration;
            while ready && Instant::now() < deadline {
                let Some(reply) = step(&mut rec, read.name, read.request(&client, &url), read.status).await
                else {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                };
                if let Some(shown) = read.missing(&reply, &needle) {
                    let kind = if read.login {
                        "not logged in (no address in the answer)"
                    } else {
                        "unexpected body"
                    };
                    rec.error(read.name, kind, shown);
                }
            }
            rec
        }
    })
    .await
}
