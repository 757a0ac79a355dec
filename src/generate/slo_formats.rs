//! The config's objectives for a team that already runs an SLO tool: as Pyrra
//! `ServiceLevelObjective` objects (`rules --format pyrra`) or Sloth `prometheus/v1` specs
//! (`rules --format sloth`), the same objectives [`super::objectives`] writes as rules: each
//! source's availability, its latency objectives, a Stripe source's deliveries, each
//! check's and each job's runs. The tool then writes the recording rules and burn-rate
//! alerts itself.
//!
//! Pyrra's ratio indicator reads one counter of errors and one of all events; a job's errors
//! are two (failed runs and missed due times), so jobs go to Sloth only, whose indicators are
//! PromQL. Sloth counts every objective over one period (its `--default-slo-period`): the
//! specs are written one document per window.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::bundle::Selection;
use super::objectives::{job_selector as sel, le_forms, number, stored_le};
use super::{eq, selector, source_is};
use crate::config::{Config, SourceConfig};
use crate::config_core::objective::{LatencyObjective, Objective};
use crate::jobs::metrics::{JOB_MISSED, JOB_RUNS};
use crate::series::own_metrics::{CHECK_RUNS, SOURCE_FAILURES, SOURCE_PROBES};

/// What `rules` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// Prometheus rule files: the alerts and the objectives' recorded series and burn alerts.
    #[default]
    Rules,
    /// The objectives as Pyrra `ServiceLevelObjective` objects (pyrra.dev/v1alpha1).
    Pyrra,
    /// The objectives as Sloth `prometheus/v1` specs.
    Sloth,
}

/// One objective, told in the words both tools read.
struct Slo {
    /// Its name: lower-case letters, digits and `-` (a Kubernetes object's name).
    name: String,
    objective: Objective,
    description: String,
    /// The labels of its rules and alerts: what it is of, and which objective.
    labels: BTreeMap<String, String>,
    /// Whether its fast burn pages (a source of tier `primary` or `queue`).
    pages: bool,
    /// The bad events' rate over `{{.window}}`, summed per what it is of.
    errors: String,
    /// All events' rate over `{{.window}}`, likewise.
    total: String,
    /// The same as one counter each, for Pyrra; None where the errors are two counters.
    counters: Option<Counters>,
}

/// A Pyrra indicator: `errors` (or, for latency, `success`) and `total` as selectors.
struct Counters {
    latency: bool,
    bad_or_good: String,
    total: String,
    grouping: Vec<String>,
}

/// `name` as a Kubernetes object name: lower case, `-` for anything else, at most 63.
fn object_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| match c.is_ascii_alphanumeric() {
            true => c.to_ascii_lowercase(),
            false => '-',
        })
        .collect();
    out.truncate(63);
    out.trim_matches('-').to_owned()
}

/// `sum by (labels) (rate(selector[{{.window}}]))`.
fn rate_sum(grouping: &[String], selector: &str) -> String {
    format!(
        "sum by ({}) (rate({selector}[{{{{.window}}}}]))",
        grouping.join(", ")
    )
}

/// The labels `selection` keeps, then `labels`: what the indicators are summed by.
fn by(selection: &Selection, labels: &str) -> Vec<String> {
    selection
        .grouping(labels)
        .split(", ")
        .map(str::to_owned)
        .collect()
}

/// The objectives of `config`, reading the series `selection` picks.
fn slos(config: &Config, selection: &Selection) -> Vec<Slo> {
    let extra = Some(selection.selector()).filter(|s| !s.is_empty());
    let mut out: Vec<Slo> = SourceConfig::all(config)
        .flat_map(|s| source_slos(s, selection, extra))
        .collect();
    out.extend(job_slos(config, extra, &by(selection, "job_name")));
    unique_names(&mut out);
    out
}

/// Numbers the second and later objectives whose names came out the same (`a.b` and `a-b`
/// both read `a-b`): Kubernetes keeps one object per name, Sloth one objective.
fn unique_names(slos: &mut [Slo]) {
    let mut seen = std::collections::BTreeSet::new();
    for slo in slos {
        let mut n = 1;
        let mut name = slo.name.clone();
        while !seen.insert(name.clone()) {
            n += 1;
            let suffix = format!("-{n}");
            let mut base = slo.name.clone();
            base.truncate(63 - suffix.len());
            name = format!("{}{suffix}", base.trim_end_matches('-'));
        }
        slo.name = name;
    }
}

