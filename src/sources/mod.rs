//! Source kinds: the [`Source`] and [`Probe`] traits, and the one place each kind is
//! registered (config parsing, validation, connecting).
//!
//! A source only knows how to talk to its system; timing, timeouts and outcomes belong to the
//! scheduler. Adding a kind means one new module and one arm in each `match` below.

pub mod logfile;
pub mod mongodb;
pub mod postgres;
pub mod rabbitmq;
pub mod redis;
pub mod s3;
pub mod stripe;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde_yaml::Value;
use tokio::time::Instant;

use crate::config::load::parse_check;
use crate::config::{CheckCommon, CheckConfig, CheckPlan, ConfigError, SourceConfig, Split};
use crate::error::ProbeError;
use crate::heartbeat::HeartbeatCommon;
use crate::sample::Output;

/// Names of the source kinds this build knows.
pub const KINDS: [&str; 7] = [
    "logfile", "mongodb", "postgres", "rabbitmq", "redis", "s3", "stripe",
];

/// The future a probe returns.
pub type ProbeFuture<'a> = Pin<Box<dyn Future<Output = Result<Output, ProbeError>> + Send + 'a>>;

/// One runnable check (or health probe) of a source.
pub trait Probe: Send + Sync + 'static {
    /// Runs once. The scheduler drops the future at `deadline`; a probe also passes the
    /// deadline to the server (statement timeout, bounded scan) so the work stops there too.
    fn run(&self, deadline: Instant) -> ProbeFuture<'_>;
}

/// A connected (lazily) source that can make probes sharing its connections.
pub trait Source: Send + Sync + 'static {
    /// The health probe: reachability, latency and the kind's vital statistics.
    fn health(&self) -> Arc<dyn Probe>;
    /// A probe for one of the source's configured checks, run as `plan` says.
    fn check(&self, check: &CheckConfig, plan: &CheckPlan) -> Arc<dyn Probe>;
}

/// Connection settings of a source, by kind.
#[derive(Debug, Clone, PartialEq)]
pub enum KindConfig {
    /// `kind: postgres`.
    Postgres(postgres::PostgresConfig),
    /// `kind: redis`.
    Redis(redis::RedisConfig),
    /// `kind: rabbitmq`.
    Rabbitmq(rabbitmq::RabbitmqConfig),
    /// `kind: mongodb`.
    Mongodb(mongodb::MongodbConfig),
    /// `kind: stripe`.
    Stripe(stripe::StripeConfig),
    /// `kind: s3`.
    S3(s3::S3Config),
    /// `kind: logfile`.
    Logfile(logfile::LogfileConfig),
}

/// What a check runs, by kind.
#[derive(Debug, Clone, PartialEq)]
pub enum CheckSpec {
    /// SQL against Postgres.
    Postgres(postgres::SqlCheck),
    /// Size of Redis keys, exact or by pattern.
    RedisKey(redis::KeyCheck),
    /// A read-only Redis command with a numeric reply.
    RedisCommand(redis::CommandCheck),
    /// A built-in RabbitMQ queue check.
    Rabbitmq(rabbitmq::RabbitCheck),
    /// A MongoDB count or aggregate.
    Mongodb(mongodb::MongoCheck),
    /// A built-in Stripe check.
    Stripe(stripe::StripeCheck),
    /// A built-in S3 check.
    S3(s3::S3Check),
    /// The built-in log-file tail.
    Logfile(logfile::TailCheck),
    /// Worker heartbeats kept in Redis keys or a hash.
    RedisHeartbeat(Split<HeartbeatCommon, redis::BeatSource>),
    /// Worker heartbeats returned by SQL.
    PostgresHeartbeat(Split<HeartbeatCommon, postgres::BeatSource>),
    /// Worker heartbeats in a MongoDB collection.
    MongodbHeartbeat(Split<HeartbeatCommon, mongodb::BeatSource>),
}

