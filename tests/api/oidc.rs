//! Logins through a generic OpenID Connect provider — the hostile fake in `fake_oidc.rs` — on
//! SQLite and PostgreSQL: one good login, then one test per check of OpenID Connect Core
//! §3.1.3.7 and of what the server adds (algorithm allowlist, `iat`, `azp`, `at_hash`, the
//! userinfo `sub`, key rotation with a shared, rate-limited refetch, the RFC 9207 `iss` parameter,
//! discovery's issuer — compared exactly, trailing slash included — and `response_mode=form_post`).
//! Every refusal must be a 4xx page that says why, leave nobody logged in and write no user.

use crate::db_tests;
use crate::fake_oidc::*;
use crate::helpers::*;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use openidconnect::{Audience, ClientId, IssuerUrl, Nonce};
use reqwest::{Response, StatusCode};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::time::{Duration, Instant};

db_tests!(
    good_rs256_login_uses_basic_auth_pkce_and_a_nonce,
    email_only_in_userinfo_logs_in_with_it,
    bad_signature_is_refused,
    alg_none_is_refused,
    wrong_issuer_is_refused,
    wrong_audience_is_refused,
    several_audiences_without_our_azp_are_refused,
    several_audiences_with_our_azp_are_accepted,
    expired_token_is_refused,
    token_issued_an_hour_in_the_future_is_refused,
    token_issued_20_seconds_ahead_is_accepted,
    missing_nonce_is_refused,
    wrong_nonce_is_refused,
    unknown_kid_is_refused_after_at_most_one_refetch,
    rotated_key_is_accepted_after_exactly_one_refetch,
    missing_sub_is_refused,
    userinfo_about_another_subject_is_refused,
    hs256_with_the_client_secret_is_refused_when_only_rs256_is_advertised,
    hs256_is_accepted_when_allowed_and_advertised,
    wrong_callback_iss_is_a_400,
    missing_callback_iss_is_a_400_when_promised,
    missing_callback_iss_is_fine_when_not_promised,
    discovery_naming_another_issuer_makes_the_provider_unavailable,
    failed_discovery_is_retried_at_most_every_5_seconds,
    form_post_without_cookie_is_resubmitted_and_then_logs_in,
    form_post_without_cookie_already_resubmitted_is_a_400,
    at_hash_mismatch_is_refused,
    token_answer_without_an_id_token_is_refused,
    issuer_with_a_trailing_slash_logs_in_when_configured_with_it,
    issuer_configured_without_the_published_trailing_slash_is_unavailable_and_says_so,
    issuer_configured_with_a_trailing_slash_not_published_is_unavailable_and_says_so,
    id_token_iss_differing_by_a_trailing_slash_is_refused_and_says_so,
    discovery_naming_a_plain_http_endpoint_off_loopback_makes_the_provider_unavailable,
    built_in_dev_provider_is_discovered_under_a_non_loopback_public_url,
    key_rotation_while_64_logins_are_in_flight_refuses_none_of_them,
    a_flood_of_unknown_kids_refetches_at_most_once_per_10_seconds,
);

/// A fake provider and the app configured with it as `[providers.oidc]` (plus `extra_keys`).
async fn setup(db: Db, extra_keys: &str) -> (FakeOidc, TestApp) {
    let fake = FakeOidc::start().await;
    let app = TestApp::builder(db).toml(&fake.provider_toml("oidc", extra_keys)).spawn().await;
    (fake, app)
}

/// Starts a login, has the fake mint `make(fake, attempt)` as the ID token, and comes back with
/// the issuer as the `iss` parameter.
async fn login_with(app: &TestApp, fake: &FakeOidc, make: impl FnOnce(&Attempt) -> String) -> Response {
    let attempt = Attempt::from_url(&app.begin_login("oidc").await);
    fake.set_id_token(make(&attempt));
    callback(app, "oidc", &attempt, Some(&fake.base)).await
}

