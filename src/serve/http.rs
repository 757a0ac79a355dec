//! The HTTP server: `/metrics`, `/`, `/-/healthy`, `/-/ready`, `/-/reload`, with optional
//! basic auth and TLS from the web config, and graceful shutdown.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use axum_server::accept::Accept;
use base64::Engine;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use prometheus_client::registry::Registry;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::run::app::App;
use crate::serve::collector::SnapshotCollector;
use crate::serve::exposition::Format;
use crate::serve::webconfig::{Admission, AuthOutcome, BasicAuth, WebConfig};
use crate::serve::webwatch::{self, LiveAuth, Targets};

/// How long in-flight requests may finish after a shutdown signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Limits that keep a hostile or broken client from holding the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections served at once; a connection beyond them is closed at once, so a flood
    /// of idle connections cannot hold every worker (`--web.max-connections`).
    pub max_connections: usize,
    /// Connections one client address (an IPv6 /64) holds at once; more from it are closed
    /// at once, so slow clients from one address leave the other slots to everyone else
    /// (`--web.max-connections-per-address`).
    pub max_connections_per_address: usize,
    /// Time a client has to send its request line and headers (against slowloris).
    pub header_read_timeout: Duration,
    /// The same, for a connection accepted while three quarters of `max_connections` are
    /// taken: on a busy server a slow head is cut sooner, so slow clients that reconnect
    /// cannot hold the slots (a scraper sends its head at once).
    pub busy_header_read_timeout: Duration,
    /// Bytes of request line and headers accepted; more is answered 431.
    pub max_header_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 256,
            max_connections_per_address: 32,
            header_read_timeout: Duration::from_secs(10),
            busy_header_read_timeout: Duration::from_secs(2),
            max_header_bytes: 16 * 1024,
        }
    }
}

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
    let mut registry = Registry::default();
    registry.register_collector(Box::new(SnapshotCollector::new(store.clone())));
    let auth: LiveAuth = Arc::new(RwLock::new(
        BasicAuth::new(&web.basic_auth_users).map(Arc::new),
    ));
    let state = HttpState {
        app,
        registry: Arc::new(registry),
        encoded: Arc::default(),
        auth: auth.clone(),
        telemetry_path: telemetry_path.into(),
        reloading: Arc::default(),
    };
    let router = Router::new()
        .route("/", get(landing))
        .route(telemetry_path, get(metrics))
        .route("/dashboards.json", get(dashboards))
        .route("/rules.yml", get(rules))
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
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let per_address = Arc::new(PerAddress::new(limits.max_connections_per_address));
    match &web.tls_server_config {
        Some(tls) => {
            let config = tls.server_config().map_err(std::io::Error::other)?;
            store.set_web_certificate(tls.certificate_expiry().map(|t| t as f64));
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
}

/// Applies the header limits to both protocols a connection may speak.
fn harden(builder: &mut hyper_util::server::conn::auto::Builder<TokioExecutor>, limits: &Limits) {
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
        .max_concurrent_streams(32);
}

/// Aborts a background task when dropped: the web config watcher when the server stops,
/// and the config watcher of `main`.
pub struct AbortOnDrop(pub tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Connections held per client address, for [`Limits::max_connections_per_address`].
struct PerAddress {
    max: usize,
    held: std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>,
}

impl PerAddress {
    fn new(max: usize) -> Self {
        PerAddress {
            max,
            held: Default::default(),
        }
    }

    /// One more connection for `peer`, or `None` when it holds its share already. With
    /// `last_slots` (the server nearly full), only an address holding no connection gets
    /// one: the last slots are kept for a client that has none, such as a scraper arriving
    /// while others hold the rest.
    fn take(self: &Arc<Self>, peer: std::net::IpAddr, last_slots: bool) -> Option<AddressSlot> {
        let key = crate::serve::webconfig::limit_key(peer);
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let n = held.entry(key).or_insert(0);
        if *n >= self.max || (last_slots && *n > 0) {
            if *n == 0 {
                held.remove(&key);
            }
            return None;
        }
        *n += 1;
        Some(AddressSlot {
            owner: self.clone(),
            key,
        })
    }
}

/// A connection's place in its address's share, given back when the connection closes.
struct AddressSlot {
    owner: Arc<PerAddress>,
    key: std::net::IpAddr,
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut held = self.owner.held.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = held.get_mut(&self.key) {
            *n -= 1;
            // An address without connections is forgotten: the map stays as small as the
            // set of connected clients.
            if *n == 0 {
                held.remove(&self.key);
            }
        }
    }
}

/// The client address of an accepted stream.
trait PeerIp {
    fn peer_ip(&self) -> Option<std::net::IpAddr>;
}

impl PeerIp for tokio::net::TcpStream {
    fn peer_ip(&self) -> Option<std::net::IpAddr> {
        self.peer_addr().ok().map(|a| a.ip())
    }
}

/// An acceptor that takes a permit per connection and closes connections beyond
/// [`Limits::max_connections`], or beyond [`Limits::max_connections_per_address`] from one
/// address, before any TLS handshake or read.
#[derive(Clone)]
struct ConnectionLimit<A> {
    inner: A,
    permits: Arc<Semaphore>,
    max_connections: usize,
    busy_head_timeout: Duration,
    per_address: Arc<PerAddress>,
}

impl<A> ConnectionLimit<A> {
    /// `inner` behind the connection limits.
    fn new(
        inner: A,
        permits: Arc<Semaphore>,
        limits: &Limits,
        per_address: Arc<PerAddress>,
    ) -> Self {
        ConnectionLimit {
            inner,
            permits,
            max_connections: limits.max_connections,
            busy_head_timeout: limits.busy_header_read_timeout,
            per_address,
        }
    }
}

impl<I, S, A> Accept<I, S> for ConnectionLimit<A>
where
    I: PeerIp,
    A: Accept<I, S>,
    A::Future: Send + 'static,
    A::Stream: Send + 'static,
    A::Service: Send + 'static,
{
    type Stream = Permitted<A::Stream>;
    type Service = A::Service;
    type Future =
        futures_util::future::BoxFuture<'static, std::io::Result<(Self::Stream, Self::Service)>>;

    fn accept(&self, stream: I, service: S) -> Self::Future {
        // The address's share first: a client over it takes no global permit either.
        // The last sixteenth of the slots (at least one) go to addresses holding none.
        let reserve = (self.max_connections / 16).max(1);
        let available = self.permits.available_permits();
        let last_slots = available <= reserve;
        // Started now, so a slow TLS handshake counts against it too.
        let head_deadline = (available <= self.max_connections / 4)
            .then(|| Box::pin(tokio::time::sleep(self.busy_head_timeout)));
        let slot = match stream.peer_ip() {
            Some(ip) => self.per_address.take(ip, last_slots).ok_or("per-address"),
            None => Err("no peer address"),
        };
        let permit = slot
            .is_ok()
            .then(|| self.permits.clone().try_acquire_owned().ok())
            .flatten();
        let inner = self.inner.accept(stream, service);
        Box::pin(async move {
            let slot = match slot {
                Ok(slot) => slot,
                Err(why) => {
                    tracing::debug!(
                        why,
                        "connection refused: --web.max-connections-per-address reached"
                    );
                    return Err(std::io::Error::other(
                        "per-address connection limit reached",
                    ));
                }
            };
            let Some(permit) = permit else {
                tracing::debug!("connection refused: --web.max-connections reached");
                return Err(std::io::Error::other("connection limit reached"));
            };
            let (stream, service) = inner.await?;
            Ok((
                Permitted {
                    inner: stream,
                    head_deadline,
                    _permit: permit,
                    _slot: slot,
                },
                service,
            ))
        })
    }
}

/// A connection's stream with the permit it holds until it closes.
struct Permitted<T> {
    inner: T,
    /// Set for a connection accepted on a busy server: reading fails once it passes before
    /// the server has written anything, i.e. while the first request head is still arriving
    /// ([`Limits::busy_header_read_timeout`]). The first write clears it.
    head_deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    _permit: OwnedSemaphorePermit,
    _slot: AddressSlot,
}

impl<T> Permitted<T> {
    fn wrote(&mut self, n: &Poll<std::io::Result<usize>>) {
        if matches!(n, Poll::Ready(Ok(n)) if *n > 0) {
            self.head_deadline = None;
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Permitted<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if let Some(deadline) = self.head_deadline.as_mut() {
            // Polled here so the connection's task wakes when it passes.
            if deadline.as_mut().poll(cx).is_ready() {
                tracing::debug!("connection closed: request head too slow on a busy server");
                return Poll::Ready(Err(std::io::ErrorKind::TimedOut.into()));
            }
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Permitted<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let n = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.wrote(&n);
        n
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let n = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.wrote(&n);
        n
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

async fn metrics(State(st): State<HttpState>, headers: HeaderMap) -> Response {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    let format = Format::negotiate(text(header::ACCEPT));
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

/// The Grafana dashboard generated from the running config.
async fn dashboards(State(st): State<HttpState>) -> Response {
    let body = st.app.generated().dashboard.clone();
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// The Prometheus rules generated from the running config.
async fn rules(State(st): State<HttpState>) -> Response {
    let body = st.app.generated().rules.clone();
    ([(header::CONTENT_TYPE, "application/yaml")], body).into_response()
}

async fn landing(State(st): State<HttpState>) -> Html<String> {
    Html(crate::serve::landing::render(
        &st.app.sources(),
        &st.app.store().snapshot(),
        &st.telemetry_path,
        st.app.store().shard_status(),
        &st.app.store().reload_status(),
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
    let current = st.auth.read().unwrap_or_else(|e| e.into_inner()).clone();
    let Some(auth) = current else {
        return next.run(req).await;
    };
    if let Some((user, password)) = basic_credentials(req.headers()) {
        let client = req
            .extensions()
            .get::<ConnectInfo<std::net::SocketAddr>>()
            .map_or(std::net::IpAddr::from([0, 0, 0, 0]), |c| c.0.ip());
        let outcome = match auth.admit(client, &user, &password) {
            Admission::Allowed => AuthOutcome::Allowed,
            Admission::Limited => AuthOutcome::Limited,
            Admission::Verify(digest) => verify(auth, user, password, digest).await,
        };
        match outcome {
            AuthOutcome::Allowed => return next.run(req).await,
            AuthOutcome::Denied => {}
            AuthOutcome::Limited => {
                let mut resp =
                    (StatusCode::TOO_MANY_REQUESTS, "Too many failed logins\n").into_response();
                resp.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(crate::serve::webconfig::RETRY_AFTER_SECS),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_keeps_to_its_share_and_the_last_slots_go_to_new_addresses() {
        let per = Arc::new(PerAddress::new(2));
        let (a, b): (std::net::IpAddr, std::net::IpAddr) =
            ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let first = per.take(a, false).unwrap();
        let _second = per.take(a, false).unwrap();
        assert!(per.take(a, false).is_none(), "a third over the share of 2");
        drop(first);
        assert!(
            per.take(a, true).is_none(),
            "the last slots are not for a holder"
        );
        let new = per.take(b, true).expect("a new address gets a last slot");
        drop(new);
        drop(_second);
        assert!(
            per.held.lock().unwrap().is_empty(),
            "addresses without connections are forgotten"
        );
    }

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
