//! A Redis source's connection, shared by its probes ([`RedisConnection`]: lazily connected,
//! checked after idleness), and Redis errors classified into bounded reasons.

use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::RedisError;

use crate::clients::redis::RedisConnection;
use crate::series::run_error::{Reason, RunError};

/// Connect and response timeout of the Redis connection manager: fixed, since the scheduler
/// bounds every run; it only keeps a dead connection from hanging the manager, whichever
/// probe happened to connect first.
const DRIVER_TIMEOUT: Duration = Duration::from_secs(10);

/// The connection shared by a source's probes, its errors as probe errors.
pub(super) struct Conn(RedisConnection);

impl Conn {
    pub(super) fn new(client: redis::Client) -> Self {
        Conn(RedisConnection::new(client, DRIVER_TIMEOUT))
    }

    /// The shared connection (see [`RedisConnection::get`]).
    pub(super) async fn get(&self) -> Result<ConnectionManager, RunError> {
        self.0.get().await.map_err(classify)
    }

    /// Drops the connection; the next probe connects afresh.
    pub(super) async fn reset(&self) {
        self.0.reset().await;
    }
}

pub(super) fn classify(err: RedisError) -> RunError {
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
    let hint = match (err.kind(), err.code()) {
        // The client says only "Password authentication failed", whether the password is
        // wrong or the server has none to check it against.
        (redis::ErrorKind::AuthenticationFailed, _) | (_, Some("WRONGPASS")) => {
            Some("the server refused the URL's credentials: either the password is wrong, or the server has no password set (no requirepass and no ACL user), and then the URL must carry none; an ACL user is named in the URL (redis://USER:PASSWORD@host:6379)")
        }
        (_, Some("NOAUTH")) => Some("the server requires a password: put it in the URL, as redis://:${env:REDIS_PASSWORD}@host:6379 (or USER:PASSWORD for an ACL user)"),
        (_, Some("NOPERM")) => Some("the user's ACL forbids this command: allow it (e.g. ACL SETUSER … +@read +info +latency +slowlog), or turn the check off"),
        _ => None,
    };
    match hint {
        Some(hint) => RunError::new(reason, format!("{text}: {hint}")),
        None => RunError::new(reason, text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_classified_into_bounded_reasons() {
        use crate::series::run_error::Reason;
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
