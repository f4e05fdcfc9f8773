//! Where a model alias goes: an ordered chain of targets, optionally weighted, or the
//! `auto` rule that picks between two aliases from how demanding the request looks.

use crate::api::chat::ChatRequest;

/// One place a request can be sent: a provider and the model name it is sent with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteTarget {
    /// A key of [`crate::config::Config::providers`].
    pub provider: String,
    /// The model name sent upstream.
    pub model: String,
    /// Share of the alias's traffic this target takes first; `None` for a pure fallback.
    pub weight: Option<u32>,
}

/// Where one alias goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelRoute {
    /// Targets tried in order (after a weighted first pick, when weights are given).
    Chain(Vec<RouteTarget>),
    /// Picks one of two chain aliases per request.
    Auto(AutoRoute),
}

/// The `auto` rule: `simple` for light requests, `complex` for demanding ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutoRoute {
    /// The alias for light requests (usually a cheaper, faster model).
    pub simple: String,
    /// The alias for demanding requests (usually a stronger model).
    pub complex: String,
    /// Prompts estimated above this many tokens count as demanding.
    pub max_simple_prompt_tokens: u64,
}

/// Conversations longer than this many messages count as demanding.
const MAX_SIMPLE_MESSAGES: usize = 16;

/// Phrases in the last user message that ask for reasoning, analysis or code work
/// (matched on ASCII-lower-cased text).
const REASONING_CUES: &[&str] = &[
    "step by step",
    "step-by-step",
    "prove",
    "proof",
    "derive",
    "analyze",
    "analyse",
    "analysis",
    "reason about",
    "think through",
    "explain why",
    "trade-off",
    "tradeoff",
    "compare",
    "debug",
    "refactor",
    "optimize",
    "optimise",
    "algorithm",
    "architecture",
    "```",
];

impl AutoRoute {
    /// The alias this request goes to, and why (the reason is logged).
    pub fn choose(&self, request: &ChatRequest) -> (&str, &'static str) {
        let reason = if request.passthrough.contains_key("tools")
            || request.passthrough.contains_key("functions")
        {
            Some("tools")
        } else if request.has_non_text_parts() {
            Some("media")
        } else if request.estimated_prompt_tokens() > self.max_simple_prompt_tokens {
            Some("long_prompt")
        } else if request.messages.len() > MAX_SIMPLE_MESSAGES {
            Some("long_conversation")
        } else {
            // ASCII folding is enough for the English cues, and leaves out the Unicode
            // case tables (about 25 KB of wasm).
            let text = request
                .last_user_text()
                .unwrap_or_default()
                .to_ascii_lowercase();
            REASONING_CUES
                .iter()
                .any(|cue| text.contains(cue))
                .then_some("reasoning_cues")
        };
        match reason {
            Some(reason) => (&self.complex, reason),
            None => (&self.simple, "simple"),
        }
    }
}

/// The order in which `targets` are tried: when some have weights, one of those is picked
/// first with probability proportional to its weight (`random`, uniform, decides), and
/// every other target follows in configured order; without weights, configured order.
pub fn attempt_order(targets: &[RouteTarget], random: u32) -> Vec<usize> {
    let mut order: Vec<usize> = (0..targets.len()).collect();
    let total: u64 = targets
        .iter()
        .map(|target| u64::from(target.weight.unwrap_or(0)))
        .sum();
    if total == 0 {
        return order;
    }
    let mut ticket = (u64::from(random) * total) >> 32;
    for (index, target) in targets.iter().enumerate() {
        let weight = u64::from(target.weight.unwrap_or(0));
        if ticket < weight {
            order.remove(index);
            order.insert(0, index);
            break;
        }
        ticket -= weight;
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guard::validate::parse_for_tests;
    use serde_json::json;

    fn target(provider: &str, weight: Option<u32>) -> RouteTarget {
        RouteTarget {
            provider: provider.into(),
            model: "m".into(),
            weight,
        }
    }

    #[test]
    fn without_weights_the_configured_order_holds() {
        let targets = [target("a", None), target("b", None), target("c", None)];
        for random in [0, 1 << 31, u32::MAX] {
            assert_eq!(attempt_order(&targets, random), [0, 1, 2]);
        }
    }

    #[test]
    fn weights_pick_the_first_target_in_proportion() {
        let targets = [
            target("a", Some(3)),
            target("b", Some(1)),
            target("fallback", None),
        ];
        let mut first = [0u32; 3];
        for step in 0..4_000u64 {
            let random = (step * (1 << 32) / 4_000) as u32;
            let order = attempt_order(&targets, random);
            assert_eq!(order.len(), 3);
            // The unweighted target is always last: a pure fallback.
            assert_eq!(order[2], 2);
            first[order[0]] += 1;
        }
        assert_eq!(first, [3_000, 1_000, 0]);
        assert_eq!(attempt_order(&targets, u32::MAX), [1, 0, 2]);
    }

    fn request(text: &str, extra: serde_json::Value) -> ChatRequest {
        let mut body = json!({"model": "auto", "messages": [{"role": "user", "content": text}]});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        parse_for_tests(&body.to_string())
    }

    #[test]
    fn auto_sends_demanding_requests_to_the_complex_alias() {
        let route = AutoRoute {
            simple: "small".into(),
            complex: "large".into(),
            max_simple_prompt_tokens: 100,
        };
        let choose = |request: &ChatRequest| route.choose(request);
        assert_eq!(
            choose(&request("What is the capital of France?", json!({}))),
            ("small", "simple")
        );
        assert_eq!(
            choose(&request("Hi", json!({"tools": [{"type": "function"}]}))),
            ("large", "tools")
        );
        let mut image = request("What is this?", json!({}));
        image.messages[0].content = crate::api::chat::Content::Parts(vec![
            json!({"type": "text", "text": "What is this?"}),
            json!({"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}),
        ]);
        assert_eq!(choose(&image), ("large", "media"));
        assert_eq!(
            choose(&request(&"word ".repeat(100), json!({}))),
            ("large", "long_prompt")
        );
        assert_eq!(
            choose(&request(
                "Please explain WHY the sky is blue, Step By Step.",
                json!({})
            )),
            ("large", "reasoning_cues")
        );
        assert_eq!(
            choose(&request("fix this:\n```rust\nfn main() {}\n```", json!({}))),
            ("large", "reasoning_cues")
        );
        let mut long = request("ok", json!({}));
        long.messages = vec![long.messages[0].clone(); 17];
        assert_eq!(choose(&long), ("large", "long_conversation"));
    }
}
