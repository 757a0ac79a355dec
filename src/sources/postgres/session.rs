//! The read-only transaction every check runs in: connecting within the check's budget,
//! `statement_timeout` from its deadline, rows streamed and never held whole, and sqlx errors
//! classified into bounded reasons.

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::TryStreamExt;
use sqlx::postgres::{PgConnection, PgPool, PgRow};
use tokio::time::Instant;

use crate::series::run_error::{Reason, RunError};
use crate::sources::remaining;

/// Classifies a sqlx error into a bounded reason; the message is scrubbed by [`RunError`].
pub(super) fn classify(err: sqlx::Error) -> RunError {
    let reason = match &err {
        sqlx::Error::Database(db) => match db.code().as_deref() {
            Some("57014") => Reason::Timeout,
            Some(c) if c.starts_with("28") || c == "42501" => Reason::Auth,
            Some("3D000") => Reason::NotFound,
            // Cannot connect now, too many connections, or the server shutting down.
            Some("57P01" | "57P02" | "57P03" | "53300") => Reason::Connect,
            _ => Reason::Query,
        },
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed => Reason::Connect,
        sqlx::Error::Configuration(_) => Reason::Connect,
        sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::Decode(_)
        | sqlx::Error::ColumnNotFound(_) => Reason::Decode,
        _ => Reason::Query,
    };
    let message = match &err {
        sqlx::Error::PoolTimedOut => "no connection available in time: the server is unreachable or every pooled connection is busy".to_owned(),
        other => other.to_string(),
    };
    RunError::new(reason, message)
}

/// A source's check pool, with the number of its connections that are running a check: what
/// tells a check that waits for a connection whether it queues behind work or waits, like the
/// checks before it, on a server that does not accept connections.
#[derive(Debug, Clone)]
pub(super) struct CheckPool {
    pool: PgPool,
    working: Arc<AtomicUsize>,
    /// A connection is being opened in the background ([`CheckPool::open_in_background`]).
    opening: Arc<AtomicBool>,
}

impl CheckPool {
    /// `pool`, none of its connections working yet.
    pub(super) fn new(pool: PgPool) -> CheckPool {
        CheckPool {
            pool,
            working: Arc::new(AtomicUsize::new(0)),
            opening: Arc::new(AtomicBool::new(false)),
        }
    }

    fn working(&self) -> usize {
        self.working.load(Ordering::Acquire)
    }

    /// Opens a connection in a task of its own, one at a time, left idle in the pool for the
    /// next run. sqlx opens a connection inside the acquiring future and drops it half-open
    /// when that future is dropped: a server slower to accept than the connect budget (a far
    /// region, a TLS handshake on a loaded host) would otherwise never be connected, every
    /// attempt cut at the budget. The acquire is bounded by the pool's acquire timeout.
    fn open_in_background(&self) {
        if self.opening.swap(true, Ordering::AcqRel) {
            return;
        }
        let (pool, opening) = (self.pool.clone(), self.opening.clone());
        tokio::spawn(async move {
            // Dropped at once: back to the pool, idle.
            let _ = pool.acquire().await;
            opening.store(false, Ordering::Release);
        });
    }
}

impl Deref for CheckPool {
    type Target = PgPool;
    fn deref(&self) -> &PgPool {
        &self.pool
    }
}

/// A check's read-only transaction, counted as working until it ends (rolled back or dropped).
pub(super) struct Tx {
    tx: sqlx::Transaction<'static, sqlx::Postgres>,
    _counted: Counted,
}

impl Tx {
    /// Ends the transaction; nothing was written. The count ends once the rollback has.
    pub(super) async fn rollback(self) -> Result<(), sqlx::Error> {
        let Tx { tx, _counted } = self;
        tx.rollback().await
    }
}

/// One working connection of a [`CheckPool`], counted until dropped.
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Deref for Tx {
    type Target = PgConnection;
    fn deref(&self) -> &PgConnection {
        &self.tx
    }
}

impl DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut PgConnection {
        &mut self.tx
    }
}

/// Starts the read-only transaction a check runs in. Waiting for a busy pool's connection to
/// come back is queueing, bounded by the check's own deadline; waiting for a connection to be
/// opened is connecting, bounded by [`connect_budget`]: sqlx retries a refused connection
/// until its acquire timeout, which would make a wrong port or a stopped server look like a
/// slow query (`timeout`) instead of what it is (`connect`). A full pool whose connections
/// are all being opened (no check is working on one) is waited on as connecting: the slot
/// this check gets is one whose open failed, and it would then open one itself.
async fn begin(pool: &CheckPool, deadline: Instant) -> Result<Tx, RunError> {
    let full = pool.num_idle() == 0 && pool.size() >= pool.options().get_max_connections();
    let queueing = full && pool.working() > 0;
    let mut begin = Box::pin(pool.begin_with("BEGIN READ ONLY"));
    let tx = if queueing {
        begin.await.map_err(classify)?
    } else {
        let budget = connect_budget(deadline);
        match tokio::time::timeout(budget, &mut begin).await {
            Ok(r) => r.map_err(classify)?,
            // A check that got a connection meanwhile: the server accepts them, and this
            // one queues behind its work.
            Err(_) if full && pool.working() > 0 => begin.await.map_err(classify)?,
            Err(_) => {
                pool.open_in_background();
                // The pool keeps retrying without saying why; one connection of its own,
                // within what is left, tells the SRE the cause (refused, auth, TLS, DNS).
                let cause = why_no_connection(pool, deadline).await;
                return Err(RunError::new(
                    Reason::Connect,
                    format!(
                        "no connection to the server within {} ms: {cause}",
                        budget.as_millis()
                    ),
                ));
            }
        }
    };
    pool.working.fetch_add(1, Ordering::AcqRel);
    Ok(Tx {
        tx,
        _counted: Counted(pool.working.clone()),
    })
}

