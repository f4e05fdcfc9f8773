//! Maps method and path to a route: the first stage of the request path.

use crate::api::Surface;
use crate::error::{ErrorKind, GatewayError};

/// An endpoint of the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `POST /v1/chat/completions`.
    ChatCompletions,
    /// `POST /v1/messages`: the Anthropic Messages API.
    Messages,
    /// `POST /v1/messages/count_tokens`: a Messages request's prompt size.
    CountTokens,
    /// `POST /v1/responses`: the OpenAI Responses API.
    Responses,
    /// `POST /v1/embeddings`.
    Embeddings,
    /// `POST /v1/feedback`: a user's rating of one of the caller's answers.
    Feedback,
    /// `GET /v1/responses/{id}`: a stored response.
    GetResponse,
    /// `DELETE /v1/responses/{id}`: forget a stored response.
    DeleteResponse,
    /// `GET /v1/models`.
    Models,
    /// `GET /v1/usage`: the caller's limits, what is left of them and its spend.
    Usage,
    /// `POST /v1/jobs`: submit a chat completion to be answered asynchronously.
    CreateJob,
    /// `GET /v1/jobs/{id}`: a job's status and result.
    GetJob,
    /// `DELETE /v1/jobs/{id}`: cancel a queued job.
    CancelJob,
    /// `GET /v1/webhooks/signing_key`: the key the caller's webhooks are signed with.
    WebhookSigningKey,
    /// `GET /healthz`: the isolate is alive.
    Health,
    /// `GET /readyz`: the configuration is valid.
    Ready,
    /// The admin API (admin token only, never user keys).
    Admin(AdminOp),
}

/// An operation of the admin API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminOp {
    /// `GET /admin/keys`.
    ListKeys,
    /// `POST /admin/keys`.
    CreateKey,
    /// `GET /admin/keys/{id}`.
    GetKey,
    /// `PATCH /admin/keys/{id}`.
    UpdateKey,
    /// `DELETE /admin/keys/{id}`: revoke.
    RevokeKey,
    /// `GET /admin/limits/{id}`: a principal's limits, standing and spend.
    GetLimits,
    /// `DELETE /admin/limits/{id}`: reset a principal's buckets, leases and spend.
    ResetLimits,
    /// `DELETE /admin/cache/{id}`: drop a cache namespace's answers (or one, `?key=`).
    PurgeCache,
    /// `GET /admin/usage?principal=` or `?team=`: usage and spend today and this month.
    Usage,
    /// `GET /metrics`: every metric, in the Prometheus text format.
    Metrics,
}

impl Route {
    /// The route's name in logs.
    pub fn name(self) -> &'static str {
        match self {
            Route::ChatCompletions => "chat_completions",
            Route::Messages => "messages",
            Route::CountTokens => "count_tokens",
            Route::Responses => "responses",
            Route::Embeddings => "embeddings",
            Route::Feedback => "feedback",
            Route::GetResponse => "get_response",
            Route::DeleteResponse => "delete_response",
            Route::Models => "models",
            Route::Usage => "usage",
            Route::CreateJob => "create_job",
            Route::GetJob => "get_job",
            Route::CancelJob => "cancel_job",
            Route::WebhookSigningKey => "webhook_signing_key",
            Route::Health => "healthz",
            Route::Ready => "readyz",
            Route::Admin(AdminOp::ListKeys) => "admin_list_keys",
            Route::Admin(AdminOp::CreateKey) => "admin_create_key",
            Route::Admin(AdminOp::GetKey) => "admin_get_key",
            Route::Admin(AdminOp::UpdateKey) => "admin_update_key",
            Route::Admin(AdminOp::RevokeKey) => "admin_revoke_key",
            Route::Admin(AdminOp::GetLimits) => "admin_get_limits",
            Route::Admin(AdminOp::ResetLimits) => "admin_reset_limits",
            Route::Admin(AdminOp::PurgeCache) => "admin_purge_cache",
            Route::Admin(AdminOp::Usage) => "admin_usage",
            Route::Admin(AdminOp::Metrics) => "metrics",
        }
    }
}

