//! The Helm chart (`charts/pulse-exporter`), tested as the prometheus-community charts are:
//! `helm lint --strict` and `helm template` over every values file of its `ci/` folder, each
//! rendered object validated against the Kubernetes and Prometheus Operator schemas, the
//! rendered config loaded by `pulse-exporter check`, mistakes refused at render time, and the
//! objects equal to the kustomize overlays' where both describe the same thing.

use std::process::Command;

use serde_yaml::Value;

use super::{config_with_stand_in_secrets, kind, one, render, repo, validate, validate_operator};
use crate::common::*;

const CHART: &str = "charts/pulse-exporter";

/// `helm ARGS` in the repository: its exit status, stdout and stderr.
fn helm(args: &[&str]) -> (bool, String, String) {
    let out = Command::new("helm")
        .args(args)
        .current_dir(repo())
        .output()
        .expect("helm (scripts/test installs it: scripts/install-helm)");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The objects the chart renders as release `pulse-exporter` in `monitoring`, with `args`
/// (`-f FILE`, `--set …`), or helm's error.
fn template(args: &[&str]) -> Result<Vec<Value>, String> {
    let mut all = vec!["template", "pulse-exporter", CHART, "-n", "monitoring"];
    all.extend(args);
    let (ok, out, err) = helm(&all);
    if !ok {
        return Err(err);
    }
    Ok(serde_yaml::Deserializer::from_str(&out)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .filter(|v: &Value| !v.is_null())
        .collect())
}

/// The values files of the chart's `ci/` folder, and the defaults (no file).
fn values_files() -> Vec<Option<String>> {
    let mut files: Vec<Option<String>> = std::fs::read_dir(repo().join(CHART).join("ci"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .map(|p| {
            Some(format!(
                "{CHART}/ci/{}",
                p.file_name().unwrap().to_string_lossy()
            ))
        })
        .collect();
    files.sort();
    files.insert(0, None);
    files
}

fn is_operator(o: &Value) -> bool {
    o["apiVersion"]
        .as_str()
        .is_some_and(|v| v.starts_with("monitoring.coreos.com/"))
}

#[test]
fn the_values_schema_embeds_the_config_schema() {
    // Its definitions are generated (the bundle's generated-files test rewrites them).
    let text = std::fs::read_to_string(repo().join(CHART).join("values.schema.json")).unwrap();
    let committed: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        committed["properties"]["config"]["$ref"], "#/definitions/config",
        "the chart's `config` is the config file's schema"
    );
    assert_eq!(
        committed["definitions"]["config"]["additionalProperties"], false,
        "the config file's schema is embedded whole"
    );
    // The default image tag is the exporter's version.
    let chart: Value = serde_yaml::from_str(
        &std::fs::read_to_string(repo().join(CHART).join("Chart.yaml")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        chart["appVersion"],
        env!("CARGO_PKG_VERSION"),
        "Chart.yaml appVersion"
    );
}

/// Loads the config a render's ConfigMap holds with `pulse-exporter check`, its secret files
/// stand-ins in a temp dir, as pod 0 would with the environment the workload gives it.
fn check_rendered_config(objects: &[Value], what: &str) {
    let Some(map) = kind(objects, "ConfigMap")
        .into_iter()
        .find(|m| m["data"]["config.yml"].is_string())
    else {
        return;
    };
    let text = map["data"]["config.yml"].as_str().unwrap();
    let (_dir, file) = config_with_stand_in_secrets(text, "stand-in");
    let workload = objects
        .iter()
        .find(|o| o["kind"] == "StatefulSet" || o["kind"] == "Deployment")
        .unwrap();
    let env: Vec<(String, String)> = workload["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_sequence()
        .into_iter()
        .flatten()
        .filter_map(|e| {
            Some((
                e["name"].as_str()?.to_owned(),
                e["value"].as_str()?.to_owned(),
            ))
        })
        .collect();
    let mut env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    // The pod-index label's value for pod 0, and no hostname to guess an ordinal from.
    env.extend([("PULSE_POD_INDEX", "0"), ("HOSTNAME", "not-a-pod-name")]);
    let (code, out, err) = run_cli(&["check", "--config.file", file.to_str().unwrap()], &env);
    assert_eq!(code, 0, "{what}: the rendered config: {out}{err}");
}

#[test]
fn every_values_file_lints_and_renders_valid_objects_and_a_config_that_loads() {
    for file in values_files() {
        let what = file.as_deref().unwrap_or("the defaults");
        let mut args: Vec<&str> = Vec::new();
        if let Some(f) = &file {
            args.extend(["-f", f]);
        }
        let mut lint = vec!["lint", "--strict", CHART];
        lint.extend(&args);
        let (ok, out, err) = helm(&lint);
        assert!(ok, "helm lint --strict, {what}: {out}{err}");
        let objects = template(&args).unwrap_or_else(|e| panic!("{what}: {e}"));
        let core: Vec<&Value> = objects.iter().filter(|o| !is_operator(o)).collect();
        validate(&core).unwrap_or_else(|e| panic!("{what}: {e}"));
        let operator: Vec<&Value> = objects.iter().filter(|o| is_operator(o)).collect();
        if !operator.is_empty() {
            let report = validate_operator(&operator).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(
                report.matches("valid monitoring.coreos.com/").count(),
                operator.len(),
                "{what}: {report}"
            );
        }
        check_rendered_config(&objects, what);
        // Every pod runs hardened, whatever the values.
        for o in objects.iter().filter(|o| {
            ["StatefulSet", "Deployment"].contains(&o["kind"].as_str().unwrap_or_default())
        }) {
            let pod = &o["spec"]["template"]["spec"];
            assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{what}");
            assert_eq!(pod["automountServiceAccountToken"], false, "{what}");
            let c = &pod["containers"][0];
            assert_eq!(
                c["securityContext"]["readOnlyRootFilesystem"], true,
                "{what}"
            );
            assert_eq!(
                c["securityContext"]["capabilities"]["drop"][0], "ALL",
                "{what}"
            );
            assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/-/ready", "{what}");
            assert_eq!(
                c["livenessProbe"]["httpGet"]["path"], "/-/healthy",
                "{what}"
            );
        }
    }
}

#[test]
fn the_parts_follow_their_values() {
    // The default image is the project's own, at the chart's appVersion: what
    // .github/workflows/release.yml pushes for that release.
    let objects = template(&[]).unwrap();
    let image = &one(&objects, "StatefulSet")["spec"]["template"]["spec"]["containers"][0]["image"];
    assert_eq!(
        image.as_str(),
        Some(concat!(
            "ghcr.io/pulse-exporter/pulse-exporter:",
            env!("CARGO_PKG_VERSION")
        )),
    );
    let workflow = std::fs::read_to_string(repo().join(".github/workflows/release.yml")).unwrap();
    assert!(
        workflow.contains("ghcr.io/"),
        "the release workflow pushes to ghcr.io"
    );

    // Sharded: six pods of three shards; each pod's shard count follows the values.
    let objects = template(&["-f", &format!("{CHART}/ci/sharded.yaml")]).unwrap();
    let sts = one(&objects, "StatefulSet");
    assert_eq!(sts["spec"]["replicas"], 6);
    let env = sts["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_sequence()
        .unwrap();
    let var = |name: &str| env.iter().find(|e| e["name"] == name).map(|e| &e["value"]);
    assert_eq!(var("PULSE_SHARD_REPLICAS"), Some(&Value::from("6")));
    assert_eq!(var("PULSE_SHARD_COUNT"), Some(&Value::from("3")));

    // The secrets given in the values: a Secret, mounted; the password in no pod spec.
    let objects = template(&["-f", &format!("{CHART}/ci/secrets.yaml")]).unwrap();
    let secret = one(&objects, "Secret");
    assert_eq!(
        secret["stringData"]["redis-password"],
        "example-redis-password"
    );
    let sts = serde_yaml::to_string(one(&objects, "StatefulSet")).unwrap();
    assert!(!sts.contains("example-redis-password"), "{sts}");
    assert!(sts.contains(&format!(
        "secretName: {}",
        secret["metadata"]["name"].as_str().unwrap()
    )));

    // The user's own ConfigMap and Secret: neither is rendered, both are mounted.
    let objects = template(&["-f", &format!("{CHART}/ci/existing.yaml")]).unwrap();
    assert!(kind(&objects, "Secret").is_empty());
    assert!(!kind(&objects, "ConfigMap")
        .iter()
        .any(|m| m["data"]["config.yml"].is_string()));
    let sts = serde_yaml::to_string(one(&objects, "StatefulSet")).unwrap();
    assert!(
        sts.contains("name: platform-pulse-config")
            && sts.contains("secretName: platform-pulse-secrets")
    );

    // Everything off: the workload, its config and Service, nothing else.
    let objects = template(&["-f", &format!("{CHART}/ci/off.yaml")]).unwrap();
    let mut kinds: Vec<&str> = objects
        .iter()
        .map(|o| o["kind"].as_str().unwrap())
        .collect();
    kinds.sort();
    assert_eq!(kinds, ["ConfigMap", "Service", "StatefulSet"]);

    // Everything on: the config's own rules and dashboard beside the bundle's, the
    // AlertmanagerConfig with the given receivers, the ServiceMonitor narrowed to the
    // exporters' own series while the sources are scraped through /probe.
    let objects = template(&["-f", &format!("{CHART}/ci/on.yaml")]).unwrap();
    let rules: Vec<&str> = kind(&objects, "PrometheusRule")
        .iter()
        .map(|r| r["metadata"]["name"].as_str().unwrap())
        .collect();
    assert!(rules.contains(&"pulse-exporter-generated"), "{rules:?}");
    // The generated rules and the bundle's four files.
    assert_eq!(rules.len(), 5, "{rules:?}");
    for r in kind(&objects, "PrometheusRule") {
        assert_eq!(r["metadata"]["labels"]["release"], "kube-prometheus-stack");
        for g in r["spec"]["groups"].as_sequence().unwrap() {
            for rule in g["rules"].as_sequence().unwrap() {
                assert_eq!(rule["labels"]["namespace"], "monitoring", "{rule:?}");
            }
        }
    }
    let am = one(&objects, "AlertmanagerConfig");
    assert_eq!(
        am["spec"]["receivers"][0]["webhookConfigs"][0]["url"],
        "https://pager.example.com/hook"
    );
    assert!(kind(&objects, "ConfigMap")
        .iter()
        .any(|m| m["metadata"]["name"] == "pulse-exporter-dashboard-platform-config"));
    let sm = one(&objects, "ServiceMonitor");
    assert_eq!(sm["metadata"]["labels"]["release"], "monitoring");
    let endpoint = &sm["spec"]["endpoints"][0];
    assert_eq!(endpoint["params"]["only"][0], "exporter");
    assert_eq!(endpoint["metricRelabelings"][0]["action"], "drop");
    assert_eq!(endpoint["relabelings"][2]["targetLabel"], "cluster");
    let pod = &one(&objects, "StatefulSet")["spec"]["template"]["spec"];
    assert_eq!(pod["containers"].as_sequence().unwrap().len(), 2);
    assert!(pod["containers"][0]["args"]
        .as_sequence()
        .unwrap()
        .contains(&Value::from("--log.level=debug")));
    // The test pod may reach the exporter through the NetworkPolicy.
    let policy = serde_yaml::to_string(one(&objects, "NetworkPolicy")).unwrap();
    assert!(
        policy.contains("app.kubernetes.io/component: helm-test"),
        "{policy}"
    );
    let test = one(&objects, "Pod");
    assert_eq!(test["metadata"]["annotations"]["helm.sh/hook"], "test");
    // Selected by the NetworkPolicy's test rule, and by nothing that selects the exporter's
    // pods (the Service would send it scrapes, the policy would hold it to its egress).
    let selector = &one(&objects, "StatefulSet")["spec"]["selector"]["matchLabels"];
    let labels = &test["metadata"]["labels"];
    assert!(
        selector
            .as_mapping()
            .unwrap()
            .iter()
            .any(|(k, v)| &labels[k] != v),
        "{labels:?}"
    );
    assert_eq!(labels["app.kubernetes.io/component"], "helm-test");
    assert_eq!(test["spec"]["initContainers"][0]["args"][0], "check");
    assert_eq!(
        test["spec"]["containers"][0]["args"][1],
        "--url=http://pulse-exporter.monitoring.svc:7857/metrics"
    );

    // A Deployment: an HA pair that does not shard, scraped through a PodMonitor that gives
    // the series the ServiceMonitor's `instance` and `platform`.
    let objects = template(&["-f", &format!("{CHART}/ci/deployment.yaml")]).unwrap();
    let d = one(&objects, "Deployment");
    assert!(d["spec"]["template"]["spec"]["containers"][0]["env"].is_null());
    let pm = serde_yaml::to_string(one(&objects, "PodMonitor")).unwrap();
    assert!(
        pm.contains("replacement: monitoring/pulse-exporter"),
        "{pm}"
    );
    assert!(kind(&objects, "ServiceMonitor").is_empty());
}

/// `slos.format: pyrra`: the objects `rules --format pyrra` writes, rendered in the release's
/// namespace with the chart's labels, and the objectives' group left out of the generated
/// rules (Pyrra writes its own); `rules` (the default) keeps the group and renders none.
#[test]
fn the_objectives_render_as_pyrra_objects_or_stay_in_the_generated_rules() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("pulse.yml");
    std::fs::write(
        &config,
        "sources:\n  - { name: db, kind: redis, url: 'redis://r:6379' }\n  - { name: pay, kind: stripe, api_key: sk_x }\n",
    )
    .unwrap();
    let write = |format: &str, file: &str| {
        let (code, out, err) = run_cli(
            &[
                "--config.file",
                config.to_str().unwrap(),
                "rules",
                "--format",
                format,
            ],
            &[],
        );
        assert_eq!(code, 0, "{err}");
        let path = dir.path().join(file);
        std::fs::write(&path, out).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let (rules, slos) = (write("rules", "rules.yml"), write("pyrra", "slos.yaml"));
    let generated = |objects: &[Value]| -> Vec<String> {
        kind(objects, "PrometheusRule")
            .iter()
            .filter(|r| r["metadata"]["name"] == "pulse-exporter-generated")
            .flat_map(|r| r["spec"]["groups"].as_sequence().unwrap().clone())
            .map(|g| g["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let objects = template(&[
        "--set-file",
        &format!("prometheusRule.generated={rules}"),
        "--set",
        "slos.format=pyrra",
        "--set-file",
        &format!("slos.pyrra={slos}"),
    ])
    .unwrap();
    let pyrra = kind(&objects, "ServiceLevelObjective");
    let names: Vec<&str> = pyrra
        .iter()
        .map(|o| o["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["db-availability", "pay-availability", "pay-delivery"]
    );
    for o in &pyrra {
        assert_eq!(o["apiVersion"], "pyrra.dev/v1alpha1");
        assert_eq!(o["metadata"]["namespace"], "monitoring");
        assert_eq!(
            o["metadata"]["labels"]["app.kubernetes.io/name"],
            "pulse-exporter"
        );
    }
    let groups = generated(&objects);
    assert!(
        groups.contains(&"pulse-config-sources".to_owned()),
        "{groups:?}"
    );
    assert!(
        !groups.contains(&"pulse-config-objectives".to_owned()),
        "{groups:?}"
    );
    let objects = template(&["--set-file", &format!("prometheusRule.generated={rules}")]).unwrap();
    assert!(kind(&objects, "ServiceLevelObjective").is_empty());
    assert!(generated(&objects).contains(&"pulse-config-objectives".to_owned()));
}

#[test]
fn mistakes_are_refused_at_render_time_naming_the_value_and_the_fix() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["--set", "serviceMonitor.scrapeTimeout=20s"],
            "serviceMonitor.scrapeTimeout (20s) exceeds serviceMonitor.interval (15s)",
        ),
        (
            &["--set", "podMonitor.enabled=true,serviceMonitor.enabled=false,podMonitor.interval=10s,podMonitor.scrapeTimeout=1m"],
            "podMonitor.scrapeTimeout (1m) exceeds podMonitor.interval (10s)",
        ),
        (
            &["--set", "serviceMonitor.interval=15"],
            "serviceMonitor/interval",
        ),
        (
            &["--set", "podMonitor.enabled=true"],
            "enable one of them, or every series is scraped twice",
        ),
        (
            &["--set", "replicas=4,shardCount=3"],
            "4 replicas cannot run 3 shards",
        ),
        (
            &["--set", "workload=Deployment,replicas=2,shardCount=2"],
            "use workload: StatefulSet to shard",
        ),
        (
            &["--set", "existingSecret="],
            "no Secret is mounted there: set existingSecret",
        ),
        (
            &["--set", "scrapeConfig.enabled=true", "-f", "charts/pulse-exporter/ci/fleet.yaml", "--set", "scrapeConfig.templates=null"],
            "scrapeConfig.templates.tenant-db.url",
        ),
        (
            &["--set", "prometheusRule.generated=nope"],
            "prometheusRule.generated: not a rule file",
        ),
        (
            &["--set", "slos.format=pyrra"],
            "slos.format is pyrra but slos.pyrra is empty",
        ),
        (&["--set", "slos.format=sloth"], "/slos/format"),
        // A misspelt field of a source, caught by the config's schema.
        (
            &["--set-json", r#"config={"sources":[{"name":"c","kind":"redis","url":"redis://r:6379","keys":[{"key":"q","metric":"m","lables":"x"}]}]}"#],
            "additional properties 'lables' not allowed",
        ),
        (
            &["--set-json", r#"config={"sources":[{"name":"c","kind":"redis","url":"redis://r:6379","sql":"SELECT 1"}]}"#],
            "additional properties 'sql' not allowed",
        ),
        // And a misspelt value of the chart's own.
        (
            &["--set", "serviceMonitr.enabled=false"],
            "additional properties 'serviceMonitr' not allowed",
        ),
    ];
    for (args, says) in cases {
        let err = template(args)
            .err()
            .unwrap_or_else(|| panic!("{args:?} rendered"));
        assert!(err.contains(says), "{args:?}: {err}");
    }
}

/// What the chart and the overlays write differently on purpose, taken out of both before
/// they are compared (the overlays build on the chart's rendering, deploy/kubernetes/base, so
/// what is left to differ is what kustomize does on top of it):
/// - the fleet overlay's ScrapeConfigs are `pulse-exporter scrape-config`'s (`pulse-sources`,
///   …), the chart's are its release's (`pulse-exporter-sources`, …);
/// - labels: the overlays' ConfigMap of the config is kustomize's, with fewer labels than the
///   chart's; every label of an overlay's object must still be on the chart's;
/// - comments, the order of mapping keys and the layout of YAML are not compared.
fn normalized(o: &Value, chart: bool) -> (String, Value) {
    let mut o = o.clone();
    let kind = o["kind"].as_str().unwrap().to_owned();
    let mut name = o["metadata"]["name"].as_str().unwrap().to_owned();
    if chart && kind == "ScrapeConfig" {
        name = name.replacen("pulse-exporter-", "pulse-", 1);
    }
    if let Value::Mapping(m) = &mut o["metadata"] {
        m.remove("labels");
        m.remove("namespace");
        // In the key.
        m.remove("name");
    }
    // The config as YAML, not as text: the chart writes it from the values.
    if let Some(text) = o["data"]["config.yml"].as_str() {
        o["data"]["config.yml"] = serde_yaml::from_str(text).unwrap();
    }
    (format!("{kind}/{name}"), o)
}

/// `objects` by kind and name, each normalized beside itself as rendered.
fn by_key(objects: &[Value], chart: bool) -> std::collections::BTreeMap<String, (Value, &Value)> {
    objects
        .iter()
        .map(|o| {
            let (k, v) = normalized(o, chart);
            (k, (v, o))
        })
        .collect()
}

#[test]
fn the_chart_renders_what_the_overlays_do() {
    let dir = tempfile::tempdir().unwrap();
    let fleet_config: Value = serde_yaml::from_str(
        &std::fs::read_to_string(repo().join("deploy/kubernetes/overlays/fleet/config.yml"))
            .unwrap(),
    )
    .unwrap();
    // The generated ScrapeConfigs' limits, which the chart takes as values.
    let limits: Vec<u64> = regex::Regex::new(r"sampleLimit: ([0-9]+)")
        .unwrap()
        .captures_iter(
            &std::fs::read_to_string(
                repo().join("deploy/kubernetes/overlays/fleet/scrapeconfig.yaml"),
            )
            .unwrap(),
        )
        .map(|c| c[1].parse().unwrap())
        .collect();
    assert_eq!(limits.len(), 2);
    let fleet = serde_yaml::to_string(&serde_yaml::from_str::<Value>(&format!(
        "config: {}\nscrapeConfig: {{ enabled: true, sampleLimit: {}, templates: {{ tenant-db: {{ url: 'http://tenant-registry.platform.svc/sd/postgres', sampleLimit: {} }} }} }}",
        serde_json::to_string(&fleet_config).unwrap(),
        limits[0],
        limits[1]
    ))
    .unwrap())
    .unwrap();
    let fleet_values = write_temp(dir.path(), "fleet.yaml", &fleet);
    let fleet_values = fleet_values.to_str().unwrap();
    // As the overlays install: the image they name, the AlertmanagerConfig, no test pod.
    let common = "image.repository=registry.example.com/pulse-exporter,image.tag=0.1.0,alertmanagerConfig.enabled=true,tests.enabled=false";
    for (overlay, replicas, extra) in [
        ("single", 1, None),
        ("sharded", 3, None),
        ("fleet", 3, Some(fleet_values)),
    ] {
        let kustomized = render(overlay);
        let mut args = vec!["--set".to_owned(), format!("{common},replicas={replicas}")];
        if let Some(f) = extra {
            args.extend(["-f".to_owned(), f.to_owned()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let charted = template(&args).unwrap_or_else(|e| panic!("{overlay}: {e}"));
        let theirs = by_key(&kustomized, false);
        let ours = by_key(&charted, true);
        assert_eq!(
            theirs.keys().collect::<Vec<_>>(),
            ours.keys().collect::<Vec<_>>(),
            "{overlay}: the same objects"
        );
        for (key, (want, raw)) in &theirs {
            let (have, ours_raw) = &ours[key];
            assert!(
                want == have,
                "{overlay}: {key} differs:\n--- kustomize\n{}\n--- helm\n{}",
                serde_yaml::to_string(want).unwrap(),
                serde_yaml::to_string(have).unwrap()
            );
            // Every label the overlay sets (selection labels such as `release` included).
            if let Value::Mapping(labels) = &raw["metadata"]["labels"] {
                for (k, v) in labels {
                    assert_eq!(
                        &ours_raw["metadata"]["labels"][k], v,
                        "{overlay}: {key} label {k:?}"
                    );
                }
            }
        }
    }
}
