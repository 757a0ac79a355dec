//! The `pulse-exporter` command line: run (default), `check`, `probe`, `dashboards`, `rules`,
//! `demo` and `healthcheck`.
//!
//! Exit codes: 0 success; 1 invalid config, failed checks under `probe`, or a runtime error;
//! 2 bad command-line usage.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::ExitCode;

mod demo;

use clap::{Parser, Subcommand};
use pulse_exporter::logging::{self, LogFormat, LogLevel};
use pulse_exporter::run::app::App;
use pulse_exporter::run::configwatch;
use pulse_exporter::run::shard::{Shard, ShardFlags};
use pulse_exporter::serve::http;
use pulse_exporter::serve::webconfig::WebConfig;
use pulse_exporter::{configfile, probe_cmd, secrets};

#[derive(Parser, Debug)]
#[command(
    name = "pulse-exporter",
    version,
    about = "Probes a platform's dependencies in the background and serves the admin view as Prometheus metrics, from cache."
)]
struct Cli {
    /// Configuration file (YAML).
    #[arg(
        long = "config.file",
        env = "PULSE_CONFIG_FILE",
        global = true,
        value_name = "FILE"
    )]
    config_file: Option<PathBuf>,
    /// Re-read the config file, and the secret files it reads through `${file:…}`, this often
    /// and reload when their content changed (a Kubernetes ConfigMap or Secret update); `0s`
    /// turns it off. A change that does not load keeps the running config, as SIGHUP does.
    #[arg(
        long = "config.auto-reload-interval",
        env = "PULSE_CONFIG_AUTO_RELOAD_INTERVAL",
        default_value = "0s",
        value_parser = auto_reload_interval,
        global = true
    )]
    auto_reload_interval: std::time::Duration,
    /// Address to listen on; `:7857` means every interface.
    #[arg(
        long = "web.listen-address",
        env = "PULSE_WEB_LISTEN_ADDRESS",
        default_value = ":7857",
        global = true
    )]
    listen_address: String,
    /// Path under which metrics are served.
    #[arg(
        long = "web.telemetry-path",
        env = "PULSE_WEB_TELEMETRY_PATH",
        default_value = "/metrics",
        global = true
    )]
    telemetry_path: String,
    /// Web config file (exporter-toolkit format: TLS and basic auth).
    #[arg(
        long = "web.config.file",
        env = "PULSE_WEB_CONFIG_FILE",
        global = true,
        value_name = "FILE"
    )]
    web_config_file: Option<PathBuf>,
    /// Connections served at once; more are closed on accept (idle clients cannot hold them
    /// all: headers must arrive within 10 s).
    #[arg(
        long = "web.max-connections",
        env = "PULSE_WEB_MAX_CONNECTIONS",
        default_value_t = 256,
        value_parser = clap::value_parser!(u32).range(1..=65_536),
        global = true
    )]
    max_connections: u32,
    /// Connections one client address (an IPv6 /64) may hold at once; more from it are
    /// closed on accept, so slow clients from one address cannot take every connection.
    #[arg(
        long = "web.max-connections-per-address",
        env = "PULSE_WEB_MAX_CONNECTIONS_PER_ADDRESS",
        default_value_t = 32,
        value_parser = clap::value_parser!(u32).range(1..=65_536),
        global = true
    )]
    max_connections_per_address: u32,
    /// This replica's shard, from 0, when several replicas split one config
    /// (--shard.count). Unset with a count above 1: this pod's ordinal (--shard.pod-index,
    /// or the end of the hostname as a StatefulSet names its pods) modulo the count (of 3
    /// shards, pulse-exporter-2 and pulse-exporter-5 are both shard 2).
    #[arg(long = "shard.index", env = "PULSE_SHARD_INDEX", global = true)]
    shard_index: Option<u32>,
    /// Shards the config is split into: each runs the sources whose name hashes to it
    /// (rendezvous hashing: adding a source moves no other). Default: --shard.replicas, or 1.
    #[arg(long = "shard.count", env = "PULSE_SHARD_COUNT", global = true)]
    shard_count: Option<u32>,
    /// Replicas that run this config, as the StatefulSet declares them (the Kubernetes
    /// overlays copy spec.replicas here). The shard count defaults to it, and a count it
    /// cannot cover (more shards than replicas, or replicas not a multiple of the count)
    /// fails at start instead of leaving shards unprobed.
    #[arg(long = "shard.replicas", env = "PULSE_SHARD_REPLICAS", global = true)]
    shard_replicas: Option<u32>,
    /// This pod's StatefulSet ordinal, from the apps.kubernetes.io/pod-index label through
    /// the downward API. Empty or unset: the ordinal at the end of the hostname.
    #[arg(long = "shard.pod-index", env = "PULSE_POD_INDEX", global = true)]
    pod_index: Option<String>,
    /// Minimum log level.
    #[arg(
        long = "log.level",
        env = "PULSE_LOG_LEVEL",
        value_enum,
        default_value = "info",
        global = true
    )]
    log_level: LogLevel,
    /// Log line format.
    #[arg(
        long = "log.format",
        env = "PULSE_LOG_FORMAT",
        value_enum,
        default_value = "logfmt",
        global = true
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Validate the config file and exit: 0 when valid, 1 with every error listed.
    Check,
    /// Run every check once, print a table of outcomes, and exit (1 if any failed).
    Probe,
    /// Generate demo platform data in the local services (docs/demo.md); no config needed.
    Demo(Box<demo::DemoArgs>),
    /// Write a Grafana dashboard for the config's sources and checks (JSON): a health row,
    /// then a panel per check.
    Dashboards(DashboardArgs),
    /// Write Prometheus alerting rules for the config (YAML): sources down, checks failing or
    /// stale, and the thresholds of checks with `alert:`.
    Rules(OutputArgs),
    /// Exit 0 if the exporter at --web.listen-address answers /-/healthy, else 1 (for
    /// container health checks; no curl needed).
    Healthcheck,
}

