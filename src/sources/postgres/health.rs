//! The Postgres health probe: reachability on a connection of its own, then the vital
//! statistics a DBA pages on. Connections and sizes; the role (primary or standby) and the
//! server's start; replication seen from a standby (lag, WAL receiver) and from a primary (per
//! standby); replication slots and the WAL they retain; transaction-ID age against the
//! wraparound limit; commits, rollbacks and deadlocks; sessions waiting on locks; checkpoints.
//!
//! Every query reads views the `pg_monitor` role may read. A view or function the server or
//! the role lacks (an older version, a managed service, a standby) leaves its numbers absent:
//! the probe fails only when the server does.

use std::collections::BTreeMap;
use std::sync::Arc;

use sqlx::postgres::{PgConnectOptions, PgPool, PgRow};
use sqlx::{Column, ConnectOptions, PgConnection, Row as _};
use tokio::sync::{Mutex, MutexGuard};
use tokio::time::Instant;

use super::metrics::{
    CHECKPOINTS, CONNECTIONS, DATABASE_SIZE, DEADLOCKS, IN_RECOVERY, LAG_BYTES, LAG_SECONDS, LOCKS,
    LOCK_SLOTS, LOCK_WAITING, MAX_CONNECTIONS, OLDEST_LOCK_WAIT, OLDEST_QUERY, OLDEST_TRANSACTION,
    POOL_CONNECTIONS, POOL_MAX_CONNECTIONS, RESERVED_CONNECTIONS, SLOT_ACTIVE, SLOT_INVALIDATED,
    SLOT_RETAINED, SLOT_SAFE_WAL, SLOT_WAL_LIMIT, SLOT_WAL_STATUS, STANDBY_LAG_BYTES,
    STANDBY_LAG_SECONDS, START_TIME, STREAMING_STANDBYS, TRANSACTIONS, WAL_RECEIVER, WRAPAROUND,
};
use super::session::{classify, server_budget};
use crate::series::run_error::RunError;
use crate::series::sample::Output;
use crate::sources::{RunFuture, Runnable};

pub(super) struct HealthProbe {
    pub(super) source: String,
    pub(super) options: PgConnectOptions,
    pub(super) pool: PgPool,
    pub(super) max_connections: u32,
    /// The source's `slot_wal_limit`, in bytes.
    pub(super) slot_wal_limit: u64,
    pub(super) conn: Arc<Mutex<Option<PgConnection>>>,
}

/// What the health probe reads besides reachability, in one round trip.
const VITALS_SQL: &str = "SELECT \
    current_setting('max_connections')::float8 AS max_connections, \
    (current_setting('superuser_reserved_connections')::float8 \
       + coalesce(current_setting('reserved_connections', true)::float8, 0)) AS reserved_connections, \
    current_setting('max_locks_per_transaction')::float8 * ( \
       current_setting('max_connections')::float8 + current_setting('autovacuum_max_workers')::float8 \
       + current_setting('max_worker_processes')::float8 + current_setting('max_wal_senders')::float8 + 1 \
       + current_setting('max_prepared_transactions')::float8) AS lock_slots, \
    (SELECT CASE WHEN setting::float8 < 0 THEN NULL ELSE setting::float8 * 1048576 END \
       FROM pg_settings WHERE name = 'max_slot_wal_keep_size' AND unit = 'MB') AS slot_keep_bytes, \
    pg_database_size(current_database())::float8 AS database_size, \
    current_database()::text AS database, \
    (SELECT extract(epoch FROM min(query_start))::float8 FROM pg_stat_activity \
       WHERE state = 'active' AND pid <> pg_backend_pid() AND backend_type = 'client backend') AS oldest_query, \
    (SELECT extract(epoch FROM min(xact_start))::float8 FROM pg_stat_activity \
       WHERE xact_start IS NOT NULL AND pid <> pg_backend_pid() AND backend_type = 'client backend') AS oldest_xact, \
    extract(epoch FROM pg_postmaster_start_time())::float8 AS start_time, \
    pg_is_in_recovery() AS in_recovery";

const STATES_SQL: &str = "SELECT coalesce(state, 'unknown')::text AS state, count(*)::float8 AS n \
    FROM pg_stat_activity WHERE backend_type = 'client backend' GROUP BY 1 ORDER BY 1";

/// On a standby. The replay lag is 0 while everything received is replayed: an idle primary
/// sends nothing, and the last replayed commit grows old without any lag.
const STANDBY_SQL: &str = "SELECT \
    (CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0 \
          ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp()) END)::float8 AS lag_seconds, \
    pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())::float8 AS lag_bytes, \
    (SELECT count(*) FROM pg_stat_wal_receiver WHERE status = 'streaming')::float8 AS streaming";