async fn good_rs256_login_uses_basic_auth_pkce_and_a_nonce(db: Db) {
    let (fake, app) = setup(db, "").await;
    let attempt = Attempt::from_url(&app.begin_login("oidc").await);
    assert!(attempt.url.starts_with(&format!("{}/authorize?", fake.base)), "{}", attempt.url);
    let scope = attempt.param("scope").expect("scope");
    assert!(scope.split(' ').any(|s| s == "openid"), "scope must contain openid: {scope:?}");
    assert_eq!(attempt.param("response_type").as_deref(), Some("code"));
    assert_eq!(attempt.param("client_id").as_deref(), Some(CLIENT_ID));
    assert_eq!(attempt.param("code_challenge_method").as_deref(), Some("S256"));
    let challenge = attempt.param("code_challenge").expect("code_challenge");
    assert!(attempt.state.len() >= 32 && attempt.nonce.len() >= 32, "state and nonce must be long");
    assert_ne!(attempt.state, attempt.nonce);

    fake.set_id_token(fake.sign(fake.claims(&attempt.nonce), &key1()));
    let response = callback(&app, "oidc", &attempt, Some(&fake.base)).await;
    expect_logged_in(&app, response, "user@example.com").await;
    let (_, me) = app.api_me().await;
    assert_eq!(me["identities"][0]["provider"], "oidc");
    assert_eq!(me["identities"][0]["subject"], "user-1");
    assert_eq!(app.user_count().await, 1);

    // The token request: client_secret_basic by default, and the PKCE verifier.
    assert_eq!(fake.token_requests(), 1);
    let basic = format!("Basic {}", STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}")));
    assert_eq!(fake.last_token_auth().as_deref(), Some(basic.as_str()));
    let form = fake.last_token_form();
    assert_eq!(form.get("grant_type").map(String::as_str), Some("authorization_code"));
    assert_eq!(form.get("code").map(String::as_str), Some("x"));
    assert!(!form.contains_key("client_secret"), "Basic auth must not also post the secret: {form:?}");
    let verifier = form.get("code_verifier").expect("the token request must carry the PKCE verifier");
    assert_eq!(URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())), challenge);
    // The ID token had the address: no userinfo call.
    assert_eq!(fake.userinfo_requests(), 0);
}

async fn email_only_in_userinfo_logs_in_with_it(db: Db) {
    let (fake, app) = setup(db, "").await;
    fake.set_userinfo(json!({"sub": "user-1", "email": "info@example.com", "email_verified": true}));
    let response =
        login_with(&app, &fake, |a| fake.sign(fake.claims_for(&a.nonce, "user-1", None), &key1())).await;
    expect_logged_in(&app, response, "info@example.com").await;
    assert_eq!(fake.userinfo_requests(), 1);
    assert_eq!(fake.last_userinfo_auth(), Some(format!("Bearer {ACCESS_TOKEN}")));
    let (_, me) = app.api_me().await;
    assert_eq!(me["identities"][0]["subject"], "user-1");
}

async fn bad_signature_is_refused(db: Db) {
    let (fake, app) = setup(db, "").await;
    let response =
        login_with(&app, &fake, |a| corrupt_signature(&fake.sign(fake.claims(&a.nonce), &key1()))).await;
    expect_refused(&app, response, "signature is not valid").await;
}

async fn alg_none_is_refused(db: Db) {
    let (fake, app) = setup(db, "").await;
    let response = login_with(&app, &fake, |a| unsigned_jwt(&fake.json_claims(&a.nonce))).await;
    expect_refused(&app, response, "signature is not valid").await;
    assert_eq!(fake.userinfo_requests(), 0);
}

async fn wrong_issuer_is_refused(db: Db) {
    let (fake, app) = setup(db, "").await;
    let response = login_with(&app, &fake, |a| {
        let claims =
            fake.claims(&a.nonce).set_issuer(IssuerUrl::new("http://127.0.0.1:9/other".into()).unwrap());
        fake.sign(claims, &key1())
    })
    .await;
    expect_refused(&app, response, "issued by someone else").await;
}

async fn wrong_audience_is_refused(db: Db) {
    let (fake, app) = setup(db, "").await;
    let response = login_with(&app, &fake, |a| {
        let claims = fake.claims(&a.nonce).set_audiences(vec![Audience::new("another-client".into())]);
        fake.sign(claims, &key1())
    })
    .await;
    expect_refused(&app, response, "not meant for this application").await;
}

