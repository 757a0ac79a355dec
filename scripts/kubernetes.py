#!/usr/bin/env python3
"""Writes the bundle's files for the Helm chart, then renders the kustomize base from the chart.

The bundle's own files stay the one source: the alerting rules (alerts/pulse-alerts.yml), the
recording rules (prometheus/rules/*.yml), the Alertmanager routing (alerts/alertmanager.yml),
the dashboards (grafana/dashboards/*.json) and the pulse-exporter job's metric relabelling
(prometheus/prometheus.yml). Helm reads nothing outside the chart, so this script copies them
under charts/pulse-exporter/files/bundle/, in the forms its templates take:

- prometheusrules.yaml: the groups of each rule file, by PrometheusRule name (one per file, as
  Prometheus loads them: a group name may repeat across files, not within one);
- alertmanagerconfig.yaml: the routes, receivers and inhibitions as an AlertmanagerConfig spec;
- metric-relabelings.yaml: the job's metric relabelling, for the ServiceMonitor;
- dashboards/*.json: each dashboard, compact.

The chart is then the one description of the deployment: deploy/kubernetes/base/pulse-exporter.yaml
is `helm template` of it with deploy/kubernetes/base/values.yaml, and the overlays build on
that base. Kustomize reads nothing outside its root either, so the rendering is committed.

Run it after changing any of those files, the chart or the base's values, and commit the result
(scripts/generate runs it):
    python3 scripts/kubernetes.py          # rewrites what is stale
    python3 scripts/kubernetes.py --check  # exits 1, naming the stale files
"""
import glob
import json
import os
import subprocess
import sys

import yaml

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
NAME = "pulse-exporter"


class Dumper(yaml.SafeDumper):
    """Multi-line strings (PromQL, descriptions) as literal blocks, as they are written by hand."""


def _str(dumper, value):
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


Dumper.add_representer(str, _str)


def dump(docs, width=100):
    return "---\n".join(
        yaml.dump(d, Dumper=Dumper, sort_keys=False, width=width, allow_unicode=True) for d in docs
    )


def load(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return yaml.safe_load(f)


def rule_files():
    return ["alerts/pulse-alerts.yml"] + sorted(
        os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "prometheus", "rules", "*.yml"))
    )


def prometheus_rule_specs():
    """Each rule file's PrometheusRule spec (its groups), by the file's stem."""
    return {
        os.path.splitext(os.path.basename(path))[0]: {"groups": load(path)["groups"]}
        for path in rule_files()
    }


def matchers(items):
    """Alertmanager matcher strings (`name="value"`, `name=~"re"`) as AlertmanagerConfig matchers."""
    out = []
    for item in items:
        for op, kind in (("=~", "=~"), ("!~", "!~"), ("!=", "!="), ("=", "=")):
            if op in item:
                name, value = item.split(op, 1)
                out.append({"name": name.strip(), "matchType": kind, "value": value.strip().strip('"')})
                break
        else:
            sys.exit(f"scripts/kubernetes.py: cannot read the matcher {item!r} of alerts/alertmanager.yml")
    return out


DURATIONS = {"group_wait": "groupWait", "group_interval": "groupInterval", "repeat_interval": "repeatInterval"}


def route(r):
    out = {}
    if "receiver" in r:
        out["receiver"] = r["receiver"]
    if "group_by" in r:
        out["groupBy"] = r["group_by"]
    for k, v in DURATIONS.items():
        if k in r:
            out[v] = r[k]
    if "matchers" in r:
        out["matchers"] = matchers(r["matchers"])
    if "continue" in r:
        out["continue"] = r["continue"]
    if "routes" in r:
        out["routes"] = [route(x) for x in r["routes"]]
    unknown = set(r) - {"receiver", "group_by", "matchers", "continue", "routes", *DURATIONS}
    if unknown:
        sys.exit(f"scripts/kubernetes.py: route fields {sorted(unknown)} of alerts/alertmanager.yml have no AlertmanagerConfig form here")
    return out


def receiver(r):
    out = {"name": r["name"]}
    hooks = []
    for w in r.get("webhook_configs", []):
        hook = {"url": w["url"]}
        if "send_resolved" in w:
            hook["sendResolved"] = w["send_resolved"]
        hooks.append(hook)
    if hooks:
        out["webhookConfigs"] = hooks
    unknown = set(r) - {"name", "webhook_configs"}
    if unknown:
        sys.exit(f"scripts/kubernetes.py: receiver fields {sorted(unknown)} of alerts/alertmanager.yml have no AlertmanagerConfig form here")
    return out


def bundle_alerts_matcher():
    """A matcher of the bundle's alert names: `Pulse…` as one pattern, any other by name."""
    names = sorted({
        r["alert"]
        for g in load("alerts/pulse-alerts.yml")["groups"]
        for r in g["rules"]
        if "alert" in r
    })
    others = [n for n in names if not n.startswith("Pulse")]
    pattern = "|".join(["Pulse.+"] + others)
    return {"name": "alertname", "matchType": "=~", "value": pattern}


