//! Query latency: which queries are slow and which read a whole table or collection, from the
//! databases' own statistics, against the same hour of past weeks.

use serde_json::json;

use super::super::board::Board;
use super::super::fields::{by_query, column, merge, organize, sort_by, unit, width};
use super::super::panel::line;
use super::{by_source, eq, max_by, over_with, rate_by, raw, sel, sel_with};

/// A window gauge (what moved between two reads) as a rate a second, summed by `keys`.
fn per_second(metric: &str, window: &str, keys: &[&str]) -> String {
    format!(
        "sum by ({}) ({})\n/ on (platform, instance, source) group_left ()\n\
         max by (platform, instance, source) ({})",
        by_source(keys),
        sel(metric),
        sel(window)
    )
}

/// The `q` quantile of a histogram, classic buckets or native. Histograms fold their replicas
/// with `avg`: native histograms can be averaged, not maxed.
fn quantile(q: &str, metric: &str) -> String {
    format!(
        "histogram_quantile({q}, avg without (pod) (rate({}[$__rate_interval])))\n\
         or histogram_quantile({q}, avg without (pod) (rate({}[$__rate_interval])))",
        raw(&format!("{metric}_bucket")),
        raw(metric)
    )
}

/// The Postgres statements.
fn postgres(b: &mut Board) {
    const STATEMENTS: &str = "pulse_postgres_statements_window_seconds";
    let statement = ["database", "queryid"];
    b.row("Postgres: statements");
    b.table(
        "Top statements by time",
        "The statements that took the most execution time in the last window of pg_stat_statements (queryid other: the rest of the database), with their normalised text. Time is sessions busy (execution seconds a second), so the rows of a database add up to its load.",
        "short",
        vec![
            per_second("pulse_postgres_statement_window_exec_seconds", STATEMENTS, &statement),
            per_second("pulse_postgres_statement_window_calls", STATEMENTS, &statement),
            max_by(&statement, "pulse_postgres_statement_window_mean_exec_seconds"),
            per_second("pulse_postgres_statement_window_rows", STATEMENTS, &statement),
            max_by(&["database", "queryid", "text"], "pulse_postgres_statement_info"),
        ],
    )
    .size(24, 9)
    .alerts(&["PulsePostgresStatementShareJump"])
    .transformations(vec![
        merge(),
        organize(
            &[
                ("Value #A", "busy sessions"),
                ("Value #B", "calls/s"),
                ("Value #C", "mean latency"),
                ("Value #D", "rows/s"),
            ],
            &["Value #E"],
            &[
                "platform", "instance", "source", "database", "queryid", "busy sessions",
                "calls/s", "mean latency", "rows/s", "text",
            ],
        ),
        sort_by("busy sessions", true),
    ])
    .overrides(vec![
        column("mean latency", &[unit("s")]),
        column("busy sessions", &[unit("short")]),
        column("text", &[width(600)]),
    ]);
    let signal = |name: &str| [eq("signal", name)];
    b.ts(
        "Mean statement latency against its usual",
        "Each database's mean statement execution time over 15 minutes (where it runs a statement a second or more), and the median of the same hour over the last weeks: PulsePostgresQueryLatencyHigh warns at twice the usual for 15 minutes.",
        "s",
        vec![
            line(
                sel_with("latency:signal:15m", &signal("postgres_mean_exec_seconds")),
                "{{platform}} {{source}}/{{database}}",
            ),
            line(
                sel_with("latency:signal:usual", &signal("postgres_mean_exec_seconds")),
                "{{platform}} {{source}}/{{database}} usual",
            ),
        ],
    )
    .alerts(&["PulsePostgresQueryLatencyHigh"]);
    b.ts(
        "Share of database time by statement",
        "Each statement's share of its database's execution time over 15 minutes: PulsePostgresStatementShareJump warns when one takes over a quarter of a busy database's time, three times its share of the hour before.",
        "percentunit",
        vec![line(
            sel("latency:postgres_statement_share:15m"),
            "{{platform}} {{source}}/{{database}} {{queryid}}",
        )],
    )
    .alerts(&["PulsePostgresStatementShareJump"]);
}

