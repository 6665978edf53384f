//! Microsoft Entra ID rules, against the hostile fake OpenID Connect provider playing
//! `login.microsoftonline.com`: the multi-tenant discovery document publishes the issuer template
//! `{base}/{tenantid}/v2.0`, each token's `iss` must name the token's own `tid`, the identity is
//! `tid:oid`, `organizations` refuses personal accounts, and an Entra e-mail is verified only with
//! `xms_edov` (the "nOAuth" defence). A tenant configured by its domain name is pinned to the
//! tenant id its discovery document publishes, and `profile` is always requested (without it Entra
//! leaves `oid` out of the ID token).

use crate::db_tests;
use crate::fake_oidc::*;
use crate::helpers::*;
use crate::mock_provider::{MockProvider, Scripted};
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};

db_tests!(
    entra_login_is_keyed_by_tenant_and_object_id,
    entra_token_whose_iss_names_another_tenant_is_refused,
    organizations_refuses_a_personal_account,
    entra_email_without_xms_edov_does_not_link,
    entra_email_with_xms_edov_links,
    entra_sign_in_name_is_not_a_verified_address_even_with_xms_edov,
    domain_tenant_logs_in_through_the_tenant_id_its_discovery_publishes,
    domain_tenant_refuses_tokens_of_another_tenant,
    scopes_without_profile_still_request_profile,
);

const TENANT_A: &str = "11111111-2222-3333-4444-555555555555";
const TENANT_B: &str = "66666666-7777-8888-9999-000000000000";
const CONSUMERS: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";
const OID: &str = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";

/// The fake as Entra's multi-tenant endpoint for `tenant` (`common`, `organizations`), and the
/// app with it as `[providers.ms]` (after `before`, e.g. `[providers.dev]`).
async fn setup(db: Db, tenant: &str, before: &str) -> (FakeOidc, TestApp) {
    let fake = FakeOidc::start().await;
    fake.set_issuer(&format!("{}/{{tenantid}}/v2.0", fake.base));
    let app = spawn_ms_app(db, &fake, tenant, before, "").await;
    (fake, app)
}

/// The app with the fake as `[providers.ms]` for `tenant` (plus `extra_keys` in that table).
async fn spawn_ms_app(db: Db, fake: &FakeOidc, tenant: &str, before: &str, extra_keys: &str) -> TestApp {
    // Entra does not promise the RFC 9207 parameter.
    fake.set_iss_parameter_supported(false);
    let toml = format!(
        "{before}\n[providers.ms]\npreset = \"microsoft\"\nissuer = \"{base}/{tenant}/v2.0\"\n\
         client_id = \"{CLIENT_ID}\"\nclient_secret = \"{CLIENT_SECRET}\"\n{extra_keys}\n",
        base = fake.base
    );
    TestApp::builder(db).toml(&toml).spawn().await
}

/// A tenant's verified domain name, configured in place of its id.
const DOMAIN: &str = "contoso.example";

/// The fake as Entra for `tenant = DOMAIN`: its discovery document under `/{DOMAIN}/v2.0`
/// publishes the tenant's id issuer `{base}/{TENANT_A}/v2.0`, as Entra does.
async fn setup_domain_tenant(db: Db) -> (FakeOidc, TestApp) {
    let fake = FakeOidc::start().await;
    fake.set_tenant_issuer(DOMAIN, &format!("{}/{TENANT_A}/v2.0", fake.base));
    let app = spawn_ms_app(db, &fake, DOMAIN, "", "").await;
    (fake, app)
}

/// An Entra ID token for `nonce`: issued by tenant `iss_tid`, claiming tenant `tid`.
fn entra_claims(fake: &FakeOidc, nonce: &str, iss_tid: &str, tid: &str, oid: &str, email: &str) -> Value {
    let now = now_secs();
    json!({
        "iss": format!("{}/{iss_tid}/v2.0", fake.base),
        "aud": CLIENT_ID,
        "exp": now + 300,
        "iat": now,
        "nbf": now,
        "nonce": nonce,
        "sub": format!("pairwise-{oid}"),
        "tid": tid,
        "oid": oid,
        "email": email,
        "preferred_username": email,
        "name": "Entra User",
    })
}

