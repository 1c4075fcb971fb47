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

/// An exact model name (a catalog entry, a route group): a [`model_pattern`] without `*`.
pub fn exact_model_name() -> RefOr<Schema> {
    model_pattern()
        .pattern(Some(r"^(?!group:)[^\s\x00-\x1f\x7f-\x9f*]+$"))
        .description(Some("An exact model name (no `*`)"))
        .into()
}

/// One of the currencies organizations bill in and prices are set in.
pub fn currency() -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(crate::billing::money::CURRENCIES))
        .description(Some("ISO 4217 currency code"))
        .into()
}

/// An email address as the API accepts it: one `@`, a dotted domain, no spaces.
pub fn email() -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .max_length(Some(254))
        .pattern(Some(
            r"^[^@\s\x00-\x1f\x7f-\x9f]+@[^@\s\x00-\x1f\x7f-\x9f.][^@\s\x00-\x1f\x7f-\x9f]*\.[^@\s\x00-\x1f\x7f-\x9f]*[^@\s\x00-\x1f\x7f-\x9f.]$",
        ))
        .description(Some("Email address"))
        .into()
}

/// An organization slug: lower-case ASCII letters and digits in `-`-joined runs.
pub fn slug() -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .max_length(Some(64))
        .pattern(Some(r"^[a-z0-9]+(-[a-z0-9]+)*$"))
        .into()
}

/// A catalog label (access group): lower-case ASCII letters, digits, `-`, `_`, `.`.
pub fn labels() -> RefOr<Schema> {
    ArrayBuilder::new()
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(64))
                .pattern(Some(r"^[a-z0-9._-]+$")),
        )
        .into()
}

/// An IPv4 or IPv6 address (nullable: the field may be left out or null).
pub fn ip_address() -> RefOr<Schema> {
    utoipa::openapi::schema::OneOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(utoipa::openapi::SchemaFormat::Custom("ipv4".into()))),
        )
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(utoipa::openapi::SchemaFormat::Custom("ipv6".into()))),
        )
        .item(ObjectBuilder::new().schema_type(Type::Null))
        .into()
}

/// `schema`, or `null` (an optional field that accepts null as absent).
fn or_null(schema: RefOr<Schema>) -> RefOr<Schema> {
    utoipa::openapi::schema::OneOfBuilder::new()
        .item(schema)
        .item(ObjectBuilder::new().schema_type(Type::Null))
        .into()
}

/// [`currency`] or `null`.
pub fn currency_or_null() -> RefOr<Schema> {
    or_null(currency())
}

/// [`email`] or `null`.
pub fn email_or_null() -> RefOr<Schema> {
    or_null(email())
}

/// [`slug`] or `null`.
pub fn slug_or_null() -> RefOr<Schema> {
    or_null(slug())
}

/// [`model_patterns`] or `null` (inherit the grants above).
pub fn model_patterns_or_null() -> RefOr<Schema> {
    or_null(model_patterns())
}
