//! Redis source (redis crate): PING and INFO for health (`health`), key sizes by exact key
//! or SCAN pattern ([`keys`]), read-only commands whose numeric reply is a value
//! ([`commands`]), worker heartbeats ([`heartbeats`]), and the built-in `latency` check: the
//! server's own per-command statistics and slow log ([`latency`]).
//!
//! Only read-only commands are ever sent: TYPE and the length commands for keys, SCAN with a
//! bounded COUNT (never KEYS), and an allowlist for command checks. The connection manager
//! reconnects by itself after the server comes back.
//!
//! Files: `client` (the shared connection and error classification), `scan` (the key
//! walk), `source` (the source and its probes), one file per sort of check, `panels` (the
//! built-in check's dashboard panels), and this module with the settings, the check type and
//! the kind.

mod client;
pub mod commands;
mod health;
pub mod heartbeats;
pub mod keys;
pub mod latency;
mod panels;
mod scan;
mod source;

use serde::Deserialize;
use serde_yaml::Value;

use super::{Kind, Parsed};
use crate::config_core::parse::{builtin, parse_at, parse_split};
use crate::config_core::{CheckCommon, CheckConfig, CheckSpec, ConfigError, Split, Switch};
use crate::series::metric::Metric;
use crate::sources::certificates::{Endpoints, TlsEndpoint};
use crate::sources::declare::{schema, CheckList};
use crate::sources::heartbeat::HeartbeatCommon;
use latency::LatencySettings;

pub use commands::{CommandCheck, READ_ONLY_COMMANDS};
pub use heartbeats::RedisBeatSource;
pub use keys::{KeyCheck, ListEnd, Oldest, TimeUnit};
pub use source::RedisSource;

/// Connection settings of a `kind: redis` source.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    /// Connection URL: `redis://[:password@]host:6379[/db]` or `rediss://` for TLS.
    pub url: String,
    /// With a `rediss://` URL: a private CA to trust and a client certificate to present.
    /// The certificate must name the URL's host.
    pub tls: Option<crate::config_core::tls::TlsFiles>,
    /// Per-command latency from the server's own statistics (`INFO commandstats`, `LATENCY
    /// HISTOGRAM`, the slow log): on by default (`{ interval: 1m, top: 20, p99_limit: 10ms }`),
    /// `false` turns it off.
    #[serde(default)]
    pub latency: Switch<LatencySettings>,
}

/// A check of a Redis source.
#[derive(Debug, Clone, PartialEq)]
pub enum RedisCheck {
    /// `keys:` items: key lengths, counts and oldest items.
    Key(KeyCheck),
    /// `checks:` items: a read-only command.
    Command(CommandCheck),
    /// `heartbeats:` items: worker heartbeats in keys or a hash.
    Heartbeat(Split<HeartbeatCommon, RedisBeatSource>),
    /// The built-in `latency` check.
    Latency(LatencySettings),
}

impl CheckSpec for RedisCheck {
    fn default_name(&self, common: &CheckCommon) -> String {
        match self {
            RedisCheck::Key(k) => k.target().to_owned(),
            RedisCheck::Command(_) => common.metric.clone().unwrap_or_default(),
            RedisCheck::Heartbeat(Split(hb, _)) => hb.default_name(),
            RedisCheck::Latency(_) => latency::CHECK.to_owned(),
        }
    }

    fn names_metric(&self) -> bool {
        !matches!(self, RedisCheck::Heartbeat(_) | RedisCheck::Latency(_))
    }

    /// Heartbeat checks cap their workers; the latency check publishes a top N, bounded by
    /// `max_series` like a key pattern's keys.
    fn bounds_itself(&self) -> bool {
        matches!(self, RedisCheck::Heartbeat(_))
    }

    fn series(&self, common: &CheckCommon) -> Vec<crate::config_core::shape::Series> {
        use crate::config_core::shape::{Series, Shape};
        match self {
            RedisCheck::Key(k) => k.series(common),
            RedisCheck::Command(_) => vec![Series::new(
                common.metric.as_deref().unwrap_or_default(),
                Vec::new(),
                Shape::Gauge,
            )],
            RedisCheck::Heartbeat(Split(hb, _)) => hb.series(),
            RedisCheck::Latency(_) => panels::latency(),
        }
    }
}

/// `kind: redis`.
pub struct Redis;

