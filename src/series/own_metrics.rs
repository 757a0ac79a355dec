//! The exporter's self metrics: declared once (build and config status, per-source health
//! and per-check outcomes; docs/metrics.md lists them from [`SECTIONS`]), and computed here
//! from the state the runtime hands over at each scrape ([`ExporterState`], [`CheckRecord`]).
//! `src/serve/collector.rs` reads that state from the store and publishes the series.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use crate::config_core::{CheckPlan, TimeZone};
use crate::series::metric::Metric;
use crate::series::metric::Section;
use crate::series::run_error::Reason;
use crate::series::sample::{unix_seconds, Output};

/// The exporter's own state its metrics report, read from the runtime at each scrape.
#[derive(Debug, Clone, Default)]
pub struct ExporterState {
    /// Whether the last config (re)load succeeded.
    pub reload_successful: bool,
    /// When a config was last applied.
    pub last_reload_success: Option<SystemTime>,
    /// This replica's shard (from 0) and how many shards there are.
    pub shard: (u32, u32),
    /// Sources this replica runs, and sources in the config.
    pub sources: (usize, usize),
    /// Targets leased now, and the most that may be.
    pub leased: (usize, usize),
    /// Leases ended because their target had nothing in the cache.
    pub leases_replaced: u64,
    /// The platform's time zone, whose offset is published.
    pub timezone: Option<TimeZone>,
    /// When the web server's own certificate expires, when it serves TLS.
    pub web_certificate_expiry: Option<f64>,
}

/// What a check (or a source's health probe) has done so far, as its series report it.
#[derive(Debug, Clone, Copy)]
pub struct CheckRecord<'a> {
    /// The check's plan: its source, kind and name.
    pub plan: &'a CheckPlan,
    /// Whether its last run succeeded.
    pub succeeded: bool,
    /// How long its last run took.
    pub duration: Duration,
    /// When a run last succeeded.
    pub last_success: Option<SystemTime>,
    /// Runs finished so far.
    pub runs: u64,
    /// Failures so far, by reason.
    pub failures: &'a BTreeMap<Reason, u64>,
    /// Series it serves now.
    pub series: usize,
    /// Series dropped by the cap, summed over runs.
    pub dropped: u64,
    /// Values skipped (NULLs and the like), summed over runs.
    pub skipped: u64,
    /// Label values cut to their maximum length, summed over runs.
    pub truncated: u64,
    /// Whether its last run, when it succeeded, measured (false: the server cannot give what
    /// the check measures); `None` while it has not succeeded.
    pub measured: Option<bool>,
}

/// 1 for true, 0 for false.
fn flag(b: bool) -> f64 {
    if b {
        1.0
    } else {
        0.0
    }
}

/// The exporter's own series at `now`: build, reloads, shard, leases, scrape time, time zone
/// and web certificate.
pub fn exporter_series(out: &mut Output, state: &ExporterState, now: SystemTime) {
    out.add(&BUILD_INFO, &[env!("CARGO_PKG_VERSION")], 1.0);
    out.add(&RELOAD_SUCCESSFUL, &[], flag(state.reload_successful));
    if let Some(t) = state.last_reload_success {
        out.add(&RELOAD_SUCCESS_TIME, &[], unix_seconds(t));
    }
    let (index, count) = (state.shard.0.to_string(), state.shard.1.to_string());
    out.add(&SHARD_INFO, &[&index, &count], 1.0);
    out.add(&SHARD_SOURCES, &[], state.sources.0 as f64);
    out.add(&CONFIG_SOURCES, &[], state.sources.1 as f64);
    out.add(&LEASED_TARGETS, &[], state.leased.0 as f64);
    out.add(&LEASED_TARGETS_MAX, &[], state.leased.1 as f64);
    out.add(&LEASES_REPLACED, &[], state.leases_replaced as f64);
    out.add(&SCRAPE_TIME, &[], unix_seconds(now));
    if let Some(tz) = state.timezone {
        let offset = tz.offset_seconds(chrono::DateTime::<chrono::Utc>::from(now));
        out.add(&TIMEZONE_OFFSET, &[tz.0.name()], f64::from(offset));
    }
    if let Some(expiry) = state.web_certificate_expiry {
        out.add(&WEB_CERTIFICATE_EXPIRY, &[], expiry);
    }
}

