//! MongoDB source (official driver): ping and `serverStatus` for health, and `count`,
//! `estimated_count` and `aggregate` checks bounded by `maxTimeMS`, read from secondaries
//! when there are any.
//!
//! Filters and pipelines are written in YAML and may hold time windows relative to now:
//! `{ $now: "-24h" }` becomes the date 24 hours ago at every run, `{ $nowSeconds: "-1h" }` and
//! `{ $nowMillis: "-5m" }` the same instant as unix seconds or milliseconds, for documents that
//! store numbers instead of dates.
//!
//! The built-in `latency` check, on by default, reads which queries are slow and which read a
//! whole collection from the server's own statistics ([`latency`]); the built-in `load`
//! check, off unless set, samples what the operations wait for ([`load`]).
//!
//! Files by concern: `client` (the shared driver client and error classification),
//! `filters` (YAML into BSON, with relative times), `queries` (count and aggregate checks),
//! `heartbeats` (heartbeat checks), `latency` and `load` (the built-in checks), `decode` (BSON values
//! into numbers and labels), `health` (the health probe), `panels` (the built-in check's
//! dashboard panels); this module holds the settings, the check type, the kind and the
//! source.

mod client;
mod decode;
mod filters;
mod health;
mod heartbeats;
pub mod latency;
pub mod load;
mod panels;
mod queries;

use client::Shared;
pub use client::DEFAULT_DRIVER_TIMEOUT;
use filters::to_document;
use heartbeats::HeartbeatProbe;
use queries::CheckProbe;

use std::sync::Arc;
use std::time::SystemTime;

use serde::Deserialize;
use serde_yaml::Value;
use tokio::sync::OnceCell;

use super::{Kind, Parsed, Runnable, Source};
use crate::config_core::parse::{builtin, parse_split};
use crate::config_core::{
    CheckCommon, CheckConfig, CheckPlan, CheckSpec, ConfigError, Split, Switch,
};
use crate::series::metric::Metric;
use crate::sources::certificates::{Endpoints, Handshake, TlsEndpoint};
use crate::sources::declare::{schema, CheckList};
use crate::sources::heartbeat::{HeartbeatCommon, Tracker};
use crate::sources::rows::RowShape;
use crate::sources::{Connect, ConnectError};
use latency::{LatencyProbe, LatencySettings};
use load::{LoadProbe, MongoLoadSettings};

/// Connection settings of a `kind: mongodb` source.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MongodbConfig {
    /// Connection string: `mongodb://user:${env:PW}@host:27017/app?authSource=admin` or
    /// `mongodb+srv://…`. TLS with a private CA and a client certificate goes in it:
    /// `tls=true&tlsCAFile=/ca.pem&tlsCertificateKeyFile=/client-cert-and-key.pem`.
    pub url: String,
    /// Database the checks read (default: the one in the URL's path).
    pub database: Option<String>,
    /// Collections of that database whose latency is published by kind of operation, from
    /// `$collStats` `latencyStats` (e.g. `[users, posts]`; at most 50).
    #[serde(default)]
    pub collections: Vec<String>,
    /// Latency from the server's own statistics: the `collections` histograms, the oldest
    /// operation per namespace (`$currentOp`) and, where the profiler is on, the slowest
    /// query shapes: on by default (`{ interval: 1m, top: 20 }`), `false` turns it off.
    #[serde(default)]
    pub latency: Switch<LatencySettings>,
    /// The load of the server's operations, sampled from `$currentOp` every second by
    /// namespace and wait (lock, flow control, latch, CPU), and the operations waiting for a
    /// lock: off unless set (`true`, or `{ interval: 1s, top_namespaces: 30 }`). Needs the
    /// `clusterMonitor` role to see other users' operations.
    #[serde(default)]
    pub load: Option<Switch<MongoLoadSettings>>,
}

/// What a MongoDB query check runs: exactly one of `count`, `estimated_count` or
/// `aggregate`; how an aggregate's output documents become samples is the shared [`RowShape`].
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MongoQuery {
    /// Documents of a collection matching a filter.
    pub count: Option<CountSpec>,
    /// The collection's document count from its metadata (fast, no filter).
    pub estimated_count: Option<CollectionSpec>,
    /// A pipeline whose output documents become samples.
    pub aggregate: Option<AggregateSpec>,
}

/// A check of a MongoDB source.
#[derive(Debug, Clone, PartialEq)]
pub enum MongodbCheck {
    /// `checks:` items: a count or an aggregate.
    Query(Split<RowShape, MongoQuery>),
    /// `heartbeats:` items: one document per worker.
    Heartbeat(Split<HeartbeatCommon, MongodbBeatSource>),
    /// The built-in `latency` check.
    Latency(LatencySettings),
    /// The built-in `load` check.
    Load(MongoLoadSettings),
}

