//! The little we read of a compact JWS ourselves, before the `openidconnect` crate checks it:
//! the header's `kid` (to know whether the key set needs a refetch) and the payload's `iss` (to
//! recognise Google's scheme-less issuer, which the crate's URL-typed `iss` cannot hold).
//!
//! Nothing read here is trusted: signatures are verified by the crate's key types, over the bytes
//! the provider signed ([`SchemeRestored::original_signing_input`]).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::Value;

fn decode(part: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(part.trim_end_matches('=')).ok()
}

/// The three parts of a compact JWS, or `None`.
fn parts(jwt: &str) -> Option<(&str, &str, &str)> {
    let mut parts = jwt.split('.');
    let parts3 = (parts.next()?, parts.next()?, parts.next()?);
    parts.next().is_none().then_some(parts3)
}

/// The JOSE header, decoded only to read `kid`.
pub fn header(jwt: &str) -> Option<Value> {
    let (header, _, _) = parts(jwt)?;
    serde_json::from_slice(&decode(header)?).ok()
}

/// The header's `kid`, if any.
pub fn kid(jwt: &str) -> Option<String> {
    header(jwt)?.get("kid").and_then(Value::as_str).map(str::to_owned)
}

/// The payload's `iss` as a string, unverified.
pub fn unverified_iss(jwt: &str) -> Option<String> {
    let (_, payload, _) = parts(jwt)?;
    let claims: Value = serde_json::from_slice(&decode(payload)?).ok()?;
    claims.get("iss").and_then(Value::as_str).map(str::to_owned)
}

/// A token whose `iss` was rewritten, and what the provider really signed.
#[derive(Debug)]
pub struct SchemeRestored {
    /// The same header and signature, the payload with `iss` replaced: for the crate to parse and
    /// check every claim except the signature (which no longer matches it).
    pub rewritten: String,
    /// `header.payload` exactly as received: what the signature is over.
    pub original_signing_input: String,
    /// The signature, decoded.
    pub signature: Vec<u8>,
}

/// `jwt` with its payload's `iss` set to `issuer`. Only ever used once the caller has established
/// that the original `iss` is an accepted form of `issuer`; the signature must then be checked
/// against `original_signing_input`.
pub fn with_iss(jwt: &str, issuer: &str) -> Option<SchemeRestored> {
    let (header, payload, signature) = parts(jwt)?;
    let mut claims: Value = serde_json::from_slice(&decode(payload)?).ok()?;
    claims.as_object_mut()?.insert("iss".into(), Value::String(issuer.to_owned()));
    let rewritten_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).ok()?);
    Some(SchemeRestored {
        rewritten: format!("{header}.{rewritten_payload}.{signature}"),
        original_signing_input: format!("{header}.{payload}"),
        signature: decode(signature)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn jwt(header: &Value, claims: &Value) -> String {
        let enc = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
        format!("{}.{}.{}", enc(header), enc(claims), URL_SAFE_NO_PAD.encode(b"sig"))
    }

    #[test]
    fn reads_kid_and_iss_without_trusting_them() {
        let t = jwt(&json!({"alg": "RS256", "kid": "k1"}), &json!({"iss": "accounts.google.com"}));
        assert_eq!(kid(&t).as_deref(), Some("k1"));
        assert_eq!(unverified_iss(&t).as_deref(), Some("accounts.google.com"));
        assert_eq!(kid("not.a"), None);
        assert_eq!(unverified_iss("a.b.c.d"), None);
    }

    #[test]
    fn with_iss_keeps_header_and_signature_and_the_original_input() {
        let t = jwt(&json!({"alg": "RS256"}), &json!({"iss": "accounts.google.com", "sub": "1"}));
        let r = with_iss(&t, "https://accounts.google.com").unwrap();
        assert_eq!(unverified_iss(&r.rewritten).as_deref(), Some("https://accounts.google.com"));
        assert_eq!(r.signature, b"sig");
        assert!(t.starts_with(&r.original_signing_input));
        assert_eq!(r.rewritten.split('.').next(), t.split('.').next());
        assert_eq!(r.rewritten.rsplit('.').next(), t.rsplit('.').next());
    }
}
