//! The config of jobs that report in: `jobs:` (declared jobs), `job_keys:` (ping keys that
//! provision jobs on their first ping) and `job_store:` (where pings are kept), read and
//! checked with errors that name the field.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use serde::Deserialize;

use crate::config_core::names::{is_label_name, is_object_name};
use crate::config_core::objective::{LatencyObjective, Objective, DEFAULT_JOB_TARGET};
use crate::config_core::switch::Switch;
use crate::config_core::{ConfigError, Dur, FieldSet, Split, TimeZone};
use crate::jobs::schedule::Schedule;

/// Label names a job's `labels:` may not use: the job series' own.
pub const JOB_RESERVED_LABELS: [&str; 6] =
    ["job_name", "outcome", "job", "instance", "schedule", "key"];

/// Most jobs declared in `jobs:`.
pub const MAX_DECLARED_JOBS: usize = 10_000;

/// The jobs a ping key may provision without `max_jobs`.
pub const DEFAULT_KEY_JOBS: u32 = 100;

/// How long a job a key made may stay silent before it is forgotten, without `forget_after`.
pub const DEFAULT_FORGET_AFTER: Duration = Duration::from_secs(7 * 86_400);

/// Hard cap on the jobs one ping key may provision (its `max_jobs`).
pub const MAX_KEY_JOBS: u32 = 10_000;

/// The Redis keys' prefix of a store without `prefix:`.
pub const DEFAULT_STORE_PREFIX: &str = "pulse:jobs:";

/// The Postgres table of a store without `table:`.
pub const DEFAULT_STORE_TABLE: &str = "pulse_jobs";

/// How often the store is read without `refresh:`.
pub const DEFAULT_STORE_REFRESH: Duration = Duration::from_secs(10);

/// The bound on one read or write of the store without `timeout:`.
pub const DEFAULT_STORE_TIMEOUT: Duration = Duration::from_secs(3);

/// Classic bounds of `pulse_job_duration_seconds`: powers of four seconds, each a native bucket's bound
/// (a job's latency objective is set on one of them).
pub const DURATION_BOUNDS: [f64; 10] = [
    1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 131072.0,
];

/// Grace when a job sets none: long enough for a slow start, short enough to page the same
/// hour.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(5 * 60);

/// The schedule of a job, or of every job a ping key makes: when a run is due, how late it
/// may finish, how long it may run, and the labels of its series. Read beside the item's own
/// fields (a [`Split`]), so `jobs:` and `job_keys:` items write them the same way.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    /// A period: the job is expected to finish a run every this long (`1h`, `15m`). Set
    /// `every` or `cron`, not both.
    pub every: Option<Dur>,
    /// A cron schedule of five fields (`minute hour day-of-month month day-of-week`, e.g.
    /// `15 2 * * *`), or `@hourly`, `@daily`, `@weekly`, `@monthly`: the job is expected to
    /// finish a run after each time it names, read in `timezone`.
    pub cron: Option<String>,
    /// The IANA time zone `cron` is read in (`Europe/Berlin`), daylight saving included: a
    /// time skipped by the spring change is due at the first minute after it, a time that
    /// happens twice is due once. Default: `global.timezone`, else UTC.
    pub timezone: Option<TimeZone>,
    /// How long after its scheduled time a run may finish before the job is late (default
    /// 5m).
    pub grace: Option<Dur>,
    /// The longest a run may go between its start and its end ping before
    /// `PulseJobRunningTooLong` fires; unset: no bound of its own.
    pub max_runtime: Option<Dur>,
    /// Labels added to every series of the job (e.g. `team: data`), for routing its alerts.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The job's objective: the share of its due runs that must finish well and on time
    /// (default 95 % over 28 days: one run in twenty may fail or be missed), `{ target: 99,
    /// window: 7d }` to change it, `false` for none. Rules from `pulse-exporter rules`
    /// (docs/objectives.md).
    #[serde(default)]
    pub objective: Switch<Objective>,
    /// Objectives on how long its runs take (`pulse_job_duration_seconds`, runs whose start
    /// was seen): `[{ name: fast, under: 1024s, target: 99 }]`, `under` one of the
    /// histogram's bounds (1s, 4s, 16s, 64s, 256s, 1024s, 4096s, 16384s, 65536s, 131072s).
    /// Rules from `pulse-exporter rules` (docs/objectives.md).
    #[serde(default)]
    pub latency_objectives: Vec<LatencyObjective>,
}

