//! The tokio adapter: cancel safety, backpressure, keepalive and deadlines (on tokio's paused
//! clock, so nothing here depends on real time), Stream/Sink and split halves.

mod support;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hybi::tokio::WebSocketStream;
use hybi::{CloseCode, Config, Connection, Error, Message, Role, Timeout, Timeouts};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

fn opts() -> Timeouts {
    Timeouts::default()
}

fn open_ws(io: DuplexStream, role: Role, options: Timeouts) -> WebSocketStream<DuplexStream> {
    WebSocketStream::new(io, Connection::open(role, client_config()), options)
}

#[tokio::test(start_paused = true)]
async fn recv_is_cancel_safe_under_select() {
    let (a, mut b) = tokio::io::duplex(1 << 16);
    // The peer writes each frame one byte at a time, slowly, so recv is often cancelled in the
    // middle of a frame.
    let writer = tokio::spawn(async move {
        for i in 0..50u32 {
            let frame = sframe(true, 1, format!("message {i}").as_bytes());
            for byte in frame {
                b.write_all(&[byte]).await.unwrap();
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        b
    });
    let mut ws = open_ws(a, Role::Client, opts());
    let mut got = Vec::new();
    let mut cancelled = 0;
    while got.len() < 50 {
        tokio::select! {
            m = ws.recv() => got.push(m.unwrap().as_text().unwrap().to_string()),
            _ = tokio::time::sleep(Duration::from_micros(2500)) => cancelled += 1,
        }
    }
    assert!(cancelled > 50, "recv was cancelled only {cancelled} times");
    let expected: Vec<String> = (0..50).map(|i| format!("message {i}")).collect();
    assert_eq!(got, expected);
    drop(writer.await.unwrap());
}

#[tokio::test]
async fn sink_waits_above_the_high_water_mark() {
    let (a, mut b) = tokio::io::duplex(1024);
    let conn = Connection::open(Role::Server, client_config().with_write_high_water(8 << 10));
    let mut ws = WebSocketStream::new(a, conn, opts());
    let chunk = Message::binary(vec![0u8; 1024]);
    // The peer does not read: feeding stops once ~8 KiB are queued.
    let mut fed = 0;
    while let Ok(r) = tokio::time::timeout(Duration::from_millis(100), ws.feed(chunk.clone())).await
    {
        r.unwrap();
        fed += 1;
        assert!(fed < 100, "no backpressure");
    }
    let queued = ws.connection().buffered_amount();
    assert!(queued <= (8 << 10) + 1100, "queued {queued}");
    assert!(fed >= 8);
    // Once the peer reads, everything goes through.
    let reader = tokio::spawn(async move {
        let mut total = 0;
        let mut buf = vec![0u8; 4096];
        while total < (fed + 1) * 1028 {
            total += b.read(&mut buf).await.unwrap();
        }
        total
    });
    ws.send(chunk).await.unwrap();
    assert!(reader.await.unwrap() >= (fed + 1) * 1028);
}

#[tokio::test(start_paused = true)]
async fn dead_peer_is_dropped_after_ping_and_pong_timeout() {
    let (a, mut b) = tokio::io::duplex(1 << 16);
    let options = opts()
        .with_ping_interval(Some(Duration::from_secs(5)))
        .with_pong_timeout(Some(Duration::from_secs(3)));
    let mut ws = open_ws(a, Role::Client, options);
    let started = tokio::time::Instant::now();
    let err = ws.recv().await.unwrap_err();
    assert!(matches!(err, Error::Timeout(Timeout::Pong)), "{err:?}");
    assert_eq!(started.elapsed(), Duration::from_secs(8));
    // The keepalive ping went out (masked: the client sent it).
    let mut buf = vec![0u8; 64];
    let n = b.read(&mut buf).await.unwrap();
    let frames = decode_frames(&buf[..n]);
    assert_eq!(frames[0].0.opcode, hybi::frame::Opcode::Ping);
}

#[tokio::test(start_paused = true)]
async fn live_peer_keeps_the_connection_open() {
    let (a, b) = tokio::io::duplex(1 << 16);
    let options = opts()
        .with_ping_interval(Some(Duration::from_secs(5)))
        .with_pong_timeout(Some(Duration::from_secs(3)));
    let mut client = open_ws(a, Role::Client, options.clone());
    let mut server = open_ws(b, Role::Server, options);
    // The server answers pings while it waits in recv; after a minute of silence both are open.
    let server_task = tokio::spawn(async move { server.recv().await.map(|m| m.len()) });
    let r = tokio::time::timeout(Duration::from_secs(60), client.recv()).await;
    assert!(r.is_err(), "client recv ended: {r:?}");
    client.send_message("done").await.unwrap();
    assert_eq!(server_task.await.unwrap().unwrap(), 4);
}

#[tokio::test(start_paused = true)]
async fn close_handshake_times_out_when_peer_never_answers() {
    let (a, _b) = tokio::io::duplex(1 << 16);
    let mut ws = open_ws(
        a,
        Role::Client,
        opts().with_close_timeout(Some(Duration::from_secs(2))),
    );
    ws.close_with(CloseCode::NORMAL, "bye").await.unwrap();
    let started = tokio::time::Instant::now();
    let err = ws.recv().await.unwrap_err();
    assert!(matches!(err, Error::Timeout(Timeout::Close)), "{err:?}");
    assert_eq!(started.elapsed(), Duration::from_secs(2));
}

#[tokio::test(start_paused = true)]
async fn wait_for_eof_after_close_is_bounded() {
    // The peer answers the close frame but never closes TCP: the client stops waiting for EOF
    // after the close timeout and reports a clean close.
    let (a, mut b) = tokio::io::duplex(1 << 16);
    let mut ws = open_ws(
        a,
        Role::Client,
        opts().with_close_timeout(Some(Duration::from_secs(2))),
    );
    ws.close_with(CloseCode::NORMAL, "").await.unwrap();
    b.write_all(&sframe(true, 8, &close_payload(1000, "")))
        .await
        .unwrap();
    let err = ws.recv().await.unwrap_err();
    assert!(err.is_normal_close(), "{err:?}");
}

#[tokio::test(start_paused = true)]
async fn opening_handshake_timeout() {
    let (a, _b) = tokio::io::duplex(1 << 16);
    let options = opts().with_handshake_timeout(Some(Duration::from_secs(10)));
    let started = tokio::time::Instant::now();
    let r =
        hybi::tokio::accept_with(a, Config::default(), options, |_| Ok(hybi::Accept::new())).await;
    assert!(
        matches!(r, Err(Error::Timeout(Timeout::Handshake))),
        "{r:?}"
    );
    assert_eq!(started.elapsed(), Duration::from_secs(10));
}

#[tokio::test(start_paused = true)]
async fn idle_timeout_closes_with_1001() {
    let (a, mut b) = tokio::io::duplex(1 << 16);
    let options = opts()
        .with_idle_timeout(Some(Duration::from_secs(30)))
        .with_ping_interval(None);
    let mut ws = open_ws(a, Role::Server, options);
    let recv = tokio::spawn(async move { ws.recv().await });
    let mut buf = vec![0u8; 64];
    let n = b.read(&mut buf).await.unwrap();
    let frames = decode_frames(&buf[..n]);
    assert_eq!(frames[0].0.opcode, hybi::frame::Opcode::Close);
    assert_eq!(&frames[0].1[..2], &1001u16.to_be_bytes());
    b.write_all(&cframe(true, 8, &close_payload(1001, "")))
        .await
        .unwrap();
    let err = recv.await.unwrap().unwrap_err();
    assert!(err.is_normal_close(), "{err:?}");
}

#[tokio::test]
async fn stream_and_sink_halves() {
    let (a, b) = tokio::io::duplex(1 << 16);
    let server = tokio::spawn(async move {
        let ws = open_ws(b, Role::Server, opts());
        let (mut sink, mut stream) = ws.split();
        while let Some(m) = stream.next().await {
            sink.send(m.unwrap()).await.unwrap();
        }
    });
    let ws = open_ws(a, Role::Client, opts());
    let (mut sink, mut stream) = ws.split();
    let sender = tokio::spawn(async move {
        for i in 0..100 {
            sink.feed(Message::text(format!("{i}"))).await.unwrap();
        }
        sink.flush().await.unwrap();
        sink
    });
    for i in 0..100 {
        let m = stream.next().await.unwrap().unwrap();
        assert_eq!(m.as_text(), Some(i.to_string().as_str()));
    }
    let mut sink = sender.await.unwrap();
    sink.close().await.unwrap();
    assert!(
        stream.next().await.is_none(),
        "stream ends after a clean close"
    );
    server.await.unwrap();
}

#[tokio::test]
async fn try_recv_answers_a_whole_batch_with_one_write() {
    let (a, mut b) = tokio::io::duplex(1 << 16);
    let mut ws = open_ws(a, Role::Server, opts());
    let mut burst = Vec::new();
    for i in 0..20u8 {
        burst.extend(cframe(true, 2, &[i]));
    }
    b.write_all(&burst).await.unwrap();
    let first = ws.recv().await.unwrap();
    ws.queue(first).unwrap();
    let mut n = 1;
    while let Some(m) = ws.try_recv() {
        ws.queue(m).unwrap();
        n += 1;
    }
    assert_eq!(n, 20);
    ws.flush_queue().await.unwrap();
    let mut buf = vec![0u8; 1024];
    let got = b.read(&mut buf).await.unwrap();
    assert_eq!(got, 20 * 3, "all 20 echoes arrive in one read");
}

#[tokio::test]
async fn protocol_error_sends_close_and_shuts_down() {
    let (a, mut b) = tokio::io::duplex(1 << 16);
    let mut ws = open_ws(a, Role::Server, opts());
    b.write_all(&frame_rsv(true, 4, 1, b"Hello", Some(KEY)))
        .await
        .unwrap();
    let server = tokio::spawn(async move { ws.recv().await });
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), b.read_to_end(&mut got))
        .await
        .expect("server never closed")
        .unwrap();
    let frames = decode_frames(&got);
    assert_eq!(frames[0].0.opcode, hybi::frame::Opcode::Close);
    assert_eq!(&frames[0].1[..2], &1002u16.to_be_bytes());
    drop(b);
    let err = server.await.unwrap().unwrap_err();
    assert!(matches!(err, Error::Protocol(_)), "{err:?}");
}

