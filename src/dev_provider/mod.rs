//! The built-in development provider: a real OpenID Connect provider in miniature, served by the
//! same process under `/dev-provider/`, so that a new user can log in offline with no credentials,
//! through the very client code that talks to Google: discovery document, JWKS with an Ed25519 key
//! generated per process, EdDSA-signed ID tokens echoing the nonce (with `at_hash`), and the
//! RFC 9207 `iss` parameter on the authorization response.
//!
//! It believes whatever address is typed on its page, so it is for development only: every page
//! says so, and the app refuses to mount it on a non-loopback address unless forced.
//! It still checks what a real server checks — client id and secret, exact redirect URI, PKCE S256,
//! single-use short-lived codes — so that the client's handling of those is exercised.
//! Codes and tokens live in memory (a restart forgets them), in `moka` caches with a time to live
//! and a cap, so that nothing grows without bound.

use crate::domain::secret::{random_token, ClientSecret};
use crate::domain::Email;
use crate::templates::render;
use axum::extract::{Form, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use axum_extra::headers::authorization::{Basic, Bearer};
use axum_extra::headers::Authorization;
use axum_extra::typed_header::TypedHeaderRejection;
use axum_extra::TypedHeader;
use base64::Engine;
use moka::policy::EvictionPolicy;
use moka::sync::Cache;
use openidconnect::core::{
    CoreEdDsaPrivateSigningKey, CoreIdToken, CoreIdTokenClaims, CoreJwsSigningAlgorithm,
};
use openidconnect::{
    Audience, EmptyAdditionalClaims, EndUserEmail, EndUserName, IssuerUrl, JsonWebKeyId, Nonce,
    PrivateSigningKey, StandardClaims, SubjectIdentifier,
};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// How long a code is good for (RFC 6749 §4.1.2 recommends at most ten minutes; one is plenty here).
const CODE_TTL: Duration = Duration::from_secs(60);
/// How long an access token is good for.
const TOKEN_TTL: Duration = Duration::from_secs(3600);
/// At most this many live codes and as many live tokens; past that, the least recently used go.
const MAX_ENTRIES: u64 = 10_000;

/// The development provider's state.
pub struct DevProvider {
    client_id: String,
    client_secret: ClientSecret,
    redirect_uris: Vec<String>,
    /// `public_url/dev-provider`: the issuer, and the base browsers see.
    issuer: String,
    /// The loopback base the server calls itself on (token, userinfo, JWKS).
    loopback: String,
    /// Codes, single use: taken out with `remove`, which only one caller can win.
    codes: Cache<String, Arc<Grant>>,
    /// Access tokens, for userinfo.
    tokens: Cache<String, DevUser>,
}

#[derive(Debug, Clone)]
struct DevUser {
    email: Email,
    verified: bool,
}

#[derive(Debug)]
struct Grant {
    redirect_uri: String,
    code_challenge: String,
    nonce: Option<String>,
    openid: bool,
    user: DevUser,
    /// Checked when the code is taken: moka's `remove` hands back an entry whose time to live has
    /// passed if housekeeping has not evicted it yet (unlike `get`), so the grant keeps its own.
    expires: Instant,
}

/// Live codes and tokens are counted, never printed.
impl std::fmt::Debug for DevProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevProvider")
            .field("client_id", &self.client_id)
            .field("redirect_uris", &self.redirect_uris)
            .field("issuer", &self.issuer)
            .field("loopback", &self.loopback)
            .field("codes", &self.codes.entry_count())
            .field("tokens", &self.tokens.entry_count())
            .finish_non_exhaustive()
    }
}

/// A cache whose entries live `ttl` and number at most [`MAX_ENTRIES`]. LRU rather than moka's
/// default TinyLFU: TinyLFU may decline to admit a new entry when full, which here would hand out
/// a code or token that was never stored; at the cap, the oldest should go instead.
fn ttl_cache<V: Clone + Send + Sync + 'static>(ttl: Duration) -> Cache<String, V> {
    Cache::builder()
        .max_capacity(MAX_ENTRIES)
        .time_to_live(ttl)
        .eviction_policy(EvictionPolicy::lru())
        .build()
}

