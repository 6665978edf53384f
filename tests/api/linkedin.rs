//! The LinkedIn preset (issue 12, item 4) against the fake OpenID Connect provider standing in for
//! `https://www.linkedin.com/oauth`, on SQLite and PostgreSQL: the client secret goes in the form
//! body (LinkedIn takes no other method), the standard scopes are asked for, a verified address
//! joins an account a trusted provider made, and an unverified one never does.

use crate::db_tests;
use crate::fake_oidc::*;
use crate::helpers::*;
use crate::mock_provider::{MockProvider, Scripted};
use serde_json::json;

db_tests!(
    linkedin_posts_its_secret_and_links_only_verified_addresses,
    a_linkedin_token_signed_by_an_unpublished_key_is_refused,
);

async fn a_linkedin_token_signed_by_an_unpublished_key_is_refused(db: Db) {
    let fake = FakeOidc::start().await;
    let toml = format!(
        "[providers.linkedin]\nissuer = \"{}\"\nclient_id = \"{CLIENT_ID}\"\nclient_secret = \"{CLIENT_SECRET}\"\n",
        fake.base
    );
    let app = TestApp::builder(db).toml(&toml).spawn().await;
    let attempt = Attempt::from_url(&app.begin_login("linkedin").await);
    fake.set_id_token(fake.sign(fake.claims(&attempt.nonce), &key2()));
    expect_refused(&app, callback(&app, "linkedin", &attempt, Some(&fake.base)).await, "signature").await;
}

async fn linkedin_posts_its_secret_and_links_only_verified_addresses(db: Db) {
    let fake = FakeOidc::start().await;
    fake.set_issuer(&fake.base);
    let victim = MockProvider::start().await;
    victim.set_userinfo(Scripted::json(
        200,
        json!({"sub": "victim-1", "email": "user@example.com", "email_verified": true}),
    ));
    let toml = format!(
        "{}[providers.linkedin]\nissuer = \"{}\"\nclient_id = \"{CLIENT_ID}\"\nclient_secret = \"{CLIENT_SECRET}\"\n",
        victim.provider_toml_with("victim", "trust_email_verified = true"),
        fake.base
    );
    let app = TestApp::builder(db).toml(&toml).spawn().await;
    crate::dev_flow::mock_login(&app, "victim").await;
    let (_, first) = app.api_me().await;
    app.logout().await;

    // An unverified address (in userinfo, the ID token carrying none): an account of its own.
    let stranger = app.another_browser();
    fake.set_userinfo(json!({"sub": "li-2", "email": "user@example.com", "email_verified": false}));
    let attempt = Attempt::from_url(&stranger.begin_login("linkedin").await);
    fake.set_id_token(fake.sign(fake.claims_for(&attempt.nonce, "li-2", None), &key1()));
    expect_logged_in(
        &stranger,
        callback(&stranger, "linkedin", &attempt, Some(&fake.base)).await,
        "user@example.com",
    )
    .await;
    let (_, other) = stranger.api_me().await;
    assert_ne!(other["id"], first["id"], "an unverified address never joins an account");

    // A verified one joins it; the secret went in the form, never as Basic.
    let attempt = Attempt::from_url(&app.begin_login("linkedin").await);
    let scope = attempt.param("scope").unwrap_or_default();
    for wanted in ["openid", "email", "profile"] {
        assert!(scope.split(' ').any(|s| s == wanted), "{scope}");
    }
    fake.set_id_token(fake.sign(fake.claims(&attempt.nonce), &key1()));
    expect_logged_in(&app, callback(&app, "linkedin", &attempt, Some(&fake.base)).await, "user@example.com")
        .await;
    let (_, me) = app.api_me().await;
    assert_eq!(me["id"], first["id"], "LinkedIn's verified address is believed");
    let form = fake.last_token_form();
    assert_eq!(form.get("client_secret").map(String::as_str), Some(CLIENT_SECRET));
    assert_eq!(form.get("client_id").map(String::as_str), Some(CLIENT_ID));
    assert_eq!(fake.last_token_auth(), None, "no Basic header");
}
