//! Reading a request before any guest sees it: the whole body within the body
//! read deadline and size limit, so a client trickling bytes holds a connection
//! and its org's slot, never a guest instance.

use std::time::Duration;

use bytes::Bytes;
use http::HeaderMap;
use http::header::CONTENT_LENGTH;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;

use crate::error_response::HostError;

/// Largest request body the host reads (the component's own limit, 4 MiB).
pub(crate) const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// The whole body, or why not: 408 past `deadline`, 413 beyond [`MAX_BODY_BYTES`]
/// (a declared length says so before anything is read).
pub(crate) async fn read_body(
    headers: &HeaderMap,
    body: Incoming,
    deadline: Duration,
) -> Result<Bytes, HostError> {
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(HostError::BodyTooLarge);
    }
    match tokio::time::timeout(deadline, Limited::new(body, MAX_BODY_BYTES).collect()).await {
        Err(_) => Err(HostError::BodyTimeout),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(HostError::BodyTooLarge),
        Ok(Err(_)) => Err(HostError::BodyUnreadable),
    }
}
