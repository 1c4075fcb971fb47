//! Token usage reported by a provider, read from a JSON answer or from the `data:`
//! lines of a server-sent-events stream as they pass through.

use serde::Deserialize;

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
    /// Any other body is read as one JSON document.
    Json(JsonScanner),
}

impl UsageScanner {
    /// Picks the scanner for a response `Content-Type`.
    pub fn for_content_type(content_type: Option<&[u8]>) -> Self {
        let is_sse = content_type.is_some_and(|ct| {
            ct.len() >= 17 && ct[..17].eq_ignore_ascii_case(b"text/event-stream")
        });
        if is_sse {
            UsageScanner::Sse(SseScanner::default())
        } else {
            UsageScanner::Json(JsonScanner::default())
        }
    }

    /// Observes the next chunk of the body.
    pub fn feed(&mut self, chunk: &[u8]) {
        match self {
            UsageScanner::Sse(s) => s.feed(chunk),
            UsageScanner::Json(j) => j.feed(chunk),
        }
    }

    /// The usage the body reported, if any.
    pub fn finish(self) -> Option<Usage> {
        match self {
            UsageScanner::Sse(s) => s.finish(),
            UsageScanner::Json(j) => j.finish(),
        }
    }
}

/// Any JSON object with an optional `usage` member; other members are skipped
/// without being materialised.
#[derive(Deserialize)]
struct WithUsage {
    #[serde(default)]
    usage: Option<Usage>,
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

    fn line(&mut self, line: &[u8]) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(data) = line.strip_prefix(b"data:") else {
            return;
        };
        // Cheap filter: most chunks of a stream carry no usage at all.
        if !contains(data, b"\"usage\"") {
            return;
        }
        if let Ok(WithUsage { usage: Some(u) }) = serde_json::from_slice(data) {
            self.last = Some(u);
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

    fn finish(self) -> Option<Usage> {
        if !self.truncated {
            return serde_json::from_slice::<WithUsage>(&self.kept).ok()?.usage;
        }
        usage_in_tail(&self.kept)
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
        let mut s = UsageScanner::for_content_type(Some(content_type.as_bytes()));
        for c in chunks {
            s.feed(c);
        }
        s.finish()
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
        assert_eq!(scan("application/json", &[b"not json"]), None);
        // Embeddings report no completion tokens.
        let emb = br#"{"data":[],"usage":{"prompt_tokens":5,"total_tokens":5}}"#;
        assert_eq!(
            UsageScanner::for_content_type(None).finish_after(emb),
            Some(Usage {
                prompt_tokens: 5,
                completion_tokens: 0,
                total_tokens: 5
            })
        );
    }

    #[test]
    fn large_json_keeps_only_the_tail() {
        let mut s = UsageScanner::for_content_type(Some(b"application/json"));
        s.feed(br#"{"object":"list","data":[{"embedding":["#);
        let floats = b"0.0123456789,".repeat(1000);
        for _ in 0..200 {
            s.feed(&floats);
        }
        s.feed(br#"1.0]}],"usage":{"prompt_tokens":9,"completion_tokens":12,"total_tokens":21}}"#);
        let UsageScanner::Json(j) = &s else { panic!() };
        assert!(j.truncated && j.kept.len() <= JSON_TAIL);
        assert_eq!(s.finish(), Some(USAGE));
    }

    impl UsageScanner {
        fn finish_after(mut self, body: &[u8]) -> Option<Usage> {
            self.feed(body);
            self.finish()
        }
    }
}
