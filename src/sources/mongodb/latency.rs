//! Which MongoDB queries are slow and which read a whole collection, from the server's own
//! statistics, read in the background:
//!
//! - for the collections a source names (`collections:`), `$collStats` `latencyStats` with its
//!   histograms: a latency histogram per collection and kind of operation;
//! - the oldest running operation of each namespace, from `$currentOp` (at most 100);
//! - where the profiler is on, the query shapes that took the most time since the last read,
//!   from `system.profile`: by namespace, operation and shape hash, with the plan summary
//!   (`COLLSCAN`, or an index's key pattern). The profiled command, which holds the query's
//!   literal values, is never read: a projection leaves it on the server.
//!
//! The operation latencies and collection scans of the whole server come from `serverStatus`
//! in the health probe. Each part a server lacks (a wire server that knows no `$collStats`, a
//! user without the privilege) leaves its numbers absent while the rest publishes, and is
//! logged once.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use mongodb::bson::{self, Bson, Document};
use serde::Deserialize;
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::client::{classify, Shared};
use super::decode::number;
use crate::config_core::validate::{Statistics, STATISTICS};
use crate::config_core::{ConfigError, Dur};
use crate::series::metric::Metric;
use crate::series::sample::{unix_now, HistogramData, Output};
use crate::series::topn::Largest;
use crate::sources::{RunFuture, Runnable};

/// The name of the built-in check.
pub const CHECK: &str = "latency";

/// `latency:` of a MongoDB source: collection latency histograms, the oldest operation per
/// namespace and the profiler's slowest query shapes. `false` turns it off.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct LatencySettings {
    /// How often the statistics are read (default 1m; 10s to 1h).
    pub interval: Dur,
    /// How long one read may take before it is cancelled, on the server too (default 5s;
    /// shorter than the interval).
    pub timeout: Dur,
    /// Query shapes published from the profiler, the most time first (default 20; 1 to 100).
    pub top: usize,
}

impl Default for LatencySettings {
    fn default() -> Self {
        LatencySettings {
            interval: Dur(STATISTICS.interval),
            timeout: Dur(STATISTICS.timeout),
            top: STATISTICS.top,
        }
    }
}

impl LatencySettings {
    /// Records what is wrong with these settings, at `path`.
    pub fn validate(&self, path: &str, errors: &mut Vec<ConfigError>) {
        Statistics {
            interval: self.interval.0,
            timeout: self.timeout.0,
            top: self.top,
        }
        .validate(path, errors);
    }
}

pub(super) const COLLECTION_LATENCY: Metric = Metric::histogram(
    "pulse_mongodb_collection_latency_seconds",
    "Latency of the collection's operations by kind (reads, writes, commands, transactions), from $collStats latencyStats.",
    &["source", "database", "collection", "op"],
)
.doc("For each collection the source names (`collections:`), the server's latency histogram of its `reads`, `writes`, `commands` and `transactions` (`$collStats` `latencyStats`, since the server started): classic buckets under powers of two from 2 µs to about 2 s, the same for every series, so a `sum` across collections or shards keeps every bound. A native histogram where Prometheus negotiates protobuf, from the server's own finer buckets (half steps from 2 ms to 1.5 s).");
pub(super) const OLDEST_OPERATION: Metric = Metric::gauge(
    "pulse_mongodb_oldest_operation_start_timestamp_seconds",
    "When the longest-running active operation on the namespace started ($currentOp); absent when none runs.",
    &["source", "namespace"],
)
.doc("Per namespace (`database.collection`), when its longest-running active operation started (`$currentOp`, now minus `microsecs_running`); at most 100 namespaces, the oldest first. Needs the `inprog` privilege (`clusterMonitor`) to see other users' operations.");
pub(super) const SHAPE_TIME: Metric = Metric::gauge(
    "pulse_mongodb_query_shape_window_seconds",
    "Time the query shape took in the last window, from the profiler (system.profile).",
    &["source", "namespace", "op", "shape", "plan"],
)
.doc("Where the profiler is on (`db.setProfilingLevel(1)`), per query shape (`queryHash`, or `planCacheShapeHash` on 8.0, else the command's name): the time its profiled operations took since the last read, the `top` shapes by time. `plan` is the plan summary, `COLLSCAN` for a collection read whole. No literal value of a query is read.");
pub(super) const SHAPE_CALLS: Metric = Metric::gauge(
    "pulse_mongodb_query_shape_window_calls",
    "Profiled operations of the query shape in the last window.",
    &["source", "namespace", "op", "shape", "plan"],
)
.doc("Profiled operations of the shape since the last read.");
pub(super) const SHAPE_DOCS: Metric = Metric::gauge(
    "pulse_mongodb_query_shape_window_docs_examined",
    "Documents the query shape examined in the last window, from the profiler.",
    &["source", "namespace", "op", "shape", "plan"],
)
.doc("Documents examined by the shape's profiled operations since the last read: far above the documents returned, a missing index.");
pub(super) const PROFILE_WINDOW: Metric = Metric::gauge(
    "pulse_mongodb_profile_window_seconds",
    "Length of the window the query shape numbers cover.",
    &["source"],
)
.doc("The window the `query_shape_window` numbers cover; absent while the profiler is off.");

