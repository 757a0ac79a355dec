//! Database load: why a database is slow right now. What its sessions are busy with or wait
//! for (average active sessions by wait event, against the CPUs declared), which statements
//! carry the load, who blocks whom, the sessions held idle in a transaction, the pool against
//! its limit and the plans that changed; the same load view for MongoDB operations and Redis
//! commands.

use serde_json::{json, Value};

use super::super::board::Board;
use super::super::fields::{
    by_query, cell, column, mapped, merge, organize, sort_by, steps, unit, value_map, width,
};
use super::super::panel::{guarded_on, line};
use super::{by_source, eq, max_by, or_zero_where, rate_by, raw, sel, sel_with};
use crate::generate::style::{self, STYLE};

/// The labels a Postgres card keeps: one value per source.
const ON_SOURCE: &str = "instance, source";

/// `increase` of `metric` over the dashboard's range, summed by `keys`: counts of what
/// happens an hour apart (plans explained, plans changed), which a rate would show as noise.
fn over_range(keys: &[&str], metric: &str) -> String {
    format!(
        "sum by ({}) ({})",
        by_source(keys),
        style::fold(&format!("increase({}[$__range])", raw(metric)))
    )
}

/// Per source: 1 while the `load` check of a Postgres source succeeds and the source is up,
/// else 0 (the check of a MongoDB source is named `load` too: the source's kind tells them
/// apart).
fn postgres_load_ok() -> String {
    format!(
        "min by ({}) ({} * on (instance, source) group_left () {})",
        by_source(&[]),
        sel_with("pulse_check_success", &[eq("check", "load")]),
        sel_with("pulse_source_up", &[eq("kind", "postgres")])
    )
}

/// A query drawn as a dashed line, neither stacked nor filled: the limit a stacked chart is
/// read against.
fn limit_line(ref_id: &str) -> Value {
    by_query(
        ref_id,
        &[
            ("custom.stacking", json!({"mode": "none", "group": "A"})),
            ("custom.fillOpacity", json!(0)),
            (
                "custom.lineStyle",
                json!({"fill": "dash", "dash": [10, 10]}),
            ),
        ],
    )
}

/// The Postgres cards: what blocks, what is held, and how much of the load the samples saw.
fn postgres_now(b: &mut Board) {
    const BLOCKED: &str = "pulse_postgres_blocker_waiting_sessions";
    const IDLE: &str = "pulse_postgres_idle_in_transaction_oldest_seconds";
    let ok = postgres_load_ok();
    let card = |expr: String| guarded_on(ON_SOURCE, &expr, "{{platform}} {{source}}", &ok);
    // Blockers and idle transactions are series absent while there are none: 0 where the
    // load check runs, which always publishes its blocker limit.
    let or_zero = |expr: String| or_zero_where(expr, "pulse_postgres_blocker_sessions_limit");
    b.row("Postgres: now");
    b.number(
        "Sessions behind root blockers",
        "Sessions waiting on a lock behind a session that itself waits for none, by source, from pg_blocking_pids() in the last sample: orange from one. PulsePostgresBlockerQueue fires at load.blocked_sessions (5 by default) behind one blocker for a minute. DEGRADED while the load check or its source fails.",
        "short",
        vec![card(or_zero(format!(
            "sum by ({}) ({})",
            by_source(&[]),
            sel(BLOCKED)
        )))],
    )
    .thresholds(steps(&[("green", Value::Null), ("orange", json!(1))]))
    .color_mode("background")
    .alerts(&["PulsePostgresBlockerQueue"]);
    b.number(
        "Oldest idle in transaction",
        "How long the oldest session idle in an open transaction has been idle, by source: it holds its locks and its snapshot while doing nothing. Orange past a minute, red past ten. 0 while none is.",
        "s",
        vec![card(or_zero(max_by(&[], IDLE)))],
    )
    .thresholds(steps(&[
        ("green", Value::Null),
        ("orange", json!(60)),
        ("red", json!(600)),
    ]))
    .color_mode("background");
    b.number(
        "Time the load samples cover",
        "The share of the time the load samples speak for (pulse_postgres_load_sampled_seconds_total): under 100 % samples were missed, and every load number below reads low by that share. Red under half.",
        "percentunit",
        vec![card(rate_by(&[], "pulse_postgres_load_sampled_seconds_total"))],
    )
    .thresholds(steps(&[
        ("red", Value::Null),
        ("orange", json!(0.5)),
        ("green", json!(0.9)),
    ]))
    .decimals(0)
    .color_mode("background");
    b.number(
        "Sessions the load counts",
        "ALL where the exporter's role may read every session (superuser, or pg_monitor's pg_read_all_stats); OWN ONLY where it sees its own sessions alone, so the load and the blockers count those only (grant pg_monitor).",
        "none",
        vec![card(max_by(&[], "pulse_postgres_load_all_sessions_visible"))],
    )
    .mappings(vec![
        STYLE.degraded.clone(),
        value_map(&[("1", "ALL", "green"), ("0", "OWN ONLY", "orange")]),
    ])
    .color_mode("background");
}

