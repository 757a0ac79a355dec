//! The HTTP server: `/metrics`, `/`, `/-/healthy`, `/-/ready`, `/-/reload`, with optional
//! basic auth and TLS from the web config, and graceful shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine;
use prometheus_client::registry::Registry;

use crate::app::App;
use crate::collector::SnapshotCollector;
use crate::exposition::{self, Format};
use crate::webconfig::{AuthOutcome, BasicAuth, WebConfig};

/// How long in-flight requests may finish after a shutdown signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

#[derive(Clone)]
struct HttpState {
    app: Arc<App>,
    registry: Arc<Registry>,
    auth: Option<Arc<BasicAuth>>,
    telemetry_path: Arc<str>,
}

/// Serves on `listener` until `shutdown` completes, then drains requests for up to
/// [`SHUTDOWN_GRACE`]. Tests bind `127.0.0.1:0` and pass the listener in.
pub async fn serve(
    listener: std::net::TcpListener,
    app: Arc<App>,
    web: WebConfig,
    telemetry_path: &str,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(SnapshotCollector::new(app.store())));
    let state = HttpState {
        app,
        registry: Arc::new(registry),
        auth: BasicAuth::new(&web.basic_auth_users).map(Arc::new),
        telemetry_path: telemetry_path.into(),
    };
    let router = Router::new()
        .route("/", get(landing))
        .route(telemetry_path, get(metrics))
        .route("/-/healthy", get(|| async { "Healthy\n" }))
        .route("/-/ready", get(|| async { "Ready\n" }))
        .route("/-/reload", post(reload).put(reload))
        .layer(middleware::from_fn_with_state(state.clone(), require_auth))
        .with_state(state);

    let handle = axum_server::Handle::new();
    let trigger = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        trigger.graceful_shutdown(Some(SHUTDOWN_GRACE));
    });
    listener.set_nonblocking(true)?;
    // The client address keys the limit on failed logins.
    let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
    match &web.tls_server_config {
        Some(tls) => {
            let config = tls.server_config().map_err(std::io::Error::other)?;
            let rustls = axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(config));
            axum_server::from_tcp_rustls(listener, rustls)
                .handle(handle)
                .serve(service)
                .await
        }
        None => {
            axum_server::from_tcp(listener)
                .handle(handle)
                .serve(service)
                .await
        }
    }
}

async fn metrics(State(st): State<HttpState>, headers: HeaderMap) -> Response {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let format = Format::negotiate(accept);
    match exposition::encode(&st.registry, format) {
        Ok(body) => ([(header::CONTENT_TYPE, format.content_type())], body).into_response(),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "encoding metrics failed\n",
        )
            .into_response(),
    }
}

async fn landing(State(st): State<HttpState>) -> Html<String> {
    Html(crate::landing::render(
        &st.app.sources(),
        &st.app.store().snapshot(),
        &st.telemetry_path,
    ))
}

async fn reload(State(st): State<HttpState>) -> Response {
    match st.app.reload().await {
        Ok(()) => (StatusCode::OK, "configuration reloaded\n").into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!(
                "reload failed; the previous configuration keeps running:\n{}\n",
                crate::secrets::scrub(&e)
            ),
        )
            .into_response(),
    }
}

/// Decodes `Authorization: Basic …` into (user, password).
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

async fn require_auth(State(st): State<HttpState>, req: Request, next: Next) -> Response {
    let Some(auth) = st.auth.clone() else {
        return next.run(req).await;
    };
    if let Some((user, password)) = basic_credentials(req.headers()) {
        let client = req
            .extensions()
            .get::<ConnectInfo<std::net::SocketAddr>>()
            .map_or(std::net::IpAddr::from([0, 0, 0, 0]), |c| c.0.ip());
        // bcrypt is CPU-heavy on a cache miss: keep it off the async workers.
        let outcome =
            tokio::task::spawn_blocking(move || auth.check_from(client, &user, &password))
                .await
                .unwrap_or(AuthOutcome::Denied);
        match outcome {
            AuthOutcome::Allowed => return next.run(req).await,
            AuthOutcome::Denied => {}
            AuthOutcome::Limited => {
                let mut resp =
                    (StatusCode::TOO_MANY_REQUESTS, "Too many failed logins\n").into_response();
                resp.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(crate::webconfig::RETRY_AFTER_SECS),
                );
                return resp;
            }
        }
    }
    let mut resp = (StatusCode::UNAUTHORIZED, "Unauthorized\n").into_response();
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"pulse-exporter\""),
    );
    resp
}

/// Parses `--web.listen-address`: `:port` binds every interface, as Go exporters do.
pub fn parse_listen_address(text: &str) -> Result<std::net::SocketAddr, String> {
    let full = if text.starts_with(':') {
        format!("0.0.0.0{text}")
    } else {
        text.to_owned()
    };
    full.parse().map_err(|_| {
        format!("--web.listen-address {text:?} is not host:port (e.g. :7857 or 127.0.0.1:7857)")
    })
}
