//! The host's say in a login: [`LoginEvent`] is what a hook set with
//! [`crate::LoginwithBuilder::on_login`] receives, [`LoginRefused`] is how it says no.
//!
//! The hook runs once per login, after loginwith has decided who this is and before the browser
//! is logged in. It sees the user row as stored (so a new user already has its id, for the host's
//! own tables), the identity the provider vouched for, and whether the user or the link is new.
//! When it refuses, nothing this login wrote remains: a new user or a new link is deleted again,
//! and a returning user's row is not touched at all (the hook runs before the login is stamped).
//! Nobody is logged in and the refusal's message is shown on loginwith's error page.

use crate::store::User;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// One login, as the host's hook ([`crate::LoginwithBuilder::on_login`]) sees it.
///
/// The hook runs once per login, after loginwith has decided who this is and before the browser
/// is logged in. It sees the user row as stored (so a new user already has its id, for the host's
/// own tables), the identity the provider vouched for, and whether the user or the link is new.
/// When it refuses ([`LoginRefused`]), nothing this login wrote remains: a new user or a new link
/// is deleted again, and a returning user's row is not touched at all (the hook runs before the
/// login is stamped). Nobody is logged in and the refusal's message is shown on loginwith's error
/// page.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LoginEvent {
    /// The user this login logs into (already stored; for a returning user, as of before this
    /// login).
    pub user: User,
    /// The provider's identity that logs in.
    pub identity: LoginIdentity,
    /// The user was created by this login.
    pub new_user: bool,
    /// The identity was attached to an existing user by this login (a verified address).
    pub new_link: bool,
}

/// What the provider said about the person, as loginwith believes it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LoginIdentity {
    /// The provider's configured name (`google`, `github`, ...).
    pub provider: String,
    /// The provider's stable id for the account.
    pub subject: String,
    /// The address the provider gave; `None` from providers without one (X).
    pub email: Option<String>,
    /// The provider vouched for the address and is trusted to (`trust_email_verified`).
    pub email_verified: bool,
    /// A display name, if the provider gave one.
    pub name: Option<String>,
    /// An https avatar URL, if the provider gave one.
    pub avatar_url: Option<String>,
}

/// A hook's refusal: the login does not happen, and `message` is shown to the person.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct LoginRefused {
    message: String,
}

impl LoginRefused {
    /// A refusal with the sentence the person reads (it is escaped on the page).
    pub fn new(message: impl Into<String>) -> Self {
        Self { message: message.into() }
    }

    /// The sentence shown to the person.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// What a hook returns.
pub type HookFuture = Pin<Box<dyn Future<Output = Result<(), LoginRefused>> + Send>>;

/// A stored hook.
#[derive(Clone)]
pub(crate) struct LoginHook(Arc<dyn Fn(LoginEvent) -> HookFuture + Send + Sync>);

impl LoginHook {
    pub(crate) fn new<F, Fut>(hook: F) -> Self
    where
        F: Fn(LoginEvent) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), LoginRefused>> + Send + 'static,
    {
        Self(Arc::new(move |event| Box::pin(hook(event))))
    }

    pub(crate) async fn call(&self, event: LoginEvent) -> Result<(), LoginRefused> {
        (self.0)(event).await
    }
}

impl std::fmt::Debug for LoginHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LoginHook")
    }
}
