//! `pulse-exporter probe`: run every check of a config once and print what happened, for an
//! SRE wiring up a new source.

use std::sync::Arc;

use crate::configfile::Config;
use crate::run::scheduler::{run_once, RunSummary};
use crate::run::store::Store;

/// One row of the table.
#[derive(Debug, Clone)]
pub struct ProbeRow {
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
pub async fn probe_all(config: &Config) -> Result<Vec<ProbeRow>, String> {
    let store = Arc::new(Store::new());
    let mut tasks = Vec::new();
    for s in &config.sources {
        let source = s
            .kind
            .start(&s.common.name, None, &|c| s.check_plan(&config.global, c))
            .map_err(|e| format!("{}: {e}", s.path))?;
        let health = s.health_plan(&config.global);
        let mut jobs = vec![(health, source.health)];
        jobs.extend(source.checks.into_iter().map(|c| (c.plan, c.probe)));
        for (plan, probe) in jobs {
            let store = store.clone();
            store.register(Arc::new(plan.clone()));
            tasks.push(tokio::spawn(async move {
                let summary = run_once(&plan, probe.as_ref(), &store).await;
                ProbeRow {
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

/// The rows as an aligned text table.
pub fn render(rows: &[ProbeRow]) -> String {
    let mut table = vec![[
        "SOURCE".to_owned(),
        "KIND".to_owned(),
        "CHECK".to_owned(),
        "OUTCOME".to_owned(),
        "DURATION".to_owned(),
        "SERIES".to_owned(),
        "ERROR".to_owned(),
    ]];
    for r in rows {
        let (outcome, series, error) = match &r.summary.result {
            Ok(n) => ("ok".to_owned(), n.to_string(), String::new()),
            Err(e) => (
                format!("FAIL ({})", e.reason()),
                "-".to_owned(),
                e.message().replace('\n', " "),
            ),
        };
        table.push([
            r.source.clone(),
            r.kind.to_owned(),
            r.check.clone(),
            outcome,
            format!("{:.1}ms", r.summary.duration.as_secs_f64() * 1000.0),
            series,
            error,
        ]);
    }
    let widths: Vec<usize> = (0..7)
        .map(|i| {
            table
                .iter()
                .map(|row| row[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in &table {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if i == 6 {
                    c.clone()
                } else {
                    format!("{c:<w$}", w = widths[i])
                }
            })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}
