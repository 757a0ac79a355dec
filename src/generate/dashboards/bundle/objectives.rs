//! Objectives: how much of each error budget is left and how fast it burns, for every
//! source's availability, every latency and delivery objective, every check and every job,
//! with the failures that spent it. It reads the series the rules `pulse-exporter rules`
//! generates record (docs/objectives.md): without them loaded every panel reads NO DATA,
//! never a budget untouched.

use serde_json::json;

use super::super::board::Board;
use super::super::budget::{
    budget_left_column, budget_rows, burn_column, burning, check_table, job_latency_table,
    spent_column,
};
use super::super::fields::by_query;
use super::super::panel::line;
use super::{by, by_source, eq, raw_with, sel};
use crate::generate::objectives::{
    burn_series, event_ratio_series, job_ratio_series, latency_ratio_series, BUDGET_LEFT,
    EVENT_BUDGET_LEFT, JOB_BUDGET_LEFT, LATENCY_BUDGET_LEFT,
};
use crate::generate::style;

/// The labels no budget table shows.
const HIDDEN: &[&str] = &["__name__", "job"];

/// Where every description sends the reader for what the series are.
const FROM_RULES: &str = "From the series the generated rules record (`pulse-exporter rules`, docs/objectives.md): NO DATA until they are loaded.";

/// Each source's availability: the budget left, the burn rates, the failures that spent it.
fn availability(b: &mut Board) {
    b.row("Sources: availability");
    b.table(
        "Error budget left",
        &format!("Each source's availability objective (`objective:`, 99.5 % of its health probes over 28 days unless set): the share of the window's error budget left (100 % untouched, 0 spent, below 0 overspent), and how fast it burns now (1 spends it exactly over the window; 14.4 over 1 h or 6 over 6 h pages as PulseObjectiveFastBurn). {FROM_RULES}"),
        "short",
        vec![sel(BUDGET_LEFT), sel(&burn_series("1h")), sel(&burn_series("6h"))],
    )
    .size(10, 9)
    .transformations(budget_rows(["burn 1h", "burn 6h"], HIDDEN))
    .overrides(vec![
        budget_left_column(),
        burn_column("burn 1h"),
        burn_column("burn 6h"),
    ]);
    b.ts(
        "Burn rate of the availability budget",
        &format!("How fast each source's failed health probes spend its budget, over 1 h (solid) and 6 h (dashed), against the objective's line at 1: above it, the budget runs out before the window ends. {FROM_RULES}"),
        "none",
        vec![
            line(sel(&burn_series("1h")), "{{platform}} {{source}} over 1h"),
            line(sel(&burn_series("6h")), "{{platform}} {{source}} over 6h"),
        ],
    )
    .size(14, 9)
    .thresholds(burning())
    .threshold_lines("line")
    .overrides(vec![by_query(
        "B",
        &[("custom.lineStyle", json!({"fill": "dash", "dash": [10, 10]}))],
    )]);
    b.ts(
        "Failed health probes by reason",
        "What spent the availability budgets: the health probes that failed, by source and reason (timeout, connect, auth, …), per interval of the graph. Absent while none fails.",
        "short",
        vec![line(
            format!(
                "sum by ({}) ({})",
                by_source(&["reason"]),
                style::fold(&format!(
                    "increase({}[$__rate_interval])",
                    raw_with::<&str>("pulse_source_probe_failures_total", &[])
                ))
            ),
            "{{platform}} {{source}} {{reason}}",
        )],
    )
    .size(24, 7);
}

/// Latency objectives and the Stripe sources' deliveries.
fn latency_and_delivery(b: &mut Board) {
    b.row("Sources: latency and deliveries");
    let either = |latency: &str, events: &str| format!("{}\nor {}", sel(latency), sel(events));
    b.table(
        "Latency and delivery objectives",
        &format!("Each latency objective (`latency_objectives:`) and each Stripe source's delivery objective (99.9 % of its events reach every webhook endpoint before Stripe gives up): the share of the window's budget left, and the share of the operations slower than the bound (of the events given up on) over 1 h and 6 h. {FROM_RULES}"),
        "short",
        vec![
            either(LATENCY_BUDGET_LEFT, EVENT_BUDGET_LEFT),
            either(&latency_ratio_series("1h"), &event_ratio_series("1h")),
            either(&latency_ratio_series("6h"), &event_ratio_series("6h")),
        ],
    )
    .size(24, 7)
    .transformations(budget_rows(["spent 1h", "spent 6h"], HIDDEN))
    .overrides(vec![
        budget_left_column(),
        spent_column("spent 1h"),
        spent_column("spent 6h"),
    ]);
}

