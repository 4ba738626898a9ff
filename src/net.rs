//! Source addresses: does a peer fall inside a set of CIDRs, and what address is it counted
//! under.
//!
//! It must not decide anything else about a request; `server`, `policy` and `audit` call it.

use std::net::IpAddr;

use ipnet::IpNet;

/// A set of allowed networks. An empty set allows every address (no restriction configured).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Networks(Vec<IpNet>);

impl Networks {
    pub fn new(nets: Vec<IpNet>) -> Self {
        Networks(nets)
    }

    /// True when no restriction is configured.
    pub fn is_any(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `addr` is allowed. IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`, as a dual-stack
    /// listener reports IPv4 peers) are matched as the IPv4 address they carry.
    pub fn allows(&self, addr: IpAddr) -> bool {
        if self.0.is_empty() {
            return true;
        }
        let addr = addr.to_canonical();
        self.0.iter().any(|n| n.contains(&addr))
    }

    pub fn iter(&self) -> impl Iterator<Item = &IpNet> {
        self.0.iter()
    }
}

/// The address a peer is counted under (connection caps, audit tallies): an IPv4 address as it
/// is (also when IPv4-mapped), an IPv6 address by its /64, which one host can use whole.
pub fn source_of(peer: IpAddr) -> IpAddr {
    match peer.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Networks {
        Networks::new(list.iter().map(|s| s.parse().unwrap()).collect())
    }

    #[test]
    fn empty_set_allows_everything() {
        assert!(Networks::default().allows("203.0.113.9".parse().unwrap()));
    }

    #[test]
    fn ipv4_mapped_ipv6_peer_matches_its_ipv4_network() {
        let n = nets(&["10.0.0.0/8"]);
        assert!(n.allows("::ffff:10.1.2.3".parse().unwrap()));
        assert!(!n.allows("::ffff:11.1.2.3".parse().unwrap()));
    }

    #[test]
    fn ipv6_networks_match_ipv6_peers_only() {
        let n = nets(&["fd00::/8"]);
        assert!(n.allows("fd12::1".parse().unwrap()));
        assert!(!n.allows("10.0.0.1".parse().unwrap()));
        assert!(!n.allows("::1".parse().unwrap()));
    }

    #[test]
    fn ipv4_network_does_not_match_outside_addresses() {
        let n = nets(&["127.0.0.0/8", "192.0.2.0/24"]);
        assert!(n.allows("127.9.9.9".parse().unwrap()));
        assert!(n.allows("192.0.2.200".parse().unwrap()));
        assert!(!n.allows("192.0.3.1".parse().unwrap()));
    }

    #[test]
    fn ipv6_peers_count_by_their_64_and_mapped_ipv4_as_ipv4() {
        let of = |s: &str| source_of(s.parse().unwrap()).to_string();
        assert_eq!(of("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::");
        assert_eq!(of("::ffff:10.1.2.3"), "10.1.2.3");
        assert_eq!(of("10.1.2.3"), "10.1.2.3");
    }
}
