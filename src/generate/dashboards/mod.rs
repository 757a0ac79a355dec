//! Grafana dashboards, in one vocabulary. A [`board::Board`] holds rows and
//! [`panel::Panel`] descriptions (kind, texts, queries, size, look) in reading order, lays
//! them out in rows of 24 columns and writes Grafana's JSON; [`fields`] names how values
//! read (colour steps, mappings, a table's columns and transformations). Two kinds of
//! dashboard are built with it:
//!
//! - [`bundle`]: the bundled boards (`grafana/dashboards/*.json`): admin overview, platform
//!   health, queues and workers, query latency, database load, objectives;
//! - [`from_config`]: the dashboard of a user's config (`pulse-exporter dashboards`), a row
//!   per source with a panel per check.
//!
//! How a panel reads its guard and units (the fold, the DEGRADED and NO DATA mappings, the
//! runbook base) comes from [`crate::generate::style`].

mod board;
mod budget;
pub mod bundle;
mod fields;
pub mod from_config;
mod panel;
