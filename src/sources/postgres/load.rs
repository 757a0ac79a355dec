//! Database load: what the sessions of a Postgres server are doing right now, sampled every
//! second from `pg_stat_activity`, as Performance Insights' "DB load" does.
//!
//! Each sample reads the active sessions (client backends, autovacuum and parallel workers),
//! the idle-in-transaction ones and the blockers of any session waiting on a lock, in one
//! query on the health probe's connection: no connection more per source (a fleet of leased
//! targets would double its connections otherwise), and a busy check pool never delays it. A
//! sample waits at most for a health probe in flight. What it publishes:
//!
//! - **active-session seconds**, counters: each sample adds the sessions seen times the time
//!   since the previous sample, by database, backend type and wait event (no wait event is
//!   `CPU`), and by statement (`query_id`, Postgres 14+ with `compute_query_id`), so that
//!   `rate()` over any window is the average number of active sessions: the DB load;
//! - the **idle-in-transaction** sessions and the age of the oldest, by database and
//!   application;
//! - the **root blockers** (see [`super::blockers`]): how many sessions wait behind each, the
//!   longest wait, the lock waited for, the blocker's state, application, user and statement.
//!
//! Every label set is bounded: past `top_waits` wait series and `top_statements` statements,
//! sessions count in an `other` series; a series unseen for an hour makes room. No pid and no
//! query text is ever a label (a statement's text comes from the `statements` check's
//! `pulse_postgres_statement_info`). A gap of more than three intervals between samples (a
//! failed read, a stalled exporter) adds nothing: a sample does not speak for time it did not
//! see.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant as StdInstant};

use serde::Deserialize;
use sqlx::postgres::{PgConnectOptions, PgRow};
use sqlx::{Acquire as _, PgConnection, Row as _};
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::blockers::{roots, Identity, Session};
use super::health::Taken;
use super::metrics::{
    BLOCKER_DIRECT, BLOCKER_LIMIT, BLOCKER_LONGEST_WAIT, BLOCKER_WAITING, IDLE_IN_TRANSACTION,
    IDLE_IN_TRANSACTION_OLDEST, LOAD_ACTIVE_SECONDS, LOAD_ALL_VISIBLE, LOAD_CPUS,
    LOAD_HELD_SECONDS, LOAD_ROWS_CUT, LOAD_SAMPLED_SECONDS, LOAD_SAMPLES, LOAD_STATEMENT_SECONDS,
};
use super::session::server_budget;
use crate::config_core::validate::{in_range, sampler_timing};
use crate::config_core::{ConfigError, Dur};
use crate::series::run_error::RunError;
use crate::series::sample::Output;
use crate::sources::bounded::Bounded;
use crate::sources::{RunFuture, Runnable};

/// The name of the built-in check.
pub const CHECK: &str = "load";

/// `load:` of a Postgres source: database load sampled from `pg_stat_activity`. On by
/// default; `false` turns it off.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct LoadSettings {
    /// How often a sample is taken (default 1s; 1s to 1m). Each is one light query on a
    /// connection of its own.
    pub interval: Dur,
    /// How long one sample may take before it is cancelled, on the server too (default
    /// 800ms; shorter than the interval).
    pub timeout: Dur,
    /// Most sessions one sample reads (default 1000; 10 to 100000): the longest-running
    /// first; the rest are counted in `pulse_postgres_load_rows_cut_total`.
    pub max_rows: usize,
    /// Series of active-session seconds by database, backend type and wait event (default
    /// 30; 1 to 200); past it, sessions count in `wait_event="other"`.
    pub top_waits: usize,
    /// Statements with a series of their own (default 20; 1 to 200); past it, `queryid="other"`.
    pub top_statements: usize,
    /// Root blockers published (default 5; 1 to 50), the most sessions behind first; the rest
    /// add up in `application="other"`.
    pub top_blockers: usize,
    /// The CPUs the database server has: database load above it for 15 minutes warns
    /// (PulsePostgresLoadHigh). Unset: no such alert.
    pub cpus: Option<f64>,
    /// Sessions waiting behind one root blocker for a minute that make
    /// PulsePostgresBlockerQueue fire: a page on a source of `tier` primary or queue, a
    /// warning otherwise (default 5; 1 to 10000).
    pub blocked_sessions: u64,
}

