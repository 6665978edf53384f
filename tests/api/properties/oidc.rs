//! Properties 5 and 6: discovery documents and key sets, and ID tokens, of an OpenID Connect
//! provider (the hostile fake in `fake_oidc.rs`).

use super::generators::*;
use super::harness::*;
use crate::fake_oidc::*;
use crate::helpers::*;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::Arc;
use url::Url;

/// Edits of a key set: of the set itself, of its first key, or more keys.
#[derive(Debug, Clone)]
enum JwksEdit {
    Set(JsonEdit),
    FirstKey(JsonEdit),
    DuplicateFirstKey,
    AddKey(Value),
    /// The provider publishes a second, genuine key (`k2`).
    PublishKey2,
    RemoveAllKeys,
}

fn jwks_edit() -> impl Strategy<Value = JwksEdit> {
    prop_oneof![
        1 => json_edit().prop_map(JwksEdit::Set),
        4 => json_edit().prop_map(JwksEdit::FirstKey),
        1 => Just(JwksEdit::DuplicateFirstKey),
        1 => json_value().prop_map(JwksEdit::AddKey),
        1 => Just(JwksEdit::PublishKey2),
        1 => Just(JwksEdit::RemoveAllKeys),
    ]
}

impl JwksEdit {
    fn apply(&self, jwks: &mut Value) {
        match self {
            JwksEdit::Set(edit) => edit.apply(jwks),
            JwksEdit::FirstKey(edit) => {
                if let Some(first) = jwks.pointer_mut("/keys/0") {
                    edit.apply(first);
                }
            }
            JwksEdit::DuplicateFirstKey => {
                if let Some(first) = jwks.pointer("/keys/0").cloned() {
                    if let Some(keys) = jwks.get_mut("keys").and_then(Value::as_array_mut) {
                        keys.push(first);
                    }
                }
            }
            JwksEdit::AddKey(key) => {
                if let Some(keys) = jwks.get_mut("keys").and_then(Value::as_array_mut) {
                    keys.push(key.clone());
                }
            }
            JwksEdit::PublishKey2 => {
                let k2 = jwks_of(&[&key2()])["keys"][0].clone();
                if let Some(keys) = jwks.get_mut("keys").and_then(Value::as_array_mut) {
                    keys.push(k2);
                }
            }
            JwksEdit::RemoveAllKeys => {
                if let Some(keys) = jwks.get_mut("keys").and_then(Value::as_array_mut) {
                    keys.clear();
                }
            }
        }
    }
}

