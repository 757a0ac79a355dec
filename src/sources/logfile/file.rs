//! Opening a log file safely (regular files only, non-blocking open, the type checked on the
//! opened file), file errors as bounded reasons, and file work run off the async workers.

use std::fs::{File, FileType, OpenOptions};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use tokio::time::Instant;

use crate::series::run_error::{Reason, RunError};

pub(super) fn io_error(path: &std::path::Path, e: &std::io::Error) -> RunError {
    let reason = match e.kind() {
        std::io::ErrorKind::NotFound => Reason::NotFound,
        std::io::ErrorKind::PermissionDenied => Reason::Auth,
        _ => Reason::Query,
    };
    RunError::new(reason, format!("{}: {e}", path.display()))
}

/// What a non-regular file is, for errors.
pub(super) fn file_type_name(t: FileType) -> &'static str {
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO (named pipe)"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// Opens `path` for reading if it is a regular file. The open is non-blocking (a FIFO
/// without a writer would otherwise block it forever; a regular file ignores the flag) and
/// the type is checked on the opened file, so a path swapped in between cannot slip through.
pub(super) fn open_regular(path: &Path) -> Result<(File, std::fs::Metadata), RunError> {
    let f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| io_error(path, &e))?;
    let meta = f.metadata().map_err(|e| io_error(path, &e))?;
    if !meta.is_file() {
        return Err(RunError::new(
            Reason::Query,
            format!(
                "{} is {}: a log source reads regular files only",
                path.display(),
                file_type_name(meta.file_type())
            ),
        ));
    }
    Ok((f, meta))
}

/// Runs blocking file work off the async workers, failing the run at `deadline`. A call that
/// overstays keeps its thread until the kernel returns, but never the caller.
pub(super) async fn blocking<T: Send + 'static>(
    path: &Path,
    deadline: Instant,
    work: impl FnOnce() -> Result<T, RunError> + Send + 'static,
) -> Result<T, RunError> {
    match tokio::time::timeout_at(deadline, tokio::task::spawn_blocking(work)).await {
        Ok(Ok(result)) => result,
        Ok(Err(e)) => Err(RunError::new(
            Reason::Internal,
            format!("log reader task: {e}"),
        )),
        Err(_) => Err(RunError::new(
            Reason::Timeout,
            format!("{}: the file did not answer in time", path.display()),
        )),
    }
}
