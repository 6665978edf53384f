//! Any OAuth 2.0 provider whose userinfo endpoint returns JSON: the profile is read with the
//! configured JSON Pointers (RFC 6901), the way the seed read `json['email']`.

use super::{Profile, UserinfoPointers};
use crate::domain::secret::AccessToken;
use crate::domain::{clip, https_url, text_at, Email, Subject};
use crate::oauth::http::{ProviderHttp, Step};
use crate::oauth::ProviderError;
use serde_json::Value;
use url::Url;

/// One userinfo call, then the pointers.
pub async fn fetch_profile(
    http: &ProviderHttp,
    url: &Url,
    pointers: &UserinfoPointers,
    token: &AccessToken,
) -> Result<Profile, ProviderError> {
    let json = get_json(http, Step::Userinfo, url, token).await?;
    profile_from_json(&json, pointers)
}

/// GET with the bearer token; a non-2xx status or a non-JSON body is an error.
pub async fn get_json(
    http: &ProviderHttp,
    step: Step,
    url: &Url,
    token: &AccessToken,
) -> Result<Value, ProviderError> {
    let result = async {
        let response = http.send(step, http.get_with_bearer(url, token.expose())).await?;
        if !response.status.is_success() {
            return Err(ProviderError::Status { step, status: response.status.as_u16() });
        }
        response.json(step)
    }
    .await;
    http.observe(step, result)
}

/// GET `url` with `query` added (the fields a provider returns only when asked: Facebook's
/// `fields`, X's `user.fields`), with the bearer token; as [`get_json`].
pub async fn get_json_asking(
    http: &ProviderHttp,
    url: &Url,
    query: &[(&str, &str)],
    token: &AccessToken,
) -> Result<Value, ProviderError> {
    let mut url = url.clone();
    url.query_pairs_mut().extend_pairs(query);
    get_json(http, Step::Userinfo, &url, token).await
}

/// The account at `user_url` and its addresses beside it at `{user_url}/emails` (with `query`),
/// as GitHub and Bitbucket keep them; `provider` names it in the error for an API URL that cannot
/// have that path.
pub async fn get_user_and_emails(
    http: &ProviderHttp,
    user_url: &Url,
    token: &AccessToken,
    query: &[(&str, &str)],
    provider: &str,
) -> Result<(Value, Value), ProviderError> {
    let user = get_json(http, Step::Userinfo, user_url, token).await?;
    let emails_url = emails_url(user_url, query).ok_or_else(|| {
        ProviderError::BadProfile(format!("the {provider} API URL cannot have an /emails path"))
    })?;
    let emails = get_json(http, Step::Emails, &emails_url, token).await?;
    Ok((user, emails))
}

/// `{user_url}/emails?query`.
pub fn emails_url(user_url: &Url, query: &[(&str, &str)]) -> Option<Url> {
    let mut url = user_url.clone();
    url.path_segments_mut().ok()?.pop_if_empty().push("emails");
    if !query.is_empty() {
        url.query_pairs_mut().extend_pairs(query);
    }
    Some(url)
}

/// In a list of address entries, the one whose `primary` *and* `verified` flags are a real
/// `true`; nothing else will do (an entry the person added but never confirmed can be anyone's).
pub fn primary_verified_address(entries: &[Value], primary: &str, verified: &str) -> Option<Email> {
    entries.iter().find_map(|entry| {
        let is = |flag: &str| entry.get(flag).and_then(Value::as_bool) == Some(true);
        let address = entry.get("email").and_then(Value::as_str)?;
        (is(primary) && is(verified)).then(|| Email::parse(address).ok()).flatten()
    })
}

/// Reads a profile out of a userinfo document, which must hold an address.
pub fn profile_from_json(json: &Value, pointers: &UserinfoPointers) -> Result<Profile, ProviderError> {
    let profile = profile_maybe_without_email(json, pointers)?;
    if profile.email.is_none() {
        return Err(ProviderError::BadProfile("the provider did not share an e-mail address".into()));
    }
    Ok(profile)
}

/// Reads a profile out of a userinfo document whose address may be missing (Facebook accounts
/// made with a phone number, X which has none): the login then goes on without one, and never
/// links. An address that is there but malformed is still an error.
pub fn profile_maybe_without_email(
    json: &Value,
    pointers: &UserinfoPointers,
) -> Result<Profile, ProviderError> {
    let subject_pointer = pointers.subject.as_deref().unwrap_or("/sub");
    let subject = text_at(json, subject_pointer)
        .ok_or_else(|| ProviderError::BadProfile(format!("no account id at {subject_pointer}")))?;
    let subject = Subject::parse(&subject).map_err(ProviderError::BadProfile)?;
    let email_pointer = pointers.email.as_deref().unwrap_or("/email");
    let email = text_at(json, email_pointer)
        .map(|e| Email::parse(&e).map_err(ProviderError::BadProfile))
        .transpose()?;
    // Only a real `true` (or the string "true", which some providers send) counts as verified.
    let email_verified = email.is_some()
        && pointers.email_verified.as_deref().is_some_and(|p| match json.pointer(p) {
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
            _ => false,
        });
    Ok(Profile {
        subject,
        email,
        email_verified,
        name: pointers.name.as_deref().and_then(|p| text_at(json, p)).map(|n| clip(&n, 200)),
        avatar: pointers.avatar.as_deref().and_then(|p| text_at(json, p)).and_then(|a| https_url(&a)),
        username: pointers.username.as_deref().and_then(|p| text_at(json, p)).map(|u| clip(&u, 100)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pointers() -> UserinfoPointers {
        UserinfoPointers {
            email: Some("/email".into()),
            email_verified: Some("/email_verified".into()),
            subject: Some("/id".into()),
            name: Some("/name".into()),
            avatar: Some("/pic".into()),
            username: None,
        }
    }

    #[test]
    fn reads_a_profile() {
        let json = json!({"id": 42, "email": "a@b.c", "email_verified": true, "name": "A", "pic": "javascript:alert(1)"});
        let p = profile_from_json(&json, &pointers()).unwrap();
        assert_eq!(p.subject.as_str(), "42");
        assert!(p.email_verified);
        assert_eq!(p.avatar, None);
    }

    #[test]
    fn unverified_unless_the_provider_says_so() {
        let json = json!({"id": "x", "email": "a@b.c", "email_verified": "yes"});
        assert!(!profile_from_json(&json, &pointers()).unwrap().email_verified);
    }

    #[test]
    fn no_subject_or_email_is_an_error() {
        assert!(profile_from_json(&json!({"email": "a@b.c"}), &pointers()).is_err());
        assert!(profile_from_json(&json!({"id": 1}), &pointers()).is_err());
        assert!(profile_from_json(&json!([1, 2]), &pointers()).is_err());
    }
}
