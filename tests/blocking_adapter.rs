//! The blocking adapter's deadlines over real loopback sockets (bounded, not timed: each test
//! only asserts that the deadline ends the wait, with generous upper bounds).

use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use hybi::{blocking, CloseCode, Config, Connection, Error, Message, Role, Timeout, Timeouts};

fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (b, _) = listener.accept().unwrap();
    (a, b)
}

#[test]
fn dead_peer_is_dropped_after_ping_and_pong_timeout() {
    let (a, _silent_peer) = pair();
    let options = Timeouts::default()
        .with_ping_interval(Some(Duration::from_millis(100)))
        .with_pong_timeout(Some(Duration::from_millis(100)));
    let mut ws = blocking::WebSocket::new(
        a,
        Connection::open(Role::Client, Config::default()),
        options,
    );
    let started = Instant::now();
    let err = ws.recv().unwrap_err();
    assert!(matches!(err, Error::Timeout(Timeout::Pong)), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn opening_handshake_timeout() {
    let (a, _silent_peer) = pair();
    let options = Timeouts::default().with_handshake_timeout(Some(Duration::from_millis(200)));
    let r = blocking::accept_with(a, Config::default(), options, |_| Ok(hybi::Accept::new()));
    assert!(
        matches!(r, Err(Error::Timeout(Timeout::Handshake))),
        "{r:?}"
    );
}

#[test]
fn close_is_bounded_when_the_peer_stopped_reading() {
    let (a, _silent_peer) = pair();
    let options = Timeouts::default().with_close_timeout(Some(Duration::from_millis(300)));
    let mut ws = blocking::WebSocket::new(
        a,
        Connection::open(Role::Server, Config::default()),
        options,
    );
    // Fill the socket buffers: the peer never reads.
    ws.connection_mut()
        .send_binary(&vec![0u8; 32 << 20])
        .unwrap();
    let started = Instant::now();
    let err = ws.close_with(CloseCode::GOING_AWAY, "").unwrap_err();
    assert!(matches!(err, Error::Timeout(Timeout::Close)), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(matches!(ws.recv(), Err(Error::Timeout(Timeout::Close))));
}

#[test]
fn close_handshake_over_tcp() {
    let (a, b) = pair();
    let server = std::thread::spawn(move || {
        let mut ws = blocking::WebSocket::new(
            b,
            Connection::open(Role::Server, Config::default()),
            Timeouts::default(),
        );
        let m = ws.recv().unwrap();
        ws.send_message(m).unwrap();
        ws.recv().unwrap_err()
    });
    let mut ws = blocking::WebSocket::new(
        a,
        Connection::open(Role::Client, Config::default()),
        Timeouts::default(),
    );
    ws.send_message("ping?").unwrap();
    assert_eq!(ws.recv().unwrap(), Message::text("ping?"));
    ws.close_with(CloseCode::NORMAL, "done").unwrap();
    let err = ws.recv().unwrap_err();
    assert!(err.is_normal_close(), "{err:?}");
    assert!(server.join().unwrap().is_normal_close());
}