async fn several_audiences_without_our_azp_are_refused(db: Db) {
    let (fake, app) = setup(db, "").await;
    let response = login_with(&app, &fake, |a| {
        let claims = fake
            .claims(&a.nonce)
            .set_audiences(vec![Audience::new(CLIENT_ID.into()), Audience::new("other".into())]);
        fake.sign(claims, &key1())
    })
    .await;
    expect_refused(&app, response, "not meant for this application").await;

    // An azp naming someone else is no better.
    let response = login_with(&app, &fake, |a| {
        let claims = fake
            .claims(&a.nonce)
            .set_audiences(vec![Audience::new(CLIENT_ID.into()), Audience::new("other".into())])
            .set_authorized_party(Some(ClientId::new("other".into())));
        fake.sign(claims, &key1())
    })
    .await;
    expect_refused(&app, response, "not meant for this application").await;
}

async fn several_audiences_with_our_azp_are_accepted(db: Db) {
    let (fake, app) = setup(db, "").await;
    let response = login_with(&app, &fake, |a| {
        let claims = fake
            .claims(&a.nonce)
            .set_audiences(vec![Audience::new(CLIENT_ID.into()), Audience::new("other".into())])
            .set_authorized_party(Some(ClientId::new(CLIENT_ID.into())));
        fake.sign(claims, &key1())
    })
    .await;
    expect_logged_in(&app, response, "user@example.com").await;
}

async fn expired_token_is_refused(db: Db) {
    let (fake, app) = setup(db, "").await;
    let response = login_with(&app, &fake, |a| {
        let now = chrono::Utc::now();
        let claims = fake
            .claims(&a.nonce)
            .set_issue_time(now - chrono::Duration::minutes(20))
            .set_expiration(now - chrono::Duration::minutes(10));
        fake.sign(claims, &key1())
    })
    .await;
    expect_refused(&app, response, "expired or not yet valid").await;
}

async fn token_issued_an_hour_in_the_future_is_refused(db: Db) {
    let (fake, app) = setup(db, "").await;
    let response = login_with(&app, &fake, |a| {
        let now = chrono::Utc::now();
        let claims = fake
            .claims(&a.nonce)
            .set_issue_time(now + chrono::Duration::hours(1))
            .set_expiration(now + chrono::Duration::hours(2));
        fake.sign(claims, &key1())
    })
    .await;
    expect_refused(&app, response, "expired or not yet valid").await;
}

/// The control for the test above: clock skew within 30 s is tolerated.
async fn token_issued_20_seconds_ahead_is_accepted(db: Db) {
    let (fake, app) = setup(db, "").await;
    let response = login_with(&app, &fake, |a| {
        let now = chrono::Utc::now();
        let claims = fake.claims(&a.nonce).set_issue_time(now + chrono::Duration::seconds(20));
        fake.sign(claims, &key1())
    })
    .await;
    expect_logged_in(&app, response, "user@example.com").await;
}

async fn missing_nonce_is_refused(db: Db) {
    let (fake, app) = setup(db, "").await;
    let response =
        login_with(&app, &fake, |a| fake.sign(fake.claims(&a.nonce).set_nonce(None), &key1())).await;
    expect_refused(&app, response, "nonce mismatch").await;
}

async fn wrong_nonce_is_refused(db: Db) {
    let (fake, app) = setup(db, "").await;
    // A token minted for another login attempt (an injected or replayed token).
    let other = Attempt::from_url(&app.another_browser().begin_login("oidc").await);
    let response = login_with(&app, &fake, |a| {
        assert_ne!(a.nonce, other.nonce);
        fake.sign(fake.claims(&a.nonce).set_nonce(Some(Nonce::new(other.nonce.clone()))), &key1())
    })
    .await;
    expect_refused(&app, response, "nonce mismatch").await;
}

async fn unknown_kid_is_refused_after_at_most_one_refetch(db: Db) {
    let (fake, app) = setup(db, "").await;
    let attempt = Attempt::from_url(&app.begin_login("oidc").await);
    let before = fake.jwks_requests();
    assert!(before >= 1, "discovery fetches the key set");
    fake.set_id_token(fake.sign(fake.claims(&attempt.nonce), &rsa_key(RSA2_PEM, "never-published")));
    let response = callback(&app, "oidc", &attempt, Some(&fake.base)).await;
    expect_refused(&app, response, "signature is not valid").await;
    assert!(fake.jwks_requests() <= before + 1, "one unknown kid: at most one refetch");

    // More forged tokens with unknown kids right after: no more refetches.
    for kid in ["never-1", "never-2"] {
        let response =
            login_with(&app, &fake, |a| fake.sign(fake.claims(&a.nonce), &rsa_key(RSA2_PEM, kid))).await;
        expect_refused(&app, response, "signature is not valid").await;
    }
    assert!(
        fake.jwks_requests() <= before + 1,
        "unknown kids may refetch the key set at most once per 10 s: {} fetches after {before}",
        fake.jwks_requests()
    );
}

