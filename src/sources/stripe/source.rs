//! A Stripe source: one API client shared by its checks, and its health probe.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::api::Api;
use super::endpoints::{EndpointsProbe, StoppedEndpoints};
use super::event_window::EventWindow;
use super::events::EventsProbe;
use super::listing::Acknowledged;
use super::{StripeCheck, StripeConfig};
use crate::config_core::{CheckConfig, CheckPlan};
use crate::series::sample::Output;
use crate::sources::{Connect, ConnectError};
use crate::sources::{RunFuture, Runnable, Source};

/// A Stripe source: one client shared by its checks, so a rate limit holds them all back.
pub struct StripeSource {
    pub(super) name: String,
    pub(super) api: Arc<Api>,
    pub(super) lookback: Duration,
    pub(super) stuck_after: Duration,
    pub(super) retry_horizon: Duration,
    pub(super) acknowledged: Acknowledged,
    pub(super) max_pages: u32,
    /// What the endpoints checks saw stop, read by the events checks.
    pub(super) stopped: Arc<StoppedEndpoints>,
}

impl Connect<StripeConfig> for StripeSource {
    fn connect(c: &StripeConfig, name: &str) -> Result<Self, ConnectError> {
        crate::secrets::register(&c.api_key);
        Ok(StripeSource {
            name: name.to_owned(),
            api: Arc::new(Api::new(&c.api_base, &c.api_key, &c.stripe_version)?),
            lookback: c.lookback.0,
            stuck_after: c.stuck_after.0,
            retry_horizon: c.retry_horizon.0,
            acknowledged: Acknowledged {
                before: c
                    .acknowledged_before
                    .as_deref()
                    .and_then(|t| humantime::parse_rfc3339_weak(t).ok())
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map(|d| d.as_secs() as i64),
                events: c.acknowledged_events.iter().cloned().collect(),
            },
            max_pages: c.max_pages,
            stopped: Arc::default(),
        })
    }
}

impl Source<StripeCheck> for StripeSource {
    fn health(&self) -> Arc<dyn Runnable> {
        Arc::new(HealthProbe {
            api: self.api.clone(),
        })
    }

    fn check(&self, check: &CheckConfig<StripeCheck>, _plan: &CheckPlan) -> Arc<dyn Runnable> {
        match &check.spec {
            StripeCheck::WebhookEndpoints(account) => Arc::new(EndpointsProbe {
                source: self.name.clone(),
                account: account.clone(),
                api: self.api.clone(),
                max_pages: self.max_pages,
                stopped: self.stopped.clone(),
            }),
            StripeCheck::Events(account) => Arc::new(EventsProbe {
                source: self.name.clone(),
                account: account.clone(),
                api: self.api.clone(),
                lookback: self.lookback,
                stuck_after: self.stuck_after,
                retry_horizon: self.retry_horizon,
                acknowledged: self.acknowledged.clone(),
                stopped: self.stopped.clone(),
                max_pages: self.max_pages,
                log: Mutex::new(EventWindow::default()),
            }),
        }
    }
}

struct HealthProbe {
    api: Arc<Api>,
}

impl Runnable for HealthProbe {
    fn run(&self, deadline: Instant) -> RunFuture<'_> {
        Box::pin(async move {
            // Reachability and auth with the one permission every configuration needs
            // (Events: Read), so a key without Webhook Endpoints access is not shown down.
            self.api
                .get("v1/events", &[("limit", "1".to_owned())], None, deadline)
                .await?;
            Ok(Output::default())
        })
    }
}
