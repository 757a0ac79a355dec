//! A real browser for pages the exporter serves: Debian's Chromium, headless, takes a
//! screenshot, and the test reads its pixels.

use std::path::Path;
use std::process::Command;

/// A decoded screenshot: width, height and one RGB triple per pixel, row by row.
pub struct Screenshot {
    pub width: usize,
    pub height: usize,
    pub rgb: Vec<[u8; 3]>,
}

impl Screenshot {
    /// Pixels of exactly this colour, in the rows `top..bottom` (as a share of the height).
    pub fn count(&self, colour: [u8; 3], top: f64, bottom: f64) -> usize {
        let (from, to) = (
            (self.height as f64 * top) as usize,
            (self.height as f64 * bottom) as usize,
        );
        self.rgb[from * self.width..to * self.width]
            .iter()
            .filter(|p| **p == colour)
            .count()
    }
}

/// Renders `url` in headless Chromium at 1280×900 and saves the PNG at `out`. A missing
/// browser fails the test: `scripts/test` installs it.
pub fn screenshot(url: &str, out: &Path) -> Screenshot {
    let status = Command::new("chromium")
        .args([
            "--headless",
            // The tests run as root, where Chromium's sandbox cannot start.
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            "--window-size=1280,900",
        ])
        .arg(format!("--screenshot={}", out.display()))
        .arg(url)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("chromium runs (scripts/test installs Debian's chromium)");
    assert!(status.success(), "chromium failed on {url}: {status}");
    let mut decoder = png::Decoder::new(std::fs::File::open(out).expect("chromium wrote a PNG"));
    // Palette or 16-bit images become plain 8-bit channels.
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().expect("a PNG header");
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).expect("a PNG frame");
    let channels = info.color_type.samples();
    let rgb = buf[..info.buffer_size()]
        .chunks(channels)
        .map(|p| [p[0], p[1], p[2]])
        .collect();
    Screenshot {
        width: info.width as usize,
        height: info.height as usize,
        rgb,
    }
}
