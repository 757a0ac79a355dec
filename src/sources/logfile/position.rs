//! Where reading stopped in each file: identity, offset and a digest of the first bytes,
//! kept per source and path for the life of the process so reloads resume where they were.

use crate::sync::MutexExt;
use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Where reading stopped in a file: its identity and offset, and a digest of its first bytes
/// as they were read, so a file truncated in place and written past the old offset before
/// the next run (`copytruncate`, then a burst) is told from one that only grew.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Position {
    pub(super) dev: u64,
    pub(super) ino: u64,
    pub(super) offset: u64,
    /// Bytes from the start covered by `head`, at most [`HEAD_BYTES`]; 0 until read.
    pub(super) head_len: u64,
    /// Digest of those bytes.
    pub(super) head: u64,
}

impl Position {
    pub(super) fn new(dev: u64, ino: u64, offset: u64) -> Position {
        Position {
            dev,
            ino,
            offset,
            head_len: 0,
            head: 0,
        }
    }
}

/// Bytes at the start of a file whose digest identifies its content.
pub(super) const HEAD_BYTES: u64 = 1024;

/// The digest of the first `len` bytes of `file`, read without moving its cursor; `None`
/// when the file no longer holds that many.
pub(super) fn head_digest(file: &File, len: u64) -> std::io::Result<Option<u64>> {
    use std::hash::{Hash, Hasher};
    use std::os::unix::fs::FileExt;
    let mut bytes = vec![0u8; len as usize];
    let mut read = 0;
    while read < bytes.len() {
        match file.read_at(&mut bytes[read..], read as u64)? {
            0 => return Ok(None),
            n => read += n,
        }
    }
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    Ok(Some(h.finish()))
}

/// Positions by source name and path, kept for the life of the process so reloads resume
/// where they were. The source name is part of the key: two sources tailing one file each
/// read all of it.
pub(super) type PositionKey = (String, PathBuf);
pub(super) static POSITIONS: Mutex<Option<HashMap<PositionKey, Position>>> = Mutex::new(None);

pub(super) fn saved_position(source: &str, path: &Path) -> Option<Position> {
    POSITIONS
        .locked()
        .as_ref()?
        .get(&(source.to_owned(), path.to_path_buf()))
        .copied()
}

pub(super) fn save_position(source: &str, path: &Path, pos: Position) {
    POSITIONS
        .locked()
        .get_or_insert_with(HashMap::new)
        .insert((source.to_owned(), path.to_path_buf()), pos);
}