impl Default for LoadSettings {
    fn default() -> Self {
        LoadSettings {
            interval: Dur(Duration::from_secs(1)),
            timeout: Dur(Duration::from_millis(800)),
            max_rows: 1000,
            top_waits: 30,
            top_statements: 20,
            top_blockers: 5,
            cpus: None,
            blocked_sessions: 5,
        }
    }
}

impl LoadSettings {
    /// Records what is wrong with these settings, at `path`.
    pub fn validate(&self, path: &str, errors: &mut Vec<ConfigError>) {
        sampler_timing(path, self.interval.0, self.timeout.0, errors);
        in_range(
            &format!("{path}.max_rows"),
            self.max_rows as u64,
            10,
            100_000,
            errors,
        );
        in_range(
            &format!("{path}.top_waits"),
            self.top_waits as u64,
            1,
            200,
            errors,
        );
        in_range(
            &format!("{path}.top_statements"),
            self.top_statements as u64,
            1,
            200,
            errors,
        );
        in_range(
            &format!("{path}.top_blockers"),
            self.top_blockers as u64,
            1,
            50,
            errors,
        );
        in_range(
            &format!("{path}.blocked_sessions"),
            self.blocked_sessions,
            1,
            10_000,
            errors,
        );
        if let Some(cpus) = self.cpus {
            if !(cpus > 0.0 && cpus <= 4096.0) {
                errors.push(ConfigError::new(
                    format!("{path}.cpus"),
                    format!("{cpus} is not a CPU count: use the server's, above 0 (at most 4096)"),
                ));
            }
        }
    }
}

/// Active-session seconds by database, backend type, wait event type and wait event.
type WaitKey = (String, String, String, String);

/// What the probe keeps between samples.
#[derive(Debug)]
pub(super) struct LoadState {
    last: Option<StdInstant>,
    waits: Bounded<WaitKey>,
    statements: Bounded<(String, String)>,
    /// Client-session seconds inside a statement or transaction, by database and whom they
    /// waited on.
    held: Bounded<(String, String)>,
    samples: u64,
    sampled_seconds: f64,
    rows_cut: u64,
    /// Whether the role sees every session's state (superuser or `pg_read_all_stats`), and
    /// when that was last asked.
    sees_all: Option<(bool, StdInstant)>,
}

impl LoadState {
    /// The state of a sampler whose URL names `database`: its client sessions on CPU and its
    /// `other` statements are published at 0 from the first sample, so an idle database
    /// shows no load rather than no data.
    pub(super) fn new(settings: &LoadSettings, database: &str) -> Self {
        let (db, cpu, other) = (database.to_owned(), "CPU".to_owned(), "other".to_owned());
        LoadState {
            last: None,
            waits: Bounded::new(
                settings.top_waits,
                vec![(db.clone(), "client".to_owned(), cpu.clone(), cpu)],
            ),
            statements: Bounded::new(settings.top_statements, vec![(db.clone(), other)]),
            held: Bounded::new(
                settings.top_waits,
                ["client", "server"]
                    .map(|on| (db.clone(), on.to_owned()))
                    .to_vec(),
            ),
            samples: 0,
            sampled_seconds: 0.0,
            rows_cut: 0,
            sees_all: None,
        }
    }
}

/// The probe of the built-in `load` check.
pub(super) struct LoadProbe {
    pub(super) source: String,
    pub(super) options: PgConnectOptions,
    /// The health probe's connection, shared.
    pub(super) conn: Arc<Mutex<Option<PgConnection>>>,
    pub(super) settings: LoadSettings,
    pub(super) state: Mutex<LoadState>,
}

/// One session seen in a sample.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Seen {
    pub pid: i32,
    pub database: String,
    pub user: String,
    pub application: String,
    pub backend: String,
    pub state: String,
    pub wait_event_type: Option<String>,
    pub wait_event: Option<String>,
    pub queryid: Option<i64>,
    pub state_seconds: Option<f64>,
    pub query_seconds: Option<f64>,
    pub blocked_by: Vec<i32>,
    pub mode: Option<String>,
    pub relation: Option<String>,
}

