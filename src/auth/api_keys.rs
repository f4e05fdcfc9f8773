//! Gateway API keys: `sk-gw-` plus 192 random bits, shown once at creation. Only the
//! SHA-256 of a key is stored (in KV, under [`hash_kv_key`]), beside its record; admin
//! operations address a key by its public id (under [`id_kv_key`]).
//!
//! Lookups are cached in the isolate for [`KeyCache`]'s TTL, misses included, so a
//! revoked key stops working within that TTL plus KV's own propagation (up to ~60 s
//! across locations).
//!
//! Revocation is final: it also writes a tombstone under [`revoked_kv_key`], which no
//! other write touches and every lookup reads, so a change made from a stale copy of the
//! record (KV is eventually consistent) cannot bring the key back; changing a revoked key
//! is refused.

use std::collections::{HashMap, VecDeque};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{constant_time_eq, unauthenticated, Principal, PrincipalId};
use crate::error::{ErrorKind, GatewayError};
use crate::limit::TierLimits;

/// Every gateway key starts with this.
pub const KEY_PREFIX: &str = "sk-gw-";
/// Random bytes in a key (192 bits).
pub const KEY_RANDOM_BYTES: usize = 24;
/// Random bytes in a key id.
pub const ID_RANDOM_BYTES: usize = 8;

/// What is stored about a key; never the key itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyRecord {
    /// Public id (`key_<hex>`), for the admin API and logs.
    pub id: String,
    /// Hex SHA-256 of the key.
    pub hash: String,
    /// The principal the key acts for.
    pub principal: String,
    /// Rate-limit tier.
    pub tier: String,
    /// Team, if any.
    #[serde(default)]
    pub team: Option<String>,
    /// Allowed model aliases; `None` means all.
    #[serde(default)]
    pub models: Option<Vec<String>>,
    /// Limits that replace the tier's for this key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<TierLimits>,
    /// Unix seconds.
    pub created_at: u64,
    /// Unix seconds after which the key is refused.
    #[serde(default)]
    pub expires_at: Option<u64>,
    /// Unix seconds when it was revoked.
    #[serde(default)]
    pub revoked_at: Option<u64>,
}

impl KeyRecord {
    /// The principal for a request that presented a key hashing to `presented_hash` at
    /// `now_s`; one 401 for every failure, so responses never tell them apart.
    pub fn authenticate(
        &self,
        presented_hash: &str,
        now_s: u64,
    ) -> Result<Principal, GatewayError> {
        let valid = constant_time_eq(self.hash.as_bytes(), presented_hash.as_bytes())
            && self.revoked_at.is_none()
            && self.expires_at.is_none_or(|expiry| now_s < expiry);
        if !valid {
            return Err(unauthenticated());
        }
        Ok(Principal {
            id: PrincipalId::key(&self.principal),
            tier: self.tier.clone(),
            team: self.team.clone(),
            models: self.models.clone(),
            limits: self.limits.clone(),
            via: "api_key",
            key_id: Some(self.id.clone()),
        })
    }

    /// The record with a revocation found in its tombstone (`revoked_at`, Unix seconds):
    /// the earliest revocation wins.
    pub fn with_tombstone(mut self, revoked_at: Option<u64>) -> KeyRecord {
        self.revoked_at = match (self.revoked_at, revoked_at) {
            (Some(own), Some(tombstone)) => Some(own.min(tombstone)),
            (own, tombstone) => own.or(tombstone),
        };
        self
    }

    /// The record as the admin API shows it: everything but the hash.
    pub fn public_view(&self) -> Value {
        let mut view = serde_json::to_value(self).unwrap_or_default();
        if let Some(fields) = view.as_object_mut() {
            fields.remove("hash");
            fields.insert("object".into(), "api_key".into());
        }
        view
    }
}

/// Whether `token` has the shape of a gateway key (before any lookup).
pub fn looks_like_key(token: &str) -> bool {
    token.len() == KEY_PREFIX.len() + 2 * KEY_RANDOM_BYTES
        && token.starts_with(KEY_PREFIX)
        && token[KEY_PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_hexdigit())
}

