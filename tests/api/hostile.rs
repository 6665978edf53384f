//! Every way the login callback can fail, driven against the scriptable mock provider on SQLite
//! and PostgreSQL: unknown providers, provider errors, bad / expired / reused / foreign `state`,
//! missing codes, and every kind of bad answer from the token and userinfo endpoints. Each test
//! asserts the exact status, a phrase of the page, that nobody is logged in afterwards, that no
//! user was written, and how many requests reached the provider. The last tests check the shape
//! of what we send: the authorize redirect, the token request (PKCE, client authentication) and
//! the userinfo call.

use crate::db_tests;
use crate::helpers::*;
use crate::mock_provider::{MockProvider, Scripted};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use reqwest::{Response, StatusCode};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::time::{Duration, Instant};

db_tests!(
    unknown_provider_is_a_404,
    provider_error_is_flashed_escaped_once_and_burns_the_state,
    provider_error_code_and_uri_cannot_inject_markup,
    provider_error_without_a_matching_attempt_shows_no_attacker_text,
    a_state_whose_callback_ended_in_a_5xx_cannot_be_used_again,
    missing_state_is_refused,
    wrong_state_is_refused,
    state_from_another_browser_is_refused,
    expired_state_is_refused,
    replayed_callback_is_refused,
    state_for_another_provider_is_refused,
    missing_code_is_refused,
    repeated_parameters_are_refused,
    token_http_500_is_a_502,
    token_refusal_in_a_200_is_a_502_naming_the_error,
    token_refusal_in_a_400_is_a_502_naming_the_error,
    token_without_access_token_is_a_502,
    token_that_is_not_json_is_a_502,
    token_type_mac_is_a_502,
    huge_token_response_is_a_502,
    token_endpoint_that_never_answers_is_a_quick_504,
    unreachable_token_endpoint_is_a_502,
    userinfo_that_is_not_json_is_a_502,
    userinfo_401_is_a_502,
    huge_userinfo_with_content_length_is_a_502,
    huge_chunked_userinfo_without_content_length_is_a_502,
    endless_userinfo_is_cut_off_at_the_limit,
    userinfo_that_never_answers_is_a_quick_504,
    userinfo_without_email_is_a_502,
    userinfo_without_subject_is_a_502,
    userinfo_with_a_malformed_email_is_a_502,
    authorize_redirect_carries_the_oauth_parameters,
    token_request_carries_code_redirect_uri_and_pkce_verifier,
    client_secret_basic_sends_the_credentials_in_a_header,
    toml_integers_configure_the_limits,
);

/// `[http]` with a 4096-byte cap on provider answers.
const CAP_4096: &str = "[http]\nmax_response_bytes = 4096\n";
/// `[http]` with a 500 ms total timeout on provider calls.
const TIMEOUT_500: &str = "[http]\ntimeout_ms = 500\n";
/// `[server]` key: a login attempt expires after one second.
const LOGIN_TIMEOUT_1: &str = "login_timeout_secs = 1";

/// A mock provider and the app with it as `[providers.mock]`.
async fn with_mock(db: Db) -> (MockProvider, TestApp) {
    with_mock_and(db, "", "").await
}

/// Same, with extra `[server]` keys and extra TOML (e.g. an `[http]` table).
async fn with_mock_and(db: Db, server_keys: &str, extra_toml: &str) -> (MockProvider, TestApp) {
    let mock = MockProvider::start().await;
    let toml = format!("{}{extra_toml}", mock.provider_toml("mock"));
    let app = TestApp::builder(db).server(server_keys).toml(&toml).spawn().await;
    (mock, app)
}

/// `GET /authorize/NAME`; returns the `state` it sent to the provider.
async fn begin(app: &TestApp, provider: &str) -> String {
    let authorize = app.begin_login(provider).await;
    query_param(&authorize, "state").expect("the authorize redirect carries a state")
}

/// `/callback/NAME?...` with each pair form-encoded, in order (a browser-style query).
fn callback_path(provider: &str, pairs: &[(&str, &str)]) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        query.append_pair(k, v);
    }
    format!("/callback/{provider}?{}", query.finish())
}

