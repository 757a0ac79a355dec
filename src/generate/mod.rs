//! Grafana dashboards and Prometheus rules: the bundle's and those generated from a config
//! (`pulse-exporter dashboards`, `pulse-exporter rules`, `/dashboards.json`, `/rules.yml`),
//! a view and alerts for the user's own checks from what each check publishes
//! ([`crate::config_core::shape`]).
//!
//! [`style`] holds the look every panel shares; [`dashboards`] the one dashboard vocabulary
//! (boards, panels, fields) and the dashboards written in it, bundled and per config;
//! [`bundle`] the bundle's rule files, rendered from their declarations with a selector and a
//! cluster label, which [`rules`] copies from; [`rules`] the rules of a config; [`scrape`]
//! the Prometheus job that scrapes each source through `/probe`; [`usual`] the PromQL of a
//! drop-against-usual alert, which dashboards and rules both draw on; this module the PromQL
//! both write: selectors that pick one check's samples, and the expression that is 1 while a
//! check and its source work.

pub mod bundle;
pub mod dashboards;
pub mod objectives;
pub mod rules;
pub mod scrape;
pub mod slo_formats;
pub mod style;
pub mod usual;

use crate::config::{Config, SourceConfig};
use crate::config_core::shape::{regex_literal, Pin, Series};
use crate::config_core::{CheckCommon, CheckPlan};
use crate::series::own_metrics::{CHECK_SUCCESS, SOURCE_UP};

/// One check as the generators see it: its source, its plan, its fields and what it
/// publishes.
pub struct CheckInfo<'a> {
    /// The source it belongs to.
    pub source: &'a SourceConfig,
    /// Its resolved timing (check name included).
    pub plan: &'a CheckPlan,
    /// Its shared fields (help, unit, panel, alert, const labels).
    pub common: &'a CheckCommon,
    /// What it publishes.
    pub series: Vec<Series>,
    /// For a configured source's check, the jobs of the config's templates: their targets may
    /// publish the same metrics, and its series are told from theirs by not being of them.
    pub template_jobs: Vec<String>,
}

/// Every check of every source of `config`, in file order.
pub fn checks(config: &Config) -> Vec<CheckInfo<'_>> {
    let mut out = Vec::new();
    let jobs: Vec<String> = config
        .templates
        .iter()
        .map(|t| template_job(&t.sample))
        .collect();
    for source in SourceConfig::all(config) {
        let template_jobs = match source.is_template() {
            true => Vec::new(),
            false => jobs.clone(),
        };
        for ((check, plan), series) in source.planned_checks().zip(source.kind.series()) {
            out.push(CheckInfo {
                source,
                plan,
                common: check.common(),
                series,
                template_jobs: template_jobs.clone(),
            });
        }
    }
    out
}

/// `text` as a PromQL string literal.
pub fn quote(text: &str) -> String {
    // A JSON string is a valid PromQL double-quoted string: the same escapes.
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_owned())
}

/// `label="value"`.
pub fn eq(label: &str, value: &str) -> String {
    format!("{label}={}", quote(value))
}

/// `label=~"a|b|c"` matching any of `values` exactly.
pub fn any_of(label: &str, values: &[&str]) -> String {
    let alternatives: Vec<String> = values.iter().map(|v| regex_literal(v)).collect();
    format!("{label}=~{}", quote(&alternatives.join("|")))
}

/// The matcher of a pin.
pub fn pin(p: &Pin) -> String {
    match p.regex {
        true => format!("{}=~{}", p.label, quote(&p.value)),
        false => eq(&p.label, &p.value),
    }
}

/// `metric{matchers}`; `extra` (such as the dashboard's `instance=~"$instance"`) last.
pub fn selector(metric: &str, matchers: &[String], extra: Option<&str>) -> String {
    let all: Vec<&str> = matchers.iter().map(String::as_str).chain(extra).collect();
    format!("{metric}{{{}}}", all.join(", "))
}

/// The `pulse_job_info` series of the jobs `jobs` configures (with `extra`, a matcher such as
/// the instance variable): the declared ones by name, or'ed with those its ping keys make,
/// by `key`.
pub fn jobs_scope(jobs: &crate::jobs::config::JobsConfig, extra: Option<&str>) -> String {
    let info = crate::jobs::metrics::JOB_INFO.name;
    let names: Vec<&str> = jobs.jobs.iter().map(|j| j.name.as_str()).collect();
    let keys: Vec<&str> = jobs.keys.iter().map(|k| k.name.as_str()).collect();
    let mut scope = Vec::new();
    if !names.is_empty() {
        scope.push(selector(info, &[any_of("job_name", &names)], extra));
    }
    if !keys.is_empty() {
        scope.push(selector(info, &[any_of("key", &keys)], extra));
    }
    scope.join(" or ")
}

/// The matcher of `source`'s own series: `source="NAME"`; for a template, those of every
/// target it leases, `source=~"NAME/.+"`.
pub fn source_is(source: &SourceConfig) -> String {
    match source.is_template() {
        false => eq("source", &source.common.name),
        true => format!(
            "source=~{}",
            quote(&format!("{}/.+", regex_literal(&source.common.name)))
        ),
    }
}

