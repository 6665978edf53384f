//! `GET /authorize/NAME` and `GET /callback/NAME`: the authorization code flow with PKCE.
//!
//! The callback checks, in order: the provider exists; the provider did not report an error
//! (flashed, no token request); the `state` matches a pending attempt of *this* session for *this*
//! provider, not expired, not used (it is consumed here, whatever happens next); a code is present.
//! Only then is the code exchanged, the profile read, the user found or created, the session id
//! rotated and the user logged in.

use crate::auth::{current_user, log_in};
use crate::domain::secret::{random_token, AuthCode, PkceVerifier, StateToken};
use crate::error::AppError;
use crate::oauth::pending::{PendingLogin, PendingLogins, StateError, SESSION_KEY};
use crate::oauth::{exchange_code, sanitize_code};
use crate::providers::Provider;
use crate::state::AppState;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use axum_messages::Messages;
use tower_sessions::Session;

/// `/authorize/{provider}` and `/callback/{provider}`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/authorize/{provider}", get(authorize))
        .route("/callback/{provider}", get(callback))
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Starts a login: remembers a new attempt and sends the browser to the provider.
async fn authorize(
    State(state): State<AppState>,
    Path(name): Path<String>,
    session: Session,
) -> Result<Response, AppError> {
    let provider = state.provider(&name)?;
    if current_user(&session).await.is_some() {
        return Ok(Redirect::to("/").into_response());
    }
    let (challenge, verifier) = oauth2::PkceCodeChallenge::new_random_sha256();
    // 256 bits: well above the 128 the issue asks for, and the same cost.
    let csrf = StateToken::new(random_token(32));
    let location = authorization_url(&state, provider, csrf.expose(), challenge.as_str());

    let mut pending: PendingLogins = session.get(SESSION_KEY).await?.unwrap_or_default();
    pending.push(
        PendingLogin {
            state: csrf,
            provider: provider.name.clone(),
            verifier: PkceVerifier::new(verifier.secret().as_str()),
            created_at: now(),
        },
        now(),
        state.login_ttl,
    );
    session.insert(SESSION_KEY, &pending).await?;
    Ok((StatusCode::FOUND, [(header::LOCATION, location)]).into_response())
}

/// The provider's authorization endpoint with our parameters added to any it already has.
fn authorization_url(state: &AppState, provider: &Provider, csrf: &str, challenge: &str) -> String {
    let mut url = provider.authorize_url.clone();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &provider.client_id)
        .append_pair("redirect_uri", &state.redirect_uri(&provider.name))
        .append_pair("scope", &provider.scopes.join(" "))
        .append_pair("state", csrf)
        .append_pair("code_challenge", challenge)
        .append_pair("code_challenge_method", "S256");
    url.into()
}

/// The parameters a callback may carry (RFC 6749 §4.1.2 and §4.1.2.1).
#[derive(Debug, Default)]
struct CallbackParams {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
    error_uri: Option<String>,
}

/// Parses the query; a parameter given twice is refused (RFC 6749 §3.1: "MUST NOT be included
/// more than once"), since two values invite a checker and a user of different ones.
fn parse_callback(query: Option<&str>) -> Result<CallbackParams, AppError> {
    let mut params = CallbackParams::default();
    for (key, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        let slot = match key.as_ref() {
            "code" => &mut params.code,
            "state" => &mut params.state,
            "error" => &mut params.error,
            "error_description" => &mut params.error_description,
            "error_uri" => &mut params.error_uri,
            _ => continue,
        };
        if slot.is_some() {
            return Err(AppError::BadCallback(format!(
                "the parameter {key} appears more than once"
            )));
        }
        *slot = Some(value.into_owned());
    }
    Ok(params)
}

/// The provider sends the browser back here.
async fn callback(
    State(state): State<AppState>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    session: Session,
    messages: Messages,
) -> Result<Response, AppError> {
    let provider = state.provider(&name)?;
    let params = parse_callback(query.as_deref())?;
    let mut pending: PendingLogins = session.get(SESSION_KEY).await?.unwrap_or_default();

    if let Some(error) = &params.error {
        // The person denied access or the provider failed: tell them, burn the attempt, and make
        // no token request.
        if let Some(s) = &params.state {
            let _ = pending.take(s, &provider.name, now(), state.login_ttl);
            save_pending(&session, &pending).await?;
        }
        messages.error(provider_error_message(provider, error, &params));
        return Ok(Redirect::to("/").into_response());
    }

    let attempt = match &params.state {
        None => Err(StateError::Missing),
        Some(s) => pending.take(s, &provider.name, now(), state.login_ttl),
    };
    if params.state.is_some() {
        save_pending(&session, &pending).await?;
    }
    let attempt = attempt?;
    let code = params
        .code
        .filter(|c| !c.is_empty())
        .map(AuthCode::new)
        .ok_or(AppError::MissingCode)?;

    let provider_failed = |source| AppError::Provider {
        provider: provider.display_name.clone(),
        source,
    };
    let tokens = exchange_code(
        &state.http,
        &provider.token_url,
        &provider.credentials(),
        &code,
        &state.redirect_uri(&provider.name),
        &attempt.verifier,
    )
    .await
    .map_err(provider_failed)?;
    let profile = provider
        .fetch_profile(&state.http, &tokens.access_token)
        .await
        .map_err(provider_failed)?;
    let (user, kind) = state
        .store
        .record_login(&provider.name, &profile, now())
        .await?;
    log_in(&session, &user).await?;
    tracing::info!(provider = %provider.name, user_id = user.id, kind = kind.as_str(), "login");
    Ok(Redirect::to("/").into_response())
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
    let mut text = format!(
        "Login with {} was not completed: {}",
        provider.display_name,
        sanitize_code(error)
    );
    if let Some(description) = params
        .error_description
        .as_deref()
        .filter(|d| !d.is_empty())
    {
        text.push_str(" — ");
        text.push_str(&crate::providers::generic::clip(description, 300));
    }
    if let Some(uri) = params
        .error_uri
        .as_deref()
        .and_then(crate::providers::generic::https_url)
    {
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
    fn duplicate_parameters_are_refused() {
        assert!(parse_callback(Some("state=a&state=b&code=c")).is_err());
        let p = parse_callback(Some("state=a&code=c&extra=1&extra=2")).unwrap();
        assert_eq!(p.state.as_deref(), Some("a"));
        assert_eq!(p.code.as_deref(), Some("c"));
        assert!(parse_callback(None).unwrap().state.is_none());
    }
}
