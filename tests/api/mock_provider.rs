//! A fake OAuth 2.0 provider (and a fake of GitHub's API) on a random loopback port, whose every
//! answer a test can script: status, body, content type, delay. It counts the requests it gets,
//! so a test can assert that no token request was made, and records what the token, userinfo and
//! e-mail requests carried. Like GitHub, it pages a scripted JSON array of e-mail addresses at 30
//! entries unless the request asks for `per_page` (at most 100).
//!
//! For many logins at once (the multi-instance tests), it can instead answer each login with its
//! own person, named by the code: [`MockProvider::profile_per_code`].

#![allow(dead_code)]

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How a scripted body goes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Whole, with a `Content-Length` header.
    Length,
    /// Streamed in 1 KiB chunks (`Transfer-Encoding: chunked`), no `Content-Length`.
    Chunked,
    /// The body repeated without end, chunked, no `Content-Length`.
    Endless,
}

/// One scripted answer.
#[derive(Debug, Clone)]
pub struct Scripted {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
    pub delay: Option<Duration>,
    /// Answered only once the test notifies it (see [`Scripted::held`]).
    pub gate: Option<Arc<tokio::sync::Notify>>,
    pub framing: Framing,
}

impl Scripted {
    pub fn json(status: u16, value: serde_json::Value) -> Self {
        Scripted {
            status,
            content_type: "application/json".into(),
            body: value.to_string().into_bytes(),
            delay: None,
            gate: None,
            framing: Framing::Length,
        }
    }
    pub fn text(status: u16, content_type: &str, body: &str) -> Self {
        Scripted {
            status,
            content_type: content_type.into(),
            body: body.as_bytes().to_vec(),
            delay: None,
            gate: None,
            framing: Framing::Length,
        }
    }
    /// `len` bytes of JSON-looking padding (a string of `a`s inside an object).
    pub fn huge_json(status: u16, len: usize) -> Self {
        let mut body = b"{\"sub\":\"".to_vec();
        body.resize(len.saturating_sub(2).max(body.len()), b'a');
        body.extend_from_slice(b"\"}");
        Scripted {
            status,
            content_type: "application/json".into(),
            body,
            delay: None,
            gate: None,
            framing: Framing::Length,
        }
    }
    /// Sends the body as a chunked stream, without `Content-Length`.
    pub fn chunked(mut self) -> Self {
        self.framing = Framing::Chunked;
        self
    }
    /// Repeats the body forever as a chunked stream, without `Content-Length`.
    pub fn endless(mut self) -> Self {
        self.framing = Framing::Endless;
        self
    }
    pub fn delayed(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }
    /// Holds the answer until `gate` is notified (`notify_one`, before or after the request
    /// comes): for a test that must act while the server waits, whatever the machine's speed.
    pub fn held(mut self, gate: Arc<tokio::sync::Notify>) -> Self {
        self.gate = Some(gate);
        self
    }
}

#[derive(Debug)]
pub struct MockState {
    pub token_requests: AtomicUsize,
    pub userinfo_requests: AtomicUsize,
    pub emails_requests: AtomicUsize,
    /// Each code is its own person (see [`MockProvider::profile_per_code`]) instead of the
    /// scripted token and profile.
    pub per_code: AtomicBool,
    pub token: Mutex<Scripted>,
    pub userinfo: Mutex<Scripted>,
    pub emails: Mutex<Scripted>,
    /// The last token request's form and Authorization header.
    pub last_token_form: Mutex<HashMap<String, String>>,
    pub last_token_auth: Mutex<Option<String>>,
    pub last_token_content_type: Mutex<Option<String>>,
    pub last_userinfo_auth: Mutex<Option<String>>,
    pub last_emails_auth: Mutex<Option<String>>,
    pub last_emails_query: Mutex<HashMap<String, String>>,
    pub last_userinfo_query: Mutex<HashMap<String, String>>,
}

pub struct MockProvider {
    pub base: String,
    pub state: Arc<MockState>,
    _server: crate::helpers::Served,
}

