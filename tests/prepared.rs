//! Fan-out with prepared messages (`PreparedMessage`, `Connection::send_prepared`): framed once,
//! compressed once per distinct deflate parameter set, queued by reference, and received as
//! the same message by every kind of recipient.

mod support;
use hybi::frame::Opcode;
use hybi::{
    Accept, ClientRequest, CloseCode, Config, Connection, DeflateConfig, Event, Message,
    PreparedMessage, Role, UsageError,
};
use support::*;

/// A server connection and the client it shook hands with: the client offers `client`'s
/// deflate settings, the server applies `server`'s.
fn pair(client: Option<DeflateConfig>, server: Option<DeflateConfig>) -> (Connection, Connection) {
    let mut ccfg = client_config();
    if let Some(d) = client {
        ccfg = ccfg.with_deflate(d);
    }
    let mut scfg = Config::default();
    if let Some(d) = server {
        scfg = scfg.with_deflate(d);
    }
    let mut c = Connection::client(ClientRequest::new("ws://h/").unwrap(), ccfg);
    let mut s = Connection::server(scfg);
    s.handle_input(&take_output(&mut c));
    while let Some(ev) = s.next_event() {
        if let Event::Request(_) = ev {
            s.accept(Accept::new()).unwrap();
        }
    }
    c.handle_input(&take_output(&mut s));
    assert!(matches!(c.next_event(), Some(Event::Open(_))));
    (s, c)
}

/// What the client receives of everything the server queued.
fn deliver(server: &mut Connection, client: &mut Connection) -> Vec<Message> {
    client.handle_input(&take_output(server));
    let mut got = Vec::new();
    while let Some(ev) = client.next_event() {
        if let Event::Message(m) = ev {
            got.push(m);
        }
    }
    got
}

fn text(n: usize) -> Message {
    // Compressible: JSON-ish repetition, as a chat room sends.
    let s: String = (0..n)
        .map(|i| b"{\"type\":\"message\"}"[i % 18] as char)
        .collect();
    Message::text(s)
}

#[test]
fn the_frame_is_the_one_send_would_queue() {
    for m in [
        text(0),
        text(125),
        text(126),
        text(70_000),
        Message::binary(vec![9u8; 3000]),
    ] {
        let prepared = PreparedMessage::new(m.clone());
        let (mut a, _) = pair(None, None);
        let (mut b, _) = pair(None, None);
        a.send(m.clone()).unwrap();
        b.send_prepared(&prepared).unwrap();
        assert_eq!(a.buffered_amount(), b.buffered_amount());
        assert_eq!(take_output(&mut a), take_output(&mut b));
        assert_eq!(
            &prepared.frame()[..],
            &{
                let (mut c, _) = pair(None, None);
                c.send(m).unwrap();
                take_output(&mut c)
            }[..]
        );
    }
}

#[test]
fn every_recipient_gets_it_in_order_with_other_traffic() {
    let prepared = PreparedMessage::new(text(2000));
    let mut pairs: Vec<_> = (0..50).map(|_| pair(None, None)).collect();
    for (s, _) in &mut pairs {
        s.send_text("before").unwrap();
        s.send_prepared(&prepared).unwrap();
        s.send_binary(&[1, 2, 3]).unwrap();
    }
    for (s, c) in &mut pairs {
        let got = deliver(s, c);
        assert_eq!(
            got,
            [
                Message::text("before"),
                text(2000),
                Message::binary(vec![1, 2, 3])
            ]
        );
    }
}

#[test]
fn state_and_sequence_are_respected() {
    let prepared = PreparedMessage::new(text(10));
    // Not while connecting, not after our close frame, not inside a fragmented message.
    let mut connecting = Connection::server(Config::default());
    assert!(matches!(
        connecting.send_prepared(&prepared),
        Err(UsageError::WrongState(_))
    ));
    let (mut s, _) = pair(None, None);
    s.send_fragment(hybi::MessageKind::Binary, b"half", false)
        .unwrap();
    assert_eq!(
        s.send_prepared(&prepared),
        Err(UsageError::FragmentOutOfSequence)
    );
    s.close(CloseCode::NORMAL, "").unwrap();
    assert_eq!(s.send_prepared(&prepared), Err(UsageError::SendAfterClose));
}

