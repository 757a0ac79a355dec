//! The `pulse_job_*` series: declared once here (docs/metrics.md lists them from
//! [`SECTION`]), and made from each job's spec and state.

use crate::jobs::config::{JobSpec, DURATION_BOUNDS};
use crate::jobs::state::JobState;
use crate::series::metric::{Metric, Section};
use crate::series::sample::{Family, HistogramData, Output};

/// The jobs' section of docs/metrics.md.
pub const SECTION: Section = Section {
    title: "Jobs that report in (`jobs:`, `job_keys:`)",
    intro: "One set per job the config declares or a ping key made, from the pings it sent to \
            `/ping/NAME/…`, kept in `job_store:` so every replica publishes the same values. \
            Times are the server's receive times. Every series carries the job's `labels:`. A \
            late or failing job stays published until it reports again; a job leaves only when \
            it is removed from the config, or when a key's job is silent past `forget_after`.",
    metrics: &[
        JOB_INFO,
        JOB_DEADLINE,
        JOB_LAST_START,
        JOB_LAST_SUCCESS,
        JOB_LAST_FAILURE,
        JOB_LAST_EXIT_CODE,
        JOB_LAST_DURATION,
        JOB_RUNNING,
        JOB_RUNNING_SINCE,
        JOB_MAX_RUNTIME,
        JOB_FAILING,
        JOB_RUNS,
        JOB_MISSED,
        JOB_DURATION,
        JOB_STORE_UP,
    ],
};

/// `pulse_job_info`.
pub const JOB_INFO: Metric = Metric::gauge(
    "pulse_job_info",
    "A job that reports in, with its schedule; always 1.",
    &["job_name", "schedule", "key"],
)
.doc("One per job: `schedule` is `every 1h` or `cron 15 2 * * * Europe/Berlin`; `key` is the ping key that made it, empty for a declared job.");

/// `pulse_job_deadline_timestamp_seconds`.
pub const JOB_DEADLINE: Metric = Metric::gauge(
    "pulse_job_deadline_timestamp_seconds",
    "When the job is late: its next due time after the last finished run, plus its grace.",
    &["job_name"],
)
.doc("The next time the schedule names after the job's last finished run (success or failure) or, for a job that never finished one, after it was first seen, plus `grace`; a run in flight within `max_runtime` holds it off until that bound. `PulseJobLate` fires when `time()` passes it. Absent until the store has been read once.")
.changes("a run finishes", "never while the job is silent: a late job stays late");

/// `pulse_job_last_start_timestamp_seconds`.
pub const JOB_LAST_START: Metric = Metric::gauge(
    "pulse_job_last_start_timestamp_seconds",
    "When the job's last start ping arrived.",
    &["job_name"],
)
.doc("When the last `start` ping arrived; absent before the first.");

/// `pulse_job_last_success_timestamp_seconds`.
pub const JOB_LAST_SUCCESS: Metric = Metric::gauge(
    "pulse_job_last_success_timestamp_seconds",
    "When the job's last run finished well.",
    &["job_name"],
)
.doc("When the last `success` ping arrived; absent before the first.");

/// `pulse_job_last_failure_timestamp_seconds`.
pub const JOB_LAST_FAILURE: Metric = Metric::gauge(
    "pulse_job_last_failure_timestamp_seconds",
    "When the job's last run failed.",
    &["job_name"],
)
.doc("When the last `fail` ping arrived; absent before the first.");

/// `pulse_job_last_exit_code`.
pub const JOB_LAST_EXIT_CODE: Metric = Metric::gauge(
    "pulse_job_last_exit_code",
    "The exit code of the job's last finished run.",
    &["job_name"],
)
.doc("The `exit_code` of the last finished run (0 for a success); absent when the last failure sent none.");

/// `pulse_job_last_duration_seconds`.
pub const JOB_LAST_DURATION: Metric = Metric::gauge(
    "pulse_job_last_duration_seconds",
    "How long the job's last finished run took, from its start ping to its end ping.",
    &["job_name"],
)
.doc("From the run's `start` ping to its end ping (matched by `rid`); absent when the last finished run sent no start.");

