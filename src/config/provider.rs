//! One `[providers.NAME]` table into a provider's configuration, with its preset's defaults; and
//! the rule that keeps the development provider off a deployment.

use super::walk::Walk;
use super::{known, ProviderConfig, ResponseMode, ServerConfig, TokenAuth};
use crate::domain::secret::ClientSecret;
use crate::domain::{Issuer, ProviderName};
use crate::providers::Preset;
use figment::value::{Dict, Value};
use std::collections::BTreeMap;
use url::Url;

impl Walk<'_> {
    /// The development provider believes any address typed into it, so it must never be
    /// reachable by anyone else: refused with a deployment's `public_url` (https or not
    /// loopback) or a non-loopback bind address, unless forced; and never switched on by
    /// default there.
    pub(super) fn dev_provider_exposure(
        &mut self,
        server: &ServerConfig,
        providers: &[ProviderConfig],
        implicit: bool,
        table: Option<&Value>,
    ) {
        let exposed = crate::providers::dev::exposure(server.public_url.as_ref(), server.bind);
        let Some(why) = exposed else { return };
        if implicit {
            self.problems.push(format!(
                "configuration: `providers`: no login provider is configured, and the development provider \
                 (which believes any address typed into it) is only enabled by default for a local try-out: \
                 {why}. Configure a provider (for example GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET, or a \
                 [providers.NAME] table)"
            ));
            return;
        }
        for p in
            providers.iter().filter(|p| p.preset == Some(Preset::Dev) && !p.dangerously_allow_non_loopback)
        {
            let key = format!("providers.{}", p.name);
            let value = table.and_then(|t| t.as_dict()).and_then(|d| d.get(p.name.as_str()));
            self.problem(
                value,
                &key,
                format!(
                    "the development provider believes any address typed into it, so it only runs locally: \
                     {why}. Remove [{key}] (it is for development only), or set \
                     `{key}.dangerously_allow_non_loopback = true` if you really mean it"
                ),
            );
        }
    }

    pub(super) fn providers(&mut self, value: Option<&Value>) -> Vec<ProviderConfig> {
        let Some(dict) = self.table(value, "providers") else {
            return Vec::new();
        };
        let mut out = BTreeMap::new();
        for (name, value) in dict {
            let key = format!("providers.{name}");
            let parsed_name = match ProviderName::parse(name) {
                Ok(n) => n,
                Err(e) => {
                    self.problem(Some(value), &key, e);
                    continue;
                }
            };
            let Some(table) = self.table(Some(value), &key) else {
                continue;
            };
            if let Some(p) = self.provider(parsed_name, value, table, &key) {
                out.insert(name.clone(), p);
            }
        }
        out.into_values().collect()
    }

    fn provider(
        &mut self,
        name: ProviderName,
        value: &Value,
        table: &Dict,
        key: &str,
    ) -> Option<ProviderConfig> {
        self.unknown_keys(table, key, known("providers.*"));
        let t = Some(table);
        let preset = match self.text(t, key, "preset") {
            Some(p) => match Preset::from_name(&p) {
                Some(preset) => Some(preset),
                None => {
                    self.problem(
                        table.get("preset"),
                        &format!("{key}.preset"),
                        format!("unknown preset {p:?} (known: {})", Preset::NAMES.join(", ")),
                    );
                    return None;
                }
            },
            None => Preset::from_name(name.as_str()),
        };
        let mut config = match preset {
            Some(preset) => preset.defaults(name),
            None => {
                let display = title_case(name.as_str());
                ProviderConfig::blank(name, None, &display)
            }
        };
        let problems_before = self.problems.len();

        if let Some(v) = self.text(t, key, "display_name") {
            config.display_name = v;
        }
        if let Some(v) = self.text(t, key, "client_id") {
            config.client_id = v;
        }
        if let Some(v) = self.text(t, key, "client_secret") {
            config.client_secret = Some(ClientSecret::new(v));
        }
        for (field, slot) in [
            ("authorize_url", &mut config.authorize_url),
            ("token_url", &mut config.token_url),
            ("userinfo_url", &mut config.userinfo_url),
        ] {
            if let Some(url) = self.endpoint(t, key, field) {
                *slot = Some(url);
            }
        }
        if let Some(scopes) = self.scopes(table.get("scopes"), &format!("{key}.scopes")) {
            config.scopes = scopes;
        }
        if let Some(auth) = self.named(t, key, "token_auth", &TokenAuth::NAMES, TokenAuth::from_name) {
            config.token_auth = Some(auth);
        }
        let explicit_issuer = self.issuer(t, key);
        if let Some(issuer) = &explicit_issuer {
            if preset == Some(Preset::Github) || preset == Some(Preset::Dev) {
                self.problem(
                    table.get("issuer"),
                    &format!("{key}.issuer"),
                    "this preset does not use OpenID Connect discovery",
                );
            } else {
                config.issuer = Some(issuer.clone());
            }
        }
        if let Some(tenant) = self.text(t, key, "tenant") {
            if preset != Some(Preset::Microsoft) {
                self.problem(
                    table.get("tenant"),
                    &format!("{key}.tenant"),
                    "only applies to preset = \"microsoft\"",
                );
            } else if !is_tenant(&tenant) {
                self.problem(
                    table.get("tenant"),
                    &format!("{key}.tenant"),
                    "must be common, organizations, consumers, a tenant id or a domain",
                );
            } else {
                config.tenant = Some(tenant);
            }
        }
        if preset == Some(Preset::Microsoft) {
            match &explicit_issuer {
                // An explicit issuer (national cloud, tests) names its tenant in its path.
                Some(_) if !table.contains_key("tenant") => config.tenant = None,
                Some(_) => {}
                None => {
                    let tenant = config.tenant.clone().unwrap_or_else(|| "common".into());
                    config.issuer =
                        Issuer::parse(&format!("https://login.microsoftonline.com/{tenant}/v2.0")).ok();
                    config.tenant = Some(tenant);
                }
            }
        }
        if let Some(v) = self.boolean(t, key, "allow_hmac_id_tokens") {
            config.allow_hmac_id_tokens = v;
        }
        if let Some(mode) = self.named(t, key, "response_mode", &ResponseMode::NAMES, ResponseMode::from_name)
        {
            config.response_mode = mode;
        }
        if config.issuer.is_some() || preset == Some(Preset::Dev) {
            // OpenID Connect: `openid` must be requested (Core §3.1.2.1).
            if config.scopes.is_empty() {
                config.scopes = ["openid", "email", "profile"].map(String::from).to_vec();
            } else if !config.scopes.iter().any(|s| s == "openid") {
                config.scopes.insert(0, "openid".into());
            }
        }
        if preset == Some(Preset::Microsoft) && !config.scopes.iter().any(|s| s == "profile") {
            // Entra puts `oid` (half of the identity key, see providers::microsoft) in the ID
            // token only with the `profile` scope; without it every login would fail.
            config.scopes.push("profile".into());
        }
        if config.issuer.is_some() {
            for field in ["authorize_url", "token_url", "userinfo_url"] {
                if table.contains_key(field) {
                    self.problem(
                        table.get(field),
                        &format!("{key}.{field}"),
                        "comes from OpenID Connect discovery when issuer is set; remove one of them",
                    );
                }
            }
        }
        if let Some(v) = self.boolean(t, key, "dangerously_allow_non_loopback") {
            if preset != Some(Preset::Dev) {
                self.problem(
                    table.get("dangerously_allow_non_loopback"),
                    &format!("{key}.dangerously_allow_non_loopback"),
                    "only applies to the development provider (preset = \"dev\")",
                );
            }
            config.dangerously_allow_non_loopback = v;
        }
        if preset == Some(Preset::Gitlab)
            && !config.issuer.as_ref().is_some_and(|i| is_gitlab_com(i.as_str()))
        {
            // A self-hosted GitLab's administrators decide what counts as verified there.
            config.trust_email_verified = false;
        }
        if let Some(v) = self.boolean(t, key, "trust_email_verified") {
            if preset == Some(Preset::Dev) && v {
                self.problem(
                    table.get("trust_email_verified"),
                    &format!("{key}.trust_email_verified"),
                    "the development provider believes anything typed into it; its addresses never count for linking",
                );
            }
            config.trust_email_verified = v && preset != Some(Preset::Dev);
        }
        let userinfo_key = format!("{key}.userinfo");
        if let Some(ui) = self.table(table.get("userinfo"), &userinfo_key) {
            self.unknown_keys(ui, &userinfo_key, known("providers.*.userinfo"));
            let p = &mut config.userinfo;
            for (field, slot) in [
                ("email", &mut p.email),
                ("email_verified", &mut p.email_verified),
                ("subject", &mut p.subject),
                ("name", &mut p.name),
                ("avatar", &mut p.avatar),
                ("username", &mut p.username),
            ] {
                if let Some(pointer) = self.text(Some(ui), &userinfo_key, field) {
                    if is_json_pointer(&pointer) {
                        *slot = Some(pointer);
                    } else {
                        self.problem(
                            ui.get(field),
                            &format!("{userinfo_key}.{field}"),
                            format!("{pointer:?} is not a JSON Pointer (RFC 6901), e.g. \"/email\""),
                        );
                    }
                }
            }
        }
        if self.problems.len() > problems_before {
            return None;
        }

        // What every provider must end up with, from its preset or from the table.
        let mut missing = Vec::new();
        let oidc = config.issuer.is_some();
        if preset != Some(Preset::Dev) {
            if config.client_id.is_empty() {
                missing.push("client_id");
            }
            if config.client_secret.as_ref().is_none_or(|s| s.expose().is_empty()) {
                missing.push("client_secret");
            }
        }
        if preset != Some(Preset::Dev) && !oidc {
            for (field, value) in [
                ("authorize_url", config.authorize_url.is_some()),
                ("token_url", config.token_url.is_some()),
                ("userinfo_url", config.userinfo_url.is_some()),
                ("userinfo.email", config.userinfo.email.is_some()),
                ("userinfo.subject", config.userinfo.subject.is_some()),
            ] {
                if !value {
                    missing.push(field);
                }
            }
        }
        for field in missing {
            let hint = match field {
                "client_id" | "client_secret" => format!(
                    " (set it in the file or as {}_{})",
                    config.name.as_str().to_uppercase().replace('-', "_"),
                    field.to_uppercase()
                ),
                _ => String::new(),
            };
            self.problems.push(format!("{}: `{key}.{field}`: missing{hint}", self.source(value)));
        }
        (self.problems.len() == problems_before).then_some(config)
    }

    fn scopes(&mut self, value: Option<&Value>, key: &str) -> Option<Vec<String>> {
        let value = value?;
        let scopes: Option<Vec<String>> = match value {
            Value::String(_, s) => Some(s.split_whitespace().map(str::to_owned).collect()),
            Value::Array(_, items) => items.iter().map(|i| i.as_str().map(str::to_owned)).collect(),
            _ => None,
        };
        match scopes {
            Some(s) if s.iter().all(|s| is_scope_token(s)) => Some(s),
            _ => {
                self.problem(Some(value), key, "must be a list of scope names without spaces or quotes");
                None
            }
        }
    }
}