impl MockProvider {
    /// A well-behaved provider: a bearer token, and a verified profile for `someone@example.com`.
    pub async fn start() -> MockProvider {
        let state = Arc::new(MockState {
            token_requests: AtomicUsize::new(0),
            userinfo_requests: AtomicUsize::new(0),
            emails_requests: AtomicUsize::new(0),
            per_code: AtomicBool::new(false),
            token: Mutex::new(Scripted::json(
                200,
                serde_json::json!({"access_token": "mock-token", "token_type": "bearer"}),
            )),
            userinfo: Mutex::new(Scripted::json(
                200,
                serde_json::json!({"sub": "mock-1", "id": 1, "login": "someone", "email": "someone@example.com", "email_verified": true, "name": "Some One"}),
            )),
            emails: Mutex::new(Scripted::json(
                200,
                serde_json::json!([{"email": "someone@example.com", "primary": true, "verified": true}]),
            )),
            last_token_form: Mutex::new(HashMap::new()),
            last_token_auth: Mutex::new(None),
            last_token_content_type: Mutex::new(None),
            last_userinfo_auth: Mutex::new(None),
            last_emails_auth: Mutex::new(None),
            last_emails_query: Mutex::new(HashMap::new()),
            last_userinfo_query: Mutex::new(HashMap::new()),
        });
        let router = Router::new()
            .route("/token", post(token))
            .route("/userinfo", get(userinfo))
            .route("/user", get(userinfo))
            .route("/user/emails", get(emails))
            // GitHub Enterprise Server's paths (`base_url` = this mock).
            .route("/login/oauth/access_token", post(token))
            .route("/api/v3/user", get(userinfo))
            .route("/api/v3/user/emails", get(emails))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind mock");
        let addr = listener.local_addr().expect("mock addr");
        let _server = crate::helpers::serve_until_dropped(listener, router);
        MockProvider { base: format!("http://{addr}"), state, _server }
    }

    /// A `[providers.NAME]` table pointing at this mock, generic OAuth 2.0 with JSON Pointers.
    pub fn provider_toml(&self, name: &str) -> String {
        format!(
            "[providers.{name}]\ndisplay_name = \"Mock\"\nclient_id = \"mock-client\"\nclient_secret = \"mock-secret\"\n\
             authorize_url = \"{base}/authorize\"\ntoken_url = \"{base}/token\"\nuserinfo_url = \"{base}/userinfo\"\n\
             scopes = [\"email\"]\n[providers.{name}.userinfo]\nsubject = \"/sub\"\nemail = \"/email\"\n\
             email_verified = \"/email_verified\"\nname = \"/name\"\n",
            base = self.base
        )
    }

    /// Like [`provider_toml`](Self::provider_toml), with extra keys (e.g. `token_auth = "..."`)
    /// in the `[providers.NAME]` table.
    pub fn provider_toml_with(&self, name: &str, extra_keys: &str) -> String {
        self.provider_toml(name).replacen(
            &format!("[providers.{name}.userinfo]"),
            &format!("{extra_keys}\n[providers.{name}.userinfo]"),
            1,
        )
    }

    /// A `[providers.NAME]` table with the GitHub preset, its API pointed at this mock.
    pub fn github_toml(&self, name: &str) -> String {
        format!(
            "[providers.{name}]\npreset = \"github\"\nclient_id = \"gh-client\"\nclient_secret = \"gh-secret\"\n\
             authorize_url = \"{base}/authorize\"\ntoken_url = \"{base}/token\"\nuserinfo_url = \"{base}/user\"\n",
            base = self.base
        )
    }

    /// `[providers.NAME]`: the GitHub preset for a GitHub Enterprise Server at this mock.
    pub fn github_enterprise_toml(&self, name: &str) -> String {
        format!(
            "[providers.{name}]\npreset = \"github\"\nclient_id = \"ghe-client\"\nclient_secret = \"ghe-secret\"\n\
             base_url = \"{}/\"\n",
            self.base
        )
    }

