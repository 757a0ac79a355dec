//! Key checks: the length of one key or of every key under a SCAN pattern, key counts by
//! pattern (optionally grouped by a hash field, or of distinct values), and the enqueue time of
//! a queue key's oldest item.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use redis::aio::ConnectionManager;
use redis::Value as RValue;
use serde::Deserialize;
use tokio::time::Instant;

use super::client::{classify, Conn};
use super::commands::reply_number;
use super::default_scan_count;
use super::scan::{scan, scan_step};
use super::MAX_SCAN_COUNT;
use crate::config::validate::{in_range, label_name, metric_name};
use crate::config::{CheckCommon, CheckConfig, ConfigError};
use crate::error::{ProbeError, Reason};
use crate::metric::Metric;
use crate::sample::{label, Output};
use crate::sources::{Probe, ProbeFuture};

/// The metric of key checks that set none; its key label is the check's `label`.
pub const KEY_LENGTH: Metric = Metric::gauge(
    "pulse_redis_key_length",
    "Length of a Redis key by its type (LLEN, SCARD, ZCARD, XLEN, HLEN, or a numeric string value), cached.",
    &["source", "key"],
)
.doc("Size of a key by type (LLEN, SCARD, ZCARD, XLEN, HLEN, numeric GET), for key checks without a `metric`. Absent keys are absent.")
.doc_labels("`source`, `key` (or the check's `label`)");

/// A key check: the size of one key, or of every key matching a pattern.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyCheck {
    /// An exact key name.
    pub key: Option<String>,
    /// A SCAN `MATCH` pattern such as `ai_queue:*`.
    pub pattern: Option<String>,
    /// Label that carries the key name (default `key`).
    #[serde(default = "default_key_label")]
    pub label: String,
    /// Keys SCAN may return per call (the `COUNT` hint, default 100, at most 100,000).
    #[serde(default = "default_scan_count")]
    pub scan_count: u32,
    /// With `pattern`: publish how many keys match (one sample whose label is the pattern)
    /// instead of one size per key. Needs `metric`. Counting keeps no key names, so it is not
    /// bounded by `max_series`; a key may be counted twice while Redis rehashes.
    #[serde(default)]
    pub count: bool,
    /// With `count`: read this field of every matching hash (HMGET) and count the keys per
    /// value, one sample per value labelled with the field's name (a hash without the field
    /// counts under `unknown`; keys of other types are skipped and counted). For example
    /// WebSocket sessions by `device`.
    #[serde(default)]
    pub group_by: Option<String>,
    /// With `count`: count the distinct values of this field over the matching hashes instead
    /// of the keys (per `group_by` value when both are set). For example distinct `user_id`s
    /// of the open WebSocket sessions: users online, however many devices each has.
    #[serde(default)]
    pub distinct: Option<String>,
    /// Also publish when the oldest job waiting in a queue key was enqueued, the best sign
    /// of work that is not being processed: the lowest score of a sorted set scored by time,
    /// or a time field of the item at the oldest end of a list.
    #[serde(default)]
    pub oldest: Option<Oldest>,
}

/// Where the enqueue time of a queue key's oldest item is, and the metric it goes to.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Oldest {
    /// Metric name for the oldest item's enqueue time, as unix seconds (a name ending in
    /// `_timestamp_seconds`, such as `app_queue_oldest_job_timestamp_seconds`). Labelled like
    /// the key's length; absent while the key is empty or missing.
    pub metric: String,
    /// For lists: the item's JSON field holding the enqueue time (a number, or a numeric
    /// string). Required for lists; sorted sets use their lowest score and take no field.
    #[serde(default)]
    pub field: Option<String>,
    /// For lists: the end holding the oldest item: `head` (index 0, for RPUSH producers and
    /// LPOP consumers; the default) or `tail` (for LPUSH producers and RPOP consumers).
    #[serde(default)]
    pub end: ListEnd,
    /// Unit of the time: `seconds` (default) or `milliseconds`.
    #[serde(default)]
    pub unit: TimeUnit,
}