/// `(path pattern, method, route)`; `{id}` matches one path segment. `HEAD` is served
/// wherever `GET` is.
const ROUTES: &[(&str, &str, Route)] = &[
    ("/v1/chat/completions", "POST", Route::ChatCompletions),
    ("/v1/messages", "POST", Route::Messages),
    ("/v1/messages/count_tokens", "POST", Route::CountTokens),
    ("/v1/responses", "POST", Route::Responses),
    ("/v1/embeddings", "POST", Route::Embeddings),
    ("/v1/feedback", "POST", Route::Feedback),
    ("/v1/responses/{id}", "GET", Route::GetResponse),
    ("/v1/responses/{id}", "DELETE", Route::DeleteResponse),
    ("/v1/models", "GET", Route::Models),
    ("/v1/usage", "GET", Route::Usage),
    ("/v1/jobs", "POST", Route::CreateJob),
    ("/v1/jobs/{id}", "GET", Route::GetJob),
    ("/v1/jobs/{id}", "DELETE", Route::CancelJob),
    ("/v1/webhooks/signing_key", "GET", Route::WebhookSigningKey),
    ("/healthz", "GET", Route::Health),
    ("/readyz", "GET", Route::Ready),
    ("/admin/keys", "GET", Route::Admin(AdminOp::ListKeys)),
    ("/admin/keys", "POST", Route::Admin(AdminOp::CreateKey)),
    ("/admin/keys/{id}", "GET", Route::Admin(AdminOp::GetKey)),
    (
        "/admin/keys/{id}",
        "PATCH",
        Route::Admin(AdminOp::UpdateKey),
    ),
    (
        "/admin/keys/{id}",
        "DELETE",
        Route::Admin(AdminOp::RevokeKey),
    ),
    (
        "/admin/limits/{id}",
        "GET",
        Route::Admin(AdminOp::GetLimits),
    ),
    (
        "/admin/limits/{id}",
        "DELETE",
        Route::Admin(AdminOp::ResetLimits),
    ),
    (
        "/admin/cache/{id}",
        "DELETE",
        Route::Admin(AdminOp::PurgeCache),
    ),
    ("/admin/usage", "GET", Route::Admin(AdminOp::Usage)),
    ("/metrics", "GET", Route::Admin(AdminOp::Metrics)),
];

/// A matched route and its `{id}` segment, if the pattern has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Matched<'a> {
    /// The endpoint.
    pub route: Route,
    /// The `{id}` path segment.
    pub id: Option<&'a str>,
}

/// Finds the route for `method` and `path`: 404 for unknown paths, 405 (naming the allowed
/// methods) for a known path with the wrong method.
pub fn route<'a>(method: &str, path: &'a str) -> Result<Matched<'a>, GatewayError> {
    let path = trim(path);
    let mut known_path = false;
    for (pattern, allowed, route) in ROUTES {
        let Some(id) = match_pattern(pattern, path) else {
            continue;
        };
        known_path = true;
        if method == *allowed || (method == "HEAD" && *allowed == "GET") {
            return Ok(Matched { route: *route, id });
        }
    }
    match allowed_methods(path) {
        Some(allowed) if known_path => Err(GatewayError::new(
            ErrorKind::MethodNotAllowed,
            format!("this endpoint only accepts {allowed}"),
        )),
        _ => Err(not_found(path)),
    }
}

