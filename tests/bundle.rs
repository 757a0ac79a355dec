//! The bundle, checked with the real tools: promtool (config, rules, rule unit tests), amtool
//! (config and routes), docker-compose (the compose file), and the dashboards (valid, stable,
//! every expression parses and names only metrics the exporter or a recording rule produces).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use promql_parser::parser::{self, Expr};
use serde_json::Value;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// Runs a tool, failing the test with its output when it fails.
fn run(cmd: &str, args: &[&str], env: &[(&str, &str)]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .envs(env.iter().copied())
        .current_dir(repo(""))
        .output()
        .unwrap_or_else(|e| panic!("{cmd} is required (scripts/test installs it): {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd} {args:?} failed:\n{text}");
    text
}

fn yaml(path: &str) -> serde_yaml::Value {
    serde_yaml::from_str(&std::fs::read_to_string(repo(path)).unwrap()).unwrap()
}

/// Alert rules of alerts/pulse-alerts.yml by name.
fn alert_rules() -> BTreeMap<String, serde_yaml::Value> {
    let mut out = BTreeMap::new();
    for g in yaml("alerts/pulse-alerts.yml")["groups"]
        .as_sequence()
        .unwrap()
    {
        for r in g["rules"].as_sequence().unwrap() {
            out.insert(r["alert"].as_str().unwrap().to_owned(), r.clone());
        }
    }
    out
}

#[test]
fn promtool_accepts_the_config_and_rules_and_every_alert_test_passes() {
    // The layout docker-compose.yml mounts: alerts/ (with alertmanager.yml) beside prometheus.yml.
    let dir = tempfile::tempdir().unwrap();
    let prom = dir.path();
    common::prometheus_layout(prom);
    let out = run(
        "promtool",
        &[
            "check",
            "config",
            prom.join("prometheus.yml").to_str().unwrap(),
        ],
        &[],
    );
    assert!(out.contains("SUCCESS: 2 rule files found"), "{out}");
    run(
        "promtool",
        &[
            "check",
            "rules",
            "alerts/pulse-alerts.yml",
            "prometheus/rules/pulse-recording.yml",
        ],
        &[],
    );
    let out = run(
        "promtool",
        &["test", "rules", "alerts/tests/pulse-alerts.test.yml"],
        &[],
    );
    assert!(out.contains("SUCCESS"), "{out}");

    // Every alert: a runbook section, a firing case with annotations asserted, and (but the
    // Watchdog, which cannot stop firing) a case where it must not fire.
    let runbook = std::fs::read_to_string(repo("alerts/runbook.md")).unwrap();
    let tests = yaml("alerts/tests/pulse-alerts.test.yml");
    let mut firing = BTreeSet::new();
    let mut quiet = BTreeSet::new();
    for t in tests["tests"].as_sequence().unwrap() {
        // A case may test recording rules only (promql_expr_test).
        for a in t["alert_rule_test"].as_sequence().into_iter().flatten() {
            let name = a["alertname"].as_str().unwrap().to_owned();
            let exp = a["exp_alerts"].as_sequence().unwrap();
            if exp.is_empty() {
                quiet.insert(name);
            } else {
                for e in exp {
                    let ann = e["exp_annotations"].as_mapping().unwrap();
                    for key in ["summary", "description", "runbook_url"] {
                        assert!(ann.contains_key(key), "{name}: {key} not asserted");
                    }
                }
                firing.insert(name);
            }
        }
    }
    for (name, rule) in alert_rules() {
        assert!(
            runbook.contains(&format!("\n## {name}\n")),
            "{name} has no runbook section"
        );
        let url = rule["annotations"]["runbook_url"].as_str().unwrap();
        assert!(url.ends_with(&format!("#{}", name.to_lowercase())), "{url}");
        assert!(firing.contains(&name), "{name} has no firing test");
        assert!(
            name == "Watchdog" || quiet.contains(&name),
            "{name} has no non-firing test"
        );
        assert!(
            rule["labels"]["severity"].as_str().is_some(),
            "{name} has no severity"
        );
    }
}

/// `series` (a PromQL selector) with a `pod` label added.
fn with_pod(series: &str, pod: &str) -> String {
    match series.split_once('{') {
        Some((name, rest)) if rest.starts_with('}') => format!("{name}{{pod=\"{pod}\"{rest}"),
        Some((name, rest)) => format!("{name}{{pod=\"{pod}\",{rest}"),
        None => format!("{series}{{pod=\"{pod}\"}}"),
    }
}

#[test]
fn every_alert_case_replayed_by_two_replicas_of_a_shard_fires_once() {
    // Every case of alerts/tests, each input series reported by two replicas of its shard
    // (same values, `pod` apart): each alert must fire exactly as it does from one exporter,
    // once, without `pod`; PulseExporterDown alone is per replica.
    const PODS: [&str; 2] = ["pulse-exporter-0", "pulse-exporter-3"];
    let mut tests = yaml("alerts/tests/pulse-alerts.test.yml");
    tests["rule_files"] = serde_yaml::Value::Sequence(vec![
        repo("alerts/pulse-alerts.yml").to_str().unwrap().into(),
        repo("prometheus/rules/pulse-recording.yml")
            .to_str()
            .unwrap()
            .into(),
    ]);
    let mut replayed = 0;
    for t in tests["tests"].as_sequence_mut().unwrap() {
        let series = t["input_series"].as_sequence().unwrap().clone();
        if series
            .iter()
            .any(|s| s["series"].as_str().unwrap().contains("pod="))
        {
            continue; // already a replica case
        }
        let mut doubled = Vec::new();
        for s in &series {
            // Unquoted, YAML reads `values: 0x90` as the number 144.
            assert!(
                s["values"].is_string() || s["values"].is_null(),
                "quote the values of {:?}",
                s["series"]
            );
            for pod in PODS {
                let mut s = s.clone();
                s["series"] = with_pod(s["series"].as_str().unwrap(), pod).into();
                doubled.push(s);
            }
        }
        t["input_series"] = serde_yaml::Value::Sequence(doubled);
        for a in t["alert_rule_test"].as_sequence_mut().into_iter().flatten() {
            if a["alertname"] != "PulseExporterDown" {
                continue;
            }
            let mut per_pod = Vec::new();
            for e in a["exp_alerts"].as_sequence().unwrap() {
                for pod in PODS {
                    let mut e = e.clone();
                    e["exp_labels"]["pod"] = pod.into();
                    let summary = e["exp_annotations"]["summary"].as_str().unwrap();
                    e["exp_annotations"]["summary"] = summary
                        .replace(
                            " cannot be scraped",
                            &format!(" (pod {pod}) cannot be scraped"),
                        )
                        .into();
                    per_pod.push(e);
                }
            }
            a["exp_alerts"] = serde_yaml::Value::Sequence(per_pod);
        }
        replayed += 1;
    }
    // Every single-exporter case of the file (49 when written).
    assert!(replayed >= 49, "{replayed}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("replicas.test.yml");
    std::fs::write(&file, serde_yaml::to_string(&tests).unwrap()).unwrap();
    let out = run("promtool", &["test", "rules", file.to_str().unwrap()], &[]);
    assert!(out.contains("SUCCESS"), "{out}");
}

#[test]
fn amtool_accepts_the_alertmanager_config_and_routes_by_severity() {
    run("amtool", &["check-config", "alerts/alertmanager.yml"], &[]);
    for (labels, receiver) in [
        (
            vec!["severity=critical", "alertname=PulseSourceDown"],
            "pager",
        ),
        (
            vec!["severity=warning", "alertname=PulseSourceDown"],
            "chat",
        ),
        (
            vec!["severity=none", "alertname=Watchdog"],
            "deadmansswitch",
        ),
        (
            vec!["severity=critical", "alertname=Watchdog"],
            "deadmansswitch",
        ),
        (
            vec!["severity=critical", "alertname=PulseQueueNotDraining"],
            "pager",
        ),
    ] {
        let mut args = vec![
            "config",
            "routes",
            "test",
            "--config.file=alerts/alertmanager.yml",
            "--verify.receivers",
            receiver,
        ];
        args.extend(labels.iter().copied());
        run("amtool", &args, &[]);
    }
    // The exporter being down inhibits per-source alerts of the same instance.
    let am = yaml("alerts/alertmanager.yml");
    let inhibit = &am["inhibit_rules"][0];
    assert_eq!(
        inhibit["source_matchers"][0].as_str(),
        Some("alertname=\"PulseExporterDown\"")
    );
    let targets = inhibit["target_matchers"][0].as_str().unwrap();
    for alert in alert_rules().keys() {
        if alert != "PulseExporterDown" && alert != "Watchdog" {
            let re = regex::Regex::new(&format!(
                "^(?:{})$",
                targets.split_once("=~").unwrap().1.trim_matches('"')
            ))
            .unwrap();
            assert!(
                re.is_match(alert),
                "{alert} is not inhibited by PulseExporterDown"
            );
        }
    }
    // Every inhibition matches on `instance` (one exporter's problem never silences another's),
    // and notifications are grouped per platform: one platform's outage never shares a
    // message with the other's.
    for rule in am["inhibit_rules"].as_sequence().unwrap() {
        assert_eq!(rule["equal"][0].as_str(), Some("instance"), "{rule:?}");
    }
    let group_by: Vec<&str> = am["route"]["group_by"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert!(group_by.contains(&"platform"), "{group_by:?}");
    // An aggregation that dropped `instance` could never be inhibited, so every `by (…)` and
    // `on (…)` of an alert keeps it.
    let grouping = regex::Regex::new(r"\b(?:by|on)\s*\(([^)]*)\)").unwrap();
    for (alert, rule) in alert_rules() {
        let expr = rule["expr"].as_str().unwrap();
        for c in grouping.captures_iter(expr) {
            assert!(
                c[1].split(',').any(|l| l.trim() == "instance"),
                "{alert}: `{}` drops the instance label",
                &c[0]
            );
        }
    }
}

#[test]
fn the_compose_file_is_valid_pinned_and_healthchecked() {
    // Secrets come from the environment (.env): without them the file is refused.
    let env: Vec<(String, String)> = std::fs::read_to_string(repo(".env.example"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && l.contains('='))
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap();
            (k.to_owned(), v.to_owned())
        })
        .collect();
    let env_ref: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    run(
        "docker-compose",
        &["-f", "docker-compose.yml", "config", "-q"],
        &env_ref,
    );
    let out = Command::new("docker-compose")
        .args(["-f", "docker-compose.yml", "config", "-q"])
        .current_dir(repo(""))
        .env_remove("MINIO_ROOT_USER")
        .output()
        .unwrap();
    assert!(!out.status.success(), "a missing setting must be refused");
    assert!(String::from_utf8_lossy(&out.stderr).contains("MINIO_ROOT_USER"));

    let compose = yaml("docker-compose.yml");
    let services = compose["services"].as_mapping().unwrap();
    for want in [
        "pulse-hivesync",
        "pulse-hayon",
        "demo",
        "prometheus",
        "alertmanager",
        "grafana",
        "postgres",
        "mongodb",
        "redis",
        "rabbitmq",
        "minio",
    ] {
        assert!(services.contains_key(want), "{want} missing");
    }
    for (name, svc) in services {
        let name = name.as_str().unwrap();
        let image = svc["image"].as_str().unwrap_or_default();
        // Services built here (directly or through the exporter anchor) carry a local tag.
        let local = svc.get("build").is_some() || svc.get("<<").is_some();
        if !local {
            let tag = image.rsplit_once(':').map(|(_, t)| t).unwrap_or("");
            assert!(
                !tag.is_empty() && tag != "latest" && !tag.contains('/'),
                "{name}: image {image:?} is not pinned"
            );
        }
        for (dep, cond) in svc["depends_on"].as_mapping().into_iter().flatten() {
            assert!(
                cond["condition"].as_str().is_some(),
                "{name} depends on {dep:?} without a condition"
            );
        }
        // Config mounts are read-only.
        for v in svc["volumes"].as_sequence().into_iter().flatten() {
            let v = v.as_str().unwrap();
            if v.starts_with("./") {
                assert!(v.ends_with(":ro"), "{name}: {v} is not read-only");
            }
        }
    }
    for name in [
        "postgres",
        "mongodb",
        "redis",
        "rabbitmq",
        "minio",
        "prometheus",
        "alertmanager",
        "grafana",
    ] {
        assert!(
            compose["services"][name]["healthcheck"]["test"].is_sequence(),
            "{name} has no healthcheck"
        );
    }
    // Passwords reach the services as compose secrets: no environment value interpolates a
    // password from .env, and every connection URL with credentials names a secret file,
    // which the exporters and the demo read themselves (`$$` is compose's escape for `$`).
    let secrets = compose["secrets"].as_mapping().unwrap();
    for (name, svc) in services {
        let name = name.as_str().unwrap();
        for (key, value) in svc["environment"].as_mapping().into_iter().flatten() {
            let (key, value) = (key.as_str().unwrap(), value.as_str().unwrap_or_default());
            assert!(
                !value.contains("PASSWORD}") && !value.contains("KEY}"),
                "{name}: {key} takes a secret from the environment: {value}"
            );
            if value.contains("://") && value.contains('@') {
                assert!(
                    value.contains(":$${file:/run/secrets/"),
                    "{name}: {key} holds credentials that are not a secret file: {value}"
                );
            }
            for reference in value.split("$${file:/run/secrets/").skip(1) {
                let secret = reference.split('}').next().unwrap();
                let mounted: Vec<&str> = svc["secrets"]
                    .as_sequence()
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v.as_str())
                    .collect();
                assert!(
                    secrets.contains_key(secret) && mounted.contains(&secret),
                    "{name}: {key} reads secret {secret}, which is not mounted"
                );
            }
        }
        // Every long-running service restarts (the exporters and the demo through the anchor;
        // the bucket-creating init job runs once).
        if name != "minio-init" {
            let restart = svc["restart"]
                .as_str()
                .or_else(|| compose["x-exporter"]["restart"].as_str());
            assert_eq!(restart, Some("unless-stopped"), "{name}");
        }
    }
    // Prometheus starts without waiting for the exporters (it must be up to say they are
    // down), and scrapes the rest of the alerting path too.
    let prom_deps = compose["services"]["prometheus"]["depends_on"]
        .as_mapping()
        .unwrap();
    assert!(prom_deps
        .keys()
        .all(|k| !k.as_str().unwrap().starts_with("pulse-")));
    let jobs: Vec<String> = yaml("prometheus/prometheus.yml")["scrape_configs"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|j| j["job_name"].as_str().unwrap().to_owned())
        .collect();
    for job in ["pulse-exporter", "prometheus", "alertmanager", "grafana"] {
        assert!(
            jobs.iter().any(|j| j == job),
            "{job} is not scraped: {jobs:?}"
        );
    }
    // The exporter image probes itself with its own subcommand.
    let dockerfile = std::fs::read_to_string(repo("Dockerfile")).unwrap();
    assert!(dockerfile.contains("HEALTHCHECK") && dockerfile.contains("\"healthcheck\""));
    assert!(dockerfile.contains("USER nonroot"));
}

#[test]
fn compose_secrets_writes_every_secret_in_one_run_and_compose_accepts_them() {
    // In a copy of what the script touches, so the repository's own secrets/ and .env stay
    // as they are; stdin is not a terminal, as in CI or a provisioning script.
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("scripts")).unwrap();
    for f in [
        "scripts/compose-secrets",
        "docker-compose.yml",
        ".env.example",
    ] {
        std::fs::copy(repo(f), dir.path().join(f)).unwrap();
    }
    let script = dir.path().join("scripts/compose-secrets");
    let names = [
        "postgres_password",
        "mongo_root_password",
        "rabbitmq_password",
        "minio_root_password",
        "grafana_admin_password",
    ];
    let mut first = Vec::new();
    for round in 0..2 {
        let out = Command::new(&script)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "round {round}: {:?}\n{text}",
            out.status
        );
        for name in names.iter().chain(&["stripe_api_key"]) {
            let path = dir.path().join("secrets").join(name);
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{name}");
            let verb = if round == 0 { "wrote" } else { "kept" };
            assert!(text.contains(&format!("{verb:<8}secrets/{name}")), "{text}");
        }
        let values: Vec<String> = names
            .iter()
            .map(|n| std::fs::read_to_string(dir.path().join("secrets").join(n)).unwrap())
            .collect();
        for (name, v) in names.iter().zip(&values) {
            assert!(
                v.len() == 32 && v.bytes().all(|b| b.is_ascii_alphanumeric()),
                "{name}: 32 letters and digits, got {} bytes",
                v.len()
            );
        }
        if round == 0 {
            first = values;
        } else {
            assert_eq!(values, first, "a second run keeps every secret");
        }
    }
    let distinct: BTreeSet<&String> = first.iter().collect();
    assert_eq!(distinct.len(), names.len(), "each password is its own");
    assert!(dir.path().join(".env").exists());
    let out = Command::new("docker-compose")
        .args(["-f", "docker-compose.yml", "config", "-q"])
        .current_dir(dir.path())
        .output()
        .expect("docker-compose (scripts/test installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Metric names a dashboard may use: the exporter's own (the tables docs/metrics.md is generated
/// from, kept equal to a live scrape by tests/metrics_contract.rs), every `metric:` of the
/// example configs, recording rules, and Prometheus' `up` and `ALERTS`.
fn known_metrics() -> BTreeSet<String> {
    let mut known: BTreeSet<String> = ["up", "ALERTS", "ALERTS_FOR_STATE"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    known.extend(
        pulse_exporter::metrics_reference::all()
            .iter()
            .map(|m| m.name.to_owned()),
    );
    // `metric: NAME` of a check, or inside a check's option (`oldest: { metric: NAME, … }`).
    let metric = regex::Regex::new(r"\bmetric: ([a-zA-Z_:][a-zA-Z0-9_:]*)").unwrap();
    for entry in std::fs::read_dir(repo("examples")).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for line in text.lines() {
            if line.trim_start().starts_with('#') {
                continue;
            }
            for c in metric.captures_iter(line) {
                let m = &c[1];
                known.insert(m.to_owned());
                for suffix in ["_bucket", "_sum", "_count"] {
                    known.insert(format!("{m}{suffix}"));
                }
            }
        }
    }
    for g in yaml("prometheus/rules/pulse-recording.yml")["groups"]
        .as_sequence()
        .unwrap()
    {
        for r in g["rules"].as_sequence().unwrap() {
            known.insert(r["record"].as_str().unwrap().to_owned());
        }
    }
    known
}

/// Every metric name an expression selects.
fn selected(expr: &Expr, out: &mut BTreeSet<String>) {
    match expr {
        Expr::Aggregate(a) => {
            selected(&a.expr, out);
            if let Some(p) = &a.param {
                selected(p, out);
            }
        }
        Expr::Unary(u) => selected(&u.expr, out),
        Expr::Binary(b) => {
            selected(&b.lhs, out);
            selected(&b.rhs, out);
        }
        Expr::Paren(p) => selected(&p.expr, out),
        Expr::Subquery(s) => selected(&s.expr, out),
        Expr::VectorSelector(v) => {
            let name = v.name.clone().or_else(|| {
                v.matchers
                    .matchers
                    .iter()
                    .find(|m| m.name == "__name__")
                    .map(|m| m.value.clone())
            });
            out.insert(name.expect("a selector without a metric name"));
        }
        Expr::MatrixSelector(m) => selected(&Expr::VectorSelector(m.vs.clone()), out),
        Expr::Call(c) => c.args.args.iter().for_each(|a| selected(a, out)),
        _ => {}
    }
}

#[test]
fn dashboards_are_stable_valid_and_use_only_produced_metrics() {
    let known = known_metrics();
    let mut uids = BTreeSet::new();
    let mut used = BTreeSet::new();
    let dir = repo("grafana/dashboards");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("${DS_"), "{path:?} uses a ${{DS_…}} input");
        let board: Value = serde_json::from_str(&text).expect("valid JSON");
        let uid = board["uid"].as_str().unwrap().to_owned();
        assert!(uid.starts_with("pulse-"), "{uid}");
        assert!(uids.insert(uid.clone()), "duplicate uid {uid}");
        assert_eq!(board["refresh"], "30s", "{uid}: 30 s auto-refresh");
        let vars = board["templating"]["list"].as_array().unwrap();
        assert!(vars
            .iter()
            .any(|v| v["name"] == "datasource" && v["type"] == "datasource"));
        let mut ids = BTreeSet::new();
        for p in board["panels"].as_array().unwrap() {
            assert!(
                ids.insert(p["id"].as_i64().unwrap()),
                "{uid}: duplicate panel id"
            );
            if p["type"] == "row" {
                continue;
            }
            let title = p["title"].as_str().unwrap();
            assert!(
                !p["description"].as_str().unwrap_or_default().is_empty(),
                "{uid}/{title}: no description"
            );
            assert!(
                p["fieldConfig"]["defaults"]["unit"].is_string(),
                "{uid}/{title}: no unit"
            );
            assert_eq!(p["datasource"]["uid"], "${datasource}", "{uid}/{title}");
            // Never green on no data.
            assert_eq!(
                p["fieldConfig"]["defaults"]["noValue"], "NO DATA",
                "{uid}/{title}"
            );
            for t in p["targets"].as_array().unwrap() {
                let expr = t["expr"].as_str().unwrap();
                for f in ["rate(", "increase(", "irate("] {
                    if expr.contains(f) {
                        assert!(
                            expr.contains("[$__rate_interval]"),
                            "{uid}/{title}: {f} without $__rate_interval"
                        );
                    }
                }
                let ast = parser::parse(&common::substitute(expr))
                    .unwrap_or_else(|e| panic!("{uid}/{title}: {expr}: {e}"));
                selected(&ast, &mut used);
            }
        }
    }
    assert_eq!(
        uids,
        [
            "pulse-admin-overview",
            "pulse-platform-health",
            "pulse-queues-workers"
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    );
    // Recording rules too: they may use only metrics that exist.
    for g in yaml("prometheus/rules/pulse-recording.yml")["groups"]
        .as_sequence()
        .unwrap()
    {
        for r in g["rules"].as_sequence().unwrap() {
            let ast = parser::parse(r["expr"].as_str().unwrap()).unwrap();
            selected(&ast, &mut used);
        }
    }
    let unknown: Vec<&String> = used.iter().filter(|m| !known.contains(*m)).collect();
    assert!(
        unknown.is_empty(),
        "not produced by the exporter or a rule: {unknown:?}"
    );
    // Every query of the exporter's series folds the replicas of a shard (Kubernetes, two
    // replicas per shard), so no sum counts a source twice and no join meets duplicates.
    for file in ["admin-overview", "platform-health", "queues-workers"] {
        let text = std::fs::read_to_string(dir.join(format!("{file}.json"))).unwrap();
        let board: Value = serde_json::from_str(&text).unwrap();
        let mut exprs = Vec::new();
        collect_exprs(&board, &mut exprs);
        // ALERTS come from the rules, which fold the replicas themselves.
        for e in exprs
            .iter()
            .filter(|e| e.contains("platform=~\"$platform\"") && !e.contains("ALERTS"))
        {
            assert!(
                e.contains("max without (pod) ("),
                "{file}: {e} counts replicas apart"
            );
        }
    }
    // Every stat panel says DEGRADED (-1) when the check or source behind it fails, and NO DATA
    // when nothing arrives; the `… up` panels show the source's own state as UP / DOWN.
    let mut guarded = Vec::new();
    for file in ["admin-overview", "platform-health", "queues-workers"] {
        let board: Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join(format!("{file}.json"))).unwrap(),
        )
        .unwrap();
        for p in board["panels"].as_array().unwrap() {
            if p["type"] != "stat" {
                continue;
            }
            let title = p["title"].as_str().unwrap();
            let defaults = &p["fieldConfig"]["defaults"];
            assert_eq!(defaults["noValue"], "NO DATA", "{file}/{title}");
            let mappings = defaults["mappings"].to_string();
            let exprs: Vec<&str> = p["targets"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["expr"].as_str().unwrap())
                .collect();
            if exprs
                .iter()
                .all(|e| e.starts_with("max without (pod) (pulse_source_up{"))
            {
                assert!(mappings.contains("DOWN"), "{file}/{title}");
                continue;
            }
            assert!(mappings.contains("DEGRADED"), "{file}/{title}");
            for e in exprs {
                assert!(
                    e.contains("pulse_source_up") && e.contains("== 0) - 1"),
                    "{file}/{title}: {e} is not guarded"
                );
            }
            guarded.push(format!("{file}/{title}"));
        }
    }
    // The six summary cards, the growth row, the content row, the cost estimate, dead
    // letters, workers, and the Stripe endpoints, endpoint count, oldest undelivered event and
    // abandoned events.
    assert_eq!(guarded.len(), 39, "{guarded:?}");
}