/// The expiry of the first certificate of the chain `source`'s `endpoint` presents.
pub fn certificate_series(out: &mut Output, source: &str, endpoint: &str, expiry: f64) {
    out.add(&TLS_CERTIFICATE_EXPIRY, &[source, endpoint], expiry);
}

/// Per metric, the series left out of a scrape because an earlier check published the same
/// name and labels.
pub fn collision_series(out: &mut Output, collided: &BTreeMap<String, u64>) {
    for (metric, n) in collided {
        out.add(&SERIES_COLLISIONS, &[metric], *n as f64);
    }
}

/// A check's series, or its source's for a health probe.
pub fn check_series(out: &mut Output, record: &CheckRecord<'_>) {
    let p = record.plan;
    let duration = record.duration.as_secs_f64();
    if p.is_health() {
        let labels = [p.source.as_str(), p.kind];
        out.add(&SOURCE_UP, &labels, flag(record.succeeded));
        out.add(&SOURCE_DURATION, &labels, duration);
        if let Some(t) = record.last_success {
            out.add(&SOURCE_LAST_SUCCESS, &labels, unix_seconds(t));
        }
        // The denominator of the share of failed probes (PulseSourceFlapping): a source
        // failing one probe in two never fails two minutes in a row.
        out.add(&SOURCE_PROBES, &labels, record.runs as f64);
        // Every reason is exposed from the start so that increase() sees the first failure.
        for reason in Reason::ALL {
            let n = record.failures.get(&reason).copied().unwrap_or(0);
            out.add(
                &SOURCE_FAILURES,
                &[labels[0], labels[1], reason.as_str()],
                n as f64,
            );
        }
        return;
    }
    let labels = [p.source.as_str(), p.check.as_str()];
    out.add(&CHECK_SUCCESS, &labels, flag(record.succeeded));
    if let Some(measured) = record.measured {
        out.add(&CHECK_MEASURED, &labels, flag(measured));
    }
    out.add(&CHECK_DURATION, &labels, duration);
    if let Some(t) = record.last_success {
        out.add(&CHECK_LAST_SUCCESS, &labels, unix_seconds(t));
    }
    out.add(&CHECK_SERIES, &labels, record.series as f64);
    out.add(&CHECK_DROPPED, &labels, record.dropped as f64);
    out.add(&CHECK_SKIPPED, &labels, record.skipped as f64);
    // Rare, and a series per check: served from the first cut value on.
    if record.truncated > 0 {
        out.add(&CHECK_TRUNCATED, &labels, record.truncated as f64);
    }
    // Both outcomes from the first run on, so that rate() sees the first failure: the
    // error ratio of a check's objective.
    let failed: u64 = record.failures.values().sum();
    for (outcome, n) in [
        ("success", record.runs.saturating_sub(failed)),
        ("failure", failed),
    ] {
        out.add(&CHECK_RUNS, &[labels[0], labels[1], outcome], n as f64);
    }
    for (reason, n) in record.failures {
        out.add(
            &CHECK_FAILURES,
            &[labels[0], labels[1], reason.as_str()],
            *n as f64,
        );
    }
}

