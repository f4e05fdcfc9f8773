//! Where configuration comes from, and how each module reads its part of it: a
//! [`ConfigSource`] (Worker vars and secrets, or a map in tests) read through a [`Reader`]
//! that collects every problem. Modules depend on this file only; the assembly in
//! [`super`] depends on the modules.

use serde_json::Value;

/// Where configuration values come from: Worker vars and secrets on the platform, a map in
/// tests.
pub trait ConfigSource {
    /// A plain var, as text (JSON-valued vars arrive serialized).
    fn var(&self, name: &str) -> Option<String>;
    /// A secret set with `wrangler secret put` (or `.dev.vars` locally).
    fn secret(&self, name: &str) -> Option<String>;
}

/// A secret value. Only [`Secret::expose`] reveals it; `Debug` prints a placeholder.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value, for the one place that must send it (an upstream `Authorization` header).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// A secret, or `None` when unset or empty (as in a copied `.dev.vars.example`).
fn secret(source: &dyn ConfigSource, name: &str) -> Option<Secret> {
    source
        .secret(name)
        .filter(|value| !value.is_empty())
        .map(Secret::new)
}

/// Reads vars and secrets for each module's settings (each loads its own, next to its
/// types), collecting every problem instead of stopping at the first.
pub struct Reader<'a> {
    source: &'a dyn ConfigSource,
    errors: Vec<String>,
    warnings: Vec<String>,
}

impl<'a> Reader<'a> {
    /// A reader of `source`.
    pub fn new(source: &'a dyn ConfigSource) -> Self {
        Reader {
            source,
            errors: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// The var `name`, as set.
    pub fn var(&self, name: &str) -> Option<String> {
        self.source.var(name)
    }

    /// The var `name`, unless it is unset or blank.
    pub fn text(&self, name: &str) -> Option<String> {
        self.var(name).filter(|value| !value.trim().is_empty())
    }

    /// The secret `name`, or `None` when unset or empty (as in a copied
    /// `.dev.vars.example`).
    pub fn secret(&self, name: &str) -> Option<Secret> {
        secret(self.source, name)
    }

    /// Notes a problem that makes the configuration unusable.
    pub fn error(&mut self, problem: impl Into<String>) {
        self.errors.push(problem.into());
    }

    /// Whether a problem that makes the configuration unusable was noted.
    pub fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }

    /// The problems noted: those that make the configuration unusable, and the warnings.
    pub fn into_problems(self) -> (Vec<String>, Vec<String>) {
        (self.errors, self.warnings)
    }

    /// Notes a problem that does not stop the gateway (`/readyz` lists it).
    pub fn warn(&mut self, problem: impl Into<String>) {
        self.warnings.push(problem.into());
    }

    /// The JSON var `name` (or `default` when unset) as a `T`; when it is not valid, the
    /// problem is noted and `T::default()` returned.
    pub fn json<T: serde::de::DeserializeOwned + Default>(
        &mut self,
        name: &str,
        default: &str,
    ) -> T {
        let text = self.var(name).unwrap_or_else(|| default.to_owned());
        match serde_json::from_slice::<T>(text.as_bytes()) {
            Ok(value) => value,
            Err(err) => {
                // serde_json's message names the field and position, never the input itself.
                self.error(format!("{name} is not valid: {err}"));
                T::default()
            }
        }
    }

    /// The var `name`, one of `choices` (the first is the default).
    pub fn choice<T: Copy>(&mut self, name: &str, choices: &[(&str, T)]) -> T {
        let default = choices[0].1;
        let Some(text) = self.source.var(name) else {
            return default;
        };
        match choices.iter().find(|(label, _)| *label == text.trim()) {
            Some((_, value)) => *value,
            None => {
                let labels: Vec<&str> = choices.iter().map(|(label, _)| *label).collect();
                self.errors.push(format!(
                    "{name} must be one of {}, got {text:?}",
                    labels.join(", ")
                ));
                default
            }
        }
    }

    /// The secret `name` (see [`secret`]). One shorter than 32 `unit` is an error: it could
    /// be guessed, and nothing it protects is started with it.
    pub fn long_secret(&mut self, name: &str, unit: &str) -> Option<Secret> {
        let secret = secret(self.source, name);
        if secret
            .as_ref()
            .is_some_and(|secret| secret.expose().len() < 32)
        {
            self.errors
                .push(format!("{name} must be at least 32 {unit}"));
        }
        secret
    }

    /// The integer var `name` within `min..=max`, or `default` when unset.
    pub fn number(&mut self, name: &str, default: u32, min: u32, max: u32) -> u32 {
        let Some(text) = self.source.var(name) else {
            return default;
        };
        match text.trim().parse::<u32>() {
            Ok(value) if (min..=max).contains(&value) => value,
            _ => {
                self.errors.push(format!(
                    "{name} must be an integer from {min} to {max}, got {text:?}"
                ));
                default
            }
        }
    }
}

/// Whether `url` is plain http to this machine (`127.0.0.1`, `localhost`, `[::1]`, any
/// port): the only place where a secret may travel unencrypted.
pub fn is_loopback_http(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = match authority.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => authority,
    };
    matches!(host, "127.0.0.1" | "localhost" | "[::1]")
}

/// Reads a JSON value as configuration text: strings as they are, anything else serialized.
pub fn json_var_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}
