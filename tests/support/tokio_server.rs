//! The tokio scaffolding the async tests share: their runtime, and a server on 127.0.0.1 run by
//! its own thread and runtime. Included as `support::tokio_server`, or with `#[path]` by test
//! files that do not include all of `support`.
#![allow(dead_code)] // each test file uses a different subset

use std::future::Future;
use std::net::SocketAddr;
use std::sync::mpsc;

use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// The runtime the tests run servers and test bodies on: multi-thread, 2 workers, all drivers.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Binds a listener on 127.0.0.1 (any port) on a new thread with its own [`runtime`], and runs
/// `serve(listener, stopped)` there until it returns. Returns once the listener is bound: its
/// address, and the sender that resolves `stopped` (dropping it resolves `stopped` too).
pub fn spawn<F, Fut>(serve: F) -> (SocketAddr, oneshot::Sender<()>)
where
    F: FnOnce(TcpListener, oneshot::Receiver<()>) -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    let (addr_tx, addr_rx) = mpsc::channel();
    let (stop, stopped) = oneshot::channel::<()>();
    std::thread::spawn(move || {
        runtime().block_on(async move {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            addr_tx.send(listener.local_addr().unwrap()).unwrap();
            serve(listener, stopped).await;
        });
    });
    (addr_rx.recv().unwrap(), stop)
}
