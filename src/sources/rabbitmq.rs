//! RabbitMQ source: queue depth, consumers and dead letters through the management HTTP API,
//! or, without the management plugin, through AMQP passive `queue.declare` (lapin).
//!
//! Queues are filtered by vhost and include/exclude regexes, capped at `max_queues` (the
//! deepest queues are kept; per-vhost totals always count every queue), and dead-letter queues
//! are labelled `dead_letter="true"`: those named by another queue's `x-dead-letter-*`
//! arguments or policy, and those matching `dead_letter_pattern`.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use regex::Regex;
use serde::Deserialize;
use serde_json::Value as Json;
use serde_yaml::Value;
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::{remaining, Kind, Parsed, Probe, ProbeFuture, Source, Unrunnable};
use crate::config::parse::{builtin, parse_at};
use crate::config::{CheckConfig, CheckPlan, CheckSpec, ConfigError};
use crate::error::{ProbeError, Reason};
use crate::sample::{Metric, Output};

/// Connection settings and queue selection of a `kind: rabbitmq` source.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RabbitmqConfig {
    /// Management API base URL, e.g. `http://127.0.0.1:15672`.
    pub management_url: Option<String>,
    /// Management API user.
    pub username: Option<String>,
    /// Management API password (use `${env:…}` or `${file:…}`).
    pub password: Option<String>,
    /// Vhosts to watch (default: every vhost).
    #[serde(default)]
    pub vhosts: Vec<String>,
    /// Queue name filters.
    #[serde(default)]
    pub queues: QueueFilter,
    /// Queue names matching this regex are dead-letter queues, besides those found from
    /// `x-dead-letter-*` arguments and policies.
    pub dead_letter_pattern: Option<String>,
    /// Most queues published (default 1000); the deepest are kept, the rest counted as dropped.
    #[serde(default = "default_max_queues")]
    pub max_queues: usize,
    /// AMQP URL, for brokers without the management plugin: `amqp://user:pass@host:5672/vhost`.
    pub amqp_url: Option<String>,
    /// Queues to read over AMQP with a passive `queue.declare`.
    #[serde(default)]
    pub amqp_queues: Vec<String>,
}

/// Include and exclude regexes over queue names.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueFilter {
    /// A queue is watched if it matches any of these (default: every queue).
    #[serde(default)]
    pub include: Vec<String>,
    /// ... and none of these.
    #[serde(default)]
    pub exclude: Vec<String>,
}

fn default_max_queues() -> usize {
    1000
}

/// Which built-in check a RabbitMQ source runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RabbitCheck {
    /// Every selected queue through the management API.
    ManagementQueues,
    /// The configured queues through AMQP.
    AmqpQueues,
}

/// Check name of the management-API queue check.
pub const QUEUES_CHECK: &str = "queues";
/// Check name of the AMQP queue check.
pub const AMQP_CHECK: &str = "amqp_queues";

impl CheckSpec for RabbitCheck {}

/// The built-in metrics of a RabbitMQ source. Queue metrics carry the queue labels `source`,
/// `vhost`, `queue` and `dead_letter` first.
pub const METRICS: &[Metric] = &[
    QUEUE_MESSAGES,
    QUEUE_CONSUMERS,
    QUEUE_UTILISATION,
    QUEUE_RATE,
    QUEUE_ACKED,
    QUEUE_HEAD_TIMESTAMP,
    QUEUE_INFO,
    VHOST_QUEUES,
    VHOST_MESSAGES,
    NODE_RUNNING,
    NODE_ALARM,
];

