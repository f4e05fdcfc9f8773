//! The one error type every stage returns, and its OpenAI-shaped wire form.
//!
//! A [`GatewayError`] carries a stable [`ErrorKind`]: the kind decides the HTTP status,
//! the OpenAI `type` and the stable `code` that clients can switch on, and it is the
//! low-cardinality label logs and metrics use. The message is for humans and may vary.

use serde::Serialize;

/// What went wrong, at a granularity that clients, logs and metrics can rely on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The body is not valid JSON (or not UTF-8, or nested too deeply).
    InvalidJson,
    /// The body is JSON but breaks a rule of the request schema or a configured bound.
    InvalidRequest,
    /// A request parameter the gateway does not know.
    UnknownParameter,
    /// The `Content-Type` is not `application/json`.
    UnsupportedMediaType,
    /// The body is larger than the configured cap.
    PayloadTooLarge,
    /// No route serves the requested model.
    ModelNotFound,
    /// No endpoint at this path.
    NotFound,
    /// The path exists but not for this method.
    MethodNotAllowed,
    /// A browser request from an origin (or with a method or header) CORS does not allow.
    OriginNotAllowed,
    /// No credentials, or a key that is unknown, revoked or expired (one kind for all, so
    /// responses never reveal which).
    InvalidApiKey,
    /// A JWT that is malformed, unsigned, badly signed or breaks the claim policy.
    InvalidToken,
    /// A JWT past its `exp`.
    TokenExpired,
    /// The principal may not use the requested model.
    ModelNotAllowed,
    /// A `system` or `developer` message where the gateway sets the system prompt itself.
    SystemMessageNotAllowed,
    /// The input guard found a likely prompt injection and the caller's policy blocks it.
    PromptInjectionDetected,
    /// The request asks for output that personal-data redaction cannot cover (log
    /// probabilities, audio).
    RedactionUnsupported,
    /// The admin API is off: no `ADMIN_TOKEN` secret is set.
    AdminDisabled,
    /// A rate limit (requests, tokens or concurrency) refused the request.
    RateLimitExceeded,
    /// A spend budget is used up.
    InsufficientQuota,
    /// The rate limiter could not be reached and the policy is to fail closed.
    RateLimiterUnavailable,
    /// The key store (KV) could not be reached.
    StoreUnavailable,
    /// The gateway's configuration is invalid; `/readyz` says why.
    ConfigInvalid,
    /// The route's provider needs a secret that is not set.
    ProviderNotConfigured,
    /// The upstream rejected the request with a 4xx that keeps its meaning.
    UpstreamRejected { status: u16 },
    /// The upstream's own rate limit refused the call (its 429), not the gateway's.
    UpstreamRateLimited,
    /// The upstream failed: 5xx, a network error or an unreadable answer.
    UpstreamError,
    /// The upstream did not answer in time (headers, a silence mid-answer, or the
    /// request's total time limit).
    UpstreamTimeout,
    /// Every target of the model's route failed or was skipped by its circuit breaker.
    AllProvidersFailed,
    /// The caller has no job with this id (or it expired).
    JobNotFound,
    /// A `DELETE /v1/jobs/{id}` of a job that is running or has ended.
    JobNotCancellable,
    /// A change to an API key that was revoked: revocation is final.
    KeyRevoked,
    /// An `Idempotency-Key` used before with a different request body.
    IdempotencyKeyReused,
    /// A `callback_url` that is not https or points at a private or special address.
    InvalidCallbackUrl,
    /// A `callback_url` was given but no `WEBHOOK_SIGNING_SECRET` is set.
    WebhooksDisabled,
    /// The job store or the queue could not be reached.
    JobsUnavailable,
    /// The caller has no stored response with this id (or it expired).
    ResponseNotFound,
    /// The response store could not be reached.
    ResponsesUnavailable,
    /// Feedback names a request the caller did not make (or whose record expired).
    RequestNotFound,
    /// Feedback is turned off (`FEEDBACK_TTL_SECONDS=0`).
    FeedbackDisabled,
    /// The feedback store could not be reached.
    FeedbackUnavailable,
    /// A bug or a platform failure inside the gateway.
    Internal,
}

