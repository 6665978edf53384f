//! Secret values: they print as `[redacted]`, compare in constant time, and the ones that must be
//! used once (a PKCE verifier) are not `Clone`.

use serde::{Deserialize, Serialize};
use std::fmt;
use subtle::ConstantTimeEq;

macro_rules! secret_type {
    ($(#[$doc:meta])* $name:ident $(, $derive:ident)*) => {
        $(#[$doc])*
        #[derive(Serialize, Deserialize $(, $derive)*)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps a secret value.
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }

            /// The secret itself, for the one place that must send it.
            pub fn expose(&self) -> &str {
                &self.0
            }

            /// Constant-time equality, so that comparing a guess leaks nothing through timing.
            #[allow(dead_code)] // every secret type has it; not every one is compared
            pub fn matches(&self, other: &str) -> bool {
                self.0.as_bytes().ct_eq(other.as_bytes()).into()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "([redacted])"))
            }
        }
    };
}

secret_type!(
    /// An OAuth client secret from the configuration.
    ClientSecret, Clone
);
secret_type!(
    /// The key that signs session cookies.
    SecretKey, Clone
);
secret_type!(
    /// An access token returned by a provider; used for the userinfo call, then dropped.
    AccessToken
);
secret_type!(
    /// The CSRF `state` of one login attempt.
    StateToken, Clone
);
secret_type!(
    /// The PKCE code verifier of one login attempt (RFC 7636); sent once with the code.
    PkceVerifier
);
secret_type!(
    /// An authorization code, as received on the callback.
    AuthCode
);
secret_type!(
    /// A connection URL that may hold a password (`[sessions] url`).
    ConnectionUrl, Clone
);

/// `n` random bytes from the operating system's CSPRNG, URL-safe base64 without padding.
pub fn random_token(n: usize) -> String {
    use base64::Engine;
    use rand::RngCore;
    let mut bytes = vec![0u8; n];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = ClientSecret::new("hunter2");
        assert_eq!(format!("{s:?}"), "ClientSecret([redacted])");
        assert!(s.matches("hunter2"));
        assert!(!s.matches("hunter3"));
    }

    #[test]
    fn random_tokens_are_long_and_distinct() {
        let a = random_token(32);
        assert_eq!(a.len(), 43);
        assert_ne!(a, random_token(32));
    }
}