/// Namespaces of `$currentOp` published at most.
const MAX_NAMESPACES: i64 = 100;

/// Profiler entries read per run at most: `system.profile` is a capped collection of 1 MB by
/// default, a few thousand entries.
const MAX_PROFILE_ENTRIES: i64 = 10_000;

/// What marks this probe's own `$currentOp`, so it never reports itself.
const OWN_COMMENT: &str = "pulse-exporter latency";

/// The kinds of operation of `latencyStats`.
const OPS: [&str; 4] = ["reads", "writes", "commands", "transactions"];

/// The lower bounds of MongoDB's latency buckets, in µs: powers of two up to 1024, then
/// half steps (2048, 3072, 4096, 6144, …) up to 1572864 (about 1.5 s), then powers of two up
/// to 2^40, whose bucket is open-ended. A reply names each non-empty bucket by its lower
/// bound only, so its upper bound is the next one of this ladder.
fn bucket_ladder() -> Vec<u64> {
    let mut ladder = vec![0];
    ladder.extend((1..=10).map(|k| 1u64 << k));
    for k in 11..=20 {
        ladder.push(1u64 << k);
        ladder.push(3u64 << (k - 1));
    }
    ladder.extend((21..=40).map(|k| 1u64 << k));
    ladder
}

/// The upper bound (µs) of MongoDB's bucket starting at `lower`; `None` for the open-ended
/// last one.
fn bucket_upper(ladder: &[u64], lower: u64) -> Option<u64> {
    ladder.iter().copied().find(|&b| b > lower)
}

