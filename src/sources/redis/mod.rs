//! Redis source (redis crate): PING and INFO for health ([`health`]), key sizes by exact key
//! or SCAN pattern ([`keys`]), read-only commands whose numeric reply is a value
//! ([`commands`]), and worker heartbeats ([`heartbeats`]).
//!
//! Only read-only commands are ever sent: TYPE and the length commands for keys, SCAN with a
//! bounded COUNT (never KEYS), and an allowlist for command checks. The connection manager
//! reconnects by itself after the server comes back.

pub mod commands;
mod health;
pub mod heartbeats;
pub mod keys;

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::RedisError;
use serde::Deserialize;
use serde_yaml::Value;
use tokio::sync::Mutex;

use super::{Kind, Parsed, Probe, Source};
use crate::certificates::{Endpoints, TlsEndpoint};
use crate::config::parse::{parse_at, parse_split};
use crate::config::{CheckCommon, CheckConfig, CheckPlan, CheckSpec, ConfigError, Split};
use crate::error::{ProbeError, Reason};
use crate::heartbeat::{HeartbeatCommon, Tracker};
use crate::metric::Metric;
use crate::sources::declare::{schema, CheckList};

pub use commands::{CommandCheck, READ_ONLY_COMMANDS};
pub use heartbeats::RedisBeatSource;
pub use keys::{KeyCheck, ListEnd, Oldest, TimeUnit};

/// Connection settings of a `kind: redis` source.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    /// Connection URL: `redis://[:password@]host:6379[/db]` or `rediss://` for TLS.
    pub url: String,
    /// With a `rediss://` URL: a private CA to trust and a client certificate to present.
    /// The certificate must name the URL's host.
    pub tls: Option<crate::config::tls::TlsFiles>,
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
}

impl CheckSpec for RedisCheck {
    fn default_name(&self, common: &CheckCommon) -> String {
        match self {
            RedisCheck::Key(k) => k.target().to_owned(),
            RedisCheck::Command(_) => common.metric.clone().unwrap_or_default(),
            RedisCheck::Heartbeat(Split(hb, _)) => hb.default_name(),
        }
    }

    fn names_metric(&self) -> bool {
        !matches!(self, RedisCheck::Heartbeat(_))
    }

    fn series(&self, common: &CheckCommon) -> Vec<crate::config::shape::Series> {
        use crate::config::shape::{Series, Shape};
        match self {
            RedisCheck::Key(k) => k.series(common),
            RedisCheck::Command(_) => vec![Series::new(
                common.metric.as_deref().unwrap_or_default(),
                Vec::new(),
                Shape::Gauge,
            )],
            RedisCheck::Heartbeat(Split(hb, _)) => hb.series(),
        }
    }
}

/// `kind: redis`.
pub struct Redis;

impl Kind for Redis {
    const NAME: &'static str = "redis";
    const TITLE: &'static str = "Redis";
    type Settings = RedisConfig;
    type Check = RedisCheck;
    type Source = RedisSource;
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

    fn validate(parsed: &Parsed<Self>, path: &str, errors: &mut Vec<ConfigError>) {
        let url = parsed.settings.url.as_str();
        if url.contains("#insecure") {
            errors.push(ConfigError::new(
                format!("{path}.url"),
                "`#insecure` (no certificate check) is not supported: give the server's CA in `tls.ca_file` instead",
            ));
        }
        if let Some(tls) = &parsed.settings.tls {
            if !url.starts_with("rediss://") {
                errors.push(ConfigError::new(
                    format!("{path}.tls"),
                    "applies to TLS connections: use a rediss:// URL",
                ));
            }
            tls.validate(&format!("{path}.tls"), errors);
        }
        if let Err(e) = redis::Client::open(url) {
            errors.push(ConfigError::new(
                format!("{path}.url"),
                format!(
                    "not a usable Redis URL ({}); expected redis://[:password@]host:6379[/db]",
                    crate::secrets::scrub(&e.to_string())
                ),
            ));
        }
        for check in &parsed.checks {
            match &check.spec {
                RedisCheck::Key(k) => keys::validate(check, k, errors),
                RedisCheck::Command(c) => commands::validate(check, c, errors),
                RedisCheck::Heartbeat(Split(hb, b)) => {
                    hb.validate_check(&check.path, &check.common, errors);
                    b.validate(&check.path, errors);
                }
            }
        }
    }

