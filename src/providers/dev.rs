//! The development provider preset: an OpenID Connect provider served by this very process under
//! `/dev-provider/` (see [`crate::dev_provider`]), whose issuer and endpoints are filled in at start
//! once the listening address is known.

use super::{oidc_defaults, Preset};
use crate::config::ProviderConfig;
use crate::domain::secret::ClientSecret;
use crate::domain::ProviderName;
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

/// The development provider's defaults.
pub fn defaults(name: ProviderName) -> ProviderConfig {
    let mut config = oidc_defaults(name, Preset::Dev, "Dev", None);
    config.client_id = DEV_CLIENT_ID.into();
    config
}
