//! `GET /authorize/NAME` and `/callback/NAME`: the authorization code flow with PKCE, and for
//! OpenID Connect providers a nonce, ID token validation and the RFC 9207 `iss` check.
//!
//! The callback checks, in order: the provider exists; the `state` matches a pending attempt of
//! *this* session for *this* provider, not expired, not used (it is consumed here, whatever
//! happens next); only then is a provider-reported error shown (flashed, no token request) —
//! without a matching attempt, `error` and `error_description` are someone else's text and get
//! the generic 400 page; a code is present; the `iss` parameter names the provider's issuer (when
//! the provider promises it, or sends one). Then the session id is rotated (which makes the
//! attempt's removal durable before the provider is called, see [`crate::auth`]), the code is
//! exchanged, the ID token checked, the profile read and believed as far as the provider is
//! trusted, the user found or created, and the session started afresh for them.
//!
//! Callbacks by `response_mode=form_post` arrive as a cross-site POST, which does not carry our
//! SameSite=Lax session cookie. Rather than loosen the cookie, such a POST gets a tiny page that
//! re-posts the same fields to the same URL from our own origin — a same-site request, so the
//! cookie comes along and the state is checked against the session exactly as for a GET.

use crate::audit;
use crate::auth::{current_user, log_in, rotate};
use crate::client::{ClientAddr, UserAgent};
use crate::config::ResponseMode;
use crate::domain::secret::{random_token, AuthCode, PkceVerifier, StateToken};
use crate::domain::{RedirectUrl, ReturnTo, UserId};
use crate::error::AppError;
use crate::oauth::pending::{PendingLogin, PendingLogins, StateError, SESSION_KEY};
use crate::oauth::{exchange_code, sanitize_code};
use crate::providers::{ProfileError, Provider, Resolved};
use crate::state::AppState;
use crate::store::{Connected, LoginRecord, StoreError};
use crate::templates::render;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use axum_messages::Messages;
use base64::Engine;
use sha2::{Digest, Sha256};
use std::sync::LazyLock;
use std::time::Instant;
use tower_sessions::Session;

/// `/authorize/{provider}` (apart, so that it gets its own rate limit).
pub fn authorize_router(base: &str) -> Router<AppState> {
    Router::new().route(&format!("{base}/authorize/{{provider}}"), get(authorize))
}

/// `/callback/{provider}`, by GET or (form_post) POST.
pub fn callback_router(base: &str) -> Router<AppState> {
    Router::new().route(&format!("{base}/callback/{{provider}}"), get(callback_get).post(callback_post))
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Starts a login: remembers a new attempt and sends the browser to the provider.
async fn authorize(
    State(state): State<AppState>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    client: ClientAddr,
    session: Session,
) -> Result<Response, AppError> {
    let next = next_param(query.as_deref());
    let rd = rd_param(&state, query.as_deref());
    let result = start_login(&state, &name, Destination { next, rd }, None, &session).await;
    audit_refusal(&state, &name, client, result)
}

/// Where a login sends the browser back to: the gateway's `rd` (another of the operator's hosts),
/// else the same-origin `next`, else `after_login`.
#[derive(Debug, Default)]
pub(crate) struct Destination {
    pub(crate) next: Option<ReturnTo>,
    pub(crate) rd: Option<RedirectUrl>,
}

/// The `rd` parameter, when the gateway is on and it names an allowed host.
pub(crate) fn rd_param(state: &AppState, query: Option<&str>) -> Option<RedirectUrl> {
    if !state.gateway.enabled {
        return None;
    }
    let (_, value) = url::form_urlencoded::parse(query?.as_bytes()).find(|(k, _)| k == "rd")?;
    RedirectUrl::parse(&value, &state.gateway.allowed_redirect_hosts)
}

/// The `next` parameter of a query, when it is a same-origin path (anything else is ignored, so
/// the browser lands where it would have without it).
pub(crate) fn next_param(query: Option<&str>) -> Option<ReturnTo> {
    let query = query?;
    let (_, value) = url::form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "next")?;
    ReturnTo::parse(&value)
}

