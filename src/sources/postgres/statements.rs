//! Which statements take the database's time: `pg_stat_statements`, read in the background.
//!
//! Each run reads the counters of the statements with `pg_stat_statements(false)`: no query
//! text, so one light query whatever the size of the server's text file. It sends the
//! fingerprints of the statements it knows (identity and calls, 31 bits each), and the server
//! leaves out those that did not run since: what crosses the wire follows the workload, not the
//! 5,000 statements the server keeps. Every statement is read again once an hour and after a
//! reset of the statistics. What each statement did since the last run (the window,
//! [`crate::sources::window`]) ranks them; the top N by
//! execution time in the window are published with their calls, time, rows and shared
//! blocks, labelled `queryid` and `database`, and the rest of each database adds up in a row
//! of `queryid="other"`, so that the rows of a database sum to what the server did.
//!
//! The normalised text of a statement is read only when its queryid first enters the top N,
//! a few per run, cut short and kept, and published as `pulse_postgres_statement_info`. A
//! statement whose text may carry a secret (a role's password) is published without it.
//! With `plans` (Postgres 16+), a few statements of the top a run are planned on a connection
//! to their own database, and their plans' shapes published ([`super::plans`]).
//!
//! Columns are chosen by the installed extension's version (13's 1.8 to 18's 1.12): the view
//! of an extension never updated after `pg_upgrade` keeps its old columns. Only top-level
//! statements count (`toplevel`, 1.9+): with `pg_stat_statements.track = all` a function's
//! inner statements are also inside their caller's time, and counting both would not add up.
//!
//! Where the extension is missing, not preloaded, or the role may not see other roles'
//! statements, the check still succeeds, says so in `pulse_postgres_statements_available`
//! and logs why once; statements of other roles whose id is hidden are counted in `other`.

use std::collections::hash_map::Entry as Slot;
use std::collections::{HashMap, HashSet};
use std::time::Duration;

use serde::Deserialize;
use sqlx::Row;
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::metrics::{
    RUNNING_STATEMENT, STATEMENTS_AVAILABLE, STATEMENTS_DEALLOCATIONS, STATEMENTS_MAX,
    STATEMENTS_WINDOW, STATEMENT_BLOCK_READ_TIME, STATEMENT_CALLS, STATEMENT_EXEC_TIME,
    STATEMENT_HIT_BYTES, STATEMENT_INFO, STATEMENT_MEAN_EXEC_TIME, STATEMENT_READ_BYTES,
    STATEMENT_ROWS,
};
use super::plans::{self, PlanSettings, Plans, Skip};
use super::session::{classify, read_only, CheckPool, Tx};
use crate::config_core::validate::{in_range, Statistics, STATISTICS};
use crate::config_core::{ConfigError, Dur, Switch};
use crate::series::run_error::RunError;
use crate::series::sample::Output;
use crate::series::topn::Largest;
use crate::sources::window::{Moved, Reading, Window};
use crate::sources::{RunFuture, Runnable};

/// The name of the built-in check.
pub const CHECK: &str = "statements";

/// `statements:` of a Postgres source: the statements that take the database's time, from
/// `pg_stat_statements` where it is installed and readable. `false` turns it off.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct StatementsSettings {
    /// How often the counters are read: every value covers the window between two reads
    /// (default 1m; 10s to 1h).
    pub interval: Dur,
    /// How long one read may take before it is cancelled, on the server too (default 5s;
    /// shorter than the interval).
    pub timeout: Dur,
    /// Statements published, the most execution time in the window first (default 20; 1 to
    /// 100). The rest of each database add up in its `queryid="other"` row. Their series
    /// count against the check's `max_series` (`global.max_series`, 1000 by default).
    pub top: usize,
    /// Whether the normalised text of each published statement is read (once, when it first
    /// enters the top) and published in `pulse_postgres_statement_info` (default true); false
    /// publishes queryids only.
    pub text: bool,
    /// Characters of a statement's text kept (default 200; 20 to 250).
    pub text_length: usize,
    /// The plans of the statements of the top (Postgres 16+): each is planned with
    /// `EXPLAIN (GENERIC_PLAN)` when it enters the top and every `interval` after, never run
    /// (on by default; `false` turns it off).
    pub plans: Switch<PlanSettings>,
}

impl Default for StatementsSettings {
    fn default() -> Self {
        StatementsSettings {
            interval: Dur(STATISTICS.interval),
            timeout: Dur(STATISTICS.timeout),
            top: STATISTICS.top,
            text: true,
            text_length: 200,
            plans: Switch::default(),
        }
    }
}

impl StatementsSettings {
    /// Records what is wrong with these settings, at `path`.
    pub fn validate(&self, path: &str, errors: &mut Vec<ConfigError>) {
        Statistics {
            interval: self.interval.0,
            timeout: self.timeout.0,
            top: self.top,
        }
        .validate(path, errors);
        in_range(
            &format!("{path}.text_length"),
            self.text_length as u64,
            20,
            250,
            errors,
        );
        if let Some(plans) = self.plans.on() {
            plans.validate(&format!("{path}.plans"), errors);
        }
    }
}

/// Texts read in one run at most: a burst of new statements costs a few runs, never one
/// large read.
const TEXTS_PER_RUN: usize = 5;

/// Texts kept for statements that left the top, so that one coming back is not read again.
const TEXTS_KEPT: usize = 1000;

/// Most statements a run reads the counters of: `pg_stat_statements.max` is 5,000 by default;
/// a server configured far past this one has its extra statements counted in no row.
const MAX_ENTRIES: usize = 100_000;

/// One entry of `pg_stat_statements`: a statement of a role in a database. Entries of other
/// roles whose id the role may not see have no queryid and are summed per role.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Entry {
    dbid: i64,
    userid: i64,
    queryid: Option<i64>,
}

/// The counters read per entry, in this order ([`Reading::values`]).
const CALLS: usize = 0;
const EXEC_MS: usize = 1;
const ROWS: usize = 2;
const BLOCKS_READ: usize = 3;
const BLOCKS_HIT: usize = 4;
const READ_MS: usize = 5;
const COUNTERS: usize = 6;

/// A published row: a statement of a database, or its database's `other`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Published {
    database: String,
    /// `None` for the database's other statements.
    queryid: Option<i64>,
}

