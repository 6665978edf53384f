//! Text that came from outside (a provider's answer, a callback parameter, a path segment), made
//! safe to show, log and store.
//!
//! Every provider reads its profile with these, and so do the error paths that quote a provider or
//! a client: they live here, not in one provider's file, because none of them is about a provider.
//! They never decide whether a value is *true* (that is the provider's word, weighed elsewhere);
//! they only cut it to a size and shape that cannot hurt a page, a log line or a column.

use serde_json::Value;
use url::Url;

/// Keeps at most `max` characters, dropping control characters (a provider's newline must not
/// forge a log line).
pub fn clip(s: &str, max: usize) -> String {
    s.chars().filter(|c| !c.is_control()).take(max).collect()
}

/// Keeps an avatar only when it is an https URL of reasonable length (it ends up in an `<img src>`).
pub fn https_url(s: &str) -> Option<String> {
    Url::parse(s).ok().filter(|u| u.scheme() == "https" && s.len() <= 2048).map(String::from)
}

/// A string or integer at the JSON Pointer (RFC 6901), as text (GitHub's ids are numbers). An
/// empty string counts as absent.
pub fn text_at(json: &Value, pointer: &str) -> Option<String> {
    match json.pointer(pointer)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) if n.is_u64() || n.is_i64() => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn clip_counts_characters_and_drops_control_characters() {
        assert_eq!(clip("héllo wörld", 5), "héllo");
        assert_eq!(clip("a\nb\r\u{7}c", 10), "abc");
        assert_eq!(clip("", 3), "");
    }

    #[test]
    fn https_url_keeps_only_https_of_reasonable_length() {
        assert_eq!(https_url("https://x.example/a.png").as_deref(), Some("https://x.example/a.png"));
        for bad in ["http://x.example/a.png", "javascript:alert(1)", "data:image/png;base64,AA", "/a.png"] {
            assert_eq!(https_url(bad), None, "{bad}");
        }
        let long = format!("https://x.example/{}", "a".repeat(2048));
        assert_eq!(https_url(&long), None);
    }

    #[test]
    fn text_at_reads_strings_and_integers_only() {
        let json =
            json!({"id": 42, "neg": -1, "name": "A", "empty": "", "f": 1.5, "b": true, "o": {"x": "y"}});
        assert_eq!(text_at(&json, "/id").as_deref(), Some("42"));
        assert_eq!(text_at(&json, "/neg").as_deref(), Some("-1"));
        assert_eq!(text_at(&json, "/name").as_deref(), Some("A"));
        assert_eq!(text_at(&json, "/o/x").as_deref(), Some("y"));
        for absent in ["/empty", "/f", "/b", "/o", "/missing", "id"] {
            assert_eq!(text_at(&json, absent), None, "{absent}");
        }
    }
}
