//! Plans of the top statements (`statements.plans`, Postgres 16+): which way the server runs
//! each statement of the top, and when that changes.
//!
//! When a statement enters the top, its full normalised text is read from
//! `pg_stat_statements` and explained once with `EXPLAIN (GENERIC_PLAN, FORMAT JSON)`, on a
//! connection to the statement's own database, in a read-only transaction with a short
//! `statement_timeout`. Never `ANALYZE`: the statement is planned, not run. Texts that write
//! (`INSERT`, `UPDATE`, `DELETE`, `MERGE`, `SELECT … INTO`, `FOR UPDATE`), that are not a
//! query (`SET`, `COMMIT`) or that hold more than one statement are never sent.
//!
//! The plan's shape (node types, join types and strategies, relations and indexes, never
//! costs, row estimates or conditions) is hashed: the same shape hashes the same on every
//! run and every server. The top is explained again every `plans.interval` (1h by default),
//! a few statements a run, and a hash that moved counts one plan change. What cannot be
//! explained (an older server, a statement that writes, a table the role may not read) is
//! skipped and counted by reason, and tried again an interval later.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::time::{Duration, Instant as StdInstant};

use serde::Deserialize;
use sha2::{Digest, Sha256};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection, Row};
use tokio::time::Instant;

use super::metrics::{PLANS_EXPLAINED, PLANS_SKIPPED, PLAN_CHANGES, PLAN_INFO, PLAN_SEQ_SCAN};
use crate::config_core::{ConfigError, Dur};
use crate::series::sample::Output;

/// `statements.plans:` of a Postgres source: the plans of the top statements, Postgres 16+.
/// `false` turns it off.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct PlanSettings {
    /// How often each statement of the top is explained again, to see its plan change
    /// (default 1h; 10s to 1d).
    pub interval: Dur,
    /// How long planning one statement may take before it is cancelled on the server
    /// (default 500ms; 10ms to 5s).
    pub timeout: Dur,
}

impl Default for PlanSettings {
    fn default() -> Self {
        PlanSettings {
            interval: Dur(Duration::from_secs(3600)),
            timeout: Dur(Duration::from_millis(500)),
        }
    }
}

impl PlanSettings {
    /// Records what is wrong with these settings, at `path`.
    pub fn validate(&self, path: &str, errors: &mut Vec<ConfigError>) {
        if !(Duration::from_secs(10)..=Duration::from_secs(86_400)).contains(&self.interval.0) {
            errors.push(ConfigError::new(
                format!("{path}.interval"),
                "must be between 10s and 1d: how often each statement of the top is explained again",
            ));
        }
        if !(Duration::from_millis(10)..=Duration::from_secs(5)).contains(&self.timeout.0) {
            errors.push(ConfigError::new(
                format!("{path}.timeout"),
                "must be between 10ms and 5s: how long planning one statement may take",
            ));
        }
    }
}

/// Statements explained in one run at most: a new top costs a few runs, never one long run.
pub(super) const PLANS_PER_RUN: usize = 3;

/// Characters of a text read for explaining; a longer one is skipped (`too_long`): a cut
/// text is not the statement.
pub(super) const TEXT_LIMIT: usize = 20_000;

/// Plans kept for statements that left the top, so that one coming back is compared with
/// the plan it had.
const PLANS_KEPT: usize = 1000;

/// Why a statement was not explained: the `reason` label of
/// `pulse_postgres_statement_plans_skipped_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Skip {
    /// The server is older than 16 (no `GENERIC_PLAN`).
    ServerVersion,
    /// The statement writes, or locks rows.
    Writes,
    /// Not a query (a utility statement), or more than one statement.
    NotAQuery,
    /// The text is longer than [`TEXT_LIMIT`].
    TooLong,
    /// The server no longer holds the text, or withheld it from the role.
    NoText,
    /// The role may not read what the statement reads.
    Refused,
    /// Planning took longer than `plans.timeout`.
    Timeout,
    /// The statement's database could not be reached.
    Database,
    /// The server refused to plan it otherwise: a text normalisation made unparsable
    /// (`extract($1 FROM …)`), a parameter of unknown type, a dropped table.
    Failed,
}

