//! The queue and vhost metrics of a RabbitMQ source (the node metrics are the health
//! probe's); the kind's whole table is `super::METRICS`.

use crate::series::metric::Metric;

pub(super) const QUEUE_MESSAGES: Metric = Metric::gauge(
    "pulse_rabbitmq_queue_messages",
    "Messages in the queue: ready for delivery, or delivered and not yet acknowledged.",
    &["source", "vhost", "queue", "dead_letter", "state"],
)
.doc("Messages `ready` for delivery and `unacked` (delivered, not acknowledged).")
.doc_labels("queue labels, `state`");
pub(super) const QUEUE_CONSUMERS: Metric = Metric::gauge(
    "pulse_rabbitmq_queue_consumers",
    "Consumers attached to the queue.",
    &["source", "vhost", "queue", "dead_letter"],
)
.doc("Consumers attached.")
.doc_labels("queue labels");
pub(super) const QUEUE_UTILISATION: Metric = Metric::gauge(
    "pulse_rabbitmq_queue_consumer_utilisation",
    "Share of time the queue could deliver to its consumers immediately (0 to 1), when the broker reports it.",
    &["source", "vhost", "queue", "dead_letter"],
)
.doc("Share of time the queue could deliver to consumers at once (0 to 1), when reported.")
.doc_labels("queue labels");
pub(super) const QUEUE_RATE: Metric = Metric::gauge(
    "pulse_rabbitmq_queue_message_rate",
    "Messages per second through the queue, by operation, as the broker averages them.",
    &["source", "vhost", "queue", "dead_letter", "op"],
)
.doc("Messages per second by `op` (`publish`, `deliver`, `ack`), as the broker averages them, when reported.")
.doc_labels("queue labels, `op`");
pub(super) const QUEUE_ACKED: Metric = Metric::counter(
    "pulse_rabbitmq_queue_messages_acked_total",
    "Messages acknowledged by the queue's consumers, as the broker counts them.",
    &["source", "vhost", "queue", "dead_letter"],
)
.doc("Messages acknowledged by consumers, as the broker counts them (`message_stats.ack`); absent until the first ack.")
.doc_labels("queue labels");
pub(super) const QUEUE_HEAD_TIMESTAMP: Metric = Metric::gauge(
    "pulse_rabbitmq_queue_head_message_timestamp_seconds",
    "Timestamp property of the oldest ready message (the queue's head), as unix seconds; absent when the queue is empty or publishers set no timestamp.",
    &["source", "vhost", "queue", "dead_letter"],
)
.doc("The AMQP `timestamp` property of the oldest ready message (the head), in unix seconds; absent for an empty queue or when publishers set no timestamp (classic queues report it).")
.doc_labels("queue labels");
pub(super) const QUEUE_DRAIN: Metric = Metric::gauge(
    "pulse_rabbitmq_queue_drain_seconds",
    "Seconds the queue's ready messages need at the acknowledgement rate of the last 5 minutes; with messages and no acknowledgements, seconds since it last drained (acknowledged or was empty).",
    &["source", "vhost", "queue", "dead_letter"],
)
.doc("Seconds the ready messages need at the acknowledgement rate of the last 5 minutes; a queue with messages and no acknowledgements in that time reports the seconds since it last acknowledged one or was empty, so it grows like an age (never `+Inf`). Absent when nothing waits and nothing is acknowledged, until two runs have read the queue, where the broker reports no acknowledgements, and for streams (a stream's messages are what it retains, read or not). The wait signal of quorum queues, which report no head-message timestamp (PulseQueueDrainTooSlow).")
.doc_labels("queue labels");
pub(super) const STREAM_LAG: Metric = Metric::gauge(
    "pulse_rabbitmq_stream_consumer_lag_messages",
    "Messages between the stream's committed tail and the offset of its furthest-behind consumer over the stream protocol.",
    &["source", "vhost", "queue", "dead_letter"],
)
.doc("For a stream, the offset lag of its furthest-behind consumer over the stream protocol: messages committed to the stream it has not read yet (`/api/stream/consumers`, the `rabbitmq_stream_management` plugin). A stream's wait signal, as the drain time is a queue's. Absent where the stream has no stream-protocol consumer (consumers over AMQP 0-9-1 are not listed) or the plugin is off.")
.doc_labels("queue labels");
pub(super) const QUEUE_INFO: Metric = Metric::gauge(
    "pulse_rabbitmq_queue_info",
    "Always 1; the queue's state and type as labels.",
    &["source", "vhost", "queue", "dead_letter", "state", "type"],
)
.doc("Always 1; queue state (`running`, `idle`, `flow`, `down`, …) and type (`classic`, `quorum`, `stream`).")
.doc_labels("queue labels, `state`, `type`");
pub(super) const VHOST_QUEUES: Metric = Metric::gauge(
    "pulse_rabbitmq_vhost_queues",
    "Queues selected in the vhost (before the max_queues cap).",
    &["source", "vhost"],
)
.doc("Selected queues per vhost, counted before the `max_queues` cap.");
pub(super) const VHOST_MESSAGES: Metric = Metric::gauge(
    "pulse_rabbitmq_vhost_messages",
    "Messages in the vhost's selected queues, by state.",
    &["source", "vhost", "state"],
)
.doc("Messages in the vhost's selected queues, before the cap.");
/// `"true"` or `"false"`, for the `dead_letter` label.
pub(super) fn flag(b: bool) -> &'static str {
    if b {
        "true"
    } else {
        "false"
    }
}
