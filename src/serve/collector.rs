//! The prometheus-client `Collector` that encodes the store's snapshot plus self metrics.
//!
//! Nothing here talks to a source: a scrape costs one snapshot copy and one encode,
//! whatever state the sources are in.

use crate::sync::MutexExt;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::SystemTime;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType as PcType;

use crate::runtime::results::{Entry, Results};
use crate::series::metric::MetricType;
use crate::series::own_metrics::*;
use crate::series::sample::{Family, Sample};

/// Encodes the latest stored results on every scrape.
#[derive(Debug)]
pub struct SnapshotCollector {
    store: Arc<Results>,
    scope: Scope,
}

/// Which series a collector serves.
#[derive(Debug)]
enum Scope {
    /// The exporter's own and every configured source's (`/metrics`); a leased target
    /// (`TEMPLATE/TARGET`) is served to whoever leased it, at its `/probe`, and only there.
    Configured,
    /// One source's or leased target's, without the exporter's own (`/probe`).
    Source(String),
    /// The exporter's own only, none of a source (`/metrics?only=exporter`).
    Exporter,
}

impl Scope {
    /// Whether the series of `source` are served.
    fn covers(&self, source: &str) -> bool {
        match self {
            Scope::Configured => !crate::config_core::template::is_leased(source),
            Scope::Source(name) => name == source,
            Scope::Exporter => false,
        }
    }
}

impl SnapshotCollector {
    /// A collector over `store`.
    pub fn new(store: Arc<Results>) -> Self {
        SnapshotCollector {
            store,
            scope: Scope::Configured,
        }
    }

    /// A collector of the exporter's own series only (build, reload, shard, leases, time
    /// zone): for a deployment that scrapes every source through `/probe` and the exporter
    /// itself through `/metrics?only=exporter`, so no series is scraped twice.
    pub fn exporter_only(store: Arc<Results>) -> Self {
        SnapshotCollector {
            store,
            scope: Scope::Exporter,
        }
    }

    /// A collector of one source's series: its health, its checks' samples and outcomes,
    /// and its certificates; not the exporter's own (build, reload, shard, time zone).
    pub fn for_source(store: Arc<Results>, source: &str) -> Self {
        SnapshotCollector {
            store,
            scope: Scope::Source(source.to_owned()),
        }
    }
}

/// A family being assembled from several checks: borrowed samples plus owned self metrics.
struct Merged<'a> {
    help: &'a str,
    kind: MetricType,
    samples: Vec<&'a Sample>,
    /// True once samples came from more than one check, so duplicates must be filtered.
    shared: bool,
}

impl Collector for SnapshotCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let now = SystemTime::now();
        let entries = match &self.scope {
            Scope::Configured => self.store.snapshot_of(|s| self.scope.covers(s)),
            Scope::Source(name) => self.store.entries_of(name),
            Scope::Exporter => Vec::new(),
        };
        let own = self_metrics(&entries, &self.store, now, &self.scope);
        // Jobs belong to no source: served with the exporter's own series.
        let jobs = match &self.scope {
            Scope::Source(_) => Default::default(),
            _ => self.store.job_families(),
        };

        let mut merged: BTreeMap<&str, Merged> = BTreeMap::new();
        for fam in own.iter().chain(jobs.iter()) {
            add_family(&mut merged, fam);
        }
        for entry in &entries {
            if let Some(out) = entry.fresh_output(now) {
                for fam in &out.families {
                    add_family(&mut merged, fam);
                }
            }
        }
        let mut collided = BTreeMap::new();
        for (name, fam) in merged {
            let left_out = encode_family(&mut encoder, name, fam)?;
            if left_out > 0 {
                collided.insert(name.to_owned(), left_out);
            }
        }
        report_collisions(&collided);
        // Last, as no check may publish a `pulse_` name: it never merges with another.
        if let Some(fam) = collisions_family(&collided) {
            let alone = Merged {
                help: &fam.help,
                kind: fam.kind,
                samples: fam.samples.iter().collect(),
                shared: false,
            };
            encode_family(&mut encoder, &fam.name, alone)?;
        }
        Ok(())
    }
}