impl FieldSet for ScheduleConfig {
    const KEYS: &'static [&'static str] = &[
        "every",
        "cron",
        "timezone",
        "grace",
        "max_runtime",
        "labels",
        "objective",
        "latency_objectives",
    ];
}

/// A job's own fields (`jobs:` item), beside its [`ScheduleConfig`].
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JobFields {
    /// The job's name: the `job_name` label of its series and the NAME of its ping URL
    /// `/ping/NAME/…` (1-64 characters of letters, digits, `_`, `.` and `-`).
    pub name: String,
    /// The bearer token its pings must carry (`Authorization: Bearer …`); write it as
    /// `${env:NAME}` or `${file:PATH}`. Unset: the web config's `basic_auth_users` sign its
    /// pings, and with neither, pings to it are refused.
    pub token: Option<String>,
}

/// One job that reports in (`jobs:` item): its schedule and its own fields.
pub type JobConfig = Split<ScheduleConfig, JobFields>;

/// A ping key's own fields (`job_keys:` item), beside the [`ScheduleConfig`] of the jobs it
/// makes.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JobKeyFields {
    /// The key's name: the `key` label of the jobs it made, and how logs name it.
    pub name: String,
    /// The secret a ping carries as `Authorization: Bearer …`; write it as `${env:NAME}` or
    /// `${file:PATH}`. At least 16 characters.
    pub key: String,
    /// Most jobs this key may make (default 100, at most 10000); a ping for one more is refused
    /// with 403 until one is forgotten.
    pub max_jobs: Option<u32>,
    /// A job it made that has not pinged for this long is forgotten: its series leave and its
    /// state is deleted (default 7d). Declared jobs are never forgotten.
    pub forget_after: Option<Dur>,
}

/// A ping key (`job_keys:` item): a bearer token whose pings to a job name the config does not
/// declare create that job, with this key's schedule, up to `max_jobs`.
pub type JobKeyConfig = Split<ScheduleConfig, JobKeyFields>;

/// Where pings are kept (`job_store:`): a Redis or a Postgres the exporter can write to, so
/// that every replica takes pings and publishes the same state, and a restart loses none.
/// Unset: kept in this process's memory (a warning says so at start).
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JobStoreConfig {
    /// A Redis URL (`redis://host:6379/0`, `rediss://…`); set `redis` or `postgres`.
    pub redis: Option<String>,
    /// A Postgres URL (`postgres://user:pass@host/db`); the table is created if missing. TLS
    /// goes in the URL, as for a Postgres source (`sslmode=verify-full&sslrootcert=/ca.pem`).
    pub postgres: Option<String>,
    /// With a `rediss://` store: the CA that signs the server's certificate and a client
    /// certificate, as a Redis source's `tls:` takes them.
    pub tls: Option<crate::config_core::tls::TlsFiles>,
    /// Prefix of the Redis keys (default `pulse:jobs:`).
    pub prefix: Option<String>,
    /// The Postgres table (default `pulse_jobs`).
    pub table: Option<String>,
    /// How often each replica reads every job's state from the store, to publish what the
    /// other replicas took (default 10s).
    pub refresh: Option<Dur>,
    /// How long one read or write of the store may take (default 3s).
    pub timeout: Option<Dur>,
}

/// The backend a [`JobStoreConfig`] names.
#[derive(Debug, Clone, PartialEq)]
pub enum StoreKind {
    /// This process's memory only.
    Memory,
    /// A Redis URL and key prefix.
    Redis {
        /// The URL.
        url: String,
        /// The key prefix.
        prefix: String,
        /// Trust and identity of a `rediss://` URL.
        tls: Option<crate::config_core::tls::TlsFiles>,
    },
    /// A Postgres URL and table.
    Postgres {
        /// The URL.
        url: String,
        /// The table.
        table: String,
    },
}

/// The store settings with defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreSettings {
    /// The backend.
    pub kind: StoreKind,
    /// How often the store is read.
    pub refresh: Duration,
    /// Bound on one read or write.
    pub timeout: Duration,
}

