//! The bundle's dashboards (`grafana/dashboards/*.json`): the admin overview, platform
//! health, queues and workers, query latency, database load and objectives, described here panel by
//! panel and written by `pulse-exporter bundle-dashboards` (`scripts/generate` runs it).
//!
//! They keep one style: a `datasource` variable and the `platform` and `instance` variables
//! that filter every query, stable uids, a unit and a description on every panel, cards that
//! read DEGRADED when the check or source behind *them* fails (same exporter, same source:
//! another platform's outage never greys a card) and NO DATA, in grey, when nothing arrives
//! (never green on no data), thresholds where colour carries meaning, runbook links on the
//! panels an alert watches, a 30 s refresh. Every query folds the replicas of a shard
//! together (`max without (pod)`), as the rules do, so on Kubernetes with two replicas per
//! shard a sum still counts each source once.
//!
//! How a panel looks (the fold, the guard and its mappings, units from metric names, the
//! runbook base) comes from [`crate::generate::style`], which the dashboards generated from a
//! user's config share. This module holds the PromQL words the boards are written in;
//! [`board`] the panels and their layout; one module per dashboard the panels.

mod admin;
mod health;
mod latency;
mod load;
mod objectives;
mod queues;

use serde_json::{json, Value};

use super::board::{
    braces, cluster_variable, datasource_variable, query_variable, stat_options, Board,
};
use super::fields::steps;
use super::panel::Panel;
use crate::generate::bundle::Selection;
use crate::generate::style::{self, STYLE};

/// Where the bundle keeps its dashboards.
pub const DIR: &str = "grafana/dashboards";

/// Every bundled dashboard: its file name in [`DIR`] and its JSON, every series it reads
/// narrowed to `selection` (the default selection: as committed).
pub fn render(selection: &Selection) -> Vec<(String, String)> {
    let boards = [
        admin::board(),
        health::board(),
        queues::board(),
        latency::board(),
        load::board(),
        objectives::board(),
    ];
    let links: Vec<(&str, &str)> = boards.iter().map(|b| (b.uid(), b.title())).collect();
    boards
        .iter()
        .map(|b| {
            let file = format!("{}.json", b.uid().trim_start_matches("pulse-"));
            let text = serde_json::to_string_pretty(&json(b, &links, selection))
                .expect("a dashboard is plain JSON values");
            (file, text + "\n")
        })
        .collect()
}

/// Every query is filtered by the dashboard's variables (both "All", `.*`, by default).
const FILTER: &str = "platform=~\"$platform\", instance=~\"$instance\"";

/// What a card keeps: the exporter (`platform` and `instance` are target labels). Business
/// metrics carry no `source` label: the checks named in a card's guard pin the source within
/// its exporter. Built-in metrics that do carry `source` (worker pools) keep it with
/// [`by_source`].
const KEYS: &str = "platform, instance";

/// `label="value"`.
fn eq(label: &str, value: &str) -> String {
    format!("{label}=\"{value}\"")
}

/// `label=~"regex"`.
fn rx(label: &str, regex: &str) -> String {
    format!("{label}=~\"{regex}\"")
}

/// `metric{matchers…, platform=~"$platform", instance=~"$instance"}`: for range vectors
/// (`rate(…[…])`, `offset`), whose result is folded by the caller.
fn raw_with<S: AsRef<str>>(metric: &str, matchers: &[S]) -> String {
    let mut all: Vec<&str> = matchers.iter().map(AsRef::as_ref).collect();
    all.push(FILTER);
    format!("{metric}{{{}}}", all.join(", "))
}

/// [`raw_with`] of no matcher but the variables.
fn raw(metric: &str) -> String {
    raw_with::<&str>(metric, &[])
}

/// [`raw_with`] with the replicas folded: what every instant query starts from.
fn sel_with<S: AsRef<str>>(metric: &str, matchers: &[S]) -> String {
    style::fold(&raw_with(metric, matchers))
}

/// [`sel_with`] of no matcher but the variables.
fn sel(metric: &str) -> String {
    sel_with::<&str>(metric, &[])
}

/// `function(metric[$__rate_interval])` per series, replicas folded (`rate`, `increase`).
fn over_with<S: AsRef<str>>(function: &str, metric: &str, matchers: &[S]) -> String {
    style::fold(&format!(
        "{function}({}[$__rate_interval])",
        raw_with(metric, matchers)
    ))
}

