//! The metrics of a Postgres source: the health probe's (connections, sizes, the role and the
//! server's start, replication from either side, slots, wraparound, transactions, locks,
//! checkpoints), then the built-in `statements` and `tables` checks' (which statements take
//! the time, which tables are read whole).

use crate::series::metric::Metric;

pub(super) const MAX_CONNECTIONS: Metric = Metric::gauge(
    "pulse_postgres_max_connections",
    "The server's max_connections setting.",
    &["source"],
)
.doc("The server's `max_connections`.");
pub(super) const RESERVED_CONNECTIONS: Metric = Metric::gauge(
    "pulse_postgres_reserved_connections",
    "Connection slots of max_connections kept for superusers and pg_use_reserved_connections (superuser_reserved_connections + reserved_connections).",
    &["source"],
)
.doc("Slots of `max_connections` ordinary clients may not use (`superuser_reserved_connections` plus, from Postgres 16, `reserved_connections`): new client connections are refused once `pulse_postgres_connections` reaches `max_connections` minus these.");
pub(super) const CONNECTIONS: Metric = Metric::gauge(
    "pulse_postgres_connections",
    "Client connections to the server, by state (compare with pulse_postgres_max_connections).",
    &["source", "state"],
)
.doc(
    "Client connections by `pg_stat_activity.state` (`active`, `idle`, `idle in transaction`, …).",
);
pub(super) const DATABASE_SIZE: Metric = Metric::gauge(
    "pulse_postgres_database_size_bytes",
    "Size on disk of the database the source connects to.",
    &["source", "database"],
)
.doc("Size of the database the source connects to.");
pub(super) const OLDEST_QUERY: Metric = Metric::gauge(
    "pulse_postgres_oldest_query_start_timestamp_seconds",
    "Start time of the longest-running active query (age = time() - value); absent when none runs.",
    &["source"],
)
.doc("Start of the longest-running active query; absent when none runs.");
pub(super) const OLDEST_TRANSACTION: Metric = Metric::gauge(
    "pulse_postgres_oldest_transaction_start_timestamp_seconds",
    "Start time of the oldest open transaction (age = time() - value); absent when none is open.",
    &["source"],
)
.doc("Start of the oldest open transaction; absent when none is open.");
pub(super) const POOL_CONNECTIONS: Metric = Metric::gauge(
    "pulse_postgres_pool_connections",
    "Connections in pulse-exporter's check pool for this source, by state.",
    &["source", "state"],
)
.doc("pulse-exporter's own check pool: `idle` and `in_use` connections.");
pub(super) const POOL_MAX_CONNECTIONS: Metric = Metric::gauge(
    "pulse_postgres_pool_max_connections",
    "Size limit of pulse-exporter's check pool for this source.",
    &["source"],
)
.doc("Size limit of that pool (`max_connections` in the source config).");
pub(super) const START_TIME: Metric = Metric::gauge(
    "pulse_postgres_start_timestamp_seconds",
    "When the server started (pg_postmaster_start_time()).",
    &["source"],
)
.doc("When the server started (`pg_postmaster_start_time()`): a change is a restart.");
pub(super) const IN_RECOVERY: Metric = Metric::gauge(
    "pulse_postgres_in_recovery",
    "1 on a standby (pg_is_in_recovery()), 0 on a primary.",
    &["source"],
)
.doc("1 on a standby (`pg_is_in_recovery()`), 0 on a primary: a change is a promotion or a demotion.");
pub(super) const LAG_SECONDS: Metric = Metric::gauge(
    "pulse_postgres_replication_lag_seconds",
    "On a standby: how long ago the last replayed transaction committed on the primary; 0 while everything received is replayed.",
    &["source"],
)
.doc("On a standby: age of the last replayed transaction; 0 while all WAL received is replayed (an idle primary sends none).");
pub(super) const LAG_BYTES: Metric = Metric::gauge(
    "pulse_postgres_replication_lag_bytes",
    "On a standby: WAL received but not yet replayed.",
    &["source"],
)
.doc("On a standby: WAL received and not yet replayed.");
pub(super) const WAL_RECEIVER: Metric = Metric::gauge(
    "pulse_postgres_wal_receiver_streaming",
    "On a standby: 1 while its WAL receiver streams from the primary, 0 while it does not.",
    &["source"],
)
.doc("On a standby: 1 while its WAL receiver streams (`pg_stat_wal_receiver`), 0 while it does not: it then replays nothing new, whatever its lag says.");
pub(super) const STREAMING_STANDBYS: Metric = Metric::gauge(
    "pulse_postgres_streaming_standbys",
    "On a primary: standbys streaming from it (pg_stat_replication).",
    &["source"],
)
.doc("On a primary: standbys streaming from it (`pg_stat_replication`), 0 when none.");
pub(super) const STANDBY_LAG_SECONDS: Metric = Metric::gauge(
    "pulse_postgres_standby_replay_lag_seconds",
    "On a primary, per standby: how long its last replayed WAL took to be replayed there (replay_lag); 0 when it has replayed everything.",
    &["source", "standby"],
)
.doc("On a primary, per standby (`application_name`, else its address): `replay_lag`, 0 once it has replayed everything.");
pub(super) const STANDBY_LAG_BYTES: Metric = Metric::gauge(
    "pulse_postgres_standby_replay_lag_bytes",
    "On a primary, per standby: WAL written here and not yet replayed there.",
    &["source", "standby"],
)
.doc("On a primary, per standby: WAL written and not yet replayed there.");
pub(super) const SLOT_ACTIVE: Metric = Metric::gauge(
    "pulse_postgres_replication_slot_active",
    "1 while a client uses the replication slot, 0 while none does.",
    &["source", "slot", "slot_type"],
)
.doc("1 while a client uses the slot, 0 while none does (`physical` or `logical`; at most 100 slots).");
pub(super) const SLOT_RETAINED: Metric = Metric::gauge(
    "pulse_postgres_replication_slot_retained_wal_bytes",
    "WAL the server keeps for the replication slot (from its restart_lsn to the current position).",
    &["source", "slot", "slot_type"],
)
.doc("WAL kept for the slot, from its `restart_lsn` to the current position; absent for a slot that reserved none.");
pub(super) const SLOT_WAL_STATUS: Metric = Metric::gauge(
    "pulse_postgres_replication_slot_wal_status",
    "1 for the slot's wal_status (reserved, extended, unreserved, lost), 0 for the others.",
    &["source", "slot", "slot_type", "status"],
)
.doc("The slot's `wal_status` (Postgres 13+) as a state set: 1 for the present one of `reserved` (within `max_wal_size`), `extended` (past it, kept for the slot), `unreserved` (past `max_slot_wal_keep_size`: removed at the next checkpoint unless the consumer catches up) and `lost` (removed: the slot is invalidated), 0 for the others. Absent on a server that does not report it.");
pub(super) const SLOT_SAFE_WAL: Metric = Metric::gauge(
    "pulse_postgres_replication_slot_safe_wal_bytes",
    "WAL that can still be written before the slot is in danger of losing WAL it needs (safe_wal_size).",
    &["source", "slot", "slot_type"],
)
.doc("`safe_wal_size` (Postgres 13+): WAL that can be written before the slot may lose WAL it needs; absent when `max_slot_wal_keep_size` is unlimited, and for a lost slot.");
pub(super) const SLOT_INVALIDATED: Metric = Metric::gauge(
    "pulse_postgres_replication_slot_invalidated",
    "1 once the server has invalidated the replication slot (its consumer must be rebuilt), with the reason; 0 while it is valid.",
    &["source", "slot", "slot_type", "reason"],
)
.doc("1 once the server has invalidated the slot, with its `reason`: `invalidation_reason` on Postgres 17+ (`wal_removed`, `rows_removed`, `wal_level_insufficient`, `idle_timeout` on 18), `wal_removed` for `wal_status = lost` on 13 to 16, `conflict` for a logical slot in conflict with recovery on 16; 0 with an empty `reason` while the slot is valid. The standby or subscriber behind an invalidated slot must be rebuilt. Absent on servers before 13.");
pub(super) const SLOT_WAL_LIMIT: Metric = Metric::gauge(
    "pulse_postgres_replication_slot_wal_limit_bytes",
    "WAL one replication slot may retain before action is due: the smaller of the source's slot_wal_limit and the server's max_slot_wal_keep_size.",
    &["source"],
)
.doc("WAL one slot may retain before it is urgent: the source's `slot_wal_limit` (default 10 GiB: set it to what the disk of `pg_wal` can spare), or the server's `max_slot_wal_keep_size` where that is smaller (past it Postgres invalidates the slot and its standby or subscriber must be rebuilt).");
pub(super) const WRAPAROUND: Metric = Metric::gauge(
    "pulse_postgres_database_wraparound_ratio",
    "age(datfrozenxid) of each database as a share of the 2^31 transaction-ID wraparound limit.",
    &["source", "database"],
)
.doc("`age(datfrozenxid)` over the 2^31 wraparound limit, per database that accepts connections (nearest first, at most 100).");
pub(super) const TRANSACTIONS: Metric = Metric::counter(
    "pulse_postgres_transactions_total",
    "Transactions of each database, by outcome (commit, rollback) (pg_stat_database).",
    &["source", "database", "outcome"],
)
.doc("Transactions by `outcome` (`commit`, `rollback`) from `pg_stat_database`. pulse-exporter's own checks end in a rollback.");
pub(super) const DEADLOCKS: Metric = Metric::counter(
    "pulse_postgres_deadlocks_total",
    "Deadlocks detected in each database (pg_stat_database).",
    &["source", "database"],
)
.doc("Deadlocks detected, from `pg_stat_database`.");
pub(super) const LOCK_WAITING: Metric = Metric::gauge(
    "pulse_postgres_lock_waiting_sessions",
    "Sessions waiting for a lock another session holds.",
    &["source"],
)
.doc("Sessions waiting for a lock another holds (`pg_locks`).");
pub(super) const OLDEST_LOCK_WAIT: Metric = Metric::gauge(
    "pulse_postgres_oldest_lock_wait_start_timestamp_seconds",
    "When the longest current lock wait began (Postgres 14 and later); absent when none waits.",
    &["source"],
)
.doc("When the longest current lock wait began (Postgres 14+, `pg_locks.waitstart`); absent when none waits.");
pub(super) const LOCKS: Metric = Metric::gauge(
    "pulse_postgres_locks",
    "Locks held or awaited in the shared lock table (pg_locks rows that are not fast-path).",
    &["source"],
)
.doc("Locks in the shared lock table (`pg_locks` rows that are not fast-path), held or awaited.");
pub(super) const LOCK_SLOTS: Metric = Metric::gauge(
    "pulse_postgres_lock_table_slots",
    "Locks the shared lock table is sized for: max_locks_per_transaction times (server processes + max_prepared_transactions).",
    &["source"],
)
.doc("What the shared lock table is sized for: `max_locks_per_transaction` × (`max_connections` + `autovacuum_max_workers` + `max_worker_processes` + `max_wal_senders` + 1 + `max_prepared_transactions`). Past it, taking a lock fails with `out of shared memory`.");
pub(super) const CHECKPOINTS: Metric = Metric::counter(
    "pulse_postgres_checkpoints_total",
    "Checkpoints by trigger: timed (checkpoint_timeout) or requested (WAL volume, or asked for).",
    &["source", "trigger"],
)
.doc("Checkpoints by `trigger`: `timed` or `requested` (many requested ones mean `max_wal_size` is small for the write load).");

