//! Property tests: no input from a browser, a provider or a configuration file makes the server
//! panic, answer an error with a 200, or log anyone in who should not be.
//!
//! Each property starts the real server once (the discovery property: once per case, because
//! discovery happens once per server) with its fakes, then throws generated input at it over HTTP:
//!
//! 1. callback queries — random bytes, random pairs, and edits of a genuine callback;
//! 2. `form_post` callbacks — random and edited bodies and content types, with and without the
//!    session cookie;
//! 3. token endpoint answers — any status, content type and bytes, random JSON, edited valid answers;
//! 4. userinfo answers — the same, around a valid profile;
//! 5. discovery documents and key sets, then a login with a genuine or a forged ID token;
//! 6. ID tokens — random strings, random JWS-shaped strings, and edits of a genuinely signed token;
//! 7. configuration files, through `Config::from_toml` (no server).
//!
//! Each case is checked against a small model of what the server must do with that input (log in,
//! refuse with a 4xx/5xx page, flash the provider's error, or — where the model cannot tell, e.g. a
//! mangled discovery document — either log in *correctly* or refuse). Always: an answer arrives (a
//! dropped connection is a panicked handler), the server's threads did not panic (a panic hook
//! counts panics on each property's runtime threads, which run every server task), no injected
//! markup comes back raw, and a refusal leaves nobody logged in and no user written.
//!
//! Cases per property are modest so that the module runs in seconds; for a deeper run:
//! `PROPTEST_CASES=1000 cargo test --test api properties::`. Failures are shrunk and reported with
//! the minimal input; nothing is written to disk (`failure_persistence` is off), so a failure
//! found here should become a named test in the module it belongs to.

mod callbacks;
mod config;
mod generators;
mod harness;
mod oidc;
mod provider_answers;