/// The backend types that make load, as the label names them; other types (the
/// checkpointer, the WAL writer, …) wait for work most of the time and are left out.
fn backend_label(backend: &str, state: &str) -> Option<&'static str> {
    match backend {
        "client backend" if matches!(state, "active" | "fastpath function call") => Some("client"),
        "autovacuum worker" => Some("autovacuum"),
        "parallel worker" if state == "active" => Some("parallel"),
        _ => None,
    }
}

/// The sample's SQL: `query_id` where the server has it (Postgres 14+).
fn sample_sql(version: u32) -> String {
    let queryid = if version >= 140_000 {
        "query_id"
    } else {
        "NULL::int8"
    };
    format!(
        "WITH s AS (\
           SELECT pid, coalesce(datname::text, '') AS database, coalesce(usename::text, '') AS usr, \
             coalesce(application_name, '') AS app, coalesce(backend_type, '') AS backend, \
             coalesce(state, '') AS state, wait_event_type, wait_event, {queryid} AS queryid, \
             extract(epoch FROM clock_timestamp() - state_change)::float8 AS state_seconds, \
             extract(epoch FROM clock_timestamp() - query_start)::float8 AS query_seconds \
           FROM pg_stat_activity WHERE pid <> pg_backend_pid()), \
         w AS (SELECT pid, pg_blocking_pids(pid) AS blockers FROM s WHERE wait_event_type = 'Lock'), \
         b AS (SELECT DISTINCT unnest(blockers) AS pid FROM w) \
         SELECT s.*, w.blockers, l.mode, l.relation, count(*) OVER () AS total \
         FROM s LEFT JOIN w USING (pid) \
         LEFT JOIN LATERAL (SELECT mode, coalesce(relation::regclass::text, locktype) AS relation \
           FROM pg_locks WHERE pg_locks.pid = s.pid AND NOT granted LIMIT 1) l ON w.pid IS NOT NULL \
         WHERE s.state IN ('active', 'fastpath function call', 'idle in transaction', \
           'idle in transaction (aborted)') OR s.backend = 'autovacuum worker' \
           OR s.pid IN (SELECT pid FROM b) \
         ORDER BY s.query_seconds DESC NULLS LAST LIMIT $1"
    )
}

impl Runnable for LoadProbe {
    fn run(&self, deadline: Instant) -> RunFuture<'_> {
        Box::pin(async move {
            let mut state = self.state.lock().await;
            let sample = self.read(&mut state, deadline).await;
            let now = StdInstant::now();
            let rows = match sample {
                Ok(rows) => rows,
                Err(e) => {
                    // The next sample does not speak for the time this one missed.
                    state.last = None;
                    return Err(e);
                }
            };
            let dt = match state.last {
                Some(last) if now.duration_since(last) <= self.settings.interval.0 * 3 => {
                    now.duration_since(last).as_secs_f64()
                }
                _ => 0.0,
            };
            state.last = Some(now);
            accumulate(&mut state, &rows, dt, now);
            let mut out = Output::default();
            publish(&mut out, &self.source, &state, &self.settings, &rows);
            Ok(out)
        })
    }
}

impl LoadProbe {
    /// One sample on the connection shared with the health probe (see [`Taken`]).
    async fn read(&self, state: &mut LoadState, deadline: Instant) -> Result<Vec<Seen>, RunError> {
        let (settings, source) = (&self.settings, self.source.as_str());
        let mut taken = Taken::take(&self.conn, &self.options, deadline).await?;
        let mut result = sample(&mut taken.conn, state, settings, source, deadline).await;
        if let Err(e) = &result {
            if taken.reconnected_after(e, source).await? {
                result = sample(&mut taken.conn, state, settings, source, deadline).await;
            }
        }
        taken.finish(result)
    }
}

