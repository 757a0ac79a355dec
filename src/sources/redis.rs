//! Redis source (redis crate): PING and INFO for health, key sizes by exact key or SCAN
//! pattern, and read-only commands whose numeric reply is a value.
//!
//! Only read-only commands are ever sent: TYPE and the length commands for keys, SCAN with a
//! bounded COUNT (never KEYS), and an allowlist for command checks. The connection manager
//! reconnects by itself after the server comes back.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{RedisError, Value as RValue};
use serde::Deserialize;
use serde_yaml::Value;
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::{take_checks, CheckSpec, KindConfig, Probe, ProbeFuture, Source};
use crate::config::load::parse_at;
use crate::config::validate::{label_name, metric_name};
use crate::config::{CheckConfig, CheckPlan, ConfigError, SourceConfig, Split};
use crate::error::{ProbeError, Reason};
use crate::heartbeat::{parse_value, HeartbeatCommon, Tracker};
use crate::sample::{label, Output};
use crate::timetemplate;

/// Default metric of key checks that set none.
pub const KEY_LENGTH_METRIC: &str = "pulse_redis_key_length";

/// Commands a command check may send: read-only, with a numeric (or nil) reply.
pub const READ_ONLY_COMMANDS: [&str; 20] = [
    "BITCOUNT",
    "DBSIZE",
    "EXISTS",
    "GET",
    "HGET",
    "HLEN",
    "HSTRLEN",
    "LLEN",
    "PFCOUNT",
    "PTTL",
    "SCARD",
    "SISMEMBER",
    "STRLEN",
    "TTL",
    "XLEN",
    "ZCARD",
    "ZCOUNT",
    "ZLEXCOUNT",
    "ZRANK",
    "ZSCORE",
];

/// Connection settings of a `kind: redis` source.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    /// Connection URL: `redis://[:password@]host:6379[/db]` or `rediss://` for TLS.
    pub url: String,
}

/// A key check: the size of one key, or of every key matching a pattern.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyCheck {
    /// An exact key name.
    pub key: Option<String>,
    /// A SCAN `MATCH` pattern such as `ai_queue:*`.
    pub pattern: Option<String>,
    /// Label that carries the key name (default `key`).
    #[serde(default = "default_key_label")]
    pub label: String,
    /// Keys SCAN may return per call (the `COUNT` hint, default 100).
    #[serde(default = "default_scan_count")]
    pub scan_count: u32,
    /// With `pattern`: publish how many keys match (one sample whose label is the pattern)
    /// instead of one size per key. Needs `metric`. Counting keeps no key names, so it is not
    /// bounded by `max_series`; a key may be counted twice while Redis rehashes.
    #[serde(default)]
    pub count: bool,
    /// With `count`: read this field of every matching hash (HMGET) and count the keys per
    /// value, one sample per value labelled with the field's name (a hash without the field
    /// counts under `unknown`; keys of other types are skipped and counted). For example
    /// WebSocket sessions by `device`.
    #[serde(default)]
    pub group_by: Option<String>,
    /// With `count`: count the distinct values of this field over the matching hashes instead
    /// of the keys (per `group_by` value when both are set). For example distinct `user_id`s
    /// of the open WebSocket sessions: users online, however many devices each has.
    #[serde(default)]
    pub distinct: Option<String>,
    /// Also publish when the oldest job waiting in a queue key was enqueued, the best sign
    /// of work that is not being processed: the lowest score of a sorted set scored by time,
    /// or a time field of the item at the oldest end of a list.
    #[serde(default)]
    pub oldest: Option<Oldest>,
}

/// Where the enqueue time of a queue key's oldest item is, and the metric it goes to.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Oldest {
    /// Metric name for the oldest item's enqueue time, as unix seconds (a name ending in
    /// `_timestamp_seconds`, such as `app_queue_oldest_job_timestamp_seconds`). Labelled like
    /// the key's length; absent while the key is empty or missing.
    pub metric: String,
    /// For lists: the item's JSON field holding the enqueue time (a number, or a numeric
    /// string). Required for lists; sorted sets use their lowest score and take no field.
    #[serde(default)]
    pub field: Option<String>,
    /// For lists: the end holding the oldest item: `head` (index 0, for RPUSH producers and
    /// LPOP consumers; the default) or `tail` (for LPUSH producers and RPOP consumers).
    #[serde(default)]
    pub end: ListEnd,
    /// Unit of the time: `seconds` (default) or `milliseconds`.
    #[serde(default)]
    pub unit: TimeUnit,
}

