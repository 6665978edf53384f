//! loginwith in an app that owns its users: loginwith says who logs in, and the app keeps its own
//! `profiles` table beside loginwith's tables, in the same database, keyed by loginwith's user id.
//!
//! The login hook ([`loginwith::LoginwithBuilder::on_login`]) is where the app has its say: it
//! refuses addresses on a blocklist (loginwith then writes nothing and shows the hook's message),
//! and it creates or updates the profile row of everyone else. `/me` shows the profile.
//!
//! ```sh
//! cargo run --example own_users        # then open http://127.0.0.1:5002/me
//! ```
//!
//! It uses the built-in development provider and a SQLite file `own_users.db` (set `DATABASE_URL`
//! to a `postgres://` URL to use PostgreSQL, `PORT` for another port); log in as
//! `someone@blocked.example` to see a refusal. `tests/api/examples.rs` runs this very file.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Html;
use axum::routing::get;
use axum::Router;
use loginwith::{Config, CurrentUser, LoginEvent, LoginRefused, Loginwith, RequireLogin};
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{PgPool, SqlitePool};
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Addresses at these domains may not log in here.
const BLOCKED_DOMAINS: &[&str] = &["blocked.example"];

/// The app's own table. `user_id` is loginwith's `users.id`: when loginwith deletes a user (as it
/// does with a new user whose login the hook refused), the profile goes too. One text for both
/// databases: SQLite reads `BIGINT` as an integer, PostgreSQL needs the referenced table to
/// exist (so this runs after loginwith has migrated).
const CREATE_PROFILES: &str = "CREATE TABLE IF NOT EXISTS profiles (
    user_id      BIGINT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    display_name TEXT   NOT NULL,
    created_at   BIGINT NOT NULL,
    logins       BIGINT NOT NULL
)";

/// A first login creates the profile, every later one counts. An upsert rather than "insert when
/// `new_user`": users who logged in before the app had profiles get theirs at their next login.
/// `$1` placeholders: sqlx's SQLite driver understands them too.
const RECORD_LOGIN: &str = "INSERT INTO profiles (user_id, display_name, created_at, logins) \
     VALUES ($1, $2, $3, 1) ON CONFLICT (user_id) DO UPDATE SET logins = profiles.logins + 1";

const SELECT_PROFILE: &str = "SELECT display_name, created_at, logins FROM profiles WHERE user_id = $1";

/// The app's own connections to the database loginwith uses. (loginwith keeps its pool to itself;
/// the app opens a small one of its own on the same URL.)
#[derive(Debug, Clone)]
enum Profiles {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs the same query code on whichever pool this is (the two pools are different types).
macro_rules! on_pool {
    ($profiles:expr, $pool:ident => $body:expr) => {
        match $profiles {
            Profiles::Sqlite($pool) => $body,
            Profiles::Postgres($pool) => $body,
        }
    };
}

/// A profile as `/me` shows it.
#[derive(Debug, sqlx::FromRow)]
struct Profile {
    display_name: String,
    created_at: i64,
    logins: i64,
}

impl Profiles {
    /// A pool that connects on first use: loginwith creates the database (a SQLite file with
    /// private permissions) and its `users` table first.
    fn connect_lazy(url: &str) -> Result<Self, sqlx::Error> {
        if url.starts_with("sqlite:") {
            // loginwith keeps one connection to the file; this is a second writer beside it. WAL
            // lets readers and one writer work at once, and the busy timeout makes a write wait
            // for loginwith's (milliseconds) instead of failing with "database is locked". The
            // hook runs while loginwith holds no transaction, so the wait always ends.
            let options = SqliteConnectOptions::from_str(url)?
                .journal_mode(SqliteJournalMode::Wal)
                .busy_timeout(Duration::from_secs(5))
                .foreign_keys(true);
            Ok(Profiles::Sqlite(SqlitePoolOptions::new().max_connections(2).connect_lazy_with(options)))
        } else {
            Ok(Profiles::Postgres(PgPoolOptions::new().max_connections(4).connect_lazy(url)?))
        }
    }

    async fn create_table(&self) -> Result<(), sqlx::Error> {
        on_pool!(self, pool => sqlx::query(CREATE_PROFILES).execute(pool).await.map(|_| ()))
    }

