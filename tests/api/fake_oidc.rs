//! A hostile OpenID Connect provider on a random loopback port. It serves discovery, a key set,
//! a token endpoint and a userinfo endpoint, counts every request, and answers whatever the test
//! scripted: the published issuer (even a wrong one, and per tenant path for Entra's domain
//! tenants), the key set (for rotation), the ID token the next `/token` call returns (signed with
//! any key, any claims, or not at all — or one per authorization code, for concurrent logins) and
//! the userinfo document.
//!
//! The tests drive logins without a browser: `app.begin_login("oidc")` gives the authorize URL,
//! whose `state` and `nonce` the test reads ([`Attempt`]); it then has the fake mint an ID token
//! and calls `/callback/NAME` itself.
//!
//! ID tokens are signed with the `openidconnect` crate when it can make them
//! ([`FakeOidc::sign`], [`FakeOidc::sign_hmac`]); tokens it refuses to make (`alg: none`, no `sub`,
//! Microsoft's claims) are built by hand ([`sign_json_rs256`], [`unsigned_jwt`]).

#![allow(dead_code)]

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use openidconnect::core::{
    CoreHmacKey, CoreIdToken, CoreIdTokenClaims, CoreJwsSigningAlgorithm, CoreRsaPrivateSigningKey,
};
use openidconnect::{
    AccessToken, Audience, EmptyAdditionalClaims, EndUserEmail, IssuerUrl, JsonWebKeyId, Nonce,
    PrivateSigningKey, StandardClaims, SubjectIdentifier,
};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// The first test key (PKCS#1 PEM), published as `kid` "k1" by default.
pub const RSA1_PEM: &str = include_str!("../fixtures/rsa1.pem");
/// The second test key, for rotation and for signatures by a key the provider never published.
pub const RSA2_PEM: &str = include_str!("../fixtures/rsa2.pem");

/// The client the server is configured with.
pub const CLIENT_ID: &str = "oidc-client";
pub const CLIENT_SECRET: &str = "oidc-secret";
/// What `/token` returns as the access token (ID tokens get their `at_hash` from it).
pub const ACCESS_TOKEN: &str = "fake-oidc-access-token";

/// An RSA signing key for the `openidconnect` crate.
pub fn rsa_key(pem: &str, kid: &str) -> CoreRsaPrivateSigningKey {
    CoreRsaPrivateSigningKey::from_pem(pem, Some(JsonWebKeyId::new(kid.to_owned()))).expect("test RSA key")
}

/// The first key as `kid` "k1".
pub fn key1() -> CoreRsaPrivateSigningKey {
    rsa_key(RSA1_PEM, "k1")
}

/// The second key as `kid` "k2".
pub fn key2() -> CoreRsaPrivateSigningKey {
    rsa_key(RSA2_PEM, "k2")
}

/// A key set of the public halves of `keys`.
pub fn jwks_of(keys: &[&CoreRsaPrivateSigningKey]) -> Value {
    json!({ "keys": keys.iter().map(|k| k.as_verification_key()).collect::<Vec<_>>() })
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A compact JWS signed by hand with RS256 (for claims the `openidconnect` crate will not
/// serialise, such as Microsoft's `tid`, `oid` and `xms_edov`, or a token without `sub`).
pub fn sign_json_rs256(pem: &str, kid: &str, claims: &Value) -> String {
    use rsa::pkcs1::DecodeRsaPrivateKey;
    use rsa::signature::{SignatureEncoding, Signer};
    let key = rsa::RsaPrivateKey::from_pkcs1_pem(pem).expect("test RSA key");
    let signer = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(key);
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": kid});
    let input = format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()));
    let signature = signer.sign(input.as_bytes()).to_bytes();
    format!("{input}.{}", b64(&signature))
}

/// A JWT with `alg: none` and an empty signature.
pub fn unsigned_jwt(claims: &Value) -> String {
    let header = json!({"alg": "none", "typ": "JWT"});
    format!("{}.{}.", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()))
}

