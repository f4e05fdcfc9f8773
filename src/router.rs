//! Maps method and path to a route: the first stage of the request path.

use crate::error::{ErrorKind, GatewayError};

/// An endpoint of the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `POST /v1/chat/completions`.
    ChatCompletions,
    /// `GET /v1/models`.
    Models,
    /// `GET /healthz`: the isolate is alive.
    Health,
    /// `GET /readyz`: the configuration is valid.
    Ready,
}

impl Route {
    /// The route's name in logs.
    pub fn name(self) -> &'static str {
        match self {
            Route::ChatCompletions => "chat_completions",
            Route::Models => "models",
            Route::Health => "healthz",
            Route::Ready => "readyz",
        }
    }
}

/// `(path, method, route)`; `HEAD` is served wherever `GET` is.
const ROUTES: &[(&str, &str, Route)] = &[
    ("/v1/chat/completions", "POST", Route::ChatCompletions),
    ("/v1/models", "GET", Route::Models),
    ("/healthz", "GET", Route::Health),
    ("/readyz", "GET", Route::Ready),
];

/// Finds the route for `method` and `path`: 404 for unknown paths, 405 (naming the allowed
/// method) for a known path with the wrong method.
pub fn route(method: &str, path: &str) -> Result<Route, GatewayError> {
    let path = if path.len() > 1 {
        path.trim_end_matches('/')
    } else {
        path
    };
    let Some(&(_, allowed, route)) = ROUTES.iter().find(|(p, _, _)| *p == path) else {
        return Err(GatewayError::new(
            ErrorKind::NotFound,
            format!(
                "no endpoint at {}",
                path.chars().take(200).collect::<String>()
            ),
        ));
    };
    if method == allowed || (method == "HEAD" && allowed == "GET") {
        Ok(route)
    } else {
        Err(method_not_allowed(allowed))
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

/// The 405 for a path that only answers `allowed`.
pub fn method_not_allowed(allowed: &str) -> GatewayError {
    GatewayError::new(
        ErrorKind::MethodNotAllowed,
        format!("this endpoint only accepts {allowed}"),
    )
}

/// The `Allow` header value for a 405 on `path`.
pub fn allowed_methods(path: &str) -> Option<&'static str> {
    let path = if path.len() > 1 {
        path.trim_end_matches('/')
    } else {
        path
    };
    ROUTES
        .iter()
        .find(|(p, _, _)| *p == path)
        .map(|(_, m, _)| match *m {
            "GET" => "GET, HEAD",
            other => other,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_routes_match_with_or_without_trailing_slash() {
        assert_eq!(
            route("POST", "/v1/chat/completions"),
            Ok(Route::ChatCompletions)
        );
        assert_eq!(
            route("POST", "/v1/chat/completions/"),
            Ok(Route::ChatCompletions)
        );
        assert_eq!(route("GET", "/v1/models"), Ok(Route::Models));
        assert_eq!(route("HEAD", "/healthz"), Ok(Route::Health));
        assert_eq!(route("GET", "/readyz"), Ok(Route::Ready));
    }

    #[test]
    fn unknown_paths_are_404_and_wrong_methods_405() {
        assert_eq!(route("GET", "/v2/anything").unwrap_err().status(), 404);
        assert_eq!(route("GET", "/").unwrap_err().status(), 404);
        let err = route("GET", "/v1/chat/completions").unwrap_err();
        assert_eq!((err.status(), err.code()), (405, "method_not_allowed"));
        assert_eq!(allowed_methods("/v1/chat/completions"), Some("POST"));
        assert_eq!(allowed_methods("/v1/models/"), Some("GET, HEAD"));
        assert_eq!(route("DELETE", "/v1/models").unwrap_err().status(), 405);
    }
}
