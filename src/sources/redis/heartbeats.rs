//! Heartbeat checks on Redis: beats kept in keys under a pattern (bounded reads in batches) or
//! in the fields of one hash (HSCAN; with `NOVALUES` where the server has it, so that a value
//! too long to be a heartbeat is never transferred).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use redis::Value as RValue;
use serde::Deserialize;
use tokio::time::Instant;

use super::client::{classify, Conn};
use super::default_scan_count;
use super::scan::scan;
use crate::config_core::ConfigError;
use crate::series::run_error::RunError;
use crate::sources::heartbeat::{parse_value, HeartbeatCommon, Tracker};
use crate::sources::{RunFuture, Runnable};

/// Where a Redis heartbeat check reads beats: keys by pattern (value a timestamp or JSON), or
/// the fields of one hash (field = worker, value as for keys).
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RedisBeatSource {
    /// SCAN pattern of heartbeat keys, e.g. `worker:heartbeat:gpu:*`; the worker is the key
    /// without the pattern's literal prefix.
    pub pattern: Option<String>,
    /// A hash whose fields are workers.
    pub hash: Option<String>,
    /// SCAN `COUNT` hint (default 100, at most 100,000).
    #[serde(default = "default_scan_count")]
    pub scan_count: u32,
}

impl RedisBeatSource {
    /// Records the rules these settings of the heartbeat check at `path` break.
    pub(super) fn validate(&self, path: &str, errors: &mut Vec<ConfigError>) {
        crate::config_core::validate::in_range(
            &format!("{path}.scan_count"),
            self.scan_count.into(),
            1,
            super::MAX_SCAN_COUNT,
            errors,
        );
        if self.pattern.is_some() == self.hash.is_some() {
            errors.push(ConfigError::new(
                path,
                "set exactly one of `pattern` (heartbeat keys) or `hash` (one hash of workers)",
            ));
        }
    }
}

/// Keys read per pipelined round trip: big enough to keep round trips few, small enough not to
/// block Redis.
const READ_BATCH: usize = 500;

/// Key bytes sent per pipelined round trip at most (1 MiB, or one key when a key is longer):
/// keys are copied into the request, so long keys go in fewer at a time.
const READ_BATCH_BYTES: usize = 1 << 20;