/// A whole login at the mock: begin, then the callback with a good state and code. The mock
/// answers the token and userinfo calls as scripted.
async fn attempt_login(app: &TestApp) -> Response {
    let state = begin(app, "mock").await;
    app.get(&callback_path("mock", &[("code", "good-code"), ("state", &state)])).await
}

/// Nobody is logged in and no user was written.
async fn assert_nothing_written(app: &TestApp) {
    app.assert_logged_out().await;
    assert_eq!(app.user_count().await, 0, "no user may be written");
}

/// A port on 127.0.0.1 where nothing listens.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    port
}

// ---------------------------------------------------------------------------------------------
// Unknown provider

async fn unknown_provider_is_a_404(db: Db) {
    let (mock, app) = with_mock(db).await;
    let response = app.get("/authorize/nope").await;
    expect_page(response, StatusCode::NOT_FOUND, "no login provider called").await;
    let state = begin(&app, "mock").await;
    let response = app.get(&callback_path("nope", &[("code", "good-code"), ("state", &state)])).await;
    let page = expect_page(response, StatusCode::NOT_FOUND, "no login provider called").await;
    assert!(page.contains("Unknown login provider"), "{page}");

    // A name made of markup is neither a provider nor markup on the page.
    for path in [
        "/authorize/%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        "/callback/%3Cscript%3Ealert(1)%3C%2Fscript%3E?code=c&state=s",
    ] {
        let page = expect_page(app.get(path).await, StatusCode::NOT_FOUND, "no login provider called").await;
        assert!(!page.contains("<script>alert(1)"), "{page}");
    }

    assert_eq!(mock.token_requests(), 0);
    assert_nothing_written(&app).await;
}

// ---------------------------------------------------------------------------------------------
// The provider reports an error

async fn provider_error_is_flashed_escaped_once_and_burns_the_state(db: Db) {
    let (mock, app) = with_mock(db).await;
    let state = begin(&app, "mock").await;
    let response = app
        .get(&callback_path(
            "mock",
            &[
                ("error", "access_denied"),
                ("error_description", "<script>alert(1)</script>"),
                ("state", &state),
            ],
        ))
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/");

    let home = app.get("/").await;
    assert_eq!(home.status(), StatusCode::OK);
    let home = home.text().await.unwrap();
    assert!(
        home.contains("Login with Mock was not completed: access_denied"),
        "the provider's error is shown:\n{home}"
    );
    assert!(home.contains("&lt;script&gt;alert(1)"), "the description is shown HTML-escaped:\n{home}");
    assert!(!home.contains("<script>alert(1)"), "the description must never be raw markup:\n{home}");

    // Shown once.
    let again = app.get("/").await.text().await.unwrap();
    assert!(!again.contains("not completed"), "{again}");
    assert!(!again.contains("alert(1)"), "{again}");

    assert_eq!(mock.token_requests(), 0, "an error answer makes no token request");
    assert_nothing_written(&app).await;

    // The attempt is burnt: the same state with a code is refused.
    let response = app.get(&callback_path("mock", &[("code", "good-code"), ("state", &state)])).await;
    expect_page(response, StatusCode::BAD_REQUEST, "does not belong to a login started in this browser")
        .await;
    assert_eq!(mock.token_requests(), 0);
    assert_nothing_written(&app).await;
}

async fn provider_error_code_and_uri_cannot_inject_markup(db: Db) {
    let (mock, app) = with_mock(db).await;
    let state = begin(&app, "mock").await;
    let response = app
        .get(&callback_path(
            "mock",
            &[
                ("error", "\"><img src=x onerror=alert(1)>"),
                ("error_uri", "javascript:alert(2)"),
                ("state", &state),
            ],
        ))
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/");
    let home = app.get("/").await.text().await.unwrap();
    assert!(home.contains("Login with Mock was not completed"), "{home}");
    assert!(!home.contains("<img"), "the error code is not markup:\n{home}");
    assert!(!home.contains("javascript:"), "a non-https error_uri is dropped:\n{home}");
    assert_eq!(mock.token_requests(), 0);
    assert_nothing_written(&app).await;
}