impl Skip {
    /// Every reason, for the series pinned at zero.
    pub(super) const ALL: [Skip; 9] = [
        Skip::ServerVersion,
        Skip::Writes,
        Skip::NotAQuery,
        Skip::TooLong,
        Skip::NoText,
        Skip::Refused,
        Skip::Timeout,
        Skip::Database,
        Skip::Failed,
    ];

    /// Whether the statement's text decides it, so that trying again would give the same
    /// answer (and, for a text the server cannot parse, one more error in the server's log).
    fn is_final(self) -> bool {
        matches!(
            self,
            Skip::ServerVersion | Skip::Writes | Skip::NotAQuery | Skip::TooLong | Skip::Failed
        )
    }

    /// The label value.
    pub(super) fn reason(self) -> &'static str {
        match self {
            Skip::ServerVersion => "server_version",
            Skip::Writes => "writes",
            Skip::NotAQuery => "not_a_query",
            Skip::TooLong => "too_long",
            Skip::NoText => "no_text",
            Skip::Refused => "refused",
            Skip::Timeout => "timeout",
            Skip::Database => "database",
            Skip::Failed => "failed",
        }
    }
}

/// A plan's shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Shape {
    /// The first 16 hex digits of the SHA-256 of the shape.
    pub(super) hash: String,
    /// Whether a node reads a table by sequential scan.
    pub(super) seq_scan: bool,
}

/// What is known of one statement's plan.
#[derive(Debug)]
struct Known {
    /// The last plan read (kept across a skip, to compare the next one with).
    shape: Option<Shape>,
    /// When it was last explained or skipped.
    at: StdInstant,
    /// Plan changes seen.
    changes: u64,
    /// Never explained again: its text cannot be (see [`Skip::is_final`]).
    done: bool,
}

/// A statement by database and queryid.
pub(super) type Key = (String, i64);

/// The plans of one source, kept between runs.
#[derive(Debug, Default)]
pub(super) struct Plans {
    known: HashMap<Key, Known>,
    skipped: BTreeMap<Skip, u64>,
    explained: u64,
}

impl Plans {
    /// The statements of `top` (best first) to explain this run: never explained, or
    /// explained an `interval` ago and not skipped for good; at most [`PLANS_PER_RUN`].
    pub(super) fn due(&self, top: &[Key], interval: Duration, now: StdInstant) -> Vec<Key> {
        top.iter()
            .filter(|k| {
                self.known
                    .get(*k)
                    .is_none_or(|p| !p.done && now.duration_since(p.at) >= interval)
            })
            .take(PLANS_PER_RUN)
            .cloned()
            .collect()
    }

    /// Records what explaining `key` gave.
    pub(super) fn record(&mut self, key: Key, result: Result<Shape, Skip>, now: StdInstant) {
        let known = self.known.entry(key).or_insert(Known {
            shape: None,
            at: now,
            changes: 0,
            done: false,
        });
        known.at = now;
        match result {
            Ok(shape) => {
                self.explained += 1;
                if known.shape.as_ref().is_some_and(|s| s.hash != shape.hash) {
                    known.changes += 1;
                }
                known.shape = Some(shape);
            }
            Err(skip) => {
                known.done = skip.is_final();
                *self.skipped.entry(skip).or_default() += 1;
            }
        }
    }

    /// Forgets the plans of statements out of `top` once more than [`PLANS_KEPT`] are kept.
    pub(super) fn trim(&mut self, top: &[Key]) {
        if self.known.len() > PLANS_KEPT {
            let keep: HashSet<&Key> = top.iter().collect();
            self.known.retain(|k, _| keep.contains(k));
        }
    }