/// A histogram of a `latencyStats` entry: `{latency: µs, ops, histogram: [{micros, count}]}`,
/// where `micros` is each bucket's lower bound, counts are per bucket, and empty buckets are
/// left out.
pub(super) fn latency_histogram(stats: &Document) -> Option<HistogramData> {
    let ops = number(stats.get("ops"))?.max(0.0) as u64;
    let sum = number(stats.get("latency"))?.max(0.0) / 1e6;
    let mut buckets: Vec<(u64, u64)> = match stats.get_array("histogram") {
        Ok(h) => h
            .iter()
            .filter_map(|b| {
                let b = b.as_document()?;
                Some((
                    number(b.get("micros"))?.max(0.0) as u64,
                    number(b.get("count"))?.max(0.0) as u64,
                ))
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    // Shards merged into one reply ([`merged`]) may name a bucket more than once.
    let mut by_lower: std::collections::BTreeMap<u64, u64> = Default::default();
    for (lower, count) in buckets.drain(..) {
        let n = by_lower.entry(lower).or_insert(0);
        *n = n.saturating_add(count);
    }
    let ladder = bucket_ladder();
    let mut cumulative = Vec::with_capacity(by_lower.len());
    let mut total = 0u64;
    for (lower, count) in by_lower {
        total = total.saturating_add(count);
        if let Some(upper) = bucket_upper(&ladder, lower) {
            cumulative.push((upper as f64 / 1e6, total));
        }
    }
    let mut h = HistogramData::from_cumulative(&cumulative, ops.max(total), sum);
    // Classic buckets on powers of two from 2 µs to about 2 s, all of them bounds of the
    // ladder, for every series alike: a sum across collections or shards has every bound.
    // Without a histogram (`histograms: false`) all there is is a count and a sum.
    if stats.get_array("histogram").is_ok() {
        h.rebucket(&classic_bounds(), 1.0);
    }
    Some(h)
}

/// The classic buckets' bounds, in seconds: powers of two from 2 µs to about 2 s.
pub(super) fn classic_bounds() -> Vec<f64> {
    (1..=21).map(|k| (1u64 << k) as f64 / 1e6).collect()
}

/// Shards answered at most for one collection (mongos answers `$collStats` once per shard).
const MAX_SHARDS: usize = 1000;

/// A collection's `$collStats` documents as one: mongos answers one per shard, whose
/// operations, times and buckets add up (the ladder is every shard's). One document is
/// itself.
fn merged(docs: &[Document]) -> Option<Document> {
    let first = docs.first()?;
    if docs.len() == 1 {
        return Some(first.clone());
    }
    let mut stats = Document::new();
    for op in OPS {
        let parts: Vec<&Document> = docs
            .iter()
            .filter_map(|d| d.get_document("latencyStats").ok()?.get_document(op).ok())
            .collect();
        if parts.is_empty() {
            continue;
        }
        let total =
            |field: &str| -> f64 { parts.iter().filter_map(|p| number(p.get(field))).sum() };
        let mut part = bson::doc! { "latency": total("latency"), "ops": total("ops") };
        if parts.iter().any(|p| p.get_array("histogram").is_ok()) {
            let buckets: Vec<Bson> = parts
                .iter()
                .filter_map(|p| p.get_array("histogram").ok())
                .flatten()
                .cloned()
                .collect();
            part.insert("histogram", buckets);
        }
        stats.insert(op, part);
    }
    let mut out = first.clone();
    out.insert("latencyStats", stats);
    Some(out)
}

/// The samples of a `$collStats` reply of `collection`.
pub(super) fn collection_latency(
    out: &mut Output,
    source: &str,
    database: &str,
    collection: &str,
    doc: &Document,
) {
    let Ok(stats) = doc.get_document("latencyStats") else {
        return;
    };
    for op in OPS {
        if let Some(h) = stats.get_document(op).ok().and_then(latency_histogram) {
            out.add_histogram(&COLLECTION_LATENCY, &[source, database, collection, op], h);
        }
    }
}

/// One profiled operation, without its command.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Profiled {
    namespace: String,
    op: String,
    shape: String,
    plan: String,
    millis: f64,
    docs_examined: f64,
    ts: Option<bson::DateTime>,
}

/// The fields of a `system.profile` entry the probe reads: never `command`.
fn profile_projection() -> Document {
    bson::doc! {
        "_id": 0, "op": 1, "ns": 1, "millis": 1, "docsExamined": 1, "planSummary": 1,
        "queryHash": 1, "planCacheShapeHash": 1, "queryShapeHash": 1, "ts": 1,
    }
}

/// A `system.profile` entry: its shape is the plan cache's hash (`planCacheShapeHash` on 8.0,
/// `queryHash` before), then the query shape hash of 8.0, then the operation alone (an insert
/// or a command has no shape).
pub(super) fn profiled(doc: &Document) -> Option<Profiled> {
    let text = |k: &str| doc.get_str(k).ok().map(str::to_owned);
    let hex = |s: String| s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric());
    let shape = text("planCacheShapeHash")
        .or_else(|| text("queryHash"))
        .or_else(|| text("queryShapeHash"))
        .filter(|s| hex(s.clone()))
        .unwrap_or_default();
    let mut plan = text("planSummary").unwrap_or_default();
    if plan.len() > 100 {
        let mut end = 100;
        while !plan.is_char_boundary(end) {
            end -= 1;
        }
        plan.truncate(end);
    }
    Some(Profiled {
        namespace: text("ns")?,
        op: text("op").unwrap_or_default(),
        shape,
        plan,
        millis: number(doc.get("millis")).unwrap_or(0.0).max(0.0),
        docs_examined: number(doc.get("docsExamined")).unwrap_or(0.0).max(0.0),
        ts: doc.get_datetime("ts").ok().copied(),
    })
}

/// The `top` shapes by time of `entries`, with their calls and documents examined.
pub(super) fn shapes(out: &mut Output, source: &str, entries: &[Profiled], top: usize) {
    type Key<'a> = (&'a str, &'a str, &'a str, &'a str);
    let mut by_shape: HashMap<Key, (f64, f64, f64)> = HashMap::new();
    for e in entries {
        let key = (
            e.namespace.as_str(),
            e.op.as_str(),
            e.shape.as_str(),
            e.plan.as_str(),
        );
        let s = by_shape.entry(key).or_default();
        s.0 += e.millis / 1000.0;
        s.1 += 1.0;
        s.2 += e.docs_examined;
    }
    let mut sorted: Vec<(Key, (f64, f64, f64))> = by_shape.into_iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut largest = Largest::new(top);
    for item in sorted {
        largest.push(item.1 .0, item);
    }
    for ((ns, op, shape, plan), (secs, calls, docs)) in largest.into_sorted() {
        let labels = [source, ns, op, shape, plan];
        out.add(&SHAPE_TIME, &labels, secs);
        out.add(&SHAPE_CALLS, &labels, calls);
        out.add(&SHAPE_DOCS, &labels, docs);
    }
}

/// The probe of the built-in `latency` check.
pub(super) struct LatencyProbe {
    pub(super) source: String,
    pub(super) shared: std::sync::Arc<Shared>,
    pub(super) collections: Vec<String>,
    pub(super) settings: LatencySettings,
    pub(super) state: Mutex<ProfileState>,
}

/// What the probe keeps between runs.
#[derive(Default)]
pub(super) struct ProfileState {
    /// The newest profiler entry read and when it was read.
    last: Option<(bson::DateTime, std::time::Instant)>,
    /// The parts already logged as unavailable.
    logged: HashSet<&'static str>,
}

impl ProfileState {
    fn gap(&mut self, source: &str, what: &'static str, e: &mongodb::error::Error) {
        if self.logged.insert(what) {
            tracing::warn!(source, part = what, error = %crate::secrets::scrub(&e.to_string()), "a latency statistic is unavailable on this server; the others are still published");
        }
    }
}

impl Runnable for LatencyProbe {
    fn run(&self, deadline: Instant) -> RunFuture<'_> {
        Box::pin(async move {
            let client = self.shared.client().await?;
            let db = client.database(&self.shared.database);
            let source = self.source.as_str();
            let budget = crate::sources::remaining(deadline);
            let mut state = self.state.lock().await;
            let mut out = Output::default();
            let mut refused = None;
            for collection in &self.collections {
                let pipeline =
                    vec![bson::doc! { "$collStats": { "latencyStats": { "histograms": true } } }];
                let docs = db
                    .collection::<Document>(collection)
                    .aggregate(pipeline)
                    .max_time(budget)
                    .await;
                let mut cursor = match docs {
                    Ok(c) => c,
                    Err(e) if fatal(&e) => return Err(classify(&e)),
                    Err(e) => {
                        state.gap(source, "$collStats", &e);
                        refused.get_or_insert_with(|| {
                            crate::secrets::scrub(&e.to_string()).to_string()
                        });
                        continue;
                    }
                };
                // One document per shard on mongos, merged: which shard comes first is not
                // fixed, and one alone would make the histograms jump between shards.
                use futures_util::StreamExt;
                let mut docs = Vec::new();
                while let Some(Ok(doc)) = cursor.next().await {
                    docs.push(doc);
                    if docs.len() >= MAX_SHARDS {
                        break;
                    }
                }
                if let Some(doc) = merged(&docs) {
                    collection_latency(&mut out, source, &self.shared.database, collection, &doc);
                }
            }
            if let Some(e) = refused {
                out.unmeasured = Some(format!(
                    "the server refuses $collStats ({e}), so collection latency is not measured for every collection: grant the exporter's user the clusterMonitor role (or `collStats` on the database), or set `latency: false`"
                ));
            }
            match self.oldest_operations(client, budget).await {
                Ok(ops) => {
                    for (ns, started) in ops {
                        out.add(&OLDEST_OPERATION, &[source, ns.as_str()], started);
                    }
                }
                Err(e) if fatal(&e) => return Err(classify(&e)),
                Err(e) => state.gap(source, "$currentOp", &e),
            }
            match self.profiled(&db, &mut state, budget).await {
                Ok(Some((entries, seconds))) => {
                    out.add(&PROFILE_WINDOW, &[source], seconds);
                    shapes(&mut out, source, &entries, self.settings.top);
                }
                Ok(None) => {}
                Err(e) if fatal(&e) => return Err(classify(&e)),
                Err(e) => state.gap(source, "system.profile", &e),
            }
            Ok(out)
        })
    }
}

