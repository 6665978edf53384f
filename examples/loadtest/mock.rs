//! The load benchmark's mock OpenID Connect provider: discovery, JWKS, authorize, token, userinfo,
//! on 127.0.0.1, on a tokio runtime thread of its own (so that the virtual users' tasks never
//! delay its answers).
//!
//! It is fast and strict. Its authorize endpoint shows no page: it checks the request and sends
//! the browser straight back to `redirect_uri` with `code`, `state` and `iss`. The user who logs in
//! is the `login_hint` the virtual user added to the URL; the code remembers that address, the
//! nonce, the PKCE challenge and the redirect URI. The token endpoint checks the client's
//! credentials (Basic or form), the code (single use), the redirect URI and the PKCE verifier, then
//! answers with an access token and an ID token (RS256, or EdDSA with `--provider-alg eddsa`)
//! carrying the nonce, `at_hash`, the address and `email_verified = true`, so loginwith needs no
//! userinfo call. `--provider-latency-ms` is slept at the start of every token request. Whatever
//! it refuses is counted as an error of the run.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use openidconnect::core::{
    CoreEdDsaPrivateSigningKey, CoreIdToken, CoreIdTokenClaims, CoreJwsSigningAlgorithm,
    CoreRsaPrivateSigningKey,
};
use openidconnect::{
    Audience, EmptyAdditionalClaims, EndUserEmail, IssuerUrl, JsonWebKeyId, Nonce, PrivateSigningKey,
    StandardClaims, SubjectIdentifier,
};
use rand::Rng;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use url::Url;

/// The client id loginwith must be configured with.
pub const CLIENT_ID: &str = "bench";
/// The client secret loginwith must be configured with.
pub const CLIENT_SECRET: &str = "bench-secret";
/// The mock's port when it serves a `--target` (and in `--print-provider-config`).
pub const DEFAULT_TARGET_PORT: u16 = 5055;

/// The name of the mock's threads (its CPU time is read by this name).
pub const THREAD_NAME: &str = "mock-provider";

/// How the mock signs ID tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Alg {
    /// RSA 2048 with SHA-256, what Google, Microsoft and most providers use. Signing costs the mock
    /// a millisecond or two of CPU per login, taken from the same cores as loginwith.
    Rs256,
    /// Ed25519: signing costs the mock almost nothing, so the login rate is loginwith's alone.
    Eddsa,
}

impl Alg {
    fn jws(self) -> CoreJwsSigningAlgorithm {
        match self {
            Alg::Rs256 => CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
            Alg::Eddsa => CoreJwsSigningAlgorithm::EdDsa,
        }
    }
    fn name(self) -> &'static str {
        match self {
            Alg::Rs256 => "RS256",
            Alg::Eddsa => "EdDSA",
        }
    }
}

enum Key {
    Rsa(CoreRsaPrivateSigningKey),
    EdDsa(CoreEdDsaPrivateSigningKey),
}

impl Key {
    /// A new key (and key id) every run: a long-running --target that cached an older run's key
    /// set sees an unknown kid and fetches the keys again.
    fn generate(alg: Alg) -> Result<(Key, Value), String> {
        let kid = JsonWebKeyId::new(format!("bench-{}", random_token(8)));
        match alg {
            Alg::Rs256 => {
                use rsa::pkcs1::EncodeRsaPrivateKey;
                let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).map_err(|e| e.to_string())?;
                let pem = key.to_pkcs1_pem(rsa::pkcs8::LineEnding::LF).map_err(|e| e.to_string())?;
                let key = CoreRsaPrivateSigningKey::from_pem(&pem, Some(kid)).map_err(|e| e.to_string())?;
                let jwk = serde_json::to_value(key.as_verification_key()).map_err(|e| e.to_string())?;
                Ok((Key::Rsa(key), jwk))
            }
            Alg::Eddsa => {
                // PKCS#8 for an Ed25519 seed is a fixed 16-byte header and the 32-byte seed (RFC 8410).
                let mut der = vec![
                    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
                    0x20,
                ];
                der.extend(rand::random::<[u8; 32]>());
                let b64 = base64::engine::general_purpose::STANDARD.encode(&der);
                let pem = format!("-----BEGIN PRIVATE KEY-----\n{b64}\n-----END PRIVATE KEY-----\n");
                let key = CoreEdDsaPrivateSigningKey::from_ed25519_pem(&pem, Some(kid))?;
                let jwk = serde_json::to_value(key.as_verification_key()).map_err(|e| e.to_string())?;
                Ok((Key::EdDsa(key), jwk))
            }
        }
    }
}

