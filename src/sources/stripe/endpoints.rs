//! The webhook endpoints check of one account: each endpoint enabled or not, and how many
//! there are by status, so that an endpoint deleted (not just disabled) shows as a drop.
//! It also tells the events check when an endpoint stops receiving ([`StoppedEndpoints`]):
//! Stripe does not retry an event to an endpoint disabled or deleted during its retries.

use crate::sync::MutexExt;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::Deserialize;
use tokio::time::Instant;

use super::api::{parse_items, Api, ListRequest};
use super::metrics::{account_label, ENDPOINTS, ENDPOINT_ENABLED, TRUNCATED};
use crate::series::run_error::RunError;
use crate::series::sample::Output;
use crate::sources::{RunFuture, Runnable};

/// The fields of a webhook endpoint this check reads.
#[derive(Debug, Deserialize)]
struct Endpoint {
    id: String,
    url: String,
    status: String,
}

/// The statuses Stripe gives an endpoint; both are always exported, so a count falling to
/// 0 is a sample, not an absence.
const STATUSES: [&str; 2] = ["enabled", "disabled"];

/// Per account, the endpoints seen enabled and when last: the events check gives up on an
/// undelivered event created before an endpoint that has since been disabled or deleted was
/// last seen enabled. Nothing is known across a restart: the retry horizon still applies.
#[derive(Debug, Default)]
pub struct StoppedEndpoints {
    /// Account label, then endpoint id, to the last time it was seen enabled.
    seen: Mutex<HashMap<String, HashMap<String, i64>>>,
    /// Account label to the cutoff: the latest of those times among endpoints that stopped.
    cutoff: Mutex<HashMap<String, i64>>,
}

impl StoppedEndpoints {
    /// Records one listing of `account`'s endpoints at `now` as (id, enabled). An endpoint
    /// missing from a listing read whole was deleted; one missing from a cut listing may
    /// only be unread.
    pub fn observe(&self, account: &str, now: i64, endpoints: &[(&str, bool)], whole: bool) {
        let mut seen = self.seen.locked();
        let account_seen = seen.entry(account.to_owned()).or_default();
        for (id, enabled) in endpoints {
            if *enabled {
                account_seen.insert((*id).to_owned(), now);
            }
        }
        let stopped = |id: &str| {
            endpoints
                .iter()
                .find(|(e, _)| *e == id)
                .map_or(whole, |(_, enabled)| !enabled)
        };
        // Once older than Stripe's retention, no event it could concern is still listed.
        account_seen.retain(|id, at| !stopped(id) || *at >= now - super::api::RETENTION);
        let cutoff = account_seen
            .iter()
            .filter(|(id, _)| stopped(id))
            .map(|(_, at)| *at)
            .max();
        let mut cutoffs = self.cutoff.locked();
        match cutoff {
            Some(c) => cutoffs.insert(account.to_owned(), c),
            None => cutoffs.remove(account),
        };
    }

    /// Undelivered events of `account` created at or before this time will not be retried
    /// to every endpoint again.
    pub fn cutoff(&self, account: &str) -> Option<i64> {
        self.cutoff.locked().get(account).copied()
    }
}

/// The webhook endpoints check of one account.
pub struct EndpointsProbe {
    /// Source name.
    pub source: String,
    /// The connected account, if any.
    pub account: Option<String>,
    /// The source's client.
    pub api: Arc<Api>,
    /// Page cap.
    pub max_pages: u32,
    /// Shared with the events checks of the source.
    pub stopped: Arc<StoppedEndpoints>,
}

impl EndpointsProbe {
    async fn run_once(&self, deadline: Instant) -> Result<Output, RunError> {
        let listing = self
            .api
            .list(
                &ListRequest {
                    path: "v1/webhook_endpoints",
                    query: Vec::new(),
                    account: self.account.as_deref(),
                    starting_after: None,
                    ending_before: None,
                    max_pages: self.max_pages,
                },
                deadline,
            )
            .await?;
        let endpoints: Vec<Endpoint> =
            parse_items("v1/webhook_endpoints", "a webhook endpoint", listing.items)?;
        let account = account_label(self.account.as_deref());
        let mut out = Output::default();
        let mut counts = [0u32; STATUSES.len()];
        for e in &endpoints {
            let enabled = e.status == "enabled";
            counts[usize::from(!enabled)] += 1;
            out.add(
                &ENDPOINT_ENABLED,
                &[&self.source, account, &e.id, &host(&e.url)],
                f64::from(u8::from(enabled)),
            );
        }
        let now = crate::series::sample::unix_now_secs();
        let seen: Vec<(&str, bool)> = endpoints
            .iter()
            .map(|e| (e.id.as_str(), e.status == "enabled"))
            .collect();
        self.stopped
            .observe(account, now, &seen, !listing.truncated);
        for (status, n) in STATUSES.iter().zip(counts) {
            out.add(&ENDPOINTS, &[&self.source, account, status], f64::from(n));
        }
        out.add(
            &TRUNCATED,
            &[&self.source, account, "webhook_endpoints"],
            f64::from(u8::from(listing.truncated)),
        );
        Ok(out)
    }
}

/// The host of a webhook URL only: paths and query strings often carry tokens.
fn host(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_default()
}

impl Runnable for EndpointsProbe {
    fn run(&self, deadline: Instant) -> RunFuture<'_> {
        Box::pin(self.run_once(deadline))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::series::run_error::Reason;

    #[test]
    fn an_endpoint_seen_enabled_then_disabled_or_deleted_sets_the_cutoff() {
        let s = StoppedEndpoints::default();
        // Disabled from the first look: when it stopped is unknown, so no cutoff.
        s.observe("", 100, &[("we_a", true), ("we_old", false)], true);
        assert_eq!(s.cutoff(""), None);
        s.observe(
            "",
            200,
            &[("we_a", true), ("we_b", true), ("we_old", false)],
            true,
        );
        // we_a is disabled: events created up to its last enabled look are given up.
        s.observe("", 300, &[("we_a", false), ("we_b", true)], true);
        assert_eq!(s.cutoff(""), Some(200));
        assert_eq!(s.cutoff("acct_1"), None, "per account");
        // we_b missing from a cut listing may only be unread; from a whole one, deleted.
        s.observe("", 400, &[("we_a", false)], false);
        assert_eq!(s.cutoff(""), Some(200));
        s.observe("", 500, &[("we_a", false)], true);
        assert_eq!(s.cutoff(""), Some(300));
        // Both back: nothing has stopped.
        s.observe("", 600, &[("we_a", true), ("we_b", true)], true);
        assert_eq!(s.cutoff(""), None);
    }

    #[test]
    fn only_the_host_of_a_webhook_url_is_kept() {
        assert_eq!(
            host("https://api.example.com/stripe/hook?token=s3cr3t"),
            "api.example.com"
        );
        assert_eq!(host("not a url"), "");
    }

    #[test]
    fn an_item_without_a_status_is_a_decode_failure() {
        let e = parse_items::<Endpoint>(
            "v1/webhook_endpoints",
            "a webhook endpoint",
            vec![serde_json::json!({"id": "we_1", "url": "https://x"})],
        )
        .err()
        .unwrap();
        assert_eq!(e.reason(), Reason::Decode);
        assert!(e.to_string().contains("status"), "{e}");
    }
}
