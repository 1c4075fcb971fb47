//! Exact money. Amounts are integers: billing rates in minor units (cents, scale 2),
//! budgets and prices in micros (scale 6). Input accepts a JSON number (`99.00`) or a
//! string (`"99.00"`); output is always a decimal string (`"99.00"`), because a JSON
//! number cannot carry trailing zeros and clients must not do float arithmetic on it.

use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaType, Type};

/// Most digits of the whole part (below 10^12 keeps micros inside `i64`); the
/// documented pattern says the same.
const MAX_WHOLE_DIGITS: usize = 12;

/// Parses a non-negative decimal into integer units of `10^-scale`, exactly.
pub fn parse_decimal(text: &str, scale: u32) -> Result<u64, String> {
    let t = text;
    let (whole, frac) = t.split_once('.').unwrap_or((t, ""));
    if t.starts_with('-') {
        return Err("must not be negative".into());
    }
    if whole.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(format!("{text:?} is not a decimal amount"));
    }
    // Trailing zeros carry no value: 99.000 is 99.00.
    let frac = frac.trim_end_matches('0');
    if frac.len() > scale as usize {
        return Err(format!("at most {scale} decimal places are allowed"));
    }
    if whole.len() > MAX_WHOLE_DIGITS {
        return Err("amount is too large".into());
    }
    let whole: u64 = whole
        .parse()
        .map_err(|_| "amount is too large".to_string())?;
    let unit = 10u64.pow(scale);
    let frac_units = if frac.is_empty() {
        0
    } else {
        frac.parse::<u64>()
            .map_err(|_| "amount is too large".to_string())?
            * 10u64.pow(scale - frac.len() as u32)
    };
    Ok(whole * unit + frac_units)
}

/// Formats integer units of `10^-scale` with at least `min_decimals` decimals.
pub fn format_units(units: impl Into<u128>, scale: u32, min_decimals: u32) -> String {
    let units: u128 = units.into();
    let unit = 10u128.pow(scale);
    let whole = units / unit;
    let mut frac = format!("{:0width$}", units % unit, width = scale as usize);
    while frac.len() > min_decimals as usize && frac.ends_with('0') {
        frac.pop();
    }
    if frac.is_empty() {
        whole.to_string()
    } else {
        format!("{whole}.{frac}")
    }
}

/// Reads a JSON number or string as decimal text without float arithmetic.
struct DecimalText;

impl Visitor<'_> for DecimalText {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a decimal amount as a number or string, e.g. 99.00")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<String, E> {
        // Rust prints the shortest text that round-trips, so `99.1` reads back as
        // "99.1" (never 99.0999…); no arithmetic happens on the float.
        if !v.is_finite() {
            return Err(E::custom("amount must be finite"));
        }
        Ok(format!("{v}"))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_string())
    }
}

macro_rules! amount {
    ($name:ident, $scale:expr, $min:expr, $doc:literal) => {
        #[doc = $doc]
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
        pub struct $name(pub u64);

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = d.deserialize_any(DecimalText)?;
                parse_decimal(&text, $scale)
                    .map($name)
                    .map_err(de::Error::custom)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&format_units(self.0, $scale, $min))
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                amount_schema($scale)
            }
        }

        impl utoipa::ToSchema for $name {}

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&format_units(self.0, $scale, $min))
            }
        }
    };
}

amount!(
    Cents,
    2,
    2,
    "An amount in minor units (scale 2), e.g. a billing rate; JSON `\"99.00\"`."
);
amount!(
    Micros,
    6,
    2,
    "An amount in micros (scale 6), e.g. a budget or a price; JSON `\"500.00\"`."
);

/// The schema of an amount input and output: a decimal string (what the API
/// answers) or a JSON number, non-negative, at most `scale` significant decimals.
/// One schema of two types, so `pattern` holds for strings and the number bounds for
/// numbers (JSON Schema applies each keyword to its own type).
fn amount_schema(scale: u32) -> RefOr<Schema> {
    let pattern = format!("^[0-9]{{1,{MAX_WHOLE_DIGITS}}}(\\.[0-9]{{0,{scale}}}0*)?$");
    let step = format!("0.{}1", "0".repeat(scale as usize - 1));
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Number]))
        .pattern(Some(pattern))
        .minimum(Some(0.0))
        .exclusive_maximum(Some(1e12))
        .multiple_of(step.parse::<f64>().ok())
        .examples([serde_json::json!("99.00")])
        .description(Some(format!(
            "Decimal amount: answered as a string (\"99.00\"); a string or a number is accepted, at most {scale} decimal places"
        )))
        .into()
}

