//! The Slack preset (issue 12, item 3) against the fake OpenID Connect provider standing in for
//! `https://slack.com`, on SQLite and PostgreSQL: the identity is the workspace id with the user id
//! (`T…:U…`), so the same user id in another workspace is another user; a token without a
//! workspace id is refused with nothing written; a configured `team` is sent as Slack's `team`
//! parameter and a token from any other workspace refused; and Slack's `email_verified` links
//! accounts only when `trust_email_verified` says so, never for an unverified address.

use crate::db_tests;
use crate::fake_oidc::*;
use crate::helpers::*;
use crate::mock_provider::TrustedAccount;
use serde_json::{json, Value};

db_tests!(
    slack_login_is_keyed_by_workspace_and_user,
    the_same_user_id_in_another_workspace_is_another_user,
    a_token_without_a_workspace_is_refused_and_nothing_is_written,
    a_configured_team_is_asked_for_and_another_workspace_refused,
    a_verified_slack_address_does_not_link_by_default,
    a_trusted_workspace_links_a_verified_address_only,
);

const TEAM: &str = "T0123ABC";
const OTHER_TEAM: &str = "T0999XYZ";
const USER: &str = "U0456DEF";

/// The app with the fake as `[providers.slack]` (after `before`, with `extra` in its table).
async fn slack_app(db: Db, fake: &FakeOidc, before: &str, extra: &str) -> TestApp {
    let toml = format!(
        "{before}[providers.slack]\nissuer = \"{}\"\nclient_id = \"{CLIENT_ID}\"\nclient_secret = \"{CLIENT_SECRET}\"\n{extra}\n",
        fake.base
    );
    TestApp::builder(db).toml(&toml).spawn().await
}

/// A Slack ID token's claims for `nonce`: user `USER` of workspace `team` (none: no team claim).
fn slack_claims(fake: &FakeOidc, nonce: &str, team: Option<&str>, email: &str, verified: bool) -> Value {
    let now = now_secs();
    let mut claims = json!({
        "iss": fake.base, "aud": CLIENT_ID, "exp": now + 300, "iat": now, "nonce": nonce,
        "sub": USER, "https://slack.com/user_id": USER,
        "email": email, "email_verified": verified, "name": "Sam Slack",
        "picture": "https://secure.gravatar.com/avatar/sam.jpg",
    });
    if let Some(team) = team {
        claims["https://slack.com/team_id"] = json!(team);
        claims["https://slack.com/team_name"] = json!(format!("Workspace {team}"));
        claims["https://slack.com/team_domain"] = json!(team.to_lowercase());
    }
    claims
}

/// Begins a Slack login in `app`, has the fake mint `claims(nonce)` and comes back.
async fn slack_login(
    app: &TestApp,
    fake: &FakeOidc,
    claims: impl FnOnce(&str) -> Value,
) -> reqwest::Response {
    let attempt = Attempt::from_url(&app.begin_login("slack").await);
    fake.set_id_token(sign_json_rs256(RSA1_PEM, "k1", &claims(&attempt.nonce)));
    callback(app, "slack", &attempt, Some(&fake.base)).await
}

/// A trusted provider's account for `user@example.com`, made first, beside Slack (with `extra` in
/// Slack's table).
async fn beside_a_trusted_account(db: Db, extra: &str) -> (FakeOidc, TrustedAccount, TestApp, Value) {
    let fake = FakeOidc::start().await;
    let victim = TrustedAccount::start("user@example.com").await;
    let app = slack_app(db, &fake, &victim.toml, extra).await;
    let first = victim.log_in_first(&app).await;
    (fake, victim, app, first)
}

async fn slack_login_is_keyed_by_workspace_and_user(db: Db) {
    let fake = FakeOidc::start().await;
    let app = slack_app(db, &fake, "", "").await;
    let attempt = Attempt::from_url(&app.begin_login("slack").await);
    let scope = attempt.param("scope").unwrap_or_default();
    assert_eq!(scope, "openid email profile");
    assert_eq!(attempt.param("team"), None, "no workspace pre-selected unless configured");
    fake.set_id_token(sign_json_rs256(
        RSA1_PEM,
        "k1",
        &slack_claims(&fake, &attempt.nonce, Some(TEAM), "sam@example.com", true),
    ));
    let response = callback(&app, "slack", &attempt, Some(&fake.base)).await;
    expect_logged_in(&app, response, "sam@example.com").await;
    let (_, me) = app.api_me().await;
    assert_eq!(me["identities"][0]["provider"], "slack");
    assert_eq!(me["identities"][0]["subject"], format!("{TEAM}:{USER}"));
    assert_eq!(me["display_name"], "Sam Slack");
    assert_eq!(me["avatar_url"], "https://secure.gravatar.com/avatar/sam.jpg");
    assert_eq!(me["email_verified"], false, "not believed by default: {me}");
}

