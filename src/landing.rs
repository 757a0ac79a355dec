//! The HTML landing page at `/`: name, version, links, and a status table of the sources.

use std::time::SystemTime;

use crate::app::SourceStatus;
use crate::store::{Entry, ShardStatus};

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

/// Renders the page; `entries` is a store snapshot, `telemetry_path` the metrics link,
/// `shard` what part of the config this replica runs.
pub fn render(
    sources: &[SourceStatus],
    entries: &[Entry],
    telemetry_path: &str,
    shard: ShardStatus,
) -> String {
    let now = SystemTime::now();
    let mut rows = String::new();
    for s in sources {
        let mine: Vec<&Entry> = entries.iter().filter(|e| e.plan.source == s.name).collect();
        let health = mine.iter().find(|e| e.plan.is_health());
        let (status, class) = match health.and_then(|h| h.succeeded()) {
            Some(true) => ("UP".to_owned(), "up"),
            Some(false) => (
                format!(
                    "DOWN ({})",
                    health
                        .and_then(|h| h.last_error.as_ref())
                        .map(|e| e.reason().as_str())
                        .unwrap_or("?")
                ),
                "down",
            ),
            None => ("PENDING".to_owned(), "pending"),
        };
        let error = health
            .and_then(|h| h.last_error.as_ref())
            .map(|e| e.message().to_owned())
            .unwrap_or_default();
        let checks: Vec<&&Entry> = mine.iter().filter(|e| !e.plan.is_health()).collect();
        let ok = checks
            .iter()
            .filter(|e| e.succeeded() == Some(true))
            .count();
        rows.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"{class}\">{}</td><td>{}</td><td>{}/{}</td><td>{}</td></tr>\n",
            esc(&s.name),
            esc(s.kind),
            esc(&s.endpoint),
            esc(&status),
            esc(&ago(health.and_then(|h| h.last_success), now)),
            ok,
            checks.len(),
            esc(&error),
        ));
    }
    format!(
        r#"<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>pulse-exporter</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left}}.up{{color:#1a7f37}}.down{{color:#cf222e;font-weight:bold}}.pending{{color:#9a6700}}</style>
</head><body>
<h1>pulse-exporter</h1>
<p>Version {version}. Every metric is served from cache: scrapes never wait on a source.</p>
<ul><li><a href="{path}">Metrics</a></li><li><a href="/dashboards.json">Grafana dashboard for this config</a> (import it in Grafana)</li><li><a href="/rules.yml">Prometheus alerting rules for this config</a></li><li><a href="/-/healthy">Health</a></li><li><a href="/-/ready">Readiness</a></li></ul>
<h2>Sources</h2>
<p>{sharding}</p>
<table><tr><th>Source</th><th>Kind</th><th>Endpoint</th><th>Status</th><th>Last success</th><th>Checks OK</th><th>Last error</th></tr>
{rows}</table>
</body></html>
"#,
        version = env!("CARGO_PKG_VERSION"),
        path = esc(telemetry_path),
        sharding = sharding(shard),
    )
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
            shard: crate::shard::Shard { index: 1, count: 3 },
            owned: 11,
            total: 31,
        };
        let page = render(&[], &[], "/metrics", shard);
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
        );
        assert!(whole.contains("runs all 4 sources"), "{whole}");
    }

    #[test]
    fn escapes_html() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
