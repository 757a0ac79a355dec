//! The probes of an S3 source: the health probe (the bucket answers `HeadBucket`) and the
//! built-in checks, which share the source's client. Each check's own work is in its file.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::OnceCell;
use tokio::time::Instant;

use super::client::{build_client, S3Client, S3Source};
use super::{S3Check, S3Config};
use crate::config_core::{CheckConfig, CheckPlan};
use crate::series::run_error::{Reason, RunError};
use crate::series::sample::Output;
use crate::sources::{RunFuture, Runnable, Source};

impl Source<S3Check> for S3Source {
    fn health(&self) -> Arc<dyn Runnable> {
        Arc::new(Probes {
            source: self.name.clone(),
            config: self.config.clone(),
            client: self.client.clone(),
            which: None,
            sweep_after: Duration::ZERO,
        })
    }

    fn check(&self, check: &CheckConfig<S3Check>, plan: &CheckPlan) -> Arc<dyn Runnable> {
        let which = check.spec.clone();
        Arc::new(Probes {
            source: self.name.clone(),
            config: self.config.clone(),
            client: self.client.clone(),
            which: Some(which),
            // Three intervals: a run still in flight (PUT done, DELETE to come) is never swept.
            sweep_after: plan.interval.saturating_mul(3),
        })
    }
}

/// The health probe (`which: None`) and the built-in checks of one source.
pub(super) struct Probes {
    pub(super) source: String,
    pub(super) config: S3Config,
    pub(super) client: Arc<OnceCell<S3Client>>,
    pub(super) which: Option<S3Check>,
    /// Canary objects of this source older than this are leftovers of cancelled runs.
    pub(super) sweep_after: Duration,
}

impl Runnable for Probes {
    fn run(&self, _deadline: Instant) -> RunFuture<'_> {
        Box::pin(async move {
            // The TLS files were checked when the config loaded; one removed since fails the
            // probe until it is back, without caching a client that cannot connect.
            let client = self
                .client
                .get_or_try_init(|| async { build_client(&self.config) })
                .await
                .map_err(|why| RunError::new(Reason::Connect, why))?;
            match &self.which {
                None => {
                    client.head_bucket().await?;
                    Ok(Output::default())
                }
                Some(S3Check::Canary) => self.canary(client).await,
                Some(S3Check::Prefix { index }) => self.prefix_stats(client, *index).await,
            }
        })
    }
}