/// Reads one sample in a read-only transaction bounded by `deadline` on the server too.
async fn sample(
    conn: &mut PgConnection,
    state: &mut LoadState,
    settings: &LoadSettings,
    source: &str,
    deadline: Instant,
) -> Result<Vec<Seen>, sqlx::Error> {
    let version = conn.server_version_num().unwrap_or(0);
    let mut tx = conn.begin().await?;
    sqlx::query("SET TRANSACTION READ ONLY")
        .execute(&mut *tx)
        .await?;
    sqlx::query("SELECT set_config('statement_timeout', $1, true)")
        .bind(server_budget(deadline).as_millis().to_string())
        .execute(&mut *tx)
        .await?;
    let ask = match state.sees_all {
        Some((_, at)) => at.elapsed() > Duration::from_secs(60),
        None => true,
    };
    if ask {
        let sees: bool = sqlx::query_scalar(
            "SELECT coalesce((SELECT rolsuper FROM pg_roles WHERE rolname = current_user), false) \
             OR pg_has_role(current_user, 'pg_read_all_stats', 'MEMBER')",
        )
        .fetch_one(&mut *tx)
        .await?;
        if !sees && state.sees_all.is_none() {
            tracing::warn!(source, "the role may not see other roles' sessions (neither superuser nor a member of pg_read_all_stats, as pg_monitor is): database load and blockers count its own sessions only; GRANT pg_monitor TO the exporter's role");
        }
        state.sees_all = Some((sees, StdInstant::now()));
    }
    let rows = sqlx::query(&sample_sql(version))
        .bind(settings.max_rows as i64)
        .fetch_all(&mut *tx)
        .await?;
    tx.rollback().await?;
    let mut out = Vec::with_capacity(rows.len());
    let mut total = 0i64;
    for row in &rows {
        total = row.try_get("total")?;
        out.push(seen(row)?);
    }
    state.rows_cut += (total as u64).saturating_sub(out.len() as u64);
    Ok(out)
}

/// A row of the sample's query.
fn seen(row: &PgRow) -> Result<Seen, sqlx::Error> {
    Ok(Seen {
        pid: row.try_get("pid")?,
        database: row.try_get("database")?,
        user: row.try_get("usr")?,
        application: row.try_get("app")?,
        backend: row.try_get("backend")?,
        state: row.try_get("state")?,
        wait_event_type: row.try_get("wait_event_type")?,
        wait_event: row.try_get("wait_event")?,
        queryid: row.try_get("queryid")?,
        state_seconds: row.try_get("state_seconds")?,
        query_seconds: row.try_get("query_seconds")?,
        blocked_by: row
            .try_get::<Option<Vec<i32>>, _>("blockers")?
            .unwrap_or_default(),
        mode: row.try_get("mode")?,
        relation: row.try_get("relation")?,
    })
}

/// Adds one sample, `dt` seconds after the previous one, to the counters.
fn accumulate(state: &mut LoadState, rows: &[Seen], dt: f64, now: StdInstant) {
    state.samples += 1;
    state.sampled_seconds += dt;
    if dt > 0.0 {
        for r in rows {
            if let Some(on) = waiting_on(r) {
                let fallback = ("other".to_owned(), on.to_owned());
                state
                    .held
                    .add((r.database.clone(), on.to_owned()), &[fallback], dt, now);
            }
            let Some(backend) = backend_label(&r.backend, &r.state) else {
                continue;
            };
            let (kind, event) = match (&r.wait_event_type, &r.wait_event) {
                (Some(t), Some(e)) => (t.clone(), e.clone()),
                (Some(t), None) => (t.clone(), t.clone()),
                _ => ("CPU".to_owned(), "CPU".to_owned()),
            };
            let db = r.database.clone();
            let other = "other".to_owned();
            state.waits.add(
                (db.clone(), backend.to_owned(), kind, event),
                &[
                    (db.clone(), backend.to_owned(), other.clone(), other.clone()),
                    (other.clone(), other.clone(), other.clone(), other.clone()),
                ],
                dt,
                now,
            );
            if backend == "client" {
                let id = r
                    .queryid
                    .filter(|q| *q != 0)
                    .map_or_else(|| "unknown".to_owned(), |q| q.to_string());
                state.statements.add(
                    (db.clone(), id),
                    &[(db, other.clone()), (other.clone(), other)],
                    dt,
                    now,
                );
            }
        }
    }
    state.waits.forget(now);
    state.statements.forget(now);
    state.held.forget(now);
}