impl ErrorKind {
    /// The HTTP status this kind is answered with.
    pub fn status(self) -> u16 {
        match self {
            ErrorKind::InvalidJson
            | ErrorKind::InvalidRequest
            | ErrorKind::UnknownParameter
            | ErrorKind::SystemMessageNotAllowed
            | ErrorKind::PromptInjectionDetected
            | ErrorKind::RedactionUnsupported
            | ErrorKind::InvalidCallbackUrl => 400,
            ErrorKind::UnsupportedMediaType => 415,
            ErrorKind::PayloadTooLarge => 413,
            ErrorKind::ModelNotFound
            | ErrorKind::NotFound
            | ErrorKind::JobNotFound
            | ErrorKind::ResponseNotFound
            | ErrorKind::RequestNotFound => 404,
            ErrorKind::JobNotCancellable | ErrorKind::KeyRevoked => 409,
            ErrorKind::IdempotencyKeyReused => 422,
            ErrorKind::MethodNotAllowed => 405,
            ErrorKind::OriginNotAllowed
            | ErrorKind::ModelNotAllowed
            | ErrorKind::AdminDisabled
            | ErrorKind::WebhooksDisabled
            | ErrorKind::FeedbackDisabled => 403,
            ErrorKind::InvalidApiKey | ErrorKind::InvalidToken | ErrorKind::TokenExpired => 401,
            ErrorKind::RateLimitExceeded
            | ErrorKind::InsufficientQuota
            | ErrorKind::UpstreamRateLimited => 429,
            ErrorKind::StoreUnavailable
            | ErrorKind::RateLimiterUnavailable
            | ErrorKind::JobsUnavailable
            | ErrorKind::ResponsesUnavailable
            | ErrorKind::FeedbackUnavailable => 503,
            ErrorKind::ConfigInvalid
            | ErrorKind::ProviderNotConfigured
            | ErrorKind::AllProvidersFailed => 503,
            ErrorKind::UpstreamRejected { status } => status,
            ErrorKind::UpstreamError => 502,
            ErrorKind::UpstreamTimeout => 504,
            ErrorKind::Internal => 500,
        }
    }

    /// The stable machine-readable `code` of the error object (also the log label).
    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::InvalidJson => "invalid_json",
            ErrorKind::InvalidRequest => "invalid_request",
            ErrorKind::UnknownParameter => "unknown_parameter",
            ErrorKind::UnsupportedMediaType => "unsupported_media_type",
            ErrorKind::PayloadTooLarge => "payload_too_large",
            ErrorKind::ModelNotFound => "model_not_found",
            ErrorKind::NotFound => "not_found",
            ErrorKind::MethodNotAllowed => "method_not_allowed",
            ErrorKind::OriginNotAllowed => "origin_not_allowed",
            ErrorKind::InvalidApiKey => "invalid_api_key",
            ErrorKind::InvalidToken => "invalid_token",
            ErrorKind::TokenExpired => "token_expired",
            ErrorKind::ModelNotAllowed => "model_not_allowed",
            ErrorKind::SystemMessageNotAllowed => "system_message_not_allowed",
            ErrorKind::PromptInjectionDetected => "prompt_injection_detected",
            ErrorKind::RedactionUnsupported => "redaction_unsupported",
            ErrorKind::AdminDisabled => "admin_disabled",
            ErrorKind::RateLimitExceeded => "rate_limit_exceeded",
            ErrorKind::InsufficientQuota => "insufficient_quota",
            ErrorKind::RateLimiterUnavailable => "rate_limiter_unavailable",
            ErrorKind::StoreUnavailable => "store_unavailable",
            ErrorKind::ConfigInvalid => "config_invalid",
            ErrorKind::ProviderNotConfigured => "provider_not_configured",
            ErrorKind::UpstreamRejected { .. } => "upstream_rejected",
            ErrorKind::UpstreamRateLimited => "upstream_rate_limited",
            ErrorKind::UpstreamError => "upstream_error",
            ErrorKind::UpstreamTimeout => "upstream_timeout",
            ErrorKind::AllProvidersFailed => "all_providers_failed",
            ErrorKind::JobNotFound => "job_not_found",
            ErrorKind::JobNotCancellable => "job_not_cancellable",
            ErrorKind::KeyRevoked => "key_revoked",
            ErrorKind::IdempotencyKeyReused => "idempotency_key_reused",
            ErrorKind::InvalidCallbackUrl => "invalid_callback_url",
            ErrorKind::WebhooksDisabled => "webhooks_disabled",
            ErrorKind::JobsUnavailable => "jobs_unavailable",
            ErrorKind::ResponseNotFound => "response_not_found",
            ErrorKind::ResponsesUnavailable => "responses_unavailable",
            ErrorKind::RequestNotFound => "request_not_found",
            ErrorKind::FeedbackDisabled => "feedback_disabled",
            ErrorKind::FeedbackUnavailable => "feedback_unavailable",
            ErrorKind::Internal => "internal_error",
        }
    }

    /// The OpenAI error `type`, the coarse class SDKs map to exception types.
    pub fn error_type(self) -> &'static str {
        if self == ErrorKind::InsufficientQuota {
            // OpenAI's own type for an exhausted balance; SDKs surface it as a 429 anyway.
            return "insufficient_quota";
        }
        match self.status() {
            400 | 404 | 405 | 409 | 413 | 415 | 422 => "invalid_request_error",
            401 => "authentication_error",
            403 => "permission_error",
            429 => "rate_limit_error",
            _ => "api_error",
        }
    }
}

