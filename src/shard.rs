//! Sharding: which sources of the config this replica runs, when several replicas share one
//! config (`--shard.index`, `--shard.count`).
//!
//! A source belongs to the shard that scores highest for its name under rendezvous hashing
//! (SHA-256 of the name and the shard index). The owner depends only on the source's own name
//! and the shard count, so adding or removing a source moves no other source; raising the
//! count from N to N+1 moves only the sources the new shard wins (about 1/(N+1) of them), all
//! to the new shard. SHA-256 keeps the assignment the same across versions and platforms.

use sha2::{Digest, Sha256};

/// Most shards a config may be split into.
pub const MAX_SHARDS: u32 = 1000;

/// This replica's part of the config: shard `index` of `count` (from 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This replica's shard, from 0.
    pub index: u32,
    /// How many shards the config is split into.
    pub count: u32,
}

impl Default for Shard {
    /// The whole config: one shard.
    fn default() -> Self {
        Shard { index: 0, count: 1 }
    }
}

impl Shard {
    /// The shard from the flags: `index` as given, or, when absent and `count` is above 1,
    /// the ordinal a StatefulSet gives its pod's hostname modulo `count`: with 3 shards,
    /// `pulse-exporter-2` is shard 2 and `pulse-exporter-5` shard 2 again, so a StatefulSet of
    /// `2 × count` replicas runs every shard twice (for availability: each extra replica
    /// repeats its shard's probes).
    pub fn from_flags(index: Option<u32>, count: u32, hostname: &str) -> Result<Shard, String> {
        if count == 0 || count > MAX_SHARDS {
            return Err(format!(
                "--shard.count {count} must be from 1 to {MAX_SHARDS}"
            ));
        }
        let index = match index {
            Some(i) => i,
            None if count == 1 => 0,
            None => ordinal(hostname).map(|o| o % count).ok_or_else(|| {
                format!(
                    "--shard.count is {count} but no --shard.index (PULSE_SHARD_INDEX) is set and the hostname {hostname:?} does not end in a StatefulSet ordinal such as -0"
                )
            })?,
        };
        if index >= count {
            return Err(format!(
                "--shard.index {index} must be below --shard.count {count} (shards count from 0)"
            ));
        }
        Ok(Shard { index, count })
    }

    /// True when this replica runs the source named `name`.
    pub fn owns(&self, name: &str) -> bool {
        self.count <= 1 || owner(name, self.count) == self.index
    }

    /// True when the config is split.
    pub fn is_split(&self) -> bool {
        self.count > 1
    }
}

/// The shard (from 0) that runs the source named `name` when the config is split `count` ways.
pub fn owner(name: &str, count: u32) -> u32 {
    (0..count.max(1))
        .max_by_key(|&i| {
            let mut h = Sha256::new();
            h.update(name.as_bytes());
            h.update([0]);
            h.update(i.to_be_bytes());
            let d = h.finalize();
            u64::from_be_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
        })
        .unwrap_or(0)
}

/// The ordinal at the end of a StatefulSet pod's hostname: `name-3` is 3.
fn ordinal(hostname: &str) -> Option<u32> {
    let (_, n) = hostname.trim().rsplit_once('-')?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    n.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("source-{i}")).collect()
    }

    #[test]
    fn every_source_has_exactly_one_owner_and_the_split_is_even() {
        let names = names(3000);
        let mut per_shard = [0usize; 3];
        for n in &names {
            let owners: Vec<u32> = (0..3)
                .filter(|&i| Shard { index: i, count: 3 }.owns(n))
                .collect();
            assert_eq!(owners.len(), 1, "{n}: {owners:?}");
            per_shard[owners[0] as usize] += 1;
        }
        for c in per_shard {
            assert!((900..=1100).contains(&c), "{per_shard:?}");
        }
    }

    #[test]
    fn one_more_shard_moves_sources_only_to_it() {
        let names = names(2000);
        let moved: Vec<&String> = names
            .iter()
            .filter(|n| owner(n, 4) != owner(n, 3))
            .collect();
        assert!(moved.iter().all(|n| owner(n, 4) == 3));
        assert!((400..=600).contains(&moved.len()), "{}", moved.len());
        // The owner is a function of the name alone: another source changes nothing.
        assert_eq!(owner("app-db", 3), owner("app-db", 3));
    }

    #[test]
    fn the_shard_comes_from_the_flags_or_the_pod_ordinal() {
        assert_eq!(Shard::from_flags(None, 1, "anything"), Ok(Shard::default()));
        assert_eq!(
            Shard::from_flags(Some(2), 3, ""),
            Ok(Shard { index: 2, count: 3 })
        );
        assert_eq!(
            Shard::from_flags(None, 3, "pulse-exporter-1"),
            Ok(Shard { index: 1, count: 3 })
        );
        // A second replica of each shard: ordinals 3 to 5 run shards 0 to 2 again.
        assert_eq!(
            Shard::from_flags(None, 3, "pulse-exporter-5"),
            Ok(Shard { index: 2, count: 3 })
        );
        for (index, count, host, says) in [
            (Some(3), 3, "", "must be below --shard.count 3"),
            (None, 0, "", "--shard.count 0 must be from 1 to 1000"),
            (None, 3, "laptop", "does not end in a StatefulSet ordinal"),
            (
                Some(7),
                3,
                "pulse-exporter-7",
                "--shard.index 7 must be below",
            ),
            (
                None,
                3,
                "pulse-exporter-",
                "does not end in a StatefulSet ordinal",
            ),
        ] {
            let e = Shard::from_flags(index, count, host).unwrap_err();
            assert!(e.contains(says), "{e}");
        }
        assert!(Shard::default().owns("x") && !Shard::default().is_split());
    }
}
