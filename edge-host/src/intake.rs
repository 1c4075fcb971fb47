//! Reading a request before any guest sees it: the whole body within the body
//! read deadline and size limit, so a client trickling bytes holds a connection
//! and its org's slot, never a guest instance.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::HeaderMap;
use http::header::CONTENT_LENGTH;
use http_body_util::BodyExt;
use hyper::body::Incoming;

use crate::error_response::HostError;

/// Largest request body the host reads (the component's own limit, 4 MiB).
pub(crate) const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// How much of an oversized body the host still reads, and discards, before it
/// answers 413: a client still sending its body then reads the answer, where
/// closing on unread bytes would reset the connection under it (nginx's
/// lingering close). Larger bodies get the answer at once.
const DISCARD_BYTES: u64 = 16 * 1024 * 1024;

/// The whole body, or why not: 408 past `deadline`, 413 beyond [`MAX_BODY_BYTES`]
/// (a declared length says so before anything is kept).
pub(crate) async fn read_body(
    headers: &HeaderMap,
    body: Incoming,
    deadline: Duration,
) -> Result<Bytes, HostError> {
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let deadline = tokio::time::Instant::now() + deadline;
    match tokio::time::timeout_at(deadline, read_within_limit(body, declared)).await {
        Err(_) => Err(HostError::BodyTimeout),
        Ok(Ok(body)) => Ok(body),
        Ok(Err(Unread::Broken)) => Err(HostError::BodyUnreadable),
        Ok(Err(Unread::TooLarge { rest, seen })) => {
            if declared.unwrap_or(seen) <= DISCARD_BYTES {
                let _ = tokio::time::timeout_at(deadline, discard(rest, seen)).await;
            }
            Err(HostError::BodyTooLarge)
        }
    }
}

/// Why a body was not read whole.
enum Unread {
    /// The client's stream broke.
    Broken,
    /// Over [`MAX_BODY_BYTES`]: what is left of it, and the bytes seen so far.
    TooLarge { rest: Incoming, seen: u64 },
}

/// Reads the body while it stays within [`MAX_BODY_BYTES`].
async fn read_within_limit(mut body: Incoming, declared: Option<u64>) -> Result<Bytes, Unread> {
    let max = MAX_BODY_BYTES as u64;
    if declared.is_some_and(|n| n > max) {
        return Err(Unread::TooLarge {
            rest: body,
            seen: 0,
        });
    }
    let mut first: Option<Bytes> = None;
    let mut more = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.map_err(|_| Unread::Broken)?.into_data() else {
            continue; // trailers
        };
        let seen = (first.as_ref().map_or(0, Bytes::len) + more.len() + data.len()) as u64;
        if seen > max {
            return Err(Unread::TooLarge { rest: body, seen });
        }
        // A body in one frame (the usual case) is kept without a copy.
        match &first {
            None => first = Some(data),
            Some(head) => {
                if more.is_empty() {
                    more.reserve(declared.map_or(2 * head.len(), |n| n as usize));
                    more.extend_from_slice(head);
                }
                more.extend_from_slice(&data);
            }
        }
    }
    Ok(if more.is_empty() {
        first.unwrap_or_default()
    } else {
        more.freeze()
    })
}

/// Reads and drops the rest of an oversized body, up to [`DISCARD_BYTES`].
async fn discard(mut rest: Incoming, mut seen: u64) {
    while seen <= DISCARD_BYTES {
        match rest.frame().await {
            Some(Ok(frame)) => seen += frame.data_ref().map_or(0, |d| d.len() as u64),
            _ => return,
        }
    }
}
