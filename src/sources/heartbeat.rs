//! Worker heartbeats: who beat when, whether that is recent enough, and remembering workers
//! that stopped so they show as down instead of vanishing the moment they die.
//!
//! Sources read beats their own way (Redis keys or a hash, SQL rows, MongoDB documents) and
//! hand them to a [`Tracker`], which keeps the last beat of every worker across runs: a worker
//! is up while its last beat is younger than `max_age`, down after that, and forgotten once it
//! is older than `forget_after`, even if its key or row is gone (heartbeat keys usually expire).

use crate::sync::MutexExt;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, UNIX_EPOCH};

use serde::Deserialize;

use crate::config_core::validate::label_name;
use crate::config_core::{CheckCommon, ConfigError, Dur};
use crate::series::metric::Metric;
use crate::series::sample::{label, Output};
use crate::series::topn::Largest;

/// Longest attribute value kept as a label: attributes are meant to be bounded (state, instance
/// type, lifecycle), so anything longer is cut rather than allowed to explode cardinality.
pub const MAX_ATTRIBUTE_LEN: usize = 64;

/// The heartbeat section of docs/metrics.md.
pub const SECTION: crate::series::metric::Section = crate::series::metric::Section {
    title: "Worker heartbeats",
    intro: "From `heartbeats:` checks on Redis, Postgres and MongoDB sources. A worker is up \
        while its last beat is younger than `max_age`; a silent worker stays (down) until its \
        last beat is older than `forget_after`, even when its key or row is gone. Malformed \
        values are counted in `pulse_check_values_skipped_total`.",
    metrics: METRICS,
};

/// The worker metrics every heartbeat check publishes, whatever its source kind.
/// `pulse_worker_info` also carries one label per configured attribute.
pub const METRICS: &[Metric] = &[
    LAST_HEARTBEAT,
    WORKER_UP,
    WORKER_INFO,
    POOL_WORKERS,
    POOL_WORKERS_UP,
    POOL_MIN_UP,
];

/// `pulse_worker_last_heartbeat_timestamp_seconds`.
pub const LAST_HEARTBEAT: Metric = Metric::gauge(
    "pulse_worker_last_heartbeat_timestamp_seconds",
    "When the worker last beat.",
    &["source", "pool", "worker"],
)
.doc("When the worker last beat.");
const WORKER_UP: Metric = Metric::gauge(
    "pulse_worker_up",
    "Whether the worker's last heartbeat is within max_age (1) or older (0; shown until forget_after).",
    &["source", "pool", "worker"],
)
.doc("1 if the last beat is within `max_age`, else 0.");
const WORKER_INFO: Metric = Metric::gauge(
    "pulse_worker_info",
    "Always 1; the worker's reported attributes as labels.",
    &["source", "pool", "worker"],
)
.doc("Always 1; reported attributes (e.g. `state`, `instance_type`, `lifecycle`) as labels, cut to 64 characters. Present when `attributes` are configured.")
.doc_labels("`source`, `pool`, `worker`, one per configured attribute");
const POOL_WORKERS: Metric = Metric::gauge(
    "pulse_worker_pool_workers",
    "Workers known in the pool (beating, or silent for less than forget_after).",
    &["source", "pool"],
)
.doc("Workers known in the pool.");
/// `pulse_worker_pool_workers_up`.
pub const POOL_WORKERS_UP: Metric = Metric::gauge(
    "pulse_worker_pool_workers_up",
    "Workers in the pool whose last heartbeat is within max_age.",
    &["source", "pool"],
)
.doc("Workers in the pool that are up.");
const POOL_MIN_UP: Metric = Metric::gauge(
    "pulse_worker_pool_min_up",
    "Fewest workers the pool needs up, as configured (min_up); 0 means it may scale to zero.",
    &["source", "pool"],
)
.doc("The check's `min_up`: fewest workers the pool needs up (0: it may scale to zero). Present when configured.");

