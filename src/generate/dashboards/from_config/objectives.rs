//! The objectives row of a config's dashboard: for every source, check and job with an
//! objective, the budget left in its window and the burn rates the page and the ticket read,
//! from the series the generated rules record ([`crate::generate::objectives`]). Without
//! those rules loaded the row reads NO DATA, never a budget untouched.

use serde_json::json;

use super::super::board::Board;
use super::super::budget::{
    budget_left_column, budget_rows, burn_column, burning, check_table, job_latency_table,
    spent_column,
};
use super::super::fields::by_query;
use super::VAR;
use crate::config::{Config, SourceConfig};
use crate::generate::objectives::{
    burn_series, event_ratio_series, job_ratio_series, latency_ratio_series, BUDGET_LEFT,
    EVENT_BUDGET_LEFT, JOB_BUDGET_LEFT, LATENCY_BUDGET_LEFT,
};
use crate::generate::style;
use crate::generate::{any_source, selector};

/// `source=~"…"` of the sources (and templates' targets) with an availability objective;
/// None when no source has one.
fn with_objectives(config: &Config) -> Option<String> {
    any_source(SourceConfig::all(config).filter(|s| s.common.objective.on().is_some()))
}

/// The row, when a source, a check or a job has an objective: availability, then latency
/// and delivery, then the checks', then the jobs'.
pub(super) fn objectives_row(b: &mut Board, config: &Config) {
    let latency = with_latency_objectives(config);
    let available = with_objectives(config);
    let jobs = config.jobs.jobs.iter().any(|j| j.objective.is_some())
        || config.jobs.keys.iter().any(|k| k.job.objective.is_some());
    let job_latency = config
        .jobs
        .jobs
        .iter()
        .any(|j| !j.latency_objectives.is_empty())
        || config
            .jobs
            .keys
            .iter()
            .any(|k| !k.job.latency_objectives.is_empty());
    let checks = with_check_objectives(config);
    if available.is_none() && latency.is_none() && checks.is_none() && !jobs && !job_latency {
        return;
    }
    b.keyed_row("row/objectives", "Objectives");
    if let Some(sources) = available {
        availability_panels(b, &sources);
    }
    if let Some(sources) = latency {
        latency_table(b, &sources);
    }
    if let Some(sources) = checks {
        let of = |metric: &str| {
            style::fold(&selector(metric, std::slice::from_ref(&sources), Some(VAR)))
        };
        check_table(b, &of)
            .key("objectives/checks")
            .size(24, 6)
            .alerts(&["PulseObjectiveFastBurn", "PulseObjectiveSlowBurn"]);
    }
    if jobs {
        jobs_table(b);
    }
    if job_latency {
        let of = |metric: &str| style::fold(&selector(metric, &[], Some(VAR)));
        job_latency_table(b, &of)
            .key("objectives/job-latency")
            .size(24, 6)
            .alerts(&["PulseObjectiveFastBurn", "PulseObjectiveSlowBurn"]);
    }
}

/// `source=~"…"` of the sources (and templates' targets) with a check that has an objective.
fn with_check_objectives(config: &Config) -> Option<String> {
    any_source(
        SourceConfig::all(config)
            .filter(|s| s.checks().iter().any(|c| c.common().objective().is_some())),
    )
}

/// `source=~"…"` of the sources (and templates' targets) with a latency objective or an
/// objective on the events they count.
fn with_latency_objectives(config: &Config) -> Option<String> {
    any_source(
        SourceConfig::all(config).filter(|s| {
            !s.common.latency_objectives.is_empty() || s.kind.event_objective().is_some()
        }),
    )
}

/// The availability budget table and the burn rates over time.
fn availability_panels(b: &mut Board, sources: &str) {
    let of = |metric: &str| style::fold(&selector(metric, &[sources.to_owned()], Some(VAR)));
    budget_table(b, &of);
    let burn = |window: &str| json!({"expr": of(&burn_series(window)), "legendFormat": format!("{{{{source}}}} over {window}")});
    b.ts(
        "Burn rate of the availability budget",
        "How fast each source's health probes spend its error budget: 1 spends it exactly over the objective's window (the objective line), 6 over 6 h and 14.4 over 1 h page (PulseObjectiveFastBurn), 3 over a day opens a ticket (PulseObjectiveSlowBurn). Solid over 1 h, dashed over 6 h. From the generated rules' recorded series: NO DATA until they are loaded. The header's failures table says which reasons spent it.",
        "none",
        vec![burn("1h"), burn("6h")],
    )
    .key("objectives/burn")
    .size(16, 8)
    .alerts(&["PulseObjectiveFastBurn", "PulseObjectiveSlowBurn"])
    .thresholds(burning())
    .overrides(vec![by_query(
        "B",
        &[("custom.lineStyle", json!({"fill": "dash", "dash": [10, 10]}))],
    )]);
}