async fn rotated_key_is_accepted_after_exactly_one_refetch(db: Db) {
    let (fake, app) = setup(db, "").await;
    let response = login_with(&app, &fake, |a| fake.sign(fake.claims(&a.nonce), &key1())).await;
    expect_logged_in(&app, response, "user@example.com").await;
    let before = fake.jwks_requests();
    assert_eq!(before, 1, "the first login uses the key set fetched at discovery");
    app.logout().await;

    // The provider rotates: k1 is gone, k2 signs.
    fake.set_jwks(jwks_of(&[&key2()]));
    let response = login_with(&app, &fake, |a| fake.sign(fake.claims(&a.nonce), &key2())).await;
    expect_logged_in(&app, response, "user@example.com").await;
    assert_eq!(fake.jwks_requests(), before + 1, "exactly one refetch for the new kid");
    assert_eq!(app.user_count().await, 1);
}

async fn missing_sub_is_refused(db: Db) {
    let (fake, app) = setup(db, "").await;
    let response = login_with(&app, &fake, |a| {
        let mut claims = fake.json_claims(&a.nonce);
        claims.as_object_mut().unwrap().remove("sub");
        sign_json_rs256(RSA1_PEM, "k1", &claims)
    })
    .await;
    expect_refused(&app, response, "malformed").await;
}

async fn userinfo_about_another_subject_is_refused(db: Db) {
    let (fake, app) = setup(db, "").await;
    fake.set_userinfo(json!({"sub": "someone-else", "email": "victim@example.com", "email_verified": true}));
    let response =
        login_with(&app, &fake, |a| fake.sign(fake.claims_for(&a.nonce, "user-1", None), &key1())).await;
    expect_refused(&app, response, "about a different user than the ID token").await;
    assert_eq!(fake.userinfo_requests(), 1);
}

async fn hs256_with_the_client_secret_is_refused_when_only_rs256_is_advertised(db: Db) {
    // Even with HMAC allowed in the configuration: the provider does not sign with HS256, so an
    // HS256 token is a forgery by anyone who knows the client secret.
    let (fake, app) = setup(db, "allow_hmac_id_tokens = true").await;
    let response = login_with(&app, &fake, |a| fake.sign_hmac(fake.claims(&a.nonce), CLIENT_SECRET)).await;
    expect_refused(&app, response, "signature is not valid").await;

    // And without it configured, certainly not.
    let (fake, app) = setup(db, "").await;
    let response = login_with(&app, &fake, |a| fake.sign_hmac(fake.claims(&a.nonce), CLIENT_SECRET)).await;
    expect_refused(&app, response, "signature is not valid").await;
}

/// The control for the test above: the HS256 tokens it makes are otherwise acceptable.
async fn hs256_is_accepted_when_allowed_and_advertised(db: Db) {
    let fake = FakeOidc::start().await;
    fake.set_algorithms(&["RS256", "HS256"]);
    let app =
        TestApp::builder(db).toml(&fake.provider_toml("oidc", "allow_hmac_id_tokens = true")).spawn().await;
    let response = login_with(&app, &fake, |a| fake.sign_hmac(fake.claims(&a.nonce), CLIENT_SECRET)).await;
    expect_logged_in(&app, response, "user@example.com").await;
}

async fn wrong_callback_iss_is_a_400(db: Db) {
    let (fake, app) = setup(db, "").await;
    let attempt = Attempt::from_url(&app.begin_login("oidc").await);
    fake.set_id_token(fake.sign(fake.claims(&attempt.nonce), &key1()));
    let response = callback(&app, "oidc", &attempt, Some("http://127.0.0.1:9")).await;
    expect_page(response, StatusCode::BAD_REQUEST, "iss mismatch").await;
    assert_eq!(fake.token_requests(), 0, "a mix-up must be caught before the code is exchanged");
    app.assert_logged_out().await;
    assert_eq!(app.user_count().await, 0);
}