/// Settings every heartbeat check has, whatever the source.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatCommon {
    /// The `pool` label (e.g. `gpu`, `cpu`).
    pub pool: String,
    /// A worker is up while its last beat is younger than this (default 2m).
    #[serde(default = "default_max_age")]
    pub max_age: Dur,
    /// A silent worker is shown as down until its last beat is this old, then forgotten
    /// (default 24h).
    #[serde(default = "default_forget_after")]
    pub forget_after: Dur,
    /// Attributes published as labels of `pulse_worker_info` (e.g. state, instance_type,
    /// lifecycle).
    #[serde(default)]
    pub attributes: Vec<String>,
    /// Fewest workers the pool needs up (published as `pulse_worker_pool_min_up`): the
    /// alerts warn below it and page when none is up; `0` declares a pool that may scale to
    /// zero. Unset: no minimum is published, and only a pool with no worker up alerts.
    #[serde(default)]
    pub min_up: Option<u32>,
    /// Most workers remembered (default 10,000, at most 1,000,000): past it the workers that
    /// beat longest ago are forgotten first and counted in
    /// `pulse_check_series_dropped_total`, so ids that churn (one per job or pod) cannot grow
    /// the exporter's memory without bound.
    #[serde(default = "default_max_workers")]
    pub max_workers: usize,
}

fn default_max_workers() -> usize {
    10_000
}

fn default_max_age() -> Dur {
    Dur(Duration::from_secs(120))
}

fn default_forget_after() -> Dur {
    Dur(Duration::from_secs(24 * 3600))
}

impl crate::config_core::FieldSet for HeartbeatCommon {
    const KEYS: &'static [&'static str] = &[
        "pool",
        "max_age",
        "forget_after",
        "attributes",
        "min_up",
        "max_workers",
    ];
}

impl HeartbeatCommon {
    /// What a heartbeat check publishes: the pool's workers.
    pub fn series(&self) -> Vec<crate::config_core::shape::Series> {
        use crate::config_core::shape::{Pin, Series, Shape};
        let workers = Shape::Workers {
            pool: self.pool.clone(),
        };
        vec![
            Series::new(WORKER_UP.name, vec!["worker".to_owned()], workers)
                .pinned(Pin::exact("pool", &self.pool)),
        ]
    }

    /// The check name of a heartbeat check that sets none: `heartbeat:<pool>`.
    pub fn default_name(&self) -> String {
        format!("heartbeat:{}", self.pool)
    }

    /// Records the rules a heartbeat check at `path` with these settings breaks, including a
    /// `metric` it may not set.
    pub fn validate_check(&self, path: &str, common: &CheckCommon, errors: &mut Vec<ConfigError>) {
        self.validate(path, &common.const_labels, errors);
        if common.metric.is_some() {
            errors.push(ConfigError::new(
                format!("{path}.metric"),
                "heartbeat checks publish the pulse_worker_* metrics: remove `metric`",
            ));
        }
    }

    /// Records the rules these settings break.
    pub fn validate(
        &self,
        path: &str,
        const_labels: &std::collections::BTreeMap<String, String>,
        errors: &mut Vec<ConfigError>,
    ) {
        if !crate::config_core::names::is_object_name(&self.pool) {
            errors.push(ConfigError::new(
                format!("{path}.pool"),
                "use 1-64 characters of letters, digits, `_`, `.`, `:` or `-`",
            ));
        }
        crate::config_core::validate::in_range(
            &format!("{path}.max_workers"),
            self.max_workers as u64,
            1,
            1_000_000,
            errors,
        );
        if self.forget_after <= self.max_age {
            errors.push(ConfigError::new(format!("{path}.forget_after"), "must be longer than max_age, or dead workers would vanish instead of showing as down"));
        }
        for name in const_labels.keys() {
            if name == "pool" || name == "worker" || self.attributes.contains(name) {
                errors.push(ConfigError::new(
                    format!("{path}.const_labels"),
                    format!("{name:?} is already a label of worker metrics"),
                ));
            }
        }
        for (i, a) in self.attributes.iter().enumerate() {
            label_name(&format!("{path}.attributes[{i}]"), a, errors);
            if matches!(a.as_str(), "pool" | "worker") {
                errors.push(ConfigError::new(
                    format!("{path}.attributes[{i}]"),
                    format!("{a:?} is already a label of worker metrics"),
                ));
            }
        }
    }
}

