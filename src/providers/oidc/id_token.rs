//! ID token validation (OpenID Connect Core §3.1.3.7), and the profile read from the verified
//! claims.
//!
//! Signatures, `aud`, `exp` and `nonce` are checked by the `openidconnect` crate's
//! `IdTokenVerifier` — no hand-written signature code here. What that crate leaves to its caller is
//! done below, each with its reason: the algorithm allowlist (what the provider advertises, never
//! `none`, HMAC only when configured), `iat` not in the future, `azp` when there are several
//! audiences (the crate skips it, see its source), `at_hash`, and `iss` — compared by us, as exact
//! text with the issuer discovery published, so that an error can say when the two differ only by a
//! trailing slash, and so that Microsoft's multi-tenant template (with the configured tenant rule)
//! and Google's scheme-less form are handled in one place.
//!
//! Then the profile: the identity key (`sub`, or Microsoft's `tid:oid`), whether the provider
//! vouches for the address under its quirk, and — when the token carries no address — the userinfo
//! document, used only if its `sub` is the token's (Core §5.3.2).
//!
//! Nothing here makes a network call: the keys come from [`super::keys`], the issuer and the
//! endpoints from [`super::discovery`], the userinfo document from [`Oidc::login_profile`].

use super::discovery::{entra_tenant_id, Discovered, MS_CONSUMERS_TENANT};
use super::{jws, Oidc, OidcQuirk};
use crate::domain::secret::{AccessToken, ClientSecret};
use crate::domain::{clip, https_url, text_at, Email, Subject};
use crate::oauth::ProviderError;
use crate::providers::{apple, google, microsoft, slack, Profile, ProfileError};
use base64::Engine;
use openidconnect::core::{
    CoreGenderClaim, CoreJsonWebKey, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm,
};
use openidconnect::{
    AccessTokenHash, AdditionalClaims, Audience, ClaimsVerificationError, IdTokenVerifier, IssuerUrl,
    JsonWebKey, JwsSigningAlgorithm, Nonce, SignatureVerificationError,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::str::FromStr;
use std::time::Duration;
use url::Url;

/// How far in the future an `iat` may be (clock skew between us and the provider).
pub const IAT_SKEW: Duration = Duration::from_secs(30);

/// Claims beyond the standard ones that we read (Microsoft's tenant, object id and e-mail proof;
/// Google's hosted domain; Slack's workspace).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ExtraClaims {
    /// Entra ID tenant id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tid: Option<String>,
    /// Entra ID object id: the user's immutable id within the tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oid: Option<String>,
    /// Entra ID "email domain owner verified".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xms_edov: Option<Value>,
    /// Google's hosted domain: present for Google Workspace accounts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hd: Option<String>,
    /// Slack's workspace id: its user ids are unique only within it.
    #[serde(rename = "https://slack.com/team_id", default, skip_serializing_if = "Option::is_none")]
    pub slack_team_id: Option<String>,
    /// Apple: the address is a private relay address (a boolean, or the string "true").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_private_email: Option<Value>,
}

impl AdditionalClaims for ExtraClaims {}

/// An ID token with our extra claims.
pub type IdToken = openidconnect::IdToken<
    ExtraClaims,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;

/// Its claims.
pub type IdTokenClaims = openidconnect::IdTokenClaims<ExtraClaims, CoreGenderClaim>;

