//! Running on Kubernetes: the config reloads itself when the kubelet swaps a mounted
//! ConfigMap or Secret (against the real Redis); and deploy/kubernetes renders with kubectl,
//! validates against the Kubernetes schemas, holds exactly the bundle's rules, dashboards and
//! routing (scripts/kubernetes.py), and its config loads. The Helm chart's tests are in
//! `kubernetes/helm.rs`, beside the overlays they compare with.

use pulse_test_support as common;
#[path = "kubernetes/helm.rs"]
mod helm;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;

fn redis_config(extra: &str) -> String {
    format!(
        "global: {{ health_interval: 1s, health_timeout: 800ms }}\nsources:\n  - name: cache\n    kind: redis\n    url: {REDIS_URL}\n    checks:\n      - metric: app_dbsize\n        command: [DBSIZE]\n        interval: 1s\n        timeout: 800ms\n{extra}"
    )
}

/// A directory laid out as the kubelet lays out a ConfigMap volume: `name -> ..data/name`,
/// `..data -> ..<version>/`, updated by pointing `..data` at a new version atomically.
struct KubeletVolume {
    dir: PathBuf,
    name: &'static str,
    version: u32,
}

impl KubeletVolume {
    /// Replaces the exporter's config file with this layout holding `content`.
    fn take_over(file: &Path, content: &str) -> KubeletVolume {
        let dir = file.parent().unwrap().to_path_buf();
        std::fs::remove_file(file).unwrap();
        let mut v = KubeletVolume {
            dir,
            name: "pulse.yml",
            version: 0,
        };
        v.update(content);
        std::os::unix::fs::symlink(format!("..data/{}", v.name), file).unwrap();
        v
    }

    fn update(&mut self, content: &str) {
        self.version += 1;
        let version = self.dir.join(format!("..2026_11_23_{}", self.version));
        std::fs::create_dir(&version).unwrap();
        std::fs::write(version.join(self.name), content).unwrap();
        let tmp = self.dir.join("..data_tmp");
        std::os::unix::fs::symlink(&version, &tmp).unwrap();
        std::fs::rename(&tmp, self.dir.join("..data")).unwrap();
    }
}

