//! The AMQP queue check: a passive `queue.declare` per configured queue (lapin), for the
//! depth and consumers of a broker without the management API, and for the consumers of one
//! whose management statistics are off.

use std::sync::Arc;

use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use tokio::sync::Mutex;
use tokio::time::Instant;

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
            for name in &self.amqp.queues {
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
