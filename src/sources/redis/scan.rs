//! Walking the keys that match a pattern: SCAN batch by batch, key names as bytes (a name
//! that is not UTF-8 is counted and passed over, never failing the walk), bounded in keys.

use redis::aio::ConnectionManager;

use super::client::classify;
use crate::series::run_error::RunError;

/// One SCAN call: the next cursor (0 when the walk is done) and a batch of matching keys, as
/// bytes: Redis keys are binary, and one name that is not UTF-8 must not fail the batch.
pub(super) async fn scan_step(
    conn: &mut ConnectionManager,
    cursor: u64,
    pattern: &str,
    count: u32,
) -> Result<(u64, Vec<Vec<u8>>), RunError> {
    redis::cmd("SCAN")
        .arg(cursor)
        .arg("MATCH")
        .arg(pattern)
        .arg("COUNT")
        .arg(count)
        .query_async(conn)
        .await
        .map_err(classify)
}

/// What a SCAN walk found.
#[derive(Debug, Default)]
pub(super) struct Scanned {
    /// Matching keys kept, at most the walk's `max`.
    pub(super) keys: Vec<String>,
    /// Matching keys past `max`.
    pub(super) beyond: u64,
    /// Matching keys kept out because their name is not UTF-8 (no label can carry it).
    pub(super) unreadable: u64,
}

/// Keys matching `pattern`, at most `max` of them, plus how many more matched and how many
/// had a name that is not UTF-8. SCAN walks the whole keyspace `count` keys per call; the
/// check's timeout bounds the walk.
pub(super) async fn scan(
    conn: &mut ConnectionManager,
    pattern: &str,
    count: u32,
    max: usize,
) -> Result<Scanned, RunError> {
    let mut found = Keys::new(max);
    let mut cursor: u64 = 0;
    loop {
        let (next, batch) = scan_step(conn, cursor, pattern, count).await?;
        for key in batch {
            found.add(key);
        }
        if next == 0 {
            return Ok(found.done());
        }
        cursor = next;
    }
}

/// The keys of a walk as they arrive: each held once (SCAN may return a key more than once
/// while the keyspace is rehashing, and keys can be long), at most `max`.
pub(super) struct Keys {
    pub(super) max: usize,
    pub(super) kept: std::collections::HashSet<String>,
    pub(super) unreadable: std::collections::HashSet<Vec<u8>>,
    pub(super) beyond: u64,
}

impl Keys {
    pub(super) fn new(max: usize) -> Keys {
        Keys {
            max,
            kept: Default::default(),
            unreadable: Default::default(),
            beyond: 0,
        }
    }

    pub(super) fn add(&mut self, key: Vec<u8>) {
        match String::from_utf8(key) {
            Ok(k) if self.kept.contains(&k) => {}
            Ok(k) if self.kept.len() < self.max => {
                self.kept.insert(k);
            }
            Ok(_) => self.beyond += 1,
            Err(e) => {
                let bytes = e.into_bytes();
                if self.kept.len() >= self.max {
                    self.beyond += 1;
                } else if self.unreadable.len() < self.max {
                    self.unreadable.insert(bytes);
                }
            }
        }
    }

    pub(super) fn done(self) -> Scanned {
        if !self.unreadable.is_empty() {
            tracing::debug!(
                keys = self.unreadable.len(),
                "skipping keys whose name is not UTF-8"
            );
        }
        Scanned {
            keys: self.kept.into_iter().collect(),
            beyond: self.beyond,
            unreadable: self.unreadable.len() as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_name_that_is_not_utf8_is_counted_and_the_rest_kept() {
        let mut keys = Keys::new(2);
        for k in [
            &b"q:a"[..],
            b"q:\xff\xfe",
            b"q:a",
            b"q:\xff\xfe",
            b"q:b",
            b"q:c",
        ] {
            keys.add(k.to_vec());
        }
        let mut found = keys.done();
        found.keys.sort();
        assert_eq!(found.keys, ["q:a", "q:b"]);
        assert_eq!((found.beyond, found.unreadable), (1, 1));
        // Counting only (max 0): every match counts, readable or not.
        let mut count = Keys::new(0);
        count.add(b"q:a".to_vec());
        count.add(b"q:\xff".to_vec());
        assert_eq!(count.done().beyond, 2);
    }
}