/// The end of a list that holds its oldest item.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ListEnd {
    /// Index 0 (RPUSH producers, LPOP consumers).
    #[default]
    Head,
    /// Index -1 (LPUSH producers, RPOP consumers).
    Tail,
}

/// Unit of an enqueue time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TimeUnit {
    /// Unix seconds (fractions allowed).
    #[default]
    Seconds,
    /// Unix milliseconds.
    Milliseconds,
}

impl Oldest {
    /// The enqueue time, in unix seconds, that a list item holds in `field`: `None` when the
    /// item is not a JSON object with a numeric (or numeric string) field of that name.
    fn list_item_time(&self, item: &str) -> Option<f64> {
        let field = self.field.as_deref()?;
        let v: serde_json::Value = serde_json::from_str(item).ok()?;
        let t = match &v[field] {
            serde_json::Value::Number(n) => n.as_f64()?,
            serde_json::Value::String(s) => s.trim().parse::<f64>().ok()?,
            _ => return None,
        };
        self.seconds(t)
    }

    /// `t` in unix seconds, or `None` when it is not a plausible time (not finite, or not
    /// positive).
    fn seconds(&self, t: f64) -> Option<f64> {
        let s = match self.unit {
            TimeUnit::Seconds => t,
            TimeUnit::Milliseconds => t / 1000.0,
        };
        (s.is_finite() && s > 0.0).then_some(s)
    }
}

fn default_key_label() -> String {
    "key".to_owned()
}

impl KeyCheck {
    /// What the check publishes: one size (a key), one per key (a pattern), the count of
    /// keys (per `group_by` value), and the oldest item's time.
    pub fn series(&self, common: &CheckCommon) -> Vec<crate::config::shape::Series> {
        use crate::config::shape::{Pin, Series, Shape};
        let metric = common.metric.as_deref().unwrap_or(KEY_LENGTH.name);
        let (labels, pin) = match (&self.key, &self.pattern) {
            (Some(key), _) => (Vec::new(), Pin::exact(&self.label, key)),
            (None, Some(pattern)) if self.count => (
                self.group_by.iter().cloned().collect(),
                Pin::exact(&self.label, pattern),
            ),
            (None, pattern) => (
                vec![self.label.clone()],
                Pin::glob(&self.label, pattern.as_deref().unwrap_or_default()),
            ),
        };
        let mut out = vec![Series::new(metric, labels.clone(), Shape::Gauge).pinned(pin.clone())];
        if let Some(oldest) = &self.oldest {
            out.push(Series::new(&oldest.metric, labels, Shape::Timestamp).pinned(pin));
        }
        out
    }

    /// The key or pattern this check reads.
    pub fn target(&self) -> &str {
        self.key
            .as_deref()
            .or(self.pattern.as_deref())
            .unwrap_or_default()
    }
}

