//! The HTML landing page at `/`: name, version, links, the last config reload, a status table
//! of the sources and one of every check, failing ones first, each with its reason, its last
//! error (scrubbed like every error) and its last success.

use std::time::SystemTime;

use crate::jobs::config::JobSpec;
use crate::jobs::state::JobState;
use crate::runtime::app::SourceStatus;
use crate::runtime::results::{CheckState, Entry, ReloadStatus, ShardStatus};
use crate::runtime::targets::LeaseStatus;

/// Escapes text for HTML element content and attribute values.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn ago(t: Option<SystemTime>, now: SystemTime) -> String {
    match t {
        Some(t) => {
            let secs = now.duration_since(t).unwrap_or_default().as_secs();
            format!(
                "{} ago",
                humantime::format_duration(std::time::Duration::from_secs(secs))
            )
        }
        None => "never".to_owned(),
    }
}

/// How long a state has lasted, and since when (UTC), for the "Since" columns.
fn since(t: Option<SystemTime>, now: SystemTime) -> String {
    match t {
        Some(t) => {
            let secs = now.duration_since(t).unwrap_or_default().as_secs();
            format!(
                "{} ({})",
                humantime::format_duration(std::time::Duration::from_secs(secs)),
                humantime::format_rfc3339_seconds(t)
            )
        }
        None => String::new(),
    }
}

/// The state of a check or health probe as the page shows it: text and CSS class.
fn state(entry: &Entry) -> (String, &'static str) {
    match entry.state() {
        CheckState::Ok => ("OK".to_owned(), "up"),
        CheckState::Failing => (
            format!(
                "FAILING ({})",
                entry
                    .last_error
                    .as_ref()
                    .map(|e| e.reason().as_str())
                    .unwrap_or("?")
            ),
            "down",
        ),
        CheckState::NotMeasured(_) => ("NOT MEASURED".to_owned(), "unmeasured"),
        CheckState::Pending => ("PENDING".to_owned(), "pending"),
    }
}

/// The sentence about the last config (re)load: when, and why it was rejected.
fn reload_line(r: &ReloadStatus, now: SystemTime) -> String {
    match (&r.last_error, r.last_successful) {
        (Some(e), false) => format!(
            "<p class=\"down\">Config reload REJECTED {}: {}. The configuration applied {} keeps running.</p>",
            esc(&ago(r.last_attempt, now)),
            esc(e),
            esc(&ago(r.last_success, now)),
        ),
        _ => format!(
            "<p>Config applied {}.</p>",
            esc(&ago(r.last_success, now))
        ),
    }
}

/// Renders the page; `entries` is a store snapshot, `telemetry_path` the metrics link,
/// `shard` what part of the config this replica runs, `reload` the last config (re)load,
/// `leases` the targets leased through templates.
pub fn render(
    sources: &[SourceStatus],
    entries: &[Entry],
    telemetry_path: &str,
    shard: ShardStatus,
    reload: &ReloadStatus,
    leases: &[LeaseStatus],
    jobs: &[(JobSpec, Option<JobState>)],
) -> String {
    let now = SystemTime::now();
    let mut rows = String::new();
    let mut failing = String::new();
    let mut passing = String::new();
    for s in sources {
        let mine: Vec<&Entry> = entries.iter().filter(|e| e.plan.source == s.name).collect();
        rows.push_str(&source_row(s, &mine, now));
        for c in mine.iter().filter(|e| !e.plan.is_health()) {
            let (row, failed) = check_row(s, c, now);
            match failed {
                true => failing.push_str(&row),
                false => passing.push_str(&row),
            }
        }
    }
    let summary = summary(sources, entries, jobs.len(), shard.total);
    // Empty tables would read as "nothing wrong"; a config without sources says so instead.
    let tables = if sources.is_empty() {
        "<p>No source runs here, so there is no check to show.</p>".to_owned()
    } else {
        format!(
            "<table><tr><th>Source</th><th>Kind</th><th>Endpoint</th><th>Status</th><th>Since</th><th>Last success</th><th>Checks OK</th><th>Last error</th></tr>\n{rows}</table>\n<h2>Checks</h2>\n<p>Failing checks first; NOT MEASURED means the check ran but the server cannot give what it measures (the reason says how to fix it).</p>\n<table><tr><th>Source</th><th>Check</th><th>State</th><th>Since</th><th>Last success</th><th>Last error</th></tr>\n{failing}{passing}</table>"
        )
    };
    format!(
        r#"<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>pulse-exporter</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left}}.up{{color:#1a7f37}}.down{{color:#cf222e;font-weight:bold}}.pending{{color:#9a6700}}.unmeasured{{color:#57606a;font-style:italic}}tr.bad{{background:#ffebe9}}p.summary{{font-size:1.2em;padding:6px 10px}}p.summary.bad{{background:#ffebe9;color:#cf222e;font-weight:bold}}p.summary.good{{background:#dafbe1;color:#1a7f37}}</style>
</head><body>
<h1>pulse-exporter</h1>
{summary}
<p>Version {version}. Every metric is served from cache: scrapes never wait on a source.</p>
<ul><li><a href="{path}">Metrics</a></li><li><a href="/dashboards.json">Grafana dashboard for this config</a> (import it in Grafana)</li><li><a href="/rules.yml">Prometheus alerting rules for this config</a></li><li><a href="/-/healthy">Health</a></li><li><a href="/-/ready">Readiness</a></li></ul>
{reload}
<h2>Sources</h2>
<p>{sharding}</p>
{tables}
{leased}{jobs}</body></html>
"#,
        leased = leased(leases, entries),
        jobs = jobs_section(jobs, now),
        version = env!("CARGO_PKG_VERSION"),
        path = esc(telemetry_path),
        sharding = sharding(shard),
        reload = reload_line(reload, now),
    )
}

