//! Counters a server keeps per item (a statement, a table, a query shape), read whole at every
//! run and turned into what each item did between two runs: the window.
//!
//! A server's own counters are cumulative since an entry was made, and entries come and go:
//! `pg_stat_statements` evicts the least used and `pg_stat_statements_reset()` removes them
//! all, a table's statistics are reset, a server restarts. Published as they are, such
//! counters would make a spike of a whole history whenever an item enters a top N, and a
//! negative rate whenever one is made anew. Published as what moved in the window, the numbers
//! add up across items and never go below zero:
//!
//! - the first read is a baseline and yields nothing (a history is not a window);
//! - an item new since the last read counts from zero: it was made in the window;
//! - an item whose counters went down (or whose birth time moved) was made anew in the window
//!   and counts from zero too;
//! - a new epoch (the server's statistics reset, a restart) makes every item new;
//! - an item that stands for several entries the server does not tell apart (statements whose
//!   id the role may not see) and whose sum went down moved by nothing: one of them was
//!   evicted, and counting the rest from zero would be the spike this module exists to avoid.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::Instant;

/// One item's counters in a read.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    /// The counters, the first one counting events (calls, scans) so that it falls only when
    /// the entry was made anew.
    pub values: Vec<f64>,
    /// When the server made the entry, where it says (`stats_since`, Postgres 17+).
    pub born: Option<f64>,
    /// False for an item summing entries the server does not tell apart.
    pub exact: bool,
}

impl Reading {
    /// An exact item's counters, of unknown birth.
    pub fn new(values: Vec<f64>) -> Self {
        Reading {
            values,
            born: None,
            exact: true,
        }
    }
}

/// What moved between two reads.
#[derive(Debug, Clone, PartialEq)]
pub struct Moved<K> {
    /// The window's length.
    pub seconds: f64,
    /// The items that moved, with how much each counter moved (never below zero).
    pub items: Vec<(K, Vec<f64>)>,
}

/// The last read of a set of counters, to compare the next one with.
#[derive(Debug)]
pub struct Window<K> {
    last: Option<Last<K>>,
}

#[derive(Debug)]
struct Last<K> {
    at: Instant,
    epoch: Option<String>,
    items: HashMap<K, Reading>,
}

impl<K> Default for Window<K> {
    fn default() -> Self {
        Window { last: None }
    }
}

impl<K: Eq + Hash + Clone> Window<K> {
    /// Takes the read made at `at` (in `epoch`: anything that changes when the server resets
    /// all its statistics) and returns what moved since the last one; `None` for the first.
    /// Items that did not move are left out.
    pub fn advance(
        &mut self,
        at: Instant,
        epoch: Option<String>,
        items: HashMap<K, Reading>,
    ) -> Option<Moved<K>> {
        let last = self.last.take();
        let moved = last.as_ref().map(|last| {
            let new_epoch = last.epoch != epoch;
            let moved = items
                .iter()
                .filter_map(|(key, now)| {
                    let before = (!new_epoch).then(|| last.items.get(key)).flatten();
                    let d = delta(before, now);
                    d.iter().any(|v| *v > 0.0).then(|| (key.clone(), d))
                })
                .collect();
            Moved {
                seconds: at.saturating_duration_since(last.at).as_secs_f64(),
                items: moved,
            }
        });
        self.last = Some(Last { at, epoch, items });
        moved
    }

    /// The items of the last read.
    pub fn last_items(&self) -> Option<&HashMap<K, Reading>> {
        self.last.as_ref().map(|l| &l.items)
    }

    /// Forgets the last read: the next one is a baseline again (after a failed run whose
    /// partial read would make a wrong window).
    pub fn reset(&mut self) {
        self.last = None;
    }
}

