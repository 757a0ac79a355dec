//! The rules of a config's objectives (`objective:` of each source, on by default): recording
//! rules for the error ratio of the health probes over the windows the burn-rate alerts read,
//! the budget left and the burn rate as series, and the two alerts of the multi-window,
//! multi-burn-rate scheme (the Google SRE workbook, chapter 5): a page when the budget burns
//! fast, a ticket when it burns slowly.
//!
//! Ratios are of `rate()`s (or `increase()`s) of the probe counters, summed over replicas:
//! a counter reset (a restart of the exporter) is counted from the new value, never as a
//! fall, and a missed scrape only widens the gap `rate()` spans; neither burns nor hides
//! budget. The ratio of two rates over the same window cancels their extrapolation.

use std::collections::BTreeMap;

use serde::Serialize;

use super::bundle::Selection;
use super::{eq, selector, source_is};
use crate::config::{Config, SourceConfig};
use crate::config_core::objective::Objective;
use crate::jobs::config::{JobSpec, KeySpec};
use crate::jobs::metrics::{JOB_DURATION, JOB_INFO, JOB_MISSED, JOB_RUNS};
use crate::series::own_metrics::{CHECK_RUNS, SOURCE_FAILURES, SOURCE_PROBES};

/// The windows an error ratio is recorded over, shortest first: those the alerts pair.
pub const WINDOWS: [&str; 7] = ["5m", "30m", "1h", "2h", "6h", "1d", "3d"];

/// The recorded error ratio of the health probes over `window`.
pub fn ratio_series(window: &str) -> String {
    format!("pulse_source:probe_error_ratio:rate{window}")
}

/// The recorded share of the budget left in the objective's window (1 untouched, 0 spent,
/// below 0 overspent).
pub const BUDGET_LEFT: &str = "pulse_source:objective_budget_left:ratio";

/// The recorded burn rate over a window: the error ratio over the share the budget allows
/// (1 spends the budget exactly over the window).
pub fn burn_series(window: &str) -> String {
    format!("pulse_source:objective_burn_rate:rate{window}")
}

/// The alert that pages on a fast burn.
pub const FAST_BURN: &str = "PulseObjectiveFastBurn";

/// The alert that opens a ticket on a slow burn.
pub const SLOW_BURN: &str = "PulseObjectiveSlowBurn";

/// The pairs of windows (long, short) and the burn rate both must pass: the workbook's,
/// for a page (2 % and 5 % of a 30-day budget spent in 1 h and 6 h) and for a ticket (10 %
/// in 3 days, all of it at the pace of the window).
const PAGE: [(&str, &str, f64); 2] = [("1h", "5m", 14.4), ("6h", "30m", 6.0)];
const TICKET: [(&str, &str, f64); 2] = [("1d", "2h", 3.0), ("3d", "6h", 1.0)];

/// A recording or alerting rule of the objectives' group.
#[derive(Serialize)]
#[serde(untagged)]
pub enum ObjectiveRule {
    /// A recording rule.
    Record {
        /// The series it records.
        record: String,
        /// Its expression.
        expr: String,
        /// Labels added to what it records.
        #[serde(skip_serializing_if = "BTreeMap::is_empty")]
        labels: BTreeMap<String, String>,
    },
    /// An alerting rule.
    Alert {
        /// The alert's name.
        alert: String,
        /// Its expression.
        expr: String,
        /// Its labels.
        labels: BTreeMap<String, String>,
        /// Its annotations.
        annotations: BTreeMap<String, String>,
    },
}

