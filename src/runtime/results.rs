//! The latest result of every check: last good samples, outcome, timing, and counters.
//!
//! Writers (check tasks) lock briefly to record a run; `/metrics` copies a snapshot of
//! cheap clones (samples are behind `Arc`) and encodes it without holding the lock.

use crate::sync::MutexExt;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use crate::config_core::CheckPlan;
use crate::series::run_error::{Reason, RunError};
use crate::series::sample::Output;

/// Key of a check in the store: (source, check).
pub type CheckKey = (String, String);

/// What the store knows about one check.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The check's resolved plan.
    pub plan: Arc<CheckPlan>,
    /// Samples served: those of the last successful run, or of a later run that failed but
    /// still measured something (see [`Output::failure`]).
    pub output: Option<Arc<Output>>,
    /// When the served samples were produced; staleness counts from here.
    pub output_at: Option<SystemTime>,
    /// When the last successful run finished.
    pub last_success: Option<SystemTime>,
    /// How long the last run took.
    pub last_duration: Option<Duration>,
    /// Error of the last run; `None` when it succeeded (or before the first run).
    pub last_error: Option<RunError>,
    /// When the current outcome (succeeding or failing) began: the first run, or the last
    /// run that flipped it. Retries that fail the same way do not move it.
    pub state_since: Option<SystemTime>,
    /// Runs finished so far.
    pub runs: u64,
    /// Failures so far, by reason.
    pub failures: BTreeMap<Reason, u64>,
    /// Series dropped by the cap, summed over runs.
    pub dropped_total: u64,
    /// Values skipped (NULLs and the like), summed over runs.
    pub skipped_total: u64,
    /// Label values cut to their maximum length, summed over runs.
    pub truncated_total: u64,
}

/// What a check's last run says, as a person reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckState<'a> {
    /// No run has finished yet.
    Pending,
    /// The last run measured.
    Ok,
    /// The last run succeeded but the server cannot give what the check measures: why, and
    /// the fix.
    NotMeasured(&'a str),
    /// The last run failed.
    Failing,
}

impl Entry {
    fn new(plan: Arc<CheckPlan>) -> Self {
        Entry {
            plan,
            output: None,
            output_at: None,
            last_success: None,
            last_duration: None,
            last_error: None,
            state_since: None,
            runs: 0,
            failures: BTreeMap::new(),
            dropped_total: 0,
            skipped_total: 0,
            truncated_total: 0,
        }
    }

    /// Outcome of the last run: `None` before the first one.
    pub fn succeeded(&self) -> Option<bool> {
        (self.runs > 0).then_some(self.last_error.is_none())
    }

    /// Why the last run, which succeeded, could not measure what the check is for (see
    /// [`Output::unmeasured`]); `None` when it measured, failed or has not run.
    pub fn unmeasured(&self) -> Option<&str> {
        match self.succeeded() {
            Some(true) => self.output.as_ref()?.unmeasured.as_deref(),
            _ => None,
        }
    }

    /// The state the landing page, `probe` and the banner show.
    pub fn state(&self) -> CheckState<'_> {
        match self.succeeded() {
            None => CheckState::Pending,
            Some(false) => CheckState::Failing,
            Some(true) => match self.unmeasured() {
                Some(why) => CheckState::NotMeasured(why),
                None => CheckState::Ok,
            },
        }
    }

    /// The samples to serve at `now`: the latest ones while younger than `stale_after`.
    pub fn fresh_output(&self, now: SystemTime) -> Option<&Output> {
        let at = self.output_at?;
        let age = now.duration_since(at).unwrap_or_default();
        if age <= self.plan.stale_after {
            self.output.as_deref()
        } else {
            None
        }
    }
}

/// How a run changed a check's state; only the first run and real flips count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    /// Nothing changed.
    Unchanged,
    /// It was fine (or unknown) and now fails.
    Degraded(Reason),
    /// It failed and now succeeds.
    Recovered,
}