/// An absolute URL as the runtime gives it (already normalized), split into its origin
/// (`scheme://host[:port]`) and its path without query or fragment (`/` when it has none).
/// Sliced by hand: the `url` crate's parser pulls in IDNA tables (~190 KB of wasm) for
/// what is two `find`s here.
pub fn split_url(url: &str) -> (&str, &str) {
    let host_start = url.find("://").map_or(0, |at| at + 3);
    let origin_end = url[host_start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |at| host_start + at);
    let rest = &url[origin_end..];
    let path = &rest[..rest.find(['?', '#']).unwrap_or(rest.len())];
    let path = if path.is_empty() { "/" } else { path };
    (&url[..origin_end], path)
}

/// The wire format of the answers and errors for `path`: Anthropic's under
/// `/v1/messages` (unknown paths and wrong methods there included), else OpenAI's.
pub fn surface(path: &str) -> Surface {
    let path = trim(path);
    let under = |root: &str| {
        path.strip_prefix(root)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    };
    if under("/v1/messages") {
        Surface::Messages
    } else if under("/v1/responses") {
        Surface::Responses
    } else {
        Surface::ChatCompletions
    }
}

/// The 404 for a path no route serves.
pub fn not_found(path: &str) -> GatewayError {
    GatewayError::new(
        ErrorKind::NotFound,
        format!(
            "no endpoint at {}",
            path.chars().take(200).collect::<String>()
        ),
    )
}

/// The methods `path` accepts, as an `Allow` header value, or `None` for unknown paths.
pub fn allowed_methods(path: &str) -> Option<String> {
    let path = trim(path);
    let mut methods: Vec<&str> = Vec::new();
    for (pattern, method, _) in ROUTES {
        if match_pattern(pattern, path).is_some() {
            methods.push(method);
            if *method == "GET" {
                methods.push("HEAD");
            }
        }
    }
    (!methods.is_empty()).then(|| methods.join(", "))
}

fn trim(path: &str) -> &str {
    if path.len() > 1 {
        path.trim_end_matches('/')
    } else {
        path
    }
}