/// A new key from random bytes.
pub fn format_key(random: &[u8; KEY_RANDOM_BYTES]) -> String {
    format!("{KEY_PREFIX}{}", hex(random))
}

/// A new key id from random bytes.
pub fn format_id(random: &[u8; ID_RANDOM_BYTES]) -> String {
    format!("key_{}", hex(random))
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The KV key under which the record of the key with `hash` is stored.
pub fn hash_kv_key(hash: &str) -> String {
    format!("apikey:hash:{hash}")
}

/// The KV key under which the record with id `id` is stored (for the admin API).
pub fn id_kv_key(id: &str) -> String {
    format!("apikey:id:{id}")
}

/// The KV key of the tombstone of the revoked key with `hash` (its value: when it was
/// revoked, Unix seconds).
pub fn revoked_kv_key(hash: &str) -> String {
    format!("apikey:revoked:{hash}")
}

/// The prefix of every [`id_kv_key`], for listing.
pub const ID_KV_PREFIX: &str = "apikey:id:";

/// `POST /admin/keys`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    /// The principal the key acts for (required).
    pub principal: String,
    /// Rate-limit tier (default `free`).
    #[serde(default)]
    pub tier: Option<String>,
    /// Team.
    #[serde(default)]
    pub team: Option<String>,
    /// Allowed model aliases (default: all).
    #[serde(default)]
    pub models: Option<Vec<String>>,
    /// Limits that replace the tier's.
    #[serde(default)]
    pub limits: Option<TierLimits>,
    /// Unix seconds after which the key is refused.
    #[serde(default)]
    pub expires_at: Option<u64>,
}

/// `PATCH /admin/keys/{id}`: only the fields present change; `null` clears an optional one.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyUpdate {
    /// New tier.
    #[serde(default)]
    pub tier: Option<String>,
    /// New team (`null` clears it).
    #[serde(default, with = "double_option")]
    pub team: Option<Option<String>>,
    /// New model list (`null` allows all).
    #[serde(default, with = "double_option")]
    pub models: Option<Option<Vec<String>>>,
    /// New limit overrides (`null` returns the key to its tier's limits).
    #[serde(default, with = "double_option")]
    pub limits: Option<Option<TierLimits>>,
    /// New expiry (`null` clears it).
    #[serde(default, with = "double_option")]
    pub expires_at: Option<Option<u64>>,
}

/// Tells an absent field (`None`) from an explicit `null` (`Some(None)`).
mod double_option {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, T, D>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
    where
        T: Deserialize<'de>,
        D: Deserializer<'de>,
    {
        Option::<T>::deserialize(deserializer).map(Some)
    }
}

/// Checks a name-like field: 1 to 128 printable characters.
fn check_name(field: &str, value: &str) -> Result<(), GatewayError> {
    if value.is_empty() || value.chars().count() > 128 || value.chars().any(char::is_control) {
        return Err(GatewayError::invalid(
            field,
            format!("{field} must be 1 to 128 printable characters"),
        ));
    }
    Ok(())
}

fn check_models(models: &Option<Vec<String>>) -> Result<(), GatewayError> {
    for model in models.iter().flatten() {
        check_name("models", model)?;
    }
    Ok(())
}

fn check_limits(limits: Option<&TierLimits>) -> Result<(), GatewayError> {
    match limits.and_then(TierLimits::problem) {
        Some(problem) => Err(GatewayError::invalid("limits", format!("limits.{problem}"))),
        None => Ok(()),
    }
}

impl NewKey {
    /// Parses and checks the admin request body.
    pub fn parse(body: &[u8]) -> Result<NewKey, GatewayError> {
        let new: NewKey = serde_json::from_slice(body)
            .map_err(|err| GatewayError::invalid("body", format!("invalid key request: {err}")))?;
        check_name("principal", &new.principal)?;
        if let Some(tier) = &new.tier {
            check_name("tier", tier)?;
        }
        if let Some(team) = &new.team {
            check_name("team", team)?;
        }
        check_models(&new.models)?;
        check_limits(new.limits.as_ref())?;
        Ok(new)
    }

