//! Key lengths: the size of one key, or of every key under a pattern, by its type (LLEN,
//! SCARD, ZCARD, XLEN, HLEN, or a string that holds a number).

use redis::aio::ConnectionManager;
use redis::Value as RValue;

use super::super::client::classify;
use super::super::commands::reply_number;
use super::super::scan::scan;
use super::oldest::oldest_items;
use super::{key_types, KeyProbe};
use crate::series::run_error::{Reason, RunError};
use crate::series::sample::{label, Output};

/// Bytes of a string value read to find a number in it: longer values are not numbers.
const MAX_NUMBER_BYTES: usize = 128;

/// The length of the check's key, or of each key its pattern matches (up to `max_keys`),
/// with the oldest item's time when `oldest:` asks for it.
pub(super) async fn run(
    probe: &KeyProbe,
    conn: &mut ConnectionManager,
) -> Result<Output, RunError> {
    let mut out = Output::default();
    let keys = match (&probe.check.key, &probe.check.pattern) {
        (Some(k), _) => vec![k.clone()],
        (None, Some(p)) => {
            let found = scan(conn, p, probe.check.scan_count, probe.max_keys).await?;
            out.dropped = found.beyond;
            // A name no label can carry: skipped and counted, the rest published.
            out.skipped += found.unreadable;
            found.keys
        }
        (None, None) => Vec::new(),
    };
    if keys.is_empty() {
        return Ok(out);
    }
    let kinds = key_types(conn, &keys).await?;
    let mut sizes = redis::pipe();
    let mut measured = Vec::new();
    for (k, t) in keys.iter().zip(&kinds) {
        let cmd = match t.as_str() {
            "list" => "LLEN",
            "set" => "SCARD",
            "zset" => "ZCARD",
            "stream" => "XLEN",
            "hash" => "HLEN",
            // Only the first bytes: a number is short, and a large value under a
            // pattern (a cached JSON blob) must not be read whole to find it is not one.
            "string" => "GETRANGE",
            // The key does not exist: absent, not 0.
            "none" => continue,
            // A type with no length we know (a module's, such as ReJSON): skipped
            // and counted, like a string that is not a number.
            other => {
                tracing::debug!(key = %k, r#type = other, "skipping a key of a type without a known length");
                out.skipped += 1;
                continue;
            }
        };
        sizes.cmd(cmd).arg(k);
        if cmd == "GETRANGE" {
            sizes.arg(0).arg(MAX_NUMBER_BYTES - 1);
        }
        measured.push((k, t.as_str()));
    }
    if measured.is_empty() {
        return Ok(out);
    }
    let replies: Vec<RValue> = sizes.query_async(conn).await.map_err(classify)?;
    let labels_of = |k: &str| {
        let mut labels = Vec::with_capacity(2);
        if let Some(s) = &probe.source {
            labels.push(label("source", s.as_str()));
        }
        labels.push(label(&probe.check.label, k));
        labels
    };
    if let Some(oldest) = &probe.check.oldest {
        oldest_items(conn, oldest, &measured, &labels_of, &mut out).await?;
    }
    for ((k, _), reply) in measured.into_iter().zip(&replies) {
        match reply_number(reply) {
            Ok(Some(v)) => {
                out.gauge(&probe.metric, &probe.help, labels_of(k), v);
            }
            Ok(None) => {}
            Err(e) if probe.check.pattern.is_some() => {
                tracing::debug!(key = %k, error = %e, "skipping non-numeric key under pattern");
                out.skipped += 1;
            }
            Err(e) => return Err(RunError::new(Reason::Decode, format!("key {k:?}: {e}"))),
        }
    }
    Ok(out)
}
