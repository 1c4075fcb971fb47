//! Cursor paging of list endpoints: `?limit=` (1-1000, default 100) and `?cursor=`.
//! The body stays the JSON array of the page; when more follow, the `x-next-cursor`
//! header carries the cursor of the next page (absent on the last page).

use axum::Json;
use axum::extract::Query;
use axum::extract::rejection::QueryRejection;
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::errors::ApiError;

/// Largest page.
pub const MAX_LIMIT: u32 = 1000;
/// Page size when `limit` is absent.
pub const DEFAULT_LIMIT: u32 = 100;
/// Response header holding the next page's cursor.
pub const NEXT_CURSOR: &str = "x-next-cursor";

/// Paging query: `?limit=&cursor=`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// Items per page (1-1000, default 100).
    #[serde(default)]
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// `x-next-cursor` of the previous page.
    #[serde(default)]
    #[param(pattern = "^[0-9]{1,18}$")]
    pub cursor: Option<String>,
}

/// Paging query of lists ordered by name (the catalog): the cursor is the last name
/// of the previous page, so any text is a position.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct NamePageQuery {
    /// Items per page (1-1000, default 100).
    #[serde(default)]
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// `x-next-cursor` of the previous page.
    #[serde(default)]
    pub cursor: Option<String>,
}

/// Validated paging parameters.
#[derive(Debug, Clone)]
pub struct PageParams {
    /// Items per page.
    pub limit: u32,
    /// Where the previous page ended.
    pub cursor: Option<String>,
}

impl PageParams {
    /// Checks `limit`; 422 naming it when out of range.
    pub fn new(limit: Option<u32>, cursor: Option<String>) -> Result<Self, ApiError> {
        let limit = match limit {
            None => DEFAULT_LIMIT,
            Some(n) if (1..=MAX_LIMIT).contains(&n) => n,
            Some(_) => {
                return Err(ApiError::invalid(
                    "limit",
                    format!("must be between 1 and {MAX_LIMIT}"),
                ));
            }
        };
        Ok(PageParams { limit, cursor })
    }

    /// From a `?limit=&cursor=` query.
    pub fn from_query(q: Result<Query<PageQuery>, QueryRejection>) -> Result<Self, ApiError> {
        let Query(q) = query(q)?;
        Self::new(q.limit, q.cursor)
    }

    /// From a `?limit=&cursor=` query of a list ordered by name.
    pub fn from_name_query(
        q: Result<Query<NamePageQuery>, QueryRejection>,
    ) -> Result<Self, ApiError> {
        let Query(q) = query(q)?;
        Self::new(q.limit, q.cursor)
    }

    /// Rows to fetch: one more than the page, to know whether another follows.
    pub fn fetch(&self) -> i64 {
        i64::from(self.limit) + 1
    }

    /// The cursor as the row id the previous page ended at (0: from the start).
    pub fn after_rowid(&self) -> Result<i64, ApiError> {
        self.cursor.as_deref().map_or(Ok(0), |c| {
            c.parse()
                .map_err(|_| ApiError::invalid("cursor", "is not a cursor of this list"))
        })
    }

    /// The cursor as the name the previous page ended at ("": from the start).
    pub fn after_name(&self) -> &str {
        self.cursor.as_deref().unwrap_or("")
    }
}

/// A query string extractor's result, its errors as 422 naming the query.
pub fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<Query<T>, ApiError> {
    q.map_err(|e| ApiError::unprocessable("invalid_value", "query", format!("query: {e}")))
}

/// One page: the items, and the cursor of the next page if there is one.
#[derive(Debug)]
pub struct Paged<T> {
    /// The page's items.
    pub items: Vec<T>,
    /// Cursor of the next page.
    pub next_cursor: Option<String>,
}

impl<T> Paged<T> {
    /// A page from items fetched with [`PageParams::fetch`]; `key` gives an item's cursor.
    pub fn from_items(mut items: Vec<T>, p: &PageParams, key: impl Fn(&T) -> String) -> Self {
        let next_cursor = if items.len() > p.limit as usize {
            items.truncate(p.limit as usize);
            items.last().map(key)
        } else {
            None
        };
        Paged { items, next_cursor }
    }

    /// The page with each item mapped, the cursor kept.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Paged<U> {
        Paged {
            items: self.items.into_iter().map(f).collect(),
            next_cursor: self.next_cursor,
        }
    }

    /// The page with each item mapped by a fallible `f`, the cursor kept.
    pub fn try_map<U, E>(self, f: impl FnMut(T) -> Result<U, E>) -> Result<Paged<U>, E> {
        Ok(Paged {
            items: self.items.into_iter().map(f).collect::<Result<_, _>>()?,
            next_cursor: self.next_cursor,
        })
    }

    /// A page from rows selecting a `page_key` column (a row id or a name).
    pub fn from_rows(
        rows: Vec<AnyRow>,
        p: &PageParams,
        view: impl Fn(&AnyRow) -> Result<T, ApiError>,
    ) -> Result<Self, ApiError> {
        let page = Paged::from_items(rows, p, |r| {
            r.try_get::<i64, _>("page_key")
                .map(|k| k.to_string())
                .or_else(|_| r.try_get::<String, _>("page_key"))
                .unwrap_or_default()
        });
        Ok(Paged {
            items: page.items.iter().map(view).collect::<Result<_, _>>()?,
            next_cursor: page.next_cursor,
        })
    }
}

impl<T: Serialize> IntoResponse for Paged<T> {
    fn into_response(self) -> Response {
        let mut res = Json(self.items).into_response();
        if let Some(c) = self
            .next_cursor
            .and_then(|c| HeaderValue::from_str(&c).ok())
        {
            res.headers_mut().insert(NEXT_CURSOR, c);
        }
        res
    }
}