/// Where `dashboards` and `rules` write.
#[derive(clap::Args, Debug)]
struct OutputArgs {
    /// Write to this file instead of stdout.
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
}

/// `dashboards`: where it writes, and what the dashboard is called.
#[derive(clap::Args, Debug)]
struct DashboardArgs {
    #[command(flatten)]
    out: OutputArgs,
    /// The dashboard's uid (default: `pulse-` and the config file's name); links keep working
    /// across regenerations while it stays the same.
    #[arg(long = "dashboard.uid")]
    uid: Option<String>,
    /// The dashboard's title (default: `pulse-exporter: ` and the config file's name).
    #[arg(long = "dashboard.title")]
    title: Option<String>,
}

/// `dashboards`: the dashboard of `config`, to `--output` or stdout.
fn dashboards(
    args: &DashboardArgs,
    path: &std::path::Path,
    config: &configfile::Config,
) -> ExitCode {
    use pulse_exporter::generate::dashboard;
    let mut options = dashboard::Options::for_file(path);
    if let Some(uid) = &args.uid {
        if uid.is_empty() || uid.len() > 40 {
            eprintln!("error: --dashboard.uid must be 1 to 40 characters (Grafana's limit)");
            return ExitCode::from(2);
        }
        options.uid = uid.clone();
    }
    if let Some(title) = &args.title {
        options.title = title.clone();
    }
    write_output(&args.out, &dashboard::render(config, &options))
}

/// `text` to `--output`, or stdout without it.
fn write_output(out: &OutputArgs, text: &str) -> ExitCode {
    match &out.output {
        None => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Some(out) => match std::fs::write(out, text) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: cannot write {}: {e}", out.display());
                ExitCode::FAILURE
            }
        },
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.log_level, cli.log_format);
    // ring is the only crypto provider compiled in; installing it explicitly keeps every TLS
    // client and server (Postgres, Redis, HTTPS) on it even if a dependency enables another.
    let _ = rustls::crypto::ring::default_provider().install_default();
    // Panics (caught per check by the scheduler) are logged like everything else, so their
    // text passes the secret scrubber instead of going to stderr raw.
    std::panic::set_hook(Box::new(|info| tracing::error!(event = "panic", "{info}")));
    let outcome = match &cli.command {
        Some(Command::Demo(args)) => Ok(demo_command((**args).clone())),
        Some(Command::Healthcheck) => Ok(healthcheck_command(&cli)),
        Some(Command::Dashboards(args)) => {
            loaded(&cli).map(|(path, config, _)| dashboards(args, &path, &config))
        }
        Some(Command::Rules(out)) => loaded(&cli).map(|(_, config, _)| {
            write_output(out, &pulse_exporter::generate::rules::rules(&config))
        }),
        Some(Command::Check) => {
            loaded(&cli).map(|(path, config, shard)| check(&path, &config, shard))
        }
        Some(Command::Probe) => loaded(&cli)
            .and_then(|(_, config, shard)| Ok(runtime()?.block_on(probe(config, shard)))),
        None => loaded(&cli).and_then(|(path, config, shard)| {
            Ok(runtime()?.block_on(run(cli, path, config, shard)))
        }),
    };
    outcome.unwrap_or_else(|code| code)
}