/// A number as PromQL reads it, without trailing zeros (`0.072`, `3`).
pub fn number(v: f64) -> String {
    let text = format!("{v:.8}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    text.to_owned()
}

/// The sources and templates whose objective is on, with it. A template's objective holds
/// for each of its targets (`NAME/TARGET` sources), each alerting on its own.
fn objectives(config: &Config) -> Vec<(&SourceConfig, &Objective)> {
    SourceConfig::all(config)
        .filter_map(|s| s.common.objective.on().map(|o| (s, o)))
        .collect()
}

/// The rules of the objectives of `config`, reading the series `selection` picks; none
/// when no source has one.
pub fn rules(config: &Config, selection: &Selection) -> Vec<ObjectiveRule> {
    let extra = Some(selection.selector()).filter(|s| !s.is_empty());
    let others = |mut out: Vec<ObjectiveRule>| {
        out.extend(latency_rules(config, selection));
        out.extend(event_rules(config, extra));
        out.extend(check_objective_rules(config, extra));
        out.extend(job_objective_rules(config, selection));
        out.extend(job_duration_rules(config, selection));
        out
    };
    let objectives = objectives(config);
    if objectives.is_empty() {
        return others(Vec::new());
    }
    let sources = super::any_source(objectives.iter().map(|(s, _)| *s)).unwrap_or_default();
    let mut out: Vec<ObjectiveRule> = WINDOWS
        .iter()
        .map(|w| ObjectiveRule::Record {
            record: ratio_series(w),
            expr: ratio(&sources, extra, w),
            labels: BTreeMap::new(),
        })
        .collect();
    for (source, objective) in &objectives {
        out.extend(per_source(source, objective, extra));
    }
    others(out)
}

/// Failed over all health probes of the sources `matcher` picks, over `window`, per source
/// and exporter (replicas summed; the failure reasons too).
fn ratio(matcher: &str, extra: Option<&str>, window: &str) -> String {
    let of = |metric: &str| selector(metric, &[matcher.to_owned()], extra);
    format!(
        "sum without (pod, reason) (rate({}[{window}]))\n/ sum without (pod) (rate({}[{window}]))",
        of(SOURCE_FAILURES.name),
        of(SOURCE_PROBES.name)
    )
}

/// The budget left, the burn rates and the two alerts of one source's objective.
fn per_source(
    source: &SourceConfig,
    objective: &Objective,
    extra: Option<&str>,
) -> Vec<ObjectiveRule> {
    let pin = source_is(source);
    let budget = objective.budget();
    let days = objective.window_days();
    // The source (or template) as a label too: promtool reports rules of one name and the
    // same labels as duplicates.
    let labels = BTreeMap::from([
        ("objective".to_owned(), "availability".to_owned()),
        named(source),
    ]);
    let of = |metric: &str| selector(metric, std::slice::from_ref(&pin), extra);
    let mut out = vec![ObjectiveRule::Record {
        record: BUDGET_LEFT.to_owned(),
        expr: format!(
            "1 - (\n  sum without (pod, reason) (increase({}[{days}d]))\n  / sum without (pod) (increase({}[{days}d]))\n) / {}",
            of(SOURCE_FAILURES.name),
            of(SOURCE_PROBES.name),
            number(budget)
        ),
        labels: labels.clone(),
    }];
    for window in ["1h", "6h"] {
        out.push(ObjectiveRule::Record {
            record: burn_series(window),
            expr: format!("{} / {}", of(&ratio_series(window)), number(budget)),
            labels: labels.clone(),
        });
    }
    // The availability ratios are one set for every source: no `objective` label to pin.
    let about = About {
        pin: vec![pin.clone()],
        ratio: ratio_series,
        what: "its health probes succeed",
        failing: "of its health probes fail",
        budget_series: BUDGET_LEFT,
        ..About::of_source(source, objective, "availability", extra)
    };
    out.extend(burn_alerts(&about));
    out
}

/// One objective as its alerts describe it.
struct About<'a> {
    /// Matchers that pick the objective's recorded ratios.
    pin: Vec<String>,
    /// What the alert is joined with to keep it to the objective's series (a key's jobs), if
    /// anything: `and on (…) SCOPE`.
    scope: Option<String>,
    /// The label that names what the objective is of (`source`, `template`, `job_name`,
    /// `key`) and its value.
    named: (String, String),
    /// What the annotations call it (a template's target or a key's job: its label).
    shown: String,
    /// Whether a fast burn pages (a source of tier `primary` or `queue`).
    pages: bool,
    objective: &'a Objective,
    /// The `objective` label.
    name: &'a str,
    /// The recorded error ratio over a window.
    ratio: fn(&str) -> String,
    /// What the target is a share of ("its health probes succeed").
    what: &'a str,
    /// What the error ratio is a share of, in the summary ("of its health probes fail").
    failing: &'a str,
    /// The selection's selector, if any.
    extra: Option<String>,
    /// The recorded budget left.
    budget_series: &'static str,
}

impl<'a> About<'a> {
    /// An objective of `source` named `name`, its ratios pinned to the source and the
    /// objective; the fields of what it counts are the caller's to set.
    fn of_source(
        source: &SourceConfig,
        objective: &'a Objective,
        name: &'a str,
        extra: Option<&str>,
    ) -> Self {
        let shown = match source.is_template() {
            true => "{{ $labels.source }}".to_owned(),
            false => super::template_safe(&source.common.name),
        };
        About {
            pin: vec![source_is(source), eq("objective", name)],
            scope: None,
            named: named(source),
            shown,
            pages: matches!(source.common.tier.as_deref(), Some("primary" | "queue")),
            objective,
            name,
            ratio: ratio_series,
            what: "",
            failing: "",
            extra: extra.map(str::to_owned),
            budget_series: BUDGET_LEFT,
        }
    }
}

/// The label that names the objective's source: `source`, or for a template `template`
/// (its targets' series carry their own `source`, `NAME/TARGET`, so each alerts on its own).
fn named(source: &SourceConfig) -> (String, String) {
    let label = match source.is_template() {
        true => "template",
        false => "source",
    };
    (label.to_owned(), source.common.name.clone())
}

/// The page and the ticket of the objective.
fn burn_alerts(about: &About<'_>) -> [ObjectiveRule; 2] {
    [
        burn_alert(about, FAST_BURN, &PAGE),
        burn_alert(about, SLOW_BURN, &TICKET),
    ]
}

/// `name` for the objective: fires while, for one of the pairs, the error ratio over both
/// the long and the short window burns the budget `factor` times too fast. The short window
/// lets the alert end soon after the errors do.
fn burn_alert(about: &About<'_>, name: &str, pairs: &[(&str, &str, f64)]) -> ObjectiveRule {
    let of =
        |window: &str| job_selector(&(about.ratio)(window), &about.pin, about.extra.as_deref());
    let budget = about.objective.budget();
    // A pair fires only once the ratios go back its long window (the short ratio recorded
    // then): a Prometheus with minutes of history, or a new source, would read those minutes
    // as the hour, and a source down from the first scrape would page twice, the burn before
    // PulseSourceDown.
    let mut expr = pairs
        .iter()
        .map(|(long, short, factor)| {
            let bound = number(factor * budget);
            let short = of(short);
            format!(
                "(\n  {} > {bound}\n  and {short} > {bound}\n  and {short} offset {long}\n)",
                of(long)
            )
        })
        .collect::<Vec<_>>()
        .join("\nor\n");
    if let Some(scope) = &about.scope {
        expr = format!("(\n{expr}\n)\nand {scope}");
    }
    let fast = name == FAST_BURN;
    let severity = match fast && about.pages {
        true => "critical",
        false => "warning",
    };
    let shown = &about.shown;
    let objective = super::template_safe(about.name);
    let target = number(about.objective.target());
    let days = about.objective.window_days();
    let failing = about.failing;
    let (summary, pace) = match fast {
        true => (
            format!("{shown} burns the budget of its {objective} objective fast ({{{{ $value | humanizePercentage }}}} {failing})"),
            "at 14.4 times the sustainable pace over 1 h (and 5 min), or 6 times over 6 h (and 30 min): 2 % or 5 % of the budget gone in that hour or those six",
        ),
        false => (
            format!("{shown} spends the budget of its {objective} objective faster than it lasts ({{{{ $value | humanizePercentage }}}} {failing})"),
            "at 3 times the sustainable pace over a day (and 2 h), or faster than it lasts over 3 days (and 6 h): no threshold alert fires for failures this sparse",
        ),
    };
    ObjectiveRule::Alert {
        alert: name.to_owned(),
        expr,
        labels: BTreeMap::from([
            ("severity".to_owned(), severity.to_owned()),
            ("objective".to_owned(), about.name.to_owned()),
            about.named.clone(),
        ]),
        annotations: BTreeMap::from([
            ("summary".to_owned(), summary),
            ("description".to_owned(), format!("The {objective} objective of {shown}: {target} % of {} over {days} days. It fails {pace}. The budget left is recorded as {}.", about.what, about.budget_series)),
            ("runbook_url".to_owned(), super::style::runbook_url(name)),
        ]),
    }
}