/// On a primary, one row per standby (bounded: a primary has at most max_wal_senders), with
/// what tells two standbys of the same `application_name` apart: their address, the slot they
/// stream from, their walsender's PID.
const STANDBYS_SQL: &str = "SELECT \
    coalesce(nullif(r.application_name, ''), host(r.client_addr), 'unknown')::text AS standby, \
    coalesce(host(r.client_addr), 'local')::text AS client, \
    s.slot_name::text AS slot, r.pid::int4 AS pid, \
    r.state::text AS state, \
    pg_wal_lsn_diff(pg_current_wal_lsn(), r.replay_lsn)::float8 AS lag_bytes, \
    (CASE WHEN r.replay_lsn = pg_current_wal_lsn() THEN 0 \
          ELSE extract(epoch FROM r.replay_lag) END)::float8 AS lag_seconds \
    FROM pg_stat_replication r LEFT JOIN pg_replication_slots s ON s.active_pid = r.pid \
    ORDER BY 1, 2, 3, 4 LIMIT 100";

/// Replication slots, with what the server says of their WAL: `wal_status` and
/// `safe_wal_size` from Postgres 13, `invalidation_reason` from 17 (16 has only `conflicting`,
/// for logical slots). `{extra}` stands for the version's columns.
const SLOTS_SQL: &str = "SELECT slot_name::text AS slot, slot_type::text AS slot_type, active, \
    pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn() \
                         ELSE pg_current_wal_lsn() END, restart_lsn)::float8 AS retained{extra} \
    FROM pg_replication_slots ORDER BY 1 LIMIT 100";
const SLOTS_17: &str = ", wal_status::text AS wal_status, safe_wal_size::float8 AS safe_wal, \
    invalidation_reason::text AS invalidation";
const SLOTS_16: &str = ", wal_status::text AS wal_status, safe_wal_size::float8 AS safe_wal, \
    (CASE WHEN conflicting THEN 'conflict' END)::text AS invalidation";
const SLOTS_13: &str = ", wal_status::text AS wal_status, safe_wal_size::float8 AS safe_wal";

/// The slots query for a server of `version` (`server_version_num`).
fn slots_sql(version: u32) -> String {
    let extra = match version {
        v if v >= 170_000 => SLOTS_17,
        v if v >= 160_000 => SLOTS_16,
        v if v >= 130_000 => SLOTS_13,
        _ => "",
    };
    SLOTS_SQL.replace("{extra}", extra)
}

/// The states `wal_status` takes (Postgres 13 to 18), published as a state set.
const WAL_STATUSES: [&str; 4] = ["reserved", "extended", "unreserved", "lost"];

/// Databases nearest wraparound first, so the cap never hides the one that matters.
const DATABASES_SQL: &str = "SELECT d.datname::text AS database, \
    age(d.datfrozenxid)::float8 / 2147483648 AS wraparound, \
    s.xact_commit::float8 AS commits, s.xact_rollback::float8 AS rollbacks, \
    s.deadlocks::float8 AS deadlocks \
    FROM pg_database d LEFT JOIN pg_stat_database s ON s.datid = d.oid \
    WHERE d.datallowconn ORDER BY 2 DESC, 1 LIMIT 100";

/// Sessions waiting, the oldest wait, and the locks in the shared table (fast-path locks live
/// in each backend, not there). `pg_locks.waitstart` exists from Postgres 14.
const LOCKS_SQL: &str =
    "SELECT count(DISTINCT pid) FILTER (WHERE NOT granted)::float8 AS waiting, \
    extract(epoch FROM min(waitstart))::float8 AS oldest, \
    count(*) FILTER (WHERE NOT fastpath)::float8 AS locks FROM pg_locks";
const LOCKS_SQL_13: &str =
    "SELECT count(DISTINCT pid) FILTER (WHERE NOT granted)::float8 AS waiting, \
    NULL::float8 AS oldest, count(*) FILTER (WHERE NOT fastpath)::float8 AS locks FROM pg_locks";

/// Checkpoint counters moved to pg_stat_checkpointer in Postgres 17.
const CHECKPOINTS_SQL: &str =
    "SELECT num_timed::float8 AS timed, num_requested::float8 AS requested FROM pg_stat_checkpointer";
const CHECKPOINTS_SQL_16: &str = "SELECT checkpoints_timed::float8 AS timed, \
    checkpoints_req::float8 AS requested FROM pg_stat_bgwriter";

/// The saved connection the health probe and the load sampler share, taken out for one
/// read and put back only after a success ([`Taken::finish`]): a read cancelled at its
/// timeout, or failed, drops it, and the next run reconnects.
pub(super) struct Taken<'a> {
    guard: MutexGuard<'a, Option<PgConnection>>,
    /// The connection to read on.
    pub(super) conn: PgConnection,
    reused: bool,
    options: &'a PgConnectOptions,
    deadline: Instant,
}

