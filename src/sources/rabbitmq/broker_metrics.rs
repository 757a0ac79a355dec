//! The broker's own Prometheus endpoint (the `rabbitmq_prometheus` plugin, port 15692 by
//! default): per-queue consumers and acknowledgements, read where the management API no
//! longer gives them. RabbitMQ 4 deprecates the management statistics; with its collector
//! off (`management_agent.disable_metrics_collector`) `/api/queues` still counts messages but
//! says nothing of consumers or acknowledgements, which this endpoint keeps publishing.
//!
//! `/metrics/detailed` (RabbitMQ 3.10 and later) is asked for the two families and the
//! configured vhosts only; a broker without it (404) is read from `/metrics/per-object`,
//! whose queue series carry the same names without `detailed_`. Either answer is bounded by
//! [`MAX_HTTP_BODY_BYTES`](crate::sources::http_body::MAX_HTTP_BODY_BYTES).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::time::Instant;

use super::management::{enc, Management};
use crate::series::run_error::{Reason, RunError};

/// What the endpoint says of one queue.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(super) struct QueueCounts {
    /// Consumers attached (`queue_consumers`).
    pub(super) consumers: Option<f64>,
    /// Messages acknowledged by consumers since the queue started (`queue_messages_acked_total`).
    pub(super) acked: Option<f64>,
}

/// Per (vhost, queue), what one read gave.
pub(super) type Counts = HashMap<(String, String), QueueCounts>;

/// [`Management::what`] of the Prometheus endpoint.
pub(super) const PROMETHEUS_ENDPOINT: &str = "the broker's Prometheus endpoint";

/// The Prometheus endpoint of one source's broker.
pub(super) struct BrokerMetrics {
    /// The endpoint, e.g. `http://127.0.0.1:15692/`, asked as the management API is.
    pub(super) endpoint: Management,
    /// Vhosts to ask for (none: every vhost).
    pub(super) vhosts: Vec<String>,
    /// Set once `/metrics/detailed` answered 404: the per-object endpoint is read instead.
    pub(super) per_object: AtomicBool,
}

impl BrokerMetrics {
    /// Consumers and acknowledgements of every queue of the configured vhosts.
    pub(super) async fn queues(&self, deadline: Instant) -> Result<Counts, RunError> {
        let mut path =
            "metrics/detailed?family=queue_consumer_count&family=queue_delivery_metrics".to_owned();
        for v in &self.vhosts {
            path.push_str("&vhost=");
            path.push_str(&enc(v));
        }
        let text = self.exposition(&path, deadline).await?;
        Ok(parse(&text, &self.vhosts))
    }

    /// The streams of `vhost`, from the endpoint's `queue_info` series (their `queue_type`
    /// label): what the AMQP check cannot learn from a passive declare. `None` where the
    /// endpoint has no such family (it then says nothing of any queue's type).
    pub(super) async fn streams(
        &self,
        vhost: &str,
        deadline: Instant,
    ) -> Result<Option<HashSet<String>>, RunError> {
        // `queue_info` comes with the consumer counts' family (asked alone, 4.3.6 answers
        // none of it).
        let path = format!(
            "metrics/detailed?family=queue_consumer_count&vhost={}",
            enc(vhost)
        );
        let text = self.exposition(&path, deadline).await?;
        Ok(parse_streams(&text, vhost))
    }

    /// The exposition at `detailed` (a `/metrics/detailed?…` path), or, once that answered
    /// 404, at `/metrics/per-object` for good.
    async fn exposition(&self, detailed: &str, deadline: Instant) -> Result<String, RunError> {
        if !self.per_object.load(Ordering::Relaxed) {
            match self.endpoint.text(detailed, deadline).await {
                Err(e) if e.reason() == Reason::NotFound => {
                    self.per_object.store(true, Ordering::Relaxed);
                }
                answer => return answer,
            }
        }
        self.endpoint.text("metrics/per-object", deadline).await
    }
}

/// The streams of `vhost` in an exposition's `queue_info` series (`queue_type` is
/// `rabbit_stream_queue`); `None` when the exposition has no `queue_info` series at all.
pub(super) fn parse_streams(text: &str, vhost: &str) -> Option<HashSet<String>> {
    let mut info = false;
    let mut streams = HashSet::new();
    for line in text.lines() {
        if family_of(line) != Some("queue_info") {
            continue;
        }
        let Some((labels, _)) = series(line) else {
            continue;
        };
        info = true;
        let label = |name: &str| labels.iter().find(|(k, _)| k == name).map(|(_, v)| v);
        if label("vhost").is_some_and(|v| v == vhost)
            && label("queue_type").is_some_and(|t| t == "rabbit_stream_queue")
        {
            if let Some(q) = label("queue") {
                streams.insert(q.clone());
            }
        }
    }
    info.then_some(streams)
}