/// The same JWT with some bytes of its signature flipped.
pub fn corrupt_signature(jwt: &str) -> String {
    let (input, signature) = jwt.rsplit_once('.').expect("a compact JWS");
    let mut bytes = URL_SAFE_NO_PAD.decode(signature).expect("base64url signature");
    assert!(!bytes.is_empty(), "nothing to corrupt");
    for i in [0, bytes.len() / 2, bytes.len() - 1] {
        bytes[i] ^= 0x5a;
    }
    format!("{input}.{}", b64(&bytes))
}

/// Seconds since the epoch.
pub fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

/// One login attempt as the authorize redirect describes it.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// The whole authorize URL.
    pub url: String,
    pub state: String,
    pub nonce: String,
}

impl Attempt {
    pub fn from_url(url: &str) -> Attempt {
        let param = |name: &str| {
            crate::helpers::query_param(url, name)
                .unwrap_or_else(|| panic!("the authorize URL has no {name}: {url}"))
        };
        Attempt { url: url.to_owned(), state: param("state"), nonce: param("nonce") }
    }

    pub fn param(&self, name: &str) -> Option<String> {
        crate::helpers::query_param(&self.url, name)
    }
}

#[derive(Debug)]
pub struct FakeState {
    pub base: String,
    pub discovery_requests: AtomicUsize,
    pub jwks_requests: AtomicUsize,
    pub token_requests: AtomicUsize,
    pub userinfo_requests: AtomicUsize,
    /// The `issuer` member of the discovery document.
    pub issuer: Mutex<String>,
    /// The `issuer` published by `/{tenant}/v2.0/.well-known/openid-configuration` for these
    /// tenant path segments (others publish `issuer`).
    pub tenant_issuers: Mutex<HashMap<String, String>>,
    pub iss_parameter_supported: AtomicBool,
    /// Members that replace the discovery document's own (e.g. a `token_endpoint` elsewhere).
    pub document_overrides: Mutex<serde_json::Map<String, Value>>,
    pub algorithms: Mutex<Vec<String>>,
    pub jwks: Mutex<Value>,
    /// How long `/jwks` takes to answer (a slow provider keeps a refetch in flight).
    pub jwks_delay: Mutex<Option<std::time::Duration>>,
    /// What the next `/token` call returns as `id_token` (`None`: no `id_token` member).
    pub id_token: Mutex<Option<String>>,
    /// What a `/token` call for one of these codes returns as `id_token`, before `id_token`.
    pub id_tokens_by_code: Mutex<HashMap<String, String>>,
    pub access_token: Mutex<String>,
    pub userinfo: Mutex<Value>,
    pub last_token_form: Mutex<HashMap<String, String>>,
    pub last_token_auth: Mutex<Option<String>>,
    /// When set, `/token` first authenticates the client with it: the form and the
    /// `Authorization` header in, `Err(error code)` answers 401 with that OAuth error.
    pub client_check: Mutex<Option<ClientCheck>>,
    pub last_userinfo_auth: Mutex<Option<String>>,
    /// When set, `/.well-known/openid-configuration` answers exactly this instead of the document.
    pub raw_discovery: Mutex<Option<crate::mock_provider::Scripted>>,
    /// When set, `/jwks` answers exactly this instead of the key set.
    pub raw_jwks: Mutex<Option<crate::mock_provider::Scripted>>,
}

/// How the fake's `/token` authenticates a client (see [`FakeOidc::check_clients_with`]): the
/// form and the `Authorization` header in, `Err(OAuth error code)` to refuse.
#[derive(Clone)]
pub struct ClientCheck(pub Arc<ClientCheckFn>);

/// What a [`ClientCheck`] calls.
pub type ClientCheckFn = dyn Fn(&HashMap<String, String>, Option<&str>) -> Result<(), String> + Send + Sync;

impl std::fmt::Debug for ClientCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientCheck")
    }
}

/// The fake provider. Dropping it stops it.
pub struct FakeOidc {
    /// `http://127.0.0.1:PORT`, which is also the issuer it publishes by default.
    pub base: String,
    pub state: Arc<FakeState>,
    _server: crate::helpers::Served,
}

