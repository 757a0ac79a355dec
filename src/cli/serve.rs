//! `pulse-exporter` without a subcommand: the exporter itself, serving until SIGTERM or
//! SIGINT, reloading on SIGHUP and, when asked, when the config file changes.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use pulse_exporter::config;
use pulse_exporter::runtime::app::App;
use pulse_exporter::runtime::configwatch;
use pulse_exporter::runtime::shard::Shard;
use pulse_exporter::serve::http;
use pulse_exporter::serve::webconfig::WebConfig;

use super::check::shard_line;
use super::Cli;

/// Checks `--web.telemetry-path`: an absolute path that no other endpoint uses.
fn telemetry_path(path: &str) -> Result<&str, String> {
    if !path.starts_with('/')
        || path == "/"
        || path.starts_with("/-/")
        || path.contains(['{', '}', '*'])
    {
        return Err(format!(
            "--web.telemetry-path {path:?} must be an absolute path other than / and /-/…, e.g. /metrics"
        ));
    }
    Ok(path)
}

pub(crate) async fn serve(
    cli: Cli,
    path: PathBuf,
    config: config::Config,
    shard: Shard,
) -> ExitCode {
    let (telemetry, web, listener) = match listen(&cli) {
        Ok(parts) => parts,
        Err(code) => return code,
    };
    if shard.is_split() {
        tracing::info!(
            shard = shard.index,
            shards = shard.count,
            "{}",
            shard_line(shard, &config)
        );
    }
    let app = match App::start_sharded(config, Some(path.clone()), shard) {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(error = %e, "cannot start");
            return ExitCode::FAILURE;
        }
    };
    let local = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    tracing::info!(address = %local, tls = web.tls_server_config.is_some(), auth = !web.basic_auth_users.is_empty(), version = env!("CARGO_PKG_VERSION"), "listening");

    let _watch = reloads(&app, &cli, &path);
    tokio::spawn(release_memory_after_reloads(app.reloads()));
    let limits = pulse_exporter::serve::limits::Limits {
        max_connections: cli.max_connections as usize,
        max_connections_per_address: cli.max_connections_per_address as usize,
        ..pulse_exporter::serve::limits::Limits::default()
    };
    let served = http::serve_with(
        listener,
        app.clone(),
        web,
        &telemetry,
        limits,
        shutdown_signal(),
    )
    .await;
    app.shutdown().await;
    match served {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!(error = %e, "HTTP server failed");
            ExitCode::FAILURE
        }
    }
}

/// What serving needs from the command line: the metrics path, the web config and the bound
/// listener; or the exit code of what was wrong (2 for a bad flag), said where it belongs.
fn listen(cli: &Cli) -> Result<(String, WebConfig, TcpListener), ExitCode> {
    let telemetry = telemetry_path(&cli.telemetry_path).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(2)
    })?;
    let web = match &cli.listen.web_config_file {
        Some(p) => WebConfig::load(p).map_err(|e| {
            tracing::error!(error = %e, "invalid web config");
            ExitCode::FAILURE
        })?,
        None => WebConfig::default(),
    };
    let listener = http::parse_listen_address(&cli.listen.listen_address)
        .and_then(|a| TcpListener::bind(a).map_err(|e| format!("cannot listen on {a}: {e}")))
        .map_err(|e| {
            tracing::error!(error = %e, "cannot start the HTTP server");
            ExitCode::FAILURE
        })?;
    Ok((telemetry.to_owned(), web, listener))
}

/// Returns the allocator's free memory to the system two seconds after each reload (reloads
/// in a burst share one). glibc keeps what the removed sources and checks held for reuse:
/// after 150 reloads between 175 sources and 28, the process held 177 MiB at 28 sources, as
/// at 175 (51 MiB and 42 MiB with the trim: docs/scaling.md); the wait lets the removed
/// checks' tasks end and free what they hold.
async fn release_memory_after_reloads(mut reloads: tokio::sync::watch::Receiver<u64>) {
    while reloads.changed().await.is_ok() {
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        reloads.borrow_and_update();
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: malloc_trim returns free pages of the allocator's own heaps to the system;
        // it takes the allocator's locks like any malloc call and touches no memory in use.
        #[allow(unsafe_code)]
        unsafe {
            libc::malloc_trim(0);
        }
    }
}

/// Reloads on SIGHUP, and when `--config.auto-reload-interval` is set, when the file or a
/// secret it reads changes (the watch lives as long as what this returns).
fn reloads(app: &Arc<App>, cli: &Cli, path: &std::path::Path) -> Option<http::AbortOnDrop> {
    let reloader = app.clone();
    tokio::spawn(async move {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            return;
        };
        while hup.recv().await.is_some() {
            let _ = reloader.reload().await;
        }
    });
    (!cli.auto_reload_interval.is_zero()).then(|| {
        tracing::info!(file = %path.display(), interval = %humantime::format_duration(cli.auto_reload_interval), "reloading the config when it or a secret it reads changes");
        http::AbortOnDrop(configwatch::spawn(app.clone(), path.to_owned(), cli.auto_reload_interval))
    })
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {},
        _ = int.recv() => {},
    }
    tracing::info!("shutting down");
}