/// Latest state of every check, plus config reload status.
#[derive(Debug, Default)]
pub struct Results {
    entries: Mutex<BTreeMap<CheckKey, Entry>>,
    reload: Mutex<ReloadStatus>,
    shard: Mutex<ShardStatus>,
    /// Targets leased now, and the most that may be.
    leased: Mutex<(usize, usize)>,
    /// Leases ended because their target had nothing in the cache.
    leases_replaced: std::sync::atomic::AtomicU64,
    /// The platform's time zone (`global.timezone`), whose offset is published.
    timezone: Mutex<Option<crate::config_core::TimeZone>>,
    /// The certificate expiry each source's TLS endpoint presented, and when it was read.
    certificates: Mutex<BTreeMap<(String, String), (f64, SystemTime)>>,
    /// The expiry of the web server's own certificate, when it serves TLS.
    web_certificate: Mutex<Option<f64>>,
    /// The `pulse_job_*` series, as the job tracker last published them.
    jobs: Mutex<Arc<Vec<crate::series::sample::Family>>>,
    /// Bumped by every change, so an encoded exposition knows when it is out of date.
    generation: std::sync::atomic::AtomicU64,
}

/// What part of the config this replica runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShardStatus {
    /// The replica's shard.
    pub shard: crate::runtime::shard::Shard,
    /// Sources of the config it runs.
    pub owned: usize,
    /// Sources in the config, all shards together.
    pub total: usize,
}

/// Outcome of the last config (re)load, for `pulse_config_*` metrics and the landing page.
#[derive(Debug, Clone, Default)]
pub struct ReloadStatus {
    /// Whether the last attempt succeeded.
    pub last_successful: bool,
    /// When a config was last applied.
    pub last_success: Option<SystemTime>,
    /// When the last attempt was made.
    pub last_attempt: Option<SystemTime>,
    /// Why the last attempt was rejected (scrubbed of secrets); `None` after a success.
    pub last_error: Option<String>,
}

/// The entries of `source` in `entries`: the keys from `(source, "")` while the source is the
/// same.
fn of_source<'a>(
    entries: &'a BTreeMap<CheckKey, Entry>,
    source: &'a str,
) -> impl Iterator<Item = &'a Entry> + 'a {
    entries
        .range((source.to_owned(), String::new())..)
        .take_while(move |((s, _), _)| s == source)
        .map(|(_, e)| e)
}