async fn the_same_user_id_in_another_workspace_is_another_user(db: Db) {
    let fake = FakeOidc::start().await;
    let app = slack_app(db, &fake, "", "").await;
    let response =
        slack_login(&app, &fake, |nonce| slack_claims(&fake, nonce, Some(TEAM), "sam@example.com", true))
            .await;
    expect_logged_in(&app, response, "sam@example.com").await;
    let (_, first) = app.api_me().await;
    app.logout().await;

    let response = slack_login(&app, &fake, |nonce| {
        slack_claims(&fake, nonce, Some(OTHER_TEAM), "sam@example.com", true)
    })
    .await;
    expect_logged_in(&app, response, "sam@example.com").await;
    let (_, second) = app.api_me().await;
    assert_ne!(second["id"], first["id"], "user {USER} of two workspaces is two people");
    assert_eq!(second["identities"][0]["subject"], format!("{OTHER_TEAM}:{USER}"));
    assert_eq!(app.user_count().await, 2);

    // And the first workspace's user still logs into the first account.
    app.logout().await;
    let response =
        slack_login(&app, &fake, |nonce| slack_claims(&fake, nonce, Some(TEAM), "sam@example.com", true))
            .await;
    expect_logged_in(&app, response, "sam@example.com").await;
    assert_eq!(app.api_me().await.1["id"], first["id"]);
}

async fn a_token_without_a_workspace_is_refused_and_nothing_is_written(db: Db) {
    let fake = FakeOidc::start().await;
    let app = slack_app(db, &fake, "", "").await;
    let response =
        slack_login(&app, &fake, |nonce| slack_claims(&fake, nonce, None, "sam@example.com", true)).await;
    expect_refused(&app, response, "names no Slack workspace").await;
    // An empty workspace id is none either.
    let response =
        slack_login(&app, &fake, |nonce| slack_claims(&fake, nonce, Some(""), "sam@example.com", true)).await;
    expect_refused(&app, response, "names no Slack workspace").await;
    assert_eq!(fake.token_requests(), 2);
}

async fn a_configured_team_is_asked_for_and_another_workspace_refused(db: Db) {
    let fake = FakeOidc::start().await;
    let app = slack_app(db, &fake, "", &format!("team = \"{TEAM}\"")).await;
    let attempt = Attempt::from_url(&app.begin_login("slack").await);
    assert_eq!(attempt.param("team").as_deref(), Some(TEAM), "Slack pre-selects the workspace");

    let response = slack_login(&app, &fake, |nonce| {
        slack_claims(&fake, nonce, Some(OTHER_TEAM), "sam@example.com", true)
    })
    .await;
    expect_refused(&app, response, "another Slack workspace").await;

    let response =
        slack_login(&app, &fake, |nonce| slack_claims(&fake, nonce, Some(TEAM), "sam@example.com", true))
            .await;
    expect_logged_in(&app, response, "sam@example.com").await;
    assert_eq!(app.user_count().await, 1);
}

async fn a_verified_slack_address_does_not_link_by_default(db: Db) {
    let (fake, _victim, app, first) = beside_a_trusted_account(db, "").await;
    // A workspace admin set the victim's address on their own member, which Slack calls verified.
    let response =
        slack_login(&app, &fake, |nonce| slack_claims(&fake, nonce, Some(TEAM), "user@example.com", true))
            .await;
    expect_logged_in(&app, response, "user@example.com").await;
    let (_, me) = app.api_me().await;
    assert_ne!(me["id"], first["id"], "Slack's email_verified is not believed by default: {me}");
    assert_eq!(me["email_verified"], false, "{me}");
    assert_eq!(app.user_count().await, 2);
}

async fn a_trusted_workspace_links_a_verified_address_only(db: Db) {
    let extra = format!("team = \"{TEAM}\"\ntrust_email_verified = true");
    let (fake, _victim, app, first) = beside_a_trusted_account(db, &extra).await;

    // Unverified, even from a trusted workspace: an account of its own.
    let stranger = app.another_browser();
    let response = slack_login(&stranger, &fake, |nonce| {
        let mut claims = slack_claims(&fake, nonce, Some(TEAM), "user@example.com", false);
        claims["sub"] = json!("U0STRANGER");
        claims
    })
    .await;
    expect_logged_in(&stranger, response, "user@example.com").await;
    let (_, other) = stranger.api_me().await;
    assert_ne!(other["id"], first["id"], "an unverified address never joins an account");

    let response =
        slack_login(&app, &fake, |nonce| slack_claims(&fake, nonce, Some(TEAM), "user@example.com", true))
            .await;
    expect_logged_in(&app, response, "user@example.com").await;
    let (_, me) = app.api_me().await;
    assert_eq!(me["id"], first["id"], "a trusted workspace's verified address joins the account");
    assert_eq!(me["identities"].as_array().map(Vec::len), Some(2), "{me}");
    assert_eq!(app.user_count().await, 2);
}
