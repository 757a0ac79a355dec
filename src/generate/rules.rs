//! Prometheus alerting rules of a config: each source down, each check failing or stale, the
//! threshold alerts checks opt into with `alert:`, and the bundle's worker-pool and queue
//! alerts for the sources with heartbeat checks, RabbitMQ queues or the bundle's queue metrics. The annotations say what the check
//! measures (its `description` or `help`) and how to find out why, so the page explains
//! itself; the alert names and labels are those of the bundled alerts, whose runbook sections
//! and Alertmanager inhibitions they share.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::bundle::{Alert, Declared, Selection};
use super::style::{self, fold};
use super::usual::{usual, Usual};
use super::{any_of, eq, matchers, selector, source_is, template_safe, CheckInfo};
use crate::config::{Config, SourceConfig};
use crate::config_core::display::{Ratio, Threshold, DEFAULT_RATIO_WINDOW};
use crate::config_core::drop_alert::{promql_duration, DropAlert};
use crate::config_core::dur_text;
use crate::config_core::shape::{Series, Shape};
use crate::series::own_metrics::{CHECK_LAST_SUCCESS, CHECK_SUCCESS, SOURCE_UP};

/// How a copied alert is kept to the sources of the config it was generated from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// The alert's series carry `source`: its declaration is rendered with a selector of
    /// the sources.
    Source,
    /// Business series carry no `source`: kept on the exporters (`instance`) that run one of
    /// the sources, which are those of this config, by a join with their `pulse_source_up`.
    Instance,
}

/// The groups of bundled alerts a generated file copies from, for the sources whose checks
/// publish what they fire on: the queue alerts, and the pool alerts of heartbeat checks.
const QUEUES: &str = "pulse-queues";
const WORKERS: &str = "pulse-workers";

/// The group whose alerts a generated file copies for every source of its config (the ones
/// about one source or one check apart: see [`is_per_source`], [`is_per_check`]).
const SOURCES: &str = "pulse-sources";

/// The group of the job alerts, copied for the config's jobs.
const JOBS: &str = "pulse-jobs";

/// A source's down alert (PulseSourceDown): of the source alerts, the one that fires on
/// the health probe alone. The generated file writes one per source.
fn is_per_source(alert: &Alert) -> bool {
    alert.fires_on() == [SOURCE_UP.name]
}

/// A check's failing alert (PulseCheckFailing): of the source alerts, the one that fires on
/// a check's outcome. The generated file writes one per check.
fn is_per_check(alert: &Alert) -> bool {
    alert.fires_on().iter().any(|m| m == CHECK_SUCCESS.name)
}

/// The bundled alerts a check's series brings, found by what they fire on: the pool alerts
/// for a heartbeat check, the queue alerts firing on a metric it publishes (a kind's
/// built-in set, or a check publishing the bundle's queue metrics, `app_queue_depth`, …).
fn bundled_for(series: &Series, declared: &Declared) -> Vec<String> {
    match &series.shape {
        Shape::Workers { .. } => declared
            .group(WORKERS)
            .into_iter()
            .map(|a| a.name.clone())
            .collect(),
        Shape::Builtin(set) => declared.firing_on(QUEUES, &set.metrics()),
        _ => declared.firing_on(QUEUES, &[series.metric.as_str()]),
    }
}

/// How the copy of a bundled alert is scoped: by instance where it fires on a business
/// series (`app_…`, which carry no `source` label), else by source.
fn scope_of(alert: &Alert) -> Scope {
    match alert.fires_on().iter().any(|m| !m.starts_with("pulse_")) {
        true => Scope::Instance,
        false => Scope::Source,
    }
}

/// A declared alert as a rule of the generated file.
fn rule_of(alert: &Alert) -> Rule {
    Rule {
        alert: alert.name.clone(),
        expr: alert.expr.clone(),
        for_: alert.for_.clone(),
        labels: alert.labels.clone(),
        annotations: alert.annotations.clone(),
    }
}

/// The declarations rendered for each selection a file's copies need, each rendered and
/// read once however many alerts it gives.
#[derive(Default)]
struct Renderings(BTreeMap<Selection, Declared>);

impl Renderings {
    fn of(&mut self, selection: &Selection) -> &Declared {
        self.0
            .entry(selection.clone())
            .or_insert_with(|| Declared::of(selection))
    }
}

/// `selection`'s selector as the extra matcher of a generated selector, if it has one.
fn extra(selection: &Selection) -> Option<&str> {
    Some(selection.selector()).filter(|s| !s.is_empty())
}

/// The bundled alert `name` for `sources` only, so two teams' generated files in one
/// Prometheus never fire twice for the same pool or queue: rendered with a selector of them
/// where its series carry `source`, or else kept where one of them is scraped (see
/// [`Scope`]).
fn bundled(
    name: &str,
    sources: &[&str],
    selection: &Selection,
    renderings: &mut Renderings,
) -> Option<Rule> {
    let scope = scope_of(renderings.of(selection).get(name)?);
    match scope {
        Scope::Source => renderings
            .of(&selection.and(&any_of("source", sources)))
            .get(name)
            .map(rule_of),
        Scope::Instance => {
            let scope = fold(&selector(
                SOURCE_UP.name,
                &[any_of("source", sources)],
                extra(selection),
            ));
            let on = selection.grouping("instance");
            renderings
                .of(selection)
                .get(name)
                .map(|a| joined(rule_of(a), &on, &scope))
        }
    }
}

/// `rule` kept where `scope` has a series with the same `on` labels.
fn joined(mut rule: Rule, on: &str, scope: &str) -> Rule {
    rule.expr = format!("(\n{}\n)\nand on ({on}) {scope}", rule.expr);
    rule
}

