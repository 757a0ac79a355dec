//! Running a config: the checks' tasks and their timing, the store of their latest results,
//! this replica's shard, the certificate reads beside the health probes, and reloading.
//!
//! | module | owns |
//! |---|---|
//! | [`app`] | wiring config → sources → check tasks → store, and applying a reload |
//! | [`scheduler`] | one task per check: jitter, interval, timeout, outcomes, transition events |
//! | [`results`] | the latest result per check, staleness, counters, certificate expiries |
//! | [`once`] | every check of a config run once (the `probe` subcommand, the kinds' examples) |
//! | [`leases`] | the lease table of targets leased through templates: ages, intervals, lapses |
//! | [`targets`] | leasing a target in the app: starting its checks, renewing, reaping |
//! | [`shard`] | which sources of the config this replica runs (`--shard.*`) |
//! | [`certificate_watch`] | reading the sources' certificates beside their health probes |
//! | [`configwatch`] | reloading when the config file or a secret it reads changes |
//!
//! It sits above the sources and the generators (a reload regenerates the served dashboards
//! and rules) and below the server, which only reads it.

pub mod app;
pub mod certificate_watch;
pub mod configwatch;
pub mod leases;
pub mod once;
pub mod results;
pub mod scheduler;
pub mod shard;
pub mod targets;