impl CheckSpec for MongodbCheck {
    fn default_name(&self, common: &CheckCommon) -> String {
        match self {
            MongodbCheck::Query(_) => common.metric.clone().unwrap_or_default(),
            MongodbCheck::Heartbeat(Split(hb, _)) => hb.default_name(),
            MongodbCheck::Latency(_) => latency::CHECK.to_owned(),
            MongodbCheck::Load(_) => load::CHECK.to_owned(),
        }
    }

    fn names_metric(&self) -> bool {
        matches!(self, MongodbCheck::Query(_))
    }

    /// Heartbeat checks cap their workers; the latency check publishes a top N, bounded by
    /// `max_series` like an aggregate's documents.
    fn bounds_itself(&self) -> bool {
        matches!(self, MongodbCheck::Heartbeat(_))
    }

    fn series(&self, common: &CheckCommon) -> Vec<crate::config_core::shape::Series> {
        match self {
            MongodbCheck::Query(Split(shape, q)) => {
                // A pipeline with a `$limit` stage returns a bounded list: a top-N table.
                let limited = q.aggregate.as_ref().is_some_and(|a| {
                    a.pipeline
                        .iter()
                        .any(|stage| stage.as_mapping().is_some_and(|m| m.contains_key("$limit")))
                });
                shape.series(common.metric.as_deref().unwrap_or_default(), limited)
            }
            MongodbCheck::Heartbeat(Split(hb, _)) => hb.series(),
            MongodbCheck::Latency(_) => panels::latency(),
            MongodbCheck::Load(_) => panels::load(),
        }
    }
}

/// `count:`.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CountSpec {
    /// Collection name.
    pub collection: String,
    /// Query filter (default: every document).
    #[serde(default)]
    #[schemars(with = "Option<serde_json::Value>")]
    pub filter: Option<Value>,
}

/// `estimated_count:`.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CollectionSpec {
    /// Collection name.
    pub collection: String,
}

/// `aggregate:`.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AggregateSpec {
    /// Collection name.
    pub collection: String,
    /// Pipeline stages.
    #[schemars(with = "Vec<serde_json::Value>")]
    pub pipeline: Vec<Value>,
}

/// Where a MongoDB heartbeat check reads beats: one document per worker.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MongodbBeatSource {
    /// Collection of heartbeat documents.
    pub collection: String,
    /// Which documents (default: all); may hold `$now` windows.
    #[serde(default)]
    #[schemars(with = "Option<serde_json::Value>")]
    pub filter: Option<Value>,
    /// Field naming the worker (default `worker`).
    #[serde(default = "default_worker_field")]
    pub worker_field: String,
    /// Field holding the last beat: a date, unix seconds or milliseconds (default `ts`).
    #[serde(default = "default_time_field")]
    pub time_field: String,
}

fn default_worker_field() -> String {
    "worker".to_owned()
}

fn default_time_field() -> String {
    "ts".to_owned()
}

/// The built-in metrics of a MongoDB source: its health probe's, then its latency and load
/// checks'.
pub const METRICS: &[Metric] = &[
    health::CONNECTIONS,
    health::OPERATIONS,
    health::START_TIME,
    health::CURSORS_OPEN,
    health::CURSORS_TIMED_OUT,
    health::HAS_PRIMARY,
    health::MEMBER_STATE,
    health::MEMBER_HEALTH,
    health::MEMBER_LAG,
    health::OPLOG_WINDOW,
    health::OP_LATENCY,
    health::OP_LATENCY_OPS,
    health::SCANNED_KEYS,
    health::SCANNED_DOCUMENTS,
    health::COLLECTION_SCANS,
    latency::COLLECTION_LATENCY,
    latency::OLDEST_OPERATION,
    latency::SHAPE_TIME,
    latency::SHAPE_CALLS,
    latency::SHAPE_DOCS,
    latency::PROFILE_WINDOW,
    load::ACTIVE_SECONDS,
    load::SAMPLES,
    load::SAMPLES_CAPPED,
    load::LOCK_WAITING,
    load::LOCK_WAITING_LONGEST,
];

/// `kind: mongodb`.
pub struct Mongodb;