/// Edits of a discovery document's endpoints that keep them URLs, pointing at places that do
/// not work or must not be used.
#[derive(Debug, Clone)]
enum EndpointEdit {
    /// `member` (an endpoint, or the issuer) set to a variant of the provider's base URL.
    Set { member: &'static str, to: EndpointVariant },
}

#[derive(Debug, Clone, Copy)]
enum EndpointVariant {
    Https,
    TrailingSlash,
    ClosedPort,
    Localhost,
    OtherPath,
    NotHttp,
    Relative,
    Empty,
    NonLoopbackHttp,
}

fn endpoint_edit() -> impl Strategy<Value = EndpointEdit> {
    use EndpointVariant::*;
    (
        one_of(&["issuer", "authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri"]),
        one_of(&[
            Https,
            TrailingSlash,
            ClosedPort,
            Localhost,
            OtherPath,
            NotHttp,
            Relative,
            Empty,
            NonLoopbackHttp,
        ]),
    )
        .prop_map(|(member, to)| EndpointEdit::Set { member, to })
}

impl EndpointEdit {
    fn apply(&self, doc: &mut Value, base: &str) {
        let EndpointEdit::Set { member, to } = self;
        let current = doc.get(*member).and_then(Value::as_str).unwrap_or(base).to_owned();
        let value = match to {
            EndpointVariant::Https => current.replacen("http://", "https://", 1),
            EndpointVariant::TrailingSlash => format!("{current}/"),
            EndpointVariant::ClosedPort => "http://127.0.0.1:9/x".to_owned(),
            EndpointVariant::Localhost => current.replacen("127.0.0.1", "localhost", 1),
            EndpointVariant::OtherPath => format!("{base}/nowhere"),
            EndpointVariant::NotHttp => "javascript:alert(1)".to_owned(),
            EndpointVariant::Relative => "/token".to_owned(),
            EndpointVariant::Empty => String::new(),
            // Never reached: the server refuses plain http off loopback (and the address is
            // TEST-NET, so a bug would time out rather than leave the machine).
            EndpointVariant::NonLoopbackHttp => "http://192.0.2.1/x".to_owned(),
        };
        doc[*member] = Value::from(value);
    }
}

/// A whole discovery case: the discovery answer, the key set answer, and the ID token the login
/// then presents.
#[derive(Debug, Clone)]
struct DiscoveryCase {
    discovery_status: u16,
    discovery: DiscoveryBody,
    jwks_status: u16,
    jwks: JwksBody,
    token: TokenChoice,
}

#[derive(Debug, Clone)]
enum DiscoveryBody {
    Generic(Body),
    Endpoints(Vec<EndpointEdit>),
    /// `id_token_signing_alg_values_supported` replaced.
    Algorithms(Vec<&'static str>),
}

#[derive(Debug, Clone)]
enum JwksBody {
    Bytes(Vec<u8>),
    Json(Value),
    Edited(Vec<JwksEdit>),
}

/// The ID token presented after a successful discovery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TokenChoice {
    /// Signed by the published key `k1`: may log in, if the key set still has it.
    Genuine,
    /// Signed by the unpublished second key under `kid` "k1".
    UnpublishedKeyAsK1,
    /// `alg: none`.
    Unsigned,
    /// HS256 keyed with the client secret (only the provider may sign).
    HmacWithClientSecret,
}

fn discovery_case() -> impl Strategy<Value = DiscoveryCase> {
    let discovery = prop_oneof![
        2 => body().prop_map(DiscoveryBody::Generic),
        2 => Just(DiscoveryBody::Generic(Body::Edited(Vec::new()))),
        2 => prop::collection::vec(endpoint_edit(), 1..3).prop_map(DiscoveryBody::Endpoints),
        2 => prop::collection::vec(
            one_of(&["RS256", "HS256", "none", "ES256", "PS512", "EdDSA", "", "rs256", "A128KW"]),
            0..4,
        )
            .prop_map(DiscoveryBody::Algorithms),
    ];
    let jwks = prop_oneof![
        1 => prop::collection::vec(any::<u8>(), 0..120).prop_map(JwksBody::Bytes),
        1 => json_value().prop_map(JwksBody::Json),
        4 => prop::collection::vec(jwks_edit(), 0..3).prop_map(JwksBody::Edited),
    ];
    let token = one_of(&[
        TokenChoice::Genuine,
        TokenChoice::Genuine,
        TokenChoice::UnpublishedKeyAsK1,
        TokenChoice::Unsigned,
        TokenChoice::HmacWithClientSecret,
    ]);
    (
        prop_oneof![8 => Just(200u16), 1 => 100u16..600],
        discovery,
        prop_oneof![8 => Just(200u16), 1 => 100u16..600],
        jwks,
        token,
    )
        .prop_map(|(discovery_status, discovery, jwks_status, jwks, token)| DiscoveryCase {
            discovery_status,
            discovery,
            jwks_status,
            jwks,
            token,
        })
}

/// Discovery must fail when the document is not a 2xx JSON object naming our issuer with usable
/// endpoints (OpenID Connect Discovery §3, §4.3); otherwise it may still fail on the key set. (A
/// 204 or 205 should have no content, but a 205 that has some is still the issuer's document: it
/// may or may not be read.)
fn discovery_must_fail(status: u16, body: &[u8], issuer: &str) -> bool {
    let Ok(doc) = serde_json::from_slice::<Value>(body) else { return true };
    let usable = |member: &str, required: bool| match doc.get(member).and_then(Value::as_str) {
        None => !required,
        Some(text) => {
            Url::parse(text).is_ok_and(|u| u.scheme() == "https" || loginwith::config::is_loopback_url(&u))
        }
    };
    !(200..300).contains(&status)
        || doc.get("issuer").and_then(Value::as_str) != Some(issuer)
        || !usable("authorization_endpoint", true)
        || !usable("token_endpoint", true)
        || !usable("jwks_uri", true)
        || !usable("userinfo_endpoint", false)
}

#[test]
fn discovery_and_key_sets_never_panic_and_forged_tokens_never_log_in() {
    let rt = runtime("discovery");
    let _context = rt.enter();
    let (fake, db, valid_doc) = rt.block_on(async {
        let fake = FakeOidc::start().await;
        let doc: Value = reqwest::get(format!("{}/.well-known/openid-configuration", fake.base))
            .await
            .expect("discovery")
            .json()
            .await
            .expect("discovery JSON");
        (fake, Arc::new(TestDb::new(Db::Sqlite).await), doc)
    });
    let valid_jwks = jwks_of(&[&key1()]);
    // Short limits: an endpoint edited to somewhere unreachable fails fast.
    let toml = format!("{}[http]\nconnect_timeout_ms = 1000\ntimeout_ms = 3000\n", fake.toml());
    let tally = Tally::default();
    check_property("discovery", 64, discovery_case(), |case| {
        rt.block_on(async {
            let discovery_body = match &case.discovery {
                DiscoveryBody::Generic(body) => body.render(&valid_doc),
                DiscoveryBody::Endpoints(edits) => {
                    let mut doc = valid_doc.clone();
                    edits.iter().for_each(|e| e.apply(&mut doc, &fake.base));
                    doc.to_string().into_bytes()
                }
                DiscoveryBody::Algorithms(algs) => {
                    let mut doc = valid_doc.clone();
                    doc["id_token_signing_alg_values_supported"] = json!(algs);
                    doc.to_string().into_bytes()
                }
            };
            let jwks_body = match &case.jwks {
                JwksBody::Bytes(b) => b.clone(),
                JwksBody::Json(v) => v.to_string().into_bytes(),
                JwksBody::Edited(edits) => {
                    let mut jwks = valid_jwks.clone();
                    edits.iter().for_each(|e| e.apply(&mut jwks));
                    jwks.to_string().into_bytes()
                }
            };
            let must_fail = discovery_must_fail(case.discovery_status, &discovery_body, &fake.base);
            fake.set_raw_discovery(Some(json_answer(case.discovery_status, discovery_body)));
            fake.set_raw_jwks(Some(json_answer(case.jwks_status, jwks_body)));

            // Discovery happens once per server: a new one (on the same database) per case.
            let app = TestApp::builder(Db::Sqlite).on(db.clone()).toml(&toml).spawn().await;
            let browser = app.another_browser();
            let authorize = observe(browser.client.get(browser.url("/authorize/oidc"))).await?;
            assert_no_raw_markup(&authorize.page, "the authorize answer")?;
            match authorize.status {
                StatusCode::SERVICE_UNAVAILABLE => {
                    tally.note(("discovery failed", must_fail));
                    prop_assert!(
                        authorize.page.contains("unavailable"),
                        "a 503 page says why:\n{}",
                        authorize.page
                    );
                    return Ok(());
                }
                StatusCode::FOUND => {
                    prop_assert!(!must_fail, "discovery of a document it must refuse succeeded")
                }
                other => {
                    return Err(TestCaseError::fail(format!(
                        "authorize answered {other}, not a redirect or 503:\n{}",
                        clip(&authorize.page)
                    )))
                }
            }
            let location = authorize.location.clone().unwrap_or_default();
            let to = Url::parse(&location)
                .map_err(|e| TestCaseError::fail(format!("Location {location:?}: {e}")))?;
            prop_assert!(
                to.scheme() == "https" || loginwith::config::is_loopback_url(&to),
                "redirected to {}",
                to
            );

            let attempt = Attempt::from_url(&location);
            let id_token = match case.token {
                TokenChoice::Genuine => fake.sign(fake.claims(&attempt.nonce), &key1()),
                TokenChoice::UnpublishedKeyAsK1 => {
                    fake.sign(fake.claims(&attempt.nonce), &rsa_key(RSA2_PEM, "k1"))
                }
                TokenChoice::Unsigned => unsigned_jwt(&fake.json_claims(&attempt.nonce)),
                TokenChoice::HmacWithClientSecret => {
                    fake.sign_hmac(fake.claims(&attempt.nonce), CLIENT_SECRET)
                }
            };
            fake.set_id_token(id_token);
            let users = app.user_count().await;
            let url = format!(
                "{}/callback/oidc?code=x&state={}&iss={}",
                app.address,
                enc(&attempt.state),
                enc(&fake.base)
            );
            let answer = observe(browser.client.get(url)).await?;
            let expected =
                if case.token == TokenChoice::Genuine { Expected::Either } else { Expected::Refuse };
            check_answer(&browser, &answer, expected, &Who::Email("user@example.com".into()), &tally).await?;
            if answer.is_error() {
                prop_assert_eq!(app.user_count().await, users, "a refused login must not write a user");
            }
            Ok(())
        })
    });
    tally.print("discovery");
}

// =============================================================================================
// 6. ID tokens
// =============================================================================================

/// The claims an ID token must get right, each with values that are wrong for it.
#[derive(Debug, Clone, Copy)]
enum Claim {
    Iss,
    Aud,
    Exp,
    Iat,
    Nonce,
    Sub,
    AtHash,
    Azp,
}

/// Values of `claim` that no reading of OpenID Connect Core §2 and §3.1.3.7 accepts.
fn wrong_values(claim: Claim, fake: &FakeOidc, nonce: &str) -> Vec<Value> {
    let now = now_secs();
    match claim {
        Claim::Iss => vec![
            json!(42),
            json!(null),
            json!(true),
            json!(""),
            json!([fake.base]),
            json!({"iss": fake.base}),
            json!(format!("{}/", fake.base)),
            json!("http://127.0.0.1:9/other"),
        ],
        Claim::Aud => vec![
            json!(42),
            json!(null),
            json!(true),
            json!(""),
            json!([]),
            json!(["other"]),
            json!([42]),
            json!({"aud": CLIENT_ID}),
            json!("other"),
            json!([CLIENT_ID, "other"]),
        ],
        Claim::Exp => vec![
            json!("soon"),
            json!(null),
            json!(true),
            json!([]),
            json!({}),
            json!(-1),
            json!(0),
            json!(now - 600),
            json!((now + 300).to_string()),
        ],
        Claim::Iat => vec![json!("x"), json!(null), json!([]), json!({}), json!(now + 3600)],
        Claim::Nonce => vec![
            json!("wrong"),
            json!(42),
            json!(null),
            json!(""),
            json!([nonce]),
            json!({"nonce": nonce}),
            json!(format!("{nonce} ")),
        ],
        Claim::Sub => vec![
            json!(42),
            json!(null),
            json!(""),
            json!([]),
            json!({}),
            json!("x".repeat(300)),
            json!("a\u{0}b"),
        ],
        Claim::AtHash => vec![json!("AAAAAAAAAAAAAAAAAAAAAA"), json!(42), json!(null)],
        Claim::Azp => vec![json!("other"), json!(42)],
    }
}

fn claim_name(claim: Claim) -> &'static str {
    match claim {
        Claim::Iss => "iss",
        Claim::Aud => "aud",
        Claim::Exp => "exp",
        Claim::Iat => "iat",
        Claim::Nonce => "nonce",
        Claim::Sub => "sub",
        Claim::AtHash => "at_hash",
        Claim::Azp => "azp",
    }
}

