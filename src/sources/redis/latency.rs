//! Which Redis commands are slow: the server's own statistics, read in the background.
//!
//! Each run reads `INFO commandstats` (calls, time, rejected and failed calls per command),
//! `LATENCY HISTOGRAM` (Redis 7+: per command, cumulative counts under power-of-two bounds,
//! which can be summed across the nodes of a cluster, unlike the percentiles of `INFO
//! latencystats`) and the slow log entries added since the last run (`SLOWLOG GET`: the
//! slowest commands by name, never their arguments). The top N commands by calls are
//! published.
//!
//! A server that lacks a command, or refuses it (an older version, a managed service that
//! renames or forbids `LATENCY` or `SLOWLOG`, an ACL), leaves its numbers absent while the
//! rest still publishes; the gap is logged once.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::Value;
use serde::Deserialize;
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::client::{classify, Conn};
use crate::config_core::validate::{in_range, Statistics, STATISTICS};
use crate::config_core::{ConfigError, Dur};
use crate::series::metric::Metric;
use crate::series::run_error::RunError;
use crate::series::sample::{HistogramData, Output};
use crate::series::topn::Largest;
use crate::sources::{RunFuture, Runnable};

/// The name of the built-in check.
pub const CHECK: &str = "latency";

/// `latency:` of a Redis source: per-command latency from the server's own statistics.
/// `false` turns it off.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct LatencySettings {
    /// How often the statistics are read (default 1m; 10s to 1h).
    pub interval: Dur,
    /// How long one read may take before it is cancelled, on the server too (default 5s;
    /// shorter than the interval).
    pub timeout: Dur,
    /// Commands published: the `top` most called and the `top` that took the most time
    /// (default 20; 1 to 100).
    pub top: usize,
    /// The 99th percentile a command may take (default 10ms): published as
    /// `pulse_redis_command_p99_limit_seconds`, which PulseRedisCommandSlow compares the
    /// histograms with.
    pub p99_limit: Dur,
    /// Slow log entries read per run at most (default 128; 1 to 1024): entries past them in
    /// one window are counted, not read.
    pub slowlog_entries: usize,
}

