//! The built-in `load` check of a MongoDB source (`load: true`): what the server's operations
//! are doing right now, sampled from `$currentOp` every second, as Postgres's `load` samples
//! `pg_stat_activity`.
//!
//! Each sample reads the active client operations (never idle connections, never the
//! exporter's own, never a driver's awaitable `hello` or a tailing cursor waiting for data)
//! and adds, per operation, the time since the previous sample to
//! `pulse_mongodb_load_active_seconds_total` by namespace and wait: `lock`
//! (`waitingForLock`), `flow_control` (`waitingForFlowControl`), `latch` (`waitingForLatch`,
//! where the server reports it) or `CPU`. `rate()` over any window is the average number of
//! active operations. The operations waiting for a lock in the sample are counted by
//! namespace with how long the longest has run.
//!
//! Off by default: it needs the `inprog` privilege (`clusterMonitor`) to see other users'
//! operations, and has met the `$currentOp` shapes of MongoDB 7.0 and 8.0 as documented
//! (the fixtures of `tests/fixtures/mongodb`), not yet a live server. A server that refuses
//! `$currentOp` leaves the check not measured, with the reason.

use std::collections::HashMap;
use std::time::{Duration, Instant as StdInstant};

use mongodb::bson::{self, Bson, Document};
use serde::Deserialize;
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::client::{classify, Shared};
use super::decode::number;
use crate::config_core::validate::{in_range, sampler_timing};
use crate::config_core::{ConfigError, Dur};
use crate::series::metric::Metric;
use crate::series::sample::Output;
use crate::series::topn::Largest;
use crate::sources::bounded::Bounded;
use crate::sources::{RunFuture, Runnable};

/// The name of the built-in check.
pub const CHECK: &str = "load";

/// `load:` of a MongoDB source: the active operations sampled from `$currentOp`. Off by
/// default; `true` or a mapping turns it on.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct MongoLoadSettings {
    /// How often a sample is taken (default 1s; 1s to 1m).
    pub interval: Dur,
    /// How long one sample may take before it is abandoned, on the server too
    /// (`maxTimeMS`; default 800ms; shorter than the interval).
    pub timeout: Dur,
    /// Operations a sample reads at most (default 1000; 10 to 100000); a sample that
    /// reaches it is counted in `pulse_mongodb_load_samples_capped_total`.
    pub max_operations: usize,
    /// Namespaces with series of their own in the load (default 30; 1 to 200); the rest
    /// count in `namespace="other"`.
    pub top_namespaces: usize,
    /// Namespaces published with operations waiting for a lock (default 5; 1 to 50).
    pub top_lock_waits: usize,
}

impl Default for MongoLoadSettings {
    fn default() -> Self {
        MongoLoadSettings {
            interval: Dur(Duration::from_secs(1)),
            timeout: Dur(Duration::from_millis(800)),
            max_operations: 1000,
            top_namespaces: 30,
            top_lock_waits: 5,
        }
    }
}

impl MongoLoadSettings {
    /// Records what is wrong with these settings, at `path`.
    pub fn validate(&self, path: &str, errors: &mut Vec<ConfigError>) {
        sampler_timing(path, self.interval.0, self.timeout.0, errors);
        let p = |f: &str| format!("{path}.{f}");
        in_range(
            &p("max_operations"),
            self.max_operations as u64,
            10,
            100_000,
            errors,
        );
        in_range(
            &p("top_namespaces"),
            self.top_namespaces as u64,
            1,
            200,
            errors,
        );
        in_range(
            &p("top_lock_waits"),
            self.top_lock_waits as u64,
            1,
            50,
            errors,
        );
    }
}

