//! The client address: the runtime's peer address (`spin-client-addr`), or, when
//! the organization names a forwarding header and the peer is a proxy the edge
//! trusts, the address that header says the proxy saw, walking right to left past
//! further trusted proxies (nginx's `real_ip_recursive`).
//!
//! Who is trusted is the edge operator's choice (`trusted_proxies`, a Spin variable
//! or the host's `--trusted-proxy`), never a tenant's: the org only picks the header.

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;

/// Header in which Spin (and the Tollgate edge host) passes the peer as `ip:port`.
pub const CLIENT_ADDR_HEADER: &str = "spin-client-addr";

/// The edge setting listing trusted proxies: comma-separated CIDRs or addresses.
pub const TRUSTED_PROXIES: &str = "trusted_proxies";

/// Parses an address as a runtime or proxy writes it: `ip`, `ip:port`, `[v6]` or
/// `[v6]:port`. Anything else is `None`, which a restricted ACL denies.
pub fn parse_addr(text: &str) -> Option<IpAddr> {
    let text = text.trim().trim_matches('"');
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(sa) = text.parse::<SocketAddr>() {
        return Some(sa.ip());
    }
    // `[v6]` without a port, as RFC 7239 `for=` allows.
    text.strip_prefix('[')?.strip_suffix(']')?.parse().ok()
}

/// Parses the `trusted_proxies` setting. Any invalid entry voids the whole list
/// (nobody is trusted): a typo must not widen trust, and is logged.
pub fn parse_trusted(setting: &str) -> Vec<IpNet> {
    let entries: Vec<&str> = setting
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .collect();
    match policy::acl::parse_cidrs(&entries) {
        Ok(nets) => nets,
        Err((i, entry)) => {
            eprintln!(
                "tollgate: {TRUSTED_PROXIES}[{i}] {entry:?} is not a CIDR; trusting no proxy"
            );
            Vec::new()
        }
    }
}

fn is_trusted(trusted: &[IpNet], ip: IpAddr) -> bool {
    let ip = ip.to_canonical();
    trusted.iter().any(|net| net.contains(&ip))
}

/// One entry of a forwarding header: a bare address, or RFC 7239's `for=`.
fn parse_entry(entry: &str) -> Option<IpAddr> {
    if entry.contains('=') {
        let value = entry.split(';').find_map(|pair| {
            let (name, value) = pair.split_once('=')?;
            name.trim().eq_ignore_ascii_case("for").then_some(value)
        })?;
        return parse_addr(value);
    }
    parse_addr(entry)
}

/// The client address. `peer` is the runtime's; `forwarded` the lines of the
/// org's header. When the peer is not trusted the header is ignored (a direct
/// client could write anything in it). Otherwise the entries are walked from the
/// right: each trusted one is another proxy hop, the first untrusted one is the
/// client. An unparseable entry on that walk yields `None` (a restricted ACL then
/// denies) rather than falling back to entries further left, which the client
/// wrote; when every entry is trusted, the left-most is the client.
pub fn resolve(peer: Option<IpAddr>, forwarded: &[Vec<u8>], trusted: &[IpNet]) -> Option<IpAddr> {
    let peer = peer?;
    if !is_trusted(trusted, peer) {
        return Some(peer);
    }
    let mut client = peer;
    for line in forwarded.iter().rev() {
        let line = std::str::from_utf8(line).ok()?;
        for entry in line.rsplit(',') {
            let ip = parse_entry(entry)?;
            if !is_trusted(trusted, ip) {
                return Some(ip);
            }
            client = ip;
        }
    }
    Some(client)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    fn lines(values: &[&str]) -> Vec<Vec<u8>> {
        values.iter().map(|v| v.as_bytes().to_vec()).collect()
    }

    #[test]
    fn runtime_address_forms() {
        assert_eq!(parse_addr("127.0.0.1:5000"), ip("127.0.0.1"));
        assert_eq!(parse_addr("[::1]:5000"), ip("::1"));
        assert_eq!(parse_addr("10.1.2.3"), ip("10.1.2.3"));
        assert_eq!(parse_addr("2001:db8::7"), ip("2001:db8::7"));
        assert_eq!(parse_addr("[2001:db8::7]"), ip("2001:db8::7"));
        assert_eq!(parse_addr(""), None);
        assert_eq!(parse_addr("localhost:80"), None);
        assert_eq!(parse_addr("[::1"), None);
        assert_eq!(parse_addr("1.2.3.4:99999"), None);
    }

    fn nets(s: &str) -> Vec<IpNet> {
        parse_trusted(s)
    }

    #[test]
    fn trusted_setting_parses_or_trusts_nobody() {
        assert_eq!(nets("").len(), 0);
        assert_eq!(nets(" 10.0.0.0/8, 192.0.2.1 ,::1").len(), 3);
        assert!(nets("10.0.0.0/8, nonsense").is_empty());
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_the_header_says() {
        let t = nets("10.0.0.0/8");
        assert_eq!(
            resolve(ip("198.51.100.4"), &lines(&["203.0.113.7"]), &t),
            ip("198.51.100.4")
        );
        assert_eq!(
            resolve(ip("198.51.100.4"), &lines(&["203.0.113.7"]), &[]),
            ip("198.51.100.4")
        );
        assert_eq!(resolve(None, &lines(&["203.0.113.7"]), &t), None);
    }

    #[test]
    fn walks_right_to_left_past_trusted_hops() {
        let t = nets("10.0.0.0/8, 2001:db8:ffff::/48");
        // The client wrote the first entry; proxies appended the rest.
        assert_eq!(
            resolve(
                ip("10.0.0.1"),
                &lines(&["6.6.6.6, 203.0.113.9, 10.0.0.2"]),
                &t
            ),
            ip("203.0.113.9")
        );
        assert_eq!(
            resolve(
                ip("10.0.0.1"),
                &lines(&["6.6.6.6", "198.51.100.1,203.0.113.9:443"]),
                &t
            ),
            ip("203.0.113.9")
        );
        assert_eq!(
            resolve(ip("::ffff:10.0.0.1"), &lines(&["[2001:db8::1]:80"]), &t),
            ip("2001:db8::1")
        );
        assert_eq!(
            resolve(
                ip("10.0.0.1"),
                &lines(&[r#"for=6.6.6.6, for="[2001:db8::2]:4711";proto=https"#]),
                &t
            ),
            ip("2001:db8::2")
        );
        // Every hop trusted: the left-most; no header: the peer.
        assert_eq!(
            resolve(ip("10.0.0.1"), &lines(&["10.9.9.9, 10.0.0.2"]), &t),
            ip("10.9.9.9")
        );
        assert_eq!(resolve(ip("10.0.0.1"), &[], &t), ip("10.0.0.1"));
    }

    #[test]
    fn never_falls_back_to_client_entries() {
        let t = nets("10.0.0.0/8");
        let peer = ip("10.0.0.1");
        assert_eq!(resolve(peer, &lines(&["203.0.113.9, garbage"]), &t), None);
        assert_eq!(resolve(peer, &lines(&["203.0.113.9,"]), &t), None);
        assert_eq!(resolve(peer, &lines(&["proto=https"]), &t), None);
        assert_eq!(resolve(peer, &[b"\xff".to_vec()], &t), None);
    }
}