/// The bundled source alerts but the one down alert per source and the failing alert per
/// check (the generated file writes those itself): a generated file replaces that group,
/// so it carries each of them, kept to the config's sources and template targets: each
/// configured source by name, each template's targets by their `NAME/TARGET` sources.
fn source_alerts(config: &Config, selection: &Selection, renderings: &mut Renderings) -> Vec<Rule> {
    let Some(matcher) = super::any_source(SourceConfig::all(config)) else {
        return Vec::new();
    };
    renderings
        .of(&selection.and(&matcher))
        .group(SOURCES)
        .into_iter()
        .filter(|a| !is_per_source(a) && !is_per_check(a))
        .map(rule_of)
        .collect()
}

/// The bundle's job alerts for the config's jobs: the declared ones by name and those its
/// ping keys make by `key`, so two teams' generated files never fire twice for one job.
fn job_rules(config: &Config, selection: &Selection, renderings: &mut Renderings) -> Vec<Rule> {
    let jobs = &config.jobs;
    if jobs.is_empty() {
        return Vec::new();
    }
    // A job's series are told by `job_name` or `key`, two alternatives no one selector
    // holds: the copies are joined with the config's jobs instead.
    let scope = format!("({})", super::jobs_scope(jobs, extra(selection)));
    let on = selection.grouping("instance, job_name");
    renderings
        .of(selection)
        .group(JOBS)
        .into_iter()
        .map(|a| joined(rule_of(a), &on, &scope))
        .collect()
}

#[derive(Serialize)]
struct File {
    groups: Vec<Group>,
}

#[derive(Serialize)]
struct Group {
    name: String,
    rules: Vec<Entry>,
}

/// A rule of a group: an alert of the checks and sources, or a rule of the objectives.
#[derive(Serialize)]
#[serde(untagged)]
enum Entry {
    Rule(Rule),
    Objective(super::objectives::ObjectiveRule),
}

#[derive(Serialize)]
struct Rule {
    alert: String,
    expr: String,
    /// Empty for an alert that fires at once (no `for:`, as PulseSourceCrashLooping).
    #[serde(rename = "for", skip_serializing_if = "String::is_empty")]
    for_: String,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
}

/// The runbook text of a check's alert: what it measures and how to find out more.
fn runbook(check: &CheckInfo<'_>, what: &str) -> String {
    // `what` is template-safe already; the names are made so here.
    let source = template_safe(&check.source.common.name);
    let name = template_safe(&check.plan.check);
    let pin = source_is(check.source);
    format!(
        "What it measures: {what}\n\
         1. Open the row `{source}` of the generated dashboard (`pulse-exporter dashboards`, or /dashboards.json): the panel `{name}` shows the value, DEGRADED while the check fails.\n\
         2. `pulse-exporter probe --config.file <file>` runs every check once and prints its outcome and error.\n\
         3. pulse_check_failures_total{{{pin}, check=\"{name}\"}} counts failures by reason (timeout, connect, auth, query, decode, …); the exporter log has each failure's error (event=check.failing).\n\
         4. If the source itself is down, PulseSourceDown fires too and its runbook comes first."
    )
}

/// What a check measures, for annotations.
fn what(check: &CheckInfo<'_>) -> String {
    let text = check
        .common
        .description
        .clone()
        .or_else(|| check.common.help.clone())
        .unwrap_or_else(|| {
            format!(
                "check {} of source {}",
                check.plan.check, check.source.common.name
            )
        });
    let text = text.trim_end();
    match text.ends_with(['.', '!', '?']) {
        true => template_safe(text),
        false => template_safe(&format!("{text}.")),
    }
}

/// A rule's labels or annotations; a pair with no value is left out (a rule label set
/// empty would remove the series' own, as [`source_label`] needs for templates).
fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// The `source` label a source's alerts carry: its name; none for a template, whose targets'
/// series carry their own (`NAME/TARGET`), so each target alerts on its own.
fn source_label(s: &SourceConfig) -> &str {
    match s.is_template() {
        true => "",
        false => &s.common.name,
    }
}

/// The `template` label a template's alerts carry (a rule per template, told apart by it);
/// none for a configured source.
fn template_label(s: &SourceConfig) -> &str {
    match s.is_template() {
        true => &s.common.name,
        false => "",
    }
}

/// The source as an annotation names it: its name, or for a template the target's source.
fn shown_source(s: &SourceConfig) -> String {
    match s.is_template() {
        true => "{{ $labels.source }}".to_owned(),
        false => template_safe(&s.common.name),
    }
}

/// The error-ratio alert of `series` with `alert.ratio`: the share of the chosen label values
/// in the sum over that label, judged only while the sum reaches `min_total`.
fn ratio_rule(
    c: &CheckInfo<'_>,
    selection: &Selection,
    series: &Series,
    alert: &Threshold,
    ratio: &Ratio,
    what: &str,
    runbook: &str,
) -> Option<Rule> {
    let (op, bound) = alert.comparison().ok()?;
    let (alert_name, word) = match op {
        ">" => ("PulseCheckRatioAboveThreshold", "above"),
        _ => ("PulseCheckRatioBelowThreshold", "below"),
    };
    let values: Vec<&str> = ratio.values.iter().map(String::as_str).collect();
    let shown_values = template_safe(&values.join(", "));
    let label = &ratio.label;
    let m = matchers(c, series);
    let mut part_m = m.clone();
    part_m.push(any_of(label, &values));
    let (total, part, over) = match series.shape {
        Shape::Counter => {
            let window = dur_text(ratio.window.map_or(DEFAULT_RATIO_WINDOW, |w| w.0));
            let inc = |m: &[String]| {
                let increase = format!(
                    "increase({}[{window}])",
                    selector(&series.metric, m, extra(selection))
                );
                format!("sum without ({label}) ({})", fold(&increase))
            };
            (inc(&m), inc(&part_m), format!("over {window}"))
        }
        Shape::Gauge => {
            let sum = |m: &[String]| {
                format!(
                    "sum without ({label}) ({})",
                    fold(&selector(&series.metric, m, extra(selection)))
                )
            };
            (sum(&m), sum(&part_m), "as the check counts them".to_owned())
        }
        // Validation admits only counters and gauges.
        _ => return None,
    };
    let min = ratio.min_total;
    let for_ = dur_text(alert.for_.0);
    Some(Rule {
        // No series of the chosen values is a share of 0, not no share: `or` fills it in.
        expr: format!("({part} or {total} * 0)\n/ {total} {op} {bound}\nand {total} >= {min}"),
        for_: for_.clone(),
        labels: labels(&[
            ("severity", alert.severity.label()),
            ("check", &c.plan.check),
            ("source", source_label(c.source)),
            ("template", template_label(c.source)),
        ]),
        annotations: labels(&[
            ("summary", &format!("{} {shown_values} is {{{{ $value | humanizePercentage }}}} of the total on {{{{ $labels.instance }}}}, {word} {bound}", template_safe(&series.metric))),
            ("description", &format!("{what} The share of {label} {shown_values} in {} ({over}, with at least {min} in all) has stayed {word} {bound} for {for_}.", series.metric)),
            ("runbook", runbook),
            ("runbook_url", &style::runbook_url(alert_name)),
        ]),
        alert: alert_name.to_owned(),
    })
}