/// Starts a login, or with `link_to` (the logged-in user's id) a connection of another identity
/// to that user.
pub(crate) async fn start_login(
    state: &AppState,
    name: &str,
    to: Destination,
    link_to: Option<i64>,
    session: &Session,
) -> Result<Response, AppError> {
    let provider = state.provider(name)?;
    if link_to.is_none() && current_user(session).await.is_some() {
        return Ok(Redirect::to(&state.after_login_to(to.rd.as_ref(), to.next.as_ref())).into_response());
    }
    let http = state.http.for_provider(provider.name.as_str());
    let resolved = provider
        .resolve(&http)
        .await
        .map_err(|source| AppError::Unavailable { provider: provider.display_name.clone(), source })?;
    let (challenge, verifier) = oauth2::PkceCodeChallenge::new_random_sha256();
    // 256 bits: well above the 128 the issue asks for, and the same cost.
    let csrf = StateToken::new(random_token(32));
    let nonce = matches!(resolved, Resolved::Oidc(..)).then(|| StateToken::new(random_token(32)));
    let location = authorization_url(
        state,
        provider,
        &resolved,
        csrf.expose(),
        challenge.as_str(),
        nonce.as_ref().map(StateToken::expose),
    );

    let mut pending: PendingLogins = session.get(SESSION_KEY).await?.unwrap_or_default();
    pending.push(
        PendingLogin {
            state: csrf,
            provider: provider.name.clone(),
            verifier: PkceVerifier::new(verifier.secret().as_str()),
            nonce,
            created_at: now(),
            next: to.next,
            rd: to.rd,
            link_to,
        },
        now(),
        state.login_ttl,
    );
    session.insert(SESSION_KEY, &pending).await?;
    Ok((StatusCode::FOUND, [(header::LOCATION, location)]).into_response())
}

/// The provider's authorization endpoint with our parameters added to any it already has, then the
/// provider's extra ones ([`crate::providers::AuthorizeParams`]).
fn authorization_url(
    state: &AppState,
    provider: &Provider,
    resolved: &Resolved<'_>,
    csrf: &str,
    challenge: &str,
    nonce: Option<&str>,
) -> String {
    let mut url = resolved.authorize_url().clone();
    {
        let mut query = url.query_pairs_mut();
        query
            .append_pair("response_type", "code")
            .append_pair("client_id", &provider.client_id)
            .append_pair("redirect_uri", &state.redirect_uri(&provider.name))
            .append_pair("scope", &provider.scopes.join(" "))
            .append_pair("state", csrf)
            .append_pair("code_challenge", challenge)
            .append_pair("code_challenge_method", "S256");
        if let Some(nonce) = nonce {
            query.append_pair("nonce", nonce);
        }
        if provider.response_mode == ResponseMode::FormPost {
            query.append_pair("response_mode", "form_post");
        }
        // The preset's and the configuration's own (Twitch's `claims`, Slack's `team`, a
        // `prompt`); none of them can be one of ours (refused by the configuration).
        query.extend_pairs(provider.authorize_params.iter());
    }
    url.into()
}

/// The parameters a callback may carry (RFC 6749 §4.1.2 and §4.1.2.1, RFC 9207).
#[derive(Debug, Default)]
struct CallbackParams {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
    error_uri: Option<String>,
    iss: Option<String>,
    /// Sign in with Apple's first-authorization `user` field (JSON with the person's name).
    user: Option<String>,
    /// Set on our own re-post of a form_post callback.
    resubmitted: bool,
}

/// The callback's own parameters, the ones [`CallbackParams`] reads (and our re-post of a
/// form_post carries on); any other is ignored.
const CALLBACK_FIELDS: [&str; 7] =
    ["code", "state", "error", "error_description", "error_uri", "iss", "user"];