/// Why an ID token was refused. Each is a 403 page naming the reason.
#[derive(Debug, thiserror::Error)]
pub enum IdTokenError {
    /// The token endpoint returned no `id_token` although `openid` was requested.
    #[error("the provider returned no ID token")]
    Missing,
    /// Not a JWT, or a required claim (such as `sub`) is missing or malformed.
    #[error("the ID token is malformed: {0}")]
    Malformed(String),
    /// Signature, algorithm or key problems.
    #[error("the ID token's signature is not valid: {0}")]
    Signature(String),
    /// `iss` is not the issuer.
    #[error("the ID token was issued by someone else: {0}")]
    Issuer(String),
    /// `aud` does not contain us, or `azp` is not us.
    #[error("the ID token is not meant for this application: {0}")]
    Audience(String),
    /// `exp` has passed, or `iat` is in the future.
    #[error("the ID token is expired or not yet valid: {0}")]
    Time(String),
    /// `nonce` missing or different from ours: a replayed or injected token.
    #[error("the ID token does not belong to this login attempt (nonce mismatch)")]
    Nonce,
    /// `at_hash` does not match the access token.
    #[error("the ID token does not match the access token (at_hash)")]
    AtHash,
    /// The userinfo `sub` differs from the ID token's (OpenID Connect Core §5.3.2).
    #[error("the userinfo response is about a different user than the ID token")]
    UserinfoSubject,
    /// Microsoft: tenant or object id missing, or a tenant not allowed by the configuration.
    /// Slack: no workspace id, or another workspace than the configured `team`.
    #[error("the ID token's tenant is not accepted: {0}")]
    Tenant(String),
}

impl Oidc {
    /// Algorithms accepted for ID tokens: what the provider advertises (RS256 when it says
    /// nothing, as OpenID Connect Discovery makes RS256 the default), never `none`, and HMAC only
    /// when configured.
    fn allowed_algorithms(&self, discovered: &Discovered) -> Vec<CoreJwsSigningAlgorithm> {
        let advertised: Vec<&str> = if discovered.algorithms.is_empty() {
            vec!["RS256"]
        } else {
            discovered.algorithms.iter().map(String::as_str).collect()
        };
        advertised
            .into_iter()
            .filter(|alg| *alg != "none" && (self.allow_hmac || !alg.starts_with("HS")))
            .filter_map(|alg| serde_json::from_value(Value::String(alg.to_owned())).ok())
            .filter(|alg| *alg != CoreJwsSigningAlgorithm::None)
            .collect()
    }

    /// Parses the ID token for the crate, whose `iss` must be a URL.
    ///
    /// Google documents `iss` as either `https://accounts.google.com` or `accounts.google.com`. The
    /// second cannot be parsed by the crate at all, so for the Google quirk only, a token whose
    /// `iss` is exactly the issuer without its scheme gets the scheme back for parsing, and its
    /// signature is checked against the original bytes in [`Self::verify`].
    pub(super) fn receive(&self, raw: &str, discovered: &Discovered) -> Result<Received, IdTokenError> {
        let malformed = |e: serde_json::Error| IdTokenError::Malformed(clip(&e.to_string(), 200));
        let unverified_iss = jws::unverified_iss(raw);
        if self.quirk == OidcQuirk::Google
            && unverified_iss.as_deref() == Some(self.issuer.without_scheme())
            && discovered.issuer == self.issuer.as_str()
        {
            let original = jws::with_iss(raw, &discovered.issuer)
                .ok_or_else(|| IdTokenError::Malformed("not a JWT".into()))?;
            let token = IdToken::from_str(&original.rewritten).map_err(malformed)?;
            return Ok(Received { token, original: Some(original) });
        }
        IdToken::from_str(raw).map(|token| Received { token, original: None }).map_err(|e| {
            match unverified_iss {
                // The crate fails on an `iss` that is no URL: say that it is the issuer that is wrong.
                Some(iss) if Url::parse(&iss).is_err() => {
                    IdTokenError::Issuer(format!("iss {:?} is not {:?}", clip(&iss, 100), discovered.issuer))
                }
                _ => malformed(e),
            }
        })
    }