/// The drop-against-usual alert of `series` with `drop:`: its value (a counter's increase over
/// the window, or a gauge as it is) under `ratio` × the median of the values one, two, …
/// `periods` periods ago, judged only where the usual reaches `min_usual` and at least two
/// past periods are known. The same alert as the bundle's business signals
/// (PulseBusinessSignalLow), with `signal` the check's name.
fn drop_rule(
    c: &CheckInfo<'_>,
    selection: &Selection,
    series: &Series,
    drop: &DropAlert,
    what: &str,
    runbook: &str,
) -> Option<Rule> {
    let Usual {
        now,
        usual,
        known,
        measured,
    } = usual(
        c,
        series,
        drop,
        extra(selection),
        &selection.grouping("instance"),
    )?;
    let (ratio, min, periods) = (drop.ratio, drop.min_usual, drop.periods);
    let period = promql_duration(drop.period.0);
    let for_ = dur_text(drop.for_.0);
    let shown = template_safe(&c.plan.check);
    Some(Rule {
        alert: "PulseBusinessSignalLow".to_owned(),
        expr: format!(
            "{now} < {ratio} * {usual}\nand {usual} >= {min}\nand {known}"
        ),
        for_: for_.clone(),
        labels: labels(&[
            ("severity", drop.severity.label()),
            ("check", &c.plan.check),
            ("source", source_label(c.source)),
            ("template", template_label(c.source)),
            ("signal", &c.plan.check),
        ]),
        annotations: labels(&[
            ("summary", &format!("{shown} far below the usual for this time on {{{{ $labels.instance }}}}")),
            ("description", &format!("{what} The {measured} of {} is {{{{ $value | humanize }}}}: it has stayed under {ratio} × its usual (the median of the same time over the last {periods} periods of {period}) for {for_}, at a time whose usual is at least {min}.", series.metric)),
            ("runbook", runbook),
            ("runbook_url", &style::runbook_url("PulseBusinessSignalLow")),
        ]),
    })
}

/// The down alert of one source (PulseSourceDown, see [`is_per_source`]): the bundled alert
/// rendered with a selector of the source (its expression, `for:` and severity as
/// declared), with annotations that name it.
fn source_down_rule(
    s: &SourceConfig,
    selection: &Selection,
    renderings: &mut Renderings,
) -> Option<Rule> {
    let mut rule = renderings
        .of(&selection.and(&source_is(s)))
        .group(SOURCES)
        .into_iter()
        .find(|a| is_per_source(a))
        .map(rule_of)?;
    let name = rule.alert.clone();
    let kind = s.kind.name();
    let shown = shown_source(s);
    let for_ = &rule.for_;
    // The source label as well, though the series carries it: promtool reports rules of
    // one name and the same labels as duplicates.
    rule.labels.extend(labels(&[
        ("source", source_label(s)),
        ("template", template_label(s)),
    ]));
    rule.annotations = labels(&[
        ("summary", &format!("{kind} source {shown} is down")),
        ("description", &format!("The health probe of {shown} ({kind}) on {{{{ $labels.instance }}}} has failed for {}: every panel of its row reads DEGRADED. pulse_source_probe_failures_total has the reason.", for_text(for_))),
        ("runbook_url", &style::runbook_url(&name)),
    ]);
    Some(rule)
}

/// A `for:` as a description says it: `2m` is "2 minutes".
fn for_text(for_: &str) -> String {
    let (number, unit) = for_.split_at(
        for_.trim_end_matches(|c: char| c.is_ascii_alphabetic())
            .len(),
    );
    let unit = match (unit, number == "1") {
        ("s", true) => "second",
        ("s", false) => "seconds",
        ("m", true) => "minute",
        ("m", false) => "minutes",
        ("h", true) => "hour",
        ("h", false) => "hours",
        _ => return for_.to_owned(),
    };
    format!("{number} {unit}")
}

/// `expr` with `matcher` added to every selector of a check's outcome.
fn pin_check(expr: &str, matcher: &str) -> String {
    let pattern = format!("{}{{", CHECK_SUCCESS.name);
    let mut out = String::new();
    let mut rest = expr;
    while let Some(at) = rest.find(&pattern) {
        let open = at + pattern.len();
        let Some(close) = rest[open..].find('}').map(|c| open + c) else {
            break;
        };
        let inner = &rest[open..close];
        let sep = if inner.is_empty() { "" } else { ", " };
        out.push_str(&rest[..close]);
        out.push_str(sep);
        out.push_str(matcher);
        rest = &rest[close..];
    }
    out.push_str(rest);
    out
}

