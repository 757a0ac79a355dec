//! Scraping one source at a time, the multi-target way Prometheus users know from
//! blackbox_exporter: `/probe?source=NAME` serves that source's series from the cache (so
//! Prometheus keeps an `up`, a scrape duration and a `sample_limit` per source), and `/sd`
//! lists the sources this replica runs as HTTP service discovery targets, each with the
//! address it was asked at, so one scrape config relabels every target to its own `/probe`.
//!
//! `/probe?template=NAME&target=HOST:PORT` leases the target through a template of the config
//! (see [`crate::runtime::targets`]): its first request starts its checks in the background and
//! waits for their first results no longer than [`wait_bound`] allows, then answers with what
//! it has and `pulse_probe_warming 1`; later requests answer from the cache at once.
//!
//! Nothing here waits on a source past that bound: every answer comes from the store.

use serde::Serialize;

use axum::http::StatusCode;

use crate::runtime::app::SourceStatus;
use crate::serve::refusal::Refusal;

/// The query of a `/probe` request.
#[derive(Debug, Default, serde::Deserialize)]
pub struct ProbeQuery {
    /// A configured source's name.
    pub source: Option<String>,
    /// An address to probe with `template`.
    pub target: Option<String>,
    /// The template `target` is probed with.
    pub template: Option<String>,
}

/// What a `/probe` request asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Asked<'a> {
    /// A configured source, by name.
    Source(&'a str),
    /// A target, through a template.
    Target {
        /// The template's name.
        template: &'a str,
        /// The address.
        target: &'a str,
    },
}

/// What a `/probe` request asks for, with `running` the configured sources of this replica;
/// or why it is refused.
pub fn chosen<'a>(query: &'a ProbeQuery, running: &[SourceStatus]) -> Result<Asked<'a>, Refusal> {
    let refuse = |status, message: String| Err(Refusal::new(status, message));
    let name = match (&query.source, &query.target, &query.template) {
        (Some(name), None, None) => name,
        (None, Some(target), Some(template)) => {
            return Ok(Asked::Target { template, target });
        }
        (None, Some(_), None) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "`?target=` needs `&template=NAME`, a template of the config (`templates:`) \
                 that says how to probe it"
                    .to_owned(),
            )
        }
        (None, None, Some(_)) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "`?template=` needs `&target=HOST:PORT`, the address to probe with it".to_owned(),
            )
        }
        (Some(_), _, _) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "`?source=` names a configured source and takes neither `target` nor \
                 `template`: ask for one or the other"
                    .to_owned(),
            )
        }
        (None, None, None) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "`/probe` needs `?source=NAME`, the name of a source this exporter runs \
                 (`/sd` lists them), or `?template=NAME&target=HOST:PORT`"
                    .to_owned(),
            )
        }
    };
    match running.iter().find(|s| s.name == *name) {
        Some(_) => Ok(Asked::Source(name)),
        None => refuse(
            StatusCode::NOT_FOUND,
            format!(
                "no source named {:?} runs here: `/sd` lists the {} this replica runs",
                crate::secrets::scrub(&name.chars().take(200).collect::<String>()),
                running.len()
            ),
        ),
    }
}

/// Longest a first request waits for a new target's first results: a second at most when the
/// scraper says nothing of its timeout.
pub const DEFAULT_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// How long a request for a warming target may wait for its first results: half the scrape
/// timeout Prometheus sends in `X-Prometheus-Scrape-Timeout-Seconds` (the rest is for the
/// answer to travel), at most 10s; [`DEFAULT_WAIT`] without it.
pub fn wait_bound(scrape_timeout: Option<&str>) -> std::time::Duration {
    use std::time::Duration;
    match scrape_timeout.and_then(|t| t.trim().parse::<f64>().ok()) {
        Some(t) if t.is_finite() && t > 0.0 => Duration::from_secs_f64((t / 2.0).min(10.0)),
        _ => DEFAULT_WAIT,
    }
}

/// The status and message of a refused lease: 404 for an unknown template, 400 for a target
/// that is no address, 403 for one the template does not allow, 503 while the lease table is
/// full, 400 when the template made nothing of the target.
pub fn lease_refusal(e: &crate::runtime::targets::LeaseError) -> Refusal {
    use crate::config_core::template::Refused;
    use crate::runtime::targets::LeaseError;
    let status = match e {
        LeaseError::UnknownTemplate { .. } => StatusCode::NOT_FOUND,
        LeaseError::Target(Refused::NotAddress(_)) | LeaseError::Start(_) => {
            StatusCode::BAD_REQUEST
        }
        LeaseError::Target(Refused::NotAllowed(_)) => StatusCode::FORBIDDEN,
        LeaseError::Full(_) => StatusCode::SERVICE_UNAVAILABLE,
    };
    Refusal::new(status, e.to_string())
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
            template: None,
        }
    }

    #[test]
    fn a_probe_names_a_running_source_or_is_told_what_to_ask() {
        let running = running();
        let cache = query(Some("cache"), None);
        assert_eq!(chosen(&cache, &running), Ok(Asked::Source("cache")));
        let missing = chosen(&query(None, None), &running).unwrap_err();
        assert_eq!(missing.status.as_u16(), 400);
        assert!(
            missing.message.contains("?source=NAME"),
            "{}",
            missing.message
        );
        let unknown = chosen(&query(Some("nope"), None), &running).unwrap_err();
        assert_eq!(unknown.status.as_u16(), 404);
        assert!(
            unknown.message.contains("the 2 this replica runs"),
            "{}",
            unknown.message
        );
        let bare = query(None, Some("10.0.0.5:5432"));
        let target = chosen(&bare, &running).unwrap_err();
        assert_eq!(target.status.as_u16(), 400);
        assert!(
            target.message.contains("&template=NAME"),
            "{}",
            target.message
        );
        let leased = ProbeQuery {
            template: Some("fleet".into()),
            ..query(None, Some("10.0.0.5:5432"))
        };
        assert_eq!(
            chosen(&leased, &running),
            Ok(Asked::Target {
                template: "fleet",
                target: "10.0.0.5:5432"
            })
        );
        let both = ProbeQuery {
            template: Some("fleet".into()),
            ..query(Some("cache"), Some("10.0.0.5:5432"))
        };
        assert_eq!(chosen(&both, &running).unwrap_err().status.as_u16(), 400);
        // A hostile name is cut short in the message.
        let long = "x".repeat(10_000);
        let refused = chosen(&query(Some(&long), None), &running).unwrap_err();
        assert!(refused.message.len() < 400, "{}", refused.message.len());
    }

    #[test]
    fn a_first_scrape_waits_half_the_scrape_timeout_at_most_ten_seconds() {
        use std::time::Duration;
        assert_eq!(wait_bound(Some("10")), Duration::from_secs(5));
        assert_eq!(wait_bound(Some("0.5")), Duration::from_millis(250));
        assert_eq!(wait_bound(Some("120")), Duration::from_secs(10));
        for nothing in [
            None,
            Some(""),
            Some("soon"),
            Some("-1"),
            Some("NaN"),
            Some("inf"),
        ] {
            assert_eq!(wait_bound(nothing), DEFAULT_WAIT, "{nothing:?}");
        }
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
