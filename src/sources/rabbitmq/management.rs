//! The broker's HTTP client: authenticated GETs of the management API (and of the Prometheus
//! endpoint, the same way) with errors classified into reasons.

use std::time::Duration;

use serde_json::Value as Json;
use tokio::time::Instant;

use crate::series::run_error::{Reason, RunError};
use crate::sources::remaining;

/// `s` percent-encoded as one path segment or query value of a request (a vhost `/`, a
/// queue name with spaces).
pub(super) fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// [`Management::what`] of the management API.
pub(super) const MANAGEMENT_API: &str = "the management API";

/// The management API client of one source (or of its broker's Prometheus endpoint).
pub(super) struct Management {
    /// What the endpoint is, for errors: `the management API`.
    pub(super) what: &'static str,
    pub(super) base: url::Url,
    pub(super) username: String,
    pub(super) password: String,
    pub(super) http: reqwest::Client,
}

impl Management {
    /// GETs `path` (already encoded) and parses JSON, classifying failures.
    pub(super) async fn get(&self, path: &str, deadline: Instant) -> Result<Json, RunError> {
        let resp = self.send(path, deadline).await?;
        self.body(path, resp).await
    }

    /// GETs one of the broker's health-check endpoints (`api/health/checks/…`), which answer
    /// 200 when the check passes and 503, with the failure in the same JSON shape, when it
    /// does not: `(passed, body)`. Any other answer is classified as [`Management::get`] does.
    pub(super) async fn health_check(
        &self,
        path: &str,
        deadline: Instant,
    ) -> Result<(bool, Json), RunError> {
        let resp = self.send(path, deadline).await?;
        if resp.status() == reqwest::StatusCode::SERVICE_UNAVAILABLE {
            let body = crate::sources::http_body::json(
                resp,
                path,
                crate::sources::http_body::MAX_HTTP_BODY_BYTES,
            )
            .await?;
            return Ok((false, body));
        }
        Ok((true, self.body(path, resp).await?))
    }

    /// GETs `path` (already encoded) as text, bounded and classified as [`Management::get`].
    pub(super) async fn text(&self, path: &str, deadline: Instant) -> Result<String, RunError> {
        let resp = self.send(path, deadline).await?;
        let resp = self.checked(path, resp)?;
        let body = crate::sources::http_body::bytes(
            resp,
            path,
            crate::sources::http_body::MAX_HTTP_BODY_BYTES,
        )
        .await?;
        Ok(String::from_utf8_lossy(&body).into_owned())
    }

    async fn send(&self, path: &str, deadline: Instant) -> Result<reqwest::Response, RunError> {
        let url = self
            .base
            .join(path)
            .map_err(|e| RunError::new(Reason::Query, e.to_string()))?;
        self.http
            .get(url)
            .basic_auth(&self.username, Some(&self.password))
            .timeout(remaining(deadline).max(Duration::from_millis(1)))
            .send()
            .await
            .map_err(|e| classify_http(&e))
    }

    /// The JSON of a response, or its status classified into a reason.
    async fn body(&self, path: &str, resp: reqwest::Response) -> Result<Json, RunError> {
        let resp = self.checked(path, resp)?;
        crate::sources::http_body::json(resp, path, crate::sources::http_body::MAX_HTTP_BODY_BYTES)
            .await
    }

    /// The response if it succeeded, else its status classified into a reason.
    fn checked(&self, path: &str, resp: reqwest::Response) -> Result<reqwest::Response, RunError> {
        let status = resp.status();
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            return Err(RunError::new(
                Reason::Auth,
                format!("{} refused user {:?} (HTTP {}): check `username` and `password`, and that the user has the monitoring tag", self.what, self.username, status.as_u16()),
            ));
        }
        if status == reqwest::StatusCode::NOT_FOUND {
            return Err(RunError::new(Reason::NotFound, format!("{path}: HTTP 404")));
        }
        if status.is_server_error() {
            return Err(RunError::new(
                Reason::Upstream,
                format!("{path}: HTTP {}", status.as_u16()),
            ));
        }
        if !status.is_success() {
            return Err(RunError::new(
                Reason::Query,
                format!("{path}: HTTP {}", status.as_u16()),
            ));
        }
        Ok(resp)
    }
}

pub(super) fn classify_http(e: &reqwest::Error) -> RunError {
    let reason = if e.is_timeout() {
        Reason::Timeout
    } else if e.is_connect() {
        Reason::Connect
    } else if e.is_decode() {
        Reason::Decode
    } else {
        Reason::Connect
    };
    RunError::new(reason, http_error_text(e))
}

/// What went wrong with a management API request, short: the request's path without its
/// query (the queue listing's is hundreds of characters of column names), the cause under
/// reqwest's own words, and a hint where the URL names the AMQP port, which answers HTTP
/// with a protocol header and closes.
fn http_error_text(e: &reqwest::Error) -> String {
    let causes = crate::sources::http_body::causes(e);
    let what = match e.url() {
        Some(url) => format!("{}{}", url.origin().ascii_serialization(), url.path()),
        None => "the management API".to_owned(),
    };
    let mut text = format!("request to {what} failed");
    if !causes.is_empty() {
        text.push_str(": ");
        text.push_str(&causes.join(": "));
    }
    if let Some(port @ (5672 | 5671)) = e.url().and_then(|u| u.port()) {
        let api = if port == 5671 { 15671 } else { 15672 };
        text.push_str(&format!(
            " ({port} is the AMQP port: management_url takes the management API's port, {api} by default, with the rabbitmq_management plugin enabled)"
        ));
    }
    text
}