/// Records the rules the key check `check` breaks.
pub(super) fn validate(
    check: &CheckConfig<super::RedisCheck>,
    k: &KeyCheck,
    errors: &mut Vec<ConfigError>,
) {
    let p = &check.path;
    if k.key.is_some() == k.pattern.is_some() {
        errors.push(ConfigError::new(
            p.clone(),
            "set exactly one of `key` (an exact key) or `pattern` (a SCAN pattern)",
        ));
    }
    label_name(&format!("{p}.label"), &k.label, errors);
    if check.common.const_labels.contains_key(&k.label) {
        errors.push(ConfigError::new(
            format!("{p}.label"),
            format!("{:?} is also a const_label: keep one", k.label),
        ));
    }
    if k.count && k.pattern.is_none() {
        errors.push(ConfigError::new(
            format!("{p}.count"),
            "counts the keys matching `pattern`: set `pattern` (or drop `count`)",
        ));
    }
    if k.count && check.common.metric.is_none() {
        errors.push(ConfigError::new(
            format!("{p}.metric"),
            "required with `count: true`: the metric name the key count is published under",
        ));
    }
    in_range(
        &format!("{p}.scan_count"),
        k.scan_count.into(),
        1,
        MAX_SCAN_COUNT,
        errors,
    );
    for (field, value) in [("group_by", &k.group_by), ("distinct", &k.distinct)] {
        if value.is_some() && !k.count {
            errors.push(ConfigError::new(
                format!("{p}.{field}"),
                "reads fields of the hashes matching `pattern` while counting them: set `count: true` (and `pattern`)",
            ));
        }
        if value.as_deref().is_some_and(str::is_empty) {
            errors.push(ConfigError::new(
                format!("{p}.{field}"),
                "must name a hash field",
            ));
        }
    }
    if let Some(o) = &k.oldest {
        metric_name(&format!("{p}.oldest.metric"), &o.metric, errors);
        if k.count {
            errors.push(ConfigError::new(
                format!("{p}.oldest"),
                "reads the oldest item of each key, which `count: true` does not visit: drop one of them",
            ));
        }
        if check.common.metric.as_deref() == Some(o.metric.as_str()) {
            errors.push(ConfigError::new(
                format!("{p}.oldest.metric"),
                "must differ from the check's `metric` (the key length)",
            ));
        }
        if o.field.as_deref().is_some_and(str::is_empty) {
            errors.push(ConfigError::new(
                format!("{p}.oldest.field"),
                "must name the JSON field of a list item that holds its enqueue time",
            ));
        }
    }
    if let Some(g) = &k.group_by {
        // The field's name becomes a label: it must be a valid one, and a new one.
        label_name(&format!("{p}.group_by"), g, errors);
        if g == &k.label || check.common.const_labels.contains_key(g) {
            errors.push(ConfigError::new(
                format!("{p}.group_by"),
                format!(
                    "{g:?} is already a label of this check (`label` or a const_label): rename one"
                ),
            ));
        }
    }
}

pub(super) struct KeyProbe {
    /// `Some(source)` when publishing the built-in metric, which carries a `source` label.
    pub(super) source: Option<String>,
    pub(super) conn: Arc<Conn>,
    pub(super) metric: String,
    pub(super) help: String,
    pub(super) check: KeyCheck,
    pub(super) max_keys: usize,
}

/// Bytes of a string value read to find a number in it: longer values are not numbers.
const MAX_NUMBER_BYTES: usize = 128;

/// The TYPE of each key, in one pipelined round trip (`none` for a key that is gone).
async fn key_types<K: redis::ToRedisArgs>(
    conn: &mut ConnectionManager,
    keys: &[K],
) -> Result<Vec<String>, ProbeError> {
    let mut types = redis::pipe();
    for k in keys {
        types.cmd("TYPE").arg(k);
    }
    types.query_async(conn).await.map_err(classify)
}