pub(super) const STATEMENTS_AVAILABLE: Metric = Metric::gauge(
    "pulse_postgres_statements_available",
    "1 while pg_stat_statements is installed in the source's database and loaded, 0 while statement latency cannot be measured.",
    &["source"],
)
.doc("1 while `pg_stat_statements` is installed in the source's database and loaded (`shared_preload_libraries`), 0 while it is not: the exporter logs once what to do. The `statements` check still succeeds either way.");
pub(super) const STATEMENTS_WINDOW: Metric = Metric::gauge(
    "pulse_postgres_statements_window_seconds",
    "Length of the window the statement numbers cover: the time between the last two reads of pg_stat_statements.",
    &["source"],
)
.doc("The window every `pulse_postgres_statement_window_*` value covers: the time between the last two reads (`statements.interval`, 1m by default). Divide by it for a rate.");
pub(super) const STATEMENTS_MAX: Metric = Metric::gauge(
    "pulse_postgres_statements_max_entries",
    "The most statements pg_stat_statements tracks (pg_stat_statements.max).",
    &["source"],
)
.doc("`pg_stat_statements.max` (5000 by default): past it, the least used statements are evicted (`pulse_postgres_statements_deallocations_total`).");
pub(super) const STATEMENTS_DEALLOCATIONS: Metric = Metric::counter(
    "pulse_postgres_statements_deallocations_total",
    "Times pg_stat_statements evicted its least used statements to make room (pg_stat_statements_info.dealloc).",
    &["source"],
)
.doc("Times `pg_stat_statements` evicted its least used entries (Postgres 14+, `pg_stat_statements_info.dealloc`): often, and `pg_stat_statements.max` is too small to keep the workload's statements.");
pub(super) const STATEMENT_CALLS: Metric = Metric::gauge(
    "pulse_postgres_statement_window_calls",
    "Calls of the statement in the last window (pg_stat_statements); queryid=\"other\" sums the database's statements outside the top.",
    &["source", "database", "queryid"],
)
.doc("Calls in the last window, for the `statements.top` statements (20 by default) that took the most execution time in it, summed over roles, plus one `queryid=\"other\"` row per database for the rest: the rows of a database add up to everything it ran. Top-level statements only. A statement's queryid is the server's, signed.");
pub(super) const STATEMENT_EXEC_TIME: Metric = Metric::gauge(
    "pulse_postgres_statement_window_exec_seconds",
    "Execution time of the statement in the last window (pg_stat_statements total_exec_time).",
    &["source", "database", "queryid"],
)
.doc("Execution time in the last window: over `pulse_postgres_statements_window_seconds`, the average number of sessions busy running it; over the database's sum, its share of the database's time.");
pub(super) const STATEMENT_MEAN_EXEC_TIME: Metric = Metric::gauge(
    "pulse_postgres_statement_window_mean_exec_seconds",
    "Mean execution time of one call of the statement in the last window.",
    &["source", "database", "queryid"],
)
.doc("Mean execution time of a call in the last window (time over calls).");
pub(super) const STATEMENT_ROWS: Metric = Metric::gauge(
    "pulse_postgres_statement_window_rows",
    "Rows the statement returned or changed in the last window.",
    &["source", "database", "queryid"],
)
.doc("Rows returned or affected in the last window.");
pub(super) const STATEMENT_READ_BYTES: Metric = Metric::gauge(
    "pulse_postgres_statement_window_shared_read_bytes",
    "Shared buffer blocks the statement read from outside the buffer cache in the last window, in bytes.",
    &["source", "database", "queryid"],
)
.doc("Shared blocks read (not found in shared buffers) in the last window, times `block_size`.");
pub(super) const STATEMENT_HIT_BYTES: Metric = Metric::gauge(
    "pulse_postgres_statement_window_shared_hit_bytes",
    "Shared buffer blocks the statement found in the buffer cache in the last window, in bytes.",
    &["source", "database", "queryid"],
)
.doc("Shared blocks found in shared buffers in the last window, times `block_size`.");
pub(super) const STATEMENT_BLOCK_READ_TIME: Metric = Metric::gauge(
    "pulse_postgres_statement_window_block_read_seconds",
    "Time the statement spent reading shared blocks in the last window (0 unless track_io_timing is on).",
    &["source", "database", "queryid"],
)
.doc("Time spent reading shared blocks in the last window (`shared_blk_read_time` from Postgres 17, `blk_read_time` before); 0 unless `track_io_timing` is on.");
pub(super) const RUNNING_STATEMENT: Metric = Metric::gauge(
    "pulse_postgres_running_statement_seconds",
    "How long the longest-running active statements have run, from pg_stat_activity; published only while pg_stat_statements cannot be read.",
    &["source", "database", "text"],
)
.doc("The fallback answer to \"which query\" while `pg_stat_statements` is not installed or not loaded (`pulse_postgres_statements_available` 0): at each `statements` run, the `statements.top` longest-running active client statements of `pg_stat_activity`, by how long each has run (the longest of the same text). The text is cut to `statements.text_length`, its literals replaced by `?`, and withheld where it may carry a secret, as the statements' is. A snapshot per run, not a sum over the window. Texts a role without `pg_read_all_stats` may not read show as `<insufficient privilege>`. Absent with `statements: { text: false }`.");
pub(super) const STATEMENT_INFO: Metric = Metric::gauge(
    "pulse_postgres_statement_info",
    "Always 1; the normalised text of a statement of the top, cut short ($1 stands for each literal).",
    &["source", "database", "queryid", "text"],
)
.doc("Always 1, for each statement of the top whose text was read: the normalised text (`$1` for each literal), on one line, cut to `statements.text_length` characters; a statement that may carry a secret (a password) shows none. Read once when the statement first enters the top, never at every run. Absent with `statements: { text: false }`.");
pub(super) const PLAN_INFO: Metric = Metric::gauge(
    "pulse_postgres_statement_plan_info",
    "Always 1; the hash of the shape of the generic plan of a statement of the top (EXPLAIN GENERIC_PLAN, Postgres 16+).",
    &["source", "database", "queryid", "plan"],
)
.doc("Always 1, for each statement of the top explained (`statements.plans`, Postgres 16+): `plan` is 16 hex digits of the hash of the plan's shape (node types, join types, relations and indexes; never costs, estimates or conditions). The statement is planned with `EXPLAIN (GENERIC_PLAN, FORMAT JSON)` in a read-only transaction, never run; it is explained when it enters the top and every `plans.interval` (1h) after.");
pub(super) const PLAN_SEQ_SCAN: Metric = Metric::gauge(
    "pulse_postgres_statement_plan_seq_scan",
    "1 when the plan of the statement reads a table by sequential scan, 0 when it reads none that way.",
    &["source", "database", "queryid"],
)
.doc("1 while the last plan read of the statement reads a table whole (a `Seq Scan` node), 0 otherwise: a statement that used an index and now reads by sequential scan has lost it (a dropped index, statistics that changed).");
pub(super) const PLAN_CHANGES: Metric = Metric::counter(
    "pulse_postgres_statement_plan_changes_total",
    "Times the plan of the statement was seen to change shape since the exporter started.",
    &["source", "database", "queryid"],
)
.doc("Times a new explain of the statement gave another plan hash than the last one (`pulse_postgres_statement_plan_info`): PulsePostgresPlanChanged warns when one of these is followed by a mean time twice the statement's usual.");
pub(super) const PLANS_EXPLAINED: Metric = Metric::counter(
    "pulse_postgres_statement_plans_explained_total",
    "Statements of the top explained since the exporter started.",
    &["source"],
)
.doc("Statements of the top explained (`statements.plans`): with `pulse_postgres_statement_plans_skipped_total`, what the plan series cover.");
pub(super) const PLANS_SKIPPED: Metric = Metric::counter(
    "pulse_postgres_statement_plans_skipped_total",
    "Statements of the top not explained, by reason.",
    &["source", "reason"],
)
.doc("Statements of the top not explained, by `reason`: `server_version` (before Postgres 16, which has no `GENERIC_PLAN`), `writes` (a statement that writes or locks rows is never sent), `not_a_query`, `too_long` (a text over 20,000 characters), `no_text`, `refused` (the role may not read a table the statement reads: grant it SELECT, or accept the gap), `timeout` (planning took longer than `plans.timeout`), `database` (the statement's database refused a connection), `failed` (anything else, e.g. a parameter whose type the server cannot guess). Each is tried again an interval later.");
pub(super) const LOAD_ACTIVE_SECONDS: Metric = Metric::counter(
    "pulse_postgres_load_active_seconds_total",
    "Active-session seconds sampled from pg_stat_activity, by database, backend type and wait event (CPU: no wait event): rate() is the average active sessions.",
    &["source", "database", "backend", "wait_event_type", "wait_event"],
)
.doc("The `load` check samples `pg_stat_activity` every `load.interval` (1s by default) and adds, for each active session, the time since the previous sample: `rate()` over any window is the average number of active sessions, the database load Performance Insights plots. `backend` is `client`, `autovacuum` or `parallel`; a session with no wait event is `CPU`; past `load.top_waits` series the rest count in `wait_event=\"other\"`.");
pub(super) const LOAD_STATEMENT_SECONDS: Metric = Metric::counter(
    "pulse_postgres_load_statement_active_seconds_total",
    "Active-session seconds of client sessions by statement (query_id), sampled from pg_stat_activity.",
    &["source", "database", "queryid"],
)
.doc("Active-session seconds of client sessions by the statement they run (`query_id`, Postgres 14+ with `compute_query_id` on, as it is where pg_stat_statements is loaded; else `unknown`); `pulse_postgres_statement_info` has the text of a queryid in the statements top. Past `load.top_statements`, `queryid=\"other\"`.");
pub(super) const LOAD_HELD_SECONDS: Metric = Metric::counter(
    "pulse_postgres_load_held_seconds_total",
    "Seconds client sessions spent inside a statement or transaction, by database and whom they waited on: the client or the server.",
    &["source", "database", "waiting_on"],
)
.doc("The connection-pool view of the `load` check: each sample adds, for every client session inside a statement or an open transaction, the time since the previous sample, by `waiting_on`: `client` (idle in transaction, or active and waiting for the client, `wait_event_type=\"Client\"` such as `ClientRead`) or `server` (running or waiting on anything else). `rate()` is the average sessions held; a pool whose held sessions mostly wait on the client is held by the application between its statements, not by the database. Past `load.top_waits` databases, `database=\"other\"`.");
pub(super) const LOAD_SAMPLES: Metric = Metric::counter(
    "pulse_postgres_load_samples_total",
    "Samples of pg_stat_activity the load check took.",
    &["source"],
)
.doc("Samples taken; with `pulse_postgres_load_sampled_seconds_total`, how much of the time the load numbers cover.");
pub(super) const LOAD_SAMPLED_SECONDS: Metric = Metric::counter(
    "pulse_postgres_load_sampled_seconds_total",
    "Seconds the load samples cover: a gap of more than three intervals (a failed sample) covers none.",
    &["source"],
)
.doc("The time the samples speak for; `rate()` of it below 1 means samples were missed and the load reads low by that share.");
pub(super) const LOAD_ROWS_CUT: Metric = Metric::counter(
    "pulse_postgres_load_rows_cut_total",
    "Sessions left out of load samples by load.max_rows.",
    &["source"],
)
.doc("Sessions a sample left out past `load.max_rows` (the longest-running are kept).");
pub(super) const LOAD_ALL_VISIBLE: Metric = Metric::gauge(
    "pulse_postgres_load_all_sessions_visible",
    "1 when the role sees every session's state (superuser or pg_read_all_stats), 0 when only its own.",
    &["source"],
)
.doc("0: the role is neither superuser nor a member of `pg_read_all_stats` (granted with `pg_monitor`), so load and blockers count its own sessions only; logged once.");
pub(super) const LOAD_CPUS: Metric = Metric::gauge(
    "pulse_postgres_load_cpus",
    "The database server's CPUs as the config declares them (load.cpus).",
    &["source"],
)
.doc("`load.cpus`: database load above it for 15 minutes warns (PulsePostgresLoadHigh). Absent without it.");
pub(super) const IDLE_IN_TRANSACTION: Metric = Metric::gauge(
    "pulse_postgres_idle_in_transaction_sessions",
    "Sessions idle in a transaction at the last load sample, by database and application.",
    &["source", "database", "application"],
)
.doc("Sessions idle in an open transaction (holding its locks and snapshot), by database and application, the oldest first; past 20 pairs, `other`.");
pub(super) const IDLE_IN_TRANSACTION_OLDEST: Metric = Metric::gauge(
    "pulse_postgres_idle_in_transaction_oldest_seconds",
    "How long the oldest session idle in a transaction has been idle, by database and application.",
    &["source", "database", "application"],
)
.doc("Seconds since the oldest idle-in-transaction session of the pair last ran a statement.");
pub(super) const BLOCKER_LIMIT: Metric = Metric::gauge(
    "pulse_postgres_blocker_sessions_limit",
    "Sessions behind one root blocker that fire PulsePostgresBlockerQueue (load.blocked_sessions).",
    &["source"],
)
.doc("`load.blocked_sessions` (5 by default): this many sessions waiting behind one root blocker for a minute fire PulsePostgresBlockerQueue.");
pub(super) const BLOCKER_WAITING: Metric = Metric::gauge(
    "pulse_postgres_blocker_waiting_sessions",
    "Sessions waiting on a lock behind a root blocker, directly or through others, at the last load sample.",
    &["source", "database", "user", "application", "state", "queryid", "mode", "relation"],
)
.doc("Per root blocker (a session others wait for on a lock, itself waiting for none), the sessions waiting behind it, directly or in a chain, from `pg_blocking_pids()`. Labelled by the blocker's database, user, application, state (`idle in transaction` is a session holding locks while doing nothing) and `queryid`, and by the lock mode and relation its first waiter wants; no pid. Sessions of one identity add up; past `load.top_blockers`, `application=\"other\"`. Gone when nothing waits.");
pub(super) const BLOCKER_DIRECT: Metric = Metric::gauge(
    "pulse_postgres_blocker_direct_waiting_sessions",
    "Sessions waiting on a lock directly on a root blocker, at the last load sample.",
    &[
        "source",
        "database",
        "user",
        "application",
        "state",
        "queryid",
        "mode",
        "relation",
    ],
)
.doc("The sessions of `pulse_postgres_blocker_waiting_sessions` that wait on the root itself.");
pub(super) const BLOCKER_LONGEST_WAIT: Metric = Metric::gauge(
    "pulse_postgres_blocker_longest_wait_seconds",
    "The longest-running statement among the sessions waiting behind a root blocker, in seconds.",
    &["source", "database", "user", "application", "state", "queryid", "mode", "relation"],
)
.doc("How long the oldest statement waiting behind the root blocker has run: how long the queue has been building.");
pub(super) const TABLES_WHOLE_READ_ROWS: Metric = Metric::gauge(
    "pulse_postgres_tables_whole_read_min_rows",
    "Live rows above which a table read whole often fires PulsePostgresBigTableReadWhole (tables.whole_read_rows).",
    &["source"],
)
.doc("`tables.whole_read_rows` (100000 by default): a table of more live rows that sequential scans read whole more than `pulse_postgres_tables_whole_reads_per_minute_limit` times a minute fires PulsePostgresBigTableReadWhole, with no history needed.");
pub(super) const TABLES_WHOLE_READS_LIMIT: Metric = Metric::gauge(
    "pulse_postgres_tables_whole_reads_per_minute_limit",
    "How many times a minute a big table may be read whole before PulsePostgresBigTableReadWhole fires (tables.whole_reads_per_minute).",
    &["source"],
)
.doc("`tables.whole_reads_per_minute` (1 by default): rows read by sequential scans a minute over the table's live rows, above which a big table fires PulsePostgresBigTableReadWhole.");
pub(super) const TABLES_WINDOW: Metric = Metric::gauge(
    "pulse_postgres_tables_window_seconds",
    "Length of the window the table numbers cover: the time between the last two reads of pg_stat_user_tables.",
    &["source"],
)
.doc("The window every `pulse_postgres_table_window_*` value covers (`tables.interval`, 1m by default).");
pub(super) const TABLE_SEQ_ROWS_READ: Metric = Metric::gauge(
    "pulse_postgres_table_window_seq_rows_read",
    "Rows sequential scans read from the table in the last window (pg_stat_user_tables seq_tup_read).",
    &["source", "database", "schema", "table"],
)
.doc("Rows read by sequential scans in the last window, for the `tables.top` tables (20 by default) that read the most that way; tables of the source's database only. A big table read whole by every call is a query without an index.");
pub(super) const TABLE_SEQ_SCANS: Metric = Metric::gauge(
    "pulse_postgres_table_window_seq_scans",
    "Sequential scans of the table in the last window.",
    &["source", "database", "schema", "table"],
)
.doc("Sequential scans started on the table in the last window.");
pub(super) const TABLE_INDEX_SCANS: Metric = Metric::gauge(
    "pulse_postgres_table_window_index_scans",
    "Index scans of the table in the last window (0 for a table without an index).",
    &["source", "database", "schema", "table"],
)
.doc("Index scans on the table in the last window.");
pub(super) const TABLE_LIVE_ROWS: Metric = Metric::gauge(
    "pulse_postgres_table_live_rows",
    "Estimated live rows of the table (n_live_tup).",
    &["source", "database", "schema", "table"],
)
.doc("Estimated live rows (`n_live_tup`), for the tables of the top.");
pub(super) const TABLE_DEAD_ROWS: Metric = Metric::gauge(
    "pulse_postgres_table_dead_rows",
    "Estimated dead rows of the table, waiting for vacuum (n_dead_tup).",
    &["source", "database", "schema", "table"],
)
.doc("Estimated dead rows (`n_dead_tup`), which vacuum removes.");
pub(super) const TABLE_LAST_VACUUM: Metric = Metric::gauge(
    "pulse_postgres_table_last_vacuum_timestamp_seconds",
    "When the table was last vacuumed, by hand or by autovacuum; absent if never.",
    &["source", "database", "schema", "table"],
)
.doc("The later of `last_vacuum` and `last_autovacuum`; absent if never.");
pub(super) const TABLE_LAST_ANALYZE: Metric = Metric::gauge(
    "pulse_postgres_table_last_analyze_timestamp_seconds",
    "When the table was last analysed, by hand or by autovacuum; absent if never.",
    &["source", "database", "schema", "table"],
)
.doc("The later of `last_analyze` and `last_autoanalyze`; absent if never.");

