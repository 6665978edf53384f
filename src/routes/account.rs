//! The account page, `{base}/account`: the identities that log into the account (provider,
//! address and whether it is verified, when linked and last used), each with a "Disconnect"
//! button except the last. Plain HTML forms, no script, escaped by the templates.
//!
//! `POST {base}/account/disconnect` (form field `provider`) takes the same Origin check as logout
//! and ends with a flash message on the account page (303, so a reload does not post again).
//!
//! The page also lists the user's live sessions (when each logged in and was last used, its
//! browser), each with "End this session" but the page's own, "Log out everywhere else", and a
//! "Delete account" form that asks for the username typed out (the rules are in
//! `crate::account`): `POST {base}/account/sessions/end` (field `session`),
//! `POST {base}/account/sessions/end-others` and `POST {base}/account/delete` (field `confirm`).
//!
//! `POST {base}/account/connect` (form field `provider`) starts a login with that provider whose
//! intent, "connect to me", is stored in the pending attempt with the user's id: it runs the
//! normal flow with every check, and its callback attaches the identity to that user only while
//! the same user is logged in on that session (see `routes::login::finish_connect`). An
//! identity that already logs into someone else is refused there; nothing is merged or moved.

use crate::account::{self, Ended};
use crate::audit;
use crate::auth::{current_user, CurrentUser};
use crate::client::ClientAddr;
use crate::domain::UserId;
use crate::error::AppError;
use crate::routes::pages::refuse_other_sites;
use crate::state::AppState;
use crate::store::Unlinked;
use crate::templates::render;
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use axum_messages::{Level, Messages};
use serde::Deserialize;
use serde_json::json;
use tower_sessions::Session;

/// `GET {base}/account` and its forms.
pub fn router(base: &str) -> Router<AppState> {
    Router::new()
        .route(&format!("{base}/account"), get(page))
        .route(&format!("{base}/account/disconnect"), post(disconnect))
        .route(&format!("{base}/account/connect"), post(connect))
        .route(&format!("{base}/account/sessions/end"), post(end_session))
        .route(&format!("{base}/account/sessions/end-others"), post(end_other_sessions))
        .route(&format!("{base}/account/delete"), post(delete_account))
}

/// The account page; a browser that is not logged in is sent to log in and comes back here.
async fn page(
    State(state): State<AppState>,
    session: Session,
    messages: Messages,
) -> Result<Response, AppError> {
    let Some(user) = current_user(&session).await else {
        return Ok(to_login(&state));
    };
    let Some(account) = state.store.account(UserId(user.id)).await? else {
        return Ok(to_login(&state));
    };
    let providers_linked = {
        let mut names: Vec<&str> = account.identities.iter().map(|i| i.provider.as_str()).collect();
        names.dedup();
        names.len()
    };
    let identities: Vec<_> = account
        .identities
        .iter()
        .map(|i| {
            json!({
                "provider": i.provider,
                "display_name": display_name(&state, &i.provider),
                "email": i.email,
                "email_verified": i.email_verified,
                "linked": date(i.created_at),
                "last_used": date(i.last_login_at),
                "current": i.provider == user.provider,
                "can_disconnect": providers_linked > 1,
            })
        })
        .collect();
    let connectable: Vec<_> = state
        .providers
        .iter()
        .filter(|p| !p.is_unavailable())
        .map(|p| json!({ "name": p.name.as_str(), "display_name": p.display_name }))
        .collect();
    let sessions: Vec<_> = account::sessions(&state, &user, &session)
        .await?
        .into_iter()
        .map(|s| {
            json!({
                "id": s.session.handle,
                "created": date(s.session.created_at),
                "last_used": day(s.session.last_used_at),
                "browser": browser_name(&s.session.user_agent),
                "user_agent": s.session.user_agent,
                "current": s.current,
            })
        })
        .collect();
    let messages: Vec<_> = messages
        .into_iter()
        .map(|m| json!({ "level": if m.level == Level::Error { "error" } else { "success" }, "text": m.message }))
        .collect();
    Ok(render(
        StatusCode::OK,
        "account.html",
        json!({
            "user": user,
            "identities": identities,
            "connectable": connectable,
            "sessions": sessions,
            "messages": messages,
        }),
    ))
}

fn to_login(state: &AppState) -> Response {
    let next: String =
        url::form_urlencoded::byte_serialize(format!("{}/account", state.base_path).as_bytes()).collect();
    Redirect::to(&format!("{}?next={next}", state.start_page())).into_response()
}

/// The provider's display name, or its name when it is no longer configured.
fn display_name<'a>(state: &'a AppState, provider: &'a str) -> &'a str {
    state.providers.iter().find(|p| p.name.as_str() == provider).map_or(provider, |p| &p.display_name)
}

/// Unix seconds as a date and time a person reads (UTC).
fn date(unix: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(unix) {
        Ok(t) => format!(
            "{}-{:02}-{:02} {:02}:{:02} UTC",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute()
        ),
        Err(_) => "unknown".to_owned(),
    }
}

