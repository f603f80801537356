//! Conformance, Autobahn section 7 (closing), RFC 6455 §5.5.1, §7.1-§7.4:
//! - a close frame is answered with a close frame echoing its status code (an empty close with
//!   an empty close), and nothing after a close frame is processed;
//! - the payload is empty or a 2-byte code plus a UTF-8 reason, at most 125 bytes in all;
//!   1 byte fails with 1002, a code §7.4 does not allow fails with 1002, a reason that is not
//!   UTF-8 fails with 1007 (`ProtocolError::close_code` maps `InvalidCloseReason` to 1007);
//! - the server closes TCP first once the handshake is done (§7.1.1); the client waits for it.
//!
//! Each table case runs over loopback (tokio and blocking adapters, whole and chopped writes,
//! both roles) and through the core frame by frame and byte by byte. In the client role the
//! raw server checks that the client does not close TCP on its own after its close frame.

use std::net::{Shutdown, TcpListener};
use std::time::Duration;

use crate::support::wire::{self, check, Adapter, Case, End, F};
use hybi::{CloseCode, Error};

fn empty_close() -> F {
    F::new(true, 8, Vec::new())
}

/// Autobahn 7.1.x: the closing handshake and what follows it.
#[test]
fn close_handshake_cases() {
    let cases = [
        // 7.1.1: a message, then close: the echo, then the close echo.
        Case::new(
            "text then close",
            vec![F::text("Hello World!"), F::close(1000)],
            vec![F::text("Hello World!"), F::close(1000)],
        ),
        // 7.1.2: two closes: one answer.
        Case::new(
            "close twice",
            vec![F::close(1000), F::close(1000)],
            vec![F::close(1000)],
        ),
        // 7.1.3: a ping after the close is not answered (§5.5.1: nothing after close).
        Case::new(
            "close then ping",
            vec![F::close(1000), F::ping("Hello World!")],
            vec![F::close(1000)],
        ),
        // 7.1.4: data after close is ignored.
        Case::new(
            "close then text",
            vec![F::close(1000), F::text("Hello World!")],
            vec![F::close(1000)],
        ),
        // 7.1.5: a close between fragments ends the connection; the continuation is ignored.
        Case::new(
            "fragment, close, continuation",
            vec![
                F::frag(false, 1, "fragment1"),
                F::close(1000),
                F::frag(true, 0, "fragment2"),
            ],
            vec![F::close(1000)],
        ),
        // 7.1.6 shape: many messages, then close: every message is echoed before the close.
        Case::new(
            "many messages then close",
            (0..50)
                .map(|i| F::binary(vec![i as u8; 1000 + i]))
                .chain([F::close(1000)])
                .collect(),
            (0..50)
                .map(|i| F::binary(vec![i as u8; 1000 + i]))
                .chain([F::close(1000)])
                .collect(),
        ),
        // Garbage after the close frame, even an invalid frame, is never parsed.
        Case::new(
            "close then a reserved opcode",
            vec![F::close(1001), F::new(true, 5, "")],
            vec![F::close(1001)],
        ),
    ];
    for c in &cases {
        check(c);
    }
}

/// Autobahn 7.3.x: close payload sizes.
#[test]
fn close_payloads() {
    let cases = [
        // 7.3.1: an empty close is answered with an empty close (§5.5.1, §7.4.1 1005).
        Case::new("empty close", vec![empty_close()], vec![empty_close()]),
        // 7.3.2: a 1-byte payload cannot hold a code: 1002.
        Case::new(
            "1-byte close",
            vec![F::new(true, 8, vec![0x03])],
            vec![F::close(1002)],
        ),
        // 7.3.3: code, no reason.
        Case::new(
            "close 1000, no reason",
            vec![F::close(1000)],
            vec![F::close(1000)],
        ),
        // 7.3.4: code and reason.
        Case::new(
            "close 1000 with a reason",
            vec![F::close_reason(1000, "Hello World!")],
            vec![F::close(1000)],
        ),
        // 7.3.5: the longest reason, 123 bytes (payload 125).
        Case::new(
            "close with a 123-byte reason",
            vec![F::close_reason(1000, "*".repeat(123))],
            vec![F::close(1000)],
        ),
        // 7.3.6: a 124-byte reason makes a 126-byte control frame: 1002 (§5.5).
        Case::new(
            "close with a 124-byte reason",
            vec![F::close_reason(1000, "*".repeat(124))],
            vec![F::close(1002)],
        ),
        // 7.5.1: a reason that is not UTF-8: 1007 (§5.5.1 "MUST be UTF-8", §8.1).
        Case::new(
            "close reason not UTF-8",
            vec![F::close_reason(
                1000,
                b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64",
            )],
            vec![F::close(1007)],
        ),
        // A multi-byte reason at the 123-byte limit is fine.
        Case::new(
            "close with a 123-byte UTF-8 reason",
            vec![F::close_reason(4000, "κό".repeat(30) + "abc")],
            vec![F::close(4000)],
        ),
    ];
    for c in &cases {
        check(c);
    }
}

