//! The Postgres connect options and pools of the `postgres` kind (its check pool and the
//! per-database fan-out) and of a Postgres job store: built here alike, so that a session
//! is named the same way, logs the same way and connects on first use everywhere.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::ConnectOptions;

/// The options of `url`, its sessions named `application` unless the URL names them (its
/// own `application_name` is how a DBA tells a deployment's sessions apart, so it is kept).
/// Statements log at trace only: sqlx would warn about every statement over a second, on
/// every run, and a slow query is what the metrics and alerts report, not a log line.
pub fn options(url: &str, application: &str) -> Result<PgConnectOptions, sqlx::Error> {
    let options = PgConnectOptions::from_str(url)?
        .log_statements(tracing::log::LevelFilter::Trace)
        .log_slow_statements(tracing::log::LevelFilter::Debug, Duration::from_secs(1));
    Ok(match options.get_application_name() {
        Some(_) => options,
        None => options.application_name(application),
    })
}

/// A pool of at most `max` sessions of `options`, none open until first used (a source
/// that is down at start must not stop the exporter), waiting at most `acquire` for a
/// session and closing one idle for `idle` (never, for `None`).
pub fn pool(
    options: PgConnectOptions,
    max: u32,
    acquire: Duration,
    idle: Option<Duration>,
) -> PgPool {
    PgPoolOptions::new()
        .max_connections(max)
        .min_connections(0)
        .acquire_timeout(acquire)
        .idle_timeout(idle)
        .connect_lazy_with(options)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_named_unless_the_url_names_it() {
        let named = options(
            "postgres://u@db/app?application_name=billing",
            "pulse-exporter",
        );
        assert_eq!(named.unwrap().get_application_name(), Some("billing"));
        let unnamed = options("postgres://u@db/app", "pulse-exporter-jobs").unwrap();
        assert_eq!(unnamed.get_application_name(), Some("pulse-exporter-jobs"));
        assert!(options("postgres://db:not-a-port/app", "x").is_err());
    }
}