/// What a run learns of the extension.
#[derive(Debug, Clone)]
struct Extension {
    /// Its schema, quoted for SQL.
    schema: String,
    /// `extversion` as (major, minor).
    version: (u32, u32),
}

/// The counters query for the extension's version: the read time was renamed in 1.11, the
/// total time in 1.8; `toplevel` is from 1.9 and `stats_since` from 1.11. The database and
/// the role travel as one number (`who`: the database's oid above the role's). With
/// `unchanged`, the entries whose fingerprint ([`fingerprint`]) is in the array `$1` are left
/// on the server: an entry that did not run since the last read costs no byte.
fn counters_sql(ext: &Extension, unchanged: bool) -> String {
    let v = ext.version;
    let exec = if v >= (1, 8) {
        "total_exec_time"
    } else {
        "total_time"
    };
    let read = if v >= (1, 11) {
        "shared_blk_read_time"
    } else {
        "blk_read_time"
    };
    let born = if v >= (1, 11) {
        "extract(epoch FROM s.stats_since)::float8"
    } else {
        "NULL::float8"
    };
    let mut filters = Vec::new();
    if v >= (1, 9) {
        filters.push("s.toplevel".to_owned());
    }
    if unchanged {
        // Rows of other roles' statements (no queryid) always come back: their fingerprints
        // are never sent, and one that matched a sent one by chance would go missing.
        filters.push(format!(
            "(s.queryid IS NULL OR ({FINGERPRINT}) NOT IN (SELECT unnest($1::int4[])))"
        ));
    }
    let filters = match filters.is_empty() {
        true => String::new(),
        false => format!(" WHERE {}", filters.join(" AND ")),
    };
    format!(
        "SELECT {WHO} AS who, s.queryid, \
         s.calls::float8 AS calls, s.{exec}::float8 AS exec_ms, s.rows::float8 AS rows, \
         s.shared_blks_read::float8 AS blocks_read, s.shared_blks_hit::float8 AS blocks_hit, \
         s.{read}::float8 AS read_ms, {born} AS born \
         FROM {schema}.pg_stat_statements(false) s{filters}",
        schema = ext.schema
    )
}

/// An entry's database and role as one number, in SQL.
const WHO: &str = "(s.dbid::int8 << 32) | s.userid::int8";

/// What [`fingerprint`] computes, in SQL.
const FINGERPRINT: &str =
    "((coalesce(s.queryid, 0) # ((s.dbid::int8 << 32) | s.userid::int8) # s.calls) # \
     ((coalesce(s.queryid, 0) # ((s.dbid::int8 << 32) | s.userid::int8) # s.calls) >> 32)) \
     & 2147483647";

/// An entry's identity and calls in 31 bits: it changes whenever the entry runs, so the
/// entries whose fingerprint the last read saw did not run since. Two entries may share one
/// (a few in a billion): then one that ran reads as unchanged for a window, and its calls count
/// in the next window instead, since the last reading is kept. 31 bits send a quarter of a
/// statement's row; 64 would send half as much again for nothing.
fn fingerprint(entry: &Entry, calls: f64) -> i32 {
    let x = entry.queryid.unwrap_or(0) ^ ((entry.dbid << 32) | entry.userid) ^ (calls as i64);
    ((x ^ (x >> 32)) & 0x7fff_ffff) as i32
}

/// How often every entry is read again, whether it ran or not (in runs): entries the server
/// evicted meanwhile are forgotten then.
const FULL_READ_EVERY: u32 = 60;

/// The texts of `ids`, cut to `length` characters.
fn texts_sql(ext: &Extension, length: usize) -> String {
    format!(
        "SELECT DISTINCT ON (queryid) queryid, left(query, {length}) AS text \
         FROM {}.pg_stat_statements(true) WHERE queryid = ANY($1) ORDER BY queryid",
        ext.schema
    )
}

/// The probe of the built-in `statements` check.
pub(super) struct StatementsProbe {
    pub(super) source: String,
    pub(super) pool: CheckPool,
    /// The source's connection settings: plans are read on a connection to each statement's
    /// own database.
    pub(super) options: sqlx::postgres::PgConnectOptions,
    pub(super) settings: StatementsSettings,
    pub(super) state: Mutex<State>,
}

/// What a probe keeps between runs.
#[derive(Default)]
pub(super) struct State {
    window: Window<Entry>,
    /// The statistics epoch of the last read (`stats_reset`, Postgres 14+).
    epoch: Option<String>,
    /// Runs since every entry was last read.
    since_full: u32,
    /// Texts by queryid (already cut and withheld where they may hold a secret).
    texts: HashMap<i64, String>,
    /// The reasons already logged.
    logged: HashSet<&'static str>,
    /// The plans of the statements of the top.
    plans: Plans,
}

impl State {
    /// Logs `message` once per `key` for this source (at warn, or info where `quiet`).
    fn once(&mut self, source: &str, key: &'static str, quiet: bool, message: &str) {
        if self.logged.insert(key) {
            match quiet {
                true => tracing::info!(source, "{message}"),
                false => tracing::warn!(source, "{message}"),
            }
        }
    }
}

impl Runnable for StatementsProbe {
    fn run(&self, deadline: Instant) -> RunFuture<'_> {
        Box::pin(async move {
            let mut state = self.state.lock().await;
            let mut result = self.read(&mut state, deadline).await;
            if result.is_err() {
                // A failed run read nothing whole: the next one is a baseline.
                state.window.reset();
            }
            if let Ok(out) = &mut result {
                if out.unmeasured.is_some() && self.settings.text {
                    // Without the extension, "which query" still gets an answer: what runs
                    // longest now. Its own transaction, since a refused read aborted the first.
                    self.running(out, deadline).await?;
                }
            }
            result
        })
    }
}

