//! The command line: flags and subcommands (`Cli`), what every command starts from (the
//! loaded config, this replica's shard, the async runtime), and one file per subcommand.
//! `main` parses, then matches the subcommand once.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use pulse_exporter::config;
use pulse_exporter::logging::{LogFormat, LogLevel};
use pulse_exporter::runtime::shard::{Shard, ShardFlags};
use pulse_exporter::secrets;

pub mod check;
pub mod generate;
pub mod healthcheck;
pub mod probe;
pub mod run;
pub mod serve;

#[derive(Parser, Debug)]
#[command(
    name = "pulse-exporter",
    version,
    about = "Probes a platform's dependencies in the background and serves the admin view as Prometheus metrics, from cache."
)]
pub struct Cli {
    /// Configuration file (YAML).
    #[arg(long = "config.file", env = "PULSE_CONFIG_FILE", value_name = "FILE")]
    pub(crate) config_file: Option<PathBuf>,
    /// Re-read the config file, and the secret files it reads through `${file:…}`, this often
    /// and reload when their content changed (a Kubernetes ConfigMap or Secret update); `0s`
    /// turns it off. A change that does not load keeps the running config, as SIGHUP does.
    #[arg(
        long = "config.auto-reload-interval",
        env = "PULSE_CONFIG_AUTO_RELOAD_INTERVAL",
        default_value = "0s",
        value_parser = auto_reload_interval
    )]
    pub(crate) auto_reload_interval: std::time::Duration,
    #[command(flatten)]
    pub(crate) listen: ListenArgs,
    /// Path under which metrics are served.
    #[arg(
        long = "web.telemetry-path",
        env = "PULSE_WEB_TELEMETRY_PATH",
        default_value = "/metrics"
    )]
    pub(crate) telemetry_path: String,
    /// Connections served at once; more are closed on accept (idle clients cannot hold them
    /// all: headers must arrive within 10 s).
    #[arg(
        long = "web.max-connections",
        env = "PULSE_WEB_MAX_CONNECTIONS",
        default_value_t = 256,
        value_parser = clap::value_parser!(u32).range(1..=65_536)
    )]
    pub(crate) max_connections: u32,
    /// Connections one client address (an IPv6 /64) may hold at once; more from it are
    /// closed on accept, so slow clients from one address cannot take every connection.
    #[arg(
        long = "web.max-connections-per-address",
        env = "PULSE_WEB_MAX_CONNECTIONS_PER_ADDRESS",
        default_value_t = 32,
        value_parser = clap::value_parser!(u32).range(1..=65_536)
    )]
    pub(crate) max_connections_per_address: u32,
    #[command(flatten)]
    pub(crate) shard: ShardArgs,
    /// Minimum log level.
    #[arg(
        long = "log.level",
        env = "PULSE_LOG_LEVEL",
        value_enum,
        default_value = "info",
        global = true
    )]
    pub(crate) log_level: LogLevel,
    /// Log line format.
    #[arg(
        long = "log.format",
        env = "PULSE_LOG_FORMAT",
        value_enum,
        default_value = "logfmt",
        global = true
    )]
    pub(crate) log_format: LogFormat,
    #[command(subcommand)]
    pub(crate) command: Option<Command>,
}

/// Which part of the config this replica runs, when several replicas split it: for the
/// server, `check` and `probe`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ShardArgs {
    /// This replica's shard, from 0, when several replicas split one config
    /// (--shard.count). Unset with a count above 1: this pod's ordinal (--shard.pod-index,
    /// or the end of the hostname as a StatefulSet names its pods) modulo the count (of 3
    /// shards, pulse-exporter-2 and pulse-exporter-5 are both shard 2).
    #[arg(long = "shard.index", env = "PULSE_SHARD_INDEX")]
    pub(crate) shard_index: Option<u32>,
    /// Shards the config is split into: each runs the sources whose name hashes to it
    /// (rendezvous hashing: adding a source moves no other). Default: --shard.replicas, or 1.
    #[arg(long = "shard.count", env = "PULSE_SHARD_COUNT")]
    pub(crate) shard_count: Option<u32>,
    /// Replicas that run this config, as the StatefulSet declares them (the Kubernetes
    /// overlays copy spec.replicas here). The shard count defaults to it, and a count it
    /// cannot cover (more shards than replicas, or replicas not a multiple of the count)
    /// fails at start instead of leaving shards unprobed.
    #[arg(long = "shard.replicas", env = "PULSE_SHARD_REPLICAS")]
    pub(crate) shard_replicas: Option<u32>,
    /// This pod's StatefulSet ordinal, from the apps.kubernetes.io/pod-index label through
    /// the downward API. Empty or unset: the ordinal at the end of the hostname.
    #[arg(long = "shard.pod-index", env = "PULSE_POD_INDEX")]
    pub(crate) pod_index: Option<String>,
}