impl Default for StoreSettings {
    fn default() -> Self {
        StoreSettings {
            kind: StoreKind::Memory,
            refresh: DEFAULT_STORE_REFRESH,
            timeout: DEFAULT_STORE_TIMEOUT,
        }
    }
}

/// A job the exporter knows, declared or made by a key: its schedule and how its pings are
/// signed.
#[derive(Debug, Clone, PartialEq)]
pub struct JobSpec {
    /// The job's name.
    pub name: String,
    /// When it is expected.
    pub schedule: Schedule,
    /// How late a run may finish.
    pub grace: Duration,
    /// The longest a run may take, if bounded.
    pub max_runtime: Option<Duration>,
    /// Labels on its series.
    pub labels: BTreeMap<String, String>,
    /// Its own bearer token, if any.
    pub token: Option<String>,
    /// The key that made it, for a job not declared.
    pub key: Option<String>,
    /// Its objective, with the jobs' default target filled in; `None` when turned off.
    pub objective: Option<Objective>,
    /// Its objectives on how long its runs take.
    pub latency_objectives: Vec<LatencyObjective>,
}

/// A ping key with defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub struct KeySpec {
    /// The key's name.
    pub name: String,
    /// The secret.
    pub key: String,
    /// The template of each job it makes (its `name` is replaced).
    pub job: JobSpec,
    /// Most jobs it may make.
    pub max_jobs: u32,
    /// When a silent job it made is forgotten.
    pub forget_after: Duration,
}

/// Everything `jobs:`, `job_keys:` and `job_store:` say.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct JobsConfig {
    /// Declared jobs, in file order.
    pub jobs: Vec<JobSpec>,
    /// Ping keys, in file order.
    pub keys: Vec<KeySpec>,
    /// Where pings are kept.
    pub store: StoreSettings,
}

impl JobsConfig {
    /// True when nothing is configured: no job can ping.
    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty() && self.keys.is_empty()
    }
}

/// True when `name` may name a job: a source or check name (1-64 characters of
/// `[A-Za-z0-9_.:-]`) without `:`, so it is a URL path segment as it is.
pub fn is_job_name(name: &str) -> bool {
    is_object_name(name) && !name.contains(':')
}

/// Errors at `path.labels` for a label Prometheus refuses or the job series hold already.
fn validate_labels(path: &str, labels: &BTreeMap<String, String>, errors: &mut Vec<ConfigError>) {
    for label in labels.keys() {
        if !is_label_name(label) {
            errors.push(ConfigError::new(
                format!("{path}.labels"),
                format!("{label:?} is not a valid Prometheus label name: use letters, digits and `_`, not starting with a digit or `__`"),
            ));
        } else if JOB_RESERVED_LABELS.contains(&label.as_str()) {
            errors.push(ConfigError::new(
                format!("{path}.labels"),
                format!("label {label:?} is the job series' own: rename it"),
            ));
        }
    }
}

/// Reads `every`/`cron`/`timezone`/`grace`/`max_runtime`/`labels`/`objective` at `path`
/// into a job without a name, token or key.
fn schedule_of(
    path: &str,
    f: &ScheduleConfig,
    zone: Option<&TimeZone>,
    errors: &mut Vec<ConfigError>,
) -> Option<JobSpec> {
    validate_labels(path, &f.labels, errors);
    let tz = f.timezone.as_ref().or(zone).map_or(chrono_tz::UTC, |z| z.0);
    let schedule = match (f.every, f.cron.as_deref()) {
        (Some(_), Some(_)) => {
            errors.push(ConfigError::new(
                path,
                "set `every` (a period) or `cron` (a schedule), not both",
            ));
            return None;
        }
        (None, None) => {
            errors.push(ConfigError::new(
                path,
                "a job needs a schedule: `every: 1h` (a period) or `cron: \"15 2 * * *\"` (with `timezone:`)",
            ));
            return None;
        }
        (Some(Dur(d)), None) => {
            if d < Duration::from_secs(1) {
                errors.push(ConfigError::new(
                    format!("{path}.every"),
                    "must be at least 1s",
                ));
                return None;
            }
            if f.timezone.is_some() {
                errors.push(ConfigError::new(
                    format!("{path}.timezone"),
                    "a period (`every`) has no time zone: `timezone` goes with `cron`",
                ));
            }
            Schedule::Every(d)
        }
        (None, Some(expr)) => match Schedule::cron(expr, tz) {
            Ok(s) => s,
            Err(e) => {
                errors.push(ConfigError::new(format!("{path}.cron"), e));
                return None;
            }
        },
    };
    let grace = f.grace.map_or(DEFAULT_GRACE, |g| g.0);
    let max_runtime = f.max_runtime.map(|d| d.0);
    if max_runtime == Some(Duration::ZERO) {
        errors.push(ConfigError::new(
            format!("{path}.max_runtime"),
            "must be longer than 0s: leave it out for no bound",
        ));
    }
    let objective = f.objective.on().map(|o| {
        o.validate(&format!("{path}.objective"), errors);
        Objective {
            target: Some(o.target.unwrap_or(DEFAULT_JOB_TARGET)),
            window: o.window,
        }
    });
    validate_duration_objectives(path, &f.latency_objectives, errors);
    Some(JobSpec {
        name: String::new(),
        schedule,
        grace,
        max_runtime,
        labels: f.labels.clone(),
        token: None,
        key: None,
        objective,
        latency_objectives: f.latency_objectives.clone(),
    })
}