/// The instant of a Unix time in seconds (a job state's times).
fn instant(secs: f64) -> SystemTime {
    SystemTime::UNIX_EPOCH + std::time::Duration::from_secs_f64(secs.max(0.0))
}

/// Most jobs listed, late and failing ones first.
const JOBS_SHOWN: usize = 200;

/// The jobs' section, when there are any: each job's state (late, failed, running, on time),
/// its deadline, last start, success and failure, and its last run's log tail.
fn jobs_section(jobs: &[(JobSpec, Option<JobState>)], now: SystemTime) -> String {
    if jobs.is_empty() {
        return String::new();
    }
    let now_secs = crate::series::sample::unix_seconds(now);
    let at = |t: Option<f64>| match t {
        Some(t) => {
            let when = instant(t);
            format!(
                "{} ({})",
                ago(Some(when), now),
                humantime::format_rfc3339_seconds(when)
            )
        }
        None => "never".to_owned(),
    };
    let mut rows: Vec<(u8, String)> = jobs
        .iter()
        .map(|(spec, state)| {
            let deadline = state.as_ref().and_then(|s| s.deadline(spec));
            let late = deadline.is_some_and(|d| now_secs > d);
            let (rank, text, class) = match state {
                None => (3, "not read yet".to_owned(), "pending"),
                Some(s) if s.failing() => (0, match s.last_exit_code {
                    Some(c) => format!("failed (exit code {c})"),
                    None => "failed".to_owned(),
                }, "down"),
                Some(_) if late => (1, "late".to_owned(), "down"),
                Some(s) if !s.running.is_empty() => (2, format!("running ({})", s.running.len()), "pending"),
                Some(_) => (4, "on time".to_owned(), "up"),
            };
            let deadline_text = match deadline {
                Some(d) => humantime::format_rfc3339_seconds(instant(d)).to_string(),
                None => String::new(),
            };
            let log = match state.as_ref().and_then(|s| s.log.as_deref()) {
                Some(l) => format!("<details><summary>tail</summary><pre>{}</pre></details>", esc(&crate::secrets::scrub(l))),
                None => String::new(),
            };
            let s = state.clone().unwrap_or_default();
            let row = format!(
                "<tr{bad}><td>{}</td><td>{}</td><td class=\"{class}\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{log}</td></tr>\n",
                esc(&spec.name),
                esc(&spec.schedule.describe()),
                esc(&text),
                esc(&deadline_text),
                esc(&at(s.last_start)),
                esc(&at(s.last_success)),
                esc(&at(s.last_failure)),
                bad = if rank <= 1 { " class=\"bad\"" } else { "" },
            );
            (rank, row)
        })
        .collect();
    // Sorted before the cut, so a failed job past the first 200 is still shown.
    rows.sort_by_key(|(rank, _)| *rank);
    let rows: String = rows.into_iter().take(JOBS_SHOWN).map(|(_, r)| r).collect();
    let more = more_line(jobs.len(), JOBS_SHOWN, "pulse_job_info lists them all");
    format!(
        "<h2>Jobs</h2>\n<p>{} jobs that report in at <code>/ping/NAME/…</code>; failed and late ones first. Times are when this exporter's replicas received the pings.</p>\n<table><tr><th>Job</th><th>Schedule</th><th>State</th><th>Deadline</th><th>Last start</th><th>Last success</th><th>Last failure</th><th>Last log</th></tr>\n{rows}</table>\n{more}",
        jobs.len()
    )
}