/// A signed amount in micros (a margin can be negative); JSON `"-1.50"`. Wide, as
/// margins are differences of sums.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct SignedMicros(pub i128);

impl fmt::Display for SignedMicros {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        write!(f, "{sign}{}", format_units(self.0.unsigned_abs(), 6, 2))
    }
}

impl utoipa::PartialSchema for SignedMicros {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some("^-?[0-9]+(\\.[0-9]+)?$"))
            .description(Some("Signed decimal amount, e.g. \"-1.50\""))
            .into()
    }
}

impl utoipa::ToSchema for SignedMicros {}

macro_rules! total {
    ($name:ident, $scale:expr, $doc:literal) => {
        #[doc = $doc]
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
        pub struct $name(pub u128);

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&format_units(self.0, $scale, 2))
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                total_schema($scale)
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}

total!(
    TotalCents,
    2,
    "A sum of amounts in minor units, e.g. a month's revenue over its agents: answered as `\"99.00\"`, with no upper bound (an amount's input cap bounds each term, not their sum)."
);
total!(
    TotalMicros,
    6,
    "A sum of amounts in micros, e.g. a month's token cost: answered as `\"3.00\"`, with no upper bound."
);

/// The schema of a sum: a decimal string of any size, 2 to `scale` decimals.
fn total_schema(scale: u32) -> RefOr<Schema> {
    let decimals = if scale == 2 {
        "2".to_string()
    } else {
        format!("2,{scale}")
    };
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(format!("^[0-9]+\\.[0-9]{{{decimals}}}$")))
        .examples([serde_json::json!("99.00")])
        .description(Some("Decimal sum of amounts, e.g. \"99.00\"; unbounded"))
        .into()
}

impl Serialize for SignedMicros {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

amount!(
    FxRate,
    6,
    1,
    "An exchange rate in millionths (scale 6): units of one currency per unit of another; JSON `\"0.92\"`."
);

/// ISO 4217 currencies organizations bill in and catalog prices are set in.
pub const CURRENCIES: [&str; 6] = ["USD", "EUR", "GBP", "NGN", "CAD", "AUD"];

/// Checks `c` is one of [`CURRENCIES`] (422 naming `field`).
pub fn check_currency(field: &str, c: &str) -> Result<(), crate::errors::ApiError> {
    if CURRENCIES.contains(&c) {
        Ok(())
    } else {
        Err(crate::errors::ApiError::invalid(
            field,
            format!("must be one of {}", CURRENCIES.join(", ")),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_exactly() {
        assert_eq!(parse_decimal("99.00", 2), Ok(9900));
        assert_eq!(parse_decimal("0.1", 2), Ok(10));
        assert_eq!(parse_decimal("12", 6), Ok(12_000_000));
        assert_eq!(parse_decimal("0.000001", 6), Ok(1));
        assert!(parse_decimal("1.005", 2).is_err());
        assert!(parse_decimal("-1", 2).is_err());
        assert!(parse_decimal("1e3", 2).is_err());
        assert!(parse_decimal(".5", 2).is_err());
    }

    #[test]
    fn json_numbers_and_strings() {
        let c: Cents = serde_json::from_str("99.00").unwrap();
        assert_eq!(c, Cents(9900));
        let c: Cents = serde_json::from_str("19.99").unwrap();
        assert_eq!(c, Cents(1999));
        let c: Cents = serde_json::from_str("\"0.07\"").unwrap();
        assert_eq!(serde_json::to_string(&c).unwrap(), "\"0.07\"");
        let m: Micros = serde_json::from_str("500").unwrap();
        assert_eq!(serde_json::to_string(&m).unwrap(), "\"500.00\"");
        let m: Micros = serde_json::from_str("0.0025").unwrap();
        assert_eq!(m.to_string(), "0.0025");
        assert!(serde_json::from_str::<Cents>("true").is_err());
        assert_eq!(SignedMicros(-1_500_000).to_string(), "-1.50");
        assert_eq!(SignedMicros(96_000_000).to_string(), "96.00");
        assert_eq!(SignedMicros(-125).to_string(), "-0.000125");
    }
}
