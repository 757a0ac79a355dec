//! The AMQP queue check: a passive `queue.declare` per configured queue (lapin), for the
//! depth and consumers of a broker without the management API, and for the consumers of one
//! whose management statistics are off.
//!
//! A stream answers a passive declare with the messages it retains (read or not) and 0
//! consumers: neither is work waiting or workers attached. No AMQP 0-9-1 method tells a stream
//! from a queue without consuming from it, so its type is learnt from the management API or
//! the broker's Prometheus endpoint where the source names them, once per queue, and a stream
//! is skipped with a warning saying why. Without either, a stream cannot be told apart.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::broker_metrics::BrokerMetrics;
use super::management::{enc, Management};
use super::metrics::{flag, QUEUE_CONSUMERS, QUEUE_MESSAGES};
use super::selection::Selection;
use crate::series::run_error::{Reason, RunError};
use crate::series::sample::Output;
use crate::sources::{remaining, RunFuture, Runnable};

/// A lazily opened AMQP connection, reopened after any failure.
pub(super) struct Amqp {
    /// Trust and identity for an `amqps://` URL beyond the public roots.
    pub(super) tls: Option<lapin::tcp::OwnedTLSConfig>,
    pub(super) url: String,
    pub(super) vhost: String,
    pub(super) queues: Vec<String>,
    /// Shared by the health probe and the check of one source: one connection to the broker.
    pub(super) conn: Arc<Mutex<Option<lapin::Connection>>>,
}

pub(super) fn classify_amqp(e: &lapin::Error) -> RunError {
    // The broker's reply code says what happened; names of queues never enter into it.
    let reason = match e.kind() {
        lapin::ErrorKind::ProtocolError(amqp) => match amqp.get_id() {
            403 | 530 => Reason::Auth,
            404 => Reason::NotFound,
            320 | 501 | 504 | 505 => Reason::Connect,
            _ => Reason::Query,
        },
        lapin::ErrorKind::AuthProviderError(_) => Reason::Auth,
        lapin::ErrorKind::IOError(_) | lapin::ErrorKind::InvalidConnectionState(_) => {
            Reason::Connect
        }
        _ => Reason::Query,
    };
    RunError::new(reason, e.to_string())
}

impl Amqp {
    /// A new channel on the (re)opened connection.
    pub(super) async fn channel(&self, deadline: Instant) -> Result<lapin::Channel, RunError> {
        let mut guard = self.conn.lock().await;
        if let Some(c) = guard.as_ref() {
            if c.status().connected() {
                if let Ok(ch) = c.create_channel().await {
                    return Ok(ch);
                }
            }
        }
        *guard = None;
        let props = lapin::ConnectionProperties::default();
        let connect = async {
            match &self.tls {
                Some(tls) => {
                    let runtime = lapin::runtime::default_runtime()?;
                    lapin::Connection::connect_with_config(&self.url, props, tls.clone(), runtime)
                        .await
                }
                None => lapin::Connection::connect(&self.url, props).await,
            }
        };
        let conn = tokio::time::timeout(remaining(deadline), connect)
            .await
            .map_err(|_| RunError::new(Reason::Timeout, "AMQP connection not established in time"))?
            .map_err(|e| classify_amqp(&e))?;
        let ch = conn.create_channel().await.map_err(|e| classify_amqp(&e))?;
        *guard = Some(conn);
        Ok(ch)
    }
}

pub(super) struct AmqpProbe {
    pub(super) source: String,
    pub(super) amqp: Arc<Amqp>,
    pub(super) selection: Arc<Selection>,
    /// The source reads the management API too, whose queue check publishes the depths (ready
    /// and unacknowledged, from the queue totals whatever the broker's statistics): this check
    /// then publishes the consumers alone.
    pub(super) consumers_only: bool,
    /// Which of the queues are streams.
    pub(super) streams: StreamLookup,
}

/// Where the check learns which of its queues are streams, and what it learnt.
#[derive(Default)]
pub(super) struct StreamLookup {
    /// The management API, asked per queue (`columns=type`).
    management: Option<Arc<Management>>,
    /// The broker's Prometheus endpoint, asked per vhost (`queue_info`).
    broker_metrics: Option<Arc<BrokerMetrics>>,
    /// Whether each queue is a stream, as learnt: a queue's type is fixed for its life and
    /// is not asked again (a queue deleted and declared anew as a stream under the same name
    /// is learnt at the next reload; asking again for a missing queue every run would
    /// re-read the endpoint's whole queue list each time).
    known: std::sync::Mutex<HashMap<String, bool>>,
    /// The streams already said to be skipped.
    told: std::sync::Mutex<HashSet<String>>,
}

