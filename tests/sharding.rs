//! Sharding against the real Postgres and Redis: three replicas with `--shard.count 3` over a
//! config of 33 sources probe every source exactly once between them, serve together what one
//! unsharded exporter serves, and keep their sources when one is added.

use pulse_test_support as common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::*;

/// A config of `redis` Redis sources (a key check each) and three Postgres sources (a query
/// each), checks every second. The built-in statistics checks are off: what they publish is
/// what the shared server did in the last window, which differs from one read to the next.
fn config(redis: usize, extra: &str) -> String {
    let mut text = String::from(
        "global: { health_interval: 5s, health_timeout: 4s, interval: 5s, timeout: 4s }\nsources:\n",
    );
    for i in 0..redis {
        text.push_str(&format!(
            "  - name: cache-{i:02}\n    kind: redis\n    url: {REDIS_URL}\n    latency: false\n    keys: [{{ key: pulse_shard_test_missing, metric: app_shard_key_length, const_labels: {{ cache: cache-{i:02} }} }}]\n"
        ));
    }
    for i in 0..3 {
        text.push_str(&format!(
            "  - name: db-{i}\n    kind: postgres\n    url: {PG_URL}\n    statements: false\n    tables: false\n    load: false\n    checks: [{{ metric: app_shard_one, sql: \"SELECT 1 AS value\", const_labels: {{ db: db-{i} }} }}]\n"
        ));
    }
    text.push_str(extra);
    text
}

/// Families whose series come and go with the server's state of the moment (connections by
/// state, the oldest running query and transaction), whoever scrapes; and the failure
/// counters, whose reasons appear with a first failure: on a loaded machine a first connect
/// may miss its budget in one exporter and not in another.
const MOMENTARY: [&str; 5] = [
    "pulse_postgres_connections",
    "pulse_postgres_oldest_query_start_timestamp_seconds",
    "pulse_postgres_oldest_transaction_start_timestamp_seconds",
    "pulse_check_failures_total",
    "pulse_source_probe_failures_total",
];

/// Whether a series is of one of the shared server's databases other than `postgres`, which
/// the sources connect to. Other test files create and drop theirs while this one runs
/// (scripts/test runs three lanes; seen: the `fan_…` databases of tests/postgres.rs in the
/// unsharded exporter's scrape and not in the shards'), so only `postgres`'s are compared.
fn another_files_database(s: &Series) -> bool {
    s.labels.get("database").is_some_and(|d| d != "postgres")
}

/// The series of a scrape that belong to a source (a `source` label), as `name{labels}`
/// keys, by source. Per-process series (build info, shard, config, scrape time) have none.
fn per_source(m: &Scrape) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for s in m
        .series
        .iter()
        .filter(|s| !MOMENTARY.contains(&s.name.as_str()) && !another_files_database(s))
    {
        let Some(source) = s.labels.get("source") else {
            continue;
        };
        let labels: Vec<String> = s.labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
        out.entry(source.clone()).or_default().insert(format!(
            "{}{{{}}}",
            s.name,
            labels.join(",")
        ));
    }
    out
}

/// Waits until every source the exporter runs is up and every check has succeeded.
async fn settled(e: &Exporter, what: &str) -> Scrape {
    e.wait_for(what, Duration::from_secs(60), |m| {
        let owned = m.get("pulse_shard_sources", &[]).unwrap_or(-1.0) as usize;
        let up = m.find("pulse_source_up", &[]).len();
        let checks = m.find("pulse_check_success", &[]).len();
        up == owned
            && checks == owned
            && m.find("pulse_source_up", &[])
                .iter()
                .all(|s| s.value == 1.0)
            // Every check has succeeded since: what a success publishes is there.
            && m.find("pulse_check_success", &[])
                .iter()
                .all(|s| s.value == 1.0)
    })
    .await
}