impl ShardArgs {
    /// This replica's shard, or what is wrong with the flags.
    fn shard(&self) -> Result<Shard, String> {
        let hostname = hostname();
        Shard::from_flags(&ShardFlags {
            index: self.shard_index,
            count: self.shard_count,
            replicas: self.shard_replicas,
            pod_index: self.pod_index.as_deref(),
            hostname: &hostname,
        })
    }
}

/// The config file a subcommand reads: given after the subcommand, or before it.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ConfigArgs {
    /// Configuration file (YAML).
    #[arg(long = "config.file", env = "PULSE_CONFIG_FILE", value_name = "FILE")]
    pub(crate) config_file: Option<PathBuf>,
}

/// `check` and `probe`: the config, and which shard of it.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ShardedConfigArgs {
    #[command(flatten)]
    pub(crate) config: ConfigArgs,
    #[command(flatten)]
    pub(crate) shard: ShardArgs,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Validate the config file and exit: 0 when valid, 1 with every error listed.
    Check(ShardedConfigArgs),
    /// Run every check once, print a table of outcomes, and exit (1 if any failed).
    Probe(ShardedConfigArgs),
    /// Generate demo platform data in the local services (docs/demo.md); no config needed.
    /// In builds with the Postgres, Redis, RabbitMQ and MongoDB kinds.
    #[cfg(all(
        feature = "postgres",
        feature = "redis",
        feature = "rabbitmq",
        feature = "mongodb"
    ))]
    Demo(Box<crate::demo::DemoArgs>),
    /// Write a Grafana dashboard for the config's sources and checks (JSON): a health row,
    /// then a panel per check.
    Dashboards(DashboardArgs),
    /// Write Prometheus alerting rules for the config (YAML): sources down, checks failing or
    /// stale, the thresholds of checks with `alert:`, and the objectives' recorded error
    /// ratios and burn-rate alerts.
    Rules(RulesArgs),
    /// Write the bundle's rule files (pulse-alerts.yml and the recording rules of
    /// prometheus/rules/) into a folder, for a Prometheus shared with other exporters or
    /// clusters: --selector in every series they read, --cluster-label kept in every
    /// aggregation and join. No config needed.
    BundleRules(BundleRulesArgs),
    /// Write the bundle's dashboards (admin-overview.json, platform-health.json,
    /// queues-workers.json, query-latency.json, database-load.json and objectives.json, as
    /// grafana/dashboards/ holds them) into a folder; for a Prometheus shared with other
    /// exporters or clusters, --selector in every series they read and a $cluster variable
    /// for --cluster-label. No config needed.
    BundleDashboards(BundleDashboardsArgs),
    /// Exit 0 if the exporter at --web.listen-address answers /-/healthy, else 1 (for
    /// container health checks; no curl needed). With --url, asks that URL instead.
    Healthcheck(HealthcheckArgs),
    /// Write the Prometheus scrape config (YAML) that scrapes each source on its own through
    /// /probe, its targets found through the exporters' /sd.
    ScrapeConfig(ScrapeArgs),
    /// Run a command as a job that reports in: ping the exporter's /ping/JOB/start, run the
    /// command, ping its exit status with its output's tail, and exit as it did
    /// (`pulse-exporter run --job nightly-rollup -- ./rollup.sh`). The token comes from
    /// PULSE_PING_TOKEN or --token-file. No config needed.
    Run(run::RunArgs),
    /// Write the JSON Schema (draft-07) of the config file: editors validate a config with
    /// it, and the Helm chart's values.schema.json embeds it. No config needed.
    ConfigSchema(OutputArgs),
}

/// Where the exporter listens unless told otherwise.
pub(crate) const DEFAULT_LISTEN_ADDRESS: &str = ":7857";

/// `healthcheck`: what to ask, when it is not this host's own exporter.
#[derive(clap::Args, Debug, Clone)]
pub struct HealthcheckArgs {
    /// Ask this URL (e.g. `http://pulse-exporter:7857/metrics`, from another pod such as a
    /// `helm test`) instead of /-/healthy at --web.listen-address; it must answer 200.
    #[arg(long, value_name = "URL")]
    pub(crate) url: Option<String>,
    /// Also require a sample of this metric in the answer (e.g. `pulse_build_info`): the
    /// scrape itself works, not only the server.
    #[arg(long, value_name = "NAME")]
    pub(crate) expect_metric: Option<String>,
    /// Where the exporter listens and whether it serves TLS (a wildcard address is asked on
    /// loopback).
    #[command(flatten)]
    pub(crate) listen: ListenArgs,
}

