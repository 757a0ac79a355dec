//! `pulse-exporter healthcheck`: asks a running exporter's `/-/healthy`, for container health
//! checks in images that carry no curl or wget.

use std::process::ExitCode;
use std::time::Duration;

use pulse_exporter::serve::webconfig::WebConfig;

use super::Cli;

/// `healthcheck`, with its exit code.
pub(crate) fn healthcheck_command(cli: &Cli) -> ExitCode {
    match healthcheck(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("healthcheck: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `healthcheck`: one request to the exporter this command line describes.
fn healthcheck(cli: &Cli) -> Result<(), String> {
    let tls = match &cli.web_config_file {
        Some(p) => WebConfig::load(p)?.tls_server_config.is_some(),
        None => false,
    };
    let url = url(&cli.listen_address, tls)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(check(&url, std::time::Duration::from_secs(3)))
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

/// Ok when the exporter answers: 200, or 401 when basic auth guards every path (the server is
/// up; the probe holds no password). The certificate is not verified: the probe talks to its
/// own process over loopback.
pub async fn check(url: &str, timeout: Duration) -> Result<(), String> {
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .danger_accept_invalid_certs(true)
        .build()
        .map_err(|e| e.to_string())?;
    let resp = client
        .get(url)
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    match resp.status().as_u16() {
        200 | 401 => Ok(()),
        code => Err(format!("{url} answered HTTP {code}")),
    }
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
}
