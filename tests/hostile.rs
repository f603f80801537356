//! Hostile input over real loopback TCP (and an in-memory pipe on tokio's paused clock for the
//! slow trickle), against the tokio and the blocking adapters. Each test asserts a precise
//! outcome (close code, HTTP status line, the adapter's `Error`) and a bound: time (timeouts;
//! every raw read gives up after `IO_TIMEOUT`), memory (`buffered_amount()` seen by the server
//! after every event, limits enforced from frame headers) and progress (the hostile peer's
//! writes complete because the server keeps draining, or stall on TCP backpressure).

mod support;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use hybi::{
    CloseCode, Config, Error, FrameError, HandshakeError, ProtocolError, Role, Timeout, Timeouts,
};
use support::wire::{self, Adapter, End, Outcome, Report, F};
use support::KEY;

const ADAPTERS: [Adapter; 2] = [Adapter::Tokio, Adapter::Blocking];

/// Runs a raw client sending `bytes` after the handshake against a fresh server; returns what
/// the client saw and the server's report.
fn against(adapter: Adapter, config: Config, bytes: &[u8]) -> (Outcome, Report) {
    let server = wire::spawn_server(adapter, config, wire::quiet_options());
    let outcome = wire::raw_client(server.addr, bytes, None);
    (outcome, server.report())
}

fn protocol_error(report: &Report) -> ProtocolError {
    match &report.end {
        Some(Error::Protocol(e)) => *e,
        other => panic!("expected a protocol error, got {other:?}"),
    }
}

fn handshake_error(report: &Report) -> HandshakeError {
    match &report.handshake {
        Err(Error::Handshake(e)) => e.clone(),
        other => panic!("expected a handshake error, got {other:?}"),
    }
}

/// Sends raw bytes instead of a valid handshake; returns the status line, how the connection
/// ended and the server's handshake error.
fn bad_handshake(adapter: Adapter, bytes: &[u8]) -> (String, End, HandshakeError) {
    let server = wire::spawn_server(adapter, Config::default(), wire::quiet_options());
    let t = Instant::now();
    let (response, end) = wire::raw_http_exchange(server.addr, bytes);
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "{adapter:?}: slow answer"
    );
    let status = response.lines().next().unwrap_or_default().to_string();
    (status, end, handshake_error(&server.report()))
}

// ------------------------------------------------------------------ the opening handshake

/// A 1 MB header: 431 (RFC 6585) once `max_header_bytes` (8 KiB) is passed; the rest of the
/// megabyte is drained and discarded (the sender's write completes, no reset).
#[test]
fn handshake_with_a_1mb_header_gets_431() {
    let mut req = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ".to_vec();
    req.resize(req.len() + (1 << 20), b'a');
    req.extend_from_slice(b"\r\n\r\n");
    for a in ADAPTERS {
        let (status, end, err) = bad_handshake(a, &req);
        assert!(status.starts_with("HTTP/1.1 431 "), "{a:?}: {status}");
        assert_eq!(end, End::Fin, "{a:?}");
        assert!(
            matches!(err, HandshakeError::HeadTooLarge { max: 8192 }),
            "{a:?}: {err:?}"
        );
        assert_eq!(err.http_status(), 431);
    }
}

/// 10,000 headers: 431 (`max_headers` is 64).
#[test]
fn handshake_with_10000_headers_gets_431() {
    let mut req = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n".to_vec();
    for i in 0..10_000 {
        req.extend_from_slice(format!("X-H{i}: v\r\n").as_bytes());
    }
    req.extend_from_slice(b"\r\n");
    for a in ADAPTERS {
        let (status, end, err) = bad_handshake(a, &req);
        assert!(status.starts_with("HTTP/1.1 431 "), "{a:?}: {status}");
        assert_eq!(end, End::Fin, "{a:?}");
        assert!(
            matches!(
                err,
                HandshakeError::TooManyHeaders { .. } | HandshakeError::HeadTooLarge { .. }
            ),
            "{a:?}: {err:?}"
        );
    }
}

/// Garbage instead of a handshake: 400, and the connection is closed.
#[test]
fn garbage_instead_of_a_handshake_gets_400() {
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    for a in ADAPTERS {
        for bytes in [&garbage[..], b"\x00\x01\x02\x03", b"HELLO THERE\r\n\r\n"] {
            let (status, end, err) = bad_handshake(a, bytes);
            assert!(status.starts_with("HTTP/1.1 400 "), "{a:?}: {status}");
            assert_eq!(end, End::Fin, "{a:?}");
            assert!(
                matches!(err, HandshakeError::Malformed(_)),
                "{a:?}: {err:?}"
            );
        }
    }
}