/// Text injection: a link to `/callback/X?error=...&error_description=...` that matches no login
/// of this browser must not put its text on our pages.
async fn provider_error_without_a_matching_attempt_shows_no_attacker_text(db: Db) {
    let (mock, app) = with_mock(db).await;
    let real = begin(&app, "mock").await;
    let lure = "Your account is locked. Call +1 555 0100 now";
    let forged = format!("{real}x");
    for pairs in [
        vec![("error", "access_denied"), ("error_description", lure)],
        vec![("error", "access_denied"), ("error_description", lure), ("state", forged.as_str())],
        vec![("error", "access_denied"), ("error_description", lure), ("state", "")],
    ] {
        let page = expect_page(
            app.get(&callback_path("mock", &pairs)).await,
            StatusCode::BAD_REQUEST,
            "This login cannot be completed",
        )
        .await;
        assert!(!page.contains("Call +1 555"), "no attacker text on the error page:\n{page}");
        assert!(!page.contains("access_denied"), "{page}");
    }
    let home = app.get("/").await.text().await.unwrap();
    assert!(!home.contains("Call +1 555") && !home.contains("not completed"), "no flash:\n{home}");

    // A browser with no session at all gets the same page, and no session is made for it.
    let stranger = app.another_browser();
    let response = stranger
        .get(&callback_path("mock", &[("error", "x"), ("error_description", lure), ("state", "s")]))
        .await;
    expect_page(response, StatusCode::BAD_REQUEST, "This login cannot be completed").await;
    assert!(stranger.session_cookie().is_none(), "no session row for a stranger's error link");

    // The real attempt was not touched by any of this: it still completes.
    let response = app.get(&callback_path("mock", &[("code", "good-code"), ("state", &real)])).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    app.assert_logged_in_as("someone@example.com").await;
    assert_eq!(mock.token_requests(), 1);
}