#[tokio::test]
async fn three_shards_probe_each_source_once_and_together_serve_what_one_exporter_serves() {
    let text = config(30, "");
    let whole = Exporter::start(&text);
    let shards: Vec<Exporter> = (0..3)
        .map(|i| {
            let index = i.to_string();
            Exporter::start_with(&text, &["--shard.count", "3", "--shard.index", &index], &[])
        })
        .collect();
    let all = per_source(&settled(&whole, "the unsharded exporter").await);
    assert_eq!(all.len(), 33);

    let mut union: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut owners: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let mut owned_by: Vec<BTreeSet<String>> = Vec::new();
    for (i, e) in shards.iter().enumerate() {
        let m = settled(e, &format!("shard {i}")).await;
        assert_eq!(
            m.get(
                "pulse_shard_info",
                &[("shard", &i.to_string()), ("shards", "3")]
            ),
            Some(1.0)
        );
        assert_eq!(m.get("pulse_config_sources", &[]), Some(33.0));
        let mine = per_source(&m);
        assert!(
            (5..=17).contains(&mine.len()),
            "shard {i} runs {} of 33",
            mine.len()
        );
        owned_by.push(mine.keys().cloned().collect());
        for (source, series) in mine {
            owners.entry(source.clone()).or_default().push(i);
            union.entry(source).or_default().extend(series);
        }
        // The landing page says which sources this replica runs.
        let page = e.get("/").await;
        assert!(page.contains(&format!("Shard {i} of 3 (from 0)")), "{page}");
    }
    for (source, by) in &owners {
        assert_eq!(by.len(), 1, "{source} is probed by shards {by:?}");
    }
    let differ: Vec<String> = all
        .iter()
        .filter(|(source, series)| union.get(*source) != Some(series))
        .map(|(source, series)| {
            let theirs = union.get(source).cloned().unwrap_or_default();
            format!(
                "{source}: only unsharded {:?}, only sharded {:?}",
                series.difference(&theirs).collect::<Vec<_>>(),
                theirs.difference(series).collect::<Vec<_>>()
            )
        })
        .collect();
    assert!(
        differ.is_empty(),
        "the shards together serve what one exporter serves: {differ:#?}"
    );
    assert_eq!(union.len(), all.len());

    // `probe` and `check` say which sources a shard runs, and probe only those.
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_temp(dir.path(), "pulse.yml", &text);
    let (code, out, err) = run_cli(
        &[
            "probe",
            "--config.file",
            cfg.to_str().unwrap(),
            "--shard.count",
            "3",
            "--shard.index",
            "1",
        ],
        &[],
    );
    assert_eq!(code, 0, "{out}{err}");
    let first = out.lines().next().unwrap_or_default();
    assert!(
        first.starts_with(&format!(
            "shard 1 of 3 (from 0) runs {} of 33 sources: ",
            owned_by[1].len()
        )),
        "{out}"
    );
    for source in owners.keys() {
        let probed = out
            .lines()
            .skip(1)
            .any(|l| l.split_whitespace().next() == Some(source.as_str()));
        assert_eq!(probed, owned_by[1].contains(source), "{source}: {out}");
    }

    // A source added to the file moves no other: after a reload each shard runs what it ran,
    // and exactly one of them runs the new one too.
    let more = config(30, &format!("  - name: cache-new\n    kind: redis\n    url: {REDIS_URL}\n    latency: false\n    keys: [{{ key: pulse_shard_test_missing, metric: app_shard_key_length, const_labels: {{ cache: cache-new }} }}]\n"));
    for e in &shards {
        e.write_config(&more);
        assert!(e.reload().await.status().is_success());
    }
    let mut new_owners = 0;
    for (i, e) in shards.iter().enumerate() {
        let m = e
            .wait_for("the reloaded config", Duration::from_secs(30), |m| {
                m.get("pulse_config_sources", &[]) == Some(34.0)
            })
            .await;
        let m = if m.get("pulse_shard_sources", &[]) == Some(owned_by[i].len() as f64 + 1.0) {
            new_owners += 1;
            settled(e, "the new source").await
        } else {
            m
        };
        let now: BTreeSet<String> = per_source(&m).keys().cloned().collect();
        let mut expected = owned_by[i].clone();
        if now.contains("cache-new") {
            expected.insert("cache-new".to_owned());
        }
        assert_eq!(now, expected, "shard {i}");
    }
    assert_eq!(new_owners, 1);
}

#[test]
fn a_bad_shard_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_temp(dir.path(), "pulse.yml", &config(1, ""));
    let (code, _, err) = run_cli(
        &[
            "check",
            "--config.file",
            cfg.to_str().unwrap(),
            "--shard.count",
            "3",
            "--shard.index",
            "3",
        ],
        &[("HOSTNAME", "laptop")],
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--shard.index 3 must be below the shard count 3"),
        "{err}"
    );
    // Fewer replicas than shards would leave a shard probed by nobody: refused at start,
    // with the fix.
    let (code, _, err) = run_cli(
        &["check", "--config.file", cfg.to_str().unwrap()],
        &[
            ("PULSE_SHARD_COUNT", "3"),
            ("PULSE_SHARD_REPLICAS", "2"),
            ("HOSTNAME", "pulse-exporter-0"),
        ],
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("shard 2 would run nowhere")
            && err.contains("set the StatefulSet's replicas to 3"),
        "{err}"
    );
    // The count follows the replicas, and the pod-index label wins over the host name; an
    // empty label (a cluster before 1.28) falls back to the host name.
    for (pod_index, hostname, shard) in [("2", "renamed", 2), ("", "pulse-exporter-1", 1)] {
        let (code, out, err) = run_cli(
            &["check", "--config.file", cfg.to_str().unwrap()],
            &[
                ("PULSE_SHARD_REPLICAS", "3"),
                ("PULSE_POD_INDEX", pod_index),
                ("HOSTNAME", hostname),
            ],
        );
        assert_eq!(code, 0, "{err}");
        assert!(
            out.contains(&format!("shard {shard} of 3 (from 0) runs")),
            "{out}"
        );
    }
    let (code, out, err) = run_cli(
        &["check", "--config.file", cfg.to_str().unwrap()],
        &[("PULSE_SHARD_COUNT", "2"), ("HOSTNAME", "pulse-exporter-1")],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("shard 1 of 2 (from 0) runs"), "{out}");
}