/// [`over_with`] of no matcher but the variables.
fn over(function: &str, metric: &str) -> String {
    over_with::<&str>(function, metric, &[])
}

/// The by-clause of a card: platform, instance and `extra` labels.
fn by(extra: &[&str]) -> String {
    std::iter::once(KEYS)
        .chain(extra.iter().copied())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The by-clause of a built-in metric's card: platform, instance, source and `extra`.
fn by_source(extra: &[&str]) -> String {
    by(&[&["source"], extra].concat())
}

/// `max by (platform, instance, source, keys…) (metric)`.
fn max_by(keys: &[&str], metric: &str) -> String {
    format!("max by ({}) ({})", by_source(keys), sel(metric))
}

/// `rate` of `metric` summed by platform, instance, source and `keys`: for the
/// `_seconds_total` counters of the load samplers and of Redis's commands, the average
/// sessions (or operations, or command threads) busy.
fn rate_by(keys: &[&str], metric: &str) -> String {
    format!("sum by ({}) ({})", by_source(keys), over("rate", metric))
}

/// `expr`, or 0 for every source that publishes `present` (for a series absent when there
/// is nothing to count: no blocker, no standby).
fn or_zero_where(expr: String, present: &str) -> String {
    format!("{expr} or 0 * {}", max_by(&[], present))
}

/// Per exporter: 1 while every run of the named checks (names or regexes) succeeds and
/// their source is up, else 0. The check names pin the source: another source or another
/// exporter failing never turns it 0.
fn check_ok(checks: &[&str]) -> String {
    let check = checks.join("|");
    let op = match check.contains(['.', '*', '|']) {
        true => "=~",
        false => "=",
    };
    let success = sel_with("pulse_check_success", &[format!("check{op}\"{check}\"")]);
    format!(
        "min by ({}) ({success} * on (instance, source) group_left () {})",
        by(&[]),
        sel("pulse_source_up")
    )
}

/// Per exporter: 1 while the health probes of its sources of `kind` succeed, else 0.
fn source_ok(kind: &str) -> String {
    format!(
        "min by ({}) ({})",
        by(&[]),
        sel_with("pulse_source_up", &[eq("kind", kind)])
    )
}

/// Per exporter, source and pool: 1 while the pool's heartbeat check (`heartbeat:<pool>`)
/// succeeds and its source is up, else 0.
fn pool_ok() -> String {
    let success = sel_with("pulse_check_success", &["check=~\"heartbeat:.*\""]);
    format!(
        "min by ({}) (label_replace({success} * on (instance, source) group_left () {}, \
         \"pool\", \"$1\", \"check\", \"heartbeat:(.*)\"))",
        by_source(&["pool"]),
        sel("pulse_source_up")
    )
}

/// Queue depth: orange from 100, red from 500.
fn queue_depth() -> Value {
    steps(&[
        ("green", Value::Null),
        ("orange", json!(100)),
        ("red", json!(500)),
    ])
}

/// The age of a waiting job: red from PulseOldestJobTooOld's bound (10 minutes), orange
/// from half of it.
fn job_age() -> Value {
    alert_line("PulseOldestJobTooOld")
}

/// A heartbeat's age: red past 2 minutes, the example pools' max_age.
fn heartbeat_age() -> Value {
    steps(&[
        ("green", Value::Null),
        ("orange", json!(60)),
        ("red", json!(120)),
    ])
}

/// Messages in dead-letter queues.
fn dead_letters() -> Value {
    steps(&[
        ("green", Value::Null),
        ("orange", json!(1)),
        ("red", json!(100)),
    ])
}

/// A share of requests that failed.
fn error_rate() -> Value {
    steps(&[
        ("green", Value::Null),
        ("orange", json!(0.02)),
        ("red", json!(0.05)),
    ])
}

/// Job latency: red from PulseJobLatencyHigh's bound (60 s), orange from half of it.
fn latency() -> Value {
    alert_line("PulseJobLatencyHigh")
}

/// A probe's duration: red from PulseSourceSlow's bound (its p90 over 2 s), orange from
/// half of it.
fn probe_latency() -> Value {
    alert_line("PulseSourceSlow")
}

/// Green, orange from half the bound of `alert`, red from the bound: read from the bundled
/// declaration, so the red line is where the alert fires.
fn alert_line(alert: &str) -> Value {
    let bound = crate::generate::bundle::bound(alert);
    // A whole number is written as one (600, not 600.0), as a hand-written step is.
    let number = |v: f64| match v.fract() == 0.0 && v.abs() < 1e15 {
        true => json!(v as i64),
        false => json!(v),
    };
    steps(&[
        ("green", Value::Null),
        ("orange", number(bound / 2.0)),
        ("red", number(bound)),
    ])
}

/// Consumers of a queue, or workers up over a pool's minimum: red under 1.
fn at_least_one() -> Value {
    steps(&[("red", Value::Null), ("green", json!(1))])
}

// --- Expressions shared by several boards ------------------------------------------------

/// The depth of the Redis queue `queue`, or of every queue (by `queue`). Redis deletes an
/// empty list, so an absent queue key reads 0 while its check succeeds (the example's key
/// checks are named `<queue>-queue`).
fn redis_depth(queue: Option<&str>) -> String {
    match queue {
        Some(queue) => format!(
            "sum by ({by}) ({})\nor max by ({by}) (0 * {})",
            sel_with("app_queue_depth", &[eq("queue", queue)]),
            sel_with(
                "pulse_check_success",
                &[eq("check", &format!("{queue}-queue"))]
            ),
            by = by(&[]),
        ),
        None => format!(
            "sum by ({by}) ({})\nor max by ({by}) (label_replace(0 * {}, \
             \"queue\", \"$1\", \"check\", \"(.+)-queue\"))",
            sel("app_queue_depth"),
            sel_with("pulse_check_success", &[rx("check", ".+-queue")]),
            by = by(&["queue"]),
        ),
    }
}

/// 1 while every Redis queue's key check succeeds.
fn redis_queue_ok() -> String {
    check_ok(&[".+-queue"])
}

/// Age of the oldest waiting job of the Redis queue `queue` (or of every queue), 0 for an
/// empty queue: its oldest-time series is absent then. A queue that holds jobs without an
/// oldest time shows nothing rather than 0.
fn redis_oldest(queue: Option<&str>) -> String {
    match queue {
        Some(queue) => {
            format!(
            "time() - min by ({by}) ({})\nor (max by ({by}) (0 * {}) unless on (instance) {} > 0)",
            sel_with("app_queue_oldest_job_timestamp_seconds", &[eq("queue", queue)]),
            sel_with("pulse_check_success", &[eq("check", &format!("{queue}-queue"))]),
            sel_with("app_queue_depth", &[eq("queue", queue)]),
            by = by(&[]),
        )
        }
        None => format!(
            "time() - min by ({by}) ({})\nor (max by ({by}) (label_replace(0 * {}, \
             \"queue\", \"$1\", \"check\", \"(.+)-queue\")) unless on (instance, queue) {} > 0)",
            sel("app_queue_oldest_job_timestamp_seconds"),
            sel_with("pulse_check_success", &[rx("check", ".+-queue")]),
            sel("app_queue_depth"),
            by = by(&["queue"]),
        ),
    }
}

/// Age of the oldest pending job of each Postgres jobs table, 0 when none is pending.
fn pg_oldest() -> String {
    format!(
        "time() - min by ({by}) ({})\nor 0 * max by ({by}) ({} == 0)",
        sel("app_jobs_oldest_pending_timestamp_seconds"),
        sel("app_jobs_pending"),
        by = by(&["queue"]),
    )
}

/// Age of the head message of each RabbitMQ queue (dead-letter queues apart), 0 when empty.
fn rabbit_oldest() -> String {
    format!(
        "time() - min by ({by}) ({})\nor 0 * max by ({by}) ({} == 0)",
        sel_with(
            "pulse_rabbitmq_queue_head_message_timestamp_seconds",
            &[eq("dead_letter", "false")]
        ),
        sel_with(
            "pulse_rabbitmq_queue_messages",
            &[eq("state", "ready"), eq("dead_letter", "false")]
        ),
        by = by(&["vhost", "queue"]),
    )
}

/// The drain time of each RabbitMQ queue that reports no head timestamp (PulseQueueDrainTooSlow's
/// series), dead-letter queues apart.
fn rabbit_drain() -> String {
    format!(
        "max by ({by}) ({})\nunless on (instance, source, vhost, queue) {}",
        sel_with(
            "pulse_rabbitmq_queue_drain_seconds",
            &[eq("dead_letter", "false")]
        ),
        sel("pulse_rabbitmq_queue_head_message_timestamp_seconds"),
        by = by(&["source", "vhost", "queue"]),
    )
}

/// UP or DOWN for each source of `kind`, 6 by 6.
fn up_stat<'b>(b: &'b mut Board, kind: &str) -> &'b mut Panel {
    let description = format!(
        "1 while the {kind} source's health probe succeeds (pulse_source_up); DOWN when it fails, NO DATA when nothing is scraped."
    );
    let target = json!({"expr": sel_with("pulse_source_up", &[format!("kind=\"{kind}\"")]),
                        "instant": true, "legendFormat": "{{platform}} {{source}}"});
    b.add(
        "stat",
        &format!("{kind} up"),
        &description,
        "none",
        vec![target],
    )
    .size(6, 6)
    .mappings(vec![STYLE.up.clone()])
    .alerts(&["PulseSourceDown"])
    .options(stat_options("background", "none", "value_and_name"))
}

