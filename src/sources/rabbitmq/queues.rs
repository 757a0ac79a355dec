//! The queue check over the management API: every selected queue, per-vhost totals, dead
//! letters, capped at `max_queues` keeping the deepest.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::Value as Json;
use tokio::time::Instant;

use super::broker_metrics::{BrokerMetrics, Counts, QueueCounts};
use super::drain::Drains;
use super::management::{enc, Management};
use super::metrics::{
    flag, QUEUE_ACKED, QUEUE_CONSUMERS, QUEUE_DRAIN, QUEUE_HEAD_TIMESTAMP, QUEUE_INFO,
    QUEUE_MESSAGES, QUEUE_RATE, QUEUE_UTILISATION, STREAM_LAG, VHOST_MESSAGES, VHOST_QUEUES,
};
use super::selection::Selection;
use super::stream_lag::{StreamKey, StreamLag};
use crate::series::run_error::{Reason, RunError};
use crate::series::sample::Output;
use crate::series::topn::Largest;
use crate::sources::{RunFuture, Runnable};

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
    /// The broker's Prometheus endpoint, read for what the management API leaves out.
    pub(super) broker_metrics: Option<Arc<BrokerMetrics>>,
    /// Whether the last read of that endpoint failed (logged once per failing spell).
    pub(super) endpoint_failing: AtomicBool,
    /// Each kept queue's acknowledgement history, for its drain time.
    pub(super) drain: Mutex<Drains>,
    /// Where the streams' consumer lag is read.
    pub(super) stream_lag: StreamLag,
}

fn num(v: &Json) -> Option<f64> {
    v.as_f64()
}

/// A queue's (vhost, name), as the listing gives them.
fn key_of(q: &Json) -> (String, String) {
    (
        q["vhost"].as_str().unwrap_or("/").to_owned(),
        q["name"].as_str().unwrap_or("").to_owned(),
    )
}

/// The acknowledgements a queue has seen: the management API's count, or the Prometheus
/// endpoint's; 0 where the management API collects statistics for the queue (it lists its
/// consumers) and has counted none yet, as it leaves the count out until the first.
fn acked(q: &Json, known: QueueCounts) -> Option<f64> {
    num(&q["message_stats"]["ack"])
        .or(known.acked)
        .or_else(|| q.get("consumers").map(|_| 0.0))
}

/// What a run keeps while it pages through `/api/queues`: never the whole list. Memory is
/// bounded by `max_queues` (the deepest queues seen so far) plus one page, whatever the
/// broker holds.
struct Walk {
    /// Per-vhost totals over every selected queue, capped or not.
    totals: BTreeMap<String, Totals>,
    /// The deepest selected queues so far, at most `max_queues`.
    deepest: Largest<Json>,
    /// Queues dead-lettered into by the default exchange, by (vhost, queue).
    targets: HashSet<(String, String)>,
    /// Dead-letter exchanges named by some queue, by (vhost, exchange).
    exchanges: BTreeSet<(String, String)>,
    /// Series of the queues that fell out of `deepest`.
    dropped: u64,
}

impl Walk {
    fn new(max_queues: usize) -> Walk {
        Walk {
            totals: BTreeMap::new(),
            deepest: Largest::new(max_queues),
            targets: HashSet::new(),
            exchanges: BTreeSet::new(),
            dropped: 0,
        }
    }
}

/// One vhost's selected queues and their messages. A count is `None` once a queue did not
/// report it (a broker that answers no totals, a queue that is down): a total that leaves
/// messages out is not published, rather than published too low.
struct Totals {
    queues: f64,
    ready: Option<f64>,
    unacked: Option<f64>,
}

impl Default for Totals {
    fn default() -> Self {
        Totals {
            queues: 0.0,
            ready: Some(0.0),
            unacked: Some(0.0),
        }
    }
}

impl Totals {
    fn add(&mut self, ready: Option<f64>, unacked: Option<f64>) {
        self.queues += 1.0;
        self.ready = self.ready.zip(ready).map(|(a, b)| a + b);
        self.unacked = self.unacked.zip(unacked).map(|(a, b)| a + b);
    }
}