const QUEUE_MESSAGES: Metric = Metric::gauge(
    "pulse_rabbitmq_queue_messages",
    "Messages in the queue: ready for delivery, or delivered and not yet acknowledged.",
    &["source", "vhost", "queue", "dead_letter", "state"],
);
const QUEUE_CONSUMERS: Metric = Metric::gauge(
    "pulse_rabbitmq_queue_consumers",
    "Consumers attached to the queue.",
    &["source", "vhost", "queue", "dead_letter"],
);
const QUEUE_UTILISATION: Metric = Metric::gauge(
    "pulse_rabbitmq_queue_consumer_utilisation",
    "Share of time the queue could deliver to its consumers immediately (0 to 1), when the broker reports it.",
    &["source", "vhost", "queue", "dead_letter"],
);
const QUEUE_RATE: Metric = Metric::gauge(
    "pulse_rabbitmq_queue_message_rate",
    "Messages per second through the queue, by operation, as the broker averages them.",
    &["source", "vhost", "queue", "dead_letter", "op"],
);
const QUEUE_ACKED: Metric = Metric::counter(
    "pulse_rabbitmq_queue_messages_acked_total",
    "Messages acknowledged by the queue's consumers, as the broker counts them.",
    &["source", "vhost", "queue", "dead_letter"],
);
const QUEUE_HEAD_TIMESTAMP: Metric = Metric::gauge(
    "pulse_rabbitmq_queue_head_message_timestamp_seconds",
    "Timestamp property of the oldest ready message (the queue's head), as unix seconds; absent when the queue is empty or publishers set no timestamp.",
    &["source", "vhost", "queue", "dead_letter"],
);
const QUEUE_INFO: Metric = Metric::gauge(
    "pulse_rabbitmq_queue_info",
    "Always 1; the queue's state and type as labels.",
    &["source", "vhost", "queue", "dead_letter", "state", "type"],
);
const VHOST_QUEUES: Metric = Metric::gauge(
    "pulse_rabbitmq_vhost_queues",
    "Queues selected in the vhost (before the max_queues cap).",
    &["source", "vhost"],
);
const VHOST_MESSAGES: Metric = Metric::gauge(
    "pulse_rabbitmq_vhost_messages",
    "Messages in the vhost's selected queues, by state.",
    &["source", "vhost", "state"],
);
const NODE_RUNNING: Metric = Metric::gauge(
    "pulse_rabbitmq_node_running",
    "Whether the broker node is running (1) or not (0).",
    &["source", "node"],
);
const NODE_ALARM: Metric = Metric::gauge(
    "pulse_rabbitmq_node_alarm",
    "Whether a resource alarm is raised on the node (publishers are blocked while it is).",
    &["source", "node", "alarm"],
);

/// `"true"` or `"false"`, for the `dead_letter` label.
fn flag(b: bool) -> &'static str {
    if b {
        "true"
    } else {
        "false"
    }
}

/// `kind: rabbitmq`.
pub struct Rabbitmq;

impl Kind for Rabbitmq {
    const NAME: &'static str = "rabbitmq";
    type Settings = RabbitmqConfig;
    type Check = RabbitCheck;
    type Source = RabbitmqSource;
    const METRICS: &'static [Metric] = METRICS;

    /// Its checks are built in, one per configured mode.
    fn parse(rest: Value, path: &str, errors: &mut Vec<ConfigError>) -> Option<Parsed<Self>> {
        let settings: RabbitmqConfig = parse_at(rest, path, errors)?;
        let queue_check = |name: &str, spec: RabbitCheck| {
            let mut check = builtin(path, name, spec);
            // The queue cap (max_queues) bounds these checks; it counts what it drops.
            check.common.max_series = Some(usize::MAX);
            check
        };
        let mut checks = Vec::new();
        if settings.management_url.is_some() {
            checks.push(queue_check(QUEUES_CHECK, RabbitCheck::ManagementQueues));
        }
        if settings.amqp_url.is_some() && !settings.amqp_queues.is_empty() {
            checks.push(queue_check(AMQP_CHECK, RabbitCheck::AmqpQueues));
        }
        Some(Parsed { settings, checks })
    }

    fn validate(parsed: &Parsed<Self>, path: &str, errors: &mut Vec<ConfigError>) {
        validate(&parsed.settings, path, errors)
    }

    fn display_endpoint(c: &RabbitmqConfig) -> String {
        c.management_url
            .as_deref()
            .or(c.amqp_url.as_deref())
            .map(crate::secrets::display_url)
            .unwrap_or_default()
    }

    fn connect(settings: &RabbitmqConfig, name: &str) -> Result<RabbitmqSource, String> {
        RabbitmqSource::new(settings, name)
    }
}