/// Errors at `path.latency_objectives[N]`: a name, target or window refused, a name given
/// twice, `series` (the durations have no labels to pick by), or `under` off the bounds.
fn validate_duration_objectives(
    path: &str,
    objectives: &[LatencyObjective],
    errors: &mut Vec<ConfigError>,
) {
    let bounds = DURATION_BOUNDS;
    let mut seen = HashSet::new();
    for (i, o) in objectives.iter().enumerate() {
        let path = format!("{path}.latency_objectives[{i}]");
        o.validate(&path, errors);
        if !seen.insert(o.name.as_str()) {
            errors.push(ConfigError::new(
                format!("{path}.name"),
                format!(
                    "duplicate objective name {:?}: each latency objective of a job needs its own",
                    o.name
                ),
            ));
        }
        if !o.series.is_empty() {
            errors.push(ConfigError::new(
                format!("{path}.series"),
                "a job's run durations have no labels to pick by: leave `series` out",
            ));
        }
        let under = o.under.0.as_secs_f64();
        if !bounds.iter().any(|b| (b - under).abs() <= b * 1e-9) {
            let below = bounds.iter().rev().find(|b| **b < under);
            let above = bounds.iter().find(|b| **b > under);
            let nearest: Vec<String> = [below, above]
                .into_iter()
                .flatten()
                .map(|b| format!("{b}s"))
                .collect();
            errors.push(ConfigError::new(
                format!("{path}.under"),
                format!("{} is not a bucket bound of pulse_job_duration_seconds, so no bucket counts what is under it: the nearest are {}", crate::config_core::dur_text(o.under.0), nearest.join(" and ")),
            ));
        }
    }
}

/// Reads the three top-level keys (each may be absent) into a [`JobsConfig`], recording every
/// problem; `zone` is `global.timezone`.
pub fn parse(
    jobs: Option<serde_yaml::Value>,
    keys: Option<serde_yaml::Value>,
    store: Option<serde_yaml::Value>,
    zone: Option<&TimeZone>,
    errors: &mut Vec<ConfigError>,
) -> JobsConfig {
    if !cfg!(feature = "jobs") {
        for (key, v) in [("jobs", &jobs), ("job_keys", &keys), ("job_store", &store)] {
            let empty = match v {
                None | Some(serde_yaml::Value::Null) => true,
                Some(serde_yaml::Value::Sequence(items)) => items.is_empty(),
                Some(_) => false,
            };
            if !empty {
                errors.push(ConfigError::new(key, not_built(key)));
            }
        }
    }
    // Each token with the path it was written at, jobs' before keys'.
    let mut tokens = Vec::new();
    let mut out = JobsConfig {
        jobs: parse_jobs(list(jobs, "jobs", errors), zone, &mut tokens, errors),
        keys: parse_keys(list(keys, "job_keys", errors), zone, &mut tokens, errors),
        ..JobsConfig::default()
    };
    // The error stands at the second token's own path, so that a generator's load, which
    // reads no secret and fills every reference with the same placeholder, drops it as it
    // drops every judgement of a placeholder.
    let mut first_at: HashMap<&str, &str> = HashMap::new();
    for (path, token) in &tokens {
        if let Some(first) = first_at.get(token.as_str()) {
            errors.push(ConfigError::new(
                path.as_str(),
                format!(
                    "the same token as `{first}`: give each job and key its own, so a leaked one is revoked alone"
                ),
            ));
        } else {
            first_at.insert(token, path);
        }
    }
    for j in &out.jobs {
        if let Some(t) = &j.token {
            crate::secrets::register(t);
        }
    }
    match store {
        None | Some(serde_yaml::Value::Null) => {}
        Some(v) => {
            let parsed =
                crate::config_core::parse::parse_at::<JobStoreConfig>(v, "job_store", errors);
            if let Some(settings) = parsed.and_then(|s| store_settings(s, errors)) {
                out.store = settings;
            }
        }
    }
    out
}

