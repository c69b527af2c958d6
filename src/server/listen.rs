//! The accept loop: one hyper HTTP/1.1 connection per socket, with the
//! limits a server facing the network needs — a cap on open connections
//! (more are closed at once), a deadline for request headers (which is also
//! how long an idle kept-alive connection may wait for its next request:
//! hyper starts the clock as soon as it waits for a head), a deadline for
//! request bodies (408), and a deadline for graceful shutdown, after which
//! connections still open are dropped.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// Connection limits and deadlines of a served router.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Open connections at most; more are closed as soon as accepted.
    pub max_connections: usize,
    /// Request headers must arrive within this time, counted from when the
    /// connection waits for them (so it also bounds keep-alive idleness).
    pub header: Duration,
    /// A request body must arrive within this time (else 408).
    pub body: Duration,
    /// After SIGINT/SIGTERM, requests in flight get this long to finish.
    pub shutdown: Duration,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts {
            max_connections: 1024,
            header: Duration::from_secs(10),
            body: Duration::from_secs(60),
            shutdown: Duration::from_secs(30),
        }
    }
}

/// Serve `app` on `listener` until `stop` completes, then shut down
/// gracefully within `timeouts.shutdown`.
pub(crate) async fn serve_connections(
    listener: TcpListener,
    app: Router,
    timeouts: Timeouts,
    stop: impl std::future::Future<Output = ()>,
) {
    let slots = Arc::new(Semaphore::new(timeouts.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    tokio::pin!(stop);
    loop {
        let (stream, _peer): (_, SocketAddr) = tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                // Out of descriptors and the like: wait a moment, go on.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
            // Over the cap: closed unanswered (an answer costs what the cap
            // protects).
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(timeouts.header)
            .keep_alive(true);
        let conn = builder.serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            let _permit = permit;
            let _ = conn.await;
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(timeouts.shutdown) => {
            // A closed stderr must not turn shutdown into a panic.
            let _ = writeln!(
                std::io::stderr().lock(),
                "iscc-vdb: connections still open {:.1} s after shutdown began are closed",
                timeouts.shutdown.as_secs_f64()
            );
        }
    }
}