/// Records the rabbitmq rules the source at `p` breaks.
fn validate(c: &RabbitmqConfig, p: &str, errors: &mut Vec<ConfigError>) {
    if c.management_url.is_none() && c.amqp_url.is_none() {
        errors.push(ConfigError::new(
            p,
            "set `management_url` (the management API) or `amqp_url` with `amqp_queues` (AMQP only), or both",
        ));
    }
    if let Some(u) = &c.management_url {
        match url::Url::parse(u) {
            Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => {
                if parsed.password().is_some() {
                    errors.push(ConfigError::new(
                        format!("{p}.management_url"),
                        "put the credentials in `username` and `password`, not in the URL",
                    ));
                }
            }
            _ => errors.push(ConfigError::new(
                format!("{p}.management_url"),
                "expected an http(s) URL such as http://127.0.0.1:15672",
            )),
        }
        if c.username.is_none() || c.password.is_none() {
            errors.push(ConfigError::new(
                format!("{p}.username"),
                "the management API needs `username` and `password`",
            ));
        }
    }
    if let Some(u) = &c.amqp_url {
        if u.parse::<lapin::uri::AMQPUri>().is_err() {
            errors.push(ConfigError::new(
                format!("{p}.amqp_url"),
                "expected amqp://user:password@host:5672/vhost (or amqps://)",
            ));
        }
        if c.amqp_queues.is_empty() {
            errors.push(ConfigError::new(
                format!("{p}.amqp_queues"),
                "name the queues to read over AMQP",
            ));
        }
    } else if !c.amqp_queues.is_empty() {
        errors.push(ConfigError::new(
            format!("{p}.amqp_url"),
            "required with `amqp_queues`",
        ));
    }
    for (field, list) in [
        ("queues.include", &c.queues.include),
        ("queues.exclude", &c.queues.exclude),
    ] {
        for (i, re) in list.iter().enumerate() {
            if let Err(e) = Regex::new(re) {
                errors.push(ConfigError::new(
                    format!("{p}.{field}[{i}]"),
                    format!("invalid regex: {e}"),
                ));
            }
        }
    }
    if let Some(re) = &c.dead_letter_pattern {
        if let Err(e) = Regex::new(re) {
            errors.push(ConfigError::new(
                format!("{p}.dead_letter_pattern"),
                format!("invalid regex: {e}"),
            ));
        }
    }
    if c.max_queues == 0 {
        errors.push(ConfigError::new(
            format!("{p}.max_queues"),
            "must be at least 1",
        ));
    }
}

/// Compiled queue selection.
struct Selection {
    vhosts: Vec<String>,
    include: Vec<Regex>,
    exclude: Vec<Regex>,
    dead_letter: Option<Regex>,
}

impl Selection {
    fn new(c: &RabbitmqConfig) -> Result<Self, String> {
        let compile = |list: &[String]| {
            list.iter()
                .map(|r| Regex::new(r).map_err(|e| e.to_string()))
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(Selection {
            vhosts: c.vhosts.clone(),
            include: compile(&c.queues.include)?,
            exclude: compile(&c.queues.exclude)?,
            dead_letter: c
                .dead_letter_pattern
                .as_deref()
                .map(Regex::new)
                .transpose()
                .map_err(|e| e.to_string())?,
        })
    }

    fn wants(&self, vhost: &str, queue: &str) -> bool {
        (self.vhosts.is_empty() || self.vhosts.iter().any(|v| v == vhost))
            && (self.include.is_empty() || self.include.iter().any(|r| r.is_match(queue)))
            && !self.exclude.iter().any(|r| r.is_match(queue))
    }

    fn named_dead_letter(&self, queue: &str) -> bool {
        self.dead_letter.as_ref().is_some_and(|r| r.is_match(queue))
    }
}

/// The management API client of one source.
struct Management {
    base: url::Url,
    username: String,
    password: String,
    http: reqwest::Client,
}

impl Management {
    /// GETs `path` (already encoded) and parses JSON, classifying failures.
    async fn get(&self, path: &str, deadline: Instant) -> Result<Json, ProbeError> {
        let url = self
            .base
            .join(path)
            .map_err(|e| ProbeError::new(Reason::Query, e.to_string()))?;
        let resp = self
            .http
            .get(url)
            .basic_auth(&self.username, Some(&self.password))
            .timeout(remaining(deadline).max(Duration::from_millis(1)))
            .send()
            .await
            .map_err(|e| classify_http(&e))?;
        let status = resp.status();
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            return Err(ProbeError::new(
                Reason::Auth,
                format!("the management API refused user {:?} (HTTP {}): check `username` and `password`, and that the user has the monitoring tag", self.username, status.as_u16()),
            ));
        }
        if status == reqwest::StatusCode::NOT_FOUND {
            return Err(ProbeError::new(
                Reason::NotFound,
                format!("{path}: HTTP 404"),
            ));
        }
        if status.is_server_error() {
            return Err(ProbeError::new(
                Reason::Upstream,
                format!("{path}: HTTP {}", status.as_u16()),
            ));
        }
        if !status.is_success() {
            return Err(ProbeError::new(
                Reason::Query,
                format!("{path}: HTTP {}", status.as_u16()),
            ));
        }
        resp.json::<Json>()
            .await
            .map_err(|e| ProbeError::new(Reason::Decode, format!("{path}: {e}")))
    }
}