/// Why a config with `key:` (`jobs`, `job_keys` or `job_store`) is refused by a build without
/// the cargo feature `jobs`, which has no ping endpoint and no job tracker to run it.
pub fn not_built(key: &str) -> String {
    format!(
        "this build of pulse-exporter has no jobs that report in: build it with `--features jobs` \
         beside the kinds it has, or with the default features, which have it, or remove `{key}:`"
    )
}

/// The items of the list at top-level `key`; none when it is absent or not a list (an error).
fn list(
    v: Option<serde_yaml::Value>,
    key: &str,
    errors: &mut Vec<ConfigError>,
) -> Vec<serde_yaml::Value> {
    match v {
        None | Some(serde_yaml::Value::Null) => Vec::new(),
        Some(serde_yaml::Value::Sequence(items)) => items,
        Some(_) => {
            errors.push(ConfigError::new(key, "must be a list"));
            Vec::new()
        }
    }
}

/// The `jobs:` items.
fn parse_jobs(
    items: Vec<serde_yaml::Value>,
    zone: Option<&TimeZone>,
    tokens: &mut Vec<(String, String)>,
    errors: &mut Vec<ConfigError>,
) -> Vec<JobSpec> {
    if items.len() > MAX_DECLARED_JOBS {
        errors.push(ConfigError::new(
            "jobs",
            format!(
                "declares {} jobs, more than {MAX_DECLARED_JOBS}",
                items.len()
            ),
        ));
    }
    let mut names = HashSet::new();
    let mut out = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let path = format!("jobs[{i}]");
        let Some(Split(schedule, job)) = crate::config_core::parse::parse_split::<
            ScheduleConfig,
            JobFields,
        >(item, &path, errors) else {
            continue;
        };
        if !is_job_name(&job.name) {
            errors.push(ConfigError::new(
                format!("{path}.name"),
                format!("{:?} is not a valid job name: use 1-64 characters of letters, digits, `_`, `.` or `-`", job.name),
            ));
            continue;
        }
        if !names.insert(job.name.clone()) {
            errors.push(ConfigError::new(
                format!("{path}.name"),
                format!("job {:?} is declared twice", job.name),
            ));
        }
        if let Some(t) = &job.token {
            token_fits(&format!("{path}.token"), t, errors);
            tokens.push((format!("{path}.token"), t.clone()));
        }
        if let Some(spec) = schedule_of(&path, &schedule, zone, errors) {
            out.push(JobSpec {
                name: job.name,
                token: job.token,
                ..spec
            });
        }
    }
    out
}

