//! RFC 6455 §5.5: control frames (ping, pong) and their limits.

use crate::support::*;
use hybi::frame::Opcode;
use hybi::{CloseCode, Config, Role, UsageError};

#[test]
fn ping_is_answered_with_identical_pong() {
    // §5.5.2/§5.5.3: the pong has "identical Application data".
    let mut server = open(Role::Server);
    let (ev, out) = feed(&mut server, &cframe(true, 9, b"are you there"));
    assert_eq!(ev.len(), 1);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0.opcode, Opcode::Pong);
    assert_eq!(out[0].1, b"are you there");
}

#[test]
fn auto_pong_can_be_disabled() {
    let mut server = open_with(Role::Server, Config::default().with_auto_pong(false));
    let (ev, out) = feed(&mut server, &cframe(true, 9, b"x"));
    assert_eq!(ev, ["ping [120]"]);
    assert!(out.is_empty());
    server.send_pong(b"x").unwrap();
    assert_eq!(
        decode_frames(&take_output(&mut server))[0].0.opcode,
        Opcode::Pong
    );
}

#[test]
fn unsolicited_pong_is_reported() {
    let mut client = open(Role::Client);
    assert_eq!(feed(&mut client, &sframe(true, 10, b"")).0, ["pong []"]);
}

#[test]
fn control_payload_of_125_is_fine_126_fails() {
    let mut server = open(Role::Server);
    let (ev, _) = feed(&mut server, &cframe(true, 9, &[1; 125]));
    assert_eq!(ev.len(), 1);
    let mut server = open(Role::Server);
    assert_failing(
        &mut server,
        &cframe(true, 9, &[1; 126]),
        CloseCode::PROTOCOL_ERROR,
    );
}

#[test]
fn fragmented_control_frame_fails() {
    let mut server = open(Role::Server);
    assert_failing(
        &mut server,
        &cframe(false, 9, b""),
        CloseCode::PROTOCOL_ERROR,
    );
}

#[test]
fn sending_oversized_control_is_usage_error() {
    let mut client = open(Role::Client);
    assert_eq!(
        client.send_ping(&[0; 126]),
        Err(UsageError::ControlTooLong(126))
    );
    assert_eq!(
        client.send_pong(&[0; 126]),
        Err(UsageError::ControlTooLong(126))
    );
    assert!(client.send_ping(&[0; 125]).is_ok());
}

#[test]
fn ping_flood_from_a_peer_that_never_reads_is_bounded() {
    // The adapter keeps reading but the peer never reads our output: pongs must be coalesced.
    let mut server = open(Role::Server);
    let ping = cframe(true, 9, &[7; 125]);
    for _ in 0..20_000 {
        server.handle_input(&ping);
        while server.next_event().is_some() {}
    }
    let queued = server.buffered_amount();
    assert!(queued < 128 << 10, "output grew to {queued}");
    // Once the output drains, the latest ping is still answered.
    let out = take_output(&mut server);
    let frames = decode_frames(&out);
    assert!(frames.iter().all(|f| f.0.opcode == Opcode::Pong));
    assert!(frames.len() > 500);
}

#[test]
fn pong_held_back_under_backpressure_never_follows_a_close() {
    // Found by fuzz/conn_server: with more than 64 KiB unwritten, a ping's pong is held back until
    // the output drains; a close frame queued meanwhile must stay the last frame (§5.5.1), the
    // held pong goes out just before it, and nothing is queued once CLOSED.
    let ping = cframe(true, 9, b"hi");
    let close = cframe(true, 8, &close_payload(1000, ""));

    // The peer's close arrives while the pong is held back.
    let mut server = open(Role::Server);
    server.send_binary(&[0; 70_000]).unwrap();
    server.handle_input(&ping);
    server.handle_input(&close);
    drain_events(&mut server); // the contract: drain events after input (queues the close reply)
    let frames = decode_frames(&take_output(&mut server));
    assert_eq!(frames.last().unwrap().0.opcode, Opcode::Close);
    // The ping came before the close, so it is answered (§5.5.2), right before the close.
    let n = frames.len();
    assert_eq!(
        (frames[n - 2].0.opcode, &frames[n - 2].1[..]),
        (Opcode::Pong, &b"hi"[..])
    );
    assert_eq!(
        frames.iter().filter(|f| f.0.opcode == Opcode::Pong).count(),
        1
    );

    // We close first while the pong is held back.
    let mut server = open(Role::Server);
    server.send_binary(&[0; 70_000]).unwrap();
    server.handle_input(&ping);
    server.close(CloseCode::NORMAL, "").unwrap();
    let frames = decode_frames(&take_output(&mut server));
    assert_eq!(frames.last().unwrap().0.opcode, Opcode::Close);

    // The transport ends while the pong is held back: CLOSED, nothing more is queued.
    let mut server = open(Role::Server);
    server.send_binary(&[0; 70_000]).unwrap();
    server.handle_input(&ping);
    server.handle_eof();
    let frames = decode_frames(&take_output(&mut server));
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].0.opcode, Opcode::Binary);
}
