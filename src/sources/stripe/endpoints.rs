//! The webhook endpoints check of one account: each endpoint enabled or not, and how many
//! there are by status, so that an endpoint deleted (not just disabled) shows as a drop.

use std::sync::Arc;

use serde::Deserialize;
use tokio::time::Instant;

use super::api::{parse_items, Api, ListRequest};
use super::{account_label, ENDPOINTS, ENDPOINT_ENABLED, TRUNCATED};
use crate::error::ProbeError;
use crate::sample::Output;
use crate::sources::{Probe, ProbeFuture};

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
}

impl EndpointsProbe {
    async fn run_once(&self, deadline: Instant) -> Result<Output, ProbeError> {
        let listing = self
            .api
            .list(
                &ListRequest {
                    path: "v1/webhook_endpoints",
                    query: Vec::new(),
                    account: self.account.as_deref(),
                    starting_after: None,
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

impl Probe for EndpointsProbe {
    fn run(&self, deadline: Instant) -> ProbeFuture<'_> {
        Box::pin(self.run_once(deadline))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Reason;

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