/// The Postgres tables read whole.
fn postgres_tables(b: &mut Board) {
    const TABLES: &str = "pulse_postgres_tables_window_seconds";
    let table = ["database", "schema", "table"];
    b.row("Postgres: tables read whole");
    b.ts(
        "Rows read whole by table",
        "Rows sequential scans read a second from the tables that read the most that way (pg_stat_user_tables): a big table read whole by every call is a query without an index (PulsePostgresTableScansHigh).",
        "short",
        vec![line(
            per_second("pulse_postgres_table_window_seq_rows_read", TABLES, &table),
            "{{platform}} {{source}} {{schema}}.{{table}}",
        )],
    )
    .alerts(&["PulsePostgresTableScansHigh"]);
    b.table(
        "Tables read whole",
        "The same tables: sequential and index scans a second, live and dead rows, and when each was last vacuumed and analysed.",
        "short",
        vec![
            per_second("pulse_postgres_table_window_seq_rows_read", TABLES, &table),
            per_second("pulse_postgres_table_window_seq_scans", TABLES, &table),
            per_second("pulse_postgres_table_window_index_scans", TABLES, &table),
            max_by(&table, "pulse_postgres_table_live_rows"),
            max_by(&table, "pulse_postgres_table_dead_rows"),
            format!(
                "{} * 1000",
                max_by(&table, "pulse_postgres_table_last_vacuum_timestamp_seconds")
            ),
            format!(
                "{} * 1000",
                max_by(&table, "pulse_postgres_table_last_analyze_timestamp_seconds")
            ),
        ],
    )
    .w(12)
    .alerts(&["PulsePostgresTableScansHigh"])
    .transformations(vec![
        merge(),
        organize(
            &[
                ("Value #A", "rows read whole/s"),
                ("Value #B", "seq scans/s"),
                ("Value #C", "index scans/s"),
                ("Value #D", "live rows"),
                ("Value #E", "dead rows"),
                ("Value #F", "vacuumed"),
                ("Value #G", "analysed"),
            ],
            &[],
            &[],
        ),
        sort_by("rows read whole/s", true),
    ])
    .overrides(vec![
        column("vacuumed", &[unit("dateTimeAsIso")]),
        column("analysed", &[unit("dateTimeAsIso")]),
    ]);
}

/// The MongoDB row.
fn mongodb(b: &mut Board) {
    b.row("MongoDB");
    b.ts(
        "Mean latency by kind of operation",
        "Each server's mean latency of reads, writes, commands and transactions (serverStatus opLatencies).",
        "s",
        vec![line(
            format!(
                "{}\n/ ({} > 0)",
                rate_by(&["op"], "pulse_mongodb_op_latency_seconds_total"),
                rate_by(&["op"], "pulse_mongodb_op_latency_operations_total")
            ),
            "{{platform}} {{source}} {{op}}",
        )],
    );
    let signal = [eq("signal", "mongodb_collection_mean_seconds")];
    b.ts(
        "Collection latency against its usual",
        "The mean latency of each named collection's operations over 15 minutes ($collStats latencyStats), and the median of the same hour over the last weeks: PulseMongodbCollectionLatencyHigh warns at twice the usual for 15 minutes.",
        "s",
        vec![
            line(
                sel_with("latency:signal:15m", &signal),
                "{{platform}} {{collection}} {{op}}",
            ),
            line(
                sel_with("latency:signal:usual", &signal),
                "{{platform}} {{collection}} {{op}} usual",
            ),
        ],
    )
    .alerts(&["PulseMongodbCollectionLatencyHigh"]);
    b.ts(
        "Collection latency p99",
        "The 99th percentile latency of each named collection's operations by kind, from the server's histograms (classic buckets, or native histograms where Prometheus keeps them).",
        "s",
        vec![line(
            quantile("0.99", "pulse_mongodb_collection_latency_seconds"),
            "{{platform}} {{collection}} {{op}}",
        )],
    );
    b.ts(
        "Collection scans",
        "Queries that read a whole collection a second (serverStatus metrics.queryExecutor.collectionScans, tailable cursors aside), and the documents examined a second: the server-wide face of a findAllUsers.",
        "short",
        vec![
            line(
                format!(
                    "sum by ({}) ({})",
                    by_source(&[]),
                    over_with(
                        "rate",
                        "pulse_mongodb_collection_scans_total",
                        &[eq("tailable", "false")]
                    )
                ),
                "{{platform}} {{source}} collection scans/s",
            ),
            line(
                rate_by(&[], "pulse_mongodb_query_scanned_documents_total"),
                "{{platform}} {{source}} documents examined/s",
            ),
        ],
    );
    mongodb_shapes(b);
}