/// An objective of `source` named `name`, its indicator left for the caller.
fn base_slo(source: &SourceConfig, name: &str, objective: &Objective, what: &str) -> Slo {
    let of = match source.is_template() {
        true => "template",
        false => "source",
    };
    Slo {
        name: object_name(&format!("{}-{name}", source.common.name)),
        objective: objective.clone(),
        description: format!(
            "{} % of {what} over {} days (pulse-exporter, docs/objectives.md).",
            number(objective.target()),
            objective.window_days()
        ),
        labels: BTreeMap::from([
            ("objective".to_owned(), name.to_owned()),
            (of.to_owned(), source.common.name.clone()),
        ]),
        pages: matches!(source.common.tier.as_deref(), Some("primary" | "queue")),
        errors: String::new(),
        total: String::new(),
        counters: None,
    }
}

/// `base` with the ratio of the counters `bad` and `all` as its indicator.
fn ratio_slo(base: Slo, bad: String, all: String, grouping: Vec<String>) -> Slo {
    Slo {
        errors: rate_sum(&grouping, &bad),
        total: rate_sum(&grouping, &all),
        counters: Some(Counters {
            latency: false,
            bad_or_good: bad,
            total: all,
            grouping,
        }),
        ..base
    }
}

/// The objectives of one source: availability, latency, events.
fn source_slos(source: &SourceConfig, selection: &Selection, extra: Option<&str>) -> Vec<Slo> {
    let pin = [source_is(source)];
    let of = |metric: &str, more: &[String]| {
        let all: Vec<String> = pin.iter().chain(more).cloned().collect();
        selector(metric, &all, extra)
    };
    let grouping = by(selection, "source");
    let mut out = Vec::new();
    if let Some(o) = source.common.objective.on() {
        let base = base_slo(source, "availability", o, "its health probes succeed");
        let (bad, all) = (of(SOURCE_FAILURES.name, &[]), of(SOURCE_PROBES.name, &[]));
        out.push(ratio_slo(base, bad, all, grouping.clone()));
    }
    if let Some(h) = source.kind.latency_histogram() {
        for l in &source.common.latency_objectives {
            let picked: Vec<String> = l.series.iter().map(|(k, v)| eq(k, v)).collect();
            let bound = l.under.0.as_secs_f64();
            let bucket = format!("{}_bucket", h.metric.name);
            // Pyrra takes one bound, which must parse as a number: the form Prometheus 3
            // stores. Sloth's PromQL matches every form an exporter or a Prometheus writes.
            let good = of(
                &bucket,
                &[picked.clone(), vec![eq("le", &stored_le(bound))]].concat(),
            );
            let any_form = [picked.clone(), vec![le_regex(bound)]].concat();
            let all = of(&format!("{}_count", h.metric.name), &picked);
            let what = format!("its operations finish under {} s", number(bound));
            out.push(Slo {
                errors: format!(
                    "({}\n- {})",
                    rate_sum(&grouping, &all),
                    rate_sum(&grouping, &of(&bucket, &any_form))
                ),
                total: rate_sum(&grouping, &all),
                counters: Some(Counters {
                    latency: true,
                    bad_or_good: good,
                    total: all,
                    grouping: grouping.clone(),
                }),
                ..base_slo(source, &l.name, &l.objective(), &what)
            });
        }
    }
    if let Some(e) = source.kind.event_objective() {
        let base = base_slo(source, e.name, &e.objective, e.what);
        let (bad, all) = (of(e.bad.name, &[]), of(e.total.name, &[]));
        out.push(ratio_slo(base, bad, all, by(selection, "source, account")));
    }
    for check in source.checks() {
        let Some(o) = check.common().objective() else {
            continue;
        };
        let name = check.name();
        let is_check = eq("check", &name);
        let mut base = base_slo(
            source,
            "runs",
            &o,
            &format!("the runs of check {name} succeed"),
        );
        base.name = object_name(&format!("{}-{name}-runs", source.common.name));
        base.labels.insert("check".to_owned(), name.clone());
        base.pages = false;
        let bad = of(
            CHECK_RUNS.name,
            &[is_check.clone(), eq("outcome", "failure")],
        );
        let all = of(CHECK_RUNS.name, &[is_check]);
        out.push(ratio_slo(base, bad, all, by(selection, "source, check")));
    }
    out
}