impl FakeOidc {
    /// A provider that publishes its own base URL as issuer, RS256 only, the RFC 9207 `iss`
    /// parameter, and the key set `[k1]`.
    pub async fn start() -> FakeOidc {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind fake OIDC provider");
        let addr = listener.local_addr().expect("fake OIDC address");
        let base = format!("http://{addr}");
        let state = Arc::new(FakeState {
            base: base.clone(),
            discovery_requests: AtomicUsize::new(0),
            jwks_requests: AtomicUsize::new(0),
            token_requests: AtomicUsize::new(0),
            userinfo_requests: AtomicUsize::new(0),
            issuer: Mutex::new(base.clone()),
            tenant_issuers: Mutex::new(HashMap::new()),
            iss_parameter_supported: AtomicBool::new(true),
            document_overrides: Mutex::new(serde_json::Map::new()),
            algorithms: Mutex::new(vec!["RS256".into()]),
            jwks: Mutex::new(jwks_of(&[&key1()])),
            jwks_delay: Mutex::new(None),
            id_token: Mutex::new(None),
            id_tokens_by_code: Mutex::new(HashMap::new()),
            access_token: Mutex::new(ACCESS_TOKEN.into()),
            userinfo: Mutex::new(
                json!({"sub": "user-1", "email": "user@example.com", "email_verified": true}),
            ),
            last_token_form: Mutex::new(HashMap::new()),
            last_token_auth: Mutex::new(None),
            client_check: Mutex::new(None),
            last_userinfo_auth: Mutex::new(None),
            raw_discovery: Mutex::new(None),
            raw_jwks: Mutex::new(None),
        });
        let router = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            // Microsoft-style discovery under a tenant path, e.g. `/common/v2.0/.well-known/...`.
            .route("/{tenant}/v2.0/.well-known/openid-configuration", get(tenant_discovery))
            // Keycloak-style discovery under a realm, e.g. `/realms/main/.well-known/...`: the same
            // document (publish the realm's issuer with `set_issuer`).
            .route("/realms/{realm}/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .route("/token", post(token))
            .route("/userinfo", get(userinfo))
            .with_state(state.clone());
        let _server = crate::helpers::serve_until_dropped(listener, router);
        FakeOidc { base, state, _server }
    }

    /// `[providers.NAME]` for this provider as a generic OpenID Connect issuer, with extra keys.
    pub fn provider_toml(&self, name: &str, extra_keys: &str) -> String {
        self.provider_toml_for_issuer(name, &self.base, extra_keys)
    }

    /// Like [`provider_toml`](Self::provider_toml), configured with `issuer` (e.g. the base with a
    /// trailing slash).
    pub fn provider_toml_for_issuer(&self, name: &str, issuer: &str, extra_keys: &str) -> String {
        format!(
            "[providers.{name}]\nissuer = \"{issuer}\"\nclient_id = \"{CLIENT_ID}\"\nclient_secret = \"{CLIENT_SECRET}\"\n{extra_keys}\n"
        )
    }

    /// `[providers.oidc]` for this provider.
    pub fn toml(&self) -> String {
        self.provider_toml("oidc", "")
    }

    /// The issuer the discovery document publishes.
    pub fn set_issuer(&self, issuer: &str) {
        *self.state.issuer.lock().unwrap() = issuer.to_owned();
    }
    /// The issuer published by the discovery document under `/{tenant}/v2.0` — as Entra publishes
    /// the tenant's id issuer `{authority}/{guid}/v2.0` when asked by the tenant's domain name.
    pub fn set_tenant_issuer(&self, tenant: &str, issuer: &str) {
        self.state.tenant_issuers.lock().unwrap().insert(tenant.to_owned(), issuer.to_owned());
    }
    /// Whether discovery promises the RFC 9207 `iss` parameter.
    pub fn set_iss_parameter_supported(&self, yes: bool) {
        self.state.iss_parameter_supported.store(yes, Ordering::SeqCst);
    }
    /// Publishes `value` as the discovery document's `member`, in place of its own.
    pub fn override_document(&self, member: &str, value: Value) {
        self.state.document_overrides.lock().unwrap().insert(member.to_owned(), value);
    }
    /// `id_token_signing_alg_values_supported`.
    pub fn set_algorithms(&self, algs: &[&str]) {
        *self.state.algorithms.lock().unwrap() = algs.iter().map(|a| (*a).to_owned()).collect();
    }
    /// The key set `/jwks` serves.
    pub fn set_jwks(&self, jwks: Value) {
        *self.state.jwks.lock().unwrap() = jwks;
    }
    /// How long `/jwks` waits before answering.
    pub fn set_jwks_delay(&self, delay: std::time::Duration) {
        *self.state.jwks_delay.lock().unwrap() = Some(delay);
    }
    /// The `id_token` the next `/token` answers carry.
    pub fn set_id_token(&self, jwt: impl Into<String>) {
        *self.state.id_token.lock().unwrap() = Some(jwt.into());
    }
    /// The `id_token` that `/token` answers for the authorization code `code`.
    pub fn set_id_token_for_code(&self, code: &str, jwt: impl Into<String>) {
        self.state.id_tokens_by_code.lock().unwrap().insert(code.to_owned(), jwt.into());
    }
    /// Authenticate each `/token` request's client with `check` before answering (by default any
    /// client is taken, and the tests look at what it sent).
    pub fn check_clients_with(&self, check: ClientCheck) {
        *self.state.client_check.lock().unwrap() = Some(check);
    }
    /// The userinfo document.
    pub fn set_userinfo(&self, value: Value) {
        *self.state.userinfo.lock().unwrap() = value;
    }
    /// Answer discovery with exactly `raw` (status, content type, bytes); `None` restores the
    /// generated document.
    pub fn set_raw_discovery(&self, raw: Option<crate::mock_provider::Scripted>) {
        *self.state.raw_discovery.lock().unwrap() = raw;
    }
    /// Answer `/jwks` with exactly `raw`; `None` restores the scripted key set.
    pub fn set_raw_jwks(&self, raw: Option<crate::mock_provider::Scripted>) {
        *self.state.raw_jwks.lock().unwrap() = raw;
    }
    pub fn access_token(&self) -> String {
        self.state.access_token.lock().unwrap().clone()
    }

    pub fn discovery_requests(&self) -> usize {
        self.state.discovery_requests.load(Ordering::SeqCst)
    }
    pub fn jwks_requests(&self) -> usize {
        self.state.jwks_requests.load(Ordering::SeqCst)
    }
    pub fn token_requests(&self) -> usize {
        self.state.token_requests.load(Ordering::SeqCst)
    }
    pub fn userinfo_requests(&self) -> usize {
        self.state.userinfo_requests.load(Ordering::SeqCst)
    }
    pub fn last_token_form(&self) -> HashMap<String, String> {
        self.state.last_token_form.lock().unwrap().clone()
    }
    pub fn last_token_auth(&self) -> Option<String> {
        self.state.last_token_auth.lock().unwrap().clone()
    }
    pub fn last_userinfo_auth(&self) -> Option<String> {
        self.state.last_userinfo_auth.lock().unwrap().clone()
    }

    /// Claims the server accepts for `nonce`: our issuer, our client, valid for 5 minutes from
    /// now, subject `user-1` with the verified address `user@example.com`.
    pub fn claims(&self, nonce: &str) -> CoreIdTokenClaims {
        self.claims_for(nonce, "user-1", Some("user@example.com"))
    }

    /// Like [`claims`](Self::claims) for another subject and address (`None`: no `email` claim).
    pub fn claims_for(&self, nonce: &str, sub: &str, email: Option<&str>) -> CoreIdTokenClaims {
        let now = chrono::Utc::now();
        let mut standard = StandardClaims::new(SubjectIdentifier::new(sub.to_owned()));
        if let Some(email) = email {
            standard =
                standard.set_email(Some(EndUserEmail::new(email.to_owned()))).set_email_verified(Some(true));
        }
        CoreIdTokenClaims::new(
            IssuerUrl::new(self.base.clone()).expect("issuer URL"),
            vec![Audience::new(CLIENT_ID.to_owned())],
            now + chrono::Duration::minutes(5),
            now,
            standard,
            EmptyAdditionalClaims {},
        )
        .set_nonce(Some(Nonce::new(nonce.to_owned())))
    }

    /// RS256 with `key`, `at_hash` computed for the access token `/token` returns.
    pub fn sign(&self, claims: CoreIdTokenClaims, key: &CoreRsaPrivateSigningKey) -> String {
        self.sign_for_access_token(claims, key, &self.access_token())
    }

    /// RS256 with `key`, `at_hash` computed for `access_token`.
    pub fn sign_for_access_token(
        &self,
        claims: CoreIdTokenClaims,
        key: &CoreRsaPrivateSigningKey,
        access_token: &str,
    ) -> String {
        let token = AccessToken::new(access_token.to_owned());
        CoreIdToken::new(claims, key, CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256, Some(&token), None)
            .expect("sign ID token")
            .to_string()
    }

    /// HS256 with `secret` (no `at_hash`).
    pub fn sign_hmac(&self, claims: CoreIdTokenClaims, secret: &str) -> String {
        CoreIdToken::new(
            claims,
            &CoreHmacKey::new(secret.as_bytes().to_vec()),
            CoreJwsSigningAlgorithm::HmacSha256,
            None,
            None,
        )
        .expect("sign HS256 ID token")
        .to_string()
    }

    /// Claims as JSON for hand-made tokens: the accepted ones for `nonce`.
    pub fn json_claims(&self, nonce: &str) -> Value {
        let now = now_secs();
        json!({
            "iss": self.base,
            "aud": CLIENT_ID,
            "exp": now + 300,
            "iat": now,
            "nonce": nonce,
            "sub": "user-1",
            "email": "user@example.com",
            "email_verified": true,
        })
    }
}

async fn discovery(State(state): State<Arc<FakeState>>) -> Response {
    discovery_document(&state, None).await
}

async fn tenant_discovery(State(state): State<Arc<FakeState>>, Path(tenant): Path<String>) -> Response {
    let published = state.tenant_issuers.lock().unwrap().get(&tenant).cloned();
    discovery_document(&state, published).await
}

async fn discovery_document(state: &FakeState, issuer: Option<String>) -> Response {
    state.discovery_requests.fetch_add(1, Ordering::SeqCst);
    let raw = state.raw_discovery.lock().unwrap().clone();
    if let Some(raw) = raw {
        return crate::mock_provider::scripted_response(raw).await;
    }
    let base = &state.base;
    let issuer = issuer.unwrap_or_else(|| state.issuer.lock().unwrap().clone());
    let algorithms = state.algorithms.lock().unwrap().clone();
    let mut document = json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{base}/authorize"),
        "token_endpoint": format!("{base}/token"),
        "userinfo_endpoint": format!("{base}/userinfo"),
        "jwks_uri": format!("{base}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": algorithms,
        "authorization_response_iss_parameter_supported": state.iss_parameter_supported.load(Ordering::SeqCst),
    });
    for (member, value) in state.document_overrides.lock().unwrap().iter() {
        document[member] = value.clone();
    }
    Json(document).into_response()
}