impl StatementsProbe {
    async fn read(&self, state: &mut State, deadline: Instant) -> Result<Output, RunError> {
        let source = self.source.as_str();
        let mut out = Output::default();
        let mut tx = read_only(&self.pool, deadline).await?;
        let Some(context) = read_context(&mut tx).await? else {
            state.window.reset();
            state.once(source, "not installed", true, NOT_INSTALLED);
            out.add(&STATEMENTS_AVAILABLE, &[source], 0.0);
            out.unmeasured = Some(NOT_INSTALLED.to_owned());
            return Ok(out);
        };
        let Loaded::Read((epoch, dealloc)) = read_info(&mut tx, &context.ext).await? else {
            return Ok(self.not_preloaded(state));
        };
        // Only what ran since the last read crosses the wire; everything again after a reset
        // of the statistics, and now and then to forget evicted entries.
        let known = known_fingerprints(state, &epoch);
        let full = known.is_empty();
        let Loaded::Read(mut counters) = read_counters(&mut tx, &context.ext, &known).await? else {
            return Ok(self.not_preloaded(state));
        };
        // Entries left on the server did not move: they read as at the last read.
        if !full {
            keep_unchanged(state, &mut counters.entries);
        }
        state.epoch = epoch.clone();
        state.since_full = if full { 0 } else { state.since_full + 1 };
        counters.log_losses(state, source);
        let moved = state
            .window
            .advance(std::time::Instant::now(), epoch, counters.entries);
        out.add(&STATEMENTS_AVAILABLE, &[source], 1.0);
        if let Some(max) = context.max {
            out.add(&STATEMENTS_MAX, &[source], max);
        }
        if let Some(d) = dealloc {
            out.add(&STATEMENTS_DEALLOCATIONS, &[source], d);
        }
        let Some(moved) = moved else {
            tx.rollback().await.map_err(classify)?;
            return Ok(out);
        };
        let ranked = rank(&moved, &context.names, self.settings.top);
        if self.settings.text {
            self.read_texts(state, &mut tx, &context.ext, &ranked)
                .await?;
        }
        let round = self
            .plan_round(state, &mut tx, &context.ext, &context.names, &ranked)
            .await?;
        tx.rollback().await.map_err(classify)?;
        if let Some(round) = round {
            self.plans(state, round, &mut out, deadline).await;
        }
        samples(
            &mut out,
            source,
            &moved,
            &ranked,
            context.block_size,
            &state.texts,
        );
        Ok(out)
    }

    /// Reads the texts of the statements new to the top, a few a run so that a burst of new
    /// statements is never one large read; past [`TEXTS_KEPT`] the texts of statements that
    /// left the top are forgotten.
    async fn read_texts(
        &self,
        state: &mut State,
        tx: &mut Tx,
        ext: &Extension,
        ranked: &[(Published, Vec<f64>)],
    ) -> Result<(), RunError> {
        let missing: Vec<i64> = ranked
            .iter()
            .filter_map(|(r, _)| r.queryid)
            .filter(|q| !state.texts.contains_key(q))
            .take(TEXTS_PER_RUN)
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let rows = sqlx::query(&texts_sql(ext, self.settings.text_length))
            .bind(&missing)
            .fetch_all(&mut **tx)
            .await
            .map_err(classify)?;
        if state.texts.len() + rows.len() > TEXTS_KEPT {
            let keep: HashSet<i64> = ranked.iter().filter_map(|(r, _)| r.queryid).collect();
            state.texts.retain(|q, _| keep.contains(q));
        }
        for row in rows {
            let id: i64 = row.try_get("queryid").map_err(classify)?;
            let text: Option<String> = row.try_get("text").map_err(classify)?;
            state
                .texts
                .insert(id, shown_text(text.as_deref().unwrap_or("")));
        }
        Ok(())
    }

    /// What this run's plans need read inside the counters' transaction: the top, the
    /// statements due to be explained, and their full texts (none before Postgres 16).
    /// `None` with `plans: false`.
    async fn plan_round(
        &self,
        state: &State,
        tx: &mut Tx,
        ext: &Extension,
        names: &HashMap<i64, String>,
        ranked: &[(Published, Vec<f64>)],
    ) -> Result<Option<PlanRound>, RunError> {
        let Some(settings) = self.settings.plans.on() else {
            return Ok(None);
        };
        let top: Vec<plans::Key> = ranked
            .iter()
            .filter_map(|(r, _)| r.queryid.map(|q| (r.database.clone(), q)))
            .collect();
        let due = state
            .plans
            .due(&top, settings.interval.0, std::time::Instant::now());
        let old_server = tx.server_version_num().unwrap_or(0) < 160_000;
        let texts = match due.is_empty() || old_server {
            true => HashMap::new(),
            false => plan_texts(tx, ext, names, &due).await?,
        };
        Ok(Some(PlanRound {
            top,
            due,
            texts,
            old_server,
        }))
    }

    /// Explains what `round` found due (or counts it skipped on an older server) and
    /// publishes the plans of the top.
    async fn plans(
        &self,
        state: &mut State,
        round: PlanRound,
        out: &mut Output,
        deadline: Instant,
    ) {
        let Some(settings) = self.settings.plans.on() else {
            return;
        };
        let source = self.source.as_str();
        if round.old_server && !round.due.is_empty() {
            state.once(source, "plans need 16", true, "plans of the statements are read from Postgres 16 (EXPLAIN GENERIC_PLAN): this server's are skipped, counted in pulse_postgres_statement_plans_skipped_total{reason=\"server_version\"}");
            let now = std::time::Instant::now();
            for key in round.due {
                state.plans.record(key, Err(Skip::ServerVersion), now);
            }
        } else {
            self.explain(state, settings, round.due, round.texts, deadline)
                .await;
        }
        state.plans.trim(&round.top);
        state.plans.publish(out, source, &round.top);
    }

    /// Explains the `due` statements, each on a connection to its database, within
    /// `deadline`: a run out of time leaves the rest due for the next.
    async fn explain(
        &self,
        state: &mut State,
        settings: &PlanSettings,
        due: Vec<plans::Key>,
        mut texts: HashMap<plans::Key, String>,
        deadline: Instant,
    ) {
        let mut conns: HashMap<String, Result<sqlx::PgConnection, Skip>> = HashMap::new();
        for key in due {
            let left = deadline.saturating_duration_since(Instant::now());
            if left < Duration::from_millis(100) {
                break;
            }
            let timeout = settings.timeout.0.min(left - Duration::from_millis(50));
            let result = match texts.remove(&key) {
                None => Err(Skip::NoText),
                Some(text) => {
                    let conn = match conns.entry(key.0.clone()) {
                        Slot::Occupied(e) => e.into_mut(),
                        Slot::Vacant(e) => {
                            e.insert(plans::connect(&self.options, &key.0, deadline).await)
                        }
                    };
                    match conn {
                        Ok(conn) => plans::explain(conn, &text, timeout).await,
                        Err(skip) => Err(*skip),
                    }
                }
            };
            if let Err(skip) = &result {
                tracing::debug!(source = %self.source, database = %key.0, queryid = key.1, reason = skip.reason(), "a statement of the top was not explained");
            }
            state.plans.record(key, result, std::time::Instant::now());
        }
        for conn in conns.into_values().flatten() {
            let _ = sqlx::Connection::close(conn).await;
        }
    }

