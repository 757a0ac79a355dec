//! Reading certificates beside the health probes: [`Watch`] wraps a source's health probe and
//! reads its TLS endpoints' chains when due, recording each expiry in the store.

use crate::sync::MutexExt;
use std::sync::{Arc, Mutex};

use tokio::time::Instant;

use crate::runtime::results::Results;
use crate::sources::certificates::{read, Endpoints, TlsEndpoint, REFRESH, RETRY};
use crate::sources::{RunFuture, Runnable};

/// A source's health probe that also reads its endpoints' certificates when due (every
/// [`REFRESH`], every [`RETRY`] after a failed read). The read runs in a task of its own
/// within the health probe's deadline, so it never lengthens the probe (whose duration is the
/// source's published latency); it is cancelled with the watch.
pub struct Watch {
    inner: Arc<dyn Runnable>,
    endpoints: Endpoints,
    source: String,
    store: Arc<Results>,
    next: Arc<Mutex<Option<Instant>>>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Watch {
    /// `health`, with the certificates of `endpoints` read beside it and recorded in `store`
    /// under `source`. What was recorded for `source` before is forgotten: its endpoints may
    /// have changed.
    pub fn wrap(
        health: Arc<dyn Runnable>,
        endpoints: Endpoints,
        source: &str,
        store: Arc<Results>,
    ) -> Arc<dyn Runnable> {
        store.forget_certificates(source);
        if matches!(endpoints, Endpoints::None) {
            return health;
        }
        Arc::new(Watch {
            inner: health,
            endpoints,
            source: source.to_owned(),
            store,
            next: Arc::default(),
            task: Mutex::default(),
        })
    }

    fn refresh_if_due(&self, deadline: Instant) {
        let now = Instant::now();
        {
            let mut next = self.next.locked();
            if next.is_some_and(|t| t > now) {
                return;
            }
            // Claimed now: a read cut short by its deadline is retried like a failed one.
            *next = Some(now + RETRY);
        }
        let (endpoints, source, store, next) = (
            self.endpoints.clone(),
            self.source.clone(),
            self.store.clone(),
            self.next.clone(),
        );
        let task = tokio::spawn(async move {
            let all_read = tokio::time::timeout_at(deadline, refresh(&endpoints, &source, &store))
                .await
                .unwrap_or(false);
            if all_read {
                *next.locked() = Some(Instant::now() + REFRESH);
            }
        });
        if let Some(old) = self.task.locked().replace(task) {
            old.abort();
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if let Some(task) = self.task.locked().take() {
            task.abort();
        }
    }
}

impl Runnable for Watch {
    fn run(&self, deadline: Instant) -> RunFuture<'_> {
        self.refresh_if_due(deadline);
        self.inner.run(deadline)
    }
}

/// Reads every endpoint's chain at once and records what it finds; true when every read
/// succeeded. A failed read keeps the last expiry read (until
/// [`crate::sources::certificates::STALE_AFTER`]): the source's health probe says why the server
/// cannot be reached.
async fn refresh(endpoints: &Endpoints, source: &str, store: &Results) -> bool {
    let list = match endpoints.list().await {
        Ok(list) => list,
        Err(e) => {
            tracing::debug!(source, error = %e, "the TLS endpoints could not be listed");
            return false;
        }
    };
    let reads = futures_util::future::join_all(list.iter().map(read)).await;
    let labels: Vec<String> = list.iter().map(TlsEndpoint::label).collect();
    let mut all_read = true;
    for (label, result) in labels.iter().zip(reads) {
        match result {
            Ok(expiry) => store.set_certificate(source, label, expiry.map(|t| t as f64)),
            Err(e) => {
                all_read = false;
                tracing::debug!(source, endpoint = %label, error = %e, "certificate not read");
            }
        }
    }
    store.keep_certificates(source, &labels);
    all_read
}
