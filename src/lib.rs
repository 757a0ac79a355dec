//! pulse-exporter: probes a SaaS platform's dependencies in the background and serves the
//! results from cache as Prometheus metrics.
//!
//! Module map, in the order data flows:
//!
//! | module | owns |
//! |---|---|
//! | [`config`] | the config core every kind builds on: errors, durations, shared source and check fields, check plans, parsing helpers, `${env:}`/`${file:}` references |
//! | [`sources`] | the `Kind`, `Source` and `Probe` traits, one module (or folder) per kind, and the registry listing them |
//! | [`configfile`] | the file as a whole: sources of every kind through the registry, rules across them |
//! | [`secrets`] | the secrets list and scrubbing them from logs and errors |
//! | [`timetemplate`] | `{{now-5m}}` time windows in check arguments |
//! | [`scheduler`] | one task per check: jitter, interval, timeout, outcomes, transition events |
//! | [`store`] | the latest result per check, staleness, counters |
//! | [`certificates`] | the expiry of the certificates sources and the web server present |
//! | [`sample`] | samples and metric families probes return |
//! | [`heartbeat`] | worker heartbeats: up within max_age, remembered until forget_after |
//! | [`shape`] | what a check publishes, known from its config: metrics, labels, shape |
//! | [`rows`] | the row shape of query-style checks, and their rows (SQL rows, documents) into samples |
//! | [`collector`] | the prometheus-client `Collector` over the store, and self metrics |
//! | [`exposition`] | OpenMetrics or classic text by `Accept` |
//! | [`encoded`] | expositions encoded (and gzipped) once per store change, served to every scrape |
//! | [`shard`] | which sources of the config this replica runs (`--shard.*`) |
//! | [`configwatch`] | reloading when the config file or a secret it reads changes |
//! | [`app`] | wiring and reload |
//! | [`http`] | the HTTP endpoints, auth and TLS |
//! | [`topn`] | keeping the items with the largest keys of a stream |
//! | [`webconfig`] | the exporter-toolkit web config file |
//! | [`webwatch`] | re-reading the web config file while serving |
//! | [`generate`] | dashboards and alerting rules generated from a config (`dashboards`, `rules`, `/dashboards.json`, `/rules.yml`) |
//! | [`landing`] | the HTML landing page |
//! | [`reference`] | `docs/config.md`, generated from the config structs |
//! | [`probe_cmd`] | the `probe` subcommand's one-shot run and table |
//! | [`healthcheck`] | the `healthcheck` subcommand: a container health probe without curl |
//! | [`logging`] | log format and level |
//! | [`error`] | `ProbeError` and its bounded `Reason` |
//!
//! Dependencies point one way: `config` uses no source; each kind uses `config` and the
//! shared modules, never another kind; `sources::registry` and `configfile` sit above the
//! kinds.
//!
//! The `demo` subcommand's data generator lives in the binary (`src/demo/`), not here: the
//! exporter's library does not carry it.

#![warn(missing_docs)]

pub mod app;
pub mod certificates;
pub mod collector;
pub mod config;
pub mod configfile;
pub mod configwatch;
pub mod encoded;
pub mod error;
pub mod exposition;
pub mod generate;
pub mod healthcheck;
pub mod heartbeat;
pub mod http;
pub mod landing;
pub mod logging;
pub mod metrics_reference;
pub mod probe_cmd;
pub mod reference;
pub mod rows;
pub mod sample;
pub mod scheduler;
pub mod secrets;
pub mod self_metrics;
pub mod shape;
pub mod shard;
pub mod sources;
pub mod store;
pub mod timetemplate;
pub mod topn;
pub mod webconfig;
pub mod webwatch;