    /// The `top` longest-running active client statements, from `pg_stat_activity`: the
    /// fallback while the extension cannot be read.
    async fn running(&self, out: &mut Output, deadline: Instant) -> Result<(), RunError> {
        let mut tx = read_only(&self.pool, deadline).await?;
        // A few more rows than shown: several sessions running the same text are one row.
        let rows = sqlx::query(
            "SELECT coalesce(datname::text, '') AS database, \
             extract(epoch FROM clock_timestamp() - query_start)::float8 AS seconds, \
             left(query, $1) AS text \
             FROM pg_stat_activity \
             WHERE state = 'active' AND backend_type = 'client backend' \
             AND pid <> pg_backend_pid() AND query_start IS NOT NULL \
             ORDER BY query_start LIMIT $2",
        )
        .bind(self.settings.text_length as i32 * 2)
        .bind(self.settings.top as i64 * 4)
        .fetch_all(&mut *tx)
        .await
        .map_err(classify)?;
        tx.rollback().await.map_err(classify)?;
        let mut longest: Vec<(String, String, f64)> = Vec::new();
        for row in rows {
            let database: String = row.try_get("database").map_err(classify)?;
            let seconds: Option<f64> = row.try_get("seconds").map_err(classify)?;
            let text: Option<String> = row.try_get("text").map_err(classify)?;
            let text = cut(
                &shown_text(&literals_masked(text.as_deref().unwrap_or(""))),
                self.settings.text_length,
            );
            let seconds = seconds.unwrap_or(0.0).max(0.0);
            match longest
                .iter_mut()
                .find(|(d, t, _)| *d == database && *t == text)
            {
                Some(row) => row.2 = row.2.max(seconds),
                None => longest.push((database, text, seconds)),
            }
        }
        for (database, text, seconds) in longest.into_iter().take(self.settings.top) {
            out.add(
                &RUNNING_STATEMENT,
                &[self.source.as_str(), database.as_str(), text.as_str()],
                seconds,
            );
        }
        Ok(())
    }

    /// The output of a run where the extension is installed but its library not loaded.
    fn not_preloaded(&self, state: &mut State) -> Output {
        state.window.reset();
        state.once(&self.source, "not preloaded", false, NOT_PRELOADED);
        let mut out = Output::default();
        out.add(&STATEMENTS_AVAILABLE, &[self.source.as_str()], 0.0);
        out.unmeasured = Some(NOT_PRELOADED.to_owned());
        out
    }
}

/// A read of the extension's views, or the finding that its library is not loaded: a run
/// reports that in its output rather than failing.
enum Loaded<T> {
    Read(T),
    NotPreloaded,
}

/// What the first query of a run learns, in one round trip: the extension, the settings the
/// samples need, and the databases' names.
struct Context {
    ext: Extension,
    /// `block_size`: the counters count blocks, the samples bytes.
    block_size: f64,
    /// `pg_stat_statements.max`, where the library is loaded.
    max: Option<f64>,
    /// The databases' names by oid.
    names: HashMap<i64, String>,
}

/// The extension, the settings and the databases' names; `None` where the extension is not
/// installed in the source's database.
async fn read_context(tx: &mut Tx) -> Result<Option<Context>, RunError> {
    let context = sqlx::query(
        "SELECT quote_ident(n.nspname) AS schema, e.extversion::text AS version, \
         current_setting('block_size')::float8 AS block_size, \
         current_setting('pg_stat_statements.max', true)::float8 AS max, \
         (SELECT array_agg(oid::int8 ORDER BY oid) FROM pg_database) AS db_oids, \
         (SELECT array_agg(datname::text ORDER BY oid) FROM pg_database) AS db_names \
         FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace \
         WHERE e.extname = 'pg_stat_statements'",
    )
    .fetch_optional(&mut **tx)
    .await
    .map_err(classify)?;
    let Some(context) = context else {
        return Ok(None);
    };
    let ext = Extension {
        schema: context.try_get("schema").map_err(classify)?,
        version: parse_version(&context.try_get::<String, _>("version").map_err(classify)?),
    };
    let block_size: f64 = context.try_get("block_size").map_err(classify)?;
    let max: Option<f64> = context.try_get("max").map_err(classify)?;
    let oids: Vec<i64> = context.try_get("db_oids").map_err(classify)?;
    let db_names: Vec<String> = context.try_get("db_names").map_err(classify)?;
    Ok(Some(Context {
        ext,
        block_size,
        max,
        names: oids.into_iter().zip(db_names).collect(),
    }))
}

/// The statistics epoch (`stats_reset`) and the evictions (`dealloc`) from
/// `pg_stat_statements_info`: Postgres 14+ (1.9) only, both `None` before. Reading it is the
/// first query that fails where the library is not loaded.
async fn read_info(
    tx: &mut Tx,
    ext: &Extension,
) -> Result<Loaded<(Option<String>, Option<f64>)>, RunError> {
    // Postgres 14+: what moves when every entry is reset, and the eviction runs.
    if ext.version < (1, 9) {
        return Ok(Loaded::Read((None, None)));
    }
    let info = sqlx::query(&format!(
        "SELECT dealloc::float8 AS dealloc, stats_reset::text AS reset \
         FROM {}.pg_stat_statements_info",
        ext.schema
    ))
    .fetch_one(&mut **tx)
    .await;
    let row = match info {
        Err(e) if not_preloaded(&e) => return Ok(Loaded::NotPreloaded),
        Err(e) => return Err(classify(e)),
        Ok(row) => row,
    };
    Ok(Loaded::Read((
        row.try_get::<Option<String>, _>("reset")
            .map_err(classify)?,
        row.try_get::<Option<f64>, _>("dealloc").map_err(classify)?,
    )))
}

