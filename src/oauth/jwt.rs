//! JSON Web Tokens that we sign ourselves: a client's assertion at the token endpoint (RFC 7523,
//! [`crate::oauth::client_auth`]) and, for Sign in with Apple, the client secret. It reads a
//! private key from PEM once ([`SigningKey::from_pem`]) and makes compact JWS strings
//! ([`sign_jwt`]); it never verifies (ID tokens are checked in `providers::oidc`).
//!
//! Why not the `jsonwebtoken` crate: it signs through a crypto backend of its own (`ring` or
//! `aws-lc-rs`), a second stack beside the RustCrypto one that `openidconnect` already compiles
//! into us (`rsa`, `p256`, `hmac`, `sha2`, at the versions used here), and what it would do for us
//! is small: a compact JWS is three base64url parts, `header.claims.signature` (RFC 7515 §7.1).
//! Why not `openidconnect`'s own signing keys: they sign ID tokens only, and none is ES256.
//!
//! Algorithms (RFC 7518 §3): RS256 for an RSA key (PKCS #1 v1.5 with SHA-256, at least 2048 bits
//! as §3.3 requires), ES256 for an EC key on P-256, HS256 for a shared secret. Anything else is
//! refused when the key is read, so signing needs no runtime choice and no `alg` from outside.
//!
//! A key never prints: [`SigningKey`]'s `Debug` shows only its algorithm, and no error here
//! quotes the file it was read from.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::fmt;

/// A JWS signing algorithm we sign with (RFC 7518 §3.1 names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// ECDSA on P-256 with SHA-256.
    Es256,
    /// HMAC with SHA-256.
    Hs256,
}

impl Algorithm {
    /// The `alg` header value.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Rs256 => "RS256",
            Algorithm::Es256 => "ES256",
            Algorithm::Hs256 => "HS256",
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a PEM text gives no key we sign with. The messages finish a sentence about the file
/// ("`providers.corp.private_key_file`: …") and never quote its content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// No `-----BEGIN …-----` block at all, or one whose base64 is broken.
    #[error("is not a PEM file (expected a block like -----BEGIN PRIVATE KEY-----)")]
    NotPem,
    /// Only public material (a certificate, a public key).
    #[error("holds no private key (only {0}); give the private key's PEM file")]
    NoPrivateKey(String),
    /// A password-protected key.
    #[error(
        "is an encrypted private key; store it decrypted (`openssl pkey -in KEY -out key.pem`) with permissions only loginwith can read"
    )]
    Encrypted,
    /// A key type or curve other than RSA and P-256.
    #[error("is {0}, which is not supported: use an RSA key of at least 2048 bits (RS256) or an EC P-256 key (ES256)")]
    Unsupported(String),
    /// An RSA key too short for RS256 (RFC 7518 §3.3: 2048 bits or larger).
    #[error("is a {0}-bit RSA key; RS256 needs at least 2048 bits (RFC 7518 §3.3)")]
    WeakRsa(usize),
    /// The PEM block's content is not the key its label says.
    #[error("could not be read as {label}: {reason}")]
    Invalid {
        /// What the block claimed to be.
        label: String,
        /// The decoder's complaint (positions and tags, never key material).
        reason: String,
    },
    /// A certificate file without a certificate.
    #[error("holds no certificate (expected a block -----BEGIN CERTIFICATE-----)")]
    NoCertificate,
    /// A certificate for another key than the private key.
    #[error("is not the certificate of the private key (its public key differs)")]
    CertificateMismatch,
}

/// Why a signature could not be made: only a failure inside the crypto crates (a key that was
/// read and checked does not fail in practice), reported rather than panicked on.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the {algorithm} signature could not be made: {reason}")]
pub struct SignError {
    algorithm: Algorithm,
    reason: String,
}

/// A key that signs JWTs, its algorithm fixed by the key. Its `Debug` never shows the key.
pub struct SigningKey(Inner);

enum Inner {
    Rsa(Box<rsa::pkcs1v15::SigningKey<Sha256>>),
    P256(Box<p256::ecdsa::SigningKey>),
    Hmac(Vec<u8>),
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey({}, [redacted])", self.algorithm())
    }
}

