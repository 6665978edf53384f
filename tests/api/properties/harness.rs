//! The harness: a runtime per property whose threads are counted for panics, a runner without
//! failure files, and the checks every callback answer goes through.

use crate::helpers::TestApp;
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestCaseError, TestRunner};
use reqwest::header::LOCATION;
use reqwest::StatusCode;
use serde_json::Value;
use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{LazyLock, Mutex, Once};
use std::time::Duration;

pub(super) type CaseResult = Result<(), TestCaseError>;

/// Names of the runtime threads that run each property's servers: `lw-prop:NAME`.
const SERVER_THREADS: &str = "lw-prop:";

/// Panics seen on each property's runtime threads.
static SERVER_PANICS: LazyLock<Mutex<HashMap<String, usize>>> = LazyLock::new(Default::default);

/// Counts panics on server threads, then hands them to the previous hook, which prints them.
/// A panic in a spawned task (discovery at start, a handler) may never reach the client as
/// anything but a dropped connection, or nothing at all; the count catches it either way.
fn count_server_panics() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if let Some(property) = std::thread::current().name().and_then(|n| n.strip_prefix(SERVER_THREADS))
            {
                *SERVER_PANICS
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .entry(property.to_owned())
                    .or_default() += 1;
            }
            previous(info);
        }));
    });
}

fn server_panics(property: &str) -> usize {
    SERVER_PANICS.lock().unwrap_or_else(|e| e.into_inner()).get(property).copied().unwrap_or(0)
}

/// A multi-threaded runtime whose threads are named for the property: the servers run on its
/// workers while the test thread drives one case at a time with `block_on`.
pub(super) fn runtime(property: &str) -> tokio::runtime::Runtime {
    count_server_panics();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(format!("{SERVER_THREADS}{property}"))
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// `default_cases` unless `PROPTEST_CASES` says otherwise; no regression files; shrinking bounded
/// (each step is a few HTTP round trips).
fn runner(default_cases: u32) -> TestRunner {
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = default_cases;
    }
    config.failure_persistence = None;
    config.max_shrink_iters = 512;
    config.max_shrink_time = 120_000;
    TestRunner::new(config)
}

/// Runs `test` on `default_cases` generated inputs; a failure (or a server panic during a case)
/// is shrunk and reported with the minimal input.
pub(super) fn check_property<S>(
    property: &str,
    default_cases: u32,
    strategy: S,
    test: impl Fn(S::Value) -> CaseResult,
) where
    S: Strategy,
    S::Value: Debug,
{
    let started = std::time::Instant::now();
    let mut runner = runner(default_cases);
    let result = runner.run(&strategy, |input| {
        let before = server_panics(property);
        let outcome = test(input);
        let panics = server_panics(property) - before;
        if panics > 0 {
            return Err(TestCaseError::fail(format!(
                "the server panicked {panics} time(s) on this input (the panic message is printed above)"
            )));
        }
        outcome
    });
    if let Err(err) = result {
        panic!("property {property} does not hold: {err}");
    }
    eprintln!("property {property}: {} cases in {:.1?}", runner.config().cases, started.elapsed());
}

/// Counts the outcomes a property saw, printed at its end: a property that only ever refused
/// would prove little.
#[derive(Default)]
pub(super) struct Tally(Mutex<std::collections::BTreeMap<String, usize>>);

impl Tally {
    pub(super) fn note(&self, outcome: impl Debug) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()).entry(format!("{outcome:?}")).or_default() += 1;
    }
    pub(super) fn print(&self, property: &str) {
        eprintln!("property {property}: outcomes {:?}", self.0.lock().unwrap_or_else(|e| e.into_inner()));
    }
}

// =============================================================================================
// Observing the server
// =============================================================================================

/// What a request got back.
#[derive(Debug)]
pub(super) struct Answer {
    pub(super) status: StatusCode,
    pub(super) location: Option<String>,
    pub(super) page: String,
}

impl Answer {
    pub(super) fn redirects_home(&self) -> bool {
        self.status == StatusCode::SEE_OTHER && self.location.as_deref() == Some("/")
    }
    pub(super) fn is_error(&self) -> bool {
        self.status.is_client_error() || self.status.is_server_error()
    }
}

