//! Who the audit log attributes writes to. Rows are written by triggers (migration
//! 0009) inside each write transaction; the writer first names the actor, which
//! requests carry in a task-local set by the `Actor` extractor. The log is read
//! through `api::audit`.

use std::cell::RefCell;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;

use crate::errors::ApiError;
use crate::store::db::parse_rfc3339;

/// The actor of writes made outside any request (start-up, pushers, drainers).
pub const SYSTEM: &str = "system";
/// The actor of unauthenticated requests (invitation acceptance).
pub const ANONYMOUS: &str = "anonymous";

tokio::task_local! {
    static REQUEST_ACTOR: RefCell<Option<String>>;
}

/// Middleware: gives each request a slot for its actor.
pub async fn actor_scope(req: Request, next: Next) -> Response {
    REQUEST_ACTOR.scope(RefCell::new(None), next.run(req)).await
}

/// Records the authenticated actor (a user id, or a platform admin's token id).
pub fn record_actor(actor: &str) {
    let _ = REQUEST_ACTOR.try_with(|a| *a.borrow_mut() = Some(actor.to_string()));
}

/// The actor to attribute the current task's writes to.
pub fn current_actor() -> String {
    match REQUEST_ACTOR.try_with(|a| a.borrow().clone()) {
        Ok(Some(actor)) => actor,
        Ok(None) => ANONYMOUS.to_string(),
        Err(_) => SYSTEM.to_string(),
    }
}

/// An RFC 3339 query bound as Unix ms; 422 naming `field` when unreadable.
pub fn time_filter(field: &str, text: Option<&str>) -> Result<Option<i64>, ApiError> {
    text.map(|t| {
        parse_rfc3339(t).ok_or_else(|| ApiError::invalid(field, "must be an RFC 3339 timestamp"))
    })
    .transpose()
}
