//! Reading what was appended since the last run: rotation (finish the old file, then the new
//! one from its start), truncation (by size and by the first bytes' digest), a bound on bytes
//! per run and on a line without its newline, and the samples of what was counted.

use crate::sync::MutexExt;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::sync::{Arc, Mutex};

use tokio::time::Instant;

use super::count::{count_lines, Counts, MAX_LINE_BYTES};
use super::file::{blocking, io_error, open_regular};
use super::metrics::{LINES, ROTATIONS, TRUNCATIONS};
use super::position::{head_digest, save_position, saved_position, Position, HEAD_BYTES};
use super::{LogfileConfig, StartAt, MAX_BYTES_PER_RUN};
use crate::series::run_error::{Reason, RunError};
use crate::series::sample::{label, Output};
use crate::sources::{RunFuture, Runnable};

/// The open file and the counts, kept apart so each can be borrowed on its own.
#[derive(Default)]
pub(super) struct Tail {
    pub(super) file: Option<(File, Position)>,
    pub(super) counts: Counts,
}

pub(super) struct TailProbe {
    pub(super) source: String,
    pub(super) config: Arc<LogfileConfig>,
    pub(super) tail: Arc<Mutex<Tail>>,
}

impl Runnable for TailProbe {
    fn run(&self, deadline: Instant) -> RunFuture<'_> {
        let (source, config, tail) = (self.source.clone(), self.config.clone(), self.tail.clone());
        Box::pin(async move {
            // File reads block; they run off the async workers, bounded in bytes per run and
            // in time by the deadline. A read still stuck from an earlier run (a hung network
            // file system) fails this run instead of queueing a second thread behind it.
            blocking(&self.config.path, deadline, move || {
                let mut t = match tail.try_lock() {
                    Ok(t) => t,
                    Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
                    Err(std::sync::TryLockError::WouldBlock) => {
                        return Err(RunError::new(
                            Reason::Timeout,
                            format!(
                                "{}: an earlier read has not returned yet",
                                config.path.display()
                            ),
                        ))
                    }
                };
                read_new(&source, &config, &mut t)
            })
            .await?;
            let mut t = self.tail.locked();
            let mut out = self.samples(&t.counts);
            // Reported once: the store sums what each run skipped.
            out.skipped += std::mem::take(&mut t.counts.capped);
            Ok(out)
        })
    }
}

impl TailProbe {
    fn samples(&self, t: &Counts) -> Output {
        let mut out = Output::default();
        let source = self.source.as_str();
        for (result, n) in [("parsed", t.parsed), ("invalid", t.invalid)] {
            out.add(&LINES, &[source, result], n as f64);
        }
        out.add(&ROTATIONS, &[source], t.rotations as f64);
        out.add(&TRUNCATIONS, &[source], t.truncations as f64);
        for (c, values) in self.config.counters.iter().zip(&t.counters) {
            let help = c.help.clone().unwrap_or_else(|| {
                format!(
                    "Lines of {} counted by pulse-exporter.",
                    self.config.path.display()
                )
            });
            for (key, n) in values {
                let labels = c
                    .labels
                    .keys()
                    .zip(key)
                    .map(|(k, v)| label(k, v.as_str()))
                    .collect();
                out.counter(&c.metric, &help, labels, *n);
            }
        }
        for (h, values) in self.config.histograms.iter().zip(&t.histograms) {
            let help = h
                .help
                .clone()
                .unwrap_or_else(|| format!("Field {} of {}.", h.field, self.config.path.display()));
            for (key, data) in values {
                let labels = h
                    .labels
                    .keys()
                    .zip(key)
                    .map(|(k, v)| label(k, v.as_str()))
                    .collect();
                out.histogram(&h.metric, &help, labels, data.clone());
            }
        }
        out
    }
}