    /// The record for a key with `id` and `hash`, created at `now_s`.
    pub fn into_record(self, id: String, hash: String, now_s: u64) -> KeyRecord {
        KeyRecord {
            id,
            hash,
            principal: self.principal,
            tier: self.tier.unwrap_or_else(|| "free".to_owned()),
            team: self.team,
            models: self.models,
            limits: self.limits,
            created_at: now_s,
            expires_at: self.expires_at,
            revoked_at: None,
        }
    }
}

impl KeyUpdate {
    /// Parses and checks the admin request body.
    pub fn parse(body: &[u8]) -> Result<KeyUpdate, GatewayError> {
        let update: KeyUpdate = serde_json::from_slice(body)
            .map_err(|err| GatewayError::invalid("body", format!("invalid key update: {err}")))?;
        if let Some(tier) = &update.tier {
            check_name("tier", tier)?;
        }
        if let Some(Some(team)) = &update.team {
            check_name("team", team)?;
        }
        if let Some(models) = &update.models {
            check_models(models)?;
        }
        check_limits(update.limits.as_ref().and_then(Option::as_ref))?;
        Ok(update)
    }

    /// Applies the update to `record`; 409 `key_revoked` if it was revoked.
    pub fn apply(self, record: &mut KeyRecord) -> Result<(), GatewayError> {
        if record.revoked_at.is_some() {
            return Err(GatewayError::new(
                ErrorKind::KeyRevoked,
                format!("the key {} is revoked; revocation is final", record.id),
            ));
        }
        if let Some(tier) = self.tier {
            record.tier = tier;
        }
        if let Some(team) = self.team {
            record.team = team;
        }
        if let Some(models) = self.models {
            record.models = models;
        }
        if let Some(limits) = self.limits {
            record.limits = limits;
        }
        if let Some(expires_at) = self.expires_at {
            record.expires_at = expires_at;
        }
        Ok(())
    }
}

/// An isolate-local cache of key lookups by hash, misses included, bounded in entries.
/// Every entry lives equally long, so the oldest is always the first to expire and the
/// first to go when the cache is full: an insertion-ordered queue finds it in O(1), so a
/// flood of unknown keys costs each request a constant, not a scan of the cache.
#[derive(Debug)]
pub struct KeyCache {
    entries: HashMap<String, (Option<KeyRecord>, u64)>,
    /// Hashes in the order they were stored, with when: the front is the oldest. An entry
    /// stored again or forgotten leaves a stale item here, skipped when it comes up.
    order: VecDeque<(String, u64)>,
    max_entries: usize,
    ttl_ms: u64,
}

impl KeyCache {
    /// A cache of at most `max_entries` lookups, each trusted for `ttl_ms`.
    pub fn new(max_entries: usize, ttl_ms: u64) -> Self {
        KeyCache {
            entries: HashMap::new(),
            order: VecDeque::new(),
            max_entries,
            ttl_ms,
        }
    }

    /// The cached lookup for `hash` at `now_ms`: `Some(None)` is a cached miss, `None`
    /// means ask KV.
    pub fn get(&self, hash: &str, now_ms: u64) -> Option<Option<KeyRecord>> {
        let (record, stored_at) = self.entries.get(hash)?;
        (now_ms.saturating_sub(*stored_at) < self.ttl_ms).then(|| record.clone())
    }

