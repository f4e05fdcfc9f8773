//! [`SortedMap`]: an ordered map kept as one vector of entries sorted by key.
//!
//! The gateway's string-keyed maps (providers, routes, tiers, prices, teams, metric series)
//! hold a handful to a few hundred entries, are read far more often than written, and are
//! written out in key order. A sorted vector serves them with a binary search per lookup,
//! and its code is a fraction of a B-tree's: `BTreeMap` compiles its node, balancing,
//! iteration and drop code once per key/value type, and those copies were about 100 KB of
//! the wasm. An insert shifts the entries after its key, so a map whose size a client or
//! an upstream controls (choice and tool-call indices) stays a `BTreeMap`.

use std::borrow::Borrow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde::ser::{Serialize, Serializer};

/// An ordered map from `K` to `V` over a sorted vector; iterates in key order, as
/// `BTreeMap` does.
///
/// ```
/// use edge_llm_gateway::sorted_map::SortedMap;
///
/// let mut tiers = SortedMap::new();
/// tiers.insert("pro".to_owned(), 600);
/// tiers.insert("free".to_owned(), 60);
/// *tiers.get_or_default("team") += 1_000;
/// assert_eq!(tiers.get("pro"), Some(&600));
/// assert_eq!(tiers.keys().collect::<Vec<_>>(), ["free", "pro", "team"]);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SortedMap<K, V> {
    entries: Vec<(K, V)>,
}

impl<K, V> SortedMap<K, V> {
    /// An empty map.
    pub const fn new() -> Self {
        SortedMap {
            entries: Vec::new(),
        }
    }

    /// How many entries the map holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the map holds no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entries in key order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&K, &V)> + ExactSizeIterator {
        self.entries.iter().map(|(key, value)| (key, value))
    }

    /// The entries in key order, values mutable.
    pub fn iter_mut(&mut self) -> impl DoubleEndedIterator<Item = (&K, &mut V)> {
        self.entries.iter_mut().map(|(key, value)| (&*key, value))
    }

    /// The keys in order.
    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &K> + ExactSizeIterator {
        self.entries.iter().map(|(key, _)| key)
    }

    /// The values in key order.
    pub fn values(&self) -> impl DoubleEndedIterator<Item = &V> + ExactSizeIterator {
        self.entries.iter().map(|(_, value)| value)
    }

    /// The values in key order, mutable.
    pub fn values_mut(&mut self) -> impl DoubleEndedIterator<Item = &mut V> {
        self.entries.iter_mut().map(|(_, value)| value)
    }

    /// Keeps only the entries `keep` is true of.
    pub fn retain(&mut self, mut keep: impl FnMut(&K, &mut V) -> bool) {
        self.entries.retain_mut(|(key, value)| keep(key, value));
    }
}

impl<K: Ord, V> SortedMap<K, V> {
    /// Where `key` is (`Ok`) or would go (`Err`).
    fn position<Q>(&self, key: &Q) -> Result<usize, usize>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.entries
            .binary_search_by(|(probe, _)| probe.borrow().cmp(key))
    }

    /// The value of `key`.
    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        let at = self.position(key).ok()?;
        Some(&self.entries[at].1)
    }

    /// The value of `key`, mutable.
    pub fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        let at = self.position(key).ok()?;
        Some(&mut self.entries[at].1)
    }

    /// Whether the map holds `key`.
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.position(key).is_ok()
    }

    /// Sets `key` to `value`; returns the value it replaced.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        match self.position(&key) {
            Ok(at) => Some(std::mem::replace(&mut self.entries[at].1, value)),
            Err(at) => {
                self.entries.insert(at, (key, value));
                None
            }
        }
    }

    /// Takes `key`'s entry out of the map; returns its value.
    pub fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        let at = self.position(key).ok()?;
        Some(self.entries.remove(at).1)
    }

    /// The value of `key`, inserted first as `make()` if the map does not hold it. The key
    /// is owned only when it is inserted.
    pub fn get_or_insert_with<Q>(&mut self, key: &Q, make: impl FnOnce() -> V) -> &mut V
    where
        K: Borrow<Q>,
        Q: Ord + ToOwned<Owned = K> + ?Sized,
    {
        let at = match self.position(key) {
            Ok(at) => at,
            Err(at) => {
                self.entries.insert(at, (key.to_owned(), make()));
                at
            }
        };
        &mut self.entries[at].1
    }

    /// The value of `key`, inserted first as `V::default()` if the map does not hold it.
    pub fn get_or_default<Q>(&mut self, key: &Q) -> &mut V
    where
        K: Borrow<Q>,
        Q: Ord + ToOwned<Owned = K> + ?Sized,
        V: Default,
    {
        self.get_or_insert_with(key, V::default)
    }

    /// A map of `entries`, inserted one by one: of two entries with one key the later is
    /// kept, as in a `BTreeMap`. (A sort would cost less time on long unsorted input, and
    /// its code, compiled once per entry type, more bytes than these maps ever save.)
    fn from_entries(entries: impl IntoIterator<Item = (K, V)>) -> Self {
        let mut map = SortedMap::new();
        for (key, value) in entries {
            map.insert(key, value);
        }
        map
    }
}

impl<K, V> Default for SortedMap<K, V> {
    fn default() -> Self {
        SortedMap::new()
    }
}

impl<K: Ord, V> FromIterator<(K, V)> for SortedMap<K, V> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(entries: I) -> Self {
        SortedMap::from_entries(entries)
    }
}

