//! The HTTP server: `/metrics`, `/probe`, `/sd`, `/`, `/-/healthy`, `/-/ready`, `/-/reload`,
//! `/ping/NAME/…`, with optional basic auth and TLS from the web config, and graceful shutdown.

use crate::sync::RwLockExt;
use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine;
use prometheus_client::registry::Registry;
use tokio::sync::Semaphore;

use crate::runtime::app::App;
use crate::serve::collector::SnapshotCollector;
use crate::serve::exposition::Format;
use crate::serve::limits::{harden, ConnectionLimit, Limits, PerAddress};
use crate::serve::probe::ProbeQuery;
use crate::serve::webconfig::{Admission, AuthOutcome, BasicAuth, WebConfig};
use crate::serve::webwatch::{self, LiveAuth, Targets};

/// How long in-flight requests may finish after a shutdown signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

#[derive(Clone)]
struct HttpState {
    app: Arc<App>,
    registry: Arc<Registry>,
    /// Bodies encoded once per store change.
    encoded: Arc<crate::serve::encoded::Encoded>,
    auth: LiveAuth,
    telemetry_path: Arc<str>,
    /// Held while a reload runs: reloads run one at a time and a flood of them is refused.
    reloading: Arc<tokio::sync::Mutex<()>>,
}

/// Serves on `listener` with the default [`Limits`] until `shutdown` completes, then drains
/// requests for up to [`SHUTDOWN_GRACE`]. Tests bind `127.0.0.1:0` and pass the listener in.
pub async fn serve(
    listener: std::net::TcpListener,
    app: Arc<App>,
    web: WebConfig,
    telemetry_path: &str,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(
        listener,
        app,
        web,
        telemetry_path,
        Limits::default(),
        shutdown,
    )
    .await
}

/// The endpoints, behind the web config's basic auth.
fn router(app: Arc<App>, auth: LiveAuth, telemetry_path: &str) -> Router {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(SnapshotCollector::new(app.store())));
    let state = HttpState {
        app,
        registry: Arc::new(registry),
        encoded: Arc::default(),
        auth,
        telemetry_path: telemetry_path.into(),
        reloading: Arc::default(),
    };
    let router = Router::new()
        .route("/", get(landing))
        .route(telemetry_path, get(metrics))
        .route("/dashboards.json", get(dashboards))
        .route("/rules.yml", get(rules))
        .route("/probe", get(probe))
        .route("/sd", get(sd))
        .route("/-/healthy", get(|| async { "Healthy\n" }))
        .route("/-/ready", get(|| async { "Ready\n" }))
        .route("/-/reload", post(reload).put(reload))
        .layer(middleware::from_fn_with_state(state.clone(), require_auth));
    // Pings sign themselves (a job's token, a ping key or a web config user): added after
    // the basic auth layer, which would ask every cron line for a password.
    #[cfg(feature = "jobs")]
    let router = router
        .route("/ping/{name}", get(ping_success).post(ping_success))
        .route("/ping/{name}/{signal}", get(ping_signal).post(ping_signal));
    // A cron line still pinging a build without jobs is told why, not just "not found".
    #[cfg(not(feature = "jobs"))]
    let router = router.route(
        "/ping/{*rest}",
        axum::routing::any(|| async {
            (
                StatusCode::NOT_FOUND,
                "this build of pulse-exporter takes no pings: it was built without the `jobs` feature\n",
            )
        }),
    );
    router.with_state(state)
}

/// [`serve`] with explicit [`Limits`]. A web config read from a file is watched and re-read
/// while serving (see [`crate::serve::webwatch`]).
pub async fn serve_with(
    listener: std::net::TcpListener,
    app: Arc<App>,
    web: WebConfig,
    telemetry_path: &str,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let store = app.store();
    let auth: LiveAuth = Arc::new(RwLock::new(
        BasicAuth::new(&web.basic_auth_users).map(Arc::new),
    ));
    let router = router(app, auth.clone(), telemetry_path);

    let handle = axum_server::Handle::new();
    let trigger = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        trigger.graceful_shutdown(Some(SHUTDOWN_GRACE));
    });
    listener.set_nonblocking(true)?;
    // The client address keys the limit on failed logins.
    let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let per_address = Arc::new(PerAddress::new(limits.max_connections_per_address));
    // The accept loop is a task of the runtime's workers rather than part of the caller's
    // `block_on` (main's thread): a connection is then served by the worker that accepted
    // it, instead of each one waking the main thread and a worker in turn (a quarter less
    // CPU per scrape, half the context switches). Dropping this future still stops it.
    let mut serving = AbortOnDrop(tokio::spawn(async move {
        match &web.tls_server_config {
            Some(tls) => {
                let config = tls.server_config().map_err(std::io::Error::other)?;
                store.set_web_certificate(tls.certificate_expiry());
                let rustls = axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(config));
                let _watch = webwatch::spawn(
                    &web,
                    Targets {
                        auth,
                        tls: Some(rustls.clone()),
                        store: store.clone(),
                    },
                )
                .map(AbortOnDrop);
                let mut server = axum_server::from_tcp_rustls(listener, rustls)
                    .handle(handle)
                    .map(|tls| ConnectionLimit::new(tls, permits, &limits, per_address));
                harden(server.http_builder(), &limits);
                server.serve(service).await
            }
            None => {
                let _watch = webwatch::spawn(
                    &web,
                    Targets {
                        auth,
                        tls: None,
                        store,
                    },
                )
                .map(AbortOnDrop);
                let mut server =
                    axum_server::from_tcp(listener)
                        .handle(handle)
                        .acceptor(ConnectionLimit::new(
                            axum_server::accept::DefaultAcceptor,
                            permits,
                            &limits,
                            per_address,
                        ));
                harden(server.http_builder(), &limits);
                server.serve(service).await
            }
        }
    }));
    (&mut serving.0).await.map_err(std::io::Error::other)?
}