/// The `job_keys:` items.
fn parse_keys(
    items: Vec<serde_yaml::Value>,
    zone: Option<&TimeZone>,
    tokens: &mut Vec<(String, String)>,
    errors: &mut Vec<ConfigError>,
) -> Vec<KeySpec> {
    let mut names = HashSet::new();
    let mut out = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let path = format!("job_keys[{i}]");
        let Some(Split(schedule, k)) = crate::config_core::parse::parse_split::<
            ScheduleConfig,
            JobKeyFields,
        >(item, &path, errors) else {
            continue;
        };
        if !is_job_name(&k.name) {
            errors.push(ConfigError::new(
                format!("{path}.name"),
                format!("{:?} is not a valid key name: use 1-64 characters of letters, digits, `_`, `.` or `-`", k.name),
            ));
        }
        if !names.insert(k.name.clone()) {
            errors.push(ConfigError::new(
                format!("{path}.name"),
                format!("key {:?} is declared twice", k.name),
            ));
        }
        token_fits(&format!("{path}.key"), &k.key, errors);
        tokens.push((format!("{path}.key"), k.key.clone()));
        let max_jobs = k.max_jobs.unwrap_or(DEFAULT_KEY_JOBS);
        if max_jobs == 0 || max_jobs > MAX_KEY_JOBS {
            errors.push(ConfigError::new(
                format!("{path}.max_jobs"),
                format!("must be 1 to {MAX_KEY_JOBS}"),
            ));
        }
        if let Some(spec) = schedule_of(&path, &schedule, zone, errors) {
            crate::secrets::register(&k.key);
            out.push(KeySpec {
                job: JobSpec {
                    key: Some(k.name.clone()),
                    ..spec
                },
                name: k.name,
                key: k.key,
                max_jobs,
                forget_after: k.forget_after.map_or(DEFAULT_FORGET_AFTER, |d| d.0),
            });
        }
    }
    out
}

/// Records a token that is too short to resist guessing.
fn token_fits(path: &str, token: &str, errors: &mut Vec<ConfigError>) {
    if token.chars().count() < 16 {
        errors.push(ConfigError::new(
            path,
            "is shorter than 16 characters: use a random one, e.g. `openssl rand -hex 16`",
        ));
    }
}

fn store_settings(s: JobStoreConfig, errors: &mut Vec<ConfigError>) -> Option<StoreSettings> {
    let kind = match (&s.redis, &s.postgres) {
        (Some(url), None) => redis_store(url, &s, errors),
        (None, Some(url)) => postgres_store(url, &s, errors),
        _ => {
            errors.push(ConfigError::new(
                "job_store",
                "set `redis: redis://…` or `postgres: postgres://…` (one of them)",
            ));
            return None;
        }
    };
    let refresh = s.refresh.map_or(DEFAULT_STORE_REFRESH, |d| d.0);
    let timeout = s.timeout.map_or(DEFAULT_STORE_TIMEOUT, |d| d.0);
    if refresh < Duration::from_secs(1) {
        errors.push(ConfigError::new("job_store.refresh", "must be at least 1s"));
    }
    if timeout.is_zero() || timeout > Duration::from_secs(60) {
        errors.push(ConfigError::new("job_store.timeout", "must be 1ms to 60s"));
    }
    Some(StoreSettings {
        kind,
        refresh,
        timeout,
    })
}

/// A Redis store at `url`, with the fields of `s` that go with Redis: one that goes with
/// Postgres is refused rather than ignored, since its writer meant something by it.
fn redis_store(url: &str, s: &JobStoreConfig, errors: &mut Vec<ConfigError>) -> StoreKind {
    if s.table.is_some() {
        errors.push(ConfigError::new(
            "job_store.table",
            "`table` goes with `postgres`; a Redis store takes `prefix`",
        ));
    }
    if let Some(tls) = &s.tls {
        let secure = url.starts_with("rediss://");
        tls.validate(
            "job_store.tls",
            secure,
            crate::clients::urls::REDIS_TLS_FIX,
            errors,
        );
    }
    // Registered first, so that a password in the URL is scrubbed from its error.
    crate::secrets::register_url_password(url);
    if let Err(e) = crate::clients::urls::redis(url) {
        errors.push(ConfigError::new("job_store.redis", e));
    }
    StoreKind::Redis {
        url: url.to_owned(),
        tls: s.tls.clone(),
        prefix: s
            .prefix
            .clone()
            .unwrap_or_else(|| DEFAULT_STORE_PREFIX.to_owned()),
    }
}