/// A TLS ClientHello sent to a plain `ws://` port: 400 and closed (the first byte, 0x16, is not
/// an HTTP token character).
#[test]
fn tls_client_hello_to_a_plain_port_gets_400() {
    // A TLS 1.3 ClientHello as rustls writes it.
    let roots = rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = rustls::ClientConnection::new(std::sync::Arc::new(config), name).unwrap();
    let mut hello = Vec::new();
    tls.write_tls(&mut hello).unwrap();
    assert_eq!(&hello[..2], [0x16, 0x03], "a TLS handshake record");
    for a in ADAPTERS {
        let (status, end, err) = bad_handshake(a, &hello);
        assert!(status.starts_with("HTTP/1.1 400 "), "{a:?}: {status}");
        assert_eq!(end, End::Fin, "{a:?}");
        assert!(
            matches!(err, HandshakeError::Malformed(_)),
            "{a:?}: {err:?}"
        );
    }
}

/// A request trickled one byte a second never completes: the handshake timeout (10 s by
/// default) ends it with `Error::Timeout(Handshake)` at 10 s, after about 10 bytes, and the
/// peer sees EOF with no response. On tokio's paused clock over an in-memory pipe: fast and
/// deterministic.
#[tokio::test(start_paused = true)]
async fn handshake_trickled_one_byte_a_second_times_out() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (server_io, client_io) = tokio::io::duplex(1 << 16);
    let (mut rd, mut wr) = tokio::io::split(client_io);
    let start = tokio::time::Instant::now();
    let trickle = tokio::spawn(async move {
        let mut sent = 0;
        for &b in wire::REQUEST {
            if wr.write_all(&[b]).await.is_err() {
                break;
            }
            sent += 1;
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        sent
    });
    let result =
        hybi::tokio::accept_with(server_io, Config::default(), Timeouts::default(), |_| {
            Ok(hybi::Accept::new())
        })
        .await;
    let waited = start.elapsed();
    assert!(
        matches!(result, Err(Error::Timeout(Timeout::Handshake))),
        "{result:?}"
    );
    assert!(
        waited >= Duration::from_secs(10) && waited < Duration::from_secs(11),
        "{waited:?}"
    );
    let mut answer = Vec::new();
    rd.read_to_end(&mut answer).await.unwrap();
    assert!(answer.is_empty(), "{:?}", String::from_utf8_lossy(&answer));
    let sent = trickle.await.unwrap();
    assert!((10..=12).contains(&sent), "sent {sent} bytes");
}

/// The same trickle against the blocking adapter over TCP, in real time with a 300 ms
/// handshake timeout (one byte every 50 ms).
#[test]
fn blocking_handshake_trickle_times_out() {
    let opts = wire::quiet_options().with_handshake_timeout(Some(Duration::from_millis(300)));
    let server = wire::spawn_server(Adapter::Blocking, Config::default(), opts);
    let mut s = TcpStream::connect(server.addr).unwrap();
    let start = Instant::now();
    let mut sent = 0;
    for &b in wire::REQUEST {
        if s.write_all(&[b]).is_err() || start.elapsed() > Duration::from_secs(2) {
            break;
        }
        sent += 1;
        thread::sleep(Duration::from_millis(50));
        // Stop once the server has given up (EOF).
        s.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 64];
        let gone = matches!(s.read(&mut buf), Ok(0));
        s.set_nonblocking(false).unwrap();
        if gone {
            break;
        }
    }
    let report = server.report();
    assert!(
        matches!(report.handshake, Err(Error::Timeout(Timeout::Handshake))),
        "{:?}",
        report.handshake
    );
    assert!(sent < wire::REQUEST.len() && sent <= 10, "sent {sent}");
}

// ------------------------------------------------------------------ frames and limits

