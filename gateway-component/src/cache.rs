//! The response cache: exact-match answers to non-streamed inference requests,
//! kept in the edge store under `cache:<org_id>:<sha256>` for the org's TTL.
//!
//! The hash covers the endpoint, the model and the request body written
//! canonically (object keys sorted, no insignificant whitespace, strings
//! re-escaped, numbers as written), so bodies that differ only in key order or
//! whitespace share an entry and any other difference misses. Only a request of
//! an org with caching on is hashed; nothing here runs otherwise.

use policy::OrgRecord;
use policy::cache::{Entry, MAX_BODY_BYTES};
use sha2::{Digest, Sha256};

use crate::bindings::wasi::keyvalue::store::Bucket;
use crate::routes::Endpoint;

/// Response header telling whether a cacheable answer was a `hit` or a `miss`.
pub const HEADER: &str = "x-tollgate-cache";
/// Request header with the client's directive.
pub const CACHE_CONTROL: &str = "cache-control";

/// Deepest nesting canonicalised (serde_json's own limit, which `inspect` applied).
const MAX_DEPTH: usize = 128;

/// What the client's `Cache-Control` allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Directive {
    /// Serve from and store in the cache.
    Use,
    /// `no-cache`: do not serve a cached answer, but store the fresh one.
    NoCache,
    /// `no-store`: neither read nor write the cache.
    NoStore,
}

impl Directive {
    /// Reads a `Cache-Control` value (comma-separated, case-insensitive);
    /// `no-store` wins over `no-cache`.
    pub fn of(cache_control: Option<&[u8]>) -> Directive {
        let Some(value) = cache_control else {
            return Directive::Use;
        };
        let mut directive = Directive::Use;
        for part in value.split(|&b| b == b',') {
            let name = part.trim_ascii();
            if name.eq_ignore_ascii_case(b"no-store") {
                return Directive::NoStore;
            }
            if name.eq_ignore_ascii_case(b"no-cache") {
                directive = Directive::NoCache;
            }
        }
        directive
    }
}

/// Where a cacheable request's answer lives, and whether it may be served from there.
#[derive(Debug)]
pub struct Slot {
    key: String,
    ttl_ms: u64,
    read: bool,
}

/// A cached answer.
#[derive(Debug)]
pub struct Hit {
    /// Its `Content-Type` (empty when none was stored).
    pub content_type: Vec<u8>,
    /// Its body.
    pub body: Vec<u8>,
}

impl Slot {
    /// The slot of a request, or `None` when it is not cacheable: caching off for
    /// the org, a streamed request, `no-store`, or a body that is not canonical JSON.
    pub fn of(
        org: &OrgRecord,
        directive: Directive,
        endpoint: Endpoint,
        model: &str,
        stream: bool,
        body: &[u8],
    ) -> Option<Slot> {
        let ttl = org.cache_ttl_seconds?;
        if stream || directive == Directive::NoStore {
            return None;
        }
        let hash = request_hash(endpoint, model, body)?;
        Some(Slot {
            key: policy::cache::cache_key(&org.org_id, &hex::encode(hash)),
            ttl_ms: u64::from(ttl) * 1000,
            read: directive == Directive::Use,
        })
    }

    /// The fresh answer stored for this request, if any. A store that cannot be
    /// read is a miss: the request is already authorised and goes to the provider.
    pub fn lookup(&self, bucket: &Bucket, now_ms: u64) -> Option<Hit> {
        if !self.read {
            return None;
        }
        let value = match bucket.get(&self.key) {
            Ok(v) => v?,
            Err(e) => {
                eprintln!("tollgate: cache read failed: {e:?}");
                return None;
            }
        };
        let entry = Entry::decode(&value).filter(|e| e.is_fresh(now_ms) && e.status == 200)?;
        Some(Hit {
            content_type: entry.content_type.to_vec(),
            body: entry.body.to_vec(),
        })
    }

