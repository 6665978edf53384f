//! A provider table's `private_key_jwt` credential: `private_key_file` (read and parsed here, when
//! the configuration is loaded, so that a bad key stops the start with its key's name rather than
//! failing every login), `key_id` and `certificate_file`; and the rules tying them to
//! `token_auth`. Relative paths are from the working directory, as `secret_key_file`'s.
//!
//! No problem quotes a file's content: only its path and what is wrong with it.

use super::walk::Walk;
use super::TokenAuth;
use crate::oauth::client_auth::ClientKey;
use crate::oauth::jwt::{certificate_thumbprint, SigningKey};
use crate::providers::Preset;
use figment::value::Dict;
use std::io::Read;

/// A key or certificate file is a few kilobytes; anything past this is not one (and a path to a
/// device or a huge file must not stall the start).
const MAX_KEY_FILE_BYTES: u64 = 64 * 1024;

/// The table's key files, as written.
#[derive(Debug, Default)]
pub(super) struct KeyFiles {
    pub(super) private_key_file: Option<String>,
    pub(super) key_id: Option<String>,
    pub(super) certificate_file: Option<String>,
}

impl Walk<'_> {
    /// The key files of one table, each read as text.
    pub(super) fn key_files(&mut self, table: &Dict, key: &str) -> KeyFiles {
        let t = Some(table);
        KeyFiles {
            private_key_file: self.text(t, key, "private_key_file"),
            key_id: self.text(t, key, "key_id"),
            certificate_file: self.text(t, key, "certificate_file"),
        }
    }

    /// The `private_key_jwt` credential of a table whose method is `token_auth` (its own or its
    /// preset's), or `None` with every problem recorded. A table with `private_key_jwt` and no
    /// `private_key_file` is not refused here: that is a missing key, reported with the others.
    pub(super) fn client_key(
        &mut self,
        table: &Dict,
        key: &str,
        preset: Option<Preset>,
        token_auth: Option<TokenAuth>,
        files: &KeyFiles,
    ) -> Option<ClientKey> {
        let field = |name: &str| format!("{key}.{name}");
        let jwt = matches!(token_auth, Some(TokenAuth::ClientSecretJwt | TokenAuth::PrivateKeyJwt));
        if jwt && preset == Some(Preset::Dev) {
            self.problem(
                table.get("token_auth"),
                &field("token_auth"),
                "the development provider takes client_secret_basic or client_secret_post",
            );
            return None;
        }
        let Some(path) = &files.private_key_file else {
            for name in ["key_id", "certificate_file"] {
                if table.contains_key(name) {
                    self.problem(table.get(name), &field(name), "only applies with private_key_file");
                }
            }
            return None;
        };
        // Sign in with Apple signs its client secret with the team's key (see `providers::apple`).
        if token_auth != Some(TokenAuth::PrivateKeyJwt) && preset != Some(Preset::Apple) {
            self.problem(
                table.get("private_key_file"),
                &field("private_key_file"),
                "only applies with token_auth = \"private_key_jwt\" (set it, or remove private_key_file)",
            );
            return None;
        }
        let signing_key = self
            .read_key_file(table, &field("private_key_file"), "private_key_file", path)
            .and_then(|pem| match SigningKey::from_pem(&pem) {
                Ok(signing_key) => Some(signing_key),
                Err(why) => {
                    self.problem(
                        table.get("private_key_file"),
                        &field("private_key_file"),
                        format!("{path:?} {why}"),
                    );
                    None
                }
            });
        if files.key_id.as_deref() == Some("") {
            self.problem(table.get("key_id"), &field("key_id"), "must not be empty (or leave it out)");
            return None;
        }
        let certificate = match &files.certificate_file {
            Some(cert_path) => {
                Some(self.read_key_file(table, &field("certificate_file"), "certificate_file", cert_path)?)
            }
            None => None,
        };
        let signing_key = signing_key?;
        let thumbprint = match (certificate, &files.certificate_file) {
            (Some(pem), Some(cert_path)) => match certificate_thumbprint(&pem, &signing_key) {
                Ok(thumbprint) => Some(thumbprint),
                Err(why) => {
                    self.problem(
                        table.get("certificate_file"),
                        &field("certificate_file"),
                        format!("{cert_path:?} {why}"),
                    );
                    return None;
                }
            },
            _ => None,
        };
        Some(ClientKey::new(signing_key, files.key_id.clone(), thumbprint))
    }

    /// The text of a key or certificate file, or a problem naming `full` (the key) and the path.
    fn read_key_file(&mut self, table: &Dict, full: &str, name: &str, path: &str) -> Option<String> {
        let read = || -> std::io::Result<Vec<u8>> {
            let mut bytes = Vec::new();
            std::fs::File::open(path)?.take(MAX_KEY_FILE_BYTES + 1).read_to_end(&mut bytes)?;
            Ok(bytes)
        };
        let why = match read() {
            Ok(bytes) if bytes.len() as u64 > MAX_KEY_FILE_BYTES => {
                format!(
                    "{path:?} is larger than {} KiB: not a PEM key or certificate",
                    MAX_KEY_FILE_BYTES / 1024
                )
            }
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(text) => return Some(text),
                Err(_) => format!(
                    "{path:?} is not a PEM file (not text; a DER or .pfx file must be converted to PEM)"
                ),
            },
            Err(err) => format!("{path:?} cannot be read: {err}"),
        };
        self.problem(table.get(name), full, why);
        None
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, TokenAuth};

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

    fn problems(text: &str) -> String {
        Config::from_toml(text).err().map(|e| e.0.join("\n")).unwrap_or_default()
    }

    fn sso(keys: &str) -> String {
        format!("[providers.sso]\nissuer = \"https://sso.example\"\nclient_id = \"id\"\n{keys}\n")
    }

    #[test]
    fn private_key_jwt_reads_its_key_and_needs_no_secret() {
        let config = Config::from_toml(&sso(&format!(
            "token_auth = \"private_key_jwt\"\nprivate_key_file = \"{FIXTURES}/client-p256.pem\"\n\
             key_id = \"k-2026\"\ncertificate_file = \"{FIXTURES}/client-p256.crt\"\n"
        )))
        .unwrap_or_else(|e| panic!("{e}"));
        let sso = &config.providers[0];
        assert_eq!(sso.token_auth, Some(TokenAuth::PrivateKeyJwt));
        assert!(sso.client_secret.is_none());
        let key = sso.client_key.as_ref().expect("the key is read at load");
        assert_eq!(
            key.describe(),
            "ES256, kid k-2026, certificate x5t#S256 _TogzFaTzvn_ifc65g_nmOAol_z25dPg0mk59H4O3cY"
        );
        assert!(!format!("{config:?}").contains("MIG"), "the key never prints");
    }

    #[test]
    fn client_secret_jwt_needs_the_secret_and_no_key() {
        let all = problems(&sso("token_auth = \"client_secret_jwt\"\n"));
        assert!(all.contains("`providers.sso.client_secret`: missing"), "{all}");
        let config =
            Config::from_toml(&sso("token_auth = \"client_secret_jwt\"\nclient_secret = \"s\"\n")).unwrap();
        assert_eq!(config.providers[0].token_auth, Some(TokenAuth::ClientSecretJwt));
        assert!(config.providers[0].client_key.is_none());
    }

    #[test]
    fn bad_key_files_are_refused_with_the_key_named() {
        for (file, why) in [
            ("absent.pem", "cannot be read"),
            ("p384.pem", "is an EC P-384 key, which is not supported"),
            ("ed25519.pem", "is an Ed25519 key, which is not supported"),
            ("rsa-1024.pem", "is a 1024-bit RSA key"),
            ("client-p256.crt", "holds no private key (only a certificate)"),
        ] {
            let all = problems(&sso(&format!(
                "token_auth = \"private_key_jwt\"\nprivate_key_file = \"{FIXTURES}/{file}\"\n"
            )));
            assert!(all.contains("`providers.sso.") && all.contains(why), "{file}: {all}");
            assert!(!all.contains(": missing"), "a refused file is not also missing: {all}");
        }
        for (certificate, why) in [
            ("client-rsa.crt", "is not the certificate of the private key"),
            ("client-p256.pem", "holds no certificate"),
            ("absent.crt", "cannot be read"),
        ] {
            let all = problems(&sso(&format!(
                "token_auth = \"private_key_jwt\"\nprivate_key_file = \"{FIXTURES}/client-p256.pem\"\n\
                 certificate_file = \"{FIXTURES}/{certificate}\"\n"
            )));
            assert!(
                all.contains("`providers.sso.certificate_file`: ") && all.contains(why),
                "{certificate}: {all}"
            );
        }
    }

    #[test]
    fn key_settings_without_their_method_are_refused() {
        let pem = format!("private_key_file = \"{FIXTURES}/client-p256.pem\"\n");
        for (keys, expected) in [
            (
                format!("client_secret = \"s\"\n{pem}"),
                "`providers.sso.private_key_file`: only applies with token_auth = \"private_key_jwt\"",
            ),
            (
                format!("client_secret = \"s\"\ntoken_auth = \"client_secret_jwt\"\n{pem}"),
                "`providers.sso.private_key_file`: only applies with token_auth = \"private_key_jwt\"",
            ),
            ("token_auth = \"private_key_jwt\"\n".into(), "`providers.sso.private_key_file`: missing"),
            (
                "client_secret = \"s\"\nkey_id = \"k\"\n".into(),
                "`providers.sso.key_id`: only applies with private_key_file",
            ),
            (
                "client_secret = \"s\"\ncertificate_file = \"c.crt\"\n".into(),
                "`providers.sso.certificate_file`: only applies with private_key_file",
            ),
        ] {
            let all = problems(&sso(&keys));
            assert!(all.contains(expected), "{keys}: {all}");
        }
        let all = problems("[providers.dev]\ntoken_auth = \"private_key_jwt\"\n");
        assert!(all.contains("`providers.dev.token_auth`: the development provider takes"), "{all}");
    }
}
