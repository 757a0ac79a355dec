//! `pulse-exporter check`: the config loads; how many sources and checks, and which of them
//! this shard runs.

use std::process::ExitCode;

use pulse_exporter::config;
use pulse_exporter::runtime::shard::Shard;

/// `check`: the config is valid (it loaded); how many sources and checks, and this shard's.
pub(crate) fn check(path: &std::path::Path, config: &config::Config, shard: Shard) -> ExitCode {
    let checks: usize = config.sources.iter().map(|s| s.checks().len()).sum();
    println!(
        "{}: valid ({} sources, {} checks)",
        path.display(),
        config.sources.len(),
        checks
    );
    if !config.templates.is_empty() {
        let names: Vec<String> = config
            .templates
            .iter()
            .map(|t| format!("{} ({})", t.template.name, t.template.kind))
            .collect();
        println!(
            "templates, leased per target at /probe?template=NAME&target=…: {}",
            names.join(", ")
        );
    }
    if !config.jobs.is_empty() {
        println!("{}", jobs_line(&config.jobs));
    }
    if shard.is_split() {
        println!("{}", shard_line(shard, config));
    }
    ExitCode::SUCCESS
}

/// `jobs that report in at /ping/NAME/…: 2 declared (usage-rollup, cache-warm), 1 ping key;
/// kept in redis`, and a warning for jobs only the web config's users can sign.
fn jobs_line(jobs: &pulse_exporter::jobs::config::JobsConfig) -> String {
    use pulse_exporter::jobs::config::StoreKind;
    let names: Vec<&str> = jobs.jobs.iter().map(|j| j.name.as_str()).collect();
    let store = match &jobs.store.kind {
        StoreKind::Memory => {
            "kept in this process's memory only (set job_store: to share and keep them)"
        }
        StoreKind::Redis { .. } => "kept in redis",
        StoreKind::Postgres { .. } => "kept in postgres",
    };
    let mut line = format!(
        "jobs that report in at /ping/NAME/…: {} declared ({}), {} ping key(s); {store}",
        names.len(),
        names.join(", "),
        jobs.keys.len()
    );
    let unsigned: Vec<&str> = jobs
        .jobs
        .iter()
        .filter(|j| j.token.is_none())
        .map(|j| j.name.as_str())
        .collect();
    if !unsigned.is_empty() {
        line.push_str(&format!(
            "\nwithout a token, only the web config's basic_auth_users can sign the pings of: {}",
            unsigned.join(", ")
        ));
    }
    line
}

/// `shard 1 of 3 (from 0) runs 2 of 7 sources: a, b; the other shards run: c, …`.
pub(crate) fn shard_line(shard: Shard, config: &config::Config) -> String {
    let (mine, others): (Vec<&str>, Vec<&str>) = config
        .sources
        .iter()
        .map(|s| s.common.name.as_str())
        .partition(|n| shard.owns(n));
    format!(
        "shard {} of {} (from 0) runs {} of {} sources: {}; the other shards run: {}",
        shard.index,
        shard.count,
        mine.len(),
        config.sources.len(),
        if mine.is_empty() {
            "none".to_owned()
        } else {
            mine.join(", ")
        },
        if others.is_empty() {
            "none".to_owned()
        } else {
            others.join(", ")
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shard_line_names_what_this_shard_runs_and_what_the_others_do() {
        let config = config::load_str(
            "sources:\n  - { name: a, kind: redis, url: redis://127.0.0.1 }\n  - { name: b, kind: redis, url: redis://127.0.0.1 }\n  - { name: c, kind: redis, url: redis://127.0.0.1 }\n",
        )
        .unwrap();
        let lines: Vec<String> = (0..2)
            .map(|index| shard_line(Shard { index, count: 2 }, &config))
            .collect();
        for (index, line) in lines.iter().enumerate() {
            assert!(
                line.starts_with(&format!("shard {index} of 2 (from 0) runs ")),
                "{line}"
            );
            assert!(line.contains(" of 3 sources: "), "{line}");
        }
        // Each source is run by exactly one of the two shards' lines.
        for name in ["a", "b", "c"] {
            let owner = pulse_exporter::runtime::shard::owner(name, 2) as usize;
            let runs = lines[owner].split("; the other").next().unwrap();
            assert!(runs.contains(name), "{name}: {}", lines[owner]);
        }
        let alone = shard_line(Shard { index: 0, count: 1 }, &config);
        assert!(alone.ends_with("the other shards run: none"), "{alone}");
    }
}
