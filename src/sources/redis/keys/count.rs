//! `count: true` on a pattern: how many keys match it, or with `group_by` and/or `distinct`,
//! the matching hashes counted per value of a field, or the distinct values of one.

use std::collections::{BTreeMap, HashSet};

use redis::aio::ConnectionManager;

use super::super::client::classify;
use super::super::scan::{scan, scan_step};
use super::{key_types, KeyCheck, KeyProbe};
use crate::series::run_error::RunError;
use crate::series::sample::{label, Output};

/// The keys matching `pattern`, counted: one sample labelled with the pattern, or one per
/// `group_by` value.
pub(super) async fn run(
    probe: &KeyProbe,
    conn: &mut ConnectionManager,
    pattern: &str,
) -> Result<Output, RunError> {
    let check = &probe.check;
    if check.group_by.is_some() || check.distinct.is_some() {
        let named = (probe.metric.as_str(), probe.help.as_str());
        return count_fields(conn, check, pattern, named, probe.max_keys).await;
    }
    // max 0: scan keeps no names and reports every match as "beyond".
    let matched = scan(conn, pattern, check.scan_count, 0).await?.beyond;
    let mut out = Output::default();
    out.gauge(
        &probe.metric,
        &probe.help,
        vec![label(&check.label, pattern)],
        matched as f64,
    );
    Ok(out)
}

/// Distinct values a `distinct` count remembers per run (as 8-byte digests). Past it the
/// count is a lower bound and further new values are skipped and counted.
const MAX_DISTINCT: usize = 1_000_000;

/// `count` with `group_by` and/or `distinct`: walks the keys matching `pattern` batch by
/// batch (SCAN, then TYPE and HMGET pipelined per batch), so memory grows with the number of
/// groups (at most `max_groups`; keys of further groups are skipped and counted) and of
/// distinct values (8 bytes each, at most [`MAX_DISTINCT`]), never with the number of keys.
/// Like plain counting, a key may be counted twice while Redis rehashes.
async fn count_fields(
    conn: &mut ConnectionManager,
    check: &KeyCheck,
    pattern: &str,
    (metric, help): (&str, &str),
    max_groups: usize,
) -> Result<Output, RunError> {
    let fields: Vec<&str> = check
        .group_by
        .iter()
        .chain(check.distinct.iter())
        .map(String::as_str)
        .collect();
    let mut tally = Tally::new(check, max_groups, MAX_DISTINCT);
    let mut out = Output::default();
    let mut cursor: u64 = 0;
    loop {
        let (next, batch) = scan_step(conn, cursor, pattern, check.scan_count).await?;
        if !batch.is_empty() {
            let kinds = key_types(conn, &batch).await?;
            let hashes = only_hashes(&batch, &kinds, &mut out.skipped);
            if !hashes.is_empty() {
                let mut get = redis::pipe();
                for k in &hashes {
                    get.cmd("HMGET").arg(*k).arg(&fields);
                }
                let got: Vec<Vec<Option<Vec<u8>>>> =
                    get.query_async(conn).await.map_err(classify)?;
                for row in got {
                    // A field value that is not UTF-8 groups under its lossy text rather than
                    // failing the walk.
                    let row = row
                        .into_iter()
                        .map(|v| v.map(|b| String::from_utf8_lossy(&b).into_owned()))
                        .collect();
                    tally.add(row);
                }
            }
        }
        if next == 0 {
            break;
        }
        cursor = next;
    }
    out.skipped += tally.skipped;
    let pattern_label = label(&check.label, pattern);
    for (group, value) in tally.values() {
        let mut labels = vec![pattern_label.clone()];
        if let Some(field) = &check.group_by {
            labels.push(label(field, group.as_str()));
        }
        out.gauge(metric, help, labels, value);
    }
    Ok(out)
}

/// The hashes of a SCAN batch, by the types TYPE answered: a key that expired in between is
/// passed over, one of another type skipped and counted. Keys are bytes here: a hash whose
/// name is not UTF-8 still counts, as no label needs its name.
fn only_hashes<'a>(batch: &'a [Vec<u8>], kinds: &[String], skipped: &mut u64) -> Vec<&'a Vec<u8>> {
    batch
        .iter()
        .zip(kinds)
        .filter(|(k, t)| match t.as_str() {
            "hash" => true,
            // Expired between SCAN and TYPE.
            "none" => false,
            other => {
                tracing::debug!(key = %String::from_utf8_lossy(k), r#type = other, "skipping a key that is not a hash");
                *skipped += 1;
                false
            }
        })
        .map(|(k, _)| k)
        .collect()
}

