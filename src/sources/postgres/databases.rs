//! SQL checks fanned out over the databases of a server (`databases:`): each run lists the
//! server's databases, keeps those the include and exclude patterns pick (template databases
//! only when asked, at most `max`, by name), and runs the check in each, its samples
//! labelled `database`. At most `connections` databases are queried at once, each on one
//! connection opened for the run and closed after it: a server of 200 databases sees a few
//! short sessions, never 200 idle ones. A database that fails (dropped mid-run, refusing
//! connections) fails the check with its reason while the others' samples are still served.

use std::time::Duration;

use futures_util::StreamExt;
use regex::Regex;
use serde::Deserialize;
use sqlx::postgres::PgConnectOptions;
use sqlx::Row;
use tokio::time::Instant;

use super::decode::check_columns;
use super::session::{stream_rows, CheckPool};
use crate::config_core::validate::{in_range, whole_match_patterns};
use crate::config_core::ConfigError;
use crate::series::run_error::RunError;
use crate::series::sample::Output;
use crate::sources::rows::RowShape;
use crate::sources::{RunFuture, Runnable};

/// `databases:` of a Postgres source: run its SQL checks in every database of the server
/// that these pick, each sample labelled `database`.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Databases {
    /// Regular expressions a database name must match, whole (default: every database).
    #[serde(default = "every")]
    pub include: Vec<String>,
    /// Regular expressions of names to leave out, whole, even when included (e.g. `postgres`,
    /// `rdsadmin`).
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Most databases a check runs in, the first by name (default 100, 1 to 1000); the rest
    /// are counted in `pulse_check_dropped_series_total`.
    #[serde(default = "default_max")]
    pub max: usize,
    /// Whether template databases (`template0`, `template1`, yours) are included (default
    /// false).
    #[serde(default)]
    pub templates: bool,
    /// Databases queried at once, each on a connection of its own for the run (default 4, 1 to
    /// 32): the server sees at most this many of the check's sessions.
    #[serde(default = "default_connections")]
    pub connections: usize,
}

fn every() -> Vec<String> {
    vec![".*".to_owned()]
}

fn default_max() -> usize {
    100
}

fn default_connections() -> usize {
    4
}

impl Databases {
    /// Records what is wrong with these settings, at `path` (the source's `databases`).
    pub fn validate(&self, path: &str, errors: &mut Vec<ConfigError>) {
        whole_match_patterns(&self.include, &format!("{path}.include"), errors);
        whole_match_patterns(&self.exclude, &format!("{path}.exclude"), errors);
        in_range(&format!("{path}.max"), self.max as u64, 1, 1000, errors);
        in_range(
            &format!("{path}.connections"),
            self.connections as u64,
            1,
            32,
            errors,
        );
    }

    /// The settings as a run uses them: patterns compiled (validation saw they compile).
    pub(super) fn fanout(&self, options: PgConnectOptions) -> Fanout {
        let mut ignored = Vec::new();
        Fanout {
            include: whole_match_patterns(&self.include, "", &mut ignored),
            exclude: whole_match_patterns(&self.exclude, "", &mut ignored),
            max: self.max,
            templates: self.templates,
            connections: self.connections,
            options,
        }
    }
}

/// [`Databases`] ready to run.
#[derive(Debug)]
pub(super) struct Fanout {
    include: Vec<Regex>,
    exclude: Vec<Regex>,
    max: usize,
    templates: bool,
    connections: usize,
    /// The source's connection options; each database's session changes only the database.
    options: PgConnectOptions,
}

impl Fanout {
    /// The databases a run covers, by name, and how many more matched past `max`.
    pub(super) fn pick(&self, mut names: Vec<String>) -> (Vec<String>, usize) {
        names.retain(|n| {
            self.include.iter().any(|r| r.is_match(n))
                && !self.exclude.iter().any(|r| r.is_match(n))
        });
        names.sort();
        let past = names.len().saturating_sub(self.max);
        names.truncate(self.max);
        (names, past)
    }

    /// Lists the server's databases on the source's pool.
    async fn list(&self, pool: &CheckPool, deadline: Instant) -> Result<Vec<String>, RunError> {
        let sql = if self.templates {
            "SELECT datname::text FROM pg_database WHERE datallowconn"
        } else {
            "SELECT datname::text FROM pg_database WHERE datallowconn AND NOT datistemplate"
        };
        let mut names = Vec::new();
        stream_rows(pool, sql, deadline, |row| {
            names.push(
                row.try_get::<String, _>(0)
                    .map_err(super::session::classify)?,
            );
            // Bounded by the server: pg_database holds what the cluster has.
            Ok(true)
        })
        .await?;
        Ok(names)
    }
}

/// A SQL check run in every database [`Fanout`] picks.
pub(super) struct FanoutProbe {
    /// The source's pool, for listing the databases.
    pub(super) pool: CheckPool,
    pub(super) fanout: std::sync::Arc<Fanout>,
    pub(super) metric: String,
    pub(super) help: String,
    pub(super) shape: RowShape,
    pub(super) sql: String,
    /// The check's series cap, for each database's rows and for them all.
    pub(super) max_series: usize,
}

