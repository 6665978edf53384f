//! Properties 1 and 2: callback queries (GET) and `form_post` callbacks (POST), against a model
//! of RFC 6749 §4.1.2 and §3.1 and RFC 9207: only the genuine state, with a code (and the
//! issuer), logs in.

use super::generators::*;
use super::harness::*;
use crate::fake_oidc::*;
use crate::helpers::*;
use crate::mock_provider::MockProvider;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use reqwest::header::CONTENT_TYPE;
use reqwest::StatusCode;
use std::collections::HashMap;
use url::Url;

/// The parameters the callback reads (a second one of these is refused).
const CALLBACK_PARAMS: [&str; 6] = ["code", "state", "error", "error_description", "error_uri", "iss"];
/// Our own re-post's marker.
const RESUBMITTED: &str = "loginwith_resubmitted";

fn param_name() -> BoxedStrategy<String> {
    prop_oneof![
        3 => one_of(&[
            "code", "state", "error", "error_description", "error_uri", "iss", RESUBMITTED,
            "Code", "STATE", "state[]", "code ", " state", "", "session_state",
        ]).prop_map(str::to_owned),
        1 => junk_text(),
    ]
    .boxed()
}

/// Raw query text made of URL syntax, bad escapes, parameter names and any characters.
fn raw_query_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        3 => one_of(&["&", "=", "+", "#", "?", "/", ";", "code=", "state=", "error=", "&&", "==", "iss="])
            .prop_map(str::to_owned),
        2 => one_of(&BAD_ESCAPES).prop_map(str::to_owned),
        2 => "[a-zA-Z0-9_.~-]{1,8}",
        2 => any::<char>().prop_map(String::from),
    ];
    prop::collection::vec(piece, 0..24).prop_map(|parts| parts.concat())
}

/// One edit of a genuine callback's parameters (`code=...&state=...`, plus `iss=...` for the
/// OpenID Connect provider). Values are edited as they stand in the encoded text.
#[derive(Debug, Clone)]
enum ParamEdit {
    /// A character of the state replaced (raw, so it may need escaping or be `+`, `&`...).
    ReplaceStateChar {
        at: usize,
        with: char,
    },
    /// A character of the state percent-encoded (the same state, differently spelled).
    EscapeStateChar {
        at: usize,
    },
    TruncateState {
        keep: usize,
    },
    /// Another parameter, form-encoded; a second `state` or `code` makes a duplicate.
    Add {
        name: String,
        value: String,
    },
    Drop {
        name: &'static str,
    },
    SetValue {
        name: &'static str,
        value: String,
    },
    /// Raw bytes appended to a value after encoding (an escape that decodes to invalid UTF-8...).
    AppendEscape {
        name: &'static str,
        escape: &'static str,
    },
    /// A raw segment (unencoded) appended to the query.
    RawSegment(String),
    /// The provider reports an error, with markup in every part.
    ProviderError {
        error: String,
        description: Option<String>,
        uri: Option<String>,
    },
}

fn base_param() -> impl Strategy<Value = &'static str> {
    one_of(&["code", "state", "iss"])
}

fn param_edit() -> impl Strategy<Value = ParamEdit> {
    prop_oneof![
        3 => (any::<usize>(), prop_oneof![3 => char_of("[A-Za-z0-9_-]"), 1 => any::<char>().boxed()])
            .prop_map(|(at, with)| ParamEdit::ReplaceStateChar { at, with }),
        2 => any::<usize>().prop_map(|at| ParamEdit::EscapeStateChar { at }),
        1 => any::<usize>().prop_map(|keep| ParamEdit::TruncateState { keep }),
        3 => (param_name(), junk_text()).prop_map(|(name, value)| ParamEdit::Add { name, value }),
        2 => base_param().prop_map(|name| ParamEdit::Drop { name }),
        2 => (base_param(), junk_text()).prop_map(|(name, value)| ParamEdit::SetValue { name, value }),
        2 => (base_param(), one_of(&BAD_ESCAPES))
            .prop_map(|(name, escape)| ParamEdit::AppendEscape { name, escape }),
        2 => raw_query_text().prop_map(ParamEdit::RawSegment),
        2 => (
            prop_oneof![one_of(&["access_denied", "server_error"]).prop_map(str::to_owned), junk_text()],
            prop::option::of(junk_text()),
            prop::option::of(prop_oneof![
                Just("javascript:alert(2)".to_owned()),
                Just("https://idp.example/e?x=\"><b>".to_owned()),
                junk_text(),
            ]),
        )
            .prop_map(|(error, description, uri)| ParamEdit::ProviderError { error, description, uri }),
    ]
}