impl Results {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// A number that changes whenever anything `/metrics` shows changes, but for time passing
    /// (see [`Results::fresh_until`]).
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Acquire)
    }

    fn changed(&self) {
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    /// The first instant after `now` at which a served result goes stale (and leaves
    /// `/metrics`), if any.
    pub fn fresh_until(&self, now: SystemTime) -> Option<SystemTime> {
        self.lock()
            .values()
            .filter(|e| e.output.is_some())
            .filter_map(|e| Some(e.output_at? + e.plan.stale_after))
            .filter(|t| *t >= now)
            .min()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<CheckKey, Entry>> {
        self.entries.locked()
    }

    /// Adds a check, or restarts one that a reload changed: its outcome history and counters
    /// are kept, but its samples are dropped, since the new query may publish other series.
    pub fn register(&self, plan: Arc<CheckPlan>) {
        let key = (plan.source.clone(), plan.check.clone());
        let mut entries = self.lock();
        self.changed();
        match entries.get_mut(&key) {
            Some(e) => {
                e.plan = plan;
                e.output = None;
                e.output_at = None;
            }
            None => {
                entries.insert(key, Entry::new(plan));
            }
        }
    }

    /// Forgets every check for which `keep` is false, and the certificates of sources left
    /// with no check.
    pub fn retain(&self, keep: impl Fn(&CheckKey) -> bool) {
        let mut entries = self.lock();
        entries.retain(|k, _| keep(k));
        let sources: std::collections::BTreeSet<&String> = entries.keys().map(|(s, _)| s).collect();
        self.certificates
            .locked()
            .retain(|(source, _), _| sources.contains(source));
        drop(entries);
        self.changed();
    }

    /// Records the expiry (Unix seconds) of the certificate `source`'s `endpoint` presents,
    /// read now; `None` when the endpoint offers no TLS.
    pub fn set_certificate(&self, source: &str, endpoint: &str, expiry: Option<f64>) {
        let key = (source.to_owned(), endpoint.to_owned());
        let mut certificates = self.certificates.locked();
        match expiry {
            Some(t) => certificates.insert(key, (t, SystemTime::now())),
            None => certificates.remove(&key),
        };
        self.changed();
    }

    /// Forgets `source`'s certificates of endpoints not in `endpoints`.
    pub fn keep_certificates(&self, source: &str, endpoints: &[String]) {
        self.certificates
            .locked()
            .retain(|(s, e), _| s != source || endpoints.iter().any(|kept| kept == e));
        self.changed();
    }

    /// Forgets every certificate of `source`.
    pub fn forget_certificates(&self, source: &str) {
        self.keep_certificates(source, &[]);
    }

    /// `(source, endpoint, expiry)` of every certificate read within `stale_after` of `now`.
    pub fn certificates(
        &self,
        now: SystemTime,
        stale_after: Duration,
    ) -> Vec<(String, String, f64)> {
        self.certificates
            .locked()
            .iter()
            .filter(|(_, (_, at))| now.duration_since(*at).unwrap_or_default() <= stale_after)
            .map(|((s, e), (t, _))| (s.clone(), e.clone(), *t))
            .collect()
    }

    /// Records the expiry of the web server's certificate (`None`: it serves plain HTTP).
    pub fn set_web_certificate(&self, expiry: Option<f64>) {
        *self.web_certificate.locked() = expiry;
        self.changed();
    }

    /// The expiry of the web server's certificate.
    pub fn web_certificate(&self) -> Option<f64> {
        *self.web_certificate.locked()
    }

    /// Records one finished run and reports how it changed the check's state.
    pub fn record(
        &self,
        plan: &CheckPlan,
        result: Result<Output, RunError>,
        duration: Duration,
        finished: SystemTime,
    ) -> Transition {
        let mut entries = self.lock();
        // Bumped under the lock, so a reader that sees the new generation sees the new entry.
        self.changed();
        let Some(entry) = entries.get_mut(&(plan.source.clone(), plan.check.clone())) else {
            // The check was removed by a reload while this run was in flight.
            return Transition::Unchanged;
        };
        let before = entry.succeeded();
        let succeeded = result.as_ref().is_ok_and(|o| o.failure.is_none());
        if before != Some(succeeded) {
            entry.state_since = Some(finished);
        }
        entry.runs += 1;
        entry.last_duration = Some(duration);
        let result = match result {
            Ok(mut output) => {
                output.dropped += output.dedupe()
                    + output.cap(plan.max_series)
                    + output.cap_bytes(plan.max_bytes);
                entry.dropped_total += output.dropped;
                entry.skipped_total += output.skipped;
                entry.truncated_total += output.truncated;
                let failure = output.failure.take();
                entry.output = Some(Arc::new(output));
                entry.output_at = Some(finished);
                match failure {
                    None => Ok(()),
                    Some(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => {
                entry.last_success = Some(finished);
                entry.last_error = None;
                if before == Some(false) {
                    Transition::Recovered
                } else {
                    Transition::Unchanged
                }
            }
            Err(err) => {
                let reason = err.reason();
                *entry.failures.entry(reason).or_default() += 1;
                entry.last_error = Some(err);
                if before == Some(false) {
                    Transition::Unchanged
                } else {
                    Transition::Degraded(reason)
                }
            }
        }
    }

    /// A copy of every entry, in (source, check) order.
    pub fn snapshot(&self) -> Vec<Entry> {
        self.lock().values().cloned().collect()
    }

    /// A copy of the entries of the sources for which `keep` is true, in (source, check)
    /// order: only those are cloned.
    pub fn snapshot_of(&self, keep: impl Fn(&str) -> bool) -> Vec<Entry> {
        self.lock()
            .iter()
            .filter(|((source, _), _)| keep(source))
            .map(|(_, e)| e.clone())
            .collect()
    }

    /// A copy of `source`'s entries, in check order: a range of the map, so a `/probe` of
    /// one target among a thousand neither copies nor reads the others'.
    pub fn entries_of(&self, source: &str) -> Vec<Entry> {
        of_source(&self.lock(), source).cloned().collect()
    }

    /// Checks of `source` that have not finished a first run.
    pub fn first_runs_pending(&self, source: &str) -> usize {
        of_source(&self.lock(), source)
            .filter(|e| e.runs == 0)
            .count()
    }

    /// Counts a lease ended because its target had nothing in the cache.
    pub fn count_replaced_lease(&self) {
        self.leases_replaced
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Leases ended because their target had nothing in the cache, since the start.
    pub fn leases_replaced(&self) -> u64 {
        self.leases_replaced
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether the cache holds an entry of `source` (each check of a running source, or a
    /// leased target, has one from its start).
    pub fn serves(&self, source: &str) -> bool {
        of_source(&self.lock(), source).next().is_some()
    }

    /// Records how many targets are leased, of how many that may be.
    pub fn set_leased(&self, leased: usize, max: usize) {
        *self.leased.locked() = (leased, max);
        self.changed();
    }

    /// Targets leased, and the most that may be.
    pub fn leased(&self) -> (usize, usize) {
        *self.leased.locked()
    }

    /// Records the outcome of a config (re)load.
    pub fn set_reload(&self, ok: bool, at: SystemTime) {
        let mut r = self.reload.locked();
        r.last_successful = ok;
        r.last_attempt = Some(at);
        if ok {
            r.last_success = Some(at);
            r.last_error = None;
        }
        self.changed();
    }

    /// Records a rejected reload and why; the message is scrubbed of secrets here.
    pub fn set_reload_rejected(&self, at: SystemTime, error: &str) {
        self.set_reload(false, at);
        let mut r = self.reload.locked();
        r.last_error = Some(crate::secrets::scrub(error).into_owned());
    }

    /// Outcome of the last config (re)load.
    pub fn reload_status(&self) -> ReloadStatus {
        self.reload.locked().clone()
    }

    /// Records which part of the config this replica runs.
    pub fn set_shard(&self, status: ShardStatus) {
        *self.shard.locked() = status;
        self.changed();
    }

    /// Which part of the config this replica runs.
    pub fn shard_status(&self) -> ShardStatus {
        *self.shard.locked()
    }

    /// Replaces the jobs' series (see [`crate::jobs::tracker`]). The same series again (a store read that found nothing new) keep the encoded body.
    pub fn set_job_families(&self, families: Vec<crate::series::sample::Family>) {
        let mut jobs = self.jobs.locked();
        if **jobs == families {
            return;
        }
        *jobs = Arc::new(families);
        // Bumped under the lock, as `record` does.
        self.changed();
    }

    /// The jobs' series.
    pub fn job_families(&self) -> Arc<Vec<crate::series::sample::Family>> {
        self.jobs.locked().clone()
    }

    /// Records the platform's time zone of the applied config.
    pub fn set_timezone(&self, tz: Option<crate::config_core::TimeZone>) {
        *self.timezone.locked() = tz;
        self.changed();
    }

    /// The platform's time zone, if the config names one.
    pub fn timezone(&self) -> Option<crate::config_core::TimeZone> {
        *self.timezone.locked()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::series::sample::label;

    fn plan(stale: u64) -> CheckPlan {
        CheckPlan {
            source: "s".into(),
            kind: "postgres",
            check: "c".into(),
            interval: Duration::from_secs(1),
            timeout: Duration::from_millis(500),
            stale_after: Duration::from_secs(stale),
            max_series: 2,
            max_bytes: usize::MAX,
            const_labels: vec![],
        }
    }

    fn output(n: usize) -> Output {
        let mut o = Output::default();
        for i in 0..n {
            o.gauge("m", "h", vec![label("i", i.to_string())], 1.0);
        }
        o
    }

    #[test]
    fn every_change_moves_the_generation_and_staleness_has_a_deadline() {
        let store = Results::new();
        let g0 = store.generation();
        let p = plan(3);
        store.register(Arc::new(p.clone()));
        let g1 = store.generation();
        assert!(g1 > g0);
        let t = SystemTime::now();
        assert_eq!(store.fresh_until(t), None, "nothing served yet");
        store.record(&p, Ok(output(1)), Duration::ZERO, t);
        let g2 = store.generation();
        assert!(g2 > g1);
        // Served until stale_after past the run; nothing changes the store then, so the
        // deadline is what tells an encoded body to go.
        assert_eq!(store.fresh_until(t), Some(t + Duration::from_secs(3)));
        assert_eq!(store.fresh_until(t + Duration::from_secs(4)), None);
        store.set_reload(true, t);
        store.set_shard(ShardStatus::default());
        store.retain(|_| true);
        assert!(store.generation() >= g2 + 3);
    }

    #[test]
    fn transitions_fire_once_per_flip() {
        let store = Results::new();
        let p = plan(3);
        store.register(Arc::new(p.clone()));
        let t = SystemTime::now();
        let fail = || Err(RunError::new(Reason::Connect, "refused"));
        assert_eq!(
            store.record(&p, fail(), Duration::ZERO, t),
            Transition::Degraded(Reason::Connect)
        );
        assert_eq!(
            store.record(&p, fail(), Duration::ZERO, t),
            Transition::Unchanged
        );
        assert_eq!(
            store.record(&p, Ok(output(1)), Duration::ZERO, t),
            Transition::Recovered
        );
        assert_eq!(
            store.record(&p, Ok(output(1)), Duration::ZERO, t),
            Transition::Unchanged
        );
    }

    #[test]
    fn state_since_moves_only_when_the_outcome_flips() {
        let store = Results::new();
        let p = plan(3);
        store.register(Arc::new(p.clone()));
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let at = |s: u64| t0 + Duration::from_secs(s);
        let since = || store.snapshot()[0].state_since;
        assert_eq!(since(), None, "no run yet");
        store.record(&p, Ok(output(1)), Duration::ZERO, at(0));
        store.record(&p, Ok(output(1)), Duration::ZERO, at(10));
        assert_eq!(since(), Some(at(0)), "succeeding since the first run");
        let fail = || Err(RunError::new(Reason::Query, "syntax error"));
        store.record(&p, fail(), Duration::ZERO, at(20));
        store.record(&p, fail(), Duration::ZERO, at(30));
        assert_eq!(since(), Some(at(20)), "failing since the first failure");
        // A run that measured something but failed part of its work is a failure too.
        let mut partial = output(1);
        partial.failure = Some(RunError::new(Reason::Query, "one of two failed"));
        store.record(&p, Ok(partial), Duration::ZERO, at(40));
        assert_eq!(since(), Some(at(20)));
        store.record(&p, Ok(output(1)), Duration::ZERO, at(50));
        assert_eq!(since(), Some(at(50)), "recovered");
    }

    #[test]
    fn samples_survive_failures_until_stale_after() {
        let store = Results::new();
        let p = plan(3);
        store.register(Arc::new(p.clone()));
        let t0 = SystemTime::now();
        store.record(&p, Ok(output(1)), Duration::ZERO, t0);
        store.record(
            &p,
            Err(RunError::new(Reason::Query, "x")),
            Duration::ZERO,
            t0 + Duration::from_secs(2),
        );
        let e = &store.snapshot()[0];
        assert_eq!(e.succeeded(), Some(false));
        assert!(e.fresh_output(t0 + Duration::from_secs(3)).is_some());
        assert!(e.fresh_output(t0 + Duration::from_secs(4)).is_none());
    }

    #[test]
    fn a_partial_failure_fails_the_check_and_replaces_the_samples() {
        let store = Results::new();
        let p = plan(3);
        store.register(Arc::new(p.clone()));
        let t0 = SystemTime::now();
        store.record(&p, Ok(output(2)), Duration::ZERO, t0);
        let mut partial = output(1);
        partial.failure = Some(RunError::new(Reason::Auth, "put denied"));
        let t1 = t0 + Duration::from_secs(5);
        assert_eq!(
            store.record(&p, Ok(partial), Duration::ZERO, t1),
            Transition::Degraded(Reason::Auth)
        );
        let e = &store.snapshot()[0];
        assert_eq!(e.succeeded(), Some(false));
        assert_eq!(e.last_success, Some(t0));
        // Fresh from t1, not stale from t0, and the new samples, not the old ones.
        assert_eq!(
            e.fresh_output(t1 + Duration::from_secs(2))
                .unwrap()
                .series(),
            1
        );
    }

    #[test]
    fn series_cap_drops_and_counts() {
        let store = Results::new();
        let p = plan(3);
        store.register(Arc::new(p.clone()));
        store.record(&p, Ok(output(5)), Duration::ZERO, SystemTime::now());
        let e = &store.snapshot()[0];
        assert_eq!(e.output.as_ref().unwrap().series(), 2);
        assert_eq!(e.dropped_total, 3);
    }

    #[test]
    fn byte_cap_drops_and_counts_within_the_series_cap() {
        let store = Results::new();
        let one = output(1).families[0].samples[0].encoded_len("m");
        let p = CheckPlan {
            max_series: 10,
            max_bytes: one * 3,
            ..plan(3)
        };
        store.register(Arc::new(p.clone()));
        store.record(&p, Ok(output(5)), Duration::ZERO, SystemTime::now());
        let e = &store.snapshot()[0];
        assert_eq!(e.output.as_ref().unwrap().series(), 3);
        assert_eq!(e.dropped_total, 2);
    }

    #[test]
    fn re_registering_keeps_history_but_drops_samples() {
        let store = Results::new();
        let p = plan(3);
        store.register(Arc::new(p.clone()));
        store.record(&p, Ok(output(1)), Duration::ZERO, SystemTime::now());
        store.register(Arc::new(plan(9)));
        let e = &store.snapshot()[0];
        assert_eq!(e.runs, 1);
        assert_eq!(e.plan.stale_after, Duration::from_secs(9));
        assert!(
            e.output.is_none(),
            "a changed check does not serve the old query's samples"
        );
    }
}