impl FanoutProbe {
    /// The check's rows in `database`, on a connection opened for this run alone.
    async fn one(&self, database: &str, deadline: Instant) -> Result<Output, RunError> {
        let options = self.fanout.options.clone().database(database);
        let pool = CheckPool::new(crate::clients::postgres::pool(
            options,
            1,
            Duration::from_secs(30),
            None,
        ));
        let mut sink = self.shape.sink(&self.metric, &self.help, self.max_series);
        let mut first = true;
        let result = stream_rows(&pool, &self.sql, deadline, |row| {
            if std::mem::take(&mut first) {
                check_columns(row, &self.shape)?;
            }
            sink.push(row)
        })
        .await;
        // Closed now, not when the idle timeout would: the run's session ends with the run.
        pool.close().await;
        sink.count_rest(result?);
        let mut out = sink.finish();
        out.add_labels(&[("database".to_owned(), database.to_owned())]);
        Ok(out)
    }
}

impl Runnable for FanoutProbe {
    fn run(&self, deadline: Instant) -> RunFuture<'_> {
        Box::pin(async move {
            let names = self.fanout.list(&self.pool, deadline).await?;
            let (databases, past) = self.fanout.pick(names);
            let total = databases.len();
            let mut runs = futures_util::stream::iter(databases)
                .map(|db| async move {
                    let result = self.one(&db, deadline).await;
                    (db, result)
                })
                .buffer_unordered(self.fanout.connections);
            let mut out = Output {
                dropped: past as u64,
                ..Output::default()
            };
            let mut failed: Vec<(String, RunError)> = Vec::new();
            while let Some((db, result)) = runs.next().await {
                match result {
                    Ok(part) => merge(&mut out, part),
                    Err(e) => failed.push((db, e)),
                }
            }
            if failed.is_empty() {
                return Ok(out);
            }
            failed.sort_by(|a, b| a.0.cmp(&b.0));
            let (first_db, first) = &failed[0];
            let error = RunError::new(
                first.reason(),
                format!(
                    "{} of {} databases failed; {first_db}: {}",
                    failed.len(),
                    total,
                    first.message()
                ),
            );
            if failed.len() == total {
                return Err(error);
            }
            // The healthy databases' samples are served, and the check says what failed.
            out.failure = Some(error);
            Ok(out)
        })
    }
}

/// Adds `part`'s families and counts to `out`, samples of the same family together.
fn merge(out: &mut Output, part: Output) {
    out.skipped += part.skipped;
    out.dropped += part.dropped;
    out.truncated += part.truncated;
    for fam in part.families {
        match out.families.iter_mut().find(|f| f.name == fam.name) {
            Some(f) => f.samples.extend(fam.samples),
            None => out.families.push(fam),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fanout(yaml: &str) -> Fanout {
        let d: Databases = serde_yaml::from_str(yaml).unwrap();
        let mut errors = Vec::new();
        d.validate("sources[0].databases", &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        d.fanout(PgConnectOptions::new())
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_patterns_pick_whole_names_and_max_keeps_the_first_by_name() {
        let all = names(&[
            "postgres",
            "tenant_b",
            "tenant_a",
            "tenant_ab",
            "other",
            "xtenant_c",
        ]);
        let f = fanout("{ include: ['tenant_.*', other], exclude: ['tenant_ab'], max: 2 }");
        assert_eq!(f.pick(all.clone()), (names(&["other", "tenant_a"]), 1));
        let every = fanout("{}");
        assert_eq!(every.pick(all).0.len(), 6);
        assert_eq!(
            (every.max, every.connections, every.templates),
            (100, 4, false)
        );
    }

    #[test]
    fn bad_settings_name_their_field() {
        let d: Databases = serde_yaml::from_str(
            "{ include: ['(x'], exclude: ['ok', '[z'], max: 0, connections: 33 }",
        )
        .unwrap();
        let mut errors = Vec::new();
        d.validate("sources[0].databases", &mut errors);
        let text: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        for says in [
            "sources[0].databases.include[0]: not a regular expression",
            "sources[0].databases.exclude[1]: not a regular expression",
            "sources[0].databases.max",
            "sources[0].databases.connections",
        ] {
            assert!(text.iter().any(|t| t.starts_with(says)), "{says}: {text:?}");
        }
    }

    #[test]
    fn parts_merge_by_family() {
        let mut out = Output::default();
        for db in ["a", "b"] {
            let mut part = Output::default();
            part.gauge("app_users", "Users.", vec![], 1.0);
            part.skipped = 1;
            part.add_labels(&[("database".to_owned(), db.to_owned())]);
            merge(&mut out, part);
        }
        assert_eq!(out.families.len(), 1);
        assert_eq!(out.families[0].samples.len(), 2);
        assert_eq!(out.skipped, 2);
    }
}
