//! Jobs that report in: cron jobs, Kubernetes CronJobs and scripts ping the exporter when a
//! run starts and ends, and the exporter publishes deadlines computed from their schedules,
//! so an alert fires when a job is late, failed or runs too long, never merely on absence.
//!
//! | module | owns |
//! |---|---|
//! | [`config`] | `jobs:`, `job_keys:` and `job_store:`: reading and checking them |
//! | [`schedule`] | periods and cron schedules in a time zone; the next due time |
//! | [`state`] | one job's state and the pure step a ping makes to it; its deadline |
//! | [`store`] | where states are kept: memory, Redis or Postgres (a file each), written atomically |
//! | [`metrics`] | the `pulse_job_*` declarations and series |
//! | [`tracker`] | the running jobs: pings, background reads of the store, publishing |
//!
//! The store and the tracker are the cargo feature `jobs` (on by default). A build without it
//! still reads, checks and generates rules and dashboards for `jobs:`, and refuses to run a
//! config that has any ([`config::not_built`]).

pub mod config;
pub mod metrics;
pub mod schedule;
pub mod state;
#[cfg(feature = "jobs")]
pub mod store;
#[cfg(feature = "jobs")]
pub mod tracker;