#[tokio::test]
async fn a_swapped_configmap_or_rotated_secret_reloads_without_a_signal() {
    let e = Exporter::start_with(
        &redis_config(""),
        &["--config.auto-reload-interval", "1s"],
        &[],
    );
    e.wait_for("first run", Duration::from_secs(10), |m| {
        m.get("app_dbsize", &[]).is_some()
    })
    .await;
    let mut volume = KubeletVolume::take_over(&e.config_path, &redis_config(""));

    // A new check arrives as the kubelet delivers a ConfigMap update: nobody signals.
    volume.update(&redis_config(
        "      - metric: app_dbsize_again\n        command: [DBSIZE]\n        interval: 1s\n        timeout: 800ms\n",
    ));
    e.wait_for("the new check", Duration::from_secs(15), |m| {
        m.get("app_dbsize_again", &[]).is_some()
    })
    .await;
    assert!(e.logs().contains("event=config.changed"), "{}", e.logs());

    // A secret the config reads changes (a rotated password): the config text is the same.
    let secret = e.dir.path().join("db-number");
    std::fs::write(&secret, "0").unwrap();
    let with_secret = |extra: &str| {
        redis_config(extra).replace(
            &*REDIS_URL,
            &format!("{REDIS_URL}/${{file:{}}}", secret.display()),
        )
    };
    volume.update(&with_secret(""));
    e.wait_for("the secret-reading config", Duration::from_secs(15), |m| {
        m.get("app_dbsize_again", &[]).is_none() && m.get("app_dbsize", &[]).is_some()
    })
    .await;
    let reloads = |logs: &str| logs.matches("event=config.reloaded").count();
    let before = reloads(&e.logs());
    std::fs::write(&secret, "1").unwrap();
    let start = std::time::Instant::now();
    while reloads(&e.logs()) == before {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "no reload after the secret changed: {}",
            e.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A broken update keeps the running config, and is logged once, not every interval.
    volume.update("sources:\n  - name: cache\n    kind: redis\n    bogus: 1\n");
    let m = e
        .wait_for("the rejected reload", Duration::from_secs(15), |m| {
            m.get("pulse_config_last_reload_successful", &[]) == Some(0.0)
        })
        .await;
    assert!(m.get("app_dbsize", &[]).is_some(), "the old config runs on");
    tokio::time::sleep(Duration::from_secs(4)).await;
    let logs = e.logs();
    assert_eq!(
        logs.matches("event=config.reload_failed").count(),
        1,
        "{logs}"
    );
    assert!(logs.contains("sources[0].bogus"), "{logs}");
    assert!(
        !logs.contains("\"1\""),
        "the secret's value is never logged"
    );
}

#[test]
fn a_bad_auto_reload_interval_is_refused_with_the_fix() {
    for (value, says) in [
        ("soon", "write a duration such as 30s"),
        ("10ms", "must be 0s (off) or at least 1s"),
    ] {
        let (code, _out, err) = run_cli(
            // The server's flag, before the subcommand as the server reads it.
            &[
                "--config.auto-reload-interval",
                value,
                "check",
                "--config.file",
                "examples/local.yml",
            ],
            &[],
        );
        assert_eq!(code, 2, "{err}");
        assert!(
            err.contains("--config.auto-reload-interval") && err.contains(says),
            "{err}"
        );
    }
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs a command in the repository, returning its stdout or panicking with its stderr.
fn run(program: &str, args: &[&str]) -> String {
    run_ok(
        Command::new(program).args(args).current_dir(repo()),
        &format!("{program} {args:?}"),
    )
}

/// The objects `kubectl kustomize` renders for an overlay.
fn render(overlay: &str) -> Vec<serde_yaml::Value> {
    let text = run(
        "kubectl",
        &[
            "kustomize",
            &format!("deploy/kubernetes/overlays/{overlay}"),
        ],
    );
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect()
}

fn kind<'a>(objects: &'a [serde_yaml::Value], kind: &str) -> Vec<&'a serde_yaml::Value> {
    objects.iter().filter(|o| o["kind"] == kind).collect()
}

fn one<'a>(objects: &'a [serde_yaml::Value], k: &str) -> &'a serde_yaml::Value {
    let found = kind(objects, k);
    assert_eq!(found.len(), 1, "one {k} expected");
    found[0]
}

fn read_yaml(path: &str) -> serde_yaml::Value {
    serde_yaml::from_str(&std::fs::read_to_string(repo().join(path)).unwrap()).unwrap()
}

/// Validates `objects` against the Kubernetes 1.31 OpenAPI schemas, rejecting unknown fields.
fn validate(objects: &[&serde_yaml::Value]) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("objects.yaml");
    let text: Vec<String> = objects
        .iter()
        .map(|o| serde_yaml::to_string(o).unwrap())
        .collect();
    std::fs::write(&file, text.join("---\n")).unwrap();
    let out = Command::new("kubernetes-validate")
        .args(["--strict", "--quiet", "-k", "1.31.0"])
        .arg(&file)
        .output()
        .expect("kubernetes-validate (scripts/test installs it from PyPI)");
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Validates the prometheus-operator objects among `objects` against the operator's CRD
/// schemas (`@kubernetes-models/prometheus-operator`, installed by `npm ci` in
/// tests/operator-schema).
fn validate_operator(objects: &[&serde_yaml::Value]) -> Result<String, String> {
    let dir = repo().join("tests/operator-schema");
    assert!(
        dir.join("node_modules/@kubernetes-models/prometheus-operator")
            .exists(),
        "scripts/test runs `npm ci` in {}",
        dir.display()
    );
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("objects.json");
    std::fs::write(&file, serde_json::to_string(objects).unwrap()).unwrap();
    let out = Command::new("node")
        .arg(dir.join("validate.mjs"))
        .arg(&file)
        .output()
        .expect("node (scripts/test installs nodejs)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(text)
    } else {
        Err(text)
    }
}

