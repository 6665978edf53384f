//! The one HTTP client that talks to providers.
//!
//! Every call has a connect timeout, a total timeout and a cap on the response body, follows no
//! redirects (a redirect from a token or userinfo endpoint is a misconfiguration or an SSRF
//! attempt, never something to chase), and reuses pooled connections. Bodies are read chunk by
//! chunk so an oversized answer is cut off at the cap instead of being buffered whole.

use crate::config::HttpConfig;
use crate::oauth::ProviderError;
use metrics::SharedString;
use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION};
use reqwest::{RequestBuilder, StatusCode};
use std::time::Instant;
use url::Url;

/// Which provider call failed, for messages and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The token endpoint.
    Token,
    /// The userinfo endpoint.
    Userinfo,
    /// GitHub's `/user/emails`.
    Emails,
    /// OpenID Connect discovery document.
    Discovery,
    /// The provider's key set.
    Jwks,
}

impl Step {
    /// The `step` label of the provider metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Token => "token",
            Step::Userinfo => "userinfo",
            Step::Emails => "emails",
            Step::Discovery => "discovery",
            Step::Jwks => "jwks",
        }
    }
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Step::Token => "token endpoint",
            Step::Userinfo => "userinfo endpoint",
            Step::Emails => "e-mail endpoint",
            Step::Discovery => "discovery document",
            Step::Jwks => "key set",
        })
    }
}

/// A response that arrived whole and within limits.
#[derive(Debug)]
pub struct LimitedResponse {
    /// The HTTP status.
    pub status: StatusCode,
    /// The body, at most `max_response_bytes` long.
    pub body: Vec<u8>,
}

impl LimitedResponse {
    /// The body as JSON, or [`ProviderError::NotJson`].
    pub fn json(&self, step: Step) -> Result<serde_json::Value, ProviderError> {
        serde_json::from_slice(&self.body)
            .map_err(|_| ProviderError::NotJson { step, status: self.status.as_u16() })
    }
}

/// The system resolver, except that `localhost` and every name under it are the loopback
/// addresses, as RFC 6761 §6.3 asks of resolver libraries (and browsers do), whatever the system's
/// resolver says: the development provider then reaches itself through `public_url =
/// "http://app.localhost:8080/auth"` behind a local proxy, as the browser does. Others go to
/// `getaddrinfo` (tokio's `lookup_host`), as reqwest's default resolver does.
#[derive(Debug)]
struct LocalhostNames;

impl reqwest::dns::Resolve for LocalhostNames {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().trim_end_matches('.').to_ascii_lowercase();
        Box::pin(async move {
            let addrs: reqwest::dns::Addrs = if host == "localhost" || host.ends_with(".localhost") {
                let loopback = [std::net::Ipv4Addr::LOCALHOST.into(), std::net::Ipv6Addr::LOCALHOST.into()];
                Box::new(loopback.into_iter().map(|ip| std::net::SocketAddr::new(ip, 0)))
            } else {
                Box::new(tokio::net::lookup_host((host.as_str(), 0)).await?.collect::<Vec<_>>().into_iter())
            };
            Ok(addrs)
        })
    }
}

/// The shared provider client. [`ProviderHttp::for_provider`] names the provider its calls are
/// counted under (the metrics' `provider` label).
#[derive(Debug, Clone)]
pub struct ProviderHttp {
    client: reqwest::Client,
    max_body: usize,
    provider: SharedString,
}

impl ProviderHttp {
    /// Builds the client from the `[http]` limits.
    pub fn new(config: &HttpConfig) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("loginwith/", env!("CARGO_PKG_VERSION")))
            .pool_idle_timeout(std::time::Duration::from_secs(60))
            .dns_resolver(std::sync::Arc::new(LocalhostNames))
            .build()?;
        Ok(Self { client, max_body: config.max_response_bytes, provider: SharedString::const_str("") })
    }

    /// The same client (a shared handle), its calls counted under the provider `name`.
    pub fn for_provider(&self, name: &str) -> Self {
        Self { provider: crate::metrics::provider_label(name), ..self.clone() }
    }

    /// Counts a failed step under its kind, and passes the result on.
    pub fn observe<T>(&self, step: Step, result: Result<T, ProviderError>) -> Result<T, ProviderError> {
        if let Err(err) = &result {
            crate::metrics::provider_error(&self.provider, step, err.kind());
        }
        result
    }

    /// A POST with a form body (the token request).
    pub fn post_form(&self, url: &Url) -> RequestBuilder {
        self.client.post(url.clone()).header(ACCEPT, HeaderValue::from_static("application/json"))
    }

    /// A GET with a bearer token (userinfo and friends).
    pub fn get_with_bearer(&self, url: &Url, token: &str) -> RequestBuilder {
        self.client
            .get(url.clone())
            .header(ACCEPT, HeaderValue::from_static("application/json"))
            .header(AUTHORIZATION, format!("Bearer {token}"))
    }

    /// A plain GET (discovery, JWKS).
    pub fn get(&self, url: &Url) -> RequestBuilder {
        self.client.get(url.clone()).header(ACCEPT, HeaderValue::from_static("application/json"))
    }

    /// Sends the request and reads the body up to the cap.
    pub async fn send(&self, step: Step, request: RequestBuilder) -> Result<LimitedResponse, ProviderError> {
        let started = Instant::now();
        let result = self.send_timed(step, request).await;
        crate::metrics::provider_request(&self.provider, step, started.elapsed());
        result
    }

    async fn send_timed(
        &self,
        step: Step,
        request: RequestBuilder,
    ) -> Result<LimitedResponse, ProviderError> {
        let mut response = request.send().await.map_err(|e| classify(step, e))?;
        let status = response.status();
        if response.content_length().is_some_and(|n| n > self.max_body as u64) {
            return Err(ProviderError::TooLarge { step, limit: self.max_body });
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| classify(step, e))? {
            if body.len() + chunk.len() > self.max_body {
                return Err(ProviderError::TooLarge { step, limit: self.max_body });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(LimitedResponse { status, body })
    }
}

fn classify(step: Step, err: reqwest::Error) -> ProviderError {
    if err.is_timeout() {
        ProviderError::Timeout { step }
    } else {
        ProviderError::Unreachable { step, source: err }
    }
}