/// The failing alert (PulseCheckFailing, see [`is_per_check`]) and PulseCheckStale for one
/// check. The failing alert is the bundled declaration rendered for the check's source
/// (`failing`), the check's name pinned on the check's series alone (a selector with it
/// substituted into both would ask `pulse_source_up` for a `check` label it never has).
/// PulseCheckStale has no bundled counterpart: its bound is the check's `stale_after`,
/// which only the config knows.
fn check_rules(
    c: &CheckInfo<'_>,
    failing: &Rule,
    selection: &Selection,
    what: &str,
    runbook: &str,
) -> Vec<Rule> {
    let source = shown_source(c.source);
    let name = &c.plan.check;
    let pin = [source_is(c.source), eq("check", name)];
    let up = format!(
        "max without (pod) ({}) == 1",
        selector(SOURCE_UP.name, &[source_is(c.source)], extra(selection))
    );
    let on = selection.grouping("instance, source");
    let shown = template_safe(name);
    let severity = failing
        .labels
        .get("severity")
        .map_or("warning", String::as_str);
    let check_labels = labels(&[
        ("severity", severity),
        ("check", name),
        ("source", source_label(c.source)),
        ("template", template_label(c.source)),
    ]);
    let mut checks = Vec::new();
    checks.push(Rule {
        alert: failing.alert.clone(),
        expr: pin_check(&failing.expr, &eq("check", name)),
        for_: failing.for_.clone(),
        labels: check_labels.clone(),
        annotations: labels(&[
            ("summary", &format!("Check {shown} of {source} is failing")),
            ("description", &format!("{what} Check {shown} has failed for {} while its source is up; its panel reads DEGRADED.", for_text(&failing.for_))),
            ("runbook", runbook),
            ("runbook_url", &style::runbook_url(&failing.alert)),
        ]),
    });
    let stale = c.plan.stale_after;
    checks.push(Rule {
        alert: "PulseCheckStale".to_owned(),
        expr: format!(
            "time() - {} > {}\nand on ({on}) {up}",
            fold(&selector(CHECK_LAST_SUCCESS.name, &pin, extra(selection))),
            stale.as_secs()
        ),
        for_: "1m".to_owned(),
        labels: check_labels,
        annotations: labels(&[
            ("summary", &format!("Check {shown} of {source} has not succeeded for {}", dur_text(stale))),
            ("description", &format!("{what} The last success of check {shown} is older than its stale_after ({}): its samples are no longer served, its panel reads NO DATA and alerts on its metric cannot fire.", dur_text(stale))),
            ("runbook", runbook),
            ("runbook_url", &style::runbook_url("PulseCheckStale")),
        ]),
    });
    checks
}

/// The threshold alerts of a check's series with `alert:` (their own or the check's).
fn threshold_rules(
    c: &CheckInfo<'_>,
    selection: &Selection,
    what: &str,
    runbook: &str,
) -> Vec<Rule> {
    let source = source_label(c.source);
    let template = template_label(c.source);
    let name = &c.plan.check;
    let shown = template_safe(name);
    let mut thresholds = Vec::new();
    for series in &c.series {
        // A series' own alert (a log file's counter) or the check's.
        let Some(alert) = series.alert.as_ref().or(c.common.alert.as_ref()) else {
            continue;
        };
        let Ok((op, bound)) = alert.comparison() else {
            continue;
        };
        if let Some(ratio) = &alert.ratio {
            thresholds.extend(ratio_rule(
                c, selection, series, alert, ratio, what, runbook,
            ));
            continue;
        }
        let (name_suffix, word) = match op {
            ">" => ("Above", "above"),
            _ => ("Below", "below"),
        };
        let sel = selector(&series.metric, &matchers(c, series), extra(selection));
        let (value, measured) = match series.shape {
            Shape::Timestamp => (format!("time() - {}", fold(&sel)), "age in seconds"),
            Shape::Counter => (fold(&format!("rate({sel}[5m])")), "per-second rate"),
            Shape::Gauge | Shape::TopN | Shape::Summary => (fold(&sel), "value"),
            // Heartbeats and built-in sets are rejected with `alert:` by validation.
            _ => continue,
        };
        let alert_name = format!("PulseCheck{name_suffix}Threshold");
        thresholds.push(Rule {
            expr: format!("{value} {op} {bound}"),
            for_: dur_text(alert.for_.0),
            labels: labels(&[
                ("severity", alert.severity.label()),
                ("check", name),
                ("source", source),
                ("template", template),
            ]),
            annotations: labels(&[
                ("summary", &format!("{shown} {measured} is {{{{ $value | humanize }}}} on {{{{ $labels.instance }}}}, {word} {bound}")),
                ("description", &format!("{what} The {measured} of {} has stayed {word} {bound} for {}. A threshold alert cannot fire on missing data: PulseCheckStale covers that.", series.metric, dur_text(alert.for_.0))),
                ("runbook", runbook),
                ("runbook_url", &style::runbook_url(&alert_name)),
            ]),
            alert: alert_name,
        });
    }
    thresholds
}

/// What a config's checks make: their own rules by group, and the bundled alerts their
/// series bring (name, the sources whose checks bring it, in file order).
#[derive(Default)]
struct CheckRules {
    checks: Vec<Rule>,
    thresholds: Vec<Rule>,
    drops: Vec<Rule>,
    brought: Vec<(String, Vec<String>)>,
}