#[test]
fn both_overlays_render_valid_objects_that_hold_the_bundle() {
    let dashboards: Vec<PathBuf> = std::fs::read_dir(repo().join("grafana/dashboards"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    for (overlay, replicas) in [("single", 1), ("sharded", 3)] {
        let objects = render(overlay);
        let core: Vec<&serde_yaml::Value> = objects
            .iter()
            .filter(|o| {
                !o["apiVersion"]
                    .as_str()
                    .unwrap()
                    .starts_with("monitoring.coreos.com/")
            })
            .collect();
        validate(&core).unwrap_or_else(|e| panic!("{overlay}: {e}"));
        let operator: Vec<&serde_yaml::Value> = objects
            .iter()
            .filter(|o| {
                o["apiVersion"]
                    .as_str()
                    .unwrap()
                    .starts_with("monitoring.coreos.com/")
            })
            .collect();
        let report = validate_operator(&operator).unwrap_or_else(|e| panic!("{overlay}: {e}"));
        assert_eq!(
            report.matches("valid monitoring.coreos.com/").count(),
            6,
            "{overlay}: the ServiceMonitor, four PrometheusRules (alerts, recording, business, latency) and the AlertmanagerConfig: {report}"
        );

        // The workload: its replicas and shards, probes, a locked-down container, and
        // passwords only in files.
        let sts = one(&objects, "StatefulSet");
        assert_eq!(sts["spec"]["replicas"], replicas, "{overlay}");
        let pod = &sts["spec"]["template"]["spec"];
        let c = &pod["containers"][0];
        // The replicas reach the exporter (the shard count follows them, so the two cannot
        // disagree), and the pod's ordinal comes from the StatefulSet's pod-index label.
        let env = c["env"].as_sequence().unwrap();
        let var = |name: &str| {
            env.iter()
                .find(|e| e["name"] == name)
                .unwrap_or_else(|| panic!("{overlay}: no {name} in {env:?}"))
        };
        assert_eq!(env.len(), 2, "{overlay}: {env:?}");
        assert_eq!(
            var("PULSE_SHARD_REPLICAS")["value"],
            replicas.to_string(),
            "{overlay}"
        );
        assert_eq!(
            var("PULSE_POD_INDEX")["valueFrom"]["fieldRef"]["fieldPath"],
            "metadata.labels['apps.kubernetes.io/pod-index']"
        );
        assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/-/ready");
        assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/-/healthy");
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
        assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
        assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
        for k in ["requests", "limits"] {
            for r in ["cpu", "memory"] {
                assert!(c["resources"][k][r].is_string(), "{overlay}: {k}.{r}");
            }
        }
        let args: Vec<&str> = c["args"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        assert!(
            args.contains(&"--config.auto-reload-interval=30s"),
            "{args:?}"
        );
        assert_eq!(
            pod["volumes"][1]["secret"]["secretName"],
            "pulse-exporter-secrets"
        );

        // Only Prometheus may reach the metrics port.
        let np = one(&objects, "NetworkPolicy");
        assert_eq!(np["spec"]["ingress"].as_sequence().unwrap().len(), 1);
        assert_eq!(
            np["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"]
                ["app.kubernetes.io/name"],
            "prometheus"
        );
        assert_eq!(np["spec"]["ingress"][0]["ports"][0]["port"], "metrics");
        // Out: every source kind's documented ports, plain and TLS, to any address (managed
        // services sit on private addresses and in other namespaces), DNS including NodeLocal
        // DNSCache, and the credential endpoints.
        let egress = np["spec"]["egress"].as_sequence().unwrap();
        let open_ports: Vec<i64> = egress
            .iter()
            .filter(|r| r["to"].is_null())
            .flat_map(|r| r["ports"].as_sequence().unwrap())
            .map(|p| p["port"].as_i64().unwrap())
            .collect();
        for (kind, ports) in [
            ("postgres", &[5432][..]),
            ("redis", &[6379, 6380]),
            ("rabbitmq", &[5672, 5671, 15672, 15671]),
            ("mongodb", &[27017]),
            ("stripe and s3", &[443]),
            ("s3 on MinIO", &[9000]),
        ] {
            for port in ports {
                assert!(
                    open_ports.contains(port),
                    "{overlay}: {kind} port {port} is not open: {open_ports:?}"
                );
            }
        }
        let cidrs: Vec<&str> = egress
            .iter()
            .flat_map(|r| r["to"].as_sequence().into_iter().flatten())
            .filter_map(|t| t["ipBlock"]["cidr"].as_str())
            .collect();
        for cidr in [
            "169.254.20.10/32",
            "169.254.169.254/32",
            "169.254.170.23/32",
            "fd00:ec2::23/128",
        ] {
            assert!(cidrs.contains(&cidr), "{overlay}: no egress to {cidr}");
        }
        one(&objects, "PodDisruptionBudget");
        // The objects kube-prometheus-stack selects carry its `release` label (set once, in
        // the component), and the dashboards its folder annotation.
        for k in ["ServiceMonitor", "PrometheusRule", "AlertmanagerConfig"] {
            for o in kind(&objects, k) {
                assert_eq!(
                    o["metadata"]["labels"]["release"], "kube-prometheus-stack",
                    "{overlay}: {k} {:?}",
                    o["metadata"]["name"]
                );
            }
        }
        let sm = one(&objects, "ServiceMonitor");
        assert_eq!(sm["spec"]["endpoints"][0]["port"], "metrics");
        // Every series gets the Service's `platform`, as compose targets get theirs.
        assert_eq!(sm["spec"]["targetLabels"][0], "platform", "{overlay}");
        let service = one(&objects, "Service");
        assert!(
            service["metadata"]["labels"]["platform"].is_string(),
            "{overlay}: the Service has no platform label"
        );
        // The image is a placeholder to substitute, never a name that might resolve.
        let image = c["image"].as_str().unwrap();
        assert!(
            image.starts_with("registry.example.com/pulse-exporter:"),
            "{overlay}: {image}"
        );
        one(&objects, "AlertmanagerConfig");

        // The rules are exactly the bundle's files, and promtool accepts them.
        let rules = kind(&objects, "PrometheusRule");
        let mut files = vec!["alerts/pulse-alerts.yml".to_owned()];
        files.extend(recording_rule_files());
        assert_eq!(rules.len(), files.len(), "one PrometheusRule per rule file");
        let dir = tempfile::tempdir().unwrap();
        for file in &files {
            let stem = Path::new(file).file_stem().unwrap().to_str().unwrap();
            // Named as the chart names them: pulse-alerts.yml is pulse-exporter-alerts.
            let name = format!("pulse-exporter-{}", stem.trim_start_matches("pulse-"));
            let rule = rules
                .iter()
                .find(|r| r["metadata"]["name"] == name.as_str())
                .unwrap_or_else(|| panic!("no PrometheusRule {name} for {file}"));
            // Each rule carries the overlay's namespace, for the AlertmanagerConfig's routes;
            // without it, the rules are the file's.
            let mut groups = rule["spec"]["groups"].clone();
            for group in groups.as_sequence_mut().unwrap() {
                for r in group["rules"].as_sequence_mut().unwrap() {
                    let labels = r["labels"].as_mapping_mut().unwrap();
                    assert_eq!(
                        labels.remove("namespace").as_ref().and_then(|v| v.as_str()),
                        Some("monitoring"),
                        "{overlay}: {stem}: a rule without the namespace label: {r:?}"
                    );
                    if labels.is_empty() {
                        r.as_mapping_mut().unwrap().remove("labels");
                    }
                }
            }
            assert_eq!(
                groups,
                read_yaml(file)["groups"],
                "{overlay}: the PrometheusRule {stem} differs from {file}: run python3 scripts/kubernetes.py"
            );
            let out = dir.path().join(format!("{stem}.yml"));
            std::fs::write(&out, serde_yaml::to_string(&rule["spec"]).unwrap()).unwrap();
            run("promtool", &["check", "rules", out.to_str().unwrap()]);
        }

        // A dashboard ConfigMap per dashboard, labelled for the sidecar, holding its JSON.
        let boards: Vec<&serde_yaml::Value> = kind(&objects, "ConfigMap")
            .into_iter()
            .filter(|m| m["metadata"]["labels"]["grafana_dashboard"] == "1")
            .collect();
        assert_eq!(boards.len(), dashboards.len(), "{overlay}");
        for b in &boards {
            assert_eq!(b["metadata"]["annotations"]["grafana_folder"], "Pulse");
        }
        for path in &dashboards {
            let name = path.file_name().unwrap().to_str().unwrap();
            let board = boards
                .iter()
                .find(|b| b["data"][name].is_string())
                .unwrap_or_else(|| panic!("no ConfigMap holds {name}"));
            let held: serde_json::Value =
                serde_json::from_str(board["data"][name].as_str().unwrap()).unwrap();
            let file: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
            assert_eq!(held, file, "{name}");
        }

        // The config the ConfigMap holds loads, with the Secret's keys as files.
        let config = kind(&objects, "ConfigMap")
            .into_iter()
            .find(|m| m["metadata"]["name"] == "pulse-exporter-config")
            .unwrap();
        let text = config["data"]["config.yml"].as_str().unwrap();
        let (_secrets, file) = config_with_stand_in_secrets(text, "s3cret-value");
        let (code, out, err) = run_cli(&["check", "--config.file", file.to_str().unwrap()], &[]);
        assert_eq!(code, 0, "{out}{err}");
        assert!(!format!("{out}{err}").contains("s3cret-value"));
        // Each pod, given the environment the StatefulSet gives it, runs its own shard of
        // as many as there are replicas.
        for ordinal in 0..replicas {
            let (code, out, err) = run_cli(
                &["check", "--config.file", file.to_str().unwrap()],
                &[
                    ("PULSE_SHARD_REPLICAS", &replicas.to_string()),
                    ("PULSE_POD_INDEX", &ordinal.to_string()),
                    ("HOSTNAME", "not-a-pod-name"),
                ],
            );
            assert_eq!(code, 0, "{overlay} pod {ordinal}: {out}{err}");
            if replicas > 1 {
                assert!(
                    out.contains(&format!("shard {ordinal} of {replicas} (from 0) runs")),
                    "{overlay} pod {ordinal}: {out}"
                );
            }
        }
    }
}

/// An AlertmanagerConfig route as the Prometheus Operator writes it into Alertmanager's
/// config: receivers named `namespace/object/receiver`, matchers as strings.
fn operator_route(r: &serde_yaml::Value, prefix: &str) -> serde_yaml::Value {
    let mut out = serde_yaml::Mapping::new();
    if let Some(receiver) = r["receiver"].as_str() {
        out.insert("receiver".into(), format!("{prefix}{receiver}").into());
    }
    for (from, to) in [
        ("groupBy", "group_by"),
        ("groupWait", "group_wait"),
        ("groupInterval", "group_interval"),
        ("repeatInterval", "repeat_interval"),
        ("continue", "continue"),
    ] {
        if !r[from].is_null() {
            out.insert(to.into(), r[from].clone());
        }
    }
    let matchers: Vec<serde_yaml::Value> = r["matchers"]
        .as_sequence()
        .map(|m| {
            m.iter()
                .map(|m| {
                    let (name, op, value) = (&m["name"], &m["matchType"], &m["value"]);
                    format!(
                        "{}{}\"{}\"",
                        name.as_str().unwrap(),
                        op.as_str().unwrap(),
                        value.as_str().unwrap()
                    )
                    .into()
                })
                .collect()
        })
        .unwrap_or_default();
    if !matchers.is_empty() {
        out.insert("matchers".into(), matchers.into());
    }
    if let Some(routes) = r["routes"].as_sequence() {
        let routes: Vec<serde_yaml::Value> =
            routes.iter().map(|x| operator_route(x, prefix)).collect();
        out.insert("routes".into(), routes.into());
    }
    out.into()
}

#[test]
fn in_a_shared_namespace_only_the_bundles_alerts_reach_its_receivers() {
    // kube-prometheus-stack's default Alertmanager config with the operator's merge of the
    // AlertmanagerConfig: its top route first, with the namespace matcher added and
    // `continue: true`, then the chart's own routes (its Watchdog to "null").
    let objects = render("single");
    let amc = one(&objects, "AlertmanagerConfig");
    let ns = "monitoring";
    let prefix = format!("{ns}/{}/", amc["metadata"]["name"].as_str().unwrap());
    let mut top = operator_route(&amc["spec"]["route"], &prefix);
    let matchers = top
        .as_mapping_mut()
        .unwrap()
        .entry("matchers".into())
        .or_insert_with(|| serde_yaml::Value::Sequence(Vec::new()));
    let matchers = matchers.as_sequence_mut().unwrap();
    matchers.insert(0, format!("namespace=\"{ns}\"").into());
    top["continue"] = true.into();
    let mut receivers = vec![serde_yaml::from_str::<serde_yaml::Value>("name: \"null\"").unwrap()];
    for r in amc["spec"]["receivers"].as_sequence().unwrap() {
        receivers.push(
            serde_yaml::from_str(&format!(
                "{{ name: \"{prefix}{}\", webhook_configs: [{{ url: \"http://127.0.0.1:9/\" }}] }}",
                r["name"].as_str().unwrap()
            ))
            .unwrap(),
        );
    }
    let chart_watchdog: serde_yaml::Value =
        serde_yaml::from_str("{ receiver: \"null\", matchers: [alertname = \"Watchdog\"] }")
            .unwrap();
    let mut config = serde_yaml::Mapping::new();
    let mut root = serde_yaml::Mapping::new();
    root.insert("receiver".into(), "null".into());
    root.insert("group_by".into(), vec!["namespace"].into());
    root.insert("routes".into(), vec![top, chart_watchdog].into());
    config.insert("route".into(), root.into());
    config.insert("receivers".into(), receivers.into());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("alertmanager.yml");
    std::fs::write(&file, serde_yaml::to_string(&config).unwrap()).unwrap();
    run("amtool", &["check-config", file.to_str().unwrap()]);
    let file = format!("--config.file={}", file.display());
    let routed = |labels: &[&str]| {
        let mut args = vec!["config", "routes", "test", &file];
        args.extend(labels);
        let out = run("amtool", &args);
        let mut got: Vec<String> = out.trim().split(',').map(str::to_owned).collect();
        got.sort();
        got
    };
    let ours = |r: &str| format!("{prefix}{r}");
    for (labels, expected) in [
        // Another exporter's alert in the same namespace keeps the chart's route.
        (
            vec![
                "alertname=NodeFilesystemAlmostOutOfSpace",
                "namespace=monitoring",
                "severity=critical",
            ],
            vec!["null".to_owned()],
        ),
        (
            vec![
                "alertname=KubePodCrashLooping",
                "namespace=monitoring",
                "severity=warning",
            ],
            vec!["null".to_owned()],
        ),
        // The bundle's Watchdog, with the namespace the overlay gives it, reaches the dead
        // man's switch (and the chart's Watchdog route too, which `continue` allows).
        (
            vec![
                "alertname=Watchdog",
                "namespace=monitoring",
                "severity=none",
            ],
            vec![ours("deadmansswitch"), "null".to_owned()],
        ),
        // The chart's own Watchdog has no namespace label: never ours.
        (
            vec!["alertname=Watchdog", "severity=none"],
            vec!["null".to_owned()],
        ),
        (
            vec![
                "alertname=PulseSourceDown",
                "namespace=monitoring",
                "severity=critical",
            ],
            vec![ours("pager")],
        ),
        (
            vec![
                "alertname=PulseCheckFailing",
                "namespace=monitoring",
                "severity=warning",
            ],
            vec![ours("chat")],
        ),
        // The same alert from a namespace the AlertmanagerConfig does not cover.
        (
            vec![
                "alertname=PulseSourceDown",
                "namespace=other",
                "severity=critical",
            ],
            vec!["null".to_owned()],
        ),
    ] {
        assert_eq!(routed(&labels), expected, "{labels:?}");
    }
}

#[test]
fn the_schema_check_rejects_what_kubernetes_would() {
    // The validation above is only worth something if it refuses a bad object.
    let objects = render("single");
    let mut sts = one(&objects, "StatefulSet").clone();
    sts["spec"]["template"]["spec"]["containers"][0]["readOnlyRootFileSystem"] = true.into();
    let e = validate(&[&sts]).unwrap_err();
    assert!(e.contains("readOnlyRootFileSystem"), "{e}");
    let mut pdb = one(&objects, "PodDisruptionBudget").clone();
    pdb["spec"]["maxUnavailable"] = serde_yaml::Value::Sequence(vec![]);
    assert!(validate(&[&pdb]).is_err());

    // The same for the operator's objects: a scrape interval Prometheus cannot parse, a
    // route timing that is not a duration string, a rule without its expression.
    let mut sm = one(&objects, "ServiceMonitor").clone();
    sm["spec"]["endpoints"][0]["interval"] = "thirty seconds".into();
    let e = validate_operator(&[&sm]).unwrap_err();
    assert!(e.contains("endpoints/0/interval"), "{e}");
    let mut amc = one(&objects, "AlertmanagerConfig").clone();
    amc["spec"]["route"]["groupWait"] = 30.into();
    let e = validate_operator(&[&amc]).unwrap_err();
    assert!(e.contains("route/groupWait"), "{e}");
    let mut rule = kind(&objects, "PrometheusRule")[0].clone();
    rule["spec"]["groups"][0]["rules"][0]
        .as_mapping_mut()
        .unwrap()
        .remove("expr");
    let e = validate_operator(&[&rule]).unwrap_err();
    assert!(e.contains("expr"), "{e}");
}

/// `text`, a config as the pods read it, written into a temp dir, each secret file it reads
/// from /etc/pulse-exporter/secrets/ there too and holding `secret`: the dir (the files go
/// with it) and the config's path.
fn config_with_stand_in_secrets(text: &str, secret: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let keys = regex::Regex::new(r"\$\{file:/etc/pulse-exporter/secrets/([a-z-]+)\}").unwrap();
    for c in keys.captures_iter(text) {
        std::fs::write(dir.path().join(&c[1]), secret).unwrap();
    }
    let local = text.replace(
        "${file:/etc/pulse-exporter/secrets/",
        &format!("${{file:{}/", dir.path().display()),
    );
    let config = write_temp(dir.path(), "config.yml", &local);
    (dir, config)
}

#[test]
fn the_fleet_overlay_scrapes_each_source_and_template_target_once() {
    // scrapeconfig.yaml is generated (the bundle's generated-files test holds it current).
    let objects = render("fleet");
    let scrapes = kind(&objects, "ScrapeConfig");
    assert_eq!(scrapes.len(), 2, "the sources job and the template's");
    let mut operator: Vec<&serde_yaml::Value> = scrapes.clone();
    operator.push(one(&objects, "ServiceMonitor"));
    let checked = validate_operator(&operator).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        checked.contains("valid monitoring.coreos.com/v1alpha1 ScrapeConfig pulse-tenant-db"),
        "{checked}"
    );
    let core: Vec<&serde_yaml::Value> = objects
        .iter()
        .filter(|o| {
            !o["apiVersion"]
                .as_str()
                .unwrap_or("")
                .starts_with("monitoring.coreos.com")
        })
        .collect();
    validate(&core).unwrap_or_else(|e| panic!("{e}"));
    for s in &scrapes {
        // Selected by kube-prometheus-stack's Prometheus, in the overlay's namespace.
        assert_eq!(
            s["metadata"]["labels"]["release"], "kube-prometheus-stack",
            "{s:?}"
        );
        assert_eq!(s["metadata"]["namespace"], "monitoring");
    }
    let sources = scrapes
        .iter()
        .find(|s| s["metadata"]["name"] == "pulse-sources")
        .unwrap();
    // One discovery URL per replica of the StatefulSet.
    let replicas = one(&objects, "StatefulSet")["spec"]["replicas"]
        .as_u64()
        .unwrap();
    assert_eq!(
        sources["spec"]["httpSDConfigs"]
            .as_sequence()
            .unwrap()
            .len() as u64,
        replicas
    );
    let tenants = scrapes
        .iter()
        .find(|s| s["metadata"]["name"] == "pulse-tenant-db")
        .unwrap();
    let relabel = serde_yaml::to_string(&tenants["spec"]["relabelings"]).unwrap();
    assert!(
        relabel.contains(&format!("modulus: {replicas}")),
        "{relabel}"
    );
    // The ServiceMonitor scrapes the exporters' own series only: no source twice.
    let monitor = one(&objects, "ServiceMonitor");
    assert_eq!(
        monitor["spec"]["endpoints"][0]["params"]["only"][0],
        "exporter"
    );
    let config_map = kind(&objects, "ConfigMap")
        .into_iter()
        .find(|c| c["metadata"]["name"] == "pulse-exporter-config")
        .unwrap();
    let config = config_map["data"]["config.yml"].as_str().unwrap();
    assert!(config.contains("name: tenant-db"), "{config}");
}

#[test]
fn the_cronjob_example_reports_in_through_the_network_policy() {
    let cronjob = read_yaml("examples/kubernetes-cronjob.yaml");
    validate(&[&cronjob]).unwrap();
    let pod = &cronjob["spec"]["jobTemplate"]["spec"]["template"];
    let container = &pod["spec"]["containers"][0];
    let command: Vec<&str> = container["command"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(&command[1..3], ["run", "--job=usage-rollup"]);
    // The wrapper's command line parses: the same words, run here with a command that fails.
    let url = format!("--url=http://127.0.0.1:{}", free_port());
    let out = Command::new(env!("CARGO_BIN_EXE_pulse-exporter"))
        .args([
            "run",
            "--job=usage-rollup",
            &url,
            "--retry-for=0s",
            "--",
            "sh",
            "-c",
            "exit 7",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(7),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The token comes from a Secret, never the command line.
    assert_eq!(container["env"][0]["name"], "PULSE_PING_TOKEN");
    assert!(container["env"][0]["valueFrom"]["secretKeyRef"].is_mapping());
    assert!(!command.iter().any(|c| c.contains("token")));
    // The exporter's NetworkPolicy admits the pod's label (the overlays' is the chart's).
    let label = &pod["metadata"]["labels"]["pulse-exporter.io/ping"];
    assert_eq!(label, "true");
    let objects = render("single");
    let np = one(&objects, "NetworkPolicy");
    assert!(
        np["spec"]["ingress"][0]["from"]
            .as_sequence()
            .unwrap()
            .iter()
            .any(|peer| &peer["podSelector"]["matchLabels"]["pulse-exporter.io/ping"] == label),
        "{np:?}"
    );
}