/// A Postgres store at `url`, with the fields of `s` that go with Postgres: one that goes
/// with Redis is refused rather than ignored, since its writer meant something by it.
fn postgres_store(url: &str, s: &JobStoreConfig, errors: &mut Vec<ConfigError>) -> StoreKind {
    if s.prefix.is_some() {
        errors.push(ConfigError::new(
            "job_store.prefix",
            "`prefix` goes with `redis`; a Postgres store takes `table`",
        ));
    }
    if s.tls.is_some() {
        errors.push(ConfigError::new(
            "job_store.tls",
            "goes with `redis`; a Postgres store takes its TLS files in the URL (`sslrootcert=`, `sslcert=`, `sslkey=`)",
        ));
    }
    let table = s
        .table
        .clone()
        .unwrap_or_else(|| DEFAULT_STORE_TABLE.to_owned());
    if !plain_table_name(&table) {
        errors.push(ConfigError::new(
            "job_store.table",
            format!("{table:?} is not a plain table name: use lowercase letters, digits and `_`"),
        ));
    }
    crate::secrets::register_url_password(url);
    if let Err(e) = crate::clients::urls::postgres(url) {
        errors.push(ConfigError::new("job_store.postgres", e));
    }
    StoreKind::Postgres {
        url: url.to_owned(),
        table,
    }
}