async fn missing_callback_iss_is_a_400_when_promised(db: Db) {
    let (fake, app) = setup(db, "").await;
    let attempt = Attempt::from_url(&app.begin_login("oidc").await);
    fake.set_id_token(fake.sign(fake.claims(&attempt.nonce), &key1()));
    let response = callback(&app, "oidc", &attempt, None).await;
    expect_page(response, StatusCode::BAD_REQUEST, "iss mismatch").await;
    assert_eq!(fake.token_requests(), 0);
    app.assert_logged_out().await;
    assert_eq!(app.user_count().await, 0);
}

async fn missing_callback_iss_is_fine_when_not_promised(db: Db) {
    let fake = FakeOidc::start().await;
    fake.set_iss_parameter_supported(false);
    let app = TestApp::builder(db).toml(&fake.toml()).spawn().await;
    let attempt = Attempt::from_url(&app.begin_login("oidc").await);
    fake.set_id_token(fake.sign(fake.claims(&attempt.nonce), &key1()));
    let response = callback(&app, "oidc", &attempt, None).await;
    expect_logged_in(&app, response, "user@example.com").await;
}

async fn discovery_naming_another_issuer_makes_the_provider_unavailable(db: Db) {
    let fake = FakeOidc::start().await;
    fake.set_issuer(&format!("{}/someone-else", fake.base));
    let app = TestApp::builder(db).toml(&fake.toml()).spawn().await;

    let response = app.get("/authorize/oidc").await;
    expect_page(response, StatusCode::SERVICE_UNAVAILABLE, "unavailable").await;
    assert!(fake.discovery_requests() >= 1);
    let home = app.get("/").await.text().await.unwrap();
    assert!(home.contains("href=\"/authorize/oidc\""), "the provider is still listed:\n{home}");
    assert!(home.contains("unavailable"), "with a note that it is unavailable:\n{home}");

    // No way in: a forged callback has no attempt to match, and nothing reaches the token endpoint.
    let response = app.get("/callback/oidc?code=x&state=forged").await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(fake.token_requests(), 0);
    app.assert_logged_out().await;
    assert_eq!(app.user_count().await, 0);
}

async fn failed_discovery_is_retried_at_most_every_5_seconds(db: Db) {
    let fake = FakeOidc::start().await;
    fake.set_issuer(&format!("{}/someone-else", fake.base));
    let app = TestApp::builder(db).toml(&fake.toml()).spawn().await;
    let response = app.get("/authorize/oidc").await;
    expect_page(response, StatusCode::SERVICE_UNAVAILABLE, "unavailable").await;
    let failed_at = Instant::now();
    let attempts = fake.discovery_requests();
    assert!(attempts >= 1);

    // The provider is fixed, but clicks within 5 s of the failure do not fetch again.
    fake.set_issuer(&fake.base.clone());
    for _ in 0..3 {
        let response = app.get("/authorize/oidc").await;
        expect_page(response, StatusCode::SERVICE_UNAVAILABLE, "unavailable").await;
    }
    assert_eq!(fake.discovery_requests(), attempts, "no discovery request within 5 s of a failure");

    // After the interval, the next click discovers again and the login works.
    tokio::time::sleep(Duration::from_millis(5300).saturating_sub(failed_at.elapsed())).await;
    let response = login_with(&app, &fake, |a| fake.sign(fake.claims(&a.nonce), &key1())).await;
    expect_logged_in(&app, response, "user@example.com").await;
    assert_eq!(fake.discovery_requests(), attempts + 1);
}