/// A callback query or form body.
#[derive(Debug, Clone)]
enum CallbackInput {
    /// Used verbatim.
    Raw(String),
    /// Arbitrary bytes (form bodies only; a query gets them percent-encoded).
    Bytes(Vec<u8>),
    /// Random parameters, form-encoded.
    Pairs(Vec<(String, String)>),
    /// The genuine callback, edited (no edits: the genuine callback itself).
    Edited(Vec<ParamEdit>),
}

fn callback_input() -> impl Strategy<Value = CallbackInput> {
    prop_oneof![
        1 => raw_query_text().prop_map(CallbackInput::Raw),
        1 => prop::collection::vec(any::<u8>(), 0..120).prop_map(CallbackInput::Bytes),
        1 => prop::collection::vec((param_name(), junk_text()), 0..6).prop_map(CallbackInput::Pairs),
        4 => prop::collection::vec(param_edit(), 0..4).prop_map(CallbackInput::Edited),
    ]
}

/// For GET callbacks: everything except raw bytes, which a URL cannot carry unescaped.
fn callback_query() -> impl Strategy<Value = CallbackInput> {
    callback_input().prop_map(|input| match input {
        CallbackInput::Bytes(bytes) => {
            CallbackInput::Raw(bytes.iter().map(|b| format!("%{b:02X}")).collect())
        }
        other => other,
    })
}

impl CallbackInput {
    /// The encoded text, for a login whose genuine state is `state` (and issuer `iss`, if any).
    fn render(&self, state: &str, iss: Option<&str>) -> Vec<u8> {
        let join = |pairs: &[(String, String)]| {
            pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&").into_bytes()
        };
        match self {
            CallbackInput::Raw(text) => text.clone().into_bytes(),
            CallbackInput::Bytes(bytes) => bytes.clone(),
            CallbackInput::Pairs(pairs) => {
                join(&pairs.iter().map(|(k, v)| (enc(k), enc(v))).collect::<Vec<_>>())
            }
            CallbackInput::Edited(edits) => {
                let mut pairs =
                    vec![("code".to_owned(), "good-code".to_owned()), ("state".to_owned(), state.to_owned())];
                if let Some(iss) = iss {
                    pairs.push(("iss".to_owned(), enc(iss)));
                }
                let mut raw_tail = String::new();
                for edit in edits {
                    edit.apply(&mut pairs, &mut raw_tail);
                }
                let mut text = join(&pairs);
                text.extend_from_slice(raw_tail.as_bytes());
                text
            }
        }
    }
}

impl ParamEdit {
    fn apply(&self, pairs: &mut Vec<(String, String)>, raw_tail: &mut String) {
        let state = pairs.iter().position(|(k, _)| k == "state");
        let with_state = |pairs: &mut Vec<(String, String)>, f: &dyn Fn(&str) -> String| {
            if let Some(i) = state {
                pairs[i].1 = f(&pairs[i].1);
            }
        };
        let char_at = |s: &str, at: usize| {
            let n = s.chars().count();
            (n > 0).then(|| at % n)
        };
        match self {
            ParamEdit::ReplaceStateChar { at, with } => with_state(pairs, &|s| match char_at(s, *at) {
                Some(i) => s.chars().enumerate().map(|(j, c)| if i == j { *with } else { c }).collect(),
                None => with.to_string(),
            }),
            ParamEdit::EscapeStateChar { at } => with_state(pairs, &|s| match char_at(s, *at) {
                Some(i) => s
                    .chars()
                    .enumerate()
                    .map(|(j, c)| {
                        if i == j && c.is_ascii_alphanumeric() {
                            format!("%{:02X}", c as u32)
                        } else {
                            c.to_string()
                        }
                    })
                    .collect(),
                None => String::new(),
            }),
            ParamEdit::TruncateState { keep } => {
                with_state(pairs, &|s| s.chars().take(keep % (s.len() + 1)).collect())
            }
            ParamEdit::Add { name, value } => pairs.push((enc(name), enc(value))),
            ParamEdit::Drop { name } => pairs.retain(|(k, _)| k != name),
            ParamEdit::SetValue { name, value } => {
                for (k, v) in pairs.iter_mut() {
                    if k == name {
                        *v = enc(value);
                    }
                }
            }
            ParamEdit::AppendEscape { name, escape } => {
                for (k, v) in pairs.iter_mut() {
                    if k == name {
                        v.push_str(escape);
                    }
                }
            }
            ParamEdit::RawSegment(raw) => {
                raw_tail.push('&');
                raw_tail.push_str(raw);
            }
            ParamEdit::ProviderError { error, description, uri } => {
                pairs.push(("error".into(), enc(error)));
                if let Some(d) = description {
                    pairs.push(("error_description".into(), enc(d)));
                }
                if let Some(u) = uri {
                    pairs.push(("error_uri".into(), enc(u)));
                }
            }
        }
    }
}