// PKCS #8 algorithm and curve identifiers (RFC 8017 App. C, RFC 5480 §2.1.1, RFC 8410 §3).
const RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";
const RSASSA_PSS: &str = "1.2.840.113549.1.1.10";
const EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const CURVE_P256: &str = "1.2.840.10045.3.1.7";
const CURVE_P384: &str = "1.3.132.0.34";
const CURVE_P521: &str = "1.3.132.0.35";
const CURVE_SECP256K1: &str = "1.3.132.0.10";
const ED25519: &str = "1.3.101.112";
const ED448: &str = "1.3.101.113";

impl SigningKey {
    /// Reads a private key from PEM text: PKCS #8 (`PRIVATE KEY`, RSA or EC P-256, as
    /// `openssl genpkey` writes and Apple's `.p8` files are), PKCS #1 (`RSA PRIVATE KEY`) or SEC1
    /// (`EC PRIVATE KEY`, P-256). The first private key block counts; other blocks (`EC
    /// PARAMETERS`, certificates) are passed over.
    ///
    /// ```text
    /// let key = SigningKey::from_pem(&std::fs::read_to_string("AuthKey_ABC123.p8")?)?;
    /// assert_eq!(key.algorithm(), Algorithm::Es256);
    /// ```
    pub fn from_pem(pem: &str) -> Result<SigningKey, KeyError> {
        let blocks = pem_blocks(pem)?;
        let mut public_only = None;
        for block in &blocks {
            match block.label.as_str() {
                "PRIVATE KEY" => return from_pkcs8(&block.der),
                "RSA PRIVATE KEY" if block.encrypted => return Err(KeyError::Encrypted),
                "RSA PRIVATE KEY" => {
                    use rsa::pkcs1::DecodeRsaPrivateKey;
                    let key = rsa::RsaPrivateKey::from_pkcs1_der(&block.der)
                        .map_err(|e| invalid("a PKCS #1 RSA private key", e))?;
                    return rsa_key(key);
                }
                "EC PRIVATE KEY" if block.encrypted => return Err(KeyError::Encrypted),
                "EC PRIVATE KEY" => {
                    // SEC1 (`openssl ecparam -genkey`): the curve is inside; only P-256 parses.
                    let key = p256::SecretKey::from_sec1_der(&block.der).map_err(|_| {
                        KeyError::Unsupported(
                            "an EC key that is not on P-256 (or not a valid SEC1 key)".into(),
                        )
                    })?;
                    return Ok(SigningKey(Inner::P256(Box::new(key.into()))));
                }
                "ENCRYPTED PRIVATE KEY" => return Err(KeyError::Encrypted),
                "OPENSSH PRIVATE KEY" => {
                    return Err(KeyError::Unsupported(
                        "an OpenSSH key (convert it with `ssh-keygen -p -m PKCS8 -f KEY`)".into(),
                    ))
                }
                "CERTIFICATE" => public_only = public_only.or(Some("a certificate")),
                "PUBLIC KEY" | "RSA PUBLIC KEY" => public_only = public_only.or(Some("a public key")),
                _ => {}
            }
        }
        Err(match public_only {
            Some(what) => KeyError::NoPrivateKey(what.into()),
            None => KeyError::NotPem,
        })
    }

    /// An HS256 key: a shared secret (a client secret for `client_secret_jwt`).
    pub fn hs256(secret: &[u8]) -> SigningKey {
        SigningKey(Inner::Hmac(secret.to_vec()))
    }

    /// The algorithm this key signs with, the JWS `alg`.
    pub fn algorithm(&self) -> Algorithm {
        match self.0 {
            Inner::Rsa(_) => Algorithm::Rs256,
            Inner::P256(_) => Algorithm::Es256,
            Inner::Hmac(_) => Algorithm::Hs256,
        }
    }