impl<'a> Taken<'a> {
    /// The saved connection, or a new one when none is saved.
    pub(super) async fn take(
        saved: &'a Mutex<Option<PgConnection>>,
        options: &'a PgConnectOptions,
        deadline: Instant,
    ) -> Result<Taken<'a>, RunError> {
        let mut guard = saved.lock().await;
        let (conn, reused) = match guard.take() {
            Some(c) => (c, true),
            None => (connect(options, deadline).await?, false),
        };
        Ok(Taken {
            guard,
            conn,
            reused,
            options,
            deadline,
        })
    }

    /// Whether a read that failed with `err` is worth one more try, on a fresh connection
    /// opened here: a healthy server (idle_session_timeout, a proxy or load balancer dropping
    /// idle clients) may have closed the saved connection since the last run, which is not
    /// the source going down.
    pub(super) async fn reconnected_after(
        &mut self,
        err: &sqlx::Error,
        source: &str,
    ) -> Result<bool, RunError> {
        if !(self.reused && closed_by_server(err)) {
            return Ok(false);
        }
        tracing::debug!(
            source,
            "the saved connection was closed by the server; reconnecting"
        );
        self.conn = connect(self.options, self.deadline).await?;
        self.reused = false;
        Ok(true)
    }

    /// The read's outcome; the connection is saved again after a success.
    pub(super) fn finish<T>(mut self, result: Result<T, sqlx::Error>) -> Result<T, RunError> {
        if result.is_ok() {
            *self.guard = Some(self.conn);
        }
        result.map_err(classify)
    }
}

/// A connection for the health probe and the load sampler, its `statement_timeout` what is
/// left of `deadline`.
async fn connect(options: &PgConnectOptions, deadline: Instant) -> Result<PgConnection, RunError> {
    let budget = server_budget(deadline).as_millis().to_string();
    let opts = options
        .clone()
        .options([("statement_timeout", budget.as_str())]);
    opts.connect().await.map_err(classify)
}

impl Runnable for HealthProbe {
    fn run(&self, deadline: Instant) -> RunFuture<'_> {
        Box::pin(async move {
            let (source, limit) = (self.source.as_str(), self.slot_wal_limit);
            let mut taken = Taken::take(&self.conn, &self.options, deadline).await?;
            let mut result = vitals(&mut taken.conn, source, limit).await;
            if let Err(e) = &result {
                if taken.reconnected_after(e, source).await? {
                    result = vitals(&mut taken.conn, source, limit).await;
                }
            }
            let result = taken.finish(result);
            let mut out = result?;
            let size = self.pool.size() as f64;
            let idle = self.pool.num_idle() as f64;
            let source = self.source.as_str();
            out.add(&POOL_CONNECTIONS, &[source, "idle"], idle);
            out.add(
                &POOL_CONNECTIONS,
                &[source, "in_use"],
                (size - idle).max(0.0),
            );
            out.add(
                &POOL_MAX_CONNECTIONS,
                &[source],
                f64::from(self.max_connections),
            );
            Ok(out)
        })
    }
}

/// True for the errors of a connection the server or the network closed while it sat idle:
/// a socket error, a protocol read cut short, or the server's own goodbye (connection
/// exceptions, administrator or idle-session termination).
fn closed_by_server(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_) | sqlx::Error::Protocol(_) | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|c| {
            c.starts_with("08") || matches!(c.as_ref(), "57P01" | "57P02" | "57P05" | "25P03")
        }),
        _ => false,
    }
}

/// One row of a vitals query, by column: every value is a number (`float8`, `int4`), text or
/// a boolean, or NULL (absent). Rows are read into these before any sample is made, so the
/// mapping from rows to samples ([`samples`]) is pure and tested on rows written by hand.
type Row = BTreeMap<String, Value>;

/// A column's value.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Number(f64),
    Text(String),
    Flag(bool),
}

/// `row` as a [`Row`]: each column as the first type it decodes as, NULLs left out.
fn read_row(row: &PgRow) -> Row {
    let mut out = Row::new();
    for (i, column) in row.columns().iter().enumerate() {
        let value = if let Ok(v) = row.try_get::<Option<f64>, _>(i) {
            v.map(Value::Number)
        } else if let Ok(v) = row.try_get::<Option<i32>, _>(i) {
            v.map(|n| Value::Number(f64::from(n)))
        } else if let Ok(v) = row.try_get::<Option<bool>, _>(i) {
            v.map(Value::Flag)
        } else {
            row.try_get::<Option<String>, _>(i)
                .ok()
                .flatten()
                .map(Value::Text)
        };
        if let Some(v) = value {
            out.insert(column.name().to_owned(), v);
        }
    }
    out
}

fn num(row: &Row, column: &str) -> Option<f64> {
    match row.get(column) {
        Some(Value::Number(n)) => Some(*n),
        _ => None,
    }
}

