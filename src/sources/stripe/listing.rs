//! What the event listings ask Stripe for and what they return: the event fields read, the
//! three sorts of listing a run makes (new events, gaps, the re-check), and the rules that
//! decide when Stripe has given up on an event. The log ([`super::log`]) plans and applies
//! them; the events check ([`super::events`]) sends them.

use std::collections::HashSet;

use serde::Deserialize;
use serde_json::Value as Json;

use crate::series::run_error::RunError;

/// Seconds within which Stripe may list an event later than its creation time: events newer
/// than this at a listing are read again by the next one.
pub const OVERLAP: i64 = 60;

/// The fields of a Stripe event this check reads.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Event {
    /// `evt_…`.
    pub id: String,
    /// Creation time, Unix seconds.
    pub created: i64,
    /// Event type, such as `invoice.paid`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Webhook endpoints the event has not been delivered to yet.
    pub pending_webhooks: u64,
}

/// Reads the events of a page; an item that is not a Stripe event is a `decode` failure.
pub(super) fn parse_events(items: Vec<Json>) -> Result<Vec<Event>, RunError> {
    super::api::parse_items("v1/events", "a Stripe event", items)
}

/// The listing of new events a run makes.
#[derive(Debug, Clone, PartialEq)]
pub enum Top {
    /// Events newer than this one (`ending_before`), read oldest first.
    Newer(String),
    /// Events created at or after this time (`created[gte]`), read newest first.
    Since(i64),
}

/// The continuation of a gap: `created[gte]` and `starting_after`.
#[derive(Debug, PartialEq)]
pub struct GapCursor {
    /// `created[gte]`.
    pub floor: i64,
    /// `starting_after`.
    pub after: String,
}

/// The re-check listing of undelivered events.
#[derive(Debug, Clone, PartialEq)]
pub struct Recheck {
    /// `created[gte]`.
    pub floor: i64,
    /// `created[lte]`, continuing a re-check the page cap stopped.
    pub below: Option<i64>,
    /// The floor is the start of Stripe's retention: finishing it finds every undelivered
    /// event Stripe still lists.
    pub whole_retention: bool,
}

/// When Stripe gives up on an undelivered event.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GiveUp {
    /// Events created at or before this time are past the retry horizon.
    pub horizon: i64,
    /// Events created at or before this time were due at an endpoint since disabled or
    /// deleted (the last time it was seen enabled), if any.
    pub endpoint_stopped: Option<i64>,
}

/// Abandoned events an operator has dealt with (`acknowledged_*` in the config).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Acknowledged {
    /// Abandoned events created at or before this time.
    pub before: Option<i64>,
    /// Abandoned events by id.
    pub events: HashSet<String>,
}

impl Acknowledged {
    pub(super) fn covers(&self, id: &str, created: i64) -> bool {
        self.before.is_some_and(|b| created <= b) || self.events.contains(id)
    }
}

/// Undelivered events of one type: retried, of those stuck, and abandoned.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct ByType {
    /// Still retried by Stripe.
    pub retried: u64,
    /// Retried and undelivered for longer than `stuck_after`.
    pub stuck: u64,
    /// Given up by Stripe, not acknowledged.
    pub abandoned: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::series::run_error::Reason;

    #[test]
    fn items_that_are_not_events_are_a_decode_failure() {
        let good = serde_json::json!({"id": "evt_1", "object": "event", "created": 1, "type": "x", "pending_webhooks": 0, "livemode": false});
        assert_eq!(parse_events(vec![good]).unwrap()[0].id, "evt_1");
        let bad = serde_json::json!({"id": "evt_1", "created": "yesterday", "type": "x", "pending_webhooks": 0});
        let e = parse_events(vec![bad]).unwrap_err();
        assert_eq!(e.reason(), Reason::Decode);
        assert!(e.to_string().contains("not a Stripe event"), "{e}");
    }
}
