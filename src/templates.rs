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
    for (name, source) in [
        ("base.html", include_str!("../templates/base.html")),
        ("index.html", include_str!("../templates/index.html")),
        ("error.html", include_str!("../templates/error.html")),
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

/// Renders a page with a status; a template failure becomes a plain 500 and a log line.
pub fn render(status: StatusCode, name: &str, context: impl Serialize) -> Response {
    match TEMPLATES.get_template(name).and_then(|t| t.render(context)) {
        Ok(html) => (status, Html(html)).into_response(),
        Err(err) => {
            tracing::error!(template = name, error = %err, "cannot render page");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}