    /// The public key as DER `SubjectPublicKeyInfo` (what a certificate or a `PUBLIC KEY` PEM
    /// holds); `None` for a shared secret, which has no public half.
    pub fn public_key_der(&self) -> Option<Vec<u8>> {
        match &self.0 {
            Inner::Rsa(key) => {
                use rsa::pkcs8::EncodePublicKey;
                let public = rsa::RsaPublicKey::from(key.as_ref().as_ref());
                public.to_public_key_der().ok().map(|d| d.as_bytes().to_vec())
            }
            Inner::P256(key) => {
                use p256::pkcs8::EncodePublicKey;
                key.verifying_key().to_public_key_der().ok().map(|d| d.as_bytes().to_vec())
            }
            Inner::Hmac(_) => None,
        }
    }

    /// The JWS signature of `input` (RFC 7515 §5.1 step 5): for ES256, `r || s` as RFC 7518
    /// §3.4 wants, not DER.
    pub fn sign(&self, input: &[u8]) -> Result<Vec<u8>, SignError> {
        let failed = |reason: String| SignError { algorithm: self.algorithm(), reason };
        match &self.0 {
            Inner::Rsa(key) => {
                use rsa::signature::{RandomizedSigner, SignatureEncoding};
                // Blinded with fresh randomness: `rsa` 0.9's arithmetic is not constant-time
                // (RUSTSEC-2023-0071), and blinding keeps the private exponent's work away from a
                // value anyone could choose or predict.
                let signature = key
                    .try_sign_with_rng(&mut rand::rngs::OsRng, input)
                    .map_err(|e| failed(e.to_string()))?;
                Ok(signature.to_vec())
            }
            Inner::P256(key) => {
                use p256::ecdsa::signature::Signer;
                // Deterministic nonces (RFC 6979): no randomness to get wrong.
                let signature: p256::ecdsa::Signature =
                    key.try_sign(input).map_err(|e| failed(e.to_string()))?;
                Ok(signature.to_bytes().to_vec())
            }
            Inner::Hmac(secret) => {
                use hmac::Mac;
                let mut mac =
                    hmac::Hmac::<Sha256>::new_from_slice(secret).map_err(|e| failed(e.to_string()))?;
                mac.update(input);
                Ok(mac.finalize().into_bytes().to_vec())
            }
        }
    }
}

/// Signs `claims` as a compact JWS (RFC 7515 §7.1): base64url without padding of the header
/// `{"alg": key's algorithm, "typ": "JWT", ...header_extra}`, of the claims, and of the signature,
/// joined by dots. `header_extra` adds members such as `kid` or `x5t#S256`; it cannot change
/// `alg`, which is always the key's.
///
/// ```text
/// // Sign in with Apple's client secret: ES256 with the team's .p8 key.
/// let mut header = serde_json::Map::new();
/// header.insert("kid".into(), key_id.into());
/// let now = chrono::Utc::now().timestamp();
/// let secret = sign_jwt(&key, &header, &serde_json::json!({
///     "iss": team_id, "iat": now, "exp": now + 86_400,
///     "aud": "https://appleid.apple.com", "sub": client_id,
/// }))?;
/// ```
pub fn sign_jwt(
    key: &SigningKey,
    header_extra: &Map<String, Value>,
    claims: &Value,
) -> Result<String, SignError> {
    let mut header = Map::new();
    header.insert("alg".into(), key.algorithm().as_str().into());
    header.insert("typ".into(), "JWT".into());
    for (name, value) in header_extra {
        if name != "alg" {
            header.insert(name.clone(), value.clone());
        }
    }
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(Value::Object(header).to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = key.sign(input.as_bytes())?;
    Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature)))
}

/// The `x5t#S256` header value (RFC 7515 §4.1.8) of the first certificate in `pem`: base64url of
/// the SHA-256 of its DER. The certificate must hold `key`'s public key: a provider that knows
/// the key by its certificate (Microsoft Entra ID) would refuse every assertion otherwise, and
/// this says why at start instead.
pub fn certificate_thumbprint(pem: &str, key: &SigningKey) -> Result<String, KeyError> {
    let blocks = pem_blocks(pem).map_err(|_| KeyError::NoCertificate)?;
    let der = blocks.into_iter().find(|b| b.label == "CERTIFICATE").ok_or(KeyError::NoCertificate)?.der;
    // A certificate's DER holds the key's SubjectPublicKeyInfo byte for byte (DER has one
    // encoding per value), so finding it there is the check, without an X.509 parser.
    let public = key.public_key_der().ok_or(KeyError::CertificateMismatch)?;
    if !der.windows(public.len()).any(|w| w == public.as_slice()) {
        return Err(KeyError::CertificateMismatch);
    }
    Ok(URL_SAFE_NO_PAD.encode(Sha256::digest(&der)))
}

