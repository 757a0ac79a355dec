//! Tests that read as tables: [`scenario`] serves a config and waits for every check's first
//! run, [`assert_samples`] compares a scrape with a table of expected samples, and
//! [`pg_table`] and [`pg_database`] make a Postgres table or database a test owns.

use std::time::Duration;

use super::cleanup::Cleanup;
use super::exporter::{InProcess, Serving};
use super::scrape::Scrape;
use super::services::{pg, PG_URL};
use super::unique;

/// One expected sample: metric name, labels the series must carry (others may be present),
/// and its value, or `None` where no such series may exist.
pub type Expected<'a> = (&'a str, &'a [(&'a str, &'a str)], Option<f64>);

/// An exporter serving a config in process, and its first scrape in which every source's
/// health probe has run and every check has succeeded at least once.
pub struct Scenario {
    pub exporter: InProcess,
    pub first: Scrape,
}

/// Serves `yaml` in process and waits (10 s at most) until every source's health probe has
/// run and every check has succeeded once (a first run may fail on a cold connection): what a
/// test then asserts is what a good run produced. A test of failures waits with
/// [`Serving::wait_for`] instead.
pub async fn scenario(yaml: &str) -> Scenario {
    let config = pulse_exporter::config::load_str(yaml).unwrap_or_else(|e| panic!("{e}"));
    let mut runs: Vec<(String, &'static str, String)> = Vec::new();
    for source in &config.sources {
        let name = source.common.name.clone();
        runs.push((name.clone(), "pulse_source_up", String::new()));
        for plan in &source.plans.checks {
            runs.push((
                name.clone(),
                "pulse_check_last_success_timestamp_seconds",
                plan.check.clone(),
            ));
        }
    }
    let exporter = InProcess::start(yaml);
    let first = exporter
        .wait_for(
            "every check's first success",
            Duration::from_secs(10),
            |m| {
                runs.iter().all(|(source, metric, check)| {
                    let mut labels = vec![("source", source.as_str())];
                    if !check.is_empty() {
                        labels.push(("check", check.as_str()));
                    }
                    !m.find(metric, &labels).is_empty()
                })
            },
        )
        .await;
    Scenario { exporter, first }
}

/// Asserts every row of `expected` against `scrape`, listing every mismatch at once.
pub fn assert_samples(scrape: &Scrape, expected: &[Expected<'_>]) {
    let wrong: Vec<String> = expected
        .iter()
        .filter_map(|(name, labels, want)| {
            let found = scrape.find(name, labels);
            let have = match found.as_slice() {
                [] => None,
                [one] => Some(one.value),
                many => {
                    return Some(format!(
                        "{name} {labels:?}: {} series match, expected one",
                        many.len()
                    ))
                }
            };
            (have != *want).then(|| format!("{name} {labels:?}: {have:?}, expected {want:?}"))
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "{} of {} samples differ:\n  {}\nscrape:\n{}",
        wrong.len(),
        expected.len(),
        wrong.join("\n  "),
        scrape.text
    );
}

/// A Postgres database named from `prefix`, its URL, and the guard that drops it (with its
/// sessions) when the test ends, however it ends: for tests that read server-wide views
/// (`pg_stat_activity`) and must tell their own sessions apart by database.
pub async fn pg_database(prefix: &str) -> (String, String, Cleanup) {
    let db = unique(prefix);
    sqlx::raw_sql(&format!("CREATE DATABASE {db}"))
        .execute(&pg().await)
        .await
        .unwrap();
    let cleanup = Cleanup::default().pg(format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"));
    let url = format!("{}/{db}", PG_URL.rsplit_once('/').unwrap().0);
    (db, url, cleanup)
}

/// A Postgres table named from `prefix`, created by `sql` (`{table}` stands for its name),
/// and the guard that drops it when the test ends, however it ends.
pub async fn pg_table(prefix: &str, sql: &str) -> (String, Cleanup) {
    let table = unique(prefix);
    let cleanup = Cleanup::default().pg(format!("DROP TABLE IF EXISTS {table}"));
    sqlx::raw_sql(&sql.replace("{table}", &table))
        .execute(&pg().await)
        .await
        .unwrap();
    (table, cleanup)
}