/// Parses a query or form body; a parameter given twice is refused (RFC 6749 §3.1: "MUST NOT be
/// included more than once"), since two values invite a checker and a user of different ones.
fn parse_callback(encoded: &str) -> Result<CallbackParams, AppError> {
    let mut params = CallbackParams::default();
    for (key, value) in url::form_urlencoded::parse(encoded.as_bytes()) {
        let slot = match key.as_ref() {
            "code" => &mut params.code,
            "state" => &mut params.state,
            "error" => &mut params.error,
            "error_description" => &mut params.error_description,
            "error_uri" => &mut params.error_uri,
            "iss" => &mut params.iss,
            "user" => &mut params.user,
            RESUBMIT_FIELD => {
                params.resubmitted = true;
                continue;
            }
            _ => continue,
        };
        if slot.is_some() {
            return Err(AppError::BadCallback(format!("the parameter {key} appears more than once")));
        }
        *slot = Some(value.into_owned());
    }
    Ok(params)
}

async fn callback_get(
    State(state): State<AppState>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    client: ClientAddr,
    agent: UserAgent,
    session: Session,
    messages: Messages,
) -> Result<Response, AppError> {
    let started = Instant::now();
    let result = async {
        let provider = state.provider(&name)?;
        let params = parse_callback(query.as_deref().unwrap_or_default())?;
        finish_login(&state, provider, params, (client, &agent), &session, messages).await
    }
    .await;
    let result = audit_refusal(&state, &name, client, result);
    crate::metrics::callback(started.elapsed());
    result
}

/// Writes the audit line of a refused login (at its start or its callback), and passes the
/// result on.
fn audit_refusal(
    state: &AppState,
    name: &str,
    client: ClientAddr,
    result: Result<Response, AppError>,
) -> Result<Response, AppError> {
    if let Err(err) = &result {
        // The name in the path is the client's text until it names a configured provider.
        let provider = state.provider(name).ok().map(|p| p.name.as_str());
        audit::refusal(client, provider, err.reason(), &crate::error::error_chain(err));
    }
    result
}

/// The marker field of our own re-post.
const RESUBMIT_FIELD: &str = "loginwith_resubmitted";
/// The re-post page's script, allowed by its hash in the page's Content-Security-Policy.
const RESUBMIT_SCRIPT: &str = "document.getElementById('resubmit').submit();";
static RESUBMIT_CSP: LazyLock<String> = LazyLock::new(|| {
    let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(RESUBMIT_SCRIPT.as_bytes()));
    format!(
        "default-src 'none'; style-src 'self'; script-src 'sha256-{hash}'; form-action 'self'; \
         frame-ancestors 'none'; base-uri 'none'"
    )
});

/// A `response_mode=form_post` callback.
async fn callback_post(
    State(state): State<AppState>,
    Path(name): Path<String>,
    client: ClientAddr,
    agent: UserAgent,
    session: Session,
    messages: Messages,
    body: String,
) -> Result<Response, AppError> {
    let started = Instant::now();
    let result = async {
        let provider = state.provider(&name)?;
        if provider.response_mode != ResponseMode::FormPost {
            return Err(AppError::BadCallback("this provider answers by redirect, not by form post".into()));
        }
        let params = parse_callback(&body)?;
        // tower-sessions parsed a session id out of a (signed, intact) cookie: the browser sent it.
        let cookie_sent = session.id().is_some();
        if !cookie_sent && !params.resubmitted {
            return Ok(resubmit_page(&state.base_path, &name, &body));
        }
        finish_login(&state, provider, params, (client, &agent), &session, messages).await
    }
    .await;
    let result = audit_refusal(&state, &name, client, result);
    crate::metrics::callback(started.elapsed());
    result
}