/// Claim values at the edge of what the libraries parse: far-future and far-past times as
/// integers and floats, odd types in claims that are not checked. The token may be accepted or
/// refused, but never crash the server.
fn edge_claim() -> impl Strategy<Value = (String, Value)> {
    let times = prop_oneof![
        one_of(&[1e300, -1e300, 9.3e18, 1.8e19, 1.5e10, 4102444800.5, 0.5]).prop_map(Value::from),
        one_of(&[i64::MAX, i64::MIN, 0, -62135596801, 253402300800, 8210266876800]).prop_map(Value::from),
        Just(Value::from(u64::MAX)),
    ];
    prop_oneof![
        (one_of(&["exp", "iat"]).prop_map(str::to_owned), times),
        (
            one_of(&["auth_time", "email_verified", "email", "name", "picture"]).prop_map(str::to_owned),
            json_value()
        ),
        (json_key(), json_value()),
    ]
}

/// How the ID token is made.
#[derive(Debug, Clone)]
enum IdTokenRecipe {
    RandomString(String),
    /// Segments of random bytes, base64url-encoded, joined by dots.
    RandomSegments(Vec<Vec<u8>>),
    /// A JWS-shaped token with random JSON header and payload and random signature bytes.
    RandomJws {
        header: Value,
        payload: Value,
        signature: Vec<u8>,
    },
    /// A character of the genuine token replaced.
    ReplaceChar {
        at: usize,
        with: char,
    },
    /// The genuine token with `alg` changed in its header.
    SetAlg {
        alg: &'static str,
        signature: SignatureChoice,
    },
    DropSegment {
        segment: usize,
    },
    HugeSegment {
        segment: usize,
        len: usize,
    },
    ExtraSegments(u8),
    /// Genuinely signed, with one claim removed.
    WithoutClaim(Claim),
    /// Genuinely signed, with one claim wrong (`pick` modulo the claim's wrong values).
    WrongClaim {
        claim: Claim,
        pick: usize,
    },
    /// Genuinely signed, with a claim at the edge of what parses (may log in).
    EdgeClaim {
        name: String,
        value: Value,
    },
    Unsigned,
    HmacWithClientSecret,
    UnpublishedKey,
}

