//! Turning the registry into bytes: OpenMetrics, the classic text format or the Prometheus
//! protobuf format, chosen by the scraper's `Accept` header (its media types, versions and
//! q-values, as Prometheus 2 and 3 send them).
//!
//! prometheus-client writes OpenMetrics text and the protobuf format. The classic 0.0.4 text
//! differs from OpenMetrics in three ways that matter for our output: no `# EOF`, no `# UNIT`,
//! and counters are announced under their `_total` name. [`to_classic_text`] applies exactly
//! those rewrites. The protobuf format is the only one that carries native histograms: a
//! scraper that asks for it (Prometheus 3 with native histograms on, or `scrape_protocols`
//! naming `PrometheusProto`) gets every histogram with its native buckets beside the classic
//! ones.

use prometheus_client::registry::Registry;

/// Exposition format of a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// `application/openmetrics-text; version=1.0.0`.
    OpenMetrics,
    /// `text/plain; version=0.0.4`, what older scrapers and humans with curl get.
    Text,
    /// `application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily;
    /// encoding=delimited`: native histograms.
    Protobuf,
}

impl Format {
    /// Formats in the order a full tie between them is broken: `*/*` alone gets the classic
    /// text, as curl and a browser expect.
    const ALL: [Format; 3] = [Format::Text, Format::OpenMetrics, Format::Protobuf];

    /// The format a scraper's `Accept` header prefers, read as HTTP reads it (RFC 9110
    /// §12.5.1): each media range with its parameters and quality `q`; the most specific range
    /// that matches a format gives that format its quality; a format whose quality is 0 is
    /// never chosen; the highest quality wins, then the more specific match (`application/*`
    /// over `*/*`), then the classic text. A header that
    /// accepts neither format (only protobuf, say) or none at all gets the classic text, as a
    /// human with curl expects.
    ///
    /// Prometheus 3 adds `escaping=allow-utf-8` (or another scheme) to the 1.0.0 formats: every
    /// name this exporter serves matches the legacy `[a-zA-Z_:][a-zA-Z0-9_:]*` (config
    /// validation holds user metrics and labels to it), so every scheme reads them unchanged
    /// and the parameter needs no action.
    pub fn negotiate(accept: Option<&str>) -> Format {
        let Some(accept) = accept else {
            return Format::Text;
        };
        let ranges: Vec<mime::Mime> = mime::MimeIter::new(accept).filter_map(Result::ok).collect();
        // (quality, specificity) of the most specific range naming the format.
        let rank = |format: Format| {
            ranges
                .iter()
                .filter_map(|range| Some((format.specificity(range)?, quality(range))))
                .max_by_key(|(specificity, _)| *specificity)
                .map_or((0, 0), |(specificity, q)| (q, specificity))
        };
        let mut best = (Format::Text, (0, 0));
        for format in Format::ALL {
            let r = rank(format);
            if r.0 > 0 && r > best.1 {
                best = (format, r);
            }
        }
        best.0
    }

    /// How specifically `range` names this format (3: type, subtype and a version we serve;
    /// 2: type and subtype; 1: `type/*`; 0: `*/*`), or `None` when it names another.
    /// Protobuf matches only a range that names it, with the Prometheus message.
    fn specificity(self, range: &mime::Mime) -> Option<u8> {
        if self == Format::Protobuf {
            let named = range.type_().as_str().eq_ignore_ascii_case("application")
                && range
                    .subtype()
                    .as_str()
                    .eq_ignore_ascii_case("vnd.google.protobuf")
                && range
                    .get_param("proto")
                    .is_some_and(|p| p.as_str() == "io.prometheus.client.MetricFamily")
                && range
                    .get_param("encoding")
                    .is_none_or(|e| e.as_str() == "delimited");
            return named.then_some(3);
        }
        let (kind, subtype, versions): (&str, &str, &[&str]) = match self {
            // 0.0.1 and 1.0.0 differ in nothing this exporter writes.
            Format::OpenMetrics => ("application", "openmetrics-text", &["1.0.0", "0.0.1"]),
            // Text 1.0.0 differs from 0.0.4 only in UTF-8 names, which we never write.
            Format::Text => ("text", "plain", &["0.0.4", "1.0.0"]),
            Format::Protobuf => unreachable!("matched above"),
        };
        let (t, s) = (range.type_().as_str(), range.subtype().as_str());
        if t == "*" && s == "*" {
            return Some(0);
        }
        if !t.eq_ignore_ascii_case(kind) {
            return None;
        }
        if s == "*" {
            return Some(1);
        }
        if !s.eq_ignore_ascii_case(subtype) {
            return None;
        }
        match range.get_param("version") {
            None => Some(2),
            Some(v) if versions.contains(&v.as_str()) => Some(3),
            // A version this exporter does not write.
            Some(_) => None,
        }
    }