def alertmanager_config_spec():
    """alerts/alertmanager.yml as an AlertmanagerConfig's spec."""
    am = load("alerts/alertmanager.yml")
    top = route(am["route"])
    # Only the bundle's alerts: the operator adds a namespace matcher, but node-exporter and
    # kube-state-metrics alerts of the same namespace must keep their own receivers.
    top["matchers"] = [bundle_alerts_matcher()] + top.get("matchers", [])
    top["routes"] = top.pop("routes")
    return {
        "route": top,
        "receivers": [receiver(r) for r in am["receivers"]],
        "inhibitRules": [
            {
                "sourceMatch": matchers(i["source_matchers"]),
                "targetMatch": matchers(i["target_matchers"]),
                "equal": i["equal"],
            }
            for i in am.get("inhibit_rules", [])
        ],
    }


def dashboard_paths():
    return sorted(glob.glob(os.path.join(ROOT, "grafana", "dashboards", "*.json")))


def compact(path):
    with open(path, encoding="utf-8") as f:
        # Compact: a ConfigMap (and kubectl's last-applied annotation) holds at most 256 KiB,
        # and Grafana reads the JSON, not its layout.
        return json.dumps(json.load(f), separators=(",", ":"), ensure_ascii=False)


def metric_relabelings():
    prom = load("prometheus/prometheus.yml")
    job = next(j for j in prom["scrape_configs"] if j["job_name"] == NAME)
    keys = {"source_labels": "sourceLabels", "target_label": "targetLabel", "regex": "regex",
            "replacement": "replacement", "action": "action", "separator": "separator"}
    relabel = []
    for r in job.get("metric_relabel_configs", []):
        unknown = set(r) - set(keys)
        if unknown:
            sys.exit(f"scripts/kubernetes.py: relabel fields {sorted(unknown)} of prometheus/prometheus.yml have no ServiceMonitor form here")
        relabel.append({keys[k]: v for k, v in r.items()})
    return relabel


CHART_HEADER = (
    "# Generated by scripts/kubernetes.py from the bundle, for the chart's templates (Helm reads\n"
    "# nothing outside the chart). Do not edit: run `python3 scripts/kubernetes.py`.\n"
)


def chart_rules():
    return CHART_HEADER + dump([prometheus_rule_specs()])


def chart_alertmanager():
    return CHART_HEADER + dump([alertmanager_config_spec()])


def chart_relabelings():
    return CHART_HEADER + dump([metric_relabelings()])


def chart_dashboard(path):
    return lambda: compact(path) + "\n"


CHART = os.path.join("charts", NAME)
CHART_DIR = os.path.join(CHART, "files", "bundle")
BASE_DIR = os.path.join("deploy", "kubernetes", "base")
BASE_VALUES = os.path.join(BASE_DIR, "values.yaml")
# The release and namespace the base is rendered as: the overlays install into `monitoring`
# (their `namespace:`), and a release named after the chart names every object
# `pulse-exporter…`, as docs/kubernetes.md lists them.
RELEASE = NAME
NAMESPACE = "monitoring"


def chart_outputs():
    out = {
        os.path.join(CHART_DIR, "prometheusrules.yaml"): chart_rules,
        os.path.join(CHART_DIR, "alertmanagerconfig.yaml"): chart_alertmanager,
        os.path.join(CHART_DIR, "metric-relabelings.yaml"): chart_relabelings,
    }
    for p in dashboard_paths():
        out[os.path.join(CHART_DIR, "dashboards", os.path.basename(p))] = chart_dashboard(p)
    return out


def rendered_base():
    """`helm template` of the chart with the base's values, headed by how to remake it."""
    command = ["helm", "template", RELEASE, CHART, "--namespace", NAMESPACE, "--values", BASE_VALUES]
    try:
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        sys.exit("scripts/kubernetes.py: helm is needed to render deploy/kubernetes/base from the chart: run scripts/install-helm")
    if done.returncode != 0:
        sys.exit(f"scripts/kubernetes.py: `{' '.join(command)}` failed:\n{done.stderr}")
    return (
        f"# Generated by scripts/kubernetes.py: `{' '.join(command)}`.\n"
        "# Do not edit: change the chart or values.yaml and run `scripts/generate`.\n"
        + done.stdout
    )


def write(name, text, check, stale):
    """Writes `text` to `name` where it differs (or, checking, notes `name` as stale)."""
    path = os.path.join(ROOT, name)
    try:
        with open(path, encoding="utf-8") as f:
            current = f.read()
    except FileNotFoundError:
        current = None
    if current == text:
        return
    if check:
        stale.append(name)
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    print("wrote", name)


def main():
    check = sys.argv[1:] == ["--check"]
    if sys.argv[1:] and not check:
        sys.exit("usage: scripts/kubernetes.py [--check]")
    stale = []
    wanted = chart_outputs()
    # A dashboard removed from the bundle leaves the chart too.
    for old in glob.glob(os.path.join(ROOT, CHART_DIR, "dashboards", "*.json")):
        if os.path.relpath(old, ROOT) not in wanted:
            if check:
                stale.append(os.path.relpath(old, ROOT))
            else:
                os.remove(old)
    for name, make in wanted.items():
        write(name, make(), check, stale)
    # After the chart's copies: the rendering reads them.
    write(os.path.join(BASE_DIR, "pulse-exporter.yaml"), rendered_base(), check, stale)
    if stale:
        sys.exit(
            "scripts/kubernetes.py: " + ", ".join(stale)
            + " differ from the bundle's rules, routing, dashboards or scrape config, or from"
            " the chart: run `python3 scripts/kubernetes.py` and commit the result"
        )


if __name__ == "__main__":
    main()