#[derive(Debug, Clone, Copy)]
enum SignatureChoice {
    Keep,
    Empty,
    Junk,
}

fn claim() -> impl Strategy<Value = Claim> {
    use Claim::*;
    one_of(&[Iss, Aud, Exp, Iat, Nonce, Sub, AtHash, Azp])
}

fn id_token_recipe() -> impl Strategy<Value = IdTokenRecipe> {
    use IdTokenRecipe::*;
    let b64_char = char_of("[A-Za-z0-9_-]");
    prop_oneof![
        1 => junk_text().prop_map(RandomString),
        1 => prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 1..6).prop_map(RandomSegments),
        1 => (json_value(), json_value(), prop::collection::vec(any::<u8>(), 0..300))
            .prop_map(|(header, payload, signature)| RandomJws { header, payload, signature }),
        4 => (any::<usize>(), prop_oneof![4 => b64_char, 1 => any::<char>().boxed()])
            .prop_map(|(at, with)| ReplaceChar { at, with }),
        2 => (
            one_of(&[
                "none", "None", "NONE", "HS256", "HS512", "RS512", "PS256", "ES256", "EdDSA", "", "RS256 ",
                "rs256", "unknown",
            ]),
            one_of(&[SignatureChoice::Keep, SignatureChoice::Empty, SignatureChoice::Junk]),
        )
            .prop_map(|(alg, signature)| SetAlg { alg, signature }),
        1 => (0usize..3).prop_map(|segment| DropSegment { segment }),
        1 => (0usize..3, 1usize..300_000).prop_map(|(segment, len)| HugeSegment { segment, len }),
        1 => (1u8..4).prop_map(ExtraSegments),
        2 => claim().prop_map(WithoutClaim),
        4 => (claim(), any::<usize>()).prop_map(|(claim, pick)| WrongClaim { claim, pick }),
        2 => edge_claim().prop_map(|(name, value)| EdgeClaim { name, value }),
        1 => Just(Unsigned),
        1 => Just(HmacWithClientSecret),
        1 => Just(UnpublishedKey),
    ]
}