/// The session cookie a callback arrives with.
#[derive(Debug, Clone)]
enum Cookie {
    /// The browser's own, from the login it started.
    Real,
    /// None (a cross-site form_post: SameSite=Lax keeps it home).
    Missing,
    /// `loginwith_session=` with junk.
    Junk(String),
    /// The real one with one character replaced (a forged signature or id).
    Tampered { at: usize, with: char },
}

fn cookie() -> impl Strategy<Value = Cookie> {
    prop_oneof![
        6 => Just(Cookie::Real),
        2 => Just(Cookie::Missing),
        1 => prop_oneof!["[ -~]{0,80}", "[A-Za-z0-9+/=._-]{20,120}"].prop_map(Cookie::Junk),
        1 => (any::<usize>(), prop_oneof![char_of("[A-Za-z0-9]"), Just('.').boxed(), Just('%').boxed()])
            .prop_map(|(at, with)| Cookie::Tampered { at, with }),
    ]
}

impl Cookie {
    /// The client to send the callback with (`None`: the browser's own, with its real cookie),
    /// and whether the real session comes along.
    fn client(&self, browser: &TestApp) -> (Option<reqwest::Client>, bool) {
        let real = browser.session_cookie().unwrap_or_default();
        let forged = match self {
            Cookie::Real => return (None, true),
            Cookie::Missing => return (Some(browser.new_browser().0), false),
            Cookie::Junk(junk) => junk.clone(),
            Cookie::Tampered { at, with } => {
                let i = at % real.chars().count().max(1);
                real.chars().enumerate().map(|(j, c)| if i == j { *with } else { c }).collect()
            }
        };
        if forged == real {
            return (None, true);
        }
        let header = format!("{}={forged}", loginwith::SESSION_COOKIE);
        let mut headers = reqwest::header::HeaderMap::new();
        if let Ok(value) = reqwest::header::HeaderValue::from_str(&header) {
            headers.insert(reqwest::header::COOKIE, value);
        }
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .default_headers(headers)
            .build()
            .expect("client");
        (Some(client), false)
    }
}

/// What the server must do with a callback whose encoded parameters are `encoded`
/// (RFC 6749 §4.1.2, §3.1; RFC 9207): a repeated parameter is refused; a provider error is
/// flashed only for this browser's own attempt (else refused); a cookieless form_post gets the re-post page; only the genuine state with a code (and,
/// for OpenID Connect, the issuer as `iss`) logs in.
fn callback_model(
    encoded: &[u8],
    genuine_state: &str,
    iss: Option<&str>,
    form_post_without_cookie: bool,
    real_session: bool,
) -> Expected {
    let mut seen: HashMap<String, String> = HashMap::new();
    let mut resubmitted = false;
    for (k, v) in url::form_urlencoded::parse(encoded) {
        if k == RESUBMITTED {
            resubmitted = true;
        } else if CALLBACK_PARAMS.contains(&k.as_ref())
            && seen.insert(k.into_owned(), v.into_owned()).is_some()
        {
            return Expected::Refuse;
        }
    }
    if form_post_without_cookie && !resubmitted {
        return Expected::Resubmit;
    }
    let own_attempt = real_session && seen.get("state").map(String::as_str) == Some(genuine_state);
    if seen.contains_key("error") {
        // A provider error is only shown for a login this browser started (text injection).
        return if own_attempt { Expected::FlashError } else { Expected::Refuse };
    }
    let genuine = own_attempt
        && seen.get("code").is_some_and(|c| !c.is_empty())
        && iss.is_none_or(|iss| seen.get("iss").map(String::as_str) == Some(iss));
    if genuine {
        Expected::LogIn
    } else {
        Expected::Refuse
    }
}

/// A mock OAuth 2.0 provider and the app with it as `[providers.mock]`.
pub(super) async fn app_with_mock() -> (MockProvider, TestApp) {
    let mock = MockProvider::start().await;
    let app = TestApp::builder(Db::Sqlite).toml(&mock.provider_toml("mock")).spawn().await;
    (mock, app)
}

/// `GET /authorize/mock` in a new browser; returns the browser and the state it was given.
pub(super) async fn begin_mock_login(app: &TestApp) -> Result<(TestApp, String), TestCaseError> {
    let browser = app.another_browser();
    let answer = observe(browser.client.get(browser.url("/authorize/mock"))).await?;
    prop_assert_eq!(answer.status, StatusCode::FOUND, "authorize must redirect: {}", answer.page);
    let state = answer.location.as_deref().and_then(|l| query_param(l, "state"));
    let state = state.ok_or_else(|| TestCaseError::fail("the authorize redirect carries no state"))?;
    Ok((browser, state))
}