pub(super) const ACTIVE_SECONDS: Metric = Metric::counter(
    "pulse_mongodb_load_active_seconds_total",
    "Active-operation seconds sampled from $currentOp, by namespace and wait (lock, flow_control, latch, or CPU): rate() is the average active operations.",
    &["source", "namespace", "wait"],
)
.doc("With `load: true`, `$currentOp` is sampled every `load.interval` (1s) and each active client operation adds the time since the previous sample: `rate()` over any window is the average number of active operations, by namespace (`database.collection`) and what it waits for: `lock` (`waitingForLock`), `flow_control` (`waitingForFlowControl`, the primary throttling writes for lagging secondaries), `latch` (`waitingForLatch`) or `CPU` (none). Past `load.top_namespaces` namespaces the rest count in `namespace=\"other\"`.");
pub(super) const SAMPLES: Metric = Metric::counter(
    "pulse_mongodb_load_samples_total",
    "Samples of $currentOp taken by the load check.",
    &["source"],
)
.doc("Samples of `$currentOp` the `load` check took: its rate is one a `load.interval` while the server answers.");
pub(super) const SAMPLES_CAPPED: Metric = Metric::counter(
    "pulse_mongodb_load_samples_capped_total",
    "Samples of $currentOp that reached load.max_operations: their load is a floor.",
    &["source"],
)
.doc("Samples that read `load.max_operations` operations (1000): the operations past it count nowhere, so the load of those samples is a floor.");
pub(super) const LOCK_WAITING: Metric = Metric::gauge(
    "pulse_mongodb_load_lock_waiting_operations",
    "Operations waiting for a lock in the last sample, by namespace.",
    &["source", "namespace"],
)
.doc("Operations of the last sample waiting for a lock (`waitingForLock`), by namespace, for the `load.top_lock_waits` namespaces with the most; absent while none waits. `$currentOp` does not name the holder: the namespace's other operations do (an index build, a `collMod`, a long multi-document transaction).");
pub(super) const LOCK_WAITING_LONGEST: Metric = Metric::gauge(
    "pulse_mongodb_load_lock_waiting_longest_seconds",
    "How long the longest-running operation waiting for a lock in the last sample has run, by namespace.",
    &["source", "namespace"],
)
.doc("For the namespaces of `pulse_mongodb_load_lock_waiting_operations`, how long the longest-running of its waiting operations has run (`microsecs_running`).");

/// What marks this probe's own `$currentOp`, so it never counts itself.
const OWN_COMMENT: &str = "pulse-exporter load";

/// What an operation waits for, as the `wait` label names it.
fn wait_of(op: &Document) -> &'static str {
    let flag = |f: &str| op.get_bool(f).unwrap_or(false);
    if flag("waitingForLock") {
        "lock"
    } else if flag("waitingForFlowControl") {
        "flow_control"
    } else if matches!(op.get("waitingForLatch"), Some(Bson::Document(_))) {
        "latch"
    } else {
        "CPU"
    }
}

/// Whether `op` is a client's operation doing work: active, from a client connection, not
/// the exporter's, not a driver's awaitable `hello` (namespace `admin.$cmd`) and not a tailing
/// cursor waiting for data (a change stream, a secondary's oplog reader).
pub(super) fn counts(op: &Document) -> bool {
    let from_client = op.contains_key("client") || op.contains_key("client_s");
    let ns = op.get_str("ns").unwrap_or("");
    let own = op
        .get_document("command")
        .ok()
        .and_then(|c| c.get_str("comment").ok())
        == Some(OWN_COMMENT);
    let awaiting = op
        .get_document("cursor")
        .ok()
        .and_then(|c| c.get_bool("awaitData").ok())
        == Some(true);
    op.get_bool("active").unwrap_or(false)
        && from_client
        && !ns.is_empty()
        && ns != "admin.$cmd"
        && !own
        && !awaiting
}

/// What the probe keeps between samples.
#[derive(Debug)]
pub(super) struct LoadState {
    last: Option<StdInstant>,
    active: Bounded<(String, String)>,
    samples: u64,
    capped: u64,
    /// Whether the refusal of `$currentOp` was logged.
    logged: bool,
}

impl LoadState {
    /// The state of a new sampler: `other` on CPU is published at 0 from the first sample,
    /// so an idle server shows no load rather than no data.
    pub(super) fn new(settings: &MongoLoadSettings) -> Self {
        LoadState {
            last: None,
            active: Bounded::new(
                settings.top_namespaces,
                vec![("other".to_owned(), "CPU".to_owned())],
            ),
            samples: 0,
            capped: 0,
            logged: false,
        }
    }
}

/// Adds one sample of `ops` (the counted ones), `dt` seconds after the previous one.
pub(super) fn accumulate(state: &mut LoadState, ops: &[&Document], dt: f64, now: StdInstant) {
    state.samples += 1;
    if dt > 0.0 {
        let other = "other".to_owned();
        for op in ops {
            let ns = op.get_str("ns").unwrap_or("").to_owned();
            let wait = wait_of(op).to_owned();
            state.active.add(
                (ns, wait.clone()),
                &[(other.clone(), wait), (other.clone(), other.clone())],
                dt,
                now,
            );
        }
    }
    state.active.forget(now);
}