    /// Stores a complete 200 answer of at most [`MAX_BODY_BYTES`] (anything else is
    /// not stored), replacing whatever expired entry was there.
    pub fn store(
        &self,
        bucket: &Bucket,
        now_ms: u64,
        status: u16,
        content_type: Option<&[u8]>,
        body: &[u8],
    ) {
        if status != 200 || body.len() > MAX_BODY_BYTES {
            return;
        }
        let entry = Entry {
            expires_at_ms: now_ms.saturating_add(self.ttl_ms),
            status,
            content_type: content_type.unwrap_or_default(),
            body,
        };
        // The answer is already relayed: a failed write only costs a later miss.
        if let Err(e) = bucket.set(&self.key, &entry.encode()) {
            eprintln!("tollgate: cache write failed: {e:?}");
        }
    }
}

/// SHA-256 of the endpoint, the model and the canonical body (`None` if the body
/// is not JSON this writer can canonicalise, so it is not cached).
fn request_hash(endpoint: Endpoint, model: &str, body: &[u8]) -> Option<[u8; 32]> {
    let canonical = canonical_json(body)?;
    let mut hash = Sha256::new();
    // Lengths first, so no two (endpoint, model, body) triples run together.
    for part in [endpoint.upstream_path().as_bytes(), model.as_bytes()] {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part);
    }
    hash.update(&canonical);
    Some(hash.finalize().into())
}

/// `body` with object keys sorted, no insignificant whitespace, strings written
/// as serde_json writes them and numbers byte for byte as the client wrote them.
fn canonical_json(body: &[u8]) -> Option<Vec<u8>> {
    let mut reader = Canon { src: body, pos: 0 };
    let mut out = Vec::with_capacity(body.len());
    reader.value(&mut out, 0)?;
    reader.skip_ws();
    (reader.pos == body.len()).then_some(out)
}

/// A cursor over JSON text.
struct Canon<'a> {
    src: &'a [u8],
    pos: usize,
}