/// Where the exporter listens and its web config: the server's flags, which `healthcheck`
/// reads too to know where to ask.
#[derive(clap::Args, Debug, Clone)]
pub struct ListenArgs {
    /// Address to listen on: `:7857` is every IPv4 interface (0.0.0.0:7857), `[::]:7857`
    /// every IPv6 one as well, `127.0.0.1:7857` this host only.
    #[arg(
        long = "web.listen-address",
        env = "PULSE_WEB_LISTEN_ADDRESS",
        default_value = DEFAULT_LISTEN_ADDRESS
    )]
    pub(crate) listen_address: String,
    /// Web config file (exporter-toolkit format: TLS and basic auth).
    #[arg(
        long = "web.config.file",
        env = "PULSE_WEB_CONFIG_FILE",
        value_name = "FILE"
    )]
    pub(crate) web_config_file: Option<PathBuf>,
}

/// Where `dashboards` and `rules` write.
#[derive(clap::Args, Debug)]
pub struct OutputArgs {
    /// Write to this file instead of stdout.
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
}

/// Which series generated rules and dashboards read, for a Prometheus that holds more than
/// this exporter's (the knobs of the monitoring mixins).
#[derive(clap::Args, Debug)]
pub struct SelectionArgs {
    /// Label matchers every series the rules or panels read must match, as between a
    /// selector's braces: `job="pulse-exporter"`, or `cluster="eu-1", team="billing"`. In
    /// rules their labels are kept in every aggregation, so recorded series keep them too.
    #[arg(long, value_name = "MATCHERS", default_value = "")]
    pub(crate) selector: String,
    /// The label that tells clusters apart where one Prometheus (Thanos, Mimir, federation)
    /// holds several: rules keep it in every `by (…)` and `on (…)`, so none adds up or joins
    /// two clusters' series; a dashboard gets a `$cluster` variable and shows one cluster.
    #[arg(long = "cluster-label", value_name = "LABEL")]
    pub(crate) cluster_label: Option<String>,
}

/// `rules`: where it writes, and which series the rules read.
#[derive(clap::Args, Debug)]
pub struct RulesArgs {
    #[command(flatten)]
    pub(crate) config: ConfigArgs,
    /// What to write: `rules` (Prometheus rule files), or the objectives alone as `pyrra`
    /// ServiceLevelObjective objects or `sloth` prometheus/v1 specs, for a team whose SLO
    /// tool writes the burn-rate rules (docs/objectives.md).
    #[arg(long, value_enum, default_value_t)]
    pub(crate) format: pulse_exporter::generate::slo_formats::Format,
    #[command(flatten)]
    pub(crate) out: OutputArgs,
    #[command(flatten)]
    pub(crate) selection: SelectionArgs,
}

/// `bundle-rules`: the folder it writes into, and which series the rules read.
#[derive(clap::Args, Debug)]
pub struct BundleRulesArgs {
    /// The folder to write pulse-alerts.yml, pulse-recording.yml, pulse-business.yml and
    /// pulse-latency.yml into (created if missing; files of those names are replaced).
    #[arg(long = "output.dir", value_name = "DIR")]
    pub(crate) dir: PathBuf,
    #[command(flatten)]
    pub(crate) selection: SelectionArgs,
}

/// `bundle-dashboards`: the folder it writes into, and which series the panels read.
#[derive(clap::Args, Debug)]
pub struct BundleDashboardsArgs {
    /// The folder to write the dashboards into (created if missing; files of their names are
    /// replaced).
    #[arg(long = "output.dir", value_name = "DIR")]
    pub(crate) dir: PathBuf,
    #[command(flatten)]
    pub(crate) selection: SelectionArgs,
}