/// Decodes each segment leniently (padding and trailing bits ignored), to tell a real change
/// from a different spelling of the same bytes.
fn segments_leniently(jwt: &str) -> Vec<Option<Vec<u8>>> {
    use base64::engine::{general_purpose::GeneralPurpose, DecodePaddingMode, GeneralPurposeConfig};
    let lenient = GeneralPurpose::new(
        &base64::alphabet::URL_SAFE,
        GeneralPurposeConfig::new()
            .with_decode_allow_trailing_bits(true)
            .with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    jwt.split('.').map(|s| lenient.decode(s).ok()).collect()
}

impl IdTokenRecipe {
    /// The token, and whether the server must refuse it (`false`: it may also log in).
    fn make(&self, fake: &FakeOidc, nonce: &str, genuine: &str) -> (String, bool) {
        let parts: Vec<&str> = genuine.split('.').collect();
        let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
        let signed = |claims: &Value| sign_json_rs256(RSA1_PEM, "k1", claims);
        match self {
            IdTokenRecipe::RandomString(s) => (s.clone(), true),
            IdTokenRecipe::RandomSegments(segments) => {
                (segments.iter().map(|s| b64(s)).collect::<Vec<_>>().join("."), true)
            }
            IdTokenRecipe::RandomJws { header, payload, signature } => (
                format!(
                    "{}.{}.{}",
                    b64(header.to_string().as_bytes()),
                    b64(payload.to_string().as_bytes()),
                    b64(signature)
                ),
                true,
            ),
            IdTokenRecipe::ReplaceChar { at, with } => {
                let i = at % genuine.chars().count();
                let token: String =
                    genuine.chars().enumerate().map(|(j, c)| if i == j { *with } else { c }).collect();
                // A different spelling of the same bytes (unused trailing bits) is not a change.
                let same_bytes = segments_leniently(&token) == segments_leniently(genuine);
                (token, !same_bytes)
            }
            IdTokenRecipe::SetAlg { alg, signature } => {
                let mut header: Value =
                    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap_or_default())
                        .unwrap_or_default();
                header["alg"] = json!(alg);
                let signature = match signature {
                    SignatureChoice::Keep => parts[2].to_owned(),
                    SignatureChoice::Empty => String::new(),
                    SignatureChoice::Junk => b64(b"not a signature"),
                };
                (format!("{}.{}.{signature}", b64(header.to_string().as_bytes()), parts[1]), true)
            }
            IdTokenRecipe::DropSegment { segment } => {
                let kept: Vec<&str> =
                    parts.iter().enumerate().filter(|(i, _)| i != segment).map(|(_, p)| *p).collect();
                (kept.join("."), true)
            }
            IdTokenRecipe::HugeSegment { segment, len } => {
                let mut parts: Vec<String> = parts.iter().map(|p| (*p).to_owned()).collect();
                parts[*segment].push_str(&"A".repeat(*len));
                (parts.join("."), true)
            }
            IdTokenRecipe::ExtraSegments(n) => {
                (format!("{genuine}{}", ".AAAA".repeat(usize::from(*n))), true)
            }
            IdTokenRecipe::WithoutClaim(claim) => {
                let mut claims = fake.json_claims(nonce);
                claims.as_object_mut().map(|c| c.remove(claim_name(*claim)));
                // Without at_hash or azp a token is still good (both are optional).
                (signed(&claims), !matches!(claim, Claim::AtHash | Claim::Azp))
            }
            IdTokenRecipe::WrongClaim { claim, pick } => {
                let values = wrong_values(*claim, fake, nonce);
                let mut claims = fake.json_claims(nonce);
                claims[claim_name(*claim)] = values[pick % values.len()].clone();
                // `null` for an optional claim is the claim's absence.
                let optional_null = matches!(claim, Claim::AtHash) && claims["at_hash"].is_null();
                (signed(&claims), !optional_null)
            }
            IdTokenRecipe::EdgeClaim { name, value } => {
                let mut claims = fake.json_claims(nonce);
                claims[name.as_str()] = value.clone();
                (signed(&claims), false)
            }
            IdTokenRecipe::Unsigned => (unsigned_jwt(&fake.json_claims(nonce)), true),
            IdTokenRecipe::HmacWithClientSecret => (fake.sign_hmac(fake.claims(nonce), CLIENT_SECRET), true),
            IdTokenRecipe::UnpublishedKey => (fake.sign(fake.claims(nonce), &rsa_key(RSA2_PEM, "k1")), true),
        }
    }
}