/// The self metrics' sections of docs/metrics.md, in order.
pub const SECTIONS: &[Section] = &[
    Section {
        title: "Exporter",
        intro: "",
        metrics: &[
            BUILD_INFO,
            RELOAD_SUCCESSFUL,
            RELOAD_SUCCESS_TIME,
            SHARD_INFO,
            SHARD_SOURCES,
            CONFIG_SOURCES,
            LEASED_TARGETS,
            LEASED_TARGETS_MAX,
            LEASES_REPLACED,
            PROBE_WARMING,
            SCRAPE_TIME,
            TIMEZONE_OFFSET,
            SERIES_COLLISIONS,
        ],
    },
    Section {
        title: "Sources (one set per source, from its health probe)",
        intro: "",
        metrics: &[
            SOURCE_UP,
            SOURCE_DURATION,
            SOURCE_LAST_SUCCESS,
            SOURCE_PROBES,
            SOURCE_FAILURES,
        ],
    },
    Section {
        title: "TLS certificates",
        intro:
            "Every TLS endpoint a source's clients connect to (`sslmode` other than `disable` on \
                Postgres, `rediss://`, `amqps://`, `https://` management, S3 and Stripe URLs, \
                MongoDB with `tls=true` or `mongodb+srv://`) is read by a handshake of its own \
                beside the health probe, every 10 minutes (every minute while reads fail), as a \
                reconnect would see it. The read trusts the chain it is shown, since it only reads \
                dates: a certificate the clients refuse fails the health probe with reason `tls`. \
                An expiry read more than an hour ago is no longer published.",
        metrics: &[TLS_CERTIFICATE_EXPIRY, WEB_CERTIFICATE_EXPIRY],
    },
    Section {
        title: "Checks (one set per configured check)",
        intro: "A failing check keeps serving its last good samples for `stale_after` (default \
                three intervals) while `pulse_check_success` is 0; then they disappear.",
        metrics: &[
            CHECK_SUCCESS,
            CHECK_MEASURED,
            CHECK_DURATION,
            CHECK_LAST_SUCCESS,
            CHECK_SERIES,
            CHECK_DROPPED,
            CHECK_SKIPPED,
            CHECK_TRUNCATED,
            CHECK_RUNS,
            CHECK_FAILURES,
        ],
    },
];

/// `pulse_series_collisions`.
pub const SERIES_COLLISIONS: Metric = Metric::gauge(
    "pulse_series_collisions",
    "Series left out of this scrape because another check published the same name and labels.",
    &["metric"],
)
.doc("Series of `metric` left out of this scrape because an earlier check (by source, then check name) published the same name and labels; absent when none. `check` refuses the collisions it can see in the config; this counts the ones only the data shows (two queries returning the same label values). Logged as `series.collision` when the number changes.");

/// `pulse_tls_certificate_expiry_timestamp_seconds`.
pub const TLS_CERTIFICATE_EXPIRY: Metric = Metric::gauge(
    "pulse_tls_certificate_expiry_timestamp_seconds",
    "When the first certificate of the chain the source's TLS endpoint presents expires (notAfter).",
    &["source", "endpoint"],
)
.doc("The earliest `notAfter` of the certificate chain `endpoint` (`host:port`) presents, leaf and intermediates alike, read every 10 minutes; absent for an endpoint without TLS (a Postgres that answers the `SSLRequest` with `N`) and until the first read. `PulseSourceCertificateExpiring` warns 14 days ahead.");

/// `pulse_web_tls_certificate_expiry_timestamp_seconds`.
pub const WEB_CERTIFICATE_EXPIRY: Metric = Metric::gauge(
    "pulse_web_tls_certificate_expiry_timestamp_seconds",
    "When the first certificate of the chain this exporter serves /metrics with expires (notAfter).",
    &[],
)
.doc("The earliest `notAfter` of the web config's `cert_file`, read at start and whenever the watched web config or certificate changes; absent when serving plain HTTP. `PulseExporterCertificateExpiring` warns 14 days ahead.");

/// `pulse_build_info`.
pub const BUILD_INFO: Metric = Metric::gauge(
    "pulse_build_info",
    "pulse-exporter build information; always 1.",
    &["version"],
)
.doc("Always 1; the build's version.");

/// `pulse_config_last_reload_successful`.
pub const RELOAD_SUCCESSFUL: Metric = Metric::gauge(
    "pulse_config_last_reload_successful",
    "Whether the last configuration (re)load succeeded.",
    &[],
)
.doc("1 if the last config (re)load succeeded, else 0.");