fn text(row: &Row, column: &str) -> String {
    match row.get(column) {
        Some(Value::Text(t)) => t.clone(),
        _ => String::new(),
    }
}

/// The column's text, `None` where it is NULL or absent.
fn some_text<'a>(row: &'a Row, column: &str) -> Option<&'a str> {
    match row.get(column) {
        Some(Value::Text(t)) => Some(t),
        _ => None,
    }
}

fn flag(row: &Row, column: &str) -> bool {
    matches!(row.get(column), Some(Value::Flag(true)))
}

/// What tells one standby from another on its primary.
#[derive(Debug, Clone, PartialEq)]
struct StandbyId {
    /// `application_name` (`walreceiver` unless the standby sets one), else its address.
    name: String,
    /// Its address, `local` over a Unix socket.
    client: String,
    /// The replication slot it streams from, if any.
    slot: Option<String>,
    /// Its walsender's PID.
    pid: i32,
}

/// The `standby` label of each of `ids`: the name where it is unique, and where several
/// standbys share it (two `pg_basebackup -R` standbys are both `walreceiver`), the name with
/// what first tells them apart: the address, then the slot, then the walsender's PID. Two
/// standbys never share a label, so neither hides the other's lag.
fn standby_labels(ids: &[StandbyId]) -> Vec<String> {
    let count =
        |f: &dyn Fn(&StandbyId) -> String, key: &str| ids.iter().filter(|i| f(i) == key).count();
    let by_name = |i: &StandbyId| i.name.clone();
    let by_client = |i: &StandbyId| format!("{}@{}", i.name, i.client);
    let by_slot = |i: &StandbyId| match &i.slot {
        Some(s) => format!("{}@{}/{s}", i.name, i.client),
        None => format!("{}@{}", i.name, i.client),
    };
    ids.iter()
        .map(|i| {
            if count(&by_name, &by_name(i)) == 1 {
                by_name(i)
            } else if count(&by_client, &by_client(i)) == 1 {
                by_client(i)
            } else if i.slot.is_some() && count(&by_slot, &by_slot(i)) == 1 {
                by_slot(i)
            } else {
                format!("{}@{}#{}", i.name, i.client, i.pid)
            }
        })
        .collect()
}

/// What the vitals queries returned, each as the rows it gave (none where the server or the
/// role lacks the view).
#[derive(Debug, Default)]
struct Fetched {
    /// The one row of `VITALS_SQL`.
    vitals: Row,
    /// Client connections by state.
    states: Vec<Row>,
    /// On a standby: its own lag and WAL receiver.
    standby: Vec<Row>,
    /// On a primary: one row per standby.
    standbys: Vec<Row>,
    /// Replication slots.
    slots: Vec<Row>,
    /// Per database: wraparound, commits, rollbacks, deadlocks.
    databases: Vec<Row>,
    /// Lock waits and lock slots in use.
    locks: Vec<Row>,
    /// Checkpoint counters.
    checkpoints: Vec<Row>,
}

/// Runs the vitals queries for the server's version and role.
async fn fetch(conn: &mut PgConnection, source: &str) -> Result<Fetched, sqlx::Error> {
    sqlx::query("SELECT 1").execute(&mut *conn).await?;
    let vitals = read_row(&sqlx::query(VITALS_SQL).fetch_one(&mut *conn).await?);
    let states = sqlx::query(STATES_SQL).fetch_all(&mut *conn).await?;
    let version = conn.server_version_num().unwrap_or(0);
    let (standby, standbys) = match flag(&vitals, "in_recovery") {
        true => (optional(conn, STANDBY_SQL, source).await?, Vec::new()),
        false => (Vec::new(), optional(conn, STANDBYS_SQL, source).await?),
    };
    let locks = if version >= 140_000 {
        LOCKS_SQL
    } else {
        LOCKS_SQL_13
    };
    let checkpoints = if version >= 170_000 {
        CHECKPOINTS_SQL
    } else {
        CHECKPOINTS_SQL_16
    };
    Ok(Fetched {
        vitals,
        states: states.iter().map(read_row).collect(),
        standby,
        standbys,
        slots: optional(conn, &slots_sql(version), source).await?,
        databases: optional(conn, DATABASES_SQL, source).await?,
        locks: optional(conn, locks, source).await?,
        checkpoints: optional(conn, checkpoints, source).await?,
    })
}

async fn vitals(
    conn: &mut PgConnection,
    source: &str,
    slot_wal_limit: u64,
) -> Result<Output, sqlx::Error> {
    Ok(samples(&fetch(conn, source).await?, source, slot_wal_limit))
}

