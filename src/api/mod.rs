//! The public wire format: OpenAI Chat Completions and the small gateway endpoints.

pub mod chat;

/// The OpenAPI 3.1 description of every route, served at `GET /openapi.json`.
pub const OPENAPI: &str = include_str!("../../openapi.json");

use serde::Serialize;

use crate::auth::Principal;
use crate::limit::limiter::Status;
use crate::limit::TierLimits;

/// The body of `GET /v1/usage` (and `GET /admin/limits/{principal}`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UsageReport<'a> {
    /// Always `usage`.
    pub object: &'static str,
    /// The principal.
    pub principal: &'a str,
    /// Its tier, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tier: Option<&'a str>,
    /// The limits that apply (for the admin view: the ones of its last request).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limits: Option<&'a TierLimits>,
    /// Where it stands: remaining requests and tokens, concurrency, spend today and this
    /// month.
    #[serde(flatten)]
    pub status: &'a Status,
}

impl<'a> UsageReport<'a> {
    /// The report for `principal` under `limits`.
    pub fn new(principal: &'a Principal, limits: &'a TierLimits, status: &'a Status) -> Self {
        UsageReport {
            object: "usage",
            principal: &principal.id,
            tier: Some(&principal.tier),
            limits: Some(limits),
            status,
        }
    }
}

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