/// Per latency or delivery objective: the budget left, and the share of its operations over
/// the bound (or of its events given up on) over 1 h and 6 h.
fn latency_table(b: &mut Board, sources: &str) {
    let of = |metric: &str| style::fold(&selector(metric, &[sources.to_owned()], Some(VAR)));
    let either = |latency: &str, events: &str| format!("{}\nor {}", of(latency), of(events));
    let exprs = vec![
        either(LATENCY_BUDGET_LEFT, EVENT_BUDGET_LEFT),
        either(&latency_ratio_series("1h"), &event_ratio_series("1h")),
        either(&latency_ratio_series("6h"), &event_ratio_series("6h")),
    ];
    b.table(
        "Latency and delivery objectives",
        "Each latency objective (`latency_objectives:`) and each Stripe source's delivery objective (`delivery_objective:`, 99.9 % of its events reach every webhook endpoint before Stripe gives up): the share of its window's error budget left, and the share of its operations slower than its bound (of its events given up on) over the last hour and six hours. From the generated rules' recorded series: NO DATA until they are loaded.",
        "short",
        exprs,
    )
    .key("objectives/latency")
    .size(24, 6)
    .alerts(&["PulseObjectiveFastBurn", "PulseObjectiveSlowBurn"])
    .transformations(budget_rows(["spent 1h", "spent 6h"], &["__name__", "job"]))
    .overrides(vec![
        budget_left_column(),
        spent_column("spent 1h"),
        spent_column("spent 6h"),
    ]);
}

/// Per job with an objective: the budget left, and the share of its due runs failed or
/// missed over 1 h and 6 h.
fn jobs_table(b: &mut Board) {
    let of = |metric: &str| style::fold(&selector(metric, &[], Some(VAR)));
    let exprs = vec![
        // A key's jobs' budgets carry the key: dropped, to meet their ratios by job.
        format!("max without (objective, key) ({})", of(JOB_BUDGET_LEFT)),
        of(&job_ratio_series("1h")),
        of(&job_ratio_series("6h")),
    ];
    b.table(
        "Job objectives",
        "Each job's objective (`objective:` of a job or a key, 95 % of its due runs finish well and on time over 28 days unless set): the share of its window's error budget left, and the share of its due runs that failed or were missed over the last hour and six hours. From the generated rules' recorded series: NO DATA until they are loaded; a job due less often than hourly has no ratio in most hours.",
        "short",
        exprs,
    )
    .key("objectives/jobs")
    .size(24, 6)
    .alerts(&["PulseObjectiveFastBurn", "PulseObjectiveSlowBurn"])
    .transformations(budget_rows(
        ["failed or missed 1h", "failed or missed 6h"],
        &["__name__", "job"],
    ))
    .overrides(vec![
        budget_left_column(),
        spent_column("failed or missed 1h"),
        spent_column("failed or missed 6h"),
    ]);
}