/// Autobahn 7.7.x (valid), 7.9.x (invalid), 7.13.x: close codes by §7.4.1-§7.4.2. The valid
/// ones are echoed; the others fail with 1002.
#[test]
fn close_codes() {
    let valid = [
        1000u16, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999,
        4000, 4999,
    ];
    let invalid = [
        0u16, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
    ];
    let mut cases = Vec::new();
    for code in valid {
        cases.push(Case::new(
            format!("close {code}"),
            vec![F::close_reason(code, "reason")],
            vec![F::close(code)],
        ));
    }
    for code in invalid {
        cases.push(Case::new(
            format!("close {code}"),
            vec![F::close(code)],
            vec![F::close(1002)],
        ));
    }
    for c in &cases {
        check(c);
    }
}

/// §7.1.1: "the underlying TCP connection ... SHOULD be closed first by the server". A hybi
/// client that has echoed the server's close keeps TCP open until the server closes it (here
/// for 300 ms), then completes a clean close.
#[test]
fn client_waits_for_the_server_to_close_tcp() {
    for adapter in [Adapter::Tokio, Adapter::Blocking] {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("ws://{}/", listener.local_addr().unwrap());
        let client = wire::spawn_echo_client(adapter, url, hybi::Config::default());
        let (mut s, _) = listener.accept().unwrap();
        let (head, _) = wire::read_head(&mut s);
        use std::io::Write;
        s.write_all(&wire::response_for(head.as_bytes())).unwrap();
        s.write_all(&F::close_reason(1000, "bye").encode(None))
            .unwrap();
        // The client's close echo arrives, and then nothing for 300 ms: no FIN.
        let (buf, end) = wire::read_to_end(&mut s, Vec::new(), Duration::from_millis(300));
        assert_eq!(end, End::Open, "{adapter:?}: the client closed TCP first");
        let (frames, _) = wire::parse_frames(&buf, true);
        assert_eq!(frames, [F::close(1000)], "{adapter:?}");
        s.shutdown(Shutdown::Write).unwrap();
        let (_, end) = wire::read_to_end(&mut s, Vec::new(), wire::IO_TIMEOUT);
        assert_eq!(
            end,
            End::Fin,
            "{adapter:?}: the client did not close after the server"
        );
        let report = client.join().unwrap();
        match report.end {
            Some(Error::Closed(o)) => {
                assert!(o.clean, "{adapter:?}: {o:?}");
                assert_eq!((o.code, o.reason.as_str()), (CloseCode::NORMAL, "bye"));
            }
            other => panic!("{adapter:?}: {other:?}"),
        }
    }
}

/// §7.1.1: a hybi server closes TCP right after the closing handshake, without waiting for the
/// client to close; its report is a clean close.
#[test]
fn server_closes_tcp_first() {
    for adapter in [Adapter::Tokio, Adapter::Blocking] {
        let server = wire::spawn_server(adapter, hybi::Config::default(), wire::quiet_options());
        let (mut s, _) = wire::raw_connect(server.addr);
        use std::io::Write;
        s.write_all(&F::close_reason(1000, "done").encode(Some(crate::support::KEY)))
            .unwrap();
        // The client never closes: the server's FIN arrives anyway, right after its close echo.
        let (buf, end) = wire::read_to_end(&mut s, Vec::new(), wire::IO_TIMEOUT);
        assert_eq!(end, End::Fin, "{adapter:?}");
        assert_eq!(wire::parse_frames(&buf, false).0, [F::close(1000)]);
        drop(s);
        let report = server.report();
        match report.end {
            Some(Error::Closed(o)) => assert!(o.clean && o.code == CloseCode::NORMAL, "{o:?}"),
            other => panic!("{adapter:?}: {other:?}"),
        }
    }
}