/// The Postgres load by wait event and by statement.
fn postgres_load(b: &mut Board) {
    const ACTIVE: &str = "pulse_postgres_load_active_seconds_total";
    const BY_STATEMENT: &str = "pulse_postgres_load_statement_active_seconds_total";
    b.row("Postgres: database load");
    b.ts(
        "Database load by wait event",
        "Average active sessions (sampled every load.interval from pg_stat_activity), stacked by wait event: CPU is a session running with no wait; Lock waits for another session, IO for the disk, LWLock for the server's internals, Client for the application. The dashed line is the CPUs declared (load.cpus): load above it means sessions queue for a CPU, and PulsePostgresLoadHigh warns after 15 minutes.",
        "short",
        vec![
            line(
                rate_by(&["wait_event_type", "wait_event"], ACTIVE),
                "{{platform}} {{source}} {{wait_event_type}}/{{wait_event}}",
            ),
            line(
                max_by(&[], "pulse_postgres_load_cpus"),
                "{{platform}} {{source}} CPUs",
            ),
        ],
    )
    .size(24, 9)
    .stacked()
    .overrides(vec![limit_line("B")])
    .alerts(&["PulsePostgresLoadHigh"]);
    let statement = ["database", "queryid"];
    let load = rate_by(&statement, BY_STATEMENT);
    b.table(
        "Load by statement",
        "Average active client sessions by the statement they run (query_id; unknown without compute_query_id), over the last minutes of the range, with its normalised text where the statement is in the statements top (pulse_postgres_statement_info): the statements the database is busy with now.",
        "short",
        vec![
            load.clone(),
            format!(
                "{}\nand on (platform, instance, source, database, queryid) ({load} > 0)",
                max_by(&["database", "queryid", "text"], "pulse_postgres_statement_info")
            ),
        ],
    )
    .size(24, 8)
    .transformations(vec![
        merge(),
        organize(
            &[("Value #A", "active sessions")],
            &["Value #B"],
            &[
                "platform",
                "instance",
                "source",
                "database",
                "queryid",
                "active sessions",
                "text",
            ],
        ),
        sort_by("active sessions", true),
    ])
    .overrides(vec![
        column("active sessions", &[unit("short")]),
        column("text", &[width(700)]),
    ]);
}

/// Sessions waiting behind each root blocker.
const WAITING: &str = "pulse_postgres_blocker_waiting_sessions";

/// Who blocks whom: the root blockers, the queue behind them, and the sessions idle in a
/// transaction.
fn postgres_blockers(b: &mut Board) {
    let blocker = [
        "database",
        "application",
        "user",
        "state",
        "queryid",
        "mode",
        "relation",
    ];
    let columns: Vec<&str> = ["platform", "instance", "source"]
        .iter()
        .chain(&blocker)
        .chain(&["Value #A", "Value #B", "Value #C"])
        .copied()
        .collect();
    b.row("Postgres: who blocks whom");
    b.table(
        "Root blockers",
        "Sessions others wait for on a lock while they wait for none (pg_blocking_pids() of the waiting sessions, followed to the root), by the blocker's database, application, user, state and statement: the sessions waiting behind each (directly or in a chain), those waiting on it directly, the oldest waiter's time, and the lock mode and relation the first waiter wants. An idle-in-transaction blocker holds its locks while doing nothing: the runbook has the SQL to find and end it.",
        "short",
        vec![
            max_by(&blocker, WAITING),
            max_by(&blocker, "pulse_postgres_blocker_direct_waiting_sessions"),
            max_by(&blocker, "pulse_postgres_blocker_longest_wait_seconds"),
        ],
    )
    .size(24, 7)
    .alerts(&["PulsePostgresBlockerQueue"])
    .transformations(vec![
        merge(),
        organize(
            &[
                ("Value #A", "sessions waiting"),
                ("Value #B", "directly"),
                ("Value #C", "longest wait"),
            ],
            &[],
            &columns,
        ),
        sort_by("sessions waiting", true),
    ])
    .overrides(vec![
        column("longest wait", &[unit("s")]),
        column(
            "state",
            &[
                mapped(vec![value_map(&[(
                    "idle in transaction",
                    "idle in transaction",
                    "orange",
                )])]),
                cell("color-text"),
            ],
        ),
    ]);
    postgres_waiting(b);
}