    fn display_endpoint(settings: &RedisConfig) -> String {
        crate::secrets::display_url(&settings.url)
    }

    fn tls_endpoints(settings: &RedisConfig) -> Endpoints {
        Endpoints::fixed([TlsEndpoint::of_url(&settings.url, &["rediss"], 6379)])
    }

    fn connect(settings: &RedisConfig, name: &str) -> Result<RedisSource, String> {
        RedisSource::new(settings, name)
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

/// Connect and response timeout of the Redis connection manager.
const DRIVER_TIMEOUT: Duration = Duration::from_secs(10);

/// The lazily connected, self-reconnecting connection shared by a source's probes.
struct Conn {
    client: redis::Client,
    manager: Mutex<Option<ConnectionManager>>,
    /// When a probe last took the connection.
    used: std::sync::Mutex<Option<std::time::Instant>>,
}

/// A connection idle this long is PINGed before a probe uses it: servers and proxies close
/// idle clients (Redis `timeout`, managed services, load balancers), and the first command on
/// such a connection fails although the server is fine.
const IDLE_PING: Duration = Duration::from_secs(1);

impl Conn {
    fn new(client: redis::Client) -> Self {
        Conn {
            client,
            manager: Mutex::new(None),
            used: std::sync::Mutex::new(None),
        }
    }

    /// The shared connection, connected on first use and checked after idleness: a
    /// connection the server closed while idle costs one reconnection, never a failed probe.
    async fn get(&self) -> Result<ConnectionManager, ProbeError> {
        let mut guard = self.manager.lock().await;
        let idle = {
            let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
            let idle = used.is_none_or(|t| t.elapsed() >= IDLE_PING);
            *used = Some(std::time::Instant::now());
            idle
        };
        if let Some(m) = guard.as_ref() {
            let mut m = m.clone();
            if idle {
                if let Err(e) = ping(&mut m).await {
                    if !closed(&e) {
                        // An answer it cannot parse (a proxy, another protocol) would stay
                        // forever on this connection: the next probe starts a fresh one.
                        *guard = None;
                        return Err(classify(e));
                    }
                    // The manager reconnects in the background after a dropped connection;
                    // the second PING waits for that.
                    tracing::debug!(
                        "the saved Redis connection was closed by the server; reconnecting"
                    );
                    ping(&mut m).await.map_err(classify)?;
                }
            }
            return Ok(m);
        }
        // Fixed driver timeouts: the scheduler bounds every run; these only keep a dead
        // connection from hanging the manager, whichever probe happened to connect first.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(DRIVER_TIMEOUT))
            .set_response_timeout(Some(DRIVER_TIMEOUT))
            .set_number_of_retries(1);
        let manager = ConnectionManager::new_with_config(self.client.clone(), config)
            .await
            .map_err(classify)?;
        *guard = Some(manager.clone());
        Ok(manager)
    }

    /// Drops the connection manager; the next probe connects afresh.
    async fn reset(&self) {
        *self.manager.lock().await = None;
    }
}

async fn ping(conn: &mut ConnectionManager) -> Result<String, RedisError> {
    redis::cmd("PING").query_async(conn).await
}

/// True for the errors of a connection the server or the network closed.
fn closed(err: &RedisError) -> bool {
    err.is_connection_dropped() || (err.is_io_error() && !err.is_connection_refusal())
}

/// A Redis source.
pub struct RedisSource {
    name: String,
    conn: Arc<Conn>,
}

impl RedisSource {
    /// Creates the source without connecting.
    pub fn new(config: &RedisConfig, name: &str) -> Result<Self, String> {
        crate::secrets::register_url_password(&config.url);
        let scrub = |e: redis::RedisError| crate::secrets::scrub(&e.to_string()).into_owned();
        let client = match &config.tls {
            Some(tls) => {
                let material = tls.load_for_client()?;
                let certs = redis::TlsCertificates {
                    client_tls: material.identity.map(|(client_cert, client_key)| {
                        redis::ClientTlsConfig {
                            client_cert,
                            client_key,
                        }
                    }),
                    root_cert: material.ca,
                };
                redis::Client::build_with_tls(config.url.as_str(), certs).map_err(scrub)?
            }
            None => redis::Client::open(config.url.as_str()).map_err(scrub)?,
        };
        Ok(RedisSource {
            name: name.to_owned(),
            conn: Arc::new(Conn::new(client)),
        })
    }
}

impl Source<RedisCheck> for RedisSource {
    fn health(&self) -> Arc<dyn Probe> {
        Arc::new(health::HealthProbe {
            source: self.name.clone(),
            conn: self.conn.clone(),
            start: Default::default(),
        })
    }

    fn check(&self, check: &CheckConfig<RedisCheck>, plan: &CheckPlan) -> Arc<dyn Probe> {
        let help = check.help(plan.interval);
        let (metric, builtin) = match &check.common.metric {
            Some(m) => (m.clone(), false),
            None => (keys::KEY_LENGTH.name.to_owned(), true),
        };
        match &check.spec {
            RedisCheck::Key(k) => Arc::new(keys::KeyProbe {
                source: builtin.then(|| self.name.clone()),
                conn: self.conn.clone(),
                metric,
                help: if builtin {
                    keys::KEY_LENGTH.help.to_owned()
                } else {
                    help
                },
                check: k.clone(),
                max_keys: plan.max_series,
            }),
            RedisCheck::Command(c) => Arc::new(commands::CommandProbe {
                conn: self.conn.clone(),
                metric,
                help,
                command: c.command.clone(),
            }),
            RedisCheck::Heartbeat(Split(hb, b)) => Arc::new(heartbeats::HeartbeatProbe {
                source: self.name.clone(),
                conn: self.conn.clone(),
                hb: hb.clone(),
                from: b.clone(),
                max_keys: plan.max_series,
                tracker: Tracker::default(),
            }),
        }
    }
}

fn classify(err: RedisError) -> ProbeError {
    let text = err.to_string();
    let reason = if matches!(err.kind(), redis::ErrorKind::AuthenticationFailed)
        || matches!(err.code(), Some("NOAUTH" | "WRONGPASS" | "NOPERM"))
        || text.contains("AUTH")
    {
        Reason::Auth
    } else if err.is_timeout() {
        Reason::Timeout
    } else if err.is_io_error() || err.is_connection_refusal() || err.is_connection_dropped() {
        Reason::Connect
    } else if matches!(
        err.kind(),
        redis::ErrorKind::Parse | redis::ErrorKind::UnexpectedReturnType
    ) {
        Reason::Decode
    } else {
        Reason::Query
    };
    ProbeError::new(reason, text)
}

/// One SCAN call: the next cursor (0 when the walk is done) and a batch of matching keys, as
/// bytes: Redis keys are binary, and one name that is not UTF-8 must not fail the batch.
async fn scan_step(
    conn: &mut ConnectionManager,
    cursor: u64,
    pattern: &str,
    count: u32,
) -> Result<(u64, Vec<Vec<u8>>), ProbeError> {
    redis::cmd("SCAN")
        .arg(cursor)
        .arg("MATCH")
        .arg(pattern)
        .arg("COUNT")
        .arg(count)
        .query_async(conn)
        .await
        .map_err(classify)
}

/// What a SCAN walk found.
#[derive(Debug, Default)]
struct Scanned {
    /// Matching keys kept, at most the walk's `max`.
    keys: Vec<String>,
    /// Matching keys past `max`.
    beyond: u64,
    /// Matching keys kept out because their name is not UTF-8 (no label can carry it).
    unreadable: u64,
}

/// Keys matching `pattern`, at most `max` of them, plus how many more matched and how many
/// had a name that is not UTF-8. SCAN walks the whole keyspace `count` keys per call; the
/// check's timeout bounds the walk.
async fn scan(
    conn: &mut ConnectionManager,
    pattern: &str,
    count: u32,
    max: usize,
) -> Result<Scanned, ProbeError> {
    let mut found = Keys::new(max);
    let mut cursor: u64 = 0;
    loop {
        let (next, batch) = scan_step(conn, cursor, pattern, count).await?;
        for key in batch {
            found.add(key);
        }
        if next == 0 {
            return Ok(found.done());
        }
        cursor = next;
    }
}

/// The keys of a walk as they arrive: each held once (SCAN may return a key more than once
/// while the keyspace is rehashing, and keys can be long), at most `max`.
struct Keys {
    max: usize,
    kept: std::collections::HashSet<String>,
    unreadable: std::collections::HashSet<Vec<u8>>,
    beyond: u64,
}

impl Keys {
    fn new(max: usize) -> Keys {
        Keys {
            max,
            kept: Default::default(),
            unreadable: Default::default(),
            beyond: 0,
        }
    }

    fn add(&mut self, key: Vec<u8>) {
        match String::from_utf8(key) {
            Ok(k) if self.kept.contains(&k) => {}
            Ok(k) if self.kept.len() < self.max => {
                self.kept.insert(k);
            }
            Ok(_) => self.beyond += 1,
            Err(e) => {
                let bytes = e.into_bytes();
                if self.kept.len() >= self.max {
                    self.beyond += 1;
                } else if self.unreadable.len() < self.max {
                    self.unreadable.insert(bytes);
                }
            }
        }
    }

    fn done(self) -> Scanned {
        if !self.unreadable.is_empty() {
            tracing::debug!(
                keys = self.unreadable.len(),
                "skipping keys whose name is not UTF-8"
            );
        }
        Scanned {
            keys: self.kept.into_iter().collect(),
            beyond: self.beyond,
            unreadable: self.unreadable.len() as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::configfile::{assert_reports, errors_of};

    #[test]
    fn a_key_name_that_is_not_utf8_is_counted_and_the_rest_kept() {
        let mut keys = Keys::new(2);
        for k in [
            &b"q:a"[..],
            b"q:\xff\xfe",
            b"q:a",
            b"q:\xff\xfe",
            b"q:b",
            b"q:c",
        ] {
            keys.add(k.to_vec());
        }
        let mut found = keys.done();
        found.keys.sort();
        assert_eq!(found.keys, ["q:a", "q:b"]);
        assert_eq!((found.beyond, found.unreadable), (1, 1));
        // Counting only (max 0): every match counts, readable or not.
        let mut count = Keys::new(0);
        count.add(b"q:a".to_vec());
        count.add(b"q:\xff".to_vec());
        assert_eq!(count.done().beyond, 2);
    }

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
        let c = crate::configfile::load_str(
            "sources:\n  - { name: q, kind: redis, url: 'redis://127.0.0.1', keys: [{ pattern: 'ai:*' }], checks: [{ metric: app_n, command: [DBSIZE] }], heartbeats: [{ pool: gpu, pattern: 'w:*' }] }",
        )
        .unwrap();
        let names: Vec<String> = c.sources[0].checks().iter().map(|c| c.name()).collect();
        assert_eq!(names, ["ai:*", "app_n", "heartbeat:gpu"]);
    }

    #[test]
    fn errors_are_classified_into_bounded_reasons() {
        use crate::error::Reason;
        let err = |kind, text: &'static str| classify(RedisError::from((kind, text)));
        assert_eq!(
            err(redis::ErrorKind::AuthenticationFailed, "bad password").reason(),
            Reason::Auth
        );
        assert_eq!(
            err(redis::ErrorKind::Client, "NOAUTH Authentication required").reason(),
            Reason::Auth
        );
        assert_eq!(
            classify(RedisError::from(std::io::Error::from(
                std::io::ErrorKind::ConnectionRefused
            )))
            .reason(),
            Reason::Connect
        );
        assert_eq!(
            err(redis::ErrorKind::UnexpectedReturnType, "not a number").reason(),
            Reason::Decode
        );
        assert_eq!(
            err(redis::ErrorKind::Client, "ERR unknown command").reason(),
            Reason::Query
        );
    }
}