/// The recorded error ratio of one objective over each window and its budget left, labelled
/// `labels`; `ratio` gives the ratio's expression by window and function (`rate` over the
/// alerts' windows, `increase` over the objective's own).
fn ratio_records(
    series: fn(&str) -> String,
    budget_left: &str,
    labels: &BTreeMap<String, String>,
    objective: &Objective,
    ratio: &dyn Fn(&str, &str) -> String,
) -> Vec<ObjectiveRule> {
    let mut out: Vec<ObjectiveRule> = WINDOWS
        .iter()
        .map(|w| ObjectiveRule::Record {
            record: series(w),
            expr: ratio(w, "rate"),
            labels: labels.clone(),
        })
        .collect();
    out.push(ObjectiveRule::Record {
        record: budget_left.to_owned(),
        expr: format!(
            "1 - (\n{}\n) / {}",
            ratio(&format!("{}d", objective.window_days()), "increase"),
            number(objective.budget())
        ),
        labels: labels.clone(),
    });
    out
}

/// The recorded share of a latency objective's operations over the bound, over `window`.
pub fn latency_ratio_series(window: &str) -> String {
    format!("pulse_source:latency_error_ratio:rate{window}")
}

/// The recorded share of a latency objective's budget left in its window.
pub const LATENCY_BUDGET_LEFT: &str = "pulse_source:latency_budget_left:ratio";

/// The bound `v` as Prometheus 3 stores it in an `le` label, whatever the exposition wrote
/// (it normalizes classic buckets' bounds on ingestion, as Prometheus 2 did for protobuf
/// scrapes): Go's shortest `%g`, with `.0` added to a whole number (`1e-06`, `0.000128`,
/// `64.0`, `1.048576e+06`). An SLO tool that takes one bound (Pyrra) is given this form.
pub(crate) fn stored_le(v: f64) -> String {
    let exp = format!("{v:e}");
    let (mantissa, power) = exp.split_once('e').unwrap_or((&exp, "0"));
    let power: i32 = power.parse().unwrap_or(0);
    // Go writes an exponent below 1e-4 and from 1e6 on (shortest %g decides at 6 digits).
    if !(-4..6).contains(&power) {
        let sign = if power < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", power.abs());
    }
    let plain = format!("{v}");
    match plain.contains('.') {
        true => plain,
        false => format!("{plain}.0"),
    }
}

/// The ways an exporter or a Prometheus may write the bound `v` as an `le` label, as an
/// escaped regex for `le=~"…"`: the shortest decimal (`0.004096`), and the exponent forms of
/// small bounds (`8e-06`, `8e-6`).
pub(crate) fn le_forms(v: f64) -> String {
    let mut forms = vec![format!("{v}")];
    // A whole bound, as Prometheus 3 writes it (`16.0`) and as others do (`16`).
    if v.fract() == 0.0 {
        forms.push(format!("{v:.1}"));
    }
    let exp = format!("{v:e}");
    if let Some((mantissa, power)) = exp.split_once('e') {
        let (sign, digits) = power.strip_prefix('-').map_or(("+", power), |d| ("-", d));
        forms.push(format!("{mantissa}e{sign}{digits:0>2}"));
        forms.push(format!(
            "{mantissa}e{}{digits}",
            if sign == "-" { "-" } else { "" }
        ));
    }
    forms.dedup();
    forms.sort();
    forms.dedup();
    forms
        .iter()
        .map(|f| f.replace('.', "\\\\.").replace('+', "\\\\+"))
        .collect::<Vec<_>>()
        .join("|")
}

/// The rules of every latency objective of `config`: per objective, the share of its
/// operations over the bound recorded over each window (from the classic buckets, or from a
/// native histogram where Prometheus keeps one), the budget left, and the two burn alerts.
fn latency_rules(config: &Config, selection: &Selection) -> Vec<ObjectiveRule> {
    let extra = Some(selection.selector()).filter(|s| !s.is_empty());
    let mut out = Vec::new();
    for source in SourceConfig::all(config) {
        let Some(h) = source.kind.latency_histogram() else {
            continue;
        };
        // The picked operations as one, per source and exporter: every label of the
        // histogram but `source` summed away, the target's and the knobs' kept.
        let own = h.operation_labels();
        let without = |extra: &[&str]| {
            let all: Vec<&str> = ["pod"].iter().chain(extra).chain(&own).copied().collect();
            format!("sum without ({})", all.join(", "))
        };
        let (buckets, total) = (without(&["le"]), without(&[]));
        for o in &source.common.latency_objectives {
            let mut matchers = vec![source_is(source)];
            matchers.extend(o.series.iter().map(|(k, v)| eq(k, v)));
            let bound = o.under.0.as_secs_f64();
            let base = h.metric.name;
            let ratio = |window: &str, function: &str| {
                let of = |metric: &str, more: &[String]| {
                    let all: Vec<String> = matchers.iter().chain(more).cloned().collect();
                    format!("{function}({}[{window}])", selector(metric, &all, extra))
                };
                let le = format!("le=~\"{}\"", le_forms(bound));
                format!(
                    "1 - (\n  {buckets} ({})\n  / {total} ({})\n)\nor\n1 - histogram_fraction(0, {}, {total} ({}))",
                    of(&format!("{base}_bucket"), &[le]),
                    of(&format!("{base}_count"), &[]),
                    number(bound),
                    of(base, &[]),
                )
            };
            let objective = o.objective();
            let labels = BTreeMap::from([("objective".to_owned(), o.name.clone()), named(source)]);
            out.extend(ratio_records(
                latency_ratio_series,
                LATENCY_BUDGET_LEFT,
                &labels,
                &objective,
                &ratio,
            ));
            let what = format!(
                "its operations{} finish under {} ms",
                shown_series(&o.series),
                number(bound * 1000.0)
            );
            let about = About {
                ratio: latency_ratio_series,
                what: &what,
                failing: "of its operations are slower than the bound",
                budget_series: LATENCY_BUDGET_LEFT,
                ..About::of_source(source, &objective, &o.name, extra)
            };
            out.extend(burn_alerts(&about));
        }
    }
    out
}