/// Forgets the workers that beat longest ago until at most `cap` remain; returns how many.
fn forget_oldest(known: &mut HashMap<String, Beat>, cap: usize) -> u64 {
    let excess = known.len().saturating_sub(cap);
    if excess == 0 {
        return 0;
    }
    let mut by_age: Vec<(f64, String)> = known.values().map(|b| (b.at, b.worker.clone())).collect();
    by_age.sort_by(|a, b| a.0.total_cmp(&b.0));
    for (_, worker) in by_age.into_iter().take(excess) {
        known.remove(&worker);
    }
    excess as u64
}

/// One heartbeat as a source read it.
#[derive(Debug, Clone, PartialEq)]
pub struct Beat {
    /// Worker name.
    pub worker: String,
    /// When it beat, in unix seconds.
    pub at: f64,
    /// Attribute values by name (only the configured ones are kept).
    pub attributes: BTreeMap<String, String>,
}

/// The newest beats of one run, at most `max` of them. A source that reads rows or documents
/// (Postgres, MongoDB) hands each beat here as it arrives, so a run over millions of worker
/// rows holds only what the tracker would keep anyway (it forgets the oldest first); the rest
/// are counted as dropped.
#[derive(Debug)]
pub struct NewestBeats {
    newest: Largest<Beat>,
    dropped: u64,
    truncated: u64,
    malformed: u64,
    /// The first worker whose beat could not be read, for the log line.
    example: Option<String>,
}

/// Cuts a beat's worker id and attribute values to the label value limit before it is kept
/// (a worker id of a megabyte would otherwise be held as long as the worker is known);
/// returns how many were cut.
fn bound(beat: &mut Beat) -> u64 {
    let cut = |v: &mut String| u64::from(crate::series::sample::truncate_label_value(v));
    cut(&mut beat.worker) + beat.attributes.values_mut().map(cut).sum::<u64>()
}

impl NewestBeats {
    /// Keeps at most `max` beats (a check's `max_workers`).
    pub fn new(max: usize) -> Self {
        NewestBeats {
            newest: Largest::new(max),
            dropped: 0,
            truncated: 0,
            malformed: 0,
            example: None,
        }
    }

    /// Counts a beat of `worker` that could not be read (no time, or not a time).
    pub fn malformed(&mut self, worker: String) {
        self.malformed += 1;
        self.example.get_or_insert(worker);
    }

    /// Takes one beat, dropping the oldest kept one when full.
    pub fn push(&mut self, mut beat: Beat) {
        self.truncated += bound(&mut beat);
        if self.newest.push(beat.at, beat).is_some() {
            self.dropped += 1;
        }
    }

    /// The kept beats, how many were dropped and how many values were cut.
    pub fn finish(self) -> (Vec<Beat>, u64, u64) {
        (self.newest.into_sorted(), self.dropped, self.truncated)
    }
}

/// The earliest beat taken as a time (2000-01-01T00:00:00Z): anything before is a zero, a
/// default or a unit mix-up, not a worker that was last seen then.
pub const EARLIEST_BEAT: f64 = 946_684_800.0;

/// A timestamp value as unix seconds: seconds, milliseconds (numbers above 10^11), or
/// RFC 3339 text with any offset (`Z`, `+00:00`, `-05:00`, `+05:30`), or without one (UTC).
pub fn parse_time(text: &str) -> Option<f64> {
    let t = text.trim();
    if let Ok(n) = t.parse::<f64>() {
        return (n.is_finite() && n > 0.0).then(|| if n > 1e11 { n / 1000.0 } else { n });
    }
    if let Ok(at) = chrono::DateTime::parse_from_rfc3339(t) {
        return Some(at.timestamp_micros() as f64 / 1e6);
    }
    humantime::parse_rfc3339_weak(t)
        .ok()
        .and_then(|st| st.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_secs_f64())
}