/// The checks' objectives, and the failed runs that spent them.
fn checks(b: &mut Board) {
    b.row("Checks");
    check_table(b, &|series| sel(series)).size(10, 8);
    b.ts(
        "Failed check runs by reason",
        "What spent the checks' budgets: the runs that failed, by source, check and reason (timeout, connect, auth, query, decode, …), per interval of the graph. Every check's failures, with an objective or not; absent while none fails.",
        "short",
        vec![line(
            format!(
                "sum by ({}) ({})",
                by_source(&["check", "reason"]),
                style::fold(&format!(
                    "increase({}[$__rate_interval])",
                    raw_with::<&str>("pulse_check_failures_total", &[])
                ))
            ),
            "{{platform}} {{source}} {{check}} {{reason}}",
        )],
    )
    .size(14, 8);
}

/// The jobs' objectives, and their failed and missed runs.
fn jobs(b: &mut Board) {
    b.row("Jobs");
    b.table(
        "Job objectives",
        &format!("Each job's objective (95 % of its due runs finish well and on time over 28 days unless set): the share of the window's budget left, and the share of its due runs that failed or were missed over 1 h and 6 h (a job due less often than hourly has none in most hours). {FROM_RULES}"),
        "short",
        vec![
            // A key's jobs' budgets carry the key: dropped, to meet their ratios by job.
            format!("max without (objective, key) ({})", sel(JOB_BUDGET_LEFT)),
            sel(&job_ratio_series("1h")),
            sel(&job_ratio_series("6h")),
        ],
    )
    .size(10, 8)
    .transformations(budget_rows(
        ["failed or missed 1h", "failed or missed 6h"],
        HIDDEN,
    ))
    .overrides(vec![
        budget_left_column(),
        spent_column("failed or missed 1h"),
        spent_column("failed or missed 6h"),
    ]);
    let per_job = |metric: &str, matchers: &[String]| {
        format!(
            "sum by ({}) ({})",
            by(&["job_name"]),
            style::fold(&format!(
                "increase({}[$__rate_interval])",
                raw_with(metric, matchers)
            ))
        )
    };
    b.ts(
        "Failed and missed runs",
        "What spent the jobs' budgets: runs that reported a failure, and due times whose deadline passed with no run finished, per job and interval of the graph.",
        "short",
        vec![
            line(
                per_job("pulse_job_runs_total", &[eq("outcome", "failure")]),
                "{{platform}} {{job_name}} failed",
            ),
            line(
                per_job("pulse_job_missed_runs_total", &[]),
                "{{platform}} {{job_name}} missed",
            ),
        ],
    )
    .size(14, 8);
    job_latency_table(b, &|series| sel(series)).size(24, 6);
}

/// The board.
pub(super) fn board() -> Board {
    let mut b = Board::new(
        "pulse-objectives",
        "Objectives",
        "How much of each error budget is left and how fast it burns: every source's availability, every latency and delivery objective, every check's and every job's runs, with the failures that spent them. Reads the series the generated rules record (`pulse-exporter rules`, docs/objectives.md).",
    );
    availability(&mut b);
    latency_and_delivery(&mut b);
    checks(&mut b);
    jobs(&mut b);
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::bundle::Selection;
    use crate::generate::objectives::{
        check_ratio_series, job_duration_ratio_series, CHECK_BUDGET_LEFT, JOB_DURATION_BUDGET_LEFT,
    };

    /// Every kind of objective the rules record has its budget left and its short ratios on
    /// the board: an objective the generator records but the board forgot would read nowhere.
    #[test]
    fn every_recorded_budget_and_its_ratios_are_on_the_board() {
        let board = super::super::json(&board(), &[], &Selection::default());
        let exprs: Vec<String> = board["panels"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
            .map(|t| t["expr"].as_str().unwrap().to_owned())
            .collect();
        let read = |series: &str| exprs.iter().any(|e| e.contains(&format!("{series}{{")));
        let kinds = [
            (BUDGET_LEFT.to_owned(), burn_series("1h")),
            (LATENCY_BUDGET_LEFT.to_owned(), latency_ratio_series("1h")),
            (EVENT_BUDGET_LEFT.to_owned(), event_ratio_series("1h")),
            (CHECK_BUDGET_LEFT.to_owned(), check_ratio_series("6h")),
            (JOB_BUDGET_LEFT.to_owned(), job_ratio_series("6h")),
            (
                JOB_DURATION_BUDGET_LEFT.to_owned(),
                job_duration_ratio_series("6h"),
            ),
        ];
        for (budget, ratio) in kinds {
            assert!(read(&budget), "{budget} is on no panel");
            assert!(read(&ratio), "{ratio} is on no panel");
        }
    }
}
