//! Object statistics under a prefix: `ListObjectsV2` paged up to `max_pages`, so a huge
//! bucket never makes a run unbounded, saying when the listing was cut short.

use super::client::S3Client;
use super::metrics::{PREFIX_BYTES, PREFIX_NEWEST, PREFIX_OBJECTS, PREFIX_TRUNCATED};
use super::probes::Probes;
use crate::series::run_error::RunError;
use crate::series::sample::Output;

impl Probes {
    pub(super) async fn prefix_stats(
        &self,
        client: &S3Client,
        index: usize,
    ) -> Result<Output, RunError> {
        let pc = &self.config.prefixes[index];
        let (mut count, mut bytes, mut newest, mut truncated) = (0u64, 0i64, None::<i64>, false);
        let mut token: Option<String> = None;
        for page in 0..pc.max_pages {
            let listed = client.list(&pc.prefix, None, token.as_deref()).await?;
            for obj in &listed.objects {
                count += 1;
                bytes += obj.size;
                if let Some(t) = obj.last_modified {
                    newest = Some(newest.map_or(t, |n| n.max(t)));
                }
            }
            token = listed.next;
            if token.is_none() {
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
