//! MongoDB source (official driver): ping and `serverStatus` for health, and `count`,
//! `estimated_count` and `aggregate` checks bounded by `maxTimeMS`, read from secondaries
//! when there are any.
//!
//! Filters and pipelines are written in YAML and may hold time windows relative to now:
//! `{ $now: "-24h" }` becomes the date 24 hours ago at every run, `{ $nowSeconds: "-1h" }` and
//! `{ $nowMillis: "-5m" }` the same instant as unix seconds or milliseconds, for documents that
//! store numbers instead of dates.

mod decode;
mod health;

use decode::{beat_time, number, text, DocRow};

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mongodb::bson::{self, Bson, Document};
use mongodb::options::{ClientOptions, ReadPreference, ReadPreferenceOptions, SelectionCriteria};
use serde::Deserialize;
use serde_yaml::Value;
use tokio::sync::OnceCell;
use tokio::time::Instant;

use super::{remaining, Kind, Parsed, Probe, ProbeFuture, Source};
use crate::config::parse::parse_split;
use crate::config::{CheckCommon, CheckConfig, CheckPlan, CheckSpec, ConfigError, Split};
use crate::error::{ProbeError, Reason};
use crate::heartbeat::{Beat, HeartbeatCommon, NewestBeats, Tracker};
use crate::rows::RowShape;
use crate::sample::{Metric, Output};
use crate::sources::declare::{schema, CheckList};

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
}

impl CheckSpec for MongodbCheck {
    fn default_name(&self, common: &CheckCommon) -> String {
        match self {
            MongodbCheck::Query(_) => common.metric.clone().unwrap_or_default(),
            MongodbCheck::Heartbeat(Split(hb, _)) => hb.default_name(),
        }
    }

    fn names_metric(&self) -> bool {
        matches!(self, MongodbCheck::Query(_))
    }