async fn form_post_without_cookie_is_resubmitted_and_then_logs_in(db: Db) {
    let (fake, app) = setup(db, "response_mode = \"form_post\"").await;
    let attempt = Attempt::from_url(&app.begin_login("oidc").await);
    assert_eq!(attempt.param("response_mode").as_deref(), Some("form_post"));
    fake.set_id_token(fake.sign(fake.claims(&attempt.nonce), &key1()));

    // The provider's page posts cross-site: the SameSite=Lax session cookie is not sent.
    let form = [("code", "x"), ("state", attempt.state.as_str()), ("iss", fake.base.as_str())];
    let (cookieless, _) = app.new_browser();
    let response = cookieless.post(app.url("/callback/oidc")).form(&form).send().await.unwrap();
    let page = expect_page(response, StatusCode::OK, "id=\"resubmit\"").await;
    assert!(page.contains(&attempt.state), "the resubmit form carries the state:\n{page}");
    assert_eq!(fake.token_requests(), 0, "the resubmit page must not exchange the code");
    let mut fields = resubmit_fields(&page);
    assert!(fields.contains(&("state".into(), attempt.state.clone())), "{fields:?}");
    assert!(fields.contains(&("code".into(), "x".into())), "{fields:?}");
    assert!(fields.contains(&("iss".into(), fake.base.clone())), "{fields:?}");
    assert!(fields.iter().any(|(k, v)| k == "loginwith_resubmitted" && v == "1"), "{fields:?}");
    fields.dedup();

    // The page re-posts from our own origin, with the cookie.
    let response = app.client.post(app.url("/callback/oidc")).form(&fields).send().await.unwrap();
    expect_logged_in(&app, response, "user@example.com").await;
    assert_eq!(fake.token_requests(), 1);
}

async fn form_post_without_cookie_already_resubmitted_is_a_400(db: Db) {
    let (fake, app) = setup(db, "response_mode = \"form_post\"").await;
    let attempt = Attempt::from_url(&app.begin_login("oidc").await);
    fake.set_id_token(fake.sign(fake.claims(&attempt.nonce), &key1()));
    let form = [
        ("code", "x"),
        ("state", attempt.state.as_str()),
        ("iss", fake.base.as_str()),
        ("loginwith_resubmitted", "1"),
    ];
    let (cookieless, _) = app.new_browser();
    let response = cookieless.post(app.url("/callback/oidc")).form(&form).send().await.unwrap();
    let status = response.status();
    let page = response.text().await.unwrap();
    assert_eq!(status, StatusCode::BAD_REQUEST, "{page}");
    assert!(!page.contains("id=\"resubmit\""), "no second resubmit round:\n{page}");
    assert_eq!(fake.token_requests(), 0);
    app.assert_logged_out().await;
    assert_eq!(app.user_count().await, 0);
}

async fn at_hash_mismatch_is_refused(db: Db) {
    let (fake, app) = setup(db, "").await;
    let response = login_with(&app, &fake, |a| {
        fake.sign_for_access_token(fake.claims(&a.nonce), &key1(), "some-other-access-token")
    })
    .await;
    expect_refused(&app, response, "at_hash").await;
}

async fn token_answer_without_an_id_token_is_refused(db: Db) {
    let (fake, app) = setup(db, "").await;
    let attempt = Attempt::from_url(&app.begin_login("oidc").await);
    // The fake answers `/token` with an access token only.
    let response = callback(&app, "oidc", &attempt, Some(&fake.base)).await;
    expect_refused(&app, response, "returned no ID token").await;
    assert_eq!(fake.token_requests(), 1);
    assert_eq!(fake.userinfo_requests(), 0, "no ID token, no identity: userinfo is not consulted");
}

/// The fake publishing `published` as its issuer, and the app configured with `configured`.
async fn setup_issuers(db: Db, published: &str, configured: &str) -> (FakeOidc, TestApp) {
    let fake = FakeOidc::start().await;
    let (published, configured) =
        (published.replace("{base}", &fake.base), configured.replace("{base}", &fake.base));
    fake.set_issuer(&published);
    let app =
        TestApp::builder(db).toml(&fake.provider_toml_for_issuer("oidc", &configured, "")).spawn().await;
    (fake, app)
}

/// Auth0 publishes `https://TENANT.auth0.com/`, with the slash: configured so, it works.
async fn issuer_with_a_trailing_slash_logs_in_when_configured_with_it(db: Db) {
    let (fake, app) = setup_issuers(db, "{base}/", "{base}/").await;
    let issuer = format!("{}/", fake.base);
    let attempt = Attempt::from_url(&app.begin_login("oidc").await);
    // Discovery sits at the issuer without its slash + /.well-known/openid-configuration (§4.1).
    assert!(fake.discovery_requests() >= 1);
    let claims = fake.claims(&attempt.nonce).set_issuer(IssuerUrl::new(issuer.clone()).unwrap());
    fake.set_id_token(fake.sign(claims, &key1()));
    let response = callback(&app, "oidc", &attempt, Some(&issuer)).await;
    expect_logged_in(&app, response, "user@example.com").await;
}