/// `board`'s JSON: every series its panels and variables read narrowed to `selection`
/// (with a cluster label, a `$cluster` variable chooses one cluster), and links to the other
/// dashboards of `boards` (uid, title).
fn json(board: &Board, boards: &[(&str, &str)], selection: &Selection) -> Value {
    let knobs = selection.dashboard_matchers();
    let links: Vec<Value> = boards
        .iter()
        .filter(|(uid, _)| *uid != board.uid())
        .map(|(uid, title)| {
            json!({"title": title, "type": "link", "url": format!("/d/{uid}"),
                   "icon": "dashboard", "keepTime": true, "includeVars": true})
        })
        .collect();
    let info = |matchers: &[&str]| format!("pulse_build_info{}", braces(matchers));
    let mut variables = vec![
        datasource_variable(),
        query_variable(
            "platform",
            "Platform",
            &format!("label_values({}, platform)", info(&[&knobs])),
        ),
        query_variable(
            "instance",
            "Exporter",
            &format!(
                "label_values({}, instance)",
                info(&[&knobs, "platform=~\"$platform\""])
            ),
        ),
    ];
    if let Some(label) = selection.cluster_label() {
        let query = format!("label_values({}, {label})", info(&[selection.selector()]));
        variables.insert(1, cluster_variable(&query));
    }
    board.dashboard(&["pulse-exporter"], variables, links, &|e| {
        with_knobs(e, &knobs)
    })
}