impl Default for LatencySettings {
    fn default() -> Self {
        LatencySettings {
            interval: Dur(STATISTICS.interval),
            timeout: Dur(STATISTICS.timeout),
            top: STATISTICS.top,
            p99_limit: Dur(Duration::from_millis(10)),
            slowlog_entries: 128,
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
        if self.p99_limit.0.is_zero() {
            errors.push(ConfigError::new(
                format!("{path}.p99_limit"),
                "must be above 0, e.g. 10ms",
            ));
        }
        in_range(
            &format!("{path}.slowlog_entries"),
            self.slowlog_entries as u64,
            1,
            1024,
            errors,
        );
    }
}

pub(super) const CALLS: Metric = Metric::counter(
    "pulse_redis_command_calls_total",
    "Calls of the command since the server's statistics were reset (INFO commandstats calls), for the most called and the busiest commands.",
    &["source", "command"],
)
.doc("Calls of each command (`INFO commandstats`), for the `top` most called and the `top` that took the most time (`latency:`). Subcommands are named `config|get`.");
pub(super) const TIME: Metric = Metric::counter(
    "pulse_redis_command_seconds_total",
    "Time the server spent executing the command (INFO commandstats usec).",
    &["source", "command"],
)
.doc("Time spent executing each command (`INFO commandstats` `usec`): over `pulse_redis_command_calls_total`, the mean latency; its `rate()` is the load by command, the share of the server's one command thread each takes (1 is all of it).");
pub(super) const REJECTED: Metric = Metric::counter(
    "pulse_redis_command_rejected_calls_total",
    "Calls of the command refused before running: ACL, arity, OOM, a busy script (INFO commandstats rejected_calls).",
    &["source", "command"],
)
.doc("Calls refused before running (`rejected_calls`, Redis 6.2+): ACL, wrong arity, `OOM` at maxmemory, a busy script.");
pub(super) const FAILED: Metric = Metric::counter(
    "pulse_redis_command_failed_calls_total",
    "Calls of the command that ran and failed (INFO commandstats failed_calls).",
    &["source", "command"],
)
.doc("Calls that ran and returned an error (`failed_calls`, Redis 6.2+).");
pub(super) const DURATION: Metric = Metric::histogram(
    "pulse_redis_command_duration_seconds",
    "Latency of the command as the server measured it (LATENCY HISTOGRAM; the sum is INFO commandstats usec).",
    &["source", "command"],
)
.doc("Per command, the server's own latency histogram (`LATENCY HISTOGRAM`, Redis 7+): cumulative counts under bounds that double from 1 µs to about 1 s, the same for every command and server, so `histogram_quantile` of a `sum` across the nodes of a cluster is the cluster's percentile (Redis's own bounds sit up to 3 % above these). A native histogram where Prometheus negotiates protobuf. Absent where the server lacks or forbids `LATENCY`.");
pub(super) const P99_LIMIT: Metric = Metric::gauge(
    "pulse_redis_command_p99_limit_seconds",
    "The 99th percentile latency a command may take (latency.p99_limit in the source config).",
    &["source"],
)
.doc("`latency.p99_limit` of the source (default 10 ms): PulseRedisCommandSlow warns when a command's 99th percentile stays above it.");
pub(super) const SLOWLOG_ENTRIES: Metric = Metric::counter(
    "pulse_redis_slowlog_entries_total",
    "Entries added to the server's slow log since pulse-exporter first read it.",
    &["source"],
)
.doc("Slow log entries added since the exporter first read it (counted by entry id, so entries the log's length dropped between reads count too); starts at 0.");
pub(super) const SLOWLOG_SLOWEST: Metric = Metric::gauge(
    "pulse_redis_slowlog_slowest_seconds",
    "The slowest slow log entry of the command added in the last window (no argument is read into a label).",
    &["source", "command"],
)
.doc("Per command name, the longest slow log entry added since the last read (at most 10 commands); absent when none was added. Arguments are never published.");

/// Commands of the slow log published per window.
const SLOWEST_COMMANDS: usize = 10;

/// One command's `INFO commandstats` line.
#[derive(Debug, Clone, Default, PartialEq)]
struct CommandStats {
    calls: f64,
    usec: f64,
    rejected: Option<f64>,
    failed: Option<f64>,
}

/// `INFO commandstats`: `cmdstat_get:calls=2,usec=15,usec_per_call=7.50,rejected_calls=0,
/// failed_calls=0`, one line per command called; unknown keys are skipped.
fn parse_commandstats(info: &str) -> HashMap<String, CommandStats> {
    let mut out = HashMap::new();
    for line in info.lines() {
        let Some((name, fields)) = line
            .trim()
            .strip_prefix("cmdstat_")
            .and_then(|l| l.split_once(':'))
        else {
            continue;
        };
        let mut s = CommandStats::default();
        for (k, v) in fields.split(',').filter_map(|f| f.split_once('=')) {
            let Ok(v) = v.parse::<f64>() else { continue };
            match k {
                "calls" => s.calls = v,
                "usec" => s.usec = v,
                "rejected_calls" => s.rejected = Some(v),
                "failed_calls" => s.failed = Some(v),
                _ => {}
            }
        }
        out.insert(name.to_owned(), s);
    }
    out
}

/// One command's `LATENCY HISTOGRAM` entry: its calls, and cumulative counts by upper bound
/// in µs, ascending.
#[derive(Debug, Clone, Default, PartialEq)]
struct Latency {
    calls: u64,
    buckets: Vec<(f64, u64)>,
}

/// The pairs of a map, whether RESP3 sent a map or RESP2 a flat array of keys and values.
fn pairs(v: &Value) -> Vec<(&Value, &Value)> {
    match v {
        Value::Map(m) => m.iter().map(|(k, v)| (k, v)).collect(),
        Value::Array(a) => a.chunks_exact(2).map(|c| (&c[0], &c[1])).collect(),
        _ => Vec::new(),
    }
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        Value::VerbatimString { text, .. } => Some(text.clone()),
        Value::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        Value::Double(d) if d.is_finite() => Some(*d as i64),
        other => text(other)?.parse().ok(),
    }
}

