//! What is known of one job: its runs' starts and ends as the server received them, kept as
//! JSON in the job store; the pure step a ping makes to it, and the deadline that follows.

use std::collections::VecDeque;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::jobs::config::JobSpec;

/// Most runs of one job in flight at once; a start beyond it forgets the oldest.
pub const MAX_RUNNING: usize = 16;

/// How many finished run ids are remembered, so that a retried end ping is not counted twice.
pub const REMEMBERED_RUN_IDS: usize = 64;

/// Longest run id taken.
pub const MAX_RUN_ID: usize = 64;

/// Most bytes of a run's log tail kept.
pub const MAX_LOG: usize = 4096;

/// Most due times of a cron schedule one silence counts as missed (a day of a job due every
/// minute; four years of a daily one): each is a step through the schedule, made at every
/// publication. A period's are counted without stepping, and without bound.
pub const MAX_MISSED_STEPS: u64 = 1440;

/// How long a run with no `max_runtime` stays in flight without an end ping before the next
/// finished run forgets it (a run whose process was killed never sends one).
pub const ABANDON_AFTER: Duration = Duration::from_secs(86_400);

/// What a ping says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// A run started.
    Start,
    /// A run finished well.
    Success,
    /// A run failed, with its exit code if it had one.
    Fail(Option<i32>),
}

impl Signal {
    /// The signal's URL word: `start`, `success`, `fail`.
    pub fn as_str(self) -> &'static str {
        match self {
            Signal::Start => "start",
            Signal::Success => "success",
            Signal::Fail(_) => "fail",
        }
    }
}

/// One ping as received.
#[derive(Debug, Clone, PartialEq)]
pub struct Ping {
    /// What it says.
    pub signal: Signal,
    /// The run it belongs to; `None` is the job's one unnamed run.
    pub rid: Option<String>,
    /// The tail of the run's log, if sent.
    pub log: Option<String>,
    /// When the server received it (Unix seconds): never the client's clock.
    pub at: f64,
}

/// A run in flight.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// Its id (`""` for the unnamed run).
    pub rid: String,
    /// When its start ping arrived.
    pub started: f64,
}

/// The state of one job, as kept in the store.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct JobState {
    /// When the job was first known to the store: a job that never pinged is due from here.
    pub first_seen: f64,
    /// When its last ping arrived.
    pub last_ping: Option<f64>,
    /// When its last run started.
    pub last_start: Option<f64>,
    /// When its last run finished well.
    pub last_success: Option<f64>,
    /// When its last run failed.
    pub last_failure: Option<f64>,
    /// The exit code of its last finished run, when one was sent (0 for a success without).
    pub last_exit_code: Option<i32>,
    /// How long its last finished run took, start to end, when its start was seen.
    pub last_duration: Option<f64>,
    /// Runs started.
    pub starts: u64,
    /// Runs that finished well.
    pub successes: u64,
    /// Runs that failed.
    pub failures: u64,
    /// Due times whose deadline passed with no run finished, counted up to the last
    /// finished run (those since are counted at publication, [`JobState::missed_by`]).
    pub missed: u64,
    /// Runs in flight, oldest first.
    pub running: Vec<Run>,
    /// Ids of the runs that finished most recently.
    pub finished: VecDeque<String>,
    /// The log tail of its last finished run.
    pub log: Option<String>,
    /// For a job a ping key made: the key's name.
    pub key: Option<String>,
    /// How long its finished runs took (those whose start was seen), in native buckets, kept
    /// with the state so every replica publishes the same histogram.
    pub durations: Durations,
}

/// The durations of a job's finished runs: native buckets (the classic ones are derived at
/// publishing, [`crate::series::sample::HistogramData::from_native`]), their sum and count.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Durations {
    /// Runs per native bucket.
    pub buckets: crate::series::native_histogram::NativeBuckets,
    /// Seconds of all of them.
    pub sum: f64,
    /// How many.
    pub count: u64,
}

/// What a ping did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// It changed the state.
    Counted,
    /// It repeated one already taken (same run id): nothing changed.
    Duplicate,
}

