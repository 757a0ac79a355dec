//! SQL checks: each row becomes a sample through the check's [`RowShape`].

use tokio::time::Instant;

use super::decode::check_columns;
use super::session::{stream_rows, CheckPool};
use crate::sources::rows::RowShape;
use crate::sources::{RunFuture, Runnable};

pub(super) struct SqlProbe {
    pub(super) pool: CheckPool,
    pub(super) metric: String,
    pub(super) help: String,
    pub(super) shape: RowShape,
    pub(super) sql: String,
    /// The check's series cap: rows past it are counted, never kept.
    pub(super) max_series: usize,
}

impl Runnable for SqlProbe {
    fn run(&self, deadline: Instant) -> RunFuture<'_> {
        Box::pin(async move {
            let mut sink = self.shape.sink(&self.metric, &self.help, self.max_series);
            let mut first = true;
            let rest = stream_rows(&self.pool, &self.sql, deadline, |row| {
                if std::mem::take(&mut first) {
                    check_columns(row, &self.shape)?;
                }
                sink.push(row)
            })
            .await?;
            sink.count_rest(rest);
            Ok(sink.finish())
        })
    }
}
