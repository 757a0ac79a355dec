//! Which tables are read whole: `pg_stat_user_tables`, read in the background.
//!
//! A query that filters a big table on a column without an index reads every row of it on
//! every call: the Postgres face of "findAllUsers scans the entire users collection". Each
//! run reads the scan counters of the source database's tables; what each table did since the
//! last run (the window, [`crate::sources::window`]) ranks them, and the top N by rows read
//! through sequential scans are published with their sequential and index scans, their live
//! and dead rows and when they were last vacuumed and analysed.
//!
//! The view is per database: the tables of the source's URL database are read.

use std::collections::HashMap;

use serde::Deserialize;
use sqlx::Row;
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::metrics::{
    TABLES_WHOLE_READS_LIMIT, TABLES_WHOLE_READ_ROWS, TABLES_WINDOW, TABLE_DEAD_ROWS,
    TABLE_INDEX_SCANS, TABLE_LAST_ANALYZE, TABLE_LAST_VACUUM, TABLE_LIVE_ROWS, TABLE_SEQ_ROWS_READ,
    TABLE_SEQ_SCANS,
};
use super::session::{classify, read_only, CheckPool};
use crate::config_core::validate::{in_range, Statistics, STATISTICS};
use crate::config_core::{ConfigError, Dur};
use crate::series::run_error::RunError;
use crate::series::sample::Output;
use crate::series::topn::Largest;
use crate::sources::window::{Moved, Reading, Window};
use crate::sources::{RunFuture, Runnable};

/// The name of the built-in check.
pub const CHECK: &str = "tables";

/// `tables:` of a Postgres source: the tables read whole by sequential scans, from
/// `pg_stat_user_tables` of the source's database. `false` turns it off.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TablesSettings {
    /// How often the counters are read: every value covers the window between two reads
    /// (default 1m; 10s to 1h).
    pub interval: Dur,
    /// How long one read may take before it is cancelled, on the server too (default 5s;
    /// shorter than the interval).
    pub timeout: Dur,
    /// Tables published, the most rows read by sequential scans in the window first (default
    /// 20; 1 to 100).
    pub top: usize,
    /// A table of more live rows than this that sequential scans read whole more than
    /// `whole_reads_per_minute` times a minute fires PulsePostgresBigTableReadWhole, from the
    /// first hour on (default 100000; 1000 to 10000000000).
    pub whole_read_rows: u64,
    /// How many times a minute, in rows read by sequential scans over the table's live rows,
    /// such a table may be read whole before that alert fires (default 1; 0.01 to 1000).
    pub whole_reads_per_minute: f64,
}

impl Default for TablesSettings {
    fn default() -> Self {
        TablesSettings {
            interval: Dur(STATISTICS.interval),
            timeout: Dur(STATISTICS.timeout),
            top: STATISTICS.top,
            whole_read_rows: 100_000,
            whole_reads_per_minute: 1.0,
        }
    }
}

impl TablesSettings {
    /// Records what is wrong with these settings, at `path`.
    pub fn validate(&self, path: &str, errors: &mut Vec<ConfigError>) {
        Statistics {
            interval: self.interval.0,
            timeout: self.timeout.0,
            top: self.top,
        }
        .validate(path, errors);
        in_range(
            &format!("{path}.whole_read_rows"),
            self.whole_read_rows,
            1000,
            10_000_000_000,
            errors,
        );
        let per_minute = self.whole_reads_per_minute;
        if !(0.01..=1000.0).contains(&per_minute) {
            errors.push(ConfigError::new(
                format!("{path}.whole_reads_per_minute"),
                format!("{per_minute} is out of range: use 0.01 to 1000 (times a minute the table's live rows are read)"),
            ));
        }
    }
}

/// Most tables a run reads: a database of more has the rest left out of the ranking.
const MAX_TABLES: i64 = 100_000;

