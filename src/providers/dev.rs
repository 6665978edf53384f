//! The development provider preset: an OpenID Connect provider served by this very process under
//! `/dev-provider/` (see [`crate::dev_provider`]), whose issuer and endpoints are filled in at start
//! once the listening address is known.

use super::{Preset, UserinfoPointers, OIDC_SCOPES};
use crate::config::{ProviderConfig, ProviderKind};
use crate::domain::secret::ClientSecret;
use crate::domain::ProviderName;
use std::net::SocketAddr;
use url::Url;

/// The client id the development provider knows; its secret is made at each start.
pub const DEV_CLIENT_ID: &str = "loginwith-dev";

/// Where the development provider lives in this process.
#[derive(Debug, Clone)]
pub struct DevEndpoints {
    /// `public_url` + `/dev-provider`: what browsers see and what tokens name as `iss`.
    pub issuer: String,
    /// The discovery document on the loopback address (the server calls itself there).
    pub discovery_url: Url,
    /// The client secret made at start.
    pub client_secret: ClientSecret,
}

/// The development provider's defaults: kept on loopback addresses, the client id it knows.
pub fn defaults(name: ProviderName) -> ProviderConfig {
    let kind =
        ProviderKind::Dev { dangerously_allow_non_loopback: false, userinfo: UserinfoPointers::default() };
    let mut config = ProviderConfig::new(name, Some(Preset::Dev), "Dev", kind);
    config.client_id = DEV_CLIENT_ID.into();
    config.scopes = OIDC_SCOPES.map(String::from).to_vec();
    config
}

/// Why the development provider must not run here, if it must not: it believes any address
/// typed into it, so anyone who can reach it can log in as anyone. It runs only when the server
/// listens on a loopback address and its public URL (when set) is plain http on a loopback host;
/// an https `public_url` means a deployment behind TLS, even with a loopback bind address behind
/// a reverse proxy.
pub fn exposure(public_url: Option<&Url>, listen: SocketAddr) -> Option<String> {
    if let Some(url) = public_url {
        if url.scheme() == "https" {
            return Some(format!("`server.public_url` is {url}, an https address, i.e. a deployment"));
        }
        if !crate::config::is_loopback_url(url) {
            return Some(format!("`server.public_url` is {url}, which is not a loopback address"));
        }
    }
    if !listen.ip().is_loopback() {
        return Some(format!(
            "the server listens on {listen} (`server.bind`), which is not a loopback address"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_addresses_may_run_the_dev_provider() {
        let local: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let url = |u: &str| Url::parse(u).unwrap();
        assert_eq!(exposure(None, local), None);
        assert_eq!(exposure(Some(&url("http://localhost:5000")), local), None);
        assert_eq!(exposure(Some(&url("http://[::1]:5000")), "[::1]:5000".parse().unwrap()), None);
        assert!(exposure(Some(&url("https://localhost")), local).unwrap().contains("https"));
        assert!(exposure(Some(&url("https://app.example.com")), local).unwrap().contains("https"));
        assert!(exposure(Some(&url("http://app.example.com")), local).unwrap().contains("not a loopback"));
        assert!(exposure(None, "0.0.0.0:5000".parse().unwrap()).unwrap().contains("server.bind"));
    }
}
