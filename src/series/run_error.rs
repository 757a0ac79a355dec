//! Why a check or a health probe failed: the bounded `reason` every failure carries, and its
//! message.
//!
//! The reason is the only part that reaches a label (`pulse_*_failures_total{reason}`);
//! the message goes to logs, the landing page and `probe` output, scrubbed of secrets.

use std::fmt;

/// Why a probe or check failed. A fixed set, so it is safe as a label value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    /// The check did not finish within its timeout.
    Timeout,
    /// The source could not be reached (refused, DNS, TLS, pool exhausted).
    Connect,
    /// The source refused our credentials or permissions.
    Auth,
    /// The source ran the request and answered with an error.
    Query,
    /// The answer could not be turned into samples (text where a number belongs, missing column).
    Decode,
    /// The object the check names does not exist.
    NotFound,
    /// The remote service failed on its side (HTTP 5xx).
    Upstream,
    /// The remote service asked us to slow down (HTTP 429).
    RateLimited,
    /// The source contradicted itself: a list page that says more follow but holds nothing.
    Inconsistent,
    /// The answer was larger than the bound read from a source (an HTTP body, a reply): it
    /// was cut off while reading, never held whole.
    TooLarge,
    /// A bug in pulse-exporter: the check panicked. The check is marked failed and retried at
    /// its next interval; please report it.
    Internal,
}

impl Reason {
    /// Every reason, in label order; used to document and test the bounded set.
    pub const ALL: [Reason; 11] = [
        Reason::Timeout,
        Reason::Connect,
        Reason::Auth,
        Reason::Query,
        Reason::Decode,
        Reason::NotFound,
        Reason::Upstream,
        Reason::RateLimited,
        Reason::Inconsistent,
        Reason::TooLarge,
        Reason::Internal,
    ];

    /// The label value for this reason.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Timeout => "timeout",
            Reason::Connect => "connect",
            Reason::Auth => "auth",
            Reason::Query => "query",
            Reason::Decode => "decode",
            Reason::NotFound => "not_found",
            Reason::Upstream => "upstream",
            Reason::RateLimited => "rate_limited",
            Reason::Inconsistent => "inconsistent",
            Reason::TooLarge => "too_large",
            Reason::Internal => "internal",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed probe: a bounded reason plus a human message (already scrubbed of secrets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunError {
    reason: Reason,
    message: String,
}

impl RunError {
    /// A failure with the given reason; the message is scrubbed of every registered secret.
    pub fn new(reason: Reason, message: impl AsRef<str>) -> Self {
        RunError {
            reason,
            message: crate::secrets::scrub(message.as_ref()).into_owned(),
        }
    }

    /// The bounded reason, safe for labels.
    pub fn reason(&self) -> Reason {
        self.reason
    }

    /// The scrubbed message, for logs and humans.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason, self.message)
    }
}

impl std::error::Error for RunError {}