/// Why the pool opened no connection: the error of one connection opened directly, or that
/// the server did not answer within the check's deadline.
async fn why_no_connection(pool: &CheckPool, deadline: Instant) -> String {
    use sqlx::ConnectOptions;
    let options = pool.connect_options();
    match tokio::time::timeout(remaining(deadline), options.connect()).await {
        Ok(Err(e)) => crate::secrets::scrub(classify(e).message()).into_owned(),
        Ok(Ok(conn)) => {
            drop(conn);
            "the server accepts connections again, but none came within the budget".to_owned()
        }
        Err(_) => "the server does not answer (a firewall dropping packets, or it is overloaded)"
            .to_owned(),
    }
}

/// How long a check may spend opening a connection: a third of what is left of its
/// deadline, from half a second to five.
fn connect_budget(deadline: Instant) -> Duration {
    (remaining(deadline) / 3).clamp(Duration::from_millis(500), Duration::from_secs(5))
}

/// Statement timeout to give the server: what is left of the deadline, minus a margin so the
/// server's cancellation (reason `timeout`, with a clear message) normally wins the race.
pub(super) fn server_budget(deadline: Instant) -> Duration {
    let left = remaining(deadline);
    let margin = Duration::from_millis(50).min(left / 2);
    (left - margin).max(Duration::from_millis(1))
}

/// Runs `sql` in a READ ONLY transaction whose `statement_timeout` is the time left before
/// `deadline`, so the server stops the query when the scheduler gives up on it. Rows are
/// handed to `each` as they arrive, so a result is never held whole; once `each` returns
/// `false` the remaining rows are read and counted but not decoded, and that count is
/// returned.
pub(super) async fn stream_rows(
    pool: &CheckPool,
    sql: &str,
    deadline: Instant,
    mut each: impl FnMut(&PgRow) -> Result<bool, RunError>,
) -> Result<u64, RunError> {
    let mut tx = read_only(pool, deadline).await?;
    let mut rest = 0u64;
    {
        let mut rows = sqlx::query(sql).fetch(&mut *tx);
        let mut wanted = true;
        while let Some(row) = rows.try_next().await.map_err(classify)? {
            if wanted {
                wanted = each(&row)?;
            } else {
                rest += 1;
            }
        }
    }
    // Nothing was written; ending with ROLLBACK returns the connection clean.
    tx.rollback().await.map_err(classify)?;
    Ok(rest)
}

/// A READ ONLY transaction whose `statement_timeout` is the time left before `deadline`, for
/// a check of several queries; end it with a rollback.
pub(super) async fn read_only(pool: &CheckPool, deadline: Instant) -> Result<Tx, RunError> {
    let mut tx = begin(pool, deadline).await?;
    let budget = server_budget(deadline).as_millis().to_string();
    // Postgres 14+ can also check the client socket while a query runs: if the exporter is
    // stopped (or killed) mid-query, the server ends the query within a second instead of
    // running it on to its statement_timeout for nobody.
    let watch_client = tx.server_version_num().is_some_and(|v| v >= 140_000);
    let settings = if watch_client {
        "SELECT set_config('statement_timeout', $1, true), set_config('client_connection_check_interval', '1000', true)"
    } else {
        "SELECT set_config('statement_timeout', $1, true)"
    };
    sqlx::query(settings)
        .bind(budget)
        .execute(&mut *tx)
        .await
        .map_err(classify)?;
    Ok(tx)
}

#[cfg(test)]
mod tests {
    use crate::series::run_error::Reason;

    #[test]
    fn errors_are_classified_into_bounded_reasons() {
        let io = sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert_eq!(super::classify(io).reason(), Reason::Connect);
        let busy = super::classify(sqlx::Error::PoolTimedOut);
        assert_eq!(busy.reason(), Reason::Connect);
        assert!(
            busy.to_string().contains("no connection available in time"),
            "{busy}"
        );
        assert_eq!(
            super::classify(sqlx::Error::ColumnNotFound("value".into())).reason(),
            Reason::Decode
        );
        assert_eq!(
            super::classify(sqlx::Error::RowNotFound).reason(),
            Reason::Query
        );
    }
}
