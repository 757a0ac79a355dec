//! How far behind its tail each stream is read: a stream keeps what it was sent whether it
//! was read or not, so its message count says nothing of work waiting; what does is its
//! consumers' offset lag (messages between a consumer's offset and the stream's committed
//! tail). The stream plugin's management extension (`rabbitmq_stream_management`) reports it
//! for consumers over the stream protocol at `/api/stream/consumers`; consumers over AMQP
//! 0-9-1 are not listed there, and a broker without the extension answers 404, remembered
//! for good (a reload asks again).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::Value as Json;
use tokio::time::Instant;

use super::management::Management;
use crate::series::run_error::Reason;

/// Where the lag is read, and whether the broker lacks it.
#[derive(Default)]
pub(super) struct StreamLag {
    /// `/api/stream/consumers` answered 404: the extension is not enabled.
    missing: AtomicBool,
}

/// A stream's (vhost, name).
pub(super) type StreamKey = (String, String);

impl StreamLag {
    /// The largest offset lag of each of `streams` that has a consumer listed. Nothing when
    /// there is no stream to ask for, when the broker lacks the extension, or when the read
    /// fails (said at debug: the queue series do not depend on it).
    pub(super) async fn read(
        &self,
        source: &str,
        m: &Management,
        streams: &HashSet<StreamKey>,
        deadline: Instant,
    ) -> HashMap<StreamKey, f64> {
        if streams.is_empty() || self.missing.load(Ordering::Relaxed) {
            return HashMap::new();
        }
        match m.get("api/stream/consumers", deadline).await {
            Ok(consumers) => lags(&consumers, streams),
            Err(e) => {
                if e.reason() == Reason::NotFound {
                    self.missing.store(true, Ordering::Relaxed);
                    tracing::debug!(source, "no stream consumers endpoint (rabbitmq_stream_management is off): stream lag is not published");
                } else {
                    tracing::debug!(source, error = %e, "stream consumers not read");
                }
                HashMap::new()
            }
        }
    }
}

/// The largest `offset_lag` per stream of `streams`, from the consumers' list (each with
/// `queue: {name, vhost}`); a consumer without a finite, non-negative lag is left out.
pub(super) fn lags(consumers: &Json, streams: &HashSet<StreamKey>) -> HashMap<StreamKey, f64> {
    let mut out: HashMap<StreamKey, f64> = HashMap::new();
    for c in consumers.as_array().into_iter().flatten() {
        let (Some(name), Some(vhost)) = (c["queue"]["name"].as_str(), c["queue"]["vhost"].as_str())
        else {
            continue;
        };
        let Some(lag) = c["offset_lag"]
            .as_f64()
            .filter(|l| l.is_finite() && *l >= 0.0)
        else {
            continue;
        };
        let key = (vhost.to_owned(), name.to_owned());
        if !streams.contains(&key) {
            continue;
        }
        let entry = out.entry(key).or_insert(lag);
        *entry = entry.max(lag);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// As RabbitMQ 4.3.6 lists a stream-protocol consumer here (one chunk read of 23), with a
    /// second consumer further ahead, one of another vhost, and shapes that are skipped.
    #[test]
    fn the_furthest_behind_consumer_of_each_kept_stream_is_its_lag() {
        let consumer = |vhost: &str, name: &str, lag: Json| {
            json!({"active": true, "activity_status": "up", "consumed": 1, "credits": 0,
                   "offset": 1, "offset_lag": lag, "properties": {},
                   "queue": {"name": name, "vhost": vhost}, "subscription_id": 1,
                   "connection_details": {"name": "127.0.0.1:60684 -> 127.0.0.1:5552"}})
        };
        let list = json!([
            consumer("/", "events", json!(22)),
            consumer("/", "events", json!(3)),
            consumer("other", "events", json!(500)),
            consumer("/", "audit", json!(0)),
            consumer("/", "not-kept", json!(9)),
            consumer("/", "audit", json!("lots")),
            consumer("/", "audit", json!(-1)),
            {"queue": "events", "offset_lag": 4},
            "garbage",
        ]);
        let kept: HashSet<StreamKey> = [("/", "events"), ("/", "audit"), ("other", "x")]
            .iter()
            .map(|(v, n)| ((*v).to_owned(), (*n).to_owned()))
            .collect();
        let lags = lags(&list, &kept);
        assert_eq!(lags.len(), 2);
        assert_eq!(lags[&("/".to_owned(), "events".to_owned())], 22.0);
        assert_eq!(lags[&("/".to_owned(), "audit".to_owned())], 0.0);
        assert!(super::lags(&json!({"error": "x"}), &kept).is_empty());
    }
}