    /// The `Content-Type` of a response in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
            Format::Protobuf => {
                "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"
            }
        }
    }
}

/// A media range's `q` in thousandths (1000 when absent; an unreadable one counts as absent,
/// as browsers do).
fn quality(range: &mime::Mime) -> u16 {
    range
        .get_param("q")
        .and_then(|q| q.as_str().parse::<f64>().ok())
        .filter(|q| (0.0..=1.0).contains(q))
        .map_or(1000, |q| (q * 1000.0).round() as u16)
}

/// Encodes `registry` in `format`.
pub fn encode(registry: &Registry, format: Format) -> Result<Vec<u8>, String> {
    if format == Format::Protobuf {
        return prometheus_client::encoding::prometheus_protobuf::encode_to_vec(registry)
            .map_err(|e| e.to_string());
    }
    let mut buf = String::with_capacity(64 * 1024);
    prometheus_client::encoding::text::encode(&mut buf, registry).map_err(|e| e.to_string())?;
    Ok(match format {
        Format::Text => to_classic_text(&buf),
        _ => buf,
    }
    .into_bytes())
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

    /// The `Accept` headers Prometheus sends, each as its scrape code writes it.
    #[test]
    fn negotiation_with_each_header_prometheus_sends() {
        use Format::{OpenMetrics, Protobuf, Text};
        for (who, accept, expected) in [
            // 2.x before 2.49 (Debian 12's 2.42), fixed weights.
            ("prometheus 2.42", "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1", OpenMetrics),
            // 2.49 to 2.55: scrape_protocols, weights counting down from q=0.5.
            ("prometheus 2.49+", "application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2", OpenMetrics),
            // 2.x with native histograms on: protobuf first.
            ("prometheus 2.x protobuf", "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.5,application/openmetrics-text;version=1.0.0;q=0.4,application/openmetrics-text;version=0.0.1;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1", Protobuf),
            // 3.x defaults: escaping on the 1.0.0 formats, text 1.0.0.
            ("prometheus 3", "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2", OpenMetrics),
            ("prometheus 3 underscores", "application/openmetrics-text;version=1.0.0;escaping=underscores;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=underscores;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2", OpenMetrics),
            // 3.x protobuf first (native histograms), as `scrape_protocols` orders it.
            ("prometheus 3 protobuf", "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.6,application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1", Protobuf),
            // scrape_protocols: [PrometheusText0.0.4] only.
            ("prometheus text only", "text/plain;version=0.0.4;q=0.2,*/*;q=0.1", Text),
            ("prometheus 3 text 1.0.0 only", "text/plain;version=1.0.0;escaping=allow-utf-8;q=0.2,*/*;q=0.1", Text),
            ("curl", "*/*", Text),
        ] {
            assert_eq!(Format::negotiate(Some(accept)), expected, "{who}: {accept}");
        }
        assert_eq!(Format::negotiate(None), Format::Text);
    }

    #[test]
    fn q_values_versions_and_specificity_decide() {
        use Format::{OpenMetrics, Protobuf, Text};
        for (accept, expected) in [
            // A type with q=0 is never chosen, even first in the list.
            ("application/openmetrics-text;q=0,text/plain;q=0.1", Text),
            ("text/plain;version=0.0.4;q=0, */*", OpenMetrics),
            ("application/openmetrics-text;version=1.0.0;q=0, */*;q=0.9", Text),
            // Higher q wins whatever the order.
            ("text/plain;q=0.9, application/openmetrics-text;q=0.8", Text),
            ("text/plain;q=0.8, application/openmetrics-text;q=0.9", OpenMetrics),
            // A version we do not write is no match; the wildcard still is.
            ("application/openmetrics-text;version=2.0.0, text/plain;q=0.1", Text),
            // Spaces, case and wildcards of a type.
            ("Application/OpenMetrics-Text; version=1.0.0; q=0.7 , text/*; q=0.5", OpenMetrics),
            ("text/*", Text),
            ("application/*", OpenMetrics),
            // Nothing we serve: the classic text, never an error.
            ("application/json", Text),
            ("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited", Protobuf),
            // Another message, or a text encoding of protobuf, we do not write.
            ("application/vnd.google.protobuf;proto=io.prometheus.client.Other;encoding=delimited", Text),
            ("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=text", Text),
            // A wildcard never picks protobuf.
            ("application/*", OpenMetrics),
            ("*/*", Text),
            // Protobuf refused, or ranked below text.
            ("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0, text/plain;q=0.1", Text),
            ("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.2, text/plain;q=0.5", Text),
            ("", Text),
            ("garbage;;;,,", Text),
            // An unreadable q counts as 1.
            ("application/openmetrics-text;q=high, text/plain;q=0.5", OpenMetrics),
        ] {
            assert_eq!(Format::negotiate(Some(accept)), expected, "{accept}");
        }
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
