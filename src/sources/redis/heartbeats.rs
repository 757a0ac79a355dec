//! Heartbeat checks on Redis: beats kept in keys under a pattern (MGET in batches) or in
//! the fields of one hash.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Deserialize;
use tokio::time::Instant;

use super::{classify, default_scan_count, scan, Conn};
use crate::config::ConfigError;
use crate::heartbeat::{parse_value, HeartbeatCommon, Tracker};
use crate::sources::{Probe, ProbeFuture};

/// Where a Redis heartbeat check reads beats: keys by pattern (value a timestamp or JSON), or
/// the fields of one hash (field = worker, value as for keys).
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BeatSource {
    /// SCAN pattern of heartbeat keys, e.g. `worker:heartbeat:gpu:*`; the worker is the key
    /// without the pattern's literal prefix.
    pub pattern: Option<String>,
    /// A hash whose fields are workers.
    pub hash: Option<String>,
    /// SCAN `COUNT` hint (default 100, at most 100,000).
    #[serde(default = "default_scan_count")]
    pub scan_count: u32,
}

impl BeatSource {
    /// Records the rules these settings of the heartbeat check at `path` break.
    pub(super) fn validate(&self, path: &str, errors: &mut Vec<ConfigError>) {
        crate::config::validate::in_range(
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

/// Keys read per MGET: big enough to keep round trips few, small enough not to block Redis.
const MGET_BATCH: usize = 500;

pub(super) struct HeartbeatProbe {
    pub(super) source: String,
    pub(super) conn: Arc<Conn>,
    pub(super) hb: HeartbeatCommon,
    pub(super) from: BeatSource,
    pub(super) max_keys: usize,
    pub(super) tracker: Tracker,
}

impl Probe for HeartbeatProbe {
    fn run(&self, _deadline: Instant) -> ProbeFuture<'_> {
        Box::pin(async move {
            let mut conn = self.conn.get().await?;
            // (worker, raw value) pairs; MGET gives nil for keys that are not strings.
            let mut values: Vec<(String, Option<String>)> = Vec::new();
            let mut dropped = 0;
            if let Some(pattern) = &self.from.pattern {
                let (keys, beyond) =
                    scan(&mut conn, pattern, self.from.scan_count, self.max_keys).await?;
                dropped = beyond;
                let prefix = &pattern[..pattern.find(['*', '?', '[']).unwrap_or(pattern.len())];
                for chunk in keys.chunks(MGET_BATCH) {
                    let got: Vec<Option<String>> = redis::cmd("MGET")
                        .arg(chunk)
                        .query_async(&mut conn)
                        .await
                        .map_err(classify)?;
                    for (key, v) in chunk.iter().zip(got) {
                        values.push((key.strip_prefix(prefix).unwrap_or(key).to_owned(), v));
                    }
                }
            } else if let Some(hash) = &self.from.hash {
                let all: HashMap<String, String> = redis::cmd("HGETALL")
                    .arg(hash)
                    .query_async(&mut conn)
                    .await
                    .map_err(classify)?;
                values.extend(all.into_iter().map(|(k, v)| (k, Some(v))));
            }
            let mut beats = Vec::with_capacity(values.len());
            let mut malformed = 0u64;
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