/// The `[providers.NAME]` table that points loginwith at a mock with this issuer.
pub fn provider_toml(name: &str, issuer: &str) -> String {
    format!(
        "[providers.{name}]\ndisplay_name = \"Bench mock\"\nissuer = \"{issuer}\"\n\
         client_id = \"{CLIENT_ID}\"\nclient_secret = \"{CLIENT_SECRET}\"\n"
    )
}

/// A random token of letters and digits.
pub fn random_token(len: usize) -> String {
    rand::thread_rng().sample_iter(&rand::distributions::Alphanumeric).take(len).map(char::from).collect()
}

/// The stable subject of an address, so that the same address is the same identity every time.
fn subject_for(email: &str) -> String {
    let digest = Sha256::digest(email.to_ascii_lowercase().as_bytes());
    let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    format!("bench-{hex}")
}

/// Request counts per endpoint.
#[derive(Debug, Default)]
pub struct Counters {
    pub discovery: AtomicU64,
    pub jwks: AtomicU64,
    pub authorize: AtomicU64,
    pub token: AtomicU64,
    pub userinfo: AtomicU64,
}

impl Counters {
    /// name → count, for the report.
    pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("discovery", self.discovery.load(Ordering::Relaxed)),
            ("jwks", self.jwks.load(Ordering::Relaxed)),
            ("authorize", self.authorize.load(Ordering::Relaxed)),
            ("token", self.token.load(Ordering::Relaxed)),
            ("userinfo", self.userinfo.load(Ordering::Relaxed)),
        ]
    }
}

/// What an authorization code stands for.
#[derive(Debug)]
struct Grant {
    email: String,
    nonce: String,
    challenge: String,
    redirect_uri: String,
}

/// The mock's shared state.
pub struct MockState {
    issuer: String,
    alg: Alg,
    key: Key,
    jwks: Value,
    latency: Duration,
    grants: Mutex<HashMap<String, Grant>>,
    /// access token → address, for userinfo.
    tokens: Mutex<HashMap<String, String>>,
    /// Requests per endpoint.
    pub counters: Counters,
    /// What the mock refused: kind → (count, first example).
    pub errors: Mutex<BTreeMap<String, (u64, String)>>,
    /// Token endpoint service time (after the artificial latency), microseconds.
    pub token_service_us: Mutex<Vec<u32>>,
}

impl MockState {
    fn refuse(&self, kind: &str, detail: String) {
        if let Ok(mut errors) = self.errors.lock() {
            let entry = errors.entry(format!("mock provider: {kind}")).or_insert((0, detail));
            entry.0 += 1;
        }
    }

    fn id_token(&self, grant: &Grant, access_token: &str) -> Result<String, String> {
        let now = chrono::Utc::now();
        let issuer = IssuerUrl::new(self.issuer.clone()).map_err(|e| e.to_string())?;
        let claims = CoreIdTokenClaims::new(
            issuer,
            vec![Audience::new(CLIENT_ID.to_owned())],
            now + chrono::Duration::minutes(5),
            now,
            StandardClaims::new(SubjectIdentifier::new(subject_for(&grant.email)))
                .set_email(Some(EndUserEmail::new(grant.email.clone())))
                .set_email_verified(Some(true)),
            EmptyAdditionalClaims {},
        )
        .set_nonce(Some(Nonce::new(grant.nonce.clone())));
        let token = openidconnect::AccessToken::new(access_token.to_owned());
        let alg = self.alg.jws();
        let jwt = match &self.key {
            Key::Rsa(key) => CoreIdToken::new(claims, key, alg, Some(&token), None),
            Key::EdDsa(key) => CoreIdToken::new(claims, key, alg, Some(&token), None),
        };
        jwt.map(|jwt| jwt.to_string()).map_err(|e| e.to_string())
    }
}