/// The sample's series: the counters so far and the lock waits of `ops`.
pub(super) fn publish(
    out: &mut Output,
    source: &str,
    state: &LoadState,
    ops: &[&Document],
    top_lock_waits: usize,
) {
    out.add(&SAMPLES, &[source], state.samples as f64);
    out.add(&SAMPLES_CAPPED, &[source], state.capped as f64);
    let mut active: Vec<_> = state.active.values.iter().collect();
    active.sort_by(|a, b| a.0.cmp(b.0));
    for ((ns, wait), (seconds, _)) in active {
        out.add(&ACTIVE_SECONDS, &[source, ns, wait], *seconds);
    }
    let mut waiting: HashMap<&str, (usize, f64)> = HashMap::new();
    for op in ops.iter().filter(|op| wait_of(op) == "lock") {
        let ns = op.get_str("ns").unwrap_or("");
        let running = number(op.get("microsecs_running")).unwrap_or(0.0).max(0.0) / 1e6;
        let entry = waiting.entry(ns).or_insert((0, 0.0));
        entry.0 += 1;
        entry.1 = entry.1.max(running);
    }
    let mut sorted: Vec<_> = waiting.into_iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let mut largest = Largest::new(top_lock_waits);
    for (ns, (n, longest)) in sorted {
        largest.push(n as f64, (ns, n, longest));
    }
    for (ns, n, longest) in largest.into_sorted() {
        out.add(&LOCK_WAITING, &[source, ns], n as f64);
        out.add(&LOCK_WAITING_LONGEST, &[source, ns], longest);
    }
}

/// The probe of the built-in `load` check.
pub(super) struct LoadProbe {
    pub(super) source: String,
    pub(super) shared: std::sync::Arc<Shared>,
    pub(super) settings: MongoLoadSettings,
    pub(super) state: Mutex<LoadState>,
}

