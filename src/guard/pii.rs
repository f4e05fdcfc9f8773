//! The personal-data guard: [`guard_scan::pii`] finds and replaces personal data and
//! secrets; this applies it to a request and reads where it applies (`REDACT_PII`).

use guard_scan::pii::{redact_in_place, redact_json_in_place};

use crate::api::chat::ChatRequest;
use crate::config::source::Reader;

/// Redacts the text of every message of `request` in place, and the arguments of the
/// tool calls in its history (as JSON, see [`guard_scan::pii::JsonRedactor`]); returns
/// how many matches were replaced in the text, plus one for each tool call whose
/// arguments changed.
pub fn redact_request(request: &mut ChatRequest) -> u32 {
    let mut replaced = 0;
    request.for_each_text(|text| replaced += redact_in_place(text));
    request.for_each_tool_arguments(|arguments| {
        if redact_json_in_place(arguments) > 0 {
            replaced += 1;
        }
    });
    replaced
}

/// Where personal data is redacted (`REDACT_PII`: `output`, `both` or `off`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PiiRedaction {
    /// In answers, streamed or not.
    pub output: bool,
    /// In requests, before they go upstream.
    pub input: bool,
}

impl PiiRedaction {
    /// `REDACT_PII`.
    pub fn load(r: &mut Reader) -> PiiRedaction {
        let (output, input) = r.choice(
            "REDACT_PII",
            &[
                ("off", (false, false)),
                ("output", (true, false)),
                ("both", (true, true)),
            ],
        );
        PiiRedaction { output, input }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_redaction_reaches_tool_arguments_and_keeps_them_json() {
        let mut request = crate::guard::validate::parse_for_tests(
            r#"{"model": "m", "messages": [{"role": "user", "content": "mail jane@example.com"},
                {"role": "assistant", "content": null, "tool_calls": [{"id": "c", "type": "function",
                    "function": {"name": "send", "arguments": "{\"to\": \"jane@example.com\", \"n\": 2}"}}]},
                {"role": "tool", "tool_call_id": "c", "content": "sent to jane@example.com"}]}"#,
        );
        assert_eq!(redact_request(&mut request), 3);
        let arguments = request.messages[1].tool_calls.as_ref().unwrap()[0]["function"]
            ["arguments"]
            .as_str()
            .unwrap()
            .to_owned();
        let parsed: serde_json::Value = serde_json::from_str(&arguments).unwrap();
        assert_eq!(
            parsed,
            serde_json::json!({"to": "[REDACTED_EMAIL]", "n": 2})
        );
        assert_eq!(
            request.messages[2].content.text(),
            "sent to [REDACTED_EMAIL]"
        );
    }
}
