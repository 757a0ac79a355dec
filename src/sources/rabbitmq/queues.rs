//! The queue check over the management API: every selected queue, per-vhost totals, dead
//! letters, capped at `max_queues` keeping the deepest.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use serde_json::Value as Json;
use tokio::time::Instant;

use super::management::Management;
use super::metrics::{
    flag, QUEUE_ACKED, QUEUE_CONSUMERS, QUEUE_HEAD_TIMESTAMP, QUEUE_INFO, QUEUE_MESSAGES,
    QUEUE_RATE, QUEUE_UTILISATION, VHOST_MESSAGES, VHOST_QUEUES,
};
use super::selection::Selection;
use crate::error::{ProbeError, Reason};
use crate::sample::Output;
use crate::sources::{Probe, ProbeFuture};
use crate::topn::Largest;

/// Columns asked of `/api/queues`: only what we publish, to keep big brokers' answers small.
const QUEUE_COLUMNS: &str = "name,vhost,state,type,messages_ready,messages_unacknowledged,consumers,\
consumer_utilisation,consumer_capacity,arguments,effective_policy_definition,head_message_timestamp,\
message_stats.publish_details.rate,message_stats.deliver_get_details.rate,message_stats.ack_details.rate,\
message_stats.ack";

/// Queues fetched per page of `/api/queues`.
const PAGE_SIZE: usize = 500;

pub(super) struct QueuesProbe {
    pub(super) source: String,
    pub(super) management: Arc<Management>,
    pub(super) selection: Arc<Selection>,
    pub(super) max_queues: usize,
}

fn num(v: &Json) -> Option<f64> {
    v.as_f64()
}

fn enc(s: &str) -> String {
    utf8_percent_encode(s, NON_ALPHANUMERIC).to_string()
}

/// What a run keeps while it pages through `/api/queues`: never the whole list. Memory is
/// bounded by `max_queues` (the deepest queues seen so far) plus one page, whatever the
/// broker holds.
struct Walk {
    /// Per-vhost (queues, ready, unacked) over every selected queue, capped or not.
    totals: BTreeMap<String, (f64, f64, f64)>,
    /// The deepest selected queues so far, at most `max_queues`.
    deepest: Largest<Json>,
    /// Queues dead-lettered into by the default exchange, by (vhost, queue).
    targets: HashSet<(String, String)>,
    /// Dead-letter exchanges named by some queue, by (vhost, exchange).
    exchanges: BTreeSet<(String, String)>,
    /// Series of the queues that fell out of `deepest`.
    dropped: u64,
}

impl QueuesProbe {
    /// Pages through `/api/queues`, folding each page into a [`Walk`].
    async fn walk(&self, deadline: Instant) -> Result<Walk, ProbeError> {
        let mut walk = Walk {
            totals: BTreeMap::new(),
            deepest: Largest::new(self.max_queues),
            targets: HashSet::new(),
            exchanges: BTreeSet::new(),
            dropped: 0,
        };
        let mut page = 1;
        loop {
            let mut body = self
                .management
                .get(
                    &format!(
                        "api/queues?page={page}&page_size={PAGE_SIZE}&columns={}",
                        enc(QUEUE_COLUMNS)
                    ),
                    deadline,
                )
                .await?;
            let items = match body["items"].take() {
                Json::Array(items) => items,
                _ => Vec::new(),
            };
            for q in items {
                self.fold(&mut walk, q);
            }
            let pages = body["page_count"].as_u64().unwrap_or(1);
            if page as u64 >= pages {
                return Ok(walk);
            }
            page += 1;
        }
    }

    /// Takes one queue of a page into the walk.
    fn fold(&self, walk: &mut Walk, q: Json) {
        let vhost = q["vhost"].as_str().unwrap_or("/");
        let args = &q["arguments"];
        let policy = &q["effective_policy_definition"];
        let dlx = args["x-dead-letter-exchange"]
            .as_str()
            .or(policy["dead-letter-exchange"].as_str());
        let dlrk = args["x-dead-letter-routing-key"]
            .as_str()
            .or(policy["dead-letter-routing-key"].as_str());
        match (dlx, dlrk) {
            // The default exchange routes by queue name.
            (Some(""), Some(rk)) => {
                walk.targets.insert((vhost.to_owned(), rk.to_owned()));
            }
            (Some(x), _) if !x.is_empty() => {
                walk.exchanges.insert((vhost.to_owned(), x.to_owned()));
            }
            _ => {}
        }
        if !self
            .selection
            .wants(vhost, q["name"].as_str().unwrap_or(""))
        {
            return;
        }
        let ready = num(&q["messages_ready"]).unwrap_or(0.0);
        let unacked = num(&q["messages_unacknowledged"]).unwrap_or(0.0);
        let t = walk.totals.entry(vhost.to_owned()).or_default();
        t.0 += 1.0;
        t.1 += ready;
        t.2 += unacked;
        // Keep the deepest queues when capping: they are the ones an SRE needs to see.
        if let Some(shallow) = walk.deepest.push(ready + unacked, q) {
            let mut scratch = Output::default();
            self.queue_samples(&shallow, &HashSet::new(), &mut scratch);
            walk.dropped += scratch.series() as u64;
        }
    }

