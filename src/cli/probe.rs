//! `pulse-exporter probe`: run every check of a config once and print what happened, for an
//! SRE wiring up a new source.

use std::process::ExitCode;

use pulse_exporter::config::Config;
use pulse_exporter::runtime::once::{run_all_once, OnceRow};
use pulse_exporter::runtime::shard::Shard;
use pulse_exporter::secrets;

use super::check::shard_line;

/// `probe`: every check of this shard once, as a table; fails when any failed.
pub(crate) async fn probe(mut config: Config, shard: Shard) -> ExitCode {
    if shard.is_split() {
        println!("{}", shard_line(shard, &config));
        config.sources.retain(|s| shard.owns(&s.common.name));
    }
    if config.sources.is_empty() {
        // An empty table would read as "all fine"; nothing was probed, and that is said.
        println!(
            "no source to probe: {} none{}",
            if shard.is_split() {
                "this shard runs"
            } else {
                "the config has"
            },
            match config.jobs.jobs.len() + config.jobs.keys.len() {
                0 => String::new(),
                _ => " (its jobs report in at /ping when the exporter runs)".to_owned(),
            }
        );
        return ExitCode::SUCCESS;
    }
    match run_all_once(&config).await {
        Ok(rows) => {
            print!("{}", render(&rows));
            if rows.iter().all(|r| r.summary.result.is_ok()) {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("error: {}", secrets::scrub(&e));
            ExitCode::FAILURE
        }
    }
}

/// The rows as an aligned text table.
fn render(rows: &[OnceRow]) -> String {
    let mut table = vec![[
        "SOURCE".to_owned(),
        "KIND".to_owned(),
        "CHECK".to_owned(),
        "OUTCOME".to_owned(),
        "DURATION".to_owned(),
        "SERIES".to_owned(),
        "ERROR".to_owned(),
    ]];
    for r in rows {
        let (outcome, series, error) = match &r.summary.result {
            Ok(n) => match &r.summary.unmeasured {
                None => ("ok".to_owned(), n.to_string(), String::new()),
                Some(why) => ("not measured".to_owned(), n.to_string(), why.clone()),
            },
            Err(e) => (
                format!("FAIL ({})", e.reason()),
                "-".to_owned(),
                e.message().replace('\n', " "),
            ),
        };
        table.push([
            r.source.clone(),
            r.kind.to_owned(),
            r.check.clone(),
            outcome,
            format!("{:.1}ms", r.summary.duration.as_secs_f64() * 1000.0),
            series,
            error,
        ]);
    }
    let widths: Vec<usize> = (0..7)
        .map(|i| {
            table
                .iter()
                .map(|row| row[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in &table {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if i == 6 {
                    c.clone()
                } else {
                    format!("{c:<w$}", w = widths[i])
                }
            })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}