/// `demo`: the analytics demo until it is stopped.
fn demo_command(args: demo::DemoArgs) -> ExitCode {
    match runtime() {
        Ok(rt) => match rt.block_on(demo::run(args)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("demo: {e}");
                ExitCode::from(e.code)
            }
        },
        Err(code) => code,
    }
}

/// `healthcheck`, with its exit code.
fn healthcheck_command(cli: &Cli) -> ExitCode {
    match healthcheck(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("healthcheck: {e}");
            ExitCode::FAILURE
        }
    }
}

/// What every command but `demo` and `healthcheck` starts from: the config file's path, the
/// config and this replica's shard; or the exit code of what was wrong, said on stderr.
fn loaded(cli: &Cli) -> Result<(PathBuf, configfile::Config, Shard), ExitCode> {
    let Some(path) = cli.config_file.clone() else {
        eprintln!("error: --config.file (or PULSE_CONFIG_FILE) is required");
        return Err(ExitCode::from(2));
    };
    let hostname = hostname();
    let shard = Shard::from_flags(&ShardFlags {
        index: cli.shard_index,
        count: cli.shard_count,
        replicas: cli.shard_replicas,
        pod_index: cli.pod_index.as_deref(),
        hostname: &hostname,
    })
    .map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(2)
    })?;
    let config = configfile::load_file(&path).map_err(|errors| {
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
fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Runtime::new().map_err(|e| {
        eprintln!("error: cannot start the async runtime: {e}");
        ExitCode::FAILURE
    })
}

/// `check`: the config is valid (it loaded); how many sources and checks, and this shard's.
fn check(path: &std::path::Path, config: &configfile::Config, shard: Shard) -> ExitCode {
    let checks: usize = config.sources.iter().map(|s| s.checks().len()).sum();
    println!(
        "{}: valid ({} sources, {} checks)",
        path.display(),
        config.sources.len(),
        checks
    );
    if shard.is_split() {
        println!("{}", shard_line(shard, config));
    }
    ExitCode::SUCCESS
}

/// `probe`: every check of this shard once, as a table; fails when any failed.
async fn probe(mut config: configfile::Config, shard: Shard) -> ExitCode {
    if shard.is_split() {
        println!("{}", shard_line(shard, &config));
        config.sources.retain(|s| shard.owns(&s.common.name));
    }
    match probe_cmd::probe_all(&config).await {
        Ok(rows) => {
            print!("{}", probe_cmd::render(&rows));
            if rows.iter().all(|r| r.summary.result.is_ok()) {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("error: {}", secrets::scrub(&e));
            ExitCode::FAILURE
        }
    }
}

/// `healthcheck`: one request to the exporter this command line describes.
fn healthcheck(cli: &Cli) -> Result<(), String> {
    let tls = match &cli.web_config_file {
        Some(p) => WebConfig::load(p)?.tls_server_config.is_some(),
        None => false,
    };
    let url = pulse_exporter::healthcheck::url(&cli.listen_address, tls)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(pulse_exporter::healthcheck::check(
        &url,
        std::time::Duration::from_secs(3),
    ))
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

/// Checks `--web.telemetry-path`: an absolute path that no other endpoint uses.
fn telemetry_path(path: &str) -> Result<&str, String> {
    if !path.starts_with('/')
        || path == "/"
        || path.starts_with("/-/")
        || path.contains(['{', '}', '*'])
    {
        return Err(format!(
            "--web.telemetry-path {path:?} must be an absolute path other than / and /-/…, e.g. /metrics"
        ));
    }
    Ok(path)
}

/// This machine's hostname: `HOSTNAME` (set in every Kubernetes pod), else the kernel's.
fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// `shard 1 of 3 (from 0) runs 2 of 7 sources: a, b; the other shards run: c, …`.
fn shard_line(shard: Shard, config: &configfile::Config) -> String {
    let (mine, others): (Vec<&str>, Vec<&str>) = config
        .sources
        .iter()
        .map(|s| s.common.name.as_str())
        .partition(|n| shard.owns(n));
    format!(
        "shard {} of {} (from 0) runs {} of {} sources: {}; the other shards run: {}",
        shard.index,
        shard.count,
        mine.len(),
        config.sources.len(),
        if mine.is_empty() {
            "none".to_owned()
        } else {
            mine.join(", ")
        },
        if others.is_empty() {
            "none".to_owned()
        } else {
            others.join(", ")
        },
    )
}

async fn run(cli: Cli, path: PathBuf, config: configfile::Config, shard: Shard) -> ExitCode {
    let telemetry = match telemetry_path(&cli.telemetry_path) {
        Ok(p) => p.to_owned(),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let web = match &cli.web_config_file {
        Some(p) => match WebConfig::load(p) {
            Ok(w) => w,
            Err(e) => {
                tracing::error!(error = %e, "invalid web config");
                return ExitCode::FAILURE;
            }
        },
        None => WebConfig::default(),
    };
    let listener = match http::parse_listen_address(&cli.listen_address)
        .and_then(|a| TcpListener::bind(a).map_err(|e| format!("cannot listen on {a}: {e}")))
    {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the HTTP server");
            return ExitCode::FAILURE;
        }
    };
    if shard.is_split() {
        tracing::info!(
            shard = shard.index,
            shards = shard.count,
            "{}",
            shard_line(shard, &config)
        );
    }
    let app = match App::start_sharded(config, Some(path.clone()), shard) {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(error = %e, "cannot start");
            return ExitCode::FAILURE;
        }
    };
    let local = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    tracing::info!(address = %local, tls = web.tls_server_config.is_some(), auth = !web.basic_auth_users.is_empty(), version = env!("CARGO_PKG_VERSION"), "listening");

    let reloader = app.clone();
    tokio::spawn(async move {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            return;
        };
        while hup.recv().await.is_some() {
            let _ = reloader.reload().await;
        }
    });
    let _watch = (!cli.auto_reload_interval.is_zero()).then(|| {
        tracing::info!(file = %path.display(), interval = %humantime::format_duration(cli.auto_reload_interval), "reloading the config when it or a secret it reads changes");
        http::AbortOnDrop(configwatch::spawn(app.clone(), path.clone(), cli.auto_reload_interval))
    });
    let limits = pulse_exporter::serve::limits::Limits {
        max_connections: cli.max_connections as usize,
        max_connections_per_address: cli.max_connections_per_address as usize,
        ..pulse_exporter::serve::limits::Limits::default()
    };
    let served = http::serve_with(
        listener,
        app.clone(),
        web,
        &telemetry,
        limits,
        shutdown_signal(),
    )
    .await;
    app.shutdown().await;
    match served {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!(error = %e, "HTTP server failed");
            ExitCode::FAILURE
        }
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {},
        _ = int.recv() => {},
    }
    tracing::info!("shutting down");
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

    #[test]
    fn the_shard_line_names_what_this_shard_runs_and_what_the_others_do() {
        let config = configfile::load_str(
            "sources:\n  - { name: a, kind: redis, url: redis://127.0.0.1 }\n  - { name: b, kind: redis, url: redis://127.0.0.1 }\n  - { name: c, kind: redis, url: redis://127.0.0.1 }\n",
        )
        .unwrap();
        let lines: Vec<String> = (0..2)
            .map(|index| shard_line(Shard { index, count: 2 }, &config))
            .collect();
        for (index, line) in lines.iter().enumerate() {
            assert!(
                line.starts_with(&format!("shard {index} of 2 (from 0) runs ")),
                "{line}"
            );
            assert!(line.contains(" of 3 sources: "), "{line}");
        }
        // Each source is run by exactly one of the two shards' lines.
        for name in ["a", "b", "c"] {
            let owner = pulse_exporter::run::shard::owner(name, 2) as usize;
            let runs = lines[owner].split("; the other").next().unwrap();
            assert!(runs.contains(name), "{name}: {}", lines[owner]);
        }
        let alone = shard_line(Shard { index: 0, count: 1 }, &config);
        assert!(alone.ends_with("the other shards run: none"), "{alone}");
    }
}
