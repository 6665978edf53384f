//! The Google preset's own rule about `iss`, against the fake OpenID Connect provider playing
//! Google (`preset = "google"` with the fake's base as issuer): Google documents that its ID tokens
//! may carry `iss` without the scheme (`accounts.google.com`), so the Google preset accepts the
//! configured issuer with its `scheme://` removed — and no other provider does. The scheme-less
//! form takes a path of its own through validation (the `openidconnect` crate cannot parse it), so
//! the forgeries that path must still refuse are tested here too.
//!
//! Google's "verified" rule (Gmail or Workspace only) is unit-tested in `src/providers/google.rs`
//! and `src/providers/oidc/mod.rs`, not here: what a login does with a verified address belongs to
//! the account-linking rules.

use crate::db_tests;
use crate::fake_oidc::*;
use crate::helpers::*;
use reqwest::Response;
use serde_json::{json, Value};

db_tests!(
    google_accepts_iss_without_its_scheme,
    google_accepts_iss_with_its_scheme,
    iss_without_its_scheme_is_refused_for_any_other_provider,
    google_scheme_less_iss_with_a_broken_signature_is_refused,
    google_scheme_less_iss_signed_by_an_unpublished_key_is_refused,
    google_scheme_less_iss_without_a_signature_is_refused,
    google_scheme_less_iss_for_another_login_attempt_is_refused,
    google_iss_with_another_scheme_less_host_is_refused,
);

/// The fake as Google, and the app with it as `[providers.NAME]` (`preset` in `extra_keys`).
async fn setup(db: Db, name: &str, extra_keys: &str) -> (FakeOidc, TestApp) {
    let fake = FakeOidc::start().await;
    let app = TestApp::builder(db).toml(&fake.provider_toml(name, extra_keys)).spawn().await;
    (fake, app)
}

async fn google(db: Db) -> (FakeOidc, TestApp) {
    setup(db, "google", "preset = \"google\"").await
}

/// The issuer as Google sometimes writes it: `127.0.0.1:PORT` for the fake's `http://127.0.0.1:PORT`.
fn scheme_less(fake: &FakeOidc) -> String {
    fake.base.trim_start_matches("http://").to_owned()
}

/// Acceptable claims for `nonce` with `iss` set to `iss`.
fn claims_with_iss(fake: &FakeOidc, nonce: &str, iss: &str) -> Value {
    let mut claims = fake.json_claims(nonce);
    claims["iss"] = json!(iss);
    claims
}

/// Starts a login at `provider`, has the fake mint `make(nonce)`, and comes back with the
/// configured issuer as the RFC 9207 `iss` parameter (which stays exact for every provider).
async fn login_with(
    app: &TestApp,
    fake: &FakeOidc,
    provider: &str,
    make: impl FnOnce(&str) -> String,
) -> Response {
    let attempt = Attempt::from_url(&app.begin_login(provider).await);
    fake.set_id_token(make(&attempt.nonce));
    callback(app, provider, &attempt, Some(&fake.base)).await
}

async fn google_accepts_iss_without_its_scheme(db: Db) {
    let (fake, app) = google(db).await;
    let iss = scheme_less(&fake);
    let response = login_with(&app, &fake, "google", |nonce| {
        sign_json_rs256(RSA1_PEM, "k1", &claims_with_iss(&fake, nonce, &iss))
    })
    .await;
    expect_logged_in(&app, response, "user@example.com").await;
    let (_, me) = app.api_me().await;
    assert_eq!(me["identities"][0]["provider"], "google");
    assert_eq!(me["identities"][0]["subject"], "user-1");
}

/// The control for the test above: the documented form with the scheme works as well.
async fn google_accepts_iss_with_its_scheme(db: Db) {
    let (fake, app) = google(db).await;
    let response = login_with(&app, &fake, "google", |nonce| {
        sign_json_rs256(RSA1_PEM, "k1", &claims_with_iss(&fake, nonce, &fake.base))
    })
    .await;
    expect_logged_in(&app, response, "user@example.com").await;
}

async fn iss_without_its_scheme_is_refused_for_any_other_provider(db: Db) {
    let (fake, app) = setup(db, "oidc", "").await;
    let iss = scheme_less(&fake);
    let response = login_with(&app, &fake, "oidc", |nonce| {
        sign_json_rs256(RSA1_PEM, "k1", &claims_with_iss(&fake, nonce, &iss))
    })
    .await;
    expect_refused(&app, response, "issued by someone else").await;
}

async fn google_scheme_less_iss_with_a_broken_signature_is_refused(db: Db) {
    let (fake, app) = google(db).await;
    let iss = scheme_less(&fake);
    let response = login_with(&app, &fake, "google", |nonce| {
        corrupt_signature(&sign_json_rs256(RSA1_PEM, "k1", &claims_with_iss(&fake, nonce, &iss)))
    })
    .await;
    expect_refused(&app, response, "signature is not valid").await;
}

async fn google_scheme_less_iss_signed_by_an_unpublished_key_is_refused(db: Db) {
    let (fake, app) = google(db).await;
    let iss = scheme_less(&fake);
    // The published kid, someone else's key.
    let response = login_with(&app, &fake, "google", |nonce| {
        sign_json_rs256(RSA2_PEM, "k1", &claims_with_iss(&fake, nonce, &iss))
    })
    .await;
    expect_refused(&app, response, "signature is not valid").await;
    // A kid the provider never published.
    let response = login_with(&app, &fake, "google", |nonce| {
        sign_json_rs256(RSA2_PEM, "never-published", &claims_with_iss(&fake, nonce, &iss))
    })
    .await;
    expect_refused(&app, response, "signature is not valid").await;
}

async fn google_scheme_less_iss_without_a_signature_is_refused(db: Db) {
    let (fake, app) = google(db).await;
    let iss = scheme_less(&fake);
    let response =
        login_with(&app, &fake, "google", |nonce| unsigned_jwt(&claims_with_iss(&fake, nonce, &iss))).await;
    expect_refused(&app, response, "signature is not valid").await;
}

/// The scheme-less path skips none of the other checks: here, the nonce.
async fn google_scheme_less_iss_for_another_login_attempt_is_refused(db: Db) {
    let (fake, app) = google(db).await;
    let iss = scheme_less(&fake);
    let response = login_with(&app, &fake, "google", |_nonce| {
        sign_json_rs256(RSA1_PEM, "k1", &claims_with_iss(&fake, "a-nonce-from-another-attempt", &iss))
    })
    .await;
    expect_refused(&app, response, "nonce mismatch").await;
}

/// Only the configured issuer's own host loses its scheme; any other scheme-less `iss` is refused.
async fn google_iss_with_another_scheme_less_host_is_refused(db: Db) {
    let (fake, app) = google(db).await;
    let response = login_with(&app, &fake, "google", |nonce| {
        sign_json_rs256(RSA1_PEM, "k1", &claims_with_iss(&fake, nonce, "accounts.google.com"))
    })
    .await;
    expect_refused(&app, response, "issued by someone else").await;
}
