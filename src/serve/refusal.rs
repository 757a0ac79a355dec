//! A request the server refuses: its HTTP status, one line saying what to send instead, and
//! when to try again. `/probe` and `/ping` answer with it; the statuses are chosen here, from
//! what the domain says went wrong (a ping's [`Why`]).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

#[cfg(feature = "jobs")]
use crate::jobs::tracker::{Refused, Why};

/// A refused request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The HTTP status.
    pub status: StatusCode,
    /// What was wrong, and the fix: one line (Prometheus shows it as the scrape error).
    pub message: String,
    /// Seconds to wait before trying again (`Retry-After`), for 429 and 503.
    pub retry_after: Option<u64>,
}

impl Refusal {
    /// A refusal with no `Retry-After`.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Refusal {
        Refusal {
            status,
            message: message.into(),
            retry_after: None,
        }
    }
}

/// The status of each reason a ping is refused.
#[cfg(feature = "jobs")]
fn status(why: Why) -> StatusCode {
    match why {
        Why::Malformed => StatusCode::BAD_REQUEST,
        Why::Unsigned => StatusCode::UNAUTHORIZED,
        Why::Forbidden => StatusCode::FORBIDDEN,
        Why::Unknown => StatusCode::NOT_FOUND,
        Why::TooFast => StatusCode::TOO_MANY_REQUESTS,
        Why::NotRecorded => StatusCode::SERVICE_UNAVAILABLE,
    }
}

#[cfg(feature = "jobs")]
impl From<Refused> for Refusal {
    fn from(r: Refused) -> Refusal {
        Refusal {
            status: status(r.why),
            message: r.message,
            retry_after: r.retry_after,
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut resp = (self.status, format!("{}\n", self.message)).into_response();
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "jobs")]
    #[test]
    fn a_ping_refused_for_each_reason_answers_its_status_and_retry_after() {
        let cases = [
            (Why::Malformed, 400),
            (Why::Unsigned, 401),
            (Why::Forbidden, 403),
            (Why::Unknown, 404),
            (Why::TooFast, 429),
            (Why::NotRecorded, 503),
        ];
        for (why, code) in cases {
            let r = Refusal::from(Refused {
                why,
                message: "m".into(),
                retry_after: Some(5),
            });
            assert_eq!(r.status.as_u16(), code, "{why:?}");
            let resp = r.into_response();
            assert_eq!(resp.headers()[header::RETRY_AFTER], "5");
        }
    }
}
