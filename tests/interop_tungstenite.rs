//! Interop with tokio-tungstenite, a peer nobody here wrote, over 127.0.0.1 TCP, both
//! directions, with both of hybi's adapters:
//!
//! | hybi side | peer | |
//! |---|---|---|
//! | tokio client | tungstenite echo server | `hybi_tokio_client_*` |
//! | blocking client | tungstenite echo server | `hybi_blocking_client_*` |
//! | tokio echo server | tungstenite client | `tungstenite_client_*_tokio_server` |
//! | blocking echo server | tungstenite client | `tungstenite_client_*_blocking_server` |
//!
//! Each runs text, empty text, 4-byte UTF-8, binary at every length-encoding boundary and
//! 1 MiB, fragmented messages both ways, ping/pong with payload, the "chat" subprotocol, and
//! clean closes with 4001/4002 started by either side; plus a message over hybi's
//! `max_message_size` (1009 both ways). Invalid UTF-8 cannot be sent with tungstenite's API.

mod interop;

use std::sync::mpsc;
use std::time::Instant;

use futures_util::{SinkExt, StreamExt};
use hybi::{Config, Error, Initiator, Message, Timeouts};
use interop::tungstenite::*;
use interop::*;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::handshake::server::{
    ErrorResponse, Request as TRequest, Response as TResponse,
};
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode as TCloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame as TCloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message as TMessage;

/// hybi's limit in the 1009 tests.
const LIMIT: usize = 64 << 10;

// ------------------------------------------------------------------ the tungstenite peer

/// How a connection to the tungstenite echo server ended.
#[derive(Debug)]
struct TungEnd {
    protocol: Option<String>,
    /// The close frame it received (`Some(None)`: one without a code).
    close_received: Option<Option<TCloseFrame>>,
    error: Option<String>,
}

fn offers_subprotocol(req: &TRequest) -> bool {
    req.headers()
        .get_all("Sec-WebSocket-Protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim() == SUBPROTOCOL)
}

async fn tung_echo(tcp: TcpStream, config: Option<WebSocketConfig>) -> TungEnd {
    let mut protocol = None;
    #[allow(clippy::result_large_err)] // the signature tungstenite's `Callback` asks for
    let callback = |req: &TRequest, mut resp: TResponse| -> Result<TResponse, ErrorResponse> {
        if offers_subprotocol(req) {
            resp.headers_mut().insert(
                "Sec-WebSocket-Protocol",
                HeaderValue::from_static(SUBPROTOCOL),
            );
            protocol = Some(SUBPROTOCOL.to_string());
        }
        Ok(resp)
    };
    let accepted = tokio_tungstenite::accept_hdr_async_with_config(tcp, callback, config).await;
    let mut ws = match accepted {
        Ok(ws) => ws,
        Err(e) => {
            return TungEnd {
                protocol: None,
                close_received: None,
                error: Some(format!("handshake: {e}")),
            }
        }
    };
    let mut close_received = None;
    let mut error = None;
    while let Some(msg) = ws.next().await {
        let sent = match msg {
            Ok(TMessage::Text(t)) if t.starts_with("close:") => {
                let (code, reason) = t["close:".len()..].split_once(':').unwrap();
                let frame = TCloseFrame {
                    code: TCloseCode::from(code.parse::<u16>().unwrap()),
                    reason: reason.to_string().into(),
                };
                ws.close(Some(frame)).await
            }
            Ok(TMessage::Text(t)) if t.starts_with(FRAGMENT_ME_PREFIX) => {
                tung_send_fragments(&mut ws, true, &split3(&t)).await;
                Ok(())
            }
            Ok(m @ (TMessage::Text(_) | TMessage::Binary(_))) => ws.send(m).await,
            Ok(TMessage::Close(f)) => {
                close_received = Some(f);
                Ok(())
            }
            Ok(_) => Ok(()),
            Err(e) => Err(e),
        };
        if let Err(e) = sent {
            error = Some(e.to_string());
            break;
        }
    }
    TungEnd {
        protocol,
        close_received,
        error,
    }
}

/// A tokio-tungstenite echo server on 127.0.0.1 (own thread and runtime) for `conns`
/// connections; each connection's end is reported on the channel.
fn tung_echo_server(
    config: Option<WebSocketConfig>,
    conns: usize,
) -> (u16, mpsc::Receiver<TungEnd>) {
    let (port_tx, port_rx) = mpsc::channel();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            port_tx.send(listener.local_addr().unwrap().port()).unwrap();
            let serve = async {
                let mut tasks = tokio::task::JoinSet::new();
                for _ in 0..conns {
                    let (tcp, _) = listener.accept().await.unwrap();
                    let tx = tx.clone();
                    tasks.spawn(async move {
                        let _ = tx.send(tung_echo(tcp, config).await);
                    });
                }
                while tasks.join_next().await.is_some() {}
            };
            let _ = tokio::time::timeout(TEST_TIMEOUT, serve).await;
        });
    });
    (port_rx.recv().unwrap(), rx)
}

