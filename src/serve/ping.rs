//! The ping endpoint's request side: `/ping/NAME[/start|/success|/fail|/EXIT_CODE]`, its
//! query (`rid`, `exit_code`), body (a log tail) and what signs it, read into a
//! [`Ping`] with refusals that say what to send instead. The tracker
//! ([`crate::jobs::tracker`]) decides what the ping changes.

use std::time::Duration;

use axum::http::{header, HeaderMap, StatusCode};

use crate::jobs::state::{is_run_id, log_tail, Ping, Signal};
use crate::serve::refusal::Refusal;

/// Largest ping body read: a log tail; its last [`crate::jobs::state::MAX_LOG`] bytes are kept.
pub const MAX_BODY: usize = 100 * 1024;

/// How long a client has to send a ping's body.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// The query of a ping.
#[derive(Debug, Default, serde::Deserialize)]
pub struct PingQuery {
    /// The run id.
    pub rid: Option<String>,
    /// The exit code of a `fail`.
    pub exit_code: Option<String>,
}

/// The signal the path's last part names: `start`, `success`, `fail`, or an exit code (`0`
/// is a success, anything else a failure, as in `cmd; curl …/ping/NAME/$?`).
pub fn signal(word: Option<&str>, query: &PingQuery) -> Result<Signal, Refusal> {
    let refuse = |m: String| Refusal::new(StatusCode::BAD_REQUEST, m);
    let code = match query.exit_code.as_deref() {
        None => None,
        Some(text) => Some(
            text.trim()
                .parse::<i32>()
                .map_err(|_| refuse(format!("exit_code={text:?} is not a whole number")))?,
        ),
    };
    match word {
        None | Some("success") => match code {
            Some(c) if c != 0 => Err(refuse(format!("a success with exit_code={c}: send it to /fail, or send the code as the last part of the path"))),
            _ => Ok(Signal::Success),
        },
        Some("start") => Ok(Signal::Start),
        Some("fail") => Ok(Signal::Fail(code)),
        Some(other) => match other.parse::<i32>() {
            Ok(0) => Ok(Signal::Success),
            Ok(c) => Ok(Signal::Fail(Some(c))),
            Err(_) => Err(Refusal::new(
                StatusCode::NOT_FOUND,
                format!("/ping/NAME/{other} is not a ping: use /start, /success, /fail or an exit code"),
            )),
        },
    }
}

/// The ping of `signal`, with its run id checked and its body read as a log tail, received
/// `at`.
pub fn ping(signal: Signal, query: &PingQuery, body: &[u8], at: f64) -> Result<Ping, Refusal> {
    if let Some(rid) = &query.rid {
        if !is_run_id(rid) {
            return Err(Refusal::new(
                StatusCode::BAD_REQUEST,
                format!(
                    "rid is 1-{} printable characters without spaces (a UUID, a pod name)",
                    crate::jobs::state::MAX_RUN_ID
                ),
            ));
        }
    }
    let log = (!body.is_empty()).then(|| log_tail(&String::from_utf8_lossy(body)));
    Ok(Ping {
        signal,
        rid: query.rid.clone(),
        log,
        at,
    })
}

/// The body of a ping, bounded to [`MAX_BODY`] bytes and [`BODY_TIMEOUT`].
pub async fn read_body(body: axum::body::Body) -> Result<axum::body::Bytes, Refusal> {
    match tokio::time::timeout(BODY_TIMEOUT, axum::body::to_bytes(body, MAX_BODY)).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(_)) => Err(Refusal::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the ping's body is over {} KiB: send the tail of the log only",
                MAX_BODY / 1024
            ),
        )),
        Err(_) => Err(Refusal::new(
            StatusCode::REQUEST_TIMEOUT,
            format!("the ping's body took over {BODY_TIMEOUT:?} to arrive"),
        )),
    }
}

/// The bearer token of `Authorization: Bearer …`, if that is what the request carries.
pub fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn q(rid: Option<&str>, exit_code: Option<&str>) -> PingQuery {
        PingQuery {
            rid: rid.map(str::to_owned),
            exit_code: exit_code.map(str::to_owned),
        }
    }

    #[test]
    fn the_path_and_query_name_the_signal() {
        let none = q(None, None);
        assert_eq!(signal(None, &none), Ok(Signal::Success));
        assert_eq!(signal(Some("start"), &none), Ok(Signal::Start));
        assert_eq!(
            signal(Some("fail"), &q(None, Some("3"))),
            Ok(Signal::Fail(Some(3)))
        );
        assert_eq!(signal(Some("fail"), &none), Ok(Signal::Fail(None)));
        assert_eq!(signal(Some("0"), &none), Ok(Signal::Success));
        assert_eq!(signal(Some("137"), &none), Ok(Signal::Fail(Some(137))));
        assert_eq!(
            signal(Some("stop"), &none).unwrap_err().status.as_u16(),
            404
        );
        assert_eq!(
            signal(Some("fail"), &q(None, Some("x")))
                .unwrap_err()
                .status
                .as_u16(),
            400
        );
        assert_eq!(
            signal(Some("success"), &q(None, Some("2")))
                .unwrap_err()
                .status
                .as_u16(),
            400
        );
    }

    #[test]
    fn run_ids_and_bodies_are_bounded() {
        assert_eq!(
            ping(Signal::Start, &q(Some("a b"), None), b"", 1.0)
                .unwrap_err()
                .status
                .as_u16(),
            400
        );
        let p = ping(Signal::Success, &q(Some("r-1"), None), b"\xffok\n", 1.0).unwrap();
        assert_eq!(p.log.as_deref(), Some("\u{fffd}ok\n"));
        assert_eq!(
            ping(Signal::Start, &q(None, None), b"", 1.0).unwrap().log,
            None
        );
    }

    #[test]
    fn only_a_bearer_token_is_a_bearer_token() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
            bearer(&h)
        };
        assert_eq!(with("Bearer abc"), Some("abc".to_owned()));
        assert_eq!(with("bearer  abc "), Some("abc".to_owned()));
        assert_eq!(with("Basic abc"), None);
        assert_eq!(with("Bearer "), None);
    }
}