/// `keys` in runs of at most [`READ_BATCH`] keys and [`READ_BATCH_BYTES`] bytes, never empty.
fn read_batches(keys: &[String]) -> Vec<&[String]> {
    let mut batches = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, key) in keys.iter().enumerate() {
        let full = i - start == READ_BATCH || bytes + key.len() > READ_BATCH_BYTES;
        if full && i > start {
            batches.push(&keys[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += key.len();
    }
    if start < keys.len() {
        batches.push(&keys[start..]);
    }
    batches
}

/// Bytes of a heartbeat value read at most (64 KiB); a longer value is malformed. Heartbeats
/// are a timestamp or a small JSON object, so this bounds a run's memory by the key cap.
const MAX_BEAT_BYTES: usize = 64 * 1024;

/// A value read with `GETRANGE 0 MAX_BEAT_BYTES`: `None` for a key that is gone or not a
/// string; text too long to be a heartbeat is returned as is and then fails to parse.
fn beat_text(v: RValue) -> Option<String> {
    match v {
        RValue::BulkString(b) if b.is_empty() => None,
        RValue::BulkString(b) => Some(String::from_utf8_lossy(&b).into_owned()),
        RValue::SimpleString(s) => Some(s),
        _ => None,
    }
}

/// One hash field and its value, as Redis holds them: bytes. The value is `None` when it is
/// longer than [`MAX_BEAT_BYTES`] and was left unread.
type FieldBytes = (Vec<u8>, Option<Vec<u8>>);

/// A field and its value as HSCAN without `NOVALUES` sends them.
type FieldValue = (Vec<u8>, Vec<u8>);

/// What HSCAN read of a hash of beats.
struct HashRead {
    /// Worker (field) to beat (value), at most the walk's `max`.
    fields: HashMap<String, String>,
    /// Fields past `max`.
    beyond: u64,
    /// Fields whose name is not UTF-8, or whose value is longer than [`MAX_BEAT_BYTES`]:
    /// skipped and counted as malformed, never read into a label or parsed.
    unreadable: u64,
}

/// Whether the server takes `HSCAN … NOVALUES` (Redis 7.4+, Valkey 8+), learnt from its first
/// answer and kept for the check's life: one of these values.
const NOVALUES_UNKNOWN: u8 = 0;
const NOVALUES_YES: u8 = 1;
const NOVALUES_NO: u8 = 2;

/// A check's `NOVALUES` state before the server's first answer.
pub(super) fn novalues_unknown() -> AtomicU8 {
    AtomicU8::new(NOVALUES_UNKNOWN)
}

/// One page of HSCAN from `cursor`: the next cursor and the page's fields. Where the server
/// takes `NOVALUES`, values are then read only for fields whose `HSTRLEN` is within
/// [`MAX_BEAT_BYTES`], so a 100 MB value never crosses the wire; older servers send every value
/// with its field, and an oversized one is dropped after it arrived.
async fn hscan_page(
    conn: &mut redis::aio::ConnectionManager,
    key: &str,
    cursor: u64,
    count: u32,
    novalues: &AtomicU8,
) -> Result<(u64, Vec<FieldBytes>), RunError> {
    if novalues.load(Ordering::Relaxed) != NOVALUES_NO {
        let page: Result<(u64, Vec<Vec<u8>>), redis::RedisError> = hscan_cmd(key, cursor, count)
            .arg("NOVALUES")
            .query_async(conn)
            .await;
        match page {
            Ok((next, fields)) => {
                novalues.store(NOVALUES_YES, Ordering::Relaxed);
                return Ok((next, bounded_values(conn, key, fields).await?));
            }
            // An older server refuses the argument as a syntax error; WRONGTYPE and the rest
            // are answers about the key, the same with the argument or without.
            Err(e)
                if unknown_argument(&e) && novalues.load(Ordering::Relaxed) == NOVALUES_UNKNOWN =>
            {
                tracing::debug!(key, "HSCAN NOVALUES not supported (before Redis 7.4 or Valkey 8): values are read with their fields");
                novalues.store(NOVALUES_NO, Ordering::Relaxed);
            }
            Err(e) => return Err(classify(e)),
        }
    }
    let (next, page): (u64, Vec<FieldValue>) = hscan_cmd(key, cursor, count)
        .query_async(conn)
        .await
        .map_err(classify)?;
    let page = page
        .into_iter()
        .map(|(f, v)| (f, Some(v).filter(|v| v.len() <= MAX_BEAT_BYTES)))
        .collect();
    Ok((next, page))
}

/// `HSCAN key cursor COUNT count`.
fn hscan_cmd(key: &str, cursor: u64, count: u32) -> redis::Cmd {
    let mut cmd = redis::cmd("HSCAN");
    cmd.arg(key).arg(cursor).arg("COUNT").arg(count);
    cmd
}

/// A server's answer to an argument it does not know (`ERR syntax error` on Redis before 7.4).
fn unknown_argument(e: &redis::RedisError) -> bool {
    e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::ResponseError)
        && e.to_string().to_ascii_lowercase().contains("syntax")
}

/// The values of `fields` of the hash `key`: one pipelined `HSTRLEN` each, then one `HMGET`
/// of those within [`MAX_BEAT_BYTES`]. A field deleted in between reads as an empty value,
/// which then fails to parse like any other malformed beat.
async fn bounded_values(
    conn: &mut redis::aio::ConnectionManager,
    key: &str,
    fields: Vec<Vec<u8>>,
) -> Result<Vec<FieldBytes>, RunError> {
    if fields.is_empty() {
        return Ok(Vec::new());
    }
    let mut pipe = redis::pipe();
    for f in &fields {
        pipe.cmd("HSTRLEN").arg(key).arg(f);
    }
    let lengths: Vec<usize> = pipe.query_async(conn).await.map_err(classify)?;
    let small: Vec<&Vec<u8>> = fields
        .iter()
        .zip(&lengths)
        .filter(|(_, n)| **n <= MAX_BEAT_BYTES)
        .map(|(f, _)| f)
        .collect();
    let mut values: std::vec::IntoIter<Option<Vec<u8>>> = if small.is_empty() {
        Vec::new().into_iter()
    } else {
        let got: Vec<Option<Vec<u8>>> = redis::cmd("HMGET")
            .arg(key)
            .arg(&small)
            .query_async(conn)
            .await
            .map_err(classify)?;
        got.into_iter()
    };
    Ok(fields
        .into_iter()
        .zip(lengths)
        .map(|(f, n)| {
            let value = (n <= MAX_BEAT_BYTES).then(|| values.next().flatten().unwrap_or_default());
            (f, value)
        })
        .collect())
}

/// The fields of the hash `key` with their values, at most `max` of them, plus how many more
/// it holds. HSCAN reads `count` fields per call, so a hash of a million workers is never
/// read in one reply. Names and values are read as bytes: one field that is not UTF-8 is
/// skipped, not the whole pool.
async fn hscan(
    conn: &mut redis::aio::ConnectionManager,
    key: &str,
    count: u32,
    max: usize,
    novalues: &AtomicU8,
) -> Result<HashRead, RunError> {
    let mut read = HashRead {
        fields: HashMap::new(),
        beyond: 0,
        unreadable: 0,
    };
    let mut seen_bad = std::collections::HashSet::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, batch) = hscan_page(conn, key, cursor, count, novalues).await?;
        for (field, value) in batch {
            // Held by name: HSCAN may return a field twice while the hash is rehashing.
            let bad = match (String::from_utf8(field), value) {
                (Ok(field), Some(value)) => {
                    if read.fields.len() < max || read.fields.contains_key(&field) {
                        let value = String::from_utf8_lossy(&value).into_owned();
                        read.fields.insert(field, value);
                    }
                    continue;
                }
                (Ok(field), None) => field.into_bytes(),
                (Err(e), _) => e.into_bytes(),
            };
            if seen_bad.len() < max {
                seen_bad.insert(bad);
            }
        }
        if next == 0 || read.fields.len() >= max {
            break;
        }
        cursor = next;
    }
    read.unreadable = seen_bad.len() as u64;
    let total: u64 = redis::cmd("HLEN")
        .arg(key)
        .query_async(conn)
        .await
        .map_err(classify)?;
    read.beyond = total.saturating_sub(read.fields.len() as u64 + read.unreadable);
    Ok(read)
}