    /// OpenID Connect Core §3.1.3.7, steps 2–11, plus `at_hash` (§3.1.3.8 via §3.3.2.9).
    pub(super) fn verify(
        &self,
        discovered: &Discovered,
        client_id: &str,
        client_secret: Option<&ClientSecret>,
        received: &Received,
        access_token: &AccessToken,
        nonce: &str,
    ) -> Result<IdTokenClaims, IdTokenError> {
        let id_token = &received.token;
        let jwks = (*self.keys.current()).clone();
        // The crate wants the issuer as a URL; `iss` itself is compared below, as text.
        let issuer =
            IssuerUrl::new(discovered.issuer.clone()).map_err(|e| IdTokenError::Issuer(e.to_string()))?;
        let client = openidconnect::ClientId::new(client_id.to_owned());
        let verifier = match client_secret.filter(|_| self.allow_hmac) {
            Some(secret) => IdTokenVerifier::<CoreJsonWebKey>::new_confidential_client(
                client,
                openidconnect::ClientSecret::new(secret.expose().to_owned()),
                issuer,
                jwks,
            ),
            None => IdTokenVerifier::new_public_client(client, issuer, jwks),
        };
        let allowed = self.allowed_algorithms(discovered);
        let verifier = verifier
            .set_allowed_algs(allowed.clone())
            .require_issuer_match(false)
            // Extra audiences are allowed only with azp = us, checked below.
            .set_other_audience_verifier_fn(|_aud: &Audience| true)
            .set_issue_time_verifier_fn(|iat| {
                let latest = chrono::Utc::now() + chrono::Duration::from_std(IAT_SKEW).unwrap_or_default();
                if iat > latest {
                    Err(format!("issued at {iat}, in the future"))
                } else {
                    Ok(())
                }
            });
        let verifier = match &received.original {
            None => verifier,
            Some(original) => {
                check_original_signature(id_token, &verifier, &allowed, original)?;
                // Just checked, over the bytes the provider signed: the rewritten payload's
                // signature cannot match, every other check still runs.
                verifier.insecure_disable_signature_check()
            }
        };
        let expected_nonce = Nonce::new(nonce.to_owned());
        let claims = id_token.claims(&verifier, &expected_nonce).map_err(map_verification_error)?.clone();

        self.check_issuer_claim(discovered, &claims)?;
        check_audience(&claims, client_id)?;
        if let OidcQuirk::Slack { team } = &self.quirk {
            let claimed = claims.additional_claims().slack_team_id.as_deref();
            slack::accepted_team(team.as_deref(), claimed).map_err(IdTokenError::Tenant)?;
        }
        check_at_hash(id_token, &verifier, &claims, access_token)?;
        Ok(claims)
    }

    /// Step 2: `iss`, exactly; for Microsoft with the token's own tenant, which must be allowed.
    fn check_issuer_claim(
        &self,
        discovered: &Discovered,
        claims: &IdTokenClaims,
    ) -> Result<(), IdTokenError> {
        if let OidcQuirk::Microsoft { tenant, authority } = &self.quirk {
            let extra = claims.additional_claims();
            let tid = extra.tid.as_deref().ok_or_else(|| IdTokenError::Tenant("no tid claim".into()))?;
            check_iss(&self.expected_issuer(discovered, Some(tid)), claims.issuer().as_str())?;
            check_entra_tenant(tenant, authority, discovered, tid)
        } else if discovered.issuer.contains("{tenantid}") {
            // Only Microsoft publishes a template; anywhere else it is a misconfiguration.
            Err(IdTokenError::Issuer("templated issuer without a tenant rule".into()))
        } else {
            check_iss(&discovered.issuer, claims.issuer().as_str())
        }
    }

    /// The identity key: `sub`, or for Microsoft `tid:oid` (stable across apps, unlike the
    /// pairwise `sub`, and scoped to the tenant so that two tenants' users never collide), or for
    /// Slack `team_id:sub` (a user id is unique only within its workspace).
    fn subject_of(&self, claims: &IdTokenClaims) -> Result<Subject, IdTokenError> {
        let raw = match &self.quirk {
            OidcQuirk::Microsoft { .. } => {
                let extra = claims.additional_claims();
                match (&extra.tid, &extra.oid) {
                    (Some(tid), Some(oid)) => format!("{tid}:{oid}"),
                    _ => return Err(IdTokenError::Tenant("no tid or oid claim".into())),
                }
            }
            OidcQuirk::Slack { team } => {
                let claimed = claims.additional_claims().slack_team_id.as_deref();
                let team_id = slack::accepted_team(team.as_deref(), claimed).map_err(IdTokenError::Tenant)?;
                format!("{team_id}:{}", claims.subject().as_str())
            }
            OidcQuirk::None | OidcQuirk::Google | OidcQuirk::Apple => claims.subject().as_str().to_owned(),
        };
        Subject::parse(&raw).map_err(IdTokenError::Malformed)
    }