impl Runnable for LoadProbe {
    fn run(&self, deadline: Instant) -> RunFuture<'_> {
        Box::pin(async move {
            use futures_util::TryStreamExt;
            let client = self.shared.client().await?;
            let source = self.source.as_str();
            let pipeline = vec![
                bson::doc! { "$currentOp": { "allUsers": true, "idleConnections": false } },
                bson::doc! { "$match": { "active": true } },
                bson::doc! { "$project": {
                    "active": 1, "client": 1, "client_s": 1, "ns": 1, "microsecs_running": 1,
                    "waitingForLock": 1, "waitingForFlowControl": 1, "waitingForLatch": 1,
                    "command.comment": 1, "cursor.awaitData": 1,
                } },
                bson::doc! { "$limit": self.settings.max_operations as i64 },
            ];
            let read = async {
                client
                    .database("admin")
                    .aggregate(pipeline)
                    .comment(Bson::String(OWN_COMMENT.to_owned()))
                    .max_time(crate::sources::remaining(deadline))
                    .await?
                    .try_collect::<Vec<Document>>()
                    .await
            };
            let mut state = self.state.lock().await;
            let docs = match read.await {
                Ok(docs) => docs,
                Err(e) if super::latency::fatal(&e) => {
                    state.last = None;
                    return Err(classify(&e));
                }
                Err(e) => {
                    state.last = None;
                    let why = crate::secrets::scrub(&e.to_string()).to_string();
                    if !std::mem::replace(&mut state.logged, true) {
                        tracing::warn!(source, error = %why, "the server refuses $currentOp: the load of its operations is not measured (grant the exporter's user clusterMonitor, or set `load: false`)");
                    }
                    return Ok(Output {
                        unmeasured: Some(format!(
                            "the server refuses $currentOp ({why}), so the load of its operations is not measured: grant the exporter's user the clusterMonitor role (the inprog privilege), or set `load: false`"
                        )),
                        ..Output::default()
                    });
                }
            };
            let now = StdInstant::now();
            let dt = match state.last {
                Some(last) if now.duration_since(last) <= self.settings.interval.0 * 3 => {
                    now.duration_since(last).as_secs_f64()
                }
                _ => 0.0,
            };
            state.last = Some(now);
            if docs.len() >= self.settings.max_operations {
                state.capped += 1;
            }
            let ops: Vec<&Document> = docs.iter().filter(|d| counts(d)).collect();
            accumulate(&mut state, &ops, dt, now);
            let mut out = Output::default();
            publish(&mut out, source, &state, &ops, self.settings.top_lock_waits);
            Ok(out)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// The `$currentOp` documents of a fixture (canonical Extended JSON).
    fn fixture(version: &str) -> Vec<Document> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/mongodb")
            .join(version)
            .join("currentOp-load.json");
        let text = std::fs::read_to_string(&path).unwrap();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        value
            .as_array()
            .unwrap()
            .iter()
            .map(|d| match Bson::try_from(d.clone()).unwrap() {
                Bson::Document(d) => d,
                other => panic!("not a document: {other:?}"),
            })
            .collect()
    }

    fn value(out: &Output, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        out.labelled_one(name, labels)
    }

    /// On both versions' documented shapes: each wait kind is read, the exporter's own
    /// operation, idle and internal ones, awaitable `hello`s and tailing cursors are left out,
    /// and two samples a second apart add a second per operation.
    #[test]
    fn operations_add_seconds_by_namespace_and_wait_on_7_0_and_8_0() {
        for version in ["7.0", "8.0"] {
            let docs = fixture(version);
            let ops: Vec<&Document> = docs.iter().filter(|d| counts(d)).collect();
            let settings = MongoLoadSettings::default();
            let mut state = LoadState::new(&settings);
            let t0 = StdInstant::now();
            accumulate(&mut state, &ops, 0.0, t0);
            accumulate(&mut state, &ops, 1.0, t0 + Duration::from_secs(1));
            let mut out = Output::default();
            publish(&mut out, "docs", &state, &ops, 5);
            let at = |ns: &str, wait: &str| {
                value(
                    &out,
                    ACTIVE_SECONDS.name,
                    &[("namespace", ns), ("wait", wait)],
                )
            };
            assert_eq!(at("app.users", "CPU"), Some(2.0), "{version}");
            assert_eq!(at("app.users", "lock"), Some(2.0), "{version}");
            assert_eq!(at("app.orders", "flow_control"), Some(1.0), "{version}");
            assert_eq!(at("app.sessions", "latch"), Some(1.0), "{version}");
            assert_eq!(at("other", "CPU"), Some(0.0), "{version}: pinned");
            let total: f64 = out.labelled(ACTIVE_SECONDS.name, &[]).iter().sum();
            assert_eq!(
                total, 6.0,
                "{version}: six counted operations, one second each"
            );
            assert_eq!(
                value(&out, LOCK_WAITING.name, &[("namespace", "app.users")]),
                Some(2.0),
                "{version}"
            );
            assert_eq!(
                value(
                    &out,
                    LOCK_WAITING_LONGEST.name,
                    &[("namespace", "app.users")]
                ),
                Some(12.5),
                "{version}"
            );
            assert_eq!(value(&out, SAMPLES.name, &[]), Some(2.0));
        }
    }

    #[test]
    fn namespaces_past_the_top_count_in_other() {
        let settings = MongoLoadSettings {
            top_namespaces: 3,
            ..MongoLoadSettings::default()
        };
        let mut state = LoadState::new(&settings);
        let docs: Vec<Document> = (0..10)
            .map(|i| bson::doc! { "active": true, "client": "10.0.0.1:1", "ns": format!("app.c{i}") })
            .collect();
        let ops: Vec<&Document> = docs.iter().filter(|d| counts(d)).collect();
        accumulate(&mut state, &ops, 1.0, StdInstant::now());
        let mut out = Output::default();
        publish(&mut out, "docs", &state, &ops, 5);
        let series = out.labelled(ACTIVE_SECONDS.name, &[]);
        assert!(series.len() <= 4, "{series:?}");
        assert_eq!(
            series.iter().sum::<f64>(),
            10.0,
            "nothing lost past the top"
        );
    }

    #[test]
    fn settings_are_checked_with_the_field() {
        let mut errors = Vec::new();
        MongoLoadSettings {
            interval: Dur(Duration::from_millis(500)),
            timeout: Dur(Duration::from_secs(2)),
            max_operations: 1,
            top_namespaces: 0,
            top_lock_waits: 99,
        }
        .validate("sources[0].load", &mut errors);
        let text: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        for field in [
            "load.interval",
            "load.timeout",
            "load.max_operations",
            "load.top_namespaces",
            "load.top_lock_waits",
        ] {
            assert!(text.iter().any(|t| t.contains(field)), "{field}: {text:?}");
        }
        errors.clear();
        MongoLoadSettings::default().validate("p", &mut errors);
        assert!(errors.is_empty());
    }
}
