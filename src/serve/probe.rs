//! Scraping one source at a time, the multi-target way Prometheus users know from
//! blackbox_exporter: `/probe?source=NAME` serves that source's series from the cache (so
//! Prometheus keeps an `up`, a scrape duration and a `sample_limit` per source), and `/sd`
//! lists the sources this replica runs as HTTP service discovery targets, each with the
//! address it was asked at, so one scrape config relabels every target to its own `/probe`.
//!
//! Nothing here waits on a source: both answers come from the store and the running config.

use serde::Serialize;

use crate::run::app::SourceStatus;

/// Why a `/probe` request is refused: the HTTP status and a message saying what to ask for.
#[derive(Debug, PartialEq, Eq)]
pub struct Refusal {
    /// 400 for a malformed request, 404 for a source this replica does not run.
    pub status: u16,
    /// One line for the scrape error Prometheus shows.
    pub message: String,
}

/// The query of a `/probe` request.
#[derive(Debug, Default, serde::Deserialize)]
pub struct ProbeQuery {
    /// A configured source's name.
    pub source: Option<String>,
    /// An address to probe with a template (not served by this version).
    pub target: Option<String>,
}

/// The source a `/probe` request names, among `running`; or why it is refused.
pub fn chosen<'a>(query: &ProbeQuery, running: &'a [SourceStatus]) -> Result<&'a str, Refusal> {
    let refuse = |status, message: String| Err(Refusal { status, message });
    let name = match (&query.source, &query.target) {
        (Some(name), None) => name,
        (_, Some(_)) => {
            return refuse(
                400,
                "`?target=` needs a template, and this exporter has none: probe a configured \
                 source with `?source=NAME` (`/sd` lists them)"
                    .to_owned(),
            )
        }
        (None, None) => {
            return refuse(
                400,
                "`/probe` needs `?source=NAME`: the name of a source this exporter runs \
                 (`/sd` lists them)"
                    .to_owned(),
            )
        }
    };
    match running.iter().find(|s| s.name == *name) {
        Some(s) => Ok(&s.name),
        None => refuse(
            404,
            format!(
                "no source named {:?} runs here: `/sd` lists the {} this replica runs",
                crate::secrets::scrub(&name.chars().take(200).collect::<String>()),
                running.len()
            ),
        ),
    }
}

/// One target group of HTTP service discovery.
#[derive(Debug, Serialize, PartialEq)]
pub struct TargetGroup {
    /// The source's name: a scrape config passes it on as `?source=` and as `instance`.
    pub targets: [String; 1],
    /// `__meta_pulse_source`, `__meta_pulse_kind`, `__meta_pulse_tier` and
    /// `__meta_pulse_platform` where set (meta labels: the series already carry `source`
    /// and `kind`, and a target label of the same name would rename theirs), and
    /// `__meta_pulse_exporter_address`, the address `/sd` was asked at, which the scrape
    /// config makes the target's `__address__`.
    pub labels: std::collections::BTreeMap<String, String>,
}

/// The target groups of the sources this replica runs, addressed to `exporter` (the `Host`
/// the request came to).
pub fn discovery(running: &[SourceStatus], exporter: &str) -> Vec<TargetGroup> {
    running
        .iter()
        .map(|s| {
            let mut labels = std::collections::BTreeMap::new();
            labels.insert("__meta_pulse_source".to_owned(), s.name.clone());
            labels.insert("__meta_pulse_kind".to_owned(), s.kind.to_owned());
            if let Some(tier) = &s.tier {
                labels.insert("__meta_pulse_tier".to_owned(), tier.clone());
            }
            if let Some(platform) = &s.platform {
                labels.insert("__meta_pulse_platform".to_owned(), platform.clone());
            }
            labels.insert(
                "__meta_pulse_exporter_address".to_owned(),
                exporter.to_owned(),
            );
            TargetGroup {
                targets: [s.name.clone()],
                labels,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn running() -> Vec<SourceStatus> {
        vec![
            SourceStatus {
                name: "app-db".into(),
                kind: "postgres",
                endpoint: "db:5432".into(),
                tier: Some("critical".into()),
                platform: Some("hivesync".into()),
            },
            SourceStatus {
                name: "cache".into(),
                kind: "redis",
                endpoint: "cache:6379".into(),
                tier: None,
                platform: None,
            },
        ]
    }

    fn query(source: Option<&str>, target: Option<&str>) -> ProbeQuery {
        ProbeQuery {
            source: source.map(str::to_owned),
            target: target.map(str::to_owned),
        }
    }

    #[test]
    fn a_probe_names_a_running_source_or_is_told_what_to_ask() {
        let running = running();
        assert_eq!(chosen(&query(Some("cache"), None), &running), Ok("cache"));
        let missing = chosen(&query(None, None), &running).unwrap_err();
        assert_eq!(missing.status, 400);
        assert!(
            missing.message.contains("?source=NAME"),
            "{}",
            missing.message
        );
        let unknown = chosen(&query(Some("nope"), None), &running).unwrap_err();
        assert_eq!(unknown.status, 404);
        assert!(
            unknown.message.contains("the 2 this replica runs"),
            "{}",
            unknown.message
        );
        let target = chosen(&query(None, Some("10.0.0.5:5432")), &running).unwrap_err();
        assert_eq!(target.status, 400);
        assert!(target.message.contains("template"), "{}", target.message);
        // A hostile name is cut short in the message.
        let long = "x".repeat(10_000);
        let refused = chosen(&query(Some(&long), None), &running).unwrap_err();
        assert!(refused.message.len() < 400, "{}", refused.message.len());
    }

    #[test]
    fn discovery_lists_each_running_source_addressed_to_this_replica() {
        let groups = discovery(&running(), "pulse-0.pulse:7857");
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].targets, ["app-db".to_owned()]);
        let json = serde_json::to_value(&groups).unwrap();
        assert_eq!(
            json[0]["labels"],
            serde_json::json!({
                "__meta_pulse_source": "app-db", "__meta_pulse_kind": "postgres",
                "__meta_pulse_tier": "critical", "__meta_pulse_platform": "hivesync",
                "__meta_pulse_exporter_address": "pulse-0.pulse:7857",
            })
        );
        assert_eq!(
            json[1]["labels"],
            serde_json::json!({
                "__meta_pulse_source": "cache", "__meta_pulse_kind": "redis",
                "__meta_pulse_exporter_address": "pulse-0.pulse:7857",
            })
        );
    }
}