/// Per source: the budget left in the window, and the burn rates over 1 h and 6 h.
fn budget_table(b: &mut Board, of: &dyn Fn(&str) -> String) {
    let exprs = vec![
        of(BUDGET_LEFT),
        of(&burn_series("1h")),
        of(&burn_series("6h")),
    ];
    b.table(
        "Error budget left",
        "Each source's availability objective (`objective:`, 99.5 % of its health probes over 28 days unless set): the share of the window's error budget left (100 % untouched, 0 spent, below 0 overspent), and how fast it burns now (1 spends it exactly over the window). From the generated rules' recorded series: NO DATA until they are loaded.",
        "short",
        exprs,
    )
    .key("objectives/budget")
    .size(8, 8)
    .alerts(&["PulseObjectiveFastBurn", "PulseObjectiveSlowBurn"])
    .transformations(budget_rows(
        ["burn 1h", "burn 6h"],
        &["__name__", "job", "objective", "kind"],
    ))
    .overrides(vec![
        budget_left_column(),
        burn_column("burn 1h"),
        burn_column("burn 6h"),
    ]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    /// The titles of `panels`, in order.
    fn titles(panels: &[Value]) -> Vec<&str> {
        panels
            .iter()
            .map(|p| p["title"].as_str().unwrap())
            .collect()
    }

    /// The panels of `config`'s objectives row.
    fn row_of(config: &Config) -> Vec<Value> {
        let mut b = Board::keyed("u", "t", "d");
        objectives_row(&mut b, config);
        b.panels(&|e| e.to_owned())
    }

    #[test]
    fn the_row_reads_the_recorded_series_of_the_sources_with_an_objective() {
        let config = crate::config::load_str(
            "sources:\n  - { name: a, kind: redis, url: 'redis://h' }\n  - { name: b, kind: redis, url: 'redis://h', objective: false }\n",
        )
        .unwrap();
        let panels = row_of(&config);
        assert_eq!(panels[0]["title"], "Objectives");
        let table = panels[1]["targets"][0]["expr"].as_str().unwrap();
        assert!(
            table.contains(
                "pulse_source:objective_budget_left:ratio{source=~\"a\", instance=~\"$instance\"}"
            ),
            "{table}"
        );
        let burn = panels[2]["targets"][1]["expr"].as_str().unwrap();
        assert!(
            burn.contains("pulse_source:objective_burn_rate:rate6h"),
            "{burn}"
        );
        let none = crate::config::load_str(
            "sources: [{ name: a, kind: redis, url: 'redis://h', objective: false }]\n",
        )
        .unwrap();
        assert!(row_of(&none).is_empty());
    }

    #[test]
    fn a_latency_objective_has_a_table_of_its_own() {
        let config = crate::config::load_str(
            "sources:\n  - { name: c, kind: redis, url: 'redis://h', objective: false, latency_objectives: [{ name: get-fast, under: 4096us }] }\n",
        )
        .unwrap();
        let panels = row_of(&config);
        let titles = titles(&panels);
        assert_eq!(titles, ["Objectives", "Latency and delivery objectives"]);
        let expr = panels[1]["targets"][0]["expr"].as_str().unwrap();
        assert!(
            expr.contains("pulse_source:latency_budget_left:ratio{source=~\"c\""),
            "{expr}"
        );
    }

    #[test]
    fn jobs_and_stripe_deliveries_with_objectives_have_their_tables() {
        let config = crate::config::load_str(
            "sources:\n  - { name: pay, kind: stripe, api_key: sk_x, objective: false }\njobs:\n  - { name: rollup, every: 1h, token: 0123456789abcdef0, latency_objectives: [{ name: quick, under: 64s }] }\n",
        )
        .unwrap();
        let panels = row_of(&config);
        let titles = titles(&panels);
        assert_eq!(
            titles,
            [
                "Objectives",
                "Latency and delivery objectives",
                "Job objectives",
                "Job latency objectives"
            ]
        );
        let delivery = panels[1]["targets"][0]["expr"].as_str().unwrap();
        assert!(
            delivery.contains("pulse_source:event_budget_left:ratio{source=~\"pay\""),
            "{delivery}"
        );
        let jobs = panels[2]["targets"][1]["expr"].as_str().unwrap();
        assert!(
            jobs.contains("pulse_job:run_error_ratio:rate1h{instance=~\"$instance\"}"),
            "{jobs}"
        );
        let off = crate::config::load_str(
            "sources: []\njobs:\n  - { name: rollup, every: 1h, token: 0123456789abcdef0, objective: false }\n",
        )
        .unwrap();
        assert!(row_of(&off).is_empty());
    }

    #[test]
    fn checks_with_objectives_have_their_table_scoped_to_their_sources() {
        let config = crate::config::load_str(
            "sources:\n  - { name: db, kind: postgres, url: 'postgres://h/db', objective: false, checks: [{ metric: app_users, sql: SELECT 1 AS value, objective: true }] }\n  - { name: other, kind: postgres, url: 'postgres://h/db', objective: false, checks: [{ metric: app_x, sql: SELECT 1 AS value }] }\n",
        )
        .unwrap();
        let panels = row_of(&config);
        let titles = titles(&panels);
        assert_eq!(titles, ["Objectives", "Check objectives"]);
        let left = panels[1]["targets"][0]["expr"].as_str().unwrap();
        assert!(
            left.contains("pulse_check:objective_budget_left:ratio{source=~\"db\""),
            "{left}"
        );
    }
}
