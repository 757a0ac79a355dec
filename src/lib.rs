//! pulse-exporter: probes a SaaS platform's dependencies in the background and serves the
//! results from cache as Prometheus metrics.
//!
//! Module map, from the bottom layer up: each module imports only from rows above it (or
//! its own folder), never from below; no import circle.
//!
//! | module | owns |
//! |---|---|
//! | [`sync`] | locks that outlive a panic |
//! | [`secrets`] | the secrets list and scrubbing them from logs and errors |
//! | [`config_core`] | the config core every kind builds on: errors, durations, shared source and check fields, check plans, what a check publishes (`shape`), parsing helpers, `${env:}`/`${file:}` references, `{{now-5m}}` time windows in check arguments |
//! | [`clients`] | the client plumbing the kinds and the job store share: whether a Redis or Postgres URL is one its client can use, the Redis client and its connection checked after idleness, the Postgres options and pools |
//! | [`series`] | what a check or health probe returns and how it is declared: samples and metric families, metric declarations, native histograms, bounded tops, why a run failed (its bounded reason), and the exporter's own metrics, computed from the state the runtime hands over at each scrape |
//! | [`jobs`] | jobs that report in: their config, schedules, states, store and ping handling |
//! | [`sources`] | the `Kind`, `Source` and `Runnable` traits, one module (or folder) per kind, the registry listing them, and the helpers the kinds share (rows of query-style checks, worker heartbeats, windows over counters, the TLS endpoints of sources and the certificate chain each presents) |
//! | [`config`] | the config file as a whole: sources of every kind through the registry, rules across them |
//! | [`generate`] | dashboards and alerting rules generated from a config (`dashboards`, `rules`, `/dashboards.json`, `/rules.yml`) |
//! | [`runtime`] | running a config: app and reload, scheduler, store, shard, certificate reads, config watching |
//! | [`serve`] | the HTTP server, its limits and web config, the exposition, the landing page |
//! | [`logging`] | log format and level |
//! | [`reference`](mod@reference) | the generated references: `docs/config.md` from the config structs, `docs/metrics.md` from the metric declarations |
//!
//! Each kind uses `config_core` and the shared modules, never another kind; `sources::registry`
//! and `config` sit above the kinds. The renderers at the bottom of the table are
//! imported by nothing but their tests.
//!
//! The command line lives in the binary: `src/main.rs` matches the subcommand once, `src/cli/`
//! holds the flags and one file per command, and `src/demo/` the demo's data generator (the
//! exporter's library does not carry it).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod clients;
pub mod config;
pub mod config_core;
pub mod generate;
pub mod jobs;
pub mod logging;
pub mod reference;
pub mod runtime;
pub mod secrets;
pub mod series;
pub mod serve;
pub mod sources;
pub mod sync;