/// True for the errors of a server that is down or slow, as opposed to one that lacks a
/// command or refuses it: the run fails for those.
pub(super) fn fatal(e: &mongodb::error::Error) -> bool {
    use crate::series::run_error::Reason;
    matches!(classify(e).reason(), Reason::Connect | Reason::Timeout)
}

impl LatencyProbe {
    /// Per namespace, when its longest-running active operation started.
    async fn oldest_operations(
        &self,
        client: &mongodb::Client,
        budget: Duration,
    ) -> Result<Vec<(String, f64)>, mongodb::error::Error> {
        use futures_util::TryStreamExt;
        let pipeline = vec![
            bson::doc! { "$currentOp": { "allUsers": true, "idleConnections": false } },
            bson::doc! { "$match": {
                "active": true,
                "microsecs_running": { "$exists": true },
                "ns": { "$nin": ["", "admin.$cmd"] },
                "command.comment": { "$ne": OWN_COMMENT },
            } },
            bson::doc! { "$group": { "_id": "$ns", "longest": { "$max": "$microsecs_running" } } },
            bson::doc! { "$sort": { "longest": -1 } },
            bson::doc! { "$limit": MAX_NAMESPACES },
        ];
        let docs: Vec<Document> = client
            .database("admin")
            .aggregate(pipeline)
            .comment(Bson::String(OWN_COMMENT.to_owned()))
            .max_time(budget)
            .await?
            .try_collect()
            .await?;
        let now = unix_now();
        Ok(oldest(&docs, now))
    }

