//! The tokio-tungstenite client side of the interop tests: the checklist of
//! [`super::checklist`] as a tungstenite client against an echo server that understands the
//! `close:CODE:REASON` and `fragment-me:` commands (hybi's tokio and blocking echo servers,
//! and the axum server of `tests/axum.rs`).

use std::time::Instant;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data as OpData, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame as TCloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message as TMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::*;

pub type TClient = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Sends a text message in three frames, cut inside 4-byte code points.
pub async fn tung_send_fragments<S>(ws: &mut WebSocketStream<S>, text: bool, parts: &[Vec<u8>])
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    for (i, p) in parts.iter().enumerate() {
        let opcode = match (i, text) {
            (0, true) => OpCode::Data(OpData::Text),
            (0, false) => OpCode::Data(OpData::Binary),
            _ => OpCode::Data(OpData::Continue),
        };
        let frame = Frame::message(p.clone(), opcode, i + 1 == parts.len());
        ws.send(TMessage::Frame(frame)).await.unwrap();
    }
}

pub async fn tung_connect(port: u16, config: Option<WebSocketConfig>) -> TClient {
    let mut req = format!("ws://127.0.0.1:{port}/interop")
        .into_client_request()
        .unwrap();
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static(SUBPROTOCOL),
    );
    let (ws, resp) = tokio_tungstenite::connect_async_with_config(req, config, true)
        .await
        .expect("tungstenite client: connect");
    let protocol = resp.headers().get("Sec-WebSocket-Protocol");
    assert_eq!(
        protocol.and_then(|v| v.to_str().ok()),
        Some(SUBPROTOCOL),
        "tungstenite client: subprotocol"
    );
    ws
}

pub fn tshort(m: &TMessage) -> String {
    match m {
        TMessage::Text(t) if t.len() <= 80 => format!("text {:?}", t.as_str()),
        TMessage::Binary(b) if b.len() <= 16 => format!("binary {:?}", &b[..]),
        TMessage::Text(t) => format!("text of {} bytes", t.len()),
        TMessage::Binary(b) => format!("binary of {} bytes", b.len()),
        other => format!("{other:?}"),
    }
}

pub async fn tung_expect(ws: &mut TClient, name: &str, want: &TMessage) {
    let got = ws
        .next()
        .await
        .unwrap_or_else(|| panic!("{name}: connection ended"))
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(
        &got == want,
        "{name}: expected {}, got {}",
        tshort(want),
        tshort(&got)
    );
}

/// After a close frame was exchanged: the server must close TCP promptly.
pub async fn tung_expect_end(ws: &mut TClient, name: &str) {
    let start = Instant::now();
    match tokio::time::timeout(PROMPT_CLOSE, ws.next()).await {
        Ok(None) => {}
        Ok(Some(other)) => panic!("{name}: expected the end of the connection, got {other:?}"),
        Err(_) => panic!("{name}: the hybi server did not close TCP within {PROMPT_CLOSE:?}"),
    }
    assert!(start.elapsed() < PROMPT_CLOSE);
}

pub async fn tung_expect_close(ws: &mut TClient, name: &str, code: u16, reason: Option<&str>) {
    match ws.next().await {
        Some(Ok(TMessage::Close(Some(f)))) => {
            assert_eq!(u16::from(f.code), code, "{name}: {f:?}");
            if let Some(reason) = reason {
                assert_eq!(f.reason.as_str(), reason, "{name}: {f:?}");
            }
        }
        other => panic!("{name}: expected a close frame with {code}, got {other:?}"),
    }
    tung_expect_end(ws, name).await;
}

/// The checklist as a tungstenite client, then a close with [`CLIENT_CLOSE`]; a second
/// connection asks the server to close with [`SERVER_CLOSE`].
pub async fn tung_client_checklist(port: u16) {
    let mut ws = tung_connect(port, None).await;
    let texts = ["hello", "", UTF8_4BYTE, FRAGMENT_ME];
    for t in texts {
        let name = format!("tungstenite client: text {t:?}");
        ws.send(TMessage::text(t)).await.unwrap();
        tung_expect(&mut ws, &name, &TMessage::text(t)).await;
    }
    for n in BINARY_SIZES {
        let name = format!("tungstenite client: binary {n} bytes");
        let m = TMessage::binary(payload(n, n as u64));
        ws.send(m.clone()).await.unwrap();
        tung_expect(&mut ws, &name, &m).await;
    }
    let text = "fragmented: 😀 then 🌍 end";
    tung_send_fragments(&mut ws, true, &split3(text)).await;
    let name = "tungstenite client: fragmented text, 3 frames, code points split";
    tung_expect(&mut ws, name, &TMessage::text(text)).await;
    for parts in [
        vec![payload(1000, 1), payload(70000, 2), payload(3, 3)],
        vec![payload(10, 4), payload(20, 5), vec![]],
    ] {
        tung_send_fragments(&mut ws, false, &parts).await;
        let name = "tungstenite client: fragmented binary, 3 frames";
        tung_expect(&mut ws, name, &TMessage::binary(parts.concat())).await;
    }
    ws.send(TMessage::Ping(PING_PAYLOAD.to_vec().into()))
        .await
        .unwrap();
    let pong = TMessage::Pong(PING_PAYLOAD.to_vec().into());
    tung_expect(&mut ws, "tungstenite client: ping", &pong).await;
    // A ping between the frames of a message (RFC 6455 §5.4): answered at once.
    let (a, b) = (payload(300, 12), payload(5, 13));
    let first = Frame::message(a.clone(), OpCode::Data(OpData::Binary), false);
    ws.send(TMessage::Frame(first)).await.unwrap();
    ws.send(TMessage::Ping(b"mid".to_vec().into()))
        .await
        .unwrap();
    let name = "tungstenite client: ping between fragments";
    tung_expect(&mut ws, name, &TMessage::Pong(b"mid".to_vec().into())).await;
    let last = Frame::message(b.clone(), OpCode::Data(OpData::Continue), true);
    ws.send(TMessage::Frame(last)).await.unwrap();
    tung_expect(&mut ws, name, &TMessage::binary([a, b].concat())).await;
    ws.send(TMessage::text("after ping")).await.unwrap();
    let name = "tungstenite client: text after ping";
    tung_expect(&mut ws, name, &TMessage::text("after ping")).await;

    let (code, reason) = CLIENT_CLOSE;
    ws.close(Some(TCloseFrame {
        code: code.into(),
        reason: reason.into(),
    }))
    .await
    .unwrap();
    // hybi echoes the code (RFC 6455 §5.5.1), without the reason.
    tung_expect_close(&mut ws, "tungstenite client: close 4001", code, None).await;
    drop(ws);

    let mut ws = tung_connect(port, None).await;
    let (code, reason) = SERVER_CLOSE;
    ws.send(TMessage::text(format!("close:{code}:{reason}")))
        .await
        .unwrap();
    let name = "tungstenite client: server's close 4002";
    tung_expect_close(&mut ws, name, code, Some(reason)).await;
}
