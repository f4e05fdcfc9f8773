//! What a model costs: a price table in USD per million tokens (`PRICES`), and the cost of
//! a request in nano-dollars so that sums stay exact integers.

use serde::Deserialize;

use crate::api::chat::Usage;
use crate::config::source::Reader;
use crate::sorted_map::SortedMap;

/// The prices used when `PRICES` is not set: list prices of the models in the default
/// routes (USD per million tokens), and the free built-in mock.
pub const DEFAULT_PRICES: &str = r#"{
  "mock": {"input": 0, "output": 0},
  "gpt-4o-mini": {"input": 0.15, "output": 0.6, "cached_input": 0.075},
  "gpt-4o": {"input": 2.5, "output": 10, "cached_input": 1.25},
  "claude-sonnet-4-5": {"input": 3, "output": 15, "cached_input": 0.3},
  "gemini-2.5-flash": {"input": 0.3, "output": 2.5, "cached_input": 0.075}
}"#;

/// One model's prices in USD per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    /// Prompt tokens.
    pub input: f64,
    /// Completion tokens.
    pub output: f64,
    /// Prompt tokens served from the provider's prompt cache (default: `input`).
    #[serde(default)]
    pub cached_input: Option<f64>,
}

/// Nano-dollars per token for a price of `usd_per_million` (1 USD/M = 1 000 n$/token).
fn nanos(tokens: u64, usd_per_million: f64) -> f64 {
    tokens as f64 * usd_per_million * 1_000.0
}

impl Price {
    /// The cost of `usage`, in nano-dollars, rounded to the nearest.
    pub fn cost_nanousd(&self, usage: &Usage) -> u64 {
        let cached = usage.cached_tokens().min(usage.prompt_tokens);
        let fresh = usage.prompt_tokens - cached;
        let total = nanos(fresh, self.input)
            + nanos(cached, self.cached_input.unwrap_or(self.input))
            + nanos(usage.completion_tokens, self.output);
        total.round() as u64
    }

    /// The most a request could cost: every prompt token uncached plus `max_output` tokens.
    pub fn estimate_nanousd(&self, prompt_tokens: u64, max_output: u64) -> u64 {
        (nanos(prompt_tokens, self.input) + nanos(max_output, self.output)).round() as u64
    }

    /// Problems with the figures, for the config check.
    pub fn problem(&self) -> Option<&'static str> {
        let figures = [self.input, self.output, self.cached_input.unwrap_or(0.0)];
        figures
            .iter()
            .any(|usd| !usd.is_finite() || *usd < 0.0 || *usd > 1_000_000.0)
            .then_some("prices must be numbers from 0 to 1000000 (USD per million tokens)")
    }
}

/// Prices by upstream model name.
pub type PriceTable = SortedMap<String, Price>;

/// `PRICES` (the list prices of the default routes' models when unset), each checked.
pub fn load_prices(r: &mut Reader) -> PriceTable {
    let prices: PriceTable = r.json("PRICES", DEFAULT_PRICES);
    for (model, price) in &prices {
        if let Some(problem) = price.problem() {
            r.error(format!("PRICES.{model}: {problem}"));
        }
    }
    prices
}

/// Nano-dollars as US dollars, for reports.
pub fn usd(nanousd: u64) -> f64 {
    nanousd as f64 / 1e9
}

/// US dollars as nano-dollars, for budgets.
pub fn nanousd(usd: f64) -> u64 {
    (usd * 1e9).round() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_table_parses_and_is_sane() {
        let table: PriceTable = serde_json::from_str(DEFAULT_PRICES).unwrap();
        assert!(table.values().all(|price| price.problem().is_none()));
        assert_eq!(table["mock"].cost_nanousd(&Usage::new(1_000, 1_000)), 0);
    }

    #[test]
    fn costs_count_cached_prompt_tokens_at_their_price() {
        let price = Price {
            input: 2.5,
            output: 10.0,
            cached_input: Some(1.25),
        };
        // 1M prompt tokens at $2.50 and 100k completion tokens at $10/M: $3.50.
        assert_eq!(
            price.cost_nanousd(&Usage::new(1_000_000, 100_000)),
            3_500_000_000
        );
        let mut cached = Usage::new(1_000, 0);
        cached.prompt_tokens_details = Some(serde_json::json!({"cached_tokens": 400}));
        // 600 × 2500 n$ + 400 × 1250 n$.
        assert_eq!(price.cost_nanousd(&cached), 2_000_000);
        assert_eq!(price.estimate_nanousd(1_000, 500), 7_500_000);
        assert_eq!(usd(3_500_000_000), 3.5);
        assert_eq!(nanousd(0.25), 250_000_000);
    }

    #[test]
    fn bad_figures_are_reported() {
        let negative = Price {
            input: -1.0,
            output: 1.0,
            cached_input: None,
        };
        assert!(negative.problem().is_some());
    }
}
