//! Postgres source (sqlx): health and vital statistics, and SQL checks whose rows become samples.
//!
//! Checks run in a `READ ONLY` transaction with `statement_timeout` set to what is left of the
//! check's timeout, so a query the scheduler gives up on is also stopped by the server.
//! The health probe has a connection of its own: slow checks holding the pool never make a
//! healthy database look down.

mod health;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::TryStreamExt;
use rust_decimal::prelude::ToPrimitive;
use serde::Deserialize;
use serde_yaml::Value;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::types::chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use sqlx::{Column, ConnectOptions, PgConnection, Row, TypeInfo, ValueRef};
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::{remaining, Kind, Parsed, Probe, ProbeFuture, Source};
use crate::config::parse::{parse_at, parse_split, take_checks};
use crate::config::validate::in_range;
use crate::config::{CheckCommon, CheckConfig, CheckPlan, CheckSpec, ConfigError, Split};
use crate::error::{ProbeError, Reason};
use crate::heartbeat::{Beat, HeartbeatCommon, NewestBeats, Tracker};
use crate::reference::{schema, CheckList, KindReference};
use crate::rows::{self, RowShape};
use crate::sample::Metric;

/// Connection settings of a `kind: postgres` source.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PostgresConfig {
    /// Connection URL, e.g. `postgres://app:${env:PGPASSWORD}@db:5432/app?sslmode=require`.
    /// TLS with a private CA and a client certificate goes in the URL:
    /// `sslmode=verify-full&sslrootcert=/ca.pem&sslcert=/client.pem&sslkey=/client-key.pem`.
    pub url: String,
    /// Connections in the pool shared by this source's checks (default 2, at most 100). The health probe
    /// keeps one more of its own.
    #[serde(default = "default_pool")]
    pub max_connections: u32,
}

fn default_pool() -> u32 {
    2
}

/// The query of a SQL check; how its rows become samples is the shared [`RowShape`].
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Sql {
    /// The query. It runs read-only; a statement that writes fails with reason `query`.
    pub sql: String,
}

/// A check of a Postgres source.
#[derive(Debug, Clone, PartialEq)]
pub enum PostgresCheck {
    /// `checks:` items: SQL whose rows become samples.
    Sql(Split<RowShape, Sql>),
    /// `heartbeats:` items: SQL returning one row per worker.
    Heartbeat(Split<HeartbeatCommon, BeatSource>),
}

impl CheckSpec for PostgresCheck {
    fn default_name(&self, common: &CheckCommon) -> String {
        match self {
            PostgresCheck::Sql(_) => common.metric.clone().unwrap_or_default(),
            PostgresCheck::Heartbeat(Split(hb, _)) => hb.default_name(),
        }
    }

    fn names_metric(&self) -> bool {
        matches!(self, PostgresCheck::Sql(_))
    }

    fn series(&self, common: &CheckCommon) -> Vec<crate::shape::Series> {
        match self {
            PostgresCheck::Sql(Split(shape, sql)) => {
                let metric = common.metric.as_deref().unwrap_or_default();
                shape.series(metric, ranks_and_limits(&sql.sql))
            }
            PostgresCheck::Heartbeat(Split(hb, _)) => hb.series(),
        }
    }
}

/// True for a query that returns a bounded list (`LIMIT n`, `FETCH FIRST n ROWS`): a top-N
/// list, shown as a table.
fn ranks_and_limits(sql: &str) -> bool {
    static LIMIT: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"(?i)\b(limit\s+\d|fetch\s+(first|next)\b)").expect("valid regex")
    });
    LIMIT.is_match(sql)
}

impl rows::Row for PgRow {
    fn text(&self, field: &str) -> Result<String, ProbeError> {
        cell_text(self, field)
    }

    fn number(&self, field: &str) -> Result<Option<f64>, ProbeError> {
        cell_number(self, field)
    }
}

/// Where a Postgres heartbeat check reads beats: SQL returning a `worker` column, a `last_seen`
/// column (a timestamp, or unix seconds) and the configured attribute columns.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BeatSource {
    /// The query, run read-only like every check.
    pub sql: String,
}