fn tung_end(rx: &mpsc::Receiver<TungEnd>) -> TungEnd {
    rx.recv_timeout(TEST_TIMEOUT)
        .expect("the tungstenite server reported no connection end in time")
}

fn check_tung_end(what: &str, end: &TungEnd, code: u16, reason: Option<&str>) {
    assert_eq!(end.error, None, "{what}: tungstenite server: {end:?}");
    assert_eq!(
        end.protocol.as_deref(),
        Some(SUBPROTOCOL),
        "{what}: {end:?}"
    );
    let Some(Some(f)) = &end.close_received else {
        panic!("{what}: tungstenite server received no close frame with a code: {end:?}");
    };
    assert_eq!(u16::from(f.code), code, "{what}: {end:?}");
    if let Some(reason) = reason {
        assert_eq!(f.reason.as_str(), reason, "{what}: {end:?}");
    }
}

// ------------------------------------------------------------------ hybi client → tungstenite

fn check_tung_server_after_checklist(rx: &mpsc::Receiver<TungEnd>) {
    // The connections may end in either order.
    let mut ends = [tung_end(rx), tung_end(rx)];
    ends.sort_by_key(|e| match &e.close_received {
        Some(Some(f)) => u16::from(f.code),
        _ => 0,
    });
    check_tung_end(
        "client close",
        &ends[0],
        CLIENT_CLOSE.0,
        Some(CLIENT_CLOSE.1),
    );
    // The server's close: hybi echoes the code.
    check_tung_end("server close", &ends[1], SERVER_CLOSE.0, None);
}

#[test]
fn hybi_tokio_client_to_tungstenite_server() {
    let (port, rx) = tung_echo_server(None, 2);
    block_on("hybi tokio client ↔ tungstenite server", async {
        let c = tokio_client_checklist(port).await;
        check_close("client close", &c, CLIENT_CLOSE, Initiator::Local);
        let c = tokio_client_server_close(port).await;
        check_close("server close", &c, SERVER_CLOSE, Initiator::Remote);
    });
    check_tung_server_after_checklist(&rx);
}

#[test]
fn hybi_blocking_client_to_tungstenite_server() {
    let (port, rx) = tung_echo_server(None, 2);
    with_timeout("hybi blocking client ↔ tungstenite server", move || {
        let c = blocking_client_checklist(port);
        check_close("client close", &c, CLIENT_CLOSE, Initiator::Local);
        let c = blocking_client_server_close(port);
        check_close("server close", &c, SERVER_CLOSE, Initiator::Remote);
    });
    check_tung_server_after_checklist(&rx);
}

// ------------------------------------------------------------------ tungstenite client → hybi

fn check_hybi_server_after_checklist(rx: &mpsc::Receiver<ServerEnd>) {
    // The connections may end in either order.
    let mut ends = [server_end(rx), server_end(rx)];
    ends.sort_by_key(|e| e.close_received.as_ref().map(|f| f.code.as_u16()));
    check_server_end("client close", &ends[0], CLIENT_CLOSE, Initiator::Remote);
    check_server_end("server close", &ends[1], SERVER_CLOSE, Initiator::Local);
}

#[test]
fn tungstenite_client_to_hybi_tokio_server() {
    let (port, rx) = hybi_tokio_server(Config::default(), 2);
    block_on(
        "tungstenite client ↔ hybi tokio server",
        tung_client_checklist(port),
    );
    check_hybi_server_after_checklist(&rx);
}

#[test]
fn tungstenite_client_to_hybi_blocking_server() {
    let (port, rx) = hybi_blocking_server(Config::default(), 2);
    block_on(
        "tungstenite client ↔ hybi blocking server",
        tung_client_checklist(port),
    );
    check_hybi_server_after_checklist(&rx);
}

// ------------------------------------------------------------------ max_message_size: 1009

fn assert_too_big(what: &str, e: &Error) {
    match e {
        Error::Protocol(p) => assert_eq!(p.close_code().as_u16(), 1009, "{what}: {e:?}"),
        other => panic!("{what}: expected a 1009 protocol error, got {other:?}"),
    }
}

