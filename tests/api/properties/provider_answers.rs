//! Properties 3 and 4: token endpoint answers and userinfo answers of a plain OAuth 2.0 provider:
//! any status, content type and bytes, random JSON, and edits of the valid documents.

use super::callbacks::app_with_mock;
use super::callbacks::begin_mock_login;
use super::generators::*;
use super::harness::*;
use proptest::prelude::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

/// The mock's valid token answer, which the edits start from.
fn valid_token_answer() -> Value {
    json!({
        "access_token": "mock-token",
        "token_type": "bearer",
        "expires_in": 3600,
        "scope": "email",
        "refresh_token": "mock-refresh",
    })
}

/// The mock's valid profile (pointers `/sub`, `/email`, `/email_verified`, `/name`).
fn valid_profile() -> Value {
    json!({
        "sub": "mock-1",
        "id": 1,
        "login": "someone",
        "email": "someone@example.com",
        "email_verified": true,
        "name": "Some One",
    })
}

/// RFC 6749 §5.1/§5.2: a 2xx JSON object with a non-empty `access_token`, `token_type` Bearer
/// (RFC 6750; the only kind we use) and no `error` is a token; anything else is a refusal.
fn token_model(status: u16, body: &[u8]) -> Expected {
    let Ok(json) = serde_json::from_slice::<Value>(body) else { return Expected::Refuse };
    let token = json.get("access_token").and_then(Value::as_str).filter(|t| !t.is_empty());
    let bearer =
        json.get("token_type").and_then(Value::as_str).is_some_and(|t| t.eq_ignore_ascii_case("bearer"));
    if !(200..300).contains(&status) || json.get("error").is_some() || !bearer {
        return Expected::Refuse;
    }
    let Some(token) = token else { return Expected::Refuse };
    // A token that cannot go into an `Authorization` header (control characters) fails at the
    // userinfo call; that it is refused rather than sent is fine either way.
    let header_safe = token.chars().all(|c| c == '\t' || (c >= ' ' && c != '\u{7f}'));
    if bodiless(status) || !header_safe {
        Expected::Either
    } else {
        Expected::LogIn
    }
}

/// The profile the mock's configuration reads: a string or integer at `/sub` that is a subject
/// (1–255 bytes, no control characters), and an e-mail address at `/email`.
fn userinfo_model(status: u16, body: &[u8]) -> (Expected, Option<String>) {
    let Ok(json) = serde_json::from_slice::<Value>(body) else { return (Expected::Refuse, None) };
    if !(200..300).contains(&status) {
        return (Expected::Refuse, None);
    }
    let text_at = |p: &str| match json.pointer(p) {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => Some(n.to_string()),
        _ => None,
    };
    let subject = text_at("/sub").filter(|s| s.len() <= 255 && !s.chars().any(char::is_control));
    let email_ok = text_at("/email").is_some_and(|e| {
        let e = e.trim();
        e.rsplit_once('@').is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty())
            && e.len() <= 254
            && !e.chars().any(|c| c.is_whitespace() || c.is_control())
    });
    match subject {
        Some(sub) if email_ok => {
            (if bodiless(status) { Expected::Either } else { Expected::LogIn }, Some(sub))
        }
        _ => (Expected::Refuse, None),
    }
}

#[test]
fn token_answers_never_panic_and_log_in_only_when_valid() {
    let rt = runtime("token_answers");
    let _context = rt.enter();
    let (mock, app) = rt.block_on(app_with_mock());
    let valid = valid_token_answer();
    let tally = Tally::default();
    check_property("token_answers", 96, provider_answer(), |answer| {
        rt.block_on(async {
            let scripted = answer.scripted(&valid);
            let expected = token_model(scripted.status, &scripted.body);
            mock.set_token(scripted);
            let (browser, state) = begin_mock_login(&app).await?;
            let users = app.user_count().await;
            let url = format!("{}/callback/mock?code=good-code&state={state}", app.address);
            let response = observe(browser.client.get(url)).await?;
            check_answer(&browser, &response, expected, &Who::Email("someone@example.com".into()), &tally)
                .await?;
            if response.is_error() {
                prop_assert_eq!(app.user_count().await, users, "a refused login must not write a user");
            }
            Ok(())
        })
    });
    tally.print("token_answers");
}

#[test]
fn userinfo_answers_never_panic_and_log_in_only_with_a_usable_profile() {
    let rt = runtime("userinfo_answers");
    let _context = rt.enter();
    let (mock, app) = rt.block_on(app_with_mock());
    let valid = valid_profile();
    let tally = Tally::default();
    check_property("userinfo_answers", 96, provider_answer(), |answer| {
        rt.block_on(async {
            let scripted = answer.scripted(&valid);
            let (expected, subject) = userinfo_model(scripted.status, &scripted.body);
            mock.set_userinfo(scripted);
            let (browser, state) = begin_mock_login(&app).await?;
            let users = app.user_count().await;
            let url = format!("{}/callback/mock?code=good-code&state={state}", app.address);
            let response = observe(browser.client.get(url)).await?;
            let who = Who::Subject("mock", subject.unwrap_or_default());
            check_answer(&browser, &response, expected, &who, &tally).await?;
            prop_assert_ne!(response.status, StatusCode::OK, "an error page must not be a 200");
            if response.is_error() {
                prop_assert_eq!(app.user_count().await, users, "a refused login must not write a user");
            }
            Ok(())
        })
    });
    tally.print("userinfo_answers");
}
