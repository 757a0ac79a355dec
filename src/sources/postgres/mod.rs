//! Postgres source (sqlx): health and vital statistics, and SQL checks whose rows become samples.
//!
//! Checks run in a `READ ONLY` transaction with `statement_timeout` set to what is left of the
//! check's timeout, so a query the scheduler gives up on is also stopped by the server.
//! The health probe has a connection of its own: slow checks holding the pool never make a
//! healthy database look down.
//!
//! Three checks are built in, on by default: `statements` (which statements take the time,
//! from `pg_stat_statements`, and their plans) and `tables` (which tables are read whole, from
//! `pg_stat_user_tables`), each read in the background and published as what moved in a
//! window; and `load` (what the sessions are doing right now, and who blocks whom, sampled
//! from `pg_stat_activity` every second on the health probe's connection).
//!
//! Files by concern: `session` (the read-only transaction and error classification),
//! `queries` (SQL checks), `heartbeats` (heartbeat checks), `statements`, `tables` and `load`
//! (the built-in checks; `plans` the statements' plans, `blockers` the blocking graph of a
//! load sample), `decode` (cells into numbers and labels), `health` (the health probe),
//! `metrics` (the kind's metric table); this module holds the settings, the check type, the
//! kind and the source.

mod blockers;
mod databases;
mod decode;
mod health;
mod heartbeats;
pub mod load;
mod metrics;
mod panels;
pub mod plans;
mod queries;
mod session;
pub mod statements;
pub mod tables;

pub use databases::Databases;
use heartbeats::HeartbeatProbe;
use queries::SqlProbe;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use sqlx::postgres::{PgConnectOptions, PgPool, PgSslMode};
use sqlx::PgConnection;
use tokio::sync::Mutex;

use super::{Kind, Parsed, Runnable, Source};
use crate::config_core::parse::builtin;
use crate::config_core::parse::parse_split;
use crate::config_core::validate::in_range;
use crate::config_core::{
    CheckCommon, CheckConfig, CheckPlan, CheckSpec, ConfigError, Size, Split, Switch,
};
use crate::series::metric::Metric;
use crate::sources::certificates::{Endpoints, Handshake, TlsEndpoint};
use crate::sources::declare::{schema, CheckList};
use crate::sources::heartbeat::{HeartbeatCommon, Tracker};
use crate::sources::rows::RowShape;
use crate::sources::{Connect, ConnectError};
use load::{LoadProbe, LoadSettings};
use session::CheckPool;
use statements::{StatementsProbe, StatementsSettings};
use tables::{TablesProbe, TablesSettings};

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
    /// WAL one replication slot may hold back before it is urgent (default 10GiB): set it to
    /// what the disk of `pg_wal` can spare. Published as
    /// `pulse_postgres_replication_slot_wal_limit_bytes` (the server's `max_slot_wal_keep_size`
    /// where that is smaller); PulsePostgresReplicationSlotWalGrowing warns a day before a
    /// slot's WAL reaches it at its present pace and pages four hours before.
    #[serde(default = "default_slot_wal_limit")]
    pub slot_wal_limit: Size,
    /// Run the SQL checks (`checks:`, not `heartbeats:`) in every database of the server these
    /// pick instead of the URL's alone, each sample labelled `database`. The health probe stays
    /// on the URL's database. Unset: the URL's database only.
    #[serde(default)]
    pub databases: Option<Databases>,
    /// Which statements take the database's time, from `pg_stat_statements` where it is
    /// installed and loaded: on by default (`{ interval: 1m, top: 20, text: true }`),
    /// `false` turns it off.
    #[serde(default)]
    pub statements: Switch<StatementsSettings>,
    /// Which tables of the URL's database are read whole by sequential scans, from
    /// `pg_stat_user_tables`: on by default (`{ interval: 1m, top: 20 }`), `false` turns it off.
    #[serde(default)]
    pub tables: Switch<TablesSettings>,
    /// Database load and blockers, sampled from `pg_stat_activity` on the health probe's
    /// connection (no connection more): on by default (`{ interval: 1s }`), `false` turns it
    /// off. `cpus:` declares the server's CPUs for PulsePostgresLoadHigh.
    #[serde(default)]
    pub load: Switch<LoadSettings>,
}

fn default_pool() -> u32 {
    2
}