    /// `[providers.NAME]` with `preset` and its endpoints pointed at this mock (the scripted
    /// userinfo answers `/user`), for the OAuth 2.0 presets (Discord, ...).
    pub fn preset_toml(&self, name: &str, preset: &str) -> String {
        format!(
            "[providers.{name}]\npreset = \"{preset}\"\nclient_id = \"{preset}-client\"\nclient_secret = \"{preset}-secret\"\n\
             authorize_url = \"{base}/authorize\"\ntoken_url = \"{base}/token\"\nuserinfo_url = \"{base}/user\"\n",
            base = self.base
        )
    }

    /// From now on each login is the person its code names, rather than the one scripted: code
    /// `C` gets the access token `C`, whose profile is subject `C`, verified address
    /// `C@example.com`, name `User C`. A test that plays the browser picks the code when it
    /// answers the authorize page, so many logins at once (on several instances) each know who
    /// they should end up as, without sharing one scripted answer.
    pub fn profile_per_code(&self) {
        self.state.per_code.store(true, Ordering::SeqCst);
    }

    pub fn set_token(&self, s: Scripted) {
        *self.state.token.lock().unwrap() = s;
    }
    pub fn set_userinfo(&self, s: Scripted) {
        *self.state.userinfo.lock().unwrap() = s;
    }
    pub fn set_emails(&self, s: Scripted) {
        *self.state.emails.lock().unwrap() = s;
    }
    pub fn token_requests(&self) -> usize {
        self.state.token_requests.load(Ordering::SeqCst)
    }
    pub fn userinfo_requests(&self) -> usize {
        self.state.userinfo_requests.load(Ordering::SeqCst)
    }
    pub fn emails_requests(&self) -> usize {
        self.state.emails_requests.load(Ordering::SeqCst)
    }
    /// The last token request's form fields.
    pub fn last_token_form(&self) -> HashMap<String, String> {
        self.state.last_token_form.lock().unwrap().clone()
    }
    /// The last token request's `Authorization` header.
    pub fn last_token_auth(&self) -> Option<String> {
        self.state.last_token_auth.lock().unwrap().clone()
    }
    /// The last token request's `Content-Type` header.
    pub fn last_token_content_type(&self) -> Option<String> {
        self.state.last_token_content_type.lock().unwrap().clone()
    }
    /// The last userinfo (`/userinfo` or `/user`) request's `Authorization` header.
    pub fn last_userinfo_auth(&self) -> Option<String> {
        self.state.last_userinfo_auth.lock().unwrap().clone()
    }
    /// The last `/user/emails` request's `Authorization` header.
    pub fn last_emails_auth(&self) -> Option<String> {
        self.state.last_emails_auth.lock().unwrap().clone()
    }
    /// The last userinfo (`/user`, `/userinfo`) request's query parameters.
    pub fn last_userinfo_query(&self) -> HashMap<String, String> {
        self.state.last_userinfo_query.lock().unwrap().clone()
    }
    /// The last `/user/emails` request's query parameters.
    pub fn last_emails_query(&self) -> HashMap<String, String> {
        self.state.last_emails_query.lock().unwrap().clone()
    }
}