impl Kind for Redis {
    const NAME: &'static str = "redis";
    const TITLE: &'static str = "Redis";
    const EXAMPLE: &'static str = include_str!("example.yml");
    type Settings = RedisConfig;
    type Check = RedisCheck;
    type Source = RedisSource;
    const LATENCY_HISTOGRAM: Option<crate::sources::LatencyHistogram> =
        Some(crate::sources::LatencyHistogram {
            metric: &latency::DURATION,
            check: latency::CHECK,
            bounds: latency::classic_bounds,
        });
    const METRICS: &'static [Metric] = &[
        health::MEMORY_USED,
        health::MEMORY_MAX,
        health::FRAGMENTATION,
        health::CONNECTED_CLIENTS,
        health::MAX_CLIENTS,
        health::BLOCKED_CLIENTS,
        health::EVICTED_KEYS,
        health::REJECTED_CONNECTIONS,
        health::KEYSPACE_HITS,
        health::KEYSPACE_MISSES,
        health::MAXMEMORY_POLICY,
        health::START_TIME,
        health::REPLICA,
        health::CONNECTED_REPLICAS,
        health::MASTER_LINK_UP,
        health::MASTER_LAST_IO,
        health::RDB_LAST_BGSAVE_SUCCESS,
        health::RDB_LAST_SAVE,
        health::RDB_CHANGES,
        health::RDB_CONFIGURED,
        health::AOF_LAST_WRITE_SUCCESS,
        health::OOM_ERRORS,
        health::REPLICATION_IDS,
        health::CLUSTER_STATE_OK,
        health::CLUSTER_SLOTS,
        keys::KEY_LENGTH,
        latency::CALLS,
        latency::TIME,
        latency::REJECTED,
        latency::FAILED,
        latency::DURATION,
        latency::P99_LIMIT,
        latency::SLOWLOG_ENTRIES,
        latency::SLOWLOG_SLOWEST,
    ];

    /// Its `keys`, `checks` and `heartbeats`, in that order.
    fn lists() -> Vec<CheckList<RedisCheck>> {
        vec![
            CheckList {
                key: "keys",
                about: "The length of a key or of every key under a pattern, key counts, the oldest queued item.",
                parts: || vec![schema::<KeyCheck>()],
                parse: |v, p, e| parse_at(v, p, e).map(RedisCheck::Key),
            },
            CheckList {
                key: "checks",
                about: "One read-only command whose numeric reply is the value.",
                parts: || vec![schema::<CommandCheck>()],
                parse: parse_command,
            },
            CheckList {
                key: "heartbeats",
                about: "Worker heartbeats in keys under a pattern or in the fields of one hash.",
                parts: || vec![schema::<RedisBeatSource>(), schema::<HeartbeatCommon>()],
                parse: |v, p, e| parse_split(v, p, e).map(RedisCheck::Heartbeat),
            },
        ]
    }

    fn statistics_checks(settings: &RedisConfig, path: &str) -> Vec<CheckConfig<RedisCheck>> {
        let Some(l) = settings.latency.on() else {
            return Vec::new();
        };
        let mut check = builtin(path, latency::CHECK, RedisCheck::Latency(l.clone()));
        // Its own interval, whatever the source's: the slow log is read per window.
        check.common.interval = Some(l.interval);
        check.common.timeout = Some(l.timeout);
        vec![check]
    }

    fn validate(parsed: &Parsed<Self>, path: &str, errors: &mut Vec<ConfigError>) {
        if let Some(l) = parsed.settings.latency.on() {
            l.validate(&format!("{path}.latency"), errors);
        }
        let url = parsed.settings.url.as_str();
        if let Err(e) = crate::clients::urls::redis(url) {
            errors.push(ConfigError::new(format!("{path}.url"), e));
        }
        if let Some(tls) = &parsed.settings.tls {
            let secure = url.starts_with("rediss://");
            tls.validate(
                &format!("{path}.tls"),
                secure,
                crate::clients::urls::REDIS_TLS_FIX,
                errors,
            );
        }
        for check in &parsed.checks {
            match &check.spec {
                RedisCheck::Key(k) => keys::validate(check, k, errors),
                RedisCheck::Command(c) => commands::validate(check, c, errors),
                RedisCheck::Heartbeat(Split(hb, b)) => {
                    hb.validate_check(&check.path, &check.common, errors);
                    b.validate(&check.path, errors);
                }
                RedisCheck::Latency(_) => {}
            }
        }
    }

    fn display_endpoint(settings: &RedisConfig) -> String {
        crate::secrets::display_url(&settings.url)
    }

    fn tls_endpoints(settings: &RedisConfig) -> Endpoints {
        Endpoints::fixed([TlsEndpoint::of_url(&settings.url, &["rediss"], 6379)])
    }
}