/// The collisions last logged: a warning is written when they change, not at every scrape.
static LOGGED_COLLISIONS: std::sync::Mutex<BTreeMap<String, u64>> =
    std::sync::Mutex::new(BTreeMap::new());

fn report_collisions(collided: &BTreeMap<String, u64>) {
    let mut last = LOGGED_COLLISIONS.locked();
    if *last == *collided {
        return;
    }
    for (metric, n) in collided {
        tracing::warn!(event = "series.collision", metric = %metric, series = n, "two checks published the same series; the first (by source, then check) is served: give them distinct const_labels or metric names");
    }
    *last = collided.clone();
}

fn collisions_family(collided: &BTreeMap<String, u64>) -> Option<Family> {
    let mut out = crate::series::sample::Output::default();
    collision_series(&mut out, collided);
    out.families.pop()
}

fn add_family<'a>(merged: &mut BTreeMap<&'a str, Merged<'a>>, fam: &'a Family) {
    match merged.get_mut(fam.name.as_str()) {
        Some(m) => {
            // Validation keeps types consistent per name; a clash would be a bug, and
            // mixing types under one name would make the whole exposition unparsable.
            if m.kind == fam.kind {
                m.samples.extend(fam.samples.iter());
                m.shared = true;
            }
        }
        None => {
            merged.insert(
                &fam.name,
                Merged {
                    help: &fam.help,
                    kind: fam.kind,
                    samples: fam.samples.iter().collect(),
                    shared: false,
                },
            );
        }
    }
}

/// Encodes `fam` under `name`, returning how many of its series were left out because an
/// earlier check published the same labels.
fn encode_family(
    encoder: &mut DescriptorEncoder,
    name: &str,
    fam: Merged,
) -> Result<u64, std::fmt::Error> {
    let help = escape_help(fam.help);
    let (base, pc_type) = match fam.kind {
        MetricType::Gauge => (name, PcType::Gauge),
        MetricType::Counter => (name.strip_suffix("_total").unwrap_or(name), PcType::Counter),
        MetricType::Histogram => (name, PcType::Histogram),
    };
    let mut metric = encoder.encode_descriptor(base, &help, None, pc_type)?;
    // A label-less series is the family's only one; encoding it without a label set avoids
    // a `name{}` line.
    if let [only] = fam.samples.as_slice() {
        if only.labels.is_empty() {
            return encode_value(metric, only, fam.kind).map(|()| 0);
        }
    }
    let mut seen: HashSet<&[(String, String)]> = HashSet::new();
    let mut left_out = 0;
    for sample in fam.samples {
        // Two checks may feed one metric (e.g. one Redis key each); the same series twice
        // would make the exposition invalid, so the first one wins.
        if fam.shared && !seen.insert(sample.labels.as_slice()) {
            left_out += 1;
            continue;
        }
        let labels: Vec<(&str, &str)> = sample
            .labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        encode_value(metric.encode_family(&labels)?, sample, fam.kind)?;
    }
    Ok(left_out)
}

fn encode_value(
    mut metric: MetricEncoder,
    sample: &Sample,
    kind: MetricType,
) -> Result<(), std::fmt::Error> {
    match (kind, &sample.histogram) {
        (MetricType::Histogram, Some(h)) => {
            let buckets: Vec<(f64, u64)> = h
                .bounds
                .iter()
                .copied()
                .zip(h.counts.iter().copied())
                .collect();
            let Some(native) = &h.native else {
                return metric.encode_histogram::<prometheus_client::encoding::NoLabelSet>(
                    h.sum, h.count, &buckets, None,
                );
            };
            // Classic and native buckets side by side: the text formats write the classic
            // ones, the protobuf format both, and Prometheus keeps what it is set to.
            let (spans, deltas) = native.spans_and_deltas();
            metric.encode_histogram_with_native::<prometheus_client::encoding::NoLabelSet>(
                h.sum,
                h.count,
                &buckets,
                None,
                prometheus_client::encoding::NativeHistogram {
                    schema: crate::series::native_histogram::SCHEMA,
                    zero_threshold: crate::series::native_histogram::ZERO_THRESHOLD,
                    zero_count: native.zero_count,
                    negative: prometheus_client::encoding::NativeHistogramBuckets {
                        spans: &[],
                        deltas: &[],
                    },
                    positive: prometheus_client::encoding::NativeHistogramBuckets {
                        spans: &spans,
                        deltas: &deltas,
                    },
                    created: None,
                },
            )
        }
        (MetricType::Counter, _) => ConstCounter::new(sample.value).encode(metric),
        _ => ConstGauge::new(sample.value).encode(metric),
    }
}