/// tower-sessions does not save a session whose answer is a 5xx. The attempt's removal must be
/// durable before the provider is called, or the same state would work again with another code.
async fn a_state_whose_callback_ended_in_a_5xx_cannot_be_used_again(db: Db) {
    let (mock, app) = with_mock_and(db, "", TIMEOUT_500).await;
    let good = Scripted::json(200, json!({"access_token": "mock-token", "token_type": "bearer"}));
    for (failing, status) in [
        (Scripted::text(500, "text/plain", "down"), StatusCode::BAD_GATEWAY),
        (good.clone().delayed(Duration::from_secs(30)), StatusCode::GATEWAY_TIMEOUT),
    ] {
        mock.set_token(failing);
        let state = begin(&app, "mock").await;
        let before = mock.token_requests();
        let response = app.get(&callback_path("mock", &[("code", "first-code"), ("state", &state)])).await;
        assert_eq!(response.status(), status);
        assert_eq!(mock.token_requests(), before + 1);

        mock.set_token(good.clone());
        let response = app.get(&callback_path("mock", &[("code", "second-code"), ("state", &state)])).await;
        expect_page(response, StatusCode::BAD_REQUEST, "does not belong to a login started in this browser")
            .await;
        assert_eq!(mock.token_requests(), before + 1, "the replay made no token request");
        assert_nothing_written(&app).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Bad, expired, reused or foreign state; missing code

async fn missing_state_is_refused(db: Db) {
    let (mock, app) = with_mock(db).await;
    let _state = begin(&app, "mock").await;
    let response = app.get(&callback_path("mock", &[("code", "good-code")])).await;
    expect_page(response, StatusCode::BAD_REQUEST, "answer carried no state").await;
    assert_eq!(mock.token_requests(), 0);
    assert_nothing_written(&app).await;
}

async fn wrong_state_is_refused(db: Db) {
    let (mock, app) = with_mock(db).await;
    let state = begin(&app, "mock").await;
    let mut forged = state.clone();
    let last = if forged.pop() == Some('A') { 'B' } else { 'A' };
    forged.push(last);
    for bad in [forged.as_str(), "forged-state-0123456789abcdef", ""] {
        let response = app.get(&callback_path("mock", &[("code", "good-code"), ("state", bad)])).await;
        expect_page(response, StatusCode::BAD_REQUEST, "does not belong to a login started in this browser")
            .await;
    }
    assert_eq!(mock.token_requests(), 0);
    assert_nothing_written(&app).await;
}

/// Login CSRF: an attacker's callback URL (their state, their code) opened in the victim's browser.
async fn state_from_another_browser_is_refused(db: Db) {
    let (mock, attacker) = with_mock(db).await;
    let state = begin(&attacker, "mock").await;
    let url = callback_path("mock", &[("code", "good-code"), ("state", &state)]);

    let victim = attacker.another_browser();
    expect_page(
        victim.get(&url).await,
        StatusCode::BAD_REQUEST,
        "does not belong to a login started in this browser",
    )
    .await;
    assert_eq!(mock.token_requests(), 0);
    assert_nothing_written(&victim).await;
    attacker.assert_logged_out().await;

    // The attempt was real: in the browser that started it, it still completes.
    let response = attacker.get(&url).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    attacker.assert_logged_in_as("someone@example.com").await;
    victim.assert_logged_out().await;
}

async fn expired_state_is_refused(db: Db) {
    let (mock, app) = with_mock_and(db, LOGIN_TIMEOUT_1, "").await;
    let state = begin(&app, "mock").await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let response = app.get(&callback_path("mock", &[("code", "good-code"), ("state", &state)])).await;
    let page = expect_page(response, StatusCode::BAD_REQUEST, "expired").await;
    assert!(page.contains("This login attempt expired"), "{page}");
    assert_eq!(mock.token_requests(), 0);
    assert_nothing_written(&app).await;
}

async fn replayed_callback_is_refused(db: Db) {
    let (mock, app) = with_mock(db).await;
    let state = begin(&app, "mock").await;
    let url = callback_path("mock", &[("code", "good-code"), ("state", &state)]);
    let response = app.get(&url).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    app.assert_logged_in_as("someone@example.com").await;
    assert_eq!(mock.token_requests(), 1);
    app.logout().await;
    app.assert_logged_out().await;

    // The exact same callback again, in the same browser and in another one.
    expect_page(
        app.get(&url).await,
        StatusCode::BAD_REQUEST,
        "does not belong to a login started in this browser",
    )
    .await;
    let other = app.another_browser();
    expect_page(
        other.get(&url).await,
        StatusCode::BAD_REQUEST,
        "does not belong to a login started in this browser",
    )
    .await;
    assert_eq!(mock.token_requests(), 1, "a replay makes no token request");
    app.assert_logged_out().await;
    other.assert_logged_out().await;
    assert_eq!(app.user_count().await, 1, "only the first login wrote a user");
}

/// Mix-up defence: a state issued for provider A delivered to provider B's callback.
async fn state_for_another_provider_is_refused(db: Db) {
    let alpha = MockProvider::start().await;
    let beta = MockProvider::start().await;
    let toml = format!("{}{}", alpha.provider_toml("alpha"), beta.provider_toml("beta"));
    let app = TestApp::builder(db).toml(&toml).spawn().await;
    let state = begin(&app, "alpha").await;
    let response = app.get(&callback_path("beta", &[("code", "good-code"), ("state", &state)])).await;
    expect_page(response, StatusCode::BAD_REQUEST, "came back to a different provider").await;
    assert_eq!(alpha.token_requests(), 0);
    assert_eq!(beta.token_requests(), 0);
    assert_nothing_written(&app).await;

    // The attempt was consumed: it is no good at its own provider any more either.
    let response = app.get(&callback_path("alpha", &[("code", "good-code"), ("state", &state)])).await;
    expect_page(response, StatusCode::BAD_REQUEST, "does not belong to a login started in this browser")
        .await;
    assert_eq!(alpha.token_requests(), 0);
    assert_eq!(beta.token_requests(), 0);
    assert_nothing_written(&app).await;
}

async fn missing_code_is_refused(db: Db) {
    let (mock, app) = with_mock(db).await;
    let state = begin(&app, "mock").await;
    let response = app.get(&callback_path("mock", &[("state", &state)])).await;
    expect_page(response, StatusCode::BAD_REQUEST, "carried no authorization code").await;
    // The attempt was used up by that answer.
    let response = app.get(&callback_path("mock", &[("code", "good-code"), ("state", &state)])).await;
    expect_page(response, StatusCode::BAD_REQUEST, "does not belong to a login started in this browser")
        .await;

    // An empty code is no code.
    let state = begin(&app, "mock").await;
    let response = app.get(&callback_path("mock", &[("code", ""), ("state", &state)])).await;
    expect_page(response, StatusCode::BAD_REQUEST, "carried no authorization code").await;

    assert_eq!(mock.token_requests(), 0);
    assert_nothing_written(&app).await;
}

/// RFC 6749 §3.1: a parameter must not appear twice.
async fn repeated_parameters_are_refused(db: Db) {
    let (mock, app) = with_mock(db).await;
    let state = begin(&app, "mock").await;
    for pairs in [
        [("state", state.as_str()), ("state", "other"), ("code", "c")],
        [("state", state.as_str()), ("code", "c1"), ("code", "c2")],
    ] {
        let response = app.get(&callback_path("mock", &pairs)).await;
        expect_page(response, StatusCode::BAD_REQUEST, "appears more than once").await;
    }
    assert_eq!(mock.token_requests(), 0);
    assert_nothing_written(&app).await;
}

// ---------------------------------------------------------------------------------------------
// The token endpoint answers badly

/// One login attempt against a token endpoint scripted with `token`: asserts the status, the
/// phrase, exactly one token request, no userinfo request, nobody logged in, no user written.
async fn expect_token_failure(
    db: Db,
    extra_toml: &str,
    token: Scripted,
    status: StatusCode,
    phrase: &str,
) -> String {
    let (mock, app) = with_mock_and(db, "", extra_toml).await;
    mock.set_token(token);
    let page = expect_page(attempt_login(&app).await, status, phrase).await;
    assert_eq!(mock.token_requests(), 1, "exactly one token request");
    assert_eq!(mock.userinfo_requests(), 0, "no userinfo call without a token");
    assert_nothing_written(&app).await;
    page
}

async fn token_http_500_is_a_502(db: Db) {
    let page = expect_token_failure(
        db,
        "",
        Scripted::text(500, "text/html", "<html><body><h1>Oops</h1><script>alert(1)</script></body></html>"),
        StatusCode::BAD_GATEWAY,
        "token endpoint answered HTTP 500",
    )
    .await;
    assert!(page.contains("The login provider answered badly"), "{page}");
    assert!(!page.contains("<script>alert(1)"), "{page}");
}

async fn token_refusal_in_a_200_is_a_502_naming_the_error(db: Db) {
    let page = expect_token_failure(
        db,
        "",
        Scripted::json(
            200,
            json!({
                "error": "bad_verification_code",
                "error_description": "The code passed is incorrect or expired. <script>alert(1)</script>",
                "error_uri": "https://docs.github.com/apps/troubleshooting"
            }),
        ),
        StatusCode::BAD_GATEWAY,
        "bad_verification_code",
    )
    .await;
    assert!(page.contains("refused the authorization code: bad_verification_code"), "{page}");
    assert!(!page.contains("<script>alert(1)"), "{page}");
}

async fn token_refusal_in_a_400_is_a_502_naming_the_error(db: Db) {
    expect_token_failure(
        db,
        "",
        Scripted::json(400, json!({"error": "invalid_grant", "error_description": "bad code"})),
        StatusCode::BAD_GATEWAY,
        "refused the authorization code: invalid_grant",
    )
    .await;
}

async fn token_without_access_token_is_a_502(db: Db) {
    expect_token_failure(
        db,
        "",
        Scripted::json(200, json!({"token_type": "bearer", "scope": "email"})),
        StatusCode::BAD_GATEWAY,
        "no usable bearer access_token",
    )
    .await;
}

async fn token_that_is_not_json_is_a_502(db: Db) {
    // What GitHub sends without `Accept: application/json`.
    expect_token_failure(
        db,
        "",
        Scripted::text(200, "text/plain", "access_token=x"),
        StatusCode::BAD_GATEWAY,
        "token endpoint answered with something that is not JSON (HTTP 200)",
    )
    .await;
}

async fn token_type_mac_is_a_502(db: Db) {
    expect_token_failure(
        db,
        "",
        Scripted::json(200, json!({"access_token": "x", "token_type": "mac"})),
        StatusCode::BAD_GATEWAY,
        "no usable bearer access_token",
    )
    .await;
}

async fn huge_token_response_is_a_502(db: Db) {
    expect_token_failure(
        db,
        CAP_4096,
        Scripted::huge_json(200, 100_000),
        StatusCode::BAD_GATEWAY,
        "token endpoint sent more than 4096 bytes",
    )
    .await;
}

async fn token_endpoint_that_never_answers_is_a_quick_504(db: Db) {
    let (mock, app) = with_mock_and(db, "", TIMEOUT_500).await;
    mock.set_token(
        Scripted::json(200, json!({"access_token": "mock-token", "token_type": "bearer"}))
            .delayed(Duration::from_secs(30)),
    );
    let state = begin(&app, "mock").await;
    let started = Instant::now();
    let response = app.get(&callback_path("mock", &[("code", "good-code"), ("state", &state)])).await;
    let took = started.elapsed();
    let page =
        expect_page(response, StatusCode::GATEWAY_TIMEOUT, "token endpoint did not answer in time").await;
    assert!(page.contains("The login provider did not answer"), "{page}");
    assert!(
        took < Duration::from_secs(5),
        "the 504 must come after about timeout_ms (500 ms), took {took:?}"
    );
    assert_eq!(mock.token_requests(), 1);
    assert_eq!(mock.userinfo_requests(), 0);
    assert_nothing_written(&app).await;
}

async fn unreachable_token_endpoint_is_a_502(db: Db) {
    let mock = MockProvider::start().await;
    let toml = mock.provider_toml("mock").replace(
        &format!("token_url = \"{}/token\"", mock.base),
        &format!("token_url = \"http://127.0.0.1:{}/token\"", closed_port()),
    );
    let app = TestApp::builder(db).toml(&toml).spawn().await;
    let page = expect_page(
        attempt_login(&app).await,
        StatusCode::BAD_GATEWAY,
        "token endpoint could not be reached",
    )
    .await;
    assert!(page.contains("The login provider answered badly"), "{page}");
    assert_eq!(mock.token_requests(), 0);
    assert_eq!(mock.userinfo_requests(), 0);
    assert_nothing_written(&app).await;
}

// ---------------------------------------------------------------------------------------------
// The userinfo endpoint answers badly

/// One login attempt against a userinfo endpoint scripted with `userinfo`: asserts the status,
/// the phrase, one token and one userinfo request, nobody logged in, no user written.
async fn expect_userinfo_failure(
    db: Db,
    extra_toml: &str,
    userinfo: Scripted,
    status: StatusCode,
    phrase: &str,
) -> String {
    let (mock, app) = with_mock_and(db, "", extra_toml).await;
    mock.set_userinfo(userinfo);
    let page = expect_page(attempt_login(&app).await, status, phrase).await;
    assert_eq!(mock.token_requests(), 1);
    assert_eq!(mock.userinfo_requests(), 1);
    assert_nothing_written(&app).await;
    page
}

async fn userinfo_that_is_not_json_is_a_502(db: Db) {
    expect_userinfo_failure(
        db,
        "",
        Scripted::text(200, "text/html", "<html><body>Welcome!</body></html>"),
        StatusCode::BAD_GATEWAY,
        "userinfo endpoint answered with something that is not JSON (HTTP 200)",
    )
    .await;
}

async fn userinfo_401_is_a_502(db: Db) {
    expect_userinfo_failure(
        db,
        "",
        Scripted::json(401, json!({"error": "invalid_token"})),
        StatusCode::BAD_GATEWAY,
        "userinfo endpoint answered HTTP 401",
    )
    .await;
}

async fn huge_userinfo_with_content_length_is_a_502(db: Db) {
    expect_userinfo_failure(
        db,
        CAP_4096,
        Scripted::huge_json(200, 100_000),
        StatusCode::BAD_GATEWAY,
        "userinfo endpoint sent more than 4096 bytes",
    )
    .await;
}

async fn huge_chunked_userinfo_without_content_length_is_a_502(db: Db) {
    // First make sure the mock really sends it without a length: the cap must work on the stream.
    let probe = MockProvider::start().await;
    probe.set_userinfo(Scripted::huge_json(200, 100_000).chunked());
    let response = reqwest::get(format!("{}/userinfo", probe.base)).await.unwrap();
    assert_eq!(response.content_length(), None, "{:?}", response.headers());
    assert_eq!(response.headers()["transfer-encoding"], "chunked", "{:?}", response.headers());
    assert_eq!(response.bytes().await.unwrap().len(), 100_000);
    drop(probe);

    expect_userinfo_failure(
        db,
        CAP_4096,
        Scripted::huge_json(200, 100_000).chunked(),
        StatusCode::BAD_GATEWAY,
        "userinfo endpoint sent more than 4096 bytes",
    )
    .await;
}

async fn endless_userinfo_is_cut_off_at_the_limit(db: Db) {
    // A body that never ends must be cut at the cap, not read until the timeout (10 s by default).
    let started = Instant::now();
    expect_userinfo_failure(
        db,
        CAP_4096,
        Scripted::text(200, "application/json", &"a".repeat(1000)).endless(),
        StatusCode::BAD_GATEWAY,
        "userinfo endpoint sent more than 4096 bytes",
    )
    .await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "cut off at the cap, not at the timeout: took {took:?}");
}

async fn userinfo_that_never_answers_is_a_quick_504(db: Db) {
    let started = Instant::now();
    let page = expect_userinfo_failure(
        db,
        TIMEOUT_500,
        Scripted::json(200, json!({"sub": "late", "email": "late@example.com"}))
            .delayed(Duration::from_secs(30)),
        StatusCode::GATEWAY_TIMEOUT,
        "userinfo endpoint did not answer in time",
    )
    .await;
    assert!(page.contains("The login provider did not answer"), "{page}");
    let took = started.elapsed();
    assert!(took < Duration::from_secs(8), "took {took:?}");
}

async fn userinfo_without_email_is_a_502(db: Db) {
    expect_userinfo_failure(
        db,
        "",
        Scripted::json(200, json!({"sub": "mock-1", "email_verified": true, "name": "No Mail"})),
        StatusCode::BAD_GATEWAY,
        "did not share an e-mail address",
    )
    .await;
}

async fn userinfo_without_subject_is_a_502(db: Db) {
    expect_userinfo_failure(
        db,
        "",
        Scripted::json(200, json!({"email": "someone@example.com", "email_verified": true})),
        StatusCode::BAD_GATEWAY,
        "no account id",
    )
    .await;
}

async fn userinfo_with_a_malformed_email_is_a_502(db: Db) {
    expect_userinfo_failure(
        db,
        "",
        Scripted::json(200, json!({"sub": "mock-1", "email": "not-an-address", "email_verified": true})),
        StatusCode::BAD_GATEWAY,
        "an e-mail address needs an",
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// The shape of what we send

async fn authorize_redirect_carries_the_oauth_parameters(db: Db) {
    let (mock, app) = with_mock(db).await;
    let authorize = app.begin_login("mock").await;
    assert!(authorize.starts_with(&format!("{}/authorize?", mock.base)), "{authorize}");
    let param =
        |name: &str| query_param(&authorize, name).unwrap_or_else(|| panic!("no {name} in {authorize}"));
    assert_eq!(param("response_type"), "code");
    assert_eq!(param("client_id"), "mock-client");
    assert_eq!(param("scope"), "email");
    assert_eq!(param("redirect_uri"), app.url("/callback/mock"));
    assert_eq!(param("code_challenge_method"), "S256");
    let state = param("state");
    assert!(state.len() >= 22, "state must carry at least 128 bits: {state}");
    let decoded =
        URL_SAFE_NO_PAD.decode(&state).unwrap_or_else(|e| panic!("state is not base64url ({e}): {state}"));
    assert!(decoded.len() >= 16, "state must carry at least 128 bits");
    let challenge = param("code_challenge");
    assert_eq!(
        URL_SAFE_NO_PAD.decode(&challenge).map(|b| b.len()).ok(),
        Some(32),
        "an S256 challenge is a base64url SHA-256: {challenge}"
    );

    // Each attempt gets fresh values.
    let second = app.begin_login("mock").await;
    assert_ne!(query_param(&second, "state").unwrap(), state);
    assert_ne!(query_param(&second, "code_challenge").unwrap(), challenge);

    assert_eq!(mock.token_requests(), 0);
    assert_nothing_written(&app).await;
}

async fn token_request_carries_code_redirect_uri_and_pkce_verifier(db: Db) {
    let (mock, app) = with_mock(db).await;
    let authorize = app.begin_login("mock").await;
    let state = query_param(&authorize, "state").unwrap();
    let challenge = query_param(&authorize, "code_challenge").unwrap();
    let response = app.get(&callback_path("mock", &[("code", "the-code-42"), ("state", &state)])).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/");
    app.assert_logged_in_as("someone@example.com").await;

    assert_eq!(mock.token_requests(), 1);
    let form = mock.last_token_form();
    assert_eq!(form.get("grant_type").map(String::as_str), Some("authorization_code"));
    assert_eq!(form.get("code").map(String::as_str), Some("the-code-42"));
    assert_eq!(form.get("redirect_uri"), Some(&format!("{}/callback/mock", app.address)));
    let verifier = form.get("code_verifier").expect("a code_verifier");
    assert!(
        (43..=128).contains(&verifier.len())
            && verifier.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b)),
        "RFC 7636 §4.1 verifier: {verifier}"
    );
    assert_eq!(
        URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())),
        challenge,
        "S256(code_verifier) must equal the code_challenge sent in the authorize redirect"
    );
    // client_secret_post (the default): the credentials are in the form, not in a header.
    assert_eq!(form.get("client_id").map(String::as_str), Some("mock-client"));
    assert_eq!(form.get("client_secret").map(String::as_str), Some("mock-secret"));
    assert_eq!(mock.last_token_auth(), None);
    assert_eq!(mock.last_token_content_type().as_deref(), Some("application/x-www-form-urlencoded"));
    assert!(!form.contains_key("state"), "{form:?}");

    assert_eq!(mock.userinfo_requests(), 1);
    assert_eq!(mock.last_userinfo_auth().as_deref(), Some("Bearer mock-token"));
    assert_eq!(app.user_count().await, 1);
}