/// `pulse_job_running`.
pub const JOB_RUNNING: Metric = Metric::gauge(
    "pulse_job_running",
    "Runs of the job in flight: started and not yet finished.",
    &["job_name"],
)
.doc("Runs started and not finished (at most 16; a run with no end ping is forgotten at the next finished run once it is older than `max_runtime`, or a day).");

/// `pulse_job_running_since_timestamp_seconds`.
pub const JOB_RUNNING_SINCE: Metric = Metric::gauge(
    "pulse_job_running_since_timestamp_seconds",
    "When the oldest run of the job in flight started.",
    &["job_name"],
)
.doc("The start of the oldest run in flight; absent when none is. `PulseJobRunningTooLong` compares its age with `pulse_job_max_runtime_seconds`.");

/// `pulse_job_max_runtime_seconds`.
pub const JOB_MAX_RUNTIME: Metric = Metric::gauge(
    "pulse_job_max_runtime_seconds",
    "The longest a run of the job may take (its max_runtime).",
    &["job_name"],
)
.doc("The job's `max_runtime`; absent when it has none.");

/// `pulse_job_failing`.
pub const JOB_FAILING: Metric = Metric::gauge(
    "pulse_job_failing",
    "1 when the job's last finished run failed, else 0.",
    &["job_name"],
)
.doc("1 from a `fail` ping until the next `success`. `PulseJobFailed` fires on it.");

/// `pulse_job_runs_total`.
pub const JOB_RUNS: Metric = Metric::counter(
    "pulse_job_runs_total",
    "Runs of the job that finished, by outcome.",
    &["job_name", "outcome"],
)
.doc("Finished runs by `outcome` (`success`, `failure`), counted once per run id, across every replica (the count is kept in the store).");

/// `pulse_job_missed_runs_total`.
pub const JOB_MISSED: Metric = Metric::counter(
    "pulse_job_missed_runs_total",
    "Due times the job let pass: no run finished by the deadline.",
    &["job_name"],
)
.doc("Due times whose deadline passed with no run finished: one per due time a silence spans (a job due hourly and silent for three hours missed three), counted as the deadlines pass, the same on every replica (computed from the store's state and the clock). With `pulse_job_runs_total`, what the job's objective counts: a run that failed or a due time missed spends its budget. A cron job's silence counts at most 1440 due times.");

/// `pulse_job_duration_seconds`.
pub const JOB_DURATION: Metric = Metric::histogram(
    "pulse_job_duration_seconds",
    "How long the job's finished runs took, start to end (those whose start was seen).",
    &["job_name"],
)
.doc("How long finished runs took, from their `start` ping to their end, for the runs whose start was seen; kept in the store, so every replica publishes the same. Classic buckets at 1 s, 4 s, 16 s, … 36 h; a native histogram where Prometheus negotiates protobuf.");

/// `pulse_job_store_up`.
pub const JOB_STORE_UP: Metric = Metric::gauge(
    "pulse_job_store_up",
    "1 when the last read of the job store succeeded, else 0.",
    &["store"],
)
.doc("Whether the last read of `job_store:` (`store` is `redis`, `postgres` or `memory`) succeeded; while 0, pings are refused with 503 and the values published are those of the last read. Present when jobs are configured.");