impl Kind for Mongodb {
    const NAME: &'static str = "mongodb";
    const TITLE: &'static str = "MongoDB";
    const EXAMPLE: &'static str = include_str!("example.yml");
    const METRICS_INTRO: &'static str = "From `ping` (reachability), `serverStatus` and `replSetGetStatus` (fields the server lacks, or \
        that the user may not read without the `clusterMonitor` role, are skipped; a standalone server \
        publishes no `replset` metric and is still up).";
    type Settings = MongodbConfig;
    type Check = MongodbCheck;
    type Source = MongodbSource;
    const METRICS: &'static [Metric] = METRICS;
    const LATENCY_HISTOGRAM: Option<crate::sources::LatencyHistogram> =
        Some(crate::sources::LatencyHistogram {
            metric: &latency::COLLECTION_LATENCY,
            check: latency::CHECK,
            bounds: latency::classic_bounds,
        });

    fn lists() -> Vec<CheckList<MongodbCheck>> {
        vec![
            CheckList {
                key: "checks",
                about: "A count or an aggregate whose output documents become samples.",
                parts: || vec![schema::<MongoQuery>(), schema::<RowShape>()],
                parse: |v, p, e| parse_split(v, p, e).map(MongodbCheck::Query),
            },
            CheckList {
                key: "heartbeats",
                about: "One document per worker.",
                parts: || vec![schema::<MongodbBeatSource>(), schema::<HeartbeatCommon>()],
                parse: |v, p, e| parse_split(v, p, e).map(MongodbCheck::Heartbeat),
            },
        ]
    }

    fn statistics_checks(settings: &MongodbConfig, path: &str) -> Vec<CheckConfig<MongodbCheck>> {
        let mut checks = Vec::new();
        if let Some(l) = settings.latency.on() {
            let mut check = builtin(path, latency::CHECK, MongodbCheck::Latency(l.clone()));
            // Its own interval, whatever the source's: the profiler is read per window.
            check.common.interval = Some(l.interval);
            check.common.timeout = Some(l.timeout);
            checks.push(check);
        }
        if let Some(l) = settings.load.as_ref().and_then(Switch::on) {
            let mut check = builtin(path, load::CHECK, MongodbCheck::Load(l.clone()));
            check.common.interval = Some(l.interval);
            check.common.timeout = Some(l.timeout);
            checks.push(check);
        }
        checks
    }

    fn validate(parsed: &Parsed<Self>, p: &str, errors: &mut Vec<ConfigError>) {
        validate_settings(&parsed.settings, p, errors);
        for check in &parsed.checks {
            match &check.spec {
                MongodbCheck::Latency(_) | MongodbCheck::Load(_) => {}
                MongodbCheck::Heartbeat(Split(hb, b)) => validate_heartbeat(check, hb, b, errors),
                MongodbCheck::Query(Split(shape, m)) => validate_query(check, shape, m, errors),
            }
        }
    }

    fn display_endpoint(settings: &MongodbConfig) -> String {
        crate::secrets::display_url(&settings.url)
    }

    fn tls_endpoints(settings: &MongodbConfig) -> Endpoints {
        use mongodb::options::{ClientOptions, ConnectionString, HostInfo, ServerAddress, Tls};
        fn tcp(hosts: &[ServerAddress]) -> Vec<TlsEndpoint> {
            hosts
                .iter()
                .filter_map(|h| match h {
                    ServerAddress::Tcp { host, port } => Some(TlsEndpoint::new(
                        host,
                        port.unwrap_or(27017),
                        Handshake::Direct,
                    )),
                    _ => None,
                })
                .collect()
        }
        let Ok(parsed) = ConnectionString::parse(&settings.url) else {
            return Endpoints::None;
        };
        match (parsed.host_info, parsed.tls) {
            (HostInfo::HostIdentifiers(hosts), Some(Tls::Enabled(_))) => {
                Endpoints::fixed(tcp(&hosts).into_iter().map(Some))
            }
            // An SRV record means TLS unless the URL turns it off; its hosts are asked at
            // every read, as the driver does.
            (HostInfo::DnsRecord(_), tls) if !matches!(tls, Some(Tls::Disabled)) => {
                let url = settings.url.clone();
                Endpoints::Lookup(Arc::new(move || {
                    let url = url.clone();
                    Box::pin(async move {
                        ClientOptions::parse(&url)
                            .await
                            .map(|o| tcp(&o.hosts))
                            .map_err(|e| crate::secrets::scrub(&e.to_string()).into_owned())
                    })
                }))
            }
            _ => Endpoints::None,
        }
    }
}

