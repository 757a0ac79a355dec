//! `pulse-exporter run --job NAME -- COMMAND…`: runs a command as a job that reports in. It
//! pings the exporter's `/ping/NAME/start`, runs the command with its output passed through,
//! then pings the exit status with the output's tail, and exits as the command did. A ping
//! that cannot be sent is reported on stderr and never changes the command's exit status;
//! the run id makes a retried ping safe.

use pulse_exporter::sync::MutexExt;
use std::ffi::OsString;
use std::process::{ExitCode, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pulse_exporter::jobs::state::MAX_LOG;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// `run`'s flags.
#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    /// The job's name, as `jobs:` declares it (or as a ping key makes it).
    #[arg(long, value_name = "NAME")]
    pub(crate) job: String,
    /// The exporter's base URL; the pings go to URL/ping/NAME/….
    #[arg(
        long,
        env = "PULSE_PING_URL",
        default_value = "http://127.0.0.1:7857",
        value_name = "URL"
    )]
    pub(crate) url: String,
    /// A file holding the job's token or a ping key (the environment variable
    /// PULSE_PING_TOKEN holds it otherwise; never a flag, which the process table shows).
    #[arg(long, env = "PULSE_PING_TOKEN_FILE", value_name = "FILE")]
    pub(crate) token_file: Option<std::path::PathBuf>,
    /// How long the end ping is retried while the exporter cannot take it.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub(crate) retry_for: Duration,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, num_args = 1.., value_name = "COMMAND")]
    pub(crate) command: Vec<OsString>,
}

/// `run`, with the command's exit status (or 127 when it cannot be started).
pub(crate) fn run_command(args: &RunArgs) -> ExitCode {
    let runtime = match super::async_runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    let code = runtime.block_on(wrap(args));
    ExitCode::from(u8::try_from(code.clamp(0, 255)).unwrap_or(1))
}

/// The last [`MAX_LOG`] bytes of what the command wrote, stdout and stderr interleaved.
#[derive(Default)]
struct Tail(Vec<u8>);

impl Tail {
    fn push(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
        if self.0.len() > MAX_LOG {
            let cut = self.0.len() - MAX_LOG;
            self.0.drain(..cut);
        }
    }
}

struct Pinger {
    client: reqwest::Client,
    base: String,
    job: String,
    rid: String,
    token: Option<String>,
}

impl Pinger {
    /// Sends one ping, retried with backoff for up to `retry_for` while the exporter is
    /// unreachable or answers 429/5xx; a refusal (401, 404, …) is final.
    async fn send(&self, what: &str, body: Vec<u8>, retry_for: Duration) {
        let url = format!("{}/ping/{}/{what}", self.base, self.job);
        let deadline = tokio::time::Instant::now() + retry_for;
        let mut wait = Duration::from_millis(500);
        loop {
            let mut req = self
                .client
                .post(&url)
                .query(&[("rid", self.rid.as_str())])
                .body(body.clone());
            if let Some(t) = &self.token {
                req = req.bearer_auth(t);
            }
            let outcome = match req.send().await {
                Ok(resp) if resp.status().is_success() => return,
                Ok(resp) => {
                    let status = resp.status();
                    let text = resp.text().await.unwrap_or_default();
                    let retry = status.as_u16() == 429 || status.is_server_error();
                    (format!("{status}: {}", text.trim()), retry)
                }
                Err(e) => (e.without_url().to_string(), true),
            };
            let (why, retry) = outcome;
            if !retry || tokio::time::Instant::now() + wait > deadline {
                eprintln!(
                    "pulse-exporter run: the {what} ping of job {} was not recorded: {why}",
                    self.job
                );
                return;
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(8));
        }
    }
}

fn token(args: &RunArgs) -> Result<Option<String>, String> {
    if let Some(path) = &args.token_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read --token-file {}: {e}", path.display()))?;
        return Ok(Some(text.trim().to_owned()));
    }
    Ok(std::env::var("PULSE_PING_TOKEN")
        .ok()
        .filter(|t| !t.trim().is_empty())
        .map(|t| t.trim().to_owned()))
}