/// The built-in metrics of a Postgres source: its health probe's.
pub const METRICS: &[Metric] = health::METRICS;

/// `kind: postgres`.
pub struct Postgres;

impl Kind for Postgres {
    const NAME: &'static str = "postgres";
    type Settings = PostgresConfig;
    type Check = PostgresCheck;
    type Source = PostgresSource;
    const METRICS: &'static [Metric] = METRICS;

    fn parse(mut rest: Value, path: &str, errors: &mut Vec<ConfigError>) -> Option<Parsed<Self>> {
        let mut checks = take_checks(&mut rest, "checks", path, errors, |v, p, e| {
            parse_split(v, p, e).map(PostgresCheck::Sql)
        });
        checks.extend(take_checks(
            &mut rest,
            "heartbeats",
            path,
            errors,
            |v, p, e| parse_split(v, p, e).map(PostgresCheck::Heartbeat),
        ));
        let settings: PostgresConfig = parse_at(rest, path, errors)?;
        Some(Parsed { settings, checks })
    }

    fn validate(parsed: &Parsed<Self>, path: &str, errors: &mut Vec<ConfigError>) {
        validate(parsed, path, errors)
    }

    fn reference() -> KindReference {
        KindReference {
            settings: schema::<PostgresConfig>(),
            lists: vec![
                CheckList {
                    key: "checks",
                    about: "SQL whose rows become samples.",
                    parts: vec![schema::<Sql>(), schema::<RowShape>()],
                },
                CheckList {
                    key: "heartbeats",
                    about: "SQL returning one row per worker: `worker`, `last_seen` and the attribute columns.",
                    parts: vec![schema::<BeatSource>(), schema::<HeartbeatCommon>()],
                },
            ],
        }
    }

    fn display_endpoint(settings: &PostgresConfig) -> String {
        crate::secrets::display_url(&settings.url)
    }

    fn connect(settings: &PostgresConfig, name: &str) -> Result<PostgresSource, String> {
        PostgresSource::new(settings, name)
    }
}

/// Records the postgres rules the source at `path` breaks.
fn validate(parsed: &Parsed<Postgres>, path: &str, errors: &mut Vec<ConfigError>) {
    let config = &parsed.settings;
    // The driver parses any scheme; another database's URL would only fail at connect time.
    let scheme_ok = ["postgres://", "postgresql://"].iter().any(|s| {
        config
            .url
            .get(..s.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(s))
    });
    let url = match scheme_ok {
        true => PgConnectOptions::from_str(&config.url).map_err(|e| e.to_string()),
        false => Err("the scheme is not postgres:// or postgresql://".to_owned()),
    };
    if let Err(e) = url {
        errors.push(ConfigError::new(
            format!("{path}.url"),
            format!("not a usable Postgres URL ({}); expected postgres://user:password@host:5432/database", crate::secrets::scrub(&e)),
        ));
    }
    // An exporter holding more than 100 connections is a load on the database, not a probe.
    in_range(
        &format!("{path}.max_connections"),
        config.max_connections.into(),
        1,
        100,
        errors,
    );
    for check in &parsed.checks {
        let p = &check.path;
        match &check.spec {
            PostgresCheck::Heartbeat(Split(hb, b)) => {
                hb.validate_check(p, &check.common, errors);
                if b.sql.trim().is_empty() {
                    errors.push(ConfigError::new(format!("{p}.sql"), "must not be empty"));
                }
            }
            PostgresCheck::Sql(Split(shape, sql)) => {
                if check.common.metric.is_none() {
                    errors.push(ConfigError::new(
                        format!("{p}.metric"),
                        "required: the metric name the rows are published under",
                    ));
                }
                if sql.sql.trim().is_empty() {
                    errors.push(ConfigError::new(format!("{p}.sql"), "must not be empty"));
                }
                shape.validate(p, "column", &check.common.const_labels, errors);
            }
        }
    }
}

/// A Postgres source: a small pool for checks and one connection for health.
pub struct PostgresSource {
    name: String,
    options: PgConnectOptions,
    pool: PgPool,
    max_connections: u32,
    health_conn: Arc<Mutex<Option<PgConnection>>>,
}