/// The source's own settings, at `p`: the built-in checks', the collections named for
/// latency, and a URL and database the driver can use.
fn validate_settings(c: &MongodbConfig, p: &str, errors: &mut Vec<ConfigError>) {
    if let Some(l) = c.latency.on() {
        l.validate(&format!("{p}.latency"), errors);
    }
    if let Some(l) = c.load.as_ref().and_then(Switch::on) {
        l.validate(&format!("{p}.load"), errors);
    }
    if c.collections.len() > 50 {
        errors.push(ConfigError::new(
            format!("{p}.collections"),
            "at most 50 collections: name those whose latency matters",
        ));
    }
    for (i, name) in c.collections.iter().enumerate() {
        if name.is_empty() || name.contains('$') || name.contains('\0') || name.len() > 120 {
            errors.push(ConfigError::new(
                format!("{p}.collections[{i}]"),
                "not a collection name (empty, over 120 bytes, or holding `$`)",
            ));
        }
    }
    if !(c.url.starts_with("mongodb://") || c.url.starts_with("mongodb+srv://")) {
        errors.push(ConfigError::new(
            format!("{p}.url"),
            "expected mongodb://user:password@host:27017/database or mongodb+srv://…",
        ));
    } else if c.database.is_none() && url_database(&c.url).is_none() {
        errors.push(ConfigError::new(
            format!("{p}.database"),
            "name the database, here or in the URL's path",
        ));
    }
}

/// A `heartbeats:` item: the heartbeat's own rules, and a filter that becomes a document, so
/// that a mistyped one fails at load rather than at every run.
fn validate_heartbeat(
    check: &CheckConfig<MongodbCheck>,
    hb: &HeartbeatCommon,
    b: &MongodbBeatSource,
    errors: &mut Vec<ConfigError>,
) {
    hb.validate_check(&check.path, &check.common, errors);
    if let Some(f) = &b.filter {
        if let Err(e) = to_document(f, SystemTime::now()) {
            errors.push(ConfigError::new(format!("{}.filter", check.path), e));
        }
    }
}

/// A `checks:` item: a metric, exactly one way of querying, labels only where an aggregate
/// can give them, and a filter or pipeline that becomes documents, so that a mistyped one
/// fails at load rather than at every run.
fn validate_query(
    check: &CheckConfig<MongodbCheck>,
    shape: &RowShape,
    m: &MongoQuery,
    errors: &mut Vec<ConfigError>,
) {
    let cp = &check.path;
    if check.common.metric.is_none() {
        errors.push(ConfigError::new(
            format!("{cp}.metric"),
            "required: the metric name the result is published under",
        ));
    }
    let modes = usize::from(m.count.is_some())
        + usize::from(m.estimated_count.is_some())
        + usize::from(m.aggregate.is_some());
    if modes != 1 {
        errors.push(ConfigError::new(
            cp.clone(),
            "set exactly one of `count`, `estimated_count` or `aggregate`",
        ));
    }
    if m.aggregate.is_none() && (!shape.labels.is_empty() || shape.value_label.is_some()) {
        errors.push(ConfigError::new(
            format!("{cp}.labels"),
            "`labels` and `value_label` go with `aggregate`",
        ));
    }
    shape.validate(cp, "field", &check.common.const_labels, errors);
    let docs: Vec<(&str, &Value)> = match (&m.count, &m.aggregate) {
        (Some(c), _) => c.filter.iter().map(|f| ("count.filter", f)).collect(),
        (_, Some(a)) => a
            .pipeline
            .iter()
            .map(|s| ("aggregate.pipeline", s))
            .collect(),
        _ => Vec::new(),
    };
    for (field, v) in docs {
        if let Err(e) = to_document(v, SystemTime::now()) {
            errors.push(ConfigError::new(format!("{cp}.{field}"), e));
        }
    }
}

fn url_database(url: &str) -> Option<String> {
    let after_scheme = url.split_once("://")?.1;
    let path = after_scheme.split_once('/')?.1;
    let db = path.split('?').next().unwrap_or("");
    (!db.is_empty()).then(|| db.to_owned())
}

/// A MongoDB source; the client is created on first use (it connects lazily anyway).
pub struct MongodbSource {
    name: String,
    collections: Vec<String>,
    shared: Arc<Shared>,
}

impl Connect<MongodbConfig> for MongodbSource {
    fn connect(c: &MongodbConfig, name: &str) -> Result<Self, ConnectError> {
        crate::secrets::register_url_password(&c.url);
        let database = c
            .database
            .clone()
            .or_else(|| url_database(&c.url))
            .ok_or_else(|| {
                ConnectError::field(
                    "database",
                    "no database named: set `database` or put one in the URL path",
                )
            })?;
        Ok(MongodbSource {
            name: name.to_owned(),
            collections: c.collections.clone(),
            shared: Arc::new(Shared {
                url: c.url.clone(),
                database,
                client: OnceCell::new(),
            }),
        })
    }
}

