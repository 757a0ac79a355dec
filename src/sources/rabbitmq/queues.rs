//! The queue check over the management API: every selected queue, per-vhost totals, dead
//! letters, capped at `max_queues` keeping the deepest.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use serde_json::Value as Json;
use tokio::time::Instant;

use super::management::Management;
use super::{
    flag, Selection, QUEUE_ACKED, QUEUE_CONSUMERS, QUEUE_HEAD_TIMESTAMP, QUEUE_INFO,
    QUEUE_MESSAGES, QUEUE_RATE, QUEUE_UTILISATION, VHOST_MESSAGES, VHOST_QUEUES,
};
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
