//! Token usage reported by a provider, read from a JSON answer or from the `data:`
//! lines of a server-sent-events stream as they pass through.

use serde::Deserialize;
use serde::de::IgnoredAny;

/// Token counts of one completed call (the OpenAI `usage` object).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct Usage {
    /// Tokens in the prompt.
    #[serde(default)]
    pub prompt_tokens: u64,
    /// Tokens generated (absent for embeddings).
    #[serde(default)]
    pub completion_tokens: u64,
    /// Prompt plus completion.
    #[serde(default)]
    pub total_tokens: u64,
}

/// A JSON answer up to this size is kept whole and parsed at the end.
const JSON_WHOLE_CAP: usize = 1024 * 1024;
/// Beyond [`JSON_WHOLE_CAP`], only this tail is kept: OpenAI-compatible providers
/// put `usage` last, after the (possibly huge) `data` or `choices`.
const JSON_TAIL: usize = 16 * 1024;
/// An SSE line longer than this is not a usage chunk and is skipped, not buffered.
const SSE_MAX_LINE: usize = 64 * 1024;

/// Watches a response body go by and extracts its usage without holding it up.
#[derive(Debug)]
pub enum UsageScanner {
    /// `text/event-stream`: the last `usage` of any `data:` line.
    Sse(SseScanner),
    /// `text/event-stream` where the gateway asked for usage on the client's
    /// behalf: also removes the usage-only chunk the client did not ask for.
    SseStrip(SseScanner, SseStripper),
    /// Any other body is read as one JSON document.
    Json(JsonScanner),
}

impl UsageScanner {
    /// Picks the scanner for a response `Content-Type`; `strip_usage_only` when
    /// the client did not ask for `stream_options.include_usage` itself.
    pub fn for_content_type(content_type: Option<&[u8]>, strip_usage_only: bool) -> Self {
        let is_sse = content_type.is_some_and(|ct| {
            ct.len() >= 17 && ct[..17].eq_ignore_ascii_case(b"text/event-stream")
        });
        match (is_sse, strip_usage_only) {
            (true, false) => UsageScanner::Sse(SseScanner::default()),
            (true, true) => UsageScanner::SseStrip(SseScanner::default(), SseStripper::default()),
            (false, _) => UsageScanner::Json(JsonScanner::default()),
        }
    }

    /// Observes the next chunk of the body; returns what to forward to the client
    /// (the chunk itself, untouched, unless something is stripped from it).
    pub fn pass(&mut self, chunk: Vec<u8>) -> Vec<u8> {
        match self {
            UsageScanner::Sse(s) => {
                s.feed(&chunk);
                chunk
            }
            UsageScanner::SseStrip(s, strip) => strip.pass(s, chunk),
            UsageScanner::Json(j) => {
                j.feed(&chunk);
                chunk
            }
        }
    }

    /// The usage the body reported, if any; the bytes still held back (a final
    /// line without a newline) to forward before the body ends; and the whole body
    /// of a JSON answer when it was kept whole (at most 1 MiB), for the cache.
    pub fn finish_with_body(self) -> (Option<Usage>, Vec<u8>, Option<Vec<u8>>) {
        match self {
            UsageScanner::Sse(s) => (s.finish(), Vec::new(), None),
            UsageScanner::SseStrip(mut s, strip) => {
                let tail = strip.finish(&mut s);
                (s.last, tail, None)
            }
            UsageScanner::Json(j) => {
                let (usage, whole) = j.finish();
                (usage, Vec::new(), whole)
            }
        }
    }
}

/// A streamed chunk with an optional `usage` and the `choices` it carries; other
/// members are skipped without being materialised.
#[derive(Deserialize)]
struct WithUsage {
    #[serde(default)]
    usage: Option<Usage>,
    /// `IgnoredAny` is zero-sized, so counting choices allocates nothing.
    #[serde(default)]
    choices: Option<Vec<IgnoredAny>>,
}