/// The samples of what [`fetch`] read: absent columns publish nothing.
fn samples(f: &Fetched, source: &str, slot_wal_limit: u64) -> Output {
    let mut out = Output::default();
    let s = &[source];
    let row = &f.vitals;
    for (column, metric) in [
        ("max_connections", &MAX_CONNECTIONS),
        ("reserved_connections", &RESERVED_CONNECTIONS),
        ("lock_slots", &LOCK_SLOTS),
    ] {
        if let Some(v) = num(row, column) {
            out.add(metric, s, v);
        }
    }
    // The server's own limit, where set, binds before the configured one.
    let server_limit = num(row, "slot_keep_bytes");
    let limit = server_limit.map_or(slot_wal_limit as f64, |b| b.min(slot_wal_limit as f64));
    out.add(&SLOT_WAL_LIMIT, s, limit);
    if let Some(v) = num(row, "database_size") {
        out.add(&DATABASE_SIZE, &[source, &text(row, "database")], v);
    }
    for (column, metric) in [
        ("oldest_query", &OLDEST_QUERY),
        ("oldest_xact", &OLDEST_TRANSACTION),
        ("start_time", &START_TIME),
    ] {
        if let Some(v) = num(row, column) {
            out.add(metric, s, v);
        }
    }
    let standby = flag(row, "in_recovery");
    out.add(&IN_RECOVERY, s, f64::from(u8::from(standby)));
    for row in &f.states {
        let n = num(row, "n").unwrap_or(0.0);
        out.add(&CONNECTIONS, &[source, &text(row, "state")], n);
    }
    match standby {
        true => standby_samples(&mut out, &f.standby, source),
        false => primary_samples(&mut out, &f.standbys, source),
    }
    slot_samples(&mut out, &f.slots, source);
    database_samples(&mut out, &f.databases, source);
    for row in &f.locks {
        out.add(&LOCK_WAITING, s, num(row, "waiting").unwrap_or(0.0));
        if let Some(v) = num(row, "oldest") {
            out.add(&OLDEST_LOCK_WAIT, s, v);
        }
        if let Some(v) = num(row, "locks") {
            out.add(&LOCKS, s, v);
        }
    }
    for row in &f.checkpoints {
        for trigger in ["timed", "requested"] {
            if let Some(v) = num(row, trigger) {
                out.add(&CHECKPOINTS, &[source, trigger], v);
            }
        }
    }
    out
}

/// Each replication slot: active, and the WAL it holds back.
fn slot_samples(out: &mut Output, slots: &[Row], source: &str) {
    for row in slots {
        let labels = [source, &text(row, "slot"), &text(row, "slot_type")];
        out.add(
            &SLOT_ACTIVE,
            &labels,
            f64::from(u8::from(flag(row, "active"))),
        );
        // A slot that never reserved WAL has no restart_lsn, and retains nothing.
        if let Some(v) = num(row, "retained") {
            out.add(&SLOT_RETAINED, &labels, v.max(0.0));
        }
        // NULL while max_slot_wal_keep_size is unlimited, and for a lost slot.
        if let Some(v) = num(row, "safe_wal") {
            out.add(&SLOT_SAFE_WAL, &labels, v);
        }
        // A server before 13 reports no wal_status: nothing is said of the slot's WAL.
        let Some(status) = some_text(row, "wal_status") else {
            continue;
        };
        for state in WAL_STATUSES {
            let now = f64::from(u8::from(state == status));
            out.add(
                &SLOT_WAL_STATUS,
                &[labels[0], labels[1], labels[2], state],
                now,
            );
        }
        if !WAL_STATUSES.contains(&status) {
            // A state a newer server added: shown as it is rather than hidden.
            out.add(
                &SLOT_WAL_STATUS,
                &[labels[0], labels[1], labels[2], status],
                1.0,
            );
        }
        let reason = match some_text(row, "invalidation") {
            Some(r) if !r.is_empty() => r,
            _ if status == "lost" => "wal_removed",
            _ => "",
        };
        let invalidated = f64::from(u8::from(!reason.is_empty()));
        out.add(
            &SLOT_INVALIDATED,
            &[labels[0], labels[1], labels[2], reason],
            invalidated,
        );
    }
}

/// Each database: transaction ids left before wraparound, commits and rollbacks, deadlocks.
fn database_samples(out: &mut Output, databases: &[Row], source: &str) {
    for row in databases {
        let db = text(row, "database");
        if let Some(v) = num(row, "wraparound") {
            out.add(&WRAPAROUND, &[source, &db], v);
        }
        for (column, outcome) in [("commits", "commit"), ("rollbacks", "rollback")] {
            if let Some(v) = num(row, column) {
                out.add(&TRANSACTIONS, &[source, &db, outcome], v);
            }
        }
        if let Some(v) = num(row, "deadlocks") {
            out.add(&DEADLOCKS, &[source, &db], v);
        }
    }
}