/// Sends a request; no answer within 30 s, or a failed connection, fails the case — a handler
/// that panics drops the connection without a response.
pub(super) async fn observe(request: reqwest::RequestBuilder) -> Result<Answer, TestCaseError> {
    let response = match tokio::time::timeout(Duration::from_secs(30), request.send()).await {
        Err(_) => return Err(TestCaseError::fail("no answer within 30 s")),
        Ok(Err(e)) => {
            return Err(TestCaseError::fail(format!(
                "no response — the connection failed, as when a handler panics: {}",
                loginwith::error_chain(&e)
            )))
        }
        Ok(Ok(r)) => r,
    };
    let status = response.status();
    let location = response.headers().get(LOCATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let page = match tokio::time::timeout(Duration::from_secs(30), response.text()).await {
        Ok(Ok(page)) => page,
        _ => return Err(TestCaseError::fail(format!("status {status}, but the body never arrived whole"))),
    };
    Ok(Answer { status, location, page })
}

/// Markup the generators inject; none of it may come back unescaped.
pub(super) const MARKUP: [&str; 4] = [
    "<script>alert(1)</script>",
    "\"><img src=x onerror=alert(1)>",
    "<svg onload=alert(1)>",
    "'><iframe src=javascript:alert(1)>",
];
pub(super) const RAW_MARKUP: [&str; 4] = ["<script>alert", "<img src=x", "<svg onload", "<iframe src"];

pub(super) fn assert_no_raw_markup(page: &str, what: &str) -> CaseResult {
    for raw in RAW_MARKUP {
        prop_assert!(!page.contains(raw), "{what} contains raw injected markup {raw:?}:\n{page}");
    }
    Ok(())
}

/// `/api/me` in this browser: `Some(me)` when logged in, `None` when it says 401.
pub(super) async fn whoami(browser: &TestApp) -> Result<Option<Value>, TestCaseError> {
    whoami_with(&browser.client, browser).await
}

/// `/api/me` with another client (its own cookies) on the same server.
pub(super) async fn whoami_with(
    client: &reqwest::Client,
    app: &TestApp,
) -> Result<Option<Value>, TestCaseError> {
    let answer = observe(client.get(app.url("/api/me"))).await?;
    match answer.status {
        StatusCode::OK => Ok(Some(serde_json::from_str(&answer.page).unwrap_or(Value::Null))),
        StatusCode::UNAUTHORIZED => Ok(None),
        other => Err(TestCaseError::fail(format!("/api/me answered {other}: {}", answer.page))),
    }
}

/// What the model says a callback must end in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Expected {
    /// 303 to `/`, logged in as the expected user.
    LogIn,
    /// A 4xx or 5xx page, nobody logged in.
    Refuse,
    /// The provider reported an error: 303 to `/` with a flash, nobody logged in.
    FlashError,
    /// A cookieless form_post: the 200 page that re-posts it from our origin, nobody logged in.
    Resubmit,
    /// The model cannot tell (e.g. a mangled discovery document): [`LogIn`](Self::LogIn) or
    /// [`Refuse`](Self::Refuse), each checked as such.
    Either,
}

/// Who a successful login must be.
#[derive(Debug, Clone)]
pub(super) enum Who {
    Email(String),
    /// An identity of this provider with this subject.
    Subject(&'static str, String),
}

impl Who {
    pub(super) fn is(&self, me: &Value) -> bool {
        match self {
            Who::Email(email) => me["email"] == email.as_str(),
            Who::Subject(provider, subject) => me["identities"].as_array().is_some_and(|ids| {
                ids.iter().any(|i| i["provider"] == *provider && i["subject"] == subject.as_str())
            }),
        }
    }
}

/// Checks a callback's answer against the model, then `/api/me` in the same browser.
pub(super) async fn check_answer(
    browser: &TestApp,
    answer: &Answer,
    expected: Expected,
    who: &Who,
    tally: &Tally,
) -> CaseResult {
    assert_no_raw_markup(&answer.page, "the callback's page")?;
    let me = whoami(browser).await?;
    tally.note((expected, answer.status.as_u16()));
    let shown = || {
        format!(
            "status {}, Location {:?}, /api/me {me:?}, page:\n{}",
            answer.status,
            answer.location,
            clip(&answer.page)
        )
    };
    match expected {
        Expected::LogIn => {
            prop_assert!(answer.redirects_home(), "expected a login (303 to /), got {}", shown());
            prop_assert!(
                me.as_ref().is_some_and(|me| who.is(me)),
                "expected to be logged in as {who:?}: {}",
                shown()
            );
        }
        Expected::Refuse => {
            prop_assert!(answer.is_error(), "expected a 4xx/5xx refusal, got {}", shown());
            prop_assert!(me.is_none(), "a refusal must leave nobody logged in: {}", shown());
        }
        Expected::FlashError => {
            prop_assert!(
                answer.redirects_home(),
                "expected the provider's error flashed (303 to /), got {}",
                shown()
            );
            prop_assert!(me.is_none(), "a provider error must leave nobody logged in: {}", shown());
            let home = observe(browser.client.get(browser.url("/"))).await?;
            prop_assert_eq!(home.status, StatusCode::OK);
            assert_no_raw_markup(&home.page, "the start page with the flashed error")?;
        }
        Expected::Resubmit => {
            prop_assert!(
                answer.status == StatusCode::OK && answer.page.contains("id=\"resubmit\""),
                "expected the re-post page, got {}",
                shown()
            );
            prop_assert!(me.is_none(), "the re-post page must not log in: {}", shown());
        }
        Expected::Either => match &me {
            Some(me) => {
                prop_assert!(answer.redirects_home(), "logged in, but the callback said {}", shown());
                prop_assert!(who.is(me), "logged in as the wrong user (expected {who:?}): {}", shown());
            }
            None => prop_assert!(answer.is_error(), "not logged in, yet no 4xx/5xx: {}", shown()),
        },
    }
    Ok(())
}

pub(super) fn clip(page: &str) -> String {
    page.chars().take(1500).collect()
}
