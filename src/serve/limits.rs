//! Keeping a hostile or broken client from holding the server: connections at once in all
//! and per client address (an IPv6 /64), the last slots kept for addresses holding none, the
//! time and bytes a request head may take (shorter on a busy server), applied before any TLS
//! handshake or read.

use crate::sync::MutexExt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum_server::accept::Accept;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

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

/// Applies the header limits to both protocols a connection may speak.
pub(super) fn harden(
    builder: &mut hyper_util::server::conn::auto::Builder<TokioExecutor>,
    limits: &Limits,
) {
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

/// Connections held per client address, for [`Limits::max_connections_per_address`].
pub(super) struct PerAddress {
    max: usize,
    held: std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>,
}

impl PerAddress {
    pub(super) fn new(max: usize) -> Self {
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
        let mut held = self.held.locked();
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
pub(super) struct AddressSlot {
    owner: Arc<PerAddress>,
    key: std::net::IpAddr,
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut held = self.owner.held.locked();
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
pub(super) trait PeerIp {
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
pub(super) struct ConnectionLimit<A> {
    inner: A,
    permits: Arc<Semaphore>,
    max_connections: usize,
    busy_head_timeout: Duration,
    per_address: Arc<PerAddress>,
}

impl<A> ConnectionLimit<A> {
    /// `inner` behind the connection limits.
    pub(super) fn new(
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
pub(super) struct Permitted<T> {
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
}