/// The scan counters of every table, with what the ranking does not need to remember.
/// `idx_scan` is NULL for a table without an index.
const TABLES_SQL: &str = "SELECT relid::int8 AS relid, schemaname::text AS schema, \
    relname::text AS name, current_database()::text AS database, \
    coalesce(seq_scan, 0)::float8 AS seq_scan, coalesce(seq_tup_read, 0)::float8 AS seq_tup_read, \
    coalesce(idx_scan, 0)::float8 AS idx_scan, \
    n_live_tup::float8 AS live, n_dead_tup::float8 AS dead, \
    extract(epoch FROM greatest(last_vacuum, last_autovacuum))::float8 AS vacuumed, \
    extract(epoch FROM greatest(last_analyze, last_autoanalyze))::float8 AS analyzed \
    FROM pg_stat_user_tables ORDER BY relid LIMIT $1";

/// The counters of a table's [`Reading`], in this order.
const SEQ_SCANS: usize = 0;
const SEQ_ROWS: usize = 1;
const IDX_SCANS: usize = 2;

/// What is published of a table besides its window.
#[derive(Debug, Clone, Default, PartialEq)]
struct Table {
    database: String,
    schema: String,
    name: String,
    live: Option<f64>,
    dead: Option<f64>,
    vacuumed: Option<f64>,
    analyzed: Option<f64>,
}

/// The probe of the built-in `tables` check.
pub(super) struct TablesProbe {
    pub(super) source: String,
    pub(super) pool: CheckPool,
    pub(super) settings: TablesSettings,
    pub(super) window: Mutex<Window<i64>>,
}

impl Runnable for TablesProbe {
    fn run(&self, deadline: Instant) -> RunFuture<'_> {
        Box::pin(async move {
            let mut window = self.window.lock().await;
            let read = self.read(deadline).await;
            let (counters, tables) = match read {
                Ok(r) => r,
                Err(e) => {
                    window.reset();
                    return Err(e);
                }
            };
            let mut out = Output::default();
            // The alert's bounds, published so that a source's own settings reach the bundled
            // rule (as the Redis latency check publishes its p99 limit).
            out.add(
                &TABLES_WHOLE_READ_ROWS,
                &[self.source.as_str()],
                self.settings.whole_read_rows as f64,
            );
            out.add(
                &TABLES_WHOLE_READS_LIMIT,
                &[self.source.as_str()],
                self.settings.whole_reads_per_minute,
            );
            if let Some(moved) = window.advance(std::time::Instant::now(), None, counters) {
                samples(&mut out, &self.source, &moved, &tables, self.settings.top);
            }
            Ok(out)
        })
    }
}

impl TablesProbe {
    async fn read(
        &self,
        deadline: Instant,
    ) -> Result<(HashMap<i64, Reading>, HashMap<i64, Table>), RunError> {
        let mut tx = read_only(&self.pool, deadline).await?;
        let rows = sqlx::query(TABLES_SQL)
            .bind(MAX_TABLES)
            .fetch_all(&mut *tx)
            .await
            .map_err(classify)?;
        tx.rollback().await.map_err(classify)?;
        let mut counters = HashMap::with_capacity(rows.len());
        let mut tables = HashMap::with_capacity(rows.len());
        for row in rows {
            let relid: i64 = row.try_get("relid").map_err(classify)?;
            let num = |c: &str| row.try_get::<Option<f64>, _>(c).map_err(classify);
            let values = vec![
                num("seq_scan")?.unwrap_or(0.0),
                num("seq_tup_read")?.unwrap_or(0.0),
                num("idx_scan")?.unwrap_or(0.0),
            ];
            counters.insert(relid, Reading::new(values));
            tables.insert(
                relid,
                Table {
                    database: row.try_get("database").map_err(classify)?,
                    schema: row.try_get("schema").map_err(classify)?,
                    name: row.try_get("name").map_err(classify)?,
                    live: num("live")?,
                    dead: num("dead")?,
                    vacuumed: num("vacuumed")?,
                    analyzed: num("analyzed")?,
                },
            );
        }
        Ok((counters, tables))
    }
}

