//! The write canary: PUT, GET and compare, DELETE a small object each run, each step's
//! outcome and duration published, and the leftovers of cancelled runs swept.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::client::S3Client;
use super::default_canary_prefix;
use super::metrics::{CANARY_DURATION, CANARY_SUCCESS};
use super::probes::Probes;
use crate::series::run_error::{Reason, RunError};
use crate::series::sample::Output;

/// The canary's read-back answered other bytes than were written.
fn differs() -> RunError {
    RunError::new(
        Reason::Decode,
        "the canary object read back differs from what was written",
    )
}

/// Whether `key` is a canary object of this source (`own` is `{prefix}{source}-`) written
/// more than `sweep_after` before `now_nanos`. Another source whose name starts with this one's
/// (`media` and `media-eu`) never matches: what follows `own` must be the nanoseconds alone.
fn stale_canary(key: &str, own: &str, now_nanos: u128, sweep_after: Duration) -> bool {
    key.strip_prefix(own)
        .and_then(|n| n.parse::<u128>().ok())
        .is_some_and(|at| now_nanos.saturating_sub(at) > sweep_after.as_nanos())
}

impl Probes {
    pub(super) async fn canary(&self, client: &S3Client) -> Result<Output, RunError> {
        let prefix = &self
            .config
            .canary
            .as_ref()
            .map(|c| c.prefix.clone())
            .unwrap_or_else(default_canary_prefix);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let own = format!("{prefix}{}-", self.source);
        self.sweep(client, &own, nanos).await;
        let key = format!("{own}{nanos}");
        let body = format!("pulse-exporter canary {nanos}");
        let bucket = &self.config.bucket;
        let mut out = Output::default();
        let mut failure = None;
        for step in ["put", "get", "delete"] {
            let started = std::time::Instant::now();
            let result = match step {
                "put" => client.put(&key, body.clone().into_bytes().into()).await,
                // Read one byte past what was written: a longer object differs without being
                // read whole.
                "get" => match client.get(&key, body.len() + 1).await {
                    Ok(data) if data == body.as_bytes() => Ok(()),
                    Ok(_) => Err(differs()),
                    Err(e) if e.reason() == Reason::TooLarge => Err(differs()),
                    Err(e) => Err(e),
                },
                _ => client.delete(&key).await,
            };
            let ok = result.is_ok();
            let labels = [self.source.as_str(), self.config.bucket.as_str(), step];
            out.add(&CANARY_SUCCESS, &labels, f64::from(u8::from(ok)));
            out.add(&CANARY_DURATION, &labels, started.elapsed().as_secs_f64());
            if let Err(e) = result {
                failure = Some(RunError::new(
                    e.reason(),
                    format!("canary {step} s3://{bucket}/{key}: {}", e.message()),
                ));
                // Nothing to read back or delete after a failed write.
                if step == "put" {
                    break;
                }
            }
        }
        out.failure = failure;
        Ok(out)
    }

    /// Deletes this source's canary objects (`{prefix}{source}-{nanos}`) written more than
    /// `sweep_after` before `now_nanos`: a run cancelled between PUT and DELETE leaves one.
    /// Best effort: one page of keys per run, and a failure (say, no ListBucket permission)
    /// never fails the canary.
    async fn sweep(&self, client: &S3Client, own: &str, now_nanos: u128) {
        let page = match client.list(own, Some(100), None).await {
            Ok(page) => page,
            Err(e) => {
                tracing::debug!(source = %self.source, error = %e, "canary sweep: cannot list");
                return;
            }
        };
        for key in page.objects.iter().map(|o| o.key.as_str()) {
            if !stale_canary(key, own, now_nanos, self.sweep_after) {
                continue;
            }
            match client.delete(key).await {
                Ok(_) => {
                    tracing::info!(source = %self.source, key, "canary object left by a cancelled run deleted")
                }
                Err(e) => {
                    tracing::debug!(source = %self.source, key, error = %e, "canary sweep: cannot delete")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sweep_takes_only_this_sources_old_canary_objects() {
        let own = "pulse-exporter-canary/media-";
        let after = Duration::from_secs(60);
        let now: u128 = 1_700_000_000 * 1_000_000_000;
        let at = |secs_ago: u128| format!("{own}{}", now - secs_ago * 1_000_000_000);
        assert!(
            stale_canary(&at(61), own, now, after),
            "left by a cancelled run"
        );
        assert!(
            !stale_canary(&at(59), own, now, after),
            "perhaps a run in flight"
        );
        // Another source whose name starts with this one's, and objects not ours at all.
        let other = format!("pulse-exporter-canary/media-eu-{}", now - 3_600_000_000_000);
        assert!(!stale_canary(&other, own, now, after));
        assert!(!stale_canary(
            "pulse-exporter-canary/media-",
            own,
            now,
            after
        ));
        assert!(!stale_canary("uploads/media-1", own, now, after));
        // A clock that went back never makes a fresh object look old.
        assert!(!stale_canary(&format!("{own}{}", now + 5), own, now, after));
    }
}