/// Scans SSE `data:` lines; only a line split across chunks is buffered.
#[derive(Debug, Default)]
pub struct SseScanner {
    partial: Vec<u8>,
    /// The current line outgrew [`SSE_MAX_LINE`]; ignore it up to its newline.
    skipping: bool,
    last: Option<Usage>,
}

impl SseScanner {
    fn feed(&mut self, mut chunk: &[u8]) {
        while let Some(nl) = chunk.iter().position(|&b| b == b'\n') {
            let (line, rest) = (&chunk[..nl], &chunk[nl + 1..]);
            if self.skipping {
                self.skipping = false;
            } else if self.partial.is_empty() {
                self.line(line);
            } else {
                let mut whole = std::mem::take(&mut self.partial);
                whole.extend_from_slice(line);
                self.line(&whole);
                // Keep the allocation for the next split line.
                whole.clear();
                self.partial = whole;
            }
            chunk = rest;
        }
        if self.skipping || chunk.is_empty() {
            return;
        }
        if self.partial.len() + chunk.len() > SSE_MAX_LINE {
            self.partial.clear();
            self.skipping = true;
        } else {
            self.partial.extend_from_slice(chunk);
        }
    }

    /// Reads one line (without its newline); true when it is a usage-only chunk:
    /// a `data:` line reporting usage with no choices.
    fn line(&mut self, line: &[u8]) -> bool {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(data) = line.strip_prefix(b"data:") else {
            return false;
        };
        // Cheap filter: most chunks of a stream carry no usage at all.
        if !contains(data, b"\"usage\"") {
            return false;
        }
        match serde_json::from_slice::<WithUsage>(data) {
            Ok(WithUsage {
                usage: Some(u),
                choices,
            }) => {
                self.last = Some(u);
                choices.is_none_or(|c| c.is_empty())
            }
            _ => false,
        }
    }

    fn finish(mut self) -> Option<Usage> {
        // A final line without a trailing newline.
        if !self.skipping && !self.partial.is_empty() {
            let line = std::mem::take(&mut self.partial);
            self.line(&line);
        }
        self.last
    }
}

/// Removes usage-only `data:` lines (and the blank line ending their event) from a
/// stream. Only an incomplete line is held back, since whether to drop it is known
/// once it is whole; chunks that cannot hold such a line pass untouched.
#[derive(Debug, Default)]
pub struct SseStripper {
    /// The current line so far, not yet forwarded.
    held: Vec<u8>,
    /// The current line outgrew [`SSE_MAX_LINE`]: no usage chunk is that long,
    /// so it is forwarded as it comes up to its newline.
    passthrough: bool,
    /// The last line was dropped: drop the blank line that ends its event too.
    dropped: bool,
}

impl SseStripper {
    fn pass(&mut self, scanner: &mut SseScanner, chunk: Vec<u8>) -> Vec<u8> {
        let quiet = self.held.is_empty() && !self.passthrough && !self.dropped;
        if quiet && chunk.ends_with(b"\n") && !contains(&chunk, b"\"usage\"") {
            return chunk;
        }
        let mut out = Vec::with_capacity(chunk.len() + self.held.len());
        let mut rest = &chunk[..];
        while let Some(nl) = rest.iter().position(|&b| b == b'\n') {
            let (part, after) = rest.split_at(nl + 1);
            rest = after;
            if self.passthrough {
                self.passthrough = false;
                out.extend_from_slice(part);
            } else if self.held.is_empty() {
                if self.keep(scanner, part) {
                    out.extend_from_slice(part);
                }
            } else {
                let mut line = std::mem::take(&mut self.held);
                line.extend_from_slice(part);
                if self.keep(scanner, &line) {
                    out.extend_from_slice(&line);
                }
                // Keep the allocation for the next split line.
                line.clear();
                self.held = line;
            }
        }
        if self.passthrough {
            out.extend_from_slice(rest);
        } else if self.held.len() + rest.len() > SSE_MAX_LINE {
            out.append(&mut self.held);
            out.extend_from_slice(rest);
            self.passthrough = true;
        } else {
            self.held.extend_from_slice(rest);
        }
        out
    }

