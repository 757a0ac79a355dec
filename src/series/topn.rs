//! The items with the largest keys out of a stream, held in memory bounded by how many are
//! kept: the newest heartbeats of a run, the deepest queues of a broker.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

/// At most `max` items, those with the largest keys seen so far.
#[derive(Debug)]
pub struct Largest<T> {
    max: usize,
    heap: BinaryHeap<Reverse<Keyed<T>>>,
}

/// An item ordered by its key alone (NaN keys sort by `total_cmp`, never panic).
#[derive(Debug)]
struct Keyed<T>(f64, T);

impl<T> PartialEq for Keyed<T> {
    fn eq(&self, other: &Self) -> bool {
        self.0.total_cmp(&other.0).is_eq()
    }
}
impl<T> Eq for Keyed<T> {}
impl<T> PartialOrd for Keyed<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Keyed<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

impl<T> Largest<T> {
    /// Keeps at most `max` items.
    pub fn new(max: usize) -> Self {
        Largest {
            max,
            heap: BinaryHeap::new(),
        }
    }

    /// Offers `item` under `key`; returns the item with the smallest key when that makes one
    /// too many (possibly `item` itself).
    pub fn push(&mut self, key: f64, item: T) -> Option<T> {
        self.heap.push(Reverse(Keyed(key, item)));
        if self.heap.len() > self.max {
            return self.heap.pop().map(|Reverse(Keyed(_, t))| t);
        }
        None
    }

    /// The kept items, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.heap.iter().map(|Reverse(Keyed(_, t))| t)
    }

    /// The kept items, largest key first.
    pub fn into_sorted(self) -> Vec<T> {
        // Ascending order of `Reverse` is descending order of the keys.
        self.heap
            .into_sorted_vec()
            .into_iter()
            .map(|Reverse(Keyed(_, t))| t)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_largest_and_hands_back_the_rest() {
        let mut top = Largest::new(2);
        assert_eq!(top.push(5.0, "a"), None);
        assert_eq!(top.push(1.0, "b"), None);
        assert_eq!(top.push(9.0, "c"), Some("b"));
        assert_eq!(top.push(3.0, "d"), Some("d"));
        assert_eq!(
            top.push(f64::NAN, "e"),
            Some("a"),
            "NaN sorts above every number"
        );
        assert_eq!(top.into_sorted(), ["e", "c"]);
        let mut none = Largest::new(0);
        assert_eq!(none.push(1.0, 1), Some(1));
        assert!(none.into_sorted().is_empty());
    }
}