    /// Whether the provider vouches for `email` now.
    ///
    /// Microsoft: only when `xms_edov` says the domain owner verified it; Entra lets tenant admins
    /// set any `email`, so without it linking by e-mail would be the "nOAuth" account takeover.
    /// Google: only for Gmail and Workspace (`hd`) addresses, see [`google::email_is_verified`];
    /// `userinfo_hd` is the userinfo document's `hd`, used when the token has none.
    fn email_verified(
        &self,
        claims: &IdTokenClaims,
        email: &str,
        claimed: Option<bool>,
        userinfo_hd: Option<&str>,
    ) -> bool {
        match self.quirk {
            OidcQuirk::Microsoft { .. } => match &claims.additional_claims().xms_edov {
                Some(Value::Bool(b)) => *b,
                Some(Value::Number(n)) => n.as_i64() == Some(1),
                Some(Value::String(s)) => s == "1" || s.eq_ignore_ascii_case("true"),
                _ => false,
            },
            OidcQuirk::Google => {
                let hd = claims.additional_claims().hd.as_deref().or(userinfo_hd);
                google::email_is_verified(email, claimed, hd)
            }
            OidcQuirk::Apple => {
                apple::email_is_verified(email, claimed, claims.additional_claims().is_private_email.as_ref())
            }
            // Slack's is read as it is; whether it is believed is `trust_email_verified`, off by
            // default (see `providers::slack`).
            OidcQuirk::None | OidcQuirk::Slack { .. } => claimed == Some(true),
        }
    }

    pub(super) fn profile_from_claims(
        &self,
        claims: &IdTokenClaims,
    ) -> Result<Option<Profile>, IdTokenError> {
        let subject = self.subject_of(claims)?;
        let (email, verified) = match claims.email() {
            Some(email) => (
                Some(email.as_str().to_owned()),
                self.email_verified(claims, email.as_str(), claims.email_verified(), None),
            ),
            // Entra often has no `email` claim; the sign-in name is the usual address, but it is
            // changeable and `xms_edov` does not vouch for it: never verified.
            None => match self.quirk {
                OidcQuirk::Microsoft { .. } => (
                    claims.preferred_username().map(|u| u.as_str().to_owned()).filter(|u| u.contains('@')),
                    false,
                ),
                OidcQuirk::None | OidcQuirk::Google | OidcQuirk::Slack { .. } | OidcQuirk::Apple => {
                    (None, false)
                }
            },
        };
        let Some(email) = email.and_then(|e| Email::parse(&e).ok()) else { return Ok(None) };
        Ok(Some(Profile {
            subject,
            email_verified: verified,
            email: Some(email),
            name: claims.name().and_then(|n| n.get(None)).map(|n| clip(n.as_str(), 200)),
            avatar: claims.picture().and_then(|p| p.get(None)).and_then(|p| https_url(p.as_str())),
            username: login_name(claims.preferred_username().map(|u| u.as_str())),
        }))
    }