    fn series(&self, common: &CheckCommon) -> Vec<crate::shape::Series> {
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

/// The built-in metrics of a MongoDB source: its health probe's.
pub const METRICS: &[Metric] = health::METRICS;

/// `kind: mongodb`.
pub struct Mongodb;

impl Kind for Mongodb {
    const NAME: &'static str = "mongodb";
    const TITLE: &'static str = "MongoDB";
    const METRICS_INTRO: &'static str = "From `ping` (reachability), `serverStatus` and `replSetGetStatus` (fields the server lacks, or \
        that the user may not read without the `clusterMonitor` role, are skipped; a standalone server \
        publishes no `replset` metric and is still up).";
    type Settings = MongodbConfig;
    type Check = MongodbCheck;
    type Source = MongodbSource;
    const METRICS: &'static [Metric] = METRICS;

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

    fn validate(parsed: &Parsed<Self>, path: &str, errors: &mut Vec<ConfigError>) {
        validate(parsed, path, errors)
    }

    fn display_endpoint(settings: &MongodbConfig) -> String {
        crate::secrets::display_url(&settings.url)
    }

    fn connect(settings: &MongodbConfig, name: &str) -> Result<MongodbSource, String> {
        MongodbSource::new(settings, name)
    }
}

/// Records the mongodb rules the source at `p` breaks.
fn validate(parsed: &Parsed<Mongodb>, p: &str, errors: &mut Vec<ConfigError>) {
    let c = &parsed.settings;
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
    for check in &parsed.checks {
        let (shape, m) = match &check.spec {
            MongodbCheck::Heartbeat(Split(hb, b)) => {
                hb.validate_check(&check.path, &check.common, errors);
                if let Some(f) = &b.filter {
                    if let Err(e) = to_document(f, SystemTime::now()) {
                        errors.push(ConfigError::new(format!("{}.filter", check.path), e));
                    }
                }
                continue;
            }
            MongodbCheck::Query(Split(shape, m)) => (shape, m),
        };
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
}

fn url_database(url: &str) -> Option<String> {
    let after_scheme = url.split_once("://")?.1;
    let path = after_scheme.split_once('/')?.1;
    let db = path.split('?').next().unwrap_or("");
    (!db.is_empty()).then(|| db.to_owned())
}

/// Turns YAML into a BSON document, expanding `$now`, `$nowSeconds` and `$nowMillis`.
pub fn to_document(v: &Value, now: SystemTime) -> Result<Document, String> {
    match to_bson(v, now)? {
        Bson::Document(d) => Ok(d),
        other => Err(format!("expected a mapping, got {other}")),
    }
}

fn to_bson(v: &Value, now: SystemTime) -> Result<Bson, String> {
    Ok(match v {
        Value::Null => Bson::Null,
        Value::Bool(b) => Bson::Boolean(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Bson::Int64(i),
            None => Bson::Double(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => Bson::String(s.clone()),
        Value::Sequence(items) => Bson::Array(
            items
                .iter()
                .map(|i| to_bson(i, now))
                .collect::<Result<_, _>>()?,
        ),
        Value::Mapping(map) => {
            if map.len() == 1 {
                let (k, val) = map.iter().next().expect("one entry");
                if let (Some(op @ ("$now" | "$nowSeconds" | "$nowMillis")), Some(offset)) =
                    (k.as_str(), val.as_str())
                {
                    return relative_time(op, offset, now);
                }
            }
            let mut doc = Document::new();
            for (k, val) in map {
                let key = k
                    .as_str()
                    .ok_or_else(|| format!("field names must be strings, got {k:?}"))?;
                doc.insert(key, to_bson(val, now)?);
            }
            Bson::Document(doc)
        }
        Value::Tagged(t) => to_bson(&t.value, now)?,
    })
}

fn relative_time(op: &str, offset: &str, now: SystemTime) -> Result<Bson, String> {
    let at = crate::timetemplate::shift(now, offset).map_err(|e| format!("{op}: {e}"))?;
    let ms = at
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as i64;
    Ok(match op {
        "$now" => Bson::DateTime(bson::DateTime::from_millis(ms)),
        "$nowSeconds" => Bson::Int64(ms / 1000),
        _ => Bson::Int64(ms),
    })
}

/// A MongoDB source; the client is created on first use (it connects lazily anyway).
pub struct MongodbSource {
    name: String,
    shared: Arc<Shared>,
}

pub(super) struct Shared {
    url: String,
    database: String,
    client: OnceCell<mongodb::Client>,
}

/// Driver timeouts used unless the URL sets `serverSelectionTimeoutMS` / `connectTimeoutMS`:
/// short enough that a dead server fails a default 5 s health probe with reason `connect`
/// (the driver's own error) rather than `timeout`.
pub const DEFAULT_DRIVER_TIMEOUT: Duration = Duration::from_secs(2);

impl Shared {
    pub(super) async fn client(&self) -> Result<&mongodb::Client, ProbeError> {
        self.client
            .get_or_try_init(|| async {
                let mut options = ClientOptions::parse(&self.url)
                    .await
                    .map_err(|e| classify(&e))?;
                options.app_name = Some("pulse-exporter".to_owned());
                options
                    .server_selection_timeout
                    .get_or_insert(DEFAULT_DRIVER_TIMEOUT);
                options
                    .connect_timeout
                    .get_or_insert(DEFAULT_DRIVER_TIMEOUT);
                options.max_pool_size.get_or_insert(2);
                // Read from secondaries when there are any, so checks never load the primary.
                options.selection_criteria = Some(SelectionCriteria::ReadPreference(
                    ReadPreference::SecondaryPreferred {
                        options: Some(ReadPreferenceOptions::default()),
                    },
                ));
                mongodb::Client::with_options(options).map_err(|e| classify(&e))
            })
            .await
    }
}

impl MongodbSource {
    /// Creates the source without connecting.
    pub fn new(c: &MongodbConfig, name: &str) -> Result<Self, String> {
        crate::secrets::register_url_password(&c.url);
        let database = c
            .database
            .clone()
            .or_else(|| url_database(&c.url))
            .ok_or("no database named")?;
        Ok(MongodbSource {
            name: name.to_owned(),
            shared: Arc::new(Shared {
                url: c.url.clone(),
                database,
                client: OnceCell::new(),
            }),
        })
    }
}

impl Source<MongodbCheck> for MongodbSource {
    fn health(&self) -> Arc<dyn Probe> {
        Arc::new(health::HealthProbe {
            source: self.name.clone(),
            shared: self.shared.clone(),
        })
    }

    fn check(&self, check: &CheckConfig<MongodbCheck>, plan: &CheckPlan) -> Arc<dyn Probe> {
        match &check.spec {
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

pub(super) fn classify(e: &mongodb::error::Error) -> ProbeError {
    use mongodb::error::ErrorKind;
    let reason = match e.kind.as_ref() {
        ErrorKind::Authentication { .. } => Reason::Auth,
        ErrorKind::ServerSelection { .. }
        | ErrorKind::Io(_)
        | ErrorKind::ConnectionPoolCleared { .. }
        | ErrorKind::DnsResolve { .. } => Reason::Connect,
        ErrorKind::InvalidArgument { .. } => Reason::Query,
        ErrorKind::BsonDeserialization(_) => Reason::Decode,
        ErrorKind::Command(c) => match c.code {
            50 => Reason::Timeout,   // MaxTimeMSExpired
            13 | 18 => Reason::Auth, // Unauthorized, AuthenticationFailed
            26 => Reason::NotFound,  // NamespaceNotFound
            _ => Reason::Query,
        },
        _ => Reason::Query,
    };
    ProbeError::new(reason, e.to_string())
}

struct CheckProbe {
    shared: Arc<Shared>,
    metric: String,
    help: String,
    shape: RowShape,
    spec: MongoQuery,
    /// The check's series cap: documents past it are counted, never kept.
    max_series: usize,
}

impl Probe for CheckProbe {
    fn run(&self, deadline: Instant) -> ProbeFuture<'_> {
        Box::pin(async move {
            let client = self.shared.client().await?;
            let db = client.database(&self.shared.database);
            // The server gives up at the same deadline as the scheduler.
            let max_time = remaining(deadline).max(Duration::from_millis(1));
            let now = SystemTime::now();
            let mut out = Output::default();
            let s = &self.spec;
            if let Some(c) = &s.count {
                let filter = match &c.filter {
                    Some(f) => {
                        to_document(f, now).map_err(|e| ProbeError::new(Reason::Query, e))?
                    }
                    None => Document::new(),
                };
                let n = db
                    .collection::<Document>(&c.collection)
                    .count_documents(filter)
                    .max_time(max_time)
                    .await
                    .map_err(|e| classify(&e))?;
                out.gauge(&self.metric, &self.help, Vec::new(), n as f64);
            } else if let Some(c) = &s.estimated_count {
                let n = db
                    .collection::<Document>(&c.collection)
                    .estimated_document_count()
                    .max_time(max_time)
                    .await
                    .map_err(|e| classify(&e))?;
                out.gauge(&self.metric, &self.help, Vec::new(), n as f64);
            } else if let Some(a) = &s.aggregate {
                let pipeline = a
                    .pipeline
                    .iter()
                    .map(|stage| to_document(stage, now))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| ProbeError::new(Reason::Query, e))?;
                let mut cursor = db
                    .collection::<Document>(&a.collection)
                    .aggregate(pipeline)
                    .max_time(max_time)
                    .await
                    .map_err(|e| classify(&e))?;
                // Documents become samples as the cursor yields them; past the series cap
                // they are only counted, so a result is never held whole.
                let mut sink = self.shape.sink(&self.metric, &self.help, self.max_series);
                let mut rest = 0u64;
                while cursor.advance().await.map_err(|e| classify(&e))? {
                    if sink.full() {
                        rest += 1;
                        continue;
                    }
                    let doc = cursor.deserialize_current().map_err(|e| classify(&e))?;
                    sink.push(&DocRow(&doc))?;
                }
                sink.count_rest(rest);
                return Ok(sink.finish());
            }
            Ok(out)
        })
    }
}

struct HeartbeatProbe {
    source: String,
    shared: Arc<Shared>,
    hb: HeartbeatCommon,
    from: MongodbBeatSource,
    tracker: Tracker,
}

impl Probe for HeartbeatProbe {
    fn run(&self, deadline: Instant) -> ProbeFuture<'_> {
        Box::pin(async move {
            let client = self.shared.client().await?;
            let filter = match &self.from.filter {
                Some(f) => to_document(f, SystemTime::now())
                    .map_err(|e| ProbeError::new(Reason::Query, e))?,
                None => Document::new(),
            };
            let mut cursor = client
                .database(&self.shared.database)
                .collection::<Document>(&self.from.collection)
                .find(filter)
                .max_time(remaining(deadline).max(Duration::from_millis(1)))
                .await
                .map_err(|e| classify(&e))?;
            let mut beats = NewestBeats::new(self.hb.max_workers);
            let (mut malformed, mut example) = (0u64, None);
            while cursor.advance().await.map_err(|e| classify(&e))? {
                let doc = cursor.deserialize_current().map_err(|e| classify(&e))?;
                let worker = text(doc.get(&self.from.worker_field));
                match beat_time(doc.get(&self.from.time_field)) {
                    Some(at) => {
                        let attributes = self
                            .hb
                            .attributes
                            .iter()
                            .map(|a| (a.clone(), text(doc.get(a))))
                            .collect();
                        beats.push(Beat {
                            worker,
                            at,
                            attributes,
                        });
                    }
                    None => {
                        malformed += 1;
                        example.get_or_insert(worker);
                    }
                }
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_times_expand_at_run_time() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let v: Value = serde_yaml::from_str("{ lastLogin: { $gte: { $now: \"-24h\" } }, ts: { $lt: { $nowSeconds: \"-1m\" } }, ms: { $nowMillis: \"\" } }").unwrap();
        let d = to_document(&v, now).unwrap();
        let gte = d
            .get_document("lastLogin")
            .unwrap()
            .get_datetime("$gte")
            .unwrap();
        assert_eq!(gte.timestamp_millis(), (1_000_000 - 86_400) * 1000);
        assert_eq!(
            d.get_document("ts").unwrap().get_i64("$lt").unwrap(),
            1_000_000 - 60
        );
        assert_eq!(d.get_i64("ms").unwrap(), 1_000_000_000);
        for bad in [
            "{ a: { $now: \"\u{2212}24h\" } }",
            "{ a: { $now: \"+100000000000000000000y\" } }",
        ] {
            let v: Value = serde_yaml::from_str(bad).unwrap();
            assert!(to_document(&v, now).is_err(), "{bad}");
        }
        let bad: Value = serde_yaml::from_str("{ a: { $now: \"yesterday\" } }").unwrap();
        assert!(to_document(&bad, now).unwrap_err().contains("$now"));
    }

    #[test]
    fn bad_fields_are_named_with_their_fix() {
        use crate::configfile::{assert_reports, errors_of};
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