/// Most leased targets listed: the page stays small with a thousand leased.
const LEASES_SHOWN: usize = 200;

/// The leased targets' section, when there are any: each target's health, how long it has
/// been leased, since its last request, and when it lapses without one.
fn leased(leases: &[LeaseStatus], entries: &[Entry]) -> String {
    if leases.is_empty() {
        return String::new();
    }
    let human = |d: std::time::Duration| {
        humantime::format_duration(std::time::Duration::from_secs(d.as_secs())).to_string()
    };
    let now = SystemTime::now();
    let mut rows = String::new();
    for l in leases.iter().take(LEASES_SHOWN) {
        let health = entries
            .iter()
            .find(|e| e.plan.source == l.source && e.plan.is_health());
        let (status, class) = match Health::of(health) {
            Health::Up => ("up".to_owned(), "up"),
            Health::Down(reason) => (format!("down ({})", reason.unwrap_or("unknown")), "down"),
            Health::Pending => ("warming".to_owned(), "pending"),
        };
        let age = now.duration_since(l.since).unwrap_or_default();
        rows.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td class=\"{class}\">{}</td><td>{}</td><td>{} ago</td><td>{}</td></tr>\n",
            esc(&l.target),
            esc(&l.template),
            esc(&status),
            human(age),
            human(l.idle),
            human(l.idle_after),
        ));
    }
    let more = more_line(
        leases.len(),
        LEASES_SHOWN,
        "pulse_leased_targets counts them all",
    );
    format!(
        "<h2>Leased targets</h2>\n<p>{} targets probed through templates for the scrapers that ask for them (<code>/probe?template=…&amp;target=…</code>); each stops when no request came for its idle time.</p>\n<table><tr><th>Target</th><th>Template</th><th>Status</th><th>Leased for</th><th>Last request</th><th>Lapses after</th></tr>\n{rows}</table>\n{more}",
        leases.len()
    )
}

/// The line under a table cut at `shown` rows of `total`: how many more, and where to see them.
fn more_line(total: usize, shown: usize, where_: &str) -> String {
    match total.saturating_sub(shown) {
        0 => String::new(),
        n => format!("<p>… and {n} more ({where_}).</p>\n"),
    }
}