/// Every metric of the kind: the health probe's, then the built-in checks'.
pub(super) const METRICS: &[Metric] = &[
    MAX_CONNECTIONS,
    RESERVED_CONNECTIONS,
    CONNECTIONS,
    DATABASE_SIZE,
    OLDEST_QUERY,
    OLDEST_TRANSACTION,
    POOL_CONNECTIONS,
    POOL_MAX_CONNECTIONS,
    START_TIME,
    IN_RECOVERY,
    LAG_SECONDS,
    LAG_BYTES,
    WAL_RECEIVER,
    STREAMING_STANDBYS,
    STANDBY_LAG_SECONDS,
    STANDBY_LAG_BYTES,
    SLOT_ACTIVE,
    SLOT_RETAINED,
    SLOT_WAL_STATUS,
    SLOT_SAFE_WAL,
    SLOT_INVALIDATED,
    SLOT_WAL_LIMIT,
    WRAPAROUND,
    TRANSACTIONS,
    DEADLOCKS,
    LOCK_WAITING,
    OLDEST_LOCK_WAIT,
    LOCKS,
    LOCK_SLOTS,
    CHECKPOINTS,
    STATEMENTS_AVAILABLE,
    STATEMENTS_WINDOW,
    STATEMENTS_MAX,
    STATEMENTS_DEALLOCATIONS,
    STATEMENT_CALLS,
    STATEMENT_EXEC_TIME,
    STATEMENT_MEAN_EXEC_TIME,
    STATEMENT_ROWS,
    STATEMENT_READ_BYTES,
    STATEMENT_HIT_BYTES,
    STATEMENT_BLOCK_READ_TIME,
    STATEMENT_INFO,
    PLAN_INFO,
    PLAN_SEQ_SCAN,
    PLAN_CHANGES,
    PLANS_EXPLAINED,
    PLANS_SKIPPED,
    RUNNING_STATEMENT,
    TABLES_WHOLE_READ_ROWS,
    TABLES_WHOLE_READS_LIMIT,
    TABLES_WINDOW,
    TABLE_SEQ_ROWS_READ,
    TABLE_SEQ_SCANS,
    TABLE_INDEX_SCANS,
    TABLE_LIVE_ROWS,
    TABLE_DEAD_ROWS,
    TABLE_LAST_VACUUM,
    TABLE_LAST_ANALYZE,
    LOAD_ACTIVE_SECONDS,
    LOAD_STATEMENT_SECONDS,
    LOAD_HELD_SECONDS,
    LOAD_SAMPLES,
    LOAD_SAMPLED_SECONDS,
    LOAD_ROWS_CUT,
    LOAD_ALL_VISIBLE,
    LOAD_CPUS,
    IDLE_IN_TRANSACTION,
    IDLE_IN_TRANSACTION_OLDEST,
    BLOCKER_LIMIT,
    BLOCKER_WAITING,
    BLOCKER_DIRECT,
    BLOCKER_LONGEST_WAIT,
];

#[cfg(test)]
mod tests {
    #[test]
    fn every_health_metric_is_in_the_kind_table_once() {
        let mut names: Vec<&str> = super::METRICS.iter().map(|m| m.name).collect();
        let n = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), n);
        assert!(names.contains(&"pulse_postgres_database_wraparound_ratio"));
    }
}
