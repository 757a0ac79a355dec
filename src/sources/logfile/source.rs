//! A log-file source: the tail it keeps between runs, its health probe (the file opens as a
//! regular file) and its tail check.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio::time::Instant;

use super::count::Counts;
use super::file::{blocking, open_regular};
use super::tail::{Tail, TailProbe};
use super::{LogfileConfig, TailCheck};
use crate::config_core::{CheckConfig, CheckPlan};
use crate::series::sample::Output;
use crate::sources::{Connect, ConnectError};
use crate::sources::{RunFuture, Runnable, Source};

/// A log-file source.
pub struct LogfileSource {
    name: String,
    config: Arc<LogfileConfig>,
    tail: Arc<Mutex<Tail>>,
}

impl Connect<LogfileConfig> for LogfileSource {
    fn connect(c: &LogfileConfig, name: &str) -> Result<Self, ConnectError> {
        let tail = Tail {
            file: None,
            counts: Counts {
                counters: vec![BTreeMap::new(); c.counters.len()],
                histograms: vec![BTreeMap::new(); c.histograms.len()],
                ..Counts::default()
            },
        };
        Ok(LogfileSource {
            name: name.to_owned(),
            config: Arc::new(c.clone()),
            tail: Arc::new(Mutex::new(tail)),
        })
    }
}

impl Source<TailCheck> for LogfileSource {
    fn health(&self) -> Arc<dyn Runnable> {
        Arc::new(HealthProbe {
            path: self.config.path.clone(),
        })
    }

    fn check(&self, _check: &CheckConfig<TailCheck>, _plan: &CheckPlan) -> Arc<dyn Runnable> {
        Arc::new(TailProbe {
            source: self.name.clone(),
            config: self.config.clone(),
            tail: self.tail.clone(),
        })
    }
}

struct HealthProbe {
    path: PathBuf,
}

impl Runnable for HealthProbe {
    fn run(&self, deadline: Instant) -> RunFuture<'_> {
        Box::pin(async move {
            // Readable is what matters: a file we may not open is as good as missing.
            let path = self.path.clone();
            blocking(&self.path, deadline, move || open_regular(&path).map(drop)).await?;
            Ok(Output::default())
        })
    }
}
