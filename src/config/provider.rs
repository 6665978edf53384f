//! One `[providers.NAME]` table into a provider's configuration, with its preset's defaults; and
//! the rule that keeps the development provider off a deployment.
//!
//! A table is read in two steps. First every key is read as its type ([`Settings`]), with the
//! rules that concern one key (a tenant only for Microsoft, no issuer for GitHub). Then the preset's
//! [`ProviderConfig`] (or, without a preset, what the table describes) takes the settings, and its
//! [`ProviderKind`] is complete or the table is refused with what is missing. Missing keys are
//! reported only for a table without other problems: a refused URL is not also "missing".

use super::client_key::KeyFiles;
use super::walk::Walk;
use super::{
    known, AuthorizeParams, ProviderConfig, ProviderKind, ResponseMode, ServerConfig, TokenAuth,
    UserinfoPointers,
};
use crate::domain::secret::ClientSecret;
use crate::domain::{Issuer, ProviderName};
use crate::oauth::jwt::Algorithm;
use crate::providers::{auth0, github, gitlab, keycloak, microsoft, okta, slack, Preset, OIDC_SCOPES};
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
        for p in providers.iter().filter(|p| p.is_dev() && !p.dev_allows_non_loopback()) {
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
        let preset = self.preset(table, key, &name)?;
        let problems_before = self.problems.len();
        let settings = self.settings(table, key, preset);

        let base = match preset {
            Some(preset) => Some(self.preset_defaults(preset, name.clone(), value, key)?),
            None => None,
        };
        let discovered = settings.issuer.is_some()
            || base.as_ref().is_some_and(|b| matches!(b.kind, ProviderKind::Oidc { .. }));
        if discovered {
            self.endpoints_come_from_discovery(table, key);
        }
        let token_auth = settings.token_auth.or(base.as_ref().and_then(|b| b.token_auth));
        let client_key = self.client_key(table, key, preset, token_auth, &settings.key_files);
        if preset == Some(Preset::Apple)
            && client_key.as_ref().is_some_and(|k| k.algorithm() != Algorithm::Es256)
        {
            self.problem(
                table.get("private_key_file"),
                &format!("{key}.private_key_file"),
                "Sign in with Apple's keys are EC P-256 (the .p8 file Apple lets you download once)",
            );
        }
        if self.problems.len() > problems_before {
            return None;
        }

        // What every provider must end up with, from its preset or from the table.
        let kind = match &base {
            Some(base) => with_settings(base.kind.clone(), preset, &settings),
            None => described(&settings),
        };
        let mut missing = missing_credentials(preset, &settings, base.as_ref(), token_auth);
        missing.extend(kind.as_ref().err().into_iter().flatten());
        if !missing.is_empty() {
            self.missing(value, key, &name, missing);
            return None;
        }
        let Ok(kind) = kind else { return None };
        let mut config = match base {
            Some(base) => ProviderConfig { kind, ..base },
            None => {
                let display = title_case(name.as_str());
                ProviderConfig::new(name, None, &display, kind)
            }
        };
        settings.apply(&mut config);
        config.client_key = client_key.map(std::sync::Arc::new);
        Some(config)
    }

    /// An OpenID Connect provider's endpoints are the discovery document's; the table may not
    /// name others.
    fn endpoints_come_from_discovery(&mut self, table: &Dict, key: &str) {
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

    /// The table's `preset`, else the preset named like the table (`[providers.google]`), else
    /// none. An unknown preset stops the table here: nothing else about it can be judged.
    fn preset(&mut self, table: &Dict, key: &str, name: &ProviderName) -> Option<Option<Preset>> {
        let Some(named) = self.text(Some(table), key, "preset") else {
            return Some(Preset::from_name(name.as_str()));
        };
        if let Some(preset) = Preset::from_name(&named) {
            return Some(Some(preset));
        }
        self.problem(
            table.get("preset"),
            &format!("{key}.preset"),
            format!("unknown preset {named:?} (known: {})", Preset::NAMES.join(", ")),
        );
        None
    }

    /// The preset's configuration; a preset whose own constants no longer parse is a bug, reported
    /// like a problem rather than panicked on.
    fn preset_defaults(
        &mut self,
        preset: Preset,
        name: ProviderName,
        value: &Value,
        key: &str,
    ) -> Option<ProviderConfig> {
        let defaults = preset.defaults(name);
        if defaults.is_none() {
            self.problem(
                Some(value),
                key,
                "this preset's built-in defaults are invalid (a bug in loginwith)",
            );
        }
        defaults
    }

    /// Every key of the table, each read as its type, with the rules that concern one key.
    fn settings(&mut self, table: &Dict, key: &str, preset: Option<Preset>) -> Settings {
        let t = Some(table);
        let mut s = Settings {
            display_name: self.text(t, key, "display_name"),
            client_id: self.text(t, key, "client_id"),
            client_secret: self.text(t, key, "client_secret").map(ClientSecret::new),
            authorize_url: self.endpoint(t, key, "authorize_url"),
            token_url: self.endpoint(t, key, "token_url"),
            userinfo_url: self.endpoint(t, key, "userinfo_url"),
            base_url: self.endpoint(t, key, "base_url"),
            domain: self.text(t, key, "domain"),
            realm: self.text(t, key, "realm"),
            scopes: self.scopes(table.get("scopes"), &format!("{key}.scopes")),
            token_auth: self.named(t, key, "token_auth", &TokenAuth::NAMES, TokenAuth::from_name),
            issuer: self.issuer(t, key),
            tenant: self.text(t, key, "tenant"),
            team: self.text(t, key, "team"),
            team_id: self.text(t, key, "team_id"),
            allow_hmac_id_tokens: self.boolean(t, key, "allow_hmac_id_tokens"),
            response_mode: self.named(t, key, "response_mode", &ResponseMode::NAMES, ResponseMode::from_name),
            dangerously_allow_non_loopback: self.boolean(t, key, "dangerously_allow_non_loopback"),
            trust_email_verified: self.boolean(t, key, "trust_email_verified"),
            userinfo: self.userinfo(table, key),
            authorize_params: self.authorize_params(table, key, preset),
            key_files: self.key_files(table, key),
        };
        if s.issuer.is_some()
            && matches!(
                preset,
                Some(
                    Preset::Github
                        | Preset::Discord
                        | Preset::Bitbucket
                        | Preset::Facebook
                        | Preset::X
                        | Preset::Dev
                )
            )
        {
            self.problem(
                table.get("issuer"),
                &format!("{key}.issuer"),
                "this preset does not use OpenID Connect discovery",
            );
            s.issuer = None;
        }
        if s.base_url.is_some() && !matches!(preset, Some(Preset::Github | Preset::Keycloak)) {
            self.problem(
                table.get("base_url"),
                &format!("{key}.base_url"),
                "only applies to preset = \"github\" (GitHub Enterprise Server) or \"keycloak\"",
            );
            s.base_url = None;
        }
        self.issuer_from_table(table, key, preset, &mut s);
        if let Some(tenant) = &s.tenant {
            if preset != Some(Preset::Microsoft) {
                self.problem(
                    table.get("tenant"),
                    &format!("{key}.tenant"),
                    "only applies to preset = \"microsoft\"",
                );
            } else if !microsoft::is_tenant(tenant) {
                self.problem(
                    table.get("tenant"),
                    &format!("{key}.tenant"),
                    "must be common, organizations, consumers, a tenant id or a domain",
                );
            }
        }
        if let Some(team) = s.team.take() {
            self.slack_team(table, key, preset, &team, &mut s.authorize_params);
        }
        self.apple_settings(table, key, preset, &s);
        if s.dangerously_allow_non_loopback.is_some() && preset != Some(Preset::Dev) {
            self.problem(
                table.get("dangerously_allow_non_loopback"),
                &format!("{key}.dangerously_allow_non_loopback"),
                "only applies to the development provider (preset = \"dev\")",
            );
        }
        if s.trust_email_verified == Some(true) && matches!(preset, Some(Preset::Facebook | Preset::X)) {
            let why = match preset {
                Some(Preset::X) => "X gives no e-mail address, so there is nothing to trust",
                _ => {
                    "Facebook says nothing about whether an address is verified, so there is nothing to trust"
                }
            };
            self.problem(table.get("trust_email_verified"), &format!("{key}.trust_email_verified"), why);
        }
        if s.trust_email_verified == Some(true) && preset == Some(Preset::Dev) {
            self.problem(
                table.get("trust_email_verified"),
                &format!("{key}.trust_email_verified"),
                "the development provider believes anything typed into it; its addresses never count for linking",
            );
        }
        s
    }

    /// Sign in with Apple's own rules: `team_id` is Apple's alone, and its client secret is made
    /// (never configured), sent the only way Apple's token endpoint takes it.
    fn apple_settings(&mut self, table: &Dict, key: &str, preset: Option<Preset>, s: &Settings) {
        let field = |name: &str| format!("{key}.{name}");
        if let Some(team_id) = &s.team_id {
            if preset != Some(Preset::Apple) {
                self.problem(table.get("team_id"), &field("team_id"), "only applies to preset = \"apple\"");
            } else if team_id.is_empty()
                || team_id.len() > 64
                || !team_id.bytes().all(|b| b.is_ascii_alphanumeric())
            {
                self.problem(
                    table.get("team_id"),
                    &field("team_id"),
                    "must be your Apple Team ID, such as A1B2C3D4E5 (letters and digits)",
                );
            }
        }
        if preset != Some(Preset::Apple) {
            return;
        }
        if s.client_secret.is_some() {
            self.problem(
                table.get("client_secret"),
                &field("client_secret"),
                "Apple's client secret is a signed JWT that loginwith makes (and renews) from team_id, key_id and \
                 private_key_file; remove client_secret",
            );
        }
        if s.token_auth.is_some_and(|t| t != TokenAuth::ClientSecretPost) {
            self.problem(
                table.get("token_auth"),
                &field("token_auth"),
                "Apple's token endpoint takes client_secret_post only",
            );
        }
    }

    /// Okta's and Auth0's `domain`, Keycloak's `base_url` and `realm`: the issuer they make, in
    /// `s.issuer` (an `issuer` given as well is refused: one or the other).
    fn issuer_from_table(&mut self, table: &Dict, key: &str, preset: Option<Preset>, s: &mut Settings) {
        let field = |name: &str| format!("{key}.{name}");
        if s.domain.is_some() && !matches!(preset, Some(Preset::Okta | Preset::Auth0)) {
            self.problem(
                table.get("domain"),
                &field("domain"),
                "only applies to preset = \"okta\" or \"auth0\"",
            );
            return;
        }
        if s.realm.is_some() && preset != Some(Preset::Keycloak) {
            self.problem(table.get("realm"), &field("realm"), "only applies to preset = \"keycloak\"");
            return;
        }
        let derived = match (preset, &s.domain, &s.base_url, &s.realm) {
            (Some(Preset::Okta | Preset::Auth0), Some(domain), _, _) => {
                let host_like = !domain.is_empty()
                    && domain.len() <= 253
                    && domain.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.:".contains(&b));
                if !host_like {
                    self.problem(
                        table.get("domain"),
                        &field("domain"),
                        "must be a host name such as dev-123456.okta.com, without https:// or a path",
                    );
                    return;
                }
                let issuer = match preset {
                    Some(Preset::Auth0) => auth0::issuer(domain),
                    _ => okta::issuer(domain),
                };
                Some(("domain", issuer))
            }
            (Some(Preset::Keycloak), _, Some(base), Some(realm)) => {
                Some(("realm", keycloak::issuer(base, realm)))
            }
            (Some(Preset::Keycloak), _, Some(_), None) => {
                self.problem(
                    table.get("base_url"),
                    &field("realm"),
                    "missing: Keycloak's base_url needs its realm",
                );
                return;
            }
            (Some(Preset::Keycloak), _, None, Some(_)) => {
                self.problem(
                    table.get("realm"),
                    &field("base_url"),
                    "missing: the realm needs Keycloak's base_url",
                );
                return;
            }
            _ => None,
        };
        let Some((from, issuer)) = derived else { return };
        if s.issuer.is_some() {
            self.problem(
                table.get("issuer"),
                &field("issuer"),
                format!("give either issuer or {from}, not both"),
            );
            return;
        }
        match issuer {
            Ok(issuer) => s.issuer = Some(issuer),
            Err(why) => self.problem(table.get(from), &field(from), why),
        }
    }

    /// Slack's `team`: sent as the `team` parameter, where it is also the one workspace the
    /// provider accepts (see [`slack`]), so what Slack is asked to pre-select and what is enforced
    /// cannot differ.
    fn slack_team(
        &mut self,
        table: &Dict,
        key: &str,
        preset: Option<Preset>,
        team: &str,
        params: &mut AuthorizeParams,
    ) {
        let why = if preset != Some(Preset::Slack) {
            "only applies to preset = \"slack\"".to_owned()
        } else if !slack::is_team_id(team) {
            "must be a Slack workspace id such as T0123ABC (capital letters and digits)".to_owned()
        } else {
            match params.set(slack::TEAM_PARAM, team) {
                Ok(()) => return,
                Err(why) => why,
            }
        };
        self.problem(table.get("team"), &format!("{key}.team"), why);
    }

    /// `[providers.NAME.authorize_params]`: string values, sent with every authorization request;
    /// any name but loginwith's own ([`AuthorizeParams::RESERVED`]).
    fn authorize_params(&mut self, table: &Dict, key: &str, preset: Option<Preset>) -> AuthorizeParams {
        let mut params = AuthorizeParams::default();
        let params_key = format!("{key}.authorize_params");
        let Some(dict) = self.table(table.get("authorize_params"), &params_key) else {
            return params;
        };
        for name in dict.keys() {
            let Some(value) = self.text(Some(dict), &params_key, name) else { continue };
            let set = if preset == Some(Preset::Slack) && name == slack::TEAM_PARAM {
                // Sent alone it would only pre-select a workspace, and look like a restriction.
                Err("set `team` in the provider's table instead: the workspace is then also enforced".into())
            } else {
                params.set(name, &value)
            };
            if let Err(why) = set {
                self.problem(dict.get(name), &format!("{params_key}.{name}"), why);
            }
        }
        params
    }

    /// `[providers.NAME.userinfo]`: JSON Pointers, each set one overriding the preset's.
    fn userinfo(&mut self, table: &Dict, key: &str) -> UserinfoPointers {
        let mut pointers = UserinfoPointers::default();
        let userinfo_key = format!("{key}.userinfo");
        let Some(ui) = self.table(table.get("userinfo"), &userinfo_key) else {
            return pointers;
        };
        self.unknown_keys(ui, &userinfo_key, known("providers.*.userinfo"));
        let p = &mut pointers;
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
        pointers
    }

    /// One problem per missing key, in the table's source; credentials name their variable.
    fn missing<'k>(
        &mut self,
        value: &Value,
        key: &str,
        name: &ProviderName,
        fields: impl IntoIterator<Item = &'k str>,
    ) {
        for field in fields {
            let hint = match field {
                "client_id" | "client_secret" => format!(
                    " (set it in the file or as {}_{})",
                    name.as_str().to_uppercase().replace('-', "_"),
                    field.to_uppercase()
                ),
                _ => String::new(),
            };
            self.problems.push(format!("{}: `{key}.{field}`: missing{hint}", self.source(value)));
        }
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

/// What one table says, each key read as its type; `None` is "not set" (or refused, with the
/// problem recorded). This is the only place a provider is a bag of optional fields: it is what
/// a person wrote, before the preset's defaults complete it.
struct Settings {
    display_name: Option<String>,
    client_id: Option<String>,
    client_secret: Option<ClientSecret>,
    authorize_url: Option<Url>,
    token_url: Option<Url>,
    userinfo_url: Option<Url>,
    /// GitHub Enterprise Server's or Keycloak's address (endpoints or issuer follow from it).
    base_url: Option<Url>,
    /// Okta's or Auth0's domain (the issuer follows from it).
    domain: Option<String>,
    /// Keycloak's realm.
    realm: Option<String>,
    scopes: Option<Vec<String>>,
    token_auth: Option<TokenAuth>,
    issuer: Option<Issuer>,
    tenant: Option<String>,
    /// Apple's Team ID.
    team_id: Option<String>,
    /// Slack's workspace; moved into `authorize_params` once checked.
    team: Option<String>,
    allow_hmac_id_tokens: Option<bool>,
    response_mode: Option<ResponseMode>,
    dangerously_allow_non_loopback: Option<bool>,
    trust_email_verified: Option<bool>,
    /// Only the pointers the table sets.
    userinfo: UserinfoPointers,
    /// `[providers.NAME.authorize_params]` (and Slack's `team`), over the preset's.
    authorize_params: AuthorizeParams,
    /// `private_key_file`, `key_id`, `certificate_file`, as written (read by `Walk::client_key`).
    key_files: KeyFiles,
}

impl Settings {
    /// Everything but the protocol, over the preset's values; then the rules that follow from
    /// the protocol (`openid` for OpenID Connect, `profile` for Microsoft, linking trust).
    fn apply(self, config: &mut ProviderConfig) {
        let dev = config.is_dev();
        if let Some(v) = self.display_name {
            config.display_name = v;
        }
        if let Some(v) = self.client_id {
            config.client_id = v;
        }
        config.team_id = self.team_id;
        if let Some(v) = self.client_secret {
            config.client_secret = Some(v);
        }
        if let Some(v) = self.scopes {
            config.scopes = v;
        }
        if let Some(v) = self.token_auth {
            config.token_auth = Some(v);
        }
        if let Some(v) = self.response_mode {
            config.response_mode = v;
        }
        config.authorize_params.merge(self.authorize_params);
        if matches!(config.kind, ProviderKind::Oidc { .. } | ProviderKind::Dev { .. }) {
            // OpenID Connect: `openid` must be requested (Core §3.1.2.1).
            if config.scopes.is_empty() {
                config.scopes = OIDC_SCOPES.map(String::from).to_vec();
            } else if !config.scopes.iter().any(|s| s == "openid") {
                config.scopes.insert(0, "openid".into());
            }
        }
        if config.preset == Some(Preset::Microsoft) {
            microsoft::require_scopes(&mut config.scopes);
        }
        if config.preset == Some(Preset::Gitlab) && !config.issuer().is_some_and(gitlab::is_gitlab_com) {
            // A self-hosted GitLab's administrators decide what counts as verified there.
            config.trust_email_verified = false;
        }
        if self.base_url.is_some() {
            // Likewise a GitHub Enterprise Server's, who can switch e-mail verification off.
            config.trust_email_verified = false;
        }
        if let Some(v) = self.trust_email_verified {
            config.trust_email_verified = v && !dev;
        }
    }
}

/// The keys a table lacks to make a complete provider.
type Missing = Vec<&'static str>;

/// A preset's protocol with the table's settings over it.
fn with_settings(base: ProviderKind, preset: Option<Preset>, s: &Settings) -> Result<ProviderKind, Missing> {
    Ok(match base {
        ProviderKind::Dev { dangerously_allow_non_loopback, userinfo } => ProviderKind::Dev {
            dangerously_allow_non_loopback: s
                .dangerously_allow_non_loopback
                .unwrap_or(dangerously_allow_non_loopback),
            userinfo: overriding(&s.userinfo, userinfo),
        },
        ProviderKind::Oidc { issuer, tenant, allow_hmac_id_tokens, userinfo } => {
            let (issuer, tenant) = if preset == Some(Preset::Microsoft) {
                // `None` only for a tenant that makes no issuer URL (refused above): then the
                // issuer must be given.
                microsoft::issuer_and_tenant(s.issuer.clone(), s.tenant.clone()).ok_or(vec!["issuer"])?
            } else if preset.is_some_and(Preset::issuer_from_table) {
                let needed = match preset {
                    Some(Preset::Keycloak) => vec!["base_url", "realm"],
                    _ => vec!["domain"],
                };
                (s.issuer.clone().ok_or(needed)?, tenant)
            } else {
                (s.issuer.clone().unwrap_or(issuer), tenant)
            };
            ProviderKind::Oidc {
                issuer,
                tenant,
                allow_hmac_id_tokens: s.allow_hmac_id_tokens.unwrap_or(allow_hmac_id_tokens),
                userinfo: overriding(&s.userinfo, userinfo),
            }
        }
        ProviderKind::OAuth2 { authorize_url, token_url, userinfo_url, userinfo } => {
            // GitHub Enterprise Server: the same paths under its own address, the API under
            // /api/v3; an endpoint given by itself still wins.
            let (authorize_url, token_url, userinfo_url) = match &s.base_url {
                Some(base) => github::enterprise_endpoints(base).ok_or(vec!["base_url"])?,
                None => (authorize_url, token_url, userinfo_url),
            };
            ProviderKind::OAuth2 {
                authorize_url: s.authorize_url.clone().unwrap_or(authorize_url),
                token_url: s.token_url.clone().unwrap_or(token_url),
                userinfo_url: s.userinfo_url.clone().unwrap_or(userinfo_url),
                userinfo: overriding(&s.userinfo, userinfo),
            }
        }
    })
}

/// A provider without a preset, as its table describes it: OpenID Connect when it names an
/// issuer, else plain OAuth 2.0 with every endpoint and the pointers to the subject and address.
/// (`allow_hmac_id_tokens` means nothing to OAuth 2.0 and is not kept.)
fn described(s: &Settings) -> Result<ProviderKind, Missing> {
    if let Some(issuer) = &s.issuer {
        return Ok(ProviderKind::Oidc {
            issuer: issuer.clone(),
            tenant: None,
            allow_hmac_id_tokens: s.allow_hmac_id_tokens.unwrap_or(false),
            userinfo: s.userinfo.clone(),
        });
    }
    let missing: Missing = [
        ("authorize_url", s.authorize_url.is_none()),
        ("token_url", s.token_url.is_none()),
        ("userinfo_url", s.userinfo_url.is_none()),
        ("userinfo.email", s.userinfo.email.is_none()),
        ("userinfo.subject", s.userinfo.subject.is_none()),
    ]
    .into_iter()
    .filter_map(|(field, missing)| missing.then_some(field))
    .collect();
    match (&s.authorize_url, &s.token_url, &s.userinfo_url) {
        (Some(authorize_url), Some(token_url), Some(userinfo_url)) if missing.is_empty() => {
            Ok(ProviderKind::OAuth2 {
                authorize_url: authorize_url.clone(),
                token_url: token_url.clone(),
                userinfo_url: userinfo_url.clone(),
                userinfo: s.userinfo.clone(),
            })
        }
        _ => Err(missing),
    }
}

/// The credentials a provider lacks, from the table or the preset (`base`): every provider but
/// the development one needs a client id and a non-empty secret, or with `private_key_jwt`
/// (`token_auth`, the table's or the preset's) a private key instead of the secret.
fn missing_credentials(
    preset: Option<Preset>,
    s: &Settings,
    base: Option<&ProviderConfig>,
    token_auth: Option<TokenAuth>,
) -> Vec<&'static str> {
    if preset == Some(Preset::Dev) {
        return Vec::new();
    }
    let client_id = s.client_id.as_deref().or(base.map(|b| b.client_id.as_str())).unwrap_or_default();
    let client_secret = s.client_secret.as_ref().or(base.and_then(|b| b.client_secret.as_ref()));
    let mut missing = Vec::new();
    if client_id.is_empty() {
        missing.push("client_id");
    }
    if preset == Some(Preset::Apple) {
        // Its client secret is made from these (see `providers::apple`).
        if s.team_id.is_none() {
            missing.push("team_id");
        }
        if s.key_files.key_id.is_none() {
            missing.push("key_id");
        }
        if s.key_files.private_key_file.is_none() {
            missing.push("private_key_file");
        }
    } else if token_auth == Some(TokenAuth::PrivateKeyJwt) {
        if s.key_files.private_key_file.is_none() {
            missing.push("private_key_file");
        }
    } else if client_secret.is_none_or(|secret| secret.expose().is_empty()) {
        missing.push("client_secret");
    }
    missing
}

