//! Provider origins: the scheme, host and port a `base_url` points at, which the
//! admin service compiles into an org's egress allow-list and the edge checks
//! before calling out; and which hosts count as internal (loopback, private,
//! link-local), where only a platform admin may point a provider.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// `scheme://host:port` of an `http(s)://` URL, lower-cased, the port explicit
/// (80/443 by default); `None` for anything else (userinfo, no host, bad port).
pub fn origin(base_url: &str) -> Option<String> {
    let (scheme, rest) = split_scheme(base_url)?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let (host, port) = host_port(authority, scheme)?;
    Some(format!("{scheme}://{host}:{port}"))
}

/// The host of an `http(s)://` URL, lower-cased, IPv6 without brackets.
pub fn host(base_url: &str) -> Option<String> {
    let (scheme, rest) = split_scheme(base_url)?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let (host, _) = host_port(authority, scheme)?;
    Some(
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .to_string(),
    )
}

fn split_scheme(url: &str) -> Option<(&'static str, &str)> {
    for scheme in ["https", "http"] {
        let prefix_len = scheme.len() + 3;
        if url.len() >= prefix_len
            && url[..scheme.len()].eq_ignore_ascii_case(scheme)
            && &url[scheme.len()..prefix_len] == "://"
        {
            return Some((scheme, &url[prefix_len..]));
        }
    }
    None
}

fn host_port(authority: &str, scheme: &str) -> Option<(String, u16)> {
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let default_port = if scheme == "https" { 443 } else { 80 };
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (inside, after) = v6.split_once(']')?;
        inside.parse::<Ipv6Addr>().ok()?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        (format!("[{}]", inside.to_ascii_lowercase()), port)
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h.to_ascii_lowercase(), Some(p)),
            None => (authority.to_ascii_lowercase(), None),
        }
    };
    if host.is_empty() {
        return None;
    }
    let port = match port {
        None => default_port,
        Some(p) => p.parse::<u16>().ok().filter(|&p| p != 0)?,
    };
    Some((host, port))
}

/// Whether a URL's host is internal to the edge's network: a loopback, private,
/// link-local, unique-local, CGNAT or unspecified address, `localhost` (and its
/// subdomains), or a numeric host a resolver would read as an address in a
/// non-standard form (`2130706433`, `0x7f.1`). Unparseable URLs count as internal.
pub fn is_internal(base_url: &str) -> bool {
    let Some(host) = host(base_url) else {
        return true;
    };
    if let Ok(ip) = host.parse::<IpAddr>() {
        return is_internal_ip(ip);
    }
    let name = host.trim_end_matches('.');
    if name == "localhost" || name.ends_with(".localhost") {
        return true;
    }
    // inet_aton reads `127.1`, `2130706433` and `0x7f000001` as IPv4 addresses.
    let last = name.rsplit('.').next().unwrap_or(name);
    last.bytes().all(|b| b.is_ascii_hexdigit() || b == b'x')
        && last.bytes().any(|b| b.is_ascii_digit())
}

/// Whether an address is one a tenant must not reach through the edge.
pub fn is_internal_ip(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => is_internal_v4(v4),
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                // fc00::/7 unique local, fe80::/10 link-local.
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                // 64:ff9b::/96 NAT64 and 2002::/16 6to4 embed a v4 address.
                || (v6.segments()[..6] == [0x64, 0xff9b, 0, 0, 0, 0]
                    && is_internal_v4(embedded_v4(v6, 6)))
                || (first == 0x2002 && is_internal_v4(embedded_v4(v6, 1)))
        }
    }
}

fn embedded_v4(v6: Ipv6Addr, segment: usize) -> Ipv4Addr {
    let s = v6.segments();
    let [a, b] = s[segment].to_be_bytes();
    let [c, d] = s[segment + 1].to_be_bytes();
    Ipv4Addr::new(a, b, c, d)
}

fn is_internal_v4(v4: Ipv4Addr) -> bool {
    let [a, b, ..] = v4.octets();
    v4.is_loopback()
        || v4.is_private()
        || v4.is_link_local()
        || v4.is_unspecified()
        || v4.is_broadcast()
        // 100.64.0.0/10 carrier-grade NAT, 0.0.0.0/8 "this network".
        || (a == 100 && (b & 0xc0) == 64)
        || a == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_normalised() {
        let o = |u: &str| origin(u);
        assert_eq!(
            o("https://API.openai.com/v1").as_deref(),
            Some("https://api.openai.com:443")
        );
        assert_eq!(
            o("HTTP://127.0.0.1:9/v1").as_deref(),
            Some("http://127.0.0.1:9")
        );
        assert_eq!(o("http://[::1]/").as_deref(), Some("http://[::1]:80"));
        assert_eq!(o("http://h:443").as_deref(), Some("http://h:443"));
        for bad in [
            "ftp://h",
            "http://",
            "http://u:p@h/",
            "http://h:99999",
            "http://h:0",
            "http://[zz]/",
            "h",
        ] {
            assert_eq!(o(bad), None, "{bad}");
        }
    }

    #[test]
    fn internal_hosts() {
        for url in [
            "http://127.0.0.1:8080/v1",
            "http://10.1.2.3",
            "http://172.16.0.1",
            "http://192.168.1.1",
            "http://169.254.169.254/latest",
            "http://100.64.0.1",
            "http://0.0.0.0",
            "http://[::1]:80",
            "http://[fe80::1]",
            "http://[fd00::1]",
            "http://[::ffff:127.0.0.1]",
            "http://[64:ff9b::a00:1]",
            "http://localhost:1234",
            "http://LOCALHOST.",
            "http://api.localhost",
            "http://2130706433/",
            "http://0x7f000001/",
            "http://127.1/",
            "http://u@h/",
        ] {
            assert!(is_internal(url), "{url}");
        }
        for url in [
            "https://api.openai.com/v1",
            "http://8.8.8.8",
            "http://[2001:4860::8888]",
            "https://my-llm.example.com:8443",
            "https://cafe.example.com",
        ] {
            assert!(!is_internal(url), "{url}");
        }
    }
}