impl JobState {
    /// A job first seen at `at`.
    pub fn new(at: f64) -> Self {
        JobState {
            first_seen: at,
            ..JobState::default()
        }
    }

    /// Takes `ping` for a job whose runs are abandoned after `abandon_after`.
    pub fn apply(&mut self, ping: &Ping, abandon_after: Duration) -> Applied {
        let rid = ping.rid.clone().unwrap_or_default();
        let named = ping.rid.is_some();
        if named && self.finished.contains(&rid) {
            return Applied::Duplicate;
        }
        match ping.signal {
            Signal::Start => {
                if named && self.running.iter().any(|r| r.rid == rid) {
                    return Applied::Duplicate;
                }
                // An unnamed start while the unnamed run is in flight is a new run: the last
                // one never reported its end.
                self.running.retain(|r| r.rid != rid);
                if self.running.len() >= MAX_RUNNING {
                    self.running.remove(0);
                }
                self.running.push(Run {
                    rid,
                    started: ping.at,
                });
                self.last_start = Some(ping.at);
                self.starts += 1;
            }
            Signal::Success | Signal::Fail(_) => {
                let run = self
                    .running
                    .iter()
                    .position(|r| r.rid == rid)
                    .map(|i| self.running.remove(i));
                self.last_duration = run.map(|r| (ping.at - r.started).max(0.0));
                if let Some(d) = self.last_duration.filter(|d| d.is_finite()) {
                    self.durations.buckets.add(d, 1);
                    self.durations.sum += d;
                    self.durations.count += 1;
                }
                match ping.signal {
                    Signal::Fail(code) => {
                        self.last_failure = Some(ping.at);
                        self.last_exit_code = code;
                        self.failures += 1;
                    }
                    _ => {
                        self.last_success = Some(ping.at);
                        self.last_exit_code = Some(0);
                        self.successes += 1;
                    }
                }
                self.log = ping.log.clone();
                if named {
                    if self.finished.len() >= REMEMBERED_RUN_IDS {
                        self.finished.pop_front();
                    }
                    self.finished.push_back(rid);
                }
                let horizon = ping.at - abandon_after.as_secs_f64();
                self.running.retain(|r| r.started >= horizon);
            }
        }
        self.last_ping = Some(ping.at);
        Applied::Counted
    }

    /// Takes a finish or start `ping` of `job` as [`JobState::apply`] does, first counting the
    /// due times a finish comes after as missed.
    pub fn apply_for(&mut self, job: &JobSpec, ping: &Ping, abandon_after: Duration) -> Applied {
        let missed = match ping.signal {
            Signal::Start => 0,
            Signal::Success | Signal::Fail(_) => self.missed_since_finish(job, ping.at),
        };
        let applied = self.apply(ping, abandon_after);
        if applied == Applied::Counted {
            self.missed += missed;
        }
        applied
    }

    /// Runs missed as of `now`: those counted up to the last finished run and the due times
    /// whose deadline has passed since. Every replica computes the same from the stored state.
    pub fn missed_by(&self, job: &JobSpec, now: f64) -> u64 {
        self.missed + self.missed_since_finish(job, now)
    }

    /// The due times after the last finished run (or the first sight of the job) whose
    /// deadline passed before `now`: the first deadline as [`JobState::deadline`] gives it (a
    /// run in flight within `max_runtime` holds it off), then each next due time plus grace.
    fn missed_since_finish(&self, job: &JobSpec, now: f64) -> u64 {
        let Some(first) = self.deadline(job) else {
            return 0;
        };
        if now <= first {
            return 0;
        }
        let anchor = self.last_finish().unwrap_or(self.first_seen);
        let grace = job.grace.as_secs_f64();
        let Some(mut due) = to_time(anchor).and_then(|a| job.schedule.next_due(a)) else {
            return 1;
        };
        if let crate::jobs::schedule::Schedule::Every(period) = &job.schedule {
            // Due at anchor + k·period: the k ≥ 2 whose deadline has passed, without stepping.
            let period = period.as_secs_f64();
            let later = ((now - grace - seconds(due)) / period).ceil() - 1.0;
            return 1 + later.max(0.0) as u64;
        }
        let mut missed = 1;
        while missed < MAX_MISSED_STEPS {
            match job.schedule.next_due(due) {
                Some(next) if seconds(next) + grace < now => {
                    missed += 1;
                    due = next;
                }
                _ => break,
            }
        }
        missed
    }