/// The series of one job, as of `now` (Unix seconds).
pub fn job_families(job: &JobSpec, state: Option<&JobState>, now: f64) -> Vec<Family> {
    let mut out = Output::default();
    let name = job.name.as_str();
    let key = job.key.as_deref().unwrap_or("");
    out.add(&JOB_INFO, &[name, &job.schedule.describe(), key], 1.0);
    if let Some(max) = job.max_runtime {
        out.add(&JOB_MAX_RUNTIME, &[name], max.as_secs_f64());
    }
    if let Some(s) = state {
        if let Some(d) = s.deadline(job) {
            out.add(&JOB_DEADLINE, &[name], d);
        }
        let times = [
            (&JOB_LAST_START, s.last_start),
            (&JOB_LAST_SUCCESS, s.last_success),
            (&JOB_LAST_FAILURE, s.last_failure),
            (&JOB_LAST_DURATION, s.last_duration),
            (&JOB_RUNNING_SINCE, s.running_since()),
        ];
        for (metric, value) in times {
            if let Some(v) = value {
                out.add(metric, &[name], v);
            }
        }
        if let Some(code) = s.last_exit_code {
            out.add(&JOB_LAST_EXIT_CODE, &[name], f64::from(code));
        }
        out.add(&JOB_RUNNING, &[name], s.running.len() as f64);
        out.add(&JOB_FAILING, &[name], if s.failing() { 1.0 } else { 0.0 });
        out.add(&JOB_RUNS, &[name, "success"], s.successes as f64);
        out.add(&JOB_RUNS, &[name, "failure"], s.failures as f64);
        out.add(&JOB_MISSED, &[name], s.missed_by(job, now) as f64);
        if s.durations.count > 0 {
            let d = &s.durations;
            out.add_histogram(
                &JOB_DURATION,
                &[name],
                HistogramData::from_native(&d.buckets, d.sum, d.count, &DURATION_BOUNDS),
            );
        }
    }
    let labels: Vec<(String, String)> = job
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    out.add_labels(&labels);
    out.families
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::schedule::Schedule;
    use crate::jobs::state::{Ping, Signal};
    use std::time::Duration;

    fn spec() -> JobSpec {
        JobSpec {
            name: "rollup".into(),
            schedule: Schedule::Every(Duration::from_secs(3600)),
            grace: Duration::from_secs(60),
            max_runtime: None,
            labels: [("team".to_owned(), "data".to_owned())].into(),
            token: None,
            key: None,
            objective: None,
            latency_objectives: Vec::new(),
        }
    }

    fn names(families: &[Family]) -> Vec<&str> {
        families.iter().map(|f| f.name.as_str()).collect()
    }

    #[test]
    fn a_job_not_read_yet_has_its_info_only() {
        let families = job_families(&spec(), None, 0.0);
        assert_eq!(names(&families), ["pulse_job_info"]);
        let labels = &families[0].samples[0].labels;
        assert!(labels.contains(&("schedule".into(), "every 1h".into())));
        assert!(
            labels.contains(&("team".into(), "data".into())),
            "{labels:?}"
        );
    }

    #[test]
    fn only_what_happened_is_published_and_every_series_carries_the_jobs_labels() {
        let mut state = JobState::new(0.0);
        let families = job_families(&spec(), Some(&state), 0.0);
        // Never started, never finished: no last times, no exit code, no duration.
        assert_eq!(
            names(&families),
            [
                "pulse_job_info",
                "pulse_job_deadline_timestamp_seconds",
                "pulse_job_running",
                "pulse_job_failing",
                "pulse_job_runs_total",
                "pulse_job_missed_runs_total"
            ]
        );
        let ping = |signal, at| Ping {
            signal,
            rid: Some("r".into()),
            log: None,
            at,
        };
        state.apply(&ping(Signal::Start, 10.0), Duration::from_secs(60));
        state.apply(&ping(Signal::Fail(Some(2)), 15.0), Duration::from_secs(60));
        let mut with_max = spec();
        with_max.max_runtime = Some(Duration::from_secs(600));
        // Two and a half hours after the failed run at 15 s: its next two deadlines (1 h 1 min
        // and 2 h 1 min after it) passed with no run.
        let families = job_families(&with_max, Some(&state), 15.0 + 9000.0);
        let value = |name: &str| {
            families
                .iter()
                .find(|f| f.name == name)
                .map(|f| f.samples[0].value)
        };
        assert_eq!(value("pulse_job_last_exit_code"), Some(2.0));
        assert_eq!(value("pulse_job_last_duration_seconds"), Some(5.0));
        assert_eq!(value("pulse_job_failing"), Some(1.0));
        assert_eq!(value("pulse_job_max_runtime_seconds"), Some(600.0));
        assert_eq!(value("pulse_job_running_since_timestamp_seconds"), None);
        assert_eq!(value("pulse_job_missed_runs_total"), Some(2.0));
        let runs = families
            .iter()
            .find(|f| f.name == "pulse_job_runs_total")
            .unwrap();
        assert_eq!(
            runs.samples.iter().map(|s| s.value).collect::<Vec<_>>(),
            [0.0, 1.0]
        );
        assert!(families
            .iter()
            .flat_map(|f| &f.samples)
            .all(|s| s.labels.contains(&("team".into(), "data".into()))));
    }
}
