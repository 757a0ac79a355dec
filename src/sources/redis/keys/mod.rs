//! Key checks: the length of one key or of every key under a SCAN pattern, key counts by
//! pattern (optionally grouped by a hash field, or of distinct values), and the enqueue time of
//! a queue key's oldest item.
//!
//! This module holds the check's settings, their validation and the probe, which sends a
//! run to `lengths` (sizes of keys, by type) or `count` (keys matching a pattern, by a
//! hash field or of distinct values); `oldest` reads the oldest item of queue keys.

mod count;
mod lengths;
mod oldest;

use std::sync::Arc;

use redis::aio::ConnectionManager;
use serde::Deserialize;
use tokio::time::Instant;

use super::client::{classify, Conn};
use super::default_scan_count;
use super::MAX_SCAN_COUNT;
use crate::config_core::validate::{in_range, label_name, metric_name};
use crate::config_core::{CheckCommon, CheckConfig, ConfigError};
use crate::series::metric::Metric;
use crate::series::run_error::RunError;
use crate::sources::{RunFuture, Runnable};

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

fn default_key_label() -> String {
    "key".to_owned()
}

impl KeyCheck {
    /// What the check publishes: one size (a key), one per key (a pattern), the count of
    /// keys (per `group_by` value), and the oldest item's time.
    pub fn series(&self, common: &CheckCommon) -> Vec<crate::config_core::shape::Series> {
        use crate::config_core::shape::{Pin, Series, Shape};
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
    validate_fields(check, k, errors);
    if let Some(o) = &k.oldest {
        validate_oldest(check, k, o, errors);
    }
}

/// The rules of `group_by` and `distinct`: only with `count`, each naming a hash field, and
/// `group_by` a new label.
fn validate_fields(
    check: &CheckConfig<super::RedisCheck>,
    k: &KeyCheck,
    errors: &mut Vec<ConfigError>,
) {
    let p = &check.path;
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

/// The rules of `oldest:`: a metric of its own, not with `count`, and a field that names one.
fn validate_oldest(
    check: &CheckConfig<super::RedisCheck>,
    k: &KeyCheck,
    o: &Oldest,
    errors: &mut Vec<ConfigError>,
) {
    let p = &check.path;
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

pub(super) struct KeyProbe {
    /// `Some(source)` when publishing the built-in metric, which carries a `source` label.
    pub(super) source: Option<String>,
    pub(super) conn: Arc<Conn>,
    pub(super) metric: String,
    pub(super) help: String,
    pub(super) check: KeyCheck,
    pub(super) max_keys: usize,
}

/// The TYPE of each key, in one pipelined round trip (`none` for a key that is gone).
async fn key_types<K: redis::ToRedisArgs>(
    conn: &mut ConnectionManager,
    keys: &[K],
) -> Result<Vec<String>, RunError> {
    let mut types = redis::pipe();
    for k in keys {
        types.cmd("TYPE").arg(k);
    }
    types.query_async(conn).await.map_err(classify)
}

impl Runnable for KeyProbe {
    fn run(&self, _deadline: Instant) -> RunFuture<'_> {
        Box::pin(async move {
            let mut conn = self.conn.get().await?;
            match (self.check.count, &self.check.pattern) {
                (true, Some(pattern)) => count::run(self, &mut conn, pattern).await,
                _ => lengths::run(self, &mut conn).await,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_oldest_options_are_named_with_their_fix() {
        crate::config::assert_reports(
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
