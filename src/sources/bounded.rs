//! Counters by key with a bound on their series, for the load samplers: past the bound a
//! key's time goes to a coarser key (`other`), and a key unseen for an hour makes room.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant as StdInstant};

/// A series unseen for this long makes room for another.
pub const FORGET_AFTER: Duration = Duration::from_secs(3600);

/// Counters by key, at most `cap` keys of their own: past it a key's value goes to its
/// first fallback that has a series or room, else to the last fallback, which always does.
#[derive(Debug)]
pub struct Bounded<K> {
    cap: usize,
    /// The value of each key and when it last grew.
    pub values: HashMap<K, (f64, StdInstant)>,
    /// Keys published from the start and never forgotten: an idle database reads 0, not
    /// nothing.
    pinned: Vec<K>,
}

impl<K: Hash + Eq + Clone> Bounded<K> {
    /// At most `cap` keys, `pinned` among them from the start at 0.
    pub fn new(cap: usize, pinned: Vec<K>) -> Self {
        let now = StdInstant::now();
        Bounded {
            cap,
            values: pinned.iter().map(|k| (k.clone(), (0.0, now))).collect(),
            pinned,
        }
    }

    /// Adds `value` to `key`, or to its first fallback with a series or room.
    pub fn add(&mut self, key: K, fallbacks: &[K], value: f64, now: StdInstant) {
        let room = self.values.len() < self.cap;
        let chosen = if self.values.contains_key(&key) || room {
            key
        } else {
            fallbacks
                .iter()
                .take(fallbacks.len().saturating_sub(1))
                .find(|k| self.values.contains_key(*k))
                .or(fallbacks.last())
                .cloned()
                .unwrap_or(key)
        };
        let entry = self.values.entry(chosen).or_insert((0.0, now));
        entry.0 += value;
        entry.1 = now;
    }

    /// Drops the series unseen for [`FORGET_AFTER`]; a counter that goes is no reset, only a
    /// series that ends.
    pub fn forget(&mut self, now: StdInstant) {
        let pinned = &self.pinned;
        self.values
            .retain(|k, (_, seen)| pinned.contains(k) || now.duration_since(*seen) < FORGET_AFTER);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Past the cap, new keys go to the database's `other`, then to the overall `other`;
    /// a key unseen for an hour makes room.
    #[test]
    fn series_are_bounded_and_forgotten() {
        let mut b: Bounded<String> = Bounded::new(2, Vec::new());
        let t0 = StdInstant::now();
        b.add("a".into(), &["other".into()], 1.0, t0);
        b.add("b".into(), &["other".into()], 1.0, t0);
        b.add("c".into(), &["db-other".into(), "other".into()], 1.0, t0);
        b.add("d".into(), &["other".into()], 1.0, t0);
        assert_eq!(b.values.len(), 3, "{:?}", b.values);
        assert_eq!(b.values["other"].0, 2.0);
        assert!(!b.values.contains_key("db-other"));
        b.forget(t0 + FORGET_AFTER + Duration::from_secs(1));
        assert!(b.values.is_empty());
        let mut p: Bounded<String> = Bounded::new(2, vec!["idle".into()]);
        assert_eq!(p.values["idle"].0, 0.0, "published at 0 before any load");
        p.forget(StdInstant::now() + FORGET_AFTER + Duration::from_secs(1));
        assert!(p.values.contains_key("idle"), "never forgotten");
    }
}