impl StreamLookup {
    /// A lookup through whichever of the two the source names (the management API first).
    pub(super) fn new(
        management: Option<Arc<Management>>,
        broker_metrics: Option<Arc<BrokerMetrics>>,
    ) -> StreamLookup {
        StreamLookup {
            management,
            broker_metrics,
            ..StreamLookup::default()
        }
    }

    /// Learns the types not known yet of `queues` in `vhost`. A failed lookup leaves them
    /// unknown (asked again next run), said at debug: the check goes on as before.
    async fn learn(&self, source: &str, vhost: &str, queues: &[String], deadline: Instant) {
        let unknown: Vec<&String> = {
            let known = self.known.lock().unwrap_or_else(|p| p.into_inner());
            queues.iter().filter(|q| !known.contains_key(*q)).collect()
        };
        if unknown.is_empty() {
            return;
        }
        let mut learnt = HashMap::new();
        if let Some(m) = &self.management {
            for q in &unknown {
                let path = format!("api/queues/{}/{}?columns=type", enc(vhost), enc(q));
                match m.get(&path, deadline).await {
                    Ok(j) => {
                        if let Some(t) = j["type"].as_str() {
                            learnt.insert((*q).clone(), t == "stream");
                        }
                    }
                    Err(e) => {
                        tracing::debug!(source, queue = %q, error = %e, "queue type not read")
                    }
                }
            }
        } else if let Some(b) = &self.broker_metrics {
            match b.streams(vhost, deadline).await {
                Ok(Some(streams)) => {
                    for q in &unknown {
                        learnt.insert((*q).clone(), streams.contains(*q));
                    }
                }
                Ok(None) => {
                    tracing::debug!(
                        source,
                        "the broker's Prometheus endpoint lists no queue types"
                    )
                }
                Err(e) => tracing::debug!(source, error = %e, "queue types not read"),
            }
        }
        let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        known.extend(learnt);
    }

    /// Whether `queue` is known to be a stream; the first time, a warning says it is skipped.
    fn skip(&self, source: &str, queue: &str) -> bool {
        let known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        if known.get(queue) != Some(&true) {
            return false;
        }
        let mut told = self.told.lock().unwrap_or_else(|p| p.into_inner());
        if told.insert(queue.to_owned()) {
            tracing::warn!(source, queue, event = "rabbitmq.amqp_stream", "amqp_queues names a stream: a passive declare answers the messages it retains and 0 consumers, not work waiting or consumers attached; skipped (read streams through management_url)");
        }
        true
    }
}

impl Runnable for AmqpProbe {
    fn run(&self, deadline: Instant) -> RunFuture<'_> {
        Box::pin(async move {
            let mut out = Output::default();
            let mut channel = self.amqp.channel(deadline).await?;
            let passive = QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            };
            let (source, vhost) = (self.source.as_str(), self.amqp.vhost.as_str());
            self.streams
                .learn(source, vhost, &self.amqp.queues, deadline)
                .await;
            for name in &self.amqp.queues {
                if self.streams.skip(source, name) {
                    continue;
                }
                match channel
                    .queue_declare(name.as_str().into(), passive, FieldTable::default())
                    .await
                {
                    Ok(q) => {
                        let base = [
                            self.source.as_str(),
                            self.amqp.vhost.as_str(),
                            name.as_str(),
                            flag(self.selection.named_dead_letter(name)),
                        ];
                        if !self.consumers_only {
                            let ready = [base[0], base[1], base[2], base[3], "ready"];
                            out.add(&QUEUE_MESSAGES, &ready, f64::from(q.message_count()));
                        }
                        out.add(&QUEUE_CONSUMERS, &base, f64::from(q.consumer_count()));
                    }
                    Err(e) => {
                        let err = classify_amqp(&e);
                        if err.reason() != Reason::NotFound {
                            return Err(err);
                        }
                        // A missing queue is absent; the broker closed the channel, so open another.
                        tracing::debug!(queue = %name, "queue not found over AMQP");
                        channel = self.amqp.channel(deadline).await?;
                    }
                }
            }
            let _ = channel.close(200, "done".into()).await;
            Ok(out)
        })
    }
}