/// Whom a client session inside a statement or transaction waits on: `client` when idle in
/// its transaction or waiting for the client to send or take data, `server` otherwise; None
/// for a session outside any (idle) or not a client's.
fn waiting_on(r: &Seen) -> Option<&'static str> {
    if r.backend != "client backend" {
        return None;
    }
    match r.state.as_str() {
        s if s.starts_with("idle in transaction") => Some("client"),
        "active" | "fastpath function call" if r.wait_event_type.as_deref() == Some("Client") => {
            Some("client")
        }
        "active" | "fastpath function call" => Some("server"),
        _ => None,
    }
}

/// The sample's series: the counters so far, and the idle-in-transaction sessions and root
/// blockers of this sample.
fn publish(
    out: &mut Output,
    source: &str,
    state: &LoadState,
    settings: &LoadSettings,
    rows: &[Seen],
) {
    out.add(&LOAD_SAMPLES, &[source], state.samples as f64);
    out.add(&LOAD_SAMPLED_SECONDS, &[source], state.sampled_seconds);
    out.add(&LOAD_ROWS_CUT, &[source], state.rows_cut as f64);
    if let Some((sees, _)) = state.sees_all {
        out.add(&LOAD_ALL_VISIBLE, &[source], if sees { 1.0 } else { 0.0 });
    }
    if let Some(cpus) = settings.cpus {
        out.add(&LOAD_CPUS, &[source], cpus);
    }
    out.add(&BLOCKER_LIMIT, &[source], settings.blocked_sessions as f64);
    let mut waits: Vec<_> = state.waits.values.iter().collect();
    waits.sort_by(|a, b| a.0.cmp(b.0));
    for ((db, backend, kind, event), (seconds, _)) in waits {
        out.add(
            &LOAD_ACTIVE_SECONDS,
            &[source, db, backend, kind, event],
            *seconds,
        );
    }
    let mut statements: Vec<_> = state.statements.values.iter().collect();
    statements.sort_by(|a, b| a.0.cmp(b.0));
    for ((db, id), (seconds, _)) in statements {
        out.add(&LOAD_STATEMENT_SECONDS, &[source, db, id], *seconds);
    }
    let mut held: Vec<_> = state.held.values.iter().collect();
    held.sort_by(|a, b| a.0.cmp(b.0));
    for ((db, on), (seconds, _)) in held {
        out.add(&LOAD_HELD_SECONDS, &[source, db, on], *seconds);
    }
    idle_in_transaction(out, source, rows, settings.top_statements.min(20));
    blockers(out, source, rows, settings.top_blockers);
}

/// Idle-in-transaction sessions by database and application, the oldest first; past `top`
/// pairs, the rest add up in `other`.
fn idle_in_transaction(out: &mut Output, source: &str, rows: &[Seen], top: usize) {
    let mut by: HashMap<(String, String), (usize, f64)> = HashMap::new();
    for r in rows
        .iter()
        .filter(|r| r.state.starts_with("idle in transaction"))
    {
        let e = by
            .entry((r.database.clone(), r.application.clone()))
            .or_insert((0, 0.0));
        e.0 += 1;
        e.1 = e.1.max(r.state_seconds.unwrap_or(0.0).max(0.0));
    }
    let mut pairs: Vec<_> = by.into_iter().collect();
    pairs.sort_by(|a, b| b.1 .1.total_cmp(&a.1 .1).then_with(|| a.0.cmp(&b.0)));
    let mut rest = (0usize, 0.0f64);
    for (i, ((db, app), (n, oldest))) in pairs.into_iter().enumerate() {
        if i < top {
            out.add(&IDLE_IN_TRANSACTION, &[source, &db, &app], n as f64);
            out.add(&IDLE_IN_TRANSACTION_OLDEST, &[source, &db, &app], oldest);
        } else {
            rest = (rest.0 + n, rest.1.max(oldest));
        }
    }
    if rest.0 > 0 {
        out.add(
            &IDLE_IN_TRANSACTION,
            &[source, "other", "other"],
            rest.0 as f64,
        );
        out.add(
            &IDLE_IN_TRANSACTION_OLDEST,
            &[source, "other", "other"],
            rest.1,
        );
    }
}