/// `Some(id segment or None)` when `path` matches `pattern`.
fn match_pattern<'a>(pattern: &str, path: &'a str) -> Option<Option<&'a str>> {
    match pattern.strip_suffix("{id}") {
        None => (pattern == path).then_some(None),
        Some(prefix) => {
            let id = path.strip_prefix(prefix)?;
            (!id.is_empty() && !id.contains('/')).then_some(Some(id))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route_of(method: &str, path: &str) -> Result<Route, GatewayError> {
        route(method, path).map(|matched| matched.route)
    }

    #[test]
    fn known_routes_match_with_or_without_trailing_slash() {
        assert_eq!(
            route_of("POST", "/v1/chat/completions"),
            Ok(Route::ChatCompletions)
        );
        assert_eq!(
            route_of("POST", "/v1/chat/completions/"),
            Ok(Route::ChatCompletions)
        );
        assert_eq!(route_of("GET", "/v1/models"), Ok(Route::Models));
        assert_eq!(route_of("HEAD", "/healthz"), Ok(Route::Health));
        assert_eq!(route_of("GET", "/readyz"), Ok(Route::Ready));
    }

    #[test]
    fn the_messages_paths_answer_in_anthropics_format() {
        assert_eq!(route_of("POST", "/v1/messages"), Ok(Route::Messages));
        assert_eq!(
            route_of("POST", "/v1/messages/count_tokens"),
            Ok(Route::CountTokens)
        );
        for path in ["/v1/messages", "/v1/messages/", "/v1/messages/batches"] {
            assert_eq!(surface(path), Surface::Messages, "{path}");
        }
        for path in ["/v1/chat/completions", "/v1/messagesx", "/healthz"] {
            assert_eq!(surface(path), Surface::ChatCompletions, "{path}");
        }
    }

    #[test]
    fn the_responses_paths_carry_the_response_id() {
        assert_eq!(route_of("POST", "/v1/responses"), Ok(Route::Responses));
        let matched = route("GET", "/v1/responses/resp_1").unwrap();
        assert_eq!(
            (matched.route, matched.id),
            (Route::GetResponse, Some("resp_1"))
        );
        let matched = route("DELETE", "/v1/responses/resp_1").unwrap();
        assert_eq!(matched.route, Route::DeleteResponse);
        for path in ["/v1/responses", "/v1/responses/resp_1"] {
            assert_eq!(surface(path), Surface::Responses, "{path}");
        }
        assert_eq!(surface("/v1/responsesx"), Surface::ChatCompletions);
    }

    #[test]
    fn admin_routes_carry_the_key_id() {
        assert_eq!(
            route_of("POST", "/admin/keys"),
            Ok(Route::Admin(AdminOp::CreateKey))
        );
        assert_eq!(
            route_of("GET", "/admin/keys"),
            Ok(Route::Admin(AdminOp::ListKeys))
        );
        let matched = route("DELETE", "/admin/keys/key_0a1b").unwrap();
        assert_eq!(
            (matched.route, matched.id),
            (Route::Admin(AdminOp::RevokeKey), Some("key_0a1b"))
        );
        assert_eq!(
            route_of("GET", "/admin/keys/a/b").unwrap_err().status(),
            404
        );
    }

    /// The document is a static asset (`public/openapi.json`): the platform serves it before
    /// the Worker is called, so it costs the wasm nothing. It describes itself too.
    const OPENAPI: &str = include_str!("../public/openapi.json");

    #[test]
    fn the_openapi_document_describes_every_route() {
        let document: serde_json::Value = serde_json::from_str(OPENAPI).unwrap();
        assert_eq!(document["openapi"], "3.1.0");
        assert!(document["paths"]["/openapi.json"]["get"].is_object());
        for (pattern, method, _) in ROUTES {
            let operation = &document["paths"][pattern][method.to_ascii_lowercase()];
            assert!(
                operation.is_object(),
                "{method} {pattern} is not in openapi.json"
            );
        }
        let operations: usize = document["paths"]
            .as_object()
            .unwrap()
            .values()
            .map(|path| {
                path.as_object()
                    .unwrap()
                    .keys()
                    .filter(|k| *k != "parameters")
                    .count()
            })
            .sum();
        assert_eq!(
            operations,
            ROUTES.len() + 1,
            "openapi.json describes a route that does not exist"
        );
    }

    #[test]
    fn urls_split_into_origin_and_path_without_query_or_fragment() {
        let cases = [
            (
                "https://gw.example/v1/chat/completions?x=1",
                "https://gw.example",
                "/v1/chat/completions",
            ),
            ("http://127.0.0.1:8787", "http://127.0.0.1:8787", "/"),
            ("http://h/?q=1", "http://h", "/"),
            ("http://h?q=/a", "http://h", "/"),
            ("http://h/a/b#f/g", "http://h", "/a/b"),
            ("http://h/a%3Fb", "http://h", "/a%3Fb"),
        ];
        for (url, origin, path) in cases {
            assert_eq!(split_url(url), (origin, path), "{url}");
        }
    }

    #[test]
    fn unknown_paths_are_404_and_wrong_methods_405() {
        assert_eq!(route_of("GET", "/v2/anything").unwrap_err().status(), 404);
        assert_eq!(route_of("GET", "/").unwrap_err().status(), 404);
        let err = route_of("GET", "/v1/chat/completions").unwrap_err();
        assert_eq!((err.status(), err.code()), (405, "method_not_allowed"));
        assert_eq!(
            allowed_methods("/v1/chat/completions").as_deref(),
            Some("POST")
        );
        assert_eq!(allowed_methods("/v1/models/").as_deref(), Some("GET, HEAD"));
        assert_eq!(
            allowed_methods("/admin/keys/k1").as_deref(),
            Some("GET, HEAD, PATCH, DELETE")
        );
        assert_eq!(route_of("DELETE", "/v1/models").unwrap_err().status(), 405);
        assert_eq!(allowed_methods("/nope"), None);
    }
}