/// What `count` with `group_by` and/or `distinct` has seen: per group (the one group "" without
/// `group_by`), the keys and digests of the distinct values (a digest instead of the text:
/// users online can be millions), within the caps on groups and distinct values.
struct Tally {
    groups: BTreeMap<String, (u64, HashSet<u64>)>,
    group_by: bool,
    distinct: bool,
    max_groups: usize,
    max_distinct: usize,
    distinct_seen: usize,
    digest: std::collections::hash_map::RandomState,
    /// Keys of groups past the cap, and values past the distinct cap.
    skipped: u64,
}

impl Tally {
    fn new(check: &KeyCheck, max_groups: usize, max_distinct: usize) -> Tally {
        let mut groups = BTreeMap::new();
        if check.group_by.is_none() {
            // One sample even when nothing matches: 0, as plain counting reports it.
            groups.insert(String::new(), Default::default());
        }
        Tally {
            groups,
            group_by: check.group_by.is_some(),
            distinct: check.distinct.is_some(),
            max_groups,
            max_distinct,
            distinct_seen: 0,
            digest: Default::default(),
            skipped: 0,
        }
    }

    /// One hash's fields, as HMGET answered them: the `group_by` field, then the `distinct`
    /// one, each where the check names it. A hash that expired between TYPE and HMGET reads
    /// as one without the fields: at worst one key counted under `unknown`.
    fn add(&mut self, mut row: Vec<Option<String>>) {
        let distinct = match self.distinct {
            true => row.pop().flatten(),
            false => None,
        };
        let group = match self.group_by {
            true => row.pop().flatten().unwrap_or_else(|| "unknown".to_owned()),
            false => String::new(),
        };
        if !self.groups.contains_key(&group) && self.groups.len() >= self.max_groups {
            self.skipped += 1;
            return;
        }
        let (keys, values) = self.groups.entry(group).or_default();
        *keys += 1;
        if let Some(v) = distinct {
            let d = std::hash::BuildHasher::hash_one(&self.digest, &v);
            if !values.contains(&d) {
                if self.distinct_seen < self.max_distinct {
                    values.insert(d);
                    self.distinct_seen += 1;
                } else {
                    self.skipped += 1;
                }
            }
        }
    }

    /// Each group and its value: its distinct values with `distinct`, else its keys.
    fn values(self) -> impl Iterator<Item = (String, f64)> {
        let distinct = self.distinct;
        self.groups.into_iter().map(move |(group, (keys, values))| {
            let value = match distinct {
                true => values.len() as f64,
                false => keys as f64,
            };
            (group, value)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tally_counts_keys_or_distinct_values_per_group_within_its_caps() {
        let check = |yaml: &str| serde_yaml::from_str::<KeyCheck>(yaml).unwrap();
        let row = |v: &[Option<&str>]| v.iter().map(|x| x.map(str::to_owned)).collect();
        // Users online by plan: distinct users per plan, two groups at most, three values.
        let mut t = Tally::new(
            &check("{ pattern: 'session:*', count: true, group_by: plan, distinct: user }"),
            2,
            3,
        );
        t.add(row(&[Some("paid"), Some("u1")]));
        t.add(row(&[Some("paid"), Some("u1")]));
        t.add(row(&[Some("paid"), Some("u2")]));
        // A hash without the field (expired between TYPE and HMGET) is `unknown`.
        t.add(row(&[None, Some("u3")]));
        // A third group is over the cap of two: skipped.
        t.add(row(&[Some("free"), Some("u4")]));
        // A fourth distinct value is over the cap of three: the key counts, the value not.
        t.add(row(&[Some("paid"), Some("u5")]));
        assert_eq!(t.skipped, 2);
        let values: Vec<(String, f64)> = t.values().collect();
        assert_eq!(
            values,
            [("paid".to_owned(), 2.0), ("unknown".to_owned(), 1.0)]
        );
        // Without group_by or distinct: one group, "", counting keys, 0 when nothing matched.
        let t = Tally::new(
            &check("{ pattern: 'k*', count: true, distinct: user }"),
            10,
            10,
        );
        assert_eq!(t.values().collect::<Vec<_>>(), [(String::new(), 0.0)]);
        let mut t = Tally::new(
            &check("{ pattern: 'k*', count: true, group_by: plan }"),
            10,
            10,
        );
        t.add(row(&[Some("paid")]));
        t.add(row(&[Some("paid")]));
        assert_eq!(t.values().collect::<Vec<_>>(), [("paid".to_owned(), 2.0)]);
    }
}