async fn jwks(State(state): State<Arc<FakeState>>) -> Response {
    state.jwks_requests.fetch_add(1, Ordering::SeqCst);
    let delay = *state.jwks_delay.lock().unwrap();
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    let raw = state.raw_jwks.lock().unwrap().clone();
    if let Some(raw) = raw {
        return crate::mock_provider::scripted_response(raw).await;
    }
    let body = state.jwks.lock().unwrap().clone();
    Json(body).into_response()
}

async fn token(State(state): State<Arc<FakeState>>, headers: HeaderMap, body: Bytes) -> Response {
    state.token_requests.fetch_add(1, Ordering::SeqCst);
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let for_code =
        form.get("code").and_then(|code| state.id_tokens_by_code.lock().unwrap().get(code).cloned());
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let check = state.client_check.lock().unwrap().clone();
    let client = check.map_or(Ok(()), |check| (check.0)(&form, authorization.as_deref()));
    *state.last_token_form.lock().unwrap() = form;
    *state.last_token_auth.lock().unwrap() = authorization;
    if let Err(error) = client {
        return (StatusCode::UNAUTHORIZED, Json(json!({"error": error}))).into_response();
    }
    let mut answer = json!({
        "access_token": state.access_token.lock().unwrap().clone(),
        "token_type": "Bearer",
        "expires_in": 300,
    });
    if let Some(jwt) = for_code.or_else(|| state.id_token.lock().unwrap().clone()) {
        answer["id_token"] = json!(jwt);
    }
    ([(header::CACHE_CONTROL, "no-store")], Json(answer)).into_response()
}

