//! `loginwith check`: what a configuration amounts to, provider by provider, as a report a person
//! reads before deploying: the redirect URI to register at each provider, whether its verified
//! addresses may link accounts, how it authenticates at the token endpoint when that is a signed
//! JWT (the algorithm and the key's names, never the key), and for OpenID Connect providers
//! whether discovery and the key set can be fetched now (the server would start anyway; their
//! buttons would say "unavailable").

use crate::config::{Config, ProviderConfig, ProviderKind, TokenAuth};
use crate::domain::secret::ClientSecret;
use crate::oauth::http::ProviderHttp;
use crate::providers::dev::DevEndpoints;
use crate::providers::{Preset, Provider};
use crate::state::redirect_uri;
use std::fmt::{self, Write};

/// What [`check`] found: the text to print, and whether every provider answered.
#[derive(Debug, Clone)]
pub struct CheckReport {
    text: String,
    ok: bool,
}

impl CheckReport {
    /// False when an OpenID Connect provider could not be discovered.
    pub fn ok(&self) -> bool {
        self.ok
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Checks a configuration: see the module doc. It calls OpenID Connect providers' discovery
/// documents and key sets, with the configured HTTP limits; it prints no secret.
///
/// ```no_run
/// # async fn run() {
/// let config = loginwith::Config::development("sqlite://app.db");
/// let report = loginwith::check(&config).await;
/// print!("{report}");
/// assert!(report.ok());
/// # }
/// ```
pub async fn check(config: &Config) -> CheckReport {
    let mut out = String::new();
    let base = config
        .server
        .public_url
        .as_ref()
        .map(|u| u.as_str().trim_end_matches('/').to_owned())
        .unwrap_or_else(|| format!("http://{}", config.server.bind));
    let _ = writeln!(out, "configuration OK");
    let _ = writeln!(out, "listen on:  {}", config.server.bind);
    let _ = writeln!(out, "public URL: {base}");
    let _ = writeln!(out, "database:   {}", redact_url(&config.database.url));
    let mut ok = true;
    for p in &config.providers {
        let _ = writeln!(out);
        let _ = writeln!(out, "provider {} (\"Login with {}\")", p.name, p.display_name);
        let _ = writeln!(out, "  redirect URI to register: {}", redirect_uri(&base, &p.name));
        let _ = writeln!(out, "  links accounts by verified e-mail: {}", linking_line(p));
        if let Some(line) = token_auth_line(p) {
            let _ = writeln!(out, "  token endpoint auth: {line}");
        }
        match &p.kind {
            ProviderKind::Dev { .. } => {
                let _ = writeln!(
                    out,
                    "  built-in development provider (OpenID Connect, served at {base}/dev-provider/)"
                );
            }
            ProviderKind::Oidc { issuer, .. } => {
                let _ = writeln!(out, "  OpenID Connect issuer: {issuer}");
                match discover(config, p).await {
                    Ok(lines) => lines.iter().for_each(|l| {
                        let _ = writeln!(out, "  {l}");
                    }),
                    Err(err) => {
                        ok = false;
                        let _ = writeln!(out, "  discovery FAILED: {err}");
                        let _ = writeln!(
                            out,
                            "  (the server still starts; this provider's button says it is unavailable until discovery succeeds)"
                        );
                    }
                }
            }
            ProviderKind::OAuth2 { authorize_url, .. } => {
                let _ = writeln!(out, "  authorize: {authorize_url}");
            }
        }
    }
    if config.dev_provider_by_default {
        let _ = writeln!(out);
        let _ = writeln!(out, "No provider has credentials, so only the development provider is enabled.");
        let _ = writeln!(
            out,
            "Set GOOGLE_CLIENT_ID/GOOGLE_CLIENT_SECRET or GITHUB_CLIENT_ID/GITHUB_CLIENT_SECRET to add one."
        );
    }
    if !ok {
        let _ = writeln!(out);
        let _ = writeln!(out, "error: some providers could not be discovered (see above)");
    }
    CheckReport { text: out, ok }
}

/// Whether a provider's verified addresses may log into an existing account, and why.
fn linking_line(p: &ProviderConfig) -> &'static str {
    match (p.preset, p.trust_email_verified) {
        (Some(Preset::Dev), _) => "no (the development provider believes anything typed into it)",
        (Some(Preset::Google), true) => {
            "yes (only @gmail.com and Workspace addresses, where Google is authoritative)"
        }
        (Some(Preset::Microsoft), true) => "yes (only addresses with xms_edov, verified by the domain owner)",
        (Some(Preset::Apple), true) => {
            "yes (email_verified; a private relay address only to the same relay address)"
        }
        (Some(Preset::Twitch), true) => "yes (email_verified, set once the user followed the link Twitch mailed)",
        (Some(Preset::Slack), true) => {
            "yes (trust_email_verified = true: Slack's email_verified, which the workspace's admins can set for its members)"
        }
        (Some(Preset::Github), true) => "yes (the primary verified address)",
        (Some(Preset::Bitbucket), true) => "yes (the primary confirmed address)",
        (Some(Preset::Discord), true) => "yes (only when the account's `verified` flag is true)",
        (Some(Preset::Facebook), _) => "no (Facebook says nothing about whether an address is verified)",
        (Some(Preset::X), _) => "no (X gives no e-mail address)",
        (_, true) => "yes (trust_email_verified = true)",
        (Some(Preset::Github), false) => {
            "no (GitHub Enterprise Server's admins can switch verification off; set trust_email_verified = true if they require it)"
        }
        (Some(Preset::Slack), false) => {
            "no (a workspace's admins set their members' addresses; set trust_email_verified = true only for workspaces you run)"
        }
        (Some(Preset::Gitlab), false) => {
            "no (a self-hosted GitLab; set trust_email_verified = true if its admins verify addresses)"
        }
        (_, false) => "no (set trust_email_verified = true only if this provider really verifies addresses)",
    }
}

/// The signed-JWT client authentication, if that is the provider's: what signs it, by name.
fn token_auth_line(p: &ProviderConfig) -> Option<String> {
    let key = || p.client_key.as_ref().map_or_else(|| "no key".to_owned(), |k| k.describe());
    if p.preset == Some(Preset::Apple) {
        let key = key();
        let team = p.team_id.as_deref().unwrap_or("?");
        return Some(format!(
            "client_secret_post, the secret an ES256 JWT of team {team} made by loginwith ({key}), renewed hourly"
        ));
    }
    match p.token_auth? {
        TokenAuth::PrivateKeyJwt => Some(format!("private_key_jwt ({})", key())),
        TokenAuth::ClientSecretJwt => {
            // RFC 7518 §3.2: an HS256 key must be at least as long as the hash; some providers refuse less.
            let short = p.client_secret.as_ref().is_some_and(|s| s.expose().len() < 32);
            let note =
                if short { "; the secret is shorter than the 32 bytes RFC 7518 §3.2 asks for" } else { "" };
            Some(format!("client_secret_jwt (HS256 with the client secret{note})"))
        }
        TokenAuth::ClientSecretPost | TokenAuth::ClientSecretBasic => None,
    }
}

/// Fetches an OpenID Connect provider's discovery document and key set, as the server would.
async fn discover(config: &Config, p: &ProviderConfig) -> Result<Vec<String>, String> {
    let http = ProviderHttp::new(&config.http).map_err(|e| e.to_string())?;
    let dev = DevEndpoints {
        issuer: String::new(),
        discovery_url: url::Url::parse("http://127.0.0.1/").map_err(|e| e.to_string())?,
        client_secret: ClientSecret::new(""),
    };
    let provider = Provider::from_config(p, &dev).ok_or("no discovery URL can be made from the issuer")?;
    let oidc = provider.oidc().ok_or("not an OpenID Connect provider")?;
    let d = oidc.ensure_discovered(&http).await.map_err(|e| e.to_string())?;
    let mut lines = vec![
        format!("discovery OK: issuer {}", d.issuer),
        format!("  authorization endpoint: {}", d.authorize_url),
        format!("  token endpoint: {}", d.token_url),
        format!("  ID token algorithms: {}", d.algorithms.join(", ")),
        format!("  iss in authorization responses (RFC 9207): {}", d.iss_parameter_supported),
    ];
    // A method the provider does not list will be refused at the first login: say so now.
    if let Some(auth) = p.token_auth.filter(|_| !d.token_auth_methods.is_empty()) {
        if !d.token_auth_methods.iter().any(|m| m == auth.name()) {
            lines.push(format!(
                "  warning: token_auth {} is not among the provider's token_endpoint_auth_methods_supported ({})",
                auth.name(),
                d.token_auth_methods.join(", ")
            ));
        }
    }
    Ok(lines)
}

/// Hides a password in a database URL.
fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("redacted"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(table: &str) -> &'static str {
        let config = Config::from_toml(table).unwrap_or_else(|e| panic!("{e}"));
        linking_line(&config.providers[0])
    }

    #[test]
    fn the_linking_line_says_what_each_preset_believes() {
        let creds = "client_id = \"id\"\nclient_secret = \"secret\"\n";
        assert!(line(&format!("[providers.twitch]\n{creds}")).contains("the link Twitch mailed"));
        assert!(line(&format!("[providers.twitch]\n{creds}trust_email_verified = false\n")).starts_with("no"));
        assert!(line(&format!("[providers.slack]\n{creds}")).starts_with("no (a workspace's admins"));
        assert!(line(&format!("[providers.slack]\n{creds}trust_email_verified = true\n"))
            .starts_with("yes (trust_email_verified = true: Slack's"));
    }
}
