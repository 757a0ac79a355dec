//! Query checks: `count`, `estimated_count` and `aggregate`, bounded by `maxTimeMS`; output
//! documents become samples through the check's [`RowShape`].

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use mongodb::bson::Document;
use tokio::time::Instant;

use super::client::{classify, Shared};
use super::decode::DocRow;
use super::filters::to_document;
use super::MongoQuery;
use crate::series::run_error::{Reason, RunError};
use crate::series::sample::Output;
use crate::sources::rows::RowShape;
use crate::sources::{remaining, RunFuture, Runnable};

/// A `count`, `estimated_count` or `aggregate` check.
pub(super) struct CheckProbe {
    pub(super) shared: Arc<Shared>,
    pub(super) metric: String,
    pub(super) help: String,
    pub(super) shape: RowShape,
    pub(super) spec: MongoQuery,
    /// The check's series cap: documents past it are counted, never kept.
    pub(super) max_series: usize,
}

impl Runnable for CheckProbe {
    fn run(&self, deadline: Instant) -> RunFuture<'_> {
        Box::pin(async move {
            let client = self.shared.client().await?;
            let db = client.database(&self.shared.database);
            // The server gives up at the same deadline as the scheduler.
            let max_time = remaining(deadline).max(Duration::from_millis(1));
            let now = SystemTime::now();
            let mut out = Output::default();
            let s = &self.spec;
            if let Some(c) = &s.count {
                let filter = match &c.filter {
                    Some(f) => to_document(f, now).map_err(|e| RunError::new(Reason::Query, e))?,
                    None => Document::new(),
                };
                let n = db
                    .collection::<Document>(&c.collection)
                    .count_documents(filter)
                    .max_time(max_time)
                    .await
                    .map_err(|e| classify(&e))?;
                out.gauge(&self.metric, &self.help, Vec::new(), n as f64);
            } else if let Some(c) = &s.estimated_count {
                let n = db
                    .collection::<Document>(&c.collection)
                    .estimated_document_count()
                    .max_time(max_time)
                    .await
                    .map_err(|e| classify(&e))?;
                out.gauge(&self.metric, &self.help, Vec::new(), n as f64);
            } else if let Some(a) = &s.aggregate {
                let pipeline = a
                    .pipeline
                    .iter()
                    .map(|stage| to_document(stage, now))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| RunError::new(Reason::Query, e))?;
                let mut cursor = db
                    .collection::<Document>(&a.collection)
                    .aggregate(pipeline)
                    .max_time(max_time)
                    .await
                    .map_err(|e| classify(&e))?;
                // Documents become samples as the cursor yields them; past the series cap
                // they are only counted, so a result is never held whole.
                let mut sink = self.shape.sink(&self.metric, &self.help, self.max_series);
                let mut rest = 0u64;
                while cursor.advance().await.map_err(|e| classify(&e))? {
                    if sink.full() {
                        rest += 1;
                        continue;
                    }
                    let doc = cursor.deserialize_current().map_err(|e| classify(&e))?;
                    sink.push(&DocRow(&doc))?;
                }
                sink.count_rest(rest);
                return Ok(sink.finish());
            }
            Ok(out)
        })
    }
}
