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

/// The sharding flags as given, each `None` when unset; [`Shard::from_flags`] resolves them.
#[derive(Debug, Clone, Copy, Default)]
pub struct ShardFlags<'a> {
    /// `--shard.index` (`PULSE_SHARD_INDEX`): this replica's shard, given outright.
    pub index: Option<u32>,
    /// `--shard.count` (`PULSE_SHARD_COUNT`): how many shards; defaults to `replicas`, or 1.
    pub count: Option<u32>,
    /// `--shard.replicas` (`PULSE_SHARD_REPLICAS`): how many replicas run the config, as the
    /// StatefulSet declares.
    pub replicas: Option<u32>,
    /// `--shard.pod-index` (`PULSE_POD_INDEX`): this pod's StatefulSet ordinal, from the
    /// `apps.kubernetes.io/pod-index` label through the downward API. Empty where the cluster
    /// sets no such label (before Kubernetes 1.28).
    pub pod_index: Option<&'a str>,
    /// The host name, whose trailing ordinal is the last resort.
    pub hostname: &'a str,
}

impl Shard {
    /// The shard from the flags. The count is `--shard.count`, or the replicas, or 1. With
    /// the replicas known, a count they cannot cover fails here: fewer replicas than shards
    /// would leave shards unprobed, and replicas that are not a multiple of the count would
    /// run some shards more often than others. The index is `--shard.index` as given, or
    /// else, when the count is above 1, this pod's ordinal (`--shard.pod-index`, or the end
    /// of the host name as a StatefulSet names its pods) modulo the count: with 3 shards,
    /// `pulse-exporter-2` is shard 2 and `pulse-exporter-5` shard 2 again, so a StatefulSet
    /// of `2 × count` replicas runs every shard twice (for availability).
    pub fn from_flags(flags: &ShardFlags) -> Result<Shard, String> {
        let count = flags.count.or(flags.replicas).unwrap_or(1);
        if count == 0 || count > MAX_SHARDS {
            let flag = if flags.count.is_some() {
                "--shard.count (PULSE_SHARD_COUNT)"
            } else {
                "--shard.replicas (PULSE_SHARD_REPLICAS), the shard count when none is set,"
            };
            return Err(format!("{flag} {count} must be from 1 to {MAX_SHARDS}"));
        }
        if let Some(replicas) = flags.replicas {
            if replicas < count {
                let unrun = if replicas + 1 == count {
                    format!("shard {replicas}")
                } else {
                    format!("shards {replicas} to {}", count - 1)
                };
                return Err(format!(
                    "--shard.count (PULSE_SHARD_COUNT) is {count} but only {replicas} replicas run (--shard.replicas, PULSE_SHARD_REPLICAS): {unrun} would run nowhere and their sources would never be probed; set the StatefulSet's replicas to {count} (or a multiple of it), or the shard count to {replicas}"
                ));
            }
            if replicas % count != 0 {
                let per = replicas / count;
                return Err(format!(
                    "{replicas} replicas (--shard.replicas, PULSE_SHARD_REPLICAS) are not a multiple of the {count} shards (--shard.count, PULSE_SHARD_COUNT): {} shards would run on {} replicas and the others on {per}; set the replicas to {} or {}, or remove the shard count to run {replicas} shards",
                    replicas % count,
                    per + 1,
                    per * count,
                    (per + 1) * count
                ));
            }
        }
        let index = match flags.index {
            Some(i) => i,
            None if count == 1 => 0,
            None => pod_ordinal(flags)? % count,
        };
        if index >= count {
            return Err(format!(
                "--shard.index {index} must be below the shard count {count} (shards count from 0)"
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

/// This pod's StatefulSet ordinal: the pod-index label when the cluster sets it, else the
/// ordinal at the end of the host name.
fn pod_ordinal(flags: &ShardFlags) -> Result<u32, String> {
    match flags.pod_index.map(str::trim).filter(|p| !p.is_empty()) {
        Some(p) => p.parse().map_err(|_| {
            format!(
                "--shard.pod-index (PULSE_POD_INDEX) {p:?} is not a pod ordinal such as 0: set it from the label apps.kubernetes.io/pod-index, or leave it empty to read the ordinal from the host name"
            )
        }),
        None => ordinal(flags.hostname).ok_or_else(|| {
            format!(
                "the shard count is above 1 but this replica's shard is unknown: no --shard.index (PULSE_SHARD_INDEX) or --shard.pod-index (PULSE_POD_INDEX) is set and the host name {:?} does not end in a StatefulSet ordinal such as -0",
                flags.hostname
            )
        }),
    }
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

    fn resolve(
        index: Option<u32>,
        count: Option<u32>,
        replicas: Option<u32>,
        pod_index: Option<&str>,
        hostname: &str,
    ) -> Result<Shard, String> {
        Shard::from_flags(&ShardFlags {
            index,
            count,
            replicas,
            pod_index,
            hostname,
        })
    }

    #[test]
    fn the_shard_comes_from_the_flags_or_the_pod_ordinal() {
        let shard = |index, count| Ok(Shard { index, count });
        assert_eq!(resolve(None, None, None, None, "x"), Ok(Shard::default()));
        assert_eq!(resolve(None, Some(1), None, None, "x"), shard(0, 1));
        assert_eq!(resolve(Some(2), Some(3), None, None, ""), shard(2, 3));
        assert_eq!(
            resolve(None, Some(3), None, None, "pulse-exporter-1"),
            shard(1, 3)
        );
        // A second replica of each shard: ordinals 3 to 5 run shards 0 to 2 again.
        assert_eq!(
            resolve(None, Some(3), Some(6), None, "pulse-exporter-5"),
            shard(2, 3)
        );
        // The count follows the replicas when not given.
        assert_eq!(
            resolve(None, None, Some(3), None, "pulse-exporter-2"),
            shard(2, 3)
        );
        assert_eq!(resolve(None, None, Some(1), None, "laptop"), shard(0, 1));
        // The pod-index label wins over the host name; empty (an older cluster) falls back.
        assert_eq!(
            resolve(None, None, Some(3), Some("1"), "renamed-host"),
            shard(1, 3)
        );
        assert_eq!(
            resolve(None, None, Some(3), Some(""), "pulse-exporter-2"),
            shard(2, 3)
        );
        assert_eq!(
            resolve(None, Some(3), Some(6), Some("4"), "pulse-exporter-9"),
            shard(1, 3)
        );
        for (flags, says) in [
            (
                resolve(Some(3), Some(3), None, None, ""),
                "must be below the shard count 3",
            ),
            (
                resolve(None, Some(0), None, None, ""),
                "--shard.count (PULSE_SHARD_COUNT) 0 must be from 1 to 1000",
            ),
            (
                resolve(None, None, Some(0), None, ""),
                "--shard.replicas (PULSE_SHARD_REPLICAS), the shard count when none is set, 0",
            ),
            (
                resolve(None, Some(3), None, None, "laptop"),
                "does not end in a StatefulSet ordinal",
            ),
            (
                resolve(None, Some(3), None, None, "pulse-exporter-"),
                "does not end in a StatefulSet ordinal",
            ),
            (
                resolve(Some(7), Some(3), None, None, "pulse-exporter-7"),
                "--shard.index 7 must be below",
            ),
            (
                resolve(None, Some(3), None, Some("two"), "pulse-exporter-2"),
                "--shard.pod-index (PULSE_POD_INDEX) \"two\" is not a pod ordinal",
            ),
            // Two replicas cannot run three shards: shard 2 would be probed by nobody.
            (
                resolve(None, Some(3), Some(2), None, "pulse-exporter-0"),
                "but only 2 replicas run (--shard.replicas, PULSE_SHARD_REPLICAS): shard 2 would run nowhere",
            ),
            (
                resolve(None, Some(3), Some(4), None, "pulse-exporter-0"),
                "set the replicas to 3 or 6",
            ),
        ] {
            let e = flags.unwrap_err();
            assert!(e.contains(says), "{e}");
        }
        assert!(Shard::default().owns("x") && !Shard::default().is_split());
    }
}