impl Canon<'_> {
    fn skip_ws(&mut self) {
        while self
            .src
            .get(self.pos)
            .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.src.get(self.pos).copied()
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.pos += 1)
    }

    fn value(&mut self, out: &mut Vec<u8>, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        match self.peek()? {
            b'{' => self.object(out, depth),
            b'[' => self.array(out, depth),
            b'"' => {
                let s = self.string()?;
                serde_json::to_writer(&mut *out, &s).ok()
            }
            _ => self.scalar(out),
        }
    }

    fn object(&mut self, out: &mut Vec<u8>, depth: usize) -> Option<()> {
        self.eat(b'{')?;
        let mut members: Vec<(String, Vec<u8>)> = Vec::new();
        if self.peek()? != b'}' {
            loop {
                let key = self.string()?;
                self.eat(b':')?;
                let mut value = Vec::new();
                self.value(&mut value, depth + 1)?;
                members.push((key, value));
                if self.peek()? == b',' {
                    self.pos += 1;
                } else {
                    break;
                }
            }
        }
        self.eat(b'}')?;
        // Stable: repeated keys keep their order (and so their meaning).
        members.sort_by(|a, b| a.0.cmp(&b.0));
        out.push(b'{');
        for (i, (key, value)) in members.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            serde_json::to_writer(&mut *out, key).ok()?;
            out.push(b':');
            out.extend_from_slice(value);
        }
        out.push(b'}');
        Some(())
    }

    fn array(&mut self, out: &mut Vec<u8>, depth: usize) -> Option<()> {
        self.eat(b'[')?;
        out.push(b'[');
        if self.peek()? != b']' {
            loop {
                self.value(out, depth + 1)?;
                if self.peek()? == b',' {
                    self.pos += 1;
                    out.push(b',');
                } else {
                    break;
                }
            }
        }
        self.eat(b']')?;
        out.push(b']');
        Some(())
    }

    /// A string token, decoded (escapes resolved) by serde_json.
    fn string(&mut self) -> Option<String> {
        if self.peek()? != b'"' {
            return None;
        }
        let start = self.pos;
        let mut i = start + 1;
        loop {
            match *self.src.get(i)? {
                b'\\' => i += 2,
                b'"' => break,
                _ => i += 1,
            }
        }
        self.pos = i + 1;
        serde_json::from_slice(&self.src[start..self.pos]).ok()
    }

    /// `true`, `false`, `null` or a number, copied as written.
    fn scalar(&mut self, out: &mut Vec<u8>) -> Option<()> {
        let start = self.pos;
        while self
            .src
            .get(self.pos)
            .is_some_and(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'+' | b'.'))
        {
            self.pos += 1;
        }
        let token = &self.src[start..self.pos];
        // Validated by serde_json, so `01`, `1.` or `nul` are not cached under a
        // key some valid body could share.
        serde_json::from_slice::<serde::de::IgnoredAny>(token).ok()?;
        out.extend_from_slice(token);
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(s: &str) -> String {
        String::from_utf8(canonical_json(s.as_bytes()).expect(s)).unwrap()
    }

    #[test]
    fn key_order_and_whitespace_do_not_matter() {
        assert_eq!(
            canon(
                " {\"model\" : \"m\",\n \"messages\":[{\"role\":\"user\",\"content\":\"hi\"}], \"a\":{\"z\":1,\"b\":[true, null]}}\t"
            ),
            r#"{"a":{"b":[true,null],"z":1},"messages":[{"content":"hi","role":"user"}],"model":"m"}"#
        );
        assert_eq!(canon("{}"), "{}");
        assert_eq!(canon("[ ]"), "[]");
        // Escapes that spell the same string are one string.
        assert_eq!(canon(r#"{"\u0061":"\u00e9\/"}"#), r#"{"a":"é/"}"#);
    }

    #[test]
    fn numbers_stay_as_written_and_values_are_not_conflated() {
        assert_eq!(
            canon("{\"t\":1.0,\"u\":1e2,\"v\":-0}"),
            r#"{"t":1.0,"u":1e2,"v":-0}"#
        );
        assert_ne!(canon("{\"t\":1.0}"), canon("{\"t\":1}"));
        assert_ne!(canon("{\"t\":\"1\"}"), canon("{\"t\":1}"));
        assert_ne!(canon("[1,2]"), canon("[2,1]"));
    }

    #[test]
    fn anything_but_one_json_value_is_refused() {
        for bad in [
            "",
            "{",
            "{\"a\":}",
            "{\"a\" 1}",
            "[1,]",
            "{\"a\":1,}",
            "01",
            "nul",
            "1.",
            "\"x",
            "{} {}",
            "{\"a\":\"\\ud800\"}",
            "{1:2}",
        ] {
            assert_eq!(canonical_json(bad.as_bytes()), None, "{bad}");
        }
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert_eq!(canonical_json(deep.as_bytes()), None);
    }

    #[test]
    fn the_hash_separates_endpoint_model_and_body() {
        let body = br#"{"model":"m","input":"x"}"#;
        let reordered = br#"{ "input": "x", "model": "m" }"#;
        let h = |e, m, b: &[u8]| request_hash(e, m, b).unwrap();
        assert_eq!(
            h(Endpoint::Embeddings, "m", body),
            h(Endpoint::Embeddings, "m", reordered)
        );
        assert_ne!(
            h(Endpoint::Embeddings, "m", body),
            h(Endpoint::Completions, "m", body)
        );
        assert_ne!(
            h(Endpoint::Embeddings, "m", body),
            h(Endpoint::Embeddings, "n", body)
        );
        assert_ne!(
            h(Endpoint::Embeddings, "m", body),
            h(Endpoint::Embeddings, "m", br#"{"model":"m","input":"y"}"#)
        );
    }

    #[test]
    fn cache_control_directives() {
        assert_eq!(Directive::of(None), Directive::Use);
        assert_eq!(Directive::of(Some(b"max-age=0")), Directive::Use);
        assert_eq!(Directive::of(Some(b"No-Cache")), Directive::NoCache);
        assert_eq!(
            Directive::of(Some(b"no-cache, no-store")),
            Directive::NoStore
        );
        assert_eq!(Directive::of(Some(b"private,no-store")), Directive::NoStore);
        assert_eq!(Directive::of(Some(b"no-storex")), Directive::Use);
    }
}