/// How the series of a declared job (`label` `job_name`) or of a key's jobs (`key`) named
/// `value` are picked: matchers, and what the queries are joined with. A key's jobs are
/// told by `key` on `pulse_job_info` only: joined with it.
fn job_scope(
    label: &str,
    value: &str,
    extra: Option<&str>,
    grouping: &[String],
) -> (Vec<String>, String) {
    match label {
        "job_name" => (vec![eq(label, value)], String::new()),
        _ => (
            Vec::new(),
            format!(
                "\nand on ({}) {}",
                grouping.join(", "),
                selector("pulse_job_info", &[eq("key", value)], extra)
            ),
        ),
    }
}

/// `le=~"…"`: the bucket of bound `v` in every form it may be stored in.
fn le_regex(v: f64) -> String {
    format!("le=~\"{}\"", le_forms(v))
}

/// The jobs' objectives: a declared job by name, a key's jobs by their key.
fn job_slos(config: &Config, extra: Option<&str>, grouping: &[String]) -> Vec<Slo> {
    let declared = config.jobs.jobs.iter().map(|j| {
        let o = (j.objective.as_ref(), &j.latency_objectives);
        (o, "job_name", &j.name)
    });
    let keys = config.jobs.keys.iter().map(|k| {
        let o = (k.job.objective.as_ref(), &k.job.latency_objectives);
        (o, "key", &k.name)
    });
    let mut out = Vec::new();
    for ((objective, latency), label, value) in declared.chain(keys) {
        out.extend(job_duration_slos(latency, label, value, extra, grouping));
        let Some(objective) = objective else { continue };
        let (pin, join) = job_scope(label, value, extra, grouping);
        let of = |metric: &str, more: &[String]| {
            let all: Vec<String> = pin.iter().chain(more).cloned().collect();
            rate_sum(grouping, &sel(metric, &all, extra))
        };
        let missed = of(JOB_MISSED.name, &[]);
        let failed = of(JOB_RUNS.name, &[eq("outcome", "failure")]);
        let runs = of(JOB_RUNS.name, &[]);
        out.push(Slo {
            name: object_name(&format!("job-{value}-runs")),
            objective: objective.clone(),
            description: format!(
                "{} % of the due runs of {} {value} finish well and on time over {} days (pulse-exporter, docs/objectives.md).",
                number(objective.target()),
                match label { "job_name" => "job", _ => "the jobs of key" },
                objective.window_days()
            ),
            labels: BTreeMap::from([
                ("objective".to_owned(), "runs".to_owned()),
                (label.to_owned(), value.clone()),
            ]),
            pages: false,
            errors: format!("(\n  {failed}\n  + {missed}\n){join}"),
            total: format!("(\n  {runs}\n  + {missed}\n){join}"),
            counters: None,
        });
    }
    out
}

/// The latency objectives of the job (`label` `job_name`) or the key's jobs (`key`) named
/// `value`, on `pulse_job_duration_seconds`: for Sloth only (a key's jobs need a join).
fn job_duration_slos(
    objectives: &[LatencyObjective],
    label: &str,
    value: &str,
    extra: Option<&str>,
    grouping: &[String],
) -> Vec<Slo> {
    let (pin, join) = job_scope(label, value, extra, grouping);
    let of = |metric: &str, more: &[String]| {
        let all: Vec<String> = pin.iter().chain(more).cloned().collect();
        rate_sum(grouping, &sel(metric, &all, extra))
    };
    let name = crate::jobs::metrics::JOB_DURATION.name;
    objectives
        .iter()
        .map(|o| {
            let bound = number(o.under.0.as_secs_f64());
            let all = of(&format!("{name}_count"), &[]);
            let fast = of(&format!("{name}_bucket"), &[le_regex(o.under.0.as_secs_f64())]);
            let objective = o.objective();
            Slo {
                name: object_name(&format!("job-{value}-{}", o.name)),
                description: format!(
                    "{} % of the runs of {value} finish within {bound} s over {} days (pulse-exporter, docs/objectives.md).",
                    number(objective.target()),
                    objective.window_days()
                ),
                objective,
                labels: BTreeMap::from([
                    ("objective".to_owned(), o.name.clone()),
                    (label.to_owned(), value.to_owned()),
                ]),
                pages: false,
                errors: format!("(\n  {all}\n  - {fast}\n){join}"),
                total: format!("{all}{join}"),
                counters: None,
            }
        })
        .collect()
}