impl Probe for KeyProbe {
    fn run(&self, _deadline: Instant) -> ProbeFuture<'_> {
        Box::pin(async move {
            let mut conn = self.conn.get().await?;
            let mut out = Output::default();
            if let (true, Some(p)) = (self.check.count, &self.check.pattern) {
                if self.check.group_by.is_some() || self.check.distinct.is_some() {
                    let named = (self.metric.as_str(), self.help.as_str());
                    return count_fields(&mut conn, &self.check, p, named, self.max_keys).await;
                }
                // max 0: scan keeps no names and reports every match as "beyond".
                let matched = scan(&mut conn, p, self.check.scan_count, 0).await?.beyond;
                out.gauge(
                    &self.metric,
                    &self.help,
                    vec![label(&self.check.label, p.as_str())],
                    matched as f64,
                );
                return Ok(out);
            }
            let keys = match (&self.check.key, &self.check.pattern) {
                (Some(k), _) => vec![k.clone()],
                (None, Some(p)) => {
                    let found = scan(&mut conn, p, self.check.scan_count, self.max_keys).await?;
                    out.dropped = found.beyond;
                    // A name no label can carry: skipped and counted, the rest published.
                    out.skipped += found.unreadable;
                    found.keys
                }
                (None, None) => Vec::new(),
            };
            if keys.is_empty() {
                return Ok(out);
            }
            let kinds = key_types(&mut conn, &keys).await?;
            let mut sizes = redis::pipe();
            let mut measured = Vec::new();
            for (k, t) in keys.iter().zip(&kinds) {
                let cmd = match t.as_str() {
                    "list" => "LLEN",
                    "set" => "SCARD",
                    "zset" => "ZCARD",
                    "stream" => "XLEN",
                    "hash" => "HLEN",
                    // Only the first bytes: a number is short, and a large value under a
                    // pattern (a cached JSON blob) must not be read whole to find it is not one.
                    "string" => "GETRANGE",
                    // The key does not exist: absent, not 0.
                    "none" => continue,
                    // A type with no length we know (a module's, such as ReJSON): skipped
                    // and counted, like a string that is not a number.
                    other => {
                        tracing::debug!(key = %k, r#type = other, "skipping a key of a type without a known length");
                        out.skipped += 1;
                        continue;
                    }
                };
                sizes.cmd(cmd).arg(k);
                if cmd == "GETRANGE" {
                    sizes.arg(0).arg(MAX_NUMBER_BYTES - 1);
                }
                measured.push((k, t.as_str()));
            }
            if measured.is_empty() {
                return Ok(out);
            }
            let replies: Vec<RValue> = sizes.query_async(&mut conn).await.map_err(classify)?;
            let labels_of = |k: &str| {
                let mut labels = Vec::with_capacity(2);
                if let Some(s) = &self.source {
                    labels.push(label("source", s.as_str()));
                }
                labels.push(label(&self.check.label, k));
                labels
            };
            if let Some(oldest) = &self.check.oldest {
                oldest_items(&mut conn, oldest, &measured, &labels_of, &mut out).await?;
            }
            for ((k, _), reply) in measured.into_iter().zip(&replies) {
                match reply_number(reply) {
                    Ok(Some(v)) => {
                        out.gauge(&self.metric, &self.help, labels_of(k), v);
                    }
                    Ok(None) => {}
                    Err(e) if self.check.pattern.is_some() => {
                        tracing::debug!(key = %k, error = %e, "skipping non-numeric key under pattern");
                        out.skipped += 1;
                    }
                    Err(e) => {
                        return Err(ProbeError::new(Reason::Decode, format!("key {k:?}: {e}")))
                    }
                }
            }
            Ok(out)
        })
    }
}

