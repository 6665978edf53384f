//! The built-in development provider: a real OpenID Connect provider in miniature, served by the
//! same process under `/dev-provider/`, so that a new user can log in offline with no credentials,
//! through the very client code that talks to Google: discovery document, JWKS with an RSA key
//! generated at start, RS256-signed ID tokens echoing the nonce (with `at_hash`), and the RFC 9207
//! `iss` parameter on the authorization response.
//!
//! It believes whatever address is typed on its page, so it is for development only: every page
//! says so, and the app refuses to mount it on a non-loopback address unless forced.
//! It still checks what a real server checks — client id and secret, exact redirect URI, PKCE S256,
//! single-use short-lived codes — so that the client's handling of those is exercised.
//! Codes and tokens live in memory (a restart forgets them), with a cap so that nothing grows
//! without bound.

use crate::domain::secret::{random_token, ClientSecret};
use crate::domain::Email;
use crate::templates::render;
use axum::extract::{Form, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine;
use openidconnect::core::{
    CoreIdToken, CoreIdTokenClaims, CoreJwsSigningAlgorithm, CoreRsaPrivateSigningKey,
};
use openidconnect::{
    Audience, EmptyAdditionalClaims, EndUserEmail, EndUserName, IssuerUrl, JsonWebKeyId, Nonce,
    PrivateSigningKey, StandardClaims, SubjectIdentifier,
};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long a code is good for (RFC 6749 §4.1.2 recommends at most ten minutes; one is plenty here).
const CODE_TTL: Duration = Duration::from_secs(60);
/// How long an access token is good for.
const TOKEN_TTL: Duration = Duration::from_secs(3600);
/// At most this many live codes and as many live tokens.
const MAX_ENTRIES: usize = 10_000;

/// The development provider's state.
#[derive(Debug)]
pub struct DevProvider {
    client_id: String,
    client_secret: ClientSecret,
    redirect_uris: Vec<String>,
    /// `public_url/dev-provider`: the issuer, and the base browsers see.
    issuer: String,
    /// The loopback base the server calls itself on (token, userinfo, JWKS).
    loopback: String,
    codes: Mutex<HashMap<String, Grant>>,
    tokens: Mutex<HashMap<String, (DevUser, Instant)>>,
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
    expires: Instant,
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
        // Start making the RSA key now, off the async threads, so the first login does not wait.
        tokio::task::spawn_blocking(signing_key);
        Self {
            client_id: client_id.to_owned(),
            client_secret,
            redirect_uris,
            issuer,
            loopback,
            codes: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
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
    if !insert_bounded(&dev.codes, code.clone(), grant, |g| g.expires) {
        return redirect_with(
            &p.redirect_uri,
            &[("error", "temporarily_unavailable"), ("state", &p.state), ("iss", &dev.issuer)],
        );
    }
    redirect_with(&p.redirect_uri, &[("code", &code), ("state", &p.state), ("iss", &dev.issuer)])
}

/// Inserts after dropping expired entries; refuses when the map is still full.
fn insert_bounded<V>(
    map: &Mutex<HashMap<String, V>>,
    key: String,
    value: V,
    expiry: impl Fn(&V) -> Instant,
) -> bool {
    let Ok(mut map) = map.lock() else {
        return false;
    };
    let now = Instant::now();
    if map.len() >= MAX_ENTRIES {
        map.retain(|_, v| expiry(v) > now);
    }
    if map.len() >= MAX_ENTRIES {
        return false;
    }
    map.insert(key, value);
    true
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

/// Client authentication by HTTP Basic or by form fields (RFC 6749 §2.3.1).
fn client_credentials(headers: &HeaderMap, form: &TokenRequest) -> Option<(String, String)> {
    if let Some(basic) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
    {
        let decoded = base64::engine::general_purpose::STANDARD.decode(basic.trim()).ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (id, secret) = text.split_once(':')?;
        let decode = |s: &str| {
            url::form_urlencoded::parse(format!("x={s}").as_bytes()).next().map(|(_, v)| v.into_owned())
        };
        return Some((decode(id)?, decode(secret)?));
    }
    Some((form.client_id.clone()?, form.client_secret.clone()?))
}

async fn token(
    State(dev): State<Arc<DevProvider>>,
    headers: HeaderMap,
    Form(form): Form<TokenRequest>,
) -> Response {
    match client_credentials(&headers, &form) {
        Some((id, secret)) if id == dev.client_id && dev.client_secret.matches(&secret) => {}
        _ => return token_error(StatusCode::UNAUTHORIZED, "invalid_client"),
    }
    if form.grant_type != "authorization_code" {
        return token_error(StatusCode::BAD_REQUEST, "unsupported_grant_type");
    }
    // Single use: the code leaves the map before anything else is checked.
    let grant = dev.codes.lock().ok().and_then(|mut codes| codes.remove(&form.code));
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
        let dev = dev.clone();
        let (user, nonce, token) = (grant.user.clone(), grant.nonce.clone(), access_token.clone());
        match tokio::task::spawn_blocking(move || dev.id_token(&user, nonce, &token)).await {
            Ok(Some(jwt)) => Some(jwt),
            _ => return token_error(StatusCode::INTERNAL_SERVER_ERROR, "server_error"),
        }
    } else {
        None
    };
    if !insert_bounded(&dev.tokens, access_token.clone(), (grant.user, Instant::now() + TOKEN_TTL), |t| t.1) {
        return token_error(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable");
    }
    let mut body =
        json!({ "access_token": access_token, "token_type": "Bearer", "expires_in": TOKEN_TTL.as_secs() });
    if let Some(jwt) = id_token {
        body["id_token"] = json!(jwt);
    }
    ([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
}

/// The development provider's RSA key, made once per process (2048 bits take a moment, so it is
/// made in the background at start). `None` only if key generation itself failed.
fn signing_key() -> Option<&'static CoreRsaPrivateSigningKey> {
    static KEY: OnceLock<Option<CoreRsaPrivateSigningKey>> = OnceLock::new();
    KEY.get_or_init(|| {
        use rsa::pkcs1::EncodeRsaPrivateKey;
        let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).ok()?;
        let pem = key.to_pkcs1_pem(rsa::pkcs8::LineEnding::LF).ok()?;
        let kid = JsonWebKeyId::new(format!("dev-{}", &random_token(6)));
        CoreRsaPrivateSigningKey::from_pem(&pem, Some(kid)).ok()
    })
    .as_ref()
}

impl DevProvider {
    /// An RS256 ID token for `user`, echoing the nonce, with `at_hash` for the access token.
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
        let jwt =
            CoreIdToken::new(claims, key, CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256, Some(&token), None)
                .ok()?;
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
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid", "email", "profile"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "grant_types_supported": ["authorization_code"],
        "claims_supported": ["sub", "email", "email_verified", "name"],
        "authorization_response_iss_parameter_supported": true,
    }))
    .into_response()
}

async fn jwks() -> Response {
    match tokio::task::spawn_blocking(signing_key).await {
        Ok(Some(key)) => Json(json!({ "keys": [key.as_verification_key()] })).into_response(),
        _ => token_error(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable"),
    }
}

async fn userinfo(State(dev): State<Arc<DevProvider>>, headers: HeaderMap) -> Response {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let user = token.and_then(|t| {
        let tokens = dev.tokens.lock().ok()?;
        tokens.get(t).filter(|(_, expires)| *expires > Instant::now()).map(|(u, _)| u.clone())
    });
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

    #[test]
    fn subjects_are_stable_per_address() {
        let a = Email::parse("Alice@Example.com").unwrap();
        let b = Email::parse("alice@example.com").unwrap();
        assert_eq!(subject_for(&a), subject_for(&b));
        assert_ne!(subject_for(&a), subject_for(&Email::parse("bob@example.com").unwrap()));
    }
}
