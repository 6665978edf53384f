//! Small validated types that carry their proof.
//!
//! Values from outside (a request, a provider, a configuration file) become one of these once, at the
//! edge; past that point the type says the check was made. Secrets live in [`secret`] and never print;
//! outside text that is only shown or stored, not parsed into a type, is cut to size by [`text`].

pub mod issuer;
pub mod redirect_url;
pub mod return_to;
pub mod secret;
pub mod text;

pub use issuer::Issuer;
pub use redirect_url::{HostPattern, RedirectUrl};
pub use return_to::ReturnTo;
pub use text::{clip, https_url, text_at};

use serde::{Deserialize, Serialize};
use std::fmt;

/// A configured provider's short name: `google`, `github`, `dev`, `corp-sso`.
///
/// Lower-case ASCII letters, digits, `-` and `_`, 1 to 32 characters, so that it is safe in a path
/// segment, a log line and a database column without escaping.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ProviderName(String);

impl ProviderName {
    /// Accepts a name made of `[a-z0-9_-]`, 1 to 32 characters.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let ok = !raw.is_empty()
            && raw.len() <= 32
            && raw.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(format!("provider name {raw:?} must be 1 to 32 characters of a-z, 0-9, '-' or '_'"))
        }
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ProviderName {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<ProviderName> for String {
    fn from(value: ProviderName) -> Self {
        value.0
    }
}

impl fmt::Display for ProviderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An e-mail address as a provider reported it, trimmed, with a lower-cased copy used for matching.
///
/// The check is deliberately loose (one `@`, something on each side, no spaces or control
/// characters, at most 254 bytes): the provider owns the address, we only refuse junk that could
/// not be an address at all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    /// Parses an address, refusing empty, over-long or malformed text.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let email = raw.trim();
        let Some((local, domain)) = email.rsplit_once('@') else {
            return Err("an e-mail address needs an '@'".into());
        };
        let bad_char = email.chars().any(|c| c.is_whitespace() || c.is_control());
        if local.is_empty() || domain.is_empty() || email.len() > 254 || bad_char {
            return Err(format!("{email:?} is not an e-mail address"));
        }
        Ok(Self(email.to_owned()))
    }

    /// The address as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The lower-cased form that linking compares (providers differ in the case they report).
    pub fn normalized(&self) -> String {
        self.0.to_lowercase()
    }

    /// The part before the `@`, which usernames are made from.
    pub fn local_part(&self) -> &str {
        self.0.rsplit_once('@').map_or(self.0.as_str(), |(local, _)| local)
    }
}

impl TryFrom<String> for Email {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Email> for String {
    fn from(value: Email) -> Self {
        value.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The provider's stable identifier for an account (`sub` in OpenID Connect, the numeric id on GitHub).
///
/// Identity is (provider, subject), never an e-mail or a username, which can change hands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject(String);

impl Subject {
    /// Accepts 1 to 255 bytes without control characters (OpenID Connect Core §2 caps `sub` at 255 ASCII).
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.is_empty() || raw.len() > 255 || raw.chars().any(char::is_control) {
            return Err("the provider returned an empty or malformed subject".into());
        }
        Ok(Self(raw.to_owned()))
    }

    /// The subject as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Our own id for a user row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(pub i64);

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Builds the username stem from an e-mail's local part (without a `+tag`).
pub fn username_stem(email: &Email) -> String {
    username_stem_from(email.local_part().split('+').next().unwrap_or_default())
}

/// Builds a username stem from any text (an address's local part, a provider's login name):
/// lower-case letters, digits, `.`, `_` and `-`, at most 32 characters, never empty. Uniqueness is
/// the store's job.
pub fn username_stem_from(text: &str) -> String {
    let mut stem: String = text
        .chars()
        .filter_map(|c| {
            let c = c.to_ascii_lowercase();
            (c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')).then_some(c)
        })
        .take(32)
        .collect();
    if stem.is_empty() {
        stem.push_str("user");
    }
    stem
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_names_are_path_safe() {
        assert!(ProviderName::parse("corp-sso_2").is_ok());
        for bad in ["", "Google", "a/b", "x y", &"a".repeat(33)] {
            assert!(ProviderName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn emails_refuse_junk() {
        assert!(Email::parse(" Alice@Example.com ").is_ok());
        for bad in ["", "alice", "@x", "a@", "a b@x.y", "a\n@x"] {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(Email::parse("Alice@Example.COM").unwrap().normalized(), "alice@example.com");
    }

    #[test]
    fn username_stems_are_tidy() {
        let stem = |e: &str| username_stem(&Email::parse(e).unwrap());
        assert_eq!(stem("Alice.Smith+news@x.org"), "alice.smith");
        assert_eq!(stem("ünï@x.org"), "n");
        assert_eq!(stem("!!!@x.org"), "user");
        assert_eq!(username_stem_from("The-Octocat"), "the-octocat");
    }
}
