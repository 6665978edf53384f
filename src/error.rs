//! One error type for the HTTP edge, mapped to a status and a page a person can read.
//!
//! Inside, each layer has its own typed error ([`StateError`], [`ProviderError`], [`StoreError`]);
//! here they become a status and a sentence. Server-side failures (5xx) are logged with their whole
//! cause chain; rejections of bad input (4xx) are the client's doing and only logged at debug level.
//! No variant carries a secret, so nothing here can print one.

use crate::oauth::pending::StateError;
use crate::oauth::ProviderError;
use crate::providers::oidc::{DiscoveryError, IdTokenError};
use crate::store::StoreError;
use crate::templates::render;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Everything a page handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// `/authorize/NAME` or `/callback/NAME` for a provider that is not configured.
    #[error("there is no login provider called {0:?}")]
    UnknownProvider(String),
    /// The callback's `state` did not match a pending attempt.
    #[error(transparent)]
    State(#[from] StateError),
    /// The callback had a valid state but no code.
    #[error("the provider's answer carried no authorization code")]
    MissingCode,
    /// The callback's query was malformed (e.g. a parameter given twice, RFC 6749 §3.1).
    #[error("the provider's answer is malformed: {0}")]
    BadCallback(String),
    /// A provider call failed.
    #[error("login with {provider} failed")]
    Provider {
        /// Display name of the provider.
        provider: String,
        /// What went wrong.
        #[source]
        source: ProviderError,
    },
    /// The ID token was refused.
    #[error("login with {provider} was refused")]
    IdToken {
        /// Display name of the provider.
        provider: String,
        /// Why.
        #[source]
        source: IdTokenError,
    },
    /// The callback's `iss` is missing or not the provider's issuer (RFC 9207 mix-up defence).
    #[error("the answer does not come from the provider this login was started with (iss mismatch)")]
    IssuerMismatch,
    /// An OpenID Connect provider could not be discovered.
    #[error("{provider} is unavailable")]
    Unavailable {
        /// Display name of the provider.
        provider: String,
        /// Why.
        #[source]
        source: DiscoveryError,
    },
    /// A cross-site form post was refused.
    #[error("this form was sent from another site")]
    CrossSite,
    /// The database failed.
    #[error("the user database failed")]
    Store(#[from] StoreError),
    /// The session store failed.
    #[error("the session store failed")]
    Session(#[from] tower_sessions::session::Error),
    /// `[access]` does not let this address in.
    #[error("{email} may not log in here")]
    AccessDenied {
        /// The address the provider gave.
        email: String,
        /// Whether it counted as verified.
        verified: bool,
    },
    /// A "connect another provider" attempt came back to a session where its user is no longer
    /// logged in.
    #[error("this connection was started by another login, so it was not made")]
    ConnectNotYours,
    /// The host's login hook refused the login; its message is shown.
    #[error("{0}")]
    Refused(crate::hooks::LoginRefused),
    /// The client went over a rate limit.
    #[error("too many requests from this address; try again in {retry_after_secs} seconds")]
    RateLimited {
        /// When to try again.
        retry_after_secs: u64,
    },
    /// The identity belongs to the provider's former issuer.
    #[error("login with {provider} cannot be completed")]
    IssuerChanged {
        /// Display name of the provider.
        provider: String,
        /// What the store found.
        #[source]
        source: StoreError,
    },
}

impl AppError {
    fn status(&self) -> StatusCode {
        match self {
            AppError::UnknownProvider(_) => StatusCode::NOT_FOUND,
            AppError::State(_)
            | AppError::MissingCode
            | AppError::BadCallback(_)
            | AppError::IssuerMismatch => StatusCode::BAD_REQUEST,
            AppError::CrossSite
            | AppError::ConnectNotYours
            | AppError::IdToken { .. }
            | AppError::Refused(_)
            | AppError::AccessDenied { .. } => StatusCode::FORBIDDEN,
            AppError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Provider { source, .. } => match source {
                ProviderError::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
                ProviderError::NoVerifiedEmail => StatusCode::FORBIDDEN,
                _ => StatusCode::BAD_GATEWAY,
            },
            AppError::IssuerChanged { .. } => StatusCode::CONFLICT,
            AppError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            _ if self.database_unavailable() => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Store(_) | AppError::Session(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn title(&self) -> &'static str {
        match self {
            AppError::UnknownProvider(_) => "Unknown login provider",
            AppError::State(_)
            | AppError::MissingCode
            | AppError::BadCallback(_)
            | AppError::IssuerMismatch => "This login cannot be completed",
            AppError::IdToken { .. } | AppError::Refused(_) | AppError::AccessDenied { .. } => {
                "Login refused"
            }
            AppError::Unavailable { .. } => "Login provider unavailable",
            AppError::CrossSite => "Request refused",
            AppError::ConnectNotYours => "This connection cannot be completed",
            AppError::Provider { source: ProviderError::NoVerifiedEmail, .. } => "No verified e-mail address",
            AppError::Provider { source: ProviderError::Timeout { .. }, .. } => {
                "The login provider did not answer"
            }
            AppError::Provider { .. } => "The login provider answered badly",
            AppError::IssuerChanged { .. } => "This account belongs to another issuer",
            AppError::RateLimited { .. } => "Too many requests",
            _ if self.database_unavailable() => "Temporarily unavailable",
            AppError::Store(_) | AppError::Session(_) => "Something went wrong on our side",
        }
    }

    /// The sentence shown to the person.
    fn detail(&self) -> String {
        match self {
            AppError::Provider { provider, source: ProviderError::NoVerifiedEmail } => format!(
                "{provider} has no verified primary e-mail address for your account. Verify one at {provider}, then log in again."
            ),
            AppError::Provider { provider, source } => {
                format!("Login with {provider} failed: {source}. Please try again later.")
            }
            AppError::IdToken { provider, source } => {
                format!("Login with {provider} was refused: {source}. Nobody was logged in.")
            }
            AppError::Unavailable { provider, source } => {
                format!("Login with {provider} is not available right now: {source}.")
            }
            AppError::Refused(refused) => format!("{} Nobody was logged in.", refused.message()),
            AppError::AccessDenied { email, verified: true } => format!(
                "This site only lets in certain addresses, and {email} is not one of them. Nobody was logged in."
            ),
            AppError::AccessDenied { email, verified: false } if email.is_empty() => {
                "This site only lets in verified addresses it knows, and your provider gave no address. \
                 Nobody was logged in."
                    .into()
            }
            AppError::AccessDenied { email, verified: false } => format!(
                "This site only lets in verified addresses it knows, and your provider did not vouch for \
                 {email}. Nobody was logged in."
            ),
            AppError::IssuerChanged { provider, source } => format!(
                "Your {provider} account is known here from another issuer than the one {provider} is \
                 configured with now ({source}). Accounts of one issuer are never given to another's \
                 users, so nobody was logged in. Please tell the administrator of this site."
            ),
            AppError::Store(_) | AppError::Session(_) => "Please try again in a moment.".into(),
            other => {
                let mut s = other.to_string();
                if let Some(first) = s.get(0..1) {
                    let upper = first.to_uppercase();
                    s.replace_range(0..1, &upper);
                }
                format!("{s}. Go back to the start page and log in again.")
            }
        }
    }

    /// A stable code for the audit log.
    pub fn reason(&self) -> &'static str {
        match self {
            AppError::UnknownProvider(_) => "unknown_provider",
            AppError::State(StateError::Missing) => "state_missing",
            AppError::State(StateError::Unknown) => "state_unknown",
            AppError::State(StateError::Expired) => "state_expired",
            AppError::State(StateError::WrongProvider) => "state_wrong_provider",
            AppError::MissingCode => "code_missing",
            AppError::BadCallback(_) => "bad_callback",
            AppError::Provider { source: ProviderError::Timeout { .. }, .. } => "provider_timeout",
            AppError::Provider { source: ProviderError::NoVerifiedEmail, .. } => "no_verified_email",
            AppError::Provider { source: ProviderError::TokenRefused { .. }, .. } => "code_refused",
            AppError::Provider { .. } => "provider_failed",
            AppError::IdToken { .. } => "id_token_refused",
            AppError::IssuerMismatch => "iss_mismatch",
            AppError::Unavailable { .. } => "provider_unavailable",
            AppError::CrossSite => "cross_site",
            AppError::ConnectNotYours => "connect_other_session",
            AppError::RateLimited { .. } => "rate_limited",
            AppError::Refused(_) => "refused_by_host",
            AppError::AccessDenied { .. } => "access_denied",
            AppError::IssuerChanged { .. } => "issuer_changed",
            AppError::Store(_) => "database",
            AppError::Session(_) => "session_store",
        }
    }

    fn log(&self) {
        let status = self.status();
        if let AppError::Unavailable { .. } = self {
            // Already logged once by the discovery task; each click on the button need not be an error.
            tracing::warn!(status = status.as_u16(), error = %error_chain(self), "provider unavailable");
        } else if let AppError::IssuerChanged { .. } = self {
            // Not the person's doing: the configuration changed under their account.
            tracing::warn!(status = status.as_u16(), error = %error_chain(self), "login refused");
        } else if status.is_server_error() {
            tracing::error!(status = status.as_u16(), error = %error_chain(self), "request failed");
        } else {
            tracing::debug!(status = status.as_u16(), error = %error_chain(self), "request refused");
        }
    }
}

impl AppError {
    /// The database does not answer (down, restarting, unreachable, out of connections), as
    /// opposed to a query that failed: a 503, which says "come back", not a 500.
    fn database_unavailable(&self) -> bool {
        use tower_sessions::session::Error as SessionError;
        use tower_sessions::session_store::Error as StoreFailure;
        match self {
            AppError::Store(StoreError::Connect(e) | StoreError::Query(e)) => sqlx_unavailable(e),
            // The session store's errors are strings by then; a backend error is the database
            // not answering (its other failures are encoding ones, which ours cannot make).
            AppError::Session(SessionError::Store(StoreFailure::Backend(_))) => true,
            _ => false,
        }
    }
}

/// Whether a sqlx error means the database is not there, rather than that a query was wrong.
pub(crate) fn sqlx_unavailable(err: &sqlx::Error) -> bool {
    matches!(
        err,
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::Tls(_)
    ) || matches!(err, sqlx::Error::Database(e) if e.code().is_some_and(|c| c.starts_with("57P") || c.starts_with("08")))
}

/// tower-sessions answers a session it could not save at the end of a request with a bare 500
/// (no body, no headers), and axum-messages, which reads the session before every handler, one it
/// could not load. The server's own routes never answer so, so such an answer is the database not
/// answering under the session: shown as the 503 page, with `Retry-After` — or, to the JSON API
/// (`api`: a path under `{base}/api/`), as its JSON error `unavailable` — and nothing of the request's
/// session was written. Only around the server's router: a host app's own bare 500s are its own
/// business.
pub(crate) fn session_failure_is_unavailable(response: Response, api: bool) -> Response {
    let bare = response.status() == StatusCode::INTERNAL_SERVER_ERROR
        && !response.headers().contains_key(axum::http::header::CONTENT_TYPE);
    if !bare {
        return response;
    }
    // Already logged (as an error) by the layer that failed.
    if api {
        return ApiError::Unavailable.into_response();
    }
    let mut page = render(
        StatusCode::SERVICE_UNAVAILABLE,
        "error.html",
        json!({
            "status": 503,
            "title": "Temporarily unavailable",
            "detail": "Your session could not be read or saved because the database is not answering. Please try again in a moment.",
        }),
    );
    page.headers_mut().insert(axum::http::header::RETRY_AFTER, DATABASE_RETRY_AFTER);
    page
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        self.log();
        let status = self.status();
        let mut response = render(
            status,
            "error.html",
            json!({ "status": status.as_u16(), "title": self.title(), "detail": self.detail() }),
        );
        if let AppError::RateLimited { retry_after_secs } = self {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, retry_after_secs.into());
        } else if self.database_unavailable() {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, DATABASE_RETRY_AFTER);
        }
        response
    }
}

