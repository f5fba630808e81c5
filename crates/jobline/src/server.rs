//! The HTTP/1.1 server loop: accepts connections and serves the router on each with hyper, under
//! two read timeouts, until told to stop; then lets open connections finish.
//!
//! Why not `axum::serve`: it offers no timeouts, and a client that sends part of its headers (or
//! nothing at all), or announces a body it never sends, would hold a connection and its task
//! for ever. Here:
//! - the **header-read timeout** is hyper's own: a connection that has not sent a complete
//!   request head within it (counted from when the server starts waiting for one, so it also
//!   ends idle keep-alive connections) is closed without an answer;
//! - the **body-read timeout** bounds every pause while a body arrives (tower-http's
//!   `RequestBodyTimeoutLayer`, outermost, so it sees the bytes on the wire before the gzip
//!   layer does). A handler reading the body then fails, and the dialect answers 408 in its
//!   error shape (`jobline_http`'s `BodyError::TimedOut`) and closes the connection.
//!
//! Only HTTP/1.1 is served, as before: the workspace never enabled axum's `http2` feature.
//!
//! What this module must never do: decide a status code or an error body (those belong to the
//! dialects), or abort a request that is still being answered before the shutdown grace is up
//! (that is `Application`'s call).

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::time::Duration;
use tokio::net::TcpListener;
use tower::ServiceBuilder;
use tower_http::timeout::RequestBodyTimeoutLayer;
use tracing::{debug, warn};

/// How long to wait before accepting again after `accept` failed for a reason other than the
/// one connection (out of file descriptors, most likely): long enough not to spin, short
/// enough to recover quickly.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The read timeouts of every connection.
#[derive(Debug, Clone, Copy)]
pub struct ReadTimeouts {
    /// How long a client may take to send a complete request head.
    pub header: Duration,
    /// The longest pause allowed while a request body arrives.
    pub body: Duration,
}

/// Serves `router` on `listener` until `stop` completes, then stops accepting, asks every open
/// connection to close after its current request, and returns once all of them have.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    timeouts: ReadTimeouts,
    stop: impl Future<Output = ()>,
) {
    let service =
        ServiceBuilder::new().layer(RequestBodyTimeoutLayer::new(timeouts.body)).service(router);
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(timeouts.header);
    let graceful = GracefulShutdown::new();
    tokio::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) if is_connection_error(&e) => continue,
                Err(e) => {
                    warn!(error = %e, "cannot accept connections; retrying");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let hyper_service = TowerToHyperService::new(service.clone());
        let conn = graceful.watch(http.serve_connection(TokioIo::new(stream), hyper_service));
        tokio::spawn(async move {
            // A timed-out or reset connection is the client's business, not an error of ours.
            if let Err(e) = conn.await {
                debug!(%peer, error = %e, "connection ended");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// Errors of `accept` that concern one connection only (it was reset before it was accepted):
/// the listener is fine, accept the next.
fn is_connection_error(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}