impl QueuesProbe {
    /// Pages through `/api/queues`, folding each page into a [`Walk`].
    async fn walk(&self, deadline: Instant) -> Result<Walk, RunError> {
        let mut walk = Walk::new(self.max_queues);
        let mut page = 1;
        loop {
            let mut body = self
                .management
                .get(
                    // Queue totals are asked for whatever the broker's settings: with its
                    // statistics off it answers the message counts only when asked.
                    &format!(
                        "api/queues?page={page}&page_size={PAGE_SIZE}&enable_queue_totals=true&columns={}",
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
        let ready = num(&q["messages_ready"]);
        let unacked = num(&q["messages_unacknowledged"]);
        walk.totals
            .entry(vhost.to_owned())
            .or_default()
            .add(ready, unacked);
        // Keep the deepest queues when capping: they are the ones an SRE needs to see.
        let depth = ready.unwrap_or(0.0) + unacked.unwrap_or(0.0);
        if let Some(shallow) = walk.deepest.push(depth, q) {
            let mut scratch = Output::default();
            self.queue_samples(
                &shallow,
                QueueCounts::default(),
                &HashSet::new(),
                &mut scratch,
            );
            walk.dropped += scratch.series() as u64;
        }
    }

    /// Adds the queues that dead-letter exchanges route to (their bindings) to `targets`.
    async fn dead_letter_targets(
        &self,
        walk: &mut Walk,
        deadline: Instant,
    ) -> Result<(), RunError> {
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

impl QueuesProbe {
    /// What the broker's Prometheus endpoint says of the queues, when some kept queue lacks
    /// its consumers (the management statistics are off) and `prometheus_url` is set. A
    /// failing endpoint costs those series only, with a warning once per failing spell: the
    /// depths the management API gave are still published.
    async fn broker_counts(&self, walk: &Walk, deadline: Instant) -> Counts {
        let Some(endpoint) = &self.broker_metrics else {
            return Counts::new();
        };
        if walk.deepest.iter().all(|q| q.get("consumers").is_some()) {
            return Counts::new();
        }
        match endpoint.queues(deadline).await {
            Ok(counts) => {
                if self.endpoint_failing.swap(false, Ordering::Relaxed) {
                    tracing::info!(source = %self.source, event = "rabbitmq.prometheus_endpoint", "the broker's Prometheus endpoint answers again: consumers and acknowledgements are read from it");
                }
                counts
            }
            Err(e) => {
                if !self.endpoint_failing.swap(true, Ordering::Relaxed) {
                    tracing::warn!(source = %self.source, event = "rabbitmq.prometheus_endpoint", reason = e.reason().as_str(), error = %e, "the broker's Prometheus endpoint (prometheus_url) failed: per-queue consumers and acknowledgements are absent while the management statistics are off; check that the rabbitmq_prometheus plugin is enabled and listens there");
                }
                Counts::new()
            }
        }
    }
}

impl Runnable for QueuesProbe {
    fn run(&self, deadline: Instant) -> RunFuture<'_> {
        Box::pin(async move {
            let mut walk = self.walk(deadline).await?;
            self.dead_letter_targets(&mut walk, deadline).await?;
            let counts = self.broker_counts(&walk, deadline).await;
            let streams: Vec<(StreamKey, bool)> = walk
                .deepest
                .iter()
                .filter(|q| q["type"] == "stream")
                .map(|q| {
                    let key = key_of(q);
                    let dead = self.dead_letter(&key.0, &key.1, &walk.targets);
                    (key, dead)
                })
                .collect();
            let keys = streams.iter().map(|(k, _)| k.clone()).collect();
            let lags = self
                .stream_lag
                .read(&self.source, &self.management, &keys, deadline)
                .await;
            let mut out = self.samples(walk, &counts, Instant::now());
            for (key, dead) in &streams {
                if let Some(lag) = lags.get(key) {
                    let labels = [self.source.as_str(), &key.0, &key.1, flag(*dead)];
                    out.add(&STREAM_LAG, &labels, *lag);
                }
            }
            Ok(out)
        })
    }
}

impl QueuesProbe {
    /// A probe of the source `mq` over `settings` (its queue selection) that requests
    /// nothing: for the tests that feed it pages.
    #[cfg(test)]
    pub(super) fn unconnected(settings: &str, max_queues: usize) -> QueuesProbe {
        let config: super::RabbitmqConfig = serde_yaml::from_str(settings).unwrap();
        QueuesProbe {
            source: "mq".into(),
            management: Arc::new(Management {
                what: super::management::MANAGEMENT_API,
                base: url::Url::parse("http://127.0.0.1:9/").unwrap(),
                username: String::new(),
                password: String::new(),
                http: reqwest::Client::new(),
            }),
            selection: Arc::new(Selection::new(&config).unwrap()),
            max_queues,
            broker_metrics: None,
            endpoint_failing: AtomicBool::new(false),
            drain: Mutex::default(),
            stream_lag: StreamLag::default(),
        }
    }

    /// The samples of one page of `/api/queues` alone (no dead-letter bindings looked up): the
    /// fixtures' way in.
    #[cfg(test)]
    pub(super) fn fold_page(&self, page: &Json) -> Output {
        let mut walk = Walk::new(self.max_queues);
        for q in page["items"].as_array().into_iter().flatten() {
            self.fold(&mut walk, q.clone());
        }
        self.samples(walk, &Counts::new(), Instant::now())
    }

    /// The samples of a finished walk: per-vhost totals, then the kept queues, with what the
    /// broker's Prometheus endpoint gave where the management API was silent.
    fn samples(&self, walk: Walk, counts: &Counts, now: Instant) -> Output {
        let mut out = Output::default();
        let source = self.source.as_str();
        for (vhost, t) in &walk.totals {
            out.add(&VHOST_QUEUES, &[source, vhost], t.queues);
            for (state, n) in [("ready", t.ready), ("unacked", t.unacked)] {
                if let Some(n) = n {
                    out.add(&VHOST_MESSAGES, &[source, vhost, state], n);
                }
            }
        }
        let mut drains = self.drain.lock().unwrap_or_else(|p| p.into_inner());
        let mut seen = HashSet::new();
        for q in walk.deepest.into_sorted() {
            let key = key_of(&q);
            let known = counts.get(&key).copied().unwrap_or_default();
            self.queue_samples(&q, known, &walk.targets, &mut out);
            // A stream is a log: its "ready" messages are all it retains, read or not, so
            // they say nothing of the work waiting; its wait is its consumers' offset lag.
            let ready = match q["type"].as_str() {
                Some("stream") => None,
                _ => num(&q["messages_ready"]),
            };
            let drain = drains.observe(key.clone(), now, ready, acked(&q, known));
            if let Some(seconds) = drain {
                let dead = self.dead_letter(&key.0, &key.1, &walk.targets);
                out.add(&QUEUE_DRAIN, &[source, &key.0, &key.1, flag(dead)], seconds);
            }
            seen.insert(key);
        }
        drains.retain(&seen);
        out.dropped += walk.dropped;
        out
    }

    /// Whether the queue is a dead-letter queue: routed to by another's dead-lettering, or
    /// named by `dead_letter_pattern`.
    fn dead_letter(&self, vhost: &str, name: &str, targets: &HashSet<(String, String)>) -> bool {
        targets.contains(&(vhost.to_owned(), name.to_owned()))
            || self.selection.named_dead_letter(name)
    }

    fn queue_samples(
        &self,
        q: &Json,
        known: QueueCounts,
        targets: &HashSet<(String, String)>,
        out: &mut Output,
    ) {
        let vhost = q["vhost"].as_str().unwrap_or("/");
        let name = q["name"].as_str().unwrap_or("");
        let dead = self.dead_letter(vhost, name, targets);
        let base = [self.source.as_str(), vhost, name, flag(dead)];
        let with = |v: &'static str| -> [&str; 5] { [base[0], base[1], base[2], base[3], v] };
        if let Some(v) = num(&q["messages_ready"]) {
            out.add(&QUEUE_MESSAGES, &with("ready"), v);
        }
        if let Some(v) = num(&q["messages_unacknowledged"]) {
            out.add(&QUEUE_MESSAGES, &with("unacked"), v);
        }
        let kind = q["type"].as_str().unwrap_or("classic");
        // A queue read over AMQP has its consumers from there; a stream has not (its passive
        // declare answers 0: the AMQP check skips it).
        if let Some(v) = num(&q["consumers"])
            .or(known.consumers)
            .filter(|_| kind == "stream" || !self.selection.read_over_amqp(vhost, name))
        {
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
        if let Some(v) = num(&q["message_stats"]["ack"]).or(known.acked) {
            out.add(&QUEUE_ACKED, &base, v);
        }
        // Publishers must set the AMQP timestamp property; the broker reports it (in seconds)
        // for the message at the head, the oldest one waiting. Absent on an empty queue.
        if let Some(v) = num(&q["head_message_timestamp"]).filter(|v| *v > 0.0) {
            out.add(&QUEUE_HEAD_TIMESTAMP, &base, v);
        }
        let state = q["state"].as_str().unwrap_or("unknown");
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
    use std::time::Duration;

    fn probe(settings: &str, max_queues: usize) -> QueuesProbe {
        QueuesProbe::unconnected(settings, max_queues)
    }

    fn queue(vhost: &str, name: &str, ready: u64) -> Json {
        json!({"vhost": vhost, "name": name, "state": "running", "type": "classic",
               "messages_ready": ready, "messages_unacknowledged": 1, "consumers": 2})
    }

    fn walk(p: &QueuesProbe, queues: Vec<Json>) -> Walk {
        let mut walk = Walk::new(p.max_queues);
        for q in queues {
            p.fold(&mut walk, q);
        }
        walk
    }

    fn totals(w: &Walk, vhost: &str) -> (f64, Option<f64>, Option<f64>) {
        let t = &w.totals[vhost];
        (t.queues, t.ready, t.unacked)
    }

    /// A broker with statistics off that answered no totals, or a queue that is down: the
    /// vhost's message totals are unknown, never the sum of what was reported.
    #[test]
    fn a_queue_without_counts_leaves_its_vhost_totals_unknown_not_low() {
        let p = probe("{ management_url: 'http://x' }", 10);
        let blind = json!({"vhost": "/", "name": "jobs", "state": "live", "type": "classic"});
        let w = walk(&p, vec![queue("/", "mail", 100), blind, queue("b", "x", 1)]);
        assert_eq!(totals(&w, "/"), (2.0, None, None));
        assert_eq!(totals(&w, "b"), (1.0, Some(1.0), Some(1.0)));
        // The blind queue publishes its info and nothing it was not told.
        let mut out = Output::default();
        let jobs = w
            .deepest
            .into_sorted()
            .into_iter()
            .find(|q| q["name"] == "jobs");
        p.queue_samples(
            &jobs.unwrap(),
            QueueCounts::default(),
            &HashSet::new(),
            &mut out,
        );
        let names: Vec<&str> = out.families.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["pulse_rabbitmq_queue_info"]);
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
        assert_eq!(totals(&w, "prod"), (1.0, Some(5.0), Some(1.0)));
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
        assert_eq!(totals(&w, "/"), (4.0, Some(53.0), Some(4.0)));
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
            p.queue_samples(&q, QueueCounts::default(), &w.targets, &mut out);
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

    /// A queue named in `amqp_queues` has its consumers from the AMQP check, but a stream,
    /// which that check skips, keeps the management API's.
    #[test]
    fn a_stream_read_over_amqp_keeps_its_consumers_from_the_api() {
        let p = probe(
            "{ management_url: 'http://x', amqp_url: 'amqp://h/%2f', amqp_queues: [work, events] }",
            10,
        );
        let mut out = Output::default();
        let mut stream = queue("/", "events", 5);
        stream["type"] = json!("stream");
        for q in [queue("/", "work", 1), stream, queue("/", "other", 1)] {
            p.queue_samples(&q, QueueCounts::default(), &HashSet::new(), &mut out);
        }
        let consumers: Vec<String> = out
            .families
            .iter()
            .filter(|f| f.name == "pulse_rabbitmq_queue_consumers")
            .flat_map(|f| &f.samples)
            .map(|s| {
                s.labels
                    .iter()
                    .find(|(k, _)| k == "queue")
                    .unwrap()
                    .1
                    .clone()
            })
            .collect();
        assert_eq!(consumers, ["events", "other"]);
    }

    /// A stream's ready count is everything it retains, read or not: no drain time from it.
    /// A quorum queue beside it, acknowledging, gets one.
    #[test]
    fn a_stream_gets_no_drain_time_and_a_quorum_queue_does() {
        let p = probe("{ management_url: 'http://x' }", 10);
        let reading = |acked: u64| {
            let mut quorum = queue("/", "work", 100);
            quorum["type"] = json!("quorum");
            quorum["message_stats"] = json!({"ack": acked});
            let mut stream = queue("/", "events", 5000);
            stream["type"] = json!("stream");
            stream["message_stats"] = json!({"ack": acked});
            walk(&p, vec![quorum, stream])
        };
        let start = Instant::now();
        p.samples(reading(0), &Counts::new(), start);
        let out = p.samples(reading(60), &Counts::new(), start + Duration::from_secs(60));
        let drains: Vec<(String, f64)> = out
            .families
            .iter()
            .filter(|f| f.name == "pulse_rabbitmq_queue_drain_seconds")
            .flat_map(|f| &f.samples)
            .map(|s| {
                let queue = s.labels.iter().find(|(k, _)| k == "queue").unwrap();
                (queue.1.clone(), s.value)
            })
            .collect();
        // 100 ready at one acknowledgement a second.
        assert_eq!(drains, [("work".to_owned(), 100.0)]);
    }

    #[test]
    fn missing_or_odd_fields_publish_what_is_there_and_never_panic() {
        let p = probe("{ management_url: 'http://x' }", 10);
        let mut out = Output::default();
        // No counts, a text where a number belongs, no state or type: an info line only,
        // with the defaults, and no message series.
        let q = json!({"vhost": "/", "name": "odd", "messages_ready": "many", "head_message_timestamp": 0});
        p.queue_samples(&q, QueueCounts::default(), &HashSet::new(), &mut out);
        assert_eq!(out.value("pulse_rabbitmq_queue_messages", ""), None);
        assert_eq!(
            out.value("pulse_rabbitmq_queue_head_message_timestamp_seconds", ""),
            None
        );
        assert_eq!(out.value("pulse_rabbitmq_queue_info", "unknown"), Some(1.0));
        // A queue without a name or vhost in a page still folds (into the default vhost).
        let w = walk(&p, vec![json!({"messages_ready": 2})]);
        // Its unacknowledged count was not reported: that total is unknown, not 0.
        assert_eq!(totals(&w, "/"), (1.0, Some(2.0), None));
    }
}