fn classify_http(e: &reqwest::Error) -> ProbeError {
    let reason = if e.is_timeout() {
        Reason::Timeout
    } else if e.is_connect() {
        Reason::Connect
    } else if e.is_decode() {
        Reason::Decode
    } else {
        Reason::Connect
    };
    // reqwest's message names the URL, which never holds credentials here.
    ProbeError::new(reason, e.to_string())
}

/// A RabbitMQ source.
pub struct RabbitmqSource {
    name: String,
    management: Option<Arc<Management>>,
    amqp: Option<Arc<Amqp>>,
    selection: Arc<Selection>,
    max_queues: usize,
}

impl RabbitmqSource {
    /// Creates the source without connecting.
    pub fn new(c: &RabbitmqConfig, name: &str) -> Result<Self, String> {
        if let Some(pw) = &c.password {
            crate::secrets::register(pw);
        }
        let management = match &c.management_url {
            Some(u) => {
                let mut base = url::Url::parse(u).map_err(|e| e.to_string())?;
                if !base.path().ends_with('/') {
                    base.set_path(&format!("{}/", base.path()));
                }
                Some(Arc::new(Management {
                    base,
                    username: c.username.clone().unwrap_or_default(),
                    password: c.password.clone().unwrap_or_default(),
                    http: reqwest::Client::builder()
                        .user_agent(concat!("pulse-exporter/", env!("CARGO_PKG_VERSION")))
                        .build()
                        .map_err(|e| e.to_string())?,
                }))
            }
            None => None,
        };
        let amqp = match &c.amqp_url {
            Some(u) => {
                crate::secrets::register_url_password(u);
                let uri: lapin::uri::AMQPUri = u
                    .parse()
                    .map_err(|e: String| crate::secrets::scrub(&e).into_owned())?;
                crate::secrets::register(&uri.authority.userinfo.password);
                Some(Arc::new(Amqp {
                    url: u.clone(),
                    vhost: uri.vhost.clone(),
                    queues: c.amqp_queues.clone(),
                    conn: Mutex::new(None),
                }))
            }
            None => None,
        };
        Ok(RabbitmqSource {
            name: name.to_owned(),
            management,
            amqp,
            selection: Arc::new(Selection::new(c)?),
            max_queues: c.max_queues,
        })
    }
}

impl Source<RabbitCheck> for RabbitmqSource {
    fn health(&self) -> Arc<dyn Probe> {
        Arc::new(HealthProbe {
            source: self.name.clone(),
            management: self.management.clone(),
            amqp: self.amqp.clone(),
        })
    }

    fn check(&self, check: &CheckConfig<RabbitCheck>, _plan: &CheckPlan) -> Arc<dyn Probe> {
        // Parsing adds each check only with its URL, so the `Unrunnable` arms are never taken.
        match (&check.spec, &self.amqp, &self.management) {
            (RabbitCheck::AmqpQueues, Some(amqp), _) => Arc::new(AmqpProbe {
                source: self.name.clone(),
                amqp: amqp.clone(),
                selection: self.selection.clone(),
            }),
            (RabbitCheck::AmqpQueues, None, _) => Arc::new(Unrunnable("no amqp_url is set")),
            (RabbitCheck::ManagementQueues, _, Some(management)) => Arc::new(QueuesProbe {
                source: self.name.clone(),
                management: management.clone(),
                selection: self.selection.clone(),
                max_queues: self.max_queues,
            }),
            (RabbitCheck::ManagementQueues, _, None) => {
                Arc::new(Unrunnable("no management_url is set"))
            }
        }
    }
}

struct HealthProbe {
    source: String,
    management: Option<Arc<Management>>,
    amqp: Option<Arc<Amqp>>,
}

