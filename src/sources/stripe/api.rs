//! The Stripe API client of one source: one GET with Stripe's own conventions (a pinned
//! `Stripe-Version`, `Stripe-Account` for a connected account, `Stripe-Should-Retry`,
//! `Retry-After` or exponential back-off with jitter, rate limits as 429 or 400 `rate_limit`),
//! list pages validated as lists, and errors classified with the permission a restricted key
//! lacks.

use crate::sources::http_body::MAX_HTTP_BODY_BYTES;
use crate::sync::MutexExt;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::Value as Json;
use tokio::time::Instant;

use crate::series::run_error::{Reason, RunError};
use crate::sources::remaining;
use crate::sources::ConnectError;

/// How long Stripe lists events (30 days): the re-check and abandoned events reach no further.
pub const RETENTION: i64 = 30 * 86_400;

/// Longest back-off honoured from one Retry-After.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// Attempts per request when Stripe answers 429 (or says `Stripe-Should-Retry: true`) and the
/// deadline allows waiting.
const ATTEMPTS: u32 = 3;

/// Largest error body read for Stripe's error code and message.
const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;

/// Items per list page: Stripe's maximum.
pub const PAGE: usize = 100;

/// One listing of a run, as sent: the path, the filters, the account and the page cap.
pub struct ListRequest<'a> {
    /// `v1/events` or `v1/webhook_endpoints`.
    pub path: &'a str,
    /// Filters (`created[gte]`, `delivery_success`, …), without `limit` and the cursor.
    pub query: Vec<(&'static str, String)>,
    /// The connected account the request acts for (`Stripe-Account`), if any.
    pub account: Option<&'a str>,
    /// Start after this object (`starting_after`), to continue an earlier listing downwards.
    pub starting_after: Option<String>,
    /// List only what is newer than this object (`ending_before`), walking up from it.
    /// Takes precedence over `starting_after`.
    pub ending_before: Option<String>,
    /// At most this many pages.
    pub max_pages: u32,
}

/// What a listing read: its items and whether the page cap stopped it before the end. Items
/// are in Stripe's order (newest first), except for an `ending_before` listing, which walks
/// up from its cursor: its items are oldest first, so the last is the newest read.
pub struct Listing {
    /// The items of every page read.
    pub items: Vec<Json>,
    /// True when `has_more` was still set after the last page allowed.
    pub truncated: bool,
    /// Requests made.
    pub requests: u32,
}

/// The API client of one source, with the back-off it owes Stripe.
pub struct Api {
    base: url::Url,
    key: String,
    /// Sent as `Stripe-Version`.
    version: String,
    http: reqwest::Client,
    /// No request before this instant (set by a 429 or a retryable error).
    backoff_until: Mutex<Option<Instant>>,
}