/// Reads a heartbeat value: a timestamp, or a JSON object with `ts` (or `timestamp`,
/// `last_seen`) and attribute fields. `None` when it is neither.
pub fn parse_value(worker: &str, raw: &str, attributes: &[String]) -> Option<Beat> {
    if let Some(at) = parse_time(raw) {
        return Some(Beat {
            worker: worker.to_owned(),
            at,
            attributes: BTreeMap::new(),
        });
    }
    let json: serde_json::Value = serde_json::from_str(raw).ok()?;
    let ts = ["ts", "timestamp", "last_seen"]
        .iter()
        .find_map(|k| match &json[*k] {
            serde_json::Value::Number(n) => n.as_f64().and_then(|v| parse_time(&v.to_string())),
            serde_json::Value::String(s) => parse_time(s),
            _ => None,
        })?;
    let attrs = attributes
        .iter()
        .filter_map(|a| {
            let v = match &json[a.as_str()] {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Null => return None,
                other => other.to_string(),
            };
            Some((a.clone(), v))
        })
        .collect();
    Some(Beat {
        worker: worker.to_owned(),
        at: ts,
        attributes: attrs,
    })
}

/// The memory of one heartbeat check across runs.
#[derive(Debug, Default)]
pub struct Tracker {
    known: Mutex<HashMap<String, Beat>>,
    last_malformed: Mutex<u64>,
}

impl Tracker {
    /// [`Tracker::update`] with the beats a run kept in [`NewestBeats`]; those it dropped
    /// count as dropped series, those it could not read as malformed.
    pub fn update_newest(&self, source: &str, hb: &HeartbeatCommon, beats: NewestBeats) -> Output {
        let (malformed, example) = (beats.malformed, beats.example.clone());
        let (beats, dropped, truncated) = beats.finish();
        let mut out = self.update(source, hb, beats, malformed, example.as_deref());
        out.dropped += dropped;
        out.truncated += truncated;
        out
    }

    /// Merges this run's beats (and the count of values that could not be read) into what is
    /// known, forgets workers older than `forget_after`, and returns the samples.
    pub fn update(
        &self,
        source: &str,
        hb: &HeartbeatCommon,
        beats: Vec<Beat>,
        malformed: u64,
        example: Option<&str>,
    ) -> Output {
        let now = crate::series::sample::unix_now();
        let mut known = self.known.locked();
        // A beat from the future (clock skew, or a unit mix-up such as microseconds) would
        // keep a worker up forever, and one before 2000 (a zero, `-infinity`) would hide it
        // silently: both are malformed, like text that is not a time.
        let horizon = now + hb.max_age.0.as_secs_f64();
        let (beats, future): (Vec<Beat>, Vec<Beat>) = beats
            .into_iter()
            .partition(|b| b.at <= horizon && b.at >= EARLIEST_BEAT);
        let malformed = malformed + future.len() as u64;
        let example = example.or(future.first().map(|b| b.worker.as_str()));
        let mut truncated = 0;
        for mut beat in beats {
            truncated += bound(&mut beat);
            // A stale value read after a newer one (e.g. from a lagging replica) never rolls back.
            if known.get(&beat.worker).is_none_or(|k| k.at <= beat.at) {
                known.insert(beat.worker.clone(), beat);
            }
        }
        known.retain(|_, b| now - b.at <= hb.forget_after.0.as_secs_f64());
        let forgotten = forget_oldest(&mut known, hb.max_workers);
        self.warn_malformed(source, hb, malformed, example);
        let mut out = Output {
            skipped: malformed,
            dropped: forgotten,
            truncated,
            ..Output::default()
        };
        publish(&mut out, source, hb, &known, now);
        out
    }

    /// Warns once per change of the count of malformed beats, not at every run.
    fn warn_malformed(
        &self,
        source: &str,
        hb: &HeartbeatCommon,
        malformed: u64,
        example: Option<&str>,
    ) {
        let mut last = self.last_malformed.locked();
        if malformed > 0 && malformed != *last {
            tracing::warn!(source, pool = %hb.pool, malformed, example = example.unwrap_or(""), "heartbeat values that are neither a timestamp nor JSON with a ts field were skipped");
        }
        *last = malformed;
    }
}

