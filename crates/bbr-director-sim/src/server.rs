//! The HTTPS listener: hyper 1 (HTTP/1.1) over tokio-rustls on a tokio
//! runtime owned by a dedicated thread, so the simulator works the same from
//! synchronous tests and from inside another runtime, and dropping it never
//! drops a runtime in an async context.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rustls::ServerConfig;
use tokio::sync::oneshot;
use tokio_rustls::TlsAcceptor;

use crate::api;
use crate::state::Shared;

/// How long shutdown waits for in-flight blocking work (an SSH task).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// A running server; [`Server::stop`] (or drop) shuts it down and joins its
/// thread.
#[derive(Debug)]
pub(crate) struct Server {
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Serve `shared` on the already bound `listener`.
    pub(crate) fn start(
        listener: std::net::TcpListener,
        tls: Arc<ServerConfig>,
        shared: Arc<Shared>,
    ) -> io::Result<Server> {
        listener.set_nonblocking(true)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .max_blocking_threads(8)
            .thread_name("bbr-director-sim")
            .enable_all()
            .build()?;
        let (tx, rx) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("bbr-director-sim".to_owned())
            .spawn(move || {
                runtime.block_on(serve(listener, tls, shared, rx));
                runtime.shutdown_timeout(SHUTDOWN_GRACE);
            })?;
        Ok(Server {
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }

    /// Stop accepting, abort every connection and join the thread.
    pub(crate) fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            eprintln!("bbr-director-sim: server thread panicked");
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn serve(
    listener: std::net::TcpListener,
    tls: Arc<ServerConfig>,
    shared: Arc<Shared>,
    mut shutdown: oneshot::Receiver<()>,
) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("bbr-director-sim: cannot register listener: {e}");
            return;
        }
    };
    let acceptor = TlsAcceptor::from(tls);
    // Connection tasks are tracked so they can be aborted on shutdown.
    let mut conns = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = listener.accept() => {
                let Ok((tcp, _peer)) = accepted else { continue };
                let _ = tcp.set_nodelay(true);
                let acceptor = acceptor.clone();
                let shared = Arc::clone(&shared);
                conns.spawn(async move {
                    let Ok(stream) = acceptor.accept(tcp).await else { return };
                    let service = service_fn(move |req| {
                        let shared = Arc::clone(&shared);
                        async move { Ok::<_, std::convert::Infallible>(api::handle(shared, req).await) }
                    });
                    let _ = http1::Builder::new()
                        .keep_alive(true)
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        }
    }
    conns.abort_all();
    while conns.join_next().await.is_some() {}
}

/// Bind `127.0.0.1:0`.
pub(crate) fn bind() -> io::Result<(std::net::TcpListener, SocketAddr)> {
    let l = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    let addr = l.local_addr()?;
    Ok((l, addr))
}