/// The recorded share of an event objective's events that spent its budget, over `window`.
pub fn event_ratio_series(window: &str) -> String {
    format!("pulse_source:event_error_ratio:rate{window}")
}

/// The recorded share of an event objective's budget left in its window.
pub const EVENT_BUDGET_LEFT: &str = "pulse_source:event_budget_left:ratio";

/// The rules of every event objective of `config` (a Stripe source's delivery): per
/// objective, the share of its events that spent the budget recorded over each window, the
/// budget left, and the two burn alerts.
fn event_rules(config: &Config, extra: Option<&str>) -> Vec<ObjectiveRule> {
    let mut out = Vec::new();
    for source in SourceConfig::all(config) {
        let Some(e) = source.kind.event_objective() else {
            continue;
        };
        let pin = [source_is(source)];
        let without = format!("sum without (pod, {})", e.summed.join(", "));
        let ratio = |window: &str, function: &str| {
            let of = |metric: &str| {
                format!(
                    "{without} ({function}({}[{window}]))",
                    selector(metric, &pin, extra)
                )
            };
            format!("{}\n/ {}", of(e.bad.name), of(e.total.name))
        };
        let labels = BTreeMap::from([("objective".to_owned(), e.name.to_owned()), named(source)]);
        out.extend(ratio_records(
            event_ratio_series,
            EVENT_BUDGET_LEFT,
            &labels,
            &e.objective,
            &ratio,
        ));
        let about = About {
            ratio: event_ratio_series,
            what: e.what,
            failing: e.failing,
            budget_series: EVENT_BUDGET_LEFT,
            ..About::of_source(source, &e.objective, e.name, extra)
        };
        out.extend(burn_alerts(&about));
    }
    out
}

/// The recorded share of a check's runs that failed, over `window`.
pub fn check_ratio_series(window: &str) -> String {
    format!("pulse_check:run_error_ratio:rate{window}")
}

/// The recorded share of a check objective's budget left in its window.
pub const CHECK_BUDGET_LEFT: &str = "pulse_check:objective_budget_left:ratio";

/// The rules of every check's objective (`objective:` on a check): per check, the share of
/// its runs that failed recorded over each window, the budget left, and the two burn alerts,
/// warnings: a check failing now already alerts as `PulseCheckFailing`, which its fast burn
/// stands in for (Alertmanager inhibits the one by the other); the objective tells a habit.
fn check_objective_rules(config: &Config, extra: Option<&str>) -> Vec<ObjectiveRule> {
    let mut out = Vec::new();
    for source in SourceConfig::all(config) {
        for check in source.checks() {
            if let Some(objective) = check.common().objective() {
                out.extend(one_check_objective(
                    source,
                    &check.name(),
                    &objective,
                    extra,
                ));
            }
        }
    }
    out
}

/// The rules of the objective of `source`'s check `name`.
fn one_check_objective(
    source: &SourceConfig,
    name: &str,
    objective: &Objective,
    extra: Option<&str>,
) -> Vec<ObjectiveRule> {
    let pin = vec![source_is(source), eq("check", name)];
    let ratio = |window: &str, function: &str| {
        let of = |more: &[String]| {
            let all: Vec<String> = pin.iter().chain(more).cloned().collect();
            format!(
                "sum without (pod, outcome) ({function}({}[{window}]))",
                selector(CHECK_RUNS.name, &all, extra)
            )
        };
        format!("{}\n/ {}", of(&[eq("outcome", "failure")]), of(&[]))
    };
    let labels = BTreeMap::from([
        ("objective".to_owned(), "runs".to_owned()),
        ("check".to_owned(), name.to_owned()),
        named(source),
    ]);
    let mut out = ratio_records(
        check_ratio_series,
        CHECK_BUDGET_LEFT,
        &labels,
        objective,
        &ratio,
    );
    let base = About::of_source(source, objective, "runs", extra);
    let about = About {
        pin,
        shown: format!("check {} of {}", super::template_safe(name), base.shown),
        pages: false,
        ratio: check_ratio_series,
        what: "its runs succeed",
        failing: "of its runs fail",
        budget_series: CHECK_BUDGET_LEFT,
        ..base
    };
    out.extend(burn_alerts(&about));
    out
}

/// The recorded share of a job's due runs that failed or were missed, over `window`.
pub fn job_ratio_series(window: &str) -> String {
    format!("pulse_job:run_error_ratio:rate{window}")
}

/// The recorded share of a job objective's budget left in its window.
pub const JOB_BUDGET_LEFT: &str = "pulse_job:objective_budget_left:ratio";

/// `metric{matchers}`, or `metric` alone when nothing picks (all the jobs, a key's jobs).
pub(crate) fn job_selector(metric: &str, matchers: &[String], extra: Option<&str>) -> String {
    match matchers.is_empty() && extra.is_none() {
        true => metric.to_owned(),
        false => selector(metric, matchers, extra),
    }
}