/// Asserts the provider is unavailable (503) with a page saying the two issuers differ only by a
/// trailing slash and naming the one to configure.
async fn expect_unavailable_by_a_trailing_slash(app: &TestApp, fake: &FakeOidc, published: &str) {
    let page =
        expect_page(app.get("/authorize/oidc").await, StatusCode::SERVICE_UNAVAILABLE, "unavailable").await;
    let page = html_unescape(&page);
    assert!(page.contains("differ only by a trailing slash"), "{page}");
    assert!(page.contains(&format!("configure issuer = \"{published}\"")), "{page}");
    assert_eq!(fake.token_requests(), 0);
    app.assert_logged_out().await;
    assert_eq!(app.user_count().await, 0);
}

async fn issuer_configured_without_the_published_trailing_slash_is_unavailable_and_says_so(db: Db) {
    let (fake, app) = setup_issuers(db, "{base}/", "{base}").await;
    expect_unavailable_by_a_trailing_slash(&app, &fake, &format!("{}/", fake.base)).await;
}

async fn issuer_configured_with_a_trailing_slash_not_published_is_unavailable_and_says_so(db: Db) {
    let (fake, app) = setup_issuers(db, "{base}", "{base}/").await;
    expect_unavailable_by_a_trailing_slash(&app, &fake, &fake.base).await;
}

async fn id_token_iss_differing_by_a_trailing_slash_is_refused_and_says_so(db: Db) {
    let (fake, app) = setup_issuers(db, "{base}/", "{base}/").await;
    let attempt = Attempt::from_url(&app.begin_login("oidc").await);
    // Signed by the provider's key, but naming the issuer without its slash.
    fake.set_id_token(fake.sign(fake.claims(&attempt.nonce), &key1()));
    let response = callback(&app, "oidc", &attempt, Some(&format!("{}/", fake.base))).await;
    expect_refused(&app, response, "differ only by a trailing slash").await;
}

/// Even a provider on loopback http may only name http endpoints on loopback: a token endpoint
/// elsewhere over plain http would receive the client secret in clear. (An https issuer naming
/// `http://127.0.0.1/token` is refused too; the fake cannot serve https, so that case is a unit
/// test in `src/providers/oidc/mod.rs`.) Nothing is ever sent to the named address.
async fn discovery_naming_a_plain_http_endpoint_off_loopback_makes_the_provider_unavailable(db: Db) {
    let fake = FakeOidc::start().await;
    fake.override_document("token_endpoint", json!("http://192.0.2.1/token"));
    let app = TestApp::builder(db).toml(&fake.toml()).spawn().await;
    let page =
        expect_page(app.get("/authorize/oidc").await, StatusCode::SERVICE_UNAVAILABLE, "unavailable").await;
    assert!(page.contains("token_endpoint does not use https"), "{page}");
    assert_eq!(fake.token_requests(), 0);
    app.assert_logged_out().await;
    assert_eq!(app.user_count().await, 0);
}

/// The development provider's endpoints are this server on loopback http, while its issuer is the
/// public URL: discovery must accept that for it (and only for it, see the unit tests), whatever
/// the public URL — https, or plain http on a LAN address.
async fn built_in_dev_provider_is_discovered_under_a_non_loopback_public_url(db: Db) {
    for public in ["https://login.example.invalid", "http://192.0.2.10:5000"] {
        // Such a public URL needs the dev provider forced on (production safety refuses it otherwise).
        let forced = "[providers.dev]\ndangerously_allow_non_loopback = true\n";
        let app =
            TestApp::builder(db).server(&format!("public_url = \"{public}\"")).toml(forced).spawn().await;
        // The redirect is only made once discovery (over loopback) has succeeded.
        let location = app.begin_login("dev").await;
        assert!(location.starts_with(&format!("{public}/dev-provider/authorize?")), "{location}");
        let page = app.get("/").await.text().await.unwrap();
        assert!(!page.contains("unavailable"), "{page}");
    }
}

/// `n` people (each with their own browser) who have been sent to the provider.
async fn logins_in_flight(app: &TestApp, n: usize) -> Vec<(TestApp, Attempt)> {
    let mut flights = Vec::with_capacity(n);
    for _ in 0..n {
        let browser = app.another_browser();
        let attempt = Attempt::from_url(&browser.begin_login("oidc").await);
        flights.push((browser, attempt));
    }
    flights
}