/// The objectives of `config` as Pyrra `ServiceLevelObjective` objects, one YAML document
/// each; the jobs' are named in a comment (see the module's header).
pub fn pyrra(config: &Config, selection: &Selection) -> String {
    let mut out = String::from(
        "# Generated by `pulse-exporter rules --format pyrra` from the config: the objectives of\n\
         # docs/objectives.md as Pyrra ServiceLevelObjective objects (pyrra.dev/v1alpha1). Apply\n\
         # them where Pyrra watches, instead of the generated rules' pulse-config-objectives group.\n",
    );
    for slo in slos(config, selection) {
        let Some(c) = &slo.counters else {
            let _ = writeln!(out, "# {}: not written (its errors are two counters, which Pyrra's ratio cannot read): use --format sloth or the generated rules.", slo.name);
            continue;
        };
        let (bad_key, kind) = match c.latency {
            true => ("success", "latency"),
            false => ("errors", "ratio"),
        };
        let mut indicator = BTreeMap::new();
        indicator.insert(
            kind,
            serde_json::json!({
                bad_key: {"metric": c.bad_or_good},
                "total": {"metric": c.total},
                "grouping": c.grouping,
            }),
        );
        let object = serde_json::json!({
            "apiVersion": "pyrra.dev/v1alpha1",
            "kind": "ServiceLevelObjective",
            "metadata": {
                "name": slo.name,
                "labels": slo.labels.iter().map(|(k, v)| (format!("pulse-exporter.dev/{k}"), object_name(v))).collect::<BTreeMap<_, _>>(),
            },
            "spec": {
                "target": number(slo.objective.target()),
                "window": format!("{}d", slo.objective.window_days()),
                "description": slo.description,
                "indicator": indicator,
            },
        });
        out.push_str("---\n");
        out.push_str(&serde_yaml::to_string(&object).unwrap_or_default());
    }
    out
}

/// A Sloth spec (`prometheus/v1`).
#[derive(Serialize)]
struct SlothSpec {
    version: &'static str,
    service: &'static str,
    slos: Vec<SlothSlo>,
}

#[derive(Serialize)]
struct SlothSlo {
    name: String,
    objective: f64,
    description: String,
    labels: BTreeMap<String, String>,
    sli: BTreeMap<&'static str, BTreeMap<&'static str, String>>,
    alerting: SlothAlerting,
}

#[derive(Serialize)]
struct SlothAlerting {
    name: &'static str,
    page_alert: BTreeMap<&'static str, BTreeMap<&'static str, &'static str>>,
    ticket_alert: BTreeMap<&'static str, BTreeMap<&'static str, &'static str>>,
}

/// `query` as the Go template Sloth reads it as: every `{{` but the window's written as
/// text (a check named `a{{b` would otherwise break the template).
fn go_template(query: &str) -> String {
    const WINDOW: &str = "{{.window}}";
    query
        .split(WINDOW)
        .map(super::template_safe)
        .collect::<Vec<_>>()
        .join(WINDOW)
}

