//! Where to send a browser back to after a login or a logout: a path on the host's own origin.
//!
//! A `next` parameter is the classic open redirect: `/login?next=//evil.example` sends a user who
//! just logged in to someone else's page, which then asks for their password "again". Browsers
//! are generous in what they take for another host: `//evil`, `/\evil`, `\/evil`, `/<TAB>/evil`
//! (tabs and newlines are dropped from URLs before parsing), `https:evil`, and every one of them
//! percent-encoded for whatever decodes it once more downstream. So the rule is a short allowlist,
//! checked on the text as given *and* after each round of percent-decoding: it starts with exactly
//! one `/`, and contains no backslash and no control character (and, as given, no white space);
//! it is valid UTF-8 when decoded; it is at most 2,048 bytes; and resolved against an origin it
//! stays on that origin.

use serde::{Deserialize, Serialize};
use std::fmt;
use url::Url;

/// A same-origin path (with its query and fragment) to send a browser to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ReturnTo(String);

/// The longest `next` we keep (it travels in the session and a `Location` header).
const MAX_LEN: usize = 2048;

impl ReturnTo {
    /// Accepts a same-origin relative path, or says no (the caller falls back to its default).
    ///
    /// ```
    /// use loginwith::ReturnTo;
    ///
    /// assert_eq!(ReturnTo::parse("/private?tab=2").unwrap().as_str(), "/private?tab=2");
    /// for trick in ["https://evil.example", "//evil.example", "/\\evil.example", "/%2F/evil.example"] {
    ///     assert!(ReturnTo::parse(trick).is_none(), "{trick}");
    /// }
    /// ```
    pub fn parse(raw: &str) -> Option<Self> {
        if raw.len() > MAX_LEN || !is_safe_path(raw) || raw.chars().any(char::is_whitespace) {
            return None;
        }
        // Whatever decodes the value once more (a proxy, a framework, the host's router) must
        // not find another host in it either.
        let mut text = raw.to_owned();
        for _ in 0..3 {
            let decoded = percent_decode(&text)?;
            if decoded == text {
                break;
            }
            if !is_safe_path(&decoded) {
                return None;
            }
            text = decoded;
        }
        // And the URL parser must agree that it stays on the origin.
        let base = Url::parse("https://origin.invalid/").ok()?;
        let resolved = base.join(raw).ok()?;
        (resolved.origin() == base.origin()).then(|| Self(raw.to_owned()))
    }

    /// `/`: the site's root.
    pub fn root() -> Self {
        Self("/".to_owned())
    }

    /// The path as text, for a `Location` header.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One `/` first, then nothing a browser could read as the start of another host: no second `/`
/// right after it, no backslash (read as `/`), no control character (tabs and newlines are dropped
/// before parsing, so `/\t/evil` is `//evil`). Raw white space is refused too, but an encoded
/// space (`%20`) in a query is fine.
fn is_safe_path(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.first() == Some(&b'/')
        && bytes.get(1) != Some(&b'/')
        && !text.chars().any(|c| c == '\\' || c.is_control())
}

/// `%XX` decoded; `None` when the result is not UTF-8 (nothing good hides there).
fn percent_decode(text: &str) -> Option<String> {
    String::from_utf8(percent_decoded_bytes(text.as_bytes())).ok()
}

fn percent_decoded_bytes(input: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match (input[i], input.get(i + 1).copied().and_then(hex), input.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(hi), Some(lo)) => {
                out.push(hi << 4 | lo);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

impl TryFrom<String> for ReturnTo {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value).ok_or_else(|| "not a same-origin path".to_owned())
    }
}

impl From<ReturnTo> for String {
    fn from(value: ReturnTo) -> Self {
        value.0
    }
}

impl fmt::Display for ReturnTo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_origin_paths_are_kept() {
        for good in ["/", "/private", "/a/b?x=1&y=%20z#frag", "/caf%C3%A9", "/a/../b", "/%7Euser"] {
            assert_eq!(ReturnTo::parse(good).map(|r| r.0), Some(good.to_owned()), "{good}");
        }
    }

    #[test]
    fn every_way_to_another_host_is_refused() {
        for bad in [
            "",
            "private",
            "https://evil.example/",
            "http:evil.example",
            "//evil.example",
            "///evil.example",
            "/\\evil.example",
            "\\/evil.example",
            "/\\/evil.example",
            "/a\\b",
            "/\t/evil.example",
            "/\n/evil.example",
            "/ /evil.example",
            "/%2Fevil.example",
            "/%2fevil.example",
            "/%5Cevil.example",
            "/%09/evil.example",
            "/%0d%0aLocation:%20https://evil.example",
            "/%252Fevil.example",
            "/%25252F%25252Fevil.example",
            "/%FF",
            "javascript:alert(1)",
            "/\u{0}",
            "/\u{2028}x",
        ] {
            assert_eq!(ReturnTo::parse(bad), None, "{bad:?}");
        }
        assert_eq!(ReturnTo::parse(&format!("/{}", "a".repeat(MAX_LEN))), None);
    }
}