/// The queue series of an exposition, `detailed` or `per-object`, of the wanted vhosts (all
/// when none is named). A line that does not parse, a series without its labels and a value
/// that is not a finite number are left out: the rest still counts.
///
/// Read by hand, line by line: only two families and two labels are wanted, and the crates
/// that parse the whole format split label values on `,` and `=` without unescaping, which
/// queue names (`orders,eu`, `a"b`) break.
pub(super) fn parse(text: &str, vhosts: &[String]) -> Counts {
    let mut counts = Counts::new();
    for line in text.lines() {
        let field = match family_of(line) {
            Some("queue_consumers") => Field::Consumers,
            Some("queue_messages_acked_total") => Field::Acked,
            _ => continue,
        };
        let Some((labels, value)) = series(line) else {
            continue;
        };
        let label = |name: &str| labels.iter().find(|(k, _)| k == name).map(|(_, v)| v);
        let (Some(vhost), Some(queue)) = (label("vhost"), label("queue")) else {
            continue;
        };
        if !value.is_finite() || (!vhosts.is_empty() && !vhosts.iter().any(|v| v == vhost)) {
            continue;
        }
        let entry = counts.entry((vhost.clone(), queue.clone())).or_default();
        match field {
            Field::Consumers => entry.consumers = Some(value),
            Field::Acked => entry.acked = Some(value),
        }
    }
    counts
}

enum Field {
    Consumers,
    Acked,
}

/// The family of a series line without its endpoint's prefix: `queue_consumers` for both
/// `rabbitmq_detailed_queue_consumers{…}` and `rabbitmq_queue_consumers{…}`.
fn family_of(line: &str) -> Option<&str> {
    let name = line.split(['{', ' ']).next()?;
    name.strip_prefix("rabbitmq_detailed_")
        .or_else(|| name.strip_prefix("rabbitmq_"))
}

