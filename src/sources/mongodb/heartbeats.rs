//! Heartbeat checks: one document per worker, its time field read as a beat and tracked
//! across runs by [`Tracker`].

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use mongodb::bson::Document;
use tokio::time::Instant;

use super::client::{classify, Shared};
use super::decode::{beat_time, text};
use super::filters::to_document;
use super::MongodbBeatSource;
use crate::series::run_error::{Reason, RunError};
use crate::sources::heartbeat::{Beat, HeartbeatCommon, NewestBeats, Tracker};
use crate::sources::{remaining, RunFuture, Runnable};

/// A heartbeat check: one document per worker.
pub(super) struct HeartbeatProbe {
    pub(super) source: String,
    pub(super) shared: Arc<Shared>,
    pub(super) hb: HeartbeatCommon,
    pub(super) from: MongodbBeatSource,
    pub(super) tracker: Tracker,
}

impl Runnable for HeartbeatProbe {
    fn run(&self, deadline: Instant) -> RunFuture<'_> {
        Box::pin(async move {
            let client = self.shared.client().await?;
            let filter = match &self.from.filter {
                Some(f) => to_document(f, SystemTime::now())
                    .map_err(|e| RunError::new(Reason::Query, e))?,
                None => Document::new(),
            };
            let mut cursor = client
                .database(&self.shared.database)
                .collection::<Document>(&self.from.collection)
                .find(filter)
                .max_time(remaining(deadline).max(Duration::from_millis(1)))
                .await
                .map_err(|e| classify(&e))?;
            let mut beats = NewestBeats::new(self.hb.max_workers);
            while cursor.advance().await.map_err(|e| classify(&e))? {
                let doc = cursor.deserialize_current().map_err(|e| classify(&e))?;
                let worker = text(doc.get(&self.from.worker_field));
                match beat_time(doc.get(&self.from.time_field)) {
                    Some(at) => {
                        let attributes = self
                            .hb
                            .attributes
                            .iter()
                            .map(|a| (a.clone(), text(doc.get(a))))
                            .collect();
                        beats.push(Beat {
                            worker,
                            at,
                            attributes,
                        });
                    }
                    None => beats.malformed(worker),
                }
            }
            Ok(self.tracker.update_newest(&self.source, &self.hb, beats))
        })
    }
}