/// A Microsoft tenant: a well-known alias, a GUID or a verified domain name.
fn is_tenant(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )` (RFC 6749 §3.3).
fn is_scope_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

/// RFC 6901: empty (the whole document) or `/`-separated tokens with `~0`/`~1` escapes.
fn is_json_pointer(s: &str) -> bool {
    if s.is_empty() {
        return true;
    }
    if !s.starts_with('/') {
        return false;
    }
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '~' && !matches!(chars.next(), Some('0' | '1')) {
            return false;
        }
    }
    true
}

fn title_case(name: &str) -> String {
    let mut chars = name.chars();
    chars.next().map_or_else(String::new, |c| c.to_uppercase().chain(chars).collect())
}

/// True for gitlab.com's own issuer (its e-mail verification is GitLab's, not an instance admin's).
fn is_gitlab_com(issuer: &str) -> bool {
    Url::parse(issuer)
        .is_ok_and(|u| u.scheme() == "https" && u.host_str() == Some("gitlab.com") && u.path() == "/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_and_scopes() {
        assert!(is_json_pointer("/a~1b/0"));
        assert!(!is_json_pointer("/a~2"));
        assert!(!is_json_pointer("a"));
        assert!(is_scope_token("user:email"));
        assert!(!is_scope_token("a\"b"));
    }
}