/// The end of a list that holds its oldest item.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ListEnd {
    /// Index 0 (RPUSH producers, LPOP consumers).
    #[default]
    Head,
    /// Index -1 (LPUSH producers, RPOP consumers).
    Tail,
}

/// Unit of an enqueue time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeUnit {
    /// Unix seconds (fractions allowed).
    #[default]
    Seconds,
    /// Unix milliseconds.
    Milliseconds,
}

impl Oldest {
    /// The enqueue time, in unix seconds, that a list item holds in `field`: `None` when the
    /// item is not a JSON object with a numeric (or numeric string) field of that name.
    fn list_item_time(&self, item: &str) -> Option<f64> {
        let field = self.field.as_deref()?;
        let v: serde_json::Value = serde_json::from_str(item).ok()?;
        let t = match &v[field] {
            serde_json::Value::Number(n) => n.as_f64()?,
            serde_json::Value::String(s) => s.trim().parse::<f64>().ok()?,
            _ => return None,
        };
        self.seconds(t)
    }

    /// `t` in unix seconds, or `None` when it is not a plausible time (not finite, or not
    /// positive).
    fn seconds(&self, t: f64) -> Option<f64> {
        let s = match self.unit {
            TimeUnit::Seconds => t,
            TimeUnit::Milliseconds => t / 1000.0,
        };
        (s.is_finite() && s > 0.0).then_some(s)
    }
}

fn default_key_label() -> String {
    "key".to_owned()
}

fn default_scan_count() -> u32 {
    100
}

impl KeyCheck {
    /// The key or pattern this check reads.
    pub fn target(&self) -> &str {
        self.key
            .as_deref()
            .or(self.pattern.as_deref())
            .unwrap_or_default()
    }
}

/// A command check: one read-only command whose reply is the value.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandCheck {
    /// The command and its arguments, e.g. `[ZCOUNT, "ai:requests", "{{now-60s}}", "+inf"]`.
    /// Arguments may hold time expressions (see the README).
    pub command: Vec<String>,
}

/// Where a Redis heartbeat check reads beats: keys by pattern (value a timestamp or JSON), or
/// the fields of one hash (field = worker, value as for keys).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BeatSource {
    /// SCAN pattern of heartbeat keys, e.g. `worker:heartbeat:gpu:*`; the worker is the key
    /// without the pattern's literal prefix.
    pub pattern: Option<String>,
    /// A hash whose fields are workers.
    pub hash: Option<String>,
    /// SCAN `COUNT` hint (default 100).
    #[serde(default = "default_scan_count")]
    pub scan_count: u32,
}