async fn answer(s: Scripted) -> Response {
    if let Some(gate) = &s.gate {
        gate.notified().await;
    }
    if let Some(delay) = s.delay {
        tokio::time::sleep(delay).await;
    }
    let body = match s.framing {
        Framing::Length => Body::from(s.body),
        Framing::Chunked => {
            let chunks: Vec<Result<Bytes, std::io::Error>> =
                s.body.chunks(1024).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
            Body::from_stream(futures::stream::iter(chunks))
        }
        Framing::Endless => {
            let chunk = Bytes::from(s.body);
            Body::from_stream(futures::stream::repeat_with(move || Ok::<_, std::io::Error>(chunk.clone())))
        }
    };
    Response::builder()
        .status(StatusCode::from_u16(s.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header(header::CONTENT_TYPE, s.content_type)
        .body(body)
        .unwrap()
}

/// A scripted answer as a response, for other fakes that replay raw bodies (the OpenID Connect
/// fake's raw discovery document and key set).
pub async fn scripted_response(s: Scripted) -> Response {
    answer(s).await
}

/// Counts every POST, whatever its body, before looking at it.
async fn token(State(state): State<Arc<MockState>>, headers: HeaderMap, body: Bytes) -> Response {
    state.token_requests.fetch_add(1, Ordering::SeqCst);
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    *state.last_token_form.lock().unwrap() = form;
    *state.last_token_content_type.lock().unwrap() =
        headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
    *state.last_token_auth.lock().unwrap() =
        headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
    if state.per_code.load(Ordering::SeqCst) {
        // From this request's own body: `last_token_form` may already be another login's.
        let code = url::form_urlencoded::parse(&body)
            .find(|(k, _)| k == "code")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
        return answer(Scripted::json(
            200,
            serde_json::json!({"access_token": code, "token_type": "bearer"}),
        ))
        .await;
    }
    let scripted = state.token.lock().unwrap().clone();
    answer(scripted).await
}

async fn userinfo(
    State(state): State<Arc<MockState>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    state.userinfo_requests.fetch_add(1, Ordering::SeqCst);
    *state.last_userinfo_query.lock().unwrap() = query;
    let auth = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
    *state.last_userinfo_auth.lock().unwrap() = auth.clone();
    if state.per_code.load(Ordering::SeqCst) {
        let subject = auth.as_deref().and_then(|a| a.strip_prefix("Bearer ")).unwrap_or_default();
        let profile = serde_json::json!({
            "sub": subject, "email": format!("{subject}@example.com"), "email_verified": true,
            "name": format!("User {subject}"),
        });
        return answer(Scripted::json(200, profile)).await;
    }
    let scripted = state.userinfo.lock().unwrap().clone();
    answer(scripted).await
}

async fn emails(
    State(state): State<Arc<MockState>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    state.emails_requests.fetch_add(1, Ordering::SeqCst);
    *state.last_emails_auth.lock().unwrap() =
        headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let scripted = state.emails.lock().unwrap().clone();
    let scripted = one_page(scripted, &query);
    *state.last_emails_query.lock().unwrap() = query;
    answer(scripted).await
}

/// GitHub's paging of a list: `per_page` entries (30 unless asked, at most 100) of page `page`
/// (from 1). Anything that is not a JSON array is answered as scripted.
fn one_page(mut scripted: Scripted, query: &HashMap<String, String>) -> Scripted {
    let Ok(serde_json::Value::Array(entries)) = serde_json::from_slice::<serde_json::Value>(&scripted.body)
    else {
        return scripted;
    };
    let number =
        |name: &str, default: usize| query.get(name).and_then(|v| v.parse::<usize>().ok()).unwrap_or(default);
    let per_page = number("per_page", 30).clamp(1, 100);
    let page = number("page", 1).max(1);
    let slice: Vec<_> = entries.into_iter().skip((page - 1) * per_page).take(per_page).collect();
    scripted.body = serde_json::Value::Array(slice).to_string().into_bytes();
    scripted
}

/// A provider trusted to verify addresses (`[providers.victim]`, `trust_email_verified = true`)
/// whose user has the verified address `email`: the account another provider's login must reach,
/// or must never reach. Its table goes before the provider under test's.
pub struct TrustedAccount {
    pub mock: MockProvider,
    pub toml: String,
}

impl TrustedAccount {
    pub async fn start(email: &str) -> TrustedAccount {
        let mock = MockProvider::start().await;
        mock.set_userinfo(Scripted::json(
            200,
            serde_json::json!({"sub": "victim-1", "email": email, "email_verified": true}),
        ));
        let toml = mock.provider_toml_with("victim", "trust_email_verified = true");
        TrustedAccount { mock, toml }
    }

    /// Logs its user in on `app`, then out again; `/api/me` as it was while logged in.
    pub async fn log_in_first(&self, app: &crate::helpers::TestApp) -> serde_json::Value {
        crate::dev_flow::mock_login(app, "victim").await;
        let (_, me) = app.api_me().await;
        app.logout().await;
        me
    }
}