/// Unix seconds as the day a person reads (UTC): how precise "last used" is.
fn day(unix: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(unix) {
        Ok(t) => format!("{}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day()),
        Err(_) => "unknown".to_owned(),
    }
}

/// A short name for a browser from its `User-Agent` ("Firefox on Linux"), for people to tell
/// their sessions apart; the whole string is shown beside it. Order matters: Edge and Opera say
/// "Chrome" too, and Chrome says "Safari".
fn browser_name(agent: &str) -> String {
    const BROWSERS: [(&str, &str); 7] = [
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
        ("curl/", "curl"),
        ("reqwest", "a program"),
    ];
    const SYSTEMS: [(&str, &str); 6] = [
        ("Android", "Android"),
        ("iPhone", "iOS"),
        ("iPad", "iPadOS"),
        ("Windows", "Windows"),
        ("Mac OS X", "macOS"),
        ("Linux", "Linux"),
    ];
    let browser = BROWSERS.iter().find(|(mark, _)| agent.contains(mark)).map(|(_, name)| *name);
    let system = SYSTEMS.iter().find(|(mark, _)| agent.contains(mark)).map(|(_, name)| *name);
    match (browser, system) {
        (Some(b), Some(s)) => format!("{b} on {s}"),
        (Some(b), None) => b.to_owned(),
        (None, Some(s)) => format!("A browser on {s}"),
        (None, None) if agent.is_empty() => "Unknown browser".to_owned(),
        (None, None) => "Another browser".to_owned(),
    }
}

#[derive(Debug, Deserialize)]
struct ProviderForm {
    provider: String,
}

#[derive(Debug, Deserialize)]
struct SessionForm {
    session: String,
}

/// A form without fields ("Log out everywhere else").
#[derive(Debug, Deserialize)]
struct NoFields {}

#[derive(Debug, Deserialize)]
struct DeleteForm {
    confirm: String,
}

/// A form of the account page, checked: sent from this site (the same `Origin` rule as logout),
/// by a logged-in user, with its fields. When it is not, the rejection is the answer: 403, the
/// login, or back to the account page with a message.
struct AccountForm<F> {
    user: CurrentUser,
    client: ClientAddr,
    session: Session,
    messages: Messages,
    form: F,
}

impl<F: serde::de::DeserializeOwned + Send> FromRequest<AppState> for AccountForm<F> {
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = request.into_parts();
        let Ok(client) = ClientAddr::from_request_parts(&mut parts, state).await;
        let session =
            Session::from_request_parts(&mut parts, state).await.map_err(IntoResponse::into_response)?;
        let messages =
            Messages::from_request_parts(&mut parts, state).await.map_err(IntoResponse::into_response)?;
        let what = "account form sent from another site";
        refuse_other_sites(state, client, &parts.headers, |_| false, what)
            .map_err(IntoResponse::into_response)?;
        let Some(user) = current_user(&session).await else { return Err(to_login(state)) };
        match Form::<F>::from_request(Request::from_parts(parts, body), state).await {
            Ok(Form(form)) => Ok(AccountForm { user, client, session, messages, form }),
            Err(_) => {
                messages.error("That form was incomplete; nothing was changed.");
                Err(back_to_account(state))
            }
        }
    }
}

fn back_to_account(state: &AppState) -> Response {
    Redirect::to(&format!("{}/account", state.base_path)).into_response()
}

/// `POST {base}/account/connect`: a login with the intent "connect to me".
async fn connect(
    State(state): State<AppState>,
    AccountForm { user, session, form, .. }: AccountForm<ProviderForm>,
) -> Result<Response, AppError> {
    let destination = crate::routes::login::Destination::default();
    crate::routes::login::start_login(&state, &form.provider, destination, Some(user.id), &session).await
}

async fn disconnect(
    State(state): State<AppState>,
    AccountForm { user, client, messages, form, .. }: AccountForm<ProviderForm>,
) -> Result<Response, AppError> {
    let name = display_name(&state, &form.provider).to_owned();
    match state.store.unlink_provider(UserId(user.id), &form.provider).await? {
        Unlinked::Removed(_) => {
            audit::unlinked(client, user.id, &form.provider);
            messages.success(format!("{name} no longer logs into this account."));
        }
        Unlinked::NotLinked => {
            messages.error(format!("{name} was not connected to this account; nothing was changed."));
        }
        Unlinked::LastIdentity => {
            messages.error(format!(
                "{name} is the only way you log in, so it stays: connect another provider first."
            ));
        }
    }
    Ok(back_to_account(&state))
}

/// `POST {base}/account/sessions/end`: ends one session (the page's own: a logout).
async fn end_session(
    State(state): State<AppState>,
    AccountForm { user, client, session, messages, form }: AccountForm<SessionForm>,
) -> Result<Response, AppError> {
    match account::end_session(&state, &user, &session, client, &form.session).await? {
        Ended::Other => messages.success("That session was ended: it is logged out."),
        Ended::Own => return Ok(Redirect::to(&state.after_logout()).into_response()),
        Ended::Unknown => messages.error("That session had already ended."),
    };
    Ok(back_to_account(&state))
}

/// `POST {base}/account/sessions/end-others`: "Log out everywhere else".
async fn end_other_sessions(
    State(state): State<AppState>,
    AccountForm { user, client, session, messages, form: NoFields {} }: AccountForm<NoFields>,
) -> Result<Response, AppError> {
    let ended = account::end_other_sessions(&state, &user, &session, client).await?;
    messages.success(match ended {
        0 => "There were no other sessions.".to_owned(),
        1 => "Your other session was logged out.".to_owned(),
        n => format!("Your {n} other sessions were logged out."),
    });
    Ok(back_to_account(&state))
}

/// `POST {base}/account/delete`: deletes the account once the username is typed out.
async fn delete_account(
    State(state): State<AppState>,
    AccountForm { user, client, session, messages, form }: AccountForm<DeleteForm>,
) -> Result<Response, AppError> {
    if form.confirm.trim() != user.username {
        messages.error("The account was not deleted: type your username exactly to confirm.");
        return Ok(back_to_account(&state));
    }
    account::delete_account(&state, &user, &session, client).await?;
    Ok(render(StatusCode::OK, "deleted.html", json!({ "username": user.username })))
}