/// Sessions waiting behind root blockers, and the oldest idle-in-transaction sessions.
fn postgres_waiting(b: &mut Board) {
    b.ts(
        "Sessions waiting behind root blockers",
        "The sessions waiting behind each root blocker, by its database, application and state; the dashed line is load.blocked_sessions, where PulsePostgresBlockerQueue fires after a minute (a page on a primary).",
        "short",
        vec![
            line(
                format!(
                    "sum by ({}) ({})",
                    by_source(&["database", "application", "state"]),
                    sel(WAITING)
                ),
                "{{platform}} {{source}}/{{database}} behind {{application}} ({{state}})",
            ),
            line(
                max_by(&[], "pulse_postgres_blocker_sessions_limit"),
                "{{platform}} {{source}} alert line",
            ),
        ],
    )
    .overrides(vec![limit_line("B")])
    .alerts(&["PulsePostgresBlockerQueue"]);
    b.ts(
        "Idle in transaction: the oldest",
        "By database and application, how long the oldest session idle in an open transaction has been idle: it holds its locks and keeps vacuum from removing what its snapshot can still see. A line that climbs is an application that left a transaction open.",
        "s",
        vec![line(
            max_by(
                &["database", "application"],
                "pulse_postgres_idle_in_transaction_oldest_seconds",
            ),
            "{{platform}} {{source}}/{{database}} {{application}}",
        )],
    );
}

/// The connection pool: sessions by state against the limit, and whom held sessions wait on.
fn postgres_connections(b: &mut Board) {
    b.row("Postgres: connections");
    b.ts(
        "Sessions by state against the limit",
        "Client connections by state, stacked, against max_connections minus the reserved slots (dashed): new connections are refused at the line, and PulsePostgresConnectionsNearMax pages there.",
        "short",
        vec![
            line(
                format!(
                    "sum by ({}) ({})",
                    by_source(&["state"]),
                    sel("pulse_postgres_connections")
                ),
                "{{platform}} {{source}} {{state}}",
            ),
            line(
                format!(
                    "{}\n- on (platform, instance, source) {}",
                    max_by(&[], "pulse_postgres_max_connections"),
                    max_by(&[], "pulse_postgres_reserved_connections")
                ),
                "{{platform}} {{source}} usable",
            ),
        ],
    )
    .stacked()
    .overrides(vec![limit_line("B")])
    .alerts(&["PulsePostgresConnectionsNearMax"]);
    b.ts(
        "Sessions held, waiting on the client or the server",
        "Average client sessions inside a statement or an open transaction, stacked by whom they wait on: the client (idle in transaction, or ClientRead) or the server (running, or waiting on anything else). A pool held by sessions that wait on the client is held by the application between its statements, not by the database.",
        "short",
        vec![line(
            rate_by(&["waiting_on"], "pulse_postgres_load_held_seconds_total"),
            "{{platform}} {{source}} waiting on the {{waiting_on}}",
        )],
    )
    .stacked();
}

/// The plans of the top statements (Postgres 16+).
fn postgres_plans(b: &mut Board) {
    let statement = ["database", "queryid"];
    let seq_scan = max_by(&statement, "pulse_postgres_statement_plan_seq_scan");
    b.row("Postgres: plans");
    b.table(
        "Plans of the top statements",
        "Each statement of the top that was explained (EXPLAIN GENERIC_PLAN, Postgres 16+, never run): whether its plan reads a table whole, its plan's hash, the times it changed over the range, and its text. A plan that changed to a sequential scan has lost its index; PulsePostgresPlanChanged warns when a change is followed by twice the usual mean time.",
        "short",
        vec![
            seq_scan.clone(),
            max_by(
                &["database", "queryid", "plan"],
                "pulse_postgres_statement_plan_info",
            ),
            format!(
                "{}\nand on (platform, instance, source, database, queryid) {seq_scan}",
                over_range(&statement, "pulse_postgres_statement_plan_changes_total")
            ),
            format!(
                "{}\nand on (platform, instance, source, database, queryid) {seq_scan}",
                max_by(&["database", "queryid", "text"], "pulse_postgres_statement_info")
            ),
        ],
    )
    .size(16, 8)
    .alerts(&["PulsePostgresPlanChanged"])
    .transformations(vec![
        merge(),
        organize(
            &[
                ("Value #A", "reads whole"),
                ("Value #C", "changes"),
            ],
            &["Value #B", "Value #D"],
            &[
                "platform",
                "instance",
                "source",
                "database",
                "queryid",
                "Value #A",
                "plan",
                "Value #C",
                "text",
            ],
        ),
        sort_by("changes", true),
    ])
    .overrides(vec![
        column(
            "reads whole",
            &[
                mapped(vec![value_map(&[
                    ("1", "seq scan", "orange"),
                    ("0", "no", ""),
                ])]),
                cell("color-text"),
            ],
        ),
        column("text", &[width(500)]),
    ]);
    b.bars(
        "Statements explained and skipped",
        "Statements of the top explained over the range, and those not explained by reason (server_version before Postgres 16, writes never sent, refused, timeout, …): the plan columns cover only the explained ones.",
        "short",
        vec![
            line(
                over_range(&[], "pulse_postgres_statement_plans_explained_total"),
                "{{platform}} {{source}} explained",
            ),
            line(
                over_range(&["reason"], "pulse_postgres_statement_plans_skipped_total"),
                "{{platform}} {{source}} skipped: {{reason}}",
            ),
        ],
    );
}

