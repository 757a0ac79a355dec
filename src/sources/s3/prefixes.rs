//! Object statistics under a prefix: `ListObjectsV2` paged up to `max_pages`, so a huge
//! bucket never makes a run unbounded, saying when the listing was cut short.

use super::client::classify;
use super::metrics::{PREFIX_BYTES, PREFIX_NEWEST, PREFIX_OBJECTS, PREFIX_TRUNCATED};
use super::probes::Probes;
use crate::series::run_error::RunError;
use crate::series::sample::Output;

impl Probes {
    pub(super) async fn prefix_stats(
        &self,
        client: &aws_sdk_s3::Client,
        index: usize,
    ) -> Result<Output, RunError> {
        let pc = &self.config.prefixes[index];
        let (mut count, mut bytes, mut newest, mut truncated) = (0u64, 0i64, None::<i64>, false);
        let mut token: Option<String> = None;
        for page in 0..pc.max_pages {
            let resp = client
                .list_objects_v2()
                .bucket(&self.config.bucket)
                .prefix(&pc.prefix)
                .set_continuation_token(token.clone())
                .send()
                .await
                .map_err(|e| classify(&e))?;
            for obj in resp.contents() {
                count += 1;
                bytes += obj.size().unwrap_or(0);
                if let Some(t) = obj.last_modified() {
                    newest = Some(newest.map_or(t.secs(), |n| n.max(t.secs())));
                }
            }
            token = resp.next_continuation_token().map(str::to_owned);
            if token.is_none() || !resp.is_truncated().unwrap_or(false) {
                break;
            }
            if page + 1 == pc.max_pages {
                truncated = true;
            }
        }
        let mut out = Output::default();
        let l = [
            self.source.as_str(),
            self.config.bucket.as_str(),
            pc.prefix.as_str(),
        ];
        out.add(&PREFIX_OBJECTS, &l, count as f64);
        out.add(&PREFIX_BYTES, &l, bytes as f64);
        if let Some(n) = newest {
            out.add(&PREFIX_NEWEST, &l, n as f64);
        }
        out.add(&PREFIX_TRUNCATED, &l, f64::from(u8::from(truncated)));
        Ok(out)
    }
}
