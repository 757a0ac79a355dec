//! The `pulse-exporter` command line: the exporter itself (no subcommand), `check`, `probe`,
//! `dashboards`, `rules`, `scrape-config`, `config-schema`, `demo`, `healthcheck`, and `run`
//! (a job's wrapper). The commands live in `cli/` (the exporter in `cli/serve.rs`, `run` in
//! `cli/run.rs`), the demo's data generator in `demo/`; `main` parses, sets up logging and
//! matches the subcommand once.
//!
//! Exit codes: 0 success; 1 invalid config, failed checks under `probe`, or a runtime error;
//! 2 bad command-line usage.

// Two `unsafe` blocks: `kill(2)` on the wrapper's own child (src/cli/run.rs) and
// `malloc_trim(3)` after reloads (src/cli/serve.rs); the library forbids it.
#![deny(unsafe_code)]

use std::process::ExitCode;

mod cli;
// The demo writes into every kind of service the examples read.
#[cfg(all(
    feature = "postgres",
    feature = "redis",
    feature = "rabbitmq",
    feature = "mongodb"
))]
mod demo;

use clap::Parser;
use cli::{async_runtime, loaded, Cli, Command};
use pulse_exporter::config::References;
use pulse_exporter::logging;

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.log_level, cli.log_format);
    // ring is the only crypto provider compiled in; installing it explicitly keeps every TLS
    // client and server (Postgres, Redis, HTTPS) on it even if a dependency enables another.
    let _ = rustls::crypto::ring::default_provider().install_default();
    // Panics (caught per check by the scheduler) are logged like everything else, so their
    // text passes the secret scrubber instead of going to stderr raw.
    std::panic::set_hook(Box::new(|info| tracing::error!(event = "panic", "{info}")));
    let outcome =
        match &cli.command {
            #[cfg(all(
                feature = "postgres",
                feature = "redis",
                feature = "rabbitmq",
                feature = "mongodb"
            ))]
            Some(Command::Demo(args)) => Ok(cli::demo_command((**args).clone())),
            Some(Command::ConfigSchema(out)) => Ok(cli::generate::config_schema(out)),
            Some(Command::Run(args)) => Ok(cli::run::run_command(args)),
            Some(Command::Healthcheck(args)) => {
                // The server's flags given before the subcommand still say where it listens.
                let mut args = args.clone();
                if args.listen.listen_address == cli::DEFAULT_LISTEN_ADDRESS {
                    args.listen.listen_address = cli.listen.listen_address.clone();
                }
                if args.listen.web_config_file.is_none() {
                    args.listen.web_config_file = cli.listen.web_config_file.clone();
                }
                Ok(cli::healthcheck::healthcheck_command(&args))
            }
            Some(Command::Dashboards(args)) => {
                loaded(&cli, Some(&args.config), &cli.shard, References::Unresolved)
                    .map(|(path, config, _)| cli::generate::dashboards(args, &path, &config))
            }
            Some(Command::Rules(args)) => cli::generate::selection(&args.selection).and_then(|s| {
                loaded(&cli, Some(&args.config), &cli.shard, References::Unresolved)
                    .map(|(_, config, _)| cli::generate::rules(&args.out, args.format, &config, &s))
            }),
            Some(Command::BundleRules(args)) => cli::generate::selection(&args.selection)
                .map(|s| cli::generate::bundle_rules(&args.dir, &s)),
            Some(Command::BundleDashboards(args)) => cli::generate::selection(&args.selection)
                .map(|s| cli::generate::bundle_dashboards(&args.dir, &s)),
            Some(Command::ScrapeConfig(args)) => {
                loaded(&cli, Some(&args.config), &cli.shard, References::Unresolved)
                    .map(|(_, config, _)| cli::generate::scrape_config(args, &config))
            }
            Some(Command::Check(args)) => {
                loaded(&cli, Some(&args.config), &args.shard, References::Resolve)
                    .map(|(path, config, shard)| cli::check::check(&path, &config, shard))
            }
            Some(Command::Probe(args)) => {
                loaded(&cli, Some(&args.config), &args.shard, References::Resolve).and_then(
                    |(_, config, shard)| {
                        Ok(async_runtime()?.block_on(cli::probe::probe(config, shard)))
                    },
                )
            }
            None => loaded(&cli, None, &cli.shard, References::Resolve).and_then(
                |(path, config, shard)| {
                    Ok(async_runtime()?.block_on(cli::serve::serve(cli, path, config, shard)))
                },
            ),
        };
    outcome.unwrap_or_else(|code| code)
}