/// Starts a Microsoft login, has the fake mint `claims(nonce)` (RS256, k1), and comes back.
async fn ms_login(app: &TestApp, fake: &FakeOidc, claims: impl FnOnce(&str) -> Value) -> Response {
    let attempt = Attempt::from_url(&app.begin_login("ms").await);
    let claims = claims(&attempt.nonce);
    fake.set_id_token(sign_json_rs256(RSA1_PEM, "k1", &claims));
    let iss = claims["iss"].as_str().map(str::to_owned);
    callback(app, "ms", &attempt, iss.as_deref()).await
}

async fn entra_login_is_keyed_by_tenant_and_object_id(db: Db) {
    let (fake, app) = setup(db, "common", "").await;
    let response = ms_login(&app, &fake, |nonce| {
        entra_claims(&fake, nonce, TENANT_A, TENANT_A, OID, "someone@contoso.example")
    })
    .await;
    expect_logged_in(&app, response, "someone@contoso.example").await;
    let (_, me) = app.api_me().await;
    assert_eq!(me["identities"][0]["provider"], "ms");
    assert_eq!(me["identities"][0]["subject"], format!("{TENANT_A}:{OID}"));
    assert!(fake.discovery_requests() >= 1);
    assert_eq!(fake.token_requests(), 1);
}

async fn entra_token_whose_iss_names_another_tenant_is_refused(db: Db) {
    let (fake, app) = setup(db, "common", "").await;
    let response = ms_login(&app, &fake, |nonce| {
        entra_claims(&fake, nonce, TENANT_B, TENANT_A, OID, "someone@contoso.example")
    })
    .await;
    expect_refused(&app, response, "issued by someone else").await;
}

async fn organizations_refuses_a_personal_account(db: Db) {
    let (fake, app) = setup(db, "organizations", "").await;
    let response = ms_login(&app, &fake, |nonce| {
        entra_claims(&fake, nonce, CONSUMERS, CONSUMERS, OID, "someone@outlook.example")
    })
    .await;
    expect_refused(&app, response, "tenant is not accepted").await;
}

/// A mock OAuth 2.0 provider trusted to verify addresses, as `[providers.victim]`: where the
/// victim's account comes from (the development provider's accounts never link).
async fn trusted_mock() -> (MockProvider, String) {
    let mock = MockProvider::start().await;
    mock.set_userinfo(Scripted::json(
        200,
        json!({"sub": "victim-1", "email": "victim@example.com", "email_verified": true}),
    ));
    let toml = mock.provider_toml_with("victim", "trust_email_verified = true");
    (mock, toml)
}

/// The victim's account, made with a verified address through the trusted mock.
async fn victim_account(app: &TestApp) -> Value {
    crate::dev_flow::mock_login(app, "victim").await;
    let (_, me) = app.api_me().await;
    assert_eq!(me["email_verified"], true, "{me}");
    app.logout().await;
    me
}

async fn entra_email_without_xms_edov_does_not_link(db: Db) {
    let (_mock, victim_toml) = trusted_mock().await;
    let (fake, app) = setup(db, "common", &victim_toml).await;
    let victim = victim_account(&app).await;

    // An attacker's tenant sets the victim's address on its own user, and even claims it verified.
    let response = ms_login(&app, &fake, |nonce| {
        let mut claims = entra_claims(&fake, nonce, TENANT_B, TENANT_B, OID, "victim@example.com");
        claims["email_verified"] = json!(true);
        claims
    })
    .await;
    expect_logged_in(&app, response, "victim@example.com").await;
    let (_, me) = app.api_me().await;
    assert_ne!(
        me["id"], victim["id"],
        "an Entra address without xms_edov must not reach the victim's account"
    );
    assert_eq!(me["identities"].as_array().map(Vec::len), Some(1), "{me}");
    assert_eq!(app.user_count().await, 2);
}

async fn entra_email_with_xms_edov_links(db: Db) {
    let (_mock, victim_toml) = trusted_mock().await;
    let (fake, app) = setup(db, "common", &victim_toml).await;
    let victim = victim_account(&app).await;

    let response = ms_login(&app, &fake, |nonce| {
        let mut claims = entra_claims(&fake, nonce, TENANT_A, TENANT_A, OID, "victim@example.com");
        claims["xms_edov"] = json!(true);
        claims
    })
    .await;
    expect_logged_in(&app, response, "victim@example.com").await;
    let (_, me) = app.api_me().await;
    assert_eq!(me["id"], victim["id"], "a domain-verified Entra address links to the account");
    assert_eq!(me["identities"].as_array().map(Vec::len), Some(2), "{me}");
    assert_eq!(app.user_count().await, 1);
}

