//! How both objectives views (the bundle's Objectives board and a config's Objectives row)
//! show an error budget: a table of the budget left beside two recorded rates, the tables
//! both views share (the checks', the jobs' latency), and the colours that read a budget
//! left and a burn rate.

use serde_json::{json, Value};

use super::board::Board;
use super::fields::{cell, coloured, column, merge, organize, sort_by, steps, unit};
use super::panel::Panel;

/// The first column of every budget table.
pub(super) const BUDGET_LEFT: &str = "budget left";

/// The share of a budget left: red under a quarter, orange under half.
pub(super) fn budget_left_column() -> Value {
    column(
        BUDGET_LEFT,
        &[
            unit("percentunit"),
            coloured(steps(&[
                ("red", Value::Null),
                ("orange", json!(0.25)),
                ("green", json!(0.5)),
            ])),
            cell("color-background"),
        ],
    )
}

/// A burn rate: orange from 1 (the budget lasts exactly the window), red from 6 (a page
/// over 6 h).
pub(super) fn burning() -> Value {
    steps(&[
        ("green", Value::Null),
        ("orange", json!(1)),
        ("red", json!(6)),
    ])
}

/// A burn-rate column named `name`, coloured as [`burning`].
pub(super) fn burn_column(name: &str) -> Value {
    column(
        name,
        &[unit("none"), coloured(burning()), cell("color-text")],
    )
}

/// A column of the share of events spent, named `name`.
pub(super) fn spent_column(name: &str) -> Value {
    column(name, &[unit("percentunit")])
}

/// The table of the jobs' latency objectives, each series read through `of`: the budget
/// left, and the share of the runs slower than the bound over 1 h and 6 h. A key's jobs'
/// series carry the key: dropped, so that a row is a job and an objective.
pub(super) fn job_latency_table<'b>(
    b: &'b mut Board,
    of: &dyn Fn(&str) -> String,
) -> &'b mut Panel {
    use crate::generate::objectives::{job_duration_ratio_series, JOB_DURATION_BUDGET_LEFT};
    let queries = [
        JOB_DURATION_BUDGET_LEFT.to_owned(),
        job_duration_ratio_series("1h"),
        job_duration_ratio_series("6h"),
    ]
    .iter()
    .map(|series| format!("max without (key) ({})", of(series)))
    .collect();
    b.table(
        "Job latency objectives",
        "Each latency objective of a job (`latency_objectives:` of a job or a key, on `pulse_job_duration_seconds`): the share of its window's budget left, and the share of its runs slower than the bound over the last hour and six hours. From the series the generated rules record: NO DATA until they are loaded.",
        "short",
        queries,
    )
    .transformations(budget_rows(["slower 1h", "slower 6h"], &["__name__", "job"]))
    .overrides(vec![
        budget_left_column(),
        spent_column("slower 1h"),
        spent_column("slower 6h"),
    ])
}

/// The table of the checks' objectives, each series read through `of`: the budget left, and
/// the share of the runs that failed over 1 h and 6 h.
pub(super) fn check_table<'b>(b: &'b mut Board, of: &dyn Fn(&str) -> String) -> &'b mut Panel {
    use crate::generate::objectives::{check_ratio_series, CHECK_BUDGET_LEFT};
    b.table(
        "Check objectives",
        "Each check's objective (`objective:` on a check, 99 % of its runs succeed over 28 days unless set): the share of its window's error budget left, and the share of its runs that failed over the last hour and six hours. From the series the generated rules record: NO DATA until they are loaded. A check that runs less often than every 5 minutes has no ratio over the short windows, so only its slow burn fires.",
        "short",
        vec![
            of(CHECK_BUDGET_LEFT),
            of(&check_ratio_series("1h")),
            of(&check_ratio_series("6h")),
        ],
    )
    .transformations(budget_rows(
        ["failed 1h", "failed 6h"],
        &["__name__", "job", "objective"],
    ))
    .overrides(vec![
        budget_left_column(),
        spent_column("failed 1h"),
        spent_column("failed 6h"),
    ])
}

/// The transformations of a table of three instant queries (the budget left, then the two
/// rates named `rates`), one row per objective, the least budget first; `hidden` labels
/// are left out.
pub(super) fn budget_rows(rates: [&str; 2], hidden: &[&str]) -> Vec<Value> {
    vec![
        merge(),
        organize(
            &[
                ("Value #A", BUDGET_LEFT),
                ("Value #B", rates[0]),
                ("Value #C", rates[1]),
            ],
            hidden,
            &[],
        ),
        sort_by(BUDGET_LEFT, false),
    ]
}