    /// The profiler entries added since the last read and the window's length; `None` while
    /// the profiler is off, and on the first read (a baseline).
    async fn profiled(
        &self,
        db: &mongodb::Database,
        state: &mut ProfileState,
        budget: Duration,
    ) -> Result<Option<(Vec<Profiled>, f64)>, mongodb::error::Error> {
        use futures_util::TryStreamExt;
        let level = db.run_command(bson::doc! { "profile": -1 }).await?;
        if number(level.get("was")).unwrap_or(0.0) < 1.0 {
            state.last = None;
            return Ok(None);
        }
        let now = std::time::Instant::now();
        let Some((since, at)) = state.last else {
            // The newest entry is where the first window starts.
            let newest = db
                .collection::<Document>("system.profile")
                .find_one(bson::doc! {})
                .sort(bson::doc! { "ts": -1 })
                .projection(bson::doc! { "_id": 0, "ts": 1 })
                .max_time(budget)
                .await?;
            let ts = newest
                .and_then(|d| d.get_datetime("ts").ok().copied())
                .unwrap_or_else(bson::DateTime::now);
            state.last = Some((ts, now));
            return Ok(None);
        };
        let docs: Vec<Document> = db
            .collection::<Document>("system.profile")
            .find(bson::doc! { "ts": { "$gt": since } })
            .sort(bson::doc! { "ts": 1 })
            .limit(MAX_PROFILE_ENTRIES)
            .projection(profile_projection())
            .max_time(budget)
            .await?
            .try_collect()
            .await?;
        let entries: Vec<Profiled> = docs.iter().filter_map(profiled).collect();
        let newest = entries.iter().filter_map(|e| e.ts).max().unwrap_or(since);
        state.last = Some((newest, now));
        Ok(Some((entries, now.duration_since(at).as_secs_f64())))
    }
}