/// Without an `email` claim the server falls back to the sign-in name (`preferred_username`),
/// which it documents as unverified: `xms_edov` vouches for the `email` claim only, so it must
/// not make the sign-in name a verified address that links to someone else's account.
async fn entra_sign_in_name_is_not_a_verified_address_even_with_xms_edov(db: Db) {
    let (_mock, victim_toml) = trusted_mock().await;
    let (fake, app) = setup(db, "common", &victim_toml).await;
    let victim = victim_account(&app).await;

    let response = ms_login(&app, &fake, |nonce| {
        let mut claims = entra_claims(&fake, nonce, TENANT_B, TENANT_B, OID, "victim@example.com");
        claims.as_object_mut().unwrap().remove("email");
        claims["xms_edov"] = json!(true);
        claims
    })
    .await;
    expect_logged_in(&app, response, "victim@example.com").await;
    let (_, me) = app.api_me().await;
    assert_ne!(me["id"], victim["id"], "a sign-in name is not a verified address: {me}");
    assert_eq!(app.user_count().await, 2);
}

async fn domain_tenant_logs_in_through_the_tenant_id_its_discovery_publishes(db: Db) {
    let (fake, app) = setup_domain_tenant(db).await;
    let response = ms_login(&app, &fake, |nonce| {
        entra_claims(&fake, nonce, TENANT_A, TENANT_A, OID, "someone@contoso.example")
    })
    .await;
    expect_logged_in(&app, response, "someone@contoso.example").await;
    let (_, me) = app.api_me().await;
    assert_eq!(me["identities"][0]["subject"], format!("{TENANT_A}:{OID}"));
    assert!(fake.discovery_requests() >= 1);
}

async fn domain_tenant_refuses_tokens_of_another_tenant(db: Db) {
    let (fake, app) = setup_domain_tenant(db).await;
    // The browser comes back without an `iss` parameter (Entra does not send one), carrying a
    // code for a token `claims(nonce)`.
    let login = |claims: fn(&FakeOidc, &str) -> Value| {
        let (app, fake) = (&app, &fake);
        async move {
            let attempt = Attempt::from_url(&app.begin_login("ms").await);
            fake.set_id_token(sign_json_rs256(RSA1_PEM, "k1", &claims(fake, &attempt.nonce)));
            callback(app, "ms", &attempt, None).await
        }
    };
    // Another tenant's own token: its iss is not the issuer discovery published.
    let response =
        login(|fake, nonce| entra_claims(fake, nonce, TENANT_B, TENANT_B, OID, "someone@fabrikam.example"))
            .await;
    expect_refused(&app, response, "issued by someone else").await;

    // Our tenant's issuer with another tenant's id: the tid is not the published tenant's.
    let response =
        login(|fake, nonce| entra_claims(fake, nonce, TENANT_A, TENANT_B, OID, "someone@fabrikam.example"))
            .await;
    expect_refused(&app, response, "tenant is not accepted").await;
    assert_eq!(fake.token_requests(), 2);

    // And an authorization response naming the other tenant as `iss` is a mix-up, refused
    // before the code is exchanged.
    let response = ms_login(&app, &fake, |nonce| {
        entra_claims(&fake, nonce, TENANT_B, TENANT_B, OID, "someone@fabrikam.example")
    })
    .await;
    expect_page(response, StatusCode::BAD_REQUEST, "iss mismatch").await;
    assert_eq!(fake.token_requests(), 2);
    app.assert_logged_out().await;
    assert_eq!(app.user_count().await, 0);
}

/// Entra leaves `oid` (half of the identity key) out of ID tokens requested without `profile`,
/// so an override that drops it would make every login fail: `profile` is added back.
async fn scopes_without_profile_still_request_profile(db: Db) {
    let fake = FakeOidc::start().await;
    fake.set_issuer(&format!("{}/{{tenantid}}/v2.0", fake.base));
    let app = spawn_ms_app(db, &fake, "common", "", "scopes = [\"openid\", \"email\"]").await;
    let attempt = Attempt::from_url(&app.begin_login("ms").await);
    let scope = attempt.param("scope").expect("scope");
    let scopes: Vec<&str> = scope.split(' ').collect();
    assert_eq!(scopes, ["openid", "email", "profile"], "{scope:?}");
}
