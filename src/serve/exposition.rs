//! Turning the registry into bytes: OpenMetrics or the classic text format, chosen by the
//! scraper's `Accept` header.
//!
//! prometheus-client writes OpenMetrics only. The classic 0.0.4 format differs in three ways
//! that matter for our output: no `# EOF`, no `# UNIT`, and counters are announced under
//! their `_total` name. [`to_classic_text`] applies exactly those rewrites.

use prometheus_client::registry::Registry;

/// Exposition format of a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// `application/openmetrics-text; version=1.0.0`.
    OpenMetrics,
    /// `text/plain; version=0.0.4`, what older scrapers and humans with curl get.
    Text,
}

impl Format {
    /// The format a scraper asked for: OpenMetrics when its `Accept` header names it.
    pub fn negotiate(accept: Option<&str>) -> Format {
        match accept {
            Some(a) if a.contains("application/openmetrics-text") => Format::OpenMetrics,
            _ => Format::Text,
        }
    }

    /// The `Content-Type` of a response in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
        }
    }
}

/// Encodes `registry` in `format`.
pub fn encode(registry: &Registry, format: Format) -> Result<String, std::fmt::Error> {
    let mut buf = String::with_capacity(64 * 1024);
    prometheus_client::encoding::text::encode(&mut buf, registry)?;
    Ok(match format {
        Format::OpenMetrics => buf,
        Format::Text => to_classic_text(&buf),
    })
}

/// Rewrites OpenMetrics text as the classic text format. Sample lines are copied whole;
/// only the comment lines (a few per family) are rewritten.
pub fn to_classic_text(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    let mut pending_help: Option<&str> = None;
    for line in openmetrics.split_inclusive('\n') {
        if !line.starts_with('#') {
            out.push_str(line);
            continue;
        }
        let line = line.trim_end_matches('\n');
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            pending_help = Some(rest);
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.rsplit_once(' ').unwrap_or((rest, "untyped"));
            let (suffix, kind) = match kind {
                "counter" => ("_total", "counter"),
                "unknown" => ("", "untyped"),
                k => ("", k),
            };
            if let Some(help) = pending_help.take() {
                let text = help.split_once(' ').map(|(_, t)| t).unwrap_or("");
                for part in ["# HELP ", name, suffix, " ", text, "\n"] {
                    out.push_str(part);
                }
            }
            for part in ["# TYPE ", name, suffix, " ", kind, "\n"] {
                out.push_str(part);
            }
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation() {
        let prom = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(Format::negotiate(Some(prom)), Format::OpenMetrics);
        assert_eq!(Format::negotiate(Some("text/plain")), Format::Text);
        assert_eq!(Format::negotiate(None), Format::Text);
    }

    #[test]
    fn classic_text_renames_counters_and_drops_eof() {
        let om = "# HELP a_x Failures.\n# TYPE a_x counter\na_x_total{r=\"t\"} 1\n# HELP g G.\n# TYPE g gauge\n# UNIT g seconds\ng 2.5\n# EOF\n";
        assert_eq!(
            to_classic_text(om),
            "# HELP a_x_total Failures.\n# TYPE a_x_total counter\na_x_total{r=\"t\"} 1\n# HELP g G.\n# TYPE g gauge\ng 2.5\n"
        );
    }
}