    /// The plan series of the statements of `top`, and the counts.
    pub(super) fn publish(&self, out: &mut Output, source: &str, top: &[Key]) {
        out.add(&PLANS_EXPLAINED, &[source], self.explained as f64);
        for skip in Skip::ALL {
            let n = self.skipped.get(&skip).copied().unwrap_or(0);
            out.add(&PLANS_SKIPPED, &[source, skip.reason()], n as f64);
        }
        for key in top {
            let Some(known) = self.known.get(key) else {
                continue;
            };
            let Some(shape) = &known.shape else {
                continue;
            };
            let id = key.1.to_string();
            let labels = [source, key.0.as_str(), id.as_str()];
            out.add(
                &PLAN_INFO,
                &[source, key.0.as_str(), id.as_str(), shape.hash.as_str()],
                1.0,
            );
            out.add(&PLAN_SEQ_SCAN, &labels, f64::from(u8::from(shape.seq_scan)));
            out.add(&PLAN_CHANGES, &labels, known.changes as f64);
        }
    }
}

/// Whether `text` may be explained: one query that reads. The text is the server's own
/// normalised text (constants are `$n`), so a `;` inside it separates statements.
pub(super) fn explainable(text: &str) -> Result<&str, Skip> {
    static WRITES: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"(?i)\b(insert|update|delete|merge|into|truncate|copy|lock)\b")
            .expect("valid regex")
    });
    let body = without_leading_comments(text)
        .trim_end()
        .trim_end_matches(';')
        .trim_end();
    if body.is_empty() {
        return Err(Skip::NoText);
    }
    let first = body
        .split(|c: char| !c.is_ascii_alphabetic())
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    match first.as_str() {
        "select" | "with" | "values" | "table" => {}
        "insert" | "update" | "delete" | "merge" | "truncate" | "copy" => return Err(Skip::Writes),
        _ => return Err(Skip::NotAQuery),
    }
    if body.contains(';') {
        return Err(Skip::NotAQuery);
    }
    if WRITES.is_match(body) {
        return Err(Skip::Writes);
    }
    Ok(body)
}

/// `text` from its first character that is neither blank nor inside a comment.
fn without_leading_comments(mut text: &str) -> &str {
    loop {
        text = text.trim_start();
        if let Some(rest) = text.strip_prefix("--") {
            text = rest.split_once('\n').map_or("", |(_, r)| r);
        } else if let Some(rest) = text.strip_prefix("/*") {
            text = rest.split_once("*/").map_or("", |(_, r)| r);
        } else {
            return text;
        }
    }
}

/// The fields of a plan node that make its shape: what it does and to what, never what it
/// costs or the values it compares.
const SHAPE_FIELDS: [&str; 11] = [
    "Node Type",
    "Join Type",
    "Strategy",
    "Partial Mode",
    "Parent Relationship",
    "Subplan Name",
    "Relation Name",
    "Index Name",
    "Scan Direction",
    "Parallel Aware",
    "Function Name",
];

/// The shape of the output of `EXPLAIN (FORMAT JSON)`, or `None` when it holds no plan.
pub(super) fn shape(explain: &serde_json::Value) -> Option<Shape> {
    let plan = explain.get(0)?.get("Plan")?;
    let mut text = String::new();
    let mut seq_scan = false;
    walk(plan, &mut text, &mut seq_scan);
    let digest = Sha256::digest(text.as_bytes());
    let hash = hex::encode(&digest[..8]);
    Some(Shape { hash, seq_scan })
}

/// Writes `node` and its children to `text`, in order.
fn walk(node: &serde_json::Value, text: &mut String, seq_scan: &mut bool) {
    text.push('(');
    for field in SHAPE_FIELDS {
        if let Some(v) = node.get(field) {
            let _ = write!(text, "{field}={v};");
        }
    }
    if node.get("Node Type").and_then(|t| t.as_str()) == Some("Seq Scan")
        && node.get("Relation Name").is_some()
    {
        *seq_scan = true;
    }
    if let Some(children) = node.get("Plans").and_then(|p| p.as_array()) {
        for child in children {
            walk(child, text, seq_scan);
        }
    }
    text.push(')');
}