/// Aborts a background task when dropped: the web config watcher when the server stops,
/// the accept loop when its caller is dropped, and the config watcher of `main`.
pub struct AbortOnDrop<T = ()>(pub tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The query of `/metrics`.
#[derive(Debug, Default, serde::Deserialize)]
struct MetricsQuery {
    /// `exporter`: the exporter's own series only (see [`SnapshotCollector::exporter_only`]).
    only: Option<String>,
}

async fn metrics(
    State(st): State<HttpState>,
    Query(query): Query<MetricsQuery>,
    headers: HeaderMap,
) -> Response {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    let format = Format::negotiate(text(header::ACCEPT));
    match query.only.as_deref() {
        None => {}
        Some("exporter") => {
            let mut registry = Registry::default();
            registry.register_collector(Box::new(SnapshotCollector::exporter_only(st.app.store())));
            return encoded(&registry, format);
        }
        Some(_) => {
            return (
                StatusCode::BAD_REQUEST,
                "`only=` takes `exporter` (the exporter's own series, for a deployment that \
                 scrapes the sources through /probe)\n",
            )
                .into_response()
        }
    }
    let gzip = crate::serve::encoded::accepts_gzip(text(header::ACCEPT_ENCODING));
    match st.encoded.body(&st.registry, &st.app.store(), format, gzip) {
        Ok(body) => {
            let mut resp = ([(header::CONTENT_TYPE, format.content_type())], body).into_response();
            let h = resp.headers_mut();
            h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
            if gzip {
                h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            }
            resp
        }
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "encoding metrics failed\n",
        )
            .into_response(),
    }
}

/// One source's or leased target's series, from the cache (see [`crate::serve::probe`]).
async fn probe(
    State(st): State<HttpState>,
    Query(query): Query<ProbeQuery>,
    headers: HeaderMap,
) -> Response {
    use crate::serve::probe::{chosen, lease_refusal, wait_bound, Asked};
    use crate::serve::refusal::Refusal;
    let refused = |r: Refusal| r.into_response();
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (source, warming) = match chosen(&query, &st.app.sources()) {
        Ok(Asked::Source(name)) => (name.to_owned(), None),
        Ok(Asked::Target { template, target }) => match st.app.lease(template, target) {
            Ok(source) => {
                // The first request of a lease waits, the rest answer from the cache at once.
                let pending = match st.app.first_wait(&source) {
                    true => {
                        let bound = wait_bound(text("x-prometheus-scrape-timeout-seconds"));
                        first_results(&st.app, &source, bound).await
                    }
                    false => st.app.warming(&source),
                };
                (source, Some(pending))
            }
            Err(e) => return refused(lease_refusal(&e)),
        },
        Err(r) => return refused(r),
    };
    let format = Format::negotiate(text(header::ACCEPT.as_str()));
    let mut registry = Registry::default();
    registry.register_collector(Box::new(SnapshotCollector::for_source(
        st.app.store(),
        &source,
    )));
    if let Some(pending) = warming {
        let gauge = prometheus_client::metrics::gauge::ConstGauge::new(i64::from(pending > 0));
        let warming = &crate::series::own_metrics::PROBE_WARMING;
        // The registry adds the final period back.
        registry.register(warming.name, warming.help.trim_end_matches('.'), gauge);
    }
    encoded(&registry, format)
}

/// `registry` encoded in `format`, for an answer made for one request (`/probe`,
/// `/metrics?only=exporter`); `/metrics` itself serves the shared encoded body.
fn encoded(registry: &Registry, format: Format) -> Response {
    match crate::serve::exposition::encode(registry, format) {
        Ok(body) => ([(header::CONTENT_TYPE, format.content_type())], body).into_response(),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "encoding metrics failed\n",
        )
            .into_response(),
    }
}