    async fn record_login(&self, event: &LoginEvent) -> Result<(), sqlx::Error> {
        let name = event.identity.name.clone().unwrap_or_else(|| event.user.username.clone());
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
        on_pool!(self, pool => sqlx::query(RECORD_LOGIN)
            .bind(event.user.id)
            .bind(name)
            .bind(now)
            .execute(pool)
            .await
            .map(|_| ()))
    }

    async fn get(&self, user: &CurrentUser) -> Result<Option<Profile>, sqlx::Error> {
        on_pool!(self, pool => sqlx::query_as::<_, Profile>(SELECT_PROFILE)
            .bind(user.id)
            .fetch_optional(pool)
            .await)
    }
}

/// The app's rule and its bookkeeping, at every login. Runs after loginwith has decided who this
/// is and before the browser is logged in; a refusal writes nothing (a new user is taken back).
async fn on_login(profiles: Profiles, event: LoginEvent) -> Result<(), LoginRefused> {
    let email = event.identity.email.as_deref().unwrap_or_default().to_ascii_lowercase();
    let domain = email.rsplit_once('@').map_or("", |(_, domain)| domain);
    if BLOCKED_DOMAINS.contains(&domain) {
        return Err(LoginRefused::new(format!("Addresses at {domain} may not log in here.")));
    }
    profiles.record_login(&event).await.map_err(|err| {
        // Without its profile the app cannot serve this user: better no login than half of one.
        tracing::error!(error = %err, user = event.user.id, "could not record the profile");
        LoginRefused::new("Your profile could not be saved. Please try again in a moment.")
    })
}

/// The logged-in user's profile, from the app's own table.
async fn me(
    State(profiles): State<Profiles>,
    RequireLogin(user): RequireLogin,
) -> Result<Html<String>, StatusCode> {
    let profile = profiles.get(&user).await.map_err(|err| {
        tracing::error!(error = %err, "could not read the profile");
        StatusCode::INTERNAL_SERVER_ERROR
    })?;
    // Every login records the profile, so only a session from before the app had profiles has none.
    let Some(profile) = profile else {
        return Ok(Html("<p>No profile yet: log out and in again.</p>".to_owned()));
    };
    Ok(Html(format!(
        "<h1>{}</h1><p>{}</p><p>Logins: {}</p><p>Member since: {} (Unix time)</p>\
         <form method=\"post\" action=\"/auth/logout\"><button>Log out</button></form>",
        html_escape(&profile.display_name),
        html_escape(user.email.as_deref().unwrap_or("no address")),
        profile.logins,
        profile.created_at,
    )))
}

async fn home(user: Option<CurrentUser>) -> Html<&'static str> {
    Html(match user {
        Some(_) => "<p><a href=\"/me\">Your profile</a></p>",
        None => "<p><a href=\"/auth/?next=/me\">Log in</a> to see your profile.</p>",
    })
}

/// Your app with loginwith in it, under `/auth` (the path of `config.server.public_url`), and the
/// app's `profiles` table in loginwith's database.
pub async fn app(config: Config) -> Result<Router, Box<dyn std::error::Error + Send + Sync>> {
    let profiles = Profiles::connect_lazy(&config.database.url)?;
    let hook_profiles = profiles.clone();
    let lw = Loginwith::builder(config)
        .on_login(move |event| on_login(hook_profiles.clone(), event))
        .build()
        .await?;
    profiles.create_table().await?;
    let routes = Router::new().route("/", get(home)).route("/me", get(me)).with_state(profiles);
    Ok(lw.layer(routes.merge(lw.routes())))
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    tracing_subscriber::fmt().with_env_filter("info").init();
    let port: u16 = std::env::var("PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(5002);
    let database = std::env::var("DATABASE_URL").unwrap_or_else(|_| "sqlite://own_users.db".into());
    let mut config = Config::development(&database);
    config.server.bind = ([127, 0, 0, 1], port).into();
    config.server.public_url = Some(format!("http://127.0.0.1:{port}/auth").parse()?);
    let router = app(config).await?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("open http://127.0.0.1:{port}/me");
    axum::serve(listener, router.into_make_service_with_connect_info::<std::net::SocketAddr>()).await?;
    Ok(())
}