/// 10 GiB: ten times the default `max_wal_size`, so a slot that holds more is not a standby
/// catching up but one gone or stuck.
fn default_slot_wal_limit() -> Size {
    Size(10 << 30)
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
    Heartbeat(Split<HeartbeatCommon, PostgresBeatSource>),
    /// The built-in `statements` check.
    Statements(StatementsSettings),
    /// The built-in `tables` check.
    Tables(TablesSettings),
    /// The built-in `load` check.
    Load(LoadSettings),
}

impl CheckSpec for PostgresCheck {
    fn default_name(&self, common: &CheckCommon) -> String {
        match self {
            PostgresCheck::Sql(_) => common.metric.clone().unwrap_or_default(),
            PostgresCheck::Heartbeat(Split(hb, _)) => hb.default_name(),
            PostgresCheck::Statements(_) => statements::CHECK.to_owned(),
            PostgresCheck::Tables(_) => tables::CHECK.to_owned(),
            PostgresCheck::Load(_) => load::CHECK.to_owned(),
        }
    }

    fn names_metric(&self) -> bool {
        matches!(self, PostgresCheck::Sql(_))
    }

    /// Heartbeat checks cap their workers; the built-in checks publish a top N, bounded by
    /// `max_series` like a query's rows.
    fn bounds_itself(&self) -> bool {
        matches!(self, PostgresCheck::Heartbeat(_))
    }