/// Failed runs and missed due times over every due run (finished or missed) of the jobs
/// `matchers` pick, by `function` over `window`: per job and exporter.
fn job_ratio(matchers: &[String], extra: Option<&str>, window: &str, function: &str) -> String {
    let of = |metric: &str, more: &[String], without: &str| {
        let all: Vec<String> = matchers.iter().chain(more).cloned().collect();
        format!(
            "sum without ({without}) ({function}({}[{window}]))",
            job_selector(metric, &all, extra)
        )
    };
    let missed = of(JOB_MISSED.name, &[], "pod");
    format!(
        "(\n  {}\n  + {missed}\n)\n/ (\n  {}\n  + {missed}\n)",
        of(JOB_RUNS.name, &[eq("outcome", "failure")], "pod, outcome"),
        of(JOB_RUNS.name, &[], "pod, outcome"),
    )
}

/// The rules of the objectives of the config's jobs: the error ratios of every job with one
/// (a declared job by name, a ping key's jobs by the key), the budget left and the two burn
/// alerts per declared job and per key. A job's alerts are warnings: a single failure or a
/// late run already pages as `PulseJobFailed` or `PulseJobLate`; the objective tells a habit.
fn job_objective_rules(config: &Config, selection: &Selection) -> Vec<ObjectiveRule> {
    let extra = Some(selection.selector()).filter(|s| !s.is_empty());
    let jobs: Vec<&JobSpec> = config
        .jobs
        .jobs
        .iter()
        .filter(|j| j.objective.is_some())
        .collect();
    let keys: Vec<&KeySpec> = config
        .jobs
        .keys
        .iter()
        .filter(|k| k.job.objective.is_some())
        .collect();
    if jobs.is_empty() && keys.is_empty() {
        return Vec::new();
    }
    let on = format!("on ({})", selection.grouping("instance, job_name"));
    let info = |matcher: String| selector(JOB_INFO.name, &[matcher], extra);
    let scope = jobs_with_objectives(&jobs, &keys, &info);
    let mut out: Vec<ObjectiveRule> = WINDOWS
        .iter()
        .map(|w| ObjectiveRule::Record {
            record: job_ratio_series(w),
            expr: format!(
                "(\n{}\n)\nand {on} ({scope})",
                job_ratio(&[], extra, w, "rate")
            ),
            labels: BTreeMap::new(),
        })
        .collect();
    let subjects = jobs
        .iter()
        .map(|j| (j.objective.as_ref(), ("job_name", j.name.as_str()), None))
        .chain(keys.iter().map(|k| {
            let scope = format!("{on} {}", info(eq("key", &k.name)));
            (
                k.job.objective.as_ref(),
                ("key", k.name.as_str()),
                Some(scope),
            )
        }));
    for (objective, (label, value), scope) in subjects {
        if let Some(objective) = objective {
            out.extend(one_job_objective(objective, (label, value), scope, extra));
        }
    }
    out
}

/// The `pulse_job_info` series of the declared `jobs` and of the `keys`' jobs, or'ed.
fn jobs_with_objectives(
    jobs: &[&JobSpec],
    keys: &[&KeySpec],
    info: &dyn Fn(String) -> String,
) -> String {
    let names: Vec<&str> = jobs.iter().map(|j| j.name.as_str()).collect();
    let key_names: Vec<&str> = keys.iter().map(|k| k.name.as_str()).collect();
    let mut scope = Vec::new();
    if !names.is_empty() {
        scope.push(info(super::any_of("job_name", &names)));
    }
    if !key_names.is_empty() {
        scope.push(info(super::any_of("key", &key_names)));
    }
    scope.join(" or ")
}

/// The budget left and the two burn alerts of the objective of a declared job (`label`
/// `job_name`) or of a key's jobs (`key`, kept to them by `scope`).
fn one_job_objective(
    objective: &Objective,
    (label, value): (&str, &str),
    scope: Option<String>,
    extra: Option<&str>,
) -> Vec<ObjectiveRule> {
    let pin: Vec<String> = match label {
        "job_name" => vec![eq(label, value)],
        _ => Vec::new(),
    };
    let days = objective.window_days();
    let mut budget_left = format!(
        "1 - (\n{}\n) / {}",
        job_ratio(&pin, extra, &format!("{days}d"), "increase"),
        number(objective.budget())
    );
    if let Some(scope) = &scope {
        budget_left = format!("(\n{budget_left}\n)\nand {scope}");
    }
    let mut out = vec![ObjectiveRule::Record {
        record: JOB_BUDGET_LEFT.to_owned(),
        expr: budget_left,
        labels: BTreeMap::from([
            ("objective".to_owned(), "runs".to_owned()),
            (label.to_owned(), value.to_owned()),
        ]),
    }];
    let about = About {
        pin,
        scope,
        named: (label.to_owned(), value.to_owned()),
        shown: match label {
            "job_name" => format!("job {}", super::template_safe(value)),
            _ => "job {{ $labels.job_name }}".to_owned(),
        },
        pages: false,
        objective,
        name: "runs",
        ratio: job_ratio_series,
        what: "its due runs finish well and on time",
        failing: "of its due runs failed or were missed",
        extra: extra.map(str::to_owned),
        budget_series: JOB_BUDGET_LEFT,
    };
    out.extend(burn_alerts(&about));
    out
}

/// The recorded share of a job latency objective's runs that took longer than its bound,
/// over `window`.
pub fn job_duration_ratio_series(window: &str) -> String {
    format!("pulse_job:duration_error_ratio:rate{window}")
}

/// The recorded share of a job latency objective's budget left in its window.
pub const JOB_DURATION_BUDGET_LEFT: &str = "pulse_job:duration_budget_left:ratio";