/// The page that re-posts a cross-site form_post from our own origin (see the module doc).
fn resubmit_page(base: &str, name: &str, body: &str) -> Response {
    let fields: Vec<(String, String)> = url::form_urlencoded::parse(body.as_bytes())
        .filter(|(k, _)| CALLBACK_FIELDS.contains(&k.as_ref()))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let mut response = render(
        StatusCode::OK,
        "resubmit.html",
        serde_json::json!({
            "action": format!("{base}/callback/{name}"),
            "fields": fields,
            "marker": RESUBMIT_FIELD,
            "script": RESUBMIT_SCRIPT,
        }),
    );
    if let Ok(csp) = HeaderValue::from_str(&RESUBMIT_CSP) {
        response.headers_mut().insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    response
}

/// Everything after the callback's parameters are read, for GET and form_post alike.
async fn finish_login(
    state: &AppState,
    provider: &Provider,
    params: CallbackParams,
    (client, agent): (ClientAddr, &UserAgent),
    session: &Session,
    messages: Messages,
) -> Result<Response, AppError> {
    let mut pending: PendingLogins = session.get(SESSION_KEY).await?.unwrap_or_default();
    let taken = match &params.state {
        None => Err(StateError::Missing),
        Some(s) => pending.take(s, &provider.name, now(), state.login_ttl),
    };
    if !matches!(taken, Err(StateError::Missing | StateError::Unknown)) {
        // The attempt was found, so it is used up, whatever happens next.
        save_pending(session, &pending).await?;
    }
    // A provider error is shown only for an attempt of this browser for this provider: anything
    // else is someone else's text, and gets the generic page below.
    let attempt = taken?;

    if let Some(error) = &params.error {
        // The person denied access or the provider failed: tell them, and make no token request.
        audit::refusal(client, Some(provider.name.as_str()), "provider_error", &sanitize_code(error));
        messages.error(provider_error_message(provider, error, &params));
        // Back to the start page, still carrying where the person was going, to try again.
        let start = state.start_page();
        let back = match &attempt.next {
            Some(next) => crate::loginwith::with_next(&start, next),
            None => start,
        };
        return Ok(Redirect::to(&back).into_response());
    }
    let code = params.code.filter(|c| !c.is_empty()).map(AuthCode::new).ok_or(AppError::MissingCode)?;
    // From here on the provider is called, and tower-sessions does not save a session whose
    // answer is a 5xx (unavailable, 502, timeout): the new id, which deletes the old one's stored
    // record, is what makes the used attempt stay used.
    let rotated = rotate(session).await?;

    let http = state.http.for_provider(provider.name.as_str());
    let resolved = provider
        .resolve(&http)
        .await
        .map_err(|source| AppError::Unavailable { provider: provider.display_name.clone(), source })?;
    if let Resolved::Oidc(oidc, discovered) = &resolved {
        if !oidc.callback_iss_ok(discovered, params.iss.as_deref()) {
            return Err(AppError::IssuerMismatch);
        }
    }

    let provider_failed = |source| AppError::Provider { provider: provider.display_name.clone(), source };
    let tokens = exchange_code(
        &http,
        resolved.token_url(),
        &provider.credentials(&resolved, now()).map_err(provider_failed)?,
        &code,
        &state.redirect_uri(&provider.name),
        &attempt.verifier,
    )
    .await
    .map_err(provider_failed)?;
    let nonce = attempt.nonce.as_ref().map(StateToken::expose);
    let profile = provider.fetch_profile(&http, &resolved, &tokens, nonce).await.map_err(|e| match e {
        ProfileError::Provider(source) => provider_failed(source),
        ProfileError::IdToken(source) => {
            AppError::IdToken { provider: provider.display_name.clone(), source }
        }
    })?;
    let profile = provider.believe(provider.with_callback_name(profile, params.user.as_deref()));
    if !state.access.allows(profile.address(), profile.email_verified, provider.name.as_str()) {
        return Err(AppError::AccessDenied {
            email: profile.address().to_owned(),
            verified: profile.email_verified,
        });
    }
    let record = LoginRecord {
        provider: &provider.name,
        issuer: &provider.issuer_binding,
        links: provider.links_accounts(&profile),
        profile: &profile,
    };
    if let Some(user_id) = attempt.link_to {
        return finish_connect(state, provider, &record, user_id, client, session, messages).await;
    }
    let (user, kind) =
        state.store.record_login(&record, now(), state.hook.as_ref()).await.map_err(|e| match e {
            StoreError::IssuerChanged { .. } => {
                AppError::IssuerChanged { provider: provider.display_name.clone(), source: e }
            }
            StoreError::Refused { refused, .. } => AppError::Refused(refused),
            other => AppError::Store(other),
        })?;
    log_in(rotated, &user, provider.name.as_str(), agent).await?;
    audit::login(client, provider.name.as_str(), user.id, kind);
    Ok(Redirect::to(&state.after_login_to(attempt.rd.as_ref(), attempt.next.as_ref())).into_response())
}

/// The end of "connect another provider": the identity is attached to the user who started it,
/// who must still be the one logged in here; the session stays theirs. Back to the account page
/// with what happened.
async fn finish_connect(
    state: &AppState,
    provider: &Provider,
    record: &LoginRecord<'_>,
    user_id: i64,
    client: ClientAddr,
    session: &Session,
    messages: Messages,
) -> Result<Response, AppError> {
    if current_user(session).await.is_none_or(|user| user.id != user_id) {
        return Err(AppError::ConnectNotYours);
    }
    let outcome =
        state.store.connect_identity(record, UserId(user_id), now(), state.hook.as_ref()).await.map_err(
            |e| match e {
                StoreError::IssuerChanged { .. } => {
                    AppError::IssuerChanged { provider: provider.display_name.clone(), source: e }
                }
                StoreError::Refused { refused, .. } => AppError::Refused(refused),
                other => AppError::Store(other),
            },
        )?;
    let name = &provider.display_name;
    match outcome {
        Connected::Added => {
            audit::connected(client, provider.name.as_str(), user_id);
            messages.success(format!("{name} now logs into this account too."));
        }
        Connected::AlreadyYours => {
            messages.success(format!("That {name} account already logs into this account."));
        }
        Connected::OtherUser => {
            audit::refusal(
                client,
                Some(provider.name.as_str()),
                "connect_taken",
                "identity belongs to another user",
            );
            messages.error(format!(
                "That {name} account already logs into another account here, so it was not connected. \
                 Nothing was merged or moved."
            ));
        }
        Connected::UserGone => return Err(AppError::ConnectNotYours),
    }
    Ok(Redirect::to(&format!("{}/account", state.base_path)).into_response())
}

async fn save_pending(session: &Session, pending: &PendingLogins) -> Result<(), AppError> {
    if pending.is_empty() {
        session.remove::<PendingLogins>(SESSION_KEY).await?;
    } else {
        session.insert(SESSION_KEY, pending).await?;
    }
    Ok(())
}

/// The flash shown when a provider reports an error. Every part is provider-controlled, so it is
/// clipped here and escaped by the template.
fn provider_error_message(provider: &Provider, error: &str, params: &CallbackParams) -> String {
    let mut text =
        format!("Login with {} was not completed: {}", provider.display_name, sanitize_code(error));
    if let Some(description) = params.error_description.as_deref().filter(|d| !d.is_empty()) {
        text.push_str(" — ");
        text.push_str(&crate::domain::clip(description, 300));
    }
    if let Some(uri) = params.error_uri.as_deref().and_then(crate::domain::https_url) {
        text.push_str(" (");
        text.push_str(&uri);
        text.push(')');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_re_post_carries_every_parameter_the_callback_reads() {
        for name in CALLBACK_FIELDS {
            let p = parse_callback(&format!("{name}=v")).unwrap();
            let read = [&p.code, &p.state, &p.error, &p.error_description, &p.error_uri, &p.iss, &p.user];
            assert_eq!(read.iter().filter(|v| v.is_some()).count(), 1, "{name}");
        }
    }

    #[test]
    fn duplicate_parameters_are_refused() {
        assert!(parse_callback("state=a&state=b&code=c").is_err());
        let p = parse_callback("state=a&code=c&extra=1&extra=2&iss=https%3A%2F%2Fx").unwrap();
        assert_eq!(p.state.as_deref(), Some("a"));
        assert_eq!(p.code.as_deref(), Some("c"));
        assert_eq!(p.iss.as_deref(), Some("https://x"));
        assert!(parse_callback("").unwrap().state.is_none());
    }
}
