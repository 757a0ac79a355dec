//! `pulse-exporter healthcheck`: asks a running exporter's `/-/healthy`, for container health
//! checks in images that carry no curl or wget; with `--url`, any URL of an exporter (a
//! `helm test` pod scraping `/metrics` once), optionally requiring a metric in the answer.

use std::process::ExitCode;
use std::time::Duration;

use pulse_exporter::serve::webconfig::WebConfig;

use super::HealthcheckArgs;

/// Most of an answer read while looking for `--expect-metric`: far above any exporter's
/// scrape, and a bound on what a wrong URL can make this read.
const MAX_BODY: usize = 64 << 20;

/// `healthcheck`, with its exit code.
pub(crate) fn healthcheck_command(args: &HealthcheckArgs) -> ExitCode {
    match healthcheck(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("healthcheck: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `healthcheck`: one request to the exporter this command line describes.
fn healthcheck(args: &HealthcheckArgs) -> Result<(), String> {
    let ask = match &args.url {
        Some(url) => Ask {
            url: url.clone(),
            only_200: true,
            metric: args.expect_metric.clone(),
            timeout: Duration::from_secs(10),
        },
        None => {
            let tls = match &args.listen.web_config_file {
                Some(p) => WebConfig::load(p)?.tls_server_config.is_some(),
                None => false,
            };
            Ask {
                url: url(&args.listen.listen_address, tls)?,
                only_200: false,
                metric: args.expect_metric.clone(),
                timeout: Duration::from_secs(3),
            }
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(check(&ask))
}

/// One request and what its answer must be.
pub struct Ask {
    /// Where.
    pub url: String,
    /// Only 200 will do; otherwise 401 counts too (basic auth guards every path, the server
    /// is up, and the local probe holds no password).
    pub only_200: bool,
    /// A metric the answer must hold a sample of.
    pub metric: Option<String>,
    /// How long the whole request may take.
    pub timeout: Duration,
}

/// The URL to ask: the listen address with a wildcard host replaced by loopback, over HTTPS
/// when the web config serves TLS.
pub fn url(listen_address: &str, tls: bool) -> Result<String, String> {
    let addr = pulse_exporter::serve::http::parse_listen_address(listen_address)?;
    let host = if addr.ip().is_unspecified() {
        if addr.is_ipv6() {
            "[::1]".to_owned()
        } else {
            "127.0.0.1".to_owned()
        }
    } else if addr.is_ipv6() {
        format!("[{}]", addr.ip())
    } else {
        addr.ip().to_string()
    };
    let scheme = if tls { "https" } else { "http" };
    Ok(format!("{scheme}://{host}:{}/-/healthy", addr.port()))
}

/// Ok when the exporter answers as `ask` requires. The certificate is not verified: the probe
/// talks to its own process, or its own release's Service.
pub async fn check(ask: &Ask) -> Result<(), String> {
    let url = &ask.url;
    let client = reqwest::Client::builder()
        .timeout(ask.timeout)
        .danger_accept_invalid_certs(true)
        .build()
        .map_err(|e| e.to_string())?;
    let mut resp = client
        .get(url)
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    match resp.status().as_u16() {
        200 => {}
        401 if !ask.only_200 && ask.metric.is_none() => return Ok(()),
        code => return Err(format!("{url} answered HTTP {code}")),
    }
    let Some(metric) = &ask.metric else {
        return Ok(());
    };
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| format!("{url}: {e}"))? {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_BODY {
            return Err(format!("{url}: the answer is over {} MiB", MAX_BODY >> 20));
        }
    }
    let text = String::from_utf8_lossy(&body);
    match has_sample(&text, metric) {
        true => Ok(()),
        false => Err(format!(
            "{url} answered 200 without a sample of {metric} ({} bytes)",
            body.len()
        )),
    }
}

/// Whether `exposition` (the text format) holds a sample of `metric`.
fn has_sample(exposition: &str, metric: &str) -> bool {
    exposition.lines().any(|line| {
        line.strip_prefix(metric)
            .is_some_and(|rest| rest.starts_with(['{', ' ']))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_listen_addresses_become_loopback() {
        assert_eq!(
            url(":7857", false).unwrap(),
            "http://127.0.0.1:7857/-/healthy"
        );
        assert_eq!(
            url("0.0.0.0:9000", true).unwrap(),
            "https://127.0.0.1:9000/-/healthy"
        );
        assert_eq!(
            url("[::]:7857", false).unwrap(),
            "http://[::1]:7857/-/healthy"
        );
        assert_eq!(
            url("10.1.2.3:7857", false).unwrap(),
            "http://10.1.2.3:7857/-/healthy"
        );
        assert!(url("nonsense", false).is_err());
    }

    #[test]
    fn a_sample_is_a_line_of_the_metric_not_its_help_or_a_longer_name() {
        let text =
            "# HELP pulse_build_info Build.\n# TYPE pulse_build_info gauge\npulse_build_info_x 1\n";
        assert!(!has_sample(text, "pulse_build_info"));
        assert!(has_sample(
            &format!("{text}pulse_build_info{{version=\"0.1.0\"}} 1\n"),
            "pulse_build_info"
        ));
        assert!(has_sample("up 1\n", "up"));
    }
}
