//! The demo's log files: `ai-events.log` and `preview.log` as JSON lines, the way the HiveSync
//! backend writes them, with the occasional line that is not JSON (a stack trace, say).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::Utc;

use super::DemoError;

/// Appends to the two log files of a directory.
pub struct Logs {
    ai: File,
    preview: File,
    lines: u64,
    dir: PathBuf,
}

fn io(dir: &Path, e: std::io::Error) -> DemoError {
    DemoError::target("logs", format!("{}: {e}", dir.display()))
}

/// The files the demo writes in its log directory.
const FILES: [&str; 2] = ["ai-events.log", "preview.log"];

/// `demo --clean`: removes the demo's two log files, and the directory if that leaves it
/// empty. Other files are never touched.
pub fn clean(dir: &Path) -> Result<String, DemoError> {
    let mut removed = 0;
    for f in FILES {
        match std::fs::remove_file(dir.join(f)) {
            Ok(()) => removed += 1,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(dir, e)),
        }
    }
    // Fails, and is meant to, when anything else is in it.
    let _ = std::fs::remove_dir(dir);
    Ok(format!(
        "logs: removed {removed} demo log files from {}",
        dir.display()
    ))
}

impl Logs {
    /// Creates the directory and opens (or creates) both files for appending.
    pub fn open(dir: &Path) -> Result<Logs, DemoError> {
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        let open = |name: &str| {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join(name))
                .map_err(|e| io(dir, e))
        };
        Ok(Logs {
            ai: open(FILES[0])?,
            preview: open(FILES[1])?,
            lines: 0,
            dir: dir.to_owned(),
        })
    }

    /// One AI request line.
    pub fn ai(
        &mut self,
        user: &str,
        status: &str,
        latency_ms: i64,
        tokens: i32,
    ) -> Result<(), DemoError> {
        self.lines += 1;
        let line = if self.lines.is_multiple_of(97) {
            "Error: provider stream closed\n    at callProvider (ai/provider.ts:88)".to_owned()
        } else {
            serde_json::json!({
                "ts": Utc::now().to_rfc3339(), "event": "ai_request", "user_id": user,
                "status": status, "latency_ms": latency_ms, "tokens": tokens,
            })
            .to_string()
        };
        writeln!(self.ai, "{line}").map_err(|e| io(&self.dir, e))
    }

    /// One preview build line.
    pub fn preview(&mut self, user: &str, status: &str, latency_ms: i64) -> Result<(), DemoError> {
        let line = serde_json::json!({
            "ts": Utc::now().to_rfc3339(), "event": "preview_build", "user_id": user,
            "status": status, "latency_ms": latency_ms,
        });
        writeln!(self.preview, "{line}").map_err(|e| io(&self.dir, e))
    }
}
