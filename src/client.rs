//! Who is on the other end: the client's IP address, for rate limits and the audit log.
//!
//! The peer address of the connection is the client, unless the peer is one of the configured
//! `trusted_proxies`: only then is `X-Forwarded-For` read, from the right (the hop our proxy
//! added) leftwards, and the first address that is not itself a trusted proxy is the client.
//! Everything left of it was written by the client and proves nothing. A request from anyone
//! else has its `X-Forwarded-For` ignored entirely, so nobody can pick their own address.
//!
//! The peer address comes from axum's `ConnectInfo`, which [`crate::App`] provides. An app that
//! embeds loginwith and serves without `into_make_service_with_connect_info` has no peer address:
//! then the client is unknown, rate limits do not apply, and a warning says so once.

use crate::state::AppState;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use ipnet::IpNet;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};

/// The client's address, when known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub Option<IpAddr>);

impl std::fmt::Display for ClientAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(ip) => write!(f, "{ip}"),
            None => f.write_str("unknown"),
        }
    }
}

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(client_addr(
            parts.extensions.get::<ConnectInfo<SocketAddr>>(),
            &parts.headers,
            &state.trusted_proxies,
        ))
    }
}

/// The browser's `User-Agent`, clipped to 200 characters without control characters (empty when
/// absent): kept with a session so its user can tell their sessions apart on the account page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserAgent(pub String);

/// How much of a `User-Agent` is kept.
const USER_AGENT_CHARS: usize = 200;

impl<S: Send + Sync> FromRequestParts<S> for UserAgent {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let agent =
            parts.headers.get(axum::http::header::USER_AGENT).map(|v| String::from_utf8_lossy(v.as_bytes()));
        Ok(UserAgent(agent.map(|a| crate::domain::clip(&a, USER_AGENT_CHARS)).unwrap_or_default()))
    }
}

/// Whether the request came straight from one of `[server] trusted_proxies` (an extractor).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FromTrustedProxy(pub bool);

impl FromRequestParts<AppState> for FromTrustedProxy {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(FromTrustedProxy(from_trusted_proxy(
            parts.extensions.get::<ConnectInfo<SocketAddr>>(),
            &state.trusted_proxies,
        )))
    }
}

/// The client of a request, from its connection info and headers.
pub fn client_addr(
    connect_info: Option<&ConnectInfo<SocketAddr>>,
    headers: &HeaderMap,
    trusted: &[IpNet],
) -> ClientAddr {
    static WARNED: AtomicBool = AtomicBool::new(false);
    let Some(ConnectInfo(peer)) = connect_info else {
        if !WARNED.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "no peer address on requests: serve the router with \
                 `into_make_service_with_connect_info::<SocketAddr>()` for rate limits and client \
                 addresses in the audit log"
            );
        }
        return ClientAddr(None);
    };
    ClientAddr(Some(client_ip(peer.ip(), headers, trusted)))
}

/// Whether the request came straight from one of the trusted proxies (only then are its
/// `X-Forwarded-*` headers believed).
pub fn from_trusted_proxy(connect_info: Option<&ConnectInfo<SocketAddr>>, trusted: &[IpNet]) -> bool {
    connect_info.is_some_and(|ConnectInfo(peer)| {
        let peer = canonical(peer.ip());
        trusted.iter().any(|net| net.contains(&peer))
    })
}

/// See the module doc.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let peer = canonical(peer);
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        let Some(ip) = parse_hop(hop) else {
            // Junk where an address should be: whatever lies beyond it is not to be believed.
            break;
        };
        client = ip;
        if !is_trusted(&ip) {
            break;
        }
    }
    client
}

/// An `X-Forwarded-For` entry: an address, possibly with a port (`1.2.3.4:5`, `[::1]:5`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>().ok().or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip())).map(canonical)
}

/// An IPv4 client on a dual-stack socket arrives as `::ffff:1.2.3.4`: the same client either way.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append("x-forwarded-for", HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn without_trusted_proxies_the_header_is_ignored() {
        assert_eq!(client_ip(ip("203.0.113.9"), &headers(&["1.2.3.4"]), &[]), ip("203.0.113.9"));
        // A peer that is not a trusted proxy cannot pick its address either.
        let trusted = nets(&["10.0.0.0/8"]);
        assert_eq!(client_ip(ip("203.0.113.9"), &headers(&["1.2.3.4"]), &trusted), ip("203.0.113.9"));
    }

    #[test]
    fn behind_trusted_proxies_the_rightmost_untrusted_hop_is_the_client() {
        let trusted = nets(&["10.0.0.0/8", "127.0.0.1/32"]);
        // The client wrote "6.6.6.6" itself; our proxy appended the real address.
        let h = headers(&["6.6.6.6, 198.51.100.7, 10.0.0.2"]);
        assert_eq!(client_ip(ip("127.0.0.1"), &h, &trusted), ip("198.51.100.7"));
        // Several header lines are one list, in order.
        let h = headers(&["6.6.6.6", "198.51.100.7:4711"]);
        assert_eq!(client_ip(ip("10.1.1.1"), &h, &trusted), ip("198.51.100.7"));
        // No header: the proxy itself is all we know.
        assert_eq!(client_ip(ip("10.1.1.1"), &headers(&[]), &trusted), ip("10.1.1.1"));
        // Junk stops the walk at the last good hop.
        let h = headers(&["198.51.100.7, garbage, 10.0.0.3"]);
        assert_eq!(client_ip(ip("10.1.1.1"), &h, &trusted), ip("10.0.0.3"));
        // IPv6 with brackets and a port; IPv4-mapped addresses are IPv4.
        let h = headers(&["[2001:db8::1]:443"]);
        assert_eq!(client_ip(ip("::ffff:10.0.0.1"), &h, &trusted), ip("2001:db8::1"));
    }
}