impl Source<MongodbCheck> for MongodbSource {
    fn health(&self) -> Arc<dyn Runnable> {
        Arc::new(health::HealthProbe {
            source: self.name.clone(),
            shared: self.shared.clone(),
            start: Default::default(),
        })
    }

    fn check(&self, check: &CheckConfig<MongodbCheck>, plan: &CheckPlan) -> Arc<dyn Runnable> {
        match &check.spec {
            MongodbCheck::Load(settings) => Arc::new(LoadProbe {
                source: self.name.clone(),
                shared: self.shared.clone(),
                settings: settings.clone(),
                state: tokio::sync::Mutex::new(load::LoadState::new(settings)),
            }),
            MongodbCheck::Latency(settings) => Arc::new(LatencyProbe {
                source: self.name.clone(),
                shared: self.shared.clone(),
                collections: self.collections.clone(),
                settings: settings.clone(),
                state: Default::default(),
            }),
            MongodbCheck::Heartbeat(Split(hb, b)) => Arc::new(HeartbeatProbe {
                source: self.name.clone(),
                shared: self.shared.clone(),
                hb: hb.clone(),
                from: b.clone(),
                tracker: Tracker::default(),
            }),
            MongodbCheck::Query(Split(shape, query)) => Arc::new(CheckProbe {
                shared: self.shared.clone(),
                metric: check.common.metric.clone().unwrap_or_default(),
                help: check.help(plan.interval),
                shape: shape.clone(),
                spec: query.clone(),
                max_series: plan.max_series,
            }),
        }
    }
}

/// A reply of `tests/fixtures/mongodb/VERSION/FILE` (canonical Extended JSON, the shapes
/// MongoDB 7.0 and 8.0 document: see each folder's SOURCE.md).
#[cfg(test)]
fn fixture(version: &str, file: &str) -> mongodb::bson::Bson {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/mongodb")
        .join(version)
        .join(file);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    mongodb::bson::Bson::try_from(json).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_fields_are_named_with_their_fix() {
        use crate::config::{assert_reports, errors_of};
        assert_reports(
            "sources:\n  - { name: m, kind: mongodb, url: 'mysql://h/app' }",
            &["sources[0].url: expected mongodb://user:password@host:27017/database"],
        );
        assert_reports(
            "sources:\n  - { name: m, kind: mongodb, url: 'mongodb://h:27017' }",
            &["sources[0].database: name the database, here or in the URL's path"],
        );
        assert_reports(
            r#"
sources:
  - name: m
    kind: mongodb
    url: mongodb://h:27017/app
    checks:
      - { count: { collection: users } }
      - { metric: app_a, count: { collection: a }, aggregate: { collection: a, pipeline: [] } }
      - { metric: app_b, count: { collection: b }, labels: [plan] }
      - { metric: app_c, count: { collection: c, filter: { at: { $now: yesterday } } } }
      - { metric: app_d, aggregate: { collection: d, pipeline: [] }, values: [n, m] }
    heartbeats:
      - { pool: gpu, collection: workers, metric: app_w, filter: { ts: { $now: soon } } }
"#,
            &[
                "sources[0].checks[0].metric: required: the metric name the result is published under",
                "sources[0].checks[1]: set exactly one of `count`, `estimated_count` or `aggregate`",
                "sources[0].checks[2].labels: `labels` and `value_label` go with `aggregate`",
                "sources[0].checks[3].count.filter: $now",
                "sources[0].checks[4].value_label: required with more than one value field",
                "sources[0].heartbeats[0].metric: heartbeat checks publish the pulse_worker_* metrics",
                "sources[0].heartbeats[0].filter: $now",
            ],
        );
        // An unknown field names the kind's fields and the shared row fields.
        assert_reports(
            "sources:\n  - { name: m, kind: mongodb, url: 'mongodb://h/app', checks: [{ metric: app_x, count: { collection: x }, lables: [a] }] }",
            &["sources[0].checks[0].lables: unknown field `lables`", "or one of `labels`, `values`, `value_label`, `summary`"],
        );
        assert_eq!(
            errors_of("sources:\n  - { name: m, kind: mongodb, url: 'mongodb+srv://u:p@h/app', checks: [{ metric: app_users, estimated_count: { collection: users } }] }"),
            ""
        );
    }

    #[test]
    fn database_from_url_path() {
        assert_eq!(
            url_database("mongodb://u:p@h:27017/app?authSource=admin").as_deref(),
            Some("app")
        );
        assert_eq!(url_database("mongodb://h:27017/"), None);
        assert_eq!(url_database("mongodb://h:27017"), None);
    }
}