#[test]
fn callback_queries_log_in_only_with_the_genuine_state_and_never_panic() {
    let rt = runtime("callback_queries");
    let _context = rt.enter();
    let (mock, app) = rt.block_on(app_with_mock());
    let tally = Tally::default();
    check_property("callback_queries", 96, (callback_query(), cookie()), |(input, cookie)| {
        rt.block_on(async {
            let (browser, state) = begin_mock_login(&app).await?;
            let (client, real_session) = cookie.client(&browser);
            let client = client.unwrap_or_else(|| browser.client.clone());
            let text = String::from_utf8(input.render(&state, None)).unwrap_or_default();
            let Ok(url) = Url::parse(&format!("{}/callback/mock?{text}", app.address)) else {
                return Err(TestCaseError::reject("not a URL"));
            };
            // What the server receives: the URL's query as serialised (no fragment, escaped).
            let expected =
                callback_model(url.query().unwrap_or_default().as_bytes(), &state, None, false, real_session);
            let (tokens, users) = (mock.token_requests(), app.user_count().await);
            let answer = observe(client.get(url.clone())).await?;
            check_answer(&browser, &answer, expected, &Who::Email("someone@example.com".into()), &tally)
                .await?;
            prop_assert!(
                whoami_with(&client, &app).await?.is_none() || real_session,
                "the forged session logged in"
            );
            let exchanged = mock.token_requests() - tokens;
            prop_assert_eq!(
                exchanged,
                usize::from(expected == Expected::LogIn),
                "token requests for {}",
                url
            );
            if expected != Expected::LogIn {
                prop_assert_eq!(app.user_count().await, users, "no user may be written");
            }
            Ok(())
        })
    });
    tally.print("callback_queries");
}

#[derive(Debug, Clone)]
struct FormPost {
    body: CallbackInput,
    content_type: Option<String>,
    cookie: Cookie,
}

fn form_post() -> impl Strategy<Value = FormPost> {
    (
        callback_input(),
        prop::option::of(
            prop_oneof![3 => Just("application/x-www-form-urlencoded".to_owned()), 2 => content_type()],
        ),
        cookie(),
    )
        .prop_map(|(body, content_type, cookie)| FormPost { body, content_type, cookie })
}

#[test]
fn form_post_callbacks_log_in_only_with_the_genuine_state_and_never_panic() {
    let rt = runtime("form_post");
    let _context = rt.enter();
    let (fake, app) = rt.block_on(async {
        let fake = FakeOidc::start().await;
        let app = TestApp::builder(Db::Sqlite)
            .toml(&fake.provider_toml("oidc", "response_mode = \"form_post\""))
            .spawn()
            .await;
        (fake, app)
    });
    let tally = Tally::default();
    check_property("form_post", 96, form_post(), |post| {
        rt.block_on(async {
            let browser = app.another_browser();
            let authorize = observe(browser.client.get(browser.url("/authorize/oidc"))).await?;
            prop_assert_eq!(authorize.status, StatusCode::FOUND, "{}", authorize.page);
            let attempt = Attempt::from_url(authorize.location.as_deref().unwrap_or_default());
            // Should the body be the genuine answer, the login it completes is a real one.
            fake.set_id_token(fake.sign(fake.claims(&attempt.nonce), &key1()));

            let body = post.body.render(&attempt.state, Some(&fake.base));
            let (client, real_session) = post.cookie.client(&browser);
            let client = client.unwrap_or_else(|| browser.client.clone());
            let expected = match std::str::from_utf8(&body) {
                Err(_) => Expected::Refuse,
                Ok(text) => callback_model(
                    text.as_bytes(),
                    &attempt.state,
                    Some(&fake.base),
                    // The server sees no session of its own unless the real cookie went along: a
                    // junk or tampered one counts as none (and a "tampered" one that changed
                    // nothing, a '3' put where a '3' was, is the real one).
                    !real_session,
                    real_session,
                ),
            };
            let mut request = client.post(app.url("/callback/oidc")).body(body.clone());
            if let Some(ct) = &post.content_type {
                request = request.header(CONTENT_TYPE, ct.as_str());
            }
            let (tokens, users) = (fake.token_requests(), app.user_count().await);
            let answer = observe(request).await?;
            check_answer(&browser, &answer, expected, &Who::Email("user@example.com".into()), &tally).await?;
            prop_assert!(
                whoami_with(&client, &app).await?.is_none() || real_session,
                "the other session logged in"
            );
            let exchanged = fake.token_requests() - tokens;
            prop_assert_eq!(
                exchanged,
                usize::from(expected == Expected::LogIn),
                "token requests; body {:?}",
                String::from_utf8_lossy(&body)
            );
            if expected != Expected::LogIn {
                prop_assert_eq!(app.user_count().await, users, "no user may be written");
            }
            Ok(())
        })
    });
    tally.print("form_post");
}