/// The objectives of `config` as Sloth `prometheus/v1` specs: one document per window, each
/// to be generated with that window as Sloth's `--default-slo-period`.
pub fn sloth(config: &Config, selection: &Selection) -> String {
    let mut by_window: BTreeMap<u64, Vec<SlothSlo>> = BTreeMap::new();
    for slo in slos(config, selection) {
        let severity =
            |s: &'static str| BTreeMap::from([("labels", BTreeMap::from([("severity", s)]))]);
        by_window
            .entry(slo.objective.window_days())
            .or_default()
            .push(SlothSlo {
                name: slo.name,
                objective: slo.objective.target(),
                description: slo.description,
                labels: slo.labels,
                sli: BTreeMap::from([(
                    "events",
                    BTreeMap::from([
                        ("error_query", go_template(&slo.errors)),
                        ("total_query", go_template(&slo.total)),
                    ]),
                )]),
                alerting: SlothAlerting {
                    name: "PulseObjectiveBurn",
                    page_alert: severity(if slo.pages { "critical" } else { "warning" }),
                    ticket_alert: severity("warning"),
                },
            });
    }
    let mut out = String::from(
        "# Generated by `pulse-exporter rules --format sloth` from the config: the objectives of\n\
         # docs/objectives.md as Sloth prometheus/v1 specs, one document per window. Generate each\n\
         # with `sloth generate --default-slo-period=<its window>`, instead of the generated\n\
         # rules' pulse-config-objectives group.\n",
    );
    for (days, slos) in by_window {
        let _ = writeln!(
            out,
            "---\n# window: {days}d (sloth generate --default-slo-period={days}d)"
        );
        let spec = SlothSpec {
            version: "prometheus/v1",
            service: "pulse-exporter",
            slos,
        };
        out.push_str(&serde_yaml::to_string(&spec).unwrap_or_default());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "sources:\n  - { name: db, kind: postgres, url: 'postgres://h/db', tier: primary }\n  - { name: cache, kind: redis, url: 'redis://h', objective: { target: 99.9, window: 7d }, latency_objectives: [{ name: get-fast, series: { command: get }, under: 4096us }] }\n  - { name: pay, kind: stripe, api_key: sk_x, objective: false }\ntemplates:\n  - { name: fleet, kind: redis, url: 'redis://{{target}}', allowed_targets: ['.*'] }\njobs:\n  - { name: rollup, every: 5m, token: 0123456789abcdef0, latency_objectives: [{ name: quick, under: 64s }] }\njob_keys:\n  - { name: scripts, key: fedcba98765432100, every: 1h }\n";

    fn documents(text: &str) -> Vec<serde_yaml::Value> {
        text.split("\n---\n")
            .skip(1)
            .map(|d| serde_yaml::from_str(d).unwrap())
            .collect()
    }

    fn parses(expr: &str) {
        let expr = expr.replace("{{.window}}", "5m");
        if let Err(e) = promql_parser::parser::parse(&expr) {
            panic!("{expr}: {e}");
        }
    }

    fn load() -> Config {
        crate::config::load_str(CONFIG).unwrap()
    }

    /// The fields Pyrra's CRD requires (spec.target as a string, window, one indicator with
    /// its two metrics), every metric a selector Prometheus parses, and names Kubernetes takes.
    /// Read from pyrra-dev/pyrra's `config/crd/bases/pyrra.dev_servicelevelobjectives.yaml`
    /// and its admission check (`kubernetes/api/v1alpha1`), as of commit 1ba95af (2026-08).
    #[test]
    fn pyrra_objects_hold_what_the_crd_requires_for_every_objective_but_the_jobs() {
        let text = pyrra(&load(), &Selection::default());
        let docs = documents(&text);
        let names: Vec<&str> = docs
            .iter()
            .map(|d| d["metadata"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "db-availability",
                "cache-availability",
                "cache-get-fast",
                "pay-delivery",
                "fleet-availability"
            ]
        );
        for d in &docs {
            assert_eq!(d["apiVersion"], "pyrra.dev/v1alpha1");
            assert_eq!(d["kind"], "ServiceLevelObjective");
            let name = d["metadata"]["name"].as_str().unwrap();
            assert!(
                name.len() <= 63
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
                "{name}"
            );
            let spec = &d["spec"];
            assert!(
                spec["target"].is_string(),
                "{name}: Pyrra reads the target as a string"
            );
            assert!(spec["window"].as_str().unwrap().ends_with('d'));
            let indicator = spec["indicator"].as_mapping().unwrap();
            assert_eq!(indicator.len(), 1, "{name}: one indicator");
            let (kind, body) = indicator.iter().next().unwrap();
            let bad = match kind.as_str().unwrap() {
                "ratio" => "errors",
                "latency" => "success",
                other => panic!("{other}"),
            };
            for key in [bad, "total"] {
                parses(body[key]["metric"].as_str().unwrap());
            }
        }
        assert_eq!(docs[0]["spec"]["target"], "99.5");
        assert_eq!(docs[1]["spec"]["window"], "7d");
        assert_eq!(
            docs[2]["spec"]["indicator"]["latency"]["success"]["metric"],
            "pulse_redis_command_duration_seconds_bucket{source=\"cache\", command=\"get\", le=\"0.004096\"}"
        );
        assert_eq!(
            docs[4]["spec"]["indicator"]["ratio"]["errors"]["metric"],
            "pulse_source_probe_failures_total{source=~\"fleet/.+\"}"
        );
        assert!(text.contains("# job-rollup-runs: not written"), "{text}");
        assert!(text.contains("# job-rollup-quick: not written"), "{text}");
    }

    /// Sloth's spec: version, service, and per objective a name, a target, both event
    /// queries with `{{.window}}` that parse once it is filled in, and the alert's name; one
    /// document per window; every objective the generated rules alert on is there. Read from
    /// slok/sloth's `pkg/prometheus/api/v1` and its validator (`pkg/common/validation`), as of
    /// commit 0e395d8 (2026-04).
    #[test]
    fn sloth_specs_hold_every_objective_the_rules_alert_on_one_document_per_window() {
        let config = load();
        let docs = documents(&sloth(&config, &Selection::default()));
        assert_eq!(docs.len(), 2, "7d and 28d");
        let mut names = Vec::new();
        for d in &docs {
            assert_eq!(d["version"], "prometheus/v1");
            assert_eq!(d["service"], "pulse-exporter");
            for slo in d["slos"].as_sequence().unwrap() {
                let name = slo["name"].as_str().unwrap();
                let objective = slo["objective"].as_f64().unwrap();
                assert!(objective > 0.0 && objective < 100.0);
                for q in ["error_query", "total_query"] {
                    let query = slo["sli"]["events"][q].as_str().unwrap();
                    assert!(query.contains("[{{.window}}]"), "{name}: {query}");
                    parses(query);
                }
                assert_eq!(slo["alerting"]["name"], "PulseObjectiveBurn");
                names.push(name.to_owned());
            }
        }
        assert_eq!(
            docs[0]["slos"][0]["name"], "cache-availability",
            "the 7d one first"
        );
        assert_eq!(
            docs[1]["slos"][0]["alerting"]["page_alert"]["labels"]["severity"],
            "critical"
        );
        let fast = super::super::objectives::rules(&config, &Selection::default())
            .iter()
            .filter(|r| matches!(r, super::super::objectives::ObjectiveRule::Alert { alert, .. } if alert == "PulseObjectiveFastBurn"))
            .count();
        assert_eq!(names.len(), fast, "{names:?}");
        names.sort();
        names.dedup();
        assert_eq!(names.len(), fast, "names are unique");
    }

    /// Names that Kubernetes and Sloth both take, one per objective: Sloth's name rule
    /// (letters, digits, `-`, `_`, `.`, starting and ending with a letter or digit) and a
    /// number after a name that came out the same as an earlier one's. Pyrra's latency bound
    /// parses as a number (its admission check refuses anything else).
    #[test]
    fn names_stay_unique_and_take_both_tools_rules_and_a_bound_parses() {
        let config = crate::config::load_str(
            "sources:\n  - { name: a.b, kind: redis, url: 'redis://h', latency_objectives: [{ name: tiny, under: 1us }] }\n  - { name: a-b, kind: redis, url: 'redis://h' }\n  - { name: A_b, kind: redis, url: 'redis://h' }\n",
        )
        .unwrap();
        let names: Vec<String> = slos(&config, &Selection::default())
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(
            names,
            [
                "a-b-availability",
                "a-b-tiny",
                "a-b-availability-2",
                "a-b-availability-3"
            ]
        );
        let sloth_name = regex::Regex::new(r"^[A-Za-z0-9][-A-Za-z0-9_.]*[A-Za-z0-9]$").unwrap();
        assert!(names.iter().all(|n| sloth_name.is_match(n)), "{names:?}");
        let docs = documents(&pyrra(&config, &Selection::default()));
        let success = docs[1]["spec"]["indicator"]["latency"]["success"]["metric"]
            .as_str()
            .unwrap();
        let le = success
            .split("le=\"")
            .nth(1)
            .unwrap()
            .trim_end_matches("\"}");
        assert_eq!(le.parse::<f64>().unwrap(), 1e-6, "{success}");
    }
}