/// An error on its way to the client: a kind, a message and the offending parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct GatewayError {
    /// The stable classification.
    pub kind: ErrorKind,
    /// Human-readable explanation; never contains a secret or prompt text.
    pub message: String,
    /// The request field at fault, e.g. `messages[2].role`.
    pub param: Option<String>,
    /// Replaces the kind's code, for upstream errors that carry their own.
    pub code_override: Option<String>,
    /// When a retry can succeed, in milliseconds (`retry-after` on a 429).
    pub retry_after_ms: Option<u64>,
}

impl GatewayError {
    /// An error of `kind` with `message` and no parameter.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        GatewayError {
            kind,
            message: message.into(),
            param: None,
            code_override: None,
            retry_after_ms: None,
        }
    }

    /// A 400 naming the field at fault.
    pub fn invalid(param: impl Into<String>, message: impl Into<String>) -> Self {
        GatewayError::new(ErrorKind::InvalidRequest, message).with_param(param)
    }

    /// Names the request field at fault.
    pub fn with_param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }

    /// Says when a retry can succeed.
    pub fn with_retry_after_ms(mut self, retry_after_ms: u64) -> Self {
        self.retry_after_ms = Some(retry_after_ms);
        self
    }

    /// The HTTP status of the response.
    pub fn status(&self) -> u16 {
        self.kind.status()
    }

    /// The `code` sent to the client.
    pub fn code(&self) -> &str {
        self.code_override.as_deref().unwrap_or(self.kind.code())
    }

    /// The OpenAI error object: `{"error":{"message","type","param","code"}}`.
    pub fn to_json(&self) -> String {
        #[derive(Serialize)]
        struct Body<'a> {
            error: Inner<'a>,
        }
        #[derive(Serialize)]
        struct Inner<'a> {
            message: &'a str,
            #[serde(rename = "type")]
            error_type: &'a str,
            param: Option<&'a str>,
            code: &'a str,
        }
        let body = Body {
            error: Inner {
                message: &self.message,
                error_type: self.kind.error_type(),
                param: self.param.as_deref(),
                code: self.code(),
            },
        };
        // Serializing plain strings into a String cannot fail.
        serde_json::to_string(&body).unwrap_or_default()
    }
}

