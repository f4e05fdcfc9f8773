//! The public wire format: OpenAI Chat Completions and the small gateway endpoints.

pub mod chat;

/// The OpenAPI 3.1 description of every route, served at `GET /openapi.json`.
pub const OPENAPI: &str = include_str!("../../openapi.json");

use serde::Serialize;

/// One entry of `GET /v1/models`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelEntry<'a> {
    /// The alias clients put in `model`.
    pub id: &'a str,
    /// Always `model`.
    pub object: &'static str,
    /// Unix seconds; aliases have no creation date, so 0.
    pub created: u64,
    /// The provider that serves the alias.
    pub owned_by: &'a str,
}

/// The body of `GET /v1/models`: `{"object":"list","data":[...]}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelList<'a> {
    /// Always `list`.
    pub object: &'static str,
    /// The models, sorted by id.
    pub data: Vec<ModelEntry<'a>>,
}

impl<'a> ModelList<'a> {
    /// A list of `(alias, provider)` pairs in the order given.
    pub fn new(models: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        ModelList {
            object: "list",
            data: models
                .into_iter()
                .map(|(id, owned_by)| ModelEntry {
                    id,
                    object: "model",
                    created: 0,
                    owned_by,
                })
                .collect(),
        }
    }
}
