//! The response cache's two levels: the isolate's LRU, then KV (`GATEWAY_KV`, keys
//! `cache:<namespace>:<sha256 hex>`, with KV's own expiry as well as the entry's).
//!
//! KV takes about one write per second per key: a request stores its answer only if no
//! other request of this isolate stored the same key while it was running, so concurrent
//! identical misses write once (isolates do not coordinate; a second write from another
//! isolate is refused by KV and ignored).

use std::cell::RefCell;
use std::rc::Rc;

use worker::Env;

use super::background::Background;
use super::clock::now_ms;
use super::crypto::sha256_hex;
use super::keys::KV_BINDING;
use super::kv::Namespace;
use crate::api::chat::{ChatCompletion, ChatRequest};
use crate::auth::Principal;
use crate::cache::entry::{storable, Entry};
use crate::cache::key::{material, namespace};
use crate::cache::lru::Lru;
use crate::cache::{decide, CacheConfig, CacheDecision};
use crate::error::GatewayError;
use crate::pipeline::ports::CacheWrite;

/// KV keeps nothing for less than this (its minimum `expirationTtl`).
const KV_MIN_TTL_S: u32 = 60;

thread_local! {
    /// The isolate's level: entries by KV key. Sized by the first config that uses it.
    static L1: RefCell<Option<Lru<Rc<Entry>>>> = const { RefCell::new(None) };
}

fn with_l1<T>(config: &CacheConfig, work: impl FnOnce(&mut Lru<Rc<Entry>>) -> T) -> T {
    L1.with(|l1| {
        work(
            l1.borrow_mut()
                .get_or_insert_with(|| Lru::new(config.l1_bytes)),
        )
    })
}

/// What the cache does for one request, once its key is known.
pub enum CacheStep {
    /// Left alone; the reason is logged.
    Bypass(&'static str),
    /// Looked up (unless `no-cache`) and, on a miss, stored by the [`CacheWriter`].
    Use {
        /// Stores the answer.
        writer: CacheWriter,
        /// Whether to look.
        read: bool,
        /// The oldest entry the request accepts.
        max_age_s: Option<u32>,
    },
}

/// Stores one request's answer under its key.
#[derive(Clone)]
pub struct CacheWriter {
    env: Env,
    background: Background,
    config: CacheConfig,
    kv_key: String,
    /// The key's SHA-256, hex: what `x-cache-key` shows and the admin purges by.
    pub hash: String,
    ttl_s: u32,
    started_ms: u64,
}

/// Decides for `request` (routed to `route`, `provider/model` each) and computes its key.
pub async fn prepare(
    env: &Env,
    background: &Background,
    config: &CacheConfig,
    request: &ChatRequest,
    route: &[String],
    principal: &Principal,
    headers: (Option<String>, Option<String>),
) -> Result<CacheStep, GatewayError> {
    let (cache_control, opt_in) = headers;
    let (read, max_age_s, ttl_s) =
        match decide(config, request, cache_control.as_deref(), opt_in.as_deref()) {
            CacheDecision::Bypass(reason) => return Ok(CacheStep::Bypass(reason)),
            CacheDecision::Use {
                read,
                max_age_s,
                ttl_s,
            } => (read, max_age_s, ttl_s),
        };
    let hash = sha256_hex(material(route, request).as_bytes()).await?;
    let space = namespace(config.scope, &principal.id, principal.team.as_deref());
    let writer = CacheWriter {
        env: env.clone(),
        background: background.clone(),
        config: config.clone(),
        kv_key: format!("cache:{space}:{hash}"),
        hash,
        ttl_s,
        started_ms: now_ms(),
    };
    Ok(CacheStep::Use {
        writer,
        read,
        max_age_s,
    })
}

impl CacheWriter {
    /// The stored answer, from the isolate or from KV (then kept in the isolate too), if
    /// one is servable; a KV failure is a miss.
    pub async fn lookup(&self, max_age_s: Option<u32>) -> Option<Rc<Entry>> {
        let now = now_ms();
        if let Some(entry) = with_l1(&self.config, |l1| l1.get(&self.kv_key, now)) {
            if entry.is_servable(now, max_age_s) {
                return Some(entry);
            }
        }
        let kv = Namespace::bound(&self.env, KV_BINDING)?;
        let text = kv.get_text(&self.kv_key).await.ok()??;
        let entry = Rc::new(Entry::from_json(&text)?);
        let now = now_ms();
        if now >= entry.expires_ms {
            return None;
        }
        self.keep(&entry, text.len(), now);
        entry.is_servable(now, max_age_s).then_some(entry)
    }

