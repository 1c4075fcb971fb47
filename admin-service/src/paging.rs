//! Cursor paging of list endpoints: `?limit=` (1-1000) and `?cursor=` (the
//! `next_cursor` of the previous page); answers are `{"data": [...], "next_cursor"}`.

use axum::extract::Query;
use axum::extract::rejection::QueryRejection;
use serde::{Deserialize, Serialize};

use crate::errors::ApiError;

/// Largest page.
pub const MAX_LIMIT: u32 = 1000;
/// Page size when `limit` is absent.
pub const DEFAULT_LIMIT: u32 = 100;

/// One page of a list.
#[derive(Debug, Serialize)]
pub struct Page<T> {
    /// The items, in the list's order.
    pub data: Vec<T>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// The paging part of a list's query, validated.
#[derive(Debug, Clone, Copy)]
pub struct PageReq<'a> {
    /// Items per page.
    pub limit: u32,
    /// Where the previous page ended.
    pub cursor: Option<&'a str>,
}

/// Checks `limit`; 422 naming it when out of range.
pub fn check_limit(limit: Option<u32>) -> Result<u32, ApiError> {
    match limit {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::invalid(
            "limit",
            format!("must be between 1 and {MAX_LIMIT}"),
        )),
    }
}

/// A query string extractor whose errors are 422s naming the query.
pub fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(t)| t)
        .map_err(|e| ApiError::unprocessable("invalid_value", "query", format!("query: {e}")))
}

/// `Page` from rows fetched with `LIMIT limit + 1`: the extra row only says there is more.
pub fn page<T>(mut items: Vec<T>, limit: u32, cursor_of: impl Fn(&T) -> String) -> Page<T> {
    let limit = limit as usize;
    let next_cursor = if items.len() > limit {
        items.truncate(limit);
        items.last().map(cursor_of)
    } else {
        None
    };
    Page {
        data: items,
        next_cursor,
    }
}

/// Plain paging query: `?limit=&cursor=`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// Items per page (1-1000, default 100).
    #[serde(default)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[serde(default)]
    pub cursor: Option<String>,
}