/// `source=~"…"` of `sources`' own series (each configured source by name, each template's
/// targets by their `NAME/TARGET` sources); None for no source.
pub fn any_source<'a>(sources: impl Iterator<Item = &'a SourceConfig>) -> Option<String> {
    let alternatives: Vec<String> = sources
        .map(|s| match s.is_template() {
            false => regex_literal(&s.common.name),
            true => format!("{}/.+", regex_literal(&s.common.name)),
        })
        .collect();
    (!alternatives.is_empty()).then(|| format!("source=~{}", quote(&alternatives.join("|"))))
}

/// The job `scrape-config` gives a template's targets, which tells its checks' series from a
/// configured source's of the same metric.
pub fn template_job(source: &SourceConfig) -> String {
    format!("pulse-{}", source.common.name)
}

/// The matchers that pick `series` of `check` out of its metric: its pins, its const labels,
/// for a built-in `pulse_` metric its source, and for a template's check its job.
pub fn matchers(check: &CheckInfo<'_>, series: &Series) -> Vec<String> {
    let mut out = Vec::new();
    if series.metric.starts_with("pulse_") {
        out.push(source_is(check.source));
    } else if check.source.is_template() {
        out.push(eq("job", &template_job(check.source)));
    } else if !check.template_jobs.is_empty() {
        let jobs: Vec<&str> = check.template_jobs.iter().map(String::as_str).collect();
        out.push(any_of("job", &jobs).replacen("=~", "!~", 1));
    }
    out.extend(series.pins.iter().map(pin));
    out.extend(check.common.const_labels.iter().map(|(k, v)| eq(k, v)));
    out
}

/// Per exporter (`instance`): 1 while the check's last run succeeded and its source is up,
/// else 0; nothing before the first run. `extra` filters both sides (a dashboard variable).
pub fn check_ok(source: &SourceConfig, check: &str, extra: Option<&str>) -> String {
    let success = style::fold(&selector(
        CHECK_SUCCESS.name,
        &[source_is(source), eq("check", check)],
        extra,
    ));
    let up = style::fold(&selector(SOURCE_UP.name, &[source_is(source)], extra));
    format!("min by (instance) ({success} * on (instance, source) group_left () {up})")
}

/// Text safe in a Go template (alert annotations): `{{` cannot open an action.
pub fn template_safe(text: &str) -> String {
    text.replace("{{", "{{ \"{{\" }}")
}

/// A config with every kind of panel and rule the generators write: sources of four kinds,
/// checks with thresholds, ratios and drops against usual, a key, a heartbeat pool, a
/// template and a job; for the tests of the `--selector` and `--cluster-label` knobs.
#[cfg(test)]
const EVERY_KIND_OF_PANEL_AND_RULE: &str = "sources:\n\
    - { name: db, kind: postgres, url: 'postgres://h/db', checks: [{ metric: app_jobs_pending, sql: SELECT 1 AS value, alert: { above: 5 } }, { metric: app_signups, sql: SELECT 1 AS value, drop: { period: 1d, periods: 3 } }, { metric: app_payments, sql: 'SELECT 1 AS value, 1 AS outcome', labels: [outcome], alert: { below: 0.9, ratio: { label: outcome, values: [paid] } } }] }\n\
    - { name: cache, kind: redis, url: 'redis://h', keys: [{ key: q, metric: app_queue_depth, label: queue }], heartbeats: [{ pattern: 'hb:*', pool: gpu, max_age: 2m }] }\n\
    - { name: docs, kind: mongodb, url: 'mongodb://h/app', collections: [users] }\n\
    - { name: mq, kind: rabbitmq, management_url: 'http://r:15672', username: u, password: p }\n\
    templates:\n\
    - { name: shard, kind: redis, url: 'redis://{{target}}', allowed_targets: ['h:[0-9]+'], checks: [{ metric: app_shard_keys, command: [DBSIZE] }] }\n\
    jobs:\n\
    - { name: nightly, every: 1d }\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_quote_and_escape_what_they_match() {
        assert_eq!(quote("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(
            any_of("source", &["app-db", "c.1"]),
            r#"source=~"app-db|c\\.1""#
        );
        assert_eq!(
            selector("m", &[eq("a", "1")], Some("instance=~\"$instance\"")),
            r#"m{a="1", instance=~"$instance"}"#
        );
        assert_eq!(selector("m", &[], None), "m{}");
        assert_eq!(template_safe("a {{ b }}"), "a {{ \"{{\" }} b }}");
    }

    #[test]
    fn a_checks_ok_joins_its_success_to_its_source() {
        let config = crate::config::load_str(
            "sources:\n  - { name: cache, kind: redis, url: 'redis://h' }\ntemplates:\n  - { name: shard.eu, kind: redis, url: 'redis://{{target}}', allowed_targets: ['.*'] }\n",
        )
        .unwrap();
        let ok = check_ok(&config.sources[0], "ai-queue", None);
        assert_eq!(
            ok,
            r#"min by (instance) (max without (pod) (pulse_check_success{source="cache", check="ai-queue"}) * on (instance, source) group_left () max without (pod) (pulse_source_up{source="cache"}))"#
        );
        // A template stands for every target it leases.
        let sample = &config.templates[0].sample;
        assert_eq!(source_is(sample), r#"source=~"shard\\.eu/.+""#);
        assert_eq!(template_job(sample), "pulse-shard.eu");
    }
}