impl DevProvider {
    /// A provider that knows one client and the redirect URIs it may send codes to. `issuer` is
    /// `public_url/dev-provider`; `loopback` is `http://127.0.0.1:PORT/dev-provider`.
    pub fn new(
        client_id: &str,
        client_secret: ClientSecret,
        redirect_uris: Vec<String>,
        issuer: String,
        loopback: String,
    ) -> Self {
        Self {
            client_id: client_id.to_owned(),
            client_secret,
            redirect_uris,
            issuer,
            loopback,
            codes: ttl_cache(CODE_TTL),
            tokens: ttl_cache(TOKEN_TTL),
        }
    }

    /// `/dev-provider/authorize`, `/dev-provider/token`, `/dev-provider/userinfo`.
    pub fn router<S: Clone + Send + Sync + 'static>(self: Arc<Self>) -> Router<S> {
        Router::new()
            .route("/dev-provider/authorize", get(authorize_page).post(authorize_decision))
            .route("/dev-provider/token", axum::routing::post(token))
            .route("/dev-provider/userinfo", get(userinfo))
            .route("/dev-provider/.well-known/openid-configuration", get(discovery))
            .route("/dev-provider/jwks", get(jwks))
            .with_state(self)
    }
}

/// The stable subject for an address: the same address is the same account, across restarts.
fn subject_for(email: &Email) -> String {
    let digest = Sha256::digest(email.normalized().as_bytes());
    format!("dev-{}", hex(&digest[..12]))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The parameters of an authorization request (RFC 6749 §4.1.1, RFC 7636 §4.3).
#[derive(Debug, Deserialize, Default)]
#[serde(default)]
struct AuthorizeParams {
    response_type: String,
    client_id: String,
    redirect_uri: String,
    scope: String,
    state: String,
    code_challenge: String,
    code_challenge_method: String,
    nonce: String,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
struct Decision {
    #[serde(flatten)]
    request: AuthorizeParams,
    email: String,
    email_verified: Option<String>,
    decision: String,
}

enum Checked {
    /// Cannot redirect: unknown client or redirect URI (RFC 6749 §4.1.2.1 forbids redirecting then).
    Page(String),
    /// Can redirect back with an error code.
    Redirect(&'static str, &'static str),
}

impl DevProvider {
    fn check(&self, p: &AuthorizeParams) -> Result<(), Checked> {
        if p.client_id != self.client_id {
            return Err(Checked::Page(format!("Unknown client_id {:?}.", p.client_id)));
        }
        if !self.redirect_uris.iter().any(|u| u == &p.redirect_uri) {
            return Err(Checked::Page(format!(
                "The redirect_uri {:?} is not registered for this client.",
                p.redirect_uri
            )));
        }
        if p.response_type != "code" {
            return Err(Checked::Redirect(
                "unsupported_response_type",
                "Only response_type=code is supported.",
            ));
        }
        if p.code_challenge_method != "S256" || p.code_challenge.len() < 43 {
            return Err(Checked::Redirect("invalid_request", "PKCE with S256 is required."));
        }
        Ok(())
    }
}

fn redirect_with(redirect_uri: &str, params: &[(&str, &str)]) -> Response {
    let mut url = match url::Url::parse(redirect_uri) {
        Ok(url) => url,
        Err(_) => return dev_error(StatusCode::BAD_REQUEST, "The redirect_uri is not a URL."),
    };
    {
        let mut query = url.query_pairs_mut();
        for (k, v) in params.iter().filter(|(_, v)| !v.is_empty()) {
            query.append_pair(k, v);
        }
    }
    (StatusCode::SEE_OTHER, [(header::LOCATION, String::from(url))]).into_response()
}

fn dev_error(status: StatusCode, detail: &str) -> Response {
    render(status, "dev_error.html", json!({ "status": status.as_u16(), "detail": detail }))
}

fn refusal(dev: &DevProvider, p: &AuthorizeParams, checked: Checked) -> Response {
    match checked {
        Checked::Page(detail) => dev_error(StatusCode::BAD_REQUEST, &detail),
        Checked::Redirect(error, description) => redirect_with(
            &p.redirect_uri,
            &[
                ("error", error),
                ("error_description", description),
                ("state", &p.state),
                ("iss", &dev.issuer),
            ],
        ),
    }
}

fn consent_page(
    p: &AuthorizeParams,
    status: StatusCode,
    email: &str,
    verified: bool,
    problem: &str,
) -> Response {
    let hidden = [
        ("response_type", &p.response_type),
        ("client_id", &p.client_id),
        ("redirect_uri", &p.redirect_uri),
        ("scope", &p.scope),
        ("state", &p.state),
        ("code_challenge", &p.code_challenge),
        ("code_challenge_method", &p.code_challenge_method),
        ("nonce", &p.nonce),
    ];
    render(
        status,
        "dev_authorize.html",
        json!({
            "client_id": p.client_id, "scope": p.scope, "hidden": hidden,
            "email": email, "verified": verified, "problem": problem,
        }),
    )
}

async fn authorize_page(State(dev): State<Arc<DevProvider>>, Query(p): Query<AuthorizeParams>) -> Response {
    match dev.check(&p) {
        Ok(()) => consent_page(&p, StatusCode::OK, "", false, ""),
        Err(checked) => refusal(&dev, &p, checked),
    }
}

async fn authorize_decision(State(dev): State<Arc<DevProvider>>, Form(d): Form<Decision>) -> Response {
    let p = &d.request;
    if let Err(checked) = dev.check(p) {
        return refusal(&dev, p, checked);
    }
    if d.decision != "allow" {
        return redirect_with(
            &p.redirect_uri,
            &[
                ("error", "access_denied"),
                ("error_description", "The user denied the request."),
                ("state", &p.state),
                ("iss", &dev.issuer),
            ],
        );
    }
    let verified = d.email_verified.as_deref() == Some("true");
    let email = match Email::parse(&d.email) {
        Ok(email) => email,
        Err(problem) => return consent_page(p, StatusCode::BAD_REQUEST, &d.email, verified, &problem),
    };
    let code = random_token(32);
    let grant = Grant {
        redirect_uri: p.redirect_uri.clone(),
        code_challenge: p.code_challenge.clone(),
        nonce: Some(p.nonce.clone()).filter(|n| !n.is_empty()),
        openid: p.scope.split(' ').any(|s| s == "openid"),
        user: DevUser { email, verified },
        expires: Instant::now() + CODE_TTL,
    };
    dev.codes.insert(code.clone(), Arc::new(grant));
    redirect_with(&p.redirect_uri, &[("code", &code), ("state", &p.state), ("iss", &dev.issuer)])
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
struct TokenRequest {
    grant_type: String,
    code: String,
    redirect_uri: String,
    code_verifier: String,
    client_id: Option<String>,
    client_secret: Option<String>,
}

fn token_error(status: StatusCode, error: &str) -> Response {
    (status, [(header::CACHE_CONTROL, "no-store")], Json(json!({ "error": error }))).into_response()
}

/// Client authentication by HTTP Basic or, with no `Authorization` header, by form fields
/// (RFC 6749 §2.3.1). A header that is not valid Basic (another scheme, not base64, no colon) is
/// a failed authentication, not a reason to look at the form: RFC 6749 §5.2 counts an unsupported
/// method as `invalid_client`.
fn client_credentials(
    basic: Result<TypedHeader<Authorization<Basic>>, TypedHeaderRejection>,
    form: &TokenRequest,
) -> Option<(String, String)> {
    match basic {
        Ok(TypedHeader(Authorization(basic))) => {
            // Basic carries the id and secret form-urlencoded (RFC 6749 §2.3.1), so that a
            // colon in either survives.
            let decode = |s: &str| {
                url::form_urlencoded::parse(format!("x={s}").as_bytes()).next().map(|(_, v)| v.into_owned())
            };
            Some((decode(basic.username())?, decode(basic.password())?))
        }
        Err(rejection) if rejection.is_missing() => {
            Some((form.client_id.clone()?, form.client_secret.clone()?))
        }
        Err(_) => None,
    }
}

async fn token(
    State(dev): State<Arc<DevProvider>>,
    basic: Result<TypedHeader<Authorization<Basic>>, TypedHeaderRejection>,
    Form(form): Form<TokenRequest>,
) -> Response {
    match client_credentials(basic, &form) {
        Some((id, secret)) if id == dev.client_id && dev.client_secret.matches(&secret) => {}
        _ => return token_error(StatusCode::UNAUTHORIZED, "invalid_client"),
    }
    if form.grant_type != "authorization_code" {
        return token_error(StatusCode::BAD_REQUEST, "unsupported_grant_type");
    }
    // Single use: the code leaves the cache before anything else is checked, and of two requests
    // racing with one code only one gets it out.
    let grant = dev.codes.remove(&form.code);
    let Some(grant) = grant.filter(|g| g.expires > Instant::now()) else {
        return token_error(StatusCode::BAD_REQUEST, "invalid_grant");
    };
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(Sha256::digest(form.code_verifier.as_bytes()));
    if grant.redirect_uri != form.redirect_uri || challenge != grant.code_challenge {
        return token_error(StatusCode::BAD_REQUEST, "invalid_grant");
    }
    let access_token = random_token(32);
    let id_token = if grant.openid {
        // Ed25519 signs in microseconds: no need to leave the async thread.
        match dev.id_token(&grant.user, grant.nonce.clone(), &access_token) {
            Some(jwt) => Some(jwt),
            None => return token_error(StatusCode::INTERNAL_SERVER_ERROR, "server_error"),
        }
    } else {
        None
    };
    dev.tokens.insert(access_token.clone(), grant.user.clone());
    let mut body =
        json!({ "access_token": access_token, "token_type": "Bearer", "expires_in": TOKEN_TTL.as_secs() });
    if let Some(jwt) = id_token {
        body["id_token"] = json!(jwt);
    }
    ([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
}

/// The development provider's Ed25519 key, made once per process on first use (microseconds, so
/// nobody waits for it). `None` only if encoding the key for `openidconnect` failed, which it
/// does not for a well-formed seed.
fn signing_key() -> Option<&'static CoreEdDsaPrivateSigningKey> {
    static KEY: OnceLock<Option<CoreEdDsaPrivateSigningKey>> = OnceLock::new();
    KEY.get_or_init(|| {
        use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
        use ed25519_dalek::pkcs8::EncodePrivateKey;
        use rand::RngCore;
        let mut seed = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut seed);
        let key = ed25519_dalek::SigningKey::from_bytes(&seed);
        // openidconnect takes an Ed25519 key only as PKCS#8 PEM.
        let pem = key.to_pkcs8_pem(LineEnding::LF).ok()?;
        let kid = JsonWebKeyId::new(format!("dev-{}", &random_token(6)));
        CoreEdDsaPrivateSigningKey::from_ed25519_pem(&pem, Some(kid)).ok()
    })
    .as_ref()
}

impl DevProvider {
    /// An EdDSA ID token for `user`, echoing the nonce, with `at_hash` for the access token: the
    /// left half of its SHA-512 hash. `EdDSA` alone does not name a hash; the OpenID Connect working
    /// group settled on SHA-512 for Ed25519 (connect issue #1125, now in the "Token Hash
    /// Algorithms" implementer's guide), and `openidconnect` picks it from the key's curve on both
    /// sides: here from our key, in the client from the provider's JWKS key.
    fn id_token(&self, user: &DevUser, nonce: Option<String>, access_token: &str) -> Option<String> {
        let key = signing_key()?;
        let now = chrono::Utc::now();
        let claims = CoreIdTokenClaims::new(
            IssuerUrl::new(self.issuer.clone()).ok()?,
            vec![Audience::new(self.client_id.clone())],
            now + chrono::Duration::minutes(5),
            now,
            StandardClaims::new(SubjectIdentifier::new(subject_for(&user.email)))
                .set_email(Some(EndUserEmail::new(user.email.as_str().to_owned())))
                .set_email_verified(Some(user.verified))
                .set_name(Some(EndUserName::new(user.email.local_part().to_owned()).into())),
            EmptyAdditionalClaims {},
        )
        .set_nonce(nonce.map(Nonce::new));
        let token = openidconnect::AccessToken::new(access_token.to_owned());
        let jwt = CoreIdToken::new(claims, key, CoreJwsSigningAlgorithm::EdDsa, Some(&token), None).ok()?;
        Some(jwt.to_string())
    }
}

/// OpenID Connect Discovery: browsers go to the public issuer, the server calls loopback.
async fn discovery(State(dev): State<Arc<DevProvider>>) -> Response {
    Json(json!({
        "issuer": dev.issuer,
        "authorization_endpoint": format!("{}/authorize", dev.issuer),
        "token_endpoint": format!("{}/token", dev.loopback),
        "userinfo_endpoint": format!("{}/userinfo", dev.loopback),
        "jwks_uri": format!("{}/jwks", dev.loopback),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["EdDSA"],
        "scopes_supported": ["openid", "email", "profile"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "grant_types_supported": ["authorization_code"],
        "claims_supported": ["sub", "email", "email_verified", "name"],
        "authorization_response_iss_parameter_supported": true,
    }))
    .into_response()
}

/// The public half of the signing key: an OKP key on the Ed25519 curve (RFC 8037).
async fn jwks() -> Response {
    match signing_key() {
        Some(key) => Json(json!({ "keys": [key.as_verification_key()] })).into_response(),
        None => token_error(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable"),
    }
}

/// Userinfo for a Bearer token (RFC 6750 §2.1). No header, another scheme or an unknown or
/// expired token are all the same `invalid_token` (§3.1).
async fn userinfo(
    State(dev): State<Arc<DevProvider>>,
    bearer: Result<TypedHeader<Authorization<Bearer>>, TypedHeaderRejection>,
) -> Response {
    // `get` honours the time to live.
    let user = bearer.ok().and_then(|TypedHeader(Authorization(b))| dev.tokens.get(b.token()));
    let Some(user) = user else {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer error=\"invalid_token\"")],
            Json(json!({ "error": "invalid_token" })),
        )
            .into_response();
    };
    let name = user.email.local_part().to_owned();
    Json(json!({
        "sub": subject_for(&user.email),
        "email": user.email.as_str(),
        "email_verified": user.verified,
        "name": name,
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{HeaderMap, HeaderValue, Request};
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    use openidconnect::core::{CoreIdTokenVerifier, CoreJsonWebKeySet};
    use openidconnect::{AccessTokenHash, JsonWebKey};
    use serde_json::Value;
    use tower::ServiceExt;

    const CLIENT_ID: &str = "dev:client";
    /// Characters that Basic must carry form-urlencoded (RFC 6749 §2.3.1).
    const SECRET: &str = "s3cret:with space&more%";
    const REDIRECT: &str = "http://127.0.0.1:9/callback/dev";
    const ISSUER: &str = "http://127.0.0.1:9/dev-provider";
    const VERIFIER: &str = "a-pkce-verifier-that-is-long-enough-0123456789";

    fn dev() -> Arc<DevProvider> {
        Arc::new(DevProvider::new(
            CLIENT_ID,
            ClientSecret::new(SECRET),
            vec![REDIRECT.to_owned()],
            ISSUER.to_owned(),
            ISSUER.to_owned(),
        ))
    }

    /// Form fields, as name and value.
    type Fields<'a> = &'a [(&'a str, &'a str)];

    fn form(pairs: Fields) -> String {
        url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish()
    }

    fn basic(id: &str, secret: &str) -> String {
        let enc = |s: &str| form(&[("x", s)])["x=".len()..].to_owned();
        format!("Basic {}", STANDARD.encode(format!("{}:{}", enc(id), enc(secret))))
    }

    async fn send(dev: &Arc<DevProvider>, request: Request<Body>) -> (StatusCode, HeaderMap, Value) {
        let response = dev.clone().router::<()>().oneshot(request).await.unwrap();
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
        (parts.status, parts.headers, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    /// What the consent page posts when the user allows: the code from the redirect.
    async fn code(dev: &Arc<DevProvider>, scope: &str) -> String {
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(VERIFIER.as_bytes()));
        let body = form(&[
            ("response_type", "code"),
            ("client_id", CLIENT_ID),
            ("redirect_uri", REDIRECT),
            ("scope", scope),
            ("state", "st"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
            ("nonce", "n-1"),
            ("email", "alice@example.com"),
            ("email_verified", "true"),
            ("decision", "allow"),
        ]);
        let request = Request::post("/dev-provider/authorize")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap();
        let (status, headers, _) = send(dev, request).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        let location = url::Url::parse(headers[header::LOCATION].to_str().unwrap()).unwrap();
        let code = location.query_pairs().find(|(k, _)| k == "code").map(|(_, v)| v.into_owned());
        code.expect("a code in the redirect")
    }

    /// A token request for `code`, authenticated by `authorization` (if any) and `extra` fields.
    fn token_request(code: &str, authorization: Option<&str>, extra: Fields) -> Request<Body> {
        let mut fields = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ];
        fields.extend_from_slice(extra);
        let mut request = Request::post("/dev-provider/token")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some(value) = authorization {
            request = request.header(header::AUTHORIZATION, value);
        }
        request.body(Body::from(form(&fields))).unwrap()
    }

    fn userinfo_request(authorization: Option<&str>) -> Request<Body> {
        let mut request = Request::get("/dev-provider/userinfo");
        if let Some(value) = authorization {
            request = request.header(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        }
        request.body(Body::empty()).unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_code_is_single_use_even_when_two_token_requests_race() {
        let dev = dev();
        let auth = basic(CLIENT_ID, SECRET);
        for _ in 0..20 {
            let code = code(&dev, "openid email").await;
            let race =
                |dev: Arc<DevProvider>, request| tokio::spawn(async move { send(&dev, request).await });
            let a = race(dev.clone(), token_request(&code, Some(&auth), &[]));
            let b = race(dev.clone(), token_request(&code, Some(&auth), &[]));
            let (a, b) = (a.await.unwrap(), b.await.unwrap());
            let mut statuses = [a.0, b.0];
            statuses.sort();
            assert_eq!(statuses, [StatusCode::OK, StatusCode::BAD_REQUEST], "{a:?} {b:?}");
            let refused = if a.0 == StatusCode::OK { b.2 } else { a.2 };
            assert_eq!(refused, json!({ "error": "invalid_grant" }));
        }
    }

    #[tokio::test]
    async fn an_expired_code_is_refused_even_before_the_cache_evicts_it() {
        let dev = dev();
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(VERIFIER.as_bytes()));
        let past = Instant::now().checked_sub(Duration::from_secs(1)).unwrap();
        let grant = Grant {
            redirect_uri: REDIRECT.to_owned(),
            code_challenge: challenge,
            nonce: None,
            openid: false,
            user: DevUser { email: Email::parse("late@example.com").unwrap(), verified: true },
            expires: past,
        };
        dev.codes.insert("stale".to_owned(), Arc::new(grant));
        let (status, _, body) =
            send(&dev, token_request("stale", Some(&basic(CLIENT_ID, SECRET)), &[])).await;
        assert_eq!((status, body), (StatusCode::BAD_REQUEST, json!({ "error": "invalid_grant" })));
        assert!(dev.codes.get("stale").is_none(), "taken out even though refused");
    }

    #[tokio::test]
    async fn clients_authenticate_by_basic_with_form_urlencoded_parts_or_by_form_fields() {
        let dev = dev();
        let code1 = code(&dev, "openid").await;
        let (status, headers, body) =
            send(&dev, token_request(&code1, Some(&basic(CLIENT_ID, SECRET)), &[])).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(headers[header::CACHE_CONTROL], "no-store");
        assert_eq!(body["token_type"], "Bearer");

        let code2 = code(&dev, "openid").await;
        let creds = [("client_id", CLIENT_ID), ("client_secret", SECRET)];
        let (status, _, body) = send(&dev, token_request(&code2, None, &creds)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    #[tokio::test]
    async fn malformed_or_wrong_client_authentication_is_invalid_client() {
        let dev = dev();
        let good_form = [("client_id", CLIENT_ID), ("client_secret", SECRET)];
        let cases: &[(&str, Option<String>, Fields)] = &[
            ("no authentication at all", None, &[]),
            ("a wrong secret by Basic", Some(basic(CLIENT_ID, "wrong")), &[]),
            ("a wrong client by Basic", Some(basic("other", SECRET)), &[]),
            ("a wrong secret by form", None, &[("client_id", CLIENT_ID), ("client_secret", "wrong")]),
            ("Basic that is not base64", Some("Basic !!not-base64!!".into()), &good_form),
            ("Basic without a colon", Some(format!("Basic {}", STANDARD.encode("dev%3Aclient"))), &good_form),
            (
                "Basic that is not UTF-8",
                Some(format!("Basic {}", STANDARD.encode([0xff, b':', 0xfe]))),
                &good_form,
            ),
            ("Basic with nothing after it", Some("Basic".into()), &good_form),
            // Another scheme is an unsupported method, not a reason to fall back to the form.
            ("another scheme", Some("Bearer some-token".into()), &good_form),
            // The parts must be form-urlencoded: sent raw, the colon in the client id splits there.
            (
                "Basic with the parts not encoded",
                Some(format!("Basic {}", STANDARD.encode(format!("{CLIENT_ID}:{SECRET}")))),
                &[],
            ),
        ];
        for (case, authorization, extra) in cases {
            let code = code(&dev, "openid").await;
            let (status, headers, body) =
                send(&dev, token_request(&code, authorization.as_deref(), extra)).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{case}: {body}");
            assert_eq!(body, json!({ "error": "invalid_client" }), "{case}");
            assert_eq!(headers[header::CACHE_CONTROL], "no-store", "{case}");
        }
    }

    #[tokio::test]
    async fn userinfo_answers_a_live_bearer_token_and_nothing_else() {
        let dev = dev();
        let code = code(&dev, "openid email").await;
        let (_, _, body) = send(&dev, token_request(&code, Some(&basic(CLIENT_ID, SECRET)), &[])).await;
        let access_token = body["access_token"].as_str().unwrap().to_owned();

        let (status, _, body) = send(&dev, userinfo_request(Some(&format!("Bearer {access_token}")))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["email"], "alice@example.com");
        assert_eq!(body["email_verified"], true);
        assert_eq!(body["sub"], subject_for(&Email::parse("alice@example.com").unwrap()));

        let refused = [
            None,
            Some("Bearer".to_owned()),
            Some("Bearer not-a-token-we-issued".to_owned()),
            Some(format!("Basic {access_token}")),
            Some(format!("Token {access_token}")),
            Some(format!("Bearer{access_token}")),
        ];
        for authorization in refused {
            let (status, headers, body) = send(&dev, userinfo_request(authorization.as_deref())).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{authorization:?}");
            assert_eq!(
                headers[header::WWW_AUTHENTICATE],
                "Bearer error=\"invalid_token\"",
                "{authorization:?}"
            );
            assert_eq!(body, json!({ "error": "invalid_token" }), "{authorization:?}");
        }
    }

    /// The ID token is EdDSA over Ed25519, its key is in the JWKS as an OKP key, and `at_hash` is the
    /// left half of the access token's SHA-512 — checked by hand against the specifications, then the
    /// way the client side checks it (`openidconnect`'s verifier and `AccessTokenHash`).
    #[tokio::test]
    async fn id_tokens_are_eddsa_with_a_sha512_at_hash_that_the_client_side_accepts() {
        let dev = dev();
        let (_, _, discovery) = send(
            &dev,
            Request::get("/dev-provider/.well-known/openid-configuration").body(Body::empty()).unwrap(),
        )
        .await;
        assert_eq!(discovery["id_token_signing_alg_values_supported"], json!(["EdDSA"]));
        let (_, _, jwks) = send(&dev, Request::get("/dev-provider/jwks").body(Body::empty()).unwrap()).await;
        let jwk = &jwks["keys"][0];
        assert_eq!(
            (jwk["kty"].as_str(), jwk["crv"].as_str(), jwk["use"].as_str()),
            (Some("OKP"), Some("Ed25519"), Some("sig"))
        );
        assert!(jwk.get("d").is_none(), "only the public half is published: {jwk}");

        let code = code(&dev, "openid email").await;
        let (_, _, body) = send(&dev, token_request(&code, Some(&basic(CLIENT_ID, SECRET)), &[])).await;
        let (id_token, access_token) =
            (body["id_token"].as_str().unwrap(), body["access_token"].as_str().unwrap());

        // By hand: RFC 8037 (EdDSA, OKP), OpenID Connect Core §3.3.2.11 (at_hash) for Ed25519.
        let parts: Vec<&str> = id_token.split('.').collect();
        let decode = |s: &str| serde_json::from_slice::<Value>(&URL_SAFE_NO_PAD.decode(s).unwrap()).unwrap();
        let (head, claims) = (decode(parts[0]), decode(parts[1]));
        assert_eq!(head["alg"], "EdDSA");
        assert_eq!(head["kid"], jwk["kid"]);
        let x: [u8; 32] = URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap().try_into().unwrap();
        let signature: [u8; 64] = URL_SAFE_NO_PAD.decode(parts[2]).unwrap().try_into().unwrap();
        let public = ed25519_dalek::VerifyingKey::from_bytes(&x).unwrap();
        let signed = format!("{}.{}", parts[0], parts[1]);
        public.verify_strict(signed.as_bytes(), &ed25519_dalek::Signature::from_bytes(&signature)).unwrap();
        let sha512 = sha2::Sha512::digest(access_token.as_bytes());
        assert_eq!(claims["at_hash"], URL_SAFE_NO_PAD.encode(&sha512[..32]));
        assert_eq!(claims["nonce"], "n-1");

        // As the client side does.
        let set: CoreJsonWebKeySet = serde_json::from_value(jwks.clone()).unwrap();
        let verifier = CoreIdTokenVerifier::new_public_client(
            openidconnect::ClientId::new(CLIENT_ID.to_owned()),
            IssuerUrl::new(ISSUER.to_owned()).unwrap(),
            set,
        )
        .set_allowed_algs(vec![CoreJwsSigningAlgorithm::EdDsa]);
        let token: CoreIdToken = id_token.parse().unwrap();
        let claims = token.claims(&verifier, &Nonce::new("n-1".to_owned())).unwrap();
        let key = token.signing_key(&verifier).unwrap();
        assert_eq!(key.key_id().map(|k| k.as_str()), jwk["kid"].as_str());
        let expected = AccessTokenHash::from_token(
            &openidconnect::AccessToken::new(access_token.to_owned()),
            &CoreJwsSigningAlgorithm::EdDsa,
            key,
        )
        .unwrap();
        assert_eq!(claims.access_token_hash(), Some(&expected));
    }

    /// openidconnect's `at_hash` for an Ed25519 key against another implementation's published
    /// example (the `oidc-token-hash` npm package, EdDSA with Ed25519).
    #[test]
    fn ed25519_at_hash_matches_an_independent_implementation() {
        let token = "YmJiZTAwYmYtMzgyOC00NzhkLTkyOTItNjJjNDM3MGYzOWIy9sFhvH8K_x8UIHj1osisS57f5DduL-ar_\
                     qw5jl3lthwpMjm283aVMQXDmoqqqydDSqJfbhptzw8rUVwkuQbolw";
        let key = signing_key().unwrap().as_verification_key();
        let hash = AccessTokenHash::from_token(
            &openidconnect::AccessToken::new(token.to_owned()),
            &CoreJwsSigningAlgorithm::EdDsa,
            &key,
        )
        .unwrap();
        assert_eq!(hash.as_str(), "EGEAhGYyfuwDaVTifvrWSoD5MSy_5hZPy6I7Vm-7pTQ");
    }

    #[test]
    fn subjects_are_stable_per_address() {
        let a = Email::parse("Alice@Example.com").unwrap();
        let b = Email::parse("alice@example.com").unwrap();
        assert_eq!(subject_for(&a), subject_for(&b));
        assert_ne!(subject_for(&a), subject_for(&Email::parse("bob@example.com").unwrap()));
    }
}
