//! `Response::parse` (the client side of the opening handshake) on arbitrary bytes.
//!
//! Input: one byte picks the limits and what the client offered (subprotocols, extensions), 16
//! bytes are the nonce behind `Sec-WebSocket-Key`, the rest is the buffer. (The seeds use the
//! nonce of RFC 6455 §1.2, "the sample nonce", so the §1.2 response is valid.)
//!
//! Properties:
//! - no panic, and only the errors `Response::parse` documents (`UnexpectedStatus` never for
//!   101, `Redirect` only for 301, 302, 303, 307, 308);
//! - `Partial { needed }`: 1 or 2, within `max_header_bytes`, and no empty line in the buffer;
//! - `Complete((response, used))`: `used` ≤ buffer and limit, the head ends with `\n`, the same
//!   result from the head alone and with larger limits, and the head minus one byte is
//!   `Partial`; the status is 101, the subprotocol is one the client offered, and every
//!   extension names an offered one;
//! - the client's own request (`ClientRequest::encode`) parses with `Request::parse`, and the
//!   server's `Accept` answer to it, followed by arbitrary bytes, parses using exactly its head.
#![no_main]

use hybi::frame::Status;
use hybi::handshake::encode_key;
use hybi::HandshakeError;
use hybi::{Accept, ClientRequest, Request, Response};
use hybi_fuzz::has_empty_line;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 17 {
        return;
    }
    let (sel, rest) = (data[0], &data[1..]);
    let (nonce, buf) = rest.split_at(16);
    let key = encode_key(nonce.try_into().unwrap());
    let max_bytes = [128, 1024, 8192, 8192][usize::from(sel & 3)];
    let max_headers = [4, 64][usize::from(sel >> 2 & 1)];
    let mut client = ClientRequest::new("ws://server.example.com/chat").unwrap();
    if sel & 0x10 != 0 {
        client = client.protocols(["chat", "superchat"]);
    }
    if sel & 0x20 != 0 {
        client = client.extension("permessage-deflate; client_max_window_bits");
    }
    if sel & 0x40 != 0 {
        client = client.extension("x-webkit-deflate-frame, foo; bar=\"a,b\"");
    }

    let result = Response::parse(buf, &client, &key, max_bytes, max_headers);
    match &result {
        Ok(Status::Partial { needed }) => {
            assert!(matches!(needed, 1 | 2));
            assert!(buf.len() <= max_bytes);
            assert!(
                !has_empty_line(buf),
                "Partial for a buffer with an empty line"
            );
        }
        Ok(Status::Complete((resp, used))) => {
            let used = *used;
            assert!(used <= buf.len() && used <= max_bytes);
            assert!(buf[..used].ends_with(b"\n"));
            assert_eq!(resp.status(), 101);
            assert!(resp.headers().count() <= max_headers);
            if let Some(p) = resp.protocol() {
                assert!(client.offered_protocols().iter().any(|o| o == p));
            }
            for e in resp.extensions() {
                let name = e.split(';').next().unwrap().trim();
                let offered = client
                    .offered_extensions()
                    .iter()
                    .flat_map(|o| o.split(','))
                    .any(|o| {
                        o.split(';')
                            .next()
                            .unwrap()
                            .trim()
                            .eq_ignore_ascii_case(name)
                    });
                assert!(offered, "extension {e:?} was not offered");
            }
            let again = Response::parse(&buf[..used], &client, &key, max_bytes, max_headers);
            assert_eq!(again, result);
            assert_eq!(Response::parse(buf, &client, &key, 1 << 20, 1000), result);
            match Response::parse(&buf[..used - 1], &client, &key, max_bytes, max_headers) {
                Ok(Status::Partial { needed }) => assert!(needed <= 1),
                other => panic!("head minus one byte: {other:?}"),
            }
        }
        Err(e) => match e {
            HandshakeError::HeadTooLarge { max } => {
                assert_eq!(*max, max_bytes);
                assert!(buf.len() > max_bytes);
            }
            HandshakeError::TooManyHeaders { max } => assert_eq!(*max, max_headers),
            HandshakeError::UnexpectedStatus(status) => assert_ne!(*status, 101),
            HandshakeError::Redirect { status, .. } => {
                assert!(matches!(status, 301 | 302 | 303 | 307 | 308))
            }
            HandshakeError::Malformed(_)
            | HandshakeError::MissingUpgrade
            | HandshakeError::MissingConnectionUpgrade
            | HandshakeError::MissingAccept
            | HandshakeError::AcceptMismatch
            | HandshakeError::UnofferedProtocol(_)
            | HandshakeError::UnofferedExtension(_) => {}
            other => panic!("undocumented response error {other:?}"),
        },
    }

    // The client's request is one a server accepts, and the answer is one the client accepts,
    // whatever follows it.
    let mut wire = Vec::new();
    client.encode(&key, &mut wire);
    let Ok(Status::Complete((req, used))) = Request::parse(&wire, 8192, 64) else {
        panic!("own request refused: {:?}", Request::parse(&wire, 8192, 64));
    };
    assert_eq!(used, wire.len());
    assert_eq!(req.key(), Some(key.as_str()));
    let mut accept = Accept::new();
    if let Some(p) = req.protocols().get(usize::from(sel >> 7)) {
        accept = accept.protocol(p.clone());
    }
    assert_eq!(accept.validate(&req), Ok(()));
    let mut answer = Vec::new();
    accept.encode(&req, &mut answer);
    let head_len = answer.len();
    answer.extend_from_slice(buf);
    match Response::parse(&answer, &client, &key, 8192, 64) {
        Ok(Status::Complete((resp, used))) => {
            assert_eq!(used, head_len);
            assert_eq!(resp.protocol(), accept.selected_protocol());
        }
        other => panic!("own answer refused: {other:?}"),
    }
});
