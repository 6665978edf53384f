//! Discord: OAuth 2.0, the account from `/users/@me` (scopes `identify email`).
//!
//! The address is verified only when the account's `verified` flag is a real `true` (Discord sets
//! it once the person followed the link it mailed); an account without an address (a phone-only
//! one) has no `email` and cannot log in. The identity is the numeric snowflake `id`, never the
//! `username`, which people change. Discord sends no avatar URL, only a hash: the URL is built on
//! its CDN from the id and the hash (`a_` hashes are animated, served as GIF), and only from a
//! hash that looks like one, so a provider's answer can never point it elsewhere. The display name
//! is `global_name`, else the username.
//!
//! Register at <https://discord.com/developers/applications> ("New Application", then OAuth2:
//! add the redirect URI).

use super::generic::{get_json, profile_from_json};
use super::{Profile, UserinfoPointers};
use crate::config::{ProviderConfig, ProviderKind};
use crate::domain::secret::AccessToken;
use crate::domain::{clip, text_at, ProviderName};
use crate::oauth::http::{ProviderHttp, Step};
use crate::oauth::ProviderError;
use serde_json::Value;
use url::Url;

/// Discord's endpoints, scopes and where `/users/@me` keeps each field.
pub fn defaults(name: ProviderName) -> Option<ProviderConfig> {
    let kind = ProviderKind::OAuth2 {
        authorize_url: Url::parse("https://discord.com/oauth2/authorize").ok()?,
        token_url: Url::parse("https://discord.com/api/oauth2/token").ok()?,
        userinfo_url: Url::parse("https://discord.com/api/users/@me").ok()?,
        userinfo: pointers(),
    };
    let mut config = ProviderConfig::new(name, Some(super::Preset::Discord), "Discord", kind);
    config.scopes = vec!["identify".into(), "email".into()];
    Some(config)
}

/// Where `/users/@me` keeps each field (the avatar is built, see the module doc).
fn pointers() -> UserinfoPointers {
    UserinfoPointers {
        email: Some("/email".into()),
        email_verified: Some("/verified".into()),
        subject: Some("/id".into()),
        name: Some("/global_name".into()),
        avatar: None,
        username: Some("/username".into()),
    }
}

/// Reads `/users/@me`.
pub async fn fetch_profile(
    http: &ProviderHttp,
    user_url: &Url,
    pointers: &UserinfoPointers,
    token: &AccessToken,
) -> Result<Profile, ProviderError> {
    let user = get_json(http, Step::Userinfo, user_url, token).await?;
    profile_from(&user, pointers)
}

/// The profile in a `/users/@me` answer.
pub fn profile_from(user: &Value, pointers: &UserinfoPointers) -> Result<Profile, ProviderError> {
    let mut profile = profile_from_json(user, pointers)?;
    if profile.name.is_none() {
        profile.name = profile.username.as_deref().map(|u| clip(u, 200));
    }
    profile.avatar = avatar_url(user);
    Ok(profile)
}

/// `https://cdn.discordapp.com/avatars/{id}/{hash}.png` (`.gif` for an animated `a_` hash), or
/// nothing when the account has no avatar or the id or hash are not what Discord sends.
fn avatar_url(user: &Value) -> Option<String> {
    let id = text_at(user, "/id")?;
    let hash = user.get("avatar")?.as_str()?;
    let digits = hash.strip_prefix("a_").unwrap_or(hash);
    let plausible_id = !id.is_empty() && id.len() <= 24 && id.bytes().all(|b| b.is_ascii_digit());
    let plausible_hash = (16..=64).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_hexdigit());
    if !(plausible_id && plausible_hash) {
        return None;
    }
    let extension = if hash.starts_with("a_") { "gif" } else { "png" };
    Some(format!("https://cdn.discordapp.com/avatars/{id}/{hash}.{extension}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn nelly() -> Value {
        json!({"id": "80351110224678912", "username": "nelly", "global_name": "Nelly",
               "avatar": "8342729096ea3675442027381ff50dfe", "verified": true, "email": "nelly@example.com"})
    }

    #[test]
    fn reads_the_account_and_builds_the_avatar() {
        let p = profile_from(&nelly(), &pointers()).unwrap();
        assert_eq!(p.subject.as_str(), "80351110224678912");
        assert_eq!((p.address(), p.email_verified), ("nelly@example.com", true));
        assert_eq!(p.name.as_deref(), Some("Nelly"));
        assert_eq!(p.username.as_deref(), Some("nelly"));
        assert_eq!(
            p.avatar.as_deref(),
            Some("https://cdn.discordapp.com/avatars/80351110224678912/8342729096ea3675442027381ff50dfe.png")
        );
    }

    #[test]
    fn animated_hashes_are_gifs_and_odd_hashes_no_avatar() {
        let mut user = nelly();
        user["avatar"] = json!("a_1269e74af4df7417b13759eae50c83dc");
        assert!(avatar_url(&user).unwrap().ends_with("/a_1269e74af4df7417b13759eae50c83dc.gif"));
        for odd in [json!(null), json!("../../evil.example/x"), json!("zz"), json!(42)] {
            user["avatar"] = odd.clone();
            assert_eq!(avatar_url(&user), None, "{odd}");
        }
    }

    #[test]
    fn unverified_or_missing_addresses() {
        let mut user = nelly();
        user["verified"] = json!(false);
        assert!(!profile_from(&user, &pointers()).unwrap().email_verified);
        user["verified"] = json!("yes");
        assert!(!profile_from(&user, &pointers()).unwrap().email_verified);
        user.as_object_mut().unwrap().remove("email");
        assert!(profile_from(&user, &pointers()).is_err(), "no address, no login");
    }

    #[test]
    fn the_username_names_an_account_without_a_global_name() {
        let mut user = nelly();
        user["global_name"] = json!(null);
        assert_eq!(profile_from(&user, &pointers()).unwrap().name.as_deref(), Some("nelly"));
    }
}