/// Parses the redis-specific fields of a source, its `keys` and its `checks`.
pub fn parse(
    mut rest: Value,
    path: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<(KindConfig, Vec<CheckConfig>)> {
    let mut checks = take_checks(&mut rest, "keys", path, errors, CheckSpec::RedisKey);
    checks.extend(take_checks(
        &mut rest,
        "checks",
        path,
        errors,
        CheckSpec::RedisCommand,
    ));
    checks.extend(take_checks(
        &mut rest,
        "heartbeats",
        path,
        errors,
        CheckSpec::RedisHeartbeat,
    ));
    let config: RedisConfig = parse_at(rest, path, errors)?;
    Some((KindConfig::Redis(config), checks))
}

/// Records the redis rules `source` breaks.
pub fn validate(config: &RedisConfig, source: &SourceConfig, errors: &mut Vec<ConfigError>) {
    if let Err(e) = redis::Client::open(config.url.as_str()) {
        errors.push(ConfigError::new(
            format!("{}.url", source.path),
            format!(
                "not a usable Redis URL ({}); expected redis://[:password@]host:6379[/db]",
                crate::secrets::scrub(&e.to_string())
            ),
        ));
    }
    for check in &source.checks {
        let p = &check.path;
        match &check.spec {
            CheckSpec::RedisKey(k) => {
                if k.key.is_some() == k.pattern.is_some() {
                    errors.push(ConfigError::new(
                        p.clone(),
                        "set exactly one of `key` (an exact key) or `pattern` (a SCAN pattern)",
                    ));
                }
                label_name(&format!("{p}.label"), &k.label, errors);
                if check.common.const_labels.contains_key(&k.label) {
                    errors.push(ConfigError::new(
                        format!("{p}.label"),
                        format!("{:?} is also a const_label: keep one", k.label),
                    ));
                }
                if k.count && k.pattern.is_none() {
                    errors.push(ConfigError::new(
                        format!("{p}.count"),
                        "counts the keys matching `pattern`: set `pattern` (or drop `count`)",
                    ));
                }
                if k.count && check.common.metric.is_none() {
                    errors.push(ConfigError::new(
                        format!("{p}.metric"),
                        "required with `count: true`: the metric name the key count is published under",
                    ));
                }
                if k.scan_count == 0 {
                    errors.push(ConfigError::new(
                        format!("{p}.scan_count"),
                        "must be at least 1",
                    ));
                }
                for (field, value) in [("group_by", &k.group_by), ("distinct", &k.distinct)] {
                    if value.is_some() && !k.count {
                        errors.push(ConfigError::new(
                            format!("{p}.{field}"),
                            "reads fields of the hashes matching `pattern` while counting them: set `count: true` (and `pattern`)",
                        ));
                    }
                    if value.as_deref().is_some_and(str::is_empty) {
                        errors.push(ConfigError::new(
                            format!("{p}.{field}"),
                            "must name a hash field",
                        ));
                    }
                }
                if let Some(o) = &k.oldest {
                    metric_name(&format!("{p}.oldest.metric"), &o.metric, errors);
                    if k.count {
                        errors.push(ConfigError::new(
                            format!("{p}.oldest"),
                            "reads the oldest item of each key, which `count: true` does not visit: drop one of them",
                        ));
                    }
                    if check.common.metric.as_deref() == Some(o.metric.as_str()) {
                        errors.push(ConfigError::new(
                            format!("{p}.oldest.metric"),
                            "must differ from the check's `metric` (the key length)",
                        ));
                    }
                    if o.field.as_deref().is_some_and(str::is_empty) {
                        errors.push(ConfigError::new(
                            format!("{p}.oldest.field"),
                            "must name the JSON field of a list item that holds its enqueue time",
                        ));
                    }
                }
                if let Some(g) = &k.group_by {
                    // The field's name becomes a label: it must be a valid one, and a new one.
                    label_name(&format!("{p}.group_by"), g, errors);
                    if g == &k.label || check.common.const_labels.contains_key(g) {
                        errors.push(ConfigError::new(
                            format!("{p}.group_by"),
                            format!("{g:?} is already a label of this check (`label` or a const_label): rename one"),
                        ));
                    }
                }
            }
            CheckSpec::RedisCommand(c) => {
                if check.common.metric.is_none() {
                    errors.push(ConfigError::new(
                        format!("{p}.metric"),
                        "required: the metric name the reply is published under",
                    ));
                }
                match c.command.first() {
                    None => errors.push(ConfigError::new(format!("{p}.command"), "must name a command, e.g. [ZCOUNT, key, min, max]")),
                    Some(name) if !READ_ONLY_COMMANDS.contains(&name.to_ascii_uppercase().as_str()) => {
                        errors.push(ConfigError::new(
                            format!("{p}.command"),
                            format!("{name:?} is not an allowed read-only command with a numeric reply: use one of {}", READ_ONLY_COMMANDS.join(", ")),
                        ))
                    }
                    Some(_) => {}
                }
                for (i, arg) in c.command.iter().enumerate() {
                    if let Err(e) = timetemplate::validate(arg) {
                        errors.push(ConfigError::new(format!("{p}.command[{i}]"), e));
                    }
                }
            }
            CheckSpec::RedisHeartbeat(Split(_, b)) if b.pattern.is_some() == b.hash.is_some() => {
                errors.push(ConfigError::new(
                    p.clone(),
                    "set exactly one of `pattern` (heartbeat keys) or `hash` (one hash of workers)",
                ));
            }
            _ => {}
        }
    }
}

/// Connect and response timeout of the Redis connection manager.
const DRIVER_TIMEOUT: Duration = Duration::from_secs(10);

/// The lazily connected, self-reconnecting connection shared by a source's probes.
struct Conn {
    client: redis::Client,
    manager: Mutex<Option<ConnectionManager>>,
}

impl Conn {
    async fn get(&self) -> Result<ConnectionManager, ProbeError> {
        let mut guard = self.manager.lock().await;
        if let Some(m) = guard.as_ref() {
            return Ok(m.clone());
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
}

/// A Redis source.
pub struct RedisSource {
    name: String,
    conn: Arc<Conn>,
}

impl RedisSource {
    /// Creates the source without connecting.
    pub fn new(config: &RedisConfig, source: &SourceConfig) -> Result<Self, String> {
        crate::secrets::register_url_password(&config.url);
        let client = redis::Client::open(config.url.as_str())
            .map_err(|e| crate::secrets::scrub(&e.to_string()).into_owned())?;
        Ok(RedisSource {
            name: source.common.name.clone(),
            conn: Arc::new(Conn {
                client,
                manager: Mutex::new(None),
            }),
        })
    }
}

impl Source for RedisSource {
    fn health(&self) -> Arc<dyn Probe> {
        Arc::new(HealthProbe {
            source: self.name.clone(),
            conn: self.conn.clone(),
        })
    }

    fn check(&self, check: &CheckConfig, plan: &CheckPlan) -> Arc<dyn Probe> {
        let help = check.help(plan.interval);
        let (metric, builtin) = match &check.common.metric {
            Some(m) => (m.clone(), false),
            None => (KEY_LENGTH_METRIC.to_owned(), true),
        };
        match &check.spec {
            CheckSpec::RedisKey(k) => Arc::new(KeyProbe {
                source: builtin.then(|| self.name.clone()),
                conn: self.conn.clone(),
                metric,
                help: if builtin {
                    "Length of a Redis key by its type (LLEN, SCARD, ZCARD, XLEN, HLEN, or a numeric string value), cached.".to_owned()
                } else {
                    help
                },
                check: k.clone(),
                max_keys: plan.max_series,
            }),
            CheckSpec::RedisCommand(c) => Arc::new(CommandProbe {
                conn: self.conn.clone(),
                metric,
                help,
                command: c.command.clone(),
            }),
            CheckSpec::RedisHeartbeat(Split(hb, b)) => Arc::new(HeartbeatProbe {
                source: self.name.clone(),
                conn: self.conn.clone(),
                hb: hb.clone(),
                from: b.clone(),
                max_keys: plan.max_series,
                tracker: Tracker::default(),
            }),
            _ => unreachable!("validation only gives redis checks to a redis source"),
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

/// A reply as a number: integers, doubles and numeric strings; `None` for nil.
fn reply_number(v: &RValue) -> Result<Option<f64>, String> {
    match v {
        RValue::Nil => Ok(None),
        RValue::Int(i) => Ok(Some(*i as f64)),
        RValue::Double(d) => Ok(Some(*d)),
        RValue::Boolean(b) => Ok(Some(if *b { 1.0 } else { 0.0 })),
        RValue::BulkString(bytes) => parse_number(&String::from_utf8_lossy(bytes)).map(Some),
        RValue::SimpleString(s) => parse_number(s).map(Some),
        other => Err(format!("reply {other:?} is not a number")),
    }
}

fn parse_number(s: &str) -> Result<f64, String> {
    s.trim().parse::<f64>().map_err(|_| {
        let shown: String = s.chars().take(40).collect();
        format!("value {shown:?} is not a number")
    })
}

struct HealthProbe {
    source: String,
    conn: Arc<Conn>,
}

/// INFO fields we publish: (field, metric, help, counter?).
const INFO_FIELDS: [(&str, &str, &str, bool); 6] = [
    (
        "used_memory",
        "pulse_redis_memory_used_bytes",
        "Memory Redis has allocated (INFO used_memory).",
        false,
    ),
    (
        "maxmemory",
        "pulse_redis_memory_max_bytes",
        "The maxmemory limit (INFO maxmemory); 0 means no limit.",
        false,
    ),
    (
        "connected_clients",
        "pulse_redis_connected_clients",
        "Client connections (INFO connected_clients).",
        false,
    ),
    (
        "blocked_clients",
        "pulse_redis_blocked_clients",
        "Clients blocked in BLPOP and the like (INFO blocked_clients).",
        false,
    ),
    (
        "evicted_keys",
        "pulse_redis_evicted_keys_total",
        "Keys evicted because of maxmemory (INFO evicted_keys).",
        true,
    ),
    (
        "rejected_connections",
        "pulse_redis_rejected_connections_total",
        "Connections refused because of maxclients (INFO rejected_connections).",
        true,
    ),
];

impl Probe for HealthProbe {
    fn run(&self, _deadline: Instant) -> ProbeFuture<'_> {
        Box::pin(async move {
            let mut conn = self.conn.get().await?;
            let _: String = redis::cmd("PING")
                .query_async(&mut conn)
                .await
                .map_err(classify)?;
            let info: String = redis::cmd("INFO")
                .query_async(&mut conn)
                .await
                .map_err(classify)?;
            let fields: HashMap<&str, &str> =
                info.lines().filter_map(|l| l.split_once(':')).collect();
            let mut out = Output::default();
            for (field, metric, help, counter) in INFO_FIELDS {
                // A field this server version lacks is skipped, not an error.
                let Some(v) = fields.get(field).and_then(|v| v.trim().parse::<f64>().ok()) else {
                    continue;
                };
                let labels = vec![label("source", self.source.as_str())];
                if counter {
                    out.counter(metric, help, labels, v);
                } else {
                    out.gauge(metric, help, labels, v);
                }
            }
            // What happens at maxmemory decides which memory alert applies: `noeviction`
            // rejects writes, the others evict keys (a queue or heartbeat lost). One of a
            // handful of fixed names, so a bounded label.
            if let Some(policy) = fields.get("maxmemory_policy").map(|p| p.trim()) {
                if crate::config::names::is_object_name(policy) {
                    out.gauge(
                        "pulse_redis_maxmemory_policy",
                        "Always 1; the eviction policy at maxmemory (INFO maxmemory_policy) as the policy label.",
                        vec![
                            label("source", self.source.as_str()),
                            label("policy", policy),
                        ],
                        1.0,
                    );
                }
            }
            Ok(out)
        })
    }
}

struct KeyProbe {
    /// `Some(source)` when publishing the built-in metric, which carries a `source` label.
    source: Option<String>,
    conn: Arc<Conn>,
    metric: String,
    help: String,
    check: KeyCheck,
    max_keys: usize,
}

/// One SCAN call: the next cursor (0 when the walk is done) and a batch of matching keys.
async fn scan_step(
    conn: &mut ConnectionManager,
    cursor: u64,
    pattern: &str,
    count: u32,
) -> Result<(u64, Vec<String>), ProbeError> {
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

/// The TYPE of each key, in one pipelined round trip (`none` for a key that is gone).
async fn key_types(
    conn: &mut ConnectionManager,
    keys: &[String],
) -> Result<Vec<String>, ProbeError> {
    let mut types = redis::pipe();
    for k in keys {
        types.cmd("TYPE").arg(k);
    }
    types.query_async(conn).await.map_err(classify)
}

/// Keys matching `pattern`, at most `max` of them, plus how many more matched. SCAN walks the
/// whole keyspace `count` keys per call; the check's timeout bounds the walk.
async fn scan(
    conn: &mut ConnectionManager,
    pattern: &str,
    count: u32,
    max: usize,
) -> Result<(Vec<String>, u64), ProbeError> {
    let mut keys = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut beyond = 0u64;
    let mut cursor: u64 = 0;
    loop {
        let (next, batch) = scan_step(conn, cursor, pattern, count).await?;
        for key in batch {
            // SCAN may return a key more than once while the keyspace is rehashing.
            if seen.contains(&key) {
                continue;
            }
            if keys.len() < max {
                seen.insert(key.clone());
                keys.push(key);
            } else {
                beyond += 1;
            }
        }
        if next == 0 {
            return Ok((keys, beyond));
        }
        cursor = next;
    }
}

impl Probe for KeyProbe {
    fn run(&self, _deadline: Instant) -> ProbeFuture<'_> {
        Box::pin(async move {
            let mut conn = self.conn.get().await?;
            let mut out = Output::default();
            if let (true, Some(p)) = (self.check.count, &self.check.pattern) {
                if self.check.group_by.is_some() || self.check.distinct.is_some() {
                    return count_fields(&mut conn, &self.check, p, &self.metric, &self.help).await;
                }
                // max 0: scan keeps no names and reports every match as "beyond".
                let (_, matched) = scan(&mut conn, p, self.check.scan_count, 0).await?;
                out.gauge(
                    &self.metric,
                    &self.help,
                    vec![label(&self.check.label, p.as_str())],
                    matched as f64,
                );
                return Ok(out);
            }
            let keys = match (&self.check.key, &self.check.pattern) {
                (Some(k), _) => vec![k.clone()],
                (None, Some(p)) => {
                    let (keys, beyond) =
                        scan(&mut conn, p, self.check.scan_count, self.max_keys).await?;
                    out.dropped = beyond;
                    keys
                }
                (None, None) => Vec::new(),
            };
            if keys.is_empty() {
                return Ok(out);
            }
            let kinds = key_types(&mut conn, &keys).await?;
            let mut sizes = redis::pipe();
            let mut measured = Vec::new();
            for (k, t) in keys.iter().zip(&kinds) {
                let cmd = match t.as_str() {
                    "list" => "LLEN",
                    "set" => "SCARD",
                    "zset" => "ZCARD",
                    "stream" => "XLEN",
                    "hash" => "HLEN",
                    "string" => "GET",
                    // The key does not exist: absent, not 0.
                    "none" => continue,
                    // A type with no length we know (a module's, such as ReJSON): skipped
                    // and counted, like a string that is not a number.
                    other => {
                        tracing::debug!(key = %k, r#type = other, "skipping a key of a type without a known length");
                        out.skipped += 1;
                        continue;
                    }
                };
                sizes.cmd(cmd).arg(k);
                measured.push((k, t.as_str()));
            }
            if measured.is_empty() {
                return Ok(out);
            }
            let replies: Vec<RValue> = sizes.query_async(&mut conn).await.map_err(classify)?;
            let labels_of = |k: &str| {
                let mut labels = Vec::with_capacity(2);
                if let Some(s) = &self.source {
                    labels.push(label("source", s.as_str()));
                }
                labels.push(label(&self.check.label, k));
                labels
            };
            if let Some(oldest) = &self.check.oldest {
                oldest_items(&mut conn, oldest, &measured, &labels_of, &mut out).await?;
            }
            for ((k, _), reply) in measured.into_iter().zip(&replies) {
                match reply_number(reply) {
                    Ok(Some(v)) => {
                        out.gauge(&self.metric, &self.help, labels_of(k), v);
                    }
                    Ok(None) => {}
                    Err(e) if self.check.pattern.is_some() => {
                        tracing::debug!(key = %k, error = %e, "skipping non-numeric key under pattern");
                        out.skipped += 1;
                    }
                    Err(e) => {
                        return Err(ProbeError::new(Reason::Decode, format!("key {k:?}: {e}")))
                    }
                }
            }
            Ok(out)
        })
    }
}

/// Publishes the enqueue time of the oldest item of every measured list or sorted set (one
/// pipelined LINDEX or `ZRANGE 0 0 WITHSCORES` per key). Empty keys have no oldest item and
/// publish nothing; items without a readable time, and keys of other types, are skipped and
/// counted.
async fn oldest_items(
    conn: &mut ConnectionManager,
    oldest: &Oldest,
    measured: &[(&String, &str)],
    labels_of: &impl Fn(&str) -> Vec<(String, String)>,
    out: &mut Output,
) -> Result<(), ProbeError> {
    let mut pipe = redis::pipe();
    let mut asked = Vec::new();
    for (k, t) in measured {
        match (*t, &oldest.field) {
            ("list", Some(_)) => {
                let index = match oldest.end {
                    ListEnd::Head => 0,
                    ListEnd::Tail => -1,
                };
                pipe.cmd("LINDEX").arg(*k).arg(index);
            }
            ("zset", _) => {
                pipe.cmd("ZRANGE").arg(*k).arg(0).arg(0).arg("WITHSCORES");
            }
            _ => {
                tracing::debug!(key = %k, r#type = t, "no oldest item: not a sorted set, or a list without oldest.field");
                out.skipped += 1;
                continue;
            }
        }
        asked.push((*k, *t));
    }
    if asked.is_empty() {
        return Ok(());
    }
    let help = "When the oldest job waiting in the queue was enqueued, as unix seconds (cached); absent while the queue is empty.";
    let replies: Vec<RValue> = pipe.query_async(conn).await.map_err(classify)?;
    for ((k, t), reply) in asked.into_iter().zip(replies) {
        let at = match (t, reply) {
            (_, RValue::Nil) => continue,
            ("list", RValue::BulkString(b)) => oldest.list_item_time(&String::from_utf8_lossy(&b)),
            ("list", RValue::SimpleString(s)) => oldest.list_item_time(&s),
            ("zset", RValue::Array(items)) if items.is_empty() => continue,
            ("zset", RValue::Array(items)) => items
                .get(1)
                .and_then(|score| reply_number(score).ok().flatten())
                .and_then(|v| oldest.seconds(v)),
            _ => None,
        };
        match at {
            Some(at) => out.gauge(&oldest.metric, help, labels_of(k), at),
            None => {
                tracing::debug!(key = %k, "the oldest item holds no readable enqueue time; skipped");
                out.skipped += 1;
            }
        }
    }
    Ok(())
}

/// `count` with `group_by` and/or `distinct`: walks the keys matching `pattern` batch by
/// batch (SCAN, then TYPE and HMGET pipelined per batch), so memory grows with the number of
/// groups and distinct values, never with the number of keys. Like plain counting, a key may
/// be counted twice while Redis rehashes.
async fn count_fields(
    conn: &mut ConnectionManager,
    check: &KeyCheck,
    pattern: &str,
    metric: &str,
    help: &str,
) -> Result<Output, ProbeError> {
    let fields: Vec<&str> = check
        .group_by
        .iter()
        .chain(check.distinct.iter())
        .map(String::as_str)
        .collect();
    // Per group (the one group "" without `group_by`): keys seen and distinct values.
    let mut groups: BTreeMap<String, (u64, HashSet<String>)> = BTreeMap::new();
    if check.group_by.is_none() {
        // One sample even when nothing matches: 0, as plain counting reports it.
        groups.insert(String::new(), Default::default());
    }
    let mut out = Output::default();
    let mut cursor: u64 = 0;
    loop {
        let (next, batch) = scan_step(conn, cursor, pattern, check.scan_count).await?;
        if !batch.is_empty() {
            let kinds = key_types(conn, &batch).await?;
            let hashes: Vec<&String> = batch
                .iter()
                .zip(&kinds)
                .filter(|(k, t)| match t.as_str() {
                    "hash" => true,
                    // Expired between SCAN and TYPE.
                    "none" => false,
                    other => {
                        tracing::debug!(key = %k, r#type = other, "skipping a key that is not a hash");
                        out.skipped += 1;
                        false
                    }
                })
                .map(|(k, _)| k)
                .collect();
            if !hashes.is_empty() {
                let mut get = redis::pipe();
                for k in &hashes {
                    get.cmd("HMGET").arg(*k).arg(&fields);
                }
                let got: Vec<Vec<Option<String>>> =
                    get.query_async(conn).await.map_err(classify)?;
                for mut row in got {
                    // A hash that expired between TYPE and HMGET reads as one without the
                    // fields: at worst one key counted under `unknown`.
                    let distinct = check.distinct.as_ref().and_then(|_| row.pop().flatten());
                    let group = match check.group_by {
                        Some(_) => row.pop().flatten().unwrap_or_else(|| "unknown".to_owned()),
                        None => String::new(),
                    };
                    let (keys, values) = groups.entry(group).or_default();
                    *keys += 1;
                    values.extend(distinct);
                }
            }
        }
        if next == 0 {
            break;
        }
        cursor = next;
    }
    let pattern_label = label(&check.label, pattern);
    for (group, (keys, values)) in groups {
        let value = match check.distinct {
            Some(_) => values.len() as f64,
            None => keys as f64,
        };
        let mut labels = vec![pattern_label.clone()];
        if let Some(field) = &check.group_by {
            labels.push(label(field, group.as_str()));
        }
        out.gauge(metric, help, labels, value);
    }
    Ok(out)
}

struct CommandProbe {
    conn: Arc<Conn>,
    metric: String,
    help: String,
    command: Vec<String>,
}

impl Probe for CommandProbe {
    fn run(&self, _deadline: Instant) -> ProbeFuture<'_> {
        Box::pin(async move {
            let now = SystemTime::now();
            let mut cmd = redis::cmd(&self.command[0].to_ascii_uppercase());
            for arg in &self.command[1..] {
                cmd.arg(
                    timetemplate::expand(arg, now)
                        .map_err(|e| ProbeError::new(Reason::Query, e))?,
                );
            }
            let mut conn = self.conn.get().await?;
            let reply: RValue = cmd.query_async(&mut conn).await.map_err(classify)?;
            let mut out = Output::default();
            match reply_number(&reply) {
                Ok(Some(v)) => out.gauge(&self.metric, &self.help, Vec::new(), v),
                Ok(None) => {}
                Err(e) => {
                    return Err(ProbeError::new(
                        Reason::Decode,
                        format!("{}: {e}", self.command[0]),
                    ))
                }
            }
            Ok(out)
        })
    }
}

/// Keys read per MGET: big enough to keep round trips few, small enough not to block Redis.
const MGET_BATCH: usize = 500;

struct HeartbeatProbe {
    source: String,
    conn: Arc<Conn>,
    hb: HeartbeatCommon,
    from: BeatSource,
    max_keys: usize,
    tracker: Tracker,
}

impl Probe for HeartbeatProbe {
    fn run(&self, _deadline: Instant) -> ProbeFuture<'_> {
        Box::pin(async move {
            let mut conn = self.conn.get().await?;
            // (worker, raw value) pairs; MGET gives nil for keys that are not strings.
            let mut values: Vec<(String, Option<String>)> = Vec::new();
            let mut dropped = 0;
            if let Some(pattern) = &self.from.pattern {
                let (keys, beyond) =
                    scan(&mut conn, pattern, self.from.scan_count, self.max_keys).await?;
                dropped = beyond;
                let prefix = &pattern[..pattern.find(['*', '?', '[']).unwrap_or(pattern.len())];
                for chunk in keys.chunks(MGET_BATCH) {
                    let got: Vec<Option<String>> = redis::cmd("MGET")
                        .arg(chunk)
                        .query_async(&mut conn)
                        .await
                        .map_err(classify)?;
                    for (key, v) in chunk.iter().zip(got) {
                        values.push((key.strip_prefix(prefix).unwrap_or(key).to_owned(), v));
                    }
                }
            } else if let Some(hash) = &self.from.hash {
                let all: HashMap<String, String> = redis::cmd("HGETALL")
                    .arg(hash)
                    .query_async(&mut conn)
                    .await
                    .map_err(classify)?;
                values.extend(all.into_iter().map(|(k, v)| (k, Some(v))));
            }
            let mut beats = Vec::with_capacity(values.len());
            let mut malformed = 0u64;
            let mut example = None;
            for (worker, raw) in &values {
                // A key that expired between SCAN and MGET is simply gone.
                let Some(raw) = raw else { continue };
                match parse_value(worker, raw, &self.hb.attributes) {
                    Some(b) => beats.push(b),
                    None => {
                        malformed += 1;
                        example.get_or_insert(worker.as_str());
                    }
                }
            }
            let mut out = self
                .tracker
                .update(&self.source, &self.hb, beats, malformed, example);
            out.dropped += dropped;
            Ok(out)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oldest(field: Option<&str>, unit: TimeUnit) -> Oldest {
        Oldest {
            metric: "app_queue_oldest_job_timestamp_seconds".into(),
            field: field.map(str::to_owned),
            end: ListEnd::Head,
            unit,
        }
    }

    #[test]
    fn list_items_give_their_enqueue_time_in_seconds() {
        let o = oldest(Some("enqueued_at"), TimeUnit::Seconds);
        assert_eq!(
            o.list_item_time(r#"{"id": 7, "enqueued_at": 1700000000.5}"#),
            Some(1_700_000_000.5)
        );
        assert_eq!(
            o.list_item_time(r#"{"enqueued_at": " 1700000000 "}"#),
            Some(1_700_000_000.0)
        );
        let ms = oldest(Some("ts"), TimeUnit::Milliseconds);
        assert_eq!(ms.list_item_time(r#"{"ts": 1700000000000}"#), Some(1.7e9));
    }

    #[test]
    fn items_without_a_time_are_not_read_as_one() {
        let o = oldest(Some("enqueued_at"), TimeUnit::Seconds);
        for item in [
            "42",
            "not json",
            r#"{"id": 1}"#,
            r#"{"enqueued_at": "yesterday"}"#,
            r#"{"enqueued_at": -5}"#,
            r#"{"enqueued_at": null}"#,
        ] {
            assert_eq!(o.list_item_time(item), None, "{item}");
        }
        assert_eq!(oldest(None, TimeUnit::Seconds).list_item_time("{}"), None);
        assert_eq!(o.seconds(f64::NAN), None);
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

    #[test]
    fn replies_are_read_as_numbers_or_nothing() {
        assert_eq!(reply_number(&RValue::Int(7)), Ok(Some(7.0)));
        assert_eq!(reply_number(&RValue::Nil), Ok(None));
        assert_eq!(
            reply_number(&RValue::BulkString(b"2.5".to_vec())),
            Ok(Some(2.5))
        );
        assert!(reply_number(&RValue::BulkString(b"ready".to_vec())).is_err());
        assert!(reply_number(&RValue::Array(vec![])).is_err());
    }

    #[test]
    fn bad_oldest_options_are_named_with_their_fix() {
        crate::config::load::assert_reports(
            r#"
sources:
  - name: q
    kind: redis
    url: redis://127.0.0.1:6379
    keys:
      - { key: a, metric: app_depth, oldest: { metric: app_depth } }
      - { pattern: "b:*", count: true, metric: app_count, oldest: { metric: "bad name" } }
      - { key: c, oldest: { metric: app_c_oldest_timestamp_seconds, field: "" } }
"#,
            &[
                "sources[0].keys[0].oldest.metric: must differ from the check's `metric`",
                "sources[0].keys[1].oldest: reads the oldest item of each key",
                "sources[0].keys[1].oldest.metric",
                "sources[0].keys[2].oldest.field: must name the JSON field",
            ],
        );
    }

    #[test]
    fn oldest_options_are_parsed_with_their_defaults() {
        let k: KeyCheck = serde_yaml::from_str(
            "{ key: q, oldest: { metric: app_queue_oldest_job_timestamp_seconds, field: at } }",
        )
        .unwrap();
        let o = k.oldest.unwrap();
        assert_eq!((o.end, o.unit), (ListEnd::Head, TimeUnit::Seconds));
        let bad =
            serde_yaml::from_str::<KeyCheck>("{ key: q, oldest: { metric: m, end: middle } }");
        assert!(bad.unwrap_err().to_string().contains("unknown variant"));
    }
}
