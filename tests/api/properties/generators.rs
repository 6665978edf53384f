//! Generators shared by the properties: hostile text, JSON, edits of valid documents, provider answers.

use super::harness::MARKUP;
use crate::mock_provider::Scripted;
use proptest::prelude::*;
use proptest::sample::{select, Select};
use serde_json::{json, Map, Value};
use std::fmt::Debug;

/// One of a fixed list of values.
pub(super) fn one_of<T: Clone + Debug + 'static>(values: &'static [T]) -> Select<T> {
    select(values)
}

/// One character of a regex character class, e.g. `"[A-Za-z0-9_-]"`.
pub(super) fn char_of(class: &'static str) -> BoxedStrategy<char> {
    class.prop_map(|s| s.chars().next().unwrap_or('A')).boxed()
}

/// Percent-escapes that decode to nothing sensible: invalid UTF-8, truncated, NUL, not hex.
pub(super) const BAD_ESCAPES: [&str; 10] =
    ["%", "%F", "%FF", "%FF%FE", "%C3%28", "%E2%82", "%00", "%zz", "%%", "%ED%A0%80"];

/// Text a hostile party might send: arbitrary Unicode, printable ASCII, control characters,
/// markup, bad escapes, and long runs.
pub(super) fn junk_text() -> BoxedStrategy<String> {
    prop_oneof![
        4 => any::<String>(),
        4 => "[ -~]{0,24}",
        1 => "[\\x00-\\x1f\\x7f]{1,6}",
        2 => one_of(&MARKUP).prop_map(str::to_owned),
        1 => one_of(&BAD_ESCAPES).prop_map(str::to_owned),
        1 => (1usize..=12_000).prop_map(|n| "A".repeat(n)),
    ]
    .boxed()
}

/// Strings that are almost e-mail addresses, or are, with spaces, Unicode and control characters.
pub(super) fn email_like() -> impl Strategy<Value = String> {
    prop_oneof![
        select(&[
            " someone@example.com ",
            "some one@example.com",
            "Someone@Example.COM",
            "ünïcødé@exämple.com",
            "someone@",
            "@example.com",
            "someone",
            "someone@@example.com",
            "someone@example.com\u{0}",
            "some\none@example.com",
            "someone@example.com\u{202e}moc.live",
            "\"quoted\"@example.com",
            "a@b",
            "",
        ])
        .prop_map(str::to_owned),
        (1usize..300).prop_map(|n| format!("{}@example.com", "x".repeat(n))),
        ("[a-z]{1,8}", "\\PC{1,6}").prop_map(|(l, d)| format!("{l}@{d}")),
    ]
}

/// Key names of every JSON document the server reads, and junk.
pub(super) fn json_key() -> BoxedStrategy<String> {
    prop_oneof![
        3 => select(
            &[
                "access_token", "token_type", "id_token", "error", "expires_in", "sub", "id", "email",
                "email_verified", "name", "issuer", "authorization_endpoint", "token_endpoint",
                "userinfo_endpoint", "jwks_uri", "keys", "kty", "kid", "alg", "use", "n", "e",
            ]
        )
        .prop_map(str::to_owned),
        1 => junk_text(),
    ]
    .boxed()
}

/// Any JSON value, a few levels deep, with hostile leaves.
pub(super) fn json_value() -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        one_of(&[0.5, -0.0, 1e300, -1e300, 9.223372036854776e18, 1.7976931348623157e308])
            .prop_map(Value::from),
        junk_text().prop_map(Value::from),
        email_like().prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((json_key(), inner), 0..5)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
        ]
    })
    .boxed()
}

/// One edit of a JSON object (members chosen by index, modulo the number of members).
#[derive(Debug, Clone)]
pub(super) enum JsonEdit {
    Remove {
        member: usize,
    },
    Replace {
        member: usize,
        value: Value,
    },
    Insert {
        name: String,
        value: Value,
    },
    /// A string member made huge.
    Huge {
        member: usize,
        len: usize,
    },
    /// Characters appended to a string member (control characters, markup, Unicode).
    Append {
        member: usize,
        text: String,
    },
    Uppercase {
        member: usize,
    },
    /// A member's value wrapped in an array or an object.
    Wrap {
        member: usize,
        in_array: bool,
    },
    /// The whole document wrapped in an array.
    WholeInArray,
}