/// Whether `table` can be written into SQL unquoted: lowercase letters, digits and `_`, not
/// starting with a digit, within Postgres's 63 bytes.
fn plain_table_name(table: &str) -> bool {
    !table.is_empty()
        && table.len() <= 63
        && table
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !table.starts_with(|c: char| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_text(jobs: &str, keys: &str, store: &str) -> (JobsConfig, Vec<String>) {
        let v = |t: &str| (!t.is_empty()).then(|| serde_yaml::from_str(t).unwrap());
        let mut errors = Vec::new();
        let c = parse(v(jobs), v(keys), v(store), None, &mut errors);
        (c, errors.iter().map(|e| e.to_string()).collect())
    }

    /// A build without the `jobs` feature refuses each section that holds something, naming
    /// the feature; empty sections are not refused. With the feature, none is refused.
    #[test]
    fn a_build_without_jobs_refuses_each_section_that_holds_something() {
        let (_, errors) = parse_text(
            "[{ name: rollup, every: 1h, token: 0123456789abcdef0 }]",
            "[]",
            "{ redis: 'redis://127.0.0.1:6379' }",
        );
        let refused: Vec<&String> = errors
            .iter()
            .filter(|e| e.contains("--features jobs"))
            .collect();
        if cfg!(feature = "jobs") {
            assert!(refused.is_empty(), "{errors:?}");
        } else {
            assert_eq!(refused.len(), 2, "{errors:?}");
            assert!(refused[0].starts_with("jobs: "), "{errors:?}");
            assert!(refused[1].starts_with("job_store: "), "{errors:?}");
        }
        assert_eq!(
            not_built("job_keys"),
            "this build of pulse-exporter has no jobs that report in: build it with \
             `--features jobs` beside the kinds it has, or with the default features, which \
             have it, or remove `job_keys:`"
        );
    }

    /// A job and a ping key take the same schedule fields, checked the same way, and a
    /// misspelt field is named with every field the item takes.
    #[test]
    fn jobs_and_keys_share_one_schedule_and_name_a_misspelt_field() {
        let schema = crate::sources::declare::schema::<ScheduleConfig>().to_value();
        let mut fields: Vec<&str> = schema["properties"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        fields.sort_unstable();
        let mut keys = ScheduleConfig::KEYS.to_vec();
        keys.sort_unstable();
        assert_eq!(fields, keys, "ScheduleConfig::KEYS are its fields");
        let (c, errors) = parse_text(
            "[{ name: a, cron: '0 3 * * *', timezone: Europe/Berlin, grace: 10m, labels: { team: data } }]",
            "[{ name: k, key: 0123456789abcdef0, cron: '0 3 * * *', timezone: Europe/Berlin, grace: 10m, labels: { team: data } }]",
            "",
        );
        assert!(errors.is_empty(), "{errors:?}");
        let (job, made) = (&c.jobs[0], &c.keys[0].job);
        assert_eq!(
            (&job.schedule, job.grace, &job.labels),
            (&made.schedule, made.grace, &made.labels)
        );
        let (_, errors) = parse_text(
            "[{ name: a, every: 1h, gracee: 5m }]",
            "[{ name: k, key: 0123456789abcdef0, evry: 1h }]",
            "",
        );
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(
            errors[0].starts_with("jobs[0]")
                && errors[0].contains("gracee")
                && errors[0].contains("`grace`")
                && errors[0].contains("`token`"),
            "{}",
            errors[0]
        );
        assert!(
            errors[1].starts_with("job_keys[0]")
                && errors[1].contains("evry")
                && errors[1].contains("`every`")
                && errors[1].contains("`max_jobs`"),
            "{}",
            errors[1]
        );
    }

    #[test]
    fn a_job_takes_a_period_or_a_cron_schedule_and_defaults_its_grace() {
        let (c, errors) = parse_text(
            "[{name: rollup, cron: '15 2 * * *', timezone: Europe/Berlin, max_runtime: 1h, labels: {team: data}}, {name: warm, every: 10m, grace: 1m}]",
            "",
            "",
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(c.jobs[0].grace, DEFAULT_GRACE);
        assert_eq!(c.jobs[0].max_runtime, Some(Duration::from_secs(3600)));
        assert_eq!(
            c.jobs[1].schedule,
            Schedule::Every(Duration::from_secs(600))
        );
        assert_eq!(c.store.kind, StoreKind::Memory);
    }

    #[test]
    fn mistakes_name_the_field_and_the_fix() {
        let cases = [
            (
                "[{name: a, every: 1h, cron: '* * * * *'}]",
                "jobs[0]: set `every`",
            ),
            ("[{name: a}]", "jobs[0]: a job needs a schedule"),
            ("[{name: a, cron: '61 * * * *'}]", "jobs[0].cron:"),
            ("[{name: 'a b', every: 1h}]", "jobs[0].name:"),
            (
                "[{name: a, every: 1h, token: short}]",
                "jobs[0].token: is shorter",
            ),
            (
                "[{name: a, every: 1h, labels: {job_name: x}}]",
                "jobs[0].labels: label \"job_name\"",
            ),
            (
                "[{name: a, every: 1h, timezone: Europe/Berlin}]",
                "jobs[0].timezone:",
            ),
            (
                "[{name: a, every: 1h}, {name: a, every: 2h}]",
                "declared twice",
            ),
            (
                "[{name: a, every: 1h, colour: red}]",
                "unknown field `colour`",
            ),
        ];
        for (text, want) in cases {
            let (_, errors) = parse_text(text, "", "");
            assert!(
                errors.iter().any(|e| e.contains(want)),
                "{text}: want {want:?} in {errors:?}"
            );
        }
        let (_, errors) = parse_text("", "", "{refresh: 5s}");
        assert!(
            errors.iter().any(|e| e.contains("job_store: set `redis")),
            "{errors:?}"
        );
        let (_, errors) = parse_text("", "", "{postgres: 'postgres://x/y', table: 'Bad-Name'}");
        assert!(
            errors.iter().any(|e| e.contains("job_store.table")),
            "{errors:?}"
        );
        // A URL the client would refuse when the exporter starts is refused at load, as a
        // source's is: `check` says so.
        for (store, want) in [
            (
                "{redis: 'redis://h:99999999'}",
                "job_store.redis: not a usable Redis URL",
            ),
            (
                "{postgres: 'mysql://h/db'}",
                "job_store.postgres: not a usable Postgres URL",
            ),
        ] {
            let (_, errors) = parse_text("", "", store);
            assert!(
                errors.iter().any(|e| e.contains(want)),
                "{store}: {errors:?}"
            );
        }
        let (_, errors) = parse_text(
            "",
            "[{name: k, key: '0123456789abcdef', every: 1h, max_jobs: 0}]",
            "",
        );
        assert!(
            errors.iter().any(|e| e.contains("job_keys[0].max_jobs")),
            "{errors:?}"
        );
    }

    #[test]
    fn tokens_are_not_shared() {
        let (_, errors) = parse_text(
            "[{name: a, every: 1h, token: '0123456789abcdef'}]",
            "[{name: k, key: '0123456789abcdef', every: 1h}]",
            "",
        );
        assert!(
            errors
                .iter()
                .any(|e| e.contains("job_keys[0].key: the same token as `jobs[0].token`")),
            "{errors:?}"
        );
    }

    #[test]
    fn job_names_are_path_segments() {
        assert!(is_job_name("nightly-rollup.v2_a"));
        for bad in ["", "a/b", "a b", "é", "..%2f", &"x".repeat(65)] {
            assert!(!is_job_name(bad), "{bad}");
        }
    }
}