/// Reads what was appended since the last run, following rotation and truncation.
pub(super) fn read_new(source: &str, c: &LogfileConfig, t: &mut Tail) -> Result<(), RunError> {
    let meta = std::fs::metadata(&c.path);
    let current = meta.as_ref().ok().map(|m| (m.dev(), m.ino(), m.len()));
    if let Some((file, pos)) = t.file.as_mut() {
        match current {
            Some((dev, ino, _)) if (pos.dev, pos.ino) == (dev, ino) => {}
            // Rotated (renamed, a new file in its place) or gone for now: finish the old file,
            // which is still open, before anything else.
            _ => {
                drain(file, pos, c, &mut t.counts)?;
                if current.is_some() {
                    t.file = None;
                    t.counts.partial.clear();
                    t.counts.rotations += 1;
                }
            }
        }
    }
    let Some((dev, ino, len)) = current else {
        return Err(io_error(
            &c.path,
            &meta.expect_err("no metadata means an error"),
        ));
    };
    if t.file.is_none() {
        let (mut f, _) = open_regular(&c.path)?;
        let offset = match saved_position(source, &c.path) {
            Some(p) if (p.dev, p.ino) == (dev, ino) && p.offset <= len => p.offset,
            // A file seen before under another identity: the rotated-in file, from its start.
            Some(_) => 0,
            None if c.start_at == StartAt::End => len,
            None => 0,
        };
        f.seek(SeekFrom::Start(offset))
            .map_err(|e| io_error(&c.path, &e))?;
        // A resumed position keeps its head digest: a rewrite while no source read it is
        // then noticed too.
        let pos = match saved_position(source, &c.path) {
            Some(p) if (p.dev, p.ino, p.offset) == (dev, ino, offset) => p,
            _ => Position::new(dev, ino, offset),
        };
        t.file = Some((f, pos));
    }
    let (file, pos) = t.file.as_mut().expect("opened above");
    // Truncated in place: shorter than where reading stopped, or with other first bytes than
    // those read (truncated, then written past the old offset between two runs).
    let rewritten = pos.head_len > 0
        && head_digest(file, pos.head_len).map_err(|e| io_error(&c.path, &e))? != Some(pos.head);
    if len < pos.offset || rewritten {
        file.seek(SeekFrom::Start(0))
            .map_err(|e| io_error(&c.path, &e))?;
        *pos = Position::new(pos.dev, pos.ino, 0);
        t.counts.partial.clear();
        t.counts.overlong = false;
        t.counts.truncations += 1;
    }
    drain(file, pos, c, &mut t.counts)?;
    if pos.head_len < HEAD_BYTES.min(pos.offset) {
        let len = HEAD_BYTES.min(pos.offset);
        if let Some(head) = head_digest(file, len).map_err(|e| io_error(&c.path, &e))? {
            (pos.head_len, pos.head) = (len, head);
        }
    }
    save_position(source, &c.path, *pos);
    Ok(())
}

/// Reads from `pos` to the end of `file` (at most MAX_BYTES_PER_RUN) and counts whole lines.
pub(super) fn drain(
    file: &mut File,
    pos: &mut Position,
    c: &LogfileConfig,
    counts: &mut Counts,
) -> Result<(), RunError> {
    let mut buf = Vec::new();
    file.by_ref()
        .take(MAX_BYTES_PER_RUN)
        .read_to_end(&mut buf)
        .map_err(|e| io_error(&c.path, &e))?;
    pos.offset += buf.len() as u64;
    let mut fresh = &buf[..];
    if counts.overlong {
        // The rest of a line already counted as too long: dropped up to its end.
        match fresh.iter().position(|b| *b == b'\n') {
            Some(end) => {
                fresh = &fresh[end + 1..];
                counts.overlong = false;
            }
            None => return Ok(()),
        }
    }
    counts.partial.extend_from_slice(fresh);
    if let Some(last_newline) = counts.partial.iter().rposition(|b| *b == b'\n') {
        let complete: Vec<u8> = counts.partial.drain(..=last_newline).collect();
        count_lines(c, counts, &complete);
    }
    if counts.partial.len() > MAX_LINE_BYTES {
        counts.partial = Vec::new();
        counts.invalid += 1;
        counts.overlong = true;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn a_file_without_newlines_costs_one_line_of_memory_and_a_rewrite_is_a_truncation() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.log");
        std::fs::write(&path, "").unwrap();
        let c: LogfileConfig = serde_yaml::from_str(&format!(
            "{{ path: {}, start_at: beginning, counters: [{{ metric: app_lines_total }}] }}",
            path.display()
        ))
        .unwrap();
        let mut t = Tail {
            file: None,
            counts: Counts {
                counters: vec![BTreeMap::new()],
                ..Counts::default()
            },
        };
        read_new("unit", &c, &mut t).unwrap();
        let zeros = 3 * MAX_LINE_BYTES;
        std::fs::write(&path, vec![b'x'; zeros]).unwrap();
        read_new("unit", &c, &mut t).unwrap();
        assert!(t.counts.partial.is_empty() && t.counts.overlong);
        assert_eq!(t.counts.invalid, 1);
        // The end of the long line, then a real one.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"xx\n{\"a\": 1}\n")
            .unwrap();
        read_new("unit", &c, &mut t).unwrap();
        assert_eq!((t.counts.parsed, t.counts.invalid), (1, 1));
        // Rewritten in place past the old offset: counted from the start again.
        let before = t.file.as_ref().unwrap().1.offset;
        let rewrite = "{\"b\": 2}\n".repeat(before as usize / 9 + 10);
        std::fs::write(&path, &rewrite).unwrap();
        read_new("unit", &c, &mut t).unwrap();
        assert_eq!(t.counts.truncations, 1);
        assert_eq!(t.counts.parsed, 1 + (before / 9 + 10));
    }
}