impl Probe for HealthProbe {
    fn run(&self, deadline: Instant) -> ProbeFuture<'_> {
        Box::pin(async move {
            let mut out = Output::default();
            let Some(m) = &self.management else {
                // AMQP only: the broker is up when a channel opens.
                let amqp = self.amqp.as_ref().expect("validated: one mode is set");
                amqp.channel(deadline).await?;
                return Ok(out);
            };
            m.get("api/overview", deadline).await?;
            let nodes = m.get("api/nodes", deadline).await?;
            for node in nodes.as_array().into_iter().flatten() {
                let name = node["name"].as_str().unwrap_or("unknown");
                let running = node["running"].as_bool().unwrap_or(false);
                let source = self.source.as_str();
                out.add(&NODE_RUNNING, &[source, name], f64::from(u8::from(running)));
                for (field, alarm) in [("mem_alarm", "memory"), ("disk_free_alarm", "disk")] {
                    if let Some(on) = node[field].as_bool() {
                        out.add(&NODE_ALARM, &[source, name, alarm], f64::from(u8::from(on)));
                    }
                }
            }
            Ok(out)
        })
    }
}

/// Columns asked of `/api/queues`: only what we publish, to keep big brokers' answers small.
const QUEUE_COLUMNS: &str = "name,vhost,state,type,messages_ready,messages_unacknowledged,consumers,\
consumer_utilisation,consumer_capacity,arguments,effective_policy_definition,head_message_timestamp,\
message_stats.publish_details.rate,message_stats.deliver_get_details.rate,message_stats.ack_details.rate,\
message_stats.ack";

/// Queues fetched per page of `/api/queues`.
const PAGE_SIZE: usize = 500;

struct QueuesProbe {
    source: String,
    management: Arc<Management>,
    selection: Arc<Selection>,
    max_queues: usize,
}

fn num(v: &Json) -> Option<f64> {
    v.as_f64()
}

fn enc(s: &str) -> String {
    utf8_percent_encode(s, NON_ALPHANUMERIC).to_string()
}

impl QueuesProbe {
    async fn all_queues(&self, deadline: Instant) -> Result<Vec<Json>, ProbeError> {
        let mut queues = Vec::new();
        let mut page = 1;
        loop {
            let body = self
                .management
                .get(
                    &format!(
                        "api/queues?page={page}&page_size={PAGE_SIZE}&columns={}",
                        enc(QUEUE_COLUMNS)
                    ),
                    deadline,
                )
                .await?;
            let items = body["items"].as_array().cloned().unwrap_or_default();
            queues.extend(items);
            let pages = body["page_count"].as_u64().unwrap_or(1);
            if page as u64 >= pages {
                return Ok(queues);
            }
            page += 1;
        }
    }