/// `scrape-config`: where it writes, and where the exporters are.
#[derive(clap::Args, Debug)]
pub struct ScrapeArgs {
    #[command(flatten)]
    pub(crate) config: ConfigArgs,
    #[command(flatten)]
    pub(crate) out: OutputArgs,
    /// An exporter's address as Prometheus reaches it (`host:port`); repeat it for each
    /// replica of a sharded fleet.
    #[arg(long = "exporter", value_name = "HOST:PORT", required = true)]
    pub(crate) exporters: Vec<String>,
    /// `https` when the exporters' web config serves TLS.
    #[arg(long = "scheme", default_value = "http", value_parser = ["http", "https"])]
    pub(crate) scheme: String,
    /// The sources job's name (each template's job is `pulse-TEMPLATE`).
    #[arg(long = "job", default_value = "pulse-sources")]
    pub(crate) job: String,
    /// Where a template's targets are discovered, as `TEMPLATE=URL` (HTTP SD) or
    /// `TEMPLATE=PATH` (file SD, a glob allowed); repeat it per template. Default: file SD at
    /// /etc/prometheus/pulse-targets/TEMPLATE.yml.
    #[arg(long = "targets", value_name = "TEMPLATE=SD")]
    pub(crate) targets: Vec<String>,
    /// How many Prometheus servers share the targets (hand-made sharding; the Prometheus
    /// Operator's `shards` needs none): each keeps its `hashmod` share of every job.
    #[arg(
        long = "prometheus.shards",
        value_name = "N",
        requires = "prometheus_shard"
    )]
    pub(crate) prometheus_shards: Option<u64>,
    /// `prometheus`: `scrape_configs` for a Prometheus config file; `operator`: the same jobs
    /// as Prometheus Operator ScrapeConfig objects (kube-prometheus-stack).
    #[arg(long = "format", default_value = "prometheus", value_parser = ["prometheus", "operator"])]
    pub(crate) format: String,
    /// A label of the ScrapeConfig objects, `NAME=VALUE` (e.g. `release=kube-prometheus-stack`,
    /// which the chart's Prometheus selects by); repeat it per label. With `--format operator`.
    #[arg(long = "label", value_name = "NAME=VALUE")]
    pub(crate) labels: Vec<String>,
    /// This Prometheus's share, from 0, with --prometheus.shards.
    #[arg(
        long = "prometheus.shard",
        value_name = "I",
        requires = "prometheus_shards"
    )]
    pub(crate) prometheus_shard: Option<u64>,
}

/// `dashboards`: where it writes, and what the dashboard is called.
#[derive(clap::Args, Debug)]
pub struct DashboardArgs {
    #[command(flatten)]
    pub(crate) config: ConfigArgs,
    #[command(flatten)]
    out: OutputArgs,
    /// The dashboard's uid (default: `pulse-` and the config file's name); links keep working
    /// across regenerations while it stays the same.
    #[arg(long = "dashboard.uid")]
    uid: Option<String>,
    /// The dashboard's title (default: `pulse-exporter: ` and the config file's name).
    #[arg(long = "dashboard.title")]
    title: Option<String>,
    #[command(flatten)]
    selection: SelectionArgs,
}

/// `demo`: the analytics demo until it is stopped.
#[cfg(all(
    feature = "postgres",
    feature = "redis",
    feature = "rabbitmq",
    feature = "mongodb"
))]
pub(crate) fn demo_command(args: crate::demo::DemoArgs) -> ExitCode {
    match async_runtime() {
        Ok(rt) => match rt.block_on(crate::demo::run(args)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("demo: {e}");
                ExitCode::from(e.code)
            }
        },
        Err(code) => code,
    }
}

/// What every command but `demo` and `healthcheck` starts from: the config file's path, the
/// config and this replica's shard; or the exit code of what was wrong, said on stderr.
pub(crate) fn loaded(
    cli: &Cli,
    given: Option<&ConfigArgs>,
    shard: &ShardArgs,
    references: config::References,
) -> Result<(PathBuf, config::Config, Shard), ExitCode> {
    let after = given.and_then(|g| g.config_file.clone());
    let Some(path) = after.or_else(|| cli.config_file.clone()) else {
        eprintln!("error: --config.file (or PULSE_CONFIG_FILE) is required");
        return Err(ExitCode::from(2));
    };
    let shard = shard.shard().map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(2)
    })?;
    let config = config::load_file_with(&path, references).map_err(|errors| {
        eprintln!(
            "{}: {}",
            path.display(),
            secrets::scrub(&errors.to_string())
        );
        ExitCode::FAILURE
    })?;
    Ok((path, config, shard))
}

/// The async runtime, or the exit code of failing to start it.
pub(crate) fn async_runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Runtime::new().map_err(|e| {
        eprintln!("error: cannot start the async runtime: {e}");
        ExitCode::FAILURE
    })
}

/// Parses `--config.auto-reload-interval`: `0s` (off) or at least one second.
fn auto_reload_interval(text: &str) -> Result<std::time::Duration, String> {
    let d = humantime::parse_duration(text)
        .map_err(|e| format!("{e}: write a duration such as 30s or 1m, or 0s to turn it off"))?;
    if !d.is_zero() && d < std::time::Duration::from_secs(1) {
        return Err("must be 0s (off) or at least 1s".to_owned());
    }
    Ok(d)
}

/// This machine's hostname: `HOSTNAME` (set in every Kubernetes pod), else the kernel's.
pub(crate) fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .unwrap_or_default()
        .trim()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_auto_reload_interval_is_off_or_at_least_a_second() {
        assert_eq!(auto_reload_interval("0s"), Ok(std::time::Duration::ZERO));
        assert_eq!(
            auto_reload_interval("30s"),
            Ok(std::time::Duration::from_secs(30))
        );
        assert!(auto_reload_interval("500ms")
            .unwrap_err()
            .contains("at least 1s"));
        assert!(auto_reload_interval("soon")
            .unwrap_err()
            .contains("such as 30s"));
    }
}