/// Indexing for tests, which read expected entries: the gateway's own code looks values
/// up with [`SortedMap::get`], so that no missing key can panic the isolate.
#[cfg(test)]
impl<K, V, Q> std::ops::Index<&Q> for SortedMap<K, V>
where
    K: Ord + Borrow<Q>,
    Q: Ord + ?Sized,
{
    type Output = V;

    /// The value of `key`; panics if the map does not hold it, as `BTreeMap`'s index does.
    fn index(&self, key: &Q) -> &V {
        self.get(key).expect("no entry for the key")
    }
}

impl<K: Ord, V, const N: usize> From<[(K, V); N]> for SortedMap<K, V> {
    fn from(entries: [(K, V); N]) -> Self {
        SortedMap::from_entries(entries)
    }
}

impl<K, V> IntoIterator for SortedMap<K, V> {
    type Item = (K, V);
    type IntoIter = std::vec::IntoIter<(K, V)>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

impl<'m, K, V> IntoIterator for &'m SortedMap<K, V> {
    type Item = (&'m K, &'m V);
    type IntoIter = std::iter::Map<std::slice::Iter<'m, (K, V)>, fn(&'m (K, V)) -> (&'m K, &'m V)>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter().map(|(key, value)| (key, value))
    }
}

impl<K: Serialize, V: Serialize> Serialize for SortedMap<K, V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

impl<'de, K, V> Deserialize<'de> for SortedMap<K, V>
where
    K: Deserialize<'de> + Ord,
    V: Deserialize<'de>,
{
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(EntriesVisitor(PhantomData))
    }
}

/// Reads a map's entries in the order they come.
struct EntriesVisitor<K, V>(PhantomData<(K, V)>);

impl<'de, K, V> Visitor<'de> for EntriesVisitor<K, V>
where
    K: Deserialize<'de> + Ord,
    V: Deserialize<'de>,
{
    type Value = SortedMap<K, V>;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a map")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
        let mut map = SortedMap::new();
        while let Some((key, value)) = access.next_entry()? {
            map.insert(key, value);
        }
        Ok(map)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use guard_scan::hostile::Rng;

    use super::SortedMap;

    #[test]
    fn it_keeps_its_keys_in_order_and_finds_each_one() {
        let mut map = SortedMap::new();
        for key in ["m", "b", "z", "a", "q"] {
            assert_eq!(map.insert(key.to_owned(), key.len()), None);
        }
        assert_eq!(map.insert("b".to_owned(), 7), Some(1));
        let keys: Vec<&str> = map.keys().map(String::as_str).collect();
        assert_eq!(keys, ["a", "b", "m", "q", "z"]);
        assert_eq!(map.get("b"), Some(&7));
        assert_eq!(map.get("c"), None);
        assert!(map.contains_key("z"));
        assert_eq!(map.remove("m"), Some(1));
        assert_eq!(map.remove("m"), None);
        assert_eq!(map.len(), 4);
        *map.get_or_default("c") += 3;
        *map.get_or_default("c") += 3;
        assert_eq!(map.get("c"), Some(&6));
        map.retain(|key, _| key != "a");
        let keys: Vec<&str> = map.keys().map(String::as_str).collect();
        assert_eq!(keys, ["b", "c", "q", "z"]);
    }

    #[test]
    fn it_reads_and_writes_json_as_a_btree_map_does() {
        // Unordered keys and a repeated one: the last value of a key wins.
        let text = r#"{"zeta": 1, "alpha": 2, "mid": 3, "alpha": 4, "zeta": 5, "alpha": 6}"#;
        let sorted: SortedMap<String, u32> = serde_json::from_str(text).unwrap();
        let btree: BTreeMap<String, u32> = serde_json::from_str(text).unwrap();
        assert_eq!(
            serde_json::to_string(&sorted).unwrap(),
            serde_json::to_string(&btree).unwrap()
        );
        assert_eq!(sorted.get("alpha"), Some(&6));
        assert_eq!(sorted.len(), 3);
        let not_a_map = serde_json::from_str::<SortedMap<String, u32>>("[1]");
        assert!(not_a_map.is_err());
    }

    #[test]
    fn it_answers_as_a_btree_map_does_through_random_edits() {
        let mut rng = Rng::new(21);
        let mut sorted: SortedMap<String, usize> = SortedMap::new();
        let mut btree: BTreeMap<String, usize> = BTreeMap::new();
        for step in 0..20_000 {
            // Few distinct keys, so that edits hit present keys as often as absent ones.
            let key = format!("k{}", rng.below(300));
            match rng.below(5) {
                0 => assert_eq!(sorted.remove(key.as_str()), btree.remove(&key)),
                1 => {
                    *sorted.get_or_default(key.as_str()) += step;
                    *btree.entry(key).or_default() += step;
                }
                2 => assert_eq!(sorted.get(key.as_str()), btree.get(&key)),
                _ => assert_eq!(
                    sorted.insert(key.clone(), step),
                    btree.insert(key.clone(), step)
                ),
            }
            assert_eq!(sorted.len(), btree.len());
        }
        assert!(sorted.iter().eq(btree.iter()));
    }

    #[test]
    fn collecting_keeps_the_last_of_repeated_keys() {
        let pairs = [(3, 'a'), (1, 'b'), (3, 'c'), (2, 'd'), (1, 'e')];
        let sorted: SortedMap<u32, char> = pairs.into_iter().collect();
        let btree: BTreeMap<u32, char> = pairs.into_iter().collect();
        let sorted: Vec<(u32, char)> = sorted.into_iter().collect();
        let btree: Vec<(u32, char)> = btree.into_iter().collect();
        assert_eq!(sorted, btree);
    }
}
