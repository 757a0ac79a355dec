//! Every check of a config run once, all at the same time, into a store of their own: what
//! the `probe` subcommand prints, and how a kind's example proves it runs to series.

use std::sync::Arc;

use crate::config::Config;
use crate::runtime::results::Results;
use crate::runtime::scheduler::{run_once, RunSummary};

/// One check (or health probe) run once.
#[derive(Debug, Clone)]
pub struct OnceRow {
    /// Source name.
    pub source: String,
    /// Source kind.
    pub kind: &'static str,
    /// Check name (`health` for the health probe).
    pub check: String,
    /// What happened.
    pub summary: RunSummary,
}

/// Runs the health probe and every check of every source once, all at the same time.
pub async fn run_all_once(config: &Config) -> Result<Vec<OnceRow>, String> {
    run_once_into(config, &Arc::new(Results::new())).await
}

/// [`run_all_once`], recording into `store` (which then serves what the runs published).
pub async fn run_once_into(config: &Config, store: &Arc<Results>) -> Result<Vec<OnceRow>, String> {
    let mut tasks = Vec::new();
    for s in &config.sources {
        let source = s
            .kind
            .start(&s.common.name, None, &s.plans.checks)
            .map_err(|error| {
                let path = s.path.clone();
                crate::runtime::app::StartError { path, error }.to_string()
            })?;
        let health = s.plans.health.clone();
        let mut jobs = vec![(health, source.health)];
        jobs.extend(source.checks.into_iter().map(|c| (c.plan, c.probe)));
        for (plan, probe) in jobs {
            let store = store.clone();
            store.register(plan.clone());
            tasks.push(tokio::spawn(async move {
                let summary = run_once(&plan, probe.as_ref(), &store).await;
                OnceRow {
                    source: plan.source.clone(),
                    kind: plan.kind,
                    check: plan.check.clone(),
                    summary,
                }
            }));
        }
    }
    let mut rows = Vec::new();
    for t in tasks {
        rows.push(t.await.map_err(|e| format!("a probe task failed: {e}"))?);
    }
    Ok(rows)
}