/// A running mock provider; dropping it stops it.
pub struct Mock {
    /// `http://127.0.0.1:PORT`, exactly as discovery publishes it.
    pub issuer: String,
    /// Counters, errors, timings.
    pub state: Arc<MockState>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Mock {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl Mock {
    /// Makes the RSA key, binds 127.0.0.1:`port` (0: any free port) and serves on its own thread.
    pub fn start(port: u16, latency: Duration, alg: Alg) -> Result<Mock, String> {
        let listener = std::net::TcpListener::bind(("127.0.0.1", port))
            .map_err(|e| format!("the mock provider cannot listen on 127.0.0.1:{port}: {e}"))?;
        listener.set_nonblocking(true).map_err(|e| e.to_string())?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let issuer = format!("http://127.0.0.1:{}", addr.port());

        let (key, jwk) = Key::generate(alg)?;
        let jwks = json!({ "keys": [jwk] });

        let state = Arc::new(MockState {
            issuer: issuer.clone(),
            alg,
            key,
            jwks,
            latency,
            grants: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
            counters: Counters::default(),
            errors: Mutex::new(BTreeMap::new()),
            token_service_us: Mutex::new(Vec::new()),
        });
        let router = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks_handler))
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .route("/userinfo", get(userinfo))
            .with_state(state.clone());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name(THREAD_NAME.into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .max_blocking_threads(std::thread::available_parallelism().map_or(2, |n| n.get()))
                    // Threads that stay alive keep their CPU time readable (see THREAD_NAME).
                    .thread_keep_alive(Duration::from_secs(3600))
                    .thread_name(THREAD_NAME)
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => return eprintln!("error: the mock provider's runtime: {e}"),
                };
                runtime.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => l,
                        Err(e) => return eprintln!("error: the mock provider's listener: {e}"),
                    };
                    let shutdown = async move {
                        let _ = rx.await;
                    };
                    if let Err(e) = axum::serve(listener, router).with_graceful_shutdown(shutdown).await {
                        eprintln!("error: the mock provider stopped: {e}");
                    }
                });
                // Keep-alive connections of finished virtual users must not hold the program up.
                runtime.shutdown_timeout(Duration::from_millis(100));
            })
            .map_err(|e| e.to_string())?;
        Ok(Mock { issuer, state, shutdown: Some(tx) })
    }

    /// Everything the mock refused: kind → (count, example).
    pub fn errors(&self) -> BTreeMap<String, (u64, String)> {
        self.state.errors.lock().map(|e| e.clone()).unwrap_or_default()
    }
}

async fn discovery(State(s): State<Arc<MockState>>) -> Response {
    s.counters.discovery.fetch_add(1, Ordering::Relaxed);
    let issuer = &s.issuer;
    Json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "userinfo_endpoint": format!("{issuer}/userinfo"),
        "jwks_uri": format!("{issuer}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [s.alg.name()],
        "scopes_supported": ["openid", "email", "profile"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "grant_types_supported": ["authorization_code"],
        "claims_supported": ["sub", "email", "email_verified"],
        "authorization_response_iss_parameter_supported": true,
    }))
    .into_response()
}

