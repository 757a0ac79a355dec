//! The read-only transaction every check runs in: connecting within the check's budget,
//! `statement_timeout` from its deadline, rows streamed and never held whole, and sqlx errors
//! classified into bounded reasons.

use std::time::Duration;

use futures_util::TryStreamExt;
use sqlx::postgres::{PgPool, PgRow};
use tokio::time::Instant;

use crate::error::{ProbeError, Reason};
use crate::sources::remaining;

/// Classifies a sqlx error into a bounded reason; the message is scrubbed by [`ProbeError`].
pub(super) fn classify(err: sqlx::Error) -> ProbeError {
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
    ProbeError::new(reason, message)
}

/// Starts the read-only transaction a check runs in. Waiting for a busy pool's connection to
/// come back is queueing, bounded by the check's own deadline; waiting for the pool to open a
/// new one is connecting, bounded by [`connect_budget`]: sqlx retries a refused connection
/// until its acquire timeout, which would make a wrong port or a stopped server look like a
/// slow query (`timeout`) instead of what it is (`connect`).
async fn begin(
    pool: &PgPool,
    deadline: Instant,
) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, ProbeError> {
    let opening = pool.num_idle() == 0 && pool.size() < pool.options().get_max_connections();
    let begin = pool.begin_with("BEGIN READ ONLY");
    if !opening {
        return begin.await.map_err(classify);
    }
    let budget = connect_budget(deadline);
    match tokio::time::timeout(budget, begin).await {
        Ok(r) => r.map_err(classify),
        Err(_) => Err(ProbeError::new(
            Reason::Connect,
            format!(
                "no connection to the server within {} ms: it refuses, is unreachable or does not answer",
                budget.as_millis()
            ),
        )),
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
    pool: &PgPool,
    sql: &str,
    deadline: Instant,
    mut each: impl FnMut(&PgRow) -> Result<bool, ProbeError>,
) -> Result<u64, ProbeError> {
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
pub(super) async fn read_only(
    pool: &PgPool,
    deadline: Instant,
) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, ProbeError> {
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
    use crate::error::Reason;

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
