//! The bundle's files as the end-to-end and bundle tests read them: dashboard panels and their
//! expressions, the demo's target flags, and the Prometheus directory layout compose mounts.

use std::path::Path;

use super::cleanup::Cleanup;

/// The recording rule files, `prometheus/rules/*.yml`, as sorted paths from the repository's
/// root: what Prometheus loads beside alerts/pulse-alerts.yml.
pub fn recording_rule_files() -> Vec<String> {
    let dir = super::repo().join("prometheus/rules");
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|f| f.ends_with(".yml"))
        .map(|f| format!("prometheus/rules/{f}"))
        .collect();
    files.sort();
    files
}

/// Removes what `demo` made under the target names of [`demo_target_args`] (its Postgres
/// schema, MongoDB database, Redis keys and RabbitMQ queues) when dropped.
pub fn demo_cleanup(name: &str) -> Cleanup {
    let mut c = Cleanup::default()
        .pg(format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
        .mongo_database(name)
        .redis_keys(format!("{name}:*"));
    for q in ["scheduled_posts", "scheduled_posts.dlq", "_pulse_demo"] {
        c = c.rabbit_queue("/", format!("{name}.{q}"));
    }
    c
}

/// A panel expression as Prometheus receives it: Grafana's variables substituted (the
/// dashboards' `platform` and `instance` variables as "All", which Grafana sends as `.*`).
pub fn substitute(expr: &str) -> String {
    expr.replace("$__rate_interval", "1m")
        .replace("$__interval", "1m")
        .replace("$__range", "1h")
        .replace("$platform", ".*")
        .replace("$instance", ".*")
}

/// (dashboard uid, panel title, expressions) of every panel but rows; panels without queries
/// (the alert list) have no expressions.
pub fn panels() -> Vec<(String, String, Vec<String>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(super::repo().join("grafana/dashboards")).unwrap() {
        let board: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap()).unwrap();
        for p in board["panels"].as_array().unwrap() {
            if p["type"] == "row" {
                continue;
            }
            let exprs: Vec<String> = p["targets"]
                .as_array()
                .map(|targets| {
                    targets
                        .iter()
                        .map(|t| t["expr"].as_str().unwrap().to_owned())
                        .collect()
                })
                .unwrap_or_default();
            out.push((
                board["uid"].as_str().unwrap().to_owned(),
                p["title"].as_str().unwrap().to_owned(),
                exprs,
            ));
        }
    }
    out
}

/// `demo` flags that point each of its targets (schema, database, key prefix, queue prefix)
/// at names made from `name`, and its log files at `log_dir`.
pub fn demo_target_args(name: &str, log_dir: &Path) -> Vec<String> {
    [
        "--postgres-schema",
        name,
        "--mongodb-database",
        name,
        "--redis-prefix",
        &format!("{name}:"),
        "--amqp-prefix",
        &format!("{name}."),
        "--log-dir",
        &log_dir.display().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Lays out `dir` as docker-compose.yml mounts /etc/prometheus: prometheus.yml, rules/ and the
/// whole alerts/ folder (Alertmanager's config and the rule tests included).
pub fn prometheus_layout(dir: &Path) {
    let repo = &super::repo();
    std::fs::create_dir_all(dir).unwrap();
    std::fs::copy(
        repo.join("prometheus/prometheus.yml"),
        dir.join("prometheus.yml"),
    )
    .unwrap();
    copy_tree(&repo.join("prometheus/rules"), &dir.join("rules"));
    copy_tree(&repo.join("alerts"), &dir.join("alerts"));
}

/// Copies a file, or a folder and everything below it, creating `to`'s parent folders.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    if from.is_dir() {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            copy_tree(&entry.path(), &to.join(entry.file_name()));
        }
    } else {
        std::fs::copy(from, to).unwrap();
    }
}
