//! Expositions encoded once and served to every scrape until the store changes: one body per
//! format (OpenMetrics, classic text) and content coding (identity, gzip).
//!
//! Results change only when a check finishes, a reload applies, or a result goes stale, so a
//! body is rebuilt only when [`Results::generation`] moved or the first staleness deadline
//! after it was encoded ([`Results::fresh_until`]) has passed. Several Prometheus replicas
//! scraping every 15 s then cost one encode (and one compression) per change, not one per
//! scrape. `pulse_scrape_timestamp_seconds` says when the body served was encoded.
//!
//! Compression is gzip through `flate2`, chosen by the scraper's `Accept-Encoding`
//! ([`accepts_gzip`]); Prometheus asks for it on every scrape.

use crate::sync::MutexExt;
use std::collections::HashMap;
use std::io::Write;
use std::sync::Mutex;
use std::time::SystemTime;

use axum::body::Bytes;
use prometheus_client::registry::Registry;

use crate::runtime::results::Results;
use crate::serve::exposition::{self, Format};

/// One encoded exposition, its gzip (made on first demand), and what it was encoded from.
struct Body {
    generation: u64,
    /// Rebuild at or after this instant (a result goes stale then).
    until: Option<SystemTime>,
    plain: Bytes,
    gzip: Option<Bytes>,
}

/// The bodies kept between scrapes, one per format.
#[derive(Default)]
pub struct Encoded {
    bodies: Mutex<HashMap<Format, Body>>,
}

impl Encoded {
    /// The body for `format`, gzipped when `gzip`: the kept one while the store has not
    /// changed, else encoded now and kept. The gzip is of the very bytes served plain.
    pub fn body(
        &self,
        registry: &Registry,
        store: &Results,
        format: Format,
        gzip: bool,
    ) -> Result<Bytes, String> {
        let now = SystemTime::now();
        // Read before encoding: a change during the encode makes this body out of date at
        // once, never a stale body look current.
        let generation = store.generation();
        let kept = self.lock().get(&format).and_then(|b| {
            (b.generation == generation && b.until.is_none_or(|u| now < u))
                .then(|| (b.plain.clone(), b.gzip.clone()))
        });
        let (plain, zipped) = match kept {
            Some(k) => k,
            None => {
                let until = store.fresh_until(now);
                let text = exposition::encode(registry, format).map_err(|e| e.to_string())?;
                let plain = Bytes::from(text);
                self.lock().insert(
                    format,
                    Body {
                        generation,
                        until,
                        plain: plain.clone(),
                        gzip: None,
                    },
                );
                (plain, None)
            }
        };
        if !gzip {
            return Ok(plain);
        }
        if let Some(z) = zipped {
            return Ok(z);
        }
        let z = compress(&plain)?;
        if let Some(b) = self.lock().get_mut(&format) {
            if b.plain.as_ptr() == plain.as_ptr() {
                b.gzip = Some(z.clone());
            }
        }
        Ok(z)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Format, Body>> {
        self.bodies.locked()
    }
}

/// gzip at flate2's fast level: an exposition is repetitive text, so the fast level already
/// shrinks it several times over, for a fraction of the CPU of the best.
fn compress(plain: &[u8]) -> Result<Bytes, String> {
    let mut z = flate2::write::GzEncoder::new(
        Vec::with_capacity(plain.len() / 4),
        flate2::Compression::fast(),
    );
    z.write_all(plain).map_err(|e| e.to_string())?;
    Ok(Bytes::from(z.finish().map_err(|e| e.to_string())?))
}

/// True when an `Accept-Encoding` header allows gzip: `gzip` (or `*`) listed with a weight
/// above 0, and not refused by a more specific `gzip;q=0`.
pub fn accepts_gzip(accept_encoding: Option<&str>) -> bool {
    let Some(header) = accept_encoding else {
        return false;
    };
    let mut gzip = None;
    let mut any = None;
    for item in header.split(',') {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|v| v.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        match coding.as_str() {
            "gzip" | "x-gzip" => gzip = Some(q > 0.0),
            "*" => any = Some(q > 0.0),
            _ => {}
        }
    }
    gzip.or(any).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::collector::SnapshotCollector;
    use std::io::Read;
    use std::sync::Arc;

    #[test]
    fn gzip_is_chosen_by_accept_encoding() {
        for yes in [
            "gzip",
            "gzip, deflate",
            "deflate, gzip;q=0.5",
            "*",
            "br, *;q=0.1",
            "GZIP",
        ] {
            assert!(accepts_gzip(Some(yes)), "{yes}");
        }
        for no in [
            "",
            "identity",
            "deflate, br",
            "gzip;q=0",
            "*, gzip;q=0",
            "gzip; q=0.0",
        ] {
            assert!(!accepts_gzip(Some(no)), "{no}");
        }
        assert!(!accepts_gzip(None));
    }

    fn registry(store: &Arc<Results>) -> Registry {
        let mut r = Registry::default();
        r.register_collector(Box::new(SnapshotCollector::new(store.clone())));
        r
    }

    #[test]
    fn a_body_is_kept_until_the_store_changes_and_gzip_holds_the_same_text() {
        let store = Arc::new(Results::new());
        let reg = registry(&store);
        let cache = Encoded::default();
        let first = cache.body(&reg, &store, Format::Text, false).unwrap();
        let again = cache.body(&reg, &store, Format::Text, false).unwrap();
        assert_eq!(
            first.as_ptr(),
            again.as_ptr(),
            "the same bytes, not a new encode"
        );
        let zipped = cache.body(&reg, &store, Format::Text, true).unwrap();
        let mut unzipped = String::new();
        flate2::read::GzDecoder::new(&zipped[..])
            .read_to_string(&mut unzipped)
            .unwrap();
        assert_eq!(
            unzipped.as_bytes(),
            &first[..],
            "the gzip of the same encode"
        );
        let zipped_again = cache.body(&reg, &store, Format::Text, true).unwrap();
        assert_eq!(zipped.as_ptr(), zipped_again.as_ptr(), "compressed once");
        // OpenMetrics is its own body.
        let om = cache
            .body(&reg, &store, Format::OpenMetrics, false)
            .unwrap();
        assert!(om.ends_with(b"# EOF\n"));
        // A change (here a reload's status) makes the next scrape encode anew.
        store.set_reload(false, SystemTime::now());
        let after = cache.body(&reg, &store, Format::Text, false).unwrap();
        assert_ne!(first.as_ptr(), after.as_ptr());
        assert!(String::from_utf8_lossy(&after).contains("pulse_config_last_reload_successful 0"));
    }
}
