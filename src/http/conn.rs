//! Serving one admitted connection ([`super::admission`]) with hyper, the same way on both
//! listeners: every byte read counts as activity, the request head has `header_timeout` (also
//! between requests on a kept-alive connection), the request body `body_timeout`, a whole
//! request proves the connection, and an eviction ends it whatever it is doing.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::Watcher;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::admission::{ConnState, Ticket};

/// How long a request may take to arrive, on both listeners (`[http]`).
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// The request head (from the moment the connection waits for one: its start, or the end
    /// of the previous response).
    pub header: Duration,
    /// The whole request body, from its head.
    pub body: Duration,
}

/// A socket (or any stream) that records on its connection's state every read that brought
/// bytes, so that the admission table knows which connections are alive.
pub struct Tracked<T> {
    inner: T,
    state: Arc<ConnState>,
}

impl<T> Tracked<T> {
    pub fn new(inner: T, state: Arc<ConnState>) -> Self {
        Tracked { inner, state }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Tracked<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.state.read(buf.filled().len() - before);
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Tracked<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// The error of a request body that did not arrive within `body_timeout`.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {0:?} (http.body_timeout)")]
pub struct BodyTimedOut(pub Duration);

impl BodyTimedOut {
    /// Whether `e` (a body error, however wrapped by the layers that read it) is a
    /// [`BodyTimedOut`]: the handlers answer it as `REQUEST_TIMEOUT`, not as a malformed body.
    pub fn is_cause_of(e: &(dyn std::error::Error + 'static)) -> bool {
        let mut cause = Some(e);
        while let Some(c) = cause {
            if c.is::<BodyTimedOut>() {
                return true;
            }
            cause = c.source();
        }
        false
    }
}

/// A request body that fails once its deadline passes, and proves its connection when it has
/// been read to the end.
pub struct DeadlineBody {
    inner: Incoming,
    deadline: Pin<Box<tokio::time::Sleep>>,
    limit: Duration,
    state: Arc<ConnState>,
    failed: bool,
    /// Whether reading the body to its end proves the connection ([`Proof::Whole`]).
    proves: bool,
}

impl DeadlineBody {
    fn new(inner: Incoming, limit: Duration, state: Arc<ConnState>, proves: bool) -> Self {
        DeadlineBody {
            inner,
            deadline: Box::pin(tokio::time::sleep(limit)),
            limit,
            state,
            failed: false,
            proves,
        }
    }
}

impl hyper::body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if this.failed {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if this.proves && this.inner.is_end_stream() {
                    this.state.prove();
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => {
                if this.proves {
                    this.state.prove();
                }
                Poll::Ready(None)
            }
            Poll::Pending => {
                if this.deadline.as_mut().poll(cx).is_ready() {
                    this.failed = true;
                    return Poll::Ready(Some(Err(BodyTimedOut(this.limit).into())));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.failed || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Serves HTTP/1.1 requests of `app` on `io` until the client is done, a timeout passes, the
/// connection is evicted from its listener's table, or `watcher`'s shutdown has let its
/// request in progress finish. `ticket` is the connection's place in the table (freed when this
/// returns).
/// What proves a connection genuine, so that it is never closed to make room for another
/// (`http::admission`): something a stranger cannot do cheaply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proof {
    /// A whole request (the peer listener, once the TLS handshake identified a configured peer).
    Whole,
    /// A request with credentials the API accepted: an `Authorization` header and an answer
    /// other than 401/403 (the clerk listener, where an unauthenticated `GET /healthz` or a
    /// 404 costs a stranger nothing).
    Authenticated,
    /// Nothing (a client certificate that identifies no configured peer: every push of it is
    /// refused, so it never holds a place a stranger could not take).
    Never,
}

#[allow(clippy::too_many_arguments)]
pub async fn serve<I>(
    io: I,
    app: Router,
    ticket: Ticket,
    timeouts: Timeouts,
    watcher: Watcher,
    remote: SocketAddr,
    listener: &'static str,
    proof: Proof,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let state = ticket.state().clone();
    let per_request = state.clone();
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let state = per_request.clone();
        let mut app = app.clone();
        async move {
            let (parts, body) = req.into_parts();
            state.request_started();
            if proof == Proof::Whole && hyper::body::Body::is_end_stream(&body) {
                // No body to wait for: the request is whole.
                state.prove();
            }
            let credentials = parts.headers.contains_key(hyper::header::AUTHORIZATION);
            let req = hyper::Request::from_parts(
                parts,
                Body::new(DeadlineBody::new(
                    body,
                    timeouts.body,
                    state.clone(),
                    proof == Proof::Whole,
                )),
            );
            let response = tower_service::Service::call(&mut app, req).await;
            if proof == Proof::Authenticated
                && credentials
                && let Ok(r) = &response
                && !matches!(r.status().as_u16(), 401 | 403)
            {
                state.prove();
            }
            response
        }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(timeouts.header)
        .serve_connection(TokioIo::new(io), service);
    tokio::select! {
        r = watcher.watch(conn) => {
            if let Err(e) = r {
                tracing::debug!(%remote, listener, error = %e, "connection ended with an error");
            }
        }
        _ = state.evicted() => {
            tracing::debug!(%remote, listener, "unproven connection evicted to make room");
        }
    }
    drop(ticket);
}

/// The next connection `admission` takes on `listener` (`name`: `clerk` or `peer`, for the
/// metrics and the log), counting what it evicts and refuses; `None` once `shutdown` turns
/// `true`. Failed accepts (out of descriptors and the like) back off and try again.
pub async fn next_admitted(
    listener: &tokio::net::TcpListener,
    admission: &Arc<super::admission::Admission>,
    metrics: &super::Metrics,
    name: &'static str,
    shutdown: &mut tokio::sync::watch::Receiver<bool>,
) -> Option<(tokio::net::TcpStream, SocketAddr, Ticket)> {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = super::peer_tls::stopped(shutdown) => return None,
        };
        let (tcp, remote) = match accepted {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(listener = name, error = %e, "accept failed");
                accept_backoff().await;
                continue;
            }
        };
        match admission.admit_tcp(source_of(&remote), &tcp) {
            Ok((ticket, how)) => {
                if how != super::admission::Admitted::Room {
                    metrics.connection_evicted(name);
                    tracing::debug!(%remote, listener = name, ?how, "listener full: an unproven connection made room");
                }
                return Some((tcp, remote, ticket));
            }
            Err(why) => {
                metrics.connection_refused(name);
                // Debug only: under a flood this is thousands a second (counted in `/metrics`).
                tracing::debug!(%remote, listener = name, ?why, "connection refused");
            }
        }
    }
}

/// The address a connection came from, as the admission table counts it: an IPv4 address
/// mapped into IPv6 counts as the IPv4 address (a dual-stack listener sees both forms), and an
/// IPv6 address counts as its /64 — the smallest block one subscriber is given, so one host
/// cannot pass the per-source caps by taking a fresh address for each connection.
pub fn source_of(remote: &SocketAddr) -> std::net::IpAddr {
    match remote.ip() {
        std::net::IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => std::net::IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                std::net::IpAddr::V6(std::net::Ipv6Addr::from(prefix))
            }
        },
        v4 => v4,
    }
}

/// Sleeps a little after a failed `accept` (out of file descriptors and the like) so the loop
/// does not spin.
pub fn accept_backoff() -> impl Future<Output = ()> {
    tokio::time::sleep(Duration::from_millis(50))
}

#[cfg(test)]
mod tests {
    use super::source_of;

    #[test]
    fn ipv6_sources_count_by_their_64_and_mapped_ipv4_as_ipv4() {
        let at = |s: &str| source_of(&s.parse().unwrap()).to_string();
        assert_eq!(at("[2001:db8:1:2:aaaa::1]:443"), "2001:db8:1:2::");
        assert_eq!(at("[2001:db8:1:2:ffff:1:2:3]:443"), "2001:db8:1:2::");
        assert_ne!(at("[2001:db8:1:3::1]:443"), "2001:db8:1:2::");
        assert_eq!(at("[::ffff:10.0.0.7]:443"), "10.0.0.7");
        assert_eq!(at("127.0.0.2:443"), "127.0.0.2");
    }
}
