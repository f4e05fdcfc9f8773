//! The Responses API's state: a `POST /v1/responses` continues the conversation of the
//! stored response its `previous_response_id` names and, with `store`, keeps its own
//! answer; `GET` and `DELETE /v1/responses/{id}` serve what was kept. Everything lives in
//! the caller's own [`ResponseStoreStub`], so no one else's id resolves.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};
use worker::Env;

use super::background::Background;
use super::exchange::{Caller, Reply};
use super::respond;
use super::response_store::ResponseStoreStub;
use crate::api::responses::{self, ResponsesRequest, StoredResponse, Translated};
use crate::config::Config;
use crate::error::{ErrorKind, GatewayError};
use crate::pipeline::deliver::Keep;

/// A Responses request body read: the chat request it means (after the stored
/// conversation it continues), what its answer repeats, and what keeps the answer when
/// the request asks for `store`.
pub async fn read(
    body: &[u8],
    env: &Env,
    config: &Config,
    caller: &Caller,
    background: &Background,
) -> Result<(Translated, Option<Keep>), GatewayError> {
    let mut request = ResponsesRequest::parse(body)?;
    let store = || ResponseStoreStub::open(env, &caller.principal.id);
    let history = match request.previous_response_id() {
        Some(id) => store()?.get(id).await?.conversation,
        None => Vec::new(),
    };
    let references = request.item_references();
    if !references.is_empty() {
        let items = referenced_items(&store()?, &references).await?;
        request.resolve_references(|id| items.get(id).cloned())?;
    }
    let translated = request.translate(history)?;
    let keep = match request.store() {
        true => Some(keeper(store()?, &translated, config, background)),
        false => None,
    };
    Ok((translated, keep))
}

/// The output items `ids` name, from the stored responses that wrote them (each read
/// once); ids of responses that are not there are simply missing.
async fn referenced_items(
    store: &ResponseStoreStub,
    ids: &[String],
) -> Result<BTreeMap<String, Value>, GatewayError> {
    let mut responses: BTreeSet<String> = ids
        .iter()
        .filter_map(|id| responses::response_of_item(id))
        .collect();
    let mut items = BTreeMap::new();
    while let Some(id) = responses.pop_first() {
        let record = match store.get(&id).await {
            Ok(record) => record,
            Err(error) if error.kind == ErrorKind::ResponseNotFound => continue,
            Err(error) => return Err(error),
        };
        for item in record.response["output"].as_array().into_iter().flatten() {
            if let Some(item_id) = item["id"]
                .as_str()
                .filter(|item_id| ids.iter().any(|id| id == item_id))
            {
                items.insert(item_id.to_owned(), item.clone());
            }
        }
    }
    Ok(items)
}

/// Keeps a whole answer in `store`, in the background: the `response` object as the
/// client got it, and the conversation it ends.
fn keeper(
    store: ResponseStoreStub,
    translated: &Translated,
    config: &Config,
    background: &Background,
) -> Keep {
    let echo = translated.echo.clone();
    let conversation = translated.conversation.clone();
    let ttl_s = config.response_ttl_s;
    let background = background.clone();
    Box::new(move |completion, usage| {
        let response = responses::response(completion, usage, &echo);
        let record = StoredResponse::new(response, conversation, completion);
        let id = completion.id.clone();
        // A failed write loses only the continuation: a later `previous_response_id`
        // naming it gets a 404 and the client can send the whole conversation.
        background.run(async move {
            let _ = store.put(&id, record, ttl_s).await;
        });
    })
}

/// `GET /v1/responses/{id}`: the caller's stored response.
pub async fn get(env: &Env, caller: &Caller, id: &str) -> Result<Reply, GatewayError> {
    let store = ResponseStoreStub::open(env, &caller.principal.id)?;
    let record = store.get(id).await?;
    Ok(Reply::Now(respond::json(200, record.response.to_string())))
}

/// `DELETE /v1/responses/{id}`: forgets the caller's stored response.
pub async fn delete(env: &Env, caller: &Caller, id: &str) -> Result<Reply, GatewayError> {
    let store = ResponseStoreStub::open(env, &caller.principal.id)?;
    store.delete(id).await?;
    let body = json!({"id": id, "object": "response", "deleted": true});
    Ok(Reply::Now(respond::json(200, body.to_string())))
}