    /// Whether to forward one whole line (newline included).
    fn keep(&mut self, scanner: &mut SseScanner, line: &[u8]) -> bool {
        let bare = line.strip_suffix(b"\n").unwrap_or(line);
        let bare = bare.strip_suffix(b"\r").unwrap_or(bare);
        let after_dropped = std::mem::take(&mut self.dropped);
        if bare.is_empty() {
            return !after_dropped;
        }
        if scanner.line(bare) {
            self.dropped = true;
            return false;
        }
        true
    }

    /// The final line, if it had no newline and is not itself stripped.
    fn finish(mut self, scanner: &mut SseScanner) -> Vec<u8> {
        let line = std::mem::take(&mut self.held);
        if line.is_empty() || self.passthrough || self.keep(scanner, &line) {
            line
        } else {
            Vec::new()
        }
    }
}

/// Keeps a JSON body (or, past a cap, its tail) to read `usage` at the end.
#[derive(Debug, Default)]
pub struct JsonScanner {
    kept: Vec<u8>,
    /// `kept` holds only the last [`JSON_TAIL`] bytes.
    truncated: bool,
}

impl JsonScanner {
    fn feed(&mut self, chunk: &[u8]) {
        self.kept.extend_from_slice(chunk);
        if self.kept.len() > JSON_WHOLE_CAP || (self.truncated && self.kept.len() > JSON_TAIL) {
            self.truncated = true;
            let excess = self.kept.len().saturating_sub(JSON_TAIL);
            self.kept.drain(..excess);
        }
    }

    /// The usage, and the body when it was kept whole.
    fn finish(self) -> (Option<Usage>, Option<Vec<u8>>) {
        if self.truncated {
            return (usage_in_tail(&self.kept), None);
        }
        let usage = serde_json::from_slice::<WithUsage>(&self.kept)
            .ok()
            .and_then(|w| w.usage);
        (usage, Some(self.kept))
    }
}