/// Waits, no longer than `bound`, for every check of the leased `source` to finish a first
/// run; returns how many have not.
async fn first_results(app: &App, source: &str, bound: std::time::Duration) -> usize {
    let deadline = tokio::time::Instant::now() + bound;
    loop {
        let pending = app.warming(source);
        if pending == 0 || tokio::time::Instant::now() >= deadline {
            return pending;
        }
        tokio::time::sleep_until(deadline.min(tokio::time::Instant::now() + POLL)).await;
    }
}

/// How often a warming target's first results are looked for.
const POLL: std::time::Duration = std::time::Duration::from_millis(25);

/// HTTP service discovery: the sources this replica runs, addressed to the host it was
/// asked at (see [`crate::serve::probe`]).
async fn sd(State(st): State<HttpState>, uri: Uri, headers: HeaderMap) -> Response {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| uri.authority().map(|a| a.to_string()));
    let Some(host) = host.filter(|h| !h.is_empty()) else {
        return (
            StatusCode::BAD_REQUEST,
            "a request without a Host: `/sd` addresses each target to the host it is asked at\n",
        )
            .into_response();
    };
    let groups = crate::serve::probe::discovery(&st.app.sources(), &host);
    match serde_json::to_string(&groups) {
        Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "encoding failed\n").into_response(),
    }
}

/// The Grafana dashboard generated from the running config.
async fn dashboards(State(st): State<HttpState>) -> Response {
    let body = st.app.generated().dashboard().to_owned();
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// The Prometheus rules generated from the running config.
async fn rules(State(st): State<HttpState>) -> Response {
    let body = st.app.generated().rules().to_owned();
    ([(header::CONTENT_TYPE, "application/yaml")], body).into_response()
}

async fn landing(State(st): State<HttpState>) -> Html<String> {
    Html(crate::serve::landing::render(
        &st.app.sources(),
        &st.app.store().snapshot(),
        &st.telemetry_path,
        st.app.store().shard_status(),
        &st.app.store().reload_status(),
        &st.app.leases(),
        &st.app.job_list(),
    ))
}

async fn reload(State(st): State<HttpState>) -> Response {
    // One reload at a time: a flood of reloads is refused, not queued, so it never piles up
    // config parsing and reconnects behind the scrapes.
    let Ok(_running) = st.reloading.try_lock() else {
        let mut resp = (
            StatusCode::TOO_MANY_REQUESTS,
            "a reload is already running; try again when it has finished\n",
        )
            .into_response();
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return resp;
    };
    match st.app.reload().await {
        Ok(()) => (StatusCode::OK, "configuration reloaded\n").into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!(
                "reload failed; the previous configuration keeps running:\n{}\n",
                crate::secrets::scrub(&e.to_string())
            ),
        )
            .into_response(),
    }
}

#[cfg(feature = "jobs")]
async fn ping_success(
    st: State<HttpState>,
    axum::extract::Path(name): axum::extract::Path<String>,
    query: Query<crate::serve::ping::PingQuery>,
    req: Request,
) -> Response {
    take_ping(st, name, None, query, req).await
}

#[cfg(feature = "jobs")]
async fn ping_signal(
    st: State<HttpState>,
    axum::extract::Path((name, signal)): axum::extract::Path<(String, String)>,
    query: Query<crate::serve::ping::PingQuery>,
    req: Request,
) -> Response {
    take_ping(st, name, Some(signal), query, req).await
}