/// The rules of the latency objectives of the config's jobs (`latency_objectives:` of a job
/// or a key), on `pulse_job_duration_seconds`: per objective, the share of the runs slower
/// than its bound over each window, the budget left and the two burn alerts (warnings).
fn job_duration_rules(config: &Config, selection: &Selection) -> Vec<ObjectiveRule> {
    let extra = Some(selection.selector()).filter(|s| !s.is_empty());
    let on = format!("on ({})", selection.grouping("instance, job_name"));
    let declared = config
        .jobs
        .jobs
        .iter()
        .map(|j| (&j.latency_objectives, "job_name", &j.name));
    let keys = config
        .jobs
        .keys
        .iter()
        .map(|k| (&k.job.latency_objectives, "key", &k.name));
    let mut out = Vec::new();
    for (objectives, label, value) in declared.chain(keys) {
        // A key's jobs are told by `key` on pulse_job_info only: joined with it.
        let (pin, scope) = match label {
            "job_name" => (vec![eq(label, value)], None),
            _ => (
                Vec::new(),
                Some(format!(
                    "{on} {}",
                    selector(JOB_INFO.name, &[eq("key", value)], extra)
                )),
            ),
        };
        for o in objectives {
            out.extend(one_job_duration_objective(
                o,
                (label, value),
                &pin,
                scope.as_deref(),
                extra,
            ));
        }
    }
    out
}

/// The rules of one job latency objective `o` of what `(label, value)` names.
fn one_job_duration_objective(
    o: &crate::config_core::objective::LatencyObjective,
    (label, value): (&str, &str),
    pin: &[String],
    scope: Option<&str>,
    extra: Option<&str>,
) -> Vec<ObjectiveRule> {
    let base = JOB_DURATION.name;
    let bound = o.under.0.as_secs_f64();
    let ratio = |window: &str, function: &str| {
        let of = |metric: &str, more: &[String]| {
            let all: Vec<String> = pin.iter().chain(more).cloned().collect();
            format!(
                "{function}({}[{window}])",
                job_selector(metric, &all, extra)
            )
        };
        let le = format!("le=~\"{}\"", le_forms(bound));
        let expr = format!(
            "1 - (\n  sum without (pod, le) ({})\n  / sum without (pod) ({})\n)\nor\n1 - histogram_fraction(0, {}, sum without (pod) ({}))",
            of(&format!("{base}_bucket"), &[le]),
            of(&format!("{base}_count"), &[]),
            number(bound),
            of(base, &[]),
        );
        match scope {
            Some(scope) => format!("(\n{expr}\n)\nand {scope}"),
            None => expr,
        }
    };
    let labels = BTreeMap::from([
        ("objective".to_owned(), o.name.clone()),
        (label.to_owned(), value.to_owned()),
    ]);
    let objective = o.objective();
    let mut out = ratio_records(
        job_duration_ratio_series,
        JOB_DURATION_BUDGET_LEFT,
        &labels,
        &objective,
        &ratio,
    );
    let what = format!("its runs finish within {} s", number(bound));
    let about = About {
        pin: vec![eq(label, value), eq("objective", &o.name)],
        scope: None,
        named: (label.to_owned(), value.to_owned()),
        shown: match label {
            "job_name" => format!("job {}", super::template_safe(value)),
            _ => "job {{ $labels.job_name }}".to_owned(),
        },
        pages: false,
        objective: &objective,
        name: &o.name,
        ratio: job_duration_ratio_series,
        what: &what,
        failing: "of its runs took longer than the bound",
        extra: extra.map(str::to_owned),
        budget_series: JOB_DURATION_BUDGET_LEFT,
    };
    out.extend(burn_alerts(&about));
    out
}