    /// When the last run finished, either way.
    pub fn last_finish(&self) -> Option<f64> {
        match (self.last_success, self.last_failure) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }

    /// True when the last finished run failed.
    pub fn failing(&self) -> bool {
        match (self.last_success, self.last_failure) {
            (Some(s), Some(f)) => f > s,
            (None, Some(_)) => true,
            _ => false,
        }
    }

    /// When the oldest run in flight started.
    pub fn running_since(&self) -> Option<f64> {
        self.running.iter().map(|r| r.started).reduce(f64::min)
    }

    /// When `job` is late: the next due time after its last finished run (or after it was
    /// first seen, for a job that never finished one) plus its grace. A run in flight that is
    /// still within `max_runtime` holds the deadline off until that bound, so a long run is
    /// told by `PulseJobRunningTooLong`, not also by lateness.
    pub fn deadline(&self, job: &JobSpec) -> Option<f64> {
        let anchor = self.last_finish().unwrap_or(self.first_seen);
        let due = job.schedule.deadline(to_time(anchor)?, job.grace)?;
        let mut deadline = seconds(due);
        if let (Some(since), Some(max)) = (self.running_since(), job.max_runtime) {
            deadline = deadline.max(since + max.as_secs_f64());
        }
        Some(deadline)
    }
}

/// The last `MAX_LOG` bytes of `text`, cut at a character boundary.
pub fn log_tail(text: &str) -> String {
    if text.len() <= MAX_LOG {
        return text.to_owned();
    }
    let mut start = text.len() - MAX_LOG;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    text[start..].to_owned()
}

/// True when `rid` may be a run id: 1 to [`MAX_RUN_ID`] printable ASCII characters without
/// spaces (a UUID, a pod name, a timestamp).
pub fn is_run_id(rid: &str) -> bool {
    !rid.is_empty() && rid.len() <= MAX_RUN_ID && rid.bytes().all(|b| b.is_ascii_graphic())
}

fn to_time(secs: f64) -> Option<DateTime<Utc>> {
    let whole = secs.floor();
    DateTime::from_timestamp(whole as i64, ((secs - whole) * 1e9) as u32)
}