#[tokio::test(start_paused = true)]
async fn close_is_bounded_when_the_peer_stopped_reading() {
    let (a, _b) = tokio::io::duplex(1024);
    let mut ws = open_ws(
        a,
        Role::Server,
        opts().with_close_timeout(Some(Duration::from_secs(3))),
    );
    ws.queue(Message::binary(vec![0u8; 64 << 10])).unwrap();
    let started = tokio::time::Instant::now();
    let err = ws.close_with(CloseCode::GOING_AWAY, "").await.unwrap_err();
    assert!(matches!(err, Error::Timeout(Timeout::Close)), "{err:?}");
    assert_eq!(started.elapsed(), Duration::from_secs(3));
    assert!(matches!(
        ws.recv().await,
        Err(Error::Timeout(Timeout::Close))
    ));
}

/// Autobahn 3.2 / 4.1.3 / 5.15 through the adapter: a good message and a bad frame in one
/// read. The echo pattern (recv, queue, try_recv, flush) writes the reply to the good message,
/// then the close frame for the bad one; the flush succeeds, since what was queued before the
/// failure is written, and the next recv reports the failure.
#[tokio::test]
async fn a_reply_queued_before_a_failure_goes_out_before_the_close() {
    let (a, mut b) = tokio::io::duplex(1 << 16);
    let mut ws = open_ws(a, Role::Server, opts());
    let mut wire = cframe(true, 1, b"first");
    wire.extend(cframe(true, 3, b"reserved opcode"));
    b.write_all(&wire).await.unwrap();
    let m = ws.recv().await.unwrap();
    ws.queue(m).unwrap();
    while let Some(more) = ws.try_recv() {
        ws.queue(more).unwrap();
    }
    ws.flush_queue().await.unwrap();
    // The client closes too (its close frame is not needed: the server failed first).
    b.shutdown().await.unwrap();
    let err = ws.recv().await.unwrap_err();
    assert!(matches!(err, Error::Protocol(_)), "{err:?}");
    let mut got = Vec::new();
    b.read_to_end(&mut got).await.unwrap();
    let frames = decode_frames(&got);
    assert_eq!(frames[0].1, b"first");
    assert_eq!(&frames[1].1[..2], &1002u16.to_be_bytes());
    assert_eq!(frames.len(), 2);
}