/// The table's pointers, each over the preset's.
fn overriding(table: &UserinfoPointers, base: UserinfoPointers) -> UserinfoPointers {
    let pick = |t: &Option<String>, b: Option<String>| t.clone().or(b);
    UserinfoPointers {
        email: pick(&table.email, base.email),
        email_verified: pick(&table.email_verified, base.email_verified),
        subject: pick(&table.subject, base.subject),
        name: pick(&table.name, base.name),
        avatar: pick(&table.avatar, base.avatar),
        username: pick(&table.username, base.username),
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn pointers_and_scopes() {
        assert!(is_json_pointer("/a~1b/0"));
        assert!(!is_json_pointer("/a~2"));
        assert!(!is_json_pointer("a"));
        assert!(is_scope_token("user:email"));
        assert!(!is_scope_token("a\"b"));
    }

    fn config(text: &str) -> Config {
        Config::from_toml(text).unwrap_or_else(|e| panic!("{e}"))
    }

    fn problems(text: &str) -> String {
        Config::from_toml(text).err().map(|e| e.0.join("\n")).unwrap_or_default()
    }

    fn provider<'c>(config: &'c Config, name: &str) -> &'c ProviderConfig {
        config.providers.iter().find(|p| p.name.as_str() == name).unwrap()
    }

    const CREDENTIALS: &str = "client_id = \"id\"\nclient_secret = \"secret\"\n";

    #[test]
    fn each_preset_gives_its_protocol_and_the_table_overrides_it() {
        let config = config(&format!(
            "[providers.github]\n{CREDENTIALS}authorize_url = \"https://ghe.example/login/oauth/authorize\"\n\
             [providers.google]\n{CREDENTIALS}allow_hmac_id_tokens = true\n\
             [providers.dev]\ndangerously_allow_non_loopback = true\n\
             [providers.dev.userinfo]\nname = \"/nickname\"\n"
        ));
        let ProviderKind::OAuth2 { authorize_url, token_url, userinfo, .. } =
            &provider(&config, "github").kind
        else {
            panic!("github is OAuth 2.0")
        };
        assert_eq!(authorize_url.as_str(), "https://ghe.example/login/oauth/authorize");
        assert_eq!(
            token_url.as_str(),
            "https://github.com/login/oauth/access_token",
            "the rest is the preset's"
        );
        assert_eq!(userinfo.subject.as_deref(), Some("/id"));
        let ProviderKind::Oidc { issuer, tenant, allow_hmac_id_tokens, .. } =
            &provider(&config, "google").kind
        else {
            panic!("google is OpenID Connect")
        };
        assert_eq!(
            (issuer.as_str(), tenant, allow_hmac_id_tokens),
            ("https://accounts.google.com", &None, &true)
        );
        let dev = provider(&config, "dev");
        assert!(dev.is_dev() && dev.dev_allows_non_loopback());
        assert_eq!(dev.userinfo().name.as_deref(), Some("/nickname"));
        assert!(dev.client_secret.is_none(), "made at start");
        assert!(
            !provider(&config, "google").is_dev() && !provider(&config, "google").dev_allows_non_loopback()
        );
    }

    #[test]
    fn a_table_without_a_preset_is_openid_connect_with_an_issuer_and_oauth2_without() {
        let config = config(&format!(
            "[providers.sso]\n{CREDENTIALS}issuer = \"https://sso.example\"\n\
             [providers.corp]\n{CREDENTIALS}authorize_url = \"https://corp.example/a\"\n\
             token_url = \"https://corp.example/t\"\nuserinfo_url = \"https://corp.example/u\"\n\
             [providers.corp.userinfo]\nemail = \"/mail\"\nsubject = \"/uid\"\n"
        ));
        let sso = provider(&config, "sso");
        assert!(matches!(&sso.kind, ProviderKind::Oidc { tenant: None, allow_hmac_id_tokens: false, .. }));
        assert_eq!(sso.display_name, "Sso");
        let corp = provider(&config, "corp");
        let ProviderKind::OAuth2 { userinfo_url, userinfo, .. } = &corp.kind else {
            panic!("corp is OAuth 2.0")
        };
        assert_eq!(userinfo_url.as_str(), "https://corp.example/u");
        assert_eq!((userinfo.email.as_deref(), userinfo.subject.as_deref()), (Some("/mail"), Some("/uid")));
        assert!(corp.scopes.is_empty(), "OAuth 2.0 gets no scopes it did not ask for");
        assert_eq!(corp.issuer(), None);
    }

    #[test]
    fn an_incomplete_table_names_everything_it_lacks() {
        let all = problems("[providers.corp]\ndisplay_name = \"Corp\"\n");
        for field in [
            "client_id",
            "client_secret",
            "authorize_url",
            "token_url",
            "userinfo_url",
            "userinfo.email",
            "userinfo.subject",
        ] {
            assert!(all.contains(&format!("`providers.corp.{field}`: missing")), "{field}: {all}");
        }
        assert!(all.contains("CORP_CLIENT_SECRET"), "{all}");
        // An empty secret is no secret.
        let all = problems("[providers.google]\nclient_id = \"id\"\nclient_secret = \"\"\n");
        assert!(all.contains("`providers.google.client_secret`: missing"), "{all}");
        // A refused value is reported once, as refused, not also as missing.
        let all = problems(&format!("[providers.corp]\n{CREDENTIALS}authorize_url = \"ftp://x\"\n"));
        assert!(all.contains("`providers.corp.authorize_url`: must be an http(s) URL"), "{all}");
        assert!(!all.contains("missing"), "{all}");
    }

    #[test]
    fn microsoft_tenants_make_the_issuer_and_profile_is_always_requested() {
        let config = config(&format!(
            "[providers.microsoft]\n{CREDENTIALS}tenant = \"contoso.com\"\nscopes = [\"openid\", \"email\"]\n\
             [providers.entra-us]\npreset = \"microsoft\"\n{CREDENTIALS}\
             issuer = \"https://login.microsoftonline.us/organizations/v2.0\"\n"
        ));
        let ms = provider(&config, "microsoft");
        let ProviderKind::Oidc { issuer, tenant, .. } = &ms.kind else { panic!("OpenID Connect") };
        assert_eq!(issuer.as_str(), "https://login.microsoftonline.com/contoso.com/v2.0");
        assert_eq!(tenant.as_deref(), Some("contoso.com"));
        assert_eq!(ms.scopes, ["openid", "email", "profile"]);
        let ProviderKind::Oidc { issuer, tenant, .. } = &provider(&config, "entra-us").kind else {
            panic!("OpenID Connect")
        };
        assert_eq!(issuer.as_str(), "https://login.microsoftonline.us/organizations/v2.0");
        assert_eq!(tenant, &None, "an explicit issuer names its tenant in its path");
        let all = problems(&format!("[providers.microsoft]\n{CREDENTIALS}tenant = \"a/b\"\n"));
        assert!(all.contains("`providers.microsoft.tenant`: must be common"), "{all}");
    }

    #[test]
    fn keys_that_belong_to_another_protocol_or_preset_are_refused() {
        let all = problems(&format!(
            "[providers.github]\n{CREDENTIALS}issuer = \"https://github.com\"\n\
             [providers.google]\n{CREDENTIALS}dangerously_allow_non_loopback = true\n\
             [providers.corp]\npreset = \"yahoo\"\n"
        ));
        for expected in [
            "`providers.github.issuer`: this preset does not use OpenID Connect discovery",
            "`providers.google.dangerously_allow_non_loopback`: only applies to the development provider",
            "`providers.corp.preset`: unknown preset \"yahoo\"",
        ] {
            assert!(all.contains(expected), "missing {expected:?} in:\n{all}");
        }
        // An unknown preset stops its table: nothing else about it can be judged.
        assert!(!all.contains("`providers.corp.client_id`"), "{all}");
    }

    #[test]
    fn protocol_names_are_parsed_or_refused_with_the_choices() {
        let config = config(&format!(
            "[providers.sso]\n{CREDENTIALS}issuer = \"https://sso.example\"\n\
             token_auth = \"client_secret_post\"\nresponse_mode = \"form_post\"\n"
        ));
        let sso = provider(&config, "sso");
        assert_eq!(
            (sso.token_auth, sso.response_mode),
            (Some(TokenAuth::ClientSecretPost), ResponseMode::FormPost)
        );
        let all = problems(&format!(
            "[providers.sso]\n{CREDENTIALS}issuer = \"https://sso.example\"\n\
             token_auth = \"tls_client_auth\"\nresponse_mode = \"fragment\"\n"
        ));
        assert!(
            all.contains(
                "`providers.sso.token_auth`: \"tls_client_auth\" is not client_secret_post or \
                 client_secret_basic or client_secret_jwt or private_key_jwt"
            ),
            "{all}"
        );
        assert!(
            all.contains("`providers.sso.response_mode`: \"fragment\" is not query or form_post"),
            "{all}"
        );
    }

    const GOOGLE: &str = "[providers.google]\nclient_id = \"id\"\nclient_secret = \"secret\"\n";

    #[test]
    fn generic_provider_from_data() {
        let text = r#"
            [providers.corp]
            display_name = "Corp SSO"
            authorize_url = "https://sso.corp.example/authorize"
            token_url = "https://sso.corp.example/token"
            userinfo_url = "https://sso.corp.example/me"
            client_id = "id"
            client_secret = "secret"
            scopes = ["openid", "email"]
            token_auth = "client_secret_basic"
            [providers.corp.userinfo]
            email = "/data/mail"
            subject = "/data/id"
        "#;
        let config = Config::from_toml(text).unwrap();
        assert!(!config.dev_provider_by_default);
        let corp = &config.providers[0];
        assert_eq!(corp.display_name, "Corp SSO");
        assert_eq!(corp.token_auth, Some(TokenAuth::ClientSecretBasic));
        assert_eq!(corp.userinfo().email.as_deref(), Some("/data/mail"));
        assert_eq!(corp.scopes, vec!["openid", "email"]);
    }

    #[test]
    fn oidc_providers_need_only_an_issuer() {
        let text = r#"
            [providers.okta]
            issuer = "https://dev-1.okta.com/oauth2/default"
            client_id = "id"
            client_secret = "secret"
            [providers.microsoft]
            tenant = "organizations"
            client_id = "id"
            client_secret = "secret"
            [providers.gitlab]
            client_id = "id"
            client_secret = "secret"
        "#;
        let config = Config::from_toml(text).unwrap();
        let by = |n: &str| config.providers.iter().find(|p| p.name.as_str() == n).unwrap();
        assert_eq!(by("okta").issuer().unwrap().as_str(), "https://dev-1.okta.com/oauth2/default");
        assert_eq!(
            by("microsoft").issuer().unwrap().as_str(),
            "https://login.microsoftonline.com/organizations/v2.0"
        );
        // Exactly as documented: no slash added (issuers compare as exact strings).
        assert_eq!(by("gitlab").issuer().unwrap().as_str(), "https://gitlab.com");
        assert_eq!(by("okta").scopes, vec!["openid", "email", "profile"]);
    }

    #[test]
    fn issuers_are_kept_exactly_as_written() {
        let text = r#"
            [providers.auth0]
            issuer = "https://tenant.auth0.com/"
            client_id = "id"
            client_secret = "secret"
            [providers.keycloak]
            issuer = "https://sso.example/realms/main"
            client_id = "id"
            client_secret = "secret"
            [providers.google]
            client_id = "id"
            client_secret = "secret"
        "#;
        let config = Config::from_toml(text).unwrap();
        let by = |n: &str| config.providers.iter().find(|p| p.name.as_str() == n).unwrap();
        assert_eq!(by("auth0").issuer().unwrap().as_str(), "https://tenant.auth0.com/");
        assert_eq!(by("keycloak").issuer().unwrap().as_str(), "https://sso.example/realms/main");
        assert_eq!(by("google").issuer().unwrap().as_str(), "https://accounts.google.com");
    }

    #[test]
    fn bad_issuers_are_refused_with_their_key() {
        let text = r#"
            [providers.a]
            issuer = "http://idp.example"
            client_id = "id"
            client_secret = "secret"
            [providers.b]
            issuer = "https://idp.example/?tenant=x"
            client_id = "id"
            client_secret = "secret"
            [providers.c]
            issuer = "https://idp.example/#x"
            client_id = "id"
            client_secret = "secret"
            [providers.d]
            issuer = "idp.example"
            client_id = "id"
            client_secret = "secret"
        "#;
        let all = Config::from_toml(text).unwrap_err().0.join("\n");
        for expected in [
            "`providers.a.issuer`: must use https",
            "`providers.b.issuer`: must not have a query or fragment",
            "`providers.c.issuer`: must not have a query or fragment",
            "`providers.d.issuer`: is not a valid URL",
        ] {
            assert!(all.contains(expected), "missing {expected:?} in:\n{all}");
        }
    }

    #[test]
    fn github_enterprise_is_the_github_preset_at_a_base_url() {
        let ghe = config("[providers.ghe]\npreset = \"github\"\nclient_id = \"x\"\nclient_secret = \"y\"\nbase_url = \"https://ghe.example.com\"\n");
        let ProviderKind::OAuth2 { token_url, userinfo_url, .. } = &ghe.providers[0].kind else {
            panic!("OAuth 2.0")
        };
        assert_eq!(token_url.as_str(), "https://ghe.example.com/login/oauth/access_token");
        assert_eq!(userinfo_url.as_str(), "https://ghe.example.com/api/v3/user");
        assert!(!ghe.providers[0].trust_email_verified, "its admins decide what verified means");
        let trusted = config(
            "[providers.ghe]\npreset = \"github\"\nclient_id = \"x\"\nclient_secret = \"y\"\nbase_url = \"https://ghe.example.com\"\ntrust_email_verified = true\n",
        );
        assert!(trusted.providers[0].trust_email_verified);
        assert!(problems("[providers.google]\nclient_id = \"x\"\nclient_secret = \"y\"\nbase_url = \"https://ghe.example.com\"\n")
            .contains("only applies to preset = \"github\""));
        assert!(problems("[providers.github]\nclient_id = \"x\"\nclient_secret = \"y\"\nbase_url = \"http://ghe.example.com\"\n")
            .contains("must use https"));
    }

    #[test]
    fn okta_auth0_and_keycloak_issuers_come_from_their_domain_or_realm() {
        let creds = "client_id = \"x\"\nclient_secret = \"y\"\n";
        let issuer_of = |table: &str| {
            let c = config(&format!("{table}{creds}"));
            (c.providers[0].issuer().map(|i| i.as_str().to_owned()), c.providers[0].trust_email_verified)
        };
        assert_eq!(
            issuer_of("[providers.okta]\ndomain = \"dev-123456.okta.com\"\n"),
            (Some("https://dev-123456.okta.com".into()), false)
        );
        assert_eq!(
            issuer_of("[providers.auth0]\ndomain = \"example.eu.auth0.com\"\n"),
            (Some("https://example.eu.auth0.com/".into()), false),
            "Auth0's issuer has its trailing slash"
        );
        assert_eq!(
            issuer_of("[providers.sso]\npreset = \"keycloak\"\nbase_url = \"https://sso.example.com/\"\nrealm = \"main\"\n"),
            (Some("https://sso.example.com/realms/main".into()), false)
        );
        assert_eq!(
            issuer_of("[providers.okta]\nissuer = \"https://dev-1.okta.com/oauth2/default\"\n").0.as_deref(),
            Some("https://dev-1.okta.com/oauth2/default"),
            "a custom authorization server by issuer"
        );
        for (table, why) in [
            ("[providers.okta]\n", "domain"),
            ("[providers.keycloak]\nbase_url = \"https://sso.example.com\"\n", "realm"),
            ("[providers.keycloak]\nrealm = \"main\"\n", "base_url"),
            ("[providers.okta]\ndomain = \"https://dev-1.okta.com\"\n", "without https://"),
            ("[providers.auth0]\ndomain = \"a.auth0.com\"\nissuer = \"https://a.auth0.com/\"\n", "not both"),
            ("[providers.google]\ndomain = \"a.example\"\n", "only applies to preset = \"okta\""),
            (
                "[providers.okta]\ndomain = \"a.example\"\nrealm = \"x\"\n",
                "only applies to preset = \"keycloak\"",
            ),
        ] {
            let all = problems(&format!("{table}{creds}"));
            assert!(all.contains(why), "{table}: {all}");
        }
    }

    #[test]
    fn issuer_and_endpoints_are_exclusive() {
        let text = r#"
            [providers.corp]
            issuer = "https://idp.example"
            token_url = "https://idp.example/token"
            client_id = "id"
            client_secret = "secret"
            tenant = "common"
        "#;
        let all = Config::from_toml(text).unwrap_err().0.join("\n");
        assert!(all.contains("`providers.corp.token_url`: comes from OpenID Connect discovery"), "{all}");
        assert!(all.contains("`providers.corp.tenant`: only applies"), "{all}");
    }

    #[test]
    fn the_dev_provider_refuses_a_deployment() {
        for server in [
            "public_url = \"https://login.example.com\"",
            "public_url = \"https://localhost:8443\"",
            "public_url = \"http://login.example.com\"",
            "bind = \"0.0.0.0:5000\"",
        ] {
            let all = problems(&format!("[server]\n{server}\n[providers.dev]\n{GOOGLE}"));
            assert!(
                all.contains("`providers.dev`: the development provider believes any address"),
                "{server}: {all}"
            );
            assert!(all.contains("dangerously_allow_non_loopback"), "{all}");
            // Forced, it starts.
            let forced = format!(
                "[server]\n{server}\n[providers.dev]\ndangerously_allow_non_loopback = true\n{GOOGLE}"
            );
            assert_eq!(problems(&forced), "", "{server}");
        }
        // Locally, it is fine.
        assert_eq!(problems("[server]\npublic_url = \"http://127.0.0.1:5000\"\n[providers.dev]\n"), "");
    }

    #[test]
    fn the_dev_provider_is_never_implicit_in_a_deployment() {
        let all = problems("[server]\npublic_url = \"https://login.example.com\"\n");
        assert!(all.contains("`providers`: no login provider is configured"), "{all}");
        let all = problems("[server]\nbind = \"0.0.0.0:5000\"\n");
        assert!(all.contains("no login provider is configured"), "{all}");
        // With a real provider, nothing is implicit and nothing is wrong.
        let config =
            Config::from_toml(&format!("[server]\npublic_url = \"https://login.example.com\"\n{GOOGLE}"))
                .unwrap();
        assert!(!config.dev_provider_by_default);
        assert!(config.providers.iter().all(|p| p.preset != Some(Preset::Dev)));
    }

    #[test]
    fn linking_trust_defaults_per_provider() {
        let text = format!(
            "{GOOGLE}[providers.github]\nclient_id = \"i\"\nclient_secret = \"s\"\n\
             [providers.gitlab]\nclient_id = \"i\"\nclient_secret = \"s\"\n\
             [providers.selfhosted]\npreset = \"gitlab\"\nissuer = \"https://gitlab.corp.example\"\nclient_id = \"i\"\nclient_secret = \"s\"\n\
             [providers.sso]\nissuer = \"https://sso.example.com\"\nclient_id = \"i\"\nclient_secret = \"s\"\n\
             [providers.trusted]\nissuer = \"https://idp.example.com\"\nclient_id = \"i\"\nclient_secret = \"s\"\ntrust_email_verified = true\n\
             [providers.dev]\n"
        );
        let config = Config::from_toml(&text).unwrap_or_else(|e| panic!("{e}"));
        let trust =
            |n: &str| config.providers.iter().find(|p| p.name.as_str() == n).unwrap().trust_email_verified;
        assert!(trust("google") && trust("github") && trust("gitlab") && trust("trusted"));
        assert!(!trust("selfhosted") && !trust("sso") && !trust("dev"));
        let all = problems("[providers.dev]\ntrust_email_verified = true\n");
        assert!(all.contains("`providers.dev.trust_email_verified`"), "{all}");
    }

    #[test]
    fn facebook_and_x_have_nothing_to_trust_and_no_discovery() {
        for (preset, why) in [("facebook", "says nothing about whether"), ("x", "gives no e-mail address")] {
            let table = format!("[providers.{preset}]\n{CREDENTIALS}");
            let config = config(&table);
            let p = provider(&config, preset);
            assert!(matches!(p.kind, ProviderKind::OAuth2 { .. }) && !p.trust_email_verified, "{preset}");
            let all =
                problems(&format!("{table}trust_email_verified = true\nissuer = \"https://x.example\"\n"));
            assert!(all.contains(&format!("`providers.{preset}.trust_email_verified`")), "{all}");
            assert!(all.contains(why), "{all}");
            assert!(all.contains(&format!("`providers.{preset}.issuer`")), "{all}");
        }
        let x = config(&format!("[providers.x]\n{CREDENTIALS}"));
        assert_eq!(provider(&x, "x").token_auth, Some(TokenAuth::ClientSecretBasic));
    }

    #[test]
    fn apple_makes_its_secret_from_the_team_key_and_refuses_anything_else() {
        let dir = env!("CARGO_MANIFEST_DIR");
        let apple = |extra: &str| {
            format!(
                "[providers.apple]\nclient_id = \"com.example.web\"\nteam_id = \"A1B2C3D4E5\"\nkey_id = \"KEY7654321\"\n\
                 private_key_file = \"{dir}/tests/fixtures/apple_authkey.p8\"\n{extra}"
            )
        };
        let config = config(&apple(""));
        let p = provider(&config, "apple");
        assert_eq!(p.team_id.as_deref(), Some("A1B2C3D4E5"));
        assert!(p.client_secret.is_none() && p.client_key.is_some());
        assert_eq!(
            (p.token_auth, p.response_mode),
            (Some(TokenAuth::ClientSecretPost), ResponseMode::FormPost)
        );
        assert_eq!(p.scopes, ["openid", "name", "email"]);
        assert!(p.trust_email_verified);

        let all = problems("[providers.apple]\nclient_id = \"com.example.web\"\n");
        for missing in ["team_id", "key_id", "private_key_file"] {
            assert!(all.contains(&format!("`providers.apple.{missing}`: missing")), "{missing}: {all}");
        }
        let all = problems(&apple("client_secret = \"eyJ...\"\ntoken_auth = \"client_secret_basic\"\n"));
        assert!(
            all.contains("`providers.apple.client_secret`: Apple's client secret is a signed JWT"),
            "{all}"
        );
        assert!(
            all.contains(
                "`providers.apple.token_auth`: Apple's token endpoint takes client_secret_post only"
            ),
            "{all}"
        );
        let all = problems(&apple("").replace("apple_authkey.p8", "client-rsa.pem"));
        assert!(
            all.contains("`providers.apple.private_key_file`: Sign in with Apple's keys are EC P-256"),
            "{all}"
        );
        let all = problems(&apple("").replace("A1B2C3D4E5", "A1 B2/C3"));
        assert!(all.contains("`providers.apple.team_id`: must be your Apple Team ID"), "{all}");
        let all = problems(&format!("{GOOGLE}team_id = \"A1B2C3D4E5\"\n"));
        assert!(all.contains("`providers.google.team_id`: only applies to preset = \"apple\""), "{all}");
    }

    #[test]
    fn authorize_params_are_strings_and_never_ours() {
        let config = config(&format!(
            "[providers.sso]\n{CREDENTIALS}issuer = \"https://sso.example\"\n\
             [providers.sso.authorize_params]\nprompt = \"select_account\"\nmax_age = 3600\n"
        ));
        let params: Vec<_> = provider(&config, "sso").authorize_params.iter().collect();
        assert_eq!(params, [("max_age", "3600"), ("prompt", "select_account")]);

        let all = problems(&format!(
            "[providers.sso]\n{CREDENTIALS}issuer = \"https://sso.example\"\n\
             [providers.sso.authorize_params]\nstate = \"x\"\nNonce = \"x\"\nredirect_uri = \"https://evil.example\"\n\
             request_uri = \"https://evil.example/r\"\nclaims = \"email\"\nprompt = true\n\
             [providers.corp]\n{CREDENTIALS}issuer = \"https://corp.example\"\nauthorize_params = \"prompt=login\"\n"
        ));
        for expected in [
            "`providers.sso.authorize_params.state`: loginwith sends this parameter itself",
            "`providers.sso.authorize_params.Nonce`: loginwith sends this parameter itself",
            "`providers.sso.authorize_params.redirect_uri`: loginwith sends this parameter itself",
            "`providers.sso.authorize_params.request_uri`: loginwith sends this parameter itself",
            "`providers.sso.authorize_params.claims`: must be a JSON object",
            "`providers.sso.authorize_params.prompt`: must be a string",
            "`providers.corp.authorize_params`: must be a table",
        ] {
            assert!(all.contains(expected), "missing {expected:?} in:\n{all}");
        }
        assert!(!all.contains("https://evil.example"), "values are not repeated: {all}");
    }

    #[test]
    fn slacks_team_is_its_authorization_parameter_and_for_slack_only() {
        let configured = config(&format!(
            "[providers.slack]\n{CREDENTIALS}team = \"T0123ABC\"\n\
             [providers.slack.authorize_params]\nprompt = \"consent\"\n"
        ));
        let slack = provider(&configured, "slack");
        let params: Vec<_> = slack.authorize_params.iter().collect();
        assert_eq!(params, [("prompt", "consent"), ("team", "T0123ABC")]);
        assert_eq!(slack.issuer().map(Issuer::as_str), Some("https://slack.com"));
        assert_eq!(slack.scopes, OIDC_SCOPES);
        assert!(!slack.trust_email_verified, "a workspace's admins set its members' addresses");
        let trusted = config(&format!("[providers.slack]\n{CREDENTIALS}trust_email_verified = true\n"));
        assert!(trusted.providers[0].trust_email_verified);

        let all = problems(&format!(
            "[providers.google]\n{CREDENTIALS}team = \"T0123ABC\"\n\
             [providers.slack]\n{CREDENTIALS}team = \"t0123abc\"\n\
             [providers.work]\npreset = \"slack\"\n{CREDENTIALS}[providers.work.authorize_params]\nteam = \"T0123ABC\"\n"
        ));
        for expected in [
            "`providers.google.team`: only applies to preset = \"slack\"",
            "`providers.slack.team`: must be a Slack workspace id",
            "`providers.work.authorize_params.team`: set `team` in the provider's table instead",
        ] {
            assert!(all.contains(expected), "missing {expected:?} in:\n{all}");
        }
    }
}