/// `LATENCY HISTOGRAM`'s reply: `{name: {calls: n, histogram_usec: {bound: count, …}}}`.
fn parse_histograms(reply: &Value) -> HashMap<String, Latency> {
    let mut out = HashMap::new();
    for (name, entry) in pairs(reply) {
        let Some(name) = text(name) else { continue };
        let mut latency = Latency::default();
        for (k, v) in pairs(entry) {
            match text(k).as_deref() {
                Some("calls") => latency.calls = int(v).unwrap_or(0).max(0) as u64,
                Some("histogram_usec") => {
                    latency.buckets = pairs(v)
                        .into_iter()
                        .filter_map(|(b, c)| Some((int(b)? as f64, int(c)?.max(0) as u64)))
                        .collect();
                }
                _ => {}
            }
        }
        latency.buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        out.insert(name, latency);
    }
    out
}

/// The classic buckets' bounds (s): doubling from 1 µs to about 1 s, for every command of
/// every server. Redis lists only the bounds where its count grew, each a little above a
/// power of two (33, 66, 132 … 2113 µs), so one series' bounds are not another's.
pub(super) fn classic_bounds() -> Vec<f64> {
    (0..=20).map(|k| f64::from(1u32 << k) / 1e6).collect()
}

/// How far above a power of two Redis's bounds sit (33 µs for 32, 2113 for 2048: 1.0320).
const BOUND_SLACK: f64 = 1.04;

/// A histogram from Redis's cumulative buckets (µs), the calls and the time (µs). Counts
/// never fall from one bound to the next (a count that did is read as the one before). The
/// native buckets keep Redis's own bounds; the classic ones are on [`classic_bounds`].
fn histogram(latency: &Latency, usec: f64) -> HistogramData {
    let mut cumulative = Vec::with_capacity(latency.buckets.len());
    let mut last = 0u64;
    for (bound, count) in &latency.buckets {
        last = last.max(*count);
        cumulative.push((bound / 1e6, last));
    }
    let mut h = HistogramData::from_cumulative(&cumulative, latency.calls.max(last), usec / 1e6);
    h.rebucket(&classic_bounds(), BOUND_SLACK);
    h
}

/// A slow log entry: its id, the command's name and how long it took (µs).
#[derive(Debug, Clone, PartialEq)]
struct SlowEntry {
    id: i64,
    command: String,
    micros: f64,
}

/// `SLOWLOG GET`'s reply, newest first: `[id, time, µs, [args…], client, name, …]`. Only the
/// first argument, the command's name, is read, lowercased and cut to 64 bytes.
fn parse_slowlog(reply: &Value) -> Vec<SlowEntry> {
    let Value::Array(entries) = reply else {
        return Vec::new();
    };
    entries
        .iter()
        .filter_map(|e| {
            let Value::Array(f) = e else { return None };
            let command = match f.get(3)? {
                Value::Array(args) => text(args.first()?)?,
                _ => return None,
            };
            let mut command = command.to_ascii_lowercase();
            if !command.bytes().all(|b| b.is_ascii_graphic()) || command.is_empty() {
                command = "unknown".to_owned();
            }
            command.truncate(64);
            Some(SlowEntry {
                id: int(f.first()?)?,
                micros: int(f.get(2)?)? as f64,
                command,
            })
        })
        .collect()
}

/// The slow log entries new since the entry `last` (none on the first read), and how many
/// were added in all (more than those read when the log dropped some). A server restart
/// (`run_id` changed) or an id that went back starts over from the entries read.
fn new_entries(
    entries: &[SlowEntry],
    last: Option<(String, i64)>,
    run_id: &str,
) -> (Vec<SlowEntry>, u64) {
    let newest = entries.iter().map(|e| e.id).max();
    match last {
        None => (Vec::new(), 0),
        // A restart, an id that went back, or no id seen yet (the log was empty): only the
        // entries read are known to be new.
        Some((run, id)) if run != run_id || id < 0 || newest.is_some_and(|n| n < id) => {
            (entries.to_vec(), entries.len() as u64)
        }
        Some((_, id)) => {
            let fresh: Vec<SlowEntry> = entries.iter().filter(|e| e.id > id).cloned().collect();
            let added = newest.map_or(0, |n| (n - id).max(0) as u64);
            (fresh, added)
        }
    }
}