    /// Reads userinfo; its `sub` must be the ID token's (Core §5.3.2: otherwise the response
    /// "MUST NOT be used"), then fills what the ID token lacked.
    pub(super) fn merge_userinfo(
        &self,
        claims: &IdTokenClaims,
        from_token: Option<Profile>,
        json: &Value,
    ) -> Result<Profile, ProfileError> {
        let userinfo_sub = text_at(json, "/sub");
        if userinfo_sub.as_deref() != Some(claims.subject().as_str()) {
            return Err(IdTokenError::UserinfoSubject.into());
        }
        if let Some(profile) = from_token {
            return Ok(profile);
        }
        let pointer = |p: &Option<String>, default: &str| p.clone().unwrap_or_else(|| default.to_owned());
        let email = text_at(json, &pointer(&self.pointers.email, "/email")).ok_or_else(|| {
            ProviderError::BadProfile("the provider did not share an e-mail address".into())
        })?;
        let email = Email::parse(&email).map_err(ProviderError::BadProfile)?;
        let claimed = match json.pointer(&pointer(&self.pointers.email_verified, "/email_verified")) {
            Some(Value::Bool(b)) => Some(*b),
            Some(Value::String(s)) => Some(s.eq_ignore_ascii_case("true")),
            _ => None,
        };
        Ok(Profile {
            subject: self.subject_of(claims)?,
            email_verified: self.email_verified(
                claims,
                email.as_str(),
                claimed,
                text_at(json, "/hd").as_deref(),
            ),
            email: Some(email),
            name: text_at(json, &pointer(&self.pointers.name, "/name")).map(|n| clip(&n, 200)),
            avatar: text_at(json, &pointer(&self.pointers.avatar, "/picture")).and_then(|a| https_url(&a)),
            username: login_name(
                text_at(json, &pointer(&self.pointers.username, "/preferred_username")).as_deref(),
            )
            .or_else(|| login_name(claims.preferred_username().map(|u| u.as_str()))),
        })
    }
}

/// `preferred_username` as a login name, unless it looks like an address: Entra's is the
/// changeable, unverified sign-in name (`admin@corp.example`), which must not pick a username.
fn login_name(preferred: Option<&str>) -> Option<String> {
    preferred.filter(|u| !u.contains('@') && !u.trim().is_empty()).map(|u| clip(u, 100))
}

/// An ID token parsed for the crate, and — when its `iss` had to be rewritten for parsing — what
/// the provider really signed.
pub(super) struct Received {
    token: IdToken,
    original: Option<jws::SchemeRestored>,
}

/// `iss` must be the expected issuer exactly (Core §3.1.3.7 step 2). A trailing slash more or less
/// is still a mismatch, but the message says that this is all it is.
fn check_iss(expected: &str, found: &str) -> Result<(), IdTokenError> {
    if found == expected {
        return Ok(());
    }
    let (expected, found_clipped) = (clip(expected, 200), clip(found, 200));
    if found.trim_end_matches('/') == expected.trim_end_matches('/') {
        return Err(IdTokenError::Issuer(format!(
            "iss is {found_clipped:?} and the issuer is {expected:?}: they differ only by a trailing slash, \
             and issuers must match exactly"
        )));
    }
    Err(IdTokenError::Issuer(format!("iss is {found_clipped:?}, expected {expected:?}")))
}

/// Steps 4–5 (the crate checks `aud` but skips `azp`): several audiences need an `azp`, an `azp`
/// must be us, and `aud` must contain us.
fn check_audience(claims: &IdTokenClaims, client_id: &str) -> Result<(), IdTokenError> {
    let audiences = claims.audiences();
    match claims.authorized_party() {
        Some(azp) if azp.as_str() != client_id => {
            return Err(IdTokenError::Audience(format!("azp is {:?}", clip(azp.as_str(), 100))))
        }
        None if audiences.len() > 1 => {
            return Err(IdTokenError::Audience("several audiences and no azp naming this client".into()))
        }
        _ => {}
    }
    if !audiences.iter().any(|a| a.as_str() == client_id) {
        return Err(IdTokenError::Audience("aud does not contain this client".into()));
    }
    Ok(())
}

/// `at_hash`, when the token carries one (Core §3.1.3.8 via §3.3.2.9): the access token is the one
/// this ID token was issued with.
fn check_at_hash(
    id_token: &IdToken,
    verifier: &IdTokenVerifier<'_, CoreJsonWebKey>,
    claims: &IdTokenClaims,
    access_token: &AccessToken,
) -> Result<(), IdTokenError> {
    let Some(expected_hash) = claims.access_token_hash() else { return Ok(()) };
    let alg = id_token.signing_alg().map_err(|e| IdTokenError::Signature(e.to_string()))?;
    let oauth_token = openidconnect::AccessToken::new(access_token.expose().to_owned());
    let ok = match id_token.signing_key(verifier) {
        Ok(key) => AccessTokenHash::from_token(&oauth_token, alg, key).ok(),
        // HMAC tokens have no JWKS key; hash by algorithm alone.
        Err(_) => hmac_at_hash(alg, access_token.expose()),
    }
    .is_some_and(|h| h == *expected_hash);
    if ok {
        Ok(())
    } else {
        Err(IdTokenError::AtHash)
    }
}