impl std::fmt::Display for GatewayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code(), self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_the_status_the_contract_names() {
        let table = [
            (ErrorKind::InvalidJson, 400, "invalid_json"),
            (ErrorKind::InvalidRequest, 400, "invalid_request"),
            (ErrorKind::UnknownParameter, 400, "unknown_parameter"),
            (
                ErrorKind::UnsupportedMediaType,
                415,
                "unsupported_media_type",
            ),
            (ErrorKind::PayloadTooLarge, 413, "payload_too_large"),
            (ErrorKind::ModelNotFound, 404, "model_not_found"),
            (ErrorKind::NotFound, 404, "not_found"),
            (ErrorKind::MethodNotAllowed, 405, "method_not_allowed"),
            (ErrorKind::OriginNotAllowed, 403, "origin_not_allowed"),
            (ErrorKind::InvalidApiKey, 401, "invalid_api_key"),
            (ErrorKind::InvalidToken, 401, "invalid_token"),
            (ErrorKind::TokenExpired, 401, "token_expired"),
            (ErrorKind::ModelNotAllowed, 403, "model_not_allowed"),
            (ErrorKind::AdminDisabled, 403, "admin_disabled"),
            (ErrorKind::StoreUnavailable, 503, "store_unavailable"),
            (ErrorKind::ConfigInvalid, 503, "config_invalid"),
            (
                ErrorKind::ProviderNotConfigured,
                503,
                "provider_not_configured",
            ),
            (
                ErrorKind::UpstreamRejected { status: 422 },
                422,
                "upstream_rejected",
            ),
            (ErrorKind::UpstreamError, 502, "upstream_error"),
            (ErrorKind::UpstreamTimeout, 504, "upstream_timeout"),
            (ErrorKind::AllProvidersFailed, 503, "all_providers_failed"),
            (
                ErrorKind::SystemMessageNotAllowed,
                400,
                "system_message_not_allowed",
            ),
            (
                ErrorKind::PromptInjectionDetected,
                400,
                "prompt_injection_detected",
            ),
            (ErrorKind::JobNotFound, 404, "job_not_found"),
            (ErrorKind::JobNotCancellable, 409, "job_not_cancellable"),
            (
                ErrorKind::IdempotencyKeyReused,
                422,
                "idempotency_key_reused",
            ),
            (ErrorKind::InvalidCallbackUrl, 400, "invalid_callback_url"),
            (ErrorKind::WebhooksDisabled, 403, "webhooks_disabled"),
            (ErrorKind::JobsUnavailable, 503, "jobs_unavailable"),
            (ErrorKind::ResponseNotFound, 404, "response_not_found"),
            (
                ErrorKind::ResponsesUnavailable,
                503,
                "responses_unavailable",
            ),
            (ErrorKind::RequestNotFound, 404, "request_not_found"),
            (ErrorKind::FeedbackDisabled, 403, "feedback_disabled"),
            (ErrorKind::FeedbackUnavailable, 503, "feedback_unavailable"),
            (ErrorKind::Internal, 500, "internal_error"),
        ];
        for (kind, status, code) in table {
            assert_eq!(kind.status(), status, "{kind:?}");
            assert_eq!(kind.code(), code, "{kind:?}");
        }
    }

    #[test]
    fn error_types_follow_openai_classes() {
        assert_eq!(
            ErrorKind::InvalidRequest.error_type(),
            "invalid_request_error"
        );
        assert_eq!(
            ErrorKind::UpstreamRejected { status: 401 }.error_type(),
            "authentication_error"
        );
        assert_eq!(
            ErrorKind::UpstreamRejected { status: 403 }.error_type(),
            "permission_error"
        );
        assert_eq!(ErrorKind::UpstreamError.error_type(), "api_error");
    }

    #[test]
    fn json_has_the_openai_shape() {
        let err = GatewayError::invalid("messages[1].role", "unknown role \"robot\"");
        let value: serde_json::Value = serde_json::from_str(&err.to_json()).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"error": {
                "message": "unknown role \"robot\"",
                "type": "invalid_request_error",
                "param": "messages[1].role",
                "code": "invalid_request",
            }})
        );
    }

    #[test]
    fn param_is_null_when_absent_and_code_can_be_overridden() {
        let mut err = GatewayError::new(ErrorKind::UpstreamRejected { status: 400 }, "bad");
        err.code_override = Some("context_length_exceeded".into());
        let value: serde_json::Value = serde_json::from_str(&err.to_json()).unwrap();
        assert_eq!(value["error"]["param"], serde_json::Value::Null);
        assert_eq!(value["error"]["code"], "context_length_exceeded");
    }
}