/// HELP text may not hold raw newlines or backslashes in either exposition format.
fn escape_help(help: &str) -> String {
    help.trim().replace('\\', "\\\\").replace('\n', "\\n")
}

/// Self metrics: build info and config status (but for one source's scope), and the
/// per-source health, certificates and per-check outcomes of the sources `scope` covers.
fn self_metrics(entries: &[Entry], store: &Results, now: SystemTime, scope: &Scope) -> Vec<Family> {
    let mut out = crate::series::sample::Output::default();
    if !matches!(scope, Scope::Source(_)) {
        exporter_series(&mut out, &exporter_state(store), now);
    }
    for (of, endpoint, expiry) in store.certificates(now, crate::sources::certificates::STALE_AFTER)
    {
        if scope.covers(&of) {
            certificate_series(&mut out, &of, &endpoint, expiry);
        }
    }
    for e in entries {
        // Nothing before the first run.
        let Some(succeeded) = e.succeeded() else {
            continue;
        };
        let record = CheckRecord {
            plan: &e.plan,
            succeeded,
            duration: e.last_duration.unwrap_or_default(),
            last_success: e.last_success,
            runs: e.runs,
            failures: &e.failures,
            series: e.fresh_output(now).map(|o| o.series()).unwrap_or(0),
            dropped: e.dropped_total,
            skipped: e.skipped_total,
            truncated: e.truncated_total,
            measured: succeeded.then(|| e.unmeasured().is_none()),
        };
        check_series(&mut out, &record);
    }
    out.families
}