/// The rules of every check of `config`, and the bundled alerts they bring.
fn check_rules_of(
    config: &Config,
    selection: &Selection,
    renderings: &mut Renderings,
) -> CheckRules {
    let mut out = CheckRules::default();
    for c in super::checks(config) {
        // The bundle's pool and queue alerts are scoped to configured sources by name.
        if !c.source.is_template() {
            let declared = renderings.of(selection);
            for alert in c.series.iter().flat_map(|s| bundled_for(s, declared)) {
                let source = c.source.common.name.clone();
                match out.brought.iter_mut().find(|(a, _)| *a == alert) {
                    Some((_, sources)) if !sources.contains(&source) => sources.push(source),
                    Some(_) => {}
                    None => out.brought.push((alert, vec![source])),
                }
            }
        }
        let what = what(&c);
        let runbook = runbook(&c, &what);
        let failing = renderings
            .of(&selection.and(&source_is(c.source)))
            .group(SOURCES)
            .into_iter()
            .find(|a| is_per_check(a))
            .map(rule_of);
        if let Some(failing) = &failing {
            out.checks
                .extend(check_rules(&c, failing, selection, &what, &runbook));
        }
        if let Some(drop) = &c.common.drop {
            for series in &c.series {
                out.drops
                    .extend(drop_rule(&c, selection, series, drop, &what, &runbook));
            }
        }
        out.thresholds
            .extend(threshold_rules(&c, selection, &what, &runbook));
    }
    out
}

/// The objectives' group (see [`super::objectives`]), when a source has one.
fn objective_group(config: &Config, selection: &Selection) -> Option<Group> {
    let rules = super::objectives::rules(config, selection);
    (!rules.is_empty()).then(|| Group {
        name: "pulse-config-objectives".to_owned(),
        rules: rules.into_iter().map(Entry::Objective).collect(),
    })
}