/// The fingerprints of the entries the last read saw, for the server to leave out those that
/// did not run since; empty (every entry read) after a reset of the statistics (`epoch`
/// moved), every [`FULL_READ_EVERY`] runs, and with no last read.
fn known_fingerprints(state: &State, epoch: &Option<String>) -> Vec<i32> {
    match state.window.last_items() {
        Some(items) if state.epoch == *epoch && state.since_full < FULL_READ_EVERY => items
            .iter()
            .filter(|(e, r)| e.queryid.is_some() && r.exact)
            .map(|(e, r)| fingerprint(e, r.values[CALLS]))
            .collect(),
        _ => Vec::new(),
    }
}

/// What one read of the counters brought back.
struct Counters {
    entries: HashMap<Entry, Reading>,
    /// Rows of other roles' statements whose queryid the role may not see.
    hidden: u64,
    /// Rows past [`MAX_ENTRIES`], counted in no row.
    over: u64,
}

impl Counters {
    /// Adds one row's reading. Hidden entries of one role in one database are one sum (never
    /// left on the server: their fingerprints are not known one by one).
    fn add(&mut self, entry: Entry, reading: Reading) {
        match self.entries.get_mut(&entry) {
            Some(sum) => {
                for (a, b) in sum.values.iter_mut().zip(&reading.values) {
                    *a += b;
                }
                sum.born = None;
            }
            None => {
                self.entries.insert(entry, reading);
            }
        }
    }

    /// Logs, once per source, why some of the server's time is in no statement's row: the
    /// fix is the operator's.
    fn log_losses(&self, state: &mut State, source: &str) {
        if self.hidden > 0 {
            state.once(source, "hidden", false, "the role may not see other roles' statements (grant it pg_read_all_stats, or pg_monitor): their time is counted in queryid=\"other\" without their queryid");
        }
        if self.over > 0 {
            state.once(source, "over", false, &format!("pg_stat_statements holds more than {MAX_ENTRIES} entries: the ones past them are counted in no row"));
        }
    }
}

/// Reads the counters, leaving on the server the entries whose fingerprint is in `known`
/// (none where it is empty). Streamed, so that rows past [`MAX_ENTRIES`] are only counted.
async fn read_counters(
    tx: &mut Tx,
    ext: &Extension,
    known: &[i32],
) -> Result<Loaded<Counters>, RunError> {
    use futures_util::TryStreamExt;
    let full = known.is_empty();
    let sql = counters_sql(ext, !full);
    let mut counters = Counters {
        entries: HashMap::new(),
        hidden: 0,
        over: 0,
    };
    let mut query = sqlx::query(&sql);
    if !full {
        query = query.bind(known);
    }
    let mut rows = query.fetch(&mut **tx);
    loop {
        let row = match rows.try_next().await {
            Ok(Some(row)) => row,
            Ok(None) => break,
            Err(e) if not_preloaded(&e) => return Ok(Loaded::NotPreloaded),
            Err(e) => return Err(classify(e)),
        };
        if counters.entries.len() >= MAX_ENTRIES {
            counters.over += 1;
            continue;
        }
        let (entry, reading) = entry_of(&row)?;
        counters.hidden += u64::from(entry.queryid.is_none());
        counters.add(entry, reading);
    }
    Ok(Loaded::Read(counters))
}

/// One row of the counters as its entry and reading.
fn entry_of(row: &sqlx::postgres::PgRow) -> Result<(Entry, Reading), RunError> {
    let get = |c: &str| row.try_get::<Option<f64>, _>(c).map(|v| v.unwrap_or(0.0));
    let who: i64 = row.try_get("who").map_err(classify)?;
    let queryid: Option<i64> = row.try_get("queryid").map_err(classify)?;
    let entry = Entry {
        // An oid is unsigned: one of 2^31 or more made `who` negative.
        dbid: ((who as u64) >> 32) as i64,
        userid: who & 0xffff_ffff,
        queryid,
    };
    let mut values = vec![0.0; COUNTERS];
    for (i, column) in [
        (CALLS, "calls"),
        (EXEC_MS, "exec_ms"),
        (ROWS, "rows"),
        (BLOCKS_READ, "blocks_read"),
        (BLOCKS_HIT, "blocks_hit"),
        (READ_MS, "read_ms"),
    ] {
        values[i] = get(column).map_err(classify)?;
    }
    let reading = Reading {
        values,
        born: row.try_get("born").map_err(classify)?,
        exact: queryid.is_some(),
    };
    Ok((entry, reading))
}

/// Adds to `entries` those of the last read that the server left out: they did not run since,
/// so they read as then.
fn keep_unchanged(state: &State, entries: &mut HashMap<Entry, Reading>) {
    if let Some(last) = state.window.last_items() {
        for (entry, reading) in last {
            if reading.exact && !entries.contains_key(entry) {
                entries.insert(entry.clone(), reading.clone());
            }
        }
    }
}

/// What one run's plans work on (see [`StatementsProbe::plan_round`]).
struct PlanRound {
    /// The statements of the top, best first.
    top: Vec<plans::Key>,
    /// Those to explain this run.
    due: Vec<plans::Key>,
    /// Their full texts.
    texts: HashMap<plans::Key, String>,
    /// Whether the server is older than 16.
    old_server: bool,
}

/// The full texts of the `due` statements, by database and queryid; one past
/// [`plans::TEXT_LIMIT`] characters is `too_long` when explained.
async fn plan_texts(
    tx: &mut Tx,
    ext: &Extension,
    names: &HashMap<i64, String>,
    due: &[plans::Key],
) -> Result<HashMap<plans::Key, String>, RunError> {
    let ids: Vec<i64> = due.iter().map(|k| k.1).collect();
    let rows = sqlx::query(&format!(
        "SELECT DISTINCT ON (dbid, queryid) dbid::int8 AS dbid, queryid, left(query, $2) AS text \
         FROM {}.pg_stat_statements(true) WHERE queryid = ANY($1) ORDER BY dbid, queryid",
        ext.schema
    ))
    .bind(&ids)
    .bind(plans::TEXT_LIMIT as i32 + 1)
    .fetch_all(&mut **tx)
    .await
    .map_err(classify)?;
    let mut texts = HashMap::new();
    for row in rows {
        let dbid: i64 = row.try_get("dbid").map_err(classify)?;
        let queryid: i64 = row.try_get("queryid").map_err(classify)?;
        let text: Option<String> = row.try_get("text").map_err(classify)?;
        let (Some(database), Some(text)) = (names.get(&dbid), text) else {
            continue;
        };
        let key = (database.clone(), queryid);
        if due.contains(&key) {
            texts.insert(key, text);
        }
    }
    Ok(texts)
}

