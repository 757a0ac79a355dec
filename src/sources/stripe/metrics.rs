//! The built-in metrics of a Stripe source: webhook endpoints, undelivered and abandoned
//! events, the events read and how far back the listing reaches.

use crate::series::metric::Metric;

/// The `account` label value: the connected account, or empty for the platform.
pub(super) fn account_label(account: Option<&str>) -> &str {
    account.unwrap_or_default()
}

/// The built-in metrics of a Stripe source.
pub const METRICS: &[Metric] = &[
    ENDPOINT_ENABLED,
    ENDPOINTS,
    UNDELIVERED,
    STUCK,
    OLDEST_UNDELIVERED,
    ABANDONED,
    OLDEST_ABANDONED,
    EVENTS,
    EVENTS_READ,
    EVENTS_ABANDONED,
    LOOKBACK,
    TRUNCATED,
];

pub(super) const ENDPOINT_ENABLED: Metric = Metric::gauge(
    "pulse_stripe_webhook_endpoint_enabled",
    "Whether the webhook endpoint is enabled (1) or disabled (0).",
    &["source", "account", "endpoint", "host"],
)
.doc("1 if the webhook endpoint is enabled, 0 if disabled. `endpoint` is its id, `host` its URL's host only.")
.changes("to 1 when the endpoint is enabled again", "to 0 when Stripe or someone disables it; the series goes when the endpoint is deleted");
pub(super) const ENDPOINTS: Metric = Metric::gauge(
    "pulse_stripe_webhook_endpoints",
    "Webhook endpoints of the account by status (enabled, disabled): a deleted endpoint shows as a drop.",
    &["source", "account", "status"],
)
.doc("Webhook endpoints by `status` (`enabled`, `disabled`; both always present).")
.changes("when an endpoint is added, or changes to that status", "when one is deleted (only here, as a drop) or changes away from that status");
pub(super) const UNDELIVERED: Metric = Metric::gauge(
    "pulse_stripe_undelivered_events",
    "Events not yet delivered to every webhook endpoint that Stripe still retries, by type: in flight or being retried.",
    &["source", "account", "event_type"],
)
.doc("Events Stripe still retries that are not yet delivered to every webhook endpoint, by type: in flight or being retried. Above 0 on any busy account; page on the stuck count. Absent for a type with none.")
.changes("when a run reads a new event with `pending_webhooks` above 0", "when a run sees the event delivered (the listing of new events shows `pending_webhooks` 0, or the re-check no longer lists it), or when Stripe gives up on it (it moves to abandoned)");
pub(super) const STUCK: Metric = Metric::gauge(
    "pulse_stripe_stuck_events",
    "Events Stripe still retries that are undelivered for longer than stuck_after, by type.",
    &["source", "account", "event_type"],
)
.doc("Of those, the ones created more than `stuck_after` (default 15m) ago, by type; absent when there are none. What PulseStripeWebhookDeliveriesStuck pages on.")
.changes("when an undelivered event passes `stuck_after`", "when it is delivered, or Stripe gives up on it (it moves to abandoned)");
pub(super) const OLDEST_UNDELIVERED: Metric = Metric::gauge(
    "pulse_stripe_oldest_undelivered_event_timestamp_seconds",
    "Creation time of the oldest event Stripe still retries that is not yet delivered to every webhook endpoint.",
    &["source", "account"],
)
.doc(r#"Creation time of the oldest event Stripe still retries that is undelivered; absent when there is none. An upper bound while `listing="undelivered_events"` is truncated."#)
.changes("when the oldest is delivered or given up (the next oldest is newer)", "when an older undelivered event is found (after a restart, as the window is read)");
pub(super) const ABANDONED: Metric = Metric::gauge(
    "pulse_stripe_abandoned_events",
    "Events Stripe stopped retrying that never reached every webhook endpoint, by type: shown until resent, acknowledged or 30 days old.",
    &["source", "account", "event_type"],
)
.doc("Events Stripe stopped retrying that never reached every webhook endpoint and are not acknowledged, by type; absent when there are none. Kept whatever the lookback, for as long as Stripe lists events (30 days). What PulseStripeWebhookEventsAbandoned pages on.")
.changes("when an undelivered event passes `retry_horizon`, or an endpoint enabled when it was created is seen disabled or deleted; after a restart, at the first run (its re-check covers Stripe's 30 days)", "when it is delivered after all (resent), acknowledged (`acknowledged_events`, `acknowledged_before`, on reload), or 30 days old");
pub(super) const OLDEST_ABANDONED: Metric = Metric::gauge(
    "pulse_stripe_oldest_abandoned_event_timestamp_seconds",
    "Creation time of the oldest abandoned event that is not acknowledged.",
    &["source", "account"],
)
.doc("Creation time of the oldest abandoned event that is not acknowledged; absent when there is none.")
.changes("when the oldest is resent or acknowledged", "when an older one is abandoned or found");
pub(super) const EVENTS: Metric = Metric::gauge(
    "pulse_stripe_events",
    "Events created in the lookback window, delivered or not (to the minute).",
    &["source", "account"],
)
.doc(r#"Events created in the lookback window, delivered or not, counted to the minute. A lower bound while `listing="events"` is truncated."#)
.changes("as events are created, and as the runs after a restart or a burst read the rest of the window", "as events leave the window (to the minute)");
pub(super) const EVENTS_READ: Metric = Metric::counter(
    "pulse_stripe_events_read_total",
    "Events created since the exporter started, by type, each counted once: the increase over an hour is that hour's events.",
    &["source", "account", "event_type"],
)
.doc("Events created since the exporter's first listing, by type, each counted once (older events, read at a start, are not counted: they would show as a burst). `increase(…[1h])` is the hour's events of a type: payments succeeded against failed for PulseStripePaymentsFailing and the `payments` business signal. The four payment outcomes (`payment_intent.succeeded`, `payment_intent.payment_failed`, `invoice.paid`, `invoice.payment_failed`) are always present; other types appear when first read.")
.changes("as events of the type are created and read", "only to 0 at a restart");
pub(super) const EVENTS_ABANDONED: Metric = Metric::counter(
    "pulse_stripe_events_abandoned_total",
    "Events created since the exporter started that Stripe gave up delivering to every endpoint, each counted once.",
    &["source", "account"],
)
.doc("Events created since the exporter's first listing that Stripe stopped retrying before every webhook endpoint had them (past `retry_horizon`, or an endpoint disabled or deleted), each counted once, when it is given up; an acknowledgement or a later resend does not uncount it. Against `pulse_stripe_events_read_total`, what the delivery objective counts (`delivery_objective:`, docs/objectives.md).")
.changes("as events are given up", "only to 0 at a restart");
pub(super) const LOOKBACK: Metric = Metric::gauge(
    "pulse_stripe_lookback_seconds",
    "The lookback window the event counts cover.",
    &["source", "account"],
)
.doc("The window the event counts cover.")
.changes("with the config", "with the config");
pub(super) const TRUNCATED: Metric = Metric::gauge(
    "pulse_stripe_listing_truncated",
    "1 while a listing is not read whole (page cap, or the window after a restart): counts are lower bounds and the oldest time an upper bound.",
    &["source", "account", "listing"],
)
.doc("1 while a listing is not read whole; counts are then lower bounds. `events`: part of the window unread (after a restart, or more events per run than `max_pages` allows). `undelivered_events`: the re-check of undelivered events has not yet covered Stripe's 30 days since the start, did not reach its oldest this run, or more than 100,000 events are undelivered. `webhook_endpoints`: more endpoints than `max_pages` pages.")
.changes("to 1 at a start, or when a listing is cut", "to 0 once later runs have finished every cut listing, each gap in the order it was opened");
