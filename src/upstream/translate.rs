//! What the non-OpenAI providers share when translating: they take text only and no tools,
//! so they refuse what they cannot express with a 400 naming the field, and they report
//! errors as `{"error": {"message": ...}}`.

use serde_json::Value;

use super::openai::{map_error_status, scrub_credentials};
use crate::api::chat::{ChatRequest, Content, Role};
use crate::config::source::Secret;
use crate::error::GatewayError;

/// Who speaks a conversation turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Speaker {
    /// The end user.
    User,
    /// The model.
    Assistant,
}

/// A conversation as text: the system prompt parts and the turns, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextConversation {
    /// `system` and `developer` messages.
    pub system: Vec<String>,
    /// `user` and `assistant` messages.
    pub turns: Vec<(Speaker, String)>,
}

/// 400 for the first of `params` the request carries.
pub fn refuse_params(request: &ChatRequest, params: &[&str]) -> Result<(), GatewayError> {
    match params
        .iter()
        .find(|name| request.passthrough.contains_key(**name))
    {
        Some(name) => Err(GatewayError::invalid(
            *name,
            format!("{name} is not supported for this model's provider"),
        )),
        None => Ok(()),
    }
}

/// The conversation as text, or 400 for non-text parts and tool messages.
pub fn text_conversation(request: &ChatRequest) -> Result<TextConversation, GatewayError> {
    let mut conversation = TextConversation {
        system: Vec::new(),
        turns: Vec::new(),
    };
    for (index, message) in request.messages.iter().enumerate() {
        if let Content::Parts(parts) = &message.content {
            if let Some(part) = parts
                .iter()
                .position(|p| p.get("type").and_then(Value::as_str) != Some("text"))
            {
                return Err(GatewayError::invalid(
                    format!("messages[{index}].content[{part}]"),
                    "only text content is supported for this model's provider",
                ));
            }
        }
        let text = message.content.text();
        match message.role {
            Role::System | Role::Developer => conversation.system.push(text),
            Role::User if message.tool_calls.is_none() => {
                conversation.turns.push((Speaker::User, text))
            }
            Role::Assistant if message.tool_calls.is_none() => {
                conversation.turns.push((Speaker::Assistant, text))
            }
            _ => {
                return Err(GatewayError::invalid(
                    format!("messages[{index}]"),
                    "tool messages are not supported for this model's provider",
                ))
            }
        }
    }
    Ok(conversation)
}

/// The client's error for a non-2xx answer whose body is `{"error": {"message": ...}}`.
pub fn map_error_message(status: u16, body: &[u8], api_key: &Secret) -> GatewayError {
    let message = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|value| value["error"]["message"].as_str().map(str::to_owned))
        .map(|message| scrub_credentials(&message, api_key));
    map_error_status(status, message)
}