/// The pool's totals, then each remembered worker's last beat, up and attributes, by name.
fn publish(
    out: &mut Output,
    source: &str,
    hb: &HeartbeatCommon,
    known: &HashMap<String, Beat>,
    now: f64,
) {
    let mut workers: Vec<&Beat> = known.values().collect();
    workers.sort_by(|a, b| a.worker.cmp(&b.worker));
    let is_up = |b: &Beat| now - b.at <= hb.max_age.0.as_secs_f64();
    let up_count = workers.iter().filter(|b| is_up(b)).count();
    // Pool totals first: the series cap keeps the first series, and these must survive it.
    let pool = [source, hb.pool.as_str()];
    out.add(&POOL_WORKERS, &pool, workers.len() as f64);
    out.add(&POOL_WORKERS_UP, &pool, up_count as f64);
    if let Some(min) = hb.min_up {
        out.add(&POOL_MIN_UP, &pool, f64::from(min));
    }
    for b in &workers {
        let worker = [source, hb.pool.as_str(), b.worker.as_str()];
        out.add(&LAST_HEARTBEAT, &worker, b.at);
        out.add(&WORKER_UP, &worker, f64::from(u8::from(is_up(b))));
        if !hb.attributes.is_empty() {
            let mut l = vec![
                label("source", source),
                label("pool", hb.pool.as_str()),
                label("worker", b.worker.as_str()),
            ];
            for a in &hb.attributes {
                let v: String = b
                    .attributes
                    .get(a)
                    .map(String::as_str)
                    .unwrap_or("")
                    .chars()
                    .take(MAX_ATTRIBUTE_LEN)
                    .collect();
                l.push(label(a, v));
            }
            out.gauge(WORKER_INFO.name, WORKER_INFO.help, l, 1.0);
        }
    }
}

/// RFC 3339 texts of one instant (2024-03-01T12:00:00Z) with the offsets seen in practice.
#[cfg(test)]
const RFC3339_OFFSETS: [(&str, f64); 5] = [
    ("2024-03-01T12:00:00Z", 1_709_294_400.0),
    ("2024-03-01T12:00:00+00:00", 1_709_294_400.0),
    ("2024-03-01T07:00:00-05:00", 1_709_294_400.0),
    ("2024-03-01T17:30:00.000+05:30", 1_709_294_400.0),
    ("2024-03-01 12:00:00", 1_709_294_400.0),
];

