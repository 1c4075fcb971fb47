//! The client address: from the runtime's `spin-client-addr`, or from the right-most
//! entry of a forwarding header the organization trusts.

use std::net::{IpAddr, SocketAddr};

/// Header in which Spin (and the Tollgate edge host) passes the peer as `ip:port`.
pub const CLIENT_ADDR_HEADER: &str = "spin-client-addr";

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

/// The address a trusted proxy appended: the last entry of the last header line.
/// Earlier entries were sent by the client and prove nothing, so an unparseable last
/// entry yields `None` rather than falling back to them.
pub fn rightmost_forwarded(lines: &[Vec<u8>]) -> Option<IpAddr> {
    let line = std::str::from_utf8(lines.last()?).ok()?;
    let entry = line.rsplit(',').next()?;
    // `Forwarded: for=1.2.3.4;proto=https` (RFC 7239) names the client in `for=`.
    if entry.contains('=') {
        let value = entry.split(';').find_map(|pair| {
            let (name, value) = pair.split_once('=')?;
            name.trim().eq_ignore_ascii_case("for").then_some(value)
        })?;
        return parse_addr(value);
    }
    parse_addr(entry)
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

    #[test]
    fn forwarded_for_takes_the_rightmost_entry() {
        assert_eq!(
            rightmost_forwarded(&lines(&["6.6.6.6, 203.0.113.9"])),
            ip("203.0.113.9")
        );
        // Several header lines: the proxy's is the last.
        assert_eq!(
            rightmost_forwarded(&lines(&["6.6.6.6", "198.51.100.1,203.0.113.9:443"])),
            ip("203.0.113.9")
        );
        assert_eq!(
            rightmost_forwarded(&lines(&["[2001:db8::1]:80"])),
            ip("2001:db8::1")
        );
        assert_eq!(
            rightmost_forwarded(&lines(&[
                r#"for=6.6.6.6, for="[2001:db8::2]:4711";proto=https"#
            ])),
            ip("2001:db8::2")
        );
    }

    #[test]
    fn forwarded_for_never_falls_back_to_client_entries() {
        assert_eq!(rightmost_forwarded(&lines(&["10.0.0.1, garbage"])), None);
        assert_eq!(rightmost_forwarded(&lines(&["10.0.0.1,"])), None);
        assert_eq!(rightmost_forwarded(&lines(&["proto=https"])), None);
        assert_eq!(rightmost_forwarded(&[]), None);
        assert_eq!(rightmost_forwarded(&[b"\xff".to_vec()]), None);
    }
}