    /// Keeps `entry` in the isolate, no longer than the L1 lifetime.
    fn keep(&self, entry: &Rc<Entry>, bytes: usize, now: u64) {
        let until = entry
            .expires_ms
            .min(now + u64::from(self.config.l1_ttl_s) * 1_000);
        with_l1(&self.config, |l1| {
            l1.insert(&self.kv_key, Rc::clone(entry), bytes, until)
        });
    }
}

impl CacheWrite for CacheWriter {
    /// Stores `completion` (if it is storable and no other request of this isolate stored
    /// this key since this one began) in the isolate now and in KV in the background.
    /// Returns whether it did.
    fn store(&self, completion: &ChatCompletion) -> bool {
        if self.ttl_s == 0 {
            return false;
        }
        let now = now_ms();
        let stored_meanwhile = with_l1(&self.config, |l1| l1.get(&self.kv_key, now))
            .is_some_and(|entry| entry.stored_ms >= self.started_ms);
        if stored_meanwhile {
            return false;
        }
        let entry = Entry {
            stored_ms: now,
            expires_ms: now + u64::from(self.ttl_s) * 1_000,
            completion: completion.clone(),
        };
        let text = entry.to_json();
        if !storable(&entry.completion, text.len(), &self.config) {
            return false;
        }
        self.keep(&Rc::new(entry), text.len(), now);
        put_in_background(&self.env, &self.background, &self.kv_key, text, self.ttl_s);
        true
    }
}

/// Writes `text` to KV as `key`, kept `ttl_s` (at least KV's minute), after the response.
/// A failed write (KV's per-key rate, an outage) only costs a later miss.
pub fn put_in_background(env: &Env, background: &Background, key: &str, text: String, ttl_s: u32) {
    let Some(kv) = Namespace::bound(env, KV_BINDING) else {
        return;
    };
    let key = key.to_owned();
    let ttl_s = ttl_s.max(KV_MIN_TTL_S);
    background.run(async move {
        let _ = kv.put(&key, &text, Some(ttl_s)).await;
    });
}

/// Deletes the entries of `space` (one, when `hash` is given) from KV and from this
/// isolate; other isolates drop theirs within `CACHE_L1_TTL_SECONDS`. Returns how many KV
/// entries were deleted.
pub async fn purge(
    env: &Env,
    config: &CacheConfig,
    space: &str,
    hash: Option<&str>,
) -> Result<u64, GatewayError> {
    let unavailable = || {
        GatewayError::new(
            crate::error::ErrorKind::StoreUnavailable,
            "the cache store (KV) could not be reached",
        )
    };
    let kv = Namespace::bound(env, KV_BINDING).ok_or_else(unavailable)?;
    let prefix = format!("cache:{space}:");
    if let Some(hash) = hash {
        let key = format!("{prefix}{hash}");
        with_l1(config, |l1| l1.remove(&key));
        kv.delete(&key).await.map_err(|_| unavailable())?;
        return Ok(1);
    }
    with_l1(config, |l1| l1.remove_prefix(&prefix));
    let mut deleted = 0;
    let mut cursor = None;
    loop {
        let page = kv
            .list(&prefix, cursor.as_deref(), None)
            .await
            .map_err(|_| unavailable())?;
        for name in &page.names {
            kv.delete(name).await.map_err(|_| unavailable())?;
            deleted += 1;
        }
        match page.cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(deleted),
        }
    }
}
