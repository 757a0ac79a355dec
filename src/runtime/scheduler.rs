//! Running checks: one task per check with start jitter, a fixed interval, no overlap, and a
//! timeout that drops the probe's future; outcomes go to the store and transitions to the log.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures_util::FutureExt;
use rand::Rng;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use crate::config_core::CheckPlan;
use crate::runtime::results::{Results, Transition};
use crate::series::run_error::{Reason, RunError};
use crate::sources::Runnable;

/// Longest start delay (a tenth of the interval, at most this): checks spread out instead of
/// all firing at start-up, without delaying the first result much.
pub const MAX_JITTER: Duration = Duration::from_secs(5);

/// Outcome of one run, for `probe` output: series published, or the error.
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// Series kept, or why the run failed.
    pub result: Result<usize, RunError>,
    /// How long the run took.
    pub duration: Duration,
    /// Why a successful run could not measure (see [`crate::series::sample::Output::unmeasured`]).
    pub unmeasured: Option<String>,
}

/// Starts the task that runs `probe` every `plan.interval` until the handle is aborted.
/// Aborting drops an in-flight run, which is how a reload or shutdown cancels it.
pub fn spawn(
    plan: Arc<CheckPlan>,
    probe: Arc<dyn Runnable>,
    store: Arc<Results>,
) -> JoinHandle<()> {
    spawn_after(plan, probe, store, Start::Jittered)
}

/// When a check's first run comes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// After a random delay (see [`MAX_JITTER`]): the checks of a config spread out.
    Jittered,
    /// At once: a leased target's first scrape is waiting for it, and the scrapers already
    /// spread their targets over the interval.
    Now,
}

/// [`spawn`], with the first run at `start`.
pub fn spawn_after(
    plan: Arc<CheckPlan>,
    probe: Arc<dyn Runnable>,
    store: Arc<Results>,
    start: Start,
) -> JoinHandle<()> {
    store.register(plan.clone());
    tokio::spawn(async move {
        if start == Start::Jittered {
            let cap = (plan.interval / 10).min(MAX_JITTER);
            let jitter = cap.mul_f64(rand::rng().random_range(0.0..1.0));
            tokio::time::sleep(jitter).await;
        }
        let mut ticker = tokio::time::interval(plan.interval);
        // A run that overran (it cannot exceed the timeout, which is below the interval) shifts
        // the schedule rather than triggering a burst of catch-up runs.
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            run_once(&plan, probe.as_ref(), &store).await;
        }
    })
}

/// Runs `probe` once within `plan.timeout`, records the outcome and logs state changes.
pub async fn run_once(plan: &CheckPlan, probe: &dyn Runnable, store: &Results) -> RunSummary {
    let started = Instant::now();
    let deadline = started + plan.timeout;
    // A panic in a probe is a bug; caught here, it fails this run instead of silently ending
    // the check's task (which would freeze its last outcome forever).
    let guarded = AssertUnwindSafe(probe.run(deadline)).catch_unwind();
    let result = match tokio::time::timeout(plan.timeout, guarded).await {
        Ok(Ok(r)) => r,
        Ok(Err(panic)) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            Err(RunError::new(
                Reason::Internal,
                format!("the check panicked (a pulse-exporter bug, please report it): {what}"),
            ))
        }
        Err(_) => Err(RunError::new(
            Reason::Timeout,
            format!(
                "no result within the {} timeout; the run was cancelled",
                humantime::format_duration(plan.timeout)
            ),
        )),
    };
    let duration = started.elapsed();
    let result = result.map(|mut out| {
        out.add_labels(&plan.const_labels);
        out
    });
    let summary = RunSummary {
        result: match &result {
            Ok(out) => match &out.failure {
                None => Ok(out.series().min(plan.max_series)),
                Some(e) => Err(e.clone()),
            },
            Err(e) => Err(e.clone()),
        },
        duration,
        unmeasured: result.as_ref().ok().and_then(|o| o.unmeasured.clone()),
    };
    let transition = store.record(plan, result, duration, SystemTime::now());
    log_transition(plan, &transition, &summary);
    summary
}

fn log_transition(plan: &CheckPlan, transition: &Transition, summary: &RunSummary) {
    let error = summary.result.as_ref().err();
    match (transition, plan.is_health()) {
        (Transition::Degraded(reason), true) => tracing::warn!(
            event = "source.degraded",
            source = %plan.source,
            kind = plan.kind,
            reason = reason.as_str(),
            error = error.map(|e| e.message()).unwrap_or_default(),
            "source degraded"
        ),
        (Transition::Recovered, true) => tracing::info!(
            event = "source.recovered",
            source = %plan.source,
            kind = plan.kind,
            "source recovered"
        ),
        (Transition::Degraded(reason), false) => tracing::warn!(
            event = "check.failing",
            source = %plan.source,
            check = %plan.check,
            reason = reason.as_str(),
            error = error.map(|e| e.message()).unwrap_or_default(),
            "check failing"
        ),
        (Transition::Recovered, false) => tracing::info!(
            event = "check.recovered",
            source = %plan.source,
            check = %plan.check,
            "check recovered"
        ),
        (Transition::Unchanged, _) => {
            if let Some(e) = error {
                tracing::debug!(source = %plan.source, check = %plan.check, reason = e.reason().as_str(), error = e.message(), "still failing");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::RunFuture;

    struct Panics;

    impl Runnable for Panics {
        fn run(&self, _deadline: Instant) -> RunFuture<'_> {
            Box::pin(async { panic!("boom") })
        }
    }

    #[tokio::test]
    async fn a_panicking_probe_fails_the_run_with_reason_internal() {
        let plan = CheckPlan {
            source: "s".into(),
            kind: "postgres",
            check: "c".into(),
            interval: Duration::from_secs(10),
            timeout: Duration::from_secs(1),
            stale_after: Duration::from_secs(30),
            max_series: 10,
            max_bytes: usize::MAX,
            const_labels: vec![],
        };
        let store = Results::new();
        store.register(Arc::new(plan.clone()));
        let summary = run_once(&plan, &Panics, &store).await;
        let err = summary.result.unwrap_err();
        assert_eq!(err.reason(), Reason::Internal);
        assert!(err.message().contains("boom"));
        assert_eq!(store.snapshot()[0].succeeded(), Some(false));
    }
}