/// `expr` read through `knobs` (see [`Selection::dashboard_matchers`]): they go before the
/// variable filter every selector of the boards ends with, and into braces after a recorded
/// series read bare (`usage_daily:dau`).
fn with_knobs(expr: &str, knobs: &str) -> String {
    if knobs.is_empty() {
        return expr.to_owned();
    }
    let bare = !expr.is_empty()
        && expr
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
    match bare {
        true => format!("{expr}{{{knobs}}}"),
        false => expr.replace(FILTER, &format!("{knobs}, {FILTER}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_check_ok_matches_a_regex_only_where_a_name_is_one() {
        assert!(check_ok(&["app_users"]).contains(r#"check="app_users", platform=~"#));
        assert!(check_ok(&["a", "b"]).contains(r#"check=~"a|b", platform=~"#));
        assert!(check_ok(&["webhook_endpoints.*"]).contains(r#"check=~"webhook_endpoints.*""#));
        assert_eq!(
            sel_with("m", &[eq("a", "1")]),
            r#"max without (pod) (m{a="1", platform=~"$platform", instance=~"$instance"})"#
        );
        assert_eq!(by_source(&["pool"]), "platform, instance, source, pool");
    }

    /// `bundle-dashboards --selector … --cluster-label …`: every series any panel or
    /// variable reads carries the selector and the chosen cluster, and a `$cluster` variable
    /// chooses one cluster.
    #[test]
    fn the_knobs_reach_every_series_a_panel_or_a_variable_reads() {
        let selection = Selection::new("tenant=\"t1\"", Some("cluster")).unwrap();
        let mut checked = 0;
        for (file, text) in render(&selection) {
            let board: Value = serde_json::from_str(&text).unwrap();
            let vars = board["templating"]["list"].as_array().unwrap();
            let names: Vec<&str> = vars.iter().map(|v| v["name"].as_str().unwrap()).collect();
            assert_eq!(
                names,
                ["datasource", "cluster", "platform", "instance"],
                "{file}"
            );
            assert_eq!(
                vars[1]["query"],
                "label_values(pulse_build_info{tenant=\"t1\"}, cluster)"
            );
            assert_eq!(vars[1]["multi"], false, "one cluster at a time");
            for v in &vars[2..] {
                let q = v["query"].as_str().unwrap();
                assert!(q.contains("{cluster=\"$cluster\", tenant=\"t1\""), "{q}");
            }
            for p in board["panels"].as_array().unwrap() {
                for t in p["targets"].as_array().into_iter().flatten() {
                    let expr = t["expr"].as_str().unwrap();
                    let concrete = expr
                        .replace("$__rate_interval", "1m")
                        .replace("$__range", "1h")
                        .replace("$platform", ".*")
                        .replace("$instance", ".*")
                        .replace("$cluster", "eu");
                    for (metric, matchers) in crate::generate::bundle::selectors(&concrete) {
                        for wanted in ["cluster=\"eu\"", "tenant=\"t1\""] {
                            assert!(
                                matchers.iter().any(|m| m == wanted),
                                "{file}, {}: {metric} {matchers:?} lacks {wanted} in\n{expr}",
                                p["title"]
                            );
                        }
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 400, "only {checked} selectors found");
    }

    #[test]
    fn every_dashboard_has_a_file_of_its_own_and_links_to_the_others() {
        let rendered = render(&Selection::default());
        let files: Vec<&str> = rendered.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            files,
            [
                "admin-overview.json",
                "platform-health.json",
                "queues-workers.json",
                "query-latency.json",
                "database-load.json",
                "objectives.json"
            ]
        );
        for (file, text) in &rendered {
            let board: Value = serde_json::from_str(text).unwrap();
            assert_eq!(board["links"].as_array().unwrap().len(), 5, "{file}");
            let panels = board["panels"].as_array().unwrap();
            for (i, p) in panels.iter().enumerate() {
                assert_eq!(p["id"], json!(i + 1), "{file}: ids follow the order");
                if p["type"] != "row" {
                    assert!(p["description"].as_str().is_some_and(|d| !d.is_empty()));
                    assert!(p["fieldConfig"]["defaults"]["unit"].is_string());
                }
            }
        }
    }

    /// Every runbook link names an alert the bundle declares, and a panel's red step where
    /// it links an alert with a bound is that bound: a renamed alert or a bound that moved
    /// in the declarations fails here until the boards follow (they read them).
    #[test]
    fn runbook_links_name_declared_alerts_and_red_lines_are_their_bounds() {
        let declared = crate::generate::bundle::Declared::of(&Selection::default());
        let mut compared = Vec::new();
        for (file, text) in render(&Selection::default()) {
            let board: Value = serde_json::from_str(&text).unwrap();
            for p in board["panels"].as_array().unwrap() {
                let linked: Vec<&str> = p["links"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|l| l["title"].as_str()?.strip_prefix("Runbook: "))
                    .collect();
                let steps = p["fieldConfig"]["defaults"]["thresholds"]["steps"].clone();
                let red = steps
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|s| s["color"] == "red" && !s["value"].is_null())
                    .and_then(|s| s["value"].as_f64());
                for alert in linked {
                    let a = declared
                        .get(alert)
                        .unwrap_or_else(|| panic!("{file}, {}: no alert {alert}", p["title"]));
                    if let (Some(bound), Some(red)) = (a.bound(), red) {
                        if [&[
                            "PulseOldestJobTooOld",
                            "PulseQueueDrainTooSlow",
                            "PulseJobLatencyHigh",
                            "PulseSourceSlow",
                        ][..]]
                        .concat()
                        .contains(&alert)
                        {
                            assert_eq!(
                                red, bound,
                                "{file}, {}: red at {red}, {alert} at {bound}",
                                p["title"]
                            );
                            compared.push(alert.to_owned());
                        }
                    }
                }
            }
        }
        for alert in [
            "PulseOldestJobTooOld",
            "PulseQueueDrainTooSlow",
            "PulseJobLatencyHigh",
            "PulseSourceSlow",
        ] {
            assert!(
                compared.iter().any(|a| a == alert),
                "no panel draws {alert}'s line"
            );
        }
    }
}