/// A header claiming 2^63-1 bytes: 1009 from the header alone (the claim is never allocated;
/// nothing follows it). 2^63 (the most significant bit set, §5.2) is a protocol error: 1002.
#[test]
fn frame_claiming_2_pow_63_minus_1_bytes() {
    for a in ADAPTERS {
        let mut wire = vec![0x82, 0xff];
        wire.extend_from_slice(&(u64::MAX >> 1).to_be_bytes());
        wire.extend_from_slice(&KEY);
        let (out, report) = against(a, Config::default(), &wire);
        assert_eq!(out.frames, [F::close(1009)], "{a:?}");
        assert_eq!(out.end, End::Fin, "{a:?}");
        assert!(matches!(
            protocol_error(&report),
            ProtocolError::Frame(FrameError::FrameTooLarge { len, .. }) if len == u64::MAX >> 1
        ));

        let mut wire = vec![0x82, 0xff];
        wire.extend_from_slice(&(1u64 << 63).to_be_bytes());
        wire.extend_from_slice(&KEY);
        let (out, report) = against(a, Config::default(), &wire);
        assert_eq!(out.frames, [F::close(1002)], "{a:?}");
        assert_eq!(
            protocol_error(&report),
            ProtocolError::Frame(FrameError::LengthMsbSet)
        );
    }
}

/// A complete frame over `max_frame_size` (1 MiB + 1 against 1 MiB): 1009 from its header; the
/// payload is drained and discarded, so the sender's write completes.
#[test]
fn frame_over_max_frame_size() {
    for a in ADAPTERS {
        let cfg = Config::default().with_max_frame_size(1 << 20);
        let wire = F::binary(vec![7; (1 << 20) + 1]).encode(Some(KEY));
        let (out, report) = against(a, cfg, &wire);
        assert_eq!(out.frames, [F::close(1009)], "{a:?}");
        assert_eq!(out.end, End::Fin);
        assert!(matches!(
            protocol_error(&report),
            ProtocolError::Frame(FrameError::FrameTooLarge { len, max: 1048576 }) if len == (1 << 20) + 1
        ));
        assert_eq!(report.messages, 0);
    }
}

/// A message over `max_message_size` (64 KiB) built from 64-byte fragments: 1009 at the
/// fragment that passes the limit (checked from its header), with nothing delivered.
#[test]
fn message_over_max_message_size_from_small_fragments() {
    for a in ADAPTERS {
        let cfg = Config::default().with_max_message_size(64 << 10);
        let mut wire = F::frag(false, 2, [1u8; 64]).encode(Some(KEY));
        for _ in 0..2000 {
            wire.extend(F::frag(false, 0, [1u8; 64]).encode(Some(KEY)));
        }
        let (out, report) = against(a, cfg, &wire);
        assert_eq!(out.frames, [F::close(1009)], "{a:?}");
        assert!(matches!(
            protocol_error(&report),
            ProtocolError::MessageTooLarge {
                len: 65600,
                max: 65536
            }
        ));
    }
}

/// 1,000,000 empty fragments (6 MB on the wire): 1009 once `max_fragments` (131,072) is
/// passed; the rest is drained (the write completes) and nothing is delivered.
#[test]
fn a_million_empty_fragments() {
    let mut wire = F::frag(false, 2, []).encode(Some(KEY));
    let empty = F::frag(false, 0, []).encode(Some(KEY));
    for _ in 0..1_000_000 {
        wire.extend_from_slice(&empty);
    }
    for a in ADAPTERS {
        let t = Instant::now();
        let (out, report) = against(a, Config::default(), &wire);
        assert_eq!(out.frames, [F::close(1009)], "{a:?}");
        assert_eq!(out.end, End::Fin);
        assert_eq!(
            protocol_error(&report),
            ProtocolError::TooManyFragments { max: 131_072 }
        );
        assert_eq!(report.messages, 0);
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "{a:?}: {:?}",
            t.elapsed()
        );
    }
}

/// The pong coalescing bound of `src/conn/mod.rs` (`PONG_COALESCE_ABOVE`).
const PONG_COALESCE_ABOVE: usize = 64 << 10;