/// A `checks:` item: a command. The likeliest slip, a key check written under `checks:`, is
/// named with where it goes.
fn parse_command(v: Value, p: &str, e: &mut Vec<ConfigError>) -> Option<RedisCheck> {
    let misplaced = ["key", "pattern"]
        .into_iter()
        .find(|f| v.get(f).is_some() && v.get("command").is_none());
    if let Some(field) = misplaced {
        e.push(ConfigError::new(
            format!("{p}.{field}"),
            format!("`{field}` checks go under `keys:`; `checks:` holds `command` checks"),
        ));
        return None;
    }
    parse_at(v, p, e).map(RedisCheck::Command)
}

/// Largest SCAN `COUNT` hint: one call must not block Redis for long.
const MAX_SCAN_COUNT: u64 = 100_000;

fn default_scan_count() -> u32 {
    100
}

#[cfg(test)]
mod tests {

    use crate::config::{assert_reports, errors_of};

    #[test]
    fn a_key_check_under_checks_is_pointed_to_keys() {
        assert_reports(
            "sources:\n  - { name: r, kind: redis, url: 'redis://h', checks: [{ metric: app_q, pattern: 'q:*' }] }",
            &["sources[0].checks[0].pattern: `pattern` checks go under `keys:`"],
        );
    }

    #[test]
    fn bad_fields_are_named_with_their_fix() {
        assert_reports(
            r#"
sources:
  - name: q
    kind: redis
    url: "http://127.0.0.1:6379"
    keys:
      - { key: a, pattern: "b:*" }
      - { key: c, count: true }
      - { pattern: "d:*", count: true }
      - { key: e, scan_count: 0, label: "bad-label" }
      - { pattern: "f:*", group_by: device }
      - { pattern: "g:*", count: true, metric: app_g, distinct: "" }
      - { pattern: "h:*", count: true, metric: app_h, group_by: key }
    checks:
      - { command: [ZCOUNT, k, "{{now-1m}}", "+inf"] }
      - { metric: app_none, command: [] }
      - { metric: app_del, command: [DEL, k] }
      - { metric: app_when, command: [ZCOUNT, k, "{{yesterday}}", "+inf"] }
    heartbeats:
      - { pool: gpu, pattern: "w:*", hash: workers }
"#,
            &[
                "sources[0].url: not a usable Redis URL",
                "sources[0].keys[0]: set exactly one of `key` (an exact key) or `pattern`",
                "sources[0].keys[1].count: counts the keys matching `pattern`",
                "sources[0].keys[2].metric: required with `count: true`",
                "sources[0].keys[3].scan_count: must be at least 1",
                "sources[0].keys[3].label: \"bad-label\" is not a valid Prometheus label name",
                "sources[0].keys[4].group_by: reads fields of the hashes matching `pattern` while counting them",
                "sources[0].keys[5].distinct: must name a hash field",
                "sources[0].keys[6].group_by: \"key\" is already a label of this check",
                "sources[0].checks[0].metric: required: the metric name the reply is published under",
                "sources[0].checks[1].command: must name a command",
                "sources[0].checks[2].command: \"DEL\" is not an allowed read-only command",
                "sources[0].checks[3].command[2]:",
                "sources[0].heartbeats[0]: set exactly one of `pattern` (heartbeat keys) or `hash`",
            ],
        );
        assert_eq!(
            errors_of("sources:\n  - { name: q, kind: redis, url: 'redis://:pw@127.0.0.1:6379/2', keys: [{ pattern: 'q:*' }], checks: [{ metric: app_n, command: [zcount, k, '{{now-1m}}', '+inf'] }], heartbeats: [{ pool: cpu, hash: workers }] }"),
            ""
        );
    }

    #[test]
    fn checks_are_named_by_key_metric_or_pool() {
        let c = crate::config::load_str(
            "sources:\n  - { name: q, kind: redis, url: 'redis://127.0.0.1', keys: [{ pattern: 'ai:*' }], checks: [{ metric: app_n, command: [DBSIZE] }], heartbeats: [{ pool: gpu, pattern: 'w:*' }] }",
        )
        .unwrap();
        let names: Vec<String> = c.sources[0].checks().iter().map(|c| c.name()).collect();
        assert_eq!(names, ["ai:*", "app_n", "heartbeat:gpu", "latency"]);
    }
}