async fn client_secret_basic_sends_the_credentials_in_a_header(db: Db) {
    let mock = MockProvider::start().await;
    // A secret with characters RFC 6749 §2.3.1 says must be form-encoded before Basic.
    let toml = mock
        .provider_toml_with("mock", "token_auth = \"client_secret_basic\"")
        .replace("client_secret = \"mock-secret\"", "client_secret = \"mock secret:1\"");
    let app = TestApp::builder(db).toml(&toml).spawn().await;
    let response = attempt_login(&app).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    app.assert_logged_in_as("someone@example.com").await;

    assert_eq!(mock.token_requests(), 1);
    let expected = format!("Basic {}", STANDARD.encode("mock-client:mock+secret%3A1"));
    assert_eq!(mock.last_token_auth(), Some(expected));
    let form = mock.last_token_form();
    assert!(!form.contains_key("client_secret"), "no secret in the form with client_secret_basic: {form:?}");
    assert_eq!(form.get("grant_type").map(String::as_str), Some("authorization_code"));
    assert!(form.contains_key("code_verifier"), "{form:?}");
    assert_eq!(mock.last_userinfo_auth().as_deref(), Some("Bearer mock-token"));
}

// ---------------------------------------------------------------------------------------------
// Configuration of the limits

/// The README and `loginwith.example.toml` write the limits as TOML integers
/// (`timeout_ms = 10000`); they must be accepted, and take effect.
async fn toml_integers_configure_the_limits(db: Db) {
    let config = loginwith::config::Config::from_toml(
        "[server]\nlogin_timeout_secs = 1\n\
         [http]\nconnect_timeout_ms = 5000\ntimeout_ms = 500\nmax_response_bytes = 4096\n",
    );
    let config = match config {
        Ok(config) => config,
        Err(errors) => panic!("TOML integers must be accepted:\n{errors}"),
    };
    assert_eq!(config.server.login_timeout_secs, 1);
    assert_eq!(config.http.connect_timeout, Duration::from_millis(5000));
    assert_eq!(config.http.timeout, Duration::from_millis(500));
    assert_eq!(config.http.max_response_bytes, 4096);

    let (mock, app) =
        with_mock_and(db, "login_timeout_secs = 1", "[http]\ntimeout_ms = 500\nmax_response_bytes = 4096\n")
            .await;
    mock.set_userinfo(Scripted::huge_json(200, 100_000));
    expect_page(
        attempt_login(&app).await,
        StatusCode::BAD_GATEWAY,
        "userinfo endpoint sent more than 4096 bytes",
    )
    .await;
    assert_nothing_written(&app).await;
}
