//! How both objectives views (the bundle's Objectives board and a config's Objectives row)
//! show an error budget: a table of the budget left beside two recorded rates, and the
//! colours that read a budget left and a burn rate.

use serde_json::{json, Value};

use super::fields::{cell, coloured, column, merge, organize, sort_by, steps, unit};

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