impl PostgresSource {
    /// Creates the source without connecting.
    pub fn new(config: &PostgresConfig, name: &str) -> Result<Self, String> {
        crate::secrets::register_url_password(&config.url);
        let options = PgConnectOptions::from_str(&config.url)
            .map_err(|e| crate::secrets::scrub(&e.to_string()).into_owned())?
            .log_statements(tracing::log::LevelFilter::Trace)
            // sqlx warns about every statement over a second, on every run: a slow query is
            // what pulse_check_duration_seconds and the alerts report, not a log line.
            .log_slow_statements(
                tracing::log::LevelFilter::Debug,
                std::time::Duration::from_secs(1),
            );
        // The URL's own `application_name` (how a DBA tells our sessions apart) is kept.
        let options = match options.get_application_name() {
            Some(_) => options,
            None => options.application_name("pulse-exporter"),
        };
        let pool = PgPoolOptions::new()
            .max_connections(config.max_connections)
            .min_connections(0)
            .acquire_timeout(Duration::from_secs(30))
            .idle_timeout(Some(Duration::from_secs(300)))
            .connect_lazy_with(options.clone());
        Ok(PostgresSource {
            name: name.to_owned(),
            options,
            pool,
            max_connections: config.max_connections,
            health_conn: Arc::new(Mutex::new(None)),
        })
    }
}

impl Source<PostgresCheck> for PostgresSource {
    fn health(&self) -> Arc<dyn Probe> {
        Arc::new(health::HealthProbe {
            source: self.name.clone(),
            options: self.options.clone(),
            pool: self.pool.clone(),
            max_connections: self.max_connections,
            conn: self.health_conn.clone(),
        })
    }

    fn check(&self, check: &CheckConfig<PostgresCheck>, plan: &CheckPlan) -> Arc<dyn Probe> {
        match &check.spec {
            PostgresCheck::Heartbeat(Split(hb, b)) => Arc::new(HeartbeatProbe {
                source: self.name.clone(),
                pool: self.pool.clone(),
                hb: hb.clone(),
                sql: b.sql.clone(),
                tracker: Tracker::default(),
            }),
            PostgresCheck::Sql(Split(shape, sql)) => Arc::new(SqlProbe {
                pool: self.pool.clone(),
                metric: check.common.metric.clone().unwrap_or_default(),
                help: check.help(plan.interval),
                shape: shape.clone(),
                sql: sql.sql.clone(),
                max_series: plan.max_series,
            }),
        }
    }
}

/// Classifies a sqlx error into a bounded reason; the message is scrubbed by [`ProbeError`].
pub(super) fn classify(err: sqlx::Error) -> ProbeError {
    let reason = match &err {
        sqlx::Error::Database(db) => match db.code().as_deref() {
            Some("57014") => Reason::Timeout,
            Some(c) if c.starts_with("28") || c == "42501" => Reason::Auth,
            Some("3D000") => Reason::NotFound,
            // Cannot connect now, too many connections, or the server shutting down.
            Some("57P01" | "57P02" | "57P03" | "53300") => Reason::Connect,
            _ => Reason::Query,
        },
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed => Reason::Connect,
        sqlx::Error::Configuration(_) => Reason::Connect,
        sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::Decode(_)
        | sqlx::Error::ColumnNotFound(_) => Reason::Decode,
        _ => Reason::Query,
    };
    let message = match &err {
        sqlx::Error::PoolTimedOut => "no connection available in time: the server is unreachable or every pooled connection is busy".to_owned(),
        other => other.to_string(),
    };
    ProbeError::new(reason, message)
}

/// Starts the read-only transaction a check runs in. Waiting for a busy pool's connection to
/// come back is queueing, bounded by the check's own deadline; waiting for the pool to open a
/// new one is connecting, bounded by [`connect_budget`]: sqlx retries a refused connection
/// until its acquire timeout, which would make a wrong port or a stopped server look like a
/// slow query (`timeout`) instead of what it is (`connect`).
async fn begin(
    pool: &PgPool,
    deadline: Instant,
) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, ProbeError> {
    let opening = pool.num_idle() == 0 && pool.size() < pool.options().get_max_connections();
    let begin = pool.begin_with("BEGIN READ ONLY");
    if !opening {
        return begin.await.map_err(classify);
    }
    let budget = connect_budget(deadline);
    match tokio::time::timeout(budget, begin).await {
        Ok(r) => r.map_err(classify),
        Err(_) => Err(ProbeError::new(
            Reason::Connect,
            format!(
                "no connection to the server within {} ms: it refuses, is unreachable or does not answer",
                budget.as_millis()
            ),
        )),
    }
}

