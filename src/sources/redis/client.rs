//! A Redis source's connection: lazily connected, self-reconnecting, shared by its probes,
//! a saved connection PINGed after an idle second and reconnected once when the server
//! closed it; and Redis errors classified into bounded reasons.

use crate::sync::MutexExt;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::RedisError;
use tokio::sync::Mutex;

use crate::error::{ProbeError, Reason};

/// Connect and response timeout of the Redis connection manager.
const DRIVER_TIMEOUT: Duration = Duration::from_secs(10);

/// The lazily connected, self-reconnecting connection shared by a source's probes.
pub(super) struct Conn {
    pub(super) client: redis::Client,
    pub(super) manager: Mutex<Option<ConnectionManager>>,
    /// When a probe last took the connection.
    pub(super) used: std::sync::Mutex<Option<std::time::Instant>>,
}

/// A connection idle this long is PINGed before a probe uses it: servers and proxies close
/// idle clients (Redis `timeout`, managed services, load balancers), and the first command on
/// such a connection fails although the server is fine.
const IDLE_PING: Duration = Duration::from_secs(1);

impl Conn {
    pub(super) fn new(client: redis::Client) -> Self {
        Conn {
            client,
            manager: Mutex::new(None),
            used: std::sync::Mutex::new(None),
        }
    }

    /// The shared connection, connected on first use and checked after idleness: a
    /// connection the server closed while idle costs one reconnection, never a failed probe.
    pub(super) async fn get(&self) -> Result<ConnectionManager, ProbeError> {
        let mut guard = self.manager.lock().await;
        let idle = {
            let mut used = self.used.locked();
            let idle = used.is_none_or(|t| t.elapsed() >= IDLE_PING);
            *used = Some(std::time::Instant::now());
            idle
        };
        if let Some(m) = guard.as_ref() {
            let mut m = m.clone();
            if idle {
                if let Err(e) = ping(&mut m).await {
                    if !closed(&e) {
                        // An answer it cannot parse (a proxy, another protocol) would stay
                        // forever on this connection: the next probe starts a fresh one.
                        *guard = None;
                        return Err(classify(e));
                    }
                    // The manager reconnects in the background after a dropped connection;
                    // the second PING waits for that.
                    tracing::debug!(
                        "the saved Redis connection was closed by the server; reconnecting"
                    );
                    ping(&mut m).await.map_err(classify)?;
                }
            }
            return Ok(m);
        }
        // Fixed driver timeouts: the scheduler bounds every run; these only keep a dead
        // connection from hanging the manager, whichever probe happened to connect first.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(DRIVER_TIMEOUT))
            .set_response_timeout(Some(DRIVER_TIMEOUT))
            .set_number_of_retries(1);
        let manager = ConnectionManager::new_with_config(self.client.clone(), config)
            .await
            .map_err(classify)?;
        *guard = Some(manager.clone());
        Ok(manager)
    }

    /// Drops the connection manager; the next probe connects afresh.
    pub(super) async fn reset(&self) {
        *self.manager.lock().await = None;
    }
}

async fn ping(conn: &mut ConnectionManager) -> Result<String, RedisError> {
    redis::cmd("PING").query_async(conn).await
}

/// True for the errors of a connection the server or the network closed.
fn closed(err: &RedisError) -> bool {
    err.is_connection_dropped() || (err.is_io_error() && !err.is_connection_refusal())
}

pub(super) fn classify(err: RedisError) -> ProbeError {
    let text = err.to_string();
    let reason = if matches!(err.kind(), redis::ErrorKind::AuthenticationFailed)
        || matches!(err.code(), Some("NOAUTH" | "WRONGPASS" | "NOPERM"))
        || text.contains("AUTH")
    {
        Reason::Auth
    } else if err.is_timeout() {
        Reason::Timeout
    } else if err.is_io_error() || err.is_connection_refusal() || err.is_connection_dropped() {
        Reason::Connect
    } else if matches!(
        err.kind(),
        redis::ErrorKind::Parse | redis::ErrorKind::UnexpectedReturnType
    ) {
        Reason::Decode
    } else {
        Reason::Query
    };
    ProbeError::new(reason, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_classified_into_bounded_reasons() {
        use crate::error::Reason;
        let err = |kind, text: &'static str| classify(RedisError::from((kind, text)));
        assert_eq!(
            err(redis::ErrorKind::AuthenticationFailed, "bad password").reason(),
            Reason::Auth
        );
        assert_eq!(
            err(redis::ErrorKind::Client, "NOAUTH Authentication required").reason(),
            Reason::Auth
        );
        assert_eq!(
            classify(RedisError::from(std::io::Error::from(
                std::io::ErrorKind::ConnectionRefused
            )))
            .reason(),
            Reason::Connect
        );
        assert_eq!(
            err(redis::ErrorKind::UnexpectedReturnType, "not a number").reason(),
            Reason::Decode
        );
        assert_eq!(
            err(redis::ErrorKind::Client, "ERR unknown command").reason(),
            Reason::Query
        );
    }
}