/// `pulse_config_last_reload_success_timestamp_seconds`.
pub const RELOAD_SUCCESS_TIME: Metric = Metric::gauge(
    "pulse_config_last_reload_success_timestamp_seconds",
    "When a configuration was last loaded successfully.",
    &[],
)
.doc("When a config was last applied.");

/// `pulse_shard_info`.
pub const SHARD_INFO: Metric = Metric::gauge(
    "pulse_shard_info",
    "The shard of the config this replica runs (shard, from 0) and how many there are (shards); always 1.",
    &["shard", "shards"],
)
.doc("Always 1: the shard of the config this replica runs (from 0) and how many shards there are (`--shard.index`, `--shard.count`; `0` of `1` when not sharded).");

/// `pulse_shard_sources`.
pub const SHARD_SOURCES: Metric = Metric::gauge(
    "pulse_shard_sources",
    "Sources of the config this replica runs (its shard's).",
    &[],
)
.doc("Sources of the config this replica runs. Summed over one replica per shard, it equals `pulse_config_sources`.");

/// `pulse_leased_targets`.
pub const LEASED_TARGETS: Metric = Metric::gauge(
    "pulse_leased_targets",
    "Targets leased through templates (/probe?template=&target=) and running now.",
    &[],
)
.doc("Targets leased through `templates:` (`/probe?template=…&target=…`) whose checks run now. Each lapses when no request renewed it for its idle time; the landing page lists them with their age.");

/// `pulse_leases_replaced_total`.
pub const LEASES_REPLACED: Metric = Metric::counter(
    "pulse_leases_replaced_total",
    "Leases ended because their target had nothing in the cache past a bound; the next request starts a fresh lease.",
    &[],
)
.doc("Leases ended because their target had nothing in the cache for longer than a bound (a lease's series live exactly as long as the lease, so this counts a fault of the exporter, logged as `lease.replaced`): the next request for the target starts a fresh lease. Above 0 is worth a bug report.");
/// `pulse_leased_targets_max`.
pub const LEASED_TARGETS_MAX: Metric = Metric::gauge(
    "pulse_leased_targets_max",
    "Most targets that may be leased at once (global.max_leased_targets).",
    &[],
)
.doc("`global.max_leased_targets`: past it a request for a new target is refused with 503 until a lease lapses. Alert on `pulse_leased_targets / pulse_leased_targets_max` nearing 1.");

/// `pulse_probe_warming`.
pub const PROBE_WARMING: Metric = Metric::gauge(
    "pulse_probe_warming",
    "1 while some checks of this leased target have not finished a first run: the answer is partial.",
    &[],
)
.doc("Served only at `/probe?template=…&target=…`: 1 while some checks of the leased target have not finished a first run, so the answer holds what there is so far (a first request waits for them up to half the scrape timeout); 0 once every check has run.");

/// `pulse_config_sources`.
pub const CONFIG_SOURCES: Metric = Metric::gauge(
    "pulse_config_sources",
    "Sources in the config, all shards together.",
    &[],
)
.doc("Sources in the config file, all shards together.");

/// `pulse_scrape_timestamp_seconds`.
pub const SCRAPE_TIME: Metric = Metric::gauge(
    "pulse_scrape_timestamp_seconds",
    "When this exposition was encoded from the cache.",
    &[],
)
.doc("When this exposition was encoded (compare with the `*_timestamp_seconds` below). A body is encoded once per change of the results and served to every scrape until the next, so two scrapes may show the same time.");

/// `pulse_timezone_offset_seconds`.
pub const TIMEZONE_OFFSET: Metric = Metric::gauge(
    "pulse_timezone_offset_seconds",
    "UTC offset now of the platform's time zone (global.timezone), in seconds east of UTC.",
    &["timezone"],
)
.doc("With `global.timezone`: that zone's offset from UTC now, in seconds (3600 for Berlin in winter, 7200 in summer); absent without it. The business rules compare it with its value a week earlier to compare the same local hour across a daylight-saving change.");