/// Refuses on a heartbeat check the fields of a check that publishes a metric of its own: a
/// heartbeat check names none, so it takes no unit, panel, series cap, alert or drop.
pub fn refuse_metric_fields(path: &str, common: &CheckCommon, errors: &mut Vec<ConfigError>) {
    const SHOWN: &str = "a heartbeat check is shown by its pool's worker table, which has its own units: remove this field";
    const ALERTED: &str = "a heartbeat check publishes no metric of its own to compare: its pool is alerted on by `min_up` (PulseWorkerPoolBelowMinimum)";
    const BOUNDED: &str = "a heartbeat check is bounded by `max_workers` (workers kept, the rest counted as dropped): set that instead";
    for (field, set, why) in [
        ("unit", common.unit.is_some(), SHOWN),
        ("panel", common.panel.is_some(), SHOWN),
        ("max_series", common.max_series.is_some(), BOUNDED),
        ("alert", common.alert.is_some(), ALERTED),
        ("drop", common.drop.is_some(), ALERTED),
    ] {
        if set {
            errors.push(ConfigError::new(format!("{path}.{field}"), why));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pool whose workers are up for a minute and forgotten after ten.
    fn pool(name: &str, min_up: Option<u32>, max_workers: usize) -> HeartbeatCommon {
        HeartbeatCommon {
            pool: name.into(),
            max_age: Dur(Duration::from_secs(60)),
            forget_after: Dur(Duration::from_secs(600)),
            attributes: vec![],
            min_up,
            max_workers,
        }
    }

    #[test]
    fn a_run_keeps_only_its_newest_beats_and_counts_the_rest() {
        let mut newest = NewestBeats::new(2);
        for (w, at) in [("a", 5.0), ("b", 1.0), ("c", 9.0), ("d", 3.0)] {
            newest.push(Beat {
                worker: w.to_owned(),
                at,
                attributes: BTreeMap::new(),
            });
        }
        let (beats, dropped, _) = newest.finish();
        let mut kept: Vec<&str> = beats.iter().map(|b| b.worker.as_str()).collect();
        kept.sort();
        assert_eq!(kept, ["a", "c"]);
        assert_eq!(dropped, 2);
    }

    #[test]
    fn workers_beyond_max_workers_are_the_only_drops_of_a_heartbeat_check() {
        // The store's max_series cap would drop some of the kept workers' series and count
        // them again on top of the workers forgotten: a heartbeat check has no such cap.
        let c = crate::config::load_str(
            "sources:\n  - { name: q, kind: redis, url: 'redis://h', heartbeats: [{ pool: p, pattern: 'w:*', max_workers: 5000 }], keys: [{ key: k, metric: app_k }] }",
        )
        .unwrap();
        let s = &c.sources[0];
        let caps: Vec<(String, usize)> = s
            .plans
            .checks
            .iter()
            .map(|plan| (plan.check.clone(), plan.max_series))
            .collect();
        assert!(
            caps.contains(&("heartbeat:p".to_owned(), usize::MAX)),
            "{caps:?}"
        );
        assert!(caps.contains(&("k".to_owned(), 1000)), "{caps:?}");
    }

    #[test]
    fn bad_heartbeat_settings_are_named_with_their_fix() {
        crate::config::assert_reports(
            r#"
sources:
  - name: q
    kind: redis
    url: redis://127.0.0.1
    heartbeats:
      - pool: "gpu pool"
        pattern: "w:*"
        max_age: 5m
        forget_after: 5m
        attributes: [state, worker, "bad-attr"]
        const_labels: { pool: x }
        max_series: 10
"#,
            &[
                "sources[0].heartbeats[0].pool: use 1-64 characters",
                "sources[0].heartbeats[0].max_series: a heartbeat check is bounded by `max_workers`",
                "sources[0].heartbeats[0].forget_after: must be longer than max_age",
                "sources[0].heartbeats[0].const_labels: \"pool\" is already a label of worker metrics",
                "sources[0].heartbeats[0].attributes[1]: \"worker\" is already a label of worker metrics",
                "sources[0].heartbeats[0].attributes[2]: \"bad-attr\" is not a valid Prometheus label name",
            ],
        );
        // A field of neither part is named with both parts' fields.
        crate::config::assert_reports(
            "sources:\n  - { name: q, kind: redis, url: 'redis://h', heartbeats: [{ pool: p, pattern: 'w:*', max_agee: 1m }] }",
            &["sources[0].heartbeats[0].max_agee: unknown field `max_agee`", "or one of `pool`, `max_age`"],
        );
    }

    #[test]
    fn values_are_timestamps_or_json() {
        let attrs = vec!["state".to_owned(), "lifecycle".to_owned()];
        assert_eq!(
            parse_value("w", "1700000000", &attrs).unwrap().at,
            1_700_000_000.0
        );
        assert_eq!(
            parse_value("w", "1700000000500", &attrs).unwrap().at,
            1_700_000_000.5
        );
        assert_eq!(
            parse_value("w", "2023-11-14T22:13:20Z", &attrs).unwrap().at,
            1_700_000_000.0
        );
        let b = parse_value(
            "w",
            r#"{"ts": 1700000000, "state": "active", "lifecycle": "spot", "other": 1}"#,
            &attrs,
        )
        .unwrap();
        assert_eq!(
            b.attributes.get("lifecycle").map(String::as_str),
            Some("spot")
        );
        assert_eq!(b.attributes.len(), 2);
        assert!(parse_value("w", "not a beat", &attrs).is_none());
        assert!(parse_value("w", r#"{"state": "active"}"#, &attrs).is_none());
    }

    /// `pulse_worker_up` by worker.
    fn worker_up(out: &Output) -> BTreeMap<String, f64> {
        out.families
            .iter()
            .find(|f| f.name == "pulse_worker_up")
            .unwrap()
            .samples
            .iter()
            .map(|s| (s.labels[2].1.clone(), s.value))
            .collect()
    }

    #[test]
    fn churning_worker_ids_are_capped_oldest_first_and_counted() {
        let hb: HeartbeatCommon =
            serde_yaml::from_str("{ pool: jobs, forget_after: 24h, max_workers: 3 }").unwrap();
        let now = crate::series::sample::unix_now();
        let t = Tracker::default();
        // One id per job: ten runs, ten new workers, each a second younger than the last.
        let mut out = Output::default();
        for i in 0..10 {
            let b = Beat {
                worker: format!("job-{i}"),
                at: now - 10.0 + f64::from(i),
                attributes: BTreeMap::new(),
            };
            out = t.update("s", &hb, vec![b], 0, None);
        }
        let workers: Vec<String> = worker_up(&out).into_keys().collect();
        assert_eq!(workers, ["job-7", "job-8", "job-9"], "the newest are kept");
        assert_eq!(out.dropped, 1, "each run forgets one, counted");
        assert_eq!(t.known.lock().unwrap().len(), 3);
    }

    #[test]
    fn silent_workers_stay_down_until_forgotten() {
        let hb = pool("gpu", Some(2), 10_000);
        let now = crate::series::sample::unix_now();
        let t = Tracker::default();
        let beat = |w: &str, age: f64| Beat {
            worker: w.into(),
            at: now - age,
            attributes: BTreeMap::new(),
        };
        t.update(
            "s",
            &hb,
            vec![
                beat("fresh", 1.0),
                beat("silent", 120.0),
                beat("ancient", 700.0),
            ],
            0,
            None,
        );
        // Next run: "silent" no longer reported at all (its key expired) but is remembered.
        let out = t.update("s", &hb, vec![beat("fresh", 0.0)], 1, Some("bad"));
        let up = worker_up(&out);
        assert_eq!(
            up,
            BTreeMap::from([("fresh".to_owned(), 1.0), ("silent".to_owned(), 0.0)])
        );
        assert_eq!(out.skipped, 1);
        // Pool totals come first, so a series cap never drops them.
        assert_eq!(out.families[0].name, "pulse_worker_pool_workers");
        let pool = |name: &str| out.value(name, "");
        assert_eq!(pool("pulse_worker_pool_workers_up"), Some(1.0));
        assert_eq!(pool("pulse_worker_pool_min_up"), Some(2.0));
        // A beat from the future is malformed, not a worker that is up forever; one from
        // 1970 or -infinity is malformed, not a worker silently forgotten.
        let out = t.update("s", &hb, vec![beat("time-traveller", -3600.0)], 0, None);
        assert_eq!(out.skipped, 1);
        let ancient = vec![beat("zero", now), beat("minus", f64::INFINITY)];
        assert_eq!(t.update("s", &hb, ancient, 0, None).skipped, 2);
        assert!(RFC3339_OFFSETS
            .iter()
            .all(|(text, at)| parse_time(text) == Some(*at)));
        assert!(out.families.iter().all(|f| f
            .samples
            .iter()
            .all(|s| s.labels.iter().all(|(_, v)| v != "time-traveller"))));
    }

    #[test]
    fn unreadable_beats_of_a_run_are_skipped_and_counted_beside_the_kept_ones() {
        let hb = pool("p", None, 1);
        let now = crate::series::sample::unix_now();
        let mut beats = NewestBeats::new(1);
        for (w, age) in [("old", 30.0), ("new", 1.0)] {
            beats.push(Beat {
                worker: w.into(),
                at: now - age,
                attributes: BTreeMap::new(),
            });
        }
        beats.malformed("no-time".into());
        beats.malformed("bad-time".into());
        let out = Tracker::default().update_newest("s", &hb, beats);
        assert_eq!(out.skipped, 2, "both unreadable beats");
        assert_eq!(out.dropped, 1, "the older beat past max_workers");
        assert_eq!(worker_up(&out), BTreeMap::from([("new".to_owned(), 1.0)]));
    }
}