fn invalid(label: &str, err: impl fmt::Display) -> KeyError {
    KeyError::Invalid { label: label.into(), reason: err.to_string() }
}

/// A PKCS #8 `PrivateKeyInfo`: its algorithm (and for EC its curve) says which key it is, so an
/// unsupported one is named rather than reported as garbage.
fn from_pkcs8(der: &[u8]) -> Result<SigningKey, KeyError> {
    let info = rsa::pkcs8::PrivateKeyInfo::try_from(der).map_err(|e| invalid("a PKCS #8 private key", e))?;
    let algorithm = info.algorithm.oid.to_string();
    match algorithm.as_str() {
        RSA_ENCRYPTION => {
            use rsa::pkcs8::DecodePrivateKey;
            let key = rsa::RsaPrivateKey::from_pkcs8_der(der)
                .map_err(|e| invalid("a PKCS #8 RSA private key", e))?;
            rsa_key(key)
        }
        EC_PUBLIC_KEY => {
            let curve = info.algorithm.parameters_oid().map(|oid| oid.to_string()).unwrap_or_default();
            match curve.as_str() {
                CURVE_P256 => {
                    use p256::pkcs8::DecodePrivateKey;
                    let key = p256::ecdsa::SigningKey::from_pkcs8_der(der)
                        .map_err(|e| invalid("a PKCS #8 EC P-256 private key", e))?;
                    Ok(SigningKey(Inner::P256(Box::new(key))))
                }
                CURVE_P384 => Err(KeyError::Unsupported("an EC P-384 key".into())),
                CURVE_P521 => Err(KeyError::Unsupported("an EC P-521 key".into())),
                CURVE_SECP256K1 => Err(KeyError::Unsupported("an EC secp256k1 key".into())),
                "" => Err(KeyError::Unsupported("an EC key without a named curve".into())),
                other => Err(KeyError::Unsupported(format!("an EC key on the curve {other}"))),
            }
        }
        RSASSA_PSS => Err(KeyError::Unsupported("an RSA-PSS key".into())),
        ED25519 => Err(KeyError::Unsupported("an Ed25519 key".into())),
        ED448 => Err(KeyError::Unsupported("an Ed448 key".into())),
        other => Err(KeyError::Unsupported(format!("a key of the algorithm {other}"))),
    }
}

fn rsa_key(key: rsa::RsaPrivateKey) -> Result<SigningKey, KeyError> {
    use rsa::traits::PublicKeyParts;
    key.validate().map_err(|e| invalid("an RSA private key", e))?;
    let bits = key.size() * 8;
    if bits < 2048 {
        return Err(KeyError::WeakRsa(bits));
    }
    Ok(SigningKey(Inner::Rsa(Box::new(rsa::pkcs1v15::SigningKey::<Sha256>::new(key)))))
}

/// One `-----BEGIN LABEL-----` … `-----END LABEL-----` block, its base64 decoded.
struct PemBlock {
    label: String,
    der: Vec<u8>,
    /// RFC 1421 headers (`Proc-Type: 4,ENCRYPTED`): OpenSSL's legacy encrypted keys.
    encrypted: bool,
}