/// The rules of `config`, as a Prometheus rule file, reading the series `selection` picks.
pub fn rules(config: &Config, selection: &Selection) -> String {
    let mut renderings = Renderings::default();
    let mut sources: Vec<Rule> = SourceConfig::all(config)
        .filter_map(|s| source_down_rule(s, selection, &mut renderings))
        .collect();
    sources.extend(source_alerts(config, selection, &mut renderings));
    let CheckRules {
        checks,
        thresholds,
        drops,
        brought,
    } = check_rules_of(config, selection, &mut renderings);
    let worker_alerts: Vec<String> = renderings
        .of(selection)
        .group(WORKERS)
        .into_iter()
        .map(|a| a.name.clone())
        .collect();
    let (workers, queues): (Vec<Rule>, Vec<Rule>) = brought
        .iter()
        .filter_map(|(alert, sources)| {
            let sources: Vec<&str> = sources.iter().map(String::as_str).collect();
            bundled(alert, &sources, selection, &mut renderings)
        })
        .partition(|r| worker_alerts.contains(&r.alert));
    let jobs = job_rules(config, selection, &mut renderings);
    let groups = [
        ("pulse-config-sources", sources),
        ("pulse-config-checks", checks),
        ("pulse-config-thresholds", thresholds),
        ("pulse-config-business", drops),
        ("pulse-config-workers", workers),
        ("pulse-config-queues", queues),
        ("pulse-config-jobs", jobs),
    ]
    .into_iter()
    .filter(|(_, rules)| !rules.is_empty())
    .map(|(name, rules)| Group {
        name: name.to_owned(),
        rules: rules.into_iter().map(Entry::Rule).collect(),
    })
    .chain(objective_group(config, selection))
    .collect();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Generated by `pulse-exporter rules` from the config: each source down, flapping,\n\
         # crash-looping, slow or with an expiring certificate, each check failing\n\
         # or stale, the threshold alerts of the checks with `alert:`, the drop-against-usual\n\
         # alerts of the checks with `drop:`, the bundle's worker-pool\n\
         # alerts for the sources with heartbeat checks, and its queue alerts for RabbitMQ sources\n\
         # and checks publishing the bundle's queue metrics (app_queue_depth, …), and its job\n\
         # alerts for the jobs of `jobs:` and `job_keys:`, and each source's objective: its\n\
         # error ratios recorded, and a page or a ticket when its budget burns (docs/objectives.md).\n\
         # Regenerate it after changing the config.\n\
         # It takes the place of the `pulse-sources`, `pulse-queues`, `pulse-workers`\n\
         # and `pulse-jobs` groups of the bundled alerts/pulse-alerts.yml (same alert names,\n\
         # runbook sections and inhibitions): load it with that file's `pulse-exporter` group,\n\
         # not beside those four."
    );
    if let Some(flags) = selection.flags() {
        let _ = writeln!(out, "# Rendered with {flags}.");
    }
    out.push_str(&serde_yaml::to_string(&File { groups }).unwrap_or_default());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules_of(yaml: &str) -> serde_yaml::Value {
        let config = crate::config::load_str(yaml).unwrap();
        serde_yaml::from_str(&rules(&config, &Selection::default())).unwrap()
    }

    /// The group `name` of a rule file, if it has one.
    fn group<'a>(r: &'a serde_yaml::Value, name: &str) -> Option<&'a serde_yaml::Value> {
        r["groups"]
            .as_sequence()
            .unwrap()
            .iter()
            .find(|g| g["name"] == name)
    }

    #[test]
    fn a_drop_check_gets_the_business_signal_alert_with_its_own_numbers() {
        let r = rules_of(
            "sources:\n  - name: app-db\n    kind: postgres\n    url: postgres://127.0.0.1/x\n    checks:\n      - { name: signups, metric: app_signups_1h, sql: 'SELECT 1 AS value', drop: { ratio: 0.3, min_usual: 50, period: 1d, periods: 3, for: 20m, severity: critical } }\n",
        );
        let business = group(&r, "pulse-config-business").expect("a business group");
        let rule = &business["rules"][0];
        assert_eq!(rule["alert"], "PulseBusinessSignalLow");
        assert_eq!(rule["for"], "20m");
        for (k, v) in [
            ("severity", "critical"),
            ("check", "signups"),
            ("signal", "signups"),
            ("source", "app-db"),
        ] {
            assert_eq!(rule["labels"][k], v, "{k}");
        }
        let expr = rule["expr"].as_str().unwrap();
        assert!(
            expr.starts_with(
                "max without (pod) (app_signups_1h{}) < 0.3 * quantile without (periods_ago) (0.5,"
            ),
            "{expr}"
        );
        assert!(expr.contains("offset 3d"), "{expr}");
        assert!(!expr.contains("offset 4d"), "{expr}");
        assert!(
            expr.contains(") >= 50\nand count without (periods_ago)"),
            "{expr}"
        );
        assert!(rule["annotations"]["runbook_url"]
            .as_str()
            .unwrap()
            .ends_with("#pulsebusinesssignallow"));
        // Without `drop:`, no business group.
        let r = rules_of("sources:\n  - name: app-db\n    kind: postgres\n    url: postgres://127.0.0.1/x\n    checks:\n      - { metric: app_x, sql: 'SELECT 1 AS value' }\n");
        assert!(!r["groups"]
            .as_sequence()
            .unwrap()
            .iter()
            .any(|g| g["name"] == "pulse-config-business"));
    }

    #[test]
    fn every_source_and_check_gets_its_alerts_and_a_threshold_its_own() {
        let r = rules_of(
            "sources:\n  - name: cache\n    kind: redis\n    url: redis://127.0.0.1:6379\n    interval: 30s\n    keys:\n      - { key: jobs, metric: app_jobs_waiting, help: 'Jobs waiting {{ now }}.', alert: { above: 100, for: 5m, severity: critical } }\n",
        );
        let groups = r["groups"].as_sequence().unwrap();
        let names: Vec<&str> = groups.iter().map(|g| g["name"].as_str().unwrap()).collect();
        assert_eq!(
            names,
            [
                "pulse-config-sources",
                "pulse-config-checks",
                "pulse-config-thresholds",
                "pulse-config-objectives"
            ]
        );
        let stale = &groups[1]["rules"][1];
        assert_eq!(stale["alert"], "PulseCheckStale");
        assert!(
            stale["expr"].as_str().unwrap().contains("> 90\n"),
            "3 intervals of 30s"
        );
        let t = &groups[2]["rules"][0];
        assert_eq!(t["alert"], "PulseCheckAboveThreshold");
        assert_eq!(t["for"], "5m");
        assert_eq!(t["labels"]["severity"], "critical");
        assert_eq!(t["labels"]["check"], "jobs");
        assert_eq!(
            t["expr"],
            "max without (pod) (app_jobs_waiting{key=\"jobs\"}) > 100"
        );
        let runbook = t["annotations"]["runbook"].as_str().unwrap();
        assert!(
            runbook.starts_with("What it measures: Jobs waiting {{ \"{{\" }} now }}."),
            "{runbook}"
        );
    }

    #[test]
    fn heartbeat_checks_bring_the_bundled_worker_pool_alerts_for_their_sources_only() {
        let r = rules_of(
            "sources:\n  - name: cache\n    kind: redis\n    url: redis://127.0.0.1:6379\n    heartbeats:\n      - { pattern: 'w:gpu:*', pool: gpu, max_age: 30s }\n      - { pattern: 'w:cpu:*', pool: cpu, max_age: 30s }\n  - name: other\n    kind: redis\n    url: redis://127.0.0.1:6380\n",
        );
        let workers = group(&r, "pulse-config-workers").expect("a workers group");
        let rules = workers["rules"].as_sequence().unwrap();
        let bundle: serde_yaml::Value =
            serde_yaml::from_str(&crate::generate::bundle::ALERTS.rules(&Selection::default()))
                .unwrap();
        let names: Vec<&str> = rules.iter().map(|r| r["alert"].as_str().unwrap()).collect();
        assert_eq!(
            names,
            ["PulseWorkerPoolDown", "PulseWorkerPoolBelowMinimum"]
        );
        for rule in rules {
            let name = rule["alert"].as_str().unwrap();
            let original = bundle["groups"]
                .as_sequence()
                .unwrap()
                .iter()
                .flat_map(|g| g["rules"].as_sequence().unwrap())
                .find(|r| r["alert"] == name)
                .unwrap_or_else(|| panic!("{name} is not in the bundle"));
            // The same alert, its every series selected by the one source with heartbeats
            // (two pools, one rule).
            let expr = rule["expr"].as_str().unwrap();
            let declared = original["expr"].as_str().unwrap().trim_end();
            for (metric, matchers) in crate::generate::bundle::selectors(expr) {
                assert!(
                    matchers.contains(&"source=~\"cache\"".to_owned()),
                    "{metric}: {matchers:?} in {expr}"
                );
            }
            assert_eq!(
                expr.replace("{source=~\"cache\"}", "")
                    .replace(", source=~\"cache\"}", "}"),
                declared
            );
            for key in ["for", "labels", "annotations"] {
                assert_eq!(rule[key], original[key], "{name}: {key}");
            }
        }
        // Without heartbeat checks there is no workers group.
        let r = rules_of(
            "sources:\n  - name: other\n    kind: redis\n    url: redis://127.0.0.1:6380\n",
        );
        assert!(r["groups"]
            .as_sequence()
            .unwrap()
            .iter()
            .all(|g| g["name"] != "pulse-config-workers"));
    }

    #[test]
    fn queues_bring_the_bundled_queue_alerts_reading_no_recorded_series() {
        let r = rules_of(
            "sources:\n  - name: broker\n    kind: rabbitmq\n    management_url: http://127.0.0.1:15672\n    username: guest\n    password: guest\n  - name: cache\n    kind: redis\n    url: redis://127.0.0.1:6379\n    keys:\n      - { key: jobs, metric: app_queue_depth, label: queue }\n  - name: quiet\n    kind: redis\n    url: redis://127.0.0.1:6380\n",
        );
        let queues = group(&r, "pulse-config-queues").expect("a queues group");
        let rules = queues["rules"].as_sequence().unwrap();
        let names: Vec<&str> = rules.iter().map(|r| r["alert"].as_str().unwrap()).collect();
        assert_eq!(
            names,
            [
                "PulseQueueNotDraining",
                "PulseOldestJobTooOld",
                "PulseQueueDrainTooSlow",
                "PulseJobsNotProcessed"
            ]
        );
        let expr = |i: usize| rules[i]["expr"].as_str().unwrap().to_owned();
        // Nothing but this file is needed: the alert reads no recorded series, and every
        // series it reads is the broker's.
        assert!(!expr(0).contains("pulse:"), "{}", expr(0));
        assert!(
            expr(0).contains("min_over_time((sum without (state) (pulse_rabbitmq_queue_messages{dead_letter=\"false\", source=~\"broker\"}))[15m:1m])"),
            "{}",
            expr(0)
        );
        assert!(!expr(0).contains("dead_letter=\"false\"}"), "{}", expr(0));
        // Business queue metrics carry no `source`: kept on this config's exporters; the
        // oldest-job alert reads both kinds of series, so it is scoped the same way, by the
        // sources that brought it.
        assert!(expr(1).ends_with(
            "and on (instance) max without (pod) (pulse_source_up{source=~\"broker\"})"
        ));
        // The drain alert reads the broker's series alone.
        assert!(
            expr(2).contains(
                "pulse_rabbitmq_queue_drain_seconds{dead_letter=\"false\", source=~\"broker\"}"
            ),
            "{}",
            expr(2)
        );
        assert!(expr(3)
            .ends_with("and on (instance) max without (pod) (pulse_source_up{source=~\"cache\"})"));
    }

    /// The generated file takes the place of the bundle's `pulse-sources`, `pulse-queues`,
    /// `pulse-workers` and `pulse-jobs` groups: for a config that uses what each of their
    /// alerts reads, every alert of those groups is in it, and none of the groups left loaded
    /// beside it.
    #[test]
    fn the_generated_file_carries_every_alert_of_the_groups_it_replaces() {
        let config = crate::config::load_str(
            "sources:\n\
             - { name: db, kind: postgres, url: 'postgres://h/db', checks: [{ metric: app_jobs_pending, sql: SELECT 1 AS value }, { metric: app_job_latency_avg_seconds, sql: SELECT 1 AS value }] }\n\
             - { name: cache, kind: redis, url: 'redis://h', keys: [{ key: q, metric: app_queue_depth, label: queue }], heartbeats: [{ pattern: 'hb:*', pool: gpu, max_age: 2m }] }\n\
             - { name: mq, kind: rabbitmq, management_url: 'http://r:15672', username: u, password: p }\n\
             templates:\n\
             - { name: fleet, kind: redis, url: 'redis://{{target}}', allowed_targets: ['.*'] }\n\
             jobs:\n\
             - { name: nightly, every: 1d }\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let generated: serde_yaml::Value =
            serde_yaml::from_str(&rules(&config, &Selection::default())).unwrap();
        let names = |file: &serde_yaml::Value, groups: &dyn Fn(&str) -> bool| -> Vec<String> {
            let mut n: Vec<String> = file["groups"]
                .as_sequence()
                .unwrap()
                .iter()
                .filter(|g| groups(g["name"].as_str().unwrap()))
                .flat_map(|g| g["rules"].as_sequence().unwrap().clone())
                .filter_map(|r| r["alert"].as_str().map(str::to_owned))
                .collect();
            n.sort();
            n.dedup();
            n
        };
        let replaced = [
            "pulse-sources",
            "pulse-queues",
            "pulse-workers",
            "pulse-jobs",
        ];
        let bundle: serde_yaml::Value =
            serde_yaml::from_str(&crate::generate::bundle::ALERTS.rules(&Selection::default()))
                .unwrap();
        let in_generated = names(&generated, &|_| true);
        let wanted = names(&bundle, &|g| replaced.contains(&g));
        let missing: Vec<&String> = wanted
            .iter()
            .filter(|a| !in_generated.contains(a))
            .collect();
        assert!(
            missing.is_empty(),
            "missing from the generated file: {missing:?}"
        );
        let kept = names(&bundle, &|g| !replaced.contains(&g));
        let twice: Vec<&String> = kept.iter().filter(|a| in_generated.contains(a)).collect();
        assert!(
            twice.is_empty(),
            "in the generated file and a group loaded beside it: {twice:?}"
        );
        // Kept to the config's sources and template targets.
        let flapping = generated["groups"][0]["rules"]
            .as_sequence()
            .unwrap()
            .iter()
            .find(|r| r["alert"] == "PulseSourceFlapping")
            .unwrap();
        assert!(
            flapping["expr"]
                .as_str()
                .unwrap()
                .contains(r#"source=~"db|cache|mq|fleet/.+""#),
            "{flapping:?}"
        );
    }

    #[test]
    fn every_brought_alert_is_in_the_bundle_and_reads_no_recorded_series() {
        // Every kind with built-in metrics, as a config declares it.
        let config = crate::config::load_str(
            "sources:\n\
             - { name: q, kind: rabbitmq, management_url: 'http://r:15672', username: u, password: p }\n\
             - { name: b, kind: s3, bucket: x, region: r, canary: {}, prefixes: [{ prefix: a/ }] }\n\
             - { name: s, kind: stripe, api_key: sk_test_x }\n",
        )
        .unwrap();
        let mut shapes: Vec<Shape> = crate::generate::checks(&config)
            .into_iter()
            .flat_map(|c| c.series)
            .map(|s| s.shape)
            .collect();
        assert_eq!(
            shapes
                .iter()
                .filter(|s| matches!(s, Shape::Builtin(_)))
                .count(),
            5,
            "{shapes:?}"
        );
        shapes.push(Shape::Workers {
            pool: String::new(),
        });
        let declared = Declared::of(&Selection::default());
        let mut names: Vec<String> = shapes
            .into_iter()
            .flat_map(|shape| bundled_for(&Series::new("m", vec![], shape), &declared))
            .collect();
        assert!(
            names.iter().any(|n| n == "PulseQueueNotDraining"),
            "{names:?}"
        );
        assert!(
            names.iter().any(|n| n == "PulseOldestJobTooOld"),
            "{names:?}"
        );
        for metric in [
            "app_queue_depth",
            "app_jobs_oldest_pending_timestamp_seconds",
            "app_job_latency_avg_seconds",
        ] {
            let brought = declared.firing_on(QUEUES, &[metric]);
            assert!(!brought.is_empty(), "{metric} brings no queue alert");
            names.extend(brought);
        }
        for name in &names {
            let rule = bundled(
                name,
                &["s"],
                &Selection::default(),
                &mut Renderings::default(),
            )
            .unwrap_or_else(|| panic!("{name} not in the bundle"));
            assert!(!rule.expr.contains("pulse:"), "{name}: {}", rule.expr);
        }
    }

    /// `rules --selector … --cluster-label …`: every series a generated file reads carries
    /// the selector, and every `by (…)` and `on (…)` keeps the cluster, for every kind of rule
    /// it writes (sources, checks, thresholds, ratios, drops, pools, queues, jobs).
    #[test]
    fn the_knobs_reach_every_series_and_grouping_of_a_generated_file() {
        use promql_parser::parser::{Expr, LabelModifier};
        let config = crate::config::load_str(super::super::EVERY_KIND_OF_PANEL_AND_RULE)
            .unwrap_or_else(|e| panic!("{e}"));
        let selection = Selection::new("tenant=\"t1\"", Some("cluster")).unwrap();
        let file: serde_yaml::Value = serde_yaml::from_str(&rules(&config, &selection)).unwrap();
        let mut groups = 0;
        for group in file["groups"].as_sequence().unwrap() {
            groups += 1;
            for rule in group["rules"].as_sequence().unwrap() {
                let expr = rule["expr"].as_str().unwrap();
                for (metric, matchers) in crate::generate::bundle::selectors(expr) {
                    assert!(
                        matchers.contains(&"tenant=\"t1\"".to_owned()),
                        "{:?}: {metric} {matchers:?} in\n{expr}",
                        rule["alert"]
                    );
                }
                let parsed = promql_parser::parser::parse(expr).unwrap();
                crate::generate::bundle::walk(&parsed, &mut |node| {
                    let kept = match node {
                        Expr::Aggregate(a) => a.modifier.clone(),
                        Expr::Binary(b) => b.modifier.as_ref().and_then(|m| m.matching.clone()),
                        _ => None,
                    };
                    if let Some(LabelModifier::Include(l)) = kept {
                        assert!(
                            l.labels.iter().any(|l| l == "cluster"),
                            "{:?}: {:?} in\n{expr}",
                            rule["alert"],
                            l.labels
                        );
                    }
                });
            }
        }
        assert_eq!(groups, 8, "every group written");
    }

    #[test]
    fn a_ratio_alert_divides_the_chosen_values_by_the_total_and_needs_volume() {
        let r = rules_of(
            "sources:\n  - name: ai-log\n    kind: logfile\n    path: /tmp/ai.log\n    counters:\n      - { metric: app_ai_events_total, labels: { status: status }, alert: { above: 0.25, for: 5m, ratio: { label: status, values: [error, timeout], min_total: 50 } } }\n",
        );
        let t = r["groups"][2]["rules"][0].clone();
        assert_eq!(t["alert"], "PulseCheckRatioAboveThreshold");
        let inc = |extra: &str| {
            format!("sum without (status) (max without (pod) (increase(app_ai_events_total{{{extra}}}[15m])))")
        };
        let total = inc("");
        let part = inc("status=~\"error|timeout\"");
        assert_eq!(
            t["expr"].as_str().unwrap(),
            format!("({part} or {total} * 0)\n/ {total} > 0.25\nand {total} >= 50")
        );
        assert!(t["annotations"]["summary"]
            .as_str()
            .unwrap()
            .contains("error, timeout is {{ $value | humanizePercentage }} of the total"));
        // A gauge is compared as it is; the share of successes can be the one watched.
        let r = rules_of(
            "sources:\n  - name: db\n    kind: postgres\n    url: postgres://127.0.0.1/x\n    checks:\n      - { metric: app_payments, sql: 'SELECT 1 AS value, 1 AS outcome', labels: [outcome], alert: { below: 0.9, ratio: { label: outcome, values: [paid] } } }\n",
        );
        let t = &r["groups"][2]["rules"][0];
        assert_eq!(t["alert"], "PulseCheckRatioBelowThreshold");
        assert!(t["expr"].as_str().unwrap().starts_with(
            "(sum without (outcome) (max without (pod) (app_payments{outcome=~\"paid\"})) or"
        ));
    }

    #[test]
    fn the_jobs_of_the_config_bring_the_bundled_job_alerts_scoped_to_them() {
        let r = rules_of(
            "sources: []\njobs:\n  - { name: usage-rollup, cron: '15 2 * * *', token: 0123456789abcdef0 }\njob_keys:\n  - { name: scripts, key: fedcba98765432100, every: 1h }\n",
        );
        let jobs = group(&r, "pulse-config-jobs").expect("a jobs group");
        let alerts: Vec<&str> = jobs["rules"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|r| r["alert"].as_str().unwrap())
            .collect();
        let declared = Declared::of(&Selection::default());
        let bundled: Vec<&str> = declared
            .group(JOBS)
            .into_iter()
            .map(|a| a.name.as_str())
            .collect();
        assert_eq!(alerts, bundled);
        assert_eq!(
            alerts.len(),
            3,
            "PulseJobLate, PulseJobFailed, PulseJobRunningTooLong"
        );
        let expr = jobs["rules"][0]["expr"].as_str().unwrap();
        assert!(
            expr.ends_with("and on (instance, job_name) (pulse_job_info{job_name=~\"usage-rollup\"} or pulse_job_info{key=~\"scripts\"})"),
            "{expr}"
        );
        promql_parser::parser::parse(expr).expect("valid PromQL");
        assert!(group(&rules_of("sources: []\n"), "pulse-config-jobs").is_none());
    }
}