/// Why statement latency is not measured where the extension is not installed, and the fix:
/// the exact line and the restart, since an SRE reads it on the landing page mid-incident.
pub(crate) const NOT_INSTALLED: &str = "pg_stat_statements is not installed in the source's database, so statement latency is not measured: add `shared_preload_libraries = 'pg_stat_statements'` to postgresql.conf (or append it to the list already there), restart the server, then run `CREATE EXTENSION pg_stat_statements;` in this database (or set `statements: false`). Until then the slowest running statements come from pg_stat_activity (pulse_postgres_running_statement_seconds)";

/// Why statement latency is not measured where the extension is installed but its library
/// was not loaded at server start, and the fix.
pub(crate) const NOT_PRELOADED: &str = "pg_stat_statements is installed but not loaded, so statement latency is not measured: add `shared_preload_libraries = 'pg_stat_statements'` to postgresql.conf (or append it to the list already there) and restart the server (or set `statements: false`). Until then the slowest running statements come from pg_stat_activity (pulse_postgres_running_statement_seconds)";

/// SQLSTATE 55000: the library was not preloaded (the message changed between versions, the
/// code did not).
fn not_preloaded(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.code().as_deref() == Some("55000"))
}

/// `1.10` as (1, 10); anything unreadable as (0, 0), the oldest columns.
fn parse_version(v: &str) -> (u32, u32) {
    let mut parts = v.split('.').map(|p| p.trim().parse::<u32>().ok());
    match (parts.next().flatten(), parts.next().flatten()) {
        (Some(a), Some(b)) => (a, b),
        _ => (0, 0),
    }
}

/// The text published for a statement: one line, and withheld where it may carry a secret.
/// Normalisation replaces the constants of queries with `$n` but keeps the literals of some
/// utility statements (`ALTER ROLE … PASSWORD '…'`, `SET app.secret_key = '…'` before
/// Postgres 16): a text naming a password or a key function is withheld, and so is one with a
/// quoted literal beside a word that names a secret, inside another word too (`client_secret`).
fn shown_text(text: &str) -> String {
    static SECRET: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"(?i)\b(password|passwd|secret|encrypted|pgp_sym_\w+|crypt)\b")
            .expect("valid regex")
    });
    static NAMED: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(
            r"(?i)(password|passwd|secret|token|api_?key|passphrase|credential|private_?key)",
        )
        .expect("valid regex")
    });
    if SECRET.is_match(text) || (text.contains('\'') && NAMED.is_match(text)) {
        return "(text withheld: it may carry a secret)".to_owned();
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `text` with its literals replaced by `?`: quoted strings (`''` inside included, with an
/// `E`, `B`, `X` or `N` prefix that starts a word), dollar-quoted bodies (`$$…$$`,
/// `$tag$…$tag$`) and numbers that stand alone, so a running statement's text carries no
/// value a user sent, as the normalised texts of `pg_stat_statements` carry none.
fn literals_masked(text: &str) -> String {
    static LITERAL: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(
            r"\$[0-9]+|(?:\b[EeBbXxNn])?'(?:[^']|'')*'?|\b[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?\b",
        )
        .expect("valid regex")
    });
    // A parameter (`$1`) is no value: it stays.
    let mask = |part: &str| {
        LITERAL
            .replace_all(part, |m: &regex::Captures<'_>| match &m[0] {
                p if p.starts_with('$') => p.to_owned(),
                _ => "?".to_owned(),
            })
            .into_owned()
    };
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    // Dollar quotes first: the regex crate has no back-reference to match a tag's close.
    while let Some((start, tag)) = dollar_quote(rest) {
        out.push_str(&mask(&rest[..start]));
        out.push('?');
        let body = &rest[start + tag.len()..];
        rest = body.find(tag).map_or("", |end| &body[end + tag.len()..]);
    }
    out.push_str(&mask(rest));
    out
}

/// The first dollar quote's opening in `text`: where it starts and the tag with its two
/// `$` (`$$`, `$body$`); a parameter (`$1`) is none, nor a `$` inside a word (`a$b`).
fn dollar_quote(text: &str) -> Option<(usize, &str)> {
    static OPEN: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"(?:^|[^A-Za-z0-9_$])(\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$)")
            .expect("valid regex")
    });
    let quote = OPEN.captures(text)?.get(1)?;
    Some((quote.start(), quote.as_str()))
}

/// The first `chars` characters of `text`, as `left()` cuts the statements' texts.
fn cut(text: &str, chars: usize) -> String {
    text.chars().take(chars).collect()
}

/// The published rows and what each did: the `top` statements by execution time in the
/// window (summed over roles), then each database's other statements. Statements that did
/// not move are in no row.
fn rank(
    moved: &Moved<Entry>,
    names: &HashMap<i64, String>,
    top: usize,
) -> Vec<(Published, Vec<f64>)> {
    let mut by_row: HashMap<Published, Vec<f64>> = HashMap::new();
    for (entry, d) in &moved.items {
        let row = Published {
            database: names
                .get(&entry.dbid)
                .cloned()
                .unwrap_or_else(|| entry.dbid.to_string()),
            queryid: entry.queryid,
        };
        let sum = by_row.entry(row).or_insert_with(|| vec![0.0; COUNTERS]);
        for (a, b) in sum.iter_mut().zip(d) {
            *a += b;
        }
    }
    let mut largest = Largest::new(top);
    let mut others: HashMap<String, Vec<f64>> = HashMap::new();
    let mut add_other = |row: Published, d: Vec<f64>| {
        let sum = others
            .entry(row.database)
            .or_insert_with(|| vec![0.0; COUNTERS]);
        for (a, b) in sum.iter_mut().zip(&d) {
            *a += b;
        }
    };
    // Sorted first: equal times rank the same way every run.
    let mut rows: Vec<(Published, Vec<f64>)> = by_row.into_iter().collect();
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    for (row, d) in rows {
        if row.queryid.is_none() {
            add_other(row, d);
            continue;
        }
        if let Some((row, d)) = largest.push(d[EXEC_MS], (row, d)) {
            add_other(row, d);
        }
    }
    let mut ranked = largest.into_sorted();
    let mut others: Vec<(String, Vec<f64>)> = others.into_iter().collect();
    others.sort_by(|a, b| a.0.cmp(&b.0));
    ranked.extend(others.into_iter().map(|(database, d)| {
        (
            Published {
                database,
                queryid: None,
            },
            d,
        )
    }));
    ranked
}