/// How long a check may spend opening a connection: a third of what is left of its
/// deadline, from half a second to five.
fn connect_budget(deadline: Instant) -> Duration {
    (remaining(deadline) / 3).clamp(Duration::from_millis(500), Duration::from_secs(5))
}

/// Statement timeout to give the server: what is left of the deadline, minus a margin so the
/// server's cancellation (reason `timeout`, with a clear message) normally wins the race.
pub(super) fn server_budget(deadline: Instant) -> Duration {
    let left = remaining(deadline);
    let margin = Duration::from_millis(50).min(left / 2);
    (left - margin).max(Duration::from_millis(1))
}

struct SqlProbe {
    pool: PgPool,
    metric: String,
    help: String,
    shape: RowShape,
    sql: String,
    /// The check's series cap: rows past it are counted, never kept.
    max_series: usize,
}

/// Runs `sql` in a READ ONLY transaction whose `statement_timeout` is the time left before
/// `deadline`, so the server stops the query when the scheduler gives up on it. Rows are
/// handed to `each` as they arrive, so a result is never held whole; once `each` returns
/// `false` the remaining rows are read and counted but not decoded, and that count is
/// returned.
async fn stream_rows(
    pool: &PgPool,
    sql: &str,
    deadline: Instant,
    mut each: impl FnMut(&PgRow) -> Result<bool, ProbeError>,
) -> Result<u64, ProbeError> {
    let mut tx = begin(pool, deadline).await?;
    let budget = server_budget(deadline).as_millis().to_string();
    // Postgres 14+ can also check the client socket while a query runs: if the exporter is
    // stopped (or killed) mid-query, the server ends the query within a second instead of
    // running it on to its statement_timeout for nobody.
    let watch_client = tx.server_version_num().is_some_and(|v| v >= 140_000);
    let settings = if watch_client {
        "SELECT set_config('statement_timeout', $1, true), set_config('client_connection_check_interval', '1000', true)"
    } else {
        "SELECT set_config('statement_timeout', $1, true)"
    };
    sqlx::query(settings)
        .bind(budget)
        .execute(&mut *tx)
        .await
        .map_err(classify)?;
    let mut rest = 0u64;
    {
        let mut rows = sqlx::query(sql).fetch(&mut *tx);
        let mut wanted = true;
        while let Some(row) = rows.try_next().await.map_err(classify)? {
            if wanted {
                wanted = each(&row)?;
            } else {
                rest += 1;
            }
        }
    }
    // Nothing was written; ending with ROLLBACK returns the connection clean.
    tx.rollback().await.map_err(classify)?;
    Ok(rest)
}

impl Probe for SqlProbe {
    fn run(&self, deadline: Instant) -> ProbeFuture<'_> {
        Box::pin(async move {
            let mut sink = self.shape.sink(&self.metric, &self.help, self.max_series);
            let mut first = true;
            let rest = stream_rows(&self.pool, &self.sql, deadline, |row| {
                if std::mem::take(&mut first) {
                    check_columns(row, &self.shape)?;
                }
                sink.push(row)
            })
            .await?;
            sink.count_rest(rest);
            Ok(sink.finish())
        })
    }
}

struct HeartbeatProbe {
    source: String,
    pool: PgPool,
    hb: HeartbeatCommon,
    sql: String,
    tracker: Tracker,
}