pub(super) fn json_edit() -> impl Strategy<Value = JsonEdit> {
    let member = any::<usize>();
    prop_oneof![
        2 => member.prop_map(|member| JsonEdit::Remove { member }),
        3 => (member, json_value()).prop_map(|(member, value)| JsonEdit::Replace { member, value }),
        2 => (json_key(), json_value()).prop_map(|(name, value)| JsonEdit::Insert { name, value }),
        1 => (member, 1usize..100_000).prop_map(|(member, len)| JsonEdit::Huge { member, len }),
        2 => (member, junk_text()).prop_map(|(member, text)| JsonEdit::Append { member, text }),
        1 => member.prop_map(|member| JsonEdit::Uppercase { member }),
        1 => (member, any::<bool>()).prop_map(|(member, in_array)| JsonEdit::Wrap { member, in_array }),
        1 => Just(JsonEdit::WholeInArray),
    ]
}

impl JsonEdit {
    pub(super) fn apply(&self, doc: &mut Value) {
        if let JsonEdit::WholeInArray = self {
            *doc = json!([doc.take()]);
            return;
        }
        let Some(object) = doc.as_object_mut() else { return };
        let pick =
            |object: &Map<String, Value>, i: usize| object.keys().nth(i % object.len().max(1)).cloned();
        match self {
            JsonEdit::Insert { name, value } => {
                object.insert(name.clone(), value.clone());
            }
            JsonEdit::Remove { member } => {
                if let Some(k) = pick(object, *member) {
                    object.remove(&k);
                }
            }
            JsonEdit::Replace { member, value } => {
                if let Some(k) = pick(object, *member) {
                    object.insert(k, value.clone());
                }
            }
            JsonEdit::Huge { member, len } => {
                if let Some(k) = pick(object, *member) {
                    let s = object[&k].as_str().unwrap_or("x").to_owned();
                    object.insert(k, Value::from(s.repeat(len / s.len().max(1) + 1)));
                }
            }
            JsonEdit::Append { member, text } => {
                if let Some(k) = pick(object, *member) {
                    let s = object[&k].as_str().map(str::to_owned).unwrap_or_default();
                    object.insert(k, Value::from(s + text));
                }
            }
            JsonEdit::Uppercase { member } => {
                if let Some(k) = pick(object, *member) {
                    if let Some(s) = object[&k].as_str() {
                        let upper = s.to_uppercase();
                        object.insert(k, Value::from(upper));
                    }
                }
            }
            JsonEdit::Wrap { member, in_array } => {
                if let Some(k) = pick(object, *member) {
                    let v = object[&k].take();
                    object.insert(k, if *in_array { json!([v]) } else { json!({ "value": v }) });
                }
            }
            JsonEdit::WholeInArray => {}
        }
    }
}

/// One edit of raw bytes (positions modulo the length).
#[derive(Debug, Clone)]
pub(super) enum ByteEdit {
    Flip { at: usize, mask: u8 },
    Truncate { at: usize },
    Insert { at: usize, bytes: Vec<u8> },
    Delete { at: usize, len: usize },
}

pub(super) fn byte_edit() -> impl Strategy<Value = ByteEdit> {
    prop_oneof![
        3 => (any::<usize>(), 1u8..=255).prop_map(|(at, mask)| ByteEdit::Flip { at, mask }),
        1 => any::<usize>().prop_map(|at| ByteEdit::Truncate { at }),
        2 => (any::<usize>(), prop::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(at, bytes)| ByteEdit::Insert { at, bytes }),
        1 => (any::<usize>(), 1usize..16).prop_map(|(at, len)| ByteEdit::Delete { at, len }),
    ]
}