/// A client masks each frame with its own key, so it frames a prepared message itself; a
/// connection that splits messages splits it.
#[test]
fn clients_and_fragmenting_connections_frame_it_themselves() {
    let prepared = PreparedMessage::new(text(3000));
    let (mut s, mut c) = pair(None, None);
    c.send_prepared(&prepared).unwrap();
    let frames = decode_frames(&take_output(&mut c));
    assert_eq!(frames.len(), 1);
    assert!(frames[0].0.mask.is_some(), "a client frame is masked");
    assert_eq!(deliver(&mut c, &mut s), []); // nothing queued any more
    let mut splitting = Connection::open(
        Role::Server,
        Config::default().with_write_fragment_size(Some(1000)),
    );
    splitting.send_prepared(&prepared).unwrap();
    let frames = decode_frames(&take_output(&mut splitting));
    assert_eq!(frames.len(), 3);
    assert_eq!(frames[1].0.opcode, Opcode::Continuation);
}

/// permessage-deflate without server context takeover: one compressed form per distinct
/// window size, however many recipients; recipients with context takeover compress on their
/// own, recipients without deflate get the plain frame; every one inflates the same message.
#[test]
fn compressed_once_per_parameter_set() {
    let prepared = PreparedMessage::new(text(4000));
    let shared = DeflateConfig::default().with_server_no_context_takeover(true);
    let small_window = shared.with_server_max_window_bits(10);
    let mut recipients = Vec::new();
    for i in 0..60 {
        recipients.push(match i % 4 {
            0 => pair(Some(shared), Some(DeflateConfig::default())),
            1 => pair(Some(small_window), Some(DeflateConfig::default())),
            2 => pair(
                Some(DeflateConfig::default()),
                Some(DeflateConfig::default()),
            ),
            _ => pair(None, Some(DeflateConfig::default())),
        });
    }
    for (s, _) in &mut recipients {
        s.send_prepared(&prepared).unwrap();
    }
    // Two shared forms: windows of 15 and 10 bits; the context-takeover quarter compressed
    // on its own.
    assert_eq!(prepared.compressions(), 2);
    for (i, (s, c)) in recipients.iter_mut().enumerate() {
        let wire = take_output(s);
        let frames = decode_frames(&wire);
        assert_eq!(frames.len(), 1);
        // RSV1 marks a compressed message (RFC 7692 §6): all but the no-deflate quarter.
        assert_eq!(frames[0].0.rsv1, i % 4 != 3, "recipient {i}");
        assert!(frames[0].1.len() < 4000 || i % 4 == 3);
        c.handle_input(&wire);
        let Some(Event::Message(m)) = c.next_event() else {
            panic!("recipient {i}: no message");
        };
        assert_eq!(m, text(4000), "recipient {i}");
    }
    // Sending it again makes no new form.
    for (s, _) in &mut recipients {
        s.send_prepared(&prepared).unwrap();
    }
    assert_eq!(prepared.compressions(), 2);
}

/// Below the compression threshold, or when compressing does not shrink it, the plain frame
/// goes out, compressed or not by a recipient's own rules.
#[test]
fn small_and_incompressible_messages_go_out_plain() {
    let shared = DeflateConfig::default().with_server_no_context_takeover(true);
    let tiny = PreparedMessage::new(Message::text("hi"));
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let noise: Vec<u8> = (0..2000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let random = PreparedMessage::new(Message::binary(noise.clone()));
    let (mut s, mut c) = pair(Some(shared), Some(DeflateConfig::default()));
    s.send_prepared(&tiny).unwrap();
    s.send_prepared(&random).unwrap();
    let wire = take_output(&mut s);
    let frames = decode_frames(&wire);
    assert!(frames.iter().all(|(h, _)| !h.rsv1));
    assert_eq!(
        tiny.compressions(),
        0,
        "below the threshold: never compressed"
    );
    assert_eq!(random.compressions(), 1, "tried once, kept as not worth it");
    c.handle_input(&wire);
    let got: Vec<_> = std::iter::from_fn(|| c.next_event()).collect();
    assert!(matches!(&got[0], Event::Message(m) if m.as_text() == Some("hi")));
    assert!(matches!(&got[1], Event::Message(Message::Binary(b)) if b[..] == noise[..]));
}