impl Probe for HeartbeatProbe {
    fn run(&self, deadline: Instant) -> ProbeFuture<'_> {
        Box::pin(async move {
            let mut beats = NewestBeats::new(self.hb.max_workers);
            let mut malformed = 0u64;
            let mut example = None;
            stream_rows(&self.pool, &self.sql, deadline, |row| {
                let worker = cell_text(row, "worker")?;
                match cell_number(row, "last_seen") {
                    Ok(Some(at)) => {
                        let mut attributes = std::collections::BTreeMap::new();
                        for a in &self.hb.attributes {
                            attributes.insert(a.clone(), cell_text(row, a)?);
                        }
                        beats.push(Beat {
                            worker,
                            at,
                            attributes,
                        });
                    }
                    // A NULL or unreadable last_seen is a malformed beat, counted and logged.
                    Ok(None) | Err(_) => {
                        malformed += 1;
                        example.get_or_insert(worker);
                    }
                }
                Ok(true)
            })
            .await?;
            Ok(self.tracker.update_newest(
                &self.source,
                &self.hb,
                beats,
                malformed,
                example.as_deref(),
            ))
        })
    }
}

/// Fails with reason `decode`, naming the columns there are, when a label or value column
/// of the shape is not in the result.
fn check_columns(first: &PgRow, shape: &RowShape) -> Result<(), ProbeError> {
    let columns: Vec<&str> = first.columns().iter().map(|c| c.name()).collect();
    for wanted in shape.labels.iter().chain(&shape.values) {
        if !columns.contains(&wanted.as_str()) {
            return Err(ProbeError::new(
                Reason::Decode,
                format!("column `{wanted}` is not in the result (columns: {}); alias it in the SQL, e.g. `count(*) AS {wanted}`", columns.join(", ")),
            ));
        }
    }
    Ok(())
}

fn decode_error(column: &str, err: sqlx::Error) -> ProbeError {
    ProbeError::new(Reason::Decode, format!("column `{column}`: {err}"))
}

fn type_of(row: &PgRow, column: &str) -> Result<Option<String>, ProbeError> {
    let raw = row
        .try_get_raw(column)
        .map_err(|e| decode_error(column, e))?;
    if raw.is_null() {
        return Ok(None);
    }
    Ok(Some(raw.type_info().name().to_owned()))
}

/// A value column as a number; `None` for NULL.
fn cell_number(row: &PgRow, column: &str) -> Result<Option<f64>, ProbeError> {
    let Some(ty) = type_of(row, column)? else {
        return Ok(None);
    };
    let e = |err| decode_error(column, err);
    let v = match ty.as_str() {
        "INT2" => f64::from(row.try_get::<i16, _>(column).map_err(e)?),
        "INT4" => f64::from(row.try_get::<i32, _>(column).map_err(e)?),
        "INT8" => row.try_get::<i64, _>(column).map_err(e)? as f64,
        "FLOAT4" => f64::from(row.try_get::<f32, _>(column).map_err(e)?),
        "FLOAT8" => row.try_get::<f64, _>(column).map_err(e)?,
        "NUMERIC" => {
            let d = row.try_get::<rust_decimal::Decimal, _>(column).map_err(e)?;
            d.to_f64().ok_or_else(|| {
                ProbeError::new(Reason::Decode, format!("column `{column}`: numeric {d} does not fit a float"))
            })?
        }
        "BOOL" => f64::from(u8::from(row.try_get::<bool, _>(column).map_err(e)?)),
        // Points in time become unix seconds, the unit of *_timestamp_seconds metrics.
        "TIMESTAMPTZ" => {
            let t = row.try_get::<DateTime<Utc>, _>(column).map_err(e)?;
            t.timestamp_micros() as f64 / 1e6
        }
        "TIMESTAMP" => {
            let t = row.try_get::<NaiveDateTime, _>(column).map_err(e)?;
            t.and_utc().timestamp_micros() as f64 / 1e6
        }
        "TEXT" | "VARCHAR" | "BPCHAR" | "NAME" => {
            let s = row.try_get::<String, _>(column).map_err(e)?;
            s.trim().parse::<f64>().map_err(|_| {
                let shown: String = s.chars().take(40).collect();
                ProbeError::new(
                    Reason::Decode,
                    format!("column `{column}` holds text {shown:?} where a number belongs: fix the query or list the column under `labels`"),
                )
            })?
        }
        other => {
            return Err(ProbeError::new(
                Reason::Decode,
                format!("column `{column}` has type {other}, which is not a number: cast it in the SQL, e.g. `{column}::float8`"),
            ))
        }
    };
    Ok(Some(v))
}