/// The samples of the `top` tables by rows read through sequential scans in the window;
/// tables that read no row that way are in none.
fn samples(
    out: &mut Output,
    source: &str,
    moved: &Moved<i64>,
    tables: &HashMap<i64, Table>,
    top: usize,
) {
    out.add(&TABLES_WINDOW, &[source], moved.seconds);
    let mut largest = Largest::new(top);
    let mut items: Vec<&(i64, Vec<f64>)> = moved
        .items
        .iter()
        .filter(|(_, d)| d[SEQ_ROWS] > 0.0)
        .collect();
    items.sort_by_key(|(relid, _)| *relid);
    for item in items {
        largest.push(item.1[SEQ_ROWS], item);
    }
    for (relid, d) in largest.into_sorted() {
        let Some(t) = tables.get(relid) else { continue };
        let labels = [
            source,
            t.database.as_str(),
            t.schema.as_str(),
            t.name.as_str(),
        ];
        out.add(&TABLE_SEQ_ROWS_READ, &labels, d[SEQ_ROWS]);
        out.add(&TABLE_SEQ_SCANS, &labels, d[SEQ_SCANS]);
        out.add(&TABLE_INDEX_SCANS, &labels, d[IDX_SCANS]);
        for (metric, value) in [
            (&TABLE_LIVE_ROWS, t.live),
            (&TABLE_DEAD_ROWS, t.dead),
            (&TABLE_LAST_VACUUM, t.vacuumed),
            (&TABLE_LAST_ANALYZE, t.analyzed),
        ] {
            if let Some(v) = value {
                out.add(metric, &labels, v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(name: &str, live: f64) -> Table {
        Table {
            database: "app".into(),
            schema: "public".into(),
            name: name.into(),
            live: Some(live),
            dead: Some(3.0),
            vacuumed: Some(1_700_000_000.0),
            analyzed: None,
        }
    }

    #[test]
    fn the_tables_read_whole_most_come_first_and_quiet_ones_are_left_out() {
        let tables = HashMap::from([
            (1, table("users", 200_000.0)),
            (2, table("plans", 3.0)),
            (3, table("posts", 50_000.0)),
            (4, table("indexed", 1e6)),
        ]);
        let moved = Moved {
            seconds: 60.0,
            items: vec![
                (1, vec![10.0, 2_000_000.0, 0.0]),
                (2, vec![500.0, 1500.0, 0.0]),
                (3, vec![1.0, 50_000.0, 7.0]),
                // Index scans only: not read whole.
                (4, vec![0.0, 0.0, 9000.0]),
            ],
        };
        let mut out = Output::default();
        samples(&mut out, "db", &moved, &tables, 2);
        let read: Vec<(String, f64)> = out
            .families
            .iter()
            .find(|f| f.name == TABLE_SEQ_ROWS_READ.name)
            .unwrap()
            .samples
            .iter()
            .map(|s| (s.labels[3].1.clone(), s.value))
            .collect();
        assert_eq!(read, [("users".into(), 2e6), ("posts".into(), 5e4)]);
        assert_eq!(out.value(TABLE_SEQ_SCANS.name, "users"), Some(10.0));
        assert_eq!(out.value(TABLE_INDEX_SCANS.name, "posts"), Some(7.0));
        assert_eq!(out.value(TABLE_LIVE_ROWS.name, "users"), Some(200_000.0));
        assert_eq!(out.value(TABLE_LAST_VACUUM.name, "users"), Some(1.7e9));
        assert_eq!(
            out.value(TABLE_LAST_ANALYZE.name, "users"),
            None,
            "never analysed"
        );
        assert_eq!(out.value(TABLES_WINDOW.name, ""), Some(60.0));
    }
}