#[test]
fn committed_dashboards_are_what_the_generator_writes() {
    let dir = tempfile::tempdir().unwrap();
    run(
        "python3",
        &["scripts/dashboards.py", dir.path().to_str().unwrap()],
        &[],
    );
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_owned();
        let committed = std::fs::read_to_string(repo("grafana/dashboards").join(&name)).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            committed,
            "grafana/dashboards/{name:?} differs from scripts/dashboards.py's output: rerun it"
        );
    }
}

/// Every `expr` string anywhere in a dashboard (panels, rows, variables).
fn collect_exprs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(e)) = m.get("expr") {
                out.push(e.clone());
            }
            m.values().for_each(|x| collect_exprs(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| collect_exprs(x, out)),
        _ => {}
    }
}

/// Labels of an alert as Alertmanager receives it from the bundle's Prometheus.
fn alert(labels: &[(&str, &str)]) -> Value {
    let mut l: serde_json::Map<String, Value> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), Value::from(*v)))
        .collect();
    l.insert("job".into(), "pulse-exporter".into());
    l.insert("platform".into(), "hivesync".into());
    serde_json::json!({ "labels": l })
}

#[tokio::test]
async fn one_cause_notifies_once_the_inhibitions_silence_what_it_explains() {
    // The repository's Alertmanager, sent the alerts one cause raises together: each alert a
    // cause explains is inhibited, the cause itself and unrelated alerts are not.
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let log = dir.path().join("alertmanager.log");
    let _am = common::spawn(
        "prometheus-alertmanager",
        &[
            &format!(
                "--config.file={}",
                repo("alerts/alertmanager.yml").display()
            ),
            &format!("--storage.path={}", dir.path().display()),
            &format!("--web.listen-address=127.0.0.1:{port}"),
            "--cluster.listen-address=",
        ],
        &log,
    );
    let am = format!("http://127.0.0.1:{port}");
    common::wait_ready(&format!("{am}/-/ready"), "Alertmanager", &log).await;
    let i = ("instance", "pulse:7857");
    let other = ("instance", "pulse:7858");
    let alerts = vec![
        // The Redis holding the queues is down: its flapping and slowness, and every queue
        // and worker alert of its exporter, are explained by it.
        alert(&[
            ("alertname", "PulseSourceDown"),
            i,
            ("source", "queue-cache"),
            ("kind", "redis"),
            ("tier", "queue"),
            ("severity", "critical"),
        ]),
        alert(&[
            ("alertname", "PulseSourceFlapping"),
            i,
            ("source", "queue-cache"),
            ("kind", "redis"),
            ("tier", "queue"),
            ("severity", "critical"),
        ]),
        alert(&[
            ("alertname", "PulseSourceSlow"),
            i,
            ("source", "queue-cache"),
            ("kind", "redis"),
            ("severity", "warning"),
        ]),
        alert(&[
            ("alertname", "PulseWorkerPoolDown"),
            i,
            ("source", "queue-cache"),
            ("pool", "gpu"),
            ("severity", "critical"),
        ]),
        alert(&[
            ("alertname", "PulseJobsNotProcessed"),
            i,
            ("queue", "ai"),
            ("severity", "critical"),
        ]),
        // A source of another tier down explains only its own probes.
        alert(&[
            ("alertname", "PulseSourceDown"),
            other,
            ("source", "cache"),
            ("kind", "redis"),
            ("tier", "cache"),
            ("severity", "warning"),
        ]),
        alert(&[
            ("alertname", "PulseSourceSlow"),
            other,
            ("source", "cache"),
            ("kind", "redis"),
            ("severity", "warning"),
        ]),
        alert(&[
            ("alertname", "PulseWorkerPoolBelowMinimum"),
            other,
            ("source", "workers"),
            ("pool", "cpu"),
            ("severity", "warning"),
        ]),
        // A pool down on the other exporter silences its jobs alerts.
        alert(&[
            ("alertname", "PulseWorkerPoolDown"),
            other,
            ("source", "workers"),
            ("pool", "gpu"),
            ("severity", "critical"),
        ]),
        alert(&[
            ("alertname", "PulseOldestJobTooOld"),
            other,
            ("queue", "ai"),
            ("severity", "critical"),
        ]),
        // Evicting explains memory near maxmemory; a stopped standby its lag; no primary the
        // old primary reading down.
        alert(&[
            ("alertname", "PulseRedisEvictingKeys"),
            other,
            ("source", "sessions"),
            ("severity", "warning"),
        ]),
        alert(&[
            ("alertname", "PulseRedisMemoryNearMax"),
            other,
            ("source", "sessions"),
            ("severity", "warning"),
        ]),
        alert(&[
            ("alertname", "PulsePostgresReplicationStopped"),
            i,
            ("source", "app-replica"),
            ("severity", "critical"),
        ]),
        alert(&[
            ("alertname", "PulsePostgresReplicationLag"),
            i,
            ("source", "app-replica"),
            ("severity", "critical"),
        ]),
        alert(&[
            ("alertname", "PulseMongodbReplicaSetNoPrimary"),
            other,
            ("source", "users-db"),
            ("set", "rs0"),
            ("severity", "critical"),
        ]),
        alert(&[
            ("alertname", "PulseMongodbReplicaSetMemberUnhealthy"),
            other,
            ("source", "users-db"),
            ("set", "rs0"),
            ("member", "db-0:27017"),
            ("severity", "critical"),
        ]),
    ];
    let http = reqwest::Client::new();
    let sent = http
        .post(format!("{am}/api/v2/alerts"))
        .json(&alerts)
        .send()
        .await
        .unwrap();
    assert!(sent.status().is_success(), "{}", sent.text().await.unwrap());
    let expected_inhibited: BTreeSet<String> = [
        "PulseSourceFlapping pulse:7857",
        "PulseSourceSlow pulse:7857",
        "PulseWorkerPoolDown pulse:7857",
        "PulseJobsNotProcessed pulse:7857",
        "PulseSourceSlow pulse:7858",
        "PulseOldestJobTooOld pulse:7858",
        "PulseRedisMemoryNearMax pulse:7858",
        "PulsePostgresReplicationLag pulse:7857",
        "PulseMongodbReplicaSetMemberUnhealthy pulse:7858",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    let mut inhibited = BTreeSet::new();
    for _ in 0..50 {
        let listed: Vec<Value> = http
            .get(format!("{am}/api/v2/alerts"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(listed.len(), alerts.len(), "{listed:?}");
        inhibited = listed
            .iter()
            .filter(|a| {
                a["status"]["inhibitedBy"]
                    .as_array()
                    .is_some_and(|b| !b.is_empty())
            })
            .map(|a| {
                format!(
                    "{} {}",
                    a["labels"]["alertname"].as_str().unwrap(),
                    a["labels"]["instance"].as_str().unwrap()
                )
            })
            .collect();
        if inhibited == expected_inhibited {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(inhibited, expected_inhibited);
}