/// A label column as text; NULL becomes the empty string (an absent label).
fn cell_text(row: &PgRow, column: &str) -> Result<String, ProbeError> {
    let Some(ty) = type_of(row, column)? else {
        return Ok(String::new());
    };
    let e = |err| decode_error(column, err);
    Ok(match ty.as_str() {
        "TEXT" | "VARCHAR" | "BPCHAR" | "NAME" => {
            crate::sample::label_head(row.try_get::<&str, _>(column).map_err(e)?).to_owned()
        }
        "INT2" => row.try_get::<i16, _>(column).map_err(e)?.to_string(),
        "INT4" => row.try_get::<i32, _>(column).map_err(e)?.to_string(),
        "INT8" => row.try_get::<i64, _>(column).map_err(e)?.to_string(),
        "FLOAT4" => row.try_get::<f32, _>(column).map_err(e)?.to_string(),
        "FLOAT8" => row.try_get::<f64, _>(column).map_err(e)?.to_string(),
        "NUMERIC" => row.try_get::<rust_decimal::Decimal, _>(column).map_err(e)?.to_string(),
        "BOOL" => row.try_get::<bool, _>(column).map_err(e)?.to_string(),
        "TIMESTAMPTZ" => row.try_get::<DateTime<Utc>, _>(column).map_err(e)?.to_rfc3339(),
        "DATE" => row.try_get::<NaiveDate, _>(column).map_err(e)?.to_string(),
        other => {
            return Err(ProbeError::new(
                Reason::Decode,
                format!("label column `{column}` has type {other}: cast it to text in the SQL, e.g. `{column}::text`"),
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use crate::configfile::{assert_reports, errors_of};
    use crate::error::Reason;

    #[test]
    fn errors_are_classified_into_bounded_reasons() {
        let io = sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert_eq!(super::classify(io).reason(), Reason::Connect);
        let busy = super::classify(sqlx::Error::PoolTimedOut);
        assert_eq!(busy.reason(), Reason::Connect);
        assert!(
            busy.to_string().contains("no connection available in time"),
            "{busy}"
        );
        assert_eq!(
            super::classify(sqlx::Error::ColumnNotFound("value".into())).reason(),
            Reason::Decode
        );
        assert_eq!(
            super::classify(sqlx::Error::RowNotFound).reason(),
            Reason::Query
        );
    }

    #[tokio::test]
    async fn the_urls_application_name_is_kept_and_ours_is_the_default() {
        let name = |url: &str| {
            let config = super::PostgresConfig {
                url: url.to_owned(),
                max_connections: 1,
            };
            let source = super::PostgresSource::new(&config, "db").unwrap();
            source.options.get_application_name().map(str::to_owned)
        };
        assert_eq!(
            name("postgres://app@db/app?application_name=billing-monitor").as_deref(),
            Some("billing-monitor")
        );
        assert_eq!(
            name("postgres://app@db/app").as_deref(),
            Some("pulse-exporter")
        );
    }

    #[test]
    fn a_valid_source_loads() {
        let e = errors_of(
            "sources:\n  - { name: db, kind: postgres, url: 'postgres://app@db:5432/app', checks: [{ metric: app_users, sql: 'SELECT 1 AS value' }] }",
        );
        assert_eq!(e, "");
    }

    #[test]
    fn bad_fields_are_named_with_their_fix() {
        assert_reports(
            r#"
sources:
  - name: db
    kind: postgres
    url: "mysql://nope"
    max_connections: 0
    checks:
      - { sql: "SELECT 1 AS value" }
      - { metric: app_empty, sql: "  " }
      - { metric: app_rows, sql: "SELECT 1 AS value", labels: [plan], const_labels: { plan: x } }
"#,
            &[
                "sources[0].url: not a usable Postgres URL",
                "sources[0].max_connections: must be at least 1",
                "sources[0].checks[0].metric: required",
                "sources[0].checks[1].sql: must not be empty",
                "sources[0].checks[2]",
            ],
        );
    }
}
