//! Heartbeat checks: SQL returning one row per worker (`worker`, `last_seen` and the
//! attribute columns), tracked across runs by [`Tracker`].

use tokio::time::Instant;

use super::decode::{cell_number, cell_text};
use super::session::{stream_rows, CheckPool};
use crate::sources::heartbeat::{Beat, HeartbeatCommon, NewestBeats, Tracker};
use crate::sources::{RunFuture, Runnable};

pub(super) struct HeartbeatProbe {
    pub(super) source: String,
    pub(super) pool: CheckPool,
    pub(super) hb: HeartbeatCommon,
    pub(super) sql: String,
    pub(super) tracker: Tracker,
}

impl Runnable for HeartbeatProbe {
    fn run(&self, deadline: Instant) -> RunFuture<'_> {
        Box::pin(async move {
            let mut beats = NewestBeats::new(self.hb.max_workers);
            stream_rows(&self.pool, &self.sql, deadline, |row| {
                let worker = cell_text(row, "worker")?;
                match cell_number(row, "last_seen") {
                    Ok(Some(at)) => {
                        let mut attributes = std::collections::BTreeMap::new();
                        for a in &self.hb.attributes {
                            attributes.insert(a.clone(), cell_text(row, a)?);
                        }
                        beats.push(Beat {
                            worker,
                            at,
                            attributes,
                        });
                    }
                    // A NULL or unreadable last_seen is a malformed beat, counted and logged.
                    Ok(None) | Err(_) => beats.malformed(worker),
                }
                Ok(true)
            })
            .await?;
            Ok(self.tracker.update_newest(&self.source, &self.hb, beats))
        })
    }
}
