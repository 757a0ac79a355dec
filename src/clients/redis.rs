//! The Redis client and the lazily connected, self-reconnecting connection that a Redis
//! source (for its probes) and a Redis job store (for pings and reads) each keep: the client
//! built from the URL and its `tls:` files one way ([`client`]), the connection made on first
//! use, PINGed after an idle second and reconnected once when the server closed it, dropped
//! after an answer it cannot read.

use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::RedisError;
use tokio::sync::Mutex;

use crate::config_core::tls::TlsFiles;
use crate::sync::MutexExt;

/// Why a Redis client could not be built.
#[derive(Debug)]
pub enum ClientError {
    /// A file of `tls:` ([`TlsFiles::load`]): the field and why.
    Tls((&'static str, String)),
    /// The URL, as the client read it (may hold a password: scrub before showing it).
    Url(RedisError),
}

/// The client of `url`, trusting and showing what `tls` names; nothing connects yet.
pub fn client(url: &str, tls: Option<&TlsFiles>) -> Result<redis::Client, ClientError> {
    match tls {
        Some(tls) => {
            let certs = tls.load().map_err(ClientError::Tls)?.into_redis();
            redis::Client::build_with_tls(url, certs).map_err(ClientError::Url)
        }
        None => redis::Client::open(url).map_err(ClientError::Url),
    }
}

/// A connection idle this long is PINGed before it is used: servers and proxies close idle
/// clients (Redis `timeout`, managed services, load balancers), and the first command on
/// such a connection fails although the server is fine.
const IDLE_PING: Duration = Duration::from_secs(1);

/// One Redis connection, shared by whoever holds it, connected on first use.
pub struct RedisConnection {
    client: redis::Client,
    manager: Mutex<Option<ConnectionManager>>,
    /// When the connection was last taken.
    used: std::sync::Mutex<Option<Instant>>,
    /// Connect and response timeout of the connection manager.
    timeout: Duration,
}

impl RedisConnection {
    /// A connection to `client`'s server, not yet made. `timeout` bounds connecting and each
    /// answer: the callers bound their whole operation, this only keeps a dead server from
    /// holding the connection manager itself.
    pub fn new(client: redis::Client, timeout: Duration) -> Self {
        RedisConnection {
            client,
            manager: Mutex::new(None),
            used: std::sync::Mutex::new(None),
            timeout,
        }
    }

    /// The connection, connected on first use and checked after idleness: a connection the
    /// server closed while idle costs one reconnection, never a failed command.
    pub async fn get(&self) -> Result<ConnectionManager, RedisError> {
        let mut guard = self.manager.lock().await;
        let idle = {
            let mut used = self.used.locked();
            let idle = used.is_none_or(|t| t.elapsed() >= IDLE_PING);
            *used = Some(Instant::now());
            idle
        };
        if let Some(m) = guard.as_ref() {
            let mut m = m.clone();
            if idle {
                if let Err(e) = ping(&mut m).await {
                    if !closed(&e) {
                        // An answer it cannot parse (a proxy, another protocol) would stay
                        // forever on this connection: the next use starts a fresh one.
                        *guard = None;
                        return Err(e);
                    }
                    // The manager reconnects in the background after a dropped connection;
                    // the second PING waits for that.
                    tracing::debug!(
                        "the saved Redis connection was closed by the server; reconnecting"
                    );
                    ping(&mut m).await?;
                }
            }
            return Ok(m);
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout))
            .set_number_of_retries(1);
        let manager = ConnectionManager::new_with_config(self.client.clone(), config).await?;
        *guard = Some(manager.clone());
        Ok(manager)
    }

    /// Drops the connection; the next use connects afresh.
    pub async fn reset(&self) {
        *self.manager.lock().await = None;
    }

    /// [`RedisConnection::reset`] where no one else holds the connection at the moment (a
    /// caller that must not wait, such as an error path); otherwise the holder's own checks
    /// decide.
    pub fn try_reset(&self) {
        if let Ok(mut guard) = self.manager.try_lock() {
            *guard = None;
        }
    }
}

async fn ping(conn: &mut ConnectionManager) -> Result<String, RedisError> {
    redis::cmd("PING").query_async(conn).await
}

/// True for the errors of a connection the server or the network closed.
fn closed(err: &RedisError) -> bool {
    err.is_connection_dropped() || (err.is_io_error() && !err.is_connection_refusal())
}