/// Every PEM block of `text` (RFC 7468), in order. Text around and between blocks is ignored, as
/// OpenSSL does; a block whose base64 does not decode makes the whole text `NotPem`.
fn pem_blocks(text: &str) -> Result<Vec<PemBlock>, KeyError> {
    let mut blocks = Vec::new();
    let mut lines = text.lines().map(str::trim);
    while let Some(line) = lines.next() {
        let Some(label) = line.strip_prefix("-----BEGIN ").and_then(|l| l.strip_suffix("-----")) else {
            continue;
        };
        let end = format!("-----END {label}-----");
        let mut body = String::new();
        let mut encrypted = false;
        let mut closed = false;
        for line in lines.by_ref() {
            if line == end {
                closed = true;
                break;
            }
            if line.contains(':') {
                encrypted |= line.starts_with("Proc-Type:") && line.contains("ENCRYPTED");
                continue;
            }
            body.push_str(line);
        }
        let der = STANDARD.decode(&body).map_err(|_| KeyError::NotPem)?;
        if !closed || der.is_empty() {
            return Err(KeyError::NotPem);
        }
        blocks.push(PemBlock { label: label.to_owned(), der, encrypted });
    }
    if blocks.is_empty() {
        return Err(KeyError::NotPem);
    }
    Ok(blocks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const P256_PEM: &str = include_str!("../../tests/fixtures/client-p256.pem");
    const P256_SEC1_PEM: &str = include_str!("../../tests/fixtures/client-p256-sec1.pem");
    const P256_CERT: &str = include_str!("../../tests/fixtures/client-p256.crt");
    const RSA_PKCS8_PEM: &str = include_str!("../../tests/fixtures/client-rsa.pem");
    const RSA_CERT: &str = include_str!("../../tests/fixtures/client-rsa.crt");
    const RSA_PKCS1_PEM: &str = include_str!("../../tests/fixtures/rsa1.pem");

    /// The three parts of a compact JWS, the first two decoded as JSON.
    fn parts(jwt: &str) -> (Value, Value, Vec<u8>, String) {
        let (input, signature) = jwt.rsplit_once('.').unwrap();
        let (header, claims) = input.split_once('.').unwrap();
        let json = |part: &str| serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap();
        (json(header), json(claims), URL_SAFE_NO_PAD.decode(signature).unwrap(), input.to_owned())
    }

    #[test]
    fn an_es256_jwt_verifies_with_the_p256_public_key() {
        use p256::ecdsa::signature::Verifier;
        use p256::pkcs8::DecodePublicKey;
        for pem in [P256_PEM, P256_SEC1_PEM] {
            let key = SigningKey::from_pem(pem).unwrap();
            assert_eq!(key.algorithm(), Algorithm::Es256);
            let mut extra = Map::new();
            extra.insert("kid".into(), "key-1".into());
            extra.insert("alg".into(), "none".into());
            let jwt = sign_jwt(&key, &extra, &json!({"sub": "me"})).unwrap();
            let (header, claims, signature, input) = parts(&jwt);
            assert_eq!(header, json!({"alg": "ES256", "typ": "JWT", "kid": "key-1"}), "alg is the key's");
            assert_eq!(claims, json!({"sub": "me"}));
            assert_eq!(signature.len(), 64, "r || s, not DER");
            let public =
                p256::ecdsa::VerifyingKey::from_public_key_der(&key.public_key_der().unwrap()).unwrap();
            let signature = p256::ecdsa::Signature::from_slice(&signature).unwrap();
            public.verify(input.as_bytes(), &signature).unwrap();
            assert!(public.verify(b"another input", &signature).is_err());
        }
    }

    #[test]
    fn an_rs256_jwt_verifies_with_the_rsa_public_key() {
        use rsa::pkcs8::DecodePublicKey;
        use rsa::signature::Verifier;
        for pem in [RSA_PKCS8_PEM, RSA_PKCS1_PEM] {
            let key = SigningKey::from_pem(pem).unwrap();
            assert_eq!(key.algorithm(), Algorithm::Rs256);
            let jwt = sign_jwt(&key, &Map::new(), &json!({"iss": "x"})).unwrap();
            let (header, _, signature, input) = parts(&jwt);
            assert_eq!(header, json!({"alg": "RS256", "typ": "JWT"}));
            let public = rsa::RsaPublicKey::from_public_key_der(&key.public_key_der().unwrap()).unwrap();
            let verifier = rsa::pkcs1v15::VerifyingKey::<Sha256>::new(public);
            let signature = rsa::pkcs1v15::Signature::try_from(signature.as_slice()).unwrap();
            verifier.verify(input.as_bytes(), &signature).unwrap();
            assert!(verifier.verify(b"another input", &signature).is_err());
        }
    }

    #[test]
    fn an_hs256_jwt_verifies_with_the_secret() {
        use hmac::Mac;
        let jwt = sign_jwt(&SigningKey::hs256(b"the-shared-secret"), &Map::new(), &json!({"a": 1})).unwrap();
        let (header, _, signature, input) = parts(&jwt);
        assert_eq!(header["alg"], "HS256");
        let mut mac = hmac::Hmac::<Sha256>::new_from_slice(b"the-shared-secret").unwrap();
        mac.update(input.as_bytes());
        mac.verify_slice(&signature).unwrap();
        let mut other = hmac::Hmac::<Sha256>::new_from_slice(b"another-secret").unwrap();
        other.update(input.as_bytes());
        assert!(other.verify_slice(&signature).is_err());
    }

    #[test]
    fn keys_we_do_not_sign_with_are_refused_by_name() {
        let refused = |pem: &str| SigningKey::from_pem(pem).unwrap_err();
        assert_eq!(
            refused(include_str!("../../tests/fixtures/p384.pem")),
            KeyError::Unsupported("an EC P-384 key".into())
        );
        assert_eq!(
            refused(include_str!("../../tests/fixtures/ed25519.pem")),
            KeyError::Unsupported("an Ed25519 key".into())
        );
        assert_eq!(refused(include_str!("../../tests/fixtures/rsa-1024.pem")), KeyError::WeakRsa(1024));
        assert_eq!(refused(P256_CERT), KeyError::NoPrivateKey("a certificate".into()));
        assert_eq!(refused("hello"), KeyError::NotPem);
        assert_eq!(refused(""), KeyError::NotPem);
        assert_eq!(
            refused("-----BEGIN PRIVATE KEY-----\n!!!\n-----END PRIVATE KEY-----\n"),
            KeyError::NotPem
        );
        assert_eq!(refused("-----BEGIN PRIVATE KEY-----\nAAAA\n"), KeyError::NotPem, "unterminated");
        assert!(matches!(
            refused(
                "-----BEGIN PRIVATE KEY-----\nMIIBVgIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n"
            ),
            KeyError::Invalid { .. }
        ));
        assert_eq!(
            refused("-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n"),
            KeyError::Encrypted
        );
        let legacy = "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nAAAA\n-----END RSA PRIVATE KEY-----\n";
        assert_eq!(refused(legacy), KeyError::Encrypted);
    }

    #[test]
    fn other_blocks_around_the_key_are_passed_over() {
        let bundle = format!("Bag Attributes\n{P256_CERT}-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n{P256_PEM}");
        assert_eq!(SigningKey::from_pem(&bundle).unwrap().algorithm(), Algorithm::Es256);
    }

    #[test]
    fn a_key_never_prints() {
        let key = SigningKey::from_pem(P256_PEM).unwrap();
        assert_eq!(format!("{key:?}"), "SigningKey(ES256, [redacted])");
        assert_eq!(format!("{:?}", SigningKey::hs256(b"hunter2")), "SigningKey(HS256, [redacted])");
    }

    #[test]
    fn certificate_thumbprints_are_sha256_of_the_der_and_must_match_the_key() {
        // Computed with `openssl x509 -outform DER | openssl dgst -sha256 -binary | base64url`.
        let p256 = SigningKey::from_pem(P256_PEM).unwrap();
        let rsa = SigningKey::from_pem(RSA_PKCS8_PEM).unwrap();
        assert_eq!(
            certificate_thumbprint(P256_CERT, &p256).unwrap(),
            "_TogzFaTzvn_ifc65g_nmOAol_z25dPg0mk59H4O3cY"
        );
        assert_eq!(
            certificate_thumbprint(RSA_CERT, &rsa).unwrap(),
            "qHf22tVYl_0g0BWIr3FDFwgL5-lMeQ7SCWg8UZdwxs4"
        );
        assert_eq!(certificate_thumbprint(RSA_CERT, &p256), Err(KeyError::CertificateMismatch));
        assert_eq!(certificate_thumbprint(P256_PEM, &p256), Err(KeyError::NoCertificate));
        assert_eq!(certificate_thumbprint("junk", &p256), Err(KeyError::NoCertificate));
    }
}