/// The samples of the ranked rows.
fn samples(
    out: &mut Output,
    source: &str,
    moved: &Moved<Entry>,
    ranked: &[(Published, Vec<f64>)],
    block_size: f64,
    texts: &HashMap<i64, String>,
) {
    out.add(&STATEMENTS_WINDOW, &[source], moved.seconds);
    for (row, d) in ranked {
        let id = row
            .queryid
            .map_or_else(|| "other".to_owned(), |q| q.to_string());
        let labels = [source, row.database.as_str(), id.as_str()];
        out.add(&STATEMENT_CALLS, &labels, d[CALLS]);
        out.add(&STATEMENT_EXEC_TIME, &labels, d[EXEC_MS] / 1000.0);
        if d[CALLS] > 0.0 {
            out.add(
                &STATEMENT_MEAN_EXEC_TIME,
                &labels,
                d[EXEC_MS] / 1000.0 / d[CALLS],
            );
        }
        out.add(&STATEMENT_ROWS, &labels, d[ROWS]);
        out.add(&STATEMENT_READ_BYTES, &labels, d[BLOCKS_READ] * block_size);
        out.add(&STATEMENT_HIT_BYTES, &labels, d[BLOCKS_HIT] * block_size);
        out.add(&STATEMENT_BLOCK_READ_TIME, &labels, d[READ_MS] / 1000.0);
        if let Some(text) = row.queryid.and_then(|q| texts.get(&q)) {
            out.add(
                &STATEMENT_INFO,
                &[source, row.database.as_str(), id.as_str(), text.as_str()],
                1.0,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(dbid: i64, userid: i64, queryid: Option<i64>) -> Entry {
        Entry {
            dbid,
            userid,
            queryid,
        }
    }

    /// What moved: (entry, calls, exec ms); the other counters are a tenth of calls each.
    fn moved(items: &[(Entry, f64, f64)]) -> Moved<Entry> {
        Moved {
            seconds: 60.0,
            items: items
                .iter()
                .map(|(e, calls, ms)| (e.clone(), vec![*calls, *ms, calls / 10.0, 1.0, 2.0, 0.5]))
                .collect(),
        }
    }

    fn names() -> HashMap<i64, String> {
        HashMap::from([(1, "app".to_owned()), (2, "billing".to_owned())])
    }

    #[test]
    fn the_top_by_time_is_published_and_the_rest_adds_up_in_other_per_database() {
        let m = moved(&[
            (entry(1, 10, Some(111)), 5.0, 9000.0),
            // The same statement run by two roles is one row.
            (entry(1, 11, Some(111)), 5.0, 1000.0),
            (entry(1, 10, Some(222)), 1000.0, 500.0),
            (entry(1, 10, Some(333)), 2.0, 10.0),
            (entry(2, 10, Some(444)), 1.0, 2000.0),
            // Hidden statements of another role: `other`, never a row of their own.
            (entry(2, 12, None), 7.0, 99_000.0),
        ]);
        let ranked = rank(&m, &names(), 2);
        let view: Vec<(String, Option<i64>, f64, f64)> = ranked
            .iter()
            .map(|(r, d)| (r.database.clone(), r.queryid, d[CALLS], d[EXEC_MS]))
            .collect();
        assert_eq!(
            view,
            [
                ("app".into(), Some(111), 10.0, 10_000.0),
                ("billing".into(), Some(444), 1.0, 2000.0),
                ("app".into(), None, 1002.0, 510.0),
                ("billing".into(), None, 7.0, 99_000.0),
            ]
        );
        // The rows of each database add up to what moved there.
        for (db, id) in [("app", 1), ("billing", 2)] {
            let published: f64 = ranked
                .iter()
                .filter(|(r, _)| r.database == db)
                .map(|(_, d)| d[CALLS])
                .sum();
            let server: f64 = m
                .items
                .iter()
                .filter(|(e, _)| e.dbid == id)
                .map(|(_, d)| d[CALLS])
                .sum();
            assert_eq!(published, server, "{db}");
        }
    }

    #[test]
    fn ten_thousand_statements_publish_top_plus_one_row_per_database() {
        let items: Vec<(Entry, f64, f64)> = (0..10_000)
            .map(|i| (entry(1, 10, Some(i)), 1.0, i as f64))
            .collect();
        let ranked = rank(&moved(&items), &names(), 20);
        assert_eq!(ranked.len(), 21);
        assert_eq!(ranked[0].0.queryid, Some(9999), "the most time first");
        assert_eq!(ranked[20].0.queryid, None);
        assert_eq!(ranked[20].1[CALLS], 9980.0);
        let mut out = Output::default();
        samples(
            &mut out,
            "db",
            &moved(&items),
            &ranked,
            8192.0,
            &HashMap::new(),
        );
        let calls = out
            .families
            .iter()
            .find(|f| f.name == STATEMENT_CALLS.name)
            .unwrap();
        assert_eq!(calls.samples.len(), 21);
    }

    /// A running statement's text carries no value a user sent, keeps its parameters, and
    /// one naming a secret is withheld, as a normalised one is.
    #[test]
    fn running_texts_lose_their_literals() {
        assert_eq!(
            literals_masked("SELECT * FROM users WHERE email = 'a@b.c' AND id > 42 AND t1.x = $1 AND n = 'it''s'"),
            "SELECT * FROM users WHERE email = ? AND id > ? AND t1.x = $1 AND n = ?"
        );
        assert_eq!(
            literals_masked("SELECT $$secret body$$, 1.5e3"),
            "SELECT ?, ?"
        );
        assert_eq!(literals_masked("SELECT 'unterminated"), "SELECT ?");
        // A letter before a quote is part of a word unless it starts one (E'…', N'…').
        assert_eq!(
            literals_masked("SELECT 1 FROM t WHERE type='a' AND b = E'x\\n' AND c = n'y'"),
            "SELECT ? FROM t WHERE type=? AND b = ? AND c = ?"
        );
        assert_eq!(
            literals_masked("SELECT $body$ it's $$ secret $body$ || $a$x$a$, $1, $$open"),
            "SELECT ? || ?, $1, ?"
        );
        assert_eq!(
            literals_masked("SELECT a$b FROM t$1"),
            "SELECT a$b FROM t$1"
        );
        assert_eq!(
            shown_text(&literals_masked("ALTER ROLE app PASSWORD 'hunter2'")),
            "(text withheld: it may carry a secret)"
        );
        assert_eq!(cut("SELECTé", 7), "SELECTé");
        assert_eq!(cut("SELECTé", 6), "SELECT");
    }

    #[test]
    fn samples_are_in_base_units_with_text_where_known() {
        let m = moved(&[(entry(1, 10, Some(-42)), 4.0, 2000.0)]);
        let ranked = rank(&m, &names(), 5);
        let texts = HashMap::from([(-42, "SELECT * FROM users WHERE email = $1".to_owned())]);
        let mut out = Output::default();
        samples(&mut out, "db", &m, &ranked, 8192.0, &texts);
        assert_eq!(out.value(STATEMENTS_WINDOW.name, ""), Some(60.0));
        assert_eq!(out.value(STATEMENT_EXEC_TIME.name, "-42"), Some(2.0));
        assert_eq!(out.value(STATEMENT_MEAN_EXEC_TIME.name, "-42"), Some(0.5));
        assert_eq!(out.value(STATEMENT_READ_BYTES.name, "-42"), Some(8192.0));
        assert_eq!(out.value(STATEMENT_HIT_BYTES.name, "-42"), Some(16384.0));
        assert_eq!(
            out.value(STATEMENT_BLOCK_READ_TIME.name, "-42"),
            Some(0.0005)
        );
        let info = &out
            .families
            .iter()
            .find(|f| f.name == STATEMENT_INFO.name)
            .unwrap()
            .samples[0];
        assert!(info.labels.contains(&(
            "text".to_owned(),
            "SELECT * FROM users WHERE email = $1".to_owned()
        )));
    }

    /// The fingerprints Postgres 15 computed with `FINGERPRINT` for these entries (`SELECT …
    /// FROM (VALUES …) s(queryid, dbid, userid, calls)`): the exporter must compute the same,
    /// or every entry would cross the wire at every read.
    #[test]
    fn fingerprints_are_the_servers() {
        for (queryid, dbid, userid, calls, fp) in [
            (Some(-4824784133089868443), 5, 10, 12345.0, 1882593591),
            (Some(3513546156287600745), 16384, 16385, 1.0, 599046132),
            (None, 1, 10, 99.0, 104),
        ] {
            let e = entry(dbid, userid, queryid);
            assert_eq!(fingerprint(&e, calls), fp, "{e:?}");
        }
        assert_ne!(
            fingerprint(&entry(5, 10, Some(7)), 1.0),
            fingerprint(&entry(5, 10, Some(7)), 2.0),
            "a run changes it"
        );
    }

    #[test]
    fn texts_are_one_line_and_withheld_where_they_may_carry_a_secret() {
        assert_eq!(
            shown_text("SELECT a\n  FROM t\tWHERE b = $1"),
            "SELECT a FROM t WHERE b = $1"
        );
        for secret in [
            "ALTER ROLE app PASSWORD 'hunter2'",
            "CREATE USER x WITH ENCRYPTED password 'y'",
            "SELECT pgp_sym_encrypt($1, 'key')",
            "SET app.secret_key = 'abc'",
            "ALTER SYSTEM SET app.client_secret TO 'abc'",
            "CREATE SUBSCRIPTION s CONNECTION 'host=a sslpassword=b' PUBLICATION p",
            "SET app.api_token = 'abc'",
        ] {
            assert!(shown_text(secret).starts_with("(text withheld"), "{secret}");
        }
        // A query on a table of tokens carries no literal: it is shown.
        assert_eq!(
            shown_text("SELECT * FROM auth_tokens WHERE id = $1"),
            "SELECT * FROM auth_tokens WHERE id = $1"
        );
    }

    #[test]
    fn the_columns_follow_the_extension_version() {
        let ext = |version| Extension {
            schema: "public".into(),
            version,
        };
        let v18 = counters_sql(&ext((1, 12)), false);
        assert!(v18.contains("shared_blk_read_time") && v18.contains("stats_since"));
        assert!(v18.contains("WHERE s.toplevel") && v18.contains("pg_stat_statements(false)"));
        assert!(!v18.contains("unnest"));
        let v16 = counters_sql(&ext((1, 10)), false);
        assert!(v16.contains("s.blk_read_time") && !v16.contains("stats_since"));
        let v13 = counters_sql(&ext((1, 8)), false);
        assert!(v13.contains("total_exec_time") && !v13.contains("toplevel"));
        assert!(counters_sql(&ext((1, 7)), false).contains("s.total_time"));
        // Entries that did not run since the last read stay on the server.
        let filtered = counters_sql(&ext((1, 12)), true);
        assert!(
            filtered
                .contains("WHERE s.toplevel AND (s.queryid IS NULL OR (((coalesce(s.queryid, 0) #"),
            "{filtered}"
        );
        assert!(counters_sql(&ext((1, 8)), true)
            .contains(" WHERE (s.queryid IS NULL OR (((coalesce(s.queryid, 0) #"));
        assert!(filtered.ends_with("NOT IN (SELECT unnest($1::int4[])))"));
        assert_eq!(parse_version("1.10"), (1, 10));
        assert_eq!(parse_version("garbage"), (0, 0));
    }
}