async fn wrap(args: &RunArgs) -> i32 {
    let token = match token(args) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("pulse-exporter run: {e}");
            None
        }
    };
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap_or_default();
    let pinger = Pinger {
        client,
        base: args.url.trim_end_matches('/').to_owned(),
        job: args.job.clone(),
        rid: format!("{:016x}", rand::random::<u64>()),
        token,
    };
    // The command waits for its start ping at most 10s: the end ping is the one that counts.
    pinger
        .send(
            "start",
            Vec::new(),
            args.retry_for.min(Duration::from_secs(10)),
        )
        .await;
    let (program, rest) = args.command.split_first().expect("clap requires a command");
    let child = tokio::process::Command::new(program)
        .args(rest)
        .stdin(Stdio::inherit())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            let message = format!(
                "pulse-exporter run: cannot start {}: {e}\n",
                program.to_string_lossy()
            );
            eprint!("{message}");
            let code = if e.kind() == std::io::ErrorKind::PermissionDenied {
                126
            } else {
                127
            };
            pinger
                .send(&code.to_string(), message.into_bytes(), args.retry_for)
                .await;
            return code;
        }
    };
    let tail = Arc::new(Mutex::new(Tail::default()));
    let out = tokio::spawn(pass(child.stdout.take(), tokio::io::stdout(), tail.clone()));
    let err = tokio::spawn(pass(child.stderr.take(), tokio::io::stderr(), tail.clone()));
    let status = wait_forwarding_signals(&mut child).await;
    let _ = out.await;
    let _ = err.await;
    let code = match status {
        Ok(s) => exit_code(s),
        Err(e) => {
            eprintln!("pulse-exporter run: lost the command: {e}");
            1
        }
    };
    let log = std::mem::take(&mut tail.locked().0);
    pinger.send(&code.to_string(), log, args.retry_for).await;
    code
}

/// The shell's exit code of `status`: its code, or 128 plus the signal that ended it.
fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1)
}

/// Waits for the command, passing SIGTERM and SIGINT on to it (a Kubernetes pod ending, a
/// Ctrl-C), so it can finish and its end is still reported.
async fn wait_forwarding_signals(
    child: &mut tokio::process::Child,
) -> std::io::Result<std::process::ExitStatus> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    loop {
        let forward = tokio::select! {
            status = child.wait() => return status,
            _ = term.recv() => libc::SIGTERM,
            _ = int.recv() => libc::SIGINT,
        };
        if let Some(pid) = child.id() {
            // SAFETY: kill(2) with the pid of our own child, which has not been reaped (wait
            // has not returned), and a valid signal number.
            #[allow(unsafe_code)]
            unsafe {
                libc::kill(pid as libc::pid_t, forward);
            }
        }
    }
}

/// Copies the command's output to ours as it comes, keeping its tail.
async fn pass(
    from: Option<impl AsyncRead + Unpin>,
    mut to: impl AsyncWrite + Unpin,
    tail: Arc<Mutex<Tail>>,
) {
    let Some(mut from) = from else { return };
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                tail.locked().push(&buf[..n]);
                // Our own stdout closed (a pipe to `head`): the command still runs to its end.
                let _ = to.write_all(&buf[..n]).await;
                let _ = to.flush().await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_keeps_the_last_bytes() {
        let mut t = Tail::default();
        t.push(&vec![b'a'; MAX_LOG]);
        t.push(b"end");
        assert_eq!(t.0.len(), MAX_LOG);
        assert!(t.0.ends_with(b"aend"));
    }

    #[test]
    fn a_signal_is_reported_as_the_shell_does() {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(exit_code(std::process::ExitStatus::from_raw(3 << 8)), 3);
        assert_eq!(exit_code(std::process::ExitStatus::from_raw(9)), 137);
    }
}