/// A tungstenite client sends a message over hybi's limit: as one frame, then as three
/// frames each under the limit. hybi must close with 1009 both times.
async fn tung_client_too_big(port: u16) {
    let mut ws = tung_connect(port, None).await;
    ws.send(TMessage::binary(payload(LIMIT + 1, 7)))
        .await
        .unwrap();
    let name = "tungstenite client: one frame over the limit";
    tung_expect_close(&mut ws, name, 1009, None).await;
    drop(ws);

    let mut ws = tung_connect(port, None).await;
    let third = LIMIT / 3 + 1;
    let parts = vec![payload(third, 8), payload(third, 9), payload(third, 10)];
    tung_send_fragments(&mut ws, false, &parts).await;
    let name = "tungstenite client: 3 frames, together over the limit";
    tung_expect_close(&mut ws, name, 1009, None).await;
}

fn check_hybi_server_too_big(rx: &mpsc::Receiver<ServerEnd>) {
    for what in ["one frame", "three frames"] {
        let end = server_end(rx);
        assert_too_big(&format!("hybi server, {what}"), &end.error);
    }
}

#[test]
fn message_too_big_tungstenite_client_to_hybi_tokio_server() {
    let (port, rx) = hybi_tokio_server(Config::default().with_max_message_size(LIMIT as u64), 2);
    block_on("1009, hybi tokio server", tung_client_too_big(port));
    check_hybi_server_too_big(&rx);
}

#[test]
fn message_too_big_tungstenite_client_to_hybi_blocking_server() {
    let (port, rx) = hybi_blocking_server(Config::default().with_max_message_size(LIMIT as u64), 2);
    block_on("1009, hybi blocking server", tung_client_too_big(port));
    check_hybi_server_too_big(&rx);
}

/// The tungstenite server echoes a message over the hybi client's limit.
#[test]
fn message_too_big_tungstenite_server_to_hybi_clients() {
    let (port, rx) = tung_echo_server(None, 2);
    let config = Config::default().with_max_message_size(LIMIT as u64);
    let big = Message::binary(payload(LIMIT + 1, 11));
    block_on("1009, hybi tokio client", {
        let (config, big) = (config.clone(), big.clone());
        async move {
            let (mut ws, _) = hybi::tokio::connect_with(
                client_request(port),
                hybi::ConnectOptions::default()
                    .with_config(config)
                    .with_timeouts(Timeouts::default()),
            )
            .await
            .unwrap();
            ws.send_message(big).await.unwrap();
            let start = Instant::now();
            let e = ws
                .recv()
                .await
                .expect_err("a message over the limit was accepted");
            assert_too_big("hybi tokio client", &e);
            assert!(start.elapsed() < PROMPT_CLOSE, "took {:?}", start.elapsed());
            let o = ws.connection().close_outcome().unwrap();
            assert_eq!((o.code.as_u16(), o.clean), (1009, false), "{o:?}");
        }
    });
    with_timeout("1009, hybi blocking client", move || {
        let (mut ws, _) = hybi::blocking::connect_with(
            client_request(port),
            hybi::ConnectOptions::default()
                .with_config(config)
                .with_timeouts(Timeouts::default()),
        )
        .unwrap();
        ws.send_message(big).unwrap();
        let e = ws
            .recv()
            .expect_err("a message over the limit was accepted");
        assert_too_big("hybi blocking client", &e);
    });
    for what in ["tokio client", "blocking client"] {
        let end = tung_end(&rx);
        assert_eq!(end.error, None, "{what}: {end:?}");
        let Some(Some(f)) = &end.close_received else {
            panic!("{what}: tungstenite received no close frame: {end:?}");
        };
        assert_eq!(u16::from(f.code), 1009, "{what}: {f:?}");
    }
}

// ------------------------------------------------------------------ other closes, Stream/Sink

/// A close frame without a status code (reported as 1005) and a plain 1000 close.
#[test]
fn close_without_code_and_normal_close() {
    let (port, rx) = hybi_tokio_server(Config::default(), 1);
    block_on("close without a code, tungstenite client", async {
        let mut ws = tung_connect(port, None).await;
        ws.close(None).await.unwrap();
        match ws.next().await {
            // hybi answers an empty close with an empty close.
            Some(Ok(TMessage::Close(None))) => {}
            other => panic!("expected an empty close frame, got {other:?}"),
        }
        tung_expect_end(&mut ws, "tungstenite client: empty close").await;
    });
    let end = server_end(&rx);
    let o = end.outcome();
    assert_eq!((o.code.as_u16(), o.clean), (1005, true), "{o:?}");
    assert!(o.is_normal(), "{o:?}");

    let (port, rx) = tung_echo_server(None, 1);
    block_on("normal close, hybi client", async move {
        let mut ws = tokio_connect(port).await;
        ws.close_with(hybi::CloseCode::NORMAL, "").await.unwrap();
        let e = ws.recv().await.unwrap_err();
        assert!(e.is_normal_close(), "{e:?}");
    });
    check_tung_end("normal close", &tung_end(&rx), 1000, Some(""));
}

