//! `oldest:` of a key check: when the oldest item of a queue key (a list or a sorted set) was
//! enqueued, the best sign of work that is not being processed.

use redis::aio::ConnectionManager;
use redis::Value as RValue;

use super::super::client::classify;
use super::super::commands::reply_number;
use super::{ListEnd, Oldest, TimeUnit};
use crate::series::run_error::RunError;
use crate::series::sample::Output;

impl Oldest {
    /// The enqueue time, in unix seconds, that a list item holds in `field`: `None` when the
    /// item is not a JSON object with a numeric (or numeric string) field of that name.
    fn list_item_time(&self, item: &str) -> Option<f64> {
        let field = self.field.as_deref()?;
        let v: serde_json::Value = serde_json::from_str(item).ok()?;
        let t = match &v[field] {
            serde_json::Value::Number(n) => n.as_f64()?,
            serde_json::Value::String(s) => s.trim().parse::<f64>().ok()?,
            _ => return None,
        };
        self.seconds(t)
    }

    /// `t` in unix seconds, or `None` when it is not a plausible time (not finite, or not
    /// positive).
    fn seconds(&self, t: f64) -> Option<f64> {
        let s = match self.unit {
            TimeUnit::Seconds => t,
            TimeUnit::Milliseconds => t / 1000.0,
        };
        (s.is_finite() && s > 0.0).then_some(s)
    }
}

/// Publishes the enqueue time of the oldest item of every measured list or sorted set (one
/// pipelined LINDEX or `ZRANGE 0 0 WITHSCORES` per key). Empty keys have no oldest item and
/// publish nothing; items without a readable time, and keys of other types, are skipped and
/// counted.
pub(super) async fn oldest_items(
    conn: &mut ConnectionManager,
    oldest: &Oldest,
    measured: &[(&String, &str)],
    labels_of: &impl Fn(&str) -> Vec<(String, String)>,
    out: &mut Output,
) -> Result<(), RunError> {
    let mut pipe = redis::pipe();
    let mut asked = Vec::new();
    for (k, t) in measured {
        match (*t, &oldest.field) {
            ("list", Some(_)) => {
                let index = match oldest.end {
                    ListEnd::Head => 0,
                    ListEnd::Tail => -1,
                };
                pipe.cmd("LINDEX").arg(*k).arg(index);
            }
            ("zset", _) => {
                pipe.cmd("ZRANGE").arg(*k).arg(0).arg(0).arg("WITHSCORES");
            }
            _ => {
                tracing::debug!(key = %k, r#type = t, "no oldest item: not a sorted set, or a list without oldest.field");
                out.skipped += 1;
                continue;
            }
        }
        asked.push((*k, *t));
    }
    if asked.is_empty() {
        return Ok(());
    }
    let help = "When the oldest job waiting in the queue was enqueued, as unix seconds (cached); absent while the queue is empty.";
    let replies: Vec<RValue> = pipe.query_async(conn).await.map_err(classify)?;
    for ((k, t), reply) in asked.into_iter().zip(replies) {
        let at = match (t, reply) {
            (_, RValue::Nil) => continue,
            ("list", RValue::BulkString(b)) => oldest.list_item_time(&String::from_utf8_lossy(&b)),
            ("list", RValue::SimpleString(s)) => oldest.list_item_time(&s),
            ("zset", RValue::Array(items)) if items.is_empty() => continue,
            ("zset", RValue::Array(items)) => items
                .get(1)
                .and_then(|score| reply_number(score).ok().flatten())
                .and_then(|v| oldest.seconds(v)),
            _ => None,
        };
        match at {
            Some(at) => out.gauge(&oldest.metric, help, labels_of(k), at),
            None => {
                tracing::debug!(key = %k, "the oldest item holds no readable enqueue time; skipped");
                out.skipped += 1;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oldest(field: Option<&str>, unit: TimeUnit) -> Oldest {
        Oldest {
            metric: "app_queue_oldest_job_timestamp_seconds".into(),
            field: field.map(str::to_owned),
            end: ListEnd::Head,
            unit,
        }
    }

    #[test]
    fn list_items_give_their_enqueue_time_in_seconds() {
        let o = oldest(Some("enqueued_at"), TimeUnit::Seconds);
        assert_eq!(
            o.list_item_time(r#"{"id": 7, "enqueued_at": 1700000000.5}"#),
            Some(1_700_000_000.5)
        );
        assert_eq!(
            o.list_item_time(r#"{"enqueued_at": " 1700000000 "}"#),
            Some(1_700_000_000.0)
        );
        let ms = oldest(Some("ts"), TimeUnit::Milliseconds);
        assert_eq!(ms.list_item_time(r#"{"ts": 1700000000000}"#), Some(1.7e9));
    }

    #[test]
    fn items_without_a_time_are_not_read_as_one() {
        let o = oldest(Some("enqueued_at"), TimeUnit::Seconds);
        for item in [
            "42",
            "not json",
            r#"{"id": 1}"#,
            r#"{"enqueued_at": "yesterday"}"#,
            r#"{"enqueued_at": -5}"#,
            r#"{"enqueued_at": null}"#,
        ] {
            assert_eq!(o.list_item_time(item), None, "{item}");
        }
        assert_eq!(oldest(None, TimeUnit::Seconds).list_item_time("{}"), None);
        assert_eq!(o.seconds(f64::NAN), None);
    }
}
