//! The RabbitMQ health probe: the management API overview and node states, or an AMQP channel.

use std::sync::Arc;

use tokio::time::Instant;

use super::amqp::Amqp;
use super::management::Management;
use super::{NODE_ALARM, NODE_RUNNING};
use crate::error::{ProbeError, Reason};
use crate::sample::Output;
use crate::sources::{Probe, ProbeFuture};

pub(super) struct HealthProbe {
    pub(super) source: String,
    pub(super) management: Option<Arc<Management>>,
    pub(super) amqp: Option<Arc<Amqp>>,
}

impl Probe for HealthProbe {
    fn run(&self, deadline: Instant) -> ProbeFuture<'_> {
        Box::pin(async move {
            let mut out = Output::default();
            let m = match (&self.management, &self.amqp) {
                (Some(m), _) => m,
                // AMQP only: the broker is up when a channel opens.
                (None, Some(amqp)) => {
                    amqp.channel(deadline).await?;
                    return Ok(out);
                }
                // Validation requires one of them; never a panic all the same.
                (None, None) => {
                    return Err(ProbeError::new(
                        Reason::Internal,
                        "neither management_url nor amqp_url is set",
                    ))
                }
            };
            m.get("api/overview", deadline).await?;
            let nodes = m.get("api/nodes", deadline).await?;
            for node in nodes.as_array().into_iter().flatten() {
                let name = node["name"].as_str().unwrap_or("unknown");
                let running = node["running"].as_bool().unwrap_or(false);
                let source = self.source.as_str();
                out.add(&NODE_RUNNING, &[source, name], f64::from(u8::from(running)));
                for (field, alarm) in [("mem_alarm", "memory"), ("disk_free_alarm", "disk")] {
                    if let Some(on) = node[field].as_bool() {
                        out.add(&NODE_ALARM, &[source, name, alarm], f64::from(u8::from(on)));
                    }
                }
            }
            Ok(out)
        })
    }
}