/// The `top` root blockers of the sample, the rest added up as `application="other"`.
fn blockers(out: &mut Output, source: &str, rows: &[Seen], top: usize) {
    let sessions: Vec<Session> = rows
        .iter()
        .map(|r| Session {
            pid: r.pid,
            blocked_by: r.blocked_by.clone(),
            waiting_seconds: r.query_seconds.unwrap_or(0.0).max(0.0),
            mode: r.mode.clone(),
            relation: r.relation.clone(),
            identity: Identity {
                database: r.database.clone(),
                user: r.user.clone(),
                application: r.application.clone(),
                state: r.state.clone(),
                queryid: r
                    .queryid
                    .filter(|q| *q != 0)
                    .map(|q| q.to_string())
                    .unwrap_or_default(),
            },
        })
        .collect();
    let all = roots(&sessions);
    let mut rest: Option<(usize, usize, f64)> = None;
    for (i, root) in all.into_iter().enumerate() {
        if i >= top {
            let r = rest.get_or_insert((0, 0, 0.0));
            *r = (
                r.0 + root.direct,
                r.1 + root.behind,
                r.2.max(root.longest_wait),
            );
            continue;
        }
        let id = &root.identity;
        let labels = [
            source,
            id.database.as_str(),
            id.user.as_str(),
            id.application.as_str(),
            id.state.as_str(),
            id.queryid.as_str(),
            root.mode.as_str(),
            root.relation.as_str(),
        ];
        out.add(&BLOCKER_WAITING, &labels, root.behind as f64);
        out.add(&BLOCKER_DIRECT, &labels, root.direct as f64);
        out.add(&BLOCKER_LONGEST_WAIT, &labels, root.longest_wait);
    }
    if let Some((direct, behind, longest)) = rest {
        let labels = [source, "other", "other", "other", "other", "", "", ""];
        out.add(&BLOCKER_WAITING, &labels, behind as f64);
        out.add(&BLOCKER_DIRECT, &labels, direct as f64);
        out.add(&BLOCKER_LONGEST_WAIT, &labels, longest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(pid: i32, state: &str, wait: Option<(&str, &str)>, queryid: Option<i64>) -> Seen {
        Seen {
            pid,
            database: "app".into(),
            user: "app".into(),
            application: "web".into(),
            backend: "client backend".into(),
            state: state.into(),
            wait_event_type: wait.map(|w| w.0.to_owned()),
            wait_event: wait.map(|w| w.1.to_owned()),
            queryid,
            state_seconds: Some(5.0),
            query_seconds: Some(5.0),
            ..Seen::default()
        }
    }

    fn value(out: &Output, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        out.labelled_one(name, labels)
    }

    /// Each sample adds the sessions seen times the time since the last one: no wait event
    /// is CPU, idle in transaction is no load, and the first sample is a baseline.
    #[test]
    fn active_session_seconds_add_up_by_wait_and_statement() {
        let settings = LoadSettings::default();
        let mut state = LoadState::new(&settings, "app");
        let rows = vec![
            row(1, "active", Some(("Timeout", "PgSleep")), Some(7)),
            row(2, "active", Some(("Timeout", "PgSleep")), Some(7)),
            row(3, "active", None, Some(-9)),
            row(
                4,
                "idle in transaction",
                Some(("Client", "ClientRead")),
                None,
            ),
        ];
        let t0 = StdInstant::now();
        accumulate(&mut state, &rows, 0.0, t0);
        accumulate(&mut state, &rows, 0.5, t0);
        accumulate(&mut state, &rows, 1.5, t0);
        let mut out = Output::default();
        publish(&mut out, "db", &state, &settings, &rows);
        let wait = |t: &str| {
            value(
                &out,
                LOAD_ACTIVE_SECONDS.name,
                &[("wait_event_type", t), ("backend", "client")],
            )
        };
        assert_eq!(wait("Timeout"), Some(4.0));
        assert_eq!(wait("CPU"), Some(2.0));
        assert_eq!(wait("Client"), None, "idle in transaction is no load");
        assert_eq!(
            value(&out, LOAD_STATEMENT_SECONDS.name, &[("queryid", "7")]),
            Some(4.0)
        );
        assert_eq!(value(&out, LOAD_SAMPLED_SECONDS.name, &[]), Some(2.0));
        assert_eq!(
            value(&out, IDLE_IN_TRANSACTION.name, &[("application", "web")]),
            Some(1.0)
        );
        assert_eq!(
            value(
                &out,
                IDLE_IN_TRANSACTION_OLDEST.name,
                &[("application", "web")]
            ),
            Some(5.0)
        );
    }

    /// Held sessions split by whom they wait on: idle in transaction and a Client wait are
    /// the client's, CPU and every other wait the server's; idle sessions and workers are
    /// neither. An idle database reads 0 for both from the first sample.
    #[test]
    fn held_sessions_are_split_between_client_and_server() {
        let settings = LoadSettings::default();
        let mut state = LoadState::new(&settings, "app");
        let mut out = Output::default();
        publish(&mut out, "db", &state, &settings, &[]);
        let held = |out: &Output, on: &str| {
            value(
                out,
                LOAD_HELD_SECONDS.name,
                &[("database", "app"), ("waiting_on", on)],
            )
        };
        assert_eq!(
            (held(&out, "client"), held(&out, "server")),
            (Some(0.0), Some(0.0))
        );
        let mut vacuum = row(5, "active", None, None);
        vacuum.backend = "autovacuum worker".into();
        let rows = vec![
            row(
                1,
                "idle in transaction",
                Some(("Client", "ClientRead")),
                None,
            ),
            row(
                2,
                "idle in transaction (aborted)",
                Some(("Client", "ClientRead")),
                None,
            ),
            row(3, "active", Some(("Client", "ClientWrite")), Some(1)),
            row(4, "active", Some(("Lock", "relation")), Some(1)),
            row(6, "active", None, Some(1)),
            row(7, "idle", Some(("Client", "ClientRead")), None),
            vacuum,
        ];
        let t0 = StdInstant::now();
        accumulate(&mut state, &rows, 2.0, t0);
        let mut out = Output::default();
        publish(&mut out, "db", &state, &settings, &rows);
        assert_eq!(held(&out, "client"), Some(6.0));
        assert_eq!(held(&out, "server"), Some(4.0));
    }

    /// The blocker series name the idle-in-transaction session, the lock and the count.
    #[test]
    fn a_blocker_is_published_by_identity_with_its_lock() {
        let mut holder = row(
            1,
            "idle in transaction",
            Some(("Client", "ClientRead")),
            None,
        );
        holder.application = "migrate".into();
        let waiting = |pid| {
            let mut r = row(pid, "active", Some(("Lock", "relation")), Some(3));
            r.blocked_by = vec![1];
            r.mode = Some("AccessShareLock".into());
            r.relation = Some("orders".into());
            r
        };
        let rows = vec![holder, waiting(2), waiting(3)];
        let mut out = Output::default();
        blockers(&mut out, "db", &rows, 5);
        let labels = [
            ("application", "migrate"),
            ("state", "idle in transaction"),
            ("mode", "AccessShareLock"),
            ("relation", "orders"),
        ];
        assert_eq!(value(&out, BLOCKER_WAITING.name, &labels), Some(2.0));
        assert_eq!(value(&out, BLOCKER_DIRECT.name, &labels), Some(2.0));
        let mut none = Output::default();
        blockers(&mut none, "db", &rows[..1], 5);
        assert!(none.families.is_empty(), "nothing waits: no blocker series");
    }

    #[test]
    fn settings_are_checked_with_the_field() {
        let mut errors = Vec::new();
        LoadSettings {
            interval: Dur(Duration::from_millis(500)),
            cpus: Some(0.0),
            ..LoadSettings::default()
        }
        .validate("sources[0].load", &mut errors);
        let text: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        assert!(
            text.iter()
                .any(|e| e.starts_with("sources[0].load.interval")),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|e| e.starts_with("sources[0].load.timeout")),
            "{text:?}"
        );
        assert!(
            text.iter().any(|e| e.starts_with("sources[0].load.cpus")),
            "{text:?}"
        );
    }
}
