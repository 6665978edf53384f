//! HTML templates, compiled into the binary (the app must work from a lone executable, offline).
//!
//! minijinja escapes every value in `.html` templates, so provider text (error descriptions,
//! names) can never become markup.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use minijinja::Environment;
use serde::Serialize;
use std::sync::LazyLock;

static TEMPLATES: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    env.add_function("base", || BASE_PATH.try_with(Clone::clone).unwrap_or_default());
    for (name, source) in [
        ("base.html", include_str!("../templates/base.html")),
        ("index.html", include_str!("../templates/index.html")),
        ("account.html", include_str!("../templates/account.html")),
        ("deleted.html", include_str!("../templates/deleted.html")),
        ("messages.html", include_str!("../templates/messages.html")),
        ("error.html", include_str!("../templates/error.html")),
        ("gateway_denied.html", include_str!("../templates/gateway_denied.html")),
        ("dev_authorize.html", include_str!("../templates/dev_authorize.html")),
        ("dev_error.html", include_str!("../templates/dev_error.html")),
        ("resubmit.html", include_str!("../templates/resubmit.html")),
    ] {
        if let Err(err) = env.add_template(name, source) {
            tracing::error!(template = name, error = %err, "template does not compile");
        }
    }
    env
});

tokio::task_local! {
    /// The path loginwith's routes live under (`""` or e.g. `/auth`), for the links of the page
    /// being rendered. Set by [`with_base_path`] around every loginwith request, so that pages
    /// rendered deep inside (an error page from `AppError`) need no state to link correctly.
    static BASE_PATH: String;
}

/// Runs a request of loginwith's routes with their base path known to [`render`].
pub(crate) async fn with_base_path<F: std::future::Future>(base: String, request: F) -> F::Output {
    BASE_PATH.scope(base, request).await
}

/// Renders a page with a status; a template failure becomes a plain 500 and a log line. Every
/// page can call `base()`, the path loginwith's routes live under (a function rather than a
/// context value, so that the page's own context is rendered as it is, without a copy). Templates print `base` and the login
/// URLs made from it with `|safe` (minijinja would write every `/` as `&#x2f;`): `base` is the
/// path of a parsed URL, so its quotes and angle brackets are percent-encoded already, and login
/// URLs add only a validated provider name and a form-encoded `next`.
pub fn render(status: StatusCode, name: &str, context: impl Serialize) -> Response {
    match TEMPLATES.get_template(name).and_then(|t| t.render(context)) {
        Ok(html) => (status, Html(html)).into_response(),
        Err(err) => {
            tracing::error!(template = name, error = %err, "cannot render page");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}
