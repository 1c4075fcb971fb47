//! The response cache's layout in the edge store: the bounds of its TTL and the
//! format of an entry, shared by the edge (reads and writes entries) and the admin
//! service (validates the TTL, sweeps expired entries).
//!
//! `wasi:keyvalue` has no expiry, so an entry carries its own: `<expires_at_ms>\n
//! <status>\n<content-type>\n<body>`. The header is ASCII and comes first, so the
//! sweep reads only a short prefix of each value.

/// Prefix of cache entries: `cache:<org_id>:<sha256 hex of the request>`.
pub const CACHE_PREFIX: &str = "cache:";
/// Shortest TTL an org may configure, in seconds.
pub const MIN_TTL_SECONDS: u32 = 1;
/// Longest TTL an org may configure (7 days), in seconds.
pub const MAX_TTL_SECONDS: u32 = 7 * 86_400;
/// TTL of an org that enables caching without naming one (5 minutes).
pub const DEFAULT_TTL_SECONDS: u32 = 300;
/// Largest answer body cached (1 MiB); larger answers are relayed, not stored.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Bytes of a value that always hold its expiry (a `u64` in decimal and `\n`).
pub const EXPIRY_PREFIX_BYTES: usize = 21;

/// `cache:<org_id>:<hash hex>`.
pub fn cache_key(org_id: &str, hash_hex: &str) -> String {
    format!("{CACHE_PREFIX}{org_id}:{hash_hex}")
}

/// A cached answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry<'a> {
    /// Unix ms after which the entry is stale (never served).
    pub expires_at_ms: u64,
    /// HTTP status of the answer.
    pub status: u16,
    /// Its `Content-Type`, empty when the provider sent none.
    pub content_type: &'a [u8],
    /// Its body.
    pub body: &'a [u8],
}

impl Entry<'_> {
    /// The stored form.
    pub fn encode(&self) -> Vec<u8> {
        let head = format!("{}\n{}\n", self.expires_at_ms, self.status);
        let mut out =
            Vec::with_capacity(head.len() + self.content_type.len() + 1 + self.body.len());
        out.extend_from_slice(head.as_bytes());
        out.extend_from_slice(self.content_type);
        out.push(b'\n');
        out.extend_from_slice(self.body);
        out
    }

    /// Reads a stored entry; `None` for anything else (treated as absent).
    pub fn decode(value: &[u8]) -> Option<Entry<'_>> {
        let mut parts = value.splitn(4, |&b| b == b'\n');
        let expires_at_ms = number(parts.next()?)?;
        let status = u16::try_from(number(parts.next()?)?).ok()?;
        let content_type = parts.next()?;
        let body = parts.next()?;
        Some(Entry {
            expires_at_ms,
            status,
            content_type,
            body,
        })
    }

    /// Whether the entry may still be served at `now_ms`.
    pub fn is_fresh(&self, now_ms: u64) -> bool {
        now_ms < self.expires_at_ms
    }
}

/// The expiry of a stored entry from (at least) its first
/// [`EXPIRY_PREFIX_BYTES`] bytes; `None` when unreadable.
pub fn expires_at(prefix: &[u8]) -> Option<u64> {
    number(prefix.split(|&b| b == b'\n').next()?)
}

fn number(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_the_expiry_reads_from_a_prefix() {
        let entry = Entry {
            expires_at_ms: u64::MAX,
            status: 200,
            content_type: b"application/json",
            body: b"{\"a\":\"x\ny\"}",
        };
        let stored = entry.encode();
        assert_eq!(Entry::decode(&stored), Some(entry.clone()));
        assert_eq!(expires_at(&stored[..EXPIRY_PREFIX_BYTES]), Some(u64::MAX));
        assert!(entry.is_fresh(u64::MAX - 1));
        assert!(!entry.is_fresh(u64::MAX));
        let bare = Entry {
            expires_at_ms: 5,
            status: 200,
            content_type: b"",
            body: b"",
        };
        assert_eq!(Entry::decode(&bare.encode()), Some(bare));
    }

    #[test]
    fn anything_else_is_unreadable() {
        for value in [
            &b""[..],
            b"12",
            b"12\n200",
            b"12\n200\napplication/json",
            b"x\n200\nct\n{}",
            b"-1\n200\nct\n{}",
            b"12\n70000\nct\n{}",
            b"99999999999999999999\n200\nct\n{}",
        ] {
            assert_eq!(Entry::decode(value), None, "{value:?}");
        }
        assert_eq!(expires_at(b""), None);
        assert_eq!(expires_at(b"+5\n"), None);
    }

    #[test]
    fn keys_are_per_org() {
        assert_eq!(cache_key("o1", "ab"), "cache:o1:ab");
    }
}