fn seconds(t: DateTime<Utc>) -> f64 {
    t.timestamp() as f64 + f64::from(t.timestamp_subsec_nanos()) / 1e9
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::schedule::Schedule;
    use std::collections::BTreeMap;

    fn job(schedule: Schedule, grace: u64, max_runtime: Option<u64>) -> JobSpec {
        JobSpec {
            name: "rollup".into(),
            schedule,
            grace: Duration::from_secs(grace),
            max_runtime: max_runtime.map(Duration::from_secs),
            labels: BTreeMap::new(),
            token: None,
            key: None,
            objective: None,
            latency_objectives: Vec::new(),
        }
    }

    fn ping(signal: Signal, rid: Option<&str>, at: f64) -> Ping {
        Ping {
            signal,
            rid: rid.map(str::to_owned),
            log: None,
            at,
        }
    }

    const DAY: Duration = ABANDON_AFTER;

    #[test]
    fn a_job_that_never_pinged_is_late_at_its_first_deadline() {
        let hourly = job(Schedule::Every(Duration::from_secs(3600)), 300, None);
        let s = JobState::new(1_000_000.0);
        assert_eq!(s.deadline(&hourly), Some(1_003_900.0));
        // A cron job first seen at 2026-03-28 12:00Z, due daily at 02:30 Berlin, whose next
        // time falls in the spring gap: due at 03:00 local (01:00Z), late 10 minutes after.
        let nightly = job(
            Schedule::cron("30 2 * * *", chrono_tz::Europe::Berlin).unwrap(),
            600,
            None,
        );
        let first_seen = 1_774_699_200.0; // 2026-03-28T12:00:00Z
        let s = JobState::new(first_seen);
        assert_eq!(s.deadline(&nightly), Some(1_774_746_000.0 + 600.0));
    }

    #[test]
    fn a_finished_run_moves_the_deadline_and_a_failure_is_told_apart() {
        let hourly = job(Schedule::Every(Duration::from_secs(3600)), 60, None);
        let mut s = JobState::new(0.0);
        s.apply(&ping(Signal::Start, None, 100.0), DAY);
        assert_eq!(s.running_since(), Some(100.0));
        s.apply(&ping(Signal::Success, None, 160.0), DAY);
        assert_eq!(
            (s.last_duration, s.successes, s.failing()),
            (Some(60.0), 1, false)
        );
        assert_eq!(s.deadline(&hourly), Some(160.0 + 3600.0 + 60.0));
        s.apply(&ping(Signal::Fail(Some(3)), None, 5000.0), DAY);
        assert!(s.failing());
        assert_eq!(s.last_exit_code, Some(3));
        assert_eq!(s.last_duration, None, "no start was seen for this run");
        // A failed run still reported: the next deadline counts from it.
        assert_eq!(s.deadline(&hourly), Some(5000.0 + 3600.0 + 60.0));
        s.apply(&ping(Signal::Success, None, 6000.0), DAY);
        assert!(!s.failing());
        // Only the run whose start was seen counts in the durations, and survives the store.
        assert_eq!((s.durations.count, s.durations.sum), (1, 60.0));
        let kept: JobState = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(kept.durations, s.durations);
        // A state stored before durations were kept reads with none.
        let old: JobState = serde_json::from_str(r#"{"first_seen": 5.0, "starts": 2}"#).unwrap();
        assert_eq!(old.durations.count, 0);
    }

    #[test]
    fn each_due_time_a_silence_spans_is_missed_once_whatever_the_schedule() {
        let hourly = job(Schedule::Every(Duration::from_secs(3600)), 60, None);
        let cron = job(
            Schedule::cron("0 * * * *", chrono_tz::UTC).unwrap(),
            60,
            None,
        );
        for j in [&hourly, &cron] {
            let mut s = JobState::new(0.0);
            let at = |s: &JobState, now: f64| s.missed_by(j, now);
            // Due at 1 h, 2 h, 3 h; late 1 min after each.
            assert_eq!(at(&s, 3660.0), 0, "not yet past the first deadline");
            assert_eq!(at(&s, 3661.0), 1);
            assert_eq!(at(&s, 7261.0), 2);
            assert_eq!(at(&s, 10_000.0), 2);
            // The late run comes: the two stay counted, the next due time counts from it.
            s.apply_for(j, &ping(Signal::Success, Some("r1"), 10_000.0), DAY);
            assert_eq!((s.missed, at(&s, 10_001.0)), (2, 2));
            // Its end sent twice is one run: nothing missed again.
            s.apply_for(j, &ping(Signal::Success, Some("r1"), 10_050.0), DAY);
            assert_eq!(s.missed, 2);
            assert_eq!(at(&s, 13_661.0), 3, "{}", j.schedule.describe());
            // A start is not a finish: it counts nothing.
            s.apply_for(j, &ping(Signal::Start, None, 20_000.0), DAY);
            assert_eq!(s.missed, 2);
        }
    }

    #[test]
    fn a_run_in_flight_within_max_runtime_holds_the_miss_off_and_a_long_silence_is_bounded() {
        let bounded = job(Schedule::Every(Duration::from_secs(3600)), 60, Some(7200));
        let mut s = JobState::new(0.0);
        s.apply_for(&bounded, &ping(Signal::Start, None, 3000.0), DAY);
        assert_eq!(s.missed_by(&bounded, 9000.0), 0, "running until 10 200");
        assert_eq!(
            s.missed_by(&bounded, 10_201.0),
            2,
            "then 1 h 1 min and 2 h 1 min passed"
        );
        // A cron job due every minute, silent for two days: one day's worth is counted.
        let minutely = job(
            Schedule::cron("* * * * *", chrono_tz::UTC).unwrap(),
            0,
            None,
        );
        let s = JobState::new(0.0);
        assert_eq!(s.missed_by(&minutely, 2.0 * 86_400.0), MAX_MISSED_STEPS);
    }

    #[test]
    fn overlapping_runs_are_told_apart_by_their_run_ids() {
        let mut s = JobState::new(0.0);
        s.apply(&ping(Signal::Start, Some("a"), 10.0), DAY);
        s.apply(&ping(Signal::Start, Some("b"), 20.0), DAY);
        assert_eq!(s.running.len(), 2);
        s.apply(&ping(Signal::Fail(Some(1)), Some("b"), 25.0), DAY);
        assert_eq!(s.last_duration, Some(5.0));
        assert_eq!(s.running_since(), Some(10.0), "run a is still in flight");
        s.apply(&ping(Signal::Success, Some("a"), 40.0), DAY);
        assert_eq!(s.last_duration, Some(30.0));
        assert!(s.running.is_empty());
        assert_eq!((s.successes, s.failures, s.starts), (1, 1, 2));
    }

    #[test]
    fn a_retried_ping_is_not_counted_twice() {
        let mut s = JobState::new(0.0);
        assert_eq!(
            s.apply(&ping(Signal::Start, Some("r1"), 1.0), DAY),
            Applied::Counted
        );
        assert_eq!(
            s.apply(&ping(Signal::Start, Some("r1"), 2.0), DAY),
            Applied::Duplicate
        );
        assert_eq!(
            s.apply(&ping(Signal::Success, Some("r1"), 3.0), DAY),
            Applied::Counted
        );
        assert_eq!(
            s.apply(&ping(Signal::Success, Some("r1"), 4.0), DAY),
            Applied::Duplicate
        );
        assert_eq!(
            s.apply(&ping(Signal::Start, Some("r1"), 5.0), DAY),
            Applied::Duplicate
        );
        assert_eq!((s.starts, s.successes, s.last_success), (1, 1, Some(3.0)));
    }

    #[test]
    fn a_long_run_holds_the_deadline_off_until_its_max_runtime() {
        let hourly = job(Schedule::Every(Duration::from_secs(3600)), 60, Some(7200));
        let mut s = JobState::new(0.0);
        s.apply(&ping(Signal::Start, Some("x"), 3000.0), DAY);
        assert_eq!(s.deadline(&hourly), Some(3000.0 + 7200.0));
        let unbounded = job(Schedule::Every(Duration::from_secs(3600)), 60, None);
        assert_eq!(s.deadline(&unbounded), Some(3660.0));
    }

    #[test]
    fn runs_in_flight_are_bounded_and_abandoned_ones_are_forgotten() {
        let mut s = JobState::new(0.0);
        for i in 0..(MAX_RUNNING + 4) {
            s.apply(&ping(Signal::Start, Some(&format!("r{i}")), i as f64), DAY);
        }
        assert_eq!(s.running.len(), MAX_RUNNING);
        assert_eq!(s.running[0].rid, "r4");
        let later = DAY.as_secs_f64() + 100.0;
        s.apply(&ping(Signal::Success, Some("new"), later), DAY);
        assert!(s.running.is_empty(), "{:?}", s.running);
        for i in 0..(REMEMBERED_RUN_IDS + 5) {
            s.apply(&ping(Signal::Success, Some(&format!("f{i}")), later), DAY);
        }
        assert_eq!(s.finished.len(), REMEMBERED_RUN_IDS);
    }

    #[test]
    fn the_state_round_trips_through_json_and_reads_older_fields() {
        let mut s = JobState::new(5.0);
        s.apply(&ping(Signal::Start, Some("a"), 6.0), DAY);
        let text = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<JobState>(&text).unwrap(), s);
        let old: JobState = serde_json::from_str(r#"{"first_seen": 1.0}"#).unwrap();
        assert_eq!(old.first_seen, 1.0);
    }

    #[test]
    fn log_tails_keep_the_end_and_run_ids_are_plain() {
        let long = format!("{}é{}", "a".repeat(10), "b".repeat(MAX_LOG - 1));
        let tail = log_tail(&long);
        assert!(tail.len() <= MAX_LOG && tail.ends_with('b'));
        assert!(is_run_id("6f1c-2a"));
        assert!(!is_run_id("a b") && !is_run_id("") && !is_run_id(&"x".repeat(65)));
    }
}