/// MongoDB's active operations (`load: true` on the source).
fn mongodb(b: &mut Board) {
    const ACTIVE: &str = "pulse_mongodb_load_active_seconds_total";
    b.row("MongoDB: active operations");
    b.ts(
        "MongoDB load by wait",
        "Average active client operations ($currentOp sampled every load.interval, with load: true on the source), stacked by what they wait for: lock, flow_control (the primary throttling writes for lagging secondaries), latch, or CPU (none).",
        "short",
        vec![line(
            rate_by(&["wait"], ACTIVE),
            "{{platform}} {{source}} {{wait}}",
        )],
    )
    .stacked();
    b.ts(
        "MongoDB load by namespace",
        "The same operations by namespace (database.collection): the collections the server is busy with.",
        "short",
        vec![line(
            rate_by(&["namespace"], ACTIVE),
            "{{platform}} {{source}} {{namespace}}",
        )],
    )
    .stacked();
    b.table(
        "Operations waiting for a lock",
        "By namespace, the operations of the last sample waiting for a lock and how long the longest of them has run. $currentOp does not name the holder: the namespace's other operations do (an index build, a collMod, a long multi-document transaction).",
        "short",
        vec![
            max_by(&["namespace"], "pulse_mongodb_load_lock_waiting_operations"),
            max_by(
                &["namespace"],
                "pulse_mongodb_load_lock_waiting_longest_seconds",
            ),
        ],
    )
    .size(24, 6)
    .transformations(vec![
        merge(),
        organize(
            &[("Value #A", "waiting"), ("Value #B", "longest running")],
            &[],
            &[],
        ),
        sort_by("waiting", true),
    ])
    .overrides(vec![column("longest running", &[unit("s")])]);
}

/// Redis: the share of its one command thread each command takes.
fn redis(b: &mut Board) {
    b.row("Redis: load by command");
    b.ts(
        "Redis load by command",
        "The share of the server's command thread each command takes (INFO commandstats usec a second), stacked: near 100 % every other client waits its turn.",
        "percentunit",
        vec![line(
            rate_by(&["command"], "pulse_redis_command_seconds_total"),
            "{{platform}} {{source}} {{command}}",
        )],
    )
    .size(24, 8)
    .stacked();
}

/// The database load dashboard.
pub(super) fn board() -> Board {
    let mut b = Board::new(
        "pulse-database-load",
        "Database load",
        "Why a database is slow right now: what its sessions are busy with or wait for (average active sessions by wait event, sampled every second, against its CPUs), which statements carry the load, who blocks whom, the sessions held idle in a transaction, the pool against its limit and the plans that changed; the same view of MongoDB's operations and Redis's commands.",
    );
    postgres_now(&mut b);
    postgres_load(&mut b);
    postgres_blockers(&mut b);
    postgres_connections(&mut b);
    postgres_plans(&mut b);
    mongodb(&mut b);
    redis(&mut b);
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::bundle::Selection;

    /// A limit drawn on a stacked chart (the CPUs, the blocker alert line, the usable
    /// connections) stays a line of its own: stacked, it would sit on top of the load and
    /// read as more load.
    #[test]
    fn a_limit_beside_a_stacked_chart_is_not_stacked_onto_it() {
        let board = super::super::json(&board(), &[], &Selection::default());
        let limits = ["_cpus", "_sessions_limit", "max_connections"];
        let mut checked = 0;
        for p in board["panels"].as_array().unwrap() {
            for t in p["targets"].as_array().into_iter().flatten() {
                if !limits
                    .iter()
                    .any(|l| t["expr"].as_str().unwrap().contains(l))
                {
                    continue;
                }
                if p["type"] == "stat" {
                    continue;
                }
                let own = p["fieldConfig"]["overrides"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|o| o["matcher"]["options"] == t["refId"])
                    .unwrap_or_else(|| panic!("{}: {} has no style", p["title"], t["refId"]));
                assert!(
                    own["properties"].to_string().contains(r#"{"mode":"none""#),
                    "{}: {own}",
                    p["title"]
                );
                checked += 1;
            }
        }
        assert_eq!(checked, 3);
    }
}