/// Explains `text` on `conn` (a connection to the statement's database, Postgres 16+: the
/// caller counts older servers `server_version` without connecting) in a read-only
/// transaction, planning bounded by `timeout` on the server. A text the server refuses logs
/// one error in the server's log: such a statement is never sent again.
pub(super) async fn explain(
    conn: &mut PgConnection,
    text: &str,
    timeout: Duration,
) -> Result<Shape, Skip> {
    let body = explainable(text)?;
    let mut tx = conn.begin().await.map_err(skip_of)?;
    sqlx::query("SET TRANSACTION READ ONLY")
        .execute(&mut *tx)
        .await
        .map_err(skip_of)?;
    sqlx::query("SELECT set_config('statement_timeout', $1, true)")
        .bind(timeout.as_millis().max(1).to_string())
        .execute(&mut *tx)
        .await
        .map_err(skip_of)?;
    // A text without arguments goes over the simple protocol: over the extended one, the
    // text's `$1` would be parameters of the EXPLAIN itself, wanting values. `explainable`
    // has made sure it is one statement.
    let sql = format!("EXPLAIN (GENERIC_PLAN, FORMAT JSON) {body}");
    let rows = sqlx::Executor::fetch_all(&mut *tx, sql.as_str()).await;
    let _ = tx.rollback().await;
    let rows = rows.map_err(skip_of)?;
    let json: String = rows
        .first()
        .ok_or(Skip::Failed)?
        .try_get_unchecked(0)
        .map_err(|_| Skip::Failed)?;
    let value: serde_json::Value = serde_json::from_str(&json).map_err(|_| Skip::Failed)?;
    shape(&value).ok_or(Skip::Failed)
}

/// A connection to `database` with the source's credentials, within `deadline`.
pub(super) async fn connect(
    options: &PgConnectOptions,
    database: &str,
    deadline: Instant,
) -> Result<PgConnection, Skip> {
    let options = options.clone().database(database);
    match tokio::time::timeout_at(deadline, options.connect()).await {
        Ok(Ok(conn)) => Ok(conn),
        _ => Err(Skip::Database),
    }
}

