//! The panels of the Postgres built-in checks in a generated dashboard: the statements that
//! take the time and their plans, the tables read whole, and the database load with its
//! blockers.

use super::metrics::{
    BLOCKER_WAITING, IDLE_IN_TRANSACTION_OLDEST, LOAD_ACTIVE_SECONDS, LOAD_HELD_SECONDS,
    LOAD_STATEMENT_SECONDS, PLAN_CHANGES, PLAN_SEQ_SCAN, RUNNING_STATEMENT, STATEMENT_CALLS,
    STATEMENT_EXEC_TIME, STATEMENT_INFO, STATEMENT_MEAN_EXEC_TIME, TABLE_LIVE_ROWS,
    TABLE_SEQ_ROWS_READ,
};
use crate::config_core::display::PanelKind;
use crate::config_core::shape::{Builtin, Panel, PanelQuery, Series, Shape};

/// What the `statements` check publishes, with its panels.
pub(super) fn statements() -> Vec<Series> {
    let mut panels = statement_panels();
    panels.extend(plan_panels());
    panels.push(running_panel());
    let set = Builtin {
        panels,
        also_publishes: &[],
    };
    vec![Series::new(
        STATEMENT_EXEC_TIME.name,
        Vec::new(),
        Shape::Builtin(set),
    )]
}

/// The panels of the statements of the top, read from `pg_stat_statements`: their time,
/// latency, calls and texts, side by side by queryid.
fn statement_panels() -> Vec<Panel> {
    vec![
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
    ]
}

/// The panels of the plans of the statements of the top (Postgres 16+): where a statement
/// got slower, whether its plan changed.
fn plan_panels() -> Vec<Panel> {
    vec![
        Panel {
            key: "plan_changes",
            title: "Plan changes by statement".to_owned(),
            description: "Times each statement of the top was seen to change plan \
                (EXPLAIN GENERIC_PLAN every plans.interval, Postgres 16+): a step up \
                beside a mean latency that rose is a plan that got worse. \
                pulse_postgres_statement_plan_info has each plan's hash.",
            unit: "short",
            kind: PanelKind::Timeseries,
            queries: vec![PanelQuery::metric(
                PLAN_CHANGES.name,
                "{{database}} {{queryid}}",
            )],
            outcome: false,
        },
        Panel {
            key: "plan_seq_scan",
            title: "Plans reading a table whole".to_owned(),
            description: "1 for each statement of the top whose plan reads a table by \
                sequential scan: one that used an index and now reads whole has lost it.",
            unit: "none",
            kind: PanelKind::Table,
            queries: vec![PanelQuery::metric(PLAN_SEQ_SCAN.name, "")],
            outcome: false,
        },
    ]
}

/// The panel read while `pg_stat_statements` cannot be: the statements running longest now,
/// so that "which query" still has an answer.
fn running_panel() -> Panel {
    Panel {
        key: "running",
        title: "Statements running longest (without pg_stat_statements)".to_owned(),
        description: "While pg_stat_statements cannot be read, the active statements \
            that have run longest at each statements run, from pg_stat_activity, \
            literals masked: the answer to which query until the extension is \
            loaded (the statements row of the landing page says how).",
        unit: "s",
        kind: PanelKind::Table,
        queries: vec![PanelQuery::metric(RUNNING_STATEMENT.name, "")],
        outcome: false,
    }
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
        also_publishes: &[],
    };
    vec![Series::new(
        TABLE_SEQ_ROWS_READ.name,
        Vec::new(),
        Shape::Builtin(set),
    )]
}

/// What the `load` check publishes, with its panels: the load by wait event and by
/// statement, the root blockers and the idle-in-transaction sessions.
pub(super) fn load() -> Vec<Series> {
    let rate = PanelQuery::rate;
    let set = Builtin {
        panels: vec![
            Panel {
                key: "load",
                title: "Database load by wait event".to_owned(),
                description: "Average active sessions, by database, backend type and wait \
                    event (CPU: running, no wait), sampled every second from \
                    pg_stat_activity: above the server's CPUs, sessions queue.",
                unit: "short",
                kind: PanelKind::Timeseries,
                queries: vec![rate(
                    LOAD_ACTIVE_SECONDS.name,
                    "{{database}} {{backend}} {{wait_event_type}}/{{wait_event}}",
                )],
                outcome: false,
            },
            Panel {
                key: "statements",
                title: "Database load by statement".to_owned(),
                description: "Average active client sessions by the statement they run \
                    (queryid; pulse_postgres_statement_info has its text).",
                unit: "short",
                kind: PanelKind::Timeseries,
                queries: vec![rate(
                    LOAD_STATEMENT_SECONDS.name,
                    "{{database}} {{queryid}}",
                )],
                outcome: false,
            },
            Panel {
                key: "held",
                title: "Sessions held, waiting on the client or the server".to_owned(),
                description: "Average client sessions inside a statement or an open \
                    transaction, by whom they wait on: the client (idle in transaction, \
                    ClientRead) or the server. A pool held by sessions that wait on the \
                    client is held by the application between its statements.",
                unit: "short",
                kind: PanelKind::Timeseries,
                queries: vec![rate(
                    LOAD_HELD_SECONDS.name,
                    "{{database}} on the {{waiting_on}}",
                )],
                outcome: false,
            },
            Panel {
                key: "blockers",
                title: "Root blockers".to_owned(),
                description: "Sessions others wait for on a lock, themselves waiting for \
                    none: the sessions behind each, by the blocker's database, user, \
                    application, state and statement, and the lock waited for.",
                unit: "short",
                kind: PanelKind::Table,
                queries: vec![PanelQuery::metric(BLOCKER_WAITING.name, "")],
                outcome: false,
            },
            Panel {
                key: "idle",
                title: "Oldest idle in transaction".to_owned(),
                description: "How long the oldest session idle in an open transaction has \
                    been idle, by database and application: it holds its locks and keeps \
                    vacuum from removing what it can still see.",
                unit: "s",
                kind: PanelKind::Timeseries,
                queries: vec![PanelQuery::metric(
                    IDLE_IN_TRANSACTION_OLDEST.name,
                    "{{database}} {{application}}",
                )],
                outcome: false,
            },
        ],
        also_publishes: &[],
    };
    vec![Series::new(
        LOAD_ACTIVE_SECONDS.name,
        Vec::new(),
        Shape::Builtin(set),
    )]
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_panel_has_its_own_key_and_a_one_line_description() {
        for set in [super::statements(), super::tables(), super::load()] {
            crate::config_core::shape::assert_panels_well_formed(&set);
        }
    }
}