/// `pulse_source_up`.
pub const SOURCE_UP: Metric = Metric::gauge(
    "pulse_source_up",
    "Whether the source's last health probe succeeded (1) or failed (0).",
    &["source", "kind"],
)
.doc("1 if the last health probe succeeded, 0 if it failed. Absent until the first probe ran.");

/// `pulse_source_probe_duration_seconds`.
pub const SOURCE_DURATION: Metric = Metric::gauge(
    "pulse_source_probe_duration_seconds",
    "Duration of the source's last health probe.",
    &["source", "kind"],
)
.doc("Duration of the last health probe.");

/// `pulse_source_last_success_timestamp_seconds`.
pub const SOURCE_LAST_SUCCESS: Metric = Metric::gauge(
    "pulse_source_last_success_timestamp_seconds",
    "When the source's health probe last succeeded.",
    &["source", "kind"],
)
.doc("When the health probe last succeeded.");

/// `pulse_source_probes_total`.
pub const SOURCE_PROBES: Metric = Metric::counter(
    "pulse_source_probes_total",
    "Health probes of the source run, failed or not.",
    &["source", "kind"],
)
.doc("Health probes run, failed or not: with the failures, the share of probes that failed.");

/// `pulse_source_probe_failures_total`.
pub const SOURCE_FAILURES: Metric = Metric::counter(
    "pulse_source_probe_failures_total",
    "Failed health probes of the source, by bounded reason.",
    &["source", "kind", "reason"],
)
.doc("Failed health probes by reason; every reason is present at 0 from the first probe on.");

/// `pulse_check_success`.
pub const CHECK_SUCCESS: Metric = Metric::gauge(
    "pulse_check_success",
    "Whether the check's last run succeeded (1) or failed (0).",
    &["source", "check"],
)
.doc("1 if the check's last run succeeded, 0 if it failed; absent until the check's first run ends (the landing page and `probe` show it *pending*). A run that succeeded but could not measure is 1, with `pulse_check_measured` 0: not a failure to page on, and not OK either.");

/// `pulse_check_measured`.
pub const CHECK_MEASURED: Metric = Metric::gauge(
    "pulse_check_measured",
    "Whether the check's last successful run measured (1) or found the server cannot give what it measures (0).",
    &["source", "check"],
)
.doc("Published while the last run succeeded. 0 means *not measured*: the run succeeded (`pulse_check_success` stays 1, so nothing pages) but the server cannot give what the check measures (an extension absent or not loaded, a command it forbids, a role without the privilege), and the check's numbers are absent, not 0. The landing page and `probe` show NOT MEASURED with the reason and the fix.");

/// `pulse_check_duration_seconds`.
pub const CHECK_DURATION: Metric = Metric::gauge(
    "pulse_check_duration_seconds",
    "Duration of the check's last run.",
    &["source", "check"],
)
.doc("Duration of the last run.");

/// `pulse_check_last_success_timestamp_seconds`.
pub const CHECK_LAST_SUCCESS: Metric = Metric::gauge(
    "pulse_check_last_success_timestamp_seconds",
    "When the check last succeeded.",
    &["source", "check"],
)
.doc("When the check last succeeded.");

/// `pulse_check_series`.
pub const CHECK_SERIES: Metric = Metric::gauge(
    "pulse_check_series",
    "Series the check currently serves from cache (0 once its samples went stale).",
    &["source", "check"],
)
.doc("Series the check serves now (0 once its samples went stale).");

/// `pulse_check_series_dropped_total`.
pub const CHECK_DROPPED: Metric = Metric::counter(
    "pulse_check_series_dropped_total",
    "Series dropped by the check's caps (max_series, max_bytes), summed over runs.",
    &["source", "check"],
)
.doc("Series dropped by the `max_series` or `max_bytes` cap, past a key pattern's or queue cap, or repeated within one run (the same labels twice), summed over runs.");