/// The labels (unescaped) and value of a line `name{k="v",…} value [timestamp]`.
fn series(line: &str) -> Option<(Vec<(String, String)>, f64)> {
    let open = line.find('{')?;
    let mut labels = Vec::new();
    let mut rest = &line[open + 1..];
    loop {
        rest = rest.trim_start_matches([' ', ',']);
        if let Some(after) = rest.strip_prefix('}') {
            rest = after;
            break;
        }
        let (name, after) = rest.split_once('=')?;
        let mut chars = after.strip_prefix('"')?.char_indices();
        let mut value = String::new();
        let end = loop {
            match chars.next()? {
                (i, '"') => break i,
                (_, '\\') => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    c => value.push(c),
                },
                (_, c) => value.push(c),
            }
        };
        labels.push((name.trim().to_owned(), value));
        rest = &after[1 + end + 1..];
    }
    let value = rest.split_whitespace().next()?;
    Some((labels, value.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As RabbitMQ 4.3.6 answered `/metrics/detailed?family=queue_consumer_count&family=
    /// queue_delivery_metrics&vhost=mx` here, trimmed, with one consumer and two acks.
    const DETAILED: &str = r#"# TYPE rabbitmq_detailed_queue_consumers gauge
# HELP rabbitmq_detailed_queue_consumers Consumers on a queue
rabbitmq_detailed_queue_consumers{vhost="mx",queue="q1"} 1
rabbitmq_detailed_queue_consumers{vhost="mx",queue="c1"} 0
# TYPE rabbitmq_detailed_queue_messages_acked_total counter
rabbitmq_detailed_queue_messages_acked_total{vhost="mx",queue="q1"} 2
rabbitmq_detailed_queue_messages_acked_total{vhost="mx",queue="c1"} 0
# TYPE rabbitmq_detailed_queue_get_total counter
rabbitmq_detailed_queue_get_total{vhost="mx",queue="q1"} 5
rabbitmq_build_info{rabbitmq_version="4.3.6"} 1
"#;

    /// As RabbitMQ 4.3.6 answered `family=queue_consumer_count&vhost=/` here (its
    /// `queue_info` lines), with a stream of the same name in another vhost.
    #[test]
    fn streams_are_read_from_queue_info_and_none_without_it() {
        let text = r#"# TYPE rabbitmq_detailed_queue_info gauge
rabbitmq_detailed_queue_info{vhost="/",queue="events",queue_type="rabbit_stream_queue",membership="leader"} 1
rabbitmq_detailed_queue_info{vhost="/",queue="work",queue_type="rabbit_quorum_queue",membership="leader"} 1
rabbitmq_detailed_queue_info{vhost="other",queue="work",queue_type="rabbit_stream_queue",membership="leader"} 1
rabbitmq_detailed_queue_info{vhost="/",queue="a\"b",queue_type="rabbit_stream_queue",membership="follower"} 1
"#;
        let streams = parse_streams(text, "/").unwrap();
        let mut names: Vec<&str> = streams.iter().map(String::as_str).collect();
        names.sort_unstable();
        assert_eq!(names, ["a\"b", "events"]);
        assert_eq!(
            parse_streams(DETAILED, "/"),
            None,
            "no queue_info: types unknown"
        );
        let per_object = "rabbitmq_queue_info{vhost=\"/\",queue=\"jobs\",queue_type=\"rabbit_classic_queue\"} 1\n";
        assert_eq!(parse_streams(per_object, "/"), Some(HashSet::new()));
    }

    fn key(v: &str, q: &str) -> (String, String) {
        (v.to_owned(), q.to_owned())
    }

    #[test]
    fn consumers_and_acks_are_read_per_queue_and_zero_stays_zero() {
        let c = parse(DETAILED, &[]);
        assert_eq!(
            c[&key("mx", "q1")],
            QueueCounts {
                consumers: Some(1.0),
                acked: Some(2.0)
            }
        );
        assert_eq!(
            c[&key("mx", "c1")],
            QueueCounts {
                consumers: Some(0.0),
                acked: Some(0.0)
            }
        );
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn the_per_object_names_read_the_same_and_other_vhosts_are_left_out() {
        let text = "# TYPE rabbitmq_queue_consumers gauge\n\
            rabbitmq_queue_consumers{vhost=\"mx\",queue=\"jobs\"} 3\n\
            rabbitmq_queue_consumers{vhost=\"other\",queue=\"jobs\"} 9\n\
            rabbitmq_queue_messages_acked_total{vhost=\"mx\",queue=\"jobs\"} 40\n";
        let c = parse(text, &["mx".to_owned()]);
        assert_eq!(c.len(), 1);
        assert_eq!(c[&key("mx", "jobs")].consumers, Some(3.0));
        assert_eq!(c[&key("mx", "jobs")].acked, Some(40.0));
    }

    #[test]
    fn a_bad_line_a_missing_label_or_a_nan_costs_only_itself() {
        let text = "rabbitmq_detailed_queue_consumers{vhost=\"mx\",queue=\"a\"} many\n\
            rabbitmq_detailed_queue_consumers{vhost=\"mx\",queue=\"unterminated} 3\n\
            rabbitmq_detailed_queue_consumers{vhost=\"mx\",queue=\"orders,eu=1}\"} 5\n\
            rabbitmq_detailed_queue_consumers{queue=\"nolabel\"} 1\n\
            rabbitmq_detailed_queue_consumers{vhost=\"mx\",queue=\"n\"} NaN\n\
            rabbitmq_detailed_queue_consumers{vhost=\"mx\",queue=\"we\\\"ird\"} 2\n\
            rabbitmq_detailed_queue_consumers{vhost=\"mx\",queue=\"b\"} 4\n";
        let c = parse(text, &[]);
        assert_eq!(c.get(&key("mx", "a")), None);
        assert_eq!(c.get(&key("mx", "n")), None);
        assert_eq!(c[&key("mx", "b")].consumers, Some(4.0));
        assert_eq!(c[&key("mx", "we\"ird")].consumers, Some(2.0));
        assert_eq!(c[&key("mx", "orders,eu=1}")].consumers, Some(5.0));
        assert_eq!(c.len(), 3);
    }

    #[test]
    fn an_empty_or_foreign_answer_reads_nothing() {
        assert!(parse("", &[]).is_empty());
        assert!(parse("<html>not metrics</html>\n", &[]).is_empty());
        assert!(parse("\u{0}\u{1}garbage{{{ 1\n", &[]).is_empty());
    }
}