/// ` (command=get)`: the operations a latency objective picks, for its description.
fn shown_series(series: &BTreeMap<String, String>) -> String {
    match series.is_empty() {
        true => String::new(),
        false => {
            let picked: Vec<String> = series.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!(" ({})", super::template_safe(&picked.join(", ")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules_of(yaml: &str) -> Vec<ObjectiveRule> {
        rules(
            &crate::config::load_str(yaml).unwrap(),
            &Selection::default(),
        )
    }

    const TWO: &str = "sources:\n  - { name: db, kind: postgres, url: 'postgres://h/db', tier: primary, objective: { target: 99.9 } }\n  - { name: cache, kind: redis, url: 'redis://h' }\n  - { name: off, kind: redis, url: 'redis://h', objective: false }\n";

    fn alert<'a>(
        rules: &'a [ObjectiveRule],
        name: &str,
        source: &str,
    ) -> (&'a str, &'a BTreeMap<String, String>) {
        rules
            .iter()
            .find_map(|r| match r {
                ObjectiveRule::Alert {
                    alert,
                    expr,
                    labels,
                    ..
                } if alert == name && labels["source"] == source => Some((expr.as_str(), labels)),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no {name} for {source}"))
    }

    #[test]
    fn every_source_has_an_objective_unless_turned_off_and_its_bounds_follow_its_target() {
        let r = rules_of(TWO);
        let (fast, labels) = alert(&r, FAST_BURN, "db");
        // 99.9 %: a budget of 0.001, burnt 14.4 times too fast over 1 h and 5 min.
        assert!(
            fast.contains("pulse_source:probe_error_ratio:rate1h{source=\"db\"} > 0.0144"),
            "{fast}"
        );
        assert!(fast.contains("rate5m{source=\"db\"} > 0.0144"), "{fast}");
        assert!(fast.contains("rate6h{source=\"db\"} > 0.006"), "{fast}");
        assert_eq!(labels["severity"], "critical", "a primary source pages");
        let (slow, labels) = alert(&r, SLOW_BURN, "cache");
        // The default 99.5 %: 0.005, three times over a day, once over three.
        assert!(slow.contains("rate1d{source=\"cache\"} > 0.015"), "{slow}");
        assert!(slow.contains("rate3d{source=\"cache\"} > 0.005"), "{slow}");
        assert_eq!(labels["severity"], "warning");
        assert_eq!(
            alert(&r, FAST_BURN, "cache").1["severity"],
            "warning",
            "no tier: warns"
        );
        let text = serde_yaml::to_string(&r).unwrap();
        assert!(
            !text.contains("\"off\""),
            "an objective turned off makes no rule"
        );
        assert!(text.contains("source=~\"db|cache\""), "{text}");
    }

    #[test]
    fn no_source_with_an_objective_makes_no_rule() {
        assert!(rules_of(
            "sources: [{ name: a, kind: redis, url: 'redis://h', objective: false }]\n"
        )
        .is_empty());
    }

    #[test]
    fn numbers_read_as_promql_writes_them() {
        assert_eq!(number(14.4 * 0.005), "0.072");
        assert_eq!(number(3.0), "3");
        assert_eq!(number(99.5), "99.5");
    }

    #[test]
    fn a_latency_objective_records_the_share_over_its_bound_from_either_histogram() {
        let r = rules_of("sources:\n  - name: cache\n    kind: redis\n    url: redis://h\n    objective: false\n    latency_objectives:\n      - { name: get-fast, series: { command: get }, under: 4096us }\n");
        let text = serde_yaml::to_string(&r).unwrap();
        assert!(text.contains("pulse_redis_command_duration_seconds_bucket{source=\"cache\", command=\"get\", le=~\"0\\\\.004096|"), "{text}");
        assert!(text.contains("histogram_fraction(0, 0.004096, sum without (pod, command) (rate(pulse_redis_command_duration_seconds{source=\"cache\", command=\"get\"}[5m])))"), "{text}");
        assert!(
            text.contains(
                "sum without (pod, le, command) (rate(pulse_redis_command_duration_seconds_bucket{"
            ),
            "{text}"
        );
        // The default 99 %: a budget of 0.01, 14.4 times over 1 h.
        let (fast, labels) = alert(&r, FAST_BURN, "cache");
        assert!(fast.contains("pulse_source:latency_error_ratio:rate1h{source=\"cache\", objective=\"get-fast\"} > 0.144"), "{fast}");
        assert_eq!(labels["objective"], "get-fast");
    }

    #[test]
    fn jobs_and_stripe_events_have_objectives_of_their_own_with_their_defaults() {
        let r = rules_of("sources:\n  - { name: pay, kind: stripe, api_key: sk_test_x, objective: false, delivery_objective: { window: 7d } }\n  - { name: pay2, kind: stripe, api_key: sk_test_y, objective: false, delivery_objective: false }\njobs:\n  - { name: rollup, every: 5m, token: 0123456789abcdef0 }\n  - { name: quiet, every: 5m, token: 0123456789abcdef1, objective: false }\njob_keys:\n  - { name: scripts, key: fedcba98765432100, every: 1h, objective: { target: 99 } }\n");
        let text = serde_yaml::to_string(&r).unwrap();
        // Stripe: 99.9 % by default, a budget of 0.001; the second source's is off.
        let (fast, labels) = alert(&r, FAST_BURN, "pay");
        assert!(fast.contains("pulse_source:event_error_ratio:rate1h{source=\"pay\", objective=\"delivery\"} > 0.0144"), "{fast}");
        assert_eq!(labels["severity"], "warning", "no tier: warns");
        assert!(
            text.contains("increase(pulse_stripe_events_abandoned_total{source=\"pay\"}[7d])"),
            "{text}"
        );
        assert!(!text.contains("pay2"), "{text}");
        // Jobs: 95 % by default (0.05, three times over a day: 0.15); a job's alerts warn.
        let job = |name: &str, label: &str, value: &str| {
            r.iter()
                .find_map(|rule| match rule {
                    ObjectiveRule::Alert {
                        alert,
                        expr,
                        labels,
                        ..
                    } if alert == name && labels.get(label).map(String::as_str) == Some(value) => {
                        Some((expr.clone(), labels.clone()))
                    }
                    _ => None,
                })
                .unwrap_or_else(|| panic!("no {name} for {value}"))
        };
        let (slow, labels) = job(SLOW_BURN, "job_name", "rollup");
        assert!(
            slow.contains("pulse_job:run_error_ratio:rate1d{job_name=\"rollup\"} > 0.15"),
            "{slow}"
        );
        assert_eq!(labels["severity"], "warning");
        let (fast, _) = job(FAST_BURN, "job_name", "rollup");
        assert!(fast.contains("> 0.72"), "{fast}");
        // A key's jobs by the key, 99 %: 0.01 × 14.4.
        let (fast, _) = job(FAST_BURN, "key", "scripts");
        assert!(
            fast.contains("pulse_job:run_error_ratio:rate1h > 0.144"),
            "{fast}"
        );
        assert!(
            fast.ends_with("and on (instance, job_name) pulse_job_info{key=\"scripts\"}"),
            "{fast}"
        );
        assert!(
            text.contains(
                "pulse_job_info{job_name=~\"rollup\"} or pulse_job_info{key=~\"scripts\"}"
            ),
            "{text}"
        );
        assert!(
            !text.contains("quiet"),
            "an objective turned off makes no rule"
        );
    }

    #[test]
    fn a_jobs_latency_objective_reads_its_duration_histogram() {
        let r = rules_of("sources: []\njobs:\n  - { name: rollup, every: 1h, token: 0123456789abcdef0, objective: false, latency_objectives: [{ name: quick, under: 1024s, target: 90 }] }\njob_keys:\n  - { name: scripts, key: fedcba98765432100, every: 1h, objective: false, latency_objectives: [{ name: quick, under: 64s }] }\n");
        let text = serde_yaml::to_string(&r).unwrap();
        assert!(text.contains("rate(pulse_job_duration_seconds_bucket{job_name=\"rollup\", le=~\"1\\\\.024e\\\\+03|1\\\\.024e3|1024|1024\\\\.0\"}[5m])"), "{text}");
        assert!(text.contains("histogram_fraction(0, 1024, sum without (pod) (rate(pulse_job_duration_seconds{job_name=\"rollup\"}[1h])))"), "{text}");
        // 90 %: 0.1 × 6 over 6 h; a key's jobs joined on the key; both warn.
        let fast = r
            .iter()
            .filter_map(|rule| match rule {
                ObjectiveRule::Alert {
                    alert,
                    expr,
                    labels,
                    ..
                } if alert == FAST_BURN => Some((expr.as_str(), labels)),
                _ => None,
            })
            .collect::<Vec<_>>();
        assert_eq!(fast.len(), 2);
        assert!(fast[0].0.contains("pulse_job:duration_error_ratio:rate6h{job_name=\"rollup\", objective=\"quick\"} > 0.6"), "{}", fast[0].0);
        assert!(fast[1].0.contains("pulse_job:duration_error_ratio:rate1h{key=\"scripts\", objective=\"quick\"} > 0.144"), "{}", fast[1].0);
        assert!(fast.iter().all(|(_, l)| l["severity"] == "warning"));
        assert!(
            text.contains("and on (instance, job_name) pulse_job_info{key=\"scripts\"}"),
            "{text}"
        );
    }

    /// A check's objective is opt-in: `true` takes 99 % over 28 days, a mapping sets its
    /// own; its ratios are of the check's runs, its alerts warnings whatever the tier.
    #[test]
    fn a_check_with_an_objective_records_its_failed_runs_and_warns() {
        let r = rules_of("sources:\n  - { name: db, kind: postgres, url: 'postgres://h/db', tier: primary, objective: false, checks: [{ metric: app_users, sql: SELECT 1 AS value, objective: true }, { metric: app_paid, sql: SELECT 1 AS value, objective: { target: 99.9, window: 7d } }, { metric: app_free, sql: SELECT 1 AS value }] }\n");
        let records: Vec<(&str, &str)> = r
            .iter()
            .filter_map(|rule| match rule {
                ObjectiveRule::Record { record, labels, .. } => {
                    Some((record.as_str(), labels["check"].as_str()))
                }
                _ => None,
            })
            .collect();
        assert_eq!(
            records.len(),
            16,
            "7 ratios and a budget per check: {records:?}"
        );
        assert!(records.iter().all(|(_, c)| *c != "app_free"));
        let ratio = r
            .iter()
            .find_map(|rule| match rule {
                ObjectiveRule::Record { record, expr, .. }
                    if record == "pulse_check:run_error_ratio:rate5m" =>
                {
                    Some(expr.as_str())
                }
                _ => None,
            })
            .unwrap();
        assert_eq!(
            ratio,
            "sum without (pod, outcome) (rate(pulse_check_runs_total{source=\"db\", check=\"app_users\", outcome=\"failure\"}[5m]))\n/ sum without (pod, outcome) (rate(pulse_check_runs_total{source=\"db\", check=\"app_users\"}[5m]))"
        );
        let fast: Vec<(&str, &BTreeMap<String, String>)> = r
            .iter()
            .filter_map(|rule| match rule {
                ObjectiveRule::Alert {
                    alert,
                    expr,
                    labels,
                    ..
                } if alert == FAST_BURN => Some((expr.as_str(), labels)),
                _ => None,
            })
            .collect();
        assert_eq!(fast.len(), 2);
        // 99 %: 14.4 × 0.01; 99.9 %: 14.4 × 0.001.
        assert!(
            fast[0].0.contains(
                "pulse_check:run_error_ratio:rate1h{source=\"db\", check=\"app_users\"} > 0.144"
            ),
            "{}",
            fast[0].0
        );
        assert!(
            fast[1].0.contains("check=\"app_paid\"} > 0.0144"),
            "{}",
            fast[1].0
        );
        assert!(fast
            .iter()
            .all(|(_, l)| l["severity"] == "warning" && l["objective"] == "runs"));
        let budget = r.iter().find_map(|rule| match rule {
            ObjectiveRule::Record {
                record,
                expr,
                labels,
            } if record == CHECK_BUDGET_LEFT && labels["check"] == "app_paid" => {
                Some(expr.as_str())
            }
            _ => None,
        });
        assert!(budget.unwrap().contains("[7d]"), "{budget:?}");
        let refused = crate::config::load_str("sources:\n  - { name: db, kind: postgres, url: 'postgres://h/db', checks: [{ metric: app_users, sql: SELECT 1 AS value, objective: { target: 0, window: 5d } }] }\n").unwrap_err().to_string();
        assert!(
            refused.contains("sources[0].checks[0].objective.target"),
            "{refused}"
        );
        assert!(
            refused.contains("sources[0].checks[0].objective.window"),
            "{refused}"
        );
    }

    #[test]
    fn le_takes_every_form_a_bound_is_written_in() {
        // Escaped for a PromQL string: `\\.` reads as the regex's literal dot.
        assert_eq!(le_forms(0.004096), r"0\\.004096|4\\.096e-03|4\\.096e-3");
        assert_eq!(le_forms(8e-6), r"0\\.000008|8e-06|8e-6");
        // A whole bound, and a `+` that is no regex quantifier.
        assert_eq!(le_forms(16.0), r"1\\.6e\\+01|1\\.6e1|16|16\\.0");
        // Prometheus 3's form of each, as Go's strconv.FormatFloat(v, 'g', -1, 64) and its
        // `.0` for a whole number write them.
        let stored = [
            1e-6,
            6.4e-5,
            0.000128,
            0.004096,
            0.5,
            1.0,
            64.0,
            262_144.0,
            1_048_576.0,
        ]
        .map(stored_le);
        assert_eq!(
            stored,
            [
                "1e-06",
                "6.4e-05",
                "0.000128",
                "0.004096",
                "0.5",
                "1.0",
                "64.0",
                "262144.0",
                "1.048576e+06"
            ]
        );
        for v in [1e-6, 6.4e-5, 0.004096, 64.0, 1_048_576.0] {
            let forms = le_forms(v).replace("\\\\", "\\");
            let re = regex::Regex::new(&format!("^(?:{forms})$")).unwrap();
            assert!(re.is_match(&stored_le(v)), "{v}: {forms}");
        }
    }
}
