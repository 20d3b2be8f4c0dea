//! `[server]` in `cascade.toml`: the HTTP server's limits and the reverse
//! proxies it believes. Parsed here with the rest of the configuration; the
//! server crate applies it.

use serde::{Deserialize, Deserializer};
use std::net::IpAddr;
use std::str::FromStr;

/// `[server]` in `cascade.toml`: the HTTP server's limits, and the reverse
/// proxies whose `X-Forwarded-For` names the client.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Seconds a client has to send a request's head (line and headers),
    /// counted from when the server starts waiting for it; also how long a
    /// kept-alive connection may wait for its next request.
    #[serde(
        default = "default_header_timeout",
        deserialize_with = "in_range::<_, 1, 300>"
    )]
    pub header_timeout_seconds: u64,
    /// Seconds a client has to send a request's body, counted from when its
    /// head arrived: a body sent a byte at a time is cut off with 408.
    #[serde(
        default = "default_body_timeout",
        deserialize_with = "in_range::<_, 1, 600>"
    )]
    pub body_timeout_seconds: u64,
    /// Seconds a connection may go without a byte read or written while no
    /// request is being handled (a client that stops reading its response).
    #[serde(
        default = "default_idle_timeout",
        deserialize_with = "in_range::<_, 1, 3600>"
    )]
    pub idle_timeout_seconds: u64,
    /// Connections open at once; more wait to be accepted.
    #[serde(
        default = "default_max_connections",
        deserialize_with = "in_range::<_, 1, 65536>"
    )]
    pub max_connections: u64,
    /// Reverse proxies (addresses or CIDR blocks) whose `X-Forwarded-For`
    /// is believed; from any other peer the peer's own address is the client.
    #[serde(default)]
    pub trusted_proxies: Vec<Cidr>,
}

fn default_header_timeout() -> u64 {
    10
}

fn default_body_timeout() -> u64 {
    30
}

fn default_idle_timeout() -> u64 {
    60
}

fn default_max_connections() -> u64 {
    1024
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            header_timeout_seconds: default_header_timeout(),
            body_timeout_seconds: default_body_timeout(),
            idle_timeout_seconds: default_idle_timeout(),
            max_connections: default_max_connections(),
            trusted_proxies: Vec::new(),
        }
    }
}

/// A whole number from `MIN` to `MAX`; the error names both, and TOML puts
/// the key's line in front of it.
fn in_range<'de, D: Deserializer<'de>, const MIN: u64, const MAX: u64>(
    deserializer: D,
) -> Result<u64, D::Error> {
    let value = i64::deserialize(deserializer)?;
    u64::try_from(value)
        .ok()
        .filter(|v| (MIN..=MAX).contains(v))
        .ok_or_else(|| {
            serde::de::Error::custom(format!(
                "{value} is out of range; write a whole number from {MIN} to {MAX}"
            ))
        })
}

/// An IP address or a block of them: `192.0.2.7`, `10.0.0.0/8`,
/// `2001:db8::/32`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

/// Why a `trusted_proxies` entry is not an address or block.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    #[error(
        "\"{0}\" is not an IP address or CIDR block; write one such as \"10.0.0.0/8\", \"192.0.2.7\" or \"2001:db8::/32\""
    )]
    NotAnAddress(String),
    #[error("\"{text}\" has a prefix longer than {max} bits; write at most /{max}")]
    PrefixTooLong { text: String, max: u8 },
    #[error(
        "\"{text}\" has bits set after its /{prefix} prefix; write the block's first address, \"{network}/{prefix}\""
    )]
    HostBitsSet {
        text: String,
        network: IpAddr,
        prefix: u8,
    },
}

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(text: &str) -> Result<Cidr, CidrError> {
        let not_an_address = || CidrError::NotAnAddress(text.to_owned());
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let network = IpAddr::from_str(address.trim())
            .map_err(|_| not_an_address())?
            .to_canonical();
        let max = bits(network);
        let prefix = match prefix {
            Some(prefix) => prefix.trim().parse::<u8>().map_err(|_| not_an_address())?,
            None => max,
        };
        if prefix > max {
            return Err(CidrError::PrefixTooLong {
                text: text.to_owned(),
                max,
            });
        }
        let cidr = Cidr { network, prefix };
        let first = cidr.first_address();
        if first != network {
            return Err(CidrError::HostBitsSet {
                text: text.to_owned(),
                network: first,
                prefix,
            });
        }
        Ok(cidr)
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Cidr, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

fn bits(address: IpAddr) -> u8 {
    match address {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

impl Cidr {
    /// The network address with every bit after the prefix cleared.
    fn first_address(&self) -> IpAddr {
        match self.network {
            IpAddr::V4(a) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::from((u32::from(a) & mask).to_be_bytes())
            }
            IpAddr::V6(a) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::from((u128::from(a) & mask).to_be_bytes())
            }
        }
    }

    /// Whether `address` (IPv4-mapped IPv6 counts as IPv4) is in the block.
    pub fn contains(&self, address: IpAddr) -> bool {
        let address = address.to_canonical();
        bits(address) == bits(self.network)
            && Cidr {
                network: address,
                prefix: self.prefix,
            }
            .first_address()
                == self.network
    }
}