/// `$currentOp` grouped by namespace (`{_id: ns, longest: µs}`) as start times at `now`.
pub(super) fn oldest(docs: &[Document], now: f64) -> Vec<(String, f64)> {
    docs.iter()
        .filter_map(|d| {
            let ns = d.get_str("_id").ok()?;
            let micros = number(d.get("longest"))?;
            Some((ns.to_owned(), now - micros.max(0.0) / 1e6))
        })
        .take(MAX_NAMESPACES as usize)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_latency_stats_histogram_becomes_cumulative_buckets_under_the_next_lower_bound() {
        // The shape of $collStats latencyStats.reads (MongoDB 7.0 and 8.0 alike).
        let reads = bson::doc! {
            "histogram": [
                { "micros": 2_i64, "count": 3_i64 },
                { "micros": 16_i64, "count": 5_i64 },
                { "micros": 2048_i64, "count": 1_i64 },
                { "micros": 3072_i64, "count": 1_i64 },
            ],
            "latency": 9500_i64,
            "ops": 10_i64,
        };
        let h = latency_histogram(&reads).unwrap();
        assert_eq!(h.count, 10);
        assert_eq!(h.sum, 0.0095);
        // Each bucket ends where MongoDB's ladder does, however far apart the non-empty ones
        // are: [2,4) holds 3, [16,32) 5, [2048,3072) and [3072,4096) 1 each; published
        // under powers of two from 2 µs to about 2 s.
        assert_eq!(h.bounds.len(), 22);
        let at = |micros: f64| {
            let i = h.bounds.iter().position(|b| *b == micros / 1e6).unwrap();
            h.counts[..=i].iter().sum::<u64>()
        };
        assert_eq!((at(2.0), at(4.0), at(16.0), at(32.0)), (0, 3, 3, 8));
        assert_eq!((at(2048.0), at(4096.0)), (8, 10));
        assert_eq!(*h.counts.last().unwrap(), 0);
        assert_eq!(
            h.native.as_ref().unwrap().positive.values().sum::<u64>(),
            10
        );
        // No histogram (histograms: false): the sum and count still make a mean.
        let bare = latency_histogram(&bson::doc! { "latency": 100_i64, "ops": 4_i32 }).unwrap();
        assert_eq!((bare.count, bare.counts.as_slice()), (4, &[4][..]));
        assert!(latency_histogram(&bson::doc! { "latency": "x" }).is_none());
    }

    #[test]
    fn the_shards_of_a_collection_add_up() {
        let shard = |name: &str, ops: i64, micros: i64| {
            bson::doc! {
                "shard": name,
                "latencyStats": {
                    "reads": { "latency": ops * 100, "ops": ops, "histogram": [{ "micros": micros, "count": ops }] },
                },
            }
        };
        let docs = [shard("a", 3, 64), shard("b", 2, 64), shard("c", 5, 4096)];
        let one = merged(&docs).unwrap();
        let reads = one
            .get_document("latencyStats")
            .unwrap()
            .get_document("reads")
            .unwrap();
        let h = latency_histogram(reads).unwrap();
        assert_eq!(h.count, 10);
        assert!((h.sum - 0.001).abs() < 1e-12);
        // [64,128) holds the 5 of two shards, [4096,6144) the other 5: the same whichever
        // shard mongos lists first.
        let at = |micros: f64| {
            let i = h.bounds.iter().position(|b| *b == micros / 1e6).unwrap();
            h.counts[..=i].iter().sum::<u64>()
        };
        assert_eq!((at(64.0), at(128.0), at(4096.0), at(8192.0)), (0, 5, 5, 10));
        let reversed: Vec<Document> = docs.iter().rev().cloned().collect();
        let again = merged(&reversed).unwrap();
        let h2 = latency_histogram(
            again
                .get_document("latencyStats")
                .unwrap()
                .get_document("reads")
                .unwrap(),
        )
        .unwrap();
        assert_eq!(h2, h);
        assert!(merged(&[]).is_none());
    }

    #[test]
    fn the_bucket_ladder_is_mongodbs() {
        let ladder = bucket_ladder();
        assert_eq!(ladder.len(), 51);
        assert_eq!(
            &ladder[..13],
            &[0, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 3072]
        );
        assert_eq!(bucket_upper(&ladder, 0), Some(2));
        assert_eq!(bucket_upper(&ladder, 4096), Some(6144));
        assert_eq!(bucket_upper(&ladder, 1_048_576), Some(1_572_864));
        assert_eq!(bucket_upper(&ladder, 1_572_864), Some(2_097_152));
        assert_eq!(bucket_upper(&ladder, 1 << 21), Some(1 << 22));
        assert_eq!(bucket_upper(&ladder, 1 << 40), None);
    }

    #[test]
    fn collection_latency_by_kind_and_the_kinds_a_server_lacks_left_out() {
        let doc = bson::doc! {
            "ns": "app.users",
            "latencyStats": {
                "reads": { "latency": 100_i64, "ops": 1_i64, "histogram": [{ "micros": 64_i64, "count": 1_i64 }] },
                "writes": { "latency": 0_i64, "ops": 0_i64, "histogram": [] },
                "commands": { "latency": 10_i64, "ops": 1_i64, "histogram": [] },
            },
        };
        let mut out = Output::default();
        collection_latency(&mut out, "m", "app", "users", &doc);
        let fam = &out.families[0];
        assert_eq!(fam.name, COLLECTION_LATENCY.name);
        let ops: Vec<&str> = fam.samples.iter().map(|s| s.labels[3].1.as_str()).collect();
        assert_eq!(
            ops,
            ["reads", "writes", "commands"],
            "no transactions on this server"
        );
    }

    #[test]
    fn profiled_shapes_carry_hashes_and_plans_never_literals() {
        // system.profile entries of MongoDB 7.0 (queryHash) and 8.0 (planCacheShapeHash), as
        // the projection returns them; `command` is never asked for, but even an entry that
        // held it would publish no part of it.
        let entries = [
            bson::doc! { "op": "query", "ns": "app.users", "millis": 250_i32, "docsExamined": 200_000_i32, "planSummary": "COLLSCAN", "queryHash": "8AB2C1F0", "command": { "find": "users", "filter": { "email": "ann@example.com" } } },
            bson::doc! { "op": "query", "ns": "app.users", "millis": 150_i32, "docsExamined": 200_000_i32, "planSummary": "COLLSCAN", "planCacheShapeHash": "8AB2C1F0", "queryShapeHash": "D1E2" },
            bson::doc! { "op": "query", "ns": "app.posts", "millis": 5_i32, "docsExamined": 1_i32, "planSummary": "IXSCAN { author: 1 }", "queryHash": "11AA" },
            bson::doc! { "op": "insert", "ns": "app.posts", "millis": 1_i32 },
        ];
        let profiled: Vec<Profiled> = entries.iter().filter_map(profiled).collect();
        assert_eq!(profiled.len(), 4);
        let mut out = Output::default();
        shapes(&mut out, "m", &profiled, 2);
        let time = out
            .families
            .iter()
            .find(|f| f.name == SHAPE_TIME.name)
            .unwrap();
        assert_eq!(time.samples.len(), 2);
        assert_eq!(time.samples[0].value, 0.4, "both users scans are one shape");
        assert!(time.samples[0]
            .labels
            .contains(&("plan".to_owned(), "COLLSCAN".to_owned())));
        assert_eq!(out.value(SHAPE_DOCS.name, "app.users"), Some(400_000.0));
        let text = format!("{out:?}");
        assert!(!text.contains("ann@example.com"), "{text}");
    }

    /// `$collStats` `latencyStats` and `system.profile` entries in the shapes MongoDB 7.0 and
    /// 8.0 document (tests/fixtures/mongodb/VERSION/): the histogram holds every read, and no
    /// literal of a profiled command (a filter value, an inserted document) reaches a label.
    #[test]
    fn collection_latency_and_profiled_shapes_of_mongodb_7_and_8() {
        for version in ["7.0", "8.0"] {
            let Bson::Document(stats) = super::super::fixture(version, "collStats-latency.json")
            else {
                panic!("{version}: not a document");
            };
            let mut out = Output::default();
            collection_latency(&mut out, "m", "app", "users", &stats);
            let reads = out.families[0]
                .samples
                .iter()
                .find(|s| s.labels[3].1 == "reads")
                .unwrap();
            let h = reads.histogram.as_ref().unwrap();
            assert_eq!((h.count, h.sum), (4130, 3.512), "{version}");
            assert_eq!(h.counts.iter().sum::<u64>(), 4130, "{version}");
            // [1048576, 1572864) µs: under the last bound, about 2 s; none past it.
            assert_eq!(h.bounds[20], 2.097152, "{version}");
            assert_eq!(h.counts[20..], [3, 0], "{version}");
            let Bson::Array(entries) = super::super::fixture(version, "system-profile.json") else {
                panic!("{version}: not a list");
            };
            let profiled: Vec<Profiled> = entries
                .iter()
                .filter_map(|e| e.as_document().and_then(profiled))
                .collect();
            assert_eq!(profiled.len(), 4, "{version}");
            let mut out = Output::default();
            shapes(&mut out, "m", &profiled, 20);
            assert_eq!(
                out.value(SHAPE_TIME.name, "COLLSCAN"),
                Some(0.353),
                "{version}: both lookups of users are one shape"
            );
            assert_eq!(out.value(SHAPE_CALLS.name, "COLLSCAN"), Some(2.0));
            assert_eq!(out.value(SHAPE_DOCS.name, "COLLSCAN"), Some(400_000.0));
            let shown = format!("{:?}", out.families);
            for literal in [
                "ann@example.com",
                "bob@example.com",
                "secret draft",
                "65f1c0de",
            ] {
                assert!(!shown.contains(literal), "{version}: {literal} in {shown}");
            }
        }
        // The projection leaves the command, and its literals, on the server.
        assert!(!profile_projection().contains_key("command"));
    }

    #[test]
    fn the_oldest_operation_per_namespace_is_a_start_time() {
        let docs = [
            bson::doc! { "_id": "app.users", "longest": 90_000_000_i64 },
            bson::doc! { "_id": "app.posts", "longest": 1_500_000_i64 },
            bson::doc! { "_id": 5_i32, "longest": 1_i64 },
        ];
        assert_eq!(
            oldest(&docs, 1000.0),
            [
                ("app.users".to_owned(), 910.0),
                ("app.posts".to_owned(), 998.5)
            ]
        );
    }
}