    /// Remembers a lookup. When full, the oldest entry goes first.
    pub fn put(&mut self, hash: String, record: Option<KeyRecord>, now_ms: u64) {
        if self.entries.len() >= self.max_entries && !self.entries.contains_key(&hash) {
            self.evict_oldest();
        }
        self.entries.insert(hash.clone(), (record, now_ms));
        self.order.push_back((hash, now_ms));
        // Stale items are dropped once they outnumber the entries: amortized O(1).
        if self.order.len() > 2 * self.max_entries.max(1) {
            let entries = &self.entries;
            self.order
                .retain(|(hash, at)| entries.get(hash).is_some_and(|(_, stored)| stored == at));
        }
    }

    /// Drops the oldest entry still cached.
    fn evict_oldest(&mut self) {
        while let Some((hash, at)) = self.order.pop_front() {
            if self
                .entries
                .get(&hash)
                .is_some_and(|(_, stored)| *stored == at)
            {
                self.entries.remove(&hash);
                return;
            }
        }
    }

    /// Forgets `hash` (after an admin change made in this isolate).
    pub fn forget(&mut self, hash: &str) {
        self.entries.remove(hash);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> KeyRecord {
        NewKey::parse(
            br#"{"principal": "user-1", "tier": "pro", "models": ["mock"], "expires_at": 2000}"#,
        )
        .unwrap()
        .into_record("key_01".into(), "ab".repeat(32), 1000)
    }

    #[test]
    fn keys_have_the_prefix_and_192_random_bits() {
        let key = format_key(&[0xab; KEY_RANDOM_BYTES]);
        assert!(key.starts_with("sk-gw-"));
        assert_eq!(key.len(), 6 + 48);
        assert!(looks_like_key(&key));
        assert!(!looks_like_key("sk-gw-short"));
        assert!(!looks_like_key(&key.replace('a', "g")));
        assert_eq!(format_id(&[1; ID_RANDOM_BYTES]), "key_0101010101010101");
    }

    #[test]
    fn a_valid_key_yields_its_principal() {
        let principal = record().authenticate(&"ab".repeat(32), 1500).unwrap();
        assert_eq!(principal.id, "key:user-1");
        assert_eq!(principal.tier, "pro");
        assert_eq!(principal.models, Some(vec!["mock".to_owned()]));
        assert_eq!(principal.via, "api_key");
    }

    #[test]
    fn wrong_expired_and_revoked_keys_get_the_same_401() {
        let mut revoked = record();
        revoked.revoked_at = Some(1200);
        let failures = [
            record().authenticate(&"cd".repeat(32), 1500).unwrap_err(),
            record().authenticate(&"ab".repeat(32), 2000).unwrap_err(),
            revoked.authenticate(&"ab".repeat(32), 1500).unwrap_err(),
        ];
        for err in &failures {
            assert_eq!((err.status(), err.code()), (401, "invalid_api_key"));
            assert_eq!(err.message, failures[0].message);
        }
    }

    #[test]
    fn the_public_view_hides_the_hash() {
        let view = record().public_view();
        assert!(view.get("hash").is_none());
        assert_eq!(view["id"], "key_01");
        assert_eq!(view["object"], "api_key");
    }

    #[test]
    fn admin_requests_are_checked() {
        assert_eq!(
            NewKey::parse(br#"{"principal": "u"}"#)
                .unwrap()
                .into_record("i".into(), "h".into(), 1)
                .tier,
            "free"
        );
        for bad in [
            &br#"{}"#[..],
            br#"{"principal": ""}"#,
            br#"{"principal": "u", "extra": 1}"#,
            br#"{"principal": "u", "models": [""]}"#,
            br#"not json"#,
        ] {
            assert_eq!(NewKey::parse(bad).unwrap_err().status(), 400);
        }
    }

    #[test]
    fn updates_change_only_what_they_name_and_null_clears() {
        let mut key = record();
        KeyUpdate::parse(br#"{"tier": "enterprise", "models": null}"#)
            .unwrap()
            .apply(&mut key)
            .unwrap();
        assert_eq!(key.tier, "enterprise");
        assert_eq!(key.models, None);
        assert_eq!(key.expires_at, Some(2000), "untouched");
        KeyUpdate::parse(br#"{"expires_at": null, "team": "red"}"#)
            .unwrap()
            .apply(&mut key)
            .unwrap();
        assert_eq!((key.expires_at, key.team.as_deref()), (None, Some("red")));
        assert!(
            KeyUpdate::parse(br#"{"principal": "other"}"#).is_err(),
            "the principal is fixed"
        );
    }

    #[test]
    fn revocation_is_final() {
        let mut key = record();
        key.revoked_at = Some(1200);
        let refused = KeyUpdate::parse(br#"{"tier": "pro"}"#)
            .unwrap()
            .apply(&mut key)
            .unwrap_err();
        assert_eq!((refused.status(), refused.code()), (409, "key_revoked"));
        assert_eq!(key.revoked_at, Some(1200));
        // A record written from a stale copy is revoked again by its tombstone.
        let stale = record().with_tombstone(Some(1300));
        assert_eq!(stale.revoked_at, Some(1300));
        assert!(stale.authenticate(&"ab".repeat(32), 1500).is_err());
        assert_eq!(
            key.clone().with_tombstone(Some(1300)).revoked_at,
            Some(1200)
        );
        assert_eq!(record().with_tombstone(None).revoked_at, None);
    }

    #[test]
    fn keys_carry_checked_limit_overrides_into_their_principal() {
        let mut key = record();
        KeyUpdate::parse(br#"{"limits": {"concurrent": 2, "daily_usd": 5}}"#)
            .unwrap()
            .apply(&mut key)
            .unwrap();
        let principal = key.authenticate(&key.hash.clone(), 0).unwrap();
        let limits = principal.limits.unwrap();
        assert_eq!((limits.concurrent, limits.daily_usd), (Some(2), Some(5.0)));
        KeyUpdate::parse(br#"{"limits": null}"#)
            .unwrap()
            .apply(&mut key)
            .unwrap();
        assert_eq!(key.limits, None);
        let zero = KeyUpdate::parse(br#"{"limits": {"concurrent": 0}}"#).unwrap_err();
        assert_eq!(zero.param.as_deref(), Some("limits"));
        assert!(NewKey::parse(br#"{"principal": "p", "limits": {"rpm": 5}}"#).is_err());
    }

    #[test]
    fn the_cache_expires_entries_and_stays_bounded() {
        let mut cache = KeyCache::new(2, 1000);
        cache.put("a".into(), Some(record()), 0);
        cache.put("miss".into(), None, 100);
        assert_eq!(cache.get("a", 999), Some(Some(record())));
        assert_eq!(cache.get("miss", 500), Some(None), "misses are cached too");
        assert_eq!(cache.get("a", 1000), None, "expired");
        cache.put("c".into(), None, 200);
        assert_eq!(cache.entries.len(), 2);
        assert_eq!(cache.get("a", 300), None, "the oldest went first");
        cache.forget("c");
        assert_eq!(cache.get("c", 300), None);
    }

    #[test]
    fn a_flood_of_unknown_keys_keeps_the_cache_bounded_and_evicts_in_order() {
        let mut cache = KeyCache::new(100, 1_000_000);
        cache.put("known".into(), Some(record()), 0);
        for i in 0..10_000u64 {
            cache.put(format!("miss-{i}"), None, i + 1);
            assert!(cache.entries.len() <= 100 && cache.order.len() <= 200);
        }
        assert_eq!(cache.get("known", 20_000), None, "the oldest went first");
        assert_eq!(cache.get("miss-9999", 20_000), Some(None));
        assert_eq!(cache.get("miss-9899", 20_000), None);
        // An entry stored again is as old as its last store.
        let mut cache = KeyCache::new(2, 1_000_000);
        cache.put("a".into(), None, 1);
        cache.put("b".into(), None, 2);
        cache.put("a".into(), Some(record()), 3);
        cache.put("c".into(), None, 4);
        assert_eq!(cache.get("b", 5), None, "b was the oldest");
        assert_eq!(cache.get("a", 5), Some(Some(record())));
    }
}