/// The tenant rule of a Microsoft configuration, for a token of tenant `tid` whose `iss` has been
/// checked already.
fn check_entra_tenant(
    tenant: &str,
    authority: &str,
    discovered: &Discovered,
    tid: &str,
) -> Result<(), IdTokenError> {
    let refuse = |why: &str| Err(IdTokenError::Tenant(why.into()));
    match tenant {
        "common" => Ok(()),
        "organizations" if tid == MS_CONSUMERS_TENANT => refuse("personal accounts are not accepted"),
        "consumers" if tid != MS_CONSUMERS_TENANT => refuse("only personal accounts are accepted"),
        "organizations" | "consumers" => Ok(()),
        // A domain name: discovery published the tenant's id issuer, and that id is the tenant.
        domain if microsoft::is_domain_tenant(domain) => {
            match entra_tenant_id(authority, &discovered.issuer) {
                Some(id) if id.eq_ignore_ascii_case(tid) => Ok(()),
                _ => refuse("the account belongs to another tenant"),
            }
        }
        specific if !tid.eq_ignore_ascii_case(specific) => refuse("the account belongs to another tenant"),
        _ => Ok(()),
    }
}

/// The signature of a token whose payload was rewritten ([`Oidc::receive`]), checked over the
/// bytes the provider signed, with the key the crate picks for it — the same rules as the crate's
/// own check: an allowed algorithm, never `none` or HMAC (Google signs with its published keys).
fn check_original_signature(
    token: &IdToken,
    verifier: &IdTokenVerifier<'_, CoreJsonWebKey>,
    allowed: &[CoreJwsSigningAlgorithm],
    original: &jws::SchemeRestored,
) -> Result<(), IdTokenError> {
    let alg = token.signing_alg().map_err(signature_error)?;
    if !allowed.contains(alg) || alg.uses_shared_secret() {
        return Err(IdTokenError::Signature("the token's algorithm is not accepted".into()));
    }
    let key = token.signing_key(verifier).map_err(signature_error)?;
    key.verify_signature(alg, original.original_signing_input.as_bytes(), &original.signature)
        .map_err(signature_error)
}

fn signature_error(err: SignatureVerificationError) -> IdTokenError {
    match err {
        SignatureVerificationError::NoMatchingKey => {
            IdTokenError::Signature("no key in the provider's key set matches the token".into())
        }
        e => IdTokenError::Signature(clip(&e.to_string(), 200)),
    }
}

/// at_hash for HMAC-signed tokens: the left half of the hash named by the algorithm.
fn hmac_at_hash(alg: &CoreJwsSigningAlgorithm, token: &str) -> Option<AccessTokenHash> {
    use sha2::Digest;
    let digest: Vec<u8> = match alg {
        CoreJwsSigningAlgorithm::HmacSha256 => sha2::Sha256::digest(token.as_bytes()).to_vec(),
        CoreJwsSigningAlgorithm::HmacSha384 => sha2::Sha384::digest(token.as_bytes()).to_vec(),
        CoreJwsSigningAlgorithm::HmacSha512 => sha2::Sha512::digest(token.as_bytes()).to_vec(),
        _ => return None,
    };
    let half = &digest[..digest.len() / 2];
    Some(AccessTokenHash::new(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(half)))
}