async fn userinfo(State(state): State<Arc<FakeState>>, headers: HeaderMap) -> Response {
    state.userinfo_requests.fetch_add(1, Ordering::SeqCst);
    *state.last_userinfo_auth.lock().unwrap() =
        headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let expected = format!("Bearer {}", state.access_token.lock().unwrap());
    if state.last_userinfo_auth.lock().unwrap().as_deref() != Some(expected.as_str()) {
        return (StatusCode::UNAUTHORIZED, Json(json!({"error": "invalid_token"}))).into_response();
    }
    Json(state.userinfo.lock().unwrap().clone()).into_response()
}

/// `GET /callback/NAME?code=x&state=...` (and `&iss=...` when given), as the browser would.
pub async fn callback(
    app: &crate::helpers::TestApp,
    provider: &str,
    attempt: &Attempt,
    iss: Option<&str>,
) -> reqwest::Response {
    callback_with_code(app, provider, attempt, "x", iss).await
}

/// Like [`callback`], with the authorization code `code`.
pub async fn callback_with_code(
    app: &crate::helpers::TestApp,
    provider: &str,
    attempt: &Attempt,
    code: &str,
    iss: Option<&str>,
) -> reqwest::Response {
    let mut url = url::Url::parse(&app.url(&format!("/callback/{provider}"))).expect("callback URL");
    {
        let mut query = url.query_pairs_mut();
        query.append_pair("code", code).append_pair("state", &attempt.state);
        if let Some(iss) = iss {
            query.append_pair("iss", iss);
        }
    }
    app.get_url(url.as_str()).await
}