/// When to try again while the database does not answer.
const DATABASE_RETRY_AFTER: axum::http::HeaderValue = axum::http::HeaderValue::from_static("5");

/// `outer: inner: innermost`, for logs.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Errors of the JSON API: a status and `{"error": CODE, "code": CODE, "message": "..."}`. The
/// code is stable (clients branch on it; `error` carries the same, as it always has), the message
/// is for people and may change.
#[derive(Debug)]
pub enum ApiError {
    /// No one is logged in.
    Unauthenticated,
    /// A change sent from another origin, or with neither `Origin` nor `Sec-Fetch-Site`.
    CrossOrigin,
    /// A change without a JSON content type or an `X-Requested-With` header (which a plain HTML
    /// form cannot send).
    JsonRequired,
    /// The user has no identity of that provider.
    NotLinked,
    /// Disconnecting would remove the user's last identity.
    LastIdentity,
    /// No live session of the user's has that id.
    SessionNotFound,
    /// The request's body is not the JSON the endpoint takes.
    BadRequest,
    /// The typed confirmation does not match the account.
    ConfirmationMismatch,
    /// The session could not be read or saved: the database does not answer (503 with
    /// `Retry-After`, like an [`ApiError::Internal`] failure of the database).
    Unavailable,
    /// A server-side failure (logged); `unavailable` when it is the database not answering.
    Internal(AppError),
}

