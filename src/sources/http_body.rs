//! Reading an HTTP answer from a source with a byte bound: the RabbitMQ management API and
//! Stripe answer JSON, and an answer that is huge (a broker listing everything) or never ends
//! (a proxy streaming garbage) must cost at most the bound, not the process's memory.

use serde_json::Value as Json;

use crate::series::run_error::{Reason, RunError};

/// Largest HTTP body read from a source. Far above any answer pulse-exporter asks for (queue
/// listings are paged and trimmed to the published columns, Stripe pages hold 100 objects), and
/// small enough that the parsed JSON stays well under the exporter's memory.
pub const MAX_HTTP_BODY_BYTES: usize = 16 * 1024 * 1024;

/// The body of `resp` parsed as JSON, read chunk by chunk and refused as `too_large` the
/// moment it passes `limit` bytes (or at once when its declared length does). `what` names
/// the request in errors.
pub async fn json(resp: reqwest::Response, what: &str, limit: usize) -> Result<Json, RunError> {
    let body = bytes(resp, what, limit).await?;
    serde_json::from_slice(&body).map_err(|e| RunError::new(Reason::Decode, format!("{what}: {e}")))
}

/// The body of `resp` as bytes, bounded as [`json`] bounds it.
pub async fn bytes(
    mut resp: reqwest::Response,
    what: &str,
    limit: usize,
) -> Result<Vec<u8>, RunError> {
    let too_large = || {
        RunError::new(
            Reason::TooLarge,
            format!(
                "{what}: the answer is over {} MiB, the most read from a source",
                limit / (1024 * 1024)
            ),
        )
    };
    if resp.content_length().is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    loop {
        let chunk = resp
            .chunk()
            .await
            .map_err(|e| RunError::new(transport_reason(&e), format!("{what}: {e}")))?;
        let Some(chunk) = chunk else { break };
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The reason of a request or body that did not get through: `timeout` when reqwest's own
/// timer ended it, `connect` for everything else on the way (refused, reset, TLS).
pub fn transport_reason(e: &reqwest::Error) -> Reason {
    if e.is_timeout() {
        Reason::Timeout
    } else {
        Reason::Connect
    }
}

/// The causes under an error, outermost first, each said once: reqwest's own words ("error
/// sending request") say nothing of why, its sources do ("connection refused").
pub fn causes(e: &(dyn std::error::Error + 'static)) -> Vec<String> {
    let mut causes: Vec<String> = Vec::new();
    let mut next = e.source();
    while let Some(cause) = next {
        let text = cause.to_string();
        if !causes.contains(&text) {
            causes.push(text);
        }
        next = cause.source();
    }
    causes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(body: &'static str) -> reqwest::Response {
        reqwest::Response::from(axum::http::Response::new(body))
    }

    #[test]
    fn causes_are_listed_outermost_first_each_once() {
        #[derive(Debug)]
        struct Layer(&'static str, Option<Box<Layer>>);
        impl std::fmt::Display for Layer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.0)
            }
        }
        impl std::error::Error for Layer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                self.1.as_deref().map(|l| l as _)
            }
        }
        let chain = Layer(
            "error sending request",
            Some(Box::new(Layer(
                "client error (Connect)",
                Some(Box::new(Layer(
                    "client error (Connect)",
                    Some(Box::new(Layer("Connection refused", None))),
                ))),
            ))),
        );
        assert_eq!(
            causes(&chain),
            ["client error (Connect)", "Connection refused"],
            "the error's own words are not a cause; a repeated cause is said once"
        );
        assert!(causes(&Layer("alone", None)).is_empty());
    }

    #[tokio::test]
    async fn a_body_within_the_bound_is_parsed_and_one_past_it_refused() {
        let ok = json(response(r#"{"a": 1}"#), "api/x", 64).await.unwrap();
        assert_eq!(ok["a"], 1);
        let big = json(response(r#"{"a": "0123456789"}"#), "api/x", 8)
            .await
            .unwrap_err();
        assert_eq!(big.reason(), Reason::TooLarge);
        assert!(big.to_string().contains("api/x"), "{big}");
        let bad = json(response("{"), "api/x", 64).await.unwrap_err();
        assert_eq!(bad.reason(), Reason::Decode);
    }
}