impl ByteEdit {
    pub(super) fn apply(&self, bytes: &mut Vec<u8>) {
        let at = |i: usize, n: usize| if n == 0 { 0 } else { i % n };
        match self {
            ByteEdit::Flip { at: i, mask } => {
                if !bytes.is_empty() {
                    let i = at(*i, bytes.len());
                    bytes[i] ^= mask;
                }
            }
            ByteEdit::Truncate { at: i } => bytes.truncate(at(*i, bytes.len())),
            ByteEdit::Insert { at: i, bytes: new } => {
                let i = at(*i, bytes.len() + 1);
                bytes.splice(i..i, new.iter().copied());
            }
            ByteEdit::Delete { at: i, len } => {
                let i = at(*i, bytes.len());
                let end = (i + len).min(bytes.len());
                bytes.drain(i..end);
            }
        }
    }
}

/// A body a fake provider answers with, built around a valid document.
#[derive(Debug, Clone)]
pub(super) enum Body {
    /// Arbitrary bytes.
    Bytes(Vec<u8>),
    /// Random JSON, unrelated to the valid document.
    Json(Value),
    /// The valid document with JSON edits (none: the valid document itself).
    Edited(Vec<JsonEdit>),
    /// The valid document's text with byte edits.
    Corrupted(Vec<ByteEdit>),
}

pub(super) fn body() -> impl Strategy<Value = Body> {
    prop_oneof![
        2 => prop::collection::vec(any::<u8>(), 0..200).prop_map(Body::Bytes),
        2 => json_value().prop_map(Body::Json),
        5 => prop::collection::vec(json_edit(), 0..4).prop_map(Body::Edited),
        2 => prop::collection::vec(byte_edit(), 1..4).prop_map(Body::Corrupted),
    ]
}

impl Body {
    pub(super) fn render(&self, valid: &Value) -> Vec<u8> {
        match self {
            Body::Bytes(b) => b.clone(),
            Body::Json(v) => v.to_string().into_bytes(),
            Body::Edited(edits) => {
                let mut doc = valid.clone();
                edits.iter().for_each(|e| e.apply(&mut doc));
                doc.to_string().into_bytes()
            }
            Body::Corrupted(edits) => {
                let mut bytes = valid.to_string().into_bytes();
                edits.iter().for_each(|e| e.apply(&mut bytes));
                bytes
            }
        }
    }
}

/// HTTP statuses a provider answers with: mostly 200, else anything from 100 to 599.
pub(super) fn status() -> impl Strategy<Value = u16> {
    prop_oneof![4 => Just(200u16), 1 => one_of(&[201u16, 204, 400, 401, 500]), 2 => 100u16..600]
}

/// Content types, including wrong and junk ones (always a valid header value).
pub(super) fn content_type() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => Just("application/json".to_owned()),
        2 => select(
            &[
                "application/json; charset=utf-8",
                "text/html",
                "text/plain",
                "application/x-www-form-urlencoded",
                "application/jwt",
                "multipart/form-data; boundary=x",
                "",
                "*/*",
            ]
        )
        .prop_map(str::to_owned),
        1 => "[ -~]{0,30}",
    ]
}

/// A provider's answer: status, content type, body.
#[derive(Debug, Clone)]
pub(super) struct ProviderAnswer {
    pub(super) status: u16,
    pub(super) content_type: String,
    pub(super) body: Body,
}

pub(super) fn provider_answer() -> impl Strategy<Value = ProviderAnswer> {
    (status(), content_type(), body()).prop_map(|(status, content_type, body)| ProviderAnswer {
        status,
        content_type,
        body,
    })
}

impl ProviderAnswer {
    pub(super) fn scripted(&self, valid: &Value) -> Scripted {
        Scripted {
            status: self.status,
            content_type: self.content_type.clone(),
            body: self.body.render(valid),
            delay: None,
            gate: None,
            framing: crate::mock_provider::Framing::Length,
        }
    }
}

/// Statuses whose body an HTTP client may never see (RFC 9110 §15.3.5, §15.3.6).
pub(super) fn bodiless(status: u16) -> bool {
    matches!(status, 204 | 205)
}

/// `form_urlencoded` text of a value.
pub(super) fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// `body` as `application/json` with `status`.
pub(super) fn json_answer(status: u16, body: Vec<u8>) -> Scripted {
    Scripted {
        status,
        content_type: "application/json".into(),
        body,
        delay: None,
        gate: None,
        framing: crate::mock_provider::Framing::Length,
    }
}