impl Api {
    /// A client for `base` (a trailing `/` is added) with `key` and the pinned `version`.
    pub fn new(base: &str, key: &str, version: &str) -> Result<Api, ConnectError> {
        let mut base =
            url::Url::parse(base).map_err(|e| ConnectError::field("api_base", e.to_string()))?;
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        Ok(Api {
            base,
            key: key.to_owned(),
            version: version.to_owned(),
            http: reqwest::Client::builder()
                .user_agent(concat!("pulse-exporter/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| ConnectError::Client(e.to_string()))?,
            backoff_until: Mutex::new(None),
        })
    }

    /// One GET of `path`, retried as Stripe asks while `deadline` allows.
    pub async fn get(
        &self,
        path: &str,
        query: &[(&str, String)],
        account: Option<&str>,
        deadline: Instant,
    ) -> Result<Json, RunError> {
        let url = self
            .base
            .join(path)
            .map_err(|e| RunError::new(Reason::Query, e.to_string()))?;
        let mut last = RunError::new(
            Reason::RateLimited,
            format!("{path}: still rate limited after {ATTEMPTS} attempts"),
        );
        for attempt in 0..ATTEMPTS {
            self.wait_for_backoff(deadline).await?;
            let resp = self.send(url.clone(), query, account, deadline).await?;
            let status = resp.status();
            if status.is_success() {
                return crate::sources::http_body::json(resp, path, MAX_HTTP_BODY_BYTES).await;
            }
            let refusal = Refusal::read(resp, path).await;
            if !refusal.retry() {
                return Err(classify(
                    path,
                    status.as_u16(),
                    refusal.rate_limited,
                    &refusal.message,
                ));
            }
            let wait = refusal
                .retry_after
                .unwrap_or_else(|| backoff(attempt))
                .min(MAX_RETRY_AFTER);
            tracing::debug!(
                path,
                status = status.as_u16(),
                wait = wait.as_secs_f64(),
                "Stripe asked to retry"
            );
            *self.backoff_until.locked() = Some(Instant::now() + wait);
            last = RunError::new(
                if refusal.rate_limited {
                    Reason::RateLimited
                } else {
                    Reason::Upstream
                },
                format!("{path}: HTTP {} after {ATTEMPTS} attempts", status.as_u16()),
            );
        }
        Err(last)
    }

    /// Waits out a back-off Stripe asked for (shared by the source's checks), or fails the
    /// run at once when it lasts past `deadline`.
    async fn wait_for_backoff(&self, deadline: Instant) -> Result<(), RunError> {
        let wait_until = *self.backoff_until.locked();
        let Some(until) = wait_until.filter(|u| *u > Instant::now()) else {
            return Ok(());
        };
        if until >= deadline {
            return Err(RunError::new(
                Reason::RateLimited,
                format!(
                    "Stripe asked to wait {:.0}s more (HTTP 429): this run is skipped",
                    until
                        .saturating_duration_since(Instant::now())
                        .as_secs_f64()
                ),
            ));
        }
        tokio::time::sleep_until(until).await;
        Ok(())
    }

    /// One GET with the key, the pinned version and the account, within `deadline`.
    async fn send(
        &self,
        url: url::Url,
        query: &[(&str, String)],
        account: Option<&str>,
        deadline: Instant,
    ) -> Result<reqwest::Response, RunError> {
        let mut request = self
            .http
            .get(url)
            .bearer_auth(&self.key)
            .header("Stripe-Version", &self.version)
            .query(query)
            .timeout(remaining(deadline).max(Duration::from_millis(1)));
        if let Some(account) = account {
            request = request.header("Stripe-Account", account);
        }
        request.send().await.map_err(|e| {
            RunError::new(
                crate::sources::http_body::transport_reason(&e),
                e.to_string(),
            )
        })
    }

    /// The pages of one listing, at most `max_pages`, following `starting_after` down or
    /// `ending_before` up.
    pub async fn list(
        &self,
        req: &ListRequest<'_>,
        deadline: Instant,
    ) -> Result<Listing, RunError> {
        let upward = req.ending_before.is_some();
        let (cursor_name, mut cursor) = match &req.ending_before {
            Some(before) => ("ending_before", Some(before.clone())),
            None => ("starting_after", req.starting_after.clone()),
        };
        let mut items = Vec::new();
        for page in 0..req.max_pages {
            let mut q = req.query.clone();
            q.push(("limit", PAGE.to_string()));
            if let Some(c) = &cursor {
                q.push((cursor_name, c.clone()));
            }
            let body = self.get(req.path, &q, req.account, deadline).await?;
            let (mut data, has_more) = list_page(body, req.path)?;
            if !has_more {
                if upward {
                    data.reverse();
                }
                items.extend(data);
                return Ok(Listing {
                    items,
                    truncated: false,
                    requests: page + 1,
                });
            }
            // The next page continues from the item at the far end of this one: the oldest
            // going down, the newest going up (pages come newest first either way).
            let far = if upward { data.first() } else { data.last() };
            let Some(far) = far else {
                return Err(RunError::new(
                    Reason::Inconsistent,
                    format!(
                        "{path}: Stripe answered an empty page that says more follow (has_more: true{at}): the listing cannot go on, so this run keeps what earlier runs read",
                        path = req.path,
                        at = cursor
                            .as_ref()
                            .map(|c| format!(", {cursor_name} {c}"))
                            .unwrap_or_default(),
                    ),
                ));
            };
            let Some(id) = far["id"].as_str().map(str::to_owned) else {
                return Err(RunError::new(
                    Reason::Decode,
                    format!(
                        "{}: an item has no `id`, so the listing cannot go on",
                        req.path
                    ),
                ));
            };
            cursor = Some(id);
            if upward {
                data.reverse();
            }
            items.extend(data);
        }
        Ok(Listing {
            items,
            truncated: true,
            requests: req.max_pages,
        })
    }
}

/// What a refused request said: whether to try again, and when.
struct Refusal {
    /// `Stripe-Should-Retry`, when Stripe gives its own advice.
    should_retry: Option<bool>,
    /// `Retry-After`, when readable.
    retry_after: Option<Duration>,
    /// HTTP 429, or a 400 `rate_limit` of an old API version.
    rate_limited: bool,
    /// The error's message, if the body had one.
    message: String,
}

impl Refusal {
    async fn read(resp: reqwest::Response, path: &str) -> Refusal {
        let status = resp.status();
        let should_retry = resp
            .headers()
            .get("stripe-should-retry")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.eq_ignore_ascii_case("true"));
        // A malformed, negative or absurd Retry-After must not break the source: it
        // falls back to exponential back-off and is capped at MAX_RETRY_AFTER.
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .and_then(|v| Duration::try_from_secs_f64(v).ok());
        // An error body is small; a huge one is read only as far as an error could be.
        let body = crate::sources::http_body::json(resp, path, MAX_ERROR_BODY_BYTES)
            .await
            .ok();
        let error = body.as_ref().map(|b| &b["error"]);
        // API versions before 2015-09-08 report rate limits as HTTP 400 `rate_limit`.
        let rate_limited = status == reqwest::StatusCode::TOO_MANY_REQUESTS
            || (status == reqwest::StatusCode::BAD_REQUEST
                && error.is_some_and(|e| e["code"] == "rate_limit"));
        let message = error
            .and_then(|e| e["message"].as_str())
            .unwrap_or_default()
            .to_owned();
        Refusal {
            should_retry,
            retry_after,
            rate_limited,
            message,
        }
    }

    /// Stripe's own advice, when it gives one, decides whether to try again; else a rate
    /// limit is retried and nothing else.
    fn retry(&self) -> bool {
        self.should_retry.unwrap_or(self.rate_limited)
    }
}

/// The error of a request Stripe refused and that is not retried. A 403 names the resource
/// the key may not read and, when Stripe names it, the restricted-key permission
/// (`rak_…`); Stripe's own message is not repeated, since it quotes part of the key.
fn classify(path: &str, status: u16, rate_limited: bool, message: &str) -> RunError {
    let reason = match status {
        _ if rate_limited => Reason::RateLimited,
        401 | 403 => Reason::Auth,
        404 => Reason::NotFound,
        500..=599 => Reason::Upstream,
        _ => Reason::Query,
    };
    let detail = match status {
        401 => " (the API key is invalid or revoked)".to_owned(),
        403 if message.contains("Connect permissions") => {
            " (a restricted key needs Connect permissions to act for a connected account: give it read access to Connect resources, or remove the account from stripe_accounts)".to_owned()
        }
        403 => {
            let resource = if path.contains("webhook_endpoints") {
                "Webhook Endpoints"
            } else {
                "Events"
            };
            let named = permission_named(message)
                .map(|p| format!(", Stripe names it {p}"))
                .unwrap_or_default();
            format!(" (the key may not read {resource}: give the restricted key Read on {resource}{named})")
        }
        _ if message.is_empty() => String::new(),
        _ => format!(" {message}"),
    };
    RunError::new(reason, format!("{path}: HTTP {status}{detail}"))
}

/// The `rak_…` permission a Stripe 403 message says would allow the request.
fn permission_named(message: &str) -> Option<&str> {
    let start = message.find("rak_")?;
    let rest = &message[start..];
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    Some(&rest[..end])
}

/// The items of a listing as `T`; one that does not have the fields read (or has text where
/// a number belongs) is a `decode` failure naming `what` it should have been.
pub fn parse_items<T: serde::de::DeserializeOwned>(
    path: &str,
    what: &str,
    items: Vec<Json>,
) -> Result<Vec<T>, RunError> {
    items
        .into_iter()
        .map(|item| {
            serde_json::from_value(item).map_err(|e| {
                RunError::new(
                    Reason::Decode,
                    format!("{path}: an item is not {what}: {e}"),
                )
            })
        })
        .collect()
}

/// Back-off before retry `attempt` (from 0) when Stripe says when to come back no more:
/// 0.5 s doubling, with jitter (50 to 100 % of it) so that sources sharing an account do not
/// retry in step, as Stripe's client libraries do.
fn backoff(attempt: u32) -> Duration {
    let base = Duration::from_millis(500).saturating_mul(1 << attempt.min(10));
    base.mul_f64(rand::random_range(0.5..=1.0))
}

/// The items and `has_more` of one page of a Stripe list. A 200 that is not a list (no
/// `object: "list"`, `data` array or `has_more` flag) is a `decode` failure, never an empty
/// and complete listing.
fn list_page(mut body: Json, path: &str) -> Result<(Vec<Json>, bool), RunError> {
    let malformed = |what: &str| {
        RunError::new(
            Reason::Decode,
            format!("{path}: the answer is not a Stripe list ({what})"),
        )
    };
    if body["object"] != "list" {
        return Err(malformed("`object` is not \"list\""));
    }
    let has_more = body["has_more"]
        .as_bool()
        .ok_or_else(|| malformed("no `has_more` flag"))?;
    match body["data"].take() {
        Json::Array(data) => Ok((data, has_more)),
        _ => Err(malformed("no `data` array")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_that_is_not_a_list_is_a_decode_failure() {
        let ok = serde_json::json!({"object": "list", "data": [{"id": "evt_1"}], "has_more": true});
        let (data, more) = list_page(ok, "v1/events").unwrap();
        assert_eq!((data.len(), more), (1, true));
        for bad in [
            serde_json::json!({"data": [], "has_more": false}),
            serde_json::json!({"object": "list", "data": []}),
            serde_json::json!({"object": "list", "has_more": false}),
            serde_json::json!({"error": {"message": "x"}}),
        ] {
            let e = list_page(bad, "v1/events").unwrap_err();
            assert_eq!(e.reason(), Reason::Decode);
            assert!(e.to_string().contains("not a Stripe list"), "{e}");
        }
    }

    #[test]
    fn back_off_doubles_with_jitter() {
        for attempt in 0..4 {
            let full = Duration::from_millis(500 << attempt);
            let d = backoff(attempt);
            assert!(d >= full / 2 && d <= full, "{attempt}: {d:?}");
        }
        assert!(backoff(u32::MAX) <= Duration::from_millis(500 << 10));
    }

    #[test]
    fn a_403_names_the_resource_and_permission_without_quoting_the_key() {
        let stripe = "The provided key 'rk_test_****abcd' does not have the required permissions for this endpoint on account 'acct_1'. Having the 'rak_webhook_read' permission would allow this request to continue.";
        let e = classify("v1/webhook_endpoints", 403, false, stripe);
        assert_eq!(e.reason(), Reason::Auth);
        let text = e.to_string();
        assert!(text.contains("may not read Webhook Endpoints"), "{text}");
        assert!(text.contains("Stripe names it rak_webhook_read"), "{text}");
        assert!(!text.contains("rk_test"), "{text}");
        let e = classify("v1/events", 403, false, "");
        assert!(e.to_string().contains("Read on Events)"), "{e}");
        let e = classify("v1/events", 403, false, "You passed a restricted API key with the Stripe-Account header, but the restricted API key does not have any Connect permissions.");
        assert!(e.to_string().contains("stripe_accounts"), "{e}");
    }

    #[test]
    fn other_statuses_keep_their_reason_and_message() {
        assert_eq!(classify("v1/events", 401, false, "").reason(), Reason::Auth);
        assert_eq!(
            classify("v1/events", 404, false, "").reason(),
            Reason::NotFound
        );
        assert_eq!(
            classify("v1/events", 502, false, "").reason(),
            Reason::Upstream
        );
        let e = classify("v1/events", 400, false, "Received unknown parameter: x");
        assert_eq!(e.reason(), Reason::Query);
        assert!(e
            .to_string()
            .ends_with("HTTP 400 Received unknown parameter: x"));
        assert_eq!(
            classify("v1/events", 400, true, "").reason(),
            Reason::RateLimited
        );
        assert_eq!(permission_named("no such thing"), None);
        assert_eq!(permission_named("'rak_event_read'"), Some("rak_event_read"));
    }
}