/// A standby's own replication: its lag behind the primary and its WAL receiver.
fn standby_samples(out: &mut Output, rows: &[Row], source: &str) {
    for row in rows {
        for (column, metric) in [
            ("lag_seconds", &LAG_SECONDS),
            ("lag_bytes", &LAG_BYTES),
            ("streaming", &WAL_RECEIVER),
        ] {
            if let Some(v) = num(row, column) {
                out.add(metric, &[source], v);
            }
        }
    }
}

/// A primary's view of its standbys: how many stream, and each one's lag under a label no
/// other standby shares.
fn primary_samples(out: &mut Output, rows: &[Row], source: &str) {
    let streaming = rows
        .iter()
        .filter(|r| text(r, "state") == "streaming")
        .count();
    out.add(&STREAMING_STANDBYS, &[source], streaming as f64);
    let ids: Vec<StandbyId> = rows
        .iter()
        .map(|r| StandbyId {
            name: text(r, "standby"),
            client: text(r, "client"),
            slot: Some(text(r, "slot")).filter(|s| !s.is_empty()),
            pid: num(r, "pid").unwrap_or(0.0) as i32,
        })
        .collect();
    for (row, standby) in rows.iter().zip(standby_labels(&ids)) {
        let labels = [source, standby.as_str()];
        if let Some(v) = num(row, "lag_seconds") {
            out.add(&STANDBY_LAG_SECONDS, &labels, v);
        }
        if let Some(v) = num(row, "lag_bytes") {
            out.add(&STANDBY_LAG_BYTES, &labels, v);
        }
    }
}

/// Runs a query whose view or function the server or the role may lack: such an error gives
/// no rows (logged at debug); any other, such as a lost connection, fails the probe.
async fn optional(
    conn: &mut PgConnection,
    sql: &str,
    source: &str,
) -> Result<Vec<Row>, sqlx::Error> {
    match sqlx::query(sql).fetch_all(&mut *conn).await {
        Ok(rows) => Ok(rows.iter().map(read_row).collect()),
        Err(sqlx::Error::Database(db)) if unavailable(db.code().as_deref()) => {
            tracing::debug!(source, error = %crate::secrets::scrub(db.message()), "health statistic unavailable");
            Ok(Vec::new())
        }
        Err(e) => Err(e),
    }
}

/// SQLSTATEs that mean "not here" rather than "broken": no such view, column or function, or
/// no privilege (class 42), not supported (0A), not in this state, e.g. during recovery (55).
fn unavailable(code: Option<&str>) -> bool {
    code.is_some_and(|c| ["42", "0A", "55"].iter().any(|class| c.starts_with(class)))
}

#[cfg(test)]
mod tests {
    use super::{samples, Fetched, Row, Value};

    /// A row from `(column, value)` pairs; a column left out is NULL.
    fn row(values: &[(&str, Value)]) -> Row {
        values
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    }

    fn n(v: f64) -> Value {
        Value::Number(v)
    }

    fn t(v: &str) -> Value {
        Value::Text(v.to_owned())
    }