/// The entries added since `last`, how many, and where the next read starts: the newest id
/// read, or, when the log is empty, the last one seen (`SLOWLOG RESET` empties the log but
/// ids go on from where they were: forgetting it would count them all at the next entry).
fn advance(
    entries: &[SlowEntry],
    last: Option<(String, i64)>,
    run_id: String,
) -> (Vec<SlowEntry>, u64, (String, i64)) {
    let kept = last
        .as_ref()
        .filter(|(run, _)| *run == run_id)
        .map(|(_, id)| *id);
    let (fresh, added) = new_entries(entries, last, &run_id);
    let newest = entries.iter().map(|e| e.id).max().or(kept).unwrap_or(-1);
    (fresh, added, (run_id, newest))
}

/// The probe of the built-in `latency` check.
pub(super) struct LatencyProbe {
    pub(super) source: String,
    pub(super) conn: std::sync::Arc<Conn>,
    pub(super) settings: LatencySettings,
    pub(super) state: Mutex<SlowlogState>,
}

/// What the probe keeps between runs.
#[derive(Default)]
pub(super) struct SlowlogState {
    /// The server's run id and the newest slow log entry read.
    last: Option<(String, i64)>,
    /// Entries counted since the first read.
    counted: u64,
    /// The commands whose absence was logged.
    logged: HashSet<&'static str>,
}

impl SlowlogState {
    /// Logs once per command that `what` is unavailable on this server: a server that lacks
    /// or forbids it says so at every run, and one line is enough.
    fn gap(&mut self, source: &str, what: &'static str, e: &redis::RedisError) {
        if self.logged.insert(what) {
            tracing::warn!(source, command = what, error = %crate::secrets::scrub(&e.to_string()), "a latency statistic is unavailable on this server; the others are still published");
        }
    }
}

/// Whether `e` lost the connection, which fails the run; any other error of a statistic (an
/// older server, a renamed or forbidden command, an ACL) leaves only that statistic absent.
fn lost(e: &redis::RedisError) -> bool {
    e.is_connection_dropped() || e.is_io_error() || e.is_timeout()
}

impl Runnable for LatencyProbe {
    fn run(&self, _deadline: Instant) -> RunFuture<'_> {
        Box::pin(async move {
            let mut conn = self.conn.get().await?;
            let source = self.source.as_str();
            let run_id = run_id(&mut conn).await?;
            let mut state = self.state.lock().await;
            let stats = self.commandstats(&mut conn, &mut state).await?;
            let (histograms, refused) = self.histograms(&mut conn, &mut state).await?;
            let slowlog = self.slowlog(&mut conn, &mut state).await?;
            let mut out = Output {
                unmeasured: refused,
                ..Output::default()
            };
            out.add(
                &P99_LIMIT,
                &[source],
                self.settings.p99_limit.0.as_secs_f64(),
            );
            commands(&mut out, source, &stats, &histograms, self.settings.top);
            if let Some(entries) = slowlog {
                let (fresh, added, next) = advance(&entries, state.last.take(), run_id);
                state.counted += added;
                state.last = Some(next);
                out.add(&SLOWLOG_ENTRIES, &[source], state.counted as f64);
                slowest(&mut out, source, &fresh, &stats);
            }
            Ok(out)
        })
    }
}

/// The server's `run_id`: the slow log's ids start over when it changes.
async fn run_id(conn: &mut ConnectionManager) -> Result<String, RunError> {
    let server: String = redis::cmd("INFO")
        .arg("server")
        .query_async(conn)
        .await
        .map_err(classify)?;
    Ok(server
        .lines()
        .find_map(|l| l.trim().strip_prefix("run_id:"))
        .unwrap_or_default()
        .to_owned())
}