/// The reason a failed step skips the statement: by SQLSTATE, which is stable across
/// versions where messages are not.
fn skip_of(e: sqlx::Error) -> Skip {
    let code = match &e {
        sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()),
        // The connection, not the statement: tried again.
        _ => return Skip::Database,
    };
    match code.as_deref() {
        Some("57014") => Skip::Timeout,
        Some("42501") => Skip::Refused,
        Some("25006") => Skip::Writes,
        _ => Skip::Failed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_one_query_that_reads_is_explained() {
        assert_eq!(
            explainable("SELECT * FROM t WHERE id = $1;"),
            Ok("SELECT * FROM t WHERE id = $1")
        );
        assert!(explainable("/* app */ -- x\n with a AS (SELECT 1) SELECT * FROM a").is_ok());
        assert!(explainable("values ($1)").is_ok());
        for (text, skip) in [
            ("INSERT INTO t VALUES ($1)", Skip::Writes),
            ("update t SET a = $1", Skip::Writes),
            (
                "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d",
                Skip::Writes,
            ),
            ("SELECT * INTO copy_t FROM t", Skip::Writes),
            ("SELECT * FROM t FOR UPDATE", Skip::Writes),
            ("SET work_mem = $1", Skip::NotAQuery),
            ("COMMIT", Skip::NotAQuery),
            ("SELECT 1; DROP TABLE t", Skip::NotAQuery),
            ("  -- only a comment", Skip::NoText),
            ("", Skip::NoText),
        ] {
            assert_eq!(explainable(text), Err(skip), "{text}");
        }
    }

    fn plan(scan: &str, relation: &str, cost: f64) -> serde_json::Value {
        json!([{ "Plan": {
            "Node Type": "Limit", "Startup Cost": cost, "Total Cost": cost * 2.0,
            "Plan Rows": 10, "Parallel Aware": false,
            "Plans": [{
                "Node Type": scan, "Parent Relationship": "Outer", "Parallel Aware": false,
                "Relation Name": relation, "Alias": "x", "Startup Cost": cost,
                "Filter": format!("(a = {cost})"),
            }]
        }}])
    }

    #[test]
    fn the_shape_ignores_costs_and_conditions_and_sees_the_scan() {
        let a = shape(&plan("Seq Scan", "orders", 1.0)).unwrap();
        let b = shape(&plan("Seq Scan", "orders", 999.5)).unwrap();
        assert_eq!(a, b, "costs and conditions are not the shape");
        assert!(a.seq_scan);
        assert_eq!(a.hash.len(), 16);
        let c = shape(&plan("Index Scan", "orders", 1.0)).unwrap();
        assert_ne!(a.hash, c.hash);
        assert!(!c.seq_scan);
        assert_ne!(a.hash, shape(&plan("Seq Scan", "users", 1.0)).unwrap().hash);
        assert_eq!(shape(&json!([])), None);
    }

    #[test]
    fn a_changed_hash_counts_once_and_a_skip_keeps_the_last_plan() {
        let t0 = StdInstant::now();
        let key: Key = ("app".to_owned(), 7);
        let mut plans = Plans::default();
        let top = vec![key.clone()];
        let hour = Duration::from_secs(3600);
        assert_eq!(plans.due(&top, hour, t0), top, "never explained");
        let seq = shape(&plan("Seq Scan", "t", 1.0)).unwrap();
        let index = shape(&plan("Index Scan", "t", 1.0)).unwrap();
        plans.record(key.clone(), Ok(index.clone()), t0);
        assert!(plans.due(&top, hour, t0).is_empty(), "explained just now");
        plans.record(key.clone(), Ok(index), t0 + hour);
        plans.record(key.clone(), Err(Skip::Timeout), t0 + hour * 2);
        let other: Key = ("app".to_owned(), 8);
        plans.record(other.clone(), Err(Skip::Failed), t0);
        assert!(
            plans.due(&[other], hour, t0 + hour * 9).is_empty(),
            "a text the server cannot plan is not sent again"
        );
        let seq_hash = seq.hash.clone();
        plans.record(key.clone(), Ok(seq), t0 + hour * 3);
        let mut out = Output::default();
        plans.publish(&mut out, "db", &top);
        let at = |name: &str, labels: &[(&str, &str)]| out.labelled_one(name, labels);
        let statement = [("database", "app"), ("queryid", "7")];
        assert_eq!(at(PLAN_CHANGES.name, &statement), Some(1.0));
        assert_eq!(at(PLAN_SEQ_SCAN.name, &statement), Some(1.0));
        assert_eq!(
            at(PLAN_INFO.name, &[("plan", seq_hash.as_str())]),
            Some(1.0)
        );
        assert_eq!(at(PLANS_SKIPPED.name, &[("reason", "timeout")]), Some(1.0));
        assert_eq!(at(PLANS_SKIPPED.name, &[("reason", "writes")]), Some(0.0));
        assert_eq!(at(PLANS_SKIPPED.name, &[("reason", "failed")]), Some(1.0));
        assert_eq!(at(PLANS_EXPLAINED.name, &[]), Some(3.0));
    }

    #[test]
    fn settings_are_checked_with_the_field() {
        let mut errors = Vec::new();
        PlanSettings {
            interval: Dur(Duration::from_secs(1)),
            timeout: Dur(Duration::from_secs(10)),
        }
        .validate("sources[0].statements.plans", &mut errors);
        let text: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        assert!(text[0].contains("statements.plans.interval"), "{text:?}");
        assert!(text[1].contains("statements.plans.timeout"), "{text:?}");
        errors.clear();
        PlanSettings::default().validate("p", &mut errors);
        assert!(errors.is_empty());
    }
}