/// Every browser in `flights` comes back at the same moment, the i-th with the code `code-{i}`.
async fn all_come_back_at_once(fake: &FakeOidc, flights: &[(TestApp, Attempt)]) -> Vec<Response> {
    let callbacks = flights.iter().enumerate().map(|(i, (browser, attempt))| {
        let code = format!("code-{i}");
        async move { callback_with_code(browser, "oidc", attempt, &code, Some(&fake.base)).await }
    });
    futures::future::join_all(callbacks).await
}

/// The provider starts signing with a new key while many logins are between the authorize
/// redirect and the callback. Every callback meets the unknown `kid` at once; they must share one
/// refetch and wait for it rather than be refused by the refetch rate limit.
async fn key_rotation_while_64_logins_are_in_flight_refuses_none_of_them(db: Db) {
    const PEOPLE: usize = 64;
    let (fake, app) = setup(db, "").await;
    let flights = logins_in_flight(&app, PEOPLE).await;
    let before = fake.jwks_requests();
    assert_eq!(before, 1, "discovery fetched the key set once");

    // The rotation: k2 published beside k1, and every token now signed with k2. A slow key set
    // endpoint keeps the refetch in flight while the other callbacks arrive.
    fake.set_jwks(jwks_of(&[&key1(), &key2()]));
    fake.set_jwks_delay(Duration::from_millis(300));
    for (i, (_, attempt)) in flights.iter().enumerate() {
        let claims =
            fake.claims_for(&attempt.nonce, &format!("user-{i}"), Some(&format!("user{i}@example.com")));
        fake.set_id_token_for_code(&format!("code-{i}"), fake.sign(claims, &key2()));
    }
    let responses = all_come_back_at_once(&fake, &flights).await;

    for (i, ((browser, _), response)) in flights.iter().zip(responses).enumerate() {
        expect_logged_in(browser, response, &format!("user{i}@example.com")).await;
    }
    assert_eq!(fake.token_requests(), PEOPLE);
    // Exactly one: the first callback fetched, the others waited for it and then found k2
    // known; none may fetch again, and none was turned away.
    assert_eq!(fake.jwks_requests(), before + 1, "one shared refetch for the rotation");
    assert_eq!(app.user_count().await, PEOPLE as i64);
}

/// Forged tokens with random `kid`s, many at once and again right after: one refetch, which finds
/// nothing new and closes the door for 10 s; after that, one more.
async fn a_flood_of_unknown_kids_refetches_at_most_once_per_10_seconds(db: Db) {
    const FORGERIES: usize = 16;
    let (fake, app) = setup(db, "").await;
    let flood = |flights: Vec<(TestApp, Attempt)>| {
        let fake = &fake;
        async move {
            for (i, (_, attempt)) in flights.iter().enumerate() {
                let kid = format!("forged-{}", crate::helpers::random_name(10));
                fake.set_id_token_for_code(
                    &format!("code-{i}"),
                    fake.sign(fake.claims(&attempt.nonce), &rsa_key(RSA2_PEM, &kid)),
                );
            }
            let responses = all_come_back_at_once(fake, &flights).await;
            for ((browser, _), response) in flights.iter().zip(responses) {
                expect_refused(browser, response, "signature is not valid").await;
            }
        }
    };

    let flights = logins_in_flight(&app, FORGERIES).await;
    let before = fake.jwks_requests();
    assert_eq!(before, 1, "discovery fetched the key set once");
    flood(flights).await;
    let first_flood_done = Instant::now();
    assert_eq!(fake.jwks_requests(), before + 1, "a flood of unknown kids: one refetch");

    let flights = logins_in_flight(&app, FORGERIES).await;
    flood(flights).await;
    assert_eq!(fake.jwks_requests(), before + 1, "nothing new was found: no refetch for 10 s");

    let flights = logins_in_flight(&app, FORGERIES).await;
    tokio::time::sleep(Duration::from_millis(10_300).saturating_sub(first_flood_done.elapsed())).await;
    flood(flights).await;
    assert_eq!(fake.jwks_requests(), before + 2, "10 s later, one more refetch and no more");
    assert_eq!(fake.token_requests(), 3 * FORGERIES);
}