    /// Adds the queues that dead-letter exchanges route to (their bindings) to `targets`.
    async fn dead_letter_targets(
        &self,
        walk: &mut Walk,
        deadline: Instant,
    ) -> Result<(), ProbeError> {
        for (vhost, exchange) in &walk.exchanges {
            let path = format!(
                "api/exchanges/{}/{}/bindings/source",
                enc(vhost),
                enc(exchange)
            );
            match self.management.get(&path, deadline).await {
                Ok(bindings) => {
                    for b in bindings.as_array().into_iter().flatten() {
                        if b["destination_type"] == "queue" {
                            if let Some(d) = b["destination"].as_str() {
                                walk.targets.insert((vhost.clone(), d.to_owned()));
                            }
                        }
                    }
                }
                // A dead-letter exchange that does not exist has no queues behind it.
                Err(e) if e.reason() == Reason::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl Probe for QueuesProbe {
    fn run(&self, deadline: Instant) -> ProbeFuture<'_> {
        Box::pin(async move {
            let mut walk = self.walk(deadline).await?;
            self.dead_letter_targets(&mut walk, deadline).await?;
            let mut out = Output::default();
            let source = self.source.as_str();
            for (vhost, (count, ready, unacked)) in &walk.totals {
                out.add(&VHOST_QUEUES, &[source, vhost], *count);
                out.add(&VHOST_MESSAGES, &[source, vhost, "ready"], *ready);
                out.add(&VHOST_MESSAGES, &[source, vhost, "unacked"], *unacked);
            }
            for q in walk.deepest.into_sorted() {
                self.queue_samples(&q, &walk.targets, &mut out);
            }
            out.dropped += walk.dropped;
            Ok(out)
        })
    }
}

impl QueuesProbe {
    fn queue_samples(&self, q: &Json, targets: &HashSet<(String, String)>, out: &mut Output) {
        let vhost = q["vhost"].as_str().unwrap_or("/");
        let name = q["name"].as_str().unwrap_or("");
        let dead = targets.contains(&(vhost.to_owned(), name.to_owned()))
            || self.selection.named_dead_letter(name);
        let base = [self.source.as_str(), vhost, name, flag(dead)];
        let with = |v: &'static str| -> [&str; 5] { [base[0], base[1], base[2], base[3], v] };
        if let Some(v) = num(&q["messages_ready"]) {
            out.add(&QUEUE_MESSAGES, &with("ready"), v);
        }
        if let Some(v) = num(&q["messages_unacknowledged"]) {
            out.add(&QUEUE_MESSAGES, &with("unacked"), v);
        }
        if let Some(v) = num(&q["consumers"]) {
            out.add(&QUEUE_CONSUMERS, &base, v);
        }
        if let Some(v) = num(&q["consumer_capacity"]).or_else(|| num(&q["consumer_utilisation"])) {
            out.add(&QUEUE_UTILISATION, &base, v);
        }
        for (field, op) in [
            ("publish_details", "publish"),
            ("deliver_get_details", "deliver"),
            ("ack_details", "ack"),
        ] {
            if let Some(v) = num(&q["message_stats"][field]["rate"]) {
                out.add(&QUEUE_RATE, &with(op), v);
            }
        }
        // The broker's own cumulative count: an exact "nothing was acknowledged in 15 minutes"
        // (the rates above are short averages that read 0 between the acks of slow jobs).
        if let Some(v) = num(&q["message_stats"]["ack"]) {
            out.add(&QUEUE_ACKED, &base, v);
        }
        // Publishers must set the AMQP timestamp property; the broker reports it (in seconds)
        // for the message at the head, the oldest one waiting. Absent on an empty queue.
        if let Some(v) = num(&q["head_message_timestamp"]).filter(|v| *v > 0.0) {
            out.add(&QUEUE_HEAD_TIMESTAMP, &base, v);
        }
        let state = q["state"].as_str().unwrap_or("unknown");
        let kind = q["type"].as_str().unwrap_or("classic");
        out.add(
            &QUEUE_INFO,
            &[base[0], base[1], base[2], base[3], state, kind],
            1.0,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A probe over `settings` (the queue selection of a source); nothing is requested.
    fn probe(settings: &str, max_queues: usize) -> QueuesProbe {
        let config: super::super::RabbitmqConfig = serde_yaml::from_str(settings).unwrap();
        QueuesProbe {
            source: "mq".into(),
            management: Arc::new(Management {
                base: url::Url::parse("http://127.0.0.1:9/").unwrap(),
                username: String::new(),
                password: String::new(),
                http: reqwest::Client::new(),
            }),
            selection: Arc::new(Selection::new(&config).unwrap()),
            max_queues,
        }
    }

    fn queue(vhost: &str, name: &str, ready: u64) -> Json {
        json!({"vhost": vhost, "name": name, "state": "running", "type": "classic",
               "messages_ready": ready, "messages_unacknowledged": 1, "consumers": 2})
    }

    fn walk(p: &QueuesProbe, queues: Vec<Json>) -> Walk {
        let mut walk = Walk {
            totals: BTreeMap::new(),
            deepest: Largest::new(p.max_queues),
            targets: HashSet::new(),
            exchanges: BTreeSet::new(),
            dropped: 0,
        };
        for q in queues {
            p.fold(&mut walk, q);
        }
        walk
    }

    fn names(walk: Walk) -> Vec<String> {
        walk.deepest
            .into_sorted()
            .iter()
            .map(|q| {
                format!(
                    "{}/{}",
                    q["vhost"].as_str().unwrap(),
                    q["name"].as_str().unwrap()
                )
            })
            .collect()
    }

    #[test]
    fn vhosts_include_and_exclude_select_queues_and_totals_count_only_those() {
        let p = probe(
            "{ management_url: 'http://x', vhosts: [prod], queues: { include: ['^jobs\\.'], exclude: ['\\.tmp$'] } }",
            10,
        );
        let w = walk(
            &p,
            vec![
                queue("prod", "jobs.ai", 5),
                queue("prod", "jobs.scratch.tmp", 50),
                queue("prod", "mail", 7),
                queue("staging", "jobs.ai", 9),
            ],
        );
        assert_eq!(w.totals.len(), 1);
        assert_eq!(w.totals["prod"], (1.0, 5.0, 1.0));
        assert_eq!(names(w), ["prod/jobs.ai"]);
    }

    #[test]
    fn past_max_queues_the_deepest_are_kept_and_the_rest_counted_as_dropped() {
        let p = probe("{ management_url: 'http://x' }", 2);
        let w = walk(
            &p,
            vec![
                queue("/", "a", 1),
                queue("/", "b", 30),
                queue("/", "c", 20),
                queue("/", "d", 2),
            ],
        );
        // Totals cover every selected queue, capped or not.
        assert_eq!(w.totals["/"], (4.0, 53.0, 4.0));
        // Each dropped queue would have published 2 message series, consumers and info.
        assert_eq!(w.dropped, 2 * 4);
        let mut kept = names(w);
        kept.sort();
        assert_eq!(kept, ["//b", "//c"]);
    }

    #[test]
    fn dead_letter_queues_are_found_by_arguments_policies_and_pattern() {
        let p = probe(
            "{ management_url: 'http://x', dead_letter_pattern: '\\.dlq$' }",
            10,
        );
        let mut with_args = queue("/", "jobs", 1);
        with_args["arguments"] =
            json!({"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "jobs.failed"});
        let mut with_policy = queue("/", "mail", 1);
        with_policy["effective_policy_definition"] = json!({"dead-letter-exchange": "dlx"});
        let w = walk(
            &p,
            vec![
                with_args,
                with_policy,
                queue("/", "jobs.failed", 3),
                queue("/", "mail.dlq", 4),
            ],
        );
        assert!(w
            .targets
            .contains(&("/".to_owned(), "jobs.failed".to_owned())));
        assert!(w.exchanges.contains(&("/".to_owned(), "dlx".to_owned())));
        let mut out = Output::default();
        for q in [
            queue("/", "jobs.failed", 3),
            queue("/", "mail.dlq", 4),
            queue("/", "jobs", 1),
        ] {
            p.queue_samples(&q, &w.targets, &mut out);
        }
        let dead = |name: &str| -> String {
            let fam = out
                .families
                .iter()
                .find(|f| f.name == "pulse_rabbitmq_queue_consumers")
                .unwrap();
            let s = fam
                .samples
                .iter()
                .find(|s| s.labels.iter().any(|(k, v)| k == "queue" && v == name))
                .unwrap();
            s.labels
                .iter()
                .find(|(k, _)| k == "dead_letter")
                .unwrap()
                .1
                .clone()
        };
        assert_eq!(
            dead("jobs.failed"),
            "true",
            "routed to by the default exchange"
        );
        assert_eq!(dead("mail.dlq"), "true", "named by the pattern");
        assert_eq!(dead("jobs"), "false");
    }

    #[test]
    fn missing_or_odd_fields_publish_what_is_there_and_never_panic() {
        let p = probe("{ management_url: 'http://x' }", 10);
        let mut out = Output::default();
        // No counts, a text where a number belongs, no state or type: an info line only,
        // with the defaults, and no message series.
        let q = json!({"vhost": "/", "name": "odd", "messages_ready": "many", "head_message_timestamp": 0});
        p.queue_samples(&q, &HashSet::new(), &mut out);
        assert_eq!(out.value("pulse_rabbitmq_queue_messages", ""), None);
        assert_eq!(
            out.value("pulse_rabbitmq_queue_head_message_timestamp_seconds", ""),
            None
        );
        assert_eq!(out.value("pulse_rabbitmq_queue_info", "unknown"), Some(1.0));
        // A queue without a name or vhost in a page still folds (into the default vhost).
        let w = walk(&p, vec![json!({"messages_ready": 2})]);
        assert_eq!(w.totals["/"], (1.0, 2.0, 0.0));
    }
}