impl ApiError {
    /// The status and the stable code.
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::Unauthenticated => (StatusCode::UNAUTHORIZED, "unauthenticated"),
            ApiError::CrossOrigin => (StatusCode::FORBIDDEN, "cross_origin"),
            ApiError::JsonRequired => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "json_required"),
            ApiError::NotLinked => (StatusCode::NOT_FOUND, "not_linked"),
            ApiError::LastIdentity => (StatusCode::CONFLICT, "last_identity"),
            ApiError::SessionNotFound => (StatusCode::NOT_FOUND, "session_not_found"),
            ApiError::BadRequest => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::ConfirmationMismatch => (StatusCode::BAD_REQUEST, "confirmation_mismatch"),
            ApiError::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::Internal(err) if err.database_unavailable() => {
                (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
            }
            ApiError::Internal(err) => (err.status(), "internal"),
        }
    }

    /// The database does not answer: the client should come back (`Retry-After`), and may branch
    /// on the code `unavailable` rather than treat it as a failure of the request.
    fn unavailable(&self) -> bool {
        match self {
            ApiError::Unavailable => true,
            ApiError::Internal(err) => err.database_unavailable(),
            _ => false,
        }
    }

    /// The stable code clients branch on (also the audit log's reason for a refusal).
    pub(crate) fn code(&self) -> &'static str {
        self.status_and_code().1
    }

    fn message(&self) -> &'static str {
        match self {
            ApiError::Unauthenticated => "nobody is logged in",
            ApiError::CrossOrigin => {
                "changes are only accepted from this site's own pages (Origin or Sec-Fetch-Site)"
            }
            ApiError::JsonRequired => "send Content-Type: application/json or an X-Requested-With header",
            ApiError::NotLinked => "no identity of this provider logs into your account",
            ApiError::LastIdentity => "this is the only way you log in: connect another provider first",
            ApiError::SessionNotFound => "none of your sessions has this id (it may have ended already)",
            ApiError::BadRequest => "the request body is not the JSON this endpoint takes",
            ApiError::ConfirmationMismatch => "\"confirm\" must be your username exactly",
            ApiError::Unavailable => "the database is not answering; try again in a moment",
            ApiError::Internal(err) if err.database_unavailable() => {
                "the database is not answering; try again in a moment"
            }
            ApiError::Internal(_) => "the server failed; try again",
        }
    }
}

impl<E: Into<AppError>> From<E> for ApiError {
    fn from(err: E) -> Self {
        ApiError::Internal(err.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(err) = &self {
            err.log();
        }
        let (status, code) = self.status_and_code();
        let mut response =
            (status, axum::Json(json!({"error": code, "code": code, "message": self.message()})))
                .into_response();
        if self.unavailable() {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, DATABASE_RETRY_AFTER);
        }
        response
    }
}
