//! A least-recently-used map bounded in bytes, whose items also expire: the isolate's own
//! level of the cache, in front of KV.

use std::collections::{BTreeMap, HashMap};

/// Items by key, within a byte budget; the least recently used go first when it is full.
#[derive(Debug)]
pub struct Lru<V> {
    budget: usize,
    used: usize,
    /// Increases on every use; an item's tick says when it was last used.
    clock: u64,
    items: HashMap<String, Item<V>>,
    /// Keys by last use, oldest first.
    by_use: BTreeMap<u64, String>,
}

#[derive(Debug)]
struct Item<V> {
    value: V,
    bytes: usize,
    expires_ms: u64,
    used_at: u64,
}

impl<V: Clone> Lru<V> {
    /// An empty map that holds at most `budget` bytes (as the caller counts them).
    pub fn new(budget: usize) -> Self {
        Lru {
            budget,
            used: 0,
            clock: 0,
            items: HashMap::new(),
            by_use: BTreeMap::new(),
        }
    }

    /// The value under `key` unless it expired (it is then dropped); marks it used.
    pub fn get(&mut self, key: &str, now_ms: u64) -> Option<V> {
        let item = self.items.get_mut(key)?;
        if now_ms >= item.expires_ms {
            self.remove(key);
            return None;
        }
        self.clock += 1;
        self.by_use.remove(&item.used_at);
        item.used_at = self.clock;
        self.by_use.insert(self.clock, key.to_owned());
        Some(item.value.clone())
    }

    /// Stores `value` (`bytes` big) until `expires_ms`, evicting the least recently used
    /// items until it fits. A value larger than the whole budget is not stored.
    pub fn insert(&mut self, key: &str, value: V, bytes: usize, expires_ms: u64) {
        self.remove(key);
        if bytes > self.budget {
            return;
        }
        while self.used + bytes > self.budget {
            let Some((_, oldest)) = self.by_use.pop_first() else {
                break;
            };
            if let Some(item) = self.items.remove(&oldest) {
                self.used -= item.bytes;
            }
        }
        self.clock += 1;
        self.used += bytes;
        self.by_use.insert(self.clock, key.to_owned());
        self.items.insert(
            key.to_owned(),
            Item {
                value,
                bytes,
                expires_ms,
                used_at: self.clock,
            },
        );
    }

    /// Drops the value under `key`, if any.
    pub fn remove(&mut self, key: &str) {
        if let Some(item) = self.items.remove(key) {
            self.used -= item.bytes;
            self.by_use.remove(&item.used_at);
        }
    }

    /// Drops every value whose key starts with `prefix`.
    pub fn remove_prefix(&mut self, prefix: &str) {
        let keys: Vec<String> = self
            .items
            .keys()
            .filter(|key| key.starts_with(prefix))
            .cloned()
            .collect();
        for key in keys {
            self.remove(&key);
        }
    }

    /// Bytes held.
    pub fn used_bytes(&self) -> usize {
        self.used
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_recently_used_go_first_when_the_budget_is_full() {
        let mut lru = Lru::new(100);
        lru.insert("a", 1, 40, 1_000);
        lru.insert("b", 2, 40, 1_000);
        assert_eq!(lru.get("a", 0), Some(1)); // `b` is now the oldest.
        lru.insert("c", 3, 40, 1_000);
        assert_eq!(
            (lru.get("a", 0), lru.get("b", 0), lru.get("c", 0)),
            (Some(1), None, Some(3))
        );
        assert_eq!(lru.used_bytes(), 80);
        // One large value can push out several.
        lru.insert("d", 4, 100, 1_000);
        assert_eq!(
            (lru.get("a", 0), lru.get("c", 0), lru.get("d", 0)),
            (None, None, Some(4))
        );
        assert_eq!(lru.used_bytes(), 100);
        // Too large for the budget: not stored, nothing evicted.
        lru.insert("e", 5, 101, 1_000);
        assert_eq!((lru.get("d", 0), lru.get("e", 0)), (Some(4), None));
    }

    #[test]
    fn items_expire_and_replacing_one_counts_its_bytes_once() {
        let mut lru = Lru::new(100);
        lru.insert("a", 1, 30, 500);
        assert_eq!(lru.get("a", 499), Some(1));
        assert_eq!(lru.get("a", 500), None);
        assert_eq!(lru.used_bytes(), 0);
        lru.insert("b", 1, 30, 500);
        lru.insert("b", 2, 50, 500);
        assert_eq!((lru.get("b", 0), lru.used_bytes()), (Some(2), 50));
    }

    #[test]
    fn prefixes_are_purged_together() {
        let mut lru = Lru::new(1_000);
        for key in ["ns1:a", "ns1:b", "ns2:a"] {
            lru.insert(key, 0, 10, 1_000);
        }
        lru.remove_prefix("ns1:");
        assert_eq!(
            (
                lru.get("ns1:a", 0),
                lru.get("ns1:b", 0),
                lru.get("ns2:a", 0)
            ),
            (None, None, Some(0))
        );
        assert_eq!(lru.used_bytes(), 10);
        // A zero budget holds nothing.
        let mut none = Lru::new(0);
        none.insert("a", 0, 1, 1_000);
        assert_eq!(none.get("a", 0), None);
    }
}