pub(super) struct HeartbeatProbe {
    pub(super) source: String,
    pub(super) conn: Arc<Conn>,
    pub(super) hb: HeartbeatCommon,
    pub(super) from: RedisBeatSource,
    pub(super) max_keys: usize,
    pub(super) tracker: Tracker,
    /// Whether the server takes `HSCAN … NOVALUES` (`NOVALUES_*`).
    pub(super) novalues: AtomicU8,
}

impl Runnable for HeartbeatProbe {
    fn run(&self, _deadline: Instant) -> RunFuture<'_> {
        Box::pin(async move {
            let mut conn = self.conn.get().await?;
            // (worker, raw value) pairs; MGET gives nil for keys that are not strings.
            let mut values: Vec<(String, Option<String>)> = Vec::new();
            let mut dropped = 0;
            let mut unreadable = 0;
            if let Some(pattern) = &self.from.pattern {
                let found = scan(&mut conn, pattern, self.from.scan_count, self.max_keys).await?;
                dropped = found.beyond;
                // A worker key whose name is not UTF-8 is one malformed beat, not a failed pool.
                unreadable = found.unreadable;
                let keys = found.keys;
                let prefix = &pattern[..pattern.find(['*', '?', '[']).unwrap_or(pattern.len())];
                for chunk in read_batches(&keys) {
                    // GETRANGE rather than MGET bounds each value read; a key of another type
                    // answers an error, read like MGET's nil.
                    let mut pipe = redis::pipe();
                    pipe.ignore_errors();
                    for key in chunk {
                        pipe.cmd("GETRANGE").arg(key).arg(0).arg(MAX_BEAT_BYTES);
                    }
                    let got: Vec<RValue> = pipe.query_async(&mut conn).await.map_err(classify)?;
                    for (key, v) in chunk.iter().zip(got) {
                        // Only the head of a long id is kept: the tracker cuts it anyway, and
                        // a megabyte key is then not copied twice more per run.
                        let id = key.strip_prefix(prefix).unwrap_or(key);
                        let worker = crate::series::sample::label_head(id).to_owned();
                        values.push((worker, beat_text(v)));
                    }
                }
            } else if let Some(hash) = &self.from.hash {
                let read = hscan(
                    &mut conn,
                    hash,
                    self.from.scan_count,
                    self.max_keys,
                    &self.novalues,
                )
                .await?;
                dropped = read.beyond;
                unreadable = read.unreadable;
                values.extend(read.fields.into_iter().map(|(k, v)| (k, Some(v))));
            }
            let mut beats = Vec::with_capacity(values.len());
            let mut malformed = unreadable;
            let mut example = None;
            for (worker, raw) in &values {
                // A key that expired between SCAN and MGET is simply gone.
                let Some(raw) = raw else { continue };
                match parse_value(worker, raw, &self.hb.attributes) {
                    Some(b) => beats.push(b),
                    None => {
                        malformed += 1;
                        example.get_or_insert(worker.as_str());
                    }
                }
            }
            let mut out = self
                .tracker
                .update(&self.source, &self.hb, beats, malformed, example);
            out.dropped += dropped;
            Ok(out)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_batched_by_count_and_by_key_bytes() {
        let short: Vec<String> = (0..1_200).map(|i| format!("hb:{i}")).collect();
        let sizes: Vec<usize> = read_batches(&short).iter().map(|b| b.len()).collect();
        assert_eq!(sizes, [500, 500, 200]);
        let long: Vec<String> = (0..5)
            .map(|i| format!("{i}{}", "w".repeat(600_000)))
            .collect();
        let sizes: Vec<usize> = read_batches(&long).iter().map(|b| b.len()).collect();
        assert_eq!(
            sizes,
            [1, 1, 1, 1, 1],
            "one key of over half a MiB per round trip"
        );
        let huge = vec!["x".repeat(3 << 20)];
        assert_eq!(
            read_batches(&huge).len(),
            1,
            "a key over the cap still goes alone"
        );
        assert!(read_batches(&[]).is_empty());
    }

    #[test]
    fn beat_values_read_as_text_and_missing_or_other_types_as_none() {
        assert_eq!(
            beat_text(RValue::BulkString(b"1700000000".to_vec())),
            Some("1700000000".to_owned())
        );
        // GETRANGE answers "" for a key that is gone, an error for another type.
        assert_eq!(beat_text(RValue::BulkString(Vec::new())), None);
        assert_eq!(beat_text(RValue::Nil), None);
        assert_eq!(beat_text(RValue::Int(1)), None);
    }
}