#[test]
fn id_tokens_are_refused_unless_genuine_and_never_panic() {
    let rt = runtime("id_tokens");
    let _context = rt.enter();
    let (fake, app) = rt.block_on(async {
        let fake = FakeOidc::start().await;
        let app = TestApp::builder(Db::Sqlite).toml(&fake.toml()).spawn().await;
        (fake, app)
    });
    let tally = Tally::default();
    check_property("id_tokens", 96, id_token_recipe(), |recipe| {
        rt.block_on(async {
            let browser = app.another_browser();
            let authorize = observe(browser.client.get(browser.url("/authorize/oidc"))).await?;
            prop_assert_eq!(authorize.status, StatusCode::FOUND, "{}", authorize.page);
            let attempt = Attempt::from_url(authorize.location.as_deref().unwrap_or_default());
            let genuine = fake.sign(fake.claims(&attempt.nonce), &key1());
            let (token, must_refuse) = recipe.make(&fake, &attempt.nonce, &genuine);
            prop_assume!(token != genuine, "the edit left the token as it was");
            fake.set_id_token(token.clone());
            let users = app.user_count().await;
            let url = format!(
                "{}/callback/oidc?code=x&state={}&iss={}",
                app.address,
                enc(&attempt.state),
                enc(&fake.base)
            );
            let answer = observe(browser.client.get(url)).await?;
            let expected = if must_refuse { Expected::Refuse } else { Expected::Either };
            check_answer(&browser, &answer, expected, &Who::Email("user@example.com".into()), &tally).await?;
            if answer.is_error() {
                prop_assert!(
                    matches!(answer.status, StatusCode::FORBIDDEN | StatusCode::BAD_GATEWAY),
                    "a bad ID token is a 403 (or a 502), not {}; token {:?}:\n{}",
                    answer.status,
                    clip(&token),
                    clip(&answer.page)
                );
                prop_assert_eq!(app.user_count().await, users, "a refused login must not write a user");
            }
            Ok(())
        })
    });
    tally.print("id_tokens");
}