/// A ping flood from a peer that never reads: 100,000 pings of 125 bytes (13 MB), then a close.
/// The server's queued output stays within the coalescing bound plus one frame (pongs are
/// coalesced, §5.5.3); tokio keeps reading, so the flood's write completes before the peer reads
/// anything; the blocking adapter instead stalls on its full socket (TCP backpressure). Once
/// the peer reads, it gets pongs, the answer to the last ping, and then the close echo: no frame
/// after the close.
#[test]
fn ping_flood_from_a_peer_that_never_reads() {
    const PINGS: u32 = 100_000;
    let ping = |i: u32| {
        let mut p = i.to_be_bytes().to_vec();
        p.resize(125, b'p');
        p
    };
    let mut wire = Vec::with_capacity(PINGS as usize * 131 + 8);
    for i in 0..PINGS {
        wire.extend(F::ping(ping(i)).encode(Some(KEY)));
    }
    wire.extend(F::close(1000).encode(Some(KEY)));
    for a in ADAPTERS {
        let server = wire::spawn_server(a, Config::default(), wire::quiet_options());
        let (mut s, rest) = wire::raw_connect(server.addr);
        let mut w = s.try_clone().unwrap();
        let bytes = wire.clone();
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let writer = thread::spawn(move || {
            w.write_all(&bytes).unwrap();
            done_tx.send(()).unwrap();
        });
        let completed_unread = done_rx
            .recv_timeout(Duration::from_secs(if a == Adapter::Tokio {
                20
            } else {
                1
            }))
            .is_ok();
        if a == Adapter::Tokio {
            assert!(
                completed_unread,
                "the tokio server stopped reading during the flood"
            );
            // Wait until the server has taken every ping and the close (as events), with its
            // output still blocked by this peer not reading.
            let deadline = Instant::now() + Duration::from_secs(20);
            while server.events.load(std::sync::atomic::Ordering::SeqCst) < PINGS as usize + 1 {
                assert!(
                    Instant::now() < deadline,
                    "the server took {} of {} events",
                    server.events.load(std::sync::atomic::Ordering::SeqCst),
                    PINGS + 1
                );
                thread::sleep(Duration::from_millis(1));
            }
        }
        let (buf, end) = wire::read_to_end(&mut s, rest, wire::IO_TIMEOUT);
        writer.join().unwrap();
        drop(s);
        assert_eq!(end, End::Fin, "{a:?}");
        let (frames, _) = wire::parse_frames(&buf, false);
        let report = server.report();
        assert!(
            // The bound, one pong over it, then the last pong and the close echo.
            report.max_buffered <= PONG_COALESCE_ABOVE + 2 * 131 + 4,
            "{a:?}: output grew to {}",
            report.max_buffered
        );
        assert_eq!(report.pings, PINGS as usize, "{a:?}");
        let close_at = frames
            .iter()
            .position(|f| f.opcode == 8)
            .unwrap_or_else(|| panic!("{a:?}: no close frame"));
        assert_eq!(
            &frames[close_at..],
            [F::close(1000)],
            "{a:?}: frames after the close frame"
        );
        let pongs = &frames[..close_at];
        assert!(pongs.iter().all(|f| f.opcode == 10), "{a:?}");
        assert!(pongs.len() >= 100, "{a:?}: only {} pongs", pongs.len());
        assert_eq!(
            pongs.last().unwrap().payload,
            ping(PINGS - 1),
            "{a:?}: last ping unanswered"
        );
        let Some(Error::Closed(o)) = &report.end else {
            panic!("{a:?}: {:?}", report.end)
        };
        assert!(o.clean && o.code == CloseCode::NORMAL);
    }
}

// ------------------------------------------------------------------ closing

/// A close frame with a 1-byte payload: 1002 (§5.5.1: the body starts with a 2-byte code).
#[test]
fn close_frame_with_a_one_byte_payload() {
    for a in ADAPTERS {
        let (out, report) = against(
            a,
            Config::default(),
            &F::new(true, 8, vec![0x03]).encode(Some(KEY)),
        );
        assert_eq!(out.frames, [F::close(1002)], "{a:?}");
        assert_eq!(
            protocol_error(&report),
            ProtocolError::Frame(FrameError::CloseTooShort)
        );
    }
}

/// Close codes §7.4 does not allow on the wire: 1002.
#[test]
fn invalid_close_codes() {
    for a in ADAPTERS {
        for code in [0u16, 999, 1004, 1005, 1006, 1015, 2999, 5000, 65535] {
            let (out, report) = against(a, Config::default(), &F::close(code).encode(Some(KEY)));
            assert_eq!(out.frames, [F::close(1002)], "{a:?} {code}");
            assert_eq!(
                protocol_error(&report),
                ProtocolError::Frame(FrameError::InvalidCloseCode(code))
            );
        }
    }
}