/// The exporter's own state, as the store holds it now.
fn exporter_state(store: &Results) -> ExporterState {
    let reload = store.reload_status();
    let shard = store.shard_status();
    ExporterState {
        reload_successful: reload.last_successful,
        last_reload_success: reload.last_success,
        shard: (shard.shard.index, shard.shard.count),
        sources: (shard.owned, shard.total),
        leased: store.leased(),
        leases_replaced: store.leases_replaced(),
        timezone: store.timezone(),
        web_certificate_expiry: store.web_certificate(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, SystemTime};

    use crate::config_core::{CheckPlan, HEALTH_CHECK};
    use crate::runtime::results::Results;
    use crate::series::run_error::{Reason, RunError};
    use crate::series::sample::{Family, Output};

    fn plan(source: &str, check: &str) -> CheckPlan {
        CheckPlan::for_test(source, check)
    }

    fn gauge(out: &mut Output, name: &str, help: &str, k: &str, value: f64) {
        out.gauge(
            name,
            help,
            vec![crate::series::sample::label("k", k)],
            value,
        );
    }

    /// The exposition of `store` as a scrape would read it, without the self metrics.
    fn scrape(store: Arc<Results>) -> Vec<String> {
        scrape_all(store)
            .into_iter()
            .filter(|l| !l.contains("pulse_") && !l.starts_with("# EOF"))
            .collect()
    }

    fn scrape_all(store: Arc<Results>) -> Vec<String> {
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register_collector(Box::new(super::SnapshotCollector::new(store)));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        text.lines().map(str::to_owned).collect()
    }

    #[test]
    fn checks_feeding_one_metric_merge_into_one_family_and_the_first_series_wins() {
        let store = Arc::new(Results::new());
        let now = SystemTime::now();
        // Families merge in (source, check) order: the first to name a metric sets its type.
        let (a, b, c) = (plan("db", "a"), plan("db", "b"), plan("queue", "c"));
        let mut out_a = Output::default();
        gauge(&mut out_a, "app_jobs", "Jobs.", "1", 1.0);
        gauge(&mut out_a, "app_jobs", "Jobs.", "2", 2.0);
        let mut out_b = Output::default();
        gauge(&mut out_b, "app_jobs", "Jobs, again.", "1", 9.0);
        gauge(&mut out_b, "app_jobs", "Jobs, again.", "3", 3.0);
        // Another type under the same name would make the exposition unparsable: left out.
        let mut out_c = Output::default();
        out_c.counter(
            "app_jobs",
            "Jobs.",
            vec![crate::series::sample::label("k", "4")],
            4.0,
        );
        for (p, out) in [(&a, out_a), (&b, out_b), (&c, out_c)] {
            store.register(Arc::new(p.clone()));
            store.record(p, Ok(out), Duration::ZERO, now);
        }
        let lines = scrape(store.clone());
        let jobs: Vec<&str> = lines
            .iter()
            .filter(|l| l.starts_with("app_jobs"))
            .map(String::as_str)
            .collect();
        assert_eq!(
            jobs.len(),
            3,
            "one series per label set, the duplicate dropped: {lines:?}"
        );
        for want in [
            "app_jobs{k=\"1\"} 1.0",
            "app_jobs{k=\"2\"} 2.0",
            "app_jobs{k=\"3\"} 3.0",
        ] {
            assert!(jobs.contains(&want), "{want} in {jobs:?}");
        }
        // The left-out series is counted, never silent.
        let all = scrape_all(store);
        assert!(
            all.contains(&"pulse_series_collisions{metric=\"app_jobs\"} 1.0".to_owned()),
            "{all:?}"
        );
        assert_eq!(
            lines
                .iter()
                .filter(|l| l.starts_with("# TYPE app_jobs"))
                .count(),
            1,
            "{lines:?}"
        );
    }

    #[test]
    fn one_check_may_repeat_nothing_and_a_lone_series_has_no_empty_braces() {
        let store = Arc::new(Results::new());
        let now = SystemTime::now();
        let p = plan("db", "users");
        let mut out = Output::default();
        out.gauge(
            "app_users",
            "Users.\nAll of them, \\ included.",
            vec![],
            7.0,
        );
        store.register(Arc::new(p.clone()));
        store.record(&p, Ok(out), Duration::ZERO, now);
        let lines = scrape(store);
        assert!(lines.contains(&"app_users 7.0".to_owned()), "{lines:?}");
        assert!(
            lines.contains(&"# HELP app_users Users.\\nAll of them, \\\\ included.".to_owned()),
            "HELP escapes newlines and backslashes: {lines:?}"
        );
    }

    #[test]
    fn samples_older_than_stale_after_are_not_served_and_a_failure_keeps_fresh_ones() {
        let store = Arc::new(Results::new());
        let p = plan("db", "users");
        store.register(Arc::new(p.clone()));
        let mut out = Output::default();
        gauge(&mut out, "app_users", "Users.", "x", 1.0);
        // Finished long ago: past stale_after, nothing is served.
        let long_ago = SystemTime::now() - Duration::from_secs(60);
        store.record(&p, Ok(out.clone()), Duration::ZERO, long_ago);
        assert!(scrape(store.clone())
            .iter()
            .all(|l| !l.contains("app_users")));
        store.record(&p, Ok(out), Duration::ZERO, SystemTime::now());
        assert!(scrape(store.clone())
            .iter()
            .any(|l| l.starts_with("app_users{")));
        // A failed run keeps the last good samples until they are stale_after old.
        let err = RunError::new(Reason::Query, "relation does not exist");
        store.record(&p, Err(err), Duration::ZERO, SystemTime::now());
        assert!(scrape(store).iter().any(|l| l.starts_with("app_users{")));
    }

    fn sample(families: &[Family], name: &str, reason: &str) -> Option<f64> {
        Output {
            families: families.to_vec(),
            ..Output::default()
        }
        .value(name, reason)
    }

    #[test]
    fn certificates_are_published_while_fresh_and_leave_with_their_source() {
        let store = Results::new();
        store.register(Arc::new(plan("db", HEALTH_CHECK)));
        store.set_certificate("db", "db.internal:5432", Some(1.9e9));
        store.set_certificate("db", "replica.internal:5432", Some(1.8e9));
        // A server that stopped offering TLS has no certificate any more.
        store.set_certificate("db", "replica.internal:5432", None);
        let expiry = |now: SystemTime| {
            let families =
                super::self_metrics(&store.snapshot(), &store, now, &super::Scope::Configured);
            (
                sample(
                    &families,
                    "pulse_tls_certificate_expiry_timestamp_seconds",
                    "db.internal:5432",
                ),
                sample(
                    &families,
                    "pulse_tls_certificate_expiry_timestamp_seconds",
                    "replica.internal:5432",
                ),
                sample(
                    &families,
                    "pulse_web_tls_certificate_expiry_timestamp_seconds",
                    "",
                ),
            )
        };
        let now = SystemTime::now();
        assert_eq!(expiry(now), (Some(1.9e9), None, None));
        store.set_web_certificate(Some(2e9));
        assert_eq!(expiry(now), (Some(1.9e9), None, Some(2e9)));
        // Not read again for over an hour: no longer published.
        let later = now + crate::sources::certificates::STALE_AFTER + Duration::from_secs(1);
        assert_eq!(expiry(later), (None, None, Some(2e9)));
        // A source a reload removed takes its certificates along.
        store.retain(|_| false);
        assert!(store.certificates(now, Duration::MAX).is_empty());
    }

    #[test]
    fn a_health_probe_counts_every_run_and_every_reason_from_the_first() {
        let store = Results::new();
        let plan = CheckPlan {
            source: "db".into(),
            kind: "postgres",
            check: HEALTH_CHECK.into(),
            interval: Duration::from_secs(1),
            timeout: Duration::from_millis(500),
            stale_after: Duration::from_secs(3),
            max_series: 10,
            max_bytes: usize::MAX,
            const_labels: vec![],
        };
        store.register(Arc::new(plan.clone()));
        let now = SystemTime::now();
        store.record(&plan, Ok(Output::default()), Duration::ZERO, now);
        for _ in 0..2 {
            let err = RunError::new(Reason::Timeout, "slow");
            store.record(&plan, Err(err), Duration::ZERO, now);
        }
        let families =
            super::self_metrics(&store.snapshot(), &store, now, &super::Scope::Configured);
        // The share of failed probes PulseSourceFlapping reads: 2 of 3.
        assert_eq!(
            sample(&families, "pulse_source_probes_total", ""),
            Some(3.0)
        );
        assert_eq!(
            sample(&families, "pulse_source_probe_failures_total", "timeout"),
            Some(2.0)
        );
        // Reasons that never happened are there at 0, so increase() sees their first.
        assert_eq!(
            sample(&families, "pulse_source_probe_failures_total", "auth"),
            Some(0.0)
        );
        assert_eq!(sample(&families, "pulse_source_up", ""), Some(0.0));
        // A health probe is no check: none of the check families.
        assert_eq!(sample(&families, "pulse_check_success", ""), None);
    }

    #[test]
    fn a_source_scope_serves_that_source_alone_without_the_exporters_own_series() {
        let store = Arc::new(Results::new());
        let now = SystemTime::now();
        for source in ["db", "cache"] {
            let p = plan(source, "jobs");
            store.register(Arc::new(p.clone()));
            let mut out = Output::default();
            gauge(&mut out, "app_jobs", "Jobs.", source, 1.0);
            store.record(&p, Ok(out), Duration::ZERO, now);
        }
        store.set_certificate("db", "db:5432", Some(2e9));
        store.set_certificate("cache", "cache:6379", Some(2e9));
        let encode = |collector: super::SnapshotCollector| {
            let mut registry = prometheus_client::registry::Registry::default();
            registry.register_collector(Box::new(collector));
            let mut text = String::new();
            prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
            text
        };
        let all = encode(super::SnapshotCollector::new(store.clone()));
        let db = encode(super::SnapshotCollector::for_source(store, "db"));
        assert!(all.contains("app_jobs{k=\"cache\"}") && all.contains("pulse_build_info"));
        assert!(db.contains("app_jobs{k=\"db\"} 1"), "{db}");
        assert!(
            db.contains("pulse_check_success{source=\"db\",check=\"jobs\"} 1"),
            "{db}"
        );
        assert!(db.contains("endpoint=\"db:5432\""), "{db}");
        for other in [
            "\"cache\"",
            "pulse_build_info",
            "pulse_config_last_reload",
            "pulse_shard",
        ] {
            assert!(!db.contains(other), "{other} in\n{db}");
        }
    }
}