impl LatencyProbe {
    /// `INFO commandstats` by command; empty where the server refuses it.
    async fn commandstats(
        &self,
        conn: &mut ConnectionManager,
        state: &mut SlowlogState,
    ) -> Result<HashMap<String, CommandStats>, RunError> {
        match redis::cmd("INFO")
            .arg("commandstats")
            .query_async::<String>(conn)
            .await
        {
            Ok(info) => Ok(parse_commandstats(&info)),
            Err(e) if lost(&e) => Err(classify(e)),
            Err(e) => {
                state.gap(&self.source, "INFO commandstats", &e);
                Ok(HashMap::new())
            }
        }
    }

    /// `LATENCY HISTOGRAM` by command; where the server refuses it, none, and why per-command
    /// latency is not measured, with the fix, for the run's output to say.
    async fn histograms(
        &self,
        conn: &mut ConnectionManager,
        state: &mut SlowlogState,
    ) -> Result<(HashMap<String, Latency>, Option<String>), RunError> {
        match redis::cmd("LATENCY")
            .arg("HISTOGRAM")
            .query_async::<Value>(conn)
            .await
        {
            Ok(reply) => Ok((parse_histograms(&reply), None)),
            Err(e) if lost(&e) => Err(classify(e)),
            Err(e) => {
                state.gap(&self.source, "LATENCY HISTOGRAM", &e);
                let refused = format!(
                    "the server refuses LATENCY HISTOGRAM ({}), so per-command latency is not measured: it needs Redis 7 or newer (Valkey 8+), and the user the command (ACL `+latency`; a managed service may rename or forbid it); or set `latency: false`",
                    crate::secrets::scrub(&e.to_string())
                );
                Ok((HashMap::new(), Some(refused)))
            }
        }
    }

    /// The newest `slowlog_entries` of the slow log; `None` where the server refuses it,
    /// which leaves the slow log's numbers absent rather than zero.
    async fn slowlog(
        &self,
        conn: &mut ConnectionManager,
        state: &mut SlowlogState,
    ) -> Result<Option<Vec<SlowEntry>>, RunError> {
        match redis::cmd("SLOWLOG")
            .arg("GET")
            .arg(self.settings.slowlog_entries)
            .query_async::<Value>(conn)
            .await
        {
            Ok(reply) => Ok(Some(parse_slowlog(&reply))),
            Err(e) if lost(&e) => Err(classify(e)),
            Err(e) => {
                state.gap(&self.source, "SLOWLOG GET", &e);
                Ok(None)
            }
        }
    }
}

/// The commandstats and histograms of the `top` most called commands, and of the `top` that
/// took the most time (a rare `KEYS *` busy for seconds is the server's load, not its calls).
fn commands(
    out: &mut Output,
    source: &str,
    stats: &HashMap<String, CommandStats>,
    histograms: &HashMap<String, Latency>,
    top: usize,
) {
    let mut names: Vec<&String> = stats.keys().chain(histograms.keys()).collect();
    names.sort();
    names.dedup();
    let mut most_called = Largest::new(top);
    let mut busiest = Largest::new(top);
    for name in names {
        let calls = stats
            .get(name)
            .map(|s| s.calls)
            .or_else(|| histograms.get(name).map(|h| h.calls as f64))
            .unwrap_or(0.0);
        most_called.push(calls, name);
        busiest.push(stats.get(name).map_or(0.0, |s| s.usec), name);
    }
    let mut chosen = most_called.into_sorted();
    chosen.extend(busiest.into_sorted());
    chosen.sort();
    chosen.dedup();
    for name in chosen {
        let labels = [source, name.as_str()];
        if let Some(s) = stats.get(name) {
            out.add(&CALLS, &labels, s.calls);
            out.add(&TIME, &labels, s.usec / 1e6);
            if let Some(v) = s.rejected {
                out.add(&REJECTED, &labels, v);
            }
            if let Some(v) = s.failed {
                out.add(&FAILED, &labels, v);
            }
            // The histogram's sum is commandstats' time: without it there is no sum to give.
            if let Some(h) = histograms.get(name) {
                out.add_histogram(&DURATION, &labels, histogram(h, s.usec));
            }
        }
    }
}

