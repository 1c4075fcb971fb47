//! Model prices and spend: exact integer money in millionths of the org's currency.

use serde::{Deserialize, Serialize};

use crate::models::ModelPattern;

const PER_MTOK: u128 = 1_000_000;

/// The price of a model (or a `*` pattern of models) per million tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelPrice {
    /// Model name or pattern the price applies to.
    pub model: ModelPattern,
    /// Price of one million input (prompt) tokens, in micro-units.
    pub input_per_mtok_micros: u64,
    /// Price of one million output (completion) tokens, in micro-units.
    pub output_per_mtok_micros: u64,
}

impl ModelPrice {
    /// Cost of a call, rounded up to the next micro-unit so spend is never under-counted.
    pub fn cost_micros(&self, input_tokens: u64, output_tokens: u64) -> u64 {
        // Each product fits u128; only their sum can overflow, and then saturates.
        let total = (u128::from(input_tokens) * u128::from(self.input_per_mtok_micros))
            .saturating_add(u128::from(output_tokens) * u128::from(self.output_per_mtok_micros));
        u64::try_from(total.div_ceil(PER_MTOK)).unwrap_or(u64::MAX)
    }
}

/// The first price whose pattern matches `model`.
pub fn price_of<'a>(prices: &'a [ModelPrice], model: &str) -> Option<&'a ModelPrice> {
    prices.iter().find(|p| p.model.matches(model))
}

/// Formats an amount of micro-units as a decimal with two to six places (`1.50`, `0.000125`).
pub fn format_micros(micros: u64) -> String {
    let whole = micros / 1_000_000;
    let frac = format!("{:06}", micros % 1_000_000);
    let trimmed = frac.trim_end_matches('0');
    let places = trimmed.len().max(2);
    format!("{whole}.{}", &frac[..places])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn price(model: &str, input: u64, output: u64) -> ModelPrice {
        ModelPrice {
            model: model.parse().unwrap(),
            input_per_mtok_micros: input,
            output_per_mtok_micros: output,
        }
    }

    #[test]
    fn cost_is_exact_and_rounds_up() {
        // gpt-4o-mini: $0.15 / $0.60 per 1M tokens.
        let p = price("gpt-4o-mini", 150_000, 600_000);
        assert_eq!(p.cost_micros(1_000_000, 1_000_000), 750_000);
        assert_eq!(p.cost_micros(10, 5), 5); // 1.5 + 3.0 = 4.5 micros → 5
        assert_eq!(p.cost_micros(0, 0), 0);
        // No overflow at the extremes.
        assert_eq!(
            price("m", u64::MAX, u64::MAX).cost_micros(u64::MAX, u64::MAX),
            u64::MAX
        );
    }

    #[test]
    fn first_matching_price_wins() {
        let prices = [price("gpt-4o-mini", 1, 1), price("gpt-4o*", 2, 2)];
        assert_eq!(
            price_of(&prices, "gpt-4o-mini")
                .unwrap()
                .input_per_mtok_micros,
            1
        );
        assert_eq!(
            price_of(&prices, "gpt-4o").unwrap().input_per_mtok_micros,
            2
        );
        assert!(price_of(&prices, "claude").is_none());
    }

    #[test]
    fn formats_money() {
        assert_eq!(format_micros(1_500_000), "1.50");
        assert_eq!(format_micros(125), "0.000125");
        assert_eq!(format_micros(0), "0.00");
        assert_eq!(format_micros(99_000_000), "99.00");
    }
}
