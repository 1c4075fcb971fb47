//! The virtual key a client presents: `Authorization: Bearer <key>` or `x-api-key`.
//! Shared by the component (authentication) and the host (admission by org).

/// Header carrying `Bearer <key>`.
pub const AUTHORIZATION: &str = "authorization";
/// Alternative header carrying the bare key (Anthropic-style clients).
pub const X_API_KEY: &str = "x-api-key";

/// The presented key: a Bearer credential wins over `x-api-key`; blank or non-UTF-8
/// values count as absent so they deny as `MissingKey`, never as a lookup.
pub fn presented_key<'a>(
    authorization: Option<&'a [u8]>,
    x_api_key: Option<&'a [u8]>,
) -> Option<&'a str> {
    authorization
        .and_then(bearer)
        .or_else(|| x_api_key.and_then(non_blank))
}

fn bearer(value: &[u8]) -> Option<&str> {
    let value = std::str::from_utf8(value).ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim();
    (!token.is_empty()).then_some(token)
}

fn non_blank(value: &[u8]) -> Option<&str> {
    let value = std::str::from_utf8(value).ok()?.trim();
    (!value.is_empty()).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_then_x_api_key() {
        assert_eq!(
            presented_key(Some(b"Bearer sk-tg-1"), None),
            Some("sk-tg-1")
        );
        assert_eq!(
            presented_key(Some(b"bearer   sk-tg-1 "), None),
            Some("sk-tg-1")
        );
        assert_eq!(presented_key(Some(b"Bearer a"), Some(b"b")), Some("a"));
        assert_eq!(presented_key(None, Some(b" sk-tg-2 ")), Some("sk-tg-2"));
        // A non-Bearer Authorization does not hide a usable x-api-key.
        assert_eq!(
            presented_key(Some(b"Basic dXNlcg=="), Some(b"k")),
            Some("k")
        );
    }

    #[test]
    fn blank_or_malformed_is_missing() {
        assert_eq!(presented_key(None, None), None);
        assert_eq!(presented_key(Some(b"Bearer "), None), None);
        assert_eq!(presented_key(Some(b"Bearer"), None), None);
        assert_eq!(presented_key(Some(b"sk-tg-1"), None), None);
        assert_eq!(presented_key(None, Some(b"  ")), None);
        assert_eq!(presented_key(Some(b"Bearer \xff"), None), None);
    }
}