/// hybi's tokio client split into its `Sink` and `Stream` halves, writing many messages while
/// the echoes stream back; `SinkExt::close` closes with 1000 and the stream then ends.
#[test]
fn hybi_tokio_stream_sink_halves_to_tungstenite_server() {
    const N: usize = 200;
    let (port, rx) = tung_echo_server(None, 1);
    block_on("hybi Stream/Sink ↔ tungstenite server", async move {
        let ws = tokio_connect(port).await;
        let (mut sink, mut stream) = ws.split();
        let msgs: Vec<Message> = (0..N)
            .map(|i| match i % 3 {
                0 => Message::text(format!("message {i} 😀")),
                _ => Message::binary(payload(i * 997 % 100_000, i as u64)),
            })
            .collect();
        let to_send = msgs.clone();
        let writer = tokio::spawn(async move {
            for m in to_send {
                sink.feed(m).await.unwrap();
            }
            sink.flush().await.unwrap();
            sink
        });
        for (i, want) in msgs.iter().enumerate() {
            let got = stream
                .next()
                .await
                .unwrap_or_else(|| panic!("ended at {i}"));
            let got = got.unwrap_or_else(|e| panic!("message {i}: {e}"));
            assert!(
                &got == want,
                "message {i}: {} bytes, want {}",
                got.len(),
                want.len()
            );
        }
        let mut sink = writer.await.unwrap();
        SinkExt::close(&mut sink).await.unwrap();
        assert!(
            stream.next().await.is_none(),
            "the stream must end after a clean close"
        );
    });
    check_tung_end("Stream/Sink", &tung_end(&rx), 1000, Some(""));
}

// ------------------------------------------------------------------ hybi's fragmenting options

/// hybi servers that split what they send into 4 KiB frames (`write_fragment_size`): the
/// tungstenite client's checklist must pass unchanged.
#[test]
fn tungstenite_client_to_hybi_servers_with_write_fragment_size() {
    let config = Config::default().with_write_fragment_size(Some(4096));
    let (port, rx) = hybi_tokio_server(config.clone(), 2);
    block_on(
        "write_fragment_size, tokio server",
        tung_client_checklist(port),
    );
    check_hybi_server_after_checklist(&rx);
    let (port, rx) = hybi_blocking_server(config, 2);
    block_on(
        "write_fragment_size, blocking server",
        tung_client_checklist(port),
    );
    check_hybi_server_after_checklist(&rx);
}

/// A hybi client that sends in 1000-byte frames and receives with `stream_fragments`.
#[test]
fn hybi_client_write_fragment_size_and_stream_fragments_to_tungstenite_server() {
    let (port, rx) = tung_echo_server(None, 1);
    block_on("stream_fragments, hybi tokio client", async move {
        let config = Config::default()
            .with_write_fragment_size(Some(1000))
            .with_stream_fragments(true);
        let (mut ws, _) = hybi::tokio::connect_with(
            client_request(port),
            hybi::ConnectOptions::default()
                .with_config(config)
                .with_timeouts(Timeouts::default()),
        )
        .await
        .unwrap();
        for m in [
            Message::binary(payload(1 << 20, 14)),
            Message::text(FRAGMENT_ME),
            Message::text(UTF8_4BYTE.repeat(100)),
        ] {
            ws.send_message(m.clone()).await.unwrap();
            let mut got = Vec::new();
            let mut pieces = 0;
            loop {
                match ws.recv_event().await.unwrap() {
                    hybi::Event::Fragment(f) => {
                        assert_eq!(f.kind, m.kind());
                        got.extend_from_slice(&f.data);
                        pieces += 1;
                        if f.fin {
                            break;
                        }
                    }
                    other => panic!("expected fragments, got {other:?}"),
                }
            }
            assert!(
                got == m.as_bytes(),
                "{} bytes back for {}",
                got.len(),
                m.len()
            );
            if m.as_text() == Some(FRAGMENT_ME) {
                assert!(pieces >= 3, "the peer sent 3 frames, got {pieces} pieces");
            }
        }
        ws.close_with(hybi::CloseCode::NORMAL, "").await.unwrap();
        // With stream_fragments, events are what arrives: the peer's close frame, then the end.
        assert!(matches!(
            ws.recv_event().await,
            Ok(hybi::Event::CloseReceived(_))
        ));
        assert!(ws.recv_event().await.unwrap_err().is_normal_close());
    });
    check_tung_end("stream_fragments", &tung_end(&rx), 1000, Some(""));
}