/// Whether `INFO commandstats` knows `command` (as itself or as the container of a
/// subcommand, `config` of `config|get`). The slow log keeps the name a client typed: a
/// command renamed by `rename-command` would publish its obscured name, so it is `other`.
fn known_command(command: &str, stats: &HashMap<String, CommandStats>) -> bool {
    stats.contains_key(command)
        || stats.keys().any(|k| {
            k.strip_prefix(command)
                .is_some_and(|rest| rest.starts_with('|'))
        })
}

/// The slowest new entry of each command, the slowest commands first.
fn slowest(
    out: &mut Output,
    source: &str,
    fresh: &[SlowEntry],
    stats: &HashMap<String, CommandStats>,
) {
    let mut by_command: HashMap<&str, f64> = HashMap::new();
    for e in fresh {
        let name = match known_command(&e.command, stats) {
            true => e.command.as_str(),
            false => "other",
        };
        let m = by_command.entry(name).or_insert(0.0);
        *m = m.max(e.micros);
    }
    let mut largest = Largest::new(SLOWEST_COMMANDS);
    let mut sorted: Vec<(&str, f64)> = by_command.into_iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    for (command, micros) in sorted {
        largest.push(micros, (command, micros));
    }
    for (command, micros) in largest.into_sorted() {
        out.add(&SLOWLOG_SLOWEST, &[source, command], micros / 1e6);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn commandstats_lines_are_read_whatever_the_version_adds() {
        let info = "# Commandstats\r\ncmdstat_get:calls=10,usec=55,usec_per_call=5.50,rejected_calls=1,failed_calls=2\r\ncmdstat_config|get:calls=3,usec=30,usec_per_call=10.00,rejected_calls=0,failed_calls=0,slowlog_count=1,slowlog_time_ms_sum=12.00\r\ncmdstat_set:calls=4,usec=8,usec_per_call=2.00\r\n";
        let s = parse_commandstats(info);
        assert_eq!(
            s["get"],
            CommandStats {
                calls: 10.0,
                usec: 55.0,
                rejected: Some(1.0),
                failed: Some(2.0)
            }
        );
        assert_eq!(s["config|get"].calls, 3.0);
        // Before 6.2: no rejected or failed calls, absent rather than 0.
        assert_eq!(s["set"].rejected, None);
    }

    #[test]
    fn latency_histograms_are_read_from_resp2_and_resp3() {
        let entry = |pairs: Vec<(Value, Value)>, resp3: bool| match resp3 {
            true => Value::Map(pairs),
            false => Value::Array(pairs.into_iter().flat_map(|(k, v)| [k, v]).collect()),
        };
        for resp3 in [false, true] {
            let buckets = entry(
                vec![
                    (Value::Int(4), Value::Int(90)),
                    (Value::Int(1), Value::Int(10)),
                    (Value::Int(1073741), Value::Int(100)),
                ],
                resp3,
            );
            let get = entry(
                vec![
                    (bulk("calls"), Value::Int(100)),
                    (bulk("histogram_usec"), buckets),
                ],
                resp3,
            );
            let reply = entry(vec![(bulk("get"), get)], resp3);
            let h = parse_histograms(&reply);
            assert_eq!(
                h["get"],
                Latency {
                    calls: 100,
                    buckets: vec![(1.0, 10), (4.0, 90), (1073741.0, 100)]
                },
                "resp3: {resp3}"
            );
            let data = histogram(&h["get"], 250.0);
            assert_eq!(data.count, 100);
            assert_eq!(data.sum, 0.00025);
            // On the ladder (1 µs doubling to 2^20 µs, then +Inf), per bucket, not cumulative:
            // 10 under 1 µs, 80 more under 4 µs, 10 up to about 1 s (Redis's 1073741 µs).
            assert_eq!(data.bounds.len(), 22);
            assert_eq!(data.bounds[..3], [1e-6, 2e-6, 4e-6]);
            assert_eq!(data.counts[..3], [10, 0, 80]);
            assert_eq!(data.counts[20..], [10, 0]);
            let native = data.native.as_ref().unwrap();
            assert_eq!(native.positive.values().sum::<u64>(), 100);
        }
    }

    #[test]
    fn the_slow_log_gives_command_names_only_and_counts_what_was_added() {
        let entry = |id: i64, micros: i64, args: &[&str]| {
            Value::Array(vec![
                Value::Int(id),
                Value::Int(1_700_000_000),
                Value::Int(micros),
                Value::Array(args.iter().map(|a| bulk(a)).collect()),
                bulk("10.0.0.1:5000"),
                bulk(""),
            ])
        };
        let reply = Value::Array(vec![
            entry(12, 250_000, &["KEYS", "user:*:email"]),
            entry(11, 40_000, &["SORT", "big", "BY", "w_*"]),
            entry(10, 90_000, &["KEYS", "secret-token-value"]),
        ]);
        let entries = parse_slowlog(&reply);
        assert_eq!(entries.len(), 3);
        // The first read is a baseline.
        assert_eq!(new_entries(&entries, None, "r1"), (vec![], 0));
        // Ids 11 and 12 are new; 8 and 9 were added and dropped by the log's length too.
        let (fresh, added) = new_entries(&entries, Some(("r1".into(), 10)), "r1");
        assert_eq!(fresh.len(), 2);
        assert_eq!(added, 2);
        let (_, added) = new_entries(&entries[..1], Some(("r1".into(), 7)), "r1");
        assert_eq!(added, 5, "counted by id, read or not");
        // Restarted: everything read is new.
        let (fresh, added) = new_entries(&entries, Some(("r1".into(), 500)), "r2");
        assert_eq!((fresh.len(), added), (3, 3));
        // A reset between two reads: the empty log keeps the last id, and the next entry
        // counts once.
        let (_, added, next) = advance(&[], Some(("r1".into(), 5000)), "r1".into());
        assert_eq!((added, next.1), (0, 5000));
        let after = parse_slowlog(&Value::Array(vec![entry(5001, 20_000, &["GET", "k"])]));
        let (_, added, _) = advance(&after, Some(next), "r1".into());
        assert_eq!(added, 1);
        // Nothing seen yet (the log was empty at the last read): what is read is new.
        let (fresh, added) = new_entries(&entries, Some(("r1".into(), -1)), "r1");
        assert_eq!((fresh.len(), added), (3, 3));
        // Known commands by name, a renamed one (not in commandstats) as `other`.
        let stats = parse_commandstats(
            "cmdstat_keys:calls=2,usec=340000\ncmdstat_config|get:calls=1,usec=5\n",
        );
        let mut out = Output::default();
        slowest(&mut out, "cache", &entries, &stats);
        assert_eq!(out.value(SLOWLOG_SLOWEST.name, "keys"), Some(0.25));
        assert_eq!(out.value(SLOWLOG_SLOWEST.name, "other"), Some(0.04));
        assert!(known_command("config", &stats) && !known_command("conf", &stats));
        for f in &out.families {
            for s in &f.samples {
                for (_, v) in &s.labels {
                    assert!(!v.contains("secret") && !v.contains("user:"), "{v}");
                }
            }
        }
    }

    #[test]
    fn the_most_called_and_the_busiest_commands_are_published_with_their_histograms() {
        let stats = parse_commandstats(
            "cmdstat_get:calls=100,usec=500\ncmdstat_set:calls=50,usec=100\ncmdstat_ping:calls=1,usec=1\n\
             cmdstat_keys:calls=1,usec=2000000\ncmdstat_echo:calls=2,usec=3\n",
        );
        let histograms = HashMap::from([(
            "get".to_owned(),
            Latency {
                calls: 100,
                buckets: vec![(8.0, 100)],
            },
        )]);
        let mut out = Output::default();
        commands(&mut out, "cache", &stats, &histograms, 2);
        assert_eq!(out.value(CALLS.name, "get"), Some(100.0));
        assert_eq!(out.value(CALLS.name, "ping"), None, "past the top");
        assert_eq!(out.value(TIME.name, "set"), Some(0.0001));
        assert_eq!(
            out.value(TIME.name, "keys"),
            Some(2.0),
            "called once, but the busiest"
        );
        assert_eq!(out.value(TIME.name, "echo"), None);
        let h = out
            .families
            .iter()
            .find(|f| f.name == DURATION.name)
            .unwrap();
        assert_eq!(h.samples.len(), 1, "set has no histogram");
    }
}
