//! The panels of the Postgres built-in checks in a generated dashboard: the statements that
//! take the time, and the tables read whole.

use super::metrics::{
    STATEMENT_CALLS, STATEMENT_EXEC_TIME, STATEMENT_INFO, STATEMENT_MEAN_EXEC_TIME,
    TABLE_LIVE_ROWS, TABLE_SEQ_ROWS_READ,
};
use crate::config_core::display::PanelKind;
use crate::config_core::shape::{Builtin, Panel, PanelQuery, Series, Shape};

/// What the `statements` check publishes, with its panels.
pub(super) fn statements() -> Vec<Series> {
    let set = Builtin {
        panels: vec![
            Panel {
                key: "time",
                title: "Execution time by statement".to_owned(),
                description: "Execution time of each statement of the top in each window, and \
                    of the rest of its database (queryid other): the statements that take the \
                    database's time. pulse_postgres_statement_info has the text of each queryid.",
                unit: "s",
                kind: PanelKind::Timeseries,
                queries: vec![PanelQuery::metric(
                    STATEMENT_EXEC_TIME.name,
                    "{{database}} {{queryid}}",
                )],
                outcome: false,
            },
            Panel {
                key: "mean",
                title: "Mean latency by statement".to_owned(),
                description: "Mean execution time of one call of each statement of the top, \
                    per window.",
                unit: "s",
                kind: PanelKind::Timeseries,
                queries: vec![PanelQuery::metric(
                    STATEMENT_MEAN_EXEC_TIME.name,
                    "{{database}} {{queryid}}",
                )],
                outcome: false,
            },
            Panel {
                key: "calls",
                title: "Calls by statement".to_owned(),
                description: "Calls of each statement of the top in each window.",
                unit: "short",
                kind: PanelKind::Timeseries,
                queries: vec![PanelQuery::metric(
                    STATEMENT_CALLS.name,
                    "{{database}} {{queryid}}",
                )],
                outcome: false,
            },
            Panel {
                key: "text",
                title: "Statement texts".to_owned(),
                description: "The normalised text of each statement of the top ($1 for each \
                    literal), by queryid.",
                unit: "none",
                kind: PanelKind::Table,
                queries: vec![PanelQuery::metric(STATEMENT_INFO.name, "")],
                outcome: false,
            },
        ],
        alerts: &[],
    };
    vec![Series::new(
        STATEMENT_EXEC_TIME.name,
        Vec::new(),
        Shape::Builtin(set),
    )]
}

/// What the `tables` check publishes, with its panels.
pub(super) fn tables() -> Vec<Series> {
    let set = Builtin {
        panels: vec![
            Panel {
                key: "seq",
                title: "Rows read whole by table".to_owned(),
                description: "Rows sequential scans read from each table in each window, the \
                    tables that read the most that way: a big table read whole by every call \
                    is a query without an index.",
                unit: "short",
                kind: PanelKind::Timeseries,
                queries: vec![PanelQuery::metric(
                    TABLE_SEQ_ROWS_READ.name,
                    "{{schema}}.{{table}}",
                )],
                outcome: false,
            },
            Panel {
                key: "live",
                title: "Live rows of the tables read whole".to_owned(),
                description: "Estimated live rows of the tables above: how much each \
                    sequential scan reads.",
                unit: "short",
                kind: PanelKind::Table,
                queries: vec![PanelQuery::metric(TABLE_LIVE_ROWS.name, "")],
                outcome: false,
            },
        ],
        alerts: &[],
    };
    vec![Series::new(
        TABLE_SEQ_ROWS_READ.name,
        Vec::new(),
        Shape::Builtin(set),
    )]
}