/// A ping: signed by a bearer token or a web config user, its body bounded in size and time,
/// taken by the job tracker at the server's receive time.
#[cfg(feature = "jobs")]
async fn take_ping(
    State(st): State<HttpState>,
    name: String,
    signal: Option<String>,
    Query(query): Query<crate::serve::ping::PingQuery>,
    req: Request,
) -> Response {
    use crate::jobs::tracker::Credential;
    use crate::serve::refusal::Refusal;
    let client = client_ip(&req);
    let (parts, body) = req.into_parts();
    let headers = parts.headers;
    use crate::serve::ping;
    // Received now: the client's clock is never asked.
    let at = crate::series::sample::unix_now();
    let refused = |r: Refusal| r.into_response();
    let signal = match ping::signal(signal.as_deref(), &query) {
        Ok(s) => s,
        Err(r) => return refused(r),
    };
    let bytes = match ping::read_body(body).await {
        Ok(b) => b,
        Err(r) => return refused(r),
    };
    let the_ping = match ping::ping(signal, &query, &bytes, at) {
        Ok(p) => p,
        Err(r) => return refused(r),
    };
    let auth = st.auth.read_locked().clone();
    let web_users = auth.is_some();
    let credential = match (ping::bearer(&headers), basic_credentials(&headers), auth) {
        (Some(token), _, _) => Credential::Bearer(token),
        (None, Some((user, password)), Some(auth)) => {
            match login(auth, client, user, password).await {
                AuthOutcome::Allowed => Credential::WebUser,
                AuthOutcome::Denied => Credential::None,
                AuthOutcome::Limited => return too_many_logins(),
            }
        }
        _ => Credential::None,
    };
    let tracker = st.app.jobs();
    match tracker.ping(&name, credential, web_users, the_ping).await {
        Ok(crate::jobs::state::Applied::Counted) => (StatusCode::OK, "OK\n").into_response(),
        Ok(crate::jobs::state::Applied::Duplicate) => (
            StatusCode::OK,
            "OK (this run's ping was already recorded)\n",
        )
            .into_response(),
        Err(r) => {
            let r = Refusal::from(r);
            if r.status == StatusCode::SERVICE_UNAVAILABLE {
                tracing::warn!(event = "jobs.ping_failed", job = %name, error = %r.message, "a ping could not be recorded");
            }
            refused(r)
        }
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
    let current = st.auth.read_locked().clone();
    let Some(auth) = current else {
        return next.run(req).await;
    };
    if let Some((user, password)) = basic_credentials(req.headers()) {
        match login(auth, client_ip(&req), user, password).await {
            AuthOutcome::Allowed => return next.run(req).await,
            AuthOutcome::Denied => {}
            AuthOutcome::Limited => return too_many_logins(),
        }
    }
    let mut resp = (StatusCode::UNAUTHORIZED, "Unauthorized\n").into_response();
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"pulse-exporter\""),
    );
    resp
}

/// The address a request came from (the key of the limit on failed logins).
fn client_ip(req: &Request) -> std::net::IpAddr {
    req.extensions()
        .get::<ConnectInfo<std::net::SocketAddr>>()
        .map_or(std::net::IpAddr::from([0, 0, 0, 0]), |c| c.0.ip())
}

/// The web config's verdict on basic-auth credentials from `client`: remembered ones at
/// once, the others through bcrypt (see [`verify`]).
async fn login(
    auth: Arc<BasicAuth>,
    client: std::net::IpAddr,
    user: String,
    password: String,
) -> AuthOutcome {
    match auth.admit(client, &user, &password) {
        Admission::Allowed => AuthOutcome::Allowed,
        Admission::Limited => AuthOutcome::Limited,
        Admission::Verify(digest) => verify(auth, user, password, digest).await,
    }
}

/// 429 for a client past the limit on failed logins.
fn too_many_logins() -> Response {
    let mut resp = (StatusCode::TOO_MANY_REQUESTS, "Too many failed logins\n").into_response();
    resp.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from(crate::serve::webconfig::RETRY_AFTER_SECS),
    );
    resp
}

/// How long a login waits for a bcrypt slot before it is refused like a limited client.
const VERIFY_QUEUE_WAIT: Duration = Duration::from_secs(2);

/// Runs bcrypt for credentials that are not remembered: on the blocking pool (it is
/// CPU-heavy), holding one of the few verification slots.
async fn verify(
    auth: Arc<BasicAuth>,
    user: String,
    password: String,
    digest: [u8; 32],
) -> AuthOutcome {
    let slot = auth.verification_slot();
    let Ok(Ok(permit)) = tokio::time::timeout(VERIFY_QUEUE_WAIT, slot.acquire_owned()).await else {
        return AuthOutcome::Limited;
    };
    let ok = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        auth.verify(&user, &password, digest)
    })
    .await
    .unwrap_or(false);
    if ok {
        AuthOutcome::Allowed
    } else {
        AuthOutcome::Denied
    }
}

/// Parses `--web.listen-address`: `:port` binds every IPv4 interface (0.0.0.0); Go exporters
/// bind IPv6 too; `[::]:port` binds IPv6, and IPv4 where the system maps it.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_decoded_and_malformed_ones_are_none() {
        let with = |value: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
            basic_credentials(&h)
        };
        // "prom:pa:ss" — a password may hold colons; the user may not.
        assert_eq!(
            with("Basic cHJvbTpwYTpzcw=="),
            Some(("prom".to_owned(), "pa:ss".to_owned()))
        );
        assert_eq!(
            with("basic cHJvbTpwYTpzcw==").map(|c| c.0),
            Some("prom".to_owned())
        );
        assert_eq!(with("Bearer cHJvbTpwYTpzcw=="), None);
        assert_eq!(with("Basic !!!"), None);
        assert_eq!(with("Basic bm9jb2xvbg=="), None, "no colon");
        assert_eq!(basic_credentials(&HeaderMap::new()), None);
    }

    #[test]
    fn listen_addresses_follow_the_go_exporters() {
        assert_eq!(
            parse_listen_address(":7857").unwrap().to_string(),
            "0.0.0.0:7857"
        );
        assert!(parse_listen_address("localhost").is_err());
    }
}