/// How far `now` moved from `before`, by the rules of the module header.
fn delta(before: Option<&Reading>, now: &Reading) -> Vec<f64> {
    let Some(before) = before else {
        return now.values.iter().map(|v| v.max(0.0)).collect();
    };
    let first = |r: &Reading| r.values.first().copied().unwrap_or(0.0);
    let remade = before.born != now.born || first(now) < first(before);
    match (remade, now.exact && before.exact) {
        (true, true) => now.values.iter().map(|v| v.max(0.0)).collect(),
        (true, false) => vec![0.0; now.values.len()],
        (false, _) => now
            .values
            .iter()
            .enumerate()
            .map(|(i, v)| (v - before.values.get(i).copied().unwrap_or(0.0)).max(0.0))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn read(items: &[(&'static str, &[f64])]) -> HashMap<&'static str, Reading> {
        items
            .iter()
            .map(|(k, v)| (*k, Reading::new(v.to_vec())))
            .collect()
    }

    fn sorted(m: Moved<&'static str>) -> Vec<(&'static str, Vec<f64>)> {
        let mut items = m.items;
        items.sort_by(|a, b| a.0.cmp(b.0));
        items
    }

    #[test]
    fn the_first_read_is_a_baseline_and_later_ones_yield_what_moved() {
        let mut w = Window::default();
        let t0 = Instant::now();
        assert_eq!(
            w.advance(t0, None, read(&[("a", &[10.0, 5.0])])),
            None,
            "a history is no window"
        );
        let m = w
            .advance(
                t0 + Duration::from_secs(60),
                None,
                read(&[("a", &[13.0, 6.5]), ("b", &[2.0, 1.0]), ("c", &[0.0, 0.0])]),
            )
            .unwrap();
        assert_eq!(m.seconds, 60.0);
        // `b` is new: made in the window; `c` did nothing and is left out.
        assert_eq!(sorted(m), [("a", vec![3.0, 1.5]), ("b", vec![2.0, 1.0])]);
    }

    #[test]
    fn an_entry_made_anew_counts_from_zero_and_never_goes_negative() {
        let mut w = Window::default();
        let t = Instant::now();
        w.advance(t, None, read(&[("a", &[100.0, 50.0]), ("b", &[7.0, 1.0])]));
        // `a` was evicted and made anew (calls fell), `b` went away.
        let m = w.advance(t, None, read(&[("a", &[3.0, 0.2])])).unwrap();
        assert_eq!(sorted(m), [("a", vec![3.0, 0.2])]);
        // A second counter falling alone (it never should) moves by nothing, not less.
        let m = w.advance(t, None, read(&[("a", &[4.0, 0.1])])).unwrap();
        assert_eq!(sorted(m), [("a", vec![1.0, 0.0])]);
    }

    #[test]
    fn a_new_epoch_or_birth_makes_every_item_new() {
        let mut w = Window::default();
        let t = Instant::now();
        w.advance(t, Some("r1".into()), read(&[("a", &[10.0])]));
        // After a reset the entry grew past its old count within one window: still new.
        let m = w
            .advance(t, Some("r2".into()), read(&[("a", &[12.0])]))
            .unwrap();
        assert_eq!(sorted(m), [("a", vec![12.0])]);
        let born = |b: f64, v: f64| Reading {
            values: vec![v],
            born: Some(b),
            exact: true,
        };
        w.advance(t, None, HashMap::from([("a", born(1.0, 50.0))]));
        let m = w
            .advance(t, None, HashMap::from([("a", born(2.0, 60.0))]))
            .unwrap();
        assert_eq!(sorted(m), [("a", vec![60.0])], "made anew, by its birth");
    }

    #[test]
    fn a_sum_of_entries_that_falls_moved_by_nothing() {
        let mut w = Window::default();
        let t = Instant::now();
        let sum = |v: f64| Reading {
            values: vec![v, v],
            born: None,
            exact: false,
        };
        w.advance(t, None, HashMap::from([("hidden", sum(1000.0))]));
        // One of the entries behind it was evicted: no spike of the others' history.
        assert!(w
            .advance(t, None, HashMap::from([("hidden", sum(900.0))]))
            .unwrap()
            .items
            .is_empty());
        let m = w
            .advance(t, None, HashMap::from([("hidden", sum(950.0))]))
            .unwrap();
        assert_eq!(sorted(m), [("hidden", vec![50.0, 50.0])]);
    }

    #[test]
    fn reset_makes_the_next_read_a_baseline() {
        let mut w = Window::default();
        let t = Instant::now();
        w.advance(t, None, read(&[("a", &[1.0])]));
        w.reset();
        assert_eq!(w.advance(t, None, read(&[("a", &[5.0])])), None);
    }
}
