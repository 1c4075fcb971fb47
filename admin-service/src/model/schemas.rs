//! JSON schemas of API fields whose Rust types live in the pure `policy` crate (which
//! stays free of OpenAPI): the same rules its parsers enforce.

use policy::MAX_MODEL_LEN;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Schema, Type};

/// A model name or `*` pattern (`gpt-4o*`): no whitespace or control characters.
pub fn model_pattern() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(MAX_MODEL_LEN))
        .pattern(Some(r"^[^\s\x00-\x1f\x7f-\x9f]+$"))
        .description(Some(
            "A model name, or a pattern where `*` matches any run of characters",
        ))
}

/// A list of [`model_pattern`]s.
pub fn model_patterns() -> RefOr<Schema> {
    ArrayBuilder::new().items(model_pattern()).into()
}

/// A budget period.
pub fn budget_period() -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(["daily", "weekly", "monthly"]))
        .description(Some("When the budget resets: daily, weekly (Mondays) or monthly, at 00:00 in the budget's UTC offset"))
        .into()
}