    /// (vhost, queue) pairs that other queues dead-letter into.
    async fn dead_letter_targets(
        &self,
        queues: &[Json],
        deadline: Instant,
    ) -> Result<HashSet<(String, String)>, ProbeError> {
        let mut targets = HashSet::new();
        let mut exchanges = BTreeMap::new();
        for q in queues {
            let vhost = q["vhost"].as_str().unwrap_or("/");
            let args = &q["arguments"];
            let policy = &q["effective_policy_definition"];
            let dlx = args["x-dead-letter-exchange"]
                .as_str()
                .or(policy["dead-letter-exchange"].as_str());
            let dlrk = args["x-dead-letter-routing-key"]
                .as_str()
                .or(policy["dead-letter-routing-key"].as_str());
            match (dlx, dlrk) {
                // The default exchange routes by queue name.
                (Some(""), Some(rk)) => {
                    targets.insert((vhost.to_owned(), rk.to_owned()));
                }
                (Some(x), _) if !x.is_empty() => {
                    exchanges.insert((vhost.to_owned(), x.to_owned()), ());
                }
                _ => {}
            }
        }
        for (vhost, exchange) in exchanges.keys() {
            let path = format!(
                "api/exchanges/{}/{}/bindings/source",
                enc(vhost),
                enc(exchange)
            );
            match self.management.get(&path, deadline).await {
                Ok(bindings) => {
                    for b in bindings.as_array().into_iter().flatten() {
                        if b["destination_type"] == "queue" {
                            if let Some(d) = b["destination"].as_str() {
                                targets.insert((vhost.clone(), d.to_owned()));
                            }
                        }
                    }
                }
                // A dead-letter exchange that does not exist has no queues behind it.
                Err(e) if e.reason() == Reason::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(targets)
    }
}

impl Probe for QueuesProbe {
    fn run(&self, deadline: Instant) -> ProbeFuture<'_> {
        Box::pin(async move {
            let all = self.all_queues(deadline).await?;
            let targets = self.dead_letter_targets(&all, deadline).await?;
            let mut selected: Vec<&Json> = all
                .iter()
                .filter(|q| {
                    self.selection.wants(
                        q["vhost"].as_str().unwrap_or("/"),
                        q["name"].as_str().unwrap_or(""),
                    )
                })
                .collect();
            let mut out = Output::default();
            // Per-vhost totals count every selected queue, capped or not.
            let mut totals: BTreeMap<&str, (f64, f64, f64)> = BTreeMap::new();
            for q in &selected {
                let t = totals
                    .entry(q["vhost"].as_str().unwrap_or("/"))
                    .or_default();
                t.0 += 1.0;
                t.1 += num(&q["messages_ready"]).unwrap_or(0.0);
                t.2 += num(&q["messages_unacknowledged"]).unwrap_or(0.0);
            }
            for (vhost, (count, ready, unacked)) in &totals {
                let source = self.source.as_str();
                out.add(&VHOST_QUEUES, &[source, vhost], *count);
                out.add(&VHOST_MESSAGES, &[source, vhost, "ready"], *ready);
                out.add(&VHOST_MESSAGES, &[source, vhost, "unacked"], *unacked);
            }
            // Keep the deepest queues when capping: they are the ones an SRE needs to see.
            let depth = |q: &Json| {
                num(&q["messages_ready"]).unwrap_or(0.0)
                    + num(&q["messages_unacknowledged"]).unwrap_or(0.0)
            };
            selected.sort_by(|a, b| depth(b).total_cmp(&depth(a)));
            for (i, q) in selected.iter().enumerate() {
                let mut scratch = Output::default();
                let target = if i < self.max_queues {
                    &mut out
                } else {
                    &mut scratch
                };
                self.queue_samples(q, &targets, target);
                out.dropped += scratch.series() as u64;
            }
            Ok(out)
        })
    }
}

impl QueuesProbe {
    fn queue_samples(&self, q: &Json, targets: &HashSet<(String, String)>, out: &mut Output) {
        let vhost = q["vhost"].as_str().unwrap_or("/");
        let name = q["name"].as_str().unwrap_or("");
        let dead = targets.contains(&(vhost.to_owned(), name.to_owned()))
            || self.selection.named_dead_letter(name);
        let base = [self.source.as_str(), vhost, name, flag(dead)];
        let with = |v: &'static str| -> [&str; 5] { [base[0], base[1], base[2], base[3], v] };
        if let Some(v) = num(&q["messages_ready"]) {
            out.add(&QUEUE_MESSAGES, &with("ready"), v);
        }
        if let Some(v) = num(&q["messages_unacknowledged"]) {
            out.add(&QUEUE_MESSAGES, &with("unacked"), v);
        }
        if let Some(v) = num(&q["consumers"]) {
            out.add(&QUEUE_CONSUMERS, &base, v);
        }
        if let Some(v) = num(&q["consumer_capacity"]).or_else(|| num(&q["consumer_utilisation"])) {
            out.add(&QUEUE_UTILISATION, &base, v);
        }
        for (field, op) in [
            ("publish_details", "publish"),
            ("deliver_get_details", "deliver"),
            ("ack_details", "ack"),
        ] {
            if let Some(v) = num(&q["message_stats"][field]["rate"]) {
                out.add(&QUEUE_RATE, &with(op), v);
            }
        }
        // The broker's own cumulative count: an exact "nothing was acknowledged in 15 minutes"
        // (the rates above are short averages that read 0 between the acks of slow jobs).
        if let Some(v) = num(&q["message_stats"]["ack"]) {
            out.add(&QUEUE_ACKED, &base, v);
        }
        // Publishers must set the AMQP timestamp property; the broker reports it (in seconds)
        // for the message at the head, the oldest one waiting. Absent on an empty queue.
        if let Some(v) = num(&q["head_message_timestamp"]).filter(|v| *v > 0.0) {
            out.add(&QUEUE_HEAD_TIMESTAMP, &base, v);
        }
        let state = q["state"].as_str().unwrap_or("unknown");
        let kind = q["type"].as_str().unwrap_or("classic");
        out.add(
            &QUEUE_INFO,
            &[base[0], base[1], base[2], base[3], state, kind],
            1.0,
        );
    }
}

/// A lazily opened AMQP connection, reopened after any failure.
struct Amqp {
    url: String,
    vhost: String,
    queues: Vec<String>,
    conn: Mutex<Option<lapin::Connection>>,
}

fn classify_amqp(e: &lapin::Error) -> ProbeError {
    // The broker's reply code says what happened; names of queues never enter into it.
    let reason = match e.kind() {
        lapin::ErrorKind::ProtocolError(amqp) => match amqp.get_id() {
            403 | 530 => Reason::Auth,
            404 => Reason::NotFound,
            320 | 501 | 504 | 505 => Reason::Connect,
            _ => Reason::Query,
        },
        lapin::ErrorKind::AuthProviderError(_) => Reason::Auth,
        lapin::ErrorKind::IOError(_) | lapin::ErrorKind::InvalidConnectionState(_) => {
            Reason::Connect
        }
        _ => Reason::Query,
    };
    ProbeError::new(reason, e.to_string())
}

impl Amqp {
    /// A new channel on the (re)opened connection.
    async fn channel(&self, deadline: Instant) -> Result<lapin::Channel, ProbeError> {
        let mut guard = self.conn.lock().await;
        if let Some(c) = guard.as_ref() {
            if c.status().connected() {
                if let Ok(ch) = c.create_channel().await {
                    return Ok(ch);
                }
            }
        }
        *guard = None;
        let connect = lapin::Connection::connect(&self.url, lapin::ConnectionProperties::default());
        let conn = tokio::time::timeout(remaining(deadline), connect)
            .await
            .map_err(|_| {
                ProbeError::new(Reason::Timeout, "AMQP connection not established in time")
            })?
            .map_err(|e| classify_amqp(&e))?;
        let ch = conn.create_channel().await.map_err(|e| classify_amqp(&e))?;
        *guard = Some(conn);
        Ok(ch)
    }
}

struct AmqpProbe {
    source: String,
    amqp: Arc<Amqp>,
    selection: Arc<Selection>,
}

impl Probe for AmqpProbe {
    fn run(&self, deadline: Instant) -> ProbeFuture<'_> {
        Box::pin(async move {
            let mut out = Output::default();
            let mut channel = self.amqp.channel(deadline).await?;
            let passive = QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            };
            for name in &self.amqp.queues {
                match channel
                    .queue_declare(name.as_str().into(), passive, FieldTable::default())
                    .await
                {
                    Ok(q) => {
                        let base = [
                            self.source.as_str(),
                            self.amqp.vhost.as_str(),
                            name.as_str(),
                            flag(self.selection.named_dead_letter(name)),
                        ];
                        let ready = [base[0], base[1], base[2], base[3], "ready"];
                        out.add(&QUEUE_MESSAGES, &ready, f64::from(q.message_count()));
                        out.add(&QUEUE_CONSUMERS, &base, f64::from(q.consumer_count()));
                    }
                    Err(e) => {
                        let err = classify_amqp(&e);
                        if err.reason() != Reason::NotFound {
                            return Err(err);
                        }
                        // A missing queue is absent; the broker closed the channel, so open another.
                        tracing::debug!(queue = %name, "queue not found over AMQP");
                        channel = self.amqp.channel(deadline).await?;
                    }
                }
            }
            let _ = channel.close(200, "done".into()).await;
            Ok(out)
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::configfile::{assert_reports, errors_of};

    #[test]
    fn a_source_needs_the_management_api_or_amqp() {
        assert_reports(
            "sources:\n  - { name: broker, kind: rabbitmq }",
            &["sources[0]: set `management_url`"],
        );
    }

    #[test]
    fn bad_fields_are_named_with_their_fix() {
        assert_reports(
            r#"
sources:
  - name: broker
    kind: rabbitmq
    management_url: "http://admin:pw@rabbit:15672"
    queues: { include: ["("] }
    dead_letter_pattern: "["
    max_queues: 0
    amqp_queues: [jobs]
"#,
            &[
                "sources[0].management_url: put the credentials in `username` and `password`",
                "sources[0].queues.include[0]: invalid regex",
                "sources[0].dead_letter_pattern: invalid regex",
                "sources[0].max_queues: must be at least 1",
                "sources[0].amqp_url: required with `amqp_queues`",
            ],
        );
        assert_eq!(
            errors_of("sources:\n  - { name: broker, kind: rabbitmq, management_url: 'http://rabbit:15672', username: u, password: p }"),
            ""
        );
    }
}
