//! IP access control lists: CIDR allow and deny lists, IPv4 and IPv6.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// A compiled IP ACL. Deny wins over allow; an empty allow list allows any address.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IpAcl {
    /// Networks allowed; empty means every address not denied.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<IpNet>,
    /// Networks always denied.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny: Vec<IpNet>,
}

impl IpAcl {
    /// Whether the ACL restricts anything at all.
    pub fn is_open(&self) -> bool {
        self.allow.is_empty() && self.deny.is_empty()
    }

    /// Whether `ip` may pass. `None` (the runtime could not tell the client address)
    /// passes only an ACL that restricts nothing: the edge fails closed.
    pub fn permits(&self, ip: Option<IpAddr>) -> bool {
        if self.is_open() {
            return true;
        }
        let Some(ip) = ip else { return false };
        // A v4 client seen through a v6 socket (::ffff:a.b.c.d) is the v4 client.
        let ip = ip.to_canonical();
        if self.deny.iter().any(|net| contains(net, ip)) {
            return false;
        }
        self.allow.is_empty() || self.allow.iter().any(|net| contains(net, ip))
    }
}

fn contains(net: &IpNet, ip: IpAddr) -> bool {
    match (net, ip) {
        (IpNet::V4(n), IpAddr::V4(a)) => n.contains(&a),
        (IpNet::V6(n), IpAddr::V6(a)) => n.contains(&a),
        // A v4-mapped v6 network (::ffff:0:0/96 and inside) also covers v4 clients.
        (IpNet::V6(n), IpAddr::V4(a)) => n.contains(&a.to_ipv6_mapped()),
        (IpNet::V4(_), IpAddr::V6(_)) => false,
    }
}

/// Parses a list of CIDRs (a bare address means a single host), returning the index
/// and text of the first invalid entry.
pub fn parse_cidrs<S: AsRef<str>>(items: &[S]) -> Result<Vec<IpNet>, (usize, String)> {
    items
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let s = s.as_ref().trim();
            s.parse::<IpNet>()
                .map(|n| n.trunc())
                .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| (i, s.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn acl(allow: &[&str], deny: &[&str]) -> IpAcl {
        IpAcl {
            allow: parse_cidrs(allow).unwrap(),
            deny: parse_cidrs(deny).unwrap(),
        }
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn empty_allow_means_any_but_deny_wins() {
        let a = acl(&[], &["10.0.0.0/8"]);
        assert!(a.permits(ip("192.168.1.1")));
        assert!(!a.permits(ip("10.1.2.3")));
        let b = acl(&["10.0.0.0/8"], &["10.9.0.0/16"]);
        assert!(b.permits(ip("10.1.2.3")));
        assert!(!b.permits(ip("10.9.1.1")));
        assert!(!b.permits(ip("11.0.0.1")));
    }

    #[test]
    fn v6_and_mapped_v4() {
        let a = acl(&["2001:db8::/32", "203.0.113.0/24"], &[]);
        assert!(a.permits(ip("2001:db8::1")));
        assert!(!a.permits(ip("2001:db9::1")));
        assert!(a.permits(ip("::ffff:203.0.113.7")));
        assert!(!a.permits(ip("::ffff:198.51.100.7")));
        let deny_mapped = acl(&[], &["::ffff:198.51.100.0/120"]);
        assert!(!deny_mapped.permits(ip("198.51.100.9")));
    }

    #[test]
    fn unknown_client_fails_closed_when_restricted() {
        assert!(IpAcl::default().permits(None));
        assert!(!acl(&["0.0.0.0/0"], &[]).permits(None));
        assert!(!acl(&[], &["10.0.0.0/8"]).permits(None));
    }

    #[test]
    fn parse_reports_the_bad_entry_and_normalises() {
        assert_eq!(
            parse_cidrs(&["10.0.0.0/8", "nope"]).unwrap_err(),
            (1, "nope".to_string())
        );
        assert_eq!(parse_cidrs(&["10.0.0.0/33"]).unwrap_err().0, 0);
        let nets = parse_cidrs(&["10.1.2.3/8", "::1"]).unwrap();
        assert_eq!(nets[0].to_string(), "10.0.0.0/8");
        assert_eq!(nets[1].to_string(), "::1/128");
    }

    proptest! {
        #[test]
        fn v4_prefix_membership_matches_bit_arithmetic(net in any::<u32>(), len in 0u8..=32, addr in any::<u32>()) {
            let cidr = format!("{}/{}", std::net::Ipv4Addr::from(net), len);
            let a = acl(&[cidr.as_str()], &[]);
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            let expected = (net & mask) == (addr & mask);
            prop_assert_eq!(a.permits(Some(IpAddr::V4(addr.into()))), expected);
            // The same network as a deny list is the exact complement.
            let d = acl(&[], &[cidr.as_str()]);
            prop_assert_eq!(d.permits(Some(IpAddr::V4(addr.into()))), !expected);
        }

        #[test]
        fn v6_prefix_membership_matches_bit_arithmetic(net in any::<u128>(), len in 0u8..=128, addr in any::<u128>()) {
            let cidr = format!("{}/{}", std::net::Ipv6Addr::from(net), len);
            let a = acl(&[cidr.as_str()], &[]);
            let mask = if len == 0 { 0 } else { u128::MAX << (128 - len) };
            let client = std::net::Ipv6Addr::from(addr);
            // Mapped-v4 clients are canonicalised to v4 and still matched bit for bit
            // against v6 networks, so the arithmetic holds for every address.
            let expected = (net & mask) == (addr & mask);
            prop_assert_eq!(a.permits(Some(IpAddr::V6(client))), expected);
        }

        #[test]
        fn deny_always_wins(addr in any::<u32>(), len in 0u8..=32) {
            let ip = std::net::Ipv4Addr::from(addr);
            let cidr = format!("{ip}/{len}");
            let a = acl(&[cidr.as_str()], &[cidr.as_str()]);
            prop_assert!(!a.permits(Some(IpAddr::V4(ip))));
        }
    }
}