async fn jwks_handler(State(s): State<Arc<MockState>>) -> Response {
    s.counters.jwks.fetch_add(1, Ordering::Relaxed);
    Json(s.jwks.clone()).into_response()
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

fn bad_request(s: &MockState, kind: &str, detail: String) -> Response {
    s.refuse(kind, detail.clone());
    (StatusCode::BAD_REQUEST, format!("mock provider: {kind}: {detail}\n")).into_response()
}

/// Checks the authorization request and redirects straight back with a code.
async fn authorize(State(s): State<Arc<MockState>>, Query(q): Query<HashMap<String, String>>) -> Response {
    s.counters.authorize.fetch_add(1, Ordering::Relaxed);
    let param = |k: &str| q.get(k).map(String::as_str).unwrap_or_default();
    let problem = if param("response_type") != "code" {
        Some("response_type is not code")
    } else if param("client_id") != CLIENT_ID {
        Some("unknown client_id")
    } else if !param("scope").split(' ').any(|s| s == "openid") {
        Some("scope lacks openid")
    } else if param("code_challenge_method") != "S256" || param("code_challenge").len() < 43 {
        Some("no S256 PKCE challenge")
    } else if param("state").is_empty() {
        Some("no state")
    } else if param("nonce").is_empty() {
        Some("no nonce")
    } else if param("login_hint").is_empty() {
        Some("no login_hint (the load generator names the user with it)")
    } else {
        None
    };
    if let Some(problem) = problem {
        return bad_request(&s, "authorize", problem.to_owned());
    }
    let redirect = match Url::parse(param("redirect_uri")) {
        Ok(url) if is_loopback(&url) && url.fragment().is_none() => url,
        _ => {
            return bad_request(
                &s,
                "authorize",
                format!("redirect_uri {:?} is not a loopback URL", param("redirect_uri")),
            )
        }
    };
    let code = random_token(32);
    let grant = Grant {
        email: param("login_hint").to_owned(),
        nonce: param("nonce").to_owned(),
        challenge: param("code_challenge").to_owned(),
        redirect_uri: param("redirect_uri").to_owned(),
    };
    if let Ok(mut grants) = s.grants.lock() {
        // Codes of abandoned flows are not kept forever.
        if grants.len() > 100_000 {
            grants.clear();
        }
        grants.insert(code.clone(), grant);
    }
    let mut location = redirect;
    location
        .query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", param("state"))
        .append_pair("iss", &s.issuer);
    (StatusCode::FOUND, [(header::LOCATION, location.to_string())]).into_response()
}

fn token_error(s: &MockState, status: StatusCode, error: &str, detail: String) -> Response {
    s.refuse(&format!("token {error}"), detail.clone());
    (status, Json(json!({ "error": error, "error_description": detail }))).into_response()
}

/// Decodes one form-urlencoded component (RFC 6749 §2.3.1 encodes Basic credentials so).
fn form_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("v={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// Exchanges a code: client authentication, single use, redirect URI and PKCE, then the tokens.
/// The mock's whole time on each token request (latency included), by code, so that a virtual user
/// can subtract it from its callback and get loginwith's own share ("callback − provider").
pub static TOKEN_TIME_BY_CODE: std::sync::LazyLock<Mutex<HashMap<String, Duration>>> =
    std::sync::LazyLock::new(|| Mutex::new(HashMap::new()));

async fn token(State(s): State<Arc<MockState>>, headers: HeaderMap, body: Bytes) -> Response {
    let entered = Instant::now();
    s.counters.token.fetch_add(1, Ordering::Relaxed);
    if !s.latency.is_zero() {
        // Uniform in [0.5, 1.5] × the latency: real providers vary, and a fixed delay would keep
        // the virtual users in lockstep, all arriving at the callback in the same instant.
        let factor = 0.5 + rand::random::<f64>();
        tokio::time::sleep(s.latency.mul_f64(factor)).await;
    }
    let started = Instant::now();
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or_default();
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64.trim()).ok())
        .and_then(|bytes| String::from_utf8(bytes).ok());
    let (id, secret) = match &basic {
        Some(pair) => {
            let (id, secret) = pair.split_once(':').unwrap_or((pair.as_str(), ""));
            (form_decode(id), form_decode(secret))
        }
        None => (field("client_id").to_owned(), field("client_secret").to_owned()),
    };
    if id != CLIENT_ID || secret != CLIENT_SECRET {
        return token_error(&s, StatusCode::UNAUTHORIZED, "invalid_client", format!("client {id:?}"));
    }
    if field("grant_type") != "authorization_code" {
        return token_error(
            &s,
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            field("grant_type").into(),
        );
    }
    let grant = s.grants.lock().ok().and_then(|mut g| g.remove(field("code")));
    let Some(grant) = grant else {
        return token_error(&s, StatusCode::BAD_REQUEST, "invalid_grant", "unknown or used code".into());
    };
    if field("redirect_uri") != grant.redirect_uri {
        return token_error(&s, StatusCode::BAD_REQUEST, "invalid_grant", "redirect_uri differs".into());
    }
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(Sha256::digest(field("code_verifier").as_bytes()));
    if challenge != grant.challenge {
        return token_error(&s, StatusCode::BAD_REQUEST, "invalid_grant", "PKCE verifier mismatch".into());
    }
    let access_token = random_token(32);
    if let Ok(mut tokens) = s.tokens.lock() {
        if tokens.len() > 100_000 {
            tokens.clear();
        }
        tokens.insert(access_token.clone(), grant.email.clone());
    }
    // RSA signing takes a millisecond or two: off the async worker.
    let signer = s.clone();
    let at = access_token.clone();
    let id_token = match tokio::task::spawn_blocking(move || signer.id_token(&grant, &at)).await {
        Ok(Ok(jwt)) => jwt,
        Ok(Err(e)) => return token_error(&s, StatusCode::INTERNAL_SERVER_ERROR, "server_error", e),
        Err(e) => return token_error(&s, StatusCode::INTERNAL_SERVER_ERROR, "server_error", e.to_string()),
    };
    let response = (
        [(header::CACHE_CONTROL, "no-store")],
        Json(json!({
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": 3600,
            "scope": "openid email profile",
            "id_token": id_token,
        })),
    )
        .into_response();
    if let Ok(mut times) = TOKEN_TIME_BY_CODE.lock() {
        if times.len() > 100_000 {
            times.clear();
        }
        times.insert(field("code").to_owned(), entered.elapsed());
    }
    let us = u32::try_from(started.elapsed().as_micros()).unwrap_or(u32::MAX);
    if let Ok(mut samples) = s.token_service_us.lock() {
        samples.push(us);
    }
    response
}

async fn userinfo(State(s): State<Arc<MockState>>, headers: HeaderMap) -> Response {
    s.counters.userinfo.fetch_add(1, Ordering::Relaxed);
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    let email = token.and_then(|t| s.tokens.lock().ok().and_then(|m| m.get(&t).cloned()));
    match email {
        Some(email) => Json(json!({
            "sub": subject_for(&email),
            "email": email,
            "email_verified": true,
        }))
        .into_response(),
        None => {
            s.refuse("userinfo", "unknown access token".into());
            (StatusCode::UNAUTHORIZED, Json(json!({"error": "invalid_token"}))).into_response()
        }
    }
}
