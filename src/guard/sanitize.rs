//! The sanitizing guard: [`guard_scan::sanitize`] applied to every text of a request.

use guard_scan::sanitize::sanitize;
pub use guard_scan::sanitize::Removed;

use crate::api::chat::ChatRequest;

/// Sanitizes the text of every message of `request` in place (plain contents, the `text`
/// of text parts and the arguments of tool calls); returns what was removed.
pub fn sanitize_request(request: &mut ChatRequest) -> Removed {
    let mut removed = Removed::default();
    request.for_each_text(|text| removed.add(sanitize(text)));
    // Nothing sanitizing removes is JSON syntax, so the arguments stay JSON.
    request.for_each_tool_arguments(|arguments| removed.add(sanitize(arguments)));
    removed
}