/// Publishes the enqueue time of the oldest item of every measured list or sorted set (one
/// pipelined LINDEX or `ZRANGE 0 0 WITHSCORES` per key). Empty keys have no oldest item and
/// publish nothing; items without a readable time, and keys of other types, are skipped and
/// counted.
async fn oldest_items(
    conn: &mut ConnectionManager,
    oldest: &Oldest,
    measured: &[(&String, &str)],
    labels_of: &impl Fn(&str) -> Vec<(String, String)>,
    out: &mut Output,
) -> Result<(), ProbeError> {
    let mut pipe = redis::pipe();
    let mut asked = Vec::new();
    for (k, t) in measured {
        match (*t, &oldest.field) {
            ("list", Some(_)) => {
                let index = match oldest.end {
                    ListEnd::Head => 0,
                    ListEnd::Tail => -1,
                };
                pipe.cmd("LINDEX").arg(*k).arg(index);
            }
            ("zset", _) => {
                pipe.cmd("ZRANGE").arg(*k).arg(0).arg(0).arg("WITHSCORES");
            }
            _ => {
                tracing::debug!(key = %k, r#type = t, "no oldest item: not a sorted set, or a list without oldest.field");
                out.skipped += 1;
                continue;
            }
        }
        asked.push((*k, *t));
    }
    if asked.is_empty() {
        return Ok(());
    }
    let help = "When the oldest job waiting in the queue was enqueued, as unix seconds (cached); absent while the queue is empty.";
    let replies: Vec<RValue> = pipe.query_async(conn).await.map_err(classify)?;
    for ((k, t), reply) in asked.into_iter().zip(replies) {
        let at = match (t, reply) {
            (_, RValue::Nil) => continue,
            ("list", RValue::BulkString(b)) => oldest.list_item_time(&String::from_utf8_lossy(&b)),
            ("list", RValue::SimpleString(s)) => oldest.list_item_time(&s),
            ("zset", RValue::Array(items)) if items.is_empty() => continue,
            ("zset", RValue::Array(items)) => items
                .get(1)
                .and_then(|score| reply_number(score).ok().flatten())
                .and_then(|v| oldest.seconds(v)),
            _ => None,
        };
        match at {
            Some(at) => out.gauge(&oldest.metric, help, labels_of(k), at),
            None => {
                tracing::debug!(key = %k, "the oldest item holds no readable enqueue time; skipped");
                out.skipped += 1;
            }
        }
    }
    Ok(())
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
) -> Result<Output, ProbeError> {
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

    fn oldest(field: Option<&str>, unit: TimeUnit) -> Oldest {
        Oldest {
            metric: "app_queue_oldest_job_timestamp_seconds".into(),
            field: field.map(str::to_owned),
            end: ListEnd::Head,
            unit,
        }
    }

    #[test]
    fn list_items_give_their_enqueue_time_in_seconds() {
        let o = oldest(Some("enqueued_at"), TimeUnit::Seconds);
        assert_eq!(
            o.list_item_time(r#"{"id": 7, "enqueued_at": 1700000000.5}"#),
            Some(1_700_000_000.5)
        );
        assert_eq!(
            o.list_item_time(r#"{"enqueued_at": " 1700000000 "}"#),
            Some(1_700_000_000.0)
        );
        let ms = oldest(Some("ts"), TimeUnit::Milliseconds);
        assert_eq!(ms.list_item_time(r#"{"ts": 1700000000000}"#), Some(1.7e9));
    }

    #[test]
    fn items_without_a_time_are_not_read_as_one() {
        let o = oldest(Some("enqueued_at"), TimeUnit::Seconds);
        for item in [
            "42",
            "not json",
            r#"{"id": 1}"#,
            r#"{"enqueued_at": "yesterday"}"#,
            r#"{"enqueued_at": -5}"#,
            r#"{"enqueued_at": null}"#,
        ] {
            assert_eq!(o.list_item_time(item), None, "{item}");
        }
        assert_eq!(oldest(None, TimeUnit::Seconds).list_item_time("{}"), None);
        assert_eq!(o.seconds(f64::NAN), None);
    }

    #[test]
    fn bad_oldest_options_are_named_with_their_fix() {
        crate::configfile::assert_reports(
            r#"
sources:
  - name: q
    kind: redis
    url: redis://127.0.0.1:6379
    keys:
      - { key: a, metric: app_depth, oldest: { metric: app_depth } }
      - { pattern: "b:*", count: true, metric: app_count, oldest: { metric: "bad name" } }
      - { key: c, oldest: { metric: app_c_oldest_timestamp_seconds, field: "" } }
"#,
            &[
                "sources[0].keys[0].oldest.metric: must differ from the check's `metric`",
                "sources[0].keys[1].oldest: reads the oldest item of each key",
                "sources[0].keys[1].oldest.metric",
                "sources[0].keys[2].oldest.field: must name the JSON field",
            ],
        );
    }

    #[test]
    fn oldest_options_are_parsed_with_their_defaults() {
        let k: KeyCheck = serde_yaml::from_str(
            "{ key: q, oldest: { metric: app_queue_oldest_job_timestamp_seconds, field: at } }",
        )
        .unwrap();
        let o = k.oldest.unwrap();
        assert_eq!((o.end, o.unit), (ListEnd::Head, TimeUnit::Seconds));
        let bad =
            serde_yaml::from_str::<KeyCheck>("{ key: q, oldest: { metric: m, end: middle } }");
        assert!(bad.unwrap_err().to_string().contains("unknown variant"));
    }
}