/// The slowest query shapes (profiler) and the oldest running operation by namespace.
fn mongodb_shapes(b: &mut Board) {
    let shape = ["namespace", "op", "shape", "plan"];
    b.table(
        "Slowest query shapes (profiler)",
        "Where the profiler is on: the query shapes that took the most time in the last window, by namespace, operation and plan (COLLSCAN reads the whole collection). No literal value of a query is read.",
        "s",
        vec![
            max_by(&shape, "pulse_mongodb_query_shape_window_seconds"),
            max_by(&shape, "pulse_mongodb_query_shape_window_calls"),
            max_by(&shape, "pulse_mongodb_query_shape_window_docs_examined"),
        ],
    )
    .transformations(vec![
        merge(),
        organize(
            &[
                ("Value #A", "time"),
                ("Value #B", "calls"),
                ("Value #C", "documents examined"),
            ],
            &[],
            &[],
        ),
        sort_by("time", true),
    ])
    .overrides(vec![
        column("time", &[unit("s")]),
        column("calls", &[unit("short")]),
        column("documents examined", &[unit("short")]),
    ]);
    b.table(
        "Oldest running operation by namespace",
        "How long the longest-running active operation of each namespace has run ($currentOp).",
        "s",
        vec![format!(
            "time() - min by ({}) ({})",
            by_source(&["namespace"]),
            sel("pulse_mongodb_oldest_operation_start_timestamp_seconds")
        )],
    )
    .transformations(vec![
        organize(&[("Value", "running for")], &[], &[]),
        sort_by("running for", true),
    ]);
}

/// The Redis row.
fn redis(b: &mut Board) {
    const HISTOGRAM: &str = "pulse_redis_command_duration_seconds";
    b.row("Redis");
    b.ts(
        "Command latency p99",
        "The 99th percentile latency of each of the most called commands, from the server's own histograms (LATENCY HISTOGRAM, Redis 7+): PulseRedisCommandSlow warns when it stays above the source's p99_limit.",
        "s",
        vec![
            line(quantile("0.99", HISTOGRAM), "{{platform}} {{source}} {{command}}"),
            line(
                sel("pulse_redis_command_p99_limit_seconds"),
                "{{platform}} {{source}} limit",
            ),
        ],
    )
    .alerts(&["PulseRedisCommandSlow"]);
    b.ts(
        "Command latency p50",
        "The median latency of each of the most called commands.",
        "s",
        vec![line(
            quantile("0.5", HISTOGRAM),
            "{{platform}} {{source}} {{command}}",
        )],
    );
    let command = ["command"];
    b.table(
        "Commands",
        "The most called commands: calls, mean latency, failed and rejected calls a second (INFO commandstats).",
        "short",
        vec![
            rate_by(&command, "pulse_redis_command_calls_total"),
            format!(
                "{}\n/ ({} > 0)",
                rate_by(&command, "pulse_redis_command_seconds_total"),
                rate_by(&command, "pulse_redis_command_calls_total")
            ),
            rate_by(&command, "pulse_redis_command_failed_calls_total"),
            rate_by(&command, "pulse_redis_command_rejected_calls_total"),
        ],
    )
    .transformations(vec![
        merge(),
        organize(
            &[
                ("Value #A", "calls/s"),
                ("Value #B", "mean latency"),
                ("Value #C", "failed/s"),
                ("Value #D", "rejected/s"),
            ],
            &[],
            &[],
        ),
        sort_by("calls/s", true),
    ])
    .overrides(vec![column("mean latency", &[unit("s")])]);
    b.ts(
        "Slow log",
        "Entries added to the slow log a second, and the slowest entry of each command in the last window (command names only, never their arguments).",
        "s",
        vec![
            line(
                rate_by(&[], "pulse_redis_slowlog_entries_total"),
                "{{platform}} {{source}} entries/s",
            ),
            line(
                sel("pulse_redis_slowlog_slowest_seconds"),
                "{{platform}} {{source}} slowest {{command}}",
            ),
        ],
    )
    .overrides(vec![by_query("A", &[("unit", json!("short"))])]);
}

/// The query latency dashboard.
pub(super) fn board() -> Board {
    let mut b = Board::new(
        "pulse-query-latency",
        "Query latency",
        "Which queries are slow and which read a whole table or collection, from the databases' own statistics (pg_stat_statements, pg_stat_user_tables, MongoDB latencyStats and the profiler, Redis LATENCY HISTOGRAM and the slow log), against the same hour of past weeks.",
    );
    postgres(&mut b);
    postgres_tables(&mut b);
    mongodb(&mut b);
    redis(&mut b);
    b
}
