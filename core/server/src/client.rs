//! Which client a request is from, for the rate limit. Behind a reverse
//! proxy every TCP connection comes from the proxy, so the client is named
//! by the proxy's `X-Forwarded-For`; that header is believed only from a
//! peer listed in `[server] trusted_proxies`, since anyone else can write it.

use axum::http::HeaderMap;
pub use cascade_engine::server_config::{Cidr, CidrError};
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

/// The client a request is from. From a peer that is not a trusted proxy,
/// the peer itself; from a trusted proxy, the right-most `X-Forwarded-For`
/// address that is not a trusted proxy (each proxy appends the address it
/// was reached from, so everything left of that is the client's to write).
/// An entry that is not an address stops the walk at the hop that wrote it.
pub fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &[Cidr]) -> IpAddr {
    let is_trusted = |address: IpAddr| trusted.iter().any(|block| block.contains(address));
    let mut client = peer.to_canonical();
    if !is_trusted(client) {
        return client;
    }
    let forwarded = headers
        .get_all("x-forwarded-for")
        .iter()
        .rev()
        .flat_map(|value| value.to_str().unwrap_or("").rsplit(','));
    for entry in forwarded {
        let entry = entry.trim();
        let Some(address) = IpAddr::from_str(entry)
            .ok()
            .or_else(|| SocketAddr::from_str(entry).ok().map(|s| s.ip()))
        else {
            return client;
        };
        client = address.to_canonical();
        if !is_trusted(client) {
            return client;
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn cidr(text: &str) -> Cidr {
        text.parse().unwrap()
    }

    fn forwarded(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append("x-forwarded-for", HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn blocks_contain_their_addresses_only() {
        assert!(cidr("10.0.0.0/8").contains(ip("10.200.3.4")));
        assert!(!cidr("10.0.0.0/8").contains(ip("11.0.0.1")));
        assert!(cidr("192.0.2.7").contains(ip("192.0.2.7")));
        assert!(!cidr("192.0.2.7").contains(ip("192.0.2.8")));
        assert!(cidr("2001:db8::/32").contains(ip("2001:db8:1::5")));
        assert!(!cidr("2001:db8::/32").contains(ip("10.0.0.1")));
        assert!(cidr("127.0.0.1").contains(ip("::ffff:127.0.0.1")));
        assert!(cidr("0.0.0.0/0").contains(ip("203.0.113.9")));
    }

    #[test]
    fn a_malformed_block_says_what_to_write() {
        for (text, expected) in [
            ("10.0.0.0/33", "longer than 32 bits"),
            ("10.0.0.1/8", "\"10.0.0.0/8\""),
            ("proxy.example.org", "such as \"10.0.0.0/8\""),
            ("10.0.0.0/x", "such as"),
        ] {
            let message = text.parse::<Cidr>().unwrap_err().to_string();
            assert!(message.contains(expected), "{text}: {message}");
        }
    }

    #[test]
    fn forwarded_for_is_ignored_from_an_untrusted_peer() {
        let headers = forwarded(&["198.51.100.1"]);
        assert_eq!(
            client_address(ip("203.0.113.5"), &headers, &[cidr("10.0.0.0/8")]),
            ip("203.0.113.5")
        );
        assert_eq!(
            client_address(ip("203.0.113.5"), &headers, &[]),
            ip("203.0.113.5")
        );
    }

    #[test]
    fn behind_trusted_proxies_the_right_most_untrusted_address_is_the_client() {
        let trusted = [cidr("10.0.0.0/8")];
        // The client wrote a spoofed first entry; the proxies appended the rest.
        let headers = forwarded(&["1.1.1.1, 198.51.100.7", "10.1.1.1"]);
        assert_eq!(
            client_address(ip("10.0.0.2"), &headers, &trusted),
            ip("198.51.100.7")
        );
        assert_eq!(
            client_address(ip("10.0.0.2"), &forwarded(&["198.51.100.7:5123"]), &trusted),
            ip("198.51.100.7")
        );
        assert_eq!(
            client_address(ip("10.0.0.2"), &forwarded(&["junk, 10.3.3.3"]), &trusted),
            ip("10.3.3.3"),
            "the walk stops at the hop that wrote something unreadable"
        );
        assert_eq!(
            client_address(ip("10.0.0.2"), &HeaderMap::new(), &trusted),
            ip("10.0.0.2"),
            "a proxy that forwards no address is the client"
        );
    }
}