fn map_verification_error(err: ClaimsVerificationError) -> IdTokenError {
    let text = clip(&err.to_string(), 200);
    match err {
        ClaimsVerificationError::Expired(_) => IdTokenError::Time(text),
        ClaimsVerificationError::InvalidAudience(_) => IdTokenError::Audience(text),
        ClaimsVerificationError::InvalidIssuer(_) => IdTokenError::Issuer(text),
        ClaimsVerificationError::InvalidNonce(_) => IdTokenError::Nonce,
        ClaimsVerificationError::InvalidSubject(_) => IdTokenError::Malformed(text),
        ClaimsVerificationError::SignatureVerification(e) => signature_error(e),
        _ => IdTokenError::Malformed(text),
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::*;
    use crate::config::UserinfoPointers;
    use crate::domain::Issuer;
    use serde_json::json;

    /// Claims as the crate reads them from a token's payload.
    fn claims(value: Value) -> IdTokenClaims {
        serde_json::from_value(value).unwrap()
    }

    fn google_claims(email: &str, email_verified: bool, hd: Option<&str>) -> IdTokenClaims {
        let mut c = json!({
            "iss": "https://accounts.google.com", "aud": "c", "exp": 2_000_000_000, "iat": 1_000_000_000,
            "sub": "g-1", "email": email, "email_verified": email_verified,
        });
        if let Some(hd) = hd {
            c["hd"] = json!(hd);
        }
        claims(c)
    }

    #[test]
    fn entra_domain_tenant_accepts_the_tenant_id_issuer_only() {
        let ms = microsoft("contoso.com");
        let tid = "72f988bf-86f1-41af-91ab-2d7cd011db47";
        let d = ms.read_document(&doc(&format!("https://login.microsoftonline.com/{tid}/v2.0"))).unwrap();
        assert_eq!(entra_tenant_id("https://login.microsoftonline.com", &d.issuer), Some(tid));
        assert!(check_entra_tenant("contoso.com", "https://login.microsoftonline.com", &d, tid).is_ok());
        let other = "11111111-2222-3333-4444-555555555555";
        assert!(matches!(
            check_entra_tenant("contoso.com", "https://login.microsoftonline.com", &d, other),
            Err(IdTokenError::Tenant(_))
        ));
        // Not a tenant id where one belongs, another authority, or the template: refused.
        for published in [
            "https://login.microsoftonline.com/fabrikam.com/v2.0".to_owned(),
            format!("https://evil.example/{tid}/v2.0"),
            format!("https://login.microsoftonline.com/{tid}/v2.0/x"),
            "https://login.microsoftonline.com/{tenantid}/v2.0".to_owned(),
        ] {
            assert!(ms.read_document(&doc(&published)).is_err(), "{published}");
        }
    }

    #[test]
    fn id_token_iss_is_compared_exactly_and_says_when_only_a_slash_differs() {
        assert!(check_iss("https://tenant.auth0.com/", "https://tenant.auth0.com/").is_ok());
        let err = check_iss("https://tenant.auth0.com/", "https://tenant.auth0.com").unwrap_err().to_string();
        assert!(err.contains("differ only by a trailing slash"), "{err}");
        let err = check_iss("https://idp.example", "https://evil.example").unwrap_err().to_string();
        assert!(err.contains("issued by someone else") && !err.contains("trailing slash"), "{err}");
        assert!(check_iss("https://idp.example", "https://IDP.example").is_err());
    }

    #[test]
    fn algorithm_allowlist_never_has_none_and_hmac_only_when_asked() {
        let strict = generic("https://idp.example");
        let mut d = doc("https://idp.example");
        d["id_token_signing_alg_values_supported"] = json!(["RS256", "HS256", "none", "ES256"]);
        let d = strict.read_document(&d).unwrap();
        assert_eq!(
            strict.allowed_algorithms(&d),
            vec![CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256, CoreJwsSigningAlgorithm::EcdsaP256Sha256]
        );
        let hmac = Oidc::new(
            Issuer::parse("https://idp.example").unwrap(),
            OidcQuirk::None,
            true,
            UserinfoPointers::default(),
        )
        .unwrap();
        assert!(hmac.allowed_algorithms(&d).contains(&CoreJwsSigningAlgorithm::HmacSha256));
    }

    #[test]
    fn google_email_is_verified_only_for_gmail_and_workspace() {
        let g = oidc("https://accounts.google.com", OidcQuirk::Google);
        let verified = |c: IdTokenClaims| g.profile_from_claims(&c).unwrap().unwrap().email_verified;
        assert!(verified(google_claims("someone@gmail.com", true, None)));
        assert!(verified(google_claims("someone@corp.example", true, Some("corp.example"))));
        assert!(!verified(google_claims("someone@example.com", true, None)));
        assert!(!verified(google_claims("someone@gmail.com", false, None)));
        assert!(!verified(google_claims("someone@corp.example", false, Some("corp.example"))));
        // The same address from any other provider keeps the plain rule.
        let other = generic("https://accounts.google.com");
        assert!(
            other
                .profile_from_claims(&google_claims("someone@example.com", true, None))
                .unwrap()
                .unwrap()
                .email_verified
        );
    }

    #[test]
    fn google_rule_applies_to_an_address_from_userinfo() {
        let g = oidc("https://accounts.google.com", OidcQuirk::Google);
        let c = claims(json!({
            "iss": "https://accounts.google.com", "aud": "c", "exp": 2_000_000_000, "iat": 1_000_000_000,
            "sub": "g-1",
        }));
        let from = |userinfo: Value| g.merge_userinfo(&c, None, &userinfo).unwrap().email_verified;
        assert!(from(json!({"sub": "g-1", "email": "a@gmail.com", "email_verified": true})));
        assert!(from(
            json!({"sub": "g-1", "email": "a@corp.example", "email_verified": true, "hd": "corp.example"})
        ));
        assert!(!from(json!({"sub": "g-1", "email": "a@example.com", "email_verified": true})));
        assert!(!from(json!({"sub": "g-1", "email": "a@gmail.com", "email_verified": false})));
        // The token's hd counts for a userinfo address too.
        let with_hd = claims(json!({
            "iss": "https://accounts.google.com", "aud": "c", "exp": 2_000_000_000, "iat": 1_000_000_000,
            "sub": "g-1", "hd": "corp.example",
        }));
        let userinfo = json!({"sub": "g-1", "email": "a@corp.example", "email_verified": true});
        assert!(g.merge_userinfo(&with_hd, None, &userinfo).unwrap().email_verified);
    }

    #[test]
    fn slack_identities_are_per_workspace() {
        let slack_claims = |team: Option<&str>| {
            let mut c = json!({
                "iss": "https://slack.com", "aud": "c", "exp": 2_000_000_000, "iat": 1_000_000_000,
                "sub": "U1", "email": "a@example.com", "email_verified": true,
                "https://slack.com/team_name": "Example", "https://slack.com/user_id": "U1",
            });
            if let Some(team) = team {
                c["https://slack.com/team_id"] = json!(team);
            }
            claims(c)
        };
        let any = oidc("https://slack.com", OidcQuirk::Slack { team: None });
        let profile = any.profile_from_claims(&slack_claims(Some("T1"))).unwrap().unwrap();
        assert_eq!(profile.subject.as_str(), "T1:U1");
        assert!(profile.email_verified, "read as claimed; believed only when trusted");
        assert!(matches!(any.profile_from_claims(&slack_claims(None)), Err(IdTokenError::Tenant(_))));
        let pinned = oidc("https://slack.com", OidcQuirk::Slack { team: Some("T1".into()) });
        assert!(pinned.profile_from_claims(&slack_claims(Some("T1"))).is_ok());
        assert!(matches!(
            pinned.profile_from_claims(&slack_claims(Some("T2"))),
            Err(IdTokenError::Tenant(_))
        ));
        // Userinfo (when the token has no address) keys the identity the same way.
        let no_email = claims(json!({
            "iss": "https://slack.com", "aud": "c", "exp": 2_000_000_000, "iat": 1_000_000_000,
            "sub": "U1", "https://slack.com/team_id": "T1",
        }));
        let userinfo = json!({"sub": "U1", "email": "a@example.com", "email_verified": true});
        assert_eq!(any.merge_userinfo(&no_email, None, &userinfo).unwrap().subject.as_str(), "T1:U1");
    }
}