    /// Every sample as `name{label=value,…} value`, sorted.
    fn lines(f: &Fetched, slot_wal_limit: u64) -> Vec<String> {
        let mut out: Vec<String> = samples(f, "db", slot_wal_limit)
            .families
            .iter()
            .flat_map(|family| {
                family.samples.iter().map(move |s| {
                    let labels: Vec<String> =
                        s.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    format!("{}{{{}}} {}", family.name, labels.join(","), s.value)
                })
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn a_primary_s_rows_become_its_vitals_and_nulls_publish_nothing() {
        let fetched = Fetched {
            vitals: row(&[
                ("max_connections", n(100.0)),
                ("lock_slots", n(6400.0)),
                ("slot_keep_bytes", n(1e9)),
                ("database_size", n(8e6)),
                ("database", t("app")),
                ("start_time", n(1.7e9)),
                ("in_recovery", Value::Flag(false)),
                // reserved_connections, oldest_query and oldest_xact are NULL.
            ]),
            states: vec![
                row(&[("state", t("active")), ("n", n(3.0))]),
                row(&[("state", t("idle"))]),
            ],
            standbys: vec![
                // Two pg_basebackup -R standbys: both `walreceiver`, told apart by address.
                row(&[
                    ("standby", t("walreceiver")),
                    ("client", t("10.0.0.2")),
                    ("state", t("streaming")),
                    ("pid", n(41.0)),
                    ("lag_bytes", n(0.0)),
                    ("lag_seconds", n(0.0)),
                ]),
                row(&[
                    ("standby", t("walreceiver")),
                    ("client", t("10.0.0.3")),
                    ("state", t("catchup")),
                    ("pid", n(42.0)),
                    ("lag_bytes", n(12e6)),
                ]),
            ],
            slots: vec![row(&[
                ("slot", t("s1")),
                ("slot_type", t("physical")),
                ("active", Value::Flag(false)),
                ("retained", n(-5.0)),
            ])],
            databases: vec![row(&[
                ("database", t("app")),
                ("wraparound", n(0.1)),
                ("commits", n(10.0)),
                ("deadlocks", n(1.0)),
            ])],
            locks: vec![row(&[("waiting", n(2.0)), ("locks", n(50.0))])],
            checkpoints: vec![row(&[("timed", n(7.0)), ("requested", n(1.0))])],
            ..Fetched::default()
        };
        assert_eq!(
            lines(&fetched, 2_000_000_000),
            [
                "pulse_postgres_checkpoints_total{source=db,trigger=requested} 1",
                "pulse_postgres_checkpoints_total{source=db,trigger=timed} 7",
                "pulse_postgres_connections{source=db,state=active} 3",
                // A count the server left NULL is 0, not absent.
                "pulse_postgres_connections{source=db,state=idle} 0",
                "pulse_postgres_database_size_bytes{source=db,database=app} 8000000",
                "pulse_postgres_database_wraparound_ratio{source=db,database=app} 0.1",
                "pulse_postgres_deadlocks_total{source=db,database=app} 1",
                "pulse_postgres_in_recovery{source=db} 0",
                "pulse_postgres_lock_table_slots{source=db} 6400",
                "pulse_postgres_lock_waiting_sessions{source=db} 2",
                "pulse_postgres_locks{source=db} 50",
                "pulse_postgres_max_connections{source=db} 100",
                // A slot that retains less than nothing retains nothing.
                "pulse_postgres_replication_slot_active{source=db,slot=s1,slot_type=physical} 0",
                "pulse_postgres_replication_slot_retained_wal_bytes{source=db,slot=s1,slot_type=physical} 0",
                // The server's max_slot_wal_keep_size binds before the configured limit.
                "pulse_postgres_replication_slot_wal_limit_bytes{source=db} 1000000000",
                "pulse_postgres_standby_replay_lag_bytes{source=db,standby=walreceiver@10.0.0.2} 0",
                "pulse_postgres_standby_replay_lag_bytes{source=db,standby=walreceiver@10.0.0.3} 12000000",
                "pulse_postgres_standby_replay_lag_seconds{source=db,standby=walreceiver@10.0.0.2} 0",
                "pulse_postgres_start_timestamp_seconds{source=db} 1700000000",
                "pulse_postgres_streaming_standbys{source=db} 1",
                "pulse_postgres_transactions_total{source=db,database=app,outcome=commit} 10",
            ]
        );
    }

    #[test]
    fn a_standby_s_rows_become_its_own_lag_and_receiver() {
        let fetched = Fetched {
            vitals: row(&[("in_recovery", Value::Flag(true))]),
            standby: vec![row(&[
                ("lag_seconds", n(4.5)),
                ("lag_bytes", n(1024.0)),
                ("streaming", n(1.0)),
            ])],
            // Rows a primary would have are not read as a standby's.
            standbys: vec![row(&[("standby", t("x")), ("lag_bytes", n(1.0))])],
            ..Fetched::default()
        };
        assert_eq!(
            lines(&fetched, 1000),
            [
                "pulse_postgres_in_recovery{source=db} 1",
                "pulse_postgres_replication_lag_bytes{source=db} 1024",
                "pulse_postgres_replication_lag_seconds{source=db} 4.5",
                // Without the server's own limit, the configured one.
                "pulse_postgres_replication_slot_wal_limit_bytes{source=db} 1000",
                "pulse_postgres_wal_receiver_streaming{source=db} 1",
            ]
        );
    }

    /// Each version's slot columns, and what an SRE reads from them: the WAL state as a state
    /// set, the reason a slot was invalidated (17's own, or `lost` read as `wal_removed`),
    /// nothing of the WAL where the server says nothing of it.
    #[test]
    fn slots_say_their_wal_state_and_why_they_were_invalidated() {
        let slot = |name: &str, extra: &[(&str, Value)]| {
            let mut r = row(&[("slot", t(name)), ("slot_type", t("physical"))]);
            r.extend(row(extra));
            r
        };
        let fetched = Fetched {
            slots: vec![
                // 17+: invalidated by the idle timeout of 18, its WAL still there.
                slot(
                    "idle",
                    &[
                        ("wal_status", t("reserved")),
                        ("invalidation", t("idle_timeout")),
                    ],
                ),
                // 13 to 16: lost, with no reason column.
                slot("lost", &[("wal_status", t("lost"))]),
                slot(
                    "near",
                    &[("wal_status", t("unreserved")), ("safe_wal", n(-1e6))],
                ),
                // 12 and older: nothing said of the WAL.
                slot("old", &[("retained", n(5.0))]),
                // A state no version has yet.
                slot("odd", &[("wal_status", t("frozen"))]),
            ],
            ..Fetched::default()
        };
        let slots: Vec<String> = lines(&fetched, 1)
            .into_iter()
            .filter(|l| l.contains("_slot_") && !l.contains("slot_active") && !l.contains("limit"))
            .map(|l| {
                l.replace("pulse_postgres_replication_slot_", "")
                    .replace(",slot_type=physical", "")
            })
            .collect();
        assert_eq!(
            slots,
            [
                "invalidated{source=db,slot=idle,reason=idle_timeout} 1",
                "invalidated{source=db,slot=lost,reason=wal_removed} 1",
                "invalidated{source=db,slot=near,reason=} 0",
                "invalidated{source=db,slot=odd,reason=} 0",
                "retained_wal_bytes{source=db,slot=old} 5",
                "safe_wal_bytes{source=db,slot=near} -1000000",
                "wal_status{source=db,slot=idle,status=extended} 0",
                "wal_status{source=db,slot=idle,status=lost} 0",
                "wal_status{source=db,slot=idle,status=reserved} 1",
                "wal_status{source=db,slot=idle,status=unreserved} 0",
                "wal_status{source=db,slot=lost,status=extended} 0",
                "wal_status{source=db,slot=lost,status=lost} 1",
                "wal_status{source=db,slot=lost,status=reserved} 0",
                "wal_status{source=db,slot=lost,status=unreserved} 0",
                "wal_status{source=db,slot=near,status=extended} 0",
                "wal_status{source=db,slot=near,status=lost} 0",
                "wal_status{source=db,slot=near,status=reserved} 0",
                "wal_status{source=db,slot=near,status=unreserved} 1",
                "wal_status{source=db,slot=odd,status=extended} 0",
                "wal_status{source=db,slot=odd,status=frozen} 1",
                "wal_status{source=db,slot=odd,status=lost} 0",
                "wal_status{source=db,slot=odd,status=reserved} 0",
                "wal_status{source=db,slot=odd,status=unreserved} 0",
            ]
        );
    }

    /// The columns each version has: `invalidation_reason` from 17, `conflicting` in 16 only
    /// (17 keeps it, but its reason says more), `wal_status` from 13, none of them before.
    #[test]
    fn the_slots_query_asks_each_version_for_its_own_columns() {
        let sql = super::slots_sql;
        assert!(sql(180_004).contains("invalidation_reason::text AS invalidation"));
        assert!(sql(170_000).contains("invalidation_reason"));
        assert!(
            sql(160_014).contains("conflicting") && !sql(160_014).contains("invalidation_reason")
        );
        assert!(sql(130_000).contains("wal_status") && !sql(130_000).contains("conflicting"));
        assert!(!sql(120_000).contains("wal_status") && !sql(120_000).contains("{extra}"));
    }

    #[test]
    fn missing_views_and_privileges_are_absent_and_the_rest_fails() {
        for code in ["42501", "42P01", "42883", "0A000", "55000"] {
            assert!(super::unavailable(Some(code)), "{code}");
        }
        // A cancelled statement (timeout), a lost connection or a shutdown fail the probe.
        for code in ["57014", "08006", "57P01"] {
            assert!(!super::unavailable(Some(code)), "{code}");
        }
        assert!(!super::unavailable(None));
    }

    #[test]
    fn twin_standbys_never_share_a_label() {
        let id = |name: &str, client: &str, slot: Option<&str>, pid: i32| super::StandbyId {
            name: name.to_owned(),
            client: client.to_owned(),
            slot: slot.map(str::to_owned),
            pid,
        };
        // Unique names stay as they are; shared ones take the address, then the slot, then
        // the walsender's PID, whichever first tells them apart.
        let labels = super::standby_labels(&[
            id("replica-a", "10.0.0.5", None, 10),
            id("walreceiver", "10.0.0.6", None, 11),
            id("walreceiver", "10.0.0.7", None, 12),
            id("walreceiver", "10.0.0.8", Some("s1"), 13),
            id("walreceiver", "10.0.0.8", Some("s2"), 14),
            id("walreceiver", "local", None, 15),
            id("walreceiver", "local", None, 16),
        ]);
        assert_eq!(
            labels,
            [
                "replica-a",
                "walreceiver@10.0.0.6",
                "walreceiver@10.0.0.7",
                "walreceiver@10.0.0.8/s1",
                "walreceiver@10.0.0.8/s2",
                "walreceiver@local#15",
                "walreceiver@local#16",
            ]
        );
        let mut unique = labels.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), labels.len());
    }

    #[test]
    fn a_connection_closed_while_idle_is_retried_and_a_failing_server_is_not() {
        let io = sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::BrokenPipe));
        assert!(super::closed_by_server(&io));
        assert!(super::closed_by_server(&sqlx::Error::Protocol(
            "unexpected end of stream".into()
        )));
        assert!(!super::closed_by_server(&sqlx::Error::RowNotFound));
        assert!(!super::closed_by_server(&sqlx::Error::PoolTimedOut));
    }
}