/// Parses the object after the last unescaped `"usage":` in a JSON fragment.
fn usage_in_tail(tail: &[u8]) -> Option<Usage> {
    const NEEDLE: &[u8] = b"\"usage\"";
    let at = tail
        .windows(NEEDLE.len())
        .enumerate()
        .rev()
        .find(|&(i, w)| w == NEEDLE && (i == 0 || tail[i - 1] != b'\\'))?
        .0;
    let rest = tail[at + NEEDLE.len()..]
        .trim_ascii_start()
        .strip_prefix(b":")?;
    // Reads exactly one value and ignores whatever follows it.
    let mut de = serde_json::Deserializer::from_slice(rest.trim_ascii_start());
    Usage::deserialize(&mut de).ok()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    const USAGE: Usage = Usage {
        prompt_tokens: 9,
        completion_tokens: 12,
        total_tokens: 21,
    };

    fn scan(content_type: &str, chunks: &[&[u8]]) -> Option<Usage> {
        let mut s = UsageScanner::for_content_type(Some(content_type.as_bytes()), false);
        for c in chunks {
            assert_eq!(s.pass(c.to_vec()), *c, "forwarded untouched");
        }
        s.finish().0
    }

    /// What the client receives through a stripping scanner, and the usage read.
    fn strip(chunks: &[&[u8]]) -> (String, Option<Usage>) {
        let mut s = UsageScanner::for_content_type(Some(b"text/event-stream"), true);
        let mut out = Vec::new();
        for c in chunks {
            out.extend(s.pass(c.to_vec()));
        }
        let (usage, tail) = s.finish();
        out.extend(tail);
        (String::from_utf8(out).unwrap(), usage)
    }

    const SSE: &str = concat!(
        "data: {\"id\":\"c1\",\"choices\":[{\"delta\":{\"content\":\"say \\\"usage\\\"\"}}],\"usage\":null}\n\n",
        "data: {\"id\":\"c1\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":12,\"total_tokens\":21}}\n\n",
        "data: [DONE]\n\n",
    );

    #[test]
    fn sse_last_usage_in_one_chunk() {
        assert_eq!(scan("text/event-stream", &[SSE.as_bytes()]), Some(USAGE));
    }

    #[test]
    fn sse_usage_split_at_every_byte_boundary() {
        let bytes = SSE.as_bytes();
        for cut in 0..bytes.len() {
            let got = scan(
                "text/event-stream; charset=utf-8",
                &[&bytes[..cut], &bytes[cut..]],
            );
            assert_eq!(got, Some(USAGE), "cut at {cut}");
        }
        let crlf = SSE.replace('\n', "\r\n");
        let bytes: Vec<&[u8]> = crlf.as_bytes().chunks(7).collect();
        assert_eq!(scan("text/event-stream", &bytes), Some(USAGE));
    }

    #[test]
    fn sse_without_usage_or_trailing_newline() {
        assert_eq!(
            scan(
                "text/event-stream",
                &[b"data: {\"usage\":null}\n\ndata: [DONE]\n\n"]
            ),
            None
        );
        let last = "data: {\"usage\":{\"prompt_tokens\":1,\"total_tokens\":1}}";
        assert_eq!(
            scan("text/event-stream", &[last.as_bytes()]),
            Some(Usage {
                prompt_tokens: 1,
                completion_tokens: 0,
                total_tokens: 1
            })
        );
    }

    #[test]
    fn sse_overlong_lines_are_skipped_not_buffered() {
        let mut s = SseScanner::default();
        s.feed(b"data: {\"x\":\"");
        for _ in 0..100 {
            s.feed(&[b'a'; 4096]);
            assert!(s.partial.len() <= SSE_MAX_LINE);
        }
        s.feed(b"\"}\n");
        s.feed(SSE.as_bytes());
        assert_eq!(s.finish(), Some(USAGE));
    }

    #[test]
    fn json_usage() {
        let body = br#"{"id":"c1","object":"chat.completion","choices":[{"message":{"content":"{\"usage\":1}"}}],"usage":{"prompt_tokens":9,"completion_tokens":12,"total_tokens":21}}"#;
        assert_eq!(
            scan("application/json", &[&body[..50], &body[50..]]),
            Some(USAGE)
        );
        assert_eq!(scan("application/json", &[b"{\"id\":1}"]), None);
        let (_, _, whole) = UsageScanner::for_content_type(None, false)
            .fed(body)
            .finish_with_body();
        assert_eq!(
            whole.as_deref(),
            Some(&body[..]),
            "a JSON body is kept whole"
        );
        assert_eq!(scan("application/json", &[b"not json"]), None);
        // Embeddings report no completion tokens.
        let emb = br#"{"data":[],"usage":{"prompt_tokens":5,"total_tokens":5}}"#;
        assert_eq!(
            UsageScanner::for_content_type(None, true).finish_after(emb),
            Some(Usage {
                prompt_tokens: 5,
                completion_tokens: 0,
                total_tokens: 5
            })
        );
    }

    #[test]
    fn large_json_keeps_only_the_tail() {
        let mut s = UsageScanner::for_content_type(Some(b"application/json"), false);
        s.feed(br#"{"object":"list","data":[{"embedding":["#);
        let floats = b"0.0123456789,".repeat(1000);
        for _ in 0..200 {
            s.feed(&floats);
        }
        s.feed(br#"1.0]}],"usage":{"prompt_tokens":9,"completion_tokens":12,"total_tokens":21}}"#);
        let UsageScanner::Json(j) = &s else { panic!() };
        assert!(j.truncated && j.kept.len() <= JSON_TAIL);
        assert_eq!(s.finish_with_body(), (Some(USAGE), Vec::new(), None));
    }

    impl UsageScanner {
        fn feed(&mut self, chunk: &[u8]) {
            self.pass(chunk.to_vec());
        }

        fn finish(self) -> (Option<Usage>, Vec<u8>) {
            let (usage, tail, _) = self.finish_with_body();
            (usage, tail)
        }

        fn fed(mut self, body: &[u8]) -> Self {
            self.feed(body);
            self
        }

        fn finish_after(mut self, body: &[u8]) -> Option<Usage> {
            self.feed(body);
            self.finish().0
        }
    }

    /// The stream of [`SSE`] without its usage-only event.
    const SSE_STRIPPED: &str = concat!(
        "data: {\"id\":\"c1\",\"choices\":[{\"delta\":{\"content\":\"say \\\"usage\\\"\"}}],\"usage\":null}\n\n",
        "data: [DONE]\n\n",
    );

    #[test]
    fn strips_the_usage_only_chunk_but_still_reads_it() {
        assert_eq!(
            strip(&[SSE.as_bytes()]),
            (SSE_STRIPPED.to_string(), Some(USAGE))
        );
        let bytes = SSE.as_bytes();
        for cut in 0..bytes.len() {
            let got = strip(&[&bytes[..cut], &bytes[cut..]]);
            assert_eq!(got, (SSE_STRIPPED.to_string(), Some(USAGE)), "cut at {cut}");
        }
        let crlf = SSE.replace('\n', "\r\n");
        let chunks: Vec<&[u8]> = crlf.as_bytes().chunks(5).collect();
        assert_eq!(
            strip(&chunks),
            (SSE_STRIPPED.replace('\n', "\r\n"), Some(USAGE))
        );
    }

    #[test]
    fn stripping_keeps_chunks_with_choices_and_whole_lines_flow_at_once() {
        // Usage on a chunk that also carries choices is the provider's own format.
        let mixed = "data: {\"choices\":[{\"delta\":{}}],\"usage\":{\"prompt_tokens\":1}}\n\n";
        assert_eq!(strip(&[mixed.as_bytes()]).0, mixed);
        // A complete line is forwarded in the same call; only a partial one waits.
        let mut s = UsageScanner::for_content_type(Some(b"text/event-stream"), true);
        assert_eq!(
            s.pass(b"data: {\"a\":1}\n\ndata: {\"b\"".to_vec()),
            b"data: {\"a\":1}\n\n"
        );
        assert_eq!(s.pass(b":2}\n\n".to_vec()), b"data: {\"b\":2}\n\n");
        // A last line without a newline is forwarded at the end, unless stripped.
        let (out, usage) =
            strip(&[b"data: {\"x\":1}\n\ndata: {\"choices\":[],\"usage\":{\"prompt_tokens\":2}}"]);
        assert_eq!(out, "data: {\"x\":1}\n\n");
        assert_eq!(usage.unwrap().prompt_tokens, 2);
    }

    #[test]
    fn stripping_forwards_overlong_lines_without_holding_them() {
        let mut s = UsageScanner::for_content_type(Some(b"text/event-stream"), true);
        let mut out = s.pass(b"data: {\"x\":\"".to_vec());
        for _ in 0..40 {
            out.extend(s.pass(vec![b'a'; 4096]));
        }
        let UsageScanner::SseStrip(_, st) = &s else {
            panic!()
        };
        assert!(st.held.len() <= SSE_MAX_LINE);
        out.extend(s.pass(b"\"}\n\n".to_vec()));
        out.extend(s.pass(SSE.as_bytes().to_vec()));
        let (usage, tail) = s.finish();
        assert!(tail.is_empty());
        assert_eq!(out.len(), 12 + 40 * 4096 + 4 + SSE_STRIPPED.len());
        assert_eq!(usage, Some(USAGE));
    }
}