    fn series(&self, common: &CheckCommon) -> Vec<crate::config_core::shape::Series> {
        match self {
            PostgresCheck::Sql(Split(shape, sql)) => {
                let metric = common.metric.as_deref().unwrap_or_default();
                shape.series(metric, ranks_and_limits(&sql.sql))
            }
            PostgresCheck::Heartbeat(Split(hb, _)) => hb.series(),
            PostgresCheck::Statements(_) => panels::statements(),
            PostgresCheck::Tables(_) => panels::tables(),
            PostgresCheck::Load(_) => panels::load(),
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

/// Where a Postgres heartbeat check reads beats: SQL returning a `worker` column, a `last_seen`
/// column (a timestamp, or unix seconds) and the configured attribute columns.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PostgresBeatSource {
    /// The query, run read-only like every check.
    pub sql: String,
}

/// The built-in metrics of a Postgres source: its health probe's.
pub const METRICS: &[Metric] = metrics::METRICS;

/// `kind: postgres`.
pub struct Postgres;

impl Kind for Postgres {
    const NAME: &'static str = "postgres";
    const TITLE: &'static str = "Postgres";
    const EXAMPLE: &'static str = include_str!("example.yml");
    const METRICS_INTRO: &'static str = "From the health probe, on a connection of its own. Every query works for a role with \
        `pg_monitor`; a view or function the server or the role lacks (an older version, a managed \
        service) leaves its rows absent without failing the probe. Replication numbers depend on the \
        role: a standby publishes its own lag and WAL receiver, a primary its standbys. Replication \
        numbers of a primary without standbys or slots: `pulse_postgres_streaming_standbys` 0 only.";
    type Settings = PostgresConfig;
    type Check = PostgresCheck;
    type Source = PostgresSource;
    const METRICS: &'static [Metric] = METRICS;

    fn lists() -> Vec<CheckList<PostgresCheck>> {
        vec![
            CheckList {
                key: "checks",
                about: "SQL whose rows become samples.",
                parts: || vec![schema::<Sql>(), schema::<RowShape>()],
                parse: |v, p, e| parse_split(v, p, e).map(PostgresCheck::Sql),
            },
            CheckList {
                key: "heartbeats",
                about: "SQL returning one row per worker: `worker`, `last_seen` and the attribute columns.",
                parts: || vec![schema::<PostgresBeatSource>(), schema::<HeartbeatCommon>()],
                parse: |v, p, e| parse_split(v, p, e).map(PostgresCheck::Heartbeat),
            },
        ]
    }

    fn statistics_checks(settings: &PostgresConfig, path: &str) -> Vec<CheckConfig<PostgresCheck>> {
        let mut checks = Vec::new();
        // Each runs on its own interval and timeout, whatever the source's: the interval is the
        // window of its numbers.
        let every = |check: &mut CheckConfig<PostgresCheck>,
                     interval: crate::config_core::Dur,
                     timeout: crate::config_core::Dur| {
            check.common.interval = Some(interval);
            check.common.timeout = Some(timeout);
        };
        if let Some(s) = settings.statements.on() {
            let mut c = builtin(
                path,
                statements::CHECK,
                PostgresCheck::Statements(s.clone()),
            );
            every(&mut c, s.interval, s.timeout);
            checks.push(c);
        }
        if let Some(t) = settings.tables.on() {
            let mut c = builtin(path, tables::CHECK, PostgresCheck::Tables(t.clone()));
            every(&mut c, t.interval, t.timeout);
            checks.push(c);
        }
        if let Some(l) = settings.load.on() {
            let mut c = builtin(path, load::CHECK, PostgresCheck::Load(l.clone()));
            every(&mut c, l.interval, l.timeout);
            checks.push(c);
        }
        checks
    }

    fn validate(parsed: &Parsed<Self>, path: &str, errors: &mut Vec<ConfigError>) {
        let config = &parsed.settings;
        if let Some(s) = config.statements.on() {
            s.validate(&format!("{path}.statements"), errors);
        }
        if let Some(t) = config.tables.on() {
            t.validate(&format!("{path}.tables"), errors);
        }
        if let Some(l) = config.load.on() {
            l.validate(&format!("{path}.load"), errors);
        }
        if let Err(e) = crate::clients::urls::postgres(&config.url) {
            errors.push(ConfigError::new(format!("{path}.url"), e));
        }
        // An exporter holding more than 100 connections is a load on the database, not a probe.
        in_range(
            &format!("{path}.max_connections"),
            config.max_connections.into(),
            1,
            100,
            errors,
        );
        if let Some(d) = &config.databases {
            d.validate(&format!("{path}.databases"), errors);
        }
        for check in &parsed.checks {
            let p = &check.path;
            if let (Some(_), PostgresCheck::Sql(Split(shape, _))) = (&config.databases, &check.spec)
            {
                if shape.labels.iter().any(|l| l == "database")
                    || check.common.const_labels.contains_key("database")
                {
                    errors.push(ConfigError::new(
                        format!("{p}.labels"),
                        "`database` is the label `databases:` gives every sample: name this \
                         column otherwise",
                    ));
                }
            }
            match &check.spec {
                PostgresCheck::Heartbeat(Split(hb, b)) => {
                    hb.validate_check(p, &check.common, errors);
                    if b.sql.trim().is_empty() {
                        errors.push(ConfigError::new(format!("{p}.sql"), "must not be empty"));
                    }
                }
                PostgresCheck::Statements(_)
                | PostgresCheck::Tables(_)
                | PostgresCheck::Load(_) => {}
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

    fn series(
        parsed: &Parsed<Self>,
        check: &CheckConfig<PostgresCheck>,
    ) -> Vec<crate::config_core::shape::Series> {
        match (&parsed.settings.databases, &check.spec) {
            (Some(_), PostgresCheck::Sql(Split(shape, sql))) => {
                // Fanned out: every series has the `database` label first.
                let mut shape = shape.clone();
                shape.labels.insert(0, "database".to_owned());
                let metric = check.common.metric.as_deref().unwrap_or_default();
                shape.series(metric, ranks_and_limits(&sql.sql))
            }
            _ => check.spec.series(&check.common),
        }
    }

    fn display_endpoint(settings: &PostgresConfig) -> String {
        crate::secrets::display_url(&settings.url)
    }

    fn tls_endpoints(settings: &PostgresConfig) -> Endpoints {
        let Ok(options) = PgConnectOptions::from_str(&settings.url) else {
            return Endpoints::None;
        };
        // `prefer` and `allow` use TLS where the server offers it: the read asks and learns.
        if options.get_socket().is_some()
            || options.get_host().starts_with('/')
            || matches!(options.get_ssl_mode(), PgSslMode::Disable)
        {
            return Endpoints::None;
        }
        Endpoints::fixed([Some(TlsEndpoint::new(
            options.get_host(),
            options.get_port(),
            Handshake::Postgres,
        ))])
    }
}

/// A Postgres source: a small pool for checks and one connection for health.
pub struct PostgresSource {
    name: String,
    options: PgConnectOptions,
    pool: CheckPool,
    max_connections: u32,
    slot_wal_limit: u64,
    health_conn: Arc<Mutex<Option<PgConnection>>>,
    /// `databases:`, when the SQL checks fan out.
    fanout: Option<Arc<databases::Fanout>>,
}

impl Connect<PostgresConfig> for PostgresSource {
    fn connect(config: &PostgresConfig, name: &str) -> Result<Self, ConnectError> {
        crate::secrets::register_url_password(&config.url);
        let options = crate::clients::postgres::options(&config.url, "pulse-exporter")
            .map_err(|e| ConnectError::field("url", crate::secrets::scrub(&e.to_string())))?;
        let fanout = config
            .databases
            .as_ref()
            .map(|d| Arc::new(d.fanout(options.clone())));
        let pool = CheckPool::new(crate::clients::postgres::pool(
            options.clone(),
            config.max_connections,
            Duration::from_secs(30),
            Some(Duration::from_secs(300)),
        ));
        Ok(PostgresSource {
            name: name.to_owned(),
            options,
            pool,
            max_connections: config.max_connections,
            slot_wal_limit: config.slot_wal_limit.0,
            health_conn: Arc::new(Mutex::new(None)),
            fanout,
        })
    }
}

impl Source<PostgresCheck> for PostgresSource {
    fn health(&self) -> Arc<dyn Runnable> {
        Arc::new(health::HealthProbe {
            source: self.name.clone(),
            options: self.options.clone(),
            pool: PgPool::clone(&self.pool),
            max_connections: self.max_connections,
            slot_wal_limit: self.slot_wal_limit,
            conn: self.health_conn.clone(),
        })
    }

    fn check(&self, check: &CheckConfig<PostgresCheck>, plan: &CheckPlan) -> Arc<dyn Runnable> {
        match &check.spec {
            PostgresCheck::Statements(settings) => Arc::new(StatementsProbe {
                source: self.name.clone(),
                pool: self.pool.clone(),
                options: self.options.clone(),
                settings: settings.clone(),
                state: Default::default(),
            }),
            PostgresCheck::Load(settings) => Arc::new(LoadProbe {
                source: self.name.clone(),
                options: self.options.clone(),
                conn: self.health_conn.clone(),
                settings: settings.clone(),
                state: tokio::sync::Mutex::new(load::LoadState::new(
                    settings,
                    self.options.get_database().unwrap_or("postgres"),
                )),
            }),
            PostgresCheck::Tables(settings) => Arc::new(TablesProbe {
                source: self.name.clone(),
                pool: self.pool.clone(),
                settings: settings.clone(),
                window: Default::default(),
            }),
            PostgresCheck::Heartbeat(Split(hb, b)) => Arc::new(HeartbeatProbe {
                source: self.name.clone(),
                pool: self.pool.clone(),
                hb: hb.clone(),
                sql: b.sql.clone(),
                tracker: Tracker::default(),
            }),
            PostgresCheck::Sql(Split(shape, sql)) if self.fanout.is_some() => {
                Arc::new(databases::FanoutProbe {
                    pool: self.pool.clone(),
                    fanout: self.fanout.clone().expect("matched is_some"),
                    metric: check.common.metric.clone().unwrap_or_default(),
                    help: check.help(plan.interval),
                    shape: shape.clone(),
                    sql: sql.sql.clone(),
                    max_series: plan.max_series,
                })
            }
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

#[cfg(test)]
mod tests {
    use crate::config::{assert_reports, errors_of};

    #[test]
    fn a_fanned_out_check_may_not_name_a_label_database() {
        assert_reports(
            "sources:\n  - { name: db, kind: postgres, url: 'postgres://h/db', databases: { max: 0 }, checks: [{ metric: app_x, sql: 'SELECT 1 AS value, datname AS database FROM pg_database', labels: [database] }] }\n",
            &[
                "sources[0].databases.max",
                "sources[0].checks[0].labels: `database` is the label `databases:` gives",
            ],
        );
        // Without `databases:`, a `database` column is the check's own business.
        let own = "sources:\n  - { name: db, kind: postgres, url: 'postgres://h/db', checks: [{ metric: app_x, sql: SELECT 1 AS value, labels: [database] }] }\n";
        assert_eq!(errors_of(own), "");
    }

    #[tokio::test]
    async fn the_urls_application_name_is_kept_and_ours_is_the_default() {
        let name = |url: &str| {
            let config = super::PostgresConfig {
                url: url.to_owned(),
                max_connections: 1,
                slot_wal_limit: super::default_slot_wal_limit(),
                databases: None,
                statements: crate::config_core::Switch::Off,
                tables: crate::config_core::Switch::Off,
                load: crate::config_core::Switch::Off,
            };
            let source =
                <super::PostgresSource as crate::sources::Connect<_>>::connect(&config, "db")
                    .unwrap();
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