/// Asserts a 403 "Login refused" page that says `why`, and that nobody is logged in or stored.
pub async fn expect_refused(app: &crate::helpers::TestApp, response: reqwest::Response, why: &str) {
    let page = crate::helpers::expect_page(response, StatusCode::FORBIDDEN, "Login refused").await;
    assert!(page.contains(why), "the refusal should say {why:?}:\n{page}");
    app.assert_logged_out().await;
    assert_eq!(app.user_count().await, 0, "a refused login must not create a user");
}

/// Asserts the callback ended in a login as `email` (303 to `/`).
pub async fn expect_logged_in(app: &crate::helpers::TestApp, response: reqwest::Response, email: &str) {
    let status = response.status();
    if status != StatusCode::SEE_OTHER {
        let page = response.text().await.unwrap_or_default();
        panic!("the callback should log in and redirect home, got {status}:\n{page}");
    }
    assert_eq!(crate::helpers::location(&response), "/");
    app.assert_logged_in_as(email).await;
}

/// Undoes the HTML escaping of an attribute value (minijinja escapes `&<>"'/`).
pub fn html_unescape(text: &str) -> String {
    text.replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&#39;", "'")
        .replace("&#x2f;", "/")
        .replace("&#x2F;", "/")
        .replace("&#47;", "/")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The `name`/`value` pairs of the hidden inputs of a page's form `id="resubmit"`.
pub fn resubmit_fields(page: &str) -> Vec<(String, String)> {
    let start = page.find("id=\"resubmit\"").unwrap_or_else(|| panic!("no resubmit form:\n{page}"));
    let form = &page[start..page[start..].find("</form>").map_or(page.len(), |end| start + end)];
    let attr = |tag: &str, name: &str| -> Option<String> {
        let key = format!("{name}=\"");
        let from = tag.find(&key)? + key.len();
        let to = tag[from..].find('"')? + from;
        Some(html_unescape(&tag[from..to]))
    };
    form.split("<input")
        .skip(1)
        .filter(|tag| tag.contains("type=\"hidden\""))
        .filter_map(|tag| Some((attr(tag, "name")?, attr(tag, "value")?)))
        .collect()
}