/// A close reason that is not UTF-8: 1007 (`ProtocolError::close_code` of `InvalidCloseReason`).
#[test]
fn invalid_utf8_in_a_close_reason() {
    for a in ADAPTERS {
        let frame = F::close_reason(1000, b"ok \xed\xa0\x80 surrogate").encode(Some(KEY));
        let (out, report) = against(a, Config::default(), &frame);
        assert_eq!(out.frames, [F::close(1007)], "{a:?}");
        assert_eq!(
            protocol_error(&report),
            ProtocolError::Frame(FrameError::InvalidCloseReason)
        );
    }
}

/// Data after the close frame (text, a reserved opcode, 100 KiB of garbage) is never parsed:
/// the close is echoed, the server closes TCP, and its close is clean.
#[test]
fn data_after_close() {
    let mut wire = F::close_reason(1000, "bye").encode(Some(KEY));
    wire.extend(F::text("after close").encode(Some(KEY)));
    wire.extend(F::new(true, 5, "").encode(Some(KEY)));
    wire.extend(vec![0xff; 100 << 10]);
    for a in ADAPTERS {
        let (out, report) = against(a, Config::default(), &wire);
        assert_eq!(out.frames, [F::close(1000)], "{a:?}");
        assert_eq!(out.end, End::Fin);
        assert_eq!(report.messages, 0);
        let Some(Error::Closed(o)) = &report.end else {
            panic!("{a:?}: {:?}", report.end)
        };
        assert!(o.clean && o.code == CloseCode::NORMAL && o.reason == "bye");
    }
}

// ------------------------------------------------------------------ masking

/// An unmasked frame from a client: the server fails with 1002 (§5.1).
#[test]
fn unmasked_frame_from_a_client() {
    for a in ADAPTERS {
        let mut wire = F::text("masked").encode(Some(KEY));
        wire.extend(F::text("unmasked").encode(None));
        let (out, report) = against(a, Config::default(), &wire);
        assert_eq!(out.frames, [F::text("masked"), F::close(1002)], "{a:?}");
        assert_eq!(out.end, End::Fin);
        assert_eq!(
            protocol_error(&report),
            ProtocolError::Frame(FrameError::MaskMismatch { expected: true })
        );
    }
}

/// A masked frame from a server: the client fails with 1002 (§5.1) and, as a client, waits for
/// the server to close TCP.
#[test]
fn masked_frame_from_a_server() {
    for a in ADAPTERS {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("ws://{}/", listener.local_addr().unwrap());
        let client = wire::spawn_echo_client(a, url, Config::default());
        let mut wire = F::text("plain").encode(None);
        wire.extend(F::text("masked").encode(Some(KEY)));
        let out = wire::raw_server(&listener, &wire, None);
        assert_eq!(out.frames, [F::text("plain"), F::close(1002)], "{a:?}");
        assert_eq!(out.end, End::Open, "{a:?}: the client closed TCP first");
        let report = client.join().unwrap();
        assert_eq!(
            protocol_error(&report),
            ProtocolError::Frame(FrameError::MaskMismatch { expected: false })
        );
    }
}

/// Regression (core, deterministic): a close frame that arrives while a coalesced pong is still
/// waiting used to be echoed *before* that pong, so the pong went out after the close frame
/// (`advance_output` queued it once the output drained). The pong now precedes the close.
#[test]
fn coalesced_pong_never_follows_the_close_frame() {
    let mut server = support::open(Role::Server);
    let ping = |i: u32| {
        let mut p = i.to_be_bytes().to_vec();
        p.resize(125, 0);
        p
    };
    for i in 0..2000 {
        server.handle_input(&F::ping(ping(i)).encode(Some(KEY)));
        while server.next_event().is_some() {}
    }
    assert!(server.buffered_amount() > PONG_COALESCE_ABOVE);
    server.handle_input(&F::close(1000).encode(Some(KEY)));
    while server.next_event().is_some() {}
    let out = support::take_output(&mut server);
    let (frames, _) = wire::parse_frames(&out, false);
    let n = frames.len();
    assert_eq!(frames[n - 1], F::close(1000));
    assert_eq!(
        frames[n - 2],
        F::pong(ping(1999)),
        "the last ping is answered before the close"
    );
    assert!(frames[..n - 1].iter().all(|f| f.opcode == 10));
}