/// `pulse_check_values_skipped_total`.
pub const CHECK_SKIPPED: Metric = Metric::counter(
    "pulse_check_values_skipped_total",
    "Values the check skipped (SQL NULLs, non-numeric values under a key pattern), summed over runs.",
    &["source", "check"],
)
.doc("SQL NULLs, non-numeric values under a Redis pattern and keys that are not hashes where hash fields are read, skipped and summed over runs.");

/// `pulse_check_label_values_truncated_total`.
pub const CHECK_TRUNCATED: Metric = Metric::counter(
    "pulse_check_label_values_truncated_total",
    "Label values cut to 256 bytes (ending in …), summed over runs.",
    &["source", "check"],
)
.doc("Label values from the data (text columns, keys, worker ids) longer than 256 bytes, cut to 256 bytes ending in `…` and summed over runs; appears with the first cut value. Two values equal in their first 253 bytes become one series (the second is counted as dropped).");

/// `pulse_check_runs_total`.
pub const CHECK_RUNS: Metric = Metric::counter(
    "pulse_check_runs_total",
    "Finished runs of the check, by outcome (success or failure).",
    &["source", "check", "outcome"],
)
.doc("Finished runs by outcome, both published from the first run; a run that fails counts under `failure` and once in `pulse_check_failures_total` by its reason. A check's objective (`objective:` on the check) is the share of `success`.");

/// `pulse_check_failures_total`.
pub const CHECK_FAILURES: Metric = Metric::counter(
    "pulse_check_failures_total",
    "Failed runs of the check, by bounded reason.",
    &["source", "check", "reason"],
)
.doc("Failed runs by reason; a reason appears with its first failure.");

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config_core::HEALTH_CHECK;

    fn plan(check: &str) -> CheckPlan {
        CheckPlan::for_test("db", check)
    }

    fn names(out: &Output) -> Vec<(String, usize)> {
        out.families
            .iter()
            .map(|f| (f.name.clone(), f.samples.len()))
            .collect()
    }

    #[test]
    fn a_health_probe_reports_its_source_with_every_reason_and_a_check_only_what_happened() {
        let failures = BTreeMap::from([(Reason::Timeout, 2)]);
        let health = plan(HEALTH_CHECK);
        let mut record = CheckRecord {
            plan: &health,
            succeeded: false,
            duration: Duration::from_millis(250),
            last_success: None,
            runs: 5,
            failures: &failures,
            series: 0,
            dropped: 0,
            skipped: 0,
            truncated: 0,
            measured: None,
        };
        let mut out = Output::default();
        check_series(&mut out, &record);
        let families = names(&out);
        assert!(families.contains(&(SOURCE_UP.name.to_owned(), 1)));
        // increase() sees a reason's first failure only if it was 0 before.
        let every = (SOURCE_FAILURES.name.to_owned(), Reason::ALL.len());
        assert!(families.contains(&every), "{families:?}");
        assert!(!families.iter().any(|(n, _)| n.starts_with("pulse_check_")));

        let check = plan("users");
        record.plan = &check;
        let mut out = Output::default();
        check_series(&mut out, &record);
        let families = names(&out);
        assert!(families.contains(&(CHECK_FAILURES.name.to_owned(), 1)));
        // Both outcomes, so that rate() of a check's objective sees its first failure.
        let runs = out
            .families
            .iter()
            .find(|f| f.name == CHECK_RUNS.name)
            .unwrap();
        let by_outcome: Vec<(String, f64)> = runs
            .samples
            .iter()
            .map(|s| (s.labels.last().unwrap().1.clone(), s.value))
            .collect();
        assert_eq!(
            by_outcome,
            [("success".to_owned(), 3.0), ("failure".to_owned(), 2.0)]
        );
        assert!(!families.iter().any(|(n, _)| n == CHECK_TRUNCATED.name));
        assert!(!families.iter().any(|(n, _)| n == CHECK_LAST_SUCCESS.name));
        record.truncated = 3;
        let mut out = Output::default();
        check_series(&mut out, &record);
        assert!(names(&out).contains(&(CHECK_TRUNCATED.name.to_owned(), 1)));
    }
}