/// A health probe's state, as both tables show it.
enum Health {
    Up,
    /// Down, with the reason of its last error when it has one.
    Down(Option<&'static str>),
    /// No run has finished yet.
    Pending,
}

impl Health {
    fn of(health: Option<&Entry>) -> Self {
        match health.and_then(|h| h.succeeded()) {
            Some(true) => Health::Up,
            Some(false) => Health::Down(
                health
                    .and_then(|h| h.last_error.as_ref())
                    .map(|e| e.reason().as_str()),
            ),
            None => Health::Pending,
        }
    }
}

/// The row of one source: its status (with the reason it is down), since when, its last
/// success, its checks that pass, and its error or else its first failing check's.
fn source_row(s: &SourceStatus, mine: &[&Entry], now: SystemTime) -> String {
    let health = mine.iter().find(|e| e.plan.is_health());
    let (status, class) = match Health::of(health.copied()) {
        Health::Up => ("UP".to_owned(), "up"),
        Health::Down(reason) => (format!("DOWN ({})", reason.unwrap_or("?")), "down"),
        Health::Pending => ("PENDING".to_owned(), "pending"),
    };
    let checks: Vec<&&Entry> = mine.iter().filter(|e| !e.plan.is_health()).collect();
    let ok = checks
        .iter()
        .filter(|e| e.state() == CheckState::Ok)
        .count();
    let unmeasured = checks
        .iter()
        .filter(|e| matches!(e.state(), CheckState::NotMeasured(_)))
        .count();
    let failed: Vec<&&&Entry> = checks
        .iter()
        .filter(|e| e.succeeded() == Some(false))
        .collect();
    // The source's own error, or else its first failing check's: a source that is up
    // with a broken query must not show an empty error.
    let error = match health.and_then(|h| h.last_error.as_ref()) {
        Some(e) => e.message().to_owned(),
        None => failed
            .first()
            .and_then(|c| {
                c.last_error
                    .as_ref()
                    .map(|e| format!("check {}: {}", c.plan.check, e.message()))
            })
            .unwrap_or_default(),
    };
    let checks_class = if failed.is_empty() { "" } else { "down" };
    let row_class = if class == "down" || !failed.is_empty() {
        "bad"
    } else {
        ""
    };
    format!(
        "<tr class=\"{row_class}\"><td>{}</td><td>{}</td><td>{}</td><td class=\"{class}\">{}</td><td>{}</td><td>{}</td><td class=\"{checks_class}\">{}/{}{}</td><td>{}</td></tr>\n",
        esc(&s.name),
        esc(s.kind),
        esc(&s.endpoint),
        esc(&status),
        esc(&since(health.and_then(|h| h.state_since), now)),
        esc(&ago(health.and_then(|h| h.last_success), now)),
        ok,
        checks.len(),
        match (failed.len(), unmeasured) {
            (0, 0) => String::new(),
            (0, u) => format!(" ({u} not measured)"),
            (f, 0) => format!(" ({f} FAILING)"),
            (f, u) => format!(" ({f} FAILING, {u} not measured)"),
        },
        esc(&error),
    )
}

/// The row of one check, and whether it is failing.
fn check_row(s: &SourceStatus, c: &Entry, now: SystemTime) -> (String, bool) {
    let (state, class) = state(c);
    let row_class = if class == "down" { "bad" } else { "" };
    let row = format!(
        "<tr class=\"{row_class}\"><td>{}</td><td>{}</td><td class=\"{class}\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
        esc(&s.name),
        esc(&c.plan.check),
        esc(&state),
        esc(&since(c.state_since, now)),
        esc(&ago(c.last_success, now)),
        esc(c
            .last_error
            .as_ref()
            .map(|e| e.message())
            .or(c.unmeasured())
            .unwrap_or("")),
    );
    (row, class == "down")
}

/// The first line under the title: everything fine, or how many sources and checks fail;
/// checks that could not measure and checks not run yet are counted apart, never as OK.
fn summary(sources: &[SourceStatus], entries: &[Entry], jobs: usize, configured: usize) -> String {
    if sources.is_empty() {
        let what = match configured {
            0 => "No sources configured",
            _ => "No source of the config runs on this shard",
        };
        let watched = match jobs {
            0 => "nothing: add sources or jobs to the config".to_owned(),
            n => format!("{n} jobs only (see Jobs below)"),
        };
        return format!("<p class=\"summary\">{what}: this exporter watches {watched}.</p>");
    }
    // Each source's last health probe: None until its first (not up, but pending).
    let probed: Vec<Option<bool>> = sources
        .iter()
        .map(|s| {
            entries
                .iter()
                .find(|e| e.plan.source == s.name && e.plan.is_health())
                .and_then(|e| e.succeeded())
        })
        .collect();
    let down = probed.iter().filter(|p| **p == Some(false)).count();
    let unprobed = probed.iter().filter(|p| p.is_none()).count();
    let (mut ok, mut unmeasured, mut pending, mut failing) = (0, 0, 0, 0);
    let mine = |e: &&Entry| !e.plan.is_health() && sources.iter().any(|s| s.name == e.plan.source);
    for e in entries.iter().filter(mine) {
        match e.state() {
            CheckState::Ok => ok += 1,
            CheckState::NotMeasured(_) => unmeasured += 1,
            CheckState::Pending => pending += 1,
            CheckState::Failing => failing += 1,
        }
    }
    let checks = ok + unmeasured + pending + failing;
    let mut counts = vec![format!("{ok} of {checks} checks OK")];
    if unmeasured > 0 {
        counts.push(format!("{unmeasured} not measured"));
    }
    if pending > 0 {
        counts.push(format!("{pending} pending (not run yet)"));
    }
    if down == 0 && failing == 0 && unprobed > 0 {
        format!(
            "<p class=\"summary\">{} of {} sources up, {unprobed} pending (not probed yet); {}.</p>",
            sources.len() - unprobed,
            sources.len(),
            counts.join(", ")
        )
    } else if down == 0 && failing == 0 {
        format!(
            "<p class=\"summary good\">All {} sources up; {}.</p>",
            sources.len(),
            counts.join(", ")
        )
    } else {
        format!(
            "<p class=\"summary bad\">PROBLEMS: {down} of {} sources down, {failing} of {checks} checks failing; {}. Details below, failing first.</p>",
            sources.len(),
            counts.join(", ")
        )
    }
}

/// The sentence saying which sources this replica runs.
fn sharding(s: ShardStatus) -> String {
    if s.shard.is_split() {
        format!(
            "Shard {} of {} (from 0): this replica runs the {} sources below, of {} in the config; the other shards run the rest.",
            s.shard.index, s.shard.count, s.owned, s.total
        )
    } else {
        format!(
            "Not sharded: this replica runs all {} sources of the config.",
            s.total
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_says_which_shard_it_is() {
        let shard = ShardStatus {
            shard: crate::runtime::shard::Shard { index: 1, count: 3 },
            owned: 11,
            total: 31,
        };
        let page = render(
            &[],
            &[],
            "/metrics",
            shard,
            &ReloadStatus::default(),
            &[],
            &[],
        );
        assert!(
            page.contains("Shard 1 of 3 (from 0): this replica runs the 11 sources below, of 31"),
            "{page}"
        );
        let whole = render(
            &[],
            &[],
            "/metrics",
            ShardStatus {
                total: 4,
                owned: 4,
                ..Default::default()
            },
            &ReloadStatus::default(),
            &[],
            &[],
        );
        assert!(whole.contains("runs all 4 sources"), "{whole}");
        assert!(!whole.contains("<h2>Jobs</h2>"), "{whole}");
        assert!(!whole.contains("Leased targets"), "{whole}");
    }

    #[test]
    fn leased_targets_are_listed_with_their_age_and_when_they_lapse() {
        use std::time::Duration;
        let lease = |target: &str| LeaseStatus {
            source: format!("fleet/{target}"),
            template: "fleet".into(),
            target: target.into(),
            since: SystemTime::now() - Duration::from_secs(125),
            idle: Duration::from_secs(14),
            idle_after: Duration::from_secs(120),
        };
        let leases: Vec<LeaseStatus> = (0..250)
            .map(|i| lease(&format!("10.0.0.{i}:5432")))
            .collect();
        let page = render(
            &[],
            &[],
            "/metrics",
            ShardStatus::default(),
            &ReloadStatus::default(),
            &leases,
            &[],
        );
        assert!(
            page.contains("<h2>Leased targets</h2>\n<p>250 targets"),
            "{page}"
        );
        assert!(
            page.contains("<tr><td>10.0.0.0:5432</td><td>fleet</td><td class=\"pending\">warming</td><td>2m 5s</td><td>14s ago</td><td>2m</td></tr>"),
            "{page}"
        );
        // Bounded: 200 rows and a count of the rest.
        assert_eq!(page.matches("<td>fleet</td>").count(), LEASES_SHOWN);
        assert!(page.contains("… and 50 more"), "{page}");
    }

    #[test]
    fn jobs_are_listed_failed_and_late_first_with_their_log_tail() {
        use crate::jobs::schedule::Schedule;
        use crate::jobs::state::{Ping, Signal};
        let spec = |name: &str| JobSpec {
            name: name.into(),
            schedule: Schedule::Every(std::time::Duration::from_secs(3600)),
            grace: std::time::Duration::from_secs(60),
            max_runtime: None,
            labels: Default::default(),
            token: None,
            key: None,
            objective: None,
            latency_objectives: Vec::new(),
        };
        let now = crate::series::sample::unix_now();
        let mut failed = JobState::new(now - 10.0);
        failed.apply(
            &Ping {
                signal: Signal::Fail(Some(2)),
                rid: None,
                log: Some("<boom>".into()),
                at: now - 5.0,
            },
            std::time::Duration::from_secs(60),
        );
        let jobs = vec![
            (spec("fine"), Some(JobState::new(now))),
            (spec("late"), Some(JobState::new(now - 7200.0))),
            (spec("broken"), Some(failed)),
        ];
        let page = render(
            &[],
            &[],
            "/metrics",
            ShardStatus::default(),
            &ReloadStatus::default(),
            &[],
            &jobs,
        );
        let order: Vec<usize> = ["broken", "late", "fine"]
            .iter()
            .map(|n| page.find(&format!("<td>{n}</td>")).unwrap())
            .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{page}");
        assert!(page.contains("failed (exit code 2)"), "{page}");
        assert!(page.contains("<pre>&lt;boom&gt;</pre>"), "{page}");
        assert!(page.contains("<td class=\"down\">late</td>"), "{page}");
    }

    /// A check that ran but could not measure is neither OK nor failing, one not run yet is
    /// pending: the banner counts each, the check's row says why and how to fix it, and a
    /// config without sources says so instead of showing empty tables.
    #[test]
    fn not_measured_and_pending_are_told_apart_from_ok() {
        use crate::config_core::CheckPlan;
        use crate::runtime::results::Results;
        use std::sync::Arc;
        use std::time::Duration;
        let plan = |check: &str| {
            Arc::new(CheckPlan {
                source: "db".into(),
                kind: "postgres",
                check: check.into(),
                interval: Duration::from_secs(60),
                timeout: Duration::from_secs(5),
                stale_after: Duration::from_secs(180),
                max_series: 100,
                max_bytes: usize::MAX,
                const_labels: vec![],
            })
        };
        let store = Results::new();
        let now = SystemTime::now();
        for check in ["health", "statements", "app_users", "tables"] {
            store.register(plan(check));
        }
        let unmeasured = crate::series::sample::Output {
            unmeasured: Some("pg_stat_statements is not installed: add it".to_owned()),
            ..Default::default()
        };
        let ms = Duration::from_millis(3);
        store.record(&plan("health"), Ok(Default::default()), ms, now);
        store.record(&plan("statements"), Ok(unmeasured), ms, now);
        store.record(&plan("app_users"), Ok(Default::default()), ms, now);
        let sources = [SourceStatus {
            name: "db".into(),
            kind: "postgres",
            endpoint: "postgres://h/db".into(),
            tier: None,
            platform: None,
        }];
        let page = |sources: &[SourceStatus], jobs: &[(JobSpec, Option<JobState>)]| {
            render(
                sources,
                &store.snapshot(),
                "/metrics",
                ShardStatus {
                    total: sources.len(),
                    owned: sources.len(),
                    ..Default::default()
                },
                &ReloadStatus::default(),
                &[],
                jobs,
            )
        };
        let shown = page(&sources, &[]);
        assert!(
            shown.contains(
                "All 1 sources up; 1 of 3 checks OK, 1 not measured, 1 pending (not run yet)."
            ),
            "{shown}"
        );
        assert!(!shown.contains("(or not run yet)"), "{shown}");
        assert!(
            shown.contains("<td class=\"unmeasured\">NOT MEASURED</td>")
                && shown.contains("pg_stat_statements is not installed: add it"),
            "{shown}"
        );
        assert!(shown.contains("1/3 (1 not measured)"), "{shown}");
        let empty = page(&[], &[]);
        assert!(
            empty.contains("No sources configured: this exporter watches nothing")
                && !empty.contains("<th>Check</th>"),
            "{empty}"
        );
        // A source whose health probe has not run is pending, not up.
        let mut two = sources.to_vec();
        two.push(SourceStatus {
            name: "cache".into(),
            kind: "redis",
            endpoint: "redis://h".into(),
            tier: None,
            platform: None,
        });
        store.register(Arc::new(CheckPlan {
            source: "cache".into(),
            kind: "redis",
            ..(*plan("health")).clone()
        }));
        let waiting = page(&two, &[]);
        assert!(
            waiting.contains("1 of 2 sources up, 1 pending (not probed yet); 1 of 3 checks OK")
                && !waiting.contains("All 2 sources up"),
            "{waiting}"
        );
        // A jobs-only config names its jobs, with no empty source tables.
        let job = JobSpec {
            name: "rollup".into(),
            schedule: crate::jobs::schedule::Schedule::Every(Duration::from_secs(3600)),
            grace: Duration::from_secs(60),
            max_runtime: None,
            labels: Default::default(),
            token: None,
            key: None,
            objective: None,
            latency_objectives: Vec::new(),
        };
        let jobs_only = page(&[], &[(job, None)]);
        assert!(
            jobs_only.contains(
                "No sources configured: this exporter watches 1 jobs only (see Jobs below)"
            ) && jobs_only.contains("<h2>Jobs</h2>")
                && jobs_only.contains("<td>rollup</td>")
                && !jobs_only.contains("<th>Check</th>")
                && !jobs_only.contains("All 0 sources"),
            "{jobs_only}"
        );
    }

    #[test]
    fn escapes_html() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