/// Parses the kind-specific part of a source (`rest` holds every non-common field).
pub fn parse_kind(
    kind: &str,
    rest: Value,
    path: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<(KindConfig, Vec<CheckConfig>)> {
    match kind {
        "postgres" => postgres::parse(rest, path, errors),
        "redis" => redis::parse(rest, path, errors),
        "rabbitmq" => rabbitmq::parse(rest, path, errors),
        "mongodb" => mongodb::parse(rest, path, errors),
        "stripe" => stripe::parse(rest, path, errors),
        "s3" => s3::parse(rest, path, errors),
        "logfile" => logfile::parse(rest, path, errors),
        other => {
            errors.push(ConfigError::new(
                format!("{path}.kind"),
                format!(
                    "unknown source kind {other:?}: use one of {}",
                    KINDS.join(", ")
                ),
            ));
            None
        }
    }
}

impl KindConfig {
    /// The `kind` label value.
    pub fn kind_name(&self) -> &'static str {
        match self {
            KindConfig::Postgres(_) => "postgres",
            KindConfig::Redis(_) => "redis",
            KindConfig::Rabbitmq(_) => "rabbitmq",
            KindConfig::Mongodb(_) => "mongodb",
            KindConfig::Stripe(_) => "stripe",
            KindConfig::S3(_) => "s3",
            KindConfig::Logfile(_) => "logfile",
        }
    }

    /// Interval of this kind's checks when neither the check nor the source sets one.
    pub fn default_interval(&self) -> Option<std::time::Duration> {
        match self {
            KindConfig::Stripe(_) => Some(stripe::DEFAULT_INTERVAL),
            KindConfig::Logfile(_) => Some(logfile::DEFAULT_INTERVAL),
            _ => None,
        }
    }

    /// Records the kind's own rules broken by `source` and its checks.
    pub fn validate(&self, source: &SourceConfig, errors: &mut Vec<ConfigError>) {
        match self {
            KindConfig::Postgres(c) => postgres::validate(c, source, errors),
            KindConfig::Redis(c) => redis::validate(c, source, errors),
            KindConfig::Rabbitmq(c) => rabbitmq::validate(c, source, errors),
            KindConfig::Mongodb(c) => mongodb::validate(c, source, errors),
            KindConfig::Stripe(c) => stripe::validate(c, source, errors),
            KindConfig::S3(c) => s3::validate(c, source, errors),
            KindConfig::Logfile(c) => logfile::validate(c, source, errors),
        }
    }

    /// Creates the source. Nothing connects yet: connections open on first use, so a source
    /// that is down at start-up is reported as down instead of stopping the exporter.
    pub fn connect(&self, source: &SourceConfig) -> Result<Arc<dyn Source>, String> {
        Ok(match self {
            KindConfig::Postgres(c) => Arc::new(postgres::PostgresSource::new(c, source)?),
            KindConfig::Redis(c) => Arc::new(redis::RedisSource::new(c, source)?),
            KindConfig::Rabbitmq(c) => Arc::new(rabbitmq::RabbitmqSource::new(c, source)?),
            KindConfig::Mongodb(c) => Arc::new(mongodb::MongodbSource::new(c, source)?),
            KindConfig::Stripe(c) => Arc::new(stripe::StripeSource::new(c, source)?),
            KindConfig::S3(c) => Arc::new(s3::S3Source::new(c, source)?),
            KindConfig::Logfile(c) => Arc::new(logfile::LogfileSource::new(c, source)?),
        })
    }

    /// The endpoint for humans (landing page, `probe`), with credentials removed.
    pub fn display_endpoint(&self) -> String {
        match self {
            KindConfig::Postgres(c) => crate::secrets::display_url(&c.url),
            KindConfig::Redis(c) => crate::secrets::display_url(&c.url),
            KindConfig::Mongodb(c) => crate::secrets::display_url(&c.url),
            KindConfig::Stripe(c) => crate::secrets::display_url(&c.api_base),
            KindConfig::Logfile(c) => c.path.display().to_string(),
            KindConfig::S3(c) => match &c.endpoint {
                Some(e) => format!(
                    "{}/{}",
                    crate::secrets::display_url(e).trim_end_matches('/'),
                    c.bucket
                ),
                None => format!("s3://{}", c.bucket),
            },
            KindConfig::Rabbitmq(c) => c
                .management_url
                .as_deref()
                .or(c.amqp_url.as_deref())
                .map(crate::secrets::display_url)
                .unwrap_or_default(),
        }
    }
}

impl CheckSpec {
    /// The heartbeat settings, for heartbeat checks.
    pub fn heartbeat(&self) -> Option<&HeartbeatCommon> {
        match self {
            CheckSpec::RedisHeartbeat(Split(hb, _))
            | CheckSpec::PostgresHeartbeat(Split(hb, _))
            | CheckSpec::MongodbHeartbeat(Split(hb, _)) => Some(hb),
            _ => None,
        }
    }

    /// Name of a check that sets none.
    pub fn default_name(&self, common: &CheckCommon) -> String {
        match self {
            CheckSpec::RedisKey(k) => k.target().to_owned(),
            CheckSpec::RedisHeartbeat(Split(hb, _))
            | CheckSpec::PostgresHeartbeat(Split(hb, _))
            | CheckSpec::MongodbHeartbeat(Split(hb, _)) => format!("heartbeat:{}", hb.pool),
            _ => common.metric.clone().unwrap_or_default(),
        }
    }
}

/// Remaining time until `deadline`, never negative.
pub fn remaining(deadline: Instant) -> std::time::Duration {
    deadline.saturating_duration_since(Instant::now())
}

/// Takes the list of checks under `key` out of a source mapping and parses each item: the
/// shared fields into `CheckCommon`, the rest into the kind's spec `S`, wrapped by `wrap`.
pub fn take_checks<S: serde::de::DeserializeOwned>(
    rest: &mut Value,
    key: &str,
    path: &str,
    errors: &mut Vec<ConfigError>,
    wrap: fn(S) -> CheckSpec,
) -> Vec<CheckConfig> {
    let items = match rest.as_mapping_mut().and_then(|m| m.remove(key)) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Sequence(items)) => items,
        Some(_) => {
            errors.push(ConfigError::new(format!("{path}.{key}"), "must be a list"));
            Vec::new()
        }
    };
    items
        .into_iter()
        .enumerate()
        .filter_map(|(i, v)| parse_check(v, &format!("{path}.{key}[{i}]"), errors, wrap))
        .collect()
}
